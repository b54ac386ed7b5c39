//! Recorded connections replayed through network policies with Kubernetes' semantics
//! (design §7):
//!
//! - a pod is isolated for a direction once any policy of its namespace selects it for that
//!   direction (`policyTypes`, or Kubernetes' defaults: Ingress always, Egress when the
//!   policy has an `egress` section; Cilium: an `ingress`/`egress` section); a pod no policy
//!   isolates is not affected;
//! - an isolated pod's connection is allowed when any rule of any policy selecting it allows
//!   it (the union), each rule matching when one of its peers and one of its ports do (an
//!   absent or empty list matches all); a Cilium deny rule that matches drops whatever allows;
//! - peers: pod selectors in the policy's namespace, namespace selectors (namespaces are known
//!   by their `kubernetes.io/metadata.name` label only), `ipBlock` with `except`, Cilium
//!   entities and `toFQDNs` (against the name the connection was made to);
//! - ports: protocol (TCP when omitted in a NetworkPolicy), number, `endPort` ranges; named
//!   ports cannot be resolved from recordings and match nothing;
//! - never filtered: loopback, and a pod's own node reaching it (kubelet probes), as Kubernetes
//!   documents; host-network pods, which NetworkPolicy does not select;
//! - a connection to a Service is a connection to its pods: it is allowed when every pod
//!   behind it that the pods table knows would be allowed.
//!
//! Each recorded side is judged for its own direction: a pod-to-pod connection is recorded
//! twice (the client's `connect`, the server's `accept`) and each record meets its pod's
//! policies.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::flows::Flow;
use super::model::{label_map, Direction, NetPolicy, PeerSelector, Rule};
use super::peers::Peer;

/// What the policies do to a recorded connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum NetDecision {
    /// A policy selecting the pod allows it.
    Allowed,
    /// The pod is isolated for the direction and no rule allows it (or a deny rule matches).
    Dropped,
    /// No policy isolates the pod for this direction.
    NotIsolated,
    /// Never filtered by NetworkPolicy (loopback, the pod's own node, host-network pods).
    Unaffected,
    /// Isolated, no rule allows it for sure, and a rule with a named port would allow it if
    /// the name meant the connection's port: the destination pod's container ports are not
    /// recorded, so whether it is dropped cannot be decided.
    Undecided,
}

impl NetDecision {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            NetDecision::Allowed => "allowed",
            NetDecision::Dropped => "dropped",
            NetDecision::NotIsolated => "not-isolated",
            NetDecision::Unaffected => "unaffected",
            NetDecision::Undecided => "undecided",
        }
    }

    /// Whether the connection still works.
    pub fn passes(self) -> bool {
        self != NetDecision::Dropped
    }
}

/// One recorded connection group and what the policies do to it.
#[derive(Debug, Clone, Serialize)]
pub struct NetVerdict {
    /// The connections.
    pub flow: Flow,
    /// The decision.
    pub decision: NetDecision,
    /// The deciding policies (`namespace/name`): the one that allows, or those that isolate
    /// the pod (and a deny rule's).
    pub policies: Vec<String>,
    /// Why.
    pub reason: String,
}

/// Labels of namespaces beyond `kubernetes.io/metadata.name` (which every namespace has),
/// for namespace selectors: namespace → key → value.
pub type NamespaceLabels = BTreeMap<String, BTreeMap<String, String>>;

/// Judges every flow; namespaces carry only their `kubernetes.io/metadata.name` label.
pub fn simulate(flows: &[Flow], policies: &[NetPolicy]) -> Vec<NetVerdict> {
    simulate_with(flows, policies, &NamespaceLabels::new())
}

/// Judges every flow, namespaces labelled by `namespaces` too.
pub fn simulate_with(
    flows: &[Flow],
    policies: &[NetPolicy],
    namespaces: &NamespaceLabels,
) -> Vec<NetVerdict> {
    flows
        .iter()
        .map(|f| decide(f, policies, namespaces))
        .collect()
}

