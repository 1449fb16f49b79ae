//! Recommendations: candidate generation, then the business rules.
//!
//! Candidates currently come from item popularity (the stored score, with
//! what the user already touched excluded); the trained models replace this
//! source without changing the service around it.

pub mod eval;
pub mod service;
