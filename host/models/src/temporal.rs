//! Popularity at the time a user was active: every item scored by how many
//! interactions it drew in the periods (fixed-length buckets of days) in
//! which the user's own interactions fall, weighted by the share of the
//! user's interactions in each. People rate and buy what is current while
//! they are active (new releases, a season's products), which plain
//! popularity, counted over all time, misses.

use crate::sparse::Csr;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Temporal {
    /// users x buckets: the share of the user's interactions in each.
    users: Csr,
    /// items x buckets, dense: the item's interactions in each bucket.
    items: Vec<f32>,
    buckets: usize,
}

impl Temporal {
    /// `days`: users x items, the day (from the earliest interaction) of
    /// each interaction; `bucket_days`: the length of a period.
    pub fn train(days: &Csr, bucket_days: f32) -> Temporal {
        let bucket_days = bucket_days.max(1.0);
        let bucket = |d: f32| (d.max(0.0) / bucket_days) as usize;
        let buckets = days
            .values
            .iter()
            .map(|&d| bucket(d) + 1)
            .max()
            .unwrap_or(0);
        let mut items = vec![0f32; days.n_cols * buckets];
        let mut triplets = Vec::with_capacity(days.nnz());
        for u in 0..days.n_rows {
            let (cols, ds) = days.row(u);
            let share = 1.0 / cols.len().max(1) as f32;
            for (&j, &d) in cols.iter().zip(ds) {
                let b = bucket(d);
                items[j as usize * buckets + b] += 1.0;
                triplets.push((u as u32, b as u32, share));
            }
        }
        // Each item's row as shares of its interactions: when an item was
        // in use, not how much (the other models carry popularity).
        for row in items.chunks_mut(buckets.max(1)) {
            let total: f32 = row.iter().sum();
            if total > 0.0 {
                row.iter_mut().for_each(|v| *v /= total);
            }
        }
        Temporal {
            users: Csr::from_triplets(days.n_rows, buckets, triplets),
            items,
            buckets,
        }
    }

    /// Scores for the training row `own` (a user the snapshot has not seen
    /// has no period yet, and gets nothing).
    pub fn score(&self, own: Option<u32>, out: &mut [f32]) {
        self.score_only(own, None, out);
    }

    /// [`Self::score`] for just the items `only` lists, when given (`out[k]`
    /// is then item `only[k]`'s score).
    pub fn score_only(&self, own: Option<u32>, only: Option<&[u32]>, out: &mut [f32]) {
        let Some(u) = own.map(|u| u as usize).filter(|&u| u < self.users.n_rows) else {
            return;
        };
        let (bs, shares) = self.users.row(u);
        let item = |j: usize| -> Option<f32> {
            let row = self.items.get(j * self.buckets..(j + 1) * self.buckets)?;
            Some(
                bs.iter()
                    .zip(shares)
                    .map(|(&b, &s)| s * row[b as usize])
                    .sum::<f32>(),
            )
        };
        match only {
            None => {
                for (j, o) in out.iter_mut().enumerate() {
                    let Some(v) = item(j) else { break };
                    *o += v;
                }
            }
            Some(items) => {
                for (&j, o) in items.iter().zip(out.iter_mut()) {
                    if let Some(v) = item(j as usize) {
                        *o += v;
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
    fn items_busy_in_the_users_period_score_higher() {
        // Day 0-6 is week 0, day 7-13 week 1. User 0 is active in week 0,
        // user 1 in week 1. Item 0 is busy in week 0, item 1 in week 1.
        let days = Csr::from_triplets(
            3,
            3,
            vec![
                (0, 0, 1.0),
                (0, 2, 2.0),
                (1, 1, 8.0),
                (1, 2, 9.0),
                (2, 0, 3.0),
                (2, 1, 10.0),
            ],
        );
        let t = Temporal::train(&days, 7.0);
        let mut s = vec![0.0; 3];
        t.score(Some(0), &mut s);
        // All of item 0's interactions fall in week 0, half of item 2's,
        // none of item 1's.
        assert_eq!(s, vec![1.0, 0.0, 0.5]);
        let mut s = vec![0.0; 3];
        t.score(Some(1), &mut s);
        assert_eq!(s, vec![0.0, 1.0, 0.5]);
        let mut none = vec![0.0; 3];
        t.score(None, &mut none);
        assert_eq!(none, vec![0.0; 3]);
    }
}
