//! Base64 engines. OpenTok's formats mix alphabets and padding rules (T1 tokens are standard
//! base64 with padding, session ids and JWTs are URL-safe without), and SDKs differ in what they
//! emit, so decoding accepts padding or its absence while encoding follows each format exactly.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent);

/// URL-safe alphabet, no padding on encode, padding optional on decode.
pub const URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
/// Standard alphabet, padding optional on decode.
pub const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
/// Standard alphabet with padding, as T1 tokens are written.
pub const STANDARD: GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub fn url_encode(bytes: impl AsRef<[u8]>) -> String {
    URL.encode(bytes)
}

pub fn url_decode(text: &str) -> Option<Vec<u8>> {
    URL.decode(text).ok()
}
