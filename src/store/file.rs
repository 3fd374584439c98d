//! The JSON-file store: `{"count": N}` read and rewritten whole, as the posts do.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{FileRead, StoreError};

#[derive(Serialize, Deserialize)]
struct Db {
    count: i64,
}

/// A buyer's view of the file: just its path, since every access opens it
/// afresh, the way the posts' `open(...)` does.
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store on `path`.
    pub fn new(path: &Path) -> FileStore {
        FileStore {
            path: path.to_path_buf(),
        }
    }

    /// Writes the starting count (creating or truncating the file).
    pub fn init(path: &Path, count: i64) -> Result<(), StoreError> {
        FileStore::new(path).write(count)
    }

    /// Open, read, parse. A file caught between another writer's truncate
    /// and its write, or mangled by two writers, is a torn read, not an error.
    pub fn read(&self) -> Result<FileRead, StoreError> {
        let bytes = std::fs::read(&self.path).map_err(|source| self.io(source))?;
        Ok(parse(&bytes))
    }

    /// Open with truncate, write, close: not atomic, on purpose.
    pub fn write(&self, count: i64) -> Result<(), StoreError> {
        let text = serde_json::to_string(&Db { count }).expect("a number always serialises");
        std::fs::write(&self.path, text).map_err(|source| self.io(source))
    }

    /// The count in the file after the sale, `None` if the file is corrupt.
    pub fn final_count(path: &Path) -> Option<i64> {
        match parse(&std::fs::read(path).ok()?) {
            FileRead::Count(n) => Some(n),
            FileRead::Torn => None,
        }
    }

    /// The file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }
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
        FileStore::init(&path, 5).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), r#"{"count":5}"#);
        let store = FileStore::new(&path);
        assert_eq!(store.read().unwrap(), FileRead::Count(5));
        store.write(4).unwrap();
        assert_eq!(FileStore::final_count(&path), Some(4));
    }

    #[test]
    fn half_written_and_doubly_written_files_are_torn_reads() {
        assert_eq!(parse(b""), FileRead::Torn);
        assert_eq!(parse(br#"{"count": 9}}"#), FileRead::Torn);
        assert_eq!(parse(br#"{"cou"#), FileRead::Torn);
        assert_eq!(parse(br#"{"count": 10}"#), FileRead::Count(10));
    }
}
