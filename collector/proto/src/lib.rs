//! `karmor-proto`: the gRPC protocols of kubectl-karmor (design §1 and §5) and their clients.
//!
//! - [`proto::collector`]: `karmor.collector.v1`, the service each collector serves on
//!   127.0.0.1 (list segments, fetch a segment in checksummed chunks, follow new segments,
//!   health); `collector.proto`.
//! - [`proto::feeder`]: a wire-compatible subset of KubeArmor's `LogService`
//!   (`kubearmor.proto`: KubeArmor's package, names and field numbers).
//! - [`client`]: pulling segments into a bundle, resumable and verified;
//!   [`pulled_bundle`]: how fetched files join the bundle, compacted files replacing the
//!   segments they hold.
//! - [`kubearmor`]: watching a KubeArmor daemon or relay, each message mapped onto the schema
//!   with the rules of [`karmor_contract::kubearmor`] (the same mapping as `kubectl karmor import`).
//!
//! This crate needs neither aya nor kube nor DuckDB: the plugin pulls with it and the collector
//! serves with it. Use the re-exported [`tonic`] so that versions always match.

pub mod client;
pub mod error;
pub mod kubearmor;
pub mod pulled_bundle;

pub use client::*;
pub use error::ClientError;
pub use kubearmor::{watch_kubearmor, FeedKind, KubeArmorEvent, KubeArmorFeeds, RecentKeys};
pub use tonic;

/// Code generated from `proto/` by `build.rs`.
pub mod proto {
    /// `karmor.collector.v1`: the collector service.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod collector {
        tonic::include_proto!("karmor.collector.v1");
    }
    /// `feeder`: KubeArmor's telemetry API (the subset we use, wire-compatible).
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod feeder {
        tonic::include_proto!("feeder");
    }
}

/// Default address of the collector service: loopback only, reached through a port-forward.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7946";
/// Port of the collector service.
pub const DEFAULT_PORT: u16 = 7946;
/// KubeArmor's gRPC port (daemon and relay).
pub const KUBEARMOR_PORT: u16 = 32767;
