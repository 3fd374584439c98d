//! Predictions a machine can check: for each lab, a few of its sheet's
//! Predict questions, each graded against one figure of a real run's JSON
//! report. A wrong prediction is learning, not an error: grading never fails
//! a run, it only points at the Explain item that says why.

use serde_json::Value;

/// What `ticketlab check` was asked to do.
#[derive(Debug, Clone)]
pub(crate) struct CheckConfig {
    /// The lab.
    pub lab: &'static crate::labs::Lab,
    /// Its predictions.
    pub checks: &'static LabChecks,
    /// Where the answers are, if not asked in the terminal.
    pub answers_file: Option<std::path::PathBuf>,
    /// One JSON object instead of result lines.
    pub json: bool,
    /// The arguments of the `ticketlab run N` whose report is graded: the
    /// lab's premise, the student's flags, then a quiet JSON report.
    pub run: Vec<String>,
}

/// How close a numeric prediction must come to the run's figure.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tolerance {
    /// The very number.
    Exact,
    /// At most this far off either way.
    Within(f64),
    /// At most this many percent of the run's figure off either way: for
    /// figures like "all 100, or very nearly".
    Percent(f64),
}

/// What kind of answer a prediction takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// A number, graded with a tolerance.
    Number(Tolerance),
    /// One of these options: (name, what it means).
    Choice(&'static [(&'static str, &'static str)]),
    /// Any subset of these options, e.g. "which settings are exact".
    Set(&'static [&'static str]),
}

/// A figure, as the student gives it or as the run reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Figure {
    /// A count, a time in ms.
    Number(f64),
    /// One option's name.
    Choice(&'static str),
    /// Some options' names, in the order the prediction lists them.
    Set(Vec<&'static str>),
}

/// Reads a prediction's figure out of a run's JSON report, or says why this
/// run has none (e.g. the student gave the flag a comparison varies, so the
/// row the question asks about was never run).
pub(crate) type Extract = fn(&Value) -> Result<Figure, String>;

/// One checkable prediction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prediction {
    /// Short and stable: the key in an answers file.
    pub id: &'static str,
    /// The question, worded as the sheet's Predict section words it.
    pub question: &'static str,
    /// Its kind of answer.
    pub kind: Kind,
    /// Where its figure is in the run's report.
    pub figure: Extract,
    /// The Explain item (1-based, in sheet order) that says why.
    pub explain: u8,
}

/// A lab's predictions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LabChecks {
    /// The lab's number.
    pub lab: u8,
    /// Flags `check` adds to the lab's preset before the student's own, when
    /// the questions are about one particular run the preset leaves open
    /// (lab 9's step mode needs a schedule without a person at the keys).
    pub premise: &'static [&'static str],
    /// The predictions, in the order they are asked.
    pub predictions: &'static [Prediction],
}

/// Why an answer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AnswerError {
    /// A line is not `id = value`.
    #[error("line {line}: expected `id = value`, got `{text}`")]
    Syntax { line: usize, text: String },
    /// An id the lab does not ask.
    #[error("line {line}: lab {lab} asks no `{id}` (it asks: {ids})")]
    Unknown {
        line: usize,
        lab: u8,
        id: String,
        ids: String,
    },
    /// The same id twice.
    #[error("line {line}: `{id}` is answered twice")]
    Twice { line: usize, id: String },
    /// A question left unanswered.
    #[error("no answer for `{id}` ({question})")]
    Missing {
        id: &'static str,
        question: &'static str,
    },
    /// A value of the wrong kind.
    #[error("`{id}`: {why}")]
    Invalid { id: &'static str, why: String },
}

/// The settings lab 12 compares on SQLite.
const DATABASE_LOCKS: &[&str] = &["none", "buy", "atomic", "serializable"];

/// `yes` or `no`, for questions the sheet asks as "will ...?".
const YES_NO: &[(&str, &str)] = &[("yes", ""), ("no", "")];

/// For "roughly how long": the sheets contrast a sale whose delays overlap
/// (well under half a second) with one whose buyers take turns.
const HOW_LONG: &[(&str, &str)] = &[("short", "under 0.5 s"), ("long", "0.5 s or more")];

fn yes_no(yes: bool) -> Figure {
    Figure::Choice(if yes { "yes" } else { "no" })
}

/// Field `key` of `obj` as a number.
fn num(obj: &Value, key: &str) -> Result<f64, String> {
    obj.get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("this run reports no `{key}`"))
}

