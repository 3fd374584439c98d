//! What the terminal can show: whether it can host the live screen at all
//! (a `TERM` that names a terminal with an alternate screen), and whether
//! the screen uses colour (`--color`, `NO_COLOR`).
//!
//! The alternate screen is looked up in the terminal's compiled terminfo
//! entry (`smcup`), read directly: a terminal without one (`vt100`,
//! `linux`) would keep every live frame in its scrollback. An entry that
//! cannot be found is given the benefit of the doubt, as every terminal
//! emulator in use today has an alternate screen.

use std::path::{Path, PathBuf};

use crate::config::ColorMode;

/// Index of `smcup` (enter_ca_mode) among terminfo's string capabilities.
const SMCUP: usize = 28;
/// Magic numbers of the legacy and the 32-bit-number compiled formats.
const MAGIC_16: i16 = 0o432;
const MAGIC_32: i16 = 0o1036;
/// Largest terminfo entry read; real ones are a few KiB.
const MAX_ENTRY: u64 = 64 * 1024;

/// Whether a terminal called `term` (the `TERM` variable) can host the
/// live screen: not unset, not `dumb`, and with an alternate screen.
pub(crate) fn can_draw_live(term: Option<&str>) -> bool {
    match term {
        None | Some("" | "dumb" | "unknown") => false,
        Some(term) => has_alternate_screen(term).unwrap_or(true),
    }
}

/// Whether the live screen uses colour: `always` and `never` say so;
/// `auto` uses it unless `NO_COLOR` is set to anything but the empty
/// string (see no-color.org).
pub(crate) fn colour(mode: ColorMode, no_color: Option<&str>) -> bool {
    match mode {
        ColorMode::Always => true,
        ColorMode::Never => false,
        ColorMode::Auto => no_color.is_none_or(str::is_empty),
    }
}

/// `Some(whether term's entry has smcup)`, `None` if no entry was found.
fn has_alternate_screen(term: &str) -> Option<bool> {
    // A name with a path in it would look outside the databases.
    if term.contains('/') || term.starts_with('.') {
        return None;
    }
    let first = term.chars().next()?;
    for dir in terminfo_dirs() {
        // Linux spells the subdirectory with the first letter, macOS with
        // its code in hex.
        for sub in [first.to_string(), format!("{:x}", first as u32)] {
            if let Some(bytes) = read_entry(&dir.join(sub).join(term)) {
                return Some(smcup_of(&bytes).is_some_and(|present| present));
            }
        }
    }
    None
}

fn read_entry(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_ENTRY).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Where terminfo entries live, in the order ncurses looks.
fn terminfo_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("TERMINFO") {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".terminfo"));
    }
    if let Some(list) = std::env::var_os("TERMINFO_DIRS") {
        dirs.extend(std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()));
    }
    for dir in [
        "/etc/terminfo",
        "/lib/terminfo",
        "/usr/share/terminfo",
        "/usr/lib/terminfo",
    ] {
        dirs.push(PathBuf::from(dir));
    }
    dirs
}

/// Whether a compiled terminfo entry defines `smcup`; `None` if the bytes
/// are not an entry.
fn smcup_of(bytes: &[u8]) -> Option<bool> {
    let short = |i: usize| -> Option<i16> {
        let b = bytes.get(2 * i..2 * i + 2)?;
        Some(i16::from_le_bytes([b[0], b[1]]))
    };
    let magic = short(0)?;
    let number_size = match magic {
        MAGIC_16 => 2,
        MAGIC_32 => 4,
        _ => return None,
    };
    let count = |i: usize| short(i).and_then(|n| usize::try_from(n).ok());
    let (names, bools, numbers, strings) = (count(1)?, count(2)?, count(3)?, count(4)?);
    if strings <= SMCUP {
        return Some(false);
    }
    // The numbers start on an even byte.
    let mut offset = 12 + names + bools;
    offset += offset % 2;
    offset += numbers * number_size;
    let at = offset + 2 * SMCUP;
    let b = bytes.get(at..at + 2)?;
    // -1: absent; -2: cancelled.
    Some(i16::from_le_bytes([b[0], b[1]]) >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumb_and_unset_terminals_get_no_live_screen() {
        assert!(!can_draw_live(None));
        assert!(!can_draw_live(Some("")));
        assert!(!can_draw_live(Some("dumb")));
        // Unknown to every database: assumed capable.
        assert!(can_draw_live(Some("no-such-terminal-anywhere")));
        assert!(can_draw_live(Some("../../etc/passwd")));
    }

    #[test]
    fn the_alternate_screen_is_read_from_terminfo() {
        // Where the database has these entries, xterm has the alternate
        // screen and vt100 does not; elsewhere neither is found.
        match has_alternate_screen("xterm-256color") {
            Some(found) => assert!(found),
            None => eprintln!("skipped: no terminfo entry for xterm-256color"),
        }
        match has_alternate_screen("vt100") {
            Some(found) => assert!(!found),
            None => eprintln!("skipped: no terminfo entry for vt100"),
        }
    }

    #[test]
    fn entries_are_parsed_in_both_formats() {
        // A made-up entry: one name, no booleans or numbers, 29 strings
        // with only smcup set.
        let entry = |magic: i16, smcup: i16| {
            let mut b = Vec::new();
            for n in [magic, 2, 0, 0, 29, 1] {
                b.extend(n.to_le_bytes());
            }
            b.extend(b"x\0");
            for i in 0..29 {
                b.extend(if i == SMCUP { smcup } else { -1 }.to_le_bytes());
            }
            b.push(0);
            b
        };
        assert_eq!(smcup_of(&entry(MAGIC_16, 0)), Some(true));
        assert_eq!(smcup_of(&entry(MAGIC_32, 0)), Some(true));
        assert_eq!(smcup_of(&entry(MAGIC_16, -1)), Some(false));
        assert_eq!(smcup_of(&entry(MAGIC_16, -2)), Some(false));
        assert_eq!(smcup_of(b"not terminfo"), None);
        assert_eq!(smcup_of(&[]), None);
    }

    #[test]
    fn no_color_turns_off_only_auto() {
        assert!(colour(ColorMode::Auto, None));
        assert!(colour(ColorMode::Auto, Some("")));
        assert!(!colour(ColorMode::Auto, Some("1")));
        assert!(colour(ColorMode::Always, Some("1")));
        assert!(!colour(ColorMode::Never, None));
    }
}
