//! Never clobber, never hang on a file: the temporary store, `--db`, the
//! stale sweep and a full `/dev/shm`, each attacked the way another local
//! user (or an unlucky path) would.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;

/// Far beyond the fraction of a second these runs need: only a hang gets
/// near it.
const HANG: Duration = Duration::from_secs(10);

/// Runs `command` to its end, reading its output as it goes; a run still
/// going after [`HANG`] is killed and the test fails. Returns the pid too,
/// to look for what the run left behind.
fn run_bounded(command: &mut Command) -> (u32, Output) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let pid = child.id();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let mut status = None;
    let ended = eventually(HANG, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !ended {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("{command:?} did not end within {HANG:?}");
    }
    let output = Output {
        status: status.unwrap(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    (pid, output)
}

/// `ticketlab sell ARGS --view quiet`, bounded.
fn sell(args: &[&str]) -> (u32, Output) {
    run_bounded(
        ticketlab_process()
            .args(["sell", "--view", "quiet"])
            .args(args),
    )
}

/// The one line on stderr of a run that must have exited with `code`.
fn one_error_line(out: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(r, 0, "mkfifo {path:?}: {}", std::io::Error::last_os_error());
}

/// The uid this test runs as, read off a file it creates.
fn my_uid(dir: &Path) -> u32 {
    let probe = dir.join("uid-probe");
    std::fs::write(&probe, b"").unwrap();
    let uid = std::fs::metadata(&probe).unwrap().uid();
    std::fs::remove_file(probe).unwrap();
    uid
}

fn assert_nothing_left(pid: u32) {
    assert_eq!(leftovers_of(pid), Vec::<PathBuf>::new());
}

/// What a run's temporary store looks like from outside: its directory's
/// (name, is a real directory, mode, owner), and each entry inside as
/// (name, is a regular file, mode, content).
type StoreListing = (
    Vec<(PathBuf, bool, u32, u32)>,
    Vec<(String, bool, u32, String)>,
);

fn temporary_store_of(pid: u32) -> StoreListing {
    let dirs: Vec<PathBuf> = leftovers_of(pid)
        .into_iter()
        .filter(|p| p.starts_with(std::env::temp_dir()))
        .collect();
    let mut outer = Vec::new();
    let mut inner = Vec::new();
    for dir in dirs {
        let meta = std::fs::symlink_metadata(&dir).unwrap();
        outer.push((dir.clone(), meta.is_dir(), meta.mode() & 0o7777, meta.uid()));
        if !meta.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            inner.push((
                entry.file_name().to_string_lossy().into_owned(),
                meta.is_file(),
                meta.mode() & 0o7777,
                std::fs::read_to_string(entry.path()).unwrap_or_default(),
            ));
        }
    }
    (outer, inner)
}

/// The temporary store: it is not `$TMPDIR/<segment
/// name>.json`, a name anyone can read in /dev/shm and plant a link or a
/// FIFO at, but `store.json` (mode 0600) alone in a fresh directory of mode
/// 0700, `$TMPDIR/ticketlab-<pid>-<nonce>`, gone with the run.
#[test]
fn files_the_temporary_store_lives_alone_in_a_private_directory() {
    let seed = unique_seed().to_string();
    let mut child = ticketlab_process()
        .args([
            "sell",
            "--store",
            "file",
            "--workers",
            "2",
            "--tickets",
            "4",
        ])
        .args(["--read-delay", "20s", "--view", "quiet", "--seed", &seed])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Buyers are forked only once the store is ready.
    let started = eventually(HANG, || children_of(pid as i32).len() == 2);
    let (dirs, files) = temporary_store_of(pid);
    signal(pid as i32, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(143));
    assert!(started, "the buyers never started");

    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let (dir, is_dir, mode, uid) = &dirs[0];
    assert!(is_dir, "{dir:?} is not a directory");
    assert_eq!((*mode, *uid), (0o700, my_uid(tmp.path())), "{dir:?}");
    assert_eq!(
        files,
        vec![(
            "store.json".to_string(),
            true,
            0o600,
            r#"{"count":4}"#.to_string()
        )]
    );
    assert_nothing_left(pid);
}

/// A sale on `--db D` whose one buyer writes once a second, from 5 down;
/// returns once it has written at least once and has writes left to do, so
/// the buyer is in the middle of a purchase (reading, or waiting to write).
fn slow_sale_on(db: &Path) -> (std::process::Child, String) {
    let seed = unique_seed().to_string();
    let child = ticketlab_process()
        .args(["sell", "--store", "file", "--db", db.to_str().unwrap()])
        .args(["--workers", "1", "--tickets", "5", "--wants", "all"])
        .args(["--lock", "none", "--write-delay", "1s"])
        .args(["--view", "quiet", "--seed", &seed])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Any of 4..1 will do: a slow machine may miss a one-second window.
    let mid_sale = (1..=4)
        .map(|n| format!(r#"{{"count":{n}}}"#))
        .collect::<Vec<_>>();
    let wrote = eventually(HANG, || {
        std::fs::read_to_string(db).is_ok_and(|s| mid_sale.contains(&s))
    });
    assert!(wrote, "the buyer never wrote a count between 4 and 1");
    (child, seed)
}

/// Waits for a sale's end; `None` if it hung (then it is killed).
fn end_of(mut child: std::process::Child) -> Option<std::process::ExitStatus> {
    let mut status = None;
    let ended = eventually(HANG, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !ended {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    status
}

/// A store file swapped for a symbolic link while buyers
/// run is never followed: the link's target (someone else's file) keeps its
/// content, whether the buyer next reads or writes.
#[test]
fn files_a_store_swapped_for_a_symlink_mid_sale_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.json");
    // A store-shaped victim: even a buyer that reads it would write it back.
    let victim = tmp.path().join("victim.json");
    std::fs::write(&victim, r#"{"count": 100}"#).unwrap();
    let (child, seed) = slow_sale_on(&db);
    let pid = child.id();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    std::fs::rename(&link, &db).unwrap();
    let status = end_of(child);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        r#"{"count": 100}"#,
        "a buyer wrote through the link"
    );
    assert!(status.is_some(), "the sale did not end");
    assert!(eventually(Duration::from_secs(3), || processes_with(&seed).is_empty()));
    assert_nothing_left(pid);
}

/// A store file swapped for a FIFO while buyers run
/// makes them fail, not wait for ever in open() (nor the parent, which
/// reads the count for the view).
#[test]
fn files_a_store_swapped_for_a_fifo_mid_sale_does_not_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.json");
    let (child, seed) = slow_sale_on(&db);
    let pid = child.id();
    let fifo = tmp.path().join("fifo");
    mkfifo(&fifo);
    std::fs::rename(&fifo, &db).unwrap();
    assert!(end_of(child).is_some(), "the sale hung on a FIFO");
    assert!(eventually(Duration::from_secs(3), || processes_with(&seed).is_empty()));
    assert_nothing_left(pid);
}

/// `--db` takes a regular file or a new path. A
/// FIFO (which blocked open() with the stop signals blocked), a directory,
/// a device or a symbolic link is refused at once, with exit 1 and one
/// line, and the link's target is untouched.
#[test]
fn files_db_refuses_what_is_not_a_regular_file_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo");
    mkfifo(&fifo);
    let dir = tmp.path().join("dir");
    std::fs::create_dir(&dir).unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "root's secrets\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    for (path, what) in [
        (fifo.as_path(), "a FIFO"),
        (dir.as_path(), "a directory"),
        (Path::new("/dev/null"), "a character device"),
        (link.as_path(), "a symbolic link"),
    ] {
        let path = path.to_str().unwrap();
        let (pid, out) = sell(&["--store", "file", "--db", path, "--workers", "2"]);
        let err = one_error_line(&out, 1);
        assert!(
            err.contains(&format!(
                "--db {path} is {what}: it must be a regular file or a new path"
            )),
            "{err}"
        );
        assert_nothing_left(pid);
    }
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "root's secrets\n"
    );
}

