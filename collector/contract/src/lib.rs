//! `karmor-contract`: the **event contract** shared by every kubectl-karmor crate (design §3, §4).
//!
//! The schema v1 row ([`Event`]), Parquet segments ([`segment`]), bundles ([`bundle`]), the
//! de-duplication window ([`dedup`]) and the mapping of KubeArmor's own telemetry onto the
//! schema ([`kubearmor`]). Plain data and files: no async runtime, gRPC, eBPF, Kubernetes client
//! or DuckDB, so that every producer (collector, import, the KubeArmor feed) and every reader
//! (analyzer, notebooks' tooling) can depend on it.

pub mod bundle;
pub mod compact;
pub mod dedup;
pub mod error;
pub mod kubearmor;
pub mod logical;
pub mod pods;
pub mod schema;
pub mod segment;

pub use error::ContractError;
pub use schema::{Event, Op, Source};
