//! A loopback Kubernetes API server, enough for `kubectl karmor pull`: it lists pods (a
//! fixed pod list, for any namespace) and serves `pods/<name>/portforward` the way the API
//! server and the kubelet do: an HTTP/1.1 upgrade to a WebSocket with a `vN.channel.k8s.io`
//! subprotocol, an opening frame `[channel, port_lo, port_hi]` on the data and error channels,
//! then the data channel relayed to a TCP port on loopback (the "pod"), or a kubelet-style
//! message on the error channel when that port refuses the connection.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Where port-forwards go.
#[derive(Debug, Clone)]
pub enum Forward {
    /// Every pod's port is this loopback port.
    To(u16),
    /// Per pod name, a loopback port; other pods refuse the connection.
    Pods(HashMap<String, u16>),
    /// The API server refuses the upgrade with this status code and message.
    Refuse(u16, &'static str),
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, ….
    pub method: String,
    /// The path.
    pub path: String,
    /// The raw query.
    pub query: String,
    /// `ports` of a port-forward.
    pub ports: Vec<u16>,
    /// The subprotocols the client offered, in order.
    pub protocols: Vec<String>,
}

struct State {
    forward: Forward,
    protocol: &'static str,
    pods: Value,
    requests: Vec<Recorded>,
    /// Per pod: cut the next port-forward after this many bytes from the pod.
    cuts: HashMap<String, usize>,
}

/// The server; it runs until the test's runtime ends.
pub struct FakeApiServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

fn status_body(code: u16, message: &str) -> Value {
    let reason = match code {
        403 => "Forbidden",
        404 => "NotFound",
        _ => "InternalError",
    };
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code,
           "reason": reason, "message": message, "metadata": {}})
}

fn json_response(code: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

impl FakeApiServer {
    /// Starts a server that picks `v5.channel.k8s.io`.
    pub async fn start(forward: Forward) -> Self {
        Self::start_with_protocol(forward, "v5.channel.k8s.io").await
    }

    /// Starts a server that answers upgrades with `protocol`.
    pub async fn start_with_protocol(forward: Forward, protocol: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the API server");
        let addr = listener.local_addr().expect("a local address");
        let state = Arc::new(Mutex::new(State {
            forward,
            protocol,
            pods: json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
            requests: Vec::new(),
            cuts: HashMap::new(),
        }));
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(handle(&st, req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        FakeApiServer { addr, state }
    }

    /// Cuts the next port-forward to `pod` (the connection drops, no close frame) once it has
    /// relayed `bytes` bytes from the pod.
    pub fn cut_next(&self, pod: &str, bytes: usize) {
        self.lock().cuts.insert(pod.to_string(), bytes);
    }

    /// Sets the pod list every `GET …/pods` returns.
    pub fn set_pods(&self, list: Value) {
        self.lock().pods = list;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client for this server (plain HTTP, no credentials).
    pub fn client(&self) -> kube::Client {
        let url = self.url().parse().expect("a valid URL");
        kube::Client::try_from(kube::Config::new(url)).expect("a client")
    }

    /// A kubeconfig file content pointing at this server.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster: {{server: '{}'}}\nusers:\n- name: dev\n  user: {{token: t}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: dev}}\n",
            self.url()
        )
    }
}

fn handle(state: &Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let ports: Vec<u16> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("ports="))
        .flat_map(|v| v.split("%2C").flat_map(|p| p.split(',')))
        .filter_map(|p| p.parse().ok())
        .collect();
    let protocols: Vec<String> = req
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(',').map(|p| p.trim().to_string()).collect())
        .unwrap_or_default();
    let (forward, protocol, pods, cut) = {
        let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
        let cut = path
            .strip_suffix("/portforward")
            .and_then(|p| p.rsplit('/').next())
            .and_then(|pod| st.cuts.remove(pod));
        st.requests.push(Recorded {
            method: req.method().to_string(),
            path: path.clone(),
            query: query.clone(),
            ports: ports.clone(),
            protocols: protocols.clone(),
        });
        (st.forward.clone(), st.protocol, st.pods.clone(), cut)
    };

    if let Some(pod) = path
        .strip_suffix("/portforward")
        .and_then(|p| p.rsplit('/').next())
        .map(str::to_string)
    {
        let target = match &forward {
            Forward::Refuse(code, message) => {
                return json_response(*code, &status_body(*code, message))
            }
            Forward::To(port) => Some(*port),
            Forward::Pods(map) => map.get(&pod).copied(),
        };
        if !protocols.iter().any(|p| p == protocol) {
            return json_response(400, &status_body(400, "no supported subprotocol"));
        }
        let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
            return json_response(400, &status_body(400, "not a WebSocket upgrade"));
        };
        let accept = derive_accept_key(key.as_bytes());
        let Some(&port) = ports.first() else {
            return json_response(400, &status_body(400, "no ports"));
        };
        tokio::spawn(async move {
            if let Ok(upgraded) = hyper::upgrade::on(req).await {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                relay(ws, &pod, port, target, cut).await;
            }
        });
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::UPGRADE, "websocket")
            .header(header::CONNECTION, "Upgrade")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept)
            .header(header::SEC_WEBSOCKET_PROTOCOL, protocol)
            .body(Full::new(Bytes::new()))
            .expect("a valid response");
    }
    if path.starts_with("/api/v1/") && path.ends_with("/pods") {
        return json_response(200, &pods);
    }
    json_response(404, &status_body(404, &format!("{path} not found")))
}

