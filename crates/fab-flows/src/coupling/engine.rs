//! Which of the two engines computes a flow's layers.

/// How a flow's layers are computed. Both give the same numbers (tests/engines.rs checks them
/// against each other to 1e-10 in f64); `Fused` is the fast one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// One fused dfdx operation per stage of a coupling layer (column gathers, the conditioner
    /// MLP, the affine or spline transform), each with a hand-written backward pass; HMC's input
    /// gradient skips the parameter gradients.
    #[default]
    Fused,
    /// Composed from dfdx's own tensor operations (0/1 matmuls for coordinate selection): the
    /// reference the fused engine is tested against.
    Reference,
}
