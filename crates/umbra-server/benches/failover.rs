//! Cluster failover (issue 14): time from killing the node that hosts a session (SIGKILL) to the
//! subscriber decoding video again, over K kills (default 10).
//!
//! Three `umbra serve` nodes (debug or release, whichever `cargo bench` built) on the bench's own
//! PostgreSQL and Redis behind a TCP load balancer (tests/common/cluster.rs); an end-to-end
//! encrypted native publisher (test pattern, VP8) and subscriber, both through the load balancer.
//! Each round: the session's node is killed, the clients resume through the load balancer, a live
//! node adopts the session and both clients renegotiate their peer connections on its router;
//! the figure is the time from the kill to the first frame decoded after the gap. The killed node
//! is started again before the next round. Every loop is bounded; traffic stays on 127.0.0.1.
//!
//! Run: `cargo bench -p umbra-server --bench failover` (env: UMBRA_BENCH_KILLS). Needs PostgreSQL
//! and redis-server installed (scripts/install-deps.sh --tests).

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::native::Native;
use common::new_session;

const SECRET: &str = "kill the node, keep the call";
/// A pause in decoding at least this long is the move (frames come every 33 ms).
const GAP: Duration = Duration::from_millis(300);
const LIMIT: Duration = Duration::from_secs(20);

fn main() {
    let kills: usize = std::env::var("UMBRA_BENCH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let mut c = Cluster::start(3, &["--media-bind", "127.0.0.1:0"]);
    let sid = new_session(&c.addr(0), &c.project, "p2p.preference=disabled&e2ee=true");
    let mut publisher = Native::join(&c.lb.url(), &c.project, &sid, SECRET, "publisher");
    publisher.publish_pattern();
    let mut sub = Native::join(&c.lb.url(), &c.project, &sid, SECRET, "subscriber");
    let id = sub.subscribe_first();
    sub.decoding_again(id, 30, LIMIT).expect("the subscriber decodes");

    let mut times = Vec::new();
    for round in 1..=kills {
        // Steady decoding, and the session's state mirrored, before each kill.
        sub.decoding_again(id, 30, LIMIT).unwrap_or_else(|| panic!("round {round}: not decoding before the kill"));
        let home = c.home_of(&sid).expect("the session has a node");
        let killed_at = Instant::now();
        c.kill(home);
        let back = first_frame_after_gap(&sub, id, killed_at)
            .unwrap_or_else(|| panic!("round {round}: no frame within {LIMIT:?} of the kill\n{}", c.logs()));
        let moved_to = c.home_of(&sid).map_or("?".into(), |h| format!("n{h}"));
        println!(
            "kill {round}: node n{home} killed, decoding again after {:.0} ms (session now on {moved_to})",
            back.as_secs_f64() * 1e3
        );
        times.push(back);
        c.restart(home);
    }
    publisher.drain();
    sub.drain();
    let troubles: Vec<String> =
        publisher.troubles().into_iter().chain(sub.troubles()).map(|e| format!("{e:?}")).collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "node kill -> first decoded frame over {} kills: median {:.0} ms, min {:.0} ms, max {:.0} ms; \
         {} unexpected events (mismatch, errors, destroyed)",
        times.len(),
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(*times.last().unwrap()),
        troubles.len()
    );
    for t in troubles.iter().take(5) {
        println!("  {t}");
    }
}

/// Time from `since` to the first frame decoded after a pause of at least [`GAP`].
fn first_frame_after_gap(sub: &Native, id: umbra_client::SubscriberId, since: Instant) -> Option<Duration> {
    let (mut last, mut last_change) = (sub.decoded(id), Instant::now());
    while since.elapsed() < LIMIT {
        std::thread::sleep(Duration::from_millis(2));
        let now = sub.decoded(id);
        if now != last {
            if last_change.elapsed() >= GAP {
                return Some(since.elapsed());
            }
            (last, last_change) = (now, Instant::now());
        }
    }
    None
}