/// The kubelet's side of one port-forward; with `cut`, the connection is dropped once that
/// many bytes came from the pod.
async fn relay<S>(
    ws: WebSocketStream<S>,
    pod: &str,
    port: u16,
    target: Option<u16>,
    cut: Option<usize>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let [lo, hi] = port.to_le_bytes();
    for channel in [0u8, 1] {
        if sink
            .send(Message::binary(vec![channel, lo, hi]))
            .await
            .is_err()
        {
            return;
        }
    }
    let connected = match target {
        Some(t) => TcpStream::connect(("127.0.0.1", t)).await,
        None => Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        )),
    };
    let tcp = match connected {
        Ok(tcp) => tcp,
        Err(e) => {
            let message = format!(
                "an error occurred forwarding {port} -> {port}: error forwarding port {port} to pod {pod}, uid : failed to connect to localhost:{port} inside namespace: dial tcp4 127.0.0.1:{port}: connect: {e}"
            );
            let mut frame = vec![1u8];
            frame.extend_from_slice(message.as_bytes());
            let _ = sink.send(Message::binary(frame)).await;
            let _ = sink.send(Message::Close(None)).await;
            return;
        }
    };
    let (mut tcp_read, mut tcp_write) = tcp.into_split();
    let (cut_tx, mut cut_rx) = tokio::sync::oneshot::channel::<()>();
    let to_pod = async move {
        loop {
            let msg = tokio::select! {
                msg = stream.next() => msg,
                // The cut: stop reading too, so that the connection drops.
                Ok(()) = &mut cut_rx => break,
            };
            match msg {
                Some(Ok(Message::Binary(b))) if b.len() > 1 && b[0] == 0 => {
                    match tcp_write.write_all(&b[1..]).await {
                        Ok(()) => {}
                        Err(_) => break,
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
        let _ = tcp_write.shutdown().await;
    };
    let from_pod = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut budget = cut.unwrap_or(usize::MAX);
        loop {
            let want = buf.len().min(budget);
            if want == 0 {
                // The cut: drop the WebSocket without a close frame.
                let _ = cut_tx.send(());
                return;
            }
            match tcp_read.read(&mut buf[..want]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    budget -= n;
                    let mut frame = Vec::with_capacity(n + 1);
                    frame.push(0u8);
                    frame.extend_from_slice(&buf[..n]);
                    if sink.send(Message::binary(frame)).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    };
    tokio::join!(to_pod, from_pod);
}
