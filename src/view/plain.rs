//! The plain view: one progress line at a time, for pipes and logs.
//!
//! It prints a line each time it is asked: how often is the observer's
//! interval alone (`observe::PLAIN_INTERVAL`), so a line is never dropped
//! by a second clock a moment out of step with the first.

use std::io::{self, Write};

use super::state::Snapshot;

/// Prints `Snapshot::plain_line`; never writes escape codes.
pub(crate) struct PlainView<W: Write> {
    out: W,
}

impl<W: Write> PlainView<W> {
    /// A view printing to `out`.
    pub(crate) fn new(out: W) -> Self {
        PlainView { out }
    }

    /// Prints a line for `snap`.
    pub(crate) fn tick(&mut self, snap: &Snapshot) -> io::Result<()> {
        self.print(snap)
    }

    /// Prints the final line.
    pub(crate) fn finish(&mut self, snap: &Snapshot) -> io::Result<()> {
        self.print(snap)
    }

    fn print(&mut self, snap: &Snapshot) -> io::Result<()> {
        writeln!(self.out, "{}", snap.plain_line())?;
        // Logs are read as they grow, so a line must not wait in a buffer.
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::state::tests::snapshot;

    #[test]
    fn every_tick_prints_a_line() {
        // The observer's interval is the only throttle: a tick a moment
        // early must still print.
        let snap = snapshot(10, 1, 10, 0);
        let mut view = PlainView::new(Vec::new());
        for _ in 0..5 {
            view.tick(&snap).unwrap();
        }
        let text = String::from_utf8(view.out).unwrap();
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.lines().all(|l| l == snap.plain_line()));
    }

    #[test]
    fn finish_always_prints() {
        let snap = snapshot(10, 1, 10, 0);
        let mut view = PlainView::new(Vec::new());
        view.tick(&snap).unwrap();
        view.finish(&snap).unwrap();
        assert_eq!(view.out.iter().filter(|&&b| b == b'\n').count(), 2);
    }

    #[test]
    fn output_has_no_escape_bytes() {
        // Every field the plain line prints, at its most alarming: an
        // oversold sale, a negative count, a held lock with its pid. A view
        // that coloured any of them (red oversold, bold holder) would write
        // escape bytes here.
        let mut snap = snapshot(1000, 100, 300, -50);
        snap.waiting = 17;
        snap.holder = Some(999);
        snap.holder_pid = Some(4_194_304);
        let mut view = PlainView::new(Vec::new());
        view.tick(&snap).unwrap();
        view.finish(&snap).unwrap();
        let text = String::from_utf8(view.out).unwrap();
        let line = "[  1.25s] remaining -50  sold 300  oversold 200  waiting 17  \
                    lock buyer 1000 (pid 4194304)";
        assert_eq!(text, format!("{line}\n{line}\n"));
        assert!(
            text.bytes()
                .all(|b| b == b'\n' || (b' '..=b'~').contains(&b)),
            "{text:?}"
        );
        // The unknown count prints too, as `?`.
        snap.remaining = None;
        snap.holder_pid = None;
        let line = snap.plain_line();
        assert!(line.contains("remaining ?"), "{line}");
        assert!(line.bytes().all(|b| (b' '..=b'~').contains(&b)), "{line:?}");
    }
}
