//! `ticketlab bench`: a filter that matches nothing is refused; the
//! scheduler's round trip is measured. Speeds are not asserted here (they
//! belong in docs/performance.md), only that the figures exist.

use std::path::Path;

use crate::common::*;

#[test]
fn bench_a_filter_that_matches_nothing_is_refused_naming_the_scenarios() {
    let out = ticketlab()
        .args(["bench", "--only", "zzz"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing measured");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--only 'zzz'"), "{stderr}");
    for name in [
        "shm+buy",
        "shm+atomic",
        "file+buy",
        "server",
        "stepped",
        "start",
    ] {
        assert!(stderr.contains(name), "{name} missing: {stderr}");
    }
}

#[test]
fn bench_stepped_measures_the_grant_round_trip() {
    let out = ticketlab()
        .args(["bench", "--only", "stepped", "--rounds", "1", "--json"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = one_json_object(&out.stdout);
    assert_eq!(v["schema_version"], 1, "{v}");
    assert_eq!(v["stepped"]["workers"], 2, "{v}");
    assert!(v["stepped"]["step_ms"].as_f64().unwrap() > 0.0, "{v}");
    // Only the stepped row was asked for.
    assert_eq!(v["throughput"].as_array().map(Vec::len), Some(0), "{v}");
    assert!(v["start"].is_null(), "{v}");
}

#[test]
fn bench_prints_a_header_naming_each_rows_unit() {
    let out = ticketlab()
        .args(["bench", "--only", "stepped", "--rounds", "1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("bench: median of 1 round per row"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("scenario") && lines[1].ends_with("unit"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("stepped") && lines[2].ends_with("µs per step"),
        "{stdout}"
    );
}

/// Whether `tool` runs here; if not, says why the test is skipped.
fn have(tool: &str) -> bool {
    let found = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: {tool} is not installed");
    }
    found
}

/// Runs a reference program and checks its one JSON line: an exact sale
/// (or, for `fork`, a figure).
fn check_anchor(cmd: &mut std::process::Command, mode: &str, tickets: u64) {
    let out = cmd.output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(v["mode"], mode, "{stdout}");
    if mode == "fork" {
        assert!(v["buyers_per_sec"].as_f64().unwrap() > 0.0, "{stdout}");
    } else {
        assert_eq!(v["sold"], tickets, "{stdout}");
        assert_eq!(v["remaining"], 0, "{stdout}");
        assert!(v["purchases_per_sec"].as_f64().unwrap() > 0.0, "{stdout}");
    }
}

#[test]
fn bench_anchors_build_with_one_line_and_sell_exactly_in_every_mode() {
    if !have("cc") || !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let anchors = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/anchors");
    let binary = dir.path().join("anchor");
    // The build line docs/performance.md gives.
    let built = std::process::Command::new("cc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&binary)
        .arg(anchors.join("anchor.c"))
        .status()
        .expect("cc runs");
    assert!(built.success());
    for (mode, tickets) in [
        ("mutex", 2000),
        ("atomic", 2000),
        ("file", 50),
        ("pipe", 200),
        ("fork", 0),
    ] {
        let workers = if mode == "fork" { "3" } else { "2" };
        check_anchor(
            std::process::Command::new(&binary)
                .args([mode, workers, &tickets.to_string()])
                .arg(dir.path()),
            mode,
            tickets,
        );
        check_anchor(
            std::process::Command::new("python3")
                .arg(anchors.join("anchor.py"))
                .args([mode, workers, &tickets.to_string()])
                .arg(dir.path()),
            mode,
            tickets,
        );
    }
    // The file modes remove their store.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("anchor")]);
}

#[test]
fn bench_anchors_run_beside_each_row_and_leave_no_scratch_dir() {
    if !have("cc") || !have("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = ticketlab()
        .args([
            "bench",
            "--only",
            "start",
            "--rounds",
            "1",
            "--anchors",
            "--json",
        ])
        .env("TMPDIR", tmp.path())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let document = one_json_object(&out.stdout);
    assert_eq!(document["anchors"], "bench/anchors", "{document}");
    // Without anchors the C and Python figures are null; with them, none is.
    let start = document["start"].as_object().expect("the start row");
    assert!(start.len() > 3, "{document}");
    for (name, value) in start {
        assert!(!value.is_null(), "{name} is null: {document}");
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