/// A second sale on the `--db` of a running one refuses,
/// naming the first, instead of resetting its count.
#[test]
fn files_a_second_sale_on_one_db_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.json");
    let db_arg = db.to_str().unwrap();
    let seed = unique_seed().to_string();
    let mut first = ticketlab_process()
        .args(["sell", "--store", "file", "--db", db_arg, "--tickets", "3"])
        .args(["--workers", "2", "--read-delay", "20s"])
        .args(["--view", "quiet", "--seed", &seed])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first_pid = first.id();
    let started = eventually(HANG, || children_of(first_pid as i32).len() == 2);

    let (second_pid, out) = sell(&["--store", "file", "--db", db_arg, "--tickets", "50"]);
    let count_after = std::fs::read_to_string(&db).unwrap();
    signal(first_pid as i32, libc::SIGTERM);
    assert_eq!(first.wait().unwrap().code(), Some(143));
    assert!(started, "the first sale's buyers never started");

    let err = one_error_line(&out, 1);
    assert!(
        err.contains(&format!(
            "--db {db_arg} is in use by another sale (pid {first_pid})"
        )),
        "{err}"
    );
    assert_eq!(count_after, r#"{"count":3}"#, "the second sale reset it");
    assert_nothing_left(second_pid);
    assert_nothing_left(first_pid);
    assert!(eventually(Duration::from_secs(3), || processes_with(&seed).is_empty()));

    // The lock went with the first sale.
    let (_, out) = sell(&["--store", "file", "--db", db_arg, "--workers", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--db` overwrites only a ticket store (or an empty
/// file); anything else needs `--db-reset`. A store followed by kilobytes
/// of padding is over the size cap, so not a store either.
#[test]
fn files_db_refuses_a_file_that_is_not_a_ticket_store_unless_reset() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.json");
    let db_arg = db.to_str().unwrap();
    let padded = format!(r#"{{"count": 5}}{}"#, " ".repeat(8192));
    for content in ["my notes\n", r#"{"count": 5, "owner": "me"}"#, &padded] {
        std::fs::write(&db, content).unwrap();
        let (pid, out) = sell(&["--store", "file", "--db", db_arg, "--workers", "1"]);
        let err = one_error_line(&out, 1);
        assert!(
            err.contains(&format!(
                "--db {db_arg} holds something other than a ticket store"
            )) && err.contains("--db-reset"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&db).unwrap(), content);
        assert_nothing_left(pid);

        let (_, out) = sell(&[
            "--store",
            "file",
            "--db",
            db_arg,
            "--db-reset",
            "--workers",
            "1",
            "--tickets",
            "4",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read_to_string(&db).unwrap(), r#"{"count":3}"#);
    }
    // A store (from a previous sale) and an empty file are reset as before.
    for content in [r#"{"count": 7}"#, ""] {
        std::fs::write(&db, content).unwrap();
        let (_, out) = sell(&["--store", "file", "--db", db_arg, "--workers", "1"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read_to_string(&db).unwrap(), r#"{"count":0}"#);
    }
}

/// `--db-reset` without `--db` is refused like `--db` without `--store file`.
#[test]
fn files_db_reset_without_db_is_a_usage_error() {
    for args in [vec!["--db-reset"], vec!["--store", "file", "--db-reset"]] {
        let (_, out) = sell(&args);
        let err = one_error_line(&out, 2);
        assert!(err.contains("--db-reset applies only with --db"), "{err}");
    }
}

/// The stale sweep removes only what a dead run of this
/// user created: a segment (a regular file with the magic) and a store
/// directory exactly as a run makes it (`ticketlab-<pid>-<16 hex digits>`,
/// mode 0700, holding only a `store.json` that is a ticket store). Not a
/// file without the magic, a FIFO, a symbolic link, another user's file, an
/// empty directory, a 0755 one, a name of another shape, notes in a
/// `store.json`, or a directory with something else in it.
#[test]
fn files_the_stale_sweep_removes_only_our_dead_runs_files() {
    let shm = Path::new("/dev/shm");
    let tmp = std::env::temp_dir();
    // Pids above the kernel's pid_max cannot be alive; the test's own pid
    // in the nonce keeps the names apart from any other run's, and the
    // nonce has the 16 hex digits of a real run's.
    let me = std::process::id();
    let name = |pid: u32| format!("ticketlab-{pid}-{me:08x}{pid:08x}");
    let mut segment = b"TKTLAB\0\x01".to_vec();
    segment.resize(256, 0);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("target");
    std::fs::write(&target, &segment).unwrap();
    let other_user = 65534;
    let store = r#"{"count":1}"#;
    // A directory in $TMPDIR with `mode` and, if given, a store.json.
    let store_dir = |dir_name: String, mode: u32, store_json: Option<&str>| {
        let dir = tmp.join(dir_name);
        std::fs::create_dir(&dir).unwrap();
        if let Some(text) = store_json {
            std::fs::write(dir.join("store.json"), text).unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    };

    // Removed:
    let ours = shm.join(name(99_999_901));
    std::fs::write(&ours, &segment).unwrap();
    let ours_dir = store_dir(name(99_999_902), 0o700, Some(store));
    // A run killed whole mid-rewrite leaves its store empty.
    let emptied_dir = store_dir(name(99_999_915), 0o700, Some(""));

    // Kept:
    let no_magic = shm.join(name(99_999_904));
    std::fs::write(&no_magic, b"somebody's notes").unwrap();
    let fifo = shm.join(name(99_999_905));
    mkfifo(&fifo);
    let link = shm.join(name(99_999_906));
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let theirs = shm.join(name(99_999_907));
    std::fs::write(&theirs, &segment).unwrap();
    let chowned = std::os::unix::fs::chown(&theirs, Some(other_user), Some(other_user)).is_ok();
    let busy_dir = store_dir(name(99_999_908), 0o700, Some(store));
    std::fs::write(busy_dir.join("thesis.tex"), b"\\begin{document}").unwrap();
    let dir_link = tmp.join(name(99_999_909));
    std::os::unix::fs::symlink(outside.path(), &dir_link).unwrap();
    std::fs::write(outside.path().join("store.json"), store).unwrap();
    let empty_dir = store_dir(name(99_999_903), 0o700, None);
    let notes = "my precious notes, not a store";
    let notes_dir = store_dir(name(99_999_910), 0o755, Some(notes));
    let private_notes = store_dir(name(99_999_911), 0o700, Some(notes));
    let open_dir = store_dir(name(99_999_912), 0o755, Some(store));
    let odd_name = store_dir(format!("ticketlab-99999913-{me:x}z"), 0o700, Some(store));
    let padded = format!("{store}{}", " ".repeat(4096));
    let big_dir = store_dir(name(99_999_914), 0o700, Some(&padded));

    let (_, out) = sell(&["--workers", "1"]);
    let after = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    let files = [&ours, &no_magic, &fifo, &link, &theirs, &dir_link];
    let dirs = [
        &ours_dir,
        &emptied_dir,
        &busy_dir,
        &empty_dir,
        &notes_dir,
        &private_notes,
        &open_dir,
        &odd_name,
        &big_dir,
    ];
    let state: Vec<(PathBuf, bool)> = files
        .iter()
        .chain(&dirs)
        .map(|p| (p.to_path_buf(), after(p)))
        .collect();
    let outside_intact = target.exists() && outside.path().join("store.json").exists();
    let notes_intact =
        std::fs::read_to_string(notes_dir.join("store.json")).is_ok_and(|t| t == notes);
    for p in files {
        let _ = std::fs::remove_file(p);
    }
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: Vec<(PathBuf, bool)> = [
        (&ours, false),
        (&no_magic, true),
        (&fifo, true),
        (&link, true),
        // Only root can hand a file to another user; otherwise it is ours.
        (&theirs, chowned),
        (&dir_link, true),
        (&ours_dir, false),
        (&emptied_dir, false),
        (&busy_dir, true),
        (&empty_dir, true),
        (&notes_dir, true),
        (&private_notes, true),
        (&open_dir, true),
        (&odd_name, true),
        (&big_dir, true),
    ]
    .iter()
    .map(|(p, kept)| (p.to_path_buf(), *kept))
    .collect();
    assert_eq!(state, expected, "(path, still there)");
    assert!(outside_intact);
    assert!(notes_intact, "the notes in {notes_dir:?} were touched");
}

/// A /dev/shm too small for the segment is one line and
/// exit 1, not SIGBUS (exit 135) with the segment left. Run in a private
/// mount namespace with an 8 KiB tmpfs on /dev/shm; skipped where the
/// machine forbids that.
#[test]
fn files_a_full_dev_shm_is_one_line_not_sigbus() {
    let allowed = Command::new("unshare")
        .args(["-m", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !allowed {
        eprintln!("skipped: `unshare -m` is not allowed here (needs root or user namespaces)");
        return;
    }
    // The run's own /dev/shm is listed from inside the namespace, after it.
    let script = r#"mount -t tmpfs -o size=8k tmpfs /dev/shm || exit 77
"$1" sell --workers 100 --trace --view quiet
echo "exit $?"
ls -A /dev/shm"#;
    let (_, out) = run_bounded(
        Command::new("unshare")
            .args(["-m", "sh", "-c", script, "sh"])
            .arg(env!("CARGO_BIN_EXE_ticketlab")),
    );
    if out.status.code() == Some(77) {
        eprintln!("skipped: cannot mount a tmpfs on /dev/shm in a private namespace");
        return;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout, "exit 1\n",
        "left behind or wrong exit: {stdout} {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("/dev/shm has no room for 17 MiB (the segment for 100 buyers)"),
        "{err}"
    );
}

/// An OS error's cause is printed once, not twice.
#[test]
fn files_os_errors_name_their_cause_once() {
    let missing = format!("/nonexistent-ticketlab-{}", std::process::id());
    let db = format!("{missing}/db.json");
    let (_, out) = sell(&["--store", "file", "--db", &db]);
    let err = one_error_line(&out, 1);
    assert!(err.contains(&format!("--db {db}")), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");

    let (_, out) = run_bounded(
        ticketlab_process()
            .args(["sell", "--store", "file", "--view", "quiet"])
            .env("TMPDIR", &missing),
    );
    let err = one_error_line(&out, 1);
    assert!(err.contains(&missing), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}
