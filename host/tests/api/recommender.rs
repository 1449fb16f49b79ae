//! The recommender through HTTP on a small catalogue whose answers can be
//! worked out by hand: two science-fiction fans (alice, bob), a gardener
//! (carol), a newcomer (dave), and a sci-fi book nobody has touched.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{Backend, TestApp, eventually, expect_error},
};

struct Catalogue {
    alice: i64,
    bob: i64,
    carol: i64,
    dave: i64,
    /// space_opera, space_war, garden_tools, garden_seeds, cooking_pot,
    /// space_book (no interactions).
    items: [i64; 6],
}

async fn catalogue(app: &TestApp) -> Catalogue {
    let mut items = [0; 6];
    for (n, (title, category)) in [
        ("Space Opera", "scifi"),
        ("Space War", "scifi"),
        ("Garden Tools", "garden"),
        ("Garden Seeds", "garden"),
        ("Cooking Pot", "kitchen"),
        ("Space Book", "scifi"),
    ]
    .into_iter()
    .enumerate()
    {
        items[n] = app.create_item(title, category).await["id"]
            .as_i64()
            .unwrap();
    }
    let mut users = [0; 4];
    for (n, name) in ["alice", "bob", "carol", "dave"].into_iter().enumerate() {
        users[n] = app.create_user(name, json!({})).await["id"]
            .as_i64()
            .unwrap();
    }
    let [alice, bob, carol, dave] = users;
    for (user, item, kind) in [
        (alice, items[0], "purchase"),
        (alice, items[1], "view"),
        (bob, items[0], "like"),
        (bob, items[1], "click"),
        (bob, items[2], "view"),
        (carol, items[2], "purchase"),
    ] {
        assert_eq!(app.interact(user, item, kind).await.status(), 201);
    }
    let res = app
        .post(
            "/api/v1/interactions/",
            &json!({"user_id": carol, "item_id": items[3], "interaction_type": "rating", "rating": 5}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let report: Value = app
        .post("/api/v1/models/retrain", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["interactions"], 7);
    assert_eq!(report["items"], 6);
    Catalogue {
        alice,
        bob,
        carol,
        dave,
        items,
    }
}

async fn json_of(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["item_id"].as_i64().unwrap())
        .collect()
}

async fn recommendations_follow_the_models(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.enable_business_rules = false).await;
    let c = catalogue(&app).await;
    let [opera, war, tools, seeds, pot, book] = c.items;

    // item-kNN: alice's items co-occur with the garden tools (through bob)
    // and with nothing else; the rest are popular fillers below it.
    let body = json_of(
        app.get(&format!(
            "/api/v1/recommendations/user/{}?algorithm=item_knn&top_n=3",
            c.alice
        ))
        .await,
    )
    .await;
    let got = ids(&body["recommendations"]);
    assert_eq!(got[0], tools, "{body}");
    assert_eq!(got.len(), 3);
    assert!(
        !got.contains(&opera) && !got.contains(&war),
        "interacted items are excluded"
    );
    let ranks: Vec<i64> = body["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rank"].as_i64().unwrap())
        .collect();
    assert_eq!(ranks, [1, 2, 3]);
    assert_eq!(body["recommendations"][0]["score"], 1.0);
    assert_eq!(body["recommendations"][0]["title"], "Garden Tools");
    assert!(body["model_version"].as_u64().unwrap() >= 1);

    // exclude_interacted=false lets them back in.
    let body = json_of(
        app.get(&format!(
            "/api/v1/recommendations/user/{}?algorithm=item_knn&top_n=6&exclude_interacted=false",
            c.alice
        ))
        .await,
    )
    .await;
    let got = ids(&body["recommendations"]);
    assert!(got.contains(&opera) && got.contains(&war), "{got:?}");

    // Content: the sci-fi book nobody has touched is what alice's sci-fi
    // profile matches best.
    let body = json_of(
        app.get(&format!(
            "/api/v1/recommendations/user/{}?algorithm=content_based&top_n=2",
            c.alice
        ))
        .await,
    )
    .await;
    assert_eq!(ids(&body["recommendations"])[0], book, "{body}");

    // Every algorithm answers with a full list, no duplicates, none seen.
    for algorithm in ["hybrid", "collaborative", "ease", "user_knn", "popularity"] {
        for method in ["weighted", "rank", "cascade"] {
            let body = json_of(
                app.get(&format!(
                    "/api/v1/recommendations/user/{}?algorithm={algorithm}&hybrid_method={method}&top_n=4",
                    c.bob
                ))
                .await,
            )
            .await;
            let mut got = ids(&body["recommendations"]);
            assert_eq!(body["algorithm"], algorithm);
            assert_eq!(got.len(), 3, "{algorithm}: bob has seen 3 of 6 items");
            assert!(!got.contains(&opera) && !got.contains(&war) && !got.contains(&tools));
            got.sort();
            got.dedup();
            assert_eq!(got.len(), 3);
        }
    }
    // user-kNN: bob's nearest neighbour for carol's garden taste.
    let body = json_of(
        app.get(&format!(
            "/api/v1/recommendations/user/{}?algorithm=user_knn&top_n=1",
            c.carol
        ))
        .await,
    )
    .await;
    let first = ids(&body["recommendations"])[0];
    assert!([opera, war].contains(&first), "bob's items: {body}");
    let _ = (seeds, pot);
}
both_backends!(recommendations_follow_the_models);

