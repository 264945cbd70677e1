//! The statistics a claim may name: one enum, each variant with its name in the claims file,
//! what it measures, the tier whose cells it reads, and what its value is (an estimate, a
//! p-value or a bound of an interval).

use crate::tier::Tier;

/// A change over seeds of held-out pass@1 or pass@k, final minus warm start (tiny tier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// Mean change of pass@1.
    Pass1Mean,
    /// Upper end of the 95% t-interval of the change of pass@1.
    Pass1CiHigh,
    /// Lower end of that interval.
    Pass1CiLow,
    /// Lower end of the 95% t-interval of the change of pass@k, k of the objective.
    PasskCiLow,
    /// One-sided p-value for a mean change of pass@1 below `-effect`.
    Pass1PBelow,
    /// One-sided p-value for a mean change of pass@k above `effect`.
    PasskPAbove,
}

/// Which statistic of the probe block `reversed_addition->addition` (tiny tier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeBlock {
    /// Largest upper end of the block's 95% interval over cells, at the warm start.
    CiHighMax,
    /// Smallest lower end, at the warm start.
    CiLowMin,
    /// Share of cells whose interval lies below 0, at the warm start.
    NegativeShare,
    /// As `CiHighMax`, at each cell's last probe.
    EndCiHighMax,
    /// As `NegativeShare`, at each cell's last probe.
    EndNegativeShare,
}

/// Which value of the switch point in q (tiny tier, see `claims::switch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// Lower end of the 95% interval of q*_fall.
    FallCiLow,
    /// Upper end of that interval.
    FallCiHigh,
    /// The larger of |low| and |high| of the interval of q*_fall − q*_int.
    GapCiAbsMax,
}

/// A paired comparison with the claim's `against` objective at the same q and seed (tiny tier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versus {
    /// Mean over seeds of Δpass@1 minus the reference's Δpass@1.
    Pass1Mean,
    /// Lower end of the 95% t-interval of that difference.
    Pass1CiLow,
    /// Lower end of the 95% t-interval of Δpass@k minus `effect` times the reference's
    /// Δpass@k, k of the reference objective.
    PasskShareCiLow,
}

/// A statistic a claim can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    /// Exact tier: largest |⟨∇J_k, ∇J_1⟩ − E[w_k a]|.
    MaxIdentityGap,
    /// Exact tier: share of cells with a k*.
    FractionWithKstar,
    /// Exact tier: share of cells with a k* negative at every scanned k ≥ k*.
    FractionNegativeBeyondKstar,
    /// Exact tier: largest change of J_1 under ascent on J_k.
    MaxPasskDeltaJ1,
    /// Exact tier: smallest change of J_1 under ascent on J_k.
    MinPasskDeltaJ1,
    /// Exact tier: smallest change of J_k under ascent on J_k.
    MinPasskDeltaJk,
    /// Exact tier: smallest change of J_1 under ascent on J_1.
    MinPass1DeltaJ1,
    /// Exact tier: largest one-step change of J_1 among cells predicted to conflict.
    MaxOneStepDeltaJ1InConflict,
    /// Exact tier: largest relative error of the first-order one-step prediction.
    MaxOneStepRelativeError,
    /// Tiny tier: one objective at one q, over seeds.
    TinyDelta(Delta),
    /// Tiny tier: difference-in-differences of the change of pass@1 between two q; the bool
    /// is true for the upper end of its interval, false for the lower.
    TinyDid { upper: bool },
    /// Tiny tier: per-seed slope of the change of pass@1 on q; the bool is true for the
    /// p-value, false for the lower end of the interval.
    TinyTrend { p_value: bool },
    /// Tiny tier: the probe's interference block.
    TinyProbe(ProbeBlock),
    /// Tiny tier: the switch point in q of the fall and of the warm-start interference.
    TinySwitch(Switch),
    /// Tiny tier: one objective against a reference objective, paired by seed.
    TinyVs(Versus),
}

/// What the value a claim compares with its threshold is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tested {
    /// The estimate itself.
    Estimate,
    /// A one-sided p-value.
    PValue,
    /// The upper end of a 95% interval.
    CiHigh,
    /// The lower end of a 95% interval.
    CiLow,
}

use Statistic as S;

