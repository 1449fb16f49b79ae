//! Bulk data: the MovieLens importer and the deterministic demo catalogue,
//! both written through the batched inserts in [`bulk`].

pub mod bulk;
pub mod demo;
pub mod movielens;
pub mod rng;
