//! The x86-64 feature sets the kernels are compiled for, checked at run
//! time (each check is a cached load after the first): a kernel compiled
//! for a set runs only where the CPU has all of it.

/// AVX2, BMI1/2, POPCNT and LZCNT (part of x86-64-v3): most x86-64
/// CPUs since 2013.
#[cfg(target_arch = "x86_64")]
pub(crate) fn x86_v3() -> bool {
    use std::arch::is_x86_feature_detected as has;
    has!("avx2") && has!("bmi1") && has!("bmi2") && has!("popcnt") && has!("lzcnt")
}

/// AVX-512 F, BW, DQ and VL (part of x86-64-v4): Intel's server CPUs
/// since Skylake-SP, AMD's since Zen 4.
#[cfg(target_arch = "x86_64")]
pub(crate) fn x86_avx512() -> bool {
    use std::arch::is_x86_feature_detected as has;
    has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl")
}
