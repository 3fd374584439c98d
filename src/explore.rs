//! `ticketlab explore`: every interleaving of a small sale, each run on
//! fresh real processes under the scheduler.
//!
//! Two schedules that differ only by swapping neighbouring steps that
//! commute ([`Step::commutes_with`]) are one *trace*: they end the same way.
//! Under `--lock join` no step of one buyer commutes with another buyer's
//! ([`Dependence`]): the buyers run one after another.
//! Exploration runs one schedule per trace: the lexicographically least
//! (buyer numbers compared step by step), found by a depth-first search
//! that prunes any prefix a commuting swap could make smaller. Each trace
//! is weighted by how many schedules it stands for (the linear extensions
//! of its steps' order), so the distribution counts schedules.
//! `docs/scheduler.md` gives the details.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::config::{LockMode, SaleConfig};
use crate::report::{SaleReport, plural};
use crate::schedule::{Entry, Schedule};
use crate::scheduler::{Choice, Chooser, Moment};
use crate::step::Step;
use crate::supervisor::{self, Quiet, SaleError};

/// Most buyers an exploration runs: the schedules grow factorially, and
/// 4 buyers already take minutes.
pub(crate) const MAX_WORKERS: u64 = 4;
/// Most tickets an exploration sells.
pub(crate) const MAX_TICKETS: u64 = 5;
/// Most tickets each buyer of an exploration tries to buy.
pub(crate) const MAX_WANTS: u64 = 3;

/// What `explore` is asked to do.
#[derive(Debug, Clone)]
pub struct ExploreConfig {
    /// The sale to explore (its seed and delays do not matter).
    pub sale: SaleConfig,
    /// Largest number of preemptions a schedule may have (CHESS's bound).
    pub preemptions: Option<usize>,
    /// Largest number of real runs (`--max-schedules`): one run per trace,
    /// plus runs that found a trace already run. Not schedules: a trace
    /// stands for many of them, and counting them would mean running it.
    pub max_schedules: Option<usize>,
    /// Stop at the first schedule that ends this way.
    pub find: Option<Find>,
}

/// An outcome to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Find {
    /// More tickets sold than there were.
    Oversold,
    /// A sale the count forgot.
    Lost,
    /// Every buyer left waits for a lock.
    Deadlock,
}

impl Find {
    /// How a schedule that is found ends, for "no schedule ends …".
    fn ending(self) -> &'static str {
        match self {
            Find::Oversold => "oversold",
            Find::Lost => "with a lost update",
            Find::Deadlock => "in a deadlock",
        }
    }
}

crate::config::display_by_name!(Find);

impl crate::config::Named for Find {
    const ALL: &'static [Find] = &[Find::Oversold, Find::Lost, Find::Deadlock];
    fn name(self) -> &'static str {
        match self {
            Find::Oversold => "oversold",
            Find::Lost => "lost",
            Find::Deadlock => "deadlock",
        }
    }
    fn about(self) -> &'static str {
        match self {
            Find::Oversold => "more tickets sold than there were",
            Find::Lost => "a sale the count forgot",
            Find::Deadlock => "every buyer left waits for a lock",
        }
    }
}

/// How one schedule ended. In JSON always the same three fields, flattened
/// into the object that holds it: `outcome`, `oversold_by` and
/// `lost_updates`, the last two `null` unless the outcome is theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    /// Sold exactly what there was.
    Exact,
    /// Sold this many more than there were.
    Oversold {
        /// Tickets oversold.
        by: u64,
    },
    /// Not oversold, but the count forgot this many sales.
    LostUpdates {
        /// Sales forgotten.
        lost: i64,
    },
    /// Every buyer left waited for a lock.
    Deadlock,
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shape {
            outcome: &'static str,
            oversold_by: Option<u64>,
            lost_updates: Option<i64>,
        }
        let mut shape = Shape {
            outcome: "",
            oversold_by: None,
            lost_updates: None,
        };
        shape.outcome = match *self {
            Outcome::Exact => "exact",
            Outcome::Oversold { by } => {
                shape.oversold_by = Some(by);
                "oversold"
            }
            Outcome::LostUpdates { lost } => {
                shape.lost_updates = Some(lost);
                "lost_updates"
            }
            Outcome::Deadlock => "deadlock",
        };
        shape.serialize(s)
    }
}

