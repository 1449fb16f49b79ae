//! Interactions: what users did with items (view, click, purchase, ...).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Db, Page, millis_to_datetime, now_millis};
use crate::error::{AppError, AppResult};

/// The interaction types the service understands, strongest signal last.
pub const INTERACTION_TYPES: &[&str] = &[
    "view",
    "click",
    "share",
    "like",
    "add_to_cart",
    "rating",
    "purchase",
];

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Interaction {
    pub id: i64,
    pub user_id: i64,
    pub item_id: i64,
    pub interaction_type: String,
    pub rating: Option<f64>,
    pub weight: f64,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct InteractionRow {
    id: i64,
    user_id: i64,
    item_id: i64,
    interaction_type: String,
    rating: Option<f64>,
    weight: f64,
    created_at: i64,
}

impl From<InteractionRow> for Interaction {
    fn from(r: InteractionRow) -> Self {
        Interaction {
            id: r.id,
            user_id: r.user_id,
            item_id: r.item_id,
            interaction_type: r.interaction_type,
            rating: r.rating,
            weight: r.weight,
            created_at: millis_to_datetime(r.created_at),
        }
    }
}

const COLUMNS: &str = "id, user_id, item_id, interaction_type, rating, weight, created_at";

pub struct NewInteraction {
    pub user_id: i64,
    pub item_id: i64,
    pub interaction_type: String,
    pub rating: Option<f64>,
    pub weight: f64,
}

/// Records an interaction and bumps the item's popularity in one transaction.
pub async fn create(db: &Db, new: NewInteraction) -> AppResult<Interaction> {
    let mut tx = db.pool.begin().await?;
    let user: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE id = $1")
        .bind(new.user_id)
        .fetch_optional(&mut *tx)
        .await?;
    if user.is_none() {
        return Err(AppError::not_found("User"));
    }
    let bumped =
        sqlx::query("UPDATE items SET popularity_score = popularity_score + 1 WHERE id = $1")
            .bind(new.item_id)
            .execute(&mut *tx)
            .await?;
    if bumped.rows_affected() == 0 {
        return Err(AppError::not_found("Item"));
    }
    let row: InteractionRow = sqlx::query_as(&format!(
        "INSERT INTO interactions (user_id, item_id, interaction_type, rating, weight, created_at) \
         VALUES ($1, $2, $3, NULLIF($4, -1), $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(new.user_id)
    .bind(new.item_id)
    .bind(&new.interaction_type)
    .bind(super::nullable_f64(new.rating))
    .bind(new.weight)
    .bind(now_millis())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row.into())
}

/// Newest first.
pub async fn list_for_user(db: &Db, user_id: i64, page: Page) -> AppResult<Vec<Interaction>> {
    list_by(db, "user_id", user_id, page).await
}

/// Newest first.
pub async fn list_for_item(db: &Db, item_id: i64, page: Page) -> AppResult<Vec<Interaction>> {
    list_by(db, "item_id", item_id, page).await
}

async fn list_by(db: &Db, column: &str, id: i64, page: Page) -> AppResult<Vec<Interaction>> {
    let rows: Vec<InteractionRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM interactions WHERE {column} = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(id)
    .bind(page.limit)
    .bind(page.skip)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserInteractionStats {
    pub user_id: i64,
    pub total_interactions: i64,
    pub unique_items: i64,
    /// Count per interaction type.
    pub interaction_types: BTreeMap<String, i64>,
    /// Mean of the explicit ratings, if any.
    pub average_rating: Option<f64>,
    pub first_interaction_at: Option<DateTime<Utc>>,
    pub last_interaction_at: Option<DateTime<Utc>>,
}

pub async fn stats_for_user(db: &Db, user_id: i64) -> AppResult<UserInteractionStats> {
    let (total, unique_items, average_rating, first, last): (
        i64,
        i64,
        Option<f64>,
        Option<i64>,
        Option<i64>,
    ) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT item_id), CAST(AVG(rating) AS DOUBLE PRECISION), \
         MIN(created_at), MAX(created_at) FROM interactions WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_one(&db.pool)
    .await?;
    let by_type: Vec<(String, i64)> = sqlx::query_as(
        "SELECT interaction_type, COUNT(*) FROM interactions WHERE user_id = $1 \
         GROUP BY interaction_type",
    )
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(UserInteractionStats {
        user_id,
        total_interactions: total,
        unique_items,
        interaction_types: by_type.into_iter().collect(),
        average_rating,
        first_interaction_at: first.map(millis_to_datetime),
        last_interaction_at: last.map(millis_to_datetime),
    })
}

/// An item's interactions in a window, and how many users they came from.
#[derive(Debug, sqlx::FromRow)]
pub struct WindowCount {
    pub item_id: i64,
    pub interactions: i64,
    pub users: i64,
}

/// The `limit` items with the most interactions since `since_ms`, most
/// first: an indexed range read of the window, never the whole table.
pub async fn most_since(db: &Db, since_ms: i64, limit: usize) -> AppResult<Vec<WindowCount>> {
    Ok(sqlx::query_as(
        "SELECT item_id, COUNT(*) AS interactions, COUNT(DISTINCT user_id) AS users \
         FROM interactions WHERE created_at >= $1 GROUP BY item_id \
         ORDER BY interactions DESC, item_id LIMIT $2",
    )
    .bind(since_ms)
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?)
}

/// Interactions recorded after `after_ms` (unix ms).
pub async fn count_since(db: &Db, after_ms: i64) -> sqlx::Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM interactions WHERE created_at > $1")
        .bind(after_ms)
        .fetch_one(&db.pool)
        .await?;
    Ok(n)
}

/// The rows, counted: a scan of the whole table (seconds at 10M on
/// PostgreSQL). Where a figure will do, [`total`] reads the kept counts.
pub async fn count(db: &Db) -> AppResult<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM interactions")
        .fetch_one(&db.pool)
        .await?;
    Ok(n)
}

/// How many interactions there are, from the per-item counts the database
/// keeps (`item_stats`): a read of one row per item and type, whatever the
/// number of interactions. Counting the table instead held a 10M-row
/// PostgreSQL server's start for 6 s, the first scan after an import.
pub async fn total(db: &Db) -> AppResult<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT CAST(COALESCE(SUM(interactions), 0) AS BIGINT) FROM item_stats")
            .fetch_one(&db.pool)
            .await?;
    Ok(n)
}
