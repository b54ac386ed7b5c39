//! Schema v1 of the event contract (design §3): one row is one distinct behaviour seen in a
//! time window, with a count.
//!
//! [`Event`] is the Rust view of a row; [`arrow_schema`] is the Arrow/Parquet definition every
//! writer uses and every reader checks. Two columns extend the design's list, both nullable:
//! `syscall` (the system call behind the event, e.g. `SYS_OPENAT`) and `capability` (for
//! `op = capability`), because KubeArmor's `Syscall` and `Capabilities` operations carry no path
//! or address to put them in.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde::{Deserialize, Serialize};

/// Major version of the schema. Readers refuse files with another major version.
pub const SCHEMA_MAJOR: u32 = 1;
/// Minor version: additive, backwards-compatible changes.
pub const SCHEMA_MINOR: u32 = 0;

/// `"1.0"`: the version string written in Parquet metadata and manifests.
pub fn schema_version() -> String {
    format!("{SCHEMA_MAJOR}.{SCHEMA_MINOR}")
}

/// The kind of behaviour a row records.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// A program was executed.
    #[default]
    Process,
    /// A file was opened, created, deleted, …
    File,
    /// A socket connected, accepted, bound, listened or sent.
    Network,
    /// A notable system call (KubeArmor's `Syscall` operation).
    Syscall,
    /// A capability was used (KubeArmor's `Capabilities` operation).
    Capability,
}

impl Op {
    /// All operations, in display order.
    pub const ALL: [Op; 5] = [
        Op::Process,
        Op::File,
        Op::Network,
        Op::Syscall,
        Op::Capability,
    ];

    /// The lower-case name stored in the `op` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Process => "process",
            Op::File => "file",
            Op::Network => "network",
            Op::Syscall => "syscall",
            Op::Capability => "capability",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Op {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Op::ALL
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| {
                format!("unknown op {s:?} (expected process, file, network, syscall or capability)")
            })
    }
}

/// Where a row came from.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Our own eBPF sensors.
    Ebpf,
    /// The node's KubeArmor daemon, through its gRPC feed.
    Kubearmor,
    /// `kubectl karmor import` of KubeArmor JSON logs.
    #[default]
    Import,
}

impl Source {
    /// The lower-case name stored in the `source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Ebpf => "ebpf",
            Source::Kubearmor => "kubearmor",
            Source::Import => "import",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ebpf" => Ok(Source::Ebpf),
            "kubearmor" => Ok(Source::Kubearmor),
            "import" => Ok(Source::Import),
            _ => Err(format!(
                "unknown source {s:?} (expected ebpf, kubearmor or import)"
            )),
        }
    }
}

