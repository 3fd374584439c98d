//! The commands: each turns plain settings into a run and a way to exit.

use std::io::{self, IsTerminal, Write};

use anyhow::Context;

use crate::check::{self, CheckConfig, Figure, Graded, LabChecks};
use crate::config::{Output, SaleConfig, ViewMode};
use crate::demo::daemon::{self, DaemonConfig};
use crate::demo::print::{self, PrintConfig};
use crate::exit::Exit;
use crate::explore::ExploreConfig;
use crate::labs;
use crate::observe::{LiveObserver, PlainObserver};
use crate::progress::{self, Progress};
use crate::report::human_rate;
use crate::report::{Ending, SaleReport};
use crate::sheet;
use crate::supervisor::{self, Observer, Quiet};
use crate::task::{Comparison, Explorations, Job, LabRun, SaleRow, SaleRun, Task};
use crate::view::Target;

/// Runs one parsed command.
pub fn run(task: Task) -> anyhow::Result<Exit> {
    perform(task.0)
}

fn perform(job: Job) -> anyhow::Result<Exit> {
    match job {
        Job::Sell(run) => sell_command(run),
        Job::Bench(cfg) => crate::bench::run(&cfg),
        Job::Explore { cfg, json } => explore_command(&cfg, json),
        Job::Sales(cfg) => crate::sales::run(&cfg),
        Job::Step {
            sale,
            output,
            save_to,
        } => step_command(sale, output, save_to),
        Job::Labs => list_labs(),
        Job::Show(text) => {
            io::stdout().lock().write_all(text.as_bytes())?;
            Ok(Exit::Success)
        }
        Job::Sheet {
            lab,
            explain,
            answers,
        } => show_lab(lab, explain, answers),
        Job::Lab(run) => run_lab(run),
        Job::Compare(comparison) => compare_sales(comparison),
        Job::Explorations(explorations) => explore_each(explorations),
        Job::Check(cfg) => check_lab(cfg),
        Job::Print(cfg, output) => print_command(&cfg, output),
        Job::Daemon(cfg, output) => daemon_command(&cfg, output),
        Job::Refused(why) => Ok(usage(why)),
    }
}

/// The labs, each on two lines (number, title and command, then the goal
/// indented below) so the list fits an 80-column terminal. A `✓` after the
/// number marks a lab the student has checked.
fn list_labs() -> anyhow::Result<Exit> {
    // Progress is a nicety: a list without ticks beats no list at all.
    let done = progress::state_dir()
        .and_then(|dir| Progress::load(&dir))
        .map(|p| p.labs)
        .unwrap_or_else(|e| {
            eprintln!("ticketlab: warning: progress not shown: {e}");
            Default::default()
        });
    let mut out = io::stdout().lock();
    let title = labs::LABS.iter().map(|l| l.title.len()).max().unwrap_or(0);
    // The short name is shown because `lab` and `run` accept it in place of
    // the number.
    let short = labs::LABS.iter().map(|l| l.short.len()).max().unwrap_or(0);
    writeln!(
        out,
        "{:<3}    {:<short$}  {:<title$}  command",
        "lab", "name", "title"
    )?;
    for lab in labs::LABS {
        let mark = if done.contains_key(&lab.number) {
            "✓"
        } else {
            " "
        };
        writeln!(
            out,
            "{:<3} {mark}  {:<short$}  {:<title$}  ticketlab run {}\n     {}",
            lab.number, lab.short, lab.title, lab.number, lab.goal
        )?;
    }
    writeln!(
        out,
        "\nRead a sheet with `ticketlab lab N`, run it with `ticketlab run N`;\n\
         N is a lab's number or its name. ✓ marks a lab you have checked your\n\
         predictions against with `ticketlab check N`."
    )?;
    Ok(Exit::Success)
}

/// Shows a lab's sheet in halves, so a student predicts before seeing any
/// result: Goal to Run alone, then up to Try this with `--explain`, then the
/// whole sheet with `--answers`. Each part's footer names the next command.
fn show_lab(lab: &labs::Lab, explain: bool, answers: bool) -> anyhow::Result<Exit> {
    let n = lab.number;
    let (text, next) = if answers {
        (lab.sheet, None)
    } else if explain {
        (
            lab.sheet_before("Answers"),
            Some(format!("(answers: ticketlab lab {n} --answers)")),
        )
    } else {
        (
            lab.sheet_before("Observe"),
            Some(format!("(after your run: ticketlab lab {n} --explain)")),
        )
    };
    let styled = io::stdout().is_terminal();
    let mut out = io::stdout().lock();
    write!(out, "{}", sheet::render(text, styled))?;
    if let Some(next) = next {
        writeln!(out, "\n{next}")?;
    }
    Ok(Exit::Success)
}

