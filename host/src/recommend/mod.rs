//! Recommendations: the trained models (an immutable snapshot, swapped
//! after each retrain), the service that turns them into answers through
//! the business rules, trending, and the offline evaluation of the same
//! models.

pub mod algorithms;
pub mod confidence;
pub mod eval;
pub mod service;
pub mod snapshot;
pub mod trending;
