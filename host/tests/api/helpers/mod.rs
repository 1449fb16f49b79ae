//! Test harness: a fresh, migrated database per test (a temporary SQLite file,
//! or a new PostgreSQL database on the machine's server) and the real router
//! served on 127.0.0.1:0. Every helper a test module uses lives under here,
//! so no test module imports from another.
//!
//! # Layout
//! - this file: `TestApp` and its requests, the databases, `both_backends!`,
//!   error bodies, recommendation ids, scratch directories;
//! - `poll`: waiting for something to happen, or for it not to;
//! - `wasm`: the test components (hostile fixtures, the example rule);
//! - `bundles`: rule bundles as `rules pack` builds them, and their upload;
//! - `metrics`: `/metrics` scraped and parsed.

pub mod bundles;
pub mod metrics;
mod poll;
pub mod wasm;

use std::{net::SocketAddr, path::PathBuf, sync::Once};

use recengine::{AppState, config::Settings};
use serde_json::Value;

pub use poll::{eventually, eventually_some, holds_throughout};

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per backend, as two `#[tokio::test]`s.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    };
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub client: reqwest::Client,
    /// An admin's access token; the `get`/`post`/`put`/`delete` helpers send
    /// it, so tests about the catalogue are not about permissions.
    pub admin_token: String,
    /// Stops the server when the test ends, so its state (database pool,
    /// Wasm instances) is released rather than kept for the whole run.
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }
}

pub const ADMIN_EMAIL: &str = "root@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-123";

fn postgres_server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

const PG_PREFIX: &str = "recengine_t_";

/// Databases left by an earlier run of this binary are dropped once, before
/// the first new one is made (cargo runs test binaries one at a time).
async fn drop_stale_postgres_databases(admin: &sqlx::PgPool) {
    static ONCE: Once = Once::new();
    let mut first = false;
    ONCE.call_once(|| first = true);
    if !first {
        return;
    }
    let stale: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'recengine_t_%'")
            .fetch_all(admin)
            .await
            .unwrap_or_default();
    for (name,) in stale {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(admin)
            .await;
    }
}

pub async fn fresh_database_url(backend: Backend) -> String {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("recengine-tests");
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite://{}/{unique}.db", dir.display())
        }
        Backend::Postgres => {
            let server = postgres_server_url();
            let admin = sqlx::PgPool::connect(&server).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is not reachable at {server} ({e}); \
                     start it (scripts/services.sh) or set TEST_DATABASE_URL"
                )
            });
            drop_stale_postgres_databases(&admin).await;
            let name = format!("{PG_PREFIX}{unique}");
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
            format!("{base}/{name}")
        }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Self {
        let mut app = Self::spawn_without_admin(backend, configure).await;
        app.make_admin().await;
        app
    }

    /// An empty database: no accounts at all.
    pub async fn spawn_without_admin(
        backend: Backend,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = Settings::for_tests(&fresh_database_url(backend).await);
        settings.database_max_connections = 5;
        configure(&mut settings);
        let state = AppState::build(settings).await.expect("app state");
        Self::serve(state).await
    }

    /// Serves `state` as it is (trained or not), with no accounts made.
    pub async fn serve(state: AppState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = recengine::app(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let http = state.settings.http;
        tokio::spawn(async move {
            recengine::serve(listener, app, http, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            state,
            client: reqwest::Client::new(),
            admin_token: String::new(),
            shutdown: Some(stop),
        }
    }

    /// Signs in as the admin an earlier app on the same database created.
    pub async fn make_admin_token_only(&mut self) {
        let tokens = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        self.admin_token = tokens["access_token"].as_str().unwrap().to_string();
    }

    /// Creates the admin account and signs in as it.
    pub async fn make_admin(&mut self) {
        recengine::auth::bootstrap::create_admin(
            &self.state.db,
            ADMIN_EMAIL,
            "root",
            ADMIN_PASSWORD,
        )
        .await
        .unwrap();
        self.admin_token = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
    }

    /// Logs in through the API; returns the token pair.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let res = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "login {email}");
        res.json().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap()
    }

    /// GET as the admin, expecting 200 and JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.get(path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap()
    }

    /// A request as `token` (or anonymous with `None`).
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let req = self.client.request(method, self.url(path));
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Creates a user through the API and returns its JSON.
    pub async fn create_user(&self, name: &str, preferences: Value) -> Value {
        let res = self
            .post(
                "/api/v1/users/",
                &serde_json::json!({
                    "username": name,
                    "email": format!("{name}@example.com"),
                    "password": "a-long-password",
                    "preferences": preferences,
                }),
            )
            .await;
        assert_eq!(res.status(), 201, "create user {name}");
        res.json().await.unwrap()
    }

    pub async fn create_item(&self, title: &str, category: &str) -> Value {
        let res = self
            .post(
                "/api/v1/items/",
                &serde_json::json!({
                    "title": title,
                    "description": format!("{title} description"),
                    "category": category,
                    "tags": ["a", "b"],
                    "features": {"in_stock": true},
                }),
            )
            .await;
        assert_eq!(res.status(), 201, "create item {title}");
        res.json().await.unwrap()
    }

    /// Creates an item from a full body (`title`, `category`, `features`,
    /// `popularity_score`, ...) and returns its id.
    pub async fn add_item(&self, body: Value) -> i64 {
        let res = self.post("/api/v1/items/", &body).await;
        assert_eq!(res.status(), 201, "create item {body}");
        let item: Value = res.json().await.unwrap();
        item["id"].as_i64().unwrap()
    }

    /// Retrains the models now, so they know the catalogue as it is.
    pub async fn retrain(&self) {
        let res = self
            .post("/api/v1/models/retrain", &serde_json::json!({}))
            .await;
        assert_eq!(res.status(), 200, "retrain");
    }

    pub async fn interact(&self, user_id: i64, item_id: i64, kind: &str) -> reqwest::Response {
        self.post(
            "/api/v1/interactions/",
            &serde_json::json!({"user_id": user_id, "item_id": item_id, "interaction_type": kind}),
        )
        .await
    }
}

/// Asserts the status and that the body is `{"detail": "<non-empty>"}`;
/// returns the detail.
pub async fn expect_error(res: reqwest::Response, status: u16) -> String {
    assert_eq!(res.status().as_u16(), status, "status");
    let body: Value = res.json().await.expect("error body is JSON");
    let detail = body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {body}"));
    assert!(!detail.is_empty());
    detail.to_string()
}

/// The item ids of a recommendation response, in order.
pub fn ids_of(body: &Value) -> Vec<i64> {
    body["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item_id"].as_i64().unwrap())
        .collect()
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A new, empty directory under the system's temporary one, named after
/// `what` it is for.
pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("recengine-{what}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
