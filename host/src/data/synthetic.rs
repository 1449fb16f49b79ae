//! `recengine import synthetic`: a seeded shop of any size, so that scale is
//! measured the same way by everyone and on any machine.
//!
//! The shape is a shop's, not a uniform random matrix: item popularity
//! follows a power law (Zipf, exponent [`ZIPF_EXPONENT`]), user activity is
//! log-normal (a few heavy users, a long tail of light ones), each user
//! favours two categories, and items carry the attributes the built-in rules
//! read (stock, promotions, age and country restrictions, tags) and the
//! merchandising ones the example bundle reads (brand, margin, premium).
//!
//! Memory stays bounded by the number of users and items (a weight each),
//! never by the number of interactions: those are generated and written in
//! chunks, through one [`InteractionWriter`] (into an
//! empty table, indexes are built once at the end).
//!
//! The same seed and sizes give the same users, items and interactions;
//! times are relative to the day of the import, so "new" and "trending"
//! mean the same whenever it runs.

use anyhow::bail;
use chrono::{Duration as Days, Utc};
use serde_json::json;

use super::{
    demo::{BRANDS, CATEGORIES, COUNTRIES},
    movielens::ImportReport,
    progress::Progress,
    rng::SplitMix64,
    writer::InteractionWriter,
};
use crate::store::{
    Db,
    bulk::{self, InteractionRecord, ItemRecord, UserRecord},
    users::UNUSABLE_PASSWORD_HASH,
};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub users: u64,
    pub items: u64,
    pub interactions: u64,
    pub seed: u64,
}

/// Item `r` (by popularity rank, from 0) is drawn with weight
/// `1 / (r + 1)^ZIPF_EXPONENT`: close to what shops and MovieLens show.
const ZIPF_EXPONENT: f64 = 1.0;
/// The spread of user activity: log-normal with this sigma (1.0 puts the
/// busiest 1% of users at about ten times the median's interactions).
const ACTIVITY_SIGMA: f64 = 1.0;
/// Share of a user's interactions in one of their two favourite categories.
const FAVOURITE_SHARE: f64 = 0.75;
/// The history spans this many days before the import.
const HISTORY_DAYS: i64 = 365;
/// Rows per transaction: large enough that commits do not dominate, small
/// enough that memory does not grow with the data set.
const CHUNK_ROWS: usize = 50_000;
/// Usernames start with this; a database that already holds one is refused.
const USER_PREFIX: &str = "synth_user_";

