//! Simulcast-era controls (issue 13): what a subscriber wants of a routed stream's video, and
//! who speaks. New functions only: `otc_subscriber_callbacks` and `otc_session_callbacks` keep
//! their size and layout, so applications built against an earlier header run unchanged.

use std::ffi::{c_char, c_int, c_void};

use umbra_client::{ClientError, MAX_PREFERRED_FRAME_RATE, MAX_PREFERRED_SIDE, VideoPreference};

use crate::errors::*;
use crate::ffi::{AppPtr, guard, lock, ref_arg};
use crate::session::{otc_session, session_arg};
use crate::subscriber::otc_subscriber;

/// The frame rate of `otc_subscriber_set_preferred_framerate`: 0 or less is no limit, a
/// fraction rounds up (asking for 7.5 gets at least 8), above 240 or NaN is refused.
fn frame_rate_arg(fps: f32) -> Result<Option<u32>, ()> {
    if fps.is_nan() || fps > MAX_PREFERRED_FRAME_RATE as f32 {
        return Err(());
    }
    Ok((fps > 0.0).then(|| fps.ceil() as u32))
}

/// Records a wish and, when subscribed, passes it on.
fn set_wish(subscriber: *mut otc_subscriber, change: impl FnOnce(&mut VideoPreference)) -> otc_status {
    // SAFETY: the caller passes NULL or a live subscriber.
    let Some(s) = (unsafe { ref_arg(subscriber) }) else {
        return OTC_INVALID_PARAMETER;
    };
    let core = s.core();
    let (before, wishes) = {
        let mut w = lock(&core.wishes);
        let before = *w;
        change(&mut w);
        (before, *w)
    };
    let Some((inner, id)) = core.subscribed_in() else {
        return OTC_SUCCESS;
    };
    match inner.with_native(|native| wishes.apply_changes(&before, native, id)) {
        Some(Ok(())) | None => OTC_SUCCESS,
        Some(Err(ClientError::InvalidArgument(_))) => OTC_INVALID_PARAMETER,
        // The session thread is gone: the subscription is over, nothing to tell.
        Some(Err(_)) => OTC_SUCCESS,
    }
}

/// The largest picture wanted of this subscriber's video, `0, 0` for no limit (OpenTok's
/// `setPreferredResolution`). In a routed session the router then forwards the smallest
/// simulcast layer at least this large in both directions (or the largest layer). It may be set
/// before or after `otc_session_subscribe`; it is kept across reconnections. Only one of width
/// and height 0 is `OTC_INVALID_PARAMETER`, as is NULL. No effect in relayed sessions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_subscriber_set_preferred_resolution(
    subscriber: *mut otc_subscriber,
    width: u32,
    height: u32,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        let resolution = match (width, height) {
            (0, 0) => None,
            (0, _) | (_, 0) => return OTC_INVALID_PARAMETER,
            (w, h) if w > MAX_PREFERRED_SIDE || h > MAX_PREFERRED_SIDE => return OTC_INVALID_PARAMETER,
            (w, h) => Some((w, h)),
        };
        set_wish(subscriber, |w| w.resolution = resolution)
    })
}

/// The most frames per second wanted of this subscriber's video (OpenTok's
/// `setPreferredFrameRate`); 0 (or less) for no limit, fractions round up. As
/// `otc_subscriber_set_preferred_resolution`; above 240 or NaN is `OTC_INVALID_PARAMETER`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_subscriber_set_preferred_framerate(
    subscriber: *mut otc_subscriber,
    frame_rate: f32,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || match frame_rate_arg(frame_rate) {
        Ok(rate) => set_wish(subscriber, |w| w.frame_rate = rate),
        Err(()) => OTC_INVALID_PARAMETER,
    })
}

