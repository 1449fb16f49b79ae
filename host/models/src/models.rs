//! The trained model set: every algorithm the service offers, trained from
//! one [`TrainingData`] and immutable afterwards (the host swaps whole sets).

use std::time::{Duration, Instant};

use crate::{
    Profile,
    als::{Als, AlsConfig},
    content::{Content, ItemText},
    ease::Ease,
    hybrid,
    knn::{self, ItemKnn, UserKnn},
    sequence::Sequence,
    sparse::Csr,
    temporal::Temporal,
    topn::top_n,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum HybridMethod {
    /// `alpha · collaborative + (1 − alpha) · content`, scores normalised.
    Weighted,
    /// Reciprocal-rank fusion with the same alpha.
    Rank,
    /// Collaborative where it has evidence, content for the rest.
    Cascade,
}

impl HybridMethod {
    pub const ALL: [HybridMethod; 3] = [Self::Weighted, Self::Rank, Self::Cascade];

    /// Its name in the API (`hybrid_method=`) and in `HYBRID_METHOD`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Weighted => "weighted",
            Self::Rank => "rank",
            Self::Cascade => "cascade",
        }
    }

    /// The method with this [`name`](Self::name).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// How many users interacted with the item.
    Popularity,
    ItemKnn,
    UserKnn,
    Ease,
    /// The strongest collaborative model trained (EASE, or item-kNN when
    /// the catalogue is too large for EASE).
    Collaborative,
    ContentBased,
    /// Implicit ALS, trained only when it counts in the weighted hybrid.
    Als,
    Hybrid(HybridMethod),
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ModelsConfig {
    /// Neighbours per user in user-kNN.
    pub user_neighbours: usize,
    /// Power the user-kNN neighbour similarities are raised to.
    pub user_similarity_exponent: f32,
    /// Neighbours kept per item in item-kNN (`None`: all).
    pub item_neighbours: Option<usize>,
    pub ease_lambda: f32,
    /// EASE's emphasized-denoising dropout (0: plain EASE); see [`Ease::train`].
    pub ease_dropout: f32,
    /// EASE inverts an items² matrix; above this many items it is skipped.
    pub ease_max_items: usize,
    /// What the items x items matrices of training may take, bytes: the
    /// co-occurrence matrix, EASE and dense item-kNN need about
    /// [`DENSE_BYTES_PER_PAIR`] bytes an item pair; a catalogue too large
    /// for that trains sparse item-kNN instead (neighbour lists, memory
    /// linear in items) and no EASE.
    pub training_memory_bytes: usize,
    /// Neighbours kept per item when item-kNN is trained sparse and
    /// `item_neighbours` is `None`.
    pub sparse_item_neighbours: usize,
    /// In a catalogue trained sparse, the users each item reaches in
    /// user-kNN's neighbour search (see [`UserKnn::train`]).
    pub sparse_item_users: usize,
    /// In a catalogue trained sparse, user-kNN's neighbour search for a
    /// request visits about this many (item, user) pairs at most.
    pub sparse_user_visits: usize,
    /// In a catalogue trained sparse, a hybrid recommendation scores only
    /// a bounded pool of candidates: the profile's best this many item-kNN
    /// neighbours ...
    pub sparse_candidates: usize,
    /// ... and the this many most popular items.
    pub sparse_popular_candidates: usize,
    /// The collaborative share of the weighted and rank hybrids.
    pub hybrid_alpha: f32,
    /// In the weighted hybrid, the number of interacting users at which an
    /// item's content share has halved (0: a fixed share).
    pub hybrid_content_fade: f32,
    /// In the weighted hybrid, user-kNN's and item-kNN's weight next to the
    /// strongest collaborative model's 1 (each normalised to its best
    /// candidate) in the collaborative part.
    pub hybrid_user_knn: f32,
    pub hybrid_item_knn: f32,
    /// In the weighted hybrid, the weight of popularity in the user's own
    /// periods of activity ([`Temporal`]) in the collaborative part.
    pub hybrid_temporal: f32,
    /// The length of those periods, days.
    pub temporal_bucket_days: f32,
    /// In the weighted hybrid, the weight of the item-to-item transitions
    /// ([`Sequence`]) in the collaborative part.
    pub hybrid_sequence: f32,
    /// How many steps apart in a history two interactions still link
    /// their items.
    pub sequence_window: usize,
    /// A profile item's transitions fall by a factor e for each this many
    /// days it predates the user's latest interaction ...
    pub sequence_recency_days: f32,
    /// ... down to this share.
    pub sequence_floor: f32,
    /// In the weighted hybrid, the weight of implicit ALS in the
    /// collaborative part; its factors, iterations and λ, and the α of its
    /// confidences `1 + α · x`.
    pub hybrid_als: f32,
    pub als_factors: usize,
    pub als_iterations: usize,
    pub als_regularization: f32,
    pub als_alpha: f32,
}

