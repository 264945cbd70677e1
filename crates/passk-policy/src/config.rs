//! Model shape: [`GptConfig`] and its presets.

use crate::error::{PolicyError, Result};

/// Shape of the decoder-only transformer built by [`crate::Gpt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GptConfig {
    /// Number of token ids the model reads and predicts.
    pub vocab_size: usize,
    /// Maximum sequence length (number of learned positions).
    pub context: usize,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Number of attention heads; must divide `d_model`.
    pub n_head: usize,
    /// Hidden width of the MLP as a multiple of `d_model`.
    pub mlp_ratio: usize,
}

impl GptConfig {
    /// About 0.1M parameters (2 layers, d = 64, 4 heads, context 32): for tests and CI.
    pub fn nano(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            context: 32,
            n_layer: 2,
            d_model: 64,
            n_head: 4,
            mlp_ratio: 4,
        }
    }

    /// About 0.8M parameters (4 layers, d = 128, 4 heads, MLP 4x, context 32): the model of the
    /// feasibility study (804,864 parameters at a vocabulary of 29).
    pub fn small(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            context: 32,
            n_layer: 4,
            d_model: 128,
            n_head: 4,
            mlp_ratio: 4,
        }
    }

    /// About 4.8M parameters (6 layers, d = 256, 8 heads, MLP 4x, context 64).
    pub fn medium(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            context: 64,
            n_layer: 6,
            d_model: 256,
            n_head: 8,
            mlp_ratio: 4,
        }
    }

    /// Looks a preset up by name (`nano`, `small`, `medium`).
    pub fn preset(name: &str, vocab_size: usize) -> Result<Self> {
        match name {
            "nano" => Ok(Self::nano(vocab_size)),
            "small" => Ok(Self::small(vocab_size)),
            "medium" => Ok(Self::medium(vocab_size)),
            other => Err(PolicyError::Config(format!(
                "unknown preset {other:?}; use one of nano, small, medium"
            ))),
        }
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Hidden width of the MLP.
    pub fn mlp_hidden(&self) -> usize {
        self.d_model * self.mlp_ratio
    }

    /// Checks that every size is positive and that the heads divide the width.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("vocab_size", self.vocab_size),
            ("context", self.context),
            ("n_layer", self.n_layer),
            ("d_model", self.d_model),
            ("n_head", self.n_head),
            ("mlp_ratio", self.mlp_ratio),
        ];
        for (name, value) in fields {
            if value == 0 {
                return Err(PolicyError::Config(format!("{name} must be positive")));
            }
        }
        if !self.d_model.is_multiple_of(self.n_head) {
            return Err(PolicyError::Config(format!(
                "n_head ({}) must divide d_model ({})",
                self.n_head, self.d_model
            )));
        }
        if self.vocab_size > u32::MAX as usize {
            return Err(PolicyError::Config(
                "vocab_size must fit in a u32 token id".to_string(),
            ));
        }
        Ok(())
    }

    /// Number of scalar parameters of a model with this shape.
    pub fn num_params(&self) -> usize {
        let d = self.d_model;
        let h = self.mlp_hidden();
        let per_layer = 2 * d // ln1
            + d * 3 * d + 3 * d // qkv
            + d * d + d // attention output
            + 2 * d // ln2
            + d * h + h // fc
            + h * d + d; // mlp output
        self.vocab_size * d // token embedding
            + self.context * d // position embedding
            + self.n_layer * per_layer
            + 2 * d // final norm
            + d * self.vocab_size // untied head, no bias
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_matches_the_feasibility_model() {
        assert_eq!(GptConfig::small(29).num_params(), 804_864);
    }

    #[test]
    fn presets_have_the_advertised_sizes() {
        let nano = GptConfig::nano(29).num_params();
        let medium = GptConfig::medium(29).num_params();
        assert!((80_000..150_000).contains(&nano), "nano has {nano}");
        assert!(
            (4_000_000..6_000_000).contains(&medium),
            "medium has {medium}"
        );
        for name in ["nano", "small", "medium"] {
            GptConfig::preset(name, 29).unwrap().validate().unwrap();
        }
        assert!(GptConfig::preset("huge", 29).is_err());
    }

    #[test]
    fn validate_rejects_bad_shapes() {
        let mut cfg = GptConfig::nano(10);
        cfg.n_head = 3;
        assert!(cfg.validate().is_err());
        let mut cfg = GptConfig::nano(10);
        cfg.context = 0;
        assert!(cfg.validate().is_err());
    }
}
