//! Port-forward to a collector pod through the API server (`pods/portforward`, a WebSocket
//! carrying kube's `v4.channel.k8s.io`/`v5.channel.k8s.io` channel framing), turned into a
//! tonic [`Channel`]: tonic's connector opens one port-forward per connection and hands the
//! forwarded byte stream to hyper.
//!
//! Kubernetes RBAC on `pods/portforward` is the access control: the collector listens on the
//! pod's 127.0.0.1 only.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use karmor_proto::tonic::transport::{Channel, Endpoint};
use kube::core::Resource;
use kube::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Buffer between the WebSocket relay and hyper, each way.
const BUFFER: usize = 256 * 1024;
/// The data channel of the (only) forwarded port.
const DATA: u8 = 0;
/// Its error channel.
const ERROR: u8 = 1;
/// `v5.channel.k8s.io`: the channel of a close signal.
const CLOSE_SIGNAL: u8 = 255;

/// Why a port-forward could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PortForwardError {
    /// The API server refused or failed the upgrade (forbidden, pod gone, no WebSocket).
    #[error("port-forward to pod {namespace}/{pod} port {port}: {source}")]
    Open {
        /// Pod namespace.
        namespace: String,
        /// Pod name.
        pod: String,
        /// Port in the pod.
        port: u16,
        /// What kube said.
        #[source]
        source: kube::Error,
    },
    /// The gRPC connection over the forwarded stream failed.
    #[error("gRPC over port-forward to pod {namespace}/{pod} port {port}: {message}")]
    Connect {
        /// Pod namespace.
        namespace: String,
        /// Pod name.
        pod: String,
        /// Port in the pod.
        port: u16,
        /// tonic's error chain, and the kubelet's message when it sent one.
        message: String,
    },
}

/// The last message the kubelet sent on the error channel of a port-forward (e.g.
/// `connection refused` when nothing listens on the port inside the pod), or a broken
/// forwarding stream, shared with the caller so that a failed gRPC call can say why. The
/// relay records it before it ends the byte stream, so a call that fails on the ended stream
/// finds it.
#[derive(Debug, Clone, Default)]
pub struct ForwardErrors(Arc<Mutex<Option<String>>>);

impl ForwardErrors {
    /// The last error message, if any.
    pub fn last(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, message: String) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(message);
    }
}

/// Opens one port-forward to `port` of `pod` and returns its byte stream. Kubelet error
/// messages for the port are recorded in `errors`.
///
/// The stream is relayed here rather than by kube's `Portforwarder`, which can lose the
/// kubelet's message when the connection closes right after it (its relay fails on a write
/// after the close and drops the pending message) and rejects `v5.channel.k8s.io` close
/// signals.
pub async fn open(
    client: &Client,
    namespace: &str,
    pod: &str,
    port: u16,
    errors: &ForwardErrors,
) -> Result<DuplexStream, PortForwardError> {
    let open_error = |source| PortForwardError::Open {
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        port,
        source,
    };
    let request = kube::core::Request::new(Pod::url_path(&(), Some(namespace)))
        .portforward(pod, &[port])
        .map_err(|e| open_error(kube::Error::BuildRequest(e)))?;
    let ws = client
        .connect(request)
        .await
        .map_err(open_error)?
        .into_stream();
    let (local, remote) = tokio::io::duplex(BUFFER);
    tokio::spawn(relay(ws, remote, port, errors.clone()));
    Ok(local)
}

/// Relays the data channel of one forwarded port between the WebSocket and `io`. Frames are
/// `[channel, payload…]`; each channel first carries the port (u16, little-endian).
async fn relay<S>(ws: WebSocketStream<S>, io: DuplexStream, port: u16, errors: ForwardErrors)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let (mut from_local, mut to_local) = tokio::io::split(io);
    let from_pod = async move {
        let mut opened = [false, false];
        while let Some(message) = stream.next().await {
            let frame = match message {
                Ok(Message::Binary(frame)) => frame,
                Ok(Message::Close(_)) => break,
                Ok(_) => continue,
                Err(e) => {
                    errors.record(format!("port-forward stream broken: {e}"));
                    break;
                }
            };
            let Some((&channel, payload)) = frame.split_first() else {
                continue;
            };
            match channel {
                DATA | ERROR if !opened[usize::from(channel)] => {
                    if payload != port.to_le_bytes() {
                        errors.record(format!(
                            "port-forward: channel {channel} opened with {payload:?}, expected port {port}"
                        ));
                        break;
                    }
                    opened[usize::from(channel)] = true;
                }
                // hyper went away: nothing more to deliver.
                DATA => match to_local.write_all(payload).await {
                    Ok(()) => {}
                    Err(_) => break,
                },
                ERROR => errors.record(String::from_utf8_lossy(payload).trim().to_string()),
                // v5: the server closed the data channel.
                CLOSE_SIGNAL if payload.first() == Some(&DATA) => break,
                _ => {}
            }
        }
        // End of stream for hyper, after any error message was recorded.
        let _ = to_local.shutdown().await;
    };
    let to_pod = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match from_local.read(&mut buf[1..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            buf[0] = DATA;
            if sink
                .send(Message::binary(buf[..=n].to_vec()))
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    };
    tokio::join!(from_pod, to_pod);
}

/// A tonic channel to `port` of `pod`, each connection a new port-forward. The first
/// port-forward is opened before returning, so that a pod the API server will not forward to
/// fails here; a port nothing listens on fails at the first call, and [`describe`] with the
/// returned [`ForwardErrors`] then adds the kubelet's reason.
pub async fn channel(
    client: Client,
    namespace: &str,
    pod: &str,
    port: u16,
    connect_timeout: Duration,
) -> Result<(Channel, ForwardErrors), PortForwardError> {
    let errors = ForwardErrors::default();
    // The authority is only what hyper puts in `:authority`; the connector ignores it.
    let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .map_err(|e| PortForwardError::Connect {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            port,
            message: e.to_string(),
        })?
        .connect_timeout(connect_timeout)
        // A collector that stops answering mid-transfer is noticed, not waited for forever.
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    let connector = {
        let (namespace, pod, errors) = (namespace.to_string(), pod.to_string(), errors.clone());
        tower::service_fn(move |_: http::Uri| {
            let (client, namespace, pod, errors) = (
                client.clone(),
                namespace.clone(),
                pod.clone(),
                errors.clone(),
            );
            async move {
                open(&client, &namespace, &pod, port, &errors)
                    .await
                    .map(TokioIo::new)
            }
        })
    };
    match endpoint.connect_with_connector(connector).await {
        Ok(channel) => Ok((channel, errors)),
        Err(e) => Err(PortForwardError::Connect {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            port,
            message: describe(&e, &errors),
        }),
    }
}

/// An error's chain of causes on one line, followed by what the port-forward reported (the
/// kubelet's message, or a broken WebSocket) if anything.
pub fn describe(err: &(dyn std::error::Error + 'static), errors: &ForwardErrors) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    if let Some(kubelet) = errors.last() {
        text.push_str(" (port-forward: ");
        text.push_str(kubelet.trim());
        text.push(')');
    }
    text
}
