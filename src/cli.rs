//! The command line, and its translation into plain settings. No other
//! module sees clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::bench;
use crate::check::{CheckConfig, LabChecks};
use crate::config::Output;
use crate::config::{
    self, ColorMode, DEFAULT_TICKETS, DEFAULT_WORKERS, DbFile, LockMode, MAX_DELAY, MAX_TICKETS,
    MAX_WORKERS, Named, SaleConfig, StoreKind, ViewMode, Wants, format_duration, parse_duration,
};
use crate::demo::daemon::DaemonConfig;
use crate::demo::print::{self, PrintConfig, PrintLock};
use crate::exit::{Exit, exit_codes_help};
use crate::explore::{self, ExploreConfig, Find};
use crate::labs::{self, Axis, Experiment, Lab};
use crate::schedule::Schedule;
use crate::scheduler::Then;
use crate::task::{Comparison, Explorations, Job, LabRun, SaleRow, SaleRun, Task};

/// ticketlab: watch processes race for tickets, then fix the race.
#[derive(Debug, Parser)]
#[command(
    name = "ticketlab",
    version,
    about = "A lab for process synchronisation: forked buyers race for tickets in shared memory, a file or a seller process",
    after_help = "Start with `ticketlab labs`, then `ticketlab lab 1` and `ticketlab run 1`,\nor predict first and let the run grade you: `ticketlab check 1`.",
    after_long_help = concat!(
        "Examples:
  ticketlab labs                               every lab, its goal and the command that runs it
  ticketlab run 2                              lab 2: 100 buyers race for one ticket, no lock
  ticketlab sell -w 10 --lock none --read-delay 10ms
                                               ten buyers, one ticket: it oversells by 9
  ticketlab sell -w 10 --lock buy --read-delay 10ms
                                               the same sale under the lock: exactly one sold

Start with `ticketlab labs`, then `ticketlab lab 1` and `ticketlab run 1`,
or predict first and let the run grade you: `ticketlab check 1`.
`ticketlab COMMAND --help` shows each command's examples.

",
        exit_codes_help!()
    ),
    // A lab's preset comes first and the student's flags after: the last wins.
    args_override_self = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one ticket sale with real processes and say what happened.
    #[command(after_long_help = concat!(
        "Examples:
  ticketlab sell -w 10 --lock none --read-delay 10ms
                          ten buyers read the one ticket before anyone writes: OVERSOLD by 9
  ticketlab sell -w 10 --lock buy --read-delay 10ms
                          the same sale under the lock: 1 of 1 sold, exact
  ticketlab sell --store file --lock none -w 4 -t 1000 --wants all --json
                          one JSON object for a script: sold, remaining, lost updates, verdict

",
        exit_codes_help!()
    ))]
    Sell(SellCommandArgs),
    /// List the labs.
    #[command(after_long_help = concat!(
        "Examples:
  ticketlab labs          every lab: its number, name, title, goal and the command that runs it;
                          a tick marks a lab whose predictions you have checked
  ticketlab labs > labs.txt
                          the same list as plain text in a file, to hand out to a class

",
        exit_codes_help!()
    ))]
    Labs,
    /// Show a lab's sheet.
    #[command(after_long_help = concat!(
        "Examples:
  ticketlab lab 2                 lab 2's sheet up to the run: goal, background, predict, run
  ticketlab lab race --explain    after your run: also observe, explain and try this
  ticketlab lab 2 --answers       the whole sheet, with the answers to predict

",
        exit_codes_help!()
    ))]
    Lab(LabArgs),
    /// Run a lab's experiment with its preset flags; flags given here override the preset.
    #[command(after_long_help = concat!(
        "Examples:
  ticketlab run 4                 lab 4's comparison: one sale per --lock value, then one table
  ticketlab run 4 --lock task     only the task sale: the flag the comparison varies, given
  ticketlab run 2 -w 20 --seed 7  lab 2's sale with 20 buyers, repeatable with the same seed
  ticketlab run 4 --help          which flags lab 4 presets, and which you may give

",
        exit_codes_help!()
    ))]
    Run(RunArgs),
    /// Predict, then check: answer a lab's Predict questions, run the lab, and see which the run bore out.
    #[command(after_long_help = concat!(
        "Examples:
  ticketlab check 2                          asks each question, runs lab 2, grades your answers
  ticketlab check 2 --answers-file lab2.txt  reads the answers from a file instead
  ticketlab check 3 --json --workers 20      one JSON object; 20 buyers, not 100

An answers file holds one `id = value` line per question (the ids are shown as check asks);
`#` starts a comment:
  # lab 2, my predictions
  bought = 40
  remaining = 1
  ...
A number may be written 20,000; a choice is one of the listed names; a set lists names
separated by commas (- for none). Each checked lab is ticked in `ticketlab labs`
(kept in $XDG_STATE_HOME/ticketlab/progress.json). A wrong prediction is no failure: the exit
is the run's own.

",
        exit_codes_help!()
    ))]
    Check(CheckArgs),
    /// Lab 1: processes printing at once, with and without a lock.
    #[command(after_long_help = concat!(
        "Examples:
  ticketlab print                 3 workers print at once: other lines split their begin/end pairs
  ticketlab print --lock pair     each pair under the shared mutex: no pair is split
  ticketlab print -w 8 --view quiet
                                  only the counts: interleaved lines, split pairs, elapsed

",
        exit_codes_help!()
    ))]
    Print(PrintArgs),
    /// Lab 11: a child process that is, or is not, a daemon.
    #[command(after_long_help = concat!(
        "Examples:
  ticketlab daemon                the parent waits: the child finishes and says done
  ticketlab daemon --daemon       a daemon child ends with the parent's main code: no done
  ticketlab daemon --orphan       the parent leaves; the child lives on, re-parented, and ends itself

",
        exit_codes_help!()
    ))]
    Daemon(DaemonArgs),
    /// Measure every store's throughput and the cost of starting buyers.
    #[command(after_long_help = concat!(
        "Examples:
  ticketlab bench                 purchases per second of every correct store, 2 and 8 buyers,
                                  and buyers started and reaped per second
  ticketlab bench --anchors       beside each row, the same mechanism in C and in Python
  ticketlab bench --only shm+buy --rounds 5
                                  one scenario, the median of 5 rounds

Build with `cargo build --release` first: a debug build measures the debug build.
docs/performance.md explains each row and what bounds it.

",
        exit_codes_help!()
    ))]
    Bench(BenchArgs),
    /// Be the scheduler: step real buyer processes one shared step at a time (keys 1-9, a, u, r, s, q). Unless given, 2 buyers, 1 ticket, --lock none.
    #[command(after_long_help = concat!(
        "Examples:
  ticketlab step                                  2 buyers, 1 ticket, no lock: make it oversell
  ticketlab step --lock buy                       try again under the lock
  ticketlab step -w 3 --schedule 1,1,2,2,2,1       start from a schedule, then go on by hand

Keys: 1-9 step that buyer; arrows or Tab select, Enter or space steps the selected one;
a runs the rest freely; u undoes the last step; r restarts; s saves the schedule; q quits.
Without a terminal, step needs --schedule (it then runs like sell --schedule).

",
        exit_codes_help!()
    ))]
    Step(SellArgs),
    /// Show the sales in a database: tickets, the count left and every run's purchases, so an oversell across runs is plain.
    #[command(after_long_help = concat!(
        "Examples:
  ticketlab sales --db-url postgresql://host/tickets               every sale on the server
  ticketlab sales --db-url postgresql://host/tickets --sale room1  one sale
  ticketlab sales --db lab.sqlite                                  the sales in a SQLite file

Without --db-url or --db, the server named by $TICKETLAB_DB_URL is read.
Each run's summary names its run id, as the `run` lines here do.

",
        exit_codes_help!()
    ))]
    Sales(SalesArgs),
    /// Run every interleaving of a small sale on real processes and count how each ends.
    #[command(after_long_help = concat!(
        "Examples:
  ticketlab explore                    2 buyers, 1 ticket, no lock: how many schedules oversell
  ticketlab explore -w 3 --lock buy    every schedule is exact
  ticketlab explore -w 3 --preemptions 1 --find oversold
                                       the first oversold schedule with at most one preemption

