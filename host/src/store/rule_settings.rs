//! Persisted operator changes to rules.

use super::{Db, now_millis};
use crate::error::AppResult;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RuleSetting {
    pub name: String,
    pub priority: i64,
    pub enabled: i64,
    /// JSON array of numbers, in the rule's parameter order.
    pub config: String,
    pub failure_policy: String,
    pub removed: i64,
}

pub async fn all(db: &Db) -> AppResult<Vec<RuleSetting>> {
    Ok(sqlx::query_as(
        "SELECT name, priority, enabled, config, failure_policy, removed FROM rule_settings",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// Changes when any stored setting does (a count and the latest change
/// time): how replicas notice that another one changed a rule.
pub async fn fingerprint(db: &Db) -> AppResult<(i64, i64)> {
    Ok(
        sqlx::query_as("SELECT COUNT(*), COALESCE(MAX(updated_at), 0) FROM rule_settings")
            .fetch_one(&db.pool)
            .await?,
    )
}

pub async fn save(db: &Db, s: &RuleSetting) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO rule_settings (name, priority, enabled, config, failure_policy, removed, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (name) DO UPDATE SET priority = excluded.priority, enabled = excluded.enabled, \
         config = excluded.config, failure_policy = excluded.failure_policy, \
         removed = excluded.removed, updated_at = excluded.updated_at",
    )
    .bind(&s.name)
    .bind(s.priority)
    .bind(s.enabled)
    .bind(&s.config)
    .bind(&s.failure_policy)
    .bind(s.removed)
    .bind(now_millis())
    .execute(&db.pool)
    .await?;
    Ok(())
}
