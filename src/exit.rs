//! The process exit codes, in one place.

use std::process::ExitCode;

/// Why the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything ran (a racy sale that oversold still ran as asked).
    Success,
    /// The run failed: an error, a buyer that crashed, a lock that died with its holder.
    Failure,
    /// Bad flags or an impossible combination.
    Usage,
    /// Stopped by a signal (or `q`, which counts as Ctrl-C).
    Signal(i32),
}

impl Exit {
    /// The number the shell sees: 0, 1, 2, or 128 + the signal.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Signal(sig) => (128 + sig).clamp(0, 255) as u8,
        }
    }
}

/// The exit codes as every command's `--help` lists them (a macro, so the
/// help text can be put together at compile time).
macro_rules! exit_codes_help {
    () => {
        "Exit codes:
  0      ran as asked (a racy sale that oversold still ran as asked)
  1      failed: an error, a buyer that crashed, a lock holder that died
  2      bad flags or an impossible combination (one line on stderr says which)
  128+N  stopped by signal N: 130 for Ctrl-C or q, 143 for SIGTERM"
    };
}
pub(crate) use exit_codes_help;

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_map_to_128_plus_n() {
        assert_eq!(Exit::Signal(libc::SIGINT).code(), 130);
        assert_eq!(Exit::Signal(libc::SIGTERM).code(), 143);
        assert_eq!(Exit::Usage.code(), 2);
    }
}
