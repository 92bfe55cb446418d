//! How `fab` runs as one of several MPI ranks (`mpirun -np R fab …`, with the `mpi` feature):
//! start-up, steps every rank must pass together, and how a failure ends the job.

use std::process::ExitCode;
use std::sync::Arc;

use fab_core::distributed::agree;
use fab_core::{Communicator, FabError};

/// The ranks of this job: one process unless built with the `mpi` feature and started by
/// `mpirun`.
pub struct Ranks {
    /// The communicator handed to training, evaluation and sampling.
    pub comm: Arc<dyn Communicator>,
    #[cfg(feature = "mpi")]
    mpi: fab_mpi::Mpi,
}

impl Ranks {
    /// Starts MPI when built with it (a process not started by `mpirun` is a job of one rank).
    pub fn start() -> anyhow::Result<Self> {
        #[cfg(feature = "mpi")]
        {
            let mpi = fab_mpi::Mpi::initialize()?;
            Ok(Self {
                comm: mpi.communicator(),
                mpi,
            })
        }
        #[cfg(not(feature = "mpi"))]
        {
            // Started by mpirun but built without MPI: every copy would be a run of its own, all
            // writing the same run directory.
            let ranks = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
                .iter()
                .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok());
            if let Some(r) = ranks.filter(|&r| r > 1) {
                anyhow::bail!(
                    "started as one of {r} MPI ranks, but this fab was built without MPI: build it with `--features mpi` (docs/distributed.md)"
                );
            }
            Ok(Self {
                comm: Arc::new(fab_core::distributed::Local),
            })
        }
    }

    /// Reports a failed command and gives the exit code. A failure every rank saw together
    /// ([`FabError::Rank`], from [`together`]) is printed once, by rank 0. Any other failure of
    /// a job of several ranks is printed with its rank and ends the whole job (MPI_Abort), since
    /// the other ranks would wait for this one forever.
    pub fn fail(&self, e: &anyhow::Error) -> ExitCode {
        let (rank, size) = (self.comm.rank(), self.comm.size());
        let shared = e
            .chain()
            .any(|c| matches!(c.downcast_ref::<FabError>(), Some(FabError::Rank { .. })));
        if size == 1 {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
        if shared {
            if rank == 0 {
                eprintln!("error: {e:#}");
            }
            return ExitCode::FAILURE;
        }
        eprintln!("error on rank {rank} of {size}: {e:#}");
        self.abort()
    }

    #[cfg(feature = "mpi")]
    fn abort(&self) -> ExitCode {
        self.mpi.abort(1)
    }

    #[cfg(not(feature = "mpi"))]
    fn abort(&self) -> ExitCode {
        ExitCode::FAILURE
    }
}

/// Runs a step that may fail on some ranks only (reading files, building the target, restoring
/// a checkpoint) and makes its outcome collective: every rank fails if any does, with the first
/// failed rank's message (see [`agree`]).
pub fn together<T>(
    comm: &dyn Communicator,
    step: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if comm.size() == 1 {
        return step();
    }
    let local = step().map_err(|e| FabError::Backend(format!("{e:#}")));
    Ok(agree(comm, local)?)
}

/// Like [`together`] for a step that only rank 0 runs (writing or checking the run directory).
pub fn on_root(
    comm: &dyn Communicator,
    step: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    together(comm, || if comm.rank() == 0 { step() } else { Ok(()) })
}
