//! The FAB alanine-dipeptide target: the Boltzmann density in the 60 normalised internal
//! coordinates, log p(z) = −reg(E(x(z))/kT) + log|det ∂x/∂z| (spec aldp-target.md §1.5), with
//! ∇_z log p from the force-field gradient pulled back through the transform. Batches run in
//! parallel over conformations with rayon. kT = R·T with boltzgen's R = 8.314e-3 kJ/mol/K.

use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use fab_core::density::{check_dim, par_rows};
use fab_core::{LogDensity, Result};

use crate::aldp::cartesian::GAS_CONSTANT;
use crate::aldp::forcefield::ForceField;
use crate::aldp::internal_coordinates::InternalCoordinates;
use crate::aldp::regularize::EnergyRegularizer;
use crate::aldp::vec3::Vec3;

/// Boltzmann density of the force field over internal coordinates.
#[derive(Debug, Clone)]
pub struct InternalBoltzmann {
    ff: ForceField,
    transform: InternalCoordinates,
    regularizer: EnergyRegularizer,
    kt: f64,
}

/// Everything one evaluation yields, for callers that want more than log p.
#[derive(Debug, Clone, PartialEq)]
pub struct InternalPoint {
    /// log p(z) (−inf when the energy is not finite).
    pub log_prob: f64,
    /// Potential energy of x(z) (kJ/mol).
    pub energy: f64,
    /// log|det ∂x/∂z|.
    pub log_det: f64,
}

impl InternalBoltzmann {
    /// FAB's alanine-dipeptide target at `temperature` K.
    pub fn alanine_dipeptide(temperature: f64) -> Self {
        Self::new(
            ForceField::alanine_dipeptide(),
            InternalCoordinates::alanine_dipeptide(),
            GAS_CONSTANT * temperature,
        )
    }

    /// A target from its parts; `kt` in kJ/mol.
    pub fn new(ff: ForceField, transform: InternalCoordinates, kt: f64) -> Self {
        Self {
            ff,
            transform,
            regularizer: EnergyRegularizer::default(),
            kt,
        }
    }

    /// kT in kJ/mol.
    pub fn kt(&self) -> f64 {
        self.kt
    }

    /// The coordinate transform.
    pub fn transform(&self) -> &InternalCoordinates {
        &self.transform
    }

    /// The force field.
    pub fn force_field(&self) -> &ForceField {
        &self.ff
    }

    /// Evaluates one point z; writes ∇_z log p into `grad` when given (zeros if log p is −inf).
    pub fn evaluate(&self, z: &[f64], grad: Option<&mut [f64]>) -> InternalPoint {
        let n = self.transform.n_atoms();
        let mut x: Vec<Vec3> = vec![[0.0; 3]; n];
        let log_det = self.transform.to_cartesian(z, &mut x);
        let mut gx: Vec<Vec3> = vec![[0.0; 3]; n];
        let energy = self.ff.energy_and_grad(&x, &mut gx).total();
        let (u, slope) = self.regularizer.apply(energy / self.kt);
        let log_prob = if u.is_finite() && log_det.is_finite() {
            log_det - u
        } else {
            f64::NEG_INFINITY
        };
        if let Some(grad) = grad {
            if log_prob.is_finite() {
                // ∂(−u)/∂x = −slope/kT · ∂E/∂x, pulled back to z together with ∇ log|det|.
                let s = -slope / self.kt;
                gx.iter_mut().flatten().for_each(|g| *g *= s);
                self.transform.pull_back(z, &x, &mut gx, grad, true);
            } else {
                grad.iter_mut().for_each(|g| *g = 0.0);
            }
        }
        InternalPoint {
            log_prob,
            energy,
            log_det,
        }
    }

    fn point(&self, row: ArrayView1<f64>, grad: Option<ArrayViewMut1<f64>>) -> f64 {
        let z: Vec<f64> = row.iter().copied().collect();
        match grad {
            Some(mut g) => {
                let mut buf = vec![0.0; z.len()];
                let lp = self.evaluate(&z, Some(&mut buf)).log_prob;
                g.iter_mut().zip(&buf).for_each(|(o, v)| *o = *v);
                lp
            }
            None => self.evaluate(&z, None).log_prob,
        }
    }
}

impl LogDensity for InternalBoltzmann {
    fn dim(&self) -> usize {
        self.transform.dim()
    }

    fn log_prob(&self, z: ArrayView2<f64>) -> Result<Array1<f64>> {
        check_dim("alanine dipeptide (internal) log_prob", &z, self.dim())?;
        Ok(par_rows(z, None, |r, g| self.point(r, g)))
    }

    fn log_prob_and_grad(
        &self,
        z: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        check_dim(
            "alanine dipeptide (internal) log_prob_and_grad",
            &z,
            self.dim(),
        )?;
        Ok(par_rows(z, Some(grad), |r, g| self.point(r, g)))
    }
}
