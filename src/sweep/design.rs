//! Sampled experiment designs in the unit hypercube: Latin hypercube,
//! Saltelli's scheme for Sobol indices and Morris elementary-effects
//! trajectories. Every function returns points in unit coordinates (one
//! `Vec<f64>` of length `d` per point); the caller maps them to parameter
//! ranges. Designs that draw take the random stream by `&mut`, so a design is
//! a pure function of its inputs.

use rand_chacha::ChaCha8Rng;

use crate::rng::uniform;

/// Most parameters [`saltelli`] takes: matrices A and B need `2 d` dimensions
/// of the Sobol sequence and `sobol_burley` provides 256.
pub const SALTELLI_MAX_DIMENSIONS: usize = 128;

/// Most base samples [`saltelli`] takes: `sobol_burley` supports sequences of
/// at most 2^16 points.
pub const SALTELLI_MAX_SAMPLES: usize = 1 << 16;

/// A uniform index in `0..m` (`m >= 1`) from one draw.
fn index_below(rng: &mut ChaCha8Rng, m: usize) -> usize {
    debug_assert!(m >= 1);
    // `uniform < 1`, but the product can round up to `m` for large `m`.
    ((uniform(rng) * m as f64) as usize).min(m - 1)
}

/// Shuffles `v` in place (Fisher-Yates).
fn shuffle<T>(v: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..v.len()).rev() {
        let j = index_below(rng, i + 1);
        v.swap(i, j);
    }
}

/// The largest `f64` strictly below `x` (`x > 0`, finite).
fn below(x: f64) -> f64 {
    debug_assert!(x > 0.0 && x.is_finite());
    f64::from_bits(x.to_bits() - 1)
}

/// The point at offset `u` in `[0,1)` within stratum `[s/n, (s+1)/n)`.
fn in_stratum(s: usize, u: f64, n: f64) -> f64 {
    let x = (s as f64 + u) / n;
    // `s + u` can round up to `s + 1`: keep the point in its stratum.
    let upper = (s + 1) as f64 / n;
    if x < upper { x } else { below(upper) }
}

/// Latin hypercube: `n` points in `[0,1)^d`; in every dimension each of the
/// `n` strata `[i/n, (i+1)/n)` holds exactly one point, placed uniformly
/// within its stratum. The strata are paired across dimensions by
/// independent random permutations.
///
/// Draws, per dimension in order, the permutation (`n - 1` draws) and then
/// the `n` offsets within the strata.
pub fn latin_hypercube(n: usize, d: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    let mut points = vec![vec![0.0; d]; n];
    let nf = n as f64;
    let mut strata: Vec<usize> = Vec::with_capacity(n);
    for k in 0..d {
        strata.clear();
        strata.extend(0..n);
        shuffle(&mut strata, rng);
        for (point, &s) in points.iter_mut().zip(&strata) {
            point[k] = in_stratum(s, uniform(rng), nf);
        }
    }
    points
}

/// Saltelli (2010) scheme for Sobol indices from a `2 d`-dimensional
/// Owen-scrambled Sobol sequence (`sobol_burley`): the first `d` coordinates
/// of point `i` form row `A_i`, the next `d` form row `B_i`.
///
/// Returns `n (d + 2)` points in `[0,1)^d` in this order: `A_0..A_{n-1}`,
/// `B_0..B_{n-1}`, then for `j` in `0..d`: `AB^(j)_0..AB^(j)_{n-1}`, where
/// `AB^(j)` is `A` with column `j` taken from `B`. This is the layout
/// [`super::sensitivity::sobol_indices`] expects.
///
/// `seed` selects an independent scrambling of the sequence.
///
/// # Panics
///
/// If `n` is not a power of two (debug builds only), if `n` exceeds
/// [`SALTELLI_MAX_SAMPLES`] (2^16) or `d` exceeds [`SALTELLI_MAX_DIMENSIONS`]
/// (128).
pub fn saltelli(n: usize, d: usize, seed: u32) -> Vec<Vec<f64>> {
    debug_assert!(
        n.is_power_of_two(),
        "saltelli: n = {n} is not a power of two"
    );
    assert!(
        n <= SALTELLI_MAX_SAMPLES,
        "saltelli: n = {n} exceeds {SALTELLI_MAX_SAMPLES}"
    );
    assert!(
        d <= SALTELLI_MAX_DIMENSIONS,
        "saltelli: d = {d} exceeds {SALTELLI_MAX_DIMENSIONS}"
    );
    // `sample` returns an f32 in [0, 1); the conversion to f64 is exact.
    let row = |i: usize, offset: usize| -> Vec<f64> {
        (0..d)
            .map(|k| f64::from(sobol_burley::sample(i as u32, (offset + k) as u32, seed)))
            .collect()
    };
    let a: Vec<Vec<f64>> = (0..n).map(|i| row(i, 0)).collect();
    let b: Vec<Vec<f64>> = (0..n).map(|i| row(i, d)).collect();
    let mut points = Vec::with_capacity(n * (d + 2));
    points.extend(a.iter().cloned());
    points.extend(b.iter().cloned());
    for j in 0..d {
        points.extend(a.iter().zip(&b).map(|(a_i, b_i)| {
            let mut p = a_i.clone();
            p[j] = b_i[j];
            p
        }));
    }
    points
}

