//! What a sale did: the numbers, the summary a person reads, the JSON a
//! script reads.

use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;

use crate::config::{LockMode, SaleConfig, StoreKind, Wants, format_duration};
use crate::postmortem::{self, Event, LostUpdate};
use crate::protocol::BuyerNo;

/// One buyer's figures.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerReport {
    /// Tickets it believes it bought.
    pub bought: u64,
    /// Purchases it tried.
    pub attempts: u64,
    /// Time spent waiting for the mutex.
    pub lock_wait_ms: f64,
    /// Sum of the delays it drew (the same for the same seed).
    pub drawn_delay_ms: f64,
    /// Torn file reads it met.
    pub torn_reads: u64,
    /// Compare-and-swaps it lost to another buyer (`--lock atomic`).
    pub failed_swaps: u64,
    /// Serializable transactions the database refused and it tried again.
    pub retries: u64,
    /// SQLite: statements that waited for another buyer's write lock.
    pub busy_statements: u64,
    /// How it ended.
    pub end: WorkerEnd,
}

/// How one buyer ended. Serialised as the words the JSON has always had,
/// so a script sees one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WorkerEnd {
    /// Bought what it wanted, or found the tickets gone.
    #[serde(rename = "ok")]
    Ok,
    /// Read a store file that stayed corrupt, and gave up.
    #[serde(rename = "gave up")]
    GaveUp,
    /// Met an I/O error (a store file gone, the seller gone).
    #[serde(rename = "error")]
    Error,
    /// Killed by a signal, or panicked.
    #[serde(rename = "crashed")]
    Crashed,
    /// Killed itself where `--crash` said: the lesson, not a failure.
    #[serde(rename = "crashed as asked")]
    CrashedAsAsked,
    /// Killed by the parent because the sale stopped early.
    #[serde(rename = "ended")]
    EndedByParent,
    /// Never forked: a `join` sale stopped before its turn.
    #[serde(rename = "never started")]
    NeverStarted,
}

impl WorkerEnd {
    /// Whether this ending makes the run fail (exit 1): the buyer could not
    /// do what it was asked. Being ended by the parent is the parent's
    /// decision, and the sale's ending says why.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            WorkerEnd::GaveUp | WorkerEnd::Error | WorkerEnd::Crashed
        )
    }

    /// Whether the buyer was killed, and so may have written its purchase to
    /// the store without living to count it in its slot: each such buyer
    /// can explain one ticket that vanished.
    pub fn was_killed(self) -> bool {
        matches!(
            self,
            WorkerEnd::Crashed | WorkerEnd::EndedByParent | WorkerEnd::CrashedAsAsked
        )
    }
}

/// The sale's figures, worked out here and nowhere else from what the
/// buyers believe they bought and what the store says is left.
///
/// `sold - (tickets - remaining)` balances the books: above zero, buyers
/// bought sales the count forgot (lost updates); below zero, the count fell
/// by more than anyone bought (tickets vanished). The store's count is read
/// from a file anyone can write, so it can be any `i64`: the balance is
/// worked out in `i128` with checked operations, where no `u64` and `i64`
/// can wrap, and each figure saturates at `i64::MAX` rather than wrapping
/// into a believable number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Tickets the buyers believe they bought.
    pub sold: u64,
    /// Tickets sold beyond those on sale.
    pub oversold: u64,
    /// Sales the count forgot; never negative. `None` when the count is unknown.
    pub lost_updates: Option<i64>,
    /// Tickets gone from the count that nobody bought; never negative.
    /// `None` when the count is unknown.
    pub vanished: Option<i64>,
}

impl Tally {
    /// The figures of `tickets` on sale, `sold` bought, `remaining` left.
    pub fn new(tickets: u64, sold: u64, remaining: Option<i64>) -> Tally {
        Tally::from(i128::from(tickets), sold, remaining)
    }

    /// The figures of a stretch of a sale that began with `start` left
    /// (a joined sale's count may already be below zero): `sold` bought
    /// in that stretch, `remaining` left at its end.
    pub fn from_count(start: i64, sold: u64, remaining: Option<i64>) -> Tally {
        Tally::from(i128::from(start), sold, remaining)
    }

    fn from(tickets: i128, sold: u64, remaining: Option<i64>) -> Tally {
        let balance = remaining.and_then(|r| {
            let expected_left = tickets.checked_sub(i128::from(sold))?;
            i128::from(r).checked_sub(expected_left)
        });
        let saturated = |n: i128| i64::try_from(n.max(0)).unwrap_or(i64::MAX);
        let beyond = i128::from(sold) - tickets.max(0);
        Tally {
            sold,
            oversold: u64::try_from(beyond.max(0)).unwrap_or(u64::MAX),
            // balance = remaining - (tickets - sold) = sold - (tickets - remaining)
            lost_updates: balance.map(saturated),
            vanished: balance.and_then(i128::checked_neg).map(saturated),
        }
    }
}

/// What a sale's numbers say, decided here and nowhere else: the summary
/// line, the lab comparison table and the JSON all show this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Every ticket sold once, and the count agrees.
    #[serde(rename = "exact")]
    Exact,
    /// More tickets sold than there were.
    #[serde(rename = "oversold")]
    Oversold,
    /// The count disagrees with the sales: updates lost, tickets vanished,
    /// or a store that ended unreadable.
    #[serde(rename = "count wrong")]
    CountWrong,
    /// Cut short (a signal, `q`, a dead buyer or seller), and what it did
    /// sell agrees with the count.
    #[serde(rename = "stopped")]
    Stopped,
}

impl Verdict {
    /// The verdict on `tally` for a sale that ended as `ending`, in which
    /// `killed` buyers were killed before they finished, `asked` of them
    /// by `--crash` (which alone does not cut the sale short).
    pub fn judge(tally: &Tally, ending: &Ending, killed: usize, asked: usize) -> Verdict {
        if tally.oversold > 0 {
            // Counted from the buyers alone: true however the sale ended.
            return Verdict::Oversold;
        }
        if *ending == Ending::StoreCorrupt {
            // The parent ended the sale because the count itself was gone.
            return Verdict::CountWrong;
        }
        let cut_short = *ending != Ending::Completed || killed > asked;
        let (Some(lost), Some(vanished)) = (tally.lost_updates, tally.vanished) else {
            // A file torn by the race is the race's damage; one torn because
            // a writer was killed between its truncate and its write is not.
            return if cut_short {
                Verdict::Stopped
            } else {
                Verdict::CountWrong
            };
        };
        // Buyers count a purchase only after the store took it, so a killed
        // buyer can leave the count one lower than the sales (a vanished
        // ticket each), never higher: a lost update is always the race's.
        let explained = i64::try_from(killed).unwrap_or(i64::MAX);
        if lost > 0 || vanished > explained {
            Verdict::CountWrong
        } else if cut_short {
            Verdict::Stopped
        } else {
            Verdict::Exact
        }
    }

