//! `/api/v1/interactions`: recording and reading what users did.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    SlashOptional,
    doc::{InteractionType, ItemId, UserId},
    extract::{ApiJson, ApiPath, ApiQuery, Pagination, Validate},
};
use crate::{
    AppState,
    auth::extract::{CurrentUser, Ops},
    error::{AppError, AppResult},
    store::{
        interactions::{
            self, INTERACTION_TYPES, Interaction, NewInteraction, UserInteractionStats,
        },
        items, users,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes_slash_optional(routes!(create_interaction))
        .routes(routes!(user_interactions))
        .routes(routes!(item_interactions))
        .routes(routes!(user_stats))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InteractionCreate {
    pub user_id: i64,
    pub item_id: i64,
    #[schema(inline, value_type = InteractionType)]
    pub interaction_type: String,
    /// An explicit rating from 0 to 5.
    #[schema(minimum = 0, maximum = 5)]
    pub rating: Option<f64>,
    /// How much this interaction counts, 0 to 100 (default 1).
    #[schema(minimum = 0, maximum = 100)]
    pub weight: Option<f64>,
}

impl Validate for InteractionCreate {
    fn validate(&self) -> Result<(), String> {
        if !INTERACTION_TYPES.contains(&self.interaction_type.as_str()) {
            return Err(format!(
                "interaction_type must be one of: {}",
                INTERACTION_TYPES.join(", ")
            ));
        }
        if self
            .rating
            .is_some_and(|r| !r.is_finite() || !(0.0..=5.0).contains(&r))
        {
            return Err("rating must be between 0 and 5".into());
        }
        if self
            .weight
            .is_some_and(|w| !w.is_finite() || !(0.0..=100.0).contains(&w))
        {
            return Err("weight must be between 0 and 100".into());
        }
        Ok(())
    }
}

#[utoipa::path(post, path = "/api/v1/interactions/", tag = "interactions",
    request_body = InteractionCreate,
    security(("bearer" = [])),
    responses((status = 201, body = Interaction), (status = 403, description = "Another user's interaction"), (status = 404, description = "User or item not found")))]
pub async fn create_interaction(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(body): ApiJson<InteractionCreate>,
) -> AppResult<(StatusCode, Json<Interaction>)> {
    // Users record their own behaviour; ops and admins (backend clients)
    // record anyone's.
    caller.require_self_or_ops(body.user_id)?;
    let interaction = interactions::create(
        &state.db,
        NewInteraction {
            user_id: body.user_id,
            item_id: body.item_id,
            interaction_type: body.interaction_type,
            rating: body.rating,
            weight: body.weight.unwrap_or(1.0),
        },
    )
    .await?;
    state
        .interaction_recorded(interaction.user_id, interaction.item_id)
        .await;
    Ok((StatusCode::CREATED, Json(interaction)))
}

/// The user's interactions, newest first (your own, or any for ops/admin).
#[utoipa::path(get, path = "/api/v1/interactions/user/{user_id}", tag = "interactions",
    params(UserId, Pagination), security(("bearer" = [])),
    responses((status = 200, body = [Interaction]), (status = 403), (status = 404)))]
pub async fn user_interactions(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(user_id): ApiPath<i64>,
    ApiQuery(page): ApiQuery<Pagination>,
) -> AppResult<Json<Vec<Interaction>>> {
    caller.require_self_or_ops(user_id)?;
    if !users::exists(&state.db, user_id).await? {
        return Err(AppError::not_found("User"));
    }
    Ok(Json(
        interactions::list_for_user(&state.db, user_id, page.into()).await?,
    ))
}

/// The item's interactions, newest first (ops/admin: it names users).
#[utoipa::path(get, path = "/api/v1/interactions/item/{item_id}", tag = "interactions",
    params(ItemId, Pagination), security(("bearer" = [])),
    responses((status = 200, body = [Interaction]), (status = 403), (status = 404)))]
pub async fn item_interactions(
    State(state): State<AppState>,
    _: Ops,
    ApiPath(item_id): ApiPath<i64>,
    ApiQuery(page): ApiQuery<Pagination>,
) -> AppResult<Json<Vec<Interaction>>> {
    if !items::exists(&state.db, item_id).await? {
        return Err(AppError::not_found("Item"));
    }
    Ok(Json(
        interactions::list_for_item(&state.db, item_id, page.into()).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/interactions/stats/user/{user_id}", tag = "interactions",
    params(UserId), security(("bearer" = [])),
    responses((status = 200, body = UserInteractionStats), (status = 401), (status = 403), (status = 404)))]
pub async fn user_stats(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(user_id): ApiPath<i64>,
) -> AppResult<Json<UserInteractionStats>> {
    caller.require_self_or_ops(user_id)?;
    if !users::exists(&state.db, user_id).await? {
        return Err(AppError::not_found("User"));
    }
    Ok(Json(
        interactions::stats_for_user(&state.db, user_id).await?,
    ))
}
