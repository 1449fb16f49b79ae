//! `/metrics`: Prometheus text that parses, route templates as labels, and
//! counters that move with what the service does.

use serde_json::json;

use crate::helpers::{
    Backend, TestApp,
    metrics::{scrape, value},
};

#[tokio::test]
async fn metrics_parse_and_move_with_requests() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.create_user("metered", json!({})).await;
    let id = user["id"].as_i64().unwrap();
    let before = scrape(&app).await;
    let route = r#"http_requests_total{method="GET",route="/api/v1/users/{user_id}",status="200"}"#;
    for _ in 0..3 {
        assert_eq!(app.get(&format!("/api/v1/users/{id}")).await.status(), 200);
    }
    let recs = r#"recommendations_generated_total{algorithm="hybrid"}"#;
    app.get(&format!("/api/v1/recommendations/user/{id}")).await;
    app.get(&format!("/api/v1/recommendations/user/{id}")).await;
    let after = scrape(&app).await;
    // The metrics are per process and other tests run beside this one:
    // at least our three.
    assert!(value(&after, route) - value(&before, route) >= 3.0);
    assert!(
        after.keys().all(|k| !k.contains(&format!("/users/{id}\""))),
        "raw paths never become labels"
    );
    assert!(value(&after, recs) - value(&before, recs) >= 1.0);
    let hits = r#"cache_hits_total{cache="recommendations"}"#;
    assert!(
        value(&after, hits) >= 1.0,
        "the second request was a cache hit"
    );
    assert!(after.contains_key("active_items"));
    assert!(after.contains_key(r#"rule_calls_total{rule="filter_out_of_stock"}"#));
    assert!(after.contains_key(r#"db_pool_connections{state="idle"}"#));
    assert_eq!(
        value(&after, "redis_up"),
        1.0,
        "not configured counts as up"
    );
    assert!(
        after
            .keys()
            .any(|k| k.starts_with("http_request_duration_seconds_bucket{"))
    );

    // A refused bundle counts by cause.
    let res = app
        .client
        .post(app.url("/api/v1/rules/bundles"))
        .bearer_auth(&app.admin_token)
        .body(b"not a bundle".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let last = scrape(&app).await;
    let refused = r#"bundle_failures_total{bundle="?",cause="malformed"}"#;
    assert!(
        value(&last, refused) - value(&after, refused) >= 1.0,
        "{:?}",
        last.keys()
            .filter(|k| k.starts_with("bundle"))
            .collect::<Vec<_>>()
    );
}
