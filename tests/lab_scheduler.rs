//! Labs 9 and 10, the scheduler labs: `run 9` is step mode with the lab's
//! preset, `run 10` explores none, write and buy; what their sheets promise
//! is what the tool does, and neither sheet answers its own questions
//! before the student has run the lab.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::common::term::{TermRun, strip_escapes};
use crate::common::*;

const LAB09: &str = include_str!("../labs/09-scheduler.md");
const LAB10: &str = include_str!("../labs/10-interleavings.md");

/// Runs `ticketlab ARGS` to the end, stdout not a terminal.
fn ticketlab_with(args: &[&str]) -> Output {
    ticketlab()
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .expect("runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `ticketlab ARGS`, which must succeed; returns its stdout.
fn succeeds(args: &[&str]) -> String {
    let out = ticketlab_with(args);
    assert!(
        out.status.success(),
        "ticketlab {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `ticketlab run ARGS --json`: the command first on stderr, then exactly
/// one JSON object on stdout.
fn run_json(args: &[&str]) -> (String, Value) {
    let mut argv = vec!["run"];
    argv.extend(args);
    argv.push("--json");
    let out = ticketlab_with(&argv);
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "ticketlab {argv:?} exited {:?}: {stderr}",
        out.status.code()
    );
    let command = stderr.lines().next().unwrap_or_default().to_string();
    assert!(command.starts_with("$ ticketlab "), "{stderr}");
    (command, one_json_object(&out.stdout))
}

/// A sheet's section: from `## name` to the next level-2 heading.
fn section<'a>(sheet: &'a str, name: &str) -> &'a str {
    let start = sheet
        .find(&format!("\n## {name}\n"))
        .unwrap_or_else(|| panic!("no section {name}"));
    let rest = &sheet[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 4);
    &rest[..end]
}

/// The schedules quoted in `text`: every `` `1,2,...` `` of buyer numbers.
fn quoted_schedules(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.contains(',') && s.chars().all(|c| c.is_ascii_digit() || c == ','))
        .map(str::to_string)
        .collect()
}

/// Whether `text` holds `number` on its own, not as part of a longer one.
fn has_number(text: &str, number: &str) -> bool {
    let digitish = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    // "1,152" and "87.5": a comma or point between digits joins them.
    let joins = |sign: Option<char>, beyond: Option<char>| {
        matches!(sign, Some(',' | '.')) && digitish(beyond)
    };
    text.match_indices(number).any(|(i, _)| {
        let mut before = text[..i].chars().rev();
        let mut after = text[i + number.len()..].chars();
        let (prev, next) = (before.next(), after.next());
        !digitish(prev)
            && !digitish(next)
            && !joins(prev, before.next())
            && !joins(next, after.next())
    })
}

/// The sheet as `ticketlab lab N` prints it, which stops before Observe:
/// what a student reads before running the lab.
fn first_half(lab: &str) -> String {
    let shown = succeeds(&["lab", lab]);
    assert!(!shown.contains("\nObserve\n"), "lab {lab}:\n{shown}");
    shown
}

/// Answers given in Explain or Answers must not appear in the first half,
/// and must appear in the sheet with its answers (so the check bites).
fn assert_first_half_hides(lab: &str, numbers: &[&str], phrases: &[&str]) {
    let first = first_half(lab);
    let whole = succeeds(&["lab", lab, "--answers"]);
    for n in numbers {
        assert!(has_number(&whole, n), "lab {lab} never states {n}");
        assert!(
            !has_number(&first, n),
            "lab {lab} gives away {n} before Observe:\n{first}"
        );
    }
    for p in phrases {
        assert!(whole.contains(p), "lab {lab} never says {p:?}");
        assert!(
            !first.contains(p),
            "lab {lab} gives away {p:?} before Observe:\n{first}"
        );
    }
}

#[test]
fn lab09_and_lab10_are_listed_with_their_run_commands() {
    let stdout = succeeds(&["labs"]);
    for (n, title) in [(9, "You are the scheduler"), (10, "Every interleaving")] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{n} ")))
            .unwrap_or_else(|| panic!("no lab {n}:\n{stdout}"));
        assert!(row.contains(title), "{row}");
        assert!(row.ends_with(&format!("ticketlab run {n}")), "{row}");
    }
}