/// The service's defaults (chosen on a validation split; see the README).
impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            user_neighbours: 50,
            user_similarity_exponent: 2.0,
            item_neighbours: None,
            ease_lambda: 500.0,
            ease_dropout: 0.5,
            ease_max_items: 20_000,
            training_memory_bytes: 2 << 30,
            sparse_item_neighbours: 200,
            sparse_item_users: 1_000,
            sparse_user_visits: 20_000,
            sparse_candidates: 2_000,
            sparse_popular_candidates: 200,
            hybrid_alpha: 0.7,
            hybrid_content_fade: 100.0,
            hybrid_user_knn: 0.0,
            hybrid_item_knn: 0.5,
            hybrid_temporal: 0.8,
            temporal_bucket_days: 30.0,
            hybrid_sequence: 0.0,
            sequence_window: 3,
            sequence_recency_days: 3.0,
            sequence_floor: 0.0,
            hybrid_als: 3.0,
            als_factors: 32,
            als_iterations: 10,
            als_regularization: 50.0,
            als_alpha: 10.0,
        }
    }
}

impl ModelsConfig {
    /// The ALS configuration of the served blend.
    fn als(&self) -> AlsConfig {
        AlsConfig {
            factors: self.als_factors,
            iterations: self.als_iterations,
            regularization: self.als_regularization,
            ..AlsConfig::default()
        }
    }
}

/// What the models learn from: users x items confidences, and every item's
/// text (including items nobody has touched yet).
pub struct TrainingData {
    pub interactions: Csr,
    pub items: Vec<ItemText>,
    /// The same users x items, holding the day of each interaction (from
    /// the earliest), when the times are known.
    pub days: Option<Csr>,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct TrainingTimes {
    pub gram: Duration,
    pub ease: Duration,
    pub item_knn: Duration,
    pub user_knn: Duration,
    /// TF-IDF, the period histograms, the transitions and ALS (on their
    /// own thread; the last two only when blended).
    pub content: Duration,
    /// Wall time of the whole training (the parts overlap on two threads).
    pub total: Duration,
}

/// Bytes a dense training needs per item pair: XᵀX (f32), EASE's f64
/// system and its inverse, EASE's weights and item-kNN's dense rows (f32).
pub const DENSE_BYTES_PER_PAIR: usize = 4 + 8 + 8 + 4 + 4;

impl ModelsConfig {
    /// Whether a catalogue of `n_items` trains the dense items x items
    /// models (co-occurrence matrix, EASE) within the memory budget.
    pub fn trains_dense(&self, n_items: usize) -> bool {
        n_items <= self.ease_max_items
            && n_items
                .saturating_mul(n_items)
                .saturating_mul(DENSE_BYTES_PER_PAIR)
                <= self.training_memory_bytes
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Models {
    pub config: ModelsConfig,
    pub n_items: usize,
    /// Users per item in the training data.
    pub popularity: Vec<f32>,
    pub item_knn: ItemKnn,
    pub user_knn: UserKnn,
    pub ease: Option<Ease>,
    pub content: Content,
    pub temporal: Option<Temporal>,
    pub sequence: Option<Sequence>,
    pub als: Option<Als>,
    pub times: TrainingTimes,
    /// The most popular items, best first, when the catalogue was trained
    /// sparse: hybrid recommendations then score a bounded pool (these and
    /// the profile's item-kNN neighbours) instead of every item.
    pub popular_pool: Option<Vec<u32>>,
}

/// Each algorithm's part in one item's score for one profile.
#[derive(Debug, Clone, Default)]
pub struct Explanation {
    /// (algorithm, raw score, score normalised over the candidates, the
    /// item's rank among the candidates, 1-based).
    pub parts: Vec<(Algorithm, f32, f32, usize)>,
    /// The profile items that pulled this item up most in item-kNN, with
    /// their contribution.
    pub because_of: Vec<(u32, f32)>,
}

/// What a score vector holds: an entry per catalogue item, or, in a large
/// catalogue's recommendation, an entry per candidate of its pool (entry
/// `k` is item `items[k]`), so no pass over the scores visits the rest of
/// the catalogue.
#[derive(Clone, Copy)]
enum Entries<'a> {
    Catalogue,
    /// With the pool's item-kNN scores, already computed to choose it.
    Pool {
        items: &'a [u32],
        item_knn: &'a [f32],
    },
}

impl<'a> Entries<'a> {
    fn len(self, n_items: usize) -> usize {
        match self {
            Entries::Catalogue => n_items,
            Entries::Pool { items, .. } => items.len(),
        }
    }

