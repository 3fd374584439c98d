//! The commands: each turns plain settings into a run and a way to exit.

use std::io::{self, IsTerminal, Write};

use anyhow::Context;

use crate::cli::{Cli, Command, DaemonArgs, PrintArgs, SellArgs};
use crate::config::{Output, SaleConfig, ViewMode};
use crate::demo::daemon::{self, DaemonConfig};
use crate::demo::print::{self, PrintConfig};
use crate::exit::Exit;
use crate::labs::{self, Experiment};
use crate::observe::{LiveObserver, PlainObserver};
use crate::report::human_rate;
use crate::report::{Ending, SaleReport};
use crate::sheet;
use crate::supervisor::{self, Observer, Quiet};
use crate::view::Target;
use clap::Parser;

/// Runs one parsed command.
pub fn run(command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Sell(args) => sell_command(args),
        Command::Bench(args) => crate::bench::run(&args),
        Command::Labs => list_labs(),
        Command::Lab(args) => show_lab(&args.lab, args.answers),
        Command::Run(args) => run_lab(&args.lab, args.flags),
        Command::Print(args) => print_command(args),
        Command::Daemon(args) => daemon_command(args),
    }
}

/// The labs, each on two lines (number, title and command, then the goal
/// indented below) so the list fits an 80-column terminal.
fn list_labs() -> anyhow::Result<Exit> {
    let mut out = io::stdout().lock();
    let title = labs::LABS.iter().map(|l| l.title.len()).max().unwrap_or(0);
    writeln!(out, "{:<3}  {:<title$}  command", "lab", "title")?;
    for lab in labs::LABS {
        writeln!(
            out,
            "{:<3}  {:<title$}  ticketlab run {}\n     {}",
            lab.number, lab.title, lab.number, lab.goal
        )?;
    }
    writeln!(
        out,
        "\nRead a sheet with `ticketlab lab N`, run it with `ticketlab run N`."
    )?;
    Ok(Exit::Success)
}

fn show_lab(key: &str, answers: bool) -> anyhow::Result<Exit> {
    let Some(lab) = labs::find(key) else {
        return Ok(usage(format!(
            "no lab '{key}' (allowed: {})",
            labs::allowed()
        )));
    };
    let text = if answers {
        lab.sheet
    } else {
        lab.sheet_without_answers()
    };
    let styled = io::stdout().is_terminal();
    let mut out = io::stdout().lock();
    write!(out, "{}", sheet::render(text, styled))?;
    if !answers {
        writeln!(out, "\n(answers: ticketlab lab {} --answers)", lab.number)?;
    }
    Ok(Exit::Success)
}

/// Runs lab `key`'s experiment: its preset, overridden by `flags`.
fn run_lab(key: &str, flags: Vec<String>) -> anyhow::Result<Exit> {
    let Some(lab) = labs::find(key) else {
        return Ok(usage(format!(
            "no lab '{key}' (allowed: {})",
            labs::allowed()
        )));
    };
    let (sub, preset, compare) = match lab.experiment {
        Experiment::Print(p) => ("print", p, None),
        Experiment::Daemon(p) => ("daemon", p, None),
        Experiment::Sale(p) => ("sell", p, None),
        Experiment::Compare { base, flag, values } => {
            let axis_given = flags
                .iter()
                .any(|f| f == flag || f.starts_with(&format!("{flag}=")));
            ("sell", base, (!axis_given).then_some((flag, values)))
        }
    };
    let mut argv: Vec<String> = vec!["ticketlab".into(), sub.into()];
    argv.extend(without_overridden(preset, &flags));
    argv.extend(flags);
    let command = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli.command,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => e.exit(),
        Err(e) => {
            eprintln!("{}", one_line(&e.render().to_string()));
            return Ok(Exit::Usage);
        }
    };
    let json = matches!(&command, Command::Sell(a) if a.output.json)
        || matches!(&command, Command::Print(a) if a.json)
        || matches!(&command, Command::Daemon(a) if a.json);
    let shown = match compare {
        Some((flag, values)) => format!("{} {flag} {{{}}}", argv.join(" "), values.join("|")),
        None => argv.join(" "),
    };
    // Students learn the real flags from this line; with --json it must not
    // share stdout with the JSON object.
    if json {
        eprintln!("$ {shown}");
    } else {
        writeln!(io::stdout(), "$ {shown}")?;
    }
    match (command, compare) {
        (Command::Sell(args), Some((flag, values))) => {
            compare_sales(lab.number, args, flag, values)
        }
        (command, _) => run(command),
    }
}

