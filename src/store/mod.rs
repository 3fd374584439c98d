//! The places a ticket count can live, as a buyer sees them.

pub(crate) mod database;
pub(crate) mod file;
pub(crate) mod server;
pub(crate) mod sql;

use std::sync::atomic::AtomicI64;

pub(crate) use file::{FileStore, StoreFile};
pub(crate) use server::{SellerPipes, ServerClient};

/// A failure of a store operation inside a buyer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The file could not be opened, read or written.
    // The cause is part of the message and deliberately not a `source`: a
    // buyer prints this error alone, and anyhow's `{:#}` at the edge would
    // print a source a second time after the message that already holds it.
    #[error("store file {path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        cause: std::io::Error,
    },
    /// Something other than a regular file took the store's place.
    #[error("store file {path} is {what}, not a regular file")]
    NotRegular {
        /// The file.
        path: String,
        /// What is there instead: "a FIFO", "a symbolic link", ...
        what: &'static str,
    },
    /// Every read for a while found garbage: the file will not heal.
    #[error("store file {0} stays corrupt")]
    Corrupt(String),
    /// The seller process stopped answering.
    #[error("the seller process is gone")]
    SellerGone,
    /// The database refused a statement.
    #[error("database: {0}")]
    Database(String),
    /// `--db` names something a sale must not write to.
    #[error("--db {path} is {what}: it must be a regular file or a new path")]
    DbNotRegular {
        /// The path given.
        path: String,
        /// What is there: "a FIFO", "a directory", "a symbolic link", ...
        what: &'static str,
    },
    /// Another sale holds the `--db` file's lock.
    #[error("--db {path} is in use by another sale{}", holder(*.pid))]
    DbInUse {
        /// The path given.
        path: String,
        /// The other sale's pid, when the kernel tells it.
        pid: Option<i32>,
    },
    /// The `--db` file holds something else than a ticket store.
    #[error(
        "--db {path} holds something other than a ticket store {{\"count\": N}}: name a new path, or add --db-reset to overwrite it"
    )]
    DbNotAStore {
        /// The path given.
        path: String,
    },
    /// The `--db` file could not be opened, locked, read or written.
    #[error("--db {path}: {cause}")]
    DbIo {
        /// The path given.
        path: String,
        /// The OS error (in the message, not a `source`: see `Io`).
        cause: std::io::Error,
    },
    /// The private directory of the temporary store could not be made.
    #[error("cannot create the temporary store in {dir}: {cause}")]
    TempStore {
        /// The directory it goes in ($TMPDIR).
        dir: String,
        /// The OS error (in the message, not a `source`: see `Io`).
        cause: std::io::Error,
    },
}

fn holder(pid: Option<i32>) -> String {
    pid.map_or(String::new(), |pid| format!(" (pid {pid})"))
}

/// One buyer's handle on the store of its sale.
pub(crate) enum StoreClient<'a> {
    /// The count in the segment.
    Shm(&'a AtomicI64),
    /// The JSON file.
    File(FileStore),
    /// Pipes to the seller process.
    Server(ServerClient),
    /// The same pipes to the same seller, but the request pipe is a queue:
    /// written only under the segment's mutex (see `Buyer::ask_seller`).
    Queue(ServerClient),
    /// A connection to the sale's database, opened after the fork.
    Database(DatabaseClient),
}

/// A buyer's connection to its sale's database.
pub(crate) struct DatabaseClient {
    /// The connection.
    pub conn: database::Conn,
    /// The sale and this run, as the rows name them.
    pub target: database::Target,
}

/// What one read of a file store found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileRead {
    /// A whole `{"count": N}`.
    Count(i64),
    /// A half-written or unparsable file.
    Torn,
}
