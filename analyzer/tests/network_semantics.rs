//! NetworkPolicy semantics, rule by rule, on the examples of the Kubernetes documentation
//! (concepts/services-networking/network-policies), and CiliumNetworkPolicy's equivalents.
//! Each test replays hand-made connections through the documented policy and checks the
//! outcome the documentation states.

use std::path::Path;

use karmor_analyzer::network::model::Direction;
use karmor_analyzer::network::peers::PeerWorkload;
use karmor_analyzer::network::simulate::{simulate_with, NamespaceLabels};
use karmor_analyzer::network::{parse_policies, Flow, NetDecision, NetPolicy, Peer};

fn policies(yaml: &str) -> Vec<NetPolicy> {
    parse_policies(yaml, Path::new("doc.yaml")).unwrap()
}

/// A pod of `ns` labelled `labels`, on node n1.
fn at(ns: &str, labels: &[&str]) -> Flow {
    Flow {
        workload: PeerWorkload {
            namespace: ns.into(),
            kind: "Deployment".into(),
            name: "w".into(),
        },
        pod: "w-1".into(),
        node: "n1".into(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        host_network: false,
        direction: Direction::Ingress,
        proto: "tcp".into(),
        port: Some(6379),
        remote_addr: "0.0.0.0".into(),
        remote_name: None,
        peer: Peer::Loopback,
        dest_ports: Vec::new(),
        first_ns: 0,
        last_ns: 0,
        events: 1,
    }
}

fn pod(ns: &str, labels: &[&str], addr: &str) -> Peer {
    Peer::Pod {
        workload: PeerWorkload {
            namespace: ns.into(),
            kind: "Deployment".into(),
            name: "peer".into(),
        },
        pod: "peer-1".into(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        addr: addr.into(),
    }
}

fn ext(addr: &str) -> Peer {
    Peer::External {
        addr: addr.into(),
        names: Vec::new(),
    }
}

fn conn(mut f: Flow, d: Direction, peer: Peer, proto: &str, port: u16) -> Flow {
    f.direction = d;
    f.remote_addr = match &peer {
        Peer::Pod { addr, .. } | Peer::External { addr, .. } | Peer::Node { addr, .. } => {
            addr.clone()
        }
        _ => "10.96.0.1".into(),
    };
    f.peer = peer;
    f.proto = proto.into();
    f.port = Some(port);
    f
}

fn decide(p: &[NetPolicy], f: Flow, ns: &NamespaceLabels) -> NetDecision {
    simulate_with(&[f], p, ns)[0].decision
}

fn myproject() -> NamespaceLabels {
    let mut ns = NamespaceLabels::new();
    ns.entry("myproject".into())
        .or_default()
        .insert("project".into(), "myproject".into());
    ns
}

/// The documentation's `test-network-policy`.
const TEST_NETWORK_POLICY: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 5978
"#;

#[test]
fn test_network_policy_isolates_role_db_and_allows_its_three_sources_on_6379() {
    use Direction::*;
    use NetDecision::*;
    let p = policies(TEST_NETWORK_POLICY);
    let ns = myproject();
    let db = at("default", &["role=db"]);
    // Ingress: the three peers of the one rule, each on TCP 6379.
    assert_eq!(
        decide(
            &p,
            conn(db.clone(), Ingress, ext("172.17.0.9"), "tcp", 6379),
            &ns
        ),
        Allowed
    );
    assert_eq!(
        decide(
            &p,
            conn(db.clone(), Ingress, ext("172.17.1.9"), "tcp", 6379),
            &ns
        ),
        Dropped,
        "except"
    );
    assert_eq!(
        decide(
            &p,
            conn(
                db.clone(),
                Ingress,
                pod("myproject", &["any=thing"], "10.1.0.4"),
                "tcp",
                6379
            ),
            &ns
        ),
        Allowed,
        "any pod of a namespace labelled project=myproject"
    );
    assert_eq!(
        decide(
            &p,
            conn(
                db.clone(),
                Ingress,
                pod("default", &["role=frontend"], "10.1.0.5"),
                "tcp",
                6379
            ),
            &ns
        ),
        Allowed,
        "pods labelled role=frontend in the policy's namespace"
    );
    assert_eq!(
        decide(
            &p,
            conn(
                db.clone(),
                Ingress,
                pod("other", &["role=frontend"], "10.1.0.6"),
                "tcp",
                6379
            ),
            &ns
        ),
        Dropped,
        "a podSelector alone selects in the policy's own namespace only"
    );
    assert_eq!(
        decide(
            &p,
            conn(db.clone(), Ingress, ext("172.17.0.9"), "tcp", 6380),
            &ns
        ),
        Dropped,
        "port"
    );
    assert_eq!(
        decide(
            &p,
            conn(db.clone(), Ingress, ext("172.17.0.9"), "udp", 6379),
            &ns
        ),
        Dropped,
        "protocol"
    );
    // Egress: 10.0.0.0/24 on TCP 5978 only.
    assert_eq!(
        decide(
            &p,
            conn(db.clone(), Egress, ext("10.0.0.7"), "tcp", 5978),
            &ns
        ),
        Allowed
    );
    assert_eq!(
        decide(
            &p,
            conn(db.clone(), Egress, ext("10.0.1.7"), "tcp", 5978),
            &ns
        ),
        Dropped
    );
    assert_eq!(
        decide(
            &p,
            conn(db.clone(), Egress, ext("10.0.0.7"), "tcp", 80),
            &ns
        ),
        Dropped
    );
    // Pods it does not select, and other namespaces, are not isolated.
    let web = at("default", &["role=web"]);
    assert_eq!(
        decide(&p, conn(web, Ingress, ext("8.8.8.8"), "tcp", 1), &ns),
        NotIsolated
    );
    let elsewhere = at("other", &["role=db"]);
    assert_eq!(
        decide(&p, conn(elsewhere, Egress, ext("8.8.8.8"), "tcp", 1), &ns),
        NotIsolated
    );
    // The deciding policy is named.
    let v = simulate_with(&[conn(db, Egress, ext("10.0.0.7"), "tcp", 5978)], &p, &ns);
    assert_eq!(v[0].policies, ["default/test-network-policy"]);
}

#[test]
fn default_deny_and_allow_all_in_each_direction() {
    use Direction::*;
    use NetDecision::*;
    let ns = NamespaceLabels::new();
    let any = at("default", &["app=x"]);
    let deny_ingress = policies(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny-ingress}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n",
    );
    assert_eq!(
        decide(
            &deny_ingress,
            conn(any.clone(), Ingress, ext("1.2.3.4"), "tcp", 80),
            &ns
        ),
        Dropped
    );
    assert_eq!(
        decide(
            &deny_ingress,
            conn(any.clone(), Egress, ext("1.2.3.4"), "tcp", 80),
            &ns
        ),
        NotIsolated,
        "egress is not isolated by an Ingress-only policy"
    );
    let allow_ingress = policies(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-all-ingress}\nspec:\n  podSelector: {}\n  ingress:\n  - {}\n  policyTypes: [Ingress]\n",
    );
    let both: Vec<NetPolicy> = deny_ingress.iter().chain(&allow_ingress).cloned().collect();
    assert_eq!(
        decide(
            &both,
            conn(any.clone(), Ingress, ext("1.2.3.4"), "tcp", 80),
            &ns
        ),
        Allowed,
        "policies are additive: one allow wins over a default deny"
    );
    let deny_egress = policies(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny-egress}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n",
    );
    assert_eq!(
        decide(
            &deny_egress,
            conn(any.clone(), Egress, ext("1.2.3.4"), "udp", 53),
            &ns
        ),
        Dropped
    );
    assert_eq!(
        decide(
            &deny_egress,
            conn(any.clone(), Ingress, ext("1.2.3.4"), "tcp", 80),
            &ns
        ),
        NotIsolated
    );
    let allow_egress = policies(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-all-egress}\nspec:\n  podSelector: {}\n  egress:\n  - {}\n  policyTypes: [Egress]\n",
    );
    assert_eq!(
        decide(
            &allow_egress,
            conn(any.clone(), Egress, ext("1.2.3.4"), "udp", 53),
            &ns
        ),
        Allowed
    );
    let deny_all = policies(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny-all}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n",
    );
    assert_eq!(
        decide(
            &deny_all,
            conn(any.clone(), Ingress, ext("1.2.3.4"), "tcp", 80),
            &ns
        ),
        Dropped
    );
    assert_eq!(
        decide(
            &deny_all,
            conn(any.clone(), Egress, ext("1.2.3.4"), "tcp", 80),
            &ns
        ),
        Dropped
    );
    // policyTypes left out: Ingress, plus Egress because there is an egress section.
    let implied = policies(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: implied}\nspec:\n  podSelector: {}\n  egress:\n  - to: [{ipBlock: {cidr: 1.2.3.0/24}}]\n",
    );
    assert_eq!(
        decide(
            &implied,
            conn(any.clone(), Ingress, ext("1.2.3.4"), "tcp", 80),
            &ns
        ),
        Dropped
    );
    assert_eq!(
        decide(
            &implied,
            conn(any.clone(), Egress, ext("1.2.3.4"), "tcp", 80),
            &ns
        ),
        Allowed
    );
    assert_eq!(
        decide(
            &implied,
            conn(any.clone(), Egress, ext("1.2.4.4"), "tcp", 80),
            &ns
        ),
        Dropped
    );
    // Never filtered: loopback, the pod's own node, host-network pods.
    let mut own_node = conn(
        any.clone(),
        Ingress,
        Peer::Node {
            node: "n1".into(),
            addr: "10.244.1.1".into(),
            host_network_pods: Vec::new(),
        },
        "tcp",
        80,
    );
    assert_eq!(decide(&deny_all, own_node.clone(), &ns), Unaffected);
    own_node.peer = Peer::Node {
        node: "n2".into(),
        addr: "10.244.2.1".into(),
        host_network_pods: Vec::new(),
    };
    assert_eq!(
        decide(&deny_all, own_node, &ns),
        Dropped,
        "another node is filtered"
    );
    let mut loopback = conn(any.clone(), Egress, ext("1.1.1.1"), "tcp", 80);
    loopback.peer = Peer::Loopback;
    assert_eq!(decide(&deny_all, loopback, &ns), Unaffected);
    let mut host = conn(any, Egress, ext("1.1.1.1"), "tcp", 80);
    host.host_network = true;
    assert_eq!(decide(&deny_all, host, &ns), Unaffected);
}

