//! The database stores: the same race in SQLite and in PostgreSQL, the
//! fixes a database offers, runs that share one sale, and a buyer killed
//! mid-transaction. The PostgreSQL tests need a server: a plain `cargo
//! test` lists them as ignored, with the reason; `.ci/run` runs them under
//! `scripts/with-postgres` (which sets `TICKETLAB_DB_URL`) with `--ignored`.

use std::process::Stdio;

use crate::common::*;

/// Why the PostgreSQL tests are skipped by a plain `cargo test`.
const NEEDS_POSTGRES: &str = "needs a PostgreSQL server: scripts/with-postgres cargo test --test integration postgres -- --ignored";

/// The server the PostgreSQL tests use. Asked for by name (`--ignored`)
/// without one, a test fails and says how to run it.
fn pg_url() -> String {
    match std::env::var("TICKETLAB_DB_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("TICKETLAB_DB_URL is not set: {NEEDS_POSTGRES}"),
    }
}

/// The store's flags: `--store sqlite`, or postgres with its URL.
fn store(engine: &str, url: Option<&str>) -> Vec<String> {
    let mut args = vec!["--store".to_string(), engine.to_string()];
    if let Some(url) = url {
        args.extend(["--db-url".to_string(), url.to_string()]);
    }
    args
}

