//! Identifier and secret generation, and the OpenTok session-id shape.

use crate::b64;
use crate::model::MediaMode;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS random source failing leaves no safe way to mint keys or ids.
    getrandom::fill(&mut buf).expect("operating system random source unavailable");
    buf
}

/// An 8-digit numeric API key (no leading zero), the shape OpenTok SDKs expect.
pub fn new_api_key() -> String {
    let n = u64::from_le_bytes(random_bytes::<8>());
    (10_000_000 + n % 90_000_000).to_string()
}

/// 160 random bits as 40 lowercase hex digits.
pub fn new_secret() -> String {
    hex::encode(random_bytes::<20>())
}

/// 128 random bits, hex: connection, stream and subscription ids.
pub fn new_id() -> String {
    let b = random_bytes::<16>();
    format!(
        "{}-{}-{}-{}-{}",
        hex::encode(&b[0..4]),
        hex::encode(&b[4..6]),
        hex::encode(&b[6..8]),
        hex::encode(&b[8..10]),
        hex::encode(&b[10..16])
    )
}

/// 256 random bits, URL-safe: the secret that lets a client resume its connection.
pub fn new_resume_token() -> String {
    b64::url_encode(random_bytes::<32>())
}

/// `1_` + base64url(`1~{apiKey}~{location}~{created ms}~{random}~{mode}~`). The Node SDK
/// decodes this and requires field 1 to be the API key before it will sign a token.
pub fn new_session_id(api_key: &str, location: Option<&str>, created_ms: i64, mode: MediaMode) -> String {
    let random = b64::url_encode(random_bytes::<18>());
    let mode = match mode {
        MediaMode::Relayed => "P",
        MediaMode::Routed => "R",
    };
    let raw = format!("1~{api_key}~{}~{created_ms}~{random}~{mode}~", location.unwrap_or(""));
    format!("1_{}", b64::url_encode(raw))
}

/// The API key a session id names, if it has the OpenTok shape.
pub fn api_key_of_session_id(session_id: &str) -> Option<String> {
    let body = session_id.get(2..)?;
    let raw = b64::url_decode(body)?;
    let raw = String::from_utf8(raw).ok()?;
    raw.split('~').nth(1).filter(|k| !k.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_carries_api_key_in_field_one() {
        let id = new_session_id("12345678", Some("10.1.2.3"), 1_700_000_000_000, MediaMode::Routed);
        assert!(id.starts_with("1_"));
        assert!(!id.contains('=') && !id.contains('+') && !id.contains('/'));
        assert_eq!(api_key_of_session_id(&id).as_deref(), Some("12345678"));
        let raw = String::from_utf8(b64::url_decode(&id[2..]).unwrap()).unwrap();
        let fields: Vec<_> = raw.split('~').collect();
        assert_eq!(&fields[..4], ["1", "12345678", "10.1.2.3", "1700000000000"]);
    }

    #[test]
    fn keys_and_secrets_have_their_shapes() {
        for _ in 0..100 {
            let k = new_api_key();
            assert_eq!(k.len(), 8);
            assert!(k.bytes().all(|b| b.is_ascii_digit()) && !k.starts_with('0'));
            let s = new_secret();
            assert_eq!(s.len(), 40);
            assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(new_id(), new_id());
    }

    #[test]
    fn foreign_ids_are_not_misread() {
        assert_eq!(api_key_of_session_id(""), None);
        assert_eq!(api_key_of_session_id("1_!!!"), None);
        assert_eq!(api_key_of_session_id(&format!("1_{}", b64::url_encode("nofields"))), None);
    }
}
