//! Random streams (MODEL.md section 8). Every draw comes from a ChaCha8 stream
//! keyed by (seed, replication, purpose, step, country): the key is derived
//! from (seed, replication) and the 64-bit ChaCha stream number packs
//! (purpose, step, country). No draw depends on thread count or scheduling,
//! and two variants that share a seed share every stream (common random
//! numbers).
//!
//! Streams that are read at random positions ([`Purpose::Threshold`],
//! [`Purpose::Perception`]) use a fixed number of words per draw, so the draw
//! for innovation k or partner j is found with `set_word_pos` and does not
//! depend on which other draws were made.

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream is for. The discriminant is part of the stream number, so
/// renumbering changes every result: append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// Synthetic countries, positions and graphs: drawn once from the master
    /// seed (replication 0 key), shared by every replication and variant.
    World = 1,
    /// Births of country `country` at `step`: counts, sectors, qualities,
    /// control draws u_k, co-invention draws.
    Arrival = 2,
    /// Adoption thresholds of the innovation born at `step` with index
    /// `country` among that step's births: one Exp(1) per recipient.
    Threshold = 3,
    /// Perception noise of country `country` at `step`: one N(0,1) per
    /// partner j at word 4 * j.
    Perception = 4,
    /// Control draws u_k of the initial innovations.
    Initial = 5,
    /// Sweep designs that draw (Latin hypercube, Morris trajectories).
    Design = 6,
    /// Bootstrap resampling of sensitivity indices (country slot: metric).
    Bootstrap = 7,
}

/// The 32-byte ChaCha key for (seed, replication): the two numbers laid
/// out verbatim (distinct pairs give distinct keys) plus a fixed tag.
fn key(seed: u64, replication: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&seed.to_le_bytes());
    k[8..16].copy_from_slice(&replication.to_le_bytes());
    k[16..].copy_from_slice(b"techdiff-streams");
    k
}

/// Stream number: purpose (8 bits) | step (24 bits) | country (32 bits).
fn stream_number(purpose: Purpose, step: u32, country: u32) -> u64 {
    debug_assert!(step < (1 << 24));
    ((purpose as u64) << 56) | ((u64::from(step) & 0xFF_FFFF) << 32) | u64::from(country)
}

/// The stream for (seed, replication, purpose, step, country).
pub fn stream(
    seed: u64,
    replication: u32,
    purpose: Purpose,
    step: u32,
    country: u32,
) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::from_seed(key(seed, u64::from(replication)));
    rng.set_stream(stream_number(purpose, step, country));
    rng
}

/// Move `rng` to word `pos` of its stream, as `set_word_pos` does. A short
/// step forward reads and discards the words in between instead (the same
/// position, so the same draws follow): `set_word_pos` always regenerates
/// the 256-byte block buffer, which dominates when draws are made at many
/// nearby positions.
#[inline]
pub fn seek(rng: &mut ChaCha8Rng, pos: u128) {
    /// Words one buffer holds (four 16-word ChaCha blocks).
    const BUFFER: u128 = 64;
    let now = rng.get_word_pos();
    if pos >= now && pos - now < BUFFER {
        for _ in now..pos {
            rng.next_u32();
        }
    } else {
        rng.set_word_pos(pos);
    }
}

/// A uniform draw in [0, 1) from exactly one u64 (53 bits).
#[inline]
pub fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform draw in (0, 1] from exactly one u64.
#[inline]
pub(crate) fn uniform_open0(rng: &mut ChaCha8Rng) -> f64 {
    open0(rng.next_u64())
}

