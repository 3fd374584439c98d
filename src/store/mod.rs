//! The three places a ticket count can live, as a buyer sees them.

pub mod file;
pub mod server;

use std::sync::atomic::AtomicI64;

pub use file::FileStore;
pub use server::{SellerPipes, ServerClient};

/// A failure of a store operation inside a buyer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened, read or written.
    #[error("store file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Every read for a while found garbage: the file will not heal.
    #[error("store file {0} stays corrupt")]
    Corrupt(String),
    /// The seller process stopped answering.
    #[error("the seller process is gone")]
    SellerGone,
}

/// One buyer's handle on the store of its sale.
pub enum StoreClient<'a> {
    /// The count in the segment.
    Shm(&'a AtomicI64),
    /// The JSON file.
    File(FileStore),
    /// Pipes to the seller process.
    Server(ServerClient),
}

/// What one read of a file store found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRead {
    /// A whole `{"count": N}`.
    Count(i64),
    /// A half-written or unparsable file.
    Torn,
}
