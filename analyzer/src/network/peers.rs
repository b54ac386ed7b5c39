//! Who is on the other end of a connection (design §3, §7): the pods table resolves an address
//! to the pod that held it at the time, on any node; a pods-table entry of a host-network pod,
//! or an address a node's own processes used, is that node; a cluster DNS name in
//! `remote_name` (`NAME.NAMESPACE.svc.…`) is a Service, whose pods are found in the pods table
//! by their labels; anything else is outside the cluster, named by the names it was reached by.
//!
//! A Service's cluster IP recorded in the pods table (rows of kind `Service`, pods schema 1.1,
//! from the collectors' Service watch) resolves to that Service first, whatever name was used
//! (DNS to 10.96.0.10 has none), and its pods are those its real selector selects at the time;
//! the name heuristic above is only the fallback for Services no table records.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use duckdb::params;
use karmor_contract::pods::PodAddress;
use serde::Serialize;

use crate::error::{AnalyzerError, Result};
use crate::recommend::draft::UNSTABLE_LABELS;
use crate::store::Store;

/// A pod's workload identity, as selectors see it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PeerWorkload {
    /// Namespace.
    pub namespace: String,
    /// Owner kind (`Deployment`, …, `Pod` without an owner).
    pub kind: String,
    /// Owner name (the pod's name without an owner).
    pub name: String,
}

impl std::fmt::Display for PeerWorkload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.kind, self.name)
    }
}

/// The other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Peer {
    /// A pod (not in the host's network) that held the address at the time.
    Pod {
        /// Its workload.
        workload: PeerWorkload,
        /// The pod.
        pod: String,
        /// Its labels (`key=value`).
        labels: Vec<String>,
        /// The address.
        addr: String,
    },
    /// A Service reached by its cluster DNS name, and the pods behind it found in the pods
    /// table (by a label whose value is the Service's name, else by workload name).
    Service {
        /// Service name.
        name: String,
        /// Its namespace.
        namespace: String,
        /// The DNS name it was reached by.
        dns: String,
        /// The address connected to (the Service's cluster IP).
        addr: String,
        /// The workloads of the pods behind it, with their labels, at the time.
        backends: Vec<(PeerWorkload, Vec<String>)>,
        /// How the backends were found, for the explanation.
        how: String,
        /// Addresses of its endpoints that no pod holds (pods schema 1.2, from EndpointSlices:
        /// the API servers behind `kubernetes`), at the time; empty for a Service of pods.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        endpoints: Vec<String>,
    },
    /// A node: its own processes or a host-network pod used the address.
    Node {
        /// Node name.
        node: String,
        /// The address.
        addr: String,
        /// Host-network pods that held the address at the time (`namespace/pod`).
        host_network_pods: Vec<String>,
    },
    /// Loopback: the pod itself.
    Loopback,
    /// An address no pods table and no node knows: outside the cluster.
    External {
        /// The address.
        addr: String,
        /// Names it was reached by (`remote_name`), if any.
        names: Vec<String>,
    },
}

impl Peer {
    /// A short description for tables and comments.
    pub fn describe(&self) -> String {
        match self {
            Peer::Pod { workload, pod, .. } => format!("{workload} (pod {pod})"),
            Peer::Service {
                namespace,
                name,
                backends,
                endpoints,
                ..
            } => {
                let b: BTreeSet<String> = backends.iter().map(|(w, _)| w.to_string()).collect();
                format!(
                    "service {namespace}/{name} -> {}",
                    if b.is_empty() && !endpoints.is_empty() {
                        format!("endpoints {}", endpoints.join(", "))
                    } else if b.is_empty() {
                        "no pod known".to_string()
                    } else {
                        b.into_iter().collect::<Vec<_>>().join(", ")
                    }
                )
            }
            Peer::Node {
                node,
                addr,
                host_network_pods,
            } => {
                if host_network_pods.is_empty() {
                    format!("node {node} ({addr})")
                } else {
                    format!(
                        "node {node} ({addr}, host network: {})",
                        host_network_pods.join(", ")
                    )
                }
            }
            Peer::Loopback => "loopback".into(),
            Peer::External { addr, names } if names.is_empty() => {
                format!("{addr} (in no pods table)")
            }
            Peer::External { addr, names } => format!("{addr} ({})", names.join(", ")),
        }
    }
}

