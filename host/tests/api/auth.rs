//! Register, login, tokens, sessions and roles, through HTTP.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use recengine::auth::tokens::TokenKind;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{Backend, TestApp, expect_error, fresh_database_url},
};

async fn register(app: &TestApp, name: &str) -> Value {
    let res = app
        .request(Method::POST, "/api/v1/auth/register", None)
        .json(
            &json!({"username": name, "email": format!("{name}@example.com"),
                      "password": "correct-horse-battery", "preferences": {"country": "FR"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.request(Method::GET, "/api/v1/auth/me", Some(token))
        .send()
        .await
        .unwrap()
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.request(Method::POST, "/api/v1/auth/refresh", None)
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

async fn full_session_flow(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = register(&app, "ivy").await;
    assert_eq!(user["role"], "user");

    let pair = app.login("ivy@example.com", "correct-horse-battery").await;
    assert_eq!(pair["token_type"], "bearer");
    assert_eq!(pair["expires_in"], 1800);
    let access = pair["access_token"].as_str().unwrap();
    let refresh_token = pair["refresh_token"].as_str().unwrap();

    let res = me(&app, access).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], user["id"]);
    assert_eq!(body["email"], "ivy@example.com");

    // Rotation: the new pair works, the old refresh token is spent.
    let res = refresh(&app, refresh_token).await;
    assert_eq!(res.status(), 200);
    let rotated: Value = res.json().await.unwrap();
    let new_refresh = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, refresh_token);
    assert_eq!(
        me(&app, rotated["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // Logout with the refresh token ends that session.
    let res = app
        .request(Method::POST, "/api/v1/auth/logout", Some(access))
        .json(&json!({"refresh_token": new_refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    expect_error(refresh(&app, new_refresh).await, 401).await;
    // ...and every access token that session minted.
    expect_error(me(&app, access).await, 401).await;
    expect_error(
        me(&app, rotated["access_token"].as_str().unwrap()).await,
        401,
    )
    .await;

    // Logout without a body ends every session, access tokens included.
    let second = app.login("ivy@example.com", "correct-horse-battery").await;
    let second_access = second["access_token"].as_str().unwrap();
    let res = app
        .request(Method::POST, "/api/v1/auth/logout", Some(second_access))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    expect_error(me(&app, second_access).await, 401).await;
    expect_error(me(&app, access).await, 401).await;
    expect_error(
        refresh(&app, second["refresh_token"].as_str().unwrap()).await,
        401,
    )
    .await;
}
both_backends!(full_session_flow);

async fn credentials_are_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register(&app, "jack").await;
    let dup = app
        .request(Method::POST, "/api/v1/auth/register", None)
        .json(&json!({"username": "jack", "email": "other@example.com", "password": "another-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(dup, 400).await, "Username already exists");
    let dup = app
        .request(Method::POST, "/api/v1/auth/register", None)
        .json(&json!({"username": "jack2", "email": "JACK@example.com", "password": "another-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(dup, 400).await, "Email already registered");

    let login = |email: &'static str, password: &'static str| {
        app.request(Method::POST, "/api/v1/auth/login", None)
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    let wrong = expect_error(
        login("jack@example.com", "not-the-password").await.unwrap(),
        401,
    )
    .await;
    let unknown = expect_error(
        login("nobody@example.com", "not-the-password")
            .await
            .unwrap(),
        401,
    )
    .await;
    assert_eq!(wrong, unknown, "no account enumeration through messages");
    // Case-insensitive email.
    assert_eq!(
        login("JACK@Example.com", "correct-horse-battery")
            .await
            .unwrap()
            .status(),
        200
    );
    // An absurd password is refused before hashing.
    let huge = app
        .request(Method::POST, "/api/v1/auth/login", None)
        .json(&json!({"email": "jack@example.com", "password": "x".repeat(100_000)}))
        .send()
        .await
        .unwrap();
    expect_error(huge, 422).await;
    // Imported accounts (unusable hash) cannot log in.
    sqlx::query("UPDATE users SET password_hash = '!' WHERE username = 'jack'")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    expect_error(
        login("jack@example.com", "correct-horse-battery")
            .await
            .unwrap(),
        401,
    )
    .await;
}
both_backends!(credentials_are_checked);

async fn reusing_a_refresh_token_revokes_its_family(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register(&app, "kate").await;
    let stolen = app.login("kate@example.com", "correct-horse-battery").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let other = app.login("kate@example.com", "correct-horse-battery").await;
    // The legitimate client rotates...
    let legit: Value = refresh(&app, &stolen).await.json().await.unwrap();
    let legit_refresh = legit["refresh_token"].as_str().unwrap();
    let legit_access = legit["access_token"].as_str().unwrap();
    assert_eq!(me(&app, legit_access).await.status(), 200);
    // ...then the thief replays the old token: refused, and the family dies,
    // the access token the rotation minted included (at once, not when it
    // expires).
    expect_error(refresh(&app, &stolen).await, 401).await;
    expect_error(refresh(&app, legit_refresh).await, 401).await;
    expect_error(me(&app, legit_access).await, 401).await;
    // Another login (another family) is unaffected.
    assert_eq!(
        me(&app, other["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    assert_eq!(
        refresh(&app, other["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}
both_backends!(reusing_a_refresh_token_revokes_its_family);

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

async fn forged_tokens_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = register(&app, "liam").await;
    let uid = user["id"].as_i64().unwrap();
    let pair = app.login("liam@example.com", "correct-horse-battery").await;
    let access = pair["access_token"].as_str().unwrap();
    let refresh_token = pair["refresh_token"].as_str().unwrap();
    let keys = &app.state.tokens;
    let now = chrono::Utc::now().timestamp();

    // alg: none, claiming admin.
    let claims = json!({"sub": uid.to_string(), "iat": now, "exp": now + 600,
                        "jti": "x", "typ": "access", "role": "admin", "ver": 0});
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    // A valid token with its payload swapped (signature no longer matches).
    let parts: Vec<&str> = access.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    // Signed with another key.
    let other = {
        let mut s = recengine::config::Settings::for_tests("sqlite::memory:");
        s.secret_key = "an-attackers-guess-at-the-secret-key!!".into();
        let k = recengine::auth::tokens::TokenKeys::new(&s);
        k.sign(&k.access_claims(uid, recengine::store::users::Role::Admin, 0, "f"))
            .unwrap()
    };
    // Expired.
    let expired = {
        let mut c = keys.access_claims(uid, recengine::store::users::Role::User, 0, "f");
        c.iat = now - 3600;
        c.exp = now - 60;
        keys.sign(&c).unwrap()
    };
    // HS512 with the right key: only HS256 is accepted.
    let wrong_alg = {
        let c = keys.access_claims(uid, recengine::store::users::Role::User, 0, "f");
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
            &c,
            &jsonwebtoken::EncodingKey::from_secret(app.state.settings.secret_key.as_bytes()),
        )
        .unwrap()
    };
    for (name, token) in [
        ("alg none", none.as_str()),
        ("tampered", tampered.as_str()),
        ("other key", other.as_str()),
        ("expired", expired.as_str()),
        ("HS512", wrong_alg.as_str()),
        ("refresh as access", refresh_token),
        ("garbage", "not.a.jwt"),
    ] {
        let res = me(&app, token).await;
        assert_eq!(res.status(), 401, "{name}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer", "{name}");
    }
    // An access token is not a refresh token.
    expect_error(refresh(&app, access).await, 401).await;
    // A refresh token that verifies but was never issued.
    let unissued = keys
        .sign(&keys.refresh_claims(uid, "made-up-family"))
        .unwrap();
    assert_eq!(
        keys.verify(&unissued, TokenKind::Refresh).unwrap().sub,
        uid.to_string()
    );
    expect_error(refresh(&app, &unissued).await, 401).await;
    // No credentials at all.
    let res = app
        .request(Method::GET, "/api/v1/auth/me", None)
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(res, 401).await, "Not authenticated");
}
both_backends!(forged_tokens_are_refused);

/// Two registered users, mia and noah, and mia's access token: the cast of
/// the permission tests below.
struct MiaAndNoah {
    app: TestApp,
    mia_id: i64,
    noah_id: i64,
    mia_token: String,
}

impl MiaAndNoah {
    async fn spawn(backend: Backend) -> Self {
        let app = TestApp::spawn(backend).await;
        let mia_id = register(&app, "mia").await["id"].as_i64().unwrap();
        let noah_id = register(&app, "noah").await["id"].as_i64().unwrap();
        let mia_token = app.login("mia@example.com", "correct-horse-battery").await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        Self {
            app,
            mia_id,
            noah_id,
            mia_token,
        }
    }

    /// A request as mia.
    fn as_mia(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.app.request(method, path, Some(&self.mia_token))
    }

    /// An item for the interactions to be about.
    async fn lamp(&self) -> i64 {
        self.app.create_item("Lamp", "home").await["id"]
            .as_i64()
            .unwrap()
    }
}

/// What a caller may post as a new item.
fn new_item() -> Value {
    json!({"title": "Lamp", "category": "home"})
}

/// Own account: yes. Someone else's, or the list: no.
async fn a_user_reaches_only_its_own_account(backend: Backend) {
    let cast = MiaAndNoah::spawn(backend).await;
    let (mia_id, noah_id) = (cast.mia_id, cast.noah_id);
    assert_eq!(
        cast.as_mia(Method::GET, &format!("/api/v1/users/{mia_id}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    expect_error(
        cast.as_mia(Method::GET, &format!("/api/v1/users/{noah_id}"))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    expect_error(
        cast.as_mia(Method::GET, "/api/v1/users/")
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    expect_error(
        cast.as_mia(Method::PUT, &format!("/api/v1/users/{noah_id}"))
            .json(&json!({"preferences": {}}))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    expect_error(
        cast.as_mia(Method::DELETE, &format!("/api/v1/users/{noah_id}"))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    expect_error(
        cast.as_mia(Method::PUT, &format!("/api/v1/users/{mia_id}/role"))
            .json(&json!({"role": "admin"}))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
}
both_backends!(a_user_reaches_only_its_own_account);

/// Anonymous: 401 where an account is needed; catalogue reads stay open.
async fn anonymous_callers_only_read_the_catalogue(backend: Backend) {
    let cast = MiaAndNoah::spawn(backend).await;
    let app = &cast.app;
    expect_error(
        app.request(Method::GET, &format!("/api/v1/users/{}", cast.mia_id), None)
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    assert_eq!(
        app.request(Method::GET, "/api/v1/items/", None)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.request(Method::GET, "/api/v1/items/popular/top", None)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
both_backends!(anonymous_callers_only_read_the_catalogue);

/// Items: writes need ops.
async fn item_writes_need_ops(backend: Backend) {
    let cast = MiaAndNoah::spawn(backend).await;
    expect_error(
        cast.app
            .request(Method::POST, "/api/v1/items/", None)
            .json(&new_item())
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    expect_error(
        cast.as_mia(Method::POST, "/api/v1/items/")
            .json(&new_item())
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
}
both_backends!(item_writes_need_ops);

/// Interactions: your own only.
async fn a_user_records_and_reads_only_its_own_interactions(backend: Backend) {
    let cast = MiaAndNoah::spawn(backend).await;
    let (mia_id, noah_id) = (cast.mia_id, cast.noah_id);
    let lamp = cast.lamp().await;
    let own = json!({"user_id": mia_id, "item_id": lamp, "interaction_type": "view"});
    let theirs = json!({"user_id": noah_id, "item_id": lamp, "interaction_type": "view"});
    assert_eq!(
        cast.as_mia(Method::POST, "/api/v1/interactions/")
            .json(&own)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    expect_error(
        cast.as_mia(Method::POST, "/api/v1/interactions/")
            .json(&theirs)
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    expect_error(
        cast.as_mia(Method::GET, &format!("/api/v1/interactions/user/{noah_id}"))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    assert_eq!(
        cast.as_mia(
            Method::GET,
            &format!("/api/v1/interactions/stats/user/{mia_id}")
        )
        .send()
        .await
        .unwrap()
        .status(),
        200
    );
    expect_error(
        cast.as_mia(Method::GET, &format!("/api/v1/interactions/item/{lamp}"))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
}
both_backends!(a_user_records_and_reads_only_its_own_interactions);

/// The admin promotes mia to ops: her old token dies, a new one can write
/// items and record anyone's interactions, but not manage accounts.
async fn an_ops_promotion_opens_the_catalogue_not_the_accounts(backend: Backend) {
    let cast = MiaAndNoah::spawn(backend).await;
    let app = &cast.app;
    let lamp = cast.lamp().await;
    let theirs = json!({"user_id": cast.noah_id, "item_id": lamp, "interaction_type": "view"});
    let res = app
        .put(
            &format!("/api/v1/users/{}/role", cast.mia_id),
            &json!({"role": "ops"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    expect_error(me(app, &cast.mia_token).await, 401).await;
    let ops_token = app.login("mia@example.com", "correct-horse-battery").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .request(Method::POST, "/api/v1/items/", Some(&ops_token))
        .json(&new_item())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = app
        .request(Method::POST, "/api/v1/interactions/", Some(&ops_token))
        .json(&theirs)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    expect_error(
        app.request(Method::GET, "/api/v1/users/", Some(&ops_token))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
}
both_backends!(an_ops_promotion_opens_the_catalogue_not_the_accounts);

/// A role is given to an account that exists, and is one of the roles.
async fn a_role_change_needs_an_account_and_a_role(backend: Backend) {
    let cast = MiaAndNoah::spawn(backend).await;
    let app = &cast.app;
    expect_error(
        app.put("/api/v1/users/999999/role", &json!({"role": "ops"}))
            .await,
        404,
    )
    .await;
    expect_error(
        app.put(
            &format!("/api/v1/users/{}/role", cast.mia_id),
            &json!({"role": "king"}),
        )
        .await,
        422,
    )
    .await;
}
both_backends!(a_role_change_needs_an_account_and_a_role);

/// A user changing its password ends its sessions.
async fn a_password_change_ends_the_users_sessions(backend: Backend) {
    let cast = MiaAndNoah::spawn(backend).await;
    let app = &cast.app;
    let noah_pair = app.login("noah@example.com", "correct-horse-battery").await;
    let noah_token = noah_pair["access_token"].as_str().unwrap();
    let res = app
        .request(
            Method::PUT,
            &format!("/api/v1/users/{}", cast.noah_id),
            Some(noah_token),
        )
        .json(&json!({"password": "a-brand-new-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    expect_error(me(app, noah_token).await, 401).await;
    app.login("noah@example.com", "a-brand-new-password").await;
}
both_backends!(a_password_change_ends_the_users_sessions);

#[tokio::test]
async fn item_writes_can_be_opened_by_configuration() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.item_writes_require_ops = false).await;
    let res = app
        .request(Method::POST, "/api/v1/items/", None)
        .json(&json!({"title": "Open", "category": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn the_last_admin_cannot_demote_itself() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let me: Value = app.get("/api/v1/auth/me").await.json().await.unwrap();
    let res = app
        .put(
            &format!("/api/v1/users/{}/role", me["id"]),
            &json!({"role": "user"}),
        )
        .await;
    expect_error(res, 409).await;
}

/// As the admin: gives `user` the role, expecting 200.
async fn set_role(app: &TestApp, user: &Value, role: &str) {
    let res = app
        .put(
            &format!("/api/v1/users/{}/role", user["id"]),
            &json!({"role": role}),
        )
        .await;
    assert_eq!(res.status(), 200, "role {role}");
}

async fn a_role_change_ends_every_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let zoe = register(&app, "zoe").await;
    let pair = app.login("zoe@example.com", "correct-horse-battery").await;
    set_role(&app, &zoe, "ops").await;
    // Neither token of the old grant works; a new login carries the role.
    expect_error(me(&app, pair["access_token"].as_str().unwrap()).await, 401).await;
    expect_error(
        refresh(&app, pair["refresh_token"].as_str().unwrap()).await,
        401,
    )
    .await;
    let again = app.login("zoe@example.com", "correct-horse-battery").await;
    let body: Value = me(&app, again["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["role"], "ops");
}
both_backends!(a_role_change_ends_every_session);

/// `iat` or `nbf` in the future (beyond a small clock skew) is refused,
/// even on a correctly signed token of a live session.
#[tokio::test]
async fn tokens_from_the_future_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = register(&app, "tim").await;
    let uid = user["id"].as_i64().unwrap();
    let pair = app.login("tim@example.com", "correct-horse-battery").await;
    let keys = &app.state.tokens;
    let family = keys
        .verify(pair["refresh_token"].as_str().unwrap(), TokenKind::Refresh)
        .unwrap()
        .fam
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let token = |iat: i64, nbf: Option<i64>| {
        let mut c = keys.access_claims(uid, recengine::store::users::Role::User, 0, &family);
        c.iat = iat;
        c.nbf = nbf;
        keys.sign(&c).unwrap()
    };
    // The same claims with sane times work: the refusals below are about time.
    assert_eq!(me(&app, &token(now - 5, Some(now - 5))).await.status(), 200);
    assert_eq!(me(&app, &token(now + 2, None)).await.status(), 200, "skew");
    expect_error(me(&app, &token(now + 3600, None)).await, 401).await;
    expect_error(me(&app, &token(now, Some(now + 3600))).await, 401).await;
    let mut future_refresh = keys.refresh_claims(uid, &family);
    future_refresh.iat = now + 3600;
    expect_error(
        refresh(&app, &keys.sign(&future_refresh).unwrap()).await,
        401,
    )
    .await;
}

#[tokio::test]
async fn the_last_admin_cannot_delete_itself() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let root: Value = app.get("/api/v1/auth/me").await.json().await.unwrap();
    let path = format!("/api/v1/users/{}", root["id"]);
    let detail = expect_error(app.delete(&path).await, 409).await;
    assert!(detail.contains("last admin"), "{detail}");
    assert_eq!(app.get(&path).await.status(), 200, "still there");
    // With a second admin, either may go.
    let other = register(&app, "ada").await;
    set_role(&app, &other, "admin").await;
    assert_eq!(app.delete(&path).await.status(), 204);
}

/// Replicas started together on one database with `INITIAL_ADMIN_*` race
/// to create the admin: the one that loses must start anyway.
#[tokio::test]
async fn replicas_starting_together_share_the_initial_admin() {
    let database = fresh_database_url(Backend::Postgres).await;
    let configure = |s: &mut recengine::config::Settings| {
        s.database_url = database.clone();
        s.initial_admin_email = Some("first@example.com".into());
        s.initial_admin_password = Some("first-admin-password".into());
    };
    let (a, b, c) = tokio::join!(
        TestApp::spawn_without_admin(Backend::Postgres, configure),
        TestApp::spawn_without_admin(Backend::Postgres, configure),
        TestApp::spawn_without_admin(Backend::Postgres, configure),
    );
    for app in [&a, &b, &c] {
        let tokens = app.login("first@example.com", "first-admin-password").await;
        assert!(tokens["access_token"].is_string());
    }
}
