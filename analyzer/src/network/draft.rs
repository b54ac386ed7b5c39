//! Network policy drafts per workload (design §7): a Kubernetes `NetworkPolicy` (or a
//! `CiliumNetworkPolicy`) that allows what the workload's pods were seen doing and nothing
//! else, every rule explained by its evidence.
//!
//! - The policy selects the workload's pods by their stable labels (never `pod-template-hash`
//!   and friends, as KubeArmor drafts do) and isolates them for both directions.
//! - A peer pod is selected by *its* stable labels from the pods table, in its namespace by
//!   `kubernetes.io/metadata.name` (the label Kubernetes gives every namespace). A Service
//!   reached by its cluster DNS name is its pods, so DNS egress goes to the DNS pods actually
//!   found behind `kube-dns`, selected by the labels they carry.
//! - A peer outside every pods table is an `ipBlock` of its one address, annotated with the
//!   names it was reached by (`karmor.io/peer-names`); a host-network peer (a node) likewise,
//!   annotated with the node. Connections from the pod's own node (kubelet probes) and
//!   loopback are never dropped by NetworkPolicy and need no rule.
//! - Host-network pods get no draft: NetworkPolicy does not apply to them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use super::flows::Flow;
use super::model::Direction;
use super::peers::{Peer, PeerIndex, PeerWorkload};

/// The label Kubernetes sets on every namespace to its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Annotation of a draft: `CIDR` → names it was reached by (JSON).
pub const PEER_NAMES_ANNOTATION: &str = "karmor.io/peer-names";
/// Annotation of a draft: the evidence window.
pub const EVIDENCE_ANNOTATION: &str = "karmor.io/evidence";

/// Which API the drafts are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum NetworkFormat {
    /// networking.k8s.io/v1 NetworkPolicy.
    #[default]
    Kubernetes,
    /// cilium.io/v2 CiliumNetworkPolicy (`toFQDNs` for names, `toEntities` for nodes).
    Cilium,
}

/// Who a drafted rule lets in or out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DraftPeer {
    /// Pods by labels; `namespace: None` = the workload's own namespace.
    Pods {
        /// Another namespace, selected by `kubernetes.io/metadata.name`.
        namespace: Option<String>,
        /// The pods' stable labels (empty: every pod of the namespace).
        labels: BTreeMap<String, String>,
    },
    /// One address.
    Address {
        /// The address.
        addr: String,
        /// What it is: the names it was reached by, or the node.
        names: Vec<String>,
        /// Whether it is a node (a host-network peer).
        node: Option<String>,
    },
    /// The endpoints of a Service that no pod holds (a Service without a selector; the API
    /// servers behind `default/kubernetes`).
    Endpoints {
        /// The Service, `namespace/name`.
        service: String,
        /// Its endpoints' addresses.
        addrs: Vec<String>,
        /// Whether the Service is `default/kubernetes`: Cilium's `kube-apiserver` entity.
        api_server: bool,
    },
}

/// The Service whose endpoints are the API servers.
pub const API_SERVER_SERVICE: (&str, &str) = ("default", "kubernetes");

/// One drafted rule: a peer and the ports seen with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DraftRule {
    /// The peer.
    pub peer: DraftPeer,
    /// `(protocol upper case, port)`; `None` = every port of the protocol.
    pub ports: BTreeSet<(String, Option<u16>)>,
    /// What was seen: the peers' descriptions.
    pub seen: BTreeSet<String>,
    /// Names the peer was reached by (Cilium `toFQDNs`).
    pub names: BTreeSet<String>,
    /// For a node peer, the Cilium entities it is to the workload's pods that reached it:
    /// `host` for a pod on that node, `remote-node` for a pod on another one (both when a
    /// pod's node is unknown).
    pub entities: BTreeSet<String>,
    /// Events behind it.
    pub events: u64,
    /// First seen (ns).
    pub first_ns: i64,
    /// Last seen (ns).
    pub last_ns: i64,
    /// Why it looks the way it does (generalisations: a Service's pods, a whole namespace).
    pub why: Vec<String>,
}