",
        exit_codes_help!()
    ))]
    Explore(ExploreArgs),
    /// Print a shell completion script for bash, zsh or fish.
    #[command(after_long_help = concat!(
        "Examples:
  ticketlab completions bash > ~/.local/share/bash-completion/completions/ticketlab
  ticketlab completions zsh > ~/.zfunc/_ticketlab       (with ~/.zfunc in $fpath)
  ticketlab completions fish > ~/.config/fish/completions/ticketlab.fish

",
        exit_codes_help!()
    ))]
    Completions(CompletionsArgs),
    /// Print the manual page (roff) for `man`.
    #[command(after_long_help = concat!(
        "Examples:
  ticketlab man > ticketlab.1 && man ./ticketlab.1          read it now
  ticketlab man > ~/.local/share/man/man1/ticketlab.1       then `man ticketlab`

",
        exit_codes_help!()
    ))]
    Man,
}

/// `ticketlab completions SHELL`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_name = "SHELL", value_enum)]
    pub shell: Shell,
}

/// The shells `completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// The Z shell.
    Zsh,
    /// The friendly interactive shell.
    Fish,
}

/// `shell`'s completion script for the whole command line.
fn completions(shell: Shell) -> String {
    use clap::CommandFactory;
    use clap_complete::{Shell as S, generate};
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
    };
    // Into memory: the generator panics on a failed write (`| head`).
    let mut script = Vec::new();
    generate(shell, &mut Cli::command(), "ticketlab", &mut script);
    String::from_utf8_lossy(&script).into_owned()
}

/// The manual page: every command, flag and example, in roff.
fn man_page() -> String {
    let mut page = Vec::new();
    write_man(&mut page).expect("writing into memory does not fail");
    String::from_utf8_lossy(&page).into_owned()
}

/// Writes the manual page.
fn write_man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap::CommandFactory;
    use clap_mangen::roff::{Roff, roman};
    // The width the help is laid out for, so the man page is the same
    // wherever it is generated.
    let cmd = Cli::command().term_width(80);
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    // Text laid out for the terminal keeps its lines: the examples line
    // up in columns.
    let section = |title: &str, text: &str, out: &mut dyn std::io::Write| {
        let mut roff = Roff::new();
        roff.control("SH", [title]).control("nf", []);
        for line in text.lines() {
            roff.text([roman(line)]);
        }
        roff.control("fi", []);
        roff.to_writer(out)
    };
    // Each command's own flags and examples, as its --help shows them.
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut sub = sub
            .clone()
            .bin_name(format!("ticketlab {}", sub.get_name()));
        let title = format!("TICKETLAB {}", sub.get_name().to_uppercase());
        section(&title, &sub.render_long_help().to_string(), out)?;
    }
    if let Some(after) = cmd.get_after_long_help() {
        section("GETTING STARTED", &after.to_string(), out)?;
    }
    man.render_version_section(out)?;
    Ok(())
}

/// The command line this process was given, as plain settings, or the exit
/// to end with once clap has said its piece: help and version succeed; a
/// usage error is one line on stderr (a missing subcommand: the help) and
/// exit 2.
pub fn parse() -> Result<Task, Exit> {
    let command = Cli::try_parse().map(|cli| cli.command).map_err(refuse)?;
    plain(command).map(Task)
}

/// Says what clap found wrong, or the help it was asked for, and the exit
/// that goes with it.
fn refuse(e: clap::Error) -> Exit {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            Exit::Success
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            Exit::Usage
        }
        _ => {
            eprintln!("{}", one_line(&e.render().to_string()));
            Exit::Usage
        }
    }
}

/// Folds clap's multi-line error into one line: what is wrong and what is
/// allowed, without the usage block.
pub(crate) fn one_line(rendered: &str) -> String {
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
        })
        .collect();
    // Said as every other refusal says it.
    let line = parts.join(" ");
    let line = match line.split_once("[possible values: ") {
        Some((head, tail)) => format!("{head}(allowed: {}", tail.replacen(']', ")", 1)),
        None => line,
    };
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    format!("ticketlab: error: {line}")
}

/// What clap found wrong in one line, as a [`Job::Refused`] says it.
fn refusal(e: &clap::Error) -> String {
    let line = one_line(&e.render().to_string());
    line.strip_prefix("ticketlab: error: ")
        .unwrap_or(&line)
        .to_string()
}

/// Turns the parsed command into plain settings; nothing past this point
/// sees clap. A lab's run is resolved here in full: its preset merged with
/// the student's flags, a comparison's rows and its `--one-process` row.
/// Settings that cannot go together become a [`Job::Refused`]. Err: the
/// exit to end with, clap's reason already printed.
fn plain(command: Command) -> Result<Job, Exit> {
    Ok(match command {
        Command::Sell(args) if args.step => step_job(args.sell),
        Command::Sell(args) => sell_job(args.sell),
        Command::Bench(args) => Job::Bench(args.into_config()),
        Command::Explore(args) => explore_job(args),
        Command::Sales(args) => match args.into_config() {
            Ok(cfg) => Job::Sales(cfg),
            Err(e) => Job::Refused(e),
        },
        Command::Step(args) => step_job(args),
        Command::Labs => Job::Labs,
        Command::Completions(args) => Job::Show(completions(args.shell)),
        Command::Man => Job::Show(man_page()),
        Command::Lab(args) => match labs::find(&args.lab) {
            Some(lab) => Job::Sheet {
                lab,
                explain: args.explain,
                answers: args.answers,
            },
            None => no_lab(&args.lab),
        },
        Command::Check(args) if args.wants_lab_help() => match labs::find(&args.lab) {
            Some(lab) => Job::Show(run_help(Some(lab), true)),
            None => no_lab(&args.lab),
        },
        Command::Run(args) if args.wants_help() => match args.lab.as_deref() {
            Some(key) => match labs::find(key) {
                Some(lab) => Job::Show(run_help(Some(lab), true)),
                None => no_lab(key),
            },
            None => Job::Show(run_help(None, !args.summary)),
        },
        Command::Run(args) => {
            let lab = args.lab.expect("clap requires LAB without --help");
            lab_job(&lab, args.flags)?
        }
        Command::Check(args) => check_job(args)?,
        Command::Print(args) => {
            let (cfg, output) = args.into_config();
            Job::Print(cfg, output)
        }
        Command::Daemon(args) => {
            let (cfg, output) = args.into_config();
            Job::Daemon(cfg, output)
        }
    })
}

/// Refuses a lab that does not exist, naming those that do.
fn no_lab(key: &str) -> Job {
    Job::Refused(format!("no lab '{key}' (allowed: {})", labs::allowed()))
}

/// `sell`: one sale, recording its steps if the output needs them.
fn sell_job(args: SellArgs) -> Job {
    let output = args.output.to_output();
    // Saving the schedule needs the steps recorded.
    let record = output.trace || args.output.save_schedule.is_some();
    match args.sale.into_config(record) {
        Ok(sale) => Job::Sell(SaleRun {
            sale,
            output,
            save_schedule: args.output.save_schedule,
        }),
        Err(e) => Job::Refused(e.to_string()),
    }
}

/// `step` (and `sell --step`): a small sale unless told, stepped by a
/// person at a terminal; without a terminal that can show its screen, the
/// sale of its schedule, as `sell --schedule` runs it.
fn step_job(args: SellArgs) -> Job {
    use std::io::IsTerminal;
    // A small sale by default: two buyers, one ticket, no lock.
    let preset = SaleArgs {
        workers: Some(2),
        tickets: Some(1),
        lock: Some(LockMode::None),
        ..Default::default()
    };
    let save_to = args
        .output
        .save_schedule
        .clone()
        .unwrap_or_else(|| "ticketlab.schedule".into());
    let sale = args.sale.over(preset);
    let term = std::env::var("TERM").ok();
    if !std::io::stdout().is_terminal() || !crate::view::can_draw_live(term.as_deref()) {
        if sale.schedule.is_none() && sale.schedule_file.is_none() {
            return Job::Refused(
                "step needs a terminal that can show its screen (not TERM=dumb) for its keys; without one, give --schedule or --schedule-file".into(),
            );
        }
        return sell_job(SellArgs {
            sale,
            output: args.output,
        });
    }
    // A schedule given here (inline or from a file) is replayed first; the
    // person takes over where it ends.
    match sale.into_config(args.output.trace) {
        Ok(sale) => Job::Step {
            sale,
            output: args.output.to_output(),
            save_to,
        },
        Err(e) => Job::Refused(e.to_string()),
    }
}

