//! What a spline is: its bins, interval and floors ([`SplineConfig`]), which way it is evaluated
//! ([`Direction`]) and how many parameters a row needs ([`n_params`]).

use serde::{Deserialize, Serialize};

/// Shape and bounds of a spline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SplineConfig {
    /// Number of bins K.
    pub bins: usize,
    /// Half-width B of the spline interval [−B, B] (ignored for circular splines: π).
    pub bound: f64,
    /// Minimum bin width and height as a fraction of the interval.
    pub min_bin: f64,
    /// Minimum knot derivative.
    pub min_slope: f64,
}

impl Default for SplineConfig {
    fn default() -> Self {
        Self {
            bins: 8,
            bound: 5.0,
            min_bin: 1e-3,
            min_slope: 1e-3,
        }
    }
}

/// Which way to evaluate the spline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// x → y = f(x).
    Forward,
    /// y → x = f⁻¹(y).
    Inverse,
}

/// Parameters per row: `K` width logits, `K` height logits and the derivative parameters
/// (`K − 1` for linear tails, `K` for circular splines).
pub fn n_params(bins: usize, circular: bool) -> usize {
    if circular {
        3 * bins
    } else {
        3 * bins - 1
    }
}
