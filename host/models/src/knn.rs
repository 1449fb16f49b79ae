//! Neighbourhood models with cosine similarity: item-based (an item's
//! nearest items, precomputed) and user-based (the profile's nearest users,
//! found per request through the item→users index).

use ndarray::Array2;

use crate::{
    Profile,
    sparse::Csr,
    topn::{best, top_n},
};

/// The item-item co-occurrence matrix XᵀX, dense (items x items).
pub fn gram(x: &Csr) -> Array2<f32> {
    let mut g = Array2::<f32>::zeros((x.n_cols, x.n_cols));
    for u in 0..x.n_rows {
        let (items, vals) = x.row(u);
        for (&i, &vi) in items.iter().zip(vals) {
            let mut row = g.row_mut(i as usize);
            for (&j, &vj) in items.iter().zip(vals) {
                row[j as usize] += vi * vj;
            }
        }
    }
    g
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct ItemKnn {
    neighbours: Neighbours,
}

/// Item i's neighbours and their cosine similarity, in whichever form
/// scores faster: with every positive similarity kept (the default) most
/// pairs of a catalogue like MovieLens are neighbours, and a dense row is
/// a straight multiply-add the compiler vectorises where a sparse row is a
/// scatter through an index (twice the bytes and no SIMD).
#[derive(serde::Serialize, serde::Deserialize)]
enum Neighbours {
    Sparse(Csr),
    Dense(Array2<f32>),
}

impl ItemKnn {
    /// `k`: neighbours kept per item (`None`: all with a positive similarity).
    pub fn train(gram: &Array2<f32>, k: Option<usize>) -> ItemKnn {
        let n = gram.nrows();
        let norms: Vec<f32> = (0..n).map(|i| gram[(i, i)].sqrt()).collect();
        let mut triplets = Vec::new();
        let mut sims = vec![0f32; n];
        for i in 0..n {
            if norms[i] == 0.0 {
                continue;
            }
            for j in 0..n {
                sims[j] = if j == i || norms[j] == 0.0 {
                    0.0
                } else {
                    gram[(i, j)] / (norms[i] * norms[j])
                };
            }
            let keep = top_n(&sims, k.unwrap_or(n), |j| sims[j] > 0.0);
            triplets.extend(keep.into_iter().map(|(j, s)| (i as u32, j as u32, s)));
        }
        // Dense once over a quarter of the pairs are neighbours: from there the
        // dense matrix (4 bytes a pair) is at most twice the sparse one (8
        // bytes an entry: index and value) and scores several times faster.
        let neighbours = if triplets.len() > n * n / 4 {
            let mut dense = Array2::<f32>::zeros((n, n));
            for (i, j, s) in triplets {
                dense[(i as usize, j as usize)] = s;
            }
            Neighbours::Dense(dense)
        } else {
            Neighbours::Sparse(Csr::from_triplets(n, n, triplets))
        };
        ItemKnn { neighbours }
    }

    /// Cosine neighbours straight from the interactions, never holding the
    /// items x items matrix: each item's co-occurrences are summed in one
    /// dense scratch row (through the item's users and their rows), the
    /// best `k` kept, the row cleared. Memory grows with items x k, time
    /// with Σ over users of their row length squared (what XᵀX costs too);
    /// items are shared out over `threads` workers.
    pub fn train_sparse(x: &Csr, k: usize, threads: usize) -> ItemKnn {
        let n = x.n_cols;
        let item_users = x.transpose();
        let norms: Vec<f32> = (0..n)
            .map(|i| {
                item_users
                    .row(i)
                    .1
                    .iter()
                    .map(|v| v * v)
                    .sum::<f32>()
                    .sqrt()
            })
            .collect();
        let threads = threads.clamp(1, 64);
        let rows: Vec<Vec<(u32, u32, f32)>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let (item_users, norms) = (&item_users, &norms);
                    s.spawn(move || {
                        let mut acc = vec![0f32; n];
                        let mut touched: Vec<u32> = Vec::new();
                        let mut out = Vec::new();
                        // Interleaved, so popular items (costly rows) are shared.
                        for i in (t..n).step_by(threads) {
                            if norms[i] == 0.0 {
                                continue;
                            }
                            let (users, weights) = item_users.row(i);
                            for (&u, &wu) in users.iter().zip(weights) {
                                let (js, vs) = x.row(u as usize);
                                for (&j, &vj) in js.iter().zip(vs) {
                                    let a = &mut acc[j as usize];
                                    if *a == 0.0 {
                                        touched.push(j);
                                    }
                                    *a += wu * vj;
                                }
                            }
                            let sims: Vec<(usize, f32)> = touched
                                .iter()
                                .map(|&j| j as usize)
                                .filter(|&j| j != i)
                                .map(|j| (j, acc[j] / (norms[i] * norms[j])))
                                .filter(|&(_, s)| s > 0.0)
                                .collect();
                            for j in touched.drain(..) {
                                acc[j as usize] = 0.0;
                            }
                            out.extend(
                                best(sims, k)
                                    .into_iter()
                                    .map(|(j, s)| (i as u32, j as u32, s)),
                            );
                        }
                        out
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a neighbour worker does not panic"))
                .collect()
        });
        let triplets: Vec<(u32, u32, f32)> = rows.into_iter().flatten().collect();
        ItemKnn {
            neighbours: Neighbours::Sparse(Csr::from_triplets(n, n, triplets)),
        }
    }

    /// Whether the neighbours are kept as dense rows (a small catalogue).
    pub fn is_dense(&self) -> bool {
        matches!(self.neighbours, Neighbours::Dense(_))
    }

    pub fn score(&self, profile: &Profile, out: &mut [f32]) {
        for &(i, w) in profile {
            match &self.neighbours {
                Neighbours::Sparse(rows) => {
                    let (js, sims) = rows.row(i as usize);
                    for (&j, &s) in js.iter().zip(sims) {
                        out[j as usize] += w * s;
                    }
                }
                Neighbours::Dense(rows) => {
                    let row = rows.row(i as usize);
                    crate::simd::axpy(out, w, row.as_slice().expect("rows are contiguous"));
                }
            }
        }
    }

    /// Item j's similarity to item i, if j is one of i's neighbours.
    pub fn similarity(&self, i: usize, j: usize) -> Option<f32> {
        match &self.neighbours {
            Neighbours::Sparse(rows) => {
                let (js, sims) = rows.row(i);
                js.binary_search(&(j as u32)).ok().map(|at| sims[at])
            }
            Neighbours::Dense(rows) => Some(rows[(i, j)]).filter(|&s| s > 0.0),
        }
    }

    /// Item i's similarity to every item (0 where not a neighbour).
    pub fn similarities(&self, i: usize, out: &mut [f32]) {
        match &self.neighbours {
            Neighbours::Sparse(rows) => {
                let (js, sims) = rows.row(i);
                for (&j, &s) in js.iter().zip(sims) {
                    out[j as usize] = s;
                }
            }
            Neighbours::Dense(rows) => {
                out.copy_from_slice(rows.row(i).as_slice().expect("rows are contiguous"));
            }
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct UserKnn {
    k: usize,
    /// Neighbour similarities are raised to this power before they weight
    /// the neighbours' items ("case amplification", Breese et al. 1998):
    /// the closest neighbours count for more.
    amplification: f32,
    /// users x items, the training confidences.
    x: Csr,
    /// items x users, rows of X scaled to unit length (cosine numerators).
    item_users: Csr,
}

impl UserKnn {
    /// `max_users_per_item`: in a large catalogue, each item reaches at
    /// most this many users when neighbours are sought (those for whom it
    /// weighs most: short histories), so a request's cost no longer grows
    /// with the popularity of the items in its profile.
    pub fn train(
        x: &Csr,
        k: usize,
        amplification: f32,
        max_users_per_item: Option<usize>,
    ) -> UserKnn {
        let mut item_users = x.l2_normalized_rows().transpose();
        if let Some(m) = max_users_per_item {
            item_users = item_users.keep_largest_per_row(m.max(1));
        }
        UserKnn {
            k: k.max(1),
            amplification,
            x: x.clone(),
            item_users,
        }
    }

    /// `own`: the profile's row in the training data, left out of the
    /// neighbours (a user is not their own neighbour). `max_visits`: in a
    /// large catalogue, the neighbour search visits at most about this many
    /// (item, user) pairs, each profile item an equal share of its users
    /// (the first of its row, in user order), so a long history costs no
    /// more than a short one.
    pub fn score(
        &self,
        profile: &Profile,
        own: Option<u32>,
        max_visits: Option<usize>,
        out: &mut [f32],
    ) {
        let norm = profile.iter().map(|&(_, w)| w * w).sum::<f32>().sqrt();
        if norm == 0.0 {
            return;
        }
        let per_item = max_visits.map_or(usize::MAX, |m| (m / profile.len()).max(1));
        // Only the users who share an item with the profile are candidates:
        // the neighbours are picked among them, not among every user.
        let mut sims = vec![0f32; self.x.n_rows];
        let mut touched: Vec<u32> = Vec::new();
        for &(i, w) in profile {
            if i as usize >= self.item_users.n_rows {
                continue;
            }
            let (users, vals) = self.item_users.row(i as usize);
            let reach = users.len().min(per_item);
            for (&v, &xv) in users[..reach].iter().zip(&vals[..reach]) {
                let add = w / norm * xv;
                if add <= 0.0 {
                    continue;
                }
                // Positive additions only: a user is touched once.
                let s = &mut sims[v as usize];
                if *s == 0.0 {
                    touched.push(v);
                }
                *s += add;
            }
        }
        let candidates: Vec<(usize, f32)> = touched
            .into_iter()
            .filter(|&v| Some(v) != own)
            .map(|v| (v as usize, sims[v as usize]))
            .filter(|&(_, s)| s > 0.0)
            .collect();
        for (v, s) in best(candidates, self.k) {
            let s = s.powf(self.amplification);
            let (items, vals) = self.x.row(v);
            for (&j, &xj) in items.iter().zip(vals) {
                out[j as usize] += s * xj;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Csr {
        // users 0,1 like items 0,1; user 2 likes items 2,3; user 3 likes 0,1,2.
        let t = vec![
            (0, 0, 1.0),
            (0, 1, 1.0),
            (1, 0, 1.0),
            (1, 1, 1.0),
            (2, 2, 1.0),
            (2, 3, 1.0),
            (3, 0, 1.0),
            (3, 1, 1.0),
            (3, 2, 1.0),
        ];
        Csr::from_triplets(4, 4, t)
    }

    #[test]
    fn item_cosine_is_hand_computed() {
        let knn = ItemKnn::train(&gram(&data()), None);
        let mut s = vec![0.0; 4];
        knn.similarities(0, &mut s);
        // items 0 and 1 share all 3 users: cos = 3/(√3·√3) = 1.
        assert!((s[1] - 1.0).abs() < 1e-6);
        // items 0 and 2 share user 3: 1/(√3·√2).
        assert!((s[2] - 1.0 / (3f32.sqrt() * 2f32.sqrt())).abs() < 1e-6);
        assert_eq!(s[3], 0.0);
        assert_eq!(s[0], 0.0, "an item is not its own neighbour");
        let top1 = ItemKnn::train(&gram(&data()), Some(1));
        let mut s = vec![0.0; 4];
        top1.similarities(0, &mut s);
        assert!(s[1] > 0.0 && s[2] == 0.0, "only the nearest is kept: {s:?}");
        assert!(matches!(top1.neighbours, Neighbours::Sparse(_)));
        assert!(matches!(knn.neighbours, Neighbours::Dense(_)));
    }

    #[test]
    fn sparse_training_keeps_the_same_best_neighbours_as_the_gram() {
        // A few hundred users over 60 items, deterministic.
        let mut t = Vec::new();
        for u in 0..300u32 {
            for step in 0..(3 + u % 11) {
                let i = (u * 7 + step * step * 13 + step) % 60;
                t.push((u, i, 1.0 + (step % 3) as f32 * 0.5));
            }
        }
        let x = Csr::from_triplets(300, 60, t);
        let dense = ItemKnn::train(&gram(&x), Some(5));
        for threads in [1, 3] {
            let sparse = ItemKnn::train_sparse(&x, 5, threads);
            assert!(matches!(sparse.neighbours, Neighbours::Sparse(_)));
            for i in 0..60 {
                let (mut a, mut b) = (vec![0f32; 60], vec![0f32; 60]);
                dense.similarities(i, &mut a);
                sparse.similarities(i, &mut b);
                for j in 0..60 {
                    assert!(
                        (a[j] - b[j]).abs() < 1e-5,
                        "item {i}, {j}: {} vs {}",
                        a[j],
                        b[j]
                    );
                }
            }
        }
    }

    #[test]
    fn user_knn_recommends_what_similar_users_liked() {
        let knn = UserKnn::train(&data(), 1, 1.0, None);
        // A new user who liked item 0 is nearest to users 0/1 (cos 1/√2),
        // and they liked item 1.
        let mut out = vec![0.0; 4];
        knn.score(&[(0, 1.0)], None, None, &mut out);
        assert!(out[1] > 0.0 && out[2] == 0.0 && out[3] == 0.0, "{out:?}");
        // User 2 is excluded from their own neighbourhood.
        let mut own = vec![0.0; 4];
        knn.score(&[(2, 1.0), (3, 1.0)], Some(2), None, &mut own);
        assert!(own[0] > 0.0, "falls through to user 3: {own:?}");
    }

    #[test]
    fn user_knn_visits_at_most_its_share_of_each_items_users() {
        let knn = UserKnn::train(&data(), 3, 1.0, None);
        // Item 0's users are 0, 1 and 3; with one visit per item only
        // user 0 is reached, and user 0 liked items 0 and 1 only.
        let mut out = vec![0.0; 4];
        knn.score(&[(0, 1.0)], None, Some(1), &mut out);
        assert!(out[1] > 0.0 && out[2] == 0.0, "{out:?}");
        let mut unbounded = vec![0.0; 4];
        knn.score(&[(0, 1.0)], None, None, &mut unbounded);
        assert!(unbounded[2] > 0.0, "user 3 liked item 2: {unbounded:?}");
    }
}
