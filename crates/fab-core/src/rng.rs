//! The random number generator used throughout fab-rs, so that every run is reproducible from a seed.
//!
//! Xoshiro256++ is fast, small (32 bytes of state) and serialisable, so a checkpoint can store it and a
//! resumed run continues the exact stream. Parallel work draws one child seed per fixed-size chunk
//! from the parent stream ([`child_rngs`]), so results do not depend on the number of threads.

use rand::{RngCore, SeedableRng};

/// The generator type of fab-rs.
pub type FabRng = rand_xoshiro::Xoshiro256PlusPlus;

/// A generator seeded from a `u64`.
pub fn seeded(seed: u64) -> FabRng {
    FabRng::seed_from_u64(seed)
}

/// `n` independent child generators drawn from `rng`, for chunks of work handed to rayon.
pub fn child_rngs(rng: &mut FabRng, n: usize) -> Vec<FabRng> {
    (0..n)
        .map(|_| FabRng::seed_from_u64(rng.next_u64()))
        .collect()
}
