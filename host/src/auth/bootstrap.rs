//! The first admin. Never from an open endpoint: either
//! `recengine users create-admin` or `INITIAL_ADMIN_EMAIL` +
//! `INITIAL_ADMIN_PASSWORD` at start (used only while no admin exists).

use serde_json::json;

use super::password;
use crate::{
    config::Settings,
    store::{
        Db,
        users::{self, NewUser, Role, User, UserChanges},
    },
};

/// Creates an admin, or promotes the existing account with that email.
pub async fn create_admin(
    db: &Db,
    email: &str,
    username: &str,
    plain_password: &str,
) -> anyhow::Result<User> {
    password::validate_password(plain_password).map_err(anyhow::Error::msg)?;
    let hash = password::hash_password(plain_password.to_string())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some((existing, _)) = users::find_by_email(db, email)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        return users::update(
            db,
            existing.id,
            UserChanges {
                role: Some(Role::Admin),
                password_hash: Some(hash),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"));
    }
    users::create(
        db,
        NewUser {
            username: username.to_string(),
            email: email.to_string(),
            password_hash: hash,
            role: Role::Admin,
            preferences: json!({}),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
}

pub async fn ensure_initial_admin(db: &Db, settings: &Settings) -> anyhow::Result<()> {
    let (Some(email), Some(pass)) = (
        &settings.initial_admin_email,
        &settings.initial_admin_password,
    ) else {
        return Ok(());
    };
    if users::count_admins(db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        > 0
    {
        return Ok(());
    }
    match create_admin(db, email, "admin", pass).await {
        Ok(admin) => {
            tracing::info!(
                user_id = admin.id,
                "initial admin created from configuration"
            );
            Ok(())
        }
        // Replicas starting together on one database race to create it:
        // the one that loses finds it made by another.
        Err(e) if users::count_admins(db).await.is_ok_and(|n| n > 0) => {
            tracing::info!(error = %e, "initial admin already created by another replica");
            Ok(())
        }
        Err(e) => Err(e),
    }
}
