//! UDP socket setup for the media port: one socket per shard, all in one
//! SO_REUSEPORT group, non-blocking, with large kernel buffers and (when bound
//! to a wildcard address) PKTINFO so every datagram says which local address
//! it reached.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};

use socket2::{Domain, Protocol, Socket, Type};
use tracing::debug;

use super::sys::{annotate, setsockopt_int};

/// Binds a non-blocking UDP socket to `addr` as one member of an SO_REUSEPORT
/// group: calling it N times with the same `addr` yields N sockets that share
/// the port, and the kernel spreads datagrams over them by a hash of the
/// 4-tuple (one client always reaches the same socket).
///
/// Port 0: each call would get a *different* ephemeral port. To build a group
/// on an ephemeral port, bind the first socket with port 0, read its
/// [`UdpSocket::local_addr`], and bind the others to that address. A port-0
/// socket is bound *before* it gets SO_REUSEPORT, so the kernel
/// picks a port no other socket holds (with the flags set first, Linux may
/// hand out a port already used by another reuseport socket of the same user,
/// silently merging two unrelated groups — e.g. two servers in one test run);
/// the flags are set right after, so the others can still join.
///
/// `recv_buf` / `send_buf` are SO_RCVBUF / SO_SNDBUF in bytes (0 keeps the
/// system default). As root the limits `net.core.{r,w}mem_max` are bypassed
/// with SO_RCVBUFFORCE / SO_SNDBUFFORCE; otherwise the kernel clamps silently.
///
/// `[::]` is bound dual-stack (IPV6_V6ONLY off). When the IP is unspecified
/// (0.0.0.0 or `[::]`), IP_PKTINFO / IPV6_RECVPKTINFO are enabled so the
/// backends can report [`RecvMeta::destination`](super::RecvMeta::destination)
/// per datagram; for a concrete IP the destination is the bound address.
pub fn bind_reuseport(addr: SocketAddr, recv_buf: usize, send_buf: usize) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| annotate(e, "socket(AF_INET*, SOCK_DGRAM)"))?;
    let ephemeral = addr.port() == 0;
    if !ephemeral {
        set_reuse(&socket)?;
    }
    socket
        .set_nonblocking(true)
        .map_err(|e| annotate(e, "O_NONBLOCK"))?;
    let fd = socket.as_raw_fd();
    if recv_buf > 0 {
        set_receive_buffer(&socket, recv_buf)?;
    }
    if send_buf > 0 {
        set_buffer(fd, libc::SO_SNDBUFFORCE, send_buf)
            .or_else(|_| socket.set_send_buffer_size(send_buf))
            .map_err(|e| annotate(e, "SO_SNDBUF"))?;
    }
    let wildcard = addr.ip().is_unspecified();
    if addr.is_ipv6() {
        if wildcard {
            socket
                .set_only_v6(false)
                .map_err(|e| annotate(e, "IPV6_V6ONLY"))?;
            // IPv6 and IPv4-mapped datagrams both get an IPV6_PKTINFO.
            setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
                .map_err(|e| annotate(e, "IPV6_RECVPKTINFO"))?;
        }
    } else if wildcard {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
            .map_err(|e| annotate(e, "IP_PKTINFO"))?;
    }
    socket
        .bind(&addr.into())
        .map_err(|e| annotate(e, &format!("bind {addr}")))?;
    if ephemeral {
        set_reuse(&socket)?;
    }
    debug!(%addr, recv_buf, send_buf, "udp socket bound (reuseport)");
    Ok(socket.into())
}

/// Sets SO_RCVBUF to `bytes`, past `net.core.rmem_max` when the process
/// may (SO_RCVBUFFORCE, CAP_NET_ADMIN); otherwise the kernel clamps it.
pub fn set_receive_buffer(socket: &impl AsFd, bytes: usize) -> io::Result<()> {
    set_buffer(socket.as_fd().as_raw_fd(), libc::SO_RCVBUFFORCE, bytes)
        .or_else(|_| socket2::SockRef::from(socket).set_recv_buffer_size(bytes))
        .map_err(|e| annotate(e, "SO_RCVBUF"))
}

/// Sets a buffer size with a FORCE option (needs CAP_NET_ADMIN).
fn set_buffer(fd: libc::c_int, opt: libc::c_int, bytes: usize) -> io::Result<()> {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    setsockopt_int(fd, libc::SOL_SOCKET, opt, bytes)
}

/// SO_REUSEPORT only: the kernel lets only sockets of the same user join the
/// group. SO_REUSEADDR is deliberately not set: on UDP it would let another
/// user's socket with the same option bind our port and take our datagrams.
fn set_reuse(socket: &Socket) -> io::Result<()> {
    socket
        .set_reuse_port(true)
        .map_err(|e| annotate(e, "SO_REUSEPORT"))
}
