//! `umbra-loadgen`: see `--help`.

use std::time::Duration;

use umbra_loadgen::run::{Backend, Options, run, summary};

const HELP: &str = "\
umbra-loadgen: one publisher (synthetic VP8 ~2.5 Mb/s 30 fps + Opus-shaped 20 ms audio, every
frame stamped with a sequence number and its send time) and N subscribers, all in this process,
against Umbra or Janus VideoRoom through their own signaling. Prints one JSON line (stdout) and a
summary (stderr).

USAGE:
  umbra-loadgen --backend umbra --url http://127.0.0.1:8080 --api-key KEY --api-secret SECRET [options]
  umbra-loadgen --backend janus --url http://127.0.0.1:8088/janus [options]

OPTIONS:
  -n, --subscribers N   subscribers (default 10)
  --threads T           subscriber threads (default: cores, at most 4)
  --bind IP             local IP of every peer's UDP socket (default 127.0.0.1; Janus ignores
                        loopback candidates: use an address of a veth in a namespace)
  --server-pid PID      the server process, for CPU (/proc/PID/stat) and RSS figures
  --warmup SECS         after every subscriber receives video (default 3)
  --duration SECS       measurement window (default 10)
  --grace SECS          wait for late frames after the window (default 1)
  --video-kbps K        video rate (default 2500)
  --fps F               video frame rate (default 30)
  --drop-every K        count but never send every K-th frame of each kind (checks loss detection)
  --pace X              the publisher sends at most X times the video rate, as a browser's pacer
                        does (libwebrtc: 2.5); 0 (default) sends each frame in one burst. The
                        latency then includes the pacer's delay (a key frame's ~50 ms at 2.5)
  --batch-us US         a subscriber thread wakes at most once per US microseconds (default
                        1000; 0 = at every datagram): the client then costs the same for a
                        server that paces its packets as for one that sends them in bursts
  --label TEXT          copied into the JSON
";

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut kv = std::collections::HashMap::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "-h" || a == "--help" {
            print!("{HELP}");
            std::process::exit(0);
        }
        let key = match a.as_str() {
            "-n" => "--subscribers".to_string(),
            k if k.starts_with("--") => k.to_string(),
            other => return Err(format!("unexpected argument {other:?}")),
        };
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => {
                let v = it.next().ok_or_else(|| format!("{key} needs a value"))?;
                (key, v)
            }
        };
        kv.insert(key, value);
    }
    let take = |kv: &mut std::collections::HashMap<String, String>, k: &str| kv.remove(k);
    let need = |kv: &mut std::collections::HashMap<String, String>, k: &str| {
        kv.remove(k).ok_or_else(|| format!("{k} is required (see --help)"))
    };
    fn num<T: std::str::FromStr>(k: &str, v: Option<String>, default: T) -> Result<T, String> {
        match v {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("{k}: {v:?} is not a valid number")),
        }
    }
    let backend = match need(&mut kv, "--backend")?.as_str() {
        "umbra" => Backend::Umbra {
            url: need(&mut kv, "--url")?,
            api_key: need(&mut kv, "--api-key")?,
            api_secret: need(&mut kv, "--api-secret")?,
        },
        "janus" => Backend::Janus { url: need(&mut kv, "--url")? },
        other => return Err(format!("--backend {other:?}: umbra or janus")),
    };
    let n = num("--subscribers", take(&mut kv, "--subscribers"), 10usize)?;
    let mut o = Options::new(backend, n);
    o.threads = num("--threads", take(&mut kv, "--threads"), o.threads)?.max(1);
    if let Some(b) = take(&mut kv, "--bind") {
        o.bind = b.parse().map_err(|_| format!("--bind: {b:?} is not an IP address"))?;
    }
    o.server_pid = take(&mut kv, "--server-pid").map(|p| p.parse()).transpose().map_err(|_| "--server-pid")?;
    let secs = |k: &str, v: Option<String>, d: Duration| -> Result<Duration, String> {
        Ok(v.map(|v| v.parse::<f64>().map_err(|_| format!("{k}: {v:?}")))
            .transpose()?
            .map_or(d, Duration::from_secs_f64))
    };
    o.warmup = secs("--warmup", take(&mut kv, "--warmup"), o.warmup)?;
    o.duration = secs("--duration", take(&mut kv, "--duration"), o.duration)?;
    o.grace = secs("--grace", take(&mut kv, "--grace"), o.grace)?;
    o.publisher.video_bps = num("--video-kbps", take(&mut kv, "--video-kbps"), 2500u64)? * 1000;
    o.publisher.fps = num("--fps", take(&mut kv, "--fps"), 30u32)?.clamp(1, 120);
    o.publisher.drop_every = num("--drop-every", take(&mut kv, "--drop-every"), 0u32)?;
    o.publisher.pace = num("--pace", take(&mut kv, "--pace"), 0f64)?;
    if !(o.publisher.pace == 0.0 || (1.0..=100.0).contains(&o.publisher.pace)) {
        return Err(format!("--pace: {} is not 0 or between 1 and 100", o.publisher.pace));
    }
    o.label = take(&mut kv, "--label");
    o.batch = Duration::from_micros(num("--batch-us", take(&mut kv, "--batch-us"), 1000u64)?.min(20_000));
    if let Some(k) = kv.keys().next() {
        return Err(format!("unknown option {k} (see --help)"));
    }
    Ok(o)
}

fn main() {
    let opts = match parse(std::env::args().skip(1).collect()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("umbra-loadgen: {e}");
            std::process::exit(2);
        }
    };
    match run(&opts) {
        Ok(report) => {
            eprintln!("{}", summary(&report));
            println!("{report}");
        }
        Err(e) => {
            eprintln!("umbra-loadgen: {e}");
            std::process::exit(1);
        }
    }
}
