//! Pulling from many collectors into one bundle: each source (a collector pod reached by
//! port-forward, or a collector endpoint reached directly) is connected, listed and fetched
//! with the collector crate's client ([`pull_into_bundle`]: only missing segments, resumable,
//! checksummed), several at a time. A source that fails is reported and never stops the others.

use std::path::PathBuf;
use std::time::Duration;

use karmor_analyzer::store::MergeProgress;
use karmor_analyzer::{AnalyzerError, Store};
use karmor_contract::bundle::MANIFEST;
use karmor_proto::{ListFilter, DEFAULT_PORT};

use futures::StreamExt;
use karmor_proto::{
    connect, pull_into_bundle, Channel, ClientError, PullOptions, PullProgress, PullReport,
    SegmentStatus,
};
use kube::Client;
use serde::Serialize;

use crate::cluster::discover::{discover, CollectorPod, CollectorSelector, DiscoverError};
use crate::cluster::kubeconfig::{self, KubeTarget, KubeconfigProblem};
use crate::cluster::portforward::{self, ForwardErrors};

/// Where to pull from.
#[derive(Clone)]
pub enum Source {
    /// A collector pod, through a port-forward by this client.
    Pod {
        /// The API server.
        client: Client,
        /// The pod.
        pod: CollectorPod,
    },
    /// A collector's gRPC address, `HOST:PORT` (edge hosts without Kubernetes).
    Endpoint(String),
}

impl Source {
    /// How the source is named in reports: `pod NAMESPACE/NAME` or `endpoint HOST:PORT`.
    pub fn label(&self) -> String {
        match self {
            Source::Pod { pod, .. } => format!("pod {}/{}", pod.namespace, pod.pod),
            Source::Endpoint(addr) => format!("endpoint {addr}"),
        }
    }

    /// The node, when known before connecting.
    pub fn node(&self) -> Option<&str> {
        match self {
            Source::Pod { pod, .. } => Some(&pod.node),
            Source::Endpoint(_) => None,
        }
    }
}

/// What pulling from one source did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeOutcome {
    /// The node (from discovery, or as the collector names itself), or `<unknown>` when neither said.
    pub node: String,
    /// [`Source::label`], or the pod that was not ready.
    pub source: String,
    /// Segments fetched now.
    pub new: usize,
    /// Segments whose rows the bundle already had: listed in it, or held by a compacted file
    /// it lists (a segment the collector compacted but still lists).
    pub skipped: usize,
    /// Files of the bundle replaced by a compacted file fetched now (unlisted and deleted: the
    /// compacted file holds their rows).
    pub replaced: usize,
    /// Compacted files fetched now that replaced files of the bundle.
    pub replaced_by: usize,
    /// Segments that could not be fetched (after retries).
    pub failed: usize,
    /// Bytes transferred.
    pub bytes: u64,
    /// Rows of the fetched segments.
    pub rows: u64,
    /// Files of the node's pods table (its latest snapshot) fetched now.
    pub pods_new: usize,
    /// Earlier pods table files of the node that the new snapshot replaced (unlisted and
    /// deleted).
    pub pods_replaced: usize,
    /// Pods table files that could not be fetched.
    pub pods_failed: usize,
    /// Why the source, or some of its segments, failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl NodeOutcome {
    /// An outcome for a source that could not be pulled at all.
    pub fn failed(node: &str, source: &str, error: String) -> Self {
        NodeOutcome {
            node: node.to_string(),
            source: source.to_string(),
            error: Some(error),
            ..NodeOutcome::default()
        }
    }

    /// True when nothing went wrong.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.failed == 0 && self.pods_failed == 0
    }

    fn from_report(source: &Source, report: &PullReport) -> Self {
        let node = source
            .node()
            .map(str::to_string)
            .unwrap_or_else(|| report.node.clone());
        let failures: Vec<String> = report
            .segments
            .iter()
            .filter_map(|s| match &s.status {
                SegmentStatus::Failed { error } => Some(format!("{}: {error}", s.path)),
                _ => None,
            })
            .chain(report.pods_failed.iter().cloned())
            .collect();
        let error = match failures.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            [first, rest @ ..] => Some(format!("{first} (and {} more)", rest.len())),
        };
        NodeOutcome {
            node,
            source: source.label(),
            new: report.fetched,
            skipped: report.already_present + report.superseded,
            replaced: report.replaced,
            replaced_by: report.replaced_by,
            failed: report.failed,
            bytes: report.bytes_fetched,
            rows: report.rows_fetched,
            pods_new: report.pods_fetched,
            pods_replaced: report.pods_replaced,
            pods_failed: report.pods_failed.len(),
            error,
        }
    }
}

