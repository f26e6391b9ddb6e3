//! The Web SDK at `/sdk/{file}`, the demo app at `/` and `/demo/{file}`, and the demo-only token
//! endpoint `POST /demo/token` (off unless the server runs with `--demo`).
//!
//! Files are read from the web directory (`--web-dir`, default `sdk/web` of the source tree):
//! `dist/` holds the built SDK (`npm run build`), `demo/` the demo app.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::{ApiError, codes, json_response};
use crate::clock::{now_millis, now_secs};
use crate::ids;
use crate::model::{ArchiveMode, DEFAULT_CIPHER_SUITE, MediaMode, Project, Role, Session};
use crate::state::AppState;

/// Name of the project the demo token endpoint issues tokens for (created on first use, with
/// the E2EE add-on).
pub const DEMO_PROJECT: &str = "demo";
const DEMO_TOKEN_TTL_SECS: i64 = 4 * 3600;
const MAX_ROOMS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct WebOptions {
    /// Directory with `dist/` (the built SDK) and `demo/` (the demo app).
    pub dir: PathBuf,
    /// Serve `POST /demo/token`: anyone who can reach the server gets tokens for the demo project.
    pub demo: bool,
}

impl Default for WebOptions {
    fn default() -> Self {
        Self { dir: default_web_dir(), demo: false }
    }
}

/// `./sdk/web` when the server runs from a checkout, else the source tree it was built from.
pub fn default_web_dir() -> PathBuf {
    let cwd = PathBuf::from("sdk/web");
    if cwd.join("dist").is_dir() || cwd.join("demo").is_dir() {
        return cwd;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk/web"))
}

/// What the demo endpoint remembers: room name → session id (in memory; rooms are throwaway).
#[derive(Default)]
pub struct DemoRooms {
    rooms: Mutex<HashMap<String, String>>,
}

const NOT_FOUND_FILE: u32 = 5006;
const DEMO_DISABLED: u32 = 5007;

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "map" | "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "ts" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A single file name: no separators, no leading dot.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

async fn send_file(dir: &Path, name: &str, what: &str) -> Response {
    if !safe_name(name) {
        return ApiError::not_found(NOT_FOUND_FILE, format!("no such file: {name}")).into_response();
    }
    let path = dir.join(name);
    let read = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || std::fs::read(path)).await
    };
    let read = read.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    match read {
        Ok(bytes) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, content_type(name)),
                // Served from a working tree that may be rebuilt at any time.
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let hint = if dir.is_dir() { String::new() } else { format!(" ({} is missing: {what})", dir.display()) };
            ApiError::not_found(NOT_FOUND_FILE, format!("no such file: {name}{hint}")).into_response()
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read static file");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, "cannot read the file").into_response()
        }
    }
}

const BUILD_HINT: &str = "build the Web SDK with `npm ci && npm run build` in sdk/web, or pass --web-dir";

pub async fn sdk_file(State(state): State<Arc<AppState>>, UrlPath(file): UrlPath<String>) -> Response {
    send_file(&state.web.dir.join("dist"), &file, BUILD_HINT).await
}

pub async fn demo_index(State(state): State<Arc<AppState>>) -> Response {
    send_file(&state.web.dir.join("demo"), "index.html", BUILD_HINT).await
}

pub async fn demo_file(State(state): State<Arc<AppState>>, UrlPath(file): UrlPath<String>) -> Response {
    send_file(&state.web.dir.join("demo"), &file, BUILD_HINT).await
}

fn demo_room_name(raw: &str) -> Result<String, ApiError> {
    let room = raw.trim();
    if room.is_empty() || room.chars().count() > 64 || room.chars().any(char::is_control) {
        return Err(ApiError::bad_request(codes::INVALID_PARAMETER, "room must be 1 to 64 printable characters"));
    }
    Ok(room.to_owned())
}

