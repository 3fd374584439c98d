//! Reads a running sale out of the segment, without taking the lock, into
//! the snapshot the views draw; keeps the log of recent events.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::{SaleConfig, format_duration};
use crate::postmortem::{self, Event, Replay};
use crate::protocol::{BuyerNo, Op};
use crate::segment::{Segment, TraceEntry};
use crate::store::FileStore;
use crate::view::{BuyerCell, BuyerState, Settings, Snapshot};

/// Events kept for the screen.
const EVENT_LOG: usize = 64;
/// Most trace events followed in one tick. The parent has to win the CPU
/// from the buyers for every one; past this the log skips ahead (the
/// summary still names every lost update from the whole trace).
const EVENTS_PER_TICK: usize = 20_000;
/// How long a buyer whose sale was just overwritten stays marked in the
/// grid: long enough to be seen from the back of a room.
const LOST_MARK: Duration = Duration::from_millis(1500);

/// Follows one sale from tick to tick.
pub(crate) struct Monitor {
    settings: Settings,
    tickets: u64,
    events: VecDeque<String>,
    /// Trace entries already turned into events, per buyer.
    cursors: Vec<usize>,
    /// Last state seen per buyer, for untraced sales.
    last: Vec<(u32, i64)>,
    replay: Replay,
    /// The file store's file: its count is read from there.
    db: Option<PathBuf>,
    /// Whether the event log is wanted, and still follows every event.
    follow: bool,
    /// Whether the sale has compare-and-swaps to count.
    swaps: bool,
    /// Whether the sale has serializable transactions to retry.
    retries: bool,
    /// The last count that parsed, with the lost updates it made then.
    last_count: Option<(i64, Option<i64>)>,
    /// Reads of the file store that caught it mid-rewrite.
    torn_reads: u64,
    /// Per buyer: when a stale write last overwrote one of its sales.
    lost_at: Vec<Option<Duration>>,
}

impl Monitor {
    /// A monitor for a sale with these settings.
    pub(crate) fn new(cfg: &SaleConfig, db: Option<PathBuf>, events: bool) -> Monitor {
        Monitor {
            settings: Settings {
                store: cfg.store.to_string(),
                lock: cfg.lock.to_string(),
                workers: cfg.workers,
                tickets: cfg.tickets,
                wants: cfg.wants.to_string(),
                read_delay: format_duration(cfg.read_delay),
                write_delay: format_duration(cfg.write_delay),
                jitter: cfg.jitter,
                round_trip: crate::config::delays_are_round_trip(cfg.store, cfg.lock),
                commits: cfg.commits_not_locks(),
                mutex: cfg.takes_mutex(),
                seed: cfg.seed,
                delays: [cfg.search_delay, cfg.read_delay, cfg.write_delay]
                    .iter()
                    .any(|d| !d.is_zero()),
            },
            tickets: cfg.tickets,
            events: VecDeque::new(),
            cursors: vec![0; cfg.workers],
            last: vec![(0, 0); cfg.workers],
            replay: Replay::new(cfg.tickets as i64),
            db,
            follow: events,
            swaps: crate::report::shows_failed_swaps(cfg.lock, cfg.store),
            retries: cfg.lock == crate::config::LockMode::Serializable,
            last_count: None,
            torn_reads: 0,
            lost_at: vec![None; cfg.workers],
        }
    }

