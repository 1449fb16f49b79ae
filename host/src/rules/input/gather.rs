//! The service's data as a [`Subject`]: only what the plan names, read from
//! the feature store's user and item features (already fetched for the
//! request, in one batch) and the request's context. Declared but absent
//! is simply not there: the rule reads it as absent.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use recengine_rules_sdk::{Scope, builder::Item, wire::Datum};
use serde_json::Value;

use super::{InputPlan, RuleContext, Subject, catalogue::AGGREGATES, context_data};
use crate::{
    error::AppResult,
    features::{FeatureStore, ItemFeatures, UserFeatures},
    store::items::Item as StoredItem,
};

/// Most of the user's items an aggregate (`purchased.brand`) reads (those
/// with the highest ids: the feature store keeps them by id, not by time).
pub const MAX_AGGREGATE_ITEMS: usize = 200;

/// What one request's rules may read.
pub struct Sources<'a> {
    pub user: &'a UserFeatures,
    pub context: &'a RuleContext,
    pub now: DateTime<Utc>,
    /// The candidates with their model scores, best first.
    pub candidates: &'a [(&'a ItemFeatures, f64)],
    pub exclude_ids: &'a [i64],
    /// The content model's similarity of an item to the user's profile.
    pub content_similarity: &'a (dyn Fn(i64) -> f64 + Send + Sync),
}

/// A JSON value as a plain datum: numbers, booleans, text, and lists of
/// text (or of whole numbers, as ids); anything else is absent.
pub fn datum_from_json(value: &Value) -> Option<Datum> {
    match value {
        Value::Number(n) => n.as_f64().map(Datum::Number),
        Value::Bool(b) => Some(Datum::Flag(*b)),
        Value::String(s) => Some(Datum::Text(s.clone())),
        Value::Array(items) => {
            if !items.is_empty() && items.iter().all(Value::is_i64) {
                Some(Datum::Ids(items.iter().filter_map(Value::as_i64).collect()))
            } else {
                // Numbers and booleans in a mixed list read as their text.
                Some(Datum::Strings(
                    items
                        .iter()
                        .filter_map(|v| match v {
                            Value::String(s) => Some(s.clone()),
                            Value::Number(n) => Some(n.to_string()),
                            Value::Bool(b) => Some(b.to_string()),
                            _ => None,
                        })
                        .collect(),
                ))
            }
        }
        Value::Null | Value::Object(_) => None,
    }
}

/// An item attribute: the item's own fields, else a key of `features`.
pub fn item_attribute(item: &StoredItem, name: &str) -> Option<Datum> {
    match name {
        "category" => (!item.category.is_empty()).then(|| Datum::Text(item.category.clone())),
        "tags" => Some(Datum::Strings(item.tags.clone())),
        "title" => Some(Datum::Text(item.title.clone())),
        "created_at" => Some(Datum::Number(item.created_at.timestamp_millis() as f64)),
        _ => item.features.get(name).and_then(datum_from_json),
    }
}

pub(super) fn item_stat(f: &ItemFeatures, name: &str) -> Option<Datum> {
    let n = match name {
        "popularity_score" => f.popularity_score,
        "avg_rating" => f.avg_rating?,
        "total_interactions" => f.total_interactions as f64,
        "view_count" => f.view_count as f64,
        "click_count" => f.click_count as f64,
        "purchase_count" => f.purchase_count as f64,
        "age_days" => f.age_days,
        _ => return None,
    };
    Some(Datum::Number(n))
}

fn user_stat(u: &UserFeatures, name: &str) -> Option<Datum> {
    Some(match name {
        "total_interactions" => Datum::Number(u.total_interactions as f64),
        "avg_rating" => Datum::Number(u.avg_rating?),
        "activity_score" => Datum::Number(u.activity_score),
        "recency_score" => Datum::Number(u.recency_score),
        "account_age_days" => Datum::Number(u.account_age_days),
        "favorite_categories" => Datum::Strings(u.favorite_categories.clone()),
        "purchased" => Datum::Ids(u.purchased_item_ids.clone()),
        "interacted" => Datum::Ids(u.item_weights.iter().map(|w| w.item_id).collect()),
        _ => return None,
    })
}