/// The uniform in (0, 1] of [`uniform_open0`] from its u64.
#[inline(always)]
fn open0(u: u64) -> f64 {
    ((u >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Exp(1) by inversion from exactly one u64 (two words), for random access
/// (the logarithm from the `libm` crate: the same bits on every platform).
#[inline]
pub fn exp1(rng: &mut ChaCha8Rng) -> f64 {
    -libm::log(uniform_open0(rng))
}

/// Exp(1) by inversion in single precision from exactly one u64 (two
/// words, as [`exp1`]): the uniform of [`exp1`] rounded to f32, then minus
/// its logarithm by [`ln_f32`] (adoption thresholds, which the hazard sweep
/// keeps in f32). Within 1e-6 relative of [`exp1`]'s draw, or 6e-8
/// absolute near 0 (the uniform rounded near 1); values up to about 36.7,
/// as in f64 (the smallest uniforms keep their exponent).
#[inline]
pub fn exp1_f32(rng: &mut ChaCha8Rng) -> f32 {
    -ln_f32(uniform_open0(rng) as f32)
}

/// Fill `out` with consecutive [`exp1_f32`] draws (the same bits, and
/// the stream left where they would leave it): the stream's words read
/// in blocks, the uniforms made from them, then their logarithms in one
/// loop the compiler vectorises (eight at a time where the CPU has AVX2,
/// sixteen where it has AVX-512).
pub fn exp1_f32_fill(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::x86_avx512() {
        // SAFETY: the CPU has the AVX-512 subsets (checked just above).
        unsafe { exp1_f32_fill_v4(rng, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { exp1_f32_fill_v3(rng, out) };
        return;
    }
    exp1_f32_fill_any(rng, out);
}

/// [`exp1_f32_fill`] compiled for CPUs with AVX2: eight logarithms per
/// instruction instead of four. Basic IEEE operations only, so the same
/// bits (a test compares both with one draw at a time).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn exp1_f32_fill_v3(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    exp1_f32_fill_any(rng, out);
}

/// [`exp1_f32_fill`] compiled for CPUs with AVX-512 (F, DQ, VL, BW):
/// sixteen logarithms per instruction, and the words' conversion to
/// uniforms (DQ's vector conversion of 64-bit integers) vectorised too.
/// Basic IEEE operations only, so the same bits.
///
/// # Safety
/// The CPU must have AVX-512F, DQ, VL and BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw")]
unsafe fn exp1_f32_fill_v4(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    exp1_f32_fill_any(rng, out);
}

#[inline(always)]
fn exp1_f32_fill_any(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    // The stream's words in blocks (the same words, in the same order, as
    // one `next_u64` per draw: each u64 is two words, low first), then the
    // uniforms, then their logarithms, each in a loop of its own.
    let mut bytes = [0u8; 8 * 64];
    for chunk in out.chunks_mut(64) {
        let bytes = &mut bytes[..8 * chunk.len()];
        rng.fill_bytes(bytes);
        for (x, b) in chunk.iter_mut().zip(bytes.chunks_exact(8)) {
            *x = open0(u64::from_le_bytes(b.try_into().expect("8 bytes"))) as f32;
        }
    }
    for x in out.iter_mut() {
        *x = -ln_f32(*x);
    }
}

/// Natural logarithm of a positive normal f32 (the uniforms of
/// [`exp1_f32`] are at least 2^-53): the algorithm of FreeBSD's and musl's
/// `logf` (x = 2^k m with m in [sqrt(2)/2, sqrt(2)), ln m from
/// s = (m - 1) / (m + 1) and a degree-8 odd polynomial, k ln 2 in two
/// parts), error below one unit in the last place. Written here rather
/// than calling the C library so that the result is the same on every
/// platform and library version, and with no branch, so that loops over
/// it vectorise; basic IEEE operations only (Rust fuses none), so a
/// vector lane gives the same bits as the scalar code.
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    // ln 2 in two parts, and the polynomial's coefficients (musl's logf.c).
    const LN2_HI: f32 = f32::from_bits(0x3f31_7180); // 6.9313812256e-1
    const LN2_LO: f32 = f32::from_bits(0x3717_f7d1); // 9.0580006145e-6
    const LG1: f32 = f32::from_bits(0x3f2a_aaaa); // 0xaaaaaa.0p-24
    const LG2: f32 = f32::from_bits(0x3ecc_ce13); // 0xccce13.0p-25
    const LG3: f32 = f32::from_bits(0x3e91_e9ee); // 0x91e9ee.0p-25
    const LG4: f32 = f32::from_bits(0x3e78_9e26); // 0xf89e26.0p-26
    // Reduce x to m in [sqrt(2)/2, sqrt(2)): 0x3f3504f3 is sqrt(2)/2.
    let ix = x.to_bits().wrapping_add(0x3f80_0000 - 0x3f35_04f3);
    let k = (ix >> 23) as i32 - 0x7f;
    let m = f32::from_bits((ix & 0x007f_ffff) + 0x3f35_04f3);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * LG4);
    let t2 = z * (LG1 + w * LG3);
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let dk = k as f32;
    s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI
}

/// N(0,1) by Box-Muller from exactly two u64 (four words), for random access
/// (rand_distr's ziggurat consumes a variable number of words), with the
/// `libm` crate's `log` and `cos`, whose bits do not depend on the platform
/// (src/dist.rs).
#[inline]
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let (u1, u2) = normal_uniforms(rng);
    box_muller(u1, u2)
}

/// The Box-Muller normal of [`normal`] from its two uniforms.
#[inline]
pub(crate) fn box_muller(u1: f64, u2: f64) -> f64 {
    (-2.0 * libm::log(u1)).sqrt() * libm::cos(std::f64::consts::TAU * u2)
}

/// The two uniforms [`normal`] reads, u1 in (0, 1] and u2 in [0, 1), for
/// code that computes its normal elsewhere (in vector lanes: the same
/// bits as [`box_muller`], `crate::vmath`).
#[inline]
pub(crate) fn normal_uniforms(rng: &mut ChaCha8Rng) -> (f64, f64) {
    let u1 = uniform_open0(rng);
    (u1, uniform(rng))
}

/// Pick an index with probability proportional to `weights` (non-negative,
/// positive total) using one uniform draw.
pub fn weighted_index(weights: &[f64], total: f64, u: f64) -> usize {
    weighted_pick(weights.iter().copied().enumerate(), total, u)
}

/// [`weighted_index`] over (index, weight) pairs in ascending index, the
/// weights left out being zeros: the same pick as over the dense vector.
pub fn weighted_pick(weights: impl Iterator<Item = (usize, f64)>, total: f64, u: f64) -> usize {
    let target = u * total;
    let mut acc = 0.0;
    let mut last_positive = 0;
    for (i, w) in weights {
        if w > 0.0 {
            acc += w;
            last_positive = i;
            if target < acc {
                return i;
            }
        }
    }
    last_positive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| stream(7, 0, Purpose::Arrival, 3, 5).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let b = stream(7, 1, Purpose::Arrival, 3, 5).next_u64();
        let c = stream(7, 0, Purpose::Arrival, 4, 5).next_u64();
        let d = stream(7, 0, Purpose::Threshold, 3, 5).next_u64();
        let e = stream(8, 0, Purpose::Arrival, 3, 5).next_u64();
        assert!(a[0] != b && a[0] != c && a[0] != d && a[0] != e);
    }

    #[test]
    fn random_access_matches_sequential() {
        let mut seq = stream(1, 2, Purpose::Threshold, 9, 4);
        let draws: Vec<f64> = (0..10).map(|_| exp1(&mut seq)).collect();
        let mut ra = stream(1, 2, Purpose::Threshold, 9, 4);
        ra.set_word_pos(2 * 7);
        assert_eq!(exp1(&mut ra), draws[7]);

        let mut seq = stream(1, 2, Purpose::Perception, 9, 4);
        let draws: Vec<f64> = (0..10).map(|_| normal(&mut seq)).collect();
        let mut ra = stream(1, 2, Purpose::Perception, 9, 4);
        ra.set_word_pos(4 * 3);
        assert_eq!(normal(&mut ra), draws[3]);
    }

    /// Against f64's `ln` over the whole range of the uniforms: within
    /// one unit in the last place of the correctly rounded value.
    #[test]
    fn ln_f32_is_within_one_ulp() {
        let mut worst = 0.0f64;
        let mut check = |x: f32| {
            let exact = libm::log(f64::from(x));
            let ulp = {
                let r = exact as f32;
                (f64::from(f32::from_bits(r.abs().to_bits() + 1)) - f64::from(r.abs())).abs()
            };
            let err = (f64::from(ln_f32(x)) - exact).abs() / ulp;
            worst = worst.max(err);
            assert!(err <= 1.0, "ln({x:e}): {} vs {exact}", ln_f32(x));
        };
        // Every 97th f32 from 2^-53 to 1, then both ends and powers of 2.
        let (lo, hi) = (libm::scalbnf(1.0, -53).to_bits(), 1f32.to_bits());
        let mut b = lo;
        while b <= hi {
            check(f32::from_bits(b));
            b += 97;
        }
        for e in 0..=53 {
            check(libm::scalbnf(1.0, -e));
        }
        check(f32::from_bits(hi - 1));
        assert_eq!(ln_f32(1.0), 0.0);
        assert!(worst > 0.2, "a test that compares nothing: {worst}");
    }

    /// The vectorised fill gives the scalar draws' bits, in order, and
    /// leaves the stream where they would.
    #[test]
    fn filled_thresholds_are_the_scalar_draws() {
        let mut a = stream(6, 0, Purpose::Threshold, 1, 2);
        let mut b = stream(6, 0, Purpose::Threshold, 1, 2);
        let mut c = stream(6, 0, Purpose::Threshold, 1, 2);
        // 203 draws: whole blocks of 64 and a part of one.
        let mut filled = vec![0.0f32; 203];
        exp1_f32_fill(&mut a, &mut filled);
        let mut portable = vec![0.0f32; 203];
        exp1_f32_fill_any(&mut c, &mut portable);
        let one: Vec<f32> = (0..203).map(|_| exp1_f32(&mut b)).collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&filled), bits(&one));
        assert_eq!(bits(&portable), bits(&one));
        assert_eq!(a.get_word_pos(), b.get_word_pos());
        assert_eq!(c.get_word_pos(), b.get_word_pos());
        // Each compiled variant the CPU can run (the dispatch above takes
        // only the widest).
        #[cfg(target_arch = "x86_64")]
        {
            let mut variants: Vec<unsafe fn(&mut ChaCha8Rng, &mut [f32])> = Vec::new();
            if std::arch::is_x86_feature_detected!("avx2") {
                variants.push(exp1_f32_fill_v3);
            }
            if crate::cpu::x86_avx512() {
                variants.push(exp1_f32_fill_v4);
            }
            for fill in variants {
                let mut d = stream(6, 0, Purpose::Threshold, 1, 2);
                let mut v = vec![0.0f32; 203];
                // SAFETY: the CPU has the variant's features (checked above).
                unsafe { fill(&mut d, &mut v) };
                assert_eq!(bits(&v), bits(&one));
                assert_eq!(d.get_word_pos(), b.get_word_pos());
            }
        }
        // A stream left mid-buffer: the next fill starts where the draws
        // would.
        let mut more = vec![0.0f32; 70];
        exp1_f32_fill(&mut a, &mut more);
        let next: Vec<f32> = (0..70).map(|_| exp1_f32(&mut b)).collect();
        assert_eq!(bits(&more), bits(&next));
    }

    /// The single-precision draw reads the same word as the double one
    /// (so random access finds it the same way) and agrees with it to f32
    /// precision, the far tail included.
    #[test]
    fn single_precision_thresholds_follow_the_double_ones() {
        let mut a = stream(4, 1, Purpose::Threshold, 2, 6);
        let mut b = stream(4, 1, Purpose::Threshold, 2, 6);
        for _ in 0..20_000 {
            let (x, y) = (exp1(&mut a), exp1_f32(&mut b));
            assert_eq!(a.get_word_pos(), b.get_word_pos());
            // Near 0 the uniform's rounding to f32 (spacing 6e-8 below 1)
            // dominates; elsewhere f32's relative precision.
            assert!((f64::from(y) - x).abs() <= 6e-8 + 1e-6 * x, "{x} {y}");
        }
        // The smallest uniform keeps its exponent: the largest threshold.
        let tiny = (1.0 / (1u64 << 53) as f64) as f32;
        assert!((-ln_f32(tiny) - 36.7368).abs() < 1e-3);
    }

    #[test]
    fn seek_matches_set_word_pos_forward_and_back() {
        let reference: Vec<u32> = {
            let mut r = stream(5, 1, Purpose::Perception, 2, 3);
            (0..400).map(|_| r.next_u32()).collect()
        };
        let mut r = stream(5, 1, Purpose::Perception, 2, 3);
        // Forward within a buffer, across its end, far ahead, back, in place.
        for pos in [0u128, 4, 5, 63, 64, 70, 130, 333, 12, 12, 399] {
            seek(&mut r, pos);
            assert_eq!(r.get_word_pos(), pos);
            assert_eq!(r.next_u32(), reference[pos as usize], "word {pos}");
        }
    }

    #[test]
    fn exp_and_normal_moments() {
        let mut r = stream(3, 0, Purpose::World, 0, 0);
        let n = 200_000;
        let (mut se, mut sn, mut sn2) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            se += exp1(&mut r);
            let z = normal(&mut r);
            sn += z;
            sn2 += z * z;
        }
        let n = n as f64;
        assert!((se / n - 1.0).abs() < 0.01);
        assert!((sn / n).abs() < 0.01);
        assert!((sn2 / n - 1.0).abs() < 0.01);
    }

    #[test]
    fn weighted_index_respects_zeros() {
        let w = [0.0, 1.0, 0.0, 3.0];
        assert_eq!(weighted_index(&w, 4.0, 0.0), 1);
        assert_eq!(weighted_index(&w, 4.0, 0.24), 1);
        assert_eq!(weighted_index(&w, 4.0, 0.26), 3);
        assert_eq!(weighted_index(&w, 4.0, 0.999_999), 3);
    }
}