    /// The sale as it is now.
    pub(crate) fn snapshot(
        &mut self,
        seg: &Segment,
        elapsed: Duration,
        finished: bool,
    ) -> Snapshot {
        let n = self.cursors.len();
        let mut buyers = Vec::with_capacity(n);
        let mut sold = 0;
        let mut waiting = 0;
        let mut failed_swaps = 0u64;
        let mut retries = 0u64;
        for id in 0..n {
            let slot = seg.slot(id);
            failed_swaps = failed_swaps.saturating_add(slot.failed_swaps.load(Ordering::Relaxed));
            retries = retries.saturating_add(slot.retries.load(Ordering::Relaxed));
            let op = Op::from_u8(slot.state.load(Ordering::Acquire) as u8);
            let bought = slot.bought.load(Ordering::Relaxed);
            sold += bought;
            if matches!(op, Op::LockWait | Op::Busy) {
                waiting += 1;
            }
            buyers.push(BuyerCell {
                state: state_of(op),
                bought,
                lost_sale: false,
            });
        }
        if self.follow {
            if seg.layout().trace_per_worker > 0 {
                self.follow_trace(seg, elapsed);
            } else {
                self.follow_states(seg);
            }
        }
        // The count is read after the slots: a purchase stores the count
        // before its `bought`, so this order can only undercount lost
        // updates for a moment, never invent one.
        let control = seg.control();
        let read = match &self.db {
            Some(path) => read_whole_count(path),
            None => Some(seg.count().load(Ordering::Relaxed)),
        };
        for (cell, at) in buyers.iter_mut().zip(&self.lost_at) {
            cell.lost_sale = at.is_some_and(|at| elapsed.saturating_sub(at) < LOST_MARK);
        }
        let area = seg.lock_area();
        let holder = usize::try_from(area.holder_worker.load(Ordering::Relaxed)).ok();
        let holder_pid = Some(area.holder_pid.load(Ordering::Relaxed)).filter(|&p| p > 0);
        // A shared database sale: other runs' purchases (as the watcher
        // last read them) drop the count too, so they go into the figures
        // beside this run's, and are shown apart.
        let others = control
            .others_plus_one
            .load(Ordering::Relaxed)
            .checked_sub(1);
        // Whom each waiting buyer waits for, as the watcher last asked
        // PostgreSQL; a finished buyer waits for nobody.
        let waits_for = (0..n)
            .filter_map(|id| {
                let slot = seg.slot(id);
                let w = slot.waits_for.load(Ordering::Relaxed);
                let done = slot.finished_ns.load(Ordering::Relaxed) != 0;
                match w {
                    0 => None,
                    _ if done => None,
                    -1 => Some((id, None)),
                    h => usize::try_from(h - 1).ok().map(|h| (id, Some(h))),
                }
            })
            .collect();
        let tally =
            crate::report::Tally::new(self.tickets, sold.saturating_add(others.unwrap_or(0)), read);
        // A torn read shows the last count that parsed, marked as such,
        // with the lost updates of that moment: set against newer sales it
        // would show losses that never happened.
        let count_stale = read.is_none() && self.last_count.is_some();
        match read {
            Some(n) => self.last_count = Some((n, tally.lost_updates)),
            None => self.torn_reads += 1,
        }
        let (remaining, lost_updates) = match self.last_count {
            Some((n, lost)) => (Some(n), lost),
            None => (None, None),
        };
        Snapshot {
            settings: self.settings.clone(),
            elapsed,
            remaining,
            count_stale,
            torn_reads: self.torn_reads,
            sold,
            oversold: tally.oversold,
            lost_updates,
            buyers,
            holder,
            holder_pid: holder.and(holder_pid),
            waiting,
            failed_swaps: self.swaps.then_some(failed_swaps),
            retries: self.retries.then_some(retries),
            others,
            waits_for,
            ops_per_sec: crate::report::meaningful_rate(sold, elapsed.as_secs_f64() * 1000.0),
            // The supervisor knows whether it paused the sale.
            paused: false,
            delay_factor: f64::from(control.delay_permille.load(Ordering::Relaxed)) / 1000.0,
            events: self.events.iter().cloned().collect(),
            finished,
            // The supervisor knows whether it cut the sale short.
            stopped: false,
            stepper: None,
        }
    }

    fn log(&mut self, line: String) {
        if self.events.len() == EVENT_LOG {
            self.events.pop_front();
        }
        self.events.push_back(line);
    }

    fn mark_lost(&mut self, buyer: usize, elapsed: Duration) {
        if let Some(at) = self.lost_at.get_mut(buyer) {
            *at = Some(elapsed);
        }
    }

    fn follow_trace(&mut self, seg: &Segment, elapsed: Duration) {
        let cap = seg.layout().trace_per_worker;
        let mut fresh = Vec::new();
        for (id, cursor) in self.cursors.iter_mut().enumerate() {
            let written = (seg.slot(id).trace_len.load(Ordering::Acquire) as usize).min(cap);
            for entry in &seg.trace(id)[*cursor..written] {
                let (op, value) = TraceEntry::unpack(entry.word.load(Ordering::Relaxed));
                fresh.push(Event {
                    t_ns: entry.t_ns.load(Ordering::Relaxed),
                    buyer: id,
                    op: Op::from_u8(op),
                    value,
                });
            }
            *cursor = written;
        }
        if fresh.len() > EVENTS_PER_TICK {
            // The replay can no longer tell who overwrote whom: stop
            // naming, and say so once.
            self.follow = false;
            self.log(format!(
                "… {} events since the last frame: too many to follow here; the summary names every lost update",
                fresh.len()
            ));
            return;
        }
        fresh.sort_by_key(|e| (e.t_ns, e.buyer));
        // Every write is replayed, but only the lines the log keeps are
        // formatted: a busy racy sale records millions of events a second,
        // and formatting them all made stopping one take minutes.
        let shown = |e: &Event| matches!(e.op, Op::Read | Op::Wrote | Op::SoldOut | Op::Bought);
        let total = fresh.iter().filter(|e| shown(e)).count();
        let mut skip = total.saturating_sub(EVENT_LOG);
        for event in fresh {
            let lost = self.replay.push(&event);
            for l in &lost {
                self.mark_lost(l.lost_buyer, elapsed);
            }
            if !shown(&event) || skip > 0 {
                skip -= usize::from(shown(&event) && skip > 0);
                continue;
            }
            let mut line = postmortem::describe(&event)
                .split_once("buyer")
                .map(|(_, rest)| format!("buyer{}", squeeze(rest)))
                .unwrap_or_default();
            if !lost.is_empty() {
                line.push_str(&format!(" — overwrote {}", whose_sales(&lost)));
            }
            self.log(line);
        }
    }

