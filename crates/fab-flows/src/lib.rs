//! fab-flows: normalizing flows for FAB on dfdx 0.13 autodiff (f64, runtime shapes).
//!
//! dfdx's `nn` layers and optimisers are const-generic only, so this crate keeps its own small
//! [`linear::Linear`] layer; optimisation and checkpoints are done by fab-core over the flat
//! parameter vector every flow exposes through [`fab_core::Flow`].
//!
//! dfdx 0.13 has a silent gradient bug in `slice` backward (it assigns instead of adding). No code
//! here calls `slice`: coordinates are split and merged with constant 0/1 selection matrices
//! ([`split::Split`]), which are exact and need no workaround.

pub mod config;
pub mod linear;
pub mod realnvp;
pub mod spline;
pub mod split;
pub mod tape;

pub use config::FlowConfig;
pub use realnvp::{RealNvp, RealNvpConfig};

/// Builds the flow described by `config` for dimension `dim`.
pub fn build(config: &FlowConfig, dim: usize) -> fab_core::Result<Box<dyn fab_core::Flow>> {
    match config {
        FlowConfig::RealNvp(c) => Ok(Box::new(RealNvp::new(dim, c)?)),
    }
}
