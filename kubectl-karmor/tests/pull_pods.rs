//! The pods table leaves the node: `kubectl karmor pull` fetches each collector's pods table
//! snapshot beside its segments (real collector services on loopback, each serving one node of
//! the demo bundle), and `recommend --network` on the cache resolves a peer that ran on another
//! node through the pulled table, as it does on the demo bundle itself. A node's newer snapshot
//! is merged with the ones pulled before into one history, in the bundle and in the store: an
//! address a pod held before its collector forgot it still resolves to that pod, and to the
//! pod that took it later.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::collectors;
use karmor_analyzer::network::peers::{Peer, PeerIndex};
use karmor_analyzer::Store;
use karmor_collector::datadir::{DataDir, Retention};
use karmor_contract::bundle::{read_manifest, verify_bundle};
use karmor_contract::pods::{read_pods, PodAddress};
use serde_json::{json, Value};

/// Runs the plugin with HOME and the cache in `home`, no kubeconfig.
async fn karmor(home: &Path, argv: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-karmor"));
    cmd.args(argv)
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env_remove("KUBECONFIG")
        .env_remove("KARMOR_STORE")
        .env_remove("KARMOR_NO_PULL")
        .env_remove("KUBERNETES_SERVICE_HOST");
    tokio::task::spawn_blocking(move || cmd.output().expect("run kubectl-karmor"))
        .await
        .expect("the plugin ran")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            stderr(o)
        )
    })
}

fn node<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["node"] == name))
        .unwrap_or_else(|| panic!("no node {name} in {report}"))
}

/// Pulls the collectors at `addrs` into the cache of `home` (bundle and store).
async fn pull(home: &Path, addrs: &[String]) -> Value {
    let mut argv = vec!["pull", "--output", "json"];
    for a in addrs {
        argv.extend(["--endpoint", a.as_str()]);
    }
    let out = karmor(home, &argv).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    json_out(&out)
}

/// The morning's NetworkPolicy drafts of wordpress-mysql, from `data` (extra arguments: a
/// `--bundle`, or `--no-pull` for the cache), as file name → YAML.
async fn drafts(home: &Path, out: &Path, data: &[&str]) -> BTreeMap<String, String> {
    let out_s = out.display().to_string();
    let mut argv = vec![
        "recommend",
        "-n",
        "wordpress-mysql",
        "--network",
        "--until",
        "2026-11-20T12:00:00Z",
        "--out",
        &out_s,
    ];
    argv.extend_from_slice(data);
    let run = karmor(home, &argv).await;
    assert!(run.status.success(), "stderr: {}", stderr(&run));
    std::fs::read_dir(out)
        .expect("the drafts directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy().into();
            (name, std::fs::read_to_string(&p).expect("a draft"))
        })
        .collect()
}

fn cache_bundle(home: &Path) -> PathBuf {
    home.join("cache/kubectl-karmor/pulled")
}

