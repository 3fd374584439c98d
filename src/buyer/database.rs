//! A buyer's purchase in a database store (SQLite or PostgreSQL): the
//! statements `store::sql` gives its lock setting, each shared step behind
//! its gate, as the segment's stores do.
//!
//! A buyer that dies mid-transaction leaves nothing behind: the database
//! rolls back what a connection did not commit (SQLite's write-ahead log
//! ignores the frames of an uncommitted transaction; PostgreSQL aborts the
//! transaction of a closed connection and releases its row locks).

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Buyer, BuyerError, Op, Outcome};
use crate::config::LockMode;
use crate::fault::FaultPoint;
use crate::process;
use crate::segment::{Slot, TraceEntry};
use crate::step::Step;
use crate::store::database::{DbError, Param, SQLITE_BUSY_TIMEOUT};
use crate::store::sql;
use crate::store::{StoreClient, StoreError};

/// What a statement binds, built where the connection is borrowed.
#[derive(Clone, Copy)]
enum Bind {
    /// Nothing.
    Nothing,
    /// `$1` the sale.
    Sale,
    /// `$1` the sale, `$2` a count.
    SaleAnd(i64),
    /// The purchase row: sale, run, buyer (from 1), the count acted on.
    Purchase(i64),
}

/// The first pause of a busy wait; each further try waits twice as long, up
/// to [`BUSY_PAUSE_MAX`]: a short hold is waited out at once, a long one
/// (a read delay under `buy`) is polled without spinning.
const BUSY_PAUSE_MIN: Duration = Duration::from_micros(50);
/// The longest pause between two tries of a busy statement.
const BUSY_PAUSE_MAX: Duration = Duration::from_millis(2);

/// Where a SQLite buyer's busy handler publishes its wait: the buyer's own
/// slot and trace. SQLite calls the handler as a plain `fn` with no
/// context, so it finds them through [`BUSY_WATCH`], set once per buyer
/// process, after its fork.
struct BusyWatch {
    slot: *const Slot,
    trace: *const TraceEntry,
    trace_len: usize,
    epoch: Instant,
    /// When the wait now going on began, in ns since `epoch`.
    since_ns: AtomicU64,
    /// The slot's state before the wait, put back once the statement ran
    /// (the trace keeps the `busy` event).
    before: AtomicU32,
    /// Whether the statement now running waited.
    waited: AtomicBool,
}

/// This process's [`BusyWatch`], or null before it is set (and in every
/// process but a SQLite buyer).
static BUSY_WATCH: AtomicPtr<BusyWatch> = AtomicPtr::new(std::ptr::null_mut());

/// The watch of this process, if it is a SQLite buyer.
fn busy_watch() -> Option<&'static BusyWatch> {
    // SAFETY: the pointer is null or a leaked `Box` (`watch_busy`), never
    // freed, so a shared reference to it is valid for the process's life.
    unsafe { BUSY_WATCH.load(Ordering::Acquire).as_ref() }
}

impl BusyWatch {
    fn slot(&self) -> &Slot {
        // SAFETY: `slot` points into the segment's mapping, which a buyer
        // process never unmaps: it disowns the segment after fork, never
        // drops it, and ends with `_exit` (`process::fork`). Every field of
        // a slot is an atomic, so shared access from here is sound.
        unsafe { &*self.slot }
    }