/// Judges one flow.
pub fn decide(f: &Flow, policies: &[NetPolicy], namespaces: &NamespaceLabels) -> NetVerdict {
    let verdict = |decision, policies: Vec<String>, reason: String| NetVerdict {
        flow: f.clone(),
        decision,
        policies,
        reason,
    };
    if f.host_network {
        return verdict(
            NetDecision::Unaffected,
            Vec::new(),
            "host-network pod: no NetworkPolicy selects it".into(),
        );
    }
    if f.peer == Peer::Loopback {
        return verdict(NetDecision::Unaffected, Vec::new(), "loopback".into());
    }
    if let Peer::Node { node, .. } = &f.peer {
        if f.direction == Direction::Ingress && *node == f.node {
            return verdict(
                NetDecision::Unaffected,
                Vec::new(),
                format!("from the pod's own node {node}: always allowed"),
            );
        }
    }
    let labels = f.label_map();
    let mut selecting: Vec<&NetPolicy> = policies
        .iter()
        .filter(|p| {
            p.namespace == f.workload.namespace
                && p.rules(f.direction).is_some()
                && p.selector.matches(&labels)
        })
        .collect();
    selecting.sort_by_key(|p| p.id());
    if selecting.is_empty() {
        return verdict(
            NetDecision::NotIsolated,
            Vec::new(),
            format!(
                "no policy selects the pod for {}",
                f.direction.as_str().to_lowercase()
            ),
        );
    }
    let rules = |p: &NetPolicy| p.rules(f.direction).cloned().unwrap_or_default();
    for p in &selecting {
        for (i, r) in rules(p).iter().enumerate() {
            if r.deny && rule_matches(r, p, f, namespaces) {
                return verdict(
                    NetDecision::Dropped,
                    vec![p.id()],
                    format!("denied by {} rule {}", p.id(), i + 1),
                );
            }
        }
    }
    for p in &selecting {
        for (i, r) in rules(p).iter().enumerate() {
            if !r.deny && rule_matches(r, p, f, namespaces) {
                return verdict(
                    NetDecision::Allowed,
                    vec![p.id()],
                    format!(
                        "{} rule {} of {}",
                        f.direction.as_str().to_lowercase(),
                        i + 1,
                        p.id()
                    ),
                );
            }
        }
    }
    let undecided: Vec<String> = selecting
        .iter()
        .filter(|p| {
            rules(p)
                .iter()
                .any(|r| !r.deny && rule_decides(r, p, f, namespaces).is_none())
        })
        .map(|p| p.id())
        .collect();
    if !undecided.is_empty() {
        return verdict(
            NetDecision::Undecided,
            undecided,
            format!(
                "a rule with a named port would allow {} {} if the name meant port {}: the destination pod's container ports are not in the pods table",
                f.peer.describe(),
                f.port_text(),
                f.port.map_or_else(|| "-".into(), |p| p.to_string())
            ),
        );
    }
    verdict(
        NetDecision::Dropped,
        selecting.iter().map(|p| p.id()).collect(),
        format!(
            "isolated for {} and no rule allows {} {}",
            f.direction.as_str().to_lowercase(),
            f.peer.describe(),
            f.port_text()
        ),
    )
}

fn rule_matches(r: &Rule, p: &NetPolicy, f: &Flow, namespaces: &NamespaceLabels) -> bool {
    rule_decides(r, p, f, namespaces) == Some(true)
}

/// Whether a rule matches a connection: `None` when only a named port the destination pod's
/// recorded ports cannot resolve stands between the rule and the connection.
fn rule_decides(r: &Rule, p: &NetPolicy, f: &Flow, namespaces: &NamespaceLabels) -> Option<bool> {
    let peers_ok = match &r.peers {
        None => true,
        Some(peers) => {
            peers.iter().any(|s| peer_matches(s, p, f, namespaces))
                || match &f.peer {
                    // A Service of endpoints no pod holds: the connection reached one of them,
                    // allowed for sure when the rule's ipBlocks hold each of them.
                    Peer::Service {
                        backends,
                        endpoints,
                        ..
                    } if backends.is_empty() && !endpoints.is_empty() => {
                        endpoints.iter().all(|e| {
                            e.parse::<IpAddr>().is_ok_and(|ip| {
                                peers
                                    .iter()
                                    .any(|s| matches!(s, PeerSelector::Block(b) if b.contains(ip)))
                            })
                        })
                    }
                    _ => false,
                }
        }
    };
    if !peers_ok {
        return Some(false);
    }
    if let (Some(ports), Some(port)) = (&r.ports, f.port) {
        let each: Vec<Option<bool>> = ports
            .iter()
            .map(|s| s.matches_with(&f.proto, port, &f.dest_ports))
            .collect();
        return if each.contains(&Some(true)) {
            Some(true)
        } else if each.contains(&None) {
            None
        } else {
            Some(false)
        };
    }
    let port_ok = match (&r.ports, f.port) {
        (None, _) => true,
        (Some(ports), Some(port)) => ports.iter().any(|s| s.matches(&f.proto, port)),
        // A connection whose port was not recorded matches only port-less selectors.
        (Some(ports), None) => ports.iter().any(|s| {
            s.port.is_none() && (s.protocol == "ANY" || s.protocol.eq_ignore_ascii_case(&f.proto))
        }),
    };
    Some(port_ok)
}

