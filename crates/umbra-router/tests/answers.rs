//! The router's answers as a foreign WebRTC client reads them (issue 11): ICE credentials
//! drawn from the OS CSPRNG with RFC 8445's entropy, no `a=ice-options:trickle` (the router
//! never trickles) and `a=end-of-candidates` after the candidates, which a str0m client
//! accepts and connects with.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use umbra_router::ice_credentials::{ALPHABET, PASSWORD_LEN, UFRAG_LEN, generate};
use umbra_router::*;

#[test]
fn ice_credentials_have_rfc_8445_entropy_and_never_repeat() {
    // RFC 8445 §5.3: at least 24 random bits in the ufrag, 128 in the password; RFC 8839:
    // ice-char = ALPHA / DIGIT / "+" / "/", password 22..=256 characters, ufrag 4..=256.
    let bits = |len: usize| len as f64 * (ALPHABET.len() as f64).log2();
    assert!(bits(UFRAG_LEN) >= 24.0, "{} bits", bits(UFRAG_LEN));
    assert!(bits(PASSWORD_LEN) >= 128.0, "{} bits", bits(PASSWORD_LEN));
    assert!((4..=256).contains(&UFRAG_LEN) && (22..=256).contains(&PASSWORD_LEN));
    assert!(ALPHABET.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/'));
    let (mut ufrags, mut passwords) = (HashSet::new(), HashSet::new());
    for _ in 0..10_000 {
        let c = generate().expect("the OS RNG works");
        assert_eq!((c.ufrag.len(), c.pass.len()), (UFRAG_LEN, PASSWORD_LEN));
        assert!(c.ufrag.bytes().chain(c.pass.bytes()).all(|b| ALPHABET.contains(&b)), "{c:?}");
        assert!(ufrags.insert(c.ufrag), "a ufrag repeated");
        assert!(passwords.insert(c.pass), "a password repeated");
    }
}

fn sections(sdp: &str) -> Vec<&str> {
    sdp.split("\r\nm=").skip(1).collect()
}

/// What every router answer must satisfy for a client that honours trickle semantics. str0m
/// writes the candidates into the first (BUNDLE-tag) section only, where the bundled
/// transport's ICE lives; that section ends them.
fn assert_complete_candidates(answer: &str) {
    assert!(!answer.contains("trickle"), "the router does not trickle: {answer}");
    let secs = sections(answer);
    assert!(secs.iter().any(|s| s.contains("a=candidate:")), "{answer}");
    for sec in secs {
        match sec.rfind("a=candidate:") {
            Some(last_candidate) => {
                assert_eq!(sec.matches("a=end-of-candidates\r\n").count(), 1, "{sec}");
                assert!(sec.find("a=end-of-candidates").unwrap() > last_candidate, "{sec}");
            }
            None => assert!(!sec.contains("a=end-of-candidates"), "{sec}"),
        }
    }
}

fn sdp_attr<'a>(sdp: &'a str, name: &str) -> &'a str {
    sdp.lines().find_map(|l| l.trim_end().strip_prefix(name)).unwrap_or_else(|| panic!("no {name} in {sdp}"))
}

#[test]
fn answers_end_their_candidates_and_a_str0m_client_connects_with_them() {
    let _serial = media_test_lock();
    let (router, _events) = start_router(vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()]);
    let clients = Clients::new(false);
    let ip = loopback_v4();
    let p = offer(&PeerOptions::publisher(ip));
    let pub_answer = router
        .publish(PublishSpec {
            session_id: "s1".into(),
            connection_id: "alice".into(),
            stream_id: "cam".into(),
            sdp_offer: p.offer.clone(),
            video_size: None,
        })
        .unwrap();
    assert_complete_candidates(&pub_answer);
    // Both families' candidates come before the end.
    assert!(pub_answer.contains("127.0.0.1") && pub_answer.contains("::1"));
    let publisher = clients.add(p.accept(&pub_answer));
    let p = offer(&PeerOptions::subscriber(ip));
    let sub_answer = router
        .subscribe(SubscribeSpec {
            session_id: "s1".into(),
            connection_id: "bob".into(),
            subscription_id: "bob-cam".into(),
            stream_id: "cam".into(),
            sdp_offer: p.offer.clone(),
            wish: Default::default(),
        })
        .unwrap();
    assert_complete_candidates(&sub_answer);
    let sub = clients.add(p.accept(&sub_answer));
    clients.wait_until("connected", Duration::from_secs(15), |s| s.iter().all(|p| p.connected));
    let (v, _) = send_media(&clients, publisher, 1.0, 2000);
    clients.wait_until("frames", Duration::from_secs(5), |s| s[sub].frames[1] as f64 >= 0.9 * v as f64);

    // Each answer's credentials are the router's own shape, and differ between connections.
    for answer in [&pub_answer, &sub_answer] {
        let ufrag = sdp_attr(answer, "a=ice-ufrag:");
        let pwd = sdp_attr(answer, "a=ice-pwd:");
        assert_eq!((ufrag.len(), pwd.len()), (UFRAG_LEN, PASSWORD_LEN), "{answer}");
    }
    assert_ne!(sdp_attr(&pub_answer, "a=ice-ufrag:"), sdp_attr(&sub_answer, "a=ice-ufrag:"));
    assert_ne!(sdp_attr(&pub_answer, "a=ice-pwd:"), sdp_attr(&sub_answer, "a=ice-pwd:"));
}
