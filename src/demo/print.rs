//! Lab 1: who gets the terminal.
//!
//! Forked workers share one output. First each writes its own numbered lines
//! with no lock, and the lines interleave. Then each writes a `begin` line,
//! pauses, and writes an `end` line: without a lock other workers' lines land
//! between the two, with the process-shared mutex every pair stays together.
//! The parent reads everything through one pipe and counts both effects.

use crate::config::Named;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use raw_sync::locks::LockImpl;
use serde::Serialize;

use super::DemoError;
use crate::process::{self, Children, Exit, ForkOptions, Pipe, SharedPage};

/// Most workers a run may fork.
pub(crate) const MAX_WORKERS: usize = 64;
/// Most unlocked lines per worker.
pub(crate) const MAX_LINES: usize = 100_000;

/// The shortest pause between `begin` and `end`: long enough for every other
/// worker to be scheduled in between when no lock keeps them out.
const PAUSE_MIN_MS: u64 = 50;
/// The random part of the pause, drawn from each worker's own RNG.
const PAUSE_SPREAD_MS: u64 = 50;
/// Last resort for a worker waiting on siblings that were killed from outside.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// Whether the begin/end pairs are written under the mutex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrintLock {
    /// No lock: other workers' lines can fall between `begin` and `end`.
    #[default]
    None,
    /// Each pair is written while holding the process-shared mutex.
    Pair,
    /// The whole body (lines, begin, pause, end) under the mutex, as in the
    /// post's first demo: the output is orderly because the concurrency is
    /// gone; workers run one after another.
    All,
}

crate::config::display_by_name!(PrintLock);

impl Named for PrintLock {
    const ALL: &'static [PrintLock] = &[PrintLock::None, PrintLock::Pair, PrintLock::All];
    fn name(self) -> &'static str {
        match self {
            PrintLock::None => "none",
            PrintLock::Pair => "pair",
            PrintLock::All => "all",
        }
    }
    fn about(self) -> &'static str {
        match self {
            PrintLock::None => "the begin/end pairs are unlocked",
            PrintLock::Pair => "each pair is printed under the shared mutex",
            PrintLock::All => "each worker's whole body (lines and pair) is under it",
        }
    }
}

/// The settings of one `print` run.
#[derive(Debug, Clone)]
pub(crate) struct PrintConfig {
    /// Number of worker processes, 1 to [`MAX_WORKERS`].
    pub workers: usize,
    /// Unlocked lines each worker writes, 1 to [`MAX_LINES`].
    pub lines: usize,
    /// Whether the begin/end pairs are locked.
    pub lock: PrintLock,
    /// Seed of the workers' pauses; worker `i` derives its own from it.
    pub seed: u64,
    /// Write only one JSON object instead of the lines and a summary.
    pub json: bool,
}

impl Default for PrintConfig {
    fn default() -> Self {
        PrintConfig {
            workers: 3,
            lines: 20,
            lock: PrintLock::None,
            seed: 0,
            json: false,
        }
    }
}

/// What the parent counted on the shared pipe, and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub(crate) struct PrintOutcome {
    /// Lines written by another worker than the line before them.
    pub interleaved_lines: u64,
    /// Begin/end pairs with some other worker's line between them.
    pub split_pairs: u64,
    /// Complete begin/end pairs seen.
    pub pairs: u64,
    /// All lines read from the workers.
    pub lines: u64,
    /// From the start signal to the last worker's last line (the pipe's end
    /// of file): what the lock costs in time.
    pub elapsed_ms: f64,
}

impl PrintOutcome {
    /// The summary's elapsed line, in one place for every view.
    pub(crate) fn elapsed_line(&self) -> String {
        format!("elapsed: {:.1} ms", self.elapsed_ms)
    }
}

/// The one object `--json` prints: the settings, then the counts.
#[derive(Serialize)]
struct Report {
    workers: usize,
    lines: usize,
    lock: PrintLock,
    seed: u64,
    interleaved_lines: u64,
    split_pairs: u64,
    pairs: u64,
    elapsed_ms: f64,
}

