//! The plain, validated settings of a sale. Nothing past `cli.rs` sees clap.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::step::Step;

/// Where the ticket count lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// An integer in the shared-memory segment.
    Shm,
    /// A JSON file `{"count": N}`, rewritten whole on every write.
    File,
    /// A seller process that owns the count; buyers talk to it over pipes.
    Server,
    /// The server's seller behind a queue: one request pipe that every
    /// buyer writes under the segment's mutex, as Python's
    /// `multiprocessing.Queue` guards its pipe with a lock.
    Queue,
    /// A SQLite database file (embedded, bundled): every buyer opens its
    /// own connection after the fork.
    Sqlite,
    /// A PostgreSQL server at `--db-url`, which several runs (and machines)
    /// can share through one `--sale`.
    Postgres,
}

/// How buyers are kept from trampling each other: the instructor's switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// No lock at all: the racy baseline.
    None,
    /// Only the write is locked: too fine, still oversells.
    Write,
    /// Read, check and write under the mutex.
    Buy,
    /// As `buy`, under a robust mutex: a holder that dies leaves it to the
    /// next buyer, who is told (`EOWNERDEAD`) and repairs the count.
    Robust,
    /// Search and buy together under the mutex.
    Task,
    /// No lock; each buyer starts only after the previous one exited.
    Join,
    /// A compare-and-swap loop on the shared count; in a database, the
    /// conditional `UPDATE … WHERE count > 0`.
    Atomic,
    /// Database stores only: read and write in a SERIALIZABLE transaction,
    /// retried whenever the database refuses it as a serialization failure.
    Serializable,
}

/// How many tickets each buyer tries to buy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    /// Stop after this many purchases (or when sold out).
    Count(u64),
    /// Keep buying until sold out.
    All,
}

/// Everything a sale needs to run, already checked.
#[derive(Debug, Clone)]
pub struct SaleConfig {
    /// Number of buyer processes.
    pub workers: usize,
    /// Tickets on sale at the start.
    pub tickets: u64,
    /// Tickets each buyer tries to buy.
    pub wants: Wants,
    /// Where the count lives.
    pub store: StoreKind,
    /// The lock setting.
    pub lock: LockMode,
    /// Simulated time a buyer process takes to start before it can work
    /// (a Python worker pays tens of milliseconds): paid in parallel when
    /// buyers start together, one after another under `join`.
    pub start_delay: Duration,
    /// Simulated latency of the search that only shows the count: the work
    /// outside the lock (inside it under `task`).
    pub search_delay: Duration,
    /// Simulated latency between reading the count and deciding.
    pub read_delay: Duration,
    /// Simulated latency before the write lands.
    pub write_delay: Duration,
    /// Draw each delay uniformly from `[0, delay]` instead of using it as is.
    pub jitter: bool,
    /// Seed of every buyer's RNG.
    pub seed: u64,
    /// The JSON file of the file store, kept afterwards; `None` = a temporary one.
    pub db: Option<DbFile>,
    /// Record every shared operation for the post-mortem.
    pub trace: bool,
    /// The schedule the parent follows, and what it does after it; `None`
    /// for a free run.
    pub schedule: Option<(crate::schedule::Schedule, crate::scheduler::Then)>,
    /// `--one-process`: one process runs every buyer's task, one after
    /// another, with the same delays: the baseline without concurrency.
    pub one_process: bool,
    /// `--crash`: the buyer that kills itself, and before which step.
    pub crash: Option<Crash>,
    /// `--db-url`: the PostgreSQL server of `--store postgres`.
    pub db_url: Option<String>,
    /// `--sale NAME`: the database row several runs share; `None` = a sale
    /// of this run's own.
    pub sale: Option<String>,
}

/// `--crash BUYER:STEP`: buyer BUYER (from 1) SIGKILLs itself right before
/// its first shared step STEP. Keyed to the buyer's own steps, not to time,
/// so the same flag kills at the same place on every run; a buyer that
/// never reaches the step (it found the tickets gone) lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crash {
    /// The buyer's index (its number minus one).
    pub buyer: usize,
    /// The step it dies before.
    pub step: Step,
}

/// What `--crash` accepts after the colon, for its error messages.
const CRASH_STEPS: &str = "search, read, lock, write, truncate, cas, unlock, request, reply, \
                           or a letter S R L W T C U Q A";

