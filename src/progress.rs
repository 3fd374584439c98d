//! A student's progress: which labs they have checked, kept in their state
//! directory (`$XDG_STATE_HOME/ticketlab/progress.json`, else
//! `~/.local/state/ticketlab/progress.json`) so `ticketlab labs` can tick
//! them off.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::check::Score;

/// Why progress could not be read or kept.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProgressError {
    /// Neither XDG_STATE_HOME nor HOME says where.
    #[error("no state directory: set XDG_STATE_HOME or HOME")]
    NoStateDir,
    /// The file or its directory could not be read or written.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The file holds something else.
    #[error("{path}: not a progress file ({source})")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Every checked lab, by number, with its latest score.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Progress {
    /// Lab number to the score of its latest check.
    pub labs: BTreeMap<u8, Score>,
}

/// The directory progress lives in. The XDG spec says a relative
/// XDG_STATE_HOME is to be ignored.
pub(crate) fn state_dir() -> Result<PathBuf, ProgressError> {
    let from = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(dir) = from("XDG_STATE_HOME") {
        return Ok(dir.join("ticketlab"));
    }
    from("HOME")
        .map(|home| home.join(".local/state/ticketlab"))
        .ok_or(ProgressError::NoStateDir)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ProgressError + '_ {
    move |source| ProgressError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Progress {
    /// The progress in `dir`; none yet if there is no file.
    pub(crate) fn load(dir: &Path) -> Result<Progress, ProgressError> {
        let path = dir.join("progress.json");
        // O_NOFOLLOW: a symlink planted at the file's name is an error, not
        // a way to make us read (or later replace) someone else's file.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path);
        let mut text = String::new();
        match file {
            Ok(mut f) => f.read_to_string(&mut text).map_err(io_error(&path))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Progress::default()),
            Err(e) => return Err(io_error(&path)(e)),
        };
        serde_json::from_str(&text).map_err(|source| ProgressError::Format { path, source })
    }

    /// Writes the progress to `dir`, creating it private (0700) if need be.
    /// The file is written whole to a private temporary file beside it and
    /// renamed into place, so a crash leaves the old file or the new one,
    /// never half of one; rename replaces a symlink at the name rather than
    /// writing through it.
    pub(crate) fn save(&self, dir: &Path) -> Result<(), ProgressError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir))?;
        let path = dir.join("progress.json");
        let tmp = dir.join(format!(".progress.json.{}.tmp", std::process::id()));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_error(&path)(e)
        })
    }

    /// Records lab `lab`'s latest check in `dir`.
    pub(crate) fn record(dir: &Path, lab: u8, score: Score) -> Result<(), ProgressError> {
        let mut progress = Progress::load(dir)?;
        progress.labs.insert(lab, score);
        progress.save(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn score(correct: usize) -> Score {
        Score {
            correct,
            graded: 3,
            total: 3,
        }
    }

    fn temp_dir() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ticketlab-progress-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_check_is_recorded_privately_and_read_back() {
        let base = temp_dir();
        let dir = base.join("ticketlab");
        assert!(Progress::load(&dir).unwrap().labs.is_empty());
        Progress::record(&dir, 2, score(1)).unwrap();
        Progress::record(&dir, 3, score(3)).unwrap();
        Progress::record(&dir, 2, score(2)).unwrap();
        let read = Progress::load(&dir).unwrap();
        assert_eq!(read.labs.keys().copied().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(read.labs[&2], score(2));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("progress.json")), 0o600);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_symlink_at_the_file_is_not_followed() {
        let base = temp_dir();
        let dir = base.join("ticketlab");
        fs::create_dir_all(&dir).unwrap();
        let elsewhere = base.join("elsewhere.json");
        fs::write(&elsewhere, "{\"labs\":{}}").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join("progress.json")).unwrap();
        assert!(matches!(
            Progress::load(&dir),
            Err(ProgressError::Io { .. })
        ));
        assert!(Progress::record(&dir, 1, score(1)).is_err());
        assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "{\"labs\":{}}");
        fs::remove_dir_all(&base).unwrap();
    }
}
