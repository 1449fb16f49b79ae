//! The OpenAPI document as generated clients and schema fuzzers read it:
//! every path parameter declared, nullable fields nullable, the error
//! statuses each route can return documented with the `{"detail"}` body,
//! and the bounds and enums the handlers check. `scripts/schemathesis.sh`
//! fuzzes the server against the same document.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

async fn document() -> Value {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// `(path, method, operation)` for every operation of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((path.clone(), method.to_string(), op.clone()));
            }
        }
    }
    assert!(out.len() > 50, "only {} operations", out.len());
    out
}

fn parameter<'a>(op: &'a Value, name: &str, location: &str) -> Option<&'a Value> {
    op["parameters"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name && p["in"] == location)
}

fn operation(doc: &Value, path: &str, method: &str) -> Value {
    doc["paths"][path][method].clone()
}

/// The string values of an enum, wherever the schema keeps them (inline,
/// or an array's items).
fn enum_values(schema: &Value) -> Vec<String> {
    let values = schema
        .get("enum")
        .or_else(|| schema["items"].get("enum"))
        .unwrap_or_else(|| panic!("no enum in {schema}"));
    values
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn every_path_parameter_is_declared_with_type_and_bounds() {
    let doc = document().await;
    for (path, method, op) in operations(&doc) {
        let names: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for name in names {
            let p = parameter(&op, name, "path")
                .unwrap_or_else(|| panic!("{method} {path}: path parameter {name} undeclared"));
            assert_eq!(p["required"], true, "{method} {path} {name}");
            let schema = &p["schema"];
            match schema["type"].as_str() {
                Some("integer") => assert_eq!(schema["format"], "int64", "{method} {path} {name}"),
                Some("string") => assert!(
                    schema["minLength"] == 1 || schema.get("enum").is_some(),
                    "{method} {path} {name}: an empty segment is another route"
                ),
                _ => panic!("{method} {path} {name}: untyped {schema}"),
            }
        }
    }
}

#[tokio::test]
async fn every_route_documents_the_errors_it_can_return() {
    let doc = document().await;
    for (path, method, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        let has = |status: &str| responses.contains_key(status);
        let takes_input = op.get("requestBody").is_some()
            || op["parameters"].as_array().is_some_and(|p| !p.is_empty());
        if takes_input {
            assert!(has("422"), "{method} {path}: input but no 422");
        }
        if op["requestBody"]["content"]
            .get("application/json")
            .is_some()
        {
            assert!(has("413") && has("415"), "{method} {path}: JSON body");
        }
        let needs_token = op["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty() && !s.iter().any(|r| r == &serde_json::json!({})));
        if needs_token {
            assert!(has("401"), "{method} {path}: token but no 401");
        }
        if path.starts_with("/api/v1/") {
            assert!(has("429") && has("503"), "{method} {path}: no 429/503");
        }
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"];
                assert!(
                    schema.is_object(),
                    "{method} {path} {status}: error without a body schema"
                );
                assert!(
                    !response["description"].as_str().unwrap_or("").is_empty(),
                    "{method} {path} {status}: no description"
                );
            }
        }
    }
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["properties"]["detail"]["type"], "string");
    assert_eq!(error["required"], serde_json::json!(["detail"]));
}

