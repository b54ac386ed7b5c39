//! KubeArmor's `LogService` as a source of rows: `WatchLogs` (filter `system`) and
//! `WatchAlerts` (filter `policy`), each message mapped with [`karmor_contract::kubearmor::to_event`],
//! the mapping `kubectl karmor import` uses, with `source = kubearmor`.
//!
//! # From protobuf to [`KubeArmorRecord`]
//!
//! A `Log` or `Alert` becomes the record that `karmor logs --json` would have printed for it,
//! field by field. Protobuf has no "absent": an empty string is read as absent (as the mapping
//! does anyway), `Timestamp` 0 as absent (as the mapping does), and `PID`, `PPID`, `HostPID`,
//! `HostPPID` 0 as absent (no user process has pid 0). `UID` 0 is **root**, not absent: KubeArmor
//! always fills it, and `karmor logs --json` omits it only because Go's JSON encoder drops
//! zero values. So a JSON line without `UID` imports with no uid while the same event received
//! over gRPC has uid 0; every other column is the same.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use futures_core::Stream;
use serde_json::Value;
use tokio_stream::StreamExt;

use crate::client::Channel;
use crate::error::ClientError;
use crate::proto::feeder;
use crate::proto::feeder::log_service_client::LogServiceClient;
use karmor_contract::kubearmor::{to_event, KubeArmorOwner, KubeArmorRecord, MappingError};
use karmor_contract::schema::{Event, Source};

/// Which of KubeArmor's streams to watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubeArmorFeeds {
    /// `WatchLogs` with filter `system`: telemetry of namespaces with visibility enabled.
    pub logs: bool,
    /// `WatchAlerts` with filter `policy`: events that matched a policy.
    pub alerts: bool,
}

impl Default for KubeArmorFeeds {
    fn default() -> Self {
        KubeArmorFeeds {
            logs: true,
            alerts: true,
        }
    }
}

/// Which stream a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedKind {
    /// `WatchLogs`.
    Log,
    /// `WatchAlerts`.
    Alert,
}

/// One message received from KubeArmor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeArmorEvent {
    /// The stream it came from.
    pub kind: FeedKind,
    /// Identity of the message: a hash of its stream and of all its fields. The same message
    /// received again (after a reconnect to a relay that replays) has the same key; two real
    /// events differ at least in their time to the microsecond, pid, or some other field.
    pub key: u64,
    /// The row, or why the message does not map onto one (e.g. `AlertThreshold` events).
    pub event: Result<Event, MappingError>,
}

fn text(s: &str) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.to_string())
}

fn pid(v: i32) -> Option<i32> {
    (v != 0).then_some(v)
}

