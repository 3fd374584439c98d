//! The shared-memory segment: its `#[repr(C)]` layout and its mapping.
//!
//! One segment per run, created by the parent before it forks. Every field a
//! buyer and the parent both touch is an atomic, so no access is a data race;
//! `docs/segment.md` draws the layout.

use std::cell::UnsafeCell;
use std::fs::Metadata;
use std::io::Read;
use std::mem::{MaybeUninit, size_of};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};

use raw_sync::locks::LockImpl;
use shared_memory::{Shmem, ShmemConf};

use crate::files::{self, Access, OpenError};
use crate::mutex::{self, SharedMutex};

/// "TKTLAB\0\x01": identifies a ticketlab segment.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"TKTLAB\0\x01");
/// Bumped whenever the layout below changes.
pub(crate) const LAYOUT_VERSION: u32 = 7;
/// Prefix of every segment's name in `/dev/shm`, followed by `<pid>-<nonce>`.
pub(crate) const NAME_PREFIX: &str = "ticketlab-";

/// What a reader checks before trusting the rest.
#[repr(C, align(64))]
pub(crate) struct Header {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`LAYOUT_VERSION`].
    pub version: u32,
    /// Number of buyer slots.
    pub slots: u32,
    /// `size_of::<Slot>()`, so a reader built from other code can tell.
    pub slot_size: u32,
    /// Trace entries reserved per buyer (0 = no trace).
    pub trace_per_worker: u32,
    /// Size of the whole mapping in bytes.
    pub total_size: u64,
}

/// Signals from the parent to every buyer.
#[repr(C, align(64))]
pub(crate) struct Control {
    /// Futex word: 0 while buyers wait at the start line, 1 once released.
    pub start: AtomicU32,
    /// The gate: [`GATE_OPEN`], [`GATE_PAUSED`], [`GATE_SCHEDULED`] or
    /// [`GATE_STOPPING`]. Every
    /// buyer loads it (relaxed) before every shared step, and parks at its
    /// turnstile when it is closed. This one load is all a free run pays.
    pub gate: AtomicU32,
    /// Delay multiplier in thousandths (1000 = the delays as given).
    pub delay_permille: AtomicU32,
    /// Futex word the parent sleeps on while it waits for buyers to park:
    /// bumped by a buyer each time it parks or finishes.
    pub parked: AtomicU32,
    /// Nanoseconds the sale has spent paused, so far: a buyer that waited
    /// for the mutex across a pause takes it out of its lock wait.
    pub paused_ns: AtomicU64,
    /// A database sale shared by other runs: their purchases since this
    /// run began, plus one, as the watcher last read them (0: not read
    /// yet). The live view counts them apart from this run's own.
    pub others_plus_one: AtomicU64,
}

/// The gate is open: buyers run freely.
pub(crate) const GATE_OPEN: u32 = 0;
/// The gate is closed for a pause: buyers park at their next shared step
/// and all go on together when it opens.
pub(crate) const GATE_PAUSED: u32 = 1;
/// The gate is closed for a scheduler: each parked buyer takes exactly one
/// shared step per grant, and delays are skipped (the order is the
/// scheduler's, not the clock's).
pub(crate) const GATE_SCHEDULED: u32 = 2;
/// The gate is closed for good: the sale is stopping. No buyer starts a
/// shared step any more, a buyer [`Slot::committing`] a purchase finishes
/// it, and the parent then ends them all. Delays end early.
pub(crate) const GATE_STOPPING: u32 = 3;

/// In a slot's `next`: the buyer is parked at its turnstile.
pub(crate) const NEXT_PARKED: u32 = 1 << 8;
/// In a slot's `next`: the buyer has taken its last shared step.
pub(crate) const NEXT_DONE: u32 = 1 << 9;

