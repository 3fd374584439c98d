//! `ticketlab daemon`: a parent waits for its child, ends a daemon child with
//! its main code, or leaves an orphan that notices its new parent.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::ticketlab;

/// Runs `ticketlab daemon ARGS` to the end; returns its standard output.
fn daemon_output(args: &[&str]) -> String {
    let out = ticketlab().arg("daemon").args(args).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ticketlab daemon {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The child's pid, read from a line the child wrote itself.
fn child_pid(output: &str) -> i32 {
    output
        .lines()
        .find_map(|l| {
            l.split_once("] child  pid ")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no child line in\n{output}"))
}

fn is_done_line(line: &str) -> bool {
    line.contains("] child  pid ") && line.ends_with("  done")
}

/// Whether no process with this pid runs any more (a zombie runs nothing;
/// whether an orphan's adopter reaps it is not ours to decide).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

fn gone_within(pid: i32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    gone(pid)
}

#[test]
fn lab11_parent_waits_for_a_normal_child() {
    // Not a daemon: main code ends first, then the parent waits for `done`.
    let out = daemon_output(&["--parent-runs", "0.3s", "--child-runs", "1s"]);
    let lines: Vec<&str> = out.lines().collect();
    let main_over = lines.iter().position(|l| l.ends_with("  main over"));
    let done = lines.iter().position(|l| is_done_line(l));
    assert!(main_over.is_some() && done.is_some(), "{out}");
    assert!(main_over < done, "main code ends before the child:\n{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("] child  pid ") && l.ends_with("  tick 1")),
        "{out}"
    );
    assert!(gone(child_pid(&out)), "the child was reaped:\n{out}");
}

#[test]
fn lab11_daemon_child_loses_last_line() {
    // A daemon child is ended with the parent's main code: no `done` line.
    let out = daemon_output(&["--daemon", "--parent-runs", "0.3s", "--child-runs", "1s"]);
    assert!(!out.lines().any(is_done_line), "{out}");
    // The parent did not wait for the child: its main code ended, then it
    // ended the child, which was still running (killed, not finished).
    let lines: Vec<&str> = out.lines().collect();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let main_over = at("  main over");
    let ending = at("ending daemon child");
    let killed = at("was killed by SIGTERM");
    assert!(
        main_over.is_some() && main_over < ending && ending < killed,
        "main over, then SIGTERM, then the child was killed:\n{out}"
    );
    assert!(
        gone(child_pid(&out)),
        "the daemon child was ended and reaped:\n{out}"
    );
}

#[test]
fn lab11_daemon_child_that_finished_early_keeps_its_done_line() {
    // The daemon flag only matters while the child still runs.
    let out = daemon_output(&["--daemon", "--parent-runs", "0.8s", "--child-runs", "0.2s"]);
    assert!(out.lines().any(is_done_line), "{out}");
    assert!(out.contains("already finished"), "{out}");
}

#[test]
fn lab11_daemon_and_orphan_together_are_refused() {
    // A child cannot both end with its parent and outlive it: a usage error.
    ticketlab()
        .args(["daemon", "--daemon", "--orphan"])
        .assert()
        .code(2);
}

#[test]
fn lab11_orphan_outlives_its_parent_then_ends_itself() {
    // The parent exits at once; the child sees a new parent, then ends alone.
    let mut parent = std::process::Command::new(env!("CARGO_BIN_EXE_ticketlab"))
        .args([
            "daemon",
            "--orphan",
            "--parent-runs",
            "0.2s",
            "--child-runs",
            "1s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    // The orphan keeps the pipe open after the parent is gone, so the lines
    // are read on the side while this thread watches the parent.
    let (tx, rx) = mpsc::channel();
    let stdout = parent.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });

    let status = parent.wait().expect("parent ends");
    let parent_exit = Instant::now();
    assert!(status.success(), "{status}");

    let mut lines = Vec::new();
    let mut done_at = None;
    while let Ok((at, line)) = rx.recv_timeout(Duration::from_secs(5)) {
        if is_done_line(&line) {
            done_at = Some(at);
        }
        lines.push(line);
    }
    let out = lines.join("\n");
    let pid = child_pid(&out);
    assert!(out.contains("leaving without waiting"), "{out}");
    assert!(
        out.contains("my parent pid changed"),
        "the orphan noticed:\n{out}"
    );
    assert!(
        done_at.is_some_and(|at| at > parent_exit),
        "done after the parent left:\n{out}"
    );
    // In the pipe's own order: the parent's last line, then the orphan
    // seeing its new parent, then its `done`. The parent exits right after
    // its last line, so it did not wait for the child, however slow the
    // machine.
    let at = |f: &dyn Fn(&str) -> bool| lines.iter().position(|l| f(l));
    let left = at(&|l| l.contains("leaving without waiting"));
    let noticed = at(&|l| l.contains("my parent pid changed"));
    let done = at(&|l| is_done_line(l));
    assert!(
        left.is_some() && left < noticed && noticed < done,
        "the parent leaves, then the orphan notices, then it is done:\n{out}"
    );
    assert!(
        gone_within(pid, Duration::from_millis(1500)),
        "orphan {pid} still runs:\n{out}"
    );
}

#[test]
fn lab11_a_quiet_orphan_run_does_not_pretend_to_count_its_lines() {
    let mut parent = std::process::Command::new(env!("CARGO_BIN_EXE_ticketlab"))
        .args([
            "daemon",
            "--orphan",
            "--view",
            "quiet",
            "--parent-runs",
            "0.1s",
            "--child-runs",
            "0.3s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = parent.stdout.take().unwrap();
    let status = parent.wait().expect("parent ends");
    assert!(status.success(), "{status}");
    // The orphan holds the pipe until it ends; then every line is in.
    let out: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .collect();
    let out = out.join("\n");
    assert!(out.contains("child lines: not counted"), "{out}");
    assert!(!out.contains("child lines: 0"), "{out}");
    let pid = child_pid(&out);
    assert!(gone_within(pid, Duration::from_secs(5)), "{out}");
}
