//! `/api/v1/features`: the feature store, for ops and for backend clients
//! that rank with the same features the service uses. Reading and
//! invalidating need the ops or admin role: features describe what users
//! did.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    doc::{ItemId, UserId, UserItemIds},
    extract::{ApiJson, ApiPath, Validate},
};
use crate::{
    AppState,
    auth::extract::Ops,
    error::{AppError, AppResult},
    features::{ItemFeatures, MAX_BATCH, UserFeatures, UserItemFeatures, user_item},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(user_features))
        .routes(routes!(users_batch))
        .routes(routes!(item_features))
        .routes(routes!(items_batch))
        .routes(routes!(user_item_features))
        .routes(routes!(user_items_batch))
        .routes(routes!(invalidate_all))
        .routes(routes!(invalidate_user))
        .routes(routes!(invalidate_item))
}

fn check_ids(ids: &[i64]) -> Result<(), String> {
    if ids.is_empty() || ids.len() > MAX_BATCH {
        return Err(format!("between 1 and {MAX_BATCH} ids"));
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBatch {
    /// 1 to 1000 ids.
    #[schema(min_items = 1, max_items = 1000)]
    pub user_ids: Vec<i64>,
}

impl Validate for UserBatch {
    fn validate(&self) -> Result<(), String> {
        check_ids(&self.user_ids)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBatch {
    /// 1 to 1000 ids.
    #[schema(min_items = 1, max_items = 1000)]
    pub item_ids: Vec<i64>,
}

impl Validate for ItemBatch {
    fn validate(&self) -> Result<(), String> {
        check_ids(&self.item_ids)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserItemBatch {
    pub user_id: i64,
    /// 1 to 1000 ids.
    #[schema(min_items = 1, max_items = 1000)]
    pub item_ids: Vec<i64>,
}

impl Validate for UserItemBatch {
    fn validate(&self) -> Result<(), String> {
        check_ids(&self.item_ids)
    }
}

/// The cache's shared values as owned ones, for a response.
fn unshared<T: Clone>(
    found: std::collections::HashMap<i64, std::sync::Arc<T>>,
) -> std::collections::HashMap<i64, T> {
    found
        .into_iter()
        .map(|(id, f)| (id, std::sync::Arc::unwrap_or_clone(f)))
        .collect()
}

/// A batch answer: features in the order asked, and the ids that do not
/// exist.
#[derive(Debug, Serialize, ToSchema)]
pub struct Batch<T> {
    pub features: Vec<T>,
    pub missing: Vec<i64>,
}

fn in_order<T>(ids: &[i64], mut found: std::collections::HashMap<i64, T>) -> Batch<T> {
    let mut features = Vec::new();
    let mut missing = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // A repeated id is answered once.
    for id in ids.iter().filter(|id| seen.insert(**id)) {
        match found.remove(id) {
            Some(f) => features.push(f),
            None => missing.push(*id),
        }
    }
    missing.sort_unstable();
    Batch { features, missing }
}

#[utoipa::path(get, path = "/api/v1/features/users/{user_id}", tag = "features",
    params(UserId), security(("bearer" = [])),
    responses((status = 200, body = UserFeatures), (status = 403), (status = 404)))]
pub async fn user_features(
    State(state): State<AppState>,
    _: Ops,
    ApiPath(user_id): ApiPath<i64>,
) -> AppResult<Json<UserFeatures>> {
    let features = state.features.user(user_id).await?;
    let features = features.ok_or_else(|| AppError::not_found("User"))?;
    Ok(Json(std::sync::Arc::unwrap_or_clone(features)))
}

#[utoipa::path(post, path = "/api/v1/features/users/batch", tag = "features",
    request_body = UserBatch, security(("bearer" = [])),
    responses((status = 200, body = inline(Batch<UserFeatures>)), (status = 401), (status = 403), (status = 422)))]
pub async fn users_batch(
    State(state): State<AppState>,
    _: Ops,
    ApiJson(body): ApiJson<UserBatch>,
) -> AppResult<Json<Batch<UserFeatures>>> {
    let found = state.features.users_batch(&body.user_ids).await?;
    Ok(Json(in_order(&body.user_ids, unshared(found))))
}

#[utoipa::path(get, path = "/api/v1/features/items/{item_id}", tag = "features",
    params(ItemId), security(("bearer" = [])),
    responses((status = 200, body = ItemFeatures), (status = 403), (status = 404)))]