#[test]
fn lab09_and_lab10_sheets_render_without_their_answers() {
    for (lab, title, short) in [
        ("9", "You are the scheduler", "scheduler"),
        ("10", "Every interleaving", "interleavings"),
    ] {
        let shown = succeeds(&["lab", lab, "--explain"]);
        assert!(
            shown.starts_with(&format!("Lab {lab}: {title}\n")),
            "{shown}"
        );
        for heading in ["Goal", "Background", "Predict", "Run", "Observe"] {
            assert!(shown.lines().any(|l| l == heading), "{heading}: {shown}");
        }
        assert!(!shown.lines().any(|l| l == "Answers"), "{shown}");
        assert!(!shown.contains("```") && !shown.contains("## "), "{shown}");
        for line in shown.lines() {
            assert!(line.chars().count() <= 80, "lab {lab}: {line:?}");
        }
        assert_eq!(shown, succeeds(&["lab", short, "--explain"]), "by name");
    }
}

#[test]
fn lab09_first_half_keeps_its_answers() {
    assert_first_half_hides(
        "9",
        &[],
        &[
            "1,1,2,2,2,1",
            "1,1,2,2,1,2",
            "1,2,1,2,1,2",
            "1,1,1,2,2",
            "six steps",
            "Six",
            "waits for the lock held by",
            "refused",
            "Oversold!",
        ],
    );
}

#[test]
fn lab10_first_half_keeps_its_answers() {
    assert_first_half_hides(
        "10",
        &[
            "20", "42", "12", "8", "22", "60", "60.0", "47.6", "48", "6", "1,152", "1152", "1,008",
            "1008", "4698", "3960", "360", "87.5", "84.3",
        ],
        &[
            "1,1,2,2,2,1",
            "1,1,2,2,2,2,2,1,1,1",
            "every schedule is exact",
            "oversold by",
            "Most",
            "grows",
        ],
    );
}

/// Lab 9's answers: every oversell they quote oversells when replayed, and
/// buyer 1 going first sells exactly the one ticket.
#[test]
fn lab09_the_schedules_of_the_answers_replay_as_the_sheet_says() {
    let answers = section(LAB09, "Answers");
    let schedules = quoted_schedules(answers);
    for want in ["1,1,2,2,2,1", "1,1,2,2,1,2", "1,2,1,2,1,2", "1,1,1,2,2"] {
        assert!(schedules.iter().any(|s| s == want), "{want}: {schedules:?}");
    }
    for schedule in &schedules {
        let v = sale_json(&[
            "--workers",
            "2",
            "--tickets",
            "1",
            "--lock",
            "none",
            "--schedule",
            schedule,
            "--view",
            "quiet",
        ]);
        if schedule == "1,1,1,2,2" {
            assert_eq!(v["verdict"], "exact", "{schedule}: {v}");
            assert_eq!(v["sold"], 1, "{schedule}: {v}");
        } else {
            assert_eq!(v["verdict"], "oversold", "{schedule}: {v}");
            assert_eq!(v["oversold"], 1, "{schedule}: {v}");
            assert_eq!(v["lost_updates"], 1, "{schedule}: {v}");
        }
    }
}

/// The replay the Run section shows, through `run 9` and through `sell`.
#[test]
fn lab09_a_schedule_replays_without_a_terminal() {
    let (command, v) = run_json(&["9", "--schedule", "1,1,2,2,2,1", "--view", "quiet"]);
    assert_eq!(
        command,
        "$ ticketlab step --workers 2 --tickets 1 --lock none --schedule 1,1,2,2,2,1 --view quiet --json"
    );
    assert_eq!(v["verdict"], "oversold", "{v}");
    assert_eq!(v["sold"], 2, "{v}");
    let stdout = succeeds(&[
        "sell",
        "--workers",
        "2",
        "--tickets",
        "1",
        "--lock",
        "none",
        "--schedule",
        "2",
        "--view",
        "quiet",
        "--trace",
    ]);
    // What Observe quotes for `--schedule 2`.
    assert!(
        stdout.contains("schedule: 2S=1,1S=1,1R=1,1W=0,2R=0"),
        "{stdout}"
    );
    assert!(stdout.contains("--schedule 2,1x3,2\n"), "{stdout}");
    assert!(stdout.contains("exact"), "{stdout}");
}

