//! `kubectl karmor observe --live` end to end: the plugin binary against a fake KubeArmor
//! `LogService` (real tonic on loopback) that streams the 18 events of KubeArmor's
//! documentation (`shared/kubearmor/events/doc-events.jsonl`), directly (`--relay-endpoint`) or
//! through a loopback Kubernetes API server that lists the relay pod and port-forwards to it.
//! The final live summary must equal `observe --bundle B` where B is `kubectl karmor import` of
//! the same file. (The gRPC path differs from import in `source` and in the `uid` of lines
//! without `UID`; observe's summaries show neither.)

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::Ordering;

use common::api_server::{FakeApiServer, Forward};
use serde_json::{json, Value};

use common::relay::{FakeRelay, DOC_EVENTS};

/// Runs the plugin with a clean environment (HOME and the cache in `home`).
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every JSON document printed (one summary per refresh, then the final one).
fn documents(o: &Output) -> Vec<Value> {
    serde_json::Deserializer::from_slice(&o.stdout)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| {
            panic!(
                "not JSON documents ({e}): {}\nstderr: {}",
                text(&o.stdout),
                text(&o.stderr)
            )
        })
}

/// The final summary of a live run.
fn final_summary(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "{}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    documents(o)
        .pop()
        .unwrap_or_else(|| panic!("no summary printed; stderr: {}", text(&o.stderr)))
}

