//! Memory the kernel reads or writes behind our back: the provided-buffer ring
//! for receives and the pool of send slots. Both are allocated once, never
//! move, and are handed out by index; the owner (`UringDatapath`) guarantees
//! they outlive every operation that points into them.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::net::SocketAddr;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

use crate::net::sockaddr;

/// A zeroed heap allocation with a fixed address, freed on drop.
struct RawAlloc {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl RawAlloc {
    fn zeroed(size: usize, align: usize) -> io::Result<Self> {
        let layout = Layout::from_size_align(size, align)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("layout: {e}")))?;
        if layout.size() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "zero-size allocation",
            ));
        }
        // SAFETY: the layout has a non-zero size (checked above).
        let ptr = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("allocating {size} bytes"),
            )
        })?;
        Ok(Self { ptr, layout })
    }
}

impl Drop for RawAlloc {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from alloc_zeroed with exactly `layout`.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// A provided-buffer ring (IORING_REGISTER_PBUF_RING): `entries` ring slots
/// the kernel consumes from, each naming one `buf_len`-byte buffer of `bufs`.
/// Buffer id `i` is always the `i`-th buffer.
pub(super) struct BufRing {
    ring: RawAlloc,
    bufs: RawAlloc,
    entries: u16,
    buf_len: usize,
    /// Our copy of the tail; published to the kernel after each recycle.
    tail: u16,
}

impl BufRing {
    /// Allocates the ring (page-aligned, as the kernel requires) and the
    /// buffers, and puts every buffer in the ring. `entries` must be a power
    /// of two no larger than 32768.
    pub(super) fn new(entries: u16, buf_len: usize) -> io::Result<Self> {
        if !entries.is_power_of_two() || entries > 32768 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("buffer ring size {entries} is not a power of two <= 32768"),
            ));
        }
        let page = page_size();
        let ring_bytes = usize::from(entries) * size_of::<BufRingEntry>();
        let ring = RawAlloc::zeroed(ring_bytes.next_multiple_of(page), page)?;
        let bufs = RawAlloc::zeroed(usize::from(entries) * buf_len, 64)?;
        let mut this = Self {
            ring,
            bufs,
            entries,
            buf_len,
            tail: 0,
        };
        for bid in 0..entries {
            this.push(bid);
        }
        this.publish();
        Ok(this)
    }

    /// The ring's address, for `register_buf_ring`.
    pub(super) fn ring_addr(&self) -> u64 {
        self.ring.ptr.as_ptr() as u64
    }

    pub(super) fn entries(&self) -> u16 {
        self.entries
    }

    /// The first `len` bytes of buffer `bid`; `None` if either is out of
    /// range (which a well-behaved kernel never reports).
    ///
    /// # Safety
    /// `bid` must come from a completion that selected it, and must not have
    /// been recycled since: only then is the kernel done writing it and not
    /// about to write it again. The slice must be dropped before `recycle`.
    pub(super) unsafe fn buffer(&self, bid: u16, len: usize) -> Option<&[u8]> {
        if bid >= self.entries || len > self.buf_len {
            return None;
        }
        // SAFETY: in bounds of the `bufs` allocation (checked above); the
        // caller guarantees the kernel is not writing it (see # Safety).
        Some(unsafe {
            std::slice::from_raw_parts(
                self.bufs.ptr.as_ptr().add(usize::from(bid) * self.buf_len),
                len,
            )
        })
    }

    /// Gives buffer `bid` back to the kernel.
    pub(super) fn recycle(&mut self, bid: u16) {
        self.push(bid);
        self.publish();
    }

    /// Writes the ring slot at our tail to name buffer `bid`.
    fn push(&mut self, bid: u16) {
        if bid >= self.entries {
            return;
        }
        let slot = usize::from(self.tail & (self.entries - 1));
        let addr = self.bufs.ptr.as_ptr() as u64 + (usize::from(bid) * self.buf_len) as u64;
        // SAFETY: `slot` < entries, so the entry lies inside the ring
        // allocation. The kernel only reads slots between its head and the
        // published tail; this slot is at or past the tail, so it is ours.
        // The setters do not touch `resv`, which doubles as the tail in slot 0.
        let entry = unsafe { &mut *self.ring.ptr.as_ptr().cast::<BufRingEntry>().add(slot) };
        entry.set_addr(addr);
        entry.set_len(self.buf_len as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes pushed slots visible to the kernel (release store of the tail).
    fn publish(&self) {
        // SAFETY: the ring base is a valid, initialised BufRingEntry; `tail`
        // returns the address of its 2-byte-aligned `resv` field, which the
        // kernel reads concurrently, so we access it only atomically.
        let tail = unsafe {
            &*BufRingEntry::tail(self.ring.ptr.as_ptr().cast::<BufRingEntry>()).cast::<AtomicU16>()
        };
        tail.store(self.tail, Ordering::Release);
    }
}

/// One send: the bytes and everything `sendmsg` points at, at a fixed address.
#[repr(C)]
struct SendSlot<const N: usize> {
    hdr: libc::msghdr,
    iov: libc::iovec,
    addr: libc::sockaddr_storage,
    data: [u8; N],
}

/// A fixed pool of send slots and the stack of free ones.
pub(super) struct SendPool<const N: usize> {
    slots: RawAlloc,
    count: u16,
    free: Vec<u16>,
}

impl<const N: usize> SendPool<N> {
    /// Allocates `count` slots and wires each slot's header to its own
    /// address, iovec and data.
    pub(super) fn new(count: u16) -> io::Result<Self> {
        let slots = RawAlloc::zeroed(
            usize::from(count) * size_of::<SendSlot<N>>(),
            align_of::<SendSlot<N>>(),
        )?;
        let base = slots.ptr.as_ptr().cast::<SendSlot<N>>();
        for i in 0..usize::from(count) {
            // SAFETY: `i` < count, inside the allocation; zeroed bytes are a
            // valid SendSlot (C structs of integers and raw pointers).
            let slot = unsafe { &mut *base.add(i) };
            slot.iov.iov_base = slot.data.as_mut_ptr().cast();
            slot.hdr.msg_name = (&raw mut slot.addr).cast();
            slot.hdr.msg_iov = &raw mut slot.iov;
            slot.hdr.msg_iovlen = 1;
        }
        Ok(Self {
            slots,
            count,
            free: (0..count).rev().collect(),
        })
    }

    /// Slots currently owned by the kernel (or queued for it).
    pub(super) fn in_flight(&self) -> usize {
        usize::from(self.count) - self.free.len()
    }

    /// Takes a free slot, fills it with one datagram for `dest`, and returns
    /// its index and the `msghdr` to submit. `None` if no slot is free.
    /// `data` must be at most `N` bytes.
    pub(super) fn fill(
        &mut self,
        dest: SocketAddr,
        ipv6_socket: bool,
        data: &[u8],
    ) -> Option<(u16, *const libc::msghdr)> {
        if data.len() > N {
            return None;
        }
        let idx = self.free.pop()?;
        // SAFETY: idx < count (only such indices are ever pushed to `free`)
        // and a free slot is not referenced by any in-flight operation, so
        // we have exclusive access to it.
        let slot = unsafe {
            &mut *self
                .slots
                .ptr
                .as_ptr()
                .cast::<SendSlot<N>>()
                .add(usize::from(idx))
        };
        slot.data[..data.len()].copy_from_slice(data);
        slot.iov.iov_len = data.len();
        slot.hdr.msg_namelen = sockaddr::encode(dest, ipv6_socket, &mut slot.addr);
        Some((idx, &raw const slot.hdr))
    }

    /// Returns slot `idx` to the pool once its operation completed.
    pub(super) fn release(&mut self, idx: u16) {
        if idx < self.count {
            self.free.push(idx);
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf takes no pointers.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}
