//! A fixed shear on the torus that lets a flow model some angles relative to another one:
//! x_j = wrap(h_j + h_i) for each pair (j, i), every other coordinate unchanged.
//!
//! Why: in FAB's alanine-dipeptide Z-matrix the Cα hydrogen and the Cβ are placed by dihedrals
//! measured from the ACE carbonyl carbon, so both turn together with φ (their difference from φ
//! is fixed by the Cα chirality). A flow that has only seen φ < 0 does not know that they must
//! turn along when it puts mass at φ > 0, and its samples there are clashes that AIS cannot
//! repair. Modelling h_j = x_j − x_i instead makes the pair's offset a near-constant the flow
//! learns once, for every φ.
//!
//! The map is a bijection of the torus with Jacobian determinant 1 (unit lower-triangular), so
//! it adds nothing to log q. It is applied as h + h·S with the fixed 0/1 matrix S (S[i, j] = 1),
//! a matmul rather than a gather because dfdx's slice gradients are unreliable (see
//! `split.rs`).

use dfdx::prelude::*;

use fab_core::{FabError, Result};

use crate::kernels::tape::dup2;
use crate::real::{Real, M};

/// The shear x_j = h_j + h_i for the configured pairs, as a (d, d) matrix S.
#[derive(Debug, Clone)]
pub(crate) struct RelativeAngles<E: Real> {
    s: M<E>,
}

impl<E: Real> RelativeAngles<E>
where
    Cpu: Device<E>,
{
    /// Checks the pairs (j, i): both circular, j ≠ i, each j at most once and no i itself
    /// relative to another angle (so the map stays triangular and its inverse is h_j = x_j − x_i).
    pub(crate) fn new(
        dev: &Cpu,
        circular: &[bool],
        pairs: &[(usize, usize)],
    ) -> Result<Option<Self>> {
        if pairs.is_empty() {
            return Ok(None);
        }
        let d = circular.len();
        let invalid = |msg: String| Err(FabError::invalid("flow.relative_angles", msg));
        for (k, &(j, i)) in pairs.iter().enumerate() {
            if j >= d || i >= d {
                return invalid(format!("pair ({j}, {i}) out of range for dimension {d}"));
            }
            if !circular[j] || !circular[i] {
                return invalid(format!(
                    "pair ({j}, {i}): both coordinates must be listed in `circular`"
                ));
            }
            if j == i || pairs[..k].iter().any(|&(j2, _)| j2 == j) {
                return invalid(format!(
                    "pair ({j}, {i}): each angle can be relative to one other angle only"
                ));
            }
            if pairs.iter().any(|&(j2, _)| j2 == i) {
                return invalid(format!(
                    "pair ({j}, {i}): {i} is itself relative to another angle"
                ));
            }
        }
        let mut s = vec![E::zero(); d * d];
        for &(j, i) in pairs {
            s[i * d + j] = E::one();
        }
        Ok(Some(Self {
            s: dev.tensor_from_vec(s, (d, d)),
        }))
    }

    /// Sampling direction before wrapping: h + h·S (x_j = h_j + h_i).
    pub(crate) fn forward<T: Tape<E, Cpu>>(&self, h: M<E, T>) -> M<E, T> {
        let (h1, h2) = dup2(h);
        h1 + h2.matmul(self.s.clone())
    }

    /// Density direction before wrapping: x − x·S (h_j = x_j − x_i; x_i is unchanged).
    pub(crate) fn inverse<T: Tape<E, Cpu>>(&self, x: M<E, T>) -> M<E, T> {
        let (x1, x2) = dup2(x);
        x1 - x2.matmul(self.s.clone())
    }
}
