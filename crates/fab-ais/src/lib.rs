//! fab-ais: annealed importance sampling from the flow q toward p^α q^(1−α) (training) or p
//! (evaluation), with Metropolis and HMC transition kernels and per-distribution step-size tuning.
//!
//! [`Ais`] implements [`fab_core::AnnealedSampler`]; it only composes a β schedule
//! ([`schedule`]), cached density evaluations ([`point`]), a kernel ([`kernel`]) and step-size
//! adaptation ([`step_size`]).

#![warn(missing_docs)]

// The README's example runs as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The ndarray version this crate's batch APIs take and return (so callers need not match it).
pub use ndarray;

pub mod ais;
pub mod config;
pub mod hmc;
pub mod kernel;
pub mod metropolis;
pub mod point;
pub mod schedule;
pub mod step_size;

pub use ais::Ais;
pub use config::{AisConfig, KernelConfig};
pub use schedule::BetaSchedule;
