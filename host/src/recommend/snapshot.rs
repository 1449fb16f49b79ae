//! The serving state of the recommender: trained models plus the id maps,
//! immutable once built and swapped atomically after a retrain. A request
//! takes one `Arc` to the snapshot and keeps it to the end, so a retrain
//! never changes a request half way through; the interaction table is read
//! only when training.

use std::{
    collections::HashMap,
    sync::Arc,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use recengine_models::{
    Algorithm, Models, ModelsConfig, TrainingData, content::ItemText, sparse::Csr,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::fleet;
use crate::features::Confidence;
use crate::store::{Db, model_snapshots, training};

/// Serialisable: the replica that trains stores it ([`fleet`]) and the
/// others load it.
#[derive(Serialize, Deserialize)]
pub struct Snapshot {
    /// 0 before the first models; then the version the database gave the
    /// stored snapshot, or +1 per retrain here when snapshots are off.
    pub version: u64,
    pub trained_at: DateTime<Utc>,
    pub models: Models,
    /// Column -> item id, and back.
    pub item_ids: Vec<i64>,
    pub item_index: HashMap<i64, u32>,
    /// User id -> row of the training matrix.
    pub user_index: HashMap<i64, u32>,
    /// Columns from most to least popular (users who interacted, then the
    /// item's stored `popularity_score`, then id): the cold-start list and
    /// the filler where a model has no evidence.
    pub popular_order: Vec<u32>,
    pub report: TrainingReport,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrainingReport {
    pub version: u64,
    pub trained_at: DateTime<Utc>,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    /// Reading users, items and interactions from the database.
    pub load_ms: f64,
    /// Training every model (they train in parallel).
    pub train_ms: f64,
    pub ease_trained: bool,
    /// Item-kNN kept as neighbour lists (a large catalogue) rather than
    /// dense rows.
    pub item_neighbour_lists: bool,
    /// The process's peak resident memory while loading and training, MiB
    /// (Linux; absent elsewhere).
    pub peak_rss_mb: Option<f64>,
    /// `trained` here, or loaded from a `snapshot` another replica (or this
    /// one before a restart) stored.
    pub source: String,
    /// The replica that trained these models.
    pub trained_by: String,
    /// The stored snapshot's size (absent when snapshots are off or the
    /// store failed).
    pub snapshot_bytes: Option<u64>,
}

impl Snapshot {
    /// Maps a user's (item id, confidence) list to model columns; items the
    /// snapshot does not know (created since) are left out.
    pub fn profile(&self, items: &[(i64, f32)]) -> Vec<(u32, f32)> {
        items
            .iter()
            .filter_map(|(id, w)| self.item_index.get(id).map(|&i| (i, *w)))
            .collect()
    }

    /// The cosine similarity of each item's TF-IDF vector to the content
    /// profile of `items` (item id, confidence), by item id; 0 for items
    /// this snapshot has not seen.
    pub fn content_similarity(&self, items: &[(i64, f32)]) -> impl Fn(i64) -> f64 + '_ {
        let profile = self.profile(items);
        let mut similarity = vec![0f32; self.models.n_items];
        self.models.content.score(&profile, &mut similarity);
        move |item_id| {
            self.item_index
                .get(&item_id)
                .map_or(0.0, |&i| f64::from(similarity[i as usize]))
        }
    }

    pub fn item_id(&self, column: usize) -> i64 {
        self.item_ids[column]
    }

    /// The `n` best columns for a profile with scores relative to the best
    /// (1). Where the model has no positive evidence, the remaining places
    /// go to popular items, scored below every real match, so business
    /// rules still have something to rank and their boosts act on
    /// non-zero scores.
    pub fn candidates(
        &self,
        algorithm: Algorithm,
        profile: &[(u32, f32)],
        own: Option<u32>,
        n: usize,
        keep: &dyn Fn(usize) -> bool,
    ) -> Vec<(usize, f64)> {
        let scored = self.models.recommend(algorithm, profile, own, n, keep);
        let best = scored.first().map_or(0.0, |c| f64::from(c.1));
        let mut out: Vec<(usize, f64)> = scored
            .into_iter()
            .filter(|&(_, s)| s > 0.0)
            .map(|(j, s)| (j, f64::from(s) / best))
            .collect();
        let floor = out.last().map_or(1.0, |&(_, s)| s / 2.0);
        let missing = n.saturating_sub(out.len());
        let taken: std::collections::HashSet<usize> = out.iter().map(|c| c.0).collect();
        let fillers: Vec<usize> = self
            .popular_order
            .iter()
            .map(|&j| j as usize)
            .filter(|&j| keep(j) && !taken.contains(&j))
            .take(missing)
            .collect();
        let m = fillers.len() as f64;
        out.extend(
            fillers
                .into_iter()
                .enumerate()
                .map(|(k, j)| (j, floor * (1.0 - k as f64 / (m + 1.0)))),
        );
        out
    }

    /// Trains every model on `rows` (the confidences already computed).
    /// Pure: the service feeds it from the database, `recengine eval` from
    /// an evaluation split.
    pub fn train(
        version: u64,
        rows: TrainingRows,
        config: ModelsConfig,
        load: Duration,
    ) -> Snapshot {
        let started = Instant::now();
        let item_index: HashMap<i64, u32> = rows
            .items
            .iter()
            .enumerate()
            .map(|(i, (id, _, _))| (*id, i as u32))
            .collect();
        // Rows in user id order, whatever order the rows were read in, so
        // the same data always trains the same models (neighbour ties go to
        // the lower row).
        let mut users: Vec<i64> = rows
            .interactions
            .iter()
            .filter(|(_, item, _, _)| item_index.contains_key(item))
            .map(|r| r.0)
            .collect();
        users.sort_unstable();
        users.dedup();
        let user_index: HashMap<i64, u32> = users
            .iter()
            .enumerate()
            .map(|(row, &id)| (id, row as u32))
            .collect();
        let mut triplets = Vec::with_capacity(rows.interactions.len());
        // (row, column) -> the latest interaction's time, for the periods
        // a user was active in.
        let mut latest: HashMap<(u32, u32), i64> = HashMap::new();
        for (user, item, confidence, at) in &rows.interactions {
            let Some(&column) = item_index.get(item) else {
                continue;
            };
            let row = user_index[user];
            triplets.push((row, column, *confidence));
            let t = latest.entry((row, column)).or_insert(*at);
            *t = (*t).max(*at);
        }
        let first = latest.values().copied().min().unwrap_or(0);
        let days = Csr::from_triplets(
            user_index.len(),
            item_index.len(),
            latest
                .into_iter()
                .map(|((r, c), at)| (r, c, (at - first) as f32 / 86_400_000.0))
                .collect(),
        );
        let mut x = Csr::from_triplets(user_index.len(), item_index.len(), triplets);
        x.values
            .iter_mut()
            .for_each(|v| *v = Confidence::combine(*v));
        let n_interactions = rows.interactions.len();
        let stored_popularity: Vec<f64> = rows.items.iter().map(|i| i.1).collect();
        let (item_ids, texts): (Vec<i64>, Vec<ItemText>) = rows
            .items
            .into_iter()
            .map(|(id, _, text)| (id, text))
            .unzip();
        let data = TrainingData {
            interactions: x,
            items: texts,
            days: Some(days),
        };
        let models = Models::train(&data, config);
        let mut popular_order: Vec<u32> = (0..item_ids.len() as u32).collect();
        popular_order.sort_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            models.popularity[b]
                .total_cmp(&models.popularity[a])
                .then(stored_popularity[b].total_cmp(&stored_popularity[a]))
                .then(a.cmp(&b))
        });
        let trained_at = Utc::now();
        let report = TrainingReport {
            version,
            trained_at,
            users: user_index.len(),
            items: item_ids.len(),
            interactions: n_interactions,
            load_ms: load.as_secs_f64() * 1e3,
            train_ms: started.elapsed().as_secs_f64() * 1e3,
            ease_trained: models.ease.is_some(),
            item_neighbour_lists: !models.item_knn.is_dense(),
            peak_rss_mb: None,
            source: "trained".into(),
            trained_by: String::new(),
            snapshot_bytes: None,
        };
        Snapshot {
            version,
            trained_at,
            models,
            item_ids,
            item_index,
            user_index,
            popular_order,
            report,
        }
    }
}

