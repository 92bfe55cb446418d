//! fab-targets: target densities for FAB benchmarks (GMM-40, fab-jax's 9-mode GMM and funnel, Many
//! Well, alanine dipeptide) and the molecular dynamics (Langevin, replica exchange) that gives the
//! molecule's ground truth.
//!
//! Each target implements [`fab_core::LogDensity`] (batched log p with analytic gradient, parallel
//! over the batch with rayon) and [`fab_core::Target`] (known log Z, exact samples, own metrics).

#![warn(missing_docs)]

// The README's example runs as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The ndarray version this crate's batch APIs take and return (so callers need not match it).
pub use ndarray;

pub mod config;
pub mod cox;
pub mod funnel;
pub mod gmm;
pub mod many_well;
pub mod molecule;

pub use config::{MoleculeSettings, PeptideConfig, TargetConfig};
pub use cox::CoxProcess;
pub use funnel::Funnel;
pub use gmm::Gmm;
pub use many_well::ManyWell;
pub use molecule::Molecule;

/// Builds the target described by `config`.
pub fn build(config: &TargetConfig) -> fab_core::Result<Box<dyn fab_core::Target>> {
    if let Some(molecule) = build_molecule(config)? {
        return Ok(Box::new(molecule));
    }
    match config {
        TargetConfig::Gmm40 => Ok(Box::new(Gmm::paper())),
        TargetConfig::GmmV1 => Ok(Box::new(Gmm::grid9())),
        TargetConfig::Funnel { dim } => Ok(Box::new(Funnel::new(*dim)?)),
        TargetConfig::Cox => Ok(Box::new(CoxProcess::pines()?)),
        TargetConfig::CoxWhitened => Ok(Box::new(CoxProcess::pines_whitened()?)),
        TargetConfig::ManyWell { dim } => Ok(Box::new(ManyWell::new(*dim)?)),
        TargetConfig::AlanineDipeptide(_) | TargetConfig::Peptide(_) => {
            unreachable!("molecules are built by build_molecule above")
        }
    }
}

/// The molecule target of `config` as its concrete type (for evaluation against MD and for
/// the φ/ψ of samples); `None` for targets that are not molecules.
pub fn build_molecule(
    config: &TargetConfig,
) -> fab_core::Result<Option<molecule::InternalBoltzmann>> {
    Ok(Molecule::from_config(config)?.map(|m| m.target))
}
