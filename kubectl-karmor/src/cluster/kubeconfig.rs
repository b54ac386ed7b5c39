//! A kube [`Client`] from `--kubeconfig` and `--context`, resolved the way kubectl resolves
//! them: the given file (or the `KUBECONFIG` list, merged, or `~/.kube/config`), its current
//! context unless `--context` names another; inside a pod without any kubeconfig, the pod's
//! service account.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{InClusterError, KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

/// Which cluster to talk to, as kubectl's flags say it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeTarget {
    /// `--kubeconfig`: a file, or a list of files separated as in `KUBECONFIG` (merged, the
    /// first file to set a value wins). `None`: `KUBECONFIG`, then `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`: a context of the kubeconfig. `None`: its current context.
    pub context: Option<String>,
    /// Timeout for connecting to the API server (`None`: kube's default).
    pub connect_timeout: Option<Duration>,
}

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigProblem {
    /// The named kubeconfig file could not be read or parsed.
    #[error("cannot read kubeconfig {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What kube said.
        #[source]
        source: KubeconfigError,
    },
    /// The kubeconfig was read, but the context (or its cluster or user) is unusable.
    #[error("kubeconfig context {context}: {source}")]
    Context {
        /// The context, or `(current-context)`.
        context: String,
        /// What kube said.
        #[source]
        source: KubeconfigError,
    },
    /// No kubeconfig anywhere and not inside a pod.
    #[error(
        "no Kubernetes configuration: {kubeconfig}; and not running in a pod ({incluster}). \
         Pass --kubeconfig FILE, set KUBECONFIG, or pull from edge hosts with --endpoint HOST:PORT"
    )]
    NotConfigured {
        /// Why no kubeconfig was found.
        kubeconfig: KubeconfigError,
        /// Why the in-cluster configuration did not apply.
        incluster: InClusterError,
    },
    /// The configuration was fine but the client could not be built (TLS material, proxy).
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// The context name used in messages.
fn context_label(context: Option<&str>) -> String {
    context.map_or_else(|| "(current-context)".to_string(), str::to_string)
}

/// Reads `--kubeconfig`: one file, or several separated like `KUBECONFIG`, merged.
fn read_kubeconfig(path: &Path) -> Result<Kubeconfig, KubeconfigProblem> {
    let paths: Vec<PathBuf> = if path.exists() {
        vec![path.to_path_buf()]
    } else {
        std::env::split_paths(path.as_os_str())
            .filter(|p| !p.as_os_str().is_empty())
            .collect()
    };
    let mut merged = Kubeconfig::default();
    for p in &paths {
        let next = Kubeconfig::read_from(p).map_err(|source| KubeconfigProblem::Read {
            path: p.clone(),
            source,
        })?;
        merged = merged
            .merge(next)
            .map_err(|source| KubeconfigProblem::Read {
                path: p.clone(),
                source,
            })?;
    }
    if paths.is_empty() {
        return Err(KubeconfigProblem::Read {
            path: path.to_path_buf(),
            source: KubeconfigError::FindPath,
        });
    }
    Ok(merged)
}

/// The client configuration for `target`.
pub async fn load_config(target: &KubeTarget) -> Result<Config, KubeconfigProblem> {
    load(target).await.map(|(config, _)| config)
}