    fn follow_states(&mut self, seg: &Segment) {
        for id in 0..self.last.len() {
            let slot = seg.slot(id);
            let now = (
                slot.state.load(Ordering::Acquire),
                slot.value.load(Ordering::Relaxed),
            );
            if now == self.last[id] {
                continue;
            }
            self.last[id] = now;
            let op = Op::from_u8(now.0 as u8);
            if matches!(op, Op::Read | Op::Bought | Op::SoldOut | Op::Crashed) {
                let line = if op.has_value() {
                    format!("buyer {} {} {}", BuyerNo(id), op.verb(), now.1)
                } else {
                    format!("buyer {} {}", BuyerNo(id), op.verb())
                };
                self.log(line);
            }
        }
    }
}

/// Reads the file store's count, retrying a few times past writers caught
/// between truncate and write; `None` if it stays torn (the snapshot then
/// shows the last count that parsed, marked as such).
fn read_whole_count(path: &std::path::Path) -> Option<i64> {
    (0..8).find_map(|_| FileStore::final_count(path))
}

/// "buyer 3's sale", "2 of buyer 3's sales, buyer 7's sale": one part per
/// buyer, in the order they were overwritten, so a write that erased
/// thirty sales is one short line.
fn whose_sales(lost: &[postmortem::LostUpdate]) -> String {
    let mut counts: Vec<(usize, usize)> = Vec::new();
    for l in lost {
        match counts.iter_mut().find(|(b, _)| *b == l.lost_buyer) {
            Some((_, n)) => *n += 1,
            None => counts.push((l.lost_buyer, 1)),
        }
    }
    counts
        .into_iter()
        .map(|(b, n)| match n {
            1 => format!("buyer {}'s sale", BuyerNo(b)),
            n => format!("{n} of buyer {}'s sales", BuyerNo(b)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn squeeze(s: &str) -> String {
    s.split_whitespace()
        .fold(String::new(), |acc, w| acc + " " + w)
}

/// What a cell on the screen shows for a buyer's last step.
pub(crate) fn state_of(op: Op) -> BuyerState {
    match op {
        Op::NotStarted => BuyerState::NotStarted,
        Op::Search | Op::Unlocked => BuyerState::Searching,
        Op::Read | Op::TornRead | Op::CasRetry | Op::Retried => BuyerState::Reading,
        // SQLite's busy wait is a wait for its write lock: shown as waiting.
        Op::LockWait | Op::Busy => BuyerState::WaitingLock,
        Op::Locked => BuyerState::HoldingLock,
        Op::Writing | Op::Wrote => BuyerState::Writing,
        Op::Bought => BuyerState::Bought,
        Op::SoldOut => BuyerState::SoldOut,
        Op::Exited => BuyerState::Exited,
        Op::Crashed => BuyerState::Crashed,
        Op::Sent => BuyerState::InFlight,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postmortem::LostUpdate;

    #[test]
    fn a_write_that_erased_many_sales_is_one_short_line() {
        let lost = |by: usize, of: usize| LostUpdate {
            overwritten_by: by,
            lost_buyer: of,
            count_read: 5,
        };
        assert_eq!(whose_sales(&[lost(0, 2)]), "buyer 3's sale");
        let many: Vec<LostUpdate> = std::iter::repeat_n(lost(0, 6), 29)
            .chain([lost(0, 2)])
            .collect();
        assert_eq!(whose_sales(&many), "29 of buyer 7's sales, buyer 3's sale");
    }
}
