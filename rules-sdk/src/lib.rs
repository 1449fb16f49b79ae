#![warn(missing_docs)]

//! The SDK for recengine business rules (contract `recengine:rules@0.2.0`).
//!
//! A rule is a type implementing [`Rule`]: its [`Metadata`] (name, kind,
//! priority, parameters, and the inputs it reads) and an `apply` function
//! that decides over one list of candidates. [`export_rule!`] turns it into
//! a WebAssembly component implementing the WIT contract (`wit/rules.wit`);
//! [`testing`] runs the very same code natively, so a rule is unit-tested
//! with plain `cargo test`.
//!
//! A rule reads only what it declares: item attributes (any key of an
//! item's `features`), feature-store statistics, user attributes and
//! features, user-item features and context keys, each typed. The host
//! computes exactly the union of what the active rules declare, once per
//! request.
//!
//! In a loop over the candidates, read an input through a column handle
//! looked up once ([`Request::numbers`], [`Request::texts`],
//! [`Request::flags`], [`Request::strings`]: `price.get(c.position())`)
//! rather than by name on every read (`c.number("price")`): both read the
//! same values; the handle does not search.
//!
//! ```
//! use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Params, Request, Rule, input};
//!
//! /// Drops items whose price is above the budget the page sends.
//! pub struct WithinBudget;
//!
//! impl Rule for WithinBudget {
//!     fn metadata() -> Metadata {
//!         Metadata::new("within_budget", Kind::Filter, 80, "Drops items above the page's budget")
//!             .input(input::item_number("price"))
//!             .input(input::context_number("budget"))
//!             .param(Param::flag("keep_unpriced", "Keep items without a price", true))
//!     }
//!     fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
//!         let Some(budget) = req.context().number("budget") else {
//!             return Ok(Outcome::keep_all());
//!         };
//!         let keep_unpriced = params.flag("keep_unpriced");
//!         Ok(Outcome::drop_where(req, |c| match c.number("price") {
//!             Some(price) => price > budget,
//!             None => !keep_unpriced,
//!         }))
//!     }
//! }
//!
//! // In the rule's crate (built for wasm32-wasip2):
//! // recengine_rules_sdk::export_rule!(WithinBudget);
//!
//! use recengine_rules_sdk::testing::{Item, RequestBuilder, run};
//! let req = RequestBuilder::new()
//!     .context_value("budget", "50")
//!     .item(Item::new(1, 0.9).attr("price", 80.0))
//!     .item(Item::new(2, 0.8).attr("price", 20.0))
//!     .item(Item::new(3, 0.7))
//!     .build();
//! assert_eq!(run::<WithinBudget>(&req, &[]).unwrap().ids(), vec![2, 3]);
//! ```

pub mod builder;
pub mod contract;
mod metadata;
mod request;
pub mod testing;
pub mod wire;

pub use metadata::{Input, Metadata, Param, ParamValue, Scope, ValueType, input};
pub use request::{Candidate, Flags, Numbers, Params, Request, Scoped, StringLists, Symbol, Texts};

/// The version stamped into every rule's metadata. The host accepts rules
/// whose major.minor matches a contract it implements.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a rule may do (see [`contract`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Removes candidates.
    Filter,
    /// Changes scores (the list is re-sorted).
    Boost,
    /// Reorders the list.
    Rerank,
    /// Places items from anywhere in the catalogue at chosen positions,
    /// after every other rule ran.
    Promote,
}

impl Kind {
    /// The kind's name as the contract and the API spell it: `filter`,
    /// `boost`, `rerank` or `promote`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Boost => "boost",
            Kind::Rerank => "rerank",
            Kind::Promote => "promote",
        }
    }
}

/// An item a promote rule places, and where: position 1 is the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The item to place: any item id of the catalogue, not only a
    /// candidate's (the host looks it up; an unknown id is dropped).
    pub item_id: i64,
    /// Where to put it, 1-based (1 is the top); past the end of the list
    /// means the end. 0 breaks the contract.
    pub position: u32,
}

