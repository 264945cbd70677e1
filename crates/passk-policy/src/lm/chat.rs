//! The ChatML prompt format used by SmolLM2 and Qwen instruct models.

/// SmolLM2-Instruct's default system message (its chat template inserts it when the
/// conversation has none).
pub const SMOLLM2_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text of the turn.
    pub content: String,
}

impl ChatMessage {
    /// A turn with the given role and text.
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// Renders `messages` as ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n` per turn, with
/// `default_system` prepended as a system turn when the first message is not one, and
/// `<|im_start|>assistant\n` appended when `add_generation_prompt` is true. This is the
/// template shipped in SmolLM2-Instruct's GGUF (with [`SMOLLM2_SYSTEM`]) and Qwen2's.
pub fn chatml(
    messages: &[ChatMessage],
    default_system: Option<&str>,
    add_generation_prompt: bool,
) -> String {
    let mut out = String::new();
    let turn = |out: &mut String, role: &str, content: &str| {
        out.push_str("<|im_start|>");
        out.push_str(role);
        out.push('\n');
        out.push_str(content);
        out.push_str("<|im_end|>\n");
    };
    if let Some(system) = default_system {
        if messages.first().is_none_or(|m| m.role != "system") {
            turn(&mut out, "system", system);
        }
    }
    for m in messages {
        turn(&mut out, &m.role, &m.content);
    }
    if add_generation_prompt {
        out.push_str("<|im_start|>assistant\n");
    }
    out
}

/// A single user question as a SmolLM2-Instruct prompt ready for generation.
pub fn smollm2_prompt(user: &str) -> String {
    chatml(
        &[ChatMessage::new("user", user)],
        Some(SMOLLM2_SYSTEM),
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smollm2_template_matches_the_gguf_jinja_output() {
        // What the template in SmolLM2-135M-Instruct's GGUF renders for one user turn.
        let want = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by \
                    Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 3+4?<|im_end|>\n\
                    <|im_start|>assistant\n";
        assert_eq!(smollm2_prompt("What is 3+4?"), want);
        let with_system = chatml(
            &[
                ChatMessage::new("system", "Be brief."),
                ChatMessage::new("user", "Hi"),
            ],
            Some(SMOLLM2_SYSTEM),
            false,
        );
        assert_eq!(
            with_system,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        );
        assert_eq!(chatml(&[], None, true), "<|im_start|>assistant\n");
    }
}