impl FromStr for Crash {
    type Err = String;
    fn from_str(s: &str) -> Result<Crash, String> {
        let bad = || format!("'{s}' is not BUYER:STEP (BUYER from 1; STEP one of {CRASH_STEPS})");
        let (buyer, step) = crate::fault::buyer_and(s).ok_or_else(bad)?;
        let mut letters = step.chars();
        let step = match (letters.next(), letters.next()) {
            (Some(c), None) => Step::from_letter(c),
            _ if step.eq_ignore_ascii_case("cas") => Some(Step::Cas),
            _ => Step::from_name(step),
        }
        .ok_or_else(bad)?;
        Ok(Crash { buyer, step })
    }
}

impl fmt::Display for Crash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.buyer + 1, self.step)
    }
}

/// The shared steps a buyer takes under a store and lock setting, in the
/// order it first takes them (`docs/scheduler.md`'s table): what `--crash`
/// can name, since a step the buyer never takes would kill nobody.
pub(crate) fn steps_taken(store: StoreKind, lock: LockMode) -> Vec<Step> {
    use Step::*;
    match store {
        StoreKind::Server => return vec![Request, Reply],
        // The queue's lock guards the request pipe, not the count.
        StoreKind::Queue => return vec![Lock, Request, Unlock, Reply],
        StoreKind::Shm | StoreKind::File => {}
        StoreKind::Sqlite | StoreKind::Postgres => {
            return crate::store::sql::steps(lock).to_vec();
        }
    }
    let steps: &[Step] = match lock {
        LockMode::None | LockMode::Join => &[Search, Read, Write],
        LockMode::Write => &[Search, Read, Lock, Write, Unlock],
        LockMode::Buy | LockMode::Robust => &[Search, Lock, Read, Write, Unlock],
        LockMode::Task => &[Lock, Search, Read, Write, Unlock],
        LockMode::Atomic => &[Search, Read, Cas],
        // Refused by `validate` outside the database stores.
        LockMode::Serializable => &[],
    };
    let mut steps = steps.to_vec();
    if store == StoreKind::File {
        // The file is truncated before the bytes are written.
        if let Some(w) = steps.iter().position(|&s| s == Write) {
            steps.insert(w, Truncate);
        }
    }
    steps
}

/// The file store's file named with `--db`.
// `--db-reset` lives here, beside the path it applies to, so no setting can
// hold a reset without a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbFile {
    /// The path given.
    pub path: PathBuf,
    /// `--db-reset`: overwrite the file even if it is not a ticket store.
    pub reset: bool,
}

impl SaleConfig {
    /// A sale with no delays, no jitter, no trace, no schedule, no crash and
    /// no named database: what bench measures and explore starts from.
    pub(crate) fn bare(
        workers: usize,
        tickets: u64,
        wants: Wants,
        store: StoreKind,
        lock: LockMode,
        seed: u64,
    ) -> Self {
        Self {
            workers,
            tickets,
            wants,
            store,
            lock,
            start_delay: Duration::ZERO,
            search_delay: Duration::ZERO,
            read_delay: Duration::ZERO,
            write_delay: Duration::ZERO,
            jitter: false,
            seed,
            db: None,
            trace: false,
            schedule: None,
            one_process: false,
            crash: None,
            db_url: None,
            sale: None,
        }
    }

    /// Whether the buyers take no lock up front, and a buyer's last step
    /// is the `COMMIT` that ends the transaction its write began (a
    /// database's `atomic` and `serializable`): until then the database
    /// holds the row it wrote, and another buyer's write waits for that
    /// commit.
    pub(crate) fn commits_not_locks(&self) -> bool {
        commits_not_locks(self.store, self.lock)
    }

