//! Which peer connection an incoming datagram belongs to, in O(1): a map from remote address
//! to connection, learned from STUN connectivity checks whose USERNAME names the router-side
//! ufrag of the connection (a second map). Nothing here ever walks the list of connections.
//!
//! Each peer connection must use its own remote address (browsers do; a native client must
//! not multiplex several peer connections to the router over one local port), because DTLS
//! and SRTP carry nothing that names a connection.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::stun;

/// The router's handle on one peer connection; never reused within a router's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

#[derive(Debug, Default)]
pub struct Demux {
    by_addr: HashMap<SocketAddr, ConnId>,
    by_ufrag: HashMap<String, ConnId>,
    /// Reverse index so removing a connection never scans `by_addr`.
    addrs_of: HashMap<ConnId, Vec<SocketAddr>>,
}

/// How a datagram was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// A known remote address.
    Known(ConnId),
    /// A STUN request whose USERNAME names a connection; its source was (re)learned.
    Learned(ConnId),
}

impl Resolved {
    pub fn conn(self) -> ConnId {
        match self {
            Resolved::Known(c) | Resolved::Learned(c) => c,
        }
    }
}

impl Demux {
    pub fn register(&mut self, conn: ConnId, local_ufrag: String) {
        self.by_ufrag.insert(local_ufrag, conn);
        self.addrs_of.entry(conn).or_default();
    }

    /// Resolve a datagram to its connection. STUN with a USERNAME is resolved by ufrag even from
    /// a known address, so a client whose port was reused by another peer connection, or that
    /// changed network path, is re-pointed at once.
    pub fn resolve(&mut self, source: SocketAddr, datagram: &[u8]) -> Option<Resolved> {
        if stun::is_stun(datagram)
            && let Some(ufrag) = stun::local_ufrag(datagram)
        {
            let conn = *self.by_ufrag.get(ufrag)?;
            if self.by_addr.get(&source) == Some(&conn) {
                return Some(Resolved::Known(conn));
            }
            self.learn(source, conn);
            return Some(Resolved::Learned(conn));
        }
        self.by_addr.get(&source).copied().map(Resolved::Known)
    }

    fn learn(&mut self, source: SocketAddr, conn: ConnId) {
        if let Some(previous) = self.by_addr.insert(source, conn)
            && let Some(addrs) = self.addrs_of.get_mut(&previous)
        {
            addrs.retain(|a| *a != source);
        }
        let addrs = self.addrs_of.entry(conn).or_default();
        // A connection legitimately has a handful of addresses (one per ICE candidate pair that
        // was checked); cap it so a peer spraying checks from many ports cannot grow the maps.
        const MAX_ADDRS_PER_CONN: usize = 16;
        if addrs.len() >= MAX_ADDRS_PER_CONN {
            let oldest = addrs.remove(0);
            self.by_addr.remove(&oldest);
        }
        addrs.push(source);
    }

    pub fn remove(&mut self, conn: ConnId, local_ufrag: &str) {
        if self.by_ufrag.get(local_ufrag) == Some(&conn) {
            self.by_ufrag.remove(local_ufrag);
        }
        for addr in self.addrs_of.remove(&conn).unwrap_or_default() {
            if self.by_addr.get(&addr) == Some(&conn) {
                self.by_addr.remove(&addr);
            }
        }
    }

    /// Remove a connection whose ufrag is no longer known (after a panic lost its state).
    pub fn purge(&mut self, conn: ConnId) {
        self.by_ufrag.retain(|_, c| *c != conn);
        for addr in self.addrs_of.remove(&conn).unwrap_or_default() {
            if self.by_addr.get(&addr) == Some(&conn) {
                self.by_addr.remove(&addr);
            }
        }
    }

    pub fn has_ufrag(&self, ufrag: &str) -> bool {
        self.by_ufrag.contains_key(ufrag)
    }

    /// Sizes of the maps, for tests and the stats: (addresses, ufrags, connections).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.by_addr.len(), self.by_ufrag.len(), self.addrs_of.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun_with_username(username: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        attr.extend_from_slice(&0x0006u16.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut msg = vec![0, 1];
        msg.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        msg.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        msg.extend_from_slice(&[1; 12]);
        msg.extend_from_slice(&attr);
        msg
    }

    const SRTP: [u8; 12] = [0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9];

    #[test]
    fn learns_address_from_stun_then_routes_media_by_address() {
        let mut d = Demux::default();
        let (a, b) = (ConnId(1), ConnId(2));
        d.register(a, "ufragA".into());
        d.register(b, "ufragB".into());
        let src: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        // Unknown address, not STUN: dropped.
        assert_eq!(d.resolve(src, &SRTP), None);
        // STUN naming an unknown ufrag: dropped, nothing learned.
        assert_eq!(d.resolve(src, &stun_with_username("nope:x")), None);
        assert_eq!(d.sizes().0, 0);
        // STUN naming B: learned.
        assert_eq!(d.resolve(src, &stun_with_username("ufragB:cli")), Some(Resolved::Learned(b)));
        assert_eq!(d.resolve(src, &stun_with_username("ufragB:cli")), Some(Resolved::Known(b)));
        assert_eq!(d.resolve(src, &SRTP), Some(Resolved::Known(b)));
        // The same address re-checked for A moves to A (port reuse / ICE restart).
        assert_eq!(d.resolve(src, &stun_with_username("ufragA:cli")), Some(Resolved::Learned(a)));
        assert_eq!(d.resolve(src, &SRTP), Some(Resolved::Known(a)));
        // Removing B leaves A's mapping alone.
        d.remove(b, "ufragB");
        assert_eq!(d.resolve(src, &SRTP), Some(Resolved::Known(a)));
        d.remove(a, "ufragA");
        assert_eq!(d.sizes(), (0, 0, 0));
        assert_eq!(d.resolve(src, &SRTP), None);
    }

    #[test]
    fn addresses_per_connection_are_capped_and_cleaned() {
        let mut d = Demux::default();
        let a = ConnId(7);
        d.register(a, "u".into());
        for port in 0..40u16 {
            let src = SocketAddr::from(([127, 0, 0, 1], 6000 + port));
            assert_eq!(d.resolve(src, &stun_with_username("u:c")), Some(Resolved::Learned(a)));
        }
        assert_eq!(d.sizes(), (16, 1, 1));
        // The newest addresses are the ones kept.
        assert_eq!(d.resolve(SocketAddr::from(([127, 0, 0, 1], 6039)), &SRTP), Some(Resolved::Known(a)));
        assert_eq!(d.resolve(SocketAddr::from(([127, 0, 0, 1], 6000)), &SRTP), None);
        d.remove(a, "u");
        assert_eq!(d.sizes(), (0, 0, 0));
    }

    #[test]
    fn ipv6_sources_are_keys_like_any_other() {
        let mut d = Demux::default();
        d.register(ConnId(3), "v6".into());
        let src: SocketAddr = "[::1]:7000".parse().unwrap();
        assert_eq!(d.resolve(src, &stun_with_username("v6:c")), Some(Resolved::Learned(ConnId(3))));
        assert_eq!(d.resolve(src, &SRTP), Some(Resolved::Known(ConnId(3))));
    }
}
