//! The two warm-up labs that come before the ticket sale.
//!
//! - [`print`](mod@print) (lab 1): forked workers fight over one output, then a
//!   process-shared mutex keeps each begin/end pair together.
//! - [`daemon`] (lab 11): a parent and its child on one timeline, with the
//!   child waited for, ended with the parent's main code, or left as an orphan.
//!
//! Both fork real processes through [`crate::process`], the same module the
//! sale engine forks with: fork (with or without dying with the parent), the
//! child set that reaps them, pipes, futexes and the shared page all live
//! there, so the labs themselves hold no `unsafe` and read like the Python
//! posts they follow.

pub(crate) mod daemon;
pub(crate) mod print;

/// What can go wrong in a demo before or around its processes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    /// A setting lies outside the range the lab accepts.
    #[error("{what} must be between {min} and {max}, got {got}")]
    OutOfRange {
        /// The setting's name as the user knows it.
        what: &'static str,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
        /// What was given.
        got: u64,
    },
    /// Two settings that cannot hold at once.
    #[error("{0}")]
    Conflict(&'static str),
    /// Forking now would copy a process with other threads into a child that
    /// has only one, possibly with a lock some vanished thread still holds.
    #[error(transparent)]
    Threaded(#[from] crate::process::ThreadedError),
    /// A child process did not end with exit code 0.
    #[error("{who} (pid {pid}) {how}")]
    ChildFailed {
        /// Which child, e.g. `worker 2`.
        who: String,
        /// Its process id.
        pid: i32,
        /// How it ended, e.g. `exited with code 1`.
        how: String,
    },
    /// A line on a worker pipe that no worker writes.
    #[error("unexpected line from a worker: {0:?}")]
    BadLine(String),
}
