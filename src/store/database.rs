//! The database stores, SQLite and PostgreSQL, as one: where the sale
//! lives, a connection that runs `sql.rs`'s statements on either engine,
//! the setup and the final figures, and the helper process that does them
//! for the parent.
//!
//! **No connection crosses a fork.** The synchronous `postgres` client
//! starts a runtime thread, and the parent forks buyers only while it has
//! one thread. So the parent never opens a connection: setup and the final
//! figures run in a short-lived forked helper ([`in_helper`]) that sends
//! its answer back through a pipe, and every buyer opens its own
//! connection after its fork. SQLite starts no thread, but goes the same
//! way, so both engines have one path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::sql::{self, Dialect};
use crate::process;

/// Where a database sale lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Engine {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server's URL.
    Postgres(String),
}

impl Engine {
    /// The engine's SQL dialect.
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Engine::Sqlite(_) => Dialect::Sqlite,
            Engine::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Where it is, for a message: the file, or the server and database
    /// (never the password a URL may hold).
    pub(crate) fn describe(&self) -> String {
        match self {
            Engine::Sqlite(path) => format!("SQLite {}", path.display()),
            Engine::Postgres(url) => format!("PostgreSQL {}", describe_url(url)),
        }
    }
}

/// A PostgreSQL URL as a person may see it: host (or socket directory),
/// port and database, without user or password.
pub(crate) fn describe_url(url: &str) -> String {
    let Ok(cfg) = url.parse::<postgres::Config>() else {
        return "(unparsable URL)".to_string();
    };
    let host = match cfg.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let db = cfg
        .get_dbname()
        .or(cfg.get_user())
        .unwrap_or("(default database)");
    format!("{host}:{port}/{db}")
}

/// Checks that `url` is a PostgreSQL URL at all (no connection is made).
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    url.parse::<postgres::Config>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// One sale in a database: the engine, the sale's row, and this run's name
/// in the purchases table.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Where.
    pub engine: Engine,
    /// The sale's row.
    pub sale: String,
    /// This run, as its purchases name it.
    pub run: String,
    /// Whether the sale is this run's own: set afresh at the start (and on
    /// PostgreSQL removed at the end), where a named `--sale` is joined.
    pub own: bool,
}

/// A failed statement.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum DbError {
    /// The database refused the transaction as it stands, to keep it
    /// serializable (SQLSTATE 40001 or a deadlock, `SQLITE_BUSY_SNAPSHOT`
    /// or `SQLITE_BUSY`): roll back and try again.
    #[error("{0}")]
    Conflict(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

impl DbError {
    fn sqlite(e: rusqlite::Error) -> DbError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                DbError::Conflict(e.to_string())
            }
            _ => DbError::Failed(e.to_string()),
        }
    }

    fn postgres(e: postgres::Error) -> DbError {
        use postgres::error::SqlState;
        let conflict = e.code().is_some_and(|c| {
            *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
        });
        let text = pg_message(&e);
        if conflict {
            DbError::Conflict(text)
        } else {
            DbError::Failed(text)
        }
    }
}

/// A PostgreSQL error as one line: the server's own message where there is
/// one ("password authentication failed for user …"), else the client's
/// with its cause ("error connecting to server: Connection refused").
fn pg_message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text.replace('\n', " ")
}

/// A value bound to a statement's placeholder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    /// Text.
    Text(&'a str),
    /// A whole number.
    Int(i64),
}

/// One connection, opened in the process that uses it.
pub(crate) struct Conn {
    dialect: Dialect,
    inner: Inner,
}

enum Inner {
    Sqlite(rusqlite::Connection),
    Postgres {
        client: Box<postgres::Client>,
        prepared: HashMap<&'static str, postgres::Statement>,
    },
}

