//! Hand-made requests: the users and candidates a dry run (`POST
//! /rules/dry-run`) or `recengine rules test` sends, as what rules read, and
//! the sample a bundle's rules are tried on before they go live.

use chrono::{DateTime, Utc};
use recengine_rules_sdk::{
    testing::{Item, RequestBuilder},
    wire::Datum,
};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{
    RuleContext, Subject, context_data,
    gather::{datum_from_json, item_attribute},
};
use crate::store::items::Item as StoredItem;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunUser {
    #[serde(default)]
    pub id: i64,
    #[schema(format = Int64, minimum = 0, maximum = 4_294_967_295_u64)]
    pub age: Option<u32>,
    pub country: Option<String>,
    #[serde(default)]
    pub favorite_categories: Vec<String>,
    #[serde(default)]
    pub favorite_tags: Vec<String>,
    #[serde(default)]
    pub purchased: Vec<i64>,
    /// Any other preference keys, as on a user (`plan`, ...): what rules
    /// declaring user inputs read.
    #[serde(default)]
    pub preferences: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunCandidate {
    /// Unique among the candidates.
    pub item_id: i64,
    #[schema(minimum = 0)]
    pub score: f64,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// As on items: in_stock, is_promotional, promo_end_date, min_age,
    /// allowed_countries, blocked_countries, origin_country. Anything but
    /// an object counts as `{}`.
    #[serde(default)]
    pub features: Value,
    pub created_at: Option<DateTime<Utc>>,
    /// Feature-store statistics by name (`avg_rating`,
    /// `total_interactions`, ...), for rules that declare them.
    #[serde(default)]
    pub stats: serde_json::Map<String, Value>,
}

/// Hand-made data as what rules read: the user's fields and preferences,
/// each candidate's fields, features and statistics, the context.
pub fn subject(
    user: DryRunUser,
    context: &RuleContext,
    candidates: Vec<DryRunCandidate>,
    exclude_ids: Vec<i64>,
    now: DateTime<Utc>,
) -> Subject {
    let mut subject = Subject {
        user_id: user.id,
        now_ms: now.timestamp_millis(),
        context: context_data(context, now),
        exclude_ids,
        ..Subject::default()
    };
    for (k, v) in &user.preferences {
        if let Some(d) = datum_from_json(v) {
            subject.user.insert(k.clone(), d);
        }
    }
    if let Some(age) = user.age {
        subject
            .user
            .insert("age".into(), Datum::Number(f64::from(age)));
    }
    if let Some(country) = user.country {
        subject.user.insert("country".into(), Datum::Text(country));
    }
    // The top-level lists win over the same keys in `preferences` when
    // given.
    for (key, list) in [
        ("favorite_categories", user.favorite_categories),
        ("favorite_tags", user.favorite_tags),
    ] {
        if !list.is_empty() || !subject.user.contains_key(key) {
            subject.user.insert(key.into(), Datum::Strings(list));
        }
    }
    subject
        .user_stats
        .insert("purchased".into(), Datum::Ids(user.purchased));
    subject.items = candidates
        .into_iter()
        .map(|c| {
            let stored = StoredItem {
                id: c.item_id,
                title: String::new(),
                description: String::new(),
                category: c.category,
                tags: c.tags,
                features: if c.features.is_object() {
                    c.features
                } else {
                    Value::Object(Default::default())
                },
                popularity_score: 0.0,
                created_at: c.created_at.unwrap_or(now),
                updated_at: now,
            };
            let mut item = Item::new(c.item_id, c.score);
            for name in ["category", "tags", "created_at"] {
                if let Some(d) = item_attribute(&stored, name) {
                    item.attributes.insert(name.into(), d);
                }
            }
            if let Value::Object(features) = &stored.features {
                for (k, v) in features {
                    if let Some(d) = datum_from_json(v) {
                        item.attributes.entry(k.clone()).or_insert(d);
                    }
                }
            }
            for (k, v) in &c.stats {
                if let Some(d) = datum_from_json(v) {
                    item.stats.insert(k.clone(), d);
                }
            }
            item
        })
        .collect();
    subject
}

/// Twenty items over three categories, some out of stock, created over the
/// last three weeks, for a 30-year-old user in the US: what a bundle's
/// rules are tried on before they go live.
pub fn sample_subject(now_ms: i64) -> Subject {
    let mut builder = RequestBuilder::new()
        .user(1, Some(30), Some("US"), &["books"], &["new"], &[3])
        .context(Some("US"), Some("web"), Some(12), false, now_ms, &[]);
    for i in 1..=20_i64 {
        builder = builder.item(
            Item::new(i, 1.0 - i as f64 * 0.04)
                .category(["books", "toys", "garden"][i as usize % 3])
                .tags(&["new"])
                .in_stock(i % 7 != 0)
                .created_at_ms(now_ms - i * 86_400_000),
        );
    }
    builder.build()
}

/// The items of `subject` with the given ids, for placing promotions when
/// the catalogue is what was given (a dry run, `rules test`).
pub fn among(subject: &Subject, ids: &[i64]) -> Subject {
    subject.with_items(
        subject
            .items
            .iter()
            .filter(|i| ids.contains(&i.id))
            .cloned()
            .collect(),
    )
}
