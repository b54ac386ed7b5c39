//! The **pods table** (pods schema v1): who held which IP address, when (design §3, §4).
//!
//! A second, versioned table beside the events. One row is one address one pod held for a
//! time span: the pod's identity (cluster, node, namespace, pod, pod_uid), its owner
//! (workload_kind, workload), its labels, whether it runs in the host's network namespace,
//! the address, and `valid_from`..`valid_to` (ns, UTC; `valid_to` is null while the pod still
//! held the address when the table was written). The collectors' pod watches write it (and
//! `import`/the KubeArmor feed where their messages carry pod addresses), so that a
//! connection's remote address resolves to a pod across nodes and over time.
//!
//! In a bundle the table lives under `pods/node=<node>/pods-<sha256[..16]>.parquet`, one file
//! per writer and snapshot, listed in the manifest's `pods` section with its sha256, size and
//! rows, verified as segments are ([`crate::bundle::verify_bundle`]). The version is written in
//! the Parquet key-value metadata (`karmor.pods_schema_version`) and in the manifest
//! (`pods_schema_version`); readers refuse another major version with a message naming the
//! file. Several files may say the same thing: readers take the union, and rows that agree on
//! (cluster, namespace, pod, pod_uid, ip, valid_from) are one row, with the latest `valid_to`
//! (null wins: the span was still open).
//!
//! **Minor 1** (pods schema 1.1) adds two nullable columns, `kind` and `ports`, and rows of
//! kind `Service`: a Service's cluster IP with the span the Service held it (design §3: a
//! connection to a cluster IP resolves to the Service and, through its selector, its pods).
//! In such a row `pod` is the Service's name, `pod_uid` its uid, `workload_kind`/`workload`
//! `Service` and its name, `labels` its **selector** (`key=value`), `ports` its ports
//! (`PROTO/PORT->TARGET`, the target a number or a container port's name) and `host_network`
//! false. A pod's row may list its containers' ports in `ports` (`PROTO/PORT` or
//! `PROTO/PORT/NAME`). Readers of 1.0 see a Service row as a pod of workload
//! `Service/<name>` labelled with the selector, so they select its backends by those labels;
//! 1.0 files read as 1.1 with `kind` null (a pod) and no ports.
//!
//! **Minor 2** (pods schema 1.2) adds rows of kind `Endpoint`, no new column: an address of
//! a Service's endpoint that no pod holds (the API servers behind `kubernetes`), from the
//! collectors' EndpointSlice watch. `pod`/`workload` are the Service's name,
//! `workload_kind` `Service`, `pod_uid` the EndpointSlice's uid, `labels` empty, `ports` the
//! slice's ports (`PROTO/PORT` or `PROTO/PORT/NAME`). Readers of 1.1 that take every row not
//! of kind `Service` for a pod see such an address as a pod of workload `Service/<name>`.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BooleanArray, ListArray, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::error::ContractError;

/// Major version of the pods table; readers refuse another one.
pub const PODS_SCHEMA_MAJOR: u32 = 1;
/// Minor version of the pods table (additions readers may ignore).
pub const PODS_SCHEMA_MINOR: u32 = 2;
/// The `kind` of a Service's row (pods schema 1.1); a null `kind` is a pod.
pub const KIND_SERVICE: &str = "Service";
/// The `kind` of a Service's endpoint that no pod holds (pods schema 1.2): the API server
/// behind the `kubernetes` Service, a selector-less Service's hand-made endpoints.
pub const KIND_ENDPOINT: &str = "Endpoint";
/// The bundle directory that holds the pods table, at the bundle's root.
pub const PODS_DIR: &str = "pods";
/// File name prefix of a pods table file.
pub const PODS_FILE_PREFIX: &str = "pods-";
/// Parquet key-value metadata key of the pods schema version.
pub const KEY_PODS_SCHEMA: &str = "karmor.pods_schema_version";
const KEY_PRODUCER: &str = "karmor.producer";
const KEY_NODE: &str = "karmor.node";

