//! Objectives: turn ONE prompt's group of `n` rewards into per-sample policy-gradient weights.
//!
//! # Convention
//! For a prompt `x` with samples `y_1..y_n` and rewards `r_1..r_n` (binary: 0.0 or 1.0), an
//! objective returns weights `w_1..w_n` such that the gradient estimate for that prompt is
//! `Σ_i w_i ∇_θ log π_θ(y_i | x)`. The training loss is therefore
//! `−Σ_i w_i log π_θ(y_i | x)` (the trainer averages it over prompts, with weights treated as
//! constants). The `1/n` of the sample mean is already inside the weights.
//!
//! An objective is *unbiased* ([`Objective::unbiased`]) when `E[Σ_i w_i ∇ log π(y_i|x)]` equals
//! `∇ pass@k(x)` exactly, with `k` = [`Objective::k_for_group`]; for `k = 1` that is `∇p(x)`.
//! Every objective claiming it is checked by exact enumeration in this module's tests.
//!
//! # Specs and the registry
//! Objectives are named by spec strings: `"name"` or `"name:key=value[,key=value]"`, e.g.
//! `"pkpo_loo_minus_one:k=4"`. [`Objective::name`] returns the canonical spec, which
//! [`objective_from_spec`] parses back to the same objective.
//!
//! To add an objective: write `src/objective/<name>.rs` with a `pub const INFO: ObjectiveInfo`
//! (its `name` equal to the file name) and a
//! `pub fn build(&mut SpecParams) -> Result<Box<dyn Objective>, CoreError>`, then add the ONE
//! line `<name>,` to the `registry!` list below.

use crate::estimators::rho_unchecked;
use crate::CoreError;
use serde::Serialize;
use std::collections::BTreeMap;

/// Turns one prompt's group of rewards into per-sample gradient weights (see the module docs for
/// the sign and scaling convention).
pub trait Objective: Send + Sync {
    /// Canonical spec string, e.g. `"pkpo_loo_minus_one:k=4"`; parses back with
    /// [`objective_from_spec`].
    fn name(&self) -> String;
    /// Per-sample weights for one prompt's rewards (same length and order as `rewards`).
    ///
    /// # Errors
    /// [`CoreError::EmptyGroup`], [`CoreError::NonBinaryReward`] for binary-only objectives,
    /// [`CoreError::NonFiniteReward`], [`CoreError::InvalidK`] when `k > n`, and
    /// [`CoreError::GroupTooSmall`] when the objective needs more samples.
    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError>;
    /// The k it targets (1 for pass@1 objectives). `0` means "k equals the group size `n`",
    /// known only per group: use [`Objective::k_for_group`] then.
    fn k(&self) -> u32;
    /// Whether `E[Σ_i w_i ∇ log π(y_i|x)]` is exactly `∇ pass@k(x)` for `k = k_for_group(n)`.
    fn unbiased(&self) -> bool;
    /// The k targeted for a group of `n` samples (equal to [`Objective::k`] unless `k()` is 0).
    fn k_for_group(&self, n: usize) -> u32 {
        match self.k() {
            0 => u32::try_from(n).unwrap_or(u32::MAX),
            k => k,
        }
    }
    /// The objective whose weights the trainer uses at RL step `step` of `steps`, for an
    /// objective that follows a schedule (like `k_anneal`); `None`, the default, means `self`.
    fn at_step(&self, _step: u64, _steps: u64) -> Option<Box<dyn Objective>> {
        None
    }
    /// For an objective whose update is projected (like `conflict_projected`): the anchor
    /// objective whose gradient, estimated from the same samples, the update must not oppose.
    /// The trainer then steps along `g − min(0, ⟨g, a⟩) a / ‖a‖²`, with `g` this objective's
    /// gradient and `a` the anchor's. `None`, the default, means an unprojected step along `g`.
    fn projection_anchor(&self) -> Option<Box<dyn Objective>> {
        None
    }
    /// For a projected objective whose weights and anchor's weights cover disjoint prompts
    /// (like `group_projected`): the step adds the anchor's gradient back after the
    /// projection, `g − min(0, ⟨g, a⟩) a / ‖a‖² + a`, so only the objective's part is
    /// projected. `false`, the default, steps along the projected `g` alone.
    fn projection_adds_anchor(&self) -> bool {
        false
    }
}

/// A registry entry's public description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ObjectiveInfo {
    /// Registered name (the part of the spec before `:`).
    pub name: &'static str,
    /// Whether the spec must carry `:k=K`.
    pub needs_k: bool,
    /// One-line description, including whether it is biased.
    pub description: &'static str,
}

