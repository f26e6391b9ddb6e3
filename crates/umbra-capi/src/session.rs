//! `otc_session`: a connection to one Umbra session, and the dispatch thread that turns the
//! native SDK's events into the application's callbacks.
//!
//! Threads: the native SDK runs one session thread (networking, codecs, encryption) that sends
//! `umbra_client::Event`s over a channel. This module adds one dispatch thread per session that
//! reads that channel and calls the callbacks, one at a time, in event order. Callbacks never
//! run on the application's own threads and never while an SDK lock is held, so they may call
//! any `otc_*` function except `otc_session_delete` on their own session.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{CString, c_char, c_int, c_void};
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use umbra_client::{
    ClientError, Event, PropertyChanged, PublisherEvent, PublisherId, Session, SessionConfig, Stream, SubscriberEvent,
    SubscriberId,
};

use crate::errors::*;
use crate::ffi::{AppPtr, guard, lock, ref_arg, str_arg};
use crate::frame::otc_video_frame;
use crate::publisher::PubCore;
use crate::stream::{c_text, dimension, otc_connection, otc_stream};
use crate::subscriber::{SubCore, otc_audio_data};

/// A session (opaque). Made by `otc_session_new` / `otc_session_new_with_settings`, freed by
/// `otc_session_delete`.
pub struct otc_session {
    inner: Arc<SessionInner>,
    dispatch: Option<JoinHandle<()>>,
}

/// Session callbacks. Every member may be NULL. They run on the session's dispatch thread;
/// pointers they receive are owned by the SDK (see each member).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct otc_session_callbacks {
    /// Connected; the session can now publish and subscribe.
    pub on_connected: Option<unsafe extern "C" fn(session: *mut otc_session, user_data: *mut c_void)>,
    /// Disconnected (after `otc_session_disconnect`, or when the server or network ended the
    /// connection). No session callback follows until the next `otc_session_connect`.
    pub on_disconnected: Option<unsafe extern "C" fn(session: *mut otc_session, user_data: *mut c_void)>,
    /// Another participant connected. `connection` is valid until `on_connection_dropped` for
    /// it returns or the session disconnects; keep it longer with `otc_connection_copy`.
    pub on_connection_created: Option<
        unsafe extern "C" fn(session: *mut otc_session, user_data: *mut c_void, connection: *const otc_connection),
    >,
    /// A participant left. `connection` is valid during the call.
    pub on_connection_dropped: Option<
        unsafe extern "C" fn(session: *mut otc_session, user_data: *mut c_void, connection: *const otc_connection),
    >,
    /// Another participant's stream appeared (subscribe to it with `otc_subscriber_new`).
    /// `stream` is valid until `on_stream_dropped` for it returns or the session disconnects;
    /// keep it longer with `otc_stream_copy`.
    pub on_stream_received:
        Option<unsafe extern "C" fn(session: *mut otc_session, user_data: *mut c_void, stream: *const otc_stream)>,
    /// A stream ended. `stream` is valid during the call.
    pub on_stream_dropped:
        Option<unsafe extern "C" fn(session: *mut otc_session, user_data: *mut c_void, stream: *const otc_stream)>,
    /// A signal arrived. `type` and `signal` are valid during the call; `connection` (the
    /// sender) is NULL when the server sent it. In an end-to-end encrypted session this gets
    /// decrypted signals and plain ones alike (REST signals, clients that do not encrypt):
    /// `otc_session_set_signal_callbacks` tells them apart.
    pub on_signal_received: Option<
        unsafe extern "C" fn(
            session: *mut otc_session,
            user_data: *mut c_void,
            r#type: *const c_char,
            signal: *const c_char,
            connection: *const otc_connection,
        ),
    >,
    /// A session error, e.g. `OTC_SESSION_ENCRYPTION_SECRET_MISSING` after connecting to an
    /// end-to-end encrypted session without a secret (the session stays connected), or
    /// `OTC_SESSION_AUTHORIZATION_FAILURE`. `error_string` is valid during the call.
    pub on_error: Option<
        unsafe extern "C" fn(
            session: *mut otc_session,
            user_data: *mut c_void,
            error_string: *const c_char,
            error: otc_session_error_code,
        ),
    >,
    /// A stream's publisher started or stopped sending audio (e.g. it was forced to mute).
    /// `stream` is the one `on_stream_received` gave, already updated (`otc_stream_has_audio`
    /// says the same as `has_audio`).
    pub on_stream_has_audio_changed: Option<
        unsafe extern "C" fn(
            session: *mut otc_session,
            user_data: *mut c_void,
            stream: *const otc_stream,
            has_audio: otc_bool,
        ),
    >,
    /// A stream's publisher started or stopped sending video, as `on_stream_has_audio_changed`.
    pub on_stream_has_video_changed: Option<
        unsafe extern "C" fn(
            session: *mut otc_session,
            user_data: *mut c_void,
            stream: *const otc_stream,
            has_video: otc_bool,
        ),
    >,
    /// A stream's publisher reported a new video size (`otc_stream_get_video_width` /
    /// `_height` say the same).
    pub on_stream_video_dimensions_changed: Option<
        unsafe extern "C" fn(
            session: *mut otc_session,
            user_data: *mut c_void,
            stream: *const otc_stream,
            width: c_int,
            height: c_int,
        ),
    >,
    /// Passed back to every callback; the SDK never dereferences it.
    pub user_data: *mut c_void,
    /// Must be NULL (kept for the shape of the callback tables).
    pub reserved: *mut c_void,
}

