//! Displacements and distances of every atom pair (i < j) of one conformation, computed once and
//! shared by the Coulomb/LJ and GB terms (they together visit all 231 pairs of alanine dipeptide).

use crate::aldp::lanes::Lane;

/// Pair geometry in row-major order of the pairs (0,1), (0,2), …, (0,n−1), (1,2), …, for one
/// conformation (`S = f64`) or one per SIMD lane.
#[derive(Debug, Clone)]
pub struct PairGeometry<'a, S: Lane = f64> {
    /// Number of atoms.
    pub n: usize,
    /// The pairs (i, j), i < j (see [`all_pairs`]).
    pub pairs: &'a [(usize, usize)],
    /// xᵢ − xⱼ.
    pub d: Vec<[S; 3]>,
    /// |xᵢ − xⱼ|.
    pub r: Vec<S>,
    /// 1/|xᵢ − xⱼ|.
    pub inv_r: Vec<S>,
}

/// All pairs (i, j), i < j, of `n` atoms in row-major order.
pub fn all_pairs(n: usize) -> Vec<(usize, usize)> {
    (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .collect()
}

/// Index of pair (i, j), i < j, of `n` atoms in the [`PairGeometry`] arrays.
pub fn pair_index(n: usize, i: usize, j: usize) -> usize {
    i * n - i * (i + 1) / 2 + (j - i - 1)
}

impl<'a, S: Lane> PairGeometry<'a, S> {
    /// The geometry of conformation `x` (atoms × 3, nm) over `pairs` = [`all_pairs`]`(x.len())`.
    pub fn new(x: &[[S; 3]], pairs: &'a [(usize, usize)]) -> Self {
        let n = x.len();
        debug_assert_eq!(pairs.len(), n * (n - 1) / 2);
        let mut geo = Self {
            n,
            d: Vec::with_capacity(pairs.len()),
            r: Vec::with_capacity(pairs.len()),
            inv_r: Vec::with_capacity(pairs.len()),
            pairs,
        };
        for &(i, j) in geo.pairs {
            let v = [x[i][0] - x[j][0], x[i][1] - x[j][1], x[i][2] - x[j][2]];
            let r = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
            geo.d.push(v);
            geo.r.push(r);
            geo.inv_r.push(S::splat(1.0) / r);
        }
        geo
    }

    /// Adds s·(xᵢ − xⱼ) to ∂E/∂xᵢ and subtracts it from ∂E/∂xⱼ: the gradient of a pair term
    /// whose derivative w.r.t. r is s·r.
    #[inline(always)]
    pub fn add_radial(&self, p: usize, s: S, grad: &mut [[S; 3]]) {
        let (i, j) = self.pairs[p];
        let d = self.d[p];
        for k in 0..3 {
            let v = s * d[k];
            grad[i][k] += v;
            grad[j][k] -= v;
        }
    }
}
