//! Dense products on row-major slices for the fused flow operations: C ← A·B + β·C with A or B
//! optionally transposed, checked against the slice lengths and run on the calling thread
//! (batch parallelism is done one level up, over row chunks).

use crate::real::Real;

/// A row-major (rows × cols) matrix in a slice, read as itself or as its transpose.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, E> {
    data: &'a [E],
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a, E: Real> Mat<'a, E> {
    /// The (rows × cols) row-major matrix in `data`.
    pub(crate) fn new(data: &'a [E], rows: usize, cols: usize) -> Self {
        assert!(
            data.len() >= rows * cols,
            "matrix of {rows} × {cols} in a slice of {}",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    /// The transpose (no copy).
    pub(crate) fn t(self) -> Self {
        Self {
            transposed: !self.transposed,
            ..self
        }
    }

    /// Shape as read: (rows, cols) of the possibly transposed matrix.
    fn shape(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// (pointer, row stride, column stride) as read.
    fn strides(&self) -> (*const E, isize, isize) {
        let row = self.cols as isize;
        if self.transposed {
            (self.data.as_ptr(), 1, row)
        } else {
            (self.data.as_ptr(), row, 1)
        }
    }
}

/// C ← A·B + β·C, C row-major with `a.rows` (as read) rows; β = 0 overwrites C.
pub(crate) fn gemm<E: Real>(a: Mat<'_, E>, b: Mat<'_, E>, beta: E, c: &mut [E]) {
    let (m, k) = a.shape();
    let (k2, n) = b.shape();
    assert_eq!(k, k2, "inner dimensions of a product");
    assert!(c.len() >= m * n, "product of {m} × {n} into {}", c.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].iter_mut().for_each(|v| *v *= beta);
        return;
    }
    if is_thin(&a, &b) {
        thin(a, b, beta, &mut c[..m * n]);
        return;
    }
    // SAFETY: `Mat::new` and the assert above check that every addressed element lies inside
    // its slice; C is a distinct `&mut` slice, so it overlaps neither input.
    unsafe {
        E::gemm(
            m,
            k,
            n,
            E::one(),
            a.strides(),
            b.strides(),
            beta,
            (c.as_mut_ptr(), n as isize, 1),
        )
    }
}

/// A·B as a new row-major Vec. With β = 0 the product writes every element of C without reading
/// it (matrixmultiply's documented contract), so C is not zero-filled first.
pub(crate) fn product<E: Real>(a: Mat<'_, E>, b: Mat<'_, E>) -> Vec<E> {
    let (m, k) = a.shape();
    let (k2, n) = b.shape();
    assert_eq!(k, k2, "inner dimensions of a product");
    if m == 0 || n == 0 || k == 0 {
        return vec![E::zero(); m * n];
    }
    if is_thin(&a, &b) {
        let mut c = vec![E::zero(); m * n];
        thin(a, b, E::zero(), &mut c);
        return c;
    }
    let mut c = Vec::with_capacity(m * n);
    // SAFETY: the inputs are checked by `Mat::new` and the inner-dimension assert; C points to
    // m·n elements of fresh capacity that gemm writes in full (β = 0), after which the length
    // is set to m·n.
    unsafe {
        E::gemm(
            m,
            k,
            n,
            E::one(),
            a.strides(),
            b.strides(),
            E::zero(),
            (c.as_mut_ptr(), n as isize, 1),
        );
        c.set_len(m * n);
    }
    c
}

/// Whether a product is thin enough (an inner dimension of at most 2, as a 2-D flow's one-column
/// conditioner input, or one or two rows of A read against a row-major B) that packing panels for the
/// blocked GEMM would cost more than the arithmetic. (Narrow outputs gained nothing measurable.)
fn is_thin<E: Real>(a: &Mat<'_, E>, b: &Mat<'_, E>) -> bool {
    let (m, k) = a.shape();
    (k <= 2 || m <= 2) && !b.transposed
}

/// C ← A·B + β·C by direct loops for a thin product (B read untransposed): each row of C adds
/// A's row times B's rows, contiguous (vectorisable) axpys.
fn thin<E: Real>(a: Mat<'_, E>, b: Mat<'_, E>, beta: E, c: &mut [E]) {
    let (m, k) = a.shape();
    let n = b.shape().1;
    let at = |i: usize, p: usize| {
        if a.transposed {
            a.data[p * a.cols + i]
        } else {
            a.data[i * a.cols + p]
        }
    };
    for (i, row) in c.chunks_exact_mut(n).take(m).enumerate() {
        if beta == E::zero() {
            row.fill(E::zero());
        } else if beta != E::one() {
            row.iter_mut().for_each(|v| *v *= beta);
        }
        for p in 0..k {
            let aip = at(i, p);
            let b_row = &b.data[p * n..(p + 1) * n];
            row.iter_mut().zip(b_row).for_each(|(v, &w)| *v += aip * w);
        }
    }
}

/// Adds `bias` to every row of the row-major `out` (rows × bias.len()); with `relu`, then
/// clamps at zero (a dense layer's bias and activation in one pass).
pub(crate) fn add_bias<E: Real>(out: &mut [E], bias: &[E], relu: bool) {
    for row in out.chunks_exact_mut(bias.len()) {
        if relu {
            row.iter_mut()
                .zip(bias)
                .for_each(|(v, &b)| *v = (*v + b).max(E::zero()));
        } else {
            row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
        }
    }
}

/// Adds the column sums of the row-major (rows × cols) `g` to `acc` (a bias gradient).
pub(crate) fn add_column_sums<E: Real>(g: &[E], cols: usize, acc: &mut [E]) {
    for row in g.chunks_exact(cols) {
        acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive product of row-major (m × k) and (k × n).
    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
            }
        }
        c
    }

    fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
        let mut t = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = a[i * cols + j];
            }
        }
        t
    }

    #[test]
    fn products_with_transposes_and_accumulation_match_the_naive_product() {
        // Blocked GEMM shapes and thin ones (each dimension in turn at most 4).
        for (m, k, n) in [
            (9, 7, 6),
            (37, 19, 23),
            (5, 3, 4),
            (1, 9, 7),
            (9, 1, 7),
            (9, 7, 2),
        ] {
            check_shape(m, k, n);
        }
    }

    fn check_shape(m: usize, k: usize, n: usize) {
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.91).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut c = vec![0.0; m * n];
        gemm(Mat::new(&a, m, k), Mat::new(&b, k, n), 0.0, &mut c);
        let close = |x: &[f64], y: &[f64]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-13);
        assert!(close(&c, &want));
        // Aᵀ stored as (k × m), read transposed; Bᵀ likewise; then accumulate onto C.
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        gemm(
            Mat::new(&at, k, m).t(),
            Mat::new(&bt, n, k).t(),
            1.0,
            &mut c,
        );
        let twice: Vec<f64> = want.iter().map(|v| 2.0 * v).collect();
        assert!(close(&c, &twice));
        let fresh = product(Mat::new(&at, k, m).t(), Mat::new(&b, k, n));
        assert!(close(&fresh, &want));
        let mut sums = vec![1.0; n];
        add_column_sums(&want, n, &mut sums);
        for j in 0..n {
            let s: f64 = (0..m).map(|i| want[i * n + j]).sum();
            assert!((sums[j] - 1.0 - s).abs() < 1e-13);
        }
    }
}