    /// What step mode calls `step` in this sale: a database's C is its
    /// conditional `update` (`Step::database_name`), and where no lock is
    /// taken (`commits_not_locks`) the U that ends the transaction is its
    /// `commit`.
    pub(crate) fn step_name(&self, step: crate::step::Step) -> &'static str {
        match step {
            crate::step::Step::Unlock if self.commits_not_locks() => "commit",
            step if self.store.is_database() => step.database_name(),
            step => step.name(),
        }
    }

    /// Whether buyers take the segment's mutex (a `lock` step): under
    /// `none`, `join`, `atomic` and the server store they never do, so a
    /// view says "no lock" rather than "lock free"; the queue store's buyers
    /// take it around the request pipe.
    pub(crate) fn takes_mutex(&self) -> bool {
        steps_taken(self.store, self.lock).contains(&Step::Lock)
    }

    /// Whether buyers must record their operations: always where updates can
    /// be lost (so the summary can name them) and in every sale small
    /// enough that recording costs nothing a person would notice (so every
    /// such run gives back its interleaving); a long sale only on request,
    /// since recording slows each purchase.
    pub fn records_trace(&self) -> bool {
        let small = match self.wants {
            Wants::Count(n) => (self.workers as u64).saturating_mul(n) <= SMALL_SALE_PURCHASES,
            Wants::All => self.tickets <= SMALL_SALE_PURCHASES,
        };
        self.trace || self.schedule.is_some() || self.racy() || small
    }
}

impl SaleConfig {
    /// The flags that make this sale, as `sell` and `step` take them, the
    /// defaults of both left out (`--lock` is always named: their defaults
    /// differ): the one way a saved schedule or a replay line names its
    /// sale. The seed is named only with `--jitter`, the only draws it
    /// steers; the schedule is each caller's to add.
    pub(crate) fn flags(&self) -> String {
        let mut flags = vec![format!("-w {} -t {}", self.workers, self.tickets)];
        if self.store != StoreKind::Shm {
            flags.push(format!("--store {}", self.store));
        }
        flags.push(format!("--lock {}", self.lock));
        if self.wants != Wants::Count(1) {
            flags.push(format!("--wants {}", self.wants));
        }
        for (flag, delay) in [
            ("--start-delay", self.start_delay),
            ("--search-delay", self.search_delay),
            ("--read-delay", self.read_delay),
            ("--write-delay", self.write_delay),
        ] {
            if !delay.is_zero() {
                flags.push(format!("{flag} {}", format_duration(delay)));
            }
        }
        if self.jitter {
            flags.push(format!("--jitter --seed {}", self.seed));
        }
        if self.one_process {
            flags.push("--one-process".into());
        }
        if let Some(crash) = self.crash {
            flags.push(format!("--crash {crash}"));
        }
        flags.join(" ")
    }
}

/// Purchases up to which a sale records its trace unasked: a few
/// operations each, well within the trace's room.
const SMALL_SALE_PURCHASES: u64 = 10_000;

/// Whether a store and lock setting can lose updates: the one place that
/// says which settings race. The seller serialises every sale, so the
/// server and queue stores never do.
pub(crate) fn racy(store: StoreKind, lock: LockMode) -> bool {
    !store.has_seller() && matches!(lock, LockMode::None | LockMode::Write)
}

/// [`SaleConfig::commits_not_locks`] of a store and a lock setting, for
/// what has only those (a report).
pub(crate) fn commits_not_locks(store: StoreKind, lock: LockMode) -> bool {
    store.is_database() && matches!(lock, LockMode::Atomic | LockMode::Serializable)
}

/// Whether a sale's read and write delays are one statement's round trip
/// rather than a read and a write: a database's `atomic` reads nothing of
/// its own before its one conditional `UPDATE`, so both are spent before
/// it runs. The header and the summary both name the delays through this.
pub(crate) fn delays_are_round_trip(store: StoreKind, lock: LockMode) -> bool {
    store.is_database() && lock == LockMode::Atomic
}

/// The read and write delays (already formatted, `"0"` for none) as a
/// person should read them: `read` and `write`, or one `round trip`
/// (`delays_are_round_trip`), the two added as `10s+20ms`.
pub(crate) fn delay_names(
    round_trip: bool,
    read: &str,
    write: &str,
) -> Vec<(&'static str, String)> {
    if round_trip {
        let value = match (read, write) {
            (r, "0") => r.to_string(),
            ("0", w) => w.to_string(),
            (r, w) => format!("{r}+{w}"),
        };
        return vec![("round trip", value)];
    }
    vec![("read", read.to_string()), ("write", write.to_string())]
}

impl StoreKind {
    /// Whether a seller process owns the count (server and queue): then no
    /// buyer touches the count, and no lock setting applies to it.
    pub(crate) fn has_seller(self) -> bool {
        matches!(self, StoreKind::Server | StoreKind::Queue)
    }

