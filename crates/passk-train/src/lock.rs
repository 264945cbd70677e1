//! Advisory file locks between `passk` processes, and the names of their temporaries.
//!
//! [`FileLock`] holds an exclusive lock on a lock file (created if missing) for as long as it
//! lives. Two users take it:
//!
//! - `passk run` takes `results/<experiment>/.lock-<hash>` without waiting before it runs a cell,
//!   so two processes (two shells, two overlapping shards) never run one cell at once: the second
//!   skips the cell and says who holds it.
//! - [`crate::warm_start_with`] waits for `<cache>/.sft-<hash>.lock` around check-cache, train,
//!   save (and for `<cache>/.sft1-<hash>.lock` around the shared SFT stage 1), so a warm start two
//!   processes need is trained once: the second waits, then loads it.
//!
//! # Stale locks
//!
//! The lock is `flock(2)` (what [`std::fs::File::lock`] uses on Linux): it belongs to the open
//! file, and the kernel releases it when the file is closed, including when its holder exits or
//! is killed (even by `SIGKILL`). A lock *file* left behind by a dead process therefore blocks
//! nobody; there is no pid to check and nothing to clean up by hand. Lock files are hidden
//! (their names start with `.`), so they never enter `results/MANIFEST` and are never taken for
//! cells. A lock file is removed only by a process that holds its lock ([`FileLock::remove`]:
//! `passk run` removes a cell's lock file once the cell is in place, and free lock files of
//! finished cells at the start of a run); [`FileLock::acquire`] and [`FileLock::try_acquire`]
//! re-check after locking that the path still names the file they locked, and retry on a fresh
//! file if it was removed meanwhile (also when NFS reports the removed file as stale), so two
//! processes never both hold "the" lock. Warm-start lock files in the cache are left in place.
//!
//! A child process started (`fork`, then `exec`) while a lock is held shares the open lock file
//! until its `exec` closes it (every Rust file is close-on-exec), so for that instant the lock
//! stays held even if the parent drops it.
//!
//! # Network and other filesystems
//!
//! On NFS, Linux maps `flock` onto POSIX byte-range locks of the whole file, which the server
//! arbitrates between clients (NFSv4 locks, or the NLM side protocol for NFSv3) where the client
//! supports them. Two caveats follow from the POSIX semantics there: locks of one process do not
//! exclude each other (`passk` takes at most one lock of a given file per process), and closing
//! any descriptor of the file releases the process's lock on it. A filesystem without lock
//! support makes taking the lock fail (typically `ENOLCK` or `EOPNOTSUPP`) with
//! [`TrainError::Lock`](crate::TrainError::Lock) naming the lock file: `passk` stops rather than
//! run unprotected. Point `--results` and `--cache` at a local disk in that case.
//!
//! # Temporaries
//!
//! Files are written under hidden temporary names beside their target and renamed into place.
//! [`temp_writer_pid`] recognises those names (every pattern this workspace writes) and returns
//! the writer's pid, so leftovers of dead writers can be removed ([`pid_alive`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};

/// An exclusive advisory lock on a file, released when dropped (see the module docs).
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

// `File::lock` and `File::try_lock` are stable since Rust 1.89. The workspace declares
// `rust-version = "1.85"` (raising it turns on lints such as `manual_is_multiple_of` across the
// workspace) but builds with the 1.95 pinned in rust-toolchain.toml.
#[allow(clippy::incompatible_msrv)]
impl FileLock {
    /// Waits until this process holds the lock on `path` (creating the file if missing).
    pub fn acquire(path: &Path) -> Result<FileLock> {
        loop {
            let file = open(path)?;
            match file.lock() {
                Ok(()) => {}
                // NFS: the file was removed while we waited; lock the new one.
                Err(e) if e.kind() == ErrorKind::StaleNetworkFileHandle => continue,
                Err(e) => return Err(lock_err(path)(e)),
            }
            if still_at(&file, path)? {
                return Ok(FileLock {
                    file,
                    path: path.to_path_buf(),
                });
            }
        }
    }

