//! The CUDA build on a machine without a GPU or a CUDA install: `cargo xtask build-cuda`.
//!
//! - **Compiler.** CUDA 13.0's `nvcc`, headers and `libcudart` come from NVIDIA's PyPI wheels,
//!   installed with pip into `target/cuda-toolkit/13.0` (under `$CARGO_TARGET_DIR` when set),
//!   once: a marker file records the pinned wheels. Only the 13.x `nvidia-cuda-nvcc` wheel ships the `nvcc` driver itself (the
//!   `-cu12` wheels hold `ptxas` only). 13.0 rather than a newer 13.x because the target GPU
//!   machines run driver 580, which is CUDA 13.0: PTX from a newer `nvcc` would not load there.
//! - **Link stubs.** candle 0.11 builds `cudarc` with `dynamic-linking`, so the link asks for
//!   `libcuda`, `libcublas`, `libcublasLt`, `libcurand` and `libnvrtc` (candle-kernels adds
//!   `libcudart`, which the wheels ship); after `--as-needed` the binary needs `libcuda.so.1`,
//!   `libcublas.so.13`, `libcurand.so.10` and `libcudart.so.13`. No real copy is needed to link:
//!   stubs that define every function of cudarc's bindings, with the real libraries' sonames,
//!   are compiled with `cc` into the toolkit's `lib/stubs`. At run time the real libraries are
//!   used (the driver's `libcuda.so.1`, the CUDA 13 wheels' or toolkit's others;
//!   `scripts/gpu-check.sh` finds them). Under `lib/stubs/run` the stubs carry their sonames, so
//!   the CUDA build also starts on a machine without CUDA and runs there on the CPU (as
//!   `gpu-bundle --test` does); calling into them would crash, and nothing does on the CPU.
//! - **Kernels.** `CUDA_COMPUTE_CAP` (default 90, an H100/H200) lets candle-kernels compile its
//!   PTX and its static kernels without querying a GPU.
//! - **Where.** Everything builds in release into `target/cuda` (`$CARGO_TARGET_DIR/cuda`, or
//!   `$PASSK_CUDA_TARGET_DIR`), apart from the CPU build, so switching never rebuilds either.
//!
//! `PASSK_CUDA_HOME=/usr/local/cuda` uses an installed toolkit (with its real libraries)
//! instead of the wheels and stubs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

/// The CUDA release the wheels provide (`nvcc --version` must say this).
pub const CUDA_RELEASE: &str = "13.0";

/// The pinned wheels of CUDA 13.0's compiler, headers and runtime.
const WHEELS: [&str; 5] = [
    "nvidia-cuda-nvcc==13.0.88",
    "nvidia-nvvm==13.0.88",
    "nvidia-cuda-crt==13.0.88",
    "nvidia-cuda-runtime==13.0.96",
    "nvidia-cuda-cccl==13.0.85",
];

/// The libraries the binary links, as (cudarc module holding the bindings, soname).
const STUBS: [(&str, &str); 5] = [
    ("driver", "libcuda.so.1"),
    ("cublas", "libcublas.so.13"),
    ("cublaslt", "libcublasLt.so.13"),
    ("curand", "libcurand.so.10"),
    ("nvrtc", "libnvrtc.so.13"),
];

/// The cargo features that turn CUDA on in every crate that has them.
pub const FEATURES: &str = "passk-policy/cuda,passk-train/cuda,passk-cli/cuda";

/// Cargo's target folder: `$CARGO_TARGET_DIR` or `target/`.
fn cargo_target(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Where the CUDA build's artefacts go: `$PASSK_CUDA_TARGET_DIR`, else `cuda/` in cargo's
/// target folder.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("PASSK_CUDA_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cargo_target(root).join("cuda"))
}

/// A CUDA toolkit ready to build with: its root (holding `bin/nvcc`, `include`, `lib`).
pub struct Toolkit {
    root: PathBuf,
}

impl Toolkit {
    /// The toolkit of `$PASSK_CUDA_HOME`, or the wheel toolkit under `target/`, installed and
    /// given its link stubs when missing.
    pub fn ensure(sh: &Shell, root: &Path) -> Result<Self> {
        if let Some(home) = std::env::var_os("PASSK_CUDA_HOME") {
            let home = PathBuf::from(home);
            if !home.join("bin").join("nvcc").is_file() {
                bail!(
                    "PASSK_CUDA_HOME={} has no bin/nvcc; point it at a CUDA toolkit or unset it \
                     to use the pip wheels",
                    home.display()
                );
            }
            return Ok(Self { root: home });
        }
        let dir = cargo_target(root).join("cuda-toolkit").join(CUDA_RELEASE);
        install_wheels(sh, &dir)?;
        let toolkit = Self {
            root: dir.join("nvidia").join("cu13"),
        };
        toolkit.check_version(sh)?;
        write_stubs(sh, root, &toolkit.root.join("lib").join("stubs"))?;
        Ok(toolkit)
    }

