//! The SDK for recengine business rules.
//!
//! A rule is a type implementing [`Rule`]: its [`Metadata`] (name, kind,
//! priority, parameters) and an `apply` function that decides over one list
//! of candidates. [`export_rule!`] turns it into a WebAssembly component
//! implementing the `recengine:rules` WIT contract; [`testing`] runs the very
//! same code natively, so a rule is unit-tested with plain `cargo test`, on
//! requests made by [`builder`] (which the host uses for real requests too).
//!
//! ```
//! use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Request, Rule, Config};
//!
//! /// Drops every item of the "tobacco" category.
//! pub struct NoTobacco;
//!
//! impl Rule for NoTobacco {
//!     fn metadata() -> Metadata {
//!         Metadata::new("no_tobacco", Kind::Filter, 99, "Never recommend tobacco")
//!     }
//!     fn apply(req: &Request, _config: &Config) -> Result<Outcome, String> {
//!         let tobacco = req.symbol_id("tobacco");
//!         let dropped = (0..req.candidates.len())
//!             .filter(|&i| Some(req.candidates.categories[i]) == tobacco)
//!             .map(|i| i as u32)
//!             .collect();
//!         Ok(Outcome::Dropped(dropped))
//!     }
//! }
//!
//! // In the rule's crate (built for wasm32-wasip2):
//! // recengine_rules_sdk::export_rule!(NoTobacco);
//!
//! use recengine_rules_sdk::testing::{Item, RequestBuilder};
//! let req = RequestBuilder::new()
//!     .item(Item::new(1, 0.9).category("tobacco"))
//!     .item(Item::new(2, 0.8).category("books"))
//!     .build();
//! let kept = recengine_rules_sdk::testing::run::<NoTobacco>(&req, &[]).unwrap();
//! assert_eq!(kept.ids(), vec![2]);
//! ```

pub mod builder;
pub mod contract;
pub mod testing;

/// The version stamped into every rule's metadata. The host accepts rules
/// whose major.minor matches the contract it implements.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// "No symbol": an absent category, country, device...
pub const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Filter,
    Boost,
    Rerank,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Boost => "boost",
            Kind::Rerank => "rerank",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub description: String,
    pub default_value: f64,
    pub min: f64,
    pub max: f64,
}

impl Param {
    pub fn new(name: &str, description: &str, default_value: f64, min: f64, max: f64) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            default_value,
            min,
            max,
        }
    }

    /// A 0/1 switch.
    pub fn flag(name: &str, description: &str, default_value: bool) -> Self {
        Self::new(
            name,
            description,
            f64::from(u8::from(default_value)),
            0.0,
            1.0,
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub name: String,
    pub kind: Kind,
    pub default_priority: i32,
    pub description: String,
    pub params: Vec<Param>,
    pub sdk_version: String,
    pub fail_closed: bool,
}

impl Metadata {
    pub fn new(name: &str, kind: Kind, default_priority: i32, description: &str) -> Self {
        Self {
            name: name.into(),
            kind,
            default_priority,
            description: description.into(),
            params: Vec::new(),
            sdk_version: SDK_VERSION.into(),
            fail_closed: false,
        }
    }

    pub fn param(mut self, param: Param) -> Self {
        self.params.push(param);
        self
    }

    /// Mark a safety rule: if it fails, the host shows nothing rather than
    /// an unfiltered list (operators can still override the policy).
    pub fn fail_closed(mut self) -> Self {
        self.fail_closed = true;
        self
    }

    /// The parameter defaults, in declaration order.
    pub fn default_config(&self) -> Vec<f64> {
        self.params.iter().map(|p| p.default_value).collect()
    }
}

/// The rule's parameters for this call, readable by name.
pub struct Config<'a> {
    params: &'a [Param],
    values: &'a [f64],
}

impl<'a> Config<'a> {
    pub fn new(params: &'a [Param], values: &'a [f64]) -> Self {
        Self { params, values }
    }

    /// The value of `name`; its default if the host sent fewer values.
    /// Panics on a name the metadata does not declare (a bug in the rule,
    /// caught by its first unit test).
    pub fn get(&self, name: &str) -> f64 {
        let index = self
            .params
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("parameter {name:?} is not declared in the metadata"));
        self.values
            .get(index)
            .copied()
            .unwrap_or(self.params[index].default_value)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.get(name) >= 0.5
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    pub id: i64,
    /// -1 when unknown.
    pub age: i32,
    pub country: u32,
    pub favorite_categories: Vec<u32>,
    pub favorite_tags: Vec<u32>,
    /// Ascending.
    pub purchased: Vec<i64>,
}

impl User {
    pub fn age(&self) -> Option<u32> {
        u32::try_from(self.age).ok()
    }

