//! Requests from plain values: items, a user and a context in, the
//! interned columns of `wit/rules.wit` out. The host builds every
//! production request with this, and tests build theirs with it, so both
//! share one encoding.

use std::collections::HashMap;

use crate::{Candidates, Context, NONE, Request, User};

/// An item, as a test (or the host) describes it.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: i64,
    pub score: f64,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub created_at_ms: i64,
    pub in_stock: Option<bool>,
    /// `None`: not promotional; `Some(None)`: promotional without end.
    pub promo_end_ms: Option<Option<i64>>,
    pub min_age: i32,
    pub origin_country: Option<String>,
    pub allowed_countries: Vec<String>,
    pub blocked_countries: Vec<String>,
}

impl Item {
    pub fn new(id: i64, score: f64) -> Self {
        Self {
            id,
            score,
            category: None,
            tags: Vec::new(),
            created_at_ms: 0,
            in_stock: None,
            promo_end_ms: None,
            min_age: 0,
            origin_country: None,
            allowed_countries: Vec::new(),
            blocked_countries: Vec::new(),
        }
    }
    pub fn category(mut self, c: &str) -> Self {
        self.category = Some(c.into());
        self
    }
    pub fn tags(mut self, tags: &[&str]) -> Self {
        self.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }
    pub fn created_at_ms(mut self, ms: i64) -> Self {
        self.created_at_ms = ms;
        self
    }
    pub fn in_stock(mut self, v: bool) -> Self {
        self.in_stock = Some(v);
        self
    }
    pub fn promo_until(mut self, end_ms: Option<i64>) -> Self {
        self.promo_end_ms = Some(end_ms);
        self
    }
    pub fn min_age(mut self, age: i32) -> Self {
        self.min_age = age;
        self
    }
    pub fn origin(mut self, country: &str) -> Self {
        self.origin_country = Some(country.into());
        self
    }
    pub fn allowed_in(mut self, countries: &[&str]) -> Self {
        self.allowed_countries = countries.iter().map(|c| c.to_string()).collect();
        self
    }
    pub fn blocked_in(mut self, countries: &[&str]) -> Self {
        self.blocked_countries = countries.iter().map(|c| c.to_string()).collect();
        self
    }
}

/// Interns strings and lays items out as columns.
#[derive(Debug, Default)]
pub struct RequestBuilder {
    symbols: crate::Symbols,
    index: HashMap<String, u32>,
    request: Request,
}

impl RequestBuilder {
    pub fn new() -> Self {
        let mut b = Self::default();
        b.request.user.age = -1;
        b.request.user.country = NONE;
        b.request.context.country = NONE;
        b.request.context.device = NONE;
        b.request.context.hour_of_day = -1;
        b.request.candidates.tag_offsets.push(0);
        b.request.candidates.allowed_offsets.push(0);
        b.request.candidates.blocked_offsets.push(0);
        b
    }

    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.index.get(s) {
            return id;
        }
        let id = self.symbols.push(s);
        self.index.insert(s.to_string(), id);
        id
    }

    fn intern_opt(&mut self, s: Option<&str>) -> u32 {
        s.map_or(NONE, |s| self.intern(s))
    }

    pub fn user(
        mut self,
        id: i64,
        age: Option<u32>,
        country: Option<&str>,
        favorite_categories: &[&str],
        favorite_tags: &[&str],
        purchased: &[i64],
    ) -> Self {
        let country = self.intern_opt(country);
        let cats = favorite_categories.iter().map(|c| self.intern(c)).collect();
        let tags = favorite_tags.iter().map(|t| self.intern(t)).collect();
        let mut purchased = purchased.to_vec();
        purchased.sort_unstable();
        purchased.dedup();
        self.request.user = User {
            id,
            age: age.map_or(-1, |a| a.min(i32::MAX as u32) as i32),
            country,
            favorite_categories: cats,
            favorite_tags: tags,
            purchased,
        };
        self
    }

    pub fn context(
        mut self,
        country: Option<&str>,
        device: Option<&str>,
        hour_of_day: Option<u8>,
        is_weekend: bool,
        now_ms: i64,
        extra: &[(&str, &str)],
    ) -> Self {
        let country = self.intern_opt(country);
        let device = self.intern_opt(device);
        let mut keys = Vec::new();
        let mut values = Vec::new();
        for (k, v) in extra {
            keys.push(self.intern(k));
            values.push(self.intern(v));
        }
        self.request.context = Context {
            country,
            device,
            hour_of_day: hour_of_day.map_or(-1, i32::from),
            is_weekend,
            now_ms,
            extra_keys: keys,
            extra_values: values,
        };
        self
    }

    pub fn now_ms(mut self, now_ms: i64) -> Self {
        self.request.context.now_ms = now_ms;
        self
    }

    pub fn item(mut self, item: Item) -> Self {
        let category = self.intern_opt(item.category.as_deref());
        let tags: Vec<u32> = item.tags.iter().map(|t| self.intern(t)).collect();
        let origin = self.intern_opt(item.origin_country.as_deref());
        let allowed: Vec<u32> = item
            .allowed_countries
            .iter()
            .map(|c| self.intern(c))
            .collect();
        let blocked: Vec<u32> = item
            .blocked_countries
            .iter()
            .map(|c| self.intern(c))
            .collect();
        let c: &mut Candidates = &mut self.request.candidates;
        c.ids.push(item.id);
        c.scores.push(item.score);
        c.categories.push(category);
        c.tags.extend(tags);
        c.tag_offsets.push(c.tags.len() as u32);
        c.created_at_ms.push(item.created_at_ms);
        c.in_stock.push(match item.in_stock {
            Some(false) => 0,
            Some(true) => 1,
            None => 2,
        });
        c.promo_end_ms.push(match item.promo_end_ms {
            None => i64::MIN,
            Some(None) => i64::MAX,
            Some(Some(end)) => end,
        });
        c.min_age.push(item.min_age);
        c.origin_country.push(origin);
        c.allowed_countries.extend(allowed);
        c.allowed_offsets.push(c.allowed_countries.len() as u32);
        c.blocked_countries.extend(blocked);
        c.blocked_offsets.push(c.blocked_countries.len() as u32);
        self
    }

    pub fn build(mut self) -> Request {
        self.request.symbols = self.symbols;
        self.request
    }
}
