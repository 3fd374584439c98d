//! Naming lost updates from the recorded writes.
//!
//! Replaying the writes in time order: a write of `v` over a stored `prev`
//! should have left `prev - 1`. If it left more, it undid `v - prev + 1`
//! sales that were still standing — the most recent ones, since those are
//! what its stale read had not seen. Summed over a run this is exactly
//! `sold - (tickets - remaining)`.

use serde::Serialize;

use crate::buyer::{BuyerNo, Op};

/// One recorded operation of one buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Nanoseconds since the run's epoch.
    pub t_ns: u64,
    /// The buyer.
    pub buyer: usize,
    /// What it did.
    pub op: Op,
    /// The count involved.
    pub value: i64,
}

/// One recorded operation as the JSON's `events` show it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct EventJson {
    /// Milliseconds since the run's epoch (the buyers' release).
    at_ms: f64,
    /// The buyer's index, from 0.
    buyer: usize,
    /// What it did, one word.
    op: &'static str,
    /// The count involved, `None` for an operation that involves none.
    value: Option<i64>,
}

impl From<&Event> for EventJson {
    fn from(e: &Event) -> EventJson {
        EventJson {
            at_ms: e.t_ns as f64 / 1e6,
            buyer: e.buyer,
            op: op_name(e.op),
            value: e.op.has_value().then_some(e.value),
        }
    }
}

/// The word an operation is in JSON: what `docs/json.md` lists.
pub(crate) fn op_name(op: Op) -> &'static str {
    match op {
        Op::NotStarted => "not_started",
        Op::Search => "search",
        Op::LockWait => "lock_wait",
        Op::Locked => "locked",
        Op::Read => "read",
        Op::Writing => "writing",
        Op::Wrote => "wrote",
        Op::Unlocked => "unlocked",
        Op::Bought => "bought",
        Op::SoldOut => "sold_out",
        Op::TornRead => "torn_read",
        Op::CasRetry => "cas_retry",
        Op::Exited => "exited",
        Op::Crashed => "crashed",
        Op::Retried => "retried",
    }
}

/// A sale that another buyer's write erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LostUpdate {
    /// The buyer whose write erased the sale.
    pub overwritten_by: usize,
    /// The buyer whose sale was erased.
    pub lost_buyer: usize,
    /// The count the overwriting buyer had read.
    pub count_read: i64,
}

/// Replays writes one at a time; usable incrementally by the live view.
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    stored: i64,
    standing: Vec<usize>,
}

impl Replay {
    /// Starts from the count on sale.
    pub(crate) fn new(tickets: i64) -> Replay {
        Replay {
            stored: tickets,
            standing: Vec::new(),
        }
    }

    /// Feeds one event; a write returns the sales it erased.
    pub(crate) fn push(&mut self, event: &Event) -> Vec<LostUpdate> {
        if event.op != Op::Wrote {
            return Vec::new();
        }
        let keep = self.kept_by(event);
        let lost = self
            .standing
            .drain(keep..)
            .rev()
            .map(|lost_buyer| LostUpdate {
                overwritten_by: event.buyer,
                lost_buyer,
                // Saturating: a count planted in a `--db` file can be any i64.
                count_read: event.value.saturating_add(1),
            })
            .collect();
        self.standing.push(event.buyer);
        self.stored = event.value;
        lost
    }

    /// Feeds one event without naming what it erased: the live view names
    /// only the few it shows, and a busy racy sale erases thousands of
    /// sales with every write.
    pub(crate) fn skip(&mut self, event: &Event) {
        if event.op == Op::Wrote {
            let keep = self.kept_by(event);
            self.standing.truncate(keep);
            self.standing.push(event.buyer);
            self.stored = event.value;
        }
    }

    /// How many standing sales survive this write.
    fn kept_by(&self, event: &Event) -> usize {
        let undone = event
            .value
            .saturating_sub(self.stored)
            .saturating_add(1)
            .max(0);
        self.standing
            .len()
            .saturating_sub(usize::try_from(undone).unwrap_or(usize::MAX))
    }
}

/// Every lost update of a run, given its events in any order.
pub(crate) fn lost_updates(tickets: i64, events: &mut [Event]) -> Vec<LostUpdate> {
    events.sort_by_key(|e| (e.t_ns, e.buyer));
    let mut replay = Replay::new(tickets);
    events.iter().flat_map(|e| replay.push(e)).collect()
}

