//! `kubectl karmor pull`: the collectors' segments → a bundle → the local store.
//!
//! The work is in the library ([`kubectl_karmor::cluster`] finds and reaches the collectors,
//! [`kubectl_karmor::pull`] fetches); this module turns arguments into a [`PullRequest`],
//! draws one progress bar per node, merges the bundle and prints the per-node report.
//! [`execute`] is also what `observe` and the other analysis commands run before they open
//! the cache (see `data::load`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use karmor_analyzer::timespec::parse_duration;
use karmor_analyzer::Store;
use karmor_contract::bundle::MANIFEST;
use karmor_proto::{ListFilter, PullOptions, PullProgress, SegmentStatus, DEFAULT_PORT};
use kubectl_karmor::cluster::discover::{discover, CollectorSelector};
use kubectl_karmor::cluster::kubeconfig::{self, KubeTarget};
use kubectl_karmor::pull::{pull_all, NodeOutcome, Progress, PullPlan, Source};
use serde::Serialize;

use crate::cli::{OutputFormat, PullArgs};
use crate::data;
use crate::render;

/// How long the API server may take to list the collector pods.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(20);

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
            bundle_dir: data::default_pull_bundle_path(),
            store: Some(data::default_store_path()),
            parallel: 4,
        }
    }
}

/// The collectors of `collector/deploy/`.
fn default_selector() -> CollectorSelector {
    CollectorSelector {
        namespace: kubectl_karmor::cluster::discover::DEFAULT_NAMESPACE.to_string(),
        label_selector: kubectl_karmor::cluster::discover::DEFAULT_SELECTOR.to_string(),
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
}

/// One progress bar per node.
struct Bar {
    bar: ProgressBar,
    /// Bytes of the segments finished so far.
    finished: u64,
    /// Bytes held of each segment in flight.
    in_flight: HashMap<String, u64>,
}

impl Bar {
    fn position(&self) -> u64 {
        self.finished + self.in_flight.values().sum::<u64>()
    }
}

impl Progress for Bar {
    fn connecting(&mut self) {
        self.bar.set_message("connecting");
    }

    fn event(&mut self, event: &PullProgress) {
        match event {
            PullProgress::Listed {
                segments,
                bytes,
                already_present,
            } => {
                self.bar.set_length(*bytes);
                self.bar.set_message(format!(
                    "{segments} segments to fetch, {already_present} already here"
                ));
            }
            PullProgress::Bytes { path, done, .. } => {
                self.in_flight.insert(path.clone(), *done);
                self.bar.set_position(self.position());
            }
            PullProgress::Segment(outcome) => {
                if self.in_flight.remove(&outcome.path).is_some()
                    || !matches!(outcome.status, SegmentStatus::AlreadyPresent)
                {
                    self.finished += outcome.bytes;
                }
                self.bar.set_position(self.position());
            }
        }
    }

    fn finish(&mut self, outcome: &NodeOutcome) {
        let message = match &outcome.error {
            Some(e) if outcome.new == 0 && outcome.skipped == 0 => format!("failed: {e}"),
            _ => format!(
                "{} new, {} already here, {} failed",
                outcome.new, outcome.skipped, outcome.failed
            ),
        };
        self.bar.finish_with_message(message);
    }
}

/// Runs a pull: finds the sources, pulls them concurrently, merges the bundle into the store.
/// Fails only when there is nothing to pull from (no kubeconfig, API server unreachable, no
/// collector pods); failures of single nodes are in the summary.
pub fn execute(request: &PullRequest) -> Result<PullSummary> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (context, nodes) = runtime.block_on(pull_sources(request))?;
    drop(runtime);
    let mut summary = PullSummary {
        bundle: request.bundle_dir.display().to_string(),
        context,
        nodes,
        store: None,
        merged_segments: 0,
        merged_rows: 0,
        merge_problems: Vec::new(),
    };
    if let Some(store_path) = &request.store {
        if request.bundle_dir.join(MANIFEST).exists() {
            if let Some(parent) = store_path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let store = Store::open(store_path)?;
            let report = crate::data::merge_with_progress(&store, &request.bundle_dir)
                .with_context(|| {
                    format!(
                        "cannot merge {} into the store",
                        request.bundle_dir.display()
                    )
                })?;
            summary.store = Some(store_path.display().to_string());
            summary.merged_segments = report.merged.len();
            summary.merged_rows = report.rows;
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
async fn pull_sources(request: &PullRequest) -> Result<(String, Vec<NodeOutcome>)> {
    let mut unavailable = Vec::new();
    let (context, sources) = if request.endpoints.is_empty() {
        let (client, context) = kubeconfig::client(&request.target).await?;
        let context = format!("context {context}");
        let found = tokio::time::timeout(DISCOVERY_TIMEOUT, discover(&client, &request.selector))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the API server ({context}) did not answer the list of collector pods within {} s",
                    DISCOVERY_TIMEOUT.as_secs()
                )
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
    std::fs::create_dir_all(&request.bundle_dir)
        .with_context(|| format!("cannot create {}", request.bundle_dir.display()))?;
    // One bar per node on standard error; hidden when it is not a terminal.
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix:>24} [{bar:30}] {bytes:>10}/{total_bytes:<10} {wide_msg}",
    )
    .context("progress bar template")?
    .progress_chars("=> ");
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
    let mut nodes = pull_all(sources, &plan, |source| {
        let bar = bars.add(ProgressBar::new(0).with_style(style.clone()));
        bar.set_prefix(source.node().map_or_else(|| source.label(), str::to_string));
        Bar {
            bar,
            finished: 0,
            in_flight: HashMap::new(),
        }
    })
    .await;
    nodes.extend(unavailable);
    nodes.sort_by(|a, b| (&a.node, &a.source).cmp(&(&b.node, &b.source)));
    Ok((context, nodes))
}

/// The request `pull` arguments describe.
fn request(args: &PullArgs) -> Result<PullRequest> {
    let since_ns = match &args.since {
        Some(text) => {
            let back = parse_duration(text).with_context(|| format!("--since {text}"))?;
            Some(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX) - back)
        }
        None => None,
    };
    for e in &args.endpoints {
        let port_ok = e
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            bail!("--endpoint {e}: expected HOST:PORT, e.g. 10.0.0.5:{DEFAULT_PORT}");
        }
    }
    Ok(PullRequest {
        target: KubeTarget {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            connect_timeout: Some(Duration::from_secs(10)),
        },
        selector: CollectorSelector {
            namespace: args.collector_namespace.clone(),
            label_selector: args.selector.clone(),
            port: args.port,
            default_port: DEFAULT_PORT,
        },
        endpoints: args.endpoints.clone(),
        filter: ListFilter {
            since_ns,
            until_ns: None,
            namespaces: if args.all_namespaces {
                Vec::new()
            } else {
                args.namespaces.clone()
            },
        },
        bundle_dir: args
            .output_bundle
            .clone()
            .unwrap_or_else(data::default_pull_bundle_path),
        store: if args.no_merge {
            None
        } else {
            Some(args.store.clone().unwrap_or_else(data::default_store_path))
        },
        parallel: usize::from(args.parallel),
    })
}

