//! The few OS calls the demos need: fork, reap, kill, pipes, poll, futexes.
//!
//! Kept apart from the lab logic so the labs read like the Python posts they
//! follow, and so every `unsafe` of the demos is in one place.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::DemoError;

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It called `_exit(code)`.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl Exit {
    /// Whether the child exited with code 0.
    pub(crate) fn success(self) -> bool {
        self == Exit::Code(0)
    }

    /// Words for a report, e.g. `exited with code 1`.
    pub(crate) fn describe(self) -> String {
        match self {
            Exit::Code(code) => format!("exited with code {code}"),
            Exit::Signal(sig) => format!("was killed by {}", signal_name(sig)),
        }
    }
}

/// A signal's usual name, for the signals these demos send or meet.
pub(crate) fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        other => format!("signal {other}"),
    }
}

/// Exit code of a child whose work panicked.
pub(crate) const PANIC_EXIT: i32 = 101;

/// Fails unless this process has exactly one thread.
///
/// After `fork` only the calling thread exists in the child; a lock another
/// thread held at that instant (the allocator's, stdout's) stays locked for
/// ever. The demos fork from a single-threaded process, and this makes the
/// assumption checked instead of hoped for.
pub(crate) fn ensure_single_threaded() -> Result<(), DemoError> {
    // Without /proc we cannot tell; Linux always has it where ticketlab runs.
    let threads = std::fs::read_dir("/proc/self/task").map_or(1, |dir| dir.count());
    if threads > 1 {
        return Err(DemoError::Threaded(threads));
    }
    Ok(())
}

/// Forks a child that runs `work` and ends with `_exit(work())`; returns the
/// child's pid to the parent.
///
/// The child never returns into the caller's stack and never unwinds out of
/// `work` (a panic becomes [`PANIC_EXIT`]), so nothing the parent owns is
/// dropped or flushed twice. With `die_with_parent` the kernel kills the
/// child with SIGKILL when the parent dies, so no child outlives a killed
/// parent. Call only while the process has one thread
/// ([`ensure_single_threaded`]).
pub(crate) fn fork(die_with_parent: bool, work: impl FnOnce() -> i32) -> io::Result<i32> {
    // SAFETY: getpid takes no arguments and cannot fail.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the callers check that the process has a single thread, so the
    // child inherits no lock held by another thread; the child below only
    // runs `work` and then `_exit`s.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let work = std::panic::AssertUnwindSafe(|| {
                if die_with_parent {
                    tie_to_parent(parent);
                }
                work()
            });
            let code = std::panic::catch_unwind(work).unwrap_or(PANIC_EXIT);
            // SAFETY: _exit ends the process at once; it runs no destructor,
            // atexit handler or stdio flush that belongs to the parent.
            unsafe { libc::_exit(code) }
        }
        pid => Ok(pid),
    }
}

fn tie_to_parent(parent: i32) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid take no pointers; _exit
    // never returns.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        // The parent may have died between fork and prctl: then no death
        // signal would ever come, and this child would run on as an orphan.
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
}

