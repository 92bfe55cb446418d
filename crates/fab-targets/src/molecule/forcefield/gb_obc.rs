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

use crate::molecule::forcefield::pair_geometry::{all_pairs, PairGeometry};
use crate::molecule::formats::prmtop::Prmtop;
use crate::molecule::numeric::lanes::Lane;

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
    /// Self-energies of the Born radii.
    pub self_energy: S,
    /// Pairwise generalised Born energy.
    pub pair: S,
    /// ACE surface-area term.
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

/// U = r + s, L = max(o, |r − s|) and dL/dr for one direction of a pair: distance r, offset
/// radius `o` of atom i and scaled radius `s` of atom j. Selects instead of branches, so SIMD
/// lanes can take different cases.
#[inline(always)]
fn born_bounds<S: Lane>(r: S, o: f64, s: f64) -> (S, S, S) {
    let (zero, one, os) = (S::splat(0.0), S::splat(1.0), S::splat(o));
    let r_minus_s = r - s;
    let far = r_minus_s.abs().gt(os);
    let l = S::select(far, r_minus_s.abs(), os);
    let dl = S::select(far, S::select(r_minus_s.gt(zero), one, -one), zero);
    (r + s, l, dl)
}

/// Iᵢⱼ and dIᵢⱼ/dr from r, 1/r, the bounds of [`born_bounds`] (U, L, dL/dr) and their
/// reciprocals 1/U, 1/L; `o` and `s` as there.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn born_integral<S: Lane>(
    r: S,
    inv_r: S,
    o: f64,
    s: f64,
    (u, l, dl): (S, S, S),
    inv_u: S,
    inv_l: S,
) -> (S, S) {
    let zero = S::splat(0.0);
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
    let inside = u.lt(S::splat(o));
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
        let pairs = all_pairs(x.len());
        let mut scratch = GbScratch::new(x.len(), pairs.len());
        self.born(&PairGeometry::new(x, &pairs), &mut scratch);
        scratch.radii
    }

    /// Fills `born` with the Born radii, dBᵢ/dIᵢ and, per pair p = (i, j), dIᵢⱼ/dr and dIⱼᵢ/dr.
    fn born<S: Lane>(&self, geo: &PairGeometry<S>, born: &mut GbScratch<S>) {
        let zero = S::splat(0.0);
        born.integral.iter_mut().for_each(|v| *v = zero);
        let pairs = geo.pairs.iter().zip(&geo.r).zip(&geo.inv_r);
        for (((&(i, j), &r), &inv_r), d_integral) in pairs.zip(&mut born.d_integral) {
            let (o_i, s_i) = (self.offset_radius[i], self.scaled_radius[i]);
            let (o_j, s_j) = (self.offset_radius[j], self.scaled_radius[j]);
            let ij = born_bounds(r, o_i, s_j);
            let ji = born_bounds(r, o_j, s_i);
            // One division for the four reciprocals 1/U and 1/L of both directions (divisions
            // are the slowest instructions of this loop): with a = UᵢⱼLᵢⱼ and b = UⱼᵢLⱼᵢ,
            // 1/a = b/(ab), 1/Uᵢⱼ = Lᵢⱼ/a, and so on.
            let (a, b) = (ij.0 * ij.1, ji.0 * ji.1);
            let inv_ab = S::splat(1.0) / (a * b);
            let (inv_a, inv_b) = (b * inv_ab, a * inv_ab);
            let (v_ij, d_ij) = born_integral(r, inv_r, o_i, s_j, ij, ij.1 * inv_a, ij.0 * inv_a);
            let (v_ji, d_ji) = born_integral(r, inv_r, o_j, s_i, ji, ji.1 * inv_b, ji.0 * inv_b);
            born.integral[i] += v_ij;
            born.integral[j] += v_ji;
            *d_integral = [d_ij, d_ji];
        }
        let atoms = born
            .integral
            .iter()
            .zip(&mut born.radii)
            .zip(&mut born.d_radii);
        for (((&integral, b), d_b), (&o, &rho)) in
            atoms.zip(self.offset_radius.iter().zip(&self.rho))
        {
            let psi = integral * o;
            let t = (psi * ALPHA - psi * BETA * psi + psi * GAMMA * psi * psi).tanh();
            *b = S::splat(1.0) / (S::splat(1.0 / o) - t / rho);
            // dB/dI = B² (1 − tanh²)/ρ · (α − 2βψ + 3γψ²) · o
            *d_b = *b * *b * (-(t * t) + 1.0) / rho
                * (-(psi * (2.0 * BETA)) + ALPHA + psi * (3.0 * GAMMA) * psi)
                * o;
        }
    }

    /// Energies of one conformation (atoms × 3, nm); adds ∂E/∂x into `grad`.
    pub fn energy_and_grad(&self, x: &[[f64; 3]], grad: &mut [[f64; 3]]) -> GbEnergy {
        let pairs = all_pairs(x.len());
        let mut geo = PairGeometry::new(x, &pairs);
        let e = self.energy_and_grad_with(&mut geo, &mut GbScratch::new(x.len(), pairs.len()));
        geo.scatter_radial(grad);
        e
    }

    /// As [`Self::energy_and_grad`], from precomputed pair geometry (one conformation per lane)
    /// and with reusable buffers; the gradient goes into the geometry's pair accumulator
    /// ([`PairGeometry::add_radial`]).
    pub fn energy_and_grad_with<S: Lane>(
        &self,
        geo: &mut PairGeometry<S>,
        scratch: &mut GbScratch<S>,
    ) -> GbEnergy<S> {
        let kd = K_GB * (1.0 - 1.0 / EPS_SOLVENT);
        self.born(geo, scratch);
        let GbScratch {
            radii: b,
            d_radii,
            d_integral,
            de_db,
            half_inv_b,
            ..
        } = scratch;
        let q = &self.charges;
        let zero = S::splat(0.0);
        let mut e = GbEnergy {
            self_energy: zero,
            pair: zero,
            ace: zero,
        };
        // ∂E/∂Bᵢ accumulated from every term, then pushed through the Born radii.
        let atoms = b.iter().zip(q).zip(&self.rho).zip(de_db.iter_mut());
        for ((((&b_i, &q_i), &rho), de_db_i), half_inv_b_i) in atoms.zip(half_inv_b.iter_mut()) {
            let self_coefficient = S::splat(0.5 * kd * q_i * q_i);
            let inv_b = S::splat(1.0) / b_i;
            e.self_energy -= self_coefficient * inv_b;
            let ratio = inv_b * rho;
            let ratio3 = ratio * ratio * ratio;
            let ace = ratio3 * (ACE * (rho + PROBE) * (rho + PROBE)) * ratio3;
            e.ace += ace;
            *de_db_i = (self_coefficient * inv_b - ace * 6.0) * inv_b;
            // 1/(4BᵢBⱼ) from per-atom reciprocals: one division per atom instead of one per pair.
            *half_inv_b_i = inv_b * 0.5;
        }
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
            geo.add_radial(p, de_df * (-(ex * 0.25) + 1.0) * inv_f);
            let common = de_df * ex * (r2 * inv_4bb + 1.0) * 0.5 * inv_f;
            de_db[i] += common * b[j];
            de_db[j] += common * b[i];
        }
        // Chain rule through Iᵢ = Σⱼ Iᵢⱼ(rᵢⱼ), both directions of each pair at once; ∂E/∂Bᵢ
        // becomes cᵢ = ∂E/∂Bᵢ · dBᵢ/dIᵢ in place.
        de_db
            .iter_mut()
            .zip(d_radii.iter())
            .for_each(|(c, d)| *c *= *d);
        let c = &*de_db;
        let pairs = geo.pairs.iter().zip(d_integral.iter()).zip(&geo.inv_r);
        for (((&(i, j), &[d_ij, d_ji]), &inv_r), radial) in pairs.zip(geo.radial.iter_mut()) {
            *radial += (c[i] * d_ij + c[j] * d_ji) * inv_r;
        }
        e
    }
}

/// Per-atom and per-pair buffers of the GB kernel (Born radii and the derivatives the gradient
/// needs), kept by the caller so repeated evaluations do not allocate.
#[derive(Debug, Clone)]
pub struct GbScratch<S> {
    integral: Vec<S>,
    radii: Vec<S>,
    d_radii: Vec<S>,
    d_integral: Vec<[S; 2]>,
    de_db: Vec<S>,
    half_inv_b: Vec<S>,
}

impl<S: Lane> GbScratch<S> {
    /// Buffers for `n_atoms` atoms and `n_pairs` pairs.
    pub fn new(n_atoms: usize, n_pairs: usize) -> Self {
        let zero = S::splat(0.0);
        Self {
            integral: vec![zero; n_atoms],
            radii: vec![zero; n_atoms],
            d_radii: vec![zero; n_atoms],
            d_integral: vec![[zero; 2]; n_pairs],
            de_db: vec![zero; n_atoms],
            half_inv_b: vec![zero; n_atoms],
        }
    }
}
