//! The sale's process-shared mutex, at the OS edge.
//!
//! `raw_sync` initialises a plain `pthread_mutex_t` (`PTHREAD_PROCESS_SHARED`,
//! default type) inside the segment; that is the mutex the course teaches,
//! and it is not robust: a holder that dies keeps it for ever. This handle
//! takes and releases it, and lets the parent look inside it, which is how a
//! dead holder is found in every window (`docs/segment.md` gives the
//! argument):
//!
//! - the lock word (glibc's `__lock`, offset 0): 0 free, 1 taken, 2 taken
//!   with sleepers; it is also the futex word the sleepers wait on;
//! - the owner (glibc's `__owner`, offset 8): the holder's thread id,
//!   written right after the word is taken and cleared right before it is
//!   released. Buyers are single-threaded, so a thread id is a pid.
//!
//! `--lock robust` uses a second kind, initialised here with libc directly
//! ([`init_robust`]), since raw_sync has no robust option: the same
//! `pthread_mutex_t`, process-shared and `PTHREAD_MUTEX_ROBUST`. The kernel
//! marks it when its holder dies, and the next to lock it is told so
//! (`EOWNERDEAD`, a [`Held`] that [`Held::owner_died`]) and must make it
//! consistent again ([`SharedMutex::consistent`]) before releasing it.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// Byte offset of glibc's `__owner` in `pthread_mutex_t` (x86-64 and
/// aarch64 alike); a unit test checks it against a real lock.
const OWNER_OFFSET: usize = 8;

/// Proof that this process holds the mutex: only [`SharedMutex::try_lock`]
/// and [`SharedMutex::lock`] make one, and [`SharedMutex::unlock`] takes it
/// back, so nothing can unlock a mutex it does not hold.
///
/// A robust mutex can be taken from a holder that died: then `owner_died`
/// is set until [`SharedMutex::consistent`] clears it.
#[derive(Debug)]
#[must_use = "a held mutex must be released with SharedMutex::unlock"]
pub(crate) struct Held {
    owner_died: bool,
}

impl Held {
    /// Taken with a plain success.
    const CLEAN: Held = Held { owner_died: false };
    /// Taken with `EOWNERDEAD`: the last holder of this robust mutex died
    /// holding it, and whatever it guarded may be half-changed.
    const FROM_THE_DEAD: Held = Held { owner_died: true };

    /// Whether the last holder died holding the mutex and it has not been
    /// made consistent yet.
    #[inline(always)]
    pub(crate) fn owner_died(&self) -> bool {
        self.owner_died
    }

    fn from_code(code: i32) -> Option<Held> {
        match code {
            0 => Some(Held::CLEAN),
            libc::EOWNERDEAD => Some(Held::FROM_THE_DEAD),
            _ => None,
        }
    }
}

/// A handle on a `pthread_mutex_t` that lives in a shared mapping.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SharedMutex<'a> {
    raw: NonNull<libc::pthread_mutex_t>,
    mapping: PhantomData<&'a ()>,
}

