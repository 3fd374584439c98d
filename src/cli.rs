//! The command line, and its translation into plain settings. No other
//! module sees clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{
    self, DbFile, LockMode, MAX_TICKETS, MAX_WORKERS, SaleConfig, StoreKind, Wants, parse_duration,
};
use crate::demo::print::PrintLock;
use crate::explore::{ExploreConfig, Find};
use crate::schedule::Schedule;
use crate::scheduler::Then;

/// ticketlab: watch processes race for tickets, then fix the race.
#[derive(Debug, Parser)]
#[command(
    name = "ticketlab",
    version,
    about = "A lab for process synchronisation: forked buyers race for tickets in shared memory, a file or a seller process",
    after_help = "Start with `ticketlab labs`, then `ticketlab lab 1` and `ticketlab run 1`,\nor predict first and let the run grade you: `ticketlab check 1`.",
    // A lab's preset comes first and the student's flags after: the last wins.
    args_override_self = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one ticket sale with real processes and say what happened.
    Sell(SellCommandArgs),
    /// List the labs.
    Labs,
    /// Show a lab's sheet.
    Lab(LabArgs),
    /// Run a lab's experiment with its preset flags; flags given here override the preset.
    Run(RunArgs),
    /// Predict, then check: answer a lab's Predict questions, run the lab, and see which the run bore out.
    #[command(
        after_long_help = "Examples:\n  ticketlab check 2                          asks each question, runs lab 2, grades your answers\n  ticketlab check 2 --answers-file lab2.txt  reads the answers from a file instead\n  ticketlab check 3 --json --workers 20      one JSON object; 20 buyers, not 100\n\nAn answers file holds one `id = value` line per question (the ids are shown as check asks);\n`#` starts a comment:\n  # lab 2, my predictions\n  bought = 40\n  remaining = 1\n  ...\nA number may be written 20,000; a choice is one of the listed names; a set lists names\nseparated by commas (- for none). Each checked lab is ticked in `ticketlab labs`\n(kept in $XDG_STATE_HOME/ticketlab/progress.json). Exit 0 whatever the grade."
    )]
    Check(CheckArgs),
    /// Lab 1: processes printing at once, with and without a lock.
    Print(PrintArgs),
    /// Lab 11: a child process that is, or is not, a daemon.
    Daemon(DaemonArgs),
    /// Measure every store's throughput and the cost of starting buyers.
    Bench(BenchArgs),
    /// Be the scheduler: step real buyer processes one shared step at a time (keys 1-9, a, u, r, s, q). Unless given, 2 buyers, 1 ticket, --lock none.
    #[command(
        after_long_help = "Examples:\n  ticketlab step                                  2 buyers, 1 ticket, no lock: make it oversell\n  ticketlab step --lock buy                       try again under the lock\n  ticketlab step -w 3 --schedule 1,1,2,2,2,1       start from a schedule, then go on by hand\n\nKeys: 1-9 step that buyer; arrows or Tab select, Enter or space steps the selected one;\na runs the rest freely; u undoes the last step; r restarts; s saves the schedule; q quits.\nWithout a terminal, step needs --schedule (it then runs like sell --schedule)."
    )]
    Step(SellArgs),
    /// Show the sales in a database: tickets, the count left and every run's purchases, so an oversell across runs is plain.
    #[command(
        after_long_help = "Examples:\n  ticketlab sales --db-url postgresql://host/tickets               every sale on the server\n  ticketlab sales --db-url postgresql://host/tickets --sale room1  one sale\n  ticketlab sales --db lab.sqlite                                  the sales in a SQLite file\n\nWithout --db-url or --db, the server named by $TICKETLAB_DB_URL is read."
    )]
    Sales(SalesArgs),
    /// Run every interleaving of a small sale on real processes and count how each ends.
    #[command(
        after_long_help = "Examples:\n  ticketlab explore                    2 buyers, 1 ticket, no lock: how many schedules oversell\n  ticketlab explore -w 3 --lock buy    every schedule is exact\n  ticketlab explore -w 3 --preemptions 1 --find oversold"
    )]
    Explore(ExploreArgs),
}

