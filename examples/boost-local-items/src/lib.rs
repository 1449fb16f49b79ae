//! `boost_local_items`: multiplies the score of items made in the user's
//! country (the item's `origin_country` attribute) by `factor` (1.5).

use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Params, Request, Rule, export_rule, input};

pub struct BoostLocalItems;

impl Rule for BoostLocalItems {
    fn metadata() -> Metadata {
        Metadata::new(
            "boost_local_items",
            Kind::Boost,
            55,
            "Boosts items whose origin_country is the user's country",
        )
        .input(input::item_text("origin_country"))
        .input(input::user_text("country"))
        .param(Param::number(
            "factor",
            "Multiplier for local items",
            1.5,
            0.0,
            100.0,
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let factor = params.number("factor");
        // The user's own country (not the request's: "local" is about them).
        let Some(home) = req.user().text("country") else {
            return Ok(Outcome::rescore(req, |c| c.score()));
        };
        Ok(Outcome::rescore(req, |c| {
            let local = c
                .text("origin_country")
                .is_some_and(|origin| origin.eq_ignore_ascii_case(home));
            c.score() * if local { factor } else { 1.0 }
        }))
    }
}

export_rule!(BoostLocalItems);

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::testing::{Item, RequestBuilder, run};

    use super::*;

    #[test]
    fn local_items_are_boosted_and_move_up() {
        let req = RequestBuilder::new()
            .user(7, Some(30), Some("FR"), &[], &[], &[])
            .item(Item::new(1, 1.0).origin("US"))
            .item(Item::new(2, 0.8).origin("FR"))
            .item(Item::new(3, 0.5))
            .build();
        let ranked = run::<BoostLocalItems>(&req, &[]).unwrap();
        assert_eq!(ranked.score_of(2), Some(0.8 * 1.5));
        assert_eq!(ranked.ids(), vec![2, 1, 3]);
        let stronger = run::<BoostLocalItems>(&req, &[("factor", 3.0)]).unwrap();
        assert_eq!(stronger.score_of(2), Some(2.4000000000000004));
    }

    #[test]
    fn without_a_home_country_nothing_changes() {
        let req = RequestBuilder::new()
            .item(Item::new(1, 1.0).origin("US"))
            .build();
        assert_eq!(
            run::<BoostLocalItems>(&req, &[]).unwrap().score_of(1),
            Some(1.0)
        );
    }
}
