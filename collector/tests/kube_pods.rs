//! The pod watch against kube-rs's real `Client` over a mocked API server (a `tower` service
//! that answers by path): the list and watch requests, the index by container id, owner
//! resolution through the API and by names, the grace period of deleted pods, relists, and
//! malformed objects.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use karmor_collector::attribution::PodLookup;
use karmor_collector::kube_pods::KubePods;
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

const NODE: &str = "node-a";

fn cid(n: u32) -> String {
    format!("{n:064x}")
}

/// A response body: one chunk, or the lines of a watch sent by the test.
enum MockBody {
    Full(Option<Bytes>),
    Lines(UnboundedReceiver<Bytes>),
}

impl http_body::Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            MockBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Lines(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }
}

#[derive(Default)]
struct State {
    /// Every request, as `path?query`.
    requests: Vec<String>,
    /// The pods a list returns.
    listed: Vec<Value>,
    /// Other objects by path: status and body.
    objects: HashMap<String, (u16, Value)>,
    /// Open watch streams, newest last.
    watches: Vec<UnboundedSender<Bytes>>,
    next_rv: u64,
}

/// The API server: lists and watches `/api/v1/pods`, answers other GETs from `objects`.
#[derive(Clone, Default)]
struct MockApi(Arc<Mutex<State>>);

impl MockApi {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn answer(&self, req: &Request<kube::client::Body>) -> Response<MockBody> {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let mut st = self.state();
        st.requests.push(format!("{path}?{query}"));
        let reply = |code: u16, body: &Value| {
            Response::builder()
                .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
                .header("content-type", "application/json")
                .body(MockBody::Full(Some(Bytes::from(body.to_string()))))
                .expect("a valid response")
        };
        if path == "/api/v1/pods" {
            if param(&query, "watch").as_deref() == Some("true") {
                let (tx, rx) = unbounded_channel();
                st.watches.push(tx);
                return Response::builder()
                    .status(StatusCode::OK)
                    .body(MockBody::Lines(rx))
                    .expect("a valid response");
            }
            st.next_rv += 1;
            let list = json!({
                "apiVersion": "v1", "kind": "PodList",
                "metadata": {"resourceVersion": st.next_rv.to_string()},
                "items": st.listed,
            });
            return reply(200, &list);
        }
        match st.objects.get(&path) {
            Some((code, body)) => reply(*code, body),
            None => reply(404, &status(404, "NotFound")),
        }
    }
}

impl tower_service::Service<Request<kube::client::Body>> for MockApi {
    type Response = Response<MockBody>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<MockBody>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        std::future::ready(Ok(self.answer(&req)))
    }
}

/// A query parameter, percent-decoded.
fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => {
                let h = std::str::from_utf8(hex).ok();
                match h.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status(code: u16, reason: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code,
           "reason": reason, "message": format!("{reason} (mock)")})
}

fn owner(kind: &str, name: &str) -> Value {
    let api = match kind {
        "ReplicaSet" | "Deployment" | "StatefulSet" | "DaemonSet" => "apps/v1",
        "Job" | "CronJob" => "batch/v1",
        _ => "v1",
    };
    json!([{"apiVersion": api, "kind": kind, "name": name, "uid": format!("uid-{name}"),
            "controller": true, "blockOwnerDeletion": true}])
}

