//! Requests for rules built against contract 0.1 (`wit/0.1.0/rules.wit`):
//! its fixed columns, read from the same subject as 0.2 inputs (see
//! [`catalogue::legacy_inputs`](super::catalogue::legacy_inputs)) and laid
//! out exactly as the 0.1 host did, country codes upper-cased.

use recengine_rules_sdk::{
    builder::Item,
    contract::List,
    wire::{Datum, Interner, NONE},
};

use super::Subject;
use crate::rules::bindings::v0_1::recengine::rules::types as wit;

/// The whole subject in 0.1's layout; cut per call with [`Legacy::request`].
#[derive(Debug, Clone)]
pub struct Legacy {
    full: wit::Request,
}

fn text(d: Option<&Datum>) -> Option<String> {
    d.and_then(Datum::as_text).map(|t| t.into_owned())
}

fn strings(d: Option<&Datum>) -> Vec<String> {
    d.and_then(Datum::as_strings)
        .map(|v| v.into_iter().map(|s| s.into_owned()).collect())
        .unwrap_or_default()
}

fn upper(v: Vec<String>) -> Vec<String> {
    v.into_iter().map(|c| c.to_ascii_uppercase()).collect()
}

impl Legacy {
    pub fn new(subject: &Subject) -> Self {
        let mut i = Interner::new();
        let opt = |i: &mut Interner, s: Option<String>| s.map_or(NONE, |s| i.intern(&s));
        let user_data = &subject.user;
        let age = user_data
            .get("age")
            .and_then(Datum::as_number)
            .filter(|a| (0.0..=150.0).contains(a))
            .map_or(-1, |a| a as i32);
        let user_country = opt(
            &mut i,
            text(user_data.get("country")).map(|c| c.to_ascii_uppercase()),
        );
        let favorite_categories = strings(user_data.get("favorite_categories"))
            .iter()
            .map(|c| i.intern(c))
            .collect();
        let favorite_tags = strings(user_data.get("favorite_tags"))
            .iter()
            .map(|t| i.intern(t))
            .collect();
        let purchased = subject
            .user_stats
            .get("purchased")
            .and_then(Datum::as_ids)
            .unwrap_or_default();
        let ctx = &subject.context;
        let country = opt(
            &mut i,
            text(ctx.get("country")).map(|c| c.to_ascii_uppercase()),
        );
        let device = opt(&mut i, text(ctx.get("device")));
        let hour_of_day = ctx
            .get("hour_of_day")
            .and_then(Datum::as_number)
            .map_or(-1, |h| h as i32);
        let is_weekend = ctx.get("is_weekend").and_then(Datum::as_flag) == Some(true);
        let own = ["country", "device", "hour_of_day", "is_weekend"];
        let mut extra_keys = Vec::new();
        let mut extra_values = Vec::new();
        for (k, v) in ctx.iter().filter(|(k, _)| !own.contains(&k.as_str())) {
            if let Some(v) = v.as_text() {
                extra_keys.push(i.intern(k));
                extra_values.push(i.intern(&v));
            }
        }
        let mut c = wit::Candidates {
            ids: Vec::new(),
            scores: Vec::new(),
            categories: Vec::new(),
            tag_offsets: vec![0],
            tags: Vec::new(),
            created_at_ms: Vec::new(),
            in_stock: Vec::new(),
            promo_end_ms: Vec::new(),
            min_age: Vec::new(),
            origin_country: Vec::new(),
            allowed_offsets: vec![0],
            allowed_countries: Vec::new(),
            blocked_offsets: vec![0],
            blocked_countries: Vec::new(),
        };
        for item in &subject.items {
            push_item(&mut i, &mut c, item);
        }
        let symbols = i.finish();
        Self {
            full: wit::Request {
                symbol_text: symbols.text,
                symbol_ends: symbols.ends,
                user: wit::User {
                    id: subject.user_id,
                    age,
                    country: user_country,
                    favorite_categories,
                    favorite_tags,
                    purchased,
                },
                context: wit::Context {
                    country,
                    device,
                    hour_of_day,
                    is_weekend,
                    now_ms: subject.now_ms,
                    extra_keys,
                    extra_values,
                },
                candidates: c,
                config: Vec::new(),
            },
        }
    }

