//! What one buyer process does: the posts' `task()`, a search, then
//! purchases until it has what it wants or the tickets are gone.
//!
//! Every shared operation goes through [`Buyer::record`], which publishes it
//! in the buyer's slot (for the live view), appends it to the trace (for the
//! post-mortem) and is where a pause takes hold.

mod database;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::config::{LockMode, SaleConfig, Wants};
use crate::fault::{Acquisition, FaultPoint};
use crate::mutex::{Held, SharedMutex};
use crate::process;
use crate::protocol::{
    BuyerNo, CORRUPT_AFTER, ERROR_EXIT, GAVE_UP_EXIT, Op, STEP_TRACE_BASE, buyer_seed,
};
use crate::segment::{
    Control, GATE_OPEN, GATE_PAUSED, GATE_SCHEDULED, GATE_STOPPING, LockArea, NEXT_DONE,
    NEXT_PARKED, Segment, Slot, TraceEntry,
};
use crate::step::Step;
use crate::store::server::Sale;
use crate::store::{FileRead, StoreClient, StoreError};

/// How long a parked buyer looks at its turnstile before sleeping on it:
/// about what a scheduler takes to grant the next step, and short enough
/// not to matter while a person thinks.
const GRANT_SPIN: Duration = Duration::from_micros(50);

/// Attempts to take a busy mutex before sleeping on it.
const SPINS_BEFORE_SLEEP: u32 = 100;

/// Milliseconds the `woken-waiter` fault waits for another buyer to take
/// the mutex before it gives up and buys as usual.
const WOKEN_WAITER_PATIENCE: u32 = 2000;

/// Milliseconds the `stop-mid-rewrite` fault holds its rewrite for the stop
/// it asked for; it goes on without one rather than hang by itself.
const STOP_FAULT_PATIENCE: u32 = 5000;

/// Why a buyer stopped early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuyerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The mutex failed.
    #[error("mutex: {0}")]
    Lock(String),
}

enum Outcome {
    Bought,
    SoldOut,
}

/// What a buyer asks the seller.
enum Ask {
    Search,
    Buy,
}

/// One buyer, living in its own forked process.
pub(crate) struct Buyer<'a> {
    id: usize,
    pid: i32,
    cfg: &'a SaleConfig,
    seg: &'a Segment,
    slot: &'a Slot,
    control: &'a Control,
    lock_area: &'a LockArea,
    /// The pthread mutex inside `lock_area`, resolved once: a purchase takes
    /// and releases it millions of times a second.
    mutex: SharedMutex<'a>,
    /// Proof that this buyer holds the mutex, from acquire to release.
    held: Option<Held>,
    /// Where this buyer kills itself, if the fault hook names it.
    fault: Option<FaultPoint>,
    trace: &'a [TraceEntry],
    store: StoreClient<'a>,
    /// Only jittered delays draw; seeding costs a fresh process real time.
    rng: Option<StdRng>,
    epoch: Instant,
}

/// Appends one entry to a buyer's trace (if it records one).
#[inline(never)]
fn append_to_trace(slot: &Slot, trace: &[TraceEntry], t_ns: u64, op: u8, value: i64) {
    if trace.is_empty() {
        return;
    }
    let n = slot.trace_len.load(Ordering::Relaxed);
    if let Some(entry) = trace.get(n as usize) {
        entry.t_ns.store(t_ns, Ordering::Relaxed);
        entry
            .word
            .store(TraceEntry::pack(op, value), Ordering::Relaxed);
    }
    slot.trace_len.store(n + 1, Ordering::Release);
}