/// Settings for `otc_session_new_with_settings` (opaque). Made by `otc_session_settings_new`,
/// freed by `otc_session_settings_delete`; the session copies what it needs, so the settings may
/// be freed right after creating the session.
pub struct otc_session_settings {
    config: SessionConfig,
}

/// Work the dispatch thread runs besides native events: errors of `otc_session_publish` /
/// `otc_session_subscribe` that the application must also see in `on_error`.
pub(crate) enum Job {
    PublisherError(Arc<PubCore>, ClientError),
    SubscriberError(Arc<SubCore>, ClientError),
}

pub(crate) struct SessionInner {
    /// The native session; `None` once `otc_session_delete` has begun.
    native: Mutex<Option<Session>>,
    callbacks: AppPtr<otc_session_callbacks>,
    session_id: CString,
    pub(crate) publishers: Mutex<HashMap<PublisherId, Arc<PubCore>>>,
    pub(crate) subscribers: Mutex<HashMap<SubscriberId, Arc<SubCore>>>,
    jobs: Mutex<Vec<Job>>,
    /// This client's connection id once connected (for the streams its publishers create).
    pub(crate) connection_id: Mutex<String>,
    /// `otc_session_set_signal_callbacks` (signals with their encryption status).
    pub(crate) signal_callbacks: Mutex<Option<AppPtr<crate::signal::otc_session_signal_callbacks>>>,
    /// `otc_session_set_active_speaker_callback`.
    pub(crate) speaker_callback: Mutex<Option<crate::video_preference::SpeakerCallback>>,
}

thread_local! {
    /// On a dispatch thread: the address of its session (0 elsewhere). Compared instead of
    /// `std::thread::current()`, which would allocate a thread record for the application's
    /// own threads that std never frees (valgrind reports it as possibly lost).
    static DISPATCHING: Cell<usize> = const { Cell::new(0) };
}

impl SessionInner {
    pub(crate) fn key(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }

    pub(crate) fn push_job(&self, job: Job) {
        lock(&self.jobs).push(job);
    }

    /// Runs `f` on the native session; `NotConnected`-style refusal when it is being deleted.
    pub(crate) fn with_native<T>(&self, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
        lock(&self.native).as_mut().map(f)
    }
}

/// Session settings with the defaults: server `$UMBRA_URL` if set, else
/// `http://127.0.0.1:8080`; media sockets on 127.0.0.1. Free with `otc_session_settings_delete`.
#[unsafe(no_mangle)]
pub extern "C" fn otc_session_settings_new() -> *mut otc_session_settings {
    guard(std::ptr::null_mut(), || Box::into_raw(Box::new(otc_session_settings { config: default_config() })))
}

fn default_config() -> SessionConfig {
    let mut c = SessionConfig::default();
    if let Ok(url) = std::env::var("UMBRA_URL")
        && !url.is_empty()
    {
        c.server_url = url;
    }
    c
}

