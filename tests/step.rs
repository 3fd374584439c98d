//! Step mode: `ticketlab step`, a person at the keys as the scheduler, on a
//! real (pseudo-)terminal; and the same schedule without one.

use std::time::Duration;

use crate::common::term::{PATIENCE, TermEnded, TermRun};
use crate::common::*;

/// The size a student's terminal most often has.
const COLS: u16 = 80;
const ROWS: u16 = 24;

/// `ticketlab step ARGS` on an 80 × 24 terminal, once every buyer shows
/// at its gate and no step is taken yet.
fn step_run(args: &[&str]) -> TermRun {
    let mut all = vec!["step"];
    all.extend(args);
    let run = TermRun::start(&all, COLS, ROWS);
    run.wait_for_screen("every buyer at its first step", |s| {
        s.contains("Challenge:")
            && s.contains("schedule no steps yet")
            && s.contains("search")
            && !s.contains("moving")
    });
    run
}

/// Presses `key` (a buyer's number) and waits until the schedule line shows
/// it as the newest step: the parent granted it and drew the result.
fn step(run: &mut TermRun, schedule: &mut Vec<u8>, key: u8) {
    schedule.push(key);
    let shown = format!("schedule {} (", schedule_text(schedule));
    run.press(&[key]);
    run.wait_for_screen(&format!("{shown:?}"), |s| s.contains(&shown));
}

fn schedule_text(keys: &[u8]) -> String {
    keys.iter()
        .map(|&k| char::from(k).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The buyers (children) of a running sale: found while it runs, so the
/// test can check afterwards that none outlived it.
fn buyers_of(run: &TermRun, workers: usize) -> Vec<i32> {
    let parent = run.pid() as i32;
    let mut kids = Vec::new();
    let found = eventually(PATIENCE, || {
        kids = children_of(parent);
        kids.len() >= workers
    });
    assert!(found, "expected {workers} buyers, found {kids:?}");
    kids
}

/// No segment or temporary file of the run is left, and none of its
/// buyers lives on.
fn assert_nothing_left(ended: &TermEnded, buyers: &[i32]) {
    assert_eq!(leftovers_of(ended.pid), Vec::<std::path::PathBuf>::new());
    let alive = || -> Vec<i32> {
        buyers
            .iter()
            .copied()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    s.rsplit_once(") ")
                        .is_some_and(|(_, r)| !r.starts_with('Z'))
                })
            })
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(10), || alive().is_empty()),
        "buyers left running: {:?}",
        alive()
    );
}

#[test]
fn step_mode_keys_make_two_buyers_oversell() {
    let mut run = step_run(&["-w", "2", "-t", "1", "--lock", "none", "--seed", "1"]);
    let buyers = buyers_of(&run, 2);
    let screen = run.screen();
    for want in [
        "Challenge: sell more than 1 ticket",
        "search",
        "count 1",
        "1-9 step",
    ] {
        assert!(screen.contains(want), "{want:?} missing:\n{screen}");
    }
    let mut schedule = Vec::new();
    // Buyer 1 searches and reads the one ticket; so does buyer 2, which
    // then writes 0 and has bought it.
    for key in *b"11222" {
        step(&mut run, &mut schedule, key);
    }
    // The schedule shows a step once it is granted; the count, once the
    // buyer has taken it.
    run.wait_for_screen("the count buyer 2 wrote", |s| {
        s.contains("count 0") && s.contains("saw 1") && s.contains("bought 1")
    });
    // Buyer 1 writes 0 over it. That finishes the last buyer, so the run
    // ends by itself; the final frame, with the banner, is printed on the
    // normal screen. Were a buyer left with steps, `a` lets them run.
    run.press(b"1");
    if !eventually(Duration::from_secs(10), || run.has_exited()) {
        run.press(b"a");
    }
    let ended = run.end();
    let printed = ended.printed_after();
    assert_eq!(ended.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains("Oversold! schedule: 1,1,2,2,2,1"),
        "no banner in the final frame:\n{printed}"
    );
    assert!(
        printed.contains("schedule 1,1,2,2,2,1 (6 steps)"),
        "{printed}"
    );
    assert!(printed.contains("OVERSOLD by 1"), "{printed}");
    assert!(printed.contains("sold          2 of 1"), "{printed}");
    ended.assert_terminal_restored();
    assert_nothing_left(&ended, &buyers);
}

