//! Real math data in the LM tier: GSM8K, SVAMP or MATH-500 from the copies vendored in
//! passk-tasks, split into held-out eval, probe and training prompts by a seed.

use passk_core::rng::{seeded, uniform_index};
use passk_tasks::data::{load, vendored_path, Dataset, LoadOptions, OnMalformed};
use passk_tasks::Prompt;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::prompts::PromptPool;

/// Stream id of the subset shuffle: `[DATA_SUBSET]` under `LmDataConfig::subset_seed`.
const DATA_SUBSET: u64 = 0x4441_5401;

/// Which dataset an LM cell asks, and how its prompts are split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmDataConfig {
    /// `gsm8k`, `svamp` or `math500`.
    pub name: Dataset,
    /// The file the eval and probe prompts come from (`test`).
    pub eval_split: String,
    /// The file RL draws from: `train` (GSM8K has one), or the eval split itself, whose
    /// prompts not chosen for eval or probe then form the training pool.
    pub train_split: String,
    /// Seed of the shuffle that picks the eval and probe prompts. It is not the cell seed, so
    /// cells with different seeds are evaluated on the same prompts.
    pub subset_seed: u64,
}

/// The prompts of one cell.
#[derive(Debug, Clone)]
pub struct LmData {
    /// Held-out eval prompts, in shuffle order.
    pub eval: Vec<Prompt>,
    /// Probe prompts, disjoint from `eval`.
    pub probe: Vec<Prompt>,
    /// RL's pool, disjoint from both when it comes from the same file.
    pub train: PromptPool,
}

fn bad(problem: String) -> TrainError {
    TrainError::Config {
        field: "data".into(),
        problem,
    }
}

fn load_split(name: Dataset, split: &str) -> Result<Vec<Prompt>> {
    let path = vendored_path(name, split);
    if !path.is_file() {
        return Err(bad(format!(
            "{name:?} has no split {split:?} ({} does not exist); GSM8K has train and test, \
             SVAMP and MATH-500 only test",
            path.display()
        )));
    }
    let opts = LoadOptions {
        on_malformed: OnMalformed::Fail,
        limit: None,
    };
    let loaded = load(name, &path, opts).map_err(|e| bad(e.to_string()))?;
    Ok(loaded.prompts)
}

impl LmDataConfig {
    /// Checks the split names without reading the files.
    pub fn validate(&self) -> Result<()> {
        for (field, split) in [
            ("eval_split", &self.eval_split),
            ("train_split", &self.train_split),
        ] {
            if !vendored_path(self.name, split).is_file() {
                return Err(TrainError::Config {
                    field: format!("data.{field}"),
                    problem: format!(
                        "{split:?} is not a split of {:?}; GSM8K has train and test, SVAMP and \
                         MATH-500 only test",
                        self.name
                    ),
                });
            }
        }
        Ok(())
    }

    /// Loads the files and picks `n_eval` eval prompts, then `n_probe` probe prompts, from a
    /// seeded shuffle of the eval split (Fisher-Yates on [`uniform_index`]); the training
    /// pool is the train split, without those prompts when it is the same file.
    ///
    /// # Errors
    /// A missing or malformed file, or fewer prompts than asked for.
    pub fn select(&self, n_eval: usize, n_probe: usize) -> Result<LmData> {
        let mut pool = load_split(self.name, &self.eval_split)?;
        let mut rng = seeded(self.subset_seed, &[DATA_SUBSET]);
        for i in (1..pool.len()).rev() {
            pool.swap(i, uniform_index(&mut rng, i + 1));
        }
        if n_eval + n_probe > pool.len() {
            return Err(bad(format!(
                "{:?} {} has {} prompts; {n_eval} eval + {n_probe} probe prompts do not fit",
                self.name,
                self.eval_split,
                pool.len()
            )));
        }
        let rest = pool.split_off(n_eval + n_probe);
        let probe = pool.split_off(n_eval);
        let train = if self.train_split == self.eval_split {
            rest
        } else {
            load_split(self.name, &self.train_split)?
        };
        Ok(LmData {
            eval: pool,
            probe,
            train: PromptPool::new(train)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: Dataset, train: &str) -> LmDataConfig {
        LmDataConfig {
            name,
            eval_split: "test".into(),
            train_split: train.into(),
            subset_seed: 0,
        }
    }

    #[test]
    fn subsets_are_disjoint_seeded_and_the_same_file_trains_on_the_rest() {
        let c = cfg(Dataset::Svamp, "test");
        c.validate().unwrap();
        let a = c.select(100, 20).unwrap();
        assert_eq!((a.eval.len(), a.probe.len()), (100, 20));
        assert_eq!(a.train.prompts().len(), 1000 - 120);
        let ids = |v: &[Prompt]| v.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
        let (e, p, t) = (ids(&a.eval), ids(&a.probe), ids(a.train.prompts()));
        assert!(p.iter().all(|id| !e.contains(id)));
        assert!(t.iter().all(|id| !e.contains(id) && !p.contains(id)));
        // Same seed, same subsets; another seed, others.
        assert_eq!(ids(&c.select(100, 20).unwrap().eval), e);
        let other = LmDataConfig {
            subset_seed: 1,
            ..c.clone()
        };
        assert_ne!(ids(&other.select(100, 20).unwrap().eval), e);
    }

    #[test]
    fn gsm8k_trains_on_its_train_file_and_bad_splits_are_refused() {
        let d = cfg(Dataset::Gsm8k, "train").select(10, 4).unwrap();
        assert_eq!(d.train.prompts().len(), 7473);
        assert!(cfg(Dataset::Svamp, "train").validate().is_err());
        assert!(cfg(Dataset::Math500, "test").select(400, 101).is_err());
        let math = cfg(Dataset::Math500, "test").select(5, 0).unwrap();
        assert!(math.eval.iter().all(|p| !p.reference.is_empty()));
    }
}
