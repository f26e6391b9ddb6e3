//! The rules signaling applies to what a client asks, as pure functions: what a role may do, the
//! end-to-end-encryption gate, what a publish must carry, and the protocol's limits.

use umbra_protocol::{
    E2eeDeclaration, ErrorCode, IceCandidate, MediaMode, PropertyChange, PropertyChanged, Role, StreamInfo,
    validate_ice_candidate, validate_signal, validate_video_dimensions,
};

use super::error::SigError;

/// A stream name longer than this is refused: it travels in every `welcome` and event.
pub const MAX_STREAM_NAME: usize = 256;

/// Something a role may or may not do (signaling.md § Roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Publish,
    Subscribe,
    Signal,
    ForceDisconnect,
}

pub fn allow(role: Role, action: Action) -> Result<(), SigError> {
    let (allowed, what) = match action {
        Action::Publish => (role.can_publish(), "publish"),
        Action::Subscribe => (role.can_subscribe(), "subscribe"),
        Action::Signal => (role.can_signal(), "send signals"),
        Action::ForceDisconnect => (role.can_moderate(), "force a disconnect; only a moderator can"),
    };
    if allowed {
        Ok(())
    } else {
        Err(SigError::new(ErrorCode::RoleForbidden, format!("role {} cannot {what}", role.as_str())))
    }
}

/// The E2EE gate: in an encrypted session nothing that has not declared encryption with the
/// session's suite may send media, so a client that cannot encrypt never sends plaintext into it;
/// in a plain session a declared stream is refused, as its subscribers would hold no key.
pub fn e2ee_gate(session_suite: Option<u16>, declared: Option<E2eeDeclaration>) -> Result<(), SigError> {
    match (session_suite, declared) {
        (Some(suite), None) => Err(SigError::new(
            ErrorCode::E2eeRequired,
            format!(
                "client does not support end-to-end encryption: this session is end-to-end encrypted, \
                 so a publish must declare stream.e2ee.cipher_suite = {suite}"
            ),
        )),
        (Some(suite), Some(d)) if d.cipher_suite != suite => Err(SigError::new(
            ErrorCode::E2eeCipherSuiteMismatch,
            format!("this session encrypts with cipher suite {suite}, the stream declared {}", d.cipher_suite),
        )),
        (None, Some(_)) => Err(SigError::new(
            ErrorCode::E2eeNotEnabled,
            "this session is not end-to-end encrypted: its subscribers would hold no key; publish without stream.e2ee",
        )),
        _ => Ok(()),
    }
}

pub fn stream_name(name: Option<String>) -> Result<String, SigError> {
    let name = name.unwrap_or_default();
    if name.len() > MAX_STREAM_NAME {
        return Err(SigError::bad_request(format!("stream name is longer than {MAX_STREAM_NAME} bytes")));
    }
    Ok(name)
}

/// A publish's offer: the router's in routed sessions, none in relayed ones (each subscriber's
/// offer reaches the publisher instead).
pub fn publish_offer(mode: MediaMode, offer: Option<String>) -> Result<Option<String>, SigError> {
    match (mode, offer) {
        (MediaMode::Relayed, None) => Ok(None),
        (MediaMode::Relayed, Some(_)) => Err(SigError::bad_request(
            "relayed session: publish carries no SDP; each subscriber's offer reaches you as subscribe_offer",
        )),
        (MediaMode::Routed, None) => {
            Err(SigError::bad_request("routed session: publish needs sdp_offer for the media router"))
        }
        (MediaMode::Routed, Some(offer)) => Ok(Some(offer)),
    }
}

pub fn subscribe_offer(offer: &str) -> Result<(), SigError> {
    if offer.trim().is_empty() {
        return Err(SigError::bad_request("sdp_offer is empty"));
    }
    Ok(())
}

pub fn signal(signal_type: Option<&str>, data: &str) -> Result<(), SigError> {
    validate_signal(signal_type, data).map_err(SigError::bad_request)
}

/// A property value within the protocol's ranges (its type is already the property's).
pub fn property(change: &PropertyChange) -> Result<(), SigError> {
    match change {
        PropertyChange::HasAudio(_) | PropertyChange::HasVideo(_) => Ok(()),
        PropertyChange::VideoDimensions(d) => validate_video_dimensions(d).map_err(SigError::bad_request),
    }
}

pub fn ice_candidate(candidate: &IceCandidate) -> Result<(), SigError> {
    validate_ice_candidate(candidate).map_err(SigError::bad_request)
}

/// Applies a property change to a stream and says what changed. The value's type is already
/// the property's: `PropertyChange` does not parse otherwise.
pub fn apply_property(stream: &mut StreamInfo, change: PropertyChange) -> PropertyChanged {
    match change {
        PropertyChange::HasAudio(new_value) => {
            let old_value = std::mem::replace(&mut stream.has_audio, new_value);
            PropertyChanged::HasAudio { old_value, new_value }
        }
        PropertyChange::HasVideo(new_value) => {
            let old_value = std::mem::replace(&mut stream.has_video, new_value);
            PropertyChanged::HasVideo { old_value, new_value }
        }
        PropertyChange::VideoDimensions(new_value) => {
            let old_value = stream.video_dimensions.replace(new_value);
            PropertyChanged::VideoDimensions { old_value, new_value }
        }
    }
}