fn cache_store(home: &Path) -> PathBuf {
    home.join("cache/kubectl-karmor/store.duckdb")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommend_network_on_the_cache_resolves_peers_through_the_pulled_pods_tables() {
    let a = collectors::start("node-a").await;
    let b = collectors::start("node-b").await;
    assert_eq!((a.pods, b.pods), (1, 1));
    let home = tempfile::tempdir().expect("a home");
    let h = home.path();

    let report = pull(h, &[a.addr(), b.addr()]).await;
    for n in ["node-a", "node-b"] {
        assert_eq!(node(&report, n)["pods_new"], json!(1), "{report}");
        assert_eq!(node(&report, n)["pods_failed"], json!(0), "{report}");
    }
    assert_eq!(report["merged_pods_files"], json!(2), "{report}");
    let bundle = cache_bundle(h);
    let manifest = read_manifest(&bundle).expect("the pulled manifest");
    let demo = read_manifest(&collectors::demo()).expect("the demo manifest");
    assert_eq!(manifest.pods, demo.pods, "the collectors' snapshots, as is");
    assert_eq!(
        manifest.pods_schema_version, demo.pods_schema_version,
        "the collectors' pods schema version"
    );
    let checks = verify_bundle(&bundle).expect("the bundle opens");
    assert_eq!(checks.len(), a.segments + b.segments + 2);
    assert!(checks.iter().all(|c| c.problem.is_none()), "{checks:?}");

    // The drafts from the cache are the drafts from the demo bundle: wordpress's second pod
    // (node-b, 10.244.2.31, an address a finished Job held before) reaches mysql on node-a,
    // and only node-b's pods table says whose address that is.
    let from_cache = drafts(h, &h.join("cache-drafts"), &["--no-pull"]).await;
    let demo_s = collectors::demo().display().to_string();
    let from_demo = drafts(h, &h.join("demo-drafts"), &["--bundle", &demo_s]).await;
    assert_eq!(from_cache, from_demo);
    let mysql = &from_cache["wordpress-mysql_deployment_mysql.netpol.yaml"];
    assert!(mysql.contains("app: wordpress"), "{mysql}");
    assert!(
        !mysql.contains("cidr: 10.244."),
        "a pod address as an ipBlock:\n{mysql}"
    );

    // Control: the same collectors without their pods tables (as collectors that predate
    // them) give drafts with the pods' addresses as outside /32s.
    let a0 = collectors::start_with("node-a", false).await;
    let b0 = collectors::start_with("node-b", false).await;
    let home0 = tempfile::tempdir().expect("a home");
    let report0 = pull(home0.path(), &[a0.addr(), b0.addr()]).await;
    assert_eq!(node(&report0, "node-a")["pods_new"], json!(0));
    let blind = drafts(home0.path(), &home0.path().join("d"), &["--no-pull"]).await;
    let blind_mysql = &blind["wordpress-mysql_deployment_mysql.netpol.yaml"];
    assert!(blind_mysql.contains("10.244.2.31/32"), "{blind_mysql}");
}

/// Writes `rows` as `node`'s next pods table snapshot in the collector's data directory at
/// `dir`, as the collector's writer does (replacing its previous one).
fn write_snapshot(dir: &Path, node: &str, rows: Vec<PodAddress>) {
    let mut data = DataDir::open(
        dir,
        "karmor-collector test",
        Retention {
            max_bytes: 0,
            max_age: None,
        },
    )
    .expect("the collector's data directory");
    data.write_pods(node, rows).expect("the next snapshot");
}

fn ts(text: &str) -> i64 {
    karmor_contract::bundle::parse_ts(text).expect("a time")
}

/// Who `addr` resolves to at `at`: a pod's name, else the peer's description.
fn who(index: &PeerIndex, addr: &str, at: &str) -> String {
    match index.resolve(addr, None, ts(at)) {
        Peer::Pod { pod, .. } => pod,
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_snapshots_merge_into_one_history() {
    let a = collectors::start("node-a").await;
    let b = collectors::start("node-b").await;
    let home = tempfile::tempdir().expect("a home");
    let h = home.path();
    pull(h, &[a.addr(), b.addr()]).await;
    let old = read_manifest(&cache_bundle(h))
        .expect("the pulled manifest")
        .pods;
    let old_of = |n: &str| old.iter().find(|p| p.node == n).expect("a node's").clone();
    let (old_a, old_b) = (old_of("node-a"), old_of("node-b"));

    // Pulling again with nothing new: nothing fetched, nothing merged.
    let again = pull(h, &[a.addr(), b.addr()]).await;
    for n in ["node-a", "node-b"] {
        assert_eq!(node(&again, n)["pods_new"], json!(0), "{again}");
        assert_eq!(node(&again, n)["pods_replaced"], json!(0), "{again}");
    }

    // node-b's pod watch sees the second wordpress pod go at 10:00 and writes its next
    // snapshot, as the collector's writer does.
    let rows_b = read_pods(&b.dir.path().join(&old_b.path)).expect("node-b's snapshot");
    const POD: &str = "wordpress-7c9f6d8b5d-m8q7z";
    const JOB: &str = "wp-backup-29381040-q2x7c";
    let gone_at = ts("2026-11-20T10:00:00Z");
    let next: Vec<_> = rows_b
        .iter()
        .cloned()
        .map(|mut r| {
            if r.pod == POD {
                r.valid_to = Some(gone_at);
            }
            r
        })
        .collect();
    write_snapshot(b.dir.path(), "node-b", next.clone());

    let third = pull(h, &[a.addr(), b.addr()]).await;
    assert_eq!(node(&third, "node-b")["pods_new"], json!(1), "{third}");
    assert_eq!(node(&third, "node-b")["pods_replaced"], json!(1), "{third}");
    assert_eq!(node(&third, "node-a")["pods_new"], json!(0), "{third}");
    let bundle = cache_bundle(h);
    let now = read_manifest(&bundle).expect("the pulled manifest").pods;
    assert_eq!(now.len(), 2, "one file per node: {now:?}");
    assert!(now.iter().all(|p| p.path != old_b.path), "{now:?}");
    assert!(!bundle.join(&old_b.path).exists(), "the merged file stays");
    let merged_b = now.iter().find(|p| p.node == "node-b").expect("node-b's");
    assert!(merged_b.replaces.contains(&old_b.sha256), "{merged_b:?}");
    assert_eq!(merged_b.replaces.len(), 2, "{merged_b:?}");
    assert!(verify_bundle(&bundle)
        .expect("the bundle opens")
        .iter()
        .all(|c| c.problem.is_none()));

    // The store holds the merged file in place of the earlier one: the span is closed.
    {
        let store = Store::open(&cache_store(h)).expect("the cache store");
        let index = PeerIndex::load(&store).expect("the pods view");
        let spans: Vec<_> = index.pods().iter().filter(|p| p.pod == POD).collect();
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!(spans[0].valid_to, Some(gone_at));
        assert_eq!(index.pods().len(), 12, "10 pods and the 2 Services");
        let owned = karmor_analyzer::store::owned_dir(&cache_store(h));
        assert!(
            !owned.join(format!("{}.parquet", old_b.sha256)).exists(),
            "the store's copy of the merged snapshot stays"
        );
    }
    // Pulled again, the collector's snapshot (which the merged file holds) is not fetched.
    let fourth = pull(h, &[a.addr(), b.addr()]).await;
    assert_eq!(node(&fourth, "node-b")["pods_new"], json!(0), "{fourth}");

    // A week on, both collectors have forgotten pods: node-b its closed spans (the pod and
    // the Job that held 10.244.2.31 before it), node-a (restarted) wordpress' first pod,
    // which it never saw go. Other pods took their addresses since.
    let later = ts("2026-11-28T00:00:00Z");
    let newcomer = |like: &PodAddress, name: &str| PodAddress {
        pod: name.into(),
        pod_uid: Some(format!("uid-{name}")),
        workload_kind: Some("StatefulSet".into()),
        workload: Some("cache".into()),
        labels: vec!["app=cache".into()],
        valid_from: later,
        valid_to: None,
        ..like.clone()
    };
    let mut week_b: Vec<PodAddress> = next
        .iter()
        .filter(|r| r.valid_to.is_none())
        .cloned()
        .collect();
    let pod_b = next.iter().find(|r| r.pod == POD).expect("the pod");
    week_b.push(newcomer(pod_b, "cache-0"));
    write_snapshot(b.dir.path(), "node-b", week_b);
    let rows_a = read_pods(&a.dir.path().join(&old_a.path)).expect("node-a's snapshot");
    const POD_A: &str = "wordpress-7c9f6d8b5d-4xk2p";
    let pod_a = rows_a
        .iter()
        .find(|r| r.pod == POD_A)
        .expect("node-a's pod")
        .clone();
    let mut week_a: Vec<PodAddress> = rows_a.into_iter().filter(|r| r.pod != POD_A).collect();
    week_a.push(newcomer(&pod_a, "cache-1"));
    write_snapshot(a.dir.path(), "node-a", week_a);

    let fifth = pull(h, &[a.addr(), b.addr()]).await;
    for n in ["node-a", "node-b"] {
        assert_eq!(node(&fifth, n)["pods_new"], json!(1), "{fifth}");
        assert_eq!(node(&fifth, n)["pods_replaced"], json!(1), "{fifth}");
    }
    let bundle_pods = read_manifest(&bundle).expect("the pulled manifest").pods;
    assert_eq!(bundle_pods.len(), 2, "{bundle_pods:?}");
    // `bundle info` shows the pods table's files and how many snapshots each holds.
    let info = karmor(h, &["bundle", "info", &bundle.display().to_string()]).await;
    assert!(info.status.success(), "{}", stderr(&info));
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("Pods table:  2 files, 16 rows"), "{text}");
    for p in &bundle_pods {
        let line = text
            .lines()
            .find(|l| l.starts_with(&p.path))
            .unwrap_or_else(|| panic!("{} not listed:\n{text}", p.path));
        let merged = line.split_whitespace().last().unwrap_or_default();
        assert_eq!(merged, p.replaces.len().to_string(), "{line}");
    }
    for (from_bundle, from_store) in [(true, false), (false, true)] {
        let store = if from_store {
            Store::open(&cache_store(h)).expect("the cache store")
        } else {
            let s = Store::in_memory().expect("a store");
            s.merge_bundle(&bundle).expect("the pulled bundle merges");
            s
        };
        let index = PeerIndex::load(&store).expect("the pods view");
        let what = if from_bundle { "bundle" } else { "store" };
        // Connections at both times resolve to the pod that held the address then.
        assert_eq!(
            who(&index, "10.244.2.31", "2026-11-20T07:02:00Z"),
            JOB,
            "{what}"
        );
        assert_eq!(
            who(&index, "10.244.2.31", "2026-11-20T09:00:00Z"),
            POD,
            "{what}"
        );
        assert_eq!(
            who(&index, "10.244.2.31", "2026-11-28T01:00:00Z"),
            "cache-0",
            "{what}"
        );
        assert_eq!(
            who(&index, "10.244.1.23", "2026-11-20T09:00:00Z"),
            POD_A,
            "{what}"
        );
        assert_eq!(
            who(&index, "10.244.1.23", "2026-11-28T01:00:00Z"),
            "cache-1",
            "{what}"
        );
        // Between the pod's end and the newcomer nobody held node-b's address.
        assert!(
            matches!(
                index.resolve("10.244.2.31", None, ts("2026-11-21T00:00:00Z")),
                Peer::External { .. }
            ),
            "{what}"
        );
        assert_eq!(index.pods().len(), 14, "{what}: {:?}", index.pods());
    }
    // Control: the collectors' latest snapshots alone have forgotten the earlier pods.
    let latest_only = {
        let s = Store::in_memory().expect("a store");
        s.merge_bundle(b.dir.path())
            .expect("node-b's data directory merges");
        PeerIndex::load(&s).expect("the pods view")
    };
    assert_ne!(
        who(&latest_only, "10.244.2.31", "2026-11-20T09:00:00Z"),
        POD
    );
}
