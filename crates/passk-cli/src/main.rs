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
        // A usage error: clap's message (with the usage line), exit status 2.
        Err(e) => match e.downcast_ref::<clap::Error>() {
            Some(usage) => {
                eprint!("{}", usage.render());
                ExitCode::from(u8::try_from(usage.exit_code()).unwrap_or(2))
            }
            // A runtime error (bad input, a failed cell, a refused MANIFEST update): status 1,
            // apart from clap's 2 for usage errors and 3 for an incomplete run.
            None => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}