impl Outcome {
    fn of(report: &SaleReport) -> Outcome {
        let lost = report.lost_updates.unwrap_or(0);
        if report.oversold > 0 {
            Outcome::Oversold {
                by: report.oversold,
            }
        } else if lost != 0 {
            Outcome::LostUpdates { lost }
        } else {
            Outcome::Exact
        }
    }

    fn failing(self) -> bool {
        self != Outcome::Exact
    }

    fn matches(self, find: Find) -> bool {
        matches!(
            (self, find),
            (Outcome::Oversold { .. }, Find::Oversold)
                | (
                    Outcome::Oversold { .. } | Outcome::LostUpdates { .. },
                    Find::Lost
                )
                | (Outcome::Deadlock, Find::Deadlock)
        )
    }

    fn words(self) -> String {
        match self {
            Outcome::Exact => "exact".into(),
            Outcome::Oversold { by } => format!("oversold by {by}"),
            Outcome::LostUpdates { lost } => format!("lost updates {lost}"),
            Outcome::Deadlock => "deadlock".into(),
        }
    }
}

/// One explored trace.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Trace {
    /// Its least schedule, annotated (`1S,1R,2S`).
    pub schedule: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Schedules it stands for (`None` if too long to count).
    pub schedules: Option<u64>,
    /// Steps.
    pub steps: usize,
}

/// Everything `explore` found.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Exploration {
    /// Buyers.
    pub workers: usize,
    /// Tickets.
    pub tickets: u64,
    /// The store.
    pub store: String,
    /// The lock setting.
    pub lock: String,
    /// The flags that make the sale explored, for the line that replays
    /// a failing schedule.
    #[serde(skip)]
    pub flags: String,
    /// Tickets each buyer wants.
    pub wants: crate::config::Wants,
    /// `--preemptions`: the bound on a schedule's preemptions, if any.
    pub preemptions: Option<usize>,
    /// `--max-schedules`: the cap on real runs, if any.
    pub max_schedules: Option<usize>,
    /// Runs on real processes (one per trace, plus dead ends).
    pub runs: usize,
    /// Distinct traces.
    pub traces: usize,
    /// Schedules in all, summed over the traces.
    pub schedules: u64,
    /// Whether the search covered everything (no bound or cap cut it).
    pub complete: bool,
    /// The cap on real runs, when it is what cut the search short, so the
    /// summary can say that runs were capped and not schedules.
    #[serde(skip)]
    pub runs_capped_at: Option<usize>,
    /// What `--find` looked for; with a complete search, it never came.
    pub looked_for: Option<Find>,
    /// Outcome → (schedules, traces).
    pub distribution: Vec<OutcomeShare>,
    /// The shortest failing schedule with the fewest preemptions, in the
    /// plain form a student pastes into `step`.
    pub shortest_failing: Option<Failing>,
    /// Every trace explored.
    pub explored: Vec<Trace>,
}

/// One outcome's share.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OutcomeShare {
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Schedules that end so.
    pub schedules: u64,
    /// Traces that end so.
    pub traces: usize,
    /// Share of all schedules, 0 to 1.
    pub share: f64,
}

/// The simplest way to fail.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Failing {
    /// `1,1,2,2,2,1`.
    pub schedule: String,
    /// `1S,1R,2S,2R,2W,1W`.
    pub annotated: String,
    /// Steps.
    pub steps: usize,
    /// Preemptions: switches away from a buyer that could have gone on.
    pub preemptions: usize,
    /// How it ends.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// "buyer 1's read came before buyer 2's write", when a write was lost.
    pub critical_pair: Option<String>,
}

