//! `/api/v1/rules`: the business rules, for ops and admins.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
            RuleContext, Subject, context_data,
            gather::{datum_from_json, item_attribute},
        },
        pipeline::RuleTrace,
    },
    store::items::Item,
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

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunUser {
    #[serde(default)]
    pub id: i64,
    #[schema(format = Int64, minimum = 0, maximum = 4_294_967_295_u64)]
    pub age: Option<u32>,
    pub country: Option<String>,
    #[serde(default)]
    pub favorite_categories: Vec<String>,
    #[serde(default)]
    pub favorite_tags: Vec<String>,
    #[serde(default)]
    pub purchased: Vec<i64>,
    /// Any other preference keys, as on a user (`plan`, ...): what rules
    /// declaring user inputs read.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub preferences: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunCandidate {
    /// Unique among the candidates.
    pub item_id: i64,
    #[schema(minimum = 0)]
    pub score: f64,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// As on items: in_stock, is_promotional, promo_end_date, min_age,
    /// allowed_countries, blocked_countries, origin_country. Anything but
    /// an object counts as `{}`.
    #[serde(default)]
    pub features: Value,
    pub created_at: Option<DateTime<Utc>>,
    /// Feature-store statistics by name (`avg_rating`,
    /// `total_interactions`, ...), for rules that declare them.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub stats: Value,
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
    let subject = dry_run_subject(body, now);
    let set = state.rule_runner.rule_set();
    let out = state.rule_runner.run(set, subject, kinds, None).await?;
    Ok(Json(DryRunResponse {
        results: out
            .list
            .ids
            .iter()
            .zip(&out.list.scores)
            .enumerate()
            .map(|(i, (&item_id, &score))| DryRunResult {
                item_id,
                score,
                rank: i + 1,
            })
            .collect(),
        blocked_by: out.blocked_by,
        rule_set_version: out.rule_set_version,
        trace: out.trace,
    }))
}

/// A dry run's body as what rules read: the user's fields and preferences,
/// each candidate's fields, features and statistics, the context. (Promote
/// rules' placements are not looked up: the trace shows what they asked.)
fn dry_run_subject(body: DryRunRequest, now: DateTime<Utc>) -> Subject {
    use recengine_rules_sdk::{builder::Item as RuleItem, wire::Datum};
    let mut subject = Subject {
        user_id: body.user.id,
        now_ms: now.timestamp_millis(),
        context: context_data(&body.context, now),
        exclude_ids: body.exclude_ids,
        ..Subject::default()
    };
    let user = body.user;
    if let Value::Object(prefs) = &user.preferences {
        for (k, v) in prefs {
            if let Some(d) = datum_from_json(v) {
                subject.user.insert(k.clone(), d);
            }
        }
    }
    if let Some(age) = user.age {
        subject
            .user
            .insert("age".into(), Datum::Number(f64::from(age)));
    }
    if let Some(country) = user.country {
        subject.user.insert("country".into(), Datum::Text(country));
    }
    subject.user.insert(
        "favorite_categories".into(),
        Datum::Strings(user.favorite_categories),
    );
    subject
        .user
        .insert("favorite_tags".into(), Datum::Strings(user.favorite_tags));
    subject
        .user_stats
        .insert("purchased".into(), Datum::Ids(user.purchased));
    subject.items = body
        .candidates
        .into_iter()
        .map(|c| {
            let stored = Item {
                id: c.item_id,
                title: String::new(),
                description: String::new(),
                category: c.category,
                tags: c.tags,
                features: if c.features.is_object() {
                    c.features
                } else {
                    Value::Object(Default::default())
                },
                popularity_score: 0.0,
                created_at: c.created_at.unwrap_or(now),
                updated_at: now,
            };
            let mut item = RuleItem::new(c.item_id, c.score);
            for name in ["category", "tags", "created_at"] {
                if let Some(d) = item_attribute(&stored, name) {
                    item.attributes.insert(name.into(), d);
                }
            }
            if let Value::Object(features) = &stored.features {
                for (k, v) in features {
                    if let Some(d) = datum_from_json(v) {
                        item.attributes.entry(k.clone()).or_insert(d);
                    }
                }
            }
            if let Value::Object(stats) = &c.stats {
                for (k, v) in stats {
                    if let Some(d) = datum_from_json(v) {
                        item.stats.insert(k.clone(), d);
                    }
                }
            }
            item
        })
        .collect();
    subject
}
