//! The Ramachandran angles φ = torsion(C(ACE), N, CA, C) and ψ = torsion(N, CA, C, N(NME)) of
//! alanine dipeptide (IUPAC sign, as mdtraj's `compute_phi`/`compute_psi`), the coordinates in which
//! FAB's results are judged.

use ndarray::{Array2, ArrayView2};

use crate::molecule::coordinates::internal::InternalCoordinates;
use crate::molecule::numeric::vec3::{torsion, Vec3};

/// Atoms of φ (prmtop order).
pub const PHI_ATOMS: [usize; 4] = [4, 6, 8, 14];
/// Atoms of ψ (prmtop order).
pub const PSI_ATOMS: [usize; 4] = [6, 8, 14, 16];

/// (φ, ψ) in rad of one Cartesian conformation.
pub fn phi_psi(x: &[Vec3]) -> (f64, f64) {
    let t = |a: [usize; 4]| torsion(x[a[0]], x[a[1]], x[a[2]], x[a[3]]);
    (t(PHI_ATOMS), t(PSI_ATOMS))
}

/// (φ, ψ) of every row of a batch of internal coordinates, shape (n, 2); NaN for rows whose
/// reconstruction is not finite.
pub fn phi_psi_of_internal(transform: &InternalCoordinates, z: ArrayView2<f64>) -> Array2<f64> {
    torsions_of_internal(transform, z, &[PHI_ATOMS, PSI_ATOMS])
}

/// The torsions (IUPAC sign, rad) over each quartet of `atoms` for every row of a batch of
/// internal coordinates, shape (n, atoms.len()): φ₁, ψ₁, φ₂, … of a peptide's residues.
pub fn torsions_of_internal(
    transform: &InternalCoordinates,
    z: ArrayView2<f64>,
    atoms: &[[usize; 4]],
) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = transform.map_cartesian(z, |x| {
        atoms
            .iter()
            .map(|a| torsion(x[a[0]], x[a[1]], x[a[2]], x[a[3]]))
            .collect()
    });
    let mut out = Array2::zeros((rows.len(), atoms.len()));
    for (i, row) in rows.into_iter().enumerate() {
        out.row_mut(i).assign(&ndarray::Array1::from(row));
    }
    out
}
