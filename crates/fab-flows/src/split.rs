//! Splitting coordinates into a conditioning part and a transformed part, and merging them back,
//! by multiplication with constant 0/1 selection matrices.
//!
//! x·S picks columns exactly (products with 1.0, sums with 0.0), and the gradient of a matmul is
//! correct in dfdx, unlike `slice` backward (see the crate docs). For the small dimensions of
//! coupling layers the extra matmuls cost little next to the conditioner MLP.

use dfdx::prelude::*;

/// A fixed partition of {0..d} into `cond` and `trans` index sets.
#[derive(Debug, Clone)]
pub struct Split {
    /// (d, |cond|) selection matrix.
    pick_cond: Tensor<(usize, usize), f64, Cpu>,
    /// (d, |trans|) selection matrix.
    pick_trans: Tensor<(usize, usize), f64, Cpu>,
    /// (|cond|, d) scatter-back matrix (transpose of `pick_cond`).
    put_cond: Tensor<(usize, usize), f64, Cpu>,
    /// (|trans|, d) scatter-back matrix.
    put_trans: Tensor<(usize, usize), f64, Cpu>,
}

fn selection(
    dev: &Cpu,
    d: usize,
    idx: &[usize],
    transpose: bool,
) -> Tensor<(usize, usize), f64, Cpu> {
    let k = idx.len();
    let mut m = vec![0.0; d * k];
    for (j, &i) in idx.iter().enumerate() {
        if transpose {
            m[j * d + i] = 1.0;
        } else {
            m[i * k + j] = 1.0;
        }
    }
    let shape = if transpose { (k, d) } else { (d, k) };
    dev.tensor_from_vec(m, shape)
}

impl Split {
    /// A split of `d` coordinates into `cond` and `trans` (disjoint, covering 0..d).
    pub fn new(dev: &Cpu, d: usize, cond: &[usize], trans: &[usize]) -> Self {
        Self {
            pick_cond: selection(dev, d, cond, false),
            pick_trans: selection(dev, d, trans, false),
            put_cond: selection(dev, d, cond, true),
            put_trans: selection(dev, d, trans, true),
        }
    }

    /// (x_cond, x_trans) from x of shape (n, d).
    pub fn split<T: Tape<f64, Cpu>>(
        &self,
        x: Tensor<(usize, usize), f64, Cpu, T>,
    ) -> (
        Tensor<(usize, usize), f64, Cpu, T>,
        Tensor<(usize, usize), f64, Cpu, T>,
    ) {
        let (a, b) = crate::tape::dup2(x);
        (
            a.matmul(self.pick_cond.clone()),
            b.matmul(self.pick_trans.clone()),
        )
    }

    /// x of shape (n, d) from its two parts.
    pub fn merge<T: Tape<f64, Cpu>>(
        &self,
        x_cond: Tensor<(usize, usize), f64, Cpu, T>,
        x_trans: Tensor<(usize, usize), f64, Cpu, T>,
    ) -> Tensor<(usize, usize), f64, Cpu, T> {
        x_cond.matmul(self.put_cond.clone()) + x_trans.matmul(self.put_trans.clone())
    }
}
