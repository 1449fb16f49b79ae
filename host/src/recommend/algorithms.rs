//! The algorithm names of the API and what each one runs.

use recengine_models::{Algorithm, models::HybridMethod};

/// Every name `algorithm=` accepts. The first three are the seed's.
pub const NAMES: &[&str] = &[
    "hybrid",
    "collaborative",
    "content_based",
    "ease",
    "item_knn",
    "user_knn",
    "popularity",
];

/// The model behind an API name; `hybrid` uses `method`.
pub fn parse(name: &str, method: HybridMethod) -> Option<Algorithm> {
    Some(match name {
        "hybrid" => Algorithm::Hybrid(method),
        "collaborative" => Algorithm::Collaborative,
        "content_based" => Algorithm::ContentBased,
        "ease" => Algorithm::Ease,
        "item_knn" => Algorithm::ItemKnn,
        "user_knn" => Algorithm::UserKnn,
        "popularity" => Algorithm::Popularity,
        _ => return None,
    })
}

pub fn name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Hybrid(HybridMethod::Weighted) => "hybrid (weighted)",
        Algorithm::Hybrid(HybridMethod::Rank) => "hybrid (rank)",
        Algorithm::Hybrid(HybridMethod::Cascade) => "hybrid (cascade)",
        Algorithm::Collaborative => "collaborative",
        Algorithm::ContentBased => "content_based",
        Algorithm::Ease => "ease",
        Algorithm::ItemKnn => "item_knn",
        Algorithm::UserKnn => "user_knn",
        Algorithm::Popularity => "popularity",
        Algorithm::Als => "als",
    }
}

/// What `recengine eval` reports, in order.
pub const EVALUATED: &[(&str, Algorithm)] = &[
    (
        "hybrid (weighted)",
        Algorithm::Hybrid(HybridMethod::Weighted),
    ),
    ("hybrid (rank)", Algorithm::Hybrid(HybridMethod::Rank)),
    ("hybrid (cascade)", Algorithm::Hybrid(HybridMethod::Cascade)),
    ("ease", Algorithm::Ease),
    ("item_knn", Algorithm::ItemKnn),
    ("user_knn", Algorithm::UserKnn),
    ("content_based", Algorithm::ContentBased),
    ("popularity", Algorithm::Popularity),
];
