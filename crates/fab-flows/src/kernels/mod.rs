//! The numeric kernels behind the fused engine: column gathers, the conditioner MLP in one GEMM,
//! the affine transform, dense products, vectorised exp/ln/tanh/GELU, and the 0/1 selection and
//! tape helpers of the reference engine. Crate-private: the flows are the public surface.

pub(crate) mod affine;
pub(crate) mod columns;
pub(crate) mod conditioner;
pub(crate) mod matmul;
pub(crate) mod simd_math;
pub(crate) mod split;
pub(crate) mod tape;