async fn cold_start_unknown_user_and_bad_queries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = catalogue(&app).await;
    // dave has no interactions: popular items, said so.
    let body = json_of(
        app.get(&format!("/api/v1/recommendations/user/{}?top_n=5", c.dave))
            .await,
    )
    .await;
    assert_eq!(body["fallback"], "popularity");
    assert_eq!(body["recommendations"].as_array().unwrap().len(), 5);
    // POST with the same shape.
    let body = json_of(
        app.post(
            "/api/v1/recommendations/",
            &json!({"user_id": c.dave, "top_n": 2, "algorithm": "collaborative"}),
        )
        .await,
    )
    .await;
    assert_eq!(body["recommendations"].as_array().unwrap().len(), 2);
    assert_eq!(body["algorithm"], "collaborative");

    expect_error(app.get("/api/v1/recommendations/user/987654").await, 404).await;
    expect_error(
        app.post("/api/v1/recommendations/", &json!({"user_id": 987654}))
            .await,
        404,
    )
    .await;
    let detail = expect_error(
        app.get(&format!(
            "/api/v1/recommendations/user/{}?algorithm=magic",
            c.alice
        ))
        .await,
        422,
    )
    .await;
    assert!(detail.contains("algorithm"), "{detail}");
    expect_error(
        app.get(&format!(
            "/api/v1/recommendations/user/{}?hybrid_method=mean",
            c.alice
        ))
        .await,
        422,
    )
    .await;
}
both_backends!(cold_start_unknown_user_and_bad_queries);

