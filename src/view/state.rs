//! The data every view draws: one snapshot of a running sale, and the
//! commands a view can send back.

use std::time::Duration;

/// What one buyer process is doing right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BuyerState {
    /// Not forked yet, or not yet reported in.
    NotStarted,
    /// Looking for a ticket (between attempts).
    Searching,
    /// Reading the ticket count.
    Reading,
    /// Its one statement is on its way (a database's `atomic`: the
    /// conditional `UPDATE`'s round trip).
    InFlight,
    /// Blocked on the lock.
    WaitingLock,
    /// Inside the critical section.
    HoldingLock,
    /// Writing the new ticket count.
    Writing,
    /// Has bought what it wanted.
    Bought,
    /// Found no tickets left.
    SoldOut,
    /// Finished normally.
    Exited,
    /// Died (signal or error).
    Crashed,
}

/// One buyer's cell in the grid.
#[derive(Clone, Debug)]
pub(crate) struct BuyerCell {
    /// What the buyer is doing.
    pub state: BuyerState,
    /// Tickets this buyer believes it bought.
    pub bought: u64,
    /// A stale write overwrote one of its sales a moment ago.
    pub lost_sale: bool,
}

/// The run's settings, already formatted for display.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Store kind, e.g. "shm" or "file".
    pub store: String,
    /// Lock kind, e.g. "none" or "mutex".
    pub lock: String,
    /// Number of buyer processes.
    pub workers: usize,
    /// Tickets on sale at the start.
    pub tickets: u64,
    /// Tickets each buyer wants, e.g. "1" or "1-3".
    pub wants: String,
    /// Delay between reading and writing the count.
    pub read_delay: String,
    /// Delay while writing the count.
    pub write_delay: String,
    /// Whether delays are randomised.
    pub jitter: bool,
    /// Whether both delays are one statement's round trip rather than a
    /// read and a write (a database's `atomic`: its one conditional
    /// `UPDATE` reads nothing of its own beforehand).
    pub round_trip: bool,
    /// Whether the settings take no lock up front and the buyer marked as
    /// holding is the one whose write is not committed yet (a database's
    /// `atomic` and `serializable`).
    pub commits: bool,
    /// Whether buyers take the mutex at all (`SaleConfig::takes_mutex`).
    pub mutex: bool,
    /// Seed of the run, so it can be repeated.
    pub seed: u64,
    /// Whether the sale has any delay for `+` and `-` to scale.
    pub delays: bool,
}

/// Everything a view needs to draw one frame.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    /// The run's settings.
    pub settings: Settings,
    /// Time since the sale started.
    pub elapsed: Duration,
    /// Tickets the store says are left; `None` until it is first read.
    pub remaining: Option<i64>,
    /// The store was caught mid-rewrite just now: `remaining` (and
    /// `lost_updates`) are from the last read that parsed.
    pub count_stale: bool,
    /// Reads of the file store that caught it mid-rewrite so far (the
    /// view's own reads, not the buyers').
    pub torn_reads: u64,
    /// Tickets the buyers believe they bought.
    pub sold: u64,
    /// Tickets sold beyond those that existed: `max(0, sold - tickets)`.
    pub oversold: u64,
    /// `sold - (tickets - remaining)`, never negative; `None` if
    /// `remaining` is unknown. With a stale count, the figure of the last
    /// read that parsed, so newer sales never show as lost.
    pub lost_updates: Option<i64>,
    /// One cell per buyer, indexed by buyer number.
    pub buyers: Vec<BuyerCell>,
    /// Buyer currently holding the lock.
    pub holder: Option<usize>,
    /// Pid of that buyer, so a person (or a test) can signal it.
    pub holder_pid: Option<i32>,
    /// Buyers waiting for the lock.
    pub waiting: usize,
    /// Compare-and-swaps lost so far; `None` where the setting has none
    /// (every lock but `atomic`).
    pub failed_swaps: Option<u64>,
    /// Serializable transactions the database refused and the buyers
    /// tried again; `None` where the setting has none (every lock but
    /// `serializable`).
    pub retries: Option<u64>,
    /// A database sale other runs share: their purchases since this run
    /// began, counted apart from `sold`; `None` for any other sale.
    pub others: Option<u64>,
    /// PostgreSQL: each buyer whose statement waits on a lock, and whom
    /// for, as `pg_blocking_pids` names it (a buyer of this run by index,
    /// `None` a session of another run).
    pub waits_for: Vec<(usize, Option<usize>)>,
    /// Purchases per second so far, when there are enough to mean
    /// something (`report::meaningful_rate`).
    pub ops_per_sec: Option<f64>,
    /// Whether the sale is paused.
    pub paused: bool,
    /// Delay multiplier: 1.0 = as given.
    pub delay_factor: f64,
    /// Latest events, oldest first.
    pub events: Vec<String>,
    /// Whether every buyer has finished.
    pub finished: bool,
    /// Whether the sale was cut short (`q`, Ctrl-C, a signal, a dead
    /// holder): the final frame says "stopped".
    pub stopped: bool,
    /// Step mode: what the person scheduling the sale needs to see.
    pub stepper: Option<Stepper>,
}

