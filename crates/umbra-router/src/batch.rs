//! Many datagrams per system call: recvmmsg(2) for what arrives, sendmmsg(2) for what the
//! router sends. A publisher packet fanned out to N subscribers is N datagrams; with one
//! syscall each, the syscall entry and exit came on top of the kernel's per-datagram UDP work
//! (which batching does not remove) N times per packet.
//!
//! This is the one place the router hands the kernel arrays of pointers, so the contract is
//! spelled out here:
//!
//! - Every `iovec`, `msghdr` name and control pointer is set up afresh right before each call,
//!   from `&mut self` (or the caller's slices), and points into memory that outlives the call
//!   with the length given; the structures are therefore never self-referential across moves.
//! - The kernel writes at most the lengths given (buffer, name, control) and reports what it
//!   wrote in `msg_len`, `msg_namelen` and `msg_controllen`; only those bytes are read back.
//! - Control buffers are `u64` arrays so `cmsghdr` alignment holds; `CMSG_*` walk them.
//!
//! Where the calls are missing (ENOSYS, e.g. under some sandboxes) the batch falls back to one
//! datagram per call for the rest of the process: same results, more syscalls.
//!
//! A fan-out goes to many destinations, but each subscriber is drained once per group of
//! publisher packets (`engine::forward`), so its datagrams sit next to each other in the
//! outbox: consecutive datagrams to one destination of one size (the packets of a frame,
//! which senders cut into equal parts) go as one UDP GSO message (`UDP_SEGMENT`). Where the
//! kernel or the route's device refuses it, GSO is off for the rest of the process.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// Datagrams per call, both ways.
pub const BATCH: usize = 32;
/// Largest datagram accepted; WebRTC keeps well under the Ethernet MTU.
pub const RECV_BUF: usize = 2048;

static NO_MMSG: AtomicBool = AtomicBool::new(false);

/// ENOSYS: the *mmsg calls are missing here; `flag` turns them off (for the rest of the
/// process, when it is `NO_MMSG`).
fn mmsg_missing(err: &io::Error, flag: &AtomicBool) -> bool {
    if err.raw_os_error() == Some(libc::ENOSYS) {
        flag.store(true, Ordering::Relaxed);
        return true;
    }
    false
}

/// Buffers for one recvmmsg(2): up to [`BATCH`] datagrams with source and kernel timestamp.
pub struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    controls: Vec<[u64; 8]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    count: usize,
    /// The last read was one datagram without recvmmsg, and this its timestamp.
    single: Option<Option<SystemTime>>,
}

/// One received datagram.
pub struct Datagram<'a> {
    pub data: &'a [u8],
    pub source: SocketAddr,
    /// When the kernel received it (SO_TIMESTAMPNS), if it said.
    pub at: Option<SystemTime>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        // SAFETY: all-zero is a valid value of these plain C structs (null pointers, zero
        // lengths); every pointer is set before use in `recv`.
        let zeroed_addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let zeroed_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        RecvBatch {
            bufs: vec![0; BATCH * RECV_BUF],
            addrs: vec![zeroed_addr; BATCH],
            controls: vec![[0; 8]; BATCH],
            iovs: vec![libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; BATCH],
            hdrs: vec![zeroed_hdr; BATCH],
            count: 0,
            single: None,
        }
    }
}