/// Frees settings made by `otc_session_settings_new`. NULL gives `OTC_INVALID_PARAMETER`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_settings_delete(settings: *mut otc_session_settings) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        if settings.is_null() {
            return OTC_INVALID_PARAMETER;
        }
        // SAFETY: the caller passes settings it owns, once.
        drop(unsafe { Box::from_raw(settings) });
        OTC_SUCCESS
    })
}

/// Sets the server: the `http://host:port` URL of `umbra serve` (Umbra-specific; there is no
/// vendor cloud to default to). `OTC_INVALID_PARAMETER` for NULL arguments or a URL that does
/// not start with `http://` or `https://`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_settings_set_server_url(
    settings: *mut otc_session_settings,
    url: *const c_char,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or live settings it owns, and NULL or a C string.
        let (Some(s), Some(url)) = (unsafe { settings.as_mut() }, unsafe { str_arg(url) }) else {
            return OTC_INVALID_PARAMETER;
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return OTC_INVALID_PARAMETER;
        }
        s.config.server_url = url.to_string();
        OTC_SUCCESS
    })
}

/// Sets the local IP address media sockets bind to (default 127.0.0.1; use the host's address
/// to reach a server on another machine). `OTC_INVALID_PARAMETER` for NULL or an unparsable IP.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_settings_set_bind_ip(
    settings: *mut otc_session_settings,
    ip: *const c_char,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or live settings it owns, and NULL or a C string.
        let (Some(s), Some(ip)) = (unsafe { settings.as_mut() }, unsafe { str_arg(ip) }) else {
            return OTC_INVALID_PARAMETER;
        };
        match ip.parse::<IpAddr>() {
            Ok(ip) => {
                s.config.bind_ip = ip;
                OTC_SUCCESS
            }
            Err(_) => OTC_INVALID_PARAMETER,
        }
    })
}

/// A new session with default settings (see `otc_session_settings_new`). The callbacks table is
/// copied. The caller owns the result and frees it with `otc_session_delete`. NULL if an
/// argument is NULL or not UTF-8, or the dispatch thread cannot start.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_new(
    api_key: *const c_char,
    session_id: *const c_char,
    callbacks: *const otc_session_callbacks,
) -> *mut otc_session {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller passes NULL or valid C strings and a valid callbacks table.
        unsafe { new_session(api_key, session_id, callbacks, default_config()) }
    })
}

/// Like `otc_session_new`, with settings (server URL, media bind address). `settings` is only
/// read during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_new_with_settings(
    api_key: *const c_char,
    session_id: *const c_char,
    callbacks: *const otc_session_callbacks,
    settings: *const otc_session_settings,
) -> *mut otc_session {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller passes NULL or live settings.
        let Some(settings) = (unsafe { ref_arg(settings) }) else {
            return std::ptr::null_mut();
        };
        // SAFETY: as for otc_session_new.
        unsafe { new_session(api_key, session_id, callbacks, settings.config.clone()) }
    })
}

/// # Safety
/// Arguments as for `otc_session_new`.
unsafe fn new_session(
    api_key: *const c_char,
    session_id: *const c_char,
    callbacks: *const otc_session_callbacks,
    config: SessionConfig,
) -> *mut otc_session {
    // SAFETY: the caller passes NULL or valid C strings and NULL or a valid table.
    let (Some(api_key), Some(session_id), Some(callbacks)) =
        (unsafe { str_arg(api_key) }, unsafe { str_arg(session_id) }, unsafe { ref_arg(callbacks) })
    else {
        return std::ptr::null_mut();
    };
    let mut native = Session::new(api_key, session_id, config);
    let Some(events) = native.events() else {
        return std::ptr::null_mut();
    };
    let inner = Arc::new(SessionInner {
        native: Mutex::new(Some(native)),
        callbacks: AppPtr(*callbacks),
        session_id: c_text(session_id),
        publishers: Mutex::default(),
        subscribers: Mutex::default(),
        jobs: Mutex::default(),
        connection_id: Mutex::default(),
        signal_callbacks: Mutex::default(),
        speaker_callback: Mutex::default(),
    });
    let handle = Box::into_raw(Box::new(otc_session { inner: inner.clone(), dispatch: None }));
    let session_ptr = AppPtr(handle);
    let spawned = std::thread::Builder::new().name("umbra-dispatch".into()).spawn(move || {
        let session_ptr = session_ptr;
        DISPATCHING.with(|d| d.set(inner.key()));
        // Anything that panics in here is caught per event; this outer guard only keeps a
        // panic in the loop itself from unwinding out of the thread's entry point.
        guard((), || {
            Dispatcher { inner, session: session_ptr.0, streams: HashMap::new(), connections: HashMap::new() }
                .run(events)
        });
    });
    match spawned {
        Ok(t) => {
            // SAFETY: `handle` is the live box made above, not yet shared with the caller.
            unsafe { (*handle).dispatch = Some(t) };
            handle
        }
        Err(_) => {
            // SAFETY: the thread did not start, so nothing else holds `handle`.
            drop(unsafe { Box::from_raw(handle) });
            std::ptr::null_mut()
        }
    }
}

