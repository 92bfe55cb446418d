//! Molecular dynamics for ground truth: Langevin dynamics (BAOAB), temperature replica exchange
//! over it, the ground-truth run of a molecule and the files it leaves.

pub mod ground_truth;
pub mod langevin;
pub mod replica_exchange;
pub mod run_files;
