//! Molecules in implicit solvent from any Amber prmtop: file formats, our Amber ff96 + OBC1 force
//! field (one file per term), internal coordinates from the bond graph, FAB's Boltzmann targets
//! over them, the replica-exchange MD that gives the ground truth, and the evaluation against it.
//! Alanine dipeptide and the tetrapeptide ship as presets.

pub mod coordinates;
pub mod forcefield;
pub mod formats;
pub mod md;
pub mod numeric;

pub mod basins;
pub mod cartesian_boltzmann;
pub mod evaluation;
pub mod internal_boltzmann;
pub mod peptide;
pub mod presets;
pub mod regularize;
pub mod setup;

pub use cartesian_boltzmann::CartesianBoltzmann;
pub use coordinates::{
    BondGraph, ChiralityFilter, InternalCoordinates, MirrorFilter, ResidueDihedrals, StereoFilter,
    Stereocentre, TopologyError, ZMatrix,
};
pub use forcefield::{Energy, ForceField, ForceFieldError, Workspace};
pub use formats::{Prmtop, PrmtopError};
pub use internal_boltzmann::InternalBoltzmann;
pub use peptide::{Peptide, PeptideError};
pub use presets::{
    ALANINE_DIPEPTIDE_CRD, ALANINE_DIPEPTIDE_PRMTOP, ALANINE_TETRAPEPTIDE_INPCRD,
    ALANINE_TETRAPEPTIDE_PDB, ALANINE_TETRAPEPTIDE_PRMTOP,
};
pub use setup::Molecule;