    /// The word the table and the JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Exact => "exact",
            Verdict::Oversold => "oversold",
            Verdict::CountWrong => "count wrong",
            Verdict::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A robust mutex recovered: buyer `by` took it with `EOWNERDEAD`, set the
/// count from the recorded sales and called `pthread_mutex_consistent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// The buyer that recovered it (an index from 0).
    pub by: usize,
    /// The holder that died holding it, if it had written its name.
    pub from: Option<usize>,
    /// The count it set: tickets minus the sales recorded.
    pub count: i64,
}

/// A database sale as the database itself counts it: the figures of the
/// summary come from here, not from the buyers' own counts, so a sale
/// shared by several runs is judged whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseSale {
    /// The sale's name.
    pub sale: String,
    /// This run's name in the purchases table.
    pub run: String,
    /// Whether this run joined a sale that already existed.
    pub joined: bool,
    /// The count when this run began: this run's figures are worked out
    /// from here (for a sale of the run's own, the tickets).
    pub count_at_start: i64,
    /// Purchases recorded by every run, at the end.
    pub purchases: u64,
    /// Purchases recorded by this run: the report's `sold`.
    pub purchases_by_run: u64,
    /// Purchases other runs recorded while this run sold.
    pub purchases_by_others: u64,
    /// Runs that recorded a purchase.
    pub runs: u64,
}

/// How a sale ended. In JSON always one shape (`docs/json.md`): `kind`,
/// and `signal`, `buyer` and `pid`, each `null` where this ending has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Every buyer finished.
    Completed,
    /// Stopped by a signal or the `q` key; the number is the signal.
    Interrupted(i32),
    /// A buyer died holding the mutex; the others were ended.
    HolderDied {
        /// The buyer.
        buyer: usize,
        /// Its pid.
        pid: i32,
    },
    /// The seller process of the server store died.
    SellerDied,
    /// The file store stayed unreadable so long that no buyer could go on:
    /// the parent ended the sale instead of letting each buyer give up in
    /// turn.
    StoreCorrupt,
}

impl Ending {
    /// The word `ending.kind` holds.
    pub fn kind(&self) -> &'static str {
        match self {
            Ending::Completed => "completed",
            Ending::Interrupted(_) => "interrupted",
            Ending::HolderDied { .. } => "holder_died",
            Ending::SellerDied => "seller_died",
            Ending::StoreCorrupt => "store_corrupt",
        }
    }
}

impl Serialize for Ending {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// Every ending's fields, so a script reads one shape.
        #[derive(Serialize)]
        struct Shape {
            kind: &'static str,
            signal: Option<i32>,
            buyer: Option<usize>,
            pid: Option<i32>,
        }
        let mut shape = Shape {
            kind: self.kind(),
            signal: None,
            buyer: None,
            pid: None,
        };
        match *self {
            Ending::Interrupted(sig) => shape.signal = Some(sig),
            Ending::HolderDied { buyer, pid } => {
                (shape.buyer, shape.pid) = (Some(buyer), Some(pid))
            }
            Ending::Completed | Ending::SellerDied | Ending::StoreCorrupt => {}
        }
        shape.serialize(s)
    }
}

/// Everything a sale reports.
#[derive(Debug, Clone, Serialize)]
pub struct SaleReport {
    /// Store used.
    pub store: StoreKind,
    /// Lock setting used.
    pub lock: LockMode,
    /// Buyers.
    pub workers: usize,
    /// Whether one process ran every buyer's task in turn (`--one-process`).
    pub one_process: bool,
    /// Tickets on sale.
    pub tickets: u64,
    /// Tickets each buyer wanted (`null` in JSON: all it could).
    pub wants: Wants,
    /// The run's seed.
    pub seed: u64,
    /// Start-up delay.
    #[serde(rename = "start_delay_ms", serialize_with = "crate::json::millis")]
    pub start_delay: Duration,
    /// The search delay.
    #[serde(rename = "search_delay_ms", serialize_with = "crate::json::millis")]
    pub search_delay: Duration,
    /// Read delay.
    #[serde(rename = "read_delay_ms", serialize_with = "crate::json::millis")]
    pub read_delay: Duration,
    /// Write delay.
    #[serde(rename = "write_delay_ms", serialize_with = "crate::json::millis")]
    pub write_delay: Duration,
    /// Whether delays were jittered.
    pub jitter: bool,
    /// Tickets the buyers believe they bought.
    pub sold: u64,
    /// Tickets the store says are left; `None` when the file is corrupt.
    pub remaining: Option<i64>,
    /// `max(0, sold - tickets)`.
    pub oversold: u64,
    /// `max(0, sold - (tickets - remaining))`: sales the count forgot.
    pub lost_updates: Option<i64>,
    /// `max(0, (tickets - remaining) - sold)`: tickets gone from the count
    /// that nobody bought.
    pub vanished: Option<i64>,
    /// What the numbers say.
    pub verdict: Verdict,
    /// Reads that found a half-written file.
    pub torn_reads: u64,
    /// How the tickets were shared among the buyers, when a buyer may buy
    /// more than one (`--wants` above 1 or `all`); `None` otherwise.
    pub per_buyer: Option<Share>,
    /// Buyers that finished without a ticket: they found the tickets gone
    /// (a buyer that died or was ended is counted elsewhere).
    pub went_without: usize,
    /// Compare-and-swaps that lost to another buyer and were retried
    /// (`--lock atomic`; 0 under every other setting).
    pub failed_swaps: u64,
    /// Serializable transactions the database refused and the buyers tried
    /// again (`--lock serializable`; 0 under every other setting).
    pub retries: u64,
    /// SQLite: statements that met another buyer's write lock and waited
    /// for it (0 under every other store).
    pub busy_statements: u64,
    /// Database stores: the sale as the database counts it.
    pub database: Option<DatabaseSale>,
    /// Whether the file store ended unparsable.
    pub store_corrupt: bool,
    /// Buyers killed by a signal or by a panic.
    pub crashed_workers: usize,
    /// From the start signal to the last buyer's finish.
    pub elapsed_ms: f64,
    /// Purchases per second over `elapsed_ms`.
    #[serde(rename = "purchases_per_sec")]
    pub ops_per_sec: f64,
    /// Total time buyers spent blocked on the mutex (short spins are not counted).
    pub lock_wait_ms: f64,
    /// From the first fork to the last reap: what the processes themselves cost.
    pub processes_ms: f64,
    /// How the sale ended.
    pub ending: Ending,
    /// Trace events that did not fit in the segment.
    pub trace_overflow: u64,
    /// Each lost update, named.
    pub lost: Vec<LostUpdate>,
    /// Per-buyer figures, by buyer index.
    pub per_worker: Vec<WorkerReport>,
    /// The recorded operations, in time order (only printed with `--trace`;
    /// in JSON through [`SaleReport::json`]).
    #[serde(skip)]
    pub events: Vec<Event>,
    /// The run's interleaving as an annotated schedule with the values each
    /// step read or wrote (`1S=1,1R=1,2S=1`), when it was recorded whole.
    pub schedule: Option<String>,
    /// `--crash BUYER:STEP`, as given, when the run asked a buyer to die.
    pub crash: Option<String>,
    /// `--lock robust`: each time a buyer took the mutex from a dead holder.
    pub recoveries: Vec<Recovery>,
    /// The same in the short form a person pastes (`1x2,2x3,1`).
    #[serde(skip)]
    pub schedule_compact: Option<String>,
    /// Where a replay of a recorded schedule first differed from it.
    pub replay_diverged: Option<String>,
}