/// The process-shared mutex, who holds it, and the `shm` store's count, all
/// on one cache line: a purchase under the lock then moves one line between
/// cores instead of three.
#[repr(C, align(64))]
pub(crate) struct LockArea {
    /// Room for the `pthread_mutex_t` (40 bytes on x86-64, 48 on aarch64)
    /// that `raw_sync` initialises in place; sized by the compiler from
    /// libc's type, and `mutex::init_shared` checks raw_sync's own size
    /// for this address against it before anything is written.
    pub mutex: UnsafeCell<MaybeUninit<libc::pthread_mutex_t>>,
    /// Pid of the buyer holding the mutex, 0 when free. Written by the holder
    /// right after it acquires and right before it releases, so the parent
    /// can tell when the mutex died with its holder.
    pub holder_pid: AtomicI32,
    /// Index of that buyer, -1 when free.
    pub holder_worker: AtomicI32,
    /// Tickets left in the `shm` store (the seller of the server and queue
    /// stores publishes its count here too, for the view).
    pub count: AtomicI64,
}

// The mutex, its holder and the count must share one cache line.
const _: () = assert!(size_of::<LockArea>() == 64);

/// One buyer's record. Only that buyer writes it while it lives; the parent
/// reads it, and writes `state` once the buyer has been reaped.
#[repr(C, align(64))]
pub(crate) struct Slot {
    /// The buyer's pid, 0 until it has started.
    pub pid: AtomicI32,
    /// Its current [`crate::protocol::Op`] as a number.
    pub state: AtomicU32,
    /// The count the last operation saw or wrote.
    pub value: AtomicI64,
    /// Tickets it believes it bought.
    pub bought: AtomicU64,
    /// Purchases it tried.
    pub attempts: AtomicU64,
    /// Nanoseconds spent waiting for the mutex.
    pub lock_wait_ns: AtomicU64,
    /// File reads that found a half-written or unparsable file.
    pub torn_reads: AtomicU64,
    /// Nanoseconds since the run's epoch when it finished.
    pub finished_ns: AtomicU64,
    /// Sum of the delays it drew, before any live speed factor.
    pub drawn_delay_ns: AtomicU64,
    /// Trace entries written so far (may exceed the room: then it overflowed).
    pub trace_len: AtomicU64,
    /// Compare-and-swaps it lost to another buyer (`--lock atomic`).
    pub failed_swaps: AtomicU64,
    /// The turnstile's futex word: the parent adds one to grant a step.
    pub turn: AtomicU32,
    /// The shared step the buyer is about to take (a [`crate::step::Step`]
    /// number), with [`NEXT_PARKED`] while it waits at its turnstile, or
    /// [`NEXT_DONE`] once it has no step left. The buyer sets the flags;
    /// the parent clears `NEXT_PARKED` when it grants.
    pub next: AtomicU32,
    /// `--lock robust`: times this buyer took the mutex from a dead holder
    /// (`EOWNERDEAD`) and repaired the count.
    pub recoveries: AtomicU32,
    /// The dead holder it last recovered from, as buyer index + 1 (0: none
    /// recorded, e.g. the holder died before it wrote its name).
    pub recovered_from: AtomicU32,
    /// The count it repaired to, the last time.
    pub repaired_to: AtomicI64,
    /// Database stores, `--lock serializable`: transactions the database
    /// refused and this buyer rolled back and tried again.
    pub retries: AtomicU64,
    /// PostgreSQL: this buyer's server process (`pg_backend_pid()`), 0
    /// until it has connected. The watcher asks the server whom it waits
    /// for by this pid.
    pub backend_pid: AtomicI32,
    /// PostgreSQL: whom this buyer's statement waits for, as the watcher
    /// last read `pg_blocking_pids`: 0 nobody, N buyer N (from 1) of this
    /// run, -1 a session of another run.
    pub waits_for: AtomicI32,
    /// 1 while the buyer commits a purchase to the file store: from its
    /// truncate to the record of the purchase in `bought`. A stop lets it
    /// finish before ending it, so the file is whole and agrees with the
    /// sales (`docs/segment.md`, "Stopping a sale").
    pub committing: AtomicU32,
    /// SQLite: statements that met another connection's write lock and
    /// waited for it (each wait counted once, however many tries).
    pub busy_statements: AtomicU32,
}

/// One recorded operation.
#[repr(C)]
pub(crate) struct TraceEntry {
    /// Nanoseconds since the run's epoch.
    pub t_ns: AtomicU64,
    /// The operation in the top byte, the count in the low 56 bits.
    pub word: AtomicU64,
}

