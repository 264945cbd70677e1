//! Letting a write finish before the process stops (SIGTERM from a scheduler).
//!
//! A [`Gate`] counts the *write sections* in progress: a file written under a temporary name
//! and renamed into place, or a group of such files that belong together (a checkpoint, a
//! finished cell's record and its rename). `passk`'s signal thread calls
//! [`Gate::stop_after_writes`] on SIGTERM: from then on no new section starts (a thread that
//! tries waits until the process exits), the sections in progress finish, and the process
//! exits. Nested sections of one thread (a section inside a section) always go ahead, so a
//! section never waits for itself.
//!
//! This is a courtesy on top of what already holds: every write is atomic, so even `SIGKILL`
//! in the middle of one leaves the previous file or the new one, never half of one. The gate
//! adds that a stop does not throw away a checkpoint being written, and that no temporary is
//! left behind by a process that was asked to stop.
//!
//! [`GATE`] is the process's gate; every atomic writer of the workspace opens its section on it
//! with [`write_section`].

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts write sections in progress and refuses new ones once a stop is requested.
#[derive(Debug, Default)]
pub struct Gate {
    open: AtomicUsize,
    stopping: AtomicBool,
}

/// The process-wide gate that [`write_section`] opens sections on.
pub static GATE: Gate = Gate::new();

thread_local! {
    /// How many sections this thread has open (on any gate).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// An open write section; the section ends when it is dropped.
#[derive(Debug)]
#[must_use = "the section ends when this is dropped"]
pub struct Section<'a> {
    gate: &'a Gate,
}

impl Gate {
    /// A gate with no section open and no stop requested.
    pub const fn new() -> Gate {
        Gate {
            open: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        }
    }

    /// Opens a write section. After a stop was requested, a thread without an open section
    /// waits here for good (the process is about to exit); a nested section goes ahead.
    pub fn section(&self) -> Section<'_> {
        self.open.fetch_add(1, Ordering::SeqCst);
        let nested = DEPTH.with(|d| d.get()) > 0;
        if self.stopping.load(Ordering::SeqCst) && !nested {
            // The stopping thread either saw our increment (and waits for this decrement) or
            // we saw its flag: in both orders no section starts after the stop.
            self.open.fetch_sub(1, Ordering::SeqCst);
            loop {
                std::thread::park();
            }
        }
        DEPTH.with(|d| d.set(d.get() + 1));
        Section { gate: self }
    }

    /// Requests a stop: no new section starts from now on. Then waits until every section in
    /// progress has ended (`true`) or `timeout` has passed (`false`).
    pub fn stop_after_writes(&self, timeout: Duration) -> bool {
        self.stopping.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + timeout;
        while self.open.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Whether a stop was requested.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// How many sections are open now.
    pub fn open_sections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for Section<'_> {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
        self.gate.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Opens a write section on the process's [`GATE`]: hold it while writing a temporary file and
/// renaming it into place (or a group of files that belong together).
pub fn write_section() -> Section<'static> {
    GATE.section()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn leak() -> &'static Gate {
        Box::leak(Box::new(Gate::new()))
    }

    #[test]
    fn a_stop_waits_for_the_section_in_progress() {
        let gate = leak();
        let finished = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let done = finished.clone();
        let writer = std::thread::spawn(move || {
            let _s = gate.section();
            tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            done.store(true, Ordering::SeqCst);
        });
        rx.recv().unwrap();
        assert!(gate.stop_after_writes(Duration::from_secs(10)));
        assert!(
            finished.load(Ordering::SeqCst),
            "the stop returned before the write finished"
        );
        assert_eq!(gate.open_sections(), 0);
        writer.join().unwrap();
    }

    #[test]
    fn no_section_starts_after_a_stop_but_nested_ones_do() {
        let gate = leak();
        let started = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (nested_tx, nested_rx) = std::sync::mpsc::channel::<()>();
        // A writer inside its section when the stop comes may still open a nested one.
        let outer = std::thread::spawn(move || {
            let _s = gate.section();
            tx.send(()).unwrap();
            nested_rx.recv().unwrap();
            let _inner = gate.section();
        });
        rx.recv().unwrap();
        let stopper = std::thread::spawn(move || gate.stop_after_writes(Duration::from_secs(10)));
        while !gate.stopping() {
            std::thread::sleep(Duration::from_millis(1));
        }
        nested_tx.send(()).unwrap();
        outer.join().unwrap();
        assert!(stopper.join().unwrap());
        // A fresh writer never gets in (it waits for the exit; here it is left parked).
        let flag = started.clone();
        std::thread::spawn(move || {
            let _s = gate.section();
            flag.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !started.load(Ordering::SeqCst),
            "a section began after the stop"
        );
        assert_eq!(gate.open_sections(), 0);
    }

    #[test]
    fn a_stop_gives_up_after_its_timeout() {
        let gate = leak();
        let section = gate.section();
        let t0 = Instant::now();
        assert!(!gate.stop_after_writes(Duration::from_millis(50)));
        assert!(t0.elapsed() >= Duration::from_millis(50));
        drop(section);
        assert!(gate.stop_after_writes(Duration::from_millis(50)));
    }
}
