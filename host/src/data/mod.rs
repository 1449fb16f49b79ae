//! Bulk data: the MovieLens importer, the deterministic demo catalogue and
//! the seeded synthetic shop of any size, all written through the store's batched inserts
//! ([`crate::store::bulk`]).

pub mod demo;
pub mod movielens;
pub mod progress;
pub mod rng;
pub mod synthetic;
pub mod writer;
