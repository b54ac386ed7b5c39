//! Network drafts on the committed demo bundle (testdata/demo, with its pods table): the
//! drafts for wordpress-mysql allow exactly wordpress → mysql:3306, DNS to the observed DNS
//! pods (by their own labels) and the observed egress; they validate; learned from the morning
//! and simulated on the whole day they drop only the attack's outbound connection.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use karmor_analyzer::network::draft::{yaml, DraftPeer, NetworkDraft, NetworkFormat};
use karmor_analyzer::network::report::markdown;
use karmor_analyzer::network::{
    parse_policies, recommend_network, simulate_network, NetDecision, NetPolicy, Peer, PeerIndex,
};
use karmor_analyzer::policy::{validate_documents, Outcome};
use karmor_analyzer::recommend::{Scope, WorkloadSelect};
use karmor_analyzer::Store;
use karmor_testdata::demo;

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/demo")
}

fn store() -> Store {
    let s = Store::in_memory().unwrap();
    let r = s.merge_bundle(&demo_dir()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.pods_merged.len(), 2, "one pods table file per node");
    s
}

fn scope(ns: Option<&str>, until: Option<i64>) -> Scope {
    Scope {
        workloads: Some(WorkloadSelect {
            namespace: ns.map(String::from),
            ..WorkloadSelect::default()
        }),
        until_ns: until,
        ..Scope::default()
    }
}

fn morning() -> Scope {
    scope(Some(demo::NAMESPACE), Some(demo::SUSPICIOUS_AFTER_NS))
}

fn draft<'a>(drafts: &'a [NetworkDraft], name: &str) -> &'a NetworkDraft {
    drafts
        .iter()
        .find(|d| d.workload.name == name)
        .unwrap_or_else(|| panic!("no draft for {name}"))
}

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ports(r: &karmor_analyzer::network::draft::DraftRule) -> Vec<String> {
    r.ports
        .iter()
        .map(|(p, n)| format!("{p}/{}", n.map_or("any".into(), |n| n.to_string())))
        .collect()
}

fn policies_of(drafts: &[NetworkDraft], format: NetworkFormat) -> Vec<NetPolicy> {
    drafts
        .iter()
        .filter_map(|d| yaml(d, format))
        .flat_map(|text| parse_policies(&text, Path::new("draft.yaml")).unwrap())
        .collect()
}

#[test]
fn the_pods_table_reaches_the_store() {
    let s = store();
    let idx = PeerIndex::load(&s).unwrap();
    // Every pod, and the two Services (every node records them; the view keeps one row each).
    let services: Vec<&str> = idx
        .pods()
        .iter()
        .filter(|p| p.is_service())
        .map(|p| p.ip.as_str())
        .collect();
    assert_eq!(services, ["10.96.0.10", "10.96.12.7"]);
    assert_eq!(idx.pods().len(), demo::PODS.len() + 2);
    // DNS and MySQL are reached at their cluster IPs: the Services, their pods found by their
    // real selectors.
    for (addr, backend) in [("10.96.0.10", "coredns"), ("10.96.12.7", "mysql")] {
        match idx.resolve(addr, None, demo::at(9, 0, 0, 0)) {
            Peer::Service { backends, how, .. } => {
                let names: Vec<&str> = backends.iter().map(|(w, _)| w.name.as_str()).collect();
                assert_eq!(names, [backend], "{how}");
                assert!(how.contains("selected by its selector"), "{how}");
            }
            other => panic!("{addr} is {other:?}"),
        }
    }
    // The address a finished backup Job held before 08:00 is wordpress's afterwards.
    let at = |t| match idx.resolve("10.244.2.31", None, t) {
        Peer::Pod { workload, .. } => workload.name,
        other => format!("{other:?}"),
    };
    assert_eq!(at(demo::at(7, 2, 0, 0)), "wp-backup");
    assert_eq!(at(demo::at(9, 0, 0, 0)), "wordpress");
    // kube-proxy runs in the host's network: its address is its node.
    assert!(matches!(
        idx.resolve("10.0.0.11", None, demo::at(9, 0, 0, 0)),
        Peer::Node { ref node, ref host_network_pods, .. }
            if node == "node-a" && host_network_pods == &["kube-system/kube-proxy-7xq9d"]
    ));
    // The cni bridge address kubelet probes come from is node-b's.
    assert!(matches!(
        idx.resolve("10.244.2.1", None, demo::at(9, 0, 0, 0)),
        Peer::Node { ref node, .. } if node == "node-b"
    ));
}

