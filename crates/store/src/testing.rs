//! Per-test databases: a new SQLite file, or a new PostgreSQL schema when
//! `XMCP_TEST_DATABASE_URL` names a server (CI sets it). Either is removed
//! when its [`TestDatabase`] is dropped.

use crate::{PostgresStore, SqliteStore, Store};
use sqlx::Connection;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;
use std::sync::Arc;

/// The PostgreSQL URL tests should use, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var("XMCP_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// What a test case needs from the machine (`var`: `XMCP_TEST_PYTHON`,
/// `XMCP_TEST_DATABASE_URL`…), or `None`, and then the case is skipped,
/// visibly: under `CI=true` a missing requirement fails the case instead;
/// elsewhere the skip is said on stderr and, when `XMCP_TEST_SKIP_LOG`
/// names a file, appended to it (`var`, tab, `case`), which `.ci/run`
/// counts in its summary.
#[allow(clippy::print_stderr)]
pub fn required(var: &str, case: &str) -> Option<String> {
    if let Some(v) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
        return Some(v);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{var} is not set, and under CI {case} must run: set it (.ci/run does)");
    }
    eprintln!("{var} not set: {case} skipped");
    if let Ok(log) = std::env::var("XMCP_TEST_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{var}\t{case}");
        }
    }
    None
}

/// A database that lives as long as this value.
pub struct TestDatabase {
    /// URL that [`crate::connect`] (and the server's `--database-url`) accepts.
    pub url: String,
    _dir: Option<tempfile_dir::TempDir>,
    /// The PostgreSQL schema this value created, dropped with it.
    _schema: Option<Schema>,
}

/// A PostgreSQL schema created for one test: the server's URL and its name.
struct Schema {
    base: String,
    name: String,
}

impl Drop for Schema {
    /// Drop the schema and everything in it, so the test server does not
    /// gather one schema per test. The test is over, but its pools may
    /// still hold connections, some in a transaction whose rollback waits
    /// for the test's runtime (blocked here): they are closed first. Best
    /// effort: should a lock still be held, the drop gives up after a few
    /// seconds, and says so.
    #[allow(clippy::print_stderr)]
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot wait for a
        // future: a thread with a runtime of its own does the work.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&base).await.ok()?;
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&name)
                .execute(&mut conn)
                .await
                .ok()?;
                sqlx::raw_sql(&format!(
                    "SET lock_timeout = '3s'; DROP SCHEMA IF EXISTS {name} CASCADE"
                ))
                .execute(&mut conn)
                .await
                .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("test schema {} was left in the database", self.name);
        }
    }
}

mod tempfile_dir {
    pub use std::path::PathBuf;
    /// A directory removed on drop (tiny stand-in to avoid a dependency).
    pub struct TempDir(pub PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl TestDatabase {
    /// A fresh SQLite file in its own temporary directory.
    pub fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "xmcp-test-{}",
            hex::encode(xmcp_crypto::random_bytes::<8>())
        ));
        let _ = std::fs::create_dir_all(&dir);
        let url = format!("sqlite://{}", dir.join("xmcp.db").display());
        Self {
            url,
            _dir: Some(tempfile_dir::TempDir(dir)),
            _schema: None,
        }
    }

    /// A fresh schema in the test PostgreSQL server, if one is configured. The
    /// returned URL selects the schema through `options=-c search_path=...`.
    pub async fn postgres() -> Option<Self> {
        let base = postgres_url()?;
        let schema = format!("t_{}", hex::encode(xmcp_crypto::random_bytes::<8>()));
        let mut conn = sqlx::PgConnection::connect(&base).await.ok()?;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .ok()?;
        let sep = if base.contains('?') { '&' } else { '?' };
        // The application name marks the schema's connections, for the drop.
        let url =
            format!("{base}{sep}application_name={schema}&options=-c%20search_path%3D{schema}");
        Some(Self {
            url,
            _dir: None,
            _schema: Some(Schema { base, name: schema }),
        })
    }

    /// The same database for a second server instance; cleanup stays with
    /// `self`, which must outlive the share.
    pub fn share(&self) -> Self {
        Self {
            url: self.url.clone(),
            _dir: None,
            _schema: None,
        }
    }

    /// Run raw SQL against this SQLite database, e.g. a trigger that makes
    /// the store fail in a chosen way. Panics on PostgreSQL or on error.
    pub async fn execute_sqlite(&self, sql: &str) {
        assert!(self.url.starts_with("sqlite"), "SQLite test databases only");
        let mut conn = sqlx::SqliteConnection::connect(&self.url)
            .await
            .expect("open sqlite");
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .expect("test SQL runs");
    }

    pub async fn open(&self) -> Arc<dyn Store> {
        if self.url.starts_with("postgres") {
            let opts = PgConnectOptions::from_str(&self.url).expect("test database url");
            Arc::new(
                PostgresStore::connect_with(opts, 8)
                    .await
                    .expect("connect postgres"),
            )
        } else {
            Arc::new(
                SqliteStore::connect(&self.url, 4)
                    .await
                    .expect("open sqlite"),
            )
        }
    }
}
