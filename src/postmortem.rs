//! Naming lost updates from the recorded operations.
//!
//! The count is a number, but it stands for a set of sales: the ones it has
//! counted. A buyer that reads the count sees the sales counted so far;
//! when it writes, the count stands for exactly what it saw plus its own
//! sale, whatever was counted in between. So every write is a new version
//! of the set whose parent is the version its writer read, and the versions
//! form a tree: the sales a version counts are the writes on its path to
//! the root. A write drops the sales on the current path that are not on
//! its parent's (the buyers who sold after it read), and may bring back
//! sales an earlier stale write had dropped.
//!
//! At the end the lost sales are the writes off the final path, each named
//! with the last buyer that dropped it. Their number is exactly
//! `sold - (tickets - remaining)`, and a buyer never overwrites itself: its
//! own earlier sales come before its read, so they are on its parent's path
//! unless someone else dropped them first.

use std::collections::HashMap;

use serde::Serialize;

use crate::protocol::{BuyerNo, Op};

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
        Op::Sent => "sent",
        Op::Busy => "busy",
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

/// The root of the version tree: the count as it was put on sale.
const ROOT: usize = usize::MAX;

/// One write: a version of the counted set.
#[derive(Debug, Clone, Copy)]
struct Version {
    /// The version its writer had read.
    parent: usize,
    /// Sales counted on the path to the root, this one included.
    depth: usize,
    buyer: usize,
    /// The last buyer other than the seller to drop this sale, with the
    /// count that buyer had read, and the write that dropped it.
    dropped_by: Option<(usize, i64, usize)>,
}

/// Replays operations one at a time; usable incrementally by the live view.
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    tickets: i64,
    versions: Vec<Version>,
    /// The version the count holds now.
    current: usize,
    /// Per buyer: the version and the count it read last.
    read: HashMap<usize, (usize, i64)>,
    /// The latest version holding each count, to place a read whose
    /// timestamp came out ahead of the write it read.
    latest: HashMap<i64, usize>,
}

impl Replay {
    /// Starts from the count on sale.
    pub(crate) fn new(tickets: i64) -> Replay {
        Replay {
            tickets,
            versions: Vec::new(),
            current: ROOT,
            read: HashMap::new(),
            latest: HashMap::from([(tickets, ROOT)]),
        }
    }

    fn count_of(&self, v: usize) -> i64 {
        if v == ROOT {
            self.tickets
        } else {
            self.tickets
                .saturating_sub(i64::try_from(self.versions[v].depth).unwrap_or(i64::MAX))
        }
    }

    fn depth_of(&self, v: usize) -> usize {
        if v == ROOT { 0 } else { self.versions[v].depth }
    }

    fn parent_of(&self, v: usize) -> usize {
        self.versions[v].parent
    }

    /// Feeds one event; a write returns the sales it erased, newest first.
    pub(crate) fn push(&mut self, event: &Event) -> Vec<LostUpdate> {
        match event.op {
            Op::Read => {
                // Timestamps are taken just after each operation, so a read
                // can sort ahead of the write it saw: then it saw the latest
                // version holding the count it read.
                let version = if self.count_of(self.current) == event.value {
                    self.current
                } else {
                    self.latest
                        .get(&event.value)
                        .copied()
                        .unwrap_or(self.current)
                };
                self.read.insert(event.buyer, (version, event.value));
                Vec::new()
            }
            Op::Wrote => self.write(event),
            _ => Vec::new(),
        }
    }

    fn write(&mut self, event: &Event) -> Vec<LostUpdate> {
        let (parent, count_read) = self
            .read
            .get(&event.buyer)
            .copied()
            .unwrap_or((self.current, event.value.saturating_add(1)));
        let id = self.versions.len();
        let mut lost = Vec::new();
        // Walk both paths up to where they meet: what is on the current
        // path alone is dropped; what is on the parent's alone comes back.
        let (mut a, mut b) = (self.current, parent);
        while a != b {
            if self.depth_of(a) >= self.depth_of(b) {
                let dropped = &mut self.versions[a];
                if dropped.buyer != event.buyer {
                    dropped.dropped_by = Some((event.buyer, count_read, id));
                    lost.push(LostUpdate {
                        overwritten_by: event.buyer,
                        lost_buyer: dropped.buyer,
                        count_read,
                    });
                }
                a = self.parent_of(a);
            } else {
                b = self.parent_of(b);
            }
        }
        self.versions.push(Version {
            parent,
            depth: self.depth_of(parent) + 1,
            buyer: event.buyer,
            dropped_by: None,
        });
        self.current = id;
        self.latest.insert(event.value, id);
        // The buyer's next write starts from what it wrote, unless it
        // reads again.
        self.read.insert(event.buyer, (id, event.value));
        lost
    }

