//! Bonded terms of the Amber force field (OpenMM's HarmonicBond, HarmonicAngle and PeriodicTorsion
//! forces), energies in kJ/mol with analytic Cartesian gradients; positions in nm.
//!
//! * bonds: k (r − r₀)², k = prmtop value × 418.4 kJ/mol/nm² (Amber convention, no ½);
//! * angles: k (θ − θ₀)², k × 4.184 kJ/mol/rad²;
//! * torsions, proper and improper: k (1 + cos(nφ − phase)), k × 4.184 kJ/mol, φ the IUPAC dihedral
//!   atan2(|b₂| b₁·(b₂×b₃), (b₁×b₂)·(b₂×b₃)) with b₁ = x_j − x_i, b₂ = x_k − x_j, b₃ = x_l − x_k.
//!   The prmtop phases 3.141594 (not π) are kept, as the spec requires.

use crate::molecule::formats::prmtop::Prmtop;
use crate::molecule::numeric::lanes::Lane;
use crate::molecule::numeric::vec3::{add_to, cross, dot, scale, sub};

/// kcal → kJ.
const KCAL: f64 = 4.184;

/// Energies of the three bonded terms (kJ/mol; per lane for SIMD kernels).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BondedEnergy<S = f64> {
    /// Harmonic bonds.
    pub bond: S,
    /// Harmonic angles.
    pub angle: S,
    /// Periodic torsions (proper and improper).
    pub torsion: S,
}

/// Bonded parameters in OpenMM units.
#[derive(Debug, Clone)]
pub struct BondedTerms {
    bonds: Vec<([usize; 2], f64, f64)>,
    angles: Vec<([usize; 3], f64, f64)>,
    /// (atoms, k, periodicity n, cos phase, sin phase).
    torsions: Vec<([usize; 4], f64, u32, f64, f64)>,
}

impl BondedTerms {
    /// Converts the prmtop's bonded parameters to kJ/mol, nm and rad.
    pub fn from_prmtop(top: &Prmtop) -> Self {
        Self {
            bonds: top
                .bonds
                .iter()
                .map(|b| (b.atoms, b.k * KCAL * 100.0, b.r0 / 10.0))
                .collect(),
            angles: top
                .angles
                .iter()
                .map(|a| (a.atoms, a.k * KCAL, a.theta0))
                .collect(),
            torsions: top
                .dihedrals
                .iter()
                .map(|d| {
                    (
                        d.atoms,
                        d.k * KCAL,
                        d.periodicity.round() as u32,
                        d.phase.cos(),
                        d.phase.sin(),
                    )
                })
                .collect(),
        }
    }

