//! Tools for rule authors, behind `recengine rules new` and `recengine
//! rules test`: a rule project scaffolded from a template, and a bundle run
//! in a throwaway engine over sample or given candidates, with no server,
//! database or network.

pub mod check;
pub mod scaffold;
