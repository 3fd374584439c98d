//! The live view on a real terminal: a pseudo-terminal the test owns, the
//! keys typed into it, and the terminal handed back afterwards.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::common::*;

/// The pseudo-terminal's size.
const COLS: u16 = 100;
const ROWS: u16 = 32;

const ENTER_ALTERNATE: &str = "\x1b[?1049h";
const LEAVE_ALTERNATE: &str = "\x1b[?1049l";
const HIDE_CURSOR: &str = "\x1b[?25l";
const SHOW_CURSOR: &str = "\x1b[?25h";

/// Hang guard for anything a test waits on: far beyond what a loaded
/// machine needs, short enough that a hung run fails instead of stalling.
const PATIENCE: Duration = Duration::from_secs(60);

/// A pseudo-terminal of the classroom size (see `common::term`).
fn open_pty() -> (File, OwnedFd) {
    term::open_pty(COLS, ROWS)
}

/// The terminal settings of `fd`.
fn termios_of(fd: &OwnedFd) -> libc::termios {
    // SAFETY: termios is plain data; all zeroes is a valid value to overwrite.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes one `termios` into `t`, which outlives the call.
    let got = unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) };
    assert_eq!(got, 0, "tcgetattr: {}", io::Error::last_os_error());
    t
}

/// Whether the line discipline is cooked: lines edited, keys echoed.
fn is_cooked(t: &libc::termios) -> bool {
    t.c_lflag & (libc::ICANON | libc::ECHO) == (libc::ICANON | libc::ECHO)
}

