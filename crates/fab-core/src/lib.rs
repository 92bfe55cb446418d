//! fab-core: the math core of FAB (Flow Annealed Importance Sampling Bootstrap).
//!
//! Everything here is independent of how flows, samplers and targets are implemented:
//! the traits they implement ([`LogDensity`], [`Flow`], [`Target`], [`AnnealedSampler`]),
//! importance-weight arithmetic and ESS, the FAB loss, the prioritised replay buffer,
//! Adam with gradient-norm clipping, the training loop, evaluation metrics and checkpoints.
//! No other fab crate is a dependency: flows, samplers and targets depend on this crate.

#![warn(missing_docs)]

// The README's example (training FAB on a user-defined density) runs as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The ndarray version this crate's batch APIs take and return (so callers need not match it).
pub use ndarray;

pub mod bench;
pub mod buffer;
pub mod checkpoint;
pub mod density;
pub mod distributed;
pub mod error;
pub mod flow;
pub mod histogram;
pub mod learning_curve;
pub mod loss;
pub mod memory;
pub mod metrics;
pub mod optim;
pub mod rng;
pub mod sample_table;
pub mod sampler;
pub mod seeds;
pub mod target;
pub mod train;
pub mod weights;

pub use buffer::PrioritisedBuffer;
pub use density::{CountingDensity, LogDensity};
pub use distributed::Communicator;
pub use error::{FabError, Result};
pub use flow::{Flow, StepInfo};
pub use rng::FabRng;
pub use sampler::{AisBatch, AnnealTarget, AnnealedSampler};
pub use target::{PlotView, Target};

/// The items most users need, for `use fab_core::prelude::*`.
pub mod prelude {
    pub use crate::{
        AisBatch, AnnealTarget, AnnealedSampler, CountingDensity, FabError, FabRng, Flow,
        LogDensity, PrioritisedBuffer, Result, StepInfo, Target,
    };
}
