//! The thin layer over the OS process calls: fork, reap, signals, futexes,
//! pipes and shared pages.
//!
//! Everything here is Linux-specific on purpose: ticketlab shows what the
//! kernel does, so it talks to it directly. The sale engine and the warm-up
//! labs (`demo/`) both fork through this module, so every `unsafe` they need
//! sits here.

use std::cell::UnsafeCell;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use raw_sync::locks::LockImpl;

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It called `_exit(code)`.
    Code(i32),
    /// A signal killed it.
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

/// A signal's usual name, for the signals ticketlab sends or meets.
pub(crate) fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        other => format!("signal {other}"),
    }
}

/// Exit code of a child whose work panicked.
pub(crate) const PANIC_EXIT: i32 = 101;

/// Forking now would copy a process with other threads into a child that has
/// only one, possibly with a lock some vanished thread still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to fork: this process runs {0} threads, a forked child could inherit a lock held by one of them"
)]
pub struct ThreadedError(pub usize);

impl From<ThreadedError> for io::Error {
    fn from(err: ThreadedError) -> io::Error {
        io::Error::other(err)
    }
}

/// Fails unless this process has exactly one thread.
///
/// After `fork` only the calling thread exists in the child; a lock another
/// thread held at that instant (the allocator's, stdout's) stays locked for
/// ever. [`fork_with`] checks this itself before every fork, so a fork can
/// never be made unsoundly; calling it first gives a clear error before any
/// work is done. The count is exact: with one thread, nobody else can start
/// another between this look and the fork.
pub(crate) fn ensure_single_threaded() -> Result<(), ThreadedError> {
    match thread_count() {
        Some(threads) if threads > 1 => Err(ThreadedError(threads)),
        _ => Ok(()),
    }
}

/// This process's thread count, from field 20 of `/proc/self/stat` (one
/// small read, a few microseconds); `None` without `/proc`.
fn thread_count() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, field 2, is in parentheses and may hold spaces.
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(17)?.parse().ok()
}

/// What a forked child sets up before it runs its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ForkOptions {
    /// The kernel kills the child (SIGKILL) when the parent dies, so no child
    /// outlives a killed parent. Off only for a child meant to be orphaned.
    pub die_with_parent: bool,
    /// The child ignores SIGINT: Ctrl-C reaches the whole foreground process
    /// group, and the parent decides what it means for its children.
    pub ignore_sigint: bool,
    /// Added to the child's nice value. Buyers spin; a parent that must win
    /// the CPU from 1000 of them to see a Ctrl-C, draw a frame or grant a
    /// step would wait seconds for it at equal priority.
    pub nicer_by: i32,
}

impl ForkOptions {
    /// What [`fork`] uses: a sale's buyer or seller, which dies with its
    /// parent and leaves Ctrl-C to it.
    pub(crate) const WORKER: ForkOptions = ForkOptions {
        die_with_parent: true,
        ignore_sigint: true,
        nicer_by: WORKER_NICENESS,
    };
}

/// How much nicer than its parent a sale's buyer or seller runs. Among
/// themselves they stay equal, so the race is the same; against the parent
/// they lose, so the parent answers within milliseconds even when 1000 of
/// them spin on two cores (at equal priority it took most of a second).
pub(crate) const WORKER_NICENESS: i32 = 10;

/// Forks a child with [`ForkOptions::WORKER`] that runs `work` and then
/// `_exit`s with its return value; returns the child's pid.
pub(crate) fn fork(work: impl FnOnce() -> i32) -> io::Result<i32> {
    fork_with(ForkOptions::WORKER, work)
}