impl Placement {
    /// `item_id` at `position` (1 is the top).
    pub fn at(item_id: i64, position: u32) -> Self {
        Self { item_id, position }
    }

    /// `item_id` at position 1, the top of the list.
    pub fn top(item_id: i64) -> Self {
        Self::at(item_id, 1)
    }
}

/// A rule's decision; the variant must match its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Positions to remove (filters).
    Dropped(Vec<u32>),
    /// Every candidate's new score (boosts).
    Rescored(Vec<f64>),
    /// Every position once, in the new order (reranks).
    Reordered(Vec<u32>),
    /// Items to place (promotes).
    Promoted(Vec<Placement>),
}

impl Outcome {
    /// A filter that removes the candidates for which `pred` holds.
    pub fn drop_where(req: &Request, mut pred: impl FnMut(Candidate<'_>) -> bool) -> Outcome {
        Outcome::Dropped(
            req.candidates()
                .filter(|c| pred(*c))
                .map(|c| c.position() as u32)
                .collect(),
        )
    }

    /// A filter that removes nothing.
    pub fn keep_all() -> Outcome {
        Outcome::Dropped(Vec::new())
    }

    /// A boost giving each candidate the score `score` returns.
    pub fn rescore(req: &Request, score: impl FnMut(Candidate<'_>) -> f64) -> Outcome {
        Outcome::Rescored(req.candidates().map(score).collect())
    }
}

/// A business rule.
pub trait Rule {
    /// What the rule is: name, kind, default priority, parameters and the
    /// inputs it reads. The host calls it once, when it loads the
    /// component; the SDK calls it again on every `apply` to read the
    /// request, so it must return the same value every time.
    fn metadata() -> Metadata;
    /// The rule's decision over one request's candidates, with the
    /// parameter values operators set. The [`Outcome`] variant must match
    /// the rule's [`Kind`]. An `Err` marks the call as failed: the rule's
    /// failure policy applies (fail-open skips the rule, fail-closed
    /// withholds the list).
    fn apply(request: &Request, params: &Params) -> Result<Outcome, String>;
}

/// The generated bindings; used by [`export_rule!`], not by rule authors.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wit {
    wit_bindgen::generate!({
        path: "wit/rules.wit",
        world: "rule",
        pub_export_macro: true,
        default_bindings_module: "recengine_rules_sdk::wit",
    });

    use self::recengine::rules::types as w;
    use crate::{
        Input, Kind, ParamValue, Scope, ValueType,
        wire::{Column, Symbols, Value, WireRequest},
    };

    fn param_value_to_wit(v: ParamValue) -> w::ParamValue {
        match v {
            ParamValue::Number(n) => w::ParamValue::Number(n),
            ParamValue::Flag(b) => w::ParamValue::Flag(b),
            ParamValue::Text(s) => w::ParamValue::Text(s),
            ParamValue::Strings(v) => w::ParamValue::Strings(v),
        }
    }

    fn input_to_wit(i: Input) -> w::Input {
        w::Input {
            scope: match i.scope {
                Scope::Item => w::Scope::Item,
                Scope::ItemStat => w::Scope::ItemStat,
                Scope::User => w::Scope::User,
                Scope::UserStat => w::Scope::UserStat,
                Scope::UserItem => w::Scope::UserItem,
                Scope::Context => w::Scope::Context,
            },
            name: i.name,
            value_type: match i.value_type {
                ValueType::Number => w::ValueType::Number,
                ValueType::Flag => w::ValueType::Flag,
                ValueType::Text => w::ValueType::Text,
                ValueType::Strings => w::ValueType::Strings,
                ValueType::Ids => w::ValueType::Ids,
                ValueType::Timestamp => w::ValueType::Timestamp,
            },
        }
    }

    pub fn metadata_to_wit(m: crate::Metadata) -> w::RuleMetadata {
        w::RuleMetadata {
            name: m.name,
            kind: match m.kind {
                Kind::Filter => w::RuleKind::Filter,
                Kind::Boost => w::RuleKind::Boost,
                Kind::Rerank => w::RuleKind::Rerank,
                Kind::Promote => w::RuleKind::Promote,
            },
            default_priority: m.default_priority,
            description: m.description,
            params: m
                .params
                .into_iter()
                .map(|p| w::Param {
                    name: p.name,
                    description: p.description,
                    default_value: param_value_to_wit(p.default_value),
                    min: p.min,
                    max: p.max,
                    allowed: p.allowed,
                })
                .collect(),
            inputs: m.inputs.into_iter().map(input_to_wit).collect(),
            sdk_version: m.sdk_version,
            fail_closed: m.fail_closed,
        }
    }

    /// Moves the lowered request into SDK types (no copies of the columns).
    pub fn request_from_wit(r: w::Request, inputs: Vec<Input>) -> crate::Request {
        let wire = WireRequest {
            symbols: Symbols {
                text: r.symbol_text,
                ends: r.symbol_ends,
            },
            user_id: r.user_id,
            now_ms: r.now_ms,
            ids: r.ids,
            scores: r.scores,
            columns: r
                .columns
                .into_iter()
                .map(|c| match c {
                    w::Column::Numbers(v) => Column::Numbers(v),
                    w::Column::Flags(v) => Column::Flags(v),
                    w::Column::Texts(v) => Column::Texts(v),
                    w::Column::Strings(s) => Column::Strings {
                        offsets: s.offsets,
                        symbols: s.symbols,
                    },
                })
                .collect(),
            values: r
                .values
                .into_iter()
                .map(|v| match v {
                    w::Value::Absent => Value::Absent,
                    w::Value::Number(n) => Value::Number(n),
                    w::Value::Flag(b) => Value::Flag(b),
                    w::Value::Text(s) => Value::Text(s),
                    w::Value::Strings(v) => Value::Strings(v),
                    w::Value::Ids(v) => Value::Ids(v),
                })
                .collect(),
            params: r
                .params
                .into_iter()
                .map(|p| match p {
                    w::ParamValue::Number(n) => ParamValue::Number(n),
                    w::ParamValue::Flag(b) => ParamValue::Flag(b),
                    w::ParamValue::Text(s) => ParamValue::Text(s),
                    w::ParamValue::Strings(v) => ParamValue::Strings(v),
                })
                .collect(),
            exclude_ids: r.exclude_ids,
        };
        crate::Request::with_inputs(wire, inputs)
    }

    pub fn outcome_to_wit(o: crate::Outcome) -> w::Outcome {
        match o {
            crate::Outcome::Dropped(v) => w::Outcome::Dropped(v),
            crate::Outcome::Rescored(v) => w::Outcome::Rescored(v),
            crate::Outcome::Reordered(v) => w::Outcome::Reordered(v),
            crate::Outcome::Promoted(v) => w::Outcome::Promoted(
                v.into_iter()
                    .map(|p| w::Placement {
                        item_id: p.item_id,
                        position: p.position,
                    })
                    .collect(),
            ),
        }
    }
}

/// Exports a [`Rule`] as the component's implementation of the
/// `recengine:rules/rule@0.2.0` world. Use once, in the rule's crate.
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
                    let mut metadata = <$rule as $crate::Rule>::metadata();
                    // The request takes the declared inputs' names over
                    // (no copy per call).
                    let inputs = ::core::mem::take(&mut metadata.inputs);
                    let request = $crate::wit::request_from_wit(request, inputs);
                    let params = $crate::Params::of(&metadata, &request);
                    <$rule as $crate::Rule>::apply(&request, &params)
                        .map($crate::wit::outcome_to_wit)
                }
            }

    $crate::wit::export!(Component with_types_in $crate::wit);
        };
    };
}
