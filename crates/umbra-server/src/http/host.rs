//! The `Host` allow-list, against DNS rebinding: a web page on `evil.example` whose name the
//! attacker re-points at 127.0.0.1 makes the visitor's browser talk to a local `umbra serve` as
//! if it were evil.example's own origin, and read the answers (demo tokens, for one). The
//! browser still sends `Host: evil.example`, which is what gives it away.
//!
//! Accepted: any IP literal (a rebinding page is always reached by a name, so an IP host means
//! the browser really went to that address), `localhost` and `*.localhost` (browsers resolve those
//! to loopback themselves), and the names given with `--allowed-host` (`*` turns the check off).
//!
//! Guarded: the routes a browser uses, [`guards`]. The REST API is not: each call is signed with
//! the project secret, which a rebinding page does not have, and server SDKs behind proxies
//! commonly send whatever name they were configured with. `/healthz` and `/metrics` are not
//! either: probes address servers by whatever name the orchestrator knows.

use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    any: bool,
    names: Vec<String>,
}

impl HostPolicy {
    pub fn new(allowed: &[String]) -> Self {
        Self {
            any: allowed.iter().any(|n| n.trim() == "*"),
            names: allowed.iter().map(|n| normalise(n)).filter(|n| !n.is_empty() && n != "*").collect(),
        }
    }

    /// `host` is the `Host` header (or the authority of an absolute request target); a request
    /// with neither comes from no browser and passes.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        if self.any {
            return true;
        }
        let name = normalise(strip_port(host));
        if name.is_empty() {
            return false;
        }
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.contains(&name)
    }
}

fn strip_port(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        // [v6]:port
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Lower case, without a trailing dot (`localhost.` names the same host).
fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether the route with this pattern checks the `Host`.
pub fn guards(route: &str) -> bool {
    route == "/" || route.starts_with("/sdk/") || route.starts_with("/demo/") || route == crate::api::SIGNALING_PATH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_and_localhost_pass_names_need_the_flag() {
        let p = HostPolicy::new(&["Video.Example.com".into()]);
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "[::1]:8080",
            "[::1]",
            "10.200.0.1:41234",
            "localhost:8080",
            "LOCALHOST.",
            "app.localhost",
            "video.example.com",
            "video.example.com.:443",
        ] {
            assert!(p.allows(Some(ok)), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example", "", ":80"]
        {
            assert!(!p.allows(Some(bad)), "{bad}");
        }
        assert!(p.allows(None));
        assert!(HostPolicy::new(&["*".into()]).allows(Some("evil.example")));
        assert!(!HostPolicy::default().allows(Some("example.com")));
    }

    #[test]
    fn guards_the_browser_routes_only() {
        for r in ["/", "/sdk/{file}", "/demo/{file}", "/demo/token", "/v1/signaling"] {
            assert!(guards(r), "{r}");
        }
        for r in ["/healthz", "/metrics", "/session/create", "/v2/project/{apiKey}/archive"] {
            assert!(!guards(r), "{r}");
        }
    }
}