/// `ticketlab` running on a pseudo-terminal, with everything it writes
/// collected by a reader thread of the test.
struct LiveRun {
    child: Child,
    seed: String,
    master: File,
    slave: Option<OwnedFd>,
    output: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

/// How a live run ended.
struct Ended {
    status: ExitStatus,
    pid: u32,
    seed: String,
    /// Every byte the run wrote to the terminal.
    raw: String,
    /// The terminal's settings after the run.
    termios: libc::termios,
}

impl LiveRun {
    /// Starts `ticketlab sell ARGS --seed S` on a fresh terminal, as the
    /// session leader with that terminal as its controlling terminal (so
    /// `/dev/tty` is this terminal, not the one running the tests).
    fn start(args: &[&str]) -> LiveRun {
        let seed = unique_seed().to_string();
        let (master, slave) = open_pty();
        let stdio = || Stdio::from(slave.try_clone().expect("dup the slave"));
        let mut command = ticketlab_process();
        command
            .arg("sell")
            .args(args)
            .args(["--seed", &seed])
            .env("TERM", "xterm-256color")
            .stdin(stdio())
            .stdout(stdio())
            .stderr(stdio());
        // SAFETY: the closure runs in the forked child before exec and calls
        // only async-signal-safe functions (setsid, ioctl) and builds an
        // io::Error from an errno, which does not allocate.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("ticketlab starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut from_master = master.try_clone().expect("dup the master");
        let sink = Arc::clone(&output);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match from_master.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // EIO: every slave descriptor is closed.
                    Err(_) => break,
                }
            }
        });
        LiveRun {
            child,
            seed,
            master,
            slave: Some(slave),
            output,
            reader: Some(reader),
        }
    }

    fn raw(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// The alternate screen as the output so far leaves it.
    fn screen(&self) -> String {
        alternate_screen(&self.raw())
    }

    /// Waits until the alternate screen satisfies `cond`.
    fn wait_for_screen(&self, what: &str, cond: impl Fn(&str) -> bool) {
        if !eventually(PATIENCE, || cond(&self.screen())) {
            panic!("the screen never showed {what}:\n{}", self.screen());
        }
    }

    /// Types `keys` into the terminal.
    fn press(&mut self, keys: &[u8]) {
        self.master.write_all(keys).expect("write to the terminal");
    }

    /// Waits for the run to end (killing it and failing if it hangs), then
    /// collects everything it wrote and the terminal's settings.
    fn end(mut self) -> Ended {
        let mut status = None;
        let exited = eventually(PATIENCE, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        let raw = self.raw();
        assert!(exited, "ticketlab hung; it wrote:\n{raw:?}");
        let slave = self.slave.take().expect("the slave is kept until the end");
        let termios = termios_of(&slave);
        // With the run, its buyers and this last copy of the slave gone, the
        // reader sees end-of-file and has read every byte.
        drop(slave);
        let reader = self.reader.take().expect("one reader");
        assert!(
            eventually(PATIENCE, || reader.is_finished()),
            "the terminal was never closed: some process still holds it"
        );
        reader.join().expect("the reader thread");
        Ended {
            status: status.expect("exited"),
            pid: self.child.id(),
            seed: self.seed.clone(),
            raw: self.raw(),
            termios,
        }
    }
}

impl Drop for LiveRun {
    /// A failed test must not leave its run behind. SIGTERM lets it clean
    /// up (buyers, segment, terminal); SIGKILL if even that hangs, and the
    /// buyers die with their parent.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id() as i32, libc::SIGTERM);
            let ended = eventually(Duration::from_secs(10), || {
                !matches!(self.child.try_wait(), Ok(None))
            });
            if !ended {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }
}

impl Ended {
    /// What was printed on the normal screen after the last alternate
    /// screen was left, without escape sequences: the final frame and the
    /// summary.
    fn printed_after(&self) -> String {
        let tail = self
            .raw
            .rfind(LEAVE_ALTERNATE)
            .map_or("", |i| &self.raw[i..]);
        strip_escapes(tail)
    }

    /// The terminal was handed back: after the last time the alternate
    /// screen was entered it was left, and after the cursor was last
    /// hidden it was shown again; the line discipline is cooked again.
    fn assert_terminal_restored(&self) {
        let raw = &self.raw;
        let entered = raw
            .rfind(ENTER_ALTERNATE)
            .unwrap_or_else(|| panic!("the alternate screen was never entered: {raw:?}"));
        let left = raw
            .rfind(LEAVE_ALTERNATE)
            .unwrap_or_else(|| panic!("the alternate screen was never left: {raw:?}"));
        assert!(left > entered, "left before the last enter: {raw:?}");
        let hidden = raw
            .find(HIDE_CURSOR)
            .unwrap_or_else(|| panic!("the cursor was never hidden: {raw:?}"));
        let shown = raw
            .rfind(SHOW_CURSOR)
            .unwrap_or_else(|| panic!("the cursor was never shown again: {raw:?}"));
        assert!(
            shown > hidden && shown > raw.rfind(HIDE_CURSOR).unwrap(),
            "the cursor stays hidden: {raw:?}"
        );
        assert!(
            shown > entered,
            "the cursor was not shown after the last enter"
        );
        assert!(
            is_cooked(&self.termios),
            "raw mode was left on: c_lflag {:#o}",
            self.termios.c_lflag
        );
    }

    /// Ended by the user: exit 130, the terminal handed back, nothing left.
    fn assert_quit_cleanly(&self) {
        assert_eq!(self.status.code(), Some(130), "{:?}", self.printed_after());
        self.assert_terminal_restored();
        self.assert_nothing_left();
    }

    /// No segment, temporary file or buyer of the run is left.
    fn assert_nothing_left(&self) {
        assert_eq!(leftovers_of(self.pid), Vec::<std::path::PathBuf>::new());
        assert!(
            eventually(PATIENCE, || processes_with(&self.seed).is_empty()),
            "processes left: {:?}",
            processes_with(&self.seed)
        );
    }
}

/// Drops escape sequences and carriage returns, to read the printed text.
fn strip_escapes(s: &str) -> String {
    term::strip_escapes(s)
}

/// The alternate screen as it was last drawn, replayed on a `COLS` ×
/// `ROWS` grid (see `common::term`).
fn alternate_screen(raw: &str) -> String {
    term::replay_screen(raw, COLS, ROWS)
}

#[test]
fn live_view_shows_the_final_counts() {
    let mut args = EVERYONE_READS_FIRST.to_vec();
    args.extend(["--lock", "none"]);
    let run = LiveRun::start(&args);
    let ended = run.end();
    let printed = ended.printed_after();
    assert_eq!(ended.status.code(), Some(0), "{printed}");
    // The summary.
    assert!(
        printed.contains("sold          10 of 1   OVERSOLD by 9"),
        "{printed}"
    );
    assert!(printed.contains("remaining     0"), "{printed}");
    // The final frame, printed onto the normal screen above the summary.
    assert!(printed.contains("remaining"), "{printed}");
    assert!(printed.contains("oversold 9"), "{printed}");
    // The live screen itself, as last drawn before it was left.
    let screen = alternate_screen(&ended.raw);
    assert!(screen.contains("remaining"), "{screen}");
    assert!(screen.contains("oversold"), "{screen}");
    ended.assert_terminal_restored();
    ended.assert_nothing_left();
}

/// Starts a sale that would take 20 s and waits for its first frame, drawn
/// at the size of the test's terminal: the keys on its last row.
fn long_live_run() -> LiveRun {
    let run = LiveRun::start(&["--workers", "8", "--read-delay", "20s"]);
    run.wait_for_screen("the remaining count", |s| s.contains("remaining"));
    run.wait_for_screen("the keys on the last row", |s| {
        s.lines()
            .nth(ROWS as usize - 1)
            .is_some_and(|l| l.starts_with("q quit"))
    });
    run
}

fn assert_quit_by_key(key: &[u8]) {
    let mut run = long_live_run();
    run.press(key);
    run.end().assert_quit_cleanly();
}

#[test]
fn live_view_q_ends_the_run_with_130() {
    assert_quit_by_key(b"q");
}

#[test]
fn live_view_ctrl_c_key_ends_the_run_with_130() {
    // Raw mode turns off the terminal's signal keys: Ctrl-C arrives as a
    // key, not as SIGINT.
    assert_quit_by_key(b"\x03");
}

#[test]
fn live_view_pause_and_resume() {
    let mut run = long_live_run();
    let header = |s: &str| s.lines().next().unwrap_or("").to_string();
    run.wait_for_screen("the factor ×1.0", |s| header(s).contains("×1.0"));
    run.press(b"p");
    run.wait_for_screen("PAUSED", |s| header(s).contains("PAUSED"));
    run.press(b"p");
    run.wait_for_screen("the pause lifted", |s| !s.contains("PAUSED"));
    run.press(b"+");
    run.wait_for_screen("the factor ×1.5", |s| header(s).contains("×1.5"));
    run.press(b"q");
    run.end().assert_quit_cleanly();
}

#[test]
fn plain_output_through_a_pipe_has_no_escape_byte() {
    for view in [None, Some("live")] {
        let mut command = ticketlab();
        command.args([
            "sell",
            "--workers",
            "20",
            "--tickets",
            "3",
            "--store",
            "file",
            "--lock",
            "none",
            "--read-delay",
            "300ms",
        ]);
        if let Some(view) = view {
            command.args(["--view", view]);
        }
        let out = command.output().expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{view:?}: {stdout}\n{stderr}");
        // Not one escape byte: --view live through a pipe falls back to plain.
        assert!(!out.stdout.contains(&0x1b), "{view:?}: {stdout:?}");
        assert!(!out.stderr.contains(&0x1b), "{view:?}: {stderr:?}");
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with('[') && l.contains("remaining")),
            "{view:?}: no progress line: {stdout}"
        );
        assert!(stdout.contains("  sold          "), "{view:?}: {stdout}");
        assert!(stdout.contains(" of 3"), "{view:?}: {stdout}");
    }
}

