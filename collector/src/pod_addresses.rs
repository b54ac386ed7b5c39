//! The pods table of this node (design §3): which address each pod held when, learnt by the
//! pod watch ([`crate::kube_pods`]) and written beside the segments
//! ([`crate::datadir::DataDir::write_pods`]), so that analysis resolves connections' peers.
//!
//! A span opens when a pod is first seen with an address (at its `status.startTime` when
//! known, else now) and closes when the pod loses the address, is deleted, or is missing from
//! a relist. Closed spans are kept for [`KEEP_CLOSED`], so that every snapshot written holds
//! them and a snapshot may replace the one before.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Pod;
use karmor_contract::pods::PodAddress;

use crate::kube_pods::Workload;

/// How long a closed span stays in the snapshots.
pub const KEEP_CLOSED: Duration = Duration::from_secs(7 * 24 * 3600);

/// ns since the epoch, now.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The address spans of this node's pods, open and recently closed.
#[derive(Debug, Default)]
pub struct AddressBook {
    /// Pod key → its open spans (by address).
    open: HashMap<String, Vec<PodAddress>>,
    /// Closed spans.
    closed: Vec<PodAddress>,
}

/// What the pods table says of a pod, without the span: one row per address.
pub fn pod_addresses(pod: &Pod, workload: Option<&Workload>, now: i64) -> Vec<PodAddress> {
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let mut ips: Vec<String> = status
        .and_then(|s| s.pod_ips.as_ref())
        .map(|ips| ips.iter().map(|i| i.ip.clone()).collect())
        .unwrap_or_default();
    if ips.is_empty() {
        ips.extend(status.and_then(|s| s.pod_ip.clone()));
    }
    ips.retain(|ip| !ip.is_empty());
    ips.sort();
    ips.dedup();
    let from = status
        .and_then(|s| s.start_time.as_ref())
        .and_then(|t| i64::try_from(t.0.as_nanosecond()).ok())
        .unwrap_or(now);
    let labels: Vec<String> = meta
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let spec = pod.spec.as_ref();
    let ports = container_ports(pod);
    ips.into_iter()
        .map(|ip| PodAddress {
            cluster: None,
            node: spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            pod: meta.name.clone().unwrap_or_default(),
            pod_uid: meta.uid.clone(),
            workload_kind: workload.map(|w| w.kind.clone()),
            workload: workload.map(|w| w.name.clone()),
            labels: labels.clone(),
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            ip,
            valid_from: from,
            valid_to: None,
            kind: None,
            ports: ports.clone(),
        })
        .collect()
}

