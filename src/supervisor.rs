//! The parent of a sale: maps the segment, forks the buyers (and the seller),
//! releases them together, watches them, reaps every one, and leaves nothing
//! behind on any way out.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::buyer::{self, Buyer, Op};
use crate::config::{LockMode, SaleConfig, StoreKind};
use crate::fault::Fault;
use crate::monitor::Monitor;
use crate::mutex::MutexState;
use crate::postmortem::Event;
use crate::process::{self, Exit};
use crate::report::{Ending, SaleReport, WorkerReport};
use crate::segment::{self, Segment, TraceEntry};
use crate::store::{FileStore, SellerPipes, StoreClient, StoreError};
use crate::view::{Snapshot, ViewCommand};

/// Trace entries shared out among the buyers of a traced run (16 MiB).
const TRACE_BUDGET: usize = 1 << 20;
/// How long the mutex may stay taken with no owner recorded after a buyer
/// died, before the parent concludes the buyer died inside
/// `pthread_mutex_lock` or `pthread_mutex_unlock`. A live buyer passes
/// through that state in a few instructions.
const OWNERLESS_GRACE: Duration = Duration::from_millis(100);
/// How often the parent looks at an ownerless mutex meanwhile: every look
/// that finds it free or owned clears the suspicion.
const OWNERLESS_LOOK: Duration = Duration::from_millis(2);
/// Looks, at the least, before an ownerless mutex counts as dead.
const OWNERLESS_LOOKS: u32 = 20;

/// Something that watches a sale while it runs: the live screen, the plain
/// progress lines, or nothing.
pub trait Observer {
    /// How often [`Observer::update`] wants to be called.
    fn interval(&self) -> Duration;
    /// Whether it shows the event log. Following the trace costs the parent
    /// CPU it must win from the buyers, so an observer that shows no events
    /// is spared it.
    fn shows_events(&self) -> bool {
        true
    }
    /// Shows the current state; returns what the person asked for.
    fn update(&mut self, snap: &Snapshot) -> std::io::Result<Vec<ViewCommand>>;
    /// Shows the final state once every process is gone.
    fn finish(&mut self, snap: &Snapshot) -> std::io::Result<()>;
}

/// An observer that shows nothing.
pub struct Quiet;

