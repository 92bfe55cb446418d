//! The thread pool a command runs on.

use anyhow::{Context, Result};

/// Runs a command's `work` on a rayon pool of `threads` workers (`None`: one per core). The
/// command itself runs on a pool thread, not only its parallel loops: with one thread every
/// parallel loop then runs inline instead of being handed to a sleeping worker and back.
pub fn in_pool<T: Send>(
    threads: Option<usize>,
    work: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.map_or(0, |n| n.max(1)))
        .build()
        .context("cannot start the worker threads")?;
    pool.install(work)
}
