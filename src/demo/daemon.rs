//! Lab 11: daemon children and orphans.
//!
//! A parent starts one child that ticks every half second and says `done`
//! when its time is up; the parent's own main code takes a while and then
//! says `main over`. What happens next is the lesson:
//!
//! - by default the parent waits for its child, which finishes;
//! - a daemon child (decided before it starts, like Python's `daemon=True`)
//!   is ended when the parent's main code is over and never says `done`;
//! - an orphan is left behind: the parent exits, the kernel gives the child a
//!   new parent, and the child notices its parent pid change.
//!
//! Every line carries the time since start, who wrote it and its pid, so the
//! two processes' timelines read as one.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::DemoError;
use crate::process::{self, Children, Exit, ForkOptions, Pipe};

/// How often the child ticks.
pub(crate) const TICK: Duration = Duration::from_millis(500);
/// How long a daemon child gets to leave after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(1);
/// What the child says last, when its time is up.
const DONE: &str = "done";

/// The settings of one `daemon` run.
#[derive(Debug, Clone)]
pub(crate) struct DaemonConfig {
    /// End the child as soon as the parent's main code is over.
    pub daemon: bool,
    /// How long the parent's main code runs.
    pub parent_runs: Duration,
    /// How long the child runs before it says `done`.
    pub child_runs: Duration,
    /// Leave without waiting: the child outlives the parent and ends itself.
    pub orphan: bool,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            daemon: false,
            parent_runs: Duration::from_secs(1),
            child_runs: Duration::from_secs(3),
            orphan: false,
        }
    }
}

/// What the parent saw of its child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub(crate) struct DaemonOutcome {
    /// The child's `done` line arrived: it ran to its end.
    pub child_finished: bool,
    /// Lines the parent received from the child (0 for an orphan, which
    /// writes straight to standard output).
    pub child_lines: u64,
}

/// Runs the parent and its child, writing the joint timeline to `out`.
///
/// Except with `orphan`, the child is reaped before this returns, on error
/// too. With `orphan` the child stays this process's child until the process
/// exits (then the kernel re-parents it), so call it from a process that is
/// about to exit. Must be called while the process has a single thread.
pub(crate) fn run(cfg: &DaemonConfig, out: &mut dyn Write) -> anyhow::Result<DaemonOutcome> {
    if cfg.daemon && cfg.orphan {
        return Err(DemoError::Conflict(
            "a daemon child ends with its parent's main code, an orphan outlives it: pick one",
        )
        .into());
    }
    process::ensure_single_threaded().map_err(DemoError::from)?;

    let start = Instant::now();
    let me = process::getpid();
    let kind = if cfg.daemon {
        "a daemon"
    } else if cfg.orphan {
        "an orphan-to-be"
    } else {
        "a normal"
    };
    writeln!(
        out,
        "{}",
        stamp(start, PARENT, me, &format!("starting {kind} child"))
    )?;
    // Whatever sits in the buffer at fork time must be out before the child
    // can write: an orphan writes to the same standard output directly.
    out.flush()?;

    // An orphan outlives `out`, so it writes to the inherited fd 1 itself.
    let stdout = io::stdout();
    let (mut relay, writer) = if cfg.orphan {
        (None, None)
    } else {
        let (reader, writer) = Pipe::new()
            .context("opening the child's pipe")?
            .into_owned();
        (Some(Relay::new(File::from(reader))), Some(writer))
    };
    let child_fd = writer.as_ref().map_or(stdout.as_fd(), |w| w.as_fd());

    let mut children = Children::default();
    let child_runs = cfg.child_runs;
    // Only an orphan is let live on without its parent; Ctrl-C reaches the
    // child as it reaches the parent.
    let options = ForkOptions {
        die_with_parent: !cfg.orphan,
        ignore_sigint: false,
        nicer_by: 0,
    };
    let pid = process::fork_with(options, || child_main(start, me, child_runs, child_fd))
        .context("forking the child")?;
    children.push(pid);
    // The child holds the only write end now: end of file means it is gone.
    drop(writer);

    let say = |out: &mut dyn Write, msg: &str| -> io::Result<()> {
        writeln!(out, "{}", stamp(start, PARENT, me, msg))?;
        out.flush()
    };
    say(
        out,
        &format!(
            "child pid {pid} started; main code runs for {:.2}s",
            cfg.parent_runs.as_secs_f64()
        ),
    )?;
    let main_over = start + cfg.parent_runs;
    match &mut relay {
        Some(relay) => relay.pump(Some(main_over), out)?,
        None => sleep_until(main_over),
    }
    say(out, "main over")?;

    let Some(mut relay) = relay else {
        say(
            out,
            &format!(
                "leaving without waiting: child pid {pid} is an orphan now and ends itself at {:.2}s",
                child_runs.as_secs_f64()
            ),
        )?;
        children.forget(pid);
        return Ok(DaemonOutcome::default());
    };

    let exit = if cfg.daemon {
        // Show what the child managed to say before it is cut off.
        relay.pump(Some(Instant::now()), out)?;
        if let Some(exit) = children.try_reap(pid).context("checking on the child")? {
            say(out, &format!("daemon child pid {pid} had already finished"))?;
            exit
        } else {
            say(out, &format!("ending daemon child pid {pid} (SIGTERM)"))?;
            children.terminate(pid, GRACE).context("ending the child")?
        }
    } else {
        say(
            out,
            &format!("waiting for child pid {pid}: it is not a daemon"),
        )?;
        relay.pump(None, out)?;
        let ended = children.reap_all().context("reaping the child")?;
        ended[0].1
    };
    relay.pump(None, out)?;
    say(out, &format!("child pid {pid} {}", exit.describe()))?;

    let ended_by_us = matches!(exit, Exit::Signal(libc::SIGTERM | libc::SIGKILL));
    let expected = exit.success() || (cfg.daemon && ended_by_us);
    if !expected {
        return Err(DemoError::ChildFailed {
            who: "child".into(),
            pid,
            how: exit.describe(),
        }
        .into());
    }
    Ok(DaemonOutcome {
        child_finished: relay.done,
        child_lines: relay.lines,
    })
}