impl Observer for Quiet {
    fn interval(&self) -> Duration {
        Duration::from_millis(200)
    }
    fn shows_events(&self) -> bool {
        false
    }
    fn update(&mut self, _: &Snapshot) -> std::io::Result<Vec<ViewCommand>> {
        Ok(Vec::new())
    }
    fn finish(&mut self, _: &Snapshot) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why a sale could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum SaleError {
    /// The segment could not be created.
    #[error(transparent)]
    Segment(#[from] segment::SegmentError),
    /// The store could not be prepared.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// fork, pipe or waitpid failed.
    #[error("{what}: {source}")]
    Os {
        /// The call.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The fault-injection hook is set to something it does not know.
    #[error("{0}")]
    Fault(String),
    /// The view failed to draw.
    #[error("the view could not draw")]
    View(#[source] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Running,
    Exited(Exit),
}

struct Child {
    pid: Option<i32>,
    end: End,
    /// Ended by the parent when the sale stopped early, not crashed.
    ended_by_us: bool,
}

/// The file store's file. `_store` is held for the run: it keeps the `--db`
/// file locked against a second sale, and removes a temporary store (with
/// its private directory) when dropped.
struct Db {
    path: PathBuf,
    _store: crate::store::StoreFile,
}

/// One running sale. Dropping it ends and reaps every child, then removes
/// the segment and the temporary file: the same path for every way out.
struct Run<'a> {
    cfg: &'a SaleConfig,
    // Field order matters: children are killed in Drop before these go.
    seg: Segment,
    db: Option<Db>,
    buyers: Vec<Child>,
    seller: Option<Child>,
    epoch: Instant,
    start_ns: Option<u64>,
    /// When the first process was forked and the last one reaped.
    first_fork: Option<Instant>,
    last_reap: Option<Instant>,
    /// A buyer that died while the mutex was taken with no owner recorded.
    suspect: Option<Suspect>,
    /// The fault the hook armed, if any.
    fault: Option<Fault>,
}

/// A dead buyer that may have died inside `pthread_mutex_lock` or
/// `pthread_mutex_unlock`, holding the mutex with no owner recorded.
#[derive(Debug, Clone, Copy)]
struct Suspect {
    buyer: usize,
    pid: i32,
    since: Instant,
    looks: u32,
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        let live: Vec<i32> = self
            .buyers
            .iter()
            .chain(self.seller.iter())
            .filter(|c| c.end == End::Running)
            .filter_map(|c| c.pid)
            .collect();
        for &pid in &live {
            process::kill(pid, libc::SIGKILL);
        }
        for pid in live {
            let _ = process::reap(pid);
        }
    }
}

/// Runs one sale to its end, with `observer` watching.
pub fn run_sale(cfg: &SaleConfig, observer: &mut dyn Observer) -> Result<SaleReport, SaleError> {
    // Once per sale: every fork below happens in this same single thread.
    process::ensure_single_threaded().map_err(|e| SaleError::Os {
        what: "fork",
        source: e.into(),
    })?;
    // Blocked before anything is created, so a Ctrl-C during setup is taken
    // by the loop like any other, and the cleanup path stays the only one.
    process::block_supervisor_signals();
    process::request_short_slices(Some(Duration::from_micros(100)));
    let result = crate::fault::from_env()
        .map_err(SaleError::Fault)
        .and_then(|fault| {
            let mut run = prepare(cfg)?;
            run.fault = fault;
            run.drive(observer)
        });
    drain_signals();
    process::unblock_supervisor_signals();
    result
}

fn prepare(cfg: &SaleConfig) -> Result<Run<'_>, SaleError> {
    segment::remove_stale(std::path::Path::new("/dev/shm"), &std::env::temp_dir());
    let trace_per_worker = if cfg.records_trace() {
        (TRACE_BUDGET / cfg.workers).max(16)
    } else {
        0
    };
    let seg = Segment::create(cfg.workers, trace_per_worker)?;
    seg.count().store(cfg.tickets as i64, Ordering::Relaxed);
    let db = match cfg.store {
        StoreKind::File => {
            // Neither the open nor the lock waits: the stop signals are
            // blocked here, so nothing in setup may block without bound.
            let store = match &cfg.db {
                Some(db) => crate::store::StoreFile::named(&db.path, db.reset)?,
                // Not at a name derived from the segment's, which anyone can
                // read in /dev/shm: alone in a fresh private directory.
                None => crate::store::StoreFile::temporary(&std::env::temp_dir())?,
            };
            store.init(cfg.tickets as i64)?;
            Some(Db {
                path: store.path().to_path_buf(),
                _store: store,
            })
        }
        _ => None,
    };
    Ok(Run {
        cfg,
        seg,
        db,
        buyers: (0..cfg.workers)
            .map(|_| Child {
                pid: None,
                end: End::Running,
                ended_by_us: false,
            })
            .collect(),
        seller: None,
        epoch: Instant::now(),
        start_ns: None,
        first_fork: None,
        last_reap: None,
        suspect: None,
        fault: None,
    })
}

/// The ending a supervisor signal asks for; SIGCHLD only says to reap.
fn stopped_by(sig: i32) -> Option<Ending> {
    (sig != libc::SIGCHLD).then_some(Ending::Interrupted(sig))
}

/// Signals that arrived after the sale ended must not kill the process on
/// unblocking: the sale has already decided how it ends.
fn drain_signals() {
    while process::wait_signal(Duration::ZERO).is_some() {}
}

impl Run<'_> {
    fn drive(&mut self, observer: &mut dyn Observer) -> Result<SaleReport, SaleError> {
        let mut monitor = Monitor::new(
            self.cfg,
            self.db.as_ref().map(|d| d.path.clone()),
            observer.shows_events(),
        );
        let pipes = if self.cfg.store == StoreKind::Server {
            let pipes = SellerPipes::new(self.cfg.workers).map_err(|source| SaleError::Os {
                what: "pipe",
                source,
            })?;
            let tickets = self.cfg.tickets as i64;
            let seg = &mut self.seg;
            let pid = process::fork(|| {
                seg.disown();
                let published = seg.count();
                match pipes.serve(tickets, published) {
                    Ok(_) => 0,
                    Err(_) => buyer::ERROR_EXIT,
                }
            })
            .map_err(|source| SaleError::Os {
                what: "fork",
                source,
            })?;
            self.seller = Some(Child {
                pid: Some(pid),
                end: End::Running,
                ended_by_us: false,
            });
            Some(pipes)
        } else {
            None
        };
        let join = self.cfg.lock == LockMode::Join;
        if join {
            self.release();
            self.fork_buyer(0, pipes.as_ref())?;
        } else {
            for id in 0..self.cfg.workers {
                self.fork_buyer(id, pipes.as_ref())?;
            }
            self.release();
        }
        // The seller must see end-of-file once the last buyer is gone.
        drop(pipes);

        // A stop signal sent during setup waits, blocked, until now; it
        // must stop the sale even if every buyer finishes before the loop
        // first waits.
        let mut ending = process::wait_signal(Duration::ZERO)
            .and_then(stopped_by)
            .unwrap_or(Ending::Completed);
        let mut next_tick = Instant::now();
        while ending == Ending::Completed {
            while let Some((pid, exit)) = process::try_reap() {
                self.last_reap = Some(Instant::now());
                if let Some(fatal) = self.on_exit(pid, exit) {
                    ending = fatal;
                }
            }
            if ending != Ending::Completed {
                break;
            }
            if join {
                if let Some(next) = self.next_to_join() {
                    self.fork_buyer(next, None)?;
                }
            }
            if self.all_done() {
                break;
            }
            let now = Instant::now();
            if let Some(fatal) = self.check_ownerless_lock() {
                ending = fatal;
                break;
            }
            if now >= next_tick {
                let snap = monitor.snapshot(&self.seg, self.elapsed(), false);
                let commands = observer.update(&snap).map_err(SaleError::View)?;
                if let Some(quit) = self.obey(&commands) {
                    ending = quit;
                    break;
                }
                next_tick = now + observer.interval();
            }
            let mut wait = next_tick.saturating_duration_since(Instant::now());
            if self.suspect.is_some() {
                wait = wait.min(OWNERLESS_LOOK);
            }
            if let Some(stop) = process::wait_signal(wait).and_then(stopped_by) {
                ending = stop;
                break;
            }
        }
        self.end_everyone();
        let completed = ending == Ending::Completed;
        let report = self.report(ending);
        let snap = monitor.snapshot(&self.seg, self.elapsed(), completed);
        observer.finish(&snap).map_err(SaleError::View)?;
        Ok(report)
    }