impl SaleReport {
    /// A report with the settings filled in and every figure zero.
    pub fn new(cfg: &SaleConfig) -> SaleReport {
        SaleReport {
            store: cfg.store,
            lock: cfg.lock,
            workers: cfg.workers,
            one_process: cfg.one_process,
            tickets: cfg.tickets,
            wants: cfg.wants,
            seed: cfg.seed,
            start_delay: cfg.start_delay,
            search_delay: cfg.search_delay,
            read_delay: cfg.read_delay,
            write_delay: cfg.write_delay,
            jitter: cfg.jitter,
            sold: 0,
            remaining: None,
            oversold: 0,
            lost_updates: None,
            vanished: None,
            verdict: Verdict::Stopped,
            torn_reads: 0,
            per_buyer: None,
            went_without: 0,
            failed_swaps: 0,
            retries: 0,
            busy_statements: 0,
            database: None,
            store_corrupt: false,
            crashed_workers: 0,
            elapsed_ms: 0.0,
            ops_per_sec: 0.0,
            lock_wait_ms: 0.0,
            processes_ms: 0.0,
            ending: Ending::Completed,
            trace_overflow: 0,
            lost: Vec::new(),
            per_worker: Vec::new(),
            events: Vec::new(),
            schedule: None,
            crash: cfg.crash.map(|c| c.to_string()),
            recoveries: Vec::new(),
            schedule_compact: None,
            replay_diverged: None,
        }
    }

    /// Fills the derived figures from the per-buyer ones and the final count.
    pub fn settle(&mut self, remaining: Option<i64>, elapsed_ms: f64) {
        let sold = self
            .per_worker
            .iter()
            .fold(0u64, |sum, w| sum.saturating_add(w.bought));
        self.torn_reads = self
            .per_worker
            .iter()
            .fold(0u64, |sum, w| sum.saturating_add(w.torn_reads));
        self.went_without = self
            .per_worker
            .iter()
            .filter(|w| w.bought == 0 && w.end == WorkerEnd::Ok)
            .count();
        self.per_buyer = match self.wants {
            Wants::Count(1) => None,
            _ => Share::of(self.per_worker.iter().map(|w| w.bought)),
        };
        self.failed_swaps = self
            .per_worker
            .iter()
            .fold(0u64, |sum, w| sum.saturating_add(w.failed_swaps));
        self.lock_wait_ms = self.per_worker.iter().map(|w| w.lock_wait_ms).sum();
        self.crashed_workers = self
            .per_worker
            .iter()
            .filter(|w| w.end == WorkerEnd::Crashed)
            .count();
        let killed = self
            .per_worker
            .iter()
            .filter(|w| w.end.was_killed())
            .count();
        self.retries = self
            .per_worker
            .iter()
            .fold(0u64, |sum, w| sum.saturating_add(w.retries));
        self.busy_statements = self
            .per_worker
            .iter()
            .fold(0u64, |sum, w| sum.saturating_add(w.busy_statements));
        self.remaining = remaining;
        self.store_corrupt = self.store == StoreKind::File && remaining.is_none();
        // A database counts its own purchases: lost updates are purchases
        // recorded less the drop in the count, as the database sees both.
        // Other runs sharing the sale drop the count too: the stretch this
        // run saw (from its count at the start, with every purchase made
        // meanwhile) is judged, and `sold` stays this run's own.
        let tally = match &self.database {
            Some(db) => Tally::from_count(
                db.count_at_start,
                db.purchases_by_run.saturating_add(db.purchases_by_others),
                remaining,
            ),
            None => Tally::new(self.tickets, sold, remaining),
        };
        self.sold = self
            .database
            .as_ref()
            .map_or(tally.sold, |db| db.purchases_by_run);
        self.oversold = tally.oversold;
        self.lost_updates = tally.lost_updates;
        self.vanished = tally.vanished;
        let asked = self
            .per_worker
            .iter()
            .filter(|w| w.end == WorkerEnd::CrashedAsAsked)
            .count();
        self.verdict = Verdict::judge(&tally, &self.ending, killed, asked);
        self.elapsed_ms = elapsed_ms;
        self.ops_per_sec = if elapsed_ms > 0.0 {
            self.sold as f64 / (elapsed_ms / 1000.0)
        } else {
            0.0
        };
        self.events.sort_by_key(|e| (e.t_ns, e.buyer));
        // Only the racy settings can lose an update. Elsewhere the trace's
        // timestamps (taken just after each write) could still misorder two
        // writes a moment apart and name losses that never happened.
        let racy = crate::config::racy(self.store, self.lock);
        let lost = usize::try_from(self.lost_updates.unwrap_or(0)).unwrap_or(usize::MAX);
        if racy && lost > 0 {
            let tickets = i64::try_from(self.tickets).unwrap_or(i64::MAX);
            // An overflowed trace names only what it saw whole.
            let until = if self.trace_overflow > 0 {
                postmortem::recorded_until(&self.events)
            } else {
                None
            };
            self.lost = postmortem::lost_updates_until(tickets, &mut self.events, until);
            self.lost.truncate(lost);
        }
    }

