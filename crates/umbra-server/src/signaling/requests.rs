//! What a connected client asks: publish, subscribe, the relayed SDP/ICE exchange, signals,
//! stream properties and moderation. Each request is checked against the rules, applied to the
//! room, and answered with the fields of its `ack`.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use umbra_protocol::{
    AckBody, ClientMessage, ErrorCode, IceCandidate, IcePeer, MediaMode, PropertyChange, PublishStream, Reason, Role,
    ServerMessage, StreamInfo, VideoType,
};

use super::error::SigError;
use super::hub::{ConnRef, Hub, HubError};
use super::room::{Room, RoomState, Subscription};
use super::rules::{self, Action};
use crate::clock::now_millis;
use crate::ids;
use crate::media_router::{PublishSpec, SubscribeSpec, Target};

const DONE: AckBody = AckBody::Done {};

fn unknown_stream(stream_id: &str) -> SigError {
    SigError::new(ErrorCode::UnknownStream, format!("no stream {stream_id} in this session"))
}

impl Hub {
    /// Handles one request from a connected client; `Ok` carries the fields of the `ack`.
    pub async fn handle(&self, me: &ConnRef, msg: ClientMessage) -> Result<AckBody, SigError> {
        let room = self.room(&me.session_id).ok_or_else(SigError::ended)?;
        let role = room.lock().conns.get(&me.connection_id).map(|c| c.role).ok_or_else(SigError::ended)?;
        match msg {
            ClientMessage::Connect { .. } | ClientMessage::Resume { .. } => {
                Err(SigError::new(ErrorCode::AlreadyConnected, "this socket is already connected to a session"))
            }
            ClientMessage::Ping { .. } | ClientMessage::Leave => Ok(DONE),
            ClientMessage::Publish { stream, sdp_offer, .. } => self.publish(&room, me, role, stream, sdp_offer).await,
            ClientMessage::Unpublish { stream_id, .. } => self.unpublish(&room, me, &stream_id),
            ClientMessage::Subscribe { stream_id, sdp_offer, .. } => {
                self.subscribe(&room, me, role, stream_id, sdp_offer).await
            }
            ClientMessage::Unsubscribe { subscription_id, .. } => self.unsubscribe(&room, me, &subscription_id),
            ClientMessage::Answer { subscription_id, sdp_answer, .. } => {
                self.answer(&room, me, subscription_id, sdp_answer)
            }
            ClientMessage::Ice { subscription_id, stream_id, candidate, .. } => {
                self.ice(&room, me, subscription_id, stream_id, candidate).await
            }
            ClientMessage::Signal { to, signal_type, data, .. } => {
                rules::allow(role, Action::Signal)?;
                rules::signal(signal_type.as_deref(), &data)?;
                let bytes = data.len() + signal_type.as_ref().map_or(0, String::len);
                room.lock()
                    .conns
                    .get_mut(&me.connection_id)
                    .ok_or_else(SigError::ended)?
                    .signals
                    .admit(Instant::now(), bytes)?;
                self.signal(&me.session_id, Some(&me.connection_id), to.as_deref(), signal_type.as_deref(), &data)
                    .map_err(|e| match e {
                        HubError::InvalidSignal(m) => SigError::bad_request(m),
                        other => SigError::new(ErrorCode::UnknownConnection, other.to_string()),
                    })?;
                Ok(DONE)
            }
            ClientMessage::SetStreamProperty { stream_id, change, .. } => {
                self.set_property(&room, me, &stream_id, change)
            }
            ClientMessage::Renegotiate { target, sdp_offer, .. } => {
                self.renegotiate(&room, me, target, sdp_offer).await
            }
            ClientMessage::SetVideoPreference { subscription_id, preference, .. } => {
                self.set_video_preference(&room, me, &subscription_id, preference).await
            }
            ClientMessage::ForceDisconnect { connection_id, .. } => {
                rules::allow(role, Action::ForceDisconnect)?;
                self.force_disconnect(&me.session_id, &connection_id)
                    .map_err(|e| SigError::new(ErrorCode::UnknownConnection, e.to_string()))?;
                Ok(DONE)
            }
        }
    }

