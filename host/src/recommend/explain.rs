//! Why the models would (or would not) recommend an item to a user: each
//! algorithm's score and rank, the hybrid's weights, and the user's items
//! that make it look relevant.

use std::collections::HashSet;

use serde::Serialize;
use utoipa::ToSchema;

use super::{algorithms, service::Recommendations, snapshot::Snapshot};
use crate::error::{AppError, AppResult};

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

impl Recommendations {
    pub async fn explain(
        &self,
        user_id: i64,
        item_id: i64,
        method: Option<&str>,
    ) -> AppResult<Explanation> {
        let method = self.hybrid_method(method)?;
        let user = self
            .features
            .user(user_id)
            .await?
            .ok_or_else(|| AppError::not_found("User"))?;
        let item = self
            .features
            .item(item_id)
            .await?
            .ok_or_else(|| AppError::not_found("Item"))?;
        let snapshot = self.recommender.snapshot();
        let profile = snapshot.profile(&user.profile());
        let has_interacted = user.item_weights.iter().any(|w| w.item_id == item_id);
        let config = &snapshot.models.config;
        let alpha = f64::from(config.hybrid_alpha);
        let Some(&column) = snapshot.item_index.get(&item_id) else {
            return Ok(Explanation {
            user_id,
            item_id,
            item_title: item.item.title.clone(),
            has_interacted,
            hybrid_method: method.name().to_string(),
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
        let influences = self.influences(&snapshot, &explained.because_of).await?;
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
            item_title: item.item.title.clone(),
            has_interacted,
            hybrid_method: method.name().to_string(),
            collaborative_weight: 1.0 - content_weight,
            content_weight,
            contributions,
            because_you_interacted_with: influences,
            summary,
            model_version: snapshot.version,
        })
    }

    async fn influences(
        &self,
        snapshot: &Snapshot,
        because_of: &[(u32, f32)],
    ) -> AppResult<Vec<Influence>> {
        let ids: Vec<i64> = because_of
            .iter()
            .map(|&(i, _)| snapshot.item_id(i as usize))
            .collect();
        let items = self.features.items_batch(&ids).await?;
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
}
