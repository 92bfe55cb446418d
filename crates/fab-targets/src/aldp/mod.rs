//! Alanine dipeptide (22 atoms, Amber ff96 with OBC1 implicit solvent): the prmtop reader and the
//! bonded force-field terms so far. Nonbonded + GB terms, internal coordinates and MD ground truth
//! are issue #3's remaining work.

pub mod bonded;
pub mod nonbonded;
pub mod prmtop;

pub use prmtop::{Prmtop, PrmtopError};

/// The shipped topology file (openmmtools, MIT; see `data/aldp/README.md`).
pub const ALANINE_DIPEPTIDE_PRMTOP: &str = include_str!("../../data/aldp/alanine-dipeptide.prmtop");