#[test]
fn morning_drafts_allow_exactly_what_wordpress_mysql_did() {
    let s = store();
    let rec = recommend_network(&s, &morning()).unwrap();
    assert!(rec.pods_table);
    let names: Vec<&str> = rec
        .drafts
        .iter()
        .map(|d| d.workload.name.as_str())
        .collect();
    assert_eq!(names, ["mysql", "wordpress"]);

    let my = draft(&rec.drafts, "mysql");
    assert_eq!(
        my.selector,
        labels(&[("app", "mysql"), ("tier", "backend")])
    );
    assert_eq!(my.ingress.len(), 1, "{:#?}", my.ingress);
    assert_eq!(
        my.ingress[0].peer,
        DraftPeer::Pods {
            namespace: None,
            labels: labels(&[("app", "wordpress"), ("tier", "frontend")]),
        }
    );
    assert_eq!(ports(&my.ingress[0]), ["TCP/3306"]);
    assert!(my.egress.is_empty(), "{:#?}", my.egress);

    let wp = draft(&rec.drafts, "wordpress");
    assert_eq!(
        wp.selector,
        labels(&[("app", "wordpress"), ("tier", "frontend")])
    );
    // Ingress: the ingress controller's pods, by their own labels, in their namespace; the
    // kubelet's probes come from each pod's own node and need no rule.
    assert_eq!(wp.ingress.len(), 1, "{:#?}", wp.ingress);
    assert_eq!(
        wp.ingress[0].peer,
        DraftPeer::Pods {
            namespace: Some("ingress-nginx".into()),
            labels: labels(&[
                ("app.kubernetes.io/component", "controller"),
                ("app.kubernetes.io/instance", "ingress-nginx"),
                ("app.kubernetes.io/name", "ingress-nginx"),
            ]),
        }
    );
    assert_eq!(ports(&wp.ingress[0]), ["TCP/80"]);
    assert!(
        wp.not_needed.iter().any(|n| n.contains("own node node-a"))
            && wp.not_needed.iter().any(|n| n.contains("own node node-b")),
        "{:?}",
        wp.not_needed
    );
    // Egress: mysql through its Service, DNS to the CoreDNS pods by their labels, and
    // api.wordpress.org as an annotated /32.
    let egress: BTreeMap<String, Vec<String>> = wp
        .egress
        .iter()
        .map(|r| (format!("{:?}", r.peer), ports(r)))
        .collect();
    assert_eq!(egress.len(), 3, "{egress:#?}");
    let find = |p: &DraftPeer| {
        wp.egress
            .iter()
            .find(|r| &r.peer == p)
            .unwrap_or_else(|| panic!("no egress to {p:?}: {egress:#?}"))
    };
    let mysql = find(&DraftPeer::Pods {
        namespace: None,
        labels: labels(&[("app", "mysql"), ("tier", "backend")]),
    });
    assert_eq!(ports(mysql), ["TCP/3306"]);
    assert!(mysql.why[0].contains("mysql.wordpress-mysql.svc.cluster.local"));
    let dns = find(&DraftPeer::Pods {
        namespace: Some("kube-system".into()),
        labels: labels(&[("k8s-app", "kube-dns")]),
    });
    assert_eq!(ports(dns), ["UDP/53"]);
    let api = find(&DraftPeer::Address {
        addr: "198.143.164.251".into(),
        names: vec!["api.wordpress.org".into()],
        node: None,
    });
    assert_eq!(ports(api), ["TCP/443"]);

    let text = yaml(wp, NetworkFormat::Kubernetes).unwrap();
    assert!(
        text.contains("kubernetes.io/metadata.name: kube-system"),
        "{text}"
    );
    assert!(text.contains("cidr: 198.143.164.251/32"), "{text}");
    assert!(
        text.contains(
            r#"karmor.io/peer-names: "{\"198.143.164.251/32\":[\"api.wordpress.org\"]}""#
        ),
        "{text}"
    );
    assert!(!text.contains("pod-template-hash"), "{text}");
    let report = markdown(&rec);
    assert!(
        report.contains("## wordpress-mysql/Deployment/wordpress"),
        "{report}"
    );
    assert!(report.contains("k8s-app=kube-dns"), "{report}");
}

#[test]
fn host_network_workloads_get_no_draft_and_say_why() {
    let s = store();
    let rec = recommend_network(&s, &scope(Some("kube-system"), None)).unwrap();
    let kp = draft(&rec.drafts, "kube-proxy");
    assert!(kp.skipped.as_deref().unwrap().contains("host's network"));
    assert!(yaml(kp, NetworkFormat::Kubernetes).is_none());
}

