//! Where the atoms are: the bond graph of a topology, Z-matrices, FAB's internal-coordinate
//! transform, chirality (which mirror form a conformation is) and the Ramachandran angles.

pub mod bond_graph;
pub mod chirality;
pub mod internal;
pub mod ramachandran;
pub mod zmatrix;

pub use bond_graph::{BondGraph, ResidueDihedrals, Stereocentre, TopologyError};
pub use chirality::{ChiralityFilter, MirrorFilter, StereoFilter};
pub use internal::InternalCoordinates;
pub use zmatrix::ZMatrix;
