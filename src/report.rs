//! What a sale did: the numbers, the summary a person reads, the JSON a
//! script reads.

use std::io::{self, Write};

use serde::Serialize;

use crate::config::{LockMode, SaleConfig, StoreKind, Wants, format_duration};
use crate::postmortem::{self, Event, LostUpdate};

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
    /// How it ended: "ok", "crashed", "gave up", "error", "killed".
    pub end: &'static str,
}

/// How a sale ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// Tickets on sale.
    pub tickets: u64,
    /// Tickets each buyer wanted.
    pub wants: Wants,
    /// The run's seed.
    pub seed: u64,
    /// Read delay as given.
    pub read_delay: String,
    /// Write delay as given.
    pub write_delay: String,
    /// Whether delays were jittered.
    pub jitter: bool,
    /// Tickets the buyers believe they bought.
    pub sold: u64,
    /// Tickets the store says are left; `None` when the file is corrupt.
    pub remaining: Option<i64>,
    /// `max(0, sold - tickets)`.
    pub oversold: u64,
    /// `sold - (tickets - remaining)`: sales the count forgot.
    pub lost_updates: Option<i64>,
    /// Reads that found a half-written file.
    pub torn_reads: u64,
    /// Whether the file store ended unparsable.
    pub store_corrupt: bool,
    /// Buyers killed by a signal or by a panic.
    pub crashed_workers: usize,
    /// From the start signal to the last buyer's finish.
    pub elapsed_ms: f64,
    /// Purchases per second over `elapsed_ms`.
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
    /// The recorded operations, in time order (only printed with `--trace`).
    #[serde(skip)]
    pub events: Vec<Event>,
}

impl SaleReport {
    /// A report with the settings filled in and every figure zero.
    pub fn new(cfg: &SaleConfig) -> SaleReport {
        SaleReport {
            store: cfg.store,
            lock: cfg.lock,
            workers: cfg.workers,
            tickets: cfg.tickets,
            wants: cfg.wants,
            seed: cfg.seed,
            read_delay: format_duration(cfg.read_delay),
            write_delay: format_duration(cfg.write_delay),
            jitter: cfg.jitter,
            sold: 0,
            remaining: None,
            oversold: 0,
            lost_updates: None,
            torn_reads: 0,
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
        }
    }

    /// Fills the derived figures from the per-buyer ones and the final count.
    pub fn settle(&mut self, remaining: Option<i64>, elapsed_ms: f64) {
        self.sold = self.per_worker.iter().map(|w| w.bought).sum();
        self.torn_reads = self.per_worker.iter().map(|w| w.torn_reads).sum();
        self.lock_wait_ms = self.per_worker.iter().map(|w| w.lock_wait_ms).sum();
        self.crashed_workers = self
            .per_worker
            .iter()
            .filter(|w| w.end == "crashed")
            .count();
        self.remaining = remaining;
        self.store_corrupt = self.store == StoreKind::File && remaining.is_none();
        self.oversold = self.sold.saturating_sub(self.tickets);
        self.lost_updates = remaining.map(|r| self.sold as i64 - (self.tickets as i64 - r));
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
        let racy = self.store != StoreKind::Server
            && matches!(self.lock, LockMode::None | LockMode::Write);
        let lost = self.lost_updates.unwrap_or(0).max(0) as usize;
        if racy && lost > 0 {
            self.lost = postmortem::lost_updates(self.tickets as i64, &mut self.events);
            self.lost.truncate(lost);
        }
    }

    /// Whether the sale sold exactly what it had: nothing oversold, nothing lost.
    pub fn is_exact(&self) -> bool {
        self.oversold == 0 && self.lost_updates == Some(0)
    }

