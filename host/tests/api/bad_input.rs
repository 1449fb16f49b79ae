//! Bad input gets a clear 4xx with `{"detail"}` and changes nothing.

use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{Backend, TestApp, expect_error},
};

async fn malformed_and_mistyped_bodies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let raw = |body: &'static str| {
        app.client
            .post(app.url("/api/v1/users/"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    expect_error(raw("{\"username\": ").await.unwrap(), 422).await;
    expect_error(raw("not json at all").await.unwrap(), 422).await;
    expect_error(raw("[]").await.unwrap(), 422).await;
    // Wrong types.
    expect_error(
        app.post(
            "/api/v1/users/",
            &json!({"username": 42, "email": "a@b.co", "password": "a-long-password"}),
        )
        .await,
        422,
    )
    .await;
    expect_error(
        app.post(
            "/api/v1/interactions/",
            &json!({"user_id": "one", "item_id": 1, "interaction_type": "view"}),
        )
        .await,
        422,
    )
    .await;
    // Validation.
    for body in [
        json!({"username": "ab", "email": "a@b.co", "password": "a-long-password"}),
        json!({"username": "good_name", "email": "not-an-email", "password": "a-long-password"}),
        json!({"username": "good_name", "email": "a@b.co", "password": "short"}),
        json!({"username": "good_name", "email": "a@b.co", "password": "x".repeat(200)}),
        json!({"username": "good_name", "email": "a@b.co", "password": "a-long-password", "preferences": [1]}),
        json!({"username": "good_name", "email": "a@b.co", "password": "a-long-password", "is_admin": true}),
    ] {
        expect_error(app.post("/api/v1/users/", &body).await, 422).await;
    }
    for body in [
        json!({"title": ""}),
        json!({"title": "ok", "features": "in stock"}),
        json!({"title": "ok", "popularity_score": -1}),
        json!({"title": "ok", "tags": "not-a-list"}),
    ] {
        expect_error(app.post("/api/v1/items/", &body).await, 422).await;
    }
    // No content type.
    let res = app
        .client
        .post(app.url("/api/v1/items/"))
        .body("{\"title\": \"x\"}")
        .send()
        .await
        .unwrap();
    expect_error(res, 415).await;
    // Nothing was stored by any of it.
    let users: Vec<Value> = app.get("/api/v1/users/").await.json().await.unwrap();
    let items: Vec<Value> = app.get("/api/v1/items/").await.json().await.unwrap();
    assert!(
        users.len() == 1 && items.is_empty(),
        "only the harness's admin"
    );
}
both_backends!(malformed_and_mistyped_bodies);

async fn pagination_and_path_values_are_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for q in [
        "skip=-1",
        "limit=0",
        "limit=-5",
        "limit=1001",
        "limit=99999999999999999999",
        "skip=abc",
    ] {
        expect_error(app.get(&format!("/api/v1/users/?{q}")).await, 422).await;
        expect_error(app.get(&format!("/api/v1/items/?{q}")).await, 422).await;
    }
    expect_error(app.get("/api/v1/items/popular/top?limit=101").await, 422).await;
    expect_error(app.get("/api/v1/users/abc").await, 422).await;
    expect_error(app.get("/api/v1/items/1.5").await, 422).await;
    expect_error(app.get("/api/v1/users/-1").await, 404).await;
    expect_error(app.get("/api/v1/users/9223372036854775807").await, 404).await;
    expect_error(app.get("/api/v1/nowhere").await, 404).await;
    expect_error(
        app.client
            .patch(app.url("/api/v1/users/1"))
            .send()
            .await
            .unwrap(),
        405,
    )
    .await;
}
both_backends!(pagination_and_path_values_are_checked);

async fn huge_bodies_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let existing = app.create_item("Keep me", "books").await;
    let ten_mb = format!(
        "{{\"title\": \"big\", \"description\": \"{}\"}}",
        "x".repeat(10 * 1024 * 1024)
    );
    let mut refused = 0;
    for path in [
        "/api/v1/items/".to_string(),
        format!("/api/v1/items/{}", existing["id"]),
    ] {
        let req = if path.ends_with('/') {
            app.client.post(app.url(&path))
        } else {
            app.client.put(app.url(&path))
        };
        let res = req
            .header("content-type", "application/json")
            .body(ten_mb.clone())
            .send()
            .await;
        // The server may close the connection after answering 413 while
        // the client is still sending; either way nothing is stored.
        if let Ok(res) = res {
            expect_error(res, 413).await;
            refused += 1;
        }
    }
    assert!(refused > 0, "no 413 was seen");
    let items: Vec<Value> = app.get("/api/v1/items/").await.json().await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["title"], "Keep me");
}
both_backends!(huge_bodies_are_refused);

/// A NUL character (U+0000) anywhere in a body, query or path is the same
/// 422 naming the field on both backends (PostgreSQL cannot store one; it
/// was a 500 there while SQLite accepted it).
async fn nul_characters_are_refused_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anonymous = |path: &str, body: Value| app.client.post(app.url(path)).json(&body).send();
    let nul = |field: &str, detail: String| {
        assert!(
            detail.contains(field) && detail.contains("NUL"),
            "{field}: {detail}"
        );
    };
    let res = anonymous(
        "/api/v1/auth/login",
        json!({"email": "a\u{0}@example.com", "password": "a-long-password"}),
    )
    .await
    .unwrap();
    nul("email", expect_error(res, 422).await);
    let res = anonymous(
        "/api/v1/auth/register",
        json!({"username": "nul_user", "email": "nul\u{0}@example.com",
               "password": "a-long-password"}),
    )
    .await
    .unwrap();
    nul("email", expect_error(res, 422).await);
    let res = app
        .post(
            "/api/v1/items/",
            &json!({"title": "a\u{0}b", "category": "x"}),
        )
        .await;
    nul("title", expect_error(res, 422).await);
    let res = app
        .post(
            "/api/v1/items/",
            &json!({"title": "ok", "description": "\u{0}", "category": "x"}),
        )
        .await;
    nul("description", expect_error(res, 422).await);
    let res = app
        .post(
            "/api/v1/items/",
            &json!({"title": "ok", "category": "x", "tags": ["fine", "bad\u{0}"]}),
        )
        .await;
    nul("tags[1]", expect_error(res, 422).await);
    let res = app
        .post(
            "/api/v1/items/",
            &json!({"title": "ok", "category": "x", "features": {"k\u{0}": 1}}),
        )
        .await;
    nul("features.k", expect_error(res, 422).await);
    nul(
        "category",
        expect_error(app.get("/api/v1/items/?category=%00").await, 422).await,
    );
    nul(
        "name",
        expect_error(app.get("/api/v1/rules/bundles/a%00b").await, 422).await,
    );
    nul(
        "name",
        expect_error(app.get("/api/v1/rules/bundles/a%00b/history").await, 422).await,
    );

    // An escaped backslash followed by "u0000" is six ordinary characters.
    let res = app
        .post(
            "/api/v1/items/",
            &json!({"title": "a\\u0000b", "category": "x"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let item: Value = res.json().await.unwrap();
    assert_eq!(item["title"], "a\\u0000b");
    // Nothing else was stored.
    let items: Vec<Value> = app.get("/api/v1/items/").await.json().await.unwrap();
    assert_eq!(items.len(), 1);
    let users: Vec<Value> = app.get("/api/v1/users/").await.json().await.unwrap();
    assert_eq!(users.len(), 1, "only the harness's admin");
}
both_backends!(nul_characters_are_refused_naming_the_field);
