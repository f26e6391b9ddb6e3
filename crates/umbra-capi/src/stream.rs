//! `otc_stream` and `otc_connection`: read-only descriptions of a published stream and of a
//! participant's connection, with C strings made once so accessors can return pointers.

use std::ffi::{CString, c_char};

use crate::errors::{
    OTC_FALSE, OTC_INVALID_PARAMETER, OTC_SUCCESS, OTC_TRUE, otc_bool, otc_status,
};
use crate::ffi::{guard, ref_arg};

/// A participant's connection (opaque).
pub struct otc_connection {
    id: CString,
    data: CString,
}

/// A stream published in the session (opaque).
pub struct otc_stream {
    id: CString,
    name: CString,
    connection: otc_connection,
    has_audio: bool,
    has_video: bool,
}

/// A C string from Rust text; an interior NUL (never sent by the server) is cut there rather
/// than dropping the whole value.
pub(crate) fn c_text(s: &str) -> CString {
    let end = s.find('\0').unwrap_or(s.len());
    CString::new(&s[..end]).unwrap_or_default()
}

impl otc_connection {
    pub(crate) fn new(id: &str, data: &str) -> Self {
        Self {
            id: c_text(id),
            data: c_text(data),
        }
    }
    pub(crate) fn id_str(&self) -> &str {
        self.id.to_str().unwrap_or_default()
    }
}

impl otc_stream {
    pub(crate) fn new(
        id: &str,
        name: &str,
        connection: otc_connection,
        has_audio: bool,
        has_video: bool,
    ) -> Self {
        Self {
            id: c_text(id),
            name: c_text(name),
            connection,
            has_audio,
            has_video,
        }
    }
    pub(crate) fn id_str(&self) -> &str {
        self.id.to_str().unwrap_or_default()
    }
    pub(crate) fn duplicate(&self) -> Self {
        Self {
            id: self.id.clone(),
            name: self.name.clone(),
            connection: otc_connection {
                id: self.connection.id.clone(),
                data: self.connection.data.clone(),
            },
            has_audio: self.has_audio,
            has_video: self.has_video,
        }
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
pub unsafe extern "C" fn otc_stream_get_connection(
    stream: *const otc_stream,
) -> *const otc_connection {
    guard(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live stream.
        unsafe { ref_arg(stream) }
            .map_or(std::ptr::null(), |s| &s.connection as *const otc_connection)
    })
}

/// `OTC_TRUE` if the stream carries video (`OTC_FALSE` also for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_stream_has_video(stream: *const otc_stream) -> otc_bool {
    guard(OTC_FALSE, || {
        // SAFETY: the caller passes NULL or a live stream.
        if unsafe { ref_arg(stream) }.is_some_and(|s| s.has_video) {
            OTC_TRUE
        } else {
            OTC_FALSE
        }
    })
}

/// `OTC_TRUE` if the stream carries audio (`OTC_FALSE` also for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_stream_has_audio(stream: *const otc_stream) -> otc_bool {
    guard(OTC_FALSE, || {
        // SAFETY: the caller passes NULL or a live stream.
        if unsafe { ref_arg(stream) }.is_some_and(|s| s.has_audio) {
            OTC_TRUE
        } else {
            OTC_FALSE
        }
    })
}

/// A copy of `stream` that the caller owns and frees with `otc_stream_delete`; NULL if `stream`
/// is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_stream_copy(stream: *const otc_stream) -> *mut otc_stream {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller passes NULL or a live stream.
        unsafe { ref_arg(stream) }.map_or(std::ptr::null_mut(), |s| {
            Box::into_raw(Box::new(s.duplicate()))
        })
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
pub unsafe extern "C" fn otc_connection_get_data(
    connection: *const otc_connection,
) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live connection.
        unsafe { ref_arg(connection) }.map_or(std::ptr::null(), |c| c.data.as_ptr())
    })
}

/// A copy of `connection` that the caller owns and frees with `otc_connection_delete`; NULL if
/// `connection` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_connection_copy(
    connection: *const otc_connection,
) -> *mut otc_connection {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller passes NULL or a live connection.
        unsafe { ref_arg(connection) }.map_or(std::ptr::null_mut(), |c| {
            Box::into_raw(Box::new(otc_connection {
                id: c.id.clone(),
                data: c.data.clone(),
            }))
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
