//! The parent as the scheduler: the parent's side of the buyers'
//! turnstiles, and who decides which buyer takes the next shared step.
//!
//! Buyers park at their gate before every shared step when the gate is
//! closed ([`crate::segment::GATE_SCHEDULED`]). Once every live buyer is
//! parked or done, the moment is stable: the parent asks its [`Chooser`]
//! which buyer goes, grants that buyer exactly one step, and waits for it
//! to park again. A lock attempt is granted only while the mutex is free,
//! so no buyer ever sleeps inside the pthread mutex while the parent waits
//! for it (the three-party deadlock of `docs/scheduler.md`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::process;
use crate::schedule::Schedule;
use crate::segment::{GATE_OPEN, GATE_SCHEDULED, GATE_STOPPING, NEXT_DONE, NEXT_PARKED, Segment};
use crate::step::Step;
use crate::view::ViewCommand;

/// Where one buyer is, as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BuyerNow {
    /// Not forked yet (`join` starts each buyer after the previous one).
    NotStarted,
    /// Between two steps: not at its gate yet.
    Running,
    /// At its gate, about to take this step.
    Parked(Step),
    /// At its gate for the lock, which this buyer holds.
    Blocked {
        /// Its next step (always the lock attempt).
        step: Step,
        /// The buyer holding the mutex.
        holder: usize,
    },
    /// Read the file store mid-rewrite (a torn read) and must read again,
    /// but the file is still torn: it waits for the writer.
    WaitsForFile(Step),
    /// No shared step left.
    Done,
}

impl BuyerNow {
    /// Whether the scheduler may grant this buyer a step now.
    pub(crate) fn runnable(self) -> Option<Step> {
        match self {
            BuyerNow::Parked(step) => Some(step),
            _ => None,
        }
    }

    /// The step this buyer would take if a schedule named it now. A torn
    /// reader is not runnable (no chooser of its own picks it, or it would
    /// tear again for ever), but a schedule may name it: a recorded free
    /// run read the torn file again, and its replay must too.
    pub(crate) fn grantable(self) -> Option<Step> {
        match self {
            BuyerNow::Parked(step) | BuyerNow::WaitsForFile(step) => Some(step),
            _ => None,
        }
    }
}

/// A stable moment: every started buyer is parked or done.
#[derive(Debug, Clone)]
pub(crate) struct Moment {
    /// Each buyer, by index.
    pub buyers: Vec<BuyerNow>,
    /// The steps granted so far, in order.
    pub taken: Vec<(usize, Step)>,
}

/// What the scheduler does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Grant this buyer its next step.
    Grant(usize),
    /// Open the gate: the rest of the run is free.
    Free,
    /// Nothing yet (a person has not pressed a key).
    Wait,
    /// The schedule asks for something impossible; the run stops and
    /// says why (exit 2).
    Refuse(String),
    /// Start again on fresh buyers, replaying these buyers' steps first
    /// (step mode's undo and restart).
    Restart(Vec<usize>),
}

/// Decides, at each stable moment, who goes next.
pub(crate) trait Chooser {
    /// The choice at this moment. Called only when at least one buyer can
    /// be granted a step.
    fn choose(&mut self, moment: &Moment) -> Choice;

    /// A command from the view (step mode's keys); most choosers ignore it.
    fn hear(&mut self, _command: ViewCommand) {}

    /// Why the sale may not end here although every buyer has finished:
    /// a schedule with steps left asked for steps nobody could take.
    fn left_over(&self, _taken: usize) -> Option<String> {
        None
    }

    /// Step mode's own state, if this chooser is a person.
    fn person(&mut self) -> Option<&mut Person> {
        None
    }
}

/// Step mode: a person at the keyboard is the scheduler.
#[derive(Debug, Clone, Default)]
pub(crate) struct Person {
    /// Steps replayed before the person takes over (after an undo).
    replay: Vec<usize>,
    keys: std::collections::VecDeque<ViewCommand>,
    /// The selected buyer (an index).
    pub selected: usize,
    /// How many buyers there are.
    buyers: usize,
    /// The answer to the last key.
    pub message: Option<String>,
    /// A save the person asked for, not yet done.
    pub save_requested: bool,
    /// Where `s` saves the schedule.
    pub save_to: std::path::PathBuf,
    /// The goal on the screen.
    pub challenge: String,
    /// Once the goal is met: the schedule that met it.
    pub achieved: Option<String>,
}

