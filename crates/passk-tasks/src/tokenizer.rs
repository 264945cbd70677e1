//! Tokenizers behind one trait: a character/digit tokenizer for models trained from scratch and a
//! wrapper over the `tokenizers` crate (`tokenizer.json`) for pretrained models, plus the helpers
//! the trainer needs (prompt ids, SFT target ids, verifying sampled ids).

use crate::prompt::{Prompt, Verdict};
use crate::synth::tag_tokens;
use crate::verify::Verifier;
use crate::Failure;
use std::collections::HashMap;
use std::path::Path;

/// Tokenizer failures.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A symbol in the text is not in the vocabulary.
    #[error(
        "symbol {symbol:?} at byte {at} is not in the vocabulary; use only the families' symbols"
    )]
    UnknownSymbol {
        /// The symbol.
        symbol: String,
        /// Its byte offset.
        at: usize,
    },
    /// A token id outside the vocabulary.
    #[error("token id {0} is outside the vocabulary")]
    UnknownId(u32),
    /// The vocabulary given is unusable.
    #[error("bad vocabulary: {0}")]
    BadVocab(String),
    /// A required special token is missing.
    #[error("special token {0:?} is not in the tokenizer's vocabulary; pass one that is, or none")]
    MissingSpecial(String),
    /// The `tokenizers` crate failed (loading, encoding or decoding).
    #[error("tokenizers: {0}")]
    Backend(String),
}

/// A text ↔ token-id mapping with optional BOS / EOS / PAD ids.
pub trait Tokenizer {
    /// Token ids of `text` (no BOS or EOS added).
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError>;
    /// Text of `ids` (special tokens rendered as their strings).
    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError>;
    /// Number of ids.
    fn vocab_size(&self) -> usize;
    /// Beginning-of-sequence id, if any.
    fn bos_id(&self) -> Option<u32>;
    /// End-of-sequence id, if any.
    fn eos_id(&self) -> Option<u32>;
    /// Padding id, if any.
    fn pad_id(&self) -> Option<u32>;
}

/// The model input for a prompt: BOS (if the tokenizer has one) then the prompt text.
pub fn prompt_ids<T: Tokenizer + ?Sized>(
    tok: &T,
    prompt: &Prompt,
) -> Result<Vec<u32>, TokenizerError> {
    let mut ids: Vec<u32> = tok.bos_id().into_iter().collect();
    ids.extend(tok.encode(&prompt.text)?);
    Ok(ids)
}

/// The SFT target for a prompt: the reference answer then EOS (if the tokenizer has one).
pub fn reference_ids<T: Tokenizer + ?Sized>(
    tok: &T,
    prompt: &Prompt,
) -> Result<Vec<u32>, TokenizerError> {
    let mut ids = tok.encode(&prompt.reference)?;
    ids.extend(tok.eos_id());
    Ok(ids)
}

/// The text of a sampled completion: ids up to (not including) the first EOS, PAD ids dropped.
pub fn completion_text<T: Tokenizer + ?Sized>(
    tok: &T,
    ids: &[u32],
) -> Result<String, TokenizerError> {
    let end = tok
        .eos_id()
        .and_then(|e| ids.iter().position(|&i| i == e))
        .unwrap_or(ids.len());
    let kept: Vec<u32> = ids[..end]
        .iter()
        .copied()
        .filter(|&i| Some(i) != tok.pad_id())
        .collect();
    tok.decode(&kept)
}

/// Decodes sampled completion ids and verifies them; undecodable ids give an incorrect verdict.
pub fn verify_ids<T: Tokenizer + ?Sized, V: Verifier + ?Sized>(
    verifier: &V,
    tok: &T,
    prompt: &Prompt,
    ids: &[u32],
) -> Verdict {
    match completion_text(tok, ids) {
        Ok(text) => verifier.verify(prompt, &text),
        Err(e) => Verdict::Incorrect {
            parsed: None,
            reason: Failure::Unparseable {
                detail: e.to_string(),
            },
        },
    }
}

/// One token per character, except `<…>` tag tokens; built for the synthetic families.
#[derive(Debug, Clone)]
pub struct CharTokenizer {
    vocab: Vec<String>,
    ascii: [Option<u32>; 128],
    tags: HashMap<String, u32>,
}

/// Padding token string.
pub const PAD: &str = "<pad>";
/// Beginning-of-sequence token string.
pub const BOS: &str = "<bos>";
/// End-of-sequence token string.
pub const EOS: &str = "<eos>";

impl CharTokenizer {
    /// The vocabulary of every synthetic family: `<pad> <bos> <eos>`, the digits,
    /// `+ - * / ( ) = , :` and the tag tokens (ids fixed by this order).
    pub fn synthetic() -> Self {
        let mut vocab: Vec<String> = [PAD, BOS, EOS].iter().map(|s| s.to_string()).collect();
        vocab.extend(('0'..='9').map(String::from));
        vocab.extend(
            ["+", "-", "*", "/", "(", ")", "=", ",", ":"]
                .iter()
                .map(|s| s.to_string()),
        );
        vocab.extend(tag_tokens());
        Self::from_vocab(vocab).expect("the built-in vocabulary is valid")
    }