struct PodSpec<'a> {
    name: &'a str,
    owner: Option<(&'a str, &'a str)>,
    labels: Value,
    containers: Vec<(&'a str, String)>,
    init: Vec<(&'a str, String)>,
    ephemeral: Vec<(&'a str, String)>,
}

impl<'a> PodSpec<'a> {
    fn new(name: &'a str, containers: Vec<(&'a str, String)>) -> Self {
        Self {
            name,
            owner: None,
            labels: json!({}),
            containers,
            init: vec![],
            ephemeral: vec![],
        }
    }

    fn owned(mut self, kind: &'a str, name: &'a str) -> Self {
        self.owner = Some((kind, name));
        self
    }

    fn json(&self) -> Value {
        let spec_of = |cs: &[(&str, String)]| -> Vec<Value> {
            cs.iter()
                .map(|(n, _)| json!({"name": n, "image": format!("registry.test/{n}:1")}))
                .collect()
        };
        let status_of = |cs: &[(&str, String)]| -> Vec<Value> {
            cs.iter()
                .map(|(n, id)| {
                    let mut s = json!({"name": n, "image": format!("registry.test/{n}:1"),
                        "imageID": "", "ready": true, "restartCount": 0});
                    if !id.is_empty() {
                        s["containerID"] = json!(id);
                    }
                    s
                })
                .collect()
        };
        let mut meta = json!({
            "name": self.name, "namespace": "shop", "uid": format!("uid-{}", self.name),
            "resourceVersion": "7", "labels": self.labels,
        });
        if let Some((k, n)) = self.owner {
            meta["ownerReferences"] = owner(k, n);
        }
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": meta,
            "spec": {
                "nodeName": NODE,
                "containers": spec_of(&self.containers),
                "initContainers": spec_of(&self.init),
                "ephemeralContainers": spec_of(&self.ephemeral),
            },
            "status": {
                "phase": "Running",
                "containerStatuses": status_of(&self.containers),
                "initContainerStatuses": status_of(&self.init),
                "ephemeralContainerStatuses": status_of(&self.ephemeral),
            },
        })
    }
}

