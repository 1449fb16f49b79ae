//! Combining a collaborative and a content score vector. Only the entries
//! `keep` accepts (the candidates) take part in the normalisation, so items
//! that will not be shown cannot squash the scale of those that will.

/// `v / max(v)` over the kept entries, so the best candidate scores 1.
pub fn normalize_by_max(v: &mut [f32], keep: &dyn Fn(usize) -> bool) {
    let max = v
        .iter()
        .enumerate()
        .filter(|&(i, _)| keep(i))
        .map(|(_, &s)| s)
        .fold(0f32, f32::max);
    if max > 0.0 {
        v.iter_mut().for_each(|s| *s /= max);
    }
}

/// `(1 − w) · cf + w · content` with both normalised by their maximum and
/// the content share `w = (1 − alpha) · fade / (fade + n_j)` fading as item
/// j gathers interactions (`n_j` users). An item nobody touched is judged
/// on content with the full `1 − alpha`; a well-known one mostly on the
/// collaborative evidence, which is far stronger once it exists (on the
/// ml-100k validation split a fixed content share scores NDCG@10 0.226,
/// fading at 50 users 0.257; see `recengine eval --tune`). `fade = 0`
/// gives the plain fixed blend.
pub fn weighted(
    mut cf: Vec<f32>,
    mut content: Vec<f32>,
    alpha: f32,
    fade: f32,
    interactions: &[f32],
    keep: &dyn Fn(usize) -> bool,
) -> Vec<f32> {
    normalize_by_max(&mut cf, keep);
    normalize_by_max(&mut content, keep);
    cf.iter()
        .zip(&content)
        .zip(interactions)
        .map(|((c, t), &n)| {
            let w = if fade > 0.0 {
                (1.0 - alpha) * fade / (fade + n)
            } else {
                1.0 - alpha
            };
            (1.0 - w) * c + w * t
        })
        .collect()
}

/// Reciprocal-rank fusion: `alpha / (60 + rank_cf) + (1 − alpha) / (60 +
/// rank_content)`. Immune to the scales of the two models.
pub fn rank(cf: &[f32], content: &[f32], alpha: f32) -> Vec<f32> {
    const K: f32 = 60.0;
    let (rc, rt) = (crate::topn::ranks(cf), crate::topn::ranks(content));
    rc.iter()
        .zip(&rt)
        .map(|(&a, &b)| alpha / (K + a as f32 + 1.0) + (1.0 - alpha) / (K + b as f32 + 1.0))
        .collect()
}

/// Collaborative first: every item the collaborative model has evidence for
/// (score > 0), in its order; then the rest, in content order.
pub fn cascade(mut cf: Vec<f32>, mut content: Vec<f32>, keep: &dyn Fn(usize) -> bool) -> Vec<f32> {
    normalize_by_max(&mut cf, keep);
    normalize_by_max(&mut content, keep);
    cf.iter()
        .zip(&content)
        .map(|(&c, &t)| if c > 0.0 { 2.0 + c } else { t.clamp(0.0, 1.0) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_mixes_normalised_scores() {
        let s = weighted(
            vec![2.0, 1.0, 0.0],
            vec![0.0, 0.5, 1.0],
            0.6,
            0.0,
            &[0.0; 3],
            &|_| true,
        );
        for (got, want) in s.iter().zip([0.6, 0.5, 0.4]) {
            assert!((got - want).abs() < 1e-6, "{s:?}");
        }
        // With fading, an item with 50 users (= fade) gets half the content
        // share; one with none gets all of it.
        let s = weighted(
            vec![1.0, 1.0],
            vec![1.0, 0.0],
            0.6,
            50.0,
            &[0.0, 50.0],
            &|_| true,
        );
        assert!((s[0] - 1.0).abs() < 1e-6);
        assert!((s[1] - 0.8).abs() < 1e-6, "{s:?}");
    }

    #[test]
    fn cascade_puts_collaborative_evidence_first() {
        let s = cascade(vec![0.0, 0.1, 0.0], vec![1.0, 0.0, 0.5], &|_| true);
        let order = crate::topn::top_n(&s, 3, |_| true);
        assert_eq!(order.iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 0, 2]);
    }

    #[test]
    fn rank_fusion_prefers_items_both_rank_high() {
        let s = rank(&[3.0, 2.0, 1.0], &[1.0, 3.0, 2.0], 0.5);
        let order = crate::topn::top_n(&s, 3, |_| true);
        assert_eq!(order[0].0, 1);
    }
}
