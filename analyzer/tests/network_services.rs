//! Connections to Service cluster IPs (pods schema 1.1's rows of kind `Service`, from the
//! collectors' Service watch), on a real bundle in a real store: DNS to 10.96.0.10 and a call to
//! another Service's cluster IP, neither reached by name, resolve to the Services and, through
//! their real selectors, to their pods; the drafts allow those pods by their own labels on the
//! pods' ports (a named target port through their container ports) instead of /32s of the
//! cluster IPs, and simulate clean on the connections they came from. Without the Service rows
//! the same connections are outside /32s.

use std::path::Path;

use karmor_analyzer::network::draft::{yaml, DraftPeer, NetworkDraft, NetworkFormat};
use karmor_analyzer::network::{
    parse_policies, recommend_network, simulate_network, NetDecision, Peer, PeerIndex,
};
use karmor_analyzer::recommend::{Scope, WorkloadSelect};
use karmor_analyzer::Store;
use karmor_contract::bundle::{write_bundle, write_pods, BundleOptions};
use karmor_contract::pods::{PodAddress, KIND_ENDPOINT, KIND_SERVICE};
use karmor_contract::schema::{Event, Op};

/// 2026-11-20T08:00:00Z in ns.
const T0: i64 = 1_795_161_600_000_000_000;
const MIN: i64 = 60_000_000_000;

fn pod(ns: &str, name: &str, node: &str, wl: &str, labels: &[&str], ip: &str) -> PodAddress {
    PodAddress {
        node: node.into(),
        namespace: ns.into(),
        pod: name.into(),
        pod_uid: Some(format!("uid-{name}")),
        workload_kind: Some("Deployment".into()),
        workload: Some(wl.into()),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        ip: ip.into(),
        valid_from: T0 - 60 * MIN,
        ..PodAddress::default()
    }
}

fn service(ns: &str, name: &str, ip: &str, selector: &[&str], ports: &[&str]) -> PodAddress {
    PodAddress {
        kind: Some(KIND_SERVICE.into()),
        workload_kind: Some(KIND_SERVICE.into()),
        workload: Some(name.into()),
        ports: ports.iter().map(|p| p.to_string()).collect(),
        ..pod(ns, name, "node-a", name, selector, ip)
    }
}

/// The pods table: the client, CoreDNS on another node, the api pods, and the two Services.
fn table(with_services: bool) -> Vec<PodAddress> {
    let mut rows = vec![
        pod(
            "shop",
            "web-1",
            "node-a",
            "web",
            &["app=web", "pod-template-hash=a1"],
            "10.244.1.5",
        ),
        PodAddress {
            ports: vec!["TCP/53/dns-tcp".into(), "UDP/53/dns".into()],
            ..pod(
                "kube-system",
                "coredns-1",
                "node-b",
                "coredns",
                &["k8s-app=kube-dns", "pod-template-hash=c1"],
                "10.244.2.3",
            )
        },
        PodAddress {
            ports: vec!["TCP/8080/http".into()],
            ..pod(
                "shop",
                "api-1",
                "node-b",
                "api",
                &["app=api", "tier=back"],
                "10.244.2.8",
            )
        },
        // Another pod of the namespace that the api Service does not select.
        pod(
            "shop",
            "cache-1",
            "node-b",
            "cache",
            &["app=cache"],
            "10.244.2.9",
        ),
    ];
    if with_services {
        rows.push(service(
            "kube-system",
            "kube-dns",
            "10.96.0.10",
            &["k8s-app=kube-dns"],
            &["TCP/53->53", "UDP/53->53"],
        ));
        rows.push(service(
            "shop",
            "api",
            "10.96.5.5",
            &["app=api"],
            &["TCP/80->http"],
        ));
        // A named target no selected pod declares.
        rows.push(service(
            "shop",
            "cache",
            "10.96.6.6",
            &["app=cache"],
            &["TCP/6379->redis"],
        ));
    }
    rows
}

