//! The local cache the analysis commands read without `--bundle`/`--store`: where it lives,
//! and the automatic pull from the cluster's collectors that refreshes it first.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cluster::kubeconfig::KubeTarget;
use crate::pull::{PullRequest, PullSummary};

/// The plugin's cache directory: `$XDG_CACHE_HOME/kubectl-karmor`, else
/// `~/.cache/kubectl-karmor`.
pub fn cache_dir() -> PathBuf {
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

/// Where `--bundle` commands keep their compactions of bundles made of many small files,
/// reused by the next command over the same files.
pub fn compaction_cache_dir() -> PathBuf {
    cache_dir().join("compactions")
}

/// Where `--bundle s3://…` keeps the files it fetched from archives (by sha256, reused by the
/// next command) and the bundle directories it merges.
pub fn archive_cache_dir() -> PathBuf {
    cache_dir().join("archive")
}

/// The bundle `pull` writes into by default, next to the cache store: pulled segments stay
/// there, so that the next pull fetches only new ones.
pub fn default_pull_bundle_path() -> PathBuf {
    cache_dir().join("pulled")
}

/// How long the automatic pull waits for the API server before using the cache as it is.
pub const AUTO_PULL_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the automatic pull needs from the command line.
#[derive(Debug, Clone, Default)]
pub struct AutoPull {
    /// `--no-pull` (or `KARMOR_NO_PULL`).
    pub no_pull: bool,
    /// `--kubeconfig` (or `KUBECONFIG`).
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
}

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

/// Pulls from the cluster's collectors into the cache with `pull` (the real one being
/// [`crate::pull::execute`]), unless `--no-pull` or no cluster is configured.
pub fn refresh_cache<E: Display>(
    args: &AutoPull,
    home: Option<&Path>,
    in_pod: bool,
    pull: impl FnOnce(&PullRequest) -> Result<PullSummary, E>,
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
        Err(e) => Refresh::Failed(e.to_string()),
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
            let pods: usize = s.nodes.iter().map(|n| n.pods_new).sum();
            if pods > 0 {
                line.push_str(&format!(
                    ", with {pods} pods table file{} (who held which address, merged into its history)",
                    if pods == 1 { "" } else { "s" }
                ));
            }
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
