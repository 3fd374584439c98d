//! The parent as the scheduler: a schedule fixes the interleaving of real
//! buyer processes, whatever the machine is doing; a recorded run replays;
//! impossible schedules are refused in one line; pause holds every write.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::common::term::TermRun;
use crate::common::*;

/// What must come out the same every time a schedule is replayed.
fn fingerprint(json: &serde_json::Value) -> String {
    format!(
        "schedule {} sold {} remaining {} lost {} named {}",
        json["schedule"], json["sold"], json["remaining"], json["lost_updates"], json["lost"]
    )
}

/// Two processes that keep both cores busy while they live.
struct Load(Vec<Child>);

impl Load {
    fn both_cores() -> Load {
        Load(
            (0..2)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .expect("sh")
                })
                .collect(),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn scheduler_the_same_schedule_gives_the_same_outcome_twenty_times_under_load() {
    let _load = Load::both_cores();
    let args = [
        "-w",
        "3",
        "-t",
        "1",
        "--lock",
        "none",
        "--store",
        "file",
        "--schedule",
        "1,1,2,2,3,2,2,1,3,1",
        "--view",
        "quiet",
    ];
    let first = fingerprint(&sale_json(&args));
    assert!(first.contains("sold 2"), "the schedule oversells: {first}");
    for run in 2..=20 {
        assert_eq!(fingerprint(&sale_json(&args)), first, "run {run}");
    }
}

#[test]
fn scheduler_a_recorded_free_run_replays_to_the_same_counts_and_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("race.schedule");
    let file_arg = file.to_str().unwrap();
    // A free run: every buyer reads the one ticket before anyone writes.
    let mut args: Vec<&str> = EVERYONE_READS_FIRST.to_vec();
    args.extend([
        "--lock",
        "none",
        "--view",
        "quiet",
        "--save-schedule",
        file_arg,
    ]);
    let recorded = sale_json(&args);
    assert_eq!(recorded["oversold"], 9, "{recorded}");
    let saved = std::fs::read_to_string(&file).unwrap();
    // The file's first line is the command that replays it: the whole sale.
    let command = saved.lines().next().unwrap();
    assert_eq!(
        command,
        format!(
            "# ticketlab sell -w 10 -t 1 --lock none --read-delay 1s --schedule-file {file_arg}"
        )
    );
    // Replayed under the scheduler, by that very command: the same values,
    // the same overwrites.
    let mut replay: Vec<&str> = command.split_whitespace().skip(3).collect();
    replay.extend(["--view", "quiet"]);
    let replayed = sale_json(&replay);
    assert_eq!(
        replayed["replay_diverged"],
        serde_json::Value::Null,
        "{replayed}"
    );
    assert_eq!(fingerprint(&replayed), fingerprint(&recorded));
}

#[test]
fn scheduler_a_recorded_free_run_replays_under_every_lock_and_store() {
    // The lock step must be recorded where the buyer took the lock, after
    // the previous holder's unlock, or the replay is refused. A free run's
    // steps are ordered by the clock, so they are drawn far apart: seed 4
    // gives the three buyers read delays at least 69 ms apart.
    let dir = tempfile::tempdir().unwrap();
    for store in ["shm", "file", "server", "queue"] {
        for lock in ["none", "write", "buy", "task", "join", "atomic"] {
            // Only shared memory has a compare-and-swap; the seller needs
            // no lock.
            let seller = store == "server" || store == "queue";
            if (seller && lock != "none") || (store == "file" && lock == "atomic") {
                continue;
            }
            let file = dir.path().join(format!("{store}-{lock}.schedule"));
            let file_arg = file.to_str().unwrap();
            let settings = [
                "-w",
                "3",
                "-t",
                "2",
                "--store",
                store,
                "--lock",
                lock,
                "--read-delay",
                "200ms",
                "--jitter",
                "--seed",
                "4",
                "--view",
                "quiet",
            ];
            let recorded = sale_json(&[&settings[..], &["--save-schedule", file_arg]].concat());
            let replayed = sale_json(&[&settings[..], &["--schedule-file", file_arg]].concat());
            assert_eq!(
                replayed["replay_diverged"],
                serde_json::Value::Null,
                "{store}/{lock}: {replayed}"
            );
            assert_eq!(
                fingerprint(&replayed),
                fingerprint(&recorded),
                "{store}/{lock}"
            );
        }
    }
}

#[test]
fn scheduler_a_replay_that_differs_says_at_which_step() {
    let out = sale_json(&[
        "-w",
        "2",
        "-t",
        "1",
        "--lock",
        "none",
        "--view",
        "quiet",
        "--schedule",
        "1S=1,1R=1,2S=1,2R=0",
    ]);
    assert_eq!(
        out["replay_diverged"], "step 4: buyer 2 read 1, the recording says 0",
        "{out}"
    );
}

/// Runs `sell ARGS` that must fail with exit 2 and one line on stderr.
fn refused(args: &[&str]) -> String {
    let out = ticketlab().arg("sell").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}");
    stderr
}