struct Harness {
    api: MockApi,
    pods: Arc<KubePods>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Harness {
    fn start(listed: Vec<Value>, objects: Vec<(String, u16, Value)>, grace: Duration) -> Self {
        let api = MockApi::default();
        {
            let mut st = api.state();
            st.listed = listed;
            st.objects = objects.into_iter().map(|(p, c, v)| (p, (c, v))).collect();
        }
        let client = kube::Client::new(api.clone(), "default");
        let pods = Arc::new(KubePods::new(grace));
        let task = pods.spawn(client, NODE);
        Self { api, pods, task }
    }

    async fn until(&self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for the first list to be indexed and a watch to be open.
    async fn synced(&self) {
        self.until("the first sync and an open watch", |h| {
            h.pods.is_synced() && !h.api.state().watches.is_empty()
        })
        .await;
    }

    /// Sends one line on the newest watch stream; fails if the watcher dropped it.
    fn send_line(&self, line: String) {
        let st = self.api.state();
        let tx = st.watches.last().expect("an open watch");
        tx.send(Bytes::from(line + "\n"))
            .expect("the watch stream is still read");
    }

    fn send(&self, kind: &str, object: Value) {
        self.send_line(json!({"type": kind, "object": object}).to_string());
    }

    fn resolves(&self, id: &str) -> bool {
        self.pods.by_container(id).is_some()
    }

    fn requests(&self, prefix: &str) -> Vec<String> {
        let st = self.api.state();
        st.requests
            .iter()
            .filter(|r| r.starts_with(prefix))
            .cloned()
            .collect()
    }
}

const GRACE: Duration = Duration::from_secs(300);

#[tokio::test]
async fn list_and_watch_are_scoped_to_this_node() {
    let h = Harness::start(vec![], vec![], GRACE);
    h.synced().await;
    let reqs = h.requests("/api/v1/pods?");
    let (watches, lists): (Vec<_>, Vec<_>) = reqs
        .iter()
        .partition(|r| param(r.split_once('?').map_or("", |(_, q)| q), "watch").is_some());
    assert!(!lists.is_empty() && !watches.is_empty(), "{reqs:?}");
    for r in &reqs {
        let q = r.split_once('?').map_or("", |(_, q)| q);
        assert_eq!(
            param(q, "fieldSelector").as_deref(),
            Some("spec.nodeName=node-a"),
            "{r}"
        );
    }
    assert!(
        h.requests("/")
            .iter()
            .all(|r| r.starts_with("/api/v1/pods?")),
        "only this node's pods are read: {:?}",
        h.requests("/")
    );
}

#[tokio::test]
async fn containers_of_every_runtime_and_kind_resolve_by_id() {
    let mut p = PodSpec::new(
        "cart",
        vec![
            ("app", format!("containerd://{}", cid(1))),
            ("sidecar", format!("cri-o://{}", cid(2))),
            ("legacy", format!("docker://{}", cid(3))),
            ("starting", String::new()),
        ],
    );
    p.init = vec![("migrate", format!("containerd://{}", cid(4)))];
    p.ephemeral = vec![("debugger", format!("containerd://{}", cid(5)))];
    p.labels = json!({"tier": "web", "app": "cart", "version": "v2"});
    let h = Harness::start(vec![p.json()], vec![], GRACE);
    h.synced().await;

    for (n, container) in [
        (1, "app"),
        (2, "sidecar"),
        (3, "legacy"),
        (4, "migrate"),
        (5, "debugger"),
    ] {
        let info = h
            .pods
            .by_container(&cid(n))
            .unwrap_or_else(|| panic!("container {container} ({n}) is not indexed"));
        assert_eq!(info.container, container);
        assert_eq!(info.namespace, "shop");
        assert_eq!(info.pod, "cart");
        assert_eq!(info.pod_uid, "uid-cart");
        assert_eq!(
            info.image.as_deref(),
            Some(format!("registry.test/{container}:1").as_str())
        );
        assert_eq!(info.labels, ["app=cart", "tier=web", "version=v2"]);
        assert_eq!(
            (info.workload_kind, info.workload),
            (None, None),
            "a bare pod"
        );
    }
    assert_eq!(
        h.pods.len(),
        5,
        "the container without an id is not indexed"
    );
    assert!(!h.resolves(&cid(6)));
}

#[tokio::test]
async fn replicasets_and_jobs_are_read_once_to_find_deployments_and_cronjobs() {
    let rs_path = "/apis/apps/v1/namespaces/shop/replicasets/web-7d4b9c8f5";
    let job_path = "/apis/batch/v1/namespaces/shop/jobs/report-29000000";
    let objects = vec![
        (
            rs_path.to_string(),
            200,
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": "web-7d4b9c8f5", "namespace": "shop", "uid": "rs1",
                                // not the name's prefix: proves the ReplicaSet was read
                                "ownerReferences": owner("Deployment", "storefront")}}),
        ),
        (
            job_path.to_string(),
            200,
            json!({"apiVersion": "batch/v1", "kind": "Job",
                   "metadata": {"name": "report-29000000", "namespace": "shop", "uid": "j1",
                                "ownerReferences": owner("CronJob", "nightly-report")}}),
        ),
    ];
    let pods = vec![
        PodSpec::new("web-7d4b9c8f5-aaaaa", vec![("web", cid(1))])
            .owned("ReplicaSet", "web-7d4b9c8f5")
            .json(),
        PodSpec::new("web-7d4b9c8f5-bbbbb", vec![("web", cid(2))])
            .owned("ReplicaSet", "web-7d4b9c8f5")
            .json(),
        PodSpec::new("report-29000000-ccccc", vec![("report", cid(3))])
            .owned("Job", "report-29000000")
            .json(),
        PodSpec::new("db-0", vec![("db", cid(4))])
            .owned("StatefulSet", "db")
            .json(),
        PodSpec::new("agent-x1", vec![("agent", cid(5))])
            .owned("DaemonSet", "agent")
            .json(),
    ];
    let h = Harness::start(pods, objects, GRACE);
    h.synced().await;
    let workload = |n| {
        let i = h.pods.by_container(&cid(n)).expect("indexed");
        (
            i.workload_kind.expect("a kind"),
            i.workload.expect("a name"),
        )
    };
    let w = |k: &str, n: &str| (k.to_string(), n.to_string());
    assert_eq!(workload(1), w("Deployment", "storefront"));
    assert_eq!(workload(2), w("Deployment", "storefront"));
    assert_eq!(workload(3), w("CronJob", "nightly-report"));
    assert_eq!(workload(4), w("StatefulSet", "db"));
    assert_eq!(workload(5), w("DaemonSet", "agent"));
    assert_eq!(h.requests(rs_path).len(), 1, "the ReplicaSet is read once");
    assert_eq!(h.requests(job_path).len(), 1, "the Job is read once");
    assert!(h
        .requests("/apis/apps/v1/namespaces/shop/statefulsets")
        .is_empty());
    assert!(h
        .requests("/apis/apps/v1/namespaces/shop/daemonsets")
        .is_empty());
}