/// `ticketlab lab N`.
#[derive(Debug, Clone, Args)]
pub struct LabArgs {
    /// The lab: its number (3 or 03) or short name (see `ticketlab labs`).
    #[arg(value_name = "LAB")]
    pub lab: String,
    /// Also show Observe, Explain and Try this: read them after your run.
    #[arg(long)]
    pub explain: bool,
    /// Also show the answers to the Predict questions (implies --explain).
    #[arg(long)]
    pub answers: bool,
}

/// `ticketlab run N [flags]`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The lab: its number (3 or 03) or short name (see `ticketlab labs`).
    #[arg(value_name = "LAB")]
    pub lab: String,
    /// Flags of the command the lab runs (`sell`, `step`, `explore`, `print` or `daemon`), overriding its preset.
    #[arg(
        value_name = "FLAGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub flags: Vec<String>,
}

/// `ticketlab check N [flags]`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The lab: its number (3 or 03) or short name (see `ticketlab labs`).
    #[arg(value_name = "LAB")]
    pub lab: String,
    /// Read the answers from FILE (`id = value` lines, `#` comments) instead of asking.
    #[arg(long, value_name = "FILE")]
    pub answers_file: Option<PathBuf>,
    /// Print one JSON object: each prediction, the run's figure, and the score.
    #[arg(long)]
    pub json: bool,
    /// Flags of the command the lab runs, overriding its preset as with `run`; give them after check's own flags.
    #[arg(
        value_name = "FLAGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub flags: Vec<String>,
}

impl CheckArgs {
    /// The plain settings.
    pub fn into_config(self) -> crate::check::CheckConfig {
        crate::check::CheckConfig {
            lab: self.lab,
            answers_file: self.answers_file,
            json: self.json,
            flags: self.flags,
        }
    }
}

/// Whether `ticketlab SUB` has the flag `--LONG`: `check` asks for a quiet
/// view only of the commands that have one.
pub fn takes_flag(sub: &str, long: &str) -> bool {
    use clap::CommandFactory;
    Cli::command()
        .find_subcommand(sub)
        .is_some_and(|cmd| cmd.get_arguments().any(|a| a.get_long() == Some(long)))
}

/// `ticketlab print`.
#[derive(Debug, Clone, Args)]
pub struct PrintArgs {
    /// Worker processes [1-64].
    #[arg(short, long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub workers: u64,
    /// Unlocked lines each worker prints [1-100000].
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub lines: u64,
    /// none: the begin/end pairs are unlocked; pair: each pair is printed under the shared mutex; all: each worker's whole body (lines and pair) is under it.
    #[arg(short, long, value_name = "LOCK", default_value = "none", value_parser = parse_print_lock)]
    pub lock: PrintLock,
    /// Seed of the workers' pauses [default: drawn].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// live and plain print every line; quiet only the counts.
    #[arg(long, value_name = "VIEW", value_parser = parse_view)]
    pub view: Option<config::ViewMode>,
    /// Print only one JSON object with the counts.
    #[arg(long)]
    pub json: bool,
}

/// `ticketlab daemon`.
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// Make the child a daemon: it is ended when the parent's main code finishes.
    #[arg(long, conflicts_with = "orphan")]
    pub daemon: bool,
    /// How long the parent's main code runs [0-60s].
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = parse_duration)]
    pub parent_runs: Duration,
    /// How long the child runs before its last line [0-60s].
    #[arg(long, value_name = "DUR", default_value = "3s", value_parser = parse_duration)]
    pub child_runs: Duration,
    /// The parent exits without waiting; the child lives on, re-parented, and ends itself.
    // The orphan writes straight to stdout after the parent has gone, so
    // nothing can keep stdout to one JSON object.
    #[arg(long, conflicts_with = "json")]
    pub orphan: bool,
    /// live and plain print the timeline; quiet only the outcome.
    #[arg(long, value_name = "VIEW", value_parser = parse_view)]
    pub view: Option<config::ViewMode>,
    /// Print only one JSON object with the outcome.
    #[arg(long)]
    pub json: bool,
}

fn parse_print_lock(s: &str) -> Result<PrintLock, String> {
    s.parse()
        .map_err(|_| format!("unknown lock '{s}' (allowed: none, pair, all)"))
}

