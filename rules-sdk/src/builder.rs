//! Requests from plain values: items with attributes by name, a user and a
//! context in; a [`Subject`] out, which becomes the exact request a rule
//! receives (only its declared inputs, encoded as `wit/rules.wit` says)
//! with [`Subject::request_for`]. Tests build theirs with it.

use std::collections::BTreeMap;

use crate::{
    Metadata, ParamValue, Request, Scope,
    wire::{Datum, Interner, WireRequest},
};

/// An item, as a test describes it: id, score and attributes by name.
#[derive(Debug, Clone, Default)]
pub struct Item {
    /// The item id.
    pub id: i64,
    /// The model's score (the list is in the order items are added, not
    /// sorted by score).
    pub score: f64,
    /// Item attributes (scope `item`), by name.
    pub attributes: BTreeMap<String, Datum>,
    /// Feature-store statistics (scope `item-stat`).
    pub stats: BTreeMap<String, Datum>,
    /// How the request's user relates to it (scope `user-item`).
    pub user_item: BTreeMap<String, Datum>,
}

impl Item {
    /// An item with no attributes, statistics or user-item features.
    pub fn new(id: i64, score: f64) -> Self {
        Self {
            id,
            score,
            ..Self::default()
        }
    }

    /// Any attribute (what the host reads from the item's `features`).
    pub fn attr(mut self, name: &str, value: impl Into<Datum>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// A feature-store statistic (`avg_rating`, ...).
    pub fn stat(mut self, name: &str, value: impl Into<Datum>) -> Self {
        self.stats.insert(name.into(), value.into());
        self
    }

    /// A user-item feature (`category_affinity`, ...).
    pub fn user_item(mut self, name: &str, value: impl Into<Datum>) -> Self {
        self.user_item.insert(name.into(), value.into());
        self
    }

    /// `category`.
    pub fn category(self, c: &str) -> Self {
        self.attr("category", c)
    }
    /// `tags`.
    pub fn tags(self, tags: &[&str]) -> Self {
        self.attr("tags", tags)
    }
    /// `created_at`, in unix ms.
    pub fn created_at_ms(self, ms: i64) -> Self {
        self.attr("created_at", ms)
    }
    /// `in_stock`.
    pub fn in_stock(self, v: bool) -> Self {
        self.attr("in_stock", v)
    }
    /// `is_promotional`, and `promo_end_date` when the promotion ends.
    pub fn promo_until(self, end_ms: Option<i64>) -> Self {
        let item = self.attr("is_promotional", true);
        match end_ms {
            Some(end) => item.attr("promo_end_date", end),
            None => item,
        }
    }
    /// `min_age`.
    pub fn min_age(self, age: i32) -> Self {
        self.attr("min_age", i64::from(age))
    }
    /// `origin_country`.
    pub fn origin(self, country: &str) -> Self {
        self.attr("origin_country", country)
    }
    /// `allowed_countries`.
    pub fn allowed_in(self, countries: &[&str]) -> Self {
        self.attr("allowed_countries", countries)
    }
    /// `blocked_countries`.
    pub fn blocked_in(self, countries: &[&str]) -> Self {
        self.attr("blocked_countries", countries)
    }
}

/// Everything a request could tell any rule: the host's side of a
/// request, before it is cut down to one rule's inputs.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// The id of the user the list is for.
    pub user_id: i64,
    /// The request's clock, unix milliseconds.
    pub now_ms: i64,
    /// The candidates, in list order.
    pub items: Vec<Item>,
    /// Scope `user`.
    pub user: BTreeMap<String, Datum>,
    /// Scope `user-stat`.
    pub user_stats: BTreeMap<String, Datum>,
    /// Scope `context`.
    pub context: BTreeMap<String, Datum>,
    /// Item ids the caller asks not to be shown (any order; the request
    /// carries them sorted, without duplicates).
    pub exclude_ids: Vec<i64>,
}

impl Subject {
    /// The same user, context and exclusions over other items.
    pub fn with_items(&self, items: Vec<Item>) -> Subject {
        Subject {
            user_id: self.user_id,
            now_ms: self.now_ms,
            items,
            user: self.user.clone(),
            user_stats: self.user_stats.clone(),
            context: self.context.clone(),
            exclude_ids: self.exclude_ids.clone(),
        }
    }