/// Whether every sale of a run that failed failed only because a buyer
/// died where `--crash` asked, holding the lock: what lab 8 shows.
pub(crate) fn failed_only_as_asked(report: &Value) -> bool {
    let sales: Vec<&Value> = match report.get("sales").and_then(Value::as_array) {
        Some(rows) => rows.iter().collect(),
        None => vec![report],
    };
    let asked = |s: &Value| s.get("crash").is_some_and(|c| !c.is_null());
    let kind = |s: &Value| s["ending"]["kind"].as_str().map(str::to_owned);
    let failed = |s: &Value| kind(s).is_some_and(|k| k != "completed");
    sales.iter().any(|s| failed(s))
        && sales
            .iter()
            .filter(|s| failed(s))
            .all(|s| asked(s) && kind(s).as_deref() == Some("holder_died"))
}

/// Lab 6's seller row: its questions are about the per-buyer pipes, which
/// the run compares with the queue.
fn server(report: &Value) -> Result<&Value, String> {
    row(report, "sales", "store", "server")
}

/// The row of a comparison (`sales`) or of explorations whose `flag` field
/// is `value`: e.g. the `--lock none` sale of lab 4.
fn row<'a>(report: &'a Value, list: &str, flag: &str, value: &str) -> Result<&'a Value, String> {
    report
        .get(list)
        .and_then(Value::as_array)
        .and_then(|rows| {
            rows.iter()
                .find(|r| r.get(flag).and_then(Value::as_str) == Some(value))
        })
        .ok_or_else(|| format!("this run has no --{flag} {value}"))
}