/// Why exploring stopped early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExploreError {
    /// A run failed for a reason of its own.
    #[error(transparent)]
    Sale(#[from] SaleError),
    /// Ctrl-C, SIGTERM or the like stopped a run: exploring stops too.
    #[error("stopped by {}", crate::process::signal_name(*.0))]
    Stopped(i32),
}

/// A trace that ran: its least schedule, how it ended, and its report.
type Ran = (Vec<(usize, Step)>, Outcome, SaleReport);

/// A point of the search for the order with the fewest preemptions: the
/// steps placed (a bit mask) and the last one placed.
type Place = (u32, usize);

/// A step taken at one node of a run, and what else could have gone.
#[derive(Debug, Clone)]
struct Node {
    runnable: Vec<(usize, Step)>,
    taken: (usize, Step),
}

/// Which steps of a run must keep their order in every schedule of its
/// trace: the relation traces, the search's pruning and the weights are all
/// built on, so that they agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dependence {
    /// Buyers run one after another (`--lock join`): buyer i+1 is forked
    /// only after buyer i has exited, so every step of an earlier buyer
    /// happens before every step of a later one, even two reads that
    /// would otherwise commute. There is no other order to count.
    one_at_a_time: bool,
}

impl Dependence {
    /// The relation for a sale's lock setting.
    pub(crate) fn of(sale: &SaleConfig) -> Dependence {
        Dependence {
            one_at_a_time: sale.lock == LockMode::Join,
        }
    }

    /// Whether `a`, taken before `b`, must stay before it.
    fn depends(self, a: (usize, Step), b: (usize, Step)) -> bool {
        a.0 == b.0 || self.one_at_a_time || !a.1.commutes_with(b.1)
    }
}

/// Follows a prefix, then the least step that keeps the schedule the least
/// of its trace.
struct Follower<'a> {
    dependence: Dependence,
    prefix: &'a [usize],
    nodes: Vec<Node>,
    /// The first step past the prefix that had no choice keeping the
    /// schedule least: from there on this run repeats a trace found
    /// elsewhere, and nothing after it is a new branch.
    first_dead_end: Option<usize>,
}

impl Chooser for Follower<'_> {
    fn choose(&mut self, moment: &Moment) -> Choice {
        let runnable: Vec<(usize, Step)> = moment
            .buyers
            .iter()
            .enumerate()
            .filter_map(|(id, b)| b.runnable().map(|s| (id, s)))
            .collect();
        let depth = moment.taken.len();
        let pick = if let Some(&buyer) = self.prefix.get(depth) {
            runnable.iter().find(|r| r.0 == buyer).copied()
        } else {
            runnable
                .iter()
                .copied()
                .find(|&r| least_with(self.dependence, &moment.taken, r))
        };
        let pick = match pick {
            Some(p) => p,
            None => {
                self.first_dead_end.get_or_insert(depth);
                runnable[0]
            }
        };
        self.nodes.push(Node {
            runnable,
            taken: pick,
        });
        Choice::Grant(pick.0)
    }
}

/// Whether `taken` followed by `next` is still the least schedule of its
/// trace, given `taken` is: `next` must not be able to slide left, past
/// steps it does not depend on, ahead of a higher-numbered buyer's step.
pub(crate) fn least_with(
    dependence: Dependence,
    taken: &[(usize, Step)],
    next: (usize, Step),
) -> bool {
    for &(buyer, step) in taken.iter().rev() {
        if dependence.depends((buyer, step), next) {
            return true;
        }
        if buyer > next.0 {
            return false;
        }
    }
    true
}

/// For each step, the earlier steps it depends on, as a bit mask: the order
/// every equivalent schedule keeps.
fn predecessors(dependence: Dependence, steps: &[(usize, Step)]) -> Vec<u32> {
    (0..steps.len())
        .map(|j| {
            (0..j)
                .filter(|&i| dependence.depends(steps[i], steps[j]))
                .fold(0u32, |m, i| m | 1 << i)
        })
        .collect()
}

/// Longest schedule whose equivalent schedules are counted (2^n states).
const COUNTABLE: usize = 22;

