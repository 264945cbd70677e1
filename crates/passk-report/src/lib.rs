//! Results schema, manifest hashing, tables, figures and claim evaluation.
//!
//! Everything here is a pure function of the files under `results/`: the same results give
//! byte-identical tables and figures.

pub mod schema;