/// One row of the contract: a distinct behaviour and how often it was seen between
/// `ts_first` and `ts_last`.
///
/// Timestamps are nanoseconds since the Unix epoch, UTC. `node` is never empty (`"unknown"`
/// when the producer could not tell). Host processes have `host = true` and no namespace/pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Event {
    /// First time the behaviour was seen (ns since epoch, UTC).
    pub ts_first: i64,
    /// Last time the behaviour was seen (ns since epoch, UTC).
    pub ts_last: i64,
    /// How many raw events this row stands for (at least 1).
    pub count: u64,

    /// Cluster name, when known.
    pub cluster: Option<String>,
    /// Node (host) name.
    pub node: String,
    /// Kubernetes namespace; `None` for host processes.
    pub namespace: Option<String>,
    /// Pod name.
    pub pod: Option<String>,
    /// Pod UID.
    pub pod_uid: Option<String>,
    /// Container name inside the pod.
    pub container: Option<String>,
    /// Runtime container id (64 hex characters for containerd/CRI-O/Docker).
    pub container_id: Option<String>,
    /// Container image reference.
    pub image: Option<String>,
    /// Kind of the owning workload: `Deployment`, `StatefulSet`, `DaemonSet`, `Job`, `CronJob`, …
    pub workload_kind: Option<String>,
    /// Name of the owning workload (through ReplicaSets for Deployments).
    pub workload: Option<String>,
    /// Pod labels as sorted `key=value` strings.
    pub labels: Vec<String>,
    /// True for behaviour of host processes (outside any container).
    pub host: bool,

    /// Process id (as the producer saw it).
    pub pid: Option<i32>,
    /// Parent process id.
    pub ppid: Option<i32>,
    /// User id of the process.
    pub uid: Option<u32>,
    /// Executable path of the acting process.
    pub process: Option<String>,
    /// Executable path of its parent.
    pub parent_process: Option<String>,
    /// Arguments (optional, may be redacted).
    pub args: Option<String>,

    /// Kind of behaviour.
    pub op: Op,
    /// Producer of the row.
    pub source: Source,

    /// File path (op `file`, and executed path for `syscall` when it names one).
    pub path: Option<String>,
    /// File access: `read`, `write`, `create`, `delete`, `exec`, `rename`, `chmod`, `chown`.
    pub access: Option<String>,

    /// `tcp`, `udp`, `icmp`, `raw` (and `unix` for local sockets).
    pub proto: Option<String>,
    /// `connect`, `accept`, `bind`, `listen`, `send`, or `socket` (creation seen, no peer).
    pub direction: Option<String>,
    /// Local address.
    pub local_addr: Option<String>,
    /// Local port.
    pub local_port: Option<u16>,
    /// Remote address.
    pub remote_addr: Option<String>,
    /// Remote port.
    pub remote_port: Option<u16>,
    /// Service or DNS name of the peer, when known.
    pub remote_name: Option<String>,

    /// System call behind the event, e.g. `SYS_OPENAT` (schema extension).
    pub syscall: Option<String>,
    /// Capability used, e.g. `CAP_NET_RAW` (schema extension).
    pub capability: Option<String>,

    /// `Passed` or the error text (`Permission denied`).
    pub result: Option<String>,
    /// Name of the KubeArmor policy that matched (alerts only).
    pub policy: Option<String>,
    /// Action of that policy: `Allow`, `Audit`, `Block` (alerts only).
    pub action: Option<String>,
}

/// Column names of schema v1, in file order.
pub const COLUMNS: &[&str] = &[
    "ts_first",
    "ts_last",
    "count",
    "cluster",
    "node",
    "namespace",
    "pod",
    "pod_uid",
    "container",
    "container_id",
    "image",
    "workload_kind",
    "workload",
    "labels",
    "host",
    "pid",
    "ppid",
    "uid",
    "process",
    "parent_process",
    "args",
    "op",
    "source",
    "path",
    "access",
    "proto",
    "direction",
    "local_addr",
    "local_port",
    "remote_addr",
    "remote_port",
    "remote_name",
    "syscall",
    "capability",
    "result",
    "policy",
    "action",
];

/// The Arrow schema of v1 (without file metadata; see [`crate::segment`]).
pub fn arrow_schema() -> Arc<Schema> {
    let ts = || DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let s = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let fields = vec![
        Field::new("ts_first", ts(), false),
        Field::new("ts_last", ts(), false),
        Field::new("count", DataType::UInt64, false),
        s("cluster", true),
        s("node", false),
        s("namespace", true),
        s("pod", true),
        s("pod_uid", true),
        s("container", true),
        s("container_id", true),
        s("image", true),
        s("workload_kind", true),
        s("workload", true),
        Field::new(
            "labels",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
            false,
        ),
        Field::new("host", DataType::Boolean, false),
        Field::new("pid", DataType::Int32, true),
        Field::new("ppid", DataType::Int32, true),
        Field::new("uid", DataType::UInt32, true),
        s("process", true),
        s("parent_process", true),
        s("args", true),
        s("op", false),
        s("source", false),
        s("path", true),
        s("access", true),
        s("proto", true),
        s("direction", true),
        s("local_addr", true),
        Field::new("local_port", DataType::UInt16, true),
        s("remote_addr", true),
        Field::new("remote_port", DataType::UInt16, true),
        s("remote_name", true),
        s("syscall", true),
        s("capability", true),
        s("result", true),
        s("policy", true),
        s("action", true),
    ];
    debug_assert_eq!(fields.len(), COLUMNS.len());
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_match_arrow_schema_order() {
        let schema = arrow_schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, COLUMNS);
    }

    #[test]
    fn op_and_source_round_trip_through_strings() {
        for op in Op::ALL {
            assert_eq!(op.as_str().parse::<Op>().unwrap(), op);
        }
        for s in [Source::Ebpf, Source::Kubearmor, Source::Import] {
            assert_eq!(s.as_str().parse::<Source>().unwrap(), s);
        }
        assert!("Process".parse::<Op>().is_err());
    }
}