#[test]
fn lab09_the_lock_refuses_the_second_buyers_lock_step() {
    for args in [
        &[
            "sell",
            "--workers",
            "2",
            "--tickets",
            "1",
            "--lock",
            "buy",
            "--schedule",
            "1,1,2,2",
            "--view",
            "quiet",
        ][..],
        &["run", "9", "--lock", "buy", "--schedule", "1,1,2,2"],
    ] {
        let out = ticketlab_with(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert_eq!(
            stderr.trim_end(),
            "ticketlab: error: step 4: buyer 2 waits for the lock held by buyer 1",
            "{args:?}"
        );
    }
}

/// Try this: three buyers sell one ticket three times in nine steps, the
/// lock on the write still oversells, compare-and-swap does not.
#[test]
fn lab09_try_this_does_what_it_says() {
    for (args, verdict, oversold) in [
        (
            &[
                "--workers",
                "3",
                "--lock",
                "none",
                "--schedule",
                "1,1,2,2,3,3,1,2,3",
            ][..],
            "oversold",
            2,
        ),
        (
            &[
                "--workers",
                "2",
                "--lock",
                "write",
                "--schedule",
                "1,1,2,2,2,2,2,1,1,1",
            ],
            "oversold",
            1,
        ),
        (
            &[
                "--workers",
                "2",
                "--lock",
                "atomic",
                "--schedule",
                "1,1,2,2,2,1",
            ],
            "exact",
            0,
        ),
    ] {
        let mut argv = vec!["--tickets", "1", "--view", "quiet"];
        argv.extend(args);
        let v = sale_json(&argv);
        assert_eq!(v["verdict"], verdict, "{args:?}: {v}");
        assert_eq!(v["oversold"], oversold, "{args:?}: {v}");
    }
}

#[test]
fn lab09_without_a_terminal_says_it_needs_one_in_one_line() {
    let out = ticketlab_with(&["run", "9"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stdout),
        "$ ticketlab step --workers 2 --tickets 1 --lock none\n"
    );
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("ticketlab: error: "), "{stderr}");
    assert!(
        stderr.contains("terminal") && stderr.contains("--schedule"),
        "{stderr}"
    );
}

/// `run 9` on an 80 × 24 terminal once both buyers wait at their first step.
fn step_lab(flags: &[&str]) -> TermRun {
    let mut args = vec!["run", "9"];
    args.extend(flags);
    let run = TermRun::start(&args, 80, 24);
    run.wait_for_screen("both buyers at their first step", |s| {
        s.contains("Challenge:") && s.contains("schedule no steps yet")
    });
    run
}

/// Presses buyer keys one at a time, each once the last one shows.
fn press_steps(run: &mut TermRun, keys: &str) {
    let mut done = Vec::new();
    for key in keys.split(',') {
        done.push(key);
        let shown = format!("schedule {} (", done.join(","));
        run.press(key.as_bytes());
        run.wait_for_screen(&shown, |s| s.contains(&shown));
    }
}

#[test]
fn lab09_by_hand_the_answer_oversells_on_a_terminal() {
    let mut run = step_lab(&[]);
    let screen = run.screen();
    assert!(screen.contains("lock none"), "{screen}");
    assert!(screen.contains("buyers 2  tickets 1"), "{screen}");
    press_steps(&mut run, "1,1,2,2,2");
    run.wait_for_screen("buyer 2's write landed", |s| s.contains("count 0"));
    run.press(b"1");
    if !eventually(Duration::from_secs(10), || run.has_exited()) {
        run.press(b"q");
    }
    let ended = run.end();
    let printed = ended.printed_after();
    assert_eq!(ended.status.code(), Some(0), "{printed}");
    let all = strip_escapes(&ended.raw);
    assert!(
        all.starts_with("$ ticketlab step --workers 2 --tickets 1 --lock none\n"),
        "the command comes first: {all:?}"
    );
    assert!(
        printed.contains("Oversold! schedule: 1,1,2,2,2,1"),
        "{printed}"
    );
    assert!(printed.contains("OVERSOLD by 1"), "{printed}");
    ended.assert_terminal_restored();
}

#[test]
fn lab09_by_hand_the_lock_refuses_buyer_2() {
    let mut run = step_lab(&["--lock", "buy"]);
    press_steps(&mut run, "1,1,2");
    run.wait_for_screen("buyer 1 holding the lock", |s| {
        s.contains("lock held by buyer 1")
    });
    run.press(b"2");
    run.wait_for_screen("the refusal", |s| {
        s.contains("buyer 2 waits for the lock held by buyer 1")
    });
    assert!(run.screen().contains("schedule 1,1,2 (3 steps)"));
    run.press(b"q");
    let ended = run.end();
    assert_eq!(ended.status.code(), Some(130));
    ended.assert_terminal_restored();
}

/// One exploration's counts: (lock, schedules, traces, oversold, shortest).
fn counts(x: &Value) -> (String, u64, u64, u64, String) {
    let oversold = x["distribution"]
        .as_array()
        .expect("a distribution")
        .iter()
        .filter(|d| d["outcome"] == "oversold")
        .map(|d| d["schedules"].as_u64().unwrap())
        .sum();
    (
        x["lock"].as_str().unwrap().to_string(),
        x["schedules"].as_u64().unwrap(),
        x["traces"].as_u64().unwrap(),
        oversold,
        x["shortest_failing"]["schedule"]
            .as_str()
            .unwrap_or("none")
            .to_string(),
    )
}

