//! Random variates that give the same bits on every machine: Poisson
//! counts, log-normal, gamma and beta draws.
//!
//! Why not `rand_distr`: its samplers reach the C library's `exp`, `log`,
//! `tan` and `lgamma` (through `num-traits`, whose `std` feature ndarray,
//! statrs and plotters turn on), and those differ in the last bit between
//! C libraries, and between the FMA and non-FMA code paths of one glibc.
//! One flipped bit in a birth count or a synthetic country's GDP changes a
//! run's every later figure. The functions here do their arithmetic in a
//! fixed order and take every elementary function from the `libm` crate
//! (musl's algorithms in Rust: the same bits on every platform), so a
//! scenario and seed give the same outputs on any machine.
//!
//! The algorithms are the standard exact ones (no approximation of the
//! distribution): Poisson by inversion below a rate of 10 and by
//! Hörmann's transformed rejection (PTRS) from there; gamma by Marsaglia
//! and Tsang's squeeze, boosted below shape 1 and kept in logarithms so
//! that tiny shapes do not underflow; beta as `X / (X + Y)` of two gammas.
//! Each draws a variable number of words from its stream; every caller
//! owns a stream keyed for its purpose (`rng::stream`), so that is still a
//! fixed function of the seed.

use rand_chacha::ChaCha8Rng;

use crate::rng::{normal, uniform, uniform_open0};

/// Rates from which [`poisson`] uses transformed rejection rather than
/// inversion (Hörmann's algorithm holds from 10).
const PTRS_FROM: f64 = 10.0;

/// A Poisson(`rate`) count. `rate` must be finite and non-negative: a
/// rate of 0 gives 0 and draws nothing, and so, in release builds, does a
/// NaN or infinite one (which validated scenarios cannot make: the build
/// refuses GDP x R&D that overflows), rather than loop for ever.
///
/// Below a rate of 10, inversion by sequential search from 0 with one
/// uniform; from there, W. Hörmann, "The transformed rejection method for
/// generating Poisson random variables", Insurance: Mathematics and
/// Economics 12 (1993), algorithm PTRS (two uniforms a try; most draws
/// take one).
pub fn poisson(rng: &mut ChaCha8Rng, rate: f64) -> u64 {
    debug_assert!(rate.is_finite() && rate >= 0.0, "Poisson rate {rate}");
    if !(rate > 0.0 && rate.is_finite()) {
        return 0;
    }
    if rate < PTRS_FROM {
        // The smallest k with u < P(X <= k). The cumulative sum stops
        // growing once the terms fall below its last bit (u within about
        // 1e-16 of 1): that k is as far as the sum can tell.
        let u = uniform(rng);
        let mut p = libm::exp(-rate);
        let mut cdf = p;
        let mut k = 0u64;
        while u >= cdf {
            k += 1;
            p *= rate / k as f64;
            let next = cdf + p;
            if next == cdf {
                break;
            }
            cdf = next;
        }
        return k;
    }
    let sqrt_rate = rate.sqrt();
    let ln_rate = libm::log(rate);
    let b = 0.931 + 2.53 * sqrt_rate;
    let a = -0.059 + 0.02483 * b;
    let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    let v_r = 0.9277 - 3.6224 / (b - 2.0);
    loop {
        let u = uniform(rng) - 0.5;
        let v = uniform(rng);
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + rate + 0.43).floor();
        if us >= 0.07 && v <= v_r {
            return k as u64;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        let lhs = libm::log(v) + libm::log(inv_alpha) - libm::log(a / (us * us) + b);
        let rhs = -rate + k * ln_rate - libm::lgamma(k + 1.0);
        if lhs <= rhs {
            return k as u64;
        }
    }
}

/// A log-normal draw: `exp(mu + sigma * Z)`, Z from [`normal`] (two
/// words).
pub fn lognormal(rng: &mut ChaCha8Rng, mu: f64, sigma: f64) -> f64 {
    libm::exp(mu + sigma * normal(rng))
}

/// The natural logarithm of a Gamma(`shape`, 1) draw, `shape > 0` and
/// finite. G. Marsaglia and W. W. Tsang, "A simple method for generating
/// gamma variables", ACM TOMS 26 (2000): for shape >= 1 directly; below,
/// G(a) = G(a + 1) * U^(1/a), which in logarithms cannot underflow however
/// small a is (a draw of G(1e-3) is below 1e-300 about half the time).
pub fn ln_gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
    debug_assert!(shape > 0.0 && shape.is_finite(), "gamma shape {shape}");
    if shape < 1.0 {
        let boosted = ln_gamma(rng, shape + 1.0);
        return boosted + libm::log(uniform_open0(rng)) / shape;
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = uniform_open0(rng);
        let x2 = x * x;
        if u < 1.0 - 0.0331 * (x2 * x2) || libm::log(u) < 0.5 * x2 + d * (1.0 - v + libm::log(v)) {
            return libm::log(d * v);
        }
    }
}

