//! Displacements and distances of every atom pair (i < j) of one conformation, computed once and
//! shared by the Coulomb/LJ and GB terms (they together visit all 231 pairs of alanine dipeptide).

use crate::aldp::vec3::Vec3;

/// Pair geometry in row-major order of the pairs (0,1), (0,2), …, (0,n−1), (1,2), ….
#[derive(Debug, Clone)]
pub struct PairGeometry<'a> {
    /// Number of atoms.
    pub n: usize,
    /// The pairs (i, j), i < j (see [`all_pairs`]).
    pub pairs: &'a [(usize, usize)],
    /// xᵢ − xⱼ.
    pub d: Vec<Vec3>,
    /// |xᵢ − xⱼ|.
    pub r: Vec<f64>,
    /// 1/|xᵢ − xⱼ|.
    pub inv_r: Vec<f64>,
}

/// All pairs (i, j), i < j, of `n` atoms in row-major order.
pub fn all_pairs(n: usize) -> Vec<(usize, usize)> {
    (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .collect()
}

impl<'a> PairGeometry<'a> {
    /// The geometry of conformation `x` (atoms × 3, nm) over `pairs` = [`all_pairs`]`(x.len())`.
    pub fn new(x: &[Vec3], pairs: &'a [(usize, usize)]) -> Self {
        let n = x.len();
        debug_assert_eq!(pairs.len(), n * (n - 1) / 2);
        let mut geo = Self {
            n,
            d: vec![[0.0; 3]; pairs.len()],
            r: vec![0.0; pairs.len()],
            inv_r: vec![0.0; pairs.len()],
            pairs,
        };
        for (p, &(i, j)) in geo.pairs.iter().enumerate() {
            let v = [x[i][0] - x[j][0], x[i][1] - x[j][1], x[i][2] - x[j][2]];
            let r = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
            geo.d[p] = v;
            geo.r[p] = r;
            geo.inv_r[p] = 1.0 / r;
        }
        geo
    }

    /// Index of pair (i, j), i < j, in the arrays.
    pub fn index(n: usize, i: usize, j: usize) -> usize {
        i * n - i * (i + 1) / 2 + (j - i - 1)
    }

    /// Adds s·(xᵢ − xⱼ) to ∂E/∂xᵢ and subtracts it from ∂E/∂xⱼ: the gradient of a pair term
    /// whose derivative w.r.t. r is s·r.
    #[inline(always)]
    pub fn add_radial(&self, p: usize, s: f64, grad: &mut [Vec3]) {
        let (i, j) = self.pairs[p];
        let d = self.d[p];
        for k in 0..3 {
            grad[i][k] += s * d[k];
            grad[j][k] -= s * d[k];
        }
    }
}
