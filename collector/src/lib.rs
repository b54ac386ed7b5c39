//! `karmor-collector`, the DaemonSet: eBPF sensors → attribution → de-duplication
//! window → node-local Parquet segments with rotation and retention, plus metrics.
//!
//! - [`raw`]: the ring buffer record layout shared with `bpf/karmor.bpf.c`;
//! - [`probes`]: loading and attaching the probes with aya;
//! - [`attribution`]: cgroup names → container id → pod; pid → executable;
//! - [`kube_pods`]: the pod side of attribution, a watch of this node's pods;
//! - [`pipeline`]: the de-duplication window and row building;
//! - [`datadir`]: the data directory as a live bundle (rotation, retention, crash recovery);
//! - [`tiers`]: hot segments, hour and day files, and which compactions are due;
//! - [`compactor`]: the thread that compacts closed hours and days;
//! - [`metrics`]: counters and the Prometheus endpoint;
//! - [`service`]: the gRPC service (`karmor.collector.v1`) over the data directory;
//! - [`kubearmor_source`]: KubeArmor's LogService as a source, with reconnects;
//! - [`synthetic`]: a kernel-free feed for benchmarks and crash tests;
//! - [`run`]: the main loop.
//!
//! The event contract it writes is `karmor-contract`; the gRPC protocol it serves is
//! `karmor-proto`.

pub mod archiver;
pub mod attribution;
pub mod compactor;
pub mod datadir;
pub mod kernel_names;
pub mod kube_pods;
pub mod kube_services;
pub mod kubearmor_source;
pub mod metrics;
pub mod pipeline;
pub mod pod_addresses;
pub mod probes;
pub mod raw;
pub mod run;
pub mod service;
pub mod synthetic;
pub mod tiers;
