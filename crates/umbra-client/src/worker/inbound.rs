//! What the server sends, handled on the session thread: every [`ServerMessage`] of signaling
//! v1 in one exhaustive `match`, so a message type added to `umbra-protocol` does not compile
//! until this SDK decides what it means.
//!
//! A text that does not parse as a [`ServerFrame`] is reported to the application
//! ([`ClientError::Protocol`]), never dropped without a word.

use std::time::{Duration, Instant};

use umbra_e2ee::{CipherSuite, KeyRing};
use umbra_protocol::{
    AckBody, ClientMessage, ConnectionInfo, IceCandidate, IcePeer, MediaMode, MediaTarget, PropertyChanged, Reason,
    RequestId, ServerFrame, ServerMessage, StreamInfo,
};

use super::{Pending, Welcome, Worker};
use crate::error::ClientError;
use crate::peer::Peer;
use crate::publisher::PublisherId;
use crate::session::{ConnectedInfo, Connection, Event, PublisherEvent, Stream, SubscriberEvent, SubscriberId, lock};

/// Which way a routed media event went wrong.
#[derive(Clone, Copy)]
enum MediaEnd {
    Failed,
    Closed,
}

impl MediaEnd {
    fn error(self, message: String) -> ClientError {
        match self {
            MediaEnd::Failed => ClientError::MediaFailed(message),
            MediaEnd::Closed => ClientError::MediaClosed(message),
        }
    }
}

impl Worker {
    /// One text message from the server.
    pub(super) fn message(&mut self, text: &str, now: Instant) {
        match serde_json::from_str::<ServerFrame>(text) {
            Ok(frame) => {
                if let Some(seq) = frame.seq {
                    // Replayed after a resume, and already processed before the drop.
                    if seq <= self.last_seq {
                        return;
                    }
                    self.last_seq = seq;
                }
                self.server_message(frame.message, now);
            }
            Err(e) => self.unparsable(text, &e),
        }
    }

