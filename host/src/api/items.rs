//! `/api/v1/items`: the catalogue.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    SlashOptional,
    doc::ItemId,
    extract::{ApiJson, ApiPath, ApiQuery, Pagination, Validate},
};
use crate::{
    AppState,
    auth::extract::CurrentUser,
    error::{AppError, AppResult},
    store::items::{self, Item, ItemChanges, NewItem},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes_slash_optional(routes!(list_items, create_item))
        .routes(routes!(popular_items))
        .routes(routes!(get_item, update_item, delete_item))
}

const MAX_TITLE: usize = 500;
const MAX_DESCRIPTION: usize = 10_000;
const MAX_CATEGORY: usize = 100;
const MAX_TAGS: usize = 100;
const MAX_TAG: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemCreate {
    /// 1 to 500 characters, not only whitespace.
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub title: String,
    #[serde(default)]
    #[schema(max_length = 10_000)]
    pub description: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub category: String,
    /// At most 100 tags of at most 100 characters each.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub tags: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub features: Option<Value>,
    #[serde(default)]
    #[schema(minimum = 0)]
    pub popularity_score: f64,
}

impl Validate for ItemCreate {
    fn validate(&self) -> Result<(), String> {
        validate_fields(
            Some(&self.title),
            Some(&self.description),
            Some(&self.category),
            Some(&self.tags),
            self.features.as_ref(),
            Some(self.popularity_score),
        )
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemUpdate {
    /// 1 to 500 characters, not only whitespace.
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub title: Option<String>,
    #[schema(max_length = 10_000)]
    pub description: Option<String>,
    #[schema(max_length = 100)]
    pub category: Option<String>,
    /// At most 100 tags of at most 100 characters each.
    #[schema(max_items = 100)]
    pub tags: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub features: Option<Value>,
    #[schema(minimum = 0)]
    pub popularity_score: Option<f64>,
}

impl Validate for ItemUpdate {
    fn validate(&self) -> Result<(), String> {
        validate_fields(
            self.title.as_ref(),
            self.description.as_ref(),
            self.category.as_ref(),
            self.tags.as_ref(),
            self.features.as_ref(),
            self.popularity_score,
        )
    }
}

fn validate_fields(
    title: Option<&String>,
    description: Option<&String>,
    category: Option<&String>,
    tags: Option<&Vec<String>>,
    features: Option<&Value>,
    popularity_score: Option<f64>,
) -> Result<(), String> {
    if title.is_some_and(|t| t.trim().is_empty() || t.chars().count() > MAX_TITLE) {
        return Err(format!("title must be 1 to {MAX_TITLE} characters"));
    }
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        return Err(format!(
            "description must be at most {MAX_DESCRIPTION} characters"
        ));
    }
    if category.is_some_and(|c| c.chars().count() > MAX_CATEGORY) {
        return Err(format!(
            "category must be at most {MAX_CATEGORY} characters"
        ));
    }
    if tags.is_some_and(|tags| {
        tags.len() > MAX_TAGS || tags.iter().any(|t| t.chars().count() > MAX_TAG)
    }) {
        return Err(format!(
            "at most {MAX_TAGS} tags of at most {MAX_TAG} characters each"
        ));
    }
    if features.is_some_and(|f| !f.is_object()) {
        return Err("features must be a JSON object".into());
    }
    if popularity_score.is_some_and(|p| !p.is_finite() || p < 0.0) {
        return Err("popularity_score must be a finite number >= 0".into());
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemListQuery {
    /// Rows to skip (default 0).
    #[serde(default)]
    #[param(minimum = 0)]
    pub skip: i64,
    /// Rows to return, 1 to 1000 (default 100).
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: i64,
    /// Only items of this category.
    pub category: Option<String>,
}

fn default_limit() -> i64 {
    100
}

impl Validate for ItemListQuery {
    fn validate(&self) -> Result<(), String> {
        Pagination {
            skip: self.skip,
            limit: self.limit,
        }
        .validate()
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopQuery {
    /// How many items, 1 to 100 (default 10).
    #[serde(default = "default_top")]
    #[param(minimum = 1, maximum = 100)]
    pub limit: i64,
}

fn default_top() -> i64 {
    10
}

impl Validate for TopQuery {
    fn validate(&self) -> Result<(), String> {
        if (1..=100).contains(&self.limit) {
            Ok(())
        } else {
            Err("limit must be between 1 and 100".into())
        }
    }
}

/// Item writes need the ops or admin role unless `ITEM_WRITES_REQUIRE_OPS`
/// is false. Checked in the handler, after the body: an anonymous write
/// with a bad body is answered 413, 415 or 422 before 401, as the API
/// always has.
fn check_item_write(state: &AppState, caller: Option<&CurrentUser>) -> AppResult<()> {
    if !state.settings.item_writes_require_ops {
        return Ok(());
    }
    caller
        .ok_or_else(|| AppError::Unauthorized("Not authenticated".into()))?
        .require_ops()
}

#[utoipa::path(post, path = "/api/v1/items/", tag = "items", request_body = ItemCreate,
    security(("bearer" = [])),
    responses((status = 201, body = Item), (status = 401), (status = 403), (status = 422)))]
pub async fn create_item(
    State(state): State<AppState>,
    caller: Option<CurrentUser>,
    ApiJson(body): ApiJson<ItemCreate>,
) -> AppResult<(StatusCode, Json<Item>)> {
    check_item_write(&state, caller.as_ref())?;
    let item = items::create(
        &state.db,
        NewItem {
            title: body.title.trim().to_string(),
            description: body.description,
            category: body.category,
            tags: body.tags,
            features: body
                .features
                .unwrap_or_else(|| Value::Object(Default::default())),
            popularity_score: body.popularity_score,
        },
    )
    .await?;
    state.item_changed(item.id).await;
    Ok((StatusCode::CREATED, Json(item)))
}

#[utoipa::path(get, path = "/api/v1/items/", tag = "items", params(ItemListQuery),
    responses((status = 200, body = [Item]), (status = 422)))]
pub async fn list_items(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ItemListQuery>,
) -> AppResult<Json<Vec<Item>>> {
    let page = crate::store::Page {
        skip: q.skip,
        limit: q.limit,
    };
    Ok(Json(
        items::list(&state.db, page, q.category.as_deref()).await?,
    ))
}

/// The most popular items by popularity score.
#[utoipa::path(get, path = "/api/v1/items/popular/top", tag = "items", params(TopQuery),
    responses((status = 200, body = [Item]), (status = 422)))]
