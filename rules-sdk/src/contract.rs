//! What each kind of rule may do, and applying a decision to the list.
//! The host enforces exactly this; the native harness runs the same code, so
//! a rule that passes its unit tests cannot break its contract in production
//! in a way the tests did not show.

use crate::{Candidates, Kind, Outcome};

/// Why an outcome was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    WrongKind { expected: Kind, got: &'static str },
    PositionOutOfRange(u32),
    DuplicatePosition(u32),
    WrongLength { expected: usize, got: usize },
    BadScore { position: usize, score: f64 },
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
        }
    }
}

/// What a rule changed, for the trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effect {
    pub dropped: Vec<i64>,
    /// (item id, score before, score after), for changed scores only.
    pub rescored: Vec<(i64, f64, f64)>,
    /// (item id, position before, position after), for moved items only.
    pub moved: Vec<(i64, usize, usize)>,
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Dropped(_) => "dropped",
        Outcome::Rescored(_) => "rescored",
        Outcome::Reordered(_) => "reordered",
    }
}

/// Checks `outcome` against the contract of `kind` and applies it. On a
/// violation, `candidates` is left untouched.
pub fn apply(
    kind: Kind,
    candidates: &mut Candidates,
    outcome: Outcome,
) -> Result<Effect, Violation> {
    let n = candidates.len();
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
            let dropped = (0..n)
                .filter(|&i| drop[i])
                .map(|i| candidates.ids[i])
                .collect();
            let keep: Vec<usize> = (0..n).filter(|&i| !drop[i]).collect();
            if keep.len() != n {
                candidates.retain_positions(&keep);
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
                .filter(|&i| scores[i] != candidates.scores[i])
                .map(|i| (candidates.ids[i], candidates.scores[i], scores[i]))
                .collect();
            candidates.scores = scores;
            // A boost changes the ranking: re-sort (stable, so equal scores
            // keep their order).
            let before = candidates.ids.clone();
            candidates.sort_by_score();
            Ok(Effect {
                rescored,
                moved: moves(&before, &candidates.ids),
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
            let before = candidates.ids.clone();
            let order: Vec<usize> = order.into_iter().map(|p| p as usize).collect();
            candidates.reorder(&order);
            Ok(Effect {
                moved: moves(&before, &candidates.ids),
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
