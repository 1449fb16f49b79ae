//! Users: accounts with a role and free-form preferences.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{Db, Page, millis_to_datetime, now_millis};
use crate::error::{AppError, AppResult};

/// A password hash that no password verifies against: imported accounts
/// (MovieLens users) exist for their history, not for logging in.
pub const UNUSABLE_PASSWORD_HASH: &str = "!";

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Ops,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Ops => "ops",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "ops" => Some(Role::Ops),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A user as the API shows it: never the password hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    /// Free JSON. The built-in rules read `age`, `country`,
    /// `favorite_categories` and `favorite_tags`.
    #[schema(value_type = Object)]
    pub preferences: Value,
    pub role: Role,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    email: String,
    password_hash: String,
    role: String,
    preferences: String,
    is_active: i64,
    created_at: i64,
    updated_at: i64,
}

impl UserRow {
    fn into_user(self) -> (User, String) {
        let user = User {
            id: self.id,
            username: self.username,
            email: self.email,
            preferences: serde_json::from_str(&self.preferences)
                .unwrap_or_else(|_| Value::Object(Default::default())),
            role: Role::parse(&self.role).unwrap_or(Role::User),
            is_active: self.is_active != 0,
            created_at: millis_to_datetime(self.created_at),
            updated_at: millis_to_datetime(self.updated_at),
        };
        (user, self.password_hash)
    }
}

const COLUMNS: &str =
    "id, username, email, password_hash, role, preferences, is_active, created_at, updated_at";

pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub preferences: Value,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub preferences: Option<Value>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

/// Emails compare case-insensitively, as mail systems do.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_ascii_lowercase()
}

async fn ensure_unique(db: &Db, username: &str, email: &str, except_id: i64) -> AppResult<()> {
    let taken: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM users WHERE username = $1 AND id <> $2")
            .bind(username)
            .bind(except_id)
            .fetch_optional(&db.pool)
            .await?;
    if taken.is_some() {
        return Err(AppError::BadRequest("Username already exists".into()));
    }
    let taken: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM users WHERE email = $1 AND id <> $2")
            .bind(email)
            .bind(except_id)
            .fetch_optional(&db.pool)
            .await?;
    if taken.is_some() {
        return Err(AppError::BadRequest("Email already registered".into()));
    }
    Ok(())
}

pub async fn create(db: &Db, new: NewUser) -> AppResult<User> {
    let email = normalize_email(&new.email);
    ensure_unique(db, &new.username, &email, -1).await?;
    let now = now_millis();
    let row: UserRow = sqlx::query_as(&format!(
        "INSERT INTO users (username, email, password_hash, role, preferences, is_active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 1, $6, $6) RETURNING {COLUMNS}"
    ))
    .bind(&new.username)
    .bind(&email)
    .bind(&new.password_hash)
    .bind(new.role.as_str())
    .bind(new.preferences.to_string())
    .bind(now)
    .fetch_one(&db.pool)
    .await
    .map_err(unique_race)?;
    Ok(row.into_user().0)
}

/// Two concurrent registrations can both pass the pre-check; the unique
/// index then decides, and the loser gets the same 400 as the pre-check.
fn unique_race(err: sqlx::Error) -> AppError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let msg = db.message().to_ascii_lowercase();
            if msg.contains("email") {
                AppError::BadRequest("Email already registered".into())
            } else {
                AppError::BadRequest("Username already exists".into())
            }
        }
        _ => err.into(),
    }
}

pub async fn get(db: &Db, id: i64) -> AppResult<Option<User>> {
    Ok(get_with_hash(db, id).await?.map(|(u, _)| u))
}

pub async fn get_with_hash(db: &Db, id: i64) -> AppResult<Option<(User, String)>> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(UserRow::into_user))
}

/// The user and its password hash, for login.
pub async fn find_by_email(db: &Db, email: &str) -> AppResult<Option<(User, String)>> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE email = $1"))
            .bind(normalize_email(email))
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(UserRow::into_user))
}

pub async fn list(db: &Db, page: Page) -> AppResult<Vec<User>> {
    let rows: Vec<UserRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users ORDER BY id LIMIT $1 OFFSET $2"
    ))
    .bind(page.limit)
    .bind(page.skip)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.into_user().0).collect())
}

