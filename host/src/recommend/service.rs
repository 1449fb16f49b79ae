//! The recommendation service: shared by the API (and the batch job). No
//! HTTP types here.
//!
//! A request: the cache; the user's features (their profile); the model
//! snapshot scores the catalogue and over-fetches candidates; the feature
//! store supplies the candidates' attributes in one batch; the business
//! rules filter, boost and rerank; the top `top_n` are returned and cached.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use recengine_models::{Algorithm, models::HybridMethod};
use recengine_rules_sdk::Kind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{algorithms, snapshot::Snapshot};
use crate::{
    AppState,
    error::{AppError, AppResult},
    features::ItemFeatures,
    rules::{
        input::{RuleContext, RuleUser, build_request, rule_item},
        pipeline::{self, RuleTrace},
    },
};

/// How many more candidates than asked for are scored and passed to the
/// rules, so the filters can remove some and still leave `top_n`.
pub const OVERFETCH: usize = 5;

#[derive(Debug, Clone)]
pub struct RecommendationQuery {
    pub user_id: i64,
    pub top_n: usize,
    /// An API name (`algorithms::NAMES`).
    pub algorithm: String,
    /// Overrides `HYBRID_METHOD` for `algorithm=hybrid`.
    pub hybrid_method: Option<String>,
    pub exclude_interacted: bool,
    pub context: RuleContext,
    pub explain: bool,
    /// Only these rule kinds run (`None`: all).
    pub rule_kinds: Option<Vec<Kind>>,
}