    /// Whether the count lives in a real database (SQLite or PostgreSQL).
    pub(crate) fn is_database(self) -> bool {
        matches!(self, StoreKind::Sqlite | StoreKind::Postgres)
    }
}

/// How a run shows itself while it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewMode {
    /// The live screen.
    Live,
    /// A progress line about every 250 ms.
    Plain,
    /// Only the summary.
    Quiet,
}

/// When the live screen uses colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMode {
    /// Colour unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Colour even with `NO_COLOR`.
    Always,
    /// No colour: bold and reverse video only.
    Never,
}

/// What a run prints, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// The view asked for; `None` = live on a terminal, plain otherwise.
    pub view: Option<ViewMode>,
    /// One JSON object on stdout instead of the summary.
    pub json: bool,
    /// Print the post-mortem after the run.
    pub trace: bool,
    /// When the live screen uses colour.
    pub color: ColorMode,
}

impl Output {
    /// The output of a demo (print, daemon): its lines or JSON, no trace,
    /// and no live screen to colour.
    pub(crate) fn lines(view: Option<ViewMode>, json: bool) -> Self {
        Self {
            view,
            json,
            trace: false,
            color: ColorMode::Auto,
        }
    }
}

/// Buyers in a sale unless told.
pub(crate) const DEFAULT_WORKERS: u64 = 100;
/// Tickets on sale unless told.
pub(crate) const DEFAULT_TICKETS: u64 = 1;
/// Largest number of buyers a sale accepts.
pub(crate) const MAX_WORKERS: usize = 1000;
/// Largest number of tickets a sale accepts.
pub(crate) const MAX_TICKETS: u64 = 1_000_000_000_000;
/// Longest delay a flag accepts.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(60);

