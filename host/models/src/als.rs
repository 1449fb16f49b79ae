//! Implicit-feedback matrix factorisation (Hu, Koren and Volinsky 2008),
//! solved by alternating least squares with a few conjugate-gradient steps
//! per row (Takács, Pilászy and Tikk 2011), as the `implicit` library does.
//! Every observed entry has preference 1 and confidence `alpha · x` (the
//! convention of the `implicit` library), every other entry preference 0
//! and confidence 1; the cost of an iteration grows linearly with the
//! interactions.

use crate::{Profile, sparse::Csr};

#[derive(Debug, Clone, Copy)]
pub struct AlsConfig {
    pub factors: usize,
    pub iterations: usize,
    pub regularization: f32,
    pub alpha: f32,
    /// Conjugate-gradient steps per row and iteration.
    pub cg_steps: usize,
    pub seed: u64,
}

impl Default for AlsConfig {
    /// The reference configuration of the evaluation protocol (the
    /// library's defaults otherwise).
    fn default() -> Self {
        Self {
            factors: 64,
            iterations: 15,
            regularization: 10.0,
            alpha: 1.0,
            cg_steps: 3,
            seed: 42,
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Als {
    pub factors: usize,
    /// users x factors, row-major.
    pub user_factors: Vec<f32>,
    /// items x factors, row-major.
    pub item_factors: Vec<f32>,
    /// YᵀY of the item factors and the training's λ and α, kept to fold
    /// in a user the training did not see.
    item_gramian: Vec<f32>,
    regularization: f32,
    alpha: f32,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `a · b` as eight interleaved partial sums, which the compiler keeps in
/// vector registers (the running sum of [`dot`] is one long dependency
/// chain). Used where a large catalogue's pool is scored; the whole-catalogue
/// path keeps [`dot`], so the small catalogue's figures stay bit for bit.
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let rest: f32 = dot(a8.remainder(), b8.remainder());
    for (x, y) in a8.zip(b8) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + rest
}

fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
}

/// A small deterministic generator for the initial factors.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn init(n: usize, k: usize, seed: u64) -> Vec<f32> {
    (0..n * k)
        .map(|i| {
            let u = (splitmix64(seed ^ i as u64) >> 40) as f32 / (1u64 << 24) as f32;
            (u - 0.5) * 0.02
        })
        .collect()
}

/// YᵀY (k x k, row-major).
fn gramian(y: &[f32], k: usize) -> Vec<f32> {
    let mut g = vec![0f32; k * k];
    for row in y.chunks_exact(k) {
        for a in 0..k {
            let ra = row[a];
            if ra != 0.0 {
                axpy(ra, row, &mut g[a * k..(a + 1) * k]);
            }
        }
    }
    g
}

/// Updates every row of `x` given the fixed factors `y` of the other side:
/// a few CG steps on (YᵀY + Yᵀ(C − I)Y + λI) x = YᵀC·1, warm-started from
/// the current x.
fn solve_side(m: &Csr, x: &mut [f32], y: &[f32], k: usize, config: &AlsConfig) {
    let yty = gramian(y, k);
    let (mut r, mut p, mut ap) = (vec![0f32; k], vec![0f32; k], vec![0f32; k]);
    let product = |v: &[f32], out: &mut [f32], cols: &[u32], vals: &[f32]| {
        for a in 0..k {
            out[a] = dot(&yty[a * k..(a + 1) * k], v) + config.regularization * v[a];
        }
        for (&i, &val) in cols.iter().zip(vals) {
            let yi = &y[i as usize * k..(i as usize + 1) * k];
            axpy((config.alpha * val - 1.0) * dot(yi, v), yi, out);
        }
    };
    for u in 0..m.n_rows {
        let (cols, vals) = m.row(u);
        let xu = &mut x[u * k..(u + 1) * k];
        if cols.is_empty() {
            xu.fill(0.0);
            continue;
        }
        // r = YᵀC·1 − A·x
        product(xu, &mut ap, cols, vals);
        r.iter_mut().zip(&ap).for_each(|(r, a)| *r = -a);
        for (&i, &val) in cols.iter().zip(vals) {
            let yi = &y[i as usize * k..(i as usize + 1) * k];
            axpy(config.alpha * val, yi, &mut r);
        }
        conjugate_gradient(
            |v, out| product(v, out, cols, vals),
            xu,
            &mut r,
            (&mut p, &mut ap),
            config.cg_steps,
        );
    }
}

/// At most `steps` of conjugate gradients on A·x = b (A symmetric positive
/// definite, given by its product `apply(v, out)`: out = A·v), from `x`
/// with its residual `r` = b − A·x. `scratch`: two vectors of x's length.
fn conjugate_gradient(
    apply: impl Fn(&[f32], &mut [f32]),
    x: &mut [f32],
    r: &mut [f32],
    (p, ap): (&mut [f32], &mut [f32]),
    steps: usize,
) {
    p.copy_from_slice(r);
    let mut rs_old = dot(r, r);
    for _ in 0..steps {
        if rs_old < 1e-20 {
            break;
        }
        apply(p, ap);
        let step = rs_old / dot(p, ap);
        axpy(step, p, x);
        axpy(-step, ap, r);
        let rs_new = dot(r, r);
        p.iter_mut()
            .zip(r.iter())
            .for_each(|(p, r)| *p = r + rs_new / rs_old * *p);
        rs_old = rs_new;
    }
}

impl Als {
    pub fn train(x: &Csr, config: AlsConfig) -> Als {
        let k = config.factors.max(1);
        let xt = x.transpose();
        let mut users = init(x.n_rows, k, config.seed);
        let mut items = init(x.n_cols, k, config.seed.wrapping_add(1));
        for _ in 0..config.iterations {
            solve_side(x, &mut users, &items, k, &config);
            solve_side(&xt, &mut items, &users, k, &config);
        }
        Als {
            factors: k,
            item_gramian: gramian(&items, k),
            user_factors: users,
            item_factors: items,
            regularization: config.regularization,
            alpha: config.alpha,
        }
    }