pub async fn item_features(
    State(state): State<AppState>,
    _: Ops,
    ApiPath(item_id): ApiPath<i64>,
) -> AppResult<Json<ItemFeatures>> {
    let features = state.features.item(item_id).await?;
    let features = features.ok_or_else(|| AppError::not_found("Item"))?;
    Ok(Json(std::sync::Arc::unwrap_or_clone(features)))
}

#[utoipa::path(post, path = "/api/v1/features/items/batch", tag = "features",
    request_body = ItemBatch, security(("bearer" = [])),
    responses((status = 200, body = inline(Batch<ItemFeatures>)), (status = 401), (status = 403), (status = 422)))]
pub async fn items_batch(
    State(state): State<AppState>,
    _: Ops,
    ApiJson(body): ApiJson<ItemBatch>,
) -> AppResult<Json<Batch<ItemFeatures>>> {
    let found = state.features.items_batch(&body.item_ids).await?;
    Ok(Json(in_order(&body.item_ids, unshared(found))))
}

async fn pairs(
    state: &AppState,
    user_id: i64,
    item_ids: &[i64],
) -> AppResult<std::collections::HashMap<i64, UserItemFeatures>> {
    let user = state
        .features
        .user(user_id)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    let items = state.features.items_batch(item_ids).await?;
    let refs: Vec<&ItemFeatures> = items.values().map(|f| &**f).collect();
    let snapshot = state.recommender.snapshot();
    let computed = user_item::compute(
        state.features.db(),
        &user,
        &refs,
        snapshot.content_similarity(&user.profile()),
    )
    .await?;
    Ok(computed.into_iter().map(|f| (f.item_id, f)).collect())
}

#[utoipa::path(get, path = "/api/v1/features/users/{user_id}/items/{item_id}", tag = "features",
    params(UserItemIds), security(("bearer" = [])),
    responses((status = 200, body = UserItemFeatures), (status = 403), (status = 404)))]
pub async fn user_item_features(
    State(state): State<AppState>,
    _: Ops,
    ApiPath((user_id, item_id)): ApiPath<(i64, i64)>,
) -> AppResult<Json<UserItemFeatures>> {
    let mut found = pairs(&state, user_id, &[item_id]).await?;
    Ok(Json(
        found
            .remove(&item_id)
            .ok_or_else(|| AppError::not_found("Item"))?,
    ))
}

#[utoipa::path(post, path = "/api/v1/features/user-items/batch", tag = "features",
    request_body = UserItemBatch, security(("bearer" = [])),
    responses((status = 200, body = inline(Batch<UserItemFeatures>)), (status = 401), (status = 403), (status = 404), (status = 422)))]
pub async fn user_items_batch(
    State(state): State<AppState>,
    _: Ops,
    ApiJson(body): ApiJson<UserItemBatch>,
) -> AppResult<Json<Batch<UserItemFeatures>>> {
    let found = pairs(&state, body.user_id, &body.item_ids).await?;
    Ok(Json(in_order(&body.item_ids, found)))
}

/// Drops every cached feature (users and items).
#[utoipa::path(delete, path = "/api/v1/features/cache", tag = "features",
    security(("bearer" = [])), responses((status = 204), (status = 401), (status = 403)))]
pub async fn invalidate_all(State(state): State<AppState>, _: Ops) -> AppResult<StatusCode> {
    state.features.invalidate_all().await;
    state.recommendations_changed().await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/features/cache/users/{user_id}", tag = "features",
    params(("user_id" = i64, Path, description = "Any id: an unknown one has nothing cached")),
    security(("bearer" = [])), responses((status = 204), (status = 403)))]
pub async fn invalidate_user(
    State(state): State<AppState>,
    _: Ops,
    ApiPath(user_id): ApiPath<i64>,
) -> AppResult<StatusCode> {
    state.user_changed(user_id).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/features/cache/items/{item_id}", tag = "features",
    params(("item_id" = i64, Path, description = "Any id: an unknown one has nothing cached")),
    security(("bearer" = [])), responses((status = 204), (status = 403)))]
pub async fn invalidate_item(
    State(state): State<AppState>,
    _: Ops,
    ApiPath(item_id): ApiPath<i64>,
) -> AppResult<StatusCode> {
    state.item_changed(item_id).await;
    Ok(StatusCode::NO_CONTENT)
}
