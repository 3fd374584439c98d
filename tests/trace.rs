//! `--trace`: the interleaving of every operation and every lost update named.

use crate::common::*;

/// The certain race, traced: nine sales are lost.
fn race() -> Vec<&'static str> {
    let mut args = vec!["sell"];
    args.extend(EVERYONE_READS_FIRST);
    args.extend(["--lock", "none", "--view", "quiet", "--trace"]);
    args
}

/// One line of the interleaving: "  12.345 ms  buyer 3    read 1".
#[derive(Debug)]
struct Step {
    ms: f64,
    buyer: usize,
    /// The verb and the count: "read 1", "wrote 0", "exited".
    what: String,
}

/// The trace's parts: the interleaving's steps and the lines under
/// "lost updates (N):", or `None` for "no lost updates".
struct Trace {
    steps: Vec<Step>,
    lost: Option<Vec<String>>,
}

fn parse_trace(text: &str) -> Trace {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with("interleaving ("));
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("no interleaving:\n{text}"));
    let count: usize = header
        .trim_start_matches("interleaving (")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad header {header:?}"));
    let mut steps = Vec::new();
    let mut lost = None;
    for line in lines.by_ref() {
        if line == "no lost updates" {
            break;
        }
        if line.starts_with("lost updates (") {
            lost = Some(Vec::new());
            break;
        }
        let (ms, rest) = line
            .trim_start()
            .split_once(" ms  buyer ")
            .unwrap_or_else(|| panic!("not a step: {line:?}\n{text}"));
        let (buyer, what) = rest.split_once(' ').unwrap_or((rest, ""));
        steps.push(Step {
            ms: ms
                .parse()
                .unwrap_or_else(|_| panic!("bad time in {line:?}")),
            buyer: buyer
                .parse()
                .unwrap_or_else(|_| panic!("bad buyer in {line:?}")),
            what: what.trim().to_string(),
        });
    }
    assert_eq!(steps.len(), count, "the header counts the steps:\n{text}");
    if let Some(named) = lost.as_mut() {
        named.extend(
            lines
                .take_while(|l| l.starts_with("  "))
                .map(str::to_string),
        );
    }
    Trace { steps, lost }
}

/// The steps that are exactly `what` ("read 1"), with their buyers.
fn buyers_doing(steps: &[Step], what: &str) -> Vec<usize> {
    let mut buyers: Vec<usize> = steps
        .iter()
        .filter(|s| s.what == what)
        .map(|s| s.buyer)
        .collect();
    buyers.sort_unstable();
    buyers
}

