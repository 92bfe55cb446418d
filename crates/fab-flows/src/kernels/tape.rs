//! Tape discipline for dfdx: a taped tensor is not `Clone`, so a value used several times is split
//! off its tape. The first copy keeps the recorded history, the others get empty tapes; binary ops
//! merge tapes again and gradients accumulate by tensor id, so every use contributes to the
//! gradient. Every copy must be consumed by the graph (the first one at least: it holds the tape).

use dfdx::prelude::*;

/// `N` handles on one tensor for `N` uses in a graph.
pub fn dupn<const N: usize, S: Shape, E: Dtype, T: Tape<E, Cpu>>(
    t: Tensor<S, E, Cpu, T>,
) -> [Tensor<S, E, Cpu, T>; N] {
    let (t, tape) = t.split_tape();
    let mut tape = Some(tape);
    std::array::from_fn(|_| t.clone().put_tape(tape.take().unwrap_or_default()))
}

/// Two handles on one tensor.
pub type Pair<S, E, T> = (Tensor<S, E, Cpu, T>, Tensor<S, E, Cpu, T>);

/// Two handles on `t` for two uses in one graph.
pub fn dup2<S: Shape, E: Dtype, T: Tape<E, Cpu>>(t: Tensor<S, E, Cpu, T>) -> Pair<S, E, T> {
    let [a, b] = dupn(t);
    (a, b)
}
