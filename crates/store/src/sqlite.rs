//! The embedded default: SQLite in WAL mode.

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// SQLite-backed [`crate::Store`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if needed) the database at `url` (`sqlite://path` or
    /// `sqlite::memory:`) and run migrations.
    pub async fn connect(url: &str, max_connections: u32) -> crate::Result<Self> {
        let memory = url.contains(":memory:");
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            // The database is a file in this process: a connection cannot
            // have gone away, and the ping sqlx sends by default before
            // handing one out is a second round trip to the connection's
            // worker thread for every query. (sqlx 0.8 still pings each
            // connection when it returns to the pool; that one cannot be
            // turned off.)
            .test_before_acquire(false)
            // An in-memory database exists per connection: keep exactly one.
            .max_connections(if memory { 1 } else { max_connections.max(1) })
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if memory {
                None
            } else {
                Some(Duration::from_secs(1800))
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

impl SqliteStore {
    /// `VACUUM INTO`: a consistent, compacted copy, taken while in use.
    async fn backup_to(&self, path: &str) -> crate::Result<()> {
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

crate::sql::impl_sql_store!(SqliteStore, sqlx::Sqlite);