/// How long a SQLite connection waits for another's write lock before it
/// calls the database busy: far longer than any purchase holds it.
pub(crate) const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a PostgreSQL connection may take, unless the URL says.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Conn {
    /// Opens a connection. Only ever after the fork of the process that
    /// uses it.
    pub(crate) fn open(engine: &Engine) -> Result<Conn, DbError> {
        let inner = match engine {
            Engine::Sqlite(path) => {
                use rusqlite::OpenFlags;
                // An existing file, or one `setup` creates: never a new
                // file a buyer would make by mistake.
                let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = rusqlite::Connection::open_with_flags(path, flags)
                    .map_err(|e| DbError::Failed(format!("{}: {e}", engine.describe())))?;
                conn.busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .map_err(DbError::sqlite)?;
                // WAL is kept in the file (set by `setup`); the sync level
                // is per connection: a buyer's death never loses a commit
                // under NORMAL, only the machine's would.
                conn.pragma_update(None, "synchronous", "NORMAL")
                    .map_err(DbError::sqlite)?;
                Inner::Sqlite(conn)
            }
            Engine::Postgres(url) => {
                let mut cfg: postgres::Config = url
                    .parse()
                    .map_err(|e| DbError::Failed(format!("--db-url: {e}")))?;
                if cfg.get_connect_timeout().is_none() {
                    cfg.connect_timeout(CONNECT_TIMEOUT);
                }
                cfg.application_name("ticketlab");
                let client = cfg.connect(postgres::NoTls).map_err(|e| {
                    DbError::Failed(format!(
                        "cannot connect to {}: {}",
                        engine.describe(),
                        pg_message(&e)
                    ))
                })?;
                Inner::Postgres {
                    client: Box::new(client),
                    prepared: HashMap::new(),
                }
            }
        };
        Ok(Conn {
            dialect: engine.dialect(),
            inner,
        })
    }

    /// On SQLite, lets `handler` wait out another connection's write lock
    /// in place of the busy timeout: it is called with the number of tries
    /// so far and says whether to try again. PostgreSQL has no such wait
    /// (a blocked statement waits in the server), so nothing changes there.
    pub(crate) fn on_busy(&self, handler: fn(i32) -> bool) -> Result<(), DbError> {
        match &self.inner {
            Inner::Sqlite(conn) => conn.busy_handler(Some(handler)).map_err(DbError::sqlite),
            Inner::Postgres { .. } => Ok(()),
        }
    }

    /// The engine's dialect.
    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Runs one statement and returns the whole numbers of its first row,
    /// if it has one (every row is read, so the statement is finished).
    pub(crate) fn run(
        &mut self,
        statement: &'static str,
        params: &[Param<'_>],
    ) -> Result<Option<Vec<i64>>, DbError> {
        match &mut self.inner {
            Inner::Sqlite(conn) => {
                let text = sql::text(Dialect::Sqlite, statement);
                let mut stmt = conn.prepare_cached(&text).map_err(DbError::sqlite)?;
                let mut rows = stmt.query(sqlite_params(params)).map_err(DbError::sqlite)?;
                let mut first = None;
                while let Some(row) = rows.next().map_err(DbError::sqlite)? {
                    if first.is_none() {
                        let n = row.as_ref().column_count();
                        let mut ints = Vec::with_capacity(n);
                        for i in 0..n {
                            ints.push(row.get::<_, i64>(i).map_err(DbError::sqlite)?);
                        }
                        first = Some(ints);
                    }
                }
                Ok(first)
            }
            Inner::Postgres { client, prepared } => {
                let stmt = match prepared.get(statement) {
                    Some(s) => s.clone(),
                    None => {
                        let s = client.prepare(statement).map_err(DbError::postgres)?;
                        prepared.insert(statement, s.clone());
                        s
                    }
                };
                let owned: Vec<Box<dyn postgres::types::ToSql + Sync>> = params
                    .iter()
                    .map(|p| -> Box<dyn postgres::types::ToSql + Sync> {
                        match *p {
                            Param::Text(t) => Box::new(t.to_string()),
                            Param::Int(n) => Box::new(n),
                        }
                    })
                    .collect();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    owned.iter().map(|b| b.as_ref()).collect();
                let rows = client.query(&stmt, &refs).map_err(DbError::postgres)?;
                let Some(row) = rows.first() else {
                    return Ok(None);
                };
                let mut ints = Vec::with_capacity(row.len());
                for i in 0..row.len() {
                    ints.push(row.try_get::<_, i64>(i).map_err(DbError::postgres)?);
                }
                Ok(Some(ints))
            }
        }
    }

    /// Runs statements that return nothing worth reading.
    pub(crate) fn run_all(
        &mut self,
        statements: &[&'static str],
        params: &[Param<'_>],
    ) -> Result<(), DbError> {
        for s in statements {
            // Only the placeholders a statement has are bound.
            let n = placeholders(s);
            self.run(s, &params[..n.min(params.len())])?;
        }
        Ok(())
    }

    /// Rows of text and whole numbers (for `ticketlab sales`).
    fn text_rows(
        &mut self,
        statement: &'static str,
        params: &[Param<'_>],
    ) -> Result<Vec<(String, Vec<i64>)>, DbError> {
        match &mut self.inner {
            Inner::Sqlite(conn) => {
                let text = sql::text(Dialect::Sqlite, statement);
                let mut stmt = conn.prepare(&text).map_err(DbError::sqlite)?;
                let mut rows = stmt.query(sqlite_params(params)).map_err(DbError::sqlite)?;
                let mut out = Vec::new();
                while let Some(row) = rows.next().map_err(DbError::sqlite)? {
                    let n = row.as_ref().column_count();
                    let name: String = row.get(0).map_err(DbError::sqlite)?;
                    let mut ints = Vec::new();
                    for i in 1..n {
                        ints.push(row.get::<_, i64>(i).map_err(DbError::sqlite)?);
                    }
                    out.push((name, ints));
                }
                Ok(out)
            }
            Inner::Postgres { client, .. } => {
                let owned: Vec<String> = params
                    .iter()
                    .map(|p| match *p {
                        Param::Text(t) => t.to_string(),
                        Param::Int(n) => n.to_string(),
                    })
                    .collect();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = owned
                    .iter()
                    .map(|s| s as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                let rows = client.query(statement, &refs).map_err(DbError::postgres)?;
                let mut out = Vec::new();
                for row in rows {
                    let name: String = row.try_get(0).map_err(DbError::postgres)?;
                    let mut ints = Vec::new();
                    for i in 1..row.len() {
                        ints.push(row.try_get::<_, i64>(i).map_err(DbError::postgres)?);
                    }
                    out.push((name, ints));
                }
                Ok(out)
            }
        }
    }
}

/// The highest `$N` in a statement.
fn placeholders(statement: &str) -> usize {
    let bytes = statement.as_bytes();
    let mut most = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'$' {
            if let Some(d) = bytes.get(i + 1).filter(|d| d.is_ascii_digit()) {
                most = most.max(usize::from(d - b'0'));
            }
        }
    }
    most
}

/// How a sale stood when a run began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SaleStart {
    /// The sale's tickets (a joined sale keeps those it was created with).
    pub tickets: u64,
    /// The count when this run began.
    pub count: i64,
    /// Purchases recorded by every run when this run began, read in the
    /// same statement as `count`: what other runs buy during this run is
    /// counted from here.
    pub purchases: u64,
    /// Whether the run joined a sale that already existed.
    pub joined: bool,
}

/// A sale's figures, read by the database in one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Figures {
    /// Tickets on sale.
    pub tickets: u64,
    /// The count left.
    pub count: i64,
    /// Purchases recorded by every run.
    pub purchases: u64,
    /// Purchases recorded by this run.
    pub by_run: u64,
    /// Runs that recorded a purchase.
    pub runs: u64,
}

/// Makes the tables if they are missing and prepares the sale's row: set
/// afresh for a sale of the run's own, created with `tickets` or joined
/// for a named one. A table or row that another layout wrote is refused.
pub(crate) fn setup(target: &Target, tickets: u64) -> Result<SaleStart, String> {
    let mut conn = Conn::open(&target.engine).map_err(|e| e.to_string())?;
    let where_ = target.engine.describe();
    if let Engine::Sqlite(_) = target.engine {
        // Kept in the file: readers never wait for the writer, and each
        // autocommit read sees the last commit.
        if let Inner::Sqlite(c) = &conn.inner {
            c.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| format!("{where_}: {e}"))?;
        }
    }
    let schema = sql::schema(conn.dialect());
    // Two runs starting together may both create the tables: PostgreSQL
    // can refuse the second `CREATE … IF NOT EXISTS`; the next try sees them.
    let mut tries = 0;
    loop {
        match conn.run_all(&schema, &[]) {
            Ok(()) => break,
            Err(_) if tries < 3 => tries += 1,
            Err(e) => return Err(format!("{where_}: cannot create the tables: {e}")),
        }
    }
    let incompatible = |e: DbError| {
        format!(
            "{where_} holds tables named sales and purchases that another program or layout made ({e}): use another database"
        )
    };
    conn.run(
        "SELECT sale, run, buyer, seen, at FROM purchases WHERE 1 = 0",
        &[],
    )
    .map_err(incompatible)?;
    let name = Param::Text(&target.sale);
    let check_layout = |row: &[i64]| -> Result<(), String> {
        match row {
            [_, _, layout] if *layout == sql::LAYOUT => Ok(()),
            [_, _, layout] => Err(format!(
                "sale '{}' in {where_} was made by an incompatible ticketlab (layout {layout}; this one writes layout {}): name another --sale",
                target.sale,
                sql::LAYOUT
            )),
            _ => Err(incompatible(DbError::Failed("unexpected columns".into()))),
        }
    };
    let row = conn.run(sql::SALE_ROW, &[name]).map_err(incompatible)?;
    if let Some(row) = &row {
        check_layout(row)?;
    }
    let layout = Param::Int(sql::LAYOUT);
    let tickets_param = Param::Int(i64::try_from(tickets).unwrap_or(i64::MAX));
    let joined = match row {
        Some(_) if target.own => {
            conn.run(sql::RESET_SALE, &[name, tickets_param])
                .and_then(|_| conn.run(sql::FORGET_PURCHASES, &[name]))
                .map_err(|e| format!("{where_}: {e}"))?;
            false
        }
        Some(_) => true,
        // No row comes back if another run created it a moment ago.
        None => conn
            .run(sql::CREATE_SALE, &[name, tickets_param, layout])
            .map_err(|e| format!("{where_}: {e}"))?
            .is_none(),
    };
    let row = conn
        .run(sql::SALE_ROW, &[name])
        .map_err(incompatible)?
        .ok_or_else(|| format!("{where_}: sale '{}' vanished during setup", target.sale))?;
    check_layout(&row)?;
    // The count and the purchases from one moment, so a purchase another
    // run commits meanwhile is counted in neither or in both.
    let at_start = figures(&mut conn, &target.sale, &target.run)?;
    Ok(SaleStart {
        tickets: at_start.tickets,
        count: at_start.count,
        purchases: at_start.purchases,
        joined,
    })
}

/// What the watcher publishes for the live view.
pub(crate) trait Watched {
    /// The database's count, and the purchases by other runs since this
    /// run began.
    fn count(&self, count: i64, others: u64);
    /// Each buyer's PostgreSQL server process (0: not connected yet).
    fn backends(&self) -> Vec<i32>;
    /// Per buyer, whom it waits for: 0 nobody, N buyer N (from 1), -1 a
    /// session of another run.
    fn waits(&self, waits: &[i32]);
}

/// The watcher of a database sale: a child of its own, with a connection
/// of its own, that reads for the live view every `every`, until it is
/// killed: the database's count and the other runs' purchases, for a sale
/// other runs may share; on PostgreSQL also whom each waiting buyer waits
/// for (`pg_blocking_pids`). It returns only if it cannot connect or read.
pub(crate) fn watch(
    target: &Target,
    start: &SaleStart,
    every: std::time::Duration,
    out: &dyn Watched,
) -> String {
    let mut conn = match Conn::open(&target.engine) {
        Ok(c) => c,
        Err(e) => return e.to_string(),
    };
    loop {
        if !target.own {
            let row = conn.run(
                sql::WATCH,
                &[Param::Text(&target.sale), Param::Text(&target.run)],
            );
            match row {
                Ok(Some(row)) => {
                    if let [count, others] = row[..] {
                        let others = u64::try_from(others).unwrap_or(0);
                        out.count(count, others.saturating_sub(start.purchases));
                    }
                }
                Ok(None) => return "the sale's row is gone".to_string(),
                Err(e) => return e.to_string(),
            }
        }
        if conn.dialect() == Dialect::Postgres {
            let backends = out.backends();
            let list: Vec<String> = backends
                .iter()
                .filter(|&&p| p > 0)
                .map(|p| p.to_string())
                .collect();
            let mut waits = vec![0; backends.len()];
            if !list.is_empty() {
                let rows = match conn.text_rows(sql::BLOCKERS, &[Param::Text(&list.join(","))]) {
                    Ok(rows) => rows,
                    Err(e) => return e.to_string(),
                };
                for (waiter, blockers) in rows {
                    let Ok(waiter) = waiter.parse::<i32>() else {
                        continue;
                    };
                    let Some(w) = backends.iter().position(|&p| p == waiter) else {
                        continue;
                    };
                    let blocker = blockers.first().copied().unwrap_or(0);
                    // A buyer of this run by its number; anyone else (a
                    // buyer of another run sharing the sale) as -1. The
                    // first blocker of ours is named if there is one.
                    let ours = backends
                        .iter()
                        .position(|&p| i64::from(p) == blocker)
                        .map_or(-1, |b| b as i32 + 1);
                    if waits[w] <= 0 {
                        waits[w] = ours;
                    }
                }
            }
            out.waits(&waits);
        }
        std::thread::sleep(every);
    }
}

/// This connection's PostgreSQL server process, for the watcher; `None`
/// on SQLite.
pub(crate) fn backend_pid(conn: &mut Conn) -> Option<i32> {
    if conn.dialect() != Dialect::Postgres {
        return None;
    }
    let row = conn.run(sql::BACKEND_PID, &[]).ok()??;
    row.first().and_then(|&p| i32::try_from(p).ok())
}

/// The sale's figures, and, for a PostgreSQL sale of the run's own, the
/// row and its purchases removed afterwards: nothing is left on a shared
/// server by a run that did not ask for a named sale.
pub(crate) fn finish(target: &Target) -> Result<Figures, String> {
    let mut conn = Conn::open(&target.engine).map_err(|e| e.to_string())?;
    let figures = figures(&mut conn, &target.sale, &target.run)?;
    if target.own && matches!(target.engine, Engine::Postgres(_)) {
        let name = [Param::Text(&target.sale)];
        conn.run(sql::FORGET_PURCHASES, &name)
            .and_then(|_| conn.run(sql::DROP_SALE, &name))
            .map_err(|e| e.to_string())?;
    }
    Ok(figures)
}

fn figures(conn: &mut Conn, sale: &str, run: &str) -> Result<Figures, String> {
    let row = conn
        .run(sql::FIGURES, &[Param::Text(sale), Param::Text(run)])
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no sale '{sale}' in this database"))?;
    let [tickets, count, purchases, by_run, runs] = row[..] else {
        return Err("the sale's figures came back malformed".to_string());
    };
    let n = |x: i64| u64::try_from(x).unwrap_or(0);
    Ok(Figures {
        tickets: n(tickets),
        count,
        purchases: n(purchases),
        by_run: n(by_run),
        runs: n(runs),
    })
}

/// One sale as `ticketlab sales` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SaleListing {
    /// The sale's name.
    pub name: String,
    /// Its figures.
    pub figures: Figures,
    /// Each run that bought: its name, purchases and buyers.
    pub runs: Vec<(String, u64, u64)>,
}