fn connect(proto: &str, addr: &str, port: u16, at: i64) -> Event {
    Event {
        ts_first: at,
        ts_last: at + MIN,
        count: 12,
        node: "node-a".into(),
        namespace: Some("shop".into()),
        pod: Some("web-1".into()),
        container: Some("web".into()),
        workload_kind: Some("Deployment".into()),
        workload: Some("web".into()),
        labels: vec!["app=web".into(), "pod-template-hash=a1".into()],
        process: Some("/usr/bin/web".into()),
        op: Op::Network,
        proto: Some(proto.into()),
        direction: Some("connect".into()),
        local_addr: Some("10.244.1.5".into()),
        remote_addr: Some(addr.into()),
        remote_port: Some(port),
        result: Some("Passed".into()),
        ..Event::default()
    }
}

fn store(dir: &Path, with_services: bool) -> Store {
    let mut events = vec![
        connect("udp", "10.96.0.10", 53, T0),
        connect("tcp", "10.96.5.5", 80, T0 + 5 * MIN),
    ];
    if with_services {
        events.push(connect("tcp", "10.96.6.6", 6379, T0 + 7 * MIN));
    }
    let opts = BundleOptions {
        producer: "test".into(),
        ..BundleOptions::default()
    };
    write_bundle(dir, events, &opts).unwrap();
    write_pods(dir, table(with_services), "test").unwrap();
    let s = Store::in_memory().unwrap();
    let r = s.merge_bundle(dir).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    s
}

fn scope() -> Scope {
    Scope {
        workloads: Some(WorkloadSelect {
            namespace: Some("shop".into()),
            ..WorkloadSelect::default()
        }),
        ..Scope::default()
    }
}

/// A draft's egress rules as (peer, `PROTO/PORT` strings; port 0 for any).
fn egress_of(draft: &NetworkDraft) -> Vec<(DraftPeer, Vec<String>)> {
    draft
        .egress
        .iter()
        .map(|r| {
            let ports = r
                .ports
                .iter()
                .map(|(p, n)| format!("{p}/{}", n.unwrap_or(0)))
                .collect();
            (r.peer.clone(), ports)
        })
        .collect()
}

fn labels(kv: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn connections_to_cluster_ips_reach_the_services_pods_by_their_selectors() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), true);
    let index = PeerIndex::load(&s).unwrap();
    match index.resolve("10.96.0.10", None, T0) {
        Peer::Service {
            name,
            namespace,
            backends,
            how,
            ..
        } => {
            assert_eq!(
                (name.as_str(), namespace.as_str()),
                ("kube-dns", "kube-system")
            );
            let names: Vec<&str> = backends.iter().map(|(w, _)| w.name.as_str()).collect();
            assert_eq!(names, ["coredns"], "{how}");
            assert!(how.contains("selector k8s-app=kube-dns"), "{how}");
        }
        other => panic!("10.96.0.10 is {other:?}"),
    }
    // The named target port resolves through the selected pods' container ports.
    assert_eq!(
        index.service_target_port("10.96.5.5", "tcp", 80, T0),
        Some(8080)
    );
    assert_eq!(
        index.service_target_port("10.96.0.10", "udp", 53, T0),
        Some(53)
    );
    assert_eq!(index.service_target_port("10.96.5.5", "tcp", 81, T0), None);
    // The flows carry the destination pods' container ports, for policies' named ports.
    let flows = karmor_analyzer::network::flows::flows(&s, &scope(), &index).unwrap();
    let to_api = flows.iter().find(|f| f.remote_addr == "10.96.5.5").unwrap();
    assert_eq!(
        (to_api.port, to_api.dest_ports.clone()),
        (Some(8080), vec!["TCP/8080/http".to_string()])
    );
    let to_dns = flows
        .iter()
        .find(|f| f.remote_addr == "10.96.0.10")
        .unwrap();
    assert_eq!(to_dns.dest_ports, ["TCP/53/dns-tcp", "UDP/53/dns"]);
    // A named target nothing resolves: the port is kept, and the draft says so.
    let to_cache = flows.iter().find(|f| f.remote_addr == "10.96.6.6").unwrap();
    assert_eq!(to_cache.port, Some(6379));
    match &to_cache.peer {
        Peer::Service { how, .. } => assert!(how.contains("kept as 6379"), "{how}"),
        other => panic!("{other:?}"),
    }

    let rec = recommend_network(&s, &scope()).unwrap();
    let web = rec
        .drafts
        .iter()
        .find(|d| d.workload.name == "web")
        .expect("a draft for web");
    let egress = egress_of(web);
    assert_eq!(
        egress,
        vec![
            (
                DraftPeer::Pods {
                    namespace: None,
                    labels: labels(&[("app", "api"), ("tier", "back")]),
                },
                vec!["TCP/8080".to_string()],
            ),
            (
                DraftPeer::Pods {
                    namespace: None,
                    labels: labels(&[("app", "cache")]),
                },
                vec!["TCP/6379".to_string()],
            ),
            (
                DraftPeer::Pods {
                    namespace: Some("kube-system".into()),
                    labels: labels(&[("k8s-app", "kube-dns")]),
                },
                vec!["UDP/53".to_string()],
            ),
        ],
        "{:#?}",
        web.egress
    );
    let text = yaml(web, NetworkFormat::Kubernetes).unwrap();
    assert!(
        !text.contains("ipBlock"),
        "no cluster IP as an ipBlock:\n{text}"
    );
    assert!(
        text.contains("selector k8s-app=kube-dns"),
        "explained:\n{text}"
    );

    // The draft allows every connection it came from (their ports are the pods' ports).
    let policies = parse_policies(&text, Path::new("web.yaml")).unwrap();
    let verdicts = simulate_network(&s, &scope(), &policies).unwrap();
    assert!(
        text.contains("kept as 6379, which its pods may not listen on"),
        "{text}"
    );
    assert_eq!(verdicts.len(), 3);
    assert!(
        verdicts.iter().all(|v| v.decision == NetDecision::Allowed),
        "{verdicts:#?}"
    );
}