/// Flags of one sale. Every field is optional so a lab's preset can fill
/// what the command line leaves out.
#[derive(Debug, Clone, Default, Args)]
pub struct SaleArgs {
    /// Buyer processes [1-1000, default 100].
    #[arg(short, long, value_name = "N", value_parser = parse_workers, allow_negative_numbers = true)]
    pub workers: Option<u64>,
    /// Tickets on sale [0-10^12, default 1].
    #[arg(short, long, value_name = "N", value_parser = parse_tickets, allow_negative_numbers = true)]
    pub tickets: Option<u64>,
    /// Where the count lives: shm (shared memory), file (JSON file), server (a seller process), queue (a seller behind one locked request pipe), sqlite (a SQLite file), postgres (a PostgreSQL server, --db-url) [default shm].
    #[arg(short, long, value_name = "STORE", value_parser = parse_store)]
    pub store: Option<StoreKind>,
    /// Lock: none, write (only the write), buy (read+check+write), robust (as buy, with a robust mutex), task (search+buy), join (one buyer at a time), atomic (compare-and-swap; in a database the conditional UPDATE), serializable (database stores: a SERIALIZABLE transaction, retried) [default buy].
    #[arg(short, long, value_name = "LOCK", value_parser = parse_lock)]
    pub lock: Option<LockMode>,
    /// Tickets each buyer tries to buy, or `all` to keep buying until sold out [default 1].
    #[arg(long, value_name = "N|all", value_parser = parse_wants)]
    pub wants: Option<Wants>,
    /// Time each buyer process takes to start before it can work, as Python's multiprocessing pays tens of ms to start a worker [default 0].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub start_delay: Option<Duration>,
    /// Latency of the search that only shows the count, outside the lock (inside it under --lock task) [default 0].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub search_delay: Option<Duration>,
    /// Latency between reading the count and acting on it, e.g. 50us, 100ms, 0.2s [default 0].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub read_delay: Option<Duration>,
    /// Latency before the write lands [default 0].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub write_delay: Option<Duration>,
    /// Draw each delay uniformly from [0, DUR] with the buyer's own seeded RNG.
    #[arg(long, overrides_with = "no_jitter")]
    pub jitter: bool,
    /// Fixed delays (turns off a lab preset's --jitter).
    #[arg(long, overrides_with = "jitter")]
    pub no_jitter: bool,
    /// Seed of the buyers' RNGs [default: drawn, and printed so the run can be repeated].
    #[arg(long, value_name = "N", value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// The file store's JSON file, or the sqlite store's database, kept afterwards: a regular file or a new path [default: a temporary file, removed].
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Overwrite the --db file even if it holds something other than a ticket store (sqlite: start a new database).
    #[arg(long)]
    pub db_reset: bool,
    /// Be the scheduler: which buyer takes each shared step, e.g. 1,1,2,2,2,1 or 1x2,2x3,1 or 1S,1R,2S,2R,2W,1W (buyers from 1).
    #[arg(long, value_name = "SCHED", value_parser = parse_schedule, conflicts_with = "schedule_file")]
    pub schedule: Option<Schedule>,
    /// Read the schedule from a file (as written by --save-schedule).
    #[arg(long, value_name = "FILE")]
    pub schedule_file: Option<PathBuf>,
    /// Run every buyer's task one after another in a single process, with the same delays and no lock: the baseline without concurrency.
    #[arg(long)]
    pub one_process: bool,
    /// Buyer BUYER (from 1) kills itself (SIGKILL) right before its first STEP: a step name or letter, e.g. 1:write or 1:W, keyed to its own steps, not to time.
    #[arg(long, value_name = "BUYER:STEP", value_parser = parse_crash)]
    pub crash: Option<config::Crash>,
    /// When the schedule runs out: lowest (the lowest-numbered buyer that can move, so the run stays fixed) or free [default lowest].
    #[arg(long, value_name = "WHAT", value_parser = parse_then)]
    pub then: Option<Then>,
    /// The PostgreSQL server of --store postgres, e.g. postgresql://user:pw@host/db or postgresql:///db?host=/tmp [default: $TICKETLAB_DB_URL].
    #[arg(long, value_name = "URL")]
    pub db_url: Option<String>,
    /// Database stores: the sale's name; runs that name the same sale share it (the first creates it with --tickets) [default: a sale of the run's own].
    #[arg(long, value_name = "NAME")]
    pub sale: Option<String>,
}

