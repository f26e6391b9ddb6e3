//! Which session the command joins and with what token: one made by your app server
//! (`--token`), or one this tool makes from the project's key and secret (`--api-secret`).

use std::sync::mpsc::Receiver;

use clap::Args;
use umbra_client::{Event, Session, SessionConfig};

use crate::app_server::Project;
use crate::error::MediaCliError;

#[derive(Debug, Args, Clone)]
pub struct Target {
    /// The server's URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "UMBRA_URL")]
    pub url: String,
    /// API key of the session's project.
    #[arg(long, env = "UMBRA_API_KEY")]
    pub api_key: Option<String>,
    /// The project's API secret: the command then does what an app server does, creating a
    /// routed session (end-to-end encrypted when --secret is given) unless --session-id names
    /// one, and making its own token. `umbra project show NAME` prints key and secret. A --token
    /// given as well wins (so an exported UMBRA_API_SECRET does not get in its way).
    #[arg(long, env = "UMBRA_API_SECRET", hide_env_values = true)]
    pub api_secret: Option<String>,
    /// The session to join.
    #[arg(long)]
    pub session_id: Option<String>,
    /// A client token made by your app server (with --api-key and --session-id).
    #[arg(long, requires = "session_id")]
    pub token: Option<String>,
    /// The shared end-to-end encryption secret (8 to 256 characters).
    #[arg(long, env = "UMBRA_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    pub duration: Option<u64>,
}

/// What the command connects with, once found or made.
pub struct Joined {
    pub api_key: String,
    pub session_id: String,
    /// Whether the command made its own token from the project secret (rather than `--token`).
    pub own_token: bool,
}

/// Who is joining, for tokens this tool makes.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    Publisher,
    Subscriber,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
        }
    }
}

fn usage() -> MediaCliError {
    MediaCliError::Usage(
        "give --api-key with --api-secret (the project's, as `umbra project show` prints them), \
         or --api-key, --session-id and --token (a client token from your app server)"
            .into(),
    )
}

impl Target {
    /// The session id and token to connect with, creating the session if needed.
    fn resolve(&self, role: Role) -> Result<(Joined, String), MediaCliError> {
        let api_key = self.api_key.clone().ok_or_else(usage)?;
        if let Some(token) = &self.token {
            let session_id = self.session_id.clone().ok_or_else(usage)?;
            return Ok((Joined { api_key, session_id, own_token: false }, token.clone()));
        }
        let api_secret = self.api_secret.as_deref().ok_or_else(usage)?;
        let project = Project { api_key: &api_key, api_secret };
        let session_id = match (&self.session_id, role) {
            (Some(s), _) => s.clone(),
            (None, Role::Publisher) => project.create_session(&self.url, self.secret.is_some())?,
            (None, Role::Subscriber) => {
                return Err(MediaCliError::Usage("subscribe needs --session-id: the session to receive from".into()));
            }
        };
        let token = project.client_token(&session_id, role.as_str());
        Ok((Joined { api_key, session_id, own_token: true }, token))
    }

    /// Connects a session (events flow on the receiver) with the secret set before connecting.
    pub fn connect(&self, role: Role) -> Result<(Session, Receiver<Event>, Joined), MediaCliError> {
        let (joined, token) = self.resolve(role)?;
        let config = SessionConfig { server_url: self.url.clone(), ..Default::default() };
        let mut session = Session::new(&joined.api_key, &joined.session_id, config);
        let events = session.events().ok_or_else(|| MediaCliError::Usage("the session's events were taken".into()))?;
        if let Some(secret) = &self.secret {
            session.set_encryption_secret(secret)?;
        }
        session.connect(&token)?;
        Ok((session, events, joined))
    }

    /// When `--duration` is up.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.duration.map(|d| std::time::Instant::now() + std::time::Duration::from_secs(d))
    }
}
