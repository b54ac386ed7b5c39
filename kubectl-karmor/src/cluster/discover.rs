//! Finding the collectors: the pods of the collector DaemonSet (`collector/deploy/`), listed
//! by namespace and label selector; the Running and Ready ones are kept, one per node, and
//! the nodes whose collector is not ready are reported with the reason.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ListParams;
use kube::{Api, Client};

/// The namespace of `collector/deploy/`.
pub const DEFAULT_NAMESPACE: &str = "karmor-system";
/// The label every collector pod carries (`collector/deploy/daemonset.yaml`).
pub const DEFAULT_SELECTOR: &str = "app.kubernetes.io/name=karmor-collector";
/// Container port names that declare the collector's gRPC port, when `--port` is not given.
pub const PORT_NAMES: [&str; 2] = ["grpc", "karmor-grpc"];

/// Where to look for collectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorSelector {
    /// The collectors' namespace.
    pub namespace: String,
    /// A label selector, as `kubectl get -l` takes it.
    pub label_selector: String,
    /// The gRPC port; `None`: the container port named in [`PORT_NAMES`], else
    /// `default_port`.
    pub port: Option<u16>,
    /// The port used when neither `port` nor a named container port says.
    pub default_port: u16,
}

/// A collector that is ready to be pulled from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorPod {
    /// The node it runs on.
    pub node: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// The gRPC port inside the pod.
    pub port: u16,
}

/// A node (or an unscheduled pod) without a ready collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// The node, or `(unscheduled)`.
    pub node: String,
    /// The collector pod there.
    pub pod: String,
    /// Why it cannot be pulled from, e.g. `not ready: CrashLoopBackOff`.
    pub reason: String,
}

/// The result of a discovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// One ready collector per node, sorted by node.
    pub collectors: Vec<CollectorPod>,
    /// Nodes with collector pods of which none is ready, sorted by node.
    pub unavailable: Vec<Unavailable>,
}

/// Why discovery failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// The list request failed (API server unreachable, forbidden, bad selector).
    #[error("cannot list pods in namespace {namespace} with selector {selector}: {source}{hint}")]
    List {
        /// The namespace.
        namespace: String,
        /// The selector.
        selector: String,
        /// What to try, or empty.
        hint: String,
        /// What kube said.
        #[source]
        source: kube::Error,
    },
    /// The list was empty.
    #[error(
        "no collector pods in namespace {namespace} with selector {selector}: deploy them \
         (kubectl apply -k collector/deploy), or set --collector-namespace and --selector"
    )]
    NoCollectors {
        /// The namespace.
        namespace: String,
        /// The selector.
        selector: String,
    },
}

/// A hint for a failed list, from the API server's status code.
fn hint(err: &kube::Error, namespace: &str) -> String {
    match err {
        kube::Error::Api(status) if status.code == 403 => {
            format!(" (your user needs `list pods` and `create pods/portforward` in {namespace})")
        }
        kube::Error::Api(status) if status.code == 400 => " (check --selector)".to_string(),
        _ => String::new(),
    }
}

/// Lists the collector pods and classifies them.
pub async fn discover(
    client: &Client,
    selector: &CollectorSelector,
) -> Result<Discovery, DiscoverError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &selector.namespace);
    let list = api
        .list(&ListParams::default().labels(&selector.label_selector))
        .await
        .map_err(|source| DiscoverError::List {
            namespace: selector.namespace.clone(),
            selector: selector.label_selector.clone(),
            hint: hint(&source, &selector.namespace),
            source,
        })?;
    if list.items.is_empty() {
        return Err(DiscoverError::NoCollectors {
            namespace: selector.namespace.clone(),
            selector: selector.label_selector.clone(),
        });
    }
    Ok(classify(&list.items, selector))
}

/// Why a pod cannot be pulled from, or `None` when it is Running and Ready.
fn unready_reason(pod: &Pod) -> Option<String> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Some("terminating".to_string());
    }
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
    let waiting = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .find_map(|c| {
            let w = c.state.as_ref()?.waiting.as_ref()?;
            Some(w.reason.clone().unwrap_or_else(|| "waiting".to_string()))
        });
    if phase != "Running" {
        return Some(match waiting {
            Some(w) => format!("phase {phase}: {w}"),
            None => format!("phase {phase}"),
        });
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if ready {
        None
    } else {
        Some(match waiting {
            Some(w) => format!("not ready: {w}"),
            None => "not ready".to_string(),
        })
    }
}

/// The gRPC port of a pod: `--port`, a container port named in [`PORT_NAMES`], or the default.
fn grpc_port(pod: &Pod, selector: &CollectorSelector) -> u16 {
    if let Some(p) = selector.port {
        return p;
    }
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref().is_some_and(|n| PORT_NAMES.contains(&n)))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .unwrap_or(selector.default_port)
}

/// Keeps the Running and Ready pods, the newest per node, and reports the nodes that have
/// collector pods but none ready.
pub fn classify(pods: &[Pod], selector: &CollectorSelector) -> Discovery {
    // node → (creation time, name) of the newest ready pod, and the unready pods there.
    let mut ready: BTreeMap<String, (Option<Time>, CollectorPod)> = BTreeMap::new();
    let mut unready: BTreeMap<String, Vec<Unavailable>> = BTreeMap::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let Some(node) = node.filter(|n| !n.is_empty()) else {
            unready
                .entry("(unscheduled)".to_string())
                .or_default()
                .push(Unavailable {
                    node: "(unscheduled)".to_string(),
                    pod: name,
                    reason: unready_reason(pod).unwrap_or_else(|| "not scheduled".to_string()),
                });
            continue;
        };
        match unready_reason(pod) {
            Some(reason) => unready.entry(node.clone()).or_default().push(Unavailable {
                node,
                pod: name,
                reason,
            }),
            None => {
                let created = pod.metadata.creation_timestamp.clone();
                let candidate = CollectorPod {
                    node: node.clone(),
                    namespace: pod
                        .metadata
                        .namespace
                        .clone()
                        .unwrap_or_else(|| selector.namespace.clone()),
                    pod: name,
                    port: grpc_port(pod, selector),
                };
                let newer = match ready.get(&node) {
                    None => true,
                    Some((t, kept)) => (&created, &candidate.pod) > (t, &kept.pod),
                };
                if newer {
                    ready.insert(node, (created, candidate));
                }
            }
        }
    }
    let unavailable = unready
        .into_iter()
        .filter(|(node, _)| !ready.contains_key(node))
        .flat_map(|(_, pods)| pods)
        .collect();
    Discovery {
        collectors: ready.into_values().map(|(_, c)| c).collect(),
        unavailable,
    }
}
