//! `set_video_preference`: a subscriber's wishes for a routed subscription's video, checked,
//! kept with the subscription (so a `media_restart` gives them to the next router) and handed to
//! the router, which picks the simulcast and temporal layer within them.

use umbra_protocol::{AckBody, ErrorCode, MediaMode, VideoPreference};

use super::error::SigError;
use super::hub::{ConnRef, Hub};
use super::room::Room;
use crate::media_router::VideoWish;

/// The frame rates a preference may name: one frame a second up to what any camera sends.
pub const FRAME_RATES: std::ops::RangeInclusive<u32> = 1..=240;

/// What the router is told for a preference.
pub fn wish(p: &VideoPreference) -> VideoWish {
    VideoWish {
        video: p.video,
        max_size: p.max_dimensions.map(|d| (d.width, d.height)),
        max_frame_rate: p.max_frame_rate,
    }
}

impl Hub {
    pub(super) async fn set_video_preference(
        &self,
        room: &Room,
        me: &ConnRef,
        subscription_id: &str,
        preference: VideoPreference,
    ) -> Result<AckBody, SigError> {
        if let Some(rate) = preference.max_frame_rate
            && !FRAME_RATES.contains(&rate)
        {
            return Err(SigError::bad_request(format!(
                "max_frame_rate must be from {} to {} frames per second, or null",
                FRAME_RATES.start(),
                FRAME_RATES.end()
            )));
        }
        if room.session.media_mode == MediaMode::Relayed {
            return Err(SigError::bad_request(
                "set_video_preference needs a routed session: a relayed subscription has no router to choose a layer",
            ));
        }
        {
            let mut st = room.lock();
            match st.subs.get_mut(subscription_id) {
                Some(s) if s.subscriber == me.connection_id => s.preference = preference,
                // Someone else's subscription is as unknown to this client as a missing one.
                _ => {
                    let message = format!("you have no subscription {subscription_id}");
                    return Err(SigError::new(ErrorCode::UnknownSubscription, message));
                }
            }
            st.version += 1;
        }
        self.router.set_video_wish(&room.session.id, subscription_id, wish(&preference)).await?;
        Ok(AckBody::Done {})
    }
}
