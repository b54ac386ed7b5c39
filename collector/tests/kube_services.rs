//! The Service watch against kube-rs's real `Client` over a mocked API server (a `tower`
//! service that answers `/api/v1/services` lists and watches): cluster IPs become rows of kind
//! `Service` of the pods table with their selector, ports and span; headless and ExternalName
//! Services give none; an update keeps the span, a delete closes it, and the rows reach the
//! writer through the pod watch's index. EndpointSlices (`/apis/discovery.k8s.io/v1/
//! endpointslices`) give rows of kind `Endpoint` for the endpoints no pod holds (the API
//! servers behind `kubernetes`), none for pods' endpoints.

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
use karmor_collector::kube_services::KubeServices;
use karmor_contract::pods::{PodAddress, KIND_ENDPOINT, KIND_SERVICE};
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

const NODE: &str = "node-a";
/// 2026-11-19T09:00:00Z in ns.
const CREATED_NS: i64 = 1_795_078_800_000_000_000;

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

const SERVICES: &str = "/api/v1/services";
const SLICES: &str = "/apis/discovery.k8s.io/v1/endpointslices";

#[derive(Default)]
struct State {
    requests: Vec<String>,
    listed: Vec<Value>,
    slices: Vec<Value>,
    watches: Vec<UnboundedSender<Bytes>>,
    slice_watches: Vec<UnboundedSender<Bytes>>,
}

/// The API server: lists and watches `/api/v1/services` and EndpointSlices; anything else is
/// 404.
#[derive(Clone, Default)]
struct MockApi(Arc<Mutex<State>>);

impl MockApi {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
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
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let mut st = self.state();
        st.requests.push(format!("{path}?{query}"));
        let resp = if path != SERVICES && path != SLICES {
            Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(MockBody::Full(Some(Bytes::from_static(b"{}"))))
        } else if query.split('&').any(|kv| kv == "watch=true") {
            let (tx, rx) = unbounded_channel();
            if path == SERVICES {
                st.watches.push(tx);
            } else {
                st.slice_watches.push(tx);
            }
            Response::builder()
                .status(StatusCode::OK)
                .body(MockBody::Lines(rx))
        } else {
            let list = if path == SERVICES {
                json!({"apiVersion": "v1", "kind": "ServiceList",
                       "metadata": {"resourceVersion": "10"}, "items": st.listed})
            } else {
                json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList",
                       "metadata": {"resourceVersion": "10"}, "items": st.slices})
            };
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(MockBody::Full(Some(Bytes::from(list.to_string()))))
        };
        std::future::ready(Ok(resp.expect("a valid response")))
    }
}

fn service(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                     "resourceVersion": "7", "creationTimestamp": "2026-11-19T09:00:00Z"},
        "spec": spec,
    })
}

fn kube_dns() -> Value {
    service(
        "kube-system",
        "kube-dns",
        json!({
            "type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "selector": {"k8s-app": "kube-dns"},
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": "metrics"},
            ],
        }),
    )
}