#[test]
fn without_the_service_rows_the_cluster_ips_are_outside_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), false);
    let index = PeerIndex::load(&s).unwrap();
    assert!(matches!(
        index.resolve("10.96.0.10", None, T0),
        Peer::External { .. }
    ));
    let rec = recommend_network(&s, &scope()).unwrap();
    let web = rec
        .drafts
        .iter()
        .find(|d| d.workload.name == "web")
        .unwrap();
    let text = yaml(web, NetworkFormat::Kubernetes).unwrap();
    assert!(text.contains("10.96.0.10/32"), "{text}");
    assert!(text.contains("10.96.5.5/32"), "{text}");
}

/// An endpoint no pod holds (pods schema 1.2, kind `Endpoint`) of Service `name` of `ns`.
fn endpoint(ns: &str, name: &str, ip: &str, ports: &[&str]) -> PodAddress {
    PodAddress {
        kind: Some(KIND_ENDPOINT.into()),
        workload_kind: Some(KIND_SERVICE.into()),
        pod_uid: Some(format!("uid-slice-{name}")),
        ports: ports.iter().map(|p| p.to_string()).collect(),
        ..pod(ns, name, "node-a", name, &[], ip)
    }
}

#[test]
fn a_service_without_a_selector_reaches_its_endpoints_the_kubernetes_service_the_api_servers() {
    let dir = tempfile::tempdir().unwrap();
    let events = vec![
        connect("tcp", "10.96.0.1", 443, T0),
        connect("tcp", "10.96.9.9", 5432, T0 + MIN),
    ];
    let opts = BundleOptions {
        producer: "test".into(),
        ..BundleOptions::default()
    };
    write_bundle(dir.path(), events, &opts).unwrap();
    let mut rows = table(false);
    rows.extend([
        service(
            "default",
            "kubernetes",
            "10.96.0.1",
            &[],
            &["TCP/443->6443"],
        ),
        endpoint("default", "kubernetes", "192.168.0.11", &["TCP/6443/https"]),
        endpoint("default", "kubernetes", "192.168.0.12", &["TCP/6443/https"]),
        // A Service with hand-made endpoints (a database outside the cluster).
        service("shop", "legacy-db", "10.96.9.9", &[], &["TCP/5432->5432"]),
        endpoint("shop", "legacy-db", "10.20.0.5", &["TCP/5432"]),
    ]);
    write_pods(dir.path(), rows, "test").unwrap();
    let s = Store::in_memory().unwrap();
    assert!(s.merge_bundle(dir.path()).unwrap().problems.is_empty());

    let index = PeerIndex::load(&s).unwrap();
    match index.resolve("10.96.0.1", None, T0) {
        Peer::Service {
            name,
            backends,
            endpoints,
            how,
            ..
        } => {
            assert_eq!(name, "kubernetes");
            assert!(backends.is_empty());
            assert_eq!(endpoints, ["192.168.0.11", "192.168.0.12"]);
            assert!(how.contains("no selector"), "{how}");
        }
        other => panic!("10.96.0.1 is {other:?}"),
    }
    // The endpoints are no pods: their addresses resolve to nothing of the pods table.
    assert!(matches!(
        index.resolve("192.168.0.11", None, T0),
        Peer::External { .. }
    ));
    assert_eq!(
        index.endpoint_ports("default", "kubernetes", T0),
        ["TCP/6443/https"]
    );

    let rec = recommend_network(&s, &scope()).unwrap();
    let web = rec
        .drafts
        .iter()
        .find(|d| d.workload.name == "web")
        .expect("a draft for web");
    let egress = egress_of(web);
    assert_eq!(
        egress,
        vec![
            (
                DraftPeer::Endpoints {
                    service: "default/kubernetes".into(),
                    addrs: vec!["192.168.0.11".into(), "192.168.0.12".into()],
                    api_server: true,
                },
                vec!["TCP/6443".to_string()],
            ),
            (
                DraftPeer::Endpoints {
                    service: "shop/legacy-db".into(),
                    addrs: vec!["10.20.0.5".into()],
                    api_server: false,
                },
                vec!["TCP/5432".to_string()],
            ),
        ],
        "{:#?}",
        web.egress
    );
    assert!(
        web.warnings.iter().all(|w| !w.contains("whole namespace")),
        "{:?}",
        web.warnings
    );

    // NetworkPolicy: annotated ipBlocks of the endpoints; Cilium: the kube-apiserver entity.
    let k8s = yaml(web, NetworkFormat::Kubernetes).unwrap();
    for cidr in ["192.168.0.11/32", "192.168.0.12/32", "10.20.0.5/32"] {
        assert!(k8s.contains(&format!("cidr: {cidr}")), "{k8s}");
    }
    assert!(
        k8s.contains(r#"\"192.168.0.11/32\":[\"endpoint of service default/kubernetes\"]"#),
        "{k8s}"
    );
    assert!(!k8s.contains("10.96.0.1/32"), "{k8s}");
    let cilium = yaml(web, NetworkFormat::Cilium).unwrap();
    assert!(
        cilium.contains("  - toEntities:\n    - kube-apiserver\n"),
        "{cilium}"
    );
    assert!(
        cilium.contains("  - toCIDR:\n    - 10.20.0.5/32\n"),
        "{cilium}"
    );
    // (the API servers' addresses only in the comments and the peer-names annotation)
    assert!(!cilium.contains("- 192.168.0.11/32"), "{cilium}");

    // Both simulate clean on the connections they came from.
    for text in [&k8s, &cilium] {
        let policies = parse_policies(text, Path::new("web.yaml")).unwrap();
        let verdicts = simulate_network(&s, &scope(), &policies).unwrap();
        assert_eq!(verdicts.len(), 2);
        assert!(
            verdicts.iter().all(|v| v.decision == NetDecision::Allowed),
            "{text}\n{verdicts:#?}"
        );
    }
    // A block that holds one API server only does not allow a connection that may have
    // reached the other; a pod selector of the whole namespace does not match endpoints.
    let partial = parse_policies(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 192.168.0.11/32}}, {namespaceSelector: {}}]\n",
        Path::new("p.yaml"),
    )
    .unwrap();
    let verdicts = simulate_network(&s, &scope(), &partial).unwrap();
    assert!(
        verdicts.iter().all(|v| v.decision == NetDecision::Dropped),
        "{verdicts:#?}"
    );
}
