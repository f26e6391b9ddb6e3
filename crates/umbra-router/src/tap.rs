//! A test hook that sees what the router sees: every UDP datagram in and out, and every RTP
//! payload it forwards after DTLS-SRTP is removed. SRTP hides payloads from a raw packet
//! capture, so proving "the router never holds plaintext media" needs the decrypted frames as
//! the router handles them; this is where they are exposed.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TapDirection {
    /// A datagram the router received (still SRTP/DTLS/STUN encoded), whatever its source.
    Received,
    /// A received datagram the demux handed to a connection's ICE/DTLS/SRTP stack because the
    /// connection accepted it (a verified check, or traffic from a verified address).
    Delivered,
    /// A datagram the router sent.
    Sent,
    /// An RTP payload after SRTP decryption, as forwarded (once per publisher packet, not once
    /// per subscriber).
    ForwardedPayload,
}

/// Runs on the router thread for every datagram and payload: keep it cheap.
pub type PacketTap = Box<dyn Fn(TapDirection, &[u8]) + Send>;