    /// The factors of a user from their profile alone: the exact solution
    /// of the user's half-step, (YᵀY + Yᵀ(C − I)Y + λI) x = YᵀC·1, by
    /// conjugate gradients run to k steps (the system is k x k).
    pub fn fold_in(&self, profile: &Profile) -> Vec<f32> {
        let k = self.factors;
        let n_items = self.item_factors.len() / k;
        let mut a = self.item_gramian.clone();
        (0..k).for_each(|d| a[d * k + d] += self.regularization);
        let mut b = vec![0f32; k];
        for &(i, w) in profile {
            if i as usize >= n_items {
                continue;
            }
            let yi = &self.item_factors[i as usize * k..(i as usize + 1) * k];
            let c = self.alpha * w;
            for d in 0..k {
                axpy((c - 1.0) * yi[d], yi, &mut a[d * k..(d + 1) * k]);
            }
            axpy(c, yi, &mut b);
        }
        // From x = 0 the residual is b.
        let mut x = vec![0f32; k];
        let (mut p, mut ap) = (vec![0f32; k], vec![0f32; k]);
        conjugate_gradient(
            |v, out| {
                for (d, o) in out.iter_mut().enumerate() {
                    *o = dot(&a[d * k..(d + 1) * k], v);
                }
            },
            &mut x,
            &mut b,
            (&mut p, &mut ap),
            k,
        );
        x
    }

    /// Scores for the training row `own`, or, for a user the training did
    /// not see, for the profile folded in ([`fold_in`](Self::fold_in)).
    pub fn score_or_fold_in(&self, profile: &Profile, own: Option<u32>, out: &mut [f32]) {
        self.score_or_fold_in_only(profile, own, None, out);
    }

    /// [`Self::score_or_fold_in`] for just the items `only` lists, when
    /// given (a large catalogue's candidates): `out[k]` is then item
    /// `only[k]`'s score.
    pub fn score_or_fold_in_only(
        &self,
        profile: &Profile,
        own: Option<u32>,
        only: Option<&[u32]>,
        out: &mut [f32],
    ) {
        let k = self.factors;
        let known = own.filter(|&u| (u as usize + 1) * k <= self.user_factors.len());
        if let Some(u) = known {
            let u = u as usize;
            return self.fill(&self.user_factors[u * k..(u + 1) * k], only, out);
        }
        if profile.is_empty() {
            return;
        }
        let xu = self.fold_in(profile);
        self.fill(&xu, only, out);
    }

    /// Scores for the training row `own`; a profile without one gets
    /// nothing (this model folds in no new users).
    pub fn score(&self, _profile: &Profile, own: Option<u32>, out: &mut [f32]) {
        let k = self.factors;
        let Some(u) = own.map(|u| u as usize) else {
            return;
        };
        if (u + 1) * k > self.user_factors.len() {
            return;
        }
        self.fill(&self.user_factors[u * k..(u + 1) * k], None, out);
    }

    /// `out[j] = xu · y_j` for every item, or `out[k] = xu · y_only[k]`.
    fn fill(&self, xu: &[f32], only: Option<&[u32]>, out: &mut [f32]) {
        let k = self.factors;
        match only {
            None => {
                for (o, yi) in out.iter_mut().zip(self.item_factors.chunks_exact(k)) {
                    *o = dot(xu, yi);
                }
            }
            Some(items) => {
                for (&j, o) in items.iter().zip(out.iter_mut()) {
                    let j = j as usize;
                    if let Some(yi) = self.item_factors.get(j * k..(j + 1) * k) {
                        *o = dot_lanes(xu, yi);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lane_dot_product_is_the_dot_product() {
        for n in [0, 5, 8, 32, 37] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.3).cos()).collect();
            assert!((dot_lanes(&a, &b) - dot(&a, &b)).abs() < 1e-5, "n = {n}");
        }
    }

    #[test]
    fn factors_reconstruct_a_block_structure() {
        // Users 0-2 like items 0-2, users 3-5 like items 3-5; user 0 has
        // not seen item 2, user 3 has not seen item 5.
        let mut t = Vec::new();
        for u in 0..6u32 {
            let block = if u < 3 { 0..3u32 } else { 3..6 };
            for i in block {
                if (u, i) != (0, 2) && (u, i) != (3, 5) {
                    t.push((u, i, 1.0));
                }
            }
        }
        let x = Csr::from_triplets(6, 6, t);
        let config = AlsConfig {
            factors: 2,
            iterations: 10,
            regularization: 0.1,
            alpha: 10.0,
            ..Default::default()
        };
        let als = Als::train(&x, config);
        let mut s = vec![0.0; 6];
        als.score(&[], Some(0), &mut s);
        assert!(s[2] > 0.5, "{s:?}");
        assert!(s[2] > 3.0 * s[5].abs().max(s[4].abs()), "{s:?}");
        let mut none = vec![0.0; 6];
        als.score(&[], None, &mut none);
        assert_eq!(none, vec![0.0; 6]);
        // User 0's row folded in from scratch ranks like the trained row.
        let mut folded = vec![0.0; 6];
        als.score_or_fold_in(&[(0, 1.0), (1, 1.0)], None, &mut folded);
        assert!(
            folded[2] > 3.0 * folded[5].abs().max(folded[4].abs()),
            "{folded:?}"
        );
    }
}