/// Every sale in the database (or the one named), with its runs.
pub(crate) fn list(engine: &Engine, only: Option<&str>) -> Result<Vec<SaleListing>, String> {
    let mut conn = Conn::open(engine).map_err(|e| e.to_string())?;
    let names: Vec<String> = match only {
        Some(name) => vec![name.to_string()],
        None => conn
            .text_rows(sql::SALE_NAMES, &[])
            .map_err(|e| format!("{}: no ticketlab sales here ({e})", engine.describe()))?
            .into_iter()
            .map(|(name, _)| name)
            .collect(),
    };
    let mut out = Vec::new();
    for name in names {
        let figures = figures(&mut conn, &name, "")?;
        let runs = conn
            .text_rows(sql::RUNS, &[Param::Text(&name)])
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(run, n)| {
                let get = |i: usize| {
                    n.get(i)
                        .copied()
                        .map_or(0, |x| u64::try_from(x).unwrap_or(0))
                };
                (run, get(0), get(1))
            })
            .collect();
        out.push(SaleListing {
            name,
            figures,
            runs,
        });
    }
    Ok(out)
}

/// Runs `work` in a forked helper process and returns its answer, so this
/// process never holds a connection (nor the thread one may start). The
/// answer comes back as JSON through a pipe; a helper that dies is an
/// error, never a hang.
pub(crate) fn in_helper<T: Serialize + DeserializeOwned>(
    work: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    let mut pipe = process::Pipe::new().map_err(|e| format!("pipe: {e}"))?;
    let write_end = pipe.write;
    let pid = process::fork(move || {
        let answer = serde_json::to_vec(&work()).unwrap_or_default();
        match process::write_fd(write_end, &answer) {
            Ok(()) => 0,
            Err(_) => 1,
        }
    })
    .map_err(|e| format!("fork: {e}"))?;
    pipe.close_write();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match process::read_fd(pipe.read, &mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = process::reap(pid);
                return Err(format!("reading the database helper: {e}"));
            }
        }
    }
    let exit = process::reap(pid).map_err(|e| format!("waitpid: {e}"))?;
    if bytes.is_empty() {
        return Err(format!("the database helper process {}", exit.describe()));
    }
    serde_json::from_slice::<Result<T, String>>(&bytes)
        .map_err(|e| format!("the database helper's answer: {e}"))?
}

