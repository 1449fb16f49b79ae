//! The rule bundle tables: revisions (`rule_bundles`), events (the
//! history, `bundle_events`), and the active revision per bundle
//! (`bundle_state`).

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Db, Dialect, millis_to_datetime, notify, now_millis};

/// The PostgreSQL channel activations are announced on (the payload is the
/// bundle's name).
pub const NOTIFY_CHANNEL: &str = "recengine_bundles";

/// A revision to store: the archive and what was read from it.
pub struct NewRevision<'a> {
    pub name: &'a str,
    pub revision: &'a str,
    pub digest: &'a str,
    pub archive: &'a [u8],
    pub manifest: &'a [u8],
    pub signed_by: Option<&'a str>,
    pub actor: &'a str,
}

/// What storing a revision came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Stored now, or found stored with the same bytes: its id.
    Id(i64),
    /// The same name and revision were uploaded before with different
    /// content (revisions are immutable).
    DifferentContent,
}

/// Stores a revision; a re-upload of the same bytes reuses the stored row.
pub async fn save_revision(db: &Db, new: NewRevision<'_>) -> sqlx::Result<Saved> {
    let existing: Option<(i64, String)> =
        sqlx::query_as("SELECT id, digest FROM rule_bundles WHERE name = $1 AND revision = $2")
            .bind(new.name)
            .bind(new.revision)
            .fetch_optional(&db.pool)
            .await?;
    if let Some((id, digest)) = existing {
        return Ok(if digest == new.digest {
            Saved::Id(id)
        } else {
            Saved::DifferentContent
        });
    }
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO rule_bundles (name, revision, digest, archive, manifest, signed_by, uploaded_at, uploaded_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(new.name)
    .bind(new.revision)
    .bind(new.digest)
    .bind(STANDARD.encode(new.archive))
    .bind(String::from_utf8_lossy(new.manifest).to_string())
    .bind(new.signed_by)
    .bind(now_millis())
    .bind(new.actor)
    .fetch_one(&db.pool)
    .await?;
    Ok(Saved::Id(id))
}

/// Whether an archive with this digest was ever uploaded.
pub async fn digest_known(db: &Db, digest: &str) -> sqlx::Result<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM rule_bundles WHERE digest = $1 LIMIT 1")
            .bind(digest)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.is_some())
}

pub async fn load_revision(
    db: &Db,
    name: &str,
    revision: &str,
) -> sqlx::Result<Option<(i64, Vec<u8>)>> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT id, archive FROM rule_bundles WHERE name = $1 AND revision = $2")
            .bind(name)
            .bind(revision)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.and_then(|(id, text)| STANDARD.decode(text).ok().map(|bytes| (id, bytes))))
}

pub async fn event(
    db: &Db,
    name: &str,
    revision: &str,
    action: &str,
    error: Option<&str>,
    actor: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO bundle_events (name, revision, action, error, actor, at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(name)
    .bind(revision)
    .bind(action)
    .bind(error.map(str::to_owned))
    .bind(actor)
    .bind(now_millis())
    .execute(&db.pool)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
pub struct ActiveRow {
    pub name: String,
    pub bundle_id: Option<i64>,
    pub revision: Option<String>,
    pub activated_at: i64,
    pub generation: i64,
}

/// Makes `revision` the active one (or none); returns the new generation.
pub async fn set_active(db: &Db, name: &str, active: Option<(i64, &str)>) -> sqlx::Result<i64> {
    let mut tx = db.pool.begin().await?;
    let current: Option<(i64,)> =
        sqlx::query_as("SELECT generation FROM bundle_state WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    let generation = current.map_or(1, |g| g.0 + 1);
    let (id, revision) = match active {
        Some((id, rev)) => (Some(id), Some(rev.to_string())),
        None => (None, None),
    };
    if current.is_some() {
        sqlx::query(
            "UPDATE bundle_state SET bundle_id = $1, revision = $2, activated_at = $3, generation = $4 WHERE name = $5",
        )
        .bind(id)
        .bind(revision)
        .bind(now_millis())
        .bind(generation)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query(
            "INSERT INTO bundle_state (name, bundle_id, revision, activated_at, generation) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(name)
        .bind(id)
        .bind(revision)
        .bind(now_millis())
        .bind(generation)
        .execute(&mut *tx)
        .await?;
    }
    if db.dialect == Dialect::Postgres {
        // Delivered on commit to every replica listening (see
        // `BundleManager::spawn_listener`); the periodic check covers a
        // lost message.
        notify::notify(&mut *tx, NOTIFY_CHANNEL, name).await?;
    }
    tx.commit().await?;
    Ok(generation)
}

pub async fn active(db: &Db) -> sqlx::Result<Vec<ActiveRow>> {
    sqlx::query_as(
        "SELECT name, bundle_id, revision, activated_at, generation FROM bundle_state ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionView {
    pub revision: String,
    pub digest: String,
    pub signed_by: Option<String>,
    pub uploaded_at: DateTime<Utc>,
    pub uploaded_by: String,
}

pub async fn revisions(db: &Db, name: &str) -> sqlx::Result<Vec<RevisionView>> {
    let rows: Vec<(String, String, Option<String>, i64, String)> = sqlx::query_as(
        "SELECT revision, digest, signed_by, uploaded_at, uploaded_by FROM rule_bundles WHERE name = $1 ORDER BY id",
    )
    .bind(name)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(revision, digest, signed_by, at, by)| RevisionView {
            revision,
            digest,
            signed_by,
            uploaded_at: millis_to_datetime(at),
            uploaded_by: by,
        })
        .collect())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub revision: String,
    /// activate, rollback, shadow, delete or refused (promoting a shadow
    /// is recorded as a rollback to its revision).
    pub action: String,
    pub error: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

pub async fn history(db: &Db, name: &str, limit: i64) -> sqlx::Result<Vec<EventView>> {
    let rows: Vec<(String, String, Option<String>, String, i64)> = sqlx::query_as(
        "SELECT revision, action, error, actor, at FROM bundle_events WHERE name = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(name)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(revision, action, error, actor, at)| EventView {
            revision,
            action,
            error,
            actor,
            at: millis_to_datetime(at),
        })
        .collect())
}
