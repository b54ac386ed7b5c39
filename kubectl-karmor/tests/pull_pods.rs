//! The pods table leaves the node: `kubectl karmor pull` fetches each collector's pods table
//! snapshot beside its segments (real collector services on loopback, each serving one node of
//! the demo bundle), and `recommend --network` on the cache resolves a peer that ran on another
//! node through the pulled table, as it does on the demo bundle itself. A node's newer snapshot
//! replaces the one pulled before, in the bundle and in the store.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::collectors;
use karmor_analyzer::network::peers::PeerIndex;
use karmor_analyzer::Store;
use karmor_collector::datadir::{DataDir, Retention};
use karmor_contract::bundle::{read_manifest, verify_bundle};
use karmor_contract::pods::read_pods;
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
        manifest.pods_schema_version.as_deref(),
        Some(karmor_contract::pods::pods_schema_version().as_str())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_newer_snapshot_replaces_the_one_pulled_before() {
    let a = collectors::start("node-a").await;
    let b = collectors::start("node-b").await;
    let home = tempfile::tempdir().expect("a home");
    let h = home.path();
    pull(h, &[a.addr(), b.addr()]).await;
    let old = read_manifest(&cache_bundle(h))
        .expect("the pulled manifest")
        .pods;
    let old_b = old
        .iter()
        .find(|p| p.node == "node-b")
        .expect("node-b's")
        .clone();

    // Pulling again with nothing new: nothing fetched, nothing replaced.
    let again = pull(h, &[a.addr(), b.addr()]).await;
    for n in ["node-a", "node-b"] {
        assert_eq!(node(&again, n)["pods_new"], json!(0), "{again}");
        assert_eq!(node(&again, n)["pods_replaced"], json!(0), "{again}");
    }

    // node-b's pod watch sees the second wordpress pod go at 10:00 and writes its next
    // snapshot, as the collector's writer does.
    let rows = read_pods(&b.dir.path().join(&old_b.path)).expect("node-b's snapshot");
    const POD: &str = "wordpress-7c9f6d8b5d-m8q7z";
    let gone_at = karmor_contract::bundle::parse_ts("2026-11-20T10:00:00Z").expect("a time");
    let next: Vec<_> = rows
        .into_iter()
        .map(|mut r| {
            if r.pod == POD {
                r.valid_to = Some(gone_at);
            }
            r
        })
        .collect();
    let mut dir = DataDir::open(
        b.dir.path(),
        "karmor-collector test",
        Retention {
            max_bytes: 0,
            max_age: None,
        },
    )
    .expect("node-b's data directory");
    dir.write_pods("node-b", next).expect("the next snapshot");
    drop(dir);

    let third = pull(h, &[a.addr(), b.addr()]).await;
    assert_eq!(node(&third, "node-b")["pods_new"], json!(1), "{third}");
    assert_eq!(node(&third, "node-b")["pods_replaced"], json!(1), "{third}");
    assert_eq!(node(&third, "node-a")["pods_new"], json!(0), "{third}");
    let bundle = cache_bundle(h);
    let now = read_manifest(&bundle).expect("the pulled manifest").pods;
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(now.iter().all(|p| p.path != old_b.path), "{now:?}");
    assert!(!bundle.join(&old_b.path).exists(), "the stale file stays");
    assert!(verify_bundle(&bundle)
        .expect("the bundle opens")
        .iter()
        .all(|c| c.problem.is_none()));

    // The store holds one snapshot per node: the span is closed, not still open.
    let store = Store::open(&cache_store(h)).expect("the cache store");
    let index = PeerIndex::load(&store).expect("the pods view");
    let spans: Vec<_> = index.pods().iter().filter(|p| p.pod == POD).collect();
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].valid_to, Some(gone_at));
    assert_eq!(index.pods().len(), 10);
    let owned = karmor_analyzer::store::owned_dir(&cache_store(h));
    assert!(
        !owned.join(format!("{}.parquet", old_b.sha256)).exists(),
        "the store's copy of the stale snapshot stays"
    );
}
