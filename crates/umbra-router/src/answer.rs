//! The one place where the router's SDP answers are adjusted after str0m writes them.
//!
//! str0m writes `a=ice-options:trickle` into every answer and has no switch for it, nor for
//! `a=end-of-candidates`. The router is ICE-lite, puts all its candidates (host candidates of
//! its advertised addresses) into the answer and never trickles one later, so:
//!
//! - `trickle` is removed from `a=ice-options` (the line goes when nothing else is left):
//!   advertising it tells the offerer to wait for candidates that never come;
//! - `a=end-of-candidates` (RFC 8840 §8.2) is added to every media section that carries
//!   candidates, right after its last one: without it a full-ICE client that honours trickle
//!   (aiortc, for one) waits for an end that never arrives.
//!
//! Offerers may still trickle their own candidates to the router (`add_candidate` accepts
//! them), although an ICE-lite router learns client addresses from their checks anyway.

/// The answer with trickle removed and end-of-candidates added, line endings kept (CRLF as
/// str0m writes, or LF).
pub fn finish(sdp: &str) -> String {
    let eol = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out: Vec<String> = Vec::new();
    // Per media section: where its last candidate line is in `out`, and whether it already
    // ends its candidates.
    let mut last_candidate: Option<usize> = None;
    let mut has_end = false;
    let mut in_media = false;
    fn close_section(out: &mut Vec<String>, last: Option<usize>, has_end: bool) {
        if let Some(i) = last
            && !has_end
        {
            out.insert(i + 1, "a=end-of-candidates".to_owned());
        }
    }
    for line in sdp.lines() {
        if line.starts_with("m=") {
            if in_media {
                close_section(&mut out, last_candidate, has_end);
            }
            in_media = true;
            last_candidate = None;
            has_end = false;
        }
        if let Some(options) = line.strip_prefix("a=ice-options:") {
            let kept: Vec<&str> = options.split_whitespace().filter(|o| *o != "trickle").collect();
            if !kept.is_empty() {
                out.push(format!("a=ice-options:{}", kept.join(" ")));
            }
            continue;
        }
        if in_media && line.starts_with("a=candidate:") {
            last_candidate = Some(out.len());
        }
        if in_media && line == "a=end-of-candidates" {
            has_end = true;
        }
        out.push(line.to_owned());
    }
    if in_media {
        close_section(&mut out, last_candidate, has_end);
    }
    let mut s = out.join(eol);
    s.push_str(eol);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const STR0M_LIKE: &str = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=ice-lite\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 2130706175 127.0.0.1 7882 typ host\r\na=candidate:2 1 udp 2130706175 ::1 7882 typ host\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:secretsecretsecretsecret\r\na=ice-options:trickle\r\na=setup:passive\r\na=mid:0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 2130706175 127.0.0.1 7882 typ host\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:secretsecretsecretsecret\r\na=ice-options:trickle\r\na=mid:1\r\n";

    #[test]
    fn trickle_goes_and_each_section_ends_its_candidates() {
        let s = finish(STR0M_LIKE);
        assert!(!s.contains("trickle"), "{s}");
        assert!(!s.contains("ice-options"), "{s}");
        assert_eq!(s.matches("a=end-of-candidates\r\n").count(), 2, "{s}");
        // Right after the last candidate of each section.
        assert!(s.contains("::1 7882 typ host\r\na=end-of-candidates\r\na=ice-ufrag"));
        assert!(s.contains("127.0.0.1 7882 typ host\r\na=end-of-candidates\r\na=ice-ufrag:abcd\r\na=ice-pwd:secretsecretsecretsecret\r\na=mid:1"));
        assert!(s.ends_with("a=mid:1\r\n"));
        assert!(!s.contains("\n\n") && !s.contains("\r\r"));
        // Idempotent.
        assert_eq!(finish(&s), s);
    }

    #[test]
    fn other_ice_options_stay_and_sections_without_candidates_are_left_alone() {
        let sdp = "v=0\na=ice-options:trickle ice2\nm=audio 9 RTP/AVP 0\na=ice-options:renomination trickle\na=mid:0\nm=video 9 RTP/AVP 96\na=mid:1\n";
        let s = finish(sdp);
        assert_eq!(
            s,
            "v=0\na=ice-options:ice2\nm=audio 9 RTP/AVP 0\na=ice-options:renomination\na=mid:0\nm=video 9 RTP/AVP 96\na=mid:1\n"
        );
    }

    #[test]
    fn an_existing_end_of_candidates_is_not_doubled() {
        let sdp = "v=0\r\nm=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1 1.2.3.4 5 typ host\r\na=mid:0\r\na=end-of-candidates\r\n";
        assert_eq!(finish(sdp), sdp);
    }
}
