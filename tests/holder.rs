//! When the holder dies (lab 8): `--crash BUYER:STEP` kills a buyer at
//! a step a student can name, raw_sync's mutex ends the sale with exit 1,
//! and `--lock robust` recovers and sells exact.

use std::time::Duration;

use crate::common::{
    drain_output, eventually, leftovers_of, one_json_object, processes_with, spawn_sale_json,
    ticketlab, wait_or_kill,
};

/// Far beyond what any of these sales needs: only a hang gets near it.
const HANG: Duration = Duration::from_secs(20);

/// Runs a sale to its end as a child process, checks that nothing of it
/// outlives it (no buyer, no segment, no temporary file), and returns its
/// exit code and JSON object.
fn sale_leaving_nothing(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let (mut child, seed) = spawn_sale_json(args);
    let pid = child.id();
    let status = wait_or_kill(&mut child, HANG).unwrap_or_else(|| panic!("the sale {args:?} hung"));
    let (stdout, stderr) = drain_output(&mut child);
    assert!(
        eventually(Duration::from_secs(3), || processes_with(&seed).is_empty()),
        "buyers outlived the sale: {:?}",
        processes_with(&seed)
    );
    assert_eq!(leftovers_of(pid), Vec::<std::path::PathBuf>::new());
    assert!(!stdout.is_empty(), "no JSON; stderr: {stderr}");
    (status.code(), one_json_object(&stdout))
}

#[test]
fn holder_crash_under_raw_sync_ends_the_sale_with_exit_1_and_leaves_nothing() {
    // 3 buyers for 3 tickets: buyer 1 surely reads one and reaches its
    // write, holding the lock.
    let (code, json) =
        sale_leaving_nothing(&["-w", "3", "-t", "3", "--lock", "buy", "--crash", "1:write"]);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["ending"]["buyer"], 0, "{json}");
    assert_eq!(json["per_worker"][0]["end"], "crashed as asked", "{json}");
    assert_eq!(json["crash"], "1:write", "{json}");
}

#[test]
fn holder_summary_says_the_mutex_would_have_hung_and_the_parent_ended_it() {
    let out = ticketlab()
        .args(["sell", "-w", "3", "-t", "3", "--view", "quiet"])
        .args(["--lock", "buy", "--crash", "1:W"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("buyer 1 (pid"), "{text}");
    assert!(text.contains("died holding the lock"), "{text}");
    assert!(text.contains("would hang for ever"), "{text}");
    assert!(text.contains("the parent ended it"), "{text}");
}

#[test]
fn holder_a_crash_away_from_the_lock_is_the_lesson_not_a_failure() {
    // Dying before its search, buyer 1 touches nothing shared: the others
    // sell what they want, and the asked-for death fails nothing.
    let (code, json) = sale_leaving_nothing(&["-w", "3", "-t", "2", "--crash", "1:search"]);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["verdict"], "exact", "{json}");
    assert_eq!(json["sold"], 2, "{json}");
    assert_eq!(json["per_worker"][0]["end"], "crashed as asked", "{json}");
}