fn sale(engine: &str, url: Option<&str>, rest: &[&str]) -> serde_json::Value {
    let mut args: Vec<String> = store(engine, url);
    args.extend(rest.iter().map(|s| s.to_string()));
    args.extend(["--view".into(), "quiet".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sale_json(&args)
}

/// The database's own count of the sale balances: purchases recorded less
/// the drop in the count is the lost updates.
fn assert_database_balances(v: &serde_json::Value) {
    let db = &v["database"];
    let purchases = db["purchases"].as_i64().expect("purchases");
    let tickets = v["tickets"].as_i64().unwrap();
    let remaining = v["remaining"].as_i64().expect("the count");
    assert_eq!(v["sold"].as_i64(), Some(purchases), "{v}");
    assert_eq!(
        v["lost_updates"].as_i64(),
        Some((purchases - (tickets - remaining)).max(0)),
        "{v}"
    );
}

fn oversells(engine: &str, url: Option<&str>, lock: &str) {
    let mut rest = EVERYONE_READS_FIRST.to_vec();
    rest.extend(["--lock", lock]);
    let v = sale(engine, url, &rest);
    // All ten read the one ticket before anyone writes: ten purchases are
    // recorded, the count ends at 0, nine updates are lost.
    assert_eq!(v["sold"], 10, "{v}");
    assert_eq!(v["remaining"], 0, "{v}");
    assert_eq!(v["oversold"], 9, "{v}");
    assert_eq!(v["lost_updates"], 9, "{v}");
    assert_eq!(v["database"]["purchases_by_run"], 10, "{v}");
    assert_database_balances(&v);
}

fn exact(engine: &str, url: Option<&str>, lock: &str) {
    let v = sale(
        engine,
        url,
        &[
            "--workers",
            "50",
            "--tickets",
            "5",
            "--lock",
            lock,
            "--read-delay",
            "2ms",
            "--write-delay",
            "2ms",
            "--jitter",
        ],
    );
    assert_eq!(v["sold"], 5, "{v}");
    assert_eq!(v["remaining"], 0, "{v}");
    assert_eq!(v["oversold"], 0, "{v}");
    assert_eq!(v["lost_updates"], 0, "{v}");
    assert_eq!(v["verdict"], "exact", "{v}");
    assert_database_balances(&v);
}

fn balances_buying_all(engine: &str, url: Option<&str>, lock: &str) {
    let v = sale(
        engine,
        url,
        &[
            "--workers",
            "4",
            "--tickets",
            "2000",
            "--wants",
            "all",
            "--lock",
            lock,
        ],
    );
    let sold = v["sold"].as_i64().unwrap();
    let remaining = v["remaining"].as_i64().unwrap();
    assert_eq!(sold + remaining, 2000, "{lock}: {v}");
    assert_eq!(remaining, 0, "{lock}: {v}");
    assert_eq!(v["verdict"], "exact", "{lock}: {v}");
    assert_database_balances(&v);
}

#[test]
fn database_sqlite_none_and_write_oversell() {
    oversells("sqlite", None, "none");
    oversells("sqlite", None, "write");
}

#[test]
fn database_sqlite_buy_atomic_and_serializable_are_exact() {
    for lock in ["buy", "atomic", "serializable"] {
        exact("sqlite", None, lock);
    }
}

#[test]
fn database_sqlite_buying_all_balances() {
    for lock in ["buy", "atomic", "serializable", "task"] {
        balances_buying_all("sqlite", None, lock);
    }
}

#[test]
fn database_sqlite_a_schedule_makes_the_race_and_the_retry() {
    // Both read before either writes: the second write overwrites the first.
    let v = sale(
        "sqlite",
        None,
        &[
            "-w",
            "2",
            "-t",
            "1",
            "--lock",
            "none",
            "--schedule",
            "1,1,2,2,2,1",
        ],
    );
    assert_eq!(
        (v["sold"].as_u64(), v["lost_updates"].as_i64()),
        (Some(2), Some(1)),
        "{v}"
    );
    // Serializable: buyer 2 writes and commits after buyer 1 read; buyer
    // 1's write is refused (SQLITE_BUSY_SNAPSHOT), it rolls back, reads
    // again and finds none.
    let v = sale(
        "sqlite",
        None,
        &[
            "-w",
            "2",
            "-t",
            "1",
            "--lock",
            "serializable",
            "--schedule",
            "1,1,2,2,2,2,1",
        ],
    );
    assert_eq!(v["verdict"], "exact", "{v}");
    assert_eq!(v["retries"], 1, "{v}");
    assert_eq!(v["per_worker"][0]["retries"], 1, "{v}");
    assert_eq!(
        v["schedule"].as_str().map(|s| s.contains("1W")),
        Some(true),
        "{v}"
    );
    // Under buy the lock is modelled: buyer 2 cannot take it while buyer
    // 1 holds the database's write lock.
    let out = ticketlab()
        .args(["sell", "--store", "sqlite", "-w", "2", "--lock", "buy"])
        .args(["--schedule", "1,1,2,2", "--view", "quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("waits for the lock held by buyer 1"), "{err}");
    // Under atomic the COMMIT is a step of its own: buyer 1's conditional
    // update holds the row until it, so buyer 2's would wait, and is
    // shown waiting rather than granted. Its search meanwhile still sees
    // the count buyer 1 has not committed away.
    let out = ticketlab()
        .args(["sell", "--store", "sqlite", "-w", "2", "--lock", "atomic"])
        .args(["--schedule", "1,1,2,2", "--view", "quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("buyer 2 <waiting> its update would wait for the row buyer 1"),
        "{err}"
    );
    let v = sale(
        "sqlite",
        None,
        &[
            "-w",
            "2",
            "-t",
            "1",
            "--lock",
            "atomic",
            "--schedule",
            "1S,1C,2S,1U,2C",
        ],
    );
    assert_eq!(v["verdict"], "exact", "{v}");
    assert_eq!(v["schedule"], "1S=1,1C=0,2S=1,1U,2C", "{v}");
}

#[test]
fn database_sqlite_the_last_progress_line_agrees_with_the_summary() {
    // All three read 5, then all three write 4: the database ends at 4, and
    // the plain view's last line must say so, as the summary does.
    let out = ticketlab()
        .args(["sell", "--store", "sqlite", "-w", "3", "-t", "5"])
        .args(["--lock", "none", "--schedule", "1,2,3,1,2,3,1,2,3"])
        .args(["--view", "plain"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let last = text
        .lines()
        .rfind(|l| l.starts_with('['))
        .unwrap_or_else(|| panic!("no progress line:\n{text}"));
    assert!(
        last.contains("remaining 4  sold 3  oversold 0"),
        "{last}\n{text}"
    );
    assert!(text.contains("  remaining     4\n"), "{text}");
    // The summary names the run, as `ticketlab sales` lists it.
    assert!(text.contains("\n  run           "), "{text}");
}

#[test]
fn database_sqlite_atomic_summary_names_one_round_trip_and_no_lock_wait() {
    // The conditional UPDATE reads nothing first: the summary must not
    // speak of a read the buyers never made.
    let out = ticketlab()
        .args(["sell", "--store", "sqlite", "-w", "2", "-t", "2"])
        .args(["--lock", "atomic", "--read-delay", "3ms", "--view", "quiet"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("  delays        search 0, round trip 3ms\n"),
        "{text}"
    );
    // Nor of a lock it never took.
    assert!(!text.contains("lock wait"), "{text}");
    // Any other lock reads, then writes.
    let out = ticketlab()
        .args(["sell", "--store", "sqlite", "-w", "2", "-t", "2"])
        .args(["--lock", "buy", "--read-delay", "3ms", "--view", "quiet"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  delays        search 0, read 3ms, write 0\n"),
        "{text}"
    );
    assert!(text.contains("  lock wait     "), "{text}");
}

#[test]
fn database_sqlite_atomic_buyers_are_seen_sending_their_update_not_searching() {
    // The round trip follows the search: the buyer is shown with its
    // statement in flight, and then the database's answer.
    let v = sale(
        "sqlite",
        None,
        &[
            "-w",
            "2",
            "-t",
            "1",
            "--lock",
            "atomic",
            "--read-delay",
            "2ms",
            "--trace",
        ],
    );
    let events = v["events"].as_array().expect("an events array");
    for buyer in 0..2 {
        let ops: Vec<&str> = events
            .iter()
            .filter(|e| e["buyer"] == buyer)
            .map(|e| e["op"].as_str().unwrap())
            .collect();
        let sent = ops.iter().position(|&op| op == "sent");
        let sent = sent.unwrap_or_else(|| panic!("buyer {buyer}: {ops:?}"));
        assert_eq!(ops[sent - 1], "search", "{ops:?}");
        // Its BEGIN IMMEDIATE may meet the other's write lock first.
        let answer = if ops[sent + 1] == "busy" {
            sent + 2
        } else {
            sent + 1
        };
        assert!(matches!(ops[answer], "wrote" | "sold_out"), "{ops:?}");
    }
}

/// A buyer killed after its `UPDATE` and its purchase's `INSERT`, before
/// the `COMMIT` (the hidden fault point `mid-transaction`): the database
/// rolls both back, so the count and the purchases still agree.
fn killed_mid_transaction(engine: &str, url: Option<&str>, lock: &str, first: &str) {
    let mut cmd = ticketlab();
    cmd.arg("sell")
        .args(store(engine, url))
        .args(["-w", "2", "-t", "3", "--lock", lock, "--schedule", first])
        .args(["--view", "quiet", "--json"])
        .env("TICKETLAB_FAULT", "1:mid-transaction");
    let out = cmd.output().unwrap();
    // A buyer died unasked: the run failed, and says so.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = one_json_object(&out.stdout);
    assert_eq!(v["per_worker"][0]["end"], "crashed", "{v}");
    // Buyer 2 bought one; buyer 1's purchase was rolled back whole.
    assert_eq!(v["database"]["purchases"], 1, "{v}");
    assert_eq!(v["remaining"], 2, "{v}");
    assert_eq!(v["lost_updates"], 0, "{v}");
    assert_eq!(v["vanished"], 0, "{v}");
}

#[test]
fn database_sqlite_a_buyer_killed_mid_transaction_leaves_it_consistent() {
    // Buyer 1 takes its steps to the write first (S R W, or S L R W).
    killed_mid_transaction("sqlite", None, "none", "1x3");
    killed_mid_transaction("sqlite", None, "buy", "1x4");
    killed_mid_transaction("sqlite", None, "atomic", "1x2");
}

#[test]
fn database_sqlite_crash_before_commit_is_rolled_back_and_the_sale_goes_on() {
    // Under buy a buyer dying before its COMMIT holds the database's lock;
    // the database releases it, so the sale goes on and ends exact.
    let out = ticketlab()
        .args([
            "sell", "--store", "sqlite", "-w", "2", "-t", "1", "--lock", "buy",
        ])
        .args([
            "--schedule",
            "1x4",
            "--crash",
            "1:unlock",
            "--view",
            "quiet",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = one_json_object(&out.stdout);
    assert_eq!(v["verdict"], "exact", "{v}");
    assert_eq!(v["per_worker"][1]["bought"], 1, "{v}");
    assert_eq!(v["database"]["purchases"], 1, "{v}");
}

#[test]
fn database_sqlite_db_file_is_kept_shared_by_sale_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("class.sqlite");
    let db_arg = db.to_str().unwrap();
    for _ in 0..2 {
        let v = sale(
            "sqlite",
            None,
            &[
                "--db", db_arg, "--sale", "room1", "-t", "3", "-w", "2", "--lock", "atomic",
            ],
        );
        assert_eq!(v["database"]["sale"], "room1", "{v}");
    }
    assert!(db.is_file());
    // The second run joined the first's sale: 3 tickets, 4 buyers in all.
    let v = command_json("sales", &["--db", db_arg, "--sale", "room1"]);
    let room = &v["sales"][0];
    assert_eq!(room["tickets"], 3, "{v}");
    assert_eq!(room["sold"], 3, "{v}");
    assert_eq!(room["remaining"], 0, "{v}");
    assert_eq!(room["verdict"], "exact", "{v}");
    let text = ticketlab()
        .args(["sales", "--db", db_arg])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("sale room1: 3 tickets, 0 left, 3 sold"),
        "{text}"
    );
}

#[test]
fn database_sqlite_temporary_database_leaves_nothing_behind() {
    let child = ticketlab_process()
        .args([
            "sell", "--store", "sqlite", "-w", "3", "--lock", "buy", "--view", "quiet",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(leftovers_of(pid), Vec::<std::path::PathBuf>::new());
}

#[test]
fn database_sqlite_a_table_of_another_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("other.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("CREATE TABLE sales (name TEXT, price REAL)", [])
        .unwrap();
    drop(conn);
    let out = ticketlab()
        .args([
            "sell",
            "--store",
            "sqlite",
            "--db",
            db.to_str().unwrap(),
            "--view",
            "quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("another program or layout"), "{err}");
    // --db-reset starts a new database in its place.
    let v = sale(
        "sqlite",
        None,
        &["--db", db.to_str().unwrap(), "--db-reset", "-w", "2"],
    );
    assert_eq!(v["verdict"], "exact", "{v}");
}

#[test]
fn database_flags_that_do_not_fit_the_store_are_usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--db-url", "postgresql://x@y/z"],
            "--db-url applies only to --store postgres",
        ),
        (
            &["--lock", "serializable"],
            "--lock serializable needs --store sqlite or postgres",
        ),
        (
            &["--store", "file", "--lock", "serializable"],
            "--lock serializable needs",
        ),
        (
            &["--store", "server", "--lock", "serializable"],
            "--lock serializable needs",
        ),
        (&["--sale", "x"], "--sale applies only to"),
        (
            &["--store", "sqlite", "--sale", "a b"],
            "is not a sale name",
        ),
        (
            &["--store", "sqlite", "--lock", "robust"],
            "--lock robust needs --store shm",
        ),
        (
            &["--store", "postgres", "--db-url", "postgresql://[oops"],
            "is not a PostgreSQL URL",
        ),
    ];
    for (args, says) in cases {
        let out = ticketlab()
            .arg("sell")
            .args(*args)
            .env_remove("TICKETLAB_DB_URL")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let out = ticketlab()
        .args(["sell", "--store", "postgres"])
        .env_remove("TICKETLAB_DB_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --db-url"));
}

// ----------------------------------------------------------- PostgreSQL

#[test]
#[ignore = "needs a PostgreSQL server (run under scripts/with-postgres with --ignored)"]
fn postgres_none_and_write_oversell() {
    let url = pg_url();
    oversells("postgres", Some(&url), "none");
    oversells("postgres", Some(&url), "write");
}

#[test]
#[ignore = "needs a PostgreSQL server (run under scripts/with-postgres with --ignored)"]
fn postgres_buy_atomic_and_serializable_are_exact() {
    let url = pg_url();
    for lock in ["buy", "atomic", "serializable"] {
        exact("postgres", Some(&url), lock);
    }
}

#[test]
#[ignore = "needs a PostgreSQL server (run under scripts/with-postgres with --ignored)"]
fn postgres_buying_all_balances() {
    let url = pg_url();
    for lock in ["buy", "atomic", "serializable"] {
        balances_buying_all("postgres", Some(&url), lock);
    }
}

#[test]
#[ignore = "needs a PostgreSQL server (run under scripts/with-postgres with --ignored)"]
fn postgres_a_buyer_killed_mid_transaction_leaves_it_consistent() {
    let url = pg_url();
    killed_mid_transaction("postgres", Some(&url), "none", "1x3");
    killed_mid_transaction("postgres", Some(&url), "buy", "1x4");
    killed_mid_transaction("postgres", Some(&url), "atomic", "1x2");
}

/// Three runs at once on one named sale, as three machines would: each
/// has 3 buyers and reads long before it writes. The first two report in
/// JSON, the third draws the plain live view and prints its summary. Gives
/// the two JSON reports, the third's output and the sale as `ticketlab
/// sales` lists it.
fn three_runs(url: &str, lock: &str) -> (Vec<serde_json::Value>, String, serde_json::Value) {
    let name = format!("t{}", unique_seed());
    let runs: Vec<_> = (0..3)
        .map(|i| {
            let view: &[&str] = if i < 2 {
                &["--view", "quiet", "--json"]
            } else {
                &["--view", "plain"]
            };
            ticketlab_process()
                .args([
                    "sell", "--store", "postgres", "--db-url", url, "--sale", &name,
                ])
                // Three runs start at once; 3 s covers each one's setup
                // and connections even on a loaded machine.
                .args(["-w", "3", "-t", "2", "--lock", lock, "--read-delay", "3s"])
                .args(view)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut reports = Vec::new();
    let mut plain = String::new();
    for (i, run) in runs.into_iter().enumerate() {
        let out = run.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if i < 2 {
            let v = one_json_object(&out.stdout);
            assert_eq!(v["database"]["sale"].as_str(), Some(name.as_str()), "{v}");
            reports.push(v);
        } else {
            plain = String::from_utf8_lossy(&out.stdout).into_owned();
        }
    }
    let v = command_json("sales", &["--db-url", url, "--sale", &name]);
    (reports, plain, v["sales"][0].clone())
}

/// A run of a shared sale keeps its own figures: `sold` is its own
/// purchases, what other runs bought meanwhile is named apart, and the
/// stretch it saw balances (nothing it cannot account for is called
/// vanished).
fn assert_run_of_shared_sale(v: &serde_json::Value) {
    let db = &v["database"];
    let own = db["purchases_by_run"].as_i64().unwrap();
    let others = db["purchases_by_others"].as_i64().unwrap();
    let start = db["count_at_start"].as_i64().unwrap();
    let remaining = v["remaining"].as_i64().unwrap();
    assert_eq!(v["sold"].as_i64(), Some(own), "{v}");
    assert!(others <= db["purchases"].as_i64().unwrap() - own, "{v}");
    let drop = start - remaining;
    assert_eq!(
        v["vanished"].as_i64(),
        Some((drop - own - others).max(0)),
        "{v}"
    );
    assert_eq!(
        v["lost_updates"].as_i64(),
        Some((own + others - drop).max(0)),
        "{v}"
    );
    assert_eq!(
        v["vanished"], 0,
        "other runs' purchases are not vanished tickets: {v}"
    );
}

#[test]
#[ignore = "needs a PostgreSQL server (run under scripts/with-postgres with --ignored)"]
fn postgres_three_runs_share_a_sale() {
    let url = pg_url();
    // Every buyer of every run reads 2 before anyone writes: nine
    // purchases of two tickets, seen only when the runs are put together.
    let (runs, plain, none) = three_runs(&url, "none");
    assert_eq!(none["sold"], 9, "{none}");
    assert_eq!(none["oversold"], 7, "{none}");
    assert_eq!(none["verdict"], "oversold", "{none}");
    assert_eq!(none["runs"].as_array().map(Vec::len), Some(3), "{none}");
    for v in &runs {
        // Each run's three buyers read 2 and wrote 1: three purchases of
        // the two tickets left when it began, whatever the others did.
        assert_eq!(v["sold"], 3, "{v}");
        assert_eq!(v["verdict"], "oversold", "{v}");
        assert_run_of_shared_sale(v);
    }
    // The live view counts the other runs apart, and so does the summary.
    assert!(plain.contains("other runs"), "{plain}");
    assert!(plain.contains("this run recorded 3 purchases"), "{plain}");
    assert!(!plain.contains("vanished"), "{plain}");
    // Its sold line says whose the purchases it judges were (how many of
    // the others' fell in its stretch depends on when it started).
    assert!(plain.contains("sold          3 by this run + "), "{plain}");
    assert!(
        plain.contains(" by other runs, of 2   OVERSOLD by "),
        "{plain}"
    );
    let (runs, plain, atomic) = three_runs(&url, "atomic");
    assert_eq!(atomic["sold"], 2, "{atomic}");
    assert_eq!(atomic["remaining"], 0, "{atomic}");
    assert_eq!(atomic["verdict"], "exact", "{atomic}");
    for v in &runs {
        assert_eq!(v["verdict"], "exact", "{v}");
        assert_eq!(v["lost_updates"], 0, "{v}");
        assert_eq!(v["oversold"], 0, "{v}");
        assert_run_of_shared_sale(v);
    }
    assert!(plain.contains("sold"), "{plain}");
    assert!(!plain.contains("vanished"), "{plain}");
}

/// The URL with another user, password or database, in the key=value form
/// the server's libpq-style parser takes.
fn with(url: &str, user: &str, password: &str, dbname: &str) -> String {
    let cfg: postgres::Config = url.parse().unwrap();
    let host = match cfg.get_hosts().first() {
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        None => "localhost".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let password = if password.is_empty() {
        String::new()
    } else {
        format!(" password={password}")
    };
    format!("host={host} port={port} user={user}{password} dbname={dbname}")
}

#[test]
fn database_an_unreachable_postgres_server_is_one_line() {
    // Nothing listens on port 1 of this machine.
    fails_in_one_line(
        &["--db-url", "postgresql://nobody@127.0.0.1:1/x"],
        &["cannot connect", "refused"],
    );
}

fn fails_in_one_line(args: &[&str], says: &[&str]) {
    let out = ticketlab()
        .args(["sell", "--store", "postgres", "-w", "2", "--view", "quiet"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(says.iter().any(|s| err.contains(s)), "{args:?}: {err}");
}

#[test]
#[ignore = "needs a PostgreSQL server (run under scripts/with-postgres with --ignored)"]
fn postgres_bad_servers_and_sales_are_one_line() {
    let url = pg_url();
    let cfg: postgres::Config = url.parse().unwrap();
    let user = cfg.get_user().unwrap_or("postgres").to_string();
    fails_in_one_line(
        &["--db-url", &with(&url, "student", "wrong", "postgres")],
        &["password authentication failed", "does not exist"],
    );
    fails_in_one_line(
        &["--db-url", &with(&url, &user, "", "no_such_database")],
        &["database \"no_such_database\" does not exist"],
    );
    // A sale row another layout wrote.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let name = format!("old{}", unique_seed());
    // Another test's run may be creating the table at this moment: then
    // this one fails and the table is there all the same.
    let _ = client.execute(
        "CREATE TABLE IF NOT EXISTS sales (name TEXT PRIMARY KEY, tickets BIGINT NOT NULL, \
         count BIGINT NOT NULL, layout BIGINT NOT NULL)",
        &[],
    );
    client
        .execute("INSERT INTO sales VALUES ($1, 5, 5, 0)", &[&name])
        .unwrap();
    fails_in_one_line(&["--db-url", &url, "--sale", &name], &["incompatible"]);
}

/// A run killed with SIGKILL cannot remove its temporary SQLite database:
/// the next run's stale sweep does, with the file store's strict rules.
/// Only a directory named `ticketlab-<dead pid>-<nonce>`, mode 0700, of
/// ours, holding a private `sale.sqlite` that is a SQLite database (or
/// still empty) and only its journal files, goes; anything else stays.
#[test]
fn database_sqlite_a_killed_runs_temporary_database_is_swept() {
    use std::os::unix::fs::PermissionsExt;
    // A $TMPDIR of the test's own: other runs on this machine sweep the
    // shared one too.
    let private = tempfile::tempdir().unwrap();
    let tmp = private.path().to_path_buf();
    let seed = unique_seed().to_string();
    let mut child = ticketlab_process()
        .args([
            "sell",
            "--store",
            "sqlite",
            "-w",
            "2",
            "--read-delay",
            "60s",
        ])
        .args(["--view", "quiet", "--seed", &seed])
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let ours = |tmp: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(tmp)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    n.to_string_lossy()
                        .starts_with(&format!("ticketlab-{pid}-"))
                })
            })
            .collect()
    };
    // Set up, and the buyers connected (their first read made the log).
    let wal = || {
        ours(&tmp)
            .iter()
            .any(|d| d.join("sale.sqlite-wal").exists())
    };
    assert!(
        eventually(std::time::Duration::from_secs(20), wal),
        "{:?}",
        ours(&tmp)
    );
    signal(pid as i32, libc::SIGKILL);
    let _ = child.wait();
    // The buyers die with their parent.
    assert!(
        eventually(std::time::Duration::from_secs(10), || processes_with(&seed)
            .is_empty()),
        "{:?}",
        processes_with(&seed)
    );
    let left = ours(&tmp);
    let [killed] = left.as_slice() else {
        panic!("the killed run's directory: {left:?}");
    };
    assert!(killed.join("sale.sqlite").exists());

    // Directories shaped like ours, of pids that cannot be alive.
    let me = std::process::id();
    let sqlite = std::fs::read(killed.join("sale.sqlite")).unwrap();
    let fixture = |pid: u32, dir_mode: u32, files: &[(&str, &[u8], u32)]| {
        let dir = tmp.join(format!("ticketlab-{pid}-{me:08x}{pid:08x}"));
        std::fs::create_dir(&dir).unwrap();
        for (name, bytes, mode) in files {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
        dir
    };
    let empty = fixture(99_999_921, 0o700, &[("sale.sqlite", b"", 0o600)]);
    let with_notes = fixture(
        99_999_922,
        0o700,
        &[
            ("sale.sqlite", &sqlite, 0o600),
            ("notes.txt", b"mine", 0o600),
        ],
    );
    let not_sqlite = fixture(99_999_923, 0o700, &[("sale.sqlite", b"my notes", 0o600)]);
    let open_dir = fixture(99_999_924, 0o755, &[("sale.sqlite", &sqlite, 0o600)]);
    let readable = fixture(99_999_925, 0o700, &[("sale.sqlite", &sqlite, 0o644)]);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("real.sqlite"), &sqlite).unwrap();
    let linked = fixture(99_999_926, 0o700, &[]);
    std::fs::set_permissions(&linked, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("real.sqlite"),
        linked.join("sale.sqlite"),
    )
    .unwrap();

    let (_, out) = {
        let out = ticketlab()
            .args(["sell", "--workers", "1", "--view", "quiet"])
            .env("TMPDIR", &tmp)
            .output()
            .unwrap();
        ((), out)
    };
    let there = |p: &std::path::Path| std::fs::symlink_metadata(p).is_ok();
    let state: Vec<(&std::path::Path, bool)> = [
        killed.as_path(),
        &empty,
        &with_notes,
        &not_sqlite,
        &open_dir,
        &readable,
        &linked,
    ]
    .into_iter()
    .map(|p| (p, there(p)))
    .collect();
    for d in [
        &empty,
        &with_notes,
        &not_sqlite,
        &open_dir,
        &readable,
        &linked,
    ] {
        let _ = std::fs::remove_dir_all(d);
    }
    let _ = std::fs::remove_dir_all(killed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        state,
        vec![
            (killed.as_path(), false),
            (empty.as_path(), false),
            (with_notes.as_path(), true),
            (not_sqlite.as_path(), true),
            (open_dir.as_path(), true),
            (readable.as_path(), true),
            (linked.as_path(), true),
        ],
        "(directory, still there)"
    );
    assert!(outside.path().join("real.sqlite").exists());
}

/// PostgreSQL names whom a waiting buyer waits for: under `buy` the first
/// buyer to lock the row holds it through its long read delay, and the
/// live view's line names the others waiting, as `pg_blocking_pids` says.
#[test]
#[ignore = "needs a PostgreSQL server (run under scripts/with-postgres with --ignored)"]
fn postgres_the_live_view_names_whom_a_waiting_buyer_waits_for() {
    let url = pg_url();
    let out = ticketlab()
        .args(["sell", "--store", "postgres", "--db-url", &url])
        .args(["-w", "3", "-t", "1", "--lock", "buy", "--read-delay", "2s"])
        .args(["--view", "plain"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let waits: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("  waits ").map(|(_, w)| w))
        .collect();
    assert!(!waits.is_empty(), "{text}");
    // Every pair names two of this run's buyers, never one waiting for
    // itself.
    for pairs in waits {
        for pair in pairs.split(' ') {
            let (w, h) = pair
                .split_once('→')
                .unwrap_or_else(|| panic!("{pair}: {text}"));
            assert!(
                ["1", "2", "3"].contains(&w) && ["1", "2", "3"].contains(&h),
                "{text}"
            );
            assert_ne!(w, h, "{text}");
        }
    }
}

#[test]
fn database_sqlite_a_busy_wait_is_a_step_of_its_own() {
    // Under `buy` the first buyer's BEGIN IMMEDIATE holds SQLite's write
    // lock through its one-second read delay: the other's BEGIN IMMEDIATE
    // meets it and waits, seen as `busy` between asking for the lock and
    // taking it, never as a search.
    let v = sale(
        "sqlite",
        None,
        &[
            "-w",
            "2",
            "-t",
            "2",
            "--lock",
            "buy",
            "--read-delay",
            "1s",
            "--trace",
        ],
    );
    assert_eq!(v["sold"], 2, "{v}");
    assert_eq!(v["busy_statements"], 1, "{v}");
    let events = v["events"].as_array().expect("an events array");
    let ops = |buyer: usize| -> Vec<&str> {
        events
            .iter()
            .filter(|e| e["buyer"] == buyer)
            .map(|e| e["op"].as_str().unwrap())
            .collect()
    };
    let waited: Vec<usize> = (0..2).filter(|&b| ops(b).contains(&"busy")).collect();
    assert_eq!(waited.len(), 1, "{:?} {:?}", ops(0), ops(1));
    let b = waited[0];
    assert_eq!(v["per_worker"][b]["busy_statements"], 1, "{v}");
    let ops = ops(b);
    let busy = ops.iter().position(|&op| op == "busy").unwrap();
    assert_eq!(&ops[busy - 1..=busy + 1], ["lock_wait", "busy", "locked"]);
}

#[test]
fn database_sqlite_summary_counts_busy_statements_and_no_torn_reads() {
    let out = ticketlab()
        .args(["sell", "--store", "sqlite", "-w", "2", "-t", "2"])
        .args(["--lock", "buy", "--view", "quiet"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("\n  busy waits    "), "{text}");
    // No read of a database can tear.
    assert!(!text.contains("torn reads"), "{text}");
}

#[test]
fn database_explore_is_refused_in_one_line_that_says_why() {
    let out = ticketlab()
        .args(["explore", "--store", "sqlite", "-w", "2", "-t", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("seen only at COMMIT"), "{err}");
}
