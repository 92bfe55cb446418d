//! The complete alanine-dipeptide energy: Amber ff96 bonded terms + Coulomb/LJ without cutoff +
//! OBC1 implicit solvent with ACE (OpenMM `AmberPrmtopFile.createSystem(implicitSolvent=OBC1,
//! constraints=None, nonbondedCutoff=None)`), kJ/mol and nm, with the analytic gradient.

use crate::aldp::bonded::{BondedEnergy, BondedTerms};
use crate::aldp::gb_obc::{GbEnergy, GbObc};
use crate::aldp::nonbonded::{Nonbonded, NonbondedEnergy};
use crate::aldp::pair_geometry::{all_pairs, PairGeometry};
use crate::aldp::prmtop::{Prmtop, PrmtopError};

/// Energy of one conformation split by term.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Energy {
    pub bonded: BondedEnergy,
    pub nonbonded: NonbondedEnergy,
    pub gb: GbEnergy,
}

impl Energy {
    /// Total potential energy (kJ/mol).
    pub fn total(&self) -> f64 {
        self.bonded.bond
            + self.bonded.angle
            + self.bonded.torsion
            + self.nonbonded.total()
            + self.gb.total()
    }
}

/// The force field of one molecule.
#[derive(Debug, Clone)]
pub struct ForceField {
    bonded: BondedTerms,
    nonbonded: Nonbonded,
    gb: GbObc,
    n_atoms: usize,
    /// Every atom pair, shared by the Coulomb/LJ and GB terms.
    pairs: Vec<(usize, usize)>,
}

impl ForceField {
    /// Builds the force field from prmtop text (`origin` names the file in errors).
    pub fn from_prmtop_text(text: &str, origin: &str) -> Result<Self, PrmtopError> {
        let top = Prmtop::parse(text, origin)?;
        let nonbonded = Nonbonded::from_prmtop(&top);
        Ok(Self {
            bonded: BondedTerms::from_prmtop(&top),
            gb: GbObc::from_prmtop(&top, &nonbonded.charges),
            nonbonded,
            n_atoms: top.n_atoms(),
            pairs: all_pairs(top.n_atoms()),
        })
    }

    /// The shipped alanine-dipeptide force field.
    pub fn alanine_dipeptide() -> Self {
        Self::from_prmtop_text(
            crate::aldp::ALANINE_DIPEPTIDE_PRMTOP,
            "alanine-dipeptide.prmtop",
        )
        .expect("the shipped prmtop parses (checked by tests)")
    }

    /// Number of atoms.
    pub fn n_atoms(&self) -> usize {
        self.n_atoms
    }

    /// Energy of one conformation (atoms × 3, nm); writes ∂E/∂x (kJ/mol/nm, minus the forces) into `grad`.
    pub fn energy_and_grad(&self, x: &[[f64; 3]], grad: &mut [[f64; 3]]) -> Energy {
        grad.iter_mut().for_each(|g| *g = [0.0; 3]);
        let geo = PairGeometry::new(x, &self.pairs);
        Energy {
            bonded: self.bonded.energy_and_grad(x, grad),
            nonbonded: self.nonbonded.energy_and_grad_with(&geo, grad),
            gb: self.gb.energy_and_grad_with(&geo, grad),
        }
    }
}
