//! docs/signaling.md and this crate describe the same protocol: every message type and error code
//! the document names exists here, and every one that exists here is documented.

use std::collections::BTreeSet;
use std::path::Path;

use umbra_protocol::{ClientMessage, ErrorCode, ServerMessage};

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/signaling.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of the `## title` section, up to the next `## ` heading.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start = doc.find(&format!("\n## {title}\n")).unwrap_or_else(|| panic!("no section ## {title}"));
    let body = &doc[start + 4 + title.len()..];
    &body[..body.find("\n## ").unwrap_or(body.len())]
}

/// Every `` `name` `` at the start of a table row.
fn table_names(text: &str) -> BTreeSet<String> {
    text.lines().filter_map(|l| l.strip_prefix("| `")).filter_map(|l| l.split('`').next()).map(str::to_owned).collect()
}

/// Every `"type": "name"` in the JSON examples.
fn json_types(text: &str) -> BTreeSet<String> {
    text.split("\"type\": \"").skip(1).filter_map(|s| s.split('"').next()).map(str::to_owned).collect()
}

/// Every snake_case identifier in backticks.
fn backticked(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .map(str::to_owned)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn every_client_message_is_documented_and_every_documented_one_exists() {
    let doc = doc();
    let requests = section(&doc, "Requests");
    let mut documented: BTreeSet<String> = requests
        .lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    for s in ["Handshake", "Resuming after a dropped socket"] {
        documented.extend(
            json_types(section(&doc, s))
                .into_iter()
                .filter(|t| ClientMessage::KINDS.contains(&t.as_str()) || !ServerMessage::KINDS.contains(&t.as_str())),
        );
    }
    documented.retain(|t| t != "welcome" && t != "error" && t != "snapshot" && t != "resumed");
    assert_eq!(documented, set(ClientMessage::KINDS), "client messages: docs/signaling.md vs umbra-protocol");
}

#[test]
fn every_server_message_is_documented_and_every_documented_one_exists() {
    let doc = doc();
    let mut documented = table_names(section(&doc, "Events"));
    documented.remove("type"); // the table header
    let replies = ["welcome", "snapshot", "resumed", "ack", "error", "pong"];
    for t in json_types(&doc) {
        if replies.contains(&t.as_str()) {
            documented.insert(t);
        }
    }
    // Every type in a JSON example is a message of one side or the other.
    for t in json_types(&doc) {
        assert!(
            ClientMessage::KINDS.contains(&t.as_str()) || ServerMessage::KINDS.contains(&t.as_str()),
            "docs/signaling.md shows a message type {t:?} that umbra-protocol does not have"
        );
    }
    assert_eq!(documented, set(ServerMessage::KINDS), "server messages: docs/signaling.md vs umbra-protocol");
}

#[test]
fn every_error_code_is_documented_and_every_documented_one_exists() {
    let doc = doc();
    let mut documented = table_names(section(&doc, "Handshake"));
    let requests_codes = section(&doc, "Errors to requests");
    let list = &requests_codes[requests_codes.find("Codes:").expect("a 'Codes:' list")..];
    let list = &list[..list.find("\n\n").unwrap_or(list.len())];
    documented.extend(backticked(list));
    let resume = section(&doc, "Resuming after a dropped socket");
    documented.extend(backticked(resume).into_iter().filter(|c| c.starts_with("resume_")));
    documented.retain(|c| c != "resume_window_ms" && c != "resume_token");
    let actual: BTreeSet<String> = ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect();
    assert_eq!(documented, actual, "error codes: docs/signaling.md vs umbra-protocol");
}
