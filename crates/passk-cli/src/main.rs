//! The `passk` binary; see `passk --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
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
