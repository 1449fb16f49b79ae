//! The pool every query runs on, with a circuit breaker in front: once the
//! database is found unreachable (a connection could not be had within
//! `DATABASE_ACQUIRE_TIMEOUT_MS`, or the connection broke), queries fail at
//! once with `PoolTimedOut` (a 503 with `detail`) instead of each waiting
//! out the timeout, until a background probe sees `SELECT 1` succeed again.
//! Requests that need no database (cached answers) are served throughout.
//!
//! It implements sqlx's `Executor`, so `query(...).fetch_all(&db.pool)`
//! reads the same as on a plain pool; everything else (`size`, `close`,
//! ...) derefs to the `AnyPool` underneath.

use std::{
    fmt,
    ops::Deref,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::error::AppError;
use futures_util::{FutureExt as _, StreamExt as _, future::BoxFuture, stream::BoxStream};
use sqlx::{Any, AnyPool, Database, Describe, Either, Error, Execute, Executor, Transaction};

/// How often an open breaker retries the database.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct FailFastPool {
    pool: AnyPool,
    down: Arc<AtomicBool>,
}

impl fmt::Debug for FailFastPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailFastPool")
            .field("down", &self.is_down())
            .finish_non_exhaustive()
    }
}

impl Deref for FailFastPool {
    type Target = AnyPool;
    fn deref(&self) -> &AnyPool {
        &self.pool
    }
}

/// Errors that say the database itself is unreachable, rather than that
/// one statement was wrong: no connection in time, a broken socket, or
/// PostgreSQL's connection-exception (08) and shutdown (57P) classes.
pub fn is_outage(e: &Error) -> bool {
    match e {
        Error::PoolTimedOut | Error::PoolClosed | Error::Io(_) | Error::Tls(_) => true,
        Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

impl FailFastPool {
    pub fn new(pool: AnyPool) -> Self {
        Self {
            pool,
            down: Arc::new(AtomicBool::new(false)),
        }
    }

    /// True while the breaker is open.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// Records a query's outcome: an outage opens the breaker and starts
    /// the probe that will close it.
    fn observe(&self, e: &Error) {
        if !is_outage(e) || self.down.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::error!(error = %e, "database unreachable: failing fast until it answers");
        let (pool, down) = (self.pool.clone(), self.down.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                if sqlx::query("SELECT 1").execute(&pool).await.is_ok() {
                    down.store(false, Ordering::Release);
                    tracing::info!("database is back");
                    return;
                }
            }
        });
    }

    /// A transaction, refused at once while the database is down.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, Error> {
        if self.is_down() {
            return Err(Error::PoolTimedOut);
        }
        self.pool.begin().await.inspect_err(|e| self.observe(e))
    }
}

impl<'p> Executor<'p> for &'p FailFastPool {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<<Any as Database>::QueryResult, <Any as Database>::Row>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        if self.is_down() {
            return futures_util::stream::once(async { Err(Error::PoolTimedOut) }).boxed();
        }
        (&self.pool)
            .fetch_many(query)
            .inspect(move |step| {
                if let Err(e) = step {
                    self.observe(e);
                }
            })
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<<Any as Database>::Row>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        if self.is_down() {
            return async { Err(Error::PoolTimedOut) }.boxed();
        }
        (&self.pool)
            .fetch_optional(query)
            .inspect(move |result| {
                if let Err(e) = result {
                    self.observe(e);
                }
            })
            .boxed()
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [<Any as Database>::TypeInfo],
    ) -> BoxFuture<'e, Result<<Any as Database>::Statement<'q>, Error>>
    where
        'p: 'e,
    {
        (&self.pool).prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, Error>>
    where
        'p: 'e,
    {
        (&self.pool).describe(sql)
    }
}

/// How a failed query reaches a client: an outage is a 503, a broken
/// constraint a 4xx, anything else an opaque 500.
impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => Self::NotFound("Not found".into()),
            // The pool's breaker logs the outage once; a line per refused
            // request would flood the logs while it lasts.
            e if is_outage(e) => Self::Unavailable("Database unavailable".into()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::BadRequest("A record with these values already exists".into())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                Self::NotFound("A referenced record does not exist".into())
            }
            _ => Self::Internal(err.into()),
        }
    }
}
