//! Summary statistics over replications: mean, standard deviation and the
//! 95% t-interval (MODEL.md section 7).

use serde::Serialize;

/// Mean and 95% confidence interval of a sample (NaN values left out).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub mean: f64,
    /// The sample standard deviation; `None` below two values (one value
    /// says nothing about the spread: it is not 0).
    pub sd: Option<f64>,
    pub n: usize,
    /// Lower and upper bound of the 95% t-interval; `None` below two values.
    pub ci95: Option<(f64, f64)>,
}

impl Estimate {
    /// `None` when every value is NaN (the figure is undefined everywhere).
    pub fn of(values: &[f64]) -> Option<Estimate> {
        let v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        let n = v.len();
        if n == 0 {
            return None;
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return Some(Estimate {
                mean,
                sd: None,
                n,
                ci95: None,
            });
        }
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
        let sd = var.sqrt();
        let half = t_quantile_975(n - 1) * sd / (n as f64).sqrt();
        Some(Estimate {
            mean,
            sd: Some(sd),
            n,
            ci95: Some((mean - half, mean + half)),
        })
    }

    pub fn half_width(&self) -> Option<f64> {
        self.ci95.map(|(lo, hi)| (hi - lo) / 2.0)
    }
}

/// The 0.975 quantile of Student's t with `df` (at least 1) degrees of
/// freedom: the t with P(|T| <= t) = 0.95.
///
/// For whole degrees of freedom that probability is a finite sum in
/// theta = atan(t / sqrt(df)) (Abramowitz and Stegun 26.7.3 and 26.7.4):
/// with s = sin theta, c = cos theta, for odd df
/// (2 / pi) (theta + s (c + 2/3 c^3 + (2 4)/(3 5) c^5 + ... up to c^(df-2))),
/// for even df s (1 + 1/2 c^2 + (1 3)/(2 4) c^4 + ... up to c^(df-2)).
/// It rises with theta, so theta is found by bisection until the interval
/// cannot be halved, and t = sqrt(df) tan theta. Every operation is
/// arithmetic in a fixed order or a `libm` function, so the interval
/// bounds are the same bits on every machine (statrs's quantile, used
/// before, calls the platform's C library).
pub fn t_quantile_975(df: usize) -> f64 {
    assert!(df >= 1, "Student's t needs at least one degree of freedom");
    let central = |theta: f64| -> f64 {
        let (s, c) = (libm::sin(theta), libm::cos(theta));
        let c2 = c * c;
        if df % 2 == 1 {
            // Terms c^(2j+1) * prod_{m<=j} 2m / (2m + 1), j = 0..=(df-3)/2.
            let (mut term, mut sum) = (c, 0.0);
            for j in 0..(df - 1) / 2 {
                if j > 0 {
                    term *= c2 * (2 * j) as f64 / (2 * j + 1) as f64;
                }
                sum += term;
            }
            2.0 / std::f64::consts::PI * (theta + s * sum)
        } else {
            // Terms c^(2j) * prod_{m<=j} (2m - 1) / 2m, j = 0..=(df-2)/2.
            let (mut term, mut sum) = (1.0, 0.0);
            for j in 0..df / 2 {
                if j > 0 {
                    term *= c2 * (2 * j - 1) as f64 / (2 * j) as f64;
                }
                sum += term;
            }
            s * sum
        }
    };
    let (mut lo, mut hi) = (0.0, std::f64::consts::FRAC_PI_2);
    loop {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if central(mid) < 0.95 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (df as f64).sqrt() * libm::tan(0.5 * (lo + hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        assert!((t_quantile_975(1) - 12.706).abs() < 1e-3);
        assert!((t_quantile_975(9) - 2.262).abs() < 1e-3);
        assert!((t_quantile_975(1000) - 1.962).abs() < 1e-3);
        // Closed forms: df 1 is the Cauchy, tan(0.475 pi); df 2 is
        // 2 (p - 1/2) sqrt(2 / (4 p (1 - p))) at p = 0.975.
        let cauchy = libm::tan(0.475 * std::f64::consts::PI);
        assert!((t_quantile_975(1) - cauchy).abs() < 1e-13 * cauchy);
        let two = 0.95 * (2.0f64 / (4.0 * 0.975 * 0.025)).sqrt();
        assert!(
            (t_quantile_975(2) - two).abs() < 1e-14 * two,
            "{}",
            t_quantile_975(2)
        );
    }

    /// Against statrs's quantile (an independent algorithm: its inverse of
    /// the regularised incomplete beta function) over the replication
    /// counts a study uses and beyond.
    #[test]
    fn t_quantiles_agree_with_statrs() {
        use statrs::distribution::{ContinuousCDF, StudentsT};
        for df in (1..=300).chain([499, 500, 1000, 4999]) {
            let ours = t_quantile_975(df);
            let theirs = StudentsT::new(0.0, 1.0, df as f64)
                .expect("df >= 1")
                .inverse_cdf(0.975);
            assert!(
                (ours - theirs).abs() < 1e-11 * theirs,
                "df {df}: {ours} vs {theirs}"
            );
        }
    }

    #[test]
    fn estimate_of_a_sample() {
        let e = Estimate::of(&[1.0, 2.0, 3.0, f64::NAN]).unwrap();
        assert_eq!(e.n, 3);
        assert!((e.mean - 2.0).abs() < 1e-15);
        assert!((e.sd.unwrap() - 1.0).abs() < 1e-15);
        let half = e.half_width().unwrap();
        assert!((half - 4.3027 / 3f64.sqrt()).abs() < 1e-3);
        assert!(Estimate::of(&[f64::NAN]).is_none());
        let one = Estimate::of(&[5.0]).unwrap();
        assert_eq!((one.mean, one.sd, one.ci95), (5.0, None, None));
    }
}
