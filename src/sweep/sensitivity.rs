//! Global sensitivity indices from sweep outputs: Sobol first-order and total
//! indices (with bootstrap intervals) from a [`super::design::saltelli`]
//! design, and Morris elementary-effect statistics from a
//! [`super::design::morris`] design. Pure functions of the outputs; the
//! bootstrap draws from the stream passed in.

use rand_chacha::ChaCha8Rng;

use super::design::morris_step;
use crate::rng::uniform;

/// First-order and total Sobol indices with bootstrap 95% percentile intervals.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SobolIndex {
    /// First-order index S_j (Saltelli et al. 2010).
    pub first: f64,
    /// Bootstrap 2.5% and 97.5% percentiles of `first`.
    pub first_ci: (f64, f64),
    /// Total index ST_j (Jansen 1999).
    pub total: f64,
    /// Bootstrap 2.5% and 97.5% percentiles of `total`.
    pub total_ci: (f64, f64),
}

/// Morris statistics of one parameter over the trajectories.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MorrisIndex {
    /// Mean elementary effect.
    pub mu: f64,
    /// Mean absolute elementary effect (Campolongo et al. 2007).
    pub mu_star: f64,
    /// Standard deviation of the elementary effects (`n - 1` denominator;
    /// 0 with fewer than two effects).
    pub sigma: f64,
}

/// Bootstrap 95% percentile intervals of the Morris statistics `mu_star`
/// and `sigma` of one parameter.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MorrisInterval {
    pub mu_star_ci: (f64, f64),
    pub sigma_ci: (f64, f64),
}

/// The outputs of a Saltelli design, viewed by block.
struct Blocks<'a> {
    y: &'a [f64],
    n: usize,
}

impl Blocks<'_> {
    fn a(&self, i: usize) -> f64 {
        self.y[i]
    }
    fn b(&self, i: usize) -> f64 {
        self.y[self.n + i]
    }
    fn ab(&self, j: usize, i: usize) -> f64 {
        self.y[(j + 2) * self.n + i]
    }

    /// First-order and total indices over base rows `rows` (with repeats
    /// for a bootstrap resample), written to `first` and `total`. Returns
    /// false, and zeros, when the outputs over those rows have no variance.
    ///
    /// The outputs are centred on the mean of the `f_A` and `f_B` values
    /// first: this leaves V and the Jansen total index unchanged and the
    /// first-order estimator unbiased, but makes it invariant to a shift of
    /// the output and much less noisy when the mean is large against the
    /// spread.
    fn estimate(&self, rows: &[usize], first: &mut [f64], total: &mut [f64]) -> bool {
        let m = rows.len() as f64;
        let mean = rows.iter().map(|&i| self.a(i) + self.b(i)).sum::<f64>() / (2.0 * m);
        let var = rows
            .iter()
            .map(|&i| {
                let (da, db) = (self.a(i) - mean, self.b(i) - mean);
                da * da + db * db
            })
            .sum::<f64>()
            / (2.0 * m);
        if var == 0.0 || !var.is_finite() {
            first.fill(0.0);
            total.fill(0.0);
            return false;
        }
        for (j, (s, st)) in first.iter_mut().zip(total.iter_mut()).enumerate() {
            let (mut num_first, mut num_total) = (0.0, 0.0);
            for &i in rows {
                let (fa, fb, fab) = (self.a(i), self.b(i), self.ab(j, i));
                num_first += (fb - mean) * (fab - fa);
                num_total += (fa - fab) * (fa - fab);
            }
            *s = num_first / m / var;
            *st = num_total / m / (2.0 * var);
        }
        true
    }
}