/// The locks among `locks` whose sale in a comparison sold exactly.
fn exact_rows(report: &Value, locks: &[&'static str]) -> Result<Figure, String> {
    let mut exact = Vec::new();
    for &lock in locks {
        if row(report, "sales", "lock", lock)?["verdict"] == "exact" {
            exact.push(lock);
        }
    }
    Ok(Figure::Set(exact))
}

/// The schedules of an exploration that oversold.
fn oversold_schedules(exploration: &Value) -> Result<f64, String> {
    let shares = exploration
        .get("distribution")
        .and_then(Value::as_array)
        .ok_or("this run reports no distribution")?;
    Ok(shares
        .iter()
        .filter(|s| s.get("outcome").and_then(Value::as_str) == Some("oversold"))
        .filter_map(|s| s.get("schedules").and_then(Value::as_f64))
        // Not `sum()`: an empty f64 sum is -0, which would show as "-0".
        .fold(0.0, |a, b| a + b))
}

/// Every lab's predictions. Questions whose figure no run's JSON holds
/// (times of day, what a live screen shows, two runs compared) are left to
/// the sheet's Answers.
pub(crate) const CHECKS: &[LabChecks] = &[
    LabChecks {
        lab: 1,
        // Both questions are about the --lock pair run (Predict 3).
        premise: &["--lock", "pair"],
        predictions: &[
            Prediction {
                id: "pair-split",
                question: "With --lock pair, what will `split pairs` be?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| num(r, "split_pairs").map(Figure::Number),
                explain: 4,
            },
            Prediction {
                id: "interleaved-zero",
                question: "With --lock pair, will `interleaved lines` drop to 0 as well?",
                kind: Kind::Choice(YES_NO),
                figure: |r| num(r, "interleaved_lines").map(|n| yes_no(n == 0.0)),
                explain: 6,
            },
        ],
    },
    LabChecks {
        lab: 2,
        premise: &[],
        predictions: &[
            Prediction {
                id: "bought",
                question: "How many buyers will report that they bought the ticket?",
                kind: Kind::Number(Tolerance::Percent(10.0)),
                figure: |r| num(r, "sold").map(Figure::Number),
                explain: 1,
            },
            Prediction {
                id: "remaining",
                question: "What count will the file hold at the end: 1, 0, or a negative number?",
                kind: Kind::Choice(&[("1", ""), ("0", ""), ("negative", "")]),
                figure: |r| {
                    let n = num(r, "remaining")?;
                    if n < 0.0 {
                        Ok(Figure::Choice("negative"))
                    } else if n == 0.0 {
                        Ok(Figure::Choice("0"))
                    } else if n == 1.0 {
                        Ok(Figure::Choice("1"))
                    } else {
                        Err(format!("the file holds {n}, none of the choices"))
                    }
                },
                explain: 3,
            },
            Prediction {
                id: "lost",
                question: "How many lost updates will the summary report?",
                kind: Kind::Number(Tolerance::Percent(10.0)),
                figure: |r| num(r, "lost_updates").map(Figure::Number),
                explain: 3,
            },
            Prediction {
                id: "time",
                question: "Roughly how long will the whole sale take?",
                kind: Kind::Choice(HOW_LONG),
                figure: |r| num(r, "elapsed_ms").map(|ms| Figure::Choice(how_long(ms))),
                explain: 1,
            },
        ],
    },
    LabChecks {
        lab: 3,
        premise: &[],
        predictions: &[
            Prediction {
                id: "sold",
                question: "How many tickets will be sold?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| num(r, "sold").map(Figure::Number),
                explain: 1,
            },
            Prediction {
                id: "lost",
                question: "How many lost updates will there be?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| num(r, "lost_updates").map(Figure::Number),
                explain: 1,
            },
            Prediction {
                id: "failed",
                question: "How many buyers will fail to buy?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| num(r, "went_without").map(Figure::Number),
                explain: 4,
            },
            Prediction {
                id: "lock-wait",
                question: "Will `lock wait` be smaller or larger than the elapsed time?",
                kind: Kind::Choice(&[("smaller", ""), ("larger", "")]),
                figure: |r| {
                    let larger = num(r, "lock_wait_ms")? > num(r, "elapsed_ms")?;
                    Ok(Figure::Choice(if larger { "larger" } else { "smaller" }))
                },
                explain: 3,
            },
        ],
    },
    LabChecks {
        lab: 4,
        premise: &[],
        predictions: &[
            Prediction {
                id: "exact",
                question: "Which of none, write, buy, task and join sell exactly the 3 tickets?",
                kind: Kind::Set(LOCKS_COMPARED),
                figure: |r| exact_rows(r, LOCKS_COMPARED),
                explain: 3,
            },
            Prediction {
                id: "none-sold",
                question: "With --lock none, how many are sold?",
                kind: Kind::Number(Tolerance::Percent(10.0)),
                figure: |r| num(row(r, "sales", "lock", "none")?, "sold").map(Figure::Number),
                explain: 1,
            },
            Prediction {
                id: "none-remaining",
                question: "With --lock none, what count is left in the file?",
                kind: Kind::Number(Tolerance::Within(1.0)),
                figure: |r| num(row(r, "sales", "lock", "none")?, "remaining").map(Figure::Number),
                explain: 1,
            },
            Prediction {
                id: "write-better",
                question: "Does --lock write do any better than --lock none?",
                kind: Kind::Choice(YES_NO),
                figure: |r| {
                    let none = num(row(r, "sales", "lock", "none")?, "oversold")?;
                    let write = num(row(r, "sales", "lock", "write")?, "oversold")?;
                    Ok(yes_no(write < none))
                },
                explain: 2,
            },
        ],
    },
    LabChecks {
        lab: 11,
        // Both questions are about the daemon run (Predict 2).
        premise: &["--daemon"],
        predictions: &[
            Prediction {
                id: "last-line",
                question: "With --daemon, does the child's last line appear?",
                kind: Kind::Choice(YES_NO),
                figure: |r| {
                    r.get("child_finished")
                        .and_then(Value::as_bool)
                        .map(yes_no)
                        .ok_or_else(|| "this run reports no `child_finished`".into())
                },
                explain: 1,
            },
            Prediction {
                id: "child-lines",
                question: "With --daemon, how many child lines do you expect?",
                kind: Kind::Number(Tolerance::Within(1.0)),
                figure: |r| num(r, "child_lines").map(Figure::Number),
                explain: 2,
            },
        ],
    },
    LabChecks {
        lab: 12,
        premise: &[],
        predictions: &[
            Prediction {
                id: "none-verdict",
                question: "Under --lock none, will the SQLite sale be exact, or oversold?",
                kind: Kind::Choice(&[("exact", ""), ("oversold", "")]),
                figure: |r| {
                    let none = row(r, "sales", "lock", "none")?;
                    Ok(Figure::Choice(if none["verdict"] == "exact" {
                        "exact"
                    } else {
                        "oversold"
                    }))
                },
                explain: 1,
            },
            Prediction {
                id: "exact",
                question: "Which of none, buy, atomic and serializable sell exactly the 5 tickets?",
                kind: Kind::Set(DATABASE_LOCKS),
                figure: |r| exact_rows(r, DATABASE_LOCKS),
                explain: 2,
            },
            Prediction {
                id: "retries",
                question: "Will the serializable sale have to retry any transaction?",
                kind: Kind::Choice(YES_NO),
                figure: |r| {
                    let retries = num(row(r, "sales", "lock", "serializable")?, "retries")?;
                    Ok(yes_no(retries > 0.0))
                },
                explain: 3,
            },
        ],
    },
    LabChecks {
        lab: 5,
        premise: &[],
        predictions: &[
            Prediction {
                id: "both-exact",
                question: "Will both sales sell exactly 20,000?",
                kind: Kind::Choice(YES_NO),
                figure: |r| {
                    let file = row(r, "sales", "store", "file")?;
                    let shm = row(r, "sales", "store", "shm")?;
                    Ok(yes_no(
                        file["verdict"] == "exact" && shm["verdict"] == "exact",
                    ))
                },
                explain: 2,
            },
            Prediction {
                id: "shm-torn",
                question: "How many torn reads will the shm store report?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| num(row(r, "sales", "store", "shm")?, "torn_reads").map(Figure::Number),
                explain: 4,
            },
            Prediction {
                id: "first",
                question: "Which sale finishes first?",
                kind: Kind::Choice(&[("file", ""), ("shm", "")]),
                figure: |r| {
                    let file = num(row(r, "sales", "store", "file")?, "elapsed_ms")?;
                    let shm = num(row(r, "sales", "store", "shm")?, "elapsed_ms")?;
                    Ok(Figure::Choice(if shm <= file { "shm" } else { "file" }))
                },
                explain: 2,
            },
        ],
    },
    LabChecks {
        lab: 6,
        premise: &[],
        predictions: &[
            Prediction {
                id: "sold",
                question: "How many tickets are sold?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| num(server(r)?, "sold").map(Figure::Number),
                explain: 2,
            },
            Prediction {
                id: "lost",
                question: "How many lost updates are there?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| num(server(r)?, "lost_updates").map(Figure::Number),
                explain: 2,
            },
            Prediction {
                id: "lock-wait",
                question: "What will `lock wait` show, in ms?",
                kind: Kind::Number(Tolerance::Within(0.5)),
                figure: |r| num(server(r)?, "lock_wait_ms").map(Figure::Number),
                explain: 2,
            },
            Prediction {
                id: "last-twice",
                question: "Can two buyers both get the last ticket?",
                kind: Kind::Choice(YES_NO),
                figure: |r| num(server(r)?, "oversold").map(|n| yes_no(n > 0.0)),
                explain: 2,
            },
        ],
    },
    LabChecks {
        lab: 7,
        premise: &[],
        predictions: &[
            Prediction {
                id: "sold",
                question: "How many tickets are sold?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| num(r, "sold").map(Figure::Number),
                explain: 2,
            },
            Prediction {
                id: "lost",
                question: "How many lost updates are there?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| num(r, "lost_updates").map(Figure::Number),
                explain: 1,
            },
            Prediction {
                id: "lock-wait",
                question: "What will `lock wait` show, in ms?",
                kind: Kind::Number(Tolerance::Within(0.5)),
                figure: |r| num(r, "lock_wait_ms").map(Figure::Number),
                explain: 3,
            },
        ],
    },
    LabChecks {
        lab: 8,
        premise: &[],
        predictions: &[
            Prediction {
                id: "buy-ends",
                question: "Under --lock buy, will the sale hang, finish, or be stopped?",
                kind: Kind::Choice(&[("hang", ""), ("finish", ""), ("stopped", "")]),
                // A run that hung would never grade anything: only finish
                // or stopped can come back.
                figure: |r| {
                    let buy = row(r, "sales", "lock", "buy")?;
                    Ok(Figure::Choice(if buy["ending"]["kind"] == "completed" {
                        "finish"
                    } else {
                        "stopped"
                    }))
                },
                explain: 2,
            },
            Prediction {
                id: "buy-twice",
                question: "Under --lock buy, can a ticket be sold twice because of the death?",
                kind: Kind::Choice(YES_NO),
                figure: |r| {
                    num(row(r, "sales", "lock", "buy")?, "oversold").map(|n| yes_no(n > 0.0))
                },
                explain: 3,
            },
            Prediction {
                id: "robust-sold",
                question: "Under --lock robust, how many of the 5 tickets will be sold?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| num(row(r, "sales", "lock", "robust")?, "sold").map(Figure::Number),
                explain: 4,
            },
            Prediction {
                id: "robust-verdict",
                question: "Under --lock robust, what will the verdict be?",
                kind: Kind::Choice(&[
                    ("exact", ""),
                    ("oversold", ""),
                    ("count wrong", ""),
                    ("stopped", ""),
                ]),
                figure: |r| {
                    let v = row(r, "sales", "lock", "robust")?["verdict"]
                        .as_str()
                        .unwrap_or("");
                    ["exact", "oversold", "count wrong", "stopped"]
                        .into_iter()
                        .find(|c| *c == v)
                        .map(Figure::Choice)
                        .ok_or_else(|| format!("a verdict of {v:?}"))
                },
                explain: 4,
            },
        ],
    },
    LabChecks {
        lab: 9,
        // Predict 3's run: buyer 1 first, then (`--then lowest`, the default)
        // the lowest-numbered buyer that can move, so buyer 1 finishes and
        // buyer 2 goes after it. Without a terminal, step needs a schedule.
        premise: &["--schedule", "1"],
        predictions: &[
            Prediction {
                id: "serial-steps",
                question: "Buyer 1 takes all its steps first, then buyer 2 takes its steps. How many steps is that?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| {
                    let schedule = r
                        .get("schedule")
                        .and_then(Value::as_str)
                        .ok_or("this run recorded no whole schedule")?;
                    Ok(Figure::Number(schedule.split(',').count() as f64))
                },
                explain: 1,
            },
            Prediction {
                id: "serial-sold",
                question: "And how many tickets are sold?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| num(r, "sold").map(Figure::Number),
                explain: 1,
            },
        ],
    },
    LabChecks {
        lab: 10,
        premise: &[],
        predictions: &[
            Prediction {
                id: "none-share",
                question: "Two buyers, one ticket, no lock. Of all the schedules, what share oversells?",
                kind: Kind::Choice(&[
                    ("none", "0"),
                    ("few", "under 35%"),
                    ("half", "35% to 55%"),
                    ("most", "over 55%"),
                ]),
                figure: |r| {
                    let none = row(r, "explorations", "lock", "none")?;
                    let all = num(none, "schedules")?;
                    let share = if all == 0.0 {
                        0.0
                    } else {
                        oversold_schedules(none)? / all
                    };
                    Ok(Figure::Choice(if share == 0.0 {
                        "none"
                    } else if share < 0.35 {
                        "few"
                    } else if share <= 0.55 {
                        "half"
                    } else {
                        "most"
                    }))
                },
                explain: 1,
            },
            Prediction {
                id: "write-more",
                question: "With --lock write, will there be more schedules than with none, or fewer?",
                kind: Kind::Choice(&[("more", ""), ("fewer", ""), ("same", "")]),
                figure: |r| {
                    let none = num(row(r, "explorations", "lock", "none")?, "schedules")?;
                    let write = num(row(r, "explorations", "lock", "write")?, "schedules")?;
                    Ok(Figure::Choice(match write {
                        w if w > none => "more",
                        w if w < none => "fewer",
                        _ => "same",
                    }))
                },
                explain: 3,
            },
            Prediction {
                id: "buy-oversold",
                question: "With --lock buy, how many schedules oversell?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| {
                    oversold_schedules(row(r, "explorations", "lock", "buy")?).map(Figure::Number)
                },
                explain: 4,
            },
            Prediction {
                id: "none-shortest",
                question: "How many steps does the shortest failing schedule take with none?",
                kind: Kind::Number(Tolerance::Exact),
                figure: |r| {
                    let none = row(r, "explorations", "lock", "none")?;
                    none.get("shortest_failing")
                        .and_then(|f| f.get("steps"))
                        .and_then(Value::as_f64)
                        .map(Figure::Number)
                        .ok_or_else(|| "no schedule failed with --lock none".into())
                },
                explain: 6,
            },
        ],
    },
];

