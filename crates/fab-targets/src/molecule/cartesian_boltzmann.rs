//! The alanine-dipeptide Boltzmann density in Cartesian coordinates, log p(x) = −E(x)/kT for
//! x ∈ R^66 (22 atoms × 3, nm), evaluated over batches in parallel with rayon, four conformations
//! per SIMD vector.
//! kT = R·T with boltzgen's R = 8.314e-3 kJ/mol/K (kT = 2.4942 kJ/mol at 300 K).

use ndarray::{Array1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use fab_core::density::{check_dim, check_dim_and_grad, par_row_chunks};
use fab_core::{LogDensity, Result};

use crate::molecule::forcefield::{ForceField, Workspace};
use crate::molecule::numeric::lanes::{Lane, X4};
use crate::molecule::numeric::vec3::Vec3;

/// Gas constant used by boltzgen/FAB (kJ/mol/K).
pub const GAS_CONSTANT: f64 = 8.314e-3;

/// Boltzmann density of the force field at temperature T over Cartesian coordinates.
#[derive(Debug, Clone)]
pub struct CartesianBoltzmann {
    ff: ForceField,
    kt: f64,
}

impl CartesianBoltzmann {
    /// The shipped alanine-dipeptide force field at `temperature` K.
    pub fn alanine_dipeptide(temperature: f64) -> Self {
        Self {
            ff: ForceField::alanine_dipeptide(),
            kt: GAS_CONSTANT * temperature,
        }
    }

    /// kT in kJ/mol.
    pub fn kt(&self) -> f64 {
        self.kt
    }

    /// The force field.
    pub fn force_field(&self) -> &ForceField {
        &self.ff
    }

    /// log p of up to four rows at once (one per SIMD lane), gradients into `grad` when given;
    /// rows must be contiguous (the callers pass standard-layout arrays).
    fn chunk(
        &self,
        scratch: &mut Scratch<'_>,
        rows: ArrayView2<f64>,
        mut out: ArrayViewMut1<f64>,
        grad: Option<ArrayViewMut2<f64>>,
    ) {
        let xs = crate::molecule::forcefield::energy::atom_rows(&rows);
        let gs = &mut scratch.grads[..xs.len()];
        let energies = self
            .ff
            .energy_and_grad_batch(&xs, gs, &mut scratch.ws)
            .expect("the target checks the dimension of its input");
        for (i, e) in energies.iter().take(xs.len()).enumerate() {
            out[i] = if e.is_finite() {
                -e / self.kt
            } else {
                f64::NEG_INFINITY
            };
        }
        if let Some(mut grad) = grad {
            for ((e, g), mut row) in energies.iter().zip(gs.iter()).zip(grad.rows_mut()) {
                let s = if e.is_finite() { -1.0 / self.kt } else { 0.0 };
                row.iter_mut()
                    .zip(g.iter().flatten())
                    .for_each(|(o, v)| *o = s * v);
            }
        }
    }

    /// One thread's buffers for [`Self::chunk`].
    fn scratch(&self) -> Scratch<'_> {
        Scratch {
            ws: self.ff.workspace(),
            grads: vec![vec![[0.0; 3]; self.ff.n_atoms()]; X4::WIDTH],
        }
    }
}

/// Per-thread buffers of a batch evaluation: the force field's workspace and one gradient per
/// lane.
struct Scratch<'a> {
    ws: Workspace<'a>,
    grads: Vec<Vec<Vec3>>,
}

impl LogDensity for CartesianBoltzmann {
    fn dim(&self) -> usize {
        3 * self.ff.n_atoms()
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        check_dim("alanine dipeptide (Cartesian) log_prob", &x, self.dim())?;
        let x = x.as_standard_layout();
        Ok(par_row_chunks(
            x.view(),
            None,
            X4::WIDTH,
            || self.scratch(),
            |s, r, o, g| self.chunk(s, r, o, g),
        ))
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        check_dim_and_grad(
            "alanine dipeptide (Cartesian) log_prob_and_grad",
            &x,
            &grad,
            self.dim(),
        )?;
        let x = x.as_standard_layout();
        Ok(par_row_chunks(
            x.view(),
            Some(grad),
            X4::WIDTH,
            || self.scratch(),
            |s, r, o, g| self.chunk(s, r, o, g),
        ))
    }
}
