//! `/api/v1/recommendations`: the recommendation endpoints.

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    extract::State,
    routing::{get, post},
};
use recengine_rules_sdk::Kind;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJson, ApiPath, ApiQuery, Validate};
use crate::{
    AppState,
    error::AppResult,
    recommend::service::{self, RecommendationQuery, RecommendationResponse},
    rules::input::RuleContext,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/recommendations/user/{user_id}", get(for_user))
        .route("/recommendations/", post(for_user_post))
        .route("/recommendations", post(for_user_post))
}

pub const ALGORITHMS: &[&str] = &["hybrid", "collaborative", "content_based"];

fn default_top_n() -> usize {
    10
}
fn default_algorithm() -> String {
    "hybrid".into()
}
fn yes() -> bool {
    true
}

/// The checks shared by the GET query and the POST body.
fn check(
    top_n: usize,
    algorithm: &str,
    rule_types: &[String],
    hour_of_day: Option<u8>,
) -> Result<(), String> {
    if hour_of_day.is_some_and(|h| h > 23) {
        return Err("hour_of_day must be 0..=23".into());
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
            other => Err(format!(
                "unknown rule type {other:?} (filter, boost, rerank)"
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
    pub top_n: usize,
    /// hybrid (default), collaborative or content_based.
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// Leave out items the user already interacted with (default true).
    #[serde(default = "yes")]
    pub exclude_interacted: bool,
    /// Return the per-rule trace.
    #[serde(default)]
    pub explain: bool,
    pub country: Option<String>,
    pub device: Option<String>,
    pub hour_of_day: Option<u8>,
    pub is_weekend: Option<bool>,
    /// Comma-separated rule kinds to run (default all).
    pub rule_types: Option<String>,
}

impl RecommendationParams {
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
        check(self.top_n, &self.algorithm, &self.kinds(), self.hour_of_day)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendationRequest {
    pub user_id: i64,
    #[serde(default = "default_top_n")]
    pub top_n: usize,
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    #[serde(default = "yes")]
    pub exclude_interacted: bool,
    #[serde(default)]
    pub context: Option<RuleContext>,
    #[serde(default)]
    pub explain: bool,
    #[serde(default)]
    pub rule_types: Vec<String>,
}

impl Validate for RecommendationRequest {
    fn validate(&self) -> Result<(), String> {
        let hour = self.context.as_ref().and_then(|c| c.hour_of_day);
        check(self.top_n, &self.algorithm, &self.rule_types, hour)
    }
}

/// Recommendations for a user, after the business rules.
#[utoipa::path(get, path = "/api/v1/recommendations/user/{user_id}", tag = "recommendations",
    params(RecommendationParams),
    responses((status = 200, body = RecommendationResponse), (status = 404), (status = 422)))]
pub async fn for_user(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<i64>,
    ApiQuery(p): ApiQuery<RecommendationParams>,
) -> AppResult<Json<RecommendationResponse>> {
    let kinds = parse_kinds(&p.kinds()).map_err(crate::error::AppError::Validation)?;
    let query = RecommendationQuery {
        user_id,
        top_n: p.top_n,
        algorithm: p.algorithm,
        exclude_interacted: p.exclude_interacted,
        context: RuleContext {
            country: p.country,
            device: p.device,
            hour_of_day: p.hour_of_day,
            is_weekend: p.is_weekend,
            extra: BTreeMap::new(),
        },
        explain: p.explain,
        rule_kinds: kinds,
    };
    Ok(Json(service::recommend(&state, query).await?))
}

#[utoipa::path(post, path = "/api/v1/recommendations/", tag = "recommendations",
    request_body = RecommendationRequest,
    responses((status = 200, body = RecommendationResponse), (status = 404), (status = 422)))]
pub async fn for_user_post(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RecommendationRequest>,
) -> AppResult<Json<RecommendationResponse>> {
    let kinds = parse_kinds(&body.rule_types).map_err(crate::error::AppError::Validation)?;
    let query = RecommendationQuery {
        user_id: body.user_id,
        top_n: body.top_n,
        algorithm: body.algorithm,
        exclude_interacted: body.exclude_interacted,
        context: body.context.unwrap_or_default(),
        explain: body.explain,
        rule_kinds: kinds,
    };
    Ok(Json(service::recommend(&state, query).await?))
}