/// A bad combination of otherwise valid flags.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The seller process already serialises every purchase.
    #[error(
        "--store server takes no lock: the seller process serialises every purchase (use --lock none)"
    )]
    ServerWithLock,
    /// The queue's lock guards its pipe; the seller serialises every sale.
    #[error(
        "--store queue takes no lock setting: the queue locks its own pipe and the seller serialises every purchase (use --lock none)"
    )]
    QueueWithLock,
    /// A file has no compare-and-swap.
    #[error(
        "--lock atomic needs --store shm: a file has no compare-and-swap (with --store file use none, write, buy, task or join)"
    )]
    AtomicWithFile,
    /// A robust mutex cannot mend a file torn by a dead holder for the
    /// searches that read it outside the lock.
    #[error(
        "--lock robust needs --store shm: a holder that dies mid-rewrite leaves the file torn for the searches outside the lock, which no recovery reaches (with --store file use none, write, buy, task or join)"
    )]
    RobustWithFile,
    /// The schedule file could not be read or parsed.
    #[error("--schedule-file {0}")]
    ScheduleFile(String),
    /// `--then` says what follows a schedule.
    #[error("--then applies only with --schedule or --schedule-file")]
    ThenWithoutSchedule,
    /// The schedule names a buyer the sale does not have.
    #[error(
        "--schedule names buyer {named}, but the sale has {workers} (buyers are numbered from 1)"
    )]
    ScheduleBuyer {
        /// The highest buyer named.
        named: usize,
        /// Buyers in the sale.
        workers: usize,
    },
    /// `--db` names the file store's file.
    #[error("--db applies only to --store file")]
    DbWithoutFile,
    /// One process cannot race itself.
    #[error(
        "--one-process takes no lock: one process cannot race itself (leave --lock out or use --lock none)"
    )]
    OneProcessWithLock,
    /// The baseline runs the buyers' own steps, not a seller's.
    #[error("--one-process needs --store shm or file")]
    OneProcessWithServer,
    /// A schedule chooses between processes; there is only one.
    #[error("--one-process runs one process: there is nobody to schedule")]
    OneProcessWithSchedule,
    /// `--crash` names a buyer the sale does not have.
    #[error("--crash names buyer {named}, but the sale has {workers} (buyers are numbered from 1)")]
    CrashBuyer {
        /// The buyer named, from 1.
        named: usize,
        /// Buyers in the sale.
        workers: usize,
    },
    /// `--crash` names a step the buyers never take under this setting.
    #[error(
        "--crash {crash}: a buyer never takes the {step} step under --store {store} --lock {lock} (allowed: {allowed})"
    )]
    CrashStep {
        /// The flag's value.
        crash: String,
        /// The step named.
        step: Step,
        /// The store.
        store: StoreKind,
        /// The lock.
        lock: LockMode,
        /// The steps that setting takes.
        allowed: String,
    },
    /// `--db-reset` overwrites the file `--db` names.
    #[error("--db-reset applies only with --db PATH (the temporary store is always new)")]
    ResetWithoutDb,
    /// `--db-url` names a PostgreSQL server.
    #[error("--db-url applies only to --store postgres")]
    DbUrlWithoutPostgres,
    /// The URL does not parse.
    #[error("--db-url: {0} (e.g. postgresql://user:password@host:5432/database)")]
    DbUrl(String),
    /// PostgreSQL needs a server to talk to.
    #[error(
        "--store postgres needs --db-url URL (e.g. postgresql://user@host/db, or set TICKETLAB_DB_URL)"
    )]
    PostgresWithoutUrl,
    /// SQLite's file is `--db`; a server has no file.
    #[error("--db applies only to --store file or sqlite (--store postgres takes --db-url)")]
    DbWithPostgres,
    /// `--sale` names a row in a database.
    #[error("--sale applies only to --store sqlite or postgres")]
    SaleWithoutDatabase,
    /// A sale name is shown to a whole class and typed again: keep it plain.
    #[error(
        "--sale '{0}' is not a sale name (allowed: 1 to 40 letters, digits, '-', '_' or '.', starting with a letter or digit)"
    )]
    SaleName(String),
    /// Only a database has serializable transactions.
    #[error(
        "--lock serializable needs --store sqlite or postgres: only a database has serializable transactions"
    )]
    SerializableWithoutDatabase,
    /// The robust mutex mends the segment's count, not a database's.
    #[error(
        "--lock robust needs --store shm: a database rolls back a dead buyer's transaction itself (use buy)"
    )]
    RobustWithDatabase,
    /// Exploring runs one schedule per class of schedules that differ only
    /// by commuting steps (`Step::commutes_with`). That relation is the
    /// segment's, where a write is seen as it is made; in a database it is
    /// seen at its `COMMIT`, a U step that would wrongly commute with
    /// another buyer's read, and interleavings that end differently would
    /// be counted as one.
    #[error(
        "explore needs --store shm, file, server or queue: its reduction assumes a write is seen when made, a database's is seen only at COMMIT (step through a database sale with `ticketlab step`)"
    )]
    ExploreDatabase,
    /// The baseline without concurrency runs the buyers' own steps on shm or file.
    #[error("--one-process needs --store shm or file")]
    OneProcessWithDatabase,
}

impl SaleConfig {
    /// Whether this setting can lose updates: the one place that says
    /// which settings race. The seller serialises every sale, so the server
    /// and queue stores never do.
    pub fn racy(&self) -> bool {
        racy(self.store, self.lock)
    }

    /// Rejects combinations that make no sense, with the reason.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_database()?;
        match (self.store, self.lock) {
            (StoreKind::Server, lock) if lock != LockMode::None => {
                return Err(ConfigError::ServerWithLock);
            }
            (StoreKind::Queue, lock) if lock != LockMode::None => {
                return Err(ConfigError::QueueWithLock);
            }
            (StoreKind::File, LockMode::Atomic) => return Err(ConfigError::AtomicWithFile),
            (StoreKind::File, LockMode::Robust) => return Err(ConfigError::RobustWithFile),
            (StoreKind::Server, LockMode::Atomic) => return Err(ConfigError::ServerWithLock),
            _ => {}
        }
        if let Some(named) = self.schedule.as_ref().and_then(|(s, _)| s.max_buyer()) {
            if named > self.workers {
                return Err(ConfigError::ScheduleBuyer {
                    named,
                    workers: self.workers,
                });
            }
        }
        if self.one_process {
            if self.lock != LockMode::None {
                return Err(ConfigError::OneProcessWithLock);
            }
            if self.store == StoreKind::Server {
                return Err(ConfigError::OneProcessWithServer);
            }
            if self.schedule.is_some() {
                return Err(ConfigError::OneProcessWithSchedule);
            }
        }
        if self.db.is_some() && !matches!(self.store, StoreKind::File | StoreKind::Sqlite) {
            return Err(if self.store == StoreKind::Postgres {
                ConfigError::DbWithPostgres
            } else {
                ConfigError::DbWithoutFile
            });
        }
        if let Some(crash) = self.crash {
            if crash.buyer >= self.workers {
                return Err(ConfigError::CrashBuyer {
                    named: crash.buyer + 1,
                    workers: self.workers,
                });
            }
            let steps = steps_taken(self.store, self.lock);
            if !steps.contains(&crash.step) {
                let allowed: Vec<&str> = steps.iter().map(|s| s.name()).collect();
                return Err(ConfigError::CrashStep {
                    crash: crash.to_string(),
                    step: crash.step,
                    store: self.store,
                    lock: self.lock,
                    allowed: allowed.join(", "),
                });
            }
        }
        Ok(())
    }
}