/// The preset's flags minus those the command line gives again, so the
/// printed command reads as what actually runs.
fn without_overridden(preset: &[&str], given: &[String]) -> Vec<String> {
    let mut given: Vec<&str> = given
        .iter()
        .filter(|f| f.starts_with('-'))
        .map(|f| f.split('=').next().unwrap_or(f))
        .collect();
    if given.contains(&"--no-jitter") {
        given.push("--jitter");
    }
    let mut kept = Vec::new();
    let mut i = 0;
    while i < preset.len() {
        let flag = preset[i];
        let takes_value = preset.get(i + 1).is_some_and(|v| !v.starts_with("--"));
        let width = if takes_value { 2 } else { 1 };
        if !given.contains(&flag) {
            kept.extend(preset[i..i + width].iter().map(|s| s.to_string()));
        }
        i += width;
    }
    kept
}

/// Runs one sale per value of `flag` and prints them as one table.
fn compare_sales(lab: u8, args: SellArgs, flag: &str, values: &[&str]) -> anyhow::Result<Exit> {
    let output = Output {
        view: args.output.view,
        json: args.output.json,
        trace: args.output.trace,
    };
    let seed = args.sale.seed.unwrap_or_else(rand::random);
    let mut reports = Vec::new();
    for value in values {
        let mut sale = args.sale.clone();
        sale.seed = Some(seed);
        match flag {
            "--lock" => sale.lock = Some(value.parse().map_err(anyhow::Error::msg)?),
            "--store" => sale.store = Some(value.parse().map_err(anyhow::Error::msg)?),
            _ => anyhow::bail!("lab {lab} varies an unknown flag {flag}"),
        }
        let cfg = match sale.into_config(output.trace) {
            Ok(cfg) => cfg,
            Err(e) => return Ok(usage(e)),
        };
        let report = sell(&cfg, output)?;
        if !output.json {
            writeln!(io::stdout(), "{flag} {value}:")?;
            print_report(&report, output)?;
            writeln!(io::stdout())?;
        }
        let exit = exit_of(&report);
        reports.push((value.to_string(), report));
        if exit != Exit::Success {
            print_comparison(lab, flag, &reports, output.json)?;
            return Ok(exit);
        }
    }
    print_comparison(lab, flag, &reports, output.json)?;
    Ok(Exit::Success)
}

fn print_comparison(
    lab: u8,
    flag: &str,
    reports: &[(String, SaleReport)],
    json: bool,
) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    if json {
        let sales: Vec<&SaleReport> = reports.iter().map(|(_, r)| r).collect();
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({ "lab": lab, "varies": flag, "sales": sales }),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let name = flag.trim_start_matches('-');
    // 78 columns: the table must not wrap on an 80-column classroom terminal,
    // and lab sheets quote it indented by two.
    writeln!(
        out,
        "{name:<6} {:>6} {:>9} {:>8} {:>6} {:>6} {:>10} {:>11}  verdict",
        "sold", "remaining", "oversold", "lost", "torn", "elapsed", "purchases/s"
    )?;
    for (value, r) in reports {
        let remaining = r.remaining.map_or("?".to_string(), |n| n.to_string());
        let lost = r.lost_updates.map_or("?".to_string(), |n| n.to_string());
        let verdict = if r.is_exact() { "exact" } else { "WRONG" };
        writeln!(
            out,
            "{value:<6} {:>6} {remaining:>9} {:>8} {lost:>6} {:>6} {:>7.1} ms {:>11}  {verdict}",
            r.sold,
            r.oversold,
            r.torn_reads,
            r.elapsed_ms,
            human_rate(r.ops_per_sec),
        )?;
    }
    Ok(())
}

