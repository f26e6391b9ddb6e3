//! Prints the protocol's own test vectors as JSON:
//! `cargo run -p umbra-e2ee --example umbra-e2ee-vectors > testdata/umbra-e2ee-vectors.json`

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    let vectors = support::vectors::generate();
    println!("{}", serde_json::to_string_pretty(&vectors).expect("vectors serialize"));
}
