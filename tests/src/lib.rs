//! End-to-end tests of the `passk` binary and the `xtask` pipeline live in `tests/`.