impl Person {
    /// A person scheduling `buyers` buyers, after replaying `replay`.
    pub(crate) fn new(
        buyers: usize,
        replay: Vec<usize>,
        challenge: String,
        save_to: std::path::PathBuf,
    ) -> Person {
        Person {
            replay,
            buyers,
            challenge,
            save_to,
            ..Person::default()
        }
    }

    /// Says something on the step panel.
    pub(crate) fn tell(&mut self, message: String) {
        self.message = Some(message);
    }

    fn try_grant(&mut self, moment: &Moment, buyer: usize) -> Choice {
        match why_not(moment, buyer) {
            Some(why) => {
                self.message = Some(why);
                Choice::Wait
            }
            None => {
                self.message = None;
                Choice::Grant(buyer)
            }
        }
    }
}

impl Chooser for Person {
    fn choose(&mut self, moment: &Moment) -> Choice {
        if let Some(&buyer) = self.replay.get(moment.taken.len()) {
            return Choice::Grant(buyer);
        }
        while let Some(key) = self.keys.pop_front() {
            let choice = match key {
                ViewCommand::StepBuyer(b) => self.try_grant(moment, b),
                ViewCommand::StepSelected => self.try_grant(moment, self.selected),
                ViewCommand::RunFree => Choice::Free,
                ViewCommand::Undo if moment.taken.is_empty() => {
                    self.message = Some("nothing to undo".into());
                    Choice::Wait
                }
                ViewCommand::Undo => Choice::Restart(
                    moment.taken[..moment.taken.len() - 1]
                        .iter()
                        .map(|&(b, _)| b)
                        .collect(),
                ),
                ViewCommand::Restart => Choice::Restart(Vec::new()),
                _ => Choice::Wait,
            };
            if choice != Choice::Wait {
                return choice;
            }
        }
        Choice::Wait
    }

    fn hear(&mut self, command: ViewCommand) {
        let n = self.buyers.max(1);
        match command {
            ViewCommand::SelectNext => self.selected = (self.selected + 1) % n,
            ViewCommand::SelectPrevious => self.selected = (self.selected + n - 1) % n,
            ViewCommand::Save => self.save_requested = true,
            ViewCommand::StepBuyer(b) if b >= self.buyers => {
                self.message = Some(format!(
                    "there is no buyer {} (this sale has {})",
                    b + 1,
                    crate::report::plural(self.buyers as u64, "buyer")
                ));
            }
            ViewCommand::StepBuyer(_)
            | ViewCommand::StepSelected
            | ViewCommand::RunFree
            | ViewCommand::Undo
            | ViewCommand::Restart => self.keys.push_back(command),
            _ => {}
        }
    }

    fn person(&mut self) -> Option<&mut Person> {
        Some(self)
    }
}

/// What happens when a schedule runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// The lowest-numbered buyer that can move: the whole run is fixed.
    Lowest,
    /// Open the gate and let the rest run freely.
    Free,
}

crate::config::display_by_name!(Then);

impl crate::config::Named for Then {
    const ALL: &'static [Then] = &[Then::Lowest, Then::Free];
    fn name(self) -> &'static str {
        match self {
            Then::Lowest => "lowest",
            Then::Free => "free",
        }
    }
    fn about(self) -> &'static str {
        match self {
            Then::Lowest => "the lowest-numbered buyer that can move, so the run stays fixed",
            Then::Free => "every buyer runs freely",
        }
    }
}

/// Follows a schedule, then [`Then`].
#[derive(Debug, Clone)]
pub(crate) struct ScheduleChooser {
    schedule: Schedule,
    then: Then,
}

impl ScheduleChooser {
    /// A chooser for this schedule.
    pub(crate) fn new(schedule: Schedule, then: Then) -> ScheduleChooser {
        ScheduleChooser { schedule, then }
    }
}

/// The lowest-numbered buyer that can take a step.
pub(crate) fn lowest(moment: &Moment) -> Option<usize> {
    moment.buyers.iter().position(|b| b.runnable().is_some())
}

/// What a blocked buyer waits for, as PostgreSQL's isolation tester
/// marks a step that would block (`<waiting ...>`): the mutex or the
/// database's lock at L, else the row another buyer wrote and has not
/// committed yet.
pub(crate) fn waiting_text(step: crate::step::Step, holder: usize) -> String {
    match step {
        crate::step::Step::Lock => format!("waits for the lock held by buyer {}", holder + 1),
        step => format!(
            "<waiting> its {} would wait for the row buyer {} wrote and has not committed",
            // Only a database's rows are waited for.
            step.database_name(),
            holder + 1
        ),
    }
}

