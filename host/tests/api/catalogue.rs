//! Users, items and interactions through the public API.

use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{Backend, TestApp, expect_error, fresh_database_url, ids_of},
};

async fn health_reports_dependencies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/health", "/api/v1/health"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "healthy");
        assert_eq!(body["database"], "connected");
        assert_eq!(body["redis"], "not configured");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    }
}
both_backends!(health_reports_dependencies);

/// The service listens before its first models are trained (`serve` trains
/// in the background): alive (`/health` 200, models `starting`) but not
/// ready (`/ready` 503 `starting`), recommending by stored popularity until
/// the models are in, then ready and answering from them.
async fn the_service_is_alive_but_not_ready_until_trained(backend: Backend) {
    let settings = recengine::config::Settings::for_tests(&fresh_database_url(backend).await);
    let state = recengine::AppState::open(settings).await.unwrap();
    let mut app = TestApp::serve(state).await;
    app.make_admin().await;
    let mut items = Vec::new();
    for title in ["Rare", "Popular", "Middling", "Seen"] {
        items.push(
            app.create_item(title, "books").await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let [rare, popular, middling, seen] = items[..] else {
        unreachable!()
    };
    let mut users = Vec::new();
    for name in ["ann", "ben", "cyd", "dee"] {
        users.push(
            app.create_user(name, json!({})).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let [ann, ben, cy, dee] = users[..] else {
        unreachable!()
    };
    for (user, item) in [
        (ben, popular),
        (cy, popular),
        (dee, popular),
        (ben, middling),
        (cy, middling),
        (ann, seen),
        (ben, seen),
        (cy, seen),
        (dee, seen),
        (dee, rare),
    ] {
        assert_eq!(app.interact(user, item, "view").await.status(), 201);
    }

    let res = app.get("/ready").await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"status": "starting", "model_version": 0}));
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200, "alive while starting");
    assert_eq!(health.json::<Value>().await.unwrap()["models"], "starting");
    // Ann saw "Seen": the popular items she has not seen, most popular first.
    let recs: Value = app
        .get_json(&format!("/api/v1/recommendations/user/{ann}?top_n=2"))
        .await;
    assert_eq!(recs["fallback"], "popularity", "{recs}");
    assert_eq!(recs["model_version"], 0);
    assert_eq!(ids_of(&recs), [popular, middling]);

    app.state.start_models().await.unwrap();
    let res = app.get("/ready").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": "ready", "model_version": 1})
    );
    assert_eq!(app.get_json("/health").await["models"], "ready");
    let recs: Value = app
        .get_json(&format!("/api/v1/recommendations/user/{ann}?top_n=2"))
        .await;
    assert_eq!(recs["model_version"], 1, "{recs}");
    assert_eq!(recs["fallback"], Value::Null);
}
both_backends!(the_service_is_alive_but_not_ready_until_trained);

async fn request_ids_are_generated_or_echoed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.get("/health").await;
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let res = app
        .client
        .get(app.url("/api/v1/items/424242"))
        .header("X-Request-ID", "client-chosen-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "client-chosen-id-1");
    assert_eq!(res.status(), 404, "errors carry the id too");
    // An absurd client id is replaced, not echoed into our logs.
    let res = app
        .client
        .get(app.url("/health"))
        .header("X-Request-ID", "x".repeat(500))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"].len(), 36);
}
both_backends!(request_ids_are_generated_or_echoed);

