//! `ticketlab bench`: a filter that matches nothing is refused; the
//! scheduler's round trip is measured. Speeds are not asserted here (they
//! belong in docs/performance.md), only that the figures exist.

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
