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
        .num_threads(threads.map_or_else(default_threads, |n| n.max(1)))
        .build()
        .context("cannot start the worker threads")?;
    pool.install(work)
}

/// Worker threads when the config sets none (and RAYON_NUM_THREADS is unset): one per core this process may run on, shared out
/// among the MPI ranks on the same host (Open MPI tells each rank how many share it), so R ranks
/// on one machine do not each start a thread per core.
fn default_threads() -> usize {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return 0; // rayon reads it
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let local_ranks = std::env::var("OMPI_COMM_WORLD_LOCAL_SIZE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    // Open MPI binds each of two or fewer ranks to its own core, which `cores` already sees.
    (cores / local_ranks).max(1)
}
