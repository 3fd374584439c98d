//! `ticketlab bench`: throughput of every correct store with no delays, and
//! the cost of starting and reaping 100 buyers.
//!
//! With `--anchors` each measurement is followed, in the same round, by its
//! C counterpart and its Python peer (`bench/anchors/`: `anchor.c`, the
//! practical limit, and `anchor.py`, the `multiprocessing` peer), so that the
//! ratios compare runs made under the same load.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::config::{LockMode, SaleConfig, StoreKind, Wants};
use crate::exit::Exit;
use crate::files;
use crate::process;
use crate::protocol::Op;
use crate::report::{Ending, human_rate, plural};
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
    /// The anchors' mode for the same mechanism (`bench/anchors/`); empty
    /// for a row with no C or Python counterpart.
    anchor: &'static str,
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
        500_000,
    ),
    case(
        "shm+buy",
        StoreKind::Shm,
        LockMode::Buy,
        8,
        5_000_000,
        "mutex",
        300_000,
    ),
    case(
        "shm+atomic",
        StoreKind::Shm,
        LockMode::Atomic,
        2,
        5_000_000,
        "atomic",
        500_000,
    ),
    case(
        "shm+atomic",
        StoreKind::Shm,
        LockMode::Atomic,
        8,
        5_000_000,
        "atomic",
        300_000,
    ),
    case(
        "file+buy",
        StoreKind::File,
        LockMode::Buy,
        2,
        5_000,
        "file",
        5_000,
    ),
    case(
        "file+buy",
        StoreKind::File,
        LockMode::Buy,
        8,
        5_000,
        "file",
        5_000,
    ),
    case(
        "server",
        StoreKind::Server,
        LockMode::None,
        2,
        100_000,
        "pipe",
        30_000,
    ),
    case(
        "server",
        StoreKind::Server,
        LockMode::None,
        8,
        100_000,
        "pipe",
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
    case(name, store, lock, workers, DB_TICKETS, "", 0)
}

/// Tickets in a database row: every purchase is a committed transaction
/// (thousands a second, not millions).
const DB_TICKETS: u64 = 3_000;

const fn case(
    name: &'static str,
    store: StoreKind,
    lock: LockMode,
    workers: usize,
    tickets: u64,
    anchor: &'static str,
    py_tickets: u64,
) -> Case {
    Case {
        name,
        store,
        lock,
        workers,
        tickets,
        anchor,
        py_tickets,
    }
}

/// Most rounds a measurement may take.
pub(crate) const MAX_ROUNDS: u32 = 50;

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
pub(crate) fn run(args: &BenchConfig) -> anyhow::Result<Exit> {
    let names = scenario_names();
    if let Some(only) = args.only.as_deref() {
        if !names.iter().any(|name| name.contains(only)) {
            return Ok(crate::app::usage(format!(
                "--only '{only}' matches no scenario (allowed: {})",
                names.join(", ")
            )));
        }
    }
    // Ctrl-C, SIGTERM or SIGHUP is taken as a value between measurements
    // (the sales take it themselves), so the anchors' scratch directory is
    // removed on the way out instead of left behind by a default handler.
    let nested = process::block_supervisor_signals();
    let mut measured = Measured::default();
    let result = measure(args, &mut measured);
    if !nested {
        process::unblock_supervisor_signals();
    }
    let exit = match result {
        Err(e) => match e.downcast_ref::<Stopped>() {
            Some(&Stopped(sig)) => Exit::Signal(sig),
            None => return Err(e),
        },
        Ok(exit) => exit,
    };
    if args.json && exit == Exit::Success {
        write_json(args, measured)?;
    }
    Ok(exit)
}

