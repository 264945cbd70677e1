//! Bakes provenance into the `passk` binary (read by `src/provenance.rs`):
//!
//! - `PASSK_CODE_<TIER>`: the code fingerprint of each tier, the sha256 of the source files
//!   that determine its cells' numbers ([`TIER_SOURCES`]; test files excluded, see
//!   [`is_test_file`]), so a cell can record which code computed it;
//! - `PASSK_RUSTC_VERSION`: `rustc -V` of the compiler that built it;
//! - `PASSK_CARGO_LOCK_SHA256`: the sha256 of the `Cargo.lock` it was built with.
//!
//! The fingerprint is deterministic: files in sorted `/`-joined paths relative to the
//! workspace root, each hashed as its path, a NUL, its length (u64, little-endian) and its
//! bytes with CRLF read as LF (a Windows checkout fingerprints as a Unix one).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Per tier, the paths (relative to the workspace root; folders are walked) whose contents
/// determine its cells' numbers: the crates it runs and its adapter in this crate. Not
/// `Cargo.lock` (dependency versions are recorded in ENVIRONMENT.json instead: a new
/// dependency elsewhere must not mark every cell stale) nor the cell-bookkeeping code of this
/// crate (run.rs, record.rs), which writes files but computes no numbers.
pub(crate) const TIER_SOURCES: &[(&str, &[&str])] = &[
    (
        "THEORY",
        &[
            "crates/passk-core/src",
            "crates/passk-schema/src",
            "crates/passk-theory/src",
            "crates/passk-cli/src/theory.rs",
        ],
    ),
    (
        "TINY",
        &[
            "crates/passk-core/src",
            "crates/passk-schema/src",
            "crates/passk-policy/src",
            "crates/passk-tasks/src",
            "crates/passk-train/src",
            "crates/passk-cli/src/tiny.rs",
        ],
    ),
    (
        "LM",
        &[
            "crates/passk-core/src",
            "crates/passk-schema/src",
            "crates/passk-policy/src",
            "crates/passk-tasks/src",
            "crates/passk-tasks/data",
            "crates/passk-train/src",
            "crates/passk-cli/src/lm.rs",
        ],
    ),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("crates/passk-cli lies two levels below the workspace root")
        .to_path_buf();
    println!("cargo:rerun-if-changed=build.rs");
    for (tier, paths) in TIER_SOURCES {
        for rel in *paths {
            // A folder: cargo reruns this script when anything below it changes.
            println!("cargo:rerun-if-changed={}", root.join(rel).display());
        }
        println!(
            "cargo:rustc-env=PASSK_CODE_{tier}={}",
            fingerprint(&root, paths)
        );
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PASSK_RUSTC_VERSION={version}");
    let lock = root.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let lock_sha = std::fs::read(&lock)
        .map(|b| hex(&Sha256::digest(&b)))
        .unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=PASSK_CARGO_LOCK_SHA256={lock_sha}");
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The files under `paths` (relative to `root`) that a fingerprint covers, as sorted
/// `/`-joined paths relative to `root`.
pub(crate) fn fingerprint_files(root: &Path, paths: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    for rel in paths {
        collect(&root.join(rel), &mut files);
    }
    let mut rels: Vec<String> = files
        .iter()
        .map(|file| {
            file.strip_prefix(root)
                .expect("under the root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    rels.sort();
    rels.dedup();
    rels
}

/// The code fingerprint of `paths` (relative to `root`): see the module documentation.
pub(crate) fn fingerprint(root: &Path, paths: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for rel in fingerprint_files(root, paths) {
        let path = root.join(&rel);
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let bytes = crlf_to_lf(&bytes);
        hasher.update(rel.as_bytes());
        hasher.update([0u8]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    hex(&hasher.finalize())
}

/// Whether `name` is a test file (`tests.rs`, `*_tests.rs`): editing tests changes no cell.
pub(crate) fn is_test_file(name: &str) -> bool {
    name == "tests.rs" || name.ends_with("_tests.rs")
}

/// Every file under `path` (or `path` itself), hidden names, test files and `tests/` folders
/// left out.
fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.starts_with('.') {
        return;
    }
    if path.is_dir() {
        if name == "tests" {
            return;
        }
        let entries = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        for entry in entries {
            collect(&entry.expect("a directory entry").path(), out);
        }
    } else if path.is_file() && !is_test_file(&name) {
        out.push(path.to_path_buf());
    }
}

/// `bytes` with every CRLF replaced by LF.
pub(crate) fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            continue;
        }
        out.push(b);
    }
    out
}
