//! The collective operations data-parallel FAB needs, and their one-process implementation.

/// Messages and time spent in collective operations since a communicator was created.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Traffic {
    /// Collective or point-to-point calls made.
    pub calls: u64,
    /// Bytes this rank sent (payload only).
    pub bytes_sent: u64,
    /// Wall seconds spent inside the calls (including waiting for other ranks).
    pub seconds: f64,
}

/// A group of `size` cooperating processes, each knowing its `rank` (MPI's communicator).
///
/// Every rank must make the same calls in the same order with matching sizes; data-parallel
/// FAB guarantees that by keeping the ranks' state identical. Implementations abort the job on a
/// transport failure (MPI's default), so the calls return no error.
pub trait Communicator: Send + Sync + std::fmt::Debug {
    /// This process's rank in `0..size()`.
    fn rank(&self) -> usize;

    /// Number of processes.
    fn size(&self) -> usize;

    /// Concatenates every rank's `local` in rank order; `counts[r]` is rank r's length (the
    /// same on every rank).
    fn all_gather_f64(&self, local: &[f64], counts: &[usize]) -> Vec<f64>;

    /// Every rank's byte string, in rank order (lengths may differ).
    fn all_gather_bytes(&self, local: &[u8]) -> Vec<Vec<u8>>;

    /// Overwrites `data` on every rank with `root`'s.
    fn broadcast_f64(&self, root: usize, data: &mut [f64]);

    /// Sends `data` to rank `to` (blocking; matched by [`Communicator::receive_f64`]).
    fn send_f64(&self, to: usize, data: &[f64]);

    /// Receives into `data` from rank `from` (its length must equal the message's).
    fn receive_f64(&self, from: usize, data: &mut [f64]);

    /// True on every rank if `flag` is true on any rank (an interrupt seen by one rank stops all
    /// at the same iteration).
    fn any(&self, flag: bool) -> bool;

    /// Traffic so far, for reports of communication cost.
    fn traffic(&self) -> Traffic {
        Traffic::default()
    }
}

/// One process: every collective is a copy, nothing is sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Local;

impl Communicator for Local {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_gather_f64(&self, local: &[f64], _counts: &[usize]) -> Vec<f64> {
        local.to_vec()
    }

    fn all_gather_bytes(&self, local: &[u8]) -> Vec<Vec<u8>> {
        vec![local.to_vec()]
    }

    fn broadcast_f64(&self, _root: usize, _data: &mut [f64]) {}

    fn send_f64(&self, to: usize, _data: &[f64]) {
        unreachable!("one process has no rank {to} to send to")
    }

    fn receive_f64(&self, from: usize, _data: &mut [f64]) {
        unreachable!("one process has no rank {from} to receive from")
    }

    fn any(&self, flag: bool) -> bool {
        flag
    }
}