fn rows_of<'a>(rows: &'a [PodAddress], name: &str) -> Vec<&'a PodAddress> {
    rows.iter().filter(|r| r.pod == name).collect()
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn cluster_ips_become_service_rows_with_selector_ports_and_span() {
    let api = MockApi::default();
    api.state().listed = vec![
        kube_dns(),
        service(
            "shop",
            "web",
            json!({"clusterIP": "10.96.5.5", "clusterIPs": ["10.96.5.5", "fd00:96::5"],
                   "ipFamilies": ["IPv4", "IPv6"], "selector": {"app": "web", "tier": "front"},
                   "ports": [{"port": 80, "targetPort": "http"}]}),
        ),
        service(
            "shop",
            "db-headless",
            json!({"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}),
        ),
        service(
            "shop",
            "payments",
            json!({"type": "ExternalName", "externalName": "pay.example.com"}),
        ),
    ];
    let client = kube::Client::new(api.clone(), "default");
    let services = Arc::new(KubeServices::new());
    let task = services.spawn(client, NODE);
    until("the first sync and an open watch", || {
        services.is_synced() && !api.state().watches.is_empty()
    })
    .await;

    // Through the pod watch's index, as the writer reads it.
    let pods = KubePods::new(Duration::from_secs(300)).with_services(services.clone());
    let rows = pods.pod_addresses();
    assert_eq!(
        rows.len(),
        3,
        "kube-dns once, web twice (dual stack): {rows:?}"
    );
    let dns = rows_of(&rows, "kube-dns");
    assert_eq!(dns.len(), 1);
    let dns = dns[0];
    assert_eq!(
        (
            dns.kind.as_deref(),
            dns.workload_kind.as_deref(),
            dns.workload.as_deref()
        ),
        (Some(KIND_SERVICE), Some(KIND_SERVICE), Some("kube-dns"))
    );
    assert!(dns.is_service());
    assert_eq!(
        (dns.namespace.as_str(), dns.ip.as_str(), dns.node.as_str()),
        ("kube-system", "10.96.0.10", NODE)
    );
    assert_eq!(dns.labels, ["k8s-app=kube-dns"], "the selector");
    assert_eq!(
        dns.ports,
        ["TCP/53->53", "TCP/9153->metrics", "UDP/53->53"],
        "sorted, the target a number or a port name"
    );
    assert_eq!((dns.valid_from, dns.valid_to), (CREATED_NS, None));
    let web: Vec<&str> = rows_of(&rows, "web")
        .iter()
        .map(|r| r.ip.as_str())
        .collect();
    assert_eq!(web, ["10.96.5.5", "fd00:96::5"]);
    assert_eq!(rows_of(&rows, "web")[0].ports, ["TCP/80->http"]);
    assert_eq!(rows_of(&rows, "web")[0].labels, ["app=web", "tier=front"]);

    // Every Service, cluster-wide: no field or label selector.
    let reqs = api.state().requests.clone();
    assert!(
        reqs.iter()
            .all(|r| r.starts_with("/api/v1/services?") || r.starts_with(SLICES)),
        "{reqs:?}"
    );
    assert!(reqs.iter().any(|r| r.contains("watch=true")), "{reqs:?}");
    assert!(
        reqs.iter().all(|r| !r.contains("fieldSelector")),
        "{reqs:?}"
    );

    // A new selector keeps the span; a deleted Service's spans close.
    let mut changed = kube_dns();
    changed["spec"]["selector"] = json!({"k8s-app": "coredns"});
    let send = |kind: &str, obj: Value| {
        let st = api.state();
        let tx = st.watches.last().expect("an open watch");
        tx.send(Bytes::from(
            json!({"type": kind, "object": obj}).to_string() + "\n",
        ))
        .expect("the watch is read");
    };
    send("MODIFIED", changed);
    let web_obj = api.state().listed[1].clone();
    send("DELETED", web_obj);
    until("the update and the delete", || {
        let rows = services.snapshot();
        rows_of(&rows, "kube-dns")
            .first()
            .is_some_and(|r| r.labels == ["k8s-app=coredns"])
            && rows_of(&rows, "web").iter().all(|r| r.valid_to.is_some())
    })
    .await;
    let rows = services.snapshot();
    let dns = rows_of(&rows, "kube-dns");
    assert_eq!(dns.len(), 1, "{rows:?}");
    assert_eq!((dns[0].valid_from, dns[0].valid_to), (CREATED_NS, None));
    assert_eq!(rows_of(&rows, "web").len(), 2);
    // A malformed object is skipped, the watch goes on.
    send(
        "ADDED",
        json!({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": "bad", "namespace": "x", "uid": "uid-bad",
                                      "resourceVersion": "8"},
                         "spec": {"ports": "not a list"}}),
    );
    send(
        "ADDED",
        service("shop", "late", json!({"clusterIP": "10.96.7.7"})),
    );
    until("the Service after the malformed one", || {
        !rows_of(&services.snapshot(), "late").is_empty()
    })
    .await;
    task.abort();
}

fn slice(name: &str, service: &str, endpoints: Value, ports: Value) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                     "resourceVersion": "7", "creationTimestamp": "2026-11-19T09:00:00Z",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    })
}

