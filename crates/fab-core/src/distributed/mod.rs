//! Data-parallel FAB across processes: the [`Communicator`] interface, the row partition, and
//! wrappers that split the rows of every batch evaluation over the ranks.
//!
//! The design keeps every rank's state identical: each rank holds the whole AIS batch, the
//! replay buffer, the optimiser and the random stream, and does the cheap per-row bookkeeping
//! (momenta, accept/reject, weights, adaptation) itself. Only the expensive calls are split:
//! a density or flow evaluated on a batch ([`SplitDensity`], [`SplitFlow`]) computes this rank's
//! rows and all-gathers the rest, and the parameter gradient of a training batch is summed over
//! fixed row chunks in chunk order across ranks ([`ordered_sum`]). Because every row's value is
//! the same whichever rank computes it, and the chunks depend on the batch alone, a run gives
//! the same bits on any number of ranks. One process ([`Local`]) is the default and costs nothing.

mod communicator;
mod gather;
mod ordered_sum;
mod partition;
mod split_density;
mod split_flow;
#[cfg(test)]
mod threads;

pub use communicator::{Communicator, Local, Traffic};
pub use gather::{agree, gather_rows};
pub use ordered_sum::ordered_sum;
pub use partition::share;
pub use split_density::SplitDensity;
pub use split_flow::SplitFlow;
