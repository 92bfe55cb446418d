//! The float types a flow computes in: f64 (the default, as fab-torch's alanine runs) or f32
//! (about twice the matmul throughput, as JAX's default). The [`fab_core::Flow`] API stays in f64;
//! values are converted once at its boundary.

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kernels::simd_math::SimdMath;

/// A float type a flow can compute in: dfdx's `Dtype` plus `num_traits::Float`, with lossy
/// conversions from and to the f64 of the public API.
pub trait Real:
    Dtype + num_traits::Float + SimdMath + Send + Sync + std::fmt::Debug + 'static
{
    /// `v` rounded to this type.
    fn of(v: f64) -> Self;
    /// This value as f64 (exact).
    fn wide(self) -> f64;
    /// C ← α·A·B + β·C for an (m × k) A, (k × n) B and (m × n) C given by row and column strides
    /// (matrixmultiply's sgemm / dgemm; the fused flow operations call it through
    /// `crate::kernels::matmul`).
    ///
    /// # Safety
    /// The pointers must be valid for every element the shapes and strides address, and C must not
    /// overlap A or B.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: (*const Self, isize, isize),
        b: (*const Self, isize, isize),
        beta: Self,
        c: (*mut Self, isize, isize),
    );
}

/// `Real` for a primitive float with matrixmultiply's GEMM of that type.
macro_rules! real_impl {
    ($t:ty, $gemm:path) => {
        impl Real for $t {
            fn of(v: f64) -> Self {
                v as $t
            }
            fn wide(self) -> f64 {
                self as f64
            }
            unsafe fn gemm(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: (*const Self, isize, isize),
                b: (*const Self, isize, isize),
                beta: Self,
                c: (*mut Self, isize, isize),
            ) {
                $gemm(
                    m, k, n, alpha, a.0, a.1, a.2, b.0, b.1, b.2, beta, c.0, c.1, c.2,
                )
            }
        }
    };
}

real_impl!(f64, matrixmultiply::dgemm);
real_impl!(f32, matrixmultiply::sgemm);

/// Which float type a flow computes in, as written in a config (`precision: F32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Precision {
    /// Double precision (default).
    #[default]
    F64,
    /// Single precision: faster, log q accurate to about 1e-5 relative.
    F32,
}

/// Rank-2 tensor (rows × columns) of a flow in float type `E` on tape `T`.
pub type M<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;
/// Rank-1 tensor of a flow in float type `E` on tape `T`.
pub type V<E, T = NoneTape> = Tensor<(usize,), E, Cpu, T>;

/// The values of a contiguous tensor (every tensor the flows make is one) as a `Vec`, by one
/// memcpy; dfdx's `as_vec` walks the elements through a strided index iterator, which cost a
/// tenth of a Many Well iteration. Panics if the tensor's storage is not `numel` long (a
/// broadcast view), which no caller passes.
pub fn host<S: Shape, E: Real, T>(t: &Tensor<S, E, Cpu, T>) -> Vec<E> {
    let mut out = vec![E::zero(); t.shape().num_elements()];
    t.copy_into(&mut out);
    out
}

/// f64 values (loss coefficients, base log-densities) in the flow's float type.
pub(crate) fn narrow<E: Real>(v: ndarray::ArrayView1<f64>) -> Vec<E> {
    v.iter().map(|&x| E::of(x)).collect()
}

/// Values of a flow tensor as f64.
pub(crate) fn widen<E: Real>(v: Vec<E>) -> Vec<f64> {
    v.into_iter().map(Real::wide).collect()
}
