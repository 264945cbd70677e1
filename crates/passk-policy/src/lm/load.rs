//! Loading a [`CausalLm`] (and its tokenizer) from a Hugging Face directory or the local
//! hf-hub cache, and saving one in the same layout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::config::LmConfig;
use super::model::CausalLm;
use crate::error::{PolicyError, Result};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PolicyError + '_ {
    move |source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn checkpoint_err(path: &Path, detail: impl Into<String>) -> PolicyError {
    PolicyError::Checkpoint {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// The safetensors files of a checkpoint directory: `model.safetensors`, or every shard named
/// by `model.safetensors.index.json` (sorted, without repeats).
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.exists() {
        return Err(checkpoint_err(
            dir,
            "neither model.safetensors nor model.safetensors.index.json is present",
        ));
    }
    let text = std::fs::read_to_string(&index).map_err(io_err(&index))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| checkpoint_err(&index, format!("index does not parse: {e}")))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| checkpoint_err(&index, "index has no weight_map object"))?;
    let mut files: Vec<String> = map
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    files.sort();
    files.dedup();
    Ok(files.into_iter().map(|f| dir.join(f)).collect())
}

/// Every tensor of the given safetensors files, on the CPU.
fn read_tensors(files: &[PathBuf]) -> Result<HashMap<String, Tensor>> {
    let mut all = HashMap::new();
    for f in files {
        if !f.exists() {
            return Err(checkpoint_err(f, "shard file is missing"));
        }
        let part = candle_core::safetensors::load(f, &Device::Cpu)
            .map_err(|e| checkpoint_err(f, format!("not a readable safetensors file: {e}")))?;
        all.extend(part);
    }
    Ok(all)
}

/// Finds the snapshot directory of `repo_id` at `revision` in the hf-hub cache (`$HF_HOME/hub`
/// when `HF_HOME` is set, else `~/.cache/huggingface/hub`). `revision` is a branch or tag
/// named under `refs/` (for example `main`) or a commit hash with a `snapshots/` entry.
pub fn hf_cache_snapshot(repo_id: &str, revision: &str) -> Result<PathBuf> {
    let cache = hf_hub::Cache::from_env();
    let repo = hf_hub::Repo::with_revision(
        repo_id.to_string(),
        hf_hub::RepoType::Model,
        revision.to_string(),
    );
    let folder = cache.path().join(repo.folder_name());
    let ref_file = folder.join("refs").join(revision);
    let commit = match std::fs::read_to_string(&ref_file) {
        Ok(hash) => hash.trim().to_string(),
        Err(_) => revision.to_string(),
    };
    let snapshot = cache.repo(repo).pointer_path(&commit);
    if !snapshot.join("config.json").exists() {
        return Err(checkpoint_err(
            &snapshot,
            format!(
                "{repo_id} at revision {revision} is not in the hf-hub cache (no config.json); \
                 download it where a network exists, or set HF_HOME to the cache holding it"
            ),
        ));
    }
    Ok(snapshot)
}

impl CausalLm {
    /// Loads `config.json` and the safetensors weights (single file or sharded) of a Hugging
    /// Face checkpoint directory onto `device` as f32. Every parameter trains.
    pub fn from_dir(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let cfg = LmConfig::from_file(dir.join("config.json"))?;
        let tensors = read_tensors(&safetensors_files(dir)?)?;
        Self::from_tensors(cfg, tensors, device).map_err(|e| match e {
            PolicyError::Config(detail) => checkpoint_err(dir, detail),
            other => other,
        })
    }

    /// Loads `repo_id` at `revision` from the hf-hub cache (see [`hf_cache_snapshot`]).
    pub fn from_hf_cache(repo_id: &str, revision: &str, device: &Device) -> Result<Self> {
        Self::from_dir(hf_cache_snapshot(repo_id, revision)?, device)
    }