/// Forks a child that runs `work` and then `_exit`s with its return value;
/// returns the child's pid.
///
/// The child never returns into the caller's stack, so nothing the parent
/// owns (the segment, a temporary file) is dropped twice, and `_exit` flushes
/// nothing the parent had buffered. A panic in `work` is caught and turned
/// into [`PANIC_EXIT`]. The child gets SIGTERM's default action back and the
/// supervisor's signals unblocked, then does what `options` asks. A process
/// with more than one thread is refused ([`ThreadedError`]), so this is
/// sound to call from anywhere.
pub(crate) fn fork_with(options: ForkOptions, work: impl FnOnce() -> i32) -> io::Result<i32> {
    ensure_single_threaded()?;
    let parent = getpid();
    // SAFETY: the process has a single thread (checked just above, and with
    // one thread nobody can start another meanwhile), so the child inherits
    // no lock held by another thread; the child below only runs `work` and
    // then `_exit`s, never returning into the caller's stack.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let work = std::panic::AssertUnwindSafe(|| {
                child_setup(parent, options);
                work()
            });
            exit_now(std::panic::catch_unwind(work).unwrap_or(PANIC_EXIT))
        }
        pid => Ok(pid),
    }
}

fn child_setup(parent: i32, options: ForkOptions) {
    // The parent's short slices are for its quick reactions; a buyer that
    // kept them would be preempted ten times as often as it should.
    request_short_slices(None);
    if options.nicer_by != 0 {
        // SAFETY: nice takes no pointers; raising one's own nice value is
        // always allowed, and a failure leaves the priority as it was.
        unsafe {
            libc::nice(options.nicer_by);
        }
    }
    if options.die_with_parent {
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes no pointers.
        unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
        }
        // The parent may have died between fork and prctl: then nobody would
        // ever send the death signal, and this child would run on as an
        // orphan.
        if getppid() != parent {
            exit_now(1);
        }
    }
    if options.ignore_sigint {
        set_disposition(libc::SIGINT, libc::SIG_IGN);
    }
    set_disposition(libc::SIGTERM, libc::SIG_DFL);
    unblock_supervisor_signals();
}

/// Asks the kernel for short time slices (EEVDF's custom slice, Linux 6.12
/// and later; older kernels refuse and nothing changes). A sale's parent
/// sleeps nearly all the time and then has a few microseconds of work: with
/// the default slice it waits behind every one of 1000 spinning buyers
/// before it even sees a Ctrl-C, with a short one it runs at once.
/// `slice = None` returns to the default (what a forked buyer does).
pub(crate) fn request_short_slices(slice: Option<Duration>) {
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        sched_nice: 0,
        sched_priority: 0,
        sched_runtime: slice.map_or(0, |d| d.as_nanos() as u64),
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: attr is a valid sched_attr whose size field is its size; pid 0
    // is this thread. The nice value is kept: sched_setattr only changes it
    // with SCHED_FLAG_KEEP_PARAMS unset for fair tasks, so read it first.
    unsafe {
        let mut attr = attr;
        attr.sched_nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::syscall(
            libc::SYS_sched_setattr,
            0,
            &attr as *const libc::sched_attr,
            0,
        );
    }
}

/// Stops this whole process group (SIGSTOP, which nothing can block), as
/// the shell's Ctrl-Z would; returns once the group is continued (`fg`).
pub(crate) fn stop_process_group() {
    // SAFETY: kill takes no pointers; pid 0 is this process's group.
    unsafe {
        libc::kill(0, libc::SIGSTOP);
    }
}

/// Kills this process with SIGKILL at once: the fault hook's way to die
/// exactly where it stands, as a `kill -9` from outside would.
pub(crate) fn die_now() -> ! {
    // SAFETY: raise takes no pointers; SIGKILL cannot be caught or blocked.
    unsafe {
        libc::raise(libc::SIGKILL);
    }
    unreachable!("SIGKILL cannot be survived")
}

/// Ends this process at once, running no destructor and no atexit handler.
pub(crate) fn exit_now(code: i32) -> ! {
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

/// This machine's name, for the run's name in a shared database: a class
/// sees whose runs bought.
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its whole length, and gethostname writes
    // at most that many bytes.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    if ok && !name.is_empty() {
        name
    } else {
        "host".to_string()
    }
}

/// This process's id as an `i32`, the type every libc call takes.
pub(crate) fn getpid() -> i32 {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { libc::getpid() }
}

/// This thread's id: what glibc records as a mutex's owner. In a buyer,
/// which has one thread, it equals the pid (so only the tests need it).
#[cfg(test)]
pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// The parent's process id; it changes when the parent dies.
pub(crate) fn getppid() -> i32 {
    // SAFETY: getppid takes no arguments and cannot fail.
    unsafe { libc::getppid() }
}

