//! `ticketlab explore` against an independent brute-force enumeration of a
//! model of the buyer's steps: every schedule of the model, run in the
//! model, must be what the real processes report.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::time::Duration;

use crate::common::{command_json, eventually, leftovers_of, ticketlab, ticketlab_process};

/// One buyer's program, 1 ticket, wanting 1.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lock {
    None,
    Write,
    Buy,
    Task,
    Atomic,
    Join,
}

impl Lock {
    fn name(self) -> &'static str {
        match self {
            Lock::None => "none",
            Lock::Write => "write",
            Lock::Buy => "buy",
            Lock::Task => "task",
            Lock::Atomic => "atomic",
            Lock::Join => "join",
        }
    }
}

#[derive(Clone, Debug)]
struct Buyer {
    pc: usize,
    seen: i64,
    done: bool,
}

/// The model's program for a setting: letters as in `--schedule`.
fn program(lock: Lock) -> &'static [char] {
    match lock {
        Lock::None => &['S', 'R', 'W'],
        Lock::Write => &['S', 'R', 'L', 'W', 'U'],
        Lock::Buy => &['S', 'L', 'R', 'W', 'U'],
        Lock::Task => &['L', 'S', 'R', 'W', 'U'],
        Lock::Atomic => &['S', 'R', 'C'],
        Lock::Join => &['S', 'R', 'W'],
    }
}

/// Whether buyers run one after another: under join buyer i+1 is forked
/// only once buyer i has exited, so it cannot move before then.
fn one_at_a_time(lock: Lock) -> bool {
    lock == Lock::Join
}

/// Every complete schedule of `n` buyers, with how many tickets were sold.
fn enumerate(n: usize, lock: Lock) -> HashMap<Vec<usize>, u64> {
    let prog = program(lock);
    let mut out = HashMap::new();
    let buyers = vec![
        Buyer {
            pc: 0,
            seen: 0,
            done: false,
        };
        n
    ];
    let model = Model {
        prog,
        one_at_a_time: one_at_a_time(lock),
    };
    walk(&model, 1, None, buyers, Vec::new(), 0, &mut out);
    out
}

/// What every buyer runs, and how.
struct Model {
    prog: &'static [char],
    one_at_a_time: bool,
}

fn walk(
    model: &Model,
    count: i64,
    holder: Option<usize>,
    buyers: Vec<Buyer>,
    schedule: Vec<usize>,
    sold: u64,
    out: &mut HashMap<Vec<usize>, u64>,
) {
    let prog = model.prog;
    let mut moved = false;
    for b in 0..buyers.len() {
        if buyers[b].done {
            continue;
        }
        if model.one_at_a_time && buyers[..b].iter().any(|e| !e.done) {
            // Not forked yet: an earlier buyer is still running.
            continue;
        }
        let step = prog[buyers[b].pc];
        if step == 'L' && holder.is_some() {
            continue;
        }
        moved = true;
        let mut next = buyers.clone();
        let (mut count2, mut holder2, mut sold2) = (count, holder, sold);
        let me = &mut next[b];
        me.pc += 1;
        match step {
            'S' => {}
            'R' => {
                me.seen = count;
                if count <= 0 {
                    // Sold out: under a lock, straight to the unlock.
                    match prog.iter().position(|&c| c == 'U') {
                        Some(u) if holder == Some(b) => me.pc = u,
                        _ => me.done = true,
                    }
                }
            }
            'L' => holder2 = Some(b),
            'U' => holder2 = None,
            'W' => {
                count2 = me.seen - 1;
                sold2 += 1;
            }
            'C' => {
                if count == me.seen {
                    count2 = me.seen - 1;
                    sold2 += 1;
                } else {
                    // A failed swap hands back the count: swap again, or
                    // stop at 0.
                    me.seen = count;
                    me.pc -= 1;
                    if count <= 0 {
                        me.done = true;
                    }
                }
            }
            other => unreachable!("{other}"),
        }
        if me.pc >= prog.len() {
            me.done = true;
        }
        let mut s = schedule.clone();
        s.push(b + 1);
        walk(model, count2, holder2, next, s, sold2, out);
    }
    if !moved {
        out.insert(schedule, sold);
    }
}

fn explore_json(workers: usize, lock: Lock) -> serde_json::Value {
    command_json(
        "explore",
        &["-w", &workers.to_string(), "-t", "1", "--lock", lock.name()],
    )
}

fn buyers_of(annotated: &str) -> Vec<usize> {
    annotated
        .split(',')
        .map(|e| {
            e.trim_end_matches(|c: char| c.is_ascii_alphabetic())
                .parse()
                .unwrap()
        })
        .collect()
}

