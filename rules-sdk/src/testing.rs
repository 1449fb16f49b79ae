//! Run rules natively, with no Wasm and no host: a rule's unit tests build
//! a [`Subject`] from plain values ([`RequestBuilder`]), and [`run`] cuts
//! it down to the rule's declared inputs, encodes it as the host would and
//! applies the outcome with the host's contract checks.
//!
//! ```
//! use recengine_rules_sdk::{Kind, Metadata, Outcome, Params, Request, Rule, input};
//! use recengine_rules_sdk::testing::{Item, RequestBuilder, run};
//!
//! struct Cheap;
//! impl Rule for Cheap {
//!     fn metadata() -> Metadata {
//!         Metadata::new("cheap", Kind::Filter, 10, "Under 20 only")
//!             .input(input::item_number("price"))
//!     }
//!     fn apply(req: &Request, _: &Params) -> Result<Outcome, String> {
//!         Ok(Outcome::drop_where(req, |c| c.number("price").is_some_and(|p| p >= 20.0)))
//!     }
//! }
//!
//! let req = RequestBuilder::new()
//!     .item(Item::new(1, 0.9).attr("price", 35.0))
//!     .item(Item::new(2, 0.8).attr("price", 5.0))
//!     .item(Item::new(3, 0.7))
//!     .build();
//! assert_eq!(run::<Cheap>(&req, &[]).unwrap().ids(), vec![2, 3]);
//! ```

pub use crate::builder::{Item, RequestBuilder, Subject};
use crate::{
    Metadata, Outcome, ParamValue, Params, Placement, Request, Rule,
    contract::{self, Effect, List},
};

/// The list after a rule ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The list as the host would leave it (a promote rule's placements
    /// are not applied: see [`Ranked::promoted`]).
    pub list: List,
    /// What the rule changed, as the trace reports it.
    pub effect: Effect,
}

impl Ranked {
    /// The ids left, in their new order.
    pub fn ids(&self) -> Vec<i64> {
        self.list.ids.clone()
    }

    /// The score of `id` after the rule; `None` if it is not in the list.
    pub fn score_of(&self, id: i64) -> Option<f64> {
        let i = self.list.ids.iter().position(|&x| x == id)?;
        Some(self.list.scores[i])
    }

    /// What a promote rule asked to place.
    pub fn promoted(&self) -> &[Placement] {
        &self.effect.promoted
    }
}

/// The rule's parameters: defaults, with `overrides` by name. Panics on a
/// name the metadata does not declare or a value it would refuse, as the
/// host refuses them.
pub fn params_for(meta: &Metadata, overrides: &[(&str, ParamValue)]) -> Vec<ParamValue> {
    for (name, value) in overrides {
        let param = meta
            .params
            .iter()
            .find(|p| p.name == *name)
            .unwrap_or_else(|| panic!("parameter {name:?} is not declared in the metadata"));
        if let Err(e) = param.check(value) {
            panic!("the host would refuse this value: {e}");
        }
    }
    meta.params
        .iter()
        .map(|p| {
            overrides
                .iter()
                .find(|(n, _)| *n == p.name)
                .map_or_else(|| p.default_value.clone(), |(_, v)| v.clone())
        })
        .collect()
}

/// Number and flag overrides as parameter values (a flag from 0 or 1).
fn numeric_overrides(meta: &Metadata, overrides: &[(&str, f64)]) -> Vec<(String, ParamValue)> {
    overrides
        .iter()
        .map(|&(name, v)| {
            let flag = meta
                .params
                .iter()
                .any(|p| p.name == name && matches!(p.default_value, ParamValue::Flag(_)));
            let value = if flag {
                ParamValue::Flag(v >= 0.5)
            } else {
                ParamValue::Number(v)
            };
            (name.to_string(), value)
        })
        .collect()
}

/// The request `R` receives for `subject`, with `overrides`.
pub fn request_for<R: Rule>(subject: &Subject, overrides: &[(&str, ParamValue)]) -> Request {
    let meta = R::metadata();
    subject.request_for(&meta, params_for(&meta, overrides))
}

/// Runs `R` natively, with the host's contract checks. `overrides` set
/// number and flag parameters (a flag from 0 or 1); [`run_with`] takes any.
pub fn run<R: Rule>(subject: &Subject, overrides: &[(&str, f64)]) -> Result<Ranked, String> {
    let meta = R::metadata();
    let typed = numeric_overrides(&meta, overrides);
    let typed: Vec<(&str, ParamValue)> =
        typed.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    run_with::<R>(subject, &typed)
}

/// [`run`] with parameters of any type.
pub fn run_with<R: Rule>(
    subject: &Subject,
    overrides: &[(&str, ParamValue)],
) -> Result<Ranked, String> {
    let meta = R::metadata();
    let request = request_for::<R>(subject, overrides);
    let outcome = R::apply(&request, &Params::of(&meta, &request))?;
    let mut list = List::new(request.ids().to_vec(), request.scores().to_vec());
    let effect = contract::apply(meta.kind, &mut list, outcome).map_err(|v| v.to_string())?;
    Ok(Ranked { list, effect })
}

/// The outcome alone, unchecked (to test what a rule returns).
pub fn raw<R: Rule>(
    subject: &Subject,
    overrides: &[(&str, ParamValue)],
) -> Result<Outcome, String> {
    let meta = R::metadata();
    let request = request_for::<R>(subject, overrides);
    R::apply(&request, &Params::of(&meta, &request))
}
