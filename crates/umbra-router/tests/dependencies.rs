//! The router forwards what it cannot read: it must not be able to link the E2EE core. This
//! walks the workspace lock file from umbra-router through every dependency (normal, build and
//! dev alike, which is stricter than needed) and fails if umbra-e2ee is reachable.

use std::collections::{HashMap, HashSet};

/// package name → names of its dependencies, from Cargo.lock (format v3/v4).
fn lock_graph(lock: &str) -> HashMap<String, Vec<String>> {
    let mut graph = HashMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let mut name = None;
        let mut deps = Vec::new();
        let mut in_deps = false;
        for line in block.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("name = ") {
                name = Some(v.trim_matches('"').to_owned());
            } else if line.starts_with("dependencies = [") {
                in_deps = true;
                // Single-line form: dependencies = ["a", "b"]
                let inner = line.trim_start_matches("dependencies = [").trim_end_matches(']');
                deps.extend(inner.split(',').filter_map(dep_name));
                if line.ends_with(']') {
                    in_deps = false;
                }
            } else if in_deps {
                if line.starts_with(']') {
                    in_deps = false;
                } else if let Some(d) = dep_name(line) {
                    deps.push(d);
                }
            }
        }
        if let Some(name) = name {
            graph.entry(name).or_insert_with(Vec::new).extend(deps);
        }
    }
    graph
}

/// `"name 1.2.3 (registry+...)",` → `name`.
fn dep_name(entry: &str) -> Option<String> {
    let e = entry.trim().trim_end_matches(',').trim_matches('"');
    let name = e.split_whitespace().next()?;
    (!name.is_empty()).then(|| name.to_owned())
}

#[test]
fn umbra_router_does_not_depend_on_umbra_e2ee() {
    let lock_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock");
    let lock = std::fs::read_to_string(lock_path).expect("the workspace Cargo.lock");
    let graph = lock_graph(&lock);
    assert!(graph.contains_key("umbra-router"), "umbra-router is in the lock file");
    assert!(graph.contains_key("str0m"), "the walk sees real dependencies");
    let mut seen = HashSet::new();
    let mut stack = vec!["umbra-router".to_owned()];
    while let Some(p) = stack.pop() {
        if !seen.insert(p.clone()) {
            continue;
        }
        assert_ne!(p, "umbra-e2ee", "umbra-router reaches umbra-e2ee through its dependencies");
        stack.extend(graph.get(&p).cloned().unwrap_or_default());
    }
    assert!(seen.contains("str0m") && seen.len() > 20, "walked {} packages", seen.len());
    // And the manifest itself does not name it.
    let manifest = include_str!("../Cargo.toml");
    assert!(!manifest.contains("umbra-e2ee"), "Cargo.toml names umbra-e2ee");
}

#[test]
fn the_lock_parser_finds_a_planted_dependency() {
    let lock = r#"
[[package]]
name = "umbra-router"
version = "0.1.0"
dependencies = [
 "str0m",
 "thiserror 2.0.1",
]

[[package]]
name = "str0m"
dependencies = ["umbra-e2ee"]
"#;
    let g = lock_graph(lock);
    assert_eq!(g["umbra-router"], vec!["str0m".to_owned(), "thiserror".to_owned()]);
    assert_eq!(g["str0m"], vec!["umbra-e2ee".to_owned()]);
}
