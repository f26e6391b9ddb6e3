//! The router's ICE credentials, drawn from the operating system's CSPRNG.
//!
//! RFC 8445 §5.3 asks for unguessable credentials: at least 24 bits of random output in the
//! username fragment and at least 128 in the password. The password is what makes a
//! connectivity check authentic (MESSAGE-INTEGRITY is an HMAC-SHA1 keyed with it), and the
//! demux maps an address to a connection only after such a check (see `demux.rs`), so it must
//! not be predictable. str0m's `IceCreds::new()` draws from a non-cryptographic generator;
//! these come from `getrandom` (the kernel's `getrandom(2)`).
//!
//! The ufrag is not secret (it travels in clear in every check) but it names the connection
//! in the demux, so it is long enough that two live connections never share one by chance
//! (the engine re-draws on a collision anyway).

use str0m::IceCreds;

/// Characters of the ufrag and password: alphanumerics only. RFC 8839 also allows `+` and
/// `/`, but some stacks mishandle them in USERNAME; 62 symbols still give 5.95 bits each.
pub const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// 16 characters: 95 bits (RFC 8445: at least 24).
pub const UFRAG_LEN: usize = 16;
/// 32 characters: 190 bits (RFC 8445: at least 128; RFC 8839: at least 22 characters).
pub const PASSWORD_LEN: usize = 32;

/// Fresh local ICE credentials for one peer connection.
pub fn ice_credentials() -> Result<IceCreds, getrandom::Error> {
    Ok(IceCreds { ufrag: random_string(UFRAG_LEN)?, pass: random_string(PASSWORD_LEN)? })
}

/// `len` characters drawn uniformly from [`ALPHABET`]: bytes ≥ 248 (= 4 × 62) are rejected so
/// no character is more likely than another.
fn random_string(len: usize) -> Result<String, getrandom::Error> {
    const LIMIT: u8 = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut out = String::with_capacity(len);
    // Rejection discards 8 bytes in 256 on average; one refill almost always suffices.
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf)?;
        for &b in &buf {
            if b < LIMIT && out.len() < len {
                out.push(ALPHABET[(b % ALPHABET.len() as u8) as usize] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_alphabet() {
        let c = ice_credentials().unwrap();
        assert_eq!(c.ufrag.len(), UFRAG_LEN);
        assert_eq!(c.pass.len(), PASSWORD_LEN);
        assert!(c.ufrag.bytes().chain(c.pass.bytes()).all(|b| ALPHABET.contains(&b)));
        // Entropy per the RFC's minimums.
        let bits = |n: usize| n as f64 * (ALPHABET.len() as f64).log2();
        assert!(bits(UFRAG_LEN) >= 24.0 && bits(PASSWORD_LEN) >= 128.0);
    }

    #[test]
    fn every_symbol_is_drawn_and_none_dominates() {
        // 62 symbols over 64 000 draws: ~1032 each; a biased mapping (e.g. `b % 62` without
        // rejection, where the first 8 symbols get 5/256 instead of 4/256) would stand out.
        let mut counts = [0u32; 62];
        let s = random_string(64_000).unwrap();
        for b in s.bytes() {
            counts[ALPHABET.iter().position(|&a| a == b).unwrap()] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 850 && *max < 1220, "{counts:?}");
    }
}