/// `ticketlab run N`: shows the command line the lab runs, then runs it.
fn run_lab(run: LabRun) -> anyhow::Result<Exit> {
    // Students learn the real flags from this line; with --json it must not
    // share stdout with the JSON object.
    if run.json {
        eprintln!("$ {}", run.shown);
    } else {
        writeln!(io::stdout(), "$ {}", run.shown)?;
    }
    perform(*run.job)
}

/// `ticketlab check N`: takes the student's predictions, runs lab N as
/// `run N` does, grades each prediction against that run's JSON report and
/// records the lab as checked. A wrong prediction is no failure: the exit
/// is the run's own.
fn check_lab(cfg: CheckConfig) -> anyhow::Result<Exit> {
    let (lab, checks) = (cfg.lab, cfg.checks);
    let answers = match &cfg.answers_file {
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => return Ok(usage(format!("--answers-file {}: {e}", path.display()))),
            };
            match check::parse_answers(&text, checks) {
                Ok(answers) => answers,
                Err(e) => return Ok(usage(format!("{}: {e}", path.display()))),
            }
        }
        None => match ask(lab, checks)? {
            Ok(answers) => answers,
            Err(e) => return Ok(usage(e)),
        },
    };
    let (report, exit) = match run_for_check(lab, &cfg.run)? {
        Ok(found) => found,
        Err(exit) => return Ok(exit),
    };
    let graded: Vec<Graded> = checks
        .predictions
        .iter()
        .zip(answers)
        .map(|(p, answer)| Graded::new(p, answer, &report))
        .collect();
    let score = check::score(&graded);
    let mut out = io::stdout().lock();
    if cfg.json {
        crate::json::write_document(
            &mut out,
            &check::CheckJson {
                lab: lab.number,
                predictions: graded.iter().map(Graded::to_json).collect(),
                score,
            },
        )?;
    } else {
        for g in &graded {
            writeln!(out, "{}", g.line())?;
        }
        writeln!(
            out,
            "score: {} of {} right{}; why: ticketlab lab {} --explain",
            score.correct,
            score.graded,
            if score.graded < score.total {
                format!(" ({} not graded)", score.total - score.graded)
            } else {
                String::new()
            },
            lab.number
        )?;
    }
    // A run that was stopped or failed is graded as far as it got, but the
    // lab is not done. Progress is a nicety: failing to keep it must not
    // hide the grades.
    let recorded = if exit == Exit::Success || check::failed_only_as_asked(&report) {
        progress::state_dir().and_then(|dir| Progress::record(&dir, lab.number, score))
    } else {
        Ok(())
    };
    if let Err(e) = recorded {
        eprintln!("ticketlab: warning: progress not recorded: {e}");
    }
    // A holder killed on purpose (`--crash`, lab 8) fails its sale; that
    // is the lesson, not a failed check.
    if check::failed_only_as_asked(&report) {
        return Ok(Exit::Success);
    }
    Ok(exit)
}

/// Asks each prediction on the terminal, one line each. Prompts go to
/// stderr so that with `--json` stdout stays one JSON object. Answers may
/// also be piped in; then a bad one ends the check instead of asking again.
fn ask(
    lab: &labs::Lab,
    checks: &LabChecks,
) -> anyhow::Result<Result<Vec<Figure>, check::AnswerError>> {
    let interactive = io::stdin().is_terminal();
    let mut err = io::stderr().lock();
    writeln!(
        err,
        "Lab {}: {}. Predict, then this run checks you.",
        lab.number, lab.title
    )?;
    // Piped answers go in this order, which need not be the sheet's.
    let ids: Vec<&str> = checks.predictions.iter().map(|p| p.id).collect();
    writeln!(
        err,
        "{} of the sheet's questions, in this order: {}",
        checks.predictions.len(),
        ids.join(", ")
    )?;
    let mut answers = Vec::new();
    let mut lines = io::stdin().lock();
    for p in checks.predictions {
        loop {
            write!(err, "{}. {} [{}] ", p.id, p.question, p.kind.hint())?;
            err.flush()?;
            let mut line = String::new();
            let read = io::BufRead::read_line(&mut lines, &mut line)?;
            // A piped answer is not echoed: end the prompt's line ourselves.
            if !interactive && read > 0 {
                writeln!(err)?;
            }
            if read == 0 {
                writeln!(err)?;
                return Ok(Err(check::AnswerError::Missing {
                    id: p.id,
                    question: p.question,
                }));
            }
            match p.parse(&line) {
                Ok(answer) => {
                    answers.push(answer);
                    break;
                }
                Err(e) if interactive => writeln!(err, "  {e}; try again")?,
                Err(e) => return Ok(Err(e)),
            }
        }
    }
    Ok(Ok(answers))
}

