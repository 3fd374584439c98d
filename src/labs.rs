//! The lab registry: every numbered lab, its sheet (compiled in, so the
//! installed tool works from any directory) and the experiment it runs.

/// What `ticketlab run N` does for a lab.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Experiment {
    /// `ticketlab print` with these flags.
    Print(&'static [&'static str]),
    /// `ticketlab daemon` with these flags.
    Daemon(&'static [&'static str]),
    /// One `ticketlab sell` with these flags.
    Sale(&'static [&'static str]),
    /// Several sales that differ in one flag, as one table; giving that flag
    /// on the command line runs just the one sale.
    Compare {
        /// Flags every sale shares.
        base: &'static [&'static str],
        /// The flag that varies, e.g. `--lock`.
        flag: &'static str,
        /// Its values, one sale each.
        values: &'static [&'static str],
        /// Whether a last row runs the same sale with `--one-process`: the
        /// baseline without concurrency that the others are measured by.
        single: bool,
    },
    /// `ticketlab step` with these flags: the student at the keys is the
    /// scheduler.
    Step(&'static [&'static str]),
    /// `ticketlab explore` once per value of one flag, each summary in turn
    /// and then one table; giving that flag on the command line runs just
    /// the one exploration.
    Explore {
        /// Flags every exploration shares.
        base: &'static [&'static str],
        /// The flag that varies, e.g. `--lock`.
        flag: &'static str,
        /// Its values, one exploration each.
        values: &'static [&'static str],
    },
}

/// One lab.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lab {
    /// Its number, 1-based.
    pub number: u8,
    /// A short name usable instead of the number.
    pub short: &'static str,
    /// Its title.
    pub title: &'static str,
    /// The goal in one line.
    pub goal: &'static str,
    /// Its Markdown sheet.
    pub sheet: &'static str,
    /// The sheet's file name under `labs/` (the registry test checks the
    /// compiled sheet against it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub file: &'static str,
    /// What `run` does.
    pub experiment: Experiment,
}

macro_rules! sheet {
    ($file:literal) => {
        ($file, include_str!(concat!("../labs/", $file)))
    };
}

const fn lab(
    number: u8,
    short: &'static str,
    title: &'static str,
    goal: &'static str,
    (file, sheet): (&'static str, &'static str),
    experiment: Experiment,
) -> Lab {
    Lab {
        number,
        short,
        title,
        goal,
        sheet,
        file,
        experiment,
    }
}

