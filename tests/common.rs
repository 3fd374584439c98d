//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn ticketlab() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("ticketlab").expect("binary built")
}

/// A `std::process::Command` for the binary, for tests that signal it mid-run.
pub fn ticketlab_process() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_ticketlab"))
}

/// A sale whose race is certain: every buyer reads the one ticket before
/// anyone writes, because a 1 s read delay after the common start signal
/// dwarfs the few milliseconds the buyers need to get going, even on a
/// loaded machine. Add the store and lock to race on.
pub const EVERYONE_READS_FIRST: &[&str] =
    &["--workers", "10", "--tickets", "1", "--read-delay", "1s"];

/// Runs `ticketlab sell ARGS --json` and parses its one JSON object.
pub fn sale_json(args: &[&str]) -> serde_json::Value {
    command_json("sell", args)
}

/// Runs `ticketlab COMMAND ARGS --json`, which must succeed, and parses its
/// one JSON object.
pub fn command_json(command: &str, args: &[&str]) -> serde_json::Value {
    let out = ticketlab()
        .arg(command)
        .args(args)
        .arg("--json")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "ticketlab {command} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    one_json_object(&out.stdout)
}

/// The one JSON object that must be all of stdout.
pub fn one_json_object(stdout: &[u8]) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(stdout);
    let mut lines = stdout.lines();
    let json = lines.next().expect("one line of JSON");
    assert_eq!(lines.next(), None, "stdout holds exactly one JSON object");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"))
}

/// A seed no other test uses, so a run's processes can be found by their
/// command line.
pub fn unique_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    (nanos % 1_000_000_000) * 1000 + NEXT.fetch_add(1, Ordering::Relaxed) + 7_000_000_000_000
}

/// Processes whose command line contains `needle` (buyers share their
/// parent's command line, since they are forked, not executed).
pub fn processes_with(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("ticketlab") && cmdline.contains(needle) && !is_zombie(pid) {
            found.push(pid);
        }
    }
    found
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .map(|(_, r)| r.starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(true)
}

/// Direct children of `parent`.
pub fn children_of(parent: i32) -> Vec<i32> {
    let mut kids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let ppid: i32 = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid == parent && !rest.starts_with('Z') {
            kids.push(pid);
        }
    }
    kids
}

/// Segments and temporary store files a run with this parent pid left behind.
pub fn leftovers_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("ticketlab-{pid}-");
    let mut found = Vec::new();
    for dir in [Path::new("/dev/shm").to_path_buf(), std::env::temp_dir()] {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(entry.path());
            }
        }
    }
    found
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Sends a signal to a process.
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill takes no pointers.
    unsafe {
        libc::kill(pid, sig);
    }
}
