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

// ============================================================================================
// Mapping
// ============================================================================================

/// Maps one KubeArmor record onto a schema-v1 row (the rules are in the module
/// documentation). `source` is written to the row's `source` column.
pub fn to_event(rec: &KubeArmorRecord, source: Source) -> Result<Event, MappingError> {
    map_record(rec, source).map(|(event, _)| event)
}

/// The time of a record in nanoseconds since the Unix epoch (UTC): from `UpdatedTime`, else
/// from `Timestamp`; `None` when the record carries neither (a `Timestamp` of 0 counts as
/// absent). An unreadable `UpdatedTime` is an error only when there is no `Timestamp`.
pub fn event_time(rec: &KubeArmorRecord) -> Result<Option<i64>, MappingError> {
    let timestamp = rec.timestamp.filter(|&t| t != 0);
    if let Some(updated) = text(&rec.updated_time) {
        if let Some(ns) = parse_time_ns(updated) {
            return Ok(Some(ns));
        }
        if timestamp.is_none() {
            return Err(MappingError::BadField {
                field: "UpdatedTime",
                reason: format!("not an RFC 3339 time: {:?}", clip(updated)),
            });
        }
    }
    match timestamp {
        None => Ok(None),
        Some(seconds) => {
            seconds
                .checked_mul(1_000_000_000)
                .map(Some)
                .ok_or_else(|| MappingError::BadField {
                    field: "Timestamp",
                    reason: format!("{seconds} seconds is out of range"),
                })
        }
    }
}

/// [`to_event`], also telling whether the record had a time of its own.
fn map_record(rec: &KubeArmorRecord, source: Source) -> Result<(Event, bool), MappingError> {
    let op = parse_op(rec.operation.as_deref())?;
    let time = event_time(rec)?;
    let ts = time.unwrap_or(0);

    let namespace = owned(&rec.namespace_name);
    let container_id = owned(&rec.container_id);
    let pod = owned(&rec.pod_name);
    let host = matches!(text(&rec.log_type), Some("HostLog" | "MatchedHostPolicy"))
        || (namespace.is_none() && container_id.is_none());
    let (workload_kind, workload) = workload_of(rec.owner.as_ref(), pod.as_deref());

    let resource = text(&rec.resource);
    let data = text(&rec.data);
    let (source_first, source_rest) = split_command(text(&rec.source));

    let mut ev = Event {
        ts_first: ts,
        ts_last: ts,
        count: 1,
        cluster: owned(&rec.cluster_name),
        node: text(&rec.host_name).unwrap_or("unknown").to_owned(),
        namespace,
        pod,
        pod_uid: None,
        container: owned(&rec.container_name),
        container_id,
        image: owned(&rec.container_image),
        workload_kind,
        workload,
        labels: split_labels(text(&rec.labels)),
        host,
        pid: rec.pid,
        ppid: rec.ppid,
        uid: rec.uid,
        op,
        source,
        syscall: syscall_of(op, resource, data),
        result: owned(&rec.result),
        policy: owned(&rec.policy_name),
        action: owned(&rec.action),
        ..Event::default()
    };

    if op == Op::Process {
        let (first, rest) = split_command(resource);
        match first {
            Some(first) => {
                ev.process = Some(first.to_owned());
                ev.args = rest.map(str::to_owned);
            }
            None => ev.process = owned(&rec.process_name),
        }
        ev.parent_process = text(&rec.parent_process_name)
            .or(source_first)
            .map(str::to_owned);
    } else {
        ev.process = text(&rec.process_name).or(source_first).map(str::to_owned);
        ev.args = source_rest.map(str::to_owned);
        ev.parent_process = owned(&rec.parent_process_name);
    }

    match op {
        Op::Process => {}
        Op::File => {
            ev.path = resource.map(str::to_owned);
            ev.access = data.and_then(file_access).map(str::to_owned);
        }
        Op::Syscall => ev.path = resource.filter(|r| r.starts_with('/')).map(str::to_owned),
        Op::Capability => ev.capability = capability_of(resource, data),
        Op::Network => map_network(resource, data, &mut ev),
    }

    Ok((ev, time.is_some()))
}

fn parse_op(operation: Option<&str>) -> Result<Op, MappingError> {
    let raw = operation
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(MappingError::MissingField("Operation"))?;
    match raw.to_ascii_lowercase().as_str() {
        "process" => Ok(Op::Process),
        "file" => Ok(Op::File),
        "network" => Ok(Op::Network),
        "syscall" => Ok(Op::Syscall),
        "capabilities" | "capability" => Ok(Op::Capability),
        _ => Err(MappingError::UnknownValue {
            field: "Operation",
            value: clip(raw),
        }),
    }
}

fn parse_time_ns(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt();
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
        .and_then(|t| t.and_utc().timestamp_nanos_opt())
}

/// `(workload_kind, workload)`: the owner KubeArmor reported, else the pod-name heuristic.
fn workload_of(
    owner: Option<&KubeArmorOwner>,
    pod: Option<&str>,
) -> (Option<String>, Option<String>) {
    if let Some((kind, name)) = owner.and_then(|o| Some((text(&o.kind)?, text(&o.name)?))) {
        if kind == "ReplicaSet" {
            if let Some(deployment) = deployment_of_replicaset(name) {
                return (Some("Deployment".into()), Some(deployment.into()));
            }
        }
        return (Some(kind.into()), Some(name.into()));
    }
    match pod.and_then(deployment_of_pod) {
        Some(deployment) => (Some("Deployment".into()), Some(deployment.into())),
        None => (None, None),
    }
}

/// The alphabet of Kubernetes-generated name parts (`rand.SafeEncodeString`, `GenerateName`).
const GENERATED_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generated(s: &str) -> bool {
    s.bytes().all(|b| GENERATED_ALPHABET.contains(&b))
}

fn pod_template_hash(s: &str) -> bool {
    (6..=10).contains(&s.len()) && generated(s) && !s.bytes().all(|b| b.is_ascii_digit())
}

/// `<name>` of a pod named `<name>-<pod-template-hash>-<5-character suffix>`.
fn deployment_of_pod(pod: &str) -> Option<&str> {
    let (rest, suffix) = pod.rsplit_once('-')?;
    let (name, hash) = rest.rsplit_once('-')?;
    (!name.is_empty() && suffix.len() == 5 && generated(suffix) && pod_template_hash(hash))
        .then_some(name)
}

/// `<name>` of a ReplicaSet named `<name>-<pod-template-hash>`.
fn deployment_of_replicaset(replicaset: &str) -> Option<&str> {
    let (name, hash) = replicaset.rsplit_once('-')?;
    (!name.is_empty() && pod_template_hash(hash)).then_some(name)
}

fn split_labels(labels: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = labels
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// First word and the (trimmed) rest of a command line.
fn split_command(cmd: Option<&str>) -> (Option<&str>, Option<&str>) {
    let cmd = cmd.map(str::trim).unwrap_or("");
    if cmd.is_empty() {
        return (None, None);
    }
    match cmd.find(char::is_whitespace) {
        None => (Some(cmd), None),
        Some(i) => {
            let rest = cmd[i..].trim();
            (Some(&cmd[..i]), (!rest.is_empty()).then_some(rest))
        }
    }
}

/// Words of a `Resource`/`Data` string: separated by whitespace or commas.
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
}

/// Value of the first `key=value` word whose key is `key` (ASCII case-insensitive).
fn kv<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    words(s).find_map(|w| {
        let (k, v) = w.split_once('=')?;
        k.eq_ignore_ascii_case(key).then_some(v)
    })
}

/// Like [`kv`], `None` for an empty value.
fn kv_set<'a>(s: Option<&'a str>, key: &str) -> Option<&'a str> {
    s.and_then(|s| kv(s, key)).filter(|v| !v.is_empty())
}

/// `s` when it is a single word that is not `key=value`.
fn bare_word(s: Option<&str>) -> Option<&str> {
    let s = s?.trim();
    (!s.is_empty() && !s.contains('=') && !s.contains(char::is_whitespace)).then_some(s)
}

/// `SYS_OPENAT` → `OPENAT`; other names upper-cased.
fn call_name(raw: &str) -> String {
    let up = raw.trim().to_ascii_uppercase();
    match up.strip_prefix("SYS_") {
        Some(rest) => rest.to_owned(),
        None => up,
    }
}

fn syscall_of(op: Op, resource: Option<&str>, data: Option<&str>) -> Option<String> {
    kv_set(data, "syscall")
        .or_else(|| {
            matches!(op, Op::Network | Op::Capability)
                .then(|| kv_set(resource, "syscall"))
                .flatten()
        })
        .map(str::to_owned)
}

fn file_access(data: &str) -> Option<&'static str> {
    if let Some(call) = kv_set(Some(data), "syscall").or_else(|| kv_set(Some(data), "lsm")) {
        match call_name(call).as_str() {
            "UNLINK" | "UNLINKAT" | "RMDIR" | "FILE_UNLINK" | "FILE_RMDIR" => {
                return Some("delete")
            }
            "RENAME" | "RENAMEAT" | "RENAMEAT2" | "FILE_RENAME" => return Some("rename"),
            "CHMOD" | "FCHMOD" | "FCHMODAT" | "FCHMODAT2" | "FILE_CHMOD" => return Some("chmod"),
            "CHOWN" | "FCHOWN" | "LCHOWN" | "FCHOWNAT" => return Some("chown"),
            "EXECVE" | "EXECVEAT" => return Some("exec"),
            "MKDIR" | "MKDIRAT" | "MKNOD" | "MKNODAT" | "CREAT" | "LINK" | "LINKAT" | "SYMLINK"
            | "SYMLINKAT" | "FILE_MKDIR" | "FILE_MKNOD" | "FILE_LINK" | "FILE_SYMLINK" => {
                return Some("create")
            }
            "TRUNCATE" | "FTRUNCATE" | "FILE_TRUNCATE" => return Some("write"),
            "CLOSE" => return None,
            _ => {}
        }
    }
    let flags: Vec<String> = kv(data, "flags")
        .unwrap_or("")
        .split('|')
        .map(|f| f.trim().to_ascii_uppercase())
        .collect();
    let has = |name: &str| flags.iter().any(|f| f == name);
    if has("O_CREAT") || has("O_TMPFILE") {
        Some("create")
    } else if has("O_WRONLY") || has("O_RDWR") || has("O_TRUNC") || has("O_APPEND") {
        Some("write")
    } else {
        Some("read")
    }
}

fn capability_of(resource: Option<&str>, data: Option<&str>) -> Option<String> {
    kv_set(data, "cap")
        .or_else(|| kv_set(resource, "capability"))
        .or_else(|| kv_set(data, "capability"))
        .or_else(|| bare_word(resource))
        .or_else(|| {
            words(data.unwrap_or("")).find(|w| {
                !w.contains('=') && w.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("cap_"))
            })
        })
        .and_then(normalise_capability)
}