    /// Every sale the count does not hold at the end, named with the last
    /// write that dropped it, in the order of those writes.
    pub(crate) fn lost(&self) -> Vec<LostUpdate> {
        let mut counted = vec![false; self.versions.len()];
        let mut v = self.current;
        while v != ROOT {
            counted[v] = true;
            v = self.parent_of(v);
        }
        let mut lost: Vec<(usize, usize, LostUpdate)> = self
            .versions
            .iter()
            .enumerate()
            .filter(|(id, _)| !counted[*id])
            .filter_map(|(id, version)| {
                let (by, count_read, write) = version.dropped_by?;
                Some((
                    write,
                    usize::MAX - id,
                    LostUpdate {
                        overwritten_by: by,
                        lost_buyer: version.buyer,
                        count_read,
                    },
                ))
            })
            .collect();
        lost.sort_by_key(|&(write, newest_first, _)| (write, newest_first));
        lost.into_iter().map(|(_, _, l)| l).collect()
    }
}

/// Every lost update of a run, given its events in any order.
pub(crate) fn lost_updates(tickets: i64, events: &mut [Event]) -> Vec<LostUpdate> {
    lost_updates_until(tickets, events, None)
}

/// The lost updates of the run up to `until` (nanoseconds; all of it for
/// `None`): the sales that the count did not hold then.
pub(crate) fn lost_updates_until(
    tickets: i64,
    events: &mut [Event],
    until: Option<u64>,
) -> Vec<LostUpdate> {
    events.sort_by_key(|e| (e.t_ns, e.buyer));
    let mut replay = Replay::new(tickets);
    for e in events
        .iter()
        .take_while(|e| until.is_none_or(|t| e.t_ns <= t))
    {
        replay.push(e);
    }
    replay.lost()
}

/// Up to when an overflowed trace holds every buyer's operations: the
/// earliest last entry of a buyer whose trace stops short of its end (an
/// exit, a sell-out, a crash). Past it, writes would be replayed without
/// the writes they read, and named losses would be made up.
pub(crate) fn recorded_until(events: &[Event]) -> Option<u64> {
    let mut last: HashMap<usize, Event> = HashMap::new();
    for e in events {
        let entry = last.entry(e.buyer).or_insert(*e);
        if e.t_ns >= entry.t_ns {
            *entry = *e;
        }
    }
    last.values()
        .filter(|e| !matches!(e.op, Op::Exited | Op::SoldOut | Op::Crashed))
        .map(|e| e.t_ns)
        .min()
}

