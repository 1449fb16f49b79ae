//! The demo catalogue behind `recengine serve --demo`: deterministic (seeded),
//! small, and shaped so every built-in business rule has something to act
//! on — minors and adults, several countries, out-of-stock and promotional
//! items (some promotions over), age- and country-restricted items, items
//! from many origins, brand-new and old items, and purchases — plus an ops
//! account, so the console and the rules API can be tried at once.

use std::net::SocketAddr;

use chrono::{Duration, Utc};
use serde_json::json;

use super::rng::SplitMix64;
use crate::{
    AppState,
    auth::password,
    store::{
        Db,
        bulk::{self, InteractionRecord, ItemRecord, UserRecord},
        users::Role,
    },
};

/// The password of every demo account, the ops account's included: the
/// demo is for trying things on one machine, never for real data.
pub const DEMO_PASSWORD: &str = "demo-password";
/// The demo's operator (role `ops`): the console, rules, bundles, jobs.
pub const DEMO_OPS_EMAIL: &str = "ops@example.com";
const DEMO_OPS_USERNAME: &str = "ops";
pub const DEMO_USERS: usize = 60;
pub const DEMO_ITEMS: usize = 200;

const SEED: u64 = 0x5EED_DE30;

pub(crate) const CATEGORIES: &[(&str, &[&str])] = &[
    (
        "electronics",
        &["wireless", "4k", "bluetooth", "smart", "portable"],
    ),
    (
        "books",
        &["fiction", "mystery", "history", "science", "bestseller"],
    ),
    (
        "fashion",
        &["summer", "winter", "casual", "formal", "sustainable"],
    ),
    ("home", &["kitchen", "garden", "decor", "furniture", "eco"]),
    (
        "sports",
        &["running", "cycling", "yoga", "outdoor", "fitness"],
    ),
    (
        "toys",
        &["lego", "puzzle", "educational", "outdoor", "plush"],
    ),
    (
        "beauty",
        &["organic", "skincare", "vegan", "fragrance", "hair"],
    ),
    (
        "games",
        &["strategy", "action", "family", "puzzle", "multiplayer"],
    ),
    ("music", &["vinyl", "jazz", "rock", "classical", "indie"]),
    (
        "grocery",
        &["organic", "vegan", "snacks", "coffee", "local"],
    ),
];
pub(crate) const BRANDS: &[&str] = &[
    "Acme",
    "Zenith",
    "Nordvik",
    "Solano",
    "Kestrel",
    "Orbis",
    "Lumen",
    "Tamura",
    "Brightway",
    "Calder",
    "Verdant",
    "Halcyon",
];
const ADJECTIVES: &[&str] = &[
    "Classic",
    "Modern",
    "Compact",
    "Deluxe",
    "Essential",
    "Premium",
    "Vintage",
    "Smart",
    "Ultra",
    "Handmade",
];
pub(crate) const COUNTRIES: &[&str] = &["US", "DE", "FR", "GB", "JP", "CA", "BR", "IN"];
const DEVICE_NAMES: &[&str] = &["Edition", "Set", "Kit", "Collection", "Series", "Pack"];

/// Seeds the demo data if the catalogue is empty (no items); returns whether
/// it did. Accounts may already exist (an initial admin); a database with a
/// catalogue is never touched.
pub async fn seed_if_empty(db: &Db) -> anyhow::Result<bool> {
    if crate::store::items::count(db).await? > 0 {
        return Ok(false);
    }
    seed(db).await?;
    Ok(true)
}

/// What `serve --demo` does before it listens: seeds an empty database and,
/// when it did, retrains (the start-up training saw an empty catalogue).
/// Returns whether it seeded.
pub async fn prepare(state: &AppState) -> anyhow::Result<bool> {
    if !seed_if_empty(&state.db).await? {
        return Ok(false);
    }
    state.retrain().await?;
    Ok(true)
}

