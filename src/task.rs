//! What a command line asks for, in plain settings. `cli.rs` turns clap's
//! arguments into a [`Task`]: every sale a configured [`SaleConfig`], a
//! lab's preset already merged with the student's flags, a comparison
//! already cut into its rows. `app.rs` runs the task and never sees clap.

use std::path::PathBuf;

use crate::bench::BenchConfig;
use crate::check::CheckConfig;
use crate::config::{Output, SaleConfig};
use crate::demo::daemon::DaemonConfig;
use crate::demo::print::PrintConfig;
use crate::explore::ExploreConfig;
use crate::labs::Lab;
use crate::sales::SalesConfig;

/// A parsed command line, ready to run: `cli::parse` makes it and
/// `app::run` runs it. What it holds is the crate's own business.
pub struct Task(pub(crate) Job);

/// One thing to do, each with its settings.
pub(crate) enum Job {
    /// One sale.
    Sell(SaleRun),
    /// Step mode on a terminal that can show its screen (without one,
    /// `step` is a [`Job::Sell`] of its schedule).
    Step {
        /// The sale, step's own defaults filled in; a schedule in it is
        /// replayed before the person takes over.
        sale: SaleConfig,
        /// Colour and `--trace` (the screen is always live).
        output: Output,
        /// Where the `s` key saves the schedule.
        save_to: PathBuf,
    },
    /// `ticketlab explore`.
    Explore {
        /// The exploration.
        cfg: ExploreConfig,
        /// One JSON object instead of the summary.
        json: bool,
    },
    /// `ticketlab sales`.
    Sales(SalesConfig),
    /// `ticketlab print` (lab 1).
    Print(PrintConfig, Output),
    /// `ticketlab daemon` (lab 11).
    Daemon(DaemonConfig, Output),
    /// `ticketlab bench`.
    Bench(BenchConfig),
    /// `ticketlab check N`.
    Check(CheckConfig),
    /// `ticketlab labs`.
    Labs,
    /// `ticketlab lab N`: a lab's sheet, up to where the student is.
    Sheet {
        /// The lab.
        lab: &'static Lab,
        /// Also Observe, Explain and Try this.
        explain: bool,
        /// The whole sheet, answers included.
        answers: bool,
    },
    /// `ticketlab run N`: the command line it runs, then the run.
    Lab(LabRun),
    /// A lab's sales that differ in one flag, as one table.
    Compare(Comparison),
    /// A lab's explorations that differ in one flag, as one table.
    Explorations(Explorations),
    /// Text to write to stdout as it is: a help, a completion script, the
    /// manual page.
    Show(String),
    /// A command line that cannot run, and why: one line, exit 2.
    Refused(String),
}

/// One sale and how it shows itself.
pub(crate) struct SaleRun {
    /// The sale (recording its steps if `--trace` or `--save-schedule`
    /// asks for them).
    pub sale: SaleConfig,
    /// What it prints, and where.
    pub output: Output,
    /// Where to write its interleaving afterwards.
    pub save_schedule: Option<PathBuf>,
}

/// What `ticketlab run N` runs.
pub(crate) struct LabRun {
    /// The command line it runs, as a student could type it (a comparison
    /// names the values it varies), shown before anything runs.
    pub shown: String,
    /// Whether the run prints JSON: then the command line goes to stderr.
    pub json: bool,
    /// The run: one command, a comparison, or the reason its settings are
    /// refused (said after the command line, which shows what was refused).
    pub job: Box<Job>,
}

/// Sales that differ in one flag, run one after another.
pub(crate) struct Comparison {
    /// The lab that compares them.
    pub lab: u8,
    /// The flag that varies, e.g. `--lock`.
    pub flag: &'static str,
    /// One sale per row, all on the same seed; every row is checked before
    /// any runs, so a refused combination costs no half-run comparison.
    pub rows: Vec<SaleRow>,
    /// What every sale prints.
    pub output: Output,
}

/// One row of a [`Comparison`].
pub(crate) struct SaleRow {
    /// The row's name in the table: the flag's value, or `single`.
    pub name: String,
    /// What the row's summary is headed with: `--lock buy`, `--one-process`.
    pub heading: String,
    /// Its sale.
    pub sale: SaleConfig,
}

/// Explorations that differ in one flag, run one after another.
pub(crate) struct Explorations {
    /// The lab that compares them.
    pub lab: u8,
    /// The flag that varies.
    pub flag: &'static str,
    /// Each value of the flag and its exploration.
    pub rows: Vec<(String, ExploreConfig)>,
    /// One JSON object instead of the summaries and the table.
    pub json: bool,
}
