//! A program that embeds loopchat as a library, with default features off, builds none of
//! the `loopchat` program's dependencies: not the command line's (clap, env_logger), nor
//! the load generator's (hdrhistogram, plotters, rlimit, core_affinity). The dependency tree is read
//! with `cargo tree`; `scripts/test` also builds the examples that way
//! (`cargo build --no-default-features --examples`), which proves the library compiles
//! without them.

use std::collections::BTreeSet;
use std::process::Command;

/// The packages in the library's normal dependency tree under `features`.
fn dependency_tree(features: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--locked", "--offline", "--edges", "normal"])
        .args(["--prefix", "none", "--format", "{p}"])
        .args(features)
        .output()
        .expect("run cargo tree");
    assert!(output.status.success(), "cargo tree failed: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

const PROGRAM_ONLY: [&str; 6] = [
    "clap",
    "core_affinity",
    "env_logger",
    "hdrhistogram",
    "plotters",
    "rlimit",
];

#[test]
fn the_library_alone_has_none_of_the_programs_dependencies() {
    let lean = dependency_tree(&["--no-default-features"]);
    for core in ["loopchat", "mio", "slab", "httparse", "sha1", "base64"] {
        assert!(lean.contains(core), "{core} missing from {lean:?}");
    }
    for heavy in PROGRAM_ONLY {
        assert!(
            !lean.contains(heavy),
            "{heavy} in the library's tree: {lean:?}"
        );
    }

    // The same reading of the default build finds them: the check can fail.
    let full = dependency_tree(&[]);
    for heavy in PROGRAM_ONLY {
        assert!(full.contains(heavy), "{heavy} missing from {full:?}");
    }
}
