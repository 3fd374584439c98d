//! The JSON-file store: `{"count": N}` read and rewritten whole, as the posts do.
//!
//! Every open goes through [`crate::files::open_regular`]: no symbolic link
//! followed, no wait on a FIFO, a regular file or an error. The rewrite
//! stays a truncate followed by a write, not atomic, on purpose: the torn
//! reads it allows are part of the lesson.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{FileRead, StoreError};
use crate::files::{self, Access, OpenError};
use crate::segment::NAME_PREFIX;

/// Longest store file anyone reads. `{"count": N}` takes under 40 bytes, so
/// anything longer is corrupt, and `--db /dev/zero` or a huge file is never
/// read until memory runs out.
pub(crate) const MAX_STORE_BYTES: usize = 4096;

/// The temporary store's name inside its private directory.
pub(crate) const TEMP_STORE_NAME: &str = "store.json";

// Unknown fields are refused: `{"count": 5, "notes": ...}` is somebody's
// file, not a store, and must not be overwritten as one.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Db {
    count: i64,
}

/// A buyer's view of the file: just its path, since every access opens it
/// afresh, the way the posts' `open(...)` does.
pub(crate) struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store on `path`.
    pub(crate) fn new(path: &Path) -> FileStore {
        FileStore {
            path: path.to_path_buf(),
        }
    }

    /// Open, read, parse. A file caught between another writer's truncate
    /// and its write, or mangled by two writers, is a torn read, not an
    /// error; so is one too long to be a store.
    pub(crate) fn read(&self) -> Result<FileRead, StoreError> {
        let mut file = self.open(Access::Read)?;
        let bytes =
            files::read_capped(&mut file, MAX_STORE_BYTES).map_err(|cause| self.io(cause))?;
        Ok(bytes.map_or(FileRead::Torn, |b| parse(&b)))
    }

    #[cfg(test)]
    /// Open, truncate, write, close: not atomic, on purpose. The file must
    /// exist: the sale created it, and a store that vanished is an error.
    pub(crate) fn write(&self, count: i64) -> Result<(), StoreError> {
        use std::io::Write;
        let mut file = self.open(Access::Write)?;
        // Truncated only once fstat has said it is a regular file.
        file.set_len(0).map_err(|cause| self.io(cause))?;
        file.write_all(store_text(count).as_bytes())
            .map_err(|cause| self.io(cause))
    }

    /// Opens the file to rewrite it (nothing is changed yet).
    pub(crate) fn open_for_write(&self) -> Result<File, StoreError> {
        self.open(Access::Write)
    }

    /// The first half of a rewrite: the file is empty afterwards.
    pub(crate) fn truncate(&self, file: &File) -> Result<(), StoreError> {
        file.set_len(0).map_err(|cause| self.io(cause))
    }

    /// The second half: the new text, from the start of the file.
    pub(crate) fn write_count(&self, file: &File, count: i64) -> Result<(), StoreError> {
        file.write_all_at(store_text(count).as_bytes(), 0)
            .map_err(|cause| self.io(cause))
    }

    /// The file's bytes as text, exactly (for step mode's panel); `None`
    /// if it cannot be read.
    pub(crate) fn raw_text(path: &Path) -> Option<String> {
        let store = FileStore::new(path);
        let mut file = store.open(Access::Read).ok()?;
        let bytes = files::read_capped(&mut file, MAX_STORE_BYTES).ok()??;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The count in the file after the sale, `None` if the file is corrupt
    /// or cannot be read.
    pub(crate) fn final_count(path: &Path) -> Option<i64> {
        match FileStore::new(path).read().ok()? {
            FileRead::Count(n) => Some(n),
            FileRead::Torn => None,
        }
    }

    /// The file's path, for messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self, access: Access) -> Result<File, StoreError> {
        files::open_regular(&self.path, access).map_err(|e| match e {
            OpenError::NotRegular(what) => StoreError::NotRegular {
                path: self.path.display().to_string(),
                what,
            },
            OpenError::Io(cause) => self.io(cause),
        })
    }

    fn io(&self, cause: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.display().to_string(),
            cause,
        }
    }
}

/// The file store's file for one sale, held open for the whole run.
///
/// A file named with `--db` is locked (flock, exclusive), so a second sale
/// on it refuses instead of resetting the count under the first. A
/// temporary one lives alone in a private directory, and both go when this
/// is dropped.
pub(crate) struct StoreFile {
    path: PathBuf,
    /// The temporary store's private directory.
    temp_dir: Option<PathBuf>,
    file: File,
}

impl StoreFile {
    /// A new, empty temporary store: `<tmp>/ticketlab-<pid>-<nonce>/store.json`.
    /// The directory is created exclusively with mode 0700 and a random
    /// nonce, so no other user can plant a link or a FIFO in the store's
    /// place, nor even see into it; the `ticketlab-<pid>-` prefix lets the
    /// next run sweep it if this one is killed.
    pub(crate) fn temporary(tmp: &Path) -> Result<StoreFile, StoreError> {
        let prefix = format!("{NAME_PREFIX}{}-", std::process::id());
        let temp_error = |cause| StoreError::TempStore {
            dir: tmp.display().to_string(),
            cause,
        };
        let dir = files::create_private_dir(tmp, &prefix).map_err(temp_error)?;
        let path = dir.join(TEMP_STORE_NAME);
        match files::create_new_private(&path) {
            Ok(file) => Ok(StoreFile {
                path,
                temp_dir: Some(dir),
                file,
            }),
            Err(cause) => {
                let _ = std::fs::remove_dir(&dir);
                Err(temp_error(cause))
            }
        }
    }