/// The pods table and the nodes' own addresses, indexed by address.
#[derive(Debug, Clone, Default)]
pub struct PeerIndex {
    by_ip: HashMap<String, Vec<PodAddress>>,
    /// Services' cluster IPs (rows of kind `Service`) by address.
    services: HashMap<String, Vec<PodAddress>>,
    /// Services' endpoints no pod holds (rows of kind `Endpoint`) by (namespace, Service).
    endpoints: HashMap<(String, String), Vec<PodAddress>>,
    node_addrs: HashMap<String, String>,
    pods: Vec<PodAddress>,
}

/// Parses `NAME.NAMESPACE.svc[.DOMAIN]` into (name, namespace).
pub fn service_of(dns: &str) -> Option<(String, String)> {
    let dns = dns.trim_end_matches('.').to_ascii_lowercase();
    let parts: Vec<&str> = dns.split('.').collect();
    if parts.len() >= 3 && parts[2] == "svc" && !parts[0].is_empty() && !parts[1].is_empty() {
        Some((parts[0].to_string(), parts[1].to_string()))
    } else {
        None
    }
}

fn workload_of(p: &PodAddress) -> PeerWorkload {
    PeerWorkload {
        namespace: p.namespace.clone(),
        kind: p.workload_kind.clone().unwrap_or_else(|| "Pod".into()),
        name: p.workload.clone().unwrap_or_else(|| p.pod.clone()),
    }
}

impl PeerIndex {
    /// An index over pods-table rows and node addresses (address → node).
    pub fn new(pods: Vec<PodAddress>, node_addrs: HashMap<String, String>) -> Self {
        let mut by_ip: HashMap<String, Vec<PodAddress>> = HashMap::new();
        let mut services: HashMap<String, Vec<PodAddress>> = HashMap::new();
        let mut endpoints: HashMap<(String, String), Vec<PodAddress>> = HashMap::new();
        let (endpoint_rows, pods): (Vec<PodAddress>, Vec<PodAddress>) =
            pods.into_iter().partition(PodAddress::is_endpoint);
        for e in endpoint_rows {
            endpoints
                .entry((e.namespace.clone(), e.pod.clone()))
                .or_default()
                .push(e);
        }
        for p in &pods {
            let into = if p.is_service() {
                &mut services
            } else {
                &mut by_ip
            };
            into.entry(p.ip.clone()).or_default().push(p.clone());
        }
        PeerIndex {
            by_ip,
            services,
            endpoints,
            node_addrs,
            pods,
        }
    }