/// Forks the workers, forwards their lines to `out` and counts them.
///
/// With `cfg.json` only the JSON object is written to `out`. Every worker is
/// reaped before this returns, on error too. Must be called while the process
/// has a single thread.
pub(crate) fn run(cfg: &PrintConfig, out: &mut dyn Write) -> anyhow::Result<PrintOutcome> {
    check_range("workers", cfg.workers, 1, MAX_WORKERS)?;
    check_range("lines", cfg.lines, 1, MAX_LINES)?;
    process::ensure_single_threaded().map_err(DemoError::from)?;

    if !cfg.json {
        writeln!(
            out,
            "{} workers, {} lines each, then one begin/end pair each; lock: {}, seed {}",
            cfg.workers, cfg.lines, cfg.lock, cfg.seed
        )?;
        // A child never flushes the parent's buffer, but whatever sits in it
        // at fork time would otherwise show up after the workers' lines.
        out.flush()?;
    }

    let page = SharedPage::new().context("mapping the shared board")?;
    let board = Board::on(&page);

    let (reader, writer) = Pipe::new()
        .context("opening the workers' pipe")?
        .into_owned();
    let mut children = Children::default();
    // As in the Python post, Ctrl-C ends the workers along with the parent.
    let options = ForkOptions {
        die_with_parent: true,
        ignore_sigint: false,
        nicer_by: 0,
    };
    for i in 0..cfg.workers {
        let pid = process::fork_with(options, || {
            worker_main(i, cfg, &board, page.mutex(), writer.as_fd())
        })
        .with_context(|| format!("forking worker {i}"))?;
        children.push(pid);
    }
    // Only the workers may hold the write end now, so end of file arrives
    // exactly when the last of them exits.
    drop(writer);
    let started = Instant::now();
    board.start.store(1, Ordering::Release);
    process::futex_wake_all(board.start);

    let mut tally = Tally::default();
    for line in BufReader::new(File::from(reader)).lines() {
        let line = line.context("reading the workers' pipe")?;
        let (worker, event) = parse_line(&line).ok_or_else(|| DemoError::BadLine(line.clone()))?;
        tally.observe(worker, event);
        if !cfg.json {
            writeln!(out, "{line}")?;
        }
    }

    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    // reap_all keeps fork order, so a position is a worker index.
    let ended = children.reap_all().context("reaping the workers")?;
    if let Some((i, (pid, exit))) = ended.iter().enumerate().find(|(_, (_, e))| !e.success()) {
        return Err(worker_failed(i, *pid, *exit).into());
    }

    let outcome = PrintOutcome {
        elapsed_ms,
        ..tally.outcome()
    };
    if cfg.json {
        let report = Report {
            workers: cfg.workers,
            lines: cfg.lines,
            lock: cfg.lock,
            seed: cfg.seed,
            interleaved_lines: outcome.interleaved_lines,
            split_pairs: outcome.split_pairs,
            pairs: outcome.pairs,
            elapsed_ms: outcome.elapsed_ms,
        };
        crate::json::write_document(out, &report)?;
    } else {
        writeln!(
            out,
            "interleaved lines: {} of {}",
            outcome.interleaved_lines, outcome.lines
        )?;
        writeln!(
            out,
            "split pairs: {} of {}",
            outcome.split_pairs, outcome.pairs
        )?;
        writeln!(out, "{}", outcome.elapsed_line())?;
    }
    out.flush()?;
    Ok(outcome)
}

fn check_range(what: &'static str, got: usize, min: usize, max: usize) -> Result<(), DemoError> {
    if (min..=max).contains(&got) {
        Ok(())
    } else {
        Err(DemoError::OutOfRange {
            what,
            min: min as u64,
            max: max as u64,
            got: got as u64,
        })
    }
}

