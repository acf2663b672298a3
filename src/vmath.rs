//! The `libm` crate's `log`, `cos` and `exp` over slices, the same bits as
//! one call at a time, several lanes per instruction.
//!
//! The `libm` crate (FreeBSD's msun algorithms) is what makes outputs the
//! same bits on every platform (README, "Reproducibility"), but its
//! functions branch on the argument's range, so a loop of calls stays
//! scalar. Each function here is the main path of the `libm` function,
//! transcribed operation by operation (basic IEEE operations and bit
//! manipulation only, in the same order; Rust fuses no multiply and add),
//! with the range branches written as selects, so the compiler vectorises a
//! loop over it and every lane gives the bits of the `libm` call. Arguments
//! off the main paths (out of range, special values, the cancellation cases
//! of `cos`'s argument reduction) are rare here and are given to the `libm`
//! function itself. Tests compare every path with `libm`, bit for bit, on
//! millions of arguments and at each range boundary.
//!
//! Used for the perception noise (MODEL.md section 4: one log-normal factor
//! per perceived pair and step), where the three calls were 3.2% of
//! `medium_policy.toml`'s samples.

use std::f64::consts::TAU;

/// `exp(sd * z - sd * sd / 2)` for each `z = sqrt(-2 ln u1) cos(2 pi u2)`
/// (the Box-Muller normal of [`crate::rng::normal`]) of `u1` (in (0, 1])
/// and `u2` (in [0, 1)) in turn: exactly, bit for bit,
/// `libm::exp(sd * z - sd * sd / 2.0)` with
/// `z = (-2.0 * libm::log(u1)).sqrt() * libm::cos(TAU * u2)`, written into
/// `out` (all three slices have the same length).
pub fn lognormal_noise(u1: &[f64], u2: &[f64], sd: f64, out: &mut [f64]) {
    assert!(u1.len() == out.len() && u2.len() == out.len());
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::x86_avx512() {
        // SAFETY: the CPU has the AVX-512 subsets (checked just above).
        unsafe { lognormal_noise_v4(u1, u2, sd, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { lognormal_noise_v3(u1, u2, sd, out) };
        return;
    }
    lognormal_noise_any(u1, u2, sd, out);
}

/// [`lognormal_noise`] compiled for CPUs with AVX2 (four lanes).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn lognormal_noise_v3(u1: &[f64], u2: &[f64], sd: f64, out: &mut [f64]) {
    lognormal_noise_any(u1, u2, sd, out);
}

/// [`lognormal_noise`] compiled for CPUs with AVX-512 (eight lanes).
///
/// # Safety
/// The CPU must have AVX-512F, DQ, VL and BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw")]
unsafe fn lognormal_noise_v4(u1: &[f64], u2: &[f64], sd: f64, out: &mut [f64]) {
    lognormal_noise_any(u1, u2, sd, out);
}

/// The lanes of [`lognormal_noise`]: the main paths in one branch-free loop
/// (which the compiler vectorises), each result's flag noting whether its
/// arguments were on them; then the rare others again with `libm`.
#[inline(always)]
fn lognormal_noise_any(u1: &[f64], u2: &[f64], sd: f64, out: &mut [f64]) {
    let half_var = sd * sd / 2.0;
    let mut off_path = false;
    for ((o, &a), &b) in out.iter_mut().zip(u1).zip(u2) {
        let x = TAU * b;
        let z = (-2.0 * log_main(a)).sqrt() * cos_main(x);
        let e = sd * z - half_var;
        off_path |= !(log_on_path(a) & cos_on_path(x) & exp_on_path(e));
        *o = exp_main(e);
    }
    if off_path {
        for ((o, &a), &b) in out.iter_mut().zip(u1).zip(u2) {
            let x = TAU * b;
            let z = (-2.0 * log_main(a)).sqrt() * cos_main(x);
            let e = sd * z - half_var;
            if !(log_on_path(a) & cos_on_path(x) & exp_on_path(e)) {
                *o = libm::exp(sd * crate::rng::box_muller(a, b) - half_var);
            }
        }
    }
}

/// High word of x's bits.
#[inline(always)]
fn high(x: f64) -> u32 {
    (x.to_bits() >> 32) as u32
}

// `libm::log` (FreeBSD's e_log.c).
const LN2_HI: f64 = f64::from_bits(0x3fe62e42_fee00000); // 6.93147180369123816490e-01
const LN2_LO: f64 = f64::from_bits(0x3dea39ef_35793c76); // 1.90821492927058770002e-10
const LG1: f64 = f64::from_bits(0x3fe55555_55555593); // 6.666666666666735130e-01
const LG2: f64 = f64::from_bits(0x3fd99999_9997fa04); // 3.999999999940941908e-01
const LG3: f64 = f64::from_bits(0x3fd24924_94229359); // 2.857142874366239149e-01
const LG4: f64 = f64::from_bits(0x3fcc71c5_1d8e78af); // 2.222219843214978396e-01
const LG5: f64 = f64::from_bits(0x3fc74664_96cb03de); // 1.818357216161805012e-01
const LG6: f64 = f64::from_bits(0x3fc39a09_d078c69f); // 1.531383769920937332e-01
const LG7: f64 = f64::from_bits(0x3fc2f112_df3e5244); // 1.479819860511658591e-01

/// Whether `libm::log(x)` takes its main path: x positive, normal and
/// finite (x = 1, which `libm` answers at once with 0, gives 0 on the main
/// path too).
#[inline(always)]
pub(crate) fn log_on_path(x: f64) -> bool {
    let hx = high(x);
    (0x0010_0000..0x7ff0_0000).contains(&hx)
}

/// `libm::log`'s main path (see [`log_on_path`]).
#[inline(always)]
pub(crate) fn log_main(x: f64) -> f64 {
    let ui = x.to_bits();
    // Reduce x into [sqrt(2)/2, sqrt(2)]: on the main path hx is below
    // 0x7ff00000, so the sum does not wrap (wrapping only keeps a lane off
    // the path from panicking in debug builds).
    let hx = high(x).wrapping_add(0x3ff0_0000 - 0x3fe6_a09e);
    let k = ((hx >> 20) as i32) - 0x3ff;
    let hx = (hx & 0x000f_ffff) + 0x3fe6_a09e;
    let x = f64::from_bits((u64::from(hx) << 32) | (ui & 0xffff_ffff));
    let f = x - 1.0;
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    let dk = f64::from(k);
    s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI
}

// `libm::cos` (FreeBSD's s_cos.c, k_cos.c, k_sin.c, e_rem_pio2.c).
const PIO2_1: f64 = f64::from_bits(0x3ff921fb_54400000); // 1.57079632673412561417e+00
const PIO2_1T: f64 = f64::from_bits(0x3dd0b461_1a626331); // 6.07710050650619224932e-11
const C1: f64 = f64::from_bits(0x3fa55555_5555554c); // 4.16666666666666019037e-02
const C2: f64 = f64::from_bits(0xbf56c16c_16c15177); // -1.38888888888741095749e-03
const C3: f64 = f64::from_bits(0x3efa01a0_19cb1590); // 2.48015872894767294178e-05
const C4: f64 = f64::from_bits(0xbe927e4f_809c52ad); // -2.75573143513906633035e-07
const C5: f64 = f64::from_bits(0x3e21ee9e_bdb4b1c4); // 2.08757232129817482790e-09
const C6: f64 = f64::from_bits(0xbda8fae9_be8838d4); // -1.13596475577881948265e-11
const S1: f64 = f64::from_bits(0xbfc55555_55555549); // -1.66666666666666324348e-01
const S2: f64 = f64::from_bits(0x3f811111_1110f8a6); // 8.33333333332248946124e-03
const S3: f64 = f64::from_bits(0xbf2a01a0_19c161d5); // -1.98412698298579493134e-04
const S4: f64 = f64::from_bits(0x3ec71de3_57b1fe7d); // 2.75573137070700676789e-06
const S5: f64 = f64::from_bits(0xbe5ae5e6_8a2b9ceb); // -2.50507602534068634195e-08
const S6: f64 = f64::from_bits(0x3de5d93a_5acfd57c); // 1.58969099521155010221e-10

/// Whether `libm::cos(x)` takes one of the paths [`cos_main`] follows:
/// x non-negative, at least 2^-27 sqrt(2) (below it `libm` answers 1 at
/// once), at most about 9 pi / 4 (beyond it the reduction is `rem_pio2`'s
/// "medium" one), and not one of the high words near pi/2, pi, 3 pi / 2
/// and 2 pi for which `rem_pio2` takes the medium reduction against
/// cancellation.
#[inline(always)]
pub(crate) fn cos_on_path(x: f64) -> bool {
    let ix = high(x);
    let near_half_pi = ix > 0x3fe9_21fb && ix <= 0x400f_6a7a && (ix & 0xf_ffff) == 0x9_21fb;
    (0x3e46_a09e..=0x401c_463b).contains(&ix)
        && !near_half_pi
        && ix != 0x4012_d97c
        && ix != 0x4019_21fb
}

/// `libm::cos`'s paths for 2^-27 sqrt(2) <= x <~ 9 pi / 4 (see
/// [`cos_on_path`]): below pi/4 `k_cos(x, 0)`; above, x less n pi/2 in
/// two parts (`rem_pio2`'s cases n = 1, 2, 3, 4 for positive x), then
/// `k_cos` or `k_sin` of them with the sign of the quadrant. Both kernels
/// are computed and the quadrant's one chosen. For n = 0 the reduction
/// gives (x, 0) exactly, as `libm` calls `k_cos(x, 0.0)`.
#[inline(always)]
pub(crate) fn cos_main(x: f64) -> f64 {
    let ix = high(x) & 0x7fff_ffff;
    let below_quarter = ix <= 0x3fe9_21fb;
    let n: f64 = if below_quarter {
        0.0
    } else if ix <= 0x4002_d97c {
        1.0
    } else if ix <= 0x400f_6a7a {
        2.0
    } else if ix <= 0x4015_fdbc {
        3.0
    } else {
        4.0
    };
    // `rem_pio2`: z = x - n PIO2_1, y0 = z - n PIO2_1T,
    // y1 = (z - y0) - n PIO2_1T (`libm` writes n * c as the literal
    // product, the same rounded value).
    let z = x - n * PIO2_1;
    let y0 = z - n * PIO2_1T;
    let y1 = (z - y0) - n * PIO2_1T;
    // k_cos(y0, y1).
    let zz = y0 * y0;
    let w = zz * zz;
    let r = zz * (C1 + zz * (C2 + zz * C3)) + w * w * (C4 + zz * (C5 + zz * C6));
    let hz = 0.5 * zz;
    let w1 = 1.0 - hz;
    let kc = w1 + (((1.0 - w1) - hz) + (zz * r - y0 * y1));
    // k_sin(y0, y1, 1).
    let rs = S2 + zz * (S3 + zz * S4) + zz * w * (S5 + zz * S6);
    let v = zz * y0;
    let ks = y0 - ((zz * (0.5 * y1 - v * rs) - y1) - v * S1);
    // n & 3: 0 -> k_cos, 1 -> -k_sin, 2 -> -k_cos, 3 -> k_sin.
    if below_quarter || ix > 0x4015_fdbc {
        kc
    } else if ix <= 0x4002_d97c {
        -ks
    } else if ix <= 0x400f_6a7a {
        -kc
    } else {
        ks
    }
}

// `libm::exp` (FreeBSD's e_exp.c; its ln 2 in two parts is `log`'s).
const INVLN2: f64 = f64::from_bits(0x3ff71547_652b82fe); // 1.44269504088896338700e+00
const P1: f64 = f64::from_bits(0x3fc55555_5555553e); // 1.66666666666666019037e-01
const P2: f64 = f64::from_bits(0xbf66c16c_16bebd93); // -2.77777777770155933842e-03
const P3: f64 = f64::from_bits(0x3f11566a_af25de2c); // 6.61375632143793436117e-05
const P4: f64 = f64::from_bits(0xbebbbd41_c5d26bf1); // -1.65339022054652515390e-06
const P5: f64 = f64::from_bits(0x3e663769_72bea4d0); // 4.13813679705723846039e-08

/// Whether `libm::exp(x)` takes its main path: 2^-28 < |x| < 708.39...
/// (NaN is off it: its high word is above the bound).
#[inline(always)]
pub(crate) fn exp_on_path(x: f64) -> bool {
    let hx = high(x) & 0x7fff_ffff;
    hx > 0x3e30_0000 && hx < 0x4086_232b
}

/// `libm::exp`'s main path (see [`exp_on_path`]): k = 0 where
/// |x| <= ln 2 / 2 (hi = x less 0, lo = 0 times ln2lo: the x, 0 and x of
/// `libm`'s k = 0 branch exactly), +-1 up to 1.5 ln 2, else x / ln 2
/// rounded half away from zero; then `scalbn(y, k)`, which for these k is
/// y times 2^k (y itself for k = 0).
#[inline(always)]
pub(crate) fn exp_main(x: f64) -> f64 {
    let hxs = high(x);
    let negative = hxs >> 31 != 0;
    let hx = hxs & 0x7fff_ffff;
    let half = if negative { -0.5 } else { 0.5 };
    let one = if negative { -1.0 } else { 1.0 };
    // `(INVLN2 * x + HALF[sign]) as i32`: truncation, |k| < 2^11 here.
    let far = (INVLN2 * x + half).trunc();
    let kf = if hx > 0x3fd6_2e42 {
        if hx >= 0x3ff0_a2b2 { far } else { one }
    } else {
        0.0
    };
    let hi = x - kf * LN2_HI;
    let lo = kf * LN2_LO;
    let x = hi - lo;
    let xx = x * x;
    let c = x - xx * (P1 + xx * (P2 + xx * (P3 + xx * (P4 + xx * P5))));
    let y = 1. + (x * c / (2. - c) - lo + hi);
    // 2^k from its bits: kf + 2^52 + 1023 holds k + 1023 (in 1..=2046 on
    // the main path) in its low bits, which the shift moves into the
    // exponent field.
    let biased = (kf + (4_503_599_627_370_496.0 + 1023.0)).to_bits();
    y * f64::from_bits(biased << 52)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// 2^-53, the smallest uniform in (0, 1].
    const SMALLEST: f64 = 1.0 / (1u64 << 53) as f64;

    /// Arguments around `x`: a few units in the last place either side.
    fn around(x: f64) -> impl Iterator<Item = f64> {
        let b = x.to_bits();
        (0..=16u64).flat_map(move |d| [f64::from_bits(b - d), f64::from_bits(b + d)])
    }

    /// The high-word boundaries of a path, as f64s either side.
    fn word_edges(words: &[u32]) -> Vec<f64> {
        words
            .iter()
            .flat_map(|&w| {
                let lo = f64::from_bits(u64::from(w) << 32);
                let hi = f64::from_bits((u64::from(w) << 32) | 0xffff_ffff);
                around(lo).chain(around(hi))
            })
            .collect()
    }

    #[test]
    fn log_main_is_libm_on_its_path() {
        let mut r = ChaCha8Rng::seed_from_u64(1);
        let mut checked = 0;
        let mut xs: Vec<f64> = (0..1_000_000)
            .map(|_| crate::rng::uniform_open0(&mut r))
            .collect();
        xs.extend((0..200_000).map(|_| f64::from_bits(r.next_u64() >> 1)));
        xs.extend(word_edges(&[
            0x0010_0000,
            0x3fe6_a09e,
            0x3ff0_0000,
            0x7fef_ffff,
        ]));
        xs.extend([1.0, 2.0, 0.5, f64::MIN_POSITIVE, f64::MAX, SMALLEST]);
        for x in xs {
            if log_on_path(x) {
                assert_eq!(log_main(x).to_bits(), libm::log(x).to_bits(), "log({x:e})");
                checked += 1;
            }
        }
        assert!(checked > 1_100_000, "{checked}");
        assert!(!log_on_path(0.0) && !log_on_path(-1.0) && !log_on_path(f64::INFINITY));
        assert!(!log_on_path(f64::MIN_POSITIVE / 2.0) && !log_on_path(f64::NAN));
    }

    #[test]
    fn cos_main_is_libm_on_its_path() {
        let mut r = ChaCha8Rng::seed_from_u64(2);
        let mut xs: Vec<f64> = (0..2_000_000)
            .map(|_| TAU * crate::rng::uniform(&mut r))
            .collect();
        // Every boundary of a quadrant or a path, and pi/2, pi, 3 pi / 2
        // and 2 pi themselves.
        xs.extend(word_edges(&[
            0x3e46_a09e,
            0x3fe9_21fb,
            0x4002_d97c,
            0x400f_6a7a,
            0x4015_fdbc,
            0x401c_463b,
            0x3ff9_21fb,
            0x4009_21fb,
            0x4012_d97c,
            0x4019_21fb,
        ]));
        for m in 1..=4 {
            xs.extend(around(f64::from(m) * std::f64::consts::FRAC_PI_2));
        }
        let mut checked = 0;
        let mut off = 0;
        for x in xs {
            if cos_on_path(x) {
                assert_eq!(cos_main(x).to_bits(), libm::cos(x).to_bits(), "cos({x:e})");
                checked += 1;
            } else {
                off += 1;
            }
        }
        assert!(checked > 2_000_000 && off > 100, "{checked} {off}");
        for x in [0.0, -1.0, 1e-9, 8.0, f64::NAN] {
            assert!(!cos_on_path(x), "{x}");
        }
    }

    #[test]
    fn exp_main_is_libm_on_its_path() {
        let mut r = ChaCha8Rng::seed_from_u64(3);
        let mut xs: Vec<f64> = (0..1_000_000)
            .map(|_| 0.5 * crate::rng::normal(&mut r) - 0.125)
            .collect();
        xs.extend((0..500_000).map(|_| 1500.0 * (crate::rng::uniform(&mut r) - 0.5)));
        xs.extend((0..200_000).map(|_| f64::from_bits(r.next_u64())));
        let edges = word_edges(&[0x3e30_0000, 0x3fd6_2e42, 0x3ff0_a2b2, 0x4086_232a]);
        xs.extend(edges.iter().flat_map(|&x| [x, -x]));
        let ln2 = std::f64::consts::LN_2;
        for m in -20..=20 {
            xs.extend(around((f64::from(m) + 0.5) * ln2));
        }
        let mut checked = 0;
        for x in xs {
            if exp_on_path(x) {
                assert_eq!(exp_main(x).to_bits(), libm::exp(x).to_bits(), "exp({x:e})");
                checked += 1;
            }
        }
        assert!(checked > 1_400_000, "{checked}");
        for x in [0.0, 1e-10, -1e-10, 709.0, -709.0, f64::NAN, f64::INFINITY] {
            assert!(!exp_on_path(x), "{x}");
        }
    }

    /// The slice function against the scalar calls, on draws and on
    /// arguments off the paths (which go to `libm`), at several spreads.
    #[test]
    fn lognormal_noise_is_the_scalar_calls() {
        let mut r = ChaCha8Rng::seed_from_u64(4);
        let n = 100_003;
        let mut u1: Vec<f64> = (0..n).map(|_| crate::rng::uniform_open0(&mut r)).collect();
        let mut u2: Vec<f64> = (0..n).map(|_| crate::rng::uniform(&mut r)).collect();
        // Off the paths: cos of 0 and of tiny arguments, pi/2, pi and
        // 3 pi / 2 (cancellation), log of 1, the smallest uniform.
        u2[..6].copy_from_slice(&[0.0, 1e-300, 0.25, 0.5, 0.75, 1.0 - SMALLEST]);
        u1[6..9].copy_from_slice(&[1.0, SMALLEST, 0.5]);
        for sd in [0.0, 1e-9, 0.1, 0.5, 3.0, 40.0] {
            let mut out = vec![f64::NAN; n];
            lognormal_noise(&u1, &u2, sd, &mut out);
            for ((&o, &a), &b) in out.iter().zip(&u1).zip(&u2) {
                let z = (-2.0 * libm::log(a)).sqrt() * libm::cos(TAU * b);
                let want = libm::exp(sd * z - sd * sd / 2.0);
                assert_eq!(o.to_bits(), want.to_bits(), "sd {sd}, u1 {a:e}, u2 {b:e}");
            }
            // The portable loop, and the AVX2 one where the CPU has it
            // (the dispatch takes AVX-512 where it can), give the same.
            let same = |x: &[f64]| x.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits());
            let mut any = vec![f64::NAN; n];
            lognormal_noise_any(&u1, &u2, sd, &mut any);
            assert!(same(&any));
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut v3 = vec![f64::NAN; n];
                // SAFETY: the CPU has AVX2 (checked just above).
                unsafe { lognormal_noise_v3(&u1, &u2, sd, &mut v3) };
                assert!(same(&v3));
            }
        }
    }
}
