//! Errors of the event contract. Every variant that concerns a file names it.

use std::path::PathBuf;

/// An error reading or writing contract data (segments, bundles, manifests).
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// An I/O error on a named file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A Parquet file that cannot be read or written.
    #[error("{path}: not a readable Parquet segment: {message}")]
    Parquet {
        /// The segment.
        path: PathBuf,
        /// What the Parquet reader or writer said.
        message: String,
    },
    /// A segment written with a schema major version this build does not know.
    #[error("{path}: schema version {found} is not supported (this build reads schema {supported}.x); upgrade kubectl-karmor")]
    UnsupportedSchema {
        /// The segment or manifest.
        path: PathBuf,
        /// The version found in the file.
        found: String,
        /// The major version this build reads.
        supported: u32,
    },
    /// A segment whose columns do not match the schema.
    #[error("{path}: column {column}: {message}")]
    Column {
        /// The segment.
        path: PathBuf,
        /// The offending column.
        column: String,
        /// What is wrong with it.
        message: String,
    },
    /// A manifest that cannot be parsed or is inconsistent.
    #[error("{path}: invalid manifest: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

impl ContractError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ContractError::Io {
            path: path.into(),
            source,
        }
    }

    /// A Parquet error on `path`.
    pub fn parquet(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        ContractError::Parquet {
            path: path.into(),
            message: message.to_string(),
        }
    }
}
