//! `ticketlab labs`, `lab N` and `run N`: every lab runs and shows what its
//! sheet promises. Runs are shrunk with overrides where the preset is slow,
//! keeping the arrangement that decides the outcome.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

/// Long enough for any run here on a loaded machine; a hang fails the test.
const LIMIT: Duration = Duration::from_secs(120);

/// Runs `ticketlab ARGS` to the end, stdout not a terminal.
fn ticketlab_with(args: &[&str]) -> Output {
    ticketlab()
        .args(args)
        .timeout(LIMIT)
        .output()
        .expect("runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `ticketlab ARGS`, which must succeed.
fn succeeds(args: &[&str]) -> Output {
    let out = ticketlab_with(args);
    assert!(
        out.status.success(),
        "ticketlab {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Runs `ticketlab run ARGS` with `--json`: stdout must be exactly one JSON
/// object, and the command it ran goes first on stderr.
fn run_json(args: &[&str]) -> Value {
    let mut argv = vec!["run"];
    argv.extend(args);
    argv.push("--json");
    let out = succeeds(&argv);
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("$ ticketlab "),
        "the command comes first on stderr: {stderr}"
    );
    one_json_object(&out.stdout)
}

/// Sold exactly what there was: nothing left, nothing oversold, nothing lost.
fn assert_exact(sale: &Value) {
    assert_eq!(sale["sold"], sale["tickets"], "{sale}");
    assert_eq!(sale["remaining"], 0, "{sale}");
    assert_eq!(sale["oversold"], 0, "{sale}");
    assert_eq!(sale["lost_updates"], 0, "{sale}");
    assert_eq!(sale["vanished"], 0, "{sale}");
    assert_eq!(sale["ending"]["kind"], "completed", "{sale}");
    assert_eq!(sale["verdict"], "exact", "{sale}");
}

/// Sold more than there was, and the count forgot sales.
fn assert_oversold(sale: &Value) {
    assert!(sale["oversold"].as_u64().unwrap() > 0, "{sale}");
    assert!(sale["lost_updates"].as_i64().unwrap() > 0, "{sale}");
    assert_eq!(sale["ending"]["kind"], "completed", "{sale}");
    assert_eq!(sale["verdict"], "oversold", "{sale}");
}

/// The comparison table's rows, as words, after its header.
fn table(stdout: &str, axis: &str) -> Vec<Vec<String>> {
    let header = [
        axis,
        "sold",
        "remaining",
        "oversold",
        "lost",
        "torn",
        "elapsed",
        "purchases/s",
        "verdict",
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.split_whitespace().eq(header))
        .unwrap_or_else(|| panic!("no table header {header:?} in:\n{stdout}"));
    lines[at + 1..]
        .iter()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The one-line usage error: exit 2, nothing on stdout, one line on stderr.
fn refused(args: &[&str]) -> String {
    let out = ticketlab_with(args);
    assert_eq!(out.status.code(), Some(2), "ticketlab {args:?}");
    assert_eq!(text(&out.stdout), "", "ticketlab {args:?}");
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("ticketlab: error: "), "{stderr}");
    stderr
}

#[test]
fn labs_lists_twelve_labs_each_with_its_run_command() {
    let stdout = text(&succeeds(&["labs"]).stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let rows: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(rows.len(), 12, "{stdout}");
    for (n, &i) in (1..).zip(&rows) {
        let row = lines[i];
        assert!(row.starts_with(&format!("{n} ")), "{row}");
        let short = row.split_whitespace().nth(1).unwrap();
        assert_eq!(
            text(&succeeds(&["lab", short]).stdout),
            text(&succeeds(&["lab", &n.to_string()]).stdout),
            "the listed name {short} finds lab {n}"
        );
        assert!(row.ends_with(&format!("ticketlab run {n}")), "{row}");
        let goal = lines[i + 1];
        assert!(
            goal.starts_with("     ") && goal.trim().len() > 10,
            "a goal under lab {n}: {goal:?}"
        );
    }
    for line in &lines {
        assert!(line.len() <= 80, "fits 80 columns: {line:?}");
    }
    assert!(stdout.contains("ticketlab lab N"), "{stdout}");
}

#[test]
fn labs_unknown_lab_is_refused_in_one_line_listing_the_labs() {
    for args in [&["lab", "13"][..], &["run", "nope"]] {
        let stderr = refused(args);
        assert!(stderr.contains("1 to 12"), "{stderr}");
        for name in ["terminal", "race", "lock", "lock-free"] {
            assert!(stderr.contains(name), "{stderr}");
        }
    }
}

/// The headings of a rendered sheet: lines underlined with dashes.
fn rendered_headings(stdout: &str) -> Vec<&str> {
    let lines: Vec<&str> = stdout.lines().collect();
    lines
        .windows(2)
        .filter(|w| !w[0].is_empty() && w[1].len() == w[0].len() && w[1].bytes().all(|b| b == b'-'))
        .map(|w| w[0])
        .collect()
}

#[test]
fn lab03_shows_only_what_comes_before_the_run_and_no_markdown() {
    let stdout = text(&succeeds(&["lab", "3"]).stdout);
    assert!(
        stdout.starts_with("Lab 3: A lock around the purchase\n"),
        "{stdout}"
    );
    assert_eq!(
        rendered_headings(&stdout),
        ["Goal", "Background", "Predict", "Run"],
        "{stdout}"
    );
    assert!(!stdout.contains("```"), "{stdout}");
    assert!(!stdout.contains("## "), "{stdout}");
    assert!(!stdout.contains('\x1b'), "no escape codes through a pipe");
    assert!(
        stdout.ends_with("(after your run: ticketlab lab 3 --explain)\n"),
        "{stdout}"
    );
}

#[test]
fn every_lab_comes_in_halves_explain_then_answers() {
    for n in 1..=10 {
        let n = n.to_string();
        let first = text(&succeeds(&["lab", &n]).stdout);
        let explained = text(&succeeds(&["lab", &n, "--explain"]).stdout);
        let answered = text(&succeeds(&["lab", &n, "--answers"]).stdout);
        let both = text(&succeeds(&["lab", &n, "--explain", "--answers"]).stdout);
        assert_eq!(
            rendered_headings(&first),
            ["Goal", "Background", "Predict", "Run"],
            "lab {n}"
        );
        assert_eq!(
            rendered_headings(&explained),
            [
                "Goal",
                "Background",
                "Predict",
                "Run",
                "Observe",
                "Explain",
                "Try this"
            ],
            "lab {n}"
        );
        assert_eq!(
            rendered_headings(&answered),
            [
                "Goal",
                "Background",
                "Predict",
                "Run",
                "Observe",
                "Explain",
                "Try this",
                "Answers"
            ],
            "lab {n}"
        );
        assert_eq!(answered, both, "--answers implies --explain");
        assert!(
            explained.ends_with(&format!("(answers: ticketlab lab {n} --answers)\n")),
            "{explained}"
        );
        // Each part starts with the one before it, less its footer.
        let body = |s: &str| s[..s.rfind("\n(").unwrap()].to_string();
        assert!(explained.starts_with(&body(&first)), "lab {n}");
        assert!(answered.starts_with(&body(&explained)), "lab {n}");
    }
}

#[test]
fn lab03_answers_by_padded_number_or_name() {
    let by_number = text(&succeeds(&["lab", "03", "--answers"]).stdout);
    let by_name = text(&succeeds(&["lab", "lock", "--answers"]).stdout);
    assert!(by_number.lines().any(|l| l == "Answers"), "{by_number}");
    assert!(by_number.contains("Exactly 5"), "{by_number}");
    assert!(!by_number.contains("```") && !by_number.contains("## "));
    assert_eq!(by_number, by_name);
}

#[test]
fn lab01_unlocked_pairs_split() {
    let v = run_json(&["1"]);
    assert_eq!(v["workers"], 3, "the preset: {v}");
    assert_eq!(v["pairs"], 3, "{v}");
    assert!(v["split_pairs"].as_u64().unwrap() > 0, "{v}");
    assert!(v["interleaved_lines"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn lab01_a_pair_lock_keeps_every_pair_whole() {
    let v = run_json(&["1", "--lock", "pair"]);
    assert_eq!(v["lock"], "pair", "{v}");
    assert_eq!(v["pairs"], 3, "{v}");
    assert_eq!(v["split_pairs"], 0, "{v}");
}

#[test]
fn lab01_prints_the_print_command_first() {
    let out = succeeds(&["run", "1", "--workers", "2", "--lines", "3"]);
    let stdout = text(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!(first, "$ ticketlab print --workers 2 --lines 3", "{stdout}");
    assert!(stdout.contains("split pairs: "), "{stdout}");
}

/// Lab 2 shrunk to 20 buyers; the delays stay, so every buyer reads the
/// single ticket long before the first write lands.
const RACE: &[&str] = &["2", "--workers", "20", "--view", "quiet"];

#[test]
fn lab02_the_race_oversells() {
    let v = run_json(RACE);
    assert_eq!(
        (v["store"].as_str(), v["lock"].as_str()),
        (Some("file"), Some("none"))
    );
    assert_oversold(&v);
    let sold = v["sold"].as_i64().unwrap();
    assert!(sold > 10, "nearly every buyer buys: {v}");
    assert_eq!(v["remaining"], 0, "{v}");
    assert_eq!(v["lost_updates"].as_i64(), Some(sold - 1), "{v}");
    assert!(!v["lost"].as_array().unwrap().is_empty(), "named: {v}");
}

#[test]
fn lab02_prints_the_command_first_on_stdout() {
    let out = succeeds(&[
        "run",
        "2",
        "--workers",
        "3",
        "--write-delay",
        "0",
        "--view",
        "quiet",
    ]);
    let stdout = text(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("$ ticketlab sell "), "{stdout}");
    assert!(first.contains("--workers 3"), "{first}");
    assert!(first.contains("--write-delay 0"), "{first}");
    assert!(
        !first.contains("200ms"),
        "an overridden preset flag is not shown: {first}"
    );
    assert!(stdout.contains("OVERSOLD by 2"), "{stdout}");
    assert!(
        stdout.contains("(repeat with --seed ")
            && stdout.contains("interleaving  repeat with --schedule "),
        "{stdout}"
    );
}

#[test]
fn lab02_with_json_the_command_goes_to_stderr() {
    let out = succeeds(&["run", "2", "--workers", "3", "--write-delay", "0", "--json"]);
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("$ ticketlab sell "), "{stderr}");
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: Value = serde_json::from_str(stdout.trim_end()).expect("one JSON object");
    assert_eq!(v["workers"], 3, "{v}");
}

#[test]
fn lab03_the_lock_sells_exactly() {
    let v = run_json(&[
        "3",
        "--workers",
        "20",
        "--read-delay",
        "5ms",
        "--write-delay",
        "5ms",
        "--view",
        "quiet",
    ]);
    assert_eq!(
        (v["store"].as_str(), v["lock"].as_str()),
        (Some("file"), Some("buy"))
    );
    assert_eq!(v["tickets"], 5, "the preset: {v}");
    assert_eq!(v["jitter"], true, "the preset: {v}");
    assert_exact(&v);
}

/// Lab 4 shrunk: 3 buyers, 1 ticket, and a 100 ms read delay so every
/// buyer reads before anyone writes.
const GRANULARITY: &[&str] = &[
    "4",
    "--workers",
    "3",
    "--tickets",
    "1",
    "--read-delay",
    "100ms",
    "--write-delay",
    "0",
    "--view",
    "quiet",
];

#[test]
fn lab04_too_little_lock_oversells_and_enough_is_exact() {
    let v = run_json(GRANULARITY);
    assert_eq!(v["lab"], 4, "{v}");
    assert_eq!(v["varies"], "--lock", "{v}");
    let sales = v["sales"].as_array().expect("sales");
    let locks: Vec<&str> = sales.iter().map(|s| s["lock"].as_str().unwrap()).collect();
    // The last is the single-process baseline, which needs no lock.
    assert_eq!(locks, ["none", "write", "buy", "task", "join", "none"]);
    let one_process: Vec<bool> = sales
        .iter()
        .map(|s| s["one_process"].as_bool().unwrap())
        .collect();
    assert_eq!(one_process, [false, false, false, false, false, true]);
    for sale in &sales[..2] {
        assert_oversold(sale);
    }
    for sale in &sales[2..] {
        assert_exact(sale);
    }
    let seeds: Vec<&Value> = sales.iter().map(|s| &s["seed"]).collect();
    assert!(
        seeds.windows(2).all(|w| w[0] == w[1]),
        "one seed: {seeds:?}"
    );
}

#[test]
fn lab04_prints_one_table() {
    let stdout = text(&succeeds(&[&["run"][..], GRANULARITY].concat()).stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("$ ticketlab sell "), "{stdout}");
    assert!(
        first.ends_with("--lock {none|write|buy|task|join}"),
        "{first}"
    );
    // Lab sheets quote the table indented by two: 78 columns at most.
    for line in stdout.lines().skip_while(|l| !l.starts_with("lock ")) {
        assert!(
            line.chars().count() <= 78,
            "fits an 80-column terminal indented: {line:?} ({} columns)",
            line.chars().count()
        );
    }
    let rows = table(&stdout, "lock");
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r.last().unwrap().as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("none", "oversold"),
            ("write", "oversold"),
            ("buy", "exact"),
            ("task", "exact"),
            ("join", "exact"),
            ("single", "exact")
        ],
        "{stdout}"
    );
}

/// Lab 4 as it ships: the order of the rows is built into its delays
/// (`src/labs.rs` works it out), so this checks the lesson, not a lucky
/// timing: too little lock is fast and wrong, `buy` is exact, the whole
/// task under the lock costs at least twice `buy`, and `join` is the
/// slowest, slower even than one process doing everything alone.
#[test]
fn lab04_the_preset_orders_the_rows_by_construction() {
    let v = run_json(&["4", "--view", "quiet"]);
    let sales = v["sales"].as_array().expect("sales");
    let row = |name: &str| -> &Value {
        sales
            .iter()
            .find(|s| match name {
                "single" => s["one_process"] == true,
                lock => s["lock"] == lock && s["one_process"] == false,
            })
            .unwrap_or_else(|| panic!("no {name} row: {v}"))
    };
    let elapsed = |name: &str| row(name)["elapsed_ms"].as_f64().unwrap();
    assert_oversold(row("none"));
    assert_oversold(row("write"));
    assert_exact(row("buy"));
    assert_exact(row("task"));
    assert_exact(row("join"));
    assert_exact(row("single"));
    let times: Vec<(&str, f64)> = ["none", "write", "buy", "task", "join", "single"]
        .into_iter()
        .map(|n| (n, elapsed(n)))
        .collect();
    assert!(
        elapsed("task") >= 2.0 * elapsed("buy"),
        "task at least twice buy: {times:?}"
    );
    assert!(
        elapsed("join") > elapsed("single"),
        "join slower than one process: {times:?}"
    );
    for (name, t) in &times {
        assert!(
            *name == "join" || elapsed("join") > *t,
            "join the slowest: {times:?}"
        );
    }
}

#[test]
fn lab04_a_given_lock_runs_one_sale_only() {
    // Every spelling of the flag is the same flag.
    for lock in [&["--lock", "task"][..], &["-l", "task"], &["--lock=task"]] {
        let v = run_json(&[&["4"][..], lock, ONE_QUICK_SALE].concat());
        assert!(
            v.get("sales").is_none(),
            "{lock:?}: one sale, no table: {v}"
        );
        assert_eq!(v["lock"], "task", "{lock:?}: {v}");
        assert_exact(&v);
    }
}

/// Shrinks lab 4's sale to a quick one that still waits between read and
/// write.
const ONE_QUICK_SALE: &[&str] = &[
    "--workers",
    "3",
    "--tickets",
    "1",
    "--read-delay",
    "10ms",
    "--write-delay",
    "0",
    "--view",
    "quiet",
];

#[test]
fn lab04_the_printed_command_names_a_short_flag_once() {
    let out = succeeds(&[&["run", "4", "-l", "task"][..], ONE_QUICK_SALE].concat());
    let stdout = text(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.contains(" -l task"), "{first}");
    assert!(
        !first.contains("--lock") && !first.contains('{'),
        "the preset's varying --lock is gone: {first}"
    );
}

#[test]
fn lab02_a_short_flag_replaces_the_presets_long_one() {
    let out = succeeds(&[
        "run",
        "2",
        "-w",
        "3",
        "--write-delay",
        "0",
        "--view",
        "quiet",
    ]);
    let first = text(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(first.contains(" -w 3"), "{first}");
    assert!(!first.contains("--workers"), "{first}");
}

#[test]
fn lab11_a_normal_child_is_waited_for() {
    let out = succeeds(&["run", "11", "--parent-runs", "0.3s", "--child-runs", "1s"]);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("$ ticketlab daemon "), "{stdout}");
    assert!(stdout.contains("it is not a daemon"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("] child ") && l.ends_with("  done")),
        "the child's done line: {stdout}"
    );
}

#[test]
fn lab11_a_daemon_child_is_ended_with_the_main_code() {
    let out = succeeds(&[
        "run",
        "11",
        "--daemon",
        "--parent-runs",
        "0.3s",
        "--child-runs",
        "1s",
    ]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("$ ticketlab daemon --daemon --parent-runs 0.3s"),
        "{stdout}"
    );
    assert!(stdout.contains("(SIGTERM)"), "{stdout}");
    assert!(
        !stdout.lines().any(|l| l.ends_with("  done")),
        "no done line: {stdout}"
    );
}

#[test]
fn lab05_both_stores_sell_exactly() {
    let v = run_json(&["5", "--tickets", "500", "--view", "quiet"]);
    assert_eq!(v["lab"], 5, "{v}");
    assert_eq!(v["varies"], "--store", "{v}");
    let sales = v["sales"].as_array().expect("sales");
    let stores: Vec<&str> = sales.iter().map(|s| s["store"].as_str().unwrap()).collect();
    assert_eq!(stores, ["file", "shm"]);
    for sale in sales {
        assert_eq!(sale["lock"], "buy", "{sale}");
        assert_eq!(sale["workers"], 8, "the preset: {sale}");
        assert_exact(sale);
    }
    assert_eq!(sales[1]["torn_reads"], 0, "shared memory never tears");
}

#[test]
fn lab05_prints_one_table() {
    let stdout = text(&succeeds(&["run", "5", "--tickets", "300", "--view", "quiet"]).stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.ends_with("--store {file|shm}"), "{first}");
    let rows = table(&stdout, "store");
    assert_eq!(rows.len(), 2, "{stdout}");
    for (row, store) in rows.iter().zip(["file", "shm"]) {
        assert_eq!(row[0], store, "{stdout}");
        assert_eq!(row[1..4], ["300", "0", "0"], "{stdout}");
        assert_eq!(row.last().unwrap(), "exact", "{stdout}");
    }
}

#[test]
fn lab05_a_given_store_runs_one_sale_only() {
    let v = run_json(&[
        "5",
        "--store",
        "shm",
        "--tickets",
        "2000",
        "--view",
        "quiet",
    ]);
    assert!(v.get("sales").is_none(), "one sale: {v}");
    assert_eq!(v["store"], "shm", "{v}");
    assert_exact(&v);
}

#[test]
fn lab06_the_seller_sells_exactly_behind_the_pipe_and_the_queue() {
    let v = run_json(&["6", "--view", "quiet"]);
    assert_eq!(v["lab"], 6, "{v}");
    assert_eq!(v["varies"], "--store", "{v}");
    let sales = v["sales"].as_array().expect("sales");
    let stores: Vec<&str> = sales.iter().map(|s| s["store"].as_str().unwrap()).collect();
    assert_eq!(stores, ["server", "queue"], "{v}");
    for sale in sales {
        assert_eq!(sale["lock"], "none", "{sale}");
        assert_eq!(sale["workers"], 50, "the preset: {sale}");
        assert_exact(sale);
    }
    // The bare pipe has no lock to wait for.
    assert_eq!(sales[0]["lock_wait_ms"], 0.0, "{v}");
}

#[test]
fn lab06_prints_one_table_with_both_rows() {
    let stdout = text(&succeeds(&["run", "6", "--view", "quiet"]).stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.ends_with("--store {server|queue}"), "{first}");
    let rows = table(&stdout, "store");
    assert_eq!(rows.len(), 2, "{stdout}");
    for (row, store) in rows.iter().zip(["server", "queue"]) {
        assert_eq!(row[0], store, "{stdout}");
        assert_eq!(row[1..4], ["5", "0", "0"], "{stdout}");
        assert_eq!(row.last().unwrap(), "exact", "{stdout}");
    }
}

#[test]
fn lab06_a_given_store_runs_one_sale_only() {
    let v = run_json(&["6", "--store", "queue", "--view", "quiet"]);
    assert!(v.get("sales").is_none(), "one sale: {v}");
    assert_eq!(v["store"], "queue", "{v}");
    assert_exact(&v);
}

#[test]
fn lab06_a_lock_on_the_seller_is_refused() {
    let out = ticketlab_with(&["run", "6", "--lock", "buy", "--view", "quiet"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("takes no lock"), "{stderr}");
}

#[test]
fn lab07_compare_and_swap_sells_exactly() {
    let v = run_json(&["7", "--view", "quiet"]);
    assert_eq!(
        (v["store"].as_str(), v["lock"].as_str()),
        (Some("shm"), Some("atomic"))
    );
    assert_exact(&v);
    assert_eq!(v["lock_wait_ms"], 0.0, "{v}");
}

#[test]
fn lab07_compare_and_swap_on_a_file_is_refused() {
    let out = ticketlab_with(&["run", "7", "--store", "file", "--view", "quiet"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("compare-and-swap"), "{stderr}");
}

#[test]
fn lab04_one_process_alone_runs_the_single_row_only() {
    let v = run_json(&["4", "--one-process", "--tickets", "1", "--workers", "3"]);
    assert!(v.get("sales").is_none(), "one sale, no table: {v}");
    assert_eq!(v["one_process"], true, "{v}");
    assert_exact(&v);
}
