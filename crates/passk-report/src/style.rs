//! One look for every figure: a fixed palette colour and a readable label per objective, so an
//! objective has the same colour in every figure and two objectives of one figure never share
//! one.

use crate::tiny::objective_k;

/// The palette slot (index into [`crate::plot::PALETTE`]) fixed for a known objective spec;
/// `None` for one this table does not name (a user's new objective).
fn fixed(spec: &str) -> Option<usize> {
    let name = spec.split(':').next().unwrap_or(spec);
    Some(match (name, objective_k(spec)) {
        ("pass1_rloo", _) => 0,
        ("pkpo_loo_minus_one", 8) => 1,
        ("pkpo_loo_minus_one", 4) => 2,
        ("conflict_projected", _) => 3,
        ("pkpo_loo_minus_one", 2) => 4,
        ("k_anneal", _) => 5,
        ("mix_pass1_passk", _) => 6,
        _ => return None,
    })
}

/// The palette slot of [`crate::plot::PALETTE`] reserved for reference lines (the warm start).
pub const REFERENCE: usize = 7;

/// Colours for the objectives of one figure, in order: each known objective its fixed slot,
/// every other one the first slot that no objective of the figure takes (and not
/// [`REFERENCE`]), so no two objectives of a figure share a colour while there are at most
/// seven.
pub fn colors<S: AsRef<str>>(objectives: &[S]) -> Vec<usize> {
    let mut taken: Vec<usize> = objectives
        .iter()
        .filter_map(|o| fixed(o.as_ref()))
        .collect();
    objectives
        .iter()
        .map(|o| {
            fixed(o.as_ref()).unwrap_or_else(|| {
                let free = (0..REFERENCE)
                    .find(|c| !taken.contains(c))
                    .unwrap_or(taken.len() % REFERENCE);
                taken.push(free);
                free
            })
        })
        .collect()
}

/// The colour of `objective` among `objectives` (the figure's), as [`colors`] assigns it.
pub fn color_in<S: AsRef<str>>(objectives: &[S], objective: &str) -> usize {
    let i = objectives
        .iter()
        .position(|o| o.as_ref() == objective)
        .unwrap_or(0);
    colors(objectives).get(i).copied().unwrap_or(0)
}

/// A readable name for an objective spec: `pass@8 (PKPO)` for `pkpo_loo_minus_one:k=8`.
pub fn label(spec: &str) -> String {
    let name = spec.split(':').next().unwrap_or(spec);
    let k = objective_k(spec);
    match name {
        "pass1_rloo" => "pass@1 (RLOO)".into(),
        "pass1_grpo" => "pass@1 (GRPO)".into(),
        "pkpo_loo_minus_one" => format!("pass@{k} (PKPO)"),
        "pkpo_s" => format!("pass@{k} (PKPO s)"),
        "pkpo_loo" => format!("pass@{k} (PKPO, LOO variant)"),
        "chen" => format!("pass@{k} (Chen et al.)"),
        "tang_loo" => "pass@n (Tang et al. LOO)".into(),
        "conflict_projected" => format!("pass@{k}, conflict projected"),
        "k_anneal" => format!("pass@{k}, k annealed"),
        "mix_pass1_passk" => format!("pass@1/pass@{k} mix"),
        "sign_flipped" => format!("pass@{k} sign-flipped (broken)"),
        _ => spec.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every objective the committed experiments train.
    const COMMITTED: &[&str] = &[
        "pass1_rloo",
        "pkpo_loo_minus_one:k=2",
        "pkpo_loo_minus_one:k=4",
        "pkpo_loo_minus_one:k=8",
        "conflict_projected:k=8",
        "k_anneal:k=8",
        "mix_pass1_passk:k=8",
    ];

    #[test]
    fn no_two_objectives_of_a_figure_share_a_colour() {
        let all = colors(COMMITTED);
        let mut seen = all.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), all.len(), "{all:?}");
        assert!(!all.contains(&REFERENCE));
        // Unknown objectives take free slots, not a known one's.
        let mixed = [
            "pass1_rloo",
            "my_new:k=8",
            "pkpo_loo_minus_one:k=8",
            "other",
        ];
        let c = colors(&mixed);
        let mut d = c.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 4, "{c:?}");
    }

    #[test]
    fn an_objective_keeps_its_colour_across_figures() {
        let a = color_in(
            &["pass1_rloo", "pkpo_loo_minus_one:k=8"],
            "pkpo_loo_minus_one:k=8",
        );
        let b = color_in(
            &[
                "pkpo_loo_minus_one:k=4",
                "pkpo_loo_minus_one:k=8",
                "k_anneal:k=8",
            ],
            "pkpo_loo_minus_one:k=8",
        );
        assert_eq!(a, b);
        // pass@4 and pass@8 differ, and so do the three k = 8 mitigations.
        let k8 = colors(&[
            "conflict_projected:k=8",
            "k_anneal:k=8",
            "mix_pass1_passk:k=8",
        ]);
        assert!(k8[0] != k8[1] && k8[1] != k8[2] && k8[0] != k8[2]);
    }

    #[test]
    fn labels_are_readable() {
        assert_eq!(label("pkpo_loo_minus_one:k=4"), "pass@4 (PKPO)");
        assert_eq!(label("pass1_rloo"), "pass@1 (RLOO)");
        assert_eq!(label("k_anneal:k=8"), "pass@8, k annealed");
        assert_eq!(label("my_objective:k=3"), "my_objective:k=3");
    }
}
