//! `otc_stream` and `otc_connection`: read-only descriptions of a published stream and of a
//! participant's connection, with C strings made once so accessors can return pointers.

use std::ffi::{CString, c_char, c_int};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crate::errors::{OTC_FALSE, OTC_INVALID_PARAMETER, OTC_SUCCESS, OTC_TRUE, otc_bool, otc_status};
use crate::ffi::{guard, ref_arg};

/// A participant's connection (opaque).
pub struct otc_connection {
    id: CString,
    data: CString,
}

/// A stream published in the session (opaque).
///
/// The properties its publisher can change are atomics: the session's dispatch thread updates
/// the stream handed to `on_stream_received` while the application may read it from another.
pub struct otc_stream {
    id: CString,
    name: CString,
    connection: otc_connection,
    has_audio: AtomicBool,
    has_video: AtomicBool,
    /// 0 while the publisher has not said.
    width: AtomicI32,
    height: AtomicI32,
}

/// A video dimension as C's `int` (a size beyond it is not a size anyone sends).
pub(crate) fn dimension(v: u32) -> c_int {
    c_int::try_from(v).unwrap_or(c_int::MAX)
}

/// A C string from Rust text; an interior NUL (never sent by the server) is cut there rather
/// than dropping the whole value.
pub(crate) fn c_text(s: &str) -> CString {
    let end = s.find('\0').unwrap_or(s.len());
    CString::new(&s[..end]).unwrap_or_default()
}

impl otc_connection {
    pub(crate) fn new(id: &str, data: &str) -> Self {
        Self { id: c_text(id), data: c_text(data) }
    }
    pub(crate) fn id_str(&self) -> &str {
        self.id.to_str().unwrap_or_default()
    }
}

impl otc_stream {
    pub(crate) fn new(id: &str, name: &str, connection: otc_connection, has_audio: bool, has_video: bool) -> Self {
        let s = Self::new_parts(c_text(id), c_text(name), connection);
        s.set_has_audio(has_audio);
        s.set_has_video(has_video);
        s
    }
    /// The session's description of a native stream; `connection` carries its data.
    pub(crate) fn from_native(stream: &umbra_client::Stream, connection: otc_connection) -> Self {
        let s = Self::new(&stream.stream_id, &stream.name, connection, stream.has_audio, stream.has_video);
        if let Some(d) = stream.video_dimensions {
            s.set_dimensions(dimension(d.width), dimension(d.height));
        }
        s
    }
    pub(crate) fn id_str(&self) -> &str {
        self.id.to_str().unwrap_or_default()
    }
    pub(crate) fn duplicate(&self) -> Self {
        let copy = Self::new_parts(
            self.id.clone(),
            self.name.clone(),
            otc_connection { id: self.connection.id.clone(), data: self.connection.data.clone() },
        );
        copy.set_has_audio(self.has_audio());
        copy.set_has_video(self.has_video());
        let (w, h) = self.dimensions();
        copy.set_dimensions(w, h);
        copy
    }
    fn new_parts(id: CString, name: CString, connection: otc_connection) -> Self {
        Self {
            id,
            name,
            connection,
            has_audio: AtomicBool::new(false),
            has_video: AtomicBool::new(false),
            width: AtomicI32::new(0),
            height: AtomicI32::new(0),
        }
    }
    pub(crate) fn has_audio(&self) -> bool {
        self.has_audio.load(Ordering::Relaxed)
    }
    pub(crate) fn has_video(&self) -> bool {
        self.has_video.load(Ordering::Relaxed)
    }
    pub(crate) fn set_has_audio(&self, v: bool) {
        self.has_audio.store(v, Ordering::Relaxed)
    }
    pub(crate) fn set_has_video(&self, v: bool) {
        self.has_video.store(v, Ordering::Relaxed)
    }
    /// Width and height as one would read them separately; a reader racing an update may see
    /// the old width with the new height, as with any two accessor calls.
    pub(crate) fn dimensions(&self) -> (c_int, c_int) {
        (self.width.load(Ordering::Relaxed), self.height.load(Ordering::Relaxed))
    }
    pub(crate) fn set_dimensions(&self, width: c_int, height: c_int) {
        self.width.store(width, Ordering::Relaxed);
        self.height.store(height, Ordering::Relaxed);
    }
}

/// The stream's id, or NULL if `stream` is NULL. Owned by the stream: valid as long as it is.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_stream_get_id(stream: *const otc_stream) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live stream.
        unsafe { ref_arg(stream) }.map_or(std::ptr::null(), |s| s.id.as_ptr())
    })
}