    async fn publish(
        &self,
        room: &Room,
        me: &ConnRef,
        role: Role,
        stream: PublishStream,
        sdp_offer: Option<String>,
    ) -> Result<AckBody, SigError> {
        rules::allow(role, Action::Publish)?;
        let session = &room.session;
        rules::e2ee_gate(session.cipher_suite, stream.e2ee)?;
        let name = rules::stream_name(stream.name)?;
        let offer = rules::publish_offer(session.media_mode, sdp_offer)?;
        // Checked before the router does any work, and again once its answer is in.
        self.stream_caps(&room.lock(), me)?;
        let stream_id = ids::new_id();
        let sdp_answer = match offer {
            None => None,
            Some(sdp_offer) => {
                let spec = PublishSpec {
                    session_id: session.id.clone(),
                    connection_id: me.connection_id.clone(),
                    stream_id: stream_id.clone(),
                    sdp_offer,
                    video_size: stream.video_dimensions.map(|d| (d.width, d.height)),
                };
                Some(self.router.publish(spec).await?)
            }
        };
        let mut st = room.lock();
        let admitted = match st.conns.get(&me.connection_id) {
            // The client left while the router answered: nobody will unpublish it.
            None => Err(SigError::ended()),
            Some(_) => self.stream_caps(&st, me),
        };
        if let Err(e) = admitted {
            drop(st);
            if session.media_mode == MediaMode::Routed {
                self.router.unpublish(&session.id, &stream_id);
            }
            return Err(e);
        }
        let Some(conn) = st.conns.get(&me.connection_id) else { return Err(SigError::ended()) };
        let info = StreamInfo {
            stream_id: stream_id.clone(),
            connection_id: me.connection_id.clone(),
            name,
            has_audio: stream.has_audio,
            has_video: stream.has_video,
            video_type: stream.video_type.unwrap_or(VideoType::Camera),
            video_dimensions: stream.video_dimensions,
            e2ee: session.e2ee(),
            cipher_suite: session.cipher_suite,
            created_at: now_millis(),
            layout_class_list: conn.layout.clone(),
        };
        st.streams.push(info.clone());
        self.metrics.streams.fetch_add(1, Relaxed);
        st.broadcast(&ServerMessage::StreamCreated { stream: info });
        Ok(AckBody::Published { stream_id, sdp_answer })
    }

    /// Refuses a stream beyond the connection's or the session's cap.
    fn stream_caps(&self, st: &RoomState, me: &ConnRef) -> Result<(), SigError> {
        let limits = &self.config.limits;
        if st.streams_of(&me.connection_id) >= limits.streams_per_connection {
            return Err(limits.too_many_streams());
        }
        if st.streams.len() >= limits.streams_per_session {
            return Err(limits.too_many_session_streams());
        }
        Ok(())
    }

    /// Refuses a subscription beyond the connection's cap.
    fn subscription_cap(&self, st: &RoomState, me: &ConnRef) -> Result<(), SigError> {
        let limits = &self.config.limits;
        let held = st.conns.get(&me.connection_id).ok_or_else(SigError::ended)?.subscriptions;
        if held >= limits.subscriptions_per_connection {
            return Err(limits.too_many_subscriptions());
        }
        Ok(())
    }

    fn unpublish(&self, room: &Room, me: &ConnRef, stream_id: &str) -> Result<AckBody, SigError> {
        let mut st = room.lock();
        let owner = st.stream(stream_id).ok_or_else(|| unknown_stream(stream_id))?.connection_id.clone();
        if owner != me.connection_id {
            return Err(SigError::new(
                ErrorCode::NotOwner,
                "only the connection that published a stream can unpublish it",
            ));
        }
        if st.end_stream(stream_id, Reason::Unpublished).is_some() {
            self.metrics.streams.fetch_sub(1, Relaxed);
        }
        drop(st);
        if room.session.media_mode == MediaMode::Routed {
            self.router.unpublish(&room.session.id, stream_id);
        }
        Ok(DONE)
    }

    async fn subscribe(
        &self,
        room: &Room,
        me: &ConnRef,
        role: Role,
        stream_id: String,
        sdp_offer: String,
    ) -> Result<AckBody, SigError> {
        rules::allow(role, Action::Subscribe)?;
        rules::subscribe_offer(&sdp_offer)?;
        let subscription_id = ids::new_id();
        let publisher = {
            let st = room.lock();
            self.subscription_cap(&st, me)?;
            st.stream(&stream_id).ok_or_else(|| unknown_stream(&stream_id))?.connection_id.clone()
        };
        let sdp_answer = match room.session.media_mode {
            MediaMode::Relayed => {
                let mut st = room.lock();
                // The lock was let go since the stream was found.
                if st.stream(&stream_id).is_none() {
                    return Err(unknown_stream(&stream_id));
                }
                self.subscription_cap(&st, me)?;
                let ev = ServerMessage::SubscribeOffer {
                    subscription_id: subscription_id.clone(),
                    stream_id: stream_id.clone(),
                    subscriber_connection_id: me.connection_id.clone(),
                    sdp_offer,
                };
                st.send_to(&publisher, &ev);
                let sub = Subscription {
                    stream_id,
                    subscriber: me.connection_id.clone(),
                    publisher,
                    preference: Default::default(),
                };
                st.add_subscription(subscription_id.clone(), sub);
                None
            }
            MediaMode::Routed => {
                let spec = SubscribeSpec {
                    session_id: room.session.id.clone(),
                    connection_id: me.connection_id.clone(),
                    subscription_id: subscription_id.clone(),
                    stream_id: stream_id.clone(),
                    sdp_offer,
                    wish: Default::default(),
                };
                let answer = self.router.subscribe(spec).await?;
                let mut st = room.lock();
                if let Err(e) = self.subscription_cap(&st, me) {
                    drop(st);
                    self.router.unsubscribe(&room.session.id, &subscription_id);
                    return Err(e);
                }
                let sub = Subscription {
                    stream_id,
                    subscriber: me.connection_id.clone(),
                    publisher,
                    preference: Default::default(),
                };
                st.add_subscription(subscription_id.clone(), sub);
                Some(answer)
            }
        };
        Ok(AckBody::Subscribed { subscription_id, sdp_answer })
    }

