//! The demo's room names and their sessions. A room lives while its signaling room does; once
//! nobody has been in it (nor asked for a token) for the expiry time, the name is forgotten and
//! its session deleted, so tokens for it stop working and a later visitor gets a fresh session.
//! The table is bounded: when full, new rooms are refused; live rooms are never re-mapped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::state::AppState;

pub const MAX_ROOMS: usize = 10_000;
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(300);

struct Room {
    session_id: String,
    /// When the room was last seen in use (a token issued, or someone connected).
    last_active: Instant,
}

#[derive(Default)]
pub struct DemoRooms {
    rooms: Mutex<HashMap<String, Room>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the demo has {MAX_ROOMS} rooms open; join an existing one or try again when some have emptied")]
pub struct TooManyRooms;

impl DemoRooms {
    fn rooms(&self) -> MutexGuard<'_, HashMap<String, Room>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The room's session, if it has one; counts as activity.
    pub fn session_of(&self, key: &str) -> Option<String> {
        let mut rooms = self.rooms();
        let room = rooms.get_mut(key)?;
        room.last_active = Instant::now();
        Some(room.session_id.clone())
    }

    /// Records a new room's session. Two first joiners racing: the first insert wins and both
    /// get its session (the loser's session row is left to the caller to delete).
    pub fn insert(&self, key: &str, session_id: String) -> Result<String, TooManyRooms> {
        let mut rooms = self.rooms();
        if let Some(room) = rooms.get_mut(key) {
            room.last_active = Instant::now();
            return Ok(room.session_id.clone());
        }
        if rooms.len() >= MAX_ROOMS {
            return Err(TooManyRooms);
        }
        rooms.insert(key.to_owned(), Room { session_id: session_id.clone(), last_active: Instant::now() });
        Ok(session_id)
    }

    pub fn len(&self) -> usize {
        self.rooms().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets rooms unused for `expiry` and returns their sessions. `live` tells whether a
    /// session has signaling connections.
    pub fn take_expired(&self, expiry: Duration, live: impl Fn(&str) -> bool) -> Vec<String> {
        let now = Instant::now();
        let mut rooms = self.rooms();
        let mut expired = Vec::new();
        rooms.retain(|_, room| {
            if live(&room.session_id) {
                room.last_active = now;
                return true;
            }
            if now.duration_since(room.last_active) < expiry {
                return true;
            }
            expired.push(std::mem::take(&mut room.session_id));
            false
        });
        expired
    }
}

/// Runs for the life of the server in demo mode.
pub async fn expire_loop(state: Arc<AppState>) {
    let expiry = state.web.demo_room_expiry;
    let period = (expiry / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let expired = state.demo_rooms.take_expired(expiry, |id| state.hub.is_live(id));
        if expired.is_empty() {
            continue;
        }
        let count = expired.len();
        match state.with_store(move |s| expired.iter().try_for_each(|id| s.delete_session(id).map(drop))).await {
            Ok(()) => tracing::info!(rooms = count, "demo rooms expired"),
            Err(e) => tracing::warn!(error = %e, "cannot delete expired demo sessions"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_expire_unless_live_and_the_table_is_bounded() {
        let rooms = DemoRooms::default();
        assert_eq!(rooms.insert("a", "s1".into()), Ok("s1".into()));
        assert_eq!(rooms.insert("a", "s2".into()), Ok("s1".into()), "first insert wins");
        assert_eq!(rooms.insert("b", "s3".into()), Ok("s3".into()));
        assert!(rooms.take_expired(Duration::from_secs(60), |_| false).is_empty());
        let mut gone = rooms.take_expired(Duration::ZERO, |id| id == "s1");
        gone.sort();
        assert_eq!(gone, ["s3"]);
        assert_eq!(rooms.session_of("a").as_deref(), Some("s1"));
        assert_eq!(rooms.session_of("b"), None);
        for i in 0..MAX_ROOMS - 1 {
            rooms.insert(&format!("r{i}"), format!("x{i}")).unwrap();
        }
        assert_eq!(rooms.insert("one too many", "y".into()), Err(TooManyRooms));
        assert_eq!(rooms.session_of("a").as_deref(), Some("s1"), "no wipe");
    }
}
