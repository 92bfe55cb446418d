//! A sum over parts held by different ranks that adds them in one fixed order, so its bits do
//! not depend on how the parts are spread over the ranks.

use super::Communicator;

/// Elements per message of the chained sum: large enough to amortise latency, small enough
/// that the ranks of the chain work on different segments at once (a pipeline).
const SEGMENT: usize = 1 << 16;

/// Σ parts in global part order, starting from zeros: ((0 + p₀) + p₁) + … element by element,
/// as one process summing all parts would. Rank r holds `parts` = its `counts[r]` consecutive
/// parts (each of length `len`); every rank returns the whole sum.
///
/// The ranks that hold parts form a chain in rank order: each receives the running sum from its
/// predecessor, adds its own parts in order and sends it on, segment by segment so that the
/// chain is pipelined; the last one broadcasts the result. Cost: about `len` elements sent
/// twice per rank plus one latency per rank of the chain.
pub fn ordered_sum(
    comm: &dyn Communicator,
    parts: &[Vec<f64>],
    counts: &[usize],
    len: usize,
) -> Vec<f64> {
    let mut sum = vec![0.0; len];
    let add = |sum: &mut [f64], offset: usize| {
        for part in parts {
            let seg = &part[offset..offset + sum.len()];
            sum.iter_mut().zip(seg).for_each(|(a, b)| *a += b);
        }
    };
    if comm.size() == 1 {
        add(&mut sum, 0);
        return sum;
    }
    let holders: Vec<usize> = (0..comm.size()).filter(|&r| counts[r] > 0).collect();
    let Some(&last) = holders.last() else {
        return sum;
    };
    let rank = comm.rank();
    if let Some(pos) = holders.iter().position(|&r| r == rank) {
        let prev = pos.checked_sub(1).map(|p| holders[p]);
        let next = holders.get(pos + 1).copied();
        let mut offset = 0;
        for seg in sum.chunks_mut(SEGMENT) {
            if let Some(prev) = prev {
                comm.receive_f64(prev, seg);
            }
            add(seg, offset);
            if let Some(next) = next {
                comm.send_f64(next, seg);
            }
            offset += seg.len();
        }
    }
    comm.broadcast_f64(last, &mut sum);
    sum
}
