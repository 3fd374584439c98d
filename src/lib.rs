//! ticketlab: a teaching lab for process synchronisation.
//!
//! A parent maps a shared-memory segment, forks buyer processes and lets
//! them race for tickets; the lock settings show the race and its fixes.
//! `docs/architecture.md` walks through the modules. Only what the binary
//! needs is public: the command line, the commands and the exit codes.

#![warn(unreachable_pub)]

pub mod app;
mod bench;
mod buyer;
mod check;
pub mod cli;
mod config;
mod demo;
pub mod exit;
mod explore;
mod fault;
mod files;
mod fit;
mod json;
mod labs;
mod monitor;
mod mutex;
mod observe;
mod postmortem;
mod process;
mod progress;
mod protocol;
mod report;
mod sales;
mod schedule;
mod scheduler;
mod seed;
mod segment;
mod sheet;
mod step;
mod store;
mod supervisor;
mod task;
mod view;