async fn the_cache_serves_repeats_and_forgets_on_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = catalogue(&app).await;
    let path = format!("/api/v1/recommendations/user/{}?top_n=4", c.alice);
    let first = json_of(app.get(&path).await).await;
    assert_eq!(first["cached"], false);
    let second = json_of(app.get(&path).await).await;
    assert_eq!(second["cached"], true);
    assert_eq!(second["recommendations"], first["recommendations"]);
    let status = json_of(app.get("/api/v1/models").await).await;
    assert!(status["cache_hits"].as_u64().unwrap() >= 1);
    assert!(status["cache_misses"].as_u64().unwrap() >= 1);

    // A new interaction: the next answer is fresh and leaves the item out,
    // before any retrain.
    let seeds = c.items[3];
    assert!(ids(&first["recommendations"]).contains(&seeds), "{first}");
    assert_eq!(app.interact(c.alice, seeds, "view").await.status(), 201);
    let third = json_of(app.get(&path).await).await;
    assert_eq!(third["cached"], false);
    assert!(!ids(&third["recommendations"]).contains(&seeds));
    assert_eq!(json_of(app.get(&path).await).await["cached"], true);

    // An item change drops every cached list.
    let res = app
        .put(
            &format!("/api/v1/items/{}", c.items[4]),
            &json!({"title": "Cast-iron Pot"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let after_item = json_of(app.get(&path).await).await;
    assert_eq!(after_item["cached"], false);
    let pot = after_item["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["item_id"] == c.items[4]);
    if let Some(pot) = pot {
        assert_eq!(pot["title"], "Cast-iron Pot");
    }
    // So does a retrain.
    assert_eq!(json_of(app.get(&path).await).await["cached"], true);
    app.post("/api/v1/models/retrain", &json!({})).await;
    assert_eq!(json_of(app.get(&path).await).await["cached"], false);
}
both_backends!(the_cache_serves_repeats_and_forgets_on_change);

async fn similar_trending_popular_and_explain(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = catalogue(&app).await;
    let [opera, war, tools, seeds, _pot, book] = c.items;

    let body = json_of(
        app.get(&format!(
            "/api/v1/recommendations/similar-items/{opera}?top_n=3"
        ))
        .await,
    )
    .await;
    assert_eq!(body["source_item_id"], opera);
    assert_eq!(body["source_item_title"], "Space Opera");
    let similar = body["similar_items"].as_array().unwrap();
    // Same users and same words: Space War first.
    assert_eq!(similar[0]["item_id"], war);
    assert!(similar.iter().all(|s| s["item_id"] != opera));
    let scores: Vec<f64> = similar
        .iter()
        .map(|s| s["similarity_score"].as_f64().unwrap())
        .collect();
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    // An item nobody touched has neighbours by content.
    let body = json_of(
        app.get(&format!("/api/v1/recommendations/similar-items/{book}"))
            .await,
    )
    .await;
    let neighbours = ids(&body["similar_items"]);
    assert!(
        neighbours.starts_with(&[opera]) || neighbours.starts_with(&[war]),
        "{body}"
    );
    expect_error(
        app.get("/api/v1/recommendations/similar-items/987654")
            .await,
        404,
    )
    .await;
    expect_error(
        app.get(&format!(
            "/api/v1/recommendations/similar-items/{opera}?top_n=0"
        ))
        .await,
        422,
    )
    .await;

    // Trending in the last hour: every interaction just happened. Opera,
    // war and tools have 2 each (ties by id), seeds 1.
    let body = json_of(
        app.get("/api/v1/recommendations/trending?limit=4&time_window=3600")
            .await,
    )
    .await;
    assert_eq!(body["time_window_seconds"], 3600);
    assert_eq!(body["count"], 4);
    assert_eq!(ids(&body["trending_items"]), [opera, war, tools, seeds]);
    assert_eq!(body["trending_items"][0]["interaction_count"], 2);
    assert_eq!(body["trending_items"][3]["trending_score"], 0.5);
    expect_error(
        app.get("/api/v1/recommendations/trending?time_window=5")
            .await,
        422,
    )
    .await;

    let popular = json_of(app.get("/api/v1/items/popular/top?limit=2").await).await;
    assert_eq!(popular.as_array().unwrap().len(), 2);

    // explain: alice and the garden tools (reached only through bob).
    let body = json_of(
        app.post(
            &format!(
                "/api/v1/recommendations/explain?user_id={}&item_id={tools}",
                c.alice
            ),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(body["item_title"], "Garden Tools");
    assert_eq!(body["has_interacted"], false);
    let parts = body["contributions"].as_array().unwrap();
    let part = |name: &str| parts.iter().find(|p| p["algorithm"] == name).unwrap();
    assert!(part("item_knn")["score"].as_f64().unwrap() > 0.0);
    assert_eq!(part("item_knn")["rank"], 1);
    // By content alone the sci-fi book beats the garden tools for alice.
    assert!(part("content_based")["rank"].as_i64().unwrap() > 1);
    let because = ids(&body["because_you_interacted_with"]);
    assert!(because.contains(&opera) && because.contains(&war), "{body}");
    let weights =
        body["collaborative_weight"].as_f64().unwrap() + body["content_weight"].as_f64().unwrap();
    assert!((weights - 1.0).abs() < 1e-9);
    expect_error(
        app.post(
            &format!(
                "/api/v1/recommendations/explain?user_id={}&item_id=987654",
                c.alice
            ),
            &json!({}),
        )
        .await,
        404,
    )
    .await;
    expect_error(
        app.post(
            "/api/v1/recommendations/explain?user_id=x&item_id=1",
            &json!({}),
        )
        .await,
        422,
    )
    .await;
    let _ = c.bob;
}
both_backends!(similar_trending_popular_and_explain);

async fn features_match_hand_computed_values(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = catalogue(&app).await;
    let [opera, war, tools, seeds, _pot, book] = c.items;

    let alice = json_of(
        app.get(&format!("/api/v1/features/users/{}", c.alice))
            .await,
    )
    .await;
    assert_eq!(alice["total_interactions"], 2);
    assert_eq!(
        alice["interaction_types"],
        json!({"purchase": 1, "view": 1})
    );
    assert_eq!(alice["avg_rating"], Value::Null);
    assert_eq!(alice["favorite_categories"], json!(["scifi"]));
    assert_eq!(alice["purchased_item_ids"], json!([opera]));
    // purchase = 5/5, view = 1/5 of the strongest type.
    assert_eq!(
        alice["item_weights"],
        json!([{"item_id": opera, "weight": 1.0}, {"item_id": war, "weight": 0.2}])
    );
    // 2 interactions in 30 days / 30; the last one seconds ago.
    let activity = alice["activity_score"].as_f64().unwrap();
    assert!((activity - 2.0 / 30.0).abs() < 1e-9, "{activity}");
    assert!(alice["recency_score"].as_f64().unwrap() > 0.999);
    assert!(alice["account_age_days"].as_f64().unwrap() < 0.01);

    let carol = json_of(
        app.get(&format!("/api/v1/features/users/{}", c.carol))
            .await,
    )
    .await;
    assert_eq!(carol["avg_rating"], 5.0);
    assert_eq!(carol["favorite_categories"], json!(["garden"]));

    let tools_f = json_of(app.get(&format!("/api/v1/features/items/{tools}")).await).await;
    assert_eq!(tools_f["total_interactions"], 2);
    assert_eq!(tools_f["view_count"], 1);
    assert_eq!(tools_f["purchase_count"], 1);
    assert_eq!(tools_f["click_count"], 0);
    assert_eq!(tools_f["item"]["title"], "Garden Tools");
    // Each interaction bumps the stored popularity by one.
    assert_eq!(tools_f["popularity_score"], 2.0);
    let seeds_f = json_of(app.get(&format!("/api/v1/features/items/{seeds}")).await).await;
    assert_eq!(seeds_f["avg_rating"], 5.0);
    assert_eq!(seeds_f["interaction_types"], json!({"rating": 1}));
    let book_f = json_of(app.get(&format!("/api/v1/features/items/{book}")).await).await;
    assert_eq!(book_f["total_interactions"], 0);

    let pair = json_of(
        app.get(&format!("/api/v1/features/users/{}/items/{book}", c.alice))
            .await,
    )
    .await;
    assert_eq!(pair["has_interacted"], false);
    assert_eq!(pair["interaction_count"], 0);
    assert_eq!(
        pair["category_affinity"], 1.0,
        "all of alice's interactions are sci-fi"
    );
    assert!(pair["content_similarity"].as_f64().unwrap() > 0.1);
    let pair = json_of(
        app.get(&format!("/api/v1/features/users/{}/items/{opera}", c.alice))
            .await,
    )
    .await;
    assert_eq!(pair["has_interacted"], true);
    assert_eq!(pair["interaction_types"], json!({"purchase": 1}));

    // Batches: in the order asked; unknown ids listed as missing.
    let batch = json_of(
        app.post(
            "/api/v1/features/users/batch",
            &json!({"user_ids": [c.bob, 987654, c.alice, c.bob, 987654]}),
        )
        .await,
    )
    .await;
    let users: Vec<i64> = batch["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["user_id"].as_i64().unwrap())
        .collect();
    assert_eq!(users, [c.bob, c.alice]);
    assert_eq!(batch["missing"], json!([987654]));
    let batch = json_of(
        app.post(
            "/api/v1/features/items/batch",
            &json!({"item_ids": [book, tools]}),
        )
        .await,
    )
    .await;
    assert_eq!(ids(&batch["features"]), [book, tools]);
    let batch = json_of(
        app.post(
            "/api/v1/features/user-items/batch",
            &json!({"user_id": c.bob, "item_ids": [tools, seeds]}),
        )
        .await,
    )
    .await;
    assert_eq!(batch["features"][0]["has_interacted"], true);
    assert_eq!(batch["features"][1]["has_interacted"], false);
    expect_error(
        app.post("/api/v1/features/items/batch", &json!({"item_ids": []}))
            .await,
        422,
    )
    .await;
    expect_error(app.get("/api/v1/features/users/987654").await, 404).await;

    // Cached, then invalidated by a new interaction.
    assert_eq!(app.interact(c.alice, tools, "click").await.status(), 201);
    let alice = json_of(
        app.get(&format!("/api/v1/features/users/{}", c.alice))
            .await,
    )
    .await;
    assert_eq!(alice["total_interactions"], 3);
    let tools_f = json_of(app.get(&format!("/api/v1/features/items/{tools}")).await).await;
    assert_eq!(tools_f["click_count"], 1);
    // The item counts the database keeps follow a deleted user's
    // interactions out, and the cached features of those items go stale.
    let opera_f = json_of(app.get(&format!("/api/v1/features/items/{opera}")).await).await;
    assert_eq!(
        opera_f["interaction_types"],
        json!({"like": 1, "purchase": 1})
    );
    assert_eq!(
        app.delete(&format!("/api/v1/users/{}", c.bob))
            .await
            .status(),
        204
    );
    let opera_f = json_of(app.get(&format!("/api/v1/features/items/{opera}")).await).await;
    assert_eq!(opera_f["interaction_types"], json!({"purchase": 1}));
    assert_eq!(opera_f["total_interactions"], 1);
    let tools_f = json_of(app.get(&format!("/api/v1/features/items/{tools}")).await).await;
    assert_eq!(tools_f["total_interactions"], 2, "bob's view is gone");
    // Explicit invalidation is for ops; a plain user may not read features.
    for path in [
        "/api/v1/features/cache".to_string(),
        format!("/api/v1/features/cache/users/{}", c.alice),
        format!("/api/v1/features/cache/items/{tools}"),
    ] {
        assert_eq!(app.delete(&path).await.status(), 204, "{path}");
    }
    let token = app.login("dave@example.com", "a-long-password").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .request(
            Method::GET,
            &format!("/api/v1/features/users/{}", c.alice),
            Some(&token),
        )
        .send()
        .await
        .unwrap();
    expect_error(res, 403).await;
    let res = app
        .request(Method::POST, "/api/v1/models/retrain", Some(&token))
        .send()
        .await
        .unwrap();
    expect_error(res, 403).await;
}
both_backends!(features_match_hand_computed_values);

/// With the business rules on, the over-fetched candidates still fill
/// `top_n` after the filters.
#[tokio::test]
async fn rules_filter_candidates_and_the_list_stays_full() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let c = catalogue(&app).await;
    // Take the garden tools out of stock: the filter drops it.
    let res = app
        .put(
            &format!("/api/v1/items/{}", c.items[2]),
            &json!({"features": {"in_stock": false}}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body = json_of(
        app.get(&format!(
            "/api/v1/recommendations/user/{}?top_n=3&algorithm=item_knn&explain=true",
            c.alice
        ))
        .await,
    )
    .await;
    assert_eq!(body["rules_applied"], true);
    let got = ids(&body["recommendations"]);
    assert_eq!(got.len(), 3, "{body}");
    assert!(!got.contains(&c.items[2]));
    assert!(body["rule_trace"].is_array());
}

/// Two replicas on one PostgreSQL and one Redis share the feature and
/// recommendation caches: an interaction recorded on one invalidates what
/// the other serves.
#[tokio::test]
async fn replicas_share_the_caches_through_redis() {
    let prefix = format!("test-{}:", uuid::Uuid::new_v4());
    let database = crate::helpers::fresh_database_url(Backend::Postgres).await;
    let shared = |s: &mut recengine::config::Settings| {
        s.redis_url = Some("redis://127.0.0.1:6379/0".into());
        s.redis_key_prefix = prefix.clone();
        s.database_url = database.clone();
    };
    let a = TestApp::spawn_with(Backend::Postgres, shared).await;
    let c = catalogue(&a).await;
    let mut b = TestApp::spawn_without_admin(Backend::Postgres, shared).await;
    b.admin_token = a.admin_token.clone();
    assert_eq!(a.state.features.users.backend_name(), "redis");

    let path = format!("/api/v1/features/users/{}", c.alice);
    assert_eq!(json_of(a.get(&path).await).await["total_interactions"], 2);
    let hits = b.state.features.users.stats.hits();
    assert_eq!(json_of(b.get(&path).await).await["total_interactions"], 2);
    assert_eq!(
        b.state.features.users.stats.hits(),
        hits + 1,
        "B read A's entry"
    );

    let list = format!("/api/v1/recommendations/user/{}?top_n=3", c.alice);
    assert_eq!(json_of(a.get(&list).await).await["cached"], false);
    assert_eq!(json_of(b.get(&list).await).await["cached"], true);

    // B's invalidation reaches A's in-process L1 as a message.
    assert_eq!(b.interact(c.alice, c.items[5], "view").await.status(), 201);
    eventually(Duration::from_secs(1), "A sees B's interaction", || async {
        json_of(a.get(&path).await).await["total_interactions"] == 3
    })
    .await;
    let fresh = json_of(a.get(&list).await).await;
    assert!(!ids(&fresh["recommendations"]).contains(&c.items[5]));
}

/// The two-level caches: each replica answers from its own memory (no
/// Redis round trip for a hot entry), and a change made on one replica
/// reaches the other's memory as an invalidation message, well within the
/// L1 TTL, which is set long here so that only the message can explain it.
#[tokio::test]
async fn replicas_keep_their_in_process_caches_coherent() {
    let prefix = format!("test-{}:", uuid::Uuid::new_v4());
    let database = crate::helpers::fresh_database_url(Backend::Sqlite).await;
    let shared = |s: &mut recengine::config::Settings| {
        s.redis_url = Some("redis://127.0.0.1:6379/0".into());
        s.redis_key_prefix = prefix.clone();
        s.database_url = database.clone();
        s.cache.l1_ttl = Duration::from_secs(600);
    };
    let a = TestApp::spawn_with(Backend::Sqlite, shared).await;
    let c = catalogue(&a).await;
    let mut b = TestApp::spawn_without_admin(Backend::Sqlite, shared).await;
    b.admin_token = a.admin_token.clone();
    let list = format!("/api/v1/recommendations/user/{}?top_n=3", c.alice);
    let item = format!("/api/v1/features/items/{}", c.items[4]);

    // Warm both L1s, then take Redis' copies away: hits now come from
    // each process' own memory.
    assert_eq!(json_of(a.get(&list).await).await["cached"], false);
    assert_eq!(json_of(b.get(&list).await).await["cached"], true);
    assert_eq!(
        json_of(b.get(&item).await).await["item"]["title"],
        "Cooking Pot"
    );
    let mut redis = redis::Client::open("redis://127.0.0.1:6379/0")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}cache:*:*:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(json_of(a.get(&list).await).await["cached"], true, "A's L1");
    assert_eq!(json_of(b.get(&list).await).await["cached"], true, "B's L1");

    // A change on A: B's memory drops it on A's message, not on a TTL.
    let res = a
        .put(
            &format!("/api/v1/items/{}", c.items[4]),
            &json!({"title": "Copper Pot"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let took = eventually(Duration::from_secs(1), "B sees A's item change", || async {
        json_of(b.get(&item).await).await["item"]["title"] == "Copper Pot"
    })
    .await;
    assert!(took < Duration::from_secs(1));
    assert_eq!(b.interact(c.alice, c.items[5], "view").await.status(), 201);
    eventually(Duration::from_secs(1), "A drops Alice's list", || async {
        json_of(a.get(&list).await).await["cached"] == false
    })
    .await;
}

/// Served = measured: the lists `recengine eval` scores are the lists the
/// running service returns. The random split's training part is imported
/// as the ratings it is (`rating` interactions with their timestamps), the
/// models retrained, and for a sample of users and algorithms the API's
/// answer (rules off, cache off) must equal the evaluation's, item for item.
#[tokio::test]
async fn the_evaluation_scores_what_the_service_serves() {
    use recengine::{data::movielens, features::Confidence, recommend::eval};
    // MovieLens keeps its ids: import first, then make the admin account.
    let mut app = TestApp::spawn_without_admin(Backend::Sqlite, |s| {
        s.enable_business_rules = false;
        s.cache_ttl = std::time::Duration::ZERO;
    })
    .await;
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ml-100k");
    let data = movielens::read_dataset(&dir).unwrap();
    let (train, _) = eval::random_split(&data.ratings, eval::SPLIT_SEED);
    let imported = movielens::import(
        &app.state.db,
        &movielens::Dataset {
            ratings: train.clone(),
            ..data.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(imported.interactions, 80_367);
    app.make_admin().await;
    let report = json_of(app.post("/api/v1/models/retrain", &json!({})).await).await;
    assert_eq!(report["interactions"], 80_367);

    let settings = &app.state.settings;
    let served = eval::Served::train(
        &train,
        &data.items,
        &Confidence::from_settings(settings),
        settings.models_config(),
    );
    let method = settings.hybrid_method;
    let mut compared = 0;
    for user in (1..=943).step_by(53).chain([196, 943]) {
        for name in ["hybrid", "ease", "user_knn", "content_based"] {
            let algorithm = recengine::recommend::algorithms::parse(name, method).unwrap();
            let expected = served.list(algorithm, user, 10);
            assert_eq!(expected.len(), 10);
            let got = json_of(
                app.get(&format!(
                    "/api/v1/recommendations/user/{user}?top_n=10&algorithm={name}"
                ))
                .await,
            )
            .await;
            assert_eq!(got["rules_applied"], false);
            assert_eq!(got["cached"], false);
            assert_eq!(
                ids(&got["recommendations"]),
                expected,
                "user {user}, {name}: the service and the evaluation disagree"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 80);
}
