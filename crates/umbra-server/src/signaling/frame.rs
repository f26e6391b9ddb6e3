//! What travels from the hub to a socket task, and how it becomes text.
//!
//! An event is serialized once, however many connections it goes to; each socket splices its
//! own `"seq":n,` in front when writing, so neither fan-out nor the replay buffers copy it per
//! connection. Replies and handshake messages carry no `seq` and go as they are.

use std::sync::Arc;

use umbra_protocol::ServerMessage;

/// An event's JSON object, shared by every connection it goes to.
#[derive(Debug, Clone)]
pub struct EventBody(Arc<str>);

impl EventBody {
    pub fn new(event: &ServerMessage) -> Self {
        debug_assert!(event.is_event(), "{} is not an event", event.kind());
        EventBody(event.to_json().into())
    }

    /// An event this server serialized earlier (another node's, mirrored through Redis).
    pub fn from_trusted_json(json: String) -> Self {
        EventBody(json.into())
    }

    /// The event's JSON object, without `seq`.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// The text a client receives: `{"seq":n,` followed by the rest of the object.
    pub fn with_seq(&self, seq: u64) -> String {
        // `to_json` of a `ServerMessage` is an object beginning with `{"type":`, never `{}`.
        format!("{{\"seq\":{seq},{}", &self.0[1..])
    }

    /// The bytes of the text a client receives, `seq` included (at most 20 digits).
    pub fn wire_len(&self) -> usize {
        self.0.len() + SEQ_OVERHEAD
    }
}

/// `"seq":` with a u64 and a comma.
const SEQ_OVERHEAD: usize = 27;

#[derive(Debug)]
pub enum Frame {
    /// A message without a sequence number (welcome, snapshot, resumed).
    Text(Arc<str>),
    Event {
        seq: u64,
        body: EventBody,
    },
    /// Send a close frame and end the socket.
    Close {
        code: u16,
        reason: &'static str,
    },
}

impl Frame {
    pub fn message(m: &ServerMessage) -> Self {
        Frame::Text(m.to_json().into())
    }

    /// What the frame costs while queued, counted as the bytes it becomes on the wire.
    pub fn wire_len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Event { body, .. } => body.wire_len(),
            Frame::Close { reason, .. } => reason.len() + 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use umbra_protocol::*;

    use super::*;

    fn events() -> Vec<ServerMessage> {
        let connection = ConnectionInfo { connection_id: "c".into(), data: Some("d\"{".into()), created_at: 1 };
        let stream = StreamInfo {
            stream_id: "s".into(),
            connection_id: "c".into(),
            name: "cam".into(),
            has_audio: true,
            has_video: false,
            video_type: VideoType::Screen,
            video_dimensions: Some(VideoDimensions { width: 2, height: 4 }),
            e2ee: true,
            cipher_suite: Some(6),
            created_at: 2,
            layout_class_list: vec!["focus".into()],
        };
        let target = MediaTarget::Subscription { subscription_id: "x".into() };
        vec![
            ServerMessage::ConnectionCreated { connection: connection.clone() },
            ServerMessage::ConnectionDestroyed { connection, reason: Reason::NetworkDisconnected },
            ServerMessage::StreamCreated { stream: stream.clone() },
            ServerMessage::StreamDestroyed { stream, reason: Reason::MediaFailed },
            ServerMessage::StreamPropertyChanged {
                stream_id: "s".into(),
                change: PropertyChanged::HasAudio { old_value: true, new_value: false },
            },
            ServerMessage::Signal { from: None, signal_type: String::new(), data: "{}".into() },
            ServerMessage::SubscribeOffer {
                subscription_id: "x".into(),
                stream_id: "s".into(),
                subscriber_connection_id: "c".into(),
                sdp_offer: "v=0".into(),
            },
            ServerMessage::Answer { subscription_id: "x".into(), stream_id: "s".into(), sdp_answer: "v=0".into() },
            ServerMessage::Ice {
                subscription_id: "x".into(),
                from: IcePeer::Publisher,
                candidate: IceCandidate { candidate: String::new(), sdp_mid: None, sdp_m_line_index: None },
            },
            ServerMessage::SubscriptionEnded { subscription_id: "x".into(), stream_id: "s".into() },
            ServerMessage::MuteForced { stream_id: "s".into() },
            ServerMessage::MediaConnected { target: target.clone() },
            ServerMessage::MediaFailed { target: target.clone(), message: "ICE".into() },
            ServerMessage::MediaClosed { target: target.clone(), message: "the stream ended".into() },
            ServerMessage::MediaRestart { target },
            ServerMessage::LayersWanted { stream_id: "s".into(), rids: vec!["q".into(), "f".into()] },
            ServerMessage::VideoLayerChanged {
                subscription_id: "x".into(),
                rid: Some("h".into()),
                temporal_layer: None,
                paused: false,
            },
            ServerMessage::ActiveSpeakerChanged { stream_id: None, connection_id: None },
            ServerMessage::ForcedDisconnect,
        ]
    }

    #[test]
    fn a_spliced_event_parses_as_the_frame_clients_read() {
        let replies_and_handshake = ["welcome", "snapshot", "resumed", "ack", "error", "pong"];
        assert_eq!(events().len(), ServerMessage::KINDS.len() - replies_and_handshake.len(), "every event is covered");
        for (i, event) in events().into_iter().enumerate() {
            // Every digit count from 1 to 19.
            let seq = 1u64 << (i * 3).min(63);
            let text = EventBody::new(&event).with_seq(seq);
            let frame: ServerFrame = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(frame, ServerFrame { seq: Some(seq), message: event }, "{text}");
        }
    }
}