/// The temporary SQLite database's name in its private directory.
pub(crate) const TEMP_DATABASE_NAME: &str = "sale.sqlite";
/// The files SQLite keeps beside a database, by the suffix of their names:
/// the write-ahead log, its index, a rollback journal.
pub(crate) const SQLITE_SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];
/// The first bytes of every SQLite database file.
pub(crate) const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// A SQLite database of its own for one run, alone in a fresh private
/// directory as the file store's temporary file is; removed with its
/// journal files when dropped. A run killed with SIGKILL cannot drop it:
/// the next run's stale sweep removes it (`segment::remove_stale`).
pub(crate) struct TempDatabase {
    dir: PathBuf,
    path: PathBuf,
}

impl TempDatabase {
    /// Makes the directory; SQLite creates the file in it.
    pub(crate) fn new(parent: &Path) -> std::io::Result<TempDatabase> {
        let dir =
            crate::files::create_private_dir(parent, &format!("ticketlab-{}-", process::getpid()))?;
        let path = dir.join(TEMP_DATABASE_NAME);
        // Created here, empty and private, so no buyer ever creates it.
        crate::files::create_new_private(&path)?;
        Ok(TempDatabase { dir, path })
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        for suffix in std::iter::once("").chain(SQLITE_SIDE_FILES) {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `--db-reset` for SQLite: removes the file (a regular file only, never
/// what a link points to) and its journal files, so the sale starts a new
/// database whatever the file held.
pub(crate) fn remove_file(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_file() => {
            return Err(format!(
                "--db {} is {}: it must be a regular file or a new path",
                path.display(),
                crate::files::describe(meta.file_type())
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("--db {}: {e}", path.display())),
        Ok(_) => {}
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(PathBuf::from(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("--db {}: {e}", path.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Creates a `--db` SQLite file if it does not exist yet (mode 0600), so a
/// buyer's connection never creates one.
pub(crate) fn create_if_missing(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(meta) => Err(format!(
            "--db {} is {}: it must be a regular file or a new path",
            path.display(),
            crate::files::describe(meta.file_type())
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::files::create_new_private(path)
                .map(drop)
                .map_err(|e| format!("--db {}: {e}", path.display()))
        }
        Err(e) => Err(format!("--db {}: {e}", path.display())),
    }
}

/// The parameters as SQLite binds them.
fn sqlite_params(params: &[Param<'_>]) -> rusqlite::ParamsFromIter<Vec<rusqlite::types::Value>> {
    rusqlite::params_from_iter(
        params
            .iter()
            .map(|p| match *p {
                Param::Text(t) => rusqlite::types::Value::Text(t.to_string()),
                Param::Int(n) => rusqlite::types::Value::Integer(n),
            })
            .collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_counted() {
        assert_eq!(placeholders(sql::RECORD_PURCHASE), 4);
        assert_eq!(placeholders(sql::COMMIT), 0);
        assert_eq!(placeholders(sql::lock_sale(Dialect::Postgres)[1]), 1);
    }

    #[test]
    fn a_url_is_described_without_its_password() {
        let text = describe_url("postgresql://ann:secret@db.example:5433/class");
        assert_eq!(text, "db.example:5433/class");
        assert!(!text.contains("secret"));
    }
}