impl RecvBatch {
    /// Read what the (non-blocking) socket holds, up to [`BATCH`] datagrams; `Ok(0)` when
    /// nothing waits. Datagrams are then read with [`RecvBatch::get`].
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.count = 0;
        self.single = None;
        if NO_MMSG.load(Ordering::Relaxed) {
            return self.recv_one(socket);
        }
        for i in 0..BATCH {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i * RECV_BUF..].as_mut_ptr() as *mut libc::c_void,
                iov_len: RECV_BUF,
            };
            let h = &mut self.hdrs[i];
            h.msg_len = 0;
            h.msg_hdr.msg_name = &mut self.addrs[i] as *mut libc::sockaddr_storage as *mut libc::c_void;
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = self.controls[i].as_mut_ptr() as *mut libc::c_void;
            h.msg_hdr.msg_controllen = std::mem::size_of::<[u64; 8]>() as _;
            h.msg_hdr.msg_flags = 0;
        }
        // SAFETY: see the module contract; `hdrs` holds BATCH initialised entries whose
        // pointers were just set into `bufs`, `addrs`, `iovs` and `controls`.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                return Ok(0);
            }
            if mmsg_missing(&err, &NO_MMSG) {
                return self.recv_one(socket);
            }
            return Err(err);
        }
        self.count = n as usize;
        Ok(self.count)
    }

    fn recv_one(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        match crate::sockets::recv_timestamped(socket, &mut self.bufs[..RECV_BUF]) {
            Ok((n, source, at)) => {
                self.hdrs[0].msg_len = n as libc::c_uint;
                self.addrs[0] = to_storage(source).0;
                self.hdrs[0].msg_hdr.msg_controllen = 0;
                self.single = Some(at);
                self.count = 1;
                Ok(1)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The `i`-th datagram of the last [`RecvBatch::recv`]; `None` past the end or when its
    /// source address is of no family the router speaks.
    pub fn get(&self, i: usize) -> Option<Datagram<'_>> {
        if i >= self.count {
            return None;
        }
        let h = &self.hdrs[i];
        let len = (h.msg_len as usize).min(RECV_BUF);
        let source = crate::sockets::sockaddr_to_std(&self.addrs[i])?;
        let at = match self.single {
            Some(at) => at,
            None => timestamp(&h.msg_hdr),
        };
        Some(Datagram { data: &self.bufs[i * RECV_BUF..i * RECV_BUF + len], source, at })
    }
}

/// The SCM_TIMESTAMPNS the kernel attached to a received message, if any.
fn timestamp(msg: &libc::msghdr) -> Option<SystemTime> {
    let mut at = None;
    // SAFETY: `msg` was filled by recvmmsg(2) with `msg_controllen` bytes of control data in
    // the buffer `msg_control` points to (module contract); CMSG_* stay within that length.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::timespec);
                at = Some(std::time::UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    at
}

/// A std address as the kernel wants it, with its length.
fn to_storage(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage; the family-specific struct written into it
    // below is no larger than the storage and the storage is suitably aligned for it.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = &mut *(&mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in);
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr = libc::in_addr { s_addr: u32::from(*a.ip()).to_be() };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = &mut *(&mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6);
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
                sin6.sin6_scope_id = a.scope_id();
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        (storage, len as libc::socklen_t)
    }
}

/// Segments per UDP GSO message: the kernel's `UDP_MAX_SEGMENTS` (64 since Linux 4.18; newer
/// kernels allow more).
const GSO_MAX_SEGMENTS: usize = 64;
/// Payload bytes per GSO message: one IP packet's UDP payload (65 507 over IPv4), with room.
const GSO_MAX_BYTES: usize = 65_000;
/// `iovec`s per sendmmsg(2) call, one per datagram: bounds the stack arrays below.
const MAX_IOVS: usize = 256;

static NO_GSO: AtomicBool = AtomicBool::new(false);

/// What one [`send_all`] handed to the kernel, for the worker's statistics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendCounts {
    /// sendmmsg(2) (or sendto(2)) calls.
    pub calls: u64,
    /// Messages in them: a GSO message carries several datagrams.
    pub messages: u64,
    /// Datagrams the kernel accepted.
    pub datagrams: u64,
}

impl SendCounts {
    pub fn add(&mut self, o: SendCounts) {
        self.calls += o.calls;
        self.messages += o.messages;
        self.datagrams += o.datagrams;
    }
}

/// Where the message that starts at `start` ends (exclusive). With GSO, it takes the datagrams
/// that follow to the same destination while they have the first one's size, and one shorter
/// last one: what UDP_SEGMENT cuts back into the same datagrams at the first one's size.
fn message_end(datagrams: &[(SocketAddr, &[u8])], start: usize, gso: bool) -> usize {
    let (dest, first) = datagrams[start];
    let size = first.len();
    let mut end = start + 1;
    if !gso || size == 0 {
        return end;
    }
    let mut bytes = size;
    while end < datagrams.len() && end - start < GSO_MAX_SEGMENTS {
        let (d, data) = datagrams[end];
        if d != dest || data.is_empty() || data.len() > size || bytes + data.len() > GSO_MAX_BYTES {
            break;
        }
        bytes += data.len();
        end += 1;
        if data.len() < size {
            break;
        }
    }
    end
}