    fn unsubscribe(&self, room: &Room, me: &ConnRef, subscription_id: &str) -> Result<AckBody, SigError> {
        let mut st = room.lock();
        let sub = match st.subs.get(subscription_id) {
            Some(s) if s.subscriber == me.connection_id => match st.remove_subscription(subscription_id) {
                Some(sub) => sub,
                None => return Err(SigError::ended()),
            },
            _ => {
                let message = format!("you have no subscription {subscription_id}");
                return Err(SigError::new(ErrorCode::UnknownSubscription, message));
            }
        };
        match room.session.media_mode {
            MediaMode::Relayed => {
                let ev = ServerMessage::SubscriptionEnded {
                    subscription_id: subscription_id.to_owned(),
                    stream_id: sub.stream_id,
                };
                st.send_to(&sub.publisher, &ev);
            }
            MediaMode::Routed => {
                drop(st);
                self.router.unsubscribe(&room.session.id, subscription_id);
            }
        }
        Ok(DONE)
    }

    fn answer(
        &self,
        room: &Room,
        me: &ConnRef,
        subscription_id: String,
        sdp_answer: String,
    ) -> Result<AckBody, SigError> {
        let mut st = room.lock();
        let (to, stream_id) = match st.subs.get(&subscription_id) {
            Some(s) if s.publisher == me.connection_id => (s.subscriber.clone(), s.stream_id.clone()),
            _ => {
                let message = format!("no subscription {subscription_id} to a stream of yours");
                return Err(SigError::new(ErrorCode::UnknownSubscription, message));
            }
        };
        st.send_to(&to, &ServerMessage::Answer { subscription_id, stream_id, sdp_answer });
        Ok(DONE)
    }

    async fn ice(
        &self,
        room: &Room,
        me: &ConnRef,
        subscription_id: Option<String>,
        stream_id: Option<String>,
        candidate: IceCandidate,
    ) -> Result<AckBody, SigError> {
        rules::ice_candidate(&candidate)?;
        let target = match (subscription_id, stream_id) {
            (Some(sub), None) => {
                let st = room.lock();
                match st.subs.get(&sub) {
                    Some(s) if s.subscriber == me.connection_id || s.publisher == me.connection_id => {
                        Target::Subscriber { subscription_id: sub }
                    }
                    _ => {
                        let message = format!("no subscription {sub} of yours");
                        return Err(SigError::new(ErrorCode::UnknownSubscription, message));
                    }
                }
            }
            (None, Some(stream)) => {
                if room.lock().stream(&stream).is_none_or(|s| s.connection_id != me.connection_id) {
                    return Err(SigError::new(ErrorCode::UnknownStream, format!("you publish no stream {stream}")));
                }
                Target::Publisher { stream_id: stream }
            }
            _ => return Err(SigError::bad_request("ice names exactly one of subscription_id or stream_id")),
        };
        match (room.session.media_mode, target) {
            (MediaMode::Routed, target) => {
                self.router.add_ice_candidate(&room.session.id, target, candidate.candidate).await?;
            }
            (MediaMode::Relayed, Target::Subscriber { subscription_id }) => {
                let mut st = room.lock();
                let Some(s) = st.subs.get(&subscription_id) else {
                    return Err(SigError::new(ErrorCode::UnknownSubscription, "the subscription ended"));
                };
                let (to, from) = if s.subscriber == me.connection_id {
                    (s.publisher.clone(), IcePeer::Subscriber)
                } else {
                    (s.subscriber.clone(), IcePeer::Publisher)
                };
                st.send_to(&to, &ServerMessage::Ice { subscription_id, from, candidate });
            }
            (MediaMode::Relayed, Target::Publisher { .. }) => {
                return Err(SigError::bad_request("relayed session: ICE goes with a subscription_id"));
            }
        }
        Ok(DONE)
    }

    fn set_property(
        &self,
        room: &Room,
        me: &ConnRef,
        stream_id: &str,
        change: PropertyChange,
    ) -> Result<AckBody, SigError> {
        rules::property(&change)?;
        let mut st = room.lock();
        let stream =
            st.streams.iter_mut().find(|s| s.stream_id == stream_id).ok_or_else(|| unknown_stream(stream_id))?;
        if stream.connection_id != me.connection_id {
            let message = "only the publisher of a stream can change its properties";
            return Err(SigError::new(ErrorCode::NotOwner, message));
        }
        let change = rules::apply_property(stream, change);
        st.broadcast(&ServerMessage::StreamPropertyChanged { stream_id: stream_id.to_owned(), change });
        Ok(DONE)
    }
}
