//! Items: the catalogue being recommended.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{Db, Page, millis_to_datetime, now_millis};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Item {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
    /// Free JSON. The built-in rules read `in_stock`, `is_promotional`,
    /// `promo_end_date`, `min_age`, `allowed_countries`, `blocked_countries`;
    /// the example rule reads `origin_country`.
    #[schema(value_type = Object)]
    pub features: Value,
    pub popularity_score: f64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: i64,
    title: String,
    description: String,
    category: String,
    tags: String,
    features: String,
    popularity_score: f64,
    created_at: i64,
    updated_at: i64,
}

impl From<ItemRow> for Item {
    fn from(r: ItemRow) -> Self {
        Item {
            id: r.id,
            title: r.title,
            description: r.description,
            category: r.category,
            tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            features: serde_json::from_str(&r.features)
                .unwrap_or_else(|_| Value::Object(Default::default())),
            popularity_score: r.popularity_score,
            created_at: millis_to_datetime(r.created_at),
            updated_at: millis_to_datetime(r.updated_at),
        }
    }
}

const COLUMNS: &str =
    "id, title, description, category, tags, features, popularity_score, created_at, updated_at";

pub struct NewItem {
    pub title: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
    pub features: Value,
    pub popularity_score: f64,
}

#[derive(Default)]
pub struct ItemChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub tags: Option<Vec<String>>,
    pub features: Option<Value>,
    pub popularity_score: Option<f64>,
}

pub async fn create(db: &Db, new: NewItem) -> AppResult<Item> {
    let now = now_millis();
    let row: ItemRow = sqlx::query_as(&format!(
        "INSERT INTO items (title, description, category, tags, features, popularity_score, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {COLUMNS}"
    ))
    .bind(&new.title)
    .bind(&new.description)
    .bind(&new.category)
    .bind(serde_json::to_string(&new.tags).unwrap_or_else(|_| "[]".into()))
    .bind(new.features.to_string())
    .bind(new.popularity_score)
    .bind(now)
    .fetch_one(&db.pool)
    .await?;
    Ok(row.into())
}

pub async fn get(db: &Db, id: i64) -> AppResult<Option<Item>> {
    let row: Option<ItemRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM items WHERE id = $1"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(Into::into))
}

/// The items among `ids` that exist, in id order.
pub async fn get_many(db: &Db, ids: &[i64]) -> AppResult<Vec<Item>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = db.dialect.params(1, ids.len());
    let sql = format!("SELECT {COLUMNS} FROM items WHERE id IN ({list}) ORDER BY id");
    let mut q = sqlx::query_as::<_, ItemRow>(&sql);
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(&db.pool)
        .await?
        .into_iter()
        .map(Item::from)
        .collect())
}

pub async fn list(db: &Db, page: Page, category: Option<&str>) -> AppResult<Vec<Item>> {
    let rows: Vec<ItemRow> = match category {
        Some(category) => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM items WHERE category = $1 ORDER BY id LIMIT $2 OFFSET $3"
            ))
            .bind(category)
            .bind(page.limit)
            .bind(page.skip)
            .fetch_all(&db.pool)
            .await?
        }
        None => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM items ORDER BY id LIMIT $1 OFFSET $2"
            ))
            .bind(page.limit)
            .bind(page.skip)
            .fetch_all(&db.pool)
            .await?
        }
    };
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The most popular items by stored popularity score (ties: older id first).
pub async fn popular(db: &Db, limit: i64) -> AppResult<Vec<Item>> {
    let rows: Vec<ItemRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM items ORDER BY popularity_score DESC, id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn update(db: &Db, id: i64, changes: ItemChanges) -> AppResult<Item> {
    let current = get(db, id)
        .await?
        .ok_or_else(|| AppError::not_found("Item"))?;
    let row: ItemRow = sqlx::query_as(&format!(
        "UPDATE items SET title = $1, description = $2, category = $3, tags = $4, features = $5, \
         popularity_score = $6, updated_at = $7 WHERE id = $8 RETURNING {COLUMNS}"
    ))
    .bind(changes.title.unwrap_or(current.title))
    .bind(changes.description.unwrap_or(current.description))
    .bind(changes.category.unwrap_or(current.category))
    .bind(serde_json::to_string(&changes.tags.unwrap_or(current.tags)).unwrap_or_default())
    .bind(changes.features.unwrap_or(current.features).to_string())
    .bind(changes.popularity_score.unwrap_or(current.popularity_score))
    .bind(now_millis())
    .bind(id)
    .fetch_one(&db.pool)
    .await?;
    Ok(row.into())
}

/// Deletes the item; its interactions go with it (ON DELETE CASCADE).
pub async fn delete(db: &Db, id: i64) -> AppResult<bool> {
    let done = sqlx::query("DELETE FROM items WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Sets every item's popularity to the distinct users who interacted with
/// it, scaled so the most popular item is 1 (items nobody interacted with
/// keep theirs). Returns the items changed and the largest user count.
pub async fn rescore_popularity(db: &Db) -> sqlx::Result<(u64, i64)> {
    let (max,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(c) FROM (SELECT COUNT(DISTINCT user_id) AS c FROM interactions GROUP BY item_id) per_item",
    )
    .fetch_one(&db.pool)
    .await?;
    let Some(max) = max.filter(|&m| m > 0) else {
        return Ok((0, 0));
    };
    let done = sqlx::query(
        "UPDATE items SET popularity_score = \
             (SELECT CAST(COUNT(DISTINCT i.user_id) AS DOUBLE PRECISION) FROM interactions i \
              WHERE i.item_id = items.id) / $1 \
         WHERE EXISTS (SELECT 1 FROM interactions i WHERE i.item_id = items.id)",
    )
    .bind(max as f64)
    .execute(&db.pool)
    .await?;
    Ok((done.rows_affected(), max))
}

pub async fn count(db: &Db) -> AppResult<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM items")
        .fetch_one(&db.pool)
        .await?;
    Ok(n)
}

pub async fn exists(db: &Db, id: i64) -> AppResult<bool> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM items WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.is_some())
}