/// Morris step for `levels` grid levels: `levels / (2 (levels - 1))`.
pub fn morris_delta(levels: usize) -> f64 {
    assert!(levels >= 2, "morris: levels = {levels}, need at least 2");
    levels as f64 / (2 * (levels - 1)) as f64
}

/// Morris elementary-effects design: `r` trajectories of `d + 1` points each,
/// consecutive in the output (point `t (d + 1) + s` is step `s` of trajectory
/// `t`); `r (d + 1)` points in all, in `[0,1]^d`.
///
/// The grid has `levels` levels `0, 1/(levels-1), ..., 1` and the step is
/// `delta = levels / (2 (levels - 1))`. Each trajectory starts at a random
/// grid point and moves every dimension once, in a random order, by `+delta`
/// or `-delta`, whichever stays inside `[0,1]`. With an even number of levels
/// exactly one direction is possible from every level, the trajectory stays
/// on the grid, and starting levels drawn uniformly over all levels make both
/// directions equally likely (Morris 1991 with the symmetric start of
/// Campolongo et al. 2007). With an odd number the middle level admits
/// neither direction and is never a starting level, and the moved
/// coordinates fall between grid levels.
///
/// Draws, per trajectory, the `d` starting levels and then the order
/// (`d - 1` draws).
///
/// # Panics
///
/// If `levels < 2`.
pub fn morris(r: usize, d: usize, levels: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    let delta = morris_delta(levels);
    let top = (levels - 1) as f64;
    // Starting levels that admit a move: for odd `levels` the middle level
    // (k = (levels - 1) / 2) lies within delta of both ends.
    let starts: Vec<usize> = (0..levels)
        .filter(|&k| levels.is_multiple_of(2) || 2 * k + 1 != levels)
        .collect();
    let mut points = Vec::with_capacity(r * (d + 1));
    let mut order: Vec<usize> = Vec::with_capacity(d);
    for _ in 0..r {
        let base: Vec<usize> = (0..d)
            .map(|_| starts[index_below(rng, starts.len())])
            .collect();
        order.clear();
        order.extend(0..d);
        shuffle(&mut order, rng);
        let mut x: Vec<f64> = base.iter().map(|&k| k as f64 / top).collect();
        points.push(x.clone());
        for &j in &order {
            // Move up from the lower half of the grid, down from the upper half.
            let up = 2 * base[j] + 1 < levels;
            x[j] = if levels.is_multiple_of(2) {
                // delta is levels / 2 grid steps: land exactly on the grid.
                let k = if up {
                    base[j] + levels / 2
                } else {
                    base[j] - levels / 2
                };
                k as f64 / top
            } else if up {
                (x[j] + delta).min(1.0)
            } else {
                (x[j] - delta).max(0.0)
            };
            points.push(x.clone());
        }
    }
    points
}

