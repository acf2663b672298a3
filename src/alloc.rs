//! The memory allocator, chosen for the simulation's allocation pattern.
//!
//! Every step, each worker thread frees and allocates thousands of row
//! buffers of a few kilobytes (a live innovation's exposures and
//! residuals), and a few n x n scratch arrays. mimalloc (2.x) serves each
//! thread from its own pages, one size class per page, so the rows a
//! worker sweeps lie close together: `techdiff bench`, 2 threads, against
//! glibc's malloc with the settings it had before (keep 1 GiB free per
//! arena, grow 64 MiB at a time): medium.toml 0.309-0.330 s ->
//! 0.272-0.297 s, medium_policy.toml 1.13-1.24 s -> 0.935-0.949 s,
//! small.toml 0.025 s -> 0.021 s (results/BENCHMARKS.md, tenth round).
//!
//! One option is changed: freed memory is never given back to the kernel
//! while the program runs (`purge_delay` -1, default 10 ms). The rows freed
//! in one step are allocated again in the next, and giving their pages
//! back made the kernel fault them in again: large.toml took 3.8 s of
//! system time and 314,000 page faults with the default, 1.1 s and 805
//! with the option. The peak is the same (1.26 GiB).
//!
//! The binary and the benchmarks declare [`Allocator`] as their global
//! allocator and call [`tune`] first; the library itself does not impose
//! one. Results never depend on the allocator.

/// The global allocator of the binary and the benchmarks.
pub use mimalloc::MiMalloc as Allocator;

/// `mi_option_purge_delay` of mimalloc 2.3's `mi_option_e` (mimalloc.h):
/// libmimalloc-sys names only some options, so this one goes by number,
/// and Cargo.toml pins the crate (and so the bundled mimalloc) to keep it
/// right.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Apply the allocator's settings; call once at start-up, before the
/// simulation allocates.
pub fn tune() {
    // SAFETY: setting an option only changes a value mimalloc reads when
    // it decides whether to give memory back; any value is valid.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::{CStr, c_char, c_void};
    use std::sync::Mutex;

    static PRINTED: Mutex<String> = Mutex::new(String::new());

    unsafe extern "C" fn collect(msg: *const c_char, _: *mut c_void) {
        // SAFETY: mimalloc passes a NUL-terminated message.
        let msg = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
        PRINTED.lock().expect("not poisoned").push_str(&msg);
    }

    unsafe extern "C" {
        /// Prints every option by name (mimalloc.h; not bound by
        /// libmimalloc-sys).
        fn mi_options_print();
    }

    /// The option set by number is the one named `purge_delay`, and it is
    /// set to -1.
    #[test]
    fn tune_sets_the_purge_delay_by_its_number() {
        tune();
        // SAFETY: mimalloc's output goes to `collect` while the options
        // are printed, then back to its default.
        unsafe {
            libmimalloc_sys::mi_register_output(Some(collect), std::ptr::null_mut());
            mi_options_print();
            libmimalloc_sys::mi_register_output(None, std::ptr::null_mut());
        }
        let printed = PRINTED.lock().expect("not poisoned").clone();
        assert!(
            printed.contains("option 'purge_delay': -1"),
            "mimalloc's options: {printed}"
        );
    }
}
