//! The views of a running sale: a live full-screen view for terminals and a
//! plain line-by-line view for pipes and logs. Both draw the same
//! [`Snapshot`], which the engine fills in.

mod capabilities;
#[cfg(test)]
mod escapes;
mod plain;
mod render;
mod state;
mod terminal;

pub(crate) use capabilities::{can_draw_live, colour};
pub(crate) use plain::PlainView;
pub(crate) use state::{BuyerCell, BuyerState, Settings, Snapshot, StepCell, Stepper, ViewCommand};
pub(crate) use terminal::{LiveView, Target, install_panic_hook};
