//! Which peer connection an incoming datagram belongs to, in O(1), and which remote addresses
//! a connection has *verified*. Nothing here ever walks the list of connections.
//!
//! Each peer connection must use its own remote address (browsers do; a native client must
//! not multiplex several peer connections to the router over one local port), because DTLS
//! and SRTP carry nothing that names a connection.
//!
//! # Threat
//!
//! The router-side ufrag travels in clear in every connectivity check, so anyone who sees one
//! check can forge more with the same USERNAME from addresses of their choosing. Forging the
//! MESSAGE-INTEGRITY needs the connection's ICE password, which only the client has (it came
//! in the answer, over authenticated signaling). An earlier demux mapped a source address to a
//! connection from the ufrag alone, before the integrity check, with a 16-address cap that
//! evicted the oldest address: 16 forged checks every 100 ms evicted the client's real address
//! and blackholed its RTCP and media (0 fps for 11 of 15 s), and every datagram from a forged
//! address then reached the victim's DTLS/SRTP stack.
//!
//! # Design: map only what the connection verified
//!
//! - [`Demux::resolve`] takes `&self`: resolving a datagram never changes the maps, so no
//!   unverified datagram can add, move or evict an address.
//! - A STUN message whose USERNAME names a connection's ufrag resolves to
//!   [`Resolved::Check`] for that connection, from any source. The engine asks the connection
//!   first (`Rtc::accepts`, which for a binding request checks both ufrags and the
//!   MESSAGE-INTEGRITY HMAC keyed with the connection's local password — the same code str0m
//!   runs when the check is handed over, so there is one verifier, not two that could drift;
//!   and it is `&self`, so a refused check leaves no trace in the connection). Only an
//!   accepted check is handed to the connection, and only then does the engine call
//!   [`Demux::verified`] to map its source. A check from a new path (NAT rebinding, a second
//!   candidate pair) is therefore verified and mapped like the first one, while forged checks
//!   for the same ufrag reach nothing but that read-only test.
//! - Any other datagram resolves by its source among verified addresses
//!   ([`Resolved::Mapped`]); the engine again hands it over only if the connection accepts
//!   it (its nominated address, or the remote address of a candidate pair that succeeded,
//!   which for ICE-lite means one that sent a verified check). Everything else is dropped
//!   before any ICE/DTLS/SRTP state sees it.
//!
//! The alternative — verifying MESSAGE-INTEGRITY here with a copy of each password — would
//! duplicate str0m's STUN parsing and HMAC and keep secrets in two places; mapping only once
//! str0m reports a nominated pair is not possible in str0m 0.25 (it emits no event for it) and
//! would leave the addresses of other succeeded pairs (where DTLS may start before nomination)
//! unmapped. `Rtc::accepts` is the verifier str0m itself documents for routing input to an
//! `Rtc`. Its cost on the media path is one address comparison (the nominated address); a
//! forged check costs one STUN parse and one HMAC-SHA1, as it did before when str0m dropped
//! it.
//!
//! Not covered: an attacker who can spoof the *source* address of a client and holds the
//! password of another connection (another participant's own) could verify that address for
//! its own connection; that needs an on-path or spoofing attacker and a seat in the session.
//!
//! # Invariants and bounds
//!
//! Each media worker has its own `Demux` over its own connections and sockets (a client's
//! datagrams reach only the worker whose port its session was answered with), so everything
//! below holds per worker; no map is shared between threads.
//!
//! - `by_ufrag` holds exactly one entry per registered connection (its router-side ufrag);
//!   `addrs_of` one entry per registered connection. Both are emptied by `remove`/`purge`.
//! - `by_addr` holds only addresses that sent a check the connection verified, and `addrs_of`
//!   lists exactly the `by_addr` keys of each connection: at most
//!   [`MAX_VERIFIED_ADDRS_PER_CONN`] per connection, so `by_addr.len() ≤ 16 × connections`.
//! - Unverified traffic adds nothing to any map, so no rate of forged datagrams grows them.
//! - An address leaves a connection only when that connection is removed, when a newer
//!   verified address of the same connection displaces it (least recently verified first; a
//!   client's live path is re-verified by its consent checks every few seconds, so only the
//!   password holder can push it out), or when another connection verifies the same address
//!   (the client reused its port for a new peer connection).

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::stun;

/// Verified remote addresses kept per connection. A client checks one address per local
/// candidate it pairs with the router's (a handful); 16 leaves room for NAT rebinding and
/// multi-homed hosts while bounding the map.
pub const MAX_VERIFIED_ADDRS_PER_CONN: usize = 16;

/// The router's handle on one peer connection; never reused within a router's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

