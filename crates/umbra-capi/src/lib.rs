//! Umbra's C SDK: the `otc_*` API, in the shape of the Linux/macOS video SDK's, over the native
//! SDK (`umbra-client`). The C header `include/umbra/otc.h` is generated from this crate by
//! cbindgen (`tests/header.rs` fails when the committed header differs from what these
//! definitions generate). How to build and link a C app: `docs/c-sdk.md`.
//!
//! Rules every exported function follows:
//! - it never lets a Rust panic unwind into C (`ffi::guard` turns one into an error value);
//! - it checks every pointer argument: NULL gives `OTC_INVALID_PARAMETER` (or a NULL result);
//! - objects it returns are owned by the caller and freed by the matching `_delete` function,
//!   unless the documentation says the SDK owns them (pointers handed to callbacks, accessors).
//!
//! Threading: each session has one dispatch thread that reads the native SDK's event channel
//! and runs that session's callbacks (session, publisher and subscriber) one at a time.
#![allow(non_camel_case_types)]
// Every unsafe operation inside an `unsafe fn` gets its own block and SAFETY comment.
#![deny(unsafe_op_in_unsafe_fn)]
// The exported functions are `unsafe` only because C calls them with raw pointers; their one
// safety contract (each pointer is NULL or a live object of its type, strings are
// NUL-terminated, buffers hold the sizes stated) is the C one, stated once above and in the
// header, rather than in a `# Safety` section repeated on ninety functions.
#![allow(clippy::missing_safety_doc)]

mod audio;
mod errors;
mod ffi;
mod frame;
mod publish_options;
mod publisher;
mod session;
mod signal;
mod stream;
mod subscriber;
mod video_preference;

use std::ffi::c_void;

pub use audio::*;
pub use errors::*;
pub use frame::*;
pub use publish_options::*;
pub use publisher::*;
pub use session::{
    otc_session, otc_session_callbacks, otc_session_connect, otc_session_delete, otc_session_disconnect,
    otc_session_get_id, otc_session_new, otc_session_new_with_settings, otc_session_send_signal,
    otc_session_send_signal_to_connection, otc_session_set_encryption_secret, otc_session_settings,
    otc_session_settings_delete, otc_session_settings_new, otc_session_settings_set_bind_ip,
    otc_session_settings_set_server_url,
};
pub use signal::{otc_session_set_signal_callbacks, otc_session_signal_callbacks, otc_signal_decryption_error};
pub use stream::*;
pub use subscriber::*;
pub use video_preference::*;

/// Version of this SDK, e.g. "0.1.0" (static string).
#[unsafe(no_mangle)]
pub extern "C" fn otc_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Call once before any other function (`reserved` must be NULL). Umbra needs no global set-up
/// beyond this; it returns `OTC_SUCCESS`.
#[unsafe(no_mangle)]
pub extern "C" fn otc_init(reserved: *mut c_void) -> otc_status {
    guard_init(reserved)
}

fn guard_init(reserved: *mut c_void) -> otc_status {
    ffi::guard(OTC_INTERNAL_ERROR, || if reserved.is_null() { OTC_SUCCESS } else { OTC_INVALID_PARAMETER })
}

/// Call once at the end, after deleting every session, publisher and subscriber: removes the
/// audio device (calling its `destroy`). `OTC_ILLEGAL_STATE` while a publisher or subscriber
/// still uses the audio device.
#[unsafe(no_mangle)]
pub extern "C" fn otc_destroy() -> otc_status {
    ffi::guard(OTC_INTERNAL_ERROR, audio::reset)
}
