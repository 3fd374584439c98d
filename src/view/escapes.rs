//! Reading a terminal's output back as text, for tests: the unit tests use
//! it here and the integration tests include this very file.

/// Drops escape sequences (CSI `ESC [ … final`, and two-byte `ESC x`) and
/// carriage returns, to read the printed text.
pub(crate) fn strip_escapes(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.next_if_eq(&'[').is_some() {
                    // Parameters, then one final byte in @..~.
                    for d in chars.by_ref() {
                        if ('@'..='~').contains(&d) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_cursor_moves_and_returns_go_and_text_stays() {
        assert_eq!(
            strip_escapes("\x1b[38;5;9moversold 9\x1b[0m\r\n\x1b[?25h\x1b7ok"),
            "oversold 9\nok"
        );
    }
}
