//! Prints the encrypted-signal test vectors as JSON:
//! `cargo run -p umbra-e2ee --example umbra-signal-vectors > testdata/umbra-signal-vectors.json`

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    let vectors = support::signal_vectors::generate();
    println!("{}", serde_json::to_string_pretty(&vectors).expect("vectors serialize"));
}
