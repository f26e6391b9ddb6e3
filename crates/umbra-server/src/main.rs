//! `umbra`: run the server and manage projects.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use umbra_server::clock::{now_millis, now_secs};
use umbra_server::config::{self, FileConfig, LogFormat, Overrides};
use umbra_server::media_router::{MediaRouter, NoMediaRouter};
use umbra_server::model::{Project, Role};
use umbra_server::router_host::{HostedRouter, MediaOptions, RouterTuning};
use umbra_server::store::{self, Store, StoreError};
use umbra_server::{ids, token};

#[derive(Parser)]
#[command(
    name = "umbra",
    version,
    about = "Umbra: a self-hosted, end-to-end-encrypted video platform with an OpenTok-compatible API.",
    long_about = "Umbra: a self-hosted, end-to-end-encrypted video platform with an OpenTok-compatible API.\n\n\
        Quick start:\n  umbra project create --name demo --e2ee   # prints the API key and secret\n  \
        umbra serve                               # http://127.0.0.1:8080\n\n\
        Point an OpenTok server SDK at the server URL (Python: Client(key, secret, api_url=URL);\n\
        Node: new OpenTok(key, secret, {apiUrl: URL})). All state lives in the data directory\n\
        (an SQLite database, umbra.sqlite3), unless --database names a PostgreSQL database."
)]
struct Cli {
    /// Directory holding the database. Default: ./umbra-data (for `serve`, also settable in the config file).
    #[arg(long, global = true, env = "UMBRA_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep projects and sessions in PostgreSQL instead of SQLite in the data directory:
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require]. The
    /// schema is created or migrated on start. Every node of a cluster names the same database.
    #[arg(long, global = true, env = "UMBRA_DATABASE_URL", hide_env_values = true, value_name = "URL")]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and the signaling server.
    ///
    /// Settings come from flags, then UMBRA_* environment variables, then the TOML file given
    /// with --config, then defaults. The file takes the same names in snake_case, e.g.
    /// `listen = "0.0.0.0:8080"`, `data_dir = "/var/lib/umbra"`, `resume_window_secs = 20`.
    /// Logs go to stderr; RUST_LOG (e.g. `info`, `umbra_server=debug`) sets the level.
    Serve(Box<ServeArgs>),
    /// Create, list and inspect projects (an API key and secret each), and switch the E2EE add-on.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Generate a client token for a session (what an app server would do with an SDK).
    Token(TokenArgs),
}

/// Where the router estimates bandwidth (`--router-bwe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RouterBwe {
    /// On subscriptions whose publisher has layers to choose among.
    Auto,
    /// On every subscription.
    On,
    /// On none.
    Off,
}

