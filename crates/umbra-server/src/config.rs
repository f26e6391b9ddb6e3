//! `umbra serve` settings: command-line flags override environment variables (both handled by
//! clap), which override the TOML config file, which overrides the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::http::HttpOptions;
use crate::http::limits::{DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};
use crate::server::ServeOptions;
use crate::signaling::{Bounds, HubConfig, Limits, Rate};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./umbra-data";

/// The config file. Every key is optional; unknown keys are an error so typos do not pass silently.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    /// `postgres://…`: the store on PostgreSQL instead of SQLite in `data_dir`.
    pub database: Option<String>,
    pub log_format: Option<LogFormat>,
    pub clock_skew_secs: Option<u32>,
    pub heartbeat_interval_secs: Option<u32>,
    pub heartbeat_timeout_secs: Option<u32>,
    pub resume_window_secs: Option<u32>,
    pub shutdown_grace_secs: Option<u32>,
    // ---- signaling limits (docs/signaling.md § Limits) ----
    pub signaling_outbox_frames: Option<u32>,
    pub signaling_outbox_bytes: Option<u32>,
    pub signaling_replay_frames: Option<u32>,
    pub signaling_replay_bytes: Option<u32>,
    pub signaling_write_timeout_secs: Option<u32>,
    pub max_streams_per_connection: Option<u32>,
    pub max_subscriptions_per_connection: Option<u32>,
    pub max_connections_per_token: Option<u32>,
    pub max_connections_per_session: Option<u32>,
    pub max_streams_per_session: Option<u32>,
    pub signal_rate_per_sec: Option<u32>,
    pub signal_burst: Option<u32>,
    pub signal_bytes_per_sec: Option<u32>,
    pub signal_bytes_burst: Option<u32>,
    pub header_read_timeout_secs: Option<u32>,
    pub request_timeout_secs: Option<u32>,
    pub max_connections: Option<u32>,
    pub allowed_hosts: Option<Vec<String>>,
    pub demo_room_expiry_secs: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.display().to_string(), message: e.to_string() })
    }
}

/// Values given on the command line or in the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub log_format: Option<LogFormat>,
    pub clock_skew_secs: Option<u32>,
    pub heartbeat_interval_secs: Option<u32>,
    pub heartbeat_timeout_secs: Option<u32>,
    pub resume_window_secs: Option<u32>,
    pub shutdown_grace_secs: Option<u32>,
    pub signaling_outbox_frames: Option<u32>,
    pub signaling_outbox_bytes: Option<u32>,
    pub signaling_replay_frames: Option<u32>,
    pub signaling_replay_bytes: Option<u32>,
    pub signaling_write_timeout_secs: Option<u32>,
    pub max_streams_per_connection: Option<u32>,
    pub max_subscriptions_per_connection: Option<u32>,
    pub max_connections_per_token: Option<u32>,
    pub max_connections_per_session: Option<u32>,
    pub max_streams_per_session: Option<u32>,
    pub signal_rate_per_sec: Option<u32>,
    pub signal_burst: Option<u32>,
    pub signal_bytes_per_sec: Option<u32>,
    pub signal_bytes_burst: Option<u32>,
    pub header_read_timeout_secs: Option<u32>,
    pub request_timeout_secs: Option<u32>,
    pub max_connections: Option<u32>,
    /// Empty when none were given.
    pub allowed_hosts: Vec<String>,
    pub demo_room_expiry_secs: Option<u32>,
}

pub struct Resolved {
    pub options: ServeOptions,
    /// The PostgreSQL URL when the store is not SQLite in `options.data_dir`.
    pub database: Option<String>,
    pub log_format: LogFormat,
    pub http: HttpOptions,
    pub demo_room_expiry: Duration,
}