/// Runs the command.
pub fn run(args: PullArgs) -> Result<ExitCode> {
    let request = request(&args)?;
    let summary = execute(&request)?;
    let headers = [
        "NODE", "SOURCE", "NEW", "SKIPPED", "FAILED", "BYTES", "ROWS", "ERROR",
    ];
    let rows: Vec<Vec<String>> = summary
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.node.clone(),
                n.source.clone(),
                n.new.to_string(),
                n.skipped.to_string(),
                n.failed.to_string(),
                n.bytes.to_string(),
                n.rows.to_string(),
                n.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    match args.output {
        OutputFormat::Table | OutputFormat::Wide => {
            print!("{}", render::table(&headers, &rows));
            println!();
            println!("bundle: {}", summary.bundle);
            match &summary.store {
                Some(store) => println!(
                    "store:  {store} ({} new segments, {} rows merged)",
                    summary.merged_segments, summary.merged_rows
                ),
                None if request.store.is_some() => println!("store:  nothing to merge"),
                None => {}
            }
        }
        OutputFormat::Json => render::json(&summary)?,
        OutputFormat::Yaml => render::yaml(&summary)?,
        OutputFormat::Csv => render::csv(&headers, &rows)?,
    }
    for problem in &summary.merge_problems {
        eprintln!("warning: not merged: {problem}");
    }
    let failed = summary.failed_nodes();
    if failed > 0 {
        eprintln!(
            "warning: {failed} of {} nodes failed in whole or in part (see ERROR); the others landed",
            summary.nodes.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