/// How many schedules a trace stands for: the orders of its steps that
/// keep every dependent pair as it is.
pub(crate) fn schedules_in_trace(dependence: Dependence, steps: &[(usize, Step)]) -> Option<u64> {
    let n = steps.len();
    if n > COUNTABLE {
        return None;
    }
    let preds = predecessors(dependence, steps);
    let mut ways = vec![0u64; 1 << n];
    ways[0] = 1;
    for mask in 0..(1u32 << n) {
        let w = ways[mask as usize];
        if w == 0 {
            continue;
        }
        for (j, &p) in preds.iter().enumerate() {
            if mask & (1 << j) == 0 && p & !mask == 0 {
                ways[(mask | 1 << j) as usize] += w;
            }
        }
    }
    Some(ways[(1usize << n) - 1])
}

/// How many of a trace's schedules have at most `bound` preemptions: a
/// switch away from a buyer that could have gone on (it has steps left and
/// is not waiting for the lock).
pub(crate) fn schedules_within(
    dependence: Dependence,
    steps: &[(usize, Step)],
    bound: usize,
) -> Option<u64> {
    let n = steps.len();
    if n > COUNTABLE {
        return None;
    }
    let preds = predecessors(dependence, steps);
    let buyers = steps.iter().map(|s| s.0 + 1).max().unwrap_or(0);
    // Whether buyer b could move after `mask`: it has a step left, and that
    // step is not a lock attempt while another buyer holds the mutex.
    let could_move = |mask: u32, b: usize| -> bool {
        let Some(next) = (0..n).find(|&k| mask & (1 << k) == 0 && steps[k].0 == b) else {
            return false;
        };
        if steps[next].1 != Step::Lock {
            return true;
        }
        let placed = |h: usize, st: Step| {
            (0..n)
                .filter(|&k| mask & (1 << k) != 0 && steps[k] == (h, st))
                .count()
        };
        let holder = (0..buyers).find(|&h| placed(h, Step::Lock) > placed(h, Step::Unlock));
        holder.is_none_or(|h| h == b)
    };
    let mut ways: HashMap<(u32, usize, usize), u64> = HashMap::new();
    ways.insert((0, usize::MAX, 0), 1);
    for size in 0..n {
        let layer: Vec<((u32, usize, usize), u64)> = ways
            .iter()
            .filter(|((m, _, _), _)| m.count_ones() as usize == size)
            .map(|(k, v)| (*k, *v))
            .collect();
        for ((mask, last, pre), w) in layer {
            for (j, &p) in preds.iter().enumerate() {
                if mask & (1 << j) != 0 || p & !mask != 0 {
                    continue;
                }
                let b = steps[j].0;
                let extra = usize::from(last != usize::MAX && last != b && could_move(mask, last));
                if pre + extra > bound {
                    continue;
                }
                *ways.entry((mask | 1 << j, b, pre + extra)).or_default() += w;
            }
        }
    }
    let full = (1u32 << n) - 1;
    Some(
        ways.iter()
            .filter(|((m, _, _), _)| *m == full)
            .map(|(_, w)| w)
            .sum(),
    )
}

