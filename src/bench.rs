//! `ticketlab bench`: throughput of every correct store with no delays, and
//! the cost of starting and reaping 100 buyers.
//!
//! With `--anchors DIR` each measurement is followed, in the same round, by
//! its C counterpart (`DIR/cbench`) and its Python peer (`DIR/pybench.py`),
//! so that the ratios compare runs made under the same load.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use serde::Serialize;

use crate::buyer::Op;
use crate::cli::BenchArgs;
use crate::config::{LockMode, SaleConfig, StoreKind, Wants};
use crate::exit::Exit;
use crate::report::{human_rate, plural};
use crate::schedule::Schedule;
use crate::scheduler::Then;
use crate::supervisor::{Quiet, run_sale};

/// One thing measured.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    store: StoreKind,
    lock: LockMode,
    workers: usize,
    tickets: u64,
    /// The C program's mode for the same mechanism.
    c_mode: &'static str,
    /// The Python peer's mode.
    py_mode: &'static str,
    /// Tickets for the Python peer, which is far slower.
    py_tickets: u64,
}

const CASES: &[Case] = &[
    case(
        "shm+buy",
        StoreKind::Shm,
        LockMode::Buy,
        2,
        5_000_000,
        "mutex",
        "value_lock",
        500_000,
    ),
    case(
        "shm+buy",
        StoreKind::Shm,
        LockMode::Buy,
        8,
        5_000_000,
        "mutex",
        "value_lock",
        300_000,
    ),
    case(
        "shm+atomic",
        StoreKind::Shm,
        LockMode::Atomic,
        2,
        5_000_000,
        "atomic",
        "value_lock",
        500_000,
    ),
    case(
        "shm+atomic",
        StoreKind::Shm,
        LockMode::Atomic,
        8,
        5_000_000,
        "atomic",
        "value_lock",
        300_000,
    ),
    case(
        "file+buy",
        StoreKind::File,
        LockMode::Buy,
        2,
        5_000,
        "file_json",
        "file_lock",
        5_000,
    ),
    case(
        "file+buy",
        StoreKind::File,
        LockMode::Buy,
        8,
        5_000,
        "file_json",
        "file_lock",
        5_000,
    ),
    case(
        "server",
        StoreKind::Server,
        LockMode::None,
        2,
        100_000,
        "pipe",
        "pipe_server",
        30_000,
    ),
    case(
        "server",
        StoreKind::Server,
        LockMode::None,
        8,
        100_000,
        "pipe",
        "pipe_server",
        30_000,
    ),
    db_case("sqlite+buy", StoreKind::Sqlite, LockMode::Buy, 2),
    db_case("sqlite+buy", StoreKind::Sqlite, LockMode::Buy, 8),
    db_case("sqlite+atomic", StoreKind::Sqlite, LockMode::Atomic, 2),
    db_case("sqlite+atomic", StoreKind::Sqlite, LockMode::Atomic, 8),
    db_case("postgres+buy", StoreKind::Postgres, LockMode::Buy, 2),
    db_case("postgres+buy", StoreKind::Postgres, LockMode::Buy, 8),
    db_case("postgres+atomic", StoreKind::Postgres, LockMode::Atomic, 2),
    db_case("postgres+atomic", StoreKind::Postgres, LockMode::Atomic, 8),
    db_case(
        "postgres+serializable",
        StoreKind::Postgres,
        LockMode::Serializable,
        2,
    ),
    db_case(
        "postgres+serializable",
        StoreKind::Postgres,
        LockMode::Serializable,
        8,
    ),
];

/// A database row: no C or Python peer to run beside it.
const fn db_case(name: &'static str, store: StoreKind, lock: LockMode, workers: usize) -> Case {
    case(name, store, lock, workers, DB_TICKETS, "", "", 0)
}

/// Tickets in a database row: every purchase is a committed transaction
/// (thousands a second, not millions).
const DB_TICKETS: u64 = 3_000;