    /// Checks that `nvcc --version` reports [`CUDA_RELEASE`].
    fn check_version(&self, sh: &Shell) -> Result<()> {
        let nvcc = self.root.join("bin").join("nvcc");
        let out = cmd!(sh, "{nvcc} --version")
            .read()
            .with_context(|| format!("{} does not run", nvcc.display()))?;
        if !out.contains(&format!("release {CUDA_RELEASE},")) {
            bail!(
                "{} is not CUDA {CUDA_RELEASE}:\n{out}\ndelete target/cuda-toolkit and rerun",
                nvcc.display()
            );
        }
        Ok(())
    }

    /// `LD_LIBRARY_PATH` under which the CUDA build starts on this machine (for CPU work only):
    /// the stubs under their sonames, then the wheel's `libcudart.so.13`.
    pub fn stub_runtime_path(&self) -> Result<String> {
        let run = self.root.join("lib").join("stubs").join("run");
        if !run.is_dir() {
            bail!(
                "{} has no link stubs (a PASSK_CUDA_HOME toolkit?); running the CUDA build on a \
                 machine without a GPU needs the wheel toolkit",
                self.root.display()
            );
        }
        let lib = self.root.join("lib");
        Ok(format!("{}:{}", run.display(), lib.display()))
    }

    /// Sets the environment a `--features cuda` cargo command needs on `sh`.
    pub fn apply(&self, sh: &Shell, root: &Path) -> Result<()> {
        let bin = self.root.join("bin");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin];
        paths.extend(std::env::split_paths(&path));
        sh.set_var("PATH", std::env::join_paths(paths)?);
        // cudarc reads CUDA_ROOT for its link search (lib/, lib/stubs/); cudaforge finds nvcc on
        // PATH and the headers beside it. (Setting more of the variables they watch, such as
        // CUDA_PATH or NVCC, would only make later runs rebuild.)
        sh.set_var("CUDA_ROOT", &self.root);
        if std::env::var_os("CUDA_COMPUTE_CAP").is_none() {
            sh.set_var("CUDA_COMPUTE_CAP", "90");
        }
        sh.set_var("CARGO_TARGET_DIR", target_dir(root));
        Ok(())
    }
}

/// Installs [`WHEELS`] into `dir` with pip unless a marker says they are there.
fn install_wheels(sh: &Shell, dir: &Path) -> Result<()> {
    let marker = dir.join(".passk-wheels");
    let want = WHEELS.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|have| have == want) {
        return Ok(());
    }
    let tmp = dir.with_file_name(format!("{CUDA_RELEASE}.partial"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let python = std::env::var("PASSK_PYTHON").unwrap_or_else(|_| "python3".to_string());
    eprintln!(
        "installing CUDA {CUDA_RELEASE} (nvcc, headers, cudart) from PyPI wheels into {}",
        dir.display()
    );
    let wheels = WHEELS;
    cmd!(
        sh,
        "{python} -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --root-user-action=ignore --target {tmp} {wheels...}"
    )
    .run()
    .context(
        "pip could not install the CUDA wheels; this needs python3 with pip and access to PyPI \
         (or set PASSK_CUDA_HOME to an installed CUDA toolkit)",
    )?;
    std::fs::rename(&tmp, dir)?;
    std::fs::write(&marker, want)?;
    Ok(())
}

/// The source folder of the `cudarc` crate this workspace resolves to.
fn cudarc_src(sh: &Shell) -> Result<PathBuf> {
    let json = cmd!(
        sh,
        "cargo metadata --format-version 1 --features passk-cli/cuda"
    )
    .read()
    .context("cargo metadata failed")?;
    let meta: serde_json::Value = serde_json::from_str(&json)?;
    let manifest = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "cudarc")
        .and_then(|p| p["manifest_path"].as_str())
        .context("cargo metadata lists no cudarc package; is candle's cuda feature still there?")?;
    Ok(Path::new(manifest)
        .parent()
        .context("cudarc's manifest has no folder")?
        .join("src"))
}