pub async fn popular_items(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<TopQuery>,
) -> AppResult<Json<Vec<Item>>> {
    Ok(Json(items::popular(&state.db, q.limit).await?))
}

#[utoipa::path(get, path = "/api/v1/items/{item_id}", tag = "items", params(ItemId),
    responses((status = 200, body = Item), (status = 404)))]
pub async fn get_item(
    State(state): State<AppState>,
    ApiPath(item_id): ApiPath<i64>,
) -> AppResult<Json<Item>> {
    items::get(&state.db, item_id)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::not_found("Item"))
}

#[utoipa::path(put, path = "/api/v1/items/{item_id}", tag = "items", params(ItemId), request_body = ItemUpdate,
    security(("bearer" = [])),
    responses((status = 200, body = Item), (status = 401), (status = 403), (status = 404), (status = 422)))]
pub async fn update_item(
    State(state): State<AppState>,
    caller: Option<CurrentUser>,
    ApiPath(item_id): ApiPath<i64>,
    ApiJson(body): ApiJson<ItemUpdate>,
) -> AppResult<Json<Item>> {
    check_item_write(&state, caller.as_ref())?;
    let item = items::update(
        &state.db,
        item_id,
        ItemChanges {
            title: body.title.map(|t| t.trim().to_string()),
            description: body.description,
            category: body.category,
            tags: body.tags,
            features: body.features,
            popularity_score: body.popularity_score,
        },
    )
    .await?;
    state.item_changed(item.id).await;
    Ok(Json(item))
}

/// Deletes the item and its interactions.
#[utoipa::path(delete, path = "/api/v1/items/{item_id}", tag = "items", params(ItemId),
    security(("bearer" = [])),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
pub async fn delete_item(
    State(state): State<AppState>,
    caller: Option<CurrentUser>,
    ApiPath(item_id): ApiPath<i64>,
) -> AppResult<StatusCode> {
    check_item_write(&state, caller.as_ref())?;
    if items::delete(&state.db, item_id).await? {
        state.item_changed(item_id).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found("Item"))
    }
}