/// `"<major>.<minor>"` of the pods table this build writes.
pub fn pods_schema_version() -> String {
    format!("{PODS_SCHEMA_MAJOR}.{PODS_SCHEMA_MINOR}")
}

/// One address one pod held for a time span.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodAddress {
    /// Cluster name, when known.
    pub cluster: Option<String>,
    /// Node the pod ran on.
    pub node: String,
    /// Namespace of the pod.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Pod UID, when known.
    pub pod_uid: Option<String>,
    /// Kind of the owning workload (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod).
    pub workload_kind: Option<String>,
    /// Name of the owning workload (through ReplicaSets and Jobs).
    pub workload: Option<String>,
    /// Pod labels as sorted `key=value` strings.
    pub labels: Vec<String>,
    /// The pod runs in its node's network namespace: `ip` is the node's address.
    pub host_network: bool,
    /// The address (IPv4 or IPv6, textual).
    pub ip: String,
    /// Since when the pod held the address (ns since the epoch, UTC).
    pub valid_from: i64,
    /// Until when it held it; `None` while it still did when the table was written.
    pub valid_to: Option<i64>,
    /// What holds the address: `None` a pod, [`KIND_SERVICE`] a Service's cluster IP (1.1),
    /// [`KIND_ENDPOINT`] a Service's endpoint no pod holds (1.2).
    pub kind: Option<String>,
    /// Ports (1.1): a Service's `PROTO/PORT->TARGET`, a pod's container ports `PROTO/PORT` or
    /// `PROTO/PORT/NAME`; empty when not recorded.
    pub ports: Vec<String>,
}

impl PodAddress {
    /// Whether the pod held the address at `ts` (ns).
    pub fn holds_at(&self, ts: i64) -> bool {
        self.valid_from <= ts && self.valid_to.is_none_or(|to| ts <= to)
    }

    /// Whether the row is a Service's cluster IP rather than a pod's address.
    pub fn is_service(&self) -> bool {
        self.kind.as_deref() == Some(KIND_SERVICE)
    }

    /// Whether the row is a Service's endpoint no pod holds (pods schema 1.2).
    pub fn is_endpoint(&self) -> bool {
        self.kind.as_deref() == Some(KIND_ENDPOINT)
    }
}

/// One entry of a Service's `ports`: (protocol upper-case, port, target: a number or a port
/// name). `None` when the entry is not `PROTO/PORT->TARGET`.
pub fn parse_service_port(entry: &str) -> Option<(String, u16, String)> {
    let (proto, rest) = entry.split_once('/')?;
    let (port, target) = rest.split_once("->")?;
    let port = port.parse().ok()?;
    (!proto.is_empty() && !target.is_empty())
        .then(|| (proto.to_ascii_uppercase(), port, target.to_string()))
}

/// One entry of a pod's `ports`: (protocol upper-case, port, name if any).
pub fn parse_pod_port(entry: &str) -> Option<(String, u16, Option<String>)> {
    let mut parts = entry.splitn(3, '/');
    let proto = parts.next().filter(|p| !p.is_empty())?;
    let port = parts.next()?.parse().ok()?;
    let name = parts.next().filter(|n| !n.is_empty()).map(str::to_string);
    Some((proto.to_ascii_uppercase(), port, name))
}

/// The Arrow schema of the pods table (v1).
pub fn pods_arrow_schema() -> SchemaRef {
    let s = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let ts = |name: &str, nullable: bool| {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            nullable,
        )
    };
    Arc::new(Schema::new(vec![
        s("cluster", true),
        s("node", false),
        s("namespace", false),
        s("pod", false),
        s("pod_uid", true),
        s("workload_kind", true),
        s("workload", true),
        Field::new(
            "labels",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
            false,
        ),
        Field::new("host_network", DataType::Boolean, false),
        s("ip", false),
        ts("valid_from", false),
        ts("valid_to", true),
        s("kind", true),
        Field::new(
            "ports",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
            true,
        ),
    ]))
}

