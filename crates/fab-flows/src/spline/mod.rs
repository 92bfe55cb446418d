//! Rational-quadratic splines (Durkan et al. 2019) with linear tails or circular on angles
//! (Rezende et al. 2020): their configuration, the elementwise transform, its kernels (knots, the
//! per-bin formula, and the fused whole-spline operation), and the spline coupling flow built
//! from them.

pub mod config;
pub mod flow;
pub(crate) mod rq_formula;
pub(crate) mod rq_fused;
pub(crate) mod rq_kernel;
pub(crate) mod rq_knots;
pub mod transform;

pub use config::{n_params, Direction, SplineConfig};
pub use flow::{CircularShift, SharedAxisAngles, SplineFlowConfig};
pub use transform::SplineConsts;
