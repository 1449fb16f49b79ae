//! What each kind of rule may do, and applying a decision to the list.
//! The host enforces exactly this; the native harness runs the same code, so
//! a rule that passes its unit tests cannot break its contract in production
//! in a way the tests did not show.

use crate::{Kind, Outcome, Placement};

/// Most placements one promote rule may return; the host's own caps (per
/// rule and per request) are lower.
pub const MAX_PLACEMENTS: usize = 1000;

/// Why an outcome was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    /// The outcome's variant is not the one the rule's kind returns.
    WrongKind {
        /// The rule's kind.
        expected: Kind,
        /// The outcome returned: `dropped`, `rescored`, `reordered` or
        /// `promoted`.
        got: &'static str,
    },
    /// A position past the end of the list (filter, rerank), or a
    /// placement at position 0 (promote).
    PositionOutOfRange(u32),
    /// A position named twice (filter, rerank).
    DuplicatePosition(u32),
    /// Not one entry per candidate (boost, rerank).
    WrongLength {
        /// The number of candidates.
        expected: usize,
        /// The number of entries returned.
        got: usize,
    },
    /// A score that is not finite or is negative (boost).
    BadScore {
        /// The candidate's position (0 is the best).
        position: usize,
        /// The score returned.
        score: f64,
    },
    /// More placements than [`MAX_PLACEMENTS`] (promote).
    TooManyPlacements(usize),
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::WrongKind { expected, got } => {
                write!(f, "a {} rule returned a {got} outcome", expected.as_str())
            }
            Violation::PositionOutOfRange(p) => write!(f, "position {p} is out of range"),
            Violation::DuplicatePosition(p) => write!(f, "position {p} appears twice"),
            Violation::WrongLength { expected, got } => {
                write!(f, "expected {expected} entries, got {got}")
            }
            Violation::BadScore { position, score } => write!(
                f,
                "score {score} at position {position} is not a finite non-negative number"
            ),
            Violation::TooManyPlacements(n) => {
                write!(f, "{n} placements exceed the limit of {MAX_PLACEMENTS}")
            }
        }
    }
}

/// What a rule changed, for the trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effect {
    /// The ids a filter removed, in list order.
    pub dropped: Vec<i64>,
    /// (item id, score before, score after), for changed scores only.
    pub rescored: Vec<(i64, f64, f64)>,
    /// (item id, position before, position after), for moved items only.
    pub moved: Vec<(i64, usize, usize)>,
    /// What a promote rule asked for, in its order (the host places them
    /// after every other rule ran).
    pub promoted: Vec<Placement>,
}

/// The list between rules: each candidate's id, score and row (where its
/// inputs live in the columns the request was built with).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct List {
    /// The candidates' ids, best first.
    pub ids: Vec<i64>,
    /// Their scores, in the same order.
    pub scores: Vec<f64>,
    /// For each, its row in the columns the request was built with.
    pub rows: Vec<usize>,
}

impl List {
    /// A list whose rows are its positions.
    pub fn new(ids: Vec<i64>, scores: Vec<f64>) -> Self {
        let rows = (0..ids.len()).collect();
        Self { ids, scores, rows }
    }

    /// How many candidates.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no candidates.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// (id, score) of each candidate, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.ids.iter().copied().zip(self.scores.iter().copied())
    }

    /// Keeps the positions in `order`, in that order.
    pub fn reorder(&mut self, order: &[usize]) {
        fn pick<T: Copy>(v: &[T], order: &[usize]) -> Vec<T> {
            order.iter().map(|&i| v[i]).collect()
        }
        self.ids = pick(&self.ids, order);
        self.scores = pick(&self.scores, order);
        self.rows = pick(&self.rows, order);
    }

    /// Orders by score, highest first; ties keep their current order.
    pub fn sort_by_score(&mut self) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by(|&a, &b| self.scores[b].total_cmp(&self.scores[a]));
        if order.iter().enumerate().any(|(pos, &i)| pos != i) {
            self.reorder(&order);
        }
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Dropped(_) => "dropped",
        Outcome::Rescored(_) => "rescored",
        Outcome::Reordered(_) => "reordered",
        Outcome::Promoted(_) => "promoted",
    }
}

