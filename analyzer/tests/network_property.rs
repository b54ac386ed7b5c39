//! Property: a network draft never drops a connection it was drafted from, in either format.
//! Flows are generated over generated pods tables (workloads in several namespaces, replicas
//! with per-pod hash labels, a host-network workload, addresses reused over time), with peers
//! of every kind (pods, Services by DNS name, nodes, the pod's own node, outside addresses
//! with and without names, loopback), resolved by the real [`PeerIndex`]; the drafts are
//! rendered to YAML, parsed back and simulated against the same flows.

use std::collections::HashMap;
use std::path::Path;

use karmor_analyzer::network::draft::{draft_all, yaml, NetworkFormat};
use karmor_analyzer::network::model::Direction;
use karmor_analyzer::network::peers::{PeerIndex, PeerWorkload};
use karmor_analyzer::network::simulate::simulate;
use karmor_analyzer::network::{parse_policies, Flow, NetDecision};
use karmor_contract::pods::PodAddress;
use proptest::prelude::*;

const NAMESPACES: [&str; 3] = ["shop", "kube-system", "data"];
const NAMES: [&str; 5] = ["web", "db", "cache", "dns", "api"];

#[derive(Debug, Clone)]
struct World {
    pods: Vec<PodAddress>,
    flows: Vec<(usize, Direction, PeerPick, u8, Option<u16>)>,
}

#[derive(Debug, Clone)]
enum PeerPick {
    Pod(usize),
    Service(usize),
    Node(u8),
    OwnNode,
    External(u8, Option<u8>),
    Loopback,
}

fn pod_strategy() -> impl Strategy<Value = (usize, usize, u8, bool, u8, bool)> {
    // (namespace, name, replica, tier label, node, host network)
    (
        0..NAMESPACES.len(),
        0..NAMES.len(),
        0u8..3,
        any::<bool>(),
        1u8..3,
        prop::bool::weighted(0.1),
    )
}

fn peer_strategy(n: usize) -> impl Strategy<Value = PeerPick> {
    prop_oneof![
        4 => (0..n).prop_map(PeerPick::Pod),
        2 => (0..n).prop_map(PeerPick::Service),
        1 => (1u8..3).prop_map(PeerPick::Node),
        1 => Just(PeerPick::OwnNode),
        2 => (0u8..8, prop::option::of(0u8..3)).prop_map(|(a, n)| PeerPick::External(a, n)),
        1 => Just(PeerPick::Loopback),
    ]
}

fn world() -> impl Strategy<Value = World> {
    prop::collection::vec(pod_strategy(), 1..10).prop_flat_map(|specs| {
        let mut pods: Vec<PodAddress> = Vec::new();
        for (i, (ns, name, replica, tier, node, host)) in specs.iter().enumerate() {
            let workload = format!("{}{}", NAMES[*name], if *host { "-host" } else { "" });
            let mut labels = vec![format!("app={workload}"), format!("pod-template-hash=h{i}")];
            if *tier {
                labels.push("tier=back".into());
            }
            labels.sort();
            pods.push(PodAddress {
                cluster: None,
                node: format!("n{node}"),
                namespace: NAMESPACES[*ns].into(),
                pod: format!("{workload}-{replica}-{i}"),
                pod_uid: None,
                workload_kind: Some(if *host { "DaemonSet" } else { "Deployment" }.into()),
                workload: Some(workload),
                labels,
                host_network: *host,
                ip: if *host {
                    format!("192.168.0.{node}")
                } else {
                    // Replica 2 reuses replica 0's address, later.
                    format!(
                        "10.1.{}.{}",
                        i % 3,
                        if *replica == 2 { 0 } else { *replica }
                    )
                },
                valid_from: i64::from(*replica) * 1_000,
                valid_to: if *replica == 0 { Some(999) } else { None },
                kind: None,
                ports: Vec::new(),
            });
        }
        let n = pods.len();
        let flows = prop::collection::vec(
            (
                0..n,
                prop_oneof![Just(Direction::Ingress), Just(Direction::Egress)],
                peer_strategy(n),
                0u8..3,
                prop::option::weighted(0.9, 1u16..65535),
            ),
            1..25,
        );
        (Just(pods), flows).prop_map(|(pods, flows)| World { pods, flows })
    })
}

fn build(w: &World) -> (PeerIndex, Vec<Flow>) {
    let mut nodes = HashMap::new();
    nodes.insert("10.244.1.1".to_string(), "n1".to_string());
    nodes.insert("10.244.2.1".to_string(), "n2".to_string());
    let index = PeerIndex::new(w.pods.clone(), nodes);
    let mut flows = Vec::new();
    for (src, dir, pick, proto, port) in &w.flows {
        let me = &w.pods[*src];
        let ts = me.valid_from;
        let mut dir = *dir;
        let (addr, name) = match pick {
            PeerPick::Pod(i) => (w.pods[*i].ip.clone(), None),
            PeerPick::Service(i) => {
                dir = Direction::Egress;
                let p = &w.pods[*i];
                (
                    "10.96.0.10".to_string(),
                    Some(format!(
                        "{}.{}.svc.cluster.local",
                        p.workload.clone().unwrap_or_default(),
                        p.namespace
                    )),
                )
            }
            PeerPick::Node(n) => (format!("10.244.{n}.1"), None),
            PeerPick::OwnNode => (
                format!("10.244.{}.1", me.node.trim_start_matches('n')),
                None,
            ),
            PeerPick::External(a, n) => (
                format!("203.0.113.{a}"),
                n.map(|n| format!("host{n}.example.com")),
            ),
            PeerPick::Loopback => ("127.0.0.1".to_string(), None),
        };
        let peer = index.resolve(&addr, name.as_deref(), ts);
        flows.push(Flow {
            workload: PeerWorkload {
                namespace: me.namespace.clone(),
                kind: me.workload_kind.clone().unwrap_or_default(),
                name: me.workload.clone().unwrap_or_default(),
            },
            pod: me.pod.clone(),
            node: me.node.clone(),
            labels: me.labels.clone(),
            host_network: me.host_network,
            direction: dir,
            proto: ["tcp", "udp", "sctp"][*proto as usize].into(),
            port: *port,
            remote_addr: addr,
            remote_name: name,
            peer,
            dest_ports: Vec::new(),
            first_ns: ts,
            last_ns: ts,
            events: 1,
        });
    }
    (index, flows)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_draft_never_drops_a_flow_it_was_drafted_from(w in world()) {
        let (index, flows) = build(&w);
        let drafts = draft_all(&flows, &index);
        for format in [NetworkFormat::Kubernetes, NetworkFormat::Cilium] {
            let mut policies = Vec::new();
            for d in &drafts {
                if let Some(text) = yaml(d, format) {
                    let parsed = parse_policies(&text, Path::new("draft.yaml"));
                    prop_assert!(parsed.is_ok(), "{parsed:?}\n{text}");
                    policies.extend(parsed.unwrap_or_default());
                }
            }
            for v in simulate(&flows, &policies) {
                prop_assert!(
                    v.decision != NetDecision::Dropped,
                    "{format:?} dropped {:#?}\nbecause {}",
                    v.flow,
                    v.reason
                );
            }
        }
    }
}