fn owner(o: &Option<feeder::Podowner>) -> Option<KubeArmorOwner> {
    let o = o.as_ref()?;
    let owner = KubeArmorOwner {
        kind: text(&o.r#ref),
        name: text(&o.name),
        namespace: text(&o.namespace),
    };
    (owner != KubeArmorOwner::default()).then_some(owner)
}

/// The record `karmor logs --json` prints for a `Log` (see the module documentation).
pub fn log_record(l: &feeder::Log) -> KubeArmorRecord {
    KubeArmorRecord {
        timestamp: (l.timestamp != 0).then_some(l.timestamp),
        updated_time: text(&l.updated_time),
        cluster_name: text(&l.cluster_name),
        host_name: text(&l.host_name),
        namespace_name: text(&l.namespace_name),
        owner: owner(&l.owner),
        pod_name: text(&l.pod_name),
        labels: text(&l.labels),
        container_id: text(&l.container_id),
        container_name: text(&l.container_name),
        container_image: text(&l.container_image),
        parent_process_name: text(&l.parent_process_name),
        process_name: text(&l.process_name),
        host_ppid: pid(l.host_ppid).map(i64::from),
        host_pid: pid(l.host_pid).map(i64::from),
        ppid: pid(l.ppid),
        pid: pid(l.pid),
        uid: u32::try_from(l.uid).ok(),
        log_type: text(&l.r#type),
        source: text(&l.source),
        operation: text(&l.operation),
        resource: text(&l.resource),
        data: text(&l.data),
        result: text(&l.result),
        cwd: text(&l.cwd),
        tty: text(&l.tty),
        user_name: text(&l.user_name),
        ..KubeArmorRecord::default()
    }
}

/// The record `karmor logs --json` prints for an `Alert` (see the module documentation).
pub fn alert_record(a: &feeder::Alert) -> KubeArmorRecord {
    KubeArmorRecord {
        timestamp: (a.timestamp != 0).then_some(a.timestamp),
        updated_time: text(&a.updated_time),
        cluster_name: text(&a.cluster_name),
        host_name: text(&a.host_name),
        namespace_name: text(&a.namespace_name),
        owner: owner(&a.owner),
        pod_name: text(&a.pod_name),
        labels: text(&a.labels),
        container_id: text(&a.container_id),
        container_name: text(&a.container_name),
        container_image: text(&a.container_image),
        parent_process_name: text(&a.parent_process_name),
        process_name: text(&a.process_name),
        host_ppid: pid(a.host_ppid).map(i64::from),
        host_pid: pid(a.host_pid).map(i64::from),
        ppid: pid(a.ppid),
        pid: pid(a.pid),
        uid: u32::try_from(a.uid).ok(),
        log_type: text(&a.r#type),
        source: text(&a.source),
        operation: text(&a.operation),
        resource: text(&a.resource),
        data: text(&a.data),
        result: text(&a.result),
        policy_name: text(&a.policy_name),
        severity: text(&a.severity),
        tags: text(&a.tags),
        message: text(&a.message),
        action: text(&a.action),
        enforcer: text(&a.enforcer),
        cwd: text(&a.cwd),
        tty: text(&a.tty),
        user_name: text(&a.user_name),
    }
}

/// The identity of a message for de-duplication (see [`KubeArmorEvent::key`]): a hash of its
/// stream and of its protobuf encoding (maps are ordered, so equal messages encode equally).
pub fn message_key(kind: FeedKind, msg: &impl prost::Message) -> u64 {
    let mut h = DefaultHasher::new();
    kind.hash(&mut h);
    msg.encode_to_vec().hash(&mut h);
    h.finish()
}

/// Maps a `Log` onto a row (source `kubearmor`).
pub fn map_log(l: &feeder::Log) -> KubeArmorEvent {
    KubeArmorEvent {
        kind: FeedKind::Log,
        key: message_key(FeedKind::Log, l),
        event: to_event(&log_record(l), Source::Kubearmor),
    }
}

/// Maps an `Alert` onto a row (source `kubearmor`).
pub fn map_alert(a: &feeder::Alert) -> KubeArmorEvent {
    KubeArmorEvent {
        kind: FeedKind::Alert,
        key: message_key(FeedKind::Alert, a),
        event: to_event(&alert_record(a), Source::Kubearmor),
    }
}

fn ended(call: &str) -> ClientError {
    ClientError::rpc(
        call,
        tonic::Status::unavailable("the server ended the stream"),
    )
}

/// Watches a KubeArmor daemon or relay: both streams asked for are opened before this
/// returns (so a refused call is an error here), then merged. When either side breaks or is
/// ended by the server, an error item says so (the other side may still deliver); reconnecting is the caller's business (the collector's
/// KubeArmor source does it with backoff).
pub async fn watch_kubearmor(
    channel: Channel,
    feeds: KubeArmorFeeds,
) -> Result<impl Stream<Item = Result<KubeArmorEvent, ClientError>> + Send + 'static, ClientError> {
    let client = LogServiceClient::new(channel).max_decoding_message_size(16 << 20);
    type Boxed =
        std::pin::Pin<Box<dyn Stream<Item = Result<KubeArmorEvent, ClientError>> + Send + 'static>>;
    let mut merged: Boxed = Box::pin(tokio_stream::empty());
    if feeds.logs {
        let logs = client
            .clone()
            .watch_logs(feeder::RequestMessage {
                filter: "system".into(),
            })
            .await
            .map_err(|s| ClientError::rpc("WatchLogs", s))?
            .into_inner()
            .map(|r| {
                r.map(|l| map_log(&l))
                    .map_err(|s| ClientError::rpc("WatchLogs", s))
            })
            .chain(tokio_stream::once(Err(ended("WatchLogs"))));
        merged = Box::pin(merged.merge(logs));
    }
    if feeds.alerts {
        let alerts = client
            .clone()
            .watch_alerts(feeder::RequestMessage {
                filter: "policy".into(),
            })
            .await
            .map_err(|s| ClientError::rpc("WatchAlerts", s))?
            .into_inner()
            .map(|r| {
                r.map(|a| map_alert(&a))
                    .map_err(|s| ClientError::rpc("WatchAlerts", s))
            })
            .chain(tokio_stream::once(Err(ended("WatchAlerts"))));
        merged = Box::pin(merged.merge(alerts));
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    /// The field number of the only field set in an encoded message.
    fn field_number(bytes: &[u8]) -> u64 {
        let mut tag = 0u64;
        for (i, b) in bytes.iter().enumerate() {
            tag |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        tag >> 3
    }

    #[test]
    fn field_numbers_are_kubearmors() {
        let log = |f: fn(&mut feeder::Log)| {
            let mut m = feeder::Log::default();
            f(&mut m);
            field_number(&m.encode_to_vec())
        };
        assert_eq!(log(|m| m.timestamp = 1), 1);
        assert_eq!(log(|m| m.host_pid = 1), 9);
        assert_eq!(log(|m| m.uid = 1), 12);
        assert_eq!(log(|m| m.r#type = "x".into()), 13);
        assert_eq!(log(|m| m.operation = "x".into()), 15);
        assert_eq!(log(|m| m.container_image = "x".into()), 19);
        assert_eq!(log(|m| m.host_ppid = 1), 22);
        assert_eq!(log(|m| m.labels = "x".into()), 23);
        assert_eq!(log(|m| m.owner = Some(feeder::Podowner::default())), 24);
        assert_eq!(
            log(|m| m.exec_event = Some(feeder::ExecEvent::default())),
            27
        );
        assert_eq!(
            log(|m| {
                m.event_data.insert("k".into(), "v".into());
            }),
            33
        );
        assert_eq!(log(|m| m.user_name = "x".into()), 34);

        let alert = |f: fn(&mut feeder::Alert)| {
            let mut m = feeder::Alert::default();
            f(&mut m);
            field_number(&m.encode_to_vec())
        };
        assert_eq!(alert(|m| m.policy_name = "x".into()), 13);
        assert_eq!(alert(|m| m.r#type = "x".into()), 17);
        assert_eq!(alert(|m| m.operation = "x".into()), 19);
        assert_eq!(alert(|m| m.action = "x".into()), 22);
        assert_eq!(alert(|m| m.result = "x".into()), 23);
        assert_eq!(alert(|m| m.container_image = "x".into()), 24);
        assert_eq!(alert(|m| m.host_ppid = 1), 27);
        assert_eq!(alert(|m| m.enforcer = "x".into()), 28);
        assert_eq!(alert(|m| m.labels = "x".into()), 29);
        assert_eq!(alert(|m| m.a_tags = vec!["x".into()]), 30);
        assert_eq!(alert(|m| m.owner = Some(feeder::Podowner::default())), 31);
        assert_eq!(alert(|m| m.max_alerts_per_sec = 1), 34);
        assert_eq!(alert(|m| m.kube_armor_version = "x".into()), 37);
        assert_eq!(
            alert(|m| {
                m.event_data.insert("k".into(), "v".into());
            }),
            43
        );
        assert_eq!(alert(|m| m.user_name = "x".into()), 44);

        let req = feeder::RequestMessage {
            filter: "system".into(),
        };
        assert_eq!(field_number(&req.encode_to_vec()), 1);
    }

    #[test]
    fn protobuf_zero_values_map_as_the_module_documents() {
        let a = feeder::Alert {
            timestamp: 0,
            uid: 0,
            pid: 0,
            host_pid: 0,
            operation: "File".into(),
            resource: "/etc/passwd".into(),
            data: "syscall=SYS_OPENAT flags=O_RDONLY".into(),
            namespace_name: "  ".into(),
            ..feeder::Alert::default()
        };
        let rec = alert_record(&a);
        assert_eq!(
            (rec.timestamp, rec.uid, rec.pid, rec.host_pid),
            (None, Some(0), None, None)
        );
        assert_eq!(rec.namespace_name, None);
        let ev = map_alert(&a);
        assert_eq!(ev.kind, FeedKind::Alert);
        let e = ev.event.unwrap();
        assert_eq!(e.source, Source::Kubearmor);
        assert_eq!(e.access.as_deref(), Some("read"));
        // The same message has the same key; a different severity makes another message.
        let mut b = a.clone();
        assert_eq!(map_alert(&b).key, ev.key);
        b.severity = "3".into();
        assert_ne!(map_alert(&b).key, ev.key);
        // A message KubeArmor sends that is not behaviour is reported, not mapped.
        let notice = feeder::Alert {
            operation: "AlertThreshold".into(),
            ..feeder::Alert::default()
        };
        assert!(map_alert(&notice).event.is_err());
    }
}

// ---- KubeArmor JSON → protobuf (replaying saved logs) ----

fn json_text(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn json_int(v: &Value, k: &str) -> i64 {
    match v.get(k) {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(x)) => x.parse().unwrap_or(0),
        _ => 0,
    }
}

fn json_owner(v: &Value) -> Option<feeder::Podowner> {
    let o = v.get("Owner")?;
    Some(feeder::Podowner {
        r#ref: json_text(o, "Ref"),
        name: json_text(o, "Name"),
        namespace: json_text(o, "Namespace"),
    })
}

/// A message as KubeArmor's daemon sends it: a `Log` on `WatchLogs`, an `Alert` on `WatchAlerts`.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedMessage {
    /// A telemetry log.
    Log(feeder::Log),
    /// A policy alert.
    Alert(feeder::Alert),
}

/// Encodes one object of KubeArmor's JSON output (`karmor logs --json`) as the message the
/// daemon would have sent: an `Alert` when a policy matched, else a `Log`. The inverse of
/// [`log_record`] / [`alert_record`]; used to replay saved logs into a collector.
pub fn message_from_json(v: &Value) -> FeedMessage {
    if v.get("PolicyName").is_some() || json_text(v, "Type").starts_with("Matched") {
        FeedMessage::Alert(feeder::Alert {
            timestamp: json_int(v, "Timestamp"),
            updated_time: json_text(v, "UpdatedTime"),
            cluster_name: json_text(v, "ClusterName"),
            host_name: json_text(v, "HostName"),
            namespace_name: json_text(v, "NamespaceName"),
            pod_name: json_text(v, "PodName"),
            labels: json_text(v, "Labels"),
            owner: json_owner(v),
            container_id: json_text(v, "ContainerID"),
            container_name: json_text(v, "ContainerName"),
            container_image: json_text(v, "ContainerImage"),
            host_ppid: json_int(v, "HostPPID") as i32,
            host_pid: json_int(v, "HostPID") as i32,
            ppid: json_int(v, "PPID") as i32,
            pid: json_int(v, "PID") as i32,
            uid: json_int(v, "UID") as i32,
            parent_process_name: json_text(v, "ParentProcessName"),
            process_name: json_text(v, "ProcessName"),
            policy_name: json_text(v, "PolicyName"),
            severity: json_text(v, "Severity"),
            tags: json_text(v, "Tags"),
            message: json_text(v, "Message"),
            r#type: json_text(v, "Type"),
            source: json_text(v, "Source"),
            operation: json_text(v, "Operation"),
            resource: json_text(v, "Resource"),
            data: json_text(v, "Data"),
            enforcer: json_text(v, "Enforcer"),
            action: json_text(v, "Action"),
            result: json_text(v, "Result"),
            ..feeder::Alert::default()
        })
    } else {
        FeedMessage::Log(feeder::Log {
            timestamp: json_int(v, "Timestamp"),
            updated_time: json_text(v, "UpdatedTime"),
            cluster_name: json_text(v, "ClusterName"),
            host_name: json_text(v, "HostName"),
            namespace_name: json_text(v, "NamespaceName"),
            pod_name: json_text(v, "PodName"),
            labels: json_text(v, "Labels"),
            owner: json_owner(v),
            container_id: json_text(v, "ContainerID"),
            container_name: json_text(v, "ContainerName"),
            container_image: json_text(v, "ContainerImage"),
            host_ppid: json_int(v, "HostPPID") as i32,
            host_pid: json_int(v, "HostPID") as i32,
            ppid: json_int(v, "PPID") as i32,
            pid: json_int(v, "PID") as i32,
            uid: json_int(v, "UID") as i32,
            parent_process_name: json_text(v, "ParentProcessName"),
            process_name: json_text(v, "ProcessName"),
            r#type: json_text(v, "Type"),
            source: json_text(v, "Source"),
            operation: json_text(v, "Operation"),
            resource: json_text(v, "Resource"),
            data: json_text(v, "Data"),
            result: json_text(v, "Result"),
            ..feeder::Log::default()
        })
    }
}

/// A bounded set of recently seen message keys ([`message_key`]), oldest forgotten first: how
/// the collector's KubeArmor source and `observe --live` drop messages redelivered after a
/// reconnect.
#[derive(Debug)]
pub struct RecentKeys {
    set: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl RecentKeys {
    /// An empty set remembering at most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> Self {
        RecentKeys {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records `key`; false when it was already among the recent keys.
    pub fn insert(&mut self, key: u64) -> bool {
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}