#[cfg(test)]
mod tests {
    use umbra_protocol::{VideoDimensions, VideoType};

    use super::*;

    fn code<T: std::fmt::Debug>(r: Result<T, SigError>) -> ErrorCode {
        r.expect_err("refused").code
    }

    #[test]
    fn roles_allow_what_signaling_md_lists() {
        use Action::*;
        let table = [
            (Role::Publisher, [true, true, true, false]),
            (Role::Subscriber, [false, true, true, false]),
            (Role::PublisherOnly, [true, false, false, false]),
            (Role::Moderator, [true, true, true, true]),
        ];
        for (role, allowed) in table {
            for (action, ok) in [Publish, Subscribe, Signal, ForceDisconnect].into_iter().zip(allowed) {
                match allow(role, action) {
                    Ok(()) => assert!(ok, "{role:?} {action:?}"),
                    Err(e) => {
                        assert!(!ok, "{role:?} {action:?}");
                        assert_eq!(e.code, ErrorCode::RoleForbidden);
                        assert!(e.message.starts_with(&format!("role {} cannot", role.as_str())), "{}", e.message);
                    }
                }
            }
        }
    }

    #[test]
    fn the_e2ee_gate_admits_only_the_sessions_suite() {
        let d = |cipher_suite| Some(E2eeDeclaration { cipher_suite });
        assert!(e2ee_gate(Some(6), d(6)).is_ok());
        assert!(e2ee_gate(None, None).is_ok());
        assert_eq!(code(e2ee_gate(Some(6), None)), ErrorCode::E2eeRequired);
        assert_eq!(code(e2ee_gate(Some(6), d(1))), ErrorCode::E2eeCipherSuiteMismatch);
        assert_eq!(code(e2ee_gate(None, d(6))), ErrorCode::E2eeNotEnabled);
        let e = e2ee_gate(Some(6), None).unwrap_err();
        assert!(e.message.contains("client does not support end-to-end encryption"));
    }

    #[test]
    fn a_publish_carries_an_offer_exactly_when_routed() {
        assert_eq!(publish_offer(MediaMode::Relayed, None).unwrap(), None);
        assert_eq!(publish_offer(MediaMode::Routed, Some("v=0".into())).unwrap().as_deref(), Some("v=0"));
        assert_eq!(code(publish_offer(MediaMode::Relayed, Some("v=0".into()))), ErrorCode::BadRequest);
        assert!(publish_offer(MediaMode::Routed, None).unwrap_err().message.contains("sdp_offer"));
        assert_eq!(code(subscribe_offer("  ")), ErrorCode::BadRequest);
    }

    #[test]
    fn limits_are_enforced() {
        assert_eq!(stream_name(None).unwrap(), "");
        assert_eq!(stream_name(Some("x".repeat(MAX_STREAM_NAME))).unwrap().len(), MAX_STREAM_NAME);
        assert_eq!(code(stream_name(Some("x".repeat(MAX_STREAM_NAME + 1)))), ErrorCode::BadRequest);
        assert!(signal(Some("chat-1_x"), "hi").is_ok());
        assert_eq!(code(signal(Some("no spaces"), "x")), ErrorCode::BadRequest);
        assert_eq!(code(signal(None, &"x".repeat(8193))), ErrorCode::BadRequest);
        let dims = |width, height| PropertyChange::VideoDimensions(VideoDimensions { width, height });
        assert!(property(&dims(1, 16_384)).is_ok());
        assert!(property(&PropertyChange::HasAudio(false)).is_ok());
        for bad in [dims(0, 480), dims(640, 0), dims(16_385, 480), dims(u32::MAX, u32::MAX)] {
            assert_eq!(code(property(&bad)), ErrorCode::BadRequest, "{bad:?}");
        }
        let cand = |c: usize, mid: usize| IceCandidate {
            candidate: "c".repeat(c),
            sdp_mid: Some("m".repeat(mid)),
            sdp_m_line_index: Some(0),
        };
        assert!(ice_candidate(&cand(1024, 64)).is_ok());
        assert_eq!(code(ice_candidate(&cand(1025, 1))), ErrorCode::BadRequest);
        assert_eq!(code(ice_candidate(&cand(1, 65))), ErrorCode::BadRequest);
    }

    #[test]
    fn a_property_change_reports_old_and_new_values() {
        let mut s = StreamInfo {
            stream_id: "s".into(),
            connection_id: "c".into(),
            name: String::new(),
            has_audio: true,
            has_video: true,
            video_type: VideoType::Camera,
            video_dimensions: None,
            e2ee: false,
            cipher_suite: None,
            created_at: 0,
            layout_class_list: vec![],
        };
        let dims = VideoDimensions { width: 640, height: 480 };
        assert_eq!(
            apply_property(&mut s, PropertyChange::HasAudio(false)),
            PropertyChanged::HasAudio { old_value: true, new_value: false }
        );
        assert_eq!(
            apply_property(&mut s, PropertyChange::VideoDimensions(dims)),
            PropertyChanged::VideoDimensions { old_value: None, new_value: dims }
        );
        assert_eq!(
            apply_property(&mut s, PropertyChange::VideoDimensions(dims)),
            PropertyChanged::VideoDimensions { old_value: Some(dims), new_value: dims }
        );
        assert!(!s.has_audio && s.has_video && s.video_dimensions == Some(dims));
    }
}