#[derive(Debug, Default)]
pub struct Demux {
    /// Verified remote address → connection.
    by_addr: HashMap<SocketAddr, ConnId>,
    by_ufrag: HashMap<String, ConnId>,
    /// Each connection's verified addresses, least recently verified first; also the reverse
    /// index so removing a connection never scans `by_addr`.
    addrs_of: HashMap<ConnId, Vec<SocketAddr>>,
}

/// How a datagram was resolved. Either way the connection decides whether to take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// A STUN message whose USERNAME names this connection's ufrag, from any source: to be
    /// verified by the connection before it is handed over or its source is mapped.
    Check(ConnId),
    /// Any other datagram from an address this connection verified.
    Mapped(ConnId),
}

impl Resolved {
    pub fn conn(self) -> ConnId {
        match self {
            Resolved::Check(c) | Resolved::Mapped(c) => c,
        }
    }
}

impl Demux {
    pub fn register(&mut self, conn: ConnId, local_ufrag: String) {
        self.by_ufrag.insert(local_ufrag, conn);
        self.addrs_of.entry(conn).or_default();
    }

    /// Resolve a datagram to the connection that may take it. STUN with a USERNAME is
    /// resolved by ufrag even from a verified address of another connection, so a client
    /// whose port was reused by another peer connection, or that changed network path, can
    /// verify the new mapping at once. A STUN message naming an unknown ufrag goes nowhere.
    pub fn resolve(&self, source: SocketAddr, datagram: &[u8]) -> Option<Resolved> {
        if stun::is_stun(datagram)
            && let Some(ufrag) = stun::local_ufrag(datagram)
        {
            return self.by_ufrag.get(ufrag).copied().map(Resolved::Check);
        }
        self.by_addr.get(&source).copied().map(Resolved::Mapped)
    }

    /// Record that `conn` accepted a check from `source` (MESSAGE-INTEGRITY verified with its
    /// password). Refreshes an address already known; may displace this connection's least
    /// recently verified address, or move the address from another connection. Returns
    /// whether the address is new to `conn`.
    pub fn verified(&mut self, source: SocketAddr, conn: ConnId) -> bool {
        let Some(addrs) = self.addrs_of.get_mut(&conn) else {
            // Not registered (already removed): nothing to map it to.
            return false;
        };
        if let Some(pos) = addrs.iter().position(|a| *a == source) {
            let a = addrs.remove(pos);
            addrs.push(a);
            return false;
        }
        if addrs.len() >= MAX_VERIFIED_ADDRS_PER_CONN {
            let oldest = addrs.remove(0);
            self.by_addr.remove(&oldest);
        }
        addrs.push(source);
        if let Some(previous) = self.by_addr.insert(source, conn)
            && let Some(addrs) = self.addrs_of.get_mut(&previous)
        {
            addrs.retain(|a| *a != source);
        }
        true
    }

    pub fn remove(&mut self, conn: ConnId, local_ufrag: &str) {
        if self.by_ufrag.get(local_ufrag) == Some(&conn) {
            self.by_ufrag.remove(local_ufrag);
        }
        self.forget_addrs(conn);
    }

    /// Remove a connection whose ufrag is no longer known (after a panic lost its state).
    pub fn purge(&mut self, conn: ConnId) {
        self.by_ufrag.retain(|_, c| *c != conn);
        self.forget_addrs(conn);
    }

    fn forget_addrs(&mut self, conn: ConnId) {
        for addr in self.addrs_of.remove(&conn).unwrap_or_default() {
            if self.by_addr.get(&addr) == Some(&conn) {
                self.by_addr.remove(&addr);
            }
        }
    }

    pub fn has_ufrag(&self, ufrag: &str) -> bool {
        self.by_ufrag.contains_key(ufrag)
    }

