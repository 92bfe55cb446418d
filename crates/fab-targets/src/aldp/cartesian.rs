//! The alanine-dipeptide Boltzmann density in Cartesian coordinates, log p(x) = −E(x)/kT for
//! x ∈ R^66 (22 atoms × 3, nm), evaluated over batches in parallel with rayon.
//! kT = R·T with boltzgen's R = 8.314e-3 kJ/mol/K (kT = 2.4942 kJ/mol at 300 K).

use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use fab_core::density::{check_dim, par_rows};
use fab_core::{LogDensity, Result};

use crate::aldp::forcefield::ForceField;

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

    fn point(&self, row: ArrayView1<f64>, grad: Option<ArrayViewMut1<f64>>) -> f64 {
        let n = self.ff.n_atoms();
        let x: Vec<[f64; 3]> = (0..n)
            .map(|a| [row[3 * a], row[3 * a + 1], row[3 * a + 2]])
            .collect();
        let mut g = vec![[0.0; 3]; n];
        let e = self.ff.energy_and_grad(&x, &mut g).total();
        if let Some(mut out) = grad {
            for a in 0..n {
                for d in 0..3 {
                    out[3 * a + d] = if e.is_finite() {
                        -g[a][d] / self.kt
                    } else {
                        0.0
                    };
                }
            }
        }
        if e.is_finite() {
            -e / self.kt
        } else {
            f64::NEG_INFINITY
        }
    }
}

impl LogDensity for CartesianBoltzmann {
    fn dim(&self) -> usize {
        3 * self.ff.n_atoms()
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        check_dim("alanine dipeptide (Cartesian) log_prob", &x, self.dim())?;
        Ok(par_rows(x, None, |r, g| self.point(r, g)))
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
        Ok(par_rows(x, Some(grad), |r, g| self.point(r, g)))
    }
}