    pub fn has_purchased(&self, item: i64) -> bool {
        self.purchased.binary_search(&item).is_ok()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub country: u32,
    pub device: u32,
    /// 0..=23, -1 when unknown.
    pub hour_of_day: i32,
    pub is_weekend: bool,
    pub now_ms: i64,
    pub extra_keys: Vec<u32>,
    pub extra_values: Vec<u32>,
}

/// Candidates as columns (see `wit/rules.wit`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidates {
    pub ids: Vec<i64>,
    pub scores: Vec<f64>,
    pub categories: Vec<u32>,
    pub tag_offsets: Vec<u32>,
    pub tags: Vec<u32>,
    pub created_at_ms: Vec<i64>,
    /// 0 = out of stock, 1 = in stock, 2 = unknown.
    pub in_stock: Vec<u8>,
    /// `i64::MIN`: not promotional; `i64::MAX`: promotion without an end.
    pub promo_end_ms: Vec<i64>,
    pub min_age: Vec<i32>,
    pub origin_country: Vec<u32>,
    pub allowed_offsets: Vec<u32>,
    pub allowed_countries: Vec<u32>,
    pub blocked_offsets: Vec<u32>,
    pub blocked_countries: Vec<u32>,
}

fn span<'a>(offsets: &[u32], values: &'a [u32], i: usize) -> &'a [u32] {
    match (offsets.get(i), offsets.get(i + 1)) {
        (Some(&a), Some(&b)) if a <= b => values.get(a as usize..b as usize).unwrap_or(&[]),
        _ => &[],
    }
}

impl Candidates {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn tags(&self, i: usize) -> &[u32] {
        span(&self.tag_offsets, &self.tags, i)
    }

    pub fn allowed_countries(&self, i: usize) -> &[u32] {
        span(&self.allowed_offsets, &self.allowed_countries, i)
    }

    pub fn blocked_countries(&self, i: usize) -> &[u32] {
        span(&self.blocked_offsets, &self.blocked_countries, i)
    }

    /// Keeps only the positions in `keep` (ascending), rebuilding the
    /// offset columns. The host applies a filter's decision with this.
    pub fn retain_positions(&mut self, keep: &[usize]) {
        self.reorder(keep);
    }

    /// Rebuilds every column in the order given by `order` (positions into
    /// the current columns; may omit positions to drop them).
    pub fn reorder(&mut self, order: &[usize]) {
        fn pick<T: Copy>(v: &[T], order: &[usize]) -> Vec<T> {
            order.iter().map(|&i| v[i]).collect()
        }
        fn pick_spans(offsets: &[u32], values: &[u32], order: &[usize]) -> (Vec<u32>, Vec<u32>) {
            let mut new_offsets = Vec::with_capacity(order.len() + 1);
            let mut new_values = Vec::new();
            new_offsets.push(0);
            for &i in order {
                new_values.extend_from_slice(span(offsets, values, i));
                new_offsets.push(new_values.len() as u32);
            }
            (new_offsets, new_values)
        }
        let (tag_offsets, tags) = pick_spans(&self.tag_offsets, &self.tags, order);
        let (allowed_offsets, allowed_countries) =
            pick_spans(&self.allowed_offsets, &self.allowed_countries, order);
        let (blocked_offsets, blocked_countries) =
            pick_spans(&self.blocked_offsets, &self.blocked_countries, order);
        *self = Candidates {
            ids: pick(&self.ids, order),
            scores: pick(&self.scores, order),
            categories: pick(&self.categories, order),
            tag_offsets,
            tags,
            created_at_ms: pick(&self.created_at_ms, order),
            in_stock: pick(&self.in_stock, order),
            promo_end_ms: pick(&self.promo_end_ms, order),
            min_age: pick(&self.min_age, order),
            origin_country: pick(&self.origin_country, order),
            allowed_offsets,
            allowed_countries,
            blocked_offsets,
            blocked_countries,
        };
    }

    /// Orders by score, highest first; ties keep their current order.
    pub fn sort_by_score(&mut self) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by(|&a, &b| self.scores[b].total_cmp(&self.scores[a]));
        if order.iter().enumerate().any(|(pos, &i)| pos != i) {
            self.reorder(&order);
        }
    }
}

/// The strings of a request, interned: one text and the end offset of each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Symbols {
    pub text: String,
    pub ends: Vec<u32>,
}

impl Symbols {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, id: u32) -> Option<&str> {
        let i = id as usize;
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..end)
    }

    pub fn push(&mut self, s: &str) -> u32 {
        self.text.push_str(s);
        self.ends.push(self.text.len() as u32);
        (self.ends.len() - 1) as u32
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len() as u32).filter_map(|i| self.get(i))
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub symbols: Symbols,
    pub user: User,
    pub context: Context,
    pub candidates: Candidates,
    pub config: Vec<f64>,
}

impl Request {
    pub fn symbol(&self, id: u32) -> Option<&str> {
        self.symbols.get(id)
    }

    /// The id of a string, if any candidate, the user or the context uses it.
    pub fn symbol_id(&self, s: &str) -> Option<u32> {
        self.symbols.iter().position(|x| x == s).map(|i| i as u32)
    }

