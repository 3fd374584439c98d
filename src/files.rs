//! The file system's OS edge: how ticketlab opens, locks and reserves its
//! files so that another local user can neither redirect nor stall a sale.
//!
//! Every store file and segment is opened through [`open_regular`]: it never
//! follows a symbolic link in the last component (`O_NOFOLLOW`, so a link
//! planted at a known name cannot aim a write at someone else's file), never
//! waits (`O_NONBLOCK`: opening a FIFO or some devices would otherwise block
//! until a peer turns up, with the stop signals blocked), never takes a
//! terminal as the controlling one (`O_NOCTTY`), and then checks with fstat
//! that what it opened is a regular file. The few calls std lacks (flock,
//! posix_fallocate, geteuid) are wrapped here behind safe functions.

use std::fs::{File, FileType, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How [`open_regular`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read only; the file must exist.
    Read,
    /// Write only; the file must exist.
    Write,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write, creating the file (mode 0666 less the umask, like
    /// any file a user's command creates) if nothing is at the path.
    ReadWriteCreate,
}

/// Why [`open_regular`] refused a path.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Something other than a regular file is there: "a FIFO",
    /// "a symbolic link", ...
    NotRegular(&'static str),
    /// The OS refused the open or the fstat.
    Io(io::Error),
}

/// Opens the regular file at `path`: no symbolic link followed, no wait, no
/// controlling terminal, and a regular file or nothing.
pub(crate) fn open_regular(path: &Path, access: Access) -> Result<File, OpenError> {
    let mut options = OpenOptions::new();
    match access {
        Access::Read => options.read(true),
        Access::Write => options.write(true),
        Access::ReadWrite => options.read(true).write(true),
        Access::ReadWriteCreate => options.read(true).write(true).create(true),
    };
    // O_NONBLOCK stays set on the descriptor; reads and writes of a regular
    // file ignore it, so it only matters for the open itself.
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
    let file = options.open(path).map_err(|e| {
        // O_NOFOLLOW says ELOOP for a link in the last component; ELOOP can
        // also mean a loop further up, which stays an ordinary OS error.
        let is_link = || std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink());
        if e.raw_os_error() == Some(libc::ELOOP) && is_link() {
            OpenError::NotRegular("a symbolic link")
        } else {
            OpenError::Io(e)
        }
    })?;
    let kind = file.metadata().map_err(OpenError::Io)?.file_type();
    if !kind.is_file() {
        return Err(OpenError::NotRegular(describe(kind)));
    }
    Ok(file)
}

/// Creates a new file at `path`, mode 0600, failing if anything (a file, a
/// link, a FIFO) is already there.
pub(crate) fn create_new_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
}