    /// Sizes of the maps, for tests and the stats: (verified addresses, ufrags, connections).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.by_addr.len(), self.by_ufrag.len(), self.addrs_of.len())
    }

    /// The invariants of the module doc, checked (tests only: it walks every map).
    #[cfg(test)]
    fn check_invariants(&self) {
        assert_eq!(self.by_ufrag.len(), self.addrs_of.len());
        let listed: usize = self.addrs_of.values().map(Vec::len).sum();
        assert_eq!(listed, self.by_addr.len());
        for (conn, addrs) in &self.addrs_of {
            assert!(addrs.len() <= MAX_VERIFIED_ADDRS_PER_CONN);
            for a in addrs {
                assert_eq!(self.by_addr.get(a), Some(conn));
            }
        }
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

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn checks_resolve_by_ufrag_media_only_from_verified_addresses() {
        let mut d = Demux::default();
        let (a, b) = (ConnId(1), ConnId(2));
        d.register(a, "ufragA".into());
        d.register(b, "ufragB".into());
        let src = addr(5000);
        // Unknown address, not STUN: dropped.
        assert_eq!(d.resolve(src, &SRTP), None);
        // STUN naming an unknown ufrag: dropped.
        assert_eq!(d.resolve(src, &stun_with_username("nope:x")), None);
        // STUN naming B: B is asked, but resolving maps nothing.
        assert_eq!(d.resolve(src, &stun_with_username("ufragB:cli")), Some(Resolved::Check(b)));
        assert_eq!(d.sizes().0, 0);
        assert_eq!(d.resolve(src, &SRTP), None);
        // B verified it: media from there now resolves to B.
        assert!(d.verified(src, b));
        assert!(!d.verified(src, b), "a refresh is not new");
        assert_eq!(d.resolve(src, &SRTP), Some(Resolved::Mapped(b)));
        // Checks from a verified address still go to the connection they name.
        assert_eq!(d.resolve(src, &stun_with_username("ufragA:cli")), Some(Resolved::Check(a)));
        assert_eq!(d.resolve(src, &SRTP), Some(Resolved::Mapped(b)));
        // A verifies the same address (port reuse): it moves to A.
        assert!(d.verified(src, a));
        assert_eq!(d.resolve(src, &SRTP), Some(Resolved::Mapped(a)));
        d.check_invariants();
        // Removing B leaves A's mapping alone.
        d.remove(b, "ufragB");
        assert_eq!(d.resolve(src, &SRTP), Some(Resolved::Mapped(a)));
        d.remove(a, "ufragA");
        assert_eq!(d.sizes(), (0, 0, 0));
        assert_eq!(d.resolve(src, &SRTP), None);
        // Verification for a connection that is gone maps nothing.
        assert!(!d.verified(src, a));
        assert_eq!(d.sizes(), (0, 0, 0));
    }

    #[test]
    fn forged_checks_from_many_ports_leave_the_verified_address_alone() {
        let mut d = Demux::default();
        let victim = ConnId(7);
        d.register(victim, "u".into());
        let real = addr(4000);
        d.verified(real, victim);
        // The attack of the issue, many times over: checks naming the victim's ufrag from
        // thousands of ports. The engine's verification refuses them, so `verified` is never
        // called; resolution alone must not change anything.
        for port in 10_000..12_000u16 {
            assert_eq!(d.resolve(addr(port), &stun_with_username("u:c")), Some(Resolved::Check(victim)));
            assert_eq!(d.resolve(addr(port), &SRTP), None);
        }
        assert_eq!(d.sizes(), (1, 1, 1));
        assert_eq!(d.resolve(real, &SRTP), Some(Resolved::Mapped(victim)));
        d.check_invariants();
    }

    #[test]
    fn verified_addresses_are_capped_least_recently_verified_first() {
        let mut d = Demux::default();
        let a = ConnId(7);
        d.register(a, "u".into());
        let live = addr(5999);
        d.verified(live, a);
        for port in 0..40u16 {
            // The live path's consent checks keep refreshing it between new paths.
            d.verified(addr(6000 + port), a);
            d.verified(live, a);
            d.check_invariants();
        }
        assert_eq!(d.sizes(), (MAX_VERIFIED_ADDRS_PER_CONN, 1, 1));
        assert_eq!(d.resolve(live, &SRTP), Some(Resolved::Mapped(a)));
        // The newest other paths are kept, the oldest displaced.
        assert_eq!(d.resolve(addr(6039), &SRTP), Some(Resolved::Mapped(a)));
        assert_eq!(d.resolve(addr(6000), &SRTP), None);
        d.remove(a, "u");
        assert_eq!(d.sizes(), (0, 0, 0));
    }

    #[test]
    fn moving_an_address_between_connections_keeps_the_indexes_exact() {
        let mut d = Demux::default();
        let (a, b) = (ConnId(1), ConnId(2));
        d.register(a, "a".into());
        d.register(b, "b".into());
        for port in 0..MAX_VERIFIED_ADDRS_PER_CONN as u16 {
            d.verified(addr(7000 + port), a);
        }
        // B takes one of A's addresses; A's list shrinks, nothing is displaced from B.
        d.verified(addr(7003), b);
        d.check_invariants();
        assert_eq!(d.sizes(), (MAX_VERIFIED_ADDRS_PER_CONN, 2, 2));
        d.purge(a);
        d.check_invariants();
        assert_eq!(d.sizes(), (1, 1, 1));
        assert_eq!(d.resolve(addr(7003), &SRTP), Some(Resolved::Mapped(b)));
    }

    #[test]
    fn ipv6_sources_are_keys_like_any_other() {
        let mut d = Demux::default();
        d.register(ConnId(3), "v6".into());
        let src: SocketAddr = "[::1]:7000".parse().unwrap();
        assert_eq!(d.resolve(src, &stun_with_username("v6:c")), Some(Resolved::Check(ConnId(3))));
        d.verified(src, ConnId(3));
        assert_eq!(d.resolve(src, &SRTP), Some(Resolved::Mapped(ConnId(3))));
    }
}