/// `ticketlab ARGS` fails with exit 2 and exactly one line on stderr that
/// names --crash and contains `allowed`.
fn refused(args: &[&str], allowed: &str) {
    let out = ticketlab().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--crash"), "{err}");
    assert!(err.contains(allowed), "{allowed:?} in {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn holder_crash_of_a_buyer_the_sale_lacks_is_a_usage_error() {
    refused(&["sell", "-w", "3", "--crash", "4:write"], "the sale has 3");
}

#[test]
fn holder_crash_at_an_unknown_step_is_a_usage_error() {
    refused(
        &["sell", "-w", "3", "--crash", "1:fly"],
        "search, read, lock, write",
    );
    refused(&["sell", "-w", "3", "--crash", "write"], "BUYER:STEP");
}

#[test]
fn holder_crash_at_a_step_this_lock_never_takes_is_a_usage_error() {
    refused(
        &["sell", "-w", "3", "--lock", "buy", "--crash", "1:cas"],
        "allowed: search, lock, read, write, unlock",
    );
}

/// A robust sale's recovery: one, by another buyer, from buyer 1.
fn recovered_from_buyer_1(json: &serde_json::Value) {
    let recoveries = json["recoveries"].as_array().expect("recoveries");
    assert_eq!(recoveries.len(), 1, "{json}");
    assert_eq!(recoveries[0]["from"], 0, "{json}");
    assert_ne!(recoveries[0]["by"], 0, "{json}");
}

#[test]
fn holder_robust_mutex_recovers_from_a_dead_holder_and_sells_exact() {
    // As many tickets as buyers, one each: buyer 1 surely reads one and
    // reaches its write, whoever locks first (a free run's lock is not
    // fair, so with fewer tickets buyer 1 might never get one).
    let (code, json) = sale_leaving_nothing(&[
        "-w", "3", "-t", "3", "--lock", "robust", "--crash", "1:write",
    ]);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["verdict"], "exact", "{json}");
    assert_eq!(json["ending"]["kind"], "completed", "{json}");
    assert_eq!(json["per_worker"][0]["end"], "crashed as asked", "{json}");
    // Its ticket was never bought: it stays on sale.
    assert_eq!(
        (json["sold"].as_u64(), json["remaining"].as_i64()),
        (Some(2), Some(1)),
        "{json}"
    );
    // Recovered only if someone locked after buyer 1 died; in a free run
    // buyer 1 may have been the last (the tests below make sure).
    if !json["recoveries"]
        .as_array()
        .expect("recoveries")
        .is_empty()
    {
        recovered_from_buyer_1(&json);
    }
}

#[test]
fn holder_robust_mutex_sells_every_ticket_after_its_holder_died() {
    // Buyer 1 dies granted its write; then the gate opens and the other
    // three race freely for the 3 tickets.
    let (code, json) = sale_leaving_nothing(&[
        "-w",
        "4",
        "-t",
        "3",
        "--lock",
        "robust",
        "--crash",
        "1:write",
        "--schedule",
        "1S,1L,1R,1W",
        "--then",
        "free",
    ]);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["verdict"], "exact", "{json}");
    assert_eq!(json["sold"], json["tickets"], "{json}");
    assert_eq!(json["remaining"], 0, "{json}");
    recovered_from_buyer_1(&json);
}

#[test]
fn holder_robust_mutex_repairs_the_count_a_holder_died_after_writing() {
    // Dying at its unlock, buyer 1 has written the count and recorded its
    // purchase: the repair keeps both, and every ticket is sold once.
    let (code, json) = sale_leaving_nothing(&[
        "-w",
        "3",
        "-t",
        "3",
        "--lock",
        "robust",
        "--crash",
        "1:unlock",
        "--schedule",
        "1S,1L,1R,1W,1U",
        "--then",
        "free",
    ]);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["verdict"], "exact", "{json}");
    assert_eq!(json["sold"], 3, "{json}");
    assert_eq!(json["per_worker"][0]["bought"], 1, "{json}");
    recovered_from_buyer_1(&json);
}

#[test]
fn holder_robust_mutex_is_free_for_the_next_buyer_under_the_scheduler() {
    // Buyer 1 searches, locks, reads and dies granted its write; the
    // scheduler then grants buyer 2 the lock, which it takes with
    // EOWNERDEAD.
    let (code, json) = sale_leaving_nothing(&[
        "-w",
        "2",
        "-t",
        "1",
        "--lock",
        "robust",
        "--crash",
        "1:write",
        "--schedule",
        "1S,1L,1R,1W",
    ]);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["verdict"], "exact", "{json}");
    assert_eq!(json["sold"], 1, "{json}");
    assert_eq!(json["per_worker"][1]["bought"], 1, "{json}");
    assert_eq!(json["recoveries"][0]["by"], 1, "{json}");
    assert_eq!(json["recoveries"][0]["from"], 0, "{json}");
    assert_eq!(json["recoveries"][0]["count"], 1, "{json}");
}

#[test]
fn holder_raw_sync_mutex_under_the_scheduler_ends_with_exit_1() {
    let (code, json) = sale_leaving_nothing(&[
        "-w",
        "2",
        "-t",
        "1",
        "--lock",
        "buy",
        "--crash",
        "1:write",
        "--schedule",
        "1S,1L,1R,1W",
    ]);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["ending"]["buyer"], 0, "{json}");
}