const VALUE_BITS: u32 = 56;
const VALUE_MASK: u64 = (1 << VALUE_BITS) - 1;

impl TraceEntry {
    /// Packs an operation code and a count (counts never exceed 10^12 < 2^56).
    pub(crate) fn pack(op: u8, value: i64) -> u64 {
        (u64::from(op) << VALUE_BITS) | (value as u64 & VALUE_MASK)
    }

    /// The inverse of [`TraceEntry::pack`], sign-extending the count.
    pub(crate) fn unpack(word: u64) -> (u8, i64) {
        let op = (word >> VALUE_BITS) as u8;
        let raw = word & VALUE_MASK;
        let value = ((raw << (64 - VALUE_BITS)) as i64) >> (64 - VALUE_BITS);
        (op, value)
    }
}

/// Failures to create or map the segment.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SegmentError {
    /// The OS refused the segment.
    // The cause is in the message, not a `source`: anyhow's `{:#}` would
    // print it a second time.
    #[error("cannot create the shared-memory segment {name}: {cause}")]
    Create {
        /// The segment's name.
        name: String,
        /// What `shared_memory` said.
        cause: shared_memory::ShmemError,
    },
    /// `/dev/shm` cannot hold the segment.
    #[error("/dev/shm has no room for {mib} MiB (the segment for {workers} buyers)")]
    NoRoom {
        /// The segment's size, rounded up to whole MiB.
        mib: usize,
        /// The buyers it has slots for.
        workers: usize,
    },
    /// The segment's memory could not be reserved for another reason.
    #[error("cannot reserve the shared-memory segment {name}: {cause}")]
    Reserve {
        /// The segment's name.
        name: String,
        /// The OS error.
        cause: std::io::Error,
    },
    /// `raw_sync` could not initialise the mutex.
    #[error("cannot initialise the process-shared mutex: {0}")]
    Mutex(String),
}

/// Offsets of each region inside the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Number of buyer slots.
    pub slots: usize,
    /// Trace entries per buyer.
    pub trace_per_worker: usize,
    /// Offset of the control block.
    pub control: usize,
    /// Offset of the lock area.
    pub lock: usize,
    /// Offset of slot 0.
    pub slot0: usize,
    /// Offset of buyer 0's first trace entry.
    pub trace0: usize,
    /// Size of the mapping.
    pub total: usize,
}

impl Layout {
    /// Lays out a segment for `slots` buyers and `trace_per_worker` entries each.
    pub(crate) fn new(slots: usize, trace_per_worker: usize) -> Layout {
        let control = size_of::<Header>();
        let lock = control + size_of::<Control>();
        let slot0 = lock + size_of::<LockArea>();
        let trace0 = slot0 + slots * size_of::<Slot>();
        let total = trace0 + slots * trace_per_worker * size_of::<TraceEntry>();
        Layout {
            slots,
            trace_per_worker,
            control,
            lock,
            slot0,
            trace0,
            total,
        }
    }
}

/// The mapped segment. The parent owns it; its `Drop` unlinks the name.
pub(crate) struct Segment {
    shmem: Shmem,
    layout: Layout,
    /// raw_sync's handle, kept alive with the mapping; `None` for a robust
    /// mutex, which raw_sync cannot make.
    _raw_sync: Option<Box<dyn LockImpl>>,
    /// The `pthread_mutex_t` itself, inside the mapping.
    mutex: NonNull<libc::pthread_mutex_t>,
}

/// Which `pthread_mutex_t` the segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MutexKind {
    /// raw_sync's: default type, process-shared, not robust.
    RawSync,
    /// Process-shared and robust (`--lock robust`), made with libc.
    Robust,
}