    /// The lock on `path` if no other holder has it now (creating the file if missing), without
    /// waiting; `None` while another process (or another open of the file) holds it.
    pub fn try_acquire(path: &Path) -> Result<Option<FileLock>> {
        loop {
            let file = open(path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) if e.kind() == ErrorKind::StaleNetworkFileHandle => {
                    continue
                }
                Err(TryLockError::Error(e)) => return Err(lock_err(path)(e)),
            }
            if still_at(&file, path)? {
                return Ok(Some(FileLock {
                    file,
                    path: path.to_path_buf(),
                }));
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `pid <pid>` and `host <hostname>` into the lock file, for humans and for the
    /// message of a process that finds the lock taken ([`holder`]).
    pub fn write_holder(&mut self) -> Result<()> {
        let text = format!("pid {}\nhost {}\n", std::process::id(), hostname());
        let io = |e| TrainError::Io {
            path: self.path.clone(),
            source: e,
        };
        self.file.set_len(0).map_err(io)?;
        self.file.seek(SeekFrom::Start(0)).map_err(io)?;
        self.file.write_all(text.as_bytes()).map_err(io)?;
        self.file.flush().map_err(io)
    }

    /// Removes the lock file while still holding the lock, then releases it. Only for a lock
    /// whose purpose is over (a finished cell): a process that opened the old file meanwhile
    /// notices the removal after locking and retries on a new file.
    pub fn remove(self) -> Result<()> {
        std::fs::remove_file(&self.path).map_err(|e| TrainError::Io {
            path: self.path.clone(),
            source: e,
        })
    }
}

/// Who holds (or last held) the lock on `path`, as `pid <pid>, host <host>` from the lock file
/// (`unknown` for what it does not say).
pub fn holder(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    };
    format!("pid {}, host {}", field("pid "), field("host "))
}

/// This machine's host name (`unknown` when the system does not say).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Whether a process with id `pid` exists on this machine (`/proc/<pid>`). Where there is no
/// `/proc`, every process counts as alive, so nothing is removed on its account.
pub fn pid_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new("/proc").join(pid.to_string()).exists()
}

/// The writer's pid if `name` is a hidden temporary file name of this workspace:
/// `.<name>.<pid>.tmp`, `.<name>.<pid>-<n>.tmp`, `.<name>.tmp-<pid>`, `.<name>.tmp-<pid>-<n>`
/// or `.<stem>.tmp-<pid>-<n>.<ext>`; `None` for any other name.
pub fn temp_writer_pid(name: &str) -> Option<u32> {
    let body = name.strip_prefix('.')?;
    // `.<name>.<pid>[-<n>].tmp`
    if let Some(rest) = body.strip_suffix(".tmp") {
        if let Some((_, tail)) = rest.rsplit_once('.') {
            if let Some(pid) = pid_counter(tail) {
                return Some(pid);
            }
        }
    }
    // `.<name>.tmp-<pid>[-<n>]` or `.<stem>.tmp-<pid>-<n>.<ext>`
    let (_, tail) = body.rsplit_once(".tmp-")?;
    if let Some(pid) = pid_counter(tail) {
        return Some(pid);
    }
    let (ids, ext) = tail.split_once('.')?;
    let plain_ext = !ext.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric());
    pid_counter(ids).filter(|_| plain_ext)
}

/// `<pid>` or `<pid>-<n>`, digits only.
fn pid_counter(text: &str) -> Option<u32> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let pid = match text.split_once('-') {
        Some((pid, n)) if digits(n) => pid,
        Some(_) => return None,
        None => text,
    };
    if digits(pid) {
        pid.parse().ok()
    } else {
        None
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| TrainError::Io {
            path: path.to_path_buf(),
            source: e,
        })
}

