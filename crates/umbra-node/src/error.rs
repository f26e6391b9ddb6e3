//! Errors as the JavaScript side sees them: an `Error` whose `code` is the name of the binding's
//! `ErrorCode` (`"InvalidEncryptionSecret"`, ...), as the Kotlin and Swift native modules reject.

use umbra_ffi::{ErrorCode, UmbraError};

pub(crate) type JsError = napi::Error<String>;
pub(crate) type Result<T> = napi::Result<T, String>;

/// The name JavaScript matches on: the variant's name, identical in Kotlin and Swift.
pub(crate) fn code_name(code: ErrorCode) -> String {
    format!("{code:?}")
}

pub(crate) fn from_umbra(e: UmbraError) -> JsError {
    napi::Error::new(code_name(e.code()), e.to_string())
}

pub(crate) fn invalid(message: impl Into<String>) -> JsError {
    napi::Error::new(code_name(ErrorCode::InvalidParameter), format!("invalid parameter: {}", message.into()))
}

pub(crate) fn unknown_handle(kind: &str, handle: &str) -> JsError {
    invalid(format!("no {kind} with handle {handle:?} (destroyed, or never created)"))
}