/// `explore`.
fn explore_job(args: ExploreArgs) -> Job {
    let json = args.json;
    match args.into_config() {
        Ok(cfg) => Job::Explore { cfg, json },
        Err(e) => Job::Refused(e.to_string()),
    }
}

/// `run N`: lab `key`'s experiment, its preset overridden by `flags`, and
/// the command line a student is shown for it. Err: the exit to end with,
/// clap's reason already printed.
fn lab_job(key: &str, flags: Vec<String>) -> Result<Job, Exit> {
    let Some(lab) = labs::find(key) else {
        return Ok(no_lab(key));
    };
    let plan = lab_run(lab.experiment, flags)?;
    let (argv, compare) = (&plan.argv, plan.compare);
    let json = plan.command.prints_json();
    let single = compare.is_some() && lab.experiment.single_baseline();
    let mut shown = match compare {
        Some((flag, values)) => format!("{} {flag} {{{}}}", argv.join(" "), values.join("|")),
        None => argv.join(" "),
    };
    if single {
        // The baseline is a command of its own a student can run.
        shown.push_str(&format!("\n$ {} --one-process", argv.join(" ")));
    }
    // Each value's command is the command line with that flag given last,
    // parsed as a student's would be.
    let each: Result<Vec<(String, Command)>, String> = compare
        .map_or(&[][..], |(_, values)| values)
        .iter()
        .map(|value| {
            plan.varied(value)
                .map(|command| (value.to_string(), command))
        })
        .collect();
    let job = match (each, plan.command, compare) {
        (Err(why), _, _) => Job::Refused(why),
        (Ok(each), Command::Sell(args), Some((flag, _))) => {
            let each = each
                .into_iter()
                .filter_map(|(value, command)| match command {
                    Command::Sell(one) => Some((value, one.sell.sale)),
                    _ => None,
                });
            comparison(lab.number, args.sell, flag, each.collect(), single)
        }
        (Ok(each), Command::Explore(args), Some((flag, _))) => {
            let each = each
                .into_iter()
                .filter_map(|(value, command)| match command {
                    Command::Explore(one) => Some((value, one)),
                    _ => None,
                });
            explorations(lab.number, args.json, flag, each.collect())
        }
        (Ok(_), command, _) => plain(command)?,
    };
    Ok(Job::Lab(LabRun {
        shown,
        json,
        job: Box::new(job),
    }))
}

/// The row name of the `--one-process` baseline in a comparison.
const SINGLE_ROW: &str = "single";

/// One sale per value of `flag` (`each`: the value and its sale), all on
/// one seed; with `single`, then the same sale with `--one-process`, as a
/// row `single`. Every sale is checked here, before any runs.
fn comparison(
    lab: u8,
    args: SellArgs,
    flag: &'static str,
    each: Vec<(String, SaleArgs)>,
    single: bool,
) -> Job {
    let output = args.output.to_output();
    let seed = args.sale.seed.unwrap_or_else(crate::seed::draw);
    let mut sales = Vec::new();
    for (value, mut sale) in each {
        sale.seed = Some(seed);
        let heading = format!("{flag} {value}");
        sales.push((value, heading, sale));
    }
    if single {
        // The baseline is an honest run of the same sale, not a formula:
        // one process runs every buyer's task (search, then purchase) in
        // turn, each buyer in its own slot with its own seeded RNG, so it
        // draws exactly the delays the buyers of the other rows draw. What
        // it leaves out is only concurrency and the cost of processes; a
        // flag varied for the others (the lock) does not apply to it.
        let mut sale = args.sale.clone();
        sale.seed = Some(seed);
        if flag == "--lock" {
            sale.lock = None;
        }
        sale.one_process = true;
        sales.push((SINGLE_ROW.to_string(), "--one-process".to_string(), sale));
    }
    let mut rows = Vec::new();
    for (name, heading, sale) in sales {
        match sale.into_config(output.trace) {
            Ok(sale) => rows.push(SaleRow {
                name,
                heading,
                sale,
            }),
            Err(e) => return Job::Refused(e.to_string()),
        }
    }
    Job::Compare(Comparison {
        lab,
        flag,
        rows,
        output,
    })
}

/// One exploration per value of `flag` (`each`: the value and its
/// exploration), every one checked here, before any runs.
fn explorations(lab: u8, json: bool, flag: &'static str, each: Vec<(String, ExploreArgs)>) -> Job {
    let mut rows = Vec::new();
    for (value, one) in each {
        match one.into_config() {
            Ok(cfg) => rows.push((value, cfg)),
            Err(e) => return Job::Refused(format!("{flag} {value}: {e}")),
        }
    }
    Job::Explorations(Explorations {
        lab,
        flag,
        rows,
        json,
    })
}

/// `check N`: the lab, its predictions and the run that grades them.
/// Flags the run would refuse are refused now, before a student answers
/// every question for nothing. Err: the exit to end with, clap's reason
/// already printed.
fn check_job(args: CheckArgs) -> Result<Job, Exit> {
    let Some(lab) = labs::find(&args.lab) else {
        return Ok(no_lab(&args.lab));
    };
    let Some(checks) = crate::check::for_lab(lab.number) else {
        return Ok(Job::Refused(format!(
            "lab {} has no predictions to check yet; read `ticketlab lab {} --answers`",
            lab.number, lab.number
        )));
    };
    let flags = check_flags(lab, checks, &args.flags);
    lab_run(lab.experiment, flags.clone())?;
    let mut run = vec!["run".to_string(), lab.number.to_string()];
    run.extend(flags);
    Ok(Job::Check(CheckConfig {
        lab,
        checks,
        answers_file: args.answers_file,
        json: args.json,
        run,
    }))
}

/// The flags `check` runs lab `lab` with: its premise, the student's,
/// then one quiet JSON report.
fn check_flags(lab: &Lab, checks: &LabChecks, flags: &[String]) -> Vec<String> {
    let (sub, _, _) = lab.experiment.parts();
    let mut argv: Vec<String> = checks.premise.iter().map(|s| s.to_string()).collect();
    argv.extend(flags.iter().cloned());
    argv.push("--json".into());
    if takes_flag(sub, "view") {
        argv.extend(["--view".into(), "quiet".into()]);
    }
    argv
}

/// A lab's experiment as clap parses it.
#[derive(Debug)]
struct LabPlan {
    /// The command: the preset, overridden by the student's flags.
    pub command: Command,
    /// That command as a student could type it, from `ticketlab` on.
    pub argv: Vec<String>,
    /// The flag a comparison varies and its values, unless the student gave
    /// that flag (or `--one-process`): then the one run.
    pub compare: Option<Axis>,
}

/// Builds the command lab `experiment` runs: its preset, overridden by
/// `flags`. Which flags the student gave is decided by clap from their
/// flags alone, never by matching strings: `-l task` and `--lock=task` are
/// the same flag as `--lock task`. Err: the exit to end with, the reason
/// already printed.
fn lab_run(experiment: Experiment, flags: Vec<String>) -> Result<LabPlan, Exit> {
    use clap::CommandFactory;
    let (sub, preset, axis) = experiment.parts();
    let mut cli = Cli::command();
    let given = given_flags(&mut cli, sub, &flags).map_err(refuse)?;
    let cmd = cli
        .find_subcommand(sub)
        .expect("every experiment names a subcommand");
    // `--one-process` is the comparison's own single row: asked for alone,
    // it is that one sale, with no lock to vary.
    let compare = axis.filter(|(flag, _)| {
        !given.contains(&flag_id(cmd, flag)) && !given.iter().any(|id| id == "one_process")
    });
    let mut argv: Vec<String> = vec!["ticketlab".into(), sub.into()];
    argv.extend(preset_without(cmd, preset, &given));
    argv.extend(flags);
    let command = Cli::try_parse_from(&argv).map_err(refuse)?.command;
    Ok(LabPlan {
        command,
        argv,
        compare,
    })
}

