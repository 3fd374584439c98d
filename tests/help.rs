//! Help, completions and the manual page: what a person or a shell reads
//! about the command line.

use crate::common::*;

/// Every subcommand a person types (`help` is clap's own).
const COMMANDS: &[&str] = &[
    "sell",
    "labs",
    "lab",
    "run",
    "check",
    "print",
    "daemon",
    "bench",
    "step",
    "sales",
    "explore",
    "completions",
    "man",
];

fn stdout_of(args: &[&str]) -> String {
    let out = ticketlab().args(args).output().expect("runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn help_long_help_gives_examples_and_exit_codes_for_every_command_and_short_help_does_not() {
    for sub in std::iter::once(None).chain(COMMANDS.iter().copied().map(Some)) {
        let args = |flag: &'static str| sub.map_or(vec![flag], |s| vec![s, flag]);
        let long = stdout_of(&args("--help"));
        let short = stdout_of(&args("-h"));
        assert!(long.contains("Examples:\n  ticketlab "), "{sub:?}:\n{long}");
        // Two or three real commands, each with what it shows.
        let examples = long
            .split("Examples:\n")
            .nth(1)
            .unwrap()
            .lines()
            .take_while(|l| !l.is_empty())
            .filter(|l| l.trim_start().starts_with("ticketlab "))
            .count();
        assert!(
            (2..=4).contains(&examples),
            "{sub:?}: {examples} examples\n{long}"
        );
        for code in ["Exit codes:", "  0 ", "  1 ", "  2 ", "128+N"] {
            assert!(long.contains(code), "{sub:?} lacks {code:?}:\n{long}");
        }
        assert!(
            !short.contains("Exit codes:"),
            "{sub:?}: -h is short:\n{short}"
        );
        assert!(short.len() < long.len(), "{sub:?}");
    }
}

#[test]
fn help_every_example_names_a_real_command_and_parses() {
    // Each example line's command parses as ticketlab would take it (only
    // the parse: the examples are not run here).
    for sub in COMMANDS {
        let long = stdout_of(&[sub, "--help"]);
        let examples = long.split("Examples:\n").nth(1).unwrap();
        for line in examples.lines().take_while(|l| !l.is_empty()) {
            let line = line.trim_start();
            let Some(rest) = line.strip_prefix("ticketlab ") else {
                continue;
            };
            // The command ends where its description, a redirection or a
            // pipe starts.
            let words: Vec<&str> = rest
                .split("  ")
                .next()
                .unwrap()
                .split_whitespace()
                .take_while(|w| !matches!(*w, ">" | "&&" | "|"))
                .collect();
            assert_eq!(
                words.first(),
                Some(sub),
                "`{line}` in {sub}'s help runs another command"
            );
            // Asking for help after the flags parses them and runs nothing.
            let out = ticketlab().args(&words).arg("--help").output().unwrap();
            assert!(
                out.status.success(),
                "`{line}`: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn help_run_n_shows_the_preset_and_what_may_be_given() {
    let text = stdout_of(&["run", "4", "--help"]);
    assert!(text.starts_with("Lab 4: "), "{text}");
    assert!(text.contains("The lab presets these; give one to replace it:"));
    for preset in ["--workers 50", "--store file", "--read-delay 2ms"] {
        assert!(text.contains(&format!("  {preset} ")), "{preset}:\n{text}");
    }
    assert!(text.contains("It varies --lock"), "{text}");
    assert!(text.contains("You may also give any other flag of `ticketlab sell`"));
    let may_give = text.split("says what each does):\n").nth(1).unwrap();
    assert!(may_give.contains("--seed"), "{text}");
    assert!(
        !may_give.contains("--workers"),
        "a preset flag is listed as free:\n{text}"
    );
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
    }
    // Among the lab's own flags, and as -h, it is the same help.
    assert_eq!(stdout_of(&["run", "4", "-w", "3", "-h"]), text);
    // A lab that does not exist is a usage error; run alone still asks for one.
    let out = ticketlab().args(["run", "99", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = ticketlab().arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout_of(&["run", "--help"]).contains("Usage: ticketlab run"));
}

#[test]
fn help_completions_are_generated_for_each_shell_and_bash_reads_its_script() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        for word in ["sell", "explore", "lock", "read-delay", "completions"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    let script = stdout_of(&["completions", "bash"]);
    // The lock values come from the settings themselves.
    assert!(
        script.contains("none write buy robust task join atomic"),
        "{script}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticketlab.bash");
    std::fs::write(&path, &script).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("bash runs");
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let out = ticketlab().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_the_man_page_is_roff_with_every_command_and_the_exit_codes() {
    let page = stdout_of(&["man"]);
    assert!(
        page.contains(".TH ticketlab 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    for sub in COMMANDS {
        let section = format!(".SH \"TICKETLAB {}\"", sub.to_uppercase());
        assert!(page.contains(&section), "no {section}");
    }
    assert!(page.contains("Exit codes:"));
    // groff, where it is installed, formats it without a warning.
    let Ok(groff) = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("groff not installed: the page's formatting is not checked");
        return;
    };
    let mut groff = groff;
    use std::io::Write;
    groff
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = groff.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "groff: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
