//! Verdicts and exit codes on broken runs: tickets that vanish from a
//! shared `--db`, counts at the ends of `i64`, buyers that meet an error or
//! give up on a corrupt store, and a correct sale stopped half-way.
//!
//! Each sale has a single buyer and a trillion tickets, so it runs until
//! the test breaks its store: no outcome depends on how fast either is.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

/// Far beyond what any of these sales needs once its store is broken
/// (a buyer gives up after 2 s of garbage): only a hang gets near it.
const HANG: Duration = Duration::from_secs(30);

/// A trillion tickets: the buyer never runs out by itself.
const FOREVER: &str = "1000000000000";

/// How a sale ended.
struct Ended {
    code: Option<i32>,
    json: Value,
    stderr: String,
}

/// A one-buyer file sale on `db` that buys until the store says none are
/// left, which only a broken store will.
fn endless_file_sale(db: &Path) -> (Child, String) {
    endless_file_sale_of(1, db)
}

/// The same with `workers` buyers taking turns under the lock.
fn endless_file_sale_of(workers: usize, db: &Path) -> (Child, String) {
    spawn_sale_json(&[
        "--workers",
        &workers.to_string(),
        "--tickets",
        FOREVER,
        "--wants",
        "all",
        "--store",
        "file",
        "--lock",
        "buy",
        "--db",
        db.to_str().unwrap(),
    ])
}

/// A fresh `--db` path in its own directory.
fn db_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.json");
    (dir, db)
}

/// Waits until the buyer has bought at least once: the file holds a
/// count below the trillion the sale started with.
fn wait_for_a_purchase(db: &Path, child: &mut Child) {
    let bought = eventually(HANG, || {
        assert!(child.try_wait().unwrap().is_none(), "the sale ended early");
        std::fs::read_to_string(db)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["count"].as_i64())
            .is_some_and(|n| n < 1_000_000_000_000)
    });
    assert!(bought, "the buyer never bought");
}

