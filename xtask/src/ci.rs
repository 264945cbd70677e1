//! `ci` (what .ci/run calls), `fault` and `slurm-test`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{check, gate, passk, project_root};

pub fn ci(sh: &Shell) -> Result<()> {
    cmd!(sh, "cargo fmt --all -- --check")
        .run()
        .context("run `cargo fmt --all`")?;
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --release -- -D warnings"
    )
    .run()?;
    cmd!(sh, "cargo test --workspace --release").run()?;
    let passk = passk::build(sh, false)?;
    fault(sh, &passk)?;
    check::check(sh, false)?;
    gate::rejects_broken_objective(sh, &passk, &gate::scratch_dir())?;
    println!("ci: all green");
    Ok(())
}

/// Runs the fault-injection suite on the theory and tiny-smoke experiments with `passk`.
pub fn fault(sh: &Shell, passk: &Path) -> Result<()> {
    cmd!(sh, "bash tests/fault_injection.sh {passk}")
        .run()
        .context("the fault-injection suite failed (summary above)")?;
    Ok(())
}

/// Runs tests/slurm_test.sh; its exit status 77 means Slurm could not be set up (skipped).
pub fn slurm_test(passk: &Path) -> Result<()> {
    let status = std::process::Command::new("bash")
        .arg(project_root().join("tests/slurm_test.sh"))
        .arg(passk)
        .current_dir(project_root())
        .status()
        .context("cannot run bash tests/slurm_test.sh")?;
    match status.code() {
        Some(0) => Ok(()),
        Some(77) => bail!(
            "the Slurm test was SKIPPED, not passed: Slurm could not be installed or started \
             here (reason above)"
        ),
        _ => bail!("the Slurm test failed (summary above; its work folder is kept)"),
    }
}