impl SaleConfig {
    /// The database stores' own flags and combinations.
    fn validate_database(&self) -> Result<(), ConfigError> {
        if self.db_url.is_some() && self.store != StoreKind::Postgres {
            return Err(ConfigError::DbUrlWithoutPostgres);
        }
        match (&self.db_url, self.store) {
            (None, StoreKind::Postgres) => return Err(ConfigError::PostgresWithoutUrl),
            (Some(url), _) => crate::store::database::check_url(url).map_err(ConfigError::DbUrl)?,
            _ => {}
        }
        if let Some(sale) = &self.sale {
            if !self.store.is_database() {
                return Err(ConfigError::SaleWithoutDatabase);
            }
            if !valid_sale_name(sale) {
                return Err(ConfigError::SaleName(sale.clone()));
            }
        }
        if self.lock == LockMode::Serializable && !self.store.is_database() {
            return Err(ConfigError::SerializableWithoutDatabase);
        }
        if self.store.is_database() {
            if self.lock == LockMode::Robust {
                return Err(ConfigError::RobustWithDatabase);
            }
            if self.one_process {
                return Err(ConfigError::OneProcessWithDatabase);
            }
        }
        Ok(())
    }
}

/// Whether `name` can name a sale: short, and plain enough to type and to
/// read on a projector.
pub(crate) fn valid_sale_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A setting chosen by name from a fixed list (`--store shm`, `--lock buy`):
/// the one place each value's name and its one-line meaning live. `cli.rs`
/// turns every such setting into a clap value enum, so `--help` and its
/// errors list the values; nothing else parses them. A new variant goes in
/// `ALL`, `name` and `about`.
pub(crate) trait Named: Copy + PartialEq + Sized + 'static {
    /// Every value, in the order `--help` lists them.
    const ALL: &'static [Self];
    /// The word the flag takes.
    fn name(self) -> &'static str;
    /// What it means, in one line for `--help`.
    fn about(self) -> &'static str;
}

/// `Display` for a [`Named`] setting: its name.
macro_rules! display_by_name {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(crate::config::Named::name(*self))
            }
        }
    )*};
}
pub(crate) use display_by_name;

display_by_name!(StoreKind, LockMode, ViewMode, ColorMode);

impl Named for StoreKind {
    const ALL: &'static [StoreKind] = &[
        StoreKind::Shm,
        StoreKind::File,
        StoreKind::Server,
        StoreKind::Queue,
        StoreKind::Sqlite,
        StoreKind::Postgres,
    ];
    fn name(self) -> &'static str {
        match self {
            StoreKind::Shm => "shm",
            StoreKind::File => "file",
            StoreKind::Server => "server",
            StoreKind::Queue => "queue",
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        }
    }
    fn about(self) -> &'static str {
        match self {
            StoreKind::Shm => "an integer in shared memory",
            StoreKind::File => "a JSON file, rewritten whole on every purchase",
            StoreKind::Server => "a seller process that owns the count; buyers ask it over pipes",
            StoreKind::Queue => {
                "the seller behind one request pipe that buyers write under the lock"
            }
            StoreKind::Sqlite => "a SQLite database file (--db keeps it)",
            StoreKind::Postgres => "a PostgreSQL server (--db-url), which runs can share (--sale)",
        }
    }
}