fn normalise_capability(raw: &str) -> Option<String> {
    let up = raw.trim().to_ascii_uppercase();
    let name = up.strip_prefix("CAP_").unwrap_or(&up);
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then(|| format!("CAP_{name}"))
}

fn direction_of_call(call: &str) -> Option<&'static str> {
    match call {
        "CONNECT" => Some("connect"),
        "ACCEPT" | "ACCEPT4" => Some("accept"),
        "BIND" => Some("bind"),
        "LISTEN" => Some("listen"),
        "SENDTO" | "SENDMSG" | "SENDMMSG" => Some("send"),
        "SOCKET" => Some("socket"),
        _ => None,
    }
}

fn direction_of_lsm(hook: &str) -> Option<&'static str> {
    match hook {
        "SOCKET_CREATE" => Some("socket"),
        "SOCKET_CONNECT" => Some("connect"),
        "SOCKET_ACCEPT" => Some("accept"),
        "SOCKET_SENDMSG" => Some("send"),
        "SOCKET_BIND" => Some("bind"),
        "SOCKET_LISTEN" => Some("listen"),
        _ => None,
    }
}

/// A host name as KubeArmor's DNS events put it in `Resource` (not `unknown`, its placeholder).
fn host_name(s: &str) -> bool {
    !s.eq_ignore_ascii_case("unknown")
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn map_network(resource: Option<&str>, data: Option<&str>, ev: &mut Event) {
    let res = |key: &str| kv_set(resource, key);
    let dat = |key: &str| kv_set(data, key);

    let call = dat("syscall").or_else(|| res("syscall")).map(call_name);
    let kprobe = dat("kprobe").map(str::to_ascii_lowercase);
    let lsm = dat("lsm").map(str::to_ascii_uppercase);
    let kfunc = dat("kfunc").map(str::to_ascii_uppercase);

    let direction = call
        .as_deref()
        .and_then(direction_of_call)
        .or(match kprobe.as_deref() {
            Some("tcp_connect") => Some("connect"),
            Some("tcp_accept") => Some("accept"),
            _ => None,
        })
        .or_else(|| lsm.as_deref().and_then(direction_of_lsm))
        .or((kfunc.as_deref() == Some("UDP_SENDMSG")).then_some("send"));

    let family = res("sa_family")
        .or_else(|| res("domain"))
        .or_else(|| dat("domain").filter(|d| d.starts_with("AF_")));
    let unix_path = res("sun_path");
    let mut addr = res("sin_addr")
        .or_else(|| res("sin6_addr"))
        .or_else(|| res("remoteip"))
        .or_else(|| dat("daddr"))
        .or(unix_path);
    let port = res("sin_port")
        .or_else(|| res("sin6_port"))
        .or_else(|| res("port"))
        .and_then(|p| p.parse::<u16>().ok());

    let mut name = None;
    if let Some(word) = bare_word(resource) {
        if word.parse::<IpAddr>().is_ok() {
            addr = addr.or(Some(word));
        } else if host_name(word) {
            name = Some(word);
        }
    }
    if name.is_none() && kfunc.is_some() {
        name = dat("domain");
    }

    let proto = classify_proto(
        family,
        res("type").or_else(|| dat("type")),
        res("protocol").or_else(|| dat("protocol")),
        unix_path.is_some(),
        kprobe.as_deref(),
        kfunc.as_deref(),
    );

    ev.proto = proto.map(str::to_owned);
    ev.direction = direction.map(str::to_owned);
    ev.remote_name = name.map(str::to_owned);
    let addr = addr.map(str::to_owned);
    if kprobe.as_deref() == Some("tcp_accept") {
        // KubeArmor's accept probe reports the peer's address but the local (listening) port.
        ev.remote_addr = addr;
        ev.local_port = port;
    } else if matches!(direction, Some("bind" | "listen")) {
        ev.local_addr = addr;
        ev.local_port = port;
    } else {
        ev.remote_addr = addr;
        ev.remote_port = port;
    }
}

fn classify_proto(
    family: Option<&str>,
    sock_type: Option<&str>,
    protocol: Option<&str>,
    unix_path: bool,
    kprobe: Option<&str>,
    kfunc: Option<&str>,
) -> Option<&'static str> {
    let family = family.map(str::to_ascii_uppercase);
    let family = family.as_deref();
    if unix_path || matches!(family, Some("AF_UNIX" | "AF_LOCAL")) {
        return Some("unix");
    }
    let protocol = protocol.map(|p| p.trim().to_ascii_uppercase());
    let protocol = protocol.as_deref();
    if matches!(protocol, Some("ICMP" | "ICMPV6" | "IPV6-ICMP" | "1" | "58")) {
        return Some("icmp");
    }
    let types: Vec<String> = sock_type
        .unwrap_or("")
        .split('|')
        .map(|t| t.trim().to_ascii_uppercase())
        .collect();
    let has = |name: &str| types.iter().any(|t| t == name);
    if has("SOCK_RAW") || has("SOCK_PACKET") || family == Some("AF_PACKET") {
        return Some("raw");
    }
    match protocol {
        Some("TCP" | "TCPV6" | "6") => return Some("tcp"),
        Some("UDP" | "UDPV6" | "17") => return Some("udp"),
        // 0 (HOPOPT is IANA's name for it) lets the socket type decide.
        None | Some("" | "0" | "HOPOPT" | "IP") => {}
        Some(_) => return None,
    }
    if matches!(family, None | Some("AF_INET" | "AF_INET6")) {
        if has("SOCK_STREAM") {
            return Some("tcp");
        }
        if has("SOCK_DGRAM") {
            return Some("udp");
        }
    }
    if kprobe.is_some_and(|k| k.starts_with("tcp_")) {
        return Some("tcp");
    }
    if kfunc.is_some_and(|k| k.starts_with("UDP_")) {
        return Some("udp");
    }
    None
}

// ============================================================================================
// Helpers on strings
// ============================================================================================

/// The trimmed value, `None` when absent or blank.
fn text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn owned(value: &Option<String>) -> Option<String> {
    text(value).map(str::to_owned)
}

/// `s`, shortened to 80 characters for error messages.
fn clip(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

// ============================================================================================
// Deserialization of fields
// ============================================================================================

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {}", clip(&n.to_string())),
        Value::String(s) => format!("string {:?}", clip(s)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn bad_field<E: serde::de::Error>(field: &'static str, reason: String) -> E {
    E::custom(MappingError::BadField { field, reason })
}

fn opt_string<'de, D: Deserializer<'de>>(
    d: D,
    field: &'static str,
) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad_field(
            field,
            format!("expected a string, found {}", describe(&other)),
        )),
    }
}

fn opt_int<'de, D, T>(d: D, field: &'static str) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let n: i64 = match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => match n.as_i64().or_else(|| integral(n.as_f64())) {
            Some(n) => n,
            None => {
                return Err(bad_field(
                    field,
                    format!("{} is not an integer in range", clip(&n.to_string())),
                ))
            }
        },
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            t.parse().map_err(|_| {
                bad_field(
                    field,
                    format!("expected an integer, found string {:?}", clip(&s)),
                )
            })?
        }
        Some(other) => {
            return Err(bad_field(
                field,
                format!("expected an integer, found {}", describe(&other)),
            ))
        }
    };
    T::try_from(n)
        .map(Some)
        .map_err(|_| bad_field(field, format!("{n} is out of range")))
}

/// `f` as an `i64` when it is a whole number in range.
fn integral(f: Option<f64>) -> Option<i64> {
    const LIMIT: f64 = i64::MAX as f64; // rounds up to 2^63, itself out of range
    f.filter(|f| f.fract() == 0.0 && *f >= -LIMIT && *f < LIMIT)
        .map(|f| f as i64)
}

fn de_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

fn de_owner<'de, D: Deserializer<'de>>(d: D) -> Result<Option<KubeArmorOwner>, D::Error> {
    let map = match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(bad_field(
                "Owner",
                format!("expected an object, found {}", describe(&other)),
            ))
        }
    };
    let get = |key: &str, field: &'static str| -> Result<Option<String>, D::Error> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad_field(
                field,
                format!("expected a string, found {}", describe(other)),
            )),
        }
    };
    Ok(Some(KubeArmorOwner {
        kind: get("Ref", "Owner.Ref")?,
        name: get("Name", "Owner.Name")?,
        namespace: get("Namespace", "Owner.Namespace")?,
    }))
}

/// One deserializer per field, so that errors name it.
macro_rules! field_deserializers {
    ($($helper:ident: $ty:ty => { $($name:ident = $field:literal),* $(,)? })*) => {$($(
        fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$ty>, D::Error> {
            $helper(d, $field)
        }
    )*)*};
}

field_deserializers! {
    opt_string: String => {
        de_updated_time = "UpdatedTime",
        de_cluster_name = "ClusterName",
        de_host_name = "HostName",
        de_namespace_name = "NamespaceName",
        de_pod_name = "PodName",
        de_labels = "Labels",
        de_container_id = "ContainerID",
        de_container_name = "ContainerName",
        de_container_image = "ContainerImage",
        de_parent_process_name = "ParentProcessName",
        de_process_name = "ProcessName",
        de_type = "Type",
        de_source = "Source",
        de_operation = "Operation",
        de_resource = "Resource",
        de_data = "Data",
        de_result = "Result",
        de_policy_name = "PolicyName",
        de_action = "Action",
    }
    opt_int: i64 => {
        de_timestamp = "Timestamp",
        de_host_ppid = "HostPPID",
        de_host_pid = "HostPID",
    }
    opt_int: i32 => {
        de_ppid = "PPID",
        de_pid = "PID",
    }
    opt_int: u32 => {
        de_uid = "UID",
    }
}

// ============================================================================================
// Reading files
// ============================================================================================

/// Reads KubeArmor JSON telemetry and maps every record with [`to_event`] (source
/// [`Source::Import`]).
///
/// Accepted layouts, told apart by the start of the input (a UTF-8 byte-order mark and leading
/// whitespace are skipped):
///
/// - **JSON lines** (`karmor logs --json`): one object per line; blank lines are skipped.
/// - **A JSON array** of objects (first character `[`), laid out in any way. Errors report the
///   line where the element starts.
/// - **Concatenated pretty-printed objects** (`karmor logs --output pretty-json`; first line
///   `{` alone). Errors report the line where the object starts; an object cut short is
///   reported, and reading resumes at the next line holding `{` alone.
///
/// A record that cannot be imported — not JSON, not an object, longer than
/// [`MAX_RECORD_BYTES`], a field of the wrong type, a [`MappingError`] — is recorded in
/// [`ImportOutcome::errors`] with its 1-based line and the rest of the input is still read. A
/// read error ends the input and is recorded the same way. Never panics on any input.
pub fn read_json_logs<R: BufRead>(reader: R) -> ImportOutcome {
    read_json_logs_limited(reader, MAX_RECORD_BYTES)
}

