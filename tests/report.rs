//! docs/REPORT.md and its figures (and docs/SCALING.md's model of workers on more cores)
//! are what `loopchat lab report` draws from the raw results in the repository: nothing in a generated table or plot is typed by hand, and
//! a change to the drawing code or the results that is not regenerated fails here. And
//! `loopchat lab write-floor`, the report's measurement of the floor, run for real.

use std::process::Command;

fn loopchat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loopchat"))
}

#[test]
fn the_committed_report_is_what_its_raw_results_give() {
    let output = loopchat()
        .args([
            "lab",
            "report",
            "--check",
            "--root",
            env!("CARGO_MANIFEST_DIR"),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_check_notices_a_figure_edited_by_hand() {
    // A copy of the report's inputs and outputs, with one figure changed.
    let root = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [
        "docs/report",
        "docs/report/results",
        "docs/bench/results",
        "docs/bench/scaleout",
    ] {
        let to = root.path().join(dir);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(repo.join(dir)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }
    for document in ["docs/REPORT.md", "docs/SCALING.md"] {
        std::fs::copy(repo.join(document), root.path().join(document)).unwrap();
    }
    let check = || {
        loopchat()
            .args(["lab", "report", "--check", "--root"])
            .arg(root.path())
            .output()
            .unwrap()
    };
    assert!(check().status.success());

    let svg = root.path().join("docs/report/corking.svg");
    let drawn = std::fs::read_to_string(&svg).unwrap();
    std::fs::write(&svg, drawn.replace("loopchat server", "edited")).unwrap();
    let output = check();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("corking.svg"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Without --check the report is drawn again, and then it checks.
    let redraw = loopchat()
        .args(["lab", "report", "--root"])
        .arg(root.path())
        .output()
        .unwrap();
    assert!(redraw.status.success());
    assert!(check().status.success());
    assert_eq!(std::fs::read_to_string(&svg).unwrap(), drawn);
}

#[test]
fn write_floor_measures_every_frame_it_writes() {
    let output = loopchat()
        .args([
            "lab",
            "write-floor",
            "--frames-per-write",
            "1,16",
            "--connections",
            "3",
            "--duration",
            "0.2",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["frame_bytes"], 66);
    let points = report["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for (point, k) in points.iter().zip([1, 16]) {
        assert_eq!(point["frames_per_write"], k);
        let frames = point["frames"].as_u64().unwrap();
        assert!(frames >= k, "{point}");
        assert_eq!(
            point["bytes_read"].as_u64().unwrap(),
            frames * 66,
            "{point}"
        );
        assert_eq!(point["write_bytes"].as_u64().unwrap(), k * 66, "{point}");
    }
}