/// The subject for `plan`, from `src`. Aggregates over the user's items
/// (`purchased.brand`) cost one more feature-store batch, only when
/// declared. Without `item_inputs`, the candidates' `item` and `item-stat`
/// inputs are left out (the rules read them from kept rows).
pub async fn gather(
    features: &FeatureStore,
    plan: &InputPlan,
    src: Sources<'_>,
    item_inputs: bool,
) -> AppResult<Subject> {
    let mut subject = candidates_subject(plan, &src, item_inputs);
    let user = src.user;
    for input in plan.inputs() {
        let name = input.name.as_str();
        match input.scope {
            Scope::User => {
                if let Some(d) = user.preferences.get(name).and_then(datum_from_json) {
                    subject.user.insert(name.to_string(), d);
                }
            }
            Scope::UserStat => {
                if let Some(d) = user_stat(user, name) {
                    subject.user_stats.insert(name.to_string(), d);
                }
            }
            _ => {}
        }
    }
    let aggregates: Vec<(&str, &str)> = plan
        .inputs()
        .iter()
        .filter(|i| i.scope == Scope::UserStat)
        .filter_map(|i| {
            AGGREGATES.iter().find_map(|prefix| {
                i.name
                    .strip_prefix(prefix)
                    .map(|attribute| (i.name.as_str(), attribute))
            })
        })
        .collect();
    if !aggregates.is_empty() {
        let of = |prefix: &str| -> Vec<i64> {
            let ids: Vec<i64> = if prefix.starts_with("purchased") {
                user.purchased_item_ids.clone()
            } else {
                user.item_weights.iter().map(|w| w.item_id).collect()
            };
            ids.into_iter().rev().take(MAX_AGGREGATE_ITEMS).collect()
        };
        let mut wanted: BTreeSet<i64> = BTreeSet::new();
        for (name, _) in &aggregates {
            wanted.extend(of(name));
        }
        let items = features
            .items_batch(&wanted.into_iter().collect::<Vec<_>>())
            .await?;
        for (name, attribute) in aggregates {
            let mut values = BTreeSet::new();
            for id in of(name) {
                let Some(f) = items.get(&id) else { continue };
                match item_attribute(&f.item, attribute) {
                    Some(Datum::Text(t)) => {
                        values.insert(t);
                    }
                    Some(Datum::Strings(list)) => values.extend(list),
                    Some(Datum::Number(n)) => {
                        if let Some(t) = Datum::Number(n).as_text() {
                            values.insert(t.into_owned());
                        }
                    }
                    _ => {}
                }
            }
            subject.user_stats.insert(
                name.to_string(),
                Datum::Strings(values.into_iter().collect()),
            );
        }
    }
    Ok(subject)
}

/// Everything but the user's attributes and statistics: the candidates'
/// attributes, statistics and user-item features, and the context.
pub fn candidates_subject(plan: &InputPlan, src: &Sources<'_>, item_inputs: bool) -> Subject {
    Subject {
        user_id: src.user.user_id,
        now_ms: src.now.timestamp_millis(),
        items: candidate_items(
            plan,
            src.candidates,
            Some(src.user),
            src.content_similarity,
            item_inputs,
        ),
        user: BTreeMap::new(),
        user_stats: BTreeMap::new(),
        context: context_data(src.context, src.now),
        exclude_ids: src.exclude_ids.to_vec(),
    }
}

/// The per-candidate inputs of `plan` for `candidates` (user-item features
/// need the `user`; without one they are absent); `item` and `item-stat`
/// ones only with `item_inputs`.
pub fn candidate_items(
    plan: &InputPlan,
    candidates: &[(&ItemFeatures, f64)],
    user: Option<&UserFeatures>,
    content_similarity: &(dyn Fn(i64) -> f64 + Send + Sync),
    item_inputs: bool,
) -> Vec<Item> {
    let interacted: BTreeSet<i64> = match user {
        Some(u) if plan.wants_scope(Scope::UserItem) => {
            u.item_weights.iter().map(|w| w.item_id).collect()
        }
        _ => BTreeSet::new(),
    };
    let total: i64 = user.map_or(0, |u| u.category_counts.values().sum());
    let item_inputs: Vec<_> = plan
        .inputs()
        .iter()
        .filter(|i| i.scope.per_candidate() && (item_inputs || i.scope == Scope::UserItem))
        .collect();
    candidates
        .iter()
        .map(|&(f, score)| {
            let mut item = Item::new(f.item_id, score);
            for input in &item_inputs {
                let name = input.name.as_str();
                let (map, datum) = match input.scope {
                    Scope::ItemStat => (&mut item.stats, item_stat(f, name)),
                    Scope::UserItem => (
                        &mut item.user_item,
                        user.and_then(|u| match name {
                            "has_interacted" => Some(Datum::Flag(interacted.contains(&f.item_id))),
                            "category_affinity" => Some(Datum::Number(if total > 0 {
                                u.category_counts
                                    .get(&f.item.category)
                                    .copied()
                                    .unwrap_or(0) as f64
                                    / total as f64
                            } else {
                                0.0
                            })),
                            "content_similarity" => {
                                Some(Datum::Number(content_similarity(f.item_id)))
                            }
                            _ => None,
                        }),
                    ),
                    _ => (&mut item.attributes, item_attribute(&f.item, name)),
                };
                if let Some(d) = datum {
                    map.insert(name.to_string(), d);
                }
            }
            item
        })
        .collect()
}