/// The order of a trace's steps with the fewest preemptions (a switch away
/// from a buyer with steps left), and that number.
fn fewest_preemptions(
    dependence: Dependence,
    steps: &[(usize, Step)],
) -> (Vec<(usize, Step)>, usize) {
    let n = steps.len();
    if n > COUNTABLE {
        return (steps.to_vec(), count_preemptions(steps));
    }
    let preds = predecessors(dependence, steps);
    // best[mask][last+1] = (preemptions, previous (mask, last)) — explored
    // breadth-first by mask size.
    let full = (1u32 << n) - 1;
    let mut best: BTreeMap<Place, (usize, Option<Place>)> = BTreeMap::new();
    best.insert((0, usize::MAX), (0, None));
    for size in 0..n {
        let layer: Vec<((u32, usize), usize)> = best
            .iter()
            .filter(|((m, _), _)| m.count_ones() as usize == size)
            .map(|(k, v)| (*k, v.0))
            .collect();
        for ((mask, last), cost) in layer {
            for (j, &p) in preds.iter().enumerate() {
                if mask & (1 << j) != 0 || p & !mask != 0 {
                    continue;
                }
                let buyer = steps[j].0;
                let last_buyer = (last != usize::MAX).then(|| steps[last].0);
                let left =
                    |b: usize| (0..n).any(|k| mask & (1 << k) == 0 && k != j && steps[k].0 == b);
                let extra = usize::from(last_buyer.is_some_and(|lb| lb != buyer && left(lb)));
                let key = (mask | 1 << j, j);
                let entry = best.entry(key).or_insert((usize::MAX, None));
                if cost + extra < entry.0 {
                    *entry = (cost + extra, Some((mask, last)));
                }
            }
        }
    }
    let (&end, &(cost, _)) = best
        .iter()
        .filter(|((m, _), _)| *m == full)
        .min_by_key(|(_, v)| v.0)
        .expect("every trace has an order");
    let mut order = Vec::with_capacity(n);
    let mut at = Some(end);
    while let Some((mask, last)) = at {
        if last == usize::MAX {
            break;
        }
        order.push(steps[last]);
        at = best[&(mask, last)].1;
    }
    order.reverse();
    (order, cost)
}

fn count_preemptions(steps: &[(usize, Step)]) -> usize {
    (1..steps.len())
        .filter(|&i| {
            let last = steps[i - 1].0;
            last != steps[i].0 && steps[i..].iter().any(|s| s.0 == last)
        })
        .count()
}

/// The pair a lost update turns on: the overwriting buyer's read came
/// before the overwritten buyer's write.
fn critical_pair(steps: &[(usize, Step)], report: &SaleReport) -> Option<String> {
    let lost = report.lost.first()?;
    let by = lost.overwritten_by;
    let victim = lost.lost_buyer;
    let victim_write = steps
        .iter()
        .position(|&(b, s)| b == victim && matches!(s, Step::Write | Step::Cas))?;
    steps[..victim_write]
        .iter()
        .any(|&(b, s)| b == by && s == Step::Read)
        .then(|| {
            format!(
                "buyer {}'s read came before buyer {}'s write",
                by + 1,
                victim + 1
            )
        })
}

/// How far a search has come.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    /// Real runs so far.
    pub runs: usize,
    /// The share of the search tree done, 0 to 1: each run's path splits
    /// its share evenly among the branches taken from it, so the figure is
    /// exact for an even tree and a fair guess for any other.
    pub done: f64,
}

/// Runs the exploration; `progress` is called after every run. The stop
/// signals stay blocked for the whole search, so a Ctrl-C between two runs
/// stops the next one rather than being lost.
pub(crate) fn explore(
    cfg: &ExploreConfig,
    progress: impl FnMut(Progress),
) -> Result<Exploration, ExploreError> {
    supervisor::holding_stop_signals(|| search(cfg, progress))
}