    /// Writes `config.json` and `model.safetensors` (every weight, f32, Hugging Face names)
    /// into `dir`, creating it; [`CausalLm::from_dir`] reads them back.
    pub fn save_pretrained(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let cfg_path = dir.join("config.json");
        std::fs::write(&cfg_path, self.config().to_json_string()).map_err(io_err(&cfg_path))?;
        let tensors: HashMap<String, Tensor> = self
            .all_params()
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().to_device(&Device::Cpu)?)))
            .collect::<Result<_>>()?;
        let path = dir.join("model.safetensors");
        candle_core::safetensors::save(&tensors, &path)?;
        Ok(())
    }

    /// Overwrites the weights with those of a safetensors file written by
    /// [`CausalLm::save_pretrained`] (names and shapes must match exactly).
    pub fn load_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut tensors = read_tensors(&[path.to_path_buf()])?;
        if self.config().tie_word_embeddings {
            tensors.remove("lm_head.weight");
        }
        let params = self.all_params();
        if tensors.len() != params.len() {
            return Err(checkpoint_err(
                path,
                format!("{} tensors for {} weights", tensors.len(), params.len()),
            ));
        }
        for (name, var) in &params {
            let t = tensors
                .get(name)
                .ok_or_else(|| checkpoint_err(path, format!("missing {name}")))?;
            if t.dims() != var.dims() {
                return Err(checkpoint_err(
                    path,
                    format!("{name} has shape {:?}, expected {:?}", t.dims(), var.dims()),
                ));
            }
        }
        for (name, var) in params {
            let t = tensors[&name]
                .to_dtype(candle_core::DType::F32)?
                .to_device(self.device())?;
            var.set(&t)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::lm::tests::{max_abs_diff, sample_tokens, tiny_config};

    #[test]
    fn save_pretrained_round_trips_and_sharded_indexes_load() {
        let dir = tempfile::tempdir().unwrap();
        let model = CausalLm::random(tiny_config("qwen2", false), 11, &Device::Cpu).unwrap();
        model.save_pretrained(dir.path()).unwrap();
        let back = CausalLm::from_dir(dir.path(), &Device::Cpu).unwrap();
        let x = sample_tokens(2, 5, 300, 4);
        assert_eq!(
            max_abs_diff(&model.logits(&x).unwrap(), &back.logits(&x).unwrap()),
            0.0
        );
        // Split the file into two shards with an index.
        let all =
            candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu)
                .unwrap();
        std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
        let mut names: Vec<_> = all.keys().cloned().collect();
        names.sort();
        let mut weight_map = serde_json::Map::new();
        for (i, chunk) in names.chunks(names.len() / 2 + 1).enumerate() {
            let file = format!("model-0000{}-of-00002.safetensors", i + 1);
            let part: HashMap<_, _> = chunk.iter().map(|n| (n.clone(), all[n].clone())).collect();
            candle_core::safetensors::save(&part, dir.path().join(&file)).unwrap();
            for n in chunk {
                weight_map.insert(n.clone(), file.clone().into());
            }
        }
        let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            index.to_string(),
        )
        .unwrap();
        let sharded = CausalLm::from_dir(dir.path(), &Device::Cpu).unwrap();
        assert_eq!(
            max_abs_diff(&model.logits(&x).unwrap(), &sharded.logits(&x).unwrap()),
            0.0
        );
        // load_weights overwrites a differently seeded model.
        let other = CausalLm::random(tiny_config("qwen2", false), 12, &Device::Cpu).unwrap();
        model.save_pretrained(dir.path().join("again")).unwrap();
        other
            .load_weights(dir.path().join("again/model.safetensors"))
            .unwrap();
        assert_eq!(
            max_abs_diff(&model.logits(&x).unwrap(), &other.logits(&x).unwrap()),
            0.0
        );
        assert!(CausalLm::from_dir(dir.path().join("nowhere"), &Device::Cpu).is_err());
    }
}