impl<'a> Buyer<'a> {
    /// A buyer for slot `id`; `epoch` is the parent's clock origin, shared
    /// through fork, so every trace timestamp is comparable.
    pub(crate) fn new(
        id: usize,
        cfg: &'a SaleConfig,
        seg: &'a Segment,
        store: StoreClient<'a>,
        epoch: Instant,
        fault: Option<FaultPoint>,
    ) -> Buyer<'a> {
        let trace = if cfg.records_trace() {
            seg.trace(id)
        } else {
            &[]
        };
        Buyer {
            id,
            pid: std::process::id() as i32,
            cfg,
            seg,
            slot: seg.slot(id),
            control: seg.control(),
            lock_area: seg.lock_area(),
            mutex: seg.mutex(),
            held: None,
            fault,
            trace,
            store,
            rng: cfg
                .jitter
                .then(|| StdRng::seed_from_u64(buyer_seed(cfg.seed, id))),
            epoch,
        }
    }

    /// Runs the buyer to the end and returns its exit code.
    pub(crate) fn run(mut self) -> i32 {
        self.slot.pid.store(self.pid, Ordering::Relaxed);
        self.watch_busy();
        self.wait_for_start();
        // Starting a process costs time before it can do anything: all
        // buyers pay it at once when they start together, one after another
        // under join. Drawn by every buyer, so the seeded draws stay the
        // same in every setting; slept once by the one process that runs
        // every buyer in turn.
        let start_delay = self.draw(self.cfg.start_delay);
        if !self.cfg.one_process || self.id == 0 {
            self.sleep(start_delay);
        }
        let code = match self.shop() {
            Ok(()) => 0,
            Err(BuyerError::Store(StoreError::Corrupt(_))) => GAVE_UP_EXIT,
            Err(e) => {
                let line = format!("ticketlab: buyer {}: {e}\n", BuyerNo(self.id));
                let _ = process::write_fd(2, line.as_bytes());
                ERROR_EXIT
            }
        };
        // A write that failed mid-commit commits nothing more: a stop need
        // not wait for this buyer.
        self.slot.committing.store(0, Ordering::Release);
        self.slot
            .finished_ns
            .store(self.now_ns(), Ordering::Release);
        // A scheduler waiting for this buyer to park learns it never will.
        self.slot.next.store(NEXT_DONE, Ordering::Release);
        self.control.parked.fetch_add(1, Ordering::Release);
        process::futex_wake_all(&self.control.parked);
        code
    }

    fn wait_for_start(&self) {
        let start = &self.seg.control().start;
        while start.load(Ordering::Acquire) == 0 {
            process::futex_wait(start, 0, None);
        }
    }

    /// The posts' `task()`: one search, then purchases until the buyer has
    /// what it wants. `task` locks all of it, `buy` each purchase.
    fn shop(&mut self) -> Result<(), BuyerError> {
        if self.cfg.lock == LockMode::Task {
            self.acquire()?;
            let outcome = self.search().and_then(|_| self.buy_until_done());
            self.release()?;
            return outcome;
        }
        self.search()?;
        self.buy_until_done()
    }

    fn buy_until_done(&mut self) -> Result<(), BuyerError> {
        let mut bought = 0u64;
        let mut attempts = 0u64;
        // Without delays there is nothing to draw: keep the purchase short.
        let has_delays = !(self.cfg.read_delay.is_zero() && self.cfg.write_delay.is_zero());
        loop {
            if let Wants::Count(n) = self.cfg.wants {
                if bought >= n {
                    return Ok(());
                }
            }
            attempts += 1;
            self.slot.attempts.store(attempts, Ordering::Relaxed);
            // Both delays are drawn every attempt, used or not, so the same
            // seed draws the same delays whatever the interleaving.
            let (read_delay, write_delay) = if has_delays {
                (
                    self.draw(self.cfg.read_delay),
                    self.draw(self.cfg.write_delay),
                )
            } else {
                (Duration::ZERO, Duration::ZERO)
            };
            // A database's `buy` locks the sale in the database itself.
            let outcome = if matches!(self.cfg.lock, LockMode::Buy | LockMode::Robust)
                && !self.cfg.store.is_database()
            {
                self.acquire()?;
                let outcome = self.buy(read_delay, write_delay);
                self.release()?;
                outcome?
            } else {
                self.buy(read_delay, write_delay)?
            };
            match outcome {
                Outcome::Bought => {
                    bought += 1;
                    self.slot.bought.store(bought, Ordering::Relaxed);
                    self.record(Op::Bought, bought as i64);
                    if let StoreClient::File(_) = self.store {
                        // The purchase is in the file and counted: a stop
                        // may end this buyer again (`begin_commit`).
                        self.slot.committing.store(0, Ordering::Release);
                    }
                }
                Outcome::SoldOut => return Ok(()),
            }
        }
    }

    /// The posts' `search()`: shows the count and waits out the search
    /// delay, outside the lock unless the lock covers the whole task.
    fn search(&mut self) -> Result<i64, BuyerError> {
        // Drawn before any purchase's delays, once per buyer, so the same
        // seed draws the same delays whatever the interleaving; a zero
        // delay draws nothing, so runs without it repeat as before.
        let delay = self.draw(self.cfg.search_delay);
        let count = match &self.store {
            StoreClient::Server(_) | StoreClient::Queue(_) => self.ask_seller(Ask::Search)?,
            _ => self.read_count(Step::Search)?,
        };
        self.record(Op::Search, count);
        self.sleep(delay);
        Ok(count)
    }

    #[inline(always)]
    fn buy(&mut self, read_delay: Duration, write_delay: Duration) -> Result<Outcome, BuyerError> {
        if matches!(self.store, StoreClient::Server(_) | StoreClient::Queue(_)) {
            return self.buy_from_seller(read_delay, write_delay);
        }
        if matches!(self.store, StoreClient::Database(_)) {
            return self.buy_from_database(read_delay, write_delay);
        }
        let mut seen = self.read_count(Step::Read)?;
        loop {
            self.record(Op::Read, seen);
            self.sleep(read_delay);
            if seen <= 0 {
                self.record(Op::SoldOut, seen);
                return Ok(Outcome::SoldOut);
            }
            // Without a delay the "writing" state would show for nanoseconds.
            if !write_delay.is_zero() {
                self.record(Op::Writing, seen - 1);
                self.sleep(write_delay);
            }
            match self.cfg.lock {
                LockMode::Write => {
                    self.acquire()?;
                    // Released before a write error is passed on: a buyer
                    // must never exit holding the mutex.
                    let wrote = self.write_count(seen - 1);
                    self.release()?;
                    wrote?;
                }
                LockMode::Atomic => {
                    let StoreClient::Shm(count) = &self.store else {
                        unreachable!("atomic is validated to need the shm store")
                    };
                    // A failed swap hands back the count it found: that is
                    // the re-read, so the retry starts from it.
                    self.gate(Step::Cas);
                    match count.compare_exchange(
                        seen,
                        seen - 1,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => self.record(Op::Wrote, seen - 1),
                        Err(now) => {
                            self.slot.failed_swaps.fetch_add(1, Ordering::Relaxed);
                            self.record(Op::CasRetry, seen);
                            seen = now;
                            continue;
                        }
                    }
                }
                LockMode::Robust => {
                    self.write_count(seen - 1)?;
                    // Recorded at once, still under the mutex: the
                    // repair after a dead holder counts on it (`recover`).
                    let bought = self.slot.bought.load(Ordering::Relaxed) + 1;
                    self.slot.bought.store(bought, Ordering::Release);
                }
                _ => self.write_count(seen - 1)?,
            }
            return Ok(Outcome::Bought);
        }
    }

    /// The request travels for the read delay and the answer for the write
    /// delay; the seller's check-and-decrement is indivisible.
    #[inline(never)]
    fn buy_from_seller(
        &mut self,
        read_delay: Duration,
        write_delay: Duration,
    ) -> Result<Outcome, BuyerError> {
        self.sleep(read_delay);
        let before = self.ask_seller(Ask::Buy)?;
        let sale = if before > 0 {
            Sale::Sold(before)
        } else {
            Sale::SoldOut(before)
        };
        Ok(match sale {
            Sale::Sold(before) => {
                self.record(Op::Read, before);
                self.sleep(write_delay);
                self.record(Op::Wrote, before - 1);
                Outcome::Bought
            }
            Sale::SoldOut(seen) => {
                self.record(Op::SoldOut, seen);
                Outcome::SoldOut
            }
        })
    }

    // The shm store's purchase costs nanoseconds, so everything on its path
    // is inlined and everything else (files, pipes, waiting) is kept out of
    // line: call overhead alone once doubled its cost.
    #[inline(always)]
    fn read_count(&mut self, step: Step) -> Result<i64, BuyerError> {
        match &self.store {
            StoreClient::Shm(count) => {
                self.gate(step);
                Ok(count.load(Ordering::Relaxed))
            }
            _ => self.read_count_slow(step),
        }
    }

    /// One request to the seller and its answer, each a step of its own;
    /// through the queue, the request is written under the lock.
    #[inline(never)]
    fn ask_seller(&mut self, ask: Ask) -> Result<i64, BuyerError> {
        let queued = matches!(self.store, StoreClient::Queue(_));
        if queued {
            // The lock is what makes the shared pipe a queue, as
            // `multiprocessing.Queue` writes each message under its lock.
            // It is not what keeps these requests whole: each is one
            // 4-byte write, below PIPE_BUF, and the kernel never mixes
            // such writes. But a message past PIPE_BUF can be split
            // between other writers' bytes, and a queue cannot know how
            // long its messages will be, so it writes every one whole
            // under the lock. Only the write is covered: the answer comes
            // on this buyer's own pipe, which nobody else reads.
            self.acquire()?;
        }
        self.gate(Step::Request);
        let sent = match ask {
            Ask::Search => self.seller().send_search(),
            Ask::Buy => self.seller().send_buy(),
        };
        if queued {
            // Released before a send error is passed on: a buyer must
            // never exit holding the mutex.
            self.release()?;
        }
        sent?;
        self.gate(Step::Reply);
        Ok(self.seller().receive()?)
    }

    /// The pipes to the seller, of a server or queue buyer.
    fn seller(&self) -> &crate::store::ServerClient {
        match &self.store {
            StoreClient::Server(client) | StoreClient::Queue(client) => client,
            _ => unreachable!("only server and queue buyers ask the seller"),
        }
    }

    #[cold]
    #[inline(never)]
    fn read_count_slow(&mut self, step: Step) -> Result<i64, BuyerError> {
        match &self.store {
            StoreClient::Shm(_) => unreachable!("read_count reads the shm store inline"),
            StoreClient::File(file) => {
                let mut garbage_since: Option<Instant> = None;
                loop {
                    // Every attempt is a step: a torn read is one, and so is
                    // the read that follows it.
                    self.gate(step);
                    match file.read()? {
                        FileRead::Count(n) => return Ok(n),
                        FileRead::Torn => {
                            self.slot.torn_reads.fetch_add(1, Ordering::Relaxed);
                            self.record(Op::TornRead, 0);
                            let since = *garbage_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > CORRUPT_AFTER {
                                let path = file.path().display().to_string();
                                return Err(StoreError::Corrupt(path).into());
                            }
                            // Not a busy spin: the writer needs the CPU to
                            // finish, and under a lock it is the only hope.
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                }
            }
            StoreClient::Database(_) => self.database_read(step),
            StoreClient::Server(_) | StoreClient::Queue(_) => {
                unreachable!("server and queue buyers ask the seller")
            }
        }
    }

    #[inline(always)]
    fn write_count(&mut self, value: i64) -> Result<(), BuyerError> {
        match &self.store {
            StoreClient::Shm(count) => {
                self.gate(Step::Write);
                count.store(value, Ordering::Relaxed);
            }
            _ => self.write_file(value)?,
        }
        self.record(Op::Wrote, value);
        Ok(())
    }

    /// The posts' rewrite: truncate, then write, two steps with a window
    /// between them where a reader finds the file empty.
    #[inline(never)]
    fn write_file(&self, value: i64) -> Result<(), BuyerError> {
        let StoreClient::File(file) = &self.store else {
            unreachable!("server and queue buyers never write the count")
        };
        let open = file.open_for_write()?;
        self.gate(Step::Truncate);
        self.begin_commit();
        file.truncate(&open)?;
        if let Some(point) = self.fault {
            self.truncated_with_fault(point);
        }
        // Passed without a grant under a stop: the file is empty until
        // this write lands.
        self.gate(Step::Write);
        file.write_count(&open, value)?;
        Ok(())
    }

    /// Marks this buyer as committing a purchase to the file, from its
    /// truncate to the record of the purchase, unless the sale is stopping.
    ///
    /// A stop kills buyers, and one killed between its truncate and its
    /// write would leave the file empty, the count gone. So the parent,
    /// stopping a sale, closes the gate for good (`GATE_STOPPING`), then
    /// reads every buyer's `committing` flag, and lets those that are
    /// committing finish before it kills them. The flag is set, then the
    /// gate is read; the parent sets the gate, then reads the flag; all four
    /// `SeqCst`, so in their one total order at least one of the two reads
    /// sees the other's write. Either the parent sees this buyer committing
    /// and waits for it, or this buyer sees the stop, steps back before
    /// touching the file and parks for good: no rewrite begins unseen.
    #[inline(always)]
    fn begin_commit(&self) {
        loop {
            self.slot.committing.store(1, Ordering::SeqCst);
            if self.control.gate.load(Ordering::SeqCst) != GATE_STOPPING {
                return;
            }
            self.slot.committing.store(0, Ordering::SeqCst);
            // Never returns: a stop grants nothing to a buyer not committing.
            self.park(Step::Truncate);
        }
    }

    /// The fault points of the file store's rewrite: the file is empty now,
    /// and the armed buyer stops the sale from here.
    #[cold]
    #[inline(never)]
    fn truncated_with_fault(&self, point: FaultPoint) {
        match point {
            FaultPoint::StopMidRewrite => {
                process::kill(process::getppid(), libc::SIGINT);
                // The stop lets a committing buyer go on by granting it a
                // turn; asleep on the turnstile, it wakes at once.
                for _ in 0..STOP_FAULT_PATIENCE {
                    if self.control.gate.load(Ordering::Acquire) == GATE_STOPPING {
                        return;
                    }
                    let turn = self.slot.turn.load(Ordering::Acquire);
                    process::futex_wait(&self.slot.turn, turn, Some(Duration::from_millis(1)));
                }
            }
            FaultPoint::StuckMidRewrite => {
                process::kill(process::getppid(), libc::SIGTERM);
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            _ => {}
        }
    }

    #[inline(always)]
    fn acquire(&mut self) -> Result<(), BuyerError> {
        if self.control.gate.load(Ordering::Relaxed) != GATE_OPEN {
            return self.acquire_gated();
        }
        let held = match self.fault {
            None => match self.mutex.try_lock() {
                Some(held) => held,
                None => match self.spin_for_lock() {
                    Some(held) => held,
                    None => self.wait_for_lock()?,
                },
            },
            Some(point) => self.acquire_with_fault(point)?,
        };
        self.hold(held)
    }

    #[inline(always)]
    fn hold(&mut self, mut held: Held) -> Result<(), BuyerError> {
        if held.owner_died() {
            self.recover(&mut held)?;
        }
        self.held = Some(held);
        self.lock_area.holder_pid.store(self.pid, Ordering::Relaxed);
        self.lock_area
            .holder_worker
            .store(self.id as i32, Ordering::Relaxed);
        if !self.trace.is_empty() {
            self.append_trace(STEP_TRACE_BASE + Step::Lock as u8, 0);
        }
        self.record(Op::Locked, 0);
        if self.fault == Some(FaultPoint::Holding) {
            process::die_now();
        }
        Ok(())
    }

    /// `--lock robust`: this buyer took the mutex from a holder that died
    /// holding it (`EOWNERDEAD`), and must repair what it guards before
    /// making it consistent.
    ///
    /// Why tickets minus the recorded purchases is the right count: under
    /// this lock every purchase is recorded in its buyer's slot (`bought`,
    /// a word only that buyer writes) right after its write of the count,
    /// both under the mutex. So whenever the mutex is free, the count is
    /// tickets minus Σ bought. Only the holder breaks that, and only between its write
    /// and its record. Dying, it left the count either untouched (died
    /// before its write: the sum is right and so is the count) or one lower
    /// with the record missing (died between the two: the count is one too
    /// low, the sum right) or both done (died after: both right). In every
    /// case the records are whole (each is one atomic word) and the sum is
    /// the truth; the count is derived, so it is rewritten from the sum.
    /// Every earlier record is visible here: it was made under the mutex,
    /// and so was every later one, before the death the kernel reported.
    #[cold]
    #[inline(never)]
    fn recover(&mut self, held: &mut Held) -> Result<(), BuyerError> {
        // The dead holder never cleared its name: read it before ours
        // replaces it. -1 if it died before writing it.
        let dead = self.lock_area.holder_worker.load(Ordering::Acquire);
        let sold: u64 = (0..self.seg.layout().slots)
            .map(|i| self.seg.slot(i).bought.load(Ordering::Acquire))
            .sum();
        let tickets = i64::try_from(self.cfg.tickets).unwrap_or(i64::MAX);
        let repaired = tickets.saturating_sub(i64::try_from(sold).unwrap_or(i64::MAX));
        let StoreClient::Shm(count) = &self.store else {
            unreachable!("--lock robust is validated to need the shm store")
        };
        count.store(repaired, Ordering::Relaxed);
        self.mutex
            .consistent(held)
            .map_err(|e| BuyerError::Lock(format!("pthread_mutex_consistent: {e}")))?;
        self.slot.recoveries.fetch_add(1, Ordering::Relaxed);
        let from = u32::try_from(dead).map_or(0, |d| d + 1);
        self.slot.recovered_from.store(from, Ordering::Relaxed);
        self.slot.repaired_to.store(repaired, Ordering::Relaxed);
        Ok(())
    }

    /// The lock attempt behind a closed gate. A scheduler grants it only
    /// while the mutex is free, so one trylock takes it; should it fail,
    /// the buyer parks again at the same step rather than sleep inside the
    /// mutex, where the scheduler could never wake it. After a pause the
    /// gate is open again, and the usual path takes over.
    #[cold]
    #[inline(never)]
    fn acquire_gated(&mut self) -> Result<(), BuyerError> {
        loop {
            self.gate(Step::Lock);
            if let Some(held) = self.mutex.try_lock() {
                return self.hold(held);
            }
            if self.control.gate.load(Ordering::Relaxed) == GATE_OPEN {
                let held = match self.spin_for_lock() {
                    Some(held) => held,
                    None => self.wait_for_lock()?,
                };
                return self.hold(held);
            }
            self.record(Op::LockWait, 0);
        }
    }

    /// Critical sections without delays last nanoseconds: spinning a little
    /// saves most trips into the kernel's futex. Pauses between attempts
    /// keep the spinner from stealing the line from the holder. Common under
    /// contention, so not marked cold; out of line all the same, to keep the
    /// uncontended purchase short.
    #[inline(never)]
    fn spin_for_lock(&self) -> Option<Held> {
        for _ in 0..SPINS_BEFORE_SLEEP {
            for _ in 0..8 {
                std::hint::spin_loop();
            }
            if let Some(held) = self.mutex.try_lock() {
                return Some(held);
            }
        }
        None
    }

    /// Sleeps on the mutex. Only a wait that sleeps is timed: clock reads on
    /// every short spin would cost more than the critical section itself.
    #[cold]
    #[inline(never)]
    fn wait_for_lock(&mut self) -> Result<Held, BuyerError> {
        self.record(Op::LockWait, 0);
        let waiting = Instant::now();
        let paused_before = self.control.paused_ns.load(Ordering::Relaxed);
        let held = self
            .mutex
            .lock()
            .map_err(|e| BuyerError::Lock(e.to_string()))?;
        // A pause is not lock contention: take it out.
        let paused = self
            .control
            .paused_ns
            .load(Ordering::Relaxed)
            .saturating_sub(paused_before);
        let waited = (waiting.elapsed().as_nanos() as u64).saturating_sub(paused);
        self.slot.lock_wait_ns.fetch_add(waited, Ordering::Relaxed);
        Ok(held)
    }

    /// The lock path of the buyer the fault hook names: it takes the mutex
    /// the way the point says and dies where the point says.
    #[cold]
    #[inline(never)]
    fn acquire_with_fault(&mut self, point: FaultPoint) -> Result<Held, BuyerError> {
        // A free run takes the lock without passing a gate for it.
        if point == FaultPoint::BeforeStep(Step::Lock) {
            self.crash_here();
        }
        if let Some(how) = point.acquisition() {
            let held = match how {
                Acquisition::FirstTrylock => loop {
                    if let Some(held) = self.mutex.try_lock() {
                        break held;
                    }
                    if let Some(held) = self.spin_for_lock() {
                        break held;
                    }
                    std::thread::yield_now();
                },
                // No first trylock, and no fallback to the wait either:
                // dying after a sleep is `after-wait`'s window, so spin
                // again until a spinning trylock takes it.
                Acquisition::Spin => loop {
                    if let Some(held) = self.spin_for_lock() {
                        break held;
                    }
                    std::thread::yield_now();
                },
                Acquisition::Sleep => self.wait_for_lock()?,
            };
            if point == FaultPoint::InsideLock {
                self.mutex.forget_owner(&held);
            }
            process::die_now()
        }
        match point {
            FaultPoint::WokenWaiter => {
                // Sleep on the mutex as soon as another buyer holds it, and
                // die as soon as an unlock wakes us. If nobody takes it for
                // a while, the others are done: buy as usual.
                for _ in 0..WOKEN_WAITER_PATIENCE {
                    if self.mutex.wait_until_woken().is_some() {
                        process::die_now();
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                match self.mutex.try_lock() {
                    Some(held) => Ok(held),
                    None => self.wait_for_lock(),
                }
            }
            // The usual way in; these die later, holding or releasing.
            _ => match self.mutex.try_lock() {
                Some(held) => Ok(held),
                None => self.wait_for_lock(),
            },
        }
    }

    #[inline(always)]
    fn release(&mut self) -> Result<(), BuyerError> {
        self.gate(Step::Unlock);
        self.record(Op::Unlocked, 0);
        self.lock_area.holder_worker.store(-1, Ordering::Relaxed);
        self.lock_area.holder_pid.store(0, Ordering::Relaxed);
        let held = self.held.take().expect("release follows acquire");
        if let Some(point) = self.fault {
            self.release_with_fault(point, &held);
        }
        self.mutex
            .unlock(held)
            .map_err(|e| BuyerError::Lock(e.to_string()))
    }

    #[cold]
    #[inline(never)]
    fn release_with_fault(&self, point: FaultPoint, held: &Held) {
        match point {
            FaultPoint::BeforeUnlock => process::die_now(),
            FaultPoint::InsideUnlock => {
                self.mutex.forget_owner(held);
                process::die_now()
            }
            _ => {}
        }
    }

    /// The gate before every shared step: one relaxed load while the gate
    /// is open, and a wait at the turnstile while it is closed.
    #[inline(always)]
    fn gate(&self, step: Step) {
        if self.control.gate.load(Ordering::Relaxed) != GATE_OPEN {
            self.park(step);
        }
        // After the park: under a scheduler the crash is the granted step.
        if let Some(FaultPoint::BeforeStep(at)) = self.fault {
            if at == step {
                self.crash_here();
            }
        }
        // The lock step is recorded when the lock is taken (`hold`), not
        // when it is asked for: in a free run a buyer may wait for it long
        // after passing the gate, and the recorded order must have it after
        // the holder's unlock, as a replay will grant it.
        if step != Step::Lock && !self.trace.is_empty() {
            self.append_trace(STEP_TRACE_BASE + step as u8, 0);
        }
    }

    /// `--crash`: dies right here, before the step. The slot says so
    /// first, so the parent can tell a crash that was asked for from one
    /// that was not (the hidden fault hook, a real bug).
    #[cold]
    #[inline(never)]
    fn crash_here(&self) -> ! {
        self.record(Op::Crashed, 0);
        process::die_now()
    }

    /// The turnstile: publish the next step, tell the parent, and sleep on
    /// this slot's own futex word until the parent grants the step (adds
    /// one to `turn`) or opens the gate. Nothing here holds the mutex
    /// hostage: a lock attempt is only ever made after its grant.
    ///
    /// A stopping sale grants nothing: a buyer parks there until it is
    /// ended, unless it is committing a purchase to the file, which it
    /// finishes first (`begin_commit`); the stop wakes it with a grant.
    #[cold]
    #[inline(never)]
    fn park(&self, step: Step) {
        let committing = || self.slot.committing.load(Ordering::Relaxed) != 0;
        let stopping = || self.control.gate.load(Ordering::Acquire) == GATE_STOPPING;
        if stopping() && committing() {
            return;
        }
        let turn = self.slot.turn.load(Ordering::Acquire);
        self.slot
            .next
            .store(NEXT_PARKED | step as u32, Ordering::Release);
        self.control.parked.fetch_add(1, Ordering::Release);
        process::futex_wake_all(&self.control.parked);
        let released = || match self.control.gate.load(Ordering::Acquire) {
            GATE_OPEN => true,
            GATE_STOPPING => committing(),
            _ => self.slot.turn.load(Ordering::Acquire) != turn,
        };
        // A scheduler answers within microseconds: look a while before
        // sleeping, since waking a sleeping process on another core costs
        // more than the whole step. A stop answers nobody: spinning would
        // only take the CPU from the buyers finishing their purchases.
        if !stopping() && process::spin_until(GRANT_SPIN, released) {
            return;
        }
        loop {
            // Read before looking, so a grant made after the look changes
            // the word the sleep expects, and the sleep returns at once.
            let now = self.slot.turn.load(Ordering::Acquire);
            if released() {
                return;
            }
            process::futex_wait(&self.slot.turn, now, None);
        }
    }

    /// The one place every finished operation is published.
    #[inline(always)]
    fn record(&self, op: Op, value: i64) {
        self.slot.value.store(value, Ordering::Relaxed);
        self.slot.state.store(op as u32, Ordering::Release);
        if !self.trace.is_empty() {
            self.append_trace(op as u8, value);
        }
    }

    fn append_trace(&self, op: u8, value: i64) {
        append_to_trace(self.slot, self.trace, self.now_ns(), op, value);
    }

    #[inline(always)]
    fn draw(&mut self, max: Duration) -> Duration {
        let d = match self.rng.as_mut() {
            Some(rng) if !max.is_zero() => {
                Duration::from_nanos(rng.random_range(0..=max.as_nanos() as u64))
            }
            _ => max,
        };
        if !d.is_zero() {
            self.slot
                .drawn_delay_ns
                .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        }
        d
    }

    #[inline(always)]
    fn sleep(&self, d: Duration) {
        if !d.is_zero() {
            self.sleep_scaled(d);
        }
    }

    #[cold]
    #[inline(never)]
    fn sleep_scaled(&self, d: Duration) {
        // Under a scheduler the order is the scheduler's, not the clock's:
        // a delay would only slow the stepping down.
        if self.control.gate.load(Ordering::Relaxed) == GATE_SCHEDULED {
            return;
        }
        let permille = self.control.delay_permille.load(Ordering::Relaxed);
        let mut left = d * permille / 1000;
        // A pause stops the clock of a delay too: the buyer sleeps on the
        // gate word, which the parent wakes whenever it opens or closes the
        // gate, and only time spent with the gate open counts. Otherwise a
        // delay would run out during the pause, which is left out of the
        // elapsed time, and the sale would look faster than it was.
        while !left.is_zero() {
            match self.control.gate.load(Ordering::Acquire) {
                GATE_OPEN => {
                    let slept = Instant::now();
                    process::futex_wait(&self.control.gate, GATE_OPEN, Some(left));
                    left = left.saturating_sub(slept.elapsed());
                }
                GATE_PAUSED => process::futex_wait(&self.control.gate, GATE_PAUSED, None),
                // A scheduler took over: the order is its, not the clock's.
                // Or the sale is stopping: park at the next gate.
                _ => return,
            }
        }
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}
