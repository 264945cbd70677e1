//! `compare --objective SPEC... [--experiment NAME] [--force]`: new objectives beside the
//! committed baseline (`passk compare`).

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::passk;

/// `--objective SPEC` (repeatable) and optional `--experiment NAME` (default tiny-core).
pub fn compare_args(rest: &[&str]) -> Result<(Vec<String>, String, bool)> {
    let usage = "usage: cargo xtask compare --objective SPEC [--objective SPEC...] \
                 [--experiment NAME] [--force], e.g. --objective pkpo_loo_minus_one:k=4";
    let (mut objectives, mut experiment) = (Vec::new(), "tiny-core".to_string());
    let mut force = false;
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        if *flag == "--force" {
            force = true;
            continue;
        }
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value; {usage}"))?;
        match *flag {
            "--objective" => objectives.push(value.to_string()),
            "--experiment" => experiment = value.to_string(),
            other => bail!("unknown compare option {other}; {usage}"),
        }
    }
    if objectives.is_empty() {
        bail!("{usage}");
    }
    Ok((objectives, experiment, force))
}

pub fn compare(
    sh: &Shell,
    objectives: &[String],
    experiment: &str,
    force: bool,
    cuda: bool,
) -> Result<()> {
    let passk = passk::build(sh, cuda)?;
    let file = format!("experiments/{experiment}.toml");
    let device = if cuda { "cuda" } else { "cpu" };
    let flags: Vec<&str> = objectives
        .iter()
        .flat_map(|o| ["--objective", o.as_str()])
        .chain(force.then_some("--force"))
        .collect();
    let mut args = vec!["compare", file.as_str()];
    args.extend(flags.iter().copied());
    args.extend(["--device", device]);
    // The cells, one single-threaded process per core (a GPU runs them in one process);
    // then the table, which finds every cell done.
    if !cuda {
        crate::shards::shard_processes(&passk, &args, &[])?;
    }
    cmd!(sh, "{passk} {args...}").run()?;
    Ok(())
}