impl LabPlan {
    /// The command one value of the comparison runs: the command line with
    /// `FLAG VALUE` given last, parsed as the student's flags are. Err: why
    /// clap refused it, to say after the command line is shown.
    fn varied(&self, value: &str) -> Result<Command, String> {
        let (flag, _) = self.compare.expect("only a comparison varies a flag");
        let argv = self.argv.iter().map(String::as_str).chain([flag, value]);
        Cli::try_parse_from(argv)
            .map(|cli| cli.command)
            .map_err(|e| refusal(&e))
    }
}

impl Command {
    /// Whether the command prints one JSON object on stdout: then nothing
    /// else may go there.
    pub(crate) fn prints_json(&self) -> bool {
        match self {
            Command::Sell(a) => a.sell.output.json,
            Command::Step(a) => a.output.json,
            Command::Print(a) => a.json,
            Command::Daemon(a) => a.json,
            Command::Explore(a) => a.json,
            Command::Check(a) => a.json,
            Command::Bench(a) => a.json,
            Command::Sales(a) => a.json,
            Command::Labs
            | Command::Lab(_)
            | Command::Run(_)
            | Command::Completions(_)
            | Command::Man => false,
        }
    }
}

/// The ids of the flags `flags` gives to `ticketlab SUB`, as clap parsed
/// them. Giving `--no-jitter` also takes back a preset's `--jitter`.
fn given_flags(
    cli: &mut clap::Command,
    sub: &str,
    flags: &[String],
) -> Result<Vec<String>, clap::Error> {
    use clap::parser::ValueSource;
    let argv = ["ticketlab", sub]
        .into_iter()
        .map(String::from)
        .chain(flags.iter().cloned());
    let matches = cli.try_get_matches_from_mut(argv)?;
    let Some(sub_matches) = matches.subcommand_matches(sub) else {
        return Ok(Vec::new());
    };
    let mut given: Vec<String> = sub_matches
        .ids()
        .filter(|id| sub_matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.to_string())
        .collect();
    if given.iter().any(|id| id == "no_jitter") {
        given.push("jitter".into());
    }
    Ok(given)
}

/// The id of subcommand `cmd`'s flag spelled `flag` (`--lock` or `-l`), or
/// the spelling itself if there is no such flag.
fn flag_id(cmd: &clap::Command, flag: &str) -> String {
    cmd.get_arguments()
        .find(|a| match flag.strip_prefix("--") {
            Some(long) => a.get_long() == Some(long),
            None => flag
                .strip_prefix('-')
                .is_some_and(|s| a.get_short().map(String::from).as_deref() == Some(s)),
        })
        .map_or_else(|| flag.to_string(), |a| a.get_id().to_string())
}

/// The preset's flags minus those the command line gives again, so the
/// printed command reads as what actually runs.
fn preset_without(cmd: &clap::Command, preset: &[&str], given: &[String]) -> Vec<String> {
    preset_flags(preset)
        .into_iter()
        .filter(|words| !given.contains(&flag_id(cmd, words[0])))
        .flatten()
        .map(str::to_string)
        .collect()
}

/// A preset cut into its flags, each with its value if it takes one.
fn preset_flags<'a>(preset: &[&'a str]) -> Vec<Vec<&'a str>> {
    let mut flags = Vec::new();
    let mut i = 0;
    while i < preset.len() {
        let takes_value = preset.get(i + 1).is_some_and(|v| !v.starts_with('-'));
        let width = if takes_value { 2 } else { 1 };
        flags.push(preset[i..i + width].to_vec());
        i += width;
    }
    flags
}

/// `ticketlab lab N`.
#[derive(Debug, Clone, Args)]
pub struct LabArgs {
    /// The lab: its number (3 or 03) or short name (see `ticketlab labs`).
    #[arg(value_name = "LAB")]
    pub lab: String,
    /// Also show Observe, Explain and Try this: read them after your run.
    #[arg(long)]
    pub explain: bool,
    /// Also show the answers to the Predict questions (implies --explain).
    #[arg(long)]
    pub answers: bool,
}

/// `ticketlab run N [flags]`.
#[derive(Debug, Clone, Args)]
// `run N --help` is the lab's own help (its preset and what may be given),
// so the help flag is run's to answer.
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// The lab: its number (3 or 03) or short name (see `ticketlab labs`).
    #[arg(value_name = "LAB", required_unless_present_any = ["summary", "help"])]
    pub lab: Option<String>,
    /// Print help (see more with '--help'); after LAB, the flags the lab presets and those you may give.
    #[arg(short = 'h', id = "summary")]
    pub summary: bool,
    /// Print help (see a summary with '-h'); after LAB, the flags the lab presets and those you may give.
    #[arg(long)]
    pub help: bool,
    /// Flags of the command the lab runs (`sell`, `step`, `explore`, `print` or `daemon`), overriding its preset.
    #[arg(
        value_name = "FLAGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub flags: Vec<String>,
}

impl RunArgs {
    /// Whether help was asked for, before or among the lab's flags.
    pub(crate) fn wants_help(&self) -> bool {
        self.summary || self.help || self.flags.iter().any(|f| f == "--help" || f == "-h")
    }
}

/// `run`'s help: with a lab, what `run N` runs, the flags it presets (each
/// replaced by the same flag given) and the flags that may be added; without
/// one, run's own help.
fn run_help(lab: Option<&Lab>, long: bool) -> String {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    let Some(lab) = lab else {
        let run = cli.find_subcommand_mut("run").expect("run exists");
        let mut run = run.clone().bin_name("ticketlab run");
        let help = if long {
            run.render_long_help()
        } else {
            run.render_help()
        };
        return help.to_string();
    };
    let (sub, preset, axis) = lab.experiment.parts();
    let cmd = cli
        .find_subcommand(sub)
        .expect("every experiment names a subcommand");
    let n = lab.number;
    let mut text = format!(
        "Lab {n}: {}\n{}\n\n`ticketlab run {n}` runs:\n",
        lab.title, lab.goal
    );
    let mut words: Vec<String> = ["ticketlab", sub].iter().map(|w| w.to_string()).collect();
    words.extend(preset_flags(preset).iter().map(|w| w.join(" ")));
    if let Some((flag, values)) = axis {
        words.push(format!("{flag} {{{}}}", values.join("|")));
    }
    text.push_str(&wrap(&words, "  ", "      "));
    if lab.experiment.single_baseline() {
        text.push_str(
            "  and the same sale with --one-process, as a row `single`
",
        );
    }
    // The help's first words, up to its range or default, within 80 columns.
    let help_of = |flag: &str| {
        let help = cmd
            .get_arguments()
            .find(|a| a.get_id().as_str() == flag_id(cmd, flag))
            .and_then(|a| a.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let mut short = help
            .split([':', '[', '(', ','])
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        while short.chars().count() > 54 {
            let cut = short.rfind(' ').unwrap_or(0);
            short.truncate(cut);
            if !short.ends_with('…') {
                short.push('…');
            }
        }
        short
    };
    let preset = preset_flags(preset);
    if !preset.is_empty() {
        text.push_str("\nThe lab presets these; give one to replace it:\n");
        for words in &preset {
            text.push_str(&format!(
                "  {:<22} {}\n",
                words.join(" "),
                help_of(words[0])
            ));
        }
    }
    if let Some((flag, values)) = axis {
        let sentence = format!(
            "It varies {flag} ({}), one {} each; give {flag} to run only that one.",
            values.join(", "),
            if sub == "explore" {
                "exploration"
            } else {
                "sale"
            }
        );
        let words: Vec<String> = sentence.split(' ').map(str::to_string).collect();
        text.push('\n');
        text.push_str(&wrap(&words, "", ""));
        if lab.experiment.single_baseline() {
            text.push_str("--one-process runs only the single row.\n");
        }
    }
    let taken: Vec<String> = preset
        .iter()
        .map(|w| flag_id(cmd, w[0]))
        .chain(axis.map(|(flag, _)| flag_id(cmd, flag)))
        .collect();
    let others: Vec<String> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && a.get_id() != "help")
        .filter(|a| !taken.iter().any(|t| t == a.get_id().as_str()))
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    text.push_str(&format!(
        "\nYou may also give any other flag of `ticketlab {sub}`\n(`ticketlab {sub} --help` says what each does):\n"
    ));
    text.push_str(&wrap(&others, "  ", "  "));
    let example = match axis {
        Some((flag, values)) => format!("ticketlab run {n} {flag} {}", values[values.len() - 1]),
        None => format!("ticketlab run {n} --seed 7"),
    };
    text.push_str(&format!("\nFor example: {example}\n"));
    text
}

