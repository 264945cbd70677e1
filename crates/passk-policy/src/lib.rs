//! The tiny transformer policy of the pass@k interference suite, in candle.
//!
//! - [`GptConfig`] and its presets ([`GptConfig::nano`], [`GptConfig::small`],
//!   [`GptConfig::medium`]) describe a pre-norm decoder-only transformer.
//! - [`Gpt`] holds the named parameters (initialised from a seeded generator, listed sorted by
//!   name), computes differentiable logits and sequence log-probabilities
//!   ([`Gpt::sequence_logprobs`], [`SequenceBatch`]), samples with a KV cache on detached
//!   weights ([`Gpt::sample`]) and saves/loads safetensors ([`Gpt::save`], [`Gpt::load`]).
//! - [`Policy`] is what RL and the gradient probe need from a model (trainable parameters,
//!   differentiable log-probabilities, seeded batched sampling); [`Gpt`] and
//!   [`lm::CausalLm`] implement it.
//! - [`DeviceChoice`] parses `cpu` / `cuda` / `auto`; [`clip_grad_norm`] clips gradients in a
//!   deterministic order.
//!
//! On the CPU the training forward pass uses fused kernels with hand-written backward passes
//! (layer norm, bias + GELU, bias + residual, causal attention, token log-probability); on other
//! devices, or after [`Gpt::set_fused_kernels`]`(false)`, the same maths is built from generic
//! candle ops. The two agree to float rounding (tested), and the fused path is bit-identical
//! for any thread count.

mod config;
mod device;
mod erf;
mod error;
mod fused;
mod grad;
mod io;
pub mod lm;
mod model;
mod ops;
mod policy;
mod process;
mod sample;
mod tokens;

pub use config::GptConfig;
pub use device::DeviceChoice;
pub use error::{PolicyError, Result};
pub use grad::{clip_grad_norm, grad_norm};
pub use io::safetensors_bytes;
pub use model::{Gpt, KvCache, SequenceBatch};
pub use policy::Policy;
pub use process::tune_process;
pub use sample::{choose_token, SamplingParams};

#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
#[cfg(test)]
mod tests;
