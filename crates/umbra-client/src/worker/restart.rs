//! `media_restart` (signaling.md § `renegotiate`): the cluster node whose router carried one of
//! this client's routed peer connections died or drains, and the session's new router waits for
//! a new offer. The publisher or subscriber gets a new peer connection (same codecs, same
//! tracks), which replaces the old one when the router's answer arrives; nothing else changes.
//!
//! The old connection is kept until then: a `media_restart` the client has already acted on can
//! come again (replayed after another resume), and the server then refuses the `renegotiate`
//! (`bad_request`, no restart pending). That refusal leaves the connection in place, working.
//!
//! That is what keeps end-to-end encryption sound across the move: a publisher's
//! `FrameEncryptor`s (key id and frame counter) and a subscriber's decryptors (key ring, replay
//! window, mismatch detector) live in `Pub` and `Sub`, not in the peer connection. A counter
//! restarted under the same key would reuse the AES-CTR keystream; here it simply goes on, and
//! subscribers see counters above those they already accepted. The application sees no event:
//! media pauses until the new connection is up (a key frame is requested then, as for any new
//! connection).

use umbra_protocol::{ClientMessage, ErrorCode, MediaTarget};

use super::{Pending, Worker};
use crate::error::ClientError;
use crate::media::VideoCodec;
use crate::peer::Peer;
use crate::publisher::PublisherId;
use crate::session::{PublisherEvent, SubscriberId};

/// Whose peer connection a `renegotiate` in flight replaces, and which of its restarts it is:
/// an answer to an older restart than the latest is not for the peer connection now in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Restart {
    Publisher { id: PublisherId, generation: u32 },
    Subscriber { id: SubscriberId, generation: u32 },
}

impl Worker {
    pub(super) fn media_restart(&mut self, target: MediaTarget) {
        // Whose peer connection; `renegotiate` sets the generation once the new one exists.
        let restart = match &target {
            MediaTarget::Stream { stream_id } => self
                .publishers
                .iter()
                .find(|(_, p)| p.stream_id.as_deref() == Some(stream_id))
                .map(|(id, _)| Restart::Publisher { id: *id, generation: 0 }),
            MediaTarget::Subscription { subscription_id } => {
                self.subscriber_of(subscription_id).map(|id| Restart::Subscriber { id, generation: 0 })
            }
        };
        let Some(restart) = restart else {
            // Unpublished or unsubscribed meanwhile: nothing to restart.
            tracing::debug!("media_restart for {target:?}, which this client no longer has");
            return;
        };
        if let Err(e) = self.renegotiate(restart, target) {
            match restart {
                Restart::Publisher { id, .. } => self.emit_pub(id, PublisherEvent::Error(e)),
                Restart::Subscriber { id, .. } => self.end_subscriber(id, Some(e)),
            }
        }
    }

    /// Replaces the peer connection and sends its offer. Without a socket (the connection is
    /// being resumed), the restart waits for the resume.
    fn renegotiate(&mut self, restart: Restart, target: MediaTarget) -> Result<(), ClientError> {
        let bind_ip = self.config.bind_ip;
        let (restart, sdp_offer) = match restart {
            Restart::Publisher { id, .. } => {
                let Some(p) = self.publishers.get_mut(&id) else { return Ok(()) };
                let codecs: Vec<VideoCodec> = p.video.iter().map(|v| v.codec()).collect();
                let rids = p.video.as_ref().map(|v| v.rids()).unwrap_or_default();
                let mut peer = Peer::new(bind_ip, &codecs)?;
                let offer = peer.create_offer(p.audio.is_some(), p.video.is_some(), true, &rids)?;
                // The new router has not said which layers it wants: it gets them all until
                // its `layers_wanted`.
                if let Some(v) = &mut p.video {
                    v.resume_all_layers();
                }
                if let Some(mut superseded) = p.replacement.replace(peer) {
                    superseded.close();
                }
                p.restarts += 1;
                (Restart::Publisher { id, generation: p.restarts }, offer)
            }
            Restart::Subscriber { id, .. } => {
                let Some(s) = self.subscribers.get_mut(&id) else { return Ok(()) };
                let mut peer = Peer::new(bind_ip, &VideoCodec::ALL)?;
                let offer = peer.create_offer(s.offered_audio, s.offered_video, false, &[])?;
                // The new router should have the preference already (the server keeps it);
                // sending it again makes sure, at the cost of one request.
                s.preference.restarted();
                if let Some(mut superseded) = s.replacement.replace(peer) {
                    superseded.close();
                }
                s.restarts += 1;
                (Restart::Subscriber { id, generation: s.restarts }, offer)
            }
        };
        match self.sig.request(ClientMessage::Renegotiate { id: None, target: target.clone(), sdp_offer }) {
            Ok(req) => {
                self.pending.insert(req, Pending::Renegotiate(restart, target));
                Ok(())
            }
            Err(ClientError::ConnectionInterrupted) => {
                self.restarts_waiting.push(target);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// After a resume: the restarts whose `renegotiate` never reached an answer, each with a
    /// fresh offer (the pending one may have gone to the router or not).
    pub(super) fn retry_restarts(&mut self) {
        for target in std::mem::take(&mut self.restarts_waiting) {
            self.media_restart(target);
        }
    }

    /// The new router's answer.
    pub(super) fn renegotiated(&mut self, restart: Restart, sdp_answer: &str) {
        match restart {
            Restart::Publisher { id, generation } => {
                let Some(p) = self.publishers.get_mut(&id).filter(|p| p.restarts == generation) else { return };
                let Some(mut peer) = p.replacement.take() else { return };
                if let Err(e) = peer.accept_answer(sdp_answer) {
                    return self.emit_pub(id, PublisherEvent::Error(e));
                }
                if let Some(mut old) = p.upstream.replace(peer) {
                    old.close();
                }
            }
            Restart::Subscriber { id, generation } => {
                let Some(s) = self.subscribers.get_mut(&id).filter(|s| s.restarts == generation) else { return };
                let Some(mut peer) = s.replacement.take() else { return };
                if let Err(e) = peer.accept_answer(sdp_answer) {
                    return self.end_subscriber(id, Some(e));
                }
                std::mem::replace(&mut s.peer, peer).close();
            }
        }
    }

    /// The server refused a `renegotiate`. `bad_request` means it has no restart pending for
    /// that connection (a repeated `media_restart`): the current one stays, nothing is wrong.
    /// Any other refusal means the media cannot move: that publisher's or subscriber's media is
    /// gone.
    pub(super) fn renegotiate_refused(&mut self, restart: Restart, err: ClientError) {
        let repeated = matches!(err, ClientError::Refused { code: ErrorCode::BadRequest, .. });
        match restart {
            Restart::Publisher { id, generation } => {
                let Some(p) = self.publishers.get_mut(&id).filter(|p| p.restarts == generation) else { return };
                if let Some(mut peer) = p.replacement.take() {
                    peer.close();
                }
                if repeated && p.upstream.is_some() {
                    return tracing::debug!("renegotiate not needed: {err}");
                }
                self.emit_pub(id, PublisherEvent::Error(err));
            }
            Restart::Subscriber { id, generation } => {
                let Some(s) = self.subscribers.get_mut(&id).filter(|s| s.restarts == generation) else { return };
                if let Some(mut peer) = s.replacement.take() {
                    peer.close();
                }
                if repeated {
                    return tracing::debug!("renegotiate not needed: {err}");
                }
                self.end_subscriber(id, Some(err));
            }
        }
    }
}