/// `words` on lines of at most 78 columns, the first indented by `first`,
/// the rest by `rest`; a word longer than a line has one of its own.
fn wrap(words: &[String], first: &str, rest: &str) -> String {
    let mut text = String::new();
    let mut line = first.to_string();
    let mut fresh = true;
    for word in words {
        if !fresh && line.chars().count() + 1 + word.chars().count() > 78 {
            text.push_str(&line);
            text.push('\n');
            line = rest.to_string();
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        fresh = false;
    }
    text.push_str(&line);
    text.push('\n');
    text
}

/// `ticketlab check N [flags]`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The lab: its number (3 or 03) or short name (see `ticketlab labs`).
    #[arg(value_name = "LAB")]
    pub lab: String,
    /// Read the answers from FILE (`id = value` lines, `#` comments) instead of asking.
    #[arg(long, value_name = "FILE")]
    pub answers_file: Option<PathBuf>,
    /// Print one JSON object: each prediction, the run's figure, and the score.
    #[arg(long)]
    pub json: bool,
    /// Flags of the command the lab runs, overriding its preset as with `run`; give them after check's own flags.
    #[arg(
        value_name = "FLAGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub flags: Vec<String>,
}

impl CheckArgs {
    /// Whether help was asked for among the lab's flags: the lab's help,
    /// as `run N --help` gives it.
    pub(crate) fn wants_lab_help(&self) -> bool {
        self.flags.iter().any(|f| f == "--help" || f == "-h")
    }
}

/// Whether `ticketlab SUB` has the flag `--LONG`: `check` asks for a quiet
/// view only of the commands that have one.
fn takes_flag(sub: &str, long: &str) -> bool {
    use clap::CommandFactory;
    Cli::command()
        .find_subcommand(sub)
        .is_some_and(|cmd| cmd.get_arguments().any(|a| a.get_long() == Some(long)))
}

/// `ticketlab print`.
#[derive(Debug, Clone, Args)]
pub struct PrintArgs {
    /// Worker processes.
    #[arg(short, long, value_name = "N", default_value_t = 3, allow_hyphen_values = true,
          help = format!("Worker processes [1-{}]", print::MAX_WORKERS),
          value_parser = |s: &str| whole_in(s, 1, print::MAX_WORKERS as u64))]
    pub workers: u64,
    /// Unlocked lines each worker prints.
    #[arg(long, value_name = "N", default_value_t = 20, allow_hyphen_values = true,
          help = format!("Unlocked lines each worker prints [1-{}]", print::MAX_LINES),
          value_parser = |s: &str| whole_in(s, 1, print::MAX_LINES as u64))]
    pub lines: u64,
    /// What the shared mutex guards.
    #[arg(short, long, value_name = "LOCK", allow_hyphen_values = true, default_value_t = PrintLock::None, value_enum)]
    pub lock: PrintLock,
    /// Seed of the workers' pauses: any 64-bit number [default: drawn below 2^53, so JSON readers keep it exact].
    #[arg(long, value_name = "N", value_parser = parse_seed, allow_hyphen_values = true)]
    pub seed: Option<u64>,
    /// live and plain print every line; quiet only the counts.
    #[arg(long, value_name = "VIEW", allow_hyphen_values = true, value_enum)]
    pub view: Option<ViewMode>,
    /// Print only one JSON object with the counts.
    #[arg(long)]
    pub json: bool,
}

impl PrintArgs {
    /// The plain settings, and how the run shows itself.
    pub(crate) fn into_config(self) -> (PrintConfig, Output) {
        let cfg = PrintConfig {
            workers: self.workers as usize,
            lines: self.lines as usize,
            lock: self.lock,
            seed: self.seed.unwrap_or_else(crate::seed::draw),
            json: self.json,
        };
        (cfg, Output::lines(self.view, self.json))
    }
}

/// `ticketlab daemon`.
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// Make the child a daemon: it is ended when the parent's main code finishes.
    #[arg(long, conflicts_with = "orphan")]
    pub daemon: bool,
    /// How long the parent's main code runs.
    #[arg(long, value_name = "DUR", allow_hyphen_values = true, default_value = "1s", value_parser = parse_duration,
          help = format!("How long the parent's main code runs [0-{}]", format_duration(MAX_DELAY)))]
    pub parent_runs: Duration,
    /// How long the child runs before its last line.
    #[arg(long, value_name = "DUR", allow_hyphen_values = true, default_value = "3s", value_parser = parse_duration,
          help = format!("How long the child runs before its last line [0-{}]", format_duration(MAX_DELAY)))]
    pub child_runs: Duration,
    /// The parent exits without waiting; the child lives on, re-parented, and ends itself.
    // The orphan writes straight to stdout after the parent has gone, so
    // nothing can keep stdout to one JSON object.
    #[arg(long, conflicts_with = "json")]
    pub orphan: bool,
    /// live and plain print the timeline; quiet only the outcome.
    #[arg(long, value_name = "VIEW", allow_hyphen_values = true, value_enum)]
    pub view: Option<ViewMode>,
    /// Print only one JSON object with the outcome.
    #[arg(long)]
    pub json: bool,
}

/// Every setting chosen by name becomes a clap value enum here, from its
/// [`Named`] list, so `--help` lists each value with its meaning and a wrong
/// one is refused naming them; the settings themselves never see clap.
macro_rules! value_enum {
    ($($t:ty),*) => {$(
        impl clap::ValueEnum for $t {
            fn value_variants<'a>() -> &'a [Self] {
                <$t as Named>::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.name()).help(self.about()))
            }
        }
    )*};
}

value_enum!(
    StoreKind, LockMode, ViewMode, ColorMode, PrintLock, Then, Find
);

impl DaemonArgs {
    /// The plain settings, and how the run shows itself.
    pub(crate) fn into_config(self) -> (DaemonConfig, Output) {
        let cfg = DaemonConfig {
            daemon: self.daemon,
            parent_runs: self.parent_runs,
            child_runs: self.child_runs,
            orphan: self.orphan,
        };
        (cfg, Output::lines(self.view, self.json))
    }
}