#[derive(Args)]
struct ServeArgs {
    /// Address and port to listen on. Default 127.0.0.1:8080; use 0.0.0.0:PORT to accept remote
    /// clients (behind a TLS-terminating proxy).
    #[arg(long, env = "UMBRA_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// TOML config file.
    #[arg(long, env = "UMBRA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log line format.
    #[arg(long, env = "UMBRA_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Clock difference tolerated when checking token times (default 30).
    #[arg(long, env = "UMBRA_CLOCK_SKEW_SECS", value_name = "SECS")]
    clock_skew_secs: Option<u32>,
    /// How often signaling clients are asked to send a heartbeat (default 10).
    #[arg(long, env = "UMBRA_HEARTBEAT_INTERVAL_SECS", value_name = "SECS")]
    heartbeat_interval_secs: Option<u32>,
    /// Silence after which a signaling socket is taken as dropped (default 30).
    #[arg(long, env = "UMBRA_HEARTBEAT_TIMEOUT_SECS", value_name = "SECS")]
    heartbeat_timeout_secs: Option<u32>,
    /// How long a dropped signaling connection may be resumed before it ends (default 20).
    #[arg(long, env = "UMBRA_RESUME_WINDOW_SECS", value_name = "SECS")]
    resume_window_secs: Option<u32>,
    /// How long shutdown waits for in-flight requests (default 10).
    #[arg(long, env = "UMBRA_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    shutdown_grace_secs: Option<u32>,
    /// UDP address of the media router, one per address family (repeat for IPv4 and IPv6).
    /// Default: the HTTP listen address's IP with UDP port 7882. Port 0 picks a free port.
    #[arg(long, env = "UMBRA_MEDIA_BIND", value_name = "ADDR:PORT", value_delimiter = ',')]
    media_bind: Vec<SocketAddr>,
    /// Address(es) the router advertises in its ICE candidates, when clients reach it through
    /// another address (NAT, a load balancer, a relay). Port 0 keeps the bound port.
    #[arg(long, env = "UMBRA_MEDIA_ADVERTISE", value_name = "ADDR:PORT", value_delimiter = ',')]
    media_advertise: Vec<SocketAddr>,
    /// Media worker threads of the router, each with its own UDP port(s) and peer connections
    /// (a session lives on one). Default: one per core. With a non-zero --media-bind port P,
    /// worker i binds P+i (open the range in the firewall); port 0 lets each pick a free port.
    #[arg(long, env = "UMBRA_MEDIA_WORKERS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    media_workers: Option<u16>,
    /// Bandwidth estimation (TWCC) and pacing of the router's sends to subscribers. `auto`: on
    /// subscriptions whose publisher's video has layers to choose among (simulcast, VP9/AV1,
    /// temporal layers), where the estimate picks the layer; `on`: every subscription (paced
    /// even with nothing to choose); `off` sends every packet as soon as it is forwarded: for
    /// diagnosis (is pacing holding media back?).
    #[arg(long, env = "UMBRA_ROUTER_BWE", value_enum, default_value_t = RouterBwe::Auto)]
    router_bwe: RouterBwe,
    /// Oldest media the router sends a subscriber, in ms; later frames are dropped and a
    /// keyframe requested instead (default 200).
    #[arg(long, env = "UMBRA_ROUTER_MAX_QUEUE_DELAY_MS", value_name = "MS", value_parser = clap::value_parser!(u32).range(10..=10_000))]
    router_max_queue_delay_ms: Option<u32>,
    /// Whether each media worker hands its datagrams to the kernel on a send thread of its own
    /// (`true`, the default: a large session's copies leave sooner when a core is free) or
    /// sends them itself (`false`: one thread per worker; for comparison).
    #[arg(long, env = "UMBRA_ROUTER_SEND_THREAD", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    router_send_thread: bool,
    /// Run without a media router: routed sessions then refuse media negotiation.
    #[arg(long)]
    no_media: bool,
    /// Cluster mode: `redis://host:port` of the Redis all nodes share (docs/cluster.md). Needs
    /// --database postgres://… (every node reads the same store).
    #[arg(long, env = "UMBRA_REDIS_URL", value_name = "URL")]
    redis: Option<String>,
    /// This node's id in the cluster (unique; default: a random one).
    #[arg(long, env = "UMBRA_NODE_ID", value_name = "ID", requires = "redis")]
    node_id: Option<String>,
    /// Where the other nodes reach this node's HTTP listener (default: http://<listen address>).
    #[arg(long, env = "UMBRA_CLUSTER_URL", value_name = "URL", requires = "redis")]
    cluster_url: Option<String>,
    /// Directory the Web SDK (its `dist/`, served at /sdk/) and the demo app (its `demo/`,
    /// served at /) come from. Default: ./sdk/web, else the source tree's sdk/web.
    #[arg(long, env = "UMBRA_WEB_DIR", value_name = "DIR")]
    web_dir: Option<PathBuf>,
    /// Demo mode: POST /demo/token hands out tokens for rooms of the `demo` project to anyone
    /// who can reach the server. For trying Umbra out, never for production.
    #[arg(long, env = "UMBRA_DEMO", value_parser = clap::builder::FalseyValueParser::new())]
    demo: bool,
    /// Frames queued for one signaling socket before its client is deemed too slow and the socket dropped (resumable) (default 1024).
    #[arg(long, env = "UMBRA_SIGNALING_OUTBOX_FRAMES", value_name = "N")]
    signaling_outbox_frames: Option<u32>,
    /// Bytes queued for one signaling socket before the socket is dropped (resumable) (default 1048576).
    #[arg(long, env = "UMBRA_SIGNALING_OUTBOX_BYTES", value_name = "BYTES")]
    signaling_outbox_bytes: Option<u32>,
    /// Events kept per connection for replay on resume (default 256).
    #[arg(long, env = "UMBRA_SIGNALING_REPLAY_FRAMES", value_name = "N")]
    signaling_replay_frames: Option<u32>,
    /// Bytes of events kept per connection for replay on resume (default 524288).
    #[arg(long, env = "UMBRA_SIGNALING_REPLAY_BYTES", value_name = "BYTES")]
    signaling_replay_bytes: Option<u32>,
    /// A signaling write that does not complete in this time drops the socket (resumable) (default 10).
    #[arg(long, env = "UMBRA_SIGNALING_WRITE_TIMEOUT_SECS", value_name = "SECS")]
    signaling_write_timeout_secs: Option<u32>,
    /// Streams one signaling connection may publish at once (default 16).
    #[arg(long, env = "UMBRA_MAX_STREAMS_PER_CONNECTION", value_name = "N")]
    max_streams_per_connection: Option<u32>,
    /// Subscriptions one signaling connection may hold at once (default 256).
    #[arg(long, env = "UMBRA_MAX_SUBSCRIPTIONS_PER_CONNECTION", value_name = "N")]
    max_subscriptions_per_connection: Option<u32>,
    /// Live signaling connections made with one token (default 16).
    #[arg(long, env = "UMBRA_MAX_CONNECTIONS_PER_TOKEN", value_name = "N")]
    max_connections_per_token: Option<u32>,
    /// Signaling connections in one session (default 1000).
    #[arg(long, env = "UMBRA_MAX_CONNECTIONS_PER_SESSION", value_name = "N")]
    max_connections_per_session: Option<u32>,
    /// Streams in one session (default 1000).
    #[arg(long, env = "UMBRA_MAX_STREAMS_PER_SESSION", value_name = "N")]
    max_streams_per_session: Option<u32>,
    /// Signals one connection may send per second (default 50).
    #[arg(long, env = "UMBRA_SIGNAL_RATE_PER_SEC", value_name = "N")]
    signal_rate_per_sec: Option<u32>,
    /// Signals one connection may send in a burst (default 100).
    #[arg(long, env = "UMBRA_SIGNAL_BURST", value_name = "N")]
    signal_burst: Option<u32>,
    /// Signal bytes one connection may send per second (default 262144).
    #[arg(long, env = "UMBRA_SIGNAL_BYTES_PER_SEC", value_name = "BYTES")]
    signal_bytes_per_sec: Option<u32>,
    /// Signal bytes one connection may send in a burst (default 524288).
    #[arg(long, env = "UMBRA_SIGNAL_BYTES_BURST", value_name = "BYTES")]
    signal_bytes_burst: Option<u32>,
    /// Time a connection gets to send a complete request header, also the longest an idle
    /// keep-alive connection stays open (default 10).
    #[arg(long, env = "UMBRA_HEADER_READ_TIMEOUT_SECS", value_name = "SECS")]
    header_read_timeout_secs: Option<u32>,
    /// Time from a request's header to its response, reading the body included (default 30).
    #[arg(long, env = "UMBRA_REQUEST_TIMEOUT_SECS", value_name = "SECS")]
    request_timeout_secs: Option<u32>,
    /// Open connections (WebSockets included) beyond which the longest-idle ones are closed to
    /// admit new ones. Default: the open-file limit minus an eighth (at least 64) of headroom.
    #[arg(long, env = "UMBRA_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<u32>,
    /// A host name the demo app, the Web SDK and the signaling WebSocket answer to, besides IP
    /// addresses and localhost (repeat for more; `*` accepts any). Guards against DNS rebinding.
    #[arg(long = "allowed-host", env = "UMBRA_ALLOWED_HOSTS", value_name = "NAME", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// How long a demo room stays known once empty; then its session is deleted (default 300).
    #[arg(long, env = "UMBRA_DEMO_ROOM_EXPIRY_SECS", value_name = "SECS")]
    demo_room_expiry_secs: Option<u32>,
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Create a project and print its API key and secret.
    Create {
        /// A unique name for the project.
        #[arg(long)]
        name: String,
        /// Enable the end-to-end encryption add-on (sessions may then be created with e2ee=true).
        #[arg(long)]
        e2ee: bool,
        /// If a project with this name exists, print it instead of failing.
        #[arg(long)]
        if_absent: bool,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// List projects (without secrets).
    List {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show one project, by API key or name, including its secret.
    Show {
        key_or_name: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Enable or disable the E2EE add-on of a project.
    E2ee {
        #[arg(value_enum)]
        action: Toggle,
        /// API key or name of the project.
        key_or_name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Toggle {
    Enable,
    Disable,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Args)]
struct TokenArgs {
    /// API key or name of the project that owns the session.
    #[arg(long)]
    project: String,
    /// The session id.
    #[arg(long)]
    session_id: String,
    #[arg(long, default_value = "publisher", value_parser = ["publisher", "subscriber", "moderator", "publisheronly"])]
    role: String,
    /// Lifetime in seconds, at most 30 days (2592000), as with OpenTok.
    #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(u32).range(1..=token::MAX_LIFETIME_SECS))]
    ttl_secs: u32,
    /// Connection data other clients see.
    #[arg(long)]
    data: Option<String>,
    /// Token format: a JWT, or the legacy T1 format.
    #[arg(long, value_enum, default_value_t = TokenFormat::Jwt)]
    format: TokenFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum TokenFormat {
    Jwt,
    T1,
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Serve(#[from] umbra_server::server::ServeError),
    #[error("no project with API key or name {0:?}")]
    UnknownProject(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot start the media router: {0}")]
    Router(#[from] umbra_router::RouterError),
    #[error("{0}")]
    Usage(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("umbra: {e}");
            ExitCode::FAILURE
        }
    }
}

fn open_store(data_dir: &Option<PathBuf>, database: &Option<String>) -> Result<Box<dyn Store>, StoreError> {
    let dir = data_dir.as_deref().unwrap_or(std::path::Path::new(config::DEFAULT_DATA_DIR));
    store::open(database.as_deref(), dir)
}

fn find_project(store: &dyn Store, key_or_name: &str) -> Result<Project, CliError> {
    if let Some(p) = store.project(key_or_name)? {
        return Ok(p);
    }
    store.project_by_name(key_or_name)?.ok_or_else(|| CliError::UnknownProject(key_or_name.to_owned()))
}

fn print_project(p: &Project, with_secret: bool, output: Output) {
    match output {
        Output::Json => {
            let mut v = serde_json::json!({"api_key": p.api_key, "name": p.name, "e2ee": p.e2ee_enabled, "created_ms": p.created_ms});
            if with_secret {
                v["api_secret"] = p.secret.clone().into();
            }
            println!("{v}");
        }
        Output::Text => {
            println!("name:       {}", p.name);
            println!("api_key:    {}", p.api_key);
            if with_secret {
                println!("api_secret: {}", p.secret);
            }
            println!("e2ee:       {}", if p.e2ee_enabled { "enabled" } else { "disabled" });
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let Cli { data_dir, database, command } = cli;
    match command {
        Command::Serve(args) => serve(data_dir, database, *args),
        Command::Project(cmd) => {
            let store = open_store(&data_dir, &database)?;
            project(store.as_ref(), cmd)
        }
        Command::Token(args) => {
            let store = open_store(&data_dir, &database)?;
            let p = find_project(store.as_ref(), &args.project)?;
            let role = Role::parse(&args.role).expect("clap restricts roles");
            let exp = now_secs() + i64::from(args.ttl_secs);
            let t = match args.format {
                TokenFormat::Jwt => {
                    token::sign_jwt(&p.api_key, &p.secret, &args.session_id, role, exp, args.data.as_deref())
                }
                TokenFormat::T1 => {
                    let mut data = vec![
                        ("session_id", args.session_id.clone()),
                        ("create_time", now_secs().to_string()),
                        ("expire_time", exp.to_string()),
                        ("role", role.as_str().to_owned()),
                        ("nonce", ids::new_id()),
                    ];
                    if let Some(d) = &args.data {
                        data.push(("connection_data", d.clone()));
                    }
                    let data = serde_urlencoded::to_string(&data).expect("strings encode");
                    token::sign_t1(&p.api_key, &p.secret, &data)
                }
            };
            println!("{t}");
            Ok(())
        }
    }
}

fn project(store: &dyn Store, cmd: ProjectCommand) -> Result<(), CliError> {
    match cmd {
        ProjectCommand::Create { name, e2ee, if_absent, output } => {
            if let Some(existing) = store.project_by_name(&name)? {
                if if_absent {
                    print_project(&existing, true, output);
                    return Ok(());
                }
                return Err(StoreError::DuplicateName(name).into());
            }
            let p = loop {
                let p = Project {
                    api_key: ids::new_api_key(),
                    name: name.clone(),
                    secret: ids::new_secret(),
                    e2ee_enabled: e2ee,
                    created_ms: now_millis(),
                };
                match store.insert_project(&p) {
                    Ok(()) => break p,
                    // 90 million keys: a collision is rare but possible; draw again.
                    Err(StoreError::DuplicateId(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            print_project(&p, true, output);
            Ok(())
        }
        ProjectCommand::List { output } => {
            let projects = store.projects()?;
            match output {
                Output::Json => {
                    let v: Vec<_> = projects
                        .iter()
                        .map(|p| serde_json::json!({"api_key": p.api_key, "name": p.name, "e2ee": p.e2ee_enabled, "created_ms": p.created_ms}))
                        .collect();
                    println!("{}", serde_json::Value::Array(v));
                }
                Output::Text => {
                    println!("{:<10} {:<8} NAME", "API_KEY", "E2EE");
                    for p in &projects {
                        println!(
                            "{:<10} {:<8} {}",
                            p.api_key,
                            if p.e2ee_enabled { "enabled" } else { "disabled" },
                            p.name
                        );
                    }
                }
            }
            Ok(())
        }
        ProjectCommand::Show { key_or_name, output } => {
            print_project(&find_project(store, &key_or_name)?, true, output);
            Ok(())
        }
        ProjectCommand::E2ee { action, key_or_name } => {
            let p = find_project(store, &key_or_name)?;
            let on = matches!(action, Toggle::Enable);
            if !store.set_e2ee_enabled(&p.api_key, on)? {
                return Err(CliError::UnknownProject(key_or_name));
            }
            println!("E2EE add-on {} for project {} ({})", if on { "enabled" } else { "disabled" }, p.api_key, p.name);
            Ok(())
        }
    }
}

fn serve(data_dir: Option<PathBuf>, database: Option<String>, args: ServeArgs) -> Result<(), CliError> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let resolved = config::resolve(
        Overrides {
            listen: args.listen,
            data_dir,
            database,
            log_format: args.log_format,
            clock_skew_secs: args.clock_skew_secs,
            heartbeat_interval_secs: args.heartbeat_interval_secs,
            heartbeat_timeout_secs: args.heartbeat_timeout_secs,
            resume_window_secs: args.resume_window_secs,
            shutdown_grace_secs: args.shutdown_grace_secs,
            signaling_outbox_frames: args.signaling_outbox_frames,
            signaling_outbox_bytes: args.signaling_outbox_bytes,
            signaling_replay_frames: args.signaling_replay_frames,
            signaling_replay_bytes: args.signaling_replay_bytes,
            signaling_write_timeout_secs: args.signaling_write_timeout_secs,
            max_streams_per_connection: args.max_streams_per_connection,
            max_subscriptions_per_connection: args.max_subscriptions_per_connection,
            max_connections_per_token: args.max_connections_per_token,
            max_connections_per_session: args.max_connections_per_session,
            max_streams_per_session: args.max_streams_per_session,
            signal_rate_per_sec: args.signal_rate_per_sec,
            signal_burst: args.signal_burst,
            signal_bytes_per_sec: args.signal_bytes_per_sec,
            signal_bytes_burst: args.signal_bytes_burst,
            header_read_timeout_secs: args.header_read_timeout_secs,
            request_timeout_secs: args.request_timeout_secs,
            max_connections: args.max_connections,
            allowed_hosts: args.allowed_hosts.clone(),
            demo_room_expiry_secs: args.demo_room_expiry_secs,
        },
        file,
    )?;
    init_logging(resolved.log_format);
    let mut resolved = resolved;
    if let Some(redis_url) = &args.redis {
        if resolved.database.is_none() {
            return Err(CliError::Usage(
                "--redis (cluster mode) needs --database postgres://…: every node must read the same store".into(),
            ));
        }
        resolved.options.cluster = Some(umbra_server::cluster::ClusterOptions {
            redis_url: redis_url.clone(),
            node_id: args.node_id.clone().unwrap_or_else(umbra_server::ids::new_id),
            url: args.cluster_url.clone().unwrap_or_default(),
        });
    }
    let store = store::open(resolved.database.as_deref(), &resolved.options.data_dir)?;
    match &resolved.database {
        Some(url) => tracing::info!(database = %store::redact(url), "store: PostgreSQL"),
        None => tracing::info!(data_dir = %resolved.options.data_dir.display(), "store: SQLite"),
    }
    let router: Arc<dyn MediaRouter> = if args.no_media {
        Arc::new(NoMediaRouter)
    } else {
        let bind = if args.media_bind.is_empty() {
            vec![SocketAddr::new(resolved.options.listen.ip(), 7882)]
        } else {
            args.media_bind.clone()
        };
        let tuning = RouterTuning {
            media_workers: args.media_workers.map(usize::from),
            bwe_off: args.router_bwe == RouterBwe::Off,
            bwe_every_subscription: args.router_bwe == RouterBwe::On,
            max_queue_delay: args.router_max_queue_delay_ms.map(|ms| std::time::Duration::from_millis(ms.into())),
            inline_send: !args.router_send_thread,
        };
        let hosted =
            HostedRouter::start_with(&MediaOptions { bind, advertise: args.media_advertise.clone() }, &tuning)?;
        for addr in hosted.local_addrs() {
            tracing::info!(%addr, "media router listening (UDP)");
        }
        Arc::new(hosted)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)?;
    let web = umbra_server::api::web::WebOptions {
        dir: args.web_dir.clone().unwrap_or_else(umbra_server::api::web::default_web_dir),
        demo: args.demo,
        demo_room_expiry: resolved.demo_room_expiry,
    };
    if web.demo {
        tracing::warn!("demo mode: POST /demo/token issues tokens to anyone who can reach this server");
    }
    runtime.block_on(umbra_server::server::serve_http(
        resolved.options,
        resolved.http,
        Arc::from(store),
        router,
        web,
    ))?;
    Ok(())
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
