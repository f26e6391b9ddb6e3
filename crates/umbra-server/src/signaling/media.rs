//! The router's side of routed sessions: what it reports about peer connections becomes events
//! for the client that owns them, and a publisher whose upstream failed loses its stream.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::mpsc;
use umbra_protocol::{MediaTarget, Reason, ServerMessage};

use super::hub::Hub;
use crate::media_router::{RouterEvent, RouterEventKind, Target, close_message, media_target};

impl Hub {
    /// Starts the router and forwards its events to the rooms for as long as the hub lives.
    pub(super) fn listen_to_router(self: &Arc<Self>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<RouterEvent>();
        self.router.start(tx);
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let Some(hub) = weak.upgrade() else { break };
                hub.router_event(ev);
            }
        });
    }

    pub(super) fn router_event(&self, ev: RouterEvent) {
        let Some(room) = self.room(&ev.session_id) else { return };
        let failed_upstream = match (&ev.kind, &ev.target) {
            (RouterEventKind::Failed(_), Target::Publisher { stream_id }) => Some(stream_id.clone()),
            _ => None,
        };
        let target = media_target(ev.target);
        let message = match ev.kind {
            RouterEventKind::Connected => ServerMessage::MediaConnected { target },
            RouterEventKind::Failed(message) => ServerMessage::MediaFailed { target, message },
            RouterEventKind::Closed(reason) => {
                ServerMessage::MediaClosed { target, message: close_message(reason).to_owned() }
            }
            RouterEventKind::LayersWanted(rids) => match target {
                MediaTarget::Stream { stream_id } => ServerMessage::LayersWanted { stream_id, rids },
                MediaTarget::Subscription { .. } => return,
            },
            RouterEventKind::LayerChanged { rid, temporal_layer, paused } => match target {
                MediaTarget::Subscription { subscription_id } => {
                    ServerMessage::VideoLayerChanged { subscription_id, rid, temporal_layer, paused }
                }
                MediaTarget::Stream { .. } => return,
            },
            RouterEventKind::ActiveSpeaker => match target {
                MediaTarget::Stream { stream_id } => {
                    let mut st = room.lock();
                    // A stream the room no longer has (ended while the event was queued) is
                    // not announced.
                    if st.stream(&stream_id).is_none() || st.active_speaker.as_deref() == Some(stream_id.as_str()) {
                        return;
                    }
                    st.active_speaker = Some(stream_id.clone());
                    st.broadcast(&ServerMessage::ActiveSpeakerChanged {
                        stream_id: Some(stream_id),
                        connection_id: Some(ev.connection_id),
                    });
                    return;
                }
                MediaTarget::Subscription { .. } => return,
            },
        };
        let mut st = room.lock();
        st.send_to(&ev.connection_id, &message);
        // The router has dropped the upstream, so nobody can receive the stream any more: it
        // ends for everyone, as if unpublished, with a reason that says why.
        if let Some(stream_id) = failed_upstream
            && st.stream(&stream_id).is_some_and(|s| s.connection_id == ev.connection_id)
            && st.end_stream(&stream_id, Reason::MediaFailed).is_some()
        {
            self.metrics.streams.fetch_sub(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The routed path through the media-router seam, with a recording router standing in for
    //! the hosted one.

    use std::sync::Mutex;
    use std::time::Duration;

    use serde_json::{Value, json};
    use umbra_protocol::{AckBody, ArchiveMode, ClientMessage, ErrorCode, IceCandidate, MediaMode, MediaTarget, Role};

    use super::*;
    use crate::media_router::{
        CloseReason, MediaError, MediaRouter, PublishSpec, RouterError, RouterEventSink, RouterFuture, SubscribeSpec,
        VideoWish,
    };
    use crate::metrics::Metrics;
    use crate::model::Session;
    use crate::signaling::frame::Frame;
    use crate::signaling::limits::TokenKey;
    use crate::signaling::outbox::OutboxRx;
    use crate::signaling::{HubConfig, hub::ConnRef};
    use crate::token::{Grant, TokenFormat};

    #[derive(Default)]
    struct Recording {
        calls: Mutex<Vec<String>>,
        sink: Mutex<Option<RouterEventSink>>,
    }

    impl Recording {
        fn record(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }

        fn emit(&self, connection: &ConnRef, target: Target, kind: RouterEventKind) {
            let sink = self.sink.lock().unwrap().clone().unwrap();
            let ev = RouterEvent {
                session_id: connection.session_id.clone(),
                connection_id: connection.connection_id.clone(),
                target,
                kind,
            };
            sink.send(ev).unwrap();
        }
    }

    impl MediaRouter for Recording {
        fn start(&self, events: RouterEventSink) {
            *self.sink.lock().unwrap() = Some(events);
        }
        fn publish(&self, spec: PublishSpec) -> RouterFuture<'_, String> {
            self.record(format!("publish {} {}", spec.stream_id, spec.sdp_offer));
            Box::pin(async move { Ok(format!("answer-to {}", spec.sdp_offer)) })
        }
        fn subscribe(&self, spec: SubscribeSpec) -> RouterFuture<'_, String> {
            let wish = if spec.wish == VideoWish::default() { String::new() } else { format!(" {:?}", spec.wish) };
            self.record(format!("subscribe {} {}{wish}", spec.stream_id, spec.sdp_offer));
            Box::pin(async move {
                match spec.sdp_offer.as_str() {
                    "bad" => Err(MediaError::Router(RouterError::BadSdp("no media sections".into()))),
                    _ => Ok("sub-answer".into()),
                }
            })
        }
        fn add_ice_candidate(&self, _: &str, target: Target, candidate: String) -> RouterFuture<'_, ()> {
            self.record(format!("ice {target:?} {candidate}"));
            Box::pin(async { Ok(()) })
        }
        fn set_video_wish(&self, _: &str, subscription_id: &str, wish: VideoWish) -> RouterFuture<'_, ()> {
            self.record(format!("wish {subscription_id} {wish:?}"));
            Box::pin(async { Ok(()) })
        }
        fn unpublish(&self, _: &str, stream_id: &str) {
            self.record(format!("unpublish {stream_id}"));
        }
        fn unsubscribe(&self, _: &str, subscription_id: &str) {
            self.record(format!("unsubscribe {subscription_id}"));
        }
        fn disconnect(&self, _: &str, connection_id: &str) {
            self.record(format!("disconnect {connection_id}"));
        }
    }

    fn session() -> Session {
        Session {
            id: "1_s".into(),
            api_key: "12345678".into(),
            media_mode: MediaMode::Routed,
            archive_mode: ArchiveMode::Manual,
            location: None,
            cipher_suite: Some(6),
            archive_name: None,
            archive_resolution: None,
            created_ms: 0,
        }
    }

    fn grant(role: Role) -> Grant {
        Grant {
            format: TokenFormat::Jwt,
            api_key: "12345678".into(),
            session_id: "1_s".into(),
            role,
            expires_at: i64::MAX,
            connection_data: None,
            initial_layout_class_list: vec![],
        }
    }

    async fn next_event(rx: &mut OutboxRx, ty: &str) -> Value {
        for _ in 0..20 {
            let f = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.expect("a frame").expect("open");
            let text = match f {
                Frame::Text(t) => t.to_string(),
                Frame::Event { seq, body } => body.with_seq(seq),
                Frame::Close { .. } => panic!("closed"),
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["type"] == ty {
                return v;
            }
        }
        panic!("no {ty}")
    }

    fn publish() -> ClientMessage {
        serde_json::from_value(
            json!({"type": "publish", "stream": {"e2ee": {"cipher_suite": 6}}, "sdp_offer": "pub-offer"}),
        )
        .unwrap()
    }

    fn subscribe(stream_id: &str, sdp_offer: &str) -> ClientMessage {
        ClientMessage::Subscribe { id: None, stream_id: stream_id.into(), sdp_offer: sdp_offer.into() }
    }

    #[tokio::test]
    async fn routed_offers_go_to_the_router_and_its_events_reach_the_client() {
        let router = Arc::new(Recording::default());
        let hub = Hub::new(HubConfig::default(), router.clone(), Arc::new(Metrics::default()));
        let (publisher, _prx) = hub.join(session(), &grant(Role::Publisher), TokenKey::of("t")).unwrap();
        let (subscriber, mut srx) = hub.join(session(), &grant(Role::Subscriber), TokenKey::of("t")).unwrap();

        let Ok(AckBody::Published { stream_id, sdp_answer }) = hub.handle(&publisher, publish()).await else {
            panic!("publish refused")
        };
        assert_eq!(sdp_answer.as_deref(), Some("answer-to pub-offer"));
        assert_eq!(next_event(&mut srx, "stream_created").await["stream"]["e2ee"], true);

        let Ok(AckBody::Subscribed { subscription_id, sdp_answer }) =
            hub.handle(&subscriber, subscribe(&stream_id, "sub-offer")).await
        else {
            panic!("subscribe refused")
        };
        assert_eq!(sdp_answer.as_deref(), Some("sub-answer"));
        let e = hub.handle(&subscriber, subscribe(&stream_id, "bad")).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::MediaBadSdp);
        assert_eq!(e.message, "the SDP offer does not parse: no media sections");

        let cand = IceCandidate { candidate: "candidate:1".into(), sdp_mid: None, sdp_m_line_index: Some(0) };
        let ice =
            ClientMessage::Ice { id: None, subscription_id: None, stream_id: Some(stream_id.clone()), candidate: cand };
        hub.handle(&publisher, ice.clone()).await.unwrap();
        // Another client's stream is not yours to send candidates for.
        assert_eq!(hub.handle(&subscriber, ice).await.unwrap_err().code, ErrorCode::UnknownStream);

        let downstream = Target::Subscriber { subscription_id: subscription_id.clone() };
        router.emit(&subscriber, downstream.clone(), RouterEventKind::Connected);
        assert_eq!(next_event(&mut srx, "media_connected").await["subscription_id"], subscription_id.as_str());
        router.emit(&subscriber, downstream, RouterEventKind::Closed(CloseReason::StreamEnded));
        assert_eq!(next_event(&mut srx, "media_closed").await["message"], "the stream ended");

        let unsubscribe = ClientMessage::Unsubscribe { id: None, subscription_id: subscription_id.clone() };
        hub.handle(&subscriber, unsubscribe).await.unwrap();
        hub.leave(&publisher);
        let calls = router.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            vec![
                format!("publish {stream_id} pub-offer"),
                format!("subscribe {stream_id} sub-offer"),
                format!("subscribe {stream_id} bad"),
                format!("ice Publisher {{ stream_id: \"{stream_id}\" }} candidate:1"),
                format!("unsubscribe {subscription_id}"),
                format!("disconnect {}", publisher.connection_id),
            ]
        );
    }

    #[tokio::test]
    async fn a_media_restart_asks_publishers_first_then_their_subscribers_under_the_same_ids() {
        let router = Arc::new(Recording::default());
        let hub = Hub::new(HubConfig::default(), router.clone(), Arc::new(Metrics::default()));
        let (publisher, mut prx) = hub.join(session(), &grant(Role::Publisher), TokenKey::of("t")).unwrap();
        let (subscriber, mut srx) = hub.join(session(), &grant(Role::Subscriber), TokenKey::of("t")).unwrap();
        let Ok(AckBody::Published { stream_id, .. }) = hub.handle(&publisher, publish()).await else { panic!() };
        let Ok(AckBody::Subscribed { subscription_id, .. }) =
            hub.handle(&subscriber, subscribe(&stream_id, "sub-offer")).await
        else {
            panic!()
        };
        let renegotiate =
            |target: MediaTarget, offer: &str| ClientMessage::Renegotiate { id: None, target, sdp_offer: offer.into() };
        let upstream = MediaTarget::Stream { stream_id: stream_id.clone() };
        let downstream = MediaTarget::Subscription { subscription_id: subscription_id.clone() };

        // Nothing pending: a renegotiate out of the blue is refused, and reaches no router.
        let e = hub.handle(&publisher, renegotiate(upstream.clone(), "again")).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);

        hub.restart_media(&hub.room("1_s").unwrap());
        assert_eq!(next_event(&mut prx, "media_restart").await["stream_id"], stream_id.as_str());
        // The subscriber is not asked yet (its stream is not on the new router), and may not jump
        // the queue; nor may anyone renegotiate what is not theirs.
        let e = hub.handle(&subscriber, renegotiate(downstream.clone(), "early")).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        let e = hub.handle(&subscriber, renegotiate(upstream.clone(), "theft")).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::NotOwner);

        let Ok(AckBody::Renegotiated { sdp_answer }) = hub.handle(&publisher, renegotiate(upstream, "pub-2")).await
        else {
            panic!("publisher renegotiation refused")
        };
        assert_eq!(sdp_answer, "answer-to pub-2");
        assert_eq!(next_event(&mut srx, "media_restart").await["subscription_id"], subscription_id.as_str());
        let Ok(AckBody::Renegotiated { sdp_answer }) =
            hub.handle(&subscriber, renegotiate(downstream.clone(), "sub-2")).await
        else {
            panic!("subscriber renegotiation refused")
        };
        assert_eq!(sdp_answer, "sub-answer");
        // Done once: a second one has nothing pending.
        let e = hub.handle(&subscriber, renegotiate(downstream, "sub-3")).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        let calls = router.calls.lock().unwrap().clone();
        assert_eq!(
            calls[2..],
            [format!("publish {stream_id} pub-2"), format!("subscribe {stream_id} sub-2")],
            "same ids on the new router, publisher first"
        );
    }

    fn preference(subscription_id: &str, v: Value) -> ClientMessage {
        let mut m = json!({"type": "set_video_preference", "subscription_id": subscription_id});
        for (k, x) in v.as_object().unwrap() {
            m[k] = x.clone();
        }
        serde_json::from_value(m).unwrap()
    }

    #[tokio::test]
    async fn a_video_preference_reaches_the_router_and_outlives_a_media_restart() {
        let router = Arc::new(Recording::default());
        let hub = Hub::new(HubConfig::default(), router.clone(), Arc::new(Metrics::default()));
        let (publisher, mut prx) = hub.join(session(), &grant(Role::Publisher), TokenKey::of("t")).unwrap();
        let (subscriber, mut srx) = hub.join(session(), &grant(Role::Subscriber), TokenKey::of("t")).unwrap();
        let (other, _orx) = hub.join(session(), &grant(Role::Subscriber), TokenKey::of("t")).unwrap();
        let Ok(AckBody::Published { stream_id, .. }) = hub.handle(&publisher, publish()).await else { panic!() };
        let Ok(AckBody::Subscribed { subscription_id: sub, .. }) =
            hub.handle(&subscriber, subscribe(&stream_id, "sub-offer")).await
        else {
            panic!()
        };

        let small = json!({"max_dimensions": {"width": 320, "height": 180}, "max_frame_rate": 15});
        assert_eq!(hub.handle(&subscriber, preference(&sub, small)).await.unwrap(), AckBody::Done {});
        let e = hub.handle(&subscriber, preference(&sub, json!({"max_frame_rate": 0}))).await.unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::BadRequest, "max_frame_rate must be from 1 to 240 frames per second, or null")
        );
        // Another client's subscription is not theirs to steer, and not even named to them.
        let e = hub.handle(&other, preference(&sub, json!({"video": false}))).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownSubscription);

        // The router's answers become events for their owners.
        let upstream = Target::Publisher { stream_id: stream_id.clone() };
        let downstream = Target::Subscriber { subscription_id: sub.clone() };
        router.emit(&publisher, upstream.clone(), RouterEventKind::LayersWanted(vec!["q".into()]));
        let ev = next_event(&mut prx, "layers_wanted").await;
        assert_eq!((ev["stream_id"].as_str(), &ev["rids"]), (Some(stream_id.as_str()), &json!(["q"])));
        let changed = RouterEventKind::LayerChanged { rid: Some("q".into()), temporal_layer: Some(1), paused: false };
        router.emit(&subscriber, downstream, changed);
        let ev = next_event(&mut srx, "video_layer_changed").await;
        assert_eq!(
            ev,
            json!({"seq": ev["seq"], "type": "video_layer_changed", "subscription_id": sub,
            "rid": "q", "temporal_layer": 1, "paused": false})
        );

        // After a restart the next router gets the preference with the offer.
        hub.restart_media(&hub.room("1_s").unwrap());
        next_event(&mut prx, "media_restart").await;
        let renegotiate =
            |target: MediaTarget, offer: &str| ClientMessage::Renegotiate { id: None, target, sdp_offer: offer.into() };
        hub.handle(&publisher, renegotiate(MediaTarget::Stream { stream_id: stream_id.clone() }, "p2")).await.unwrap();
        next_event(&mut srx, "media_restart").await;
        let downstream = MediaTarget::Subscription { subscription_id: sub.clone() };
        hub.handle(&subscriber, renegotiate(downstream, "s2")).await.unwrap();
        let calls = router.calls.lock().unwrap().clone();
        let wish = "VideoWish { video: true, max_size: Some((320, 180)), max_frame_rate: Some(15) }";
        assert_eq!(calls[2], format!("wish {sub} {wish}"));
        assert_eq!(calls.last().unwrap(), &format!("subscribe {stream_id} s2 {wish}"));
    }

    #[tokio::test]
    async fn the_active_speaker_is_announced_to_everyone_and_cleared_when_its_stream_ends() {
        let router = Arc::new(Recording::default());
        let hub = Hub::new(HubConfig::default(), router.clone(), Arc::new(Metrics::default()));
        let (publisher, _prx) = hub.join(session(), &grant(Role::Publisher), TokenKey::of("t")).unwrap();
        let (listener, mut lrx) = hub.join(session(), &grant(Role::Subscriber), TokenKey::of("t")).unwrap();
        let Ok(AckBody::Published { stream_id, .. }) = hub.handle(&publisher, publish()).await else { panic!() };
        let upstream = Target::Publisher { stream_id: stream_id.clone() };
        router.emit(&publisher, upstream.clone(), RouterEventKind::ActiveSpeaker);
        let ev = next_event(&mut lrx, "active_speaker_changed").await;
        assert_eq!(ev["stream_id"], stream_id.as_str());
        assert_eq!(ev["connection_id"], publisher.connection_id.as_str());
        let unpublish = ClientMessage::Unpublish { id: None, stream_id: stream_id.clone() };
        hub.handle(&publisher, unpublish).await.unwrap();
        let ev = next_event(&mut lrx, "active_speaker_changed").await;
        assert_eq!((&ev["stream_id"], &ev["connection_id"]), (&Value::Null, &Value::Null));
        // A late event about the stream that is gone names nobody: the next thing the listener
        // gets is what the router said after it.
        router.emit(&publisher, upstream, RouterEventKind::ActiveSpeaker);
        let marker = Target::Subscriber { subscription_id: "marker".into() };
        router.emit(&listener, marker, RouterEventKind::LayerChanged { rid: None, temporal_layer: None, paused: true });
        let f = tokio::time::timeout(Duration::from_secs(2), lrx.recv()).await.expect("a frame").expect("open");
        let Frame::Event { seq, body } = f else { panic!("not an event") };
        let v: Value = serde_json::from_str(&body.with_seq(seq)).unwrap();
        assert_eq!(v["type"], "video_layer_changed");
    }

    #[tokio::test]
    async fn a_failed_upstream_ends_the_stream_for_everyone_with_reason_media_failed() {
        let router = Arc::new(Recording::default());
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(HubConfig::default(), router.clone(), metrics.clone());
        let (publisher, mut prx) = hub.join(session(), &grant(Role::Publisher), TokenKey::of("t")).unwrap();
        let (subscriber, mut srx) = hub.join(session(), &grant(Role::Subscriber), TokenKey::of("t")).unwrap();
        let Ok(AckBody::Published { stream_id, .. }) = hub.handle(&publisher, publish()).await else { panic!() };
        let Ok(AckBody::Subscribed { subscription_id, .. }) =
            hub.handle(&subscriber, subscribe(&stream_id, "sub-offer")).await
        else {
            panic!()
        };

        // Only the owner's upstream counts: a stray event naming another connection ends nothing.
        let upstream = Target::Publisher { stream_id: stream_id.clone() };
        router.emit(&subscriber, upstream.clone(), RouterEventKind::Failed("stray".into()));
        router.emit(&publisher, upstream, RouterEventKind::Failed("ICE/DTLS not connected within 30 s".into()));

        let failed = next_event(&mut prx, "media_failed").await;
        assert_eq!(
            (failed["stream_id"].as_str(), failed["message"].as_str()),
            (Some(stream_id.as_str()), Some("ICE/DTLS not connected within 30 s"))
        );
        assert_eq!(next_event(&mut srx, "subscription_ended").await["subscription_id"], subscription_id.as_str());
        for rx in [&mut prx, &mut srx] {
            let ev = next_event(rx, "stream_destroyed").await;
            assert_eq!(
                (ev["stream"]["stream_id"].as_str(), ev["reason"].as_str()),
                (Some(stream_id.as_str()), Some("mediaFailed"))
            );
        }
        assert!(hub.streams("1_s").is_empty());
        assert_eq!(metrics.streams.load(Relaxed), 0);
        let e = hub.handle(&publisher, ClientMessage::Unpublish { id: None, stream_id }).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownStream);
    }
}