#[test]
fn a_range_of_ports_with_end_port() {
    use Direction::*;
    use NetDecision::*;
    let p = policies(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: multi-port-egress
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Egress
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 32000
      endPort: 32768
"#,
    );
    let ns = NamespaceLabels::new();
    let db = at("default", &["role=db"]);
    for (port, want) in [
        (31999, Dropped),
        (32000, Allowed),
        (32500, Allowed),
        (32768, Allowed),
        (32769, Dropped),
    ] {
        assert_eq!(
            decide(
                &p,
                conn(db.clone(), Egress, ext("10.0.0.1"), "tcp", port),
                &ns
            ),
            want,
            "{port}"
        );
    }
}

#[test]
fn namespace_and_pod_selector_in_one_peer_is_an_and_in_two_peers_an_or() {
    use Direction::*;
    use NetDecision::*;
    let mut ns = NamespaceLabels::new();
    ns.entry("alice-ns".into())
        .or_default()
        .insert("user".into(), "alice".into());
    let and = policies(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: and, namespace: default}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels: {user: alice}\n      podSelector:\n        matchLabels: {role: client}\n",
    );
    let or = policies(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: or, namespace: default}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels: {user: alice}\n    - podSelector:\n        matchLabels: {role: client}\n",
    );
    let me = at("default", &["app=x"]);
    let alice_client = pod("alice-ns", &["role=client"], "10.1.0.1");
    let alice_other = pod("alice-ns", &["role=other"], "10.1.0.2");
    let local_client = pod("default", &["role=client"], "10.1.0.3");
    let far_client = pod("bob-ns", &["role=client"], "10.1.0.4");
    let c = |p| conn(me.clone(), Ingress, p, "tcp", 6379);
    assert_eq!(decide(&and, c(alice_client.clone()), &ns), Allowed);
    assert_eq!(decide(&and, c(alice_other.clone()), &ns), Dropped);
    assert_eq!(decide(&and, c(local_client.clone()), &ns), Dropped);
    assert_eq!(decide(&or, c(alice_client), &ns), Allowed);
    assert_eq!(decide(&or, c(alice_other), &ns), Allowed);
    assert_eq!(decide(&or, c(local_client), &ns), Allowed);
    assert_eq!(decide(&or, c(far_client), &ns), Dropped);
}

