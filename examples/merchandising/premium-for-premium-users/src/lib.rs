//! `premium_for_premium_users` (filter, priority 88): removes premium items
//! for users whose plan is not a premium one.
//!
//! Reads:
//! - item `premium` (flag): a key of the item's `features`; items without
//!   it are not premium;
//! - user `plan` (text): a key of the user's `preferences`; a user without
//!   one is not premium.
//!
//! Parameters: `premium_plans` (strings, default `["premium"]`): the plans
//! that see premium items, compared without regard to ASCII case.

use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Params, Request, Rule, input};

/// The rule.
pub struct PremiumForPremiumUsers;

impl Rule for PremiumForPremiumUsers {
    fn metadata() -> Metadata {
        Metadata::new(
            "premium_for_premium_users",
            Kind::Filter,
            88,
            "Removes items flagged premium unless the user's plan is one of premium_plans",
        )
        .input(input::item_flag("premium"))
        .input(input::user_text("plan"))
        .param(Param::strings(
            "premium_plans",
            "Plans (the user's preferences.plan) that see premium items",
            &["premium"],
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let plans = params.strings("premium_plans");
        let premium_user = req
            .user()
            .text("plan")
            .is_some_and(|plan| plans.iter().any(|p| p.eq_ignore_ascii_case(plan)));
        if premium_user {
            return Ok(Outcome::keep_all());
        }
        Ok(Outcome::drop_where(req, |c| {
            c.flag("premium") == Some(true)
        }))
    }
}

recengine_rules_sdk::export_rule!(PremiumForPremiumUsers);

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::{
        ParamValue,
        testing::{Item, RequestBuilder, Subject, run, run_with},
    };

    use super::*;

    fn items(b: RequestBuilder) -> Subject {
        b.item(Item::new(1, 0.9).attr("premium", true))
            .item(Item::new(2, 0.8).attr("premium", false))
            .item(Item::new(3, 0.7))
            .item(Item::new(4, 0.6).attr("premium", true))
            .build()
    }

    #[test]
    fn premium_items_need_a_premium_plan() {
        let premium = items(RequestBuilder::new().user_attr("plan", "premium"));
        assert_eq!(
            run::<PremiumForPremiumUsers>(&premium, &[]).unwrap().ids(),
            vec![1, 2, 3, 4]
        );
        let shouting = items(RequestBuilder::new().user_attr("plan", "PREMIUM"));
        assert_eq!(
            run::<PremiumForPremiumUsers>(&shouting, &[]).unwrap().ids(),
            vec![1, 2, 3, 4]
        );
        let basic = items(RequestBuilder::new().user_attr("plan", "basic"));
        let r = run::<PremiumForPremiumUsers>(&basic, &[]).unwrap();
        assert_eq!(r.ids(), vec![2, 3]);
        assert_eq!(r.effect.dropped, vec![1, 4]);
    }

    #[test]
    fn no_plan_is_not_premium() {
        let anonymous = items(RequestBuilder::new().user(3, Some(40), Some("FR"), &[], &[], &[]));
        assert_eq!(
            run::<PremiumForPremiumUsers>(&anonymous, &[])
                .unwrap()
                .ids(),
            vec![2, 3]
        );
    }

    #[test]
    fn premium_plans_are_configurable() {
        let plans = [("premium_plans", ParamValue::from(["gold", "platinum"]))];
        let gold = items(RequestBuilder::new().user_attr("plan", "gold"));
        assert_eq!(
            run_with::<PremiumForPremiumUsers>(&gold, &plans)
                .unwrap()
                .ids(),
            vec![1, 2, 3, 4]
        );
        let premium = items(RequestBuilder::new().user_attr("plan", "premium"));
        assert_eq!(
            run_with::<PremiumForPremiumUsers>(&premium, &plans)
                .unwrap()
                .ids(),
            vec![2, 3]
        );
        // No plan is premium: nobody sees premium items.
        let none = [("premium_plans", ParamValue::from([] as [&str; 0]))];
        assert_eq!(
            run_with::<PremiumForPremiumUsers>(&premium, &none)
                .unwrap()
                .ids(),
            vec![2, 3]
        );
    }
}
