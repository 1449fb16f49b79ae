//! `/api/v1/rules`: the business rules, for ops and admins.

use axum::{Json, extract::State, http::StatusCode};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    SlashOptional,
    doc::{RuleKind, RuleName},
    extract::{ApiJson, ApiPath, Validate},
    recommendations::parse_kinds,
};
use crate::{
    AppState,
    auth::extract::Ops,
    error::{AppError, AppResult},
    rules::{
        admin::{self, RuleChange, RuleView},
        input::{
            RuleContext,
            sample::{self, DryRunCandidate, DryRunUser},
        },
        pipeline::RuleTrace,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes_slash_optional(routes!(list_rules))
        .routes(routes!(dry_run))
        .routes(routes!(get_rule, change_rule, remove_rule))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    /// Bumped by every change to the active set.
    pub rule_set_version: u64,
    /// Highest priority first: the order they run in.
    pub rules: Vec<RuleView>,
}

impl Validate for RuleChange {
    fn validate(&self) -> Result<(), String> {
        if self
            .priority
            .is_some_and(|p| !(-10_000..=10_000).contains(&p))
        {
            return Err("priority must be between -10000 and 10000".into());
        }
        Ok(())
    }
}

/// The active rules in the order they run.
#[utoipa::path(get, path = "/api/v1/rules/", tag = "rules", security(("bearer" = [])),
    responses((status = 200, body = RuleList), (status = 403)))]
pub async fn list_rules(State(state): State<AppState>, _: Ops) -> AppResult<Json<RuleList>> {
    let (version, rules) = admin::list(&state.rules);
    Ok(Json(RuleList {
        rule_set_version: version,
        rules,
    }))
}

#[utoipa::path(get, path = "/api/v1/rules/{name}", tag = "rules", params(RuleName), security(("bearer" = [])),
    responses((status = 200, body = RuleView), (status = 403), (status = 404)))]
pub async fn get_rule(
    State(state): State<AppState>,
    _: Ops,
    ApiPath(name): ApiPath<String>,
) -> AppResult<Json<RuleView>> {
    let set = state.rules.snapshot();
    set.rules
        .iter()
        .find(|r| r.name() == name)
        .map(|r| Json(admin::view(&state.rules, r)))
        .ok_or_else(|| AppError::NotFound(format!("Rule {name} not found")))
}

/// Changes priority, enabled, parameters or failure policy. Takes effect
/// from the next request; an invalid parameter is refused (422) and the
/// rule keeps its old values.
#[utoipa::path(put, path = "/api/v1/rules/{name}", tag = "rules", params(RuleName), request_body = RuleChange,
    security(("bearer" = [])),
    responses((status = 200, body = RuleView), (status = 403), (status = 404), (status = 422)))]
pub async fn change_rule(
    State(state): State<AppState>,
    _: Ops,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<RuleChange>,
) -> AppResult<Json<RuleView>> {
    let view = admin::change(&state.rules, &state.db, &name, body).await?;
    state.recommendations_changed().await;
    Ok(Json(view))
}

#[utoipa::path(delete, path = "/api/v1/rules/{name}", tag = "rules", params(RuleName), security(("bearer" = [])),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn remove_rule(
    State(state): State<AppState>,
    _: Ops,
    ApiPath(name): ApiPath<String>,
) -> AppResult<StatusCode> {
    admin::remove(&state.rules, &state.db, &name).await?;
    state.recommendations_changed().await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    #[serde(default)]
    pub user: DryRunUser,
    #[serde(default)]
    pub context: RuleContext,
    /// At most 1000, with distinct `item_id`s.
    #[schema(max_items = 1000)]
    pub candidates: Vec<DryRunCandidate>,
    /// Only these kinds run (default all).
    #[serde(default)]
    #[schema(inline, value_type = Vec<RuleKind>)]
    pub rule_types: Vec<String>,
    /// Item ids the request excludes (at most 200), as on a
    /// recommendation.
    #[serde(default)]
    #[schema(max_items = 200)]
    pub exclude_ids: Vec<i64>,
}

/// Most candidates a dry run accepts.
const MAX_DRY_RUN_CANDIDATES: usize = 1000;

impl Validate for DryRunRequest {
    fn validate(&self) -> Result<(), String> {
        // The same bounds as on a recommendation's context.
        self.context.validate()?;
        if self.exclude_ids.len() > super::recommendations::MAX_EXCLUDE_IDS {
            return Err(format!(
                "exclude_ids has {} ids; at most {} are allowed",
                self.exclude_ids.len(),
                super::recommendations::MAX_EXCLUDE_IDS
            ));
        }
        if self.candidates.len() > MAX_DRY_RUN_CANDIDATES {
            return Err(format!("at most {MAX_DRY_RUN_CANDIDATES} candidates"));
        }
        if self
            .candidates
            .iter()
            .any(|c| !c.score.is_finite() || c.score < 0.0)
        {
            return Err("scores must be finite and non-negative".into());
        }
        let mut ids: Vec<i64> = self.candidates.iter().map(|c| c.item_id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err("candidate item_ids must be unique".into());
        }
        parse_kinds(&self.rule_types).map(|_| ())
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunResult {
    pub item_id: i64,
    pub score: f64,
    pub rank: usize,
    /// The promote rule that placed it (promoted items come from the
    /// candidates sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunResponse {
    pub results: Vec<DryRunResult>,
    pub blocked_by: Option<String>,
    pub rule_set_version: u64,
    pub trace: Vec<RuleTrace>,
}

/// Applies the active rules to the given candidates and returns the result
/// and the trace; stores nothing.
#[utoipa::path(post, path = "/api/v1/rules/dry-run", tag = "rules", request_body = DryRunRequest,
    security(("bearer" = [])),
    responses((status = 200, body = DryRunResponse), (status = 403), (status = 422)))]
pub async fn dry_run(
    State(state): State<AppState>,
    _: Ops,
    ApiJson(body): ApiJson<DryRunRequest>,
) -> AppResult<Json<DryRunResponse>> {
    let kinds = parse_kinds(&body.rule_types).map_err(AppError::Validation)?;
    let now = Utc::now();
    let subject = sample::subject(
        body.user,
        &body.context,
        body.candidates,
        body.exclude_ids,
        now,
    );
    let set = state.rule_runner.rule_set();
    let runner = &state.rule_runner;
    let mut out = runner
        .run(set.clone(), subject.clone(), None, kinds, None)
        .await?;
    if !out.promotions.is_empty() {
        // The catalogue is what was sent: promoted ids among the candidates.
        let found = sample::among(&subject, &out.promotion_ids());
        out = runner.place(set, out, found, subject.items.len()).await?;
    }
    let promoted: std::collections::HashMap<i64, String> = out.promoted.iter().cloned().collect();
    let ranked = out.list.ids.clone();
    crate::rules::pipeline::rank_in_response(&mut out.trace, &ranked);
    Ok(Json(DryRunResponse {
        results: out
            .list
            .pairs()
            .enumerate()
            .map(|(i, (item_id, score))| DryRunResult {
                item_id,
                score,
                rank: i + 1,
                promoted_by: promoted.get(&item_id).cloned(),
            })
            .collect(),
        blocked_by: out.blocked_by,
        rule_set_version: out.rule_set_version,
        trace: out.trace,
    }))
}