#[tokio::test]
async fn endpoints_no_pod_holds_become_endpoint_rows() {
    let api = MockApi::default();
    api.state().listed = vec![service(
        "default",
        "kubernetes",
        json!({"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443,
               "protocol": "TCP", "targetPort": 6443}]}),
    )];
    api.state().slices = vec![
        // The API servers: endpoints without a targetRef.
        slice(
            "kubernetes",
            "kubernetes",
            json!([{"addresses": ["192.168.0.11"], "conditions": {"ready": true}},
                   {"addresses": ["192.168.0.12"]}]),
            json!([{"name": "https", "port": 6443, "protocol": "TCP"}]),
        ),
        // A Service's pods: the pods table has them, no row; an unready endpoint: none.
        slice(
            "web-abcde",
            "web",
            json!([{"addresses": ["10.244.1.5"], "targetRef": {"kind": "Pod", "name": "web-1"}},
                   {"addresses": ["10.9.9.9"], "conditions": {"ready": false}}]),
            json!([{"port": 8080}]),
        ),
    ];
    let client = kube::Client::new(api.clone(), "default");
    let services = Arc::new(KubeServices::new());
    let task = services.spawn(client, NODE);
    until("both syncs and open watches", || {
        let st = api.state();
        services.is_synced()
            && services.slices_synced()
            && !st.watches.is_empty()
            && !st.slice_watches.is_empty()
    })
    .await;
    let rows = services.snapshot();
    let eps: Vec<&PodAddress> = rows.iter().filter(|r| r.is_endpoint()).collect();
    let addrs: Vec<&str> = eps.iter().map(|r| r.ip.as_str()).collect();
    assert_eq!(addrs, ["192.168.0.11", "192.168.0.12"], "{rows:?}");
    for e in &eps {
        assert_eq!(
            (
                e.namespace.as_str(),
                e.pod.as_str(),
                e.kind.as_deref(),
                e.workload.as_deref(),
                e.pod_uid.as_deref()
            ),
            (
                "default",
                "kubernetes",
                Some(KIND_ENDPOINT),
                Some("kubernetes"),
                Some("uid-kubernetes")
            )
        );
        assert_eq!(e.ports, ["TCP/6443/https"]);
        assert_eq!((e.valid_from, e.valid_to), (CREATED_NS, None));
        assert!(!e.is_service());
    }
    // The Service's own row is still there.
    assert_eq!(
        rows.iter().filter(|r| r.is_service()).count(),
        1,
        "{rows:?}"
    );
    let reqs = api.state().requests.clone();
    assert!(
        reqs.iter()
            .any(|r| r.starts_with(SLICES) && r.contains("watch=true")),
        "{reqs:?}"
    );

    // An API server leaves the slice: its span closes, the other's stays open; the slice's
    // deletion closes every span, and the Service's row is not touched.
    let mut one = api.state().slices[0].clone();
    one["endpoints"] = json!([{"addresses": ["192.168.0.11"]}]);
    let send = |obj: Value, kind: &str| {
        let st = api.state();
        let tx = st.slice_watches.last().expect("an open watch");
        tx.send(Bytes::from(
            json!({"type": kind, "object": obj}).to_string() + "\n",
        ))
        .expect("the watch is read");
    };
    send(one.clone(), "MODIFIED");
    until("the update", || {
        services
            .snapshot()
            .iter()
            .any(|r| r.ip == "192.168.0.12" && r.valid_to.is_some())
    })
    .await;
    let open: Vec<String> = services
        .snapshot()
        .into_iter()
        .filter(|r| r.is_endpoint() && r.valid_to.is_none())
        .map(|r| r.ip)
        .collect();
    assert_eq!(open, ["192.168.0.11"]);
    send(one, "DELETED");
    until("the delete", || {
        services
            .snapshot()
            .iter()
            .filter(|r| r.is_endpoint())
            .all(|r| r.valid_to.is_some())
    })
    .await;
    assert!(services
        .snapshot()
        .iter()
        .any(|r| r.is_service() && r.valid_to.is_none()));
    task.abort();
}
