//! A subscriber's video wishes as the SDKs over this one keep them (C, and UniFFI for Kotlin,
//! Swift and React Native): set before the subscription exists and handed over once it does,
//! then changed one at a time. Only what differs from what the session already has is sent,
//! so a wish changed back to the default reaches the router too.

use crate::{ClientError, Session, SubscriberId};

/// The largest preferred frame rate the router takes (`set_video_preference`).
pub const MAX_PREFERRED_FRAME_RATE: u32 = 240;
/// Larger than any picture a publisher sends (the capture limit is 4096).
pub const MAX_PREFERRED_SIDE: u32 = 16_384;

/// What [`Session::set_preferred_resolution`], [`Session::set_preferred_frame_rate`] and
/// [`Session::set_subscribe_to_video`] were last given; the default is what a new subscription
/// starts with (no limit, video on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoPreference {
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<u32>,
    pub video: bool,
}

impl Default for VideoPreference {
    fn default() -> Self {
        VideoPreference { resolution: None, frame_rate: None, video: true }
    }
}

impl VideoPreference {
    /// Hand subscriber `id` of `session` every wish that differs from `before` (what it has).
    pub fn apply_changes(
        &self,
        before: &VideoPreference,
        session: &Session,
        id: SubscriberId,
    ) -> Result<(), ClientError> {
        if self.resolution != before.resolution {
            session.set_preferred_resolution(id, self.resolution)?;
        }
        if self.frame_rate != before.frame_rate {
            session.set_preferred_frame_rate(id, self.frame_rate)?;
        }
        if self.video != before.video {
            session.set_subscribe_to_video(id, self.video)?;
        }
        Ok(())
    }
}
