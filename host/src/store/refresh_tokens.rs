//! Refresh tokens: each one works once. Rotation marks it used and issues a
//! successor in the same family; presenting a used token again means it was
//! copied, so the whole family is revoked (OAuth 2.0 Security BCP, refresh
//! token rotation with reuse detection).

use super::{Db, now_millis};
use crate::error::AppResult;

pub async fn insert(
    db: &Db,
    jti: &str,
    user_id: i64,
    family_id: &str,
    issued_at_secs: i64,
    expires_at_secs: i64,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (jti, user_id, family_id, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(jti)
    .bind(user_id)
    .bind(family_id)
    .bind(issued_at_secs * 1000)
    .bind(expires_at_secs * 1000)
    .execute(&db.pool)
    .await?;
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub enum Consumed {
    /// The token was live and is now spent; issue its successor.
    Rotated { user_id: i64, family_id: String },
    /// The token had been spent before: its family is now revoked.
    ReuseDetected,
    /// Revoked, expired or never issued.
    Invalid,
}

/// Spends a refresh token. The conditional UPDATE makes two concurrent uses
/// of one token resolve to exactly one rotation.
pub async fn consume(db: &Db, jti: &str) -> AppResult<Consumed> {
    let now = now_millis();
    let spent = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $1 \
         WHERE jti = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(jti)
    .execute(&db.pool)
    .await?;
    let row: Option<(i64, String, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT user_id, family_id, used_at, revoked_at FROM refresh_tokens WHERE jti = $1",
    )
    .bind(jti)
    .fetch_optional(&db.pool)
    .await?;
    let Some((user_id, family_id, used_at, revoked_at)) = row else {
        return Ok(Consumed::Invalid);
    };
    if spent.rows_affected() == 1 {
        return Ok(Consumed::Rotated { user_id, family_id });
    }
    if revoked_at.is_none() && used_at.is_some() {
        revoke_family(db, &family_id).await?;
        tracing::warn!(user_id, family_id, "refresh token reused: family revoked");
        return Ok(Consumed::ReuseDetected);
    }
    Ok(Consumed::Invalid)
}

pub async fn revoke_family(db: &Db, family_id: &str) -> AppResult<()> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now_millis())
    .bind(family_id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn revoke_all_for_user(db: &Db, user_id: i64) -> AppResult<()> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now_millis())
    .bind(user_id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The family a token belongs to, if that token was issued to `user_id`.
pub async fn family_of(db: &Db, jti: &str, user_id: i64) -> AppResult<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT family_id FROM refresh_tokens WHERE jti = $1 AND user_id = $2")
            .bind(jti)
            .bind(user_id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|r| r.0))
}

/// Drops rows that expired more than a day ago (the cache-cleanup job).
pub async fn delete_expired(db: &Db) -> AppResult<u64> {
    let done = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
        .bind(now_millis() - 86_400_000)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected())
}