/// A process's state letter from /proc (`T` stopped, `Z` zombie, …).
fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses.
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn live_view_ctrl_z_suspends_the_sale_and_sigcont_resumes_it() {
    let mut run = crate::common::term::TermRun::start(
        &[
            "sell",
            "-w",
            "2",
            "-t",
            "2",
            "--lock",
            "buy",
            "--read-delay",
            "300ms",
        ],
        80,
        24,
    );
    run.wait_for_screen("the sale", |s| s.contains("sold 0 / 2"));
    let pid = run.pid();
    run.press(b"\x1a");
    assert!(
        eventually(Duration::from_secs(30), || state_of(pid) == Some('T')),
        "Ctrl-Z did not stop the run"
    );
    assert!(
        run.raw().contains("\x1b[?1049l"),
        "the terminal was given back before stopping"
    );
    // What a shell's `fg` does: continue the whole process group. Taking
    // the terminal back must not wait on the terminal for an answer.
    signal(-(pid as i32), libc::SIGCONT);
    let ended = run.end();
    assert_eq!(ended.status.code(), Some(0), "{}", ended.printed_after());
    assert!(
        ended.printed_after().contains("sold          2 of 2"),
        "{}",
        ended.printed_after()
    );
    ended.assert_terminal_restored();
}