    /// The JSON document of this sale: every field above, then `events`,
    /// the recorded operations when `with_events` (`--trace`), else `null`.
    pub fn json(&self, with_events: bool) -> SaleJson<'_> {
        SaleJson {
            report: self,
            events: with_events.then(|| {
                self.events
                    .iter()
                    .map(postmortem::EventJson::from)
                    .collect()
            }),
        }
    }

    /// Whether the sale sold exactly what it had: nothing oversold, nothing
    /// lost, nothing vanished, not cut short.
    pub fn is_exact(&self) -> bool {
        self.verdict == Verdict::Exact
    }

    /// The human summary.
    pub fn write_summary(&self, out: &mut dyn Write) -> io::Result<()> {
        self.write_summary_traced(out, false)
    }

    /// The human summary, `traced` when the post-mortem (`write_trace`)
    /// follows it and names every lost update itself.
    pub fn write_summary_traced(&self, out: &mut dyn Write, traced: bool) -> io::Result<()> {
        let tickets = plural(self.tickets, "ticket");
        // Two lines, so neither wraps on an 80-column terminal.
        writeln!(
            out,
            "sale: {} buyers{}, {tickets}, store {}, lock {}, wants {}",
            self.workers,
            if self.one_process {
                " in one process"
            } else {
                ""
            },
            self.store,
            self.lock,
            self.wants,
        )?;
        writeln!(
            out,
            "  delays        {}search {}, {}{}",
            if self.start_delay.is_zero() {
                String::new()
            } else {
                format!("start {}, ", format_duration(self.start_delay))
            },
            format_duration(self.search_delay),
            crate::config::delay_names(
                crate::config::delays_are_round_trip(self.store, self.lock),
                &format_duration(self.read_delay),
                &format_duration(self.write_delay),
            )
            .into_iter()
            .map(|(label, d)| format!("{label} {d}"))
            .collect::<Vec<_>>()
            .join(", "),
            if self.jitter { ", jittered" } else { "" }
        )?;
        // Shouted when the numbers are wrong, so it stands out in a
        // classroom's scrollback.
        let verdict = match self.verdict {
            Verdict::Exact => "exact".to_string(),
            Verdict::Oversold => format!("OVERSOLD by {}", self.oversold),
            Verdict::CountWrong => "COUNT WRONG".to_string(),
            Verdict::Stopped => "stopped".to_string(),
        };
        match &self.database {
            // A shared sale's verdict judges every run's purchases in this
            // run's stretch, so the line says whose they were.
            Some(db) if db.joined || db.runs > 1 => writeln!(
                out,
                "  sold          {} by this run + {} by other runs, of {}   {verdict}",
                self.sold, db.purchases_by_others, self.tickets
            )?,
            _ => writeln!(
                out,
                "  sold          {} of {}   {verdict}",
                self.sold, self.tickets
            )?,
        }
        match self.remaining {
            Some(r) => writeln!(out, "  remaining     {r}")?,
            None if self.store_corrupt => writeln!(
                out,
                "  remaining     unknown: the store file ended corrupt or unreadable"
            )?,
            None => writeln!(out, "  remaining     unknown")?,
        }
        if let Some(share) = self.per_buyer {
            writeln!(out, "  per buyer     min {}, max {}", share.min, share.max)?;
        }
        let without = self.went_without;
        if without > 0 {
            writeln!(
                out,
                "  went without  {} found no ticket left",
                plural(without as u64, "buyer")
            )?;
        }
        if let Some(lost) = self.lost_updates {
            writeln!(out, "  lost updates  {lost}")?;
        }
        match self.vanished {
            Some(0) | None => {}
            // Each killed buyer may have written its purchase without
            // living to count it: that is why a stopped sale can show these.
            Some(n) if self.verdict == Verdict::Stopped => writeln!(
                out,
                "  vanished      {n} (bought by buyers killed before they counted it)"
            )?,
            Some(n) => writeln!(
                out,
                "  vanished      {n} (the count fell by more than was sold)"
            )?,
        }
        // No read of a database can tear: the line would only be noise
        // there (the JSON keeps its 0). Lab 5 asks for the shm store's 0.
        if !self.store.is_database() {
            writeln!(out, "  torn reads    {}", self.torn_reads)?;
        }
        if self.store == StoreKind::Sqlite {
            writeln!(
                out,
                "  busy waits    {} (statements that waited for another buyer's write lock)",
                self.busy_statements
            )?;
        }
        if shows_failed_swaps(self.lock, self.store) {
            writeln!(out, "  failed swaps  {}", self.failed_swaps)?;
        }
        if self.lock == LockMode::Serializable {
            writeln!(
                out,
                "  retries       {} (transactions the database refused and the buyers tried again)",
                self.retries
            )?;
        }
        if let Some(db) = &self.database {
            writeln!(
                out,
                "  database      sale {}{}: this run recorded {}",
                db.sale,
                if db.joined { ", joined" } else { "" },
                plural(db.purchases_by_run, "purchase"),
            )?;
            // The name `ticketlab sales` lists this run's purchases under.
            writeln!(out, "  run           {}", db.run)?;
            if db.joined || db.runs > 1 {
                // What other runs did is named apart: this run's figures
                // above are judged from the count it found at its start.
                writeln!(
                    out,
                    "  other runs    {} while this run sold (the count was {} at its start)",
                    plural(db.purchases_by_others, "purchase"),
                    db.count_at_start,
                )?;
                writeln!(
                    out,
                    "  every run     {} (`ticketlab sales` lists them)",
                    plural(db.purchases, "purchase"),
                )?;
            }
        }
        let dead: Vec<String> = self
            .per_worker
            .iter()
            .enumerate()
            .filter(|(_, w)| matches!(w.end, WorkerEnd::Crashed | WorkerEnd::CrashedAsAsked))
            .map(|(i, w)| match w.end {
                WorkerEnd::CrashedAsAsked => format!("buyer {}, as --crash asked", BuyerNo(i)),
                _ => format!("buyer {}", BuyerNo(i)),
            })
            .collect();
        if dead.is_empty() {
            writeln!(out, "  buyers died   0")?;
        } else {
            writeln!(out, "  buyers died   {} ({})", dead.len(), dead.join(", "))?;
        }
        let failed: Vec<String> = self
            .per_worker
            .iter()
            .enumerate()
            .filter_map(|(i, w)| match w.end {
                WorkerEnd::GaveUp => {
                    Some(format!("buyer {} gave up on a corrupt store", BuyerNo(i)))
                }
                WorkerEnd::Error => Some(format!("buyer {} met an error", BuyerNo(i))),
                _ => None,
            })
            .collect();
        if !failed.is_empty() {
            writeln!(
                out,
                "  buyers failed {} ({})",
                failed.len(),
                failed.join(", ")
            )?;
        }
        match meaningful_rate(self.sold, self.elapsed_ms) {
            Some(rate) => writeln!(
                out,
                "  elapsed       {:.1} ms   ({} purchases/s)",
                self.elapsed_ms,
                human_rate(rate)
            )?,
            None => writeln!(out, "  elapsed       {:.1} ms", self.elapsed_ms)?,
        }
        // Settings that take no lock up front wait for none: their buyers
        // wait inside the database, for a row, which no lock wait measures.
        if !crate::config::commits_not_locks(self.store, self.lock) {
            writeln!(out, "  lock wait     {:.1} ms in total", self.lock_wait_ms)?;
        }
        // Equal losses (one stale write erasing several of one buyer's
        // sales) make one sentence, so the three shown are three stories.
        let sentences = postmortem::sentences(&self.lost);
        for (_, sentence) in sentences.iter().take(3) {
            writeln!(out, "  lost: {sentence}")?;
        }
        let named: usize = sentences.iter().take(3).map(|(n, _)| n).sum();
        if self.lost.len() > named {
            let where_named = if traced {
                "named below"
            } else {
                "--trace names them all"
            };
            writeln!(
                out,
                "        … and {} more ({where_named})",
                self.lost.len() - named
            )?;
        }
        // Lost updates that other runs' buyers took part in leave no trace
        // in this run's: say so rather than leave the count unexplained.
        let unnamed = self
            .lost_updates
            .map_or(0, |n| (n as usize).saturating_sub(self.lost.len()));
        if unnamed > 0
            && self
                .database
                .as_ref()
                .is_some_and(|db| db.joined || db.runs > 1)
        {
            writeln!(
                out,
                "        … and {unnamed} with other runs' buyers (this run sees only its own)"
            )?;
        }
        if self.trace_overflow > 0 {
            writeln!(
                out,
                "  trace overflowed: {} operations not recorded; lost updates named from the rest",
                self.trace_overflow
            )?;
        }
        for r in &self.recoveries {
            let who = r.from.map_or("the holder".to_string(), |b| {
                format!("buyer {}", BuyerNo(b))
            });
            writeln!(
                out,
                "  recovered     buyer {} got EOWNERDEAD ({who} died holding the lock),\n                \
                 count set to {} (tickets - sales recorded); consistent again",
                BuyerNo(r.by),
                r.count
            )?;
        }
        match &self.ending {
            Ending::Completed => {}
            Ending::Interrupted(_) => writeln!(out, "  interrupted: the sale was stopped early")?,
            // Said so a student sees why: the holder is gone, this mutex
            // (raw_sync's, not robust) cannot be taken again, and only the
            // parent stepping in kept the sale from hanging.
            Ending::HolderDied { buyer, pid } => writeln!(
                out,
                "  stopped: buyer {} (pid {pid}) died holding the lock, which nobody can take\n           \
                 again: the sale would hang for ever, so the parent ended it.",
                BuyerNo(*buyer)
            )?,
            Ending::SellerDied => writeln!(out, "  stopped: the seller process died")?,
            Ending::StoreCorrupt => writeln!(
                out,
                "  stopped: the store file stayed unreadable; the buyers were ended"
            )?,
        }
        if let Some(diverged) = &self.replay_diverged {
            writeln!(out, "  replay diverged: {diverged}")?;
        }
        writeln!(
            out,
            "  seed          {} (repeat with --seed {})",
            self.seed, self.seed
        )?;
        // The interleaving itself, not just the seed: the same steps in the
        // same order give the same values, whatever the timing. On a line
        // of its own, so neither it nor the seed is split by a wrap.
        match self
            .schedule_compact
            .as_deref()
            .filter(|s| s.len() <= crate::schedule::PRINTABLE)
        {
            Some(schedule) => writeln!(out, "  interleaving  repeat with --schedule {schedule}"),
            // Recorded, but too long to paste: say where to keep it.
            None if self.schedule.is_some() => writeln!(
                out,
                "  interleaving  {}, too long to show: --save-schedule FILE keeps it",
                plural(self.schedule_steps() as u64, "step")
            ),
            None => Ok(()),
        }
    }

    /// Steps in the recorded interleaving.
    fn schedule_steps(&self) -> usize {
        self.schedule
            .as_deref()
            .map_or(0, |s| s.split(',').filter(|e| !e.is_empty()).count())
    }

    /// The post-mortem: every recorded operation in time order, then every
    /// lost update named.
    pub fn write_trace(&self, out: &mut dyn Write) -> io::Result<()> {
        match &self.schedule {
            Some(schedule) => writeln!(out, "schedule: {schedule}")?,
            None if self.trace_overflow > 0 => {
                writeln!(out, "schedule: not recorded whole (the trace overflowed)")?
            }
            None => {}
        }
        writeln!(out, "interleaving ({} operations):", self.events.len())?;
        for event in &self.events {
            writeln!(out, "{}", postmortem::describe(event))?;
        }
        if self.lost.is_empty() {
            writeln!(out, "no lost updates")?;
        } else {
            writeln!(out, "lost updates ({}):", self.lost.len())?;
            for lost in &self.lost {
                writeln!(out, "  {}", lost.sentence())?;
            }
        }
        Ok(())
    }
}

