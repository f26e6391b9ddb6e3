//! `otc_subscriber`: receives one stream, decoded, decrypted in end-to-end encrypted sessions.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, Weak};

use umbra_client::{ClientError, SubscriberId};

use crate::errors::*;
use crate::ffi::{AppPtr, Gate, guard, lock, ref_arg};
use crate::frame::otc_video_frame;
use crate::session::{Job, SessionInner, otc_session, session_arg};
use crate::stream::{c_text, otc_stream};

/// Decoded audio handed to `on_audio_data`: signed 16-bit samples, 48 kHz, mono, 20 ms.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct otc_audio_data {
    /// `number_of_samples * number_of_channels` `int16_t` values, valid during the call.
    pub sample_buffer: *const c_void,
    pub bits_per_sample: c_int,
    pub sample_rate: c_int,
    pub number_of_channels: usize,
    pub number_of_samples: usize,
}

impl otc_audio_data {
    pub(crate) fn mono_48k(samples: &[i16]) -> Self {
        Self {
            sample_buffer: samples.as_ptr().cast(),
            bits_per_sample: 16,
            sample_rate: 48_000,
            number_of_channels: 1,
            number_of_samples: samples.len(),
        }
    }
}

/// Subscriber callbacks. Every member may be NULL. They run on the dispatch thread of the
/// session the subscriber is subscribed in.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct otc_subscriber_callbacks {
    /// The media connection is up. `stream` is the subscriber's (see `otc_subscriber_get_stream`).
    pub on_connected: Option<
        unsafe extern "C" fn(subscriber: *mut otc_subscriber, user_data: *mut c_void, stream: *const otc_stream),
    >,
    /// The subscription ended (the stream ended or the session disconnected).
    pub on_disconnected: Option<unsafe extern "C" fn(subscriber: *mut otc_subscriber, user_data: *mut c_void)>,
    /// A decoded I420 picture. `frame` is valid during the call only; keep it with
    /// `otc_video_frame_copy`.
    pub on_render_frame: Option<
        unsafe extern "C" fn(subscriber: *mut otc_subscriber, user_data: *mut c_void, frame: *const otc_video_frame),
    >,
    /// Decoded audio (valid during the call). It also goes to the audio device, if one is set.
    pub on_audio_data: Option<
        unsafe extern "C" fn(
            subscriber: *mut otc_subscriber,
            user_data: *mut c_void,
            audio_data: *const otc_audio_data,
        ),
    >,
    /// A subscriber error, e.g. `OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISMATCH`,
    /// `OTC_SUBSCRIBER_STREAM_NOT_ENCRYPTED` (the publisher declares end-to-end encryption but
    /// sends plain media; this is its only signal, there is no separate callback) or
    /// `OTC_SUBSCRIBER_DECRYPTION_INTERNAL_ERROR`. `error_string` is valid during the call.
    pub on_error: Option<
        unsafe extern "C" fn(
            subscriber: *mut otc_subscriber,
            user_data: *mut c_void,
            error_string: *const c_char,
            error: otc_subscriber_error_code,
        ),
    >,
    /// The stream's frames stopped decrypting: the publisher uses another secret. Called once
    /// (right after `on_error` with `OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISMATCH`) until
    /// `on_encryption_secret_match`.
    pub on_encryption_secret_mismatch:
        Option<unsafe extern "C" fn(subscriber: *mut otc_subscriber, user_data: *mut c_void)>,
    /// After a mismatch (or `OTC_SUBSCRIBER_STREAM_NOT_ENCRYPTED`), frames decrypt again (a
    /// secret changed to match, or the publisher started encrypting).
    pub on_encryption_secret_match:
        Option<unsafe extern "C" fn(subscriber: *mut otc_subscriber, user_data: *mut c_void)>,
    /// Passed back to every callback; the SDK never dereferences it.
    pub user_data: *mut c_void,
    /// Must be NULL.
    pub reserved: *mut c_void,
}

/// A subscriber (opaque). Made by `otc_subscriber_new`, freed by `otc_subscriber_delete`.
pub struct otc_subscriber {
    core: Arc<SubCore>,
}

