//! Rule contract 0.2 through HTTP: rules that read what they declare
//! (the example bundle `examples/merchandising` changing real responses),
//! promote rules placing items under the safety filters, exclusion from the
//! request, typed parameters, declarations refused at load, and 0.1
//! components running beside 0.2 ones.

use recengine::rules::registry::FailurePolicy;
use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{
        Backend, TestApp,
        bundles::{merchandising_bundle, upload},
        expect_error, ids_of,
        metrics::{scrape, value},
        temp_dir, wasm,
    },
};

/// A shop: items with brands, prices, margins, a premium flag and stock;
/// a teenage shopper in France on the basic plan who bought a Nordvik item
/// and rated Lumen's lamp badly (three times, from three accounts).
struct Shop {
    shopper: i64,
    ids: serde_json::Map<String, Value>,
}

impl Shop {
    fn id(&self, key: &str) -> i64 {
        self.ids[key]
            .as_i64()
            .unwrap_or_else(|| panic!("no item {key}"))
    }
}

async fn shop(app: &TestApp) -> Shop {
    let mut ids = serde_json::Map::new();
    let items = [
        (
            "cheap_acme",
            json!({"brand": "Acme", "price": 20, "margin": 0.1}),
            100.0,
        ),
        (
            "pricey_acme",
            json!({"brand": "Acme", "price": 300, "margin": 0.1}),
            99.0,
        ),
        (
            "zeta_1",
            json!({"brand": "Zeta", "price": 30, "margin": 0.5}),
            98.0,
        ),
        ("zeta_2", json!({"brand": "Zeta", "price": 35}), 97.0),
        ("zeta_3", json!({"brand": "Zeta", "price": 40}), 96.0),
        ("zeta_4", json!({"brand": "Zeta", "price": 45}), 95.0),
        (
            "premium",
            json!({"brand": "Orbis", "price": 50, "premium": true}),
            94.0,
        ),
        ("unpriced", json!({"brand": "Orbis"}), 93.0),
        ("low_rated", json!({"brand": "Lumen", "price": 25}), 92.0),
        ("nordvik_2", json!({"brand": "Nordvik", "price": 60}), 91.0),
        ("bought", json!({"brand": "Nordvik", "price": 55}), 90.0),
        ("campaign", json!({"brand": "Solano", "price": 10}), 1.0),
        (
            "campaign_adult",
            json!({"brand": "Solano", "min_age": 18}),
            1.0,
        ),
        (
            "campaign_gone",
            json!({"brand": "Solano", "in_stock": false}),
            1.0,
        ),
        ("filler_1", json!({"brand": "F1", "price": 15}), 50.0),
        ("filler_2", json!({"brand": "F2", "price": 15}), 49.0),
        ("filler_3", json!({"brand": "F3", "price": 15}), 48.0),
        ("filler_4", json!({"brand": "F4", "price": 15}), 47.0),
        ("filler_5", json!({"brand": "F5", "price": 15}), 46.0),
    ];
    for (key, mut features, popularity) in items {
        if features.get("in_stock").is_none() {
            features["in_stock"] = json!(true);
        }
        let id = app
            .add_item(
                json!({"title": key, "category": "shop", "features": features,
                             "popularity_score": popularity}),
            )
            .await;
        ids.insert(key.into(), json!(id));
    }
    let shopper = app
        .create_user(
            "shopper",
            json!({"age": 15, "country": "FR", "plan": "basic"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let res = app
        .post(
            "/api/v1/interactions/",
            &json!({"user_id": shopper, "item_id": ids["bought"], "interaction_type": "purchase"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    for n in 0..3 {
        let critic = app.create_user(&format!("critic{n}"), json!({})).await["id"].clone();
        let res = app
            .post(
                "/api/v1/interactions/",
                &json!({"user_id": critic, "item_id": ids["low_rated"],
                        "interaction_type": "rating", "rating": 1.5}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    app.retrain().await;
    Shop { shopper, ids }
}

/// The example bundle with only `rules` enabled, `configs` by rule name.
fn bundle_of(revision: &str, rules: &[&str], configs: Value) -> Vec<u8> {
    let mut entries = serde_json::Map::new();
    for name in wasm::MERCHANDISING_RULES {
        let mut entry = json!({"enabled": rules.contains(&name)});
        if let Some(config) = configs.get(name) {
            entry["config"] = config.clone();
        }
        entries.insert(name.into(), entry);
    }
    merchandising_bundle(revision, Value::Object(entries))
}

async fn recommend(app: &TestApp, body: Value) -> Value {
    let res = app.post("/api/v1/recommendations/", &body).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn step<'a>(body: &'a Value, rule: &str) -> &'a Value {
    body["rule_trace"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["rule"] == rule)
        .unwrap_or_else(|| panic!("no trace for {rule}"))
}

fn boosted_ids(body: &Value, rule: &str) -> Vec<i64> {
    step(body, rule)["boosted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["item_id"].as_i64().unwrap())
        .collect()
}

async fn the_example_rules_change_recommendations(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shop = shop(&app).await;
    let ask = json!({"user_id": shop.shopper, "top_n": 20, "explain": true,
                     "context": {"extra": {"budget": "100"}}});
    let before = recommend(&app, ask.clone()).await;
    let got = ids_of(&before);
    for key in ["pricey_acme", "premium", "zeta_4"] {
        assert!(got.contains(&shop.id(key)), "{key} is there at first");
    }

    let res = upload(
        &app,
        bundle_of(
            "1",
            &[
                "within_budget",
                "boost_high_margin",
                "boost_bought_brands",
                "demote_low_rated",
                "premium_for_premium_users",
                "brand_cap",
            ],
            json!({"demote_low_rated": {"min_ratings": 3}}),
        ),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let after = recommend(&app, ask.clone()).await;
    let got = ids_of(&after);
    // "Drop items above the budget the page sends" (context key vs item
    // price); an item without a price stays (keep_unpriced).
    assert!(!got.contains(&shop.id("pricey_acme")), "{got:?}");
    assert!(got.contains(&shop.id("unpriced")), "{got:?}");
    assert_eq!(
        step(&after, "within_budget")["dropped"],
        json!([shop.id("pricey_acme")])
    );
    assert_eq!(
        step(&after, "within_budget")["inputs"],
        json!(["item.price", "context.budget"])
    );
    // "Premium items only for premium users" (a user attribute).
    assert!(!got.contains(&shop.id("premium")), "{got:?}");
    // "Boost high-margin items" (item margin): x(1 + 0.5 * margin).
    let margin = step(&after, "boost_high_margin")["boosted"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["item_id"] == shop.id("zeta_1"))
        .unwrap()
        .clone();
    let ratio = margin["after"].as_f64().unwrap() / margin["before"].as_f64().unwrap();
    assert!((ratio - 1.25).abs() < 1e-9, "{margin}");
    // "Boost the brands this user bought before" (item brand against the
    // brands of the user's purchases).
    assert_eq!(
        boosted_ids(&after, "boost_bought_brands"),
        vec![shop.id("nordvik_2")]
    );
    // The trace names the working-list positions and the response rank.
    let rank = got
        .iter()
        .position(|&id| id == shop.id("nordvik_2"))
        .unwrap()
        + 1;
    assert_eq!(
        step(&after, "boost_bought_brands")["boosted"][0]["response_rank"],
        rank
    );
    for m in step(&after, "brand_cap")["moved"].as_array().unwrap() {
        let shown = got.iter().position(|&id| id == m["item_id"]).map(|p| p + 1);
        assert_eq!(m["response_rank"], json!(shown), "{m}");
    }
    // "Demote items rated under 3 by at least N people" (feature-store
    // statistics).
    assert_eq!(
        boosted_ids(&after, "demote_low_rated"),
        vec![shop.id("low_rated")]
    );
    // "No more than two items of one brand in the top 10" (a rerank on an
    // arbitrary attribute).
    let zetas: Vec<i64> = ["zeta_1", "zeta_2", "zeta_3", "zeta_4"]
        .iter()
        .map(|k| shop.id(k))
        .collect();
    let top10 = &got[..10];
    assert!(
        top10.iter().filter(|id| zetas.contains(id)).count() <= 2,
        "{top10:?}"
    );
    assert!(
        zetas.iter().all(|z| got.contains(z)),
        "reordered, not dropped"
    );
    assert!(
        ids_of(&before)[..10]
            .iter()
            .filter(|id| zetas.contains(id))
            .count()
            > 2,
        "without the cap more than two Zeta items lead"
    );

    // Without a budget nothing is dropped for price; a premium user sees
    // the premium item.
    let vip = app
        .create_user("vip", json!({"plan": "premium", "country": "FR"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let vip_list = recommend(&app, json!({"user_id": vip, "top_n": 20})).await;
    let got = ids_of(&vip_list);
    assert!(got.contains(&shop.id("premium")), "{got:?}");
    assert!(got.contains(&shop.id("pricey_acme")), "{got:?}");
}
both_backends!(the_example_rules_change_recommendations);

async fn promoted_items_are_vetted_placed_and_marked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shop = shop(&app).await;
    let pinned: Vec<String> = ["campaign", "campaign_adult", "campaign_gone", "zeta_1"]
        .iter()
        .map(|k| shop.id(k).to_string())
        .chain(["999999".to_string()])
        .collect();
    let res = upload(
        &app,
        bundle_of(
            "1",
            &["campaign_pin"],
            json!({"campaign_pin": {"item_ids": pinned, "position": 2, "countries": ["FR"]}}),
        ),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let body = recommend(
        &app,
        json!({"user_id": shop.shopper, "top_n": 10, "explain": true,
               "context": {"country": "FR"}}),
    )
    .await;
    let list = body["recommendations"].as_array().unwrap();
    // At the requested position, and marked.
    assert_eq!(list[1]["item_id"], shop.id("campaign"));
    assert_eq!(list[1]["promoted"], true);
    assert_eq!(list[1]["promoted_by"], "campaign_pin");
    assert_eq!(list[0]["promoted"], false);
    assert!(list[0].get("promoted_by").is_none());
    // Removed by the fail-closed age filter (a minor) and by the stock
    // filter; the unknown id is dropped.
    let got = ids_of(&body);
    assert!(!got.contains(&shop.id("campaign_adult")), "{got:?}");
    assert!(!got.contains(&shop.id("campaign_gone")), "{got:?}");
    // Deduplicated with the organic list: once, where it was pinned (its
    // slot is the fifth asked for; two before it were removed).
    let zeta = shop.id("zeta_1");
    assert_eq!(got.iter().filter(|&&id| id == zeta).count(), 1, "{got:?}");
    assert_eq!(got.iter().position(|&id| id == zeta), Some(4), "{got:?}");
    // The trace says where each went and why.
    let placed = step(&body, "campaign_pin")["promoted"]
        .as_array()
        .unwrap()
        .clone();
    let of = |id: i64| placed.iter().find(|p| p["item_id"] == id).unwrap().clone();
    assert_eq!(of(shop.id("campaign"))["status"], "placed");
    assert_eq!(of(shop.id("campaign"))["position"], 2);
    assert_eq!(of(shop.id("campaign_adult"))["status"], "filtered");
    assert_eq!(
        of(shop.id("campaign_adult"))["filter"],
        "filter_age_restricted"
    );
    assert_eq!(
        of(shop.id("campaign_gone"))["filter"],
        "filter_out_of_stock"
    );
    assert_eq!(of(999_999)["status"], "unknown_item");
    assert_eq!(of(zeta)["position"], 5);
    // Only in the campaign's countries.
    let de = recommend(
        &app,
        json!({"user_id": shop.shopper, "top_n": 10, "context": {"country": "DE"}}),
    )
    .await;
    assert!(!ids_of(&de).contains(&shop.id("campaign")));
    assert!(
        de["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["promoted"] == false)
    );
    // Counted per rule.
    let samples = scrape(&app).await;
    assert!(
        value(
            &samples,
            r#"rule_items_total{effect="promoted",rule="campaign_pin"}"#
        ) >= 2.0,
        "{:?}",
        samples
            .iter()
            .filter(|(k, _)| k.contains("promoted"))
            .collect::<Vec<_>>()
    );

    // The cap: at most five placements per rule. Seven valid items asked
    // for (a list parameter changed at run time, validated by type).
    let seven: Vec<String> = [
        "cheap_acme",
        "pricey_acme",
        "zeta_2",
        "zeta_3",
        "zeta_4",
        "unpriced",
        "nordvik_2",
    ]
    .iter()
    .map(|k| shop.id(k).to_string())
    .collect();
    expect_error(
        app.put(
            "/api/v1/rules/campaign_pin",
            &json!({"config": {"item_ids": [1, 2]}}),
        )
        .await,
        422,
    )
    .await;
    expect_error(
        app.put(
            "/api/v1/rules/campaign_pin",
            &json!({"config": {"countries": "FR"}}),
        )
        .await,
        422,
    )
    .await;
    let detail = expect_error(
        app.put(
            "/api/v1/rules/campaign_pin",
            &json!({"config": {"position": 0}}),
        )
        .await,
        422,
    )
    .await;
    assert!(detail.contains("between 1 and 100"), "{detail}");
    let res = app
        .put(
            "/api/v1/rules/campaign_pin",
            &json!({"config": {"item_ids": seven, "position": 1}}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["config"]["item_ids"], json!(seven));
    let body = recommend(
        &app,
        json!({"user_id": shop.shopper, "top_n": 10, "explain": true,
               "context": {"country": "FR"}}),
    )
    .await;
    let placed = step(&body, "campaign_pin")["promoted"]
        .as_array()
        .unwrap()
        .clone();
    let count = |status: &str| placed.iter().filter(|p| p["status"] == status).count();
    assert_eq!((count("placed"), count("capped")), (5, 2), "{placed:?}");
    let marked = body["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["promoted"] == true)
        .count();
    assert_eq!(marked, 5);
}
both_backends!(promoted_items_are_vetted_placed_and_marked);

#[tokio::test]
async fn a_sponsored_slot_cannot_show_what_the_safety_filters_hide() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let shop = shop(&app).await;
    let configure = |item: i64| json!({"sponsored_slot": {"item_id": item, "position": 1}});
    let res = upload(
        &app,
        bundle_of(
            "1",
            &["sponsored_slot"],
            configure(shop.id("campaign_adult")),
        ),
    )
    .await;
    assert_eq!(res.status(), 201);
    let ask = json!({"user_id": shop.shopper, "top_n": 10});
    let minor = recommend(&app, ask.clone()).await;
    assert!(!ids_of(&minor).contains(&shop.id("campaign_adult")));
    let adult = app.create_user("adult", json!({"age": 30})).await["id"]
        .as_i64()
        .unwrap();
    let grown = recommend(&app, json!({"user_id": adult, "top_n": 10})).await;
    assert_eq!(
        ids_of(&grown)[0],
        shop.id("campaign_adult"),
        "adults see it, on top"
    );
    // Out of stock: shown to no one.
    let res = upload(
        &app,
        bundle_of(
            "2",
            &["sponsored_slot"],
            configure(shop.id("campaign_gone")),
        ),
    )
    .await;
    assert_eq!(res.status(), 201);
    let grown = recommend(&app, json!({"user_id": adult, "top_n": 10})).await;
    assert!(!ids_of(&grown).contains(&shop.id("campaign_gone")));
    // A slot past the end of the response is not taken (and says so).
    let res = upload(
        &app,
        bundle_of(
            "2b",
            &["sponsored_slot"],
            json!({"sponsored_slot": {"item_id": shop.id("campaign"), "position": 8}}),
        ),
    )
    .await;
    assert_eq!(res.status(), 201);
    let short = recommend(&app, json!({"user_id": adult, "top_n": 5, "explain": true})).await;
    assert!(!ids_of(&short).contains(&shop.id("campaign")));
    assert_eq!(
        step(&short, "sponsored_slot")["promoted"][0]["status"],
        "out_of_range"
    );
    // A dry run places promoted items found among its candidates.
    let res = upload(
        &app,
        bundle_of(
            "2c",
            &["sponsored_slot"],
            json!({"sponsored_slot": {"item_id": shop.id("campaign"), "position": 1}}),
        ),
    )
    .await;
    assert_eq!(res.status(), 201);
    let res = app
        .post(
            "/api/v1/rules/dry-run",
            &json!({"user": {"age": 30}, "candidates": [
                {"item_id": 1, "score": 0.9},
                {"item_id": 2, "score": 0.8},
                {"item_id": shop.id("campaign"), "score": 0.1}
            ]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let dry: Value = res.json().await.unwrap();
    assert_eq!(dry["results"][0]["item_id"], shop.id("campaign"), "{dry}");
    assert_eq!(dry["results"][0]["promoted_by"], "sponsored_slot", "{dry}");
    assert!(dry["results"][1].get("promoted_by").is_none(), "{dry}");
    // A bundle may not let a promote rule skip a safety filter.
    let detail = expect_error(
        upload(&app, skip_bundle("3", "filter_age_restricted")).await,
        422,
    )
    .await;
    assert!(detail.contains("safety filters always apply"), "{detail}");
    // The stock filter may be skipped, explicitly.
    let res = upload(&app, skip_bundle("4", "filter_out_of_stock")).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

/// The sponsored slot alone, placing item 1, with `promote_skip_filters`.
fn skip_bundle(revision: &str, skip: &str) -> Vec<u8> {
    merchandising_bundle(
        revision,
        json!({
            "within_budget": {"enabled": false},
            "boost_high_margin": {"enabled": false},
            "boost_bought_brands": {"enabled": false},
            "demote_low_rated": {"enabled": false},
            "premium_for_premium_users": {"enabled": false},
            "brand_cap": {"enabled": false},
            "campaign_pin": {"enabled": false},
            "sponsored_slot": {"config": {"item_id": 1}, "promote_skip_filters": [skip]},
        }),
    )
}

async fn exclude_ids_are_honoured_and_bounded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shop = shop(&app).await;
    let (a, b) = (shop.id("cheap_acme"), shop.id("zeta_1"));
    let all = ids_of(
        &app.get_json(&format!(
            "/api/v1/recommendations/user/{}?top_n=20",
            shop.shopper
        ))
        .await,
    );
    assert!(all.contains(&a) && all.contains(&b));
    let got = ids_of(
        &app.get_json(&format!(
            "/api/v1/recommendations/user/{}?top_n=20&exclude_ids={a},{b}&explain=true",
            shop.shopper
        ))
        .await,
    );
    assert!(!got.contains(&a) && !got.contains(&b), "{got:?}");
    let body = recommend(
        &app,
        json!({"user_id": shop.shopper, "top_n": 20, "explain": true, "exclude_ids": [a]}),
    )
    .await;
    assert!(!ids_of(&body).contains(&a));
    assert_eq!(step(&body, "filter_excluded")["dropped"], json!([a]));
    // Bounded and typed.
    let many: Vec<i64> = (1..=201).collect();
    let detail = expect_error(
        app.post(
            "/api/v1/recommendations/",
            &json!({"user_id": shop.shopper, "exclude_ids": many}),
        )
        .await,
        422,
    )
    .await;
    assert!(detail.contains("at most 200"), "{detail}");
    let many = (1..=201)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    expect_error(
        app.get(&format!(
            "/api/v1/recommendations/user/{}?exclude_ids={many}",
            shop.shopper
        ))
        .await,
        422,
    )
    .await;
    expect_error(
        app.get(&format!(
            "/api/v1/recommendations/user/{}?exclude_ids=1,x",
            shop.shopper
        ))
        .await,
        422,
    )
    .await;
    // A whole number written with a fraction is that id.
    let got = ids_of(
        &app.get_json(&format!(
            "/api/v1/recommendations/user/{}?top_n=20&exclude_ids={a}.0",
            shop.shopper
        ))
        .await,
    );
    assert!(!got.contains(&a), "{got:?}");
    // A promoted item the request excludes is not placed either.
    let res = upload(
        &app,
        bundle_of(
            "1",
            &["sponsored_slot"],
            json!({"sponsored_slot": {"item_id": shop.id("campaign"), "position": 1}}),
        ),
    )
    .await;
    assert_eq!(res.status(), 201);
    let shown = recommend(&app, json!({"user_id": shop.shopper, "top_n": 5})).await;
    assert_eq!(ids_of(&shown)[0], shop.id("campaign"));
    let hidden = recommend(
        &app,
        json!({"user_id": shop.shopper, "top_n": 5, "exclude_ids": [shop.id("campaign")]}),
    )
    .await;
    assert!(!ids_of(&hidden).contains(&shop.id("campaign")));
}
both_backends!(exclude_ids_are_honoured_and_bounded);

/// A component built against 0.1 (plain wit-bindgen, fixed columns) and a
/// 0.2 one (the example rule, declared inputs) active together.
#[tokio::test]
async fn a_0_1_and_a_0_2_component_run_together() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let legacy = wasm::add_rule(
        &app.state,
        &wasm::legacy_rule(),
        vec![2.0],
        FailurePolicy::FailOpen,
    );
    let current = wasm::add_rule(
        &app.state,
        &wasm::example_rule(),
        vec![1.5],
        FailurePolicy::FailOpen,
    );
    let list = app.get_json("/api/v1/rules/").await;
    let rule = |name: &str| {
        list["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(rule(&legacy)["contract"], "0.1");
    assert_eq!(rule(&legacy)["sdk_version"], "0.1.0");
    assert_eq!(rule(&current)["contract"], "0.2");
    assert_eq!(
        rule(&current)["inputs"],
        json!([
            {"scope": "item", "name": "origin_country", "type": "text"},
            {"scope": "user", "name": "country", "type": "text"}
        ])
    );
    let res = app
        .post(
            "/api/v1/rules/dry-run",
            &json!({"user": {"country": "fr"}, "rule_types": ["boost"], "candidates": [
                {"item_id": 1, "score": 1.0, "features": {"origin_country": "US"}},
                {"item_id": 2, "score": 0.8, "features": {"origin_country": "FR"}},
                {"item_id": 3, "score": 0.7}
            ]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["results"][0]["item_id"], 2);
    let score = out["results"][0]["score"].as_f64().unwrap();
    // x2 (0.1) and x1.5 (0.2), and boost_new_items' x1.3 (created now).
    assert!((score - 0.8 * 2.0 * 1.5 * 1.3).abs() < 1e-9, "{score}");
    let trace = out["trace"].as_array().unwrap();
    for name in [&legacy, &current] {
        let t = trace.iter().find(|t| t["rule"] == name.as_str()).unwrap();
        assert_eq!(t["status"], "applied", "{t}");
        assert_eq!(t["boosted"].as_array().unwrap().len(), 1, "{t}");
    }
}

/// Declared but absent is absent, never an error: a budget filter told to
/// drop unpriced items drops exactly those; with no budget, nothing.
#[tokio::test]
async fn declared_but_missing_values_arrive_as_absent() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    wasm::add_rule(
        &app.state,
        &wasm::merchandising("within_budget"),
        vec![0.0],
        FailurePolicy::FailOpen,
    );
    let run = |context: Value| {
        json!({"context": context, "rule_types": ["filter"], "candidates": [
            {"item_id": 1, "score": 0.9, "features": {"price": 30}},
            {"item_id": 2, "score": 0.8, "features": {"price": 80}},
            {"item_id": 3, "score": 0.7, "features": {"price": "n/a"}},
            {"item_id": 4, "score": 0.6}
        ]})
    };
    let out: Value = app
        .post(
            "/api/v1/rules/dry-run",
            &run(json!({"extra": {"budget": "50"}})),
        )
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<i64> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![1]);
    let t = out["trace"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["rule"] == "within_budget")
        .unwrap()
        .clone();
    assert_eq!(t["status"], "applied");
    let out: Value = app
        .post("/api/v1/rules/dry-run", &run(json!({})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(out["results"].as_array().unwrap().len(), 4);
    // Preferences and statistics are objects: anything else is a 422.
    expect_error(
        app.post(
            "/api/v1/rules/dry-run",
            &json!({"user": {"preferences": [1, 2]}, "candidates": []}),
        )
        .await,
        422,
    )
    .await;
}

/// A declaration the host cannot serve is refused where it arrives: a
/// bundle with 422 naming it, the rules directory with a log line and a
/// metric; the active rules stay as they were.
#[tokio::test]
async fn unknown_and_malformed_declarations_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let before = app.get_json("/api/v1/rules/").await;
    for (name, needle) in [
        ("unknown_input", "avg_ratings"),
        ("malformed_input", "names are 1-64"),
    ] {
        let dir = temp_dir("bundles");
        std::fs::write(dir.join("rule.wasm"), wasm::hostile(name)).unwrap();
        std::fs::write(
            dir.join("manifest.json"),
            json!({"name": "bad", "revision": "1", "rules": [{"component": "rule.wasm"}]})
                .to_string(),
        )
        .unwrap();
        let archive = recengine::rules::bundle::format::pack_dir(&dir).unwrap();
        let detail = expect_error(upload(&app, archive).await, 422).await;
        assert!(detail.contains(needle), "{detail}");
        if name == "unknown_input" {
            assert!(
                detail.contains("avg_rating,"),
                "lists what exists: {detail}"
            );
        }
        std::fs::remove_dir_all(dir).ok();
    }
    assert_eq!(
        app.get_json("/api/v1/rules/").await["rules"],
        before["rules"]
    );

    let dir = temp_dir("rules");
    std::fs::write(dir.join("a.wasm"), wasm::hostile("unknown_input")).unwrap();
    std::fs::write(dir.join("b.wasm"), wasm::hostile("malformed_input")).unwrap();
    let rules_dir = dir.clone();
    let app = TestApp::spawn_with(Backend::Sqlite, move |s| s.rules_dir = rules_dir).await;
    let list = app.get_json("/api/v1/rules/").await;
    assert!(
        list["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] != "unknown_input" && r["name"] != "malformed_input")
    );
    let samples = scrape(&app).await;
    assert!(
        value(
            &samples,
            r#"rule_components_refused_total{source="rules_dir"}"#
        ) >= 2.0
    );
    std::fs::remove_dir_all(dir).ok();
}