fn read_json_logs_limited<R: BufRead>(mut reader: R, limit: usize) -> ImportOutcome {
    let mut sink = Sink {
        out: ImportOutcome::default(),
        source: Source::Import,
    };
    let mut lines = LineCount::default();
    match skip_leading_whitespace(&mut reader, &mut lines) {
        Err(e) => sink.error(lines.current(), read_error(&e)),
        Ok(None) => {}
        Ok(Some(b'[')) => {
            reader.consume(1);
            lines.byte(b'[');
            let mut splitter = Splitter::new(SplitMode::Array, limit);
            run_splitter(&mut reader, &mut splitter, &mut lines, &mut sink);
        }
        Ok(Some(_)) => read_lines(&mut reader, limit, &mut lines, &mut sink),
    }
    sink.out.lines = lines.total();
    sink.out
}

/// Where records go.
struct Sink {
    out: ImportOutcome,
    source: Source,
}

impl Sink {
    fn record(&mut self, line: u64, bytes: &[u8]) {
        match parse_record(bytes, line, self.source) {
            Ok((event, timed)) => {
                if !timed {
                    self.out.without_timestamp += 1;
                }
                self.out.events.push(event);
            }
            Err(message) => self.error(line, message),
        }
    }

    fn error(&mut self, line: u64, message: String) {
        self.out.errors.push(LineError { line, message });
    }
}

fn parse_record(bytes: &[u8], line: u64, source: Source) -> Result<(Event, bool), String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| json_error(&e, line))?;
    if !value.is_object() {
        return Err(format!(
            "expected a JSON object, found {}",
            match value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            }
        ));
    }
    let rec = KubeArmorRecord::deserialize(value).map_err(|e| e.to_string())?;
    map_record(&rec, source).map_err(|e| e.to_string())
}

/// serde_json's message, with its position made relative to the input rather than the record.
fn json_error(e: &serde_json::Error, start_line: u64) -> String {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&position).unwrap_or(&full);
    match e.line() {
        0 => format!("invalid JSON: {message}"),
        1 => format!("invalid JSON: {message} (column {})", e.column()),
        n => format!(
            "invalid JSON: {message} (line {}, column {})",
            start_line.saturating_add(n as u64 - 1),
            e.column()
        ),
    }
}

fn read_error(e: &io::Error) -> String {
    format!("read error, the rest of the input was not read: {e}")
}

/// Counts physical lines as bytes go by.
#[derive(Default)]
struct LineCount {
    newlines: u64,
    /// Bytes seen since the last newline.
    partial: bool,
}

impl LineCount {
    /// 1-based line of the next byte.
    fn current(&self) -> u64 {
        self.newlines + 1
    }

    /// Lines of the input so far, a last line without newline included.
    fn total(&self) -> u64 {
        self.newlines + u64::from(self.partial)
    }

    /// Line of the last byte read (1 for an empty input).
    fn last(&self) -> u64 {
        self.total().max(1)
    }

    /// A whole line was read, with or without its newline.
    fn end_line(&mut self, newline: bool) {
        if newline {
            self.newlines += 1;
            self.partial = false;
        } else {
            self.partial = true;
        }
    }

    fn byte(&mut self, b: u8) {
        if b == b'\n' {
            self.newlines += 1;
            self.partial = false;
        } else {
            self.partial = true;
        }
    }
}

/// `fill_buf`, retrying interrupted reads.
fn fill<R: BufRead>(reader: &mut R) -> io::Result<&[u8]> {
    loop {
        match reader.fill_buf() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    // Buffered now: this second call does no I/O (returning the first borrow from inside the
    // loop does not pass the borrow checker).
    reader.fill_buf()
}

/// Consumes a byte-order mark and whitespace; returns the first other byte, left unconsumed.
fn skip_leading_whitespace<R: BufRead>(
    reader: &mut R,
    lines: &mut LineCount,
) -> io::Result<Option<u8>> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut first = true;
    loop {
        let chunk = fill(reader)?;
        if chunk.is_empty() {
            return Ok(None);
        }
        if std::mem::take(&mut first) && chunk.starts_with(BOM) {
            reader.consume(BOM.len());
            lines.partial = true;
            continue;
        }
        let n = chunk.iter().take_while(|b| b.is_ascii_whitespace()).count();
        chunk[..n].iter().for_each(|&b| lines.byte(b));
        let next = chunk.get(n).copied();
        reader.consume(n);
        if next.is_some() {
            return Ok(next);
        }
    }
}

/// One physical line read by [`read_bounded_line`].
struct Line {
    /// The line was longer than the limit; only its beginning is in the buffer.
    overflow: bool,
    /// The line ended with a newline (the last line of an input may not).
    newline: bool,
}

/// Appends one line (newline included) to `buf`, at most `limit` bytes of it; the rest of a
/// longer line is consumed and dropped. `None` at the end of the input.
fn read_bounded_line<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<Line>> {
    let mut any = false;
    let mut overflow = false;
    loop {
        let chunk = fill(reader)?;
        if chunk.is_empty() {
            return Ok(any.then_some(Line {
                overflow,
                newline: false,
            }));
        }
        any = true;
        let (take, newline) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = limit.saturating_sub(buf.len());
        if take > room {
            overflow = true;
        }
        buf.extend_from_slice(&chunk[..take.min(room)]);
        reader.consume(take);
        if newline {
            return Ok(Some(Line { overflow, newline }));
        }
    }
}

fn read_lines<R: BufRead>(reader: &mut R, limit: usize, lines: &mut LineCount, sink: &mut Sink) {
    let mut buf = Vec::new();
    let mut seen_record = false;
    loop {
        let line_no = lines.current();
        buf.clear();
        let line = match read_bounded_line(reader, &mut buf, limit) {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(e) => {
                sink.error(line_no, read_error(&e));
                return;
            }
        };
        lines.end_line(line.newline);
        if line.overflow {
            sink.error(
                line_no,
                format!("line is longer than {limit} bytes; skipped"),
            );
            seen_record = true;
            continue;
        }
        let content = buf.trim_ascii();
        if content.is_empty() {
            continue;
        }
        if !seen_record && content == b"{" {
            // `{` alone on the first line: pretty-printed objects, one after another.
            let mut splitter = Splitter::new(SplitMode::Stream, limit);
            for &b in &buf {
                // The stream splitter never stops early.
                let _ = splitter.feed(b, line_no, sink);
            }
            return run_splitter(reader, &mut splitter, lines, sink);
        }
        seen_record = true;
        // Without its line break, so that serde_json's positions are on this line.
        let record = buf.strip_suffix(b"\n").unwrap_or(&buf);
        sink.record(line_no, record.strip_suffix(b"\r").unwrap_or(record));
    }
}

