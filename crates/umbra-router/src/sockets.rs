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
    Ok(socket)
}

impl Sockets {
    pub fn for_destination(&self, dest: SocketAddr) -> Option<&RouterSocket> {
        if dest.is_ipv4() { self.v4.as_ref() } else { self.v6.as_ref() }
    }

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