/// A Beta(`a`, `b`) draw, both shapes positive and finite: X / (X + Y)
/// for X ~ Gamma(a), Y ~ Gamma(b), computed as 1 / (1 + e^(ln Y - ln X))
/// so that shapes far below 1, whose gamma draws underflow, still give a
/// value in [0, 1] (near 0 or 1, as the distribution puts them).
///
/// Shapes below about 1e-308 can make both logarithms -inf; the draw is
/// then 1 with probability a / (a + b), else 0 (the law's limit there:
/// all its mass within far less than the smallest double of 0 or 1).
pub fn beta(rng: &mut ChaCha8Rng, a: f64, b: f64) -> f64 {
    let ln_x = ln_gamma(rng, a);
    let ln_y = ln_gamma(rng, b);
    if ln_x == f64::NEG_INFINITY && ln_y == f64::NEG_INFINITY {
        return if uniform(rng) < a / (a + b) { 1.0 } else { 0.0 };
    }
    1.0 / (1.0 + libm::exp(ln_y - ln_x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Purpose, stream};
    use statrs::distribution::{ContinuousCDF, DiscreteCDF};

    fn rng(step: u32) -> ChaCha8Rng {
        stream(11, 0, Purpose::Design, step, 0)
    }

    /// Pearson's chi-square of `counts` (by value, the last cell taking
    /// every larger value) against `cdf`, with cells merged from the top
    /// until each expects at least 5; returns the p-value.
    fn chi_square_p(counts: &[u64], n: u64, cdf: impl Fn(u64) -> f64) -> f64 {
        let mut cells: Vec<(f64, f64)> = Vec::new();
        let mut below = 0.0;
        for (k, &c) in counts.iter().enumerate() {
            let last = k + 1 == counts.len();
            let upto = if last { 1.0 } else { cdf(k as u64) };
            cells.push((c as f64, (upto - below) * n as f64));
            below = upto;
        }
        // Merge small cells into their neighbours (from both ends).
        let mut merged: Vec<(f64, f64)> = Vec::new();
        for cell in cells {
            match merged.last_mut() {
                Some(last) if last.1 < 5.0 => {
                    last.0 += cell.0;
                    last.1 += cell.1;
                }
                _ => merged.push(cell),
            }
        }
        while merged.len() > 1 && merged.last().expect("cells").1 < 5.0 {
            let (o, e) = merged.pop().expect("cells");
            let last = merged.last_mut().expect("cells");
            last.0 += o;
            last.1 += e;
        }
        let stat: f64 = merged.iter().map(|(o, e)| (o - e) * (o - e) / e).sum();
        let df = (merged.len() - 1) as f64;
        1.0 - statrs::distribution::ChiSquared::new(df)
            .expect("df > 0")
            .cdf(stat)
    }

    /// The Kolmogorov-Smirnov distance of the sorted sample `x` from `cdf`,
    /// and its critical value at the 1e-4 level (Dvoretzky-Kiefer-Wolfowitz-
    /// Massart: sqrt(-ln(1e-4 / 2) / (2n))).
    fn ks(x: &[f64], cdf: impl Fn(f64) -> f64) -> (f64, f64) {
        let n = x.len() as f64;
        let d = x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let f = cdf(v);
                (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
            })
            .fold(0.0, f64::max);
        (d, (-libm::log(0.5e-4) / (2.0 * n)).sqrt())
    }

    /// Gamma draws (e to the [`ln_gamma`]) against the gamma law over
    /// 100,000 draws each, below the boost at shape 1, at it and above: a
    /// factor common to every draw, which cancels in the beta draws, shows
    /// here.
    #[test]
    fn gamma_draws_follow_the_law() {
        for (step, shape) in [0.3, 1.0, 4.5, 50.0].into_iter().enumerate() {
            let mut r = rng(300 + step as u32);
            let mut x: Vec<f64> = (0..100_000)
                .map(|_| libm::exp(ln_gamma(&mut r, shape)))
                .collect();
            x.sort_by(f64::total_cmp);
            let law = statrs::distribution::Gamma::new(shape, 1.0).expect("shape");
            let (d, crit) = ks(&x, |v| law.cdf(v));
            assert!(d < crit, "Gamma({shape}): KS distance {d} >= {crit}");
        }
    }

    /// Counts match the Poisson law on both sides of the switch from
    /// inversion to rejection, and at the small and large rates births
    /// see (chi-square over 200,000 draws each; with a fixed stream the
    /// p-values are fixed). Checked: exp(-1.02 rate) for exp(-rate) in the
    /// inversion, or lgamma(k + 1.02) in PTRS's acceptance, drives a p-value
    /// to 0; a constant of PTRS's quick acceptance a little off may not show.
    #[test]
    fn poisson_counts_follow_the_law() {
        for (step, rate) in [0.05, 1.0, 4.5, 9.99, 10.0, 37.2, 1500.0]
            .into_iter()
            .enumerate()
        {
            let mut r = rng(step as u32);
            let n = 200_000u64;
            let law = statrs::distribution::Poisson::new(rate).expect("rate");
            let top = (rate + 8.0 * rate.sqrt() + 10.0) as usize;
            let mut counts = vec![0u64; top + 1];
            let mut sum = 0u64;
            for _ in 0..n {
                let k = poisson(&mut r, rate);
                sum += k;
                counts[(k as usize).min(top)] += 1;
            }
            let p = chi_square_p(&counts, n, |k| law.cdf(k));
            assert!(p > 1e-4, "rate {rate}: chi-square p = {p}");
            let mean = sum as f64 / n as f64;
            let se = (rate / n as f64).sqrt();
            assert!((mean - rate).abs() < 5.0 * se, "rate {rate}: mean {mean}");
        }
        assert_eq!(poisson(&mut rng(0), 0.0), 0);
    }

    /// Beta draws against the beta law (Kolmogorov-Smirnov over 100,000
    /// draws). Shapes far below 1 put much of the mass within 1e-16 of 0
    /// or 1, which f64 cannot tell from 0 or 1 (Beta(0.01, 0.02): some 16%
    /// round to 1), so there the share below a few points is checked
    /// instead, each within 5 binomial standard errors.
    #[test]
    fn beta_draws_follow_the_law() {
        let n = 100_000;
        for (step, (a, b)) in [
            (2.0, 5.0),
            (0.5, 0.5),
            (1.0, 1.0),
            (30.0, 0.7),
            (0.01, 0.02),
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = rng(100 + step as u32);
            let mut x: Vec<f64> = (0..n).map(|_| beta(&mut r, a, b)).collect();
            assert!(
                x.iter().all(|v| (0.0..=1.0).contains(v)),
                "Beta({a}, {b}) out of [0, 1]"
            );
            x.sort_by(f64::total_cmp);
            let law = statrs::distribution::Beta::new(a, b).expect("shapes");
            if a >= 0.5 && b >= 0.5 {
                let (d, crit) = ks(&x, |v| law.cdf(v));
                assert!(d < crit, "Beta({a}, {b}): KS distance {d} >= {crit}");
            } else {
                for point in [1e-12, 1e-3, 0.5, 1.0 - 1e-3, 1.0 - 1e-12] {
                    let p = law.cdf(point);
                    let share = x.partition_point(|&v| v < point) as f64 / n as f64;
                    let se = (p * (1.0 - p) / n as f64).sqrt();
                    assert!(
                        (share - p).abs() < 5.0 * se,
                        "Beta({a}, {b}): {share} below {point}, law {p}"
                    );
                }
            }
        }
    }

    /// Shapes so small that both gammas' logarithms are -inf: 0 or 1,
    /// 1 with probability a / (a + b) (here 1/3, within 5 standard errors
    /// over 30,000 draws), never NaN.
    #[test]
    fn beta_draws_at_subnormal_shapes_are_0_or_1() {
        let mut r = rng(150);
        let (a, b) = (5e-324, 1e-323);
        let n = 30_000;
        let ones = (0..n)
            .map(|_| beta(&mut r, a, b))
            .inspect(|x| assert!(*x == 0.0 || *x == 1.0, "Beta({a}, {b}) gave {x}"))
            .filter(|&x| x == 1.0)
            .count();
        let share = ones as f64 / n as f64;
        let se = (2.0f64 / 9.0 / n as f64).sqrt();
        assert!((share - 1.0 / 3.0).abs() < 5.0 * se, "{share} ones");
    }

    /// Log-normal draws: the log's mean and standard deviation are mu and
    /// sigma, and sigma 0 gives exp(mu) exactly.
    #[test]
    fn lognormal_draws_have_the_log_moments() {
        let mut r = rng(200);
        let n = 100_000;
        let logs: Vec<f64> = (0..n)
            .map(|_| libm::log(lognormal(&mut r, 1.5, 0.8)))
            .collect();
        let mean = logs.iter().sum::<f64>() / n as f64;
        let sd =
            (logs.iter().map(|l| (l - mean) * (l - mean)).sum::<f64>() / (n - 1) as f64).sqrt();
        assert!(
            (mean - 1.5).abs() < 5.0 * 0.8 / (n as f64).sqrt(),
            "mean {mean}"
        );
        assert!((sd - 0.8).abs() < 0.01, "sd {sd}");
        assert_eq!(lognormal(&mut r, 0.3, 0.0), libm::exp(0.3));
    }
}