/// A pod's declared container ports as the pods table's `ports` (pods schema 1.1):
/// `PROTO/PORT`, or `PROTO/PORT/NAME` for a named port (what a NetworkPolicy's or a Service's
/// named port refers to), sorted.
pub fn container_ports(pod: &Pod) -> Vec<String> {
    let mut out: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .map(|p| {
            let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_uppercase();
            match p.name.as_deref().filter(|n| !n.is_empty()) {
                Some(name) => format!("{proto}/{}/{name}", p.container_port),
                None => format!("{proto}/{}", p.container_port),
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

impl AddressBook {
    /// The pod under `key` holds `rows` now: new addresses open spans, addresses it no longer
    /// has close theirs at `now`; an open span keeps its start and takes the newer identity
    /// (labels, owner).
    pub fn apply(&mut self, key: &str, rows: Vec<PodAddress>, now: i64) {
        let held = self.open.remove(key).unwrap_or_default();
        let mut next = Vec::new();
        for mut r in rows {
            if let Some(old) = held.iter().find(|o| o.ip == r.ip) {
                r.valid_from = old.valid_from;
            }
            next.push(r);
        }
        for old in held {
            if !next.iter().any(|n| n.ip == old.ip) {
                self.close(old, now);
            }
        }
        if !next.is_empty() {
            self.open.insert(key.to_string(), next);
        }
    }

    /// The pod under `key` is gone: its spans close at `now`.
    pub fn delete(&mut self, key: &str, now: i64) {
        for old in self.open.remove(key).unwrap_or_default() {
            self.close(old, now);
        }
    }

    /// The keys of every entry with an open span.
    pub fn open_keys(&self) -> impl Iterator<Item = &str> {
        self.open.keys().map(String::as_str)
    }

    /// Pods not in `listed` are gone.
    pub fn retain_listed(&mut self, listed: &std::collections::HashSet<String>, now: i64) {
        let gone: Vec<String> = self
            .open
            .keys()
            .filter(|k| !listed.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            self.delete(&k, now);
        }
    }

    fn close(&mut self, mut span: PodAddress, now: i64) {
        span.valid_to = Some(now.max(span.valid_from));
        self.closed.push(span);
    }

    /// Every span, open and closed within [`KEEP_CLOSED`] of `now`; older closed spans are
    /// forgotten.
    pub fn snapshot(&mut self, now: i64) -> Vec<PodAddress> {
        let keep = i64::try_from(KEEP_CLOSED.as_nanos()).unwrap_or(i64::MAX);
        self.closed
            .retain(|s| s.valid_to.is_none_or(|to| now.saturating_sub(to) <= keep));
        let mut out: Vec<PodAddress> = self.open.values().flatten().cloned().collect();
        out.extend(self.closed.iter().cloned());
        karmor_contract::pods::sort_pods(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodIP, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, ips: &[&str], host: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("shop".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                host_network: Some(host),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                pod_ips: Some(ips.iter().map(|ip| PodIP { ip: ip.to_string() }).collect()),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn spans_open_keep_their_start_and_close_on_change_and_delete() {
        let mut book = AddressBook::default();
        let w = Workload {
            kind: "Deployment".into(),
            name: "web".into(),
        };
        let first = pod_addresses(
            &pod("web-1", &["10.0.0.5", "fd00::5"], false),
            Some(&w),
            100,
        );
        book.apply("k1", first, 100);
        // An update with the same address keeps the span's start.
        let update = pod_addresses(&pod("web-1", &["10.0.0.5"], false), Some(&w), 200);
        book.apply("k1", update, 200);
        let s = book.snapshot(200);
        assert_eq!(s.len(), 2, "{s:?}");
        let v4 = s.iter().find(|r| r.ip == "10.0.0.5").unwrap();
        assert_eq!((v4.valid_from, v4.valid_to), (100, None));
        assert_eq!(v4.workload.as_deref(), Some("web"));
        assert_eq!(v4.labels, ["app=web"]);
        let v6 = s.iter().find(|r| r.ip == "fd00::5").unwrap();
        assert_eq!((v6.valid_from, v6.valid_to), (100, Some(200)));
        // Deleted: closed; another pod gets the address later.
        book.delete("k1", 300);
        let later = pod_addresses(&pod("web-2", &["10.0.0.5"], false), None, 400);
        book.apply("k2", later, 400);
        let s = book.snapshot(400);
        let mut spans: Vec<(&str, i64, Option<i64>)> = s
            .iter()
            .filter(|r| r.ip == "10.0.0.5")
            .map(|r| (r.pod.as_str(), r.valid_from, r.valid_to))
            .collect();
        spans.sort_by_key(|s| s.1);
        assert_eq!(spans, [("web-1", 100, Some(300)), ("web-2", 400, None)]);
        // Missing from a relist: closed; old closed spans are forgotten in time.
        book.retain_listed(&Default::default(), 500);
        assert!(book.snapshot(500).iter().all(|r| r.valid_to.is_some()));
        let late = 500 + i64::try_from(KEEP_CLOSED.as_nanos()).unwrap() + 1;
        assert!(book.snapshot(late).is_empty());
    }

    #[test]
    fn host_network_pods_and_pods_without_an_address() {
        let rows = pod_addresses(&pod("proxy", &["192.168.1.5"], true), None, 7);
        assert_eq!(rows.len(), 1);
        assert!(rows[0].host_network && rows[0].node == "n1" && rows[0].valid_from == 7);
        assert!(pod_addresses(&pod("pending", &[], false), None, 7).is_empty());
    }
}