impl Segment {
    /// Creates a fresh segment named after this process, zeroed, with an
    /// initialised mutex and header.
    pub(crate) fn create(
        slots: usize,
        trace_per_worker: usize,
        kind: MutexKind,
    ) -> Result<Segment, SegmentError> {
        let layout = Layout::new(slots, trace_per_worker);
        let shmem = create_unique(layout.total)?;
        // Nothing has touched the mapping yet: reserve it first, so a full
        // /dev/shm is a message now and not a SIGBUS at the first write.
        // On failure `shmem` is dropped, which unlinks it.
        reserve(shmem.get_os_id(), layout.total, slots)?;
        let base = shmem.as_ptr();
        // SAFETY: the mapping is `layout.total` bytes long and freshly created
        // by us; `lock` lies inside it and is 64-byte aligned because the
        // mapping is page aligned and every region's size is a multiple of 64.
        // The room is LockArea's `mutex` field, which nothing else uses, and
        // init_shared checks raw_sync's size for it before writing.
        let (raw_sync, at) = unsafe {
            let at = base.add(layout.lock);
            let room = size_of::<UnsafeCell<MaybeUninit<libc::pthread_mutex_t>>>();
            match kind {
                MutexKind::RawSync => {
                    let lock = mutex::init_shared(at, room).map_err(SegmentError::Mutex)?;
                    let at = lock.as_raw().cast::<u8>();
                    (Some(lock), at)
                }
                MutexKind::Robust => {
                    mutex::init_robust(at, room).map_err(SegmentError::Mutex)?;
                    (None, at)
                }
            }
        };
        let segment = Segment {
            shmem,
            layout,
            _raw_sync: raw_sync,
            mutex: NonNull::new(at.cast()).expect("the mutex is in the mapping"),
        };
        let header = segment.header_ptr();
        // SAFETY: no other process has the mapping yet (nothing is forked), so
        // this plain write cannot race; the header lies at offset 0.
        unsafe {
            header.write(Header {
                magic: MAGIC,
                version: LAYOUT_VERSION,
                slots: slots as u32,
                slot_size: size_of::<Slot>() as u32,
                trace_per_worker: trace_per_worker as u32,
                total_size: layout.total as u64,
            });
        }
        segment
            .control()
            .delay_permille
            .store(1000, Ordering::Relaxed);
        segment
            .lock_area()
            .holder_worker
            .store(-1, Ordering::Relaxed);
        Ok(segment)
    }

    /// The segment's name, as it appears in `/dev/shm`.
    #[cfg(test)]
    pub(crate) fn name(&self) -> &str {
        self.shmem.get_os_id()
    }

    /// The region offsets.
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// Called in a forked child: the child must never unlink the parent's segment.
    pub(crate) fn disown(&mut self) {
        self.shmem.set_owner(false);
    }

    fn header_ptr(&self) -> *mut Header {
        self.shmem.as_ptr().cast()
    }

    #[cfg(test)]
    /// The header.
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: written once before any fork and never again.
        unsafe { &*self.header_ptr() }
    }

    fn at<T>(&self, offset: usize) -> &T {
        debug_assert!(offset + size_of::<T>() <= self.layout.total);
        // SAFETY: every caller passes an offset from `self.layout`, inside the
        // mapping and aligned for T; the mapping lives as long as `self`, and
        // all of T's fields are atomics (or the mutex, only touched through
        // pthread calls), so shared references are sound across processes.
        unsafe { &*self.shmem.as_ptr().add(offset).cast::<T>() }
    }

    /// Start signal, pause and delay factor.
    pub(crate) fn control(&self) -> &Control {
        self.at(self.layout.control)
    }

    /// The mutex's holder fields.
    pub(crate) fn lock_area(&self) -> &LockArea {
        self.at(self.layout.lock)
    }

    /// The process-shared mutex (inherited through fork by every buyer).
    pub(crate) fn mutex(&self) -> SharedMutex<'_> {
        // SAFETY: `create` initialised this PTHREAD_PROCESS_SHARED mutex
        // (raw_sync's, or a robust one), inside the mapping, which lives as
        // long as `self`.
        unsafe { SharedMutex::from_raw(self.mutex) }
    }

    /// The `shm` store's count.
    pub(crate) fn count(&self) -> &AtomicI64 {
        &self.lock_area().count
    }

    /// Buyer `i`'s slot.
    pub(crate) fn slot(&self, i: usize) -> &Slot {
        assert!(i < self.layout.slots, "slot {i} out of range");
        self.at(self.layout.slot0 + i * size_of::<Slot>())
    }

    /// Buyer `i`'s trace entries.
    pub(crate) fn trace(&self, i: usize) -> &[TraceEntry] {
        assert!(i < self.layout.slots, "trace {i} out of range");
        let n = self.layout.trace_per_worker;
        let offset = self.layout.trace0 + i * n * size_of::<TraceEntry>();
        if n == 0 {
            return &[];
        }
        // SAFETY: the `n` entries of buyer i lie inside the mapping (see
        // `Layout::new`); TraceEntry is all atomics.
        unsafe {
            std::slice::from_raw_parts(self.shmem.as_ptr().add(offset).cast::<TraceEntry>(), n)
        }
    }
}