/// What training reads from the database (or an evaluation split).
pub struct TrainingRows {
    /// (id, stored popularity score, text).
    pub items: Vec<(i64, f64, ItemText)>,
    /// (user, item, confidence, time in ms) per interaction.
    pub interactions: Vec<(i64, i64, f32, i64)>,
}

async fn load(db: &Db, confidence: &Confidence) -> sqlx::Result<TrainingRows> {
    let items = training::items(db)
        .await?
        .into_iter()
        .map(|item| {
            let tags = serde_json::from_str(&item.tags).unwrap_or_default();
            (
                item.id,
                item.popularity_score,
                ItemText {
                    title: item.title,
                    description: item.description,
                    category: item.category,
                    tags,
                },
            )
        })
        .collect();
    let interactions = training::interactions(db)
        .await?
        .into_iter()
        .map(|x| {
            let confidence = confidence.of(&x.interaction_type, x.rating, x.weight);
            (x.user_id, x.item_id, confidence, x.created_at)
        })
        .collect();
    Ok(TrainingRows {
        items,
        interactions,
    })
}

/// Owns the current snapshot; retrains on demand, and shares what it
/// trains with the fleet (when `MODEL_SNAPSHOTS` is on).
pub struct Recommender {
    current: ArcSwap<Snapshot>,
    config: ModelsConfig,
    confidence: Confidence,
    versions: AtomicU64,
    /// One retrain or load at a time; a second caller waits and trains
    /// again on fresher data.
    training: tokio::sync::Mutex<()>,
    /// This replica's name, in the reports of what it trains.
    replica: String,
    /// The digest of the training settings, when snapshots are shared
    /// ([`fleet::settings_digest`]); `None`: this replica keeps its own.
    shared: Option<String>,
    /// The newest stored version found unusable here (other settings or
    /// layout), so it is reported once, not on every check.
    refused: AtomicU64,
}

