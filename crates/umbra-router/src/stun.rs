//! Just enough STUN (RFC 8489) to find the peer connection a binding request names: the
//! USERNAME attribute of a connectivity check is `<receiver ufrag>:<sender ufrag>` (RFC 8445
//! §7.2.2), and the receiver's ufrag is the one the router put in its answer, which identifies
//! the connection. The ufrag is in clear and proves nothing: integrity is NOT checked here,
//! and a USERNAME alone maps no address. The engine asks the named connection to verify the
//! MESSAGE-INTEGRITY (`Rtc::accepts`) before handing the check over or mapping its source;
//! see `demux.rs`.

const HEADER_LEN: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;
/// RFC 8489 caps USERNAME at 509 bytes (< 763 in practice); anything longer is not ours.
const MAX_USERNAME_LEN: usize = 513;

/// True when a datagram is STUN by the RFC 7983 first-byte rule (0..=3) and has the magic
/// cookie. DTLS (20..=63) and SRTP/SRTCP (128..=191) never match.
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] < 4 && datagram[4..8] == MAGIC_COOKIE
}

/// The local (receiver) ufrag of a STUN message's USERNAME, i.e. the part before the first
/// colon. `None` when the datagram is not STUN, has no USERNAME, or is malformed.
pub fn local_ufrag(datagram: &[u8]) -> Option<&str> {
    let username = username(datagram)?;
    let (local, _remote) = username.split_once(':')?;
    if local.is_empty() {
        return None;
    }
    Some(local)
}

/// The USERNAME attribute of a STUN message, walking attributes within the declared length.
pub fn username(datagram: &[u8]) -> Option<&str> {
    if !is_stun(datagram) {
        return None;
    }
    let declared = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    // The message length excludes the header and is always a multiple of 4.
    if !declared.is_multiple_of(4) || HEADER_LEN + declared > datagram.len() {
        return None;
    }
    let mut attrs = &datagram[HEADER_LEN..HEADER_LEN + declared];
    while attrs.len() >= 4 {
        let kind = u16::from_be_bytes([attrs[0], attrs[1]]);
        let len = u16::from_be_bytes([attrs[2], attrs[3]]) as usize;
        let padded = len.div_ceil(4) * 4;
        if 4 + len > attrs.len() {
            return None;
        }
        if kind == ATTR_USERNAME {
            if len > MAX_USERNAME_LEN {
                return None;
            }
            return std::str::from_utf8(&attrs[4..4 + len]).ok();
        }
        // The last attribute's padding may be absent in sloppy encoders; stop cleanly.
        attrs = attrs.get(4 + padded..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binding request with the given attributes (type, value), padded as RFC 8489 says.
    fn binding_request(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in attrs {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(body.len() as u16).to_be_bytes());
        msg.extend_from_slice(&MAGIC_COOKIE);
        msg.extend_from_slice(&[7u8; 12]);
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn finds_local_ufrag_after_other_attributes() {
        let msg = binding_request(&[
            (0x8029, &[1, 2, 3, 4, 5, 6, 7, 8]), // ICE-CONTROLLED
            (ATTR_USERNAME, b"RtrUfrag:cli"),
            (0x0024, &[0, 0, 0, 1]), // PRIORITY
        ]);
        assert!(is_stun(&msg));
        assert_eq!(username(&msg), Some("RtrUfrag:cli"));
        assert_eq!(local_ufrag(&msg), Some("RtrUfrag"));
    }

    #[test]
    fn odd_length_username_is_padded() {
        let msg = binding_request(&[(ATTR_USERNAME, b"abc:de"), (0x0024, &[0, 0, 0, 1])]);
        assert_eq!(local_ufrag(&msg), Some("abc"));
    }

    #[test]
    fn rejects_non_stun_and_malformed() {
        // DTLS handshake record and an SRTP packet.
        assert_eq!(local_ufrag(&[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(local_ufrag(&[0x80; 40]), None);
        // No USERNAME.
        assert_eq!(local_ufrag(&binding_request(&[(0x0024, &[0, 0, 0, 1])])), None);
        // USERNAME without a colon or with an empty local part.
        assert_eq!(local_ufrag(&binding_request(&[(ATTR_USERNAME, b"nocolon")])), None);
        assert_eq!(local_ufrag(&binding_request(&[(ATTR_USERNAME, b":remote")])), None);
        // Declared length beyond the datagram.
        let mut msg = binding_request(&[(ATTR_USERNAME, b"a:b")]);
        msg[3] = 200;
        assert_eq!(local_ufrag(&msg), None);
        // Attribute length beyond the message.
        let mut msg = binding_request(&[(ATTR_USERNAME, b"a:b")]);
        msg[23] = 100;
        assert_eq!(local_ufrag(&msg), None);
        // Wrong cookie.
        let mut msg = binding_request(&[(ATTR_USERNAME, b"a:b")]);
        msg[4] = 0;
        assert_eq!(local_ufrag(&msg), None);
        // Truncated header and not UTF-8.
        assert_eq!(local_ufrag(&[0, 1, 0]), None);
        assert_eq!(local_ufrag(&binding_request(&[(ATTR_USERNAME, &[0xff, b':', b'a'])])), None);
    }
}