/// Whether to receive this subscriber's video (OpenTok's `subscribeToVideo`); `OTC_TRUE` by
/// default. With `OTC_FALSE` the router sends no video to it (audio continues) in a routed
/// session. As `otc_subscriber_set_preferred_resolution`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_subscriber_set_subscribe_to_video(
    subscriber: *mut otc_subscriber,
    subscribe_to_video: otc_bool,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || set_wish(subscriber, |w| w.video = subscribe_to_video != OTC_FALSE))
}

/// Called when the loudest stream of a routed session changes (ranked by the audio levels
/// publishers send): `stream_id` and `connection_id` of the stream now speaking, both NULL when
/// nobody speaks any more. The strings are valid during the call. Runs on the session's dispatch
/// thread like the session callbacks.
pub type otc_session_active_speaker_callback = Option<
    unsafe extern "C" fn(
        session: *mut otc_session,
        user_data: *mut c_void,
        stream_id: *const c_char,
        connection_id: *const c_char,
    ),
>;

/// The callback and its `user_data`.
pub(crate) type SpeakerCallback = AppPtr<(otc_session_active_speaker_callback, *mut c_void)>;

/// Sets (or, with a NULL `callback`, removes) the active speaker callback; `user_data` is
/// passed back to it. Takes effect for the next change. `OTC_INVALID_PARAMETER` for a NULL
/// session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_set_active_speaker_callback(
    session: *mut otc_session,
    callback: otc_session_active_speaker_callback,
    user_data: *mut c_void,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or a live session.
        let Some(inner) = (unsafe { session_arg(session) }) else {
            return OTC_INVALID_PARAMETER;
        };
        *lock(&inner.speaker_callback) = callback.is_some().then_some(AppPtr((callback, user_data)));
        OTC_SUCCESS
    })
}

/// Called when what the router forwards of this subscriber's video changes (routed sessions
/// only), after a preference or a change of the subscriber's bandwidth: `rid` names the simulcast
/// layer now forwarded (NULL for a stream without rid layers, such as VP9 or AV1 SVC),
/// `temporal_layer` the highest temporal layer forwarded (-1: all of them), and `paused` is
/// `OTC_TRUE` while no video is forwarded at all (`otc_subscriber_set_subscribe_to_video`
/// with `OTC_FALSE`, or no layer fits). `rid` is valid during the call. Runs on the session's
/// dispatch thread like the subscriber callbacks.
pub type otc_subscriber_video_layer_callback = Option<
    unsafe extern "C" fn(
        subscriber: *mut otc_subscriber,
        user_data: *mut c_void,
        rid: *const c_char,
        temporal_layer: c_int,
        paused: otc_bool,
    ),
>;

/// The callback and its `user_data`.
pub(crate) type LayerCallback = AppPtr<(otc_subscriber_video_layer_callback, *mut c_void)>;

/// Sets (or, with a NULL `callback`, removes) the video layer callback; `user_data` is passed
/// back to it. Before or after `otc_session_subscribe`; takes effect for the next change.
/// `OTC_INVALID_PARAMETER` for a NULL subscriber.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_subscriber_set_video_layer_callback(
    subscriber: *mut otc_subscriber,
    callback: otc_subscriber_video_layer_callback,
    user_data: *mut c_void,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or a live subscriber.
        let Some(s) = (unsafe { ref_arg(subscriber) }) else {
            return OTC_INVALID_PARAMETER;
        };
        *lock(&s.core().layer_callback) = callback.is_some().then_some(AppPtr((callback, user_data)));
        OTC_SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rates_round_up_and_zero_means_no_limit() {
        assert_eq!(frame_rate_arg(0.0), Ok(None));
        assert_eq!(frame_rate_arg(-3.0), Ok(None));
        assert_eq!(frame_rate_arg(7.5), Ok(Some(8)));
        assert_eq!(frame_rate_arg(15.0), Ok(Some(15)));
        assert_eq!(frame_rate_arg(240.0), Ok(Some(240)));
        assert_eq!(frame_rate_arg(240.5), Err(()));
        assert_eq!(frame_rate_arg(f32::NAN), Err(()));
    }
}