pub fn resolve(cli: Overrides, file: FileConfig) -> Result<Resolved, ConfigError> {
    let secs = |v: Option<u32>, f: Option<u32>, d: u32| Duration::from_secs(u64::from(v.or(f).unwrap_or(d)));
    let hub_default = HubConfig::default();
    let hub = HubConfig {
        heartbeat_interval: secs(
            cli.heartbeat_interval_secs,
            file.heartbeat_interval_secs,
            hub_default.heartbeat_interval.as_secs() as u32,
        ),
        heartbeat_timeout: secs(
            cli.heartbeat_timeout_secs,
            file.heartbeat_timeout_secs,
            hub_default.heartbeat_timeout.as_secs() as u32,
        ),
        resume_window: secs(
            cli.resume_window_secs,
            file.resume_window_secs,
            hub_default.resume_window.as_secs() as u32,
        ),
        ..signaling_limits(&cli, &file, hub_default)?
    };
    if hub.heartbeat_interval.is_zero() || hub.heartbeat_timeout <= hub.heartbeat_interval {
        return Err(ConfigError::Invalid(
            "heartbeat_timeout_secs must be greater than heartbeat_interval_secs, which must be at least 1".into(),
        ));
    }
    let database = cli.database.or(file.database);
    let options = ServeOptions {
        cluster: None,
        listen: cli.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
        data_dir: cli.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        clock_skew_secs: i64::from(cli.clock_skew_secs.or(file.clock_skew_secs).unwrap_or(30)),
        shutdown_grace: secs(cli.shutdown_grace_secs, file.shutdown_grace_secs, 10),
        hub,
    };
    let http = HttpOptions {
        header_read_timeout: secs(
            cli.header_read_timeout_secs,
            file.header_read_timeout_secs,
            DEFAULT_HEADER_READ_TIMEOUT.as_secs() as u32,
        ),
        request_timeout: secs(
            cli.request_timeout_secs,
            file.request_timeout_secs,
            DEFAULT_REQUEST_TIMEOUT.as_secs() as u32,
        ),
        max_connections: cli.max_connections.or(file.max_connections).map(|n| n as usize),
        allowed_hosts: if cli.allowed_hosts.is_empty() {
            file.allowed_hosts.unwrap_or_default()
        } else {
            cli.allowed_hosts
        },
    };
    if http.header_read_timeout.is_zero() || http.request_timeout.is_zero() || http.max_connections == Some(0) {
        return Err(ConfigError::Invalid(
            "header_read_timeout_secs, request_timeout_secs and max_connections must be at least 1".into(),
        ));
    }
    let demo_room_expiry = secs(
        cli.demo_room_expiry_secs,
        file.demo_room_expiry_secs,
        crate::api::demo_rooms::DEFAULT_EXPIRY.as_secs() as u32,
    );
    Ok(Resolved {
        options,
        database,
        log_format: cli.log_format.or(file.log_format).unwrap_or_default(),
        http,
        demo_room_expiry,
    })
}