/// Every lab, in order.
pub(crate) const LABS: &[Lab] = &[
    lab(
        1,
        "terminal",
        "Who gets the terminal",
        "See processes interleave their output, and a lock keep lines together",
        sheet!("01-terminal.md"),
        Experiment::Print(&["--workers", "3"]),
    ),
    lab(
        2,
        "race",
        "The ticket race",
        "Watch 100 buyers race for one ticket, and read the summary",
        sheet!("02-race.md"),
        Experiment::Sale(&[
            "--workers",
            "100",
            "--tickets",
            "1",
            "--store",
            "file",
            "--lock",
            "none",
            "--read-delay",
            "100ms",
            "--write-delay",
            "200ms",
        ]),
    ),
    lab(
        3,
        "lock",
        "A lock around the purchase",
        "Lock the read-check-write of 5 tickets: what sells, and how fast",
        sheet!("03-lock.md"),
        Experiment::Sale(&[
            "--workers",
            "100",
            "--tickets",
            "5",
            "--store",
            "file",
            "--lock",
            "buy",
            "--read-delay",
            "100ms",
            "--write-delay",
            "100ms",
            "--jitter",
        ]),
    ),
    lab(
        4,
        "granularity",
        "Lock granularity",
        "Compare none, write, buy, task and join: correctness against time",
        sheet!("04-granularity.md"),
        // The delays decide the order, not luck: with n = 50 buyers,
        // t = 3 tickets, start-up P = 5 ms (a process's own start), search
        // S = 10 ms (outside the lock), read R = 2 ms and write W = 10 ms
        // (inside it), fixed (no jitter):
        //   none, write ≈ P + S + R + W = 27 ms. Every buyer has read 3 by
        //     the time the first write lands R + W = 12 ms after its read:
        //     all 50 buy, 47 oversold.
        //   buy ≈ P + S + t·(R+W) + (n−t)·R = 5 + 10 + 36 + 94 = 145 ms:
        //     the start-ups and searches overlap; purchases and sold-out
        //     checks queue.
        //   task ≈ P + n·S + t·(R+W) + (n−t)·R = 5 + 500 + 130 = 635 ms,
        //     4.4× buy (the lesson needs at least 2×): the same, plus 49 searches in
        //     the queue.
        //   single ≈ 635 ms too: one process starts once and sleeps exactly
        //     the same delays (each buyer's own seeded draws), one after
        //     another, with no lock.
        //   join ≈ n·P + 630 = 880 ms: the same delays in the same order,
        //     but every buyer starts only when the one before has exited,
        //     so the 50 start-ups queue too: 245 ms more than task or
        //     single, by construction, plus a real fork and reap per buyer.
        //     That is the posts' "worse than not using processes at all".
        // The whole lab runs in about 2.6 s.
        Experiment::Compare {
            base: &[
                "--workers",
                "50",
                "--tickets",
                "3",
                "--store",
                "file",
                "--start-delay",
                "5ms",
                "--search-delay",
                "10ms",
                "--read-delay",
                "2ms",
                "--write-delay",
                "10ms",
            ],
            flag: "--lock",
            values: &["none", "write", "buy", "task", "join"],
            single: true,
        },
    ),
    lab(
        5,
        "memory",
        "Memory instead of a file",
        "Measure the shared-memory store against the JSON file",
        sheet!("05-memory.md"),
        Experiment::Compare {
            base: &[
                "--workers",
                "8",
                "--tickets",
                "20000",
                "--wants",
                "all",
                "--lock",
                "buy",
            ],
            flag: "--store",
            values: &["file", "shm"],
            single: false,
        },
    ),
    lab(
        6,
        "messages",
        "Message passing",
        "Let a seller process own the count: does the sale need a lock?",
        sheet!("06-messages.md"),
        // The per-buyer pipes beside the queue, the same pipes with a lock:
        // one sale each, on the same seed.
        Experiment::Compare {
            base: &[
                "--workers",
                "50",
                "--tickets",
                "5",
                "--lock",
                "none",
                "--read-delay",
                "20ms",
                "--write-delay",
                "20ms",
                "--jitter",
            ],
            flag: "--store",
            values: &["server", "queue"],
            single: false,
        },
    ),
    lab(
        7,
        "lock-free",
        "Lock-free",
        "Sell with a compare-and-swap loop and no mutex: is it exact?",
        sheet!("07-lock-free.md"),
        Experiment::Sale(&[
            "--workers",
            "50",
            "--tickets",
            "5",
            "--store",
            "shm",
            "--lock",
            "atomic",
            "--read-delay",
            "20ms",
            "--write-delay",
            "20ms",
            "--jitter",
        ]),
    ),
    lab(
        8,
        "holder",
        "When the holder dies",
        "Kill the lock's holder: a plain mutex hangs, a robust one recovers",
        sheet!("08-holder-dies.md"),
        Experiment::Compare {
            base: &[
                "--workers",
                "5",
                "--tickets",
                "5",
                "--read-delay",
                "20ms",
                "--crash",
                "1:write",
                "--schedule",
                "1S,1L,1R,1W",
                "--then",
                "free",
            ],
            flag: "--lock",
            values: &["buy", "robust"],
            single: false,
        },
    ),
    lab(
        9,
        "scheduler",
        "You are the scheduler",
        "Step two buyers by hand until one ticket sells twice; then try it locked",
        sheet!("09-scheduler.md"),
        Experiment::Step(&["--workers", "2", "--tickets", "1", "--lock", "none"]),
    ),
    lab(
        10,
        "interleavings",
        "Every interleaving",
        "Count the schedules that oversell under none, write and buy",
        sheet!("10-interleavings.md"),
        Experiment::Explore {
            base: &["--workers", "2", "--tickets", "1"],
            flag: "--lock",
            values: &["none", "write", "buy"],
        },
    ),
    lab(
        11,
        "daemon",
        "Daemon processes",
        "See a daemon child end with its parent's main code",
        sheet!("11-daemon.md"),
        Experiment::Daemon(&[]),
    ),
    lab(
        12,
        "database",
        "The same race in a database",
        "Oversell in SQLite and PostgreSQL; fix it with FOR UPDATE or one UPDATE",
        sheet!("12-database.md"),
        Experiment::Compare {
            base: &[
                "--workers",
                "20",
                "--tickets",
                "5",
                "--store",
                "sqlite",
                "--read-delay",
                "50ms",
                "--write-delay",
                "20ms",
                "--jitter",
            ],
            flag: "--lock",
            values: &["none", "buy", "atomic", "serializable"],
            single: false,
        },
    ),
];

