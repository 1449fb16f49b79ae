//! The recommendation service: shared by the API and the batch job. No
//! HTTP types here.
//!
//! A request: the cache; the user's features (their profile); the model
//! snapshot scores the catalogue and over-fetches candidates; the feature
//! store supplies the candidates' attributes in one batch; the business
//! rules filter, boost and rerank; the top `top_n` are returned and cached.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use recengine_models::{Algorithm, models::HybridMethod};
use recengine_rules_sdk::Kind;

use super::{
    algorithms,
    response::{Recommendation, RecommendationResponse},
    snapshot::{Recommender, Snapshot},
};
use crate::{
    cache::Cache,
    error::{AppError, AppResult},
    features::{FeatureStore, ItemFeatures},
    rules::{
        input::{
            InputPlan, RuleContext,
            gather::{Sources, candidate_items, gather},
            rows::RowSource,
        },
        pipeline::rank_in_response,
        runner::{Runner, Served},
    },
    telemetry::metrics::Metrics,
};

/// How many more candidates than asked for are scored and passed to the
/// rules, so the filters can remove some and still leave `top_n`.
pub const OVERFETCH: usize = 5;
/// Before the first models: at most this many extra popular items are read
/// to make up for those the user already touched.
const STARTING_SEEN_ALLOWANCE: usize = 1_000;

#[derive(Debug, Clone)]
pub struct RecommendationQuery {
    pub user_id: i64,
    pub top_n: usize,
    /// The model to run, parsed once from the API's name
    /// ([`Recommendations::algorithm`]).
    pub algorithm: Algorithm,
    /// The API name it was asked by (`algorithms::NAMES`), echoed in the
    /// response and the metrics.
    pub algorithm_name: String,
    pub exclude_interacted: bool,
    pub context: RuleContext,
    /// Item ids the caller does not want shown (the rules see them; the
    /// built-in `filter_excluded` removes them).
    pub exclude_ids: Vec<i64>,
    pub explain: bool,
    /// Only these rule kinds run (`None`: all).
    pub rule_kinds: Option<Vec<Kind>>,
}

impl RecommendationQuery {
    /// Everything but the user that changes the answer: the cache field.
    /// Rules that read the time of day see the server's clock when the
    /// caller sends none, so the hour is part of the key then.
    fn cache_field(&self, now: DateTime<Utc>) -> String {
        use chrono::{Datelike, Timelike};
        let clock = match (self.context.hour_of_day, self.context.is_weekend) {
            (Some(_), Some(_)) => String::new(),
            _ => format!("{}@{}", now.hour(), now.weekday()),
        };
        format!(
            "{}|{:?}|{}|{}|{}|{:?}|{:?}|{clock}",
            self.algorithm_name,
            self.algorithm,
            self.top_n,
            self.exclude_interacted,
            serde_json::to_string(&self.context).unwrap_or_default(),
            self.rule_kinds,
            self.exclude_ids,
        )
    }
}

/// Everything an answer is made from, handed in when the service is built
/// rather than reached for in the application state.
pub struct Recommendations {
    pub(super) features: Arc<FeatureStore>,
    pub(super) recommender: Arc<Recommender>,
    cache: Arc<Cache<RecommendationResponse>>,
    /// `None` when the business rules are switched off
    /// (`ENABLE_BUSINESS_RULES=false`).
    rules: Option<Runner>,
    /// `HYBRID_METHOD`: the hybrid's method when a request names none.
    pub(super) default_hybrid: HybridMethod,
    metrics: &'static Metrics,
}

impl Recommendations {
    pub fn new(
        features: Arc<FeatureStore>,
        recommender: Arc<Recommender>,
        cache: Arc<Cache<RecommendationResponse>>,
        rules: Option<Runner>,
        default_hybrid: HybridMethod,
        metrics: &'static Metrics,
    ) -> Self {
        Self {
            features,
            recommender,
            cache,
            rules,
            default_hybrid,
            metrics,
        }
    }

    /// The hybrid method a request names, or the default.
    pub fn hybrid_method(&self, requested: Option<&str>) -> AppResult<HybridMethod> {
        match requested {
            None => Ok(self.default_hybrid),
            Some(name) => HybridMethod::parse(name).ok_or_else(|| {
                AppError::Validation(format!(
                    "hybrid_method must be weighted, rank or cascade, not {name:?}"
                ))
            }),
        }
    }

