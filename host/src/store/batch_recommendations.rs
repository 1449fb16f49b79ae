//! The lists the `generate_batch_recommendations` job stores, one row per
//! user: written a chunk of users at a time, read one user at a time.

use chrono::{DateTime, Utc};

use super::{Db, millis_to_datetime};
use crate::error::AppResult;

/// A stored list; its entries are the recommendation service's, as JSON
/// (the store does not know their type).
#[derive(Debug)]
pub struct StoredList {
    pub user_id: i64,
    pub algorithm: String,
    pub items_json: String,
    pub model_version: i64,
    /// The job run that made the list.
    pub run_id: Option<i64>,
    pub generated_at: DateTime<Utc>,
}

pub async fn get(db: &Db, user_id: i64) -> AppResult<Option<StoredList>> {
    let row: Option<(String, String, i64, Option<i64>, i64)> = sqlx::query_as(
        "SELECT items, algorithm, model_version, run_id, generated_at \
         FROM batch_recommendations WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(
        |(items_json, algorithm, model_version, run_id, generated_at)| StoredList {
            user_id,
            algorithm,
            items_json,
            model_version,
            run_id,
            generated_at: millis_to_datetime(generated_at),
        },
    ))
}

pub async fn count(db: &Db) -> AppResult<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM batch_recommendations")
        .fetch_one(&db.pool)
        .await?;
    Ok(n)
}

/// One user's list as the job writes it.
pub struct BatchRow<'a> {
    pub user_id: i64,
    /// The recommendations, as a JSON array.
    pub items: String,
    pub algorithm: &'a str,
    pub model_version: i64,
}

/// Writes `rows` (each replacing that user's list) in one transaction.
pub async fn upsert(
    db: &Db,
    rows: &[BatchRow<'_>],
    run_id: i64,
    generated_at: i64,
) -> sqlx::Result<()> {
    let mut tx = db.pool.begin().await?;
    for row in rows {
        sqlx::query(
            "INSERT INTO batch_recommendations \
                 (user_id, items, algorithm, model_version, run_id, generated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (user_id) DO UPDATE SET items = excluded.items, \
                 algorithm = excluded.algorithm, model_version = excluded.model_version, \
                 run_id = excluded.run_id, generated_at = excluded.generated_at",
        )
        .bind(row.user_id)
        .bind(&row.items)
        .bind(row.algorithm)
        .bind(row.model_version)
        .bind(run_id)
        .bind(generated_at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Removes the lists no longer written by run `run_id`: those of users who
/// stopped being active since an earlier run.
pub async fn delete_other_runs(db: &Db, run_id: i64) -> sqlx::Result<u64> {
    let done =
        sqlx::query("DELETE FROM batch_recommendations WHERE run_id IS NULL OR run_id <> $1")
            .bind(run_id)
            .execute(&db.pool)
            .await?;
    Ok(done.rows_affected())
}
