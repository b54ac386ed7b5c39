//! The demo data set: deterministic, realistic in shape, with exactly the promised suspicious
//! rows, and identical to the committed bundle in testdata/demo/.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::OnceLock;

use karmor_contract::bundle::{
    read_manifest, verify_bundle, write_bundle, write_pods, BundleOptions,
};
use karmor_contract::{Event, Op, Source};
use karmor_testdata::demo::{self, SUSPICIOUS, SUSPICIOUS_AFTER_NS};

/// The demo rows, generated once for all tests.
fn rows() -> &'static [Event] {
    static ROWS: OnceLock<Vec<Event>> = OnceLock::new();
    ROWS.get_or_init(demo::events)
}

#[test]
fn two_calls_give_identical_rows() {
    assert_eq!(rows(), demo::events().as_slice());
}

#[test]
fn rows_follow_the_schema_conventions() {
    let rows = rows();
    assert!(
        (3_000..10_000).contains(&rows.len()),
        "a few thousand rows expected, got {}",
        rows.len()
    );
    for e in rows {
        assert_eq!(e.source, Source::Ebpf);
        assert_eq!(e.cluster.as_deref(), Some("demo"));
        assert!(demo::NODES.contains(&e.node.as_str()), "{e:?}");
        assert!(
            e.ts_first >= demo::START_NS && e.ts_last < demo::END_NS,
            "{e:?}"
        );
        assert!(e.ts_first <= e.ts_last && e.count >= 1, "{e:?}");
        // One hour window per row.
        assert_eq!(
            (e.ts_first - demo::START_NS) / 3_600_000_000_000,
            (e.ts_last - demo::START_NS) / 3_600_000_000_000
        );
        assert!(
            e.pid.is_some() && e.ppid.is_some() && e.uid.is_some(),
            "{e:?}"
        );
        assert!(e.process.is_some() && e.parent_process.is_some(), "{e:?}");
        assert!(
            e.syscall.as_deref().unwrap_or("").starts_with("SYS_"),
            "{e:?}"
        );
        assert!(e.result.is_some(), "{e:?}");
        let mut sorted = e.labels.clone();
        sorted.sort();
        assert_eq!(sorted, e.labels);
        if e.host {
            assert!(
                e.namespace.is_none() && e.pod.is_none() && e.container.is_none(),
                "{e:?}"
            );
            assert!(e.labels.is_empty());
        } else {
            for f in [
                &e.namespace,
                &e.pod,
                &e.container,
                &e.image,
                &e.workload_kind,
                &e.workload,
            ] {
                assert!(f.is_some(), "{e:?}");
            }
            let uid = e.pod_uid.as_deref().unwrap();
            assert_eq!(uid.len(), 36);
            assert_eq!(uid.matches('-').count(), 4);
            let cid = e.container_id.as_deref().unwrap();
            assert!(cid.len() == 64 && cid.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        match e.op {
            Op::Process => assert!(e.path.is_none() && e.proto.is_none(), "{e:?}"),
            Op::File => assert!(e.path.is_some() && e.access.is_some(), "{e:?}"),
            Op::Network => assert!(e.proto.is_some() && e.direction.is_some(), "{e:?}"),
            _ => panic!("unexpected op {e:?}"),
        }
    }
}

#[test]
fn the_cluster_contains_the_promised_workloads() {
    let rows = rows();
    let mut pods: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for e in rows.iter().filter(|e| !e.host) {
        pods.entry((e.namespace.clone().unwrap(), e.workload.clone().unwrap()))
            .or_default()
            .insert(format!("{}@{}", e.pod.as_deref().unwrap(), e.node));
    }
    let count = |ns: &str, w: &str| pods.get(&(ns.into(), w.into())).map_or(0, |p| p.len());
    assert_eq!(count("wordpress-mysql", "wordpress"), 2, "{pods:?}");
    assert_eq!(count("wordpress-mysql", "mysql"), 1);
    assert_eq!(count("kube-system", "kube-proxy"), 2);
    assert_eq!(pods.len(), 3);
    let wp_nodes: BTreeSet<&str> = rows
        .iter()
        .filter(|e| e.workload.as_deref() == Some("wordpress"))
        .map(|e| e.node.as_str())
        .collect();
    assert_eq!(wp_nodes.len(), 2);
    for node in demo::NODES {
        assert!(rows
            .iter()
            .any(|e| e.host && e.node == node && e.process.as_deref() == Some("/usr/bin/kubelet")));
    }
    let wp = rows
        .iter()
        .find(|e| e.workload.as_deref() == Some("wordpress"))
        .unwrap();
    assert_eq!(
        wp.labels,
        [
            "app=wordpress",
            "pod-template-hash=7c9f6d8b5d",
            "tier=frontend"
        ]
    );
    assert!(wp
        .pod
        .as_deref()
        .unwrap()
        .starts_with("wordpress-7c9f6d8b5d-"));
    assert_eq!(wp.image.as_deref(), Some("wordpress:6.4-apache"));
}

#[test]
fn behaviour_is_realistic_enough_to_analyse() {
    let rows = rows();
    let php_files: BTreeSet<&str> = rows
        .iter()
        .filter(|e| e.process.as_deref() == Some("/usr/local/bin/php") && e.op == Op::File)
        .filter_map(|e| e.path.as_deref())
        .filter(|p| p.starts_with("/var/www/html/") && p.ends_with(".php"))
        .collect();
    assert!(php_files.len() >= 80, "{} php files", php_files.len());
    let busiest = rows
        .iter()
        .filter(|e| e.process.as_deref() == Some("/usr/local/bin/php") && e.op == Op::File)
        .map(|e| e.count)
        .max()
        .unwrap();
    assert!(
        busiest >= 100,
        "php reads should be counted in the hundreds, max {busiest}"
    );
    // The liveness probe: mysqladmin started by the runtime shim every 10 s.
    let probes: Vec<&Event> = rows
        .iter()
        .filter(|e| e.op == Op::Process && e.process.as_deref() == Some("/usr/bin/mysqladmin"))
        .collect();
    assert!(probes.len() > 2000);
    assert!(probes
        .iter()
        .all(|e| e.parent_process.as_deref() == Some("/usr/bin/containerd-shim-runc-v2")));
    // The kubectl exec session.
    let exec = |p: &str| {
        rows.iter().any(|e| {
            e.workload.as_deref() == Some("wordpress")
                && e.op == Op::Process
                && e.process.as_deref() == Some(p)
        })
    };
    assert!(exec("/bin/bash") && exec("/bin/ls") && exec("/bin/cat"));
    // WordPress talks to MySQL through its service, MySQL accepts from the pods.
    assert!(rows
        .iter()
        .any(|e| e.remote_addr.as_deref() == Some("10.96.12.7")
            && e.remote_port == Some(3306)
            && e.remote_name.as_deref() == Some("mysql.wordpress-mysql.svc.cluster.local")));
    assert!(rows.iter().any(|e| e.workload.as_deref() == Some("mysql")
        && e.direction.as_deref() == Some("accept")
        && e.local_port == Some(3306)));
    // A few denials.
    let denied = rows
        .iter()
        .filter(|e| e.result.as_deref() == Some("Permission denied"))
        .count();
    assert!((1..50).contains(&denied), "{denied} denials");
    // uids: www-data for php, mysql for mysqld, root for the probe.
    let uid_of = |p: &str| {
        rows.iter()
            .filter(|e| e.process.as_deref() == Some(p) && !e.host)
            .map(|e| e.uid.unwrap())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(uid_of("/usr/local/bin/php"), BTreeSet::from([33]));
    assert!(uid_of("/usr/sbin/mysqld").contains(&999));
    assert_eq!(uid_of("/usr/bin/mysqladmin"), BTreeSet::from([0]));
}

#[test]
fn parent_chains_are_consistent() {
    let rows = rows();
    // Every program a pid ran, per node.
    let mut ran: HashMap<(&str, i32), BTreeSet<&str>> = HashMap::new();
    for e in rows {
        ran.entry((e.node.as_str(), e.pid.unwrap()))
            .or_default()
            .insert(e.process.as_deref().unwrap());
    }
    for e in rows {
        if let Some(parent_ran) = ran.get(&(e.node.as_str(), e.ppid.unwrap())) {
            assert!(
                parent_ran.contains(e.parent_process.as_deref().unwrap()),
                "{e:?}: parent pid ran {parent_ran:?}"
            );
        }
    }
}

#[test]
fn suspicious_behaviours_are_present_once_and_only_after_noon() {
    let rows = rows();
    let mut by_kind: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for e in rows {
        if let Some(kind) = demo::suspicious_kind(e) {
            by_kind.entry(kind).or_default().push(e);
        }
        if e.ts_first < SUSPICIOUS_AFTER_NS {
            assert!(!demo::is_suspicious(e), "suspicious before 12:00: {e:?}");
        }
    }
    let expected_rows = [
        ("apache-spawns-shell", 2),
        ("php-reads-sa-token", 1),
        ("connect-unknown-ip", 1),
        ("mysql-drops-binary", 2),
    ];
    assert_eq!(SUSPICIOUS.len(), expected_rows.len());
    for ((name, description), (kind, n)) in SUSPICIOUS.iter().zip(expected_rows) {
        assert_eq!(*name, kind);
        assert!(!description.is_empty());
        let found = by_kind.get(name).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(found.len(), n, "{name}: {found:?}");
        for e in found {
            assert_eq!(e.count, 1, "{name} seen more than once: {e:?}");
            assert!(e.ts_first >= SUSPICIOUS_AFTER_NS, "{e:?}");
        }
    }
    assert_eq!(
        rows.iter().filter(|e| demo::is_suspicious(e)).count(),
        demo::SUSPICIOUS_ROWS
    );
    // The specific rows the brief promises.
    let one =
        |name: &str, f: &dyn Fn(&Event) -> bool| by_kind[name].iter().filter(|e| f(e)).count();
    assert_eq!(
        one("apache-spawns-shell", &|e| e.process.as_deref()
            == Some("/bin/sh")
            && e.parent_process.as_deref() == Some("/usr/sbin/apache2")
            && e.args.as_deref().unwrap().starts_with("sh -c ")),
        1
    );
    assert_eq!(
        one("apache-spawns-shell", &|e| e.process.as_deref()
            == Some("/usr/bin/curl")),
        1
    );
    assert_eq!(
        one("php-reads-sa-token", &|e| e.process.as_deref()
            == Some("/usr/local/bin/php")
            && e.path.as_deref()
                == Some(
                    "/var/run/secrets/kubernetes.io/serviceaccount/token"
                )),
        1
    );
    assert_eq!(
        one("connect-unknown-ip", &|e| e.proto.as_deref() == Some("tcp")
            && e.remote_addr.as_deref() == Some("203.0.113.66")
            && e.remote_port == Some(4444)),
        1
    );
    assert_eq!(
        one("mysql-drops-binary", &|e| e.op == Op::File
            && e.access.as_deref() == Some("create")
            && e.path.as_deref() == Some("/usr/bin/kworker")
            && e.process.as_deref() == Some("/bin/sh")),
        1
    );
    // The same behaviours never happen before noon, under any pid.
    assert!(!rows.iter().any(|e| e.ts_first < SUSPICIOUS_AFTER_NS
        && (e.path.as_deref() == Some("/usr/bin/kworker")
            || e.remote_addr.as_deref() == Some("203.0.113.66")
            || (e.workload.as_deref() == Some("wordpress")
                && e.path.as_deref()
                    == Some("/var/run/secrets/kubernetes.io/serviceaccount/token")))));
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn committed_demo_bundle_is_what_the_generator_writes() {
    let committed = karmor_testdata::demo_bundle_dir();
    let want = read_manifest(&committed)
        .unwrap_or_else(|e| panic!("{e}: regenerate the demo with scripts/gen-testdata.sh"));
    let dir = scratch_dir("demo-bundle");
    let opts = BundleOptions {
        producer: "karmor-testdata gen-demo".into(),
        ..Default::default()
    };
    write_bundle(&dir, rows().to_vec(), &opts).unwrap();
    let got = write_pods(&dir, karmor_testdata::demo::pods(), &opts.producer).unwrap();
    let files = |m: &karmor_contract::bundle::Manifest| {
        m.files
            .iter()
            .map(|f| (f.path.clone(), f.sha256.clone(), f.rows))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        files(&got),
        files(&want),
        "testdata/demo is stale: regenerate it with scripts/gen-testdata.sh"
    );
    // Everything else too, but the time of writing (gen-demo pins it to the demo's end).
    let mut got = got;
    got.updated_at = want.updated_at.clone();
    assert_eq!(got, want);
    assert!(verify_bundle(&committed)
        .unwrap()
        .iter()
        .all(|c| c.problem.is_none()));
    assert!(
        want.totals.bytes < 1_000_000,
        "demo bundle too large: {} bytes",
        want.totals.bytes
    );
    let _ = std::fs::remove_dir_all(&dir);
}