/// Every statistic with its name in the claims file and what it measures.
pub const STATISTICS: &[(Statistic, &str, &str)] = &[
    (S::MaxIdentityGap, "max_identity_gap", "largest |<grad J_k, grad J_1> - E[w_k a]| over cells and scanned k (exact tier)"),
    (S::FractionWithKstar, "fraction_with_kstar", "share of cells where some scanned k has <grad J_k, grad J_1> < 0 at the start"),
    (S::FractionNegativeBeyondKstar, "fraction_negative_beyond_kstar", "share of cells with a k* where every scanned k >= k* stays negative"),
    (S::MaxPasskDeltaJ1, "max_passk_delta_j1", "largest change of J_1 under exact ascent on J_k (negative: J_1 fell in every cell)"),
    (S::MinPasskDeltaJ1, "min_passk_delta_j1", "smallest change of J_1 under exact ascent on J_k"),
    (S::MinPasskDeltaJk, "min_passk_delta_jk", "smallest change of J_k under exact ascent on J_k"),
    (S::MinPass1DeltaJ1, "min_pass1_delta_j1", "smallest change of J_1 under exact ascent on J_1"),
    (S::MaxOneStepDeltaJ1InConflict, "max_one_step_delta_j1_in_conflict", "largest measured one-step change of J_1 among cells whose first-order prediction is negative"),
    (S::MaxOneStepRelativeError, "max_one_step_relative_error", "largest |measured - first order| / |first order| of the one-step change of J_1"),
    (S::TinyDelta(Delta::Pass1Mean), "tiny_delta_pass1_mean", "tiny tier: mean over cells (seeds) of final minus warm-start held-out pass@1"),
    (S::TinyDelta(Delta::Pass1CiHigh), "tiny_delta_pass1_ci_high", "tiny tier: upper end of the 95% t-interval of that change (< 0: pass@1 fell, beyond the seed spread)"),
    (S::TinyDelta(Delta::Pass1CiLow), "tiny_delta_pass1_ci_low", "tiny tier: lower end of the 95% t-interval of that change (> 0: pass@1 rose, beyond the seed spread)"),
    (S::TinyDelta(Delta::PasskCiLow), "tiny_delta_passk_ci_low", "tiny tier: lower end of the 95% t-interval of the change of pass@k, k of the objective"),
    (S::TinyDelta(Delta::Pass1PBelow), "tiny_delta_pass1_p_below", "tiny tier: one-sided t-test p-value over seeds for H1: mean change of pass@1 < -effect (the claim's `effect`, default 0)"),
    (S::TinyDelta(Delta::PasskPAbove), "tiny_delta_passk_p_above", "tiny tier: one-sided t-test p-value over seeds for H1: mean change of pass@k (k of the objective) > effect"),
    (S::TinyDid { upper: true }, "tiny_did_pass1_ci_high", "tiny tier, two q values and one objective: upper end of the 95% t-interval over seeds of (change of pass@1 at the lower q) minus (change at the higher q); < 0: pass@1 fell more under interference than in the control"),
    (S::TinyDid { upper: false }, "tiny_did_pass1_ci_low", "tiny tier: lower end of that difference-in-differences interval"),
    (S::TinyTrend { p_value: false }, "tiny_trend_pass1_slope_ci_low", "tiny tier, one objective and three or more q values: lower end of the 95% t-interval over seeds of each seed's least-squares slope of the change of pass@1 on q (> 0: pass@1 falls more as q falls, i.e. as the rules overlap more)"),
    (S::TinyTrend { p_value: true }, "tiny_trend_pass1_slope_p_above", "tiny tier: one-sided t-test p-value over seeds for H1: the mean of those per-seed slopes > 0"),
    (S::TinyProbe(ProbeBlock::CiHighMax), "tiny_probe_rf_ci_high_max", "tiny tier: the largest, over the selected cells, upper end of the 95% bootstrap interval of the probe block reversed_addition->addition (pass@k-weighted reversed prompts against the pass@1 direction of forward prompts) at the warm start, k of the objective; < 0: negative in every cell"),
    (S::TinyProbe(ProbeBlock::CiLowMin), "tiny_probe_rf_ci_low_min", "tiny tier: the smallest lower end of that interval over the selected cells; > 0 would mean positive in every cell"),
    (S::TinyProbe(ProbeBlock::NegativeShare), "tiny_probe_rf_negative_share", "tiny tier: share of the selected cells whose warm-start block reversed_addition->addition has its whole 95% interval below 0"),
    (S::TinyProbe(ProbeBlock::EndCiHighMax), "tiny_probe_rf_end_ci_high_max", "tiny tier: as tiny_probe_rf_ci_high_max, at each cell's last probe (the end of RL) instead of the warm start"),
    (S::TinyProbe(ProbeBlock::EndNegativeShare), "tiny_probe_rf_end_negative_share", "tiny tier: as tiny_probe_rf_negative_share, at each cell's last probe"),
    (S::TinySwitch(Switch::FallCiLow), "tiny_switch_fall_ci_low", "tiny tier, pass@8 cells at several q: lower end of the 95% seed-bootstrap interval of q*_fall, the first q (scanning up) where the mean change of held-out pass@1 under pass@8 rises through 0 (experiments/tiny-dose.toml, THE SWITCH POINT)"),
    (S::TinySwitch(Switch::FallCiHigh), "tiny_switch_fall_ci_high", "tiny tier: upper end of that interval of q*_fall"),
    (S::TinySwitch(Switch::GapCiAbsMax), "tiny_switch_gap_ci_abs_max", "tiny tier: the larger absolute end of the 95% paired seed-bootstrap interval of q*_fall - q*_int, q*_int the same crossing of the warm-start cross-family <grad J_8, grad J_1>; < 0.05: the two switch points coincide within the grid spacing"),
    (S::TinyVs(Versus::Pass1Mean), "tiny_vs_pass1_mean", "tiny tier, one objective at one q against the claim's `against` objective from the same warm starts: mean over seeds of (change of pass@1) minus (the reference's change of pass@1), paired by seed"),
    (S::TinyVs(Versus::Pass1CiLow), "tiny_vs_pass1_ci_low", "tiny tier: lower end of the 95% t-interval over seeds of that paired difference (> -0.03: within the margin delta of the reference)"),
    (S::TinyVs(Versus::PasskShareCiLow), "tiny_vs_passk_share_ci_low", "tiny tier: lower end of the 95% t-interval over seeds of (change of pass@k) minus `effect` x (the `against` objective's change of pass@k), k of the `against` objective, paired by seed (> 0: the objective keeps at least the share `effect` of the reference's gain)"),
];

