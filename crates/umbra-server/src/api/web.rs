//! The Web SDK at `/sdk/{file}`, the demo app at `/` and `/demo/{file}`, and the demo-only token
//! endpoint `POST /demo/token` (off unless the server runs with `--demo`).
//!
//! Files are read from the web directory (`--web-dir`, default `sdk/web` of the source tree):
//! `dist/` holds the built SDK (`npm run build`), `demo/` the demo app.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::body::{self, Limited};
use super::error::{ApiError, codes, json_response};
use crate::clock::{now_millis, now_secs};
use crate::ids;
use crate::model::{ArchiveMode, DEFAULT_CIPHER_SUITE, MediaMode, Project, Role, Session};
use crate::state::AppState;

/// Name of the project the demo token endpoint issues tokens for (created on first use, with
/// the E2EE add-on).
pub const DEMO_PROJECT: &str = "demo";
const DEMO_TOKEN_TTL_SECS: i64 = 4 * 3600;

#[derive(Debug, Clone)]
pub struct WebOptions {
    /// Directory with `dist/` (the built SDK) and `demo/` (the demo app).
    pub dir: PathBuf,
    /// Serve `POST /demo/token`: anyone who can reach the server gets tokens for the demo project.
    pub demo: bool,
    /// How long a demo room may stay empty before its name and session are dropped.
    pub demo_room_expiry: Duration,
}

impl Default for WebOptions {
    fn default() -> Self {
        Self { dir: default_web_dir(), demo: false, demo_room_expiry: super::demo_rooms::DEFAULT_EXPIRY }
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

const NOT_FOUND_FILE: u32 = 5006;
const DEMO_DISABLED: u32 = 5007;
const DEMO_FULL: u32 = 9002;

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

fn no_such_file(dir: &Path, name: &str, what: &str) -> Response {
    let hint = if dir.is_dir() { String::new() } else { format!(" ({} is missing: {what})", dir.display()) };
    ApiError::not_found(NOT_FOUND_FILE, format!("no such file: {name}{hint}")).into_response()
}

/// Why a static file is not served.
#[derive(Debug, thiserror::Error)]
enum FileError {
    /// Missing, a directory, or (through a symlink) outside the served directory: all look
    /// alike from outside.
    #[error("not a file under the served directory")]
    NotServed,
    #[error(transparent)]
    Io(std::io::Error),
}

/// Reads `dir/name` if, with every symlink resolved, it is a regular file inside `dir` (itself
/// resolved, so the web directory may be a symlink).
fn read_inside(dir: &Path, name: &str) -> Result<Vec<u8>, FileError> {
    let not_served = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => FileError::NotServed,
        _ => FileError::Io(e),
    };
    let root = dir.canonicalize().map_err(not_served)?;
    let path = root.join(name).canonicalize().map_err(not_served)?;
    if !path.starts_with(&root) || !path.metadata().map_err(not_served)?.is_file() {
        return Err(FileError::NotServed);
    }
    std::fs::read(&path).map_err(not_served)
}

async fn send_file(dir: &Path, name: &str, what: &str) -> Response {
    if !safe_name(name) {
        return ApiError::not_found(NOT_FOUND_FILE, format!("no such file: {name}")).into_response();
    }
    let read = {
        let (dir, name) = (dir.to_owned(), name.to_owned());
        tokio::task::spawn_blocking(move || read_inside(&dir, &name)).await
    };
    match read.unwrap_or_else(|e| Err(FileError::Io(std::io::Error::other(e.to_string())))) {
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
        Err(FileError::NotServed) => no_such_file(dir, name, what),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), name, error = %e, "cannot read static file");
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
    Limited(body): Limited<{ body::DEMO_TOKEN }>,
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

    let existing = state.demo_rooms.session_of(&key);
    let session_id = match existing {
        Some(id) => id,
        None => {
            if state.demo_rooms.len() >= super::demo_rooms::MAX_ROOMS {
                return Err(too_many_rooms());
            }
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
            let chosen = state.demo_rooms.insert(&key, session.id.clone());
            if chosen.as_deref() != Ok(session.id.as_str()) {
                // Lost a race with another first joiner, or the table filled meanwhile.
                let id = session.id.clone();
                state.with_store(move |s| s.delete_session(&id)).await?;
            }
            chosen.map_err(|_| too_many_rooms())?
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

fn too_many_rooms() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, DEMO_FULL, super::demo_rooms::TooManyRooms.to_string())
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
