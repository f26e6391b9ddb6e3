//! Moving a session's media to another router: after a cluster node takes a session over (its
//! node died) or is handed it (its node drains), every routed peer connection of the session is
//! re-established on the new node's router, under the same stream and subscription ids.
//!
//! Order matters: a subscriber's new offer can only be answered once the stream it receives is
//! on the new router, so publishers are asked first (`media_restart` for each stream), and each
//! stream's subscribers are asked only when its publisher's `renegotiate` has been answered.
//!
//! # Invariant
//!
//! `RoomState::restarting` holds exactly the targets that were sent `media_restart` and have not
//! renegotiated since; it only names streams and subscriptions present in the room (ending one
//! removes it), so it is bounded by the room's own size.

use umbra_protocol::{AckBody, ErrorCode, MediaMode, MediaTarget, ServerMessage};

use super::error::SigError;
use super::hub::{ConnRef, Hub};
use super::room::Room;
use crate::media_router::{PublishSpec, SubscribeSpec};

impl Hub {
    /// Asks every publisher of a routed room to restart its upstream (see the module doc).
    pub(super) fn restart_media(&self, room: &Room) {
        if room.session.media_mode != MediaMode::Routed {
            return;
        }
        let mut st = room.lock();
        st.restarting.clear();
        let owners: Vec<(String, String)> =
            st.streams.iter().map(|s| (s.stream_id.clone(), s.connection_id.clone())).collect();
        for (stream_id, owner) in owners {
            let target = MediaTarget::Stream { stream_id };
            st.restarting.insert(target.clone());
            st.send_to(&owner, &ServerMessage::MediaRestart { target });
        }
    }

    /// `renegotiate`: a new offer for a target that was sent `media_restart`.
    pub(super) async fn renegotiate(
        &self,
        room: &Room,
        me: &ConnRef,
        target: MediaTarget,
        sdp_offer: String,
    ) -> Result<AckBody, SigError> {
        if room.session.media_mode != MediaMode::Routed {
            return Err(SigError::bad_request("renegotiate is for routed sessions"));
        }
        super::rules::subscribe_offer(&sdp_offer)?;
        {
            let st = room.lock();
            let owned = match &target {
                MediaTarget::Stream { stream_id } => {
                    let s = st.stream(stream_id).ok_or_else(|| {
                        SigError::new(ErrorCode::UnknownStream, format!("no stream {stream_id} in this session"))
                    })?;
                    s.connection_id == me.connection_id
                }
                MediaTarget::Subscription { subscription_id } => {
                    let s = st.subs.get(subscription_id).ok_or_else(|| {
                        let message = format!("you have no subscription {subscription_id}");
                        SigError::new(ErrorCode::UnknownSubscription, message)
                    })?;
                    s.subscriber == me.connection_id
                }
            };
            if !owned {
                return Err(SigError::new(ErrorCode::NotOwner, "only its owner can renegotiate a peer connection"));
            }
            if !st.restarting.contains(&target) {
                return Err(SigError::bad_request(
                    "no media restart is pending for this peer connection (renegotiate answers media_restart)",
                ));
            }
        }
        let session_id = room.session.id.clone();
        let sdp_answer = match &target {
            MediaTarget::Stream { stream_id } => {
                let spec = PublishSpec {
                    session_id,
                    connection_id: me.connection_id.clone(),
                    stream_id: stream_id.clone(),
                    sdp_offer,
                    video_size: room
                        .lock()
                        .stream(stream_id)
                        .and_then(|s| s.video_dimensions)
                        .map(|d| (d.width, d.height)),
                };
                self.router.publish(spec).await?
            }
            MediaTarget::Subscription { subscription_id } => {
                let sub = room.lock().subs.get(subscription_id).map(|s| (s.stream_id.clone(), s.preference));
                let Some((stream_id, preference)) = sub else {
                    return Err(SigError::new(ErrorCode::UnknownSubscription, "the subscription ended"));
                };
                let spec = SubscribeSpec {
                    session_id,
                    connection_id: me.connection_id.clone(),
                    subscription_id: subscription_id.clone(),
                    stream_id,
                    sdp_offer,
                    wish: super::preference::wish(&preference),
                };
                self.router.subscribe(spec).await?
            }
        };
        let mut st = room.lock();
        st.restarting.remove(&target);
        if let MediaTarget::Stream { stream_id } = &target {
            let subscribers: Vec<(String, String)> = st
                .subs
                .iter()
                .filter(|(_, s)| &s.stream_id == stream_id)
                .map(|(id, s)| (id.clone(), s.subscriber.clone()))
                .collect();
            for (subscription_id, subscriber) in subscribers {
                let target = MediaTarget::Subscription { subscription_id };
                st.restarting.insert(target.clone());
                st.send_to(&subscriber, &ServerMessage::MediaRestart { target });
            }
        }
        Ok(AckBody::Renegotiated { sdp_answer })
    }
}
