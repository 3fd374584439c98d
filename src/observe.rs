//! The observers a sale can have: the views, adapted to the supervisor.

use std::io::{self, Write};
use std::time::Duration;

use crate::config::SaleConfig;
use crate::report::plural;
use crate::supervisor::Observer;
use crate::view::{LiveView, PlainView, Snapshot, Target, ViewCommand};

/// The live screen redraws this often (20 per second).
const LIVE_INTERVAL: Duration = Duration::from_millis(50);
/// Plain progress lines come this often.
const PLAIN_INTERVAL: Duration = Duration::from_millis(250);

/// The live screen.
pub(crate) struct LiveObserver {
    view: Option<LiveView>,
}

impl LiveObserver {
    /// Takes over the terminal on `target`, drawing in colour or not.
    pub(crate) fn start(target: Target, colour: bool) -> io::Result<LiveObserver> {
        crate::view::install_panic_hook();
        Ok(LiveObserver {
            view: Some(LiveView::start(target, colour)?),
        })
    }
}

impl Observer for LiveObserver {
    fn interval(&self) -> Duration {
        LIVE_INTERVAL
    }

    fn update(&mut self, snap: &Snapshot) -> io::Result<Vec<ViewCommand>> {
        let Some(view) = self.view.as_mut() else {
            return Ok(Vec::new());
        };
        view.draw(snap)?;
        view.poll_commands()
    }

    fn suspend(&mut self) -> io::Result<()> {
        self.view.as_mut().map_or(Ok(()), LiveView::suspend)
    }

    fn resume(&mut self) -> io::Result<()> {
        self.view.as_mut().map_or(Ok(()), LiveView::resume)
    }

    fn finish(&mut self, snap: &Snapshot) -> io::Result<()> {
        match self.view.take() {
            Some(view) => view.finish(snap),
            None => Ok(()),
        }
    }
}

/// Plain progress lines, safe for pipes and logs.
pub(crate) struct PlainObserver {
    view: PlainView<Box<dyn Write>>,
}

impl PlainObserver {
    /// Announces the sale (with its seed, so even a stopped run can be
    /// repeated) and prints progress lines to `target`.
    pub(crate) fn new(cfg: &SaleConfig, target: Target) -> PlainObserver {
        let mut out: Box<dyn Write> = match target {
            Target::Stdout => Box::new(io::stdout()),
            Target::Stderr => Box::new(io::stderr()),
        };
        let _ = writeln!(
            out,
            "selling {} to {} (store {}, lock {}, seed {})",
            plural(cfg.tickets, "ticket"),
            plural(cfg.workers as u64, "buyer"),
            cfg.store,
            cfg.lock,
            cfg.seed
        );
        PlainObserver {
            view: PlainView::new(out),
        }
    }
}

impl Observer for PlainObserver {
    fn interval(&self) -> Duration {
        PLAIN_INTERVAL
    }

    fn shows_events(&self) -> bool {
        false
    }

    fn update(&mut self, snap: &Snapshot) -> io::Result<Vec<ViewCommand>> {
        self.view.tick(snap)?;
        Ok(Vec::new())
    }

    fn finish(&mut self, snap: &Snapshot) -> io::Result<()> {
        self.view.finish(snap)
    }
}