    /// The pool's items, or `None` for the whole catalogue.
    fn pool(self) -> Option<&'a [u32]> {
        match self {
            Entries::Catalogue => None,
            Entries::Pool { items, .. } => Some(items),
        }
    }

    /// A value per item, as entries.
    fn gather(self, every_item: &[f32]) -> Vec<f32> {
        match self {
            Entries::Catalogue => every_item.to_vec(),
            Entries::Pool { items, .. } => items.iter().map(|&j| every_item[j as usize]).collect(),
        }
    }

    /// [`Self::gather`], taking the whole catalogue's vector as it is.
    fn take(self, every_item: Vec<f32>) -> Vec<f32> {
        match self {
            Entries::Catalogue => every_item,
            Entries::Pool { .. } => self.gather(&every_item),
        }
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

impl Models {
    /// Trains everything; the content model and the period histograms on
    /// one thread while the collaborative ones share the co-occurrence
    /// matrix on another.
    pub fn train(data: &TrainingData, config: ModelsConfig) -> Models {
        let start = Instant::now();
        let x = &data.interactions;
        let n_items = x.n_cols.max(data.items.len());
        let dense = config.trains_dense(n_items);
        let mut popularity = vec![0f32; n_items];
        for &i in &x.indices {
            popularity[i as usize] += 1.0;
        }
        let (
            (content, content_time),
            (gram_time, item_knn, item_time, ease, ease_time, user_knn, user_time),
        ) = std::thread::scope(|s| {
            let content = s.spawn(|| {
                timed(|| {
                    let temporal = data
                        .days
                        .as_ref()
                        .map(|d| Temporal::train(d, config.temporal_bucket_days));
                    // Trained only when it counts in the blend.
                    let sequence = data
                        .days
                        .as_ref()
                        .filter(|_| config.hybrid_sequence > 0.0)
                        .map(|d| {
                            Sequence::train(
                                d,
                                config.sequence_window,
                                config.sequence_recency_days,
                                config.sequence_floor,
                            )
                        });
                    // Confidences 1 + α·x: with α = 0 every interaction
                    // counts 1, the protocol's reference configuration.
                    let als = (config.hybrid_als > 0.0).then(|| {
                        let mut c = x.clone();
                        c.values
                            .iter_mut()
                            .for_each(|v| *v = 1.0 + config.als_alpha * *v);
                        Als::train(&c, config.als())
                    });
                    (Content::train(&data.items), temporal, sequence, als)
                })
            });
            let (item_knn, ease, gram_time, item_time, ease_time) = if dense {
                let (g, gram_time) = timed(|| knn::gram(x));
                let (item_knn, item_time) = timed(|| ItemKnn::train(&g, config.item_neighbours));
                let (ease, ease_time) =
                    timed(|| Ease::train(&g, config.ease_lambda, config.ease_dropout));
                (item_knn, ease, gram_time, item_time, ease_time)
            } else {
                let k = config
                    .item_neighbours
                    .unwrap_or(config.sparse_item_neighbours)
                    .max(1);
                // One worker: the content models train beside it, and the
                // other core is left to requests.
                let (item_knn, item_time) = timed(|| ItemKnn::train_sparse(x, k, 1));
                (item_knn, None, Duration::ZERO, item_time, Duration::ZERO)
            };
            let (user_knn, user_time) = timed(|| {
                // Bounded reach only where the catalogue is large (the
                // small one keeps every user: its quality is measured so).
                let reach = (!dense).then_some(config.sparse_item_users);
                UserKnn::train(
                    x,
                    config.user_neighbours,
                    config.user_similarity_exponent,
                    reach,
                )
            });
            (
                content.join().expect("content training does not panic"),
                (
                    gram_time, item_knn, item_time, ease, ease_time, user_knn, user_time,
                ),
            )
        });
        let (content, temporal, sequence, als) = content;
        let times = TrainingTimes {
            gram: gram_time,
            ease: ease_time,
            item_knn: item_time,
            user_knn: user_time,
            content: content_time,
            total: start.elapsed(),
        };
        let popular_pool = (!dense).then(|| {
            crate::topn::top_n(&popularity, config.sparse_popular_candidates, |_| true)
                .into_iter()
                .map(|(j, _)| j as u32)
                .collect()
        });
        Models {
            config,
            n_items,
            popular_pool,
            popularity,
            item_knn,
            user_knn,
            ease,
            content,
            temporal,
            sequence,
            als,
            times,
        }
    }

    /// The model behind `Collaborative`.
    pub fn collaborative(&self) -> Algorithm {
        if self.ease.is_some() {
            Algorithm::Ease
        } else {
            Algorithm::ItemKnn
        }
    }

    /// Raw scores of every item for a profile. `own` is the profile's row in
    /// the training data, if it has one; `keep` marks the candidates.
    pub fn scores(
        &self,
        algorithm: Algorithm,
        profile: &Profile,
        own: Option<u32>,
        keep: &dyn Fn(usize) -> bool,
    ) -> Vec<f32> {
        self.scores_in(algorithm, profile, own, keep, Entries::Catalogue)
    }

    /// A large catalogue's bounded candidate pool for a hybrid
    /// recommendation: the profile's best item-kNN neighbours and the most
    /// popular items; `None` where every item is scored (a catalogue small
    /// enough to train dense, or another algorithm).
    pub fn candidate_pool(&self, algorithm: Algorithm, profile: &Profile) -> Option<Vec<u32>> {
        self.pool_with_item_knn(algorithm, profile)
            .map(|(pool, _)| pool)
    }

    /// [`Self::candidate_pool`], ascending, with the pool's item-kNN scores
    /// in the same order (the pool is chosen by them, and the blend needs
    /// them again).
    fn pool_with_item_knn(
        &self,
        algorithm: Algorithm,
        profile: &Profile,
    ) -> Option<(Vec<u32>, Vec<f32>)> {
        let popular = self.popular_pool.as_ref()?;
        if !matches!(algorithm, Algorithm::Hybrid(_)) {
            return None;
        }
        let mut neighbours = vec![0f32; self.n_items];
        self.item_knn.score(profile, &mut neighbours);
        let mut reached: Vec<(usize, f32)> = neighbours
            .iter()
            .enumerate()
            .filter(|&(_, &s)| s > 0.0)
            .map(|(j, &s)| (j, s))
            .collect();
        // The best neighbours in no order, then the pool in column order,
        // marked on a bitmap: no sort of the pool.
        let n = self.config.sparse_candidates;
        if reached.len() > n {
            if n == 0 {
                reached.clear();
            } else {
                reached
                    .select_nth_unstable_by(n - 1, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                reached.truncate(n);
            }
        }
        let mut in_pool = vec![false; self.n_items];
        for j in reached
            .iter()
            .map(|&(j, _)| j)
            .chain(popular.iter().map(|&j| j as usize))
        {
            in_pool[j] = true;
        }
        let pool: Vec<u32> = (0..self.n_items as u32)
            .filter(|&j| in_pool[j as usize])
            .collect();
        let item_knn = pool.iter().map(|&j| neighbours[j as usize]).collect();
        Some((pool, item_knn))
    }

    /// Raw scores of the `entries` for a profile: a vector with one score
    /// per entry, which `keep` (asked by entry) marks as candidates.
    fn scores_in(
        &self,
        algorithm: Algorithm,
        profile: &Profile,
        own: Option<u32>,
        keep: &dyn Fn(usize) -> bool,
        entries: Entries,
    ) -> Vec<f32> {
        let only = entries.pool();
        // The models that scatter a profile over their neighbours score
        // every item, then the pool's entries are kept.
        let scattered = |score: &dyn Fn(&mut [f32])| {
            let mut out = vec![0f32; self.n_items];
            score(&mut out);
            entries.take(out)
        };
        match algorithm {
            Algorithm::Popularity => entries.gather(&self.popularity),
            Algorithm::ItemKnn => match entries {
                Entries::Pool { item_knn, .. } => item_knn.to_vec(),
                Entries::Catalogue => scattered(&|out| self.item_knn.score(profile, out)),
            },
            Algorithm::UserKnn => {
                // A large catalogue bounds the neighbour search.
                let visits = self
                    .popular_pool
                    .is_some()
                    .then_some(self.config.sparse_user_visits);
                scattered(&|out| self.user_knn.score(profile, own, visits, out))
            }
            Algorithm::Ease => match &self.ease {
                Some(ease) => scattered(&|out| ease.score(profile, out)),
                None => self.scores_in(Algorithm::ItemKnn, profile, own, keep, entries),
            },
            Algorithm::Collaborative => {
                self.scores_in(self.collaborative(), profile, own, keep, entries)
            }
            Algorithm::ContentBased => {
                let mut out = vec![0f32; entries.len(self.n_items)];
                self.content.score_only(profile, only, &mut out);
                out
            }
            Algorithm::Als => {
                let mut out = vec![0f32; entries.len(self.n_items)];
                if let Some(als) = &self.als {
                    // ALS's folded-in profile weighs as in training.
                    let confidences: Vec<(u32, f32)> = profile
                        .iter()
                        .map(|&(i, w)| (i, 1.0 + self.config.als_alpha * w))
                        .collect();
                    als.score_or_fold_in_only(&confidences, own, only, &mut out);
                }
                out
            }
            Algorithm::Hybrid(method) => {
                let mut cf = self.scores_in(Algorithm::Collaborative, profile, own, keep, entries);
                if method == HybridMethod::Weighted {
                    cf = self.collaborative_blend(cf, profile, own, keep, entries);
                }
                let content = self.scores_in(Algorithm::ContentBased, profile, own, keep, entries);
                let alpha = self.config.hybrid_alpha;
                match method {
                    HybridMethod::Weighted => hybrid::weighted(
                        cf,
                        content,
                        alpha,
                        self.config.hybrid_content_fade,
                        &entries.gather(&self.popularity),
                        keep,
                    ),
                    HybridMethod::Rank => hybrid::rank(&cf, &content, alpha),
                    HybridMethod::Cascade => hybrid::cascade(cf, content, keep),
                }
            }
        }
    }

    /// The weighted hybrid's collaborative part: the strongest model's
    /// scores plus the kNN models', ALS's, the user's period popularity and
    /// the transitions at their configured weights, each normalised to its
    /// best candidate first.
    fn collaborative_blend(
        &self,
        mut cf: Vec<f32>,
        profile: &Profile,
        own: Option<u32>,
        keep: &dyn Fn(usize) -> bool,
        entries: Entries,
    ) -> Vec<f32> {
        enum Part {
            Model(Algorithm),
            Temporal,
            Sequence,
        }
        let parts = [
            (Part::Model(Algorithm::UserKnn), self.config.hybrid_user_knn),
            (Part::Model(Algorithm::ItemKnn), self.config.hybrid_item_knn),
            (Part::Model(Algorithm::Als), self.config.hybrid_als),
            (Part::Temporal, self.config.hybrid_temporal),
            (Part::Sequence, self.config.hybrid_sequence),
        ];
        if parts.iter().all(|&(_, w)| w <= 0.0) {
            return cf;
        }
        hybrid::normalize_by_max(&mut cf, keep);
        for (algorithm, w) in parts {
            if w > 0.0 {
                let mut s = match algorithm {
                    Part::Model(algorithm) => {
                        self.scores_in(algorithm, profile, own, keep, entries)
                    }
                    Part::Temporal => {
                        let mut s = vec![0f32; entries.len(self.n_items)];
                        if let Some(temporal) = &self.temporal {
                            temporal.score_only(own, entries.pool(), &mut s);
                        }
                        s
                    }
                    Part::Sequence => {
                        let mut s = vec![0f32; self.n_items];
                        if let Some(sequence) = &self.sequence {
                            sequence.score(profile, own, &mut s);
                        }
                        entries.take(s)
                    }
                };
                hybrid::normalize_by_max(&mut s, keep);
                cf.iter_mut().zip(&s).for_each(|(c, s)| *c += w * s);
            }
        }
        cf
    }

    /// The `n` best candidates for a profile; items in the profile are
    /// candidates only if `keep` says so. In a large catalogue a hybrid
    /// scores only the [`candidate_pool`](Self::candidate_pool), so its
    /// cost follows the profile, not the catalogue.
    pub fn recommend(
        &self,
        algorithm: Algorithm,
        profile: &Profile,
        own: Option<u32>,
        n: usize,
        keep: &dyn Fn(usize) -> bool,
    ) -> Vec<(usize, f32)> {
        let Some((pool, item_knn)) = self.pool_with_item_knn(algorithm, profile) else {
            let scores = self.scores(algorithm, profile, own, keep);
            return top_n(&scores, n, keep);
        };
        // Every vector from here on has one entry per pool item.
        let entries = Entries::Pool {
            items: &pool,
            item_knn: &item_knn,
        };
        let keep = |k: usize| keep(pool[k] as usize);
        let scores = self.scores_in(algorithm, profile, own, &keep, entries);
        top_n(&scores, n, keep)
            .into_iter()
            .map(|(k, s)| (pool[k] as usize, s))
            .collect()
    }

    /// Items most like item `i`: the hybrid of item-kNN (co-interaction)
    /// and content similarity, so items without interactions have
    /// neighbours too. Scores in [0, 1].
    pub fn similar_items(&self, i: usize, n: usize) -> Vec<(usize, f32)> {
        let mut cf = vec![0f32; self.n_items];
        self.item_knn.similarities(i, &mut cf);
        let mut content = vec![0f32; self.n_items];
        self.content.similarities(i, &mut content);
        let has_cf = cf.iter().any(|&s| s > 0.0);
        let alpha = if has_cf {
            self.config.hybrid_alpha
        } else {
            0.0
        };
        let blended: Vec<f32> = cf
            .iter()
            .zip(&content)
            .map(|(c, t)| (alpha * c + (1.0 - alpha) * t).clamp(0.0, 1.0))
            .collect();
        top_n(&blended, n, |j| j != i && blended[j] > 0.0)
    }

    /// How each algorithm scores `item` for the profile, and which profile
    /// items it owes its item-kNN score to.
    pub fn explain(
        &self,
        profile: &Profile,
        own: Option<u32>,
        item: usize,
        keep: &dyn Fn(usize) -> bool,
        hybrid: HybridMethod,
    ) -> Explanation {
        let algorithms = [
            Algorithm::Hybrid(hybrid),
            self.collaborative(),
            Algorithm::ItemKnn,
            Algorithm::UserKnn,
            Algorithm::ContentBased,
            Algorithm::Popularity,
        ];
        let mut parts = Vec::new();
        for algorithm in algorithms {
            let raw = self.scores(algorithm, profile, own, keep);
            let rank = crate::topn::ranks(&raw);
            let candidates_ahead = (0..raw.len())
                .filter(|&j| keep(j) && rank[j] < rank[item])
                .count();
            let mut normalised = raw.clone();
            hybrid::normalize_by_max(&mut normalised, keep);
            parts.push((algorithm, raw[item], normalised[item], candidates_ahead + 1));
        }
        let mut because_of: Vec<(u32, f32)> = profile
            .iter()
            .filter_map(|&(i, w)| {
                self.item_knn
                    .similarity(i as usize, item)
                    .map(|s| (i, w * s))
            })
            .collect();
        because_of.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        because_of.truncate(5);
        Explanation { parts, because_of }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 200 users over 40 items in four blocks of ten: users of a block
    /// take items of that block.
    fn blocks() -> TrainingData {
        let mut t = Vec::new();
        for u in 0..200u32 {
            let block = u % 4;
            for step in 0..6 {
                t.push((u, block * 10 + (u / 4 + step * 3) % 10, 1.0));
            }
        }
        let items = (0..40)
            .map(|i| ItemText {
                title: format!("item {i}"),
                description: String::new(),
                category: format!("block{}", i / 10),
                tags: Vec::new(),
            })
            .collect();
        TrainingData {
            interactions: Csr::from_triplets(200, 40, t),
            items,
            days: None,
        }
    }

    #[test]
    fn a_pool_scores_as_the_whole_catalogue_would_at_the_pools_items() {
        let data = blocks();
        let sparse = Models::train(
            &data,
            ModelsConfig {
                training_memory_bytes: 0,
                sparse_item_neighbours: 5,
                sparse_candidates: 8,
                sparse_popular_candidates: 3,
                // The default λ leaves so few ratings near-zero factors,
                // whose scores are mostly rounding.
                als_regularization: 0.5,
                ..ModelsConfig::default()
            },
        );
        let profile = [(0u32, 1.0f32), (3, 0.5), (12, 1.0)];
        let seen = |j: usize| j != 0 && j != 3 && j != 12;
        // (Rank fusion ranks among the entries scored, so its scores differ.)
        for method in [HybridMethod::Weighted, HybridMethod::Cascade] {
            let hybrid = Algorithm::Hybrid(method);
            let (pool, item_knn) = sparse.pool_with_item_knn(hybrid, &profile).unwrap();
            let entries = Entries::Pool {
                items: &pool,
                item_knn: &item_knn,
            };
            let pooled = sparse.scores_in(
                hybrid,
                &profile,
                Some(7),
                &|k| seen(pool[k] as usize),
                entries,
            );
            let in_pool = |j: usize| pool.contains(&(j as u32)) && seen(j);
            let whole = sparse.scores(hybrid, &profile, Some(7), &in_pool);
            assert_eq!(pooled.len(), pool.len());
            for (k, &j) in pool.iter().enumerate().filter(|&(_, &j)| seen(j as usize)) {
                assert!(
                    (pooled[k] - whole[j as usize]).abs() < 1e-5,
                    "{method:?}, item {j}: {} vs {}",
                    pooled[k],
                    whole[j as usize]
                );
            }
        }
    }

    #[test]
    fn a_catalogue_beyond_the_memory_budget_trains_sparse_neighbours_and_no_ease() {
        let data = blocks();
        let dense = Models::train(&data, ModelsConfig::default());
        assert!(dense.ease.is_some());
        let budget = ModelsConfig {
            // Room for 39² pairs, not 40².
            training_memory_bytes: 39 * 39 * DENSE_BYTES_PER_PAIR,
            sparse_item_neighbours: 5,
            sparse_candidates: 8,
            sparse_popular_candidates: 2,
            ..ModelsConfig::default()
        };
        assert!(!budget.trains_dense(40) && budget.trains_dense(39));
        let sparse = Models::train(&data, budget);
        assert!(sparse.ease.is_none());
        assert_eq!(sparse.collaborative(), Algorithm::ItemKnn);
        for i in 0..40 {
            let mut s = vec![0f32; 40];
            sparse.item_knn.similarities(i, &mut s);
            let kept = s.iter().filter(|&&s| s > 0.0).count();
            assert!((1..=5).contains(&kept), "item {i} keeps {kept}");
        }
        // Still recommends within the profile's block.
        let profile = [(0u32, 1.0f32), (3, 1.0)];
        let hybrid = Algorithm::Hybrid(HybridMethod::Weighted);
        assert!(dense.candidate_pool(hybrid, &profile).is_none());
        assert!(sparse.candidate_pool(Algorithm::Ease, &profile).is_none());
        let pool = sparse.candidate_pool(hybrid, &profile).unwrap();
        assert!(pool.len() <= 8 + 2, "{pool:?}");
        let top = sparse.recommend(hybrid, &profile, None, 10, &|_| true);
        assert!(
            top.iter().all(|&(j, _)| pool.contains(&(j as u32))),
            "only the pool is scored: {top:?} vs {pool:?}"
        );
        for algorithm in [
            Algorithm::Collaborative,
            Algorithm::Hybrid(HybridMethod::Weighted),
        ] {
            let top = sparse.recommend(algorithm, &profile, None, 5, &|j| j != 0 && j != 3);
            assert_eq!(top.len(), 5);
            assert!(top.iter().all(|&(j, _)| j < 10), "{algorithm:?}: {top:?}");
        }
    }
}
