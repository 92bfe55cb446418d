//! OBC1 generalised Born implicit solvent with the ACE surface-area term (OpenMM's GBSAOBC1Force as
//! a CustomGBForce), energies in kJ/mol with analytic gradients; positions in nm.
//!
//! With ρᵢ = RADII/10, offset radius oᵢ = ρᵢ − 0.009 and scaled radius sᵢ = SCREENᵢ·oᵢ:
//!   Iᵢ = Σ_{j≠i} Iᵢⱼ,  Iᵢⱼ = ½[1/L − 1/U + ¼(r − sⱼ²/r)(1/U² − 1/L²) + ln(L/U)/(2r)]
//!        (U = r + sⱼ, L = max(oᵢ, |r − sⱼ|); 0 if r + sⱼ < oᵢ),
//!   Bᵢ = 1 / (1/oᵢ − tanh(αψ − βψ² + γψ³)/ρᵢ), ψ = Iᵢ oᵢ, (α, β, γ) = (0.8, 0, 2.909125),
//!   E_GB = −½kD Σᵢ qᵢ²/Bᵢ − kD Σ_{i<j} qᵢqⱼ/fᵢⱼ, fᵢⱼ = √(r² + BᵢBⱼ exp(−r²/(4BᵢBⱼ))),
//!   E_ACE = Σᵢ 28.3919551 (ρᵢ + 0.14)² (ρᵢ/Bᵢ)⁶,
//! k = 138.935485 (OpenMM's literal), D = 1/ε_in − 1/ε_out = 1 − 1/78.5. All sums run over all pairs,
//! bonded ones included. The gradient adds the explicit r-dependence of fᵢⱼ to the chain rule through
//! the Born radii: ∂E/∂Bᵢ · dBᵢ/dψᵢ · oᵢ · dIᵢⱼ/dr.

use crate::aldp::lanes::Lane;
use crate::aldp::pair_geometry::{all_pairs, PairGeometry};
use crate::aldp::prmtop::Prmtop;

const K_GB: f64 = 138.935485;
const EPS_SOLVENT: f64 = 78.5;
const OFFSET: f64 = 0.009;
const ALPHA: f64 = 0.8;
const BETA: f64 = 0.0;
const GAMMA: f64 = 2.909125;
const ACE: f64 = 28.3919551;
const PROBE: f64 = 0.14;

/// GB energies (kJ/mol) split as the reference breakdown (per lane for SIMD kernels).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GbEnergy<S = f64> {
    pub self_energy: S,
    pub pair: S,
    pub ace: S,
}

impl<S: Lane> GbEnergy<S> {
    /// OpenMM's CustomGBForce energy.
    pub fn total(&self) -> S {
        self.self_energy + self.pair + self.ace
    }
}

/// OBC1 parameters of a molecule.
#[derive(Debug, Clone)]
pub struct GbObc {
    charges: Vec<f64>,
    rho: Vec<f64>,
    offset_radius: Vec<f64>,
    scaled_radius: Vec<f64>,
}

/// Iᵢⱼ and dIᵢⱼ/dr for distance r (with 1/r), offset radius `o` of atom i and scaled radius `s`
/// of atom j. Written with reciprocals so a pair costs one log and three divisions, and with
/// selects instead of branches so SIMD lanes can take different cases.
#[inline(always)]
fn born_integral<S: Lane>(r: S, inv_r: S, o: f64, s: f64) -> (S, S) {
    let (zero, one, os) = (S::splat(0.0), S::splat(1.0), S::splat(o));
    let r_minus_s = r - s;
    let far = r_minus_s.abs().gt(os);
    // L = max(o, |r − s|) and dL/dr.
    let l = S::select(far, r_minus_s.abs(), os);
    let dl = S::select(far, S::select(r_minus_s.gt(zero), one, -one), zero);
    let inv_u = one / (r + s);
    let inv_l = one / l;
    let (inv_u2, inv_l2) = (inv_u * inv_u, inv_l * inv_l);
    let s2_inv_r = inv_r * (s * s);
    let q = r - s2_inv_r;
    let inv = inv_u2 - inv_l2;
    let log = (l * inv_u).ln();
    let value = (inv_l - inv_u + q * 0.25 * inv + log * 0.5 * inv_r) * 0.5;
    let derivative = (-dl * inv_l2
        + inv_u2
        + (s2_inv_r * inv_r + 1.0) * 0.25 * inv
        + q * 0.5 * (dl * inv_l2 * inv_l - inv_u2 * inv_u)
        + inv_r * 0.5 * (dl * inv_l - inv_u - log * inv_r))
        * 0.5;
    // Atom i lies inside the scaled sphere of j (r + s < o): no contribution.
    let inside = (r + s).lt(os);
    (
        S::select(inside, zero, value),
        S::select(inside, zero, derivative),
    )
}

impl GbObc {
    /// Parameters from the prmtop's RADII, SCREEN and charges (in e).
    pub fn from_prmtop(top: &Prmtop, charges: &[f64]) -> Self {
        let rho: Vec<f64> = top.gb_radii.iter().map(|r| r / 10.0).collect();
        let offset_radius: Vec<f64> = rho.iter().map(|r| r - OFFSET).collect();
        let scaled_radius = offset_radius
            .iter()
            .zip(&top.gb_screen)
            .map(|(o, s)| o * s)
            .collect();
        Self {
            charges: charges.to_vec(),
            rho,
            offset_radius,
            scaled_radius,
        }
    }

    /// Born radii Bᵢ of one conformation.
    pub fn born_radii(&self, x: &[[f64; 3]]) -> Vec<f64> {
        self.born(&PairGeometry::new(x, &all_pairs(x.len()))).radii
    }

