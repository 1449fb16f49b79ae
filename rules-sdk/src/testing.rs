//! Run rules natively, with no Wasm and no host: a rule's unit tests build
//! a request from plain values ([`RequestBuilder`], the encoding the host
//! uses too) and run it through the same contract checks the host applies.

pub use crate::builder::{Item, RequestBuilder};
use crate::{Candidates, Config, Kind, Outcome, Request, Rule, contract};

/// The list after a rule ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub candidates: Candidates,
    pub effect: contract::Effect,
}

impl Ranked {
    pub fn ids(&self) -> Vec<i64> {
        self.candidates.ids.clone()
    }

    pub fn score_of(&self, id: i64) -> Option<f64> {
        let i = self.candidates.ids.iter().position(|&x| x == id)?;
        Some(self.candidates.scores[i])
    }
}

/// The rule's config: defaults, with `overrides` by name.
pub fn config_for<R: Rule>(overrides: &[(&str, f64)]) -> Vec<f64> {
    let meta = R::metadata();
    meta.params
        .iter()
        .map(|p| {
            overrides
                .iter()
                .find(|(n, _)| *n == p.name)
                .map_or(p.default_value, |(_, v)| *v)
        })
        .collect()
}

/// Runs `R` on `request` natively, with the host's contract checks.
pub fn run<R: Rule>(request: &Request, overrides: &[(&str, f64)]) -> Result<Ranked, String> {
    let meta = R::metadata();
    let mut request = request.clone();
    request.config = config_for::<R>(overrides);
    let config = Config::new(&meta.params, &request.config);
    let outcome = R::apply(&request, &config)?;
    let mut candidates = request.candidates.clone();
    let effect = contract::apply(meta.kind, &mut candidates, outcome).map_err(|v| v.to_string())?;
    Ok(Ranked { candidates, effect })
}

/// The outcome alone, unchecked (to test what a rule returns).
pub fn raw<R: Rule>(request: &Request, overrides: &[(&str, f64)]) -> Result<Outcome, String> {
    let meta = R::metadata();
    let mut request = request.clone();
    request.config = config_for::<R>(overrides);
    let config = Config::new(&meta.params, &request.config);
    R::apply(&request, &config)
}

/// Whether a kind's outcome variant matches (for hostile-rule tests).
pub fn kind_of(outcome: &Outcome) -> Kind {
    match outcome {
        Outcome::Dropped(_) => Kind::Filter,
        Outcome::Rescored(_) => Kind::Boost,
        Outcome::Reordered(_) => Kind::Rerank,
    }
}
