//! Lists the `generate_batch_recommendations` job stored, one row per user.

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
