//! One module per subcommand whose handler outgrew `lib.rs` (the others still live there).

pub mod check;
pub mod run;
