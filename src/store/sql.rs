//! What each lock setting means in SQL, for both engines: the one owner of
//! every statement a database sale runs, and of the steps each setting
//! takes (`docs/scheduler.md`'s table). `database.rs` runs them; nothing
//! else writes SQL.
//!
//! | `--lock` | statements |
//! |---|---|
//! | none, join | autocommit `SELECT count`, the read delay, then one transaction: `UPDATE … SET count = $seen - 1` and the purchase |
//! | write | autocommit `SELECT count`; the lock (`BEGIN IMMEDIATE`, or `BEGIN` and `SELECT … FOR UPDATE`); the same stale `UPDATE`; `COMMIT` |
//! | buy | the lock first, then `SELECT count`, the `UPDATE` and `COMMIT`, all in one transaction |
//! | atomic | `BEGIN`, `UPDATE … SET count = count - 1 WHERE count > 0 RETURNING count` and the purchase; then `COMMIT`, a step of its own: until then the row is locked |
//! | serializable | `BEGIN` SERIALIZABLE (SQLite: a deferred transaction under WAL's snapshot rules), `SELECT count`, `UPDATE`, `COMMIT`; a serialization failure rolls back and starts again |
//! | task | as none, with the whole task under the segment's mutex |

use crate::config::LockMode;
use crate::step::Step;

/// The database engine: its SQL differs in a few words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite, bundled, one file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The layout of the two tables this version writes. A sale row of another
/// layout is refused, never guessed at.
pub(crate) const LAYOUT: i64 = 1;

/// The steps a buyer takes under `lock` in a database store, in order.
pub(crate) fn steps(lock: LockMode) -> &'static [Step] {
    use Step::*;
    match lock {
        LockMode::None | LockMode::Join => &[Search, Read, Write],
        LockMode::Write => &[Search, Read, Lock, Write, Unlock],
        LockMode::Buy => &[Search, Lock, Read, Write, Unlock],
        LockMode::Task => &[Lock, Search, Read, Write, Unlock],
        LockMode::Atomic => &[Search, Cas, Unlock],
        LockMode::Serializable => &[Search, Read, Write, Unlock],
        // Refused by `SaleConfig::validate` for database stores.
        LockMode::Robust => &[],
    }
}

/// Puts a statement written with PostgreSQL's `$1` placeholders into the
/// dialect's own (`?1` for SQLite).
pub(crate) fn text(d: Dialect, sql: &str) -> String {
    match d {
        Dialect::Postgres => sql.to_string(),
        Dialect::Sqlite => sql.replace('$', "?"),
    }
}

/// The two tables, created if missing. `sales` holds one row per sale
/// (its tickets, the count left, the layout that wrote it); `purchases`
/// one row per purchase a buyer made: which run, which buyer, the count it
/// acted on, and when.
pub(crate) fn schema(d: Dialect) -> [&'static str; 2] {
    match d {
        Dialect::Sqlite => [
            "CREATE TABLE IF NOT EXISTS sales (name TEXT PRIMARY KEY, tickets INTEGER NOT NULL, \
             count INTEGER NOT NULL, layout INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS purchases (id INTEGER PRIMARY KEY, sale TEXT NOT NULL, \
             run TEXT NOT NULL, buyer INTEGER NOT NULL, seen INTEGER NOT NULL, \
             at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
        ],
        Dialect::Postgres => [
            "CREATE TABLE IF NOT EXISTS sales (name TEXT PRIMARY KEY, tickets BIGINT NOT NULL, \
             count BIGINT NOT NULL, layout BIGINT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS purchases (id BIGSERIAL PRIMARY KEY, sale TEXT NOT NULL, \
             run TEXT NOT NULL, buyer BIGINT NOT NULL, seen BIGINT NOT NULL, \
             at TIMESTAMPTZ NOT NULL DEFAULT now())",
        ],
    }
}

/// A sale's row: `$1` the name.
pub(crate) const SALE_ROW: &str = "SELECT tickets, count, layout FROM sales WHERE name = $1";
/// Creates a sale unless another run just did: `$1` name, `$2` tickets, `$3` layout.
pub(crate) const CREATE_SALE: &str = "INSERT INTO sales (name, tickets, count, layout) \
     VALUES ($1, $2, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING layout";
/// Starts a sale of this run's own afresh: `$1` name, `$2` tickets.
pub(crate) const RESET_SALE: &str = "UPDATE sales SET tickets = $2, count = $2 WHERE name = $1";
/// Forgets a sale's purchases: `$1` name.
pub(crate) const FORGET_PURCHASES: &str = "DELETE FROM purchases WHERE sale = $1";
/// Removes a sale's row: `$1` name.
pub(crate) const DROP_SALE: &str = "DELETE FROM sales WHERE name = $1";

