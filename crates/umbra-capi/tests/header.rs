//! The C header is generated from the Rust definitions; this test regenerates it and fails if
//! the committed `include/umbra/otc.h` differs, so the two cannot drift. It also compiles the
//! header as strict C99 and as C++ so a generated header that a compiler rejects fails here.
//!
//! After changing the API: `UMBRA_BLESS_HEADER=1 cargo test -p umbra-capi --test header`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    crate_dir().join("include/umbra/otc.h")
}

fn generate() -> String {
    let dir = crate_dir();
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    // Parses the sources directly (modules included) rather than through `cargo metadata`, so
    // the check needs neither the registry nor a lock on Cargo.lock.
    let bindings = cbindgen::Builder::new()
        .with_src(dir.join("src/lib.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("UTF-8 header")
}

#[test]
fn committed_header_matches_the_rust_definitions() {
    let generated = generate();
    let path = header_path();
    if std::env::var_os("UMBRA_BLESS_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(generated.lines().count()));
        panic!(
            "{} is out of date with the Rust definitions (first difference at line {}:\n  committed: {:?}\n  generated: {:?}).\n\
             Regenerate it with: UMBRA_BLESS_HEADER=1 cargo test -p umbra-capi --test header",
            path.display(),
            first + 1,
            committed.lines().nth(first).unwrap_or("<end of file>"),
            generated.lines().nth(first).unwrap_or("<end of file>")
        );
    }
}

fn compile(lang: &str, std: &str, file: &Path) {
    let include = crate_dir().join("include");
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-x", lang, std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-I"])
        .arg(&include)
        .arg(file)
        .output()
        .expect("a C compiler (cc) is needed to check the header");
    assert!(
        out.status.success(),
        "the header does not compile as {lang} {std}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn header_compiles_as_c99_and_cpp() {
    let dir = std::env::temp_dir().join(format!("umbra-capi-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("check.c");
    // Uses a few declarations so a header that declares them wrongly fails, not just one that
    // does not parse; the static assertions pin values the documentation promises.
    std::fs::write(
        &file,
        r#"#include <string.h>
#include <umbra/otc.h>
#include <umbra/otc.h> /* the include guard works */
#define CHECK(name, cond) typedef char name[(cond) ? 1 : -1]
CHECK(success_is_zero, OTC_SUCCESS == 0);
CHECK(missing_same_value, (int)OTC_PUBLISHER_ENCRYPTION_SECRET_MISSING == (int)OTC_SESSION_ENCRYPTION_SECRET_MISSING);
CHECK(callbacks_end_with_user_data, sizeof(struct otc_session_callbacks) >= 2 * sizeof(void *));
static void on_frame(otc_subscriber *s, void *u, const otc_video_frame *f) { (void)s; (void)u; (void)otc_video_frame_get_width(f); }
int use_it(void);
int use_it(void) {
    struct otc_subscriber_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.on_render_frame = on_frame;
    (void)cb;
    return otc_init(NULL) + (otc_error_string(OTC_SESSION_INVALID_ENCRYPTION_SECRET) != NULL);
}
"#,
    )
    .unwrap();
    compile("c", "-std=c99", &file);
    compile("c++", "-std=c++11", &file);
    let _ = std::fs::remove_dir_all(&dir);
}
