//! Watching KubeArmor's relay live (`kubectl karmor observe --live`): the relay pod is found by
//! namespace and label selector and reached through a port-forward (or a `HOST:PORT` is
//! dialled directly), `WatchLogs("system")` and `WatchAlerts("policy")` are opened with the
//! collector crate's client ([`watch_kubearmor`], the mapping of `kubectl karmor import`), and
//! every message is handed on as a [`LiveItem`].
//!
//! A cut stream is reopened with exponential backoff (discovery again, so a restarted relay
//! pod is found). Messages redelivered after a reconnect are dropped by their key (a hash of
//! the stream and of the whole protobuf message, [`KubeArmorEvent::key`]); the last
//! [`LiveConfig::recent_keys`] keys are remembered.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use karmor_contract::Event;
use karmor_proto::{
    connect, watch_kubearmor, ClientError, KubeArmorEvent, KubeArmorFeeds, RecentKeys,
};
use kube::Client;
use tokio::sync::mpsc;

use crate::cluster::discover::{discover, CollectorSelector, DiscoverError};
use crate::cluster::portforward::{self, ForwardErrors, PortForwardError};

/// The namespace KubeArmor is installed in (its Helm chart and operator).
pub const DEFAULT_RELAY_NAMESPACE: &str = "kubearmor";
/// The label of the `kubearmor-relay` Deployment's pods.
pub const DEFAULT_RELAY_SELECTOR: &str = "kubearmor-app=kubearmor-relay";

/// Where the relay is.
#[derive(Clone)]
pub enum Relay {
    /// A relay pod of this cluster, reached through a port-forward.
    Cluster {
        /// The API server.
        client: Client,
        /// The relay's namespace.
        namespace: String,
        /// The relay pods' label selector.
        selector: String,
        /// The relay's gRPC port in the pod.
        port: u16,
    },
    /// A relay (or a KubeArmor daemon) at `HOST:PORT`, dialled directly.
    Endpoint(String),
}

/// How the feed connects and reconnects.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Streams to watch.
    pub feeds: KubeArmorFeeds,
    /// First pause before reconnecting.
    pub backoff_min: Duration,
    /// Longest pause before reconnecting.
    pub backoff_max: Duration,
    /// Keys of recent messages remembered to drop redeliveries.
    pub recent_keys: usize,
    /// Timeout for opening the gRPC connection.
    pub connect_timeout: Duration,
}

impl Default for LiveConfig {
    /// Both streams, backoff 500 ms to 30 s, 65 536 recent keys, 10 s to connect.
    fn default() -> Self {
        LiveConfig {
            feeds: KubeArmorFeeds::default(),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            recent_keys: 65_536,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the relay could not be watched.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The relay pods could not be listed.
    #[error("{0}")]
    Discover(DiscoverError),
    /// No pod matches the selector.
    #[error(
        "no KubeArmor relay pod in namespace {namespace} with selector {selector}: is KubeArmor \
         installed with its relay? Set --relay-namespace and --relay-selector, or \
         --relay-endpoint HOST:PORT"
    )]
    NoRelay {
        /// The namespace.
        namespace: String,
        /// The selector.
        selector: String,
    },
    /// Relay pods exist but none is Running and Ready.
    #[error("no ready KubeArmor relay pod in namespace {namespace}: {reasons}")]
    NotReady {
        /// The namespace.
        namespace: String,
        /// `pod: reason` of each pod.
        reasons: String,
    },
    /// The port-forward could not be opened.
    #[error("{0}")]
    PortForward(PortForwardError),
    /// The gRPC connection or a watch call failed.
    #[error("{relay}: {message}")]
    Client {
        /// The relay.
        relay: String,
        /// The error, with the kubelet's reason when a port-forward gave one.
        message: String,
    },
}

/// A watch of both streams: messages, or the error that ended the connection.
pub type Watch = Pin<Box<dyn Stream<Item = Result<KubeArmorEvent, ClientError>> + Send>>;

/// An open connection to the relay.
pub struct Opened {
    /// The merged streams.
    pub watch: Watch,
    /// What was connected to: `relay pod NS/NAME (port-forward)` or `relay HOST:PORT`.
    pub label: String,
    /// What the port-forward reported (empty for an endpoint).
    pub forward_errors: ForwardErrors,
}