/// Does `tamper` to the store again and again until the sale ends, then
/// checks that it left nothing behind.
fn tamper_until_the_end(mut child: Child, seed: &str, mut tamper: impl FnMut()) -> Ended {
    let pid = child.id();
    let mut status = None;
    let ended = eventually(HANG, || {
        tamper();
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !ended {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the sale did not end once its store was broken");
    }
    let (stdout, stderr) = drain_output(&mut child);
    assert!(
        eventually(Duration::from_secs(3), || processes_with(seed).is_empty()),
        "buyers outlived the sale: {:?}",
        processes_with(seed)
    );
    assert_eq!(leftovers_of(pid), Vec::<PathBuf>::new());
    Ended {
        code: status.unwrap().code(),
        json: one_json_object(&stdout),
        stderr,
    }
}

/// Puts `{"count": N}` in place of the store in one atomic step (a rename),
/// so neither the buyer nor the parent ever reads it half-written.
fn plant_count(db: &Path, count: &str) {
    let planted = db.with_extension("planted");
    std::fs::write(&planted, format!("{{\"count\": {count}}}")).unwrap();
    std::fs::rename(&planted, db).unwrap();
}

/// Plants `count` until the buyer reads it and finds the tickets gone.
fn sale_with_planted_count(count: &str) -> Ended {
    let (_dir, db) = db_path();
    let (mut child, seed) = endless_file_sale(&db);
    wait_for_a_purchase(&db, &mut child);
    tamper_until_the_end(child, &seed, || plant_count(&db, count))
}

fn end_of_buyer(json: &Value, buyer: usize) -> &str {
    json["per_worker"][buyer]["end"].as_str().unwrap()
}

/// A shared `--db` with `{"count":-5}` planted: the count fell by
/// more than was sold. That printed "lost -978" and "exact"; now the lost
/// updates are 0, the tickets that vanished are counted, and the verdict is
/// a wrong count. The sale itself ran: exit 0.
#[test]
fn verdicts_tickets_that_vanish_from_a_shared_db_are_a_wrong_count() {
    let ended = sale_with_planted_count("-5");
    let v = &ended.json;
    assert_eq!(ended.code, Some(0), "{v}\n{}", ended.stderr);
    assert_eq!(v["ending"]["kind"], "completed", "{v}");
    assert_eq!(v["remaining"], -5, "{v}");
    assert_eq!(v["lost_updates"], 0, "{v}");
    let sold = v["sold"].as_i64().unwrap();
    assert_eq!(
        v["vanished"].as_i64(),
        Some(1_000_000_000_000 + 5 - sold),
        "{v}"
    );
    assert_eq!(v["verdict"], "count wrong", "{v}");
    assert_eq!(v["store_corrupt"], false, "{v}");
}

/// `{"count": -9223372036854775808}` once printed "lost updates
/// 9223372036854774847": `tickets - remaining` wrapped. The figure that
/// vanished is past `i64` and saturates; nothing wraps, nothing panics.
#[test]
fn verdicts_the_most_negative_count_neither_wraps_nor_panics() {
    let ended = sale_with_planted_count("-9223372036854775808");
    let v = &ended.json;
    assert_eq!(ended.code, Some(0), "{v}\n{}", ended.stderr);
    assert_eq!(v["remaining"], i64::MIN, "{v}");
    assert_eq!(v["lost_updates"], 0, "{v}");
    assert_eq!(v["vanished"], i64::MAX, "{v}");
    assert_eq!(v["verdict"], "count wrong", "{v}");
    assert!(!v.to_string().contains("9223372036854774847"), "{v}");
}

/// A store that vanished under the buyer: its next open fails, it ends with
/// an I/O error, and the run fails (exit 1), as the README promises.
#[test]
fn verdicts_a_buyer_that_meets_an_io_error_fails_the_run() {
    let (_dir, db) = db_path();
    let (mut child, seed) = endless_file_sale(&db);
    wait_for_a_purchase(&db, &mut child);
    // The buyer opens the file afresh for every read and write, and a
    // store that is gone is not created again.
    let ended = tamper_until_the_end(child, &seed, || {
        let _ = std::fs::remove_file(&db);
    });
    let v = &ended.json;
    assert_eq!(ended.code, Some(1), "{v}\n{}", ended.stderr);
    assert_eq!(end_of_buyer(v, 0), "error", "{v}");
    assert!(
        ended.stderr.contains("buyer 1: store file"),
        "{}",
        ended.stderr
    );
    assert_eq!(v["store_corrupt"], true, "{v}");
    assert_eq!(v["verdict"], "count wrong", "{v}");
}

/// Garbage written over the store again and again: the buyer's own writes
/// heal it at first, but as soon as it reads garbage it only reads (nobody
/// else writes a count). The parent sees the store stay unreadable with no
/// purchase made and ends the sale; should the parent be starved of the CPU
/// that long, the buyer gives up on its own after its 2 s of patience.
/// Either way a store left corrupt is a failed run: exit 1, a wrong count.
#[test]
fn verdicts_a_buyer_that_gives_up_on_a_corrupt_store_fails_the_run() {
    let (_dir, db) = db_path();
    let (mut child, seed) = endless_file_sale(&db);
    wait_for_a_purchase(&db, &mut child);
    let ended = tamper_until_the_end(child, &seed, || {
        // In place, not renamed: the same file the buyer rewrites.
        let _ = std::fs::write(&db, "garbage, not a ticket store");
    });
    let v = &ended.json;
    assert_eq!(ended.code, Some(1), "{v}\n{}", ended.stderr);
    assert!(["gave up", "ended"].contains(&end_of_buyer(v, 0)), "{v}");
    assert_eq!(v["store_corrupt"], true, "{v}");
    assert!(v["remaining"].is_null(), "{v}");
    assert_eq!(v["verdict"], "count wrong", "{v}");
}

/// Ctrl-C in the middle of a locked sale. Each buyer the parent kills may
/// have written its purchase without counting it, so a few tickets can be
/// gone from the count; that is the stop, not a wrong count, and the lost
/// updates are never negative. Exit 130.
#[test]
fn verdicts_an_interrupted_correct_sale_is_stopped() {
    let (mut child, seed) = spawn_sale_json(&[
        "--workers",
        "4",
        "--tickets",
        FOREVER,
        "--wants",
        "all",
        "--lock",
        "buy",
    ]);
    let pid = child.id();
    // Signalled once its buyers exist, so the sale is under way.
    assert!(
        eventually(HANG, || children_of(pid as i32).len() >= 4),
        "the buyers never started"
    );
    signal(pid as i32, libc::SIGINT);
    let status = wait_or_kill(&mut child, HANG).expect("the sale stops");
    let (stdout, stderr) = drain_output(&mut child);
    let v = one_json_object(&stdout);
    assert_eq!(status.code(), Some(130), "{v}\n{stderr}");
    assert_eq!(v["ending"]["signal"], libc::SIGINT, "{v}");
    assert_eq!(v["verdict"], "stopped", "{v}");
    assert_eq!(v["lost_updates"], 0, "{v}");
    assert!(v["vanished"].as_u64().unwrap() <= 4, "{v}");
    assert_eq!(v["oversold"], 0, "{v}");
    assert!(
        eventually(Duration::from_secs(3), || processes_with(&seed).is_empty()),
        "buyers outlived the sale"
    );
    assert_eq!(leftovers_of(pid), Vec::<PathBuf>::new());
}

/// The summary line says the verdict in words a person reads: a racy sale
/// that oversold says so, and never "exact".
#[test]
fn verdicts_the_summary_names_an_oversold_sale() {
    let mut args = vec!["sell"];
    args.extend(EVERYONE_READS_FIRST);
    args.extend(["--lock", "none", "--view", "quiet"]);
    let out = ticketlab().args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let sold = text
        .lines()
        .find(|l| l.trim_start().starts_with("sold "))
        .unwrap_or_else(|| panic!("no sold line:\n{text}"));
    assert!(sold.ends_with("10 of 1   OVERSOLD by 9"), "{text}");
}

/// A busy file sale: eight buyers rewrite the store so often that the
/// parent's looks find it mid-rewrite most of the time. That is not a
/// corrupt store: purchases go on, and the sale runs to its end.
#[test]
fn verdicts_a_store_caught_mid_rewrite_again_and_again_is_not_corrupt() {
    let v = sale_json(&[
        "--workers",
        "8",
        "--tickets",
        "20000",
        "--wants",
        "all",
        "--store",
        "file",
        "--lock",
        "buy",
        "--view",
        "quiet",
    ]);
    assert_eq!(v["ending"]["kind"], "completed", "{v}");
    assert_eq!(v["verdict"], "exact", "{v}");
}

/// Under the lock each buyer would give up on a corrupt store in turn, two
/// seconds each; the parent sees the store stay unreadable and ends the
/// sale itself.
#[test]
fn verdicts_the_parent_ends_a_sale_whose_store_stays_corrupt() {
    let (_dir, db) = db_path();
    let (mut child, seed) = endless_file_sale_of(4, &db);
    wait_for_a_purchase(&db, &mut child);
    let ended = tamper_until_the_end(child, &seed, || {
        let _ = std::fs::write(&db, "garbage, not a ticket store");
    });
    let v = &ended.json;
    assert_eq!(ended.code, Some(1), "{v}\n{}", ended.stderr);
    assert_eq!(v["ending"]["kind"], "store_corrupt", "{v}");
    let gave_up = (0..4).filter(|&b| end_of_buyer(v, b) == "gave up").count();
    assert!(
        gave_up < 4,
        "the buyers did not all wait their turn to give up: {v}"
    );
}

/// `run 5` (the file store against memory, under the lock) stopped with
/// Ctrl-C during its first sale: the summary, the table's row and the JSON
/// say "stopped", never a wrong count, and no lost update is negative.
#[test]
fn verdicts_an_interrupted_correct_sale_is_stopped_in_summary_table_and_json() {
    for json in [false, true] {
        let mut command = ticketlab_process();
        command.args(["run", "5", "--tickets", FOREVER]);
        command.args(if json {
            ["--json"].as_slice()
        } else {
            ["--view", "quiet"].as_slice()
        });
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let pid = child.id() as i32;
        assert!(
            eventually(HANG, || children_of(pid).len() >= 8),
            "the buyers never started"
        );
        signal(pid, libc::SIGINT);
        wait_or_kill(&mut child, HANG).expect("the run stops");
        let (stdout, stderr) = drain_output(&mut child);
        let text = String::from_utf8_lossy(&stdout);
        if json {
            let v = one_json_object(&stdout);
            let sale = &v["sales"][0];
            assert_eq!(sale["verdict"], "stopped", "{v}\n{stderr}");
            assert!(
                sale["lost_updates"].is_null() || sale["lost_updates"].as_u64().is_some(),
                "{v}"
            );
            continue;
        }
        assert!(
            text.contains("  sold ") && text.contains("   stopped"),
            "{text}\n{stderr}"
        );
        assert!(
            !text.contains("WRONG") && !text.contains("count wrong"),
            "{text}"
        );
        assert!(!text.contains("lost updates  -"), "{text}");
        let row: Vec<&str> = text
            .lines()
            .find(|l| l.starts_with("file "))
            .unwrap_or_else(|| panic!("no table row for the file store:\n{text}"))
            .split_whitespace()
            .collect();
        // file, sold, remaining, oversold, lost, torn, elapsed, ms, rate, verdict
        assert_eq!(row.last(), Some(&"stopped"), "{text}");
        assert!(
            row[4] == "?" || row[4].parse::<u64>().is_ok(),
            "lost {}: {text}",
            row[4]
        );
    }
}

/// A file-store sale watched in plain lines: once a count has parsed, no
/// line shows `?`; a read that catches the file mid-rewrite shows the last
/// count that parsed, marked "(last read)".
#[test]
fn the_file_store_count_never_turns_back_into_a_question_mark() {
    let out = ticketlab()
        .args([
            "sell", "-w", "8", "-t", "5000", "--wants", "all", "--store", "file", "--lock", "buy",
            "--view", "plain",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let counts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('['))
        .filter_map(|l| l.split("remaining ").nth(1))
        .collect();
    assert!(!counts.is_empty(), "no progress line:\n{stdout}");
    let first = counts
        .iter()
        .position(|c| !c.starts_with('?'))
        .unwrap_or(counts.len());
    assert!(
        counts[first..].iter().all(|c| !c.starts_with('?')),
        "{stdout}"
    );
}