/// Receives the progress of one source's pull (a progress bar, a test's recorder).
pub trait Progress: Send {
    /// A connection to the source is being made.
    fn connecting(&mut self) {}
    /// An event of [`pull_into_bundle`].
    fn event(&mut self, event: &PullProgress);
    /// The pull of this source is over.
    fn finish(&mut self, outcome: &NodeOutcome);
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&mut self, _: &PullProgress) {}
    fn finish(&mut self, _: &NodeOutcome) {}
}

/// How [`pull_all`] pulls.
#[derive(Debug, Clone)]
pub struct PullPlan {
    /// The bundle directory the segments land in (created if missing).
    pub bundle_dir: PathBuf,
    /// Filter, retries, chunk size, producer.
    pub options: PullOptions,
    /// Sources pulled at the same time (at least 1).
    pub parallel: usize,
    /// Timeout for opening each connection.
    pub connect_timeout: Duration,
}

/// Opens a channel to a source. The [`ForwardErrors`] of a port-forward explain later
/// failures.
async fn open(source: &Source, timeout: Duration) -> Result<(Channel, ForwardErrors), String> {
    match source {
        Source::Pod { client, pod } => {
            portforward::channel(client.clone(), &pod.namespace, &pod.pod, pod.port, timeout)
                .await
                .map_err(|e| e.to_string())
        }
        Source::Endpoint(addr) => connect(addr)
            .await
            .map(|c| (c, ForwardErrors::default()))
            .map_err(|e| e.to_string()),
    }
}

/// Pulls one source.
async fn pull_one(source: Source, plan: &PullPlan, progress: &mut dyn Progress) -> NodeOutcome {
    let node = source.node().unwrap_or("<unknown>").to_string();
    progress.connecting();
    let outcome = match open(&source, plan.connect_timeout).await {
        Err(e) => NodeOutcome::failed(&node, &source.label(), e),
        Ok((channel, forward_errors)) => {
            let mut on_event = |e: &PullProgress| progress.event(e);
            match pull_into_bundle(channel, &plan.bundle_dir, &plan.options, &mut on_event).await {
                Ok(report) => NodeOutcome::from_report(&source, &report),
                Err(e) => {
                    NodeOutcome::failed(&node, &source.label(), describe(&e, &forward_errors))
                }
            }
        }
    };
    progress.finish(&outcome);
    outcome
}

/// A client error with the kubelet's reason when a port-forward gave one.
fn describe(err: &ClientError, forward_errors: &ForwardErrors) -> String {
    portforward::describe(err, forward_errors)
}

/// Pulls every source into `plan.bundle_dir`, `plan.parallel` at a time, and returns one
/// outcome per source, sorted by node then source. `progress` makes each source's receiver.
pub async fn pull_all<P: Progress + 'static>(
    sources: Vec<Source>,
    plan: &PullPlan,
    mut progress: impl FnMut(&Source) -> P,
) -> Vec<NodeOutcome> {
    let jobs: Vec<(Source, P)> = sources
        .into_iter()
        .map(|s| {
            let p = progress(&s);
            (s, p)
        })
        .collect();
    let mut outcomes: Vec<NodeOutcome> = futures::stream::iter(jobs)
        .map(|(source, mut p)| async move { pull_one(source, plan, &mut p).await })
        .buffer_unordered(plan.parallel.max(1))
        .collect()
        .await;
    outcomes.sort_by(|a, b| (&a.node, &a.source).cmp(&(&b.node, &b.source)));
    outcomes
}