fn check_against_model(workers: usize, lock: Lock) {
    let model = enumerate(workers, lock);
    let found = explore_json(workers, lock);
    // The totals, and the schedules per number sold.
    assert_eq!(
        found["schedules"].as_u64().unwrap(),
        model.len() as u64,
        "{lock:?} x{workers}: {found}"
    );
    let mut model_by_sold: BTreeMap<u64, u64> = BTreeMap::new();
    for sold in model.values() {
        *model_by_sold.entry(*sold).or_default() += 1;
    }
    let mut real_by_sold: BTreeMap<u64, u64> = BTreeMap::new();
    for share in found["distribution"].as_array().unwrap() {
        let sold = match share["outcome"].as_str().unwrap() {
            "exact" => 1,
            "oversold" => 1 + share["oversold_by"].as_u64().unwrap(),
            other => panic!("unexpected outcome {other}: {found}"),
        };
        *real_by_sold.entry(sold).or_default() += share["schedules"].as_u64().unwrap();
    }
    assert_eq!(real_by_sold, model_by_sold, "{lock:?} x{workers}");
    // Every trace the real processes ran is a schedule of the model, and
    // ended the same way there.
    for trace in found["explored"].as_array().unwrap() {
        let schedule = buyers_of(trace["schedule"].as_str().unwrap());
        let sold = model
            .get(&schedule)
            .unwrap_or_else(|| panic!("{schedule:?} is not a schedule of the model"));
        let real = match trace["outcome"].as_str().unwrap() {
            "exact" => 1,
            _ => 1 + trace["oversold_by"].as_u64().unwrap(),
        };
        assert_eq!(real, *sold, "{schedule:?}");
    }
}

#[test]
fn explore_two_buyers_match_the_model_for_every_setting() {
    for lock in [
        Lock::None,
        Lock::Write,
        Lock::Buy,
        Lock::Task,
        Lock::Atomic,
        Lock::Join,
    ] {
        check_against_model(2, lock);
    }
}

#[test]
fn explore_three_buyers_match_the_model_without_a_lock_with_buy_and_join() {
    check_against_model(3, Lock::None);
    check_against_model(3, Lock::Buy);
    check_against_model(3, Lock::Join);
}

#[test]
fn explore_join_has_one_schedule_for_three_buyers() {
    // Buyer 2 is forked only after buyer 1 exits, buyer 3 after buyer 2:
    // their searches, two reads, still cannot swap.
    let found = command_json("explore", &["-w", "3", "-t", "1", "--lock", "join"]);
    assert_eq!(found["schedules"], 1, "{found}");
    assert_eq!(found["traces"], 1, "{found}");
    assert_eq!(found["complete"], true, "{found}");
    let shares = found["distribution"].as_array().unwrap();
    assert_eq!(shares.len(), 1, "{found}");
    assert_eq!(shares[0]["outcome"], "exact", "{found}");
    assert_eq!(shares[0]["schedules"], 1, "{found}");
    assert_eq!(
        found["explored"][0]["schedule"], "1S,1R,1W,2S,2R,3S,3R",
        "{found}"
    );
    // Going on to the next buyer once one has exited preempts nobody.
    let bounded = command_json(
        "explore",
        &["-w", "3", "-t", "1", "--lock", "join", "--preemptions", "0"],
    );
    assert_eq!(bounded["schedules"], 1, "{bounded}");
}

#[test]
fn explore_counts_the_schedules_and_traces_of_the_notes() {
    for (workers, lock, schedules, traces) in [
        (2, Lock::None, 20, 6),
        (2, Lock::Write, 42, 6),
        (2, Lock::Buy, 12, 4),
        (2, Lock::Task, 2, 2),
        (2, Lock::Atomic, 20, 6),
        (2, Lock::Join, 1, 1),
        (3, Lock::None, 1152, 48),
        (3, Lock::Buy, 360, 24),
        (3, Lock::Join, 1, 1),
    ] {
        let found = explore_json(workers, lock);
        assert_eq!(found["schedules"], schedules, "{lock:?} x{workers}");
        assert_eq!(found["traces"], traces, "{lock:?} x{workers}");
    }
}

#[test]
fn explore_the_shortest_oversell_without_a_lock_is_six_steps() {
    let found = explore_json(2, Lock::None);
    let shortest = &found["shortest_failing"];
    assert_eq!(shortest["steps"], 6, "{found}");
    assert_eq!(shortest["schedule"], "1,1,2,2,2,1", "{found}");
    assert_eq!(shortest["preemptions"], 1, "{found}");
    assert_eq!(
        shortest["critical_pair"],
        "buyer 1's read came before buyer 2's write"
    );
}

