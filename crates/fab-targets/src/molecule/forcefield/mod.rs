//! The Amber force field as OpenMM evaluates it, one file per term (bonded; Coulomb and
//! Lennard-Jones; OBC1 generalised Born with the ACE surface term), summed with analytic
//! gradients by [`ForceField`].

pub mod bonded;
pub mod energy;
pub mod gb_obc;
pub mod nonbonded;
pub mod pair_geometry;

pub use energy::{Energy, ForceField, ForceFieldError, Workspace};
