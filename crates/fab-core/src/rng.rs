//! The random number generator used throughout fab-rs, so that every run is reproducible from a seed.
//!
//! Xoshiro256++ is fast, small (32 bytes of state) and serialisable, so a checkpoint can store it and a
//! resumed run continues the exact stream. Random numbers are drawn serially; rayon only parallelises
//! deterministic work (density evaluations), so results do not depend on the number of threads.

use rand::SeedableRng;

/// The generator type of fab-rs.
pub type FabRng = rand_xoshiro::Xoshiro256PlusPlus;

/// A generator seeded from a `u64`.
pub fn seeded(seed: u64) -> FabRng {
    FabRng::seed_from_u64(seed)
}
