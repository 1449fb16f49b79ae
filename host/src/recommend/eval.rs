//! The offline evaluation (`EVALUATION.md` in the design notes): MovieLens
//! 100K, top-10 ranking metrics, two protocols.
//!
//! - Random: the seeded per-user 80/20 split of the design notes, exact, so
//!   any implementation gets the same split; popularity is the sanity
//!   anchor.
//! - Time: one global cut at the 80th percentile of the timestamps; train
//!   on what came before, test on what followed, for users with training
//!   interactions (the others, cold, are scored apart).
//!
//! The served rows run the service's own path: the training rows become a
//! [`Snapshot`] through the same confidences, the users' profiles are built
//! as the feature store builds them, and each list is what
//! [`service::model_candidates`] answers for `GET
//! /recommendations/user/{id}` with the rules off. Only the database is
//! missing: the split feeds it instead.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::Path,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

use recengine_models::{
    Algorithm, ModelsConfig,
    als::{Als, AlsConfig},
    content::ItemText,
    sparse::Csr,
};

use super::{
    service,
    snapshot::{Snapshot, TrainingRows},
};
use crate::{
    config::Settings,
    data::{
        movielens::{MlItem, Rating},
        rng::splitmix64,
    },
    features::Confidence,
};

pub const SPLIT_SEED: u64 = 42;
/// The seed of the validation split carved out of a training part.
pub const VALIDATION_SEED: u64 = 43;
pub const K: usize = 10;

/// (user, item) pairs, one per rating.
pub type Pairs = Vec<(u32, u32)>;

/// The (user, item) pairs of some ratings, sorted.
pub fn pairs(ratings: &[Rating]) -> Pairs {
    let mut out: Pairs = ratings
        .iter()
        .map(|r| (r.user_id as u32, r.item_id as u32))
        .collect();
    out.sort_unstable();
    out
}

