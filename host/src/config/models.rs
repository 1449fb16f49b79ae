//! What the recommendation models are trained with: the neighbourhoods,
//! EASE, the hybrid's blend and method, and the confidence of each
//! interaction.

use recengine_models::models::HybridMethod;

use super::{Settings, env::Env};

pub(super) fn read(env: &mut Env, s: &mut Settings) {
    env.read("HYBRID_ALPHA", &mut s.hybrid_alpha);
    if !(0.0..=1.0).contains(&s.hybrid_alpha) {
        env.error(format!(
            "HYBRID_ALPHA={}: must be between 0 and 1",
            s.hybrid_alpha
        ));
    }
    env.read(
        "COLLABORATIVE_K_NEIGHBORS",
        &mut s.collaborative_k_neighbors,
    );
    if s.collaborative_k_neighbors == 0 {
        env.error("COLLABORATIVE_K_NEIGHBORS must be at least 1");
    }
    env.read_with(
        "ITEM_KNN_NEIGHBORS",
        &mut s.item_knn_neighbors,
        |v| match v {
            "all" => Ok(None),
            v => v.parse().map(Some).map_err(|e| format!("{e}")),
        },
    );
    env.read("EASE_LAMBDA", &mut s.ease_lambda);
    if !(s.ease_lambda.is_finite() && s.ease_lambda > 0.0) {
        env.error(format!("EASE_LAMBDA={}: must be > 0", s.ease_lambda));
    }
    env.read("EASE_DROPOUT", &mut s.ease_dropout);
    if !(0.0..0.95).contains(&s.ease_dropout) {
        env.error(format!(
            "EASE_DROPOUT={}: must be at least 0 and below 0.95",
            s.ease_dropout
        ));
    }
    env.read("EASE_MAX_ITEMS", &mut s.ease_max_items);
    env.flag("MODEL_SNAPSHOTS", &mut s.model_snapshots);
    env.seconds("MODEL_SNAPSHOT_POLL_SECS", &mut s.model_snapshot_poll);
    if s.model_snapshot_poll.is_zero() {
        env.error("MODEL_SNAPSHOT_POLL_SECS must be at least 1");
    }
    env.read("TRAINING_MEMORY_MB", &mut s.training_memory_mb);
    if s.training_memory_mb == 0 {
        env.error("TRAINING_MEMORY_MB must be at least 1");
    }
    for (key, slot) in [
        ("HYBRID_CONTENT_FADE", &mut s.hybrid_content_fade),
        ("HYBRID_USER_KNN", &mut s.hybrid_user_knn),
        ("HYBRID_ITEM_KNN", &mut s.hybrid_item_knn),
        ("HYBRID_TEMPORAL", &mut s.hybrid_temporal),
        ("HYBRID_SEQUENCE", &mut s.hybrid_sequence),
        ("HYBRID_ALS", &mut s.hybrid_als),
        ("ALS_ALPHA", &mut s.als_alpha),
        ("ALS_REGULARIZATION", &mut s.als_regularization),
    ] {
        env.read(key, slot);
        if !(slot.is_finite() && *slot >= 0.0) {
            env.error(format!("{key}={slot}: must be a number >= 0"));
        }
    }
    env.read("TEMPORAL_BUCKET_DAYS", &mut s.temporal_bucket_days);
    if !(s.temporal_bucket_days.is_finite() && s.temporal_bucket_days >= 1.0) {
        env.error(format!(
            "TEMPORAL_BUCKET_DAYS={}: must be at least 1",
            s.temporal_bucket_days
        ));
    }
    env.read("SEQUENCE_WINDOW", &mut s.sequence_window);
    if s.sequence_window == 0 {
        env.error("SEQUENCE_WINDOW must be at least 1");
    }
    env.read("SEQUENCE_RECENCY_DAYS", &mut s.sequence_recency_days);
    if !(s.sequence_recency_days.is_finite() && s.sequence_recency_days > 0.0) {
        env.error(format!(
            "SEQUENCE_RECENCY_DAYS={}: must be > 0",
            s.sequence_recency_days
        ));
    }
    env.read("SEQUENCE_FLOOR", &mut s.sequence_floor);
    if !(0.0..=1.0).contains(&s.sequence_floor) {
        env.error(format!(
            "SEQUENCE_FLOOR={}: must be between 0 and 1",
            s.sequence_floor
        ));
    }
    env.read("ALS_FACTORS", &mut s.als_factors);
    env.read("ALS_ITERATIONS", &mut s.als_iterations);
    if s.als_factors == 0 {
        env.error("ALS_FACTORS must be at least 1");
    }
    if let Some(name) = env.get("HYBRID_METHOD") {
        let name = name.trim().to_ascii_lowercase();
        match HybridMethod::parse(&name) {
            Some(method) => s.hybrid_method = method,
            None => env.error(format!(
                "HYBRID_METHOD={name}: must be weighted, rank or cascade"
            )),
        }
    }
    if let Some(weights) = env.get("INTERACTION_WEIGHTS") {
        s.interaction_weights = interaction_weights(env, &weights);
    }
    env.flag("RATINGS_AS_WEIGHTS", &mut s.ratings_as_weights);
}

/// `type=weight,...`; weights must be finite and > 0.
fn interaction_weights(env: &mut Env, v: &str) -> Vec<(String, f32)> {
    let mut out = Vec::new();
    for pair in v.split(',').filter(|p| !p.trim().is_empty()) {
        let parsed = pair
            .split_once('=')
            .and_then(|(k, w)| Some((k.trim().to_string(), w.trim().parse::<f32>().ok()?)))
            .filter(|(k, w)| !k.is_empty() && w.is_finite() && *w > 0.0);
        match parsed {
            Some(p) => out.push(p),
            None => env.error(format!(
                "INTERACTION_WEIGHTS: {pair:?} is not type=weight with a weight > 0"
            )),
        }
    }
    out
}

impl Settings {
    /// What the recommendation models are trained with.
    pub fn models_config(&self) -> recengine_models::ModelsConfig {
        recengine_models::ModelsConfig {
            user_neighbours: self.collaborative_k_neighbors as usize,
            item_neighbours: self.item_knn_neighbors.map(|k| k as usize),
            ease_lambda: self.ease_lambda,
            ease_dropout: self.ease_dropout,
            ease_max_items: self.ease_max_items,
            training_memory_bytes: self.training_memory_mb.saturating_mul(1 << 20),
            hybrid_alpha: self.hybrid_alpha as f32,
            hybrid_content_fade: self.hybrid_content_fade,
            hybrid_user_knn: self.hybrid_user_knn,
            hybrid_item_knn: self.hybrid_item_knn,
            hybrid_temporal: self.hybrid_temporal,
            temporal_bucket_days: self.temporal_bucket_days,
            hybrid_sequence: self.hybrid_sequence,
            sequence_window: self.sequence_window as usize,
            sequence_recency_days: self.sequence_recency_days,
            sequence_floor: self.sequence_floor,
            hybrid_als: self.hybrid_als,
            als_factors: self.als_factors as usize,
            als_iterations: self.als_iterations as usize,
            als_regularization: self.als_regularization,
            als_alpha: self.als_alpha,
            ..Default::default()
        }
    }
}