/// Where glibc's shm_open puts segments.
const SHM_DIR: &str = "/dev/shm";

/// Creates the mapping under a fresh name. shm_open creates exclusively, so
/// a name someone else already took (planted, or a collision) only costs a
/// retry with another random nonce.
fn create_unique(size: usize) -> Result<Shmem, SegmentError> {
    let mut attempts = 0;
    loop {
        let name = unique_name();
        match ShmemConf::new().os_id(&name).size(size).create() {
            Ok(shmem) => return Ok(shmem),
            Err(shared_memory::ShmemError::MappingIdExists) if attempts < 8 => attempts += 1,
            Err(cause) => return Err(SegmentError::Create { name, cause }),
        }
    }
}

/// Allocates the segment's pages in /dev/shm now. shm_open and ftruncate
/// succeed on a full tmpfs (the file is sparse); only a page touched later
/// finds there is no room, and the kernel says so with SIGBUS.
fn reserve(name: &str, size: usize, workers: usize) -> Result<(), SegmentError> {
    let path = Path::new(SHM_DIR).join(name.trim_start_matches('/'));
    let failed = |cause| SegmentError::Reserve {
        name: name.to_string(),
        cause,
    };
    // We created it exclusively a moment ago, mode 0600, in a sticky
    // directory: only we could have replaced it, and the open checks anyway.
    let file = files::open_regular(&path, Access::ReadWrite).map_err(|e| match e {
        OpenError::Io(cause) => failed(cause),
        OpenError::NotRegular(what) => failed(std::io::Error::other(format!("it is {what}"))),
    })?;
    files::reserve(&file, size as u64).map_err(|cause| {
        if cause.raw_os_error() == Some(libc::ENOSPC) {
            SegmentError::NoRoom {
                mib: size.div_ceil(1 << 20),
                workers,
            }
        } else {
            failed(cause)
        }
    })
}

/// `ticketlab-<pid>-<nonce>`: the pid lets a later run tell that the
/// creator is gone; the nonce is random, so nobody can claim the name first.
fn unique_name() -> String {
    format!("{NAME_PREFIX}{}-{}", std::process::id(), files::nonce())
}

/// The pid that created a segment or temporary file named `ticketlab-<pid>-…`.
pub(crate) fn creator_pid(file_name: &str) -> Option<i32> {
    let rest = file_name.strip_prefix(NAME_PREFIX)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok().filter(|&p| p > 0)
}

/// Removes segments and temporary stores left by runs whose creator is
/// gone (a parent killed with SIGKILL cannot clean up after itself).
/// Returns how many it removed.
///
/// Only what a run creates is removed, and only if it is this user's: in
/// `shm_dir` a regular file that starts with [`MAGIC`]; in `tmp_dir` a
/// store directory exactly as a run makes it (see
/// `remove_stale_store_dir`). Nothing is followed through a symbolic link;
/// a FIFO, a link, another user's file or anything unexpected is left alone.
pub(crate) fn remove_stale(shm_dir: &Path, tmp_dir: &Path) -> usize {
    let me = files::euid();
    let mut removed = 0;
    for (dir, remove) in [
        (
            shm_dir,
            remove_stale_segment as fn(&Path, &Metadata, u32) -> bool,
        ),
        (tmp_dir, remove_stale_store_dir),
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(creator_pid) else {
                continue;
            };
            if crate::process::is_alive(pid) {
                continue;
            }
            // DirEntry::metadata does not follow a symbolic link.
            let Ok(meta) = entry.metadata() else { continue };
            if meta.uid() == me && remove(&entry.path(), &meta, me) {
                removed += 1;
            }
        }
    }
    removed
}

