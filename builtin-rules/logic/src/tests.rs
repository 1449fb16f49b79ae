//! Native tests through the SDK harness, one block per rule.

use recengine_rules_sdk::testing::{Item, RequestBuilder, run};

use super::*;

const NOW: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;

#[test]
fn out_of_stock_is_dropped_unknown_kept_by_default() {
    let req = RequestBuilder::new()
        .item(Item::new(1, 1.0).in_stock(true))
        .item(Item::new(2, 0.9).in_stock(false))
        .item(Item::new(3, 0.8))
        .build();
    let r = run::<FilterOutOfStock>(&req, &[]).unwrap();
    assert_eq!(r.ids(), vec![1, 3]);
    assert_eq!(r.effect.dropped, vec![2]);
    let strict = run::<FilterOutOfStock>(&req, &[("drop_unknown", 1.0)]).unwrap();
    assert_eq!(strict.ids(), vec![1]);
}

#[test]
fn age_restricted_items_need_an_old_enough_user() {
    let items = |b: RequestBuilder| {
        b.item(Item::new(1, 1.0).min_age(18))
            .item(Item::new(2, 0.9).min_age(13))
            .item(Item::new(3, 0.8))
            .build()
    };
    let minor = items(RequestBuilder::new().user(1, Some(15), None, &[], &[], &[]));
    assert_eq!(
        run::<FilterAgeRestricted>(&minor, &[]).unwrap().ids(),
        vec![2, 3]
    );
    let adult = items(RequestBuilder::new().user(1, Some(18), None, &[], &[], &[]));
    assert_eq!(
        run::<FilterAgeRestricted>(&adult, &[]).unwrap().ids(),
        vec![1, 2, 3]
    );
    let unknown = items(RequestBuilder::new());
    assert_eq!(
        run::<FilterAgeRestricted>(&unknown, &[]).unwrap().ids(),
        vec![1, 2, 3]
    );
    let strict = run::<FilterAgeRestricted>(&unknown, &[("allow_unknown_age", 0.0)]).unwrap();
    assert_eq!(strict.ids(), vec![3]);
    assert!(FilterAgeRestricted::metadata().fail_closed);
}

#[test]
fn purchased_items_are_dropped() {
    let req = RequestBuilder::new()
        .user(1, None, None, &[], &[], &[30, 10])
        .item(Item::new(10, 1.0))
        .item(Item::new(20, 0.9))
        .item(Item::new(30, 0.8))
        .build();
    assert_eq!(run::<FilterPurchased>(&req, &[]).unwrap().ids(), vec![20]);
}

#[test]
fn geo_uses_the_request_country_then_the_users() {
    let items = |b: RequestBuilder| {
        b.item(Item::new(1, 1.0).allowed_in(&["US", "CA"]))
            .item(Item::new(2, 0.9).blocked_in(&["DE"]))
            .item(Item::new(3, 0.8))
            .build()
    };
    let german_user = || RequestBuilder::new().user(1, None, Some("DE"), &[], &[], &[]);
    assert_eq!(
        run::<FilterGeoRestricted>(&items(german_user()), &[])
            .unwrap()
            .ids(),
        vec![3]
    );
    // The request's country wins over the user's.
    let in_us = german_user().context(Some("US"), None, None, false, NOW, &[]);
    assert_eq!(
        run::<FilterGeoRestricted>(&items(in_us), &[])
            .unwrap()
            .ids(),
        vec![1, 2, 3]
    );
    let in_fr = german_user().context(Some("FR"), None, None, false, NOW, &[]);
    assert_eq!(
        run::<FilterGeoRestricted>(&items(in_fr), &[])
            .unwrap()
            .ids(),
        vec![2, 3]
    );
    let nowhere = items(RequestBuilder::new());
    assert_eq!(
        run::<FilterGeoRestricted>(&nowhere, &[]).unwrap().ids(),
        vec![1, 2, 3]
    );
    let strict =
        run::<FilterGeoRestricted>(&nowhere, &[("drop_restricted_when_country_unknown", 1.0)]);
    assert_eq!(strict.unwrap().ids(), vec![3]);
}

