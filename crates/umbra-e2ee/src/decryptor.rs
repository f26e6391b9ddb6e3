//! The receiving side of one stream.

use std::collections::VecDeque;
use std::time::Instant;

use crate::error::{Error, FrameError};
use crate::framing::Codec;
use crate::keyring::KeyRing;
use crate::mismatch::{E2eeEvent, MismatchDetector};
use crate::protect::WireFrame;
use crate::replay::ReplayWindow;
use crate::sframe::SframeKey;

/// KIDs remembered per stream. A stream normally has one KID per secret epoch; the cap only
/// bounds what a hostile or buggy sender can make us hold.
pub const MAX_KIDS_PER_STREAM: usize = 16;

struct KidEntry {
    kid: u64,
    epoch: u64,
    key: SframeKey,
    window: ReplayWindow,
    last_used: u64,
}

/// What became of a frame that could be taken apart.
enum Opened {
    Plain(Vec<u8>),
    /// Authenticated, but its counter was seen before (or is older than the window).
    Replayed {
        kid: u64,
        ctr: u64,
    },
    /// No key we hold authenticates it.
    Rejected {
        kid: u64,
        ctr: u64,
    },
}

/// Counters of what happened to a stream's frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecryptStats {
    pub decrypted: u64,
    pub auth_failures: u64,
    pub malformed: u64,
    pub replayed: u64,
}

/// Decrypts the frames of one received stream, detects secret mismatches and reports them as
/// events (poll with [`poll_event`](Self::poll_event)).
pub struct StreamDecryptor {
    codec: Codec,
    kids: Vec<KidEntry>,
    uses: u64,
    detector: MismatchDetector,
    events: VecDeque<E2eeEvent>,
    stats: DecryptStats,
}

impl StreamDecryptor {
    pub fn new(codec: Codec) -> Self {
        Self {
            codec,
            kids: Vec::new(),
            uses: 0,
            detector: MismatchDetector::new(),
            events: VecDeque::new(),
            stats: DecryptStats::default(),
        }
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn stats(&self) -> DecryptStats {
        self.stats
    }

    /// How many KIDs this stream currently remembers (at most [`MAX_KIDS_PER_STREAM`]).
    pub fn tracked_kids(&self) -> usize {
        self.kids.len()
    }

    pub fn is_mismatched(&self) -> bool {
        self.detector.is_mismatched()
    }

    /// The next event, if any. Each state change yields exactly one event.
    pub fn poll_event(&mut self) -> Option<E2eeEvent> {
        self.events.pop_front()
    }

    fn emit(&mut self, event: Option<E2eeEvent>) {
        self.events.extend(event);
    }

    /// Returns the original frame if `frame` authenticates under a key from `ring`; otherwise
    /// an error, and nothing of the frame. `now` drives the mismatch rule and grace periods.
    pub fn decrypt(&mut self, ring: &KeyRing, frame: &[u8], now: Instant) -> Result<Vec<u8>, Error> {
        if frame.is_empty() {
            return Ok(Vec::new());
        }
        if !ring.has_secret() {
            return Err(Error::EncryptionSecretMissing);
        }
        match self.try_decrypt(ring, frame, now) {
            Ok(Opened::Plain(plain)) => {
                self.stats.decrypted += 1;
                let event = self.detector.on_success();
                self.emit(event);
                Ok(plain)
            }
            Ok(Opened::Replayed { kid, ctr }) => {
                self.stats.replayed += 1;
                Err(Error::ReplayedFrame { kid, ctr })
            }
            Ok(Opened::Rejected { kid, ctr }) => {
                self.stats.auth_failures += 1;
                let event = self.detector.on_auth_failure(now, kid, ctr, frame.len());
                self.emit(event);
                Err(Error::EncryptionSecretMismatch)
            }
            Err(e) => {
                self.stats.malformed += 1;
                let event = self.detector.on_malformed(now, &e);
                self.emit(event);
                Err(Error::DecryptionInternalError(e))
            }
        }
    }

    /// `Err`: the frame could not be taken apart. `Ok`: what its header and keys made of it.
    fn try_decrypt(&mut self, ring: &KeyRing, frame: &[u8], now: Instant) -> Result<Opened, FrameError> {
        let wire = WireFrame::parse(self.codec, ring.suite(), frame)?;
        let header = wire.header();
        self.kids.retain(|e| ring.is_live(e.epoch, now));
        self.uses += 1;
        let uses = self.uses;

        if let Some(entry) = self.kids.iter_mut().find(|e| e.kid == header.kid) {
            if !entry.window.check(header.ctr) {
                return Ok(Opened::Replayed { kid: header.kid, ctr: header.ctr });
            }
            return Ok(match wire.open(&entry.key)? {
                Ok(plain) => {
                    entry.window.accept(header.ctr);
                    entry.last_used = uses;
                    Opened::Plain(plain)
                }
                Err(_) => Opened::Rejected { kid: header.kid, ctr: header.ctr },
            });
        }

        for (epoch, base_key) in ring.candidates(now) {
            let key = SframeKey::derive(ring.suite(), base_key.as_bytes(), header.kid)?;
            if let Ok(plain) = wire.open(&key)? {
                let mut window = ReplayWindow::new();
                window.accept(header.ctr);
                if self.kids.len() >= MAX_KIDS_PER_STREAM
                    && let Some(lru) = self.kids.iter().enumerate().min_by_key(|(_, e)| e.last_used).map(|(i, _)| i)
                {
                    self.kids.swap_remove(lru);
                }
                self.kids.push(KidEntry { kid: header.kid, epoch, key, window, last_used: uses });
                return Ok(Opened::Plain(plain));
            }
        }
        Ok(Opened::Rejected { kid: header.kid, ctr: header.ctr })
    }
}