fn worker_failed(worker: usize, pid: i32, exit: Exit) -> DemoError {
    DemoError::ChildFailed {
        who: format!("worker {worker}"),
        pid,
        how: exit.describe(),
    }
}

/// What one worker line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// One of the unlocked numbered lines.
    Line,
    /// The first line of the pair.
    Begin,
    /// The second line of the pair.
    End,
}

/// Reads `worker 2 line 7`, `worker 2 begin` or `worker 2 end`.
pub(crate) fn parse_line(line: &str) -> Option<(usize, Event)> {
    let mut words = line.split(' ');
    if words.next()? != "worker" {
        return None;
    }
    let worker = words.next()?.parse().ok()?;
    let event = match (words.next()?, words.next()) {
        ("line", Some(n)) if n.parse::<u64>().is_ok() => Event::Line,
        ("begin", None) => Event::Begin,
        ("end", None) => Event::End,
        _ => return None,
    };
    words.next().is_none().then_some((worker, event))
}

/// Counts interleaving and split pairs over lines in the order they arrived.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    previous: Option<usize>,
    /// Workers between their `begin` and `end`, and whether anyone else
    /// wrote meanwhile.
    open: Vec<(usize, bool)>,
    outcome: PrintOutcome,
}

impl Tally {
    /// Takes the next line, written by `worker`.
    pub(crate) fn observe(&mut self, worker: usize, event: Event) {
        self.outcome.lines += 1;
        if self.previous.is_some_and(|p| p != worker) {
            self.outcome.interleaved_lines += 1;
        }
        self.previous = Some(worker);
        for (owner, split) in &mut self.open {
            if *owner != worker {
                *split = true;
            }
        }
        match event {
            Event::Line => {}
            Event::Begin => {
                self.open.retain(|&(owner, _)| owner != worker);
                self.open.push((worker, false));
            }
            Event::End => {
                if let Some(at) = self.open.iter().position(|&(owner, _)| owner == worker) {
                    let (_, split) = self.open.swap_remove(at);
                    self.outcome.pairs += 1;
                    self.outcome.split_pairs += u64::from(split);
                }
            }
        }
    }

    /// The counts so far.
    pub(crate) fn outcome(&self) -> PrintOutcome {
        self.outcome
    }
}

/// Counts a whole run's lines at once; lines no worker writes are skipped.
#[cfg(test)]
pub(crate) fn count_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> PrintOutcome {
    let mut tally = Tally::default();
    for (worker, event) in lines.into_iter().filter_map(parse_line) {
        tally.observe(worker, event);
    }
    tally.outcome()
}

/// What all workers share, on one [`SharedPage`] mapped before the fork: a
/// start line and two barriers (its mutex keeps the pairs whole).
struct Board<'a> {
    /// 0 until the parent has forked every worker, then 1.
    start: &'a AtomicU32,
    /// Workers done with their unlocked lines.
    lined: &'a AtomicU32,
    /// Workers that have written `begin` (unlocked mode only).
    begun: &'a AtomicU32,
    /// Non-zero once a worker failed: nobody should wait for it any more.
    failed: &'a AtomicU32,
}

impl<'a> Board<'a> {
    /// Names the page's four words.
    fn on(page: &'a SharedPage<4>) -> Board<'a> {
        let [start, lined, begun, failed] = page.words();
        Board {
            start,
            lined,
            begun,
            failed,
        }
    }
}

/// A worker's whole life in the child; the return value is its exit code.
fn worker_main(
    i: usize,
    cfg: &PrintConfig,
    board: &Board<'_>,
    lock: &dyn LockImpl,
    pipe: BorrowedFd<'_>,
) -> i32 {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        worker(i, cfg, board, lock, pipe)
    }));
    if matches!(result, Ok(Ok(()))) {
        return 0;
    }
    // Siblings waiting at the barrier for this worker's `begin` would wait
    // for ever: tell them to give up.
    board.failed.store(1, Ordering::Release);
    for word in [board.start, board.lined, board.begun] {
        process::futex_wake_all(word);
    }
    match result {
        Ok(Err(err)) => {
            eprintln!("worker {i}: {err}");
            1
        }
        _ => process::PANIC_EXIT,
    }
}

