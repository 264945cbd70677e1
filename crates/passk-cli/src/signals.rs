//! SIGTERM and SIGINT: finish the write in progress, then exit non-zero.
//!
//! A scheduler stops a job with SIGTERM (Slurm on `scancel`, on preemption and at the time
//! limit, then SIGKILL after its `KillWait`, 30 s by default). [`install`] blocks SIGTERM and
//! SIGINT in every thread and leaves them to one thread that waits for them with `sigwait(3)`
//! (so the handler runs as ordinary code, not in signal context). On either signal it asks the
//! write gate ([`passk_core::interrupt`]) to stop: no new write starts, a write in progress (a
//! result file, a checkpoint, a warm start, a finished cell's record and rename) is finished,
//! then the process exits with status 128 + the signal (143 for SIGTERM, 130 for SIGINT), so
//! the scheduler sees a failure, not a success. Locks are released with the process. The next
//! `passk run` of the cell resumes from its last checkpoint (a killed run does the same; this
//! only spares the write that was under way).
//!
//! Why `libc` and not a crate such as `signal-hook`: blocking the signals and `sigwait` in one
//! thread is a few calls of `libc`, which `passk` already depends on.

use std::time::Duration;

/// How long a stop waits for the writes in progress before exiting anyway (a killed write is
/// safe too: every write is atomic). Below Slurm's default `KillWait` of 30 s.
pub const WRITE_GRACE: Duration = Duration::from_secs(20);

/// Blocks SIGTERM and SIGINT in this thread (and so in every thread started after it) and
/// starts the thread that handles them. Call first thing in `main`, before any thread exists.
#[cfg(unix)]
pub fn install() {
    // SAFETY: plain libc calls on a zeroed, then initialised, signal set owned by this frame
    // and moved into the thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return; // keep the default actions: a kill is safe as well
        }
        set
    };
    let spawned = std::thread::Builder::new()
        .name("passk-signals".into())
        .spawn(move || {
            let mut signal: libc::c_int = 0;
            // SAFETY: `set` is a valid signal set; `signal` a valid out pointer.
            while unsafe { libc::sigwait(&set, &mut signal) } != 0 {}
            let name = if signal == libc::SIGTERM {
                "SIGTERM"
            } else {
                "SIGINT"
            };
            eprintln!(
                "passk: {name} received: finishing the write in progress, then stopping \
                 (the next `passk run` resumes from the last checkpoint)"
            );
            if !passk_core::interrupt::GATE.stop_after_writes(WRITE_GRACE) {
                eprintln!(
                    "passk: a write was still under way after {} s; stopping anyway (it is \
                     atomic: the old file stays)",
                    WRITE_GRACE.as_secs()
                );
            }
            std::process::exit(128 + signal);
        });
    if spawned.is_err() {
        // No handler thread: restore the default actions rather than ignore the signals.
        // SAFETY: as above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

/// Elsewhere the default actions stay (every write is atomic, so a kill is safe).
#[cfg(not(unix))]
pub fn install() {}
