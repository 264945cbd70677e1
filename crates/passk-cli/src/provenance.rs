//! Which code computed a cell: the per-tier code fingerprints baked in by `build.rs`, the
//! fingerprint a cell's completion record holds, and the git state of the checkout.
//!
//! A cell's hash names its tier and configuration, not the code, so a cell computed before an
//! objective's code was edited under the same name looks done. Each completion record written
//! by `passk run` therefore carries [`code_fingerprint`] of its tier: the sha256 of the
//! sources that determine the tier's numbers (listed in `crates/passk-cli/build.rs`: the
//! crates the tier runs, `src/` without test files, and its adapter in this crate; the lm tier
//! also its vendored data). A done cell is then [`CodeState::Same`], [`CodeState::Stale`]
//! (another fingerprint: `passk run` and `passk compare` warn and keep it, or rerun it with
//! `--force`) or [`CodeState::Unknown`] (a record from before fingerprints, or a sealed cell:
//! never treated as stale, so the committed results stay valid).

use std::path::Path;

use passk_schema::cell::{CompletionRecord, RECORD_FILE};

/// The code fingerprint of `tier` in this build (hex sha256), `None` for a tier it lacks.
pub fn code_fingerprint(tier: &str) -> Option<&'static str> {
    let tier = passk_report::tier::Tier::from_name(tier).ok()?;
    Some(crate::tiers::entry(tier).code)
}

/// The first 12 hex digits of a fingerprint, as messages print it.
pub fn short(fingerprint: &str) -> &str {
    &fingerprint[..fingerprint.len().min(12)]
}

/// `rustc -V` of the compiler that built this binary.
pub const RUSTC_VERSION: &str = env!("PASSK_RUSTC_VERSION");
/// The sha256 of the `Cargo.lock` this binary was built with.
pub const CARGO_LOCK_SHA256: &str = env!("PASSK_CARGO_LOCK_SHA256");

/// Whether a done cell was computed by this build's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeState {
    /// Its record holds this build's fingerprint of its tier.
    Same,
    /// Its record holds another fingerprint (the code of its tier changed since).
    Stale {
        /// The recorded fingerprint.
        recorded: String,
    },
    /// Its record holds none (written before fingerprints existed, or by `passk seal`), or
    /// this build has no fingerprint for its tier: not known to be stale.
    Unknown,
}

/// Compares `recorded` (a record's fingerprint) with this build's for `tier`.
pub fn compare(tier: &str, recorded: Option<&str>) -> CodeState {
    match (recorded, code_fingerprint(tier)) {
        (Some(r), Some(now)) if r == now => CodeState::Same,
        (Some(r), Some(_)) => CodeState::Stale {
            recorded: r.to_string(),
        },
        _ => CodeState::Unknown,
    }
}

/// The code state of the cell directory `dir` from its completion record (`Unknown` when
/// the record is missing or unreadable: [`crate::record::check`] reports those).
pub fn code_state(dir: &Path) -> CodeState {
    let Ok(bytes) = std::fs::read(dir.join(RECORD_FILE)) else {
        return CodeState::Unknown;
    };
    let Ok(record) = serde_json::from_slice::<CompletionRecord>(&bytes) else {
        return CodeState::Unknown;
    };
    compare(&record.tier, record.code.as_deref())
}

/// The git commit of the checkout this binary was built from, and whether its tracked files
/// other than `results/` and `figures/` differ from that commit; `None` when that folder is
/// not a git checkout (a copied binary, a source tarball) or git is absent.
pub fn git_state() -> Option<(String, bool)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let changes = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":(exclude)results",
        ":(exclude)figures",
    ])?;
    Some((commit, !changes.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::build_script;

    #[test]
    fn the_baked_fingerprints_are_those_of_the_sources_without_test_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for (tier, paths) in build_script::TIER_SOURCES {
            let files = build_script::fingerprint_files(&root, paths);
            assert!(
                files.iter().any(|f| f == "crates/passk-core/src/lib.rs"),
                "{tier}: {files:?}"
            );
            assert!(
                !files
                    .iter()
                    .any(|f| f.ends_with("/tests.rs") || f.ends_with("_tests.rs")),
                "{tier} covers a test file: {files:?}"
            );
            let tier = tier.to_ascii_lowercase();
            assert_eq!(
                code_fingerprint(&tier),
                Some(build_script::fingerprint(&root, paths).as_str()),
                "{tier}: the build's fingerprint is not its sources' (built before an edit?)"
            );
        }
        assert!(build_script::is_test_file("tests.rs"));
        assert!(build_script::is_test_file("record_tests.rs"));
        assert!(!build_script::is_test_file("tests_util.rs"));
        assert_eq!(build_script::crlf_to_lf(b"a\r\nb\r"), b"a\nb\r");
    }

    #[test]
    fn fingerprints_are_sha256_hex_and_differ_by_tier() {
        for tier in ["theory", "tiny", "lm"] {
            let f = code_fingerprint(tier).unwrap();
            assert_eq!(f.len(), 64, "{tier}: {f}");
            assert!(f.bytes().all(|b| b.is_ascii_hexdigit()), "{tier}: {f}");
        }
        assert_ne!(code_fingerprint("theory"), code_fingerprint("tiny"));
        assert_ne!(code_fingerprint("tiny"), code_fingerprint("lm"));
        assert_eq!(code_fingerprint("gpt"), None);
        assert_eq!(short(code_fingerprint("tiny").unwrap()).len(), 12);
    }

    #[test]
    fn a_missing_fingerprint_is_unknown_never_stale() {
        let now = code_fingerprint("tiny").unwrap();
        assert_eq!(compare("tiny", Some(now)), CodeState::Same);
        assert_eq!(
            compare("tiny", Some("00ff")),
            CodeState::Stale {
                recorded: "00ff".into()
            }
        );
        assert_eq!(compare("tiny", None), CodeState::Unknown);
        assert_eq!(compare("gpt", Some("00ff")), CodeState::Unknown);
    }

    #[test]
    fn build_facts_are_baked_in() {
        assert!(RUSTC_VERSION.starts_with("rustc "), "{RUSTC_VERSION}");
        assert_eq!(CARGO_LOCK_SHA256.len(), 64, "{CARGO_LOCK_SHA256}");
    }
}
