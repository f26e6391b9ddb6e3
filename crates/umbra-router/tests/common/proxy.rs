//! A lossy UDP proxy between test clients and the router: the router advertises the proxy's
//! address, clients send there, and each datagram in either direction is dropped with a given
//! probability. One upstream socket per client keeps the router's address-based demux intact.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct LossyProxy {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    pub forwarded: Arc<AtomicU64>,
    pub dropped: Arc<AtomicU64>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl LossyProxy {
    /// Bind the client-facing socket now (so the router can advertise it); `start` once the
    /// router's address is known.
    pub fn bind() -> (UdpSocket, SocketAddr) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = s.local_addr().unwrap();
        (s, a)
    }

    pub fn start(front: UdpSocket, router: SocketAddr, loss: f64, seed: u64) -> LossyProxy {
        let addr = front.local_addr().unwrap();
        front.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let front = Arc::new(front);
        let stop = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let (st, fw, dr, th) = (stop.clone(), forwarded.clone(), dropped.clone(), threads.clone());
        let main = std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut upstream: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, client)) = front.recv_from(&mut buf) else {
                    continue;
                };
                let up = upstream.entry(client).or_insert_with(|| {
                    let up = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
                    up.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                    let (up2, front2, st2, fw2, dr2) = (up.clone(), front.clone(), st.clone(), fw.clone(), dr.clone());
                    let seed = rng.u64(..);
                    let t = std::thread::spawn(move || {
                        let mut rng = fastrand::Rng::with_seed(seed);
                        let mut buf = [0u8; 2048];
                        while !st2.load(Ordering::Relaxed) {
                            let Ok((n, _)) = up2.recv_from(&mut buf) else {
                                continue;
                            };
                            if rng.f64() < loss {
                                dr2.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            fw2.fetch_add(1, Ordering::Relaxed);
                            let _ = front2.send_to(&buf[..n], client);
                        }
                    });
                    th.lock().unwrap().push(t);
                    up
                });
                if rng.f64() < loss {
                    dr.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                fw.fetch_add(1, Ordering::Relaxed);
                let _ = up.send_to(&buf[..n], router);
            }
        });
        threads.lock().unwrap().push(main);
        LossyProxy { addr, stop, forwarded, dropped, threads }
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Join the main thread first (it may still spawn a per-client thread), then the rest.
        loop {
            let t = self.threads.lock().unwrap().pop();
            match t {
                Some(t) => {
                    let _ = t.join();
                }
                None => break,
            }
        }
    }
}
