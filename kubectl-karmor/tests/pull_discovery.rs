//! Collector discovery against kube-rs's real `Client` over a mocked API server (a `tower`
//! service): the request (namespace, label selector), Running/Ready filtering, one collector
//! per node, the gRPC port, and errors that name what failed.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use kubectl_karmor::cluster::discover::{
    discover, CollectorPod, CollectorSelector, DiscoverError, Unavailable, DEFAULT_NAMESPACE,
    DEFAULT_SELECTOR,
};
use serde_json::{json, Value};

/// A one-chunk response body.
struct Full(Option<Bytes>);

impl http_body::Body for Full {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.take().map(|b| Ok(Frame::data(b))))
    }
}

/// The API server: answers every request with one status and body, and records
/// `METHOD path?query`.
#[derive(Clone)]
struct MockApi {
    status: u16,
    body: Value,
    requests: Arc<Mutex<Vec<String>>>,
}

impl MockApi {
    fn new(status: u16, body: Value) -> Self {
        MockApi {
            status,
            body,
            requests: Arc::default(),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn client(&self) -> kube::Client {
        kube::Client::new(self.clone(), "default")
    }
}

impl tower::Service<Request<kube::client::Body>> for MockApi {
    type Response = Response<Full>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Full>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(format!(
                "{} {}?{}",
                req.method(),
                req.uri().path(),
                req.uri().query().unwrap_or("")
            ));
        let response = Response::builder()
            .status(StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", "application/json")
            .body(Full(Some(Bytes::from(self.body.to_string()))))
            .expect("a valid response");
        std::future::ready(Ok(response))
    }
}

/// An API server that cannot be reached: every call fails at the transport.
#[derive(Clone)]
struct Unreachable;

impl tower::Service<Request<kube::client::Body>> for Unreachable {
    type Response = Response<Full>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Response<Full>, std::io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<kube::client::Body>) -> Self::Future {
        std::future::ready(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused (127.0.0.1:6443)",
        )))
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
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A collector pod as the API server returns it.
struct PodSpec<'a> {
    name: &'a str,
    node: Option<&'a str>,
    phase: &'a str,
    ready: bool,
    waiting: Option<&'a str>,
    created: &'a str,
    terminating: bool,
    grpc_port: Option<(&'a str, u16)>,
}

impl<'a> PodSpec<'a> {
    fn ready(name: &'a str, node: &'a str) -> Self {
        PodSpec {
            name,
            node: Some(node),
            phase: "Running",
            ready: true,
            waiting: None,
            created: "2026-11-20T10:00:00Z",
            terminating: false,
            grpc_port: None,
        }
    }

    fn json(&self, namespace: &str) -> Value {
        let mut metadata = json!({
            "name": self.name, "namespace": namespace, "uid": format!("uid-{}", self.name),
            "creationTimestamp": self.created,
            "labels": {"app.kubernetes.io/name": "karmor-collector"},
        });
        if self.terminating {
            metadata["deletionTimestamp"] = json!("2026-11-21T00:00:00Z");
        }
        let mut container = json!({"name": "karmor-collector", "image": "karmor-collector:dev"});
        if let Some((name, port)) = self.grpc_port {
            container["ports"] = json!([
                {"name": "metrics", "containerPort": 9464, "protocol": "TCP"},
                {"name": name, "containerPort": port, "protocol": "TCP"},
            ]);
        }
        let mut spec = json!({"containers": [container]});
        if let Some(node) = self.node {
            spec["nodeName"] = json!(node);
        }
        let state = match self.waiting {
            Some(reason) => json!({"waiting": {"reason": reason}}),
            None => json!({"running": {"startedAt": self.created}}),
        };
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec,
            "status": {
                "phase": self.phase,
                "conditions": [{"type": "Ready", "status": if self.ready {"True"} else {"False"}}],
                "containerStatuses": [{
                    "name": "karmor-collector", "ready": self.ready, "restartCount": 0,
                    "image": "karmor-collector:dev", "imageID": "", "state": state,
                }],
            },
        })
    }
}

fn pod_list(namespace: &str, pods: &[PodSpec<'_>]) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "7"},
        "items": pods.iter().map(|p| p.json(namespace)).collect::<Vec<_>>(),
    })
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code,
           "reason": reason, "message": message, "metadata": {}})
}

fn default_selector() -> CollectorSelector {
    CollectorSelector {
        namespace: DEFAULT_NAMESPACE.to_string(),
        label_selector: DEFAULT_SELECTOR.to_string(),
        port: None,
        default_port: 50051,
    }
}

fn collector(node: &str, pod: &str, port: u16) -> CollectorPod {
    CollectorPod {
        node: node.to_string(),
        namespace: DEFAULT_NAMESPACE.to_string(),
        pod: pod.to_string(),
        port,
    }
}