/// Checks `outcome` against the contract of `kind` and applies it. On a
/// violation, `list` is left untouched. A promote outcome leaves the list
/// as it is and returns its placements in the effect.
pub fn apply(kind: Kind, list: &mut List, outcome: Outcome) -> Result<Effect, Violation> {
    let n = list.len();
    match (kind, outcome) {
        (Kind::Filter, Outcome::Dropped(positions)) => {
            let mut drop = vec![false; n];
            for &p in &positions {
                let slot = drop
                    .get_mut(p as usize)
                    .ok_or(Violation::PositionOutOfRange(p))?;
                if *slot {
                    return Err(Violation::DuplicatePosition(p));
                }
                *slot = true;
            }
            let dropped = (0..n).filter(|&i| drop[i]).map(|i| list.ids[i]).collect();
            let keep: Vec<usize> = (0..n).filter(|&i| !drop[i]).collect();
            if keep.len() != n {
                list.reorder(&keep);
            }
            Ok(Effect {
                dropped,
                ..Effect::default()
            })
        }
        (Kind::Boost, Outcome::Rescored(scores)) => {
            if scores.len() != n {
                return Err(Violation::WrongLength {
                    expected: n,
                    got: scores.len(),
                });
            }
            if let Some((position, &score)) = scores
                .iter()
                .enumerate()
                .find(|(_, s)| !s.is_finite() || **s < 0.0)
            {
                return Err(Violation::BadScore { position, score });
            }
            let rescored = (0..n)
                .filter(|&i| scores[i] != list.scores[i])
                .map(|i| (list.ids[i], list.scores[i], scores[i]))
                .collect();
            list.scores = scores;
            // A boost changes the ranking: re-sort (stable, so equal scores
            // keep their order).
            let before = list.ids.clone();
            list.sort_by_score();
            Ok(Effect {
                rescored,
                moved: moves(&before, &list.ids),
                ..Effect::default()
            })
        }
        (Kind::Rerank, Outcome::Reordered(order)) => {
            if order.len() != n {
                return Err(Violation::WrongLength {
                    expected: n,
                    got: order.len(),
                });
            }
            let mut seen = vec![false; n];
            for &p in &order {
                let slot = seen
                    .get_mut(p as usize)
                    .ok_or(Violation::PositionOutOfRange(p))?;
                if *slot {
                    return Err(Violation::DuplicatePosition(p));
                }
                *slot = true;
            }
            let before = list.ids.clone();
            let order: Vec<usize> = order.into_iter().map(|p| p as usize).collect();
            list.reorder(&order);
            Ok(Effect {
                moved: moves(&before, &list.ids),
                ..Effect::default()
            })
        }
        (Kind::Promote, Outcome::Promoted(placements)) => {
            if placements.len() > MAX_PLACEMENTS {
                return Err(Violation::TooManyPlacements(placements.len()));
            }
            if let Some(p) = placements.iter().find(|p| p.position == 0) {
                return Err(Violation::PositionOutOfRange(p.position));
            }
            Ok(Effect {
                promoted: placements,
                ..Effect::default()
            })
        }
        (expected, other) => Err(Violation::WrongKind {
            expected,
            got: outcome_name(&other),
        }),
    }
}

fn moves(before: &[i64], after: &[i64]) -> Vec<(i64, usize, usize)> {
    let index: std::collections::HashMap<i64, usize> =
        before.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    after
        .iter()
        .enumerate()
        .filter_map(|(to, id)| {
            let from = index[id];
            (from != to).then_some((*id, from, to))
        })
        .collect()
}

/// Places promoted items into `organic` (ids, best first): each at its
/// position (1 is the top), in the order given, an item already in the
/// list moving rather than appearing twice, a position past the end
/// meaning the end. Returns the final list and, per placement, the position
/// it landed at (1-based).
pub fn place(organic: &[i64], placements: &[Placement]) -> (Vec<i64>, Vec<usize>) {
    let mut list: Vec<i64> = organic.to_vec();
    let mut landed = Vec::with_capacity(placements.len());
    for p in placements {
        if let Some(at) = list.iter().position(|&id| id == p.item_id) {
            list.remove(at);
        }
        let at = (p.position as usize).saturating_sub(1).min(list.len());
        list.insert(at, p.item_id);
        landed.push(at + 1);
    }
    // Later placements can shift earlier ones: report where each ended.
    let landed = placements
        .iter()
        .zip(landed)
        .map(|(p, fallback)| {
            list.iter()
                .position(|&id| id == p.item_id)
                .map_or(fallback, |i| i + 1)
        })
        .collect();
    (list, landed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_move_duplicates_and_clamp_to_the_end() {
        let (list, landed) = place(
            &[1, 2, 3, 4],
            &[
                Placement::at(3, 1),
                Placement::at(9, 2),
                Placement::at(8, 50),
            ],
        );
        assert_eq!(list, vec![3, 9, 1, 2, 4, 8]);
        assert_eq!(landed, vec![1, 2, 6]);
    }

    #[test]
    fn promote_outcomes_need_positions_from_one() {
        let mut list = List::new(vec![1], vec![1.0]);
        let err = apply(
            Kind::Promote,
            &mut list,
            Outcome::Promoted(vec![Placement::at(5, 0)]),
        )
        .unwrap_err();
        assert_eq!(err, Violation::PositionOutOfRange(0));
        let ok = apply(
            Kind::Promote,
            &mut list,
            Outcome::Promoted(vec![Placement::top(5)]),
        )
        .unwrap();
        assert_eq!(ok.promoted, vec![Placement::at(5, 1)]);
        assert_eq!(list.ids, vec![1]);
    }
}