    /// The file `--db` names: a regular file or a new path, not locked by
    /// another sale, and either empty, a ticket store, or `reset` given.
    /// Nothing here waits: the open does not block and the lock is tried.
    pub(crate) fn named(path: &Path, reset: bool) -> Result<StoreFile, StoreError> {
        let shown = || path.display().to_string();
        let io = |cause| StoreError::DbIo {
            path: shown(),
            cause,
        };
        // Checked before the open too, so a device or FIFO is not even
        // opened; the open's own checks close the race with a swap.
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.is_file() => {
                return Err(StoreError::DbNotRegular {
                    path: shown(),
                    what: files::describe(meta.file_type()),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(cause) => return Err(io(cause)),
        }
        let mut file = files::open_regular(path, Access::ReadWriteCreate).map_err(|e| match e {
            OpenError::NotRegular(what) => StoreError::DbNotRegular {
                path: shown(),
                what,
            },
            OpenError::Io(cause) => io(cause),
        })?;
        if !files::try_lock_exclusive(&file).map_err(io)? {
            return Err(StoreError::DbInUse {
                path: shown(),
                pid: files::flock_holder(&file),
            });
        }
        if !reset {
            // An empty file holds nothing to lose (a new path, `mktemp`, a
            // store truncated by a killed sale); anything else must be a store.
            let is_store = match files::read_capped(&mut file, MAX_STORE_BYTES).map_err(io)? {
                Some(bytes) => bytes.is_empty() || is_store_text(&bytes),
                None => false,
            };
            if !is_store {
                return Err(StoreError::DbNotAStore { path: shown() });
            }
        }
        Ok(StoreFile {
            path: path.to_path_buf(),
            temp_dir: None,
            file,
        })
    }

    /// Writes the starting count through the locked descriptor.
    pub(crate) fn init(&self, count: i64) -> Result<(), StoreError> {
        let io = |cause| StoreError::Io {
            path: self.path.display().to_string(),
            cause,
        };
        self.file.set_len(0).map_err(io)?;
        self.file
            .write_all_at(store_text(count).as_bytes(), 0)
            .map_err(io)
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StoreFile {
    fn drop(&mut self) {
        if let Some(dir) = &self.temp_dir {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn store_text(count: i64) -> String {
    serde_json::to_string(&Db { count }).expect("a number always serialises")
}

/// Whether `bytes` are exactly a ticket store, `{"count": N}`: what may be
/// overwritten as one, or swept as one a dead run left.
pub(crate) fn is_store_text(bytes: &[u8]) -> bool {
    matches!(parse(bytes), FileRead::Count(_))
}

fn parse(bytes: &[u8]) -> FileRead {
    match serde_json::from_slice::<Db>(bytes) {
        Ok(db) => FileRead::Count(db.count),
        Err(_) => FileRead::Torn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_the_posts_write_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.json");
        let held = StoreFile::named(&path, false).unwrap();
        held.init(5).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), r#"{"count":5}"#);
        let store = FileStore::new(&path);
        assert_eq!(store.read().unwrap(), FileRead::Count(5));
        store.write(4).unwrap();
        assert_eq!(FileStore::final_count(&path), Some(4));
        drop(held);
        assert!(path.exists(), "a --db file is kept");
    }

    #[test]
    fn a_temporary_store_lives_alone_in_a_private_directory_and_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let held = StoreFile::temporary(tmp.path()).unwrap();
        held.init(3).unwrap();
        let dir = held.path().parent().unwrap().to_path_buf();
        assert_eq!(dir.parent(), Some(tmp.path()));
        assert_eq!(
            crate::segment::creator_pid(&dir.file_name().unwrap().to_string_lossy()),
            Some(std::process::id() as i32)
        );
        assert_eq!(FileStore::final_count(held.path()), Some(3));
        drop(held);
        assert!(!dir.exists());
    }

    #[test]
    fn only_a_store_an_empty_file_or_a_reset_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        for ok in ["", r#"{"count": 7}"#] {
            std::fs::write(&path, ok).unwrap();
            assert!(StoreFile::named(&path, false).is_ok(), "{ok:?}");
        }
        let padded = format!(r#"{{"count": 7}}{}"#, " ".repeat(MAX_STORE_BYTES));
        for bad in ["notes", r#"{"count": 7, "x": 1}"#, padded.as_str()] {
            std::fs::write(&path, bad).unwrap();
            assert!(matches!(
                StoreFile::named(&path, false),
                Err(StoreError::DbNotAStore { .. })
            ));
            assert!(StoreFile::named(&path, true).is_ok());
        }
    }

    #[test]
    fn a_second_holder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.json");
        let _first = StoreFile::named(&path, false).unwrap();
        match StoreFile::named(&path, false) {
            Err(e @ StoreError::DbInUse { .. }) => assert_eq!(
                e.to_string(),
                format!(
                    "--db {} is in use by another sale (pid {})",
                    path.display(),
                    std::process::id()
                )
            ),
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn a_store_swapped_for_a_link_or_fifo_is_an_error_not_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, r#"{"count": 100}"#).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let store = FileStore::new(&link);
        assert!(matches!(store.write(1), Err(StoreError::NotRegular { .. })));
        assert!(matches!(store.read(), Err(StoreError::NotRegular { .. })));
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            r#"{"count": 100}"#
        );
        let store = FileStore::new(Path::new("/dev/null"));
        assert!(matches!(store.read(), Err(StoreError::NotRegular { .. })));
    }

    #[test]
    fn half_written_and_doubly_written_files_are_torn_reads() {
        assert_eq!(parse(b""), FileRead::Torn);
        assert_eq!(parse(br#"{"count": 9}}"#), FileRead::Torn);
        assert_eq!(parse(br#"{"cou"#), FileRead::Torn);
        assert_eq!(parse(br#"{"count": 10}"#), FileRead::Count(10));
    }
}
