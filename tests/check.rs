//! `ticketlab check N`: predictions graded against the lab's own run, and
//! the progress it records. Every lab is run shrunk, and only predictions
//! whose outcome is fixed by construction are asserted (an exact lock, a
//! race forced by a long read delay, a count of schedules), never a time.

use std::path::Path;

use crate::common::{one_json_object, ticketlab};

/// One lab's check: the flags that shrink its run, answers that are right
/// on that run, answers that are wrong on it, and the ids whose grade the
/// run fixes.
struct Case {
    lab: &'static str,
    flags: &'static [&'static str],
    right: &'static str,
    wrong: &'static str,
    fixed: &'static [&'static str],
}

/// A race is certain when every buyer's read delay dwarfs the time the
/// buyers need to start (see `common::EVERYONE_READS_FIRST`).
const CASES: &[Case] = &[
    Case {
        lab: "1",
        flags: &["--lines", "2"],
        // Under --lock pair no pair splits, and three workers always hand
        // the terminal over at least twice.
        right: "pair-split = 0\ninterleaved-zero = no\n",
        wrong: "pair-split = 3\ninterleaved-zero = yes\n",
        fixed: &["pair-split", "interleaved-zero"],
    },
    Case {
        lab: "2",
        flags: &[
            "--workers",
            "10",
            "--read-delay",
            "1s",
            "--write-delay",
            "0",
        ],
        right: "bought = 10\nremaining = 0\nlost = 9\ntime = long\n",
        wrong: "bought = 1\nremaining = negative\nlost = 0\ntime = short\n",
        fixed: &["bought", "remaining", "lost", "time"],
    },
    Case {
        lab: "3",
        flags: &[
            "--workers",
            "10",
            "--read-delay",
            "1ms",
            "--write-delay",
            "1ms",
        ],
        right: "sold = 5\nlost = 0\nfailed = 5\nlock-wait = larger\n",
        wrong: "sold = 10\nlost = 5\nfailed = 0\nlock-wait = smaller\n",
        fixed: &["sold", "lost", "failed"],
    },
    Case {
        lab: "4",
        flags: &[
            "--workers",
            "2",
            "--tickets",
            "1",
            "--read-delay",
            "1s",
            "--write-delay",
            "0",
        ],
        right: "exact = join, task, buy\nnone-sold = 2\nnone-remaining = 0\nwrite-better = no\n",
        wrong: "exact = none\nnone-sold = 9\nnone-remaining = 5\nwrite-better = yes\n",
        fixed: &["exact", "none-sold", "none-remaining", "write-better"],
    },
    Case {
        lab: "11",
        // check 11 runs --daemon: the parent's main code ends at 0.1 s, and
        // the daemon child with it, long before its last line at 0.3 s.
        flags: &["--parent-runs", "0.1s", "--child-runs", "0.3s"],
        right: "last-line = no\nchild-lines = 1\n",
        wrong: "last-line = yes\nchild-lines = 9\n",
        fixed: &["last-line", "child-lines"],
    },
    Case {
        lab: "5",
        flags: &["--tickets", "300"],
        right: "both-exact = yes\nshm-torn = 0\nfirst = shm\n",
        wrong: "both-exact = no\nshm-torn = 5\nfirst = file\n",
        fixed: &["both-exact", "shm-torn"],
    },
    Case {
        lab: "6",
        flags: &[
            "--workers",
            "10",
            "--read-delay",
            "1ms",
            "--write-delay",
            "1ms",
        ],
        right: "sold = 5\nlost = 0\nlock-wait = 0\nlast-twice = no\n",
        wrong: "sold = 10\nlost = 3\nlock-wait = 100\nlast-twice = yes\n",
        fixed: &["sold", "lost", "lock-wait", "last-twice"],
    },
    Case {
        lab: "7",
        flags: &[
            "--workers",
            "10",
            "--read-delay",
            "1ms",
            "--write-delay",
            "1ms",
        ],
        right: "sold = 5\nlost = 0\nlock-wait = 0\n",
        wrong: "sold = 10\nlost = 3\nlock-wait = 100\n",
        fixed: &["sold", "lost", "lock-wait"],
    },
    Case {
        lab: "8",
        flags: &[],
        right: "buy-ends = stopped\nbuy-twice = no\nrobust-sold = 4\nrobust-verdict = exact\n",
        wrong: "buy-ends = hang\nbuy-twice = yes\nrobust-sold = 5\nrobust-verdict = oversold\n",
        fixed: &["buy-ends", "buy-twice", "robust-sold", "robust-verdict"],
    },
    Case {
        lab: "9",
        flags: &[],
        right: "serial-steps = 5\nserial-sold = 1\n",
        wrong: "serial-steps = 6\nserial-sold = 2\n",
        fixed: &["serial-steps", "serial-sold"],
    },
    Case {
        lab: "10",
        flags: &[],
        right: "none-share = most\nwrite-more = more\nbuy-oversold = 0\nnone-shortest = 6\n",
        wrong: "none-share = none\nwrite-more = fewer\nbuy-oversold = 4\nnone-shortest = 3\n",
        fixed: &["none-share", "write-more", "buy-oversold", "none-shortest"],
    },
    Case {
        lab: "12",
        // Fixed delays: every buyer of a round reads before anyone writes,
        // so none oversells and serializable's writers overtake each other.
        flags: &[
            "--workers",
            "10",
            "--read-delay",
            "200ms",
            "--write-delay",
            "0",
            "--no-jitter",
        ],
        right: "none-verdict = oversold\nexact = buy, atomic, serializable\nretries = yes\n",
        wrong: "none-verdict = exact\nexact = none\nretries = no\n",
        fixed: &["none-verdict", "exact", "retries"],
    },
];