/// Writes the one object `--json` prints: the settings, then the outcome.
/// (`--orphan` has no JSON: the orphan writes to stdout after the parent
/// has gone.)
pub(crate) fn write_json(
    out: &mut dyn Write,
    cfg: &DaemonConfig,
    outcome: &DaemonOutcome,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct Report {
        daemon: bool,
        #[serde(serialize_with = "crate::json::millis")]
        parent_runs_ms: Duration,
        #[serde(serialize_with = "crate::json::millis")]
        child_runs_ms: Duration,
        #[serde(flatten)]
        outcome: DaemonOutcome,
    }
    let report = Report {
        daemon: cfg.daemon,
        parent_runs_ms: cfg.parent_runs,
        child_runs_ms: cfg.child_runs,
        outcome: *outcome,
    };
    crate::json::write_document(out, &report)
}

const PARENT: &str = "parent";
const CHILD: &str = "child";

/// One timeline line: `[ 0.50s] child  pid 1234  tick 1`.
fn stamp(start: Instant, who: &str, pid: i32, msg: &str) -> String {
    stamp_at(start.elapsed(), who, pid, msg)
}

/// `stamp` for a line `elapsed` after the start.
fn stamp_at(elapsed: Duration, who: &str, pid: i32, msg: &str) -> String {
    format!("[{:5.2}s] {who:<6} pid {pid}  {msg}", elapsed.as_secs_f64())
}

fn sleep_until(when: Instant) {
    std::thread::sleep(when.saturating_duration_since(Instant::now()));
}

/// Forwards the child's lines from the pipe to `out` while the parent keeps
/// its own time, without a thread: `poll` waits for data or the deadline.
struct Relay {
    pipe: File,
    splitter: LineSplitter,
    eof: bool,
    /// Child lines forwarded so far.
    lines: u64,
    /// Whether the child's `done` line came through.
    done: bool,
}

impl Relay {
    fn new(pipe: File) -> Relay {
        Relay {
            pipe,
            splitter: LineSplitter::default(),
            eof: false,
            lines: 0,
            done: false,
        }
    }

    /// Forwards lines until `until` (`None`: until the child closes the
    /// pipe). Returns early at end of file; the caller keeps its own time.
    fn pump(&mut self, until: Option<Instant>, out: &mut dyn Write) -> anyhow::Result<()> {
        let mut buf = [0u8; 4096];
        while !self.eof {
            if let Some(deadline) = until {
                let left = deadline.saturating_duration_since(Instant::now());
                if !process::poll_readable(self.pipe.as_fd(), left)? {
                    if Instant::now() >= deadline {
                        break;
                    }
                    continue;
                }
            }
            let n = match self.pipe.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("reading the child's pipe"),
            };
            let (lines, done) = (&mut self.lines, &mut self.done);
            let mut forward = |line: &str| -> anyhow::Result<()> {
                *lines += 1;
                *done |= is_done_line(line);
                writeln!(out, "{line}")?;
                Ok(out.flush()?)
            };
            if n == 0 {
                self.eof = true;
                self.splitter.finish(&mut forward)?;
            } else {
                self.splitter.feed(&buf[..n], &mut forward)?;
            }
        }
        if self.eof {
            if let Some(deadline) = until {
                sleep_until(deadline);
            }
        }
        Ok(())
    }
}