#[allow(clippy::too_many_arguments)]
const fn case(
    name: &'static str,
    store: StoreKind,
    lock: LockMode,
    workers: usize,
    tickets: u64,
    c_mode: &'static str,
    py_mode: &'static str,
    py_tickets: u64,
) -> Case {
    Case {
        name,
        store,
        lock,
        workers,
        tickets,
        c_mode,
        py_mode,
        py_tickets,
    }
}

/// Buyers started and reaped in the start-up measurement.
const START_WORKERS: usize = 100;

/// One row of results: medians over the rounds, in the row's unit.
#[derive(Debug)]
struct Row {
    scenario: String,
    workers: usize,
    /// Purchases per second, µs per step, or buyers per second: `unit`.
    ticketlab: f64,
    c: Option<f64>,
    python: Option<f64>,
    /// Median of per-round ticketlab/C ratios.
    vs_c: Option<f64>,
    /// Median of per-round ticketlab/Python ratios.
    vs_python: Option<f64>,
    /// What the figures count, as the table's last column says it.
    unit: &'static str,
}

/// The one object `bench --json` prints (`docs/json.md`): each figure's
/// unit is in its name.
#[derive(Debug, Serialize)]
struct BenchJson {
    rounds: u32,
    only: Option<String>,
    anchors: Option<PathBuf>,
    throughput: Vec<ThroughputJson>,
    stepped: Option<SteppedJson>,
    start: Option<StartJson>,
}

/// A store's throughput, with its C and Python counterparts.
#[derive(Debug, Serialize)]
struct ThroughputJson {
    scenario: &'static str,
    store: StoreKind,
    lock: LockMode,
    workers: usize,
    tickets: u64,
    purchases_per_sec: f64,
    c_purchases_per_sec: Option<f64>,
    python_purchases_per_sec: Option<f64>,
    ratio_vs_c: Option<f64>,
    ratio_vs_python: Option<f64>,
}

/// The scheduler's round trip.
#[derive(Debug, Serialize)]
struct SteppedJson {
    workers: usize,
    tickets: u64,
    step_ms: f64,
}

/// Starting and reaping buyers.
#[derive(Debug, Serialize)]
struct StartJson {
    workers: usize,
    buyers_per_sec: f64,
    c_buyers_per_sec: Option<f64>,
    python_buyers_per_sec: Option<f64>,
    ratio_vs_c: Option<f64>,
    ratio_vs_python: Option<f64>,
}

/// What a round of every row measured, kept for the JSON document.
#[derive(Debug, Default)]
struct Measured {
    throughput: Vec<(Case, Row)>,
    stepped: Option<Row>,
    start: Option<Row>,
}

const PURCHASES_PER_SEC: &str = "purchases/s";
const BUYERS_PER_SEC: &str = "buyers/s";
const US_PER_STEP: &str = "µs per step";

/// Every scenario name `--only` can match, each once, in table order.
/// A set, not `dedup`, so rows sharing a name need not be neighbours.
fn scenario_names() -> Vec<&'static str> {
    let mut seen = std::collections::HashSet::new();
    CASES
        .iter()
        .map(|c| c.name)
        .chain(["stepped", "start"])
        .filter(|name| seen.insert(*name))
        .collect()
}

/// Runs the benchmark and prints a table, row by row, or at the end one
/// JSON object.
pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<Exit> {
    let mut measured = Measured::default();
    let exit = measure(args, &mut measured)?;
    if args.json && exit == Exit::Success {
        write_json(args, measured)?;
    }
    Ok(exit)
}

