//! Coulomb and Lennard-Jones terms of the Amber force field without cutoff (OpenMM NonbondedForce
//! with NoCutoff), energies in kJ/mol with analytic gradients; positions in nm.
//!
//! Pairs in the prmtop exclusion list get no interaction, except 1-4 pairs (ends of a proper,
//! non-skipped torsion), which get Coulomb / scee and LJ with ε / scnb (the torsion's factors from
//! the prmtop, Amber's 1.2 and 2.0 by default). All other pairs get
//! k_e qᵢqⱼ/r + 4εᵢⱼ((σᵢⱼ/r)¹² − (σᵢⱼ/r)⁶) with Lorentz-Berthelot combination of per-atom σ, ε taken
//! from the diagonal of the prmtop A/B tables (σ = (2A/B)^(1/6)·2^(−1/6), ε = B²/4A).

use std::collections::{HashMap, HashSet};

use crate::molecule::forcefield::pair_geometry::{all_pairs, pair_index, PairGeometry};
use crate::molecule::formats::prmtop::Prmtop;
use crate::molecule::numeric::lanes::Lane;

/// Coulomb constant 1/(4πε₀) in kJ·nm/(mol·e²) (OpenMM ≥ 7.5, CODATA 2018).
pub const COULOMB: f64 = 138.935_457_644_381_98;
/// Amber's charge unit: prmtop CHARGE / 18.2223 = e.
pub const AMBER_CHARGE: f64 = 18.2223;

/// Nonbonded energies (kJ/mol) split as OpenMM's reference breakdown (per lane for SIMD kernels).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NonbondedEnergy<S = f64> {
    /// Coulomb energy of 1-4 pairs (scaled).
    pub coulomb_14: S,
    /// Lennard-Jones energy of 1-4 pairs (scaled).
    pub lj_14: S,
    /// Coulomb energy of the other non-excluded pairs.
    pub coulomb: S,
    /// Lennard-Jones energy of the other non-excluded pairs.
    pub lj: S,
}

impl<S: Lane> NonbondedEnergy<S> {
    /// Sum of the four parts (OpenMM's NonbondedForce energy).
    pub fn total(&self) -> S {
        self.coulomb_14 + self.lj_14 + self.coulomb + self.lj
    }
}

/// One interacting pair with its combined parameters.
#[derive(Debug, Clone, Copy)]
struct Pair {
    /// Index into [`PairGeometry`]'s pair list.
    index: usize,
    /// k_e qᵢ qⱼ (already divided by scee for 1-4 pairs).
    qq: f64,
    sigma: f64,
    /// 4ε (already divided by scnb for 1-4 pairs).
    four_eps: f64,
    is_14: bool,
}

/// Nonbonded pair list of a molecule.
#[derive(Debug, Clone)]
pub struct Nonbonded {
    pairs: Vec<Pair>,
    /// Charges in e (also used by the GB term).
    pub charges: Vec<f64>,
}

impl Nonbonded {
    /// Pairs and parameters from a prmtop.
    pub fn from_prmtop(top: &Prmtop) -> Self {
        let n = top.n_atoms();
        let charges: Vec<f64> = top.charges.iter().map(|q| q / AMBER_CHARGE).collect();
        // Per-atom σ (nm) and ε (kJ/mol) from the diagonal of the A/B tables.
        let (sigma, eps): (Vec<f64>, Vec<f64>) = (0..n)
            .map(|i| {
                let t = top.lj_type[i];
                let idx = (top.nonbonded_parm_index[t * top.n_types + t] - 1).max(0) as usize;
                let (a, b) = (top.lj_a[idx], top.lj_b[idx]);
                if a <= 0.0 || b <= 0.0 {
                    (0.1, 0.0)
                } else {
                    let r_min = (2.0 * a / b).powf(1.0 / 6.0);
                    (
                        r_min * 2f64.powf(-1.0 / 6.0) / 10.0,
                        b * b / (4.0 * a) * 4.184,
                    )
                }
            })
            .unzip();
        let excluded: HashSet<(usize, usize)> = top
            .exclusions
            .iter()
            .enumerate()
            .flat_map(|(i, ex)| ex.iter().map(move |&j| (i.min(j), i.max(j))))
            .collect();
        // 1-4 pairs with their Coulomb and LJ divisors (scee, scnb) from the torsion that names
        // them; when several torsions share the ends, the first one's factors count (Amber's rule).
        let mut one_four: HashMap<(usize, usize), (f64, f64)> = HashMap::new();
        for d in top.dihedrals.iter().filter(|d| !d.skip_14 && !d.improper) {
            let key = (d.atoms[0].min(d.atoms[3]), d.atoms[0].max(d.atoms[3]));
            one_four.entry(key).or_insert((d.scee, d.scnb));
        }
        let mut pairs = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                let scale = one_four.get(&(i, j));
                let is_14 = scale.is_some();
                if excluded.contains(&(i, j)) && !is_14 {
                    continue;
                }
                let (cs, ls) = scale.map_or((1.0, 1.0), |(scee, scnb)| (1.0 / scee, 1.0 / scnb));
                pairs.push(Pair {
                    index: pair_index(n, i, j),
                    qq: COULOMB * charges[i] * charges[j] * cs,
                    sigma: 0.5 * (sigma[i] + sigma[j]),
                    four_eps: 4.0 * (eps[i] * eps[j]).sqrt() * ls,
                    is_14,
                });
            }
        }
        Self { pairs, charges }
    }

    /// Number of interacting pairs (full and 1-4).
    pub fn n_pairs(&self) -> (usize, usize) {
        let n14 = self.pairs.iter().filter(|p| p.is_14).count();
        (self.pairs.len() - n14, n14)
    }

    /// Energies of one conformation (atoms × 3, nm); adds ∂E/∂x into `grad`.
    pub fn energy_and_grad(&self, x: &[[f64; 3]], grad: &mut [[f64; 3]]) -> NonbondedEnergy {
        let pairs = all_pairs(x.len());
        let mut geo = PairGeometry::new(x, &pairs);
        let e = self.energy_and_grad_with(&mut geo);
        geo.scatter_radial(grad);
        e
    }

    /// As [`Self::energy_and_grad`], from precomputed pair geometry (one conformation per lane);
    /// the gradient goes into the geometry's pair accumulator ([`PairGeometry::add_radial`]).
    pub fn energy_and_grad_with<S: Lane>(&self, geo: &mut PairGeometry<S>) -> NonbondedEnergy<S> {
        let zero = S::splat(0.0);
        let mut e = NonbondedEnergy {
            coulomb_14: zero,
            lj_14: zero,
            coulomb: zero,
            lj: zero,
        };
        for p in &self.pairs {
            let inv_r = geo.inv_r[p.index];
            let inv_r2 = inv_r * inv_r;
            let coulomb = inv_r * p.qq;
            let s2 = inv_r2 * (p.sigma * p.sigma);
            let s6 = s2 * s2 * s2;
            let lj = (s6 * s6 - s6) * p.four_eps;
            let de_dr_over_r = (-coulomb - (s6 * 12.0 * s6 - s6 * 6.0) * p.four_eps) * inv_r2;
            geo.add_radial(p.index, de_dr_over_r);
            if p.is_14 {
                e.coulomb_14 += coulomb;
                e.lj_14 += lj;
            } else {
                e.coulomb += coulomb;
                e.lj += lj;
            }
        }
        e
    }
}