/// Step mode's panel: a person is the scheduler.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stepper {
    /// Per buyer, by index.
    pub buyers: Vec<StepCell>,
    /// The buyer the arrows have selected (Enter or space steps it).
    pub selected: usize,
    /// The shared count as it is in the store right now.
    pub count: Option<i64>,
    /// The file store's bytes, exactly (`{"count":1}`, or empty mid-write).
    pub file_bytes: Option<String>,
    /// The buyer holding the mutex.
    pub holder: Option<usize>,
    /// The schedule so far, `1,1,2`.
    pub schedule: String,
    /// The goal, e.g. "make 2 buyers sell 1 ticket twice".
    pub challenge: String,
    /// Once the goal is met: the schedule that met it.
    pub achieved: Option<String>,
    /// The answer to the last key, e.g. "buyer 2 waits for the lock held by
    /// buyer 1".
    pub message: Option<String>,
}

/// One buyer in step mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StepCell {
    /// Its next step ("read"), or why it cannot move ("waits for the lock
    /// held by buyer 1", "finished").
    pub next: String,
    /// Whether a key can move it now.
    pub can_step: bool,
    /// The count it read last (its private copy), if it read one.
    pub seen: Option<i64>,
}

/// What the user asked for from a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ViewCommand {
    /// Stop the sale and leave.
    Quit,
    /// Pause or resume the sale.
    TogglePause,
    /// Longer delays (the `+` key).
    Slower,
    /// Shorter delays (the `-` key).
    Faster,
    /// Step mode: let buyer N (an index) take its next step (keys 1–9).
    StepBuyer(usize),
    /// Step mode: let the selected buyer take its next step (Enter, space).
    StepSelected,
    /// Step mode: select the next buyer (Down, Tab, Right).
    SelectNext,
    /// Step mode: select the previous buyer (Up, BackTab, Left).
    SelectPrevious,
    /// Step mode: run the rest freely (`a`).
    RunFree,
    /// Step mode: undo the last step: run the schedule minus one again on
    /// fresh buyers (`u`).
    Undo,
    /// Step mode: start again from nothing (`r`).
    Restart,
    /// Step mode: save the schedule so far (`s`).
    Save,
    /// Suspend the whole run to the shell (Ctrl-Z, which raw mode delivers
    /// as a key): pause, give the terminal back, stop; redraw on `fg`.
    Suspend,
}

impl Snapshot {
    /// One progress line for the plain view, free of escape codes.
    pub(crate) fn plain_line(&self) -> String {
        let remaining = match (self.remaining, self.count_stale) {
            (Some(n), false) => n.to_string(),
            // Marked, so a reader knows it is not this moment's count.
            (Some(n), true) => format!("{n} (last read)"),
            (None, _) => "?".to_string(),
        };
        format!(
            "[{:>6.2}s] remaining {remaining}  sold {}  oversold {}  waiting {}  {}",
            self.elapsed.as_secs_f64(),
            self.sold,
            self.oversold,
            self.waiting,
            holder_item(
                self.settings.commits,
                "lock",
                match (self.holder, self.holder_pid) {
                    (Some(b), Some(pid)) =>
                        Some(format!("buyer {} (pid {pid})", crate::protocol::BuyerNo(b))),
                    (holder, _) => holder.map(|h| holder_text(Some(h))),
                },
            ),
        ) + &self
            .retries
            .map_or(String::new(), |n| format!("  retries {n}"))
            + &self
                .others
                .map_or(String::new(), |n| format!("  other runs {n}"))
            + &waits_text(&self.waits_for).map_or(String::new(), |t| format!("  {t}"))
    }
}