/// Runs lab `lab` as `ticketlab run N` would (`argv`: `run N` and its
/// flags, which ask for `--json` and a quiet view), in a child process of
/// this very binary: `run` owns how a lab becomes a command, and its JSON
/// goes to a pipe we read rather than to our stdout. The printed command
/// line (on stderr) shows the student what ran. Returns the report and the
/// run's exit, or the exit to end with if there is no report to grade.
fn run_for_check(
    lab: &labs::Lab,
    argv: &[String],
) -> anyhow::Result<Result<(serde_json::Value, Exit), Exit>> {
    use std::os::unix::process::ExitStatusExt;
    let exe = std::env::current_exe().context("finding this program to run the lab")?;
    let output = std::process::Command::new(exe)
        .args(argv)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the lab")?;
    let exit = match (output.status.code(), output.status.signal()) {
        (Some(0), _) => Exit::Success,
        (Some(2), _) => return Ok(Err(Exit::Usage)),
        (Some(code), _) if code > 128 => Exit::Signal(code - 128),
        (_, Some(sig)) => Exit::Signal(sig),
        _ => Exit::Failure,
    };
    let text = String::from_utf8_lossy(&output.stdout);
    match serde_json::from_str(text.trim()) {
        Ok(report) => Ok(Ok((report, exit))),
        // The run already said why it stopped, on stderr.
        Err(_) if exit != Exit::Success => Ok(Err(exit)),
        Err(e) => anyhow::bail!("lab {} printed no JSON report: {e}", lab.number),
    }
}

/// Explores once per value of `flag`, printing each summary in turn and
/// then one table (`--json`: one object with an `explorations` array).
/// Every value's settings were checked before anything ran (`cli.rs`), so
/// a refused combination costs no half-finished comparison.
fn explore_each(explorations: Explorations) -> anyhow::Result<Exit> {
    use crate::explore::{self, ExploreError};
    let Explorations {
        lab,
        flag,
        rows: configs,
        json,
    } = explorations;
    let mut found = Vec::new();
    for (value, cfg) in configs {
        let exploration = match explore::explore(&cfg, |progress| {
            if !json {
                explore::progress_line(progress);
            }
        }) {
            Ok(exploration) => exploration,
            Err(ExploreError::Stopped(sig)) => return Ok(Exit::Signal(sig)),
            Err(e) => return Err(e).context("exploring failed"),
        };
        if io::stderr().is_terminal() && !json {
            eprint!("\r\x1b[K");
        }
        if !json {
            let mut out = io::stdout().lock();
            writeln!(out, "{flag} {value}:")?;
            exploration.write_summary(&mut out)?;
            writeln!(out)?;
        }
        found.push((value, exploration));
    }
    let mut out = io::stdout().lock();
    if json {
        let explorations: Vec<&explore::Exploration> = found.iter().map(|(_, x)| x).collect();
        crate::json::write_document(
            &mut out,
            &ComparedExplorations {
                lab,
                varies: flag,
                explorations,
            },
        )?;
    } else {
        write_exploration_table(&mut out, flag, &found)?;
    }
    Ok(Exit::Success)
}

/// A lab's comparison of sales as its JSON document holds it: the lab,
/// the flag that varies, then each sale, in that order.
#[derive(serde::Serialize)]
struct ComparedSales<'a> {
    lab: u8,
    varies: &'a str,
    sales: Vec<crate::report::SaleJson<'a>>,
}

/// The same for a lab that explores once per value.
#[derive(serde::Serialize)]
struct ComparedExplorations<'a> {
    lab: u8,
    varies: &'a str,
    explorations: Vec<&'a crate::explore::Exploration>,
}

