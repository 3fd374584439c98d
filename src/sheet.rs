//! Lab sheets for the terminal: Markdown without the clutter.
//!
//! Headings become titles, fenced code is indented, and `**`, `*` and
//! backticks disappear. On a terminal, headings are bold and code is
//! coloured; elsewhere the output is plain text with no escape codes.

use crossterm::style::Stylize;

/// Renders a sheet; `styled` adds terminal colours.
pub(crate) fn render(markdown: &str, styled: bool) -> String {
    let mut out = String::new();
    // The indentation of the open fence, while inside one: code inside a
    // list item is shown from the fence's column, so wide output still fits
    // 80 columns.
    let mut fence: Option<usize> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(line.len() - trimmed.len()),
            };
            continue;
        }
        if let Some(indent) = fence {
            let own = line.len() - trimmed.len();
            let code = format!("  {}", &line[own.min(indent)..]);
            out.push_str(&if styled {
                code.cyan().to_string()
            } else {
                code
            });
        } else if let Some(title) = line.strip_prefix("# ") {
            let title = inline(title);
            let rule = "=".repeat(title.chars().count());
            if styled {
                out.push_str(&format!("{}\n{rule}", title.bold()));
            } else {
                out.push_str(&format!("{title}\n{rule}"));
            }
        } else if let Some(heading) = line
            .strip_prefix("## ")
            .or_else(|| line.strip_prefix("### "))
        {
            let heading = inline(heading);
            if styled {
                out.push_str(&heading.bold().underlined().to_string());
            } else {
                let rule = "-".repeat(heading.chars().count());
                out.push_str(&format!("{heading}\n{rule}"));
            }
        } else if let Some(item) = trimmed.strip_prefix("- ") {
            let indent = line.len() - trimmed.len();
            out.push_str(&format!("{}• {}", " ".repeat(indent), inline(item)));
        } else {
            out.push_str(&inline(line));
        }
        out.push('\n');
    }
    out
}

/// Drops inline Markdown markers: `code`, **bold**, *emphasis*, [text](link).
fn inline(text: &str) -> String {
    let mut s = text.replace("**", "").replace('`', "");
    // Links: keep the text, drop the target.
    while let (Some(open), Some(mid)) = (s.find('['), s.find("](")) {
        let Some(close) = s[mid..].find(')').map(|i| mid + i) else {
            break;
        };
        if open > mid {
            break;
        }
        s = format!("{}{}{}", &s[..open], &s[open + 1..mid], &s[close + 1..]);
    }
    strip_emphasis(&s)
}

/// Removes single `*` used for emphasis, keeping `*` inside words like `a*b`.
fn strip_emphasis(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == '*' {
            let before = i.checked_sub(1).map(|j| chars[j]);
            let after = chars.get(i + 1).copied();
            let opens = after.is_some_and(|a| !a.is_whitespace())
                && before.is_none_or(|b| !b.is_alphanumeric());
            let closes = before.is_some_and(|b| !b.is_whitespace())
                && after.is_none_or(|a| !a.is_alphanumeric());
            if opens || closes {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHEET: &str = "# Lab 9: Demo\n\n## Goal\n\nSee **why** the `count` *drifts*.\n\n```sh\nticketlab run 9\n```\n- a [link](x.md)\n";

    #[test]
    fn plain_rendering_has_no_markdown_and_no_escape_codes() {
        let text = render(SHEET, false);
        assert!(text.contains("Lab 9: Demo\n==========="), "{text}");
        assert!(text.contains("Goal\n----"), "{text}");
        assert!(text.contains("See why the count drifts."), "{text}");
        assert!(text.contains("\n  ticketlab run 9\n"), "{text}");
        assert!(text.contains("• a link"), "{text}");
        assert!(!text.contains("```") && !text.contains('`') && !text.contains("**"));
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn code_in_a_list_item_starts_at_the_item_text() {
        let text = render(
            "- Run:\n\n  ```sh\n  ticketlab run 2\n    --seed 1\n  ```\n",
            false,
        );
        assert!(
            text.contains("\n  ticketlab run 2\n    --seed 1\n"),
            "{text}"
        );
    }

    #[test]
    fn styled_rendering_colours_headings() {
        assert!(render(SHEET, true).contains('\x1b'));
    }

    #[test]
    fn arithmetic_stars_survive() {
        assert_eq!(strip_emphasis("2 * 3 and a*b"), "2 * 3 and a*b");
    }
}
