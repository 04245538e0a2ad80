//! `loopchat lab report`: docs/REPORT.md's figures and tables, drawn from raw results
//! (and docs/SCALING.md's model of workers on more cores, computed from them).
//!
//! docs/REPORT.md is written by a person, except between pairs of markers,
//! `<!-- report:NAME:begin -->` and `<!-- report:NAME:end -->`, whose contents this
//! command replaces with the section NAME's figure and table ([`sections`]); a section
//! may belong to another document under docs/ instead. The figures are written to
//! docs/report/NAME.svg. With `--check` nothing is written, and the files
//! that would change are named: a test runs that, so the committed report is always what
//! the committed raw results give.

pub mod charts;
pub mod inputs;
pub mod sections;

use std::fs;
use std::path::Path;

/// Regenerates the report under `root`. Returns the files that changed (with `check`,
/// that would change; nothing is written then).
pub fn write(root: &Path, check: bool) -> Result<Vec<String>, String> {
    let folders = inputs::Folders::of(root);
    let sections = sections::all(&folders)?;
    let mut outputs = Vec::new();
    let mut documents: Vec<&str> = sections.iter().map(|s| s.document).collect();
    documents.dedup();
    for document in documents {
        let path = root.join(document);
        let mut text = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for section in sections.iter().filter(|s| s.document == document) {
            text = replace_block(&text, section.name, &section.markdown)
                .map_err(|e| format!("{document}: {e}"))?;
        }
        outputs.push((path, text));
    }
    let mut changed = Vec::new();
    for section in &sections {
        for (file, svg) in &section.figures {
            outputs.push((root.join("docs/report").join(file), svg.clone()));
        }
    }
    for (path, text) in outputs {
        if fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        changed.push(path.display().to_string());
        if !check {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(changed)
}

/// `document` with what lies between the markers of block `name` replaced by `body`.
pub fn replace_block(document: &str, name: &str, body: &str) -> Result<String, String> {
    let begin = format!("<!-- report:{name}:begin -->");
    let end = format!("<!-- report:{name}:end -->");
    let start = document.find(&begin).ok_or_else(|| format!("no {begin}"))? + begin.len();
    let stop = document[start..]
        .find(&end)
        .ok_or_else(|| format!("no {end} after {begin}"))?
        + start;
    Ok(format!(
        "{}\n{}\n{}",
        &document[..start],
        body.trim_end(),
        &document[stop..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_replaced_and_the_rest_kept() {
        let doc = "intro\n<!-- report:a:begin -->\nold\n<!-- report:a:end -->\nafter\n";
        let new = replace_block(doc, "a", "new table\n").unwrap();
        assert_eq!(
            new,
            "intro\n<!-- report:a:begin -->\nnew table\n<!-- report:a:end -->\nafter\n"
        );
        // Replacing again gives the same text: regeneration is stable.
        assert_eq!(replace_block(&new, "a", "new table\n").unwrap(), new);
        assert!(replace_block(doc, "b", "x").is_err());
    }
}