    fn trace(&self) -> &[TraceEntry] {
        // SAFETY: as for `slot`: the buyer's trace area in the same mapping,
        // `trace_len` entries of atomics.
        unsafe { std::slice::from_raw_parts(self.trace, self.trace_len) }
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// SQLite's busy handler for a buyer's connection: another connection
/// holds the write lock. On the first try the wait becomes a step of its
/// own (`busy` in the trace, waiting in the slot); every try backs off a
/// little longer, and after [`SQLITE_BUSY_TIMEOUT`] the statement fails as
/// the busy timeout would have made it.
fn on_busy(tries: i32) -> bool {
    let Some(watch) = busy_watch() else {
        // Not set up: wait as the timeout would, unseen.
        std::thread::sleep(BUSY_PAUSE_MAX);
        return tries < (SQLITE_BUSY_TIMEOUT.as_millis() / BUSY_PAUSE_MAX.as_millis()) as i32;
    };
    let slot = watch.slot();
    let now = watch.now_ns();
    if tries == 0 {
        watch.since_ns.store(now, Ordering::Relaxed);
        if !watch.waited.swap(true, Ordering::Relaxed) {
            watch
                .before
                .store(slot.state.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        slot.busy_statements.fetch_add(1, Ordering::Relaxed);
        let seen = slot.value.load(Ordering::Relaxed);
        slot.state.store(Op::Busy as u32, Ordering::Release);
        super::append_to_trace(slot, watch.trace(), now, Op::Busy as u8, seen);
    }
    let waited = Duration::from_nanos(now.saturating_sub(watch.since_ns.load(Ordering::Relaxed)));
    if waited >= SQLITE_BUSY_TIMEOUT {
        return false;
    }
    let pause = BUSY_PAUSE_MIN
        .saturating_mul(1 << tries.clamp(0, 16))
        .min(BUSY_PAUSE_MAX);
    std::thread::sleep(pause);
    true
}

/// The longest pause between two tries of a serializable transaction:
/// short, but enough that two conflicting buyers do not meet again at once.
const RETRY_PAUSE_MAX: Duration = Duration::from_micros(500);

impl Buyer<'_> {
    /// Makes this buyer's waits for SQLite's write lock seen: its
    /// connection's busy handler publishes them to this buyer's slot and
    /// trace. Once per process, right after the connection is opened.
    pub(super) fn watch_busy(&self) {
        let StoreClient::Database(db) = &self.store else {
            return;
        };
        if db.conn.dialect() != sql::Dialect::Sqlite
            || !BUSY_WATCH.load(Ordering::Relaxed).is_null()
        {
            return;
        }
        let watch = Box::new(BusyWatch {
            slot: self.slot,
            trace: self.trace.as_ptr(),
            trace_len: self.trace.len(),
            epoch: self.epoch,
            since_ns: AtomicU64::new(0),
            before: AtomicU32::new(0),
            waited: AtomicBool::new(false),
        });
        BUSY_WATCH.store(Box::into_raw(watch), Ordering::Release);
        if let Err(e) = db.conn.on_busy(on_busy) {
            // Still correct without it: the busy timeout waits, unseen.
            let line = format!("ticketlab: buyer {}: {e}\n", super::BuyerNo(self.id));
            let _ = process::write_fd(2, line.as_bytes());
        }
    }

    /// Runs one statement on this buyer's connection. If it waited for
    /// SQLite's write lock, the slot shows the step it was at again (the
    /// trace keeps the wait).
    fn sql(&mut self, statement: &'static str, bind: Bind) -> Result<Option<Vec<i64>>, DbError> {
        let result = self.run_sql(statement, bind);
        if let Some(watch) = busy_watch() {
            if watch.waited.swap(false, Ordering::Relaxed) {
                self.slot
                    .state
                    .store(watch.before.load(Ordering::Relaxed), Ordering::Release);
            }
        }
        result
    }

    fn run_sql(
        &mut self,
        statement: &'static str,
        bind: Bind,
    ) -> Result<Option<Vec<i64>>, DbError> {
        let buyer = self.id as i64 + 1;
        let StoreClient::Database(db) = &mut self.store else {
            unreachable!("only database buyers run SQL")
        };
        let crate::store::DatabaseClient { conn, target } = db;
        let sale = Param::Text(&target.sale);
        match bind {
            Bind::Nothing => conn.run(statement, &[]),
            Bind::Sale => conn.run(statement, &[sale]),
            Bind::SaleAnd(n) => conn.run(statement, &[sale, Param::Int(n)]),
            Bind::Purchase(seen) => conn.run(
                statement,
                &[
                    sale,
                    Param::Text(&target.run),
                    Param::Int(buyer),
                    Param::Int(seen),
                ],
            ),
        }
    }

    fn sql_all(&mut self, statements: &[&'static str], bind: Bind) -> Result<(), DbError> {
        for &s in statements {
            let bind = if s.contains("$1") {
                bind
            } else {
                Bind::Nothing
            };
            self.sql(s, bind)?;
        }
        Ok(())
    }

    fn dialect(&self) -> sql::Dialect {
        match &self.store {
            StoreClient::Database(db) => db.conn.dialect(),
            _ => unreachable!("only database buyers have a dialect"),
        }
    }

    /// The live view shows the database's count: each buyer publishes the
    /// last count it read or left, where the view reads the shm store's.
    fn publish(&self, count: i64) {
        self.seg.count().store(count, Ordering::Relaxed);
    }

    /// An autocommit read of the count (the search, and the read of `none`
    /// and `write`).
    pub(super) fn database_read(&mut self, step: Step) -> Result<i64, BuyerError> {
        self.gate(step);
        let count = self.read_in_transaction().map_err(failed)?;
        Ok(count)
    }

    fn read_in_transaction(&mut self) -> Result<i64, DbError> {
        let row = self.sql(sql::READ_COUNT, Bind::Sale)?;
        let count = row
            .and_then(|r| r.first().copied())
            .ok_or_else(|| DbError::Failed("the sale's row is gone".into()))?;
        self.publish(count);
        Ok(count)
    }

    /// One purchase attempt under the buyer's lock setting.
    pub(super) fn buy_from_database(
        &mut self,
        read_delay: Duration,
        write_delay: Duration,
    ) -> Result<Outcome, BuyerError> {
        match self.cfg.lock {
            LockMode::Atomic => self.buy_conditionally(read_delay, write_delay),
            LockMode::Buy => self.buy_locked(read_delay, write_delay),
            LockMode::Serializable => loop {
                match self.buy_serializable(read_delay, write_delay) {
                    Err(DbError::Conflict(_)) => self.retry()?,
                    other => return other.map_err(failed),
                }
            },
            // none, join and task read in autocommit; write locks only
            // around its write.
            _ => self.buy_racy(read_delay, write_delay),
        }
    }

    /// `none`, `join`, `task` and `write`: read, wait, then write what was
    /// read minus one. Only `write` locks, and only around the write, too
    /// late to keep anyone from reading the same count.
    fn buy_racy(
        &mut self,
        read_delay: Duration,
        write_delay: Duration,
    ) -> Result<Outcome, BuyerError> {
        let seen = self.database_read(Step::Read)?;
        self.record(Op::Read, seen);
        self.sleep(read_delay);
        if seen <= 0 {
            self.record(Op::SoldOut, seen);
            return Ok(Outcome::SoldOut);
        }
        self.writing(seen, write_delay);
        if self.cfg.lock == LockMode::Write {
            self.lock_sale()?;
            self.gate(Step::Write);
            self.write_and_record(seen).map_err(failed)?;
            self.commit_and_unlock(Some(seen - 1))?;
        } else {
            self.gate(Step::Write);
            self.in_one_transaction(|b| b.write_and_record(seen))
                .map_err(failed)?;
            self.publish(seen - 1);
            self.record(Op::Wrote, seen - 1);
        }
        Ok(Outcome::Bought)
    }

    /// `buy`: the lock first, then read, check and write inside it.
    fn buy_locked(
        &mut self,
        read_delay: Duration,
        write_delay: Duration,
    ) -> Result<Outcome, BuyerError> {
        self.lock_sale()?;
        self.gate(Step::Read);
        let seen = self.read_in_transaction().map_err(failed)?;
        self.record(Op::Read, seen);
        self.sleep(read_delay);
        if seen <= 0 {
            self.commit_and_unlock(None)?;
            self.record(Op::SoldOut, seen);
            return Ok(Outcome::SoldOut);
        }
        self.writing(seen, write_delay);
        self.gate(Step::Write);
        self.write_and_record(seen).map_err(failed)?;
        self.commit_and_unlock(Some(seen - 1))?;
        Ok(Outcome::Bought)
    }

    /// `atomic`: the database checks and decrements in one statement. Its
    /// `COMMIT` is a step of its own (U): from the `UPDATE` to it the buyer
    /// holds the row (SQLite: the write lock), and another buyer's
    /// conditional update would wait for it, which the scheduler's model
    /// shows as waiting instead of granting it.
    fn buy_conditionally(
        &mut self,
        read_delay: Duration,
        write_delay: Duration,
    ) -> Result<Outcome, BuyerError> {
        // The request's way there and the answer's way back. Shown as the
        // statement in flight (only when it lasts long enough to see), not
        // as the search it follows.
        if !(read_delay.is_zero() && write_delay.is_zero()) {
            let seen = self.slot.value.load(Ordering::Relaxed);
            self.record(Op::Sent, seen);
        }
        self.sleep(read_delay);
        self.sleep(write_delay);
        self.gate(Step::Cas);
        let begin = sql::begin_write(self.dialect());
        let updated = self.sql(begin, Bind::Nothing).and_then(|_| {
            let Some(left) = self
                .sql(sql::CONDITIONAL_UPDATE, Bind::Sale)?
                .and_then(|r| r.first().copied())
            else {
                return Ok(None);
            };
            self.set_holder(true);
            self.sql(sql::RECORD_PURCHASE, Bind::Purchase(left + 1))?;
            self.die_if_armed();
            Ok(Some(left))
        });
        let left = match updated {
            Ok(left) => left,
            Err(e) => {
                let _ = self.sql(sql::ROLLBACK, Bind::Nothing);
                self.set_holder(false);
                return Err(failed(e));
            }
        };
        let Some(left) = left else {
            // Sold out: nothing was written, nothing is held.
            let _ = self.sql(sql::ROLLBACK, Bind::Nothing);
            self.publish(0);
            self.record(Op::SoldOut, 0);
            return Ok(Outcome::SoldOut);
        };
        self.commit()?;
        self.publish(left);
        self.record(Op::Wrote, left);
        Ok(Outcome::Bought)
    }

    /// `serializable`: one try. A conflict comes back as
    /// [`DbError::Conflict`] with the transaction still open.
    fn buy_serializable(
        &mut self,
        read_delay: Duration,
        write_delay: Duration,
    ) -> Result<Outcome, DbError> {
        self.gate(Step::Read);
        let begin = sql::begin_serializable(self.dialect());
        self.sql(begin, Bind::Nothing)?;
        let seen = self.read_in_transaction()?;
        self.record(Op::Read, seen);
        self.sleep(read_delay);
        if seen <= 0 {
            self.gate(Step::Unlock);
            self.sql(sql::COMMIT, Bind::Nothing)?;
            self.record(Op::SoldOut, seen);
            return Ok(Outcome::SoldOut);
        }
        self.writing(seen, write_delay);
        self.gate(Step::Write);
        self.write_and_record(seen)?;
        // From its write to its commit the buyer holds the row (or SQLite's
        // write lock): the scheduler's model must know, or it would grant
        // another buyer's write that can only fail or wait.
        self.set_holder(true);
        self.gate(Step::Unlock);
        self.sql(sql::COMMIT, Bind::Nothing)?;
        self.set_holder(false);
        self.publish(seen - 1);
        self.record(Op::Wrote, seen - 1);
        Ok(Outcome::Bought)
    }

    /// After a serialization failure: roll back, count it, pause a moment
    /// (drawn, so the same seed pauses alike), and try again.
    fn retry(&mut self) -> Result<(), BuyerError> {
        // A failed statement may have ended the transaction already (SQLite
        // rolls back on some errors): a rollback with none open is harmless.
        let _ = self.sql(sql::ROLLBACK, Bind::Nothing);
        self.set_holder(false);
        self.slot.retries.fetch_add(1, Ordering::Relaxed);
        let seen = self.slot.value.load(Ordering::Relaxed);
        self.record(Op::Retried, seen);
        let pause = self.draw_pause();
        self.sleep(pause);
        Ok(())
    }

    /// Not drawn from the buyer's RNG, whose draws must stay the same
    /// whatever the interleaving: fixed per buyer, and different for each.
    fn draw_pause(&mut self) -> Duration {
        let step = RETRY_PAUSE_MAX / 10;
        step * (self.id as u32 % 10 + 1)
    }

    fn writing(&mut self, seen: i64, write_delay: Duration) {
        if !write_delay.is_zero() {
            self.record(Op::Writing, seen - 1);
            self.sleep(write_delay);
        }
    }

    /// The stale write and the purchase's row. The hidden fault hook's
    /// `mid-transaction` dies right after them, before any commit.
    fn write_and_record(&mut self, seen: i64) -> Result<(), DbError> {
        self.sql(sql::WRITE_COUNT, Bind::SaleAnd(seen - 1))?;
        self.sql(sql::RECORD_PURCHASE, Bind::Purchase(seen))?;
        self.die_if_armed();
        Ok(())
    }

    fn die_if_armed(&self) {
        if self.fault == Some(FaultPoint::MidTransaction) {
            process::die_now();
        }
    }

    /// `BEGIN`, `work`, `COMMIT`; a failure rolls back.
    fn in_one_transaction<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let begin = sql::begin_write(self.dialect());
        self.sql(begin, Bind::Nothing)?;
        match work(self) {
            Ok(value) => {
                self.sql(sql::COMMIT, Bind::Nothing)?;
                Ok(value)
            }
            Err(e) => {
                let _ = self.sql(sql::ROLLBACK, Bind::Nothing);
                Err(e)
            }
        }
    }

    /// The lock step of `buy` and `write`: a transaction that holds the
    /// sale against every other writer until its commit. A wait for it is
    /// a wait for the lock, shown and timed as the mutex's is.
    fn lock_sale(&mut self) -> Result<(), BuyerError> {
        self.gate(Step::Lock);
        self.record(Op::LockWait, 0);
        let waiting = Instant::now();
        let statements = sql::lock_sale(self.dialect());
        if let Err(e) = self.sql_all(statements, Bind::Sale) {
            let _ = self.sql(sql::ROLLBACK, Bind::Nothing);
            return Err(failed(e));
        }
        let waited = waiting.elapsed().as_nanos() as u64;
        self.slot.lock_wait_ns.fetch_add(waited, Ordering::Relaxed);
        self.set_holder(true);
        // Recorded when taken, as the mutex's lock step is (`Buyer::gate`).
        if !self.trace.is_empty() {
            self.append_trace(super::STEP_TRACE_BASE + Step::Lock as u8, 0);
        }
        self.record(Op::Locked, 0);
        Ok(())
    }

    /// The unlock step: `COMMIT`, which ends the transaction and its lock.
    fn commit_and_unlock(&mut self, wrote: Option<i64>) -> Result<(), BuyerError> {
        self.commit()?;
        if let Some(count) = wrote {
            self.publish(count);
            self.record(Op::Wrote, count);
        }
        self.record(Op::Unlocked, 0);
        Ok(())
    }

    /// The `COMMIT` step: after it, the database's lock is released
    /// whether the commit took or was rolled back.
    fn commit(&mut self) -> Result<(), BuyerError> {
        self.gate(Step::Unlock);
        let committed = self.sql(sql::COMMIT, Bind::Nothing);
        if committed.is_err() {
            let _ = self.sql(sql::ROLLBACK, Bind::Nothing);
        }
        self.set_holder(false);
        committed.map(drop).map_err(failed)
    }

    /// Names this buyer as the holder of the database's lock (for the view
    /// and the scheduler's model), or clears it.
    fn set_holder(&self, holding: bool) {
        let area = self.lock_area;
        if holding {
            area.holder_pid.store(self.pid, Ordering::Relaxed);
            area.holder_worker.store(self.id as i32, Ordering::Release);
        } else if area.holder_worker.load(Ordering::Relaxed) == self.id as i32 {
            area.holder_worker.store(-1, Ordering::Release);
            area.holder_pid.store(0, Ordering::Relaxed);
        }
    }
}

fn failed(e: DbError) -> BuyerError {
    BuyerError::Store(StoreError::Database(e.to_string()))
}