fn dropped_only_the_attack(format: NetworkFormat) {
    let s = store();
    let rec = recommend_network(&s, &morning()).unwrap();
    let policies = policies_of(&rec.drafts, format);
    assert_eq!(policies.len(), 2);
    // Clean on the data they came from.
    let morning = simulate_network(&s, &morning(), &policies).unwrap();
    let dropped: Vec<_> = morning
        .iter()
        .filter(|v| v.decision == NetDecision::Dropped)
        .collect();
    assert!(dropped.is_empty(), "{dropped:#?}");
    // The whole day: the attack's outbound connection only.
    let day = simulate_network(&s, &scope(Some(demo::NAMESPACE), None), &policies).unwrap();
    let dropped: Vec<_> = day
        .iter()
        .filter(|v| v.decision == NetDecision::Dropped)
        .collect();
    assert_eq!(dropped.len(), 1, "{dropped:#?}");
    let f = &dropped[0].flow;
    assert_eq!(
        (
            f.workload.name.as_str(),
            f.remote_addr.as_str(),
            f.port,
            f.pod.as_str()
        ),
        (
            "wordpress",
            "203.0.113.66",
            Some(4444),
            "wordpress-7c9f6d8b5d-m8q7z"
        )
    );
    assert_eq!(dropped[0].policies, ["wordpress-mysql/karmor-wordpress"]);
    let allowed = day
        .iter()
        .filter(|v| v.decision == NetDecision::Allowed)
        .count();
    assert!(allowed > 10, "{allowed}");
    assert!(day.iter().all(|v| v.decision != NetDecision::NotIsolated));
}

#[test]
fn kubernetes_drafts_from_the_morning_drop_only_the_attack_on_the_whole_day() {
    dropped_only_the_attack(NetworkFormat::Kubernetes);
}

#[test]
fn cilium_drafts_from_the_morning_drop_only_the_attack_on_the_whole_day() {
    dropped_only_the_attack(NetworkFormat::Cilium);
}

#[test]
fn cilium_drafts_name_what_they_reach() {
    let s = store();
    let rec = recommend_network(&s, &morning()).unwrap();
    let text = yaml(draft(&rec.drafts, "wordpress"), NetworkFormat::Cilium).unwrap();
    for want in [
        "kind: CiliumNetworkPolicy",
        "- matchName: api.wordpress.org",
        "k8s:io.kubernetes.pod.namespace: kube-system",
        "matchPattern: \"*\"",
        "port: \"53\"",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
}

fn write_drafts(dir: &Path, format: NetworkFormat) -> Vec<PathBuf> {
    let s = store();
    let rec = recommend_network(&s, &scope(None, None)).unwrap();
    let mut files = Vec::new();
    for d in &rec.drafts {
        if let Some(text) = yaml(d, format) {
            let p = dir.join(format!("{}-{}.yaml", d.workload.namespace, d.workload.name));
            std::fs::write(&p, text).unwrap();
            files.push(p);
        }
    }
    assert!(files.len() >= 2);
    files
}

#[test]
fn drafts_pass_our_validator() {
    let dir = tempfile::tempdir().unwrap();
    for format in [NetworkFormat::Kubernetes, NetworkFormat::Cilium] {
        for f in write_drafts(dir.path(), format) {
            let text = std::fs::read_to_string(&f).unwrap();
            for r in validate_documents(&text, &f) {
                assert_eq!(
                    r.outcome,
                    Outcome::Valid,
                    "{}: {:?}\n{text}",
                    f.display(),
                    r.errors
                );
            }
        }
    }
}

#[test]
#[ignore = "needs python3 with kubernetes-validate (pip install kubernetes-validate==1.37.0)"]
fn kubernetes_drafts_validate_against_the_kubernetes_schema() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_drafts(dir.path(), NetworkFormat::Kubernetes);
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, yaml\n\
             from kubernetes_validate import utils\n\
             errors = 0\n\
             for path in sys.argv[1:]:\n\
             \x20   for doc in yaml.safe_load_all(open(path)):\n\
             \x20       for v in ('1.30.0', utils.all_versions()[-1]):\n\
             \x20           try:\n\
             \x20               utils.validate(doc, v, strict=True)\n\
             \x20               print('OK', path, v)\n\
             \x20           except Exception as e:\n\
             \x20               errors += 1\n\
             \x20               print('ERROR', path, v, e)\n\
             sys.exit(1 if errors else 0)\n",
        )
        .args(&files)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("OK ").count(), files.len() * 2, "{text}");
}

#[test]
fn every_peer_kind_is_annotated() {
    let s = store();
    let rec = recommend_network(&s, &scope(None, None)).unwrap();
    let wp = draft(&rec.drafts, "wordpress");
    // The attack's address is in no pods table and was reached by no name: a bare /32 that
    // says so in the report.
    let stranger = wp
        .egress
        .iter()
        .find(|r| matches!(&r.peer, DraftPeer::Address { addr, .. } if addr == "203.0.113.66"))
        .expect("the whole day's draft has the attack's address");
    assert!(
        stranger.seen.iter().any(|s| s.contains("in no pods table")),
        "{:?}",
        stranger.seen
    );
    let seen: BTreeSet<String> = wp
        .egress
        .iter()
        .flat_map(|r| r.seen.iter().cloned())
        .collect();
    assert!(
        seen.iter().any(
            |s| s.starts_with("service kube-system/kube-dns -> kube-system/Deployment/coredns")
        ),
        "{seen:?}"
    );
}