/// Measures every row `args` asks for into `measured`, printing each row
/// as it comes unless the output is JSON.
fn measure(args: &BenchArgs, measured: &mut Measured) -> anyhow::Result<Exit> {
    let names = scenario_names();
    if let Some(only) = args.only.as_deref() {
        if !names.iter().any(|name| name.contains(only)) {
            return Ok(crate::app::usage(format!(
                "--only '{only}' matches no scenario (allowed: {})",
                names.join(", ")
            )));
        }
    }
    let anchors = args.anchors.as_deref();
    let cbench = anchors.map(build_anchors).transpose()?;
    let wanted = |name: &str| args.only.as_deref().is_none_or(|only| name.contains(only));
    if !args.json {
        print_header(args)?;
    }
    // The PostgreSQL rows need a server: the one `scripts/with-postgres`
    // starts, or any named by the variable.
    let db_url = std::env::var(crate::cli::DB_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty());
    let mut told = false;
    for case in CASES.iter().filter(|c| wanted(c.name)) {
        if case.store == StoreKind::Postgres && db_url.is_none() {
            if !told {
                eprintln!(
                    "ticketlab: postgres rows skipped: no server (run under scripts/with-postgres, or set {})",
                    crate::cli::DB_URL_ENV
                );
                told = true;
            }
            continue;
        }
        let mut ours = Vec::new();
        let (mut c, mut py) = (Vec::new(), Vec::new());
        for round in 0..args.rounds {
            let mut cfg = quiet_sale(
                case.workers,
                case.tickets,
                Wants::All,
                case.store,
                case.lock,
                round,
            );
            if case.store == StoreKind::Postgres {
                cfg.db_url = db_url.clone();
            }
            let report = run_sale(&cfg, &mut Quiet)?;
            anyhow::ensure!(
                report.is_exact(),
                "{} with {} buyers did not sell exactly",
                case.name,
                case.workers
            );
            ours.push(report.ops_per_sec);
            if let (Some(dir), Some(cbench), false) = (anchors, &cbench, case.c_mode.is_empty()) {
                c.push(c_ops(cbench, case.c_mode, case.workers, case.tickets * 2)?);
                py.push(py_ops(dir, case.py_mode, case.workers, case.py_tickets)?);
            }
        }
        let measured_row = row(
            format!("{} --wants all", case.name),
            case.workers,
            &ours,
            &c,
            &py,
            PURCHASES_PER_SEC,
        );
        print_row(&measured_row, args)?;
        measured.throughput.push((*case, measured_row));
    }
    if wanted("stepped") {
        let row = stepped(args.rounds)?;
        print_row(&row, args)?;
        measured.stepped = Some(row);
    }
    if !wanted("start") {
        return Ok(Exit::Success);
    }
    let (mut ours, mut c, mut py) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        // No lock: this measures starting and reaping, not a queue.
        let cfg = quiet_sale(
            START_WORKERS,
            0,
            Wants::Count(1),
            StoreKind::Shm,
            LockMode::None,
            round,
        );
        let report = run_sale(&cfg, &mut Quiet)?;
        ours.push(START_WORKERS as f64 / (report.processes_ms / 1e3));
        if let (Some(dir), Some(cbench)) = (anchors, &cbench) {
            c.push(c_start(cbench)?);
            py.push(py_start(dir)?);
        }
    }
    let start = row(
        format!("start+reap {START_WORKERS} buyers"),
        START_WORKERS,
        &ours,
        &c,
        &py,
        BUYERS_PER_SEC,
    );
    print_row(&start, args)?;
    measured.start = Some(start);
    Ok(Exit::Success)
}

/// A sale with no delays, no trace and no schedule: what every row
/// measures, seeded by its round.
fn quiet_sale(
    workers: usize,
    tickets: u64,
    wants: Wants,
    store: StoreKind,
    lock: LockMode,
    round: u32,
) -> SaleConfig {
    SaleConfig {
        workers,
        tickets,
        wants,
        store,
        lock,
        start_delay: Default::default(),
        search_delay: Default::default(),
        read_delay: Default::default(),
        write_delay: Default::default(),
        jitter: false,
        seed: u64::from(round),
        db: None,
        trace: false,
        schedule: None,
        one_process: false,
        crash: None,
        db_url: None,
        sale: None,
    }
}

/// Tickets in the stepped measurement: one granted step each for the read
/// and the write.
const STEPPED_TICKETS: u64 = 5_000;

