//! The complete alanine-dipeptide energy: Amber ff96 bonded terms + Coulomb/LJ without cutoff +
//! OBC1 implicit solvent with ACE (OpenMM `AmberPrmtopFile.createSystem(implicitSolvent=OBC1,
//! constraints=None, nonbondedCutoff=None)`), kJ/mol and nm, with the analytic gradient.

use crate::molecule::forcefield::bonded::{BondedEnergy, BondedTerms};
use crate::molecule::forcefield::gb_obc::{GbEnergy, GbObc, GbScratch};
use crate::molecule::forcefield::nonbonded::{Nonbonded, NonbondedEnergy};
use crate::molecule::forcefield::pair_geometry::{all_pairs, PairGeometry};
use crate::molecule::formats::prmtop::{Prmtop, PrmtopError};
use crate::molecule::numeric::lanes::{pack_into, unpack_into, Lane, X4};
use crate::molecule::numeric::vec3::Vec3;

/// Energy of one conformation split by term (per lane for SIMD kernels).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Energy<S = f64> {
    /// Bonds, angles and torsions.
    pub bonded: BondedEnergy<S>,
    /// Coulomb and Lennard-Jones, 1-4 pairs apart.
    pub nonbonded: NonbondedEnergy<S>,
    /// OBC1 generalised Born and the ACE surface term.
    pub gb: GbEnergy<S>,
}

impl<S: Lane> Energy<S> {
    /// Total potential energy (kJ/mol).
    pub fn total(&self) -> S {
        self.bonded.bond
            + self.bonded.angle
            + self.bonded.torsion
            + self.nonbonded.total()
            + self.gb.total()
    }
}

