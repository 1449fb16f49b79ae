//! From the service's items, user and request context to the columns a rule
//! sees. The SDK's builder does the interning and layout, so the host, the
//! native harness and the rules agree on one encoding.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use recengine_rules_sdk::{
    self as sdk,
    builder::{Item as RuleItem, RequestBuilder},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::bindings::recengine::rules::types as wit;
use crate::store::items::Item;

/// What the caller tells the rules about the request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleContext {
    /// ISO country code the request comes from; geo rules prefer it to the
    /// user's own country.
    #[schema(max_length = 8)]
    pub country: Option<String>,
    #[schema(max_length = 64)]
    pub device: Option<String>,
    /// 0..=23; derived from the server's clock (UTC) when absent.
    #[schema(minimum = 0, maximum = 23)]
    pub hour_of_day: Option<u8>,
    /// Derived from the server's clock (UTC) when absent.
    pub is_weekend: Option<bool>,
    /// Any other key/values, passed through to the rules.
    /// At most 32 keys of up to 64 characters, values up to 256.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

/// Bounds on what a caller may put in a context: it reaches every rule
/// and (as a digest) the cache key, so its size is the service's to set.
pub const MAX_EXTRA_KEYS: usize = 32;
pub const MAX_CONTEXT_KEY_CHARS: usize = 64;
pub const MAX_CONTEXT_VALUE_CHARS: usize = 256;
pub const MAX_COUNTRY_CHARS: usize = 8;
pub const MAX_DEVICE_CHARS: usize = 64;

impl RuleContext {
    /// The bounds above, and `hour_of_day` 0..=23; the message names the
    /// field and its limit.
    pub fn validate(&self) -> Result<(), String> {
        let too_long = |field: &str, value: &Option<String>, max: usize| match value {
            Some(v) if v.chars().count() > max => {
                Err(format!("context.{field} is longer than {max} characters"))
            }
            _ => Ok(()),
        };
        too_long("country", &self.country, MAX_COUNTRY_CHARS)?;
        too_long("device", &self.device, MAX_DEVICE_CHARS)?;
        if self.hour_of_day.is_some_and(|h| h > 23) {
            return Err("hour_of_day must be 0..=23".into());
        }
        if self.extra.len() > MAX_EXTRA_KEYS {
            return Err(format!(
                "context.extra has {} keys; at most {MAX_EXTRA_KEYS} are allowed",
                self.extra.len()
            ));
        }
        for (key, value) in &self.extra {
            if key.chars().count() > MAX_CONTEXT_KEY_CHARS {
                return Err(format!(
                    "context.extra keys must be at most {MAX_CONTEXT_KEY_CHARS} characters"
                ));
            }
            if value.chars().count() > MAX_CONTEXT_VALUE_CHARS {
                return Err(format!(
                    "context.extra.{key} is longer than {MAX_CONTEXT_VALUE_CHARS} characters"
                ));
            }
        }
        Ok(())
    }
}

/// The user data rules read.
#[derive(Debug, Clone, Default)]
pub struct RuleUser {
    pub id: i64,
    pub age: Option<u32>,
    pub country: Option<String>,
    pub favorite_categories: Vec<String>,
    pub favorite_tags: Vec<String>,
    pub purchased: Vec<i64>,
}

impl RuleUser {
    /// From the stored user (preferences) and the ids it purchased.
    /// From a user's `preferences` JSON (what the feature store holds).
    pub fn from_preferences(id: i64, p: &Value, purchased: Vec<i64>) -> Self {
        let strings = |key: &str| -> Vec<String> {
            p.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            id,
            age: p
                .get("age")
                .and_then(Value::as_f64)
                .filter(|a| (0.0..=150.0).contains(a))
                .map(|a| a as u32),
            country: p
                .get("country")
                .and_then(Value::as_str)
                .map(|c| c.to_ascii_uppercase()),
            favorite_categories: strings("favorite_categories"),
            favorite_tags: strings("favorite_tags"),
            purchased,
        }
    }
}

