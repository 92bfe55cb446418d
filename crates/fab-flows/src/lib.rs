//! fab-flows: normalizing flows for FAB on dfdx 0.13 autodiff (f64 or f32, runtime shapes).
//!
//! [`CouplingFlow`] is a stack of coupling layers: affine ([`realnvp`], the GMM and Many Well flow)
//! or rational-quadratic splines with circular splines on angles ([`spline`], the alanine
//! flow). dfdx's `nn` layers and optimisers are const-generic only, so this crate keeps its own
//! small [`linear::Linear`] layer; optimisation and checkpoints are done by fab-core over the flat
//! parameter vector every flow exposes through [`fab_core::Flow`].
//!
//! Two engines compute the same flow ([`Engine`]): the fused one (default) runs each stage of a
//! coupling layer as one dfdx operation with a hand-written backward pass (`kernels/`:
//! `columns.rs`, `conditioner.rs`, `affine.rs`; `spline/rq_fused.rs`); the reference one composes
//! dfdx's own operations (its splines: the two-stage `spline/rq_knots.rs` then `spline/rq_kernel.rs`) and is what
//! tests/engines.rs checks the fused one against.
//!
//! dfdx 0.13 has a silent gradient bug in `slice` backward (it assigns instead of adding). No code
//! here calls `slice`: the reference engine selects and merges coordinates with constant 0/1
//! matrices (`kernels/split.rs`), the fused one with gathers whose backward scatter-adds. Every operation is
//! covered by finite-difference gradient tests in f64.

#![warn(missing_docs)]

// The README's example runs as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The ndarray version this crate's batch APIs take and return (so callers need not match it).
pub use ndarray;

pub mod activation;
pub mod config;
pub mod coupling;
pub(crate) mod kernels;
pub mod linear;
pub mod real;
pub mod realnvp;
pub mod relative_angles;
pub mod spline;

pub use activation::Activation;
pub use config::FlowConfig;
pub use coupling::{CouplingFlow, Engine};
pub use linear::Init;
pub use real::{Precision, Real};
pub use realnvp::RealNvpConfig;
pub use spline::{CircularShift, SharedAxisAngles, SplineFlowConfig};

/// Builds the flow described by `config` for dimension `dim`, in the precision it asks for.
pub fn build(config: &FlowConfig, dim: usize) -> fab_core::Result<Box<dyn fab_core::Flow>> {
    use Precision::{F32, F64};
    Ok(match config {
        FlowConfig::RealNvp(c) => match c.precision {
            F64 => Box::new(CouplingFlow::<f64>::real_nvp(dim, c)?),
            F32 => Box::new(CouplingFlow::<f32>::real_nvp(dim, c)?),
        },
        FlowConfig::SplineCoupling(c) => match c.precision {
            F64 => Box::new(CouplingFlow::<f64>::spline(dim, c)?),
            F32 => Box::new(CouplingFlow::<f32>::spline(dim, c)?),
        },
    })
}