fn worker(
    i: usize,
    cfg: &PrintConfig,
    board: &Board<'_>,
    lock: &dyn LockImpl,
    pipe: BorrowedFd<'_>,
) -> std::io::Result<()> {
    let say = |what: &str| process::write_line(pipe, format!("worker {i} {what}\n").as_bytes());
    let mut rng = StdRng::seed_from_u64(crate::protocol::buyer_seed(cfg.seed, i));
    let pause = Duration::from_millis(PAUSE_MIN_MS + rng.random_range(0..PAUSE_SPREAD_MS));

    // Everyone starts together, so the unlocked lines really compete.
    wait_until(
        board.start,
        |s| s != 0,
        board.failed,
        Instant::now() + WAIT_LIMIT,
    )?;
    if cfg.lock == PrintLock::All {
        // The lock around everything: no barrier here, since a worker
        // holding the mutex must never wait for one that waits for it.
        let _held = lock
            .lock()
            .map_err(|e| std::io::Error::other(format!("taking the mutex: {e}")))?;
        for k in 1..=cfg.lines {
            say(&format!("line {k}"))?;
        }
        say("begin")?;
        std::thread::sleep(pause);
        say("end")?;
        return Ok(());
    }
    for k in 1..=cfg.lines {
        say(&format!("line {k}"))?;
    }
    // The lock only keeps out those who take it too: a slow worker's
    // unlocked lines would still land inside a locked pair. Pairs start once
    // every worker is through its lines, so the count compares pairs with
    // pairs only.
    let all = cfg.workers as u32;
    arrive(board.lined, board.failed, all)?;

    match cfg.lock {
        // `All` returned above, having held the mutex all along.
        PrintLock::Pair | PrintLock::All => {
            let _held = lock
                .lock()
                .map_err(|e| std::io::Error::other(format!("taking the mutex: {e}")))?;
            say("begin")?;
            std::thread::sleep(pause);
            say("end")?;
        }
        PrintLock::None => {
            say("begin")?;
            // The barrier makes the split certain rather than likely: once
            // every `begin` is out, all of them precede all `end`s, so only
            // the worker that wrote the last begin and the first end can keep
            // its pair whole — at least workers-1 pairs split, every run.
            arrive(board.begun, board.failed, all)?;
            std::thread::sleep(pause);
            say("end")?;
        }
    }
    Ok(())
}

/// A barrier: counts this worker in on `word`, then waits for all of them.
fn arrive(word: &AtomicU32, failed: &AtomicU32, all: u32) -> std::io::Result<()> {
    word.fetch_add(1, Ordering::AcqRel);
    process::futex_wake_all(word);
    wait_until(word, |n| n >= all, failed, Instant::now() + WAIT_LIMIT)
}

