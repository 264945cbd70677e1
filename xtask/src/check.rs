//! `check`: the CI gate. Recompute the gate experiments, evaluate every claim on them, then
//! verify the committed results, and against the fresh cells (`passk verify --against`).

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::{gate, passk};

pub fn check(sh: &Shell, cuda: bool) -> Result<()> {
    let passk = passk::build(sh, cuda)?;
    let scratch = gate::scratch_dir();
    gate::recompute(sh, &passk, &scratch)?;
    // --strict: every claim must be evaluated (a missing experiment fails, not skips).
    let claims = cmd!(sh, "{passk} check --results {scratch} --strict").run();
    // --against: a committed cell the gate recomputed must be byte-identical to it.
    let verified = cmd!(sh, "{passk} verify --against {scratch}").run();
    claims.context("a claim failed (table above)")?;
    verified.context(
        "committed results or figures do not verify, or differ from the gate's fresh \
         recomputation (messages above)",
    )?;
    Ok(())
}