/// The environment variable that names the PostgreSQL server when
/// `--db-url` is not given (`scripts/with-postgres` sets it).
pub const DB_URL_ENV: &str = "TICKETLAB_DB_URL";

/// How a run shows itself.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// live (a live screen), plain (a line every 250 ms), quiet (only the summary) [default: live on a terminal, else plain].
    #[arg(long, value_name = "VIEW", value_parser = parse_view)]
    pub view: Option<config::ViewMode>,
    /// Print exactly one JSON object on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// After the run, print every operation in time order, the schedule, and name each lost update.
    #[arg(long)]
    pub trace: bool,
    /// Write the run's interleaving to FILE, as a schedule --schedule-file replays.
    #[arg(long, value_name = "FILE")]
    pub save_schedule: Option<PathBuf>,
}

/// `ticketlab sell`.
#[derive(Debug, Clone, Args)]
pub struct SellArgs {
    /// The sale.
    #[command(flatten)]
    pub sale: SaleArgs,
    /// The output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `ticketlab sell`: one sale, or with `--step` the same as `ticketlab step`.
#[derive(Debug, Clone, Args)]
pub struct SellCommandArgs {
    /// The sale and its output.
    #[command(flatten)]
    pub sell: SellArgs,
    /// Be the scheduler at the keys: the same as `ticketlab step` with these flags.
    #[arg(long)]
    pub step: bool,
}

/// `ticketlab sales`.
#[derive(Debug, Clone, Args)]
pub struct SalesArgs {
    /// The PostgreSQL server [default: $TICKETLAB_DB_URL].
    #[arg(long, value_name = "URL", conflicts_with = "db")]
    pub db_url: Option<String>,
    /// A SQLite database file written by `--store sqlite --db PATH`.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Show only this sale.
    #[arg(long, value_name = "NAME")]
    pub sale: Option<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

impl SalesArgs {
    /// The plain settings: where the sales are, or what is missing.
    pub(crate) fn into_config(self) -> Result<crate::sales::SalesConfig, String> {
        let engine = match (self.db, self.db_url) {
            (Some(path), _) => crate::store::database::Engine::Sqlite(path),
            (None, Some(url)) => crate::store::database::Engine::Postgres(url),
            (None, None) => match std::env::var(DB_URL_ENV) {
                Ok(url) if !url.is_empty() => crate::store::database::Engine::Postgres(url),
                _ => {
                    return Err(format!(
                        "sales needs --db-url URL (a PostgreSQL server), --db PATH (a SQLite file) or ${DB_URL_ENV}"
                    ));
                }
            },
        };
        if let crate::store::database::Engine::Postgres(url) = &engine {
            crate::store::database::check_url(url).map_err(|e| format!("--db-url: {e}"))?;
        }
        if let Some(sale) = &self.sale {
            if !config::valid_sale_name(sale) {
                return Err(config::ConfigError::SaleName(sale.clone()).to_string());
            }
        }
        Ok(crate::sales::SalesConfig {
            engine,
            sale: self.sale,
            json: self.json,
        })
    }
}

/// `ticketlab explore`.
#[derive(Debug, Clone, Args)]
pub struct ExploreArgs {
    /// Buyer processes [1-4].
    #[arg(short, long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=4))]
    pub workers: u64,
    /// Tickets on sale [0-5].
    #[arg(short, long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=5))]
    pub tickets: u64,
    /// Where the count lives: shm, file, server, queue.
    #[arg(short, long, value_name = "STORE", default_value = "shm", value_parser = parse_store)]
    pub store: StoreKind,
    /// The lock setting: none, write, buy, robust, task, join, atomic.
    #[arg(short, long, value_name = "LOCK", default_value = "none", value_parser = parse_lock)]
    pub lock: LockMode,
    /// Tickets each buyer tries to buy [1-3].
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=3))]
    pub wants: u64,
    /// Explore only schedules with at most K preemptions (switches away from a buyer that could go on).
    #[arg(long, value_name = "K")]
    pub preemptions: Option<usize>,
    /// Stop after N real runs (one run per trace, which may stand for many schedules).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_schedules: Option<u64>,
    /// Stop at the first schedule that ends so: oversold, lost or deadlock.
    #[arg(long, value_name = "WHAT", value_parser = parse_find)]
    pub find: Option<Find>,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    pub json: bool,
}

