//! The offline evaluation protocol (`EVALUATION.md` in the design notes):
//! MovieLens 100K as implicit feedback, a seeded per-user 80/20 split,
//! top-10 ranking metrics. Exact, so any implementation following it gets
//! the same split and comparable numbers; popularity is the sanity anchor.

use std::{collections::HashMap, path::Path};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use recengine_models::{Algorithm, Models, TrainingData, content::ItemText, sparse::Csr};

use crate::data::{movielens::MlItem, rng::splitmix64};

pub const SPLIT_SEED: u64 = 42;
pub const K: usize = 10;

/// (user, item) pairs, one per rating.
pub type Pairs = Vec<(u32, u32)>;

pub fn load_interactions(path: &Path) -> anyhow::Result<Pairs> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut pairs = Vec::with_capacity(100_000);
    for (n, line) in text.lines().enumerate().skip(1) {
        let mut f = line.split('\t');
        let (Some(u), Some(i)) = (f.next(), f.next()) else {
            continue;
        };
        let u: u32 = u
            .trim()
            .parse()
            .with_context(|| format!("line {}", n + 1))?;
        let i: u32 = i
            .trim()
            .parse()
            .with_context(|| format!("line {}", n + 1))?;
        pairs.push((u, i));
    }
    Ok(pairs)
}