/// Why `buyer` cannot take a step now, if it cannot.
pub(crate) fn why_not(moment: &Moment, buyer: usize) -> Option<String> {
    let n = buyer + 1;
    match moment.buyers.get(buyer) {
        None => Some(format!(
            "buyer {n} does not exist (this sale has {})",
            crate::report::plural(moment.buyers.len() as u64, "buyer")
        )),
        Some(BuyerNow::Parked(_) | BuyerNow::WaitsForFile(_)) => None,
        Some(&BuyerNow::Blocked { step, holder }) => {
            Some(format!("buyer {n} {}", waiting_text(step, holder)))
        }
        Some(BuyerNow::Done) => Some(format!("buyer {n} has finished")),
        Some(BuyerNow::NotStarted) => Some(format!(
            "buyer {n} has not started yet (join starts each buyer after the previous one exits)"
        )),
        Some(BuyerNow::Running) => Some(format!("buyer {n} is still moving")),
    }
}

impl Chooser for ScheduleChooser {
    fn left_over(&self, taken: usize) -> Option<String> {
        let entry = self.schedule.entries.get(taken)?;
        let left = self.schedule.entries.len() - taken;
        Some(format!(
            "step {}: buyer {} has finished, and so has every buyer: the sale ended with {} of the schedule unused",
            taken + 1,
            entry.buyer + 1,
            crate::report::plural(left as u64, "step")
        ))
    }

    fn choose(&mut self, moment: &Moment) -> Choice {
        let at = moment.taken.len();
        let Some(entry) = self.schedule.entries.get(at) else {
            return match self.then {
                Then::Lowest => lowest(moment).map_or(Choice::Wait, Choice::Grant),
                Then::Free => Choice::Free,
            };
        };
        let step_no = at + 1;
        if let Some(why) = why_not(moment, entry.buyer) {
            return Choice::Refuse(format!("step {step_no}: {why}"));
        }
        if let (Some(want), Some(next)) = (entry.step, moment.buyers[entry.buyer].grantable()) {
            if want != next {
                return Choice::Refuse(format!(
                    "step {step_no}: buyer {}'s next step is {next}, not {want}",
                    entry.buyer + 1
                ));
            }
        }
        Choice::Grant(entry.buyer)
    }
}

/// How long the parent looks for a granted buyer to park before sleeping.
const PARKING_SPIN: Duration = Duration::from_micros(50);

/// The parent's hands on the turnstiles.
pub(crate) struct Turnstiles<'a> {
    seg: &'a Segment,
}

