//! Observed connections of pods, with their peers resolved: the evidence of network drafts and
//! what `simulate` replays through network policies.
//!
//! One parameterised `GROUP BY` over `events` (network rows of pods, `connect` and `accept`
//! over TCP, UDP or SCTP) per workload, pod, direction, protocol, port, remote address and name,
//! and hour: each group's peer is resolved at its first time ([`PeerIndex::resolve`]), so an
//! address that changed hands between hours resolves to each holder in turn.

use std::collections::BTreeMap;

use duckdb::params_from_iter;
use serde::Serialize;

use crate::error::{AnalyzerError, Result};
use crate::recommend::Scope;
use crate::store::Store;

use super::model::{label_map, Direction};
use super::peers::{Peer, PeerIndex, PeerWorkload};

/// One group of observed connections of one pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flow {
    /// The pod's workload (the side that recorded the connection).
    pub workload: PeerWorkload,
    /// The pod.
    pub pod: String,
    /// The node it ran on.
    pub node: String,
    /// The pod's labels (`key=value`).
    pub labels: Vec<String>,
    /// Whether the pod runs in its node's network (NetworkPolicy does not apply to it).
    pub host_network: bool,
    /// `Egress` for a `connect`, `Ingress` for an `accept`.
    pub direction: Direction,
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
    /// The server's port: the remote port of a connect, the local port of an accept; for a
    /// connect to a Service's cluster IP the pods table records, the Service port's target on
    /// its pods.
    pub port: Option<u16>,
    /// The other end's address, as recorded.
    pub remote_addr: String,
    /// The name it was reached by, when known.
    pub remote_name: Option<String>,
    /// Who that is.
    pub peer: Peer,
    /// The destination pod's declared container ports (`PROTO/PORT/NAME`, pods schema 1.1):
    /// the pod itself for ingress, the peer's pod (or a Service's pods) for egress; what a
    /// policy's named port resolves against. Empty when the pods table does not record them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dest_ports: Vec<String>,
    /// First and last time seen (ns).
    pub first_ns: i64,
    /// Last time seen (ns).
    pub last_ns: i64,
    /// Events.
    pub events: u64,
}

impl Flow {
    /// The pod's labels as a map.
    pub fn label_map(&self) -> BTreeMap<String, String> {
        label_map(&self.labels)
    }

    /// `proto/port` for tables.
    pub fn port_text(&self) -> String {
        match self.port {
            Some(p) => format!("{}/{p}", self.proto),
            None => self.proto.clone(),
        }
    }
}

/// The non-empty strings of a DuckDB list value.
pub(crate) fn strings(v: duckdb::types::Value) -> Vec<String> {
    use duckdb::types::Value;
    match v {
        Value::List(items) | Value::Array(items) => items
            .into_iter()
            .filter_map(|i| match i {
                Value::Text(s) if !s.is_empty() => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The observed connections of pods in `scope` (its workload part; hosts have no network
/// policy), with peers resolved through `index`.
pub fn flows(store: &Store, scope: &Scope, index: &PeerIndex) -> Result<Vec<Flow>> {
    let mut scope = scope.clone();
    scope.hosts = None;
    if scope.workloads.is_none() {
        return Ok(Vec::new());
    }
    let (where_sql, params) = scope.sql();
    let sql = format!(
        "SELECT namespace, coalesce(workload_kind, 'Pod'), coalesce(workload, pod, '(none)'),
                coalesce(pod, ''), node, arg_max(labels, ts_last),
                direction, proto,
                CASE WHEN direction = 'connect' THEN remote_port ELSE local_port END,
                remote_addr, remote_name,
                epoch_ns(min(ts_first)), epoch_ns(max(ts_last)), CAST(sum(count) AS UBIGINT)
         FROM events
         WHERE op = 'network' AND NOT host AND namespace IS NOT NULL
           AND direction IN ('connect', 'accept') AND proto IN ('tcp', 'udp', 'sctp')
           AND remote_addr IS NOT NULL AND ({where_sql})
         GROUP BY namespace, 2, 3, 4, node, direction, proto, 9, remote_addr, remote_name,
                  date_trunc('hour', ts_first)
         ORDER BY 1, 2, 3, 4, 7, 8, 9, 10, 12"
    );
    let mut stmt = store
        .conn()
        .prepare(&sql)
        .map_err(AnalyzerError::store("prepare the connections query"))?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            let labels = strings(r.get(5)?);
            Ok((
                PeerWorkload {
                    namespace: r.get(0)?,
                    kind: r.get(1)?,
                    name: r.get(2)?,
                },
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                labels,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, Option<u16>>(8)?,
                r.get::<_, String>(9)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, i64>(11)?,
                r.get::<_, i64>(12)?,
                r.get::<_, u64>(13)?,
            ))
        })
        .map_err(AnalyzerError::store("run the connections query"))?;
    let mut out = Vec::new();
    for row in rows {
        let (workload, pod, node, labels, dir, proto, port, addr, name, first, last, events) =
            row.map_err(AnalyzerError::store("read the connections query"))?;
        let direction = if dir == "connect" {
            Direction::Egress
        } else {
            Direction::Ingress
        };
        let mut peer = index.resolve(&addr, name.as_deref(), first);
        // A connection to a recorded Service's cluster IP reaches its pods on the Service
        // port's target, which is the port NetworkPolicy sees.
        let port = match (direction, port) {
            (Direction::Egress, Some(p)) => {
                match index.service_target_port(&addr, &proto, p, first) {
                    Some(target) => Some(target),
                    None => {
                        if let (Some(_), Peer::Service { how, .. }) =
                            (index.service_at(&addr, first), &mut peer)
                        {
                            how.push_str(&format!(
                            "; its port {p}/{proto} has no target the pods table resolves (not a Service port, or a named target no selected pod declares once): kept as {p}, which its pods may not listen on"
                        ));
                        }
                        Some(p)
                    }
                }
            }
            _ => port,
        };
        let dest_ports = match (&direction, &peer) {
            (Direction::Ingress, _) => index.ports_of_pod(&workload.namespace, &pod, first),
            (
                Direction::Egress,
                Peer::Pod {
                    workload: w,
                    pod: p,
                    ..
                },
            ) => index.ports_of_pod(&w.namespace, p, first),
            (
                Direction::Egress,
                Peer::Service {
                    backends,
                    endpoints,
                    namespace,
                    name,
                    ..
                },
            ) if backends.is_empty() && !endpoints.is_empty() => {
                index.endpoint_ports(namespace, name, first)
            }
            (Direction::Egress, Peer::Service { backends, .. }) => {
                let mut all: Vec<String> = backends
                    .iter()
                    .flat_map(|(w, _)| index.pods_of(w))
                    .filter(|p| p.holds_at(first))
                    .flat_map(|p| p.ports.iter().cloned())
                    .collect();
                all.sort();
                all.dedup();
                all
            }
            _ => Vec::new(),
        };
        let host_network = index
            .pods_of(&workload)
            .iter()
            .any(|p| p.pod == pod && p.host_network);
        out.push(Flow {
            workload,
            pod,
            node,
            labels,
            host_network,
            direction,
            proto,
            port,
            remote_addr: addr,
            remote_name: name,
            peer,
            dest_ports,
            first_ns: first,
            last_ns: last,
            events,
        });
    }
    Ok(out)
}