impl<'a> SharedMutex<'a> {
    /// A handle on the mutex at `raw`.
    ///
    /// # Safety
    /// `raw` points to a `pthread_mutex_t` initialised with
    /// `PTHREAD_PROCESS_SHARED`, inside a mapping that outlives `'a`.
    pub(crate) unsafe fn from_raw(raw: NonNull<libc::pthread_mutex_t>) -> SharedMutex<'a> {
        SharedMutex {
            raw,
            mapping: PhantomData,
        }
    }

    /// Takes the mutex if it is free, without waiting. A robust mutex whose
    /// holder died is free in this sense: it is taken, and the [`Held`]
    /// says the owner died (`EOWNERDEAD` is a success with news, never a
    /// failure, or the mutex would be held by a process that thinks not).
    #[inline(always)]
    pub(crate) fn try_lock(self) -> Option<Held> {
        // SAFETY: `from_raw`'s promise: an initialised mutex in live memory.
        Held::from_code(unsafe { libc::pthread_mutex_trylock(self.raw.as_ptr()) })
    }

    /// Waits for the mutex, sleeping on its futex word.
    pub(crate) fn lock(self) -> Result<Held, std::io::Error> {
        // SAFETY: as in `try_lock`.
        let code = unsafe { libc::pthread_mutex_lock(self.raw.as_ptr()) };
        Held::from_code(code).ok_or_else(|| std::io::Error::from_raw_os_error(code))
    }

    /// Marks a robust mutex taken from a dead holder consistent again, once
    /// what it guards has been repaired. Without this the unlock would make
    /// it unrecoverable: every later lock fails with `ENOTRECOVERABLE`.
    pub(crate) fn consistent(self, held: &mut Held) -> Result<(), std::io::Error> {
        if !held.owner_died {
            return Ok(());
        }
        // SAFETY: as in `try_lock`; `held` proves this process holds it,
        // which pthread_mutex_consistent requires.
        match unsafe { libc::pthread_mutex_consistent(self.raw.as_ptr()) } {
            0 => {
                held.owner_died = false;
                Ok(())
            }
            errno => Err(std::io::Error::from_raw_os_error(errno)),
        }
    }

    /// Releases the mutex this process holds.
    #[inline(always)]
    pub(crate) fn unlock(self, held: Held) -> Result<(), std::io::Error> {
        let Held { .. } = held;
        // SAFETY: as in `try_lock`; `held` proves this process took it.
        match unsafe { libc::pthread_mutex_unlock(self.raw.as_ptr()) } {
            0 => Ok(()),
            errno => Err(std::io::Error::from_raw_os_error(errno)),
        }
    }

    fn word(self) -> &'a AtomicU32 {
        // SAFETY: the lock word is the first, 4-byte-aligned u32 of the
        // mutex, alive for 'a; glibc changes it only with atomic
        // instructions, so reading it through an atomic is sound.
        unsafe { AtomicU32::from_ptr(self.raw.as_ptr().cast::<u32>()) }
    }

    fn owner_field(self) -> &'a AtomicI32 {
        // SAFETY: `__owner` is the aligned i32 at OWNER_OFFSET inside the
        // mutex, alive for 'a. glibc writes it with plain stores only while
        // it holds the lock word; this side only ever reads or writes it
        // atomically, and a torn read of an aligned i32 cannot happen.
        unsafe {
            AtomicI32::from_ptr(
                self.raw
                    .as_ptr()
                    .cast::<u8>()
                    .add(OWNER_OFFSET)
                    .cast::<i32>(),
            )
        }
    }

    /// What the parent sees when it looks inside the mutex.
    pub(crate) fn inspect(self) -> MutexState {
        let word = self.word().load(Ordering::Acquire);
        if word == 0 {
            return MutexState::Free;
        }
        match self.owner_field().load(Ordering::Acquire) {
            0 => MutexState::TakenNoOwner,
            pid => MutexState::Owned(pid),
        }
    }

    /// Wakes every process sleeping on the mutex's futex word. A waiter
    /// woken for nothing finds the word taken and sleeps again, so this is
    /// always harmless; after a buyer dies it is what rescues the waiters a
    /// lost wake-up would strand.
    pub(crate) fn wake_all_waiters(self) {
        crate::process::futex_wake_all(self.word());
    }

    /// Fault injection: makes the mutex look as it does for the few
    /// instructions inside `pthread_mutex_lock` and `pthread_mutex_unlock`
    /// where the word is taken but no owner is recorded.
    pub(crate) fn forget_owner(self, _held: &Held) {
        self.owner_field().store(0, Ordering::Release);
    }

    /// Fault injection: sleeps on the word exactly as glibc's lock does when
    /// the mutex is taken (swap in 2, wait while 2) and returns once woken,
    /// *without* taking the mutex: a waiter that dies right after this
    /// leaves the word 0 with sleepers behind it, a lost wake-up. Returns
    /// `None` if the mutex turned out free (then it is left free).
    pub(crate) fn wait_until_woken(self) -> Option<()> {
        let word = self.word();
        if word.swap(2, Ordering::Acquire) == 0 {
            // It was free: we took it with a value glibc never writes for
            // an uncontended lock; give it back the way unlock would.
            word.store(0, Ordering::Release);
            crate::process::futex_wake_all(word);
            return None;
        }
        crate::process::futex_wait(word, 2, None);
        Some(())
    }
}

