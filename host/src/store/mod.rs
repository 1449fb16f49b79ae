//! Storage: one sqlx pool over SQLite (the embedded default) or PostgreSQL.
//!
//! Both dialects share every query: placeholders are `$N` (SQLite accepts
//! them), timestamps are unix milliseconds in BIGINT columns and JSON
//! documents are TEXT. Only the migrations differ (identity columns), one
//! folder per dialect under `migrations/`.
//!
//! Every query of the service is written here, one module per table or
//! concern (the layers above call these functions and never build SQL).

pub mod batch_recommendations;
pub mod bulk;
pub mod bundles;
pub mod fail_fast;
pub mod feature_rows;
pub mod interactions;
pub mod items;
pub mod job_runs;
pub mod model_snapshots;
pub mod notify;
pub mod refresh_tokens;
pub mod rule_settings;
pub mod training;
pub mod users;

use std::{path::Path, str::FromStr, time::Duration};

use anyhow::Context as _;
use sqlx::{
    Executor,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// How long the service keeps trying to reach the database at start.
const STARTUP_WAIT: Duration = Duration::from_secs(30);

/// A cheap-to-clone handle to the database.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: fail_fast::FailFastPool,
    pub dialect: Dialect,
}

impl Db {
    /// Connects, creating the SQLite file (and its folder) on first run.
    /// `acquire_timeout`: how long a query waits for a free connection (or
    /// for a new one while the database is down) before it fails with 503.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = if url.starts_with("sqlite:") {
            (Dialect::Sqlite, prepare_sqlite_url(url)?)
        } else {
            (Dialect::Postgres, url.to_string())
        };
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("invalid DATABASE_URL for {dialect:?}"))?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // Cascading deletes depend on this; WAL lets readers
                        // run while an import or a job writes.
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        // SQLite's default 2 MB page cache makes a bulk
                        // import spill a million small writes to the WAL;
                        // 32 MB keeps an ml-100k import in memory until commit.
                        conn.execute("PRAGMA cache_size = -32768").await?;
                        conn.execute("PRAGMA temp_store = MEMORY").await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        // The first connection, at start: a busy machine or a database
        // still starting may take longer than a request may wait, so keep
        // trying for `STARTUP_WAIT` before giving up.
        let started = std::time::Instant::now();
        loop {
            match sqlx::query("SELECT 1").execute(&pool).await {
                Ok(_) => break,
                Err(e) if started.elapsed() < STARTUP_WAIT && fail_fast::is_outage(&e) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("could not connect to the {dialect:?} database")));
                }
            }
        }
        Ok(Self {
            pool: fail_fast::FailFastPool::new(pool),
            dialect,
        })
    }

    /// Applies pending migrations; safe to call on every start.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&*self.pool)
            .await
            .context("database migration failed")?;
        Ok(())
    }

    /// True when a trivial query succeeds within a second.
    pub async fn ping(&self) -> bool {
        matches!(
            tokio::time::timeout(
                Duration::from_secs(1),
                sqlx::query("SELECT 1").execute(&self.pool)
            )
            .await,
            Ok(Ok(_))
        )
    }

    /// After rows were inserted with explicit ids (imports), move PostgreSQL's
    /// identity sequence past them so the next generated id does not collide.
    /// SQLite's AUTOINCREMENT already tracks the largest id.
    pub async fn sync_id_sequence(&self, table: &str) -> sqlx::Result<()> {
        if self.dialect == Dialect::Postgres {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), 1)) "
            );
            sqlx::query(&sql).execute(&self.pool).await?;
        }
        Ok(())
    }
}

/// Adds `mode=rwc` (create if missing) and makes sure the folder exists.
fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let path_part = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = path_part.split_once('?').unwrap_or((path_part, ""));
    let parent = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && path != ":memory:");
    if let Some(parent) = parent {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("could not create {}", parent.display()))?;
    }
    let mut url = format!("sqlite://{path}");
    let query = if query.contains("mode=") {
        query.to_string()
    } else if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        format!("{query}&mode=rwc")
    };
    url.push('?');
    url.push_str(&query);
    Ok(url)
}

/// Stands for NULL in a nullable float column (ratings, which are never
/// negative). sqlx 0.8's Any driver binds a NULL `f64` as a PostgreSQL
/// `float4`; the statement cache then keeps that parameter type and the next
/// non-NULL `float8` on the same connection is rejected. Binding a plain
/// `f64` and writing `NULLIF($n, -1)` in SQL keeps the type stable.
pub const NULL_F64: f64 = -1.0;

pub fn nullable_f64(value: Option<f64>) -> f64 {
    value.unwrap_or(NULL_F64)
}

/// Milliseconds since the unix epoch, the storage format of every timestamp.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn millis_to_datetime(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A page of a list: `skip` rows skipped, at most `limit` returned.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub skip: i64,
    pub limit: i64,
}

impl Dialect {
    /// The `i`th (from 1) bind parameter of a statement whose parameters
    /// are all written with this, in binding order: `$i` on PostgreSQL,
    /// an anonymous `?` on SQLite. SQLite looks a numbered parameter up by
    /// name in a list, once per parameter, so a statement with hundreds of
    /// `$n` (a batch insert, a long `IN` list) costs time quadratic in
    /// their number (half of a bulk import's time); `?` costs nothing.
    pub fn param(self, i: usize) -> String {
        match self {
            Dialect::Sqlite => "?".into(),
            Dialect::Postgres => format!("${i}"),
        }
    }

    /// `n` parameters from the `first`th, comma-separated: an `IN (...)`
    /// list (see [`Dialect::param`]).
    pub fn params(self, first: usize, n: usize) -> String {
        (first..first + n)
            .map(|i| self.param(i))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = std::env::temp_dir().join(format!("recengine-url-{}", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}/x.db", dir.display());
        let prepared = prepare_sqlite_url(&url).unwrap();
        assert!(prepared.ends_with("x.db?mode=rwc"), "{prepared}");
        assert!(dir.is_dir());
        std::fs::remove_dir_all(dir).unwrap();
        assert_eq!(
            prepare_sqlite_url("sqlite::memory:").unwrap(),
            "sqlite://:memory:?mode=rwc"
        );
    }
}
