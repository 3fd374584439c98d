//! The plain view: one progress line at a time, for pipes and logs.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use super::state::Snapshot;

/// Lines come no more often than this, however often `tick` is called.
const INTERVAL: Duration = Duration::from_millis(250);

/// Prints `Snapshot::plain_line` now and then; never writes escape codes.
pub(crate) struct PlainView<W: Write> {
    out: W,
    last: Option<Instant>,
}

impl<W: Write> PlainView<W> {
    /// A view printing to `out`.
    pub(crate) fn new(out: W) -> Self {
        PlainView { out, last: None }
    }

    /// Prints a line for `snap` unless one was printed less than 250 ms ago.
    pub(crate) fn tick(&mut self, snap: &Snapshot) -> io::Result<()> {
        self.tick_at(snap, Instant::now())
    }

    /// Prints a line for `snap` whenever the last one was, so the final
    /// state is never swallowed by the rate limit.
    pub(crate) fn finish(&mut self, snap: &Snapshot) -> io::Result<()> {
        self.print(snap, Instant::now())
    }

    fn tick_at(&mut self, snap: &Snapshot, now: Instant) -> io::Result<()> {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= INTERVAL);
        if due {
            self.print(snap, now)?;
        }
        Ok(())
    }

    fn print(&mut self, snap: &Snapshot, now: Instant) -> io::Result<()> {
        writeln!(self.out, "{}", snap.plain_line())?;
        // Logs are read as they grow, so a line must not wait in a buffer.
        self.out.flush()?;
        self.last = Some(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::state::tests::snapshot;

    #[test]
    fn prints_at_most_every_250ms() {
        let snap = snapshot(10, 1, 10, 0);
        let mut view = PlainView::new(Vec::new());
        let t0 = Instant::now();
        view.tick_at(&snap, t0).unwrap();
        view.tick_at(&snap, t0 + Duration::from_millis(100))
            .unwrap();
        view.tick_at(&snap, t0 + Duration::from_millis(249))
            .unwrap();
        view.tick_at(&snap, t0 + Duration::from_millis(250))
            .unwrap();
        view.tick_at(&snap, t0 + Duration::from_millis(300))
            .unwrap();
        let text = String::from_utf8(view.out).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
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
