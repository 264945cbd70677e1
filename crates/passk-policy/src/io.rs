//! Saving and loading parameters as safetensors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::config::GptConfig;
use crate::error::{PolicyError, Result};
use crate::model::Gpt;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PolicyError + '_ {
    move |source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A temporary name beside `path`, unique to this process.
/// The safetensors file of `tensors`, in memory: the bytes `candle_core::safetensors::save`
/// writes, without the sibling temporary file (random name, no pid) that its writer leaves
/// behind when the process is killed mid-write. Callers write them under a name of their own.
pub fn safetensors_bytes(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    safetensors::serialize(tensors, None)
        .map_err(|e| PolicyError::Input(format!("cannot serialise tensors: {e}")))
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "weights".to_string());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

impl Gpt {
    /// Writes every parameter to `path` as safetensors (keys are the parameter names). The
    /// file is written under a temporary name and renamed into place, so a crash never leaves
    /// a half-written file at `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let tensors: HashMap<String, Tensor> = self
            .params()
            .into_iter()
            .map(|(name, var)| (name, var.as_tensor().detach()))
            .collect();
        let bytes = safetensors_bytes(&tensors)?;
        let tmp = temp_path(path);
        if let Err(e) = std::fs::write(&tmp, bytes) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_err(path)(e)
        })
    }

    /// Overwrites every parameter with the values stored in `path`. Fails without changing
    /// anything when a name is missing or unexpected, or a shape or dtype differs, listing
    /// every mismatch.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(io_err(path)(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such checkpoint",
            )));
        }
        let stored = candle_core::safetensors::load(path, self.device())?;
        let params = self.params();
        let mut problems = Vec::new();
        for (name, var) in &params {
            match stored.get(name) {
                None => problems.push(format!("missing {name}")),
                Some(t) if t.dims() != var.dims() => problems.push(format!(
                    "{name} has shape {:?}, model expects {:?}",
                    t.dims(),
                    var.dims()
                )),
                Some(t) if t.dtype() != DType::F32 => {
                    problems.push(format!("{name} is {:?}, model expects F32", t.dtype()))
                }
                Some(_) => {}
            }
        }
        let mut extra: Vec<&String> = stored.keys().filter(|k| self.var(k).is_none()).collect();
        extra.sort();
        problems.extend(extra.into_iter().map(|k| format!("unexpected {k}")));
        if !problems.is_empty() {
            return Err(PolicyError::Checkpoint {
                path: path.to_path_buf(),
                detail: problems.join("; "),
            });
        }
        for (name, var) in &params {
            var.set(&stored[name])?;
        }
        Ok(())
    }

    /// A model of shape `cfg` with the parameters stored in `path`.
    pub fn from_checkpoint(
        cfg: GptConfig,
        path: impl AsRef<Path>,
        device: &Device,
    ) -> Result<Self> {
        let model = Gpt::new(cfg, 0, device)?;
        model.load(path)?;
        Ok(model)
    }
}
