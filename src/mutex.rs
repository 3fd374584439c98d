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

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// Byte offset of glibc's `__owner` in `pthread_mutex_t` (x86-64 and
/// aarch64 alike); a unit test checks it against a real lock.
const OWNER_OFFSET: usize = 8;

/// Proof that this process holds the mutex: only [`SharedMutex::try_lock`]
/// and [`SharedMutex::lock`] make one, and [`SharedMutex::unlock`] takes it
/// back, so nothing can unlock a mutex it does not hold.
#[derive(Debug)]
#[must_use = "a held mutex must be released with SharedMutex::unlock"]
pub(crate) struct Held(());

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

    /// Takes the mutex if it is free, without waiting.
    #[inline(always)]
    pub(crate) fn try_lock(self) -> Option<Held> {
        // SAFETY: `from_raw`'s promise: an initialised mutex in live memory.
        (unsafe { libc::pthread_mutex_trylock(self.raw.as_ptr()) } == 0).then_some(Held(()))
    }

    /// Waits for the mutex, sleeping on its futex word.
    pub(crate) fn lock(self) -> Result<Held, std::io::Error> {
        // SAFETY: as in `try_lock`.
        match unsafe { libc::pthread_mutex_lock(self.raw.as_ptr()) } {
            0 => Ok(Held(())),
            errno => Err(std::io::Error::from_raw_os_error(errno)),
        }
    }

    /// Releases the mutex this process holds.
    #[inline(always)]
    pub(crate) fn unlock(self, held: Held) -> Result<(), std::io::Error> {
        let Held(()) = held;
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