/// The signaling bounds and caps: flag or environment, else file, else the default; each at
/// least 1, and large enough that a valid message always fits.
fn signaling_limits(cli: &Overrides, file: &FileConfig, d: HubConfig) -> Result<HubConfig, ConfigError> {
    use umbra_protocol::limits::{MAX_MESSAGE_BYTES, MAX_SIGNAL_DATA, MAX_SIGNAL_TYPE};

    let pick = |name: &str, c: Option<u32>, f: Option<u32>, default: usize, min: usize| -> Result<usize, ConfigError> {
        let v = c.or(f).map_or(default, |v| v as usize);
        if v < min {
            return Err(ConfigError::Invalid(format!("{name} must be at least {min}")));
        }
        Ok(v)
    };
    let l = &d.limits;
    let rate = |name: &str, c: Option<u32>, f: Option<u32>, default: u32, min: usize| {
        pick(name, c, f, default as usize, min).map(|v| v as u32)
    };
    let limits = Limits {
        streams_per_connection: pick(
            "max_streams_per_connection",
            cli.max_streams_per_connection,
            file.max_streams_per_connection,
            l.streams_per_connection,
            1,
        )?,
        subscriptions_per_connection: pick(
            "max_subscriptions_per_connection",
            cli.max_subscriptions_per_connection,
            file.max_subscriptions_per_connection,
            l.subscriptions_per_connection,
            1,
        )?,
        connections_per_token: pick(
            "max_connections_per_token",
            cli.max_connections_per_token,
            file.max_connections_per_token,
            l.connections_per_token,
            1,
        )?,
        connections_per_session: pick(
            "max_connections_per_session",
            cli.max_connections_per_session,
            file.max_connections_per_session,
            l.connections_per_session,
            1,
        )?,
        streams_per_session: pick(
            "max_streams_per_session",
            cli.max_streams_per_session,
            file.max_streams_per_session,
            l.streams_per_session,
            1,
        )?,
        signal_count: Rate {
            per_sec: rate(
                "signal_rate_per_sec",
                cli.signal_rate_per_sec,
                file.signal_rate_per_sec,
                l.signal_count.per_sec,
                1,
            )?,
            burst: rate("signal_burst", cli.signal_burst, file.signal_burst, l.signal_count.burst, 1)?,
        },
        signal_bytes: Rate {
            per_sec: rate(
                "signal_bytes_per_sec",
                cli.signal_bytes_per_sec,
                file.signal_bytes_per_sec,
                l.signal_bytes.per_sec,
                1,
            )?,
            // A smaller bucket would refuse the largest valid signal forever.
            burst: rate(
                "signal_bytes_burst",
                cli.signal_bytes_burst,
                file.signal_bytes_burst,
                l.signal_bytes.burst,
                MAX_SIGNAL_DATA + MAX_SIGNAL_TYPE,
            )?,
        },
    };
    Ok(HubConfig {
        outbox: Bounds {
            frames: pick(
                "signaling_outbox_frames",
                cli.signaling_outbox_frames,
                file.signaling_outbox_frames,
                d.outbox.frames,
                1,
            )?,
            // An outbox that cannot hold the largest message would drop every socket it is sent to.
            bytes: pick(
                "signaling_outbox_bytes",
                cli.signaling_outbox_bytes,
                file.signaling_outbox_bytes,
                d.outbox.bytes,
                2 * MAX_MESSAGE_BYTES,
            )?,
        },
        replay: Bounds {
            frames: pick(
                "signaling_replay_frames",
                cli.signaling_replay_frames,
                file.signaling_replay_frames,
                d.replay.frames,
                1,
            )?,
            bytes: pick(
                "signaling_replay_bytes",
                cli.signaling_replay_bytes,
                file.signaling_replay_bytes,
                d.replay.bytes,
                1,
            )?,
        },
        write_timeout: Duration::from_secs(pick(
            "signaling_write_timeout_secs",
            cli.signaling_write_timeout_secs,
            file.signaling_write_timeout_secs,
            d.write_timeout.as_secs() as usize,
            1,
        )? as u64),
        limits,
        ..d
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let file: FileConfig =
            toml::from_str("listen = \"127.0.0.1:9000\"\ndata_dir = \"/d\"\nresume_window_secs = 5\n").unwrap();
        let r = resolve(Overrides { data_dir: Some("/cli".into()), ..Default::default() }, file).unwrap();
        assert_eq!(r.options.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(r.options.data_dir, PathBuf::from("/cli"));
        assert_eq!(r.options.hub.resume_window, Duration::from_secs(5));
        assert_eq!(r.options.clock_skew_secs, 30);
        let d = resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert_eq!(d.options.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(d.options.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }

    #[test]
    fn signaling_limits_come_from_flags_then_file_then_defaults_and_are_checked() {
        let file: FileConfig = toml::from_str(
            "max_streams_per_connection = 4\nsignal_rate_per_sec = 7\nsignaling_write_timeout_secs = 3\n",
        )
        .unwrap();
        let cli = Overrides { max_streams_per_connection: Some(2), ..Default::default() };
        let hub = resolve(cli, file).unwrap().options.hub;
        assert_eq!(hub.limits.streams_per_connection, 2);
        assert_eq!(hub.limits.signal_count, Rate { per_sec: 7, burst: 100 });
        assert_eq!(hub.write_timeout, Duration::from_secs(3));
        let d = resolve(Overrides::default(), FileConfig::default()).unwrap().options.hub;
        assert_eq!(d.limits, Limits::default());
        assert_eq!((d.outbox, d.replay), (HubConfig::default().outbox, HubConfig::default().replay));
        for bad in ["max_connections_per_session = 0", "signal_bytes_burst = 100", "signaling_outbox_bytes = 1000"] {
            let file: FileConfig = toml::from_str(bad).unwrap();
            let e = resolve(Overrides::default(), file).err().expect(bad).to_string();
            assert!(e.contains("must be at least"), "{bad}: {e}");
        }
    }

    #[test]
    fn http_limits_resolve_and_are_checked() {
        let file: FileConfig =
            toml::from_str("header_read_timeout_secs = 5\nmax_connections = 100\nallowed_hosts = [\"a.example\"]\n")
                .unwrap();
        let r = resolve(Overrides { request_timeout_secs: Some(7), ..Default::default() }, file.clone()).unwrap();
        assert_eq!(r.http.header_read_timeout, Duration::from_secs(5));
        assert_eq!(r.http.request_timeout, Duration::from_secs(7));
        assert_eq!(r.http.max_connections, Some(100));
        assert_eq!(r.http.allowed_hosts, ["a.example"]);
        let r = resolve(Overrides { allowed_hosts: vec!["b.example".into()], ..Default::default() }, file).unwrap();
        assert_eq!(r.http.allowed_hosts, ["b.example"]);
        let d = resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert_eq!(d.http, HttpOptions::default());
        assert_eq!(d.demo_room_expiry, Duration::from_secs(300));
        assert!(resolve(Overrides { max_connections: Some(0), ..Default::default() }, FileConfig::default()).is_err());
        assert!(
            resolve(Overrides { header_read_timeout_secs: Some(0), ..Default::default() }, FileConfig::default())
                .is_err()
        );
    }
}
