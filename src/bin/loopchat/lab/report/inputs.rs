//! Reading the raw results: JSON objects and lines of JSON, looked into by dotted paths,
//! and the `key<TAB>value` facts of a results folder's meta.tsv.
//!
//! The results are read as `serde_json::Value` rather than typed structs: they come from
//! several programs (the load generator, `lab write-floor`, the benchmark scripts, the
//! admin port), and a field that is missing from a result is shown as missing ("—"). A
//! file that is missing or not JSON stops the report with its name: a report drawn from
//! part of its results would not be the one the results give.

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

/// The folders of raw results the report is drawn from.
#[derive(Debug, Clone)]
pub struct Folders {
    /// benches/experiments.sh's: docs/report/results/.
    pub experiments: PathBuf,
    /// benches/compare.sh's: docs/bench/results/.
    pub compare: PathBuf,
    /// benches/scaleout.sh's: docs/bench/scaleout/.
    pub scaleout: PathBuf,
}

impl Folders {
    /// The folders of a repository checked out at `root`.
    pub fn of(root: &Path) -> Folders {
        Folders {
            experiments: root.join("docs/report/results"),
            compare: root.join("docs/bench/results"),
            scaleout: root.join("docs/bench/scaleout"),
        }
    }
}

/// A JSON file, parsed.
pub fn json(path: &Path) -> Result<Value, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

/// A file of one JSON object a line, parsed.
pub fn json_lines(path: &Path) -> Result<Vec<Value>, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| format!("{} line {}: not JSON: {e}", path.display(), i + 1))
        })
        .collect()
}

/// The number at a dotted path (`server.cpu_ns_per_delivery`), if there is one.
pub fn num(value: &Value, path: &str) -> Option<f64> {
    path.split('.')
        .try_fold(value, |v, key| v.get(key))?
        .as_f64()
}

/// The value of `key` in a results folder's meta.tsv (`key<TAB>value` lines).
pub fn meta(folder: &Path, key: &str) -> Option<String> {
    meta_in(&fs::read_to_string(folder.join("meta.tsv")).ok()?, key)
}

/// The value of `key` in the text of a meta.tsv.
pub fn meta_in(tsv: &str, key: &str) -> Option<String> {
    tsv.lines().find_map(|line| {
        let (k, v) = line.split_once('\t')?;
        (k == key).then(|| v.to_owned())
    })
}

/// "commit abc1234 (date)" for a folder's meta.tsv, noting a dirty tree.
pub fn provenance(folder: &Path, shown_as: &str) -> String {
    let commit = meta(folder, "commit").unwrap_or_else(|| "?".into());
    let short: String = commit.chars().take(7).collect();
    let date = meta(folder, "date_utc").unwrap_or_else(|| "?".into());
    let dirty = match meta(folder, "dirty").as_deref() {
        Some("0") => "",
        Some(_) => ", from a tree that differed from it",
        None => "",
    };
    format!("`{shown_as}`, measured at commit {short} on {date}{dirty}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_reach_numbers_and_strings() {
        let v: Value = serde_json::json!({"server": {"cpu": 1.5, "name": "x"}, "n": 3});
        assert_eq!(num(&v, "server.cpu"), Some(1.5));
        assert_eq!(num(&v, "n"), Some(3.0));
        assert_eq!(num(&v, "server.missing"), None);
        assert_eq!(num(&v, "server.name"), None);
    }

    #[test]
    fn meta_finds_a_key() {
        let tsv = "commit\tabcdef0123\ndirty\t0\n";
        assert_eq!(meta_in(tsv, "commit").as_deref(), Some("abcdef0123"));
        assert_eq!(meta_in(tsv, "date"), None);
    }
}