    /// A tokenizer over `vocab` (id = position): single ASCII characters and `<…>` tags; it must
    /// contain `<pad>`, `<bos>` and `<eos>` and no duplicates.
    pub fn from_vocab(vocab: Vec<String>) -> Result<Self, TokenizerError> {
        let mut ascii = [None; 128];
        let mut tags = HashMap::new();
        for (i, sym) in vocab.iter().enumerate() {
            let id = i as u32;
            let dup = if sym.len() == 1 && sym.is_ascii() {
                ascii[sym.as_bytes()[0] as usize].replace(id).is_some()
            } else if sym.starts_with('<')
                && sym.ends_with('>')
                && sym.len() > 2
                && !sym[1..].contains('<')
            {
                tags.insert(sym.clone(), id).is_some()
            } else {
                return Err(TokenizerError::BadVocab(format!(
                    "{sym:?}: entries must be one ASCII character or a <tag>"
                )));
            };
            if dup {
                return Err(TokenizerError::BadVocab(format!("{sym:?} appears twice")));
            }
        }
        for s in [PAD, BOS, EOS] {
            if !tags.contains_key(s) {
                return Err(TokenizerError::BadVocab(format!("missing {s}")));
            }
        }
        Ok(Self { vocab, ascii, tags })
    }

    /// The vocabulary, indexed by id.
    pub fn vocab(&self) -> &[String] {
        &self.vocab
    }

    fn special(&self, s: &str) -> u32 {
        self.tags[s]
    }
}

impl Tokenizer for CharTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let b = text.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'<' {
                if let Some(len) = b[i..].iter().take(16).position(|&c| c == b'>') {
                    let sym = &text[i..i + len + 1];
                    if let Some(&id) = self.tags.get(sym) {
                        out.push(id);
                        i += len + 1;
                        continue;
                    }
                }
            }
            match b[i].is_ascii().then(|| self.ascii[b[i] as usize]).flatten() {
                Some(id) => out.push(id),
                None => {
                    let symbol = text[i..]
                        .chars()
                        .next()
                        .map(String::from)
                        .unwrap_or_default();
                    return Err(TokenizerError::UnknownSymbol { symbol, at: i });
                }
            }
            i += 1;
        }
        Ok(out)
    }

    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let mut s = String::with_capacity(ids.len());
        for &id in ids {
            s.push_str(
                self.vocab
                    .get(id as usize)
                    .ok_or(TokenizerError::UnknownId(id))?,
            );
        }
        Ok(s)
    }

    fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    fn bos_id(&self) -> Option<u32> {
        Some(self.special(BOS))
    }

    fn eos_id(&self) -> Option<u32> {
        Some(self.special(EOS))
    }

    fn pad_id(&self) -> Option<u32> {
        Some(self.special(PAD))
    }
}

/// Names of the special tokens of a pretrained tokenizer (each optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning-of-sequence token, e.g. `<|im_start|>`.
    pub bos: Option<String>,
    /// End-of-sequence token, e.g. `<|im_end|>` or `<|endoftext|>`.
    pub eos: Option<String>,
    /// Padding token.
    pub pad: Option<String>,
}

/// A pretrained tokenizer loaded from a `tokenizer.json` through the `tokenizers` crate.
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    pad: Option<u32>,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("pad", &self.pad)
            .finish()
    }
}

impl HfTokenizer {
    /// Loads `tokenizer.json` from `path` and resolves the named special tokens.
    pub fn from_file(path: &Path, special: &SpecialTokens) -> Result<Self, TokenizerError> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| TokenizerError::Backend(format!("{}: {e}", path.display())))?;
        Self::from_tokenizer(inner, special)
    }

    /// Wraps an already built tokenizer and resolves the named special tokens.
    pub fn from_tokenizer(
        inner: tokenizers::Tokenizer,
        special: &SpecialTokens,
    ) -> Result<Self, TokenizerError> {
        let resolve = |name: &Option<String>| -> Result<Option<u32>, TokenizerError> {
            match name {
                None => Ok(None),
                Some(n) => inner
                    .token_to_id(n)
                    .map(Some)
                    .ok_or_else(|| TokenizerError::MissingSpecial(n.clone())),
            }
        };
        let (bos, eos, pad) = (
            resolve(&special.bos)?,
            resolve(&special.eos)?,
            resolve(&special.pad)?,
        );
        Ok(Self {
            inner,
            bos,
            eos,
            pad,
        })
    }

    /// The wrapped tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

impl Tokenizer for HfTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| TokenizerError::Backend(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let n = self.vocab_size() as u32;
        if let Some(&bad) = ids.iter().find(|&&i| i >= n) {
            return Err(TokenizerError::UnknownId(bad));
        }
        self.inner
            .decode(ids, false)
            .map_err(|e| TokenizerError::Backend(e.to_string()))
    }

    fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    fn pad_id(&self) -> Option<u32> {
        self.pad
    }
}

#[cfg(test)]
mod tests;
