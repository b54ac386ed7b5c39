//! KubeArmor's own telemetry mapped onto the event contract (schema v1, design §3).
//!
//! KubeArmor reports behaviour as `Log` and `Alert` messages (protobuf package `feeder`).
//! `karmor logs --json` prints each one as a JSON object whose keys are the protobuf field names
//! (`Timestamp`, `UpdatedTime`, `HostName`, `Operation`, `Resource`, `Data`, …), one object per
//! line. Three pieces live here:
//!
//! - [`KubeArmorRecord`]: one such object, every field optional;
//! - [`to_event`]: the mapping of one record onto an [`Event`] (pure, no I/O). The collector
//!   uses it for records received from KubeArmor's gRPC feed, `kubectl karmor import` for
//!   records read from files;
//! - [`read_json_logs`]: a reader for whole files, tolerant of bad lines.
//!
//! # Mapping rules
//!
//! **Time.** `UpdatedTime` (RFC 3339, microseconds, e.g. `2023-06-11T10:12:51.967519Z`; a time
//! without offset is read as UTC) gives nanoseconds since the Unix epoch; without a usable
//! `UpdatedTime`, `Timestamp` (seconds) × 10⁹; without either (or with `Timestamp` 0, protobuf's
//! "unset"), 0 — the Unix epoch — and [`read_json_logs`] counts the record in
//! [`ImportOutcome::without_timestamp`]. An `UpdatedTime` that is not a time is an error only
//! when there is no `Timestamp` to fall back on. `ts_last = ts_first`, `count = 1`.
//!
//! **Where.** `cluster` = `ClusterName`; `node` = `HostName`, or `"unknown"`; `namespace`,
//! `pod`, `container`, `container_id`, `image` from `NamespaceName`, `PodName`,
//! `ContainerName`, `ContainerID`, `ContainerImage`. Empty (or blank) strings are `None`
//! everywhere. `labels` = `Labels` split on `,` — and on whitespace, because some KubeArmor
//! versions separate labels with spaces (`container=ubuntu-1 group=group-1`); Kubernetes label
//! keys and values cannot contain either — trimmed, sorted, de-duplicated. `host` is true when
//! `Type` is `HostLog` or `MatchedHostPolicy`, or when there is neither a namespace nor a
//! container id.
//!
//! **Workload.** `Owner.Ref` → `workload_kind`, `Owner.Name` → `workload` (an owner of kind
//! `ReplicaSet` named `<deployment>-<pod-template-hash>` becomes that `Deployment`). Without an
//! owner, a pod name shaped like a Deployment's pod, `<name>-<pod-template-hash>-<suffix>`,
//! gives `Deployment` `<name>`, where the hash is 6–10 characters and the suffix exactly 5, both
//! drawn from the alphabet Kubernetes uses for generated names (`bcdfghjklmnpqrstvwxz2456789`:
//! no vowels, no 0, 1, 3), and the hash is not all digits (which keeps CronJob pods,
//! `<cronjob>-<minutes since epoch>-<suffix>`, out). A pod with a single generated suffix
//! (`<name>-<suffix>`) may belong to a DaemonSet or a Job: left `None`. So are StatefulSet pods
//! (`<name>-<ordinal>`) and anything else.
//!
//! **Who.** `pid`, `ppid`, `uid` from `PID`, `PPID`, `UID` (JSON numbers or decimal strings).
//! For `Process` operations `Resource` is the executed command line: `process` is its first
//! word (or `ProcessName` when `Resource` is empty), `args` the rest; `parent_process` is
//! `ParentProcessName`, or else the first word of `Source` (for exec events `Source` is the
//! parent). For the other operations `process` is `ProcessName`, or else the first word of
//! `Source`; `args` is the rest of `Source`; `parent_process` is `ParentProcessName`.
//!
//! **What.** `op` from `Operation`: `Process`, `File`, `Network`, `Syscall`, `Capabilities`
//! (also `Capability`), compared without regard to case. Anything else, KubeArmor's
//! `AlertThreshold` system events included, is a [`MappingError`]. The `syscall` column is the
//! value of `syscall=` in `Data` (e.g. `SYS_OPENAT`); for network and capability events of
//! older KubeArmor versions, which put it in `Resource`, from there. `kprobe=`, `lsm=` and
//! `kfunc=` name kernel hooks, not system calls, and never fill it.
//!
//! **File.** `path` = `Resource`. `access` from `Data`, by system call (or BPF-LSM hook):
//! `unlink`, `unlinkat`, `rmdir` → `delete`; `rename`, `renameat`, `renameat2` → `rename`;
//! `chmod`, `fchmod`, `fchmodat` → `chmod`; `chown`, `fchown`, `lchown`, `fchownat` →
//! `chown`; `execve`, `execveat` → `exec`; `mkdir(at)`, `mknod(at)`, `creat`, `(sym)link(at)` →
//! `create`; `truncate`, `ftruncate` → `write`; `close` → no access. Otherwise by the open
//! `flags=`: `O_CREAT` (or `O_TMPFILE`) → `create`; `O_WRONLY`, `O_RDWR`, `O_TRUNC` or
//! `O_APPEND` → `write`; anything else (`O_RDONLY`, `flags=` empty, no flags, the BPF-LSM
//! `FILE_OPEN` hook) → `read`.
//!
//! **Syscall.** `path` = `Resource` when it is an absolute path.
//!
//! **Capability.** `capability` = the value of `cap=` in `Data`, else of `capability=` in
//! `Resource` (older versions), else `Resource` itself, else a bare `CAP_…` word in `Data`;
//! upper-cased with a `CAP_` prefix (`net_raw` → `CAP_NET_RAW`).
//!
//! **Network.** `Resource` and `Data` are read as `key=value` words separated by spaces or
//! commas (values may contain `|`). The shapes KubeArmor produces:
//!
//! | `Resource` | `Data` | mapped to |
//! |---|---|---|
//! | `sa_family=AF_INET sin_port=53 sin_addr=10.0.0.10` (keys in any order; IPv6 as `AF_INET6` with `sin_port`/`sin_addr`, or `sin6_port`/`sin6_addr`; `AF_UNIX` with `sun_path`) | `syscall=SYS_CONNECT fd=10` | the address is the peer's for `connect`, `accept` and `send`, ours (`local_*`) for `bind` |
//! | `remoteip=34.210.7.19 port=443 protocol=TCP` | `kprobe=tcp_connect domain=AF_INET` | `connect`, `remote_addr`/`remote_port` |
//! | same | `kprobe=tcp_accept domain=AF_INET` | `accept`, `remote_addr` = `remoteip`; `port` is **our** listening port (KubeArmor's probe reads `skc_num`), so it goes to `local_port` |
//! | `domain=AF_INET type=SOCK_STREAM\|SOCK_NONBLOCK protocol=0` | `syscall=SYS_SOCKET` | `socket` |
//! | `protocol=TCP,type=SOCK_STREAM` (BPF-LSM enforcer) | `lsm=SOCKET_CONNECT …` | `connect` |
//! | `google.com` (a bare host name) | `lsm=SOCKET_SENDMSG domain=…` | `send`, `remote_name` = `Resource` |
//! | `sa_family=AF_INET sin_port=53` | `kfunc=UDP_SENDMSG,domain=…,daddr=10.43.0.10,qtype=A` (DNS query) | `send`, `udp`, `remote_addr` = `daddr`, `remote_name` = `domain` |
//!
//! `direction` from the system call (`SYS_CONNECT` → `connect`; `SYS_ACCEPT`, `SYS_ACCEPT4` →
//! `accept`; `SYS_BIND` → `bind`; `SYS_LISTEN` → `listen`; `SYS_SENDTO`, `SYS_SENDMSG`,
//! `SYS_SENDMMSG` → `send`; `SYS_SOCKET` → `socket`), the kprobe (`tcp_connect`, `tcp_accept`),
//! the BPF-LSM hook (`SOCKET_CREATE` → `socket`, `SOCKET_CONNECT`, `SOCKET_ACCEPT`,
//! `SOCKET_SENDMSG` → `send`, …) or the `UDP_SENDMSG` kfunc (`send`). `proto`, first rule that
//! applies: `AF_UNIX`/`AF_LOCAL` or a `sun_path` → `unix`; `protocol` ICMP (`ICMP`, `IPv6-ICMP`,
//! 1, 58) → `icmp`; `SOCK_RAW`/`SOCK_PACKET`, or the `AF_PACKET` family → `raw`; `protocol`
//! named `TCP`/`UDP` (also `TCPv6`, `UDPv6`, 6, 17) → lower-cased; another explicit protocol
//! (e.g. SCTP) → unknown; for Internet (or unnamed) families `SOCK_STREAM` → `tcp`,
//! `SOCK_DGRAM` → `udp`; a `tcp_*` kprobe → `tcp`, the `UDP_SENDMSG` kfunc → `udp`. Network
//! resources in no known shape still import, with these fields left `None`.
//!
//! **Outcome.** `result` = `Result`, `policy` = `PolicyName`, `action` = `Action`.

