//! What model training reads: every item's text and every interaction, in
//! two full scans (training is a batch job, off the request path).

use super::Db;

/// An item as the content model sees it. `tags` is the stored JSON text.
#[derive(Debug, sqlx::FromRow)]
pub struct TrainingItem {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub category: String,
    pub tags: String,
    pub popularity_score: f64,
}

/// One interaction, before it is weighed into a confidence: what training
/// and a user's profile are both built from.
#[derive(Debug, sqlx::FromRow)]
pub struct Signal {
    pub user_id: i64,
    pub item_id: i64,
    pub interaction_type: String,
    pub rating: Option<f64>,
    pub weight: f64,
    /// Unix milliseconds.
    pub created_at: i64,
}

pub async fn items(db: &Db) -> sqlx::Result<Vec<TrainingItem>> {
    sqlx::query_as(
        "SELECT id, title, description, category, tags, popularity_score FROM items ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
}

pub async fn interactions(db: &Db) -> sqlx::Result<Vec<Signal>> {
    sqlx::query_as(
        "SELECT user_id, item_id, interaction_type, rating, weight, created_at FROM interactions",
    )
    .fetch_all(&db.pool)
    .await
}