    fn release(&mut self) {
        self.start_ns = Some(self.now_ns());
        let start = &self.seg.control().start;
        start.store(1, Ordering::Release);
        process::futex_wake_all(start);
    }

    fn fork_buyer(&mut self, id: usize, pipes: Option<&SellerPipes>) -> Result<(), SaleError> {
        self.first_fork.get_or_insert_with(Instant::now);
        let cfg = self.cfg;
        let epoch = self.epoch;
        let db = self.db.as_ref().map(|d| d.path.clone());
        let fault = self.fault.filter(|f| f.buyer == id).map(|f| f.point);
        let seg = &mut self.seg;
        let pid = process::fork(|| {
            seg.disown();
            let seg: &Segment = seg;
            let store = match (cfg.store, pipes) {
                (StoreKind::Server, Some(p)) => StoreClient::Server(p.client(id)),
                (StoreKind::File, _) => StoreClient::File(FileStore::new(
                    db.as_deref().expect("file store has a path"),
                )),
                _ => StoreClient::Shm(seg.count()),
            };
            Buyer::new(id, cfg, seg, store, epoch, fault).run()
        })
        .map_err(|source| SaleError::Os {
            what: "fork",
            source,
        })?;
        self.buyers[id].pid = Some(pid);
        Ok(())
    }

