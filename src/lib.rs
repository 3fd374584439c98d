//! ticketlab: a teaching lab for process synchronisation.
//!
//! A parent maps a shared-memory segment, forks buyer processes and lets
//! them race for tickets; the lock settings show the race and its fixes.
//! `docs/architecture.md` walks through the modules.

pub mod app;
pub mod bench;
pub mod buyer;
pub mod cli;
pub mod config;
pub mod demo;
pub mod exit;
pub mod explore;
pub mod fault;
mod files;
pub mod labs;
pub mod monitor;
mod mutex;
pub mod observe;
pub mod postmortem;
pub mod process;
pub mod report;
pub mod schedule;
pub mod scheduler;
pub mod segment;
pub mod sheet;
pub mod step;
pub mod store;
pub mod supervisor;
pub mod view;