/// The client configuration for `target`, and the name of the context it comes from
/// (`in-cluster` for a pod's service account).
async fn load(target: &KubeTarget) -> Result<(Config, String), KubeconfigProblem> {
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..KubeConfigOptions::default()
    };
    let kubeconfig = match &target.kubeconfig {
        Some(path) => Some(read_kubeconfig(path)?),
        None => {
            let from_env = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
            let home = std::env::home_dir().map(|h| h.join(".kube").join("config"));
            if from_env.is_some() || home.as_ref().is_some_and(|p| p.is_file()) {
                let kc = Kubeconfig::read().map_err(|source| KubeconfigProblem::Read {
                    path: from_env
                        .map(PathBuf::from)
                        .or(home)
                        .unwrap_or_else(|| PathBuf::from("~/.kube/config")),
                    source,
                })?;
                Some(kc)
            } else if let Some(context) = &target.context {
                return Err(KubeconfigProblem::Context {
                    context: context.clone(),
                    source: KubeconfigError::FindPath,
                });
            } else {
                // kubectl: no kubeconfig and no --context inside a pod means the service
                // account.
                None
            }
        }
    };
    let (mut config, context) = match kubeconfig {
        Some(kc) => {
            let name = target
                .context
                .clone()
                .or_else(|| kc.current_context.clone())
                .unwrap_or_else(|| "(current-context)".to_string());
            let config = Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|source| KubeconfigProblem::Context {
                    context: context_label(target.context.as_deref()),
                    source,
                })?;
            (config, name)
        }
        None => {
            let config =
                Config::incluster().map_err(|incluster| KubeconfigProblem::NotConfigured {
                    kubeconfig: KubeconfigError::FindPath,
                    incluster,
                })?;
            (config, "in-cluster".to_string())
        }
    };
    if let Some(t) = target.connect_timeout {
        config.connect_timeout = Some(t);
    }
    Ok((config, context))
}

/// A client for `target`, and the name of its context (for messages).
pub async fn client(target: &KubeTarget) -> Result<(Client, String), KubeconfigProblem> {
    let (config, context) = load(target).await?;
    let client = Client::try_from(config).map_err(KubeconfigProblem::Client)?;
    Ok((client, context))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "apiVersion: v1
kind: Config
current-context: alpha
clusters:
- name: a
  cluster: {server: 'https://alpha.example:6443'}
- name: b
  cluster: {server: 'http://127.0.0.1:8001'}
users:
- name: u
  user: {token: secret}
contexts:
- name: alpha
  context: {cluster: a, user: u, namespace: team-a}
- name: beta
  context: {cluster: b, user: u}
";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    fn target(path: PathBuf, context: Option<&str>) -> KubeTarget {
        KubeTarget {
            kubeconfig: Some(path),
            context: context.map(str::to_string),
            connect_timeout: Some(Duration::from_secs(3)),
        }
    }

    #[tokio::test]
    async fn current_context_and_named_context() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = write(dir.path(), "config", KUBECONFIG);
        let current = load_config(&target(path.clone(), None))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            current.cluster_url.to_string(),
            "https://alpha.example:6443/"
        );
        assert_eq!(current.default_namespace, "team-a");
        assert_eq!(current.connect_timeout, Some(Duration::from_secs(3)));
        let beta = load_config(&target(path, Some("beta")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(beta.cluster_url.to_string(), "http://127.0.0.1:8001/");
        assert_eq!(beta.default_namespace, "default");
    }

    #[tokio::test]
    async fn the_context_name_is_reported() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = write(dir.path(), "config", KUBECONFIG);
        let (_, current) = client(&target(path.clone(), None))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(current, "alpha");
        let (_, named) = client(&target(path, Some("beta")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(named, "beta");
    }

    #[tokio::test]
    async fn unknown_context_is_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = write(dir.path(), "config", KUBECONFIG);
        let err = load_config(&target(path, Some("gamma")))
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("context gamma"), "{err}");
    }

    #[tokio::test]
    async fn missing_and_broken_files_are_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let missing = dir.path().join("nope");
        let err = load_config(&target(missing.clone(), None))
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(&missing.display().to_string()), "{err}");
        let broken = write(dir.path(), "broken", "clusters: [:::");
        let err = load_config(&target(broken.clone(), None))
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(&broken.display().to_string()), "{err}");
    }

    #[tokio::test]
    async fn a_list_of_files_is_merged_first_wins() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let first = write(
            dir.path(),
            "first",
            "apiVersion: v1\nkind: Config\ncurrent-context: beta\n",
        );
        let second = write(dir.path(), "second", KUBECONFIG);
        let list = std::env::join_paths([first, second]).unwrap_or_else(|e| panic!("{e}"));
        let config = load_config(&target(PathBuf::from(list), None))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.cluster_url.to_string(), "http://127.0.0.1:8001/");
    }
}
