//! `within_budget` (filter, priority 80): removes the items priced above the
//! shopper's budget, when the page sends one.
//!
//! Reads:
//! - item `price` (number): a key of the item's `features`;
//! - context `budget` (number): a key the page sends in `context.extra`
//!   (as text, e.g. `"budget": "50"`; the host parses it as the declared
//!   number). No budget, or one that is not a number: every item is kept.
//!
//! Parameters: `keep_unpriced` (flag, default true): keep items without a
//! price; false removes them whenever a budget is set.

use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Params, Request, Rule, input};

/// The rule.
pub struct WithinBudget;

impl Rule for WithinBudget {
    fn metadata() -> Metadata {
        Metadata::new(
            "within_budget",
            Kind::Filter,
            80,
            "Removes items whose price is above the budget the page sends (context.extra.budget); \
             no budget keeps every item",
        )
        .input(input::item_number("price"))
        .input(input::context_number("budget"))
        .param(Param::flag(
            "keep_unpriced",
            "Keep items without a price when a budget is set",
            true,
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let Some(budget) = req.context().number("budget") else {
            return Ok(Outcome::keep_all());
        };
        let keep_unpriced = params.flag("keep_unpriced");
        Ok(Outcome::drop_where(req, |c| match c.number("price") {
            Some(price) => price > budget,
            None => !keep_unpriced,
        }))
    }
}

recengine_rules_sdk::export_rule!(WithinBudget);

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::testing::{Item, RequestBuilder, Subject, run};

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn items(b: RequestBuilder) -> Subject {
        b.item(Item::new(1, 0.9).attr("price", 80.0))
            .item(Item::new(2, 0.8).attr("price", 20.0))
            .item(Item::new(3, 0.7))
            .item(Item::new(4, 0.6).attr("price", 50.0))
            .build()
    }

    #[test]
    fn items_above_the_budget_are_dropped() {
        let req = items(RequestBuilder::new().context(
            Some("FR"),
            None,
            None,
            false,
            NOW,
            &[("budget", "50")],
        ));
        let r = run::<WithinBudget>(&req, &[]).unwrap();
        // 4 costs exactly the budget: kept. 3 has no price: kept by default.
        assert_eq!(r.ids(), vec![2, 3, 4]);
        assert_eq!(r.effect.dropped, vec![1]);
    }

    #[test]
    fn without_a_budget_every_item_is_kept() {
        let none = items(RequestBuilder::new());
        assert_eq!(
            run::<WithinBudget>(&none, &[]).unwrap().ids(),
            vec![1, 2, 3, 4]
        );
        // A budget that is not a number arrives as absent.
        let garbled = items(RequestBuilder::new().context_value("budget", "cheap"));
        assert_eq!(
            run::<WithinBudget>(&garbled, &[]).unwrap().ids(),
            vec![1, 2, 3, 4]
        );
        // keep_unpriced only matters when there is a budget.
        let strict = run::<WithinBudget>(&none, &[("keep_unpriced", 0.0)]).unwrap();
        assert_eq!(strict.ids(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn unpriced_items_go_when_keep_unpriced_is_off() {
        let req = items(RequestBuilder::new().context_value("budget", "100"));
        assert_eq!(
            run::<WithinBudget>(&req, &[]).unwrap().ids(),
            vec![1, 2, 3, 4]
        );
        let strict = run::<WithinBudget>(&req, &[("keep_unpriced", 0.0)]).unwrap();
        assert_eq!(strict.ids(), vec![1, 2, 4]);
        assert_eq!(strict.effect.dropped, vec![3]);
    }

    #[test]
    fn metadata_is_what_the_manifest_expects() {
        let m = WithinBudget::metadata();
        assert_eq!(
            (m.name.as_str(), m.kind, m.default_priority),
            ("within_budget", Kind::Filter, 80)
        );
        assert!(!m.fail_closed);
    }
}