fn print_command(args: PrintArgs) -> anyhow::Result<Exit> {
    let cfg = PrintConfig {
        workers: args.workers as usize,
        lines: args.lines as usize,
        lock: args.lock,
        seed: args.seed.unwrap_or_else(rand::random),
        json: args.json,
    };
    let quiet = args.view == Some(ViewMode::Quiet) && !args.json;
    let outcome = if quiet {
        print::run(&cfg, &mut io::sink())?
    } else {
        print::run(&cfg, &mut io::stdout().lock())?
    };
    if quiet {
        writeln!(
            io::stdout(),
            "interleaved lines: {}\nsplit pairs: {} of {}\nseed: {}",
            outcome.interleaved_lines,
            outcome.split_pairs,
            outcome.pairs,
            cfg.seed
        )?;
    }
    Ok(Exit::Success)
}

fn daemon_command(args: DaemonArgs) -> anyhow::Result<Exit> {
    let cfg = DaemonConfig {
        daemon: args.daemon,
        parent_runs: args.parent_runs,
        child_runs: args.child_runs,
        orphan: args.orphan,
    };
    let quiet = args.json || args.view == Some(ViewMode::Quiet);
    let outcome = if quiet {
        daemon::run(&cfg, &mut io::sink())?
    } else {
        daemon::run(&cfg, &mut io::stdout().lock())?
    };
    if args.json {
        writeln!(io::stdout(), "{}", serde_json::to_string(&outcome)?)?;
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

/// Folds clap's multi-line error into one line: what is wrong and what is
/// allowed, without the usage block.
pub fn one_line(rendered: &str) -> String {
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
        })
        .collect();
    let line = parts.join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    format!("ticketlab: error: {line}")
}

fn sell_command(args: SellArgs) -> anyhow::Result<Exit> {
    let output = Output {
        view: args.output.view,
        json: args.output.json,
        trace: args.output.trace,
    };
    let cfg = match args.sale.into_config(output.trace) {
        Ok(cfg) => cfg,
        Err(e) => return Ok(usage(e)),
    };
    let report = sell(&cfg, output)?;
    print_report(&report, output)?;
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
        serde_json::to_writer(&mut out, report)?;
        writeln!(out)?;
        if output.trace {
            report.write_trace(&mut io::stderr().lock())?;
        }
    } else {
        report.write_summary(&mut out)?;
        if output.trace {
            report.write_trace(&mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The exit a sale's report calls for.
pub fn exit_of(report: &SaleReport) -> Exit {
    match report.ending {
        Ending::Interrupted(sig) => Exit::Signal(sig),
        Ending::HolderDied { .. } | Ending::SellerDied => Exit::Failure,
        Ending::Completed if report.crashed_workers > 0 => Exit::Failure,
        Ending::Completed => Exit::Success,
    }
}

fn observer_for(cfg: &SaleConfig, output: Output) -> anyhow::Result<Box<dyn Observer>> {
    // With --json stdout belongs to the JSON object: the screen goes to
    // stderr, and only if that is a terminal.
    let (target, is_tty) = if output.json {
        (Target::Stderr, io::stderr().is_terminal())
    } else {
        (Target::Stdout, io::stdout().is_terminal())
    };
    let view = match output.view {
        Some(ViewMode::Live) if !is_tty => ViewMode::Plain,
        Some(view) => view,
        None if is_tty => ViewMode::Live,
        None if output.json => ViewMode::Quiet,
        None => ViewMode::Plain,
    };
    Ok(match view {
        ViewMode::Live => Box::new(LiveObserver::start(target)?),
        ViewMode::Plain => Box::new(PlainObserver::new(cfg, target)),
        ViewMode::Quiet => Box::new(Quiet),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_fold_into_one_line() {
        let rendered = "error: invalid value '0' for '--workers <N>': 0 is not in 1..=1000\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "ticketlab: error: invalid value '0' for '--workers <N>': 0 is not in 1..=1000"
        );
    }
}
