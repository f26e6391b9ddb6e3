//! Publisher settings of the simulcast era (issue 13), beside `publisher.rs` so that file does
//! not grow: whether camera video goes out as simulcast layers, and whether audio levels are
//! sent. New functions only; the settings object is opaque, so its layout is not part of the ABI.

use crate::errors::*;
use crate::ffi::guard;
use crate::publisher::otc_publisher_settings;

/// Applies `f` to the settings, or refuses NULL.
fn set(settings: *mut otc_publisher_settings, f: impl FnOnce(&mut otc_publisher_settings)) -> otc_status {
    // SAFETY: the caller passes NULL or live settings (the contract of every setter here).
    match unsafe { settings.as_mut() } {
        Some(s) => {
            f(s);
            OTC_SUCCESS
        }
        None => OTC_INVALID_PARAMETER,
    }
}

/// Whether raw VP8 camera video of at least 270 lines is sent as up to three simulcast layers in
/// routed sessions (`OTC_TRUE`, the default), so each subscriber can be forwarded the size it
/// asks for (`otc_subscriber_set_preferred_resolution`). Each layer costs an encoder.
/// `OTC_INVALID_PARAMETER` for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_settings_set_simulcast(
    settings: *mut otc_publisher_settings,
    enabled: otc_bool,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || set(settings, |s| s.options.simulcast = enabled != OTC_FALSE))
}

/// Whether the RFC 6464 level of each audio frame is sent (`OTC_TRUE`, the default), from which
/// the router finds the active speaker (`otc_session_set_active_speaker_callback`). The levels
/// travel in clear, outside end-to-end encryption: the router sees how loudly each participant
/// speaks. `OTC_FALSE` keeps that private; the publisher is then never the active speaker.
/// `OTC_INVALID_PARAMETER` for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_settings_set_audio_level(
    settings: *mut otc_publisher_settings,
    enabled: otc_bool,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || set(settings, |s| s.options.audio_level = enabled != OTC_FALSE))
}
