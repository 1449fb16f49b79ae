//! The rows the feature store aggregates. Read here, in as few queries as a
//! batch allows (one per table); turned into features in `features/`.

use super::{Db, Dialect, training::Signal};
use crate::error::AppResult;

/// One item's interactions of one type.
#[derive(Debug, sqlx::FromRow)]
pub struct ItemTypeStats {
    pub item_id: i64,
    pub interaction_type: String,
    pub interactions: i64,
    /// How many of them carry a rating, and the ratings' sum.
    pub rated: i64,
    pub rating_sum: f64,
}

/// Per item and interaction type, for every item of `item_ids`: read from
/// the counts the database keeps as interactions arrive (the `item_stats`
/// migration), a few rows per item however popular it is.
pub async fn item_type_stats(db: &Db, item_ids: &[i64]) -> AppResult<Vec<ItemTypeStats>> {
    if item_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT item_id, interaction_type, interactions, rated, rating_sum \
         FROM item_stats WHERE item_id IN ({})",
        db.dialect.params(1, item_ids.len())
    );
    let mut query = sqlx::query_as::<_, ItemTypeStats>(&sql);
    for id in item_ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(&db.pool).await?)
}

/// What a user's features start from, besides their interactions.
#[derive(Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    /// JSON text.
    pub preferences: String,
    pub created_at: i64,
}

pub async fn users(db: &Db, ids: &[i64]) -> AppResult<Vec<UserRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, preferences, created_at FROM users WHERE id IN ({})",
        db.dialect.params(1, ids.len())
    );
    let mut query = sqlx::query_as::<_, UserRow>(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(&db.pool).await?)
}

/// One interaction of a user, with the category of its item (`None` once
/// the item is gone).
#[derive(Debug, sqlx::FromRow)]
pub struct UserInteraction {
    #[sqlx(flatten)]
    pub signal: Signal,
    pub category: Option<String>,
}

/// The read behind [`user_interactions`] for `users` ids: every column it
/// takes from `interactions` is in the `interactions_user` index, so it
/// reads no table row (see the migration that made it covering).
pub fn user_interactions_sql(dialect: Dialect, users: usize) -> String {
    format!(
        "SELECT x.user_id, x.item_id, x.interaction_type, x.rating, x.weight, x.created_at, \
         i.category FROM interactions x LEFT JOIN items i ON i.id = x.item_id \
         WHERE x.user_id IN ({})",
        dialect.params(1, users)
    )
}

/// Every interaction of every user of `user_ids`.
pub async fn user_interactions(db: &Db, user_ids: &[i64]) -> AppResult<Vec<UserInteraction>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = user_interactions_sql(db.dialect, user_ids.len());
    let mut query = sqlx::query_as::<_, UserInteraction>(&sql);
    for id in user_ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(&db.pool).await?)
}

/// One user's interactions with one item, of one type.
#[derive(Debug, sqlx::FromRow)]
pub struct PairCount {
    pub item_id: i64,
    pub interaction_type: String,
    pub interactions: i64,
    /// Unix milliseconds of the latest.
    pub last_at: i64,
}

/// Per item of `item_ids` and interaction type, for one user.
pub async fn pair_counts(db: &Db, user_id: i64, item_ids: &[i64]) -> AppResult<Vec<PairCount>> {
    if item_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT item_id, interaction_type, COUNT(*) AS interactions, MAX(created_at) AS last_at \
         FROM interactions WHERE user_id = {} AND item_id IN ({}) \
         GROUP BY item_id, interaction_type",
        db.dialect.param(1),
        db.dialect.params(2, item_ids.len())
    );
    let mut query = sqlx::query_as::<_, PairCount>(&sql).bind(user_id);
    for id in item_ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(&db.pool).await?)
}
