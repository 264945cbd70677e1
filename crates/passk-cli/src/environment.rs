//! `results/ENVIRONMENT.json`: the machine and build that produced the latest cells.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::provenance;
use crate::write::write_json;

/// Its file name inside the results folder.
pub const FILE: &str = "ENVIRONMENT.json";

/// Whether `results/ENVIRONMENT.json` exists and MANIFEST lists it with its present bytes.
pub fn listed_as_is(results: &Path) -> bool {
    let Ok(bytes) = std::fs::read(results.join(FILE)) else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(results.join(passk_report::manifest::MANIFEST)) else {
        return false;
    };
    passk_report::manifest::parse(&text).is_ok_and(|m| {
        m.get(FILE).is_some_and(|e| {
            e.size == bytes.len() as u64 && e.sha256 == passk_report::manifest::sha256_hex(&bytes)
        })
    })
}

/// Records versions, provenance, CPU features, thread settings and device beside the
/// manifest: `git` (`{"commit", "dirty"}` of the checkout the binary was built from, `dirty`
/// when tracked files other than results/ and figures/ differ from the commit; `null` when it
/// is not a git checkout), `rustc` (`rustc -V` at build time), `cargo_lock_sha256` (the
/// lockfile built with) and `code_fingerprints` (per tier, what each new cell's completion
/// record holds; see [`crate::provenance`]).
pub fn write(results: &Path, device: &str) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    let env_var = |k: &str| std::env::var(k).ok();
    let git =
        provenance::git_state().map(|(commit, dirty)| json!({"commit": commit, "dirty": dirty}));
    let fingerprints: serde_json::Map<String, serde_json::Value> = crate::tiers::TIERS
        .iter()
        .map(|e| (e.tier.as_str().to_string(), e.code.into()))
        .collect();
    let record = json!({
        "passk_version": env!("CARGO_PKG_VERSION"),
        "git": git,
        "rustc": provenance::RUSTC_VERSION,
        "cargo_lock_sha256": provenance::CARGO_LOCK_SHA256,
        "code_fingerprints": fingerprints,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "cpu_features": cpu_features(),
        "available_parallelism": threads,
        "RAYON_NUM_THREADS": env_var("RAYON_NUM_THREADS"),
        "CANDLE_NUM_THREADS": env_var("CANDLE_NUM_THREADS"),
        "device": device,
        "debug_build": cfg!(debug_assertions),
    });
    write_json(&results.join(FILE), &record)
}

fn cpu_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            found.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("fma") {
            found.push("fma");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            found.push("avx512f");
        }
    }
    found
}
