//! The number types of the force-field and coordinate kernels: one conformation per `f64` or four
//! per SIMD vector, and the 3-vector helpers written once for both.

pub mod lanes;
pub mod vec3;
