//! Item-to-item transitions: two items are linked when someone interacted
//! with them within a few steps of each other in time. People rate, watch
//! and buy in sittings (a catalogue page, a season's releases, one topic),
//! so what others took up next to an item says more about what a user will
//! take up next to it than co-occurrence anywhere in two histories does.
//! A profile item counts more the closer it lies to the user's latest
//! interaction, so a user's current sitting steers what comes next.

use crate::{Profile, sparse::Csr};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Sequence {
    /// items x items: the number of histories in which the two items lie
    /// within `window` steps of each other, over √(n_i · n_j) (n: users
    /// per item), so popular items do not link to everything.
    pub links: Csr,
    /// users x items: the day of each training interaction.
    days: Csr,
    /// Each user's latest day.
    latest: Vec<f32>,
    recency_days: f32,
    floor: f32,
}

impl Sequence {
    /// `days`: users x items, the day of each interaction. `window`: how
    /// many steps apart two interactions may be and still link their
    /// items. A profile item `d` days before the user's latest weighs
    /// `floor + (1 − floor) · exp(−d / recency_days)`.
    pub fn train(days: &Csr, window: usize, recency_days: f32, floor: f32) -> Sequence {
        let mut users_per_item = vec![0f32; days.n_cols];
        for &j in &days.indices {
            users_per_item[j as usize] += 1.0;
        }
        let mut triplets = Vec::with_capacity(days.nnz() * 2 * window);
        let mut latest = vec![0f32; days.n_rows];
        let mut order: Vec<(f32, u32)> = Vec::new();
        for (u, last) in latest.iter_mut().enumerate() {
            let (items, ds) = days.row(u);
            order.clear();
            order.extend(ds.iter().copied().zip(items.iter().copied()));
            // By time, ties to the lower item, so the same data always
            // gives the same links.
            order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            *last = order.last().map_or(0.0, |o| o.0);
            for (k, &(_, i)) in order.iter().enumerate() {
                for &(_, j) in order.iter().skip(k + 1).take(window) {
                    triplets.push((i, j, 1.0));
                    triplets.push((j, i, 1.0));
                }
            }
        }
        let mut links = Csr::from_triplets(days.n_cols, days.n_cols, triplets);
        for i in 0..links.n_rows {
            let span = links.indptr[i]..links.indptr[i + 1];
            let ni = users_per_item[i].max(1.0).sqrt();
            for at in span {
                let nj = users_per_item[links.indices[at] as usize].max(1.0).sqrt();
                links.values[at] /= ni * nj;
            }
        }
        Sequence {
            links,
            days: days.clone(),
            latest,
            recency_days: recency_days.max(f32::MIN_POSITIVE),
            floor: floor.clamp(0.0, 1.0),
        }
    }

    /// How much profile item `i` counts for the training row `own`: items
    /// the snapshot has no time for (a user or an interaction newer than
    /// the training) are the latest, and count fully.
    fn recency(&self, own: Option<usize>, i: u32) -> f32 {
        let Some(u) = own else { return 1.0 };
        let (items, ds) = self.days.row(u);
        match items.binary_search(&i) {
            Ok(at) => {
                let before = (self.latest[u] - ds[at]).max(0.0);
                self.floor + (1.0 - self.floor) * (-before / self.recency_days).exp()
            }
            Err(_) => 1.0,
        }
    }

    pub fn score(&self, profile: &Profile, own: Option<u32>, out: &mut [f32]) {
        let own = own.map(|u| u as usize).filter(|&u| u < self.days.n_rows);
        for &(i, w) in profile {
            if i as usize >= self.links.n_rows {
                continue;
            }
            let w = w * self.recency(own, i);
            let (js, vs) = self.links.row(i as usize);
            for (&j, &v) in js.iter().zip(vs) {
                out[j as usize] += w * v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// User 0 took items 0, 1, 2, 3 on days 0..3; user 1 items 0 and 3 on
    /// days 0 and 50.
    fn days() -> Csr {
        Csr::from_triplets(
            2,
            5,
            vec![
                (0, 0, 0.0),
                (0, 1, 1.0),
                (0, 2, 2.0),
                (0, 3, 3.0),
                (1, 0, 0.0),
                (1, 3, 50.0),
            ],
        )
    }

    #[test]
    fn items_taken_close_together_are_linked() {
        let s = Sequence::train(&days(), 1, 7.0, 1.0);
        let mut out = vec![0.0; 5];
        s.score(&[(1, 1.0)], None, &mut out);
        // Item 1's neighbours in user 0's history are 0 and 2, each taken
        // by n users: 1 / √(n_1 · n_j).
        assert!((out[0] - 1.0 / 2f32.sqrt()).abs() < 1e-6, "{out:?}");
        assert!((out[2] - 1.0).abs() < 1e-6, "{out:?}");
        assert_eq!((out[1], out[3], out[4]), (0.0, 0.0, 0.0));
        // With a wider window item 3, two steps away, joins in.
        let wide = Sequence::train(&days(), 2, 7.0, 1.0);
        let mut out = vec![0.0; 5];
        wide.score(&[(1, 1.0)], None, &mut out);
        assert!(out[3] > 0.0);
    }

    #[test]
    fn the_latest_profile_items_steer() {
        let s = Sequence::train(&days(), 1, 1.0, 0.0);
        // User 1: item 3 (day 50, the latest) counts fully, item 0 (50
        // days before) next to nothing. Item 3 links to 2 (user 0) and 0
        // (user 1); item 0 to 1 and 3.
        let mut out = vec![0.0; 5];
        s.score(&[(0, 1.0), (3, 1.0)], Some(1), &mut out);
        assert!(out[2] > 0.1, "{out:?}");
        assert!(out[1] < 1e-6, "{out:?}");
        // Without the user's times every profile item counts fully.
        let mut out = vec![0.0; 5];
        s.score(&[(0, 1.0), (3, 1.0)], None, &mut out);
        assert!(out[1] > 0.1, "{out:?}");
    }
}
