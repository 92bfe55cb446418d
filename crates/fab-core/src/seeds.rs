//! Results of several seeds as fab-jax reports them: the mean of every metric over the seeds and
//! its standard error (sample standard deviation / √n), so a table can say "0.0027 ± 0.0005".

use std::collections::BTreeMap;

/// Mean and standard error of `values` (standard error NaN for fewer than two values).
pub fn mean_and_standard_error(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Per metric, the mean and standard error over `runs` (one map of metric → value per seed).
/// Only metrics that every run reports as a finite number are kept.
pub fn over_seeds(runs: &[BTreeMap<String, f64>]) -> BTreeMap<String, (f64, f64)> {
    let Some(first) = runs.first() else {
        return BTreeMap::new();
    };
    first
        .keys()
        .filter_map(|key| {
            let values: Option<Vec<f64>> = runs
                .iter()
                .map(|r| r.get(key).copied().filter(|v| v.is_finite()))
                .collect();
            values.map(|v| (key.clone(), mean_and_standard_error(&v)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_error_is_the_sample_deviation_over_root_n() {
        let (m, se) = mean_and_standard_error(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        // Sample variance 5/3, n = 4.
        assert!((se - (5.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-15);
        assert!(mean_and_standard_error(&[7.0]).1.is_nan());
    }

    #[test]
    fn only_metrics_every_seed_reports_are_summarised() {
        let run = |a: f64, b: Option<f64>| {
            let mut m = BTreeMap::from([("a".to_string(), a)]);
            if let Some(b) = b {
                m.insert("b".into(), b);
            }
            m
        };
        let s = over_seeds(&[
            run(1.0, Some(2.0)),
            run(3.0, None),
            run(5.0, Some(f64::NAN)),
        ]);
        assert_eq!(s.len(), 1);
        assert_eq!(s["a"].0, 3.0);
        assert!((s["a"].1 - (4.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert!(over_seeds(&[]).is_empty());
    }
}