/// The headings every sheet has, in this order.
#[cfg(test)]
pub(crate) const SECTIONS: &[&str] = &[
    "Goal",
    "Background",
    "Predict",
    "Run",
    "Observe",
    "Explain",
    "Try this",
    "Answers",
];

/// Finds a lab by number (`3`, `03`) or short name (`lock`).
pub(crate) fn find(key: &str) -> Option<&'static Lab> {
    match key.parse::<u8>() {
        Ok(n) => LABS.iter().find(|l| l.number == n),
        Err(_) => LABS.iter().find(|l| l.short.eq_ignore_ascii_case(key)),
    }
}

/// What `lab N` accepts, for error messages.
pub(crate) fn allowed() -> String {
    let names: Vec<&str> = LABS.iter().map(|l| l.short).collect();
    format!("1 to {}, or one of: {}", LABS.len(), names.join(", "))
}

/// A flag a comparison varies, and its values (one run each).
pub(crate) type Axis = (&'static str, &'static [&'static str]);

impl Experiment {
    /// The one place an experiment becomes a command: its subcommand, its
    /// preset flags, and the flag it varies with its values, if any.
    pub(crate) fn parts(self) -> (&'static str, &'static [&'static str], Option<Axis>) {
        match self {
            Experiment::Print(p) => ("print", p, None),
            Experiment::Daemon(p) => ("daemon", p, None),
            Experiment::Sale(p) => ("sell", p, None),
            Experiment::Step(p) => ("step", p, None),
            Experiment::Compare {
                base, flag, values, ..
            } => ("sell", base, Some((flag, values))),
            Experiment::Explore { base, flag, values } => ("explore", base, Some((flag, values))),
        }
    }
}

impl Experiment {
    /// Whether a comparison ends with the `--one-process` baseline row.
    pub(crate) fn single_baseline(self) -> bool {
        matches!(self, Experiment::Compare { single: true, .. })
    }
}

impl Lab {
    /// The subcommand and preset flags, as a person would type them.
    #[cfg(test)]
    pub(crate) fn command_line(&self) -> String {
        let (sub, flags, axis) = self.experiment.parts();
        let tail = axis.map_or(String::new(), |(flag, values)| {
            format!(" {flag} {{{}}}", values.join("|"))
        });
        let flags: String = flags.iter().map(|f| format!(" {f}")).collect();
        format!("ticketlab {sub}{flags}{tail}")
    }

    /// The sheet up to, not including, section `stop` (a heading from
    /// `SECTIONS`), or the whole sheet if it has no such section. `lab N`
    /// cuts at Observe so a student predicts before seeing any result, and
    /// `--explain` cuts at Answers.
    pub(crate) fn sheet_before(&self, stop: &str) -> &'static str {
        cut_before(self.sheet, stop)
    }
}

/// `sheet` up to, not including, its level-2 heading `stop`.
pub(crate) fn cut_before<'a>(sheet: &'a str, stop: &str) -> &'a str {
    let heading = format!("\n## {stop}\n");
    match sheet.find(&heading) {
        Some(i) => &sheet[..i + 1],
        None => sheet,
    }
}

/// The level-2 headings of a sheet, in order.
#[cfg(test)]
pub(crate) fn headings(sheet: &str) -> Vec<&str> {
    sheet
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::trim)
        .collect()
}

