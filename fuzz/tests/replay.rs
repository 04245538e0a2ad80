//! Replays every saved input through the fuzz targets' checks, on stable Rust and without
//! libFuzzer: the seeds and whatever libFuzzer has added under `corpus/<target>/`, and any
//! crash it left under `artifacts/<target>/`.
//!
//! ```sh
//! cargo test --manifest-path fuzz/Cargo.toml
//! ```
//!
//! This is the fallback where no nightly toolchain is at hand, and the way to keep a fixed
//! crash as a regression: copy it into `corpus/<target>/` as `seed-regression-NAME`.

use loopchat::ws::Role;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 7] = [
    ("http_request_head", loopchat_fuzz::check_request_head),
    ("ws_server_decoder", |data| {
        loopchat_fuzz::check_websocket_decoder(Role::Server, data)
    }),
    ("ws_client_decoder", |data| {
        loopchat_fuzz::check_websocket_decoder(Role::Client, data)
    }),
    (
        "client_handshake_response",
        loopchat_fuzz::check_handshake_response,
    ),
    ("line_reader", loopchat_fuzz::check_line_reader),
    ("redis_link", loopchat_fuzz::check_redis_link),
    ("redis_url", loopchat_fuzz::check_redis_url),
];

#[test]
fn every_saved_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    for (target, check) in TARGETS {
        let mut count = 0;
        for dir in ["corpus", "artifacts"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                if !path.is_file() || path.file_name().is_some_and(|n| n == ".gitignore") {
                    continue;
                }
                let data = std::fs::read(&path).expect("an input file");
                count += 1;
                if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                    failures.push(path.display().to_string());
                }
            }
        }
        eprintln!("{target}: {count} inputs");
        assert!(
            count > 0,
            "no inputs for {target}: run the seed_corpus example"
        );
    }
    assert!(failures.is_empty(), "failing inputs: {failures:#?}");
}