/// Waits until `ready(word)` holds.
///
/// Gives up with an error when `abort` becomes non-zero (a sibling failed and
/// will never do what we wait for) or at `deadline`, the last resort against a
/// sibling killed from outside.
fn wait_until(
    word: &AtomicU32,
    ready: impl Fn(u32) -> bool,
    abort: &AtomicU32,
    deadline: Instant,
) -> std::io::Result<()> {
    loop {
        let seen = word.load(Ordering::Acquire);
        if ready(seen) {
            return Ok(());
        }
        if abort.load(Ordering::Acquire) != 0 {
            return Err(std::io::Error::other("another process failed"));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "gave up waiting for the other processes",
            ));
        }
        // Short naps: a wake-up on `abort` does not reach a sleeper on `word`.
        let nap = (deadline - now).min(Duration::from_millis(100));
        process::futex_wait(word, seen, Some(nap));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab01_parse_reads_the_three_kinds_and_rejects_the_rest() {
        assert_eq!(parse_line("worker 2 line 7"), Some((2, Event::Line)));
        assert_eq!(parse_line("worker 0 begin"), Some((0, Event::Begin)));
        assert_eq!(parse_line("worker 13 end"), Some((13, Event::End)));
        for bad in [
            "",
            "worker",
            "worker x begin",
            "worker 1 line",
            "worker 1 line x",
            "worker 1 begin now",
            "buyer 1 begin",
            "worker 1 ends",
        ] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lab01_one_worker_alone_never_interleaves_or_splits() {
        let got = count_lines([
            "worker 0 line 1",
            "worker 0 line 2",
            "worker 0 begin",
            "worker 0 end",
        ]);
        assert_eq!(
            got,
            PrintOutcome {
                interleaved_lines: 0,
                split_pairs: 0,
                pairs: 1,
                lines: 4,
                elapsed_ms: 0.0,
            }
        );
    }

    #[test]
    fn lab01_interleaving_counts_each_change_of_writer() {
        // 0 0 1 0 1 1: the writer changes three times.
        let got = count_lines([
            "worker 0 line 1",
            "worker 0 line 2",
            "worker 1 line 1",
            "worker 0 line 3",
            "worker 1 line 2",
            "worker 1 line 3",
        ]);
        assert_eq!(got.interleaved_lines, 3);
        assert_eq!(got.lines, 6);
        assert_eq!(got.pairs, 0);
    }

    #[test]
    fn lab01_locked_pairs_back_to_back_are_whole() {
        let got = count_lines([
            "worker 1 begin",
            "worker 1 end",
            "worker 0 begin",
            "worker 0 end",
            "worker 2 begin",
            "worker 2 end",
        ]);
        assert_eq!((got.split_pairs, got.pairs), (0, 3));
        assert_eq!(got.interleaved_lines, 2);
    }

    #[test]
    fn lab01_overlapping_pairs_split_but_a_nested_one_stays_whole() {
        // 1 is inside 0's pair, so 0 is split and 1 is not; 2 overlaps 0.
        let got = count_lines([
            "worker 0 begin",
            "worker 2 begin",
            "worker 1 begin",
            "worker 1 end",
            "worker 0 end",
            "worker 2 end",
        ]);
        assert_eq!((got.split_pairs, got.pairs), (2, 3));
    }

    #[test]
    fn lab01_a_stray_unlocked_line_splits_a_pair() {
        let got = count_lines(["worker 0 begin", "worker 1 line 9", "worker 0 end"]);
        assert_eq!((got.split_pairs, got.pairs), (1, 1));
    }

    #[test]
    fn lab01_an_end_without_begin_is_no_pair() {
        let got = count_lines(["worker 0 end", "worker 0 begin"]);
        assert_eq!((got.split_pairs, got.pairs, got.lines), (0, 0, 2));
    }

    #[test]
    fn lab01_workers_get_distinct_seeds() {
        let seeds: std::collections::HashSet<_> = (0..MAX_WORKERS)
            .map(|i| crate::protocol::buyer_seed(7, i))
            .collect();
        assert_eq!(seeds.len(), MAX_WORKERS);
    }

    #[test]
    fn lab01_settings_out_of_range_are_refused_before_forking() {
        let mut out = Vec::new();
        for cfg in [
            PrintConfig {
                workers: 0,
                ..PrintConfig::default()
            },
            PrintConfig {
                workers: MAX_WORKERS + 1,
                ..PrintConfig::default()
            },
            PrintConfig {
                lines: 0,
                ..PrintConfig::default()
            },
        ] {
            let err = run(&cfg, &mut out).unwrap_err();
            assert!(
                matches!(err.downcast_ref(), Some(DemoError::OutOfRange { .. })),
                "{err}"
            );
        }
        assert!(out.is_empty());
    }
}