fn parse_find(s: &str) -> Result<Find, String> {
    match s {
        "oversold" => Ok(Find::Oversold),
        "lost" => Ok(Find::Lost),
        "deadlock" => Ok(Find::Deadlock),
        _ => Err(format!("unknown '{s}' (allowed: oversold, lost, deadlock)")),
    }
}

impl ExploreArgs {
    /// The plain settings.
    pub fn into_config(self) -> Result<ExploreConfig, config::ConfigError> {
        let sale = SaleConfig {
            workers: self.workers as usize,
            tickets: self.tickets,
            wants: Wants::Count(self.wants),
            store: self.store,
            lock: self.lock,
            start_delay: Duration::ZERO,
            search_delay: Default::default(),
            read_delay: Duration::ZERO,
            write_delay: Duration::ZERO,
            jitter: false,
            seed: 0,
            db: None,
            trace: false,
            schedule: None,
            one_process: false,
            crash: None,
            db_url: None,
            sale: None,
        };
        if self.store.is_database() {
            return Err(config::ConfigError::ExploreDatabase);
        }
        sale.validate()?;
        Ok(ExploreConfig {
            sale,
            preemptions: self.preemptions,
            max_schedules: self.max_schedules.map(|n| n as usize),
            find: self.find,
        })
    }
}

/// `ticketlab bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Rounds per measurement; the median is reported [1-50].
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
    /// Print the results as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Run only the scenarios whose name contains this, e.g. shm+buy, server, start.
    #[arg(long, value_name = "NAME")]
    pub only: Option<String>,
    /// Directory of the C and Python reference programs (cbench.c, pybench.py) to run side by side.
    #[arg(long, value_name = "DIR")]
    pub anchors: Option<PathBuf>,
}

/// A whole number in `lo..=hi`, spaces around it allowed (as durations
/// allow them), and an error that says what is allowed: clap names the flag.
fn whole_in(s: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let allowed = || format!("must be a whole number from {lo} to {hi}");
    match s.trim().parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(allowed()),
    }
}

fn parse_workers(s: &str) -> Result<u64, String> {
    whole_in(s, 1, MAX_WORKERS as u64)
}

fn parse_tickets(s: &str) -> Result<u64, String> {
    whole_in(s, 0, MAX_TICKETS)
}

fn parse_seed(s: &str) -> Result<u64, String> {
    whole_in(s, 0, u64::MAX)
}

fn parse_schedule(s: &str) -> Result<Schedule, String> {
    Schedule::parse(s)
}

fn parse_then(s: &str) -> Result<Then, String> {
    match s {
        "lowest" => Ok(Then::Lowest),
        "free" => Ok(Then::Free),
        _ => Err(format!("unknown '{s}' (allowed: lowest, free)")),
    }
}

fn parse_crash(s: &str) -> Result<config::Crash, String> {
    s.parse()
}

fn parse_store(s: &str) -> Result<StoreKind, String> {
    s.parse()
}

fn parse_lock(s: &str) -> Result<LockMode, String> {
    s.parse()
}

fn parse_wants(s: &str) -> Result<Wants, String> {
    s.parse()
}

fn parse_view(s: &str) -> Result<config::ViewMode, String> {
    s.parse()
}

impl SaleArgs {
    /// Fills the unset flags from `preset` (a lab's flags).
    pub fn over(self, preset: SaleArgs) -> SaleArgs {
        SaleArgs {
            workers: self.workers.or(preset.workers),
            tickets: self.tickets.or(preset.tickets),
            store: self.store.or(preset.store),
            lock: self.lock.or(preset.lock),
            wants: self.wants.or(preset.wants),
            start_delay: self.start_delay.or(preset.start_delay),
            search_delay: self.search_delay.or(preset.search_delay),
            read_delay: self.read_delay.or(preset.read_delay),
            write_delay: self.write_delay.or(preset.write_delay),
            jitter: !self.no_jitter && (self.jitter || preset.jitter),
            no_jitter: self.no_jitter,
            seed: self.seed.or(preset.seed),
            // The reset goes with the file it was given for: a preset's
            // --db-reset never applies to a --db given on the command line.
            db_reset: if self.db.is_some() {
                self.db_reset
            } else {
                self.db_reset || preset.db_reset
            },
            db: self.db.or(preset.db),
            schedule: self.schedule.or(preset.schedule),
            schedule_file: self.schedule_file.or(preset.schedule_file),
            then: self.then.or(preset.then),
            one_process: self.one_process || preset.one_process,
            crash: self.crash.or(preset.crash),
            db_url: self.db_url.or(preset.db_url),
            sale: self.sale.or(preset.sale),
        }
    }

