//! The Web SDK's protocol types are generated from this crate; the committed file must be what
//! the generator makes now (like the C header check of umbra-capi).

use std::path::Path;

#[test]
fn committed_typescript_matches_the_generator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join(umbra_protocol::typescript::GENERATED_PATH);
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fresh = umbra_protocol::typescript::generate();
    if committed != fresh {
        let first = committed.lines().zip(fresh.lines()).position(|(a, b)| a != b);
        panic!(
            "{} is stale (first differing line: {:?}); regenerate it with\n  \
             cargo run -p umbra-protocol --features typescript --example typescript > {}",
            path.display(),
            first.map(|l| l + 1),
            umbra_protocol::typescript::GENERATED_PATH
        );
    }
}