    /// The request rule `metadata` receives: its declared inputs, in its
    /// order, and `params` (in the metadata's order).
    pub fn request_for(&self, metadata: &Metadata, params: Vec<ParamValue>) -> Request {
        let mut interner = Interner::new();
        let mut columns = Vec::new();
        let mut values = Vec::new();
        for input in &metadata.inputs {
            let name = input.name.as_str();
            if input.scope.per_candidate() {
                let cells = self.items.iter().map(|item| {
                    match input.scope {
                        Scope::ItemStat => &item.stats,
                        Scope::UserItem => &item.user_item,
                        _ => &item.attributes,
                    }
                    .get(name)
                });
                columns.push(interner.column(input.value_type, cells));
            } else {
                let source = match input.scope {
                    Scope::User => &self.user,
                    Scope::UserStat => &self.user_stats,
                    _ => &self.context,
                };
                values.push(interner.value(input.value_type, source.get(name)));
            }
        }
        let mut exclude_ids = self.exclude_ids.clone();
        exclude_ids.sort_unstable();
        exclude_ids.dedup();
        let wire = WireRequest {
            symbols: interner.finish(),
            user_id: self.user_id,
            now_ms: self.now_ms,
            ids: self.items.iter().map(|i| i.id).collect(),
            scores: self.items.iter().map(|i| i.score).collect(),
            columns,
            values,
            params,
            exclude_ids,
        };
        Request::new(wire, &metadata.inputs)
    }
}

/// Builds a [`Subject`].
#[derive(Debug, Default)]
pub struct RequestBuilder {
    subject: Subject,
}

impl RequestBuilder {
    /// An empty request: user 0, clock at 0, no items, no context.
    pub fn new() -> Self {
        Self::default()
    }

    /// The user as the built-in rules read them: id, `age`, `country`,
    /// `favorite_categories` and `favorite_tags` (scope `user`), and
    /// `purchased` (scope `user-stat`).
    pub fn user(
        mut self,
        id: i64,
        age: Option<u32>,
        country: Option<&str>,
        favorite_categories: &[&str],
        favorite_tags: &[&str],
        purchased: &[i64],
    ) -> Self {
        self.subject.user_id = id;
        if let Some(age) = age {
            self = self.user_attr("age", i64::from(age));
        }
        if let Some(country) = country {
            self = self.user_attr("country", country);
        }
        self.user_attr("favorite_categories", favorite_categories)
            .user_attr("favorite_tags", favorite_tags)
            .user_stat("purchased", purchased)
    }

    /// The user's id alone.
    pub fn user_id(mut self, id: i64) -> Self {
        self.subject.user_id = id;
        self
    }

    /// A key of the user's preferences.
    pub fn user_attr(mut self, name: &str, value: impl Into<Datum>) -> Self {
        self.subject.user.insert(name.into(), value.into());
        self
    }

    /// A feature-store feature of the user.
    pub fn user_stat(mut self, name: &str, value: impl Into<Datum>) -> Self {
        self.subject.user_stats.insert(name.into(), value.into());
        self
    }

    /// The context as the built-in rules read it: `country`, `device`,
    /// `hour_of_day`, `is_weekend`, the clock, and `extra` keys.
    pub fn context(
        mut self,
        country: Option<&str>,
        device: Option<&str>,
        hour_of_day: Option<u8>,
        is_weekend: bool,
        now_ms: i64,
        extra: &[(&str, &str)],
    ) -> Self {
        if let Some(c) = country {
            self = self.context_value("country", c);
        }
        if let Some(d) = device {
            self = self.context_value("device", d);
        }
        if let Some(h) = hour_of_day {
            self = self.context_value("hour_of_day", i64::from(h));
        }
        self = self.context_value("is_weekend", is_weekend);
        for (k, v) in extra {
            self = self.context_value(k, *v);
        }
        self.now_ms(now_ms)
    }

    /// One context key.
    pub fn context_value(mut self, name: &str, value: impl Into<Datum>) -> Self {
        self.subject.context.insert(name.into(), value.into());
        self
    }

    /// The request's clock (what [`Request::now_ms`] returns), unix ms.
    pub fn now_ms(mut self, now_ms: i64) -> Self {
        self.subject.now_ms = now_ms;
        self
    }

    /// Ids the caller asks not to be shown.
    pub fn exclude(mut self, ids: &[i64]) -> Self {
        self.subject.exclude_ids.extend_from_slice(ids);
        self
    }

    /// Appends a candidate (candidates keep the order they are added in).
    pub fn item(mut self, item: Item) -> Self {
        self.subject.items.push(item);
        self
    }

    /// The finished [`Subject`], for [`crate::testing::run`] and friends.
    pub fn build(self) -> Subject {
        self.subject
    }
}
