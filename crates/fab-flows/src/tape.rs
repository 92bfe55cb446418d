//! Tape discipline for dfdx: a taped tensor is not `Clone`, so a value used twice is split off its
//! tape. The first copy keeps the recorded history, the second gets an empty tape; binary ops merge
//! tapes again and gradients accumulate by tensor id, so both uses contribute to the gradient.

use dfdx::prelude::*;

/// Two handles on `t` for two uses in one graph. Both must be consumed by the graph.
pub fn dup2<S: Shape, T: Tape<f64, Cpu>>(
    t: Tensor<S, f64, Cpu, T>,
) -> (Tensor<S, f64, Cpu, T>, Tensor<S, f64, Cpu, T>) {
    let (t, tape) = t.split_tape();
    (t.clone().put_tape(tape), t.put_tape(T::default()))
}
