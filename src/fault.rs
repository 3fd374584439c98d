//! Fault injection: a hidden hook that makes one buyer SIGKILL itself at a
//! named point of its lock path, so the tests can put a dead buyer in every
//! window the parent must survive, deterministically, instead of hoping a
//! signal lands there. Two points of the file store's rewrite stop the sale
//! instead, from inside it, so a stop lands mid-rewrite on every run.
//!
//! `TICKETLAB_FAULT=BUYER:POINT`, with BUYER counted from 1 as everywhere a
//! person reads buyer numbers. Not a flag: it is for the test suite and for
//! anyone checking the dead-holder argument in `docs/segment.md`.
//!
//! The public `sell --crash BUYER:STEP` (lab 8) arms the same machinery
//! with [`FaultPoint::BeforeStep`]: the buyer dies right before its first
//! shared step of that kind, a point a student can name from the step
//! table, where the hidden points name instants inside glibc.

use std::fmt;
use std::str::FromStr;

use crate::step::Step;

/// The environment variable that arms the hook.
pub(crate) const ENV: &str = "TICKETLAB_FAULT";

/// Where the armed buyer dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultPoint {
    /// Right after `pthread_mutex_trylock` took the mutex, before the holder
    /// is recorded.
    AfterTrylock,
    /// Right after a spinning trylock took it; the first trylock is
    /// skipped, so this is never the `AfterTrylock` window again.
    AfterSpin,
    /// Right after `pthread_mutex_lock` took it, having slept for it.
    AfterWait,
    /// Inside `pthread_mutex_lock`: the word taken, no owner recorded yet.
    InsideLock,
    /// Holding the mutex with the holder recorded.
    Holding,
    /// After clearing the holder, before `pthread_mutex_unlock`.
    BeforeUnlock,
    /// Inside `pthread_mutex_unlock`: the owner cleared, the word still taken.
    InsideUnlock,
    /// A waiter woken by an unlock, before it takes the mutex again: its
    /// wake-up dies with it.
    WokenWaiter,
    /// Database stores: after the purchase's `UPDATE` and `INSERT`, before
    /// the `COMMIT`: the database must roll both back.
    MidTransaction,
    /// File store: right after its truncate, the buyer stops the sale
    /// (SIGINT to the parent, as Ctrl-C or `q` would) and holds there, the
    /// file empty, until the stop lets it finish its purchase.
    StopMidRewrite,
    /// File store: right after its truncate, the buyer stops the sale
    /// (SIGTERM to the parent) and never goes on: a buyer stuck mid-rewrite,
    /// which the stop must not wait for without bound.
    StuckMidRewrite,
    /// Right before the buyer's first shared step of this kind (`--crash`):
    /// keyed to the buyer's own steps, so a run dies at the same place
    /// whatever the timing.
    BeforeStep(Step),
}

/// How the armed buyer takes the mutex when it dies right after taking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquisition {
    /// The first `pthread_mutex_trylock`, as an uncontended purchase does
    /// (retried, with spins, until it succeeds).
    FirstTrylock,
    /// Only the spinning trylocks: the first trylock is skipped, so the
    /// death comes after the spin path, not the trylock path.
    Spin,
    /// Asleep in `pthread_mutex_lock`.
    Sleep,
}

impl FaultPoint {
    /// The path that takes the mutex for a point that dies as soon as it
    /// holds it; `None` for the points that die elsewhere.
    pub(crate) fn acquisition(self) -> Option<Acquisition> {
        match self {
            FaultPoint::AfterTrylock | FaultPoint::InsideLock => Some(Acquisition::FirstTrylock),
            FaultPoint::AfterSpin => Some(Acquisition::Spin),
            FaultPoint::AfterWait => Some(Acquisition::Sleep),
            FaultPoint::Holding
            | FaultPoint::BeforeUnlock
            | FaultPoint::InsideUnlock
            | FaultPoint::WokenWaiter
            | FaultPoint::MidTransaction
            | FaultPoint::StopMidRewrite
            | FaultPoint::StuckMidRewrite
            | FaultPoint::BeforeStep(_) => None,
        }
    }
}

const POINTS: [(&str, FaultPoint); 11] = [
    ("after-trylock", FaultPoint::AfterTrylock),
    ("after-spin", FaultPoint::AfterSpin),
    ("after-wait", FaultPoint::AfterWait),
    ("inside-lock", FaultPoint::InsideLock),
    ("holding", FaultPoint::Holding),
    ("before-unlock", FaultPoint::BeforeUnlock),
    ("inside-unlock", FaultPoint::InsideUnlock),
    ("woken-waiter", FaultPoint::WokenWaiter),
    ("mid-transaction", FaultPoint::MidTransaction),
    ("stop-mid-rewrite", FaultPoint::StopMidRewrite),
    ("stuck-mid-rewrite", FaultPoint::StuckMidRewrite),
];

impl fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let FaultPoint::BeforeStep(step) = self {
            return write!(f, "before-{step}");
        }
        let name = POINTS
            .iter()
            .find(|(_, p)| p == self)
            .map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

/// One armed fault: which buyer (an index from 0) dies where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault {
    /// The buyer's index (its number minus one).
    pub buyer: usize,
    /// Where it dies.
    pub point: FaultPoint,
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        let names: Vec<&str> = POINTS.iter().map(|(n, _)| *n).collect();
        let bad = || {
            format!(
                "{ENV}='{s}' is not BUYER:POINT (BUYER from 1; POINT one of {})",
                names.join(", ")
            )
        };
        let (buyer, point) = buyer_and(s).ok_or_else(bad)?;
        let point = POINTS
            .iter()
            .find(|(n, _)| *n == point.trim())
            .map(|(_, p)| *p)
            .ok_or_else(bad)?;
        Ok(Fault { buyer, point })
    }
}

/// `BUYER:REST`, BUYER a buyer's number from 1: its index, and REST
/// trimmed. The one reading of the form `--crash` and the hook share.
pub(crate) fn buyer_and(s: &str) -> Option<(usize, &str)> {
    let (buyer, rest) = s.split_once(':')?;
    let buyer: usize = buyer.trim().parse().ok().filter(|&b| b >= 1)?;
    Some((buyer - 1, rest.trim()))
}

/// The fault armed in this process's environment, if any.
pub(crate) fn from_env() -> Result<Option<Fault>, String> {
    match std::env::var(ENV) {
        Ok(s) if !s.is_empty() => s.parse().map(Some),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each "after" point must be its own window: after-spin shared the
    // trylock path once, so a free mutex made it after-trylock again.
    #[test]
    fn each_after_point_takes_the_lock_its_own_way() {
        assert_eq!(
            FaultPoint::AfterTrylock.acquisition(),
            Some(Acquisition::FirstTrylock)
        );
        assert_eq!(FaultPoint::AfterSpin.acquisition(), Some(Acquisition::Spin));
        assert_eq!(
            FaultPoint::AfterWait.acquisition(),
            Some(Acquisition::Sleep)
        );
    }

    #[test]
    fn faults_parse_with_one_based_buyers() {
        assert_eq!(
            "2:inside-unlock".parse(),
            Ok(Fault {
                buyer: 1,
                point: FaultPoint::InsideUnlock
            })
        );
        for (name, point) in POINTS {
            assert_eq!(point.to_string(), name);
        }
        for bad in ["0:holding", "x:holding", "1:nowhere", "holding", ""] {
            assert!(bad.parse::<Fault>().is_err(), "{bad}");
        }
    }
}