/// The explorations side by side, one per row: how many schedules, how many
/// oversold, and the shortest way to fail. Fits 78 columns up to 3 buyers.
fn write_exploration_table(
    out: &mut dyn Write,
    flag: &str,
    found: &[(String, crate::explore::Exploration)],
) -> io::Result<()> {
    use crate::explore::Outcome;
    let name = flag.trim_start_matches('-');
    writeln!(
        out,
        "{name:<6} {:>9} {:>6} {:>6} {:>8} {:>6}  shortest failing schedule",
        "schedules", "traces", "exact", "oversold", "share"
    )?;
    let mut cut_short = false;
    for (value, x) in found {
        let count = |keep: fn(&Outcome) -> bool| -> u64 {
            x.distribution
                .iter()
                .filter(|s| keep(&s.outcome))
                .map(|s| s.schedules)
                .sum()
        };
        let exact = count(|o| *o == Outcome::Exact);
        let oversold = count(|o| matches!(o, Outcome::Oversold { .. }));
        let share = if x.schedules == 0 {
            0.0
        } else {
            oversold as f64 * 100.0 / x.schedules as f64
        };
        let shortest = x
            .shortest_failing
            .as_ref()
            .map_or("none", |f| f.schedule.as_str());
        cut_short |= !x.complete;
        writeln!(
            out,
            "{value:<6} {:>9} {:>6} {exact:>6} {oversold:>8} {share:>5.1}%  {shortest}",
            x.schedules, x.traces
        )?;
    }
    if cut_short {
        writeln!(
            out,
            "(a search was cut short: its counts are only what it ran)"
        )?;
    }
    Ok(())
}

/// Runs a comparison's sales one after another and prints them as one
/// table (`--json`: one object with a `sales` array).
fn compare_sales(comparison: Comparison) -> anyhow::Result<Exit> {
    let Comparison {
        lab,
        flag,
        rows,
        output,
    } = comparison;
    let mut worst = None;
    let mut reports = Vec::new();
    for SaleRow {
        name: row,
        heading,
        sale: cfg,
    } in rows
    {
        let report = sell(&cfg, output)?;
        if !output.json {
            writeln!(io::stdout(), "{heading}:")?;
            print_report(&report, output)?;
            writeln!(io::stdout())?;
        }
        let exit = exit_of(&report);
        // A holder killed on purpose (--crash, lab 8) fails its sale, and
        // that failure is what the next value is compared with: go on, and
        // exit as it did. Any other failure stops the comparison.
        let asked = report.crash.is_some() && matches!(report.ending, Ending::HolderDied { .. });
        reports.push((row, report));
        if exit != Exit::Success && !asked {
            print_comparison(lab, flag, &reports, output)?;
            return Ok(exit);
        }
        if exit != Exit::Success {
            worst.get_or_insert(exit);
        }
    }
    print_comparison(lab, flag, &reports, output)?;
    Ok(worst.unwrap_or(Exit::Success))
}

fn print_comparison(
    lab: u8,
    flag: &str,
    reports: &[(String, SaleReport)],
    output: Output,
) -> anyhow::Result<()> {
    let (json, trace) = (output.json, output.trace);
    let mut out = io::stdout().lock();
    if json {
        let sales: Vec<_> = reports.iter().map(|(_, r)| r.json(trace)).collect();
        crate::json::write_document(
            &mut out,
            &ComparedSales {
                lab,
                varies: flag,
                sales,
            },
        )?;
        return Ok(());
    }
    write_table(&mut out, flag, reports)?;
    Ok(())
}

