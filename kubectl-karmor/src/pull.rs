//! Pulling from many collectors into one bundle: each source (a collector pod reached by
//! port-forward, or a collector endpoint reached directly) is connected, listed and fetched
//! with the collector crate's client ([`pull_into_bundle`]: only missing segments, resumable,
//! checksummed), several at a time. A source that fails is reported and never stops the others.

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use karmor_proto::{
    connect, pull_into_bundle, Channel, ClientError, PullOptions, PullProgress, PullReport,
    SegmentStatus,
};
use kube::Client;
use serde::Serialize;

use crate::cluster::discover::CollectorPod;
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
    /// Segments the bundle already had.
    pub skipped: usize,
    /// Segments that could not be fetched (after retries).
    pub failed: usize,
    /// Bytes transferred.
    pub bytes: u64,
    /// Rows of the fetched segments.
    pub rows: u64,
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
        self.error.is_none() && self.failed == 0
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
            skipped: report.already_present,
            failed: report.failed,
            bytes: report.bytes_fetched,
            rows: report.rows_fetched,
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