/// The lock settings lab 4 compares, as a set question lists them.
const LOCKS_COMPARED: &[&str] = &["none", "write", "buy", "task", "join"];

fn how_long(ms: f64) -> &'static str {
    if ms < 500.0 { "short" } else { "long" }
}

/// Lab `n`'s predictions.
pub(crate) fn for_lab(n: u8) -> Option<&'static LabChecks> {
    CHECKS.iter().find(|c| c.lab == n)
}

impl Kind {
    /// How to answer, for the prompt: `a number`, `yes, no`.
    pub(crate) fn hint(&self) -> String {
        match self {
            Kind::Number(_) => "a number".into(),
            Kind::Choice(options) => options
                .iter()
                .map(|(name, means)| {
                    if means.is_empty() {
                        name.to_string()
                    } else {
                        format!("{name} = {means}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
            Kind::Set(options) => format!(
                "any of {}, separated by commas; - for none of them",
                options.join(", ")
            ),
        }
    }
}

impl Prediction {
    /// The student's answer as a figure, or why it is not one.
    pub(crate) fn parse(&self, text: &str) -> Result<Figure, AnswerError> {
        let text = text.trim();
        let invalid = |why: String| AnswerError::Invalid { id: self.id, why };
        match self.kind {
            Kind::Number(_) => {
                // People write 20,000 and 20_000, but 1,1,2 is a list, not
                // 112: a separator must stand before groups of three digits.
                let grouped = text.split([',', '_']).skip(1).all(|g| g.len() == 3);
                if !grouped {
                    return Err(invalid(format!("expected a number, got `{text}`")));
                }
                let bare: String = text.chars().filter(|c| !matches!(c, ',' | '_')).collect();
                match bare.parse::<f64>() {
                    Ok(n) if n.is_finite() => Ok(Figure::Number(n)),
                    _ => Err(invalid(format!("expected a number, got `{text}`"))),
                }
            }
            Kind::Choice(options) => options
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(text))
                .map(|(name, _)| Figure::Choice(name))
                .ok_or_else(|| {
                    invalid(format!("expected one of {}, got `{text}`", names(options)))
                }),
            Kind::Set(options) => {
                if text == "-" {
                    return Ok(Figure::Set(Vec::new()));
                }
                let mut chosen = Vec::new();
                for word in text.split([',', ' ']).filter(|w| !w.is_empty()) {
                    let Some(name) = options.iter().find(|o| o.eq_ignore_ascii_case(word)) else {
                        return Err(invalid(format!(
                            "expected any of {}, got `{word}`",
                            options.join(", ")
                        )));
                    };
                    chosen.push(*name);
                }
                if chosen.is_empty() {
                    return Err(invalid("expected some options, or - for none".into()));
                }
                // Order and repeats do not change a set.
                Ok(Figure::Set(
                    options
                        .iter()
                        .copied()
                        .filter(|o| chosen.contains(o))
                        .collect(),
                ))
            }
        }
    }

    /// Whether `predicted` is right about `actual`.
    pub(crate) fn grade(&self, predicted: &Figure, actual: &Figure) -> bool {
        match (self.kind, predicted, actual) {
            (Kind::Number(tolerance), Figure::Number(p), Figure::Number(a)) => {
                let off = (p - a).abs();
                // A little slack for figures that went through decimal text.
                let slack = 1e-9;
                match tolerance {
                    Tolerance::Exact => off <= slack,
                    Tolerance::Within(t) => off <= t + slack,
                    Tolerance::Percent(pct) => off <= a.abs() * pct / 100.0 + slack,
                }
            }
            _ => predicted == actual,
        }
    }
}

fn names(options: &[(&str, &str)]) -> String {
    options
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Figure {
    /// As the result line shows it.
    pub(crate) fn show(&self) -> String {
        match self {
            // `+ 0.0` turns a -0 into 0.
            Figure::Number(n) if n.fract() == 0.0 => format!("{:.0}", n + 0.0),
            Figure::Number(n) => format!("{n:.1}"),
            Figure::Choice(c) => c.to_string(),
            Figure::Set(s) if s.is_empty() => "-".into(),
            Figure::Set(s) => s.join(", "),
        }
    }

    /// As the JSON for an instructor holds it.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            // Counts read as counts: 5, not 5.0.
            Figure::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
                serde_json::json!(*n as i64)
            }
            Figure::Number(n) => serde_json::json!(n),
            Figure::Choice(c) => serde_json::json!(c),
            Figure::Set(s) => serde_json::json!(s),
        }
    }
}

/// Reads an answers file: `id = value` lines; blank lines and `#` comments
/// are skipped. Every question of `checks` must be answered, once.
pub(crate) fn parse_answers(text: &str, checks: &LabChecks) -> Result<Vec<Figure>, AnswerError> {
    let mut found: Vec<Option<Figure>> = vec![None; checks.predictions.len()];
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let Some((id, value)) = content.split_once('=') else {
            return Err(AnswerError::Syntax {
                line,
                text: content.to_string(),
            });
        };
        let id = id.trim();
        let Some(at) = checks.predictions.iter().position(|p| p.id == id) else {
            return Err(AnswerError::Unknown {
                line,
                lab: checks.lab,
                id: id.to_string(),
                ids: ids(checks),
            });
        };
        if found[at].is_some() {
            return Err(AnswerError::Twice {
                line,
                id: id.to_string(),
            });
        }
        found[at] = Some(checks.predictions[at].parse(value)?);
    }
    checks
        .predictions
        .iter()
        .zip(found)
        .map(|(p, answer)| {
            answer.ok_or(AnswerError::Missing {
                id: p.id,
                question: p.question,
            })
        })
        .collect()
}