/// Who waits for whom on the database, as `pg_blocking_pids` says:
/// "waits 2→1 3→1", "waits 4→another run"; `None` when nobody waits.
pub(crate) fn waits_text(waits: &[(usize, Option<usize>)]) -> Option<String> {
    if waits.is_empty() {
        return None;
    }
    let pairs: Vec<String> = waits
        .iter()
        .map(|&(w, h)| match h {
            Some(h) => format!(
                "{}→{}",
                crate::protocol::BuyerNo(w),
                crate::protocol::BuyerNo(h)
            ),
            None => format!("{}→another run", crate::protocol::BuyerNo(w)),
        })
        .collect();
    Some(format!("waits {}", pairs.join(" ")))
}

/// "buyer N" or "free", shared by the plain line and the screen.
/// What step mode and the views call the buyer marked as holding under a
/// database's `atomic` and `serializable` (`Settings::commits`), which
/// take no lock up front: its write is not committed yet.
pub(crate) const UNCOMMITTED: &str = "uncommitted write";

/// Who holds the lock (`who`, as the caller names the holder), after
/// `lock_label` (`lock` or `lock:`); where no lock is taken (`commits`),
/// whose write is uncommitted.
pub(crate) fn holder_item(commits: bool, lock_label: &str, who: Option<String>) -> String {
    if commits {
        let colon = if lock_label.ends_with(':') { ":" } else { "" };
        format!("{UNCOMMITTED}{colon} {}", who.as_deref().unwrap_or("none"))
    } else {
        format!("{lock_label} {}", who.as_deref().unwrap_or("free"))
    }
}

pub(crate) fn holder_text(holder: Option<usize>) -> String {
    match holder {
        Some(b) => format!("buyer {}", crate::protocol::BuyerNo(b)),
        None => "free".to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A snapshot of `workers` buyers and `tickets` tickets after `sold`
    /// purchases; the counters follow from those three numbers the way the
    /// engine computes them, so tests cannot build an impossible sale.
    pub(crate) fn snapshot(workers: usize, tickets: u64, sold: u64, remaining: i64) -> Snapshot {
        let mut buyers = vec![
            BuyerCell {
                state: BuyerState::Exited,
                bought: 0,
                lost_sale: false,
            };
            workers
        ];
        for cell in buyers.iter_mut().take(sold as usize) {
            cell.state = BuyerState::Bought;
            cell.bought = 1;
        }
        Snapshot {
            settings: Settings {
                store: "shm".to_string(),
                lock: "none".to_string(),
                workers,
                tickets,
                wants: "1".to_string(),
                read_delay: "1ms".to_string(),
                write_delay: "2ms".to_string(),
                jitter: true,
                round_trip: false,
                commits: false,
                mutex: false,
                seed: 42,
                delays: true,
            },
            elapsed: Duration::from_millis(1250),
            remaining: Some(remaining),
            count_stale: false,
            torn_reads: 0,
            sold,
            oversold: sold.saturating_sub(tickets),
            lost_updates: Some((sold as i64 - (tickets as i64 - remaining)).max(0)),
            buyers,
            holder: None,
            holder_pid: None,
            waiting: 0,
            failed_swaps: None,
            retries: None,
            others: None,
            waits_for: Vec::new(),
            ops_per_sec: Some(sold as f64 / 1.25),
            paused: false,
            delay_factor: 1.0,
            events: Vec::new(),
            finished: true,
            stopped: false,
            stepper: None,
        }
    }

    #[test]
    fn plain_line_matches_the_documented_shape() {
        let mut snap = snapshot(10, 5, 2, 3);
        snap.waiting = 4;
        snap.holder = Some(7);
        assert_eq!(
            snap.plain_line(),
            "[  1.25s] remaining 3  sold 2  oversold 0  waiting 4  lock buyer 8"
        );
    }

    #[test]
    fn plain_line_shows_free_lock_and_unknown_count() {
        let mut snap = snapshot(10, 1, 10, 0);
        snap.remaining = None;
        snap.lost_updates = None;
        let line = snap.plain_line();
        assert!(line.contains("remaining ?"), "{line}");
        assert!(line.contains("oversold 9"), "{line}");
        assert!(line.ends_with("lock free"), "{line}");
        assert!(!line.contains('\x1b'));
    }
}
