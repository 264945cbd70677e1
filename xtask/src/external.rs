//! `browser-test` and `latex-test`: the ignored end-to-end tests that need a program from
//! Debian's packages (Chromium, pdflatex). Each installs its packages with `apt-get` when the
//! program is missing (saying so), then runs its test with `--ignored`. A test that cannot find
//! its program fails; it never passes by skipping.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

/// Installs Chromium if missing, then runs `tests/browser.rs` on `figures/index.html`.
pub fn browser_test(sh: &Shell) -> Result<()> {
    ensure_program(
        sh,
        &["chromium", "chromium-browser", "google-chrome"],
        &["chromium"],
    )?;
    run_ignored(sh, "browser")?;
    println!(
        "browser-test: passed; the screenshot is {}",
        target_dir().join("tmp/browser-test/index.png").display()
    );
    Ok(())
}

/// Installs pdflatex and booktabs if missing, then runs `tests/latex.rs` on every
/// `figures/**/*.tex` table.
pub fn latex_test(sh: &Shell) -> Result<()> {
    ensure_program(
        sh,
        &["pdflatex"],
        &["texlive-latex-base", "texlive-latex-recommended"],
    )?;
    run_ignored(sh, "latex")?;
    println!(
        "latex-test: passed; documents and logs under {}",
        target_dir().join("tmp/latex-test").display()
    );
    Ok(())
}

fn run_ignored(sh: &Shell, test: &str) -> Result<()> {
    cmd!(
        sh,
        "cargo test --release -p passk-e2e --test {test} -- --ignored --nocapture"
    )
    .run()
    .with_context(|| format!("the {test} test failed (messages above)"))?;
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::project_root().join("target"))
}

/// The first of `programs` on `PATH`.
fn which(programs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    programs.iter().find_map(|p| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(p))
            .find(|c| c.is_file())
    })
}

/// Finds one of `programs`, or installs `packages` with `apt-get` (as root, or through sudo)
/// and finds it then.
fn ensure_program(sh: &Shell, programs: &[&str], packages: &[&str]) -> Result<()> {
    if let Some(found) = which(programs) {
        println!("{}: found {}", programs[0], found.display());
        return Ok(());
    }
    println!(
        "{} is not installed: installing the Debian package(s) {} with apt-get",
        programs[0],
        packages.join(" ")
    );
    let root = cmd!(sh, "id -u").read().is_ok_and(|uid| uid.trim() == "0");
    // `apt-get ...`, or `sudo apt-get ...`.
    let (program, apt): (&str, &[&str]) = if root {
        ("apt-get", &[])
    } else if which(&["sudo"]).is_some() {
        ("sudo", &["apt-get"])
    } else {
        bail!(
            "{} is missing and this user is not root (and has no sudo) to install {}",
            programs[0],
            packages.join(" ")
        );
    };
    if which(&["apt-get"]).is_none() {
        bail!(
            "{} is missing and there is no apt-get here: install it with the system's package \
             manager (Debian: {})",
            programs[0],
            packages.join(" ")
        );
    }
    let _env = sh.push_env("DEBIAN_FRONTEND", "noninteractive");
    cmd!(sh, "{program} {apt...} update")
        .run()
        .context("apt-get update failed")?;
    cmd!(
        sh,
        "{program} {apt...} install -y --no-install-recommends {packages...}"
    )
    .run()
    .context("apt-get install failed")?;
    match which(programs) {
        Some(found) => {
            println!("{}: installed {}", programs[0], found.display());
            Ok(())
        }
        None => bail!(
            "apt-get installed {} but none of {programs:?} is on PATH",
            packages.join(" ")
        ),
    }
}