/// Lost updates as sentences, one per run of equal ones (a stale write
/// that erased three of one buyer's sales is one sentence, not three), each
/// with how many lost updates it names.
pub(crate) fn sentences(lost: &[LostUpdate]) -> Vec<(usize, String)> {
    lost.chunk_by(|a, b| a == b)
        .map(|run| match run.len() {
            1 => (1, run[0].sentence()),
            n => (n, run[0].sentence_of(n)),
        })
        .collect()
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
    /// "buyer 41 wrote 0 — overwrote 3 of buyer 13's sales (it had read 1)".
    pub fn sentence_of(&self, n: usize) -> String {
        format!(
            "buyer {} wrote {} — overwrote {n} of buyer {}'s sales (it had read {})",
            BuyerNo(self.overwritten_by),
            self.count_read.saturating_sub(1),
            BuyerNo(self.lost_buyer),
            self.count_read
        )
    }

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

    /// A read then a write of one less, as a buyer does.
    fn buy(events: &mut Vec<Event>, t_read: u64, t_write: u64, buyer: usize, read: i64) {
        events.push(ev(t_read, buyer, Op::Read, read));
        events.push(ev(t_write, buyer, Op::Wrote, read - 1));
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
    fn a_stale_write_erases_the_sales_made_since_its_read() {
        // A, B, C read 5; A writes 4; D reads 4 and writes 3; B writes 4
        // (erasing A and D); C writes 4 (erasing B). 4 sold, 4 left: 3 lost.
        let (a, b, c, d) = (0, 1, 2, 3);
        let mut events = vec![
            ev(1, a, Op::Read, 5),
            ev(1, b, Op::Read, 5),
            ev(1, c, Op::Read, 5),
            ev(2, a, Op::Wrote, 4),
        ];
        buy(&mut events, 3, 4, d, 4);
        events.push(ev(5, b, Op::Wrote, 4));
        events.push(ev(6, c, Op::Wrote, 4));
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
        let mut events = Vec::new();
        for b in 0..5 {
            buy(&mut events, 2 * b as u64, 2 * b as u64 + 1, b, 5 - b as i64);
        }
        assert!(lost_updates(5, &mut events).is_empty());
    }

    #[test]
    fn a_buyer_never_overwrites_its_own_sale() {
        // The run that used to name buyer 1 overwriting itself: A and B
        // buy over and over. B's stale write drops two of A's sales, A's
        // stale write brings one back, and A's next write drops B's two.
        // Counting by numbers alone, a write was named as dropping its own
        // buyer's sale.
        let (a, b) = (0, 1);
        let mut events = vec![
            ev(1, a, Op::Read, 10),
            ev(2, a, Op::Wrote, 9),
            ev(3, b, Op::Read, 9),
            ev(4, a, Op::Read, 9),
            ev(5, a, Op::Wrote, 8),
            ev(6, a, Op::Read, 8),
            ev(7, a, Op::Wrote, 7),
            ev(8, a, Op::Read, 7),
            ev(9, b, Op::Wrote, 8), // drops A's 8 and 7
            ev(10, b, Op::Read, 8),
            ev(11, a, Op::Wrote, 6), // A read 7: brings 8 back
            ev(12, a, Op::Read, 6),
            ev(13, b, Op::Wrote, 7),
        ];
        buy(&mut events, 14, 15, b, 7);
        events.push(ev(16, a, Op::Wrote, 5));
        let sold = events.iter().filter(|e| e.op == Op::Wrote).count() as i64;
        let remaining = 5;
        let lost = lost_updates(10, &mut events);
        assert!(
            lost.iter().all(|l| l.overwritten_by != l.lost_buyer),
            "{lost:?}"
        );
        assert_eq!(lost.len() as i64, sold - (10 - remaining), "{lost:?}");
    }

    #[test]
    fn every_interleaving_of_three_buyers_names_exactly_the_lost_sales() {
        // Three buyers buying twice each from 6 tickets, every order of
        // their twelve steps that keeps each buyer's own order: the names
        // always add up to the count, and nobody overwrites itself.
        fn run(order: &[usize]) -> (Vec<LostUpdate>, i64) {
            let mut count = 6i64;
            let mut seen = [0i64; 3];
            let mut step = [0usize; 3];
            let mut events = Vec::new();
            for (t, &b) in order.iter().enumerate() {
                if step[b] % 2 == 0 {
                    seen[b] = count;
                    events.push(ev(t as u64, b, Op::Read, count));
                } else {
                    count = seen[b] - 1;
                    events.push(ev(t as u64, b, Op::Wrote, count));
                }
                step[b] += 1;
            }
            (lost_updates(6, &mut events), count)
        }
        fn orders(left: [usize; 3], prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            if left == [0; 3] {
                out.push(prefix.clone());
                return;
            }
            for b in 0..3 {
                if left[b] > 0 {
                    let mut next = left;
                    next[b] -= 1;
                    prefix.push(b);
                    orders(next, prefix, out);
                    prefix.pop();
                }
            }
        }
        let mut all = Vec::new();
        orders([4; 3], &mut Vec::new(), &mut all);
        assert_eq!(all.len(), 34_650);
        for order in all {
            let (lost, remaining) = run(&order);
            let sold = 6;
            assert_eq!(lost.len() as i64, sold - (6 - remaining), "{order:?}");
            assert!(lost.iter().all(|l| l.overwritten_by != l.lost_buyer));
        }
    }

    #[test]
    fn equal_losses_make_one_sentence() {
        let l = LostUpdate {
            overwritten_by: 0,
            lost_buyer: 1,
            count_read: 8,
        };
        let other = LostUpdate { lost_buyer: 2, ..l };
        assert_eq!(
            sentences(&[l, l, l, other]),
            vec![
                (
                    3,
                    "buyer 1 wrote 7 — overwrote 3 of buyer 2's sales (it had read 8)".to_string()
                ),
                (1, other.sentence()),
            ]
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