#[test]
fn step_mode_says_who_holds_the_lock_and_q_quits() {
    let mut run = step_run(&["-w", "2", "-t", "1", "--lock", "buy", "--seed", "1"]);
    let buyers = buyers_of(&run, 2);
    let mut schedule = Vec::new();
    // Buyer 1 searches and takes the lock; buyer 2 searches.
    for key in *b"112" {
        step(&mut run, &mut schedule, key);
    }
    run.wait_for_screen("buyer 1 as the lock holder", |s| {
        s.contains("lock held by buyer 1") && s.contains("holds the lock")
    });
    // Buyer 2's next step is the lock, which buyer 1 holds: the key is
    // refused with a reason, and the schedule does not grow.
    run.press(b"2");
    run.wait_for_screen("why buyer 2 cannot move", |s| {
        s.contains("buyer 2 waits for the lock held by buyer 1")
    });
    let screen = run.screen();
    assert!(screen.contains("schedule 1,1,2 (3 steps)"), "{screen}");
    run.press(b"q");
    let ended = run.end();
    assert_eq!(ended.status.code(), Some(130), "{}", ended.printed_after());
    // The screen the person left.
    let screen = ended.screen();
    assert!(screen.contains("lock held by buyer 1"), "{screen}");
    ended.assert_terminal_restored();
    assert_nothing_left(&ended, &buyers);
}

#[test]
fn step_mode_under_serializable_shows_the_refused_commit_and_the_retry() {
    let mut run = step_run(&[
        "--store",
        "sqlite",
        "--lock",
        "serializable",
        "-w",
        "2",
        "-t",
        "1",
        "--seed",
        "1",
    ]);
    let buyers = buyers_of(&run, 2);
    let mut schedule = Vec::new();
    // Both search and read the one ticket; buyer 1 writes first.
    for key in *b"11221" {
        step(&mut run, &mut schedule, key);
    }
    // No lock was taken up front: buyer 2's write waits for buyer 1's
    // commit, and the panel says so, not "lock".
    run.wait_for_screen("buyer 2 waiting for buyer 1's commit", |s| {
        s.contains("<waiting>") && s.contains("has not committed") && s.contains("commit")
    });
    run.press(b"2");
    run.wait_for_screen("why buyer 2 cannot move", |s| {
        s.contains("» buyer 2 <waiting>")
    });
    let screen = run.screen();
    assert!(!screen.contains("holds the lock"), "{screen}");
    assert!(!screen.contains("releases the lock"), "{screen}");
    // Buyer 1 commits; buyer 2's write is refused: it starts again.
    for key in *b"12" {
        step(&mut run, &mut schedule, key);
    }
    run.wait_for_screen("the refusal and the retry", |s| {
        s.contains("read again (the database refused its transaction: 1 retry)")
            && s.contains("retries 1")
    });
    run.press(b"a");
    let ended = run.end();
    let printed = ended.printed_after();
    assert_eq!(ended.status.code(), Some(0), "{printed}");
    assert!(printed.contains("sold          1 of 1"), "{printed}");
    ended.assert_terminal_restored();
    assert_nothing_left(&ended, &buyers);
}

#[test]
fn step_mode_without_a_terminal_needs_a_schedule() {
    // `sell --step` is the same command.
    for argv in [&["step", "-w", "2"][..], &["sell", "--step", "-w", "2"]] {
        let out = ticketlab().args(argv).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{argv:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{argv:?}: {stderr}");
        assert!(stderr.contains("--schedule"), "{argv:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{argv:?}: {:?}", out.stdout);
    }
}

#[test]
fn step_mode_sell_step_takes_steps_defaults_and_follows_a_schedule() {
    let json = command_json(
        "sell",
        &["--step", "--schedule", "1,1,2,2,2,1", "--view", "quiet"],
    );
    assert_eq!(json["workers"], 2, "step's own defaults: {json}");
    assert_eq!(json["oversold"], 1, "{json}");
}

#[test]
fn step_mode_without_a_terminal_follows_its_schedule() {
    let json = command_json("step", &["--schedule", "1,1,2,2,2,1", "--view", "quiet"]);
    assert_eq!(json["oversold"], 1, "{json}");
    assert_eq!(json["sold"], 2, "{json}");
    assert_eq!(json["verdict"], "oversold", "{json}");
}
