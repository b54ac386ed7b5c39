//! Opening the data a command analyses: bundles merged into a store.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use karmor_analyzer::Store;

use crate::cli::DataArgs;

/// The local cache store used when neither `--bundle` nor `--store` is given.
pub fn default_store_path() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("kubectl-karmor").join("store.duckdb")
}

/// Opens the store and merges the given bundles into it. Bad segments are reported on
/// standard error and skipped; everything else is analysed.
pub fn load(args: &DataArgs) -> Result<Store> {
    let store = match (&args.store, args.bundles.is_empty()) {
        (Some(path), _) => Store::open(path)?,
        (None, false) => Store::in_memory()?,
        (None, true) => {
            let path = default_store_path();
            if !path.exists() {
                bail!(
                    "no data: pass --bundle PATH (a bundle from `kubectl karmor import ... -o BUNDLE` or a collector), or --store FILE"
                );
            }
            Store::open(&path)?
        }
    };
    for bundle in &args.bundles {
        let report = store
            .merge_bundle(bundle)
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
