//! Opening the data a command analyses: bundles merged into a store, or the local cache
//! (refreshed first by the library's automatic pull, [`kubectl_karmor::cache`]).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use karmor_analyzer::Store;
use karmor_archive::fetch::{self, Selection};
use karmor_archive::location::is_archive_url;
use karmor_archive::{connect, ArchiveUrl};
use kubectl_karmor::cache::{
    archive_cache_dir, compaction_cache_dir, default_store_path, refresh_cache, refresh_message,
    AutoPull,
};

use kubectl_karmor::resource::{Resource, Target};

use crate::cli::DataArgs;
use crate::progress;
use crate::scope::Scope;

impl DataArgs {
    /// What the automatic pull needs from these arguments.
    pub fn auto_pull(&self) -> AutoPull {
        AutoPull {
            no_pull: self.no_pull,
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

/// What a command will look at, so that reading an archive (`--bundle s3://…`) fetches only
/// the files that can hold it. Local bundles are read whole, as before.
#[derive(Debug, Clone, Default)]
pub struct Prune {
    /// Only these nodes (all when empty).
    pub nodes: Vec<String>,
    /// Behaviour at or after this time (ns since the epoch).
    pub since_ns: Option<i64>,
    /// Behaviour before this time (ns since the epoch).
    pub until_ns: Option<i64>,
}

impl Prune {
    /// The window of `scope` and, for `nodes NAME`, that node.
    pub fn of(scope: &Scope, target: Option<&Target>) -> Self {
        let nodes = match target {
            Some(Target {
                resource: Resource::Node,
                name: Some(n),
            }) => vec![n.clone()],
            _ => Vec::new(),
        };
        Prune {
            nodes,
            since_ns: scope.since_ns,
            until_ns: scope.until_ns,
        }
    }
}

/// Opens the store and merges the given bundles into it. Bad segments are reported on
/// standard error and skipped; everything else is analysed.
pub fn load(args: &DataArgs) -> Result<Store> {
    load_pruned(args, &Prune::default())
}

/// Fetches what `prune` and `--cluster` need from the archive at `url` into the cache and
/// returns the bundle directories to merge (one per cluster).
fn fetch_archive(url: &str, clusters: &[String], prune: &Prune) -> Result<Vec<PathBuf>> {
    let url = ArchiveUrl::parse(url)?;
    let selection = Selection {
        clusters: clusters.to_vec(),
        nodes: prune.nodes.clone(),
        since_ns: prune.since_ns,
        until_ns: prune.until_ns,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let remote = connect::connect(&url)?;
        let bar = progress::ArchiveBar::new();
        let report = fetch::fetch(&remote, &archive_cache_dir(), &selection, 8, &bar).await;
        bar.finish();
        report
    })?;
    for (object, problem) in &report.problems {
        let problem = problem.trim_start_matches(&format!("{object}: "));
        eprintln!("warning: skipped {object}: {problem} (the rest of the archive is analysed)");
    }
    eprintln!(
        "archive {url}: {} of {} files in {} manifest{} needed, {} fetched ({} bytes), {} from the cache",
        report.selected,
        report.listed,
        report.manifests,
        if report.manifests == 1 { "" } else { "s" },
        report.fetched,
        report.fetched_bytes,
        report.reused
    );
    Ok(report.views.into_iter().map(|v| v.dir).collect())
}

/// Opens the store and merges the given bundles into it, fetching from archives only what
/// `prune` needs. Bad segments are reported on standard error and skipped; everything else is
/// analysed.
pub fn load_pruned(args: &DataArgs, prune: &Prune) -> Result<Store> {
    let remote = |b: &PathBuf| b.to_str().is_some_and(is_archive_url);
    if !args.clusters.is_empty() && !args.bundles.iter().any(remote) {
        bail!(
            "--cluster chooses among the clusters of an archive: give --bundle s3://BUCKET/PREFIX"
        );
    }
    let store = match (&args.store, args.bundles.is_empty()) {
        (Some(path), _) => Store::open(path)?,
        // Bundles are read where they lie; their small files' compactions are kept in the
        // cache for the next command over the same bundle.
        (None, false) => Store::in_memory_with_cache(&compaction_cache_dir())?,
        (None, true) => {
            let path = default_store_path();
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let in_pod = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
            let refresh = refresh_cache(&args.auto_pull(), home.as_deref(), in_pod, progress::pull);
            if let Some(message) = refresh_message(&refresh, &path) {
                eprintln!("{message}");
            }
            if !path.exists() {
                bail!(
                    "no data: pass --bundle PATH (a bundle from `kubectl karmor import ... -o BUNDLE` or a collector), --store FILE, or pull from a cluster (kubectl karmor pull)"
                );
            }
            Store::open(&path)?
        }
    };
    let mut bundles = Vec::new();
    for bundle in &args.bundles {
        match bundle.to_str() {
            Some(url) if is_archive_url(url) => bundles.extend(
                fetch_archive(url, &args.clusters, prune)
                    .with_context(|| format!("cannot read archive {url}"))?,
            ),
            _ => bundles.push(bundle.clone()),
        }
    }
    for bundle in &bundles {
        let report = progress::merge(&store, bundle)
            .with_context(|| format!("cannot read bundle {}", bundle.display()))?;
        for (path, problem) in &report.problems {
            let problem = problem.trim_start_matches(&format!("{}: ", path.display()));
            eprintln!(
                "warning: skipped {}: {problem} (the rest of the bundle is analysed)",
                path.display()
            );
        }
    }
    let health = store.health()?;
    if health.events_dropped > 0 {
        eprintln!(
            "warning: producers dropped {} of {} events: this evidence is incomplete",
            health.events_dropped,
            health.events_seen + health.events_dropped
        );
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use std::path::Path;

    use anyhow::bail;
    use clap::Parser;
    use kubectl_karmor::cache::{default_pull_bundle_path, Refresh, AUTO_PULL_CONNECT_TIMEOUT};
    use kubectl_karmor::pull::{NodeOutcome, PullSummary};

    use super::*;

    /// `DataArgs` as the command line gives them.
    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        data: DataArgs,
    }

    fn args(argv: &[&str]) -> AutoPull {
        let argv = std::iter::once("observe").chain(argv.iter().copied());
        match Cmd::try_parse_from(argv) {
            Ok(cmd) => cmd.data.auto_pull(),
            Err(e) => panic!("{e}"),
        }
    }

    fn summary(nodes: Vec<NodeOutcome>) -> PullSummary {
        PullSummary {
            bundle: "/cache/pulled".to_string(),
            context: "context kind-dev".to_string(),
            nodes,
            store: Some("/cache/store.duckdb".to_string()),
            merged_segments: 3,
            merged_rows: 10,
            merged_pods_files: 0,
            merge_problems: Vec::new(),
        }
    }

    fn home_with_kubeconfig() -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let kube = home.path().join(".kube");
        std::fs::create_dir_all(&kube).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(kube.join("config"), "apiVersion: v1\nkind: Config\n")
            .unwrap_or_else(|e| panic!("{e}"));
        home
    }

    #[test]
    fn no_pull_reads_the_cache_as_it_is_silently() {
        let home = home_with_kubeconfig();
        let called = Cell::new(false);
        let refresh = refresh_cache(&args(&["--no-pull"]), Some(home.path()), true, |_| {
            called.set(true);
            bail!("must not be called")
        });
        assert!(matches!(refresh, Refresh::Disabled), "{refresh:?}");
        assert!(!called.get());
        assert_eq!(
            refresh_message(&refresh, Path::new("/c/store.duckdb")),
            None
        );
    }

    #[test]
    fn without_a_cluster_the_cache_is_used_and_the_user_told_why() {
        let empty_home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let called = Cell::new(false);
        let refresh = refresh_cache(&args(&[]), Some(empty_home.path()), false, |_| {
            called.set(true);
            bail!("must not be called")
        });
        assert!(matches!(refresh, Refresh::NoCluster), "{refresh:?}");
        assert!(!called.get());
        let message = refresh_message(&refresh, Path::new("/c/store.duckdb")).unwrap_or_default();
        assert!(
            message.contains("no Kubernetes context configured"),
            "{message}"
        );
        assert!(message.contains("/c/store.duckdb"), "{message}");
    }

    #[test]
    fn a_configured_cluster_is_pulled_into_the_cache_first() {
        let home = home_with_kubeconfig();
        let seen = Cell::new(None);
        let refresh = refresh_cache(
            &args(&["--context", "kind-dev"]),
            Some(home.path()),
            false,
            |request| {
                seen.set(Some((
                    request.target.context.clone(),
                    request.target.kubeconfig.clone(),
                    request.bundle_dir.clone(),
                    request.store.clone(),
                    request.endpoints.is_empty(),
                )));
                Ok::<_, anyhow::Error>(summary(vec![
                    NodeOutcome {
                        node: "node-a".to_string(),
                        source: "pod karmor-system/c-a".to_string(),
                        new: 3,
                        skipped: 2,
                        pods_new: 1,
                        ..NodeOutcome::default()
                    },
                    NodeOutcome::failed("node-b", "pod karmor-system/c-b", "refused".into()),
                ]))
            },
        );
        assert_eq!(
            seen.take(),
            Some((
                Some("kind-dev".to_string()),
                None,
                default_pull_bundle_path(),
                Some(default_store_path()),
                true
            ))
        );
        let message = refresh_message(&refresh, Path::new("/c/store.duckdb")).unwrap_or_default();
        assert!(
            message.starts_with("pulled 3 new segments from 1 collectors (context kind-dev)"),
            "{message}"
        );
        assert!(message.contains("1 failed"), "{message}");
        assert!(message.contains("node-b: refused"), "{message}");
        assert!(
            message.contains(", with 1 pods table file (who held which address"),
            "{message}"
        );
    }

    #[test]
    fn a_named_kubeconfig_or_a_pod_counts_as_a_cluster() {
        let empty_home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for (argv, in_pod) in [(vec!["--kubeconfig", "/k/config"], false), (vec![], true)] {
            let called = Cell::new(false);
            let refresh = refresh_cache(&args(&argv), Some(empty_home.path()), in_pod, |r| {
                called.set(true);
                assert_eq!(r.target.connect_timeout, Some(AUTO_PULL_CONNECT_TIMEOUT));
                bail!("cannot list pods in namespace karmor-system: connection refused")
            });
            assert!(called.get(), "{argv:?} {in_pod}");
            let message =
                refresh_message(&refresh, Path::new("/c/store.duckdb")).unwrap_or_default();
            assert!(
                message.contains("cannot pull from the cluster: cannot list pods"),
                "{message}"
            );
            assert!(
                message.contains("analysing the local cache /c/store.duckdb as it is"),
                "{message}"
            );
            assert!(message.contains("--no-pull"), "{message}");
        }
    }
}