#[test]
fn explore_every_correct_setting_has_no_failing_schedule() {
    for (store, lock) in [
        ("shm", "buy"),
        ("shm", "task"),
        ("shm", "join"),
        ("shm", "atomic"),
        ("file", "buy"),
        ("server", "none"),
        ("queue", "none"),
    ] {
        let found = command_json(
            "explore",
            &["-w", "3", "-t", "1", "--store", store, "--lock", lock],
        );
        assert!(
            found["shortest_failing"].is_null(),
            "{store}/{lock}: {found}"
        );
        let shares = found["distribution"].as_array().unwrap();
        assert_eq!(shares.len(), 1, "{store}/{lock}: {found}");
        assert_eq!(shares[0]["outcome"], "exact");
    }
}

#[test]
fn explore_at_most_one_preemption_gives_the_notes_figures() {
    let found = command_json(
        "explore",
        &["-w", "3", "-t", "1", "--lock", "none", "--preemptions", "1"],
    );
    assert_eq!(found["schedules"], 36, "{found}");
    let oversold: u64 = found["distribution"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["outcome"] == "oversold")
        .map(|s| s["schedules"].as_u64().unwrap())
        .sum();
    assert_eq!(oversold, 12, "{found}");
}

#[test]
fn explore_find_stops_at_the_first_oversell() {
    let found = command_json("explore", &["-w", "3", "--find", "oversold"]);
    assert_eq!(found["complete"], false);
    assert!(found["runs"].as_u64().unwrap() < 66, "{found}");
    assert_eq!(
        found["distribution"].as_array().unwrap().last().unwrap()["outcome"],
        "oversold"
    );
}

#[test]
fn explore_max_schedules_caps_real_runs_and_says_so() {
    // One run stands for a whole trace, so ten runs count more than ten
    // schedules: the summary must say the cap was on runs.
    let found = command_json("explore", &["-w", "3", "--max-schedules", "10"]);
    assert_eq!(found["runs"], 10, "{found}");
    assert_eq!(found["complete"], false, "{found}");
    assert!(found["schedules"].as_u64().unwrap() > 10, "{found}");
    let out = ticketlab()
        .args(["explore", "-w", "3", "--max-schedules", "10"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("(cut short: --max-schedules stops after 10 real runs)"),
        "{summary}"
    );
}

#[test]
fn explore_leaves_nothing_behind_even_when_interrupted() {
    let mut child = ticketlab_process()
        .args(["explore", "-w", "4", "--lock", "write"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Signalled only once it runs buyers, so its signals are blocked and
    // taken by the run: a SIGINT that came before the binary got going
    // would kill it by default, a test of the machine's load, not of
    // ticketlab.
    assert!(eventually(Duration::from_secs(30), || {
        !crate::common::children_of(pid as i32).is_empty()
    }));
    crate::common::signal(pid as i32, libc::SIGINT);
    let status = child.wait().unwrap();
    // A search of 4 buyers under write takes far longer than this test
    // waits, and the Ctrl-C is never lost between two runs: always 130.
    assert_eq!(status.code(), Some(130), "exit {status:?}");
    assert!(eventually(Duration::from_secs(3), || {
        crate::common::children_of(pid as i32).is_empty()
    }));
    assert_eq!(leftovers_of(pid), Vec::<std::path::PathBuf>::new());
    ticketlab().args(["explore", "-w", "9"]).assert().code(2);
}

#[test]
fn explore_a_find_that_finds_nothing_says_so() {
    let out = ticketlab()
        .args(["explore", "--lock", "buy", "--find", "deadlock"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("no schedule ends in a deadlock: --find deadlock searched them all"),
        "{stdout}"
    );
}

#[test]
fn explore_try_it_line_replays_the_failing_schedule_with_the_whole_sale() {
    let out = ticketlab()
        .args([
            "explore", "-w", "2", "-t", "1", "--wants", "2", "--find", "oversold",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .skip_while(|l| l.trim() != "try it:")
        .nth(1)
        .unwrap_or_else(|| panic!("no try it line:\n{text}"))
        .trim();
    assert!(line.contains("--wants 2"), "{line}");
    // Without a terminal, step runs the schedule as sell does.
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    let replayed = ticketlab()
        .args(&words)
        .args(["--json", "--view", "quiet"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&replayed.stdout)
        .unwrap_or_else(|e| panic!("{line}: {e}: {}", String::from_utf8_lossy(&replayed.stderr)));
    assert_eq!(v["oversold"], 1, "{line}: {v}");
}
