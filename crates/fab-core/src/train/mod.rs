//! The FAB training loop (fab-torch order, fab-spec §4.4).
//!
//! One iteration with the prioritised buffer: AIS toward g = p^α q^(1−α) from N fresh flow samples
//! → add the batch to the buffer → draw `n_updates` minibatches ∝ w without replacement → for each,
//! one optimiser step on −mean(min(w_adjust, C) · log q) followed by the buffer weight adjustment.
//! Without buffer: AIS, then one step on −mean(softmax(log w) · log q) at the AIS points.
//!
//! The loop is quiet: progress bars, metric files and checkpoints are attached by the caller as an
//! [`Observer`] (argmin's executor/observer split), which keeps the library testable.

mod checkpointing;
mod config;
mod observer;
mod trainer;

pub use checkpointing::load_flow;
pub use config::{BufferConfig, Iterations, LossKind, TrainConfig};
pub use observer::{run, Observer, TrainContext};
pub use trainer::{IterInfo, Trainer};
