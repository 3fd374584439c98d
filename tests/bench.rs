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
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(rows.len(), 1, "{stdout}");
    assert!(rows[0]["scenario"].as_str().unwrap().starts_with("stepped"));
    assert!(rows[0]["ticketlab"].as_f64().unwrap() > 0.0, "{stdout}");
}