/// Everything a pull needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct PullRequest {
    /// The cluster (unused with `endpoints`).
    pub target: KubeTarget,
    /// Where the collector pods are.
    pub selector: CollectorSelector,
    /// Collector addresses to pull from directly; when non-empty, Kubernetes is not used.
    pub endpoints: Vec<String>,
    /// Which segments.
    pub filter: ListFilter,
    /// The bundle to pull into.
    pub bundle_dir: PathBuf,
    /// The store to merge into (`None`: no merge).
    pub store: Option<PathBuf>,
    /// Collectors pulled at the same time.
    pub parallel: usize,
}

impl PullRequest {
    /// A pull of everything from the collectors of `target` into the cache bundle and store,
    /// as `observe` does before it reads the cache.
    pub fn to_cache(target: KubeTarget) -> Self {
        PullRequest {
            target,
            selector: default_selector(),
            endpoints: Vec::new(),
            filter: ListFilter::default(),
            bundle_dir: crate::cache::default_pull_bundle_path(),
            store: Some(crate::cache::default_store_path()),
            parallel: 4,
        }
    }
}

/// The collectors of `collector/deploy/`.
fn default_selector() -> CollectorSelector {
    CollectorSelector {
        namespace: crate::cluster::discover::DEFAULT_NAMESPACE.to_string(),
        label_selector: crate::cluster::discover::DEFAULT_SELECTOR.to_string(),
        port: None,
        default_port: DEFAULT_PORT,
    }
}

/// What a pull did.
#[derive(Debug, Clone, Serialize)]
pub struct PullSummary {
    /// The bundle pulled into.
    pub bundle: String,
    /// The kubeconfig context pulled from (`context NAME`), or `endpoints`.
    pub context: String,
    /// One line per node (and per collector pod that was not ready).
    pub nodes: Vec<NodeOutcome>,
    /// The store merged into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Segments newly merged into the store.
    pub merged_segments: usize,
    /// Rows newly merged.
    pub merged_rows: u64,
    /// Pods table files newly merged into the store.
    pub merged_pods_files: usize,
    /// Segments of the bundle the store could not take, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merge_problems: Vec<String>,
}

impl PullSummary {
    /// Nodes that failed in whole or in part.
    pub fn failed_nodes(&self) -> usize {
        self.nodes.iter().filter(|n| !n.ok()).count()
    }

    /// Segments fetched from all nodes.
    pub fn new_segments(&self) -> usize {
        self.nodes.iter().map(|n| n.new).sum()
    }

    /// Files of the bundle replaced by compacted files, and those compacted files, over all
    /// nodes.
    pub fn replaced(&self) -> (usize, usize) {
        self.nodes
            .iter()
            .fold((0, 0), |(r, by), n| (r + n.replaced, by + n.replaced_by))
    }
}

/// Why a pull could not start or land (failures of single nodes are in [`PullSummary`]).
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The tokio runtime could not be started.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// No usable kubeconfig or in-cluster configuration.
    #[error(transparent)]
    Kubeconfig(Box<KubeconfigProblem>),
    /// The collector pods could not be listed, or there are none.
    #[error(transparent)]
    Discover(Box<DiscoverError>),
    /// The API server did not answer the pod list in time.
    #[error(
        "the API server ({context}) did not answer the list of collector pods within {seconds} s"
    )]
    DiscoveryTimeout {
        /// `context NAME`.
        context: String,
        /// The time allowed.
        seconds: u64,
    },
    /// A directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The pulled bundle could not be merged into the store.
    #[error("cannot merge {} into the store: {source}", bundle.display())]
    Merge {
        /// The bundle.
        bundle: PathBuf,
        /// Why.
        source: Box<AnalyzerError>,
    },
}

impl From<KubeconfigProblem> for PullError {
    fn from(e: KubeconfigProblem) -> Self {
        PullError::Kubeconfig(Box::new(e))
    }
}

