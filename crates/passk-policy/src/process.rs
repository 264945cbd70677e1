//! Process-wide settings for the CPU engine.

/// Tunes the allocator and candle's thread pool for the engine's workload; call it first thing
/// in `main`, before any thread starts. Numbers are unaffected: only where memory comes from
/// and how idle threads wait change.
///
/// - **Allocator (glibc only).** A training step allocates and frees activations of a few MB
///   each, hundreds of times. With glibc's defaults every such buffer is a fresh `mmap` (its
///   pages zeroed by the kernel on first touch) and a `munmap` on free (a TLB shootdown across
///   threads); profiling the `small` model's forward pass put 43% of its time in the kernel for
///   this alone. Raising the mmap threshold and disabling heap trimming serves the buffers from
///   the heap again. Peak memory is unchanged, but the process keeps its peak until exit.
/// - **Thread pools.** The fused kernels and candle's element-wise ops run on candle's barrier
///   pool, the matmuls on rayon's. After each job a barrier-pool worker spins for up to 25,000
///   iterations before parking, taking a core from the matmul that follows; with two threads it
///   was 13% of the samples of a training step. Unless `CANDLE_BARRIER_POOL_SPIN_LIMIT` is set,
///   it is lowered to 200.
pub fn tune_process() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const GIB: libc::c_int = 1 << 30;
        // SAFETY: mallopt only changes allocator parameters; both are valid for glibc.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, GIB);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    }
    const SPIN: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(SPIN).is_none() {
        // Sound here: called before any other thread exists (see above).
        std::env::set_var(SPIN, "200");
    }
}