/// Borrows the session behind a handle.
///
/// # Safety
/// `session` is NULL or a live handle from `otc_session_new*`.
pub(crate) unsafe fn session_arg<'a>(session: *const otc_session) -> Option<&'a Arc<SessionInner>> {
    // SAFETY: as the caller guarantees.
    unsafe { ref_arg(session) }.map(|s| &s.inner)
}

/// The session id given to `otc_session_new`, owned by the session; NULL if `session` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_get_id(session: *const otc_session) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live session.
        unsafe { session_arg(session) }.map_or(std::ptr::null(), |s| s.session_id.as_ptr())
    })
}

/// Sets or changes the end-to-end encryption secret (8 to 256 Unicode characters), before
/// connecting or at any time after. Returns `OTC_SUCCESS`, or `OTC_SESSION_INVALID_ENCRYPTION_SECRET`
/// for a secret that breaks the rule (nothing changes then; `on_error` is not called),
/// `OTC_INVALID_PARAMETER` for NULL arguments or a secret that is not UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_set_encryption_secret(
    session: *mut otc_session,
    secret: *const c_char,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or a live session, and NULL or a C string.
        let Some(inner) = (unsafe { session_arg(session) }) else {
            return OTC_INVALID_PARAMETER;
        };
        // SAFETY: as above.
        let Some(secret) = (unsafe { str_arg(secret) }) else {
            // Bytes that are not UTF-8 are not "8 to 256 characters" either; NULL is a NULL.
            return if secret.is_null() {
                OTC_INVALID_PARAMETER
            } else {
                otc_session_error_code::OTC_SESSION_INVALID_ENCRYPTION_SECRET as otc_status
            };
        };
        match inner.with_native(|s| s.set_encryption_secret(secret)) {
            Some(Ok(())) => OTC_SUCCESS,
            Some(Err(e)) => session_code(&e) as otc_status,
            None => OTC_ILLEGAL_STATE,
        }
    })
}

/// Connects with a client token. Returns at once: `on_connected` (or `on_error` and
/// `on_disconnected`) follows on the dispatch thread. `OTC_SESSION_ILLEGAL_STATE` if already
/// connected or connecting.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_connect(session: *mut otc_session, token: *const c_char) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or a live session, and NULL or a C string.
        let (Some(inner), Some(token)) = (unsafe { session_arg(session) }, unsafe { str_arg(token) }) else {
            return OTC_INVALID_PARAMETER;
        };
        match inner.with_native(|s| s.connect(token)) {
            Some(Ok(())) => OTC_SUCCESS,
            Some(Err(e)) => session_code(&e) as otc_status,
            None => OTC_ILLEGAL_STATE,
        }
    })
}

/// Leaves the session and waits until the SDK's session thread has stopped; `on_disconnected`
/// follows on the dispatch thread. Publishers and subscribers of this session stop (they still
/// have to be deleted by the application). Disconnecting a session that is not connected
/// succeeds and does nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_disconnect(session: *mut otc_session) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or a live session.
        let Some(inner) = (unsafe { session_arg(session) }) else {
            return OTC_INVALID_PARAMETER;
        };
        match inner.with_native(Session::disconnect) {
            Some(()) => OTC_SUCCESS,
            None => OTC_ILLEGAL_STATE,
        }
    })
}

