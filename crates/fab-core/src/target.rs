//! What a benchmark target offers beyond its log-density: known normaliser, exact samples, and
//! target-specific metrics (mode coverage, test-function expectations). All optional.

use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::{FabRng, LogDensity};

/// Samples with their importance log weights (log p − log q, or AIS log weights).
#[derive(Debug, Clone, Copy)]
pub struct WeightedSamples<'a> {
    /// Points, shape `(n, d)`.
    pub x: ArrayView2<'a, f64>,
    /// Log importance weights toward p.
    pub log_w: ArrayView1<'a, f64>,
}

/// A target density for FAB benchmarks.
pub trait Target: LogDensity {
    /// Short name used in file names and reports.
    fn name(&self) -> &str;

    /// log Z of the density returned by `log_prob`, if known.
    fn log_z(&self) -> Option<f64> {
        None
    }

    /// `n` exact samples, if the target can draw them (test sets for log-likelihood).
    fn sample(&self, _n: usize, _rng: &mut FabRng) -> Option<Array2<f64>> {
        None
    }

    /// Target-specific metrics of flow samples and AIS samples, as (name, value) pairs.
    fn extra_metrics(
        &self,
        _flow: WeightedSamples<'_>,
        _ais: WeightedSamples<'_>,
    ) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// Plot window ((x_min, x_max), (y_min, y_max)) for 2-D plots of the first two coordinates.
    fn plot_bounds(&self) -> Option<((f64, f64), (f64, f64))> {
        None
    }
}
