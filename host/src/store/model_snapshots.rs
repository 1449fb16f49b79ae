//! The model snapshot tables: one row per stored snapshot
//! (`model_snapshots`) and its bytes in chunks (`model_snapshot_chunks`),
//! so no single value approaches a driver's or a server's size limit and
//! a snapshot of any size streams through bounded buffers.

use super::{Db, Dialect, notify, now_millis};

/// The PostgreSQL channel a stored snapshot is announced on (the payload
/// is its version).
pub const NOTIFY_CHANNEL: &str = "recengine_models";

/// Bytes per stored chunk.
pub const CHUNK_BYTES: usize = 4 << 20;

/// Snapshots kept: the newest and the one before it (a replica may still
/// be reading it when the next one lands).
const KEEP: i64 = 2;

/// A stored snapshot's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub version: i64,
    pub format: i32,
    pub settings: String,
    pub bytes: i64,
    pub sha256: String,
    pub trained_by: String,
}

/// A snapshot to store: everything but the version, which the database
/// assigns.
pub struct NewSnapshot<'a> {
    pub format: i32,
    pub settings: &'a str,
    pub sha256: &'a str,
    pub trained_by: &'a str,
    pub bytes: &'a [u8],
}

/// Stores a snapshot under the next version, drops the ones it makes
/// obsolete and (on PostgreSQL) announces it, all in one transaction: a
/// reader sees the whole snapshot or none of it. Two replicas storing at
/// once would take the same number; the second insert fails on the key and
/// takes the next one.
pub async fn save(db: &Db, new: &NewSnapshot<'_>) -> sqlx::Result<i64> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_save(db, new).await {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() && attempt < 5 => continue,
            result => return result,
        }
    }
}

async fn try_save(db: &Db, new: &NewSnapshot<'_>) -> sqlx::Result<i64> {
    let mut tx = db.pool.begin().await?;
    let (version,): (i64,) =
        sqlx::query_as("SELECT CAST(COALESCE(MAX(version), 0) + 1 AS BIGINT) FROM model_snapshots")
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query(
        "INSERT INTO model_snapshots (version, format, settings, bytes, sha256, trained_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(version)
    .bind(new.format)
    .bind(new.settings)
    .bind(new.bytes.len() as i64)
    .bind(new.sha256)
    .bind(new.trained_by)
    .bind(now_millis())
    .execute(&mut *tx)
    .await?;
    for (seq, chunk) in new.bytes.chunks(CHUNK_BYTES).enumerate() {
        sqlx::query("INSERT INTO model_snapshot_chunks (version, seq, data) VALUES ($1, $2, $3)")
            .bind(version)
            .bind(seq as i32)
            .bind(chunk)
            .execute(&mut *tx)
            .await?;
    }
    // Chunks go with their row (ON DELETE CASCADE).
    sqlx::query("DELETE FROM model_snapshots WHERE version <= $1")
        .bind(version - KEEP)
        .execute(&mut *tx)
        .await?;
    if db.dialect == Dialect::Postgres {
        notify::notify(&mut *tx, NOTIFY_CHANNEL, &version.to_string()).await?;
    }
    tx.commit().await?;
    Ok(version)
}

/// The newest stored snapshot, if any.
pub async fn newest(db: &Db) -> sqlx::Result<Option<StoredSnapshot>> {
    let row: Option<(i64, i32, String, i64, String, String)> = sqlx::query_as(
        "SELECT version, format, settings, bytes, sha256, trained_by FROM model_snapshots \
         ORDER BY version DESC LIMIT 1",
    )
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(
        |(version, format, settings, bytes, sha256, trained_by)| StoredSnapshot {
            version,
            format,
            settings,
            bytes,
            sha256,
            trained_by,
        },
    ))
}

/// The bytes of snapshot `version`, chunk by chunk; `None` if it is gone
/// (a newer one replaced it meanwhile) or its chunks do not add up.
pub async fn bytes(db: &Db, stored: &StoredSnapshot) -> sqlx::Result<Option<Vec<u8>>> {
    let Ok(total) = usize::try_from(stored.bytes) else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(total);
    let mut seq = 0i32;
    // One chunk per query: memory is the snapshot plus one chunk.
    loop {
        let chunk: Option<(Vec<u8>,)> = sqlx::query_as(
            "SELECT data FROM model_snapshot_chunks WHERE version = $1 AND seq = $2",
        )
        .bind(stored.version)
        .bind(seq)
        .fetch_optional(&db.pool)
        .await?;
        let Some((chunk,)) = chunk else { break };
        if out.len() + chunk.len() > total {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
        seq += 1;
    }
    Ok((out.len() == total).then_some(out))
}
