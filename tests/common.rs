//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn ticketlab() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("ticketlab").expect("binary built");
    // Never the developer's own progress: `labs` would tick their labs.
    cmd.env("XDG_STATE_HOME", no_state_dir());
    cmd
}

/// A state directory no test writes to, so `labs` shows no progress.
pub fn no_state_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-state")
}

/// A `std::process::Command` for the binary, for tests that signal it mid-run.
pub fn ticketlab_process() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_ticketlab"))
}

/// A sale whose race is certain: every buyer reads the one ticket before
/// anyone writes, because a 1 s read delay after the common start signal
/// dwarfs the few milliseconds the buyers need to get going, even on a
/// loaded machine. Add the store and lock to race on.
pub const EVERYONE_READS_FIRST: &[&str] =
    &["--workers", "10", "--tickets", "1", "--read-delay", "1s"];

/// Runs `ticketlab sell ARGS --json` and parses its one JSON object.
pub fn sale_json(args: &[&str]) -> serde_json::Value {
    command_json("sell", args)
}

/// Runs `ticketlab COMMAND ARGS --json`, which must succeed, and parses its
/// one JSON object.
pub fn command_json(command: &str, args: &[&str]) -> serde_json::Value {
    let out = ticketlab()
        .arg(command)
        .args(args)
        .arg("--json")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "ticketlab {command} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    one_json_object(&out.stdout)
}

/// The one JSON object that must be all of stdout.
pub fn one_json_object(stdout: &[u8]) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(stdout);
    let mut lines = stdout.lines();
    let json = lines.next().expect("one line of JSON");
    assert_eq!(lines.next(), None, "stdout holds exactly one JSON object");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"))
}

/// A seed no other test uses, so a run's processes can be found by their
/// command line.
pub fn unique_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    (nanos % 1_000_000_000) * 1000 + NEXT.fetch_add(1, Ordering::Relaxed) + 7_000_000_000_000
}

/// Processes whose command line contains `needle` (buyers share their
/// parent's command line, since they are forked, not executed).
pub fn processes_with(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("ticketlab") && cmdline.contains(needle) && !is_zombie(pid) {
            found.push(pid);
        }
    }
    found
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .map(|(_, r)| r.starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(true)
}

/// Direct children of `parent`.
pub fn children_of(parent: i32) -> Vec<i32> {
    let mut kids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let ppid: i32 = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid == parent && !rest.starts_with('Z') {
            kids.push(pid);
        }
    }
    kids
}

/// Segments and temporary store files a run with this parent pid left behind.
pub fn leftovers_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("ticketlab-{pid}-");
    let mut found = Vec::new();
    for dir in [Path::new("/dev/shm").to_path_buf(), std::env::temp_dir()] {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(entry.path());
            }
        }
    }
    found
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Sends a signal to a process.
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill takes no pointers.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Waits up to `limit` for `child` to exit. A child still running then is
/// killed and reaped, and `None` says it hung.
pub fn wait_or_kill(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let mut status = None;
    let finished = eventually(limit, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !finished {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Starts `ticketlab sell ARGS --json --view quiet --seed S` with its
/// output piped, S a seed no other test uses; returns the child and S.
pub fn spawn_sale_json(args: &[&str]) -> (std::process::Child, String) {
    let seed = unique_seed().to_string();
    let child = ticketlab_process()
        .arg("sell")
        .args(args)
        .args(["--json", "--view", "quiet", "--seed", &seed])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    (child, seed)
}

/// Everything a finished child wrote on stdout and stderr.
pub fn drain_output(child: &mut std::process::Child) -> (Vec<u8>, String) {
    use std::io::Read;
    let mut stdout = Vec::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout).unwrap();
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr).unwrap();
    }
    (stdout, stderr)
}

/// `ticketlab` on a pseudo-terminal of a chosen size, with any command
/// line: the same harness as `live.rs`'s, shared so other tests can type
/// keys into the live screen and read it back.
/// Drops escape sequences and carriage returns, to read printed text: the
/// library's own, so the unit and integration tests read alike.
#[path = "../src/view/escapes.rs"]
mod escapes;

pub mod term {
    use std::fs::File;
    use std::io::{self, Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, ExitStatus, Stdio};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use super::{eventually, signal, ticketlab_process};

