//! A buyer killed at every instant of its lock path: the sale must end with
//! exit 1 instead of hanging, and leave nothing behind. The hidden hook
//! `TICKETLAB_FAULT=BUYER:POINT` makes the buyer SIGKILL itself exactly
//! there, so every window is hit on every run.

use std::process::Stdio;
use std::time::Duration;

use crate::common::{
    eventually, leftovers_of, one_json_object, processes_with, ticketlab_process, unique_seed,
};

/// Far beyond the ~0.1 s the parent needs: only a hang gets near it.
const HANG: Duration = Duration::from_secs(20);

struct Ended {
    code: Option<i32>,
    json: serde_json::Value,
}

/// Runs `sell ARGS --json` with buyer 2 armed to die at `point`.
fn sale_with_fault(point: &str, args: &[&str]) -> Ended {
    sale_with_fault_at(2, point, args)
}

/// Runs `sell ARGS --json` with `buyer` (from 1) armed at `point`.
fn sale_with_fault_at(buyer: usize, point: &str, args: &[&str]) -> Ended {
    let seed = unique_seed().to_string();
    let mut child = ticketlab_process()
        .args(["sell", "--view", "quiet", "--json", "--seed", &seed])
        .args(args)
        .env("TICKETLAB_FAULT", format!("{buyer}:{point}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut status = None;
    let finished = eventually(HANG, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !finished {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("the sale hung after buyer {buyer} met {point}");
    }
    let mut stdout = Vec::new();
    std::io::Read::read_to_end(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(
        eventually(Duration::from_secs(3), || processes_with(&seed).is_empty()),
        "buyers outlived the sale: {:?}",
        processes_with(&seed)
    );
    assert_eq!(leftovers_of(pid), Vec::<std::path::PathBuf>::new());
    Ended {
        code: status.unwrap().code(),
        json: one_json_object(&stdout),
    }
}

/// Buyer 2 dies holding the mutex (in whatever state `point` leaves it)
/// while the others still need it. Under `--lock write` the 10 ms read delay
/// is spent outside the lock, so buyer 2 finds it free at its first write,
/// about 10 ms in, while 100 tickets keep the others writing for 300 ms.
fn dies_holding(point: &str, store: &str) {
    let ended = sale_with_fault(
        point,
        &[
            "-w",
            "3",
            "-t",
            "100",
            "--wants",
            "all",
            "--lock",
            "write",
            "--store",
            store,
            "--read-delay",
            "10ms",
        ],
    );
    assert_eq!(ended.code, Some(1), "{}", ended.json);
    assert_eq!(ended.json["ending"]["buyer"], 1, "{}", ended.json);
}

#[test]
fn faults_a_buyer_dead_right_after_trylock_ends_the_sale() {
    dies_holding("after-trylock", "shm");
}

#[test]
fn faults_a_buyer_dead_right_after_a_spin_acquisition_ends_the_sale() {
    dies_holding("after-spin", "shm");
}

#[test]
fn faults_a_buyer_dead_right_after_sleeping_for_the_lock_ends_the_sale() {
    dies_holding("after-wait", "shm");
}

#[test]
fn faults_a_buyer_dead_inside_pthread_mutex_lock_ends_the_sale() {
    dies_holding("inside-lock", "shm");
}

#[test]
fn faults_a_buyer_dead_holding_the_lock_ends_the_sale() {
    dies_holding("holding", "shm");
}

#[test]
fn faults_a_buyer_dead_before_unlock_ends_the_sale() {
    dies_holding("before-unlock", "shm");
}

#[test]
fn faults_a_buyer_dead_inside_pthread_mutex_unlock_ends_the_sale() {
    dies_holding("inside-unlock", "shm");
}

#[test]
fn faults_the_file_store_survives_a_holder_dead_in_every_window() {
    for point in [
        "after-trylock",
        "after-spin",
        "inside-lock",
        "before-unlock",
        "inside-unlock",
    ] {
        dies_holding(point, "file");
    }
}

/// A waiter woken by an unlock dies before it takes the mutex: its wake-up
/// dies with it, and the sleepers queued behind it would sleep for ever on a
/// free mutex. The parent wakes them all, so the sale completes, and fails
/// for its dead buyer.
#[test]
fn faults_a_woken_waiter_that_dies_strands_nobody() {
    let ended = sale_with_fault(
        "woken-waiter",
        &[
            "-w",
            "8",
            "-t",
            "8",
            "--lock",
            "buy",
            "--read-delay",
            "50ms",
        ],
    );
    assert_eq!(ended.code, Some(1), "{}", ended.json);
    assert_eq!(ended.json["ending"]["kind"], "completed", "{}", ended.json);
    assert_eq!(ended.json["crashed_workers"], 1, "{}", ended.json);
    assert_eq!(
        ended.json["sold"], 7,
        "everyone else bought: {}",
        ended.json
    );
}

#[test]
fn faults_an_unknown_fault_point_is_refused() {
    let out = ticketlab_process()
        .args(["sell", "-w", "2", "--view", "quiet"])
        .env("TICKETLAB_FAULT", "2:nowhere")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TICKETLAB_FAULT"), "{err}");
}

/// Buyer 1 stops the sale (SIGINT to the parent, as Ctrl-C or `q` would)
/// right after its truncate, while the file is empty, and holds there until
/// the stop lets it go on. The stop must let it finish its purchase before
/// ending it: the store ends whole, and its count is the truth, tickets
/// minus every purchase the report counts. Killed at once, the buyer would
/// leave the file empty and the count unknown.
fn stopped_mid_rewrite(lock: &str, buyers: &str, wants: &str) -> serde_json::Value {
    let tickets = 1_000_000;
    let ended = sale_with_fault_at(
        1,
        "stop-mid-rewrite",
        &[
            "-w",
            buyers,
            "-t",
            &tickets.to_string(),
            "--wants",
            wants,
            "--store",
            "file",
            "--lock",
            lock,
            "--read-delay",
            "1ms",
        ],
    );
    let json = ended.json;
    assert_eq!(ended.code, Some(130), "{json}");
    assert_eq!(json["ending"]["kind"], "interrupted", "{json}");
    assert_eq!(json["ending"]["signal"], libc::SIGINT, "{json}");
    assert_eq!(json["store_corrupt"], false, "{json}");
    assert!(
        json["remaining"].is_i64(),
        "the store ended unreadable: {json}"
    );
    assert!(
        json["per_worker"][0]["bought"].as_u64() >= Some(1),
        "buyer 1 finished the purchase it was writing: {json}"
    );
    json
}

#[test]
fn faults_a_sale_stopped_mid_rewrite_keeps_its_store_whole_and_true() {
    // Under task a buyer keeps the lock for all it wants: wanting a few,
    // each leaves it to the next in turn, so buyer 2 writes too.
    for (lock, buyers, wants) in [
        ("buy", "4", "all"),
        ("task", "3", "3"),
        ("write", "1", "all"),
        ("none", "1", "all"),
    ] {
        let json = stopped_mid_rewrite(lock, buyers, wants);
        let sold = json["sold"].as_i64().unwrap();
        assert_eq!(
            json["remaining"].as_i64(),
            Some(1_000_000 - sold),
            "--lock {lock}: {json}"
        );
        assert_eq!(json["verdict"], "stopped", "--lock {lock}: {json}");
    }
}

/// Racing writers may lose updates, but a stop still leaves the file whole:
/// every buyer caught between its truncate and its write finishes it.
#[test]
fn faults_racing_writers_stopped_mid_rewrite_leave_a_readable_store() {
    let json = stopped_mid_rewrite("none", "6", "all");
    assert_ne!(json["verdict"], "oversold", "{json}");
}

/// Buyer 2 stops the sale (SIGTERM) right after its truncate and never
/// goes on. The stop waits for it only a moment, then ends it anyway, and
/// says plainly that the count is gone, rather than hang.
#[test]
fn faults_a_buyer_stuck_mid_rewrite_does_not_hold_up_the_stop() {
    let ended = sale_with_fault(
        "stuck-mid-rewrite",
        &[
            "-w",
            "3",
            "-t",
            "1000000",
            "--wants",
            "all",
            "--store",
            "file",
            "--lock",
            "buy",
            "--read-delay",
            "1ms",
        ],
    );
    let json = ended.json;
    assert_eq!(ended.code, Some(143), "{json}");
    assert_eq!(json["ending"]["kind"], "interrupted", "{json}");
    assert_eq!(json["ending"]["signal"], libc::SIGTERM, "{json}");
    assert_eq!(json["remaining"], serde_json::Value::Null, "{json}");
    assert_eq!(json["store_corrupt"], true, "{json}");
    assert_eq!(json["verdict"], "stopped", "{json}");
}
