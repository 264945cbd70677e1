//! The input check both model families run on a token batch before a forward pass.

use candle_core::{DType, Tensor};

use crate::error::{PolicyError, Result};

/// Checks that `tokens` is a non-empty `[B, T]` u32 batch whose ids lie below `vocab_size` and
/// whose positions, placed after `offset` cached ones, fit `context` (its size and the name
/// an error gives it); returns `(B, T)`.
pub(crate) fn check_tokens(
    tokens: &Tensor,
    offset: usize,
    context: (usize, &str),
    vocab_size: usize,
) -> Result<(usize, usize)> {
    if tokens.dtype() != DType::U32 {
        return Err(PolicyError::Input(format!(
            "tokens must be u32, got {:?}",
            tokens.dtype()
        )));
    }
    let (b, t) = tokens.dims2().map_err(|_| {
        PolicyError::Input(format!(
            "tokens must have shape [batch, time], got {:?}",
            tokens.dims()
        ))
    })?;
    if b == 0 || t == 0 {
        return Err(PolicyError::Input("empty token batch".to_string()));
    }
    let (limit, name) = context;
    if offset + t > limit {
        return Err(PolicyError::Input(format!(
            "sequence of {} positions exceeds {name} {limit}; shorten it",
            offset + t
        )));
    }
    let max = tokens.flatten_all()?.max(0)?.to_scalar::<u32>()?;
    if max as usize >= vocab_size {
        return Err(PolicyError::Input(format!(
            "token id {max} is outside the vocabulary of {vocab_size}"
        )));
    }
    Ok((b, t))
}