/// The pods a connection reaches: the pod, or the pods behind a Service.
fn pod_targets(peer: &Peer) -> Vec<(String, Vec<String>)> {
    match peer {
        Peer::Pod {
            workload, labels, ..
        } => vec![(workload.namespace.clone(), labels.clone())],
        // Endpoints no pod holds (the API servers): no pod selector matches them.
        Peer::Service {
            backends,
            endpoints,
            ..
        } if backends.is_empty() && !endpoints.is_empty() => Vec::new(),
        // Pods nobody knows: only a selector of every pod of its namespace matches them.
        Peer::Service {
            backends,
            namespace,
            ..
        } if backends.is_empty() => vec![(namespace.clone(), Vec::new())],
        Peer::Service { backends, .. } => backends
            .iter()
            .map(|(w, labels)| (w.namespace.clone(), labels.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

fn fqdn_matches(pattern: &str, is_pattern: bool, name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if !is_pattern {
        return pattern == name;
    }
    // `*` matches any run of DNS name characters, not dots (Cilium's matchPattern).
    fn m(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                m(&p[1..], n) || (n.first().is_some_and(|c| *c != b'.') && m(p, &n[1..]))
            }
            (Some(a), Some(b)) if a == b => m(&p[1..], &n[1..]),
            _ => false,
        }
    }
    pattern == "*" || m(pattern.as_bytes(), name.as_bytes())
}

fn peer_matches(s: &PeerSelector, p: &NetPolicy, f: &Flow, ns_labels: &NamespaceLabels) -> bool {
    match s {
        PeerSelector::Pods { namespaces, pods } => {
            let targets = pod_targets(&f.peer);
            !targets.is_empty()
                && targets.iter().all(|(ns, labels)| {
                    let ns_ok = match namespaces {
                        None => *ns == p.namespace,
                        Some(sel) => {
                            let mut labels = ns_labels.get(ns).cloned().unwrap_or_default();
                            labels.insert("kubernetes.io/metadata.name".into(), ns.clone());
                            sel.matches(&labels)
                        }
                    };
                    ns_ok
                        && pods
                            .as_ref()
                            .is_none_or(|sel| sel.matches(&label_map(labels.iter())))
                })
        }
        PeerSelector::Block(b) => {
            // A Service of endpoints no pod holds: the connection reached one of them, so a
            // block allows it when it holds them all.
            if let Peer::Service {
                backends,
                endpoints,
                ..
            } = &f.peer
            {
                if backends.is_empty() && !endpoints.is_empty() {
                    return endpoints
                        .iter()
                        .all(|e| e.parse::<IpAddr>().is_ok_and(|ip| b.contains(ip)));
                }
            }
            let addr = match &f.peer {
                Peer::Pod { addr, .. } | Peer::Node { addr, .. } | Peer::External { addr, .. } => {
                    addr
                }
                // A Service's cluster IP is rewritten to a pod's before policies apply.
                Peer::Service { .. } | Peer::Loopback => return false,
            };
            addr.parse::<IpAddr>().is_ok_and(|ip| b.contains(ip))
        }
        PeerSelector::Entity(e) => match (e.as_str(), &f.peer) {
            ("all", _) => true,
            ("world" | "world-ipv4" | "world-ipv6", Peer::External { addr, .. }) => {
                match (e.as_str(), addr.parse::<IpAddr>()) {
                    ("world-ipv4", Ok(ip)) => ip.is_ipv4(),
                    ("world-ipv6", Ok(ip)) => ip.is_ipv6(),
                    _ => true,
                }
            }
            ("cluster", Peer::Pod { .. } | Peer::Service { .. } | Peer::Node { .. }) => true,
            (
                "kube-apiserver",
                Peer::Service {
                    namespace,
                    name,
                    endpoints,
                    ..
                },
            ) => {
                !endpoints.is_empty()
                    && (namespace.as_str(), name.as_str()) == super::draft::API_SERVER_SERVICE
            }
            ("host", Peer::Node { node, .. }) => *node == f.node,
            ("remote-node", Peer::Node { node, .. }) => *node != f.node,
            _ => false,
        },
        PeerSelector::Fqdn {
            pattern,
            is_pattern,
        } => {
            f.direction == Direction::Egress
                && f.remote_name
                    .as_deref()
                    .is_some_and(|n| fqdn_matches(pattern, *is_pattern, n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdn_patterns_match_one_label_per_star() {
        assert!(fqdn_matches(
            "api.wordpress.org",
            false,
            "API.wordpress.org."
        ));
        assert!(fqdn_matches("*.wordpress.org", true, "api.wordpress.org"));
        assert!(!fqdn_matches("*.wordpress.org", true, "a.b.wordpress.org"));
        assert!(fqdn_matches("*", true, "a.b.c"));
        assert!(!fqdn_matches(
            "api.wordpress.org",
            false,
            "api.wordpress.org.evil"
        ));
    }
}
