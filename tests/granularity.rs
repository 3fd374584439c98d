//! Lock granularity (lab 4). The search delay (the work outside the
//! lock), the single-process baseline, and every figure a lab's Predict
//! question asks about appearing in the run's own summary.

use crate::common::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `ticketlab ARGS`, which must succeed, and returns its stdout.
fn stdout_of(args: &[&str]) -> String {
    let out = ticketlab().args(args).output().expect("runs");
    assert!(
        out.status.success(),
        "ticketlab {args:?} exited {:?}\n{}\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn lab04_the_search_delay_is_drawn_once_per_buyer_and_reported() {
    let v = sale_json(&[
        "-w",
        "3",
        "-t",
        "1",
        "--lock",
        "buy",
        "--search-delay",
        "30ms",
        "--seed",
        "5",
        "--view",
        "quiet",
    ]);
    assert_eq!(v["search_delay_ms"], 30.0, "{v}");
    // Fixed delays: each buyer waited out its one search, and nothing else.
    for w in v["per_worker"].as_array().unwrap() {
        assert_eq!(w["drawn_delay_ms"], 30.0, "{v}");
    }
    let out = stdout_of(&[
        "sell",
        "-w",
        "2",
        "-t",
        "1",
        "--search-delay",
        "1ms",
        "--read-delay",
        "2ms",
        "--view",
        "quiet",
    ]);
    assert!(
        out.contains("  delays        search 1ms, read 2ms, write 0"),
        "{out}"
    );
}

#[test]
fn lab04_a_jittered_search_delay_draws_the_same_under_every_lock() {
    let drawn = |lock: &str| -> Vec<f64> {
        let v = sale_json(&[
            "-w",
            "4",
            "-t",
            "2",
            "--lock",
            lock,
            "--search-delay",
            "10ms",
            "--read-delay",
            "1ms",
            "--jitter",
            "--seed",
            "77",
            "--view",
            "quiet",
        ]);
        v["per_worker"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["drawn_delay_ms"].as_f64().unwrap())
            .collect()
    };
    let buy = drawn("buy");
    assert_eq!(buy, drawn("task"), "the buyer's own seeded RNG draws them");
    assert!(buy.iter().all(|&d| d <= 10.0 + 3.0), "{buy:?}");
}

#[test]
fn lab04_one_process_runs_every_buyer_in_turn_with_the_same_delays() {
    let args = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut a = vec![
            "-w",
            "4",
            "-t",
            "2",
            "--store",
            "file",
            "--search-delay",
            "2ms",
            "--read-delay",
            "1ms",
            "--write-delay",
            "1ms",
            "--jitter",
            "--seed",
            "31",
            "--view",
            "quiet",
        ];
        a.extend_from_slice(extra);
        a
    };
    let single = sale_json(&args(&["--one-process"]));
    assert_eq!(single["one_process"], true, "{single}");
    assert_eq!(single["lock"], "none", "no lock needed: {single}");
    assert_eq!(single["verdict"], "exact", "{single}");
    assert_eq!(
        single["per_worker"].as_array().unwrap().len(),
        4,
        "{single}"
    );
    let drawn = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v["per_worker"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["drawn_delay_ms"].clone())
            .collect()
    };
    let task = sale_json(&args(&["--lock", "task"]));
    assert_eq!(task["one_process"], false, "{task}");
    assert_eq!(drawn(&single), drawn(&task), "the buyers' own draws");
    let summary = stdout_of(&[&["sell"][..], &args(&["--one-process"])].concat());
    assert!(
        summary.contains("sale: 4 buyers in one process,"),
        "{summary}"
    );
}

#[test]
fn lab04_one_process_takes_no_lock() {
    let out = ticketlab()
        .args(["sell", "--one-process", "--lock", "buy", "-w", "2"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--one-process takes no lock"), "{stderr}");
}

/// Five buyers read the one ticket, and 300 ms later all five swap: one
/// wins, four lose. The delay dwarfs the start, so every read comes first.
const SWAPS_RACE: &[&str] = &[
    "-w",
    "5",
    "-t",
    "1",
    "--lock",
    "atomic",
    "--read-delay",
    "300ms",
];

#[test]
fn lab07_failed_swaps_are_counted_in_the_summary_and_the_json() {
    let v = sale_json(&[SWAPS_RACE, &["--view", "quiet"]].concat());
    assert_eq!(v["verdict"], "exact", "{v}");
    assert_eq!(v["failed_swaps"], 4, "{v}");
    let per: u64 = v["per_worker"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["failed_swaps"].as_u64().unwrap())
        .sum();
    assert_eq!(per, 4, "{v}");
    let out = stdout_of(&[&["sell"][..], SWAPS_RACE, &["--view", "quiet"]].concat());
    assert!(out.contains("  failed swaps  4\n"), "{out}");
    // A mutex has no swaps to fail: the line is not there.
    let out = stdout_of(&[
        "sell", "-w", "2", "-t", "1", "--lock", "buy", "--view", "quiet",
    ]);
    assert!(!out.contains("failed swaps"), "{out}");
}

#[test]
fn lab07_the_live_view_shows_failed_swaps_beside_the_lock() {
    let run = term::TermRun::start(&[&["sell"][..], SWAPS_RACE].concat(), 80, 24);
    run.wait_for_screen("four lost swaps", |s| {
        s.lines()
            .any(|l| l.contains("lock: free") && l.contains("failed swaps 4"))
    });
    let ended = run.end();
    assert_eq!(ended.status.code(), Some(0), "{}", ended.printed_after());
}

#[test]
fn lab05_the_summary_shows_how_the_tickets_were_shared() {
    let args = [
        "-w", "4", "-t", "2000", "--wants", "all", "--lock", "buy", "--seed", "3", "--view",
        "quiet",
    ];
    let v = sale_json(&args);
    let bought: Vec<u64> = v["per_worker"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["bought"].as_u64().unwrap())
        .collect();
    let (min, max) = (*bought.iter().min().unwrap(), *bought.iter().max().unwrap());
    assert_eq!(v["per_buyer"]["min"], min, "{v}");
    assert_eq!(v["per_buyer"]["max"], max, "{v}");
    let out = stdout_of(&[&["sell"][..], &args].concat());
    assert!(out.contains("  per buyer     min "), "{out}");
    let out = stdout_of(&[
        "sell", "-w", "3", "-t", "6", "--wants", "2", "--view", "quiet",
    ]);
    assert!(out.contains("  per buyer     min 2, max 2\n"), "{out}");
    // One ticket each: nothing to share out.
    let out = stdout_of(&["sell", "-w", "3", "-t", "6", "--view", "quiet"]);
    assert!(!out.contains("per buyer"), "{out}");
}