/// Initialises raw_sync's process-shared mutex at `at`, in the `room` bytes
/// reserved there, and returns raw_sync's handle on it.
///
/// raw_sync may pad the address up to pointer alignment, so what it needs
/// depends on `at`: its own `size_of(Some(at))` is asked first, and a room
/// too small is an error before a byte is written, not a write past the
/// room into the next field (nor a panic).
///
/// # Safety
/// `room` bytes from `at` are writable, used by nothing else, and outlive
/// the returned handle and every [`SharedMutex`] made from it.
pub(crate) unsafe fn init_shared(
    at: *mut u8,
    room: usize,
) -> Result<Box<dyn raw_sync::locks::LockImpl>, String> {
    use raw_sync::locks::{LockInit, Mutex};
    let needed = Mutex::size_of(Some(at));
    if needed > room {
        return Err(format!(
            "raw_sync's mutex needs {needed} bytes at {at:p}, but only {room} are reserved"
        ));
    }
    // SAFETY: the caller's promise, and the check above: raw_sync writes at
    // most `needed` bytes from `at`, all inside the room. The data pointer
    // is unused.
    let (mutex, _) = unsafe { Mutex::new(at, std::ptr::null_mut()) }.map_err(|e| e.to_string())?;
    Ok(mutex)
}

/// Initialises a robust, process-shared `pthread_mutex_t` at `at`, in the
/// `room` bytes reserved there: raw_sync has no robust option, so this is
/// libc's own `pthread_mutex_init` with `PTHREAD_MUTEX_ROBUST` and
/// `PTHREAD_PROCESS_SHARED`.
///
/// # Safety
/// `room` bytes from `at` are writable, used by nothing else, and outlive
/// every [`SharedMutex`] made from them.
pub(crate) unsafe fn init_robust(at: *mut u8, room: usize) -> Result<(), String> {
    let mutex = at.cast::<libc::pthread_mutex_t>();
    if room < size_of::<libc::pthread_mutex_t>() || !mutex.is_aligned() {
        return Err(format!(
            "a robust mutex needs {} aligned bytes at {at:p}, but only {room} are reserved",
            size_of::<libc::pthread_mutex_t>()
        ));
    }
    let fail =
        |what: &str, code: i32| format!("{what}: {}", std::io::Error::from_raw_os_error(code));
    let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: `attr` is room for an attribute object, initialised by the
    // first call before the others read it and destroyed at the end; the
    // mutex room is the caller's promise and was checked for size and
    // alignment above.
    unsafe {
        let code = libc::pthread_mutexattr_init(attr.as_mut_ptr());
        if code != 0 {
            return Err(fail("pthread_mutexattr_init", code));
        }
        let set = [
            (
                "pthread_mutexattr_setpshared",
                libc::pthread_mutexattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED),
            ),
            (
                "pthread_mutexattr_setrobust",
                libc::pthread_mutexattr_setrobust(attr.as_mut_ptr(), libc::PTHREAD_MUTEX_ROBUST),
            ),
        ];
        let result = match set.iter().find(|(_, code)| *code != 0) {
            Some((what, code)) => Err(fail(what, *code)),
            None => match libc::pthread_mutex_init(mutex, attr.as_ptr()) {
                0 => Ok(()),
                code => Err(fail("pthread_mutex_init", code)),
            },
        };
        libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
        result
    }
}