/// Columns of pods schema 1.1 that 1.0 files lack; readers take them as null.
pub const PODS_COLUMNS_1_1: [&str; 2] = ["kind", "ports"];

/// Column names every pods table file has (1.0), in schema order.
pub const PODS_COLUMNS: [&str; 12] = [
    "cluster",
    "node",
    "namespace",
    "pod",
    "pod_uid",
    "workload_kind",
    "workload",
    "labels",
    "host_network",
    "ip",
    "valid_from",
    "valid_to",
];

/// Sorts rows in file order: namespace, workload, pod, ip, valid_from.
pub fn sort_pods(rows: &mut [PodAddress]) {
    rows.sort_by(|a, b| {
        (&a.namespace, &a.workload, &a.pod, &a.ip, a.valid_from).cmp(&(
            &b.namespace,
            &b.workload,
            &b.pod,
            &b.ip,
            b.valid_from,
        ))
    });
}

/// Folds rows that say the same thing (same cluster, namespace, pod, pod_uid, ip and
/// valid_from) into one with the latest `valid_to` (an open span wins), and sorts.
pub fn fold_pods(rows: Vec<PodAddress>) -> Vec<PodAddress> {
    type Key = (Option<String>, String, String, Option<String>, String, i64);
    let mut by: HashMap<Key, PodAddress> = HashMap::new();
    for r in rows {
        let key = (
            r.cluster.clone(),
            r.namespace.clone(),
            r.pod.clone(),
            r.pod_uid.clone(),
            r.ip.clone(),
            r.valid_from,
        );
        match by.get_mut(&key) {
            None => {
                by.insert(key, r);
            }
            Some(held) => {
                held.valid_to = match (held.valid_to, r.valid_to) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
        }
    }
    let mut out: Vec<PodAddress> = by.into_values().collect();
    sort_pods(&mut out);
    out
}

/// The time a snapshot is known to describe, at least: the latest `valid_from` or `valid_to`
/// its rows mention (a pods table file does not record when it was written; a writer's
/// snapshot holds its recently closed spans, so this is close to it). `i64::MIN` when empty.
pub fn snapshot_time(rows: &[PodAddress]) -> i64 {
    rows.iter()
        .map(|r| r.valid_to.map_or(r.valid_from, |to| to.max(r.valid_from)))
        .max()
        .unwrap_or(i64::MIN)
}

/// Merges snapshots of pods tables (of one writer or several) into one history, whatever
/// order they come in: the union of their spans, a span being one (cluster, namespace, pod,
/// pod_uid, ip, valid_from). Each snapshot is folded first ([`fold_pods`]: within one
/// snapshot an open span wins). Across snapshots a span is open when the latest snapshot
/// that holds it open ([`snapshot_time`]) is no older than its latest recorded end, else it
/// ends at that end: a newer snapshot's end closes a span an older one held open, and a span
/// only an older snapshot knows (its pod gone, and forgotten by the writer since) is kept.
/// The row's identity (labels, owner, ports, node) comes from the newest snapshot holding it.
/// Merging a snapshot already merged changes nothing.
pub fn merge_snapshots(snapshots: Vec<Vec<PodAddress>>) -> Vec<PodAddress> {
    type Key = (Option<String>, String, String, Option<String>, String, i64);
    struct Span {
        row: PodAddress,
        row_time: i64,
        open_time: Option<i64>,
        closed_at: Option<i64>,
    }
    let mut spans: HashMap<Key, Span> = HashMap::new();
    for snapshot in snapshots {
        let rows = fold_pods(snapshot);
        let at = snapshot_time(&rows);
        for r in rows {
            let key = (
                r.cluster.clone(),
                r.namespace.clone(),
                r.pod.clone(),
                r.pod_uid.clone(),
                r.ip.clone(),
                r.valid_from,
            );
            let (open_time, closed_at) = match r.valid_to {
                None => (Some(at), None),
                Some(to) => (None, Some(to)),
            };
            match spans.get_mut(&key) {
                None => {
                    spans.insert(
                        key,
                        Span {
                            row: r,
                            row_time: at,
                            open_time,
                            closed_at,
                        },
                    );
                }
                Some(held) => {
                    held.open_time = held.open_time.max(open_time);
                    held.closed_at = held.closed_at.max(closed_at);
                    if at >= held.row_time {
                        held.row = r;
                        held.row_time = at;
                    }
                }
            }
        }
    }
    let mut out: Vec<PodAddress> = spans
        .into_values()
        .map(|s| {
            let mut row = s.row;
            row.valid_to = match (s.open_time, s.closed_at) {
                (Some(open), Some(end)) if open >= end => None,
                (_, Some(end)) => Some(end),
                (_, None) => None,
            };
            row
        })
        .collect();
    sort_pods(&mut out);
    out
}

/// Builds an Arrow record batch of the pods table.
pub fn pods_to_batch(rows: &[PodAddress]) -> RecordBatch {
    let strings = |get: &dyn Fn(&PodAddress) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(get).collect::<StringArray>())
    };
    let ts = |get: &dyn Fn(&PodAddress) -> Option<i64>| -> ArrayRef {
        Arc::new(
            TimestampNanosecondArray::from(rows.iter().map(get).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    let mut labels = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        false,
    )));
    let mut ports = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        false,
    )));
    for r in rows {
        for l in &r.labels {
            labels.values().append_value(l);
        }
        labels.append(true);
        for p in &r.ports {
            ports.values().append_value(p);
        }
        ports.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| r.cluster.as_deref()),
        strings(&|r| Some(r.node.as_str())),
        strings(&|r| Some(r.namespace.as_str())),
        strings(&|r| Some(r.pod.as_str())),
        strings(&|r| r.pod_uid.as_deref()),
        strings(&|r| r.workload_kind.as_deref()),
        strings(&|r| r.workload.as_deref()),
        Arc::new(labels.finish()),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.host_network))
                .collect::<BooleanArray>(),
        ),
        strings(&|r| Some(r.ip.as_str())),
        ts(&|r| Some(r.valid_from)),
        ts(&|r| r.valid_to),
        strings(&|r| r.kind.as_deref()),
        Arc::new(ports.finish()),
    ];
    // The columns are built to the schema above; a mismatch is a bug in this function.
    RecordBatch::try_new(pods_arrow_schema(), columns).expect("pods batch matches its schema")
}

