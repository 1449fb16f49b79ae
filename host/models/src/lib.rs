//! The recommendation models: pure computation over index-based data, no
//! I/O, no ids from the database. The host maps its ids to dense indices,
//! trains a [`Models`] set from a [`TrainingData`], and scores *profiles*
//! (the items a user touched, with confidences), so a user who arrived after
//! the last retrain is folded in without retraining.
//!
//! - [`sparse`]: the compressed-row matrix the interaction data lives in.
//! - [`als`]: implicit-feedback ALS, the matrix-factorisation reference.
//! - [`ease`]: EASE (Steck 2019), the closed-form linear item-item model.
//! - [`knn`]: item-based and user-based cosine kNN.
//! - [`content`]: TF-IDF over item text, cosine similarity.
//! - [`hybrid`]: weighted, rank and cascade combinations.
//! - [`temporal`]: popularity in the periods a user was active.
//! - [`sequence`]: item-to-item transitions in the order of each history.
//! - [`simd`]: the dense scoring loop, vectorised for the CPU it runs on.
//! - [`topn`]: selecting the best scores without sorting everything.
//!
//! Built with optimisation even in debug builds (see the workspace
//! `Cargo.toml`): these loops are the hot path of training and serving.

pub mod als;
pub mod content;
pub mod ease;
pub mod hybrid;
pub mod knn;
pub mod models;
pub mod sequence;
pub mod simd;
pub mod sparse;
pub mod temporal;
pub mod topn;

pub use models::{Algorithm, Models, ModelsConfig, TrainingData, TrainingTimes};

/// A user's profile: item indices with a confidence weight each, unique.
pub type Profile = [(u32, f32)];