fn lock_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Lock {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `path` still names the open `file` (it was not removed or replaced before we locked).
#[cfg(unix)]
fn still_at(file: &File, path: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = match file.metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::StaleNetworkFileHandle => return Ok(false),
        Err(e) => {
            return Err(TrainError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    Ok(match std::fs::metadata(path) {
        Ok(now) => now.dev() == held.dev() && now.ino() == held.ino(),
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => {
            return Err(TrainError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        }
    })
}

/// Elsewhere an open file cannot be removed, so the path still names it.
#[cfg(not(unix))]
fn still_at(_file: &File, _path: &Path) -> Result<bool> {
    Ok(true)
}

/// Held by tests that spawn a process and by tests that check `try_acquire` outcomes: a child
/// shares its parent's open files from `fork` until `exec` closes them, so a lock taken by
/// another test thread looks held for that instant.
#[cfg(test)]
pub(crate) fn spawn_guard() -> std::sync::MutexGuard<'static, ()> {
    static GUARD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    GUARD.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    /// The environment variable that turns [`child_holds_a_lock`] into a lock holder.
    const CHILD_LOCK: &str = "PASSK_TEST_CHILD_LOCK";
    /// What the child prints once it holds the lock.
    const LOCKED: &str = "passk-test-child-holds-the-lock";

    /// Run by [`a_second_process_is_refused_and_a_killed_holder_blocks_nobody`] in a child
    /// process: takes the lock named by `PASSK_TEST_CHILD_LOCK`, says so, and waits to be killed.
    #[test]
    #[ignore = "helper run in a child process by a_second_process_is_refused..."]
    fn child_holds_a_lock() {
        let path = PathBuf::from(std::env::var_os(CHILD_LOCK).expect("run by the parent test"));
        let mut lock = FileLock::acquire(&path).unwrap();
        lock.write_holder().unwrap();
        println!("\n{LOCKED}");
        std::io::stdout().flush().unwrap();
        // The parent kills it long before.
        std::thread::sleep(std::time::Duration::from_secs(120));
    }

    #[test]
    fn a_second_process_is_refused_and_a_killed_holder_blocks_nobody() {
        let _serial = spawn_guard();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock-abc");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "lock::tests::child_holds_a_lock",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_LOCK, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        assert!(
            lines.any(|l| l.unwrap().contains(LOCKED)),
            "the child never took the lock"
        );
        assert!(FileLock::try_acquire(&path).unwrap().is_none());
        let who = holder(&path);
        assert!(
            who.contains(&format!("pid {}", child.id())) && who.contains(&hostname()),
            "{who}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        // The lock file is still there, but its holder is gone: the kernel released the lock.
        assert!(path.is_file());
        let lock = FileLock::try_acquire(&path).unwrap();
        assert!(lock.is_some(), "a dead holder's lock file blocks");
    }

    #[test]
    fn a_dropped_lock_leaves_its_file_and_blocks_nobody() {
        let _serial = spawn_guard();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".sft-x.lock");
        let first = FileLock::acquire(&path).unwrap();
        // A second open of the file (another thread here) is refused while the first holds it.
        let other = path.clone();
        let refused = std::thread::spawn(move || FileLock::try_acquire(&other).unwrap().is_none());
        assert!(refused.join().unwrap());
        drop(first);
        assert!(path.is_file());
        let again = FileLock::try_acquire(&path).unwrap();
        assert!(again.is_some());
        assert_eq!(again.unwrap().path(), path);
        let blocking = FileLock::acquire(&path).unwrap();
        drop(blocking);
    }

    #[test]
    fn a_waiter_whose_file_was_removed_locks_the_new_one() {
        let _serial = spawn_guard();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock-h");
        let first = FileLock::acquire(&path).unwrap();
        let other = path.clone();
        let waiter = std::thread::spawn(move || {
            let lock = FileLock::acquire(&other).unwrap();
            assert!(other.is_file(), "the lock is on a file that exists");
            // Whoever comes next is refused: this lock is on the file the path names.
            FileLock::try_acquire(&other).unwrap().is_none() && lock.path() == other
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        first.remove().unwrap();
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn the_holder_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock-h");
        assert_eq!(holder(&path), "pid unknown, host unknown");
        let mut lock = FileLock::acquire(&path).unwrap();
        lock.write_holder().unwrap();
        lock.write_holder().unwrap();
        assert_eq!(
            holder(&path),
            format!("pid {}, host {}", std::process::id(), hostname())
        );
        assert!(pid_alive(std::process::id()));
    }

    #[test]
    fn temporary_names_give_their_writer() {
        for (name, pid) in [
            (".summary.json.123.tmp", Some(123)),
            (".sft-ab.safetensors.45-6.tmp", Some(45)),
            (".eval.csv.tmp-78-9", Some(78)),
            ("..sft-ab.safetensors.45-6.tmp.tmp-45", Some(45)),
            (".model.safetensors.tmp-77", Some(77)),
            (".gram.tmp-5-1.f32", Some(5)),
            ("summary.json.123.tmp", None),
            (".lock-abc", None),
            (".sft-ab.lock", None),
            (".keep", None),
            (".a.tmp", None),
            (".a.x-1.tmp", None),
            (".a.tmp-x", None),
            (".a.tmp-1-2-3", None),
            (".a.tmp-1.tar.gz", None),
        ] {
            assert_eq!(temp_writer_pid(name), pid, "{name}");
        }
    }
}