/// Encodes rows (folded and sorted first) as a complete Parquet file in memory, with the pods
/// schema version, the producer and the node in its key-value metadata.
pub fn encode_pods(rows: Vec<PodAddress>, producer: &str, node: &str) -> Result<Vec<u8>, String> {
    let rows = fold_pods(rows);
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(true)
        .set_key_value_metadata(Some(vec![
            KeyValue::new(KEY_PODS_SCHEMA.into(), pods_schema_version()),
            KeyValue::new(KEY_PRODUCER.into(), producer.to_string()),
            KeyValue::new(KEY_NODE.into(), node.to_string()),
        ]))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, pods_arrow_schema(), Some(props))
        .map_err(|e| e.to_string())?;
    writer
        .write(&pods_to_batch(&rows))
        .map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Checks a pods schema version (from a file or a manifest) against this build's major.
pub fn check_pods_version(path: &Path, version: &str) -> Result<(), ContractError> {
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if major == Some(PODS_SCHEMA_MAJOR) {
        Ok(())
    } else {
        Err(ContractError::UnsupportedSchema {
            path: path.to_path_buf(),
            found: format!("pods {version}"),
            supported: PODS_SCHEMA_MAJOR,
        })
    }
}

fn open_pods(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, ContractError> {
    let f = File::open(path).map_err(|e| ContractError::io(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| ContractError::parquet(path, e))?;
    let version = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == KEY_PODS_SCHEMA))
        .and_then(|k| k.value.clone())
        .ok_or_else(|| ContractError::Column {
            path: path.to_path_buf(),
            column: KEY_PODS_SCHEMA.into(),
            message: "missing from the key-value metadata: not a pods table".into(),
        })?;
    check_pods_version(path, &version)?;
    let fields = builder.schema().fields();
    for name in PODS_COLUMNS {
        if fields.find(name).is_none() {
            return Err(ContractError::Column {
                path: path.to_path_buf(),
                column: name.into(),
                message: "missing".into(),
            });
        }
    }
    Ok(builder)
}