/// The lines `serve --demo` prints once it listens on `addr`: the docs, the
/// console (with the ops account when this database has the demo's), the
/// walkthrough.
pub async fn next_steps(db: &Db, addr: SocketAddr) -> anyhow::Result<String> {
    let base = if addr.ip().is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    };
    // A database that had a catalogue before was not seeded: say how to get
    // an account rather than name one that does not exist.
    let demo_ops = match crate::store::users::find_by_email(db, DEMO_OPS_EMAIL).await? {
        Some((user, hash)) => {
            user.role >= Role::Ops
                && password::verify_password(DEMO_PASSWORD.into(), Some(hash)).await
        }
        None => false,
    };
    let ops = if demo_ops {
        format!("sign in as {DEMO_OPS_EMAIL} / {DEMO_PASSWORD}")
    } else {
        "needs an ops or admin account: recengine users create-admin --email ...".into()
    };
    let tour = if base == "http://localhost:8000" {
        "examples/api-walkthrough.sh".to_string()
    } else {
        format!("BASE_URL={base} examples/api-walkthrough.sh")
    };
    Ok(format!(
        "\nrecengine demo on {base}; try next:\n  \
         API docs     {base}/docs\n  \
         Ops console  {base}/console/   ({ops})\n  \
         The tour     {tour}   (a client's and an operator's walk through the API)\n"
    ))
}

