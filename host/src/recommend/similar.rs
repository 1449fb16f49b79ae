//! Items like a given one, from the snapshot's item-to-item similarities.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::service::Recommendations;
use crate::error::{AppError, AppResult};

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

impl Recommendations {
    pub async fn similar_items(
        &self,
        item_id: i64,
        top_n: usize,
    ) -> AppResult<SimilarItemsResponse> {
        let source = self
            .features
            .item(item_id)
            .await?
            .ok_or_else(|| AppError::not_found("Item"))?;
        let snapshot = self.recommender.snapshot();
        let neighbours: Vec<(usize, f32)> = match snapshot.item_index.get(&item_id) {
            // Over-fetch a little: some neighbours may have been deleted since.
            Some(&i) => snapshot.models.similar_items(i as usize, top_n + 10),
            None => Vec::new(),
        };
        let ids: Vec<i64> = neighbours
            .iter()
            .map(|&(j, _)| snapshot.item_id(j))
            .collect();
        let items = self.features.items_batch(&ids).await?;
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
            source_item_title: source.item.title.clone(),
            similar_items,
            model_version: snapshot.version,
        })
    }
}
