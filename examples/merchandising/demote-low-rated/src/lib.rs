//! `demote_low_rated` (boost, priority 45): multiplies by `factor` the
//! score of items rated poorly by enough people.
//!
//! Reads (both from the feature store):
//! - item-stat `avg_rating` (number): the item's average rating;
//! - item-stat `total_interactions` (number): how many interactions it has,
//!   so a handful of early ratings does not bury an item.
//!
//! An item is demoted when its `avg_rating` is below `min_rating` and its
//! `total_interactions` is at least `min_ratings`. Without a rating it is
//! left alone; without an interaction count it counts as 0.
//!
//! Parameters: `factor` (number, default 0.5, 0 to 1), `min_rating`
//! (number, default 3.0, 0 to 5), `min_ratings` (number, default 20, 0 to
//! 1 000 000).

use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Params, Request, Rule, input};

/// The rule.
pub struct DemoteLowRated;

impl Rule for DemoteLowRated {
    fn metadata() -> Metadata {
        Metadata::new(
            "demote_low_rated",
            Kind::Boost,
            45,
            "Multiplies by factor the score of items whose avg_rating is below min_rating \
             over at least min_ratings interactions",
        )
        .input(input::item_stat("avg_rating"))
        .input(input::item_stat("total_interactions"))
        .param(Param::number(
            "factor",
            "Multiplier for a low-rated item (below 1 demotes)",
            0.5,
            0.0,
            1.0,
        ))
        .param(Param::number(
            "min_rating",
            "Average ratings below this are low",
            3.0,
            0.0,
            5.0,
        ))
        .param(Param::number(
            "min_ratings",
            "Interactions an item needs before its rating counts",
            20.0,
            0.0,
            1_000_000.0,
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let factor = params.number("factor");
        let min_rating = params.number("min_rating");
        let min_ratings = params.number("min_ratings");
        Ok(Outcome::rescore(req, |c| {
            let low = c.number("avg_rating").is_some_and(|r| r < min_rating)
                && c.number("total_interactions").unwrap_or(0.0) >= min_ratings;
            c.score() * if low { factor } else { 1.0 }
        }))
    }
}

recengine_rules_sdk::export_rule!(DemoteLowRated);

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::testing::{Item, RequestBuilder, Subject, run};

    use super::*;

    fn catalogue() -> Subject {
        RequestBuilder::new()
            .item(
                Item::new(1, 1.0)
                    .stat("avg_rating", 2.5)
                    .stat("total_interactions", 30_i64),
            )
            .item(
                Item::new(2, 0.9)
                    .stat("avg_rating", 2.5)
                    .stat("total_interactions", 5_i64),
            )
            .item(
                Item::new(3, 0.8)
                    .stat("avg_rating", 4.5)
                    .stat("total_interactions", 100_i64),
            )
            .item(Item::new(4, 0.7))
            .item(
                Item::new(5, 0.6)
                    .stat("avg_rating", 3.0)
                    .stat("total_interactions", 20_i64),
            )
            .item(Item::new(6, 0.55).stat("avg_rating", 1.0))
            .build()
    }

    #[test]
    fn poorly_rated_items_with_enough_ratings_sink() {
        let r = run::<DemoteLowRated>(&catalogue(), &[]).unwrap();
        assert_eq!(r.score_of(1), Some(0.5));
        // 2: too few interactions; 3: well rated; 4: no stats; 5: exactly
        // the threshold is not below it; 6: no interaction count.
        for (id, score) in [(2, 0.9), (3, 0.8), (4, 0.7), (5, 0.6), (6, 0.55)] {
            assert_eq!(r.score_of(id), Some(score), "item {id}");
        }
        assert_eq!(r.ids(), vec![2, 3, 4, 5, 6, 1]);
        assert_eq!(r.effect.rescored, vec![(1, 1.0, 0.5)]);
    }

    #[test]
    fn thresholds_and_factor_are_tunable() {
        let r = run::<DemoteLowRated>(
            &catalogue(),
            &[("min_rating", 4.0), ("min_ratings", 0.0), ("factor", 0.0)],
        )
        .unwrap();
        for (id, score) in [(1, 0.0), (2, 0.0), (3, 0.8), (4, 0.7), (5, 0.0), (6, 0.0)] {
            assert_eq!(r.score_of(id), Some(score), "item {id}");
        }
        assert_eq!(r.ids(), vec![3, 4, 1, 2, 5, 6]);
    }
}