/// A candidate: an item and its score from the recommender.
pub fn rule_item(item: &Item, score: f64) -> RuleItem {
    let f = &item.features;
    let countries = |key: &str| -> Vec<String> {
        f.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(|s| s.to_ascii_uppercase()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = RuleItem::new(item.id, score);
    if !item.category.is_empty() {
        out.category = Some(item.category.clone());
    }
    out.tags = item.tags.clone();
    out.created_at_ms = item.created_at.timestamp_millis();
    out.in_stock = f.get("in_stock").and_then(Value::as_bool);
    if f.get("is_promotional").and_then(Value::as_bool) == Some(true) {
        out.promo_end_ms = Some(
            f.get("promo_end_date")
                .and_then(Value::as_str)
                .and_then(parse_date_ms),
        );
    }
    out.min_age = f
        .get("min_age")
        .and_then(Value::as_f64)
        .filter(|a| a.is_finite() && *a > 0.0)
        .map_or(0, |a| a.min(200.0) as i32);
    out.origin_country = f
        .get("origin_country")
        .and_then(Value::as_str)
        .map(|c| c.to_ascii_uppercase());
    out.allowed_countries = countries("allowed_countries");
    out.blocked_countries = countries("blocked_countries");
    out
}

/// RFC 3339 or a plain date (end of that day, UTC).
fn parse_date_ms(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 999))
        .map(|t| t.and_utc().timestamp_millis())
}

/// Builds the request rules see.
pub fn build_request(
    user: &RuleUser,
    context: &RuleContext,
    now: DateTime<Utc>,
    candidates: impl IntoIterator<Item = RuleItem>,
) -> sdk::Request {
    let categories: Vec<&str> = user
        .favorite_categories
        .iter()
        .map(String::as_str)
        .collect();
    let tags: Vec<&str> = user.favorite_tags.iter().map(String::as_str).collect();
    let extra: Vec<(&str, &str)> = context
        .extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let weekday = now.weekday().number_from_monday();
    let country = context.country.as_ref().map(|c| c.to_ascii_uppercase());
    let mut builder = RequestBuilder::new()
        .user(
            user.id,
            user.age,
            user.country.as_deref(),
            &categories,
            &tags,
            &user.purchased,
        )
        .context(
            country.as_deref(),
            context.device.as_deref(),
            Some(context.hour_of_day.unwrap_or(now.hour() as u8).min(23)),
            context.is_weekend.unwrap_or(weekday >= 6),
            now.timestamp_millis(),
            &extra,
        );
    for item in candidates {
        builder = builder.item(item);
    }
    builder.build()
}

/// The WIT form of a request, with one rule's config.
pub fn to_wit(req: &sdk::Request, config: &[f64]) -> wit::Request {
    let c = &req.candidates;
    wit::Request {
        symbol_text: req.symbols.text.clone(),
        symbol_ends: req.symbols.ends.clone(),
        user: wit::User {
            id: req.user.id,
            age: req.user.age,
            country: req.user.country,
            favorite_categories: req.user.favorite_categories.clone(),
            favorite_tags: req.user.favorite_tags.clone(),
            purchased: req.user.purchased.clone(),
        },
        context: wit::Context {
            country: req.context.country,
            device: req.context.device,
            hour_of_day: req.context.hour_of_day,
            is_weekend: req.context.is_weekend,
            now_ms: req.context.now_ms,
            extra_keys: req.context.extra_keys.clone(),
            extra_values: req.context.extra_values.clone(),
        },
        candidates: wit::Candidates {
            ids: c.ids.clone(),
            scores: c.scores.clone(),
            categories: c.categories.clone(),
            tag_offsets: c.tag_offsets.clone(),
            tags: c.tags.clone(),
            created_at_ms: c.created_at_ms.clone(),
            in_stock: c.in_stock.clone(),
            promo_end_ms: c.promo_end_ms.clone(),
            min_age: c.min_age.clone(),
            origin_country: c.origin_country.clone(),
            allowed_offsets: c.allowed_offsets.clone(),
            allowed_countries: c.allowed_countries.clone(),
            blocked_offsets: c.blocked_offsets.clone(),
            blocked_countries: c.blocked_countries.clone(),
        },
        config: config.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_in_both_forms() {
        assert_eq!(parse_date_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_date_ms("1970-01-01"), Some(86_399_999));
        assert_eq!(parse_date_ms("soon"), None);
    }
}
