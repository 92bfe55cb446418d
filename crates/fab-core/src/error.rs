//! The error type of fab-core and of the library crates built on it.

use std::path::PathBuf;

/// Errors raised by FAB's library code; each names what went wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum FabError {
    /// Two arrays that must agree in shape do not.
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape {
        /// What was being checked.
        context: String,
        /// The shape that was expected.
        expected: String,
        /// The shape that was given.
        got: String,
    },
    /// An input value is outside what the algorithm accepts.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The setting or input (config field path or flag).
        what: String,
        /// Why it is refused.
        reason: String,
    },
    /// Every point of a batch was non-finite (NaN/inf log density), so nothing can be resampled.
    #[error(
        "no valid point in a batch of {n}: every log q or log p was NaN or infinite ({context})"
    )]
    NoValidPoint {
        /// Rows in the batch.
        n: usize,
        /// What was being checked.
        context: String,
    },
    /// A checkpoint file could not be read or does not fit the model being restored.
    #[error("checkpoint {path}: field `{field}`: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// The field inside it.
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// An I/O error with the file it concerns.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        #[source]
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Another rank of a distributed run failed; every rank reports its error.
    #[error("rank {rank}: {message}")]
    Rank {
        /// The first rank that failed.
        rank: usize,
        /// Its error message.
        message: String,
    },
    /// A failure inside a density or flow implementation.
    #[error("{0}")]
    Backend(String),
}

/// Result alias with [`FabError`].
pub type Result<T, E = FabError> = std::result::Result<T, E>;

impl FabError {
    /// Shorthand for [`FabError::Invalid`].
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`FabError::Shape`].
    pub fn shape(
        context: impl Into<String>,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        Self::Shape {
            context: context.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}
