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

/// Runs the binary and parses its one JSON object.
pub fn sale_json(args: &[&str]) -> serde_json::Value {
    let out = ticketlab()
        .arg("sell")
        .args(args)
        .arg("--json")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ticketlab {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    let json = lines.next().expect("one line of JSON");
    assert_eq!(lines.next(), None, "stdout holds exactly one JSON object");
    serde_json::from_str(json).expect("valid JSON")
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