/// The mutex as the parent finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MutexState {
    /// The word is 0.
    Free,
    /// The word is taken and glibc recorded this owner.
    Owned(i32),
    /// The word is taken and no owner is recorded: a holder is inside
    /// `pthread_mutex_lock` or `pthread_mutex_unlock`, for a few
    /// instructions if it lives, for ever if it died there.
    TakenNoOwner,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::UnsafeCell;
    use std::mem::MaybeUninit;

    struct Owned(Box<UnsafeCell<MaybeUninit<libc::pthread_mutex_t>>>);

    impl Owned {
        fn new() -> Owned {
            let cell = Box::new(UnsafeCell::new(MaybeUninit::zeroed()));
            // SAFETY: the cell is zeroed, aligned room for a mutex; raw_sync
            // initialises it in place exactly as it does in the segment.
            let (lock, _) = unsafe {
                <raw_sync::locks::Mutex as raw_sync::locks::LockInit>::new(
                    cell.get().cast(),
                    std::ptr::null_mut(),
                )
            }
            .unwrap();
            std::mem::forget(lock);
            Owned(cell)
        }
        fn handle(&self) -> SharedMutex<'_> {
            // SAFETY: initialised above and alive as long as self.
            unsafe { SharedMutex::from_raw(NonNull::new(self.0.get().cast()).unwrap()) }
        }
    }

    #[test]
    fn a_room_too_small_for_raw_sync_is_an_error_before_any_write() {
        // 128 bytes, 8-byte aligned: room enough that even a write past the
        // claimed room stays inside, so a missing check fails, not crashes.
        let mut buf = Box::new([0u64; 16]);
        let base = buf.as_mut_ptr().cast::<u8>();
        let exact = size_of::<libc::pthread_mutex_t>();
        // SAFETY: every range below lies inside `buf`, which outlives each
        // handle (dropped at once; raw_sync's drop touches nothing).
        unsafe {
            let short = init_shared(base, exact - 1);
            assert!(short.is_err(), "a room one byte short was accepted");
            // raw_sync pads an odd address up to pointer alignment.
            let unaligned = init_shared(base.add(1), exact);
            assert!(unaligned.is_err(), "the padding was not counted");
            assert!(buf.iter().all(|&w| w == 0), "refused, yet written");
            drop(init_shared(base, exact).expect("exactly enough room"));
        }
    }

    #[test]
    fn a_robust_mutex_taken_from_a_dead_holder_says_so_until_made_consistent() {
        let room = size_of::<libc::pthread_mutex_t>();
        // Shared with the child, as the segment is: a heap copy would not be.
        // SAFETY: an anonymous shared mapping, no pointer passed in.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(at, libc::MAP_FAILED);
        // SAFETY: the mapping is page-aligned room for a mutex, alive until
        // the munmap at the end.
        unsafe { init_robust(at.cast(), room) }.unwrap();
        // SAFETY: initialised above; unmapped only after the last use.
        let mutex = unsafe { SharedMutex::from_raw(NonNull::new(at.cast()).unwrap()) };
        // A forked child takes it and dies holding it; the kernel marks it.
        // SAFETY: the test process may be multi-threaded, so the child
        // makes only the lock call and _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: see above; the child never returns into the harness.
            unsafe {
                libc::pthread_mutex_lock(at.cast());
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: waitpid writes the status into a live i32.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        let mut held = mutex
            .try_lock()
            .expect("a dead holder's robust mutex is taken");
        assert!(held.owner_died());
        mutex.consistent(&mut held).unwrap();
        assert!(!held.owner_died());
        mutex.unlock(held).unwrap();
        let held = mutex.lock().unwrap();
        assert!(!held.owner_died(), "consistent again");
        mutex.unlock(held).unwrap();
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(at, 4096) };
    }

    #[test]
    fn glibc_records_the_owner_where_we_look() {
        let m = Owned::new();
        let mutex = m.handle();
        assert_eq!(mutex.inspect(), MutexState::Free);
        let held = mutex.try_lock().expect("free");
        assert_eq!(mutex.inspect(), MutexState::Owned(crate::process::gettid()));
        assert!(mutex.try_lock().is_none());
        mutex.forget_owner(&held);
        assert_eq!(mutex.inspect(), MutexState::TakenNoOwner);
        mutex.unlock(held).unwrap();
        assert_eq!(mutex.inspect(), MutexState::Free);
        let held = mutex.lock().unwrap();
        mutex.unlock(held).unwrap();
    }
}
