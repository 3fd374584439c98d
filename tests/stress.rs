//! The dead-buyer stress test: many sales, each with a random buyer SIGKILLed at
//! a random moment, over every store and lock that can lose its holder. The
//! fault tests (`faults.rs`) put a dead buyer in each window of the lock
//! path deterministically; this one checks that nothing was missed, by
//! killing wherever the moment falls.
//!
//! Long, so kept out of `cargo test`:
//!
//! ```sh
//! cargo test --release --test integration stress -- --ignored
//! ```
//!
//! `TICKETLAB_STRESS_RUNS` changes the number of sales (200), and
//! `TICKETLAB_STRESS_SEED` repeats a run's choices (its seed is printed).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::common::*;

/// A sale still running this long after it started has hung: it is killed
/// and counted.
const HANG: Duration = Duration::from_secs(10);

/// How long a sale would take with nobody killed: past the latest kill
/// (0.5 s), so the kill lands in a busy sale, and far from the hang limit
/// even when a dead buyer that held no lock lets the others finish it.
const SALE_LENGTH: Duration = Duration::from_millis(1000);

/// Buyers per sale: more than the two CPUs of a small runner, so the lock
/// is contended and holders are preempted inside it.
const WORKERS: &str = "4";

/// A store and a lock, and the tickets a short probe sale sells.
struct Setting {
    store: &'static str,
    lock: &'static str,
    probe_tickets: u64,
}

/// Every setting with a mutex or a racy count, on both stores that buyers
/// write themselves (the seller of the server store has its own test).
const SETTINGS: [Setting; 7] = [
    Setting {
        store: "shm",
        lock: "buy",
        probe_tickets: 5_000_000,
    },
    Setting {
        store: "shm",
        lock: "write",
        probe_tickets: 2_000_000,
    },
    Setting {
        store: "shm",
        lock: "none",
        probe_tickets: 5_000_000,
    },
    Setting {
        store: "shm",
        lock: "atomic",
        probe_tickets: 10_000_000,
    },
    Setting {
        store: "file",
        lock: "buy",
        probe_tickets: 500,
    },
    Setting {
        store: "file",
        lock: "write",
        probe_tickets: 500,
    },
    Setting {
        store: "file",
        lock: "none",
        probe_tickets: 500,
    },
];