async fn user_lifecycle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app
        .post(
            "/api/v1/users/",
            &json!({"username": "alice", "email": "Alice@Example.com", "password": "a-long-password",
                    "preferences": {"age": 34, "country": "FR", "favorite_categories": ["books"]}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let text = res.text().await.unwrap();
    assert!(!text.contains("password"), "no password or hash: {text}");
    assert!(!text.contains("argon2"), "no hash: {text}");
    let alice: Value = serde_json::from_str(&text).unwrap();
    let id = alice["id"].as_i64().unwrap();
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["email"], "alice@example.com", "emails are normalised");
    assert_eq!(alice["role"], "user");
    assert_eq!(alice["preferences"]["country"], "FR");
    assert!(alice["created_at"].as_str().unwrap().ends_with('Z'));

    // Duplicates: the seed's messages, nothing created.
    let dup_name = app
        .post(
            "/api/v1/users/",
            &json!({"username": "alice", "email": "other@example.com", "password": "a-long-password"}),
        )
        .await;
    assert_eq!(expect_error(dup_name, 400).await, "Username already exists");
    let dup_mail = app
        .post(
            "/api/v1/users",
            &json!({"username": "alice2", "email": "ALICE@example.com", "password": "a-long-password"}),
        )
        .await;
    assert_eq!(
        expect_error(dup_mail, 400).await,
        "Email already registered"
    );

    let got: Value = app
        .get(&format!("/api/v1/users/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, alice);

    let updated = app
        .put(
            &format!("/api/v1/users/{id}"),
            &json!({"preferences": {"age": 35, "country": "DE"}}),
        )
        .await;
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["preferences"]["country"], "DE");
    assert_eq!(updated["username"], "alice", "untouched fields stay");

    let bob = app.create_user("bob", json!({})).await;
    let taken = app
        .put(
            &format!("/api/v1/users/{}", bob["id"]),
            &json!({"email": "alice@example.com"}),
        )
        .await;
    assert_eq!(expect_error(taken, 400).await, "Email already registered");

    // The admin the harness made, alice, bob.
    let list: Vec<Value> = app.get("/api/v1/users/").await.json().await.unwrap();
    assert_eq!(list.len(), 3);
    let page: Vec<Value> = app
        .get("/api/v1/users/?skip=2&limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["username"], "bob");

    assert_eq!(
        app.delete(&format!("/api/v1/users/{id}")).await.status(),
        204
    );
    expect_error(app.get(&format!("/api/v1/users/{id}")).await, 404).await;
    expect_error(app.delete(&format!("/api/v1/users/{id}")).await, 404).await;
    expect_error(
        app.put(&format!("/api/v1/users/{id}"), &json!({"preferences": {}}))
            .await,
        404,
    )
    .await;
}
both_backends!(user_lifecycle);

async fn item_lifecycle_and_popularity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app
        .post(
            "/api/v1/items/",
            &json!({"title": "  Dune  ", "description": "Spice", "category": "books",
                    "tags": ["scifi", "classic"], "features": {"in_stock": true, "min_age": 12},
                    "popularity_score": 5.0}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let dune: Value = res.json().await.unwrap();
    assert_eq!(dune["title"], "Dune");
    assert_eq!(dune["tags"], json!(["scifi", "classic"]));
    assert_eq!(dune["features"]["min_age"], 12);
    assert_eq!(dune["popularity_score"], 5.0);
    let dune_id = dune["id"].as_i64().unwrap();

    let radio = app.create_item("Radio", "electronics").await;
    let lamp = app.create_item("Lamp", "home").await;

    let books: Vec<Value> = app
        .get("/api/v1/items/?category=books")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(books.len(), 1);
    assert_eq!(books[0]["id"], dune_id);

    // Interactions raise popularity: the lamp gets two and overtakes the radio.
    let user = app.create_user("carol", json!({})).await;
    let uid = user["id"].as_i64().unwrap();
    for _ in 0..2 {
        assert_eq!(
            app.interact(uid, lamp["id"].as_i64().unwrap(), "view")
                .await
                .status(),
            201
        );
    }
    let top: Vec<Value> = app
        .get("/api/v1/items/popular/top?limit=2")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<i64> = top.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![dune_id, lamp["id"].as_i64().unwrap()]);
    assert_eq!(top[1]["popularity_score"], 2.0);

    let updated: Value = app
        .put(
            &format!("/api/v1/items/{}", radio["id"]),
            &json!({"features": {"in_stock": false}, "popularity_score": 100.0}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["features"]["in_stock"], false);
    assert_eq!(updated["title"], "Radio");
    let top: Vec<Value> = app
        .get("/api/v1/items/popular/top?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(top[0]["id"], radio["id"]);

    assert_eq!(
        app.delete(&format!("/api/v1/items/{dune_id}"))
            .await
            .status(),
        204
    );
    expect_error(app.get(&format!("/api/v1/items/{dune_id}")).await, 404).await;
    expect_error(
        app.put(&format!("/api/v1/items/{dune_id}"), &json!({"title": "x"}))
            .await,
        404,
    )
    .await;
}
both_backends!(item_lifecycle_and_popularity);

async fn interactions_and_stats(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("dave", json!({})).await;
    let uid = user["id"].as_i64().unwrap();
    let a = app.create_item("A", "books").await["id"].as_i64().unwrap();
    let b = app.create_item("B", "books").await["id"].as_i64().unwrap();

    let res = app
        .post(
            "/api/v1/interactions/",
            &json!({"user_id": uid, "item_id": a, "interaction_type": "rating", "rating": 4.0}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["rating"], 4.0);
    assert_eq!(first["weight"], 1.0);
    app.post(
        "/api/v1/interactions/",
        &json!({"user_id": uid, "item_id": b, "interaction_type": "rating", "rating": 2.0, "weight": 2.5}),
    )
    .await;
    assert_eq!(app.interact(uid, a, "purchase").await.status(), 201);

    let stats: Value = app
        .get(&format!("/api/v1/interactions/stats/user/{uid}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total_interactions"], 3);
    assert_eq!(stats["unique_items"], 2);
    assert_eq!(
        stats["interaction_types"],
        json!({"rating": 2, "purchase": 1})
    );
    assert_eq!(stats["average_rating"], 3.0);
    assert!(stats["first_interaction_at"].is_string());

    let mine: Vec<Value> = app
        .get(&format!("/api/v1/interactions/user/{uid}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine.len(), 3);
    let on_a: Vec<Value> = app
        .get(&format!("/api/v1/interactions/item/{a}?limit=1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(on_a.len(), 1);
    assert_eq!(on_a[0]["interaction_type"], "purchase", "newest first");

    // Unknown references are 404 and record nothing.
    expect_error(app.interact(999_999, a, "view").await, 404).await;
    let detail = expect_error(app.interact(uid, 999_999, "view").await, 404).await;
    assert_eq!(detail, "Item not found");
    expect_error(app.interact(uid, a, "teleport").await, 422).await;
    expect_error(
        app.post(
            "/api/v1/interactions/",
            &json!({"user_id": uid, "item_id": a, "interaction_type": "rating", "rating": 11}),
        )
        .await,
        422,
    )
    .await;
    expect_error(app.get("/api/v1/interactions/user/999999").await, 404).await;
    expect_error(app.get("/api/v1/interactions/item/999999").await, 404).await;
    expect_error(app.get("/api/v1/interactions/stats/user/999999").await, 404).await;
    let stats: Value = app
        .get(&format!("/api/v1/interactions/stats/user/{uid}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total_interactions"], 3);
}
both_backends!(interactions_and_stats);

async fn deleting_a_user_removes_its_interactions_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let erin = app.create_user("erin", json!({})).await["id"]
        .as_i64()
        .unwrap();
    let frank = app.create_user("frank", json!({})).await["id"]
        .as_i64()
        .unwrap();
    let item = app.create_item("Shared", "books").await["id"]
        .as_i64()
        .unwrap();
    for user in [erin, erin, frank] {
        assert_eq!(app.interact(user, item, "view").await.status(), 201);
    }
    assert_eq!(
        app.delete(&format!("/api/v1/users/{erin}")).await.status(),
        204
    );

    let left: Vec<Value> = app
        .get(&format!("/api/v1/interactions/item/{item}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["user_id"], frank);
    assert_eq!(
        app.get(&format!("/api/v1/items/{item}")).await.status(),
        200
    );
    assert_eq!(
        app.get(&format!("/api/v1/users/{frank}")).await.status(),
        200
    );

    // Deleting the item removes the rest.
    assert_eq!(
        app.delete(&format!("/api/v1/items/{item}")).await.status(),
        204
    );
    let stats: Value = app
        .get(&format!("/api/v1/interactions/stats/user/{frank}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total_interactions"], 0);
}
both_backends!(deleting_a_user_removes_its_interactions_only);

async fn openapi_and_docs_are_served_offline(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/users/",
        "/api/v1/users/{user_id}",
        "/api/v1/items/popular/top",
        "/api/v1/interactions/stats/user/{user_id}",
        "/health",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} missing from the spec"
        );
    }
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "Swagger UI page");
    assert!(
        !html.contains("https://"),
        "the docs page must not load anything from the internet"
    );
    let init = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(init.status(), 200);
    assert!(init.text().await.unwrap().contains("/openapi.json"));
}
both_backends!(openapi_and_docs_are_served_offline);

/// A NULL rating then a real one on the same pooled connection: guards the
/// statement-cache type trap described at `store::NULL_F64`.
async fn nullable_ratings_survive_statement_reuse(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.database_max_connections = 1).await;
    let uid = app.create_user("gina", json!({})).await["id"]
        .as_i64()
        .unwrap();
    let item = app.create_item("Thing", "books").await["id"]
        .as_i64()
        .unwrap();
    for _ in 0..2 {
        assert_eq!(app.interact(uid, item, "view").await.status(), 201);
        let res = app
            .post(
                "/api/v1/interactions/",
                &json!({"user_id": uid, "item_id": item, "interaction_type": "rating", "rating": 4.5}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    let stats: Value = app
        .get(&format!("/api/v1/interactions/stats/user/{uid}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["average_rating"], 4.5);
    assert_eq!(stats["total_interactions"], 4);
}
both_backends!(nullable_ratings_survive_statement_reuse);