/// A parsed spec string: the objective name and its `key=value` parameters. Builders take the
/// parameters they understand; any left over is an error.
#[derive(Debug, Clone)]
pub struct SpecParams {
    spec: String,
    name: String,
    values: BTreeMap<String, String>,
}

impl SpecParams {
    /// Parses `"name"` or `"name:key=value[,key=value...]"` (whitespace around parts ignored).
    ///
    /// # Errors
    /// [`CoreError::BadSpec`] for an empty name, a parameter without `=`, or a repeated key.
    pub fn parse(spec: &str) -> Result<Self, CoreError> {
        let bad = |reason: String| CoreError::BadSpec {
            spec: spec.to_string(),
            reason,
        };
        let (name, rest) = match spec.split_once(':') {
            Some((n, r)) => (n.trim(), Some(r)),
            None => (spec.trim(), None),
        };
        if name.is_empty() {
            return Err(bad(
                "the objective name is empty; write e.g. 'pkpo_s:k=4'".into()
            ));
        }
        let mut values = BTreeMap::new();
        if let Some(rest) = rest {
            for part in rest.split(',') {
                let (key, value) = part.split_once('=').ok_or_else(|| {
                    bad(format!(
                        "parameter '{}' is not of the form key=value",
                        part.trim()
                    ))
                })?;
                let (key, value) = (key.trim(), value.trim());
                if key.is_empty() || value.is_empty() {
                    return Err(bad(format!(
                        "parameter '{}' has an empty key or value",
                        part.trim()
                    )));
                }
                if values.insert(key.to_string(), value.to_string()).is_some() {
                    return Err(bad(format!("parameter '{key}' is given twice")));
                }
            }
        }
        Ok(Self {
            spec: spec.to_string(),
            name: name.to_string(),
            values,
        })
    }

    /// The objective name (before `:`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Removes and parses an optional `u32` parameter.
    ///
    /// # Errors
    /// [`CoreError::BadSpec`] when the value is not a non-negative integer.
    pub fn take_u32(&mut self, key: &str) -> Result<Option<u32>, CoreError> {
        match self.values.remove(key) {
            None => Ok(None),
            Some(v) => v.parse::<u32>().map(Some).map_err(|_| CoreError::BadSpec {
                spec: self.spec.clone(),
                reason: format!("parameter {key}='{v}' is not a non-negative integer"),
            }),
        }
    }

    /// Removes and parses an optional finite `f64` parameter.
    ///
    /// # Errors
    /// [`CoreError::BadSpec`] when the value is not a finite number.
    pub fn take_f64(&mut self, key: &str) -> Result<Option<f64>, CoreError> {
        match self.values.remove(key) {
            None => Ok(None),
            Some(v) => match v.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(CoreError::BadSpec {
                    spec: self.spec.clone(),
                    reason: format!("parameter {key}='{v}' is not a finite number"),
                }),
            },
        }
    }

    /// Removes and returns the required parameter `k` (an integer >= 1).
    ///
    /// # Errors
    /// [`CoreError::BadSpec`] when `k` is missing, not an integer, or 0.
    pub fn require_k(&mut self) -> Result<u32, CoreError> {
        match self.take_u32("k")? {
            Some(k) if k >= 1 => Ok(k),
            Some(_) => Err(self.error("k must be >= 1")),
            None => Err(self.error(&format!(
                "'{}' needs k, write e.g. '{}:k=4'",
                self.name, self.name
            ))),
        }
    }

    /// Removes an optional `k`, which must equal 1 if present (for pass@1 objectives).
    ///
    /// # Errors
    /// [`CoreError::BadSpec`] when `k` is present and not 1.
    pub fn allow_k_one(&mut self) -> Result<(), CoreError> {
        match self.take_u32("k")? {
            None | Some(1) => Ok(()),
            Some(k) => Err(self.error(&format!(
                "'{}' is a pass@1 objective: k must be 1 or absent, got {k}",
                self.name
            ))),
        }
    }

    /// A [`CoreError::BadSpec`] for this spec with the given reason.
    pub fn error(&self, reason: &str) -> CoreError {
        CoreError::BadSpec {
            spec: self.spec.clone(),
            reason: reason.to_string(),
        }
    }

    /// Checks that every parameter was used.
    ///
    /// # Errors
    /// [`CoreError::BadSpec`] naming the unexpected parameters.
    pub fn finish(self) -> Result<(), CoreError> {
        if self.values.is_empty() {
            Ok(())
        } else {
            let keys: Vec<&str> = self.values.keys().map(String::as_str).collect();
            Err(self.error(&format!(
                "unexpected parameter(s) {} for '{}'",
                keys.join(", "),
                self.name
            )))
        }
    }
}

