//! `kubectl karmor pull`, and `observe` without `--bundle`, end to end: the plugin binary
//! against real collector services on loopback (each serving one node of the demo bundle),
//! directly (`--endpoint`) or through a loopback Kubernetes API server that lists the collector
//! pods and port-forwards to them. Nothing is mocked but the API server.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use common::api_server::{FakeApiServer, Forward};
use common::collectors::{self, closed_port, Collector};
use karmor_analyzer::Store;
use karmor_contract::bundle::{read_manifest, verify_bundle};
use karmor_contract::schema::Event;
use karmor_contract::segment::read_segment;
use serde_json::{json, Value};

/// Runs the plugin with a clean environment: HOME and the cache in `home`, no kubeconfig
/// unless `kubeconfig` is given.
async fn karmor(home: &Path, kubeconfig: Option<&Path>, argv: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-karmor"));
    cmd.args(argv)
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env_remove("KUBECONFIG")
        .env_remove("KARMOR_STORE")
        .env_remove("KARMOR_NO_PULL")
        .env_remove("KUBERNETES_SERVICE_HOST");
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    tokio::task::spawn_blocking(move || cmd.output().expect("run kubectl-karmor"))
        .await
        .expect("the plugin ran")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(o), stderr(o)))
}

/// The report line of `node` (or of the source containing `source`).
fn node<'a>(report: &'a Value, key: &str, value: &str) -> &'a Value {
    report["nodes"]
        .as_array()
        .and_then(|nodes| {
            nodes
                .iter()
                .find(|n| n[key].as_str().is_some_and(|v| v.contains(value)))
        })
        .unwrap_or_else(|| panic!("no node with {key} {value} in {report}"))
}

