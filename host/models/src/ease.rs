//! EASE: "Embarrassingly Shallow Autoencoders for Sparse Data" (Steck,
//! WWW 2019). An item-item weight matrix B with a zero diagonal, in closed
//! form: P = (XᵀX + Λ)⁻¹ (Λ = λI, or more on popular items), B = I −
//! P·diag(1/diag(P)). A user's scores are their interaction row times B.
//! The best of the classic models on
//! MovieLens-sized catalogues; one dense n_items² inverse, so it is trained
//! only up to a configured catalogue size.

use faer::{Mat, linalg::solvers::DenseSolveCore};
use ndarray::Array2;

use crate::Profile;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Ease {
    /// Row i: how much interacting with item i raises every item's score.
    pub weights: Array2<f32>,
}

impl Ease {
    /// `gram` is XᵀX (items x items). `dropout` p > 0 adds p / (1 − p) ·
    /// XᵀX_ii to each item's λ, the emphasized denoising variant (EDLAE,
    /// Steck 2020): popular items are regularised more, which keeps the
    /// model from leaning on them to reconstruct every row.
    pub fn train(gram: &Array2<f32>, lambda: f32, dropout: f32) -> Option<Ease> {
        let n = gram.nrows();
        let p = f64::from(dropout.clamp(0.0, 0.95));
        let emphasis = p / (1.0 - p);
        let g = Mat::<f64>::from_fn(n, n, |i, j| {
            let g = f64::from(gram[(i, j)]);
            if i == j {
                g + f64::from(lambda) + emphasis * g
            } else {
                g
            }
        });
        // XᵀX + λI is symmetric positive definite for λ > 0: Cholesky.
        let p = g.llt(faer::Side::Lower).ok()?.inverse();
        let weights = Array2::from_shape_fn((n, n), |(i, j)| {
            if i == j {
                0.0
            } else {
                (-p[(i, j)] / p[(j, j)]) as f32
            }
        });
        Some(Ease { weights })
    }

    pub fn score(&self, profile: &Profile, out: &mut [f32]) {
        for &(i, w) in profile {
            let row = self.weights.row(i as usize);
            crate::simd::axpy(out, w, row.as_slice().expect("rows are contiguous"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn co_occurring_items_score_each_other_and_diagonal_is_zero() {
        // Items 0 and 1 always together; item 2 alone.
        let gram = ndarray::array![[10.0f32, 10.0, 0.0], [10.0, 10.0, 0.0], [0.0, 0.0, 5.0]];
        let e = Ease::train(&gram, 1.0, 0.0).unwrap();
        assert_eq!(e.weights[(0, 0)], 0.0);
        assert!(e.weights[(0, 1)] > 0.4, "{}", e.weights[(0, 1)]);
        assert!(e.weights[(0, 2)].abs() < 1e-6);
        let mut out = vec![0.0; 3];
        e.score(&[(0, 1.0)], &mut out);
        assert!(out[1] > out[2]);
    }
}