/// Runs `check LAB --answers-file F --json FLAGS` with its state in
/// `state`, and returns its one JSON object.
fn check_json(state: &Path, lab: &str, answers: &str, flags: &[&str]) -> serde_json::Value {
    let file = state.join(format!("answers-{lab}-{}.txt", answers.len()));
    std::fs::write(&file, answers).unwrap();
    let out = ticketlab()
        .env("XDG_STATE_HOME", state)
        .args(["check", lab, "--answers-file"])
        .arg(&file)
        .arg("--json")
        .args(flags)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "check {lab}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    one_json_object(&out.stdout)
}

/// The grade of prediction `id` in a check's JSON.
fn grade_of(json: &serde_json::Value, id: &str) -> serde_json::Value {
    json["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no prediction {id}: {json}"))["correct"]
        .clone()
}

fn check_grades(case: &Case, answers: &str, correct: bool) {
    let state = tempfile::tempdir().unwrap();
    let json = check_json(state.path(), case.lab, answers, case.flags);
    assert_eq!(json["lab"].as_u64().unwrap().to_string(), case.lab);
    for id in case.fixed {
        assert_eq!(
            grade_of(&json, id),
            correct,
            "lab {} `{id}`: {json}",
            case.lab
        );
    }
    for p in json["predictions"].as_array().unwrap() {
        for key in ["question", "predicted", "actual", "explain"] {
            assert!(!p[key].is_null(), "{key} in {p}");
        }
    }
    let score = &json["score"];
    assert_eq!(
        score["total"],
        json["predictions"].as_array().unwrap().len()
    );
}

#[test]
fn check_grades_right_answers_right_in_every_lab() {
    // One lab at a time: a burst of ten sales at once would load the
    // machine for the timing-sensitive tests that run beside these.
    for case in CASES {
        check_grades(case, case.right, true);
    }
}

#[test]
fn check_grades_wrong_answers_wrong_in_every_lab() {
    // One lab at a time: a burst of ten sales at once would load the
    // machine for the timing-sensitive tests that run beside these.
    for case in CASES {
        check_grades(case, case.wrong, false);
    }
}

#[test]
fn check_prints_one_line_per_prediction_pointing_wrong_ones_at_explain() {
    let state = tempfile::tempdir().unwrap();
    let out = ticketlab()
        .env("XDG_STATE_HOME", state.path())
        .args(["check", "9"])
        .write_stdin("5\n2\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "✓ serial-steps: you predicted 5; this run: 5",
            "✗ serial-sold: you predicted 2; this run: 1 — see Explain 1",
            "score: 1 of 2 right; why: ticketlab lab 9 --explain",
        ],
        "{stdout}"
    );
    // The questions were asked on stderr, with the command that ran.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("How many steps is that?"), "{stderr}");
    assert!(stderr.contains("$ ticketlab step"), "{stderr}");
}