/// The `p`-quantile (`0 <= p <= 1`) of sorted `x` with linear
/// interpolation between order statistics (Hyndman-Fan type 7, the default
/// of R and NumPy). `x` must be non-empty.
fn quantile_sorted(x: &[f64], p: f64) -> f64 {
    debug_assert!(!x.is_empty() && (0.0..=1.0).contains(&p));
    let h = (x.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(x.len() - 1);
    x[lo] + (h - lo as f64) * (x[hi] - x[lo])
}

/// The 2.5% and 97.5% percentiles of `x` (sorted in place).
fn interval95(x: &mut [f64]) -> (f64, f64) {
    x.sort_by(f64::total_cmp);
    (quantile_sorted(x, 0.025), quantile_sorted(x, 0.975))
}

/// First-order and total Sobol indices of each of the `d` parameters with
/// bootstrap 95% percentile intervals.
///
/// `y` holds the model outputs in the order of
/// [`super::design::saltelli`]`(n, d, _)`: `f_A` (n values), `f_B` (n),
/// then `f_AB^(j)` (n each) for `j` in `0..d`. With V the variance
/// (denominator `2n`) of the `2n` values of `f_A` and `f_B` together:
///
/// * first order (Saltelli et al. 2010): `S_j = mean(f_B (f_ABj - f_A)) / V`,
///   with the outputs centred on their mean (see below);
/// * total (Jansen 1999): `ST_j = mean((f_A - f_ABj)^2) / (2 V)`.
///
/// Centring on the mean of `f_A` and `f_B` leaves V and `ST_j` unchanged and
/// the first-order estimator unbiased, and makes it invariant to a shift of
/// the output (without it the estimator's error grows with the output's
/// mean).
///
/// The intervals come from `resamples` bootstrap resamplings of the `n` base
/// rows with replacement (row `i` keeps `A_i`, `B_i` and every `AB^(j)_i`
/// together; V is recomputed per resample; a resample with no variance
/// counts as zeros), as the 2.5% and 97.5% percentiles with linear
/// interpolation. Each resample draws `n` values from `rng`. With
/// `resamples == 0` the intervals are `(NaN, NaN)`. If V is 0 (constant
/// output) every index is 0 with the interval `(0, 0)` and nothing is drawn.
///
/// The indices are estimates: with few samples they can fall below 0 or
/// above 1, and `first` can exceed `total`.
///
/// # Panics
///
/// If `y.len() != n (d + 2)` or `n == 0` while `d > 0`.
pub fn sobol_indices(
    y: &[f64],
    n: usize,
    d: usize,
    resamples: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<SobolIndex> {
    assert_eq!(
        y.len(),
        n * (d + 2),
        "sobol_indices: {} outputs for n = {n}, d = {d}",
        y.len()
    );
    if d == 0 {
        return Vec::new();
    }
    assert!(n > 0, "sobol_indices: no base samples");
    let blocks = Blocks { y, n };
    let mut first = vec![0.0; d];
    let mut total = vec![0.0; d];
    let all: Vec<usize> = (0..n).collect();
    if !blocks.estimate(&all, &mut first, &mut total) {
        let zero = SobolIndex {
            first: 0.0,
            first_ci: (0.0, 0.0),
            total: 0.0,
            total_ci: (0.0, 0.0),
        };
        return vec![zero; d];
    }

    // Bootstrap replicates, stored per parameter: boot_first[j][b].
    let mut boot_first = vec![Vec::with_capacity(resamples); d];
    let mut boot_total = vec![Vec::with_capacity(resamples); d];
    let mut rows = vec![0usize; n];
    let (mut bf, mut bt) = (vec![0.0; d], vec![0.0; d]);
    for _ in 0..resamples {
        for row in rows.iter_mut() {
            // `uniform < 1`, but the product can round up to `n`.
            *row = ((uniform(rng) * n as f64) as usize).min(n - 1);
        }
        blocks.estimate(&rows, &mut bf, &mut bt);
        for j in 0..d {
            boot_first[j].push(bf[j]);
            boot_total[j].push(bt[j]);
        }
    }

    (0..d)
        .map(|j| {
            let (first_ci, total_ci) = if resamples == 0 {
                ((f64::NAN, f64::NAN), (f64::NAN, f64::NAN))
            } else {
                (
                    interval95(&mut boot_first[j]),
                    interval95(&mut boot_total[j]),
                )
            };
            SobolIndex {
                first: first[j],
                first_ci,
                total: total[j],
                total_ci,
            }
        })
        .collect()
}

/// Morris statistics of each of the `d` parameters over the `r`
/// trajectories of a [`super::design::morris`] design.
///
/// `points` are the design's unit-cube points and `y` the model output at
/// each. The elementary effect of the parameter that moves between
/// consecutive points of a trajectory is `(y(after) - y(before)) / step`,
/// where `step` is the signed move in unit-cube coordinates (see
/// [`morris_step`]). Effects are thus per unit of the parameter's unit-cube
/// coordinate, comparable across parameters; divide by a parameter's range
/// `max - min` for the effect per unit of the parameter itself.
///
/// # Panics
///
/// If `points` or `y` do not hold `r (d + 1)` entries.
pub fn morris_indices(points: &[Vec<f64>], y: &[f64], r: usize, d: usize) -> Vec<MorrisIndex> {
    morris_effects(points, y, r, d)
        .iter()
        .map(|ee| morris_statistics(ee))
        .collect()
}

/// The elementary effects per parameter, `effects[j][t]` for trajectory `t`
/// (one effect per parameter per trajectory).
fn morris_effects(points: &[Vec<f64>], y: &[f64], r: usize, d: usize) -> Vec<Vec<f64>> {
    assert_eq!(
        points.len(),
        r * (d + 1),
        "morris_indices: {} points for r = {r}, d = {d}",
        points.len()
    );
    assert_eq!(
        y.len(),
        points.len(),
        "morris_indices: {} outputs for {} points",
        y.len(),
        points.len()
    );
    let mut effects: Vec<Vec<f64>> = vec![Vec::with_capacity(r); d];
    for t in 0..r {
        for s in 0..d {
            let (j, step) = morris_step(points, t, s, d);
            let at = t * (d + 1) + s;
            effects[j].push((y[at + 1] - y[at]) / step);
        }
    }
    effects
}

fn morris_statistics(ee: &[f64]) -> MorrisIndex {
    let m = ee.len() as f64;
    if ee.is_empty() {
        return MorrisIndex {
            mu: 0.0,
            mu_star: 0.0,
            sigma: 0.0,
        };
    }
    let mu = ee.iter().sum::<f64>() / m;
    let mu_star = ee.iter().map(|e| e.abs()).sum::<f64>() / m;
    let sigma = if ee.len() < 2 {
        0.0
    } else {
        (ee.iter().map(|e| (e - mu) * (e - mu)).sum::<f64>() / (m - 1.0)).sqrt()
    };
    MorrisIndex { mu, mu_star, sigma }
}

/// Bootstrap 95% percentile intervals of `mu_star` and `sigma` for each of
/// the `d` parameters (same inputs as [`morris_indices`]).
///
/// Each of the `resamples` resamples draws `r` trajectories with
/// replacement from `rng` (a trajectory keeps one elementary effect per
/// parameter, so every parameter is resampled with the same trajectories)
/// and recomputes the statistics; the intervals are the 2.5% and 97.5%
/// percentiles with linear interpolation, as for [`sobol_indices`]. With
/// `resamples == 0` the intervals are `(NaN, NaN)`. With few trajectories
/// they are rough (a percentile bootstrap of r values).
///
/// # Panics
///
/// As [`morris_indices`].
pub fn morris_intervals(
    points: &[Vec<f64>],
    y: &[f64],
    r: usize,
    d: usize,
    resamples: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<MorrisInterval> {
    let effects = morris_effects(points, y, r, d);
    let nan = (f64::NAN, f64::NAN);
    if resamples == 0 || r == 0 {
        return vec![
            MorrisInterval {
                mu_star_ci: nan,
                sigma_ci: nan,
            };
            d
        ];
    }
    let mut boot_mu_star = vec![Vec::with_capacity(resamples); d];
    let mut boot_sigma = vec![Vec::with_capacity(resamples); d];
    let mut rows = vec![0usize; r];
    let mut sample = Vec::with_capacity(r);
    for _ in 0..resamples {
        for row in rows.iter_mut() {
            *row = ((uniform(rng) * r as f64) as usize).min(r - 1);
        }
        for j in 0..d {
            sample.clear();
            sample.extend(rows.iter().map(|&t| effects[j][t]));
            let s = morris_statistics(&sample);
            boot_mu_star[j].push(s.mu_star);
            boot_sigma[j].push(s.sigma);
        }
    }
    (0..d)
        .map(|j| MorrisInterval {
            mu_star_ci: interval95(&mut boot_mu_star[j]),
            sigma_ci: interval95(&mut boot_sigma[j]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::design::{morris, saltelli};
    use rand::SeedableRng;
    use std::f64::consts::PI;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    /// Model outputs at every point of a Saltelli design.
    fn outputs(n: usize, d: usize, seed: u32, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        saltelli(n, d, seed).iter().map(|p| f(p)).collect()
    }

    fn ishigami(u: &[f64]) -> f64 {
        let (a, b) = (7.0, 0.1);
        let x: Vec<f64> = u.iter().map(|u| -PI + 2.0 * PI * u).collect();
        let (s0, s1, x2) = (libm::sin(x[0]), libm::sin(x[1]), x[2] * x[2]);
        s0 + a * (s1 * s1) + b * (x2 * x2) * s0
    }

    #[test]
    fn ishigami_analytic_values() {
        // The closed forms behind the constants of the next test.
        let (a, b) = (7.0_f64, 0.1_f64);
        let pi4 = PI * PI * PI * PI;
        let v1 = 0.5 * (1.0 + b * pi4 / 5.0) * (1.0 + b * pi4 / 5.0);
        let v2 = a * a / 8.0;
        let v13 = b * b * (pi4 * pi4) * (1.0 / 18.0 - 1.0 / 50.0);
        let v = v1 + v2 + v13;
        let close = |x: f64, y: f64| (x - y).abs() < 5e-5;
        assert!(close(v1 / v, 0.3139) && close(v2 / v, 0.4424));
        assert!(close((v1 + v13) / v, 0.5576) && close(v13 / v, 0.2437));
    }

    #[test]
    fn ishigami_sobol_indices() {
        let (n, d) = (1 << 13, 3);
        let y = outputs(n, d, 2024, ishigami);
        let idx = sobol_indices(&y, n, d, 200, &mut rng(5));
        let first = [0.3139, 0.4424, 0.0];
        let total = [0.5576, 0.4424, 0.2437];
        for j in 0..d {
            let s = idx[j];
            assert!(
                (s.first - first[j]).abs() < 0.02,
                "S{j} = {} vs {}",
                s.first,
                first[j]
            );
            assert!(
                (s.total - total[j]).abs() < 0.02,
                "ST{j} = {} vs {}",
                s.total,
                total[j]
            );
            let inside = |v: f64, (lo, hi): (f64, f64)| lo - 0.01 <= v && v <= hi + 0.01;
            assert!(
                inside(first[j], s.first_ci),
                "S{j} = {} not in {:?}",
                first[j],
                s.first_ci
            );
            assert!(
                inside(total[j], s.total_ci),
                "ST{j} = {} not in {:?}",
                total[j],
                s.total_ci
            );
            assert!(s.first_ci.0 <= s.first_ci.1 && s.total_ci.0 <= s.total_ci.1);
            assert!(s.first_ci.1 - s.first_ci.0 < 0.1 && s.total_ci.1 - s.total_ci.0 < 0.1);
        }
    }

    #[test]
    fn additive_linear_model() {
        // f = sum c_j u_j with independent uniforms: S_j = ST_j = c_j^2 / sum c^2.
        let c = [1.0, 2.0, 0.0, -3.0];
        let (n, d) = (1 << 12, c.len());
        let y = outputs(n, d, 1, |u| u.iter().zip(&c).map(|(u, c)| u * c).sum());
        let idx = sobol_indices(&y, n, d, 100, &mut rng(1));
        let norm: f64 = c.iter().map(|c| c * c).sum();
        for j in 0..d {
            let want = c[j] * c[j] / norm;
            assert!(
                (idx[j].first - want).abs() < 0.01,
                "S{j} = {} vs {want}",
                idx[j].first
            );
            assert!(
                (idx[j].total - want).abs() < 0.01,
                "ST{j} = {} vs {want}",
                idx[j].total
            );
        }
        // A parameter without effect has total index exactly 0.
        assert_eq!(idx[2].total, 0.0);
        assert_eq!(idx[2].total_ci, (0.0, 0.0));
    }

    #[test]
    fn shift_and_scale_invariance() {
        let (n, d) = (256, 3);
        let y = outputs(n, d, 9, ishigami);
        let shifted: Vec<f64> = y.iter().map(|v| 1e6 + 3.0 * v).collect();
        let a = sobol_indices(&y, n, d, 50, &mut rng(2));
        let b = sobol_indices(&shifted, n, d, 50, &mut rng(2));
        for (a, b) in a.iter().zip(&b) {
            assert!(
                (a.first - b.first).abs() < 1e-6 && (a.total - b.total).abs() < 1e-6,
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn constant_output_gives_zeros() {
        let (n, d) = (16, 2);
        let y = vec![4.5; n * (d + 2)];
        let zero = SobolIndex {
            first: 0.0,
            first_ci: (0.0, 0.0),
            total: 0.0,
            total_ci: (0.0, 0.0),
        };
        assert_eq!(sobol_indices(&y, n, d, 100, &mut rng(0)), vec![zero; d]);
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_estimate() {
        let (n, d) = (512, 3);
        let y = outputs(n, d, 4, ishigami);
        let a = sobol_indices(&y, n, d, 100, &mut rng(8));
        assert_eq!(a, sobol_indices(&y, n, d, 100, &mut rng(8)));
        assert_ne!(a, sobol_indices(&y, n, d, 100, &mut rng(9)));
        for s in &a {
            assert!(s.first_ci.0 <= s.first && s.first <= s.first_ci.1, "{s:?}");
            assert!(s.total_ci.0 <= s.total && s.total <= s.total_ci.1, "{s:?}");
        }
        // No resamples: same estimates, no interval.
        let none = sobol_indices(&y, n, d, 0, &mut rng(8));
        for (s, t) in none.iter().zip(&a) {
            assert_eq!((s.first, s.total), (t.first, t.total));
            assert!(
                s.first_ci.0.is_nan()
                    && s.first_ci.1.is_nan()
                    && s.total_ci.0.is_nan()
                    && s.total_ci.1.is_nan()
            );
        }
        assert!(sobol_indices(&[1.0; 8], 4, 0, 10, &mut rng(0)).is_empty());
    }

    #[test]
    fn percentiles_interpolate() {
        let x: Vec<f64> = (0..=100).map(f64::from).collect();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(quantile_sorted(&x, 0.025), 2.5));
        assert!(close(quantile_sorted(&x, 0.975), 97.5));
        assert_eq!(quantile_sorted(&x, 0.0), 0.0);
        assert_eq!(quantile_sorted(&x, 1.0), 100.0);
        assert_eq!(quantile_sorted(&[7.0], 0.975), 7.0);
        let mut y = vec![3.0, 1.0, 2.0];
        let (lo, hi) = interval95(&mut y);
        assert!(close(lo, 1.05) && close(hi, 2.95), "({lo}, {hi})");
        assert_eq!(y, [1.0, 2.0, 3.0]);
    }

    fn morris_model(u: &[f64]) -> f64 {
        3.0 * u[0] + 0.0 * u[1] - 2.0 * u[2] + u[3] * u[3]
    }

    #[test]
    fn morris_linear_and_quadratic_terms() {
        for (r, levels, seed) in [(20, 4, 1), (10, 6, 2), (15, 2, 3), (12, 5, 4)] {
            let d = 4;
            let pts = morris(r, d, levels, &mut rng(seed));
            let y: Vec<f64> = pts.iter().map(|p| morris_model(p)).collect();
            let idx = morris_indices(&pts, &y, r, d);
            let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
            assert!(
                close(idx[0].mu, 3.0) && close(idx[0].mu_star, 3.0) && close(idx[0].sigma, 0.0),
                "{:?}",
                idx[0]
            );
            assert_eq!(
                idx[1],
                MorrisIndex {
                    mu: 0.0,
                    mu_star: 0.0,
                    sigma: 0.0
                }
            );
            assert!(
                close(idx[2].mu, -2.0) && close(idx[2].mu_star, 2.0) && close(idx[2].sigma, 0.0),
                "{:?}",
                idx[2]
            );
            // u^2 has elementary effect 2u + step: it varies over trajectories
            // (except with 2 levels, where every step spans [0, 1]: EE = 1).
            if levels == 2 {
                assert!(
                    close(idx[3].mu_star, 1.0) && close(idx[3].sigma, 0.0),
                    "{:?}",
                    idx[3]
                );
            } else {
                assert!(idx[3].sigma > 0.1 && idx[3].mu_star > 0.0, "{:?}", idx[3]);
            }
        }
    }

    #[test]
    fn morris_intervals_bracket_and_repeat() {
        let (r, d) = (30, 4);
        let pts = morris(r, d, 4, &mut rng(11));
        // A noisy effect for parameter 3 (u^2 plus an interaction).
        let y: Vec<f64> = pts
            .iter()
            .map(|p| morris_model(p) + 5.0 * p[3] * p[0])
            .collect();
        let idx = morris_indices(&pts, &y, r, d);
        let ci = morris_intervals(&pts, &y, r, d, 300, &mut rng(3));
        assert_eq!(ci, morris_intervals(&pts, &y, r, d, 300, &mut rng(3)));
        for (s, c) in idx.iter().zip(&ci) {
            assert!(
                c.mu_star_ci.0 <= s.mu_star && s.mu_star <= c.mu_star_ci.1,
                "{s:?} {c:?}"
            );
            assert!(c.sigma_ci.0 <= c.sigma_ci.1, "{c:?}");
        }
        // A linear term without interaction has the same effect in every
        // trajectory: no spread.
        assert!((ci[2].mu_star_ci.0 - 2.0).abs() < 1e-9 && (ci[2].mu_star_ci.1 - 2.0).abs() < 1e-9);
        assert!(ci[2].sigma_ci.1.abs() < 1e-9);
        // The noisy parameter's interval has width.
        assert!(
            ci[3].mu_star_ci.1 - ci[3].mu_star_ci.0 > 0.05,
            "{:?}",
            ci[3]
        );
        // No resamples: no interval.
        let none = morris_intervals(&pts, &y, r, d, 0, &mut rng(3));
        assert!(
            none.iter()
                .all(|c| c.mu_star_ci.0.is_nan() && c.sigma_ci.1.is_nan())
        );
    }

    #[test]
    fn morris_statistics_by_hand() {
        // One parameter, three trajectories with effects 1, -3, 2.
        let pts = vec![
            vec![0.0],
            vec![1.0],
            vec![1.0],
            vec![0.0],
            vec![0.0],
            vec![1.0],
        ];
        let y = vec![0.0, 1.0, 5.0, 8.0, 2.0, 4.0];
        let idx = morris_indices(&pts, &y, 3, 1);
        assert_eq!(idx.len(), 1);
        assert_eq!(idx[0].mu, 0.0);
        assert_eq!(idx[0].mu_star, 2.0);
        assert!((idx[0].sigma - 7.0_f64.sqrt()).abs() < 1e-12);
        // One trajectory: sigma is 0.
        let one = morris_indices(&pts[..2], &y[..2], 1, 1);
        assert_eq!(
            one,
            vec![MorrisIndex {
                mu: 1.0,
                mu_star: 1.0,
                sigma: 0.0
            }]
        );
    }
}
