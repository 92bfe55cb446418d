//! Coupling flows on dfdx, in f64 or f32: a stack of coupling layers over a base distribution.
//!
//! Each layer keeps its conditioning coordinates h_c and transforms the others elementwise with
//! parameters from an MLP of h_c (ReLU or GELU hidden layers, zero-initialised output heads, so
//! every layer starts as the identity map), optionally after an ActNorm layer. Two transforms:
//! * affine (RealNVP, [`crate::realnvp`]): h_t ← h_t ⊙ s + t with log s = k·tanh(a/k), k = ln 10;
//! * rational-quadratic splines ([`crate::spline`], [`crate::spline::flow`]): linear-tail splines on
//!   ordinary coordinates and circular splines on angles, optionally followed by a fixed circular
//!   shift of the angles, x ← wrap(x + c).
//!
//! After the last layer (sampling direction) an optional fixed shear makes some angles relative to
//! another one, x_j ← wrap(x_j + x_i) ([`crate::relative_angles`], log-det 0).
//!
//! The base is N(0, I) on ordinary coordinates (optionally with a trainable location and log-scale,
//! as fab-torch's RealNVP base) and uniform on [−π, π) on circular ones.
//! Density direction (x → z): inverse layers in reverse order, accumulating the log-dets, then
//! log q(x) = log base(z) + log|det ∂z/∂x|.

mod chunks;
mod engine;
mod flow;
mod layer;
mod log_density;
mod params;
mod size;
mod training;

pub(crate) use chunks::check_gradient_chunk_rows;
pub use engine::Engine;
pub use flow::CouplingFlow;
pub(crate) use layer::{Coupling, SplinePart, Transform};
pub(crate) use size::check_flow_size;