pub(crate) struct SubCore {
    handle: AtomicPtr<otc_subscriber>,
    callbacks: AppPtr<otc_subscriber_callbacks>,
    gate: Gate,
    stream: Box<otc_stream>,
    /// The session (by address) and native id while subscribed.
    subscribed: Mutex<Option<(usize, Weak<SessionInner>, SubscriberId)>>,
    /// `otc_subscriber_set_preferred_*` and `_set_subscribe_to_video`, applied on subscribing.
    pub(crate) wishes: Mutex<umbra_client::VideoPreference>,
    /// `otc_subscriber_set_video_layer_callback`.
    pub(crate) layer_callback: Mutex<Option<crate::video_preference::LayerCallback>>,
}

impl otc_subscriber {
    pub(crate) fn core(&self) -> &Arc<SubCore> {
        &self.core
    }
}

impl SubCore {
    /// The session it is subscribed in and its native id there.
    pub(crate) fn subscribed_in(&self) -> Option<(Arc<SessionInner>, SubscriberId)> {
        let st = lock(&self.subscribed);
        let (_, weak, id) = st.as_ref()?;
        Some((weak.upgrade()?, *id))
    }

    pub(crate) fn callbacks(&self) -> otc_subscriber_callbacks {
        self.callbacks.0
    }

    pub(crate) fn handle(&self) -> *mut otc_subscriber {
        self.handle.load(Ordering::Acquire)
    }

    pub(crate) fn stream_ptr(&self) -> *const otc_stream {
        &*self.stream
    }

    /// Runs `f` under the gate if this subscriber is still subscribed as `id` in session `key`.
    pub(crate) fn run_registered(&self, key: usize, id: SubscriberId, f: impl FnOnce(&SubCore)) {
        self.gate.run(|| lock(&self.subscribed).as_ref().is_some_and(|(k, _, i)| *k == key && *i == id), || f(self));
    }

    pub(crate) fn call_on_error(&self, e: &ClientError) {
        if let Some(f) = self.callbacks.0.on_error {
            let msg = c_text(&e.to_string());
            // SAFETY: an application callback with the documented arguments.
            unsafe { f(self.handle(), self.callbacks.0.user_data, msg.as_ptr(), subscriber_code(e)) }
        }
    }

    pub(crate) fn report_error(&self, e: &ClientError) {
        self.gate.run(|| true, || self.call_on_error(e));
    }

    pub(crate) fn forget_session(&self, inner: &Arc<SessionInner>) {
        let mut st = lock(&self.subscribed);
        if let Some((k, _, id)) = *st
            && k == inner.key()
        {
            *st = None;
            drop(st);
            crate::audio::render_release(id, k);
        }
    }
}

/// A subscriber to `stream` (copied: the subscriber keeps its own). `callbacks` (copied) may be
/// NULL for none. The caller owns the result and frees it with `otc_subscriber_delete`. NULL if
/// `stream` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_subscriber_new(
    stream: *const otc_stream,
    callbacks: *const otc_subscriber_callbacks,
) -> *mut otc_subscriber {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller passes NULL or a live stream and NULL or a valid table.
        let Some(stream) = (unsafe { ref_arg(stream) }) else {
            return std::ptr::null_mut();
        };
        // SAFETY: as above.
        let callbacks = unsafe { ref_arg(callbacks) }.copied().unwrap_or(otc_subscriber_callbacks {
            on_connected: None,
            on_disconnected: None,
            on_render_frame: None,
            on_audio_data: None,
            on_error: None,
            on_encryption_secret_mismatch: None,
            on_encryption_secret_match: None,
            user_data: std::ptr::null_mut(),
            reserved: std::ptr::null_mut(),
        });
        let core = Arc::new(SubCore {
            handle: AtomicPtr::new(std::ptr::null_mut()),
            callbacks: AppPtr(callbacks),
            gate: Gate::default(),
            stream: Box::new(stream.duplicate()),
            subscribed: Mutex::new(None),
            wishes: Mutex::default(),
            layer_callback: Mutex::default(),
        });
        let handle = Box::into_raw(Box::new(otc_subscriber { core: core.clone() }));
        core.handle.store(handle, Ordering::Release);
        handle
    })
}