/// Per user: sort by (splitmix64(seed ^ (u << 32 | i)), i); the first
/// floor(n_u / 5) go to test. Both halves come back sorted by (u, i).
pub fn random_split(ratings: &[Rating], seed: u64) -> (Vec<Rating>, Vec<Rating>) {
    let mut by_user: BTreeMap<i64, Vec<Rating>> = BTreeMap::new();
    for r in ratings {
        by_user.entry(r.user_id).or_default().push(*r);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (u, mut rows) in by_user {
        let key = |i: i64| splitmix64(seed ^ (((u as u64) << 32) | i as u64));
        rows.sort_by_key(|r| (key(r.item_id), r.item_id));
        let n_test = rows.len() / 5;
        for (pos, r) in rows.into_iter().enumerate() {
            if pos < n_test {
                test.push(r);
            } else {
                train.push(r);
            }
        }
    }
    let by_pair = |a: &Rating, b: &Rating| (a.user_id, a.item_id).cmp(&(b.user_id, b.item_id));
    train.sort_by(by_pair);
    test.sort_by(by_pair);
    (train, test)
}

/// The time-ordered protocol's halves.
pub struct TimeSplit {
    /// The first timestamp of the test part.
    pub cut: i64,
    pub train: Vec<Rating>,
    /// Test rows of users with at least one training interaction.
    pub test: Vec<Rating>,
    /// Test rows of users who have none (cold start).
    pub cold: Vec<Rating>,
}

/// One global cut: the timestamp at position floor(0.8 · n) of all the
/// timestamps sorted; everything before it trains, the rest tests.
pub fn time_split(ratings: &[Rating]) -> TimeSplit {
    let mut stamps: Vec<i64> = ratings.iter().map(|r| r.timestamp).collect();
    stamps.sort_unstable();
    let cut = stamps.get(stamps.len() * 8 / 10).copied().unwrap_or(0);
    let (train, later): (Vec<Rating>, Vec<Rating>) =
        ratings.iter().partition(|r| r.timestamp < cut);
    let warm: HashSet<i64> = train.iter().map(|r| r.user_id).collect();
    let (test, cold) = later.into_iter().partition(|r| warm.contains(&r.user_id));
    TimeSplit {
        cut,
        train,
        test,
        cold,
    }
}

/// SHA-256 of the pairs written as `"{u}\t{i}\n"`, in order.
pub fn digest(pairs: &[(u32, u32)]) -> String {
    let mut h = Sha256::new();
    for (u, i) in pairs {
        h.update(format!("{u}\t{i}\n").as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    /// |union of the top-10 lists| / catalogue size.
    pub coverage: f64,
    /// Mean self-information of a recommended item, −log2(share of the
    /// training users who rated it): higher is less obvious.
    pub novelty: f64,
    /// Mean share of item pairs within a list whose categories differ.
    pub diversity: f64,
    pub users: usize,
}

/// What the beyond-accuracy metrics need to know about the catalogue.
pub struct Catalogue {
    /// Catalogue size (1,682 for ml-100k).
    pub n_items: usize,
    /// Item id -> category (the first genre, as the importer stores it).
    pub category: HashMap<u32, String>,
}

impl Catalogue {
    pub fn of(items: &[MlItem]) -> Self {
        Self {
            n_items: items.len(),
            category: items.iter().map(|i| (i.id as u32, i.category())).collect(),
        }
    }
}

/// Scores, for every user with test items, the top-10 list `list` gives
/// (the user's id in, item ids out, best first) against the test items.
pub fn evaluate_lists(
    train: &[(u32, u32)],
    test: &[(u32, u32)],
    catalogue: &Catalogue,
    mut list: impl FnMut(u32) -> Vec<u32>,
) -> Metrics {
    let mut raters: HashMap<u32, f64> = HashMap::new();
    for &(_, i) in train {
        *raters.entry(i).or_default() += 1.0;
    }
    let n_users = train.iter().map(|p| p.0).collect::<HashSet<_>>().len() as f64;
    let mut truth: BTreeMap<u32, HashSet<u32>> = BTreeMap::new();
    for &(u, i) in test {
        truth.entry(u).or_default().insert(i);
    }
    let (mut p, mut r, mut n, mut novelty, mut diversity) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut recommended = HashSet::new();
    for (&u, t) in &truth {
        let mut top = list(u);
        top.truncate(K);
        let hits: Vec<bool> = top.iter().map(|i| t.contains(i)).collect();
        let h = hits.iter().filter(|&&x| x).count() as f64;
        p += h / K as f64;
        r += h / t.len() as f64;
        let dcg: f64 = hits
            .iter()
            .enumerate()
            .filter(|(_, hit)| **hit)
            .map(|(k, _)| 1.0 / ((k + 2) as f64).log2())
            .sum();
        let idcg: f64 = (0..t.len().min(K))
            .map(|k| 1.0 / ((k + 2) as f64).log2())
            .sum();
        n += dcg / idcg;
        if !top.is_empty() {
            novelty += top
                .iter()
                .map(|i| -(raters.get(i).copied().unwrap_or(0.0).max(1.0) / n_users).log2())
                .sum::<f64>()
                / top.len() as f64;
        }
        let category = |i: &u32| catalogue.category.get(i);
        let (mut differ, mut total) = (0.0, 0.0);
        for (a, x) in top.iter().enumerate() {
            for y in &top[a + 1..] {
                total += 1.0;
                if category(x) != category(y) {
                    differ += 1.0;
                }
            }
        }
        if total > 0.0 {
            diversity += differ / total;
        }
        recommended.extend(top);
    }
    let m = truth.len().max(1) as f64;
    Metrics {
        precision: p / m,
        recall: r / m,
        ndcg: n / m,
        coverage: recommended.len() as f64 / catalogue.n_items.max(1) as f64,
        novelty: novelty / m,
        diversity: diversity / m,
        users: truth.len(),
    }
}

/// The protocol's own ranking, for the anchor and the reference models:
/// candidates are the items with any training interaction minus the
/// user's own, ranked by `score`, ties to the lower item id.
pub fn evaluate(
    train: &[(u32, u32)],
    test: &[(u32, u32)],
    catalogue: &Catalogue,
    mut score: impl FnMut(u32, &[u32]) -> Vec<f64>,
) -> Metrics {
    let mut candidates: Vec<u32> = train.iter().map(|p| p.1).collect();
    candidates.sort_unstable();
    candidates.dedup();
    let mut seen: HashMap<u32, HashSet<u32>> = HashMap::new();
    for &(u, i) in train {
        seen.entry(u).or_default().insert(i);
    }
    let none = HashSet::new();
    evaluate_lists(train, test, catalogue, |u| {
        let own = seen.get(&u).unwrap_or(&none);
        let pool: Vec<u32> = candidates
            .iter()
            .copied()
            .filter(|i| !own.contains(i))
            .collect();
        let scores = score(u, &pool);
        let mut order: Vec<usize> = (0..pool.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(pool[a].cmp(&pool[b])));
        order.iter().take(K).map(|&x| pool[x]).collect()
    })
}

/// Popularity: an item's score is its number of training interactions.
pub fn popularity_scorer(train: &[(u32, u32)]) -> impl FnMut(u32, &[u32]) -> Vec<f64> {
    let mut counts: HashMap<u32, f64> = HashMap::new();
    for &(_, i) in train {
        *counts.entry(i).or_insert(0.0) += 1.0;
    }
    move |_, pool: &[u32]| {
        pool.iter()
            .map(|i| counts.get(i).copied().unwrap_or(0.0))
            .collect()
    }
}

/// The service, fed from a split: the snapshot `POST /models/retrain` would
/// train on these ratings (imported as `rating` interactions), and every
/// user's profile as the feature store would build it.
pub struct Served {
    pub snapshot: Snapshot,
    pub profiles: HashMap<i64, Vec<(i64, f32)>>,
}

impl Served {
    pub fn train(
        ratings: &[Rating],
        items: &[MlItem],
        confidence: &Confidence,
        config: ModelsConfig,
    ) -> Served {
        let confidence_of = |r: &Rating| confidence.of("rating", Some(r.rating), 1.0);
        // The importer stores each item's number of interactions as its
        // popularity score.
        let mut stored: HashMap<i64, f64> = HashMap::new();
        for r in ratings {
            *stored.entry(r.item_id).or_default() += 1.0;
        }
        let mut items: Vec<(i64, f64, ItemText)> = items
            .iter()
            .map(|i| (i.id, stored.get(&i.id).copied().unwrap_or(0.0), i.text()))
            .collect();
        items.sort_by_key(|i| i.0);
        let rows = TrainingRows {
            items,
            interactions: ratings
                .iter()
                .map(|r| (r.user_id, r.item_id, confidence_of(r), r.timestamp * 1000))
                .collect(),
        };
        // As the feature store: confidences per item add up, then combine.
        let mut sums: HashMap<i64, BTreeMap<i64, f32>> = HashMap::new();
        for r in ratings {
            *sums
                .entry(r.user_id)
                .or_default()
                .entry(r.item_id)
                .or_default() += confidence_of(r);
        }
        let profiles = sums
            .into_iter()
            .map(|(u, items)| {
                let profile = items
                    .into_iter()
                    .map(|(i, w)| (i, Confidence::combine(w)))
                    .collect();
                (u, profile)
            })
            .collect();
        Served {
            snapshot: Snapshot::train(1, rows, config, Duration::ZERO),
            profiles,
        }
    }

    /// What `GET /recommendations/user/{user}?top_n={n}` returns with the
    /// rules off: item ids, best first.
    pub fn list(&self, algorithm: Algorithm, user: i64, n: usize) -> Vec<i64> {
        let profile = self.profiles.get(&user).map_or(&[][..], Vec::as_slice);
        service::model_candidates(&self.snapshot, algorithm, user, profile, n, true)
            .scored
            .into_iter()
            .take(n)
            .map(|(j, _)| self.snapshot.item_id(j))
            .collect()
    }

    pub fn evaluate(
        &self,
        algorithm: Algorithm,
        train: &[(u32, u32)],
        test: &[(u32, u32)],
        catalogue: &Catalogue,
    ) -> Metrics {
        evaluate_lists(train, test, catalogue, |u| {
            self.list(algorithm, i64::from(u), K)
                .into_iter()
                .map(|i| i as u32)
                .collect()
        })
    }

    /// Time per user of the served path over every user with a profile,
    /// on `threads` threads.
    pub fn recommendation_time(&self, algorithm: Algorithm, threads: usize) -> Duration {
        let users: Vec<i64> = self.profiles.keys().copied().collect();
        let started = Instant::now();
        std::thread::scope(|s| {
            for chunk in users.chunks(users.len().div_ceil(threads.max(1)).max(1)) {
                s.spawn(move || {
                    for &u in chunk {
                        std::hint::black_box(self.list(algorithm, u, K));
                    }
                });
            }
        });
        started.elapsed() / users.len().max(1) as u32
    }
}

/// Implicit ALS on a split, the matrix-factorisation reference (not
/// served: it folds in no new users). Returns the model and its training
/// time.
pub fn train_als(train: &[(u32, u32)], config: AlsConfig) -> (Als, Duration, usize) {
    let n_users = train.iter().map(|p| p.0 as usize + 1).max().unwrap_or(0);
    let n_items = train.iter().map(|p| p.1 as usize + 1).max().unwrap_or(0);
    let x = Csr::from_triplets(
        n_users,
        n_items,
        train.iter().map(|&(u, i)| (u, i, 1.0)).collect(),
    );
    let started = Instant::now();
    let als = Als::train(&x, config);
    (als, started.elapsed(), n_items)
}

/// A scorer for [`evaluate`] from the ALS factors of the user's own row.
pub fn als_scorer(als: &Als, n_items: usize) -> impl FnMut(u32, &[u32]) -> Vec<f64> + '_ {
    move |u, pool| {
        let mut scores = vec![0f32; n_items];
        als.score(&[], Some(u), &mut scores);
        pool.iter()
            .map(|&i| f64::from(scores.get(i as usize).copied().unwrap_or(0.0)))
            .collect()
    }
}

/// One protocol's table, printed: every API algorithm through the served
/// path, the ALS reference and the popularity anchor through the
/// protocol's ranking.
fn print_protocol(
    name: &str,
    train: &[Rating],
    test: &[Rating],
    items: &[MlItem],
    settings: &Settings,
) -> Vec<(&'static str, Metrics)> {
    let (train_pairs, test_pairs) = (pairs(train), pairs(test));
    let catalogue = Catalogue::of(items);
    let confidence = Confidence::from_settings(settings);
    let served = Served::train(train, items, &confidence, settings.models_config());
    let times = served.snapshot.models.times;
    let (als, als_time, n_items) = train_als(&train_pairs, AlsConfig::default());
    println!(
        "{name}: training on {} rows: served models {:.0} ms in all (co-occurrence {:.0} ms, EASE {:.0} ms, item-kNN {:.0} ms, user-kNN {:.0} ms; TF-IDF, periods and ALS {:.0} ms on a second thread); ALS reference {:.0} ms",
        train.len(),
        served.snapshot.report.train_ms,
        times.gram.as_secs_f64() * 1e3,
        times.ease.as_secs_f64() * 1e3,
        times.item_knn.as_secs_f64() * 1e3,
        times.user_knn.as_secs_f64() * 1e3,
        times.content.as_secs_f64() * 1e3,
        als_time.as_secs_f64() * 1e3,
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{:<24} {:>6} {:>6} {:>8} {:>9} {:>8} {:>10} {:>12} {:>12}",
        "algorithm",
        "P@10",
        "R@10",
        "NDCG@10",
        "coverage",
        "novelty",
        "diversity",
        "µs/user (1)",
        format!("µs/user ({threads})")
    );
    let row = |name: &str, m: &Metrics, one: f64, all: f64| {
        println!(
            "{name:<24} {:>6.3} {:>6.3} {:>8.3} {:>9.3} {:>8.2} {:>10.3} {one:>12.1} {all:>12.1}",
            m.precision, m.recall, m.ndcg, m.coverage, m.novelty, m.diversity
        )
    };
    let mut out = Vec::new();
    // The blend's optional parts, alone, when the settings train them.
    let models = &served.snapshot.models;
    let blended = [("als (in the blend)", Algorithm::Als, models.als.is_some())];
    let evaluated = super::algorithms::EVALUATED.iter().copied().chain(
        blended
            .into_iter()
            .filter(|b| b.2)
            .map(|(label, algorithm, _)| (label, algorithm)),
    );
    for (label, algorithm) in evaluated {
        let m = served.evaluate(algorithm, &train_pairs, &test_pairs, &catalogue);
        let one = served.recommendation_time(algorithm, 1);
        let all = served.recommendation_time(algorithm, threads);
        row(label, &m, one.as_secs_f64() * 1e6, all.as_secs_f64() * 1e6);
        out.push((label, m));
    }
    let m = evaluate(
        &train_pairs,
        &test_pairs,
        &catalogue,
        als_scorer(&als, n_items),
    );
    row("als (reference)", &m, f64::NAN, f64::NAN);
    out.push(("als (reference)", m));
    let m = evaluate(
        &train_pairs,
        &test_pairs,
        &catalogue,
        popularity_scorer(&train_pairs),
    );
    row("popularity (anchor)", &m, f64::NAN, f64::NAN);
    out.push(("popularity (anchor)", m));
    out
}

/// One model setting the validation search tries, and how to set it.
type Knob = (&'static str, Vec<f64>, fn(&mut Settings, f64));

fn knobs() -> Vec<Knob> {
    vec![
        ("HYBRID_ALS", vec![0.0, 0.5, 1.0, 2.0, 3.0, 4.0], |s, v| {
            s.hybrid_als = v as f32
        }),
        ("ALS_ALPHA", vec![0.0, 5.0, 10.0, 20.0, 40.0], |s, v| {
            s.als_alpha = v as f32
        }),
        (
            "ALS_REGULARIZATION",
            vec![10.0, 30.0, 50.0, 100.0],
            |s, v| s.als_regularization = v as f32,
        ),
        ("ALS_FACTORS", vec![32.0, 48.0, 64.0, 128.0], |s, v| {
            s.als_factors = v as u32
        }),
        ("ALS_ITERATIONS", vec![10.0, 15.0, 25.0], |s, v| {
            s.als_iterations = v as u32
        }),
        ("HYBRID_SEQUENCE", vec![0.0, 0.5, 1.0, 2.0, 3.0], |s, v| {
            s.hybrid_sequence = v as f32
        }),
        (
            "SEQUENCE_FLOOR",
            vec![0.0, 0.05, 0.1, 0.2, 0.3, 0.5],
            |s, v| s.sequence_floor = v as f32,
        ),
        (
            "SEQUENCE_RECENCY_DAYS",
            vec![1.0, 3.0, 7.0, 30.0],
            |s, v| s.sequence_recency_days = v as f32,
        ),
        ("SEQUENCE_WINDOW", vec![1.0, 3.0, 5.0, 10.0], |s, v| {
            s.sequence_window = v as u32
        }),
        (
            "HYBRID_TEMPORAL",
            vec![0.0, 0.1, 0.2, 0.3, 0.5, 0.8],
            |s, v| s.hybrid_temporal = v as f32,
        ),
        (
            "TEMPORAL_BUCKET_DAYS",
            vec![1.0, 3.0, 7.0, 14.0, 30.0],
            |s, v| s.temporal_bucket_days = v as f32,
        ),
        ("RATINGS_AS_WEIGHTS", vec![0.0, 1.0], |s, v| {
            s.ratings_as_weights = v > 0.0
        }),
        (
            "EASE_LAMBDA",
            vec![100.0, 200.0, 300.0, 400.0, 500.0, 700.0],
            |s, v| s.ease_lambda = v as f32,
        ),
        (
            "EASE_DROPOUT",
            vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
            |s, v| s.ease_dropout = v as f32,
        ),
        (
            "HYBRID_ALPHA",
            vec![0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
            |s, v| s.hybrid_alpha = v,
        ),
        (
            "HYBRID_CONTENT_FADE",
            vec![0.0, 10.0, 25.0, 50.0, 100.0],
            |s, v| s.hybrid_content_fade = v as f32,
        ),
        ("HYBRID_USER_KNN", vec![0.0, 0.1, 0.2, 0.3, 0.5], |s, v| {
            s.hybrid_user_knn = v as f32
        }),
        ("HYBRID_ITEM_KNN", vec![0.0, 0.1, 0.2, 0.3, 0.5], |s, v| {
            s.hybrid_item_knn = v as f32
        }),
        (
            "COLLABORATIVE_K_NEIGHBORS",
            vec![30.0, 50.0, 80.0, 120.0],
            |s, v| s.collaborative_k_neighbors = v as u32,
        ),
    ]
}

/// The search the model defaults come from, on two validation splits,
/// neither of which reads a test part: the random split's training part
/// split again (the same per-user 80/20 rule, seed [`VALIDATION_SEED`]),
/// and the time split's training part cut again at its own 80th
/// percentile. One setting at a time moves over its values, keeping the
/// best, two rounds. Best is the highest NDCG@10 of the served default on
/// the random validation among the settings whose default is, on the time
/// validation, at least as good as EASE with the same settings (the time
/// protocol's bar; ALS is printed beside it, but on this validation it is
/// above every served model, so a bar there would leave nothing to
/// choose). Returns the tuned settings.
/// What `recengine eval` searches before the test tables.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub tune: bool,
    /// Only these knobs (env names); empty: all.
    pub knobs: Vec<String>,
    pub rounds: u32,
    /// Random validation splits (seeds from [`VALIDATION_SEED`]) whose
    /// NDCG@10 is averaged.
    pub seeds: u32,
    /// No test tables after the search.
    pub validation_only: bool,
}

pub fn tune(
    train: &[Rating],
    time_train: &[Rating],
    items: &[MlItem],
    settings: &Settings,
    search: &Search,
) -> Settings {
    // One random validation split per seed, from VALIDATION_SEED on.
    let splits: Vec<(Vec<Rating>, Pairs, Pairs)> = (0..u64::from(search.seeds.max(1)))
        .map(|k| {
            let (fit, validation) = random_split(train, VALIDATION_SEED + k);
            let (fit_pairs, validation_pairs) = (pairs(&fit), pairs(&validation));
            (fit, fit_pairs, validation_pairs)
        })
        .collect();
    let (fit, validation) = random_split(train, VALIDATION_SEED);
    let later = time_split(time_train);
    let (later_fit, later_validation) = (pairs(&later.train), pairs(&later.test));
    let catalogue = Catalogue::of(items);
    let default = Algorithm::Hybrid(settings.hybrid_method);
    let (als, _, n_items) = train_als(&later_fit, AlsConfig::default());
    let als = evaluate(
        &later_fit,
        &later_validation,
        &catalogue,
        als_scorer(&als, n_items),
    )
    .ndcg;
    // (random validation, time validation, EASE on the time validation)
    let score = |s: &Settings| {
        let confidence = Confidence::from_settings(s);
        let random = splits
            .iter()
            .map(|(fit, fit_pairs, validation_pairs)| {
                Served::train(fit, items, &confidence, s.models_config())
                    .evaluate(default, fit_pairs, validation_pairs, &catalogue)
                    .ndcg
            })
            .sum::<f64>()
            / splits.len() as f64;
        let served = Served::train(&later.train, items, &confidence, s.models_config());
        let time = served
            .evaluate(default, &later_fit, &later_validation, &catalogue)
            .ndcg;
        let ease = served
            .evaluate(Algorithm::Ease, &later_fit, &later_validation, &catalogue)
            .ndcg;
        (random, time, ease)
    };
    let meets = |(_, time, ease): (f64, f64, f64)| time >= ease - 1e-9;
    let mut best = settings.clone();
    let mut best_score = score(&best);
    println!(
        "validation: random {} rows fit, {} validate (NDCG@10 the mean of {} seeds from {VALIDATION_SEED}); time {} fit, {} validate (ALS {als:.4}); the current settings score NDCG@10 {:.4} (time {:.4}, EASE {:.4})",
        fit.len(),
        validation.len(),
        splits.len(),
        later.train.len(),
        later.test.len(),
        best_score.0,
        best_score.1,
        best_score.2,
    );
    let chosen = knobs()
        .into_iter()
        .filter(|k| search.knobs.is_empty() || search.knobs.iter().any(|n| n == k.0));
    let chosen: Vec<Knob> = chosen.collect();
    for round in 1..=search.rounds {
        for (name, values, set) in chosen.iter().cloned() {
            let mut line = format!("round {round} {name:<26}");
            for v in values {
                let mut s = best.clone();
                set(&mut s, v);
                let got = score(&s);
                line.push_str(&format!(" {v}: {:.4} ({:.4}/{:.4})", got.0, got.1, got.2));
                let better = match (meets(got), meets(best_score)) {
                    (true, true) => got.0 > best_score.0 + 1e-9,
                    (true, false) => true,
                    (false, true) => false,
                    (false, false) => got.1 - got.2 > best_score.1 - best_score.2,
                };
                if better {
                    best_score = got;
                    best = s;
                }
            }
            println!("{line}");
        }
    }
    println!(
        "best on validation: NDCG@10 {:.4} (time {:.4}, EASE {:.4}, ALS {als:.4}) with RATINGS_AS_WEIGHTS={} EASE_LAMBDA={} EASE_DROPOUT={} HYBRID_ALPHA={} HYBRID_CONTENT_FADE={} HYBRID_USER_KNN={} HYBRID_ITEM_KNN={} HYBRID_TEMPORAL={} TEMPORAL_BUCKET_DAYS={} HYBRID_SEQUENCE={} SEQUENCE_FLOOR={} SEQUENCE_RECENCY_DAYS={} SEQUENCE_WINDOW={} COLLABORATIVE_K_NEIGHBORS={}",
        best_score.0,
        best_score.1,
        best_score.2,
        best.ratings_as_weights,
        best.ease_lambda,
        best.ease_dropout,
        best.hybrid_alpha,
        best.hybrid_content_fade,
        best.hybrid_user_knn,
        best.hybrid_item_knn,
        best.hybrid_temporal,
        best.temporal_bucket_days,
        best.hybrid_sequence,
        best.sequence_floor,
        best.sequence_recency_days,
        best.sequence_window,
        best.collaborative_k_neighbors,
    );
    println!(
        "  HYBRID_ALS={} ALS_ALPHA={} ALS_REGULARIZATION={} ALS_FACTORS={} ALS_ITERATIONS={}",
        best.hybrid_als,
        best.als_alpha,
        best.als_regularization,
        best.als_factors,
        best.als_iterations,
    );
    println!();
    best
}

/// `recengine eval`: both protocols' tables; with `tune`, the validation
/// search the defaults come from first.
pub fn run(dir: &Path, settings: &Settings, search: &Search) -> anyhow::Result<()> {
    let data = crate::data::movielens::read_dataset(dir)?;
    let (train, test) = random_split(&data.ratings, SPLIT_SEED);
    let time = time_split(&data.ratings);
    let tuned;
    let settings = if search.tune {
        tuned = self::tune(&train, &time.train, &data.items, settings, search);
        if search.validation_only {
            return Ok(());
        }
        &tuned
    } else {
        settings
    };
    println!(
        "random split: {} train ({}), {} test ({})",
        train.len(),
        digest(&pairs(&train)),
        test.len(),
        digest(&pairs(&test))
    );
    print_protocol("random split", &train, &test, &data.items, settings);
    println!();
    println!(
        "time split at {}: {} train ({}), {} test ({}) for {} users; {} cold users with {} test rows",
        time.cut,
        time.train.len(),
        digest(&pairs(&time.train)),
        time.test.len(),
        digest(&pairs(&time.test)),
        time.test
            .iter()
            .map(|r| r.user_id)
            .collect::<HashSet<_>>()
            .len(),
        time.cold
            .iter()
            .map(|r| r.user_id)
            .collect::<HashSet<_>>()
            .len(),
        time.cold.len(),
    );
    print_protocol("time split", &time.train, &time.test, &data.items, settings);
    // Cold users get the popularity fallback whatever the algorithm.
    let served = Served::train(
        &time.train,
        &data.items,
        &Confidence::from_settings(settings),
        settings.models_config(),
    );
    let m = served.evaluate(
        Algorithm::Popularity,
        &pairs(&time.train),
        &pairs(&time.cold),
        &Catalogue::of(&data.items),
    );
    println!(
        "cold users (served the popularity fallback): {} users, P@10 {:.3}, R@10 {:.3}, NDCG@10 {:.3}",
        m.users, m.precision, m.recall, m.ndcg
    );
    // What a retrain of the whole data set costs the service.
    let all = Served::train(
        &data.ratings,
        &data.items,
        &Confidence::from_settings(settings),
        settings.models_config(),
    );
    let times = all.snapshot.models.times;
    println!(
        "all {} ratings: served models trained in {:.0} ms (co-occurrence {:.0} ms, EASE {:.0} ms, item-kNN {:.0} ms, user-kNN {:.0} ms; TF-IDF, periods, transitions and ALS {:.0} ms on a second thread)",
        data.ratings.len(),
        all.snapshot.report.train_ms,
        times.gram.as_secs_f64() * 1e3,
        times.ease.as_secs_f64() * 1e3,
        times.item_knn.as_secs_f64() * 1e3,
        times.user_knn.as_secs_f64() * 1e3,
        times.content.as_secs_f64() * 1e3,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    pub(crate) fn ml100k() -> crate::data::movielens::Dataset {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ml-100k");
        crate::data::movielens::read_dataset(&dir).unwrap()
    }

    #[test]
    fn the_split_reproduces_the_protocol_hashes() {
        let (train, test) = random_split(&ml100k().ratings, SPLIT_SEED);
        assert_eq!((train.len(), test.len()), (80_367, 19_633));
        assert_eq!(
            digest(&pairs(&train)),
            "a0ed89b368fca852f065ea534041c4b94cc01d4d71f3e64aecb3c5390e4cccc5"
        );
        assert_eq!(
            digest(&pairs(&test)),
            "a27708c71b6443660a8172dfaf23946b26baf9f5b067ca907218dbe3284a9724"
        );
    }

    #[test]
    fn popularity_reproduces_the_sanity_anchor() {
        let data = ml100k();
        let (train, test) = random_split(&data.ratings, SPLIT_SEED);
        let (train, test) = (pairs(&train), pairs(&test));
        let catalogue = Catalogue::of(&data.items);
        let m = evaluate(&train, &test, &catalogue, popularity_scorer(&train));
        assert_eq!(m.users, 943);
        let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
        assert_eq!(r3(m.precision), 0.189);
        assert_eq!(r3(m.recall), 0.120);
        assert_eq!(r3(m.ndcg), 0.221);
        assert_eq!((m.coverage * 100.0).round() / 100.0, 0.03);
    }

    #[test]
    fn the_time_split_reproduces_its_hashes() {
        let split = time_split(&ml100k().ratings);
        assert_eq!(split.cut, 889_237_269);
        assert_eq!(
            (split.train.len(), split.test.len(), split.cold.len()),
            (79_999, 2_953, 17_048)
        );
        assert!(split.train.iter().all(|r| r.timestamp < split.cut));
        assert!(
            split
                .test
                .iter()
                .chain(&split.cold)
                .all(|r| r.timestamp >= split.cut)
        );
        assert_eq!(
            digest(&pairs(&split.train)),
            "9f4a9ce76c7d2f80d1a90507466880abd7be51bdc31c3a6b18a1171d6a01e2f0"
        );
        assert_eq!(
            digest(&pairs(&split.test)),
            "5853b56c992f4286cd4c08b70952e2ef209c06f5f1271621d558896af8ed42e3"
        );
    }

    /// The bar of the project, on the served path with the service's
    /// default settings, at the figures the README shows (less the
    /// rounding): a change that serves worse lists fails the build. On
    /// the time split the default must also beat the ALS reference.
    /// The served default's NDCG@10 on the random and the time split, as
    /// the README shows them, less the rounding.
    const RANDOM_BAR: f64 = 0.450;
    const TIME_BAR: f64 = 0.185;

    #[test]
    fn the_quality_bar_holds() {
        let data = ml100k();
        let settings = crate::config::Settings::for_tests("sqlite::memory:");
        let confidence = Confidence::from_settings(&settings);
        let catalogue = Catalogue::of(&data.items);
        let default = Algorithm::Hybrid(settings.hybrid_method);

        let (train, test) = random_split(&data.ratings, SPLIT_SEED);
        let (train_pairs, test_pairs) = (pairs(&train), pairs(&test));
        let served = Served::train(&train, &data.items, &confidence, settings.models_config());
        for (algorithm, bar) in [
            (default, RANDOM_BAR),
            (Algorithm::Ease, 0.437),
            (Algorithm::ItemKnn, 0.364),
            (Algorithm::UserKnn, 0.400),
        ] {
            let m = served.evaluate(algorithm, &train_pairs, &test_pairs, &catalogue);
            assert!(
                m.ndcg >= bar,
                "random split, {algorithm:?}: NDCG@10 {:.4} < {bar}",
                m.ndcg
            );
        }

        let split = time_split(&data.ratings);
        let (train_pairs, test_pairs) = (pairs(&split.train), pairs(&split.test));
        let served = Served::train(
            &split.train,
            &data.items,
            &confidence,
            settings.models_config(),
        );
        let (als, _, n_items) = train_als(&train_pairs, AlsConfig::default());
        let als = evaluate(
            &train_pairs,
            &test_pairs,
            &catalogue,
            als_scorer(&als, n_items),
        )
        .ndcg;
        let served_default = served
            .evaluate(default, &train_pairs, &test_pairs, &catalogue)
            .ndcg;
        assert!(
            served_default >= TIME_BAR && served_default >= als,
            "time split: the default's NDCG@10 {served_default:.4} < {TIME_BAR} or ALS {als:.4}"
        );
    }
}