fn search(
    cfg: &ExploreConfig,
    mut progress: impl FnMut(Progress),
) -> Result<Exploration, ExploreError> {
    let mut sale = cfg.sale.clone();
    sale.schedule = None;
    let dependence = Dependence::of(&sale);
    // Each prefix still to run, with its share of the whole tree.
    let mut stack: Vec<(Vec<usize>, f64)> = vec![(Vec::new(), 1.0)];
    let mut done = 0.0;
    let mut runs = 0;
    let mut traces: Vec<Ran> = Vec::new();
    let mut complete = true;
    let mut runs_capped_at = None;
    while let Some((prefix, share)) = stack.pop() {
        if let Some(cap) = cfg.max_schedules.filter(|&m| runs >= m) {
            complete = false;
            runs_capped_at = Some(cap);
            break;
        }
        let mut follower = Follower {
            dependence,
            prefix: &prefix,
            nodes: Vec::new(),
            first_dead_end: None,
        };
        let result = supervisor::run_sale_with(&sale, &mut Quiet, Some(&mut follower));
        runs += 1;
        let steps: Vec<(usize, Step)> = follower.nodes.iter().map(|n| n.taken).collect();
        let dead_end = follower.first_dead_end.is_some();
        let outcome = match result {
            Ok(report) => {
                if let crate::report::Ending::Interrupted(sig) = report.ending {
                    return Err(ExploreError::Stopped(sig));
                }
                let outcome = Outcome::of(&report);
                if !dead_end {
                    traces.push((steps.clone(), outcome, report));
                }
                outcome
            }
            Err(SaleError::Deadlock(_)) => {
                if !dead_end {
                    let report = SaleReport::new(&sale);
                    traces.push((steps.clone(), Outcome::Deadlock, report));
                }
                Outcome::Deadlock
            }
            Err(e) => return Err(e.into()),
        };
        if cfg.find.is_some_and(|f| outcome.matches(f)) && !dead_end {
            complete = false;
            break;
        }
        // Every other choice past the prefix, deepest last so the search
        // goes depth first, least first.
        let branches = follower
            .first_dead_end
            .map_or(follower.nodes.len(), |d| d + 1);
        let mut share = share;
        for depth in prefix.len()..branches {
            let node = &follower.nodes[depth];
            let taken = &steps[..depth];
            let alternatives: Vec<(usize, Step)> = node
                .runnable
                .iter()
                .rev()
                .copied()
                .filter(|&alt| alt.0 > node.taken.0 && least_with(dependence, taken, alt))
                .collect();
            // The step taken and each alternative get an equal part.
            share /= (alternatives.len() + 1) as f64;
            for alt in alternatives {
                let mut next: Vec<usize> = taken.iter().map(|s| s.0).collect();
                next.push(alt.0);
                stack.push((next, share));
            }
        }
        done += share;
        progress(Progress { runs, done });
    }
    // Every share is handed on or done, so a whole search ends at 1.
    debug_assert!(
        !complete || (done - 1.0f64).abs() < 1e-9,
        "a complete search did {done} of its tree"
    );
    let mut found = summarise(cfg, runs, complete, traces);
    found.runs_capped_at = runs_capped_at;
    found.looked_for = cfg.find;
    Ok(found)
}

fn summarise(cfg: &ExploreConfig, runs: usize, complete: bool, traces: Vec<Ran>) -> Exploration {
    let mut by_outcome: BTreeMap<Outcome, (u64, usize)> = BTreeMap::new();
    let mut explored = Vec::new();
    let mut total = 0u64;
    let mut shortest: Option<(usize, usize, Failing)> = None;
    let dependence = Dependence::of(&cfg.sale);
    for (steps, outcome, report) in &traces {
        let weight = match cfg.preemptions {
            None => schedules_in_trace(dependence, steps),
            Some(k) => schedules_within(dependence, steps, k),
        };
        if weight == Some(0) {
            // No order of this trace stays within the preemption bound.
            continue;
        }
        let w = weight.unwrap_or(1);
        total += w;
        let e = by_outcome.entry(*outcome).or_default();
        e.0 += w;
        e.1 += 1;
        let annotated = annotate(steps);
        explored.push(Trace {
            schedule: annotated.clone(),
            outcome: *outcome,
            schedules: weight,
            steps: steps.len(),
        });
        if outcome.failing() {
            let (order, preemptions) = fewest_preemptions(dependence, steps);
            let plain_order: Vec<usize> = order.iter().map(|s| s.0).collect();
            // Shortest, then fewest preemptions, then the least buyer order.
            let better = shortest.as_ref().is_none_or(|(len, pre, f)| {
                let theirs: Vec<usize> = f
                    .schedule
                    .split(',')
                    .filter_map(|b| b.parse::<usize>().ok().map(|b| b - 1))
                    .collect();
                (steps.len(), preemptions, &plain_order) < (*len, *pre, &theirs)
            });
            if better {
                let plain = Schedule {
                    entries: order
                        .iter()
                        .map(|&(buyer, _)| Entry {
                            buyer,
                            step: None,
                            value: None,
                        })
                        .collect(),
                };
                shortest = Some((
                    steps.len(),
                    preemptions,
                    Failing {
                        schedule: plain
                            .entries
                            .iter()
                            .map(|e| (e.buyer + 1).to_string())
                            .collect::<Vec<_>>()
                            .join(","),
                        annotated: annotate(&order),
                        steps: order.len(),
                        preemptions,
                        outcome: *outcome,
                        critical_pair: critical_pair(&order, report),
                    },
                ));
            }
        }
    }
    let distribution = by_outcome
        .into_iter()
        .map(|(outcome, (schedules, traces))| OutcomeShare {
            outcome,
            schedules,
            traces,
            share: if total == 0 {
                0.0
            } else {
                schedules as f64 / total as f64
            },
        })
        .collect();
    Exploration {
        flags: cfg.sale.flags(),
        workers: cfg.sale.workers,
        tickets: cfg.sale.tickets,
        store: cfg.sale.store.to_string(),
        lock: cfg.sale.lock.to_string(),
        wants: cfg.sale.wants,
        preemptions: cfg.preemptions,
        max_schedules: cfg.max_schedules,
        runs,
        traces: explored.len(),
        schedules: total,
        complete,
        runs_capped_at: None,
        looked_for: None,
        distribution,
        shortest_failing: shortest.map(|(_, _, f)| f),
        explored,
    }
}