/// A registry entry: description plus constructor from parsed parameters.
struct Entry {
    #[cfg_attr(not(test), allow(dead_code))]
    module: &'static str,
    info: ObjectiveInfo,
    build: fn(&mut SpecParams) -> Result<Box<dyn Objective>, CoreError>,
}

/// Declares the objective modules and the registry in one list.
macro_rules! registry {
    ($($m:ident),* $(,)?) => {
        $(pub mod $m;)*
        const REGISTRY: &[Entry] = &[$(Entry {
            module: stringify!($m),
            info: $m::INFO,
            build: $m::build,
        }),*];
    };
}

registry! {
    pass1_rloo,
    pass1_grpo,
    pkpo_s,
    pkpo_loo,
    pkpo_loo_minus_one,
    chen,
    tang_loo,
    mix_pass1_passk,
    conflict_projected,
    k_anneal,
    sign_flipped,
    split_by_success,
    group_projected,
    entropic,
}

/// Builds an objective from a spec string such as `"pass1_rloo"` or `"pkpo_loo_minus_one:k=4"`.
///
/// # Errors
/// [`CoreError::UnknownObjective`] (listing the known names) or [`CoreError::BadSpec`].
pub fn objective_from_spec(spec: &str) -> Result<Box<dyn Objective>, CoreError> {
    let mut params = SpecParams::parse(spec)?;
    let entry = REGISTRY
        .iter()
        .find(|e| e.info.name == params.name())
        .ok_or_else(|| CoreError::UnknownObjective {
            name: params.name().to_string(),
            known: REGISTRY
                .iter()
                .map(|e| e.info.name)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let objective = (entry.build)(&mut params)?;
    params.finish()?;
    Ok(objective)
}

/// Every registered objective, in registry order.
pub fn registered_objectives() -> Vec<ObjectiveInfo> {
    REGISTRY.iter().map(|e| e.info).collect()
}

// ----- helpers shared by the objective files -----

/// Checks a group is non-empty, finite and fits in u32; returns `n`.
pub(crate) fn check_finite(rewards: &[f64]) -> Result<u32, CoreError> {
    if rewards.is_empty() {
        return Err(CoreError::EmptyGroup);
    }
    if let Some((index, &value)) = rewards.iter().enumerate().find(|(_, r)| !r.is_finite()) {
        return Err(CoreError::NonFiniteReward { index, value });
    }
    u32::try_from(rewards.len()).map_err(|_| CoreError::DimensionMismatch {
        what: "group size (must fit in u32)".into(),
        expected: u32::MAX as usize,
        got: rewards.len(),
    })
}

/// Checks a group is non-empty and binary; returns `(n, c)`.
pub(crate) fn check_binary(rewards: &[f64]) -> Result<(u32, u32), CoreError> {
    let n = check_finite(rewards)?;
    let mut c = 0u32;
    for (index, &value) in rewards.iter().enumerate() {
        if value == 1.0 {
            c += 1;
        } else if value != 0.0 {
            return Err(CoreError::NonBinaryReward { index, value });
        }
    }
    Ok((n, c))
}

/// Checks `1 <= k <= n`.
pub(crate) fn check_k(k: u32, n: u32) -> Result<(), CoreError> {
    if k == 0 || k > n {
        Err(CoreError::InvalidK { k, n })
    } else {
        Ok(())
    }
}

/// `ρ(n, c, k)` with `ρ(·, ·, 0) = 0`; arguments must satisfy `k <= n`, `c <= n`.
pub(crate) fn rho(n: u32, c: u32, k: u32) -> f64 {
    rho_unchecked(n, c, k)
}

/// `1 − ρ(n, c, k) = C(n−c, k) / C(n, k)` computed directly (no cancellation); 1 when `k = 0`.
/// Arguments must satisfy `k <= n`, `c <= n`.
pub(crate) fn one_minus_rho(n: u32, c: u32, k: u32) -> f64 {
    debug_assert!(k <= n && c <= n);
    if k == 0 || c == 0 {
        return 1.0;
    }
    if n - c < k {
        return 0.0;
    }
    let kf = k as f64;
    let log_prod: f64 = ((n - c + 1)..=n).map(|i| (-kf / i as f64).ln_1p()).sum();
    log_prod.exp()
}

/// The PKPO effective reward `s` for a sample: `k/n` if correct, else `(k/n) ρ(n−1, c, k−1)`.
pub(crate) fn pkpo_s_value(n: u32, c: u32, k: u32, correct: bool) -> f64 {
    let scale = k as f64 / n as f64;
    if correct {
        scale
    } else {
        scale * rho(n - 1, c, k - 1)
    }
}

#[cfg(test)]
mod tests;
