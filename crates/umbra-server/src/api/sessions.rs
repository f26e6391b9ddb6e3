//! `POST /session/create`.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::AuthedProject;
use super::body::{self, Limited};
use super::error::{ApiError, codes, json_response};
use crate::clock::{now_millis, opentok_date};
use crate::ids;
use crate::model::{ArchiveMode, DEFAULT_CIPHER_SUITE, KNOWN_CIPHER_SUITES, MediaMode, Session};
use crate::state::AppState;

const RESOLUTIONS: &[&str] = &["640x480", "480x640", "1280x720", "720x1280", "1920x1080", "1080x1920"];

/// Parameters as sent: form-encoded by every SDK; JSON is accepted too.
pub fn read_params(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = ctype.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(codes::MALFORMED_BODY, format!("body is not JSON: {e}")))?;
            let Value::Object(map) = v else {
                return Err(ApiError::bad_request(codes::MALFORMED_BODY, "JSON body must be an object"));
            };
            Ok(map
                .into_iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, s)
                })
                .collect())
        }
        "" | "application/x-www-form-urlencoded" => serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::bad_request(codes::MALFORMED_BODY, format!("body is not form-encoded: {e}"))),
        other => Err(ApiError::bad_request(
            codes::MALFORMED_BODY,
            format!("Content-Type {other} is not accepted; send application/x-www-form-urlencoded"),
        )),
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    // Last one wins, as with most form parsers.
    params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.trim())
}

fn invalid(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::bad_request(codes::INVALID_PARAMETER, format!("invalid {name} {value:?}: expected {expected}"))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    AuthedProject(project): AuthedProject,
    headers: HeaderMap,
    Limited(body): Limited<{ body::SESSION_CREATE }>,
) -> Result<Response, ApiError> {
    let params = read_params(&headers, &body)?;

    let media_mode = match param(&params, "p2p.preference") {
        None | Some("") | Some("enabled") => MediaMode::Relayed,
        Some("disabled") => MediaMode::Routed,
        Some(v) => return Err(invalid("p2p.preference", v, "enabled (relayed) or disabled (routed)")),
    };
    let archive_mode = match param(&params, "archiveMode") {
        None | Some("") => ArchiveMode::Manual,
        Some(v) => ArchiveMode::parse(v).ok_or_else(|| invalid("archiveMode", v, "manual or always"))?,
    };
    let location = match param(&params, "location") {
        None | Some("") => None,
        Some(v) => Some(v.parse::<Ipv4Addr>().map_err(|_| invalid("location", v, "an IPv4 address"))?.to_string()),
    };
    let e2ee = match param(&params, "e2ee").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(v) => return Err(invalid("e2ee", v, "true or false")),
    };
    let suite = match param(&params, "e2eeCipherSuite") {
        None | Some("") => None,
        Some(v) => match v.parse::<u16>() {
            Ok(n) if KNOWN_CIPHER_SUITES.contains(&n) => Some(n),
            _ => {
                return Err(ApiError::bad_request(
                    codes::E2EE_BAD_CIPHER_SUITE,
                    format!("invalid e2eeCipherSuite {v:?}: expected an SFrame cipher suite number from 1 to 8"),
                ));
            }
        },
    };
    let archive_name = param(&params, "archiveName").filter(|s| !s.is_empty()).map(str::to_owned);
    let archive_resolution = param(&params, "archiveResolution").filter(|s| !s.is_empty()).map(str::to_owned);
    if let Some(r) = &archive_resolution
        && !RESOLUTIONS.contains(&r.as_str())
    {
        return Err(invalid("archiveResolution", r, &RESOLUTIONS.join(", ")));
    }
    if archive_name.as_ref().is_some_and(|n| n.len() > 80) {
        return Err(ApiError::bad_request(codes::INVALID_PARAMETER, "archiveName is longer than 80 characters"));
    }
    if archive_mode == ArchiveMode::Manual && (archive_name.is_some() || archive_resolution.is_some()) {
        return Err(ApiError::bad_request(
            codes::INVALID_PARAMETER,
            "archiveName and archiveResolution apply only with archiveMode=always",
        ));
    }

    if e2ee {
        if !project.e2ee_enabled {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                codes::E2EE_ADDON_DISABLED,
                format!(
                    "end-to-end encryption is an add-on that must be enabled for project {} first \
                     (umbra project e2ee enable {})",
                    project.api_key, project.api_key
                ),
            ));
        }
        if media_mode == MediaMode::Relayed {
            return Err(ApiError::bad_request(
                codes::E2EE_NEEDS_ROUTED,
                "end-to-end encrypted sessions must use the routed media mode (p2p.preference=disabled)",
            ));
        }
        if archive_mode == ArchiveMode::Always {
            return Err(ApiError::bad_request(
                codes::E2EE_NO_ALWAYS_ARCHIVE,
                "end-to-end encrypted sessions cannot be archived: archiveMode must be manual",
            ));
        }
    } else if suite.is_some() {
        return Err(ApiError::bad_request(codes::E2EE_BAD_CIPHER_SUITE, "e2eeCipherSuite applies only with e2ee=true"));
    }
    if archive_mode == ArchiveMode::Always && media_mode == MediaMode::Relayed {
        return Err(ApiError::bad_request(
            codes::ARCHIVE_ALWAYS_NEEDS_ROUTED,
            "archiveMode=always needs the routed media mode (p2p.preference=disabled)",
        ));
    }

    let created_ms = now_millis();
    let session = Session {
        id: ids::new_session_id(&project.api_key, location.as_deref(), created_ms, media_mode),
        api_key: project.api_key.clone(),
        media_mode,
        archive_mode,
        location,
        cipher_suite: e2ee.then(|| suite.unwrap_or(DEFAULT_CIPHER_SUITE)),
        archive_name,
        archive_resolution,
        created_ms,
    };
    let stored = session.clone();
    state.with_store(move |s| s.insert_session(&stored)).await?;
    state.metrics.sessions_created.fetch_add(1, Relaxed);
    tracing::info!(session = %session.id, project = %project.api_key, media = session.media_mode.as_str(), e2ee, "session created");
    Ok(json_response(StatusCode::OK, &json!([session_json(&session)])))
}

pub fn session_json(s: &Session) -> Value {
    json!({
        "session_id": s.id,
        "project_id": s.api_key,
        "partner_id": s.api_key,
        "create_dt": opentok_date(s.created_ms),
        "session_status": null,
        "status_invalid": null,
        "media_server_hostname": null,
        "messaging_server_url": null,
        "messaging_url": null,
        "symphony_address": null,
        "properties": null,
        "ice_server": null,
        "session_segment_id": null,
        "ice_servers": null,
        "ice_credential_expiration": 86100,
        "media_mode": s.media_mode,
        "archive_mode": s.archive_mode,
        "location": s.location,
        "e2ee": s.e2ee(),
        "cipher_suite": s.cipher_suite,
    })
}
