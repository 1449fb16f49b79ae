//! The access log: one JSON line per request with the agreed fields.

use std::{
    io,
    sync::{Arc, Mutex},
};

use axum::{body::Body, http::Request};
use recengine::{config::Settings, telemetry::logging::json_layer};
use serde_json::Value;
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;

use crate::helpers::{Backend, fresh_database_url};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_request_writes_one_json_access_line() {
    let url = fresh_database_url(Backend::Sqlite).await;
    let state = recengine::AppState::build(Settings::for_tests(&url))
        .await
        .unwrap();
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::registry().with(json_layer(move || writer.clone()));
    // The test runtime is single-threaded, so a thread-local subscriber sees
    // everything the request does.
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests run on other threads with no subscriber, and tracing
    // caches each callsite's interest process-wide: a span first reached
    // there is cached as disabled, and this request's span (which carries
    // the request id) would be skipped here too. Recompute with this
    // thread's subscriber counted.
    tracing::callsite::rebuild_interest_cache();

    let response = recengine::app(state)
        .oneshot(
            Request::get("/api/v1/items/12345?verbose=1")
                .header("x-request-id", "log-test-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request completed")
        .collect();
    assert_eq!(access.len(), 1, "{text}");
    let line = access[0];
    for field in ["timestamp", "level", "service", "logger_name", "message"] {
        assert!(line.get(field).is_some(), "{field} missing: {line}");
    }
    assert_eq!(line["service"], "recengine");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["url"], "/api/v1/items/12345?verbose=1");
    assert_eq!(line["status_code"], 404);
    assert_eq!(line["request_id"], "log-test-1");
    assert!(line["duration_ms"].as_f64().unwrap() >= 0.0);
}

#[tokio::test]
async fn passwords_and_hashes_never_reach_responses_or_logs() {
    let url = fresh_database_url(Backend::Sqlite).await;
    let state = recengine::AppState::build(Settings::for_tests(&url))
        .await
        .unwrap();
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::registry().with(json_layer(move || writer.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    // See `a_request_writes_one_json_access_line`.
    tracing::callsite::rebuild_interest_cache();
    let secret = "Sup3r-Secret-Passw0rd";
    let app = recengine::app(state);
    let call = |uri: &str, body: serde_json::Value| {
        Request::post(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let mut bodies = Vec::new();
    for req in [
        call(
            "/api/v1/auth/register",
            serde_json::json!({"username": "zoe", "email": "zoe@example.com", "password": secret}),
        ),
        call(
            "/api/v1/auth/login",
            serde_json::json!({"email": "zoe@example.com", "password": secret}),
        ),
        call(
            "/api/v1/auth/login",
            serde_json::json!({"email": "zoe@example.com", "password": format!("{secret}x")}),
        ),
    ] {
        let res = app.clone().oneshot(req).await.unwrap();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        bodies.push(String::from_utf8(bytes.to_vec()).unwrap());
    }
    assert!(
        bodies[1].contains("access_token"),
        "login worked: {}",
        bodies[1]
    );
    let pair: Value = serde_json::from_str(&bodies[1]).unwrap();
    let me = app
        .clone()
        .oneshot(
            Request::get("/api/v1/auth/me")
                .header(
                    "authorization",
                    format!("Bearer {}", pair["access_token"].as_str().unwrap()),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("request completed"), "logs were captured");
    let me_line: Value = logs
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["url"] == "/api/v1/auth/me")
        .expect("access line for /auth/me");
    assert!(me_line["user_id"].as_i64().is_some(), "{me_line}");
    for text in bodies.iter().chain(std::iter::once(&logs)) {
        assert!(!text.contains(secret), "password leaked: {text}");
        assert!(!text.contains("$argon2"), "hash leaked: {text}");
        assert!(!text.contains("password_hash"), "hash field leaked: {text}");
    }
}
