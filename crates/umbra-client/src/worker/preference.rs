//! A subscriber's video preference (`set_video_preference`, docs/signaling.md): what the
//! application asked for, remembered so it reaches the router whatever happens to the request
//! carrying it. The router keeps a preference across a `media_restart` (the doc says so), but a
//! request lost with a dropped socket never arrived, and a subscription whose ack has not come
//! yet has no id to send it for: both are sent when they can be, and a restart re-sends it,
//! because the new router's copy is the one that matters and one more request costs nothing.

use umbra_protocol::{ClientMessage, VideoDimensions, VideoPreference};

use super::{Pending, Worker};
use crate::error::ClientError;
use crate::session::{SubscriberEvent, SubscriberId};

/// One of the three things an application sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Largest picture wanted; `None` for no limit.
    Resolution(Option<(u32, u32)>),
    /// Frames per second wanted at most; `None` for every frame.
    FrameRate(Option<u32>),
    /// Whether to receive video at all.
    Video(bool),
}

/// The preference of one subscriber and whether the router has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PreferenceState {
    wanted: VideoPreference,
    /// The router may not have `wanted`: send it when possible.
    unsent: bool,
    /// A request carrying it is in flight (its id).
    in_flight: Option<u64>,
}

impl PreferenceState {
    /// Applies a change; an invalid one (a zero size, a frame rate outside 1..=240) is refused
    /// and changes nothing.
    pub(crate) fn apply(&mut self, change: Change) -> Result<(), ClientError> {
        let mut next = self.wanted;
        match change {
            Change::Resolution(None) => next.max_dimensions = None,
            Change::Resolution(Some((width, height))) => {
                if width == 0 || height == 0 || width > 16_384 || height > 16_384 {
                    return Err(ClientError::InvalidArgument(format!(
                        "a preferred resolution is 1 to 16384 pixels each way, not {width}x{height}"
                    )));
                }
                next.max_dimensions = Some(VideoDimensions { width, height });
            }
            Change::FrameRate(rate) => {
                if let Some(r) = rate
                    && !(1..=240).contains(&r)
                {
                    return Err(ClientError::InvalidArgument(format!(
                        "a preferred frame rate is 1 to 240 per second, not {r}"
                    )));
                }
                next.max_frame_rate = rate;
            }
            Change::Video(video) => next.video = video,
        }
        if next != self.wanted {
            self.wanted = next;
            self.unsent = true;
        }
        Ok(())
    }

    /// What to send now, if anything: the latest wish, once, and not while another request
    /// for this subscriber is in flight (its answer decides whether the wish arrived).
    pub(crate) fn to_send(&self) -> Option<VideoPreference> {
        (self.unsent && self.in_flight.is_none()).then_some(self.wanted)
    }

    pub(crate) fn sent(&mut self, request: u64) {
        self.unsent = false;
        self.in_flight = Some(request);
    }

    /// The request was acknowledged: the router has what was sent (a change made since is
    /// still `unsent`).
    pub(crate) fn acked(&mut self, request: u64) {
        if self.in_flight == Some(request) {
            self.in_flight = None;
        }
    }

    /// The request failed. Lost with the socket (`ConnectionInterrupted`): send again after the
    /// resume. Refused by the server: the refusal is reported, and sending it again would only
    /// be refused again.
    pub(crate) fn failed(&mut self, request: u64, err: &ClientError) {
        if self.in_flight == Some(request) {
            self.in_flight = None;
            if matches!(err, ClientError::ConnectionInterrupted) {
                self.unsent = true;
            }
        }
    }

    /// The request could not even be sent (not for want of a socket): reported once, not
    /// retried on every turn of the loop; the next change tries again.
    pub(crate) fn abandon(&mut self) {
        self.unsent = false;
    }

    /// A new peer connection (`media_restart`): a preference other than the default goes to
    /// the new router again.
    pub(crate) fn restarted(&mut self) {
        if self.wanted != VideoPreference::default() {
            self.unsent = true;
        }
    }
}