fn sale_args(setting: &Setting, tickets: u64) -> Vec<String> {
    [
        "sell",
        "--workers",
        WORKERS,
        "--tickets",
        &tickets.to_string(),
        "--wants",
        "all",
        "--store",
        setting.store,
        "--lock",
        setting.lock,
        "--json",
        "--view",
        "quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The tickets that keep this machine's buyers busy for about
/// [`SALE_LENGTH`], measured with probe sales: a fixed number would be over
/// in a blink on a fast machine and hang-long on a slow one. The fastest of
/// three probes counts, so that neither a busy moment nor a racy file torn
/// for good (its buyers then wait 2 s before they give up) makes the sales
/// too short for their kill.
fn calibrate(setting: &Setting) -> u64 {
    let fastest_ms = (0..3)
        .map(|_| {
            let out = ticketlab_process()
                .args(sale_args(setting, setting.probe_tickets))
                .stderr(Stdio::null())
                .output()
                .unwrap();
            let v = one_json_object(&out.stdout);
            v["elapsed_ms"].as_f64().unwrap()
        })
        .fold(f64::INFINITY, f64::min)
        .max(1.0);
    let scale = SALE_LENGTH.as_secs_f64() * 1e3 / fastest_ms;
    ((setting.probe_tickets as f64 * scale) as u64).max(1)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// What the stress run saw, counted.
#[derive(Default)]
struct Counts {
    runs: usize,
    hangs: Vec<String>,
    exits: BTreeMap<String, usize>,
    endings: BTreeMap<String, usize>,
    /// By setting: "shm/buy stopped".
    verdicts: BTreeMap<String, usize>,
    /// Sales already over when their kill came.
    no_buyer_to_kill: usize,
    /// Runs that left a segment, a store directory or a live buyer.
    leftovers: Vec<String>,
    /// Live buyers seen at the moment their parent exited.
    alive_at_exit: usize,
    /// Exits other than 0 and 1, or 0 although a buyer died.
    wrong_exits: Vec<String>,
}

fn bump(map: &mut BTreeMap<String, usize>, key: impl Into<String>) {
    *map.entry(key.into()).or_default() += 1;
}

#[test]
#[ignore = "long (minutes): cargo test --release --test integration stress -- --ignored"]
fn stress_a_random_buyer_killed_at_a_random_moment_never_hangs_a_sale() {
    let runs: usize = env_or("TICKETLAB_STRESS_RUNS", 200);
    let seed: u64 = env_or("TICKETLAB_STRESS_SEED", rand::random());
    let mut rng = StdRng::seed_from_u64(seed);
    let began = Instant::now();
    let tickets: Vec<u64> = SETTINGS.iter().map(calibrate).collect();
    let mut counts = Counts::default();
    for run in 0..runs {
        let pick = rng.random_range(0..SETTINGS.len());
        let setting = &SETTINGS[pick];
        let kill_after = Duration::from_millis(rng.random_range(50..=500));
        let sale_seed = unique_seed().to_string();
        let what = format!(
            "run {run}: --store {} --lock {} --tickets {} --seed {sale_seed}, kill at {kill_after:?}",
            setting.store, setting.lock, tickets[pick]
        );
        // To a file, not a pipe: a racy sale names every lost update in its
        // JSON, megabytes that would fill a pipe nobody reads until the end.
        let json_file = tempfile::tempfile().unwrap();
        let started = Instant::now();
        let mut child = ticketlab_process()
            .args(sale_args(setting, tickets[pick]))
            .args(["--seed", &sale_seed])
            .stdout(json_file.try_clone().unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        std::thread::sleep(kill_after);
        let buyers = children_of(pid as i32);
        if buyers.is_empty() {
            counts.no_buyer_to_kill += 1;
        } else {
            signal(buyers[rng.random_range(0..buyers.len())], libc::SIGKILL);
        }
        let status = wait_or_kill(&mut child, HANG.saturating_sub(started.elapsed()));
        counts.runs += 1;
        if status.is_some() {
            counts.alive_at_exit += processes_with(&sale_seed).len();
        }
        let mut stdout = Vec::new();
        let mut json_file = json_file;
        json_file.seek(SeekFrom::Start(0)).unwrap();
        json_file.read_to_end(&mut stdout).unwrap();
        match status.map(|s| s.code()) {
            None => {
                counts.hangs.push(what.clone());
                bump(&mut counts.exits, "hang");
            }
            Some(code) => {
                let code = code.map_or("signal".to_string(), |c| c.to_string());
                bump(&mut counts.exits, code.as_str());
                let json: Option<serde_json::Value> = String::from_utf8_lossy(&stdout)
                    .lines()
                    .next()
                    .and_then(|l| serde_json::from_str(l).ok());
                let crashed = json
                    .as_ref()
                    .and_then(|v| v["crashed_workers"].as_u64())
                    .unwrap_or(0);
                if let Some(v) = &json {
                    let ending = v["ending"]["kind"].as_str().map(str::to_string);
                    bump(&mut counts.endings, ending.unwrap_or_default());
                    let verdict = v["verdict"].as_str().unwrap_or("none");
                    bump(
                        &mut counts.verdicts,
                        format!("{}/{} {verdict}", setting.store, setting.lock),
                    );
                }
                let right = match code.as_str() {
                    "1" => true,
                    // Only when the kill found every buyer done.
                    "0" => crashed == 0,
                    _ => false,
                };
                if !right {
                    counts
                        .wrong_exits
                        .push(format!("{what}: exit {code}, {crashed} crashed"));
                }
            }
        }
        // A buyer's PDEATHSIG may still be on its way after a hang's kill.
        let mut alive = Vec::new();
        eventually(Duration::from_secs(1), || {
            alive = processes_with(&sale_seed);
            alive.is_empty()
        });
        let files: Vec<PathBuf> = leftovers_of(pid);
        if !alive.is_empty() || !files.is_empty() {
            counts
                .leftovers
                .push(format!("{what}: buyers {alive:?}, files {files:?}"));
        }
    }
    let took = began.elapsed();
    let mut report = std::io::stderr().lock();
    let _ = writeln!(
        report,
        "stress: {} runs in {:.1} s (seed {seed}; tickets per setting {:?})\n  \
         hangs {}\n  exit codes {:?}\n  endings {:?}\n  verdicts {:?}\n  \
         kills that found the sale over {}\n  leftovers {}\n  \
         buyers alive when their parent exited {}\n  wrong exits {}",
        counts.runs,
        took.as_secs_f64(),
        SETTINGS
            .iter()
            .zip(&tickets)
            .map(|(s, t)| format!("{}/{} {t}", s.store, s.lock))
            .collect::<Vec<_>>(),
        counts.hangs.len(),
        counts.exits,
        counts.endings,
        counts.verdicts,
        counts.no_buyer_to_kill,
        counts.leftovers.len(),
        counts.alive_at_exit,
        counts.wrong_exits.len(),
    );
    for line in counts
        .hangs
        .iter()
        .chain(&counts.leftovers)
        .chain(&counts.wrong_exits)
    {
        let _ = writeln!(report, "  {line}");
    }
    assert!(counts.hangs.is_empty(), "hangs: {:?}", counts.hangs);
    assert!(
        counts.leftovers.is_empty(),
        "left behind: {:?}",
        counts.leftovers
    );
    assert_eq!(counts.alive_at_exit, 0, "buyers outlived their parent");
    assert!(
        counts.wrong_exits.is_empty(),
        "wrong exits: {:?}",
        counts.wrong_exits
    );
}