/// One line of the post-mortem: "  12.345 ms  buyer 3  read 1".
pub(crate) fn describe(event: &Event) -> String {
    let ms = event.t_ns as f64 / 1e6;
    if event.op.has_value() {
        format!(
            "{ms:>10.3} ms  buyer {:<4} {} {}",
            BuyerNo(event.buyer),
            event.op.verb(),
            event.value
        )
    } else {
        format!(
            "{ms:>10.3} ms  buyer {:<4} {}",
            BuyerNo(event.buyer),
            event.op.verb()
        )
    }
}

impl LostUpdate {
    /// "buyer 41 wrote 0 — overwrote buyer 13's sale (it had read 1)".
    pub fn sentence(&self) -> String {
        format!(
            "buyer {} wrote {} — overwrote buyer {}'s sale (it had read {})",
            BuyerNo(self.overwritten_by),
            self.count_read.saturating_sub(1),
            BuyerNo(self.lost_buyer),
            self.count_read
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t_ns: u64, buyer: usize, op: Op, value: i64) -> Event {
        Event {
            t_ns,
            buyer,
            op,
            value,
        }
    }

    #[test]
    fn ten_buyers_reading_one_ticket_lose_nine_sales() {
        let mut events: Vec<Event> = (0..10).map(|b| ev(b as u64, b, Op::Read, 1)).collect();
        events.extend((0..10).map(|b| ev(100 + b as u64, b, Op::Wrote, 0)));
        let lost = lost_updates(1, &mut events);
        assert_eq!(lost.len(), 9);
        assert_eq!(
            lost[0],
            LostUpdate {
                overwritten_by: 1,
                lost_buyer: 0,
                count_read: 1
            }
        );
        assert_eq!(lost[8].overwritten_by, 9);
    }

    #[test]
    fn a_stale_write_erases_the_most_recent_standing_sales() {
        // A, B, C read 5; A writes 4; D reads 4 and writes 3; B writes 4
        // (erasing D and A); C writes 4 (erasing B). 4 sold, 4 left: 3 lost.
        let (a, b, c, d) = (0, 1, 2, 3);
        let mut events = vec![
            ev(1, a, Op::Wrote, 4),
            ev(2, d, Op::Wrote, 3),
            ev(3, b, Op::Wrote, 4),
            ev(4, c, Op::Wrote, 4),
        ];
        let lost = lost_updates(5, &mut events);
        let pairs: Vec<(usize, usize)> = lost
            .iter()
            .map(|l| (l.overwritten_by, l.lost_buyer))
            .collect();
        assert_eq!(pairs, vec![(b, d), (b, a), (c, b)]);
        let (sold, tickets, remaining) = (4i64, 5i64, 4i64);
        assert_eq!(lost.len() as i64, sold - (tickets - remaining));
    }

    #[test]
    fn a_serial_sale_loses_nothing() {
        let mut events: Vec<Event> = (0..5)
            .map(|b| ev(b as u64, b, Op::Wrote, 4 - b as i64))
            .collect();
        assert!(lost_updates(5, &mut events).is_empty());
    }

    #[test]
    fn counts_at_the_ends_of_i64_neither_wrap_nor_panic() {
        let mut events = vec![
            ev(1, 0, Op::Wrote, i64::MIN),
            ev(2, 1, Op::Wrote, i64::MAX),
            ev(3, 2, Op::Wrote, i64::MAX),
        ];
        let lost = lost_updates(i64::MAX, &mut events);
        assert_eq!(lost.len(), 2);
        assert_eq!(lost[1].count_read, i64::MAX);
        assert_eq!(
            lost[1].sentence(),
            format!(
                "buyer 3 wrote {} — overwrote buyer 2's sale (it had read {})",
                i64::MAX - 1,
                i64::MAX
            )
        );
    }

    #[test]
    fn sentences_name_both_buyers() {
        let l = LostUpdate {
            overwritten_by: 40,
            lost_buyer: 12,
            count_read: 1,
        };
        assert_eq!(
            l.sentence(),
            "buyer 41 wrote 0 — overwrote buyer 13's sale (it had read 1)"
        );
    }
}
