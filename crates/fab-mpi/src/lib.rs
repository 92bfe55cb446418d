//! fab-rs across processes: fab-core's [`fab_core::Communicator`] over MPI (Open MPI through
//! rsmpi), behind this crate's `mpi` feature.
//!
//! `mpirun -np R fab train --config X` runs R copies of the same program; each creates one
//! `Mpi` at start-up and hands its communicator to the trainer, which then splits the rows of
//! every AIS batch and the gradient chunks of every training batch over the ranks (see
//! `fab_core::distributed`). Results are the same for any R.
//!
//! MPI is initialised with `MPI_THREAD_SERIALIZED`: rayon threads work inside a rank, and every
//! MPI call goes through one lock, so no two threads call MPI at once.

#![warn(missing_docs)]
// Without its `mpi` feature the crate is empty, so that `cargo test --workspace` builds without an
// MPI library.
#![cfg(feature = "mpi")]

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;

use fab_core::distributed::Traffic;
use fab_core::Communicator as FabCommunicator;

/// Why MPI could not be started.
#[derive(Debug, thiserror::Error)]
pub enum MpiError {
    /// `MPI_Init_thread` failed or MPI was already initialised in this process.
    #[error("MPI could not be initialised (or was initialised twice)")]
    Init,
    /// The MPI library cannot serve calls from more than one thread.
    #[error("the MPI library offers thread level {0:?}; fab needs Serialized (calls from rayon threads, one at a time)")]
    Threading(mpi::Threading),
}

/// The MPI environment of this process: initialised by [`Mpi::initialize`], finalised on drop.
/// Create it once, first thing in `main`, and keep it until the end.
pub struct Mpi {
    comm: Arc<MpiCommunicator>,
    // Dropped last: MPI_Finalize.
    _universe: Universe,
}

impl Mpi {
    /// Initialises MPI (a process started without `mpirun` becomes a job of one rank).
    pub fn initialize() -> Result<Self, MpiError> {
        let (universe, level) =
            mpi::initialize_with_threading(mpi::Threading::Serialized).ok_or(MpiError::Init)?;
        if level < mpi::Threading::Serialized {
            return Err(MpiError::Threading(level));
        }
        let world = universe.world();
        let comm = Arc::new(MpiCommunicator {
            rank: world.rank() as usize,
            size: world.size() as usize,
            world: Mutex::new(world),
            traffic: Mutex::new(Traffic::default()),
        });
        Ok(Self {
            comm,
            _universe: universe,
        })
    }

    /// The communicator of all ranks of the job (MPI_COMM_WORLD).
    pub fn communicator(&self) -> Arc<dyn FabCommunicator> {
        self.comm.clone()
    }

    /// Ends every rank of the job with exit code `code` (MPI_Abort): what a rank must do after
    /// an error the others may not have seen, since they would otherwise wait for it forever.
    pub fn abort(&self, code: i32) -> ! {
        let world = self.comm.lock();
        world.abort(code)
    }
}

/// MPI_COMM_WORLD as a fab-core [`Communicator`](FabCommunicator), counting its traffic.
pub struct MpiCommunicator {
    rank: usize,
    size: usize,
    world: Mutex<SimpleCommunicator>,
    traffic: Mutex<Traffic>,
}

impl std::fmt::Debug for MpiCommunicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MpiCommunicator(rank {} of {})", self.rank, self.size)
    }
}

// SAFETY: the communicator handle is valid in every thread of the process; MPI runs at thread
// level Serialized (checked in `Mpi::initialize`) and every call holds the `world` lock, so no two
// threads call MPI at the same time.
unsafe impl Send for MpiCommunicator {}
// SAFETY: as above; shared access only reaches MPI through the lock.
unsafe impl Sync for MpiCommunicator {}

fn count(n: usize) -> Count {
    Count::try_from(n)
        .unwrap_or_else(|_| panic!("an MPI message of {n} elements exceeds MPI's 32-bit count"))
}

impl MpiCommunicator {
    fn lock(&self) -> MutexGuard<'_, SimpleCommunicator> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one MPI call under the lock and adds it to the traffic.
    fn call<T>(&self, bytes_sent: usize, f: impl FnOnce(&SimpleCommunicator) -> T) -> T {
        let world = self.lock();
        let start = Instant::now();
        let out = f(&world);
        let seconds = start.elapsed().as_secs_f64();
        let mut t = self.traffic.lock().unwrap_or_else(|e| e.into_inner());
        t.calls += 1;
        t.bytes_sent += bytes_sent as u64;
        t.seconds += seconds;
        out
    }
}

impl FabCommunicator for MpiCommunicator {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_gather_f64(&self, local: &[f64], counts: &[usize]) -> Vec<f64> {
        let total: usize = counts.iter().sum();
        let counts_c: Vec<Count> = counts.iter().map(|&c| count(c)).collect();
        let displs: Vec<Count> = counts
            .iter()
            .scan(0usize, |acc, &c| {
                let d = *acc;
                *acc += c;
                Some(count(d))
            })
            .collect();
        let mut out = vec![0.0; total];
        self.call(std::mem::size_of_val(local), |w| {
            let mut partition = PartitionMut::new(&mut out[..], counts_c, &displs[..]);
            w.all_gather_varcount_into(local, &mut partition);
        });
        out
    }

    fn all_gather_bytes(&self, local: &[u8]) -> Vec<Vec<u8>> {
        // Each message travels with one leading byte: an empty Rust slice points at address 1,
        // which Open MPI reads as MPI_IN_PLACE.
        let send: Vec<u8> = std::iter::once(0).chain(local.iter().copied()).collect();
        let mut lengths = vec![0 as Count; self.size];
        self.call(4, |w| {
            w.all_gather_into(&count(send.len()), &mut lengths[..])
        });
        let displs: Vec<Count> = lengths
            .iter()
            .scan(0, |acc, &c| {
                let d = *acc;
                *acc += c;
                Some(d)
            })
            .collect();
        let total: usize = lengths.iter().map(|&c| c as usize).sum();
        let mut all = vec![0u8; total];
        self.call(send.len(), |w| {
            let mut partition = PartitionMut::new(&mut all[..], &lengths[..], &displs[..]);
            w.all_gather_varcount_into(&send[..], &mut partition);
        });
        let mut out = Vec::with_capacity(self.size);
        let mut offset = 0;
        for &len in &lengths {
            out.push(all[offset + 1..offset + len as usize].to_vec());
            offset += len as usize;
        }
        out
    }

    fn broadcast_f64(&self, root: usize, data: &mut [f64]) {
        let sent = if self.rank == root {
            std::mem::size_of_val(data)
        } else {
            0
        };
        self.call(sent, |w| {
            w.process_at_rank(count(root)).broadcast_into(data);
        });
    }

    fn send_f64(&self, to: usize, data: &[f64]) {
        self.call(std::mem::size_of_val(data), |w| {
            w.process_at_rank(count(to)).send(data);
        });
    }

    fn receive_f64(&self, from: usize, data: &mut [f64]) {
        self.call(0, |w| {
            w.process_at_rank(count(from)).receive_into(data);
        });
    }

    fn any(&self, flag: bool) -> bool {
        let mut out: i32 = 0;
        self.call(4, |w| {
            w.all_reduce_into(
                &i32::from(flag),
                &mut out,
                mpi::collective::SystemOperation::max(),
            )
        });
        out != 0
    }

    fn traffic(&self) -> Traffic {
        *self.traffic.lock().unwrap_or_else(|e| e.into_inner())
    }
}
