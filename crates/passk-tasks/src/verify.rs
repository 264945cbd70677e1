//! The [`Verifier`] trait and the standard verifier for every [`Check`] kind.

use crate::math;
use crate::prompt::{Check, Prompt, Verdict};
use crate::synth;

/// Judges one completion of one prompt. Implementations never panic: anything they cannot parse
/// is an incorrect verdict with a reason.
pub trait Verifier {
    /// Verifies `completion` (the generated text after the prompt, without `<eos>`).
    fn verify(&self, prompt: &Prompt, completion: &str) -> Verdict;
}

/// The verifier for all families in this crate: exact digits for synthetic arithmetic, a safe
/// expression evaluator for countdown, extraction and exact equivalence for real math.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardVerifier;

impl Verifier for StandardVerifier {
    fn verify(&self, prompt: &Prompt, completion: &str) -> Verdict {
        match &prompt.check {
            Check::Digits => synth::verify_digits(&prompt.reference, completion),
            Check::Countdown { numbers, target } => {
                synth::verify_countdown(numbers, *target, completion)
            }
            Check::Gsm8k => math::verify_gsm8k(&prompt.reference, completion),
            Check::Math => math::verify_math(&prompt.reference, completion),
            Check::Svamp => math::verify_svamp(&prompt.reference, completion),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::{Failure, Family};
    use crate::synth::addition_prompt;

    #[test]
    fn dispatches_on_check_kind() {
        let v = StandardVerifier;
        let p = addition_prompt(123, 45, 3, Family::ReversedAddition, true);
        assert!(v.verify(&p, "8610").is_correct());
        let forward = v.verify(&p, "0168");
        assert_eq!(
            forward.failure(),
            Some(&Failure::WrongValue {
                expected: "8610".into()
            })
        );
        assert_eq!(p.alt_reference.as_deref(), forward.parsed());
        let mut g = p.clone();
        g.check = Check::Gsm8k;
        g.reference = "18".into();
        assert!(v.verify(&g, "#### 18").is_correct());
        g.check = Check::Math;
        assert!(v.verify(&g, r"\boxed{18}").is_correct());
        g.check = Check::Svamp;
        assert!(v.verify(&g, "18.0").is_correct());
    }
}
