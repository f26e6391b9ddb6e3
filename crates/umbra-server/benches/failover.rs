//! Cluster failover (issue 14): time from killing the node that hosts a session (SIGKILL) to the
//! subscriber decoding video again, over K kills (default 10).
//!
//! Three `umbra serve` nodes (debug or release, whichever `cargo bench` built) on the bench's own
//! PostgreSQL and Redis behind a TCP load balancer (tests/common/cluster.rs); an end-to-end
//! encrypted native publisher (test pattern, VP8) and subscriber, both through the load balancer.
//! Each round: the session's node is killed, the clients resume through the load balancer, a live
//! node adopts the session and both clients renegotiate their peer connections on its router;
//! the figures are the longest time between two decoded pictures in the 6 s after the kill (the
//! freeze a viewer sees, which bounds the time from the kill to the first picture after it) and
//! the pictures lost (the test pattern numbers its frames). The killed node
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
use umbra_client::media::pattern::TestPattern;
use umbra_client::{Event, SubscriberEvent};

const SECRET: &str = "kill the node, keep the call";
const LIMIT: Duration = Duration::from_secs(20);
/// How long after each kill the subscriber is watched.
const WATCH: Duration = Duration::from_secs(6);

fn main() {
    let kills: usize = std::env::var("UMBRA_BENCH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let mut c = Cluster::start(3, &["--media-bind", "127.0.0.1:0"]);
    let sid = new_session(&c.addr(0), &c.project, "p2p.preference=disabled&e2ee=true");
    let mut publisher = Native::join(&c.lb.url(), &c.project, &sid, SECRET, "publisher");
    publisher.publish_pattern();
    let mut sub = Native::join(&c.lb.url(), &c.project, &sid, SECRET, "subscriber");
    let id = sub.subscribe_first();
    sub.decoding_again(id, 30, LIMIT).expect("the subscriber decodes");

    let (mut times, mut stalls): (Vec<Duration>, Vec<u32>) = (Vec::new(), Vec::new());
    for round in 1..=kills {
        // Steady decoding, and the session's state mirrored, before each kill.
        sub.decoding_again(id, 30, LIMIT).unwrap_or_else(|| panic!("round {round}: not decoding before the kill"));
        let home = c.home_of(&sid).expect("the session has a node");
        // Pictures queued since the last round would be read as if they came after the kill.
        while sub.next_event(Duration::ZERO).is_some() {}
        let killed_at = Instant::now();
        c.kill(home);
        let (freeze, lost) = freeze_after(&sub, killed_at)
            .unwrap_or_else(|| panic!("round {round}: nothing decoded after the kill\n{}", c.logs()));
        let moved_to = c.home_of(&sid).map_or("?".into(), |h| format!("n{h}"));
        assert!(moved_to != format!("n{home}"), "round {round}: the session did not move\n{}", c.logs());
        println!(
            "kill {round}: node n{home} killed, session now on {moved_to}: longest time between decoded pictures \
             {:.0} ms, {lost} pictures lost",
            freeze.as_secs_f64() * 1e3
        );
        stalls.push(lost);
        times.push(freeze);
        c.restart(home);
    }
    publisher.drain();
    sub.drain();
    let troubles: Vec<String> =
        publisher.troubles().into_iter().chain(sub.troubles()).map(|e| format!("{e:?}")).collect();
    times.sort();
    stalls.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "over {} kills: longest time between decoded pictures after the kill (kill -> first picture after the \
         freeze, at most): median {:.0} ms, max {:.0} ms; pictures lost (30 fps): median {}, max {}; {} unexpected \
         events (mismatch, errors, destroyed)",
        times.len(),
        ms(times[times.len() / 2]),
        ms(*times.last().unwrap()),
        stalls[stalls.len() / 2],
        stalls.last().unwrap(),
        troubles.len()
    );
    for t in troubles.iter().take(5) {
        println!("  {t}");
    }
}

/// Watches the pictures `sub` decodes for [`WATCH`] after the kill at `since`: the longest time
/// between two decoded pictures (the freeze a viewer sees; 33 ms is none, at 30 fps) and how many
/// pictures never arrived (the test pattern numbers its frames). `None` if nothing was decoded.
fn freeze_after(sub: &Native, since: Instant) -> Option<(Duration, u32)> {
    let (mut last, mut last_at): (Option<u32>, Instant) = (None, since);
    let (mut longest, mut lost) = (Duration::ZERO, 0);
    while since.elapsed() < WATCH {
        let Some(Event::Subscriber { event: SubscriberEvent::VideoFrame(f), .. }) =
            sub.next_event(Duration::from_millis(100))
        else {
            continue;
        };
        let Some(n) = TestPattern::read_frame_number(&f) else { continue };
        longest = longest.max(last_at.elapsed());
        if let Some(prev) = last {
            lost += n.saturating_sub(prev + 1);
        }
        (last, last_at) = (Some(n), Instant::now());
    }
    // A stream that stopped for good shows as a freeze up to the end of the watch.
    last.map(|_| (longest.max(last_at.elapsed()), lost))
}