/// Sends a signal to everyone in the session. `type` may be empty; both strings are copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_send_signal(
    session: *mut otc_session,
    r#type: *const c_char,
    signal: *const c_char,
) -> otc_status {
    // SAFETY: forwarded as received.
    unsafe { otc_session_send_signal_to_connection(session, r#type, signal, std::ptr::null()) }
}

/// Sends a signal to one connection (to everyone when `connection` is NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_send_signal_to_connection(
    session: *mut otc_session,
    r#type: *const c_char,
    signal: *const c_char,
    connection: *const otc_connection,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or a live session, and NULL or C strings.
        let (Some(inner), Some(ty), Some(data)) =
            (unsafe { session_arg(session) }, unsafe { str_arg(r#type) }, unsafe { str_arg(signal) })
        else {
            return OTC_INVALID_PARAMETER;
        };
        // SAFETY: the caller passes NULL or a live connection.
        let to = unsafe { ref_arg(connection) }.map(|c| c.id_str().to_string());
        match inner.with_native(|s| s.send_signal(to.as_deref(), ty, data)) {
            Some(Ok(())) => OTC_SUCCESS,
            Some(Err(e)) => session_code(&e) as otc_status,
            None => OTC_ILLEGAL_STATE,
        }
    })
}

/// Disconnects (if connected), waits for the last callbacks (`on_disconnected` included) to
/// finish, and frees the session. Publishers and subscribers stay the application's to delete
/// (before or after). Must not be called from one of this session's callbacks
/// (`OTC_ILLEGAL_STATE`: the dispatch thread cannot wait for itself). NULL gives
/// `OTC_INVALID_PARAMETER`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_delete(session: *mut otc_session) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        if session.is_null() {
            return OTC_INVALID_PARAMETER;
        }
        // SAFETY: non-NULL; the caller passes a live session it owns.
        let s = unsafe { &mut *session };
        if DISPATCHING.with(Cell::get) == s.inner.key() {
            return OTC_ILLEGAL_STATE;
        }
        // Take the native session out before disconnecting, so callbacks that run meanwhile and
        // call back into this session get OTC_ILLEGAL_STATE instead of waiting on this lock.
        let native = lock(&s.inner.native).take();
        if let Some(mut native) = native {
            native.disconnect();
            // Dropping it drops the event channel's last sender: the dispatch thread delivers
            // what is queued and ends.
            drop(native);
        }
        if let Some(t) = s.dispatch.take() {
            let _ = t.join();
        }
        // Publishers and subscribers still registered here forget the session.
        let pubs: Vec<_> = lock(&s.inner.publishers).drain().map(|(_, p)| p).collect();
        for p in pubs {
            p.forget_session(&s.inner);
        }
        let subs: Vec<_> = lock(&s.inner.subscribers).drain().map(|(_, p)| p).collect();
        for sub in subs {
            sub.forget_session(&s.inner);
        }
        // SAFETY: the dispatch thread has ended, so nothing else refers to the handle.
        drop(unsafe { Box::from_raw(session) });
        OTC_SUCCESS
    })
}

/// How often the dispatch thread looks at its job queue when no event arrives.
const JOB_POLL: Duration = Duration::from_millis(20);

struct Dispatcher {
    inner: Arc<SessionInner>,
    session: *mut otc_session,
    /// Streams of the session, kept so the pointer passed to `on_stream_received` stays valid
    /// until `on_stream_dropped`.
    streams: HashMap<String, Box<otc_stream>>,
    /// Known connections and their data (for signals' senders and streams' connections).
    connections: HashMap<String, Box<otc_connection>>,
}

