//! Which items (rows, chunks) each rank owns: contiguous blocks in rank order.

use std::ops::Range;

/// The items of `0..n` that `rank` of `size` owns: contiguous blocks, the first `n % size`
/// ranks one item longer. Concatenated in rank order the blocks are `0..n`, so a gather in rank
/// order restores the original order.
pub fn share(n: usize, rank: usize, size: usize) -> Range<usize> {
    let size = size.max(1);
    let (base, extra) = (n / size, n % size);
    let start = rank * base + rank.min(extra);
    let len = base + usize::from(rank < extra);
    start..start + len
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_tile_the_range_in_rank_order() {
        for n in [0, 1, 5, 64, 1000] {
            for size in 1..=7 {
                let mut next = 0;
                for rank in 0..size {
                    let r = share(n, rank, size);
                    assert_eq!(r.start, next);
                    assert!(r.len() == n / size || r.len() == n / size + 1);
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
    }
}