    /// Hang guard for anything a test waits on: far beyond what a loaded
    /// machine needs, short enough that a hung run fails instead of
    /// stalling.
    pub const PATIENCE: Duration = Duration::from_secs(60);

    const ENTER_ALTERNATE: &str = "\x1b[?1049h";
    const LEAVE_ALTERNATE: &str = "\x1b[?1049l";
    const HIDE_CURSOR: &str = "\x1b[?25l";
    const SHOW_CURSOR: &str = "\x1b[?25h";

    /// A pseudo-terminal of `cols` × `rows`: the test keeps the master, the
    /// child gets the slave. Both ends are close-on-exec, so processes other
    /// tests spawn never inherit them.
    pub fn open_pty(cols: u16, rows: u16) -> (File, OwnedFd) {
        // SAFETY: posix_openpt takes no pointers and returns a new
        // descriptor or -1.
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        assert!(master >= 0, "posix_openpt: {}", io::Error::last_os_error());
        // SAFETY: `master` was just opened and is owned by nobody else.
        let master = unsafe { File::from_raw_fd(master) };
        // SAFETY: grantpt and unlockpt only take the master descriptor.
        let unlocked = unsafe {
            libc::grantpt(master.as_raw_fd()) == 0 && libc::unlockpt(master.as_raw_fd()) == 0
        };
        assert!(unlocked, "grantpt/unlockpt: {}", io::Error::last_os_error());
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: `name` is a writable buffer of the length passed.
        let found = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
        assert_eq!(
            found,
            0,
            "ptsname_r: {}",
            io::Error::from_raw_os_error(found)
        );
        // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated path.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
        let path = path.to_str().expect("a UTF-8 pty path").to_string();
        let slave: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {path}: {e}"))
            .into();
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one `winsize`, which lives across the call.
        let sized = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(sized, 0, "TIOCSWINSZ: {}", io::Error::last_os_error());
        (master, slave)
    }