impl Dispatcher {
    fn run(mut self, events: Receiver<Event>) {
        loop {
            // Jobs come from calls the application made after seeing earlier callbacks, so the
            // events already queued when the jobs were taken go first: e.g. the session's
            // ENCRYPTION_SECRET_MISSING (sent with `connected`) before the publisher's, when the
            // application publishes from `on_connected`.
            let jobs = std::mem::take(&mut *lock(&self.inner.jobs));
            let mut ended = false;
            loop {
                match events.try_recv() {
                    Ok(event) => guard((), || self.event(event)),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        ended = true;
                        break;
                    }
                }
            }
            for job in jobs {
                guard((), || self.job(job));
            }
            if ended {
                break;
            }
            match events.recv_timeout(JOB_POLL) {
                Ok(event) => guard((), || self.event(event)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Jobs queued by calls that raced with the end.
        let jobs = std::mem::take(&mut *lock(&self.inner.jobs));
        for job in jobs {
            guard((), || self.job(job));
        }
    }

    fn cb(&self) -> &otc_session_callbacks {
        &self.inner.callbacks.0
    }

    fn job(&mut self, job: Job) {
        match job {
            Job::PublisherError(p, e) => p.report_error(&e),
            Job::SubscriberError(s, e) => s.report_error(&e),
        }
    }

    fn connection(&mut self, id: &str) -> &otc_connection {
        self.connections.entry(id.to_string()).or_insert_with(|| Box::new(otc_connection::new(id, "")))
    }

    fn event(&mut self, event: Event) {
        let (session, ud) = (self.session, self.cb().user_data);
        match event {
            Event::Connected { connection_id, .. } => {
                *lock(&self.inner.connection_id) = connection_id;
                if let Some(f) = self.cb().on_connected {
                    // SAFETY: an application callback with the documented arguments.
                    unsafe { f(session, ud) }
                }
            }
            Event::Disconnected { .. } => {
                if let Some(f) = self.cb().on_disconnected {
                    // SAFETY: as above.
                    unsafe { f(session, ud) }
                }
                // Documented lifetime: streams and connections end with the connection.
                self.streams.clear();
                self.connections.clear();
            }
            Event::Error(e) => {
                if let Some(f) = self.cb().on_error {
                    let msg = c_text(&e.to_string());
                    // SAFETY: as above; `msg` outlives the call.
                    unsafe { f(session, ud, msg.as_ptr(), session_code(&e)) }
                }
            }
            Event::ConnectionCreated(c) => {
                let conn = Box::new(otc_connection::new(&c.connection_id, &c.data));
                let ptr: *const otc_connection = &*conn;
                self.connections.insert(c.connection_id, conn);
                if let Some(f) = self.cb().on_connection_created {
                    // SAFETY: as above; the box stays in the map during the call.
                    unsafe { f(session, ud, ptr) }
                }
            }
            Event::ConnectionDestroyed { connection, .. } => {
                let conn = self
                    .connections
                    .remove(&connection.connection_id)
                    .unwrap_or_else(|| Box::new(otc_connection::new(&connection.connection_id, &connection.data)));
                if let Some(f) = self.cb().on_connection_dropped {
                    // SAFETY: as above; `conn` lives until the end of this arm.
                    unsafe { f(session, ud, &*conn) }
                }
            }
            Event::StreamCreated(s) => {
                let stream = Box::new(self.stream_of(&s));
                let ptr: *const otc_stream = &*stream;
                self.streams.insert(s.stream_id, stream);
                if let Some(f) = self.cb().on_stream_received {
                    // SAFETY: as above; the box stays in the map during the call.
                    unsafe { f(session, ud, ptr) }
                }
            }
            Event::StreamDestroyed { stream: s, .. } => {
                let stream = match self.streams.remove(&s.stream_id) {
                    Some(known) => known,
                    None => Box::new(self.stream_of(&s)),
                };
                if let Some(f) = self.cb().on_stream_dropped {
                    // SAFETY: as above; `stream` lives until the end of this arm.
                    unsafe { f(session, ud, &*stream) }
                }
            }
            Event::StreamPropertyChanged { stream, change } => self.stream_property_changed(&stream, change),
            Event::Signal { from, signal_type, data, encrypted } => {
                let (ty, data) = (c_text(&signal_type), c_text(&data));
                let from: *const otc_connection = match &from {
                    Some(id) => self.connection(id),
                    None => std::ptr::null(),
                };
                let extended = lock(&self.inner.signal_callbacks).map(|t| t.0);
                if let Some(t) = extended.filter(|t| t.on_signal_received.is_some()) {
                    if let Some(f) = t.on_signal_received {
                        let flag = if encrypted { OTC_TRUE } else { OTC_FALSE };
                        // SAFETY: as above; the strings and the connection outlive the call.
                        unsafe { f(session, t.user_data, ty.as_ptr(), data.as_ptr(), from, flag) }
                    }
                } else if let Some(f) = self.cb().on_signal_received {
                    // SAFETY: as above; the strings and the connection outlive the call.
                    unsafe { f(session, ud, ty.as_ptr(), data.as_ptr(), from) }
                }
            }
            Event::SignalDecryptionFailed { from, error } => {
                let message = c_text(&crate::signal::decryption_message(&error));
                let from: *const otc_connection = match &from {
                    Some(id) => self.connection(id),
                    None => std::ptr::null(),
                };
                let extended = lock(&self.inner.signal_callbacks).map(|t| t.0);
                if let Some(t) = extended.filter(|t| t.on_signal_decryption_failed.is_some()) {
                    if let Some(f) = t.on_signal_decryption_failed {
                        let code = crate::signal::decryption_error(&error);
                        // SAFETY: as above; the message and the connection outlive the call.
                        unsafe { f(session, t.user_data, from, code, message.as_ptr()) }
                    }
                } else if let Some(f) = self.cb().on_error {
                    let code = otc_session_error_code::OTC_SESSION_SIGNAL_DECRYPTION_FAILED;
                    // SAFETY: as above; the message outlives the call.
                    unsafe { f(session, ud, message.as_ptr(), code) }
                }
            }
            Event::Publisher { publisher, event } => {
                let core = lock(&self.inner.publishers).get(&publisher).cloned();
                if let Some(core) = core {
                    self.publisher_event(&core, publisher, event);
                }
            }
            Event::Subscriber { subscriber, event } => {
                let core = lock(&self.inner.subscribers).get(&subscriber).cloned();
                if let Some(core) = core {
                    self.subscriber_event(&core, subscriber, event);
                }
            }
            Event::ActiveSpeakerChanged { stream_id, connection_id } => {
                let callback = lock(&self.inner.speaker_callback).map(|c| c.0);
                if let Some((Some(f), user_data)) = callback {
                    let text = |t: Option<String>| t.map(|t| c_text(&t));
                    let (stream_id, connection_id) = (text(stream_id), text(connection_id));
                    let ptr = |t: &Option<CString>| t.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
                    // SAFETY: an application callback with the documented arguments; the strings
                    // outlive the call.
                    unsafe { f(session, user_data, ptr(&stream_id), ptr(&connection_id)) }
                }
            }
            // Events of a later native SDK that this C API has no callback for yet.
            _ => {}
        }
    }

    /// The C description of a native stream, with its connection's data when known.
    fn stream_of(&self, s: &Stream) -> otc_stream {
        let data = self.connections.get(&s.connection_id).map(|c| c.data_string()).unwrap_or_default();
        otc_stream::from_native(s, otc_connection::new(&s.connection_id, &data))
    }

    /// Updates the stream the application was given, then tells it.
    fn stream_property_changed(&mut self, s: &Stream, change: PropertyChanged) {
        let (session, ud) = (self.session, self.cb().user_data);
        let Some(stream) = self.streams.get(&s.stream_id) else {
            // Not one the application was given (its stream_dropped already ran).
            return;
        };
        let ptr: *const otc_stream = &**stream;
        let flag = |b: bool| if b { OTC_TRUE } else { OTC_FALSE };
        match change {
            PropertyChanged::HasAudio { new_value, .. } => {
                stream.set_has_audio(new_value);
                if let Some(f) = self.cb().on_stream_has_audio_changed {
                    // SAFETY: an application callback; the box stays in the map during it.
                    unsafe { f(session, ud, ptr, flag(new_value)) }
                }
            }
            PropertyChanged::HasVideo { new_value, .. } => {
                stream.set_has_video(new_value);
                if let Some(f) = self.cb().on_stream_has_video_changed {
                    // SAFETY: as above.
                    unsafe { f(session, ud, ptr, flag(new_value)) }
                }
            }
            PropertyChanged::VideoDimensions { new_value, .. } => {
                let (w, h) = (dimension(new_value.width), dimension(new_value.height));
                stream.set_dimensions(w, h);
                if let Some(f) = self.cb().on_stream_video_dimensions_changed {
                    // SAFETY: as above.
                    unsafe { f(session, ud, ptr, w, h) }
                }
            }
        }
    }

    fn publisher_event(&mut self, core: &Arc<PubCore>, id: PublisherId, event: PublisherEvent) {
        let key = self.inner.key();
        match event {
            PublisherEvent::StreamCreated { stream_id } => {
                let own = lock(&self.inner.connection_id).clone();
                let data = self.connections.get(&own).map(|c| c.data_string()).unwrap_or_default();
                core.stream_created(key, id, &stream_id, otc_connection::new(&own, &data));
            }
            PublisherEvent::Error(e) => core.run_registered(key, id, |p| p.call_on_error(&e)),
            PublisherEvent::MuteForced { .. } => core.run_registered(key, id, PubCore::mute_forced),
            // No callback of the C API for these (the vendor's has none either).
            PublisherEvent::MediaConnected | PublisherEvent::Destroyed => {}
            _ => {}
        }
    }

    fn subscriber_event(&mut self, core: &Arc<SubCore>, id: SubscriberId, event: SubscriberEvent) {
        let key = self.inner.key();
        let cb = core.callbacks();
        let (handle, ud) = (core.handle(), cb.user_data);
        match event {
            SubscriberEvent::Connected => {
                if let Some(f) = cb.on_connected {
                    // SAFETY: an application callback; the subscriber's stream lives as long
                    // as the subscriber, which the gate keeps alive during the call.
                    core.run_registered(key, id, |s| unsafe { f(handle, ud, s.stream_ptr()) });
                }
            }
            SubscriberEvent::VideoFrame(frame) => {
                if let Some(f) = cb.on_render_frame {
                    let frame = otc_video_frame { frame };
                    // SAFETY: as above; `frame` lives until the end of this arm.
                    core.run_registered(key, id, |_| unsafe { f(handle, ud, &frame) });
                }
            }
            SubscriberEvent::AudioFrame(a) => {
                crate::audio::render_push(id, key, &a.samples);
                if let Some(f) = cb.on_audio_data {
                    let data = otc_audio_data::mono_48k(&a.samples);
                    // SAFETY: as above; `a.samples` outlives the call.
                    core.run_registered(key, id, |_| unsafe { f(handle, ud, &data) });
                }
            }
            SubscriberEvent::EncryptionSecretMismatch => {
                if let Some(f) = cb.on_encryption_secret_mismatch {
                    // SAFETY: as above.
                    core.run_registered(key, id, |_| unsafe { f(handle, ud) });
                }
            }
            SubscriberEvent::EncryptionSecretMatch => {
                if let Some(f) = cb.on_encryption_secret_match {
                    // SAFETY: as above.
                    core.run_registered(key, id, |_| unsafe { f(handle, ud) });
                }
            }
            SubscriberEvent::Error(e) => core.run_registered(key, id, |s| s.call_on_error(&e)),
            SubscriberEvent::VideoLayerChanged { rid, temporal_layer, paused } => {
                let callback = lock(&core.layer_callback).map(|c| c.0);
                if let Some((Some(f), ud)) = callback {
                    let rid = rid.map(|r| c_text(&r));
                    let rid_ptr = rid.as_ref().map_or(std::ptr::null(), |r| r.as_ptr());
                    let temporal = temporal_layer.map_or(-1, c_int::from);
                    let paused = if paused { OTC_TRUE } else { OTC_FALSE };
                    // SAFETY: as above; `rid` outlives the call.
                    core.run_registered(key, id, |_| unsafe { f(handle, ud, rid_ptr, temporal, paused) });
                }
            }
            // Reported by the `Error(StreamNotEncrypted)` just before it, as `on_error` with
            // OTC_SUBSCRIBER_STREAM_NOT_ENCRYPTED: a new callback member would change the size of
            // `otc_subscriber_callbacks`, which applications built against an older header pass.
            SubscriberEvent::StreamNotEncrypted => {}
            SubscriberEvent::Destroyed => {
                if let Some(f) = cb.on_disconnected {
                    // SAFETY: as above.
                    core.run_registered(key, id, |_| unsafe { f(handle, ud) });
                }
            }
            // Events of a later native SDK that this C API has no callback for yet.
            _ => {}
        }
    }
}

impl otc_connection {
    fn data_string(&self) -> String {
        // SAFETY: the pointer comes from the connection's own CString.
        unsafe { std::ffi::CStr::from_ptr(crate::stream::otc_connection_get_data(self)) }.to_string_lossy().into_owned()
    }
}
