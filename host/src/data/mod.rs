//! Bulk data: the MovieLens importer and the deterministic demo catalogue,
//! both written through the store's batched inserts
//! ([`crate::store::bulk`]).

pub mod demo;
pub mod movielens;
pub mod rng;