/// Removes `path` if it is a segment: a regular file starting with [`MAGIC`].
fn remove_stale_segment(path: &Path, meta: &Metadata, _me: u32) -> bool {
    if !meta.is_file() {
        return false;
    }
    let Ok(mut file) = files::open_regular(path, Access::Read) else {
        return false;
    };
    let mut magic = [0u8; 8];
    // The same file the listing saw, and it carries the magic.
    let same = file
        .metadata()
        .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
    same && file.read_exact(&mut magic).is_ok()
        && u64::from_le_bytes(magic) == MAGIC
        && std::fs::remove_file(path).is_ok()
}

/// Removes `dir` if it is exactly a temporary store's private directory as
/// a run makes it: named `ticketlab-<pid>-<nonce>`, a real directory of
/// ours with mode 0700, holding nothing but what that store keeps there:
/// the file store's `store.json` that is a ticket store, `{"count": N}`
/// (`StoreFile::temporary`), or empty (a run killed mid-rewrite), or the SQLite store's `sale.sqlite` that is a
/// SQLite database (or still empty), with only its own journal files
/// beside it (`TempDatabase`). A name can be planted by anyone and a
/// directory made by hand, so each of these must hold; anything else (an
/// empty directory, a 0755 one, notes in a file called `store.json`, a
/// file SQLite would not have made) is somebody's data and stays.
fn remove_stale_store_dir(dir: &Path, meta: &Metadata, me: u32) -> bool {
    use crate::store::file::TEMP_STORE_NAME;
    let named_ours = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(is_run_name);
    // `meta` is from lstat: a symbolic link is not a directory here.
    if !named_ours || !meta.is_dir() || meta.uid() != me || meta.mode() & 0o7777 != 0o700 {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let Ok(names) = entries
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<Vec<_>, _>>()
    else {
        return false;
    };
    let ours = if names.len() == 1 && names[0] == TEMP_STORE_NAME {
        is_stale_file_store(&dir.join(TEMP_STORE_NAME), me)
    } else {
        is_stale_sqlite_store(dir, &names, me)
    };
    // rmdir refuses a directory that is not empty: nothing else goes with
    // it, even if a file appeared since the listing.
    ours && names
        .iter()
        .all(|n| std::fs::remove_file(dir.join(n)).is_ok())
        && std::fs::remove_dir(dir).is_ok()
}

/// Whether `store` is the file store's temporary store: a regular file of
/// ours, short enough to be a store, that reads as one or is empty: a run
/// killed whole (its buyers with it) between a buyer's truncate and its
/// write leaves it so, and an empty file holds nobody's data.
fn is_stale_file_store(store: &Path, me: u32) -> bool {
    use crate::store::file::{MAX_STORE_BYTES, is_store_text};
    // No link followed, no FIFO waited on; then the open file itself must
    // be ours and short enough to be a store, and read as one.
    let Ok(mut file) = files::open_regular(store, Access::Read) else {
        return false;
    };
    let small_and_ours = file
        .metadata()
        .is_ok_and(|m| m.uid() == me && m.len() <= MAX_STORE_BYTES as u64);
    small_and_ours
        && matches!(
            files::read_capped(&mut file, MAX_STORE_BYTES),
            Ok(Some(bytes)) if bytes.is_empty() || is_store_text(&bytes)
        )
}

/// Whether `names` in `dir` are the SQLite store's temporary database and
/// nothing else: `sale.sqlite`, a regular file of ours that no other user
/// may read (as `TempDatabase` creates it), empty or starting with
/// SQLite's header, and beside it only its own journal files, each a
/// private regular file of ours.
fn is_stale_sqlite_store(dir: &Path, names: &[std::ffi::OsString], me: u32) -> bool {
    use crate::store::database::{SQLITE_HEADER, SQLITE_SIDE_FILES, TEMP_DATABASE_NAME};
    let known = |n: &std::ffi::OsString| {
        n.to_str().is_some_and(|n| {
            n.strip_prefix(TEMP_DATABASE_NAME)
                .is_some_and(|rest| rest.is_empty() || SQLITE_SIDE_FILES.contains(&rest))
        })
    };
    if !names.iter().any(|n| n == TEMP_DATABASE_NAME) || !names.iter().all(known) {
        return false;
    }
    let private_and_ours = |file: &std::fs::File| {
        file.metadata()
            .is_ok_and(|m| m.uid() == me && m.mode() & 0o077 == 0)
    };
    for name in names {
        let Ok(mut file) = files::open_regular(&dir.join(name), Access::Read) else {
            return false;
        };
        if !private_and_ours(&file) {
            return false;
        }
        if name == TEMP_DATABASE_NAME {
            let mut header = Vec::new();
            let read = (&mut file)
                .take(SQLITE_HEADER.len() as u64)
                .read_to_end(&mut header);
            if read.is_err() || !(header.is_empty() || header == SQLITE_HEADER) {
                return false;
            }
        }
    }
    true
}

/// Whether `name` is exactly `ticketlab-<pid>-<nonce>`, as a run names what
/// it creates: a pid in plain decimal and a nonce of [`files::nonce`]'s shape.
fn is_run_name(name: &str) -> bool {
    let Some((pid, nonce)) = name
        .strip_prefix(NAME_PREFIX)
        .and_then(|rest| rest.split_once('-'))
    else {
        return false;
    };
    let plain_decimal =
        !pid.is_empty() && !pid.starts_with('0') && pid.bytes().all(|b| b.is_ascii_digit());
    plain_decimal && creator_pid(name).is_some() && files::is_nonce(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_cache_line_aligned() {
        let layout = Layout::new(7, 3);
        assert_eq!(
            size_of::<LockArea>(),
            64,
            "mutex, holder and count share one line"
        );
        for offset in [layout.control, layout.lock, layout.slot0, layout.trace0] {
            assert_eq!(offset % 64, 0, "offset {offset}");
        }
        assert_eq!(size_of::<Slot>(), 128);
        assert_eq!(layout.total, layout.trace0 + 7 * 3 * 16);
    }

    #[test]
    fn trace_words_round_trip_negative_and_large_counts() {
        for (op, v) in [(1u8, 0i64), (9, -3), (255, 1_000_000_000_000), (4, -1)] {
            assert_eq!(TraceEntry::unpack(TraceEntry::pack(op, v)), (op, v));
        }
    }

    #[test]
    fn creator_pid_reads_only_our_names() {
        assert_eq!(creator_pid("ticketlab-1234-00ff00ff01"), Some(1234));
        assert_eq!(creator_pid("ticketlab-1234-7.json"), Some(1234));
        assert_eq!(creator_pid("ticketlab-x-1"), None);
        assert_eq!(creator_pid("other-1234-1"), None);
    }

    #[test]
    fn run_names_are_exactly_pid_and_nonce() {
        assert!(is_run_name(&unique_name()));
        assert!(is_run_name("ticketlab-1234-00ff00ff00ff00ff"));
        for bad in [
            "ticketlab-1234-00ff00ff01",
            "ticketlab-1234-00ff00ff00ff00ff.json",
            "ticketlab-1234-00FF00FF00FF00FF",
            "ticketlab-+1234-00ff00ff00ff00ff",
            "ticketlab-01234-00ff00ff00ff00ff",
            "ticketlab--00ff00ff00ff00ff",
            "ticketlab-0-00ff00ff00ff00ff",
        ] {
            assert!(!is_run_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_segment_is_removed_when_dropped() {
        let segment = Segment::create(2, 0, MutexKind::RawSync).unwrap();
        let path = Path::new("/dev/shm").join(segment.name().trim_start_matches('/'));
        assert!(path.exists());
        assert_eq!(segment.header().magic, MAGIC);
        assert_eq!(
            segment.control().delay_permille.load(Ordering::Relaxed),
            1000
        );
        drop(segment);
        assert!(!path.exists());
    }
}
