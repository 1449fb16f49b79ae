//! `/api/v1/recommendations`: the recommendation endpoints.

use std::collections::BTreeMap;

use axum::{Json, extract::State};
use recengine_rules_sdk::Kind;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    SlashOptional,
    doc::{Algorithm, HybridMethod, ItemId, RuleKind, UserId},
    extract::{ApiJson, ApiPath, ApiQuery, Validate},
};
use crate::{
    AppState,
    error::AppResult,
    recommend::{
        explain::Explanation,
        response::{BatchRecommendations, RecommendationResponse},
        service::RecommendationQuery,
        similar::SimilarItemsResponse,
        trending::{MAX_WINDOW_SECONDS, TrendingResponse},
    },
    rules::input::RuleContext,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(for_user))
        .routes(routes!(batch_for_user))
        .routes_slash_optional(routes!(for_user_post))
        .routes(routes!(similar_items))
        .routes(routes!(trending))
        .routes(routes!(explain))
}

use crate::recommend::algorithms::NAMES as ALGORITHMS;

/// The list the `generate_batch_recommendations` job stored for the user
/// (top 20, default algorithm, rules applied): a read of one row, for
/// clients that want yesterday's list at the cost of a key lookup.
#[utoipa::path(get, path = "/api/v1/recommendations/user/{user_id}/batch", tag = "recommendations",
    params(UserId),
    responses((status = 200, body = BatchRecommendations), (status = 404)))]
pub async fn batch_for_user(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<i64>,
) -> AppResult<Json<BatchRecommendations>> {
    crate::store::batch_recommendations::get(&state.db, user_id)
        .await?
        .map(|list| Json(list.into()))
        .ok_or_else(|| {
            crate::error::AppError::NotFound(format!(
                "No batch recommendations for user {user_id}; \
                 the generate_batch_recommendations job has not stored any for this user yet"
            ))
        })
}

fn default_top_n() -> usize {
    10
}
fn default_algorithm() -> String {
    "hybrid".into()
}
fn yes() -> bool {
    true
}

/// Most ids a request may exclude.
pub const MAX_EXCLUDE_IDS: usize = 200;

/// The checks shared by the GET query and the POST body.
fn check(
    top_n: usize,
    algorithm: &str,
    rule_types: &[String],
    context: &RuleContext,
    exclude_ids: &[i64],
) -> Result<(), String> {
    context.validate()?;
    if exclude_ids.len() > MAX_EXCLUDE_IDS {
        return Err(format!(
            "exclude_ids has {} ids; at most {MAX_EXCLUDE_IDS} are allowed",
            exclude_ids.len()
        ));
    }
    if !(1..=100).contains(&top_n) {
        return Err("top_n must be between 1 and 100".into());
    }
    if !ALGORITHMS.contains(&algorithm) {
        return Err(format!(
            "algorithm must be one of: {}",
            ALGORITHMS.join(", ")
        ));
    }
    parse_kinds(rule_types).map(|_| ())
}

