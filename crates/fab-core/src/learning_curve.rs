//! Learning curves: one per-iteration training statistic (the batch ESS, the loss, …) against
//! training wall time, smoothed over windows of iterations.
//!
//! The batch ESS logged each iteration comes from a few hundred samples and scatters widely, so
//! two runs are compared by means over windows of iterations, and "at equal wall time" means the
//! window that ends with the last iteration finished by that time. This is how variants of a
//! profile (flow size, AIS steps, learning rate) are ranked by what a CPU-hour buys.

use crate::error::{FabError, Result};

/// A per-iteration statistic with the training wall time at which each iteration finished.
#[derive(Debug, Clone, PartialEq)]
pub struct LearningCurve {
    /// The iteration number of each row (1, 2, … unless logged every few iterations).
    iterations: Vec<u64>,
    wall_seconds: Vec<f64>,
    values: Vec<f64>,
}

/// The smoothed value of a curve at one wall time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    /// Iterations finished by then (the iteration number of the window's last row).
    pub iterations: usize,
    /// Wall time (s) at which the window's last iteration finished.
    pub wall_seconds: f64,
    /// Mean of the finite values in the window (NaN when none is finite).
    pub mean: f64,
}

impl LearningCurve {
    /// Pairs each iteration's wall time (s, non-decreasing, as training logs it) with its value.
    pub fn new(wall_seconds: Vec<f64>, values: Vec<f64>) -> Result<Self> {
        if wall_seconds.len() != values.len() {
            return Err(FabError::invalid(
                "learning curve",
                format!(
                    "{} wall times but {} values",
                    wall_seconds.len(),
                    values.len()
                ),
            ));
        }
        if let Some(i) = wall_seconds.iter().position(|t| !t.is_finite()) {
            return Err(FabError::invalid(
                "wall_seconds",
                format!("must be finite (row {} has {})", i + 1, wall_seconds[i]),
            ));
        }
        if let Some(i) = wall_seconds.windows(2).position(|w| w[0] > w[1]) {
            return Err(FabError::invalid(
                "wall_seconds",
                format!(
                    "must be non-decreasing (row {} has {}, row {} has {})",
                    i + 1,
                    wall_seconds[i],
                    i + 2,
                    wall_seconds[i + 1]
                ),
            ));
        }
        Ok(Self {
            iterations: (1..=values.len() as u64).collect(),
            wall_seconds,
            values,
        })
    }

    /// Gives each row its iteration number, for logs written every few iterations
    /// (`output.log_every`): windows and "iterations finished" then count iterations, not rows.
    /// The numbers must increase.
    pub fn with_iterations(mut self, iterations: Vec<u64>) -> Result<Self> {
        if iterations.len() != self.values.len() {
            return Err(FabError::invalid(
                "learning curve",
                format!(
                    "{} iteration numbers but {} values",
                    iterations.len(),
                    self.values.len()
                ),
            ));
        }
        if let Some(i) = iterations.windows(2).position(|w| w[0] >= w[1]) {
            return Err(FabError::invalid(
                "iteration",
                format!(
                    "must increase (row {} has {}, row {} has {})",
                    i + 1,
                    iterations[i],
                    i + 2,
                    iterations[i + 1]
                ),
            ));
        }
        self.iterations = iterations;
        Ok(self)
    }

    /// The last logged iteration's number (0 for an empty curve).
    pub fn last_iteration(&self) -> u64 {
        self.iterations.last().copied().unwrap_or(0)
    }

    /// Number of rows logged.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no iteration was logged.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Wall time of the last logged iteration (0 for an empty curve).
    pub fn total_seconds(&self) -> f64 {
        self.wall_seconds.last().copied().unwrap_or(0.0)
    }

    /// Means over consecutive windows of `window` iterations (iterations 1..=w, w+1..=2w, …; the
    /// last may be shorter), each placed at the wall time of its last logged iteration: the
    /// smoothed curve to plot.
    pub fn window_means(&self, window: usize) -> Vec<CurvePoint> {
        let window = window.max(1) as u64;
        let mut out = Vec::new();
        let mut start = 0;
        while start < self.len() {
            let k = (self.iterations[start].max(1) - 1) / window;
            let end =
                start + self.iterations[start..].partition_point(|&i| (i.max(1) - 1) / window == k);
            out.push(self.point(start, end));
            start = end;
        }
        out
    }