fn annotate(steps: &[(usize, Step)]) -> String {
    steps
        .iter()
        .map(|&(b, s)| format!("{}{}", b + 1, s.letter()))
        .collect::<Vec<_>>()
        .join(",")
}

impl Exploration {
    /// The summary a person reads.
    pub(crate) fn write_summary(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "explored: {}, {}, store {}, lock {}",
            plural(self.workers as u64, "buyer"),
            plural(self.tickets, "ticket"),
            self.store,
            self.lock
        )?;
        // The cap counts real runs, and each run may stand for many
        // schedules: saying so keeps "--max-schedules 10" next to
        // "schedules 45" from looking like a broken cap.
        let cut = match (self.complete, self.runs_capped_at) {
            (true, _) => String::new(),
            (false, Some(cap)) => format!(
                " (cut short: --max-schedules stops after {})",
                plural(cap as u64, "real run")
            ),
            (false, None) => " (search cut short)".into(),
        };
        writeln!(out, "  schedules     {}{cut}", self.schedules)?;
        writeln!(
            out,
            "  traces        {} (equal up to swapping steps that commute)",
            self.traces
        )?;
        writeln!(
            out,
            "  real runs     {} ({} found a new trace; {} repeated one already run)",
            self.runs,
            self.traces.min(self.runs),
            self.runs.saturating_sub(self.traces)
        )?;
        writeln!(out, "  outcomes:")?;
        for share in &self.distribution {
            writeln!(
                out,
                "    {:<18} {:>7} {:<9} {:>6.1}%   {}",
                share.outcome.words(),
                share.schedules,
                if share.schedules == 1 {
                    "schedule"
                } else {
                    "schedules"
                },
                share.share * 100.0,
                plural(share.traces as u64, "trace")
            )?;
        }
        match &self.shortest_failing {
            None => writeln!(out, "  every schedule is exact")?,
            Some(f) => {
                // A search cut short has seen only some failing schedules.
                let which = if self.complete {
                    "shortest failing schedule"
                } else {
                    "a failing schedule"
                };
                writeln!(out, "  {which}: {}", f.schedule)?;
                writeln!(
                    out,
                    "    {} steps, {}; {}",
                    f.steps,
                    plural(f.preemptions as u64, "preemption"),
                    f.outcome.words()
                )?;
                writeln!(out, "    steps: {}", f.annotated)?;
                if let Some(pair) = &f.critical_pair {
                    writeln!(out, "    critical pair: {pair}")?;
                }
                // On a line of its own, flags the defaults do not need left
                // out: students copy it, and it must not wrap at 80 columns.
                writeln!(out, "    try it:")?;
                writeln!(
                    out,
                    "    ticketlab step {} --schedule {}",
                    self.flags, f.schedule
                )?;
            }
        }
        // A --find that ran to the end found nothing: say so, or the
        // summary reads as if the question went unanswered.
        if let (Some(find), true) = (self.looked_for, self.complete) {
            writeln!(
                out,
                "  no schedule ends {}: --find {find} searched them all",
                find.ending()
            )?;
        }
        Ok(())
    }
}

