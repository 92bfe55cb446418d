//! The `fab` subcommands, one file each: what `main` calls after parsing the command line.

pub mod bench;
pub mod compare;
pub mod eval;
pub mod md;
pub mod plot;
pub mod sample;
pub mod train;