/// Generates and writes the data set; prints progress on a terminal.
pub async fn import(db: &Db, spec: Spec) -> anyhow::Result<ImportReport> {
    if spec.users == 0 || spec.items == 0 {
        bail!("--users and --items must be at least 1");
    }
    if bulk::any_user_with_prefix(db, USER_PREFIX).await? {
        bail!(
            "this database already holds synthetic data (users named {USER_PREFIX}*); \
             import into a fresh database"
        );
    }
    let first_user = bulk::max_id(db, "users").await? + 1;
    let first_item = bulk::max_id(db, "items").await? + 1;
    let now = Utc::now();
    let ms = |d: chrono::DateTime<Utc>| d.timestamp_millis();

    // Items: attributes from one stream, popularity ranks from another (a
    // shuffled ranking, so popularity does not follow ids or categories).
    let mut rng = SplitMix64::new(spec.seed);
    let mut item_category = Vec::with_capacity(spec.items as usize);
    let mut progress = Progress::new("synthetic import", "items", spec.items);
    let mut chunk = Vec::with_capacity(CHUNK_ROWS.min(spec.items as usize));
    let mut report = ImportReport::default();
    for n in 0..spec.items {
        let category = rng.below(CATEGORIES.len());
        item_category.push(category as u8);
        chunk.push(item(&mut rng, first_item + n as i64, category, now));
        if chunk.len() == CHUNK_ROWS || n + 1 == spec.items {
            report.items += bulk::insert_items(db, &chunk).await?;
            progress.advance(chunk.len() as u64);
            chunk.clear();
        }
    }
    progress.finish();
    let popularity = Popularity::new(&mut rng, &item_category);

    // Users: preferences, and a log-normal activity weight each.
    let mut activity = Vec::with_capacity(spec.users as usize);
    let mut favourites = Vec::with_capacity(spec.users as usize);
    let mut joined = Vec::with_capacity(spec.users as usize);
    let mut progress = Progress::new("synthetic import", "users", spec.users);
    let mut chunk = Vec::with_capacity(CHUNK_ROWS.min(spec.users as usize));
    for n in 0..spec.users {
        let fav_a = rng.below(CATEGORIES.len());
        let fav_b = (fav_a + 1 + rng.below(CATEGORIES.len() - 1)) % CATEGORIES.len();
        favourites.push([fav_a as u8, fav_b as u8]);
        activity.push((ACTIVITY_SIGMA * rng.standard_normal()).exp());
        let days_ago = rng.below(HISTORY_DAYS as usize) as i64;
        joined.push(days_ago);
        let age = if rng.chance(0.16) {
            13 + rng.below(5)
        } else {
            18 + rng.below(52)
        };
        let id = first_user + n as i64;
        chunk.push(UserRecord {
            id: Some(id),
            username: format!("{USER_PREFIX}{id}"),
            email: format!("{USER_PREFIX}{id}@synthetic.invalid"),
            password_hash: UNUSABLE_PASSWORD_HASH.into(),
            role: "user",
            preferences: json!({
                "age": age,
                "country": rng.pick(COUNTRIES),
                "favorite_categories": [CATEGORIES[fav_a].0, CATEGORIES[fav_b].0],
                "favorite_tags": [rng.pick(CATEGORIES[fav_a].1)],
                "plan": if rng.chance(0.2) { "premium" } else { "basic" },
            }),
            created_at: ms(now - Days::days(days_ago)),
        });
        if chunk.len() == CHUNK_ROWS || n + 1 == spec.users {
            report.users += bulk::insert_users(db, &chunk).await?;
            progress.advance(chunk.len() as u64);
            chunk.clear();
        }
    }
    progress.finish();

    // Interactions, user by user: each user's share of the total is their
    // activity weight over the weights still to come, so the total is exact.
    let mut writer = InteractionWriter::begin(db, "synthetic import", spec.interactions).await?;
    let mut remaining = spec.interactions;
    let mut remaining_weight: f64 = activity.iter().sum();
    for u in 0..spec.users as usize {
        let count = if u + 1 == spec.users as usize {
            remaining
        } else {
            ((remaining as f64 * activity[u] / remaining_weight).round() as u64).min(remaining)
        };
        remaining -= count;
        remaining_weight -= activity[u];
        let user_id = first_user + u as i64;
        let span_ms = (joined[u].max(1)) * 86_400_000;
        for _ in 0..count {
            let rank = if rng.chance(FAVOURITE_SHARE) {
                let fav = favourites[u][rng.below(2)];
                popularity.draw_in(&mut rng, fav as usize)
            } else {
                popularity.draw(&mut rng)
            };
            let (kind, rating) = interaction_kind(&mut rng);
            writer
                .push(InteractionRecord {
                    user_id,
                    item_id: first_item + rank as i64,
                    interaction_type: kind,
                    rating,
                    weight: 1.0,
                    created_at: ms(now) - (rng.next_f64() * span_ms as f64) as i64,
                    source_key: None,
                })
                .await?;
        }
    }
    report.interactions = writer.finish(db).await?;
    Ok(report)
}

