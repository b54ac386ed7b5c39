//! The KubeArmor discovery collector and the **event contract** shared by every crate.
//!
//! With default features off this crate is only the contract: the schema v1 row ([`Event`]),
//! Parquet segments ([`segment`]), bundles ([`bundle`]), the de-duplication window
//! ([`dedup`]) and the mapping of KubeArmor's own telemetry onto the schema ([`kubearmor`]).
//! With the `grpc` feature it adds the gRPC protocol and its clients (`grpc`: pulling segments
//! from collectors, watching KubeArmor) without aya or kube. With the default `daemon` feature
//! it is also the collector itself (`daemon`).

pub mod bundle;
#[cfg(feature = "daemon")]
pub mod daemon;
pub mod dedup;
pub mod error;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod kubearmor;
pub mod schema;
pub mod segment;

pub use error::ContractError;
pub use schema::{Event, Op, Source};
