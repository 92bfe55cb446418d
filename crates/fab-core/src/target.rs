//! What a benchmark target offers beyond its log-density: known normaliser, exact samples, and
//! target-specific metrics (mode coverage, test-function expectations). All optional.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::{FabError, FabRng, LogDensity, Result};

/// A 2-D window onto two coordinates of a target, for plots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlotView {
    /// The two coordinates shown (horizontal, vertical).
    pub coords: (usize, usize),
    /// Horizontal range.
    pub x: (f64, f64),
    /// Vertical range.
    pub y: (f64, f64),
}

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

    /// Rows of a fresh training batch to keep, e.g. dropping the wrong enantiomer of a molecule
    /// (FAB's chirality filter); `None` keeps every row. Evaluation never filters.
    fn training_mask(&self, _x: ArrayView2<f64>) -> Option<Vec<bool>> {
        None
    }

    /// Coordinate pairs worth plotting, with their windows; empty if the target has none.
    fn plot_views(&self) -> Vec<PlotView> {
        Vec::new()
    }

    /// Log density (up to a constant) of the 2-D marginal of `coords` at the rows of `points`
    /// (shape (n, 2)), for the background of plots. The default works for 2-D targets.
    fn marginal_log_prob(
        &self,
        coords: (usize, usize),
        points: ArrayView2<f64>,
    ) -> Result<Array1<f64>> {
        if self.dim() == 2 && coords == (0, 1) {
            self.log_prob(points)
        } else {
            Err(FabError::invalid(
                "plot",
                format!("no 2-D marginal for coordinates {coords:?}"),
            ))
        }
    }
}
