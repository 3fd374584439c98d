//! Schedules: which buyer takes each shared step, written the way a person
//! types it, and read back from a run.
//!
//! Three forms, mixable in one list, buyers counted from 1:
//! - plain: `1,1,2,2,2,1`, one entry per step;
//! - run-length: `1x2,2x3,1`, the same;
//! - annotated: `1S,1R,2S,2R,2W,1W`, each step named by its letter
//!   ([`Step::letter`]) and checked against the buyer's real next step, and
//!   optionally the value the step read or wrote, `1R=1`, checked after
//!   the run (that is how a replay says where it diverged).
//!
//! Whitespace and newlines count as commas, and `#` starts a comment, so a
//! saved schedule file can carry its settings on its first line.

use std::fmt;

use crate::postmortem::Event;
use crate::protocol::Op;
use crate::step::Step;

/// One entry: a buyer's step, perhaps with what it must be and see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The buyer's index (its number minus one).
    pub buyer: usize,
    /// The step it must be about to take, if the schedule says.
    pub step: Option<Step>,
    /// The count the step must read or write, if the schedule says.
    pub value: Option<i64>,
}

/// A list of entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// The steps, in order.
    pub entries: Vec<Entry>,
}

/// Longest schedule a summary offers as a command to paste.
pub(crate) const PRINTABLE: usize = 400;

/// Most entries a schedule may have (a runaway file is refused, not run).
pub(crate) const MAX_ENTRIES: usize = 1_000_000;

impl Schedule {
    /// Parses any of the three forms.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let mut entries = Vec::new();
        let cleaned: String = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(",");
        for (i, item) in cleaned
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            parse_item(item, &mut entries)
                .map_err(|why| format!("schedule entry {} '{item}': {why}", i + 1))?;
            if entries.len() > MAX_ENTRIES {
                return Err(format!("a schedule has at most {MAX_ENTRIES} steps"));
            }
        }
        if entries.is_empty() {
            return Err("the schedule is empty (e.g. 1,1,2,2,2,1)".into());
        }
        Ok(Schedule { entries })
    }

    /// The highest buyer number named.
    pub fn max_buyer(&self) -> Option<usize> {
        self.entries.iter().map(|e| e.buyer + 1).max()
    }

    /// The plain form with runs compressed: `1x2,2x3,1`.
    pub fn compact(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < self.entries.len() {
            let buyer = self.entries[i].buyer;
            let run = self.entries[i..]
                .iter()
                .take_while(|e| e.buyer == buyer)
                .count();
            out.push(if run == 1 {
                format!("{}", buyer + 1)
            } else {
                format!("{}x{run}", buyer + 1)
            });
            i += run;
        }
        out.join(",")
    }

    /// The annotated form, with values where known: `1S=1,1R=1,2W=0`.
    pub fn annotated(&self) -> String {
        self.entries
            .iter()
            .map(Entry::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Where two runs of what should be the same schedule first differ,
    /// as a sentence; `None` if they agree as far as both go.
    pub fn divergence(recorded: &Schedule, replayed: &Schedule) -> Option<String> {
        for (i, (want, got)) in recorded.entries.iter().zip(&replayed.entries).enumerate() {
            let step = i + 1;
            if want.buyer != got.buyer {
                return Some(format!(
                    "step {step}: buyer {} moved where the recording has buyer {}",
                    got.buyer + 1,
                    want.buyer + 1
                ));
            }
            if let (Some(a), Some(b)) = (want.step, got.step) {
                if a != b {
                    return Some(format!(
                        "step {step}: buyer {}'s step was {b}, the recording has {a}",
                        got.buyer + 1
                    ));
                }
            }
            if let (Some(a), Some(b)) = (want.value, got.value) {
                if a != b {
                    let verb = got.step.map_or("saw", verb_of);
                    return Some(format!(
                        "step {step}: buyer {} {verb} {b}, the recording says {a}",
                        got.buyer + 1
                    ));
                }
            }
        }
        (recorded.entries.len() != replayed.entries.len()).then(|| {
            format!(
                "the replay took {} steps, the recording {}",
                replayed.entries.len(),
                recorded.entries.len()
            )
        })
    }
}

fn verb_of(step: Step) -> &'static str {
    match step {
        Step::Search => "searched",
        Step::Write => "wrote",
        Step::Cas => "swapped in",
        Step::Reply => "was answered",
        _ => "read",
    }
}

fn parse_item(item: &str, entries: &mut Vec<Entry>) -> Result<(), String> {
    let digits = item.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return Err("it must start with a buyer number from 1".into());
    }
    let buyer: usize = match item[..digits].parse() {
        Ok(0) => return Err("buyer numbers start at 1".into()),
        Ok(b) => b,
        Err(_) => return Err("that buyer number is far too large".into()),
    };
    let rest = &item[digits..];
    if let Some(count) = rest.strip_prefix(['x', '*']) {
        let n: usize = count
            .parse()
            .ok()
            .filter(|&n| (1..=MAX_ENTRIES).contains(&n))
            .ok_or("a repeat count is a number from 1, as in 2x3")?;
        entries.extend(std::iter::repeat_n(
            Entry {
                buyer: buyer - 1,
                step: None,
                value: None,
            },
            n,
        ));
        return Ok(());
    }
    if rest.starts_with('=') {
        return Err("a value needs a step letter, as in 1R=1".into());
    }
    let mut chars = rest.chars();
    let step = match chars.next() {
        None => None,
        Some(c) => Some(Step::from_letter(c).ok_or_else(|| {
            format!("'{c}' is not a step (S search, R read, L lock, W write, T truncate, C compare-and-swap, U unlock, Q request, A reply)")
        })?),
    };
    let tail = chars.as_str();
    let value = match tail.strip_prefix('=') {
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| "a value after = is a count, as in 1R=1")?,
        ),
        None if tail.is_empty() => None,
        None => return Err("write 1R, 1R=1, 2x3 or 2".into()),
    };
    if value.is_some() && step.is_none() {
        return Err("a value needs a step letter, as in 1R=1".into());
    }
    entries.push(Entry {
        buyer: buyer - 1,
        step,
        value,
    });
    Ok(())
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.buyer + 1)?;
        if let Some(step) = self.step {
            write!(f, "{}", step.letter())?;
        }
        if let Some(v) = self.value {
            write!(f, "={v}")?;
        }
        Ok(())
    }
}

