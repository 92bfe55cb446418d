//! The alanine-dipeptide Boltzmann density in Cartesian coordinates, log p(x) = −E(x)/kT for
//! x ∈ R^66 (22 atoms × 3, nm), evaluated over batches in parallel with rayon, four conformations
//! per SIMD vector.
//! kT = R·T with boltzgen's R = 8.314e-3 kJ/mol/K (kT = 2.4942 kJ/mol at 300 K).

use ndarray::{Array1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use fab_core::density::{check_dim, par_row_chunks};
use fab_core::{LogDensity, Result};

use crate::aldp::forcefield::ForceField;
use crate::aldp::lanes::{Lane, X4};
use crate::aldp::vec3::Vec3;

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

    /// log p of up to four rows at once (one per SIMD lane), gradients into `grad` when given.
    fn chunk(
        &self,
        rows: ArrayView2<f64>,
        mut out: ArrayViewMut1<f64>,
        grad: Option<ArrayViewMut2<f64>>,
    ) {
        let n = self.ff.n_atoms();
        let xs: Vec<Vec<Vec3>> = rows
            .rows()
            .into_iter()
            .map(|r| {
                (0..n)
                    .map(|a| [r[3 * a], r[3 * a + 1], r[3 * a + 2]])
                    .collect()
            })
            .collect();
        let mut gs: Vec<Vec<Vec3>> = vec![vec![[0.0; 3]; n]; xs.len()];
        let energies = self.ff.energy_and_grad_batch(&xs, &mut gs);
        for (i, e) in energies.iter().take(xs.len()).enumerate() {
            out[i] = if e.is_finite() {
                -e / self.kt
            } else {
                f64::NEG_INFINITY
            };
        }
        if let Some(mut grad) = grad {
            for (i, (e, g)) in energies.iter().zip(&gs).enumerate() {
                for a in 0..n {
                    for d in 0..3 {
                        grad[[i, 3 * a + d]] = if e.is_finite() {
                            -g[a][d] / self.kt
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

impl LogDensity for CartesianBoltzmann {
    fn dim(&self) -> usize {
        3 * self.ff.n_atoms()
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        check_dim("alanine dipeptide (Cartesian) log_prob", &x, self.dim())?;
        Ok(par_row_chunks(x, None, X4::WIDTH, |r, o, g| {
            self.chunk(r, o, g)
        }))
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        check_dim(
            "alanine dipeptide (Cartesian) log_prob_and_grad",
            &x,
            self.dim(),
        )?;
        Ok(par_row_chunks(x, Some(grad), X4::WIDTH, |r, o, g| {
            self.chunk(r, o, g)
        }))
    }
}
