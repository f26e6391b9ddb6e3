//! A TCP proxy on a free loopback port that a test can cut: every connection through it is
//! shut down at once (both TCP streams, no WebSocket close frame, as when a network link or a
//! cluster node dies), and while it is held, new connections are accepted and closed at once
//! (the server is unreachable).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Proxy {
    pub addr: String,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    streams: Mutex<Vec<TcpStream>>,
    held: AtomicBool,
    stop: AtomicBool,
    accepted: AtomicUsize,
}

impl Proxy {
    /// Forwards every connection made to `addr` to `upstream`.
    pub fn start(upstream: &str) -> Proxy {
        Self::balance(vec![upstream.to_string()])
    }

    /// A load balancer: each connection goes to the next of `upstreams` in turn that accepts it
    /// (a node that died refuses, and the one after it gets the client).
    pub fn balance(upstreams: Vec<String>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || {
            while !s.stop.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                if s.held.load(Ordering::Relaxed) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let _ = client.set_nonblocking(false);
                let first = s.accepted.fetch_add(1, Ordering::Relaxed);
                let server = (0..upstreams.len()).find_map(|i| {
                    let addr = upstreams[(first + i) % upstreams.len()].parse().ok()?;
                    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()
                });
                let Some(server) = server else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let mut streams = s.streams.lock().unwrap();
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
                streams.push(client);
                streams.push(server);
            }
        });
        Proxy { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts down every connection through the proxy, both ways.
    pub fn cut(&self) {
        for s in self.shared.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// While held, connections are accepted and closed at once.
    pub fn hold(&self, held: bool) {
        self.shared.held.store(held, Ordering::Relaxed);
    }

    /// Connections accepted while not held.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.cut();
    }
}