    /// Born radii, dBᵢ/dIᵢ and, per pair p = (i, j), dIᵢⱼ/dr and dIⱼᵢ/dr.
    fn born<S: Lane>(&self, geo: &PairGeometry<S>) -> Born<S> {
        let n = geo.n;
        let zero = S::splat(0.0);
        let mut integral = vec![zero; n];
        let mut d_integral = Vec::with_capacity(geo.pairs.len());
        for (p, &(i, j)) in geo.pairs.iter().enumerate() {
            let (r, inv_r) = (geo.r[p], geo.inv_r[p]);
            let (v_ij, d_ij) =
                born_integral(r, inv_r, self.offset_radius[i], self.scaled_radius[j]);
            let (v_ji, d_ji) =
                born_integral(r, inv_r, self.offset_radius[j], self.scaled_radius[i]);
            integral[i] += v_ij;
            integral[j] += v_ji;
            d_integral.push([d_ij, d_ji]);
        }
        let mut radii = Vec::with_capacity(n);
        let mut d_radii = Vec::with_capacity(n);
        for i in 0..n {
            let (o, rho) = (self.offset_radius[i], self.rho[i]);
            let psi = integral[i] * o;
            let t = (psi * ALPHA - psi * BETA * psi + psi * GAMMA * psi * psi).tanh();
            let b = S::splat(1.0) / (S::splat(1.0 / o) - t / rho);
            radii.push(b);
            // dB/dI = B² (1 − tanh²)/ρ · (α − 2βψ + 3γψ²) · o
            d_radii.push(
                b * b * (-(t * t) + 1.0) / rho
                    * (-(psi * (2.0 * BETA)) + ALPHA + psi * (3.0 * GAMMA) * psi)
                    * o,
            );
        }
        Born {
            radii,
            d_radii,
            d_integral,
        }
    }

    /// Energies of one conformation (atoms × 3, nm); adds ∂E/∂x into `grad`.
    pub fn energy_and_grad(&self, x: &[[f64; 3]], grad: &mut [[f64; 3]]) -> GbEnergy {
        self.energy_and_grad_with(&PairGeometry::new(x, &all_pairs(x.len())), grad)
    }

    /// As [`Self::energy_and_grad`], from precomputed pair geometry (one conformation per lane).
    pub fn energy_and_grad_with<S: Lane>(
        &self,
        geo: &PairGeometry<S>,
        grad: &mut [[S; 3]],
    ) -> GbEnergy<S> {
        let n = geo.n;
        let kd = K_GB * (1.0 - 1.0 / EPS_SOLVENT);
        let born = self.born(geo);
        let b = &born.radii;
        let q = &self.charges;
        let zero = S::splat(0.0);
        let mut e = GbEnergy {
            self_energy: zero,
            pair: zero,
            ace: zero,
        };
        // ∂E/∂Bᵢ accumulated from every term, then pushed through the Born radii.
        let mut de_db = vec![zero; n];
        for i in 0..n {
            let self_coefficient = S::splat(0.5 * kd * q[i] * q[i]);
            e.self_energy -= self_coefficient / b[i];
            de_db[i] += self_coefficient / (b[i] * b[i]);
            let ratio = S::splat(self.rho[i]) / b[i];
            let ratio3 = ratio * ratio * ratio;
            let ace = ratio3 * (ACE * (self.rho[i] + PROBE) * (self.rho[i] + PROBE)) * ratio3;
            e.ace += ace;
            de_db[i] -= ace * 6.0 / b[i];
        }
        // 1/(4BᵢBⱼ) from per-atom reciprocals: one division per atom instead of one per pair.
        let half_inv_b: Vec<S> = b.iter().map(|&bi| S::splat(0.5) / bi).collect();
        for (p, &(i, j)) in geo.pairs.iter().enumerate() {
            let r = geo.r[p];
            let r2 = r * r;
            let bb = b[i] * b[j];
            let inv_4bb = half_inv_b[i] * half_inv_b[j];
            let ex = (-r2 * inv_4bb).exp();
            let f2 = r2 + bb * ex;
            let inv_f = S::splat(1.0) / f2.sqrt();
            let qq = kd * q[i] * q[j];
            e.pair -= inv_f * qq;
            // ∂E/∂f = qq/f²; ∂f/∂r · 1/r = (1 − ex/4)/f; ∂f/∂Bᵢ = Bⱼ ex (1 + r²/(4BᵢBⱼ)) / (2f).
            let de_df = inv_f * qq * inv_f;
            geo.add_radial(p, de_df * (-(ex * 0.25) + 1.0) * inv_f, grad);
            let common = de_df * ex * (r2 * inv_4bb + 1.0) * 0.5 * inv_f;
            de_db[i] += common * b[j];
            de_db[j] += common * b[i];
        }
        // Chain rule through Iᵢ = Σⱼ Iᵢⱼ(rᵢⱼ), both directions of each pair at once.
        let c: Vec<S> = (0..n).map(|i| de_db[i] * born.d_radii[i]).collect();
        for (p, &(i, j)) in geo.pairs.iter().enumerate() {
            let [d_ij, d_ji] = born.d_integral[p];
            geo.add_radial(p, (c[i] * d_ij + c[j] * d_ji) * geo.inv_r[p], grad);
        }
        e
    }
}

/// Born radii and the derivatives the gradient needs.
struct Born<S> {
    radii: Vec<S>,
    d_radii: Vec<S>,
    d_integral: Vec<[S; 2]>,
}
