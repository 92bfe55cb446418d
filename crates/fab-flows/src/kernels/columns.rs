//! Selecting columns of a batch and putting them back, as fused dfdx operations with exact
//! backward passes: a gather whose backward scatter-adds, and a scatter whose backward gathers.
//! They replace the 0/1 matmuls of [`crate::kernels::split`] in the fused engine (same values: a column
//! copy is exact), without dfdx's `slice`, whose backward assigns instead of adding.

use dfdx::prelude::*;

use crate::real::{host, Real, M};

/// The columns `idx` (each < d) of `x` (n × d), as an (n × idx.len()) tensor.
pub(crate) fn gather_columns<E: Real, T: Tape<E, Cpu>>(x: M<E, T>, idx: &[usize]) -> M<E, T> {
    let (x, mut tape) = x.split_tape();
    let (n, d) = *x.shape();
    let k = idx.len();
    let xv = host(&x);
    let mut out = Vec::with_capacity(n * k);
    for row in xv.chunks_exact(d) {
        out.extend(idx.iter().map(|&j| row[j]));
    }
    let out = x.device().tensor_from_vec(out, (n, k));
    if T::OWNS_TAPE {
        let (g_x, g_out) = (x.ghost(), out.ghost());
        let idx = idx.to_vec();
        tape.add_backward_op(move |grads| {
            let go: Vec<E> = std::mem::take(grads.get_or_alloc_mut(&g_out)?);
            let gx = grads.get_or_alloc_mut(&g_x)?;
            for (row, g) in gx.chunks_exact_mut(d).zip(go.chunks_exact(k)) {
                idx.iter().zip(g).for_each(|(&j, &v)| row[j] += v);
            }
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// An (n × d) tensor whose columns `idxᵢ` hold the columns of piece i (n × idxᵢ.len()); columns
/// no piece names are zero. The index lists must be disjoint; at least one piece is given.
pub(crate) fn scatter_columns<E: Real, T: Tape<E, Cpu>>(
    pieces: Vec<(M<E, T>, &[usize])>,
    d: usize,
) -> M<E, T> {
    let mut tape = T::default();
    let mut values = Vec::with_capacity(pieces.len());
    let mut n = 0;
    for (piece, idx) in pieces {
        let (piece, t) = piece.split_tape();
        tape = tape.merge(t);
        n = piece.shape().0;
        values.push((piece, idx.to_vec()));
    }
    let mut out = vec![E::zero(); n * d];
    for (piece, idx) in &values {
        let pv = host(piece);
        for (row, p) in out
            .chunks_exact_mut(d)
            .zip(pv.chunks_exact(idx.len().max(1)))
        {
            idx.iter().zip(p).for_each(|(&j, &v)| row[j] = v);
        }
    }
    let (first, _) = values
        .first()
        .expect("scatter_columns needs at least one piece");
    let out = first.device().tensor_from_vec(out, (n, d));
    if T::OWNS_TAPE {
        let g_out = out.ghost();
        let ghosts: Vec<_> = values
            .iter()
            .map(|(p, idx)| (p.ghost(), idx.clone()))
            .collect();
        tape.add_backward_op(move |grads| {
            let go: Vec<E> = std::mem::take(grads.get_or_alloc_mut(&g_out)?);
            for (g_p, idx) in &ghosts {
                let gp = grads.get_or_alloc_mut(g_p)?;
                for (p, row) in gp
                    .chunks_exact_mut(idx.len().max(1))
                    .zip(go.chunks_exact(d))
                {
                    p.iter_mut().zip(idx).for_each(|(v, &j)| *v += row[j]);
                }
            }
            Ok(())
        });
    }
    out.put_tape(tape)
}