impl Worker {
    /// Sends every preference the router may not have, for subscriptions that have an id, in a
    /// routed session, while the signaling socket is up. Called on every turn of the loop: it
    /// only looks at a flag per subscriber when there is nothing to send.
    pub(super) fn flush_preferences(&mut self) {
        if self.resuming.is_some() || !self.welcome.as_ref().is_some_and(|w| w.routed) {
            return;
        }
        let due: Vec<(SubscriberId, String, VideoPreference)> = self
            .subscribers
            .iter()
            .filter_map(|(id, s)| Some((*id, s.subscription_id.clone()?, s.preference.to_send()?)))
            .collect();
        for (id, subscription_id, preference) in due {
            let msg = ClientMessage::SetVideoPreference { id: None, subscription_id, preference };
            match self.sig.request(msg) {
                Ok(req) => {
                    self.pending.insert(req, Pending::Preference(id));
                    if let Some(s) = self.subscribers.get_mut(&id) {
                        s.preference.sent(req);
                    }
                }
                // The socket is gone or going (its end is noticed and resumed by the loop):
                // stays unsent, and the resume brings the next chance.
                Err(ClientError::ConnectionInterrupted | ClientError::Signaling(_)) => return,
                Err(e) => {
                    if let Some(s) = self.subscribers.get_mut(&id) {
                        s.preference.abandon();
                    }
                    self.emit_sub(id, SubscriberEvent::Error(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_sent_once_and_only_when_it_changes_something() {
        let mut p = PreferenceState::default();
        assert_eq!(p.to_send(), None, "the default needs no request");
        p.apply(Change::Resolution(Some((320, 180)))).unwrap();
        let want = p.to_send().unwrap();
        assert_eq!(want.max_dimensions, Some(VideoDimensions { width: 320, height: 180 }));
        assert!(want.video && want.max_frame_rate.is_none());
        p.sent(7);
        assert_eq!(p.to_send(), None);
        p.acked(7);
        p.apply(Change::Resolution(Some((320, 180)))).unwrap();
        assert_eq!(p.to_send(), None, "the same wish again is not news");
    }

    #[test]
    fn changes_while_a_request_is_in_flight_wait_for_its_answer_then_go_together() {
        let mut p = PreferenceState::default();
        p.apply(Change::FrameRate(Some(15))).unwrap();
        p.sent(1);
        p.apply(Change::Video(false)).unwrap();
        p.apply(Change::Resolution(Some((640, 360)))).unwrap();
        assert_eq!(p.to_send(), None);
        p.acked(1);
        let want = p.to_send().unwrap();
        assert_eq!((want.video, want.max_frame_rate), (false, Some(15)));
        assert_eq!(want.max_dimensions, Some(VideoDimensions { width: 640, height: 360 }));
    }

    #[test]
    fn a_request_lost_with_the_socket_is_sent_again_a_refused_one_is_not() {
        let mut p = PreferenceState::default();
        p.apply(Change::Video(false)).unwrap();
        p.sent(3);
        p.failed(3, &ClientError::ConnectionInterrupted);
        assert!(p.to_send().is_some_and(|w| !w.video));
        p.sent(4);
        let refused = ClientError::Refused { code: umbra_protocol::ErrorCode::BadRequest, message: "relayed".into() };
        p.failed(4, &refused);
        assert_eq!(p.to_send(), None);
        // An answer to an older request does not clear a newer one.
        p.apply(Change::Video(true)).unwrap();
        p.sent(5);
        p.acked(4);
        assert_eq!(p.in_flight, Some(5));
    }

    #[test]
    fn a_restart_re_sends_anything_but_the_default() {
        let mut p = PreferenceState::default();
        p.restarted();
        assert_eq!(p.to_send(), None);
        p.apply(Change::Resolution(Some((320, 180)))).unwrap();
        p.sent(1);
        p.acked(1);
        p.restarted();
        assert!(p.to_send().is_some());
        // Back to the default after that: nothing more after the next restart.
        p.sent(2);
        p.acked(2);
        p.apply(Change::Resolution(None)).unwrap();
        p.sent(3);
        p.acked(3);
        p.restarted();
        assert_eq!(p.to_send(), None);
    }

    #[test]
    fn invalid_wishes_are_refused_and_change_nothing() {
        let mut p = PreferenceState::default();
        assert!(matches!(p.apply(Change::Resolution(Some((0, 180)))), Err(ClientError::InvalidArgument(_))));
        assert!(matches!(p.apply(Change::FrameRate(Some(0))), Err(ClientError::InvalidArgument(_))));
        assert!(matches!(p.apply(Change::FrameRate(Some(241))), Err(ClientError::InvalidArgument(_))));
        assert_eq!(p, PreferenceState::default());
    }
}