/// The commands in a sheet's ```sh blocks that start with `ticketlab`, with
/// lines continued by a trailing `\\` joined as the shell would.
#[cfg(test)]
pub(crate) fn commands(sheet: &str) -> Vec<String> {
    let mut in_sh = false;
    let mut found: Vec<String> = Vec::new();
    let mut continued = false;
    for line in sheet.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = !in_sh && t.trim_start_matches('`').starts_with("sh");
            continued = false;
            continue;
        }
        let (text, continues) = match t.strip_suffix('\\') {
            Some(head) => (head.trim_end(), true),
            None => (t, false),
        };
        if in_sh && continued {
            if let Some(last) = found.last_mut() {
                last.push(' ');
                last.push_str(text);
            }
        } else if in_sh && t.starts_with("ticketlab") {
            found.push(text.to_string());
        } else {
            continued = false;
            continue;
        }
        continued = continues;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labs_are_numbered_one_to_n_with_unique_names() {
        for (i, lab) in LABS.iter().enumerate() {
            assert_eq!(lab.number as usize, i + 1);
            assert!(lab.file.starts_with(&format!("{:02}-", lab.number)));
        }
        // A set, not `dedup`, which only drops neighbouring repeats.
        let names: std::collections::HashSet<&str> = LABS.iter().map(|l| l.short).collect();
        assert_eq!(names.len(), LABS.len(), "short names repeat");
    }

    #[test]
    fn every_sheet_on_disk_is_registered_and_every_entry_has_its_sheet() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("labs");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".md") && n.as_bytes()[0].is_ascii_digit())
            .collect();
        on_disk.sort();
        let registered: Vec<String> = LABS.iter().map(|l| l.file.to_string()).collect();
        assert_eq!(on_disk, registered);
        // `lab.sheet` is `include_str!` of `lab.file`, so comparing the two
        // would compare the sheet with itself. Instead: the file an entry
        // names is that entry's sheet, by its number, short name and title.
        for lab in LABS {
            assert!(
                lab.file
                    .starts_with(&format!("{:02}-{}", lab.number, lab.short)),
                "{} is not named for lab {} ({})",
                lab.file,
                lab.number,
                lab.short
            );
            let file = std::fs::read_to_string(dir.join(lab.file)).unwrap();
            assert_eq!(
                file.lines().next(),
                Some(format!("# Lab {}: {}", lab.number, lab.title).as_str()),
                "{} is not the sheet of lab {}",
                lab.file,
                lab.number
            );
        }
    }

    #[test]
    fn every_sheet_has_the_required_sections_in_order() {
        for lab in LABS {
            assert_eq!(headings(lab.sheet), SECTIONS, "{}", lab.file);
            let title = lab.sheet.lines().next().unwrap();
            assert_eq!(
                title,
                format!("# Lab {}: {}", lab.number, lab.title),
                "{}",
                lab.file
            );
        }
    }

    #[test]
    fn labs_are_found_by_number_padded_number_and_name() {
        assert_eq!(find("3").unwrap().number, 3);
        assert_eq!(find("03").unwrap().number, 3);
        assert_eq!(find("lock-free").unwrap().number, 7);
        assert_eq!(find("interleavings").unwrap().number, 10);
        assert_eq!(find("holder").unwrap().number, 8);
        assert_eq!(find("daemon").unwrap().number, 11);
        assert_eq!(find("database").unwrap().number, 12);
        assert!(find("13").is_none());
        assert!(find("nope").is_none());
    }

    /// The preset of lab `lab` merged with `flags` the way `ticketlab run`
    /// merges them: the preset first, the student's flags after, so theirs
    /// win (the Cli has `args_override_self`).
    fn merged_argv(lab: &Lab, flags: &[&str]) -> Vec<String> {
        let (sub, preset, _) = lab.experiment.parts();
        ["ticketlab", sub]
            .iter()
            .chain(preset)
            .chain(flags)
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn every_command_in_every_sheet_parses() {
        // labs/README.md is no lab, but students copy its commands too.
        const GUIDE: &str = include_str!("../labs/README.md");
        let sheets = LABS
            .iter()
            .map(|l| (l.file, l.sheet))
            .chain([("README.md", GUIDE)]);
        for (file, sheet) in sheets {
            let found = commands(sheet);
            assert!(!found.is_empty(), "{file} shows no command");
            for line in &found {
                check_command(file, line);
            }
        }
    }

    #[test]
    fn every_sheet_fits_an_80_column_terminal() {
        for lab in LABS {
            for line in crate::sheet::render(lab.sheet, false).lines() {
                assert!(
                    line.chars().count() <= 80,
                    "{}: {} columns: {line}",
                    lab.file,
                    line.chars().count()
                );
            }
        }
    }

    #[test]
    fn commands_join_continued_lines_and_skip_other_code() {
        let sheet = "```sh\nticketlab run 6 \\\n  --workers 8 \\\n  --lock none\nls -l\nticketlab labs\n```\n\n```text\nticketlab run 1\n```\n";
        assert_eq!(
            commands(sheet),
            ["ticketlab run 6 --workers 8 --lock none", "ticketlab labs"]
        );
    }

    /// `line` parses, and if it is `ticketlab run N ...`, lab N exists and
    /// its preset with the given flags parses as its subcommand.
    fn check_command(file: &str, line: &str) {
        use crate::cli::{Cli, Command};
        use clap::Parser;

        let words: Vec<&str> = line.split_whitespace().collect();
        let cli = Cli::try_parse_from(&words)
            .unwrap_or_else(|e| panic!("{file}: `{line}` does not parse: {e}"));
        let Command::Run(run) = cli.command else {
            return;
        };
        let target = run
            .lab
            .as_deref()
            .and_then(find)
            .unwrap_or_else(|| panic!("{file}: `{line}` names no lab"));
        let flags: Vec<&str> = run.flags.iter().map(String::as_str).collect();
        let argv = merged_argv(target, &flags);
        if let Err(e) = Cli::try_parse_from(&argv) {
            panic!(
                "{file}: `{line}` runs `{}`, which does not parse: {e}",
                argv.join(" ")
            );
        }
    }

    #[test]
    fn every_lab_is_run_on_its_own_sheet_and_its_preset_parses() {
        use clap::Parser;

        for lab in LABS {
            let own = format!("ticketlab run {}", lab.number);
            assert!(
                commands(lab.sheet)
                    .iter()
                    .any(|c| c.split_whitespace().collect::<Vec<_>>()
                        == own.split_whitespace().collect::<Vec<_>>()),
                "{} never shows `{own}`",
                lab.file
            );
            crate::cli::Cli::try_parse_from(merged_argv(lab, &[]))
                .unwrap_or_else(|e| panic!("lab {}'s preset does not parse: {e}", lab.number));
        }
    }

    /// A lab that runs one command shows that very command on its sheet,
    /// so what the student reads is what `run N` runs.
    #[test]
    fn every_single_command_lab_shows_its_preset_on_its_sheet() {
        for lab in LABS {
            if !matches!(lab.experiment, Experiment::Sale(_) | Experiment::Step(_)) {
                continue;
            }
            let preset = lab.command_line();
            assert!(
                commands(lab.sheet).contains(&preset),
                "{} never shows `{preset}`",
                lab.file
            );
        }
        assert_eq!(
            find("10").unwrap().command_line(),
            "ticketlab explore --workers 2 --tickets 1 --lock {none|write|buy}"
        );
    }

    #[test]
    fn each_half_ends_where_the_next_one_starts() {
        for lab in LABS {
            let first = headings(lab.sheet_before("Observe"));
            assert_eq!(first, SECTIONS[..4], "{}", lab.file);
            let explained = headings(lab.sheet_before("Answers"));
            assert_eq!(explained, SECTIONS[..7], "{}", lab.file);
        }
        assert_eq!(cut_before("# T\n## A\nx\n## B\ny\n", "B"), "# T\n## A\nx\n");
        assert_eq!(cut_before("# T\n## A\n", "Nope"), "# T\n## A\n");
    }

    /// The text of section `name`, without its heading.
    fn section<'a>(sheet: &'a str, name: &str) -> &'a str {
        let heading = format!("\n## {name}\n");
        let start = sheet
            .find(&heading)
            .map_or(sheet.len(), |i| i + heading.len());
        let rest = &sheet[start..];
        &rest[..rest.find("\n## ").map_or(rest.len(), |i| i + 1)]
    }

    /// `text` without what a student types or reads as code rather than as
    /// a claim: ```sh and ```python blocks, and inline code that holds a
    /// flag or a command. Other fenced blocks (```text, quoted output) stay,
    /// since quoted output is exactly where a result could leak.
    fn prose(text: &str) -> String {
        let mut out = String::new();
        let mut skipping: Option<bool> = None;
        for line in text.lines() {
            let t = line.trim_start();
            if let Some(info) = t.strip_prefix("```") {
                skipping = match skipping {
                    Some(_) => None,
                    None => Some(info.starts_with("sh") || info.starts_with("python")),
                };
                continue;
            }
            if skipping != Some(true) {
                out.push_str(line);
                out.push('\n');
            }
        }
        // Inline code: odd-numbered pieces between backticks.
        out.split('`')
            .enumerate()
            .filter(|(i, piece)| {
                i % 2 == 0 || !(piece.contains("--") || piece.starts_with("ticketlab"))
            })
            .map(|(_, piece)| piece)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The numbers in `text` (`5`, `0.4`, `1,008`, `1,1,2`), leaving out
    /// those that name a lab or a command's lab (`Lab 2`, `Labs 2 to 4`,
    /// `run 3`): those say where, not what happens.
    fn numbers(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut naming = false;
        // A list item's own number (`2. How many...`) is no claim.
        let unlisted: String = text
            .lines()
            .map(|l| {
                let t = l.trim_start();
                let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                match t[digits..].strip_prefix(". ") {
                    Some(rest) if digits > 0 => rest,
                    _ => l,
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        for word in unlisted.split_whitespace() {
            let bare = word.trim_matches(|c: char| !c.is_alphanumeric());
            let lower = bare.to_ascii_lowercase();
            if ["lab", "labs", "run"].contains(&lower.as_str()) {
                naming = true;
                continue;
            }
            let numeric = bare.starts_with(|c: char| c.is_ascii_digit());
            if naming && (numeric || ["to", "and", "or"].contains(&lower.as_str())) {
                continue;
            }
            naming = false;
            let chars: Vec<char> = word.chars().collect();
            let mut i = 0;
            while i < chars.len() {
                if !chars[i].is_ascii_digit() {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || (matches!(chars[i], '.' | ',')
                            && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
                {
                    i += 1;
                }
                found.push(chars[start..i].iter().collect());
            }
        }
        found
    }

    /// Words that state how a run ends: the verdicts and the refusals.
    const VERDICTS: &[&str] = &["exact", "oversold", "count wrong", "refuse", "refused"];

    fn verdicts(text: &str) -> Vec<&'static str> {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        let joined = format!(" {} ", words.join(" "));
        VERDICTS
            .iter()
            .filter(|v| joined.contains(&format!(" {v} ")))
            .copied()
            .collect()
    }

    /// Why a sheet's first half (what `lab N` shows) gives away what its
    /// Explain or Answers say, if it does: a number or verdict from those
    /// sections that is neither in the Predict questions' own wording nor a
    /// flag value of a command the sheet or the lab's preset runs.
    fn giveaways(lab: &Lab) -> Vec<String> {
        let first = lab.sheet_before("Observe");
        let later = format!(
            "{}{}",
            section(lab.sheet, "Explain"),
            section(lab.sheet, "Answers")
        );
        let later_numbers = numbers(&prose(&later));
        let later_verdicts = verdicts(&prose(&later));
        let predict = section(lab.sheet, "Predict");
        let mut allowed = numbers(predict);
        for command in commands(first).iter().chain([&lab.command_line()]) {
            allowed.extend(numbers(command));
        }
        let shown = prose(first);
        let mut found: Vec<String> = numbers(&shown)
            .into_iter()
            .filter(|n| later_numbers.contains(n) && !allowed.contains(n))
            .collect();
        let asked = verdicts(predict);
        found.extend(
            verdicts(&shown)
                .into_iter()
                .filter(|v| later_verdicts.contains(v) && !asked.contains(v))
                .map(str::to_string),
        );
        found.sort();
        found.dedup();
        found
    }

    #[test]
    fn no_first_half_gives_away_an_answer() {
        let leaks: Vec<String> = LABS
            .iter()
            .filter_map(|lab| {
                let found = giveaways(lab);
                (!found.is_empty()).then(|| format!("{}: {}", lab.file, found.join(" ")))
            })
            .collect();
        assert!(leaks.is_empty(), "before Observe:\n{}", leaks.join("\n"));
    }

    #[test]
    fn the_giveaway_check_bites() {
        let mut lab = LABS[1];
        lab.sheet = "# Lab 2: X\n\n## Goal\n\nSell 1 ticket 99 times in Lab 3, OVERSOLD.\n\n\
                     ## Background\n\n```sh\nticketlab run 2 --workers 7\n```\n\n\
                     ## Predict\n\n1. Will 3 buyers buy?\n\n## Run\n\n## Observe\n\n\
                     ## Explain\n\n99 lost, oversold, Lab 3, 7 and 3 buyers.\n\n\
                     ## Try this\n\n## Answers\n";
        assert_eq!(giveaways(&lab), ["99", "oversold"]);
    }
}