    /// Says what was wrong with a message that does not parse. A type this SDK does not know is
    /// reported once per type: a newer server may send it on every event.
    fn unparsable(&mut self, text: &str, e: &serde_json::Error) {
        let kind = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("type")?.as_str().map(str::to_string));
        let problem = match kind {
            Some(kind) if ServerMessage::KINDS.contains(&kind.as_str()) => {
                format!("a {kind} message that does not parse ({e})")
            }
            Some(kind) => {
                if !self.unknown_kinds.insert(kind.clone()) {
                    return;
                }
                format!("message type {kind:?} is not in signaling v1 as this SDK knows it")
            }
            None => format!("not a JSON object with a type ({e})"),
        };
        tracing::warn!("ignoring a server message: {problem}");
        self.emit(Event::Error(ClientError::Protocol(problem)));
    }

    pub(super) fn protocol_error(&self, problem: String) {
        tracing::warn!("server message out of place: {problem}");
        self.emit(Event::Error(ClientError::Protocol(problem)));
    }

    fn server_message(&mut self, msg: ServerMessage, now: Instant) {
        match msg {
            ServerMessage::Welcome {
                v: _,
                session_id: _,
                connection_id,
                resume_token,
                role: _,
                connection_data: _,
                media_mode,
                archive_mode: _,
                e2ee,
                cipher_suite,
                heartbeat_interval_ms,
                heartbeat_timeout_ms,
                resume_window_ms,
                connections,
                streams,
                complete,
            } => {
                if self.welcome.is_some() {
                    return self.protocol_error("a second welcome".into());
                }
                let routed = media_mode == MediaMode::Routed;
                let heartbeat = Duration::from_millis(heartbeat_interval_ms);
                // Never shorter than two heartbeats: a server's odd value must not make this
                // client drop a healthy socket.
                let heartbeat_timeout = Duration::from_millis(heartbeat_timeout_ms).max(heartbeat * 2);
                self.credentials = Some(super::resume::Credentials {
                    connection_id: connection_id.clone(),
                    resume_token,
                    window: Duration::from_millis(resume_window_ms),
                });
                if !self.welcome(connection_id, e2ee, cipher_suite, routed, (heartbeat, heartbeat_timeout), now) {
                    return;
                }
                self.describing = !complete;
                self.describe(connections, streams);
            }
            ServerMessage::Snapshot { connections, streams, complete } => {
                if !self.describing {
                    // Still worth applying: what it describes is in the session.
                    self.protocol_error("a snapshot page after the session's description".into());
                }
                self.describing = !complete;
                self.describe(connections, streams);
            }
            ServerMessage::Resumed { .. } => {
                self.sig.resumed();
                self.resumed(now);
            }
            ServerMessage::Ack { id, body } => self.ack(id, body),
            ServerMessage::Error { id: None, code, message } if self.resume_refused(code, &message) => {}
            ServerMessage::Error { id, code, message } => {
                self.request_error(id, ClientError::Refused { code, message })
            }
            // The heartbeat only needs to reach the server; its answer carries nothing.
            ServerMessage::Pong { .. } => {}
            ServerMessage::ConnectionCreated { connection } => self.connection_created(connection),
            ServerMessage::ConnectionDestroyed { connection, reason } => {
                self.signals.forget(&connection.connection_id);
                let connection =
                    self.connections.remove(&connection.connection_id).unwrap_or_else(|| connection.into());
                self.emit(Event::ConnectionDestroyed { connection, reason });
            }
            ServerMessage::StreamCreated { stream } => self.stream_created(stream),
            ServerMessage::StreamDestroyed { stream, reason } => self.stream_destroyed(stream, reason),
            ServerMessage::StreamPropertyChanged { stream_id, change } => {
                self.stream_property_changed(&stream_id, change)
            }
            ServerMessage::Signal { from, signal_type, data } => self.receive_signal(from, signal_type, data, now),
            ServerMessage::SubscribeOffer { subscription_id, stream_id, subscriber_connection_id: _, sdp_offer } => {
                self.subscribe_offer(&stream_id, subscription_id, &sdp_offer)
            }
            ServerMessage::Answer { subscription_id, stream_id: _, sdp_answer } => {
                if let Some((id, sub)) =
                    self.subscribers.iter_mut().find(|(_, s)| s.subscription_id.as_deref() == Some(&subscription_id))
                {
                    let id = *id;
                    if let Err(e) = sub.peer.accept_answer(&sdp_answer) {
                        self.emit_sub(id, SubscriberEvent::Error(e));
                    }
                }
            }
            ServerMessage::Ice { subscription_id, from, candidate } => {
                self.remote_candidate(&subscription_id, from, &candidate)
            }
            ServerMessage::SubscriptionEnded { subscription_id, stream_id: _ } => {
                self.subscription_ended(&subscription_id)
            }
            ServerMessage::MuteForced { stream_id } => self.mute_forced(stream_id),
            // This client's own peer connection reports the same first-hand (str0m's
            // `Connected`), which is what the media events are based on.
            ServerMessage::MediaConnected { .. } => {}
            ServerMessage::MediaFailed { target, message } => self.media_ended(target, MediaEnd::Failed, message),
            ServerMessage::MediaClosed { target, message } => self.media_ended(target, MediaEnd::Closed, message),
            ServerMessage::MediaRestart { target } => self.media_restart(target),
            ServerMessage::LayersWanted { stream_id, rids } => self.layers_wanted(&stream_id, &rids),
            ServerMessage::VideoLayerChanged { subscription_id, rid, temporal_layer, paused } => {
                let found = self.subscriber_of(&subscription_id);
                match found {
                    Some(id) => self.emit_sub(id, SubscriberEvent::VideoLayerChanged { rid, temporal_layer, paused }),
                    // Unsubscribed while the event was on its way.
                    None => tracing::debug!("video_layer_changed for subscription {subscription_id}, not ours"),
                }
            }
            ServerMessage::ActiveSpeakerChanged { stream_id, connection_id } => {
                self.emit(Event::ActiveSpeakerChanged { stream_id, connection_id })
            }
            ServerMessage::ForcedDisconnect => {
                self.end_reason = Some("forced to disconnect by a moderator".into());
                self.done = true;
            }
        }
    }

    /// Sets the session up from `welcome`; false when it cannot be joined.
    fn welcome(
        &mut self,
        connection_id: String,
        e2ee: bool,
        cipher_suite: Option<u16>,
        routed: bool,
        (heartbeat, heartbeat_timeout): (Duration, Duration),
        now: Instant,
    ) -> bool {
        let suite_id = cipher_suite.unwrap_or(CipherSuite::default().id());
        let suite = match CipherSuite::from_id(suite_id) {
            Ok(s) => s,
            Err(_) => {
                self.emit(Event::Error(ClientError::UnsupportedCipherSuite(suite_id)));
                self.done = true;
                return false;
            }
        };
        let secret = lock(&self.shared).secret.clone();
        let missing_secret = e2ee && secret.is_none();
        self.ring = KeyRing::new(suite);
        self.welcome = Some(Welcome {
            e2ee,
            suite,
            routed,
            // At least a second apart whatever the server says: a heartbeat is not a busy loop.
            heartbeat: heartbeat.max(Duration::from_secs(1)),
            heartbeat_timeout: heartbeat_timeout.max(Duration::from_secs(2)),
        });
        if let Some(secret) = secret {
            self.apply_secret(&secret, now);
        }
        lock(&self.shared).connected = Some(ConnectedInfo { e2ee });
        self.signals.joined(&connection_id);
        self.emit(Event::Connected { connection_id, e2ee, cipher_suite: e2ee.then_some(suite.id()) });
        if missing_secret {
            // The connection stays up (the app can still see streams and set a secret
            // now); publishing and subscribing fail with EncryptionSecretMissing until it does.
            self.emit(Event::Error(ClientError::EncryptionSecretMissing));
        }
        self.flush_early_signals();
        true
    }

    /// One page of the session's state at the moment of joining (`welcome`, then `snapshot`s).
    fn describe(&mut self, connections: Vec<ConnectionInfo>, streams: Vec<StreamInfo>) {
        for c in connections {
            self.connection_created(c);
        }
        for s in streams {
            self.stream_created(s);
        }
    }

    fn connection_created(&mut self, info: ConnectionInfo) {
        let c = Connection::from(info);
        if self.connections.contains_key(&c.connection_id) {
            return self.protocol_error(format!("connection {} announced twice", c.connection_id));
        }
        self.connections.insert(c.connection_id.clone(), c.clone());
        self.emit(Event::ConnectionCreated(c));
    }

    fn stream_created(&mut self, info: StreamInfo) {
        let s = Stream::from(info);
        if self.streams.contains_key(&s.stream_id) {
            return self.protocol_error(format!("stream {} announced twice", s.stream_id));
        }
        self.streams.insert(s.stream_id.clone(), s.clone());
        self.emit(Event::StreamCreated(s));
    }

    fn stream_destroyed(&mut self, info: StreamInfo, reason: Reason) {
        let stream = self.streams.remove(&info.stream_id).unwrap_or_else(|| info.into());
        let gone: Vec<SubscriberId> =
            self.subscribers.iter().filter(|(_, sub)| sub.stream_id == stream.stream_id).map(|(id, _)| *id).collect();
        for id in gone {
            self.end_subscriber(id, None);
        }
        // Our own stream ended by the server (not by `unpublish`, which has already removed
        // the publisher): the publisher is over too.
        let own =
            self.publishers.iter().find(|(_, p)| p.stream_id.as_deref() == Some(&stream.stream_id)).map(|(id, _)| *id);
        if let Some(id) = own
            && let Some(mut p) = self.publishers.remove(&id)
        {
            p.close_peers();
            self.emit_pub(id, PublisherEvent::Destroyed);
        }
        self.emit(Event::StreamDestroyed { stream, reason });
    }

    fn stream_property_changed(&mut self, stream_id: &str, change: PropertyChanged) {
        let Some(stream) = self.streams.get_mut(stream_id) else {
            return self.protocol_error(format!(
                "a property change of stream {stream_id}, which this client was never told about"
            ));
        };
        stream.apply(&change);
        let stream = stream.clone();
        self.emit(Event::StreamPropertyChanged { stream, change });
    }

    fn ack(&mut self, id: Option<RequestId>, body: AckBody) {
        let pending = match &id {
            Some(RequestId::Number(n)) => self.pending.remove(n),
            _ => None,
        };
        match (pending, body) {
            (Some(Pending::Publish(pid)), AckBody::Published { stream_id, sdp_answer }) => {
                self.published(pid, stream_id, sdp_answer)
            }
            (Some(Pending::Subscribe(sid)), AckBody::Subscribed { subscription_id, sdp_answer }) => {
                let Some(s) = self.subscribers.get_mut(&sid) else {
                    return;
                };
                s.subscription_id = Some(subscription_id);
                if let Some(answer) = sdp_answer
                    && let Err(e) = s.peer.accept_answer(&answer)
                {
                    self.emit_sub(sid, SubscriberEvent::Error(e));
                }
            }
            (Some(Pending::Renegotiate(restart, _)), AckBody::Renegotiated { sdp_answer }) => {
                self.renegotiated(restart, &sdp_answer)
            }
            (Some(Pending::Renegotiate(restart, _)), body) => self.renegotiate_refused(
                restart,
                ClientError::Protocol(format!("a renegotiate ack without an SDP answer: {body:?}")),
            ),
            (Some(Pending::Preference(sid)), _) => {
                if let (Some(s), Some(RequestId::Number(n))) = (self.subscribers.get_mut(&sid), &id) {
                    s.preference.acked(*n);
                }
            }
            // Requests whose ack carries nothing to act on.
            (Some(Pending::ForPublisher(_) | Pending::ForSession), _) => {}
            (Some(Pending::Publish(_)), body) | (Some(Pending::Subscribe(_)), body) => {
                self.protocol_error(format!("an ack without the new stream or subscription: {body:?}"))
            }
            (None, _) => self.protocol_error(format!("an ack for no request of this client ({id:?})")),
        }
    }

    fn published(&mut self, pid: PublisherId, stream_id: String, sdp_answer: Option<String>) {
        let routed = self.welcome.as_ref().is_some_and(|w| w.routed);
        let Some(p) = self.publishers.get_mut(&pid) else {
            return;
        };
        p.stream_id = Some(stream_id.clone());
        let err = match (p.upstream.as_mut(), sdp_answer) {
            (Some(peer), Some(answer)) => peer.accept_answer(&answer).err(),
            (Some(_), None) if routed => {
                Some(ClientError::Protocol("the server accepted a routed stream without an SDP answer".into()))
            }
            _ => None,
        };
        self.emit_pub(pid, PublisherEvent::StreamCreated { stream_id });
        if let Some(e) = err {
            self.emit_pub(pid, PublisherEvent::Error(e));
        }
        // `set_publish_audio`/`_video` calls made before the server knew the stream.
        self.sync_properties(pid);
    }

    pub(super) fn request_error(&mut self, id: Option<RequestId>, err: ClientError) {
        let pending = match &id {
            Some(RequestId::Number(n)) => self.pending.remove(n),
            _ => None,
        };
        match pending {
            Some(Pending::Publish(pid)) => {
                if let Some(mut p) = self.publishers.remove(&pid) {
                    p.close_peers();
                }
                self.emit_pub(pid, PublisherEvent::Error(err));
            }
            Some(Pending::Subscribe(sid)) => {
                if let Some(mut s) = self.subscribers.remove(&sid) {
                    s.peer.close();
                }
                lock(&self.shared).stats.remove(&sid);
                self.emit_sub(sid, SubscriberEvent::Error(err));
            }
            Some(Pending::ForPublisher(pid)) if self.publishers.contains_key(&pid) => {
                self.emit_pub(pid, PublisherEvent::Error(err))
            }
            Some(Pending::ForPublisher(_) | Pending::ForSession) => self.emit(Event::Error(err)),
            Some(Pending::Renegotiate(restart, _)) => self.renegotiate_refused(restart, err),
            Some(Pending::Preference(sid)) => {
                let Some(s) = self.subscribers.get_mut(&sid) else { return };
                if let Some(RequestId::Number(n)) = &id {
                    s.preference.failed(*n, &err);
                }
                // Lost with the socket: sent again after the resume, nothing to report.
                if !matches!(err, ClientError::ConnectionInterrupted) {
                    self.emit_sub(sid, SubscriberEvent::Error(err));
                }
            }
            None => {
                // An error without a request of ours refuses the connection itself (before
                // `welcome`; the server closes the socket), or is the server's own report.
                self.emit(Event::Error(err));
                if self.welcome.is_none() {
                    self.done = true;
                }
            }
        }
    }

    /// Relayed sessions: a subscriber's offer reaches this publisher.
    fn subscribe_offer(&mut self, stream_id: &str, subscription_id: String, sdp_offer: &str) {
        let Some((pid, p)) = self.publishers.iter_mut().find(|(_, p)| p.stream_id.as_deref() == Some(stream_id)) else {
            // Unpublished meanwhile: the server ends the subscription itself.
            return;
        };
        let pid = *pid;
        let codecs: Vec<_> = p.video.iter().map(|v| v.codec()).collect();
        let result = Peer::new(self.config.bind_ip, &codecs).and_then(|mut peer| {
            let answer = peer.accept_offer(sdp_offer)?;
            Ok((peer, answer))
        });
        match result {
            Ok((peer, sdp_answer)) => {
                p.downstreams.insert(subscription_id.clone(), peer);
                if let Some(v) = &mut p.video {
                    v.request_key_frame(None);
                }
                let msg = ClientMessage::Answer { id: None, subscription_id, sdp_answer };
                if let Ok(id) = self.sig.request(msg) {
                    self.pending.insert(id, Pending::ForPublisher(pid));
                }
            }
            Err(e) => self.emit_pub(pid, PublisherEvent::Error(e)),
        }
    }

    /// A candidate from the other end of a relayed subscription.
    fn remote_candidate(&mut self, subscription_id: &str, from: IcePeer, c: &IceCandidate) {
        let peer = match from {
            // We publish; the subscriber trickled.
            IcePeer::Subscriber => self.publishers.values_mut().find_map(|p| p.downstreams.get_mut(subscription_id)),
            // We subscribe; the publisher trickled.
            IcePeer::Publisher => self
                .subscribers
                .values_mut()
                .find(|s| s.subscription_id.as_deref() == Some(subscription_id))
                .map(|s| &mut s.peer),
        };
        if let Some(peer) = peer
            && let Err(e) = peer.add_remote_candidate(&c.candidate)
        {
            // Not an error of the subscription: ICE still finds the peer through its checks.
            tracing::debug!("{e}");
        }
    }

    fn subscription_ended(&mut self, subscription_id: &str) {
        for p in self.publishers.values_mut() {
            if let Some(mut peer) = p.downstreams.remove(subscription_id) {
                peer.close();
            }
        }
        let id = self.subscriber_of(subscription_id);
        if let Some(id) = id {
            self.end_subscriber(id, None);
        }
    }

    /// The subscriber that holds `subscription_id`, if it is still ours.
    pub(super) fn subscriber_of(&self, subscription_id: &str) -> Option<SubscriberId> {
        self.subscribers.iter().find(|(_, s)| s.subscription_id.as_deref() == Some(subscription_id)).map(|(id, _)| *id)
    }

    /// Ends a subscriber the server or the router ended, reporting `error` first if any.
    pub(super) fn end_subscriber(&mut self, id: SubscriberId, error: Option<ClientError>) {
        if let Some(mut s) = self.subscribers.remove(&id) {
            s.peer.close();
        }
        lock(&self.shared).stats.remove(&id);
        if let Some(e) = error {
            self.emit_sub(id, SubscriberEvent::Error(e));
        }
        self.emit_sub(id, SubscriberEvent::Destroyed);
    }

    /// The router says which simulcast layers of one of our streams some subscriber receives:
    /// those are sent, the others paused (not encoded at all) until listed again.
    fn layers_wanted(&mut self, stream_id: &str, rids: &[String]) {
        let Some((&pid, p)) = self.publishers.iter_mut().find(|(_, p)| p.stream_id.as_deref() == Some(stream_id))
        else {
            return tracing::debug!("layers_wanted for stream {stream_id}, no longer published here");
        };
        // A rid longer than str0m's ids cannot be one we offered: it matches none of ours.
        let wanted: Vec<str0m::media::Rid> =
            rids.iter().filter(|r| r.len() <= 8).map(|r| str0m::media::Rid::from(r.as_str())).collect();
        if let Some(v) = &mut p.video
            && v.set_wanted_layers(&wanted)
        {
            let stats = v.stats();
            lock(&self.shared).publisher_stats.insert(pid, stats);
            self.emit_pub(pid, PublisherEvent::LayersWanted { rids: rids.to_vec() });
        }
    }

    /// A moderator muted one of our streams: stop sending its audio, tell the session, and the
    /// application.
    fn mute_forced(&mut self, stream_id: String) {
        let Some((&pid, p)) = self.publishers.iter_mut().find(|(_, p)| p.stream_id.as_deref() == Some(&stream_id))
        else {
            // Unpublished while the mute was on its way: nothing is sending any more.
            tracing::debug!("mute_forced for stream {stream_id}, no longer published here");
            return;
        };
        p.audio_on = false;
        self.sync_properties(pid);
        self.emit_pub(pid, PublisherEvent::MuteForced { stream_id });
    }

    /// The router failed or closed one of our routed peer connections.
    ///
    /// For one the SDK still uses, that is an error of its publisher or subscriber (and a
    /// subscriber without media is over). For one the SDK already ended, it is the router
    /// confirming the end it caused: `subscription_ended` and `stream_destroyed` reach this
    /// client before the router closes a downstream whose stream was unpublished.
    fn media_ended(&mut self, target: MediaTarget, how: MediaEnd, message: String) {
        match target {
            MediaTarget::Stream { stream_id } => {
                let found = self.publishers.iter_mut().find(|(_, p)| p.stream_id.as_deref() == Some(&stream_id));
                match found {
                    Some((&pid, p)) => {
                        // The router removed this upstream: stop feeding it.
                        if let Some(mut peer) = p.upstream.take() {
                            peer.close();
                        }
                        self.emit_pub(pid, PublisherEvent::Error(how.error(message)));
                    }
                    None => tracing::debug!("stream {stream_id} already unpublished: {message}"),
                }
            }
            MediaTarget::Subscription { subscription_id } => {
                let found = self.subscriber_of(&subscription_id);
                match found {
                    Some(id) => self.end_subscriber(id, Some(how.error(message))),
                    None => {
                        tracing::debug!("subscription {subscription_id} already ended: {message}")
                    }
                }
            }
        }
    }
}
