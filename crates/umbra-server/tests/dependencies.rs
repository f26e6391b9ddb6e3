//! The `umbra` server forwards frames it cannot read: its crate must not link the frame crypto
//! (umbra-e2ee), the native SDK (umbra-client) or any codec binding (libvpx, libopus). Checked on
//! the resolved dependency graph (`cargo metadata`), following every non-dev edge; tests may
//! still drive real clients through dev-dependencies.

use std::collections::{HashMap, VecDeque};
use std::process::Command;

use serde_json::Value;

/// Crates that hold frame crypto or media codecs, by exact name.
const FORBIDDEN: &[&str] = &["umbra-e2ee", "umbra-client", "umbra-capi", "umbra-media"];

/// Any binding to libvpx or libopus, whatever its packaging (`env-libvpx-sys`, `vpx-sys`,
/// `opus`, `audiopus_sys`, ...).
fn is_codec_binding(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("vpx") || n.contains("opus")
}

struct Graph {
    /// Package id → (package name, ids of its non-dev dependencies).
    nodes: HashMap<String, (String, Vec<String>)>,
}

impl Graph {
    fn load() -> Graph {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
        let out = Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--manifest-path", manifest])
            .output()
            .expect("run cargo metadata");
        assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
        let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
        let names: HashMap<&str, &str> = meta["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
            .collect();
        let mut nodes = HashMap::new();
        for node in meta["resolve"]["nodes"].as_array().expect("a resolved graph") {
            let id = node["id"].as_str().unwrap();
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                // `kind` is null for normal dependencies, "build" for build-dependencies.
                .filter(|d| d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].as_str() != Some("dev")))
                .map(|d| d["pkg"].as_str().unwrap().to_owned())
                .collect();
            nodes.insert(id.to_owned(), (names[id].to_owned(), deps));
        }
        Graph { nodes }
    }

    fn id_of(&self, name: &str) -> &str {
        self.nodes.iter().find(|(_, (n, _))| n == name).map(|(id, _)| id.as_str()).expect("a workspace package")
    }

    /// Every forbidden crate reachable from `root`, each with the path that reaches it.
    fn forbidden_paths(&self, root: &str) -> Vec<String> {
        let start = self.id_of(root).to_owned();
        let mut parent: HashMap<String, String> = HashMap::new();
        let mut queue = VecDeque::from([start.clone()]);
        let mut found = Vec::new();
        while let Some(id) = queue.pop_front() {
            let (name, deps) = &self.nodes[&id];
            if id != start && (FORBIDDEN.contains(&name.as_str()) || is_codec_binding(name)) {
                let mut path = vec![name.clone()];
                let mut at = &id;
                while let Some(p) = parent.get(at) {
                    path.push(self.nodes[p].0.clone());
                    at = p;
                }
                path.reverse();
                found.push(path.join(" -> "));
            }
            for d in deps {
                if *d != start && !parent.contains_key(d) {
                    parent.insert(d.clone(), id.clone());
                    queue.push_back(d.clone());
                }
            }
        }
        found.sort();
        found
    }
}

#[test]
fn the_server_reaches_no_frame_crypto_and_no_codec() {
    let graph = Graph::load();
    let paths = graph.forbidden_paths("umbra-server");
    assert!(
        paths.is_empty(),
        "umbra-server must not depend on these (path from the server):\n  {}",
        paths.join("\n  ")
    );
}

#[test]
fn the_check_sees_what_the_media_cli_links() {
    // The same walk from the media CLI must find the SDK and both codecs, or it proves nothing.
    let paths = Graph::load().forbidden_paths("umbra-media");
    for needle in ["umbra-client", "vpx", "opus"] {
        assert!(paths.iter().any(|p| p.contains(needle)), "{needle} not found from umbra-media: {paths:?}");
    }
}