fn store_segments(path: &Path) -> u64 {
    Store::open(path)
        .and_then(|s| s.health())
        .map(|h| h.segments)
        .unwrap_or_else(|e| panic!("store {}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_pull_lands_the_reachable_collector_and_reports_the_unreachable_one() {
    let a = collectors::start("node-a").await;
    let dead = format!("127.0.0.1:{}", closed_port().await);
    let home = tempfile::tempdir().expect("a home");
    let bundle = home.path().join("bundle");
    let store = home.path().join("store.duckdb");
    let (bundle_s, store_s) = (bundle.display().to_string(), store.display().to_string());
    let argv = [
        "pull",
        "--endpoint",
        &a.addr(),
        "--endpoint",
        &dead,
        "-o",
        &bundle_s,
        "--store",
        &store_s,
        "--output",
        "json",
    ];

    let first = karmor(home.path(), None, &argv).await;
    assert_eq!(first.status.code(), Some(1), "stderr: {}", stderr(&first));
    let report = json_out(&first);
    let landed = node(&report, "node", "node-a");
    assert_eq!(landed["new"], json!(a.segments));
    assert_eq!(landed["skipped"], json!(0));
    assert_eq!(landed["failed"], json!(0));
    assert_eq!(landed["source"], json!(format!("endpoint {}", a.addr())));
    assert!(landed.get("error").is_none(), "{landed}");
    let lost = node(&report, "source", &dead);
    assert_eq!(lost["new"], json!(0));
    let error = lost["error"].as_str().unwrap_or_default();
    assert!(error.contains(&dead), "{error}");
    assert_eq!(report["merged_segments"], json!(a.segments));
    assert!(
        stderr(&first).contains("1 of 2 nodes failed"),
        "{}",
        stderr(&first)
    );

    // What landed is a verified bundle, merged into the store.
    let checks = verify_bundle(&bundle).expect("the bundle opens");
    assert_eq!(checks.len(), a.segments + a.pods);
    assert!(checks.iter().all(|c| c.problem.is_none()), "{checks:?}");
    assert_eq!(store_segments(&store), a.segments as u64);

    // Again, reachable only: nothing new is fetched, nothing fails.
    let again = karmor(
        home.path(),
        None,
        &[
            "pull",
            "--endpoint",
            &a.addr(),
            "-o",
            &bundle_s,
            "--store",
            &store_s,
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(again.status.code(), Some(0), "stderr: {}", stderr(&again));
    let report = json_out(&again);
    let landed = node(&report, "node", "node-a");
    assert_eq!(landed["new"], json!(0));
    assert_eq!(landed["skipped"], json!(a.segments));
    assert_eq!(report["merged_segments"], json!(0));
    assert_eq!(store_segments(&store), a.segments as u64);

    // The table: one line per node, then where the data went.
    let table = karmor(
        home.path(),
        None,
        &[
            "pull",
            "--endpoint",
            &a.addr(),
            "--endpoint",
            &dead,
            "-o",
            &bundle_s,
            "--store",
            &store_s,
        ],
    )
    .await;
    let text = stdout(&table);
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("NODE"), "{text}");
    assert!(lines[0].contains("SKIPPED"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("node-a") && l.contains(&format!("endpoint {}", a.addr()))),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&dead) && l.contains("cannot connect")),
        "{text}"
    );
    assert!(text.contains(&format!("bundle: {bundle_s}")), "{text}");
    assert!(
        text.contains(&format!(
            "store:  {store_s} (0 new segments, 0 rows merged)"
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_endpoint_is_refused_before_anything_runs() {
    let home = tempfile::tempdir().expect("a home");
    let out = karmor(home.path(), None, &["pull", "--endpoint", "no-port-here"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--endpoint no-port-here: expected HOST:PORT"),
        "{}",
        stderr(&out)
    );
}

/// A pod list: ready collectors per (pod, node), and one crash-looping on node-c.
fn pods(ready: &[(&str, &str)]) -> Value {
    let mut items: Vec<Value> = ready
        .iter()
        .map(|(pod, node)| {
            json!({
                "metadata": {"name": pod, "namespace": "karmor-system",
                             "creationTimestamp": "2026-11-20T07:00:00Z",
                             "labels": {"app.kubernetes.io/name": "karmor-collector"}},
                "spec": {"nodeName": node, "containers": [{"name": "karmor-collector"}]},
                "status": {"phase": "Running",
                           "conditions": [{"type": "Ready", "status": "True"}]},
            })
        })
        .collect();
    items.push(json!({
        "metadata": {"name": "collector-c", "namespace": "karmor-system",
                     "labels": {"app.kubernetes.io/name": "karmor-collector"}},
        "spec": {"nodeName": "node-c", "containers": [{"name": "karmor-collector"}]},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "False"}],
                   "containerStatuses": [{"name": "karmor-collector", "ready": false,
                       "restartCount": 4, "image": "", "imageID": "",
                       "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
    }));
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})
}

/// An API server whose collector pods forward to the given collectors.
async fn cluster(collectors: &[(&str, &str, &Collector)]) -> FakeApiServer {
    let forward: HashMap<String, u16> = collectors
        .iter()
        .map(|(pod, _, c)| (pod.to_string(), c.port))
        .collect();
    let api = FakeApiServer::start(Forward::Pods(forward)).await;
    let ready: Vec<(&str, &str)> = collectors.iter().map(|(p, n, _)| (*p, *n)).collect();
    api.set_pods(pods(&ready));
    api
}

fn write_kubeconfig(home: &Path, api: &FakeApiServer) -> std::path::PathBuf {
    let path = home.join("kubeconfig");
    std::fs::write(&path, api.kubeconfig()).expect("write the kubeconfig");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_port_forwards_to_each_ready_collector_pod() {
    let a = collectors::start("node-a").await;
    let b = collectors::start("node-b").await;
    let api = cluster(&[("collector-a", "node-a", &a), ("collector-b", "node-b", &b)]).await;
    let home = tempfile::tempdir().expect("a home");
    let kubeconfig = write_kubeconfig(home.path(), &api);
    let bundle = home.path().join("bundle");
    let bundle_s = bundle.display().to_string();

    let out = karmor(
        home.path(),
        Some(&kubeconfig),
        &["pull", "-o", &bundle_s, "--output", "json"],
    )
    .await;
    // node-c's collector is not ready: reported, exit 1, the others landed.
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let report = json_out(&out);
    for (name, pod, c) in [("node-a", "collector-a", &a), ("node-b", "collector-b", &b)] {
        let n = node(&report, "node", name);
        assert_eq!(n["new"], json!(c.segments), "{n}");
        assert_eq!(n["source"], json!(format!("pod karmor-system/{pod}")));
        assert!(n.get("error").is_none(), "{n}");
    }
    let c = node(&report, "node", "node-c");
    assert_eq!(c["error"], json!("not ready: CrashLoopBackOff"));
    assert_eq!(report["context"], json!("context fake"));
    assert_eq!(report["merged_segments"], json!(a.segments + b.segments));
    // The default store is the cache store.
    let cache_store = home.path().join("cache/kubectl-karmor/store.duckdb");
    assert_eq!(report["store"], json!(cache_store.display().to_string()));
    assert_eq!(
        store_segments(&cache_store),
        (a.segments + b.segments) as u64
    );

    let requests = api.requests();
    let lists: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/pods"))
        .collect();
    assert_eq!(lists.len(), 1, "{requests:?}");
    assert_eq!(lists[0].path, "/api/v1/namespaces/karmor-system/pods");
    assert!(
        lists[0]
            .query
            .contains("labelSelector=app.kubernetes.io%2Fname%3Dkarmor-collector"),
        "{}",
        lists[0].query
    );
    let mut forwards: Vec<(String, Vec<u16>)> = requests
        .iter()
        .filter(|r| r.path.ends_with("/portforward"))
        .map(|r| (r.path.clone(), r.ports.clone()))
        .collect();
    forwards.sort();
    forwards.dedup();
    assert_eq!(
        forwards,
        vec![
            (
                "/api/v1/namespaces/karmor-system/pods/collector-a/portforward".to_string(),
                vec![7946]
            ),
            (
                "/api/v1/namespaces/karmor-system/pods/collector-b/portforward".to_string(),
                vec![7946]
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_without_bundle_pulls_first_then_uses_the_cache() {
    let a = collectors::start("node-a").await;
    let b = collectors::start("node-b").await;
    let api = cluster(&[("collector-a", "node-a", &a), ("collector-b", "node-b", &b)]).await;
    let home = tempfile::tempdir().expect("a home");
    let kubeconfig = write_kubeconfig(home.path(), &api);
    let demo = collectors::demo().display().to_string();

    // What the demo bundle shows offline.
    let offline = karmor(
        home.path(),
        None,
        &["observe", "pods", "-A", "--bundle", &demo],
    )
    .await;
    assert!(offline.status.success(), "{}", stderr(&offline));
    assert!(stdout(&offline).contains("wordpress-7c9f6d8b5d-4xk2p"));

    // No --bundle: pull both collectors into the cache first, then show the same.
    let pulled = karmor(home.path(), Some(&kubeconfig), &["observe", "pods", "-A"]).await;
    assert!(pulled.status.success(), "{}", stderr(&pulled));
    assert_eq!(stdout(&pulled), stdout(&offline));
    let expected = format!(
        "pulled {} new segments from 2 collectors (context fake) into the cache",
        a.segments + b.segments
    );
    assert!(stderr(&pulled).contains(&expected), "{}", stderr(&pulled));
    assert!(
        stderr(&pulled).contains(", with 2 pods table files"),
        "{}",
        stderr(&pulled)
    );
    assert!(stderr(&pulled).contains("node-c: not ready: CrashLoopBackOff"));
    let seen = api.requests().len();

    // --no-pull: the cache as it is, and not one request to the API server.
    let cached = karmor(
        home.path(),
        Some(&kubeconfig),
        &["observe", "pods", "-A", "--no-pull"],
    )
    .await;
    assert!(cached.status.success(), "{}", stderr(&cached));
    assert_eq!(stdout(&cached), stdout(&offline));
    assert_eq!(api.requests().len(), seen);
    assert!(!stderr(&cached).contains("pulled"), "{}", stderr(&cached));

    // Pulling again fetches nothing new.
    let again = karmor(home.path(), Some(&kubeconfig), &["observe", "pods", "-A"]).await;
    assert!(
        stderr(&again).contains("pulled 0 new segments"),
        "{}",
        stderr(&again)
    );
    assert!(
        !stderr(&again).contains("pods table file"),
        "{}",
        stderr(&again)
    );
    assert_eq!(stdout(&again), stdout(&offline));

    // An unreachable cluster: the cache is used, and the user is told.
    let dead = home.path().join("dead-kubeconfig");
    std::fs::write(
        &dead,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: gone\nclusters:\n- name: gone\n  cluster: {{server: 'http://127.0.0.1:{}'}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: gone\n  context: {{cluster: gone, user: u}}\n",
            closed_port().await
        ),
    )
    .expect("write a kubeconfig");
    let fallback = karmor(home.path(), Some(&dead), &["observe", "pods", "-A"]).await;
    assert!(fallback.status.success(), "{}", stderr(&fallback));
    assert_eq!(stdout(&fallback), stdout(&offline));
    let err = stderr(&fallback);
    assert!(
        err.contains("warning: cannot pull from the cluster"),
        "{err}"
    );
    assert!(
        err.contains("cannot list pods in namespace karmor-system"),
        "{err}"
    );
    assert!(err.contains("analysing the local cache"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cluster_or_a_cache_observe_says_what_to_do() {
    let home = tempfile::tempdir().expect("a home");
    let out = karmor(home.path(), None, &["observe", "pods", "-A"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no Kubernetes context configured"), "{err}");
    assert!(err.contains("no data: pass --bundle PATH"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_and_namespaces_choose_the_segments() {
    let a = collectors::start("node-a").await;
    let home = tempfile::tempdir().expect("a home");
    let pull = |bundle: &'static str, extra: &'static [&'static str]| {
        let home = home.path().to_path_buf();
        let addr = a.addr();
        async move {
            let bundle = home.join(bundle).display().to_string();
            let mut argv = vec!["pull", "--endpoint", &addr, "-o", &bundle, "--no-merge"];
            argv.extend_from_slice(&["--output", "json"]);
            argv.extend_from_slice(extra);
            let out = karmor(&home, None, &argv).await;
            assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
            json_out(&out)
        }
    };
    // The demo's behaviour is from 2026-11-20: none of it in the last hour, all of it in the
    // last 1000 days.
    let recent = pull("recent", &["--since", "1h"]).await;
    assert_eq!(node(&recent, "node", "node-a")["new"], json!(0));
    let all = pull("all", &["--since", "1000d"]).await;
    assert_eq!(node(&all, "node", "node-a")["new"], json!(a.segments));
    // Namespaces: segments holding rows of them only.
    let none = pull("none", &["-n", "no-such-namespace"]).await;
    assert_eq!(node(&none, "node", "node-a")["new"], json!(0));
    let wp = pull("wp", &["-n", "no-such-namespace,wordpress-mysql"]).await;
    assert_eq!(node(&wp, "node", "node-a")["new"], json!(a.segments));
    // --no-merge: no store was written.
    assert!(all.get("store").is_none(), "{all}");
    assert!(!home
        .path()
        .join("cache/kubectl-karmor/store.duckdb")
        .exists());
}

/// Sum of counts per row identity (every column but the times and the count) over the files
/// a bundle lists.
fn totals_per_identity(bundle: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut totals = std::collections::BTreeMap::new();
    for f in read_manifest(bundle).expect("a manifest").files {
        let (_, rows) = read_segment(&bundle.join(&f.path)).expect("a readable segment");
        for e in rows {
            let count = e.count;
            let identity = Event {
                ts_first: 0,
                ts_last: 0,
                count: 0,
                ..e
            };
            *totals.entry(format!("{identity:?}")).or_default() += count;
        }
    }
    totals
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_after_the_collector_compacted_replaces_what_it_pulled_before() {
    let a = collectors::start("node-a").await;
    let home = tempfile::tempdir().expect("a home");
    let written = totals_per_identity(a.dir.path());
    let (json_bundle, table_bundle) = (home.path().join("j"), home.path().join("t"));
    let argv = |bundle: &Path, output: &str| -> Vec<String> {
        [
            "pull",
            "--endpoint",
            &a.addr(),
            "-o",
            &bundle.display().to_string(),
            "--no-merge",
            "--output",
            output,
        ]
        .map(str::to_string)
        .to_vec()
    };
    let run = |argv: Vec<String>| {
        let home = home.path().to_path_buf();
        async move {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let out = karmor(&home, None, &argv).await;
            assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
            out
        }
    };
    for bundle in [&json_bundle, &table_bundle] {
        let first = json_out(&run(argv(bundle, "json")).await);
        assert_eq!(node(&first, "node", "node-a")["new"], json!(a.segments));
        assert_eq!(totals_per_identity(bundle), written);
    }

    // The collector compacts the day: its hour segments become one day file.
    let day = a.compact_day();
    assert_eq!(day.replaces.len(), a.segments);

    let after = json_out(&run(argv(&json_bundle, "json")).await);
    let landed = node(&after, "node", "node-a");
    assert_eq!(landed["new"], json!(1), "{after}");
    assert_eq!(landed["skipped"], json!(0));
    assert_eq!(landed["replaced"], json!(a.segments));
    assert_eq!(landed["replaced_by"], json!(1));
    let listed: Vec<String> = read_manifest(&json_bundle)
        .expect("a manifest")
        .files
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(listed, vec![day.path.clone()]);
    assert!(verify_bundle(&json_bundle)
        .expect("the bundle opens")
        .iter()
        .all(|c| c.problem.is_none()));
    assert_eq!(totals_per_identity(&json_bundle), written, "every row once");

    let table = stdout(&run(argv(&table_bundle, "table")).await);
    println!("{table}");
    assert!(table
        .lines()
        .next()
        .unwrap_or_default()
        .contains("REPLACED"));
    assert!(
        table.contains(&format!(
            "(replaced {} segments by 1 compacted file)",
            a.segments
        )),
        "{table}"
    );
    assert_eq!(totals_per_identity(&table_bundle), written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_without_any_kubeconfig_says_where_it_looked() {
    let home = tempfile::tempdir().expect("a home");
    let out = karmor(home.path(), None, &["pull"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no Kubernetes configuration"), "{err}");
    assert!(err.contains("not running in a pod"), "{err}");
    assert!(err.contains("--endpoint HOST:PORT"), "{err}");
    let out = karmor(home.path(), None, &["pull", "--context", "prod"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("kubeconfig context prod"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_forward_cut_mid_transfer_is_replaced_and_the_pull_completes() {
    let a = collectors::start("node-a").await;
    let api = cluster(&[("collector-a", "node-a", &a)]).await;
    // The first port-forward drops after 100 KiB from the collector: inside the fourth of
    // node-a's six ~30 KB segments. The failed fetch is retried over a new port-forward.
    api.cut_next("collector-a", 100 * 1024);
    let home = tempfile::tempdir().expect("a home");
    let kubeconfig = write_kubeconfig(home.path(), &api);
    let bundle = home.path().join("bundle");
    let bundle_s = bundle.display().to_string();
    let out = karmor(
        home.path(),
        Some(&kubeconfig),
        &["pull", "-o", &bundle_s, "--no-merge", "--output", "json"],
    )
    .await;
    let report = json_out(&out);
    let n = node(&report, "node", "node-a");
    assert_eq!(n["new"], json!(a.segments), "{report}");
    assert_eq!(n["failed"], json!(0), "{report}");
    let forwards = api
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/collector-a/portforward"))
        .count();
    assert!(
        forwards >= 2,
        "the cut connection was not replaced: {forwards} port-forwards"
    );
    let checks = verify_bundle(&bundle).expect("the bundle opens");
    assert_eq!(checks.len(), a.segments + a.pods);
    assert!(checks.iter().all(|c| c.problem.is_none()), "{checks:?}");
    assert!(
        std::fs::read_dir(&bundle)
            .into_iter()
            .flatten()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().ends_with(".part")),
        "a .part file was left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_is_the_same_before_and_after_the_collector_compacts_and_through_the_store() {
    let a = collectors::start("node-a").await;
    let home = tempfile::tempdir().expect("a home");
    let h = home.path();
    let (bundle, store) = (h.join("pulled"), h.join("store.duckdb"));
    let (bundle_arg, store_arg) = (bundle.display().to_string(), store.display().to_string());
    let observe = |extra: Vec<String>| {
        let h = h.to_path_buf();
        async move {
            let mut argv = vec!["observe", "pods", "-A", "--output", "json"];
            argv.extend(extra.iter().map(String::as_str));
            let out = karmor(&h, None, &argv).await;
            assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
            json_out(&out)
        }
    };
    let pull = || {
        let argv = [
            "pull",
            "--endpoint",
            &a.addr(),
            "-o",
            &bundle_arg,
            "--store",
            &store_arg,
        ]
        .map(str::to_string);
        let h = h.to_path_buf();
        async move {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let out = karmor(&h, None, &argv).await;
            assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
        }
    };
    let before = observe(vec!["--bundle".into(), a.dir.path().display().to_string()]).await;
    assert!(!before["files"].as_array().expect("files").is_empty());
    pull().await;
    let store_before = observe(vec!["--store".into(), store_arg.clone()]).await;
    assert_eq!(store_before, before);

    a.compact_day();
    let after = observe(vec!["--bundle".into(), a.dir.path().display().to_string()]).await;
    assert_eq!(
        after, before,
        "the compacted day answers as its minutes did"
    );
    pull().await;
    let store_after = observe(vec!["--store".into(), store_arg.clone()]).await;
    assert_eq!(store_after, before, "the store counts the day file once");
    let health = Store::open(&store).and_then(|s| s.health()).expect("store");
    assert_eq!(health.files, 1, "only the day file is read");
    // Through the cache of --bundle compactions, a second time.
    let pulled = observe(vec!["--bundle".into(), bundle_arg.clone()]).await;
    assert_eq!(pulled, before);
}