    /// The terminal settings of `fd`.
    fn termios_of(fd: &OwnedFd) -> libc::termios {
        // SAFETY: termios is plain data; all zeroes is a valid value.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr writes one `termios` into `t`.
        let got = unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) };
        assert_eq!(got, 0, "tcgetattr: {}", io::Error::last_os_error());
        t
    }

    /// `ticketlab ARGS` running on a pseudo-terminal, with everything it
    /// writes collected by a reader thread of the test.
    pub struct TermRun {
        child: Child,
        cols: u16,
        rows: u16,
        master: File,
        slave: Option<OwnedFd>,
        output: Arc<Mutex<Vec<u8>>>,
        reader: Option<JoinHandle<()>>,
        /// Each resize: the bytes read before it, and the new size.
        resizes: Vec<(usize, u16, u16)>,
        /// The size before any resize.
        start_size: (u16, u16),
    }

    /// How a run on a terminal ended.
    pub struct TermEnded {
        /// Its exit status.
        pub status: ExitStatus,
        /// The parent's pid.
        pub pid: u32,
        /// Every byte the run wrote to the terminal.
        pub raw: String,
        /// The terminal's settings after the run.
        pub termios: libc::termios,
        cols: u16,
        rows: u16,
        bytes: Vec<u8>,
        resizes: Vec<(usize, u16, u16)>,
    }

    impl TermRun {
        /// Starts `ticketlab ARGS` on a fresh `cols` × `rows` terminal, as
        /// the session leader with that terminal as its controlling one.
        pub fn start(args: &[&str], cols: u16, rows: u16) -> TermRun {
            Self::start_with(args, cols, rows, &[("TERM", "xterm-256color")])
        }

        /// `start` with these environment variables.
        pub fn start_with(args: &[&str], cols: u16, rows: u16, env: &[(&str, &str)]) -> TermRun {
            Self::start_full(args, cols, rows, env, None)
        }

        /// `start_with`, and stdout goes to `stdout` instead of the
        /// terminal when given.
        pub fn start_full(
            args: &[&str],
            cols: u16,
            rows: u16,
            env: &[(&str, &str)],
            stdout: Option<Stdio>,
        ) -> TermRun {
            let (master, slave) = open_pty(cols, rows);
            let stdio = || Stdio::from(slave.try_clone().expect("dup the slave"));
            let mut command = ticketlab_process();
            command
                .args(args)
                .env_remove("NO_COLOR")
                .envs(env.iter().copied())
                .stdin(stdio())
                .stdout(stdout.unwrap_or_else(stdio))
                .stderr(stdio());
            // SAFETY: the closure runs in the forked child before exec and
            // calls only async-signal-safe functions (setsid, ioctl).
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
            TermRun {
                child,
                cols,
                rows,
                master,
                slave: Some(slave),
                output,
                reader: Some(reader),
                resizes: Vec::new(),
                start_size: (cols, rows),
            }
        }

        /// Resizes the terminal, as a person dragging its window does: the
        /// kernel tells the run with SIGWINCH.
        pub fn resize(&mut self, cols: u16, rows: u16) {
            let size = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let at = self.output.lock().unwrap().len();
            // SAFETY: TIOCSWINSZ reads one `winsize`, which lives across
            // the call.
            let sized = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
            assert_eq!(sized, 0, "TIOCSWINSZ: {}", io::Error::last_os_error());
            self.resizes.push((at, cols, rows));
            (self.cols, self.rows) = (cols, rows);
        }

        /// The parent's pid.
        pub fn pid(&self) -> u32 {
            self.child.id()
        }

        /// Whether the run has exited (it is reaped by `end`).
        pub fn has_exited(&mut self) -> bool {
            !matches!(self.child.try_wait(), Ok(None))
        }

        /// Everything written so far.
        pub fn raw(&self) -> String {
            String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
        }

        /// The alternate screen as the output so far leaves it.
        pub fn screen(&self) -> String {
            replay_screen(&self.raw(), self.cols, self.rows)
        }

        /// Waits until the alternate screen satisfies `cond`.
        pub fn wait_for_screen(&self, what: &str, cond: impl Fn(&str) -> bool) {
            if !eventually(PATIENCE, || cond(&self.screen())) {
                panic!("the screen never showed {what}:\n{}", self.screen());
            }
        }

        /// Types `keys` into the terminal.
        pub fn press(&mut self, keys: &[u8]) {
            self.master.write_all(keys).expect("write to the terminal");
        }

        /// Waits for the run to end (killing it and failing if it hangs),
        /// then collects everything it wrote and the terminal's settings.
        pub fn end(mut self) -> TermEnded {
            let mut status = None;
            let exited = eventually(PATIENCE, || {
                status = self.child.try_wait().expect("try_wait");
                status.is_some()
            });
            let raw = self.raw();
            assert!(exited, "ticketlab hung; it wrote:\n{raw:?}");
            let slave = self.slave.take().expect("the slave is kept until the end");
            let termios = termios_of(&slave);
            // With the run, its children and this last copy of the slave
            // gone, the reader sees end-of-file and has read every byte.
            drop(slave);
            let reader = self.reader.take().expect("one reader");
            assert!(
                eventually(PATIENCE, || reader.is_finished()),
                "the terminal was never closed: some process still holds it"
            );
            reader.join().expect("the reader thread");
            let (first_cols, first_rows) = self.start_size;
            TermEnded {
                status: status.expect("exited"),
                pid: self.child.id(),
                raw: self.raw(),
                termios,
                cols: first_cols,
                rows: first_rows,
                bytes: self.output.lock().unwrap().clone(),
                resizes: std::mem::take(&mut self.resizes),
            }
        }
    }

    impl Drop for TermRun {
        /// A failed test must not leave its run behind: SIGTERM lets it
        /// clean up; SIGKILL if even that hangs.
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

    impl TermEnded {
        /// What was printed on the normal screen after the last alternate
        /// screen was left, without escape sequences: the final frame and
        /// the summary.
        pub fn printed_after(&self) -> String {
            let tail = self
                .raw
                .rfind(LEAVE_ALTERNATE)
                .map_or("", |i| &self.raw[i..]);
            strip_escapes(tail)
        }

        /// The alternate screen as last drawn.
        pub fn screen(&self) -> String {
            let (cols, rows) = self
                .resizes
                .last()
                .map_or((self.cols, self.rows), |r| (r.1, r.2));
            replay_screen(&self.raw, cols, rows)
        }

        /// The normal screen and its scrollback after the run, oldest line
        /// first, replayed with every resize where it happened.
        pub fn history(&self) -> Vec<String> {
            history(&self.bytes, self.cols, self.rows, &self.resizes)
        }

        /// The terminal was handed back: the alternate screen left after it
        /// was last entered, the cursor shown after it was last hidden, the
        /// line discipline cooked again.
        pub fn assert_terminal_restored(&self) {
            let raw = &self.raw;
            let entered = raw
                .rfind(ENTER_ALTERNATE)
                .unwrap_or_else(|| panic!("the alternate screen was never entered: {raw:?}"));
            let left = raw
                .rfind(LEAVE_ALTERNATE)
                .unwrap_or_else(|| panic!("the alternate screen was never left: {raw:?}"));
            assert!(left > entered, "left before the last enter: {raw:?}");
            let hidden = raw
                .rfind(HIDE_CURSOR)
                .unwrap_or_else(|| panic!("the cursor was never hidden: {raw:?}"));
            let shown = raw
                .rfind(SHOW_CURSOR)
                .unwrap_or_else(|| panic!("the cursor was never shown again: {raw:?}"));
            assert!(shown > hidden, "the cursor stays hidden: {raw:?}");
            let t = self.termios;
            assert!(
                t.c_lflag & (libc::ICANON | libc::ECHO) == (libc::ICANON | libc::ECHO),
                "raw mode was left on: c_lflag {:#o}",
                t.c_lflag
            );
        }
    }

    pub(crate) use super::escapes::strip_escapes;

    /// Replays `raw` on a `cols` × `rows` terminal (the `vt100` crate) and
    /// returns the alternate screen as it was last drawn, one line per row.
    pub fn replay_screen(raw: &str, cols: u16, rows: u16) -> String {
        let mut parser = terminal(cols, rows);
        parser.process(raw.as_bytes());
        if !parser.screen().alternate_screen() {
            // Back on the alternate screen without clearing it (mode 47):
            // it still holds the last frame drawn there.
            parser.process(b"\x1b[?47h");
        }
        lines_of(parser.screen())
    }

    /// A `vt100` terminal of `cols` × `rows` that keeps 10,000 lines of
    /// scrollback.
    pub fn terminal(cols: u16, rows: u16) -> vt100::Parser {
        let nz = |n: u16| std::num::NonZeroU16::new(n.max(1)).expect("not zero");
        vt100::Parser::new(nz(rows), nz(cols), 10_000)
    }

    /// The rows of `screen` as shown, trailing blanks dropped.
    fn lines_of(screen: &vt100::Screen) -> String {
        let (_, cols) = screen.size();
        screen
            .rows(0, cols.get())
            .map(|r| r.trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The normal screen with its scrollback, oldest line first, as a
    /// terminal shows it after a run that wrote `raw`, resized at the
    /// byte offsets `resizes` gives (offset, cols, rows).
    pub fn history(raw: &[u8], cols: u16, rows: u16, resizes: &[(usize, u16, u16)]) -> Vec<String> {
        let mut parser = terminal(cols, rows);
        let mut at = 0;
        for &(offset, cols, rows) in resizes {
            let offset = offset.min(raw.len());
            parser.process(&raw[at..offset]);
            at = offset;
            let nz = |n: u16| std::num::NonZeroU16::new(n.max(1)).expect("not zero");
            parser.set_size(nz(rows), nz(cols));
        }
        parser.process(&raw[at..]);
        if parser.screen().alternate_screen() {
            parser.process(b"\x1b[?1049l");
        }
        let screen = parser.screen_mut();
        screen.set_scrollback(usize::MAX);
        let back = screen.scrollback();
        let mut lines = Vec::new();
        // Scrolled back by n, the top row is the n-th line from the end of
        // the scrollback.
        for n in (1..=back).rev() {
            screen.set_scrollback(n);
            let (_, cols) = screen.size();
            lines.extend(
                screen
                    .rows(0, cols.get())
                    .next()
                    .map(|r| r.trim_end().to_string()),
            );
        }
        screen.set_scrollback(0);
        lines.extend(lines_of(screen).split('\n').map(str::to_string));
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }
}
