//! [`LmCodec`]: task prompts as chat-formatted questions for a pretrained LM, and completions
//! judged by their last number.

use passk_policy::lm::{chatml, ChatMessage, LmTokenizer, SMOLLM2_SYSTEM};
use passk_tasks::{Check, Family, Prompt, StandardVerifier, Verdict, Verifier};
use serde::{Deserialize, Serialize};

use crate::batch::PromptCodec;
use crate::error::{Result, TrainError};
use crate::prompts::TrainPrompts;

/// How the question is wrapped before tokenisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatTemplate {
    /// ChatML with SmolLM2-Instruct's default system message (its own chat template).
    Smollm2,
    /// ChatML with no system message (Qwen2-style instruct models add their own in the text).
    Chatml,
    /// The bare question text (base models).
    Plain,
}

/// The question a pretrained LM is asked for a synthetic prompt: `What is 3 + 5?` for
/// addition, `What is 3 * 4?` for multiplication, `What is (12 + 5) mod 7?` for modular
/// arithmetic (operand zero padding removed); real-data prompts keep their text.
///
/// # Errors
/// Families whose answer format an instruct model cannot guess (reversed addition, countdown)
/// and prompt texts that do not parse.
pub fn question(prompt: &Prompt) -> Result<String> {
    let bad = |why: &str| TrainError::Config {
        field: "mixture.families".into(),
        problem: format!("prompt {:?}: {why}", prompt.id),
    };
    if !prompt.family.is_synthetic() {
        return Ok(prompt.text.clone());
    }
    let body = prompt
        .text
        .split_once('>')
        .map(|(_, rest)| rest)
        .ok_or_else(|| bad("has no <tag>"))?
        .trim_end_matches('=');
    let op = body
        .chars()
        .find(|c| matches!(c, '+' | '-' | '*'))
        .ok_or_else(|| bad("has no operator"))?;
    let (a, b) = body.split_once(op).ok_or_else(|| bad("has no operator"))?;
    let num = |s: &str| s.parse::<u64>().map_err(|_| bad("operand is not a number"));
    let (a, b) = (num(a)?, num(b)?);
    match prompt.family {
        Family::Addition | Family::Multiplication => Ok(format!("What is {a} {op} {b}?")),
        Family::Modular => {
            let m: String = prompt
                .text
                .trim_start_matches("<m")
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            Ok(format!("What is ({a} {op} {b}) mod {m}?"))
        }
        other => Err(bad(&format!(
            "the lm tier supports addition, multiplication and modular prompts, not {}",
            other.name()
        ))),
    }
}

/// A pretrained LM's tokenizer with a chat template: prompt `question + " " + instruction`
/// rendered by `template`, sampling stops at the model's end-of-turn ids, completions decoded
/// without special tokens and judged by their last number (synthetic prompts) or the standard
/// verifier (real data).
pub struct LmCodec {
    tok: LmTokenizer,
    template: ChatTemplate,
    instruction: String,
    stop: Vec<u32>,
    pad: u32,
    max_new_tokens: usize,
}

impl LmCodec {
    /// A codec for `tok`. Stop ids: the tokenizer's EOS, `<|im_end|>` and `<|endoftext|>`
    /// where they exist (the first is the masking EOS); padding: `<|endoftext|>` or the EOS.
    ///
    /// # Errors
    /// A tokenizer with none of those ids.
    pub fn new(
        tok: LmTokenizer,
        template: ChatTemplate,
        instruction: &str,
        max_new_tokens: usize,
    ) -> Result<Self> {
        let mut stop = Vec::new();
        let candidates = [
            tok.eos(),
            tok.token_id("<|im_end|>"),
            tok.token_id("<|endoftext|>"),
        ];
        for id in candidates.into_iter().flatten() {
            if !stop.contains(&id) {
                stop.push(id);
            }
        }
        let Some(&eos) = stop.first() else {
            return Err(TrainError::Config {
                field: "model".into(),
                problem: "its tokenizer has no EOS, <|im_end|> or <|endoftext|> token, so \
                          sampling could not stop; use an instruct model with a chat template"
                    .into(),
            });
        };
        let pad = tok.token_id("<|endoftext|>").unwrap_or(eos);
        Ok(Self {
            tok,
            template,
            instruction: instruction.to_string(),
            stop,
            pad,
            max_new_tokens,
        })
    }

    /// The text given to the tokenizer for `prompt`.
    pub fn render(&self, prompt: &Prompt) -> Result<String> {
        let q = question(prompt)?;
        let user = if self.instruction.is_empty() {
            q
        } else {
            format!("{q} {}", self.instruction)
        };
        Ok(match self.template {
            ChatTemplate::Smollm2 => chatml(
                &[ChatMessage::new("user", &user)],
                Some(SMOLLM2_SYSTEM),
                true,
            ),
            ChatTemplate::Chatml => chatml(&[ChatMessage::new("user", &user)], None, true),
            ChatTemplate::Plain => user,
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &LmTokenizer {
        &self.tok
    }
}

impl PromptCodec for LmCodec {
    /// BOS (only for the plain template; ChatML starts with `<|im_start|>`) and the rendered
    /// prompt.
    fn prompt(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        let mut ids: Vec<u32> = match (self.template, self.tok.bos()) {
            (ChatTemplate::Plain, Some(bos)) => vec![bos],
            _ => Vec::new(),
        };
        ids.extend(self.tok.encode(&self.render(prompt)?)?);
        Ok(ids)
    }

    fn stop_ids(&self) -> &[u32] {
        &self.stop
    }

    fn eos(&self) -> u32 {
        self.stop[0]
    }

    fn pad(&self) -> u32 {
        self.pad
    }

    /// The configured budget (answers are free text, not one token per character).
    fn max_new_tokens(&self, _source: &dyn TrainPrompts) -> usize {
        self.max_new_tokens
    }

    /// The ids before the first stop id, decoded without special tokens; `None` (incorrect)
    /// when no stop id was sampled: an answer cut off by the token budget is unfinished, and
    /// judging its last number would reward a cut-off echo of the question (`… 2 +` for
    /// `2 + 0`).
    fn completion_text(&self, ids: &[u32]) -> Option<String> {
        let end = ids.iter().position(|i| self.stop.contains(i))?;
        self.tok.decode(&ids[..end], true).ok()
    }

    /// Synthetic prompts: the last number of the text must equal the reference (leading
    /// zeros ignored), so `3 + 5 = 8.` is correct; real data: the standard verifier.
    fn verify(&self, prompt: &Prompt, text: &str) -> Verdict {
        if prompt.check == Check::Digits {
            let mut p = prompt.clone();
            p.check = Check::Svamp;
            return StandardVerifier.verify(&p, text);
        }
        StandardVerifier.verify(prompt, text)
    }
}