fn run_splitter<R: BufRead>(
    reader: &mut R,
    splitter: &mut Splitter,
    lines: &mut LineCount,
    sink: &mut Sink,
) {
    let mut stopped = false;
    loop {
        let chunk = match fill(reader) {
            Ok(chunk) => chunk,
            Err(e) => {
                // What was read of an unfinished record is not reported as a second error.
                sink.error(lines.current(), read_error(&e));
                return;
            }
        };
        if chunk.is_empty() {
            break;
        }
        for &b in chunk {
            let line = lines.current();
            lines.byte(b);
            if !stopped && splitter.feed(b, line, sink) == Flow::Stop {
                // Keep counting lines; nothing else is read into records.
                stopped = true;
            }
        }
        let n = chunk.len();
        reader.consume(n);
    }
    if !stopped {
        splitter.finish(lines.last(), sink);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SplitMode {
    /// Elements of one top-level JSON array (its `[` already consumed).
    Array,
    /// Top-level JSON values one after another.
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SplitState {
    Between,
    InValue,
    /// The array is closed.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// Cuts a byte stream into JSON values by structure (strings, escapes, nesting), without
/// parsing them, so that one bad value does not hide the others and none is held in memory
/// beyond the limit.
struct Splitter {
    mode: SplitMode,
    state: SplitState,
    depth: u32,
    in_string: bool,
    escaped: bool,
    buf: Vec<u8>,
    overflow: bool,
    start_line: u64,
    /// Index in `buf` where the current physical line begins.
    line_start: usize,
    limit: usize,
}

impl Splitter {
    fn new(mode: SplitMode, limit: usize) -> Self {
        Splitter {
            mode,
            state: SplitState::Between,
            depth: 0,
            in_string: false,
            escaped: false,
            buf: Vec::new(),
            overflow: false,
            start_line: 0,
            line_start: 0,
            limit,
        }
    }

    fn feed(&mut self, b: u8, line: u64, sink: &mut Sink) -> Flow {
        match self.state {
            SplitState::Done => {
                if b.is_ascii_whitespace() {
                    return Flow::Continue;
                }
                sink.error(
                    line,
                    "unexpected data after the end of the JSON array; the rest of the input was \
                     ignored"
                        .into(),
                );
                return Flow::Stop;
            }
            SplitState::Between => {
                if b.is_ascii_whitespace() {
                    return Flow::Continue;
                }
                if self.mode == SplitMode::Array {
                    match b {
                        b']' => {
                            self.state = SplitState::Done;
                            return Flow::Continue;
                        }
                        b',' => {
                            sink.error(line, "empty element in the JSON array".into());
                            return Flow::Continue;
                        }
                        _ => {}
                    }
                }
                self.begin(line);
            }
            SplitState::InValue => {}
        }
        self.value_byte(b, line, sink);
        Flow::Continue
    }

    fn begin(&mut self, line: u64) {
        self.state = SplitState::InValue;
        self.start_line = line;
        self.buf.clear();
        self.overflow = false;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
        self.line_start = 0;
    }

    fn push(&mut self, b: u8) {
        if self.buf.len() < self.limit {
            self.buf.push(b);
        } else {
            self.overflow = true;
        }
    }

    fn value_byte(&mut self, b: u8, line: u64, sink: &mut Sink) {
        if self.in_string {
            self.push(b);
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            } else if b == b'\n' {
                self.end_of_line(line, sink);
            }
            return;
        }
        let array = self.mode == SplitMode::Array;
        match b {
            b'"' => {
                self.in_string = true;
                self.push(b);
            }
            b'{' | b'[' => {
                self.depth = self.depth.saturating_add(1);
                self.push(b);
            }
            b']' if array && self.depth == 0 => {
                self.emit(sink);
                self.state = SplitState::Done;
            }
            b'}' | b']' => {
                self.push(b);
                if self.depth > 0 {
                    self.depth -= 1;
                    if self.depth == 0 && !array {
                        self.emit(sink);
                        self.state = SplitState::Between;
                    }
                }
            }
            b',' if array && self.depth == 0 => {
                self.emit(sink);
                self.state = SplitState::Between;
            }
            _ if !array && self.depth == 0 && b.is_ascii_whitespace() => {
                // The end of a top-level scalar (which will be reported as not an object).
                self.emit(sink);
                self.state = SplitState::Between;
            }
            _ => {
                self.push(b);
                if b == b'\n' {
                    self.end_of_line(line, sink);
                }
            }
        }
    }

    /// Called after a newline inside a value. In a pretty-printed stream a line holding `{`
    /// alone starts a new object; if one is still open, it was cut short.
    fn end_of_line(&mut self, line: u64, sink: &mut Sink) {
        if self.mode == SplitMode::Stream && !self.overflow && self.line_start > 0 {
            let text = &self.buf[self.line_start..];
            let text = text.strip_suffix(b"\n").unwrap_or(text);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text == b"{" {
                let previous = std::mem::replace(&mut self.buf, b"{\n".to_vec());
                sink.record(self.start_line, &previous[..self.line_start]);
                self.start_line = line;
                self.depth = 1;
                self.in_string = false;
                self.escaped = false;
            }
        }
        self.line_start = self.buf.len();
    }

    fn emit(&mut self, sink: &mut Sink) {
        if self.overflow {
            sink.error(
                self.start_line,
                format!("record is larger than {} bytes; skipped", self.limit),
            );
        } else {
            sink.record(self.start_line, &self.buf);
        }
        self.buf.clear();
        self.overflow = false;
    }

    fn finish(&mut self, last_line: u64, sink: &mut Sink) {
        if self.state == SplitState::InValue {
            self.emit(sink);
        }
        if self.mode == SplitMode::Array && self.state != SplitState::Done {
            sink.error(
                last_line,
                "unterminated JSON array: the input ends before its closing ']'".into(),
            );
        }
        self.state = SplitState::Between;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(value: Value) -> KubeArmorRecord {
        KubeArmorRecord::deserialize(value).expect("record deserializes")
    }

    fn map(value: Value) -> Event {
        to_event(&rec(value), Source::Kubearmor).expect("record maps")
    }

    fn map_err(value: Value) -> String {
        to_event(&rec(value), Source::Import)
            .expect_err("record must not map")
            .to_string()
    }

    fn de_err(json: &str) -> String {
        serde_json::from_str::<KubeArmorRecord>(json)
            .expect_err("record must not deserialize")
            .to_string()
    }

    fn net(resource: &str, data: &str) -> Event {
        map(json!({"Operation": "Network", "Resource": resource, "Data": data}))
    }

    fn read(input: &str) -> ImportOutcome {
        read_json_logs(input.as_bytes())
    }

    fn error_lines(out: &ImportOutcome) -> Vec<u64> {
        out.errors.iter().map(|e| e.line).collect()
    }

    // ---- time ----------------------------------------------------------------------------

    #[test]
    fn time_prefers_updated_time_with_its_microseconds() {
        let e = map(json!({
            "Operation": "File",
            "Timestamp": 1000,
            "UpdatedTime": "2023-06-11T10:12:51.967519Z"
        }));
        assert_eq!(e.ts_first, 1_686_478_371_967_519_000);
        assert_eq!(e.ts_last, e.ts_first);
        assert_eq!(e.count, 1);
        assert_eq!(e.source, Source::Kubearmor);
    }

    #[test]
    fn time_accepts_offsets_and_naive_utc() {
        let e = map(json!({"Operation": "File", "UpdatedTime": "2023-06-11T12:12:51.5+02:00"}));
        assert_eq!(e.ts_first, 1_686_478_371_500_000_000);
        let e = map(json!({"Operation": "File", "UpdatedTime": "2023-06-11 10:12:51"}));
        assert_eq!(e.ts_first, 1_686_478_371_000_000_000);
    }

    #[test]
    fn time_falls_back_to_timestamp_in_seconds() {
        for ts in [
            json!(1_686_478_371),
            json!("1686478371"),
            json!(" 1686478371 "),
        ] {
            let e = map(json!({"Operation": "File", "Timestamp": ts}));
            assert_eq!(e.ts_first, 1_686_478_371_000_000_000, "{ts}");
        }
        // An unreadable UpdatedTime with a Timestamp to fall back on is not an error.
        let e =
            map(json!({"Operation": "File", "Timestamp": 1_686_478_371, "UpdatedTime": "soon"}));
        assert_eq!(e.ts_first, 1_686_478_371_000_000_000);
    }

    #[test]
    fn time_absent_is_the_epoch_and_is_counted() {
        let r = rec(json!({"Operation": "File"}));
        assert_eq!(event_time(&r), Ok(None));
        assert_eq!(to_event(&r, Source::Import).unwrap().ts_first, 0);
        assert_eq!(
            event_time(&rec(json!({"Operation": "File", "Timestamp": 0}))),
            Ok(None)
        );
        assert_eq!(
            event_time(&rec(json!({"Operation": "File", "Timestamp": 5}))),
            Ok(Some(5_000_000_000))
        );

        let out = read(concat!(
            "{\"Operation\":\"File\"}\n",
            "{\"Operation\":\"File\",\"Timestamp\":5}\n",
            "{\"Operation\":\"File\",\"Timestamp\":0,\"UpdatedTime\":\"\"}\n",
        ));
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.events.len(), 3);
        assert_eq!(out.without_timestamp, 2);
        assert_eq!(out.events[1].ts_first, 5_000_000_000);
    }

    #[test]
    fn unusable_times_are_errors_naming_the_field() {
        assert_eq!(
            map_err(json!({"Operation": "File", "UpdatedTime": "yesterday"})),
            "bad field UpdatedTime: not an RFC 3339 time: \"yesterday\""
        );
        assert_eq!(
            map_err(json!({"Operation": "File", "Timestamp": i64::MAX})),
            format!("bad field Timestamp: {} seconds is out of range", i64::MAX)
        );
    }

    // ---- where ---------------------------------------------------------------------------

    #[test]
    fn identity_fields_are_copied() {
        let e = map(json!({
            "Operation": "File",
            "ClusterName": "c1", "HostName": "n1", "NamespaceName": "ns", "PodName": "p",
            "ContainerName": "ctr", "ContainerID": "abc", "ContainerImage": "img:1",
            "Result": "Passed", "PolicyName": "pol", "Action": "Audit"
        }));
        assert_eq!(e.cluster.as_deref(), Some("c1"));
        assert_eq!(e.node, "n1");
        assert_eq!(e.namespace.as_deref(), Some("ns"));
        assert_eq!(e.pod.as_deref(), Some("p"));
        assert_eq!(e.container.as_deref(), Some("ctr"));
        assert_eq!(e.container_id.as_deref(), Some("abc"));
        assert_eq!(e.image.as_deref(), Some("img:1"));
        assert_eq!(e.result.as_deref(), Some("Passed"));
        assert_eq!(e.policy.as_deref(), Some("pol"));
        assert_eq!(e.action.as_deref(), Some("Audit"));
        assert!(!e.host);
        assert_eq!(e.pod_uid, None);
    }

    #[test]
    fn empty_strings_are_none_and_the_node_unknown() {
        let e = map(json!({
            "Operation": "File",
            "ClusterName": "", "HostName": " ", "NamespaceName": "", "PodName": "",
            "ContainerName": "", "ContainerID": "", "ContainerImage": "", "Labels": "",
            "Result": "", "PolicyName": "", "Action": "", "Resource": "", "Source": "",
            "ProcessName": "", "ParentProcessName": ""
        }));
        assert_eq!(e.cluster, None);
        assert_eq!(e.node, "unknown");
        assert_eq!(
            (
                &e.namespace,
                &e.pod,
                &e.container,
                &e.container_id,
                &e.image
            ),
            (&None, &None, &None, &None, &None)
        );
        assert!(e.labels.is_empty());
        assert_eq!((&e.result, &e.policy, &e.action), (&None, &None, &None));
        assert_eq!(
            (&e.process, &e.parent_process, &e.args, &e.path),
            (&None, &None, &None, &None)
        );
        assert!(e.host);
        assert_eq!(map(json!({"Operation": "File"})).node, "unknown");
    }

    #[test]
    fn labels_are_split_trimmed_sorted_and_deduplicated() {
        let e = map(json!({"Operation": "File", "Labels": "b=2, a=1,b=2 ,,c=3"}));
        assert_eq!(e.labels, ["a=1", "b=2", "c=3"]);
        // Some KubeArmor versions separate labels with spaces.
        let e = map(json!({"Operation": "File", "Labels": "container=ubuntu-1 group=group-1"}));
        assert_eq!(e.labels, ["container=ubuntu-1", "group=group-1"]);
    }

    #[test]
    fn host_flag() {
        let host = |v: Value| map(v).host;
        assert!(host(json!({"Operation": "File", "Type": "HostLog"})));
        assert!(host(
            json!({"Operation": "File", "Type": "MatchedHostPolicy", "NamespaceName": "x"})
        ));
        assert!(!host(
            json!({"Operation": "File", "Type": "ContainerLog", "NamespaceName": "x"})
        ));
        assert!(!host(
            json!({"Operation": "File", "Type": "MatchedPolicy", "ContainerID": "abc"})
        ));
        assert!(host(json!({"Operation": "File", "Type": "ContainerLog"})));
    }

    // ---- workload ------------------------------------------------------------------------

    fn workload(v: Value) -> (Option<String>, Option<String>) {
        let e = map(v);
        (e.workload_kind, e.workload)
    }

    fn some(kind: &str, name: &str) -> (Option<String>, Option<String>) {
        (Some(kind.to_owned()), Some(name.to_owned()))
    }

    #[test]
    fn workload_comes_from_the_owner() {
        assert_eq!(
            workload(json!({"Operation": "File", "PodName": "ds-abcde",
                "Owner": {"Ref": "DaemonSet", "Name": "ds", "Namespace": "kube-system"}})),
            some("DaemonSet", "ds")
        );
        // Reported over the pod-name heuristic.
        assert_eq!(
            workload(
                json!({"Operation": "File", "PodName": "web-8f458dc5b-fl42t",
                "Owner": {"Ref": "StatefulSet", "Name": "db"}})
            ),
            some("StatefulSet", "db")
        );
        // A ReplicaSet of a Deployment is resolved to the Deployment; another is kept.
        assert_eq!(
            workload(
                json!({"Operation": "File", "Owner": {"Ref": "ReplicaSet", "Name": "web-5d4f8b7c9"}})
            ),
            some("Deployment", "web")
        );
        assert_eq!(
            workload(
                json!({"Operation": "File", "Owner": {"Ref": "ReplicaSet", "Name": "legacy"}})
            ),
            some("ReplicaSet", "legacy")
        );
        // An owner without kind or name is no owner.
        assert_eq!(
            workload(
                json!({"Operation": "File", "PodName": "web-8f458dc5b-fl42t",
                "Owner": {"Ref": "", "Name": ""}})
            ),
            some("Deployment", "web")
        );
        assert_eq!(
            workload(json!({"Operation": "File", "Owner": {"Ref": "Deployment"}})),
            (None, None)
        );
    }

    #[test]
    fn workload_heuristic_on_pod_names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("nginx-8f458dc5b-fl42t", Some("nginx")),
            (
                "discovery-engine-6f5c4df7b4-q8zbc",
                Some("discovery-engine"),
            ),
            ("my-app-v2-7d9c8b6f5-x2k4p", Some("my-app-v2")),
            ("web-bcdfgh-xz245", Some("web")),
            // DaemonSet or Job: a single generated suffix is ambiguous.
            ("my-daemonset-xhrr9", None),
            // StatefulSet.
            ("vault-0", None),
            // CronJob pods: the middle part is all digits.
            ("backup-28456789-x7k2q", None),
            // Characters outside the generated alphabet (vowels, 0, 1, 3, upper case).
            ("web-abcdef-xz245", None),
            ("web-8f458dc5b-fl43t", None),
            ("web-8F458DC5B-fl42t", None),
            // Lengths: hash 6..=10, suffix exactly 5.
            ("web-bcdfg-xz245", None),
            ("web-bcdfghjklm2-xz245", None),
            ("web-8f458dc5b-fl42", None),
            ("web-8f458dc5b-fl42tt", None),
            ("-8f458dc5b-fl42t", None),
            ("8f458dc5b-fl42t", None),
            ("", None),
        ];
        for (pod, want) in cases {
            let got = workload(json!({"Operation": "File", "PodName": pod}));
            let want = want.map_or((None, None), |w| some("Deployment", w));
            assert_eq!(got, want, "pod {pod:?}");
        }
    }

    // ---- who -----------------------------------------------------------------------------

    #[test]
    fn ids_accept_numbers_and_strings() {
        let e = map(
            json!({"Operation": "File", "PID": 7, "PPID": "8", "UID": "1000", "HostPID": "12"}),
        );
        assert_eq!((e.pid, e.ppid, e.uid), (Some(7), Some(8), Some(1000)));
        let r =
            rec(json!({"Operation": "File", "PID": 42.0, "PPID": "", "UID": null, "HostPPID": 3}));
        assert_eq!(
            (r.pid, r.ppid, r.uid, r.host_ppid),
            (Some(42), None, None, Some(3))
        );
    }

    #[test]
    fn fields_of_the_wrong_type_or_range_are_errors_naming_the_field() {
        let cases = [
            (
                r#"{"PID":"abc"}"#,
                r#"bad field PID: expected an integer, found string "abc""#,
            ),
            (
                r#"{"PID":true}"#,
                "bad field PID: expected an integer, found boolean true",
            ),
            (
                r#"{"PID":1.5}"#,
                "bad field PID: 1.5 is not an integer in range",
            ),
            (
                r#"{"PID":3000000000}"#,
                "bad field PID: 3000000000 is out of range",
            ),
            (r#"{"UID":-1}"#, "bad field UID: -1 is out of range"),
            (
                r#"{"PPID":[1]}"#,
                "bad field PPID: expected an integer, found an array",
            ),
            (
                r#"{"Timestamp":{}}"#,
                "bad field Timestamp: expected an integer, found an object",
            ),
            (
                r#"{"HostPID":99999999999999999999}"#,
                "bad field HostPID: 1e+20 is not an integer in range",
            ),
            (
                r#"{"PodName":5}"#,
                "bad field PodName: expected a string, found number 5",
            ),
            (
                r#"{"Operation":["File"]}"#,
                "bad field Operation: expected a string, found an array",
            ),
            (
                r#"{"Owner":"x"}"#,
                r#"bad field Owner: expected an object, found string "x""#,
            ),
            (
                r#"{"Owner":{"Ref":1}}"#,
                "bad field Owner.Ref: expected a string, found number 1",
            ),
        ];
        for (json, want) in cases {
            let got = de_err(json);
            assert!(got.starts_with(want), "{json}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn informational_fields_never_fail() {
        let r = rec(json!({
            "Operation": "File", "Severity": 5, "Tags": ["a"], "Message": true,
            "Enforcer": null, "ATags": null, "EventData": {"x": 1}, "workload": "1"
        }));
        assert_eq!(r.severity.as_deref(), Some("5"));
        assert_eq!(r.tags, None);
        assert_eq!(r.message.as_deref(), Some("true"));
        assert_eq!(r.enforcer, None);
    }

    #[test]
    fn process_operation_splits_the_command_line() {
        let e = map(json!({
            "Operation": "Process", "Resource": "/bin/sh -c  echo hi", "ProcessName": "/bin/sh",
            "Source": "/usr/bin/bash", "Data": "syscall=SYS_EXECVE"
        }));
        assert_eq!(e.op, Op::Process);
        assert_eq!(e.process.as_deref(), Some("/bin/sh"));
        assert_eq!(e.args.as_deref(), Some("-c  echo hi"));
        assert_eq!(e.parent_process.as_deref(), Some("/usr/bin/bash"));
        assert_eq!((&e.path, &e.access), (&None, &None));
        assert_eq!(e.syscall.as_deref(), Some("SYS_EXECVE"));

        let e = map(json!({
            "Operation": "Process", "Resource": "/usr/bin/sleep", "Source": "zsh -i",
            "ParentProcessName": "/usr/bin/zsh"
        }));
        assert_eq!(e.process.as_deref(), Some("/usr/bin/sleep"));
        assert_eq!(e.args, None);
        assert_eq!(e.parent_process.as_deref(), Some("/usr/bin/zsh"));

        let e = map(
            json!({"Operation": "Process", "Resource": "", "ProcessName": "/bin/ls", "Source": "zsh -i"}),
        );
        assert_eq!(e.process.as_deref(), Some("/bin/ls"));
        assert_eq!(e.args, None);
        assert_eq!(e.parent_process.as_deref(), Some("zsh"));
    }

    #[test]
    fn other_operations_take_the_process_from_process_name_or_source() {
        let e = map(json!({
            "Operation": "File", "ProcessName": "/bin/cat", "Source": "/usr/bin/cat /etc/x  y",
            "Resource": "/etc/x"
        }));
        assert_eq!(e.process.as_deref(), Some("/bin/cat"));
        assert_eq!(e.args.as_deref(), Some("/etc/x  y"));
        assert_eq!(e.parent_process, None);

        let e = map(json!({
            "Operation": "Network", "Source": "./main --port 8080", "ParentProcessName": "/sbin/init"
        }));
        assert_eq!(e.process.as_deref(), Some("./main"));
        assert_eq!(e.args.as_deref(), Some("--port 8080"));
        assert_eq!(e.parent_process.as_deref(), Some("/sbin/init"));

        let e = map(json!({"Operation": "File", "Source": "/knoxAutoPolicy"}));
        assert_eq!(e.process.as_deref(), Some("/knoxAutoPolicy"));
        assert_eq!(e.args, None);
    }

    // ---- what ----------------------------------------------------------------------------

    #[test]
    fn operations_map_to_ops() {
        let cases = [
            ("Process", Op::Process),
            ("File", Op::File),
            ("Network", Op::Network),
            ("Syscall", Op::Syscall),
            ("Capabilities", Op::Capability),
            ("Capability", Op::Capability),
            ("file", Op::File),
            (" NETWORK ", Op::Network),
        ];
        for (name, op) in cases {
            assert_eq!(map(json!({"Operation": name})).op, op, "{name}");
        }
    }

    #[test]
    fn unknown_or_missing_operations_are_errors() {
        assert_eq!(
            map_err(json!({"Operation": "Foo"})),
            "unknown Operation \"Foo\""
        );
        assert_eq!(
            map_err(json!({"Operation": "AlertThreshold"})),
            "unknown Operation \"AlertThreshold\""
        );
        assert_eq!(map_err(json!({})), "missing field Operation");
        assert_eq!(
            map_err(json!({"Operation": "  "})),
            "missing field Operation"
        );
        let long = map_err(json!({"Operation": "x".repeat(10_000)}));
        assert!(long.len() < 120, "{long}");
    }

    #[test]
    fn the_syscall_column_comes_from_data_and_never_from_hooks() {
        let syscall = |op: &str, res: &str, data: &str| {
            map(json!({"Operation": op, "Resource": res, "Data": data})).syscall
        };
        assert_eq!(
            syscall(
                "File",
                "/etc/x",
                "syscall=SYS_OPENAT fd=-100 flags=O_RDONLY"
            )
            .as_deref(),
            Some("SYS_OPENAT")
        );
        assert_eq!(
            syscall(
                "Network",
                "remoteip=1.2.3.4 port=1 protocol=TCP",
                "kprobe=tcp_connect domain=AF_INET"
            ),
            None
        );
        assert_eq!(syscall("File", "/etc/x", "lsm=FILE_OPEN"), None);
        assert_eq!(
            syscall(
                "Network",
                "sa_family=AF_INET sin_port=53",
                "kfunc=UDP_SENDMSG,domain=a.b,daddr=1.1.1.1,qtype=A"
            ),
            None
        );
        assert_eq!(syscall("File", "/tmp/syscall=SYS_X", ""), None);
        assert_eq!(syscall("File", "/etc/x", "syscall= fd=3"), None);
        // Older KubeArmor versions put it in Resource for network and capability events.
        assert_eq!(
            syscall(
                "Capabilities",
                "capability=CAP_NET_RAW syscall=SYS_SOCKET",
                ""
            )
            .as_deref(),
            Some("SYS_SOCKET")
        );
    }

    #[test]
    fn file_access_from_the_system_call_and_the_open_flags() {
        let cases: &[(&str, Option<&str>)] = &[
            ("syscall=SYS_OPENAT fd=-100 flags=O_RDONLY", Some("read")),
            (
                "syscall=SYS_OPENAT fd=-100 flags=O_RDONLY|O_CLOEXEC",
                Some("read"),
            ),
            ("syscall=SYS_OPEN flags=", Some("read")),
            ("syscall=SYS_OPEN", Some("read")),
            (
                "syscall=SYS_OPEN flags=O_WRONLY|O_CREAT|O_NOCTTY|O_NONBLOCK",
                Some("create"),
            ),
            (
                "syscall=SYS_OPENAT fd=3 flags=O_RDWR|O_TMPFILE",
                Some("create"),
            ),
            ("syscall=SYS_OPENAT fd=3 flags=O_WRONLY", Some("write")),
            (
                "syscall=SYS_OPENAT fd=3 flags=O_RDWR|O_CLOEXEC",
                Some("write"),
            ),
            ("syscall=SYS_OPEN flags=O_RDONLY|O_TRUNC", Some("write")),
            ("syscall=SYS_OPEN flags=O_WRONLY|O_APPEND", Some("write")),
            ("syscall=SYS_OPEN flags=O_APPEND", Some("write")),
            ("syscall=SYS_UNLINKAT flags=", Some("delete")),
            ("syscall=SYS_UNLINKAT flags=AT_REMOVEDIR", Some("delete")),
            ("syscall=SYS_UNLINK", Some("delete")),
            ("syscall=SYS_RMDIR", Some("delete")),
            ("syscall=SYS_RENAME", Some("rename")),
            ("syscall=SYS_RENAMEAT2", Some("rename")),
            ("syscall=SYS_CHMOD", Some("chmod")),
            ("syscall=SYS_FCHMODAT", Some("chmod")),
            (
                "syscall=SYS_FCHOWNAT userid=0 group=0 mode=0",
                Some("chown"),
            ),
            ("syscall=SYS_CHOWN userid=0 group=0", Some("chown")),
            ("syscall=SYS_EXECVE", Some("exec")),
            ("syscall=SYS_EXECVEAT", Some("exec")),
            ("syscall=SYS_MKDIRAT", Some("create")),
            ("syscall=SYS_SYMLINK", Some("create")),
            ("syscall=SYS_CLOSE fd=3", None),
            ("lsm=FILE_OPEN", Some("read")),
            ("lsm=FILE_PERMISSION", Some("read")),
            ("lsm=FILE_MKDIR", Some("create")),
            ("lsm=FILE_UNLINK", Some("delete")),
            ("lsm=FILE_RENAME", Some("rename")),
            ("lsm=FILE_CHMOD", Some("chmod")),
            ("lsm=FILE_TRUNCATE", Some("write")),
        ];
        for (data, want) in cases {
            let e = map(json!({"Operation": "File", "Resource": "/etc/x", "Data": data}));
            assert_eq!(e.access.as_deref(), *want, "{data}");
            assert_eq!(e.path.as_deref(), Some("/etc/x"), "{data}");
        }
        // Nothing known without Data.
        assert_eq!(
            map(json!({"Operation": "File", "Resource": "/etc/x"})).access,
            None
        );
        // Process operations carry no path or access.
        let e = map(
            json!({"Operation": "Process", "Resource": "/bin/x", "Data": "syscall=SYS_EXECVE"}),
        );
        assert_eq!((e.path, e.access), (None, None));
    }

    #[test]
    fn syscall_operation_keeps_absolute_paths_only() {
        let e = map(
            json!({"Operation": "Syscall", "Resource": "/home/jane-doe", "Data": "syscall=SYS_RMDIR"}),
        );
        assert_eq!(e.path.as_deref(), Some("/home/jane-doe"));
        assert_eq!(e.syscall.as_deref(), Some("SYS_RMDIR"));
        assert_eq!(e.access, None);
        let e = map(
            json!({"Operation": "Syscall", "Resource": "jane-doe", "Data": "syscall=SYS_RMDIR"}),
        );
        assert_eq!(e.path, None);
        let e = map(json!({"Operation": "Syscall", "Data": "syscall=SYS_SETGID userid=0"}));
        assert_eq!(e.path, None);
        assert_eq!(e.syscall.as_deref(), Some("SYS_SETGID"));
    }

    #[test]
    fn capability_is_found_and_normalised() {
        let cap = |res: &str, data: &str| {
            map(json!({"Operation": "Capabilities", "Resource": res, "Data": data})).capability
        };
        assert_eq!(cap("", "cap=net_raw").as_deref(), Some("CAP_NET_RAW"));
        assert_eq!(
            cap("sys_admin", "cap=net_raw").as_deref(),
            Some("CAP_NET_RAW")
        );
        assert_eq!(cap("net_raw", "").as_deref(), Some("CAP_NET_RAW"));
        assert_eq!(cap(" CAP_SYS_ADMIN ", "").as_deref(), Some("CAP_SYS_ADMIN"));
        assert_eq!(
            cap("capability=CAP_NET_BIND_SERVICE syscall=SYS_BIND", "").as_deref(),
            Some("CAP_NET_BIND_SERVICE")
        );
        assert_eq!(
            cap("CAP_NET_RAW", "lsm=CAPABLE CAP_NET_RAW").as_deref(),
            Some("CAP_NET_RAW")
        );
        assert_eq!(
            cap("", "lsm=CAPABLE cap_chown").as_deref(),
            Some("CAP_CHOWN")
        );
        assert_eq!(cap("", "lsm=CAPABLE é").as_deref(), None);
        assert_eq!(cap("", ""), None);
        assert_eq!(cap("net raw", ""), None);
        assert_eq!(cap("cap_", ""), None);
        assert_eq!(cap("net-raw", ""), None);
    }

    // ---- network -------------------------------------------------------------------------

    #[test]
    fn network_connect_ipv4() {
        for res in [
            "sa_family=AF_INET sin_port=53 sin_addr=10.0.0.10",
            "sin_addr=10.0.0.10 sa_family=AF_INET sin_port=53",
        ] {
            let e = net(res, "syscall=SYS_CONNECT fd=10");
            assert_eq!(e.op, Op::Network);
            assert_eq!(e.direction.as_deref(), Some("connect"), "{res}");
            assert_eq!(e.remote_addr.as_deref(), Some("10.0.0.10"), "{res}");
            assert_eq!(e.remote_port, Some(53), "{res}");
            assert_eq!((&e.local_addr, e.local_port), (&None, None));
            assert_eq!(e.proto, None, "{res}: no socket type, no protocol");
            assert_eq!(e.syscall.as_deref(), Some("SYS_CONNECT"));
        }
    }

    #[test]
    fn network_connect_ipv6() {
        let e = net(
            "sa_family=AF_INET6 sin6_port=443 sin6_addr=2001:db8::1",
            "syscall=SYS_CONNECT fd=4",
        );
        assert_eq!(e.direction.as_deref(), Some("connect"));
        assert_eq!(e.remote_addr.as_deref(), Some("2001:db8::1"));
        assert_eq!(e.remote_port, Some(443));
        // What KubeArmor itself writes for AF_INET6: sin_port/sin_addr.
        let e = net(
            "sa_family=AF_INET6 sin_port=8080 sin_addr=::ffff:10.244.0.1",
            "syscall=SYS_CONNECT fd=4",
        );
        assert_eq!(e.remote_addr.as_deref(), Some("::ffff:10.244.0.1"));
        assert_eq!(e.remote_port, Some(8080));
    }

    #[test]
    fn network_bind_and_listen_are_local() {
        let e = net(
            "sa_family=AF_INET sin_port=8080 sin_addr=0.0.0.0",
            "syscall=SYS_BIND fd=3",
        );
        assert_eq!(e.direction.as_deref(), Some("bind"));
        assert_eq!(e.local_addr.as_deref(), Some("0.0.0.0"));
        assert_eq!(e.local_port, Some(8080));
        assert_eq!((&e.remote_addr, e.remote_port), (&None, None));

        let e = net("", "syscall=SYS_LISTEN fd=3");
        assert_eq!(e.direction.as_deref(), Some("listen"));
        assert_eq!(
            (&e.local_addr, e.local_port, &e.remote_addr),
            (&None, None, &None)
        );
    }

    #[test]
    fn network_accept_and_send_syscalls_report_the_peer() {
        let e = net(
            "sa_family=AF_INET sin_port=51234 sin_addr=10.1.1.1",
            "syscall=SYS_ACCEPT4 fd=3",
        );
        assert_eq!(e.direction.as_deref(), Some("accept"));
        assert_eq!(e.remote_addr.as_deref(), Some("10.1.1.1"));
        assert_eq!(e.remote_port, Some(51234));
        let e = net(
            "sa_family=AF_INET sin_port=53 sin_addr=8.8.8.8",
            "syscall=SYS_SENDTO fd=3",
        );
        assert_eq!(e.direction.as_deref(), Some("send"));
        assert_eq!(e.remote_addr.as_deref(), Some("8.8.8.8"));
        assert_eq!(e.remote_port, Some(53));
        assert_eq!(
            net("", "syscall=SYS_SENDMSG").direction.as_deref(),
            Some("send")
        );
        assert_eq!(
            net("", "syscall=SYS_ACCEPT").direction.as_deref(),
            Some("accept")
        );
    }

    #[test]
    fn network_tcp_connect_probe() {
        let e = net(
            "remoteip=34.210.7.19 port=443 protocol=TCP",
            "kprobe=tcp_connect domain=AF_INET",
        );
        assert_eq!(e.direction.as_deref(), Some("connect"));
        assert_eq!(e.proto.as_deref(), Some("tcp"));
        assert_eq!(e.remote_addr.as_deref(), Some("34.210.7.19"));
        assert_eq!(e.remote_port, Some(443));
        assert_eq!(e.syscall, None);

        let e = net(
            "remoteip=2001:db8::2 port=80 protocol=TCPv6",
            "kprobe=tcp_connect domain=AF_INET6",
        );
        assert_eq!(e.proto.as_deref(), Some("tcp"));
        assert_eq!(e.remote_addr.as_deref(), Some("2001:db8::2"));
        assert_eq!(e.remote_port, Some(80));
    }

    #[test]
    fn network_tcp_accept_probe_reports_the_local_port() {
        let e = net(
            "remoteip=127.0.0.1 port=9099 protocol=TCP",
            "kprobe=tcp_accept domain=AF_INET",
        );
        assert_eq!(e.direction.as_deref(), Some("accept"));
        assert_eq!(e.proto.as_deref(), Some("tcp"));
        assert_eq!(e.remote_addr.as_deref(), Some("127.0.0.1"));
        assert_eq!(e.remote_port, None);
        assert_eq!(e.local_port, Some(9099));
        assert_eq!(e.local_addr, None);
        assert_eq!(e.syscall, None);
    }

    #[test]
    fn network_socket_creation_protocols() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "domain=AF_INET type=SOCK_STREAM|SOCK_NONBLOCK protocol=0",
                Some("tcp"),
            ),
            (
                "domain=AF_INET6 type=SOCK_DGRAM|SOCK_CLOEXEC protocol=0",
                Some("udp"),
            ),
            (
                "domain=AF_INET type=SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC protocol=0",
                Some("udp"),
            ),
            ("domain=AF_INET type=SOCK_DGRAM protocol=1", Some("icmp")),
            ("domain=AF_INET6 type=SOCK_RAW protocol=58", Some("icmp")),
            ("domain=AF_INET type=SOCK_RAW protocol=ICMP", Some("icmp")),
            (
                "domain=AF_INET6 type=SOCK_DGRAM protocol=IPv6-ICMP",
                Some("icmp"),
            ),
            ("domain=AF_INET type=SOCK_RAW protocol=255", Some("raw")),
            ("domain=AF_INET type=SOCK_RAW protocol=TCP", Some("raw")),
            ("domain=AF_INET type=SOCK_STREAM protocol=TCP", Some("tcp")),
            ("domain=AF_INET type=SOCK_DGRAM protocol=UDP", Some("udp")),
            ("domain=AF_INET type=SOCK_STREAM protocol=6", Some("tcp")),
            (
                "domain=AF_INET type=SOCK_STREAM protocol=HOPOPT",
                Some("tcp"),
            ),
            (
                "domain=AF_UNIX type=SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC protocol=0",
                Some("unix"),
            ),
            ("domain=AF_UNIX type=SOCK_DGRAM protocol=0", Some("unix")),
            ("domain=AF_PACKET type=SOCK_RAW protocol=768", Some("raw")),
            ("domain=AF_PACKET type=SOCK_DGRAM protocol=768", Some("raw")),
            ("domain=AF_NETLINK type=SOCK_RAW protocol=0", Some("raw")),
            ("domain=AF_NETLINK type=SOCK_DGRAM protocol=0", None),
            ("domain=AF_INET type=SOCK_STREAM protocol=SCTP", None),
            ("domain=AF_INET protocol=0", None),
        ];
        for (res, want) in cases {
            let e = net(res, "syscall=SYS_SOCKET");
            assert_eq!(e.proto.as_deref(), *want, "{res}");
            assert_eq!(e.direction.as_deref(), Some("socket"), "{res}");
            assert_eq!(e.syscall.as_deref(), Some("SYS_SOCKET"), "{res}");
            assert_eq!(
                (
                    &e.remote_addr,
                    e.remote_port,
                    &e.local_addr,
                    e.local_port,
                    &e.remote_name
                ),
                (&None, None, &None, None, &None),
                "{res}"
            );
        }
    }

    #[test]
    fn network_bpf_lsm_shapes() {
        let e = net(
            "protocol=TCP,type=SOCK_STREAM",
            "lsm=SOCKET_CONNECT protocol=TCP,type=SOCK_STREAM",
        );
        assert_eq!(
            (e.direction.as_deref(), e.proto.as_deref()),
            (Some("connect"), Some("tcp"))
        );
        assert_eq!(e.syscall, None);
        let e = net(
            "protocol=ICMP,type=SOCK_RAW",
            "lsm=SOCKET_CREATE protocol=ICMP,type=SOCK_RAW",
        );
        assert_eq!(
            (e.direction.as_deref(), e.proto.as_deref()),
            (Some("socket"), Some("icmp"))
        );
        let e = net("type=SOCK_RAW", "lsm=SOCKET_ACCEPT type=SOCK_RAW");
        assert_eq!(
            (e.direction.as_deref(), e.proto.as_deref()),
            (Some("accept"), Some("raw"))
        );
        // KubeArmor's placeholder for a protocol it could not name.
        let e = net("unknown", "lsm=SOCKET_CREATE unknown");
        assert_eq!(
            (e.direction.as_deref(), e.proto.as_deref()),
            (Some("socket"), None)
        );
        assert_eq!(e.remote_name, None);
    }

    #[test]
    fn network_dns_shapes() {
        let e = net(
            "google.com",
            "lsm=SOCKET_SENDMSG domain=google.com.multiubuntu.svc.cluster.local",
        );
        assert_eq!(e.direction.as_deref(), Some("send"));
        assert_eq!(e.remote_name.as_deref(), Some("google.com"));
        assert_eq!(
            (&e.proto, &e.remote_addr, e.remote_port),
            (&None, &None, None)
        );
        assert_eq!(e.syscall, None);

        let e = net(
            "sa_family=AF_INET sin_port=53",
            "kfunc=UDP_SENDMSG,domain=google.com.default.svc.cluster.local,daddr=10.43.0.10,qtype=AAAA",
        );
        assert_eq!(e.direction.as_deref(), Some("send"));
        assert_eq!(e.proto.as_deref(), Some("udp"));
        assert_eq!(e.remote_addr.as_deref(), Some("10.43.0.10"));
        assert_eq!(e.remote_port, Some(53));
        assert_eq!(
            e.remote_name.as_deref(),
            Some("google.com.default.svc.cluster.local")
        );
        assert_eq!(e.syscall, None);
    }

    #[test]
    fn network_unix_socket_connect() {
        let e = net(
            "sa_family=AF_UNIX sun_path=/var/run/docker.sock",
            "syscall=SYS_CONNECT fd=3",
        );
        assert_eq!(e.direction.as_deref(), Some("connect"));
        assert_eq!(e.proto.as_deref(), Some("unix"));
        assert_eq!(e.remote_addr.as_deref(), Some("/var/run/docker.sock"));
        assert_eq!(e.remote_port, None);
    }

    #[test]
    fn network_in_the_older_format_with_the_syscall_in_resource() {
        let e = net(
            "syscall=SYS_CONNECT sa_family=AF_INET sin_port=80 sin_addr=10.1.2.3",
            "fd=3",
        );
        assert_eq!(e.direction.as_deref(), Some("connect"));
        assert_eq!(e.remote_addr.as_deref(), Some("10.1.2.3"));
        assert_eq!(e.remote_port, Some(80));
        assert_eq!(e.syscall.as_deref(), Some("SYS_CONNECT"));
    }

    #[test]
    fn unparseable_network_resources_still_import() {
        for (res, data) in [
            ("", ""),
            ("garbage=== ###", "whatever"),
            ("{}[]", "=;="),
            ("é=ü", "ü"),
        ] {
            let e = net(res, data);
            assert_eq!(e.op, Op::Network);
            assert_eq!(
                (
                    &e.proto,
                    &e.direction,
                    &e.remote_addr,
                    e.remote_port,
                    &e.remote_name,
                    &e.local_addr,
                    e.local_port
                ),
                (&None, &None, &None, None, &None, &None, None),
                "{res:?} {data:?}"
            );
        }
        let e = net(
            "sa_family=AF_INET sin_port=99999 sin_addr=",
            "syscall=SYS_CONNECT",
        );
        assert_eq!(e.direction.as_deref(), Some("connect"));
        assert_eq!((&e.remote_addr, e.remote_port), (&None, None));
        // A bare address is an address, not a name.
        let e = net("10.0.0.1", "");
        assert_eq!(e.remote_addr.as_deref(), Some("10.0.0.1"));
        assert_eq!(e.remote_name, None);
    }

    // ---- reading -------------------------------------------------------------------------

    #[test]
    fn json_lines_with_blank_lines_and_crlf() {
        let out = read(concat!(
            "\n",
            "{\"Operation\":\"File\",\"Resource\":\"/a\"}\n",
            "   \n",
            "\r\n",
            "{\"Operation\":\"Process\",\"Resource\":\"/bin/b\"}\r\n",
        ));
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.events[0].path.as_deref(), Some("/a"));
        assert_eq!(out.events[0].source, Source::Import);
        assert_eq!(out.events[1].process.as_deref(), Some("/bin/b"));
        assert_eq!(out.lines, 5);
        assert_eq!(out.without_timestamp, 2);
    }

    #[test]
    fn bad_lines_are_reported_with_their_numbers_and_the_rest_imported() {
        let input = [
            r#"{"Operation":"File","Resource":"/ok1"}"#,
            r#"{"Operation":"File","Resource":"#,
            "[1,2,3]",
            "",
            r#"{"Resource":"/no-operation"}"#,
            r#"{"Operation":"File","PID":"x1"}"#,
            r#"{"Operation":"Foo"}"#,
            r#"{"Operation":"File","Resource":"/ok2"}"#,
            r#""just a string""#,
            r#"{"Operation":"File","Resource":"/ok3"} trailing"#,
        ]
        .join("\n");
        let out = read(&input);
        let paths: Vec<_> = out.events.iter().map(|e| e.path.as_deref()).collect();
        assert_eq!(paths, [Some("/ok1"), Some("/ok2")]);
        assert_eq!(error_lines(&out), [2, 3, 5, 6, 7, 9, 10]);
        let msg = |i: usize| out.errors[i].message.as_str();
        assert!(
            msg(0).starts_with("invalid JSON: EOF while parsing"),
            "{}",
            msg(0)
        );
        assert!(msg(0).ends_with("(column 31)"), "{}", msg(0));
        assert_eq!(msg(1), "expected a JSON object, found an array");
        assert_eq!(msg(2), "missing field Operation");
        assert!(
            msg(3).starts_with(r#"bad field PID: expected an integer, found string "x1""#),
            "{}",
            msg(3)
        );
        assert_eq!(msg(4), "unknown Operation \"Foo\"");
        assert_eq!(msg(5), "expected a JSON object, found a string");
        assert!(
            msg(6).starts_with("invalid JSON: trailing characters"),
            "{}",
            msg(6)
        );
        assert_eq!(out.errors[2].to_string(), "line 5: missing field Operation");
        assert_eq!(out.lines, 10);
    }

    #[test]
    fn a_json_array_reports_the_line_where_each_element_starts() {
        let input = concat!(
            "[\n",                                                          // 1
            "  {\"Operation\": \"File\",\n",                                // 2
            "   \"Resource\": \"/a\"},\n",                                  // 3
            "  {\"Operation\": \"Bogus\"},\n",                              // 4
            "  {\"Operation\": \"Network\", \"Resource\": \"x,y\"}, 42,\n", // 5
            "  {\n",                                                        // 6
            "    \"Operation\": \"Process\",\n",                            // 7
            "    \"PID\": \"7\"\n",                                         // 8
            "  }\n",                                                        // 9
            "]\n",                                                          // 10
        );
        let out = read(input);
        let ops: Vec<_> = out.events.iter().map(|e| e.op).collect();
        assert_eq!(ops, [Op::File, Op::Network, Op::Process]);
        assert_eq!(out.events[0].path.as_deref(), Some("/a"));
        assert_eq!(out.events[2].pid, Some(7));
        assert_eq!(error_lines(&out), [4, 5]);
        assert_eq!(out.errors[0].message, "unknown Operation \"Bogus\"");
        assert_eq!(
            out.errors[1].message,
            "expected a JSON object, found a number"
        );
        assert_eq!(out.lines, 10);
    }

    #[test]
    fn a_json_array_on_one_line_and_empty_inputs() {
        let out = read(r#"[{"Operation":"File"},{"Operation":"Syscall"}]"#);
        assert_eq!(out.events.len(), 2);
        assert!(out.errors.is_empty());
        assert_eq!(out.lines, 1);

        for (input, lines) in [("", 0), ("\n\n", 2), ("  ", 1), ("[]", 1), ("[\n]\n", 2)] {
            let out = read(input);
            assert!(
                out.events.is_empty() && out.errors.is_empty(),
                "{input:?}: {out:?}"
            );
            assert_eq!(out.lines, lines, "{input:?}");
        }
    }

    #[test]
    fn array_element_strings_may_hold_brackets_commas_and_escapes() {
        let out = read(
            r#"[{"Operation":"File","Resource":"/x,]}{[\"q\\"}, {"Operation":"File","Resource":"/y"}]"#,
        );
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let paths: Vec<_> = out.events.iter().map(|e| e.path.as_deref()).collect();
        assert_eq!(paths, [Some(r#"/x,]}{["q\"#), Some("/y")]);
    }

    #[test]
    fn broken_arrays() {
        // Unterminated: the complete elements are kept.
        let out = read("[{\"Operation\":\"File\"},\n{\"Operation\":\"File\"}");
        assert_eq!(out.events.len(), 2);
        assert_eq!(error_lines(&out), [2]);
        assert!(out.errors[0].message.starts_with("unterminated JSON array"));

        let out = read("[{\"Operation\":\"File\"},\n{\"Operation\":");
        assert_eq!(out.events.len(), 1);
        assert_eq!(error_lines(&out), [2, 2]);
        assert!(
            out.errors[0].message.starts_with("invalid JSON: EOF"),
            "{:?}",
            out.errors
        );
        assert!(out.errors[1].message.starts_with("unterminated JSON array"));

        // Data after the array.
        let out = read("[{\"Operation\":\"File\"}]\n{\"Operation\":\"File\"}\n\n");
        assert_eq!(out.events.len(), 1);
        assert_eq!(error_lines(&out), [2]);
        assert!(out.errors[0]
            .message
            .starts_with("unexpected data after the end of the JSON array"));
        assert_eq!(out.lines, 3);

        // An empty element.
        let out = read("[{\"Operation\":\"File\"},,\n{\"Operation\":\"File\"}]");
        assert_eq!(out.events.len(), 2);
        assert_eq!(error_lines(&out), [1]);
        assert_eq!(out.errors[0].message, "empty element in the JSON array");
    }

    #[test]
    fn pretty_printed_objects_one_after_another() {
        let input = concat!(
            "{\n",                              // 1
            "  \"Operation\": \"File\",\n",     // 2
            "  \"Resource\": \"/a\"\n",         // 3
            "}\n",                              // 4
            "{\n",                              // 5
            "  \"Operation\": \"Process\",\n",  // 6
            "  \"Owner\": {\n",                 // 7
            "    \"Ref\": \"Deployment\",\n",   // 8
            "    \"Name\": \"web\"\n",          // 9
            "  },\n",                           // 10
            "  \"Resource\": \"/bin/ls -l\"\n", // 11
            "}\n",                              // 12
            "{\n",                              // 13
            "  \"Operation\": \"Bogus\"\n",     // 14
            "}\n",                              // 15
        );
        let out = read(input);
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.events[0].path.as_deref(), Some("/a"));
        assert_eq!(out.events[1].workload.as_deref(), Some("web"));
        assert_eq!(out.events[1].args.as_deref(), Some("-l"));
        assert_eq!(error_lines(&out), [13]);
        assert_eq!(out.lines, 15);
    }

    #[test]
    fn a_pretty_printed_object_cut_short_is_reported_and_reading_resumes() {
        let input = concat!(
            "{\n",                             // 1
            "  \"Operation\": \"File\",\n",    // 2
            "  \"Resource\": \"/a\"\n",        // 3
            "}\n",                             // 4
            "{\n",                             // 5
            "  \"Operation\": \"File\",\n",    // 6
            "  \"Resource\": \"/cut\n",        // 7: the string never ends
            "{\n",                             // 8
            "  \"Operation\": \"Network\"\n",  // 9
            "}\n",                             // 10
            "{\n",                             // 11
            "  \"Operation\": \"Syscall\",\n", // 12
            "  \"Resource\": 5\n",             // 13
            "}\n",                             // 14
        );
        let out = read(input);
        let ops: Vec<_> = out.events.iter().map(|e| e.op).collect();
        assert_eq!(ops, [Op::File, Op::Network]);
        assert_eq!(error_lines(&out), [5, 11]);
        assert!(
            out.errors[0].message.starts_with("invalid JSON: "),
            "{:?}",
            out.errors
        );
        // The line break ending line 7 inside the string is what serde_json trips on.
        assert!(
            out.errors[0].message.contains("(line 8, column 0)"),
            "{:?}",
            out.errors
        );
        assert!(out.errors[1]
            .message
            .starts_with("bad field Resource: expected a string"));
    }

    #[test]
    fn a_huge_line_is_an_error_and_the_next_lines_still_import() {
        let input = format!(
            "{}\n{}\n{}\n{}",
            r#"{"Operation":"File","Resource":"/a"}"#,
            "x".repeat(1000),
            r#"{"Operation":"File","Resource":"/b"}"#,
            "y".repeat(1000),
        );
        let out = read_json_logs_limited(input.as_bytes(), 64);
        assert_eq!(out.events.len(), 2);
        assert_eq!(error_lines(&out), [2, 4]);
        assert_eq!(
            out.errors[0].message,
            "line is longer than 64 bytes; skipped"
        );
        assert_eq!(out.lines, 4);

        // At the real limit, through the public entry point.
        let huge = format!(
            "{{\"Operation\":\"File\",\"Resource\":\"{}\"}}",
            "x".repeat(MAX_RECORD_BYTES)
        );
        let out = read(&format!(
            "{huge}\n{{\"Operation\":\"File\",\"Resource\":\"/c\"}}\n{huge}"
        ));
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].path.as_deref(), Some("/c"));
        assert_eq!(error_lines(&out), [1, 3]);
        assert!(out.errors.iter().all(|e| e.message.contains("longer than")));
        assert_eq!(out.lines, 3);
    }

    #[test]
    fn a_huge_array_element_is_an_error_and_the_others_still_import() {
        let input = format!(
            "[{},\n{{\"Operation\":\"File\",\"Resource\":\"{}\"}},\n{}]",
            r#"{"Operation":"File","Resource":"/a"}"#,
            "x".repeat(500),
            r#"{"Operation":"File","Resource":"/b"}"#,
        );
        let out = read_json_logs_limited(input.as_bytes(), 100);
        let paths: Vec<_> = out.events.iter().map(|e| e.path.as_deref()).collect();
        assert_eq!(paths, [Some("/a"), Some("/b")]);
        assert_eq!(error_lines(&out), [2]);
        assert_eq!(
            out.errors[0].message,
            "record is larger than 100 bytes; skipped"
        );
    }

    #[test]
    fn hostile_inputs_give_errors_not_panics() {
        let ok = r#"{"Operation":"File"}"#;
        let bad_lines = [
            "[".repeat(100_000),
            "{\"a\":".repeat(100_000),
            format!("{}{}", "{\"Operation\":\"File\",\"x\":", "[".repeat(50_000)),
            "\u{0}\u{1}\u{7f}".to_owned(),
            r#"{"Operation":"File","PID":1e400}"#.to_owned(),
            format!("{{\"Operation\":\"{}\"}}", "é".repeat(100_000)),
            "}{][\"\\".to_owned(),
        ];
        let mut input = String::from(ok);
        for line in &bad_lines {
            input.push('\n');
            input.push_str(line);
        }
        input.push('\n');
        input.push_str(ok);
        let out = read(&input);
        assert_eq!(out.events.len(), 2);
        assert_eq!(error_lines(&out), [2, 3, 4, 5, 6, 7, 8]);
        assert!(
            out.errors.iter().all(|e| e.message.len() < 200),
            "{:?}",
            out.errors
        );

        // Invalid UTF-8.
        let out = read_json_logs(
            &b"{\"Operation\":\"File\",\"Resource\":\"\xff\xfe\"}\n{\"Operation\":\"File\"}"[..],
        );
        assert_eq!(out.events.len(), 1);
        assert_eq!(error_lines(&out), [1]);
        assert!(out.errors[0].message.starts_with("invalid JSON"));

        // An array that never closes, nested beyond any limit.
        let input = format!("[{}", "[".repeat(1_000_000));
        let out = read_json_logs_limited(input.as_bytes(), 1000);
        assert!(out.events.is_empty());
        assert_eq!(out.errors.len(), 2, "{:?}", out.errors);
        assert!(out.errors[0]
            .message
            .starts_with("record is larger than 1000 bytes"));
        assert!(out.errors[1].message.starts_with("unterminated JSON array"));

        // A pretty-printed stream made of closing braces and quotes.
        let out = read("{\n}}}}\n\"\n{\n\"\"\n");
        assert!(!out.errors.is_empty());
    }

    /// Yields its data in small pieces, is interrupted once, then fails.
    struct Flaky {
        data: Vec<u8>,
        pos: usize,
        interrupted: bool,
    }

    impl io::Read for Flaky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.interrupted {
                self.interrupted = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.pos >= self.data.len() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.data.len() - self.pos).min(7);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn flaky(data: &str) -> io::BufReader<Flaky> {
        io::BufReader::with_capacity(
            16,
            Flaky {
                data: data.as_bytes().to_vec(),
                pos: 0,
                interrupted: false,
            },
        )
    }

    #[test]
    fn read_errors_are_reported_and_end_the_input() {
        let out = read_json_logs(flaky(
            "{\"Operation\":\"File\",\"Resource\":\"/a\"}\n{\"Opera",
        ));
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].path.as_deref(), Some("/a"));
        assert_eq!(error_lines(&out), [2]);
        assert!(
            out.errors[0].message.contains("disk on fire"),
            "{:?}",
            out.errors
        );

        let out = read_json_logs(flaky(
            "[{\"Operation\":\"File\"},\n{\"Operation\":\"Syscall\"},\n{\"Oper",
        ));
        assert_eq!(out.events.len(), 2);
        assert_eq!(error_lines(&out), [3], "{:?}", out.errors);
        assert!(out.errors[0].message.contains("disk on fire"));
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let out = read("\u{feff}{\"Operation\":\"File\"}\n");
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.lines, 1);
        let out = read("\u{feff}[{\"Operation\":\"File\"}]");
        assert_eq!(out.events.len(), 1);
    }

    #[test]
    fn line_error_display() {
        let e = LineError {
            line: 3,
            message: "unknown Operation \"Foo\"".into(),
        };
        assert_eq!(e.to_string(), "line 3: unknown Operation \"Foo\"");
    }
}
