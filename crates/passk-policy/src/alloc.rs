//! Allocator settings for the CPU engine.

/// Keeps freed activation buffers in the process instead of returning them to the kernel.
///
/// A training step allocates and frees activations of a few MB each, hundreds of times. With
/// glibc's defaults every such buffer is a fresh `mmap` (its pages zeroed by the kernel on first
/// touch) and a `munmap` on free (a TLB shootdown across threads); profiling the `small` model's
/// forward pass put 43% of its time in the kernel for this alone. Raising the mmap threshold
/// and disabling heap trimming serves the buffers from the heap again. Numbers are unaffected
/// (only where memory comes from changes); peak memory stays the same, but the process keeps
/// its peak until exit. Call it once at the start of `main`; a no-op off glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const GIB: libc::c_int = 1 << 30;
        // SAFETY: mallopt only changes allocator parameters; both are valid for glibc.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, GIB);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    }
}