    /// The model behind an API name (and, for `hybrid`, a method).
    pub fn algorithm(&self, name: &str, method: Option<&str>) -> AppResult<Algorithm> {
        let method = self.hybrid_method(method)?;
        algorithms::parse(name, method).ok_or_else(|| {
            AppError::Validation(format!(
                "algorithm must be one of: {}",
                algorithms::NAMES.join(", ")
            ))
        })
    }

    pub async fn recommend(&self, q: RecommendationQuery) -> AppResult<RecommendationResponse> {
        let cacheable = !q.explain && self.cache.enabled();
        let user_key = q.user_id.to_string();
        let now = Utc::now();
        // The context is the caller's to size: the key is its digest.
        let field = crate::cache::digest(&q.cache_field(now));
        if cacheable && let Some(hit) = self.cache.get(&user_key, &field).await {
            let mut hit = RecommendationResponse::clone(&hit);
            hit.cached = true;
            return Ok(hit);
        }
        let started = std::time::Instant::now();
        let user = self
            .features
            .user(q.user_id)
            .await?
            .ok_or_else(|| AppError::not_found("User"))?;
        let snapshot = self.recommender.snapshot();
        let profile = user.profile();
        // (item id, score), best first.
        let (scored, fallback): (Vec<(i64, f64)>, _) = if snapshot.version == 0 {
            // No models yet (the service is starting): the stored popularity.
            let popular = self
                .popular_while_starting(&profile, q.top_n, q.exclude_interacted)
                .await?;
            (popular, Some("popularity".to_string()))
        } else {
            let ModelCandidates { scored, fallback } = model_candidates(
                &snapshot,
                q.algorithm,
                user.user_id,
                &profile,
                q.top_n,
                q.exclude_interacted,
            );
            let scored = scored
                .into_iter()
                .map(|(j, s)| (snapshot.item_id(j), s))
                .collect();
            (scored, fallback)
        };
        let ids: Vec<i64> = scored.iter().map(|&(id, _)| id).collect();
        let items = self.features.items_batch(&ids).await?;
        let candidates: Vec<(&ItemFeatures, f64)> = scored
            .iter()
            .filter_map(|&(id, s)| items.get(&id).map(|f| (&**f, s)))
            .collect();

        let (ranked, trace, blocked_by, rules_applied, promoted, extra_items) = match &self.rules {
            Some(runner) => {
                let set = runner.rule_set();
                let plan = runner.plan(&set);
                let similarity = content_similarity(&snapshot, &plan, &profile);
                let sources = |candidates| Sources {
                    user: &user,
                    context: &q.context,
                    now,
                    candidates,
                    exclude_ids: &q.exclude_ids,
                    content_similarity: &*similarity,
                };
                // Item inputs come from the rows kept beside the cached
                // items when the set allows it, else from the subject.
                let rows: Option<Vec<Arc<dyn RowSource>>> = runner.rows_allowed(&set).then(|| {
                    scored
                        .iter()
                        .filter_map(|&(id, _)| items.get(&id))
                        .map(|f| f.clone() as Arc<dyn RowSource>)
                        .collect()
                });
                let subject =
                    gather(&self.features, &plan, sources(&candidates), rows.is_none()).await?;
                // The promoted items' subject: this one's user and context.
                let found = set.has_promote.then(|| subject.with_items(Vec::new()));
                let served = Served {
                    user_id: user.user_id,
                    top_n: q.top_n,
                };
                let mut out = runner
                    .run(
                        set.clone(),
                        subject,
                        rows,
                        q.rule_kinds.clone(),
                        Some(served),
                    )
                    .await?;
                // Promoted items come from anywhere in the catalogue: look
                // up those that exist, then vet and place them.
                let mut extra = HashMap::new();
                if let Some(mut found) = found
                    && !out.promotions.is_empty()
                {
                    let ids: Vec<i64> = out.promotion_ids();
                    extra = self.features.items_batch(&ids).await?;
                    let looked_up: Vec<(&ItemFeatures, f64)> = ids
                        .iter()
                        .filter_map(|id| extra.get(id))
                        .map(|f| (&**f, 0.0))
                        .collect();
                    found.items =
                        candidate_items(&plan, &looked_up, Some(&user), &*similarity, true);
                    out = runner.place(set, out, found, q.top_n).await?;
                }
                let ranked: Vec<(i64, f64)> = out.list.pairs().collect();
                let promoted: HashMap<i64, String> = out.promoted.into_iter().collect();
                (
                    ranked,
                    Some(out.trace),
                    out.blocked_by,
                    true,
                    promoted,
                    extra,
                )
            }
            None => {
                let ranked = candidates.iter().map(|(f, s)| (f.item_id, *s)).collect();
                (ranked, None, None, false, HashMap::new(), HashMap::new())
            }
        };

        let mut by_id: HashMap<i64, &ItemFeatures> =
            candidates.iter().map(|(f, _)| (f.item_id, *f)).collect();
        by_id.extend(extra_items.iter().map(|(id, f)| (*id, &**f)));
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
                promoted: promoted.contains_key(&item.id),
                promoted_by: promoted.get(&item.id).cloned(),
            })
            .collect::<Vec<_>>();
        let rule_trace = match trace {
            Some(mut trace) if q.explain => {
                let shown: Vec<i64> = recommendations.iter().map(|r| r.item_id).collect();
                rank_in_response(&mut trace, &shown);
                Some(trace)
            }
            _ => None,
        };
        let response = RecommendationResponse {
            user_id: user.user_id,
            algorithm: q.algorithm_name.clone(),
            recommendations,
            generated_at: now,
            rules_applied,
            blocked_by,
            fallback,
            model_version: snapshot.version,
            cached: false,
            rule_trace,
        };
        self.metrics
            .recommendations
            .with_label_values(&[&q.algorithm_name])
            .inc();
        self.metrics
            .recommendation_duration
            .with_label_values(&[&q.algorithm_name])
            .observe(started.elapsed().as_secs_f64());
        if cacheable {
            self.cache
                .put(&user_key, &field, Arc::new(response.clone()))
                .await;
        }
        Ok(response)
    }

    /// Before the first models are trained: the `top_n * OVERFETCH` items
    /// with the highest stored popularity (one indexed read), scored by it
    /// relative to the most popular.
    async fn popular_while_starting(
        &self,
        profile: &[(i64, f32)],
        top_n: usize,
        exclude_interacted: bool,
    ) -> AppResult<Vec<(i64, f64)>> {
        // Enough to fill the list once the user's own items are left out,
        // within a bound whatever their history.
        let seen_allowance = if exclude_interacted {
            profile.len().min(STARTING_SEEN_ALLOWANCE)
        } else {
            0
        };
        let wanted = top_n * OVERFETCH + seen_allowance;
        let popular = crate::store::items::popular(self.features.db(), wanted as i64).await?;
        let top = popular
            .first()
            .map(|i| i.popularity_score)
            .filter(|&p| p > 0.0)
            .unwrap_or(1.0);
        let seen: std::collections::HashSet<i64> = profile.iter().map(|&(id, _)| id).collect();
        Ok(popular
            .into_iter()
            .filter(|i| !(exclude_interacted && seen.contains(&i.id)))
            .take(top_n * OVERFETCH)
            .map(|i| (i.id, i.popularity_score / top))
            .collect())
    }
}

/// The content model's similarity to the user's profile, computed only when
/// a rule declares `user-item content_similarity` (it scores the whole
/// catalogue).
fn content_similarity<'a>(
    snapshot: &'a Snapshot,
    plan: &InputPlan,
    profile: &[(i64, f32)],
) -> Box<dyn Fn(i64) -> f64 + Send + Sync + 'a> {
    if plan.wants(recengine_rules_sdk::Scope::UserItem, "content_similarity") {
        Box::new(snapshot.content_similarity(profile))
    } else {
        Box::new(|_| 0.0)
    }
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
    // A mask by column, not a set: the models ask it of every item several
    // times per request (a hashed lookup was a fifth of the request's CPU).
    let mut excluded = vec![false; snapshot.models.n_items];
    if exclude_interacted {
        for &(j, _) in &profile {
            if let Some(seen) = excluded.get_mut(j as usize) {
                *seen = true;
            }
        }
    }
    let keep = |j: usize| !excluded.get(j).copied().unwrap_or(false);
    let scored = snapshot.candidates(algorithm, &profile, own, top_n * OVERFETCH, &keep);
    ModelCandidates { scored, fallback }
}