/// `observe ARGS --output json --bundle B`, B being `import` of the documentation's events.
async fn imported_summary(home: &Path, observe_args: &[&str]) -> Value {
    let bundle = home.join("imported");
    let bundle_arg = bundle.display().to_string();
    if !bundle.exists() {
        let imported = karmor(home, None, &["import", DOC_EVENTS, "-o", &bundle_arg]).await;
        assert!(imported.status.success(), "{}", text(&imported.stderr));
    }
    let mut argv = vec!["observe"];
    argv.extend_from_slice(observe_args);
    argv.extend_from_slice(&["--output", "json", "--bundle", &bundle_arg]);
    let o = karmor(home, None, &argv).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut docs = documents(&o);
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

fn rows(summary: &Value, section: &str) -> usize {
    summary[section].as_array().map_or(0, Vec::len)
}

/// Arguments that stop a live run after the 18 messages (or, should they never all come, after
/// two minutes: the summaries then differ and the test fails instead of hanging).
const STOP: [&str; 6] = ["--max-events", "18", "--duration", "2m", "--refresh", "1"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_summary_equals_observe_of_the_imported_file() {
    let relay = FakeRelay::new(usize::MAX, 0);
    let addr = relay.serve().await.to_string();
    let home = tempfile::tempdir().expect("a home");
    let expected = imported_summary(home.path(), &["pods", "-A"]).await;
    assert!(rows(&expected, "processes") > 0 && rows(&expected, "files") > 0);
    assert!(rows(&expected, "network") > 0, "{expected}");

    let mut argv = vec!["observe", "pods", "-A", "--live", "--relay-endpoint", &addr];
    argv.extend_from_slice(&STOP);
    argv.extend_from_slice(&["--output", "json"]);
    let o = karmor(home.path(), None, &argv).await;
    assert_eq!(final_summary(&o), expected);
    let err = text(&o.stderr);
    assert!(err.contains(&format!("watching relay {addr}")), "{err}");
    assert!(err.contains("stopped: --max-events reached"), "{err}");
    assert_eq!(relay.filters(), vec!["alerts:policy", "logs:system"]);

    // The default table output ends with the table observe prints offline (summaries printed
    // at earlier refreshes come before it, separated by a blank line).
    let bundle = home.path().join("imported").display().to_string();
    let offline = karmor(
        home.path(),
        None,
        &["observe", "pods", "-A", "--bundle", &bundle],
    )
    .await;
    assert!(offline.status.success(), "{}", text(&offline.stderr));
    let offline = text(&offline.stdout);
    assert!(offline.contains("FILES READ"), "{offline}");
    let mut argv = vec!["observe", "pods", "-A", "--live", "--relay-endpoint", &addr];
    argv.extend_from_slice(&STOP);
    let o = karmor(home.path(), None, &argv).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let live = text(&o.stdout);
    assert!(
        live.ends_with(&offline),
        "live:\n{live}\noffline:\n{offline}"
    );

    // The user's observe flags apply as they do offline: resource kind, namespace, operation,
    // filter.
    let narrow = [
        "deployments",
        "-n",
        "wordpress-mysql",
        "-o",
        "file,process",
        "-f",
        "path=/var/*||process=/bin/*",
    ];
    let expected = imported_summary(home.path(), &narrow).await;
    assert!(rows(&expected, "files") > 0, "{expected}");
    let mut argv = vec!["observe"];
    argv.extend_from_slice(&narrow);
    argv.extend_from_slice(&["--live", "--relay-endpoint", &addr]);
    argv.extend_from_slice(&STOP);
    argv.extend_from_slice(&["--output", "json"]);
    let o = karmor(home.path(), None, &argv).await;
    assert_eq!(final_summary(&o), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_is_reopened_and_replayed_messages_count_once() {
    // The first two connections break after 4 messages per stream; every connection replays
    // from the start.
    let relay = FakeRelay::new(4, 2);
    let addr = relay.serve().await.to_string();
    let home = tempfile::tempdir().expect("a home");
    let expected = imported_summary(home.path(), &["pods", "-A"]).await;
    let mut argv = vec!["observe", "pods", "-A", "--live", "--relay-endpoint", &addr];
    argv.extend_from_slice(&STOP);
    argv.extend_from_slice(&["--output", "json"]);
    let o = karmor(home.path(), None, &argv).await;
    assert_eq!(final_summary(&o), expected);
    let err = text(&o.stderr);
    assert!(err.contains("cut by the test"), "{err}");
    assert!(err.contains("reconnecting in"), "{err}");
    assert!(relay.calls.load(Ordering::SeqCst) >= 6, "three connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_alerts_watches_the_telemetry_stream_only() {
    let relay = FakeRelay::new(usize::MAX, 0);
    let addr = relay.serve().await.to_string();
    let home = tempfile::tempdir().expect("a home");
    let argv = [
        "observe",
        "pods",
        "-A",
        "--live",
        "--no-alerts",
        "--relay-endpoint",
        &addr,
        "--max-events",
        "1",
        "--output",
        "json",
    ];
    let o = karmor(home.path(), None, &argv).await;
    let summary = final_summary(&o);
    assert_eq!(relay.filters(), vec!["logs:system"]);
    // The documentation's only Log: a file read in accuknox-agents.
    let files = summary["files"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 1, "{summary}");
    assert_eq!(files[0]["namespace"], "accuknox-agents", "{summary}");
    assert_eq!(rows(&summary, "processes") + rows(&summary, "network"), 0);
}

/// A pod list holding one ready KubeArmor relay pod.
fn relay_pods() -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [{
        "metadata": {"name": "kubearmor-relay-5d8f9c7b6-x2x4z", "namespace": "kubearmor",
                     "creationTimestamp": "2026-11-20T07:00:00Z",
                     "labels": {"kubearmor-app": "kubearmor-relay"}},
        "spec": {"nodeName": "node-a", "containers": [{"name": "kubearmor-relay-server"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_pod_is_found_and_reached_through_a_port_forward() {
    let relay = FakeRelay::new(usize::MAX, 0);
    let addr = relay.serve().await;
    let api = FakeApiServer::start(Forward::To(addr.port())).await;
    api.set_pods(relay_pods());
    let home = tempfile::tempdir().expect("a home");
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).expect("write the kubeconfig");
    let expected = imported_summary(home.path(), &["pods", "-A"]).await;

    let mut argv = vec!["observe", "pods", "-A", "--live"];
    argv.extend_from_slice(&STOP);
    argv.extend_from_slice(&["--output", "json"]);
    let o = karmor(home.path(), Some(&kubeconfig), &argv).await;
    assert_eq!(final_summary(&o), expected);
    let err = text(&o.stderr);
    assert!(
        err.contains("relay pod kubearmor/kubearmor-relay-5d8f9c7b6-x2x4z port 32767"),
        "{err}"
    );
    let requests = api.requests();
    let list = requests
        .iter()
        .find(|r| r.path == "/api/v1/namespaces/kubearmor/pods")
        .unwrap_or_else(|| panic!("no list of relay pods: {requests:?}"));
    assert!(
        list.query
            .contains("labelSelector=kubearmor-app%3Dkubearmor-relay"),
        "{}",
        list.query
    );
    let forwards: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/portforward"))
        .collect();
    assert!(!forwards.is_empty());
    for f in forwards {
        assert_eq!(
            f.path,
            "/api/v1/namespaces/kubearmor/pods/kubearmor-relay-5d8f9c7b6-x2x4z/portforward"
        );
        assert_eq!(f.ports, vec![32767]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_relay_pod_live_says_what_to_set() {
    // The API server lists no pods at all.
    let api = FakeApiServer::start(Forward::Refuse(403, "unused")).await;
    let home = tempfile::tempdir().expect("a home");
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).expect("write the kubeconfig");
    let o = karmor(
        home.path(),
        Some(&kubeconfig),
        &["observe", "-A", "--live", "--relay-namespace", "security"],
    )
    .await;
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("no KubeArmor relay pod in namespace security with selector kubearmor-app=kubearmor-relay"),
        "{err}"
    );
    assert!(err.contains("--relay-endpoint"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_watch_with_a_final_summary() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    let relay = FakeRelay::new(usize::MAX, 0);
    let addr = relay.serve().await.to_string();
    let home = tempfile::tempdir().expect("a home");
    let expected = imported_summary(home.path(), &["pods", "-A"]).await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-karmor"));
    cmd.args(["observe", "pods", "-A", "--live", "--relay-endpoint", &addr])
        .args(["--refresh", "1", "--output", "json"])
        .env("HOME", home.path())
        .env_remove("KUBECONFIG")
        .env_remove("KARMOR_STORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (stdout, stderr, success) = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("run kubectl-karmor");
        let mut out = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            buf
        });
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut seen = String::new();
        // The status line after a refresh that holds all 18 messages (or end of output, if
        // the plugin failed: the assertions below then say why).
        let mut line = String::new();
        while err.read_line(&mut line).unwrap_or(0) > 0 {
            seen.push_str(&line);
            if line.starts_with("18 messages from") {
                break;
            }
            line.clear();
        }
        let interrupted = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill -INT");
        assert!(interrupted.success());
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
        seen.push_str(&rest);
        let status = child.wait().expect("the plugin exits");
        (reader.join().expect("stdout read"), seen, status.success())
    })
    .await
    .expect("the plugin ran");
    assert!(success, "{stderr}");
    assert!(stderr.contains("stopped: interrupted"), "{stderr}");
    let docs: Vec<Value> = serde_json::Deserializer::from_slice(&stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not JSON documents ({e}): {}", text(&stdout)));
    // At least the refresh that printed all 18 messages, then the final summary.
    assert!(docs.len() >= 2, "{}", text(&stdout));
    assert_eq!(docs.last(), Some(&expected));
    assert_eq!(docs[docs.len() - 2], expected);
}
