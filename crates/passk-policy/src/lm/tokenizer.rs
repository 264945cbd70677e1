//! Tokenizers for pretrained LMs: from a Hugging Face `tokenizer.json`, or rebuilt from the
//! `tokenizer.ggml.*` metadata of a GGUF file (byte-level BPE).

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::error::{PolicyError, Result};

/// The pre-tokenizer regex of llama.cpp's `qwen2` vocabularies (digits one at a time).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF `token_type` of control (special) tokens.
const TOKEN_TYPE_CONTROL: i32 = 3;
/// GGUF `token_type` of user-defined tokens (also matched whole).
const TOKEN_TYPE_USER: i32 = 4;

/// A text tokenizer with the model's special ids.
#[derive(Clone)]
pub struct LmTokenizer {
    inner: Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
}

fn tok_err(detail: impl std::fmt::Display) -> PolicyError {
    PolicyError::Config(format!("tokenizer: {detail}"))
}

impl LmTokenizer {
    /// Wraps a `tokenizers` tokenizer with its beginning- and end-of-sequence ids.
    pub fn new(inner: Tokenizer, bos: Option<u32>, eos: Option<u32>) -> Self {
        Self { inner, bos, eos }
    }

    /// Reads a Hugging Face `tokenizer.json`; `eos` defaults to `<|im_end|>` (ChatML models),
    /// then `<|endoftext|>`, then `</s>` when present.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let inner = Tokenizer::from_file(path).map_err(|e| PolicyError::Checkpoint {
            path: path.to_path_buf(),
            detail: format!("tokenizer.json does not load: {e}"),
        })?;
        let eos = ["<|im_end|>", "<|endoftext|>", "</s>"]
            .iter()
            .find_map(|t| inner.token_to_id(t));
        let bos = ["<|im_start|>", "<s>"]
            .iter()
            .find_map(|t| inner.token_to_id(t));
        Ok(Self { inner, bos, eos })
    }

    /// Rebuilds the byte-level BPE tokenizer described by GGUF metadata
    /// (`tokenizer.ggml.model = "gpt2"`, tokens, merges, token types, bos/eos ids). The
    /// pre-tokenizer follows `tokenizer.ggml.pre`: `smollm` splits every digit then applies
    /// GPT-2 byte-level splitting, `qwen2` uses Qwen2's regex, `gpt2`/`default` plain GPT-2.
    pub fn from_gguf_metadata(md: &HashMap<String, Value>) -> Result<Self> {
        let get = |k: &str| {
            md.get(k)
                .ok_or_else(|| tok_err(format!("metadata {k} is missing")))
        };
        let model = get("tokenizer.ggml.model")?.to_string().map_err(tok_err)?;
        if model != "gpt2" {
            return Err(tok_err(format!(
                "model {model:?} is not supported (only byte-level BPE \"gpt2\"); supply a \
                 tokenizer.json instead"
            )));
        }
        let tokens: Vec<String> = get("tokenizer.ggml.tokens")?
            .to_vec()
            .map_err(tok_err)?
            .iter()
            .map(|v| v.to_string().cloned().map_err(tok_err))
            .collect::<Result<_>>()?;
        let merges: Vec<(String, String)> = match md.get("tokenizer.ggml.merges") {
            Some(v) => v
                .to_vec()
                .map_err(tok_err)?
                .iter()
                .map(|m| {
                    let m = m.to_string().map_err(tok_err)?;
                    m.split_once(' ')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .ok_or_else(|| tok_err(format!("merge {m:?} has no space")))
                })
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        let types: Vec<i32> = match md.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .map_err(tok_err)?
                .iter()
                .map(|t| t.to_i32().map_err(tok_err))
                .collect::<Result<_>>()?,
            None => vec![1; tokens.len()],
        };
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(tok_err)?;
        let byte_level = ByteLevel::new(false, true, true);
        let pre = md
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .map_or("default", String::as_str);
        let pre_tokenizer: PreTokenizerWrapper = match pre {
            "smollm" => Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into(),
            "qwen2" => {
                let split = Split::new(
                    SplitPattern::Regex(QWEN2_SPLIT.to_string()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map_err(tok_err)?;
                Sequence::new(vec![
                    split.into(),
                    ByteLevel::new(false, true, false).into(),
                ])
                .into()
            }
            "gpt2" | "default" => byte_level.into(),
            other => {
                return Err(tok_err(format!(
                    "pre-tokenizer {other:?} is not supported; supply a tokenizer.json instead"
                )))
            }
        };
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre_tokenizer));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let specials: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, &ty)| ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER)
            .map(|(t, &ty)| AddedToken::from(t.clone(), ty == TOKEN_TYPE_CONTROL))
            .collect();
        inner.add_special_tokens(specials).map_err(tok_err)?;
        let id = |k: &str| md.get(k).and_then(|v| v.to_u32().ok());
        Ok(Self {
            inner,
            bos: id("tokenizer.ggml.bos_token_id"),
            eos: id("tokenizer.ggml.eos_token_id"),
        })
    }

    /// Token ids of `text` (no BOS/EOS added; special tokens written in the text, such as
    /// `<|im_start|>`, become their single ids).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .inner
            .encode(text, false)
            .map_err(tok_err)?
            .get_ids()
            .to_vec())
    }

    /// The text of `ids`; special tokens are dropped when `skip_special` is true.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special).map_err(tok_err)
    }

    /// The id of one token string, if it is in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The beginning-of-sequence id, if known.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence id (for ChatML models `<|im_end|>`), if known.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}