/// The ids a lab asks, for error messages.
fn ids(checks: &LabChecks) -> String {
    checks
        .predictions
        .iter()
        .map(|p| p.id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One prediction graded against one run.
#[derive(Debug, Clone)]
pub(crate) struct Graded {
    /// The prediction.
    pub prediction: &'static Prediction,
    /// What the student predicted.
    pub predicted: Figure,
    /// The run's figure, or why the run has none.
    pub actual: Result<Figure, String>,
}

impl Graded {
    /// Grades `predicted` against the run `report`.
    pub(crate) fn new(
        prediction: &'static Prediction,
        predicted: Figure,
        report: &Value,
    ) -> Graded {
        Graded {
            prediction,
            actual: (prediction.figure)(report),
            predicted,
        }
    }

    /// Right, wrong, or (`None`) not gradable on this run.
    pub(crate) fn correct(&self) -> Option<bool> {
        self.actual
            .as_ref()
            .ok()
            .map(|a| self.prediction.grade(&self.predicted, a))
    }

    /// The result line: `✓ sold: you predicted 5; this run: 5`.
    pub(crate) fn line(&self) -> String {
        let p = &self.prediction;
        let predicted = self.predicted.show();
        match (&self.actual, self.correct()) {
            (Ok(a), Some(true)) => format!(
                "✓ {}: you predicted {predicted}; this run: {}",
                p.id,
                a.show()
            ),
            (Ok(a), _) => format!(
                "✗ {}: you predicted {predicted}; this run: {} — see Explain {}",
                p.id,
                a.show(),
                p.explain
            ),
            (Err(why), _) => format!("– {}: you predicted {predicted}; not graded: {why}", p.id),
        }
    }

    /// One prediction of the JSON an instructor collects.
    pub(crate) fn to_json(&self) -> GradedJson {
        GradedJson {
            id: self.prediction.id,
            question: self.prediction.question,
            predicted: self.predicted.to_json(),
            actual: self.actual.as_ref().map_or(Value::Null, Figure::to_json),
            correct: self.correct(),
            explain: format!("Explain {}", self.prediction.explain),
        }
    }
}

/// One prediction as `check --json` prints it: a struct, so its fields come
/// out in the order `docs/json.md` lists them (`json!` sorts its keys).
#[derive(Debug, serde::Serialize)]
pub(crate) struct GradedJson {
    id: &'static str,
    question: &'static str,
    predicted: Value,
    actual: Value,
    correct: Option<bool>,
    explain: String,
}

/// `check --json`'s document, after its `schema_version`.
#[derive(Debug, serde::Serialize)]
pub(crate) struct CheckJson {
    /// The lab's number.
    pub lab: u8,
    /// Each prediction, in the order asked.
    pub predictions: Vec<GradedJson>,
    /// The score.
    pub score: Score,
}

/// How a check went: right answers, gradable ones, and all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Score {
    /// Predictions the run bore out.
    pub correct: usize,
    /// Predictions the run had a figure for.
    pub graded: usize,
    /// Predictions asked.
    pub total: usize,
}

/// The score of `graded`.
pub(crate) fn score(graded: &[Graded]) -> Score {
    Score {
        correct: graded.iter().filter(|g| g.correct() == Some(true)).count(),
        graded: graded.iter().filter(|g| g.correct().is_some()).count(),
        total: graded.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labs::LABS;

    #[test]
    fn every_lab_has_two_to_four_predictions_with_unique_ids() {
        for lab in LABS {
            let checks = for_lab(lab.number).unwrap_or_else(|| panic!("lab {}", lab.number));
            let n = checks.predictions.len();
            assert!((2..=4).contains(&n), "lab {}: {n} predictions", lab.number);
            let mut ids: Vec<&str> = checks.predictions.iter().map(|p| p.id).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), n, "lab {}: ids repeat", lab.number);
        }
    }

    #[test]
    fn every_explain_reference_names_an_item_of_its_sheet() {
        for checks in CHECKS {
            let lab = crate::labs::find(&checks.lab.to_string()).unwrap();
            let explain = lab.sheet_before("Try this");
            let explain = &explain[explain.find("\n## Explain\n").unwrap()..];
            let items = explain.lines().filter(|l| l.starts_with("- ")).count();
            for p in checks.predictions {
                assert!(
                    (1..=items).contains(&(p.explain as usize)),
                    "lab {} `{}`: Explain {} of {items}",
                    checks.lab,
                    p.id,
                    p.explain
                );
            }
        }
    }

    fn lab(n: u8) -> &'static LabChecks {
        for_lab(n).unwrap()
    }

    #[test]
    fn answers_files_take_id_value_lines_and_comments() {
        let text = "# lab 2\n\nbought = 100  # all of them\nremaining=0\nlost = 99\ntime = short\n";
        let answers = parse_answers(text, lab(2)).unwrap();
        assert_eq!(answers[0], Figure::Number(100.0));
        assert_eq!(answers[1], Figure::Choice("0"));
        assert_eq!(answers[3], Figure::Choice("short"));
    }

    #[test]
    fn a_missing_unknown_twice_or_invalid_answer_is_named() {
        let e = parse_answers("bought = 1\n", lab(2)).unwrap_err();
        assert!(
            matches!(
                e,
                AnswerError::Missing {
                    id: "remaining",
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_answers("nope = 1\n", lab(2)).unwrap_err();
        assert!(e.to_string().contains("asks no `nope`"), "{e}");
        let e = parse_answers("sold = 5\nsold = 5\n", lab(3)).unwrap_err();
        assert_eq!(e.to_string(), "line 2: `sold` is answered twice");
        let e = parse_answers("sold = five\n", lab(3)).unwrap_err();
        assert!(e.to_string().contains("expected a number"), "{e}");
        let e = parse_answers("sold 5\n", lab(3)).unwrap_err();
        assert!(matches!(e, AnswerError::Syntax { line: 1, .. }), "{e}");
    }

    #[test]
    fn tolerances_grade_as_documented() {
        let bought = &lab(2).predictions[0];
        assert!(bought.grade(&Figure::Number(95.0), &Figure::Number(100.0)));
        assert!(!bought.grade(&Figure::Number(1.0), &Figure::Number(100.0)));
        let split = &lab(1).predictions[0];
        assert!(split.grade(&Figure::Number(0.0), &Figure::Number(0.0)));
        assert!(!split.grade(&Figure::Number(1.0), &Figure::Number(0.0)));
        // A list of buyers is no number, and a thousands comma is.
        assert!(split.parse("1,1,2,2,1,2").is_err());
        assert!(matches!(split.parse("20,000"), Ok(Figure::Number(n)) if n == 20_000.0));
        let sold = &lab(3).predictions[0];
        assert!(!sold.grade(&Figure::Number(4.0), &Figure::Number(5.0)));
        assert!(sold.grade(&Figure::Number(5.0), &Figure::Number(5.0)));
    }

    #[test]
    fn no_oversold_schedule_counts_as_zero_not_minus_zero() {
        let report = serde_json::json!({"explorations": [
            {"lock": "buy", "schedules": 12, "distribution": [
                {"outcome": "exact", "schedules": 12}]}]});
        let buy = &lab(10).predictions[2];
        let zero = (buy.figure)(&report).unwrap();
        assert_eq!(zero.show(), "0");
        assert_eq!(Figure::Number(-0.0).show(), "0");
    }

    #[test]
    fn sets_ignore_order_and_case() {
        let exact = &lab(4).predictions[0];
        let a = exact.parse("join, BUY task").unwrap();
        assert_eq!(a, Figure::Set(vec!["buy", "task", "join"]));
        assert_eq!(exact.parse("-").unwrap(), Figure::Set(vec![]));
        assert!(exact.parse("atomic").is_err());
    }

    #[test]
    fn figures_come_from_a_comparison_row_or_say_the_row_is_missing() {
        let report = serde_json::json!({"lab": 4, "varies": "--lock", "sales": [
            {"lock": "none", "sold": 20, "remaining": 4, "oversold": 15, "verdict": "oversold"},
            {"lock": "buy", "sold": 5, "remaining": 0, "oversold": 0, "verdict": "exact"},
        ]});
        let sold = &lab(4).predictions[1];
        assert_eq!((sold.figure)(&report), Ok(Figure::Number(20.0)));
        let better = &lab(4).predictions[3];
        assert_eq!(
            (better.figure)(&report),
            Err("this run has no --lock write".into())
        );
        let g = Graded::new(better, Figure::Choice("no"), &report);
        assert_eq!(g.correct(), None);
        assert!(g.line().starts_with("– write-better"), "{}", g.line());
    }

    #[test]
    fn result_lines_point_a_wrong_prediction_at_its_explain_item() {
        let report = serde_json::json!({"sold": 100});
        let bought = &lab(2).predictions[0];
        let wrong = Graded::new(bought, Figure::Number(1.0), &report);
        assert_eq!(
            wrong.line(),
            "✗ bought: you predicted 1; this run: 100 — see Explain 1"
        );
        let right = Graded::new(bought, Figure::Number(100.0), &report);
        assert_eq!(right.line(), "✓ bought: you predicted 100; this run: 100");
        assert_eq!(
            score(&[wrong, right]),
            Score {
                correct: 1,
                graded: 2,
                total: 2
            }
        );
    }
}
