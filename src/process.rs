//! The thin layer over the OS process calls: fork, reap, signals, futexes.
//!
//! Everything here is Linux-specific on purpose: ticketlab shows what the
//! kernel does, so it talks to it directly.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called `_exit(code)`.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// Exit code of a child whose work panicked.
pub const PANIC_EXIT: i32 = 101;

/// Forks a child that runs `work` and then `_exit`s with its return value;
/// returns the child's pid.
///
/// The child never returns into the caller's stack, so nothing the parent
/// owns (the segment, a temporary file) is dropped twice. A panic in `work`
/// is caught and turned into [`PANIC_EXIT`]. The child dies with the parent
/// (`PR_SET_PDEATHSIG`) and gets default signal handling back.
pub fn fork(work: impl FnOnce() -> i32) -> io::Result<i32> {
    let parent = std::process::id() as i32;
    // SAFETY: the caller guarantees the process has a single thread (the
    // parent forks before anything could start one), so the child inherits
    // no lock held by another thread.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                child_setup(parent);
                work()
            })) {
                Ok(code) => code,
                Err(_) => PANIC_EXIT,
            };
            exit_now(code)
        }
        pid => Ok(pid),
    }
}

fn child_setup(parent: i32) {
    // SAFETY: prctl and getppid take no pointers.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        // The parent may have died between fork and prctl: then nobody would
        // ever send the death signal.
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    // Ctrl-C reaches the whole foreground process group; the parent decides
    // what happens to buyers, so they ignore it.
    set_disposition(libc::SIGINT, libc::SIG_IGN);
    set_disposition(libc::SIGTERM, libc::SIG_DFL);
    unblock_supervisor_signals();
}

/// Ends this process at once, running no destructor and no atexit handler.
pub fn exit_now(code: i32) -> ! {
    // No flush: text the parent had buffered at fork time is the parent's,
    // and flushing it here would print it twice.
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

fn set_disposition(sig: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: SIG_IGN and SIG_DFL are valid dispositions for these signals.
    unsafe {
        libc::signal(sig, handler);
    }
}

/// Reaps one exited child without blocking, if any has exited.
pub fn try_reap() -> Option<(i32, Exit)> {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (pid > 0).then(|| (pid, decode(status)))
}

/// Waits for a given child to exit.
pub fn reap(pid: i32) -> io::Result<Exit> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
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

fn decode(status: i32) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

/// Sends `sig` to `pid`, ignoring a process that is already gone.
pub fn kill(pid: i32, sig: i32) {
    // SAFETY: kill takes no pointers; a stale pid is only ever one of our
    // own unreaped children, which cannot be recycled before we reap it.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Whether a process with this pid exists.
pub fn is_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn supervisor_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGCHLD, libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Blocks SIGCHLD, SIGINT, SIGTERM and SIGHUP so the supervisor can take
/// them one at a time with [`wait_signal`] instead of in a handler.
pub fn block_supervisor_signals() {
    let set = supervisor_set();
    // SAFETY: set is initialised; the old mask is not needed.
    unsafe {
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Undoes [`block_supervisor_signals`]; a signal that arrived meanwhile is
/// delivered now.
pub fn unblock_supervisor_signals() {
    let set = supervisor_set();
    // SAFETY: as above.
    unsafe {
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits up to `timeout` for one of the blocked supervisor signals and
/// returns it, or `None` on timeout.
pub fn wait_signal(timeout: Duration) -> Option<i32> {
    let set = supervisor_set();
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: set and ts are valid for the call; the info pointer may be null.
    let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

/// Sleeps on a futex word in shared memory until it is no longer `expected`.
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: word points to a live, aligned u32; a shared (non-private)
    // futex works across processes mapping the same page.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

/// Wakes every process sleeping on `word`.
pub fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: as in futex_wait.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

/// Tries to take a pthread mutex without blocking; `true` if it was taken.
pub fn mutex_try_lock(raw: *mut std::ffi::c_void) -> bool {
    // SAFETY: raw is a pthread_mutex_t initialised by raw_sync in the segment.
    unsafe { libc::pthread_mutex_trylock(raw.cast()) == 0 }
}

/// Releases a mutex taken with [`mutex_try_lock`].
pub fn mutex_unlock(raw: *mut std::ffi::c_void) {
    // SAFETY: only called by the thread that just took it with trylock.
    unsafe {
        libc::pthread_mutex_unlock(raw.cast());
    }
}

/// Writes all of `buf` to a raw fd (used by children, which avoid std's
/// buffered stdout).
pub fn write_fd(fd: i32, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes from a raw fd; `Ok(false)` on end of file.
pub fn read_exact_fd(fd: i32, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the destination range lies within buf.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        match n {
            0 => return Ok(false),
            n if n < 0 => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
            n => got += n as usize,
        }
    }
    Ok(true)
}

/// Reads what is there (at least one byte, or 0 at end of file).
pub fn read_fd(fd: i32, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is a valid mutable slice for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// A pipe's two ends, closed on drop.
pub struct Pipe {
    /// The read end.
    pub read: i32,
    /// The write end.
    pub write: i32,
}

impl Pipe {
    /// Opens a pipe whose ends close on exec.
    pub fn new() -> io::Result<Pipe> {
        let mut fds = [0; 2];
        // SAFETY: fds has room for the two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Pipe {
            read: fds[0],
            write: fds[1],
        })
    }

    /// Closes the read end (in the process that only writes).
    pub fn close_read(&mut self) {
        close_fd(&mut self.read);
    }

    /// Closes the write end (in the process that only reads).
    pub fn close_write(&mut self) {
        close_fd(&mut self.write);
    }
}

/// Closes a descriptor this process inherited and will not use (a forked
/// child's copy of an end it must not hold open).
pub fn close_raw(fd: i32) {
    // SAFETY: closing a descriptor number has no memory effects; the child
    // that calls this never uses `fd` again.
    unsafe {
        libc::close(fd);
    }
}

fn close_fd(fd: &mut i32) {
    if *fd >= 0 {
        // SAFETY: fd is a descriptor this Pipe opened and has not closed.
        unsafe {
            libc::close(*fd);
        }
        *fd = -1;
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.close_read();
        self.close_write();
    }
}

/// Lifts the soft descriptor limit toward the hard one so that `want`
/// descriptors fit. If that fails, the call that runs out reports it.
pub fn raise_fd_limit(want: usize) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid out-pointer, then a valid in-pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && (lim.rlim_cur as usize) < want {
            lim.rlim_cur = lim.rlim_max.min(want as libc::rlim_t * 2);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_huge_pid_is_not() {
        assert!(is_alive(std::process::id() as i32));
        assert!(!is_alive(i32::MAX - 7));
    }
}