#[test]
fn a_namespace_by_name_and_match_expressions() {
    use Direction::*;
    use NetDecision::*;
    let p = policies(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: by-name, namespace: default}
spec:
  podSelector:
    matchExpressions:
    - {key: tier, operator: In, values: [db, cache]}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchExpressions:
        - {key: k8s-app, operator: In, values: [kube-dns]}
    ports:
    - {protocol: UDP, port: 53}
"#,
    );
    let ns = NamespaceLabels::new();
    let db = at("default", &["tier=db"]);
    let dns = pod("kube-system", &["k8s-app=kube-dns"], "10.1.0.2");
    assert_eq!(
        decide(&p, conn(db.clone(), Egress, dns.clone(), "udp", 53), &ns),
        Allowed
    );
    assert_eq!(
        decide(&p, conn(db.clone(), Egress, dns, "tcp", 53), &ns),
        Dropped
    );
    assert_eq!(
        decide(
            &p,
            conn(
                db,
                Egress,
                pod("kube-system", &["k8s-app=other"], "10.1.0.3"),
                "udp",
                53
            ),
            &ns
        ),
        Dropped
    );
    let web = at("default", &["tier=web"]);
    assert_eq!(
        decide(&p, conn(web, Egress, ext("1.1.1.1"), "udp", 53), &ns),
        NotIsolated
    );
}