/// Per user: sort by (splitmix64(42 ^ (u << 32 | i)), i); the first
/// floor(n_u / 5) go to test. Both halves come back sorted by (u, i).
pub fn split(pairs: &[(u32, u32)]) -> (Pairs, Pairs) {
    let mut by_user: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(u, i) in pairs {
        by_user.entry(u).or_default().push(i);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (u, mut items) in by_user {
        let key = |i: u32| splitmix64(SPLIT_SEED ^ ((u64::from(u) << 32) | u64::from(i)));
        items.sort_by_key(|&i| (key(i), i));
        let n_test = items.len() / 5;
        for (pos, i) in items.into_iter().enumerate() {
            if pos < n_test {
                test.push((u, i));
            } else {
                train.push((u, i));
            }
        }
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
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
    pub coverage: f64,
    pub users: usize,
}

/// Ranks, for every user with test items, the candidates (items with any
/// training interaction, minus the user's own) by `score`, highest first,
/// ties to the lower item id; scores the top 10 against the test items.
/// `n_items` is the catalogue size used for coverage (1,682 for ml-100k).
pub fn evaluate(
    train: &[(u32, u32)],
    test: &[(u32, u32)],
    n_items: usize,
    mut score: impl FnMut(u32, &[u32]) -> Vec<f64>,
) -> Metrics {
    let mut candidates: Vec<u32> = train.iter().map(|p| p.1).collect();
    candidates.sort_unstable();
    candidates.dedup();
    let mut seen: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(u, i) in train {
        seen.entry(u).or_default().push(i);
    }
    let mut truth: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(u, i) in test {
        truth.entry(u).or_default().push(i);
    }
    let mut users: Vec<u32> = truth.keys().copied().collect();
    users.sort_unstable();
    let (mut p, mut r, mut n) = (0.0, 0.0, 0.0);
    let mut recommended = std::collections::HashSet::new();
    for &u in &users {
        let own = seen.get(&u).cloned().unwrap_or_default();
        let pool: Vec<u32> = candidates
            .iter()
            .copied()
            .filter(|i| own.binary_search(i).is_err())
            .collect();
        let scores = score(u, &pool);
        let mut order: Vec<usize> = (0..pool.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(pool[a].cmp(&pool[b])));
        let top: Vec<u32> = order.iter().take(K).map(|&x| pool[x]).collect();
        let t = &truth[&u];
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
        recommended.extend(top);
    }
    let m = users.len() as f64;
    Metrics {
        precision: p / m,
        recall: r / m,
        ndcg: n / m,
        coverage: recommended.len() as f64 / n_items as f64,
        users: users.len(),
    }
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

/// The training half as the models see it: user and item ids are used as
/// row and column indices directly (ml-100k's ids are dense from 1), every
/// pair counts 1, and each item carries the text the importer stores.
pub fn training_data(train: &[(u32, u32)], items: &[MlItem]) -> TrainingData {
    let n_users = train.iter().map(|p| p.0 as usize + 1).max().unwrap_or(0);
    let max_item = items.iter().map(|i| i.id as usize).max().unwrap_or(0);
    let n_items = train
        .iter()
        .map(|p| p.1 as usize)
        .max()
        .unwrap_or(0)
        .max(max_item)
        + 1;
    let mut texts = vec![ItemText::default(); n_items];
    for item in items {
        texts[item.id as usize] = item.text();
    }
    let triplets = train.iter().map(|&(u, i)| (u, i, 1.0)).collect();
    TrainingData {
        interactions: Csr::from_triplets(n_users, n_items, triplets),
        items: texts,
    }
}

/// A scorer for [`evaluate`] backed by a trained model: the user's training
/// row is the profile, the pool is the candidate set the normalisations see.
pub fn model_scorer<'a>(
    models: &'a Models,
    algorithm: Algorithm,
    data: &'a TrainingData,
) -> impl FnMut(u32, &[u32]) -> Vec<f64> + 'a {
    move |u, pool| {
        let profile = profile_of(data, u);
        let mut candidate = vec![false; models.n_items];
        for &i in pool {
            candidate[i as usize] = true;
        }
        let scores = models.scores(algorithm, &profile, Some(u), &|j| candidate[j]);
        pool.iter()
            .map(|&i| f64::from(scores[i as usize]))
            .collect()
    }
}

fn profile_of(data: &TrainingData, u: u32) -> Vec<(u32, f32)> {
    let x = &data.interactions;
    if u as usize >= x.n_rows {
        return Vec::new();
    }
    let (items, values) = x.row(u as usize);
    items.iter().copied().zip(values.iter().copied()).collect()
}

/// Top-10 lists for every user on `threads` threads; returns the time per
/// user. What a batch job (or a busy server) sees.
pub fn recommendation_time(
    models: &Models,
    algorithm: Algorithm,
    data: &TrainingData,
    threads: usize,
) -> std::time::Duration {
    let users: Vec<u32> = (0..data.interactions.n_rows as u32)
        .filter(|&u| data.interactions.row_len(u as usize) > 0)
        .collect();
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for chunk in users.chunks(users.len().div_ceil(threads.max(1)).max(1)) {
            s.spawn(move || {
                for &u in chunk {
                    let profile = profile_of(data, u);
                    let seen: std::collections::HashSet<u32> =
                        profile.iter().map(|p| p.0).collect();
                    let keep = |j: usize| !seen.contains(&(j as u32)) && models.popularity[j] > 0.0;
                    std::hint::black_box(models.recommend(algorithm, &profile, Some(u), K, &keep));
                }
            });
        }
    });
    started.elapsed() / users.len().max(1) as u32
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn ml100k() -> Vec<(u32, u32)> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/ml-100k/ml-100k.inter");
        load_interactions(&path).unwrap()
    }

    #[test]
    fn the_split_reproduces_the_protocol_hashes() {
        let (train, test) = split(&ml100k());
        assert_eq!((train.len(), test.len()), (80_367, 19_633));
        assert_eq!(
            digest(&train),
            "a0ed89b368fca852f065ea534041c4b94cc01d4d71f3e64aecb3c5390e4cccc5"
        );
        assert_eq!(
            digest(&test),
            "a27708c71b6443660a8172dfaf23946b26baf9f5b067ca907218dbe3284a9724"
        );
    }

    #[test]
    fn popularity_reproduces_the_sanity_anchor() {
        let (train, test) = split(&ml100k());
        let m = evaluate(&train, &test, 1682, popularity_scorer(&train));
        assert_eq!(m.users, 943);
        let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
        assert_eq!(r3(m.precision), 0.189);
        assert_eq!(r3(m.recall), 0.120);
        assert_eq!(r3(m.ndcg), 0.221);
        assert_eq!((m.coverage * 100.0).round() / 100.0, 0.03);
    }

    /// The bar of the project: the default algorithm at NDCG@10 >= 0.44,
    /// and no kNN below the reference row of its family, with the
    /// service's default settings.
    #[test]
    fn the_quality_bar_holds() {
        let (train, test) = split(&ml100k());
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ml-100k");
        let items = crate::data::movielens::read_dataset(&dir).unwrap().items;
        let data = training_data(&train, &items);
        let settings = crate::config::Settings::for_tests("sqlite::memory:");
        let models = Models::train(&data, settings.models_config());
        let default = crate::recommend::algorithms::parse(
            "hybrid",
            crate::recommend::algorithms::hybrid_method(&settings.hybrid_method).unwrap(),
        )
        .unwrap();
        for (algorithm, bar) in [
            (default, 0.44),
            (Algorithm::Ease, 0.446),
            (Algorithm::ItemKnn, 0.365),
            (Algorithm::UserKnn, 0.399),
        ] {
            let m = evaluate(&train, &test, 1682, model_scorer(&models, algorithm, &data));
            assert!(
                m.ndcg >= bar,
                "{algorithm:?}: NDCG@10 {:.4} < {bar}",
                m.ndcg
            );
        }
    }
}
