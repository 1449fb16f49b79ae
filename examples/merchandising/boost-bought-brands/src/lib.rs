//! `boost_bought_brands` (boost, priority 58): multiplies by `factor` the
//! score of items of a brand the user has bought before.
//!
//! Reads:
//! - item `brand` (text): a key of the item's `features`;
//! - user-stat `purchased.brand` (strings): the distinct values of the item
//!   attribute `brand` over the items the user purchased, which the host
//!   computes from the feature store.
//!
//! Brands are compared as symbols (exact text, no copy). A user with no
//! purchases, or an item without a brand, leaves the score unchanged.
//!
//! Parameters: `factor` (number, default 1.5, 0 to 100).

use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Params, Request, Rule, Symbol, input};

/// The rule.
pub struct BoostBoughtBrands;

impl Rule for BoostBoughtBrands {
    fn metadata() -> Metadata {
        Metadata::new(
            "boost_bought_brands",
            Kind::Boost,
            58,
            "Multiplies the score of items of a brand the user has purchased before",
        )
        .input(input::item_text("brand"))
        .input(input::user_stat_strings("purchased.brand"))
        .param(Param::number(
            "factor",
            "Multiplier for an item of a brand the user bought",
            1.5,
            0.0,
            100.0,
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let factor = params.number("factor");
        let brands: Vec<Symbol> = req.user().string_symbols("purchased.brand");
        Ok(Outcome::rescore(req, |c| {
            let bought = c.text_symbol("brand").is_some_and(|b| brands.contains(&b));
            c.score() * if bought { factor } else { 1.0 }
        }))
    }
}

recengine_rules_sdk::export_rule!(BoostBoughtBrands);

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::testing::{Item, RequestBuilder, Subject, run};

    use super::*;

    fn items(b: RequestBuilder) -> Subject {
        b.item(Item::new(1, 1.0).attr("brand", "globex"))
            .item(Item::new(2, 0.9))
            .item(Item::new(3, 0.8).attr("brand", "acme"))
            .item(Item::new(4, 0.5).attr("brand", "zeta"))
            .item(Item::new(5, 0.4).attr("brand", "Acme"))
            .build()
    }

    #[test]
    fn bought_brands_are_boosted() {
        let req = items(
            RequestBuilder::new()
                .user_id(7)
                .user_stat("purchased.brand", ["acme", "zeta"]),
        );
        let r = run::<BoostBoughtBrands>(&req, &[]).unwrap();
        assert_eq!(r.score_of(3), Some(0.8 * 1.5));
        assert_eq!(r.score_of(4), Some(0.5 * 1.5));
        assert_eq!(r.score_of(5), Some(0.4), "brands compare exactly");
        assert_eq!(r.ids(), vec![3, 1, 2, 4, 5]);
        let stronger = run::<BoostBoughtBrands>(&req, &[("factor", 3.0)]).unwrap();
        assert_eq!(stronger.score_of(4), Some(0.5 * 3.0));
        assert_eq!(stronger.ids(), vec![3, 4, 1, 2, 5]);
    }

    #[test]
    fn without_purchases_nothing_changes() {
        let req = items(RequestBuilder::new().user(7, None, None, &[], &[], &[]));
        let r = run::<BoostBoughtBrands>(&req, &[]).unwrap();
        assert_eq!(r.ids(), vec![1, 2, 3, 4, 5]);
        assert!(r.effect.rescored.is_empty());
        let empty = items(RequestBuilder::new().user_stat("purchased.brand", [] as [&str; 0]));
        assert!(
            run::<BoostBoughtBrands>(&empty, &[])
                .unwrap()
                .effect
                .rescored
                .is_empty()
        );
    }
}