/// The trace ops that carry the value of a step, by step.
fn carriers(step: Step) -> &'static [Op] {
    match step {
        Step::Search => &[Op::Search],
        Step::Read => &[Op::Read, Op::TornRead],
        Step::Write | Step::Cas => &[Op::Wrote, Op::CasRetry],
        Step::Reply => &[Op::Search, Op::Read, Op::SoldOut],
        Step::Lock | Step::Unlock | Step::Truncate | Step::Request => &[],
    }
}

/// Fills in the value each step read or wrote, from the run's trace: each
/// buyer's steps are matched, in order, to its own recorded operations.
pub(crate) fn with_values(steps: &[(usize, Step)], events: &[Event]) -> Schedule {
    let buyers = steps.iter().map(|&(b, _)| b + 1).max().unwrap_or(0);
    let mut own: Vec<Vec<&Event>> = vec![Vec::new(); buyers];
    for e in events {
        if let Some(list) = own.get_mut(e.buyer) {
            list.push(e);
        }
    }
    // After a failed compare-and-swap the buyer records the count it got
    // back as a read it never made as a step: drop those.
    for list in &mut own {
        let mut keep = Vec::with_capacity(list.len());
        let mut after_retry = false;
        for e in list.iter() {
            if !(after_retry && e.op == Op::Read) {
                keep.push(*e);
            }
            after_retry = e.op == Op::CasRetry;
        }
        *list = keep;
    }
    let mut cursor = vec![0usize; buyers];
    let entries = steps
        .iter()
        .map(|&(buyer, step)| {
            let wanted = carriers(step);
            let mut value = None;
            if !wanted.is_empty() {
                let list = &own[buyer];
                while let Some(e) = list.get(cursor[buyer]) {
                    cursor[buyer] += 1;
                    if wanted.contains(&e.op) {
                        value = Some(e.value);
                        break;
                    }
                }
            }
            Entry {
                buyer,
                step: Some(step),
                value,
            }
        })
        .collect();
    Schedule { entries }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buyers(s: &Schedule) -> Vec<usize> {
        s.entries.iter().map(|e| e.buyer + 1).collect()
    }

    #[test]
    fn the_three_forms_parse_to_the_same_order() {
        let plain = Schedule::parse("1,1,2,2,2,1").unwrap();
        let runs = Schedule::parse("1x2,2x3,1").unwrap();
        let annotated = Schedule::parse("1S,1R,2S,2R,2W,1W").unwrap();
        assert_eq!(buyers(&plain), vec![1, 1, 2, 2, 2, 1]);
        assert_eq!(buyers(&runs), buyers(&plain));
        assert_eq!(buyers(&annotated), buyers(&plain));
        assert_eq!(annotated.entries[4].step, Some(Step::Write));
        assert_eq!(plain.compact(), "1x2,2x3,1");
    }

    #[test]
    fn files_carry_comments_and_newlines() {
        let s = Schedule::parse("# store shm, lock none\n1S=1 1R=1\n2S=1,2R=1\n").unwrap();
        assert_eq!(s.entries.len(), 4);
        assert_eq!(s.entries[1].value, Some(1));
        assert_eq!(s.annotated(), "1S=1,1R=1,2S=1,2R=1");
    }

    #[test]
    fn bad_entries_name_themselves() {
        for (bad, why) in [
            ("0", "start at 1"),
            ("1,x", "entry 2 'x'"),
            ("1Z", "not a step"),
            ("2x0", "repeat count"),
            ("1=3", "step letter"),
            ("", "empty"),
            ("1R=one", "a count"),
        ] {
            let err = Schedule::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn divergence_names_the_first_step_that_differs() {
        let a = Schedule::parse("1S=1,1R=1,2S=1").unwrap();
        let b = Schedule::parse("1S=1,1R=0,2S=1").unwrap();
        assert_eq!(
            Schedule::divergence(&a, &b).unwrap(),
            "step 2: buyer 1 read 0, the recording says 1"
        );
        assert_eq!(Schedule::divergence(&a, &a), None);
    }

    #[test]
    fn values_come_from_each_buyers_own_operations() {
        let ev = |buyer, op, value| Event {
            t_ns: 0,
            buyer,
            op,
            value,
        };
        let events = [
            ev(0, Op::Search, 1),
            ev(0, Op::Read, 1),
            ev(1, Op::Search, 1),
            ev(1, Op::Read, 1),
            ev(1, Op::Wrote, 0),
            ev(1, Op::Bought, 1),
            ev(0, Op::Wrote, 0),
        ];
        let steps = [
            (0, Step::Search),
            (0, Step::Read),
            (1, Step::Search),
            (1, Step::Read),
            (1, Step::Write),
            (0, Step::Write),
        ];
        assert_eq!(
            with_values(&steps, &events).annotated(),
            "1S=1,1R=1,2S=1,2R=1,2W=0,1W=0"
        );
    }
}