/// Repeats a libc call that returns -1 and sets `errno` on failure until a
/// signal no longer interrupts it; returns its non-negative result.
fn retry_eintr(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let r = call();
        if r >= 0 {
            return Ok(r as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// One `waitpid`; `Ok(None)` when `WNOHANG` found no ended child.
fn wait_pid(pid: i32, flags: libc::c_int) -> io::Result<Option<(i32, Exit)>> {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer for the call.
    let r = retry_eintr(|| unsafe { libc::waitpid(pid, &mut status, flags) } as isize)?;
    Ok((r > 0).then(|| (r as i32, decode(status))))
}

fn decode(status: i32) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

/// Reaps one exited child without blocking, if any has exited.
pub(crate) fn try_reap() -> Option<(i32, Exit)> {
    wait_pid(-1, libc::WNOHANG).ok().flatten()
}

/// Reaps a given child if it has exited, without blocking.
pub(crate) fn try_reap_pid(pid: i32) -> Option<Exit> {
    wait_pid(pid, libc::WNOHANG)
        .ok()
        .flatten()
        .map(|(_, exit)| exit)
}

/// Waits for a given child to exit.
pub(crate) fn reap(pid: i32) -> io::Result<Exit> {
    let (_, exit) = wait_pid(pid, 0)?.expect("waitpid without WNOHANG waits");
    Ok(exit)
}

/// Sends `sig` to `pid`, ignoring a process that is already gone.
pub(crate) fn kill(pid: i32, sig: i32) {
    // SAFETY: kill takes no pointers; a stale pid is only ever one of our
    // own unreaped children, which cannot be recycled before we reap it.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Whether a process with this pid exists.
pub(crate) fn is_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
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

    /// Reaps `pid` if it has ended, without waiting; a reaped child is no
    /// longer listed.
    pub(crate) fn try_reap(&mut self, pid: i32) -> io::Result<Option<Exit>> {
        let exit = wait_pid(pid, libc::WNOHANG)?.map(|(_, exit)| exit);
        if exit.is_some() {
            self.forget(pid);
        }
        Ok(exit)
    }

    /// Ends `pid` politely: SIGTERM, then SIGKILL if it is still there after
    /// `grace`; reaps it either way.
    pub(crate) fn terminate(&mut self, pid: i32, grace: Duration) -> io::Result<Exit> {
        kill(pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        let exit = loop {
            if let Some(exit) = self.try_reap(pid)? {
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

fn supervisor_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [
            libc::SIGCHLD,
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGTSTP,
        ] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Blocks SIGCHLD, SIGINT, SIGTERM, SIGHUP and SIGQUIT so the supervisor can take
/// them one at a time with [`wait_signal`] instead of in a handler. Returns
/// whether they were blocked already (a caller further out holds them).
pub(crate) fn block_supervisor_signals() -> bool {
    let set = supervisor_set();
    // SAFETY: both sets are initialised (old by sigprocmask) and outlive
    // the calls.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        libc::sigismember(&old, libc::SIGINT) == 1
    }
}

/// Undoes [`block_supervisor_signals`]; a signal that arrived meanwhile is
/// delivered now.
pub(crate) fn unblock_supervisor_signals() {
    let set = supervisor_set();
    // SAFETY: as above.
    unsafe {
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// Waits up to `timeout` for one of the blocked supervisor signals and
/// returns it, or `None` on timeout.
pub(crate) fn wait_signal(timeout: Duration) -> Option<i32> {
    let set = supervisor_set();
    let ts = timespec(timeout);
    // SAFETY: set and ts are valid for the call; the info pointer may be null.
    let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

/// Sleeps on a futex word in shared memory while it is `expected`: until a
/// wake, `timeout` (`None`: no limit) or a signal. The caller re-checks the
/// word in a loop either way.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(timespec);
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |ts| ts as *const libc::timespec);
    // SAFETY: word points to a live, aligned u32 and ts (when given) outlives
    // the call. The futex is not FUTEX_PRIVATE: the word lives in a shared
    // mapping that other processes wait on too.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
        );
    }
}

/// Spins until `done` says so or `limit` passes; `true` if it was done.
/// Waking a sleeping process on another core can cost tens of
/// microseconds on a virtual machine, more than a whole scheduled step.
pub(crate) fn spin_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        for _ in 0..32 {
            if done() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= limit {
            return done();
        }
    }
}

/// Wakes every process sleeping on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: as in futex_wait; FUTEX_WAKE only reads the address.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

/// Room for the `pthread_mutex_t` that raw_sync initialises in place.
type MutexRoom = [u64; 8];

const _: () = assert!(std::mem::size_of::<libc::pthread_mutex_t>() <= size_of::<MutexRoom>());

/// The layout of a [`SharedPage`]'s memory.
#[repr(C)]
struct PageLayout<const N: usize> {
    words: [AtomicU32; N],
    mutex: UnsafeCell<MutexRoom>,
}

/// The mapping itself; unmapped on drop.
struct Mapping<const N: usize> {
    ptr: NonNull<PageLayout<N>>,
}

impl<const N: usize> Mapping<N> {
    fn new() -> io::Result<Mapping<N>> {
        // SAFETY: an anonymous mapping with no address hint touches no
        // existing memory; the result is checked against MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size_of::<PageLayout<N>>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).expect("mmap never maps page 0 here");
        Ok(Mapping { ptr })
    }

    fn get(&self) -> &PageLayout<N> {
        // SAFETY: the mapping is page-aligned, zero-filled (a valid layout:
        // atomics at 0, raw mutex bytes) and lives as long as self; every
        // field another process writes is an atomic or inside an UnsafeCell.
        unsafe { self.ptr.as_ref() }
    }
}

impl<const N: usize> Drop for Mapping<N> {
    fn drop(&mut self) {
        // SAFETY: ptr and the size are exactly what mmap returned and took.
        // Only the process that made the mapping drops it: a forked child
        // ends with _exit and drops nothing.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), size_of::<PageLayout<N>>());
        }
    }
}

/// An anonymous `MAP_SHARED` page made before a fork, so that the parent and
/// every child see the very same memory: `N` futex words, all 0 at first, and
/// one process-shared mutex.
pub(crate) struct SharedPage<const N: usize> {
    // Field order matters: the lock handle goes before the memory it uses.
    mutex: Box<dyn LockImpl>,
    map: Mapping<N>,
}

impl<const N: usize> SharedPage<N> {
    /// Maps the page and initialises its mutex.
    pub(crate) fn new() -> io::Result<SharedPage<N>> {
        let map = Mapping::<N>::new()?;
        let room = map.get().mutex.get().cast::<u8>();
        // SAFETY: the room lies inside the live mapping, which outlives the
        // handle (field order), is zeroed and only this handle ever uses it;
        // init_shared checks raw_sync's size for it before writing.
        let mutex = unsafe { crate::mutex::init_shared(room, size_of::<MutexRoom>()) }
            .map_err(|e| io::Error::other(format!("initialising the shared mutex: {e}")))?;
        Ok(SharedPage { mutex, map })
    }

    /// The futex words, shared with every child forked after [`SharedPage::new`].
    pub(crate) fn words(&self) -> &[AtomicU32; N] {
        &self.map.get().words
    }

    /// The process-shared mutex.
    pub(crate) fn mutex(&self) -> &dyn LockImpl {
        &*self.mutex
    }
}

/// One `write(2)`, retried when a signal interrupts it before any byte went.
fn write_some(fd: i32, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is a valid slice for its whole length.
    retry_eintr(|| unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
}

/// Writes all of `buf` to a raw fd (used by children, which avoid std's
/// buffered stdout).
pub(crate) fn write_fd(fd: i32, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = write_some(fd, buf)?;
        buf = &buf[n..];
    }
    Ok(())
}

/// Writes `line` with a single `write(2)`.
///
/// On a pipe a write of at most `PIPE_BUF` bytes is atomic: lines from
/// several processes may interleave, but never tear.
pub(crate) fn write_line(fd: BorrowedFd<'_>, line: &[u8]) -> io::Result<()> {
    debug_assert!(line.len() <= libc::PIPE_BUF);
    if write_some(fd.as_raw_fd(), line)? == line.len() {
        Ok(())
    } else {
        // Only a non-pipe (a terminal, a file) can take part of a line.
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short write of a line",
        ))
    }
}

/// Reads exactly `buf.len()` bytes from a raw fd; `Ok(false)` on end of file.
pub(crate) fn read_exact_fd(fd: i32, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match read_fd(fd, &mut buf[got..])? {
            0 => return Ok(false),
            n => got += n,
        }
    }
    Ok(true)
}

/// Reads what is there (at least one byte, or 0 at end of file).
pub(crate) fn read_fd(fd: i32, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is a valid mutable slice for its length.
    retry_eintr(|| unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// Waits up to `timeout` for `fd` to have data or end of file; `false` on
/// timeout or when a signal cut the wait short.
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

/// A pipe's two ends, closed on drop.
pub(crate) struct Pipe {
    /// The read end.
    pub read: i32,
    /// The write end.
    pub write: i32,
}

impl Pipe {
    /// Opens a pipe whose ends close on exec.
    pub(crate) fn new() -> io::Result<Pipe> {
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

    /// Hands both ends over as owned descriptors: (read end, write end).
    /// Both must still be open.
    pub(crate) fn into_owned(mut self) -> (OwnedFd, OwnedFd) {
        let (read, write) = (self.read, self.write);
        assert!(read >= 0 && write >= 0, "both ends must still be open");
        // This Pipe no longer owns them, so its Drop closes nothing.
        (self.read, self.write) = (-1, -1);
        // SAFETY: both descriptors are open (Pipe::new opened them and the
        // assert shows no close_* ran) and from here on only the OwnedFds
        // own them.
        unsafe { (OwnedFd::from_raw_fd(read), OwnedFd::from_raw_fd(write)) }
    }

    /// Closes the read end (in the process that only writes).
    pub(crate) fn close_read(&mut self) {
        close_fd(&mut self.read);
    }

    /// Closes the write end (in the process that only reads).
    pub(crate) fn close_write(&mut self) {
        close_fd(&mut self.write);
    }
}

/// Closes a descriptor this process inherited and will not use (a forked
/// child's copy of an end it must not hold open).
///
/// # Safety
/// Nothing in this process may use `fd` afterwards, nor close it again:
/// whatever owns it (a [`Pipe`] in the parent's memory) must never be used
/// or dropped in this process, as in a forked child that ends with `_exit`.
pub(crate) unsafe fn close_raw(fd: i32) {
    // SAFETY: the caller promises `fd` is never used or closed again here;
    // closing a descriptor number has no memory effects.
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
pub(crate) fn raise_fd_limit(want: usize) {
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
        assert!(is_alive(getpid()));
        assert!(!is_alive(i32::MAX - 7));
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
        assert_eq!(signal_name(64), "signal 64");
    }

    #[test]
    fn a_pipe_handed_over_still_carries_a_line() {
        let (read, write) = Pipe::new().unwrap().into_owned();
        write_line(std::os::fd::AsFd::as_fd(&write), b"hello\n").unwrap();
        drop(write);
        let mut got = [0u8; 16];
        let n = read_fd(read.as_raw_fd(), &mut got).unwrap();
        assert_eq!(&got[..n], b"hello\n");
        assert_eq!(read_fd(read.as_raw_fd(), &mut got).unwrap(), 0);
    }

    #[test]
    fn a_shared_page_starts_zeroed_with_a_working_mutex() {
        let page = SharedPage::<3>::new().unwrap();
        assert!(
            page.words()
                .iter()
                .all(|w| w.load(std::sync::atomic::Ordering::Relaxed) == 0)
        );
        let guard = page.mutex().lock().unwrap();
        assert!(
            page.mutex()
                .try_lock(raw_sync::Timeout::Val(Duration::ZERO))
                .is_err()
        );
        drop(guard);
        assert!(
            page.mutex()
                .try_lock(raw_sync::Timeout::Val(Duration::ZERO))
                .is_ok()
        );
    }
}
