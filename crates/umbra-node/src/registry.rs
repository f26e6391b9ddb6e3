//! The objects behind the string handles JavaScript holds. Calls into the binding are made with
//! a clone of the object's `Arc`, never under the registry lock: a binding call may wait for the
//! dispatch thread, which never takes this lock.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use umbra_ffi::{PublishOptions, Publisher, Session, Subscriber};

use crate::error::{Result, unknown_handle};
use crate::events::{FrameCounter, StreamTable};

pub(crate) struct SessionEntry {
    pub(crate) session: Arc<Session>,
    pub(crate) streams: StreamTable,
}

pub(crate) struct PublisherEntry {
    pub(crate) publisher: Arc<Publisher>,
    /// Given at creation (the spec's settings), used when it publishes.
    pub(crate) options: PublishOptions,
}

pub(crate) struct SubscriberEntry {
    pub(crate) subscriber: Arc<Subscriber>,
    pub(crate) renderer: Arc<FrameCounter>,
}

#[derive(Default)]
pub(crate) struct Registry {
    next: u64,
    pub(crate) sessions: HashMap<String, SessionEntry>,
    pub(crate) publishers: HashMap<String, PublisherEntry>,
    pub(crate) subscribers: HashMap<String, SubscriberEntry>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

impl Registry {
    pub(crate) fn get() -> MutexGuard<'static, Registry> {
        REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handles are never reused, so a stale one fails instead of reaching another object.
    pub(crate) fn next_handle(&mut self, kind: &str) -> String {
        self.next += 1;
        format!("{kind}-{}", self.next)
    }

    pub(crate) fn session(handle: &str) -> Result<Arc<Session>> {
        Self::get().sessions.get(handle).map(|e| e.session.clone()).ok_or_else(|| unknown_handle("session", handle))
    }

    pub(crate) fn publisher(handle: &str) -> Result<Arc<Publisher>> {
        Self::get()
            .publishers
            .get(handle)
            .map(|e| e.publisher.clone())
            .ok_or_else(|| unknown_handle("publisher", handle))
    }

    pub(crate) fn publisher_with_options(handle: &str) -> Result<(Arc<Publisher>, PublishOptions)> {
        Self::get()
            .publishers
            .get(handle)
            .map(|e| (e.publisher.clone(), e.options))
            .ok_or_else(|| unknown_handle("publisher", handle))
    }

    pub(crate) fn subscriber(handle: &str) -> Result<(Arc<Subscriber>, Arc<FrameCounter>)> {
        Self::get()
            .subscribers
            .get(handle)
            .map(|e| (e.subscriber.clone(), e.renderer.clone()))
            .ok_or_else(|| unknown_handle("subscriber", handle))
    }
}
