//! Summary statistics over replications: mean, standard deviation and the
//! 95% t-interval (MODEL.md section 7).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

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
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
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

/// The 0.975 quantile of Student's t with `df` degrees of freedom.
pub fn t_quantile_975(df: usize) -> f64 {
    StudentsT::new(0.0, 1.0, df as f64)
        .expect("df >= 1 is a valid Student's t")
        .inverse_cdf(0.975)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        assert!((t_quantile_975(1) - 12.706).abs() < 1e-3);
        assert!((t_quantile_975(9) - 2.262).abs() < 1e-3);
        assert!((t_quantile_975(1000) - 1.962).abs() < 1e-3);
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
