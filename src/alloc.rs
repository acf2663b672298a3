//! Settings of the system allocator for the simulation's memory pattern.
//!
//! Every step, each worker thread frees and allocates thousands of row
//! buffers of a few kilobytes, and a few n x n scratch arrays. With its
//! default settings glibc's malloc gives the free memory at the top of each
//! arena back to the kernel and takes it again at the next step, so the same
//! pages are faulted in and zeroed over and over: on
//! `scenarios/bench/large.toml` 4.2 s of 31 s of CPU time were spent in the
//! kernel and 810,000 page faults were taken for a 2.2 GiB peak. Keeping up
//! to 1 GiB of free memory per arena, growing arenas 64 MiB at a time and
//! serving blocks up to 32 MiB from the arenas leaves about 560,000 faults
//! (the first touch of the peak) and 1.3 to 1.9 s in the kernel
//! (results/BENCHMARKS.md).
//! Results do not depend on it. Other platforms and allocators are left as
//! they are.

/// Apply the settings; call once at start-up, before any thread exists.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const GIB: libc::c_int = 1 << 30;
        const MIB: libc::c_int = 1 << 20;
        // SAFETY: mallopt only changes malloc's parameters; it is called
        // before other threads start. A rejected value (returns 0) leaves
        // glibc's default in place, which is correct, only slower.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * MIB);
            libc::mallopt(libc::M_TRIM_THRESHOLD, GIB);
            libc::mallopt(libc::M_TOP_PAD, 64 * MIB);
        }
    }
}