    /// Where geo rules look: the request's country, else the user's.
    pub fn effective_country(&self) -> u32 {
        if self.context.country != NONE {
            self.context.country
        } else {
            self.user.country
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Positions to remove (filters).
    Dropped(Vec<u32>),
    /// Every candidate's new score (boosts).
    Rescored(Vec<f64>),
    /// Every position once, in the new order (reranks).
    Reordered(Vec<u32>),
}

/// A business rule.
pub trait Rule {
    fn metadata() -> Metadata;
    fn apply(request: &Request, config: &Config) -> Result<Outcome, String>;
}

/// The generated bindings; used by [`export_rule!`], not by rule authors.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "rule",
        pub_export_macro: true,
        default_bindings_module: "recengine_rules_sdk::wit",
    });

    use self::recengine::rules::types as w;

    pub fn metadata_to_wit(m: crate::Metadata) -> w::RuleMetadata {
        w::RuleMetadata {
            name: m.name,
            kind: match m.kind {
                crate::Kind::Filter => w::RuleKind::Filter,
                crate::Kind::Boost => w::RuleKind::Boost,
                crate::Kind::Rerank => w::RuleKind::Rerank,
            },
            default_priority: m.default_priority,
            description: m.description,
            params: m
                .params
                .into_iter()
                .map(|p| w::Param {
                    name: p.name,
                    description: p.description,
                    default_value: p.default_value,
                    min: p.min,
                    max: p.max,
                })
                .collect(),
            sdk_version: m.sdk_version,
            fail_closed: m.fail_closed,
        }
    }

    /// Moves the lowered request into SDK types (no copies of the columns).
    pub fn request_from_wit(r: w::Request) -> crate::Request {
        let c = r.candidates;
        crate::Request {
            symbols: crate::Symbols {
                text: r.symbol_text,
                ends: r.symbol_ends,
            },
            user: crate::User {
                id: r.user.id,
                age: r.user.age,
                country: r.user.country,
                favorite_categories: r.user.favorite_categories,
                favorite_tags: r.user.favorite_tags,
                purchased: r.user.purchased,
            },
            context: crate::Context {
                country: r.context.country,
                device: r.context.device,
                hour_of_day: r.context.hour_of_day,
                is_weekend: r.context.is_weekend,
                now_ms: r.context.now_ms,
                extra_keys: r.context.extra_keys,
                extra_values: r.context.extra_values,
            },
            candidates: crate::Candidates {
                ids: c.ids,
                scores: c.scores,
                categories: c.categories,
                tag_offsets: c.tag_offsets,
                tags: c.tags,
                created_at_ms: c.created_at_ms,
                in_stock: c.in_stock,
                promo_end_ms: c.promo_end_ms,
                min_age: c.min_age,
                origin_country: c.origin_country,
                allowed_offsets: c.allowed_offsets,
                allowed_countries: c.allowed_countries,
                blocked_offsets: c.blocked_offsets,
                blocked_countries: c.blocked_countries,
            },
            config: r.config,
        }
    }

    pub fn outcome_to_wit(o: crate::Outcome) -> w::Outcome {
        match o {
            crate::Outcome::Dropped(v) => w::Outcome::Dropped(v),
            crate::Outcome::Rescored(v) => w::Outcome::Rescored(v),
            crate::Outcome::Reordered(v) => w::Outcome::Reordered(v),
        }
    }
}

/// Exports a [`Rule`] as the component's implementation of the
/// `recengine:rules/rule` world. Use once, in the rule's crate.
#[macro_export]
macro_rules! export_rule {
    ($rule:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Component;

            impl $crate::wit::Guest for Component {
                fn metadata() -> $crate::wit::recengine::rules::types::RuleMetadata {
                    $crate::wit::metadata_to_wit(<$rule as $crate::Rule>::metadata())
                }

                fn apply(
                    request: $crate::wit::recengine::rules::types::Request,
                ) -> Result<$crate::wit::recengine::rules::types::Outcome, String> {
                    let request = $crate::wit::request_from_wit(request);
                    let metadata = <$rule as $crate::Rule>::metadata();
                    let config = $crate::Config::new(&metadata.params, &request.config);
                    <$rule as $crate::Rule>::apply(&request, &config)
                        .map($crate::wit::outcome_to_wit)
                }
            }

    $crate::wit::export!(Component with_types_in $crate::wit);
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_round_trip_through_one_text() {
        let mut s = Symbols::default();
        assert_eq!(s.push("books"), 0);
        assert_eq!(s.push(""), 1);
        assert_eq!(s.push("sci-fi"), 2);
        assert_eq!(s.get(0), Some("books"));
        assert_eq!(s.get(1), Some(""));
        assert_eq!(s.get(2), Some("sci-fi"));
        assert_eq!(s.get(3), None);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec!["books", "", "sci-fi"]);
        // Offsets from an untrusted source never panic.
        let broken = Symbols {
            text: "ab".into(),
            ends: vec![5, 1],
        };
        assert_eq!(broken.get(0), None);
        assert_eq!(broken.get(1), None);
    }
}