/// Flags of one sale. Every field is optional so a lab's preset can fill
/// what the command line leaves out.
#[derive(Debug, Clone, Default, Args)]
pub struct SaleArgs {
    /// Buyer processes.
    #[arg(short, long, value_name = "N", allow_hyphen_values = true,
          help = format!("Buyer processes [1-{MAX_WORKERS}, default {DEFAULT_WORKERS}]"),
          value_parser = |s: &str| whole_in(s, 1, MAX_WORKERS as u64))]
    pub workers: Option<u64>,
    /// Tickets on sale.
    #[arg(short, long, value_name = "N", allow_hyphen_values = true,
          help = format!("Tickets on sale [0-10^{}, default {DEFAULT_TICKETS}]", MAX_TICKETS.ilog10()),
          value_parser = |s: &str| whole_in(s, 0, MAX_TICKETS))]
    pub tickets: Option<u64>,
    /// Where the count lives [default shm].
    #[arg(
        short,
        long,
        value_name = "STORE",
        allow_hyphen_values = true,
        value_enum
    )]
    pub store: Option<StoreKind>,
    /// How buyers are kept apart [default buy].
    #[arg(
        short,
        long,
        value_name = "LOCK",
        allow_hyphen_values = true,
        value_enum
    )]
    pub lock: Option<LockMode>,
    /// Tickets each buyer tries to buy, or `all` to keep buying until sold out [default 1].
    #[arg(long, value_name = "N|all", allow_hyphen_values = true, value_parser = parse_wants)]
    pub wants: Option<Wants>,
    /// Time each buyer process takes to start before it can work, as Python's multiprocessing pays tens of ms to start a worker [default 0].
    #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = parse_duration)]
    pub start_delay: Option<Duration>,
    /// Latency of the search that only shows the count, outside the lock (inside it under --lock task) [default 0].
    #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = parse_duration)]
    pub search_delay: Option<Duration>,
    /// Latency between reading the count and acting on it, e.g. 50us, 100ms, 0.2s [default 0].
    #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = parse_duration)]
    pub read_delay: Option<Duration>,
    /// Latency before the write lands [default 0].
    #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = parse_duration)]
    pub write_delay: Option<Duration>,
    /// Draw each delay uniformly between 0 and its DUR, with the buyer's own seeded RNG.
    #[arg(long, overrides_with = "no_jitter")]
    pub jitter: bool,
    /// Fixed delays (turns off a lab preset's --jitter).
    #[arg(long, overrides_with = "jitter")]
    pub no_jitter: bool,
    /// Seed of the buyers' RNGs: any 64-bit number [default: drawn below 2^53, so JSON readers keep it exact, and printed so the run can be repeated].
    #[arg(long, value_name = "N", value_parser = parse_seed, allow_hyphen_values = true)]
    pub seed: Option<u64>,
    /// The file store's JSON file, or the sqlite store's database, kept afterwards: a regular file or a new path [default: a temporary file, removed].
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Overwrite the --db file even if it holds something other than a ticket store (sqlite: start a new database).
    #[arg(long)]
    pub db_reset: bool,
    /// Be the scheduler: which buyer takes each shared step, e.g. 1,1,2,2,2,1 or 1x2,2x3,1 or 1S,1R,2S,2R,2W,1W (buyers from 1).
    #[arg(long, value_name = "SCHED", allow_hyphen_values = true, value_parser = parse_schedule, conflicts_with = "schedule_file")]
    pub schedule: Option<Schedule>,
    /// Read the schedule from a file (as written by --save-schedule).
    #[arg(long, value_name = "FILE")]
    pub schedule_file: Option<PathBuf>,
    /// Run every buyer's task one after another in a single process, with the same delays and no lock: the baseline without concurrency.
    #[arg(long)]
    pub one_process: bool,
    /// Buyer BUYER (from 1) kills itself (SIGKILL) right before its first STEP: a step name or letter, e.g. 1:write or 1:W, keyed to its own steps, not to time.
    #[arg(long, value_name = "BUYER:STEP", allow_hyphen_values = true, value_parser = parse_crash)]
    pub crash: Option<config::Crash>,
    /// Who moves when the schedule runs out [default lowest].
    #[arg(long, value_name = "WHAT", allow_hyphen_values = true, value_enum)]
    pub then: Option<Then>,
    /// The PostgreSQL server of --store postgres, e.g. postgresql://user:pw@host/db or postgresql:///db?host=/tmp [default: $TICKETLAB_DB_URL].
    #[arg(long, value_name = "URL", allow_hyphen_values = true, value_parser = parse_db_url)]
    pub db_url: Option<String>,
    /// Database stores: the sale's name; runs that name the same sale share it (the first creates it with --tickets) [default: a sale of the run's own].
    #[arg(long, value_name = "NAME", allow_hyphen_values = true, value_parser = parse_sale)]
    pub sale: Option<String>,
}

/// The environment variable that names the PostgreSQL server when
/// `--db-url` is not given (`scripts/with-postgres` sets it).
pub const DB_URL_ENV: &str = "TICKETLAB_DB_URL";

/// How a run shows itself.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// How the run shows itself while it goes [default: live on a terminal, else plain].
    #[arg(long, value_name = "VIEW", allow_hyphen_values = true, value_enum)]
    pub view: Option<ViewMode>,
    /// Print exactly one JSON object on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// When the live screen uses colour [default: auto].
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true, value_enum, default_value_t = ColorMode::Auto, hide_default_value = true)]
    pub color: ColorMode,
    /// After the run, print every operation in time order, the schedule, and name each lost update.
    #[arg(long)]
    pub trace: bool,
    /// Write the run's interleaving to FILE, as a schedule --schedule-file replays.
    #[arg(long, value_name = "FILE")]
    pub save_schedule: Option<PathBuf>,
}

impl OutputArgs {
    /// The plain settings (`--save-schedule` is the sale's to act on).
    pub(crate) fn to_output(&self) -> Output {
        Output {
            view: self.view,
            json: self.json,
            trace: self.trace,
            color: self.color,
        }
    }
}

/// `ticketlab sell`.
#[derive(Debug, Clone, Args)]
pub struct SellArgs {
    /// The sale.
    #[command(flatten)]
    pub sale: SaleArgs,
    /// The output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `ticketlab sell`: one sale, or with `--step` the same as `ticketlab step`.
#[derive(Debug, Clone, Args)]
pub struct SellCommandArgs {
    /// The sale and its output.
    #[command(flatten)]
    pub sell: SellArgs,
    /// Be the scheduler at the keys: the same as `ticketlab step` with these flags.
    #[arg(long)]
    pub step: bool,
}

/// `ticketlab sales`.
#[derive(Debug, Clone, Args)]
pub struct SalesArgs {
    /// The PostgreSQL server [default: $TICKETLAB_DB_URL].
    #[arg(long, value_name = "URL", conflicts_with = "db", allow_hyphen_values = true, value_parser = parse_db_url)]
    pub db_url: Option<String>,
    /// A SQLite database file written by `--store sqlite --db PATH`.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Show only this sale.
    #[arg(long, value_name = "NAME", allow_hyphen_values = true, value_parser = parse_sale)]
    pub sale: Option<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

impl SalesArgs {
    /// The plain settings: where the sales are, or what is missing.
    pub(crate) fn into_config(self) -> Result<crate::sales::SalesConfig, String> {
        let engine = match (self.db, self.db_url) {
            (Some(path), _) => crate::store::database::Engine::Sqlite(path),
            (None, Some(url)) => crate::store::database::Engine::Postgres(url),
            (None, None) => match std::env::var(DB_URL_ENV) {
                Ok(url) if !url.is_empty() => crate::store::database::Engine::Postgres(url),
                _ => {
                    return Err(format!(
                        "sales needs --db-url URL (a PostgreSQL server), --db PATH (a SQLite file) or ${DB_URL_ENV}"
                    ));
                }
            },
        };
        if let crate::store::database::Engine::Postgres(url) = &engine {
            crate::store::database::check_url(url).map_err(|e| format!("--db-url: {e}"))?;
        }
        Ok(crate::sales::SalesConfig {
            engine,
            sale: self.sale,
            json: self.json,
        })
    }
}

/// `ticketlab explore`.
#[derive(Debug, Clone, Args)]
pub struct ExploreArgs {
    /// Buyer processes.
    #[arg(short, long, value_name = "N", default_value_t = 2, allow_hyphen_values = true,
          help = format!("Buyer processes [1-{}]", explore::MAX_WORKERS),
          value_parser = |s: &str| whole_in(s, 1, explore::MAX_WORKERS))]
    pub workers: u64,
    /// Tickets on sale.
    #[arg(short, long, value_name = "N", default_value_t = 1, allow_hyphen_values = true,
          help = format!("Tickets on sale [0-{}]", explore::MAX_TICKETS),
          value_parser = |s: &str| whole_in(s, 0, explore::MAX_TICKETS))]
    pub tickets: u64,
    /// Where the count lives.
    #[arg(short, long, value_name = "STORE", allow_hyphen_values = true, default_value_t = StoreKind::Shm, value_enum)]
    pub store: StoreKind,
    /// How buyers are kept apart.
    #[arg(short, long, value_name = "LOCK", allow_hyphen_values = true, default_value_t = LockMode::None, value_enum)]
    pub lock: LockMode,
    /// Tickets each buyer tries to buy.
    #[arg(long, value_name = "N", default_value_t = 1, allow_hyphen_values = true,
          help = format!("Tickets each buyer tries to buy [1-{}]", explore::MAX_WANTS),
          value_parser = |s: &str| whole_in(s, 1, explore::MAX_WANTS))]
    pub wants: u64,
    /// Explore only schedules with at most K preemptions (switches away from a buyer that could go on).
    #[arg(long, value_name = "K", allow_hyphen_values = true,
          value_parser = |s: &str| whole_in(s, 0, u32::MAX.into()).map(|k| k as usize))]
    pub preemptions: Option<usize>,
    /// Stop after N real runs (one run per trace, which may stand for many schedules).
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = |s: &str| whole_in(s, 1, u64::MAX))]
    pub max_schedules: Option<u64>,
    /// Stop at the first schedule that ends so.
    #[arg(long, value_name = "WHAT", allow_hyphen_values = true, value_enum)]
    pub find: Option<Find>,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    pub json: bool,
}