/// A sale as its JSON document shows it: the report, and the trace's
/// events when asked for.
#[derive(Debug, Serialize)]
pub struct SaleJson<'a> {
    #[serde(flatten)]
    report: &'a SaleReport,
    events: Option<Vec<postmortem::EventJson>>,
}

/// The fewest and the most tickets one buyer bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Share {
    /// Tickets the buyer that bought fewest bought.
    pub min: u64,
    /// Tickets the buyer that bought most bought.
    pub max: u64,
}

impl Share {
    /// The share of these buyers' purchases; `None` without buyers.
    fn of(bought: impl Iterator<Item = u64> + Clone) -> Option<Share> {
        Some(Share {
            min: bought.clone().min()?,
            max: bought.max()?,
        })
    }
}

/// Whether the summary and the live view show failed compare-and-swaps:
/// only a compare-and-swap loop has them. A database's `atomic` is one
/// conditional `UPDATE`, which never fails and tries again.
pub(crate) fn shows_failed_swaps(lock: LockMode, store: StoreKind) -> bool {
    lock == LockMode::Atomic && !store.is_database()
}

/// "1 ticket", "5 tickets".
pub(crate) fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Fewer purchases than this make no rate: 2 tickets in 5 ms are not
/// "400 purchases/s", and none in 3 s is not "0 purchases/s".
const RATE_MIN_SOLD: u64 = 10;