/// The stream's name (may be empty), or NULL if `stream` is NULL. Owned by the stream.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_stream_get_name(stream: *const otc_stream) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live stream.
        unsafe { ref_arg(stream) }.map_or(std::ptr::null(), |s| s.name.as_ptr())
    })
}

/// The connection that publishes the stream, or NULL if `stream` is NULL. Owned by the stream.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_stream_get_connection(stream: *const otc_stream) -> *const otc_connection {
    guard(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live stream.
        unsafe { ref_arg(stream) }.map_or(std::ptr::null(), |s| &s.connection as *const otc_connection)
    })
}

/// `OTC_TRUE` if the stream carries video (`OTC_FALSE` also for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_stream_has_video(stream: *const otc_stream) -> otc_bool {
    guard(OTC_FALSE, || {
        // SAFETY: the caller passes NULL or a live stream.
        if unsafe { ref_arg(stream) }.is_some_and(otc_stream::has_video) { OTC_TRUE } else { OTC_FALSE }
    })
}

/// `OTC_TRUE` if the stream carries audio (`OTC_FALSE` also for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_stream_has_audio(stream: *const otc_stream) -> otc_bool {
    guard(OTC_FALSE, || {
        // SAFETY: the caller passes NULL or a live stream.
        if unsafe { ref_arg(stream) }.is_some_and(otc_stream::has_audio) { OTC_TRUE } else { OTC_FALSE }
    })
}

/// The width of the stream's video as its publisher reports it, 0 if it has not (Umbra's
/// publishers report no size; browsers may), -1 if `stream` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_stream_get_video_width(stream: *const otc_stream) -> c_int {
    guard(-1, || {
        // SAFETY: the caller passes NULL or a live stream.
        unsafe { ref_arg(stream) }.map_or(-1, |s| s.dimensions().0)
    })
}

/// The height of the stream's video, as `otc_stream_get_video_width`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_stream_get_video_height(stream: *const otc_stream) -> c_int {
    guard(-1, || {
        // SAFETY: the caller passes NULL or a live stream.
        unsafe { ref_arg(stream) }.map_or(-1, |s| s.dimensions().1)
    })
}

/// A copy of `stream` that the caller owns and frees with `otc_stream_delete`; NULL if `stream`
/// is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_stream_copy(stream: *const otc_stream) -> *mut otc_stream {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller passes NULL or a live stream.
        unsafe { ref_arg(stream) }.map_or(std::ptr::null_mut(), |s| Box::into_raw(Box::new(s.duplicate())))
    })
}

/// Frees a stream made by `otc_stream_copy` (only those: streams handed to callbacks belong to
/// the SDK). NULL gives `OTC_INVALID_PARAMETER`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_stream_delete(stream: *mut otc_stream) -> otc_status {
    guard(crate::errors::OTC_INTERNAL_ERROR, || {
        if stream.is_null() {
            return OTC_INVALID_PARAMETER;
        }
        // SAFETY: the caller passes a pointer obtained from otc_stream_copy, once.
        drop(unsafe { Box::from_raw(stream) });
        OTC_SUCCESS
    })
}

/// The connection's id, or NULL if `connection` is NULL. Owned by the connection.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_connection_get_id(connection: *const otc_connection) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live connection.
        unsafe { ref_arg(connection) }.map_or(std::ptr::null(), |c| c.id.as_ptr())
    })
}

/// The connection's data (set in its token; may be empty), or NULL if `connection` is NULL.
/// Owned by the connection.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_connection_get_data(connection: *const otc_connection) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live connection.
        unsafe { ref_arg(connection) }.map_or(std::ptr::null(), |c| c.data.as_ptr())
    })
}

/// A copy of `connection` that the caller owns and frees with `otc_connection_delete`; NULL if
/// `connection` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_connection_copy(connection: *const otc_connection) -> *mut otc_connection {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller passes NULL or a live connection.
        unsafe { ref_arg(connection) }.map_or(std::ptr::null_mut(), |c| {
            Box::into_raw(Box::new(otc_connection { id: c.id.clone(), data: c.data.clone() }))
        })
    })
}

/// Frees a connection made by `otc_connection_copy` (only those). NULL gives
/// `OTC_INVALID_PARAMETER`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_connection_delete(connection: *mut otc_connection) -> otc_status {
    guard(crate::errors::OTC_INTERNAL_ERROR, || {
        if connection.is_null() {
            return OTC_INVALID_PARAMETER;
        }
        // SAFETY: the caller passes a pointer obtained from otc_connection_copy, once.
        drop(unsafe { Box::from_raw(connection) });
        OTC_SUCCESS
    })
}