impl Named for LockMode {
    const ALL: &'static [LockMode] = &[
        LockMode::None,
        LockMode::Write,
        LockMode::Buy,
        LockMode::Robust,
        LockMode::Task,
        LockMode::Join,
        LockMode::Atomic,
        LockMode::Serializable,
    ];
    fn name(self) -> &'static str {
        match self {
            LockMode::None => "none",
            LockMode::Write => "write",
            LockMode::Buy => "buy",
            LockMode::Robust => "robust",
            LockMode::Task => "task",
            LockMode::Join => "join",
            LockMode::Atomic => "atomic",
            LockMode::Serializable => "serializable",
        }
    }
    fn about(self) -> &'static str {
        match self {
            LockMode::None => "no lock: the race",
            LockMode::Write => "only the write is locked (still races)",
            LockMode::Buy => "read, check and write under the mutex",
            LockMode::Robust => "as buy, under a robust mutex a dead holder cannot keep",
            LockMode::Task => "search and buy together under the mutex",
            LockMode::Join => "no lock; each buyer starts after the previous one exited",
            LockMode::Atomic => {
                "a compare-and-swap loop on the shared count (a database: one conditional UPDATE)"
            }
            LockMode::Serializable => {
                "databases: a SERIALIZABLE transaction, retried when the database refuses it"
            }
        }
    }
}

impl Named for ViewMode {
    const ALL: &'static [ViewMode] = &[ViewMode::Live, ViewMode::Plain, ViewMode::Quiet];
    fn name(self) -> &'static str {
        match self {
            ViewMode::Live => "live",
            ViewMode::Plain => "plain",
            ViewMode::Quiet => "quiet",
        }
    }
    fn about(self) -> &'static str {
        match self {
            ViewMode::Live => "a live screen",
            ViewMode::Plain => "a line every 250 ms",
            ViewMode::Quiet => "only the outcome",
        }
    }
}

impl Named for ColorMode {
    const ALL: &'static [ColorMode] = &[ColorMode::Auto, ColorMode::Always, ColorMode::Never];
    fn name(self) -> &'static str {
        match self {
            ColorMode::Auto => "auto",
            ColorMode::Always => "always",
            ColorMode::Never => "never",
        }
    }
    fn about(self) -> &'static str {
        match self {
            ColorMode::Auto => "colour unless the NO_COLOR environment variable is set",
            ColorMode::Always => "colour even with NO_COLOR",
            ColorMode::Never => "no colour: bold and reverse video only",
        }
    }
}

impl fmt::Display for Wants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wants::Count(n) => write!(f, "{n}"),
            Wants::All => f.write_str("all"),
        }
    }
}

impl FromStr for Wants {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        // Spaces around a value are allowed, as for every number and
        // duration.
        let t = s.trim();
        if t == "all" {
            return Ok(Wants::All);
        }
        match t.parse::<u64>() {
            Ok(n) if (1..=MAX_TICKETS).contains(&n) => Ok(Wants::Count(n)),
            _ => Err(format!(
                "'{s}' is not a ticket count (allowed: 1 to {MAX_TICKETS}, or all)"
            )),
        }
    }
}

impl Serialize for Wants {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Wants::Count(n) => s.serialize_u64(*n),
            // `null`, not "all": the field is a number or nothing, so a
            // script never meets two types in it.
            Wants::All => s.serialize_none(),
        }
    }
}