/// The scheduler's round trip: the parent grants a parked buyer its step,
/// the buyer takes it and parks at its next gate, the parent sees it parked
/// and grants again. Buyer 1 takes every step (`--schedule 1 --then
/// lowest`), so the time between two of its reads is two round trips. The
/// row holds the median in microseconds.
fn stepped(rounds: u32) -> anyhow::Result<Row> {
    let mut ours = Vec::new();
    for round in 0..rounds {
        let cfg = SaleConfig {
            trace: true,
            schedule: Some((
                Schedule::parse("1").map_err(anyhow::Error::msg)?,
                Then::Lowest,
            )),
            ..quiet_sale(
                2,
                STEPPED_TICKETS,
                Wants::All,
                StoreKind::Shm,
                LockMode::None,
                round,
            )
        };
        let report = run_sale(&cfg, &mut Quiet)?;
        let mut reads: Vec<u64> = report
            .events
            .iter()
            .filter(|e| e.buyer == 0 && e.op == Op::Read)
            .map(|e| e.t_ns)
            .collect();
        reads.sort_unstable();
        let per_step: Vec<f64> = reads
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]) as f64 / 2e3)
            .collect();
        anyhow::ensure!(!per_step.is_empty(), "the stepped sale recorded no reads");
        ours.push(median(per_step));
    }
    Ok(row(
        "stepped: grant -> step -> park".into(),
        2,
        &ours,
        &[],
        &[],
        US_PER_STEP,
    ))
}

fn row(
    scenario: String,
    workers: usize,
    ours: &[f64],
    c: &[f64],
    py: &[f64],
    unit: &'static str,
) -> Row {
    let ratios = |other: &[f64]| -> Option<f64> {
        (!other.is_empty()).then(|| median(ours.iter().zip(other).map(|(a, b)| a / b).collect()))
    };
    Row {
        scenario,
        workers,
        ticketlab: median(ours.to_vec()),
        c: (!c.is_empty()).then(|| median(c.to_vec())),
        python: (!py.is_empty()).then(|| median(py.to_vec())),
        vs_c: ratios(c),
        vs_python: ratios(py),
        unit,
    }
}

/// The table's width for a scenario's name.
const SCENARIO: usize = 34;

/// What the table shows and how to read it, then its column heads. The C
/// and Python columns are there only when `--anchors` runs them.
fn print_header(args: &BenchArgs) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "bench: median of {} per row, no delays; higher is faster except µs per step",
        plural(u64::from(args.rounds), "round")
    )?;
    if args.anchors.is_some() {
        writeln!(
            out,
            "vs C, vs Python: ticketlab's figure over theirs, per round (above 1x: ticketlab is faster)"
        )?;
        writeln!(
            out,
            "{:<SCENARIO$} {:>6} {:>9} {:>9} {:>6} {:>9} {:>9}  unit",
            "scenario", "buyers", "ticketlab", "C", "vs C", "Python", "vs Python"
        )
    } else {
        writeln!(
            out,
            "{:<SCENARIO$} {:>6} {:>9}  unit",
            "scenario", "buyers", "ticketlab"
        )
    }
}

fn print_row(row: &Row, args: &BenchArgs) -> io::Result<()> {
    if args.json {
        return Ok(());
    }
    // A step takes microseconds: a rate's k and M would read wrongly.
    let figure = |x: f64| {
        if row.unit == US_PER_STEP {
            format!("{x:.1}")
        } else {
            human_rate(x)
        }
    };
    let opt = |x: Option<f64>| x.map(figure).unwrap_or_else(|| "-".into());
    let ratio = |x: Option<f64>| x.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into());
    if args.anchors.is_some() {
        writeln!(
            io::stdout(),
            "{:<SCENARIO$} {:>6} {:>9} {:>9} {:>6} {:>9} {:>9}  {}",
            row.scenario,
            row.workers,
            figure(row.ticketlab),
            opt(row.c),
            ratio(row.vs_c),
            opt(row.python),
            ratio(row.vs_python),
            row.unit,
        )
    } else {
        writeln!(
            io::stdout(),
            "{:<SCENARIO$} {:>6} {:>9}  {}",
            row.scenario,
            row.workers,
            figure(row.ticketlab),
            row.unit,
        )
    }
}