/// A progress bar on stderr, when stderr is a terminal.
pub(crate) fn progress_line(progress: Progress) {
    const WIDTH: usize = 24;
    let stderr = std::io::stderr();
    if stderr.is_terminal() && progress.runs % 16 == 0 {
        let filled = ((progress.done.clamp(0.0, 1.0) * WIDTH as f64) as usize).min(WIDTH);
        let _ = write!(
            stderr.lock(),
            "\rexploring [{}{}] {:>3.0}%  {} real runs",
            "█".repeat(filled),
            "░".repeat(WIDTH - filled),
            progress.done * 100.0,
            progress.runs
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Step::*;

    /// Buyers that run side by side (every lock but join).
    const SIDE_BY_SIDE: Dependence = Dependence {
        one_at_a_time: false,
    };
    /// `--lock join`.
    const ONE_AT_A_TIME: Dependence = Dependence {
        one_at_a_time: true,
    };

    #[test]
    fn the_least_schedule_keeps_reads_in_buyer_order() {
        // Two searches commute: 1S,2S is the least order, 2S,1S is not.
        assert!(least_with(SIDE_BY_SIDE, &[(0, Search)], (1, Search)));
        assert!(!least_with(SIDE_BY_SIDE, &[(1, Search)], (0, Search)));
        // A write does not commute with a read: the order stays.
        assert!(least_with(SIDE_BY_SIDE, &[(1, Write)], (0, Read)));
    }

    #[test]
    fn traces_count_their_schedules() {
        // Two buyers that only search: 2 schedules, one trace.
        assert_eq!(
            schedules_in_trace(SIDE_BY_SIDE, &[(0, Search), (1, Search)]),
            Some(2)
        );
        // The lost update of the notes: 1S 1R 2S 2R 2W 1W.
        let t = [
            (0, Search),
            (0, Read),
            (1, Search),
            (1, Read),
            (1, Write),
            (0, Write),
        ];
        let n = schedules_in_trace(SIDE_BY_SIDE, &t).unwrap();
        assert!(n >= 1);
        let (order, pre) = fewest_preemptions(SIDE_BY_SIDE, &t);
        assert_eq!(order.len(), 6);
        assert_eq!(pre, 1);
    }

    #[test]
    fn under_join_a_later_buyer_never_moves_ahead() {
        // Buyers 2 and 3 find the ticket sold: four reads that would
        // commute if the buyers ran side by side (6 orders), but under join
        // buyer 3 is forked only after buyer 2 exits.
        let t = [
            (0, Search),
            (0, Read),
            (0, Write),
            (1, Search),
            (1, Read),
            (2, Search),
            (2, Read),
        ];
        assert_eq!(schedules_in_trace(SIDE_BY_SIDE, &t), Some(6));
        assert_eq!(schedules_in_trace(ONE_AT_A_TIME, &t), Some(1));
        // Going on to the next buyer once one has finished is no preemption.
        assert_eq!(schedules_within(ONE_AT_A_TIME, &t, 0), Some(1));
        assert_eq!(fewest_preemptions(ONE_AT_A_TIME, &t), (t.to_vec(), 0));
        // Buyer 3's search cannot slide past buyer 2's reads: the run's own
        // order is the least of its trace, so the search keeps it.
        assert!(least_with(ONE_AT_A_TIME, &t[..5], (2, Search)));
    }
}
