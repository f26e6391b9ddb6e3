//! The router's UDP sockets (at most one per address family) and the waker that lets the API
//! threads interrupt a blocked wait. The router thread blocks in poll(2) on all of them with
//! the earliest str0m deadline as its timeout, so a command, a datagram on either family or a
//! timer wakes it without busy-looping and without a second thread per socket.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::error::RouterError;

/// Kernel buffers big enough to hold a keyframe fanned out to many subscribers; the kernel caps
/// them at net.core.{r,w}mem_max, which is fine (it is a hint).
const SOCKET_BUFFER_BYTES: libc::c_int = 4 * 1024 * 1024;

pub struct RouterSocket {
    pub socket: UdpSocket,
    pub local: SocketAddr,
    /// The address str0m is told a datagram arrived at: the advertised host candidate of this
    /// family (str0m's ICE agent only answers checks addressed to one of its candidates).
    pub candidate_addr: SocketAddr,
}

pub struct Sockets {
    pub v4: Option<RouterSocket>,
    pub v6: Option<RouterSocket>,
    pub waker: UnixDatagram,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Ready {
    pub v4: bool,
    pub v6: bool,
    pub waker: bool,
}

pub fn bind(addr: SocketAddr) -> Result<UdpSocket, RouterError> {
    let socket = UdpSocket::bind(addr).map_err(|source| RouterError::Bind { addr, source })?;
    socket.set_nonblocking(true).map_err(|source| RouterError::Bind { addr, source })?;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: setsockopt on a valid fd with a pointer to a c_int of the size we pass.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                &SOCKET_BUFFER_BYTES as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    // Kernel receive timestamps, so the loop can tell how long a datagram waited in the
    // socket buffer (the router's lag) — the one queue it cannot otherwise see.
    let on: libc::c_int = 1;
    // SAFETY: as above. Failure only costs the lag figure (recv then reports no timestamp).
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    Ok(socket)
}

/// One datagram with its source and the wall-clock time the kernel received it (when the
/// socket has SO_TIMESTAMPNS, which `bind` asks for).
pub fn recv_timestamped(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<std::time::SystemTime>)> {
    // SAFETY: every pointer in `msg` points into locals that outlive the call, with the
    // lengths given; the kernel writes at most those lengths. The control buffer is u64s so
    // that cmsghdr alignment holds.
    unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
        let mut control = [0u64; 8];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = &mut addr as *mut libc::sockaddr_storage as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let source = sockaddr_to_std(&addr)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "datagram from an unknown address family"))?;
        let mut at = None;
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::timespec);
                at = Some(std::time::UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Ok((n as usize, source, at))
    }
}

pub fn sockaddr_to_std(addr: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match addr.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(addr as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(addr as *const libc::sockaddr_storage as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

impl Sockets {
    /// Block until a socket is readable, the waker fires, or `timeout` passes.
    pub fn wait(&self, timeout: Duration) -> io::Result<Ready> {
        let mut fds = [
            pollfd(self.v4.as_ref().map(|s| s.socket.as_raw_fd())),
            pollfd(self.v6.as_ref().map(|s| s.socket.as_raw_fd())),
            pollfd(Some(self.waker.as_raw_fd())),
        ];
        // Round up so a sub-millisecond deadline does not spin with a 0 ms poll.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: fds is a valid array of pollfd for its whole length; negative fds are ignored.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(Ready::default());
            }
            return Err(err);
        }
        let readable = |p: &libc::pollfd| p.fd >= 0 && p.revents & (libc::POLLIN | libc::POLLERR) != 0;
        Ok(Ready { v4: readable(&fds[0]), v6: readable(&fds[1]), waker: readable(&fds[2]) })
    }

    /// Empty the waker so the next poll blocks again.
    pub fn drain_waker(&self) {
        let mut b = [0u8; 64];
        while self.waker.recv(&mut b).is_ok() {}
    }
}

fn pollfd(fd: Option<std::os::fd::RawFd>) -> libc::pollfd {
    libc::pollfd { fd: fd.unwrap_or(-1), events: libc::POLLIN, revents: 0 }
}

/// CPU time (user + system) consumed by the calling thread.
pub fn thread_cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