impl Recommender {
    pub fn new(config: ModelsConfig, confidence: Confidence, share_snapshots: bool) -> Self {
        let empty = Snapshot::train(
            0,
            TrainingRows {
                items: Vec::new(),
                interactions: Vec::new(),
            },
            config.clone(),
            Duration::ZERO,
        );
        let shared = share_snapshots.then(|| fleet::settings_digest(&config, &confidence));
        Self {
            current: ArcSwap::from_pointee(empty),
            config,
            confidence,
            versions: AtomicU64::new(0),
            training: tokio::sync::Mutex::new(()),
            replica: fleet::replica_name(),
            shared,
            refused: AtomicU64::new(0),
        }
    }

    pub fn confidence(&self) -> &Confidence {
        &self.confidence
    }

    /// This replica's name in the fleet.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The snapshot to serve one request from.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Reads the interactions, trains every model off the async threads,
    /// stores the snapshot for the fleet, and swaps it in. Requests keep
    /// being served from the old one until the swap.
    pub async fn retrain(&self, db: &Db) -> anyhow::Result<TrainingReport> {
        let _one_at_a_time = self.training.lock().await;
        let started = Instant::now();
        crate::telemetry::memory::reset_peak();
        let rows = load(db, &self.confidence).await?;
        let load_time = started.elapsed();
        let version = self.versions.load(Ordering::SeqCst) + 1;
        let config = self.config.clone();
        let mut snapshot =
            tokio::task::spawn_blocking(move || Snapshot::train(version, rows, config, load_time))
                .await?;
        snapshot.report.trained_by = self.replica.clone();
        snapshot.report.peak_rss_mb =
            crate::telemetry::memory::peak_rss_bytes().map(|b| b as f64 / f64::from(1 << 20));
        let snapshot = match &self.shared {
            Some(settings) => self.store(db, snapshot, settings).await?,
            None => snapshot,
        };
        self.versions.fetch_max(snapshot.version, Ordering::SeqCst);
        let report = snapshot.report.clone();
        self.current.store(Arc::new(snapshot));
        tracing::info!(
            version = report.version,
            users = report.users,
            items = report.items,
            interactions = report.interactions,
            load_ms = report.load_ms,
            train_ms = report.train_ms,
            ease = report.ease_trained,
            peak_rss_mb = report.peak_rss_mb,
            snapshot_bytes = report.snapshot_bytes,
            "models retrained"
        );
        Ok(report)
    }

