//! The pretrained-LM tier's cell: RL on the last blocks of a Llama/Qwen2-family model (e.g.
//! SmolLM2-135M-Instruct) with one objective; results are held-out pass@k and the sketched
//! gradient probe before and after (see `passk_train::lm`). No resume: an interrupted cell
//! starts over.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use passk_train::lm::{run_lm_cell, LmCellConfig};
use passk_train::{Phase, Progress};
use serde_json::{Map, Value};

use crate::tiers::RunContext;

/// Parses and validates an LM cell's config (every field required; see `LmCellConfig`). The
/// model files are not touched.
pub fn spec(config: &Map<String, Value>) -> Result<LmCellConfig> {
    let mixture = config.get("mixture");
    for key in ["cue_reliability", "reversed_share", "splits"] {
        if mixture.is_some_and(|m| m.get(key).is_none()) {
            anyhow::bail!(
                "key `mixture.{key}` is missing; give it explicitly in [params.mixture] so the \
                 cell's hash names it"
            );
        }
    }
    let cfg: LmCellConfig = serde_json::from_value(Value::Object(config.clone())).map_err(|e| {
        anyhow::anyhow!(
            "{e}; an lm cell needs the keys model, device, trainable_blocks, mixture or data, \
             prompt, seed, rl, eval, and optionally probe (see experiments/lm.toml and \
             experiments/lm-eval.toml)"
        )
    })?;
    cfg.validate()?;
    Ok(cfg)
}

/// Runs the cell in `dir`, printing progress lines and the model/probe-memory note to stderr.
/// The device is the cell's `device` key (`--device` does not apply to this tier).
pub fn run(config: &Map<String, Value>, dir: &Path, ctx: &RunContext) -> Result<()> {
    let cfg = spec(config)?;
    let started = Instant::now();
    let quiet = ctx.quiet;
    let mut progress = |p: Progress| {
        if quiet {
            return;
        }
        let phase = match p.phase {
            Phase::Eval => "held-out eval at RL step",
            Phase::EvalPrompts => "held-out prompts sampled",
            Phase::Probe => "sketched gradient probe at RL step",
            Phase::Rl => "RL step",
            Phase::Sft1 | Phase::Sft2 => "SFT",
        };
        ctx.log.line(&format!(
            "{phase} {}/{} ({:.0} s in this cell)",
            p.step,
            p.total,
            started.elapsed().as_secs_f64()
        ));
    };
    let mut note = |s: &str| {
        if !quiet {
            ctx.log.line(s);
        }
    };
    run_lm_cell(&cfg, dir, &mut progress, &mut note)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::load_experiment;

    fn experiment(name: &str) -> crate::config::Experiment {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        load_experiment(&root.join(name)).unwrap()
    }

    #[test]
    fn the_lm_experiment_files_validate_without_the_model() {
        let full = experiment("lm.toml");
        assert_eq!((full.tier.as_str(), full.in_all), ("lm", true));
        assert_eq!(full.cells.len(), 2 * 3 * 3);
        for cell in &full.cells {
            let cfg = super::spec(&cell.config).unwrap();
            assert_eq!(cfg.device, "cuda");
            assert_eq!(cfg.model.gguf.as_deref(), Some("$PASSK_SMOLLM2_GGUF"));
            assert!(cfg.mixture.is_none() && cfg.data.is_some());
        }
        let smoke = experiment("lm-smoke.toml");
        assert!(!smoke.in_all);
        assert_eq!(super::spec(&smoke.cells[0].config).unwrap().device, "cpu");
        let eval = experiment("lm-eval.toml");
        let mut names = Vec::new();
        for cell in &eval.cells {
            let cfg = super::spec(&cell.config).unwrap();
            assert_eq!((cfg.device.as_str(), cfg.rl.steps), ("cpu", 0));
            assert!(cfg.probe.is_none() && cfg.mixture.is_none());
            let data = cfg.data.unwrap();
            let math = format!("{:?}", data.name) == "Math500";
            assert_eq!(cfg.prompt.instruction.contains("boxed"), math);
            names.push(format!("{:?}/{}", data.name, data.train_split));
        }
        assert_eq!(names, ["Gsm8k/train", "Svamp/test", "Math500/test"]);
    }

    #[test]
    fn a_missing_key_is_named() {
        let smoke = experiment("lm-smoke.toml");
        let mut config = smoke.cells[0].config.clone();
        config.remove("trainable_blocks");
        let err = super::spec(&config).unwrap_err().to_string();
        assert!(err.contains("trainable_blocks"), "{err}");
    }
}
