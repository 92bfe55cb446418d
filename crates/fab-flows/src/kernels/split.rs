//! Selecting a subset of coordinates and scattering it back, by multiplication with constant 0/1
//! matrices; a coupling layer's [`Split`] is two complementary [`Subset`]s.
//!
//! x·S picks columns exactly (products with 1.0, sums with 0.0), and the gradient of a matmul is
//! correct in dfdx, unlike `slice` backward (see the crate docs). For the small dimensions of
//! coupling layers the extra matmuls cost little next to the conditioner MLP.

use dfdx::prelude::*;

use crate::kernels::tape::dup2;
use crate::real::{Real, M};

/// A fixed subset of the columns {0..d}.
#[derive(Debug, Clone)]
pub struct Subset<E: Real = f64> {
    /// The selected columns, in order.
    idx: Vec<usize>,
    /// (d, k) selection matrix.
    pick: M<E>,
    /// (k, d) scatter-back matrix (its transpose).
    put: M<E>,
}

impl<E: Real> Subset<E>
where
    Cpu: Device<E>,
{
    /// The columns `idx` (distinct, each < d) of d.
    pub fn new(dev: &Cpu, d: usize, idx: &[usize]) -> Self {
        let k = idx.len();
        let mut pick = vec![E::zero(); d * k];
        let mut put = vec![E::zero(); k * d];
        for (j, &i) in idx.iter().enumerate() {
            pick[i * k + j] = E::one();
            put[j * d + i] = E::one();
        }
        Self {
            idx: idx.to_vec(),
            pick: dev.tensor_from_vec(pick, (d, k)),
            put: dev.tensor_from_vec(put, (k, d)),
        }
    }

    /// The selected columns, in order.
    pub fn indices(&self) -> &[usize] {
        &self.idx
    }

    /// The subset's columns of x (n, d) → (n, k).
    pub fn pick<T: Tape<E, Cpu>>(&self, x: M<E, T>) -> M<E, T> {
        x.matmul(self.pick.clone())
    }

    /// A block (n, k) placed back into d columns, zeros elsewhere.
    pub fn put<T: Tape<E, Cpu>>(&self, y: M<E, T>) -> M<E, T> {
        y.matmul(self.put.clone())
    }
}

/// A fixed partition of {0..d} into `cond` and `trans` index sets.
#[derive(Debug, Clone)]
pub struct Split<E: Real = f64> {
    cond: Subset<E>,
    trans: Subset<E>,
}

impl<E: Real> Split<E>
where
    Cpu: Device<E>,
{
    /// A split of `d` coordinates into `cond` and `trans` (disjoint, covering 0..d).
    pub fn new(dev: &Cpu, d: usize, cond: &[usize], trans: &[usize]) -> Self {
        Self {
            cond: Subset::new(dev, d, cond),
            trans: Subset::new(dev, d, trans),
        }
    }

    /// The conditioning subset.
    pub fn cond(&self) -> &Subset<E> {
        &self.cond
    }

    /// The transformed subset.
    pub fn trans(&self) -> &Subset<E> {
        &self.trans
    }

    /// (x_cond, x_trans) from x of shape (n, d).
    pub fn split<T: Tape<E, Cpu>>(&self, x: M<E, T>) -> (M<E, T>, M<E, T>) {
        let (a, b) = dup2(x);
        (self.cond.pick(a), self.trans.pick(b))
    }

    /// x of shape (n, d) from its two parts.
    pub fn merge<T: Tape<E, Cpu>>(&self, x_cond: M<E, T>, x_trans: M<E, T>) -> M<E, T> {
        self.cond.put(x_cond) + self.trans.put(x_trans)
    }
}