impl Statistic {
    /// The statistic called `name` in a claims file.
    pub fn from_name(name: &str) -> Option<Statistic> {
        STATISTICS
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(s, _, _)| *s)
    }

    /// Its name in a claims file.
    pub fn name(self) -> &'static str {
        STATISTICS
            .iter()
            .find(|(s, _, _)| *s == self)
            .map(|(_, n, _)| *n)
            .expect("every statistic is in STATISTICS")
    }

    /// The tier whose cells it reads.
    pub fn tier(self) -> Tier {
        match self {
            S::TinyDelta(_)
            | S::TinyDid { .. }
            | S::TinyTrend { .. }
            | S::TinyProbe(_)
            | S::TinySwitch(_)
            | S::TinyVs(_) => Tier::Tiny,
            _ => Tier::Theory,
        }
    }

    /// What its value is.
    pub fn tested(self) -> Tested {
        match self {
            S::TinyDelta(Delta::Pass1PBelow | Delta::PasskPAbove)
            | S::TinyTrend { p_value: true } => Tested::PValue,
            S::TinyDelta(Delta::Pass1CiHigh)
            | S::TinyDid { upper: true }
            | S::TinySwitch(Switch::FallCiHigh) => Tested::CiHigh,
            S::TinySwitch(Switch::FallCiLow) => Tested::CiLow,
            S::TinyDelta(Delta::Pass1CiLow | Delta::PasskCiLow)
            | S::TinyDid { upper: false }
            | S::TinyTrend { p_value: false }
            | S::TinyVs(Versus::Pass1CiLow | Versus::PasskShareCiLow) => Tested::CiLow,
            _ => Tested::Estimate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for (s, name, _) in STATISTICS {
            assert_eq!(Statistic::from_name(name), Some(*s));
            assert_eq!(s.name(), *name);
            // The naming convention the claims file has always used.
            assert_eq!(name.starts_with("tiny_"), s.tier() == Tier::Tiny, "{name}");
        }
        assert_eq!(Statistic::from_name("tiny_nothing"), None);
    }

    #[test]
    fn tested_matches_the_name() {
        for (s, name, _) in STATISTICS {
            let expected = if name.contains("_p_") {
                Tested::PValue
            } else if name.ends_with("_ci_high") {
                Tested::CiHigh
            } else if name.ends_with("_ci_low") {
                Tested::CiLow
            } else {
                Tested::Estimate
            };
            assert_eq!(s.tested(), expected, "{name}");
        }
    }
}
