//! Where RL draws its training prompts: a synthetic [`Mixture`] or a fixed pool of dataset
//! prompts ([`PromptPool`]).

use passk_core::rng::uniform_index;
use passk_tasks::{Mixture, Prompt, Split};
use rand::RngCore;

use crate::error::{Result, TrainError};

/// A source of training prompts for [`crate::rollouts`].
pub trait TrainPrompts {
    /// One training prompt drawn with `rng`.
    fn draw(&self, rng: &mut dyn RngCore) -> Result<Prompt>;
    /// Characters of the longest reference answer a drawn prompt can have.
    fn max_reference_chars(&self) -> usize;
}

impl TrainPrompts for Mixture {
    /// A prompt of the train split ([`Mixture::sample`]).
    fn draw(&self, rng: &mut dyn RngCore) -> Result<Prompt> {
        Ok(self.sample(rng, Split::Train)?)
    }

    fn max_reference_chars(&self) -> usize {
        Mixture::max_reference_chars(self)
    }
}

/// A fixed list of prompts drawn uniformly with replacement (one `next_u64`-based uniform
/// index per draw, see [`uniform_index`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PromptPool {
    prompts: Vec<Prompt>,
}

impl PromptPool {
    /// A pool of `prompts`.
    ///
    /// # Errors
    /// An empty list.
    pub fn new(prompts: Vec<Prompt>) -> Result<Self> {
        if prompts.is_empty() {
            return Err(TrainError::Config {
                field: "data".into(),
                problem: "the training pool has no prompts left; choose fewer eval and probe \
                          prompts or another train split"
                    .into(),
            });
        }
        Ok(Self { prompts })
    }

    /// The prompts, in order.
    pub fn prompts(&self) -> &[Prompt] {
        &self.prompts
    }
}

impl TrainPrompts for PromptPool {
    fn draw(&self, rng: &mut dyn RngCore) -> Result<Prompt> {
        Ok(self.prompts[uniform_index(rng, self.prompts.len())].clone())
    }

    fn max_reference_chars(&self) -> usize {
        self.prompts
            .iter()
            .map(|p| p.reference.chars().count())
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use passk_core::rng::seeded;
    use passk_tasks::MixtureConfig;

    use super::*;

    #[test]
    fn a_mixture_draws_what_its_sampler_draws() {
        let mixture = Mixture::new(MixtureConfig::preset("arithmetic").unwrap()).unwrap();
        let (mut a, mut b) = (seeded(3, &[1]), seeded(3, &[1]));
        for _ in 0..20 {
            let via_trait = TrainPrompts::draw(&mixture, &mut a).unwrap();
            assert_eq!(via_trait, mixture.sample(&mut b, Split::Train).unwrap());
        }
    }

    #[test]
    fn a_pool_draws_every_prompt_and_refuses_to_be_empty() {
        let mixture = Mixture::new(MixtureConfig::preset("arithmetic").unwrap()).unwrap();
        let prompts = mixture.generate_distinct(Split::Eval, 5, 1).unwrap();
        let pool = PromptPool::new(prompts.clone()).unwrap();
        let mut rng = seeded(9, &[2]);
        let drawn: Vec<Prompt> = (0..200).map(|_| pool.draw(&mut rng).unwrap()).collect();
        for p in &prompts {
            assert!(drawn.contains(p));
        }
        assert!(PromptPool::new(Vec::new()).is_err());
        let longest = prompts.iter().map(|p| p.reference.len()).max().unwrap();
        assert_eq!(pool.max_reference_chars(), longest);
    }
}
