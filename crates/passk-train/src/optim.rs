//! AdamW and SGD over named parameters (sorted by name), with state that can be saved and
//! loaded exactly.

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use crate::config::OptimizerKind;
use crate::error::{Result, TrainError};

/// First-moment decay of AdamW.
pub const ADAMW_BETA1: f64 = 0.9;
/// Second-moment decay of AdamW.
pub const ADAMW_BETA2: f64 = 0.999;
/// Denominator epsilon of AdamW.
pub const ADAMW_EPS: f64 = 1e-8;
/// Decoupled weight decay of AdamW (PyTorch's default).
pub const ADAMW_WEIGHT_DECAY: f64 = 0.01;

/// A first-order optimiser over a fixed, name-sorted list of parameters.
///
/// Missing gradients count as zero. Updates are plain tensor arithmetic in a fixed order, so
/// the same gradients give bit-identical parameters and state.
pub struct Optimizer {
    kind: OptimizerKind,
    lr: f64,
    beta2: f64,
    names: Vec<String>,
    /// First and second moments (AdamW only), in the order of `names`.
    moments: Vec<(Tensor, Tensor)>,
    steps: u64,
}

impl Optimizer {
    /// A fresh optimiser for `params` (as returned by `Gpt::params`, sorted by name).
    pub fn new(kind: OptimizerKind, lr: f64, params: &[(String, Var)]) -> Result<Self> {
        let names: Vec<String> = params.iter().map(|(n, _)| n.clone()).collect();
        if names.windows(2).any(|w| w[0] >= w[1]) {
            return Err(TrainError::Config {
                field: "params".into(),
                problem: "must be sorted by name without duplicates (use Gpt::params)".into(),
            });
        }
        let moments = match kind {
            OptimizerKind::Adamw => params
                .iter()
                .map(|(_, v)| Ok((v.zeros_like()?, v.zeros_like()?)))
                .collect::<Result<Vec<_>>>()?,
            OptimizerKind::Sgd => Vec::new(),
        };
        Ok(Self {
            kind,
            lr,
            beta2: ADAMW_BETA2,
            names,
            moments,
            steps: 0,
        })
    }

    /// Which algorithm this is.
    pub fn kind(&self) -> OptimizerKind {
        self.kind
    }

    /// Changes AdamW's second-moment decay (default [`ADAMW_BETA2`]) for later steps.
    pub fn set_beta2(&mut self, beta2: f64) {
        self.beta2 = beta2;
    }