#[test]
fn scheduler_impossible_schedules_are_refused_in_one_line() {
    let base = ["-w", "2", "-t", "1", "--view", "quiet"];
    let with = |lock: &str, schedule: &str| {
        let mut a = base.to_vec();
        a.extend(["--lock", lock, "--schedule", schedule]);
        refused(
            &a.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
    };
    assert!(with("none", "1S,1R,2S,2W").contains("step 4: buyer 2's next step is read, not write"));
    assert!(with("buy", "1,1,2,2").contains("step 4: buyer 2 waits for the lock held by buyer 1"));
    assert!(with("none", "1,1,1,1").contains("step 4: buyer 1 has finished"));
    // Steps named after the whole sale is over are refused too, not dropped.
    assert!(
        with("none", "1,1,1,2,2,2,1")
            .contains("step 6: buyer 2 has finished, and so has every buyer")
    );
    assert!(with("none", "3").contains("buyer 3"));
    assert!(with("none", "1,x").contains("'x'"));
    assert!(with("none", "1Z").contains("not a step"));
    assert!(with("none", "99999999999999999999").contains("far too large"));
    assert!(with("none", "0").contains("start at 1"));
    assert!(refused(&["--then", "free"]).contains("--then"));
    assert!(refused(&["--schedule-file", "/nonexistent/schedule"]).contains("--schedule-file"));
}

#[test]
fn scheduler_every_store_and_lock_takes_a_schedule() {
    for (store, lock) in [
        ("shm", "none"),
        ("shm", "write"),
        ("shm", "buy"),
        ("shm", "task"),
        ("shm", "join"),
        ("shm", "atomic"),
        ("file", "none"),
        ("file", "buy"),
        ("server", "none"),
        ("queue", "none"),
    ] {
        let out = sale_json(&[
            "-w",
            "3",
            "-t",
            "2",
            "--store",
            store,
            "--lock",
            lock,
            "--schedule",
            "1",
            "--view",
            "quiet",
        ]);
        let schedule = out["schedule"].as_str().unwrap_or_default().to_string();
        assert!(schedule.starts_with('1'), "{store}/{lock}: {out}");
        assert_eq!(out["sold"], 2, "{store}/{lock}: {out}");
    }
}

#[test]
fn scheduler_pause_holds_every_write_and_is_left_out_of_elapsed_time() {
    let seed = unique_seed().to_string();
    let mut run = TermRun::start(
        &[
            "sell",
            "-w",
            "4",
            "-t",
            "4",
            "--lock",
            "buy",
            "--read-delay",
            "300ms",
            "--seed",
            &seed,
        ],
        80,
        24,
    );
    run.wait_for_screen("the first sale", |s| s.contains("sold 1 / 4"));
    run.press(b"p");
    run.wait_for_screen("paused", |s| s.to_lowercase().contains("paused"));
    // Let anything in flight land, then watch: nothing may move.
    std::thread::sleep(Duration::from_millis(400));
    let held = run.screen();
    let sold_line = |s: &str| {
        s.lines()
            .find(|l| l.contains("sold "))
            .map(str::to_string)
            .unwrap_or_default()
    };
    let paused_at = Instant::now();
    std::thread::sleep(Duration::from_millis(2600));
    assert_eq!(
        sold_line(&run.screen()),
        sold_line(&held),
        "a write landed while paused"
    );
    run.press(b"p");
    let paused_for = paused_at.elapsed() + Duration::from_millis(400);
    let ended = run.end();
    let text = ended.printed_after();
    let elapsed_ms: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("elapsed"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no elapsed line:\n{text}"));
    // Four purchases of 300 ms each under the lock take about 1.2 s; the
    // pause alone was longer than that, so counted in, it would show.
    assert!(
        elapsed_ms < paused_for.as_secs_f64() * 1000.0,
        "elapsed {elapsed_ms} ms includes the {paused_for:?} pause:\n{text}"
    );
    // And the pause stopped the delays' clock too: a read delay that ran
    // out during the pause would be missing from the elapsed time. The four
    // 300 ms delays under the lock are the least the sale can take.
    assert!(
        elapsed_ms >= 1200.0,
        "elapsed {elapsed_ms} ms is less than the four 300 ms delays:\n{text}"
    );
    assert!(text.contains("sold          4 of 4"), "{text}");
    // Nor is the pause lock wait: two buyers waited through it, so counted
    // in it would add twice the pause; the waits themselves are about
    // 1.8 s (300, 600 and 900 ms).
    let lock_wait_ms: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("lock wait"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lock wait line:\n{text}"));
    assert!(
        lock_wait_ms < 2.0 * paused_for.as_secs_f64() * 1000.0,
        "lock wait {lock_wait_ms} ms includes the {paused_for:?} pause:\n{text}"
    );
}

#[test]
fn scheduler_a_small_free_run_under_a_lock_gives_back_its_interleaving() {
    // No --trace, no --save-schedule: a small sale records all the same.
    for lock in ["buy", "atomic"] {
        let out = sale_json(&["-w", "2", "-t", "1", "--lock", lock, "--view", "quiet"]);
        let schedule = out["schedule"].as_str().unwrap_or_default();
        assert!(
            schedule.contains("1S") && schedule.contains("2S"),
            "{lock}: {out}"
        );
    }
    let out = ticketlab()
        .args(["sell", "-w", "2", "-t", "1", "--view", "quiet"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("interleaving  repeat with --schedule "),
        "{stdout}"
    );
}