/// A network draft for one workload.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkDraft {
    /// The workload.
    pub workload: PeerWorkload,
    /// Its pods' stable labels: the policy's pod selector.
    pub selector: BTreeMap<String, String>,
    /// Ingress rules.
    pub ingress: Vec<DraftRule>,
    /// Egress rules.
    pub egress: Vec<DraftRule>,
    /// What needed no rule, and why (loopback, the pod's own node).
    pub not_needed: Vec<String>,
    /// Things to know before applying it.
    pub warnings: Vec<String>,
    /// Why there is no policy, when there is none (host-network pods).
    pub skipped: Option<String>,
    /// Connections (events) behind it.
    pub events: u64,
    /// First behaviour seen (ns).
    pub first_ns: i64,
    /// Last behaviour seen (ns).
    pub last_ns: i64,
}

impl NetworkDraft {
    /// The policy's name: `karmor-<workload>` (lower case, at most 63 characters).
    pub fn policy_name(&self) -> String {
        let mut n = format!("karmor-{}", self.workload.name.to_ascii_lowercase());
        n.retain(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        n.truncate(63);
        n.trim_end_matches(['-', '.']).to_string()
    }

    /// The rules of a direction.
    pub fn rules(&self, d: Direction) -> &[DraftRule] {
        match d {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// Drafts one network policy per workload from its flows.
pub fn draft_all(flows: &[Flow], index: &PeerIndex) -> Vec<NetworkDraft> {
    let mut by: BTreeMap<&PeerWorkload, Vec<&Flow>> = BTreeMap::new();
    for f in flows {
        by.entry(&f.workload).or_default().push(f);
    }
    by.into_iter()
        .map(|(w, fs)| draft_one(w, &fs, index))
        .collect()
}

fn host_cidr(addr: &str) -> String {
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("{addr}/128"),
        _ => format!("{addr}/32"),
    }
}

/// The selector of a peer workload: its stable labels in the pods table, else those of the
/// pod seen.
fn peer_labels(index: &PeerIndex, w: &PeerWorkload, seen: &[String]) -> BTreeMap<String, String> {
    let from_table = index.stable_labels(w);
    if !from_table.is_empty() {
        return from_table;
    }
    super::peers::stable_of(std::iter::once(seen), &w.kind)
}

fn draft_one(w: &PeerWorkload, flows: &[&Flow], index: &PeerIndex) -> NetworkDraft {
    let mut d = NetworkDraft {
        workload: w.clone(),
        selector: BTreeMap::new(),
        ingress: Vec::new(),
        egress: Vec::new(),
        not_needed: Vec::new(),
        warnings: Vec::new(),
        skipped: None,
        events: flows.iter().map(|f| f.events).sum(),
        first_ns: flows.iter().map(|f| f.first_ns).min().unwrap_or(0),
        last_ns: flows.iter().map(|f| f.last_ns).max().unwrap_or(0),
    };
    if flows.iter().any(|f| f.host_network) {
        d.skipped = Some(
            "its pods run in the host's network namespace: NetworkPolicy does not select them"
                .into(),
        );
        return d;
    }
    // The workload's own selector: stable labels on all its pods (events and pods table).
    let mut pods: BTreeMap<&str, &[String]> = BTreeMap::new();
    for f in flows {
        pods.entry(f.pod.as_str()).or_insert(f.labels.as_slice());
    }
    d.selector = super::peers::stable_of(pods.values().copied(), &w.kind);
    if d.selector.is_empty() {
        d.warnings.push(
            "its pods share no stable label: the draft selects every pod of the namespace".into(),
        );
    }
    let mut rules: BTreeMap<(Direction, DraftPeer), DraftRule> = BTreeMap::new();
    let mut not_needed = BTreeSet::new();
    for f in flows {
        let port = (f.proto.to_ascii_uppercase(), f.port);
        let mut targets: Vec<(DraftPeer, String, Vec<String>)> = Vec::new();
        match &f.peer {
            Peer::Loopback => {
                not_needed.insert(format!(
                    "{} {} over loopback: NetworkPolicy never filters a pod's traffic with itself",
                    f.direction.as_str().to_lowercase(),
                    f.port_text()
                ));
            }
            Peer::Node { node, addr, .. }
                if f.direction == Direction::Ingress && *node == f.node =>
            {
                not_needed.insert(format!(
                    "ingress {} from its own node {node} ({addr}, kubelet probes): a pod's node may always reach it",
                    f.port_text()
                ));
            }
            Peer::Node {
                node,
                addr,
                host_network_pods,
            } => {
                let mut names = vec![format!("node {node}")];
                names.extend(
                    host_network_pods
                        .iter()
                        .map(|p| format!("host network: {p}")),
                );
                targets.push((
                    DraftPeer::Address {
                        addr: addr.clone(),
                        names: names.clone(),
                        node: Some(node.clone()),
                    },
                    f.peer.describe(),
                    vec![format!(
                        "a host-network peer: node {node} is an address, not pods; ipBlock {}",
                        host_cidr(addr)
                    )],
                ));
            }
            Peer::Pod {
                workload, labels, ..
            } => {
                let sel = peer_labels(index, workload, labels);
                let mut why = Vec::new();
                if sel.is_empty() {
                    why.push(format!(
                        "{workload} has no stable label: every pod of namespace {} is allowed",
                        workload.namespace
                    ));
                }
                targets.push((
                    DraftPeer::Pods {
                        namespace: (workload.namespace != w.namespace)
                            .then(|| workload.namespace.clone()),
                        labels: sel,
                    },
                    f.peer.describe(),
                    why,
                ));
            }
            Peer::Service {
                name,
                namespace,
                dns,
                backends,
                how,
                endpoints,
                ..
            } => {
                if backends.is_empty() && !endpoints.is_empty() {
                    let api_server = (namespace.as_str(), name.as_str()) == API_SERVER_SERVICE;
                    targets.push((
                        DraftPeer::Endpoints {
                            service: format!("{namespace}/{name}"),
                            addrs: endpoints.clone(),
                            api_server,
                        },
                        f.peer.describe(),
                        vec![format!(
                            "service {namespace}/{name} (reached as {dns}): {how}; allowed as those addresses{}",
                            if api_server {
                                " (Cilium: the kube-apiserver entity)"
                            } else {
                                ""
                            }
                        )],
                    ));
                } else if backends.is_empty() {
                    targets.push((
                        DraftPeer::Pods {
                            namespace: (namespace != &w.namespace).then(|| namespace.clone()),
                            labels: BTreeMap::new(),
                        },
                        f.peer.describe(),
                        vec![format!(
                            "service {namespace}/{name} (reached as {dns}): {how}, so every pod of namespace {namespace} is allowed on this port"
                        )],
                    ));
                    d.warnings.push(format!(
                        "service {namespace}/{name}: no pod behind it in the pods table; the draft allows the whole namespace {namespace} on {}",
                        f.port_text()
                    ));
                }
                for (bw, blabels) in backends {
                    let sel = peer_labels(index, bw, blabels);
                    let sel_text = sel
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",");
                    targets.push((
                        DraftPeer::Pods {
                            namespace: (bw.namespace != w.namespace).then(|| bw.namespace.clone()),
                            labels: sel,
                        },
                        f.peer.describe(),
                        vec![format!(
                            "service {namespace}/{name} (reached as {dns}, address {}) is {bw}: {how}; selected by its pods' own labels {sel_text}",
                            f.remote_addr
                        )],
                    ));
                }
            }
            Peer::External { addr, names } => {
                targets.push((
                    DraftPeer::Address {
                        addr: addr.clone(),
                        names: names.clone(),
                        node: None,
                    },
                    f.peer.describe(),
                    Vec::new(),
                ));
            }
        }
        for (peer, seen, why) in targets {
            let r = rules
                .entry((f.direction, peer.clone()))
                .or_insert_with(|| DraftRule {
                    peer,
                    ports: BTreeSet::new(),
                    seen: BTreeSet::new(),
                    names: BTreeSet::new(),
                    entities: BTreeSet::new(),
                    events: 0,
                    first_ns: i64::MAX,
                    last_ns: i64::MIN,
                    why: Vec::new(),
                });
            r.ports.insert(port.clone());
            if let DraftPeer::Address {
                node: Some(node), ..
            } = &r.peer
            {
                if f.node.is_empty() {
                    r.entities
                        .extend(["host".to_string(), "remote-node".to_string()]);
                } else if *node == f.node {
                    r.entities.insert("host".into());
                } else {
                    r.entities.insert("remote-node".into());
                }
            }
            r.seen.insert(seen);
            if let Some(n) = &f.remote_name {
                r.names.insert(n.trim_end_matches('.').to_string());
            }
            r.events += f.events;
            r.first_ns = r.first_ns.min(f.first_ns);
            r.last_ns = r.last_ns.max(f.last_ns);
            for y in why {
                if !r.why.contains(&y) {
                    r.why.push(y);
                }
            }
        }
    }
    for ((dir, _), r) in rules {
        match dir {
            Direction::Ingress => d.ingress.push(r),
            Direction::Egress => d.egress.push(r),
        }
    }
    d.not_needed = not_needed.into_iter().collect();
    d
}

/// Quotes a YAML scalar when it is not a plain, unambiguous string.
pub fn yaml_str(s: &str) -> String {
    let numeric_looking = s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o")
        || s.chars()
            .all(|c| c.is_ascii_digit() || c == '_' || c == '.');
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && !numeric_looking
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

fn comment(s: &str) -> String {
    s.replace('\n', " ")
}

fn when(ns: i64) -> String {
    karmor_contract::bundle::format_ts(ns)
}

fn labels_block(out: &mut Vec<String>, indent: usize, labels: &BTreeMap<String, String>) {
    let pad = " ".repeat(indent);
    if labels.is_empty() {
        out.push(format!("{pad}{{}}"));
        return;
    }
    out.push(format!("{pad}matchLabels:"));
    for (k, v) in labels {
        out.push(format!("{pad}  {}: {}", yaml_str(k), yaml_str(v)));
    }
}

fn peer_names_annotation(d: &NetworkDraft) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in d.ingress.iter().chain(&d.egress) {
        let named: Vec<(&String, Vec<String>)> = match &r.peer {
            DraftPeer::Address { addr, names, .. } => vec![(addr, names.clone())],
            DraftPeer::Endpoints { service, addrs, .. } => addrs
                .iter()
                .map(|a| (a, vec![format!("endpoint of service {service}")]))
                .collect(),
            DraftPeer::Pods { .. } => Vec::new(),
        };
        for (addr, names) in named {
            let e = m.entry(host_cidr(addr)).or_default();
            for n in names {
                if !e.contains(&n) {
                    e.push(n);
                }
            }
        }
    }
    m
}

fn header(out: &mut Vec<String>, d: &NetworkDraft, api: &str, kind: &str) {
    out.push(format!(
        "# {kind} drafted by kubectl-karmor from {} connection events of {} ({} .. {}).",
        d.events,
        d.workload,
        when(d.first_ns),
        when(d.last_ns)
    ));
    out.push("# It allows what was observed and nothing else; simulate it before applying:".into());
    out.push("#   kubectl karmor simulate -p THIS_FILE ...".into());
    for n in &d.not_needed {
        out.push(format!("# No rule needed: {}", comment(n)));
    }
    for w in &d.warnings {
        out.push(format!("# WARNING: {}", comment(w)));
    }
    out.push(format!("apiVersion: {api}"));
    out.push(format!("kind: {kind}"));
    out.push("metadata:".into());
    out.push(format!("  name: {}", yaml_str(&d.policy_name())));
    out.push(format!("  namespace: {}", yaml_str(&d.workload.namespace)));
    out.push("  labels:".into());
    out.push("    app.kubernetes.io/managed-by: kubectl-karmor".into());
    out.push("  annotations:".into());
    out.push(format!(
        "    {EVIDENCE_ANNOTATION}: {}",
        yaml_str(&format!(
            "{} events of {}, {} .. {}",
            d.events,
            d.workload,
            when(d.first_ns),
            when(d.last_ns)
        ))
    ));
    let names = peer_names_annotation(d);
    if !names.is_empty() {
        let json = serde_json::to_string(&names).unwrap_or_default();
        out.push(format!("    {PEER_NAMES_ANNOTATION}: {}", yaml_str(&json)));
    }
}

fn rule_comments(out: &mut Vec<String>, pad: &str, r: &DraftRule) {
    out.push(format!(
        "{pad}# {} ({} events, {} .. {})",
        comment(&r.seen.iter().cloned().collect::<Vec<_>>().join("; ")),
        r.events,
        when(r.first_ns),
        when(r.last_ns)
    ));
    for y in &r.why {
        out.push(format!("{pad}# why: {}", comment(y)));
    }
}

/// The draft as a `NetworkPolicy` YAML document, with comments (`None` when skipped).
pub fn kubernetes_yaml(d: &NetworkDraft) -> Option<String> {
    if d.skipped.is_some() {
        return None;
    }
    let mut out = Vec::new();
    header(&mut out, d, "networking.k8s.io/v1", "NetworkPolicy");
    out.push("spec:".into());
    out.push("  podSelector:".into());
    labels_block(&mut out, 4, &d.selector);
    out.push("  policyTypes:".into());
    out.push("  - Ingress".into());
    out.push("  - Egress".into());
    for (dir, key, peer_key) in [
        (Direction::Ingress, "ingress", "from"),
        (Direction::Egress, "egress", "to"),
    ] {
        let rules = d.rules(dir);
        if rules.is_empty() {
            out.push(format!("  # no {key} was observed: none is allowed"));
            out.push(format!("  {key}: []"));
            continue;
        }
        out.push(format!("  {key}:"));
        for r in rules {
            rule_comments(&mut out, "  ", r);
            out.push(format!("  - {peer_key}:"));
            match &r.peer {
                DraftPeer::Pods { namespace, labels } => {
                    match namespace {
                        Some(ns) => {
                            out.push("    - namespaceSelector:".into());
                            out.push("        matchLabels:".into());
                            out.push(format!(
                                "          {NAMESPACE_NAME_LABEL}: {}",
                                yaml_str(ns)
                            ));
                            out.push("      podSelector:".into());
                        }
                        None => out.push("    - podSelector:".into()),
                    }
                    labels_block(&mut out, 8, labels);
                }
                DraftPeer::Address { addr, names, .. } => {
                    if !names.is_empty() {
                        out.push(format!("    # {}", comment(&names.join(", "))));
                    }
                    out.push("    - ipBlock:".into());
                    out.push(format!("        cidr: {}", yaml_str(&host_cidr(addr))));
                }
                DraftPeer::Endpoints { service, addrs, .. } => {
                    out.push(format!("    # endpoints of service {service}"));
                    for a in addrs {
                        out.push("    - ipBlock:".into());
                        out.push(format!("        cidr: {}", yaml_str(&host_cidr(a))));
                    }
                }
            }
            out.push("    ports:".into());
            for (proto, port) in &r.ports {
                out.push(format!("    - protocol: {proto}"));
                if let Some(p) = port {
                    out.push(format!("      port: {p}"));
                }
            }
        }
    }
    Some(out.join("\n") + "\n")
}

/// The draft as a `CiliumNetworkPolicy` YAML document, with comments (`None` when skipped):
/// pods as endpoints (their namespace by `k8s:io.kubernetes.pod.namespace`), names reached as
/// `toFQDNs` (with the DNS rule Cilium needs to learn their addresses), nodes as the `host`
/// entity when the pods that reached them ran on them and `remote-node` otherwise, other
/// addresses as `toCIDR`/`fromCIDR`.
pub fn cilium_yaml(d: &NetworkDraft) -> Option<String> {
    if d.skipped.is_some() {
        return None;
    }
    let mut out = Vec::new();
    header(&mut out, d, "cilium.io/v2", "CiliumNetworkPolicy");
    out.push("spec:".into());
    out.push("  endpointSelector:".into());
    labels_block(&mut out, 4, &d.selector);
    let has_fqdn = d.egress.iter().any(is_fqdn_rule);
    for (dir, key, prefix) in [
        (Direction::Ingress, "ingress", "from"),
        (Direction::Egress, "egress", "to"),
    ] {
        let rules = d.rules(dir);
        if rules.is_empty() {
            out.push(format!("  # no {key} was observed: none is allowed"));
            out.push(format!("  {key}:"));
            out.push("  - {}".into());
            continue;
        }
        out.push(format!("  {key}:"));
        for r in rules {
            rule_comments(&mut out, "  ", r);
            let mut dns_rule = false;
            match &r.peer {
                DraftPeer::Pods { namespace, labels } => {
                    out.push(format!("  - {prefix}Endpoints:"));
                    let ns = namespace
                        .clone()
                        .unwrap_or_else(|| d.workload.namespace.clone());
                    out.push("    - matchLabels:".into());
                    out.push(format!(
                        "        k8s:io.kubernetes.pod.namespace: {}",
                        yaml_str(&ns)
                    ));
                    for (k, v) in labels {
                        out.push(format!("        {}: {}", yaml_str(k), yaml_str(v)));
                    }
                    dns_rule = dir == Direction::Egress
                        && has_fqdn
                        && r.ports.iter().any(|(_, p)| *p == Some(53));
                }
                DraftPeer::Address {
                    node: Some(node), ..
                } => {
                    let why = match (
                        r.entities.contains("host"),
                        r.entities.contains("remote-node"),
                    ) {
                        (true, false) => "the node the pods ran on: the host entity",
                        (false, true) => "another node than the pods': the remote-node entity",
                        _ => "the host entity to its own pods, remote-node to the others'",
                    };
                    out.push(format!("    # node {node}: {why}"));
                    out.push(format!("  - {prefix}Entities:"));
                    for e in &r.entities {
                        out.push(format!("    - {e}"));
                    }
                }
                DraftPeer::Endpoints {
                    service,
                    addrs,
                    api_server: true,
                } => {
                    out.push(format!(
                        "    # endpoints of service {service}: {}",
                        addrs.join(", ")
                    ));
                    out.push(format!("  - {prefix}Entities:"));
                    out.push("    - kube-apiserver".into());
                }
                DraftPeer::Endpoints { service, addrs, .. } => {
                    out.push(format!("    # endpoints of service {service}"));
                    out.push(format!("  - {prefix}CIDR:"));
                    for a in addrs {
                        out.push(format!("    - {}", yaml_str(&host_cidr(a))));
                    }
                }
                DraftPeer::Address { addr, names, .. }
                    if dir == Direction::Egress && is_fqdn_rule(r) =>
                {
                    out.push(format!("    # {addr}"));
                    out.push("  - toFQDNs:".into());
                    for n in names {
                        out.push(format!("    - matchName: {}", yaml_str(n)));
                    }
                }
                DraftPeer::Address { addr, names, .. } => {
                    if !names.is_empty() {
                        out.push(format!("    # {}", comment(&names.join(", "))));
                    }
                    out.push(format!("  - {prefix}CIDR:"));
                    out.push(format!("    - {}", yaml_str(&host_cidr(addr))));
                }
            }
            out.push("    toPorts:".into());
            out.push("    - ports:".into());
            for (proto, port) in &r.ports {
                out.push(format!(
                    "      - port: {}",
                    yaml_str(&port.map_or("0".to_string(), |p| p.to_string()))
                ));
                out.push(format!("        protocol: {proto}"));
            }
            if dns_rule {
                out.push("      # toFQDNs needs Cilium's DNS proxy to see the lookups".into());
                out.push("      rules:".into());
                out.push("        dns:".into());
                out.push("        - matchPattern: \"*\"".into());
            }
        }
    }
    Some(out.join("\n") + "\n")
}

fn is_fqdn_rule(r: &DraftRule) -> bool {
    matches!(&r.peer, DraftPeer::Address { node: None, names, .. } if !names.is_empty())
}

/// The draft in `format`.
pub fn yaml(d: &NetworkDraft, format: NetworkFormat) -> Option<String> {
    match format {
        NetworkFormat::Kubernetes => kubernetes_yaml(d),
        NetworkFormat::Cilium => cilium_yaml(d),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use karmor_contract::pods::PodAddress;

    use super::*;

    fn flow(peer_addr: &str, dir: Direction, index: &PeerIndex) -> Flow {
        Flow {
            workload: PeerWorkload {
                namespace: "shop".into(),
                kind: "Deployment".into(),
                name: "web".into(),
            },
            pod: "web-1".into(),
            node: "n1".into(),
            labels: vec!["app=web".into(), "pod-template-hash=abc".into()],
            host_network: false,
            direction: dir,
            proto: "tcp".into(),
            port: Some(10250),
            remote_addr: peer_addr.into(),
            remote_name: None,
            peer: index.resolve(peer_addr, None, 5),
            dest_ports: Vec::new(),
            first_ns: 5,
            last_ns: 5,
            events: 3,
        }
    }

    #[test]
    fn host_network_peers_and_strangers_are_annotated_address_rules() {
        let proxy = PodAddress {
            node: "n2".into(),
            namespace: "kube-system".into(),
            pod: "kube-proxy-x".into(),
            workload_kind: Some("DaemonSet".into()),
            workload: Some("kube-proxy".into()),
            host_network: true,
            ip: "192.168.0.12".into(),
            valid_from: 0,
            ..PodAddress::default()
        };
        let index = PeerIndex::new(vec![proxy], HashMap::new());
        let flows = vec![
            flow("192.168.0.12", Direction::Egress, &index),
            flow("203.0.113.9", Direction::Egress, &index),
        ];
        let d = &draft_all(&flows, &index)[0];
        assert_eq!(d.selector.len(), 1, "{:?}", d.selector);
        assert_eq!(d.egress.len(), 2);
        let node = d
            .egress
            .iter()
            .find(|r| matches!(&r.peer, DraftPeer::Address { node: Some(n), .. } if n == "n2"))
            .expect("the host-network peer is an address rule");
        let DraftPeer::Address { names, .. } = &node.peer else {
            unreachable!()
        };
        assert_eq!(
            names,
            &["node n2", "host network: kube-system/kube-proxy-x"]
        );
        let text = kubernetes_yaml(d).unwrap();
        assert!(text.contains("cidr: 192.168.0.12/32"), "{text}");
        assert!(
            text.contains("# node n2, host network: kube-system/kube-proxy-x"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"\"192.168.0.12/32\":[\"node n2\",\"host network: kube-system/kube-proxy-x\"]"#
            ),
            "{text}"
        );
        assert!(text.contains("# 203.0.113.9 (in no pods table)"), "{text}");
        assert!(text.contains("cidr: 203.0.113.9/32"), "{text}");
        assert!(!text.contains("pod-template-hash"), "{text}");
    }

    #[test]
    fn a_node_peer_is_host_to_pods_on_it_and_remote_node_to_the_others() {
        let node_pod = |node: &str, ip: &str| PodAddress {
            node: node.into(),
            namespace: "kube-system".into(),
            pod: format!("kube-proxy-{node}"),
            workload_kind: Some("DaemonSet".into()),
            workload: Some("kube-proxy".into()),
            host_network: true,
            ip: ip.into(),
            valid_from: 0,
            ..PodAddress::default()
        };
        let index = PeerIndex::new(
            vec![
                node_pod("n1", "192.168.0.11"),
                node_pod("n2", "192.168.0.12"),
            ],
            HashMap::new(),
        );
        // web-1 on n1 reaches both nodes; web-2 on n2 reaches n2.
        let mut flows = vec![
            flow("192.168.0.11", Direction::Egress, &index),
            flow("192.168.0.12", Direction::Egress, &index),
        ];
        flows.push(Flow {
            pod: "web-2".into(),
            node: "n2".into(),
            ..flow("192.168.0.12", Direction::Egress, &index)
        });
        let d = &draft_all(&flows, &index)[0];
        let entities = |node: &str| -> Vec<&str> {
            d.egress
                .iter()
                .find(|r| matches!(&r.peer, DraftPeer::Address { node: Some(n), .. } if n == node))
                .map(|r| r.entities.iter().map(String::as_str).collect())
                .unwrap_or_default()
        };
        assert_eq!(entities("n1"), ["host"]);
        assert_eq!(entities("n2"), ["host", "remote-node"]);
        let text = cilium_yaml(d).unwrap();
        assert!(
            text.contains("# node n1: the node the pods ran on: the host entity\n  - toEntities:\n    - host\n    toPorts:"),
            "{text}"
        );
        assert!(
            text.contains("# node n2: the host entity to its own pods, remote-node to the others'\n  - toEntities:\n    - host\n    - remote-node\n"),
            "{text}"
        );
        // The draft allows every flow it came from.
        let parse = |text: &str| {
            super::super::parse_policies(text, std::path::Path::new("draft.yaml"))
                .expect("the draft parses")
        };
        let outcome = super::super::simulate::simulate(&flows, &parse(&text));
        assert!(outcome.iter().all(|v| v.decision.passes()), "{outcome:?}");
        // Drafted from web-1 reaching its own node only, nothing wider: web-2 (on n2)
        // reaching n1 is dropped (remote-node, which both entities gave before, would allow
        // it).
        let only_host = draft_all(&flows[..1], &index);
        let policies = parse(&cilium_yaml(&only_host[0]).unwrap());
        let wider = Flow {
            pod: "web-2".into(),
            node: "n2".into(),
            ..flow("192.168.0.11", Direction::Egress, &index)
        };
        let outcome = super::super::simulate::simulate(&[wider], &policies);
        assert_eq!(
            outcome[0].decision,
            super::super::simulate::NetDecision::Dropped,
            "{outcome:?}"
        );
    }
}