/// Prints the one JSON object of `bench --json`.
fn write_json(args: &BenchArgs, measured: Measured) -> io::Result<()> {
    let document = BenchJson {
        rounds: args.rounds,
        only: args.only.clone(),
        anchors: args.anchors.clone(),
        throughput: measured
            .throughput
            .into_iter()
            .map(|(case, row)| ThroughputJson {
                scenario: case.name,
                store: case.store,
                lock: case.lock,
                workers: case.workers,
                tickets: case.tickets,
                purchases_per_sec: row.ticketlab,
                c_purchases_per_sec: row.c,
                python_purchases_per_sec: row.python,
                ratio_vs_c: row.vs_c,
                ratio_vs_python: row.vs_python,
            })
            .collect(),
        stepped: measured.stepped.map(|row| SteppedJson {
            workers: row.workers,
            tickets: STEPPED_TICKETS,
            step_ms: row.ticketlab / 1e3,
        }),
        start: measured.start.map(|row| StartJson {
            workers: row.workers,
            buyers_per_sec: row.ticketlab,
            c_buyers_per_sec: row.c,
            python_buyers_per_sec: row.python,
            ratio_vs_c: row.vs_c,
            ratio_vs_python: row.vs_python,
        }),
    };
    crate::json::write_document(&mut io::stdout().lock(), &document)
}

/// Median of a non-empty list (0 for an empty one).
fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Builds the C reference into a scratch directory (the anchors directory
/// may be read-only) and returns the binary's path.
fn build_anchors(dir: &Path) -> anyhow::Result<PathBuf> {
    let out_dir = std::env::temp_dir().join(format!("tl-anchors-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir)?;
    let binary = out_dir.join("cbench");
    let status = Command::new("gcc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&binary)
        .arg(dir.join("cbench.c"))
        .status()
        .context("gcc (to build the C reference)")?;
    anyhow::ensure!(
        status.success(),
        "building {}/cbench.c failed",
        dir.display()
    );
    Ok(binary)
}

fn json_field(cmd: &mut Command, field: &str) -> anyhow::Result<f64> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    anyhow::ensure!(out.status.success(), "{cmd:?} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().context("no output")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    v[field]
        .as_f64()
        .with_context(|| format!("no {field} in {line}"))
}

fn c_ops(cbench: &Path, mode: &str, workers: usize, tickets: u64) -> anyhow::Result<f64> {
    let tmp = std::env::temp_dir();
    json_field(
        Command::new(cbench)
            .args([mode, &workers.to_string(), &tickets.to_string(), "1"])
            .arg(&tmp),
        "ops_per_s",
    )
}

fn c_start(cbench: &Path) -> anyhow::Result<f64> {
    json_field(
        Command::new(cbench).args(["fork", "0", &START_WORKERS.to_string(), "1"]),
        "procs_per_s",
    )
}

fn python() -> PathBuf {
    PathBuf::from("python3")
}

fn py_ops(dir: &Path, mode: &str, workers: usize, tickets: u64) -> anyhow::Result<f64> {
    json_field(
        Command::new(python()).arg(dir.join("pybench.py")).args([
            mode,
            "--procs",
            &workers.to_string(),
            "--tickets",
            &tickets.to_string(),
            "--runs",
            "1",
        ]),
        "ops_per_s",
    )
}

fn py_start(dir: &Path) -> anyhow::Result<f64> {
    let ms = json_field(
        Command::new(python()).arg(dir.join("pybench.py")).args([
            "start",
            "--tickets",
            &START_WORKERS.to_string(),
            "--runs",
            "1",
        ]),
        "total_ms",
    )?;
    Ok(START_WORKERS as f64 / (ms / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_are_each_listed_once() {
        let names = scenario_names();
        let unique: std::collections::HashSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "a name repeats: {names:?}");
        for case in CASES {
            assert!(names.contains(&case.name), "{} is missing", case.name);
        }
        assert!(names.ends_with(&["stepped", "start"]), "{names:?}");
    }

    #[test]
    fn medians_of_odd_and_even_lists() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