#[test]
fn holder_robust_lock_refuses_the_file_store_in_one_line() {
    let out = ticketlab()
        .args(["sell", "--store", "file", "--lock", "robust"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--lock robust needs --store shm"), "{err}");
}

#[test]
fn lab08_runs_both_locks_and_exits_as_its_buy_sale() {
    let out = ticketlab()
        .args(["run", "8", "--view", "quiet", "--json"])
        .output()
        .unwrap();
    // The buy sale had to be ended: the comparison goes on past it, and
    // the run exits as that sale did.
    assert_eq!(out.status.code(), Some(1));
    let json = one_json_object(&out.stdout);
    assert_eq!(json["lab"], 8, "{json}");
    let sales = json["sales"].as_array().expect("sales");
    assert_eq!(sales.len(), 2, "{json}");
    assert_eq!(sales[0]["lock"], "buy", "{json}");
    assert_eq!(sales[0]["ending"]["buyer"], 0, "{json}");
    assert_eq!(sales[1]["lock"], "robust", "{json}");
    assert_eq!(sales[1]["verdict"], "exact", "{json}");
    // 5 buyers for 5 tickets: buyer 1 surely reaches its write, and the
    // ticket it never bought stays on sale.
    assert_eq!(sales[1]["sold"], 4, "{json}");
    assert_eq!(sales[1]["remaining"], 1, "{json}");
    assert_eq!(sales[1]["recoveries"][0]["from"], 0, "{json}");
}

#[test]
fn lab08_table_says_stopped_then_exact() {
    let out = ticketlab()
        .args(["run", "8", "--view", "quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("buy ") || l.starts_with("robust "))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[0].ends_with(" stopped"), "{text}");
    assert!(rows[1].ends_with(" exact"), "{text}");
    assert!(text.contains("got EOWNERDEAD"), "{text}");
}

#[test]
fn holder_step_mode_grants_a_dead_robust_holders_lock_to_the_next_buyer() {
    use crate::common::term::TermRun;
    let mut run = TermRun::start(
        &[
            "step", "-w", "2", "-t", "1", "--lock", "robust", "--crash", "1:write", "--seed", "1",
        ],
        80,
        24,
    );
    run.wait_for_screen("every buyer at its first step", |s| {
        s.contains("schedule no steps yet") && !s.contains("moving")
    });
    // Buyer 1: search, lock, read, and the write it dies at.
    let mut shown = String::new();
    for (n, key) in b"1111".iter().enumerate() {
        shown = (0..=n).map(|_| "1").collect::<Vec<_>>().join(",");
        run.press(&[*key]);
        let want = format!("schedule {shown} (");
        run.wait_for_screen(&want, |s| s.contains(&want));
    }
    run.wait_for_screen("buyer 1 shown dead", |s| {
        s.contains("died, as --crash asked")
    });
    // Buyer 2 is not blocked by the dead holder: its lock is granted, and
    // it finishes the sale with its unlock.
    for key in *b"2222" {
        shown.push_str(",2");
        run.wait_for_screen("buyer 2 parked", |s| !s.contains("moving"));
        run.press(&[key]);
        let want = format!("schedule {shown} (");
        run.wait_for_screen(&want, |s| s.contains(&want));
    }
    run.wait_for_screen("buyer 2 at its unlock", |s| {
        s.contains("unlock") && !s.contains("moving")
    });
    run.press(b"2");
    if !eventually(Duration::from_secs(10), || run.has_exited()) {
        run.press(b"a");
    }
    let ended = run.end();
    let printed = ended.printed_after();
    assert_eq!(ended.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains("sold          1 of 1   exact"),
        "{printed}"
    );
    assert!(printed.contains("buyer 2 got EOWNERDEAD"), "{printed}");
    assert_eq!(leftovers_of(ended.pid), Vec::<std::path::PathBuf>::new());
}

#[test]
fn holder_hidden_faults_inside_glibc_refuse_the_robust_mutex() {
    // woken-waiter writes glibc's plain 0/1/2 into the lock word, which in
    // a robust mutex holds the owner's thread id: refused, not corrupted.
    let out = ticketlab()
        .args(["sell", "-w", "3", "--lock", "robust", "--view", "quiet"])
        .env("TICKETLAB_FAULT", "2:woken-waiter")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("with --lock robust use --crash"), "{err}");
}
