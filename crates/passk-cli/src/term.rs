//! Progress lines on the terminal: each line goes out in one write, so the lines of several
//! processes sharing a terminal (shards) never interleave mid-line, and a cell's stage lines go
//! through the run's progress bar instead of over it.

use std::io::Write;
use std::sync::Arc;

/// Writes `line` and a newline to stderr in one `write` call.
pub fn say(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&bytes);
}

/// Where a cell's stage lines go (see [`crate::tiers::RunContext::log`]).
#[derive(Clone)]
pub struct Log(Arc<dyn Fn(&str) + Send + Sync>);

impl Log {
    /// A sink that calls `f` with each line.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Sends one line.
    pub fn line(&self, line: &str) {
        (self.0)(line)
    }
}

impl Default for Log {
    /// Lines to stderr, one write each.
    fn default() -> Self {
        Self::new(say)
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_log_passes_each_line_to_its_sink() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        let log = Log::new(move |l| into.lock().unwrap().push(l.to_string()));
        log.clone().line("a");
        log.line("b");
        assert_eq!(*seen.lock().unwrap(), ["a", "b"]);
    }
}
