//! The JSON shapes of docs/signaling.md parse into the types and serialize back the same.

use serde_json::{Value, json};
use umbra_protocol::*;

fn client(v: Value) -> ClientMessage {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn server(v: Value) -> ServerFrame {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn round_trips_client(v: Value) {
    let m = client(v.clone());
    assert_eq!(serde_json::to_value(&m).unwrap(), v, "{m:?}");
}

fn round_trips_server(v: Value) {
    let m = server(v.clone());
    assert_eq!(serde_json::to_value(&m).unwrap(), v, "{m:?}");
}

#[test]
fn every_client_message_of_the_document_parses_and_round_trips() {
    round_trips_client(json!({"type": "connect", "v": 1, "token": "T1==x", "session_id": "1_MX4"}));
    round_trips_client(json!({"type": "connect", "v": 1, "token": "T1==x"}));
    round_trips_client(
        json!({"type": "resume", "v": 1, "session_id": "s", "connection_id": "c", "resume_token": "r", "last_seq": 41}),
    );
    round_trips_client(
        json!({"type": "publish", "id": 1, "stream": {"name": "camera", "has_audio": true, "has_video": false, "video_type": "screen", "e2ee": {"cipher_suite": 6}}, "sdp_offer": "v=0"}),
    );
    round_trips_client(json!({"type": "unpublish", "id": "a", "stream_id": "s"}));
    round_trips_client(json!({"type": "subscribe", "id": 3, "stream_id": "s", "sdp_offer": "v=0"}));
    round_trips_client(json!({"type": "unsubscribe", "id": 6, "subscription_id": "x"}));
    round_trips_client(json!({"type": "answer", "id": 4, "subscription_id": "x", "sdp_answer": "v=0"}));
    round_trips_client(
        json!({"type": "ice", "id": 5, "subscription_id": "x", "candidate": {"candidate": "candidate:1", "sdpMid": "0", "sdpMLineIndex": 0}}),
    );
    round_trips_client(json!({"type": "signal", "id": 7, "to": "c", "signal_type": "chat", "data": "hello"}));
    round_trips_client(
        json!({"type": "set_stream_property", "id": 8, "stream_id": "s", "property": "has_audio", "value": false}),
    );
    round_trips_client(
        json!({"type": "set_stream_property", "id": 8, "stream_id": "s", "property": "video_dimensions", "value": {"width": 640, "height": 480}}),
    );
    round_trips_client(json!({"type": "force_disconnect", "id": 9, "connection_id": "c"}));
    round_trips_client(json!({"type": "ping", "id": 10}));
    round_trips_client(json!({"type": "leave"}));
}

#[test]
fn publish_stream_defaults_to_audio_and_video() {
    let ClientMessage::Publish { stream, id, sdp_offer } = client(json!({"type": "publish", "stream": {}})) else {
        panic!()
    };
    assert!(stream.has_audio && stream.has_video && stream.e2ee.is_none() && id.is_none() && sdp_offer.is_none());
}

#[test]
fn property_values_must_have_the_property_type() {
    for bad in [
        json!({"type": "set_stream_property", "stream_id": "s", "property": "has_audio", "value": {"width": 1, "height": 2}}),
        json!({"type": "set_stream_property", "stream_id": "s", "property": "video_dimensions", "value": true}),
        json!({"type": "set_stream_property", "stream_id": "s", "property": "video_dimensions", "value": {"width": 1}}),
        json!({"type": "set_stream_property", "stream_id": "s", "property": "video_dimensions", "value": {"width": 1, "height": 2, "pad": "x"}}),
        json!({"type": "set_stream_property", "stream_id": "s", "property": "name", "value": "x"}),
    ] {
        assert!(serde_json::from_value::<ClientMessage>(bad.clone()).is_err(), "accepted {bad}");
    }
}

#[test]
fn unknown_types_and_missing_fields_are_refused() {
    for bad in [
        json!({"type": "dance"}),
        json!({"type": "subscribe", "stream_id": "s"}),
        json!({"type": "signal", "id": {"an": "object"}, "data": "x"}),
        json!({"token": "x"}),
    ] {
        assert!(serde_json::from_value::<ClientMessage>(bad.clone()).is_err(), "accepted {bad}");
    }
}

fn stream() -> Value {
    json!({"stream_id": "s", "connection_id": "c", "name": "cam", "has_audio": true, "has_video": true,
           "video_type": "camera", "video_dimensions": null, "e2ee": true, "cipher_suite": 6,
           "created_at": 1795954610916i64, "layout_class_list": []})
}

fn connection() -> Value {
    json!({"connection_id": "c", "data": "bob", "created_at": 1795954610916i64})
}

#[test]
fn every_server_message_of_the_document_parses_and_round_trips() {
    round_trips_server(json!({"type": "welcome", "v": 1, "session_id": "s", "connection_id": "c", "resume_token": "r",
        "role": "publisher", "connection_data": "alice", "media_mode": "routed", "archive_mode": "manual",
        "e2ee": true, "cipher_suite": 6, "heartbeat_interval_ms": 10000, "heartbeat_timeout_ms": 30000,
        "resume_window_ms": 20000, "connections": [connection()], "streams": [stream()], "complete": false}));
    round_trips_server(json!({"type": "snapshot", "connections": [], "streams": [stream()], "complete": true}));
    round_trips_server(json!({"type": "resumed", "session_id": "s", "connection_id": "c", "last_seq": 4}));
    round_trips_server(json!({"type": "ack", "id": 1, "stream_id": "s", "sdp_answer": null}));
    round_trips_server(json!({"type": "ack", "id": 1, "subscription_id": "x", "sdp_answer": "v=0"}));
    round_trips_server(json!({"type": "ack", "id": 1}));
    round_trips_server(json!({"type": "error", "id": null, "code": "token_expired", "message": "m"}));
    round_trips_server(json!({"type": "pong", "id": 10}));
    round_trips_server(json!({"seq": 1, "type": "connection_created", "connection": connection()}));
    round_trips_server(
        json!({"seq": 2, "type": "connection_destroyed", "connection": connection(), "reason": "networkDisconnected"}),
    );
    round_trips_server(json!({"seq": 3, "type": "stream_created", "stream": stream()}));
    round_trips_server(json!({"seq": 4, "type": "stream_destroyed", "stream": stream(), "reason": "unpublished"}));
    round_trips_server(
        json!({"seq": 5, "type": "stream_property_changed", "stream_id": "s", "property": "has_video", "old_value": true, "new_value": false}),
    );
    round_trips_server(
        json!({"seq": 5, "type": "stream_property_changed", "stream_id": "s", "property": "video_dimensions", "old_value": null, "new_value": {"width": 640, "height": 480}}),
    );
    round_trips_server(json!({"seq": 6, "type": "signal", "from": null, "signal_type": "chat", "data": "hi"}));
    round_trips_server(
        json!({"seq": 7, "type": "subscribe_offer", "subscription_id": "x", "stream_id": "s", "subscriber_connection_id": "c", "sdp_offer": "v=0"}),
    );
    round_trips_server(
        json!({"seq": 8, "type": "answer", "subscription_id": "x", "stream_id": "s", "sdp_answer": "v=0"}),
    );
    round_trips_server(
        json!({"seq": 9, "type": "ice", "subscription_id": "x", "from": "publisher", "candidate": {"candidate": "", "sdpMid": null, "sdpMLineIndex": null}}),
    );
    round_trips_server(json!({"seq": 10, "type": "subscription_ended", "subscription_id": "x", "stream_id": "s"}));
    round_trips_server(json!({"seq": 11, "type": "mute_forced", "stream_id": "s"}));
    round_trips_server(json!({"seq": 12, "type": "media_connected", "stream_id": "s"}));
    round_trips_server(json!({"seq": 13, "type": "media_failed", "subscription_id": "x", "message": "ICE failed"}));
    round_trips_server(json!({"seq": 14, "type": "media_closed", "stream_id": "s", "message": "unpublished"}));
    round_trips_server(json!({"seq": 15, "type": "forced_disconnect"}));
}

#[test]
fn kinds_match_the_serialized_type_and_events_are_told_apart() {
    let msgs = [
        ServerMessage::Pong { id: None },
        ServerMessage::ForcedDisconnect,
        ServerMessage::MuteForced { stream_id: "s".into() },
        ServerMessage::Snapshot { connections: vec![], streams: vec![], complete: true },
    ];
    for m in msgs {
        let v: Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(v["type"], m.kind());
        assert!(ServerMessage::KINDS.contains(&m.kind()));
    }
    assert!(ServerMessage::MuteForced { stream_id: "s".into() }.is_event());
    assert!(!ServerMessage::Pong { id: None }.is_event());
}

#[test]
fn an_error_code_from_a_newer_server_still_parses() {
    let f = server(json!({"type": "error", "id": 3, "code": "rate_limited", "message": "slow down"}));
    assert!(matches!(f.message, ServerMessage::Error { code: ErrorCode::Unrecognized, .. }));
    for c in ErrorCode::ALL {
        let v = serde_json::to_value(c).unwrap();
        assert_eq!(v, c.as_str());
        assert_eq!(serde_json::from_value::<ErrorCode>(v).unwrap(), *c);
    }
}

#[test]
fn client_message_ids_are_set_and_read() {
    let m = ClientMessage::Ping { id: None }.with_id(7.into());
    assert_eq!(m.id(), Some(&RequestId::Number(7)));
    assert_eq!(serde_json::to_value(&m).unwrap(), json!({"type": "ping", "id": 7}));
    assert_eq!(ClientMessage::Leave.with_id(1.into()).id(), None);
    for k in ClientMessage::KINDS {
        assert!(!ServerMessage::KINDS.contains(k) || ["signal", "answer", "ice"].contains(k), "{k}");
    }
}

#[test]
fn property_values_candidates_and_ids_are_bounded() {
    use umbra_protocol::{limits, validate_ice_candidate, validate_request_id, validate_video_dimensions};
    let dims = |width, height| VideoDimensions { width, height };
    assert!(validate_video_dimensions(&dims(1920, 1080)).is_ok());
    assert!(validate_video_dimensions(&dims(limits::MAX_VIDEO_DIMENSION, 1)).is_ok());
    for bad in [dims(0, 1), dims(1, 0), dims(limits::MAX_VIDEO_DIMENSION + 1, 1), dims(u32::MAX, u32::MAX)] {
        let e = validate_video_dimensions(&bad).unwrap_err();
        assert!(e.contains("1 to 16384"), "{e}");
    }
    // Anything but two integers is not a VideoDimensions at all.
    for garbage in [
        json!({"width": 1.5, "height": 2}),
        json!({"width": -1, "height": 2}),
        json!({"width": 1, "height": 2, "x": "y"}),
    ] {
        assert!(serde_json::from_value::<VideoDimensions>(garbage.clone()).is_err(), "{garbage}");
    }
    let cand = |c: &str| IceCandidate { candidate: c.into(), sdp_mid: None, sdp_m_line_index: None };
    assert!(validate_ice_candidate(&cand("")).is_ok());
    assert!(validate_ice_candidate(&cand(&"c".repeat(limits::MAX_ICE_CANDIDATE + 1))).is_err());
    assert!(validate_request_id(&RequestId::Text("x".repeat(limits::MAX_REQUEST_ID))).is_ok());
    assert!(validate_request_id(&RequestId::Text("x".repeat(limits::MAX_REQUEST_ID + 1))).is_err());
    assert!(validate_request_id(&RequestId::Number(u64::MAX)).is_ok());
}

#[test]
fn video_dimensions_parse_only_from_an_object_of_two_integers_in_range() {
    let ok: VideoDimensions = serde_json::from_value(json!({"height": 480, "width": 640})).unwrap();
    assert_eq!(ok, VideoDimensions { width: 640, height: 480 });
    for bad in [
        json!([640, 480]),
        json!({"width": 640}),
        json!({"width": 0, "height": 480}),
        json!({"width": 640, "height": 16385}),
        json!(null),
    ] {
        assert!(serde_json::from_value::<VideoDimensions>(bad.clone()).is_err(), "{bad}");
    }
    let e = serde_json::from_str::<VideoDimensions>(r#"{"width": 640, "height": 480, "width": 1}"#).unwrap_err();
    assert!(e.to_string().contains("duplicate field `width`"), "{e}");
}
