//! Small syscall helpers shared by the socket setup and both backends: turning
//! `-1`/`errno` into [`io::Error`] with context, and throttling per-packet logs.

use std::io;

/// Returns `e` with `what` prepended to its message, keeping its kind and OS code
/// visible in the text (`io_uring setup: Operation not permitted (os error 1)`).
pub(crate) fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Converts a libc return value: negative means "look at errno".
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Whether the `n`-th occurrence (1-based) of something that can happen per
/// packet deserves a log line: the 1st, 2nd, 4th, 8th, … — never more than
/// 64 lines over a process's life for one counter.
pub(crate) fn rare(n: u64) -> bool {
    n.is_power_of_two()
}

/// `setsockopt` for an `int` option.
pub(crate) fn setsockopt_int(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` is a live c_int on our stack and `len` is its exact size;
    // the kernel only reads `len` bytes from the pointer during the call.
    let ret = unsafe { libc::setsockopt(fd, level, name, (&raw const value).cast(), len) };
    cvt(ret).map(drop)
}