pub async fn update(db: &Db, id: i64, changes: UserChanges) -> AppResult<User> {
    let (current, hash) = get_with_hash(db, id)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    let username = changes.username.unwrap_or(current.username);
    let email = changes
        .email
        .map(|e| normalize_email(&e))
        .unwrap_or(current.email);
    ensure_unique(db, &username, &email, id).await?;
    let row: UserRow = sqlx::query_as(&format!(
        "UPDATE users SET username = $1, email = $2, password_hash = $3, preferences = $4, \
         role = $5, is_active = $6, updated_at = $7 WHERE id = $8 RETURNING {COLUMNS}"
    ))
    .bind(&username)
    .bind(&email)
    .bind(changes.password_hash.unwrap_or(hash))
    .bind(
        changes
            .preferences
            .unwrap_or(current.preferences)
            .to_string(),
    )
    .bind(changes.role.unwrap_or(current.role).as_str())
    .bind(i64::from(changes.is_active.unwrap_or(current.is_active)))
    .bind(now_millis())
    .bind(id)
    .fetch_one(&db.pool)
    .await
    .map_err(unique_race)?;
    Ok(row.into_user().0)
}

/// Deletes the user; its interactions go with it (ON DELETE CASCADE).
/// Deletes the user and, by cascade, their interactions. Returns the items
/// those interactions were on (their counts just changed), or `None` if
/// there was no such user.
pub async fn delete(db: &Db, id: i64) -> AppResult<Option<Vec<i64>>> {
    let mut tx = db.pool.begin().await?;
    let touched: Vec<(i64,)> =
        sqlx::query_as("SELECT DISTINCT item_id FROM interactions WHERE user_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
    let done = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((done.rows_affected() > 0).then(|| touched.into_iter().map(|(item,)| item).collect()))
}

pub async fn count(db: &Db) -> AppResult<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(&db.pool)
        .await?;
    Ok(n)
}

pub async fn exists(db: &Db, id: i64) -> AppResult<bool> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.is_some())
}

/// What authenticating a request needs to know, read in one query.
pub struct AuthView {
    pub user: User,
    /// The user's current token version (logout everywhere bumps it).
    pub token_version: i64,
    /// Whether the token's session (its refresh-token family) was revoked:
    /// by logout, or because one of its refresh tokens was reused.
    pub session_revoked: bool,
}

#[derive(sqlx::FromRow)]
struct AuthRow {
    #[sqlx(flatten)]
    user: UserRow,
    token_version: i64,
    session_revoked: i64,
}

/// The user, its token version and whether `session` was revoked, for
/// authenticating a request. `revoke_family` marks every token of a family
/// at once, so one revoked row means the session is over.
pub async fn get_for_auth(db: &Db, id: i64, session: &str) -> AppResult<Option<AuthView>> {
    let row: Option<AuthRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, token_version, CAST(CASE WHEN EXISTS (SELECT 1 FROM refresh_tokens \
         WHERE family_id = $2 AND revoked_at IS NOT NULL) THEN 1 ELSE 0 END AS BIGINT) \
         AS session_revoked FROM users WHERE id = $1"
    ))
    .bind(id)
    .bind(session)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|r| AuthView {
        user: r.user.into_user().0,
        token_version: r.token_version,
        session_revoked: r.session_revoked != 0,
    }))
}

/// The user's current token version, stamped into new access tokens.
pub async fn token_version(db: &Db, id: i64) -> AppResult<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT token_version FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| r.0))
}

/// Invalidates every access token issued so far (logout everywhere,
/// password change, role change).
pub async fn bump_token_version(db: &Db, id: i64) -> AppResult<()> {
    sqlx::query("UPDATE users SET token_version = token_version + 1 WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn count_admins(db: &Db) -> AppResult<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin'")
        .fetch_one(&db.pool)
        .await?;
    Ok(n)
}

/// Every active user's id, in order.
pub async fn active_ids(db: &Db) -> sqlx::Result<Vec<i64>> {
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE is_active = 1 ORDER BY id")
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

pub async fn count_active(db: &Db) -> sqlx::Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE is_active = 1")
        .fetch_one(&db.pool)
        .await?;
    Ok(n)
}