#[test]
fn a_service_passes_when_every_pod_behind_it_would() {
    use Direction::*;
    use NetDecision::*;
    let p = policies(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: to-db, namespace: default}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to: [{podSelector: {matchLabels: {app: db}}}]\n",
    );
    let ns = NamespaceLabels::new();
    let svc = |backends: Vec<(&str, &str)>| Peer::Service {
        name: "db".into(),
        namespace: "default".into(),
        dns: "db.default.svc.cluster.local".into(),
        addr: "10.96.0.9".into(),
        backends: backends
            .into_iter()
            .map(|(w, l)| {
                (
                    PeerWorkload {
                        namespace: "default".into(),
                        kind: "Deployment".into(),
                        name: w.into(),
                    },
                    vec![l.to_string()],
                )
            })
            .collect(),
        how: "test".into(),
        endpoints: Vec::new(),
    };
    let me = at("default", &["app=web"]);
    assert_eq!(
        decide(
            &p,
            conn(me.clone(), Egress, svc(vec![("db", "app=db")]), "tcp", 5432),
            &ns
        ),
        Allowed
    );
    assert_eq!(
        decide(
            &p,
            conn(
                me.clone(),
                Egress,
                svc(vec![("db", "app=db"), ("db2", "app=db2")]),
                "tcp",
                5432
            ),
            &ns
        ),
        Dropped
    );
    let by_ip = policies(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: by-ip, namespace: default}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 10.96.0.0/12}}]\n",
    );
    assert_eq!(
        decide(
            &by_ip,
            conn(me, Egress, svc(vec![("db", "app=db")]), "tcp", 5432),
            &ns
        ),
        Dropped,
        "a Service's cluster IP is rewritten before policies see it"
    );
}

