//! `results/ENVIRONMENT.json`: the machine and build that produced the latest cells.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::write::write_json;

/// Records versions, CPU features, thread settings and device beside the manifest.
pub fn write(results: &Path, device: &str) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    let env_var = |k: &str| std::env::var(k).ok();
    let record = json!({
        "passk_version": env!("CARGO_PKG_VERSION"),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "cpu_features": cpu_features(),
        "available_parallelism": threads,
        "RAYON_NUM_THREADS": env_var("RAYON_NUM_THREADS"),
        "CANDLE_NUM_THREADS": env_var("CANDLE_NUM_THREADS"),
        "device": device,
        "debug_build": cfg!(debug_assertions),
    });
    write_json(&results.join("ENVIRONMENT.json"), &record)
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
