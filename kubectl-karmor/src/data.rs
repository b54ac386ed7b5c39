//! Opening the data a command analyses: bundles merged into a store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use karmor_analyzer::store::{MergeProgress, MergeReport};
use karmor_analyzer::Store;
use kubectl_karmor::cluster::kubeconfig::KubeTarget;

use crate::cli::DataArgs;
use crate::commands::pull::{PullRequest, PullSummary};

/// The plugin's cache directory: `$XDG_CACHE_HOME/kubectl-karmor`, else
/// `~/.cache/kubectl-karmor`.
fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("kubectl-karmor")
}

/// The local cache store used when neither `--bundle` nor `--store` is given.
pub fn default_store_path() -> PathBuf {
    cache_dir().join("store.duckdb")
}

/// The bundle `pull` writes into by default, next to the cache store: pulled segments stay
/// there, so that the next pull fetches only new ones.
pub fn default_pull_bundle_path() -> PathBuf {
    cache_dir().join("pulled")
}

/// How long the automatic pull waits for the API server before using the cache as it is.
const AUTO_PULL_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What was done to the cache before a command without `--bundle`/`--store` read it.
#[derive(Debug)]
pub enum Refresh {
    /// `--no-pull` (or `KARMOR_NO_PULL`).
    Disabled,
    /// No kubeconfig (`--kubeconfig`, `KUBECONFIG`, `~/.kube/config`) and not in a pod.
    NoCluster,
    /// Pulled from the cluster's collectors and merged into the cache.
    Pulled(PullSummary),
    /// The cluster could not be pulled from (unreachable, no collectors, forbidden).
    Failed(String),
}

/// Whether a cluster is configured the way kubectl finds one: a kubeconfig named by
/// `--kubeconfig`/`KUBECONFIG`, `~/.kube/config`, or a pod's service account.
fn cluster_configured(kubeconfig: Option<&Path>, home: Option<&Path>, in_pod: bool) -> bool {
    kubeconfig.is_some() || home.is_some_and(|h| h.join(".kube").join("config").is_file()) || in_pod
}

/// Pulls from the cluster's collectors into the cache (with `pull`, the real one being
/// `commands::pull::execute`), unless `--no-pull` or no cluster is configured.
pub fn refresh_cache(
    args: &DataArgs,
    home: Option<&Path>,
    in_pod: bool,
    pull: impl FnOnce(&PullRequest) -> Result<PullSummary>,
) -> Refresh {
    if args.no_pull {
        return Refresh::Disabled;
    }
    if !cluster_configured(args.kubeconfig.as_deref(), home, in_pod) {
        return Refresh::NoCluster;
    }
    let request = PullRequest::to_cache(KubeTarget {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        connect_timeout: Some(AUTO_PULL_CONNECT_TIMEOUT),
    });
    match pull(&request) {
        Ok(summary) => Refresh::Pulled(summary),
        Err(e) => Refresh::Failed(format!("{e:#}")),
    }
}

/// The line printed on standard error about a [`Refresh`], if any.
pub fn refresh_message(refresh: &Refresh, store: &Path) -> Option<String> {
    match refresh {
        Refresh::Disabled => None,
        Refresh::NoCluster => Some(format!(
            "note: no Kubernetes context configured (no --kubeconfig, KUBECONFIG or ~/.kube/config): analysing the local cache {} as it is",
            store.display()
        )),
        Refresh::Failed(e) => Some(format!(
            "warning: cannot pull from the cluster: {e}\nwarning: analysing the local cache {} as it is (--no-pull skips the pull)",
            store.display()
        )),
        Refresh::Pulled(s) => {
            let failed: Vec<String> = s
                .nodes
                .iter()
                .filter(|n| !n.ok())
                .map(|n| format!("{}: {}", n.node, n.error.as_deref().unwrap_or("failed")))
                .collect();
            let mut line = format!(
                "pulled {} new segments from {} collectors ({}) into the cache",
                s.new_segments(),
                s.nodes.len() - s.failed_nodes(),
                s.context
            );
            if !failed.is_empty() {
                line.push_str(&format!(
                    "; {} failed (their cached data is used): {}",
                    failed.len(),
                    failed.join("; ")
                ));
            }
            Some(line)
        }
    }
}

/// Opens the store and merges the given bundles into it. Bad segments are reported on
/// standard error and skipped; everything else is analysed.
pub fn load(args: &DataArgs) -> Result<Store> {
    let store = match (&args.store, args.bundles.is_empty()) {
        (Some(path), _) => Store::open(path)?,
        (None, false) => Store::in_memory()?,
        (None, true) => {
            let path = default_store_path();
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let in_pod = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
            let refresh = refresh_cache(args, home.as_deref(), in_pod, |request| {
                crate::commands::pull::execute(request)
            });
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
    for bundle in &args.bundles {
        let report = merge_with_progress(&store, bundle)
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

/// Merges a bundle, with a progress bar on stderr once the merge has taken a second (and only
/// when stderr is a terminal): checking the segments, then inserting their rows.
pub fn merge_with_progress(store: &Store, bundle: &Path) -> Result<MergeReport> {
    let started = std::time::Instant::now();
    let mut bar: Option<ProgressBar> = None;
    let report = store.merge_bundle_with_progress(bundle, &mut |p: &MergeProgress| {
        if bar.is_none() && started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let b = bar.get_or_insert_with(|| {
            let style = ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(style)
        });
        if p.rows_total == 0 {
            b.set_message("checking segments");
            b.set_length(p.segments as u64);
            b.set_position(p.checked as u64);
        } else {
            b.set_message("merging rows");
            b.set_length(p.rows_total);
            b.set_position(p.rows_done);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use clap::Parser;
    use kubectl_karmor::pull::NodeOutcome;

    use super::*;

    /// `DataArgs` as the command line gives them.
    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        data: DataArgs,
    }

    fn args(argv: &[&str]) -> DataArgs {
        let argv = std::iter::once("observe").chain(argv.iter().copied());
        match Cmd::try_parse_from(argv) {
            Ok(cmd) => cmd.data,
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
                Ok(summary(vec![
                    NodeOutcome {
                        node: "node-a".to_string(),
                        source: "pod karmor-system/c-a".to_string(),
                        new: 3,
                        skipped: 2,
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