    /// Energies of one conformation `x` (atoms × 3, nm; one per lane); adds ∂E/∂x into `grad`.
    pub fn energy_and_grad<S: Lane>(&self, x: &[[S; 3]], grad: &mut [[S; 3]]) -> BondedEnergy<S> {
        let zero = S::splat(0.0);
        let mut e = BondedEnergy {
            bond: zero,
            angle: zero,
            torsion: zero,
        };
        for &([i, j], k, r0) in &self.bonds {
            let d = sub(x[i], x[j]);
            let r = dot(d, d).sqrt();
            e.bond += (r - r0) * k * (r - r0);
            let de_dr = (r - r0) * (2.0 * k) / r;
            add_to(&mut grad[i], d, de_dr);
            add_to(&mut grad[j], d, -de_dr);
        }
        for &([i, j, l], k, theta0) in &self.angles {
            let (u, v) = (sub(x[i], x[j]), sub(x[l], x[j]));
            let (uu, vv, uv) = (dot(u, u), dot(v, v), dot(u, v));
            let norm = (uu * vv).sqrt();
            let cos = (uv / norm).max(S::splat(-1.0)).min(S::splat(1.0));
            let theta = cross(u, v);
            let theta = dot(theta, theta).sqrt().atan2(uv);
            e.angle += (theta - theta0) * k * (theta - theta0);
            let sin = (-(cos * cos) + 1.0).sqrt().max(S::splat(1e-12));
            // dθ/du = −(v/(|u||v|) − cos·u/|u|²)/sin θ, and symmetrically for v.
            let de = (theta - theta0) * (2.0 * k) / -sin;
            let du = [
                v[0] / norm - cos * u[0] / uu,
                v[1] / norm - cos * u[1] / uu,
                v[2] / norm - cos * u[2] / uu,
            ];
            let dv = [
                u[0] / norm - cos * v[0] / vv,
                u[1] / norm - cos * v[1] / vv,
                u[2] / norm - cos * v[2] / vv,
            ];
            add_to(&mut grad[i], du, de);
            add_to(&mut grad[l], dv, de);
            add_to(&mut grad[j], du, -de);
            add_to(&mut grad[j], dv, -de);
        }
        for &([a, b, c, d], k, n, cos_p, sin_p) in &self.torsions {
            let (b1, b2, b3) = (sub(x[b], x[a]), sub(x[c], x[b]), sub(x[d], x[c]));
            let (n1, n2) = (cross(b1, b2), cross(b2, b3));
            let b2n = dot(b2, b2).sqrt();
            // cos φ and sin φ without atan2, then cos nφ, sin nφ by the angle-addition recurrence.
            let inv = S::splat(1.0) / (dot(n1, n1) * dot(n2, n2)).sqrt();
            let (cos1, sin1) = (dot(n1, n2) * inv, b2n * dot(b1, n2) * inv);
            let (mut cos_n, mut sin_n) = (S::splat(1.0), zero);
            for _ in 0..n {
                (cos_n, sin_n) = (cos_n * cos1 - sin_n * sin1, sin_n * cos1 + cos_n * sin1);
            }
            // cos(nφ − p) and sin(nφ − p).
            let cos_t = cos_n * cos_p + sin_n * sin_p;
            let sin_t = sin_n * cos_p - cos_n * sin_p;
            e.torsion += (cos_t + 1.0) * k;
            let de_dphi = sin_t * (-k * n as f64);
            // Blondel & Karplus (1996): gradients of φ for the four atoms.
            let ga = scale(n1, -b2n / dot(n1, n1));
            let gd = scale(n2, b2n / dot(n2, n2));
            let (f1, f3) = (dot(b1, b2) / (b2n * b2n), dot(b3, b2) / (b2n * b2n));
            add_to(&mut grad[a], ga, de_dphi);
            add_to(&mut grad[d], gd, de_dphi);
            for dim in 0..3 {
                grad[b][dim] += de_dphi * (f3 * gd[dim] - (f1 + 1.0) * ga[dim]);
                grad[c][dim] += de_dphi * (f1 * ga[dim] - (f3 + 1.0) * gd[dim]);
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::molecule::numeric::vec3::Vec3;

    #[test]
    fn each_term_gradient_matches_finite_differences_on_a_random_geometry() {
        let top = Prmtop::parse(crate::molecule::ALANINE_DIPEPTIDE_PRMTOP, "p").unwrap();
        let full = BondedTerms::from_prmtop(&top);
        // A random, non-physical geometry: every term far from its minimum.
        use rand::Rng;
        let mut rng = fab_core::rng::seeded(1);
        let mut rnd = || rng.gen_range(-0.5..0.5);
        let x: Vec<Vec3> = (0..22)
            .map(|i| {
                [
                    0.15 * (i % 5) as f64 + 0.05 * rnd(),
                    0.12 * (i / 5) as f64 + 0.05 * rnd(),
                    0.1 * rnd(),
                ]
            })
            .collect();
        for which in 0..3 {
            let t = BondedTerms {
                bonds: if which == 0 {
                    full.bonds.clone()
                } else {
                    vec![]
                },
                angles: if which == 1 {
                    full.angles.clone()
                } else {
                    vec![]
                },
                torsions: if which == 2 {
                    full.torsions.clone()
                } else {
                    vec![]
                },
            };
            let mut g = vec![[0.0; 3]; 22];
            t.energy_and_grad(&x, &mut g);
            let f = |x: &[Vec3]| {
                let e = t.energy_and_grad(x, &mut vec![[0.0; 3]; 22]);
                e.bond + e.angle + e.torsion
            };
            let h = 1e-7;
            for a in 0..22 {
                for d in 0..3 {
                    let (mut xp, mut xm) = (x.clone(), x.clone());
                    xp[a][d] += h;
                    xm[a][d] -= h;
                    let fd = (f(&xp) - f(&xm)) / (2.0 * h);
                    assert!(
                        (fd - g[a][d]).abs() < 1e-5 * (1.0 + fd.abs()),
                        "term {which} atom {a} dim {d}: fd {fd} vs {}",
                        g[a][d]
                    );
                }
            }
        }
    }
}
