//! Errors of the analyzer library.

use std::path::PathBuf;

use karmor_contract::ContractError;

/// An analyzer failure. Problems with single segments are not errors: they are collected in
/// [`crate::store::MergeReport`] so the rest of a bundle is still analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    /// The DuckDB store failed; `context` says what was being done.
    #[error("DuckDB store {context}: {source}")]
    Store {
        /// What was being done.
        context: String,
        /// DuckDB's error.
        source: duckdb::Error,
    },
    /// A bundle could not be opened at all.
    #[error(transparent)]
    Bundle(#[from] ContractError),
    /// A store file that cannot be opened.
    #[error("{path}: cannot open the DuckDB store: {source}")]
    Open {
        /// The store file.
        path: PathBuf,
        /// DuckDB's error.
        source: duckdb::Error,
    },
    /// A query argument that makes no sense (bad duration, unknown resource kind, …).
    #[error("{0}")]
    Invalid(String),
}

impl AnalyzerError {
    /// Wraps a DuckDB error with what was being done.
    pub fn store(context: impl Into<String>) -> impl FnOnce(duckdb::Error) -> Self {
        let context = context.into();
        move |source| AnalyzerError::Store { context, source }
    }
}

/// Result type of the analyzer.
pub type Result<T, E = AnalyzerError> = std::result::Result<T, E>;
