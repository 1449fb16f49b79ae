//! The recommendation service: shared by the API (and, later, the batch
//! job). No HTTP types here.

use chrono::{DateTime, Utc};
use recengine_rules_sdk::Kind;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    AppState,
    error::{AppError, AppResult},
    rules::{
        input::{RuleContext, RuleUser, build_request, rule_item},
        pipeline::{self, RuleTrace},
    },
    store::{items, users},
};

/// How many more candidates than asked for are fetched, so the filters can
/// remove some and still leave `top_n`.
pub const OVERFETCH: i64 = 5;

#[derive(Debug, Clone)]
pub struct RecommendationQuery {
    pub user_id: i64,
    pub top_n: usize,
    pub algorithm: String,
    pub exclude_interacted: bool,
    pub context: RuleContext,
    pub explain: bool,
    /// Only these rule kinds run (`None`: all).
    pub rule_kinds: Option<Vec<Kind>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recommendation {
    pub item_id: i64,
    pub title: String,
    pub description: String,
    pub category: String,
    pub score: f64,
    pub rank: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecommendationResponse {
    pub user_id: i64,
    pub algorithm: String,
    pub recommendations: Vec<Recommendation>,
    pub generated_at: DateTime<Utc>,
    /// Whether the business rules ran.
    pub rules_applied: bool,
    /// Set when a fail-closed rule failed and the list was withheld: the
    /// rule's name. The list is then empty on purpose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// Per-rule trace, with `explain=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_trace: Option<Vec<RuleTrace>>,
}

/// Ids the user purchased (what `filter_purchased` needs).
async fn purchased_ids(state: &AppState, user_id: i64) -> AppResult<Vec<i64>> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT DISTINCT item_id FROM interactions WHERE user_id = $1 AND interaction_type = 'purchase'",
    )
    .bind(user_id)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

async fn interacted_ids(state: &AppState, user_id: i64) -> AppResult<Vec<i64>> {
    let rows: Vec<(i64,)> =
        sqlx::query_as("SELECT DISTINCT item_id FROM interactions WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&state.db.pool)
            .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn recommend(
    state: &AppState,
    q: RecommendationQuery,
) -> AppResult<RecommendationResponse> {
    let user = users::get(&state.db, q.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    let exclude = if q.exclude_interacted {
        interacted_ids(state, user.id).await?
    } else {
        Vec::new()
    };
    let wanted = q.top_n as i64 * OVERFETCH;
    let pool = items::popular(&state.db, wanted + exclude.len() as i64).await?;
    let candidates: Vec<items::Item> = pool
        .into_iter()
        .filter(|i| !exclude.contains(&i.id))
        .take(wanted as usize)
        .collect();
    // Scores in [0, 1]: the most popular candidate scores 1.
    let max = candidates
        .iter()
        .map(|i| i.popularity_score)
        .fold(0.0_f64, f64::max);
    let score = |i: &items::Item| {
        if max > 0.0 {
            i.popularity_score / max
        } else {
            0.0
        }
    };
    let now = Utc::now();

    let (ranked, trace, blocked_by, rules_applied) = if state.settings.enable_business_rules {
        let rule_user = RuleUser::from_user(&user, purchased_ids(state, user.id).await?);
        let request = build_request(
            &rule_user,
            &q.context,
            now,
            candidates.iter().map(|i| rule_item(i, score(i))),
        );
        let registry = state.rules.clone();
        // One snapshot for the whole request: a swap mid-request changes
        // nothing here.
        let set = registry.snapshot();
        let kinds = q.rule_kinds.clone();
        // Rule calls are synchronous and bounded by their deadline; they run
        // on the blocking pool so a slow rule never stalls other requests.
        let out = tokio::task::spawn_blocking(move || {
            pipeline::run(&registry, &set, request, kinds.as_deref())
        })
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
        let ranked: Vec<(i64, f64)> = out
            .candidates
            .ids
            .iter()
            .copied()
            .zip(out.candidates.scores.iter().copied())
            .collect();
        (ranked, Some(out.trace), out.blocked_by, true)
    } else {
        let ranked = candidates.iter().map(|i| (i.id, score(i))).collect();
        (ranked, None, None, false)
    };

    let by_id: std::collections::HashMap<i64, &items::Item> =
        candidates.iter().map(|i| (i.id, i)).collect();
    let recommendations = ranked
        .into_iter()
        .filter_map(|(id, score)| by_id.get(&id).map(|item| (item, score)))
        .take(q.top_n)
        .enumerate()
        .map(|(rank, (item, score))| Recommendation {
            item_id: item.id,
            title: item.title.clone(),
            description: item.description.clone(),
            category: item.category.clone(),
            score,
            rank: rank + 1,
        })
        .collect();
    Ok(RecommendationResponse {
        user_id: user.id,
        algorithm: q.algorithm,
        recommendations,
        generated_at: now,
        rules_applied,
        blocked_by,
        rule_trace: if q.explain { trace } else { None },
    })
}
