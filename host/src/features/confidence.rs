//! How much an interaction says about a user's taste: the confidence the
//! models train on. Configured per type (`INTERACTION_WEIGHTS`); explicit
//! ratings can scale it (`RATINGS_AS_WEIGHTS`). Profiles are built here, in
//! the feature store; training weighs its rows the same way.

use std::collections::HashMap;

use crate::config::Settings;

#[derive(Debug, Clone)]
pub struct Confidence {
    /// Type -> weight, scaled so the strongest type is 1.
    by_type: HashMap<String, f32>,
    /// Types not in the table.
    unknown: f32,
    ratings: bool,
}

impl Confidence {
    pub fn from_settings(settings: &Settings) -> Self {
        let max = settings
            .interaction_weights
            .iter()
            .map(|(_, w)| *w)
            .fold(0f32, f32::max)
            .max(f32::MIN_POSITIVE);
        let by_type: HashMap<String, f32> = settings
            .interaction_weights
            .iter()
            .map(|(t, w)| (t.clone(), w / max))
            .collect();
        let unknown = by_type.values().copied().fold(1f32, f32::min);
        Self {
            by_type,
            unknown,
            ratings: settings.ratings_as_weights,
        }
    }

    /// One interaction's confidence, in (0, 1] for the usual inputs: the
    /// type's weight, times rating / 5 when ratings count, times the
    /// interaction's own `weight`.
    pub fn of(&self, interaction_type: &str, rating: Option<f64>, weight: f64) -> f32 {
        let base = self
            .by_type
            .get(interaction_type)
            .copied()
            .unwrap_or(self.unknown);
        let rating = match rating {
            Some(r) if self.ratings && r.is_finite() => (r / 5.0).clamp(0.1, 1.0) as f32,
            _ => 1.0,
        };
        let weight = if weight.is_finite() && weight > 0.0 {
            weight as f32
        } else {
            1.0
        };
        base * rating * weight
    }

    /// The settings as one stable line (types in order), for telling
    /// whether models were trained with the same confidences.
    pub fn describe(&self) -> String {
        let mut types: Vec<_> = self.by_type.iter().collect();
        types.sort_by(|a, b| a.0.cmp(b.0));
        format!(
            "{types:?} unknown={} ratings={}",
            self.unknown, self.ratings
        )
    }

    /// Several interactions with the same item add up, to at most 1: ten
    /// views are not worth ten purchases.
    pub fn combine(total: f32) -> f32 {
        total.min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_scale_to_the_strongest_and_ratings_count() {
        let mut settings = Settings::for_tests("sqlite::memory:");
        settings.ratings_as_weights = true;
        let c = Confidence::from_settings(&settings);
        assert_eq!(c.of("purchase", None, 1.0), 1.0);
        assert_eq!(c.of("view", None, 1.0), 0.2);
        assert!((c.of("rating", Some(5.0), 1.0) - 0.8).abs() < 1e-6);
        assert!((c.of("rating", Some(2.5), 1.0) - 0.4).abs() < 1e-6);
        assert_eq!(
            c.of("bookmark", None, 1.0),
            0.2,
            "unknown types count as the weakest"
        );
        assert_eq!(Confidence::combine(0.2 * 7.0), 1.0);
    }
}