pub fn parse_kinds(names: &[String]) -> Result<Option<Vec<Kind>>, String> {
    if names.is_empty() {
        return Ok(None);
    }
    names
        .iter()
        .map(|n| match n.trim() {
            "filter" => Ok(Kind::Filter),
            "boost" => Ok(Kind::Boost),
            "rerank" => Ok(Kind::Rerank),
            "promote" => Ok(Kind::Promote),
            other => Err(format!(
                "unknown rule type {other:?} (filter, boost, rerank, promote)"
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Query of `GET /recommendations/user/{id}`; the context fields go to the
/// business rules.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecommendationParams {
    /// 1 to 100 (default 10).
    #[serde(default = "default_top_n")]
    #[param(minimum = 1, maximum = 100)]
    pub top_n: usize,
    /// hybrid (default), collaborative, content_based, or one model:
    /// ease, item_knn, user_knn, popularity.
    #[serde(default = "default_algorithm")]
    #[param(inline, value_type = Algorithm)]
    pub algorithm: String,
    /// How `hybrid` combines: weighted, rank or cascade (default
    /// `HYBRID_METHOD`).
    #[param(inline, value_type = Option<HybridMethod>)]
    pub hybrid_method: Option<String>,
    /// Leave out items the user already interacted with (default true).
    #[serde(default = "yes")]
    pub exclude_interacted: bool,
    /// Return the per-rule trace.
    #[serde(default)]
    pub explain: bool,
    /// The caller's country (at most 8 characters).
    #[param(max_length = 8)]
    pub country: Option<String>,
    /// At most 64 characters.
    #[param(max_length = 64)]
    pub device: Option<String>,
    #[param(minimum = 0, maximum = 23)]
    pub hour_of_day: Option<u8>,
    pub is_weekend: Option<bool>,
    /// Comma-separated rule kinds to run (default all).
    #[param(inline, value_type = Option<Vec<RuleKind>>, style = Form, explode = false)]
    pub rule_types: Option<String>,
    /// Comma-separated item ids not to show (at most 200): the rules see
    /// them and the built-in `filter_excluded` removes them.
    #[param(value_type = Option<Vec<i64>>, style = Form, explode = false)]
    pub exclude_ids: Option<String>,
}

impl RecommendationParams {
    fn exclude_ids(&self) -> Result<Vec<i64>, String> {
        let Some(text) = self.exclude_ids.as_deref() else {
            return Ok(Vec::new());
        };
        let parts: Vec<&str> = text.split(',').filter(|p| !p.trim().is_empty()).collect();
        if parts.len() > MAX_EXCLUDE_IDS {
            return Err(format!(
                "exclude_ids has {} ids; at most {MAX_EXCLUDE_IDS} are allowed",
                parts.len()
            ));
        }
        parts
            .into_iter()
            .map(|p| {
                let p = p.trim();
                // A whole number written with a fraction (`10.0`) is still
                // that id, as JSON numbers go.
                p.parse::<i64>()
                    .ok()
                    .or_else(|| {
                        p.parse::<f64>()
                            .ok()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                            .map(|f| f as i64)
                    })
                    .ok_or_else(|| format!("exclude_ids: {p:?} is not an item id"))
            })
            .collect()
    }

    fn kinds(&self) -> Vec<String> {
        self.rule_types
            .as_deref()
            .map(|s| {
                s.split(',')
                    .filter(|k| !k.trim().is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Validate for RecommendationParams {
    fn validate(&self) -> Result<(), String> {
        let context = RuleContext {
            country: self.country.clone(),
            device: self.device.clone(),
            hour_of_day: self.hour_of_day,
            is_weekend: self.is_weekend,
            extra: BTreeMap::new(),
        };
        let exclude_ids = self.exclude_ids()?;
        check(
            self.top_n,
            &self.algorithm,
            &self.kinds(),
            &context,
            &exclude_ids,
        )
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendationRequest {
    pub user_id: i64,
    /// 1 to 100 (default 10).
    #[serde(default = "default_top_n")]
    #[schema(minimum = 1, maximum = 100)]
    pub top_n: usize,
    /// hybrid (default), collaborative, content_based, or one model.
    #[serde(default = "default_algorithm")]
    #[schema(inline, value_type = Algorithm)]
    pub algorithm: String,
    /// weighted, rank or cascade (default `HYBRID_METHOD`).
    #[serde(default)]
    #[schema(inline, value_type = Option<HybridMethod>)]
    pub hybrid_method: Option<String>,
    #[serde(default = "yes")]
    pub exclude_interacted: bool,
    #[serde(default)]
    pub context: Option<RuleContext>,
    #[serde(default)]
    pub explain: bool,
    /// Only these kinds run (default all).
    #[serde(default)]
    #[schema(inline, value_type = Vec<RuleKind>)]
    pub rule_types: Vec<String>,
    /// Item ids not to show (at most 200): the rules see them and the
    /// built-in `filter_excluded` removes them.
    #[serde(default)]
    #[schema(max_items = 200)]
    pub exclude_ids: Vec<i64>,
}

impl Validate for RecommendationRequest {
    fn validate(&self) -> Result<(), String> {
        let empty = RuleContext::default();
        let context = self.context.as_ref().unwrap_or(&empty);
        check(
            self.top_n,
            &self.algorithm,
            &self.rule_types,
            context,
            &self.exclude_ids,
        )
    }
}

/// Recommendations for a user, after the business rules.
#[utoipa::path(get, path = "/api/v1/recommendations/user/{user_id}", tag = "recommendations",
    params(UserId, RecommendationParams),
    responses((status = 200, body = RecommendationResponse), (status = 404)))]
pub async fn for_user(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<i64>,
    ApiQuery(p): ApiQuery<RecommendationParams>,
) -> AppResult<Json<RecommendationResponse>> {
    let kinds = parse_kinds(&p.kinds()).map_err(crate::error::AppError::Validation)?;
    let exclude_ids = p
        .exclude_ids()
        .map_err(crate::error::AppError::Validation)?;
    let recommendations = &state.recommendations;
    let query = RecommendationQuery {
        user_id,
        top_n: p.top_n,
        algorithm: recommendations.algorithm(&p.algorithm, p.hybrid_method.as_deref())?,
        algorithm_name: p.algorithm,
        exclude_interacted: p.exclude_interacted,
        context: RuleContext {
            country: p.country,
            device: p.device,
            hour_of_day: p.hour_of_day,
            is_weekend: p.is_weekend,
            extra: BTreeMap::new(),
        },
        exclude_ids,
        explain: p.explain,
        rule_kinds: kinds,
    };
    Ok(Json(recommendations.recommend(query).await?))
}

#[utoipa::path(post, path = "/api/v1/recommendations/", tag = "recommendations",
    request_body = RecommendationRequest,
    responses((status = 200, body = RecommendationResponse), (status = 404)))]
pub async fn for_user_post(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RecommendationRequest>,
) -> AppResult<Json<RecommendationResponse>> {
    let kinds = parse_kinds(&body.rule_types).map_err(crate::error::AppError::Validation)?;
    let recommendations = &state.recommendations;
    let query = RecommendationQuery {
        user_id: body.user_id,
        top_n: body.top_n,
        algorithm: recommendations.algorithm(&body.algorithm, body.hybrid_method.as_deref())?,
        algorithm_name: body.algorithm,
        exclude_interacted: body.exclude_interacted,
        context: body.context.unwrap_or_default(),
        exclude_ids: body.exclude_ids,
        explain: body.explain,
        rule_kinds: kinds,
    };
    Ok(Json(recommendations.recommend(query).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SimilarParams {
    /// 1 to 100 (default 10).
    #[serde(default = "default_top_n")]
    #[param(minimum = 1, maximum = 100)]
    pub top_n: usize,
}

impl Validate for SimilarParams {
    fn validate(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.top_n) {
            return Err("top_n must be between 1 and 100".into());
        }
        Ok(())
    }
}

/// Items like this one: co-interaction and content similarity blended; for
/// an item nobody has touched yet, content alone.
#[utoipa::path(get, path = "/api/v1/recommendations/similar-items/{item_id}", tag = "recommendations",
    params(ItemId, SimilarParams),
    responses((status = 200, body = SimilarItemsResponse), (status = 404)))]
pub async fn similar_items(
    State(state): State<AppState>,
    ApiPath(item_id): ApiPath<i64>,
    ApiQuery(p): ApiQuery<SimilarParams>,
) -> AppResult<Json<SimilarItemsResponse>> {
    Ok(Json(
        state
            .recommendations
            .similar_items(item_id, p.top_n)
            .await?,
    ))
}

fn default_limit() -> usize {
    10
}
fn default_window() -> i64 {
    3600
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendingParams {
    /// 1 to 100 (default 10).
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 100)]
    pub limit: usize,
    /// Seconds back from now, 60 to 2592000 (30 days; default 3600); rounded
    /// up to whole minutes, hours (past an hour) or days (past a day).
    #[serde(default = "default_window")]
    #[param(minimum = 60, maximum = 2_592_000)]
    pub time_window: i64,
}

impl Validate for TrendingParams {
    fn validate(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.limit) {
            return Err("limit must be between 1 and 100".into());
        }
        if !(60..=MAX_WINDOW_SECONDS).contains(&self.time_window) {
            return Err(format!(
                "time_window must be between 60 and {MAX_WINDOW_SECONDS} seconds"
            ));
        }
        Ok(())
    }
}

/// The items with the most interactions in the last `time_window` seconds.
#[utoipa::path(get, path = "/api/v1/recommendations/trending", tag = "recommendations",
    params(TrendingParams),
    responses((status = 200, body = TrendingResponse)))]
pub async fn trending(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<TrendingParams>,
) -> AppResult<Json<TrendingResponse>> {
    Ok(Json(
        crate::recommend::trending::trending(
            &state.db,
            &state.features,
            &state.trending_cache,
            p.limit,
            p.time_window,
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExplainParams {
    #[param(minimum = 1)]
    pub user_id: i64,
    #[param(minimum = 1)]
    pub item_id: i64,
    /// weighted, rank or cascade (default `HYBRID_METHOD`).
    #[param(inline, value_type = Option<HybridMethod>)]
    pub hybrid_method: Option<String>,
}

impl Validate for ExplainParams {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// How each algorithm scores the item for the user, and which of the
/// user's items it owes its score to.
#[utoipa::path(post, path = "/api/v1/recommendations/explain", tag = "recommendations",
    params(ExplainParams),
    responses((status = 200, body = Explanation), (status = 404)))]
pub async fn explain(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<ExplainParams>,
) -> AppResult<Json<Explanation>> {
    Ok(Json(
        state
            .recommendations
            .explain(p.user_id, p.item_id, p.hybrid_method.as_deref())
            .await?,
    ))
}