#[test]
fn preferences_boost_category_and_tag_and_resort() {
    let req = RequestBuilder::new()
        .user(1, None, None, &["books"], &["scifi"], &[])
        .item(Item::new(1, 1.0).category("toys"))
        .item(Item::new(2, 0.9).category("books"))
        .item(Item::new(3, 0.8).category("toys").tags(&["scifi"]))
        .item(Item::new(4, 0.7).category("books").tags(&["scifi"]))
        .build();
    let r = run::<BoostPreferences>(&req, &[]).unwrap();
    assert!((r.score_of(2).unwrap() - 1.26).abs() < 1e-9);
    assert!((r.score_of(3).unwrap() - 0.96).abs() < 1e-9);
    assert!((r.score_of(4).unwrap() - 0.7 * 1.4 * 1.2).abs() < 1e-9);
    assert_eq!(r.ids(), vec![2, 4, 1, 3], "re-sorted by the new scores");
    let custom = run::<BoostPreferences>(&req, &[("category_factor", 2.0)]).unwrap();
    assert!((custom.score_of(2).unwrap() - 1.8).abs() < 1e-9);
}

#[test]
fn promotions_boost_only_while_running() {
    let req = RequestBuilder::new()
        .now_ms(NOW)
        .item(Item::new(1, 1.0).promo_until(Some(NOW + DAY)))
        .item(Item::new(2, 1.0).promo_until(Some(NOW - DAY)))
        .item(Item::new(3, 1.0).promo_until(None))
        .item(Item::new(4, 1.0))
        .build();
    let r = run::<BoostPromotional>(&req, &[]).unwrap();
    assert_eq!(r.score_of(1), Some(1.5));
    assert_eq!(r.score_of(2), Some(1.0));
    assert_eq!(r.score_of(3), Some(1.5));
    assert_eq!(r.score_of(4), Some(1.0));
}

#[test]
fn new_items_within_the_window_are_boosted() {
    let req = RequestBuilder::new()
        .now_ms(NOW)
        .item(Item::new(1, 1.0).created_at_ms(NOW - 2 * DAY))
        .item(Item::new(2, 1.0).created_at_ms(NOW - 8 * DAY))
        .build();
    let r = run::<BoostNewItems>(&req, &[]).unwrap();
    assert_eq!(r.score_of(1), Some(1.3));
    assert_eq!(r.score_of(2), Some(1.0));
    let wide = run::<BoostNewItems>(&req, &[("max_age_days", 10.0)]).unwrap();
    assert_eq!(wide.score_of(2), Some(1.3));
}

#[test]
fn diversity_caps_a_category_at_the_top() {
    let mut b = RequestBuilder::new();
    for id in 1..=5 {
        b = b.item(Item::new(id, 1.0 - id as f64 / 10.0).category("books"));
    }
    b = b.item(Item::new(6, 0.3).category("toys"));
    b = b.item(Item::new(7, 0.2));
    let req = b.build();
    let r = run::<Diversity>(&req, &[]).unwrap();
    assert_eq!(r.ids(), vec![1, 2, 3, 6, 7, 4, 5]);
    let two = run::<Diversity>(&req, &[("max_per_category", 2.0)]).unwrap();
    assert_eq!(two.ids(), vec![1, 2, 6, 7, 3, 4, 5]);
}

#[test]
fn every_rule_has_the_seeds_name_kind_and_priority() {
    let all = [
        FilterOutOfStock::metadata(),
        FilterAgeRestricted::metadata(),
        FilterPurchased::metadata(),
        FilterGeoRestricted::metadata(),
        BoostPreferences::metadata(),
        BoostPromotional::metadata(),
        BoostNewItems::metadata(),
        Diversity::metadata(),
    ];
    let summary: Vec<(&str, i32)> = all
        .iter()
        .map(|m| (m.name.as_str(), m.default_priority))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("filter_out_of_stock", 100),
            ("filter_age_restricted", 95),
            ("filter_purchased", 90),
            ("filter_geo_restricted", 85),
            ("boost_preferences", 60),
            ("boost_promotional", 50),
            ("boost_new_items", 40),
            ("diversity", 20),
        ]
    );
}

#[test]
fn excluded_ids_are_dropped_and_own_items_on_request() {
    let req = RequestBuilder::new()
        .user_id(7)
        .exclude(&[3, 1])
        .item(Item::new(1, 1.0))
        .item(Item::new(2, 0.9).attr("created_by", 7_i64))
        .item(Item::new(3, 0.8))
        .item(Item::new(4, 0.7).attr("created_by", "8"))
        .build();
    assert_eq!(run::<FilterExcluded>(&req, &[]).unwrap().ids(), vec![2, 4]);
    let own = run::<FilterExcluded>(&req, &[("exclude_own_items", 1.0)]).unwrap();
    assert_eq!(own.ids(), vec![4]);
}