impl ExploreArgs {
    /// The plain settings.
    pub fn into_config(self) -> Result<ExploreConfig, config::ConfigError> {
        let sale = SaleConfig::bare(
            self.workers as usize,
            self.tickets,
            Wants::Count(self.wants),
            self.store,
            self.lock,
            0,
        );
        if self.store.is_database() {
            return Err(config::ConfigError::ExploreDatabase);
        }
        sale.validate()?;
        Ok(ExploreConfig {
            sale,
            preemptions: self.preemptions,
            max_schedules: self.max_schedules.map(|n| n as usize),
            find: self.find,
        })
    }
}

/// `ticketlab bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Rounds per measurement; the median is reported.
    #[arg(long, value_name = "N", default_value_t = 3, allow_hyphen_values = true,
          help = format!("Rounds per measurement; the median is reported [1-{}]", bench::MAX_ROUNDS),
          value_parser = |s: &str| whole_in(s, 1, bench::MAX_ROUNDS.into()).map(|n| n as u32))]
    pub rounds: u32,
    /// Print one JSON object instead of the table (docs/json.md lists its fields).
    #[arg(long)]
    pub json: bool,
    /// Run only the scenarios whose name contains this, e.g. shm+buy, server, start.
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    pub only: Option<String>,
    /// Also run the C and Python reference programs of each mechanism, side by side in each round (built from bench/anchors/ into a scratch directory, removed afterwards); with DIR, DIR/anchor.c and DIR/anchor.py instead.
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    pub anchors: Option<Option<PathBuf>>,
}

impl BenchArgs {
    /// The plain settings.
    pub(crate) fn into_config(self) -> crate::bench::BenchConfig {
        use crate::bench::AnchorSource;
        crate::bench::BenchConfig {
            rounds: self.rounds,
            json: self.json,
            only: self.only,
            anchors: self
                .anchors
                .map(|dir| dir.map_or(AnchorSource::Ours, AnchorSource::Dir)),
        }
    }
}

/// A whole number in `lo..=hi`, spaces around it allowed (as durations
/// allow them), and an error that says what is allowed: clap names the flag.
fn whole_in(s: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let allowed = || format!("must be a whole number from {lo} to {hi}");
    match s.trim().parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(allowed()),
    }
}

/// A seed: any 64-bit number, read as every other number is.
fn parse_db_url(s: &str) -> Result<String, String> {
    crate::store::database::check_url(s).map_err(|e| {
        format!("'{s}' is not a PostgreSQL URL: {e} (allowed: postgresql://user:password@host:5432/database, or host=... dbname=... settings)")
    })?;
    Ok(s.to_string())
}

fn parse_sale(s: &str) -> Result<String, String> {
    if config::valid_sale_name(s) {
        Ok(s.to_string())
    } else {
        Err(config::ConfigError::SaleName(s.to_string()).to_string())
    }
}

fn parse_seed(s: &str) -> Result<u64, String> {
    whole_in(s, 0, u64::MAX)
}

fn parse_schedule(s: &str) -> Result<Schedule, String> {
    Schedule::parse(s)
}

fn parse_crash(s: &str) -> Result<config::Crash, String> {
    s.parse()
}

fn parse_wants(s: &str) -> Result<Wants, String> {
    s.parse()
}

impl SaleArgs {
    /// Fills the unset flags from `preset` (a lab's flags).
    pub fn over(self, preset: SaleArgs) -> SaleArgs {
        SaleArgs {
            workers: self.workers.or(preset.workers),
            tickets: self.tickets.or(preset.tickets),
            store: self.store.or(preset.store),
            lock: self.lock.or(preset.lock),
            wants: self.wants.or(preset.wants),
            start_delay: self.start_delay.or(preset.start_delay),
            search_delay: self.search_delay.or(preset.search_delay),
            read_delay: self.read_delay.or(preset.read_delay),
            write_delay: self.write_delay.or(preset.write_delay),
            jitter: !self.no_jitter && (self.jitter || preset.jitter),
            no_jitter: self.no_jitter,
            seed: self.seed.or(preset.seed),
            // The reset goes with the file it was given for: a preset's
            // --db-reset never applies to a --db given on the command line.
            db_reset: if self.db.is_some() {
                self.db_reset
            } else {
                self.db_reset || preset.db_reset
            },
            db: self.db.or(preset.db),
            schedule: self.schedule.or(preset.schedule),
            schedule_file: self.schedule_file.or(preset.schedule_file),
            then: self.then.or(preset.then),
            one_process: self.one_process || preset.one_process,
            crash: self.crash.or(preset.crash),
            db_url: self.db_url.or(preset.db_url),
            sale: self.sale.or(preset.sale),
        }
    }

