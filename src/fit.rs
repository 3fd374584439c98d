//! Fits the summary to the terminal's width: lines wrap at spaces, under
//! their value column, and never inside a seed, a flag with its value, or
//! a schedule. A terminal wraps anywhere, so at 60 columns a seed would be
//! split in two and could not be copied whole.

/// `text` with every line that is wider than `width` wrapped. A line's
/// continuation starts under its value (the column after the label's run
/// of spaces, as in `  seed          42 (repeat with --seed 42)`). A
/// schedule too long for any line is replaced by where to keep it.
pub(crate) fn fit_to_width(text: &str, width: usize) -> String {
    let mut out = String::new();
    for line in text.lines() {
        for piece in fit_line(line, width) {
            out.push_str(&piece);
            out.push('\n');
        }
    }
    out
}

/// Columns a line takes (every character of the summary is one column).
fn columns(s: &str) -> usize {
    s.chars().count()
}

/// Continuations start this far in when the value column leaves too
/// little room for the longest unit.
const NARROW_INDENT: usize = 2;

fn fit_line(line: &str, width: usize) -> Vec<String> {
    if columns(line) <= width {
        return vec![line.to_string()];
    }
    let value = value_column(line);
    let units = units(&line[value..]);
    let longest = units.iter().map(|u| columns(u)).max().unwrap_or(0);
    if line.trim_start().starts_with("interleaving") && longest + NARROW_INDENT > width {
        // Half a schedule replays a different run: never print one split.
        let instead = format!(
            "{}too long for this terminal: --save-schedule FILE keeps it",
            &line[..value]
        );
        return wrap(&instead, value, units_of(&instead, value), width);
    }
    wrap(line, value, units, width)
}

fn units_of(line: &str, value: usize) -> Vec<String> {
    units(&line[value..])
}

/// `line`'s units after its label (up to `value`), packed into lines.
fn wrap(line: &str, value: usize, units: Vec<String>, width: usize) -> Vec<String> {
    let longest = units.iter().map(|u| columns(u)).max().unwrap_or(0);
    let indent = if value + longest <= width {
        value
    } else {
        NARROW_INDENT
    };
    let blank = " ".repeat(indent);
    let mut lines = Vec::new();
    let mut current = line[..value].to_string();
    // Whether `current` holds a unit yet (not just the label or indent).
    let mut empty = true;
    for unit in units {
        let need = columns(&current) + usize::from(!empty) + columns(&unit);
        if need > width && (!empty || current.trim() != "") {
            lines.push(std::mem::take(&mut current).trim_end().to_string());
            current.clone_from(&blank);
            empty = true;
        }
        if !empty {
            current.push(' ');
        }
        current.push_str(&unit);
        empty = false;
    }
    lines.push(current);
    lines
}

/// Where a line's value starts: after the label and its run of two or more
/// spaces, or after the indentation (plus `sale: `) when there is none.
fn value_column(line: &str) -> usize {
    let lead = line.len() - line.trim_start().len();
    if let Some(gap) = line[lead..].find("  ") {
        let after = lead + gap;
        let value = after + (line.len() - after - line[after..].trim_start().len());
        if value < line.len() {
            return value;
        }
    }
    line[lead..]
        .find(": ")
        .map_or(lead, |colon| lead + colon + 2)
}

/// The words of `text`, with each `--flag` glued to the value after it
/// (`--seed 42` is one unit), so a command is never split from its value.
fn units(text: &str) -> Vec<String> {
    let mut units: Vec<String> = Vec::new();
    let mut glue = false;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        match units.last_mut() {
            Some(last) if glue => {
                last.push(' ');
                last.push_str(word);
            }
            _ => units.push(word.to_string()),
        }
        glue = word.starts_with("--") && !glue;
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = "\
sale: 8 buyers, 300 tickets, store shm, lock buy, wants all, jitter, one process
  sold          85 of 300   stopped
  seed          16541559188467296233 (repeat with --seed 16541559188467296233)
  interleaving  repeat with --schedule 7x3,8,6,3,1,5,4,2,7x6,6x8,1x8,4x8,8x4,7x2
";

    #[test]
    fn short_lines_stay_as_they_are() {
        assert_eq!(fit_to_width(SUMMARY, 200), SUMMARY);
    }

    #[test]
    fn every_line_fits_and_no_seed_or_command_is_split() {
        for width in [30, 40, 60, 80] {
            let fitted = fit_to_width(SUMMARY, width);
            for line in fitted.lines() {
                assert!(columns(line) <= width, "{width}: {line:?}\n{fitted}");
            }
            // The seed, and the flag with it, each whole on one line.
            assert!(
                fitted
                    .lines()
                    .any(|l| l.contains("--seed 16541559188467296233")),
                "{width}\n{fitted}"
            );
            assert!(
                fitted.lines().any(|l| l.contains(" 16541559188467296233 ")
                    || l.ends_with(" 16541559188467296233")),
                "{width}\n{fitted}"
            );
            // A schedule is whole, or not there at all.
            let whole = fitted.contains("--schedule 7x3,8,6,3,1,5,4,2,7x6,6x8,1x8,4x8,8x4,7x2");
            assert!(
                whole || fitted.contains("--save-schedule FILE"),
                "{width}\n{fitted}"
            );
        }
    }

    #[test]
    fn continuations_start_under_the_value() {
        let fitted = fit_to_width(SUMMARY, 60);
        let lines: Vec<&str> = fitted.lines().collect();
        let seed = lines.iter().position(|l| l.starts_with("  seed")).unwrap();
        assert!(lines[seed + 1].starts_with(&" ".repeat(16)), "{fitted}");
        assert!(lines[1].starts_with("      "), "{fitted}");
    }
}