#[tokio::test]
async fn unreadable_owners_are_guessed_from_names() {
    let forbidden = status(403, "Forbidden");
    let objects = vec![
        (
            "/apis/apps/v1/namespaces/shop/replicasets/api-5f6d7c8b9".to_string(),
            403,
            forbidden.clone(),
        ),
        (
            "/apis/batch/v1/namespaces/shop/jobs/backup-29123456".to_string(),
            403,
            forbidden,
        ),
        // jobs/migrate is not there at all (404)
    ];
    let mut rs_pod = PodSpec::new("api-5f6d7c8b9-zzzzz", vec![("api", cid(1))])
        .owned("ReplicaSet", "api-5f6d7c8b9");
    rs_pod.labels = json!({"pod-template-hash": "5f6d7c8b9"});
    let pods = vec![
        rs_pod.json(),
        PodSpec::new("backup-29123456-q", vec![("backup", cid(2))])
            .owned("Job", "backup-29123456")
            .json(),
        PodSpec::new("migrate-q", vec![("migrate", cid(3))])
            .owned("Job", "migrate")
            .json(),
    ];
    let h = Harness::start(pods, objects, GRACE);
    h.synced().await;
    let workload = |n| {
        let i = h.pods.by_container(&cid(n)).expect("indexed");
        (
            i.workload_kind.unwrap_or_default(),
            i.workload.unwrap_or_default(),
        )
    };
    assert_eq!(workload(1), ("Deployment".into(), "api".into()));
    assert_eq!(workload(2), ("CronJob".into(), "backup".into()));
    assert_eq!(workload(3), ("Job".into(), "migrate".into()));
    assert_eq!(h.requests("/apis/batch/v1/namespaces/shop/jobs/").len(), 2);
}

#[tokio::test]
async fn a_deleted_pod_resolves_during_the_grace_period_only() {
    let grace = Duration::from_secs(3);
    let h = Harness::start(vec![], vec![], grace);
    h.synced().await;
    let short = PodSpec::new(
        "short-lived",
        vec![("job", format!("containerd://{}", cid(1)))],
    )
    .json();
    h.send("ADDED", short.clone());
    h.until("the added pod", |h| h.resolves(&cid(1))).await;
    h.send("DELETED", short);
    // Events are applied in order: once this one is in, the deletion is too.
    h.send("ADDED", PodSpec::new("marker", vec![("m", cid(2))]).json());
    h.until("the marker pod", |h| h.resolves(&cid(2))).await;
    let deleted_at = Instant::now();
    let info = h.pods.by_container(&cid(1));
    assert_eq!(
        info.map(|i| i.pod),
        Some("short-lived".to_string()),
        "a deleted pod still resolves within its grace period"
    );
    tokio::time::sleep(grace + Duration::from_millis(500)).await;
    assert!(deleted_at.elapsed() > grace);
    assert!(
        !h.resolves(&cid(1)),
        "a deleted pod is forgotten after its grace period"
    );
    assert!(h.resolves(&cid(2)), "a live pod stays");
}

#[tokio::test]
async fn a_relist_forgets_pods_deleted_while_the_watch_was_away() {
    let grace = Duration::from_secs(3);
    let gone = PodSpec::new("gone", vec![("g", cid(1))]).json();
    let h = Harness::start(vec![gone], vec![], grace);
    h.synced().await;
    assert!(h.resolves(&cid(1)));
    let lists_before = h.requests("/api/v1/pods?").len();
    // The pod went away while the watch expired: the next list no longer has it.
    h.api.state().listed = vec![PodSpec::new("new", vec![("n", cid(2))]).json()];
    h.send("ERROR", status(410, "Expired"));
    h.until("the relisted pod", |h| h.resolves(&cid(2))).await;
    assert!(h.requests("/api/v1/pods?").len() > lists_before);
    assert!(h.resolves(&cid(1)), "still within the grace period");
    tokio::time::sleep(grace + Duration::from_millis(500)).await;
    assert!(!h.resolves(&cid(1)), "unlisted pods count as deleted");
    assert!(h.resolves(&cid(2)));
}