/// Errors that mean this kernel or device cannot segment UDP (no `UDP_SEGMENT`, no checksum
/// offload on the route's device): GSO is then off for the rest of the process.
fn gso_unsupported(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP))
}

/// Send `datagrams` (destination, bytes) on one socket, up to [`BATCH`] messages per
/// sendmmsg(2) call. Consecutive datagrams to one destination go as one UDP GSO message where
/// they can (see [`message_end`]): the kernel routes and builds it, and on a veth or loopback
/// delivers it, once instead of once per datagram, and the receiver still gets the same
/// datagrams. Where the kernel refuses GSO the message's datagrams are sent one by one and GSO
/// stays off. `on_error(i, err)` is called for each datagram the kernel refused (the rest
/// still go).
pub fn send_all(
    socket: &UdpSocket,
    datagrams: &[(SocketAddr, &[u8])],
    on_error: impl FnMut(usize, io::Error),
) -> SendCounts {
    send_via(socket, datagrams, &NO_MMSG, &NO_GSO, on_error)
}

/// [`send_all`] with the switches that turn sendmmsg and GSO off passed in, so a test can take
/// a path without changing it for the rest of the process.
fn send_via(
    socket: &UdpSocket,
    datagrams: &[(SocketAddr, &[u8])],
    no_mmsg: &AtomicBool,
    no_gso: &AtomicBool,
    mut on_error: impl FnMut(usize, io::Error),
) -> SendCounts {
    let mut counts = SendCounts::default();
    let mut next = 0;
    // Datagrams before this index go one per message: a GSO message that failed is retried so.
    let mut single_until = 0;
    while next < datagrams.len() {
        if no_mmsg.load(Ordering::Relaxed) {
            let (dest, data) = datagrams[next];
            counts.calls += 1;
            match socket.send_to(data, dest) {
                Ok(_) => {
                    counts.messages += 1;
                    counts.datagrams += 1;
                }
                Err(e) => on_error(next, e),
            }
            next += 1;
            continue;
        }
        let gso = !no_gso.load(Ordering::Relaxed);
        // (start, end) of each message of this call.
        let mut spans = [(0usize, 0usize); BATCH];
        let mut n_msgs = 0;
        let mut at = next;
        while n_msgs < BATCH && at < datagrams.len() {
            let end = message_end(datagrams, at, gso && at >= single_until);
            let iovs_so_far = at - next;
            if n_msgs > 0 && iovs_so_far + (end - at) > MAX_IOVS {
                break;
            }
            spans[n_msgs] = (at, end);
            n_msgs += 1;
            at = end;
        }
        let mut names: [(libc::sockaddr_storage, libc::socklen_t); BATCH] =
            // SAFETY: all-zero is valid for both fields; only the first n_msgs are used.
            unsafe { std::mem::zeroed() };
        let mut iovs = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; MAX_IOVS];
        // CMSG_SPACE(sizeof(u16)) is 24 bytes on 64-bit Linux; u64 keeps cmsghdr alignment.
        let mut controls = [[0u64; 4]; BATCH];
        // SAFETY: CMSG_SPACE only computes a length from its argument.
        let gso_space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
        debug_assert!(gso_space <= std::mem::size_of::<[u64; 4]>());
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, (_, data)) in datagrams[next..at].iter().enumerate() {
            // The kernel only reads from a send iovec; the cast to *mut is what the C type wants.
            iovs[i] = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
        }
        for m in 0..n_msgs {
            let (start, end) = spans[m];
            names[m] = to_storage(datagrams[start].0);
            let h = &mut hdrs[m].msg_hdr;
            h.msg_name = &mut names[m].0 as *mut libc::sockaddr_storage as *mut libc::c_void;
            h.msg_namelen = names[m].1;
            h.msg_iov = &mut iovs[start - next];
            h.msg_iovlen = end - start;
            if end - start > 1 {
                h.msg_control = controls[m].as_mut_ptr() as *mut libc::c_void;
                h.msg_controllen = gso_space as _;
                // SAFETY: `controls[m]` is 32 bytes, at least CMSG_SPACE(2), u64-aligned and
                // zeroed; CMSG_FIRSTHDR of a msghdr with that control buffer points at its start.
                unsafe {
                    let cmsg = libc::CMSG_FIRSTHDR(h);
                    (*cmsg).cmsg_level = libc::SOL_UDP;
                    (*cmsg).cmsg_type = libc::UDP_SEGMENT;
                    (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
                    let size = datagrams[start].1.len() as u16;
                    std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut u16, size);
                }
            }
        }
        counts.calls += 1;
        // SAFETY: module contract: `hdrs[..n_msgs]` point into `names`, `iovs`, `controls` and
        // the caller's slices, all alive across the call.
        let n = unsafe { libc::sendmmsg(socket.as_raw_fd(), hdrs.as_mut_ptr(), n_msgs as libc::c_uint, 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted || mmsg_missing(&err, no_mmsg) {
                continue;
            }
            let (start, end) = spans[0];
            if end - start > 1 {
                // A GSO message: its datagrams go again one by one, which reports any that
                // fails on its own.
                if gso_unsupported(&err) && !no_gso.swap(true, Ordering::Relaxed) {
                    tracing::info!("UDP GSO refused ({err}); sending one datagram per message from now on");
                }
                single_until = end;
                continue;
            }
            // The first datagram of the call failed: report it and go on with the next.
            on_error(next, err);
            next += 1;
        } else if n == 0 {
            on_error(next, io::Error::new(io::ErrorKind::WriteZero, "sendmmsg sent nothing"));
            next += 1;
        } else {
            let sent = n as usize;
            let end = spans[sent - 1].1;
            counts.messages += sent as u64;
            counts.datagrams += (end - next) as u64;
            next = end;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_goes_out_and_comes_back_in_order_with_sources_and_timestamps() {
        let rx = crate::sockets::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let payloads: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 10 + i as usize]).collect();
        let list: Vec<(SocketAddr, &[u8])> = payloads.iter().map(|p| (to, p.as_slice())).collect();
        let mut errors = 0;
        send_all(&tx, &list, |_, _| errors += 1);
        assert_eq!(errors, 0);
        let mut batch = RecvBatch::default();
        let mut got = Vec::new();
        for _ in 0..100 {
            let n = batch.recv(&rx).unwrap();
            for i in 0..n {
                let d = batch.get(i).unwrap();
                assert_eq!(d.source, tx.local_addr().unwrap());
                assert!(d.at.is_some(), "no kernel timestamp");
                got.push(d.data.to_vec());
            }
            if got.len() == payloads.len() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(got, payloads);
        assert_eq!(batch.recv(&rx).unwrap(), 0, "nothing left");
    }

    /// The path taken where recvmmsg/sendmmsg are missing. It flips a process-wide switch; the
    /// other tests here give the same results on either path, so running beside them is fine.
    #[test]
    fn without_mmsg_the_same_datagrams_go_one_call_each() {
        NO_MMSG.store(true, Ordering::Relaxed);
        let rx = crate::sockets::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let payloads: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 3 + i as usize]).collect();
        let list: Vec<(SocketAddr, &[u8])> = payloads.iter().map(|p| (to, p.as_slice())).collect();
        send_all(&tx, &list, |i, e| panic!("datagram {i}: {e}"));
        let mut batch = RecvBatch::default();
        let mut got = Vec::new();
        for _ in 0..100 {
            let n = batch.recv(&rx).unwrap();
            assert!(n <= 1, "one datagram per call without recvmmsg");
            if let Some(d) = (n == 1).then(|| batch.get(0)).flatten() {
                assert_eq!(d.source, tx.local_addr().unwrap());
                assert!(d.at.is_some(), "no kernel timestamp");
                got.push(d.data.to_vec());
            }
            if got.len() == payloads.len() {
                break;
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        NO_MMSG.store(false, Ordering::Relaxed);
        assert_eq!(got, payloads);
    }

    #[test]
    fn a_refused_datagram_is_reported_and_the_rest_still_go() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let big = vec![0u8; 70_000];
        let ok = [1u8; 4];
        let list: Vec<(SocketAddr, &[u8])> = vec![(to, &ok), (to, &big), (to, &ok)];
        let mut failed = Vec::new();
        send_all(&tx, &list, |i, _| failed.push(i));
        assert_eq!(failed, vec![1]);
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut b = [0u8; 16];
        assert_eq!(rx.recv(&mut b).unwrap(), 4);
        assert_eq!(rx.recv(&mut b).unwrap(), 4);
    }

    /// Reads `count` datagrams from `rx`, bounded in time.
    fn read_n(rx: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while got.len() < count {
            let n = rx.recv(&mut buf).expect("a datagram within 2 s");
            got.push(buf[..n].to_vec());
        }
        rx.set_nonblocking(true).unwrap();
        assert!(rx.recv(&mut buf).is_err(), "no datagram beyond the {count} sent");
        got
    }

    #[test]
    fn runs_of_one_size_to_one_destination_go_as_gso_messages_and_arrive_unchanged() {
        let (rx1, rx2) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
        let (a, b) = (rx1.local_addr().unwrap(), rx2.local_addr().unwrap());
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        // (destination, size): a frame cut in equal parts with a shorter last, another
        // subscriber's, a larger packet that must start a message of its own, an audio packet.
        let plan: Vec<(SocketAddr, usize)> = [(a, 1100); 5]
            .into_iter()
            .chain([(a, 700)])
            .chain([(b, 1000); 3])
            .chain([(a, 1100), (a, 1100), (a, 1200), (b, 100)])
            .collect();
        let payloads: Vec<Vec<u8>> = plan.iter().enumerate().map(|(i, (_, n))| vec![i as u8; *n]).collect();
        let list: Vec<(SocketAddr, &[u8])> = plan.iter().zip(&payloads).map(|((d, _), p)| (*d, p.as_slice())).collect();
        let (no_mmsg, no_gso) = (AtomicBool::new(false), AtomicBool::new(false));
        let counts = send_via(&tx, &list, &no_mmsg, &no_gso, |i, e| panic!("datagram {i}: {e}"));
        assert!(!no_gso.load(Ordering::Relaxed), "this kernel refused UDP GSO on loopback");
        // [a: 5 x 1100 + 700] [b: 3 x 1000] [a: 2 x 1100] [a: 1200] [b: 100]
        assert_eq!(counts, SendCounts { calls: 1, messages: 5, datagrams: 13 });
        let want = |d: SocketAddr| -> Vec<Vec<u8>> {
            plan.iter().zip(&payloads).filter(|((to, _), _)| *to == d).map(|(_, p)| p.clone()).collect()
        };
        assert_eq!(read_n(&rx1, 9), want(a));
        assert_eq!(read_n(&rx2, 4), want(b));
    }

    #[test]
    fn a_refused_gso_message_goes_again_datagram_by_datagram_and_gso_stays_off() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Linux refuses GSO (EINVAL) on a socket that sends without UDP checksums.
        let one: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option value of the size given.
        let rc = unsafe {
            libc::setsockopt(
                tx.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NO_CHECK,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_NO_CHECK: {}", io::Error::last_os_error());
        let payloads: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 500]).collect();
        let list: Vec<(SocketAddr, &[u8])> = payloads.iter().map(|p| (to, p.as_slice())).collect();
        let (no_mmsg, no_gso) = (AtomicBool::new(false), AtomicBool::new(false));
        let counts = send_via(&tx, &list, &no_mmsg, &no_gso, |i, e| panic!("datagram {i}: {e}"));
        assert!(no_gso.load(Ordering::Relaxed), "GSO must be off after the kernel refused it");
        assert_eq!(counts.datagrams, 4);
        assert_eq!(counts.messages, 4, "one datagram per message after the refusal");
        assert_eq!(read_n(&rx, 4), payloads);
        // And it stays off: the next run of equal datagrams goes one per message at once.
        let counts = send_via(&tx, &list, &no_mmsg, &no_gso, |i, e| panic!("datagram {i}: {e}"));
        assert_eq!(counts, SendCounts { calls: 1, messages: 4, datagrams: 4 });
        assert_eq!(read_n(&rx, 4), payloads);
    }
}
