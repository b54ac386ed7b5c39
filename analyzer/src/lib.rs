//! The analyzer: merges bundles into a DuckDB store and answers questions about them.
//!
//! - [`store`]: the DuckDB file, idempotent merges with provenance.
//! - [`bundle_source`]: a bundle named by the user, a directory or a `.tar` of one.
//! - [`filter`]: the `-f/--filter` language, compiled to parameterised SQL.
//! - [`timespec`]: `--since` durations.
//! - [`observe`]: behaviour summaries per namespace, workload, pod, container or node.
//! - [`browse`]: observe's sections as paged, sorted views (the terminal UI's queries).
//! - [`policy`]: the KubeArmor policy model and a validator that agrees with the CRDs.
//! - [`recommend`]: policies drafted from observed behaviour, with explained generalisations.
//! - [`simulate`]: recorded behaviour replayed through KubeArmor's policy semantics.
//! - [`network`]: peers resolved through the pods table; NetworkPolicy and
//!   CiliumNetworkPolicy drafts, simulation and validation.
//! - [`drift`]: stability verdicts (has learning converged?) and diffs against a baseline.

mod access_set;
pub mod browse;
pub mod bundle_source;
pub mod drift;
pub mod error;
pub mod filter;
pub mod network;
pub mod observe;
pub mod policy;
pub mod recommend;
mod result_columns;
pub mod simulate;
pub mod store;
pub mod timespec;

pub use error::{AnalyzerError, Result};
pub use store::Store;