/// Finds the relay (for [`Relay::Cluster`]), connects and opens the watches.
pub async fn open(relay: &Relay, cfg: &LiveConfig) -> Result<Opened, LiveError> {
    let (channel, label, forward_errors) = match relay {
        Relay::Endpoint(addr) => {
            let channel = tokio::time::timeout(cfg.connect_timeout, connect(addr))
                .await
                .map_err(|_| LiveError::Client {
                    relay: format!("relay {addr}"),
                    message: format!("no connection within {:?}", cfg.connect_timeout),
                })?
                .map_err(|e| LiveError::Client {
                    relay: format!("relay {addr}"),
                    message: e.to_string(),
                })?;
            (channel, format!("relay {addr}"), ForwardErrors::default())
        }
        Relay::Cluster {
            client,
            namespace,
            selector,
            port,
        } => {
            let wanted = CollectorSelector {
                namespace: namespace.clone(),
                label_selector: selector.clone(),
                port: Some(*port),
                default_port: *port,
            };
            let found = match discover(client, &wanted).await {
                Ok(found) => found,
                Err(DiscoverError::NoCollectors { .. }) => {
                    return Err(LiveError::NoRelay {
                        namespace: namespace.clone(),
                        selector: selector.clone(),
                    })
                }
                Err(e) => return Err(LiveError::Discover(e)),
            };
            let Some(pod) = found.collectors.first() else {
                let reasons = found
                    .unavailable
                    .iter()
                    .map(|u| format!("{}: {}", u.pod, u.reason))
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(LiveError::NotReady {
                    namespace: namespace.clone(),
                    reasons,
                });
            };
            let (channel, errors) = portforward::channel(
                client.clone(),
                &pod.namespace,
                &pod.pod,
                pod.port,
                cfg.connect_timeout,
            )
            .await
            .map_err(LiveError::PortForward)?;
            let label = format!(
                "relay pod {}/{} port {} (port-forward)",
                pod.namespace, pod.pod, pod.port
            );
            (channel, label, errors)
        }
    };
    let watch = watch_kubearmor(channel, cfg.feeds)
        .await
        .map_err(|e| LiveError::Client {
            relay: label.clone(),
            message: portforward::describe(&e, &forward_errors),
        })?;
    Ok(Opened {
        watch: Box::pin(watch),
        label,
        forward_errors,
    })
}

/// What the feed hands on.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveItem {
    /// A message mapped onto a row.
    Row(Box<Event>),
    /// A message that does not map onto a row (e.g. KubeArmor's `AlertThreshold` notices).
    Unmapped(String),
    /// A (re)connection was made.
    Connected(String),
    /// The connection failed or broke; the next attempt comes after `retry_in`.
    Disconnected {
        /// Why.
        error: String,
        /// The pause before the next attempt.
        retry_in: Duration,
    },
}

/// Relays `first` (an open connection) to `sink`, then reconnects with backoff whenever the
/// connection breaks, until `sink` is closed. Redelivered messages are dropped.
pub async fn follow(relay: Relay, cfg: LiveConfig, first: Opened, sink: mpsc::Sender<LiveItem>) {
    let mut recent = RecentKeys::new(cfg.recent_keys);
    let mut backoff = cfg.backoff_min;
    let mut next = Some(first);
    loop {
        let opened = match next.take() {
            Some(opened) => Ok(opened),
            None => open(&relay, &cfg).await,
        };
        let error = match opened {
            Err(e) => e.to_string(),
            Ok(Opened {
                mut watch,
                label,
                forward_errors,
            }) => {
                if sink.send(LiveItem::Connected(label.clone())).await.is_err() {
                    return;
                }
                let mut delivered = 0u64;
                let mut ended = format!("{label}: the stream ended");
                while let Some(item) = watch.next().await {
                    let msg = match item {
                        Ok(msg) => msg,
                        Err(e) => {
                            ended =
                                format!("{label}: {}", portforward::describe(&e, &forward_errors));
                            break;
                        }
                    };
                    if !recent.insert(msg.key) {
                        continue;
                    }
                    let item = match msg.event {
                        Ok(event) => LiveItem::Row(Box::new(event)),
                        Err(e) => LiveItem::Unmapped(e.to_string()),
                    };
                    if sink.send(item).await.is_err() {
                        return;
                    }
                    delivered += 1;
                }
                if delivered > 0 {
                    backoff = cfg.backoff_min;
                }
                ended
            }
        };
        let notice = LiveItem::Disconnected {
            error,
            retry_in: backoff,
        };
        if sink.send(notice).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = sink.closed() => return,
        }
        backoff = (backoff * 2).min(cfg.backoff_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_keys_drop_repeats_and_forget_the_oldest() {
        let mut keys = RecentKeys::new(2);
        assert!(keys.insert(1));
        assert!(!keys.insert(1));
        assert!(keys.insert(2));
        assert!(keys.insert(3));
        // 1 was forgotten when 3 came: a very late redelivery passes again.
        assert!(keys.insert(1));
        assert!(!keys.insert(3));
    }
}
