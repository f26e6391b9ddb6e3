//! Project authentication as extractors: a handler that takes [`AuthedProject`] or
//! [`ProjectSession`] runs only for a caller whose `X-OPENTOK-AUTH` verifies, for the project the
//! URL names (and, for the second, a session of that project).

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;

use super::error::{ApiError, codes};
use crate::clock::now_secs;
use crate::model::{Project, Session};
use crate::project_auth::{self, AuthError};
use crate::state::AppState;

/// The project whose secret signed the request's `X-OPENTOK-AUTH`. When the route has an
/// `{apiKey}`, it is this project's.
pub struct AuthedProject(pub Project);

/// An authenticated project and the `{sessionId}` of the route, which must be one of its sessions.
pub struct ProjectSession {
    pub project: Project,
    pub session: Session,
}

/// The value of a route parameter, if the route has it.
async fn path_param(parts: &mut Parts, state: &Arc<AppState>, name: &str) -> Result<Option<String>, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::bad_request(codes::MALFORMED_BODY, e.to_string()))?;
    Ok(params.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_owned()))
}

impl FromRequestParts<Arc<AppState>> for AuthedProject {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        // A header that is not visible ASCII can only be a malformed JWT.
        let header = parts.headers.get(project_auth::HEADER).map(|v| v.to_str().unwrap_or("\u{0}invalid"));
        let claimed = project_auth::parse(header)?;
        let key = claimed.api_key.clone();
        let project = state.with_store(move |s| s.project(&key)).await?;
        claimed.verify(project.as_ref(), now_secs(), state.clock_skew_secs)?;
        let project = project.expect("verify succeeds only with a project");
        if let Some(path) = path_param(parts, state, "apiKey").await?
            && path != project.api_key
        {
            return Err(AuthError::ProjectMismatch { token: project.api_key, path }.into());
        }
        Ok(AuthedProject(project))
    }
}

impl FromRequestParts<Arc<AppState>> for ProjectSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let AuthedProject(project) = AuthedProject::from_request_parts(parts, state).await?;
        let session_id = path_param(parts, state, "sessionId").await?.expect("routes with a session name it");
        let id = session_id.clone();
        match state.with_store(move |s| s.session(&id)).await? {
            Some(session) if session.api_key == project.api_key => Ok(ProjectSession { project, session }),
            _ => Err(ApiError::not_found(
                codes::UNKNOWN_SESSION,
                format!("project {} has no session {session_id}", project.api_key),
            )),
        }
    }
}