fn explorations(args: &[&str]) -> Vec<(String, u64, u64, u64, String)> {
    let mut argv = vec!["10"];
    argv.extend(args);
    let (command, v) = run_json(&argv);
    assert!(command.starts_with("$ ticketlab explore "), "{command}");
    assert!(command.ends_with(" --lock {none|write|buy}"), "{command}");
    assert_eq!(v["lab"], 10, "{v}");
    assert_eq!(v["varies"], "--lock", "{v}");
    let all = v["explorations"].as_array().expect("explorations");
    for x in all {
        assert_eq!(x["complete"], true, "{x}");
    }
    all.iter().map(counts).collect()
}

fn row(
    lock: &str,
    schedules: u64,
    traces: u64,
    oversold: u64,
    shortest: &str,
) -> (String, u64, u64, u64, String) {
    (lock.into(), schedules, traces, oversold, shortest.into())
}

#[test]
fn lab10_two_buyers_give_the_counts_of_the_answers() {
    assert_eq!(
        explorations(&[]),
        [
            row("none", 20, 6, 12, "1,1,2,2,2,1"),
            row("write", 42, 6, 20, "1,1,2,2,2,2,2,1,1,1"),
            row("buy", 12, 4, 0, "none"),
        ]
    );
    let answers = section(LAB10, "Answers");
    for said in [
        "12 of the 20",
        "42",
        "20 of 42",
        "All 12",
        "`1,1,2,2,2,1`",
        "`1,1,2,2,2,2,2,1,1,1`",
    ] {
        assert!(answers.contains(said), "{said}: {answers}");
    }
}

#[test]
fn lab10_three_buyers_give_the_counts_of_the_answers() {
    assert_eq!(
        explorations(&["--workers", "3"]),
        [
            row("none", 1152, 48, 1008, "1,1,2,2,2,1,3,3"),
            row("write", 4698, 48, 3960, "1,1,2,2,2,2,2,1,1,1,3,3"),
            row("buy", 360, 24, 0, "none"),
        ]
    );
    assert!(section(LAB10, "Answers").contains("1,008 of 1,152"));
}

/// The table `run 10` ends with is the one the sheet's Explain quotes, row
/// for row, for 2 buyers and for 3 (Observe only says where to look).
#[test]
fn lab10_prints_the_table_the_sheet_quotes() {
    let explain = section(LAB10, "Explain");
    for flags in [&[][..], &["--workers", "3"]] {
        let mut argv = vec!["run", "10"];
        argv.extend(flags);
        let stdout = succeeds(&argv);
        assert!(stdout.starts_with("$ ticketlab explore "), "{stdout}");
        for lock in ["none", "write", "buy"] {
            assert!(stdout.contains(&format!("\n--lock {lock}:\n")), "{stdout}");
        }
        let header = stdout
            .lines()
            .position(|l| l.starts_with("lock ") && l.contains("schedules"))
            .unwrap_or_else(|| panic!("no table:\n{stdout}"));
        let lines: Vec<&str> = stdout.lines().skip(header).collect();
        assert_eq!(lines.len(), 4, "a header and three rows:\n{stdout}");
        for line in lines {
            assert!(line.chars().count() <= 78, "{line:?}");
            assert!(
                explain.contains(&format!("  {line}\n")),
                "the sheet does not quote {line:?}"
            );
        }
    }
}

#[test]
fn lab10_a_given_lock_explores_just_that_one() {
    let (command, v) = run_json(&["10", "--lock", "write"]);
    assert_eq!(
        command,
        "$ ticketlab explore --workers 2 --tickets 1 --lock write --json"
    );
    assert!(v.get("explorations").is_none(), "one exploration: {v}");
    assert_eq!(counts(&v), row("write", 42, 6, 20, "1,1,2,2,2,2,2,1,1,1"));
}

/// Explain and Try this: with no preemption only the two serial schedules
/// are left, and both are exact; one preemption finds the oversell.
#[test]
fn lab10_no_preemption_never_oversells_and_one_is_enough() {
    let none = |flags: &[&str]| {
        let mut argv = vec!["10", "--lock", "none"];
        argv.extend(flags);
        counts(&run_json(&argv).1)
    };
    assert_eq!(none(&["--preemptions", "0"]), row("none", 2, 2, 0, "none"));
    let (_, _, _, oversold, shortest) = none(&["--preemptions", "1"]);
    assert!(oversold > 0);
    assert_eq!(shortest, "1,1,2,2,2,1");
}

#[test]
fn lab10_a_refused_setting_is_refused_before_anything_runs() {
    let out = ticketlab_with(&["run", "10", "--store", "server"]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "only the command: {stdout}");
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("takes no lock"), "{stderr}");
}