impl RecommendationQuery {
    /// Everything but the user that changes the answer: the cache field.
    /// Rules that read the time of day see the server's clock when the
    /// caller sends none, so the hour is part of the key then.
    fn cache_field(&self) -> String {
        use chrono::{Datelike, Timelike};
        let now = Utc::now();
        let clock = match (self.context.hour_of_day, self.context.is_weekend) {
            (Some(_), Some(_)) => String::new(),
            _ => format!("{}@{}", now.hour(), now.weekday()),
        };
        format!(
            "{}|{:?}|{}|{}|{}|{:?}|{clock}",
            self.algorithm,
            self.hybrid_method,
            self.top_n,
            self.exclude_interacted,
            serde_json::to_string(&self.context).unwrap_or_default(),
            self.rule_kinds,
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Recommendation {
    pub item_id: i64,
    pub title: String,
    pub description: String,
    pub category: String,
    /// The model's score relative to the best candidate's (1), after the
    /// rules' boosts.
    pub score: f64,
    pub rank: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    /// `popularity` when the user has no interactions the models know
    /// (cold start) and popular items were served instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// The model snapshot that produced the list.
    pub model_version: u64,
    /// Served from the recommendation cache.
    pub cached: bool,
    /// Per-rule trace, with `explain=true` (never cached).
    #[serde(skip_serializing_if = "Option::is_none", default, skip_deserializing)]
    pub rule_trace: Option<Vec<RuleTrace>>,
}

fn hybrid_method(state: &AppState, requested: Option<&str>) -> AppResult<HybridMethod> {
    let Some(name) = requested else {
        return Ok(state.settings.hybrid_method);
    };
    HybridMethod::parse(name).ok_or_else(|| {
        AppError::Validation(format!(
            "hybrid_method must be weighted, rank or cascade, not {name:?}"
        ))
    })
}

pub fn parse_algorithm(state: &AppState, name: &str, method: Option<&str>) -> AppResult<Algorithm> {
    let method = hybrid_method(state, method)?;
    algorithms::parse(name, method).ok_or_else(|| {
        AppError::Validation(format!(
            "algorithm must be one of: {}",
            algorithms::NAMES.join(", ")
        ))
    })
}

/// The models' part of an answer, before the rules: columns of the
/// snapshot with scores relative to the best (1), best first.
#[derive(Debug, Clone)]
pub struct ModelCandidates {
    pub scored: Vec<(usize, f64)>,
    /// `popularity` when the profile holds nothing the models know.
    pub fallback: Option<String>,
}

/// The pure scoring step of `GET /recommendations/user/{id}`: the user's
/// profile (item id, confidence, as the feature store builds it) scored by
/// the snapshot, `top_n * OVERFETCH` candidates, popular items for a cold
/// profile. No I/O, so `recengine eval` runs exactly this on its splits;
/// with the rules off the answer is the first `top_n` of `scored` (minus
/// items deleted since the snapshot).
pub fn model_candidates(
    snapshot: &Snapshot,
    algorithm: Algorithm,
    user_id: i64,
    items: &[(i64, f32)],
    top_n: usize,
    exclude_interacted: bool,
) -> ModelCandidates {
    let profile = snapshot.profile(items);
    let own = snapshot.user_index.get(&user_id).copied();
    let (algorithm, fallback) = if profile.is_empty() {
        (Algorithm::Popularity, Some("popularity".to_string()))
    } else {
        (algorithm, None)
    };
    let excluded: HashSet<u32> = if exclude_interacted {
        profile.iter().map(|p| p.0).collect()
    } else {
        HashSet::new()
    };
    let keep = |j: usize| !excluded.contains(&(j as u32));
    let scored = snapshot.candidates(algorithm, &profile, own, top_n * OVERFETCH, &keep);
    ModelCandidates { scored, fallback }
}

pub async fn recommend(
    state: &AppState,
    q: RecommendationQuery,
) -> AppResult<RecommendationResponse> {
    let algorithm = parse_algorithm(state, &q.algorithm, q.hybrid_method.as_deref())?;
    let cacheable = !q.explain && state.rec_cache.enabled();
    let user_key = q.user_id.to_string();
    // The context is the caller's to size: the key is its digest.
    let field = crate::cache::digest(&q.cache_field());
    if cacheable && let Some(mut hit) = state.rec_cache.get(&user_key, &field).await {
        hit.cached = true;
        return Ok(hit);
    }
    let started = std::time::Instant::now();
    let user = state
        .features
        .user(q.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    let snapshot = state.recommender.snapshot();
    let ModelCandidates { scored, fallback } = model_candidates(
        &snapshot,
        algorithm,
        user.user_id,
        &user.profile(),
        q.top_n,
        q.exclude_interacted,
    );
    let ids: Vec<i64> = scored.iter().map(|&(j, _)| snapshot.item_id(j)).collect();
    let items = state.features.items_batch(&ids).await?;
    let candidates: Vec<(&ItemFeatures, f64)> = scored
        .iter()
        .filter_map(|&(j, s)| items.get(&snapshot.item_id(j)).map(|f| (f, s)))
        .collect();
    let now = Utc::now();

    let (ranked, trace, blocked_by, rules_applied) = if state.settings.enable_business_rules {
        let rule_user = RuleUser::from_preferences(
            user.user_id,
            &user.preferences,
            user.purchased_item_ids.clone(),
        );
        let request = build_request(
            &rule_user,
            &q.context,
            now,
            candidates.iter().map(|(f, s)| rule_item(&f.item, *s)),
        );
        let registry = state.rules.clone();
        // One rule set for the whole request: a swap mid-request changes
        // nothing here.
        let set = registry.snapshot();
        let kinds = q.rule_kinds.clone();
        let shadow = state
            .bundles
            .shadow()
            .map(|shadow| (shadow, request.clone(), set.clone()));
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
        if let Some((shadow, request, set)) = shadow {
            let served = out.candidates.ids.iter().copied().take(q.top_n).collect();
            shadow.evaluate(
                state.rules.clone(),
                &set,
                request,
                q.rule_kinds.clone(),
                user.user_id,
                served,
                q.top_n,
            );
        }
        (ranked, Some(out.trace), out.blocked_by, true)
    } else {
        let ranked = candidates.iter().map(|(f, s)| (f.item_id, *s)).collect();
        (ranked, None, None, false)
    };

    let by_id: HashMap<i64, &ItemFeatures> =
        candidates.iter().map(|(f, _)| (f.item_id, *f)).collect();
    let recommendations = ranked
        .into_iter()
        .filter_map(|(id, score)| by_id.get(&id).map(|f| (&f.item, score)))
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
    let response = RecommendationResponse {
        user_id: user.user_id,
        algorithm: q.algorithm.clone(),
        recommendations,
        generated_at: now,
        rules_applied,
        blocked_by,
        fallback,
        model_version: snapshot.version,
        cached: false,
        rule_trace: if q.explain { trace } else { None },
    };
    let metrics = &*crate::telemetry::metrics::METRICS;
    metrics
        .recommendations
        .with_label_values(&[&q.algorithm])
        .inc();
    metrics
        .recommendation_duration
        .with_label_values(&[&q.algorithm])
        .observe(started.elapsed().as_secs_f64());
    if cacheable {
        state
            .rec_cache
            .put(&user_key, &field, response.clone())
            .await;
    }
    Ok(response)
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SimilarItem {
    pub item_id: i64,
    pub title: String,
    pub description: String,
    pub category: String,
    /// 0-1: co-interaction cosine blended with content cosine
    /// (`HYBRID_ALPHA`), content alone for items nobody has touched.
    pub similarity_score: f64,
    pub rank: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SimilarItemsResponse {
    pub source_item_id: i64,
    pub source_item_title: String,
    pub similar_items: Vec<SimilarItem>,
    pub model_version: u64,
}

pub async fn similar_items(
    state: &AppState,
    item_id: i64,
    top_n: usize,
) -> AppResult<SimilarItemsResponse> {
    let source = state
        .features
        .item(item_id)
        .await?
        .ok_or_else(|| AppError::not_found("Item"))?;
    let snapshot = state.recommender.snapshot();
    let neighbours: Vec<(usize, f32)> = match snapshot.item_index.get(&item_id) {
        // Over-fetch a little: some neighbours may have been deleted since.
        Some(&i) => snapshot.models.similar_items(i as usize, top_n + 10),
        None => Vec::new(),
    };
    let ids: Vec<i64> = neighbours
        .iter()
        .map(|&(j, _)| snapshot.item_id(j))
        .collect();
    let items = state.features.items_batch(&ids).await?;
    let similar_items = neighbours
        .into_iter()
        .filter_map(|(j, s)| items.get(&snapshot.item_id(j)).map(|f| (&f.item, s)))
        .take(top_n)
        .enumerate()
        .map(|(rank, (item, s))| SimilarItem {
            item_id: item.id,
            title: item.title.clone(),
            description: item.description.clone(),
            category: item.category.clone(),
            similarity_score: f64::from(s),
            rank: rank + 1,
        })
        .collect();
    Ok(SimilarItemsResponse {
        source_item_id: item_id,
        source_item_title: source.item.title,
        similar_items,
        model_version: snapshot.version,
    })
}

/// Why the models would (or would not) recommend an item to a user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Explanation {
    pub user_id: i64,
    pub item_id: i64,
    pub item_title: String,
    pub has_interacted: bool,
    /// The hybrid's method and its collaborative share for this item (the
    /// content share fades as the item gathers interactions).
    pub hybrid_method: String,
    pub collaborative_weight: f64,
    pub content_weight: f64,
    /// One entry per algorithm.
    pub contributions: Vec<Contribution>,
    /// The user's items that make this one look relevant (item-kNN).
    pub because_you_interacted_with: Vec<Influence>,
    /// One sentence for people.
    pub summary: String,
    pub model_version: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Contribution {
    pub algorithm: String,
    /// The model's raw score.
    pub score: f64,
    /// Relative to the best candidate's score (1).
    pub normalized_score: f64,
    /// The item's rank among the user's candidates (1 = first).
    pub rank: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Influence {
    pub item_id: i64,
    pub title: String,
    pub contribution: f64,
}

pub async fn explain(
    state: &AppState,
    user_id: i64,
    item_id: i64,
    method: Option<&str>,
) -> AppResult<Explanation> {
    let method = hybrid_method(state, method)?;
    let user = state
        .features
        .user(user_id)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    let item = state
        .features
        .item(item_id)
        .await?
        .ok_or_else(|| AppError::not_found("Item"))?;
    let snapshot = state.recommender.snapshot();
    let profile = snapshot.profile(&user.profile());
    let has_interacted = user.item_weights.iter().any(|w| w.item_id == item_id);
    let config = &snapshot.models.config;
    let alpha = f64::from(config.hybrid_alpha);
    let Some(&column) = snapshot.item_index.get(&item_id) else {
        return Ok(Explanation {
            user_id,
            item_id,
            item_title: item.item.title,
            has_interacted,
            hybrid_method: format!("{method:?}").to_lowercase(),
            collaborative_weight: alpha,
            content_weight: 1.0 - alpha,
            contributions: Vec::new(),
            because_you_interacted_with: Vec::new(),
            summary: "The item was added after the models were last trained; it is scored from the next retrain on.".into(),
            model_version: snapshot.version,
        });
    };
    let own = snapshot.user_index.get(&user_id).copied();
    let seen: HashSet<u32> = profile.iter().map(|p| p.0).collect();
    let keep = |j: usize| j == column as usize || !seen.contains(&(j as u32));
    let explained = snapshot
        .models
        .explain(&profile, own, column as usize, &keep, method);
    let contributions: Vec<Contribution> = explained
        .parts
        .iter()
        .map(|&(algorithm, raw, normalized, rank)| Contribution {
            algorithm: algorithms::name(algorithm).to_string(),
            score: f64::from(raw),
            normalized_score: f64::from(normalized),
            rank,
        })
        .collect();
    let influences = influences(state, &snapshot, &explained.because_of).await?;
    let n = f64::from(snapshot.models.popularity[column as usize]);
    let fade = f64::from(config.hybrid_content_fade);
    let content_weight = if fade > 0.0 {
        (1.0 - alpha) * fade / (fade + n)
    } else {
        1.0 - alpha
    };
    let summary = match (contributions.first(), influences.first()) {
        (_, _) if profile.is_empty() => {
            "The user has no interactions the models know yet: they are shown popular items."
                .to_string()
        }
        (Some(hybrid), Some(top)) => format!(
            "Ranked #{} for this user by the hybrid, mostly because they interacted with \"{}\".",
            hybrid.rank, top.title
        ),
        (Some(hybrid), None) => format!(
            "Ranked #{} for this user by the hybrid; none of their items is a close neighbour of it.",
            hybrid.rank
        ),
        (None, _) => String::new(),
    };
    Ok(Explanation {
        user_id,
        item_id,
        item_title: item.item.title,
        has_interacted,
        hybrid_method: format!("{method:?}").to_lowercase(),
        collaborative_weight: 1.0 - content_weight,
        content_weight,
        contributions,
        because_you_interacted_with: influences,
        summary,
        model_version: snapshot.version,
    })
}

async fn influences(
    state: &AppState,
    snapshot: &Snapshot,
    because_of: &[(u32, f32)],
) -> AppResult<Vec<Influence>> {
    let ids: Vec<i64> = because_of
        .iter()
        .map(|&(i, _)| snapshot.item_id(i as usize))
        .collect();
    let items = state.features.items_batch(&ids).await?;
    Ok(because_of
        .iter()
        .filter_map(|&(i, c)| {
            let id = snapshot.item_id(i as usize);
            items.get(&id).map(|f| Influence {
                item_id: id,
                title: f.item.title.clone(),
                contribution: f64::from(c),
            })
        })
        .collect())
}