    /// The request for the candidates of `list`, with `config`.
    pub fn request(&self, list: &List, config: Vec<f64>) -> wit::Request {
        let full = &self.full.candidates;
        let rows = &list.rows;
        fn pick<T: Copy>(v: &[T], rows: &[usize]) -> Vec<T> {
            rows.iter().map(|&r| v[r]).collect()
        }
        fn spans(offsets: &[u32], values: &[u32], rows: &[usize]) -> (Vec<u32>, Vec<u32>) {
            let mut new_offsets = vec![0];
            let mut new_values = Vec::new();
            for &r in rows {
                new_values.extend_from_slice(&values[offsets[r] as usize..offsets[r + 1] as usize]);
                new_offsets.push(new_values.len() as u32);
            }
            (new_offsets, new_values)
        }
        let (tag_offsets, tags) = spans(&full.tag_offsets, &full.tags, rows);
        let (allowed_offsets, allowed_countries) =
            spans(&full.allowed_offsets, &full.allowed_countries, rows);
        let (blocked_offsets, blocked_countries) =
            spans(&full.blocked_offsets, &full.blocked_countries, rows);
        let mut request = self.full.clone();
        request.candidates = wit::Candidates {
            ids: list.ids.clone(),
            scores: list.scores.clone(),
            categories: pick(&full.categories, rows),
            tag_offsets,
            tags,
            created_at_ms: pick(&full.created_at_ms, rows),
            in_stock: pick(&full.in_stock, rows),
            promo_end_ms: pick(&full.promo_end_ms, rows),
            min_age: pick(&full.min_age, rows),
            origin_country: pick(&full.origin_country, rows),
            allowed_offsets,
            allowed_countries,
            blocked_offsets,
            blocked_countries,
        };
        request.config = config;
        request
    }
}

fn push_item(i: &mut Interner, c: &mut wit::Candidates, item: &Item) {
    let a = &item.attributes;
    c.ids.push(item.id);
    c.scores.push(item.score);
    c.categories.push(
        text(a.get("category"))
            .filter(|s| !s.is_empty())
            .map_or(NONE, |s| i.intern(&s)),
    );
    for tag in strings(a.get("tags")) {
        let id = i.intern(&tag);
        c.tags.push(id);
    }
    c.tag_offsets.push(c.tags.len() as u32);
    c.created_at_ms.push(
        a.get("created_at")
            .and_then(Datum::as_timestamp)
            .map_or(0, |t| t as i64),
    );
    c.in_stock
        .push(match a.get("in_stock").and_then(Datum::as_flag) {
            Some(false) => 0,
            Some(true) => 1,
            None => 2,
        });
    let promotional = a.get("is_promotional").and_then(Datum::as_flag) == Some(true);
    c.promo_end_ms.push(if promotional {
        a.get("promo_end_date")
            .and_then(Datum::as_timestamp)
            .map_or(i64::MAX, |t| t as i64)
    } else {
        i64::MIN
    });
    c.min_age.push(
        a.get("min_age")
            .and_then(Datum::as_number)
            .filter(|m| *m > 0.0)
            .map_or(0, |m| m.min(200.0) as i32),
    );
    c.origin_country
        .push(text(a.get("origin_country")).map_or(NONE, |s| i.intern(&s.to_ascii_uppercase())));
    for country in upper(strings(a.get("allowed_countries"))) {
        let id = i.intern(&country);
        c.allowed_countries.push(id);
    }
    c.allowed_offsets.push(c.allowed_countries.len() as u32);
    for country in upper(strings(a.get("blocked_countries"))) {
        let id = i.intern(&country);
        c.blocked_countries.push(id);
    }
    c.blocked_offsets.push(c.blocked_countries.len() as u32);
}
