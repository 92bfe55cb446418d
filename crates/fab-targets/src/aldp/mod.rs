//! Alanine dipeptide (22 atoms, Amber ff96 with OBC1 implicit solvent): the prmtop reader and the
//! force field (bonded, Coulomb/LJ, OBC1 GB + ACE) with analytic gradients, one file per term; the
//! internal-coordinate transform and FAB's target density over it; chirality and Ramachandran angles.

pub mod basins;
pub mod bond_graph;
pub mod bonded;
pub mod cartesian;
pub mod chirality;
pub mod crd;
pub mod dcd;
pub mod evaluation;
pub mod forcefield;
pub mod gb_obc;
pub mod ground_truth;
pub mod internal_boltzmann;
pub mod internal_coordinates;
pub mod lanes;
pub mod md_files;
pub mod nonbonded;
pub mod pair_geometry;
pub mod pdb;
pub mod peptide;
pub mod prmtop;
pub mod ramachandran;
pub mod regularize;
pub mod sample_table;
pub mod vec3;
pub mod zmatrix;

pub use bond_graph::{BondGraph, ResidueDihedrals, Stereocentre, TopologyError};
pub use cartesian::CartesianBoltzmann;
pub use chirality::{ChiralityFilter, MirrorFilter, StereoFilter};
pub use forcefield::{Energy, ForceField, ForceFieldError, Workspace};
pub use internal_boltzmann::InternalBoltzmann;
pub use internal_coordinates::InternalCoordinates;
pub use peptide::{Peptide, PeptideError};
pub use prmtop::{Prmtop, PrmtopError};
pub use zmatrix::ZMatrix;

/// The shipped topology file (openmmtools, MIT; see `data/aldp/README.md`).
pub const ALANINE_DIPEPTIDE_PRMTOP: &str = include_str!("../../data/aldp/alanine-dipeptide.prmtop");

/// The shipped starting coordinates (openmmtools, MIT; Å in the file).
pub const ALANINE_DIPEPTIDE_CRD: &str = include_str!("../../data/aldp/alanine-dipeptide.crd");

/// Alanine tetrapeptide ACE-(ALA)₃-NME, ff96 with mbondi2 radii, a ParmEd-written prmtop made for
/// this project (see `data/tetrapeptide/README.md`): the second molecule of the force field.
pub const ALANINE_TETRAPEPTIDE_PRMTOP: &str =
    include_str!("../../data/tetrapeptide/alanine-tetrapeptide.prmtop");

/// The tetrapeptide's starting structure (Amber inpcrd, Å; vacuum-minimised build).
pub const ALANINE_TETRAPEPTIDE_INPCRD: &str =
    include_str!("../../data/tetrapeptide/alanine-tetrapeptide.inpcrd");

/// The same structure as a PDB file written by OpenMM (Å to three decimals).
pub const ALANINE_TETRAPEPTIDE_PDB: &str =
    include_str!("../../data/tetrapeptide/alanine-tetrapeptide.pdb");