async fn seed(db: &Db) -> anyhow::Result<()> {
    let mut rng = SplitMix64::new(SEED);
    // The merchandising attributes (brand, margin, premium, plan) draw from
    // their own stream, so the rest of the catalogue is what it always was.
    let mut merch = SplitMix64::new(SEED ^ 0x4D45_5243);
    let now = Utc::now();
    let ms = |d: chrono::DateTime<Utc>| d.timestamp_millis();

    let mut items = Vec::with_capacity(DEMO_ITEMS);
    for n in 0..DEMO_ITEMS {
        let (category, tag_pool) = CATEGORIES[n % CATEGORIES.len()];
        let mut tags: Vec<String> = Vec::new();
        for _ in 0..(2 + rng.below(3)) {
            let t = rng.pick(tag_pool).to_string();
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        // 10% brand new (within 3 days), the rest 2 weeks to a year old.
        let age_days = if rng.chance(0.10) {
            rng.below(3) as i64
        } else {
            14 + rng.below(350) as i64
        };
        let mut features = json!({
            "in_stock": !rng.chance(0.10),
            "price": ((5.0 + rng.next_f64() * 495.0) * 100.0).round() / 100.0,
            "origin_country": rng.pick(COUNTRIES),
        });
        if rng.chance(0.20) {
            // Half the promotions are still running, half have ended.
            let end = if rng.chance(0.5) {
                now + Duration::days(1 + rng.below(30) as i64)
            } else {
                now - Duration::days(1 + rng.below(30) as i64)
            };
            features["is_promotional"] = json!(true);
            features["promo_end_date"] = json!(end.to_rfc3339());
        } else {
            features["is_promotional"] = json!(false);
        }
        if rng.chance(0.10) {
            features["min_age"] = json!(18);
        } else if rng.chance(0.05) {
            features["min_age"] = json!(13);
        }
        if rng.chance(0.06) {
            features["allowed_countries"] = json!(["US", "CA"]);
        } else if rng.chance(0.06) {
            features["blocked_countries"] = json!(["DE", "FR"]);
        }
        // What the example bundle's rules read (examples/merchandising).
        features["brand"] = json!(merch.pick(BRANDS));
        features["margin"] = json!((merch.next_f64() * 55.0 + 5.0).round() / 100.0);
        features["premium"] = json!(merch.chance(0.10));
        let adjective = rng.pick(ADJECTIVES);
        let noun = rng.pick(DEVICE_NAMES);
        items.push(ItemRecord {
            id: None,
            title: format!("{adjective} {} {noun} {}", capitalize(category), n + 1),
            description: format!(
                "A {} {category} product for {} fans.",
                adjective.to_lowercase(),
                tags.join(" and ")
            ),
            category: category.to_string(),
            tags,
            features,
            popularity_score: 0.0,
            created_at: ms(now - Duration::days(age_days) - Duration::minutes(n as i64)),
        });
    }
    bulk::insert_items(db, &items).await?;

    let password_hash = password::hash_password(DEMO_PASSWORD.to_string()).await?;
    let mut users = Vec::with_capacity(DEMO_USERS);
    let mut favourites = Vec::with_capacity(DEMO_USERS);
    for n in 0..DEMO_USERS {
        // About one in six is a minor.
        let age = if rng.chance(0.16) {
            13 + rng.below(5)
        } else {
            18 + rng.below(52)
        };
        let fav_a = rng.below(CATEGORIES.len());
        let fav_b = (fav_a + 1 + rng.below(CATEGORIES.len() - 1)) % CATEGORIES.len();
        let tag = rng.pick(CATEGORIES[fav_a].1).to_string();
        favourites.push([fav_a, fav_b]);
        users.push(UserRecord {
            id: None,
            username: format!("demo_user_{}", n + 1),
            email: format!("demo_user_{}@example.com", n + 1),
            password_hash: password_hash.clone(),
            role: "user",
            preferences: json!({
                "age": age,
                "country": rng.pick(COUNTRIES),
                "favorite_categories": [CATEGORIES[fav_a].0, CATEGORIES[fav_b].0],
                "favorite_tags": [tag],
                "plan": if merch.chance(0.2) { "premium" } else { "basic" },
            }),
            created_at: ms(now - Duration::days(30 + rng.below(300) as i64)),
        });
    }
    users.push(UserRecord {
        id: None,
        username: DEMO_OPS_USERNAME.into(),
        email: DEMO_OPS_EMAIL.into(),
        password_hash: password_hash.clone(),
        role: "ops",
        preferences: json!({}),
        created_at: ms(now),
    });
    bulk::insert_users(db, &users).await?;

    // Ids were assigned by the database; read them back in insertion order.
    let user_ids = bulk::user_ids_with_prefix(db, "demo_user_").await?;
    let item_ids = bulk::item_categories(db).await?;

    let mut interactions = Vec::new();
    for (u, user_id) in user_ids.iter().enumerate() {
        let fav = favourites.get(u).copied().unwrap_or([0, 1]);
        for _ in 0..(20 + rng.below(40)) {
            // Three in four interactions fall in a favourite category.
            let wanted = if rng.chance(0.75) {
                Some(CATEGORIES[fav[rng.below(2)]].0)
            } else {
                None
            };
            let pool: Vec<i64> = item_ids
                .iter()
                .filter(|(_, c)| wanted.is_none_or(|w| w == c))
                .map(|(id, _)| *id)
                .collect();
            let item_id = *rng.pick(&pool);
            let roll = rng.next_f64();
            let (kind, rating) = match roll {
                r if r < 0.50 => ("view", None),
                r if r < 0.72 => ("click", None),
                r if r < 0.82 => ("like", None),
                r if r < 0.92 => ("rating", Some((1 + rng.below(5)) as f64)),
                _ => ("purchase", None),
            };
            interactions.push(InteractionRecord {
                user_id: *user_id,
                item_id,
                interaction_type: kind,
                rating,
                weight: 1.0,
                created_at: ms(now
                    - Duration::days(rng.below(60) as i64)
                    - Duration::minutes(rng.below(1440) as i64)),
                source_key: None,
            });
        }
    }
    bulk::insert_interactions(db, &interactions).await?;
    bulk::recompute_popularity(db).await?;
    bulk::refresh_statistics(db).await?;
    tracing::info!(
        users = DEMO_USERS,
        items = DEMO_ITEMS,
        interactions = interactions.len(),
        password = DEMO_PASSWORD,
        ops = DEMO_OPS_EMAIL,
        "seeded the demo catalogue (log in as demo_user_1@example.com, or as ops@example.com for ops)"
    );
    Ok(())
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