/// The count, read on its own: `$1` the sale.
pub(crate) const READ_COUNT: &str = "SELECT count FROM sales WHERE name = $1";
/// The stale write of `none`, `write`, `buy` and `serializable`: the count
/// the buyer computed from what it read. `$1` sale, `$2` the new count.
pub(crate) const WRITE_COUNT: &str = "UPDATE sales SET count = $2 WHERE name = $1";
/// `atomic`: the database checks and decrements in one statement, and says
/// what it left (no row: sold out). `$1` the sale.
pub(crate) const CONDITIONAL_UPDATE: &str =
    "UPDATE sales SET count = count - 1 WHERE name = $1 AND count > 0 RETURNING count";
/// Every purchase, in the same transaction as its write: `$1` sale, `$2`
/// run, `$3` buyer (from 1), `$4` the count it acted on.
pub(crate) const RECORD_PURCHASE: &str =
    "INSERT INTO purchases (sale, run, buyer, seen) VALUES ($1, $2, $3, $4)";

/// The transaction that writes, for `none` and `atomic`: it takes the
/// write lock at once on SQLite, so it never has to upgrade a read.
pub(crate) fn begin_write(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "BEGIN IMMEDIATE",
        Dialect::Postgres => "BEGIN",
    }
}

/// The lock step of `buy` and `write`: the statements that take the lock
/// on the sale, after which no other buyer can write it until `COMMIT`.
/// SQLite locks the whole database for writing at `BEGIN IMMEDIATE`;
/// PostgreSQL locks the row with `SELECT … FOR UPDATE` (for `write` that
/// is where its `UPDATE` would have waited anyway). `$1` the sale.
pub(crate) fn lock_sale(d: Dialect) -> &'static [&'static str] {
    match d {
        Dialect::Sqlite => &["BEGIN IMMEDIATE"],
        Dialect::Postgres => &[
            "BEGIN",
            "SELECT count FROM sales WHERE name = $1 FOR UPDATE",
        ],
    }
}

/// The start of a `serializable` attempt: PostgreSQL's SERIALIZABLE; on
/// SQLite a deferred transaction, whose read takes a WAL snapshot and
/// whose write fails (`SQLITE_BUSY_SNAPSHOT`) if another buyer committed
/// after it.
pub(crate) fn begin_serializable(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "BEGIN DEFERRED",
        Dialect::Postgres => "BEGIN ISOLATION LEVEL SERIALIZABLE",
    }
}

/// Ends a transaction.
pub(crate) const COMMIT: &str = "COMMIT";
/// Gives a transaction up (a serialization failure, a sold-out read).
pub(crate) const ROLLBACK: &str = "ROLLBACK";

/// A sale's figures in one statement, so they come from one moment: `$1`
/// the sale, `$2` a run. Tickets, count, purchases by every run,
/// purchases by run `$2`, and the runs that bought.
pub(crate) const FIGURES: &str = "SELECT s.tickets, s.count, \
     (SELECT count(*) FROM purchases p WHERE p.sale = s.name), \
     (SELECT count(*) FROM purchases p WHERE p.sale = s.name AND p.run = $2), \
     (SELECT count(DISTINCT p.run) FROM purchases p WHERE p.sale = s.name) \
     FROM sales s WHERE s.name = $1";

/// What the watcher reads for the live view of a sale other runs share,
/// in one statement: `$1` the sale, `$2` this run. The count, and the
/// purchases recorded by every other run.
pub(crate) const WATCH: &str = "SELECT s.count, \
     (SELECT count(*) FROM purchases p WHERE p.sale = s.name AND p.run <> $2) \
     FROM sales s WHERE s.name = $1";

/// PostgreSQL: who blocks whom among the server processes listed in `$1`
/// (comma-separated pids), one row per waiter and blocker.
pub(crate) const BLOCKERS: &str = "SELECT w::text, b::bigint \
     FROM unnest(string_to_array($1, ',')::int[]) AS w, unnest(pg_blocking_pids(w)) AS b";

/// PostgreSQL: this connection's server process.
pub(crate) const BACKEND_PID: &str = "SELECT pg_backend_pid()::bigint";

/// Every sale's name, in order.
pub(crate) const SALE_NAMES: &str = "SELECT name FROM sales ORDER BY name";

/// A sale's purchases per run, oldest run first: `$1` the sale.
pub(crate) const RUNS: &str = "SELECT run, count(*), count(DISTINCT buyer) FROM purchases \
     WHERE sale = $1 GROUP BY run ORDER BY min(id)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_takes_numbered_question_marks() {
        assert_eq!(
            text(Dialect::Sqlite, WRITE_COUNT),
            "UPDATE sales SET count = ?2 WHERE name = ?1"
        );
        assert_eq!(text(Dialect::Postgres, WRITE_COUNT), WRITE_COUNT);
    }

    #[test]
    fn every_database_setting_searches_and_writes() {
        for lock in [
            LockMode::None,
            LockMode::Write,
            LockMode::Buy,
            LockMode::Task,
            LockMode::Join,
            LockMode::Serializable,
        ] {
            let s = steps(lock);
            assert!(
                s.contains(&Step::Search) && s.contains(&Step::Write),
                "{lock}"
            );
        }
        assert_eq!(
            steps(LockMode::Atomic),
            &[Step::Search, Step::Cas, Step::Unlock]
        );
    }
}
