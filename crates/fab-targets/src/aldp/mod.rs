//! Alanine dipeptide (22 atoms, Amber ff96 with OBC1 implicit solvent): the prmtop reader and the
//! force field (bonded, Coulomb/LJ, OBC1 GB + ACE) with analytic gradients, one file per term.
//! Internal coordinates, batching over conformations and MD ground truth are issue #3's remaining work.

pub mod bonded;
pub mod cartesian;
pub mod crd;
pub mod forcefield;
pub mod gb_obc;
pub mod nonbonded;
pub mod prmtop;

pub use cartesian::CartesianBoltzmann;
pub use forcefield::{Energy, ForceField};
pub use prmtop::{Prmtop, PrmtopError};

/// The shipped topology file (openmmtools, MIT; see `data/aldp/README.md`).
pub const ALANINE_DIPEPTIDE_PRMTOP: &str = include_str!("../../data/aldp/alanine-dipeptide.prmtop");

/// The shipped starting coordinates (openmmtools, MIT; Å in the file).
pub const ALANINE_DIPEPTIDE_CRD: &str = include_str!("../../data/aldp/alanine-dipeptide.crd");