/// Creates a new directory `<parent>/<prefix><random nonce>`, mode 0700,
/// exclusively: mkdir fails rather than reuse anything already at the name,
/// and the nonce is drawn at random, so nobody can plant anything there
/// ahead of us.
pub(crate) fn create_private_dir(parent: &Path, prefix: &str) -> io::Result<PathBuf> {
    let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
    for _ in 0..16 {
        let dir = parent.join(format!("{prefix}{}", nonce()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                // The umask may have taken bits away; set exactly 0700 through
                // the directory itself, not its name.
                let opened = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
                    .open(&dir)
                    .and_then(|d| d.set_permissions(Permissions::from_mode(0o700)));
                if let Err(e) = opened {
                    let _ = std::fs::remove_dir(&dir);
                    return Err(e);
                }
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// A fresh random nonce for a name nobody can claim first: 16 lowercase
/// hex digits. The stale sweep recognises our names by exactly this shape
/// ([`is_nonce`]), so both live here.
pub(crate) fn nonce() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Whether `s` is shaped like a [`nonce`]: 16 lowercase hex digits.
pub(crate) fn is_nonce(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Reads the rest of `file`, at most `cap` bytes: `None` if there is more.
/// A store file is a few dozen bytes, so nothing longer is worth reading.
pub(crate) fn read_capped(file: &mut File, cap: usize) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    file.take(cap as u64 + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() <= cap).then_some(bytes))
}

/// What kind of file this is, for a message: "a FIFO", "a directory", ...
pub(crate) fn describe(kind: FileType) -> &'static str {
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// Takes an exclusive flock on `file` without waiting: `false` if another
/// open file description holds a lock on it. The lock lasts until every
/// descriptor of this open file description is closed (forked children
/// share it, and die with the parent).
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: flock takes only a descriptor, which `file` keeps open for the
    // whole call; it touches no memory of ours.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// The pid that holds a flock on `file`, as `/proc/locks` tells it. A flock
/// records no owner that fcntl could report, but the kernel lists the pid
/// that took it, which leaves nothing behind on disk (unlike a pid file).
pub(crate) fn flock_holder(file: &File) -> Option<i32> {
    let meta = file.metadata().ok()?;
    let dev = format!(
        "{:02x}:{:02x}",
        libc::major(meta.dev()),
        libc::minor(meta.dev())
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    // "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"; a waiter's line has
    // "->" after the number.
    let flocks: Vec<(i32, &str, u64)> = locks
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().filter(|f| *f != "->").collect();
            let [_, "FLOCK", _, _, pid, id, ..] = fields.as_slice() else {
                return None;
            };
            let (dev, ino) = id.rsplit_once(':')?;
            Some((pid.parse().ok()?, dev, ino.parse().ok()?))
        })
        .filter(|&(_, _, ino)| ino == meta.ino())
        .collect();
    if let Some(&(pid, _, _)) = flocks.iter().find(|(_, d, _)| *d == dev) {
        return Some(pid);
    }
    // Some file systems (overlayfs) show fstat another device than the one
    // the lock is listed under: the inode alone will do if it names one pid.
    let (first, rest) = flocks.split_first()?;
    rest.iter().all(|l| l.0 == first.0).then_some(first.0)
}

/// Allocates `len` bytes of `file` on its file system now, so that a full
/// file system says ENOSPC here instead of SIGBUS at the first touch of a
/// page of a mapping.
pub(crate) fn reserve(file: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    loop {
        // SAFETY: posix_fallocate takes only a descriptor, which `file` keeps
        // open for the call, and two integers.
        let r = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        match r {
            0 => return Ok(()),
            libc::EINTR => continue,
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// This process's effective uid: whose files the stale sweep may remove.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_regular_files_and_never_waits() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(open_regular(&file, Access::Read).is_ok());
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(matches!(
            open_regular(&link, Access::Write),
            Err(OpenError::NotRegular("a symbolic link"))
        ));
        assert!(matches!(
            open_regular(dir.path(), Access::Read),
            Err(OpenError::NotRegular("a directory"))
        ));
        assert!(matches!(
            open_regular(Path::new("/dev/null"), Access::ReadWriteCreate),
            Err(OpenError::NotRegular("a character device"))
        ));
    }

    #[test]
    fn a_capped_read_refuses_what_is_too_long() {
        let mut zero = File::open("/dev/zero").unwrap();
        assert_eq!(read_capped(&mut zero, 16).unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789abcdef").unwrap();
        let mut file = File::open(&path).unwrap();
        assert_eq!(read_capped(&mut file, 16).unwrap().unwrap().len(), 16);
    }

    #[test]
    fn a_second_flock_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let first = File::create(&path).unwrap();
        let second = File::open(&path).unwrap();
        assert!(try_lock_exclusive(&first).unwrap());
        assert!(!try_lock_exclusive(&second).unwrap());
        assert_eq!(flock_holder(&second), Some(std::process::id() as i32));
        drop(first);
        assert!(try_lock_exclusive(&second).unwrap());
    }

    #[test]
    fn a_nonce_has_the_shape_the_sweep_looks_for() {
        assert!(is_nonce(&nonce()));
        for bad in [
            "",
            "0123456789abcde",
            "0123456789abcdef0",
            "0123456789ABCDEF",
        ] {
            assert!(!is_nonce(bad), "{bad}");
        }
    }

    #[test]
    fn a_private_dir_is_0700_and_new() {
        let parent = tempfile::tempdir().unwrap();
        let dir = create_private_dir(parent.path(), "p-").unwrap();
        let meta = std::fs::symlink_metadata(&dir).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o777, 0o700);
        let file = create_new_private(&dir.join("s")).unwrap();
        assert_eq!(file.metadata().unwrap().mode() & 0o777, 0o600);
        assert!(create_new_private(&dir.join("s")).is_err());
    }
}