    /// The human summary.
    pub fn write_summary(&self, out: &mut dyn Write) -> io::Result<()> {
        let tickets = plural(self.tickets, "ticket");
        writeln!(
            out,
            "sale: {} buyers, {tickets}, store {}, lock {}, wants {}, delays {}/{}{}",
            self.workers,
            self.store,
            self.lock,
            self.wants,
            self.read_delay,
            self.write_delay,
            if self.jitter { " jittered" } else { "" }
        )?;
        let verdict = if self.oversold > 0 {
            format!("   OVERSOLD by {}", self.oversold)
        } else if self.lost_updates.unwrap_or(0) > 0 {
            "   COUNT WRONG".to_string()
        } else if self.remaining.is_some() && self.ending == Ending::Completed {
            "   exact".to_string()
        } else {
            String::new()
        };
        writeln!(
            out,
            "  sold          {} of {}{verdict}",
            self.sold, self.tickets
        )?;
        match self.remaining {
            Some(r) => writeln!(out, "  remaining     {r}")?,
            None if self.store_corrupt => {
                writeln!(out, "  remaining     unknown: the store file ended corrupt")?
            }
            None => writeln!(out, "  remaining     unknown")?,
        }
        if let Some(lost) = self.lost_updates {
            writeln!(out, "  lost updates  {lost}")?;
        }
        writeln!(out, "  torn reads    {}", self.torn_reads)?;
        let dead: Vec<String> = self
            .per_worker
            .iter()
            .enumerate()
            .filter(|(_, w)| w.end == "crashed")
            .map(|(i, _)| format!("buyer {i}"))
            .collect();
        if dead.is_empty() {
            writeln!(out, "  buyers died   0")?;
        } else {
            writeln!(out, "  buyers died   {} ({})", dead.len(), dead.join(", "))?;
        }
        writeln!(
            out,
            "  elapsed       {:.1} ms   ({} purchases/s)",
            self.elapsed_ms,
            human_rate(self.ops_per_sec)
        )?;
        writeln!(out, "  lock wait     {:.1} ms in total", self.lock_wait_ms)?;
        for lost in self.lost.iter().take(3) {
            writeln!(out, "  lost: {}", lost.sentence())?;
        }
        if self.lost.len() > 3 {
            writeln!(
                out,
                "        … and {} more (--trace names them all)",
                self.lost.len() - 3
            )?;
        }
        if self.trace_overflow > 0 {
            writeln!(
                out,
                "  trace overflowed: {} operations not recorded; lost updates named from the rest",
                self.trace_overflow
            )?;
        }
        match &self.ending {
            Ending::Completed => {}
            Ending::Interrupted(_) => writeln!(out, "  interrupted: the sale was stopped early")?,
            Ending::HolderDied { buyer, pid } => writeln!(
                out,
                "  stopped: buyer {buyer} (pid {pid}) died holding the lock; the others were ended"
            )?,
            Ending::SellerDied => writeln!(out, "  stopped: the seller process died")?,
        }
        writeln!(
            out,
            "  seed          {} (repeat with --seed {})",
            self.seed, self.seed
        )
    }

    /// The post-mortem: every recorded operation in time order, then every
    /// lost update named.
    pub fn write_trace(&self, out: &mut dyn Write) -> io::Result<()> {
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

/// "1 ticket", "5 tickets".
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// 1234567.0 → "1.23M", 5800.0 → "5.8k".
pub fn human_rate(x: f64) -> String {
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
            read_delay: Duration::from_millis(100),
            write_delay: Duration::ZERO,
            jitter: false,
            seed: 9,
            db: None,
            trace: false,
        }
    }

    fn worker(bought: u64) -> WorkerReport {
        WorkerReport {
            bought,
            attempts: 1,
            lock_wait_ms: 0.0,
            drawn_delay_ms: 100.0,
            torn_reads: 0,
            end: "ok",
        }
    }

    #[test]
    fn an_oversold_sale_counts_and_says_so() {
        let mut r = SaleReport::new(&cfg());
        r.per_worker = vec![worker(1), worker(1), worker(1)];
        r.settle(Some(0), 250.0);
        assert_eq!((r.sold, r.oversold, r.lost_updates), (3, 2, Some(2)));
        assert!(!r.is_exact());
        let mut text = Vec::new();
        r.write_summary(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("OVERSOLD by 2"), "{text}");
        assert!(text.contains("--seed 9"), "{text}");
    }

    #[test]
    fn a_corrupt_file_leaves_remaining_unknown() {
        let mut c = cfg();
        c.store = StoreKind::File;
        let mut r = SaleReport::new(&c);
        r.per_worker = vec![worker(1)];
        r.settle(None, 1.0);
        assert!(r.store_corrupt);
        assert_eq!(r.lost_updates, None);
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["remaining"].is_null());
    }

    #[test]
    fn rates_are_short() {
        assert_eq!(human_rate(1_234_567.0), "1.23M");
        assert_eq!(human_rate(5_800.0), "5.8k");
        assert_eq!(human_rate(12.0), "12");
    }
}