/// Cuts a byte stream into lines as it arrives in arbitrary chunks.
#[derive(Debug, Default)]
struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Feeds a chunk; calls `line` for every line it completes (without the
    /// newline).
    fn feed(
        &mut self,
        chunk: &[u8],
        mut line: impl FnMut(&str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.partial.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(end) = self.partial[start..].iter().position(|&b| b == b'\n') {
            line(&String::from_utf8_lossy(&self.partial[start..start + end]))?;
            start += end + 1;
        }
        self.partial.drain(..start);
        Ok(())
    }

    /// Hands out what is left after end of file, a line without its newline.
    fn finish(&mut self, mut line: impl FnMut(&str) -> anyhow::Result<()>) -> anyhow::Result<()> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            line(&String::from_utf8_lossy(&rest))?;
        }
        Ok(())
    }
}

fn is_done_line(line: &str) -> bool {
    line.strip_suffix(DONE)
        .is_some_and(|head| head.ends_with("  ") && head.contains(&format!("] {CHILD} ")))
}

/// The child's whole life; the return value is its exit code.
fn child_main(start: Instant, parent: i32, runs: Duration, out: BorrowedFd<'_>) -> i32 {
    match child(start, parent, runs, out) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("child: {err}");
            1
        }
    }
}

fn child(start: Instant, parent: i32, runs: Duration, out: BorrowedFd<'_>) -> io::Result<()> {
    let me = process::getpid();
    let say = |msg: &str| {
        process::write_line(
            out,
            format!("{}\n", stamp(start, CHILD, me, msg)).as_bytes(),
        )
    };
    say(&format!("started; my parent is pid {parent}"))?;
    // The child's time counts from its own start, as Python's would.
    let born = Instant::now();
    let mut known_parent = parent;
    for k in 1u32.. {
        let next = TICK * k;
        if next >= runs {
            break;
        }
        sleep_until(born + next);
        // Only an orphan sees this change: others die with their parent.
        let now_parent = process::getppid();
        if now_parent == known_parent {
            say(&format!("tick {k}"))?;
        } else {
            say(&format!(
                "tick {k}  my parent pid changed: {known_parent} -> {now_parent}, I am an orphan"
            ))?;
            known_parent = now_parent;
        }
    }
    sleep_until(born + runs);
    say(DONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab11_stamp_lines_up_parent_and_child() {
        let start = Instant::now();
        let child = stamp(start, CHILD, 1234, "tick 1");
        let parent = stamp(start, PARENT, 1233, "main over");
        assert!(
            child.starts_with("[ 0.00s] child  pid 1234  tick 1"),
            "{child}"
        );
        assert!(
            parent.starts_with("[ 0.00s] parent pid 1233  main over"),
            "{parent}"
        );
        // No `Instant::now() - 12.34s`: that panics on a machine up for
        // less than 12.34 s.
        let later = stamp_at(Duration::from_millis(12_340), CHILD, 1, "x");
        assert_eq!(later, "[12.34s] child  pid 1  x");
    }

    #[test]
    fn lab11_splitter_joins_lines_cut_across_chunks() {
        let mut s = LineSplitter::default();
        let mut got = Vec::new();
        let mut push = |l: &str| {
            got.push(l.to_owned());
            Ok(())
        };
        s.feed(b"wor", &mut push).unwrap();
        s.feed(b"ker 1 begin\nworker 2", &mut push).unwrap();
        s.feed(b" end\n\nlast", &mut push).unwrap();
        s.finish(&mut push).unwrap();
        assert_eq!(got, ["worker 1 begin", "worker 2 end", "", "last"]);
    }

    #[test]
    fn lab11_only_the_childs_last_line_is_done() {
        let start = Instant::now();
        assert!(is_done_line(&stamp(start, CHILD, 7, DONE)));
        assert!(!is_done_line(&stamp(start, CHILD, 7, "tick 3")));
        assert!(!is_done_line(&stamp(start, PARENT, 7, DONE)));
        assert!(!is_done_line(&stamp(start, CHILD, 7, "undone")));
    }

    #[test]
    fn lab11_daemon_and_orphan_together_are_refused() {
        let cfg = DaemonConfig {
            daemon: true,
            orphan: true,
            ..DaemonConfig::default()
        };
        let mut out = Vec::new();
        let err = run(&cfg, &mut out).unwrap_err();
        assert!(
            matches!(err.downcast_ref(), Some(DemoError::Conflict(_))),
            "{err}"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn lab11_defaults_follow_the_post() {
        let cfg = DaemonConfig::default();
        assert_eq!((cfg.daemon, cfg.orphan), (false, false));
        assert_eq!(cfg.parent_runs, Duration::from_secs(1));
        assert_eq!(cfg.child_runs, Duration::from_secs(3));
    }
}