    /// The mean over the last `window` iterations (fewer at the start) up to the last iteration
    /// finished by `seconds`; `None` before the first iteration finished.
    pub fn trailing_mean_at(&self, seconds: f64, window: usize) -> Option<CurvePoint> {
        let end = self.wall_seconds.partition_point(|&t| t <= seconds);
        if end == 0 {
            return None;
        }
        let first = self.iterations[end - 1].saturating_sub(window.max(1) as u64);
        let start = self.iterations[..end].partition_point(|&i| i <= first);
        Some(self.point(start, end))
    }

    /// The point summarising rows `start..end` (non-empty).
    fn point(&self, start: usize, end: usize) -> CurvePoint {
        let finite: Vec<f64> = self.values[start..end]
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let mean = if finite.is_empty() {
            f64::NAN
        } else {
            finite.iter().sum::<f64>() / finite.len() as f64
        };
        CurvePoint {
            iterations: self.iterations[end - 1] as usize,
            wall_seconds: self.wall_seconds[end - 1],
            mean,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve() -> LearningCurve {
        // Ten iterations of 2 s each with values 0, 1, …, 9 and one NaN at iteration 4.
        let wall = (1..=10).map(|i| 2.0 * i as f64).collect();
        let mut values: Vec<f64> = (0..10).map(f64::from).collect();
        values[3] = f64::NAN;
        LearningCurve::new(wall, values).unwrap()
    }

    #[test]
    fn window_means_skip_non_finite_values_and_sit_at_the_window_end() {
        let means = curve().window_means(4);
        assert_eq!(means.len(), 3);
        assert_eq!((means[0].iterations, means[0].wall_seconds), (4, 8.0));
        assert_eq!(means[0].mean, 1.0); // (0 + 1 + 2) / 3, the NaN left out
        assert_eq!(means[1].mean, 5.5);
        assert_eq!((means[2].iterations, means[2].mean), (10, 8.5)); // the short last window
    }

    #[test]
    fn trailing_mean_uses_the_iterations_finished_by_the_time() {
        let c = curve();
        assert_eq!(c.trailing_mean_at(1.9, 3), None);
        // By 11 s five iterations finished (the fifth at 10 s): window of rows 3..5 = [2, NaN, 4].
        let p = c.trailing_mean_at(11.0, 3).unwrap();
        assert_eq!((p.iterations, p.wall_seconds, p.mean), (5, 10.0, 3.0));
        // A window longer than the run so far takes what there is.
        assert_eq!(c.trailing_mean_at(4.0, 100).unwrap().mean, 0.5);
        // Past the end: the last window.
        assert_eq!(c.trailing_mean_at(1e9, 2).unwrap().mean, 8.5);
        assert_eq!(c.total_seconds(), 20.0);
    }

    #[test]
    fn windows_count_iterations_when_logged_every_few() {
        // Logged every 10 iterations: rows are iterations 10, 20, …, 100 with values 0..9.
        let c = LearningCurve::new(
            (1..=10).map(|i| 2.0 * i as f64).collect(),
            (0..10).map(f64::from).collect(),
        )
        .unwrap()
        .with_iterations((1..=10).map(|i| 10 * i).collect())
        .unwrap();
        // By 8.5 s four rows finished: iteration 40; the last 20 iterations are rows 30 and 40.
        let p = c.trailing_mean_at(8.5, 20).unwrap();
        assert_eq!((p.iterations, p.mean), (40, 2.5));
        let means = c.window_means(50);
        assert_eq!(means.len(), 2);
        assert_eq!((means[0].iterations, means[0].mean), (50, 2.0));
        assert_eq!(c.last_iteration(), 100);
        assert!(c.clone().with_iterations(vec![1; 10]).is_err());
    }

    #[test]
    fn mismatched_or_unordered_logs_are_refused() {
        let err = LearningCurve::new(vec![1.0, 2.0], vec![0.5]).unwrap_err();
        assert!(
            err.to_string().contains("2 wall times but 1 values"),
            "{err}"
        );
        let err = LearningCurve::new(vec![1.0, 3.0, 2.0], vec![0.0; 3]).unwrap_err();
        assert!(err.to_string().contains("wall_seconds"), "{err}");
        assert!(err.to_string().contains("row 2 has 3"), "{err}");
        let err = LearningCurve::new(vec![1.0, f64::NAN], vec![0.0; 2]).unwrap_err();
        assert!(err.to_string().contains("row 2 has NaN"), "{err}");
    }
}