/// The parameter that changes between points `t (d + 1) + s` and
/// `t (d + 1) + s + 1` of a [`morris`] design (`t = trajectory`, `s < d`),
/// and the signed step `after - before` of that coordinate (`+delta` or
/// `-delta`, up to rounding).
///
/// # Panics
///
/// If `s >= d` or the points are out of range.
pub fn morris_step(points: &[Vec<f64>], trajectory: usize, s: usize, d: usize) -> (usize, f64) {
    assert!(
        s < d,
        "morris_step: step {s} of a trajectory with {d} steps"
    );
    let at = trajectory * (d + 1) + s;
    let (before, after) = (&points[at], &points[at + 1]);
    debug_assert!(before.len() == d && after.len() == d);
    // Exactly one coordinate differs; take the largest change to be robust.
    let mut best = (0, 0.0_f64);
    for (j, (b, a)) in before.iter().zip(after).enumerate() {
        let step = a - b;
        if step.abs() > best.1.abs() {
            best = (j, step);
        }
    }
    debug_assert!(
        before
            .iter()
            .zip(after)
            .enumerate()
            .all(|(j, (b, a))| j == best.0 || a == b),
        "morris_step: more than one coordinate changes at point {at}"
    );
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    /// The stratum `k` with `k/n <= x < (k+1)/n` (bounds computed as in
    /// the design).
    fn stratum(x: f64, n: usize) -> usize {
        let nf = n as f64;
        let mut k = ((x * nf) as usize).min(n - 1);
        while k > 0 && x < k as f64 / nf {
            k -= 1;
        }
        while k + 1 < n && x >= (k + 1) as f64 / nf {
            k += 1;
        }
        assert!(
            k as f64 / nf <= x && x < (k + 1) as f64 / nf,
            "{x} in no stratum of {n}"
        );
        k
    }

    #[test]
    fn lhs_hits_every_stratum_once() {
        for (n, d) in [(1, 1), (2, 3), (7, 2), (10, 5), (100, 4), (1000, 3), (3, 0)] {
            let pts = latin_hypercube(n, d, &mut rng(n as u64 * 31 + d as u64));
            assert_eq!(pts.len(), n);
            for k in 0..d {
                let mut hit = vec![0usize; n];
                for p in &pts {
                    assert_eq!(p.len(), d);
                    assert!((0.0..1.0).contains(&p[k]), "{} out of [0,1)", p[k]);
                    hit[stratum(p[k], n)] += 1;
                }
                assert!(hit.iter().all(|&h| h == 1), "n={n} d={d} dim {k}: {hit:?}");
            }
        }
    }

    #[test]
    fn lhs_is_deterministic_and_seed_dependent() {
        let a = latin_hypercube(50, 4, &mut rng(1));
        assert_eq!(a, latin_hypercube(50, 4, &mut rng(1)));
        assert_ne!(a, latin_hypercube(50, 4, &mut rng(2)));
        // The strata pairing is not the identity in every dimension.
        let cols: Vec<Vec<usize>> = (0..4)
            .map(|k| a.iter().map(|p| stratum(p[k], 50)).collect())
            .collect();
        assert!(cols.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn lhs_stays_below_stratum_bound() {
        // The largest offset `uniform` returns rounds `2 + u` up to 3; the
        // point is clamped into its stratum.
        let u = 1.0 - f64::EPSILON / 2.0;
        assert_eq!(
            (2.0 + u) / 3.0,
            1.0,
            "the rounding the clamp guards against"
        );
        let x = in_stratum(2, u, 3.0);
        assert!((2.0 / 3.0..1.0).contains(&x));
        assert_eq!(below(1.0), u);
        assert_eq!(in_stratum(0, 0.0, 4.0), 0.0);
        assert_eq!(in_stratum(1, 0.5, 4.0), 0.375);
    }

    #[test]
    fn saltelli_layout() {
        for (n, d) in [
            (1, 1),
            (8, 1),
            (64, 3),
            (256, 7),
            (16, SALTELLI_MAX_DIMENSIONS),
        ] {
            let pts = saltelli(n, d, 42);
            assert_eq!(pts.len(), n * (d + 2));
            assert!(
                pts.iter()
                    .all(|p| p.len() == d && p.iter().all(|x| (0.0..1.0).contains(x)))
            );
            let (a, rest) = pts.split_at(n);
            let (b, ab) = rest.split_at(n);
            for j in 0..d {
                for i in 0..n {
                    let p = &ab[j * n + i];
                    for k in 0..d {
                        let want = if k == j { b[i][k] } else { a[i][k] };
                        assert_eq!(p[k], want, "n={n} d={d} AB^({j})_{i}[{k}]");
                    }
                }
            }
            // A and B are different matrices.
            assert_ne!(a, b);
        }
    }

    #[test]
    fn saltelli_is_deterministic_and_seeded() {
        assert_eq!(saltelli(32, 3, 7), saltelli(32, 3, 7));
        assert_ne!(saltelli(32, 3, 7), saltelli(32, 3, 8));
    }

    #[test]
    fn saltelli_columns_are_stratified() {
        // The first 2^m points of a scrambled Sobol sequence put one point in
        // each of the 2^m strata of every coordinate.
        let n = 128;
        let d = 5;
        let pts = saltelli(n, d, 3);
        for block in [&pts[..n], &pts[n..2 * n]] {
            for k in 0..d {
                let mut hit = vec![0; n];
                for p in block {
                    hit[stratum(p[k], n)] += 1;
                }
                assert!(hit.iter().all(|&h| h == 1), "dim {k}: {hit:?}");
            }
        }
    }

    fn check_morris(r: usize, d: usize, levels: usize, seed: u64) {
        let pts = morris(r, d, levels, &mut rng(seed));
        let delta = morris_delta(levels);
        assert_eq!(pts.len(), r * (d + 1));
        for p in &pts {
            assert_eq!(p.len(), d);
            assert!(
                p.iter().all(|x| (0.0..=1.0).contains(x)),
                "{p:?} out of [0,1]"
            );
            if levels.is_multiple_of(2) {
                // Even levels: every coordinate stays on the grid.
                let top = (levels - 1) as f64;
                assert!(
                    p.iter()
                        .all(|&x| (x * top - (x * top).round()).abs() < 1e-12),
                    "{p:?} off grid"
                );
            }
        }
        for t in 0..r {
            let mut moved = vec![false; d];
            for s in 0..d {
                let (j, step) = morris_step(&pts, t, s, d);
                let (before, after) = (&pts[t * (d + 1) + s], &pts[t * (d + 1) + s + 1]);
                for k in 0..d {
                    if k == j {
                        assert_eq!(after[k] - before[k], step);
                        assert!(
                            (step.abs() - delta).abs() < 1e-12,
                            "step {step}, delta {delta}"
                        );
                    } else {
                        assert_eq!(after[k], before[k]);
                    }
                }
                assert!(!moved[j], "dimension {j} moved twice in trajectory {t}");
                moved[j] = true;
            }
            assert!(moved.iter().all(|&m| m));
        }
    }

    #[test]
    fn morris_trajectories_move_one_coordinate_by_delta() {
        for (r, d, levels) in [
            (10, 4, 4),
            (5, 1, 2),
            (20, 6, 6),
            (8, 3, 3),
            (8, 5, 5),
            (3, 2, 10),
        ] {
            check_morris(r, d, levels, (r * 100 + d * 10 + levels) as u64);
        }
        assert_eq!(morris_delta(4), 2.0 / 3.0);
        assert_eq!(morris_delta(2), 1.0);
    }

    #[test]
    fn morris_uses_both_directions_and_random_orders() {
        let (r, d) = (200, 3);
        let pts = morris(r, d, 4, &mut rng(9));
        let steps: Vec<(usize, f64)> = (0..r)
            .flat_map(|t| (0..d).map(move |s| (t, s)))
            .map(|(t, s)| morris_step(&pts, t, s, d))
            .collect();
        let up = steps.iter().filter(|(_, s)| *s > 0.0).count();
        assert!(up > 200 && up < 400, "{up} of 600 steps go up");
        let first: Vec<usize> = (0..r).map(|t| steps[t * d].0).collect();
        assert!(
            (0..d).all(|j| first.contains(&j)),
            "every dimension sometimes moves first"
        );
        assert_eq!(pts, morris(r, d, 4, &mut rng(9)));
        assert_ne!(pts, morris(r, d, 4, &mut rng(10)));
    }

    #[test]
    fn designs_with_no_points_or_dimensions() {
        assert!(latin_hypercube(0, 3, &mut rng(0)).is_empty());
        assert!(morris(0, 3, 4, &mut rng(0)).is_empty());
        let m = morris(3, 0, 4, &mut rng(0));
        assert_eq!(m, vec![Vec::<f64>::new(); 3]);
        assert_eq!(saltelli(4, 0, 0), vec![Vec::<f64>::new(); 8]);
    }
}
