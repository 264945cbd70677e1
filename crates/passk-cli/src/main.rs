//! The `passk` binary; see `passk --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // A closed pipe (`passk list ... | head`) ends the process quietly, as for other Unix
    // tools, instead of making `println!` panic (Rust ignores SIGPIPE by default).
    #[cfg(unix)]
    // SAFETY: restoring a signal's default action, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // SIGTERM/SIGINT: finish the write in progress, then exit 143/130 (src/signals.rs).
    passk_cli::signals::install();
    passk_policy::tune_process();
    let raw: Vec<String> = std::env::args().skip(1).collect();
    match passk_cli::run_cli(&raw) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