    /// Changes the learning rate used by later steps (for schedules).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Number of updates applied so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    fn check_params(&self, params: &[(String, Var)]) -> Result<()> {
        if params.len() != self.names.len()
            || params.iter().zip(&self.names).any(|((n, _), m)| n != m)
        {
            return Err(TrainError::Config {
                field: "params".into(),
                problem: "differ from the parameters the optimiser was built for".into(),
            });
        }
        Ok(())
    }

    /// Applies one update to `params` from `grads` (`None`: every gradient is zero).
    pub fn step(&mut self, params: &[(String, Var)], grads: Option<&GradStore>) -> Result<()> {
        self.check_params(params)?;
        self.steps += 1;
        let t = self.steps as i32;
        for (i, (_, var)) in params.iter().enumerate() {
            // Detached copies: gradients and parameters carry the step's autograd graph, and
            // moments built from them would keep every step's graph alive (memory grows
            // ~100 MB per step on `small`).
            let theta = var.as_tensor().detach();
            let g = match grads.and_then(|g| g.get(var.as_tensor())) {
                Some(g) => g.detach(),
                None => theta.zeros_like()?,
            };
            let updated = match self.kind {
                OptimizerKind::Sgd => (&theta - g.affine(self.lr, 0.0)?)?,
                OptimizerKind::Adamw => {
                    let (m, v) = &self.moments[i];
                    let m = (m.affine(ADAMW_BETA1, 0.0)? + g.affine(1.0 - ADAMW_BETA1, 0.0)?)?;
                    let v =
                        (v.affine(self.beta2, 0.0)? + g.sqr()?.affine(1.0 - self.beta2, 0.0)?)?;
                    let m_hat = m.affine(1.0 / (1.0 - ADAMW_BETA1.powi(t)), 0.0)?;
                    let denom = v
                        .affine(1.0 / (1.0 - self.beta2.powi(t)), 0.0)?
                        .sqrt()?
                        .affine(1.0, ADAMW_EPS)?;
                    let step = (m_hat / denom)?.affine(self.lr, 0.0)?;
                    self.moments[i] = (m, v);
                    (theta.affine(1.0 - self.lr * ADAMW_WEIGHT_DECAY, 0.0)? - step)?
                }
            };
            var.set(&updated)?;
        }
        Ok(())
    }

    /// Writes the moments (safetensors, keys `m.<name>` / `v.<name>`) to `path`. The step count
    /// and kind are not in the file; store them with [`Optimizer::steps`] and restore them with
    /// [`Optimizer::load`].
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map: HashMap<String, Tensor> = HashMap::new();
        for (name, (m, v)) in self.names.iter().zip(&self.moments) {
            map.insert(format!("m.{name}"), m.clone());
            map.insert(format!("v.{name}"), v.clone());
        }
        // safetensors cannot hold an empty map meaningfully for SGD; store a marker.
        map.insert(
            "steps".into(),
            Tensor::new(&[self.steps as f64], &candle_core::Device::Cpu)?,
        );
        let bytes = passk_policy::safetensors_bytes(&map)?;
        std::fs::write(path, bytes).map_err(crate::error::io_err(path))
    }

    /// Restores the state written by [`Optimizer::save`] into an optimiser of the same kind
    /// over the same parameters.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let device = match self.moments.first() {
            Some((m, _)) => m.device().clone(),
            None => candle_core::Device::Cpu,
        };
        let stored = candle_core::safetensors::load(path, &device)?;
        let missing = |key: &str| TrainError::Checkpoint {
            path: path.to_path_buf(),
            detail: format!("optimiser state lacks `{key}`"),
        };
        let steps = stored.get("steps").ok_or_else(|| missing("steps"))?;
        let steps = steps.to_dtype(DType::F64)?.to_vec1::<f64>()?[0] as u64;
        let mut moments = Vec::with_capacity(self.moments.len());
        for (name, (m0, _)) in self.names.iter().zip(&self.moments) {
            let mk = format!("m.{name}");
            let vk = format!("v.{name}");
            let m = stored.get(&mk).ok_or_else(|| missing(&mk))?;
            let v = stored.get(&vk).ok_or_else(|| missing(&vk))?;
            if m.dims() != m0.dims() || v.dims() != m0.dims() {
                return Err(TrainError::Checkpoint {
                    path: path.to_path_buf(),
                    detail: format!("optimiser state for {name} has the wrong shape"),
                });
            }
            moments.push((m.clone(), v.clone()));
        }
        self.moments = moments;
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn quad(var: &Var) -> GradStore {
        // loss = sum((x - 3)^2) -> grad 2 (x - 3)
        let loss = var.as_tensor().affine(1.0, -3.0).unwrap().sqr().unwrap();
        loss.sum_all().unwrap().backward().unwrap()
    }

    fn param(values: &[f32]) -> Vec<(String, Var)> {
        let t = Tensor::new(values, &Device::Cpu).unwrap();
        vec![("x".to_string(), Var::from_tensor(&t).unwrap())]
    }

    #[test]
    fn sgd_matches_the_closed_form() {
        let p = param(&[1.0, 5.0]);
        let mut opt = Optimizer::new(OptimizerKind::Sgd, 0.25, &p).unwrap();
        let g = quad(&p[0].1);
        opt.step(&p, Some(&g)).unwrap();
        // x - 0.25 * 2 (x - 3) = 0.5 x + 1.5
        assert_eq!(p[0].1.as_tensor().to_vec1::<f32>().unwrap(), vec![2.0, 4.0]);
    }

    #[test]
    fn adamw_first_step_is_lr_times_sign() {
        let p = param(&[1.0, 5.0]);
        let mut opt = Optimizer::new(OptimizerKind::Adamw, 0.1, &p).unwrap();
        let g = quad(&p[0].1);
        opt.step(&p, Some(&g)).unwrap();
        let x = p[0].1.as_tensor().to_vec1::<f32>().unwrap();
        // Bias-corrected first step: m_hat / sqrt(v_hat) = sign(g); decay 1 - 0.1 * 0.01.
        let want = [1.0 * (1.0 - 0.001) + 0.1, 5.0 * (1.0 - 0.001) - 0.1];
        for (a, b) in x.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn optimizer_state_keeps_no_autograd_graph() {
        // Moments built from graph-carrying gradients kept every step's graph alive: the
        // `small` warm start grew by ~100 MB a step until the kernel killed it.
        let p = param(&[1.0, 5.0]);
        let mut opt = Optimizer::new(OptimizerKind::Adamw, 0.1, &p).unwrap();
        // A gradient that still carries a graph, as the fused kernels' backward produces.
        let mut g = quad(&p[0].1);
        let tracked = p[0].1.as_tensor().affine(2.0, -6.0).unwrap();
        assert!(tracked.track_op());
        g.insert(p[0].1.as_tensor(), tracked);
        opt.step(&p, Some(&g)).unwrap();
        for (m, v) in &opt.moments {
            assert!(!m.track_op() && !v.track_op());
        }
    }

    #[test]
    fn adamw_converges_on_a_quadratic() {
        let p = param(&[0.0, 6.0]);
        let mut opt = Optimizer::new(OptimizerKind::Adamw, 0.05, &p).unwrap();
        for _ in 0..400 {
            let g = quad(&p[0].1);
            opt.step(&p, Some(&g)).unwrap();
        }
        for x in p[0].1.as_tensor().to_vec1::<f32>().unwrap() {
            assert!((x - 3.0).abs() < 0.1, "{x}");
        }
    }

    #[test]
    fn saved_state_resumes_bit_identically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        let a = param(&[0.5, -2.0, 7.0]);
        let mut opt_a = Optimizer::new(OptimizerKind::Adamw, 0.01, &a).unwrap();
        for _ in 0..3 {
            let g = quad(&a[0].1);
            opt_a.step(&a, Some(&g)).unwrap();
        }
        opt_a.save(&path).unwrap();
        let b = param(&a[0].1.as_tensor().to_vec1::<f32>().unwrap());
        let mut opt_b = Optimizer::new(OptimizerKind::Adamw, 0.01, &b).unwrap();
        opt_b.load(&path).unwrap();
        assert_eq!(opt_b.steps(), 3);
        for _ in 0..4 {
            let g = quad(&a[0].1);
            opt_a.step(&a, Some(&g)).unwrap();
            let g = quad(&b[0].1);
            opt_b.step(&b, Some(&g)).unwrap();
        }
        let xa = a[0].1.as_tensor().to_vec1::<f32>().unwrap();
        let xb = b[0].1.as_tensor().to_vec1::<f32>().unwrap();
        assert_eq!(
            xa.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            xb.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn missing_gradients_count_as_zero_and_mismatched_params_fail() {
        let p = param(&[1.0]);
        let mut opt = Optimizer::new(OptimizerKind::Sgd, 0.1, &p).unwrap();
        opt.step(&p, None).unwrap();
        assert_eq!(p[0].1.as_tensor().to_vec1::<f32>().unwrap(), vec![1.0]);
        let q = vec![("y".to_string(), p[0].1.clone())];
        assert!(opt.step(&q, None).is_err());
    }
}
