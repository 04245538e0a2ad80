//! The files of the event loop import each other without a cycle, so that each can be read
//! (and changed) knowing only the files below it: the leaves (`shared_frame`, `stats`,
//! `timers`, `config`) import nothing from the loop, the application API (`handler`) is
//! imported only by the two files above it (`session`, and `mod`, the turn), and nothing
//! imports `mod.rs` back.
//!
//! The graph is read from the source: an edge `a -> b` for each path `super::b` (or
//! `crate::event_loop::b`) in `a.rs`, outside comments; a path `super::X` where `X` is not
//! a file of the loop names something of `mod.rs` and is an edge to `mod`. Run with
//! `cargo test --test module_graph -- --nocapture` to see the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The files of the loop from the bottom up, as `src/event_loop/mod.rs` and the README list
/// them: a file may import only files of the groups before its own.
const LAYERS: &[&[&str]] = &[
    &[
        "shared_frame",
        "stats",
        "metrics",
        "timers",
        "wire",
        "waker",
        "board",
        "config",
        "links",
    ],
    &["broadcast_log"],
    &["outbound"],
    &["connection"],
    &["slow_consumer"],
    &["connections"],
    &["accept", "keepalive", "shutdown", "admin"],
    &["handler"],
    &["session"],
    &["mod"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("{module}.rs is not in LAYERS: add it where it belongs"))
}

/// The identifiers that follow `prefix` in `code`, as in `prefix{a, b::c}` or `prefixa`.
fn names_after(code: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let first = item.trim().split("::").next().unwrap_or("").trim();
                if !first.is_empty() {
                    names.push(first.to_owned());
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

/// The file-level import graph of `src/event_loop/`.
fn import_graph() -> Graph {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/event_loop");
    let mut sources = BTreeMap::new();
    for entry in fs::read_dir(&dir).expect("src/event_loop") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let module = path.file_stem().unwrap().to_string_lossy().into_owned();
            let code: String = fs::read_to_string(&path)
                .expect("a source file")
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            sources.insert(module, code);
        }
    }
    let files: BTreeSet<String> = sources.keys().cloned().collect();
    let mut graph = Graph::new();
    for (module, code) in &sources {
        let edges = graph.entry(module.clone()).or_default();
        let mut targets = names_after(code, "crate::event_loop::");
        if module == "mod" {
            // The turn imports its children by name: `use accept::Acceptor`, `keepalive::`.
            for child in files.iter().filter(|f| *f != "mod") {
                if code.contains(&format!("{child}::")) {
                    targets.push(child.clone());
                }
            }
        } else {
            for name in names_after(code, "super::") {
                targets.push(if files.contains(&name) {
                    name
                } else {
                    "mod".to_owned()
                });
            }
        }
        for target in targets {
            if files.contains(&target) && target != *module {
                edges.insert(target);
            }
        }
    }
    graph
}

/// A cycle in `graph`, if it has one, as the list of files around it.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn the_event_loop_files_import_each_other_without_a_cycle() {
    let graph = import_graph();
    println!("src/event_loop/: file -> the files it imports");
    for (module, edges) in &graph {
        let edges: Vec<&str> = edges.iter().map(String::as_str).collect();
        println!("  {module}.rs -> {}", edges.join(", "));
    }
    assert!(
        graph.len() >= 10,
        "the loop's files were not found: {graph:?}"
    );
    assert!(
        graph["mod"].contains("handler") && graph["session"].contains("handler"),
        "the reader found no imports at all: {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("an import cycle: {}", cycle.join(" -> "));
    }
    for (module, edges) in &graph {
        for target in edges {
            assert!(
                layer_of(target) < layer_of(module),
                "{module}.rs imports {target}.rs, which is not below it in LAYERS"
            );
        }
    }
    let importers: Vec<&String> = graph
        .iter()
        .filter(|(_, edges)| edges.contains("handler"))
        .map(|(module, _)| module)
        .collect();
    assert_eq!(
        importers,
        ["mod", "session"],
        "the application API sits on top"
    );
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph = Graph::new();
        for (from, to) in edges {
            graph
                .entry(from.to_string())
                .or_default()
                .insert(to.to_string());
            graph.entry(to.to_string()).or_default();
        }
        graph
    };
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    let cycle = find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])).unwrap();
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
    assert_eq!(
        names_after("use super::{a::X, b};\nsuper::c::f();", "super::"),
        ["a", "b", "c"]
    );
}
