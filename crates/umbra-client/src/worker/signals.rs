//! Signals on the session thread: sealed before they leave and opened when they arrive in
//! end-to-end encrypted sessions (docs/e2ee-protocol.md §12), passed through as they are
//! otherwise.

use std::time::Instant;

use umbra_e2ee::{BaseKey, SIGNAL_WIRE_TYPE, SignalError, SignalOpener, SignalSealer};
use umbra_protocol::ClientMessage;

use super::Worker;
use crate::error::ClientError;
use crate::session::Event;

/// A signal the application asked to send.
pub(crate) struct Outgoing {
    pub(crate) to: Option<String>,
    pub(crate) signal_type: String,
    pub(crate) data: String,
}

#[derive(Default)]
pub(super) struct Signals {
    /// This client's connection id, from `welcome`: what its sealed signals bind.
    own_id: Option<String>,
    /// The sealer and the base key it was made from; a new secret makes a new one.
    sealer: Option<(BaseKey, SignalSealer)>,
    opener: SignalOpener,
    /// Signals asked for before `welcome` said whether the session is end-to-end encrypted.
    early: Vec<Outgoing>,
}

impl Signals {
    pub(super) fn joined(&mut self, connection_id: &str) {
        self.own_id = Some(connection_id.to_owned());
        self.sealer = None;
    }

    pub(super) fn forget(&mut self, connection_id: &str) {
        self.opener.forget(connection_id);
    }

    fn sealer(&mut self, base: &BaseKey) -> Result<&mut SignalSealer, SignalError> {
        let own_id = self.own_id.as_deref().unwrap_or_default();
        if !self.sealer.as_ref().is_some_and(|(k, s)| k == base && s.sender() == own_id) {
            self.sealer = Some((base.clone(), SignalSealer::new(base, own_id)?));
        }
        match &mut self.sealer {
            Some((_, s)) => Ok(s),
            None => Err(SignalError::EncryptionSecretMissing),
        }
    }
}

/// The SDK's error for a signal that could not be sealed or opened.
pub(crate) fn client_error(e: SignalError) -> ClientError {
    match e {
        SignalError::EncryptionSecretMissing => ClientError::EncryptionSecretMissing,
        SignalError::EncryptionSecretMismatch => ClientError::EncryptionSecretMismatch,
        SignalError::ReplayedSignal { kid, ctr } => ClientError::ReplayedSignal { kid, ctr },
        SignalError::InvalidType | SignalError::TooLarge { .. } => ClientError::InvalidArgument(e.to_string()),
        SignalError::Malformed(_) | SignalError::Crypto(_) => ClientError::DecryptionInternalError(e.to_string()),
    }
}

impl Worker {
    pub(super) fn send_signal(&mut self, out: Outgoing) {
        let Some(w) = &self.welcome else {
            self.signals.early.push(out);
            return;
        };
        let (signal_type, data) = if w.e2ee {
            let Some(base) = self.base_key.clone() else {
                // Never in the clear in an E2EE session.
                return self.emit(Event::Error(ClientError::EncryptionSecretMissing));
            };
            let sealed = self.signals.sealer(&base).and_then(|s| s.seal(&self.session_id, &out.signal_type, &out.data));
            match sealed {
                Ok(wire) => (SIGNAL_WIRE_TYPE.to_owned(), wire),
                Err(e) => return self.emit(Event::Error(client_error(e))),
            }
        } else {
            (out.signal_type, out.data)
        };
        self.session_request(ClientMessage::Signal { id: None, to: out.to, signal_type: Some(signal_type), data });
    }

    /// Sends what the application asked for before `welcome`.
    pub(super) fn flush_early_signals(&mut self) {
        for out in std::mem::take(&mut self.signals.early) {
            self.send_signal(out);
        }
    }

    pub(super) fn receive_signal(&mut self, from: Option<String>, signal_type: String, data: String, now: Instant) {
        let e2ee = self.welcome.as_ref().is_some_and(|w| w.e2ee);
        if !e2ee || signal_type != SIGNAL_WIRE_TYPE {
            return self.emit(Event::Signal { from, signal_type, data, encrypted: false });
        }
        match self.signals.opener.open(&self.ring, now, &self.session_id, from.as_deref(), &data) {
            Ok(plain) => {
                self.emit(Event::Signal { from, signal_type: plain.signal_type, data: plain.data, encrypted: true })
            }
            Err(e) => {
                tracing::debug!("signal from {from:?} not decrypted: {e}");
                self.emit(Event::SignalDecryptionFailed { from, error: client_error(e) })
            }
        }
    }
}