    /// The plain settings, with defaults applied and combinations checked.
    pub fn into_config(self, trace: bool) -> Result<SaleConfig, config::ConfigError> {
        if self.db_reset && self.db.is_none() {
            return Err(config::ConfigError::ResetWithoutDb);
        }
        let cfg = SaleConfig {
            workers: self.workers.unwrap_or(100) as usize,
            tickets: self.tickets.unwrap_or(1),
            wants: self.wants.unwrap_or(Wants::Count(1)),
            store: self.store.unwrap_or(StoreKind::Shm),
            // One process needs no lock: the default lock does not apply,
            // and a lock given is refused by `validate`.
            lock: self.lock.unwrap_or(if self.one_process {
                LockMode::None
            } else {
                LockMode::Buy
            }),
            start_delay: self.start_delay.unwrap_or_default(),
            search_delay: self.search_delay.unwrap_or_default(),
            read_delay: self.read_delay.unwrap_or_default(),
            write_delay: self.write_delay.unwrap_or_default(),
            jitter: self.jitter && !self.no_jitter,
            seed: self.seed.unwrap_or_else(crate::seed::draw),
            db: self.db.map(|path| DbFile {
                path,
                reset: self.db_reset,
            }),
            trace,
            schedule: match (self.schedule, self.schedule_file) {
                (Some(s), _) => Some((s, self.then.unwrap_or(Then::Lowest))),
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        config::ConfigError::ScheduleFile(format!("{}: {e}", path.display()))
                    })?;
                    let schedule = Schedule::parse(&text).map_err(|e| {
                        config::ConfigError::ScheduleFile(format!("{}: {e}", path.display()))
                    })?;
                    Some((schedule, self.then.unwrap_or(Then::Lowest)))
                }
                (None, None) if self.then.is_some() => {
                    return Err(config::ConfigError::ThenWithoutSchedule);
                }
                (None, None) => None,
            },
            one_process: self.one_process,
            crash: self.crash,
            // The environment names the server only where one is wanted:
            // `--db-url` given with another store is a mistake, a variable
            // left set is not.
            db_url: self.db_url.or_else(|| {
                (self.store == Some(StoreKind::Postgres))
                    .then(|| std::env::var(DB_URL_ENV).ok())
                    .flatten()
                    .filter(|u| !u.is_empty())
            }),
            sale: self.sale,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn command_line_flags_win_over_a_preset() {
        let cli = SaleArgs {
            lock: Some(LockMode::Task),
            ..SaleArgs::default()
        };
        let preset = SaleArgs {
            lock: Some(LockMode::None),
            workers: Some(20),
            ..SaleArgs::default()
        };
        let merged = cli.over(preset);
        assert_eq!(merged.lock, Some(LockMode::Task));
        assert_eq!(merged.workers, Some(20));
    }

    #[test]
    fn db_reset_needs_db_and_goes_with_its_file() {
        let reset_alone = SaleArgs {
            db_reset: true,
            store: Some(StoreKind::File),
            ..SaleArgs::default()
        };
        assert_eq!(
            reset_alone.clone().into_config(false).err(),
            Some(config::ConfigError::ResetWithoutDb)
        );
        let preset = SaleArgs {
            db: Some("lab.json".into()),
            ..reset_alone
        };
        let own_file = SaleArgs {
            db: Some("mine.json".into()),
            ..SaleArgs::default()
        };
        assert!(!own_file.over(preset.clone()).db_reset);
        let merged = SaleArgs::default().over(preset);
        let cfg = merged.into_config(false).unwrap();
        assert_eq!(
            cfg.db,
            Some(DbFile {
                path: "lab.json".into(),
                reset: true
            })
        );
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cfg = SaleArgs {
            seed: Some(1),
            ..SaleArgs::default()
        }
        .into_config(false)
        .unwrap();
        assert_eq!((cfg.workers, cfg.tickets), (100, 1));
        assert_eq!((cfg.store, cfg.lock), (StoreKind::Shm, LockMode::Buy));
    }
}