    fn on_exit(&mut self, pid: i32, exit: Exit) -> Option<Ending> {
        if let Some(seller) = self.seller.as_mut().filter(|s| s.pid == Some(pid)) {
            seller.end = End::Exited(exit);
            return (exit != Exit::Code(0)).then_some(Ending::SellerDied);
        }
        let id = self.buyers.iter().position(|b| b.pid == Some(pid))?;
        self.buyers[id].end = End::Exited(exit);
        let slot = self.seg.slot(id);
        let last = Op::from_u8(slot.state.load(Ordering::Acquire) as u8);
        let crashed = matches!(exit, Exit::Signal(_) | Exit::Code(process::PANIC_EXIT));
        let final_state = if crashed {
            Op::Crashed
        } else if matches!(last, Op::Bought | Op::SoldOut) {
            last
        } else {
            Op::Exited
        };
        slot.state.store(final_state as u32, Ordering::Release);
        self.after_death(id, pid)
    }

    /// What a buyer's death means for the mutex. raw_sync's mutex is not
    /// robust, so the parent must find a dead holder itself, whatever the
    /// instant of the death (`docs/segment.md` gives the argument). The
    /// buyer is reaped, so nothing it left in the mutex changes any more.
    fn after_death(&mut self, buyer: usize, pid: i32) -> Option<Ending> {
        let mutex = self.seg.mutex();
        // A waiter woken by an unlock that died before it took the mutex
        // took the wake-up with it, and the word is 0 with sleepers behind
        // it. Waking them all is harmless: who finds it taken sleeps again.
        mutex.wake_all_waiters();
        if self.seg.lock_area().holder_pid.load(Ordering::Acquire) == pid {
            return Some(Ending::HolderDied { buyer, pid });
        }
        match mutex.inspect() {
            MutexState::Owned(owner) if owner == pid => Some(Ending::HolderDied { buyer, pid }),
            MutexState::TakenNoOwner => {
                self.suspect = Some(Suspect {
                    buyer,
                    pid,
                    since: Instant::now(),
                    looks: 0,
                });
                None
            }
            MutexState::Free | MutexState::Owned(_) => None,
        }
    }

    /// Looks again at a mutex left taken with no owner when a buyer died.
    /// A live buyer in that state records its ownership (or frees the word)
    /// within instructions; only a dead one leaves it so look after look.
    fn check_ownerless_lock(&mut self) -> Option<Ending> {
        let suspect = self.suspect.as_mut()?;
        match self.seg.mutex().inspect() {
            MutexState::TakenNoOwner => {
                suspect.looks += 1;
                if suspect.looks >= OWNERLESS_LOOKS && suspect.since.elapsed() >= OWNERLESS_GRACE {
                    let (buyer, pid) = (suspect.buyer, suspect.pid);
                    return Some(Ending::HolderDied { buyer, pid });
                }
            }
            MutexState::Free | MutexState::Owned(_) => self.suspect = None,
        }
        None
    }

    fn next_to_join(&self) -> Option<usize> {
        let next = self.buyers.iter().position(|b| b.pid.is_none())?;
        let previous_done = next == 0 || self.buyers[next - 1].end != End::Running;
        previous_done.then_some(next)
    }

    fn all_done(&self) -> bool {
        let buyers_done = self
            .buyers
            .iter()
            .all(|b| b.pid.is_some() && b.end != End::Running);
        let seller_done = self.seller.as_ref().is_none_or(|s| s.end != End::Running);
        buyers_done && seller_done
    }

    fn obey(&mut self, commands: &[ViewCommand]) -> Option<Ending> {
        let control = self.seg.control();
        for command in commands {
            match command {
                ViewCommand::Quit => return Some(Ending::Interrupted(libc::SIGINT)),
                ViewCommand::TogglePause => {
                    control.paused.fetch_xor(1, Ordering::Relaxed);
                }
                ViewCommand::Slower => {
                    let p = control.delay_permille.load(Ordering::Relaxed);
                    control
                        .delay_permille
                        .store((p * 3 / 2).min(20_000), Ordering::Relaxed);
                }
                ViewCommand::Faster => {
                    let p = control.delay_permille.load(Ordering::Relaxed);
                    control
                        .delay_permille
                        .store((p * 2 / 3).max(50), Ordering::Relaxed);
                }
            }
        }
        None
    }

