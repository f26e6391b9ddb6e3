//! Signals with their end-to-end encryption status (docs/e2ee-protocol.md §12), as an optional
//! second callback table: `otc_session_callbacks` keeps its size and layout, so applications
//! built against an earlier header run unchanged.

use std::ffi::{c_char, c_void};

use umbra_client::ClientError;

use crate::errors::*;
use crate::ffi::{AppPtr, guard, lock, ref_arg};
use crate::session::{otc_session, session_arg};
use crate::stream::otc_connection;

/// Why an end-to-end encrypted signal could not be opened (docs/e2ee-protocol.md §12.3). The
/// values are error codes of the SDK's one code space (`otc_error_string` describes them).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum otc_signal_decryption_error {
    /// This session has no encryption secret (`otc_session_set_encryption_secret`); the same
    /// value as `OTC_SESSION_ENCRYPTION_SECRET_MISSING`.
    OTC_SIGNAL_ENCRYPTION_SECRET_MISSING = 1571,
    /// It does not authenticate with this session's secrets: the sender uses another secret,
    /// or the signal was altered, or made for another session or another sender.
    OTC_SIGNAL_ENCRYPTION_SECRET_MISMATCH = 1574,
    /// It authenticated but was received before from the same sender: a replay.
    OTC_SIGNAL_REPLAYED = 1575,
    /// It is malformed (or the crypto backend failed).
    OTC_SIGNAL_DECRYPTION_INTERNAL_ERROR = 1576,
}

/// What `on_signal_decryption_failed` and `on_error` say about it.
pub(crate) fn decryption_message(e: &ClientError) -> String {
    match e {
        ClientError::EncryptionSecretMismatch => "the signal does not authenticate with this encryption secret: the \
             sender uses another secret, or it was altered, or made for another session or sender"
            .into(),
        ClientError::EncryptionSecretMissing => {
            "the signal is end-to-end encrypted and this session has no encryption secret".into()
        }
        other => format!("the signal could not be decrypted: {other}"),
    }
}

pub(crate) fn decryption_error(e: &ClientError) -> otc_signal_decryption_error {
    use otc_signal_decryption_error::*;
    match e {
        ClientError::EncryptionSecretMissing => OTC_SIGNAL_ENCRYPTION_SECRET_MISSING,
        ClientError::EncryptionSecretMismatch => OTC_SIGNAL_ENCRYPTION_SECRET_MISMATCH,
        ClientError::ReplayedSignal { .. } => OTC_SIGNAL_REPLAYED,
        _ => OTC_SIGNAL_DECRYPTION_INTERNAL_ERROR,
    }
}

/// Signal callbacks that say whether each signal was end-to-end encrypted. Set them with
/// `otc_session_set_signal_callbacks`; every member may be NULL. They run on the session's
/// dispatch thread like the session callbacks.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct otc_session_signal_callbacks {
    /// A signal arrived; when set, it is called *instead of* the session callbacks'
    /// `on_signal_received`. `end_to_end_encrypted` is `OTC_TRUE` only for a signal that
    /// arrived encrypted and authenticated in an end-to-end encrypted session; signals the app
    /// server sent with the REST API (`connection` NULL) and signals from clients that do not
    /// encrypt have `OTC_FALSE`. Pointers are valid during the call.
    pub on_signal_received: Option<
        unsafe extern "C" fn(
            session: *mut otc_session,
            user_data: *mut c_void,
            r#type: *const c_char,
            signal: *const c_char,
            connection: *const otc_connection,
            end_to_end_encrypted: otc_bool,
        ),
    >,
    /// An encrypted signal could not be opened; its content is not delivered. `connection` is
    /// the sender (NULL if none); `message` describes the failure. Pointers are valid during
    /// the call. When this member is NULL, the failure goes to the session callbacks' `on_error`
    /// as `OTC_SESSION_SIGNAL_DECRYPTION_FAILED`, so no failure passes unreported.
    pub on_signal_decryption_failed: Option<
        unsafe extern "C" fn(
            session: *mut otc_session,
            user_data: *mut c_void,
            connection: *const otc_connection,
            error: otc_signal_decryption_error,
            message: *const c_char,
        ),
    >,
    /// Passed back to these callbacks.
    pub user_data: *mut c_void,
    /// Must be NULL.
    pub reserved: *mut c_void,
}

/// Sets (or, with NULL `callbacks`, removes) the signal callbacks; the table is copied. Takes
/// effect for the next signal delivered. `OTC_INVALID_PARAMETER` for a NULL session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_set_signal_callbacks(
    session: *mut otc_session,
    callbacks: *const otc_session_signal_callbacks,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or a live session, and NULL or a valid table.
        let Some(inner) = (unsafe { session_arg(session) }) else {
            return OTC_INVALID_PARAMETER;
        };
        // SAFETY: as above.
        let table = unsafe { ref_arg(callbacks) }.copied();
        *lock(&inner.signal_callbacks) = table.map(AppPtr);
        OTC_SUCCESS
    })
}