#[test]
fn cilium_rules_endpoints_cidrs_entities_fqdns_and_deny() {
    use Direction::*;
    use NetDecision::*;
    let p = policies(
        r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  endpointSelector:
    matchLabels: {app: web}
  ingress:
  - fromEndpoints:
    - matchLabels: {k8s:io.kubernetes.pod.namespace: ingress, app: lb}
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
  egress:
  - toEndpoints:
    - matchLabels: {app: db}
    toPorts:
    - ports: [{port: "5432", protocol: TCP}]
  - toFQDNs:
    - matchPattern: "*.example.com"
    toPorts:
    - ports: [{port: "443", protocol: ANY}]
  - toCIDRSet:
    - cidr: 192.0.2.0/24
      except: [192.0.2.128/25]
  - toEntities: [remote-node]
  egressDeny:
  - toCIDR: [192.0.2.7/32]
"#,
    );
    let ns = NamespaceLabels::new();
    let web = at("shop", &["app=web"]);
    let c = |d, peer, proto: &str, port| conn(web.clone(), d, peer, proto, port);
    assert_eq!(
        decide(
            &p,
            c(Ingress, pod("ingress", &["app=lb"], "10.1.0.1"), "tcp", 80),
            &ns
        ),
        Allowed
    );
    assert_eq!(
        decide(
            &p,
            c(Ingress, pod("shop", &["app=lb"], "10.1.0.1"), "tcp", 80),
            &ns
        ),
        Dropped
    );
    assert_eq!(
        decide(
            &p,
            c(Egress, pod("shop", &["app=db"], "10.1.0.2"), "tcp", 5432),
            &ns
        ),
        Allowed
    );
    assert_eq!(
        decide(
            &p,
            c(Egress, pod("other", &["app=db"], "10.1.0.2"), "tcp", 5432),
            &ns
        ),
        Dropped,
        "endpoint selectors stay in the policy's namespace"
    );
    let mut named = c(Egress, ext("198.51.100.1"), "udp", 443);
    named.remote_name = Some("api.example.com".into());
    assert_eq!(decide(&p, named.clone(), &ns), Allowed);
    named.remote_name = Some("example.com".into());
    assert_eq!(decide(&p, named, &ns), Dropped);
    assert_eq!(
        decide(&p, c(Egress, ext("192.0.2.9"), "tcp", 1), &ns),
        Allowed
    );
    assert_eq!(
        decide(&p, c(Egress, ext("192.0.2.200"), "tcp", 1), &ns),
        Dropped,
        "except"
    );
    assert_eq!(
        decide(&p, c(Egress, ext("192.0.2.7"), "tcp", 1), &ns),
        Dropped,
        "deny wins"
    );
    let node = |n: &str| Peer::Node {
        node: n.into(),
        addr: "10.0.0.2".into(),
        host_network_pods: Vec::new(),
    };
    assert_eq!(
        decide(&p, c(Egress, node("n2"), "tcp", 10250), &ns),
        Allowed
    );
    assert_eq!(
        decide(&p, c(Egress, node("n1"), "tcp", 10250), &ns),
        Dropped,
        "own node is host, not remote-node"
    );
}

/// Named ports (Kubernetes: "the port on the given protocol, a numerical or named port on a
/// pod") resolve against the destination pod's container ports: the selected pod for ingress,
/// the peer for egress. Without them (not in the pods table) the decision is `Undecided`, never
/// a guess.
#[test]
fn named_ports_resolve_through_the_destination_pods_container_ports() {
    use Direction::*;
    use NetDecision::*;
    let p = policies(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress, Egress]
  ingress:
  - ports: [{protocol: TCP, port: http}]
  egress:
  - to: [{podSelector: {matchLabels: {app: db}}}]
    ports: [{protocol: TCP, port: sql}]
",
    );
    let ns = NamespaceLabels::new();
    let api = at("shop", &["app=api"]);
    let with = |mut f: Flow, ports: &[&str]| {
        f.dest_ports = ports.iter().map(|s| s.to_string()).collect();
        f
    };
    let client = pod("shop", &["app=web"], "10.1.0.9");
    let db = pod("shop", &["app=db"], "10.1.0.7");
    // Ingress: the api pod's own ports.
    let inbound = |port| conn(api.clone(), Ingress, client.clone(), "tcp", port);
    assert_eq!(
        decide(&p, with(inbound(8080), &["TCP/8080/http"]), &ns),
        Allowed
    );
    assert_eq!(
        decide(&p, with(inbound(9090), &["TCP/8080/http"]), &ns),
        Dropped
    );
    assert_eq!(
        decide(&p, with(inbound(8080), &["UDP/8080/http"]), &ns),
        Dropped,
        "the name is per protocol"
    );
    assert_eq!(decide(&p, inbound(8080), &ns), Undecided);
    // Egress: the peer's ports; a peer the selector does not pick is dropped whatever the port.
    let outbound = |peer: &Peer, port| conn(api.clone(), Egress, peer.clone(), "tcp", port);
    assert_eq!(
        decide(&p, with(outbound(&db, 5432), &["TCP/5432/sql"]), &ns),
        Allowed
    );
    assert_eq!(
        decide(&p, with(outbound(&db, 5433), &["TCP/5432/sql"]), &ns),
        Dropped
    );
    assert_eq!(decide(&p, outbound(&db, 5432), &ns), Undecided);
    assert_eq!(decide(&p, outbound(&client, 5432), &ns), Dropped);
    // The verdict says why.
    let v = simulate_with(&[outbound(&db, 5432)], &p, &ns);
    assert!(v[0].reason.contains("named port"), "{}", v[0].reason);
    assert_eq!(v[0].policies, ["shop/named"]);
}