async fn demo_project(state: &AppState) -> Result<Project, ApiError> {
    let found = state
        .with_store(|s| {
            if let Some(p) = s.project_by_name(DEMO_PROJECT)? {
                return Ok(p);
            }
            let p = Project {
                api_key: ids::new_api_key(),
                name: DEMO_PROJECT.into(),
                secret: ids::new_secret(),
                e2ee_enabled: true,
                created_ms: now_millis(),
            };
            s.insert_project(&p)?;
            Ok(p)
        })
        .await?;
    if !found.e2ee_enabled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            codes::E2EE_ADDON_DISABLED,
            format!("the demo project has the E2EE add-on disabled (umbra project e2ee enable {DEMO_PROJECT})"),
        ));
    }
    Ok(found)
}

/// `POST /demo/token` with `{"room": "…", "name": "…"}` (JSON or form): creates the room's
/// end-to-end encrypted routed session on first use and returns `{apiKey, sessionId, token, room}`.
/// `"e2ee": false` names a separate, unencrypted room of the same name (for comparisons).
pub async fn demo_token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !state.web.demo {
        return Err(ApiError::not_found(
            DEMO_DISABLED,
            "the demo token endpoint is off: run `umbra serve --demo` (or UMBRA_DEMO=1) to enable it",
        ));
    }
    let params = super::sessions::read_params(&headers, &body)?;
    let get = |k: &str| params.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let room = demo_room_name(get("room").unwrap_or(""))?;
    let name: String = get("name").unwrap_or("").trim().chars().filter(|c| !c.is_control()).take(64).collect();
    // `"e2ee": false` gives a room without end-to-end encryption (to compare, e.g. CPU figures).
    let e2ee = !matches!(get("e2ee").map(str::trim), Some("false"));
    let project = demo_project(&state).await?;
    let key = if e2ee { room.clone() } else { format!("{room}\u{0}plain") };

    let existing = state.demo_rooms.rooms.lock().expect("rooms lock").get(&key).cloned();
    let session_id = match existing {
        Some(id) => id,
        None => {
            let created_ms = now_millis();
            let session = Session {
                id: ids::new_session_id(&project.api_key, None, created_ms, MediaMode::Routed),
                api_key: project.api_key.clone(),
                media_mode: MediaMode::Routed,
                archive_mode: ArchiveMode::Manual,
                location: None,
                cipher_suite: e2ee.then_some(DEFAULT_CIPHER_SUITE),
                archive_name: None,
                archive_resolution: None,
                created_ms,
            };
            let stored = session.clone();
            state.with_store(move |s| s.insert_session(&stored)).await?;
            let mut rooms = state.demo_rooms.rooms.lock().expect("rooms lock");
            if rooms.len() >= MAX_ROOMS && !rooms.contains_key(&key) {
                rooms.clear();
            }
            // Two first joiners racing: the first insert wins, both get the same session.
            rooms.entry(key).or_insert(session.id).clone()
        }
    };
    let data = json!({ "name": name }).to_string();
    let token = crate::token::sign_jwt(
        &project.api_key,
        &project.secret,
        &session_id,
        Role::Publisher,
        now_secs() + DEMO_TOKEN_TTL_SECS,
        Some(&data),
    );
    tracing::info!(room, session = %session_id, "demo token issued");
    Ok(json_response(
        StatusCode::OK,
        &json!({ "apiKey": project.api_key, "sessionId": session_id, "token": token, "room": room }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_are_served() {
        assert!(safe_name("umbra.js"));
        assert!(safe_name("umbra-e2ee-worker.js.map"));
        for bad in ["", "..", ".env", "../x", "a/b", "a\\b", "%2e%2e", "x y"] {
            assert!(!safe_name(bad), "{bad}");
        }
    }

    #[test]
    fn room_names_are_bounded() {
        assert_eq!(demo_room_name("  standup ").unwrap(), "standup");
        assert!(demo_room_name("").is_err());
        assert!(demo_room_name(&"x".repeat(65)).is_err());
        assert!(demo_room_name("a\nb").is_err());
    }
}