impl<'a> Turnstiles<'a> {
    /// The turnstiles of this segment.
    pub(crate) fn new(seg: &'a Segment) -> Turnstiles<'a> {
        Turnstiles { seg }
    }

    /// Closes the gate (`GATE_PAUSED` or `GATE_SCHEDULED`).
    pub(crate) fn close(&self, how: u32) {
        let gate = &self.seg.control().gate;
        gate.store(how, Ordering::Release);
        // Buyers asleep in a delay stop its clock while the gate is closed.
        process::futex_wake_all(gate);
    }

    /// Closes the gate for good: the sale is stopping (`GATE_STOPPING`).
    /// `SeqCst`, as the buyer's side of the handshake in
    /// `Buyer::begin_commit`: the parent reads the `committing` flags only
    /// after this. Buyers asleep in a delay are not woken: they are safe to
    /// end where they are, and waking them all would only take the CPU from
    /// the buyers finishing their purchases.
    pub(crate) fn stop(&self) {
        self.seg
            .control()
            .gate
            .store(GATE_STOPPING, Ordering::SeqCst);
    }

    /// Whether a scheduler runs the sale (the gate is closed for it).
    pub(crate) fn scheduled(&self) -> bool {
        self.seg.control().gate.load(Ordering::Acquire) == GATE_SCHEDULED
    }

    /// Whether the gate is closed.
    pub(crate) fn closed(&self) -> bool {
        self.seg.control().gate.load(Ordering::Acquire) != GATE_OPEN
    }

    /// Opens the gate and wakes every parked buyer: they all go on.
    pub(crate) fn open(&self, buyers: usize) {
        let gate = &self.seg.control().gate;
        gate.store(GATE_OPEN, Ordering::Release);
        process::futex_wake_all(gate);
        for id in 0..buyers {
            let slot = self.seg.slot(id);
            slot.next.fetch_and(!NEXT_PARKED, Ordering::AcqRel);
            slot.turn.fetch_add(1, Ordering::Release);
            process::futex_wake_all(&slot.turn);
        }
    }

    /// Buyer `id`'s next step, if it is parked at its gate.
    pub(crate) fn parked(&self, id: usize) -> Option<Step> {
        let next = self.seg.slot(id).next.load(Ordering::Acquire);
        if next & NEXT_PARKED == 0 {
            return None;
        }
        Step::from_u32(next & 0xff)
    }

    /// Whether buyer `id` has taken its last shared step.
    pub(crate) fn done(&self, id: usize) -> bool {
        self.seg.slot(id).next.load(Ordering::Acquire) & NEXT_DONE != 0
    }

    /// Lets buyer `id` take exactly its next step.
    pub(crate) fn grant(&self, id: usize) {
        let slot = self.seg.slot(id);
        // Cleared here, not by the buyer, so "parked again" can only mean
        // the buyer took the step and reached its next gate.
        slot.next.fetch_and(!NEXT_PARKED, Ordering::AcqRel);
        slot.turn.fetch_add(1, Ordering::Release);
        process::futex_wake_all(&slot.turn);
    }

    /// The count of parkings so far: read it before looking, then
    /// [`Turnstiles::wait_for_parking`] cannot miss one.
    pub(crate) fn parkings(&self) -> u32 {
        self.seg.control().parked.load(Ordering::Acquire)
    }

    /// Sleeps until a buyer parks or finishes after `seen` was read, or
    /// `timeout` passes.
    /// `moving` says a buyer was granted a step and has not parked yet:
    /// it will within microseconds, so the parent looks a while before it
    /// sleeps, since being woken on another core costs more than the step
    /// itself. With everyone parked (a person thinking) it sleeps at once.
    pub(crate) fn wait_for_parking(&self, seen: u32, timeout: Duration, moving: bool) {
        let parked = &self.seg.control().parked;
        if moving && process::spin_until(PARKING_SPIN, || parked.load(Ordering::Acquire) != seen) {
            return;
        }
        process::futex_wait(parked, seen, Some(timeout));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moment(buyers: Vec<BuyerNow>, taken: usize) -> Moment {
        Moment {
            buyers,
            taken: vec![(0, Step::Search); taken],
        }
    }

    #[test]
    fn a_schedule_is_followed_and_checked() {
        let mut c = ScheduleChooser::new(Schedule::parse("2S,1").unwrap(), Then::Lowest);
        let m = moment(
            vec![
                BuyerNow::Parked(Step::Search),
                BuyerNow::Parked(Step::Search),
            ],
            0,
        );
        assert_eq!(c.choose(&m), Choice::Grant(1));
        let m = moment(
            vec![
                BuyerNow::Blocked {
                    step: Step::Lock,
                    holder: 1,
                },
                BuyerNow::Parked(Step::Read),
            ],
            1,
        );
        assert_eq!(
            c.choose(&m),
            Choice::Refuse("step 2: buyer 1 waits for the lock held by buyer 2".into())
        );
        let m = moment(vec![BuyerNow::Done, BuyerNow::Parked(Step::Read)], 2);
        assert_eq!(
            c.choose(&m),
            Choice::Grant(1),
            "then the lowest that can move"
        );
    }

    #[test]
    fn a_wrong_annotation_names_the_real_next_step() {
        let mut c = ScheduleChooser::new(Schedule::parse("1W").unwrap(), Then::Free);
        let m = moment(vec![BuyerNow::Parked(Step::Read)], 0);
        assert_eq!(
            c.choose(&m),
            Choice::Refuse("step 1: buyer 1's next step is read, not write".into())
        );
        let m = moment(vec![BuyerNow::Parked(Step::Read)], 1);
        assert_eq!(c.choose(&m), Choice::Free);
        let mut c = ScheduleChooser::new(Schedule::parse("3").unwrap(), Then::Free);
        assert_eq!(
            c.choose(&moment(vec![BuyerNow::Parked(Step::Read)], 0)),
            Choice::Refuse("step 1: buyer 3 does not exist (this sale has 1 buyer)".into())
        );
    }
}