/// The row count of a pods table file, after checking its footer, version and columns.
pub fn read_pods_footer(path: &Path) -> Result<u64, ContractError> {
    let builder = open_pods(path)?;
    Ok(builder.metadata().file_metadata().num_rows().max(0) as u64)
}

fn column<'a, T: Array + 'static>(
    path: &Path,
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a T, ContractError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| ContractError::Column {
            path: path.to_path_buf(),
            column: name.into(),
            message: "missing or of the wrong type".into(),
        })
}

/// Reads every row of a pods table file.
pub fn read_pods(path: &Path) -> Result<Vec<PodAddress>, ContractError> {
    let reader = open_pods(path)?
        .build()
        .map_err(|e| ContractError::parquet(path, e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| ContractError::parquet(path, e))?;
        let s = |name: &str| column::<StringArray>(path, &batch, name);
        let (cluster, node, namespace, pod, pod_uid, kind, workload, ip) = (
            s("cluster")?,
            s("node")?,
            s("namespace")?,
            s("pod")?,
            s("pod_uid")?,
            s("workload_kind")?,
            s("workload")?,
            s("ip")?,
        );
        let labels = column::<ListArray>(path, &batch, "labels")?;
        let host = column::<BooleanArray>(path, &batch, "host_network")?;
        let from = column::<TimestampNanosecondArray>(path, &batch, "valid_from")?;
        let to = column::<TimestampNanosecondArray>(path, &batch, "valid_to")?;
        // 1.1 columns: absent from 1.0 files.
        let row_kind = match batch.column_by_name("kind") {
            Some(_) => Some(s("kind")?),
            None => None,
        };
        let ports = match batch.column_by_name("ports") {
            Some(_) => Some(column::<ListArray>(path, &batch, "ports")?),
            None => None,
        };
        let opt = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
        for i in 0..batch.num_rows() {
            let required = |a: &StringArray, name: &str| {
                opt(a, i).ok_or_else(|| ContractError::Column {
                    path: path.to_path_buf(),
                    column: name.into(),
                    message: format!("null in row {i}"),
                })
            };
            let values = labels.value(i);
            let values = values
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| ContractError::Column {
                    path: path.to_path_buf(),
                    column: "labels".into(),
                    message: "items are not strings".into(),
                })?;
            out.push(PodAddress {
                cluster: opt(cluster, i),
                node: required(node, "node")?,
                namespace: required(namespace, "namespace")?,
                pod: required(pod, "pod")?,
                pod_uid: opt(pod_uid, i),
                workload_kind: opt(kind, i),
                workload: opt(workload, i),
                labels: values.iter().flatten().map(str::to_string).collect(),
                host_network: host.value(i),
                ip: required(ip, "ip")?,
                valid_from: from.value(i),
                valid_to: (!to.is_null(i)).then(|| to.value(i)),
                kind: row_kind.and_then(|k| opt(k, i)),
                ports: match ports {
                    Some(p) if !p.is_null(i) => {
                        let v = p.value(i);
                        let v = v.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                            ContractError::Column {
                                path: path.to_path_buf(),
                                column: "ports".into(),
                                message: "items are not strings".into(),
                            }
                        })?;
                        v.iter().flatten().map(str::to_string).collect()
                    }
                    _ => Vec::new(),
                },
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn pod(ns: &str, name: &str, ip: &str, from: i64, to: Option<i64>) -> PodAddress {
        PodAddress {
            cluster: Some("c".into()),
            node: "n1".into(),
            namespace: ns.into(),
            pod: name.into(),
            pod_uid: Some(format!("uid-{name}")),
            workload_kind: Some("Deployment".into()),
            workload: Some(name.split('-').next().unwrap_or(name).into()),
            labels: vec!["app=web".into(), "pod-template-hash=abc".into()],
            host_network: false,
            ip: ip.into(),
            valid_from: from,
            valid_to: to,
            kind: None,
            ports: vec!["TCP/8080/http".into()],
        }
    }

    #[test]
    fn rows_round_trip_through_parquet_with_their_version() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![
            pod("b", "web-1", "10.0.0.2", 10, Some(20)),
            pod("a", "db-1", "10.0.0.3", 5, None),
            PodAddress {
                host_network: true,
                labels: vec![],
                workload: None,
                ..pod("kube-system", "proxy-x", "192.168.1.5", 1, None)
            },
        ];
        let bytes = encode_pods(rows.clone(), "test", "n1").unwrap();
        let path = dir.path().join("pods.parquet");
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(read_pods_footer(&path).unwrap(), 3);
        let mut want = rows;
        sort_pods(&mut want);
        assert_eq!(read_pods(&path).unwrap(), want);
    }

    #[test]
    fn service_rows_round_trip_and_a_1_0_file_reads_with_no_kind_or_ports() {
        let dir = tempfile::tempdir().unwrap();
        let svc = PodAddress {
            kind: Some(KIND_SERVICE.into()),
            workload_kind: Some(KIND_SERVICE.into()),
            labels: vec!["k8s-app=kube-dns".into()],
            ports: vec!["TCP/53->53".into(), "UDP/53->dns".into()],
            ..pod("kube-system", "kube-dns", "10.96.0.10", 1, None)
        };
        let path = dir.path().join("p.parquet");
        std::fs::write(&path, encode_pods(vec![svc.clone()], "t", "n1").unwrap()).unwrap();
        let back = read_pods(&path).unwrap();
        assert_eq!(back, vec![svc]);
        assert!(back[0].is_service());
        assert_eq!(
            parse_service_port(&back[0].ports[1]),
            Some(("UDP".into(), 53, "dns".into()))
        );
        assert_eq!(
            parse_pod_port("TCP/8080/http"),
            Some(("TCP".into(), 8080, Some("http".into())))
        );
        assert_eq!(parse_pod_port("udp/53"), Some(("UDP".into(), 53, None)));
        assert_eq!(parse_service_port("TCP/53"), None);
        // A 1.0 file (no kind, no ports columns) reads as pods without ports.
        let old = pods_to_batch(&[pod("a", "web-1", "10.0.0.2", 10, None)])
            .project(&(0..PODS_COLUMNS.len()).collect::<Vec<_>>())
            .unwrap();
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(vec![KeyValue::new(
                KEY_PODS_SCHEMA.into(),
                "1.0".to_string(),
            )]))
            .build();
        let mut buf = Vec::new();
        let mut w = ArrowWriter::try_new(&mut buf, old.schema(), Some(props)).unwrap();
        w.write(&old).unwrap();
        w.close().unwrap();
        std::fs::write(&path, buf).unwrap();
        let back = read_pods(&path).unwrap();
        assert_eq!(
            (back[0].kind.clone(), back[0].ports.clone()),
            (None, vec![])
        );
        assert!(!back[0].is_service());
    }

    #[test]
    fn the_same_span_twice_is_one_row_with_the_latest_end() {
        let rows = vec![
            pod("a", "web-1", "10.0.0.2", 10, Some(20)),
            pod("a", "web-1", "10.0.0.2", 10, Some(30)),
            pod("a", "web-2", "10.0.0.2", 40, Some(50)),
            pod("a", "db-1", "10.0.0.3", 5, Some(9)),
            pod("a", "db-1", "10.0.0.3", 5, None),
        ];
        let folded = fold_pods(rows);
        assert_eq!(folded.len(), 3);
        let web1 = folded.iter().find(|p| p.pod == "web-1").unwrap();
        assert_eq!(web1.valid_to, Some(30));
        let db = folded.iter().find(|p| p.pod == "db-1").unwrap();
        assert_eq!(db.valid_to, None);
        assert!(db.holds_at(1_000) && !db.holds_at(4));
        assert!(web1.holds_at(30) && !web1.holds_at(31));
    }

    #[test]
    fn snapshots_merge_into_a_history_in_any_order() {
        // Day 1: web-1 holds 10.0.0.2, still open. Day 9: web-1 closed at 20 (kept by the
        // writer for a week, then forgotten), web-2 took the address at 40.
        let day1 = vec![
            pod("a", "web-1", "10.0.0.2", 10, None),
            pod("a", "db-1", "10.0.0.3", 5, None),
        ];
        let day9 = vec![
            pod("a", "web-1", "10.0.0.2", 10, Some(20)),
            pod("a", "web-2", "10.0.0.2", 40, None),
            pod("a", "db-1", "10.0.0.3", 5, None),
        ];
        let day30 = vec![
            pod("a", "web-2", "10.0.0.2", 40, None),
            PodAddress {
                labels: vec!["app=db".into(), "tier=2".into()],
                ..pod("a", "db-1", "10.0.0.3", 5, Some(50))
            },
        ];
        let spans = |rows: &[PodAddress]| -> Vec<(String, i64, Option<i64>)> {
            rows.iter()
                .map(|r| (r.pod.clone(), r.valid_from, r.valid_to))
                .collect()
        };
        let want = vec![
            ("db-1".to_string(), 5, Some(50)),
            ("web-1".to_string(), 10, Some(20)),
            ("web-2".to_string(), 40, None),
        ];
        let merged = merge_snapshots(vec![day1.clone(), day9.clone(), day30.clone()]);
        assert_eq!(spans(&merged), want);
        // The newest snapshot's identity of a span wins.
        assert_eq!(merged[0].labels, ["app=db", "tier=2"]);
        // Any order, and again: the same history.
        assert_eq!(
            merge_snapshots(vec![day30.clone(), day1.clone(), day9.clone()]),
            merged
        );
        assert_eq!(
            merge_snapshots(vec![merged.clone(), day1.clone(), day30.clone()]),
            merged
        );
        // Only day 1 and day 30: web-1 is known only from day 1, kept open (its end is
        // unknown); day 30's end of db-1 closes what day 1 held open.
        let gap = merge_snapshots(vec![day1, day30]);
        assert_eq!(
            spans(&gap),
            vec![
                ("db-1".to_string(), 5, Some(50)),
                ("web-1".to_string(), 10, None),
                ("web-2".to_string(), 40, None),
            ]
        );
        // A span a writer closed and reopened later (a relist that missed the pod): the
        // snapshot that holds it open after the end wins.
        let closed = vec![pod("a", "web-1", "10.0.0.2", 10, Some(20))];
        let reopened = vec![
            pod("a", "web-1", "10.0.0.2", 10, None),
            pod("a", "web-9", "10.0.0.9", 25, None),
        ];
        assert_eq!(merge_snapshots(vec![reopened, closed])[0].valid_to, None);
    }

    #[test]
    fn another_major_and_an_events_segment_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        let err = check_pods_version(&path, "2.0").unwrap_err().to_string();
        assert!(
            err.contains("x.parquet") && err.contains("pods 2.0"),
            "{err}"
        );
        // An events segment is not a pods table.
        let mut events = vec![crate::Event {
            node: "n".into(),
            ..crate::Event::default()
        }];
        let bytes = crate::segment::encode_segment(
            &mut events,
            &crate::segment::SegmentMeta {
                schema_version: crate::schema::schema_version(),
                node: "n".into(),
                ..Default::default()
            },
        )
        .unwrap();
        std::fs::write(&path, bytes).unwrap();
        let err = read_pods(&path).unwrap_err().to_string();
        assert!(
            err.contains("x.parquet") && err.contains("not a pods table"),
            "{err}"
        );
        std::fs::write(&path, b"PAR1 truncated").unwrap();
        assert!(read_pods_footer(&path)
            .unwrap_err()
            .to_string()
            .contains("x.parquet"));
    }
}