#[tokio::test]
async fn malformed_objects_do_not_stop_the_watch() {
    let bad = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bad", "namespace": "shop", "uid": "uid-bad", "resourceVersion": "8"},
        "spec": "this is not a pod spec", "status": 42});
    let good = PodSpec::new("good", vec![("g", cid(1))]).json();
    // A malformed pod in the initial list leaves the other pods of the list in.
    let h = Harness::start(vec![bad.clone(), good], vec![], GRACE);
    h.synced().await;
    assert!(h.resolves(&cid(1)));
    // In the watch: a line that is not JSON, a malformed pod, then a good pod on the same
    // stream (send_line fails if the watcher dropped it).
    h.send_line("{this is not json".to_string());
    h.send("MODIFIED", bad);
    h.send("ADDED", PodSpec::new("after", vec![("a", cid(2))]).json());
    h.until("the pod sent after the malformed ones", |h| {
        h.resolves(&cid(2))
    })
    .await;
    assert!(h.resolves(&cid(1)));
    assert!(!h.task.is_finished(), "the watch task keeps running");
}

#[tokio::test]
async fn a_restart_keeps_the_old_container_id_and_adds_the_new_one() {
    let h = Harness::start(vec![], vec![], GRACE);
    h.synced().await;
    h.send("ADDED", PodSpec::new("crashy", vec![("c", cid(1))]).json());
    h.send(
        "MODIFIED",
        PodSpec::new("crashy", vec![("c", cid(2))]).json(),
    );
    h.until("the restarted container", |h| h.resolves(&cid(2)))
        .await;
    assert!(h.resolves(&cid(1)), "the old id lasts for the grace period");
}

/// The TLS stack has its crypto provider: building an https client does not panic.
#[tokio::test]
async fn an_https_client_builds() {
    let url = "https://127.0.0.1:6443".parse().expect("a url");
    let client = kube::Client::try_from(kube::Config::new(url));
    assert!(client.is_ok(), "{:?}", client.err());
}

#[tokio::test]
async fn the_watch_keeps_the_pods_table_of_addresses_and_their_spans() {
    use karmor_collector::attribution::PodLookup;
    let h = Harness::start(vec![], vec![], Duration::from_secs(3));
    h.synced().await;
    let mut web = PodSpec::new("web-1", vec![("web", cid(1))]).json();
    web["status"]["podIP"] = json!("10.1.0.5");
    web["status"]["podIPs"] = json!([{"ip": "10.1.0.5"}, {"ip": "fd00::5"}]);
    web["status"]["startTime"] = json!("2026-11-20T08:00:00Z");
    h.send("ADDED", web.clone());
    h.until("the added pod", |h| h.resolves(&cid(1))).await;
    let table = h.pods.pod_addresses();
    assert_eq!(table.len(), 2, "{table:?}");
    assert!(table.iter().all(|r| r.pod == "web-1"
        && r.namespace == "shop"
        && r.node == NODE
        && r.valid_to.is_none()
        && r.valid_from == 1_795_161_600_000_000_000));
    h.send("DELETED", web);
    h.send("ADDED", PodSpec::new("marker", vec![("m", cid(2))]).json());
    h.until("the marker pod", |h| h.resolves(&cid(2))).await;
    let table = h.pods.pod_addresses();
    assert_eq!(
        table.len(),
        2,
        "a pod without an address adds no row: {table:?}"
    );
    assert!(
        table.iter().all(|r| r.valid_to.is_some()),
        "a deleted pod's spans are closed: {table:?}"
    );
}