/// The function names declared in one of cudarc's `sys` binding files.
pub fn binding_functions(source: &str) -> Vec<&str> {
    let mut names: Vec<&str> = source
        .lines()
        .filter_map(|l| l.strip_prefix("pub unsafe fn "))
        .filter_map(|l| l.split('(').next())
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Compiles the link stubs ([`STUBS`]) into `dir` (once), plus a `libcudart.so` link to the
/// wheel's `libcudart.so.13` for candle-kernels' `-lcudart`.
fn write_stubs(sh: &Shell, root: &Path, dir: &Path) -> Result<()> {
    let marker = dir.join(".passk-stubs");
    if marker.is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let _in_root = sh.push_dir(root);
    let src = cudarc_src(sh)?;
    for (module, soname) in STUBS {
        let bindings = src.join(module).join("sys").join("mod.rs");
        let text = std::fs::read_to_string(&bindings)
            .with_context(|| format!("reading {}", bindings.display()))?;
        let names = binding_functions(&text);
        if names.is_empty() {
            bail!("no functions found in {}", bindings.display());
        }
        let c: String = names
            .iter()
            .map(|n| format!("void {n}(void) {{}}\n"))
            .collect();
        let stem = soname.split(".so").next().expect("sonames have .so");
        let c_file = dir.join(format!("{stem}.c"));
        std::fs::write(&c_file, c)?;
        let out = dir.join(format!("{stem}.so"));
        let soname_flag = format!("-Wl,-soname,{soname}");
        cmd!(sh, "cc -shared -fPIC -o {out} {soname_flag} {c_file}")
            .run()
            .context("compiling the CUDA link stubs needs a C compiler (cc)")?;
        std::fs::remove_file(&c_file)?;
    }
    let cudart = dir.join("libcudart.so");
    if !cudart.exists() {
        std::os::unix::fs::symlink("../libcudart.so.13", &cudart)?;
    }
    // The same stubs under their sonames, so the CUDA build can start here for CPU work.
    let run = dir.join("run");
    std::fs::create_dir_all(&run)?;
    for (_, soname) in STUBS {
        let stem = soname.split(".so").next().expect("sonames have .so");
        let link = run.join(soname);
        if !link.exists() {
            std::os::unix::fs::symlink(format!("../{stem}.so"), &link)?;
        }
    }
    std::fs::write(
        &marker,
        "stubs for linking only; never load these at run time\n",
    )?;
    Ok(())
}

/// `cargo xtask build-cuda`: the toolkit, then `passk --features cuda` in release, then clippy
/// with `-D warnings` on every target of the CUDA build. Prints each step's time.
pub fn build_cuda(sh: &Shell, root: &Path) -> Result<()> {
    let t0 = Instant::now();
    let toolkit = Toolkit::ensure(sh, root)?;
    let t_toolkit = t0.elapsed();
    toolkit.apply(sh, root)?;
    let t1 = Instant::now();
    cmd!(
        sh,
        "cargo build --release -p passk-cli --bin passk --features passk-cli/cuda"
    )
    .run()
    .context("the CUDA build of passk failed")?;
    let t_build = t1.elapsed();
    let t2 = Instant::now();
    clippy(sh)?;
    let t_clippy = t2.elapsed();
    eprintln!(
        "build-cuda: toolkit {:.0} s, passk build {:.0} s, clippy {:.0} s; binary {}",
        t_toolkit.as_secs_f64(),
        t_build.as_secs_f64(),
        t_clippy.as_secs_f64(),
        passk_path(root).display()
    );
    Ok(())
}

/// Clippy with `-D warnings` on every target of the CUDA build. In release, so it reuses the
/// kernels the release build compiled (build scripts run once per profile).
fn clippy(sh: &Shell) -> Result<()> {
    cmd!(
        sh,
        "cargo clippy --release --workspace --all-targets --features {FEATURES} -- -D warnings"
    )
    .run()
    .context("clippy found problems in the CUDA build")?;
    Ok(())
}

/// The CUDA build's `passk` binary.
pub fn passk_path(root: &Path) -> PathBuf {
    target_dir(root).join("release").join("passk")
}

/// Builds `passk --features cuda` (toolkit first) and returns the binary, for `--cuda`.
pub fn build_passk(sh: &Shell, root: &Path) -> Result<PathBuf> {
    let toolkit = Toolkit::ensure(sh, root)?;
    toolkit.apply(sh, root)?;
    cmd!(
        sh,
        "cargo build --release --quiet -p passk-cli --bin passk --features passk-cli/cuda"
    )
    .run()
    .context("the CUDA build of passk failed")?;
    Ok(passk_path(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_functions_lists_each_declared_function_once() {
        let src = "pub unsafe fn cuInit(flags: u32) -> CUresult {\n    extern \"C\" {\n        \
                   fn cuInit(flags: u32) -> CUresult;\n    }\n}\n#[cfg(x)]\npub unsafe fn \
                   cuInit(flags: u32) -> CUresult {}\npub unsafe fn cuMemAlloc_v2(p: *mut u64) \
                   -> CUresult {}\npub fn not_a_binding() {}\n";
        assert_eq!(binding_functions(src), vec!["cuInit", "cuMemAlloc_v2"]);
    }

    #[test]
    fn stubs_use_the_cuda_13_sonames() {
        for (_, soname) in STUBS {
            assert!(
                soname.starts_with("lib") && soname.contains(".so."),
                "{soname}"
            );
        }
        assert!(STUBS
            .iter()
            .any(|(m, s)| *m == "cublas" && *s == "libcublas.so.13"));
    }
}
