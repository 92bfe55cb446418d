//! fab-targets: target densities for FAB benchmarks (GMM-40, fab-jax's 9-mode GMM and funnel, Many
//! Well, alanine dipeptide) and the molecular dynamics (Langevin, replica exchange) that gives the
//! molecule's ground truth.
//!
//! Each target implements [`fab_core::LogDensity`] (batched log p with analytic gradient, parallel
//! over the batch with rayon) and [`fab_core::Target`] (known log Z, exact samples, own metrics).

// The README's example runs as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The ndarray version this crate's batch APIs take and return (so callers need not match it).
pub use ndarray;

pub mod aldp;
pub mod config;
pub mod cox;
pub mod funnel;
pub mod gmm;
pub mod langevin;
pub mod many_well;
pub mod replica_exchange;

pub use config::{AldpConfig, PeptideConfig, TargetConfig};
pub use cox::CoxProcess;
pub use funnel::Funnel;
pub use gmm::Gmm;
pub use many_well::ManyWell;

/// Builds the target described by `config`.
pub fn build(config: &TargetConfig) -> fab_core::Result<Box<dyn fab_core::Target>> {
    match config {
        TargetConfig::Gmm40 => Ok(Box::new(Gmm::paper())),
        TargetConfig::GmmV1 => Ok(Box::new(Gmm::grid9())),
        TargetConfig::Funnel { dim } => Ok(Box::new(Funnel::new(*dim)?)),
        TargetConfig::Cox => Ok(Box::new(CoxProcess::pines()?)),
        TargetConfig::ManyWell { dim } => Ok(Box::new(ManyWell::new(*dim)?)),
        TargetConfig::AlanineDipeptide(c) => {
            c.validate()
                .map_err(|e| fab_core::FabError::invalid("target", e))?;
            let filter = c.chirality_filter.then(aldp::ChiralityFilter::default);
            Ok(Box::new(
                aldp::InternalBoltzmann::alanine_dipeptide(c.temperature)
                    .with_chirality_filter(filter),
            ))
        }
        TargetConfig::Peptide(c) => {
            let invalid = |e: String| fab_core::FabError::invalid("target", e);
            c.validate().map_err(invalid)?;
            let peptide = aldp::Peptide::from_files(&c.prmtop, &c.coordinates)
                .map_err(|e| invalid(e.to_string()))?;
            let target = peptide
                .target(c.temperature, c.chirality_filter)
                .map_err(|e| invalid(format!("{}: {e}", c.prmtop.display())))?;
            Ok(Box::new(target))
        }
    }
}