    /// Stores a freshly trained snapshot for the fleet; it takes the
    /// version the database gives it. If storing fails the models still
    /// serve here, under this replica's next version, and the failure is
    /// logged: the fleet keeps the previous snapshot until the next retrain.
    async fn store(&self, db: &Db, snapshot: Snapshot, settings: &str) -> anyhow::Result<Snapshot> {
        let (mut snapshot, bytes) = tokio::task::spawn_blocking(move || {
            let bytes = fleet::encode(&snapshot);
            (snapshot, bytes)
        })
        .await?;
        let bytes = bytes?;
        let sha256 = fleet::sha256_hex(&bytes);
        let saved = model_snapshots::save(
            db,
            &model_snapshots::NewSnapshot {
                format: fleet::FORMAT,
                settings,
                sha256: &sha256,
                trained_by: &self.replica,
                bytes: &bytes,
            },
        )
        .await;
        match saved {
            Ok(version) => {
                let version = version as u64;
                snapshot.version = version;
                snapshot.report.version = version;
                snapshot.report.snapshot_bytes = Some(bytes.len() as u64);
            }
            Err(e) => tracing::warn!(error = %e, "trained models not stored for the fleet"),
        }
        Ok(snapshot)
    }

    /// Loads the newest stored snapshot if it is newer than the one
    /// serving and was trained with this replica's settings; `None` when
    /// there is nothing to load. A snapshot that fails its checksum or
    /// does not decode is an error (the caller trains instead).
    pub async fn load_stored(&self, db: &Db) -> anyhow::Result<Option<TrainingReport>> {
        let Some(settings) = &self.shared else {
            return Ok(None);
        };
        let Some(stored) = model_snapshots::newest(db).await? else {
            return Ok(None);
        };
        let version = stored.version as u64;
        if version <= self.snapshot().version {
            return Ok(None);
        }
        if stored.format != fleet::FORMAT || &stored.settings != settings {
            if self.refused.swap(version, Ordering::SeqCst) != version {
                tracing::warn!(
                    version,
                    trained_by = stored.trained_by,
                    "stored models were trained with other settings or another layout; not loaded"
                );
            }
            return Ok(None);
        }
        let _one_at_a_time = self.training.lock().await;
        if version <= self.snapshot().version {
            return Ok(None);
        }
        let started = Instant::now();
        let Some(bytes) = model_snapshots::bytes(db, &stored).await? else {
            // Replaced while being read: the next check finds the newer one.
            return Ok(None);
        };
        anyhow::ensure!(
            fleet::sha256_hex(&bytes) == stored.sha256,
            "stored model snapshot {version} fails its checksum"
        );
        let mut snapshot = tokio::task::spawn_blocking(move || fleet::decode(&bytes)).await??;
        snapshot.version = version;
        snapshot.report.version = version;
        snapshot.report.source = "snapshot".into();
        snapshot.report.load_ms = started.elapsed().as_secs_f64() * 1e3;
        snapshot.report.snapshot_bytes = Some(stored.bytes as u64);
        self.versions.fetch_max(version, Ordering::SeqCst);
        let report = snapshot.report.clone();
        self.current.store(Arc::new(snapshot));
        tracing::info!(
            version,
            trained_by = report.trained_by,
            load_ms = report.load_ms,
            bytes = stored.bytes,
            "models loaded from the stored snapshot"
        );
        Ok(Some(report))
    }

    /// The first models: the newest stored snapshot when there is a usable
    /// one, else trained here (and stored). Nothing when models are
    /// serving already.
    pub async fn load_or_train(&self, db: &Db) -> anyhow::Result<TrainingReport> {
        match self.load_stored(db).await {
            Ok(Some(report)) => return Ok(report),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "stored models not loaded; training")
            }
        }
        let current = self.snapshot();
        if current.version > 0 {
            return Ok(current.report.clone());
        }
        self.retrain(db).await
    }
}