/// Sends `sig` to `pid`; a child that is already gone is no error.
pub(crate) fn kill(pid: i32, sig: i32) {
    // SAFETY: kill takes no pointers. The pid is one of our own unreaped
    // children, which the kernel cannot hand to another process before we
    // reap it.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Waits for the child `pid` to end.
pub(crate) fn reap(pid: i32) -> io::Result<Exit> {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer for the call.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(decode(status));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Reaps the child `pid` if it has ended, without waiting.
pub(crate) fn try_reap(pid: i32) -> io::Result<Option<Exit>> {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer for the call.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    match r {
        0 => Ok(None),
        r if r == pid => Ok(Some(decode(status))),
        _ => Err(io::Error::last_os_error()),
    }
}

fn decode(status: i32) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

/// The children a parent has forked and not yet reaped.
///
/// Dropping it kills (SIGKILL) and reaps every child still listed: an error
/// anywhere in the parent can then return with `?` and still leave no worker
/// behind and no zombie.
#[derive(Debug, Default)]
pub(crate) struct Children {
    pids: Vec<i32>,
}

impl Children {
    /// Adds a freshly forked child.
    pub(crate) fn push(&mut self, pid: i32) {
        self.pids.push(pid);
    }

    /// Waits for every child, in fork order, and returns how each ended.
    pub(crate) fn reap_all(&mut self) -> io::Result<Vec<(i32, Exit)>> {
        let mut ended = Vec::with_capacity(self.pids.len());
        while let Some(&pid) = self.pids.first() {
            let exit = reap(pid)?;
            self.pids.remove(0);
            ended.push((pid, exit));
        }
        Ok(ended)
    }

    /// Ends `pid` politely: SIGTERM, then SIGKILL if it is still there after
    /// `grace`; reaps it either way.
    pub(crate) fn terminate(&mut self, pid: i32, grace: Duration) -> io::Result<Exit> {
        kill(pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        let exit = loop {
            if let Some(exit) = try_reap(pid)? {
                break exit;
            }
            if Instant::now() >= deadline {
                kill(pid, libc::SIGKILL);
                break reap(pid)?;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.forget(pid);
        Ok(exit)
    }

    /// Stops looking after `pid`: it is reaped, or left to live on on purpose.
    pub(crate) fn forget(&mut self, pid: i32) {
        self.pids.retain(|&p| p != pid);
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for &pid in &self.pids {
            kill(pid, libc::SIGKILL);
        }
        for &pid in &self.pids {
            let _ = reap(pid);
        }
    }
}

/// Opens a pipe; returns (read end, write end). Both close on exec.
pub(crate) fn pipe() -> io::Result<(File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and nothing else
    // owns them.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(read), write))
}

/// Writes `line` with a single `write(2)`.
///
/// On a pipe a write of at most `PIPE_BUF` bytes is atomic: lines from
/// several processes may interleave, but never tear.
pub(crate) fn write_line(fd: BorrowedFd<'_>, line: &[u8]) -> io::Result<()> {
    debug_assert!(line.len() <= libc::PIPE_BUF);
    loop {
        // SAFETY: line is a valid slice for its whole length.
        let n = unsafe { libc::write(fd.as_raw_fd(), line.as_ptr().cast(), line.len()) };
        if n >= 0 {
            if n as usize == line.len() {
                return Ok(());
            }
            // Only a non-pipe (a terminal, a file) can take part of a line.
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write of a line",
            ));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Waits up to `timeout` for `fd` to have data or end of file.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // Round up so a short remaining time still sleeps instead of spinning.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    // SAFETY: pfd is one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(err)
        };
    }
    Ok(n > 0)
}

/// Sleeps until the shared `word` is no longer `expected`, or `timeout`
/// passes, or a signal arrives: the caller re-checks in a loop either way.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: word is a live, aligned u32 and ts outlives the call. The futex
    // is not FUTEX_PRIVATE: the word lives in a MAP_SHARED mapping that other
    // processes wait on too.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

/// Wakes every process sleeping on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: as in futex_wait; FUTEX_WAKE only reads the address.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

/// Waits until `ready(word)` holds.
///
/// Gives up with an error when `abort` becomes non-zero (a sibling failed and
/// will never do what we wait for) or at `deadline`, the last resort against a
/// sibling killed from outside.
pub(crate) fn wait_until(
    word: &AtomicU32,
    ready: impl Fn(u32) -> bool,
    abort: &AtomicU32,
    deadline: Instant,
) -> io::Result<()> {
    loop {
        let seen = word.load(Ordering::Acquire);
        if ready(seen) {
            return Ok(());
        }
        if abort.load(Ordering::Acquire) != 0 {
            return Err(io::Error::other("another process failed"));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "gave up waiting for the other processes",
            ));
        }
        // Short naps: a wake-up on `abort` does not reach a sleeper on `word`.
        futex_wait(word, seen, (deadline - now).min(Duration::from_millis(100)));
    }
}

/// A process id as an `i32`, the type every libc call takes.
pub(crate) fn getpid() -> i32 {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { libc::getpid() }
}

/// The parent's process id; it changes when the parent dies.
pub(crate) fn getppid() -> i32 {
    // SAFETY: getppid takes no arguments and cannot fail.
    unsafe { libc::getppid() }
}

/// Cuts a byte stream into lines as it arrives in arbitrary chunks.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Feeds a chunk; calls `line` for every line it completes (without the
    /// newline).
    pub(crate) fn feed(
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
    pub(crate) fn finish(
        &mut self,
        mut line: impl FnMut(&str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            line(&String::from_utf8_lossy(&rest))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_joins_lines_cut_across_chunks() {
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
    fn exit_descriptions_name_the_signal() {
        assert_eq!(Exit::Code(3).describe(), "exited with code 3");
        assert_eq!(
            Exit::Signal(libc::SIGTERM).describe(),
            "was killed by SIGTERM"
        );
        assert!(Exit::Code(0).success());
        assert!(!Exit::Signal(9).success());
    }
}
