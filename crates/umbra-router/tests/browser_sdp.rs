//! Offers shaped like the ones Chromium and Firefox make (codec lists, payload numbering,
//! RTX/RED/ULPFEC, extmaps, BUNDLE, rtcp-mux/rsize, trickle): the router answers them, keeps
//! the codecs the browsers can decode, and pairs a Chromium publisher with a Firefox subscriber
//! although the two number their payload types differently. The answers carry every
//! candidate, end them with `a=end-of-candidates` and do not offer trickle, although the
//! offers do.

use umbra_router::*;

const FP: &str =
    "sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3A:27:BD:58:5A:6A:2A:2E:6B:2C:E1:7A";

fn chromium_video_codecs() -> String {
    // Chromium 12x numbering: VP8 96, VP9 98/100, H.264 102..127, AV1 45, each with RTX.
    let mut s = String::new();
    for (pt, rtx, name, fmtp) in [
        (96, 97, "VP8", None),
        (98, 99, "VP9", Some("profile-id=0")),
        (100, 101, "VP9", Some("profile-id=2")),
        (102, 103, "H264", Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f")),
        (104, 105, "H264", Some("level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f")),
        (106, 107, "H264", Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f")),
        (45, 46, "AV1", Some("level-idx=5;profile=0;tier=0")),
    ] {
        s += &format!("a=rtpmap:{pt} {name}/90000\r\n");
        for fb in ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"] {
            s += &format!("a=rtcp-fb:{pt} {fb}\r\n");
        }
        if let Some(f) = fmtp {
            s += &format!("a=fmtp:{pt} {f}\r\n");
        }
        s += &format!("a=rtpmap:{rtx} rtx/90000\r\na=fmtp:{rtx} apt={pt}\r\n");
    }
    s += "a=rtpmap:116 red/90000\r\na=rtpmap:117 rtx/90000\r\na=fmtp:117 apt=116\r\na=rtpmap:118 ulpfec/90000\r\n";
    s
}

fn chromium_offer(direction: &str) -> String {
    let ssrc = |kind: &str| {
        if direction == "sendonly" {
            match kind {
                "audio" => "a=msid:stream0 audio0\r\na=ssrc:1001 cname:chromecname\r\na=ssrc:1001 msid:stream0 audio0\r\n".to_string(),
                _ => "a=msid:stream0 video0\r\na=ssrc-group:FID 2001 2002\r\na=ssrc:2001 cname:chromecname\r\na=ssrc:2001 msid:stream0 video0\r\na=ssrc:2002 cname:chromecname\r\na=ssrc:2002 msid:stream0 video0\r\n".to_string(),
            }
        } else {
            String::new()
        }
    };
    format!(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS stream0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:Chrm\r\na=ice-pwd:chromiumchromiumpassword\r\na=ice-options:trickle\r\na=fingerprint:{FP}\r\na=setup:actpass\r\na=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a={direction}\r\n{}a=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 102 103 104 105 106 107 45 46 116 117 118\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:Chrm\r\na=ice-pwd:chromiumchromiumpassword\r\na=ice-options:trickle\r\na=fingerprint:{FP}\r\na=setup:actpass\r\na=mid:1\r\n\
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\na=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:13 urn:3gpp:video-orientation\r\na=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\na=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n\
a={direction}\r\n{}a=rtcp-mux\r\na=rtcp-rsize\r\n{}",
        ssrc("audio"),
        ssrc("video"),
        chromium_video_codecs()
    )
}

fn firefox_recvonly_offer() -> String {
    // Firefox numbering: VP8 120, VP9 121, H.264 126/97, AV1 99, opus 109.
    format!(
        "v=0\r\no=mozilla...THIS_IS_SDPARTA-99.0 5396013958330347136 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:{FP}\r\n\
a=group:BUNDLE 0 1\r\na=ice-options:trickle\r\na=msid-semantic:WMS *\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1\r\na=fmtp:101 0-15\r\na=ice-pwd:firefoxfirefoxfirefoxpass\r\na=ice-ufrag:Frfx\r\n\
a=mid:0\r\na=rtcp-mux\r\na=rtpmap:109 opus/48000/2\r\na=rtpmap:9 G722/8000/1\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=setup:actpass\r\na=ssrc:3001 cname:{{ffcname}}\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 120 124 121 125 126 127 97 98 99 100\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\n\
a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:4 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:5 urn:ietf:params:rtp-hdrext:toffset\r\na=extmap:6/recvonly http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n\
a=extmap:7 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1\r\n\
a=fmtp:97 profile-level-id=42e01f;level-asymmetry-allowed=1\r\na=fmtp:120 max-fs=12288;max-fr=60\r\na=fmtp:124 apt=120\r\n\
a=fmtp:121 max-fs=12288;max-fr=60\r\na=fmtp:125 apt=121\r\na=fmtp:127 apt=126\r\na=fmtp:98 apt=97\r\na=fmtp:100 apt=99\r\n\
a=ice-pwd:firefoxfirefoxfirefoxpass\r\na=ice-ufrag:Frfx\r\na=mid:1\r\n\
a=rtcp-fb:120 nack\r\na=rtcp-fb:120 nack pli\r\na=rtcp-fb:120 ccm fir\r\na=rtcp-fb:120 goog-remb\r\na=rtcp-fb:120 transport-cc\r\n\
a=rtcp-fb:121 nack\r\na=rtcp-fb:121 nack pli\r\na=rtcp-fb:121 ccm fir\r\na=rtcp-fb:121 goog-remb\r\na=rtcp-fb:121 transport-cc\r\n\
a=rtcp-fb:126 nack\r\na=rtcp-fb:126 nack pli\r\na=rtcp-fb:126 ccm fir\r\na=rtcp-fb:126 goog-remb\r\na=rtcp-fb:126 transport-cc\r\n\
a=rtcp-fb:97 nack\r\na=rtcp-fb:97 nack pli\r\na=rtcp-fb:97 ccm fir\r\na=rtcp-fb:97 goog-remb\r\na=rtcp-fb:97 transport-cc\r\n\
a=rtcp-fb:99 nack\r\na=rtcp-fb:99 nack pli\r\na=rtcp-fb:99 ccm fir\r\na=rtcp-fb:99 goog-remb\r\na=rtcp-fb:99 transport-cc\r\n\
a=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:120 VP8/90000\r\na=rtpmap:124 rtx/90000\r\na=rtpmap:121 VP9/90000\r\na=rtpmap:125 rtx/90000\r\n\
a=rtpmap:126 H264/90000\r\na=rtpmap:127 rtx/90000\r\na=rtpmap:97 H264/90000\r\na=rtpmap:98 rtx/90000\r\na=rtpmap:99 AV1/90000\r\n\
a=rtpmap:100 rtx/90000\r\na=setup:actpass\r\na=ssrc:3002 cname:{{ffcname}}\r\n"
    )
}

/// The router never trickles: no `ice-options:trickle`, and the section that carries the
/// candidates (the first, where the bundled transport's ICE lives) ends them, so a browser
/// (or aiortc) does not wait for more.
fn assert_no_trickle(answer: &str) {
    assert!(!answer.contains("trickle"), "{answer}");
    let mut with_candidates = 0;
    for section in answer.split("\r\nm=").skip(1) {
        let Some(last) = section.rfind("a=candidate:") else {
            assert!(!section.contains("a=end-of-candidates"), "{section}");
            continue;
        };
        with_candidates += 1;
        let end = section.find("a=end-of-candidates\r\n").unwrap_or_else(|| panic!("no end-of-candidates: {section}"));
        assert!(end > last, "{section}");
    }
    assert!(with_candidates >= 1, "{answer}");
}

fn router() -> RouterHandle {
    Router::start(RouterConfig::new(vec!["127.0.0.1:0".parse().unwrap()])).unwrap()
}

#[test]
fn chromium_publisher_and_firefox_subscriber_are_answered_and_paired() {
    let r = router();
    let answer = r
        .publish(PublishSpec {
            session_id: "s".into(),
            connection_id: "chrome".into(),
            stream_id: "cam".into(),
            sdp_offer: chromium_offer("sendonly"),
            video_size: None,
        })
        .expect("a Chromium publisher offer is answered");
    let port = r.local_addrs()[0].port();
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert_no_trickle(&answer);
    assert!(answer.contains(&format!("127.0.0.1 {port} typ host")), "host candidate: {answer}");
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(answer.contains("a=setup:passive") || answer.contains("a=setup:active"), "{answer}");
    for codec in ["opus/48000/2", "VP8/90000", "VP9/90000", "H264/90000", "AV1/90000", "rtx/90000"] {
        assert!(answer.contains(codec), "answer lacks {codec}: {answer}");
    }
    // Chromium's payload numbers are kept in the answer.
    assert!(answer.contains("a=rtpmap:96 VP8/90000") && answer.contains("a=rtpmap:111 opus/48000/2"), "{answer}");
    assert!(answer.contains("transport-cc"), "TWCC negotiated: {answer}");

    let answer = r
        .subscribe(SubscribeSpec {
            session_id: "s".into(),
            connection_id: "firefox".into(),
            subscription_id: "ff-cam".into(),
            stream_id: "cam".into(),
            sdp_offer: firefox_recvonly_offer(),
            wish: Default::default(),
        })
        .expect("a Firefox subscriber offer is answered and paired with the Chromium tracks");
    assert!(answer.contains("a=sendonly"), "{answer}");
    assert_no_trickle(&answer);
    assert!(answer.contains("a=rtpmap:120 VP8/90000") && answer.contains("a=rtpmap:109 opus/48000/2"), "{answer}");
    let stats = r.stats().unwrap();
    assert_eq!((stats.published_streams, stats.subscriptions), (1, 1));

    // A Chromium subscriber too.
    let answer = r
        .subscribe(SubscribeSpec {
            session_id: "s".into(),
            connection_id: "chrome2".into(),
            subscription_id: "cr-cam".into(),
            stream_id: "cam".into(),
            sdp_offer: chromium_offer("recvonly"),
            wish: Default::default(),
        })
        .expect("a Chromium subscriber offer is answered");
    assert_no_trickle(&answer);
}
