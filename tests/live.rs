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

/// A sale of 300 tickets that takes seconds (a read delay under the lock),
/// so there is time to resize, pause and quit it.
const SLOW_LOCKED: [&str; 10] = [
    "sell",
    "-w",
    "8",
    "-t",
    "300",
    "--wants",
    "all",
    "--lock",
    "buy",
    "--read-delay",
];

fn slow_locked_sale(cols: u16, rows: u16, env: &[(&str, &str)]) -> crate::common::term::TermRun {
    let seed = unique_seed().to_string();
    let mut args = SLOW_LOCKED.to_vec();
    args.extend(["50ms", "--seed", &seed]);
    crate::common::term::TermRun::start_with(&args, cols, rows, env)
}

const XTERM: (&str, &str) = ("TERM", "xterm-256color");

#[test]
fn live_view_resize_storm_leaves_no_stray_lines() {
    // 120x40 → 60x20 → 30x10 → 200x60 → 80x24 while selling, then q. The
    // normal screen and its scrollback must hold the final frame and the
    // summary once each, and nothing of the frames drawn meanwhile.
    let mut run = slow_locked_sale(120, 40, &[XTERM]);
    run.wait_for_screen("the first frame", |s| s.contains("remaining"));
    for (cols, rows) in [(60, 20), (30, 10), (200, 60), (80, 24)] {
        let before = run.raw().len();
        run.resize(cols, rows);
        // Redrawn since: a frame with the keys written after the resize.
        let redrawn = eventually(PATIENCE, || {
            let raw = run.raw();
            raw.len() > before && strip_escapes(&raw[before..]).contains("quit")
        });
        assert!(redrawn, "no frame at {cols}x{rows}:\n{}", run.screen());
    }
    run.press(b"q");
    let ended = run.end();
    assert_eq!(ended.status.code(), Some(130), "{}", ended.printed_after());
    ended.assert_terminal_restored();
    let history = ended.history();
    let text = history.join("\n");
    let count = |needle: &str| history.iter().filter(|l| l.contains(needle)).count();
    // Nothing above the final frame: its header is the first line.
    assert!(history[0].starts_with("store shm"), "{text}");
    assert_eq!(
        history
            .iter()
            .filter(|l| l.starts_with("store shm"))
            .count(),
        1,
        "{text}"
    );
    assert_eq!(count("q quit"), 1, "{text}");
    assert_eq!(count("sale: 8 buyers"), 1, "{text}");
    // And the frame printed says the sale was stopped, not selling.
    assert!(text.contains("sale stopped"), "{text}");
    assert!(!text.contains("selling"), "{text}");
}

#[test]
fn live_view_q_leaves_a_stopped_final_frame() {
    let mut run = slow_locked_sale(80, 24, &[XTERM]);
    run.wait_for_screen("the sale under way", |s| s.contains("selling"));
    run.press(b"q");
    let ended = run.end();
    let printed = ended.printed_after();
    assert_eq!(ended.status.code(), Some(130), "{printed}");
    let frame = printed
        .split("sale: ")
        .next()
        .expect("the final frame comes before the summary");
    assert!(frame.contains("stopped"), "{printed}");
    assert!(!frame.contains("selling"), "{printed}");
    assert!(
        printed.contains("sold          ") && printed.contains("stopped"),
        "{printed}"
    );
}

#[test]
fn term_dumb_gets_plain_lines() {
    let run = slow_locked_sale(80, 24, &[("TERM", "dumb")]);
    let pid = run.pid() as i32;
    // Long enough for a progress line, then stopped as Ctrl-C would.
    assert!(
        eventually(PATIENCE, || run.raw().contains("remaining")),
        "no progress line: {:?}",
        run.raw()
    );
    signal(pid, libc::SIGINT);
    let ended = run.end();
    assert!(
        !ended.raw.contains('\x1b'),
        "escape codes on a dumb terminal: {:?}",
        ended.raw
    );
    assert!(
        ended
            .raw
            .lines()
            .any(|l| l.starts_with('[') && l.contains("remaining")),
        "{}",
        ended.raw
    );
    assert!(ended.raw.contains("sale: 8 buyers"), "{}", ended.raw);
}

/// Whether `raw` sets a foreground or background colour (crossterm writes
/// `ESC [38;5;Nm` and `ESC [48;5;Nm`).
fn has_colour(raw: &str) -> bool {
    raw.contains("\x1b[38;5;") || raw.contains("\x1b[48;5;")
}

#[test]
fn color_never_and_no_color_draw_without_colour() {
    for (args, env) in [
        (vec!["--color", "never"], vec![XTERM]),
        (vec![], vec![XTERM, ("NO_COLOR", "1")]),
        (vec!["--color", "always"], vec![XTERM, ("NO_COLOR", "1")]),
    ] {
        let seed = unique_seed().to_string();
        let mut all = EVERYONE_READS_FIRST.to_vec();
        all.extend(["--lock", "none", "--seed", &seed]);
        all.extend(args.iter().copied());
        let mut full = vec!["sell"];
        full.extend(all);
        let run = crate::common::term::TermRun::start_with(&full, COLS, ROWS, &env);
        let ended = run.end();
        let printed = ended.printed_after();
        assert_eq!(ended.status.code(), Some(0), "{printed}");
        let want = args.contains(&"always");
        assert_eq!(has_colour(&ended.raw), want, "{args:?} {env:?}");
        // Without colour the race is still told: bold, and in words.
        assert!(printed.contains("oversold 9"), "{printed}");
    }
}

#[test]
fn live_view_draws_on_stderr_when_stdout_is_a_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("summary.txt");
    let file = std::fs::File::create(&path).expect("create the file");
    let seed = unique_seed().to_string();
    let mut args = vec!["sell"];
    args.extend(EVERYONE_READS_FIRST);
    args.extend(["--lock", "none", "--seed", &seed]);
    let run =
        crate::common::term::TermRun::start_full(&args, COLS, ROWS, &[XTERM], Some(file.into()));
    let ended = run.end();
    assert_eq!(ended.status.code(), Some(0), "{}", ended.raw);
    // The screen went to the terminal (stderr)…
    assert!(ended.raw.contains(ENTER_ALTERNATE), "{:?}", ended.raw);
    assert!(ended.screen().contains("remaining"), "{}", ended.screen());
    // …and the file got the summary alone, without one escape byte.
    let summary = std::fs::read_to_string(&path).expect("read the summary");
    assert!(summary.starts_with("sale: "), "{summary}");
    assert!(!summary.contains('\x1b'), "{summary:?}");
}