/// Input the force field cannot evaluate.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ForceFieldError {
    /// A conformation or gradient buffer with the wrong number of atoms (or a row whose length
    /// is not 3 × atoms).
    #[error("{what}: {got} values, the molecule needs {expected} (3 per atom, {atoms} atoms)")]
    AtomCount {
        /// Which input.
        what: String,
        /// Columns expected (3 × atoms).
        expected: usize,
        /// Columns given.
        got: usize,
        /// Atoms of the molecule.
        atoms: usize,
    },
    /// A coordinate that is NaN or infinite.
    #[error("conformation {index}: non-finite coordinate (NaN or infinity)")]
    NonFinite {
        /// Row of the first non-finite conformation.
        index: usize,
    },
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
            crate::molecule::ALANINE_DIPEPTIDE_PRMTOP,
            "alanine-dipeptide.prmtop",
        )
        .expect("the shipped prmtop parses (checked by tests)")
    }

    /// The shipped alanine-tetrapeptide force field (42 atoms).
    pub fn alanine_tetrapeptide() -> Self {
        Self::from_prmtop_text(
            crate::molecule::ALANINE_TETRAPEPTIDE_PRMTOP,
            "alanine-tetrapeptide.prmtop",
        )
        .expect("the shipped prmtop parses (checked by tests)")
    }

    /// Number of atoms.
    pub fn n_atoms(&self) -> usize {
        self.n_atoms
    }

    /// Energy of one conformation (atoms × 3, nm; or one per SIMD lane, see
    /// [`Self::energy_and_grad_batch`]); writes ∂E/∂x (kJ/mol/nm, minus the forces) into `grad`.
    /// Both must hold exactly [`Self::n_atoms`] atoms. For batches of any size in ndarray form,
    /// use [`Self::energies_and_forces`].
    pub fn energy_and_grad<S: Lane>(
        &self,
        x: &[[S; 3]],
        grad: &mut [[S; 3]],
    ) -> Result<Energy<S>, ForceFieldError> {
        self.check_atoms("positions", 3 * x.len())?;
        self.check_atoms("gradient buffer", 3 * grad.len())?;
        let mut geo = PairGeometry::zeros(self.n_atoms, &self.pairs);
        let mut gb = GbScratch::new(self.n_atoms, self.pairs.len());
        Ok(self.energy_and_grad_in(x, grad, &mut geo, &mut gb))
    }

    fn check_atoms(&self, what: &str, values: usize) -> Result<(), ForceFieldError> {
        if values == 3 * self.n_atoms {
            Ok(())
        } else {
            Err(ForceFieldError::AtomCount {
                what: what.into(),
                expected: 3 * self.n_atoms,
                got: values,
                atoms: self.n_atoms,
            })
        }
    }

    /// Potential energies (kJ/mol) and forces (−∂E/∂x, kJ/mol/nm, OpenMM's sign) of any number of
    /// conformations, the rows of `x` (n × 3·atoms, nm, atom-major x y z), computed in parallel
    /// on the rayon threads four at a time. A row of the wrong length or with a non-finite
    /// coordinate is an error naming it.
    pub fn energies_and_forces(
        &self,
        x: ndarray::ArrayView2<f64>,
    ) -> Result<(ndarray::Array1<f64>, ndarray::Array2<f64>), ForceFieldError> {
        use ndarray::{Array1, Array2, Axis};
        use rayon::prelude::*;
        self.check_atoms("each row of the positions", x.ncols())?;
        if let Some(index) = x
            .rows()
            .into_iter()
            .position(|r| r.iter().any(|v| !v.is_finite()))
        {
            return Err(ForceFieldError::NonFinite { index });
        }
        let x = x.as_standard_layout();
        let n = x.nrows();
        let mut energies = Array1::zeros(n);
        let mut forces = Array2::zeros((n, x.ncols()));
        let width = X4::WIDTH;
        x.axis_chunks_iter(Axis(0), width)
            .into_par_iter()
            .zip(energies.axis_chunks_iter_mut(Axis(0), width))
            .zip(forces.axis_chunks_iter_mut(Axis(0), width))
            .for_each_init(
                || (self.workspace(), vec![vec![[0.0; 3]; self.n_atoms]; width]),
                |(ws, grads), ((rows, mut e), mut f)| {
                    let xs = atom_rows(&rows);
                    let gs = &mut grads[..xs.len()];
                    let out = self
                        .energy_and_grad_batch(&xs, gs, ws)
                        .expect("1 to 4 rows of checked length");
                    for (i, (g, mut row)) in gs.iter().zip(f.rows_mut()).enumerate() {
                        e[i] = out[i];
                        row.iter_mut()
                            .zip(g.iter().flatten())
                            .for_each(|(o, v)| *o = -v);
                    }
                },
            );
        Ok((energies, forces))
    }

    /// [`Self::energy_and_grad`] with the caller's buffers.
    fn energy_and_grad_in<S: Lane>(
        &self,
        x: &[[S; 3]],
        grad: &mut [[S; 3]],
        geo: &mut PairGeometry<S>,
        gb: &mut GbScratch<S>,
    ) -> Energy<S> {
        grad.iter_mut().for_each(|g| *g = [S::splat(0.0); 3]);
        geo.set(x);
        let e = Energy {
            bonded: self.bonded.energy_and_grad(x, grad),
            nonbonded: self.nonbonded.energy_and_grad_with(geo),
            gb: self.gb.energy_and_grad_with(geo, gb),
        };
        geo.scatter_radial(grad);
        e
    }

    /// Buffers for [`Self::energy_and_grad_batch`]; keep one per thread and reuse it.
    pub fn workspace(&self) -> Workspace<'_> {
        let zero = [X4::splat(0.0); 3];
        Workspace {
            x: vec![zero; self.n_atoms],
            grad: vec![zero; self.n_atoms],
            geo: PairGeometry::zeros(self.n_atoms, &self.pairs),
            gb: GbScratch::new(self.n_atoms, self.pairs.len()),
        }
    }

    /// Total energies of up to four conformations at once, one per SIMD lane ([`X4`]); writes
    /// each conformation's ∂E/∂x into the matching entry of `grads`. Allocates nothing: the
    /// packed lanes and the kernels' buffers live in `ws` (from [`Self::workspace`]). More than
    /// four conformations, or atom counts other than the molecule's, are errors.
    pub fn energy_and_grad_batch<X: AsRef<[Vec3]>, G: AsMut<[Vec3]>>(
        &self,
        xs: &[X],
        grads: &mut [G],
        ws: &mut Workspace<'_>,
    ) -> Result<[f64; 4], ForceFieldError> {
        if !(1..=X4::WIDTH).contains(&xs.len()) || grads.len() != xs.len() {
            return Err(ForceFieldError::AtomCount {
                what: format!(
                    "energy_and_grad_batch takes 1 to 4 conformations and as many gradient buffers, got {} and {}",
                    xs.len(),
                    grads.len()
                ),
                expected: 3 * self.n_atoms,
                got: 3 * self.n_atoms,
                atoms: self.n_atoms,
            });
        }
        for x in xs {
            self.check_atoms("positions", 3 * x.as_ref().len())?;
        }
        for g in grads.iter_mut() {
            self.check_atoms("gradient buffer", 3 * g.as_mut().len())?;
        }
        pack_into(xs, &mut ws.x);
        let e = self
            .energy_and_grad_in(&ws.x, &mut ws.grad, &mut ws.geo, &mut ws.gb)
            .total();
        for (l, out) in grads.iter_mut().enumerate() {
            unpack_into(&ws.grad, l, out.as_mut());
        }
        Ok(e.to_array())
    }

    /// Energies of four conformations already packed in SIMD lanes (atoms × 3 of [`X4`], as
    /// [`crate::molecule::InternalCoordinates::to_cartesian`] builds them); writes the gradient lanes
    /// into `grad`.
    pub fn energy_and_grad_lanes(
        &self,
        x: &[[X4; 3]],
        grad: &mut [[X4; 3]],
        ws: &mut Workspace<'_>,
    ) -> X4 {
        self.energy_and_grad_in(x, grad, &mut ws.geo, &mut ws.gb)
            .total()
    }
}

/// The rows of a standard-layout (n × 3·atoms) array as conformations (atoms of 3 coordinates).
pub(crate) fn atom_rows<'a>(rows: &'a ndarray::ArrayView2<'_, f64>) -> Vec<&'a [Vec3]> {
    rows.rows()
        .into_iter()
        .map(|r| {
            r.to_slice()
                .expect("rows of a standard-layout array are contiguous")
                .as_chunks::<3>()
                .0
        })
        .collect()
}

/// The buffers of one thread's [`ForceField::energy_and_grad_batch`] calls: packed coordinates
/// and gradients, pair geometry and GB scratch, all in SIMD lanes.
#[derive(Debug, Clone)]
pub struct Workspace<'a> {
    x: Vec<[X4; 3]>,
    grad: Vec<[X4; 3]>,
    geo: PairGeometry<'a, X4>,
    gb: GbScratch<X4>,
}