/// Measures every row `args` asks for into `measured`, printing each row
/// as it comes unless the output is JSON; ends early with the signal that
/// stopped it.
fn measure(args: &BenchConfig, measured: &mut Measured) -> anyhow::Result<Exit> {
    let anchors = args.anchors.as_ref().map(Anchors::build).transpose()?;
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
            if let Ending::Interrupted(sig) = report.ending {
                return Ok(Exit::Signal(sig));
            }
            anyhow::ensure!(
                report.is_exact(),
                "{} with {} buyers did not sell exactly",
                case.name,
                case.workers
            );
            ours.push(report.ops_per_sec);
            if let Some(anchors) = anchors.as_ref().filter(|_| !case.anchor.is_empty()) {
                let ran = anchors.c_ops(case.anchor, case.workers, case.tickets * 2);
                c.push(stopped_or(ran)?);
                let ran = anchors.py_ops(case.anchor, case.workers, case.py_tickets);
                py.push(stopped_or(ran)?);
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
        let row = match stepped(args.rounds)? {
            Ok(row) => row,
            Err(stop) => return Ok(stop),
        };
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
        if let Ending::Interrupted(sig) = report.ending {
            return Ok(Exit::Signal(sig));
        }
        ours.push(START_WORKERS as f64 / (report.processes_ms / 1e3));
        if let Some(anchors) = &anchors {
            c.push(stopped_or(anchors.c_start())?);
            py.push(stopped_or(anchors.py_start())?);
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

/// Why a reference program's run ended bench: a stop signal that arrived
/// meanwhile (Ctrl-C reaches the program too) wins over its failure.
#[derive(Debug, thiserror::Error)]
#[error("stopped by {}", process::signal_name(*.0))]
struct Stopped(i32);

/// `ran`, unless a stop signal arrived while it ran.
fn stopped_or(ran: anyhow::Result<f64>) -> anyhow::Result<f64> {
    if let Some(sig) = pending_stop() {
        return Err(Stopped(sig).into());
    }
    ran
}

/// A stop signal (not SIGCHLD) that is waiting to be taken, if any.
fn pending_stop() -> Option<i32> {
    while let Some(sig) = process::wait_signal(Duration::ZERO) {
        if sig != libc::SIGCHLD && sig != libc::SIGTSTP {
            return Some(sig);
        }
    }
    None
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
    SaleConfig::bare(workers, tickets, wants, store, lock, u64::from(round))
}

/// Tickets in the stepped measurement: one granted step each for the read
/// and the write.
const STEPPED_TICKETS: u64 = 5_000;

/// The scheduler's round trip: the parent grants a parked buyer its step,
/// the buyer takes it and parks at its next gate, the parent sees it parked
/// and grants again. Buyer 1 takes every step (`--schedule 1 --then
/// lowest`), so the time between two of its reads is two round trips. The
/// row holds the median in microseconds.
fn stepped(rounds: u32) -> anyhow::Result<Result<Row, Exit>> {
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
        if let Ending::Interrupted(sig) = report.ending {
            return Ok(Err(Exit::Signal(sig)));
        }
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
    Ok(Ok(row(
        "stepped: grant -> step -> park".into(),
        2,
        &ours,
        &[],
        &[],
        US_PER_STEP,
    )))
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
fn print_header(args: &BenchConfig) -> io::Result<()> {
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

fn print_row(row: &Row, args: &BenchConfig) -> io::Result<()> {
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
fn write_json(args: &BenchConfig, measured: Measured) -> io::Result<()> {
    let document = BenchJson {
        rounds: args.rounds,
        only: args.only.clone(),
        anchors: args.anchors.as_ref().map(AnchorSource::dir),
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

/// Where `--anchors` takes the reference programs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AnchorSource {
    /// The ones in `bench/anchors/`, built into this binary.
    Ours,
    /// `anchor.c` and `anchor.py` in this directory, with the same command
    /// line: to set another machine's or another author's figures beside.
    Dir(PathBuf),
}

/// `ticketlab bench`'s plain settings.
#[derive(Debug, Clone)]
pub(crate) struct BenchConfig {
    /// Rounds per measurement; the median is reported.
    pub rounds: u32,
    /// JSON lines instead of the table.
    pub json: bool,
    /// Only the scenarios whose name contains this.
    pub only: Option<String>,
    /// Run the C and Python reference programs beside each measurement.
    pub anchors: Option<AnchorSource>,
}

/// The C reference, the practical limit of each mechanism.
const ANCHOR_C: &str = include_str!("../bench/anchors/anchor.c");
/// The Python `multiprocessing` peer of each mechanism.
const ANCHOR_PY: &str = include_str!("../bench/anchors/anchor.py");

/// The reference programs, ready to run from a private scratch directory
/// that goes with this value: on every way out (an error, a panic, a
/// refusal), since a signal is taken as a value too while bench runs.
struct Anchors {
    scratch: PathBuf,
    c: PathBuf,
    py: PathBuf,
}

impl AnchorSource {
    /// Where the programs' sources are, for `bench --json`.
    fn dir(&self) -> PathBuf {
        match self {
            AnchorSource::Ours => PathBuf::from("bench/anchors"),
            AnchorSource::Dir(dir) => dir.clone(),
        }
    }
}

impl Anchors {
    /// Writes out (or finds) the sources and builds the C program, all in
    /// `$TMPDIR/ticketlab-anchors-<nonce>/` (the sources' directory may be
    /// read-only).
    fn build(source: &AnchorSource) -> anyhow::Result<Anchors> {
        let tmp = std::env::temp_dir();
        let scratch = files::create_private_dir(&tmp, "ticketlab-anchors-")
            .with_context(|| format!("a scratch directory in {}", tmp.display()))?;
        let mut anchors = Anchors {
            c: scratch.join("anchor"),
            py: scratch.join("anchor.py"),
            scratch,
        };
        let c_source = match source {
            AnchorSource::Ours => {
                let c = anchors.scratch.join("anchor.c");
                std::fs::write(&c, ANCHOR_C)?;
                std::fs::write(&anchors.py, ANCHOR_PY)?;
                c
            }
            AnchorSource::Dir(dir) => {
                anchors.py = dir.join("anchor.py");
                dir.join("anchor.c")
            }
        };
        let out = Command::new("cc")
            .args(["-O2", "-pthread", "-o"])
            .arg(&anchors.c)
            .arg(&c_source)
            .output()
            .context("cc (to build the C reference)")?;
        anyhow::ensure!(
            out.status.success(),
            "building {} failed: {}",
            c_source.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(anchors)
    }

    /// Purchases per second of the C program selling `tickets` in `mode`.
    fn c_ops(&self, mode: &str, workers: usize, tickets: u64) -> anyhow::Result<f64> {
        json_field(
            Command::new(&self.c)
                .args([mode, &workers.to_string(), &tickets.to_string()])
                .arg(&self.scratch),
            "purchases_per_sec",
        )
    }

    /// Buyers per second the C program forks and reaps.
    fn c_start(&self) -> anyhow::Result<f64> {
        json_field(
            Command::new(&self.c).args(["fork", &START_WORKERS.to_string(), "0"]),
            "buyers_per_sec",
        )
    }

    /// Purchases per second of the Python peer selling `tickets` in `mode`.
    fn py_ops(&self, mode: &str, workers: usize, tickets: u64) -> anyhow::Result<f64> {
        json_field(
            Command::new("python3")
                .arg(&self.py)
                .args([mode, &workers.to_string(), &tickets.to_string()])
                .arg(&self.scratch),
            "purchases_per_sec",
        )
    }

    /// Buyers per second the Python peer starts and joins.
    fn py_start(&self) -> anyhow::Result<f64> {
        json_field(
            Command::new("python3")
                .arg(&self.py)
                .args(["fork", &START_WORKERS.to_string(), "0"]),
            "buyers_per_sec",
        )
    }
}

impl Drop for Anchors {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// The last line of `cmd`'s output, read as JSON, and its number `field`.
fn json_field(cmd: &mut Command, field: &str) -> anyhow::Result<f64> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().context("no output")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    v[field]
        .as_f64()
        .with_context(|| format!("no {field} in {line}"))
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