use std::fmt;
use std::io::{self, BufRead};
use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::schema::{Event, Op, Source};

/// Largest record [`read_json_logs`] accepts: one line, or one element of a JSON array.
/// KubeArmor events are a few kilobytes; anything near this is hostile or corrupt and is
/// reported as an error without being held in memory.
pub const MAX_RECORD_BYTES: usize = 4 << 20;

/// The owner of a pod as KubeArmor resolved it (`Podowner`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeArmorOwner {
    /// `Ref`: the owner's kind, e.g. `Deployment`, `DaemonSet`, `StatefulSet`.
    pub kind: Option<String>,
    /// `Name`: the owner's name.
    pub name: Option<String>,
    /// `Namespace`: the owner's namespace.
    pub namespace: Option<String>,
}

/// One KubeArmor `Log` or `Alert` as `karmor logs --json` prints it.
///
/// Every field is optional and unknown fields are ignored. Integer fields accept JSON numbers
/// and decimal strings (protobuf's JSON encoding writes 64-bit integers as strings). A field of
/// the wrong type is a deserialization error that names the field, e.g.
/// `bad field PID: expected an integer, found string "abc"`. The informational fields
/// `Severity`, `Tags`, `Message`, `Enforcer`, `Cwd`, `TTY` and `UserName` take whatever scalar
/// they are given and never fail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct KubeArmorRecord {
    /// `Timestamp`: seconds since the Unix epoch.
    #[serde(rename = "Timestamp", deserialize_with = "de_timestamp")]
    pub timestamp: Option<i64>,
    /// `UpdatedTime`: RFC 3339 time with microseconds.
    #[serde(rename = "UpdatedTime", deserialize_with = "de_updated_time")]
    pub updated_time: Option<String>,
    /// `ClusterName`.
    #[serde(rename = "ClusterName", deserialize_with = "de_cluster_name")]
    pub cluster_name: Option<String>,
    /// `HostName`: the node.
    #[serde(rename = "HostName", deserialize_with = "de_host_name")]
    pub host_name: Option<String>,
    /// `NamespaceName`.
    #[serde(rename = "NamespaceName", deserialize_with = "de_namespace_name")]
    pub namespace_name: Option<String>,
    /// `Owner`: `{Ref, Name, Namespace}` of the pod's owning workload.
    #[serde(rename = "Owner", deserialize_with = "de_owner")]
    pub owner: Option<KubeArmorOwner>,
    /// `PodName`.
    #[serde(rename = "PodName", deserialize_with = "de_pod_name")]
    pub pod_name: Option<String>,
    /// `Labels`: `k=v,k=v`.
    #[serde(rename = "Labels", deserialize_with = "de_labels")]
    pub labels: Option<String>,
    /// `ContainerID`.
    #[serde(rename = "ContainerID", deserialize_with = "de_container_id")]
    pub container_id: Option<String>,
    /// `ContainerName`.
    #[serde(rename = "ContainerName", deserialize_with = "de_container_name")]
    pub container_name: Option<String>,
    /// `ContainerImage`.
    #[serde(rename = "ContainerImage", deserialize_with = "de_container_image")]
    pub container_image: Option<String>,
    /// `ParentProcessName`: executable path of the parent.
    #[serde(
        rename = "ParentProcessName",
        deserialize_with = "de_parent_process_name"
    )]
    pub parent_process_name: Option<String>,
    /// `ProcessName`: executable path of the acting process.
    #[serde(rename = "ProcessName", deserialize_with = "de_process_name")]
    pub process_name: Option<String>,
    /// `HostPPID`: parent pid in the host's pid namespace.
    #[serde(rename = "HostPPID", deserialize_with = "de_host_ppid")]
    pub host_ppid: Option<i64>,
    /// `HostPID`: pid in the host's pid namespace.
    #[serde(rename = "HostPID", deserialize_with = "de_host_pid")]
    pub host_pid: Option<i64>,
    /// `PPID`: parent pid as the container sees it.
    #[serde(rename = "PPID", deserialize_with = "de_ppid")]
    pub ppid: Option<i32>,
    /// `PID`: pid as the container sees it.
    #[serde(rename = "PID", deserialize_with = "de_pid")]
    pub pid: Option<i32>,
    /// `UID`.
    #[serde(rename = "UID", deserialize_with = "de_uid")]
    pub uid: Option<u32>,
    /// `Type`: `ContainerLog`, `HostLog`, `MatchedPolicy`, `MatchedHostPolicy`, …
    #[serde(rename = "Type", deserialize_with = "de_type")]
    pub log_type: Option<String>,
    /// `Source`: the acting process (for exec events, the parent), path plus arguments.
    #[serde(rename = "Source", deserialize_with = "de_source")]
    pub source: Option<String>,
    /// `Operation`: `Process`, `File`, `Network`, `Syscall`, `Capabilities`.
    #[serde(rename = "Operation", deserialize_with = "de_operation")]
    pub operation: Option<String>,
    /// `Resource`: command line, file path, or network description.
    #[serde(rename = "Resource", deserialize_with = "de_resource")]
    pub resource: Option<String>,
    /// `Data`: `key=value` details, e.g. `syscall=SYS_OPENAT fd=-100 flags=O_RDONLY`.
    #[serde(rename = "Data", deserialize_with = "de_data")]
    pub data: Option<String>,
    /// `Result`: `Passed` or the error text.
    #[serde(rename = "Result", deserialize_with = "de_result")]
    pub result: Option<String>,
    /// `PolicyName` (alerts).
    #[serde(rename = "PolicyName", deserialize_with = "de_policy_name")]
    pub policy_name: Option<String>,
    /// `Severity` (alerts).
    #[serde(rename = "Severity", deserialize_with = "de_lenient")]
    pub severity: Option<String>,
    /// `Tags` (alerts), comma separated.
    #[serde(rename = "Tags", deserialize_with = "de_lenient")]
    pub tags: Option<String>,
    /// `Message` (alerts).
    #[serde(rename = "Message", deserialize_with = "de_lenient")]
    pub message: Option<String>,
    /// `Action` (alerts): `Allow`, `Audit`, `Block`.
    #[serde(rename = "Action", deserialize_with = "de_action")]
    pub action: Option<String>,
    /// `Enforcer` (alerts): `AppArmor`, `BPFLSM`, `eBPF Monitor`, …
    #[serde(rename = "Enforcer", deserialize_with = "de_lenient")]
    pub enforcer: Option<String>,
    /// `Cwd`: working directory of the process.
    #[serde(rename = "Cwd", deserialize_with = "de_lenient")]
    pub cwd: Option<String>,
    /// `TTY`: terminal of the process, if any.
    #[serde(rename = "TTY", deserialize_with = "de_lenient")]
    pub tty: Option<String>,
    /// `UserName`.
    #[serde(rename = "UserName", deserialize_with = "de_lenient")]
    pub user_name: Option<String>,
}

/// Why a record cannot be mapped onto an [`Event`]. Messages name the KubeArmor field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A field the mapping needs is absent or empty.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A field holds a value the mapping does not know (the value is shortened if long).
    #[error("unknown {field} {value:?}")]
    UnknownValue {
        /// The KubeArmor field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// A field holds a value of the wrong type, out of range, or unreadable.
    #[error("bad field {field}: {reason}")]
    BadField {
        /// The KubeArmor field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// A record of the input that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line of the input where the record starts.
    pub line: u64,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LineError {}

/// What [`read_json_logs`] made of its input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportOutcome {
    /// The records that mapped, in input order.
    pub events: Vec<Event>,
    /// The records that did not, in input order.
    pub errors: Vec<LineError>,
    /// Physical lines read (blank lines included).
    pub lines: u64,
    /// How many of `events` had no usable time and were placed at the Unix epoch.
    pub without_timestamp: u64,
}

mod fields;
mod mapping;
mod reader;
mod strings;

use fields::*;
use mapping::*;
pub use mapping::{event_time, to_event};
pub use reader::read_json_logs;
use strings::*;

#[cfg(test)]
mod tests;
