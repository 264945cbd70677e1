//! Pretrained Llama/Qwen2-family causal language models (SmolLM2, Qwen2.5, ...).
//!
//! - [`LmConfig`] reads a Hugging Face `config.json`.
//! - Loading: [`CausalLm::from_dir`] (safetensors, single or sharded),
//!   [`CausalLm::from_hf_cache`] (hf-hub cache under `HF_HOME`, by repo id and revision),
//!   [`CausalLm::from_gguf`] / [`read_gguf`] (llama.cpp files, dequantised to f32);
//!   [`LmTokenizer`] from `tokenizer.json` or GGUF metadata; [`chatml`] prompts.
//! - [`CausalLm`] holds the weights as `Var`s named as in Hugging Face checkpoints, computes
//!   differentiable logits and sequence log-probabilities from ops that all have a backward
//!   pass, trains all parameters or only the last blocks ([`Trainable`]), and samples with a
//!   KV cache on detached weights ([`CausalLm::sample`]). It computes in f32 by default, or in
//!   bf16/f16 with f32 norms, softmaxes and log-probabilities
//!   ([`CausalLm::set_compute_dtype`]; the LM tier uses bf16 on CUDA).
//!
//! RoPE is applied in the Hugging Face rotate-half layout everywhere; weights read from a
//! llama.cpp GGUF file have llama.cpp's Q/K row permutation undone when they are loaded.

mod attend;
mod chat;
mod config;
mod decode;
mod frozen;
mod gguf;
mod head_op;
mod init;
mod load;
mod logprobs;
mod model;
mod ops;
mod packed;
mod sample;
mod tokenizer;

pub use chat::{chatml, smollm2_prompt, ChatMessage, SMOLLM2_SYSTEM};
pub use config::{LmConfig, TokenIds};
pub use gguf::{gguf_name, hf_name, permute_rope_rows, read_gguf, write_gguf, GgufCheckpoint};
pub use init::param_shapes;
pub use load::{hf_cache_snapshot, safetensors_files};
pub use model::{CausalLm, LmCache, Trainable};
pub use sample::SAMPLE_MAX_ROWS;
pub use tokenizer::LmTokenizer;

#[cfg(test)]
mod dtype_tests;
#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod real_tests;
#[cfg(test)]
mod tests;
