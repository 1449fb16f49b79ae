//! Compressed sparse rows: the interaction matrix (users x items) and its
//! transpose. Interaction data is >90 % empty; rows are what every model
//! walks.

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Csr {
    pub n_rows: usize,
    pub n_cols: usize,
    /// Row r spans `indices[indptr[r]..indptr[r + 1]]`.
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    /// Builds from (row, col, value) triplets; duplicates are summed, and
    /// columns within a row come out sorted.
    pub fn from_triplets(n_rows: usize, n_cols: usize, mut triplets: Vec<(u32, u32, f32)>) -> Self {
        triplets.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut indptr = vec![0usize; n_rows + 1];
        let mut indices = Vec::with_capacity(triplets.len());
        let mut values: Vec<f32> = Vec::with_capacity(triplets.len());
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v) in triplets {
            assert!(
                (r as usize) < n_rows && (c as usize) < n_cols,
                "triplet out of range"
            );
            if last == Some((r, c)) {
                *values.last_mut().expect("a previous value") += v;
                continue;
            }
            last = Some((r, c));
            indptr[r as usize + 1] += 1;
            indices.push(c);
            values.push(v);
        }
        for r in 0..n_rows {
            indptr[r + 1] += indptr[r];
        }
        Self {
            n_rows,
            n_cols,
            indptr,
            indices,
            values,
        }
    }

    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let span = self.indptr[r]..self.indptr[r + 1];
        (&self.indices[span.clone()], &self.values[span])
    }

    pub fn row_len(&self, r: usize) -> usize {
        self.indptr[r + 1] - self.indptr[r]
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    pub fn transpose(&self) -> Csr {
        let mut counts = vec![0usize; self.n_cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for c in 0..self.n_cols {
            counts[c + 1] += counts[c];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        for r in 0..self.n_rows {
            let (cols, vals) = self.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                let at = next[c as usize];
                indices[at] = r as u32;
                values[at] = v;
                next[c as usize] += 1;
            }
        }
        Csr {
            n_rows: self.n_cols,
            n_cols: self.n_rows,
            indptr,
            indices,
            values,
        }
    }

    /// Each row cut to its `m` largest values (ties to the lower column),
    /// columns still in order.
    pub fn keep_largest_per_row(&self, m: usize) -> Csr {
        let mut triplets = Vec::new();
        for r in 0..self.n_rows {
            let (cols, vals) = self.row(r);
            let pool: Vec<(usize, f32)> = cols
                .iter()
                .map(|&c| c as usize)
                .zip(vals.iter().copied())
                .collect();
            triplets.extend(
                crate::topn::best(pool, m)
                    .into_iter()
                    .map(|(c, v)| (r as u32, c as u32, v)),
            );
        }
        Csr::from_triplets(self.n_rows, self.n_cols, triplets)
    }

    /// Each row scaled to unit Euclidean length (empty rows stay empty).
    pub fn l2_normalized_rows(&self) -> Csr {
        let mut out = self.clone();
        for r in 0..self.n_rows {
            let span = self.indptr[r]..self.indptr[r + 1];
            let norm = out.values[span.clone()]
                .iter()
                .map(|v| v * v)
                .sum::<f32>()
                .sqrt();
            if norm > 0.0 {
                out.values[span].iter_mut().for_each(|v| *v /= norm);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triplets_sum_duplicates_and_transpose_round_trips() {
        let m = Csr::from_triplets(
            2,
            3,
            vec![(1, 2, 1.0), (0, 1, 2.0), (1, 2, 0.5), (1, 0, 3.0)],
        );
        assert_eq!(m.row(0), (&[1u32][..], &[2.0f32][..]));
        assert_eq!(m.row(1), (&[0u32, 2][..], &[3.0f32, 1.5][..]));
        let t = m.transpose();
        assert_eq!((t.n_rows, t.n_cols), (3, 2));
        assert_eq!(t.row(2), (&[1u32][..], &[1.5f32][..]));
        let back = t.transpose();
        assert_eq!(back.indices, m.indices);
        assert_eq!(back.values, m.values);
    }

    #[test]
    fn rows_keep_their_largest_values_in_column_order() {
        let m = Csr::from_triplets(
            2,
            4,
            vec![
                (0, 0, 1.0),
                (0, 1, 3.0),
                (0, 2, 2.0),
                (0, 3, 3.0),
                (1, 2, 5.0),
            ],
        );
        let kept = m.keep_largest_per_row(2);
        assert_eq!(kept.row(0), (&[1u32, 3][..], &[3.0f32, 3.0][..]));
        assert_eq!(kept.row(1), (&[2u32][..], &[5.0f32][..]));
    }

    #[test]
    fn normalized_rows_have_unit_length() {
        let m = Csr::from_triplets(2, 2, vec![(0, 0, 3.0), (0, 1, 4.0)]).l2_normalized_rows();
        assert_eq!(m.row(0).1, &[0.6, 0.8]);
        assert_eq!(m.row_len(1), 0);
    }
}
