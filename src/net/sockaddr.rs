//! Socket addresses and control messages, shared by both backends: encoding a
//! [`SocketAddr`] into a `sockaddr_storage` for `sendmsg`, decoding the
//! `msg_name` bytes of a received datagram, and finding the local destination
//! address in its IP_PKTINFO / IPV6_PKTINFO control message.
//!
//! Address family policy: IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a
//! dual-stack `[::]` socket reports for IPv4 peers) are always handed up as
//! plain IPv4 addresses, and an IPv4 destination is mapped back when the socket
//! is IPv6. Callers see one spelling per peer whatever the socket is bound to.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};

/// Bytes reserved for the control messages of one received datagram: room for
/// an IP_PKTINFO (32 bytes with header) and an IPV6_PKTINFO (40) cmsg, with
/// slack for anything else the kernel adds.
pub(crate) const CONTROL_LEN: usize = 128;

/// A control-message buffer aligned like `cmsghdr`, as `recvmsg` expects.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub(crate) struct ControlBuf(pub(crate) [u8; CONTROL_LEN]);

impl ControlBuf {
    pub(crate) const ZERO: Self = Self([0; CONTROL_LEN]);
}

/// Offset of a control message's data from its header (`CMSG_LEN(0)`).
const CMSG_DATA_OFFSET: usize = {
    // SAFETY: CMSG_LEN is pure arithmetic on its argument; it touches no memory.
    (unsafe { libc::CMSG_LEN(0) }) as usize
};

/// What a backend knows about the local side of its socket, to fill
/// [`RecvMeta::destination`](super::RecvMeta::destination).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalAddr {
    /// The bound address (after unmapping), with the real port.
    bound: SocketAddr,
    /// Bound to 0.0.0.0 or `[::]`: the destination comes from PKTINFO.
    wildcard: bool,
    /// The socket is AF_INET6 (so IPv4 destinations must be mapped on send).
    ipv6: bool,
}

impl LocalAddr {
    /// Reads the socket's bound address.
    pub(crate) fn of(socket: &UdpSocket) -> io::Result<Self> {
        let bound = socket
            .local_addr()
            .map_err(|e| super::sys::annotate(e, "getsockname"))?;
        Ok(Self {
            bound: unmap(bound),
            wildcard: bound.ip().is_unspecified(),
            ipv6: bound.is_ipv6(),
        })
    }

    /// Whether the socket is AF_INET6.
    pub(crate) fn is_ipv6(&self) -> bool {
        self.ipv6
    }

    /// The local address a datagram reached, given its control messages.
    pub(crate) fn destination(&self, control: &[u8]) -> SocketAddr {
        if !self.wildcard {
            return self.bound;
        }
        match pktinfo_destination(control) {
            Some(ip) => SocketAddr::new(ip, self.bound.port()),
            None => self.bound,
        }
    }
}

/// Turns `::ffff:a.b.c.d` into `a.b.c.d`; leaves everything else alone.
pub(crate) fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, v6.port())),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// Writes `addr` into `out` in the family of the socket (`ipv6_socket`) and
/// returns the length to pass as `msg_namelen`.
pub(crate) fn encode(
    addr: SocketAddr,
    ipv6_socket: bool,
    out: &mut libc::sockaddr_storage,
) -> libc::socklen_t {
    let addr = match addr {
        SocketAddr::V4(v4) if ipv6_socket => {
            SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        other => other,
    };
    match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned at least as
            // strictly as sockaddr_in; `out` is a valid exclusive reference.
            unsafe { std::ptr::write((&raw mut *out).cast::<libc::sockaddr_in>(), sin) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo().to_be(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut *out).cast::<libc::sockaddr_in6>(), sin6) };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Reads a `T` from the start of `bytes`, if it is long enough.
fn read<T: Copy>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: at least size_of::<T>() bytes are readable; read_unaligned has
    // no alignment requirement; every T used here (C structs of integers and
    // byte arrays) is valid for any bit pattern.
    Some(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// Decodes a `msg_name` as the kernel filled it (`name` is exactly the
/// returned `msg_namelen` bytes, or fewer if truncated). IPv4-mapped addresses
/// are unmapped. `None` for a family other than AF_INET / AF_INET6.
pub(crate) fn decode(name: &[u8]) -> Option<SocketAddr> {
    let family = read::<libc::sa_family_t>(name)?;
    let addr = match libc::c_int::from(family) {
        libc::AF_INET => {
            let sin = read::<libc::sockaddr_in>(name)?;
            SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            ))
        }
        libc::AF_INET6 => {
            let sin6 = read::<libc::sockaddr_in6>(name)?;
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                u32::from_be(sin6.sin6_flowinfo),
                sin6.sin6_scope_id,
            ))
        }
        _ => return None,
    };
    Some(unmap(addr))
}