fn item(rng: &mut SplitMix64, id: i64, category: usize, now: chrono::DateTime<Utc>) -> ItemRecord {
    let (category, tag_pool) = CATEGORIES[category];
    let mut tags: Vec<String> = Vec::new();
    for _ in 0..(2 + rng.below(3)) {
        let t = rng.pick(tag_pool).to_string();
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let age_days = if rng.chance(0.05) {
        rng.below(3) as i64
    } else {
        3 + rng.below(HISTORY_DAYS as usize * 2) as i64
    };
    let mut features = json!({
        "in_stock": !rng.chance(0.08),
        "price": ((2.0 + rng.next_f64() * 498.0) * 100.0).round() / 100.0,
        "origin_country": rng.pick(COUNTRIES),
        "brand": rng.pick(BRANDS),
        "margin": (rng.next_f64() * 55.0 + 5.0).round() / 100.0,
        "premium": rng.chance(0.10),
        "source": "synthetic",
    });
    if rng.chance(0.10) {
        let end = if rng.chance(0.5) {
            now + Days::days(1 + rng.below(30) as i64)
        } else {
            now - Days::days(1 + rng.below(30) as i64)
        };
        features["is_promotional"] = json!(true);
        features["promo_end_date"] = json!(end.to_rfc3339());
    } else {
        features["is_promotional"] = json!(false);
    }
    if rng.chance(0.05) {
        features["min_age"] = json!(18);
    }
    if rng.chance(0.03) {
        features["allowed_countries"] = json!(["US", "CA"]);
    } else if rng.chance(0.03) {
        features["blocked_countries"] = json!(["DE", "FR"]);
    }
    let brand = features["brand"].as_str().unwrap_or_default().to_string();
    ItemRecord {
        id: Some(id),
        title: format!("{brand} {category} {id}"),
        description: format!("A {category} product for {} fans.", tags.join(" and ")),
        category: category.to_string(),
        tags,
        features,
        popularity_score: 0.0,
        created_at: (now - Days::days(age_days)).timestamp_millis(),
    }
}

/// Mostly views, then clicks; ratings lean high, as they do in shops.
fn interaction_kind(rng: &mut SplitMix64) -> (&'static str, Option<f64>) {
    match rng.next_f64() {
        r if r < 0.55 => ("view", None),
        r if r < 0.75 => ("click", None),
        r if r < 0.82 => ("like", None),
        r if r < 0.88 => ("add_to_cart", None),
        r if r < 0.94 => ("rating", Some([2.0, 3.0, 4.0, 4.0, 5.0][rng.below(5)])),
        r if r < 0.98 => ("purchase", None),
        _ => ("share", None),
    }
}

/// Draws items by a power law over a shuffled popularity ranking, from the
/// whole catalogue or from one category. Cumulative weights with a binary
/// search: O(items) memory, O(log items) a draw.
struct Popularity {
    /// `cumulative[i]`: the weights of items `0..=i` (by index from the
    /// first id).
    cumulative: Vec<f64>,
    /// Per category: its items' indexes and their cumulative weights.
    by_category: Vec<(Vec<u32>, Vec<f64>)>,
}

impl Popularity {
    fn new(rng: &mut SplitMix64, categories: &[u8]) -> Self {
        let n = categories.len();
        // A random permutation (Fisher-Yates) assigns each item its rank.
        let mut rank: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            rank.swap(i, rng.below(i + 1));
        }
        let weight = |i: usize| 1.0 / (rank[i] as f64 + 1.0).powf(ZIPF_EXPONENT);
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|i| {
                total += weight(i);
                total
            })
            .collect();
        let mut by_category = vec![(Vec::new(), Vec::new()); CATEGORIES.len()];
        for (i, &c) in categories.iter().enumerate() {
            let (items, sums): &mut (Vec<u32>, Vec<f64>) = &mut by_category[c as usize];
            let before = sums.last().copied().unwrap_or(0.0);
            items.push(i as u32);
            sums.push(before + weight(i));
        }
        Self {
            cumulative,
            by_category,
        }
    }

    fn draw(&self, rng: &mut SplitMix64) -> usize {
        pick(&self.cumulative, rng)
    }

    /// An item of `category`, or of the whole catalogue if it has none.
    fn draw_in(&self, rng: &mut SplitMix64, category: usize) -> usize {
        let (items, sums) = &self.by_category[category];
        if items.is_empty() {
            return self.draw(rng);
        }
        items[pick(sums, rng)] as usize
    }
}

fn pick(cumulative: &[f64], rng: &mut SplitMix64) -> usize {
    let target = rng.next_f64() * cumulative.last().copied().unwrap_or(0.0);
    cumulative
        .partition_point(|&c| c <= target)
        .min(cumulative.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn popularity_follows_a_power_law_and_stays_in_its_category() {
        let mut rng = SplitMix64::new(7);
        let categories: Vec<u8> = (0..1000).map(|i| (i % 10) as u8).collect();
        let popularity = Popularity::new(&mut rng, &categories);
        let mut counts = vec![0u32; 1000];
        for _ in 0..200_000 {
            counts[popularity.draw(&mut rng)] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        // Zipf with exponent 1: the top item draws about twice the second,
        // and the top 10% of items take well over half the draws.
        let ratio = counts[0] as f64 / counts[1] as f64;
        assert!((1.6..2.5).contains(&ratio), "{ratio}");
        let head: u32 = counts[..100].iter().sum();
        assert!(head > 110_000, "{head}");
        for _ in 0..1000 {
            assert_eq!(categories[popularity.draw_in(&mut rng, 3)], 3);
        }
    }
}