    /// Kills every child still running, then reaps them: killing one and
    /// waiting for it while the rest spin on would make a busy sale of 1000
    /// buyers take minutes to stop.
    fn end_everyone(&mut self) {
        let running = |c: &Child| c.end == End::Running && c.pid.is_some();
        for child in self.buyers.iter_mut().chain(self.seller.iter_mut()) {
            if running(child) {
                process::kill(
                    child.pid.expect("running children have a pid"),
                    libc::SIGKILL,
                );
                child.ended_by_us = true;
            }
        }
        for child in self.buyers.iter_mut().chain(self.seller.iter_mut()) {
            if running(child) {
                if let Ok(exit) = process::reap(child.pid.expect("running children have a pid")) {
                    child.end = End::Exited(exit);
                }
            }
        }
        // A paused sale must not stay paused for the final screen.
        self.seg.control().paused.store(0, Ordering::Relaxed);
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn elapsed(&self) -> Duration {
        match self.start_ns {
            Some(start) => Duration::from_nanos(self.now_ns().saturating_sub(start)),
            None => Duration::ZERO,
        }
    }

    fn report(&self, ending: Ending) -> SaleReport {
        let mut report = SaleReport::new(self.cfg);
        let start = self.start_ns.unwrap_or(0);
        let mut last_finish = start;
        let cap = self.seg.layout().trace_per_worker;
        for (id, child) in self.buyers.iter().enumerate() {
            let slot = self.seg.slot(id);
            let finished = slot.finished_ns.load(Ordering::Acquire);
            last_finish = last_finish.max(finished);
            let end = match child.end {
                _ if child.ended_by_us => "ended",
                End::Running => "never started",
                End::Exited(Exit::Code(0)) => "ok",
                End::Exited(Exit::Code(buyer::GAVE_UP_EXIT)) => "gave up",
                End::Exited(Exit::Code(process::PANIC_EXIT) | Exit::Signal(_)) => "crashed",
                End::Exited(Exit::Code(_)) => "error",
            };
            report.per_worker.push(WorkerReport {
                bought: slot.bought.load(Ordering::Relaxed),
                attempts: slot.attempts.load(Ordering::Relaxed),
                lock_wait_ms: slot.lock_wait_ns.load(Ordering::Relaxed) as f64 / 1e6,
                drawn_delay_ms: slot.drawn_delay_ns.load(Ordering::Relaxed) as f64 / 1e6,
                torn_reads: slot.torn_reads.load(Ordering::Relaxed),
                end,
            });
            let written = slot.trace_len.load(Ordering::Acquire) as usize;
            report.trace_overflow += written.saturating_sub(cap) as u64;
            for entry in &self.seg.trace(id)[..written.min(cap)] {
                let (op, value) = TraceEntry::unpack(entry.word.load(Ordering::Relaxed));
                report.events.push(Event {
                    t_ns: entry.t_ns.load(Ordering::Relaxed).saturating_sub(start),
                    buyer: id,
                    op: Op::from_u8(op),
                    value,
                });
            }
        }
        let remaining = match &self.db {
            Some(db) => FileStore::final_count(&db.path),
            None => Some(self.seg.count().load(Ordering::Acquire)),
        };
        let elapsed_ns = if ending == Ending::Completed {
            last_finish.saturating_sub(start)
        } else {
            self.now_ns().saturating_sub(start)
        };
        report.ending = ending;
        if let (Some(first), Some(last)) = (self.first_fork, self.last_reap) {
            report.processes_ms = last.saturating_duration_since(first).as_secs_f64() * 1e3;
        }
        report.settle(remaining, elapsed_ns as f64 / 1e6);
        report
    }
}