/// Views the first `len` bytes of a `sockaddr_storage` the kernel filled.
pub(crate) fn storage_bytes(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> &[u8] {
    let len = (len as usize).min(size_of::<libc::sockaddr_storage>());
    // SAFETY: `storage` is a live reference to a plain C struct of
    // size_of::<sockaddr_storage>() >= len bytes, all initialised.
    unsafe { std::slice::from_raw_parts((&raw const *storage).cast::<u8>(), len) }
}

/// A zeroed `sockaddr_storage`.
pub(crate) fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is a C struct of integers; all-zero is valid.
    unsafe { zeroed() }
}

/// The destination address in an IP_PKTINFO or IPV6_PKTINFO control message
/// among `control` (the `msg_control` bytes the kernel filled), unmapped.
/// Parses with unaligned reads, so `control` may start anywhere (the
/// io_uring multishot layout does not align it).
pub(crate) fn pktinfo_destination(control: &[u8]) -> Option<IpAddr> {
    let align = size_of::<usize>();
    let mut rest = control;
    while let Some(hdr) = read::<libc::cmsghdr>(rest) {
        // size_t on glibc, socklen_t on musl.
        #[allow(clippy::unnecessary_cast)]
        let len = hdr.cmsg_len as usize;
        if len < CMSG_DATA_OFFSET || len > rest.len() {
            return None;
        }
        let data = &rest[CMSG_DATA_OFFSET..len];
        match (hdr.cmsg_level, hdr.cmsg_type) {
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                let info = read::<libc::in_pktinfo>(data)?;
                return Some(IpAddr::V4(Ipv4Addr::from(
                    info.ipi_addr.s_addr.to_ne_bytes(),
                )));
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                let info = read::<libc::in6_pktinfo>(data)?;
                let ip = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                return Some(match ip.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(ip),
                });
            }
            _ => {}
        }
        let next = len.next_multiple_of(align);
        rest = rest.get(next..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let cases: [SocketAddr; 3] = [
            "127.0.0.1:5000".parse().unwrap(),
            "[::1]:6000".parse().unwrap(),
            "[fe80::1%3]:7".parse().unwrap(),
        ];
        for addr in cases {
            let mut st = zeroed_storage();
            let len = encode(addr, addr.is_ipv6(), &mut st);
            assert_eq!(decode(storage_bytes(&st, len)), Some(addr));
        }
    }

    #[test]
    fn v4_on_v6_socket_is_mapped_then_unmapped() {
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut st = zeroed_storage();
        let len = encode(addr, true, &mut st);
        assert_eq!(len as usize, size_of::<libc::sockaddr_in6>());
        assert_eq!(i32::from(st.ss_family), libc::AF_INET6);
        assert_eq!(decode(storage_bytes(&st, len)), Some(addr));
    }

    #[test]
    fn garbage_does_not_panic() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[2, 0, 1]), None);
        assert_eq!(pktinfo_destination(&[0xff; 7]), None);
        assert_eq!(pktinfo_destination(&[0xff; 64]), None);
        assert_eq!(pktinfo_destination(&[0; 64]), None);
    }
}
