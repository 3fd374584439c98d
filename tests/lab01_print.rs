//! `ticketlab print`: forked workers share one output; the mutex keeps each
//! begin/end pair together.

use std::collections::HashMap;

use crate::common::{command_json, ticketlab};

/// Runs `ticketlab print ARGS --json` and parses its one JSON object.
fn print_json(args: &[&str]) -> serde_json::Value {
    command_json("print", args)
}

#[test]
fn lab01_unlocked_pairs_split() {
    // Without the lock, other workers' lines land between a begin and its end.
    let v = print_json(&["--workers", "3", "--lock", "none"]);
    assert_eq!(v["pairs"], 3, "{v}");
    // The workers meet after their begins, so at most one pair survives.
    assert!(v["split_pairs"].as_u64().unwrap() >= 2, "{v}");
}

#[test]
fn lab01_locked_pairs_stay_whole() {
    // With the mutex around each pair, no pair is ever split.
    for seed in ["1", "2", "3"] {
        let v = print_json(&["--workers", "3", "--lock", "pair", "--seed", seed]);
        assert_eq!(v["pairs"], 3, "{v}");
        assert_eq!(v["split_pairs"], 0, "{v}");
    }
}

#[test]
fn lab01_many_workers_split_unlocked_and_not_locked() {
    // Sixteen workers: unlocked nearly every pair splits, locked none does.
    let none = print_json(&["--workers", "16", "--lines", "5", "--lock", "none"]);
    assert!(none["split_pairs"].as_u64().unwrap() >= 15, "{none}");
    let pair = print_json(&["--workers", "16", "--lines", "5", "--lock", "pair"]);
    assert_eq!(
        (pair["split_pairs"].as_u64(), pair["pairs"].as_u64()),
        (Some(0), Some(16)),
        "{pair}"
    );
}

#[test]
fn lab01_one_worker_has_nobody_to_interleave_with() {
    // A lone worker can neither interleave nor be split.
    let v = print_json(&["--workers", "1", "--lines", "50"]);
    assert_eq!(v["interleaved_lines"], 0, "{v}");
    assert_eq!(v["split_pairs"], 0, "{v}");
    assert_eq!(v["pairs"], 1, "{v}");
}

#[test]
fn lab01_json_echoes_the_settings() {
    // The object names the run, then the counts, and nothing else.
    let v = print_json(&[
        "--workers",
        "2",
        "--lines",
        "7",
        "--lock",
        "pair",
        "--seed",
        "42",
    ]);
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "elapsed_ms",
            "interleaved_lines",
            "lines",
            "lock",
            "pairs",
            "schema_version",
            "seed",
            "split_pairs",
            "workers"
        ]
    );
    assert_eq!(v["workers"], 2, "{v}");
    assert_eq!(v["lines"], 7, "{v}");
    assert_eq!(v["lock"], "pair", "{v}");
    assert_eq!(v["seed"], 42, "{v}");
}

#[test]
fn lab01_every_line_arrives_whole_and_in_order() {
    // 4 workers × 300 lines: each line intact, each worker's lines in order.
    let out = ticketlab()
        .args([
            "print",
            "--workers",
            "4",
            "--lines",
            "300",
            "--lock",
            "none",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut next_line: HashMap<usize, usize> = HashMap::new();
    let mut pairs: HashMap<usize, (usize, usize)> = HashMap::new();
    for line in stdout.lines().filter(|l| l.starts_with("worker ")) {
        let words: Vec<&str> = line.split(' ').collect();
        let worker: usize = words[1]
            .parse()
            .unwrap_or_else(|_| panic!("torn line {line:?}"));
        match words[2..] {
            ["line", k] => {
                let expected = next_line.entry(worker).or_insert(1);
                assert_eq!(k.parse::<usize>().ok(), Some(*expected), "{line:?}");
                *expected += 1;
            }
            ["begin"] => pairs.entry(worker).or_default().0 += 1,
            ["end"] => pairs.entry(worker).or_default().1 += 1,
            _ => panic!("torn line {line:?}"),
        }
    }
    assert_eq!(next_line.len(), 4);
    assert!(next_line.values().all(|&n| n == 301), "{next_line:?}");
    assert!(
        pairs.values().all(|&p| p == (1, 1)) && pairs.len() == 4,
        "{pairs:?}"
    );
    assert!(stdout.contains("interleaved lines: "), "{stdout}");
    assert!(stdout.contains("split pairs: "), "{stdout}");
    assert!(stdout.contains(" of 4\n"), "{stdout}");
}

#[test]
fn lab01_out_of_range_workers_are_refused() {
    // Zero workers, or more than 64, is an error before anything is forked.
    for workers in ["0", "65"] {
        ticketlab()
            .args(["print", "--workers", workers])
            .assert()
            .code(2);
    }
}

#[test]
fn lab01_the_summary_and_the_json_give_the_elapsed_time() {
    let v = print_json(&["--workers", "2", "--lines", "3", "--lock", "pair"]);
    // A figure, not a timing check: it is there and it is a time.
    assert!(v["elapsed_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{v}");
    for view in [&[][..], &["--view", "quiet"]] {
        let out = ticketlab()
            .args(["print", "--workers", "2", "--lines", "3"])
            .args(view)
            .output()
            .expect("runs");
        assert!(out.status.success());
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("elapsed: ") && l.ends_with(" ms")),
            "{stdout}"
        );
    }
}

#[test]
fn lab01_a_lock_around_everything_runs_the_workers_one_after_another() {
    let out = ticketlab()
        .args(["print", "--workers", "4", "--lines", "5", "--lock", "all"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    // Each worker's 5 lines, begin and end come out as one block of 7.
    let writers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("worker "))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(writers.len(), 4 * 7, "{stdout}");
    for block in writers.chunks(7) {
        assert!(block.iter().all(|w| *w == block[0]), "{stdout}");
    }
    let v = print_json(&["--workers", "4", "--lines", "5", "--lock", "all"]);
    assert_eq!(v["lock"], "all", "{v}");
    // Only the three hand-overs from one worker to the next interleave.
    assert_eq!(v["interleaved_lines"], 3, "{v}");
    assert_eq!(
        (v["split_pairs"].as_u64(), v["pairs"].as_u64()),
        (Some(0), Some(4)),
        "{v}"
    );
}