#[test]
fn check_records_progress_and_labs_ticks_the_lab() {
    let state = tempfile::tempdir().unwrap();
    let labs = || {
        let out = ticketlab()
            .env("XDG_STATE_HOME", state.path())
            .arg("labs")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    // The rows, not the footer that explains the mark.
    let ticked = |listed: &str| -> Vec<String> {
        listed
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.contains('✓'))
            .map(String::from)
            .collect()
    };
    assert!(ticked(&labs()).is_empty(), "{}", labs());
    let ten = CASES.iter().find(|c| c.lab == "10").expect("lab 10's case");
    check_json(state.path(), "10", ten.right, &[]);
    let listed = labs();
    let ticked = ticked(&listed);
    assert_eq!(ticked.len(), 1, "{listed}");
    assert!(ticked[0].starts_with("10  ✓"), "{listed}");
    for line in listed.lines() {
        assert!(line.chars().count() <= 80, "{line}");
    }
    let progress = state.path().join("ticketlab/progress.json");
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&progress).unwrap()).unwrap();
    assert_eq!(kept["labs"]["10"]["correct"], 4, "{kept}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&progress).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// A usage error: exit 2, nothing on stdout, one line on stderr.
fn refused(state: &Path, args: &[&str], stdin: &str) -> String {
    let out = ticketlab()
        .env("XDG_STATE_HOME", state)
        .args(args)
        .write_stdin(stdin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty(), "{args:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last = stderr.lines().last().unwrap_or("").to_string();
    assert!(last.starts_with("ticketlab: error: "), "{stderr}");
    last
}

#[test]
fn check_refuses_a_missing_answer_naming_it_and_runs_nothing() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("answers.txt");
    std::fs::write(
        &file,
        "# lab 3\nsold = 5\nfailed = 95\nlock-wait = larger\n",
    )
    .unwrap();
    let out = ticketlab()
        .env("XDG_STATE_HOME", state.path())
        .args(["check", "3", "--answers-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no answer for `lost`"), "{stderr}");
    // Nothing ran, so nothing was recorded.
    assert!(!state.path().join("ticketlab").exists());
}

#[test]
fn check_refuses_an_unknown_lab_a_bad_answer_and_an_unanswered_prompt() {
    let state = tempfile::tempdir().unwrap();
    let line = refused(state.path(), &["check", "99"], "");
    assert!(line.contains("1 to 12") && line.contains("race"), "{line}");
    let line = refused(state.path(), &["check", "2"], "many\n");
    assert!(line.contains("`bought`: expected a number"), "{line}");
    let line = refused(state.path(), &["check", "9"], "5\n");
    assert!(line.contains("no answer for `serial-sold`"), "{line}");
    assert!(!state.path().join("ticketlab").exists());
}

#[test]
fn check_passes_on_a_refused_run_and_records_nothing() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("answers.txt");
    std::fs::write(&file, CASES[6].right).unwrap();
    let file = file.to_str().unwrap();
    // Lab 6's server store takes no lock: the run itself refuses.
    let line = refused(
        state.path(),
        &["check", "6", "--answers-file", file, "--lock", "buy"],
        "",
    );
    assert!(line.contains("takes no lock"), "{line}");
    assert!(!state.path().join("ticketlab").exists());
}

#[test]
fn check_refuses_a_bad_flag_of_the_run_before_asking_anything() {
    let state = tempfile::tempdir().unwrap();
    // The answers a student would type: none is asked for.
    let out = ticketlab()
        .env("XDG_STATE_HOME", state.path())
        .args(["check", "2", "-w", "-1"])
        .write_stdin("1\n0\n0\nshort\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("'--workers <N>'") && stderr.contains("from 1 to 1000"),
        "{stderr}"
    );
    assert!(!state.path().join("ticketlab").exists());
}