/// The comparison as a table, one sale per row.
fn write_table(
    out: &mut dyn Write,
    flag: &str,
    reports: &[(String, SaleReport)],
) -> io::Result<()> {
    let name = flag.trim_start_matches('-');
    // 78 columns with the longest verdict, "count wrong": the table must not
    // wrap on an 80-column classroom terminal, and lab sheets quote it
    // indented by two. The first column is as wide as its longest value
    // (`serializable`); then torn reads, which only a file can have, make
    // room for it where no sale used a file, and retries, which only a
    // serializable transaction can have, take the room they need from the
    // other columns: each as narrow as its heading and its values, elapsed
    // in whole milliseconds, and the rate called `buys/s`, as the live
    // view's narrow band does.
    let width = reports
        .iter()
        .map(|(v, _)| v.len())
        .chain([6, name.len()])
        .max()
        .unwrap_or(6);
    let torn = width <= 6
        || reports
            .iter()
            .any(|(_, r)| r.store == crate::config::StoreKind::File);
    let retries = reports
        .iter()
        .any(|(_, r)| r.lock == crate::config::LockMode::Serializable);
    // (heading, narrowest width): the widths the table has always had,
    // unless retries need the room.
    let mut columns = vec![("sold", 5), ("remaining", 9), ("oversold", 8), ("lost", 5)];
    if torn {
        columns.push(("torn", 5));
    }
    if retries {
        columns.push(("retries", 7));
    }
    columns.push(("elapsed", 10));
    columns.push(("purchases/s", 11));
    if retries {
        for (heading, narrowest) in &mut columns {
            if *heading == "purchases/s" {
                *heading = "buys/s";
            }
            *narrowest = heading.len();
        }
    }
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|(_, r)| {
            let mut cells = vec![
                r.sold.to_string(),
                r.remaining.map_or("?".to_string(), |n| n.to_string()),
                r.oversold.to_string(),
                r.lost_updates.map_or("?".to_string(), |n| n.to_string()),
            ];
            if torn {
                cells.push(r.torn_reads.to_string());
            }
            if retries {
                cells.push(r.retries.to_string());
            }
            // Tenths of a millisecond are noise beside a database's
            // round trips, and their room is the retries'.
            let tenths = if retries { 0 } else { 1 };
            cells.push(format!("{:.tenths$} ms", r.elapsed_ms));
            cells.push(
                crate::report::meaningful_rate(r.sold, r.elapsed_ms)
                    .map_or("-".to_string(), human_rate),
            );
            cells
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (heading, narrowest))| {
            rows.iter()
                .map(|cells| cells[i].chars().count())
                .chain([heading.len(), *narrowest])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |first: &str, cells: Vec<String>, last: &str| {
        let mut line = format!("{first:<width$}");
        for (cell, w) in cells.iter().zip(&widths) {
            line.push_str(&format!(" {cell:>w$}"));
        }
        format!("{line} {last}")
    };
    let headings = columns.iter().map(|(h, _)| h.to_string()).collect();
    writeln!(out, "{}", line(name, headings, "verdict"))?;
    for ((value, r), cells) in reports.iter().zip(rows) {
        writeln!(out, "{}", line(value, cells, &r.verdict.to_string()))?;
    }
    Ok(())
}

fn print_command(cfg: &PrintConfig, output: Output) -> anyhow::Result<Exit> {
    let quiet = output.view == Some(ViewMode::Quiet) && !output.json;
    let outcome = if quiet {
        print::run(cfg, &mut io::sink())?
    } else {
        print::run(cfg, &mut io::stdout().lock())?
    };
    if quiet {
        writeln!(
            io::stdout(),
            "interleaved lines: {}\nsplit pairs: {} of {}\n{}\nseed: {}",
            outcome.interleaved_lines,
            outcome.split_pairs,
            outcome.pairs,
            outcome.elapsed_line(),
            cfg.seed
        )?;
    }
    Ok(Exit::Success)
}

fn daemon_command(cfg: &DaemonConfig, output: Output) -> anyhow::Result<Exit> {
    let quiet = output.json || output.view == Some(ViewMode::Quiet);
    let outcome = if quiet {
        daemon::run(cfg, &mut io::sink())?
    } else {
        daemon::run(cfg, &mut io::stdout().lock())?
    };
    if output.json {
        daemon::write_json(&mut io::stdout().lock(), cfg, &outcome)?;
    } else if quiet && cfg.orphan {
        // The parent left first: it cannot know how the orphan ends, and
        // the orphan's lines go to the terminal without passing through it.
        writeln!(
            io::stdout(),
            "child finished: not known, the parent left first\nchild lines: not counted, an orphan writes to the terminal itself"
        )?;
    } else if quiet {
        writeln!(
            io::stdout(),
            "child finished: {}\nchild lines: {}",
            outcome.child_finished,
            outcome.child_lines
        )?;
    }
    Ok(Exit::Success)
}

/// Prints a usage error as one line and returns the usage exit.
pub fn usage(message: impl std::fmt::Display) -> Exit {
    eprintln!("ticketlab: error: {message}");
    Exit::Usage
}

fn sell_command(run: SaleRun) -> anyhow::Result<Exit> {
    let SaleRun {
        sale: cfg,
        output,
        save_schedule: save_to,
    } = run;
    let report = match sell(&cfg, output) {
        Ok(report) => report,
        Err(e) => {
            // A schedule that asks for the impossible is a usage error.
            if let Some(supervisor::SaleError::Refused(why)) = e.downcast_ref() {
                return Ok(usage(why));
            }
            return Err(e);
        }
    };
    print_report(&report, output)?;
    if let Some(path) = &save_to {
        save_schedule(&cfg, &report, path)?;
    }
    Ok(exit_of(&report))
}

/// Runs one sale with the view `output` asks for.
pub fn sell(cfg: &SaleConfig, output: Output) -> anyhow::Result<SaleReport> {
    let mut observer = observer_for(cfg, output)?;
    supervisor::run_sale(cfg, observer.as_mut()).context("the sale could not run")
}

/// Prints the summary (or the JSON object) and the post-mortem if asked.
pub fn print_report(report: &SaleReport, output: Output) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if output.json {
        // With --trace the events are in the document itself: a script
        // reads one object, never text on stderr.
        crate::json::write_document(&mut out, &report.json(output.trace))?;
    } else {
        // On a terminal the summary wraps to its width, never inside a
        // seed or a command; into a file or a pipe it is left as it is.
        match terminal_width() {
            Some(width) => {
                let mut text = Vec::new();
                report.write_summary_traced(&mut text, output.trace)?;
                let text = String::from_utf8_lossy(&text);
                out.write_all(crate::fit::fit_to_width(&text, width).as_bytes())?;
            }
            None => report.write_summary_traced(&mut out, output.trace)?,
        }
        if output.trace {
            report.write_trace(&mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The width of the terminal stdout is, if it is one.
fn terminal_width() -> Option<usize> {
    if !io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .map(|(cols, _)| usize::from(cols))
        .filter(|&cols| cols > 0)
}

/// Writes the run's interleaving where `--save-schedule` says, with the
/// command that replays it on its first line.
pub fn save_schedule(
    cfg: &SaleConfig,
    report: &SaleReport,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let Some(schedule) = &report.schedule else {
        anyhow::bail!(
            "--save-schedule {}: this run recorded no whole schedule (a trace overflowed, or none was kept)",
            path.display()
        );
    };
    let text = format!(
        "# ticketlab sell {} --schedule-file {}\n{}\n",
        cfg.flags(),
        path.display(),
        schedule.replace(',', "\n")
    );
    std::fs::write(path, text).with_context(|| format!("--save-schedule {}", path.display()))
}

/// The exit a sale's report calls for. An oversold sale or a wrong count
/// still ran as asked (that is the lesson), and so did a sale whose buyer
/// died where `--crash` told it to and that finished all the same; a buyer
/// that crashed unasked, met an error or gave up, a sale that had to be
/// ended (a dead lock holder, asked for or not), or a store that ended
/// unreadable, is a run that failed.
pub fn exit_of(report: &SaleReport) -> Exit {
    let failed = report.store_corrupt || report.per_worker.iter().any(|w| w.end.is_failure());
    match report.ending {
        Ending::Interrupted(sig) => Exit::Signal(sig),
        Ending::HolderDied { .. } | Ending::SellerDied | Ending::StoreCorrupt => Exit::Failure,
        Ending::Completed if failed => Exit::Failure,
        Ending::Completed => Exit::Success,
    }
}

fn observer_for(cfg: &SaleConfig, output: Output) -> anyhow::Result<Box<dyn Observer>> {
    // The live screen goes to stdout when that is a terminal (and not
    // holding the JSON object), else to stderr when that is one; with
    // neither, or a terminal that cannot host it, there is no screen.
    let screen = if !output.json && io::stdout().is_terminal() {
        Some(Target::Stdout)
    } else if io::stderr().is_terminal() {
        Some(Target::Stderr)
    } else {
        None
    };
    let term = std::env::var("TERM").ok();
    let screen = screen.filter(|_| crate::view::can_draw_live(term.as_deref()));
    let view = match (output.view, screen) {
        (Some(ViewMode::Live) | None, Some(target)) => return live_observer(target, output),
        (Some(ViewMode::Live) | Some(ViewMode::Plain), None) | (Some(ViewMode::Plain), _) => {
            ViewMode::Plain
        }
        (None, None) if !output.json => ViewMode::Plain,
        _ => ViewMode::Quiet,
    };
    // Plain lines go with the summary, or beside the JSON object.
    let target = if output.json {
        Target::Stderr
    } else {
        Target::Stdout
    };
    Ok(match view {
        ViewMode::Plain => Box::new(PlainObserver::new(cfg, target)),
        _ => Box::new(Quiet),
    })
}

fn live_observer(target: Target, output: Output) -> anyhow::Result<Box<dyn Observer>> {
    let colour = crate::view::colour(output.color, std::env::var("NO_COLOR").ok().as_deref());
    Ok(Box::new(LiveObserver::start(target, colour)?))
}

/// `ticketlab step`: the live view with the scheduler in a person's hands.
/// Undo and restart run the sale again on fresh buyers, replaying the
/// schedule so far, so the screen stays up across runs.
fn step_command(
    mut cfg: SaleConfig,
    output: Output,
    save_to: std::path::PathBuf,
) -> anyhow::Result<Exit> {
    use crate::scheduler::Person;
    use crate::supervisor::SaleError;
    let mut replay: Vec<usize> = cfg
        .schedule
        .take()
        .map(|(s, _)| s.entries.iter().map(|e| e.buyer).collect())
        .unwrap_or_default();
    // The panel shows each buyer's private copy from its trace.
    cfg.trace = true;
    let challenge = format!(
        "Challenge: sell more than {} — make the sale oversell{}",
        crate::report::plural(cfg.tickets, "ticket"),
        if cfg.racy() { "" } else { ". Can you?" }
    );
    let colour = crate::view::colour(output.color, std::env::var("NO_COLOR").ok().as_deref());
    let mut observer = LiveObserver::start(Target::Stdout, colour)?;
    let mut selected = 0;
    loop {
        let mut person = Person::new(
            cfg.workers,
            replay.clone(),
            challenge.clone(),
            save_to.clone(),
        );
        person.selected = selected;
        let result = supervisor::run_sale_with(&cfg, &mut observer, Some(&mut person));
        selected = person.selected;
        match result {
            Err(SaleError::Restart(steps)) => replay = steps,
            Ok(report) => {
                let output = Output {
                    view: Some(ViewMode::Live),
                    json: false,
                    trace: output.trace,
                    color: output.color,
                };
                print_report(&report, output)?;
                return Ok(exit_of(&report));
            }
            Err(SaleError::Refused(why)) => {
                drop(observer);
                return Ok(usage(why));
            }
            Err(e) => return Err(e).context("the sale could not run"),
        }
    }
}

fn explore_command(cfg: &ExploreConfig, json: bool) -> anyhow::Result<Exit> {
    let found = match crate::explore::explore(cfg, |progress| {
        if !json {
            crate::explore::progress_line(progress);
        }
    }) {
        Ok(found) => found,
        Err(crate::explore::ExploreError::Stopped(sig)) => return Ok(Exit::Signal(sig)),
        Err(e) => return Err(e).context("exploring failed"),
    };
    if io::stderr().is_terminal() && !json {
        eprint!("\r\x1b[K");
    }
    let mut out = io::stdout().lock();
    if json {
        crate::json::write_document(&mut out, &found)?;
    } else {
        found.write_summary(&mut out)?;
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LockMode, StoreKind, Wants};
    use crate::report::{WorkerEnd, WorkerReport};

    /// A finished two-buyer file sale of 2 tickets, the second buyer ending
    /// as `end`, the store reading `remaining` afterwards.
    fn file_sale(ending: Ending, end: WorkerEnd, remaining: Option<i64>) -> SaleReport {
        let cfg = SaleConfig {
            workers: 2,
            tickets: 2,
            wants: Wants::Count(1),
            store: StoreKind::File,
            lock: LockMode::Buy,
            start_delay: Default::default(),
            search_delay: Default::default(),
            read_delay: Default::default(),
            write_delay: Default::default(),
            jitter: false,
            seed: 1,
            db: None,
            trace: false,
            schedule: None,
            one_process: false,
            crash: None,
            db_url: None,
            sale: None,
        };
        let mut report = SaleReport::new(&cfg);
        let buyer = |end| WorkerReport {
            bought: 1,
            attempts: 1,
            lock_wait_ms: 0.0,
            drawn_delay_ms: 0.0,
            torn_reads: 0,
            failed_swaps: 0,
            retries: 0,
            busy_statements: 0,
            end,
        };
        report.per_worker = vec![buyer(WorkerEnd::Ok), buyer(end)];
        report.ending = ending;
        report.settle(remaining, 1.0);
        report
    }

    #[test]
    fn the_table_says_each_verdict_within_78_columns() {
        let lost_update = file_sale(Ending::Completed, WorkerEnd::Ok, Some(1));
        let oversold = {
            let mut r = file_sale(Ending::Completed, WorkerEnd::Ok, Some(0));
            r.per_worker[1].bought = 3;
            r.settle(Some(0), 4700.0);
            r
        };
        let reports = [
            ("none".to_string(), lost_update),
            ("write".to_string(), oversold),
            (
                "buy".to_string(),
                file_sale(Ending::Completed, WorkerEnd::Ok, Some(0)),
            ),
            (
                "atomic".to_string(),
                file_sale(
                    Ending::Interrupted(libc::SIGINT),
                    WorkerEnd::EndedByParent,
                    Some(0),
                ),
            ),
        ];
        let mut out = Vec::new();
        write_table(&mut out, "--lock", &reports).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().skip(1).collect();
        let verdicts = ["count wrong", "oversold", "exact", "stopped"];
        assert_eq!(rows.len(), verdicts.len(), "{text}");
        for (row, verdict) in rows.iter().zip(verdicts) {
            assert!(row.ends_with(&format!(" {verdict}")), "{verdict}:\n{text}");
        }
        for line in text.lines() {
            assert!(line.chars().count() <= 78, "{line:?}\n{text}");
        }
    }

    #[test]
    fn a_comparison_that_can_retry_shows_retries_within_78_columns() {
        let db = |lock, retries: u64, remaining| {
            let mut r = file_sale(Ending::Completed, WorkerEnd::Ok, Some(0));
            (r.store, r.lock) = (StoreKind::Sqlite, lock);
            r.per_worker[1].retries = retries;
            r.settle(remaining, 12_345.6);
            r
        };
        let reports = [
            ("none".to_string(), db(LockMode::None, 0, Some(1))),
            ("atomic".to_string(), db(LockMode::Atomic, 0, Some(0))),
            (
                "serializable".to_string(),
                db(LockMode::Serializable, 51, Some(0)),
            ),
        ];
        let mut out = Vec::new();
        write_table(&mut out, "--lock", &reports).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        let retries = head.iter().position(|h| *h == "retries");
        let retries = retries.unwrap_or_else(|| panic!("no retries column:\n{text}"));
        let serializable: Vec<&str> = lines.nth(2).unwrap().split_whitespace().collect();
        assert_eq!(serializable[retries], "51", "{text}");
        assert!(
            text.lines().nth(1).unwrap().ends_with(" count wrong"),
            "{text}"
        );
        for line in text.lines() {
            assert!(line.chars().count() <= 78, "{line:?}\n{text}");
        }
        // Without a setting that retries, no column for it.
        let mut out = Vec::new();
        write_table(&mut out, "--lock", &reports[..2]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("retries"), "{text}");
        assert!(text.contains("purchases/s"), "{text}");
    }

    #[test]
    fn a_sale_whose_buyers_all_finished_succeeds() {
        let r = file_sale(Ending::Completed, WorkerEnd::Ok, Some(0));
        assert_eq!(exit_of(&r), Exit::Success);
    }

    #[test]
    fn a_buyer_that_met_an_error_gave_up_or_crashed_fails_the_run() {
        for end in [WorkerEnd::Error, WorkerEnd::GaveUp, WorkerEnd::Crashed] {
            let r = file_sale(Ending::Completed, end, Some(0));
            assert_eq!(exit_of(&r), Exit::Failure, "{end:?}");
        }
    }

    #[test]
    fn a_store_that_ended_corrupt_fails_the_run() {
        let r = file_sale(Ending::Completed, WorkerEnd::Ok, None);
        assert!(r.store_corrupt);
        assert_eq!(exit_of(&r), Exit::Failure);
    }

    #[test]
    fn a_stop_exits_as_its_signal_and_a_dead_holder_fails() {
        let r = file_sale(
            Ending::Interrupted(libc::SIGTERM),
            WorkerEnd::EndedByParent,
            None,
        );
        assert_eq!(exit_of(&r), Exit::Signal(libc::SIGTERM));
        let holder = Ending::HolderDied { buyer: 1, pid: 42 };
        let r = file_sale(holder, WorkerEnd::Crashed, Some(0));
        assert_eq!(exit_of(&r), Exit::Failure);
    }
}
