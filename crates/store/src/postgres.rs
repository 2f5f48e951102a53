//! Scale-out: PostgreSQL, shared by any number of stateless instances.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// PostgreSQL-backed [`crate::Store`].
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connect to `url` and run migrations. Migrations take an advisory lock,
    /// so instances starting together apply them once.
    pub async fn connect(url: &str, max_connections: u32) -> crate::Result<Self> {
        Self::connect_with(PgConnectOptions::from_str(url)?, max_connections).await
    }

    pub async fn connect_with(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> crate::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(Some(Duration::from_secs(600)))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

impl PostgresStore {
    async fn backup_to(&self, _path: &str) -> crate::Result<()> {
        Err(crate::StoreError::Unsupported(
            "back up PostgreSQL with pg_dump (or your provider's snapshots); `xmcp admin backup` copies SQLite stores".into(),
        ))
    }
}

crate::sql::impl_sql_store!(PostgresStore, sqlx::Postgres);
