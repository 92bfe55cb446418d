//! Displacements and distances of every atom pair (i < j) of one conformation, computed once and
//! shared by the Coulomb/LJ and GB terms (they together visit all 231 pairs of alanine dipeptide).

use crate::molecule::numeric::lanes::Lane;

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
    /// (∂E/∂r)/r of every pair, summed over the pair terms that visit it; turned into ∂E/∂x once
    /// by [`Self::scatter_radial`] instead of once per term (each scatter touches six gradient
    /// entries, an accumulation one).
    pub radial: Vec<S>,
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
        let mut geo = Self::zeros(x.len(), pairs);
        geo.set(x);
        geo
    }

    /// Buffers for conformations of `n` atoms over `pairs`, to be filled by [`Self::set`].
    pub fn zeros(n: usize, pairs: &'a [(usize, usize)]) -> Self {
        debug_assert_eq!(pairs.len(), n * (n - 1) / 2);
        let (m, zero) = (pairs.len(), S::splat(0.0));
        Self {
            n,
            d: vec![[zero; 3]; m],
            r: vec![zero; m],
            inv_r: vec![zero; m],
            radial: vec![zero; m],
            pairs,
        }
    }

    /// Recomputes the geometry for conformation `x` (same atom count) and clears the pair
    /// accumulator, reusing the buffers.
    pub fn set(&mut self, x: &[[S; 3]]) {
        debug_assert_eq!(x.len(), self.n);
        for ((&(i, j), d), r) in self.pairs.iter().zip(&mut self.d).zip(&mut self.r) {
            *d = [x[i][0] - x[j][0], x[i][1] - x[j][1], x[i][2] - x[j][2]];
            *r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        }
        // 1/r two pairs per division (1/a = b/(ab)): divisions are the slow instructions here.
        for (inv, r) in self.inv_r.chunks_mut(2).zip(self.r.chunks(2)) {
            match (inv, r) {
                ([inv_a, inv_b], [a, b]) => {
                    let inv_ab = S::splat(1.0) / (*a * *b);
                    *inv_a = *b * inv_ab;
                    *inv_b = *a * inv_ab;
                }
                (inv, r) => inv[0] = S::splat(1.0) / r[0],
            }
        }
        self.radial.iter_mut().for_each(|s| *s = S::splat(0.0));
    }

    /// Adds s = (∂E/∂r)/r of one pair term to pair `p`'s accumulator.
    #[inline(always)]
    pub fn add_radial(&mut self, p: usize, s: S) {
        self.radial[p] += s;
    }

    /// Adds the accumulated pair terms to ∂E/∂x: sₚ·(xᵢ − xⱼ) to atom i and its negative to j.
    pub fn scatter_radial(&self, grad: &mut [[S; 3]]) {
        for ((&(i, j), d), &s) in self.pairs.iter().zip(&self.d).zip(&self.radial) {
            for k in 0..3 {
                let v = s * d[k];
                grad[i][k] += v;
                grad[j][k] -= v;
            }
        }
    }
}
