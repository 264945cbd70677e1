//! Results schema, manifest hashing, tables, figures and claim evaluation.
//!
//! Everything here is a pure function of the files under `results/`: the same results give
//! byte-identical tables and figures. The report page ([`html`]) also shows what its caller
//! passes from the experiment files and the claims file, and nothing else (no timestamp).

pub mod claims;
pub mod dose;
pub mod error;
pub mod figures;
pub mod html;
pub mod lm;
pub mod load;
pub mod manifest;
pub mod mitigation;
pub mod page;
pub mod plot;
pub mod probe;
pub mod probe_pooled;
pub mod readme;
pub mod record;
pub mod style;
pub mod tables;
pub mod theory;
pub mod tier;
pub mod tiny;