impl From<DiscoverError> for PullError {
    fn from(e: DiscoverError) -> Self {
        PullError::Discover(Box::new(e))
    }
}

/// How long the API server may take to list the collector pods.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs a pull: finds the sources, pulls them concurrently, merges the bundle into the store.
/// Fails only when there is nothing to pull from (no kubeconfig, API server unreachable, no
/// collector pods); failures of single nodes are in the summary.
/// `progress` makes the progress of each source; `merging` hears how the merge goes.
pub fn execute<P: Progress + 'static>(
    request: &PullRequest,
    progress: impl FnMut(&Source) -> P,
    merging: &mut dyn FnMut(&MergeProgress),
) -> Result<PullSummary, PullError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(PullError::Runtime)?;
    let (context, nodes) = runtime.block_on(pull_sources(request, progress))?;
    drop(runtime);
    let mut summary = PullSummary {
        bundle: request.bundle_dir.display().to_string(),
        context,
        nodes,
        store: None,
        merged_segments: 0,
        merged_rows: 0,
        merged_pods_files: 0,
        merge_problems: Vec::new(),
    };
    if let Some(store_path) = &request.store {
        if request.bundle_dir.join(MANIFEST).exists() {
            if let Some(parent) = store_path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| PullError::Create {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            let merge_error = |source| PullError::Merge {
                bundle: request.bundle_dir.clone(),
                source: Box::new(source),
            };
            let store = Store::open(store_path).map_err(merge_error)?;
            let report = store
                .merge_bundle_with_progress(&request.bundle_dir, merging)
                .map_err(merge_error)?;
            summary.store = Some(store_path.display().to_string());
            summary.merged_segments = report.merged.len();
            summary.merged_rows = report.rows;
            summary.merged_pods_files = report.pods_merged.len();
            summary.merge_problems = report
                .problems
                .iter()
                .map(|(path, problem)| format!("{}: {problem}", path.display()))
                .collect();
        }
    }
    Ok(summary)
}

/// Finds the sources and pulls them; returns the context label and the per-node outcomes.
async fn pull_sources<P: Progress + 'static>(
    request: &PullRequest,
    progress: impl FnMut(&Source) -> P,
) -> Result<(String, Vec<NodeOutcome>), PullError> {
    let mut unavailable = Vec::new();
    let (context, sources) = if request.endpoints.is_empty() {
        let (client, context) = kubeconfig::client(&request.target).await?;
        let context = format!("context {context}");
        let found = tokio::time::timeout(DISCOVERY_TIMEOUT, discover(&client, &request.selector))
            .await
            .map_err(|_| PullError::DiscoveryTimeout {
                context: context.clone(),
                seconds: DISCOVERY_TIMEOUT.as_secs(),
            })??;
        for u in found.unavailable {
            unavailable.push(NodeOutcome::failed(
                &u.node,
                &format!("pod {}/{}", request.selector.namespace, u.pod),
                u.reason,
            ));
        }
        let sources = found
            .collectors
            .into_iter()
            .map(|pod| Source::Pod {
                client: client.clone(),
                pod,
            })
            .collect();
        (context, sources)
    } else {
        let sources = request
            .endpoints
            .iter()
            .cloned()
            .map(Source::Endpoint)
            .collect();
        ("endpoints".to_string(), sources)
    };
    std::fs::create_dir_all(&request.bundle_dir).map_err(|source| PullError::Create {
        path: request.bundle_dir.clone(),
        source,
    })?;
    let plan = PullPlan {
        bundle_dir: request.bundle_dir.clone(),
        options: PullOptions {
            filter: request.filter.clone(),
            producer: format!("kubectl-karmor pull {}", env!("CARGO_PKG_VERSION")),
            ..PullOptions::default()
        },
        parallel: request.parallel,
        connect_timeout: Duration::from_secs(10),
    };
    let mut nodes = pull_all(sources, &plan, progress).await;
    nodes.extend(unavailable);
    nodes.sort_by(|a, b| (&a.node, &a.source).cmp(&(&b.node, &b.source)));
    Ok((context, nodes))
}