/// The subscriber's stream, owned by the subscriber (valid until it is deleted); NULL if
/// `subscriber` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_subscriber_get_stream(subscriber: *const otc_subscriber) -> *const otc_stream {
    guard(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live subscriber.
        unsafe { ref_arg(subscriber) }.map_or(std::ptr::null(), |s| s.core.stream_ptr())
    })
}

/// Subscribes in a connected session. `on_connected` and `on_render_frame` follow on the
/// session's dispatch thread. Returns `OTC_SUCCESS`, `OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISSING`
/// (also reported to `on_error`) in an end-to-end encrypted session without a secret,
/// `OTC_SUBSCRIBER_SESSION_DISCONNECTED` when not connected, `OTC_ILLEGAL_STATE` if already
/// subscribed, `OTC_INVALID_PARAMETER` for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_subscribe(
    session: *mut otc_session,
    subscriber: *mut otc_subscriber,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or live objects.
        let (Some(inner), Some(s)) = (unsafe { session_arg(session) }, unsafe { ref_arg(subscriber) }) else {
            return OTC_INVALID_PARAMETER;
        };
        let core = &s.core;
        // Lock order as in otc_session_publish: native, map, object state. The map stays
        // locked across `subscribe` so no event of the new id is dispatched before it is known.
        let result = inner.with_native(|native| {
            let mut map = lock(&inner.subscribers);
            let mut st = lock(&core.subscribed);
            if st.is_some() {
                return Err(None::<ClientError>);
            }
            let id = native.subscribe(core.stream.id_str()).map_err(Some)?;
            // Wishes were checked when set; the session thread keeps them until the
            // subscription exists.
            let _ = lock(&core.wishes).apply_changes(&Default::default(), native, id);
            map.insert(id, core.clone());
            *st = Some((inner.key(), Arc::downgrade(inner), id));
            Ok(id)
        });
        match result {
            Some(Ok(id)) => {
                crate::audio::render_acquire(id, inner.key());
                OTC_SUCCESS
            }
            Some(Err(Some(e))) => {
                inner.push_job(Job::SubscriberError(core.clone(), e.clone()));
                subscriber_code(&e) as otc_status
            }
            _ => OTC_ILLEGAL_STATE,
        }
    })
}

/// Stops receiving. When it returns, no callback of this subscriber for this session runs any
/// more (unless called from one: that one finishes). `OTC_ILLEGAL_STATE` if it is not
/// subscribed in this session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_unsubscribe(
    session: *mut otc_session,
    subscriber: *mut otc_subscriber,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or live objects.
        let (Some(inner), Some(s)) = (unsafe { session_arg(session) }, unsafe { ref_arg(subscriber) }) else {
            return OTC_INVALID_PARAMETER;
        };
        if unsubscribe(&s.core, Some(inner)) { OTC_SUCCESS } else { OTC_ILLEGAL_STATE }
    })
}

fn unsubscribe(core: &Arc<SubCore>, only: Option<&Arc<SessionInner>>) -> bool {
    let (key, weak, id) = match &*lock(&core.subscribed) {
        Some((k, w, id)) if only.is_none_or(|s| s.key() == *k) => (*k, w.clone(), *id),
        _ => return false,
    };
    if let Some(inner) = weak.upgrade() {
        inner.with_native(|native| {
            lock(&inner.subscribers).remove(&id);
            let _ = native.unsubscribe(id);
        });
    }
    {
        let mut st = lock(&core.subscribed);
        if st.as_ref().is_some_and(|(k, _, i)| *k == key && *i == id) {
            *st = None;
        }
    }
    // No lock held here: a callback in flight may call into the SDK.
    core.gate.quiesce();
    crate::audio::render_release(id, key);
    true
}

/// Unsubscribes (if subscribed) and frees the subscriber. No callback of it runs after this
/// returns. NULL gives `OTC_INVALID_PARAMETER`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_subscriber_delete(subscriber: *mut otc_subscriber) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        if subscriber.is_null() {
            return OTC_INVALID_PARAMETER;
        }
        // SAFETY: the caller passes a subscriber it owns, once.
        let s = unsafe { Box::from_raw(subscriber) };
        unsubscribe(&s.core, None);
        s.core.gate.kill();
        OTC_SUCCESS
    })
}