/// Parses `50us`, `100ms`, `0.2s`, `1s` or `0`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "'{s}' is not a duration (allowed: 0 to {}, e.g. 50us, 100ms, 0.2s, 1s)",
            format_duration(MAX_DELAY)
        )
    };
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let (num, scale) = if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix("µs") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(bad());
    };
    let value: f64 = num.parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    let secs = value * scale;
    if secs > MAX_DELAY.as_secs_f64() {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Formats a delay the way the flags accept it.
pub(crate) fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us == 0 {
        "0".to_string()
    } else if us % 1_000_000 == 0 {
        format!("{}s", us / 1_000_000)
    } else if us % 1000 == 0 {
        format!("{}ms", us / 1000)
    } else if us < 1000 {
        format!("{us}us")
    } else {
        format!("{:.3}ms", us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("50us"), Ok(Duration::from_micros(50)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("0.2s"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "5", "-1s", "1h", "fast", "61s", "NaNs"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn durations_format_back_to_flag_syntax() {
        for s in ["0", "50us", "100ms", "1s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn only_settings_with_a_lock_step_take_the_mutex() {
        use LockMode::*;
        for (store, lock, mutex) in [
            (StoreKind::Shm, None, false),
            (StoreKind::File, Join, false),
            (StoreKind::Shm, Atomic, false),
            (StoreKind::Shm, Write, true),
            (StoreKind::File, Buy, true),
            (StoreKind::Shm, Robust, true),
            (StoreKind::Shm, Task, true),
            (StoreKind::Server, None, false),
            (StoreKind::Queue, None, true),
        ] {
            assert_eq!(sale(store, lock).takes_mutex(), mutex, "{store} {lock}");
        }
    }

    #[test]
    fn a_sale_names_its_flags_leaving_defaults_out() {
        let mut cfg = sale(StoreKind::Shm, LockMode::None);
        assert_eq!(cfg.flags(), "-w 2 -t 1 --lock none");
        cfg.store = StoreKind::File;
        cfg.wants = Wants::All;
        cfg.read_delay = Duration::from_millis(5);
        cfg.jitter = true;
        cfg.seed = 9;
        assert_eq!(
            cfg.flags(),
            "-w 2 -t 1 --store file --lock none --wants all --read-delay 5ms --jitter --seed 9"
        );
    }

    #[test]
    fn wants_parses_counts_and_all() {
        assert_eq!("all".parse::<Wants>(), Ok(Wants::All));
        assert_eq!("3".parse::<Wants>(), Ok(Wants::Count(3)));
        assert!("0".parse::<Wants>().is_err());
    }

    fn sale(store: StoreKind, lock: LockMode) -> SaleConfig {
        SaleConfig {
            workers: 2,
            tickets: 1,
            wants: Wants::Count(1),
            store,
            lock,
            start_delay: Duration::ZERO,
            search_delay: Duration::ZERO,
            read_delay: Duration::ZERO,
            write_delay: Duration::ZERO,
            jitter: false,
            seed: 1,
            db: None,
            trace: false,
            schedule: None,
            one_process: false,
            crash: None,
            db_url: None,
            sale: None,
        }
    }

    #[test]
    fn crash_takes_a_buyer_from_one_and_a_step_name_or_letter() {
        let write = Crash {
            buyer: 0,
            step: Step::Write,
        };
        assert_eq!("1:write".parse(), Ok(write));
        assert_eq!("1:W".parse(), Ok(write));
        assert_eq!("1:w".parse(), Ok(write));
        assert_eq!(write.to_string(), "1:write");
        for bad in ["0:write", "1:fly", "write", "x:W", "1:"] {
            assert!(bad.parse::<Crash>().is_err(), "{bad}");
        }
        let mut cfg = sale(StoreKind::Shm, LockMode::Buy);
        cfg.crash = Some("3:write".parse().unwrap());
        assert!(matches!(
            cfg.validate(),
            Err(ConfigError::CrashBuyer { named: 3, .. })
        ));
        cfg.crash = Some("1:cas".parse().unwrap());
        assert!(matches!(cfg.validate(), Err(ConfigError::CrashStep { .. })));
        cfg.crash = Some("2:U".parse().unwrap());
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn nonsense_combinations_are_refused() {
        assert_eq!(
            sale(StoreKind::Server, LockMode::Buy).validate(),
            Err(ConfigError::ServerWithLock)
        );
        assert_eq!(
            sale(StoreKind::File, LockMode::Atomic).validate(),
            Err(ConfigError::AtomicWithFile)
        );
        assert!(sale(StoreKind::Server, LockMode::None).validate().is_ok());
        for lock in [
            LockMode::Write,
            LockMode::Buy,
            LockMode::Task,
            LockMode::Join,
            LockMode::Atomic,
        ] {
            assert_eq!(
                sale(StoreKind::Queue, lock).validate(),
                Err(ConfigError::QueueWithLock),
                "{lock}"
            );
        }
        assert!(sale(StoreKind::Queue, LockMode::None).validate().is_ok());
        assert!(!racy(StoreKind::Queue, LockMode::None));
        assert!(sale(StoreKind::Shm, LockMode::Atomic).validate().is_ok());
        let mut with_db = sale(StoreKind::Shm, LockMode::Buy);
        with_db.db = Some(DbFile {
            path: "x.json".into(),
            reset: false,
        });
        assert_eq!(with_db.validate(), Err(ConfigError::DbWithoutFile));
    }
}
