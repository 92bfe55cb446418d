//! Molecular file formats: Amber prmtop (topology) and crd/inpcrd (coordinates), PDB, DCD
//! trajectories, and tables of weighted samples.

pub mod crd;
pub mod dcd;
pub mod pdb;
pub mod prmtop;
pub mod sample_table;

pub use prmtop::{Prmtop, PrmtopError};