#[tokio::test]
async fn keeps_running_ready_pods_one_per_node_and_reports_the_others() {
    let pods = [
        // node-a: a rolling update left two ready pods; the newer one is used.
        PodSpec {
            created: "2026-11-20T09:00:00Z",
            ..PodSpec::ready("collector-old", "node-a")
        },
        PodSpec {
            created: "2026-11-20T11:00:00Z",
            ..PodSpec::ready("collector-new", "node-a")
        },
        // node-b: running, not ready, container crash-looping.
        PodSpec {
            ready: false,
            waiting: Some("CrashLoopBackOff"),
            ..PodSpec::ready("collector-b", "node-b")
        },
        // node-c: pending, image cannot be pulled.
        PodSpec {
            phase: "Pending",
            ready: false,
            waiting: Some("ImagePullBackOff"),
            ..PodSpec::ready("collector-c", "node-c")
        },
        // node-d: the old pod terminates while its ready replacement runs: nothing reported.
        PodSpec {
            terminating: true,
            ..PodSpec::ready("collector-d-old", "node-d")
        },
        PodSpec::ready("collector-d", "node-d"),
        // node-e: declares its gRPC port by name.
        PodSpec {
            grpc_port: Some(("grpc", 7443)),
            ..PodSpec::ready("collector-e", "node-e")
        },
        // node-f: only a terminating pod.
        PodSpec {
            terminating: true,
            ..PodSpec::ready("collector-f", "node-f")
        },
        // Not scheduled yet.
        PodSpec {
            node: None,
            phase: "Pending",
            ready: false,
            ..PodSpec::ready("collector-x", "")
        },
    ];
    let api = MockApi::new(200, pod_list(DEFAULT_NAMESPACE, &pods));
    let found = discover(&api.client(), &default_selector())
        .await
        .expect("discovery succeeds");

    let requests = api.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (method_path, query) = requests[0].split_once('?').expect("a query");
    assert_eq!(method_path, "GET /api/v1/namespaces/karmor-system/pods");
    assert_eq!(
        param(query, "labelSelector").as_deref(),
        Some("app.kubernetes.io/name=karmor-collector")
    );

    assert_eq!(
        found.collectors,
        vec![
            collector("node-a", "collector-new", 50051),
            collector("node-d", "collector-d", 50051),
            collector("node-e", "collector-e", 7443),
        ]
    );
    let unavailable = |node: &str, pod: &str, reason: &str| Unavailable {
        node: node.to_string(),
        pod: pod.to_string(),
        reason: reason.to_string(),
    };
    assert_eq!(
        found.unavailable,
        vec![
            unavailable("(unscheduled)", "collector-x", "phase Pending"),
            unavailable("node-b", "collector-b", "not ready: CrashLoopBackOff"),
            unavailable("node-c", "collector-c", "phase Pending: ImagePullBackOff"),
            unavailable("node-f", "collector-f", "terminating"),
        ]
    );
}

#[tokio::test]
async fn namespace_selector_and_port_are_the_callers() {
    let pods = [PodSpec {
        grpc_port: Some(("grpc", 7443)),
        ..PodSpec::ready("edge-collector-1", "edge-1")
    }];
    let api = MockApi::new(200, pod_list("observability", &pods));
    let selector = CollectorSelector {
        namespace: "observability".to_string(),
        label_selector: "app=karmor,tier in (edge,core)".to_string(),
        port: Some(9000),
        default_port: 50051,
    };
    let found = discover(&api.client(), &selector)
        .await
        .expect("discovery succeeds");
    let requests = api.requests();
    let (method_path, query) = requests[0].split_once('?').expect("a query");
    assert_eq!(method_path, "GET /api/v1/namespaces/observability/pods");
    assert_eq!(
        param(query, "labelSelector").as_deref(),
        Some("app=karmor,tier in (edge,core)")
    );
    // --port wins over the declared container port.
    assert_eq!(
        found.collectors,
        vec![CollectorPod {
            node: "edge-1".to_string(),
            namespace: "observability".to_string(),
            pod: "edge-collector-1".to_string(),
            port: 9000,
        }]
    );
    assert!(found.unavailable.is_empty());
}

#[tokio::test]
async fn no_collector_pods_says_how_to_deploy_them() {
    let api = MockApi::new(200, pod_list(DEFAULT_NAMESPACE, &[]));
    let err = discover(&api.client(), &default_selector())
        .await
        .expect_err("an empty list is an error");
    assert!(matches!(err, DiscoverError::NoCollectors { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("karmor-system"), "{text}");
    assert!(
        text.contains("app.kubernetes.io/name=karmor-collector"),
        "{text}"
    );
    assert!(text.contains("kubectl apply -k collector/deploy"), "{text}");
}

#[tokio::test]
async fn forbidden_names_the_namespace_and_the_permissions_needed() {
    let api = MockApi::new(
        403,
        status(
            403,
            "Forbidden",
            "pods is forbidden: User \"dev\" cannot list resource \"pods\" in API group \"\" in the namespace \"karmor-system\"",
        ),
    );
    let err = discover(&api.client(), &default_selector())
        .await
        .expect_err("forbidden is an error");
    let text = err.to_string();
    assert!(
        text.contains("cannot list pods in namespace karmor-system"),
        "{text}"
    );
    assert!(text.contains("User \"dev\" cannot list"), "{text}");
    assert!(text.contains("pods/portforward"), "{text}");
}

#[tokio::test]
async fn a_bad_selector_points_at_the_flag() {
    let api = MockApi::new(
        400,
        status(
            400,
            "BadRequest",
            "unable to parse requirement: invalid label key",
        ),
    );
    let mut selector = default_selector();
    selector.label_selector = "=oops".to_string();
    let err = discover(&api.client(), &selector)
        .await
        .expect_err("a bad selector is an error");
    let text = err.to_string();
    assert!(text.contains("selector =oops"), "{text}");
    assert!(text.contains("unable to parse requirement"), "{text}");
    assert!(text.contains("--selector"), "{text}");
}

#[tokio::test]
async fn an_unreachable_api_server_is_an_error_naming_the_namespace() {
    let client = kube::Client::new(Unreachable, "default");
    let err = discover(&client, &default_selector())
        .await
        .expect_err("unreachable is an error");
    let text = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(
        text.contains("cannot list pods in namespace karmor-system"),
        "{text}"
    );
    assert!(text.contains("connection refused"), "{text}");
}
