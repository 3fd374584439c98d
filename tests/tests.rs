//! Integration tests: every one drives the real `ticketlab` binary.
//! Test names carry the lab or the area so `cargo test lab02` runs one.

mod bench;
mod check;
mod common;
mod database;
mod explore;
mod faults;
mod files;
mod granularity;
mod help;
mod holder;
mod json_docs;
mod lab01_print;
mod lab11_daemon;
mod lab_scheduler;
mod labs;
mod live;
mod queue;
mod scheduler;
mod sell;
mod step;
mod stress;
mod trace;
mod verdicts;