fn assert_in_time_order(steps: &[Step]) {
    for pair in steps.windows(2) {
        assert!(
            pair[0].ms <= pair[1].ms,
            "out of time order: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn lab02_trace_names_nine_lost_updates() {
    let out = ticketlab().args(race()).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("lost updates (9):"), "{stdout}");
    // The summary names three and points below for the rest: --trace is
    // already on.
    assert!(stdout.contains("… and 6 more (named below)"), "{stdout}");
    assert!(!stdout.contains("--trace names"), "{stdout}");
    let trace = parse_trace(&stdout);
    let lost = trace.lost.expect("lost updates are named");
    assert_eq!(lost.len(), 9, "{stdout}");
    assert!(
        lost.iter().all(|l| l.contains("overwrote buyer")),
        "{lost:#?}"
    );
    // Every buyer read the one ticket and wrote 0 over it, and the
    // interleaving lists them in time order.
    let everyone: Vec<usize> = (1..=10).collect();
    assert_eq!(buyers_doing(&trace.steps, "read 1"), everyone, "{stdout}");
    assert_eq!(buyers_doing(&trace.steps, "wrote 0"), everyone, "{stdout}");
    assert_in_time_order(&trace.steps);
}

#[test]
fn lab02_trace_with_json_puts_the_events_in_the_one_object() {
    let out = ticketlab()
        .args(race())
        .arg("--json")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let mut lines = stdout.lines();
    let v: serde_json::Value =
        serde_json::from_str(lines.next().expect("a JSON line")).expect("valid JSON");
    assert_eq!(lines.next(), None, "stdout holds one JSON object: {stdout}");
    let lost = v["lost"].as_array().expect("a lost array");
    assert_eq!(lost.len(), 9, "{v}");
    for entry in lost {
        assert!(entry["overwritten_by"].is_u64(), "{entry}");
        assert!(entry["lost_buyer"].is_u64(), "{entry}");
        assert_eq!(entry["count_read"], 1, "{entry}");
    }
    // The interleaving is in the object, whole, and not on stderr: every
    // buyer read 1 and wrote 0, in time order.
    assert!(!stderr.contains("interleaving"), "{stderr}");
    let events = v["events"].as_array().expect("an events array");
    let doing = |op: &str, value: i64| -> Vec<u64> {
        let mut buyers: Vec<u64> = events
            .iter()
            .filter(|e| e["op"] == op && e["value"] == value)
            .map(|e| e["buyer"].as_u64().unwrap())
            .collect();
        buyers.sort_unstable();
        buyers
    };
    let everyone: Vec<u64> = (0..10).collect();
    assert_eq!(doing("read", 1), everyone, "{v}");
    assert_eq!(doing("wrote", 0), everyone, "{v}");
    let times: Vec<f64> = events
        .iter()
        .map(|e| e["at_ms"].as_f64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(v["schedule"].is_string(), "{v}");
}

#[test]
fn lab02_json_without_trace_has_no_events() {
    let mut args = race();
    args.retain(|a| *a != "--trace");
    let v = sale_json(&args[1..]);
    assert!(v["events"].is_null(), "{v}");
    assert_eq!(v["lost"].as_array().map(Vec::len), Some(9), "{v}");
}

#[test]
fn correct_sales_trace_no_lost_updates() {
    let out = ticketlab()
        .args([
            "sell",
            "--lock",
            "buy",
            "--tickets",
            "5",
            "--workers",
            "20",
            "--trace",
            "--view",
            "quiet",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("no lost updates"), "{stdout}");
    let trace = parse_trace(&stdout);
    assert!(trace.lost.is_none(), "{stdout}");
    assert_in_time_order(&trace.steps);
    // Under the lock the writes count down one at a time.
    let writes: Vec<&str> = trace
        .steps
        .iter()
        .filter(|s| s.what.starts_with("wrote "))
        .map(|s| s.what.as_str())
        .collect();
    assert_eq!(
        writes,
        ["wrote 4", "wrote 3", "wrote 2", "wrote 1", "wrote 0"],
        "{stdout}"
    );
}

/// A schedule of two buyers that each keep buying (`--wants all`): A sells
/// three times while B holds a stale read, B's write drops two of A's
/// sales, A's stale write brings one back, and so on. Counted by numbers
/// alone, one of those writes looks like a buyer overwriting itself.
const SELF_LOOKING: &str = "1x3,2x2,1x5,2x2,1x2,2x3,1";

#[test]
fn lab10_wants_all_trace_names_only_real_lost_updates() {
    let sale = [
        "sell",
        "-w",
        "2",
        "-t",
        "10",
        "--wants",
        "all",
        "--lock",
        "none",
        "--schedule",
        SELF_LOOKING,
    ];
    // The summary and the post-mortem, as text.
    let out = ticketlab()
        .args(sale)
        .args(["--trace", "--view", "quiet"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lost_updates: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("  lost updates  "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no lost updates line:\n{stdout}"));
    assert!(lost_updates > 0, "the schedule loses sales: {stdout}");
    let named = parse_trace(&stdout).lost.expect("lost updates are named");
    // As many named as lost.
    assert_eq!(named.len(), lost_updates, "{stdout}");
    // Nobody overwrites its own sale.
    for line in &named {
        let (writer, rest) = line
            .trim()
            .trim_start_matches("buyer ")
            .split_once(' ')
            .expect("buyer N wrote …");
        assert!(
            !rest.contains(&format!("buyer {writer}'s")),
            "a buyer overwrote itself: {line}"
        );
    }
    // The same schedule in JSON: the same number named, nobody itself.
    let out = ticketlab()
        .args(sale)
        .args(["--json"])
        .output()
        .expect("runs");
    let v = one_json_object(&out.stdout);
    assert_eq!(v["lost_updates"].as_u64(), Some(lost_updates as u64), "{v}");
    let lost = v["lost"].as_array().expect("a lost array");
    assert_eq!(lost.len(), lost_updates, "{v}");
    for entry in lost {
        assert_ne!(entry["overwritten_by"], entry["lost_buyer"], "{entry}");
    }
}

#[test]
fn an_overflowing_trace_never_repeats_a_sentence_in_the_summary() {
    // 200,000 tickets bought one at a time by 4 buyers without a lock:
    // more operations than the trace holds, and equal losses come in runs.
    let out = ticketlab()
        .args([
            "sell", "-w", "4", "-t", "200000", "--wants", "all", "--lock", "none", "--view",
            "quiet",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let sentences: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("  lost: "))
        .collect();
    let mut distinct = sentences.clone();
    distinct.dedup();
    assert_eq!(sentences, distinct, "{stdout}");
    assert!(
        sentences.iter().all(|l| {
            let (writer, rest) = l["  lost: buyer ".len()..]
                .split_once(' ')
                .unwrap_or(("", ""));
            !rest.contains(&format!("buyer {writer}'s"))
        }),
        "{stdout}"
    );
}
