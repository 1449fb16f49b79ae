//! Recommendations: the trained models (an immutable snapshot, swapped
//! after each retrain), the service that turns them into answers through
//! the business rules, trending, and the offline evaluation of the same
//! models.
//!
//! - [`snapshot`]: training from the database and the swapped snapshot.
//! - [`fleet`]: the stored form of a snapshot, which one trainer shares.
//! - [`algorithms`]: the API's algorithm names and what each one runs.
//! - [`service`]: a user's recommendations (cache, models, rules).
//! - [`response`]: what a recommendation request answers.
//! - [`similar`], [`explain`]: similar items; why an item is recommended.
//! - [`trending`]: the most interacted-with items of a recent window.
//! - [`eval`]: the offline protocol, on the service's own scoring path.

pub mod algorithms;
pub mod eval;
pub mod explain;
pub mod fleet;
pub mod response;
pub mod service;
pub mod similar;
pub mod snapshot;
pub mod trending;