    /// Reads the store's `pods` view, and the nodes' own addresses: those of host-network pods
    /// and the local addresses of host processes' TCP/UDP rows.
    pub fn load(store: &Store) -> Result<Self> {
        let conn = store.conn();
        let mut stmt = conn
            .prepare(
                "SELECT cluster, node, namespace, pod, pod_uid, workload_kind, workload,
                        labels, host_network, ip,
                        epoch_ns(valid_from), epoch_ns(valid_to), kind, ports
                 FROM pods ORDER BY namespace, pod, ip, valid_from",
            )
            .map_err(AnalyzerError::store("read the pods table"))?;
        let rows = stmt
            .query_map([], |r| {
                let labels = super::flows::strings(r.get(7)?);
                Ok(PodAddress {
                    cluster: r.get(0)?,
                    node: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    namespace: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    pod: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    pod_uid: r.get(4)?,
                    workload_kind: r.get(5)?,
                    workload: r.get(6)?,
                    labels,
                    host_network: r.get::<_, Option<bool>>(8)?.unwrap_or(false),
                    ip: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                    valid_from: r.get::<_, Option<i64>>(10)?.unwrap_or(i64::MIN),
                    valid_to: r.get(11)?,
                    kind: r.get(12)?,
                    ports: super::flows::strings(r.get(13)?),
                })
            })
            .map_err(AnalyzerError::store("read the pods table"))?;
        let pods: Vec<PodAddress> = rows
            .collect::<std::result::Result<_, _>>()
            .map_err(AnalyzerError::store("read the pods table"))?;
        let mut node_addrs = HashMap::new();
        let mut stmt = conn
            .prepare(
                "SELECT DISTINCT local_addr, node FROM events
                 WHERE host AND op = 'network' AND proto IN ('tcp', 'udp', 'sctp')
                   AND local_addr IS NOT NULL AND coalesce(node, '') <> ''",
            )
            .map_err(AnalyzerError::store("read the nodes' addresses"))?;
        let rows = stmt
            .query_map(params![], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(AnalyzerError::store("read the nodes' addresses"))?;
        for row in rows {
            let (addr, node) = row.map_err(AnalyzerError::store("read the nodes' addresses"))?;
            if is_specific(&addr) {
                node_addrs.insert(addr, node);
            }
        }
        for p in pods.iter().filter(|p| !p.is_service()) {
            if p.host_network {
                node_addrs.insert(p.ip.clone(), p.node.clone());
            }
        }
        Ok(Self::new(pods, node_addrs))
    }

    /// The addresses of Service `name` of `ns`'s endpoints no pod holds, at `ts` (sorted).
    pub fn endpoints_at(&self, ns: &str, name: &str, ts: i64) -> Vec<String> {
        let mut out: Vec<String> = self
            .endpoints
            .get(&(ns.to_string(), name.to_string()))
            .into_iter()
            .flatten()
            .filter(|e| e.holds_at(ts))
            .map(|e| e.ip.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The ports of Service `name` of `ns`'s endpoints no pod holds, at `ts`: `PROTO/PORT`
    /// or `PROTO/PORT/NAME`, as a pod's container ports.
    pub fn endpoint_ports(&self, ns: &str, name: &str, ts: i64) -> Vec<String> {
        let mut out: Vec<String> = self
            .endpoints
            .get(&(ns.to_string(), name.to_string()))
            .into_iter()
            .flatten()
            .filter(|e| e.holds_at(ts))
            .flat_map(|e| e.ports.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Every pods-table row the index holds (pods and Services; not the endpoints rows).
    pub fn pods(&self) -> &[PodAddress] {
        &self.pods
    }

    /// Whether the index knows any pod.
    pub fn has_pods_table(&self) -> bool {
        !self.pods.is_empty()
    }

    /// The pods-table rows of a workload (every pod, every address; never a Service's row).
    pub fn pods_of(&self, w: &PeerWorkload) -> Vec<&PodAddress> {
        self.pods
            .iter()
            .filter(|p| !p.is_service() && &workload_of(p) == w)
            .collect()
    }

    /// The declared container ports of pod `pod` of `ns` (pods schema 1.1), from its rows
    /// that held an address at `ts` (else any of its rows).
    pub fn ports_of_pod(&self, ns: &str, pod: &str, ts: i64) -> Vec<String> {
        let rows: Vec<&PodAddress> = self
            .pods
            .iter()
            .filter(|p| !p.is_service() && p.namespace == ns && p.pod == pod)
            .collect();
        let at: Vec<&&PodAddress> = rows.iter().filter(|p| p.holds_at(ts)).collect();
        let mut out: Vec<String> = if at.is_empty() {
            rows.iter().flat_map(|p| p.ports.iter().cloned()).collect()
        } else {
            at.iter().flat_map(|p| p.ports.iter().cloned()).collect()
        };
        out.sort();
        out.dedup();
        out
    }

    /// The Service whose cluster IP `addr` was at `ts`, from the pods table.
    pub fn service_at(&self, addr: &str, ts: i64) -> Option<&PodAddress> {
        self.services
            .get(addr)?
            .iter()
            .filter(|s| s.holds_at(ts))
            .max_by_key(|s| s.valid_from)
    }

    /// The port a connection to `port` of the Service at cluster IP `addr` reached on its pods
    /// (after the Service's translation, which is what NetworkPolicy sees): the Service port's
    /// numeric target, or a named target resolved through the backends' container ports in the
    /// pods table. `None` when `addr` is no recorded Service, the port is not one of its ports,
    /// or a named target resolves to no port (or to several).
    pub fn service_target_port(&self, addr: &str, proto: &str, port: u16, ts: i64) -> Option<u16> {
        let svc = self.service_at(addr, ts)?;
        let (_, _, target) = svc
            .ports
            .iter()
            .filter_map(|p| karmor_contract::pods::parse_service_port(p))
            .find(|(pr, po, _)| pr.eq_ignore_ascii_case(proto) && *po == port)?;
        if let Ok(n) = target.parse::<u16>() {
            return Some(n);
        }
        let selector = label_pairs(&svc.labels);
        let found: BTreeSet<u16> = self
            .pods
            .iter()
            .filter(|p| {
                !p.is_service()
                    && p.namespace == svc.namespace
                    && p.holds_at(ts)
                    && selects(&selector, &p.labels)
            })
            .flat_map(|p| p.ports.iter())
            .filter_map(|e| karmor_contract::pods::parse_pod_port(e))
            .filter(|(pr, _, name)| {
                pr.eq_ignore_ascii_case(proto) && name.as_deref() == Some(target.as_str())
            })
            .map(|(_, n, _)| n)
            .collect();
        match found.len() {
            1 => found.into_iter().next(),
            _ => None,
        }
    }

    /// The stable labels of a workload in the pods table: on all its pods, without rollout-
    /// or replica-specific keys.
    pub fn stable_labels(&self, w: &PeerWorkload) -> BTreeMap<String, String> {
        stable_of(self.pods_of(w).iter().map(|p| p.labels.as_slice()), &w.kind)
    }

    /// Who held `addr` at `ts` (ns), reached with the name `name` if any.
    pub fn resolve(&self, addr: &str, name: Option<&str>, ts: i64) -> Peer {
        if let Ok(ip) = addr.parse::<IpAddr>() {
            if ip.is_loopback() {
                return Peer::Loopback;
            }
        }
        let holders: Vec<&PodAddress> = self
            .by_ip
            .get(addr)
            .map(|v| v.iter().filter(|p| p.holds_at(ts)).collect())
            .unwrap_or_default();
        // The pod that took the address last: an older span whose end no snapshot recorded
        // (the writer forgot it) ended when the address passed to another pod.
        if let Some(p) = holders
            .iter()
            .filter(|p| !p.host_network)
            .max_by_key(|p| p.valid_from)
        {
            return Peer::Pod {
                workload: workload_of(p),
                pod: p.pod.clone(),
                labels: p.labels.clone(),
                addr: addr.to_string(),
            };
        }
        let host_pods: Vec<String> = holders
            .iter()
            .filter(|p| p.host_network)
            .map(|p| format!("{}/{}", p.namespace, p.pod))
            .collect();
        let node = holders
            .iter()
            .find(|p| p.host_network)
            .map(|p| p.node.clone())
            .or_else(|| self.node_addrs.get(addr).cloned());
        if let Some(node) = node {
            return Peer::Node {
                node,
                addr: addr.to_string(),
                host_network_pods: host_pods,
            };
        }
        if let Some(svc) = self.service_at(addr, ts) {
            let endpoints = self.endpoints_at(&svc.namespace, &svc.pod, ts);
            let (backends, how) = if svc.labels.is_empty() && !endpoints.is_empty() {
                (
                    Vec::new(),
                    format!(
                        "cluster IP {} of the Service in the pods table; it has no selector, and its endpoints (EndpointSlices) are {}, which no pod holds",
                        svc.ip,
                        endpoints.join(", ")
                    ),
                )
            } else {
                self.selector_backends(svc, ts)
            };
            return Peer::Service {
                name: svc.pod.clone(),
                namespace: svc.namespace.clone(),
                dns: name.map_or_else(|| addr.to_string(), str::to_string),
                addr: addr.to_string(),
                backends,
                how,
                endpoints,
            };
        }
        if let Some((svc, ns)) = name.and_then(service_of) {
            let (backends, mut how) = self.service_backends(&svc, &ns, ts);
            let endpoints = if backends.is_empty() {
                self.endpoints_at(&ns, &svc, ts)
            } else {
                Vec::new()
            };
            if !endpoints.is_empty() {
                how = format!(
                    "its endpoints (EndpointSlices) are {}, which no pod holds",
                    endpoints.join(", ")
                );
            }
            return Peer::Service {
                name: svc,
                namespace: ns,
                dns: name.unwrap_or_default().to_string(),
                addr: addr.to_string(),
                backends,
                how,
                endpoints,
            };
        }
        Peer::External {
            addr: addr.to_string(),
            names: name.map(|n| vec![n.to_string()]).unwrap_or_default(),
        }
    }

    /// The pods a recorded Service's selector selects at `ts`, and how they were found.
    fn selector_backends(
        &self,
        svc: &PodAddress,
        ts: i64,
    ) -> (Vec<(PeerWorkload, Vec<String>)>, String) {
        let selector = label_pairs(&svc.labels);
        let sel_text = svc.labels.join(",");
        if selector.is_empty() {
            return (
                Vec::new(),
                format!(
                    "its cluster IP {} is in the pods table, but it has no selector (its endpoints are not pods the table knows)",
                    svc.ip
                ),
            );
        }
        let mut out: BTreeMap<PeerWorkload, Vec<String>> = BTreeMap::new();
        for p in self.pods.iter().filter(|p| {
            !p.is_service()
                && !p.host_network
                && p.namespace == svc.namespace
                && p.holds_at(ts)
                && selects(&selector, &p.labels)
        }) {
            out.entry(workload_of(p))
                .or_insert_with(|| p.labels.clone());
        }
        let how = if out.is_empty() {
            format!(
                "cluster IP {} of the Service, whose selector {sel_text} selects no pod in the pods table at the time",
                svc.ip
            )
        } else {
            format!(
                "cluster IP {} of the Service in the pods table, pods selected by its selector {sel_text}",
                svc.ip
            )
        };
        (out.into_iter().collect(), how)
    }

    /// The pods behind Service `svc` in `ns` at `ts`: pods of the namespace with a label whose
    /// value is the Service's name (`k8s-app=kube-dns`, `app=mysql`), else pods of a workload
    /// named like the Service.
    fn service_backends(
        &self,
        svc: &str,
        ns: &str,
        ts: i64,
    ) -> (Vec<(PeerWorkload, Vec<String>)>, String) {
        let alive: Vec<&PodAddress> = self
            .pods
            .iter()
            .filter(|p| !p.is_service() && p.namespace == ns && !p.host_network && p.holds_at(ts))
            .collect();
        let pick = |f: &dyn Fn(&PodAddress) -> bool| -> Vec<(PeerWorkload, Vec<String>)> {
            let mut out: BTreeMap<PeerWorkload, Vec<String>> = BTreeMap::new();
            for p in alive.iter().filter(|p| f(p)) {
                out.entry(workload_of(p))
                    .or_insert_with(|| p.labels.clone());
            }
            out.into_iter().collect()
        };
        let by_label = pick(&|p| {
            p.labels
                .iter()
                .filter_map(|l| l.split_once('='))
                .any(|(k, v)| v == svc && !UNSTABLE_LABELS.contains(&k))
        });
        if !by_label.is_empty() {
            let labels: BTreeSet<String> = alive
                .iter()
                .flat_map(|p| p.labels.iter())
                .filter(|l| l.split_once('=').is_some_and(|(_, v)| v == svc))
                .cloned()
                .collect();
            return (
                by_label,
                format!(
                    "pods of namespace {ns} labelled {} in the pods table",
                    labels.into_iter().collect::<Vec<_>>().join(" or ")
                ),
            );
        }
        let by_name = pick(&|p| p.workload.as_deref() == Some(svc));
        if !by_name.is_empty() {
            return (
                by_name,
                format!("pods of the workload named {svc} in namespace {ns}, in the pods table"),
            );
        }
        (
            Vec::new(),
            format!("no pod of namespace {ns} in the pods table carries a label valued {svc}"),
        )
    }
}

/// `key=value` strings as pairs.
fn label_pairs(labels: &[String]) -> Vec<(&str, &str)> {
    labels.iter().filter_map(|l| l.split_once('=')).collect()
}

/// Whether a pod with `labels` has every pair of `selector` (a Service's equality selector).
fn selects(selector: &[(&str, &str)], labels: &[String]) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.iter().any(|l| l.split_once('=') == Some((*k, *v))))
}

/// Stable labels over several pods' label lists: common to all, minus rollout- and
/// replica-specific keys (and a CronJob's per-run job name).
pub fn stable_of<'a>(
    pods: impl Iterator<Item = &'a [String]>,
    kind: &str,
) -> BTreeMap<String, String> {
    let mut common: Option<BTreeSet<&String>> = None;
    for labels in pods {
        let set: BTreeSet<&String> = labels.iter().collect();
        common = Some(match common {
            None => set,
            Some(c) => c.intersection(&set).copied().collect(),
        });
    }
    common
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| {
            let per_run =
                kind == "CronJob" && matches!(*k, "job-name" | "batch.kubernetes.io/job-name");
            !(UNSTABLE_LABELS.contains(k) || per_run)
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Whether an address names one interface (not a wildcard, loopback or a socket path).
fn is_specific(addr: &str) -> bool {
    match addr.parse::<IpAddr>() {
        Ok(ip) => !(ip.is_unspecified() || ip.is_loopback()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(
        ns: &str,
        name: &str,
        wl: &str,
        ip: &str,
        labels: &[&str],
        span: (i64, Option<i64>),
    ) -> PodAddress {
        PodAddress {
            cluster: None,
            node: "n1".into(),
            namespace: ns.into(),
            pod: name.into(),
            pod_uid: None,
            workload_kind: Some("Deployment".into()),
            workload: Some(wl.into()),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            host_network: false,
            ip: ip.into(),
            valid_from: span.0,
            valid_to: span.1,
            kind: None,
            ports: Vec::new(),
        }
    }

    #[test]
    fn an_address_reused_by_another_pod_resolves_by_time() {
        let idx = PeerIndex::new(
            vec![
                pod(
                    "a",
                    "job-1",
                    "job",
                    "10.1.0.5",
                    &["app=job"],
                    (0, Some(100)),
                ),
                pod("a", "web-1", "web", "10.1.0.5", &["app=web"], (200, None)),
            ],
            HashMap::new(),
        );
        let name = |p: Peer| match p {
            Peer::Pod { workload, .. } => workload.name,
            other => format!("{other:?}"),
        };
        assert_eq!(name(idx.resolve("10.1.0.5", None, 50)), "job");
        assert_eq!(name(idx.resolve("10.1.0.5", None, 250)), "web");
        // Between the two spans nobody held it: outside any pods table.
        assert!(matches!(
            idx.resolve("10.1.0.5", None, 150),
            Peer::External { .. }
        ));
    }

    #[test]
    fn host_network_nodes_services_and_strangers() {
        let mut kp = pod(
            "kube-system",
            "kube-proxy-x",
            "kube-proxy",
            "10.0.0.11",
            &[],
            (0, None),
        );
        kp.host_network = true;
        kp.node = "node-a".into();
        let dns = pod(
            "kube-system",
            "coredns-1",
            "coredns",
            "10.1.0.2",
            &["k8s-app=kube-dns", "pod-template-hash=1"],
            (0, None),
        );
        let mut nodes = HashMap::new();
        nodes.insert("10.244.1.1".to_string(), "node-a".to_string());
        let idx = PeerIndex::new(vec![kp, dns], nodes);
        match idx.resolve("10.0.0.11", None, 5) {
            Peer::Node {
                node,
                host_network_pods,
                ..
            } => {
                assert_eq!(node, "node-a");
                assert_eq!(host_network_pods, vec!["kube-system/kube-proxy-x"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            idx.resolve("10.244.1.1", None, 5),
            Peer::Node { .. }
        ));
        match idx.resolve(
            "10.96.0.10",
            Some("kube-dns.kube-system.svc.cluster.local"),
            5,
        ) {
            Peer::Service { backends, how, .. } => {
                assert_eq!(backends.len(), 1);
                assert_eq!(backends[0].0.name, "coredns");
                assert!(how.contains("k8s-app=kube-dns"), "{how}");
            }
            other => panic!("{other:?}"),
        }
        match idx.resolve("203.0.113.66", None, 5) {
            Peer::External { names, .. } => assert!(names.is_empty()),
            other => panic!("{other:?}"),
        }
        assert_eq!(idx.resolve("127.0.0.1", None, 5), Peer::Loopback);
        assert_eq!(
            service_of("mysql.shop.svc.cluster.local."),
            Some(("mysql".into(), "shop".into()))
        );
        assert_eq!(service_of("api.wordpress.org"), None);
    }
}