#[tokio::test]
async fn fields_that_can_be_null_are_nullable() {
    let doc = document().await;
    let result = &doc["components"]["schemas"]["JobRun"]["properties"]["result"];
    let types: Vec<&str> = result["type"]
        .as_array()
        .unwrap_or_else(|| panic!("JobRun.result is not nullable: {result}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        types.contains(&"null") && types.contains(&"object"),
        "{result}"
    );
}

#[tokio::test]
async fn bounds_and_enums_match_what_the_handlers_check() {
    let doc = document().await;
    let for_user = operation(&doc, "/api/v1/recommendations/user/{user_id}", "get");
    let top_n = &parameter(&for_user, "top_n", "query").unwrap()["schema"];
    assert_eq!(
        (top_n["minimum"].as_f64(), top_n["maximum"].as_f64()),
        (Some(1.0), Some(100.0))
    );
    let algorithm = &parameter(&for_user, "algorithm", "query").unwrap()["schema"];
    assert_eq!(
        enum_values(algorithm),
        recengine::recommend::algorithms::NAMES.to_vec()
    );
    let kinds = &parameter(&for_user, "rule_types", "query").unwrap()["schema"];
    assert_eq!(enum_values(kinds), ["filter", "boost", "rerank", "promote"]);

    let trending = operation(&doc, "/api/v1/recommendations/trending", "get");
    let window = &parameter(&trending, "time_window", "query").unwrap()["schema"];
    assert_eq!(
        window["maximum"].as_f64(),
        Some(recengine::recommend::trending::MAX_WINDOW_SECONDS as f64)
    );

    let interaction = &doc["components"]["schemas"]["InteractionCreate"]["properties"];
    assert_eq!(
        enum_values(&interaction["interaction_type"]),
        recengine::store::interactions::INTERACTION_TYPES.to_vec()
    );
    assert_eq!(interaction["rating"]["maximum"].as_f64(), Some(5.0));

    let runs = operation(&doc, "/api/v1/jobs/runs", "get");
    let status = &parameter(&runs, "status", "query").unwrap()["schema"];
    assert_eq!(
        enum_values(status),
        recengine::jobs::RunStatus::ALL.map(|s| s.as_str().to_string())
    );
    let trigger = &parameter(&runs, "trigger", "query").unwrap()["schema"];
    assert_eq!(
        enum_values(trigger),
        recengine::jobs::Trigger::ALL.map(|t| t.as_str().to_string())
    );
    let job = operation(&doc, "/api/v1/jobs/{name}/trigger", "post");
    let name = &parameter(&job, "name", "path").unwrap()["schema"];
    assert_eq!(
        enum_values(name),
        recengine::jobs::JobName::ALL.map(|j| j.as_str().to_string())
    );

    let role = &doc["components"]["schemas"]["Role"];
    assert_eq!(enum_values(role), ["user", "ops", "admin"]);
}

// What the fuzzing found where the handlers and the document disagreed.

/// JSON Schema counts `96.0` as an integer, and so did the FastAPI service.
#[tokio::test]
async fn integral_floats_are_integers_in_bodies_and_paths() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let item = app
        .post(
            "/api/v1/items/",
            &json!({"title": "Lamp", "category": "home"}),
        )
        .await;
    assert_eq!(item.status(), 201);
    let item_id = item.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    // (path, body, status): integral floats where integers are expected.
    let cases = [
        (
            "/api/v1/interactions/",
            json!({"user_id": 1.0, "item_id": item_id as f64, "interaction_type": "view"}),
            201,
        ),
        (
            "/api/v1/recommendations/",
            json!({"user_id": 1, "top_n": 96.0}),
            200,
        ),
        // A fraction is still refused, with the field named.
        (
            "/api/v1/recommendations/",
            json!({"user_id": 1, "top_n": 9.5}),
            422,
        ),
    ];
    let mut res = None;
    for (path, body, status) in cases {
        let r = app.post(path, &body).await;
        assert_eq!(r.status(), status, "{path} {body}");
        res = Some(r);
    }
    let res = res.unwrap();
    assert!(res.text().await.unwrap().contains("top_n"));

    let res = app.get(&format!("/api/v1/items/{item_id}.0")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["id"], item_id);
    assert_eq!(app.get("/api/v1/items/1.5").await.status(), 422);
    assert_eq!(app.get("/api/v1/items/abc").await.status(), 422);
}

/// The document bounds `hour_of_day` to 0..=23 on every context.
#[tokio::test]
async fn dry_run_refuses_an_hour_of_day_past_23() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let body = |hour: u32| json!({"candidates": [], "context": {"hour_of_day": hour}});
    let res = app.post("/api/v1/rules/dry-run", &body(24)).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("hour_of_day"));
    assert_eq!(
        app.post("/api/v1/rules/dry-run", &body(23)).await.status(),
        200
    );
}

/// Password and login bounds are counted in characters, as documented
/// (`maxLength` counts characters), not UTF-8 bytes.
#[tokio::test]
async fn password_bounds_are_characters() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let register = |name: &str, password: &str| {
        app.client
            .post(app.url("/api/v1/auth/register"))
            .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": password}))
            .send()
    };
    let password = "é".repeat(100); // 100 characters, 200 bytes
    let res = register("accent", &password).await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let tokens = app.login("accent@example.com", &password).await;
    assert!(tokens["access_token"].is_string());
    let res = register("accent2", &"é".repeat(129)).await.unwrap();
    assert_eq!(res.status(), 422);
}
