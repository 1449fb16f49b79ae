//! The n best of a score vector: a partial selection, then a sort of just
//! those n. Ties go to the lower index, so results are deterministic.

use std::cmp::Ordering;

fn better(a: (usize, f32), b: (usize, f32)) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// Indices of the `n` highest scores among those `keep` accepts, best first.
pub fn top_n(scores: &[f32], n: usize, keep: impl Fn(usize) -> bool) -> Vec<(usize, f32)> {
    let pool: Vec<(usize, f32)> = scores
        .iter()
        .copied()
        .enumerate()
        .filter(|&(i, s)| !s.is_nan() && keep(i))
        .collect();
    best(pool, n)
}

/// The `n` best of (index, score) pairs, best first, ties to the lower
/// index: [`top_n`] for candidates that are already gathered.
pub fn best(mut pool: Vec<(usize, f32)>, n: usize) -> Vec<(usize, f32)> {
    if n == 0 {
        return Vec::new();
    }
    if pool.len() > n {
        pool.select_nth_unstable_by(n - 1, |&a, &b| better(a, b));
        pool.truncate(n);
    }
    pool.sort_unstable_by(|&a, &b| better(a, b));
    pool
}

/// Rank of every entry (0 = best), ties to the lower index.
pub fn ranks(scores: &[f32]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| better((a, scores[a]), (b, scores[b])));
    let mut rank = vec![0u32; scores.len()];
    for (r, i) in order.into_iter().enumerate() {
        rank[i] = r as u32;
    }
    rank
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_first_ties_to_lower_index_filtered() {
        let s = [0.5, 0.9, 0.5, 0.1, 0.9];
        assert_eq!(top_n(&s, 3, |_| true), vec![(1, 0.9), (4, 0.9), (0, 0.5)]);
        assert_eq!(top_n(&s, 2, |i| i != 1), vec![(4, 0.9), (0, 0.5)]);
        assert_eq!(top_n(&s, 10, |_| true).len(), 5);
        assert_eq!(ranks(&s), vec![2, 0, 3, 4, 1]);
    }
}
