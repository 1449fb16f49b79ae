//! `boost_high_margin` (boost, priority 55): favours the items the shop
//! earns most on, multiplying each score by `1 + weight * margin`.
//!
//! Reads: item `margin` (number): a key of the item's `features`, the
//! margin as a fraction of the price (0 to 1; values outside are clamped
//! to that range). Items without a margin keep their score.
//!
//! Parameters: `weight` (number, default 0.5, 0 to 10): how much a margin
//! counts; 0 switches the boost off, 0.5 gives a 100 % margin item x1.5.

use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Params, Request, Rule, input};

/// The rule.
pub struct BoostHighMargin;

impl Rule for BoostHighMargin {
    fn metadata() -> Metadata {
        Metadata::new(
            "boost_high_margin",
            Kind::Boost,
            55,
            "Multiplies the score by 1 + weight * margin (the item's margin, a fraction 0..1)",
        )
        .input(input::item_number("margin"))
        .param(Param::number(
            "weight",
            "How much the margin counts: score x (1 + weight x margin)",
            0.5,
            0.0,
            10.0,
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let weight = params.number("weight");
        Ok(Outcome::rescore(req, |c| match c.number("margin") {
            Some(margin) => c.score() * (1.0 + weight * margin.clamp(0.0, 1.0)),
            None => c.score(),
        }))
    }
}

recengine_rules_sdk::export_rule!(BoostHighMargin);

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::testing::{Item, RequestBuilder, Subject, run};

    use super::*;

    fn catalogue() -> Subject {
        RequestBuilder::new()
            .item(Item::new(1, 1.0).attr("margin", 0.2))
            .item(Item::new(2, 0.95))
            .item(Item::new(3, 0.9).attr("margin", 0.8))
            .item(Item::new(4, 0.5).attr("margin", 3.0))
            .item(Item::new(5, 0.4).attr("margin", -0.5))
            .build()
    }

    #[test]
    fn margins_boost_and_resort() {
        let r = run::<BoostHighMargin>(&catalogue(), &[]).unwrap();
        assert_eq!(r.score_of(1), Some(1.0 * (1.0 + 0.5 * 0.2)));
        assert_eq!(r.score_of(2), Some(0.95), "no margin: unchanged");
        assert_eq!(r.score_of(3), Some(0.9 * (1.0 + 0.5 * 0.8)));
        assert_eq!(r.score_of(4), Some(0.5 * 1.5), "clamped to 1");
        assert_eq!(r.score_of(5), Some(0.4), "clamped to 0");
        assert_eq!(r.ids(), vec![3, 1, 2, 4, 5]);
        let changed: Vec<i64> = r.effect.rescored.iter().map(|(id, _, _)| *id).collect();
        assert_eq!(changed, vec![1, 3, 4]);
    }

    #[test]
    fn weight_sets_the_strength() {
        let off = run::<BoostHighMargin>(&catalogue(), &[("weight", 0.0)]).unwrap();
        assert_eq!(off.ids(), vec![1, 2, 3, 4, 5]);
        assert!(off.effect.rescored.is_empty());
        let strong = run::<BoostHighMargin>(&catalogue(), &[("weight", 2.0)]).unwrap();
        assert_eq!(strong.score_of(1), Some(1.0 * (1.0 + 2.0 * 0.2)));
        assert_eq!(strong.score_of(4), Some(0.5 * 3.0));
        assert_eq!(strong.ids(), vec![3, 4, 1, 2, 5]);
    }
}