/// Purchases per second over `elapsed_ms`, or `None` when there are too
/// few purchases for a rate to mean anything. Every view and table shows a
/// rate only through this.
pub(crate) fn meaningful_rate(sold: u64, elapsed_ms: f64) -> Option<f64> {
    (sold >= RATE_MIN_SOLD && elapsed_ms > 0.0).then(|| sold as f64 / (elapsed_ms / 1000.0))
}

/// 1234567.0 → "1.23M", 5800.0 → "5.8k".
pub(crate) fn human_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg() -> SaleConfig {
        SaleConfig {
            workers: 3,
            tickets: 1,
            wants: Wants::Count(1),
            store: StoreKind::Shm,
            lock: LockMode::None,
            start_delay: Default::default(),
            search_delay: Default::default(),
            read_delay: Duration::from_millis(100),
            write_delay: Duration::ZERO,
            jitter: false,
            seed: 9,
            db: None,
            trace: false,
            schedule: None,
            one_process: false,
            crash: None,
            db_url: None,
            sale: None,
        }
    }

    fn worker(bought: u64) -> WorkerReport {
        WorkerReport {
            bought,
            attempts: 1,
            lock_wait_ms: 0.0,
            drawn_delay_ms: 100.0,
            torn_reads: 0,
            failed_swaps: 0,
            retries: 0,
            busy_statements: 0,
            end: WorkerEnd::Ok,
        }
    }

    fn ended(bought: u64, end: WorkerEnd) -> WorkerReport {
        WorkerReport {
            end,
            ..worker(bought)
        }
    }

    /// A sale of `tickets` by these buyers, ended as `ending`, whose store
    /// says `remaining`.
    fn sale(
        tickets: u64,
        workers: Vec<WorkerReport>,
        ending: Ending,
        remaining: Option<i64>,
    ) -> SaleReport {
        let mut c = cfg();
        c.tickets = tickets;
        c.workers = workers.len();
        c.lock = LockMode::Buy;
        let mut r = SaleReport::new(&c);
        r.per_worker = workers;
        r.ending = ending;
        r.settle(remaining, 10.0);
        r
    }

    #[test]
    fn only_a_compare_and_swap_loop_has_failed_swaps() {
        assert!(shows_failed_swaps(LockMode::Atomic, StoreKind::Shm));
        // A database's atomic is one conditional UPDATE: nothing to retry.
        assert!(!shows_failed_swaps(LockMode::Atomic, StoreKind::Sqlite));
        assert!(!shows_failed_swaps(LockMode::Atomic, StoreKind::Postgres));
        assert!(!shows_failed_swaps(LockMode::Buy, StoreKind::Shm));
    }

    fn summary(r: &SaleReport) -> String {
        let mut text = Vec::new();
        r.write_summary(&mut text).unwrap();
        String::from_utf8(text).unwrap()
    }

    fn sold_line(r: &SaleReport) -> String {
        let text = summary(r);
        text.lines()
            .find(|l| l.trim_start().starts_with("sold "))
            .unwrap_or_else(|| panic!("no sold line in {text}"))
            .to_string()
    }

    #[test]
    fn an_oversold_sale_counts_and_says_so() {
        let mut r = SaleReport::new(&cfg());
        r.per_worker = vec![worker(1), worker(1), worker(1)];
        r.settle(Some(0), 250.0);
        assert_eq!((r.sold, r.oversold, r.lost_updates), (3, 2, Some(2)));
        assert_eq!(r.vanished, Some(0));
        assert_eq!(r.verdict, Verdict::Oversold);
        assert!(!r.is_exact());
        let text = summary(&r);
        assert!(text.contains("OVERSOLD by 2"), "{text}");
        assert!(text.contains("--seed 9"), "{text}");
        assert_eq!(serde_json::to_value(&r).unwrap()["verdict"], "oversold");
    }

    #[test]
    fn failed_swaps_are_summed_and_shown_only_under_atomic() {
        let mut c = cfg();
        c.lock = LockMode::Atomic;
        let mut r = SaleReport::new(&c);
        let lost = |n| WorkerReport {
            failed_swaps: n,
            ..worker(0)
        };
        r.per_worker = vec![worker(1), lost(2), lost(1)];
        r.settle(Some(0), 1.0);
        assert_eq!(r.failed_swaps, 3);
        assert!(
            summary(&r).contains("  failed swaps  3\n"),
            "{}",
            summary(&r)
        );
        assert_eq!(serde_json::to_value(&r).unwrap()["failed_swaps"], 3);
        let r = sale(1, vec![worker(1)], Ending::Completed, Some(0));
        assert!(!summary(&r).contains("failed swaps"), "{}", summary(&r));
    }

    #[test]
    fn the_share_per_buyer_shows_only_when_a_buyer_may_buy_more_than_one() {
        let mut c = cfg();
        c.tickets = 10;
        c.wants = Wants::All;
        let mut r = SaleReport::new(&c);
        r.per_worker = vec![worker(7), worker(0), worker(3)];
        r.settle(Some(0), 1.0);
        assert_eq!(r.per_buyer, Some(Share { min: 0, max: 7 }));
        assert!(
            summary(&r).contains("  per buyer     min 0, max 7\n"),
            "{}",
            summary(&r)
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["per_buyer"]["max"], 7);
        let r = sale(1, vec![worker(1), worker(0)], Ending::Completed, Some(0));
        assert_eq!(r.per_buyer, None);
        assert!(!summary(&r).contains("per buyer"), "{}", summary(&r));
    }

    #[test]
    fn an_exact_sale_says_exact() {
        let r = sale(5, vec![worker(3), worker(2)], Ending::Completed, Some(0));
        assert_eq!((r.lost_updates, r.vanished), (Some(0), Some(0)));
        assert_eq!(r.verdict, Verdict::Exact);
        assert!(r.is_exact());
        assert!(sold_line(&r).ends_with("5 of 5   exact"), "{}", summary(&r));
        assert!(!summary(&r).contains("vanished"), "{}", summary(&r));
        assert_eq!(serde_json::to_value(&r).unwrap()["verdict"], "exact");
    }

    #[test]
    fn lost_updates_without_oversold_are_a_wrong_count() {
        // 5 tickets, 4 sold, yet the count says 3 are left: 2 sales forgotten.
        let r = sale(5, vec![worker(2), worker(2)], Ending::Completed, Some(3));
        assert_eq!(
            (r.oversold, r.lost_updates, r.vanished),
            (0, Some(2), Some(0))
        );
        assert_eq!(r.verdict, Verdict::CountWrong);
        assert!(sold_line(&r).ends_with("COUNT WRONG"), "{}", summary(&r));
    }

    /// A shared `--db` with `{"count":-5}` planted: sold 27 of
    /// 1000, remaining -5. It once printed "lost -978" and "exact".
    #[test]
    fn tickets_that_vanish_are_a_wrong_count_not_negative_lost_updates() {
        let r = sale(1000, vec![worker(27)], Ending::Completed, Some(-5));
        assert_eq!(r.lost_updates, Some(0));
        assert_eq!(r.vanished, Some(978));
        assert_eq!(r.verdict, Verdict::CountWrong);
        let text = summary(&r);
        assert!(sold_line(&r).ends_with("COUNT WRONG"), "{text}");
        assert!(text.contains("lost updates  0\n"), "{text}");
        assert!(
            text.contains("vanished      978 (the count fell by more than was sold)"),
            "{text}"
        );
        assert!(!text.contains("exact") && !text.contains("-978"), "{text}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["lost_updates"], 0);
        assert_eq!(json["vanished"], 978);
        assert_eq!(json["verdict"], "count wrong");
    }

    /// `{"count": -9223372036854775808}` once printed "lost updates
    /// 9223372036854774847": `tickets - remaining` wrapped.
    #[test]
    fn the_most_negative_count_neither_wraps_nor_panics() {
        let r = sale(1000, vec![worker(27)], Ending::Completed, Some(i64::MIN));
        assert_eq!(r.lost_updates, Some(0));
        // The true figure, 9223372036854776781, is past i64: it saturates.
        assert_eq!(r.vanished, Some(i64::MAX));
        assert_eq!(r.verdict, Verdict::CountWrong);
        let text = summary(&r);
        assert!(!text.contains("9223372036854774847"), "{text}");
        assert!(text.contains("lost updates  0\n"), "{text}");
    }

    #[test]
    fn the_tally_saturates_at_every_extreme() {
        let t = Tally::new(0, u64::MAX, Some(i64::MAX));
        assert_eq!(t.oversold, u64::MAX);
        assert_eq!((t.lost_updates, t.vanished), (Some(i64::MAX), Some(0)));
        let t = Tally::new(u64::MAX, 0, Some(i64::MIN));
        assert_eq!((t.lost_updates, t.vanished), (Some(0), Some(i64::MAX)));
        let t = Tally::new(10, 4, Some(6));
        assert_eq!(
            (t.oversold, t.lost_updates, t.vanished),
            (0, Some(0), Some(0))
        );
        let t = Tally::new(10, 4, None);
        assert_eq!((t.lost_updates, t.vanished), (None, None));
    }

    /// Ctrl-C during a locked sale: the parent kills a buyer that had
    /// written its purchase but not yet counted it, so one ticket is gone
    /// from the count that nobody counts as bought. That is what stopping
    /// does, not a wrong count, and never negative lost updates.
    #[test]
    fn an_interrupted_correct_sale_is_stopped() {
        let workers = vec![worker(3), ended(2, WorkerEnd::EndedByParent)];
        let r = sale(10, workers, Ending::Interrupted(libc::SIGINT), Some(4));
        assert_eq!((r.lost_updates, r.vanished), (Some(0), Some(1)));
        assert_eq!(r.verdict, Verdict::Stopped);
        let text = summary(&r);
        assert!(sold_line(&r).ends_with("5 of 10   stopped"), "{text}");
        assert!(!text.contains("-1"), "{text}");
        assert!(text.contains("killed before they counted it"), "{text}");
        assert_eq!(serde_json::to_value(&r).unwrap()["verdict"], "stopped");
        // With the books balanced, too.
        let workers = vec![worker(3), ended(2, WorkerEnd::EndedByParent)];
        let r = sale(10, workers, Ending::Interrupted(libc::SIGTERM), Some(5));
        assert_eq!(r.verdict, Verdict::Stopped);
    }

    #[test]
    fn a_stopped_sale_with_more_vanished_than_killed_buyers_is_a_wrong_count() {
        let workers = vec![worker(3), ended(2, WorkerEnd::EndedByParent)];
        let r = sale(10, workers, Ending::Interrupted(libc::SIGINT), Some(3));
        assert_eq!(r.vanished, Some(2));
        assert_eq!(r.verdict, Verdict::CountWrong);
    }

    #[test]
    fn a_stopped_racy_sale_that_lost_updates_is_a_wrong_count() {
        let workers = vec![worker(3), ended(2, WorkerEnd::EndedByParent)];
        let r = sale(10, workers, Ending::Interrupted(libc::SIGINT), Some(8));
        assert_eq!(r.lost_updates, Some(3));
        assert_eq!(r.verdict, Verdict::CountWrong);
    }

    #[test]
    fn a_stopped_sale_that_oversold_says_oversold() {
        let workers = vec![worker(3), ended(1, WorkerEnd::EndedByParent)];
        let r = sale(2, workers, Ending::Interrupted(libc::SIGINT), Some(0));
        assert_eq!(r.verdict, Verdict::Oversold);
    }

    #[test]
    fn every_cut_short_ending_with_consistent_numbers_is_stopped() {
        let holder = Ending::HolderDied { buyer: 1, pid: 42 };
        for (ending, second) in [
            (holder, WorkerEnd::Crashed),
            (Ending::SellerDied, WorkerEnd::EndedByParent),
            (Ending::Interrupted(libc::SIGTERM), WorkerEnd::NeverStarted),
            // A buyer died, the others finished: the sale was cut short too.
            (Ending::Completed, WorkerEnd::Crashed),
        ] {
            let r = sale(
                10,
                vec![worker(3), ended(1, second)],
                ending.clone(),
                Some(6),
            );
            assert_eq!(r.verdict, Verdict::Stopped, "{ending:?}");
            assert!(!r.is_exact());
        }
    }

    #[test]
    fn an_unreadable_store_is_a_wrong_count_after_a_full_sale_and_stopped_after_a_stop() {
        let mut c = cfg();
        c.store = StoreKind::File;
        let mut r = SaleReport::new(&c);
        r.per_worker = vec![worker(1), ended(0, WorkerEnd::GaveUp)];
        r.settle(None, 1.0);
        assert_eq!(r.verdict, Verdict::CountWrong);
        let text = summary(&r);
        assert!(
            text.contains("buyer 2 gave up on a corrupt store"),
            "{text}"
        );
        let mut r = SaleReport::new(&c);
        r.per_worker = vec![worker(1), ended(0, WorkerEnd::EndedByParent)];
        r.ending = Ending::Interrupted(libc::SIGINT);
        r.settle(None, 1.0);
        assert_eq!(r.verdict, Verdict::Stopped);
    }

    #[test]
    fn buyer_endings_keep_their_json_words() {
        let words = [
            (WorkerEnd::Ok, "ok", false),
            (WorkerEnd::GaveUp, "gave up", true),
            (WorkerEnd::Error, "error", true),
            (WorkerEnd::Crashed, "crashed", true),
            (WorkerEnd::CrashedAsAsked, "crashed as asked", false),
            (WorkerEnd::EndedByParent, "ended", false),
            (WorkerEnd::NeverStarted, "never started", false),
        ];
        for (end, word, failure) in words {
            assert_eq!(serde_json::to_value(end).unwrap(), word);
            assert_eq!(end.is_failure(), failure, "{word}");
        }
        let json = serde_json::to_value(ended(1, WorkerEnd::GaveUp)).unwrap();
        assert_eq!(json["end"], "gave up");
    }

    #[test]
    fn verdicts_have_one_word_each_in_json_and_text() {
        for v in [
            Verdict::Exact,
            Verdict::Oversold,
            Verdict::CountWrong,
            Verdict::Stopped,
        ] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
            assert_eq!(v.to_string(), v.as_str());
        }
        assert_eq!(format!("{:>8}|", Verdict::Exact), "   exact|");
    }

    #[test]
    fn a_corrupt_file_leaves_remaining_unknown() {
        let mut c = cfg();
        c.store = StoreKind::File;
        let mut r = SaleReport::new(&c);
        r.per_worker = vec![worker(1)];
        r.settle(None, 1.0);
        assert!(r.store_corrupt);
        assert_eq!((r.lost_updates, r.vanished), (None, None));
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["remaining"].is_null());
        assert!(json["vanished"].is_null());
        assert_eq!(json["verdict"], "count wrong");
    }

    #[test]
    fn every_ending_has_one_shape_in_json() {
        let endings = [
            (Ending::Completed, "completed"),
            (Ending::Interrupted(libc::SIGINT), "interrupted"),
            (Ending::HolderDied { buyer: 1, pid: 42 }, "holder_died"),
            (Ending::SellerDied, "seller_died"),
            (Ending::StoreCorrupt, "store_corrupt"),
        ];
        for (ending, kind) in endings {
            let json = serde_json::to_value(&ending).unwrap();
            let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["buyer", "kind", "pid", "signal"], "{json}");
            assert_eq!(json["kind"], kind);
        }
        let json = serde_json::to_value(Ending::HolderDied { buyer: 1, pid: 42 }).unwrap();
        assert_eq!((&json["buyer"], &json["pid"]), (&1.into(), &42.into()));
        assert!(json["signal"].is_null());
        let json = serde_json::to_value(Ending::Interrupted(libc::SIGTERM)).unwrap();
        assert_eq!(json["signal"], libc::SIGTERM);
        assert!(json["buyer"].is_null() && json["pid"].is_null());
    }

    #[test]
    fn json_delays_are_milliseconds_and_wanting_all_is_null() {
        let mut c = cfg();
        c.wants = Wants::All;
        c.write_delay = Duration::from_micros(50);
        let r = SaleReport::new(&c);
        let json = serde_json::to_value(r.json(false)).unwrap();
        assert_eq!(json["read_delay_ms"], 100.0);
        assert_eq!(json["write_delay_ms"], 0.05);
        assert!(json["wants"].is_null(), "{json}");
        assert!(json["events"].is_null(), "{json}");
        c.wants = Wants::Count(3);
        let json = serde_json::to_value(SaleReport::new(&c).json(false)).unwrap();
        assert_eq!(json["wants"], 3);
    }

    #[test]
    fn with_events_the_json_holds_the_trace() {
        let mut r = sale(1, vec![worker(1)], Ending::Completed, Some(0));
        r.events = vec![
            Event {
                t_ns: 1_500_000,
                buyer: 0,
                op: crate::protocol::Op::Read,
                value: 1,
            },
            Event {
                t_ns: 2_000_000,
                buyer: 0,
                op: crate::protocol::Op::Unlocked,
                value: 7,
            },
        ];
        let json = serde_json::to_value(r.json(true)).unwrap();
        let events = json["events"].as_array().unwrap();
        assert_eq!(
            events[0],
            serde_json::json!({"at_ms": 1.5, "buyer": 0, "op": "read", "value": 1})
        );
        // An operation that involves no count carries none.
        assert!(events[1]["value"].is_null(), "{json}");
        assert_eq!(events[1]["op"], "unlocked");
    }

    #[test]
    fn rates_are_short() {
        assert_eq!(human_rate(1_234_567.0), "1.23M");
        assert_eq!(human_rate(5_800.0), "5.8k");
        assert_eq!(human_rate(12.0), "12");
    }

    #[test]
    fn a_rate_is_shown_only_when_it_means_something() {
        // 2 tickets in 5.7 ms are not "353 purchases/s"; nothing sold in
        // 3 s is not "0 purchases/s".
        assert_eq!(meaningful_rate(2, 5.7), None);
        assert_eq!(meaningful_rate(0, 3000.0), None);
        assert_eq!(meaningful_rate(10, 0.0), None);
        assert!(meaningful_rate(2000, 1.4).is_some());
        assert_eq!(meaningful_rate(10, 1000.0), Some(10.0));
        assert_eq!(meaningful_rate(300, 20.0), Some(15_000.0));
    }
}