    /// The plain settings, with defaults applied and combinations checked.
    pub fn into_config(self, trace: bool) -> Result<SaleConfig, config::ConfigError> {
        if self.db_reset && self.db.is_none() {
            return Err(config::ConfigError::ResetWithoutDb);
        }
        let cfg = SaleConfig {
            workers: self.workers.unwrap_or(DEFAULT_WORKERS) as usize,
            tickets: self.tickets.unwrap_or(DEFAULT_TICKETS),
            wants: self.wants.unwrap_or(Wants::Count(1)),
            store: self.store.unwrap_or(StoreKind::Shm),
            // One process needs no lock: the default lock does not apply,
            // and a lock given is refused by `validate`.
            lock: self.lock.unwrap_or(if self.one_process {
                LockMode::None
            } else {
                LockMode::Buy
            }),
            start_delay: self.start_delay.unwrap_or_default(),
            search_delay: self.search_delay.unwrap_or_default(),
            read_delay: self.read_delay.unwrap_or_default(),
            write_delay: self.write_delay.unwrap_or_default(),
            jitter: self.jitter && !self.no_jitter,
            seed: self.seed.unwrap_or_else(crate::seed::draw),
            db: self.db.map(|path| DbFile {
                path,
                reset: self.db_reset,
            }),
            trace,
            schedule: match (self.schedule, self.schedule_file) {
                (Some(s), _) => Some((s, self.then.unwrap_or(Then::Lowest))),
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        config::ConfigError::ScheduleFile(format!("{}: {e}", path.display()))
                    })?;
                    let schedule = Schedule::parse(&text).map_err(|e| {
                        config::ConfigError::ScheduleFile(format!("{}: {e}", path.display()))
                    })?;
                    Some((schedule, self.then.unwrap_or(Then::Lowest)))
                }
                (None, None) if self.then.is_some() => {
                    return Err(config::ConfigError::ThenWithoutSchedule);
                }
                (None, None) => None,
            },
            one_process: self.one_process,
            crash: self.crash,
            // The environment names the server only where one is wanted:
            // `--db-url` given with another store is a mistake, a variable
            // left set is not.
            db_url: self.db_url.or_else(|| {
                (self.store == Some(StoreKind::Postgres))
                    .then(|| std::env::var(DB_URL_ENV).ok())
                    .flatten()
                    .filter(|u| !u.is_empty())
            }),
            sale: self.sale,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Past this module nothing sees clap: the code that runs a task names
    /// neither clap nor this module and its argument structs.
    #[test]
    fn past_the_command_line_no_code_names_clap_or_its_arguments() {
        let files = [
            ("app.rs", include_str!("app.rs")),
            ("task.rs", include_str!("task.rs")),
            ("check.rs", include_str!("check.rs")),
        ];
        for (file, text) in files {
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for word in ["clap", "cli::", "Args"] {
                    assert!(!code.contains(word), "{file}:{}: {line}", n + 1);
                }
            }
        }
    }

    /// `run N` as plain settings, with `flags`.
    fn lab_run_of(lab: &str, flags: &[&str]) -> LabRun {
        match lab_job(lab, flags.iter().map(|f| f.to_string()).collect()) {
            Ok(Job::Lab(run)) => run,
            _ => panic!("run {lab} {flags:?} is no lab run"),
        }
    }

    /// Lab 4 arrives cut into its rows: one sale per lock, then the single
    /// row, which takes no lock; all on one seed.
    #[test]
    fn lab04_arrives_as_one_row_per_lock_and_the_single_row_on_one_seed() {
        let run = lab_run_of("4", &["-w", "3"]);
        assert!(run.shown.contains("--lock {none|write|buy|task|join}"));
        assert!(run.shown.ends_with("-w 3 --one-process"), "{}", run.shown);
        let Job::Compare(comparison) = *run.job else {
            panic!("lab 4 is a comparison");
        };
        let names: Vec<&str> = comparison.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["none", "write", "buy", "task", "join", "single"]);
        let locks: Vec<LockMode> = comparison.rows.iter().map(|r| r.sale.lock).collect();
        let named: Vec<&str> = locks.iter().map(|l| l.name()).collect();
        assert_eq!(named, ["none", "write", "buy", "task", "join", "none"]);
        let single = &comparison.rows[5];
        assert!(single.sale.one_process && single.heading == "--one-process");
        assert!(comparison.rows.iter().all(|r| r.sale.workers == 3));
        let seed = comparison.rows[0].sale.seed;
        assert!(comparison.rows.iter().all(|r| r.sale.seed == seed));
    }

    /// The flag a comparison varies, given, runs that one sale alone; a
    /// refused setting waits to be said after the command line.
    #[test]
    fn a_lab_run_is_one_sale_or_a_refusal_after_its_command_line() {
        let run = lab_run_of("4", &["-l", "task"]);
        let Job::Sell(one) = *run.job else {
            panic!("run 4 -l task is one sale");
        };
        assert_eq!(one.sale.lock, LockMode::Task);
        let run = lab_run_of("10", &["--store", "server"]);
        assert!(run.shown.starts_with("ticketlab explore"), "{}", run.shown);
        let Job::Refused(why) = *run.job else {
            panic!("run 10 --store server is refused");
        };
        assert!(why.starts_with("--lock write: "), "{why}");
    }

    #[test]
    fn clap_errors_fold_into_one_line() {
        let rendered = "error: invalid value '0' for '--workers <N>': 0 is not in 1..=1000\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "ticketlab: error: invalid value '0' for '--workers <N>': 0 is not in 1..=1000"
        );
        let rendered = "error: invalid value 'disk' for '--store <STORE>'\n  [possible values: shm, file]\n\n  tip: a similar value exists: 'file'\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "ticketlab: error: invalid value 'disk' for '--store <STORE>' (allowed: shm, file) tip: a similar value exists: 'file'"
        );
    }

    /// A value that starts with `-` (`-w -5`, `--read-delay -1ms`) is a bad
    /// value of its flag, whichever flag: the error names the flag and what
    /// it allows, instead of clap's "unexpected argument '-5'". Walks every option of every
    /// command, so a new flag cannot miss it.
    #[test]
    fn a_negative_value_is_refused_by_its_flag_name() {
        let cli = Cli::command();
        let mut wrong = Vec::new();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if arg.is_positional() || !arg.get_action().takes_values() {
                    continue;
                }
                // A path may start with `-` only as `./-x`, as everywhere:
                // `--db --json` must not name a file `--json`.
                let names = arg.get_value_names().unwrap_or_default();
                if names
                    .iter()
                    .any(|n| ["PATH", "FILE", "DIR"].contains(&n.as_str()))
                {
                    continue;
                }
                let flag = format!("--{long}");
                for value in ["-1", "-5ms"] {
                    let argv = ["ticketlab", sub.get_name(), flag.as_str(), value];
                    let message = match Cli::try_parse_from(argv) {
                        Ok(_) => continue,
                        Err(e) => one_line(&e.render().to_string()),
                    };
                    let says_allowed = ["allowed", "from", "one of"]
                        .iter()
                        .any(|w| message.contains(w));
                    if !message.contains(&flag) || !says_allowed {
                        wrong.push(format!("{} {flag} {value}: {message}", sub.get_name()));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// Every value of a named setting is taken by its own name, and only
    /// by it.
    fn names_round_trip<T: Named + clap::ValueEnum + std::fmt::Debug + std::fmt::Display>() {
        let mut seen = std::collections::HashSet::new();
        for v in T::ALL {
            assert!(seen.insert(v.name()), "{} twice", v.name());
            assert_eq!(T::from_str(v.name(), false), Ok(*v));
            assert_eq!(v.to_string(), v.name());
            assert!(!v.about().is_empty());
        }
        assert!(T::from_str("both", false).is_err());
    }

    #[test]
    fn every_named_setting_round_trips_through_its_name() {
        names_round_trip::<StoreKind>();
        names_round_trip::<LockMode>();
        names_round_trip::<ViewMode>();
        names_round_trip::<PrintLock>();
        names_round_trip::<Then>();
        names_round_trip::<Find>();
    }

    #[test]
    fn the_tickets_help_says_its_bound_exactly() {
        // The help writes the bound as a power of ten.
        assert_eq!(10u64.pow(MAX_TICKETS.ilog10()), MAX_TICKETS);
    }

    #[test]
    fn command_line_flags_win_over_a_preset() {
        let cli = SaleArgs {
            lock: Some(LockMode::Task),
            ..SaleArgs::default()
        };
        let preset = SaleArgs {
            lock: Some(LockMode::None),
            workers: Some(20),
            ..SaleArgs::default()
        };
        let merged = cli.over(preset);
        assert_eq!(merged.lock, Some(LockMode::Task));
        assert_eq!(merged.workers, Some(20));
    }

    #[test]
    fn db_reset_needs_db_and_goes_with_its_file() {
        let reset_alone = SaleArgs {
            db_reset: true,
            store: Some(StoreKind::File),
            ..SaleArgs::default()
        };
        assert_eq!(
            reset_alone.clone().into_config(false).err(),
            Some(config::ConfigError::ResetWithoutDb)
        );
        let preset = SaleArgs {
            db: Some("lab.json".into()),
            ..reset_alone
        };
        let own_file = SaleArgs {
            db: Some("mine.json".into()),
            ..SaleArgs::default()
        };
        assert!(!own_file.over(preset.clone()).db_reset);
        let merged = SaleArgs::default().over(preset);
        let cfg = merged.into_config(false).unwrap();
        assert_eq!(
            cfg.db,
            Some(DbFile {
                path: "lab.json".into(),
                reset: true
            })
        );
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cfg = SaleArgs {
            seed: Some(1),
            ..SaleArgs::default()
        }
        .into_config(false)
        .unwrap();
        assert_eq!((cfg.workers, cfg.tickets), (100, 1));
        assert_eq!((cfg.store, cfg.lock), (StoreKind::Shm, LockMode::Buy));
    }
}
