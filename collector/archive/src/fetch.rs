//! Reading an archive back (`--bundle s3://BUCKET/PREFIX`): one listing finds the clusters
//! (`cluster=<name>/`), their manifests are read, files are chosen by cluster, node and time
//! from the manifests alone, and only those are fetched, into a content-addressed cache
//! (`<cache>/objects/<sha256>.parquet`, sha256-checked before it is kept, reused next time).
//! Each cluster's choice becomes a local bundle directory of hard links
//! (`<cache>/views/<id>/`, with a manifest listing just those files) that the store merges as
//! any bundle.
//!
//! Every cluster read brings its pods table along (each node's latest snapshot, whatever the
//! node and time selection: a connection's peer may have run on a node not selected, and a
//! snapshot covers the past as well), so that peers resolve as they do on the pulled bundle.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use futures::stream::{self, StreamExt};
use karmor_contract::bundle::{
    parse_ts, sanitize_component, write_manifest, ManifestFile, PodsFile,
};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use crate::connect::Remote;
use crate::error::{ArchiveError, Result};
use crate::location::cluster_of_prefix;
use crate::upload::read_remote_manifest;

/// Which files to fetch.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these clusters (all when empty).
    pub clusters: Vec<String>,
    /// Only these nodes (all when empty).
    pub nodes: Vec<String>,
    /// Only files with behaviour at or after this time (ns since the epoch).
    pub since_ns: Option<i64>,
    /// Only files with behaviour before this time (ns since the epoch).
    pub until_ns: Option<i64>,
}

impl Selection {
    /// Whether a manifest entry may hold rows in the selection.
    pub fn wants(&self, f: &ManifestFile) -> bool {
        let node_ok = self.nodes.is_empty()
            || self
                .nodes
                .iter()
                .any(|n| *n == f.node || sanitize_component(n) == sanitize_component(&f.node));
        let since_ok = match (self.since_ns, parse_ts(&f.last)) {
            (Some(since), Some(last)) => last >= since,
            _ => true,
        };
        let until_ok = match (self.until_ns, parse_ts(&f.first)) {
            (Some(until), Some(first)) => first < until,
            _ => true,
        };
        node_ok && since_ok && until_ok
    }
}

/// One cluster's files, as a local bundle directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// The cluster.
    pub cluster: String,
    /// The bundle directory to merge.
    pub dir: PathBuf,
    /// Files it lists.
    pub files: usize,
    /// Pods table files it lists.
    pub pods: usize,
}

/// What [`fetch`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// One bundle directory per cluster read.
    pub views: Vec<ClusterView>,
    /// Manifests read.
    pub manifests: usize,
    /// Files the manifests list.
    pub listed: usize,
    /// Files the selection keeps.
    pub selected: usize,
    /// Pods table files of the clusters read (all of them, whatever the selection; counted in
    /// `fetched` or `reused` too, not in `listed` or `selected`).
    pub pods: usize,
    /// Files downloaded now.
    pub fetched: usize,
    /// Bytes downloaded now.
    pub fetched_bytes: u64,
    /// Files the cache already held.
    pub reused: usize,
    /// Objects that could not be used: `s3://` URL and why (left out; the rest is analysed).
    pub problems: Vec<(String, String)>,
}

/// Reports progress; called from several tasks.
pub trait FetchProgress: Sync {
    /// Files and bytes to download, once known.
    fn planned(&self, _files: usize, _bytes: u64) {}
    /// A file was downloaded (its bytes).
    fn fetched(&self, _bytes: u64) {}
}

/// No progress shown.
pub struct NoProgress;
impl FetchProgress for NoProgress {}

/// The clusters archived under the remote's prefix (one listing request).
pub async fn clusters(remote: &Remote) -> Result<Vec<String>> {
    let prefix = ObjectPath::from(remote.url.prefix.as_str());
    let listing = match remote.store.list_with_delimiter(Some(&prefix)).await {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(ArchiveError::MissingBucket {
                bucket: remote.url.bucket.clone(),
                endpoint: remote.endpoint.clone(),
            })
        }
        Err(e) => return Err(remote.error(e, &remote.url.prefix)),
    };
    let mut out: Vec<String> = listing
        .common_prefixes
        .iter()
        .filter_map(|p| cluster_of_prefix(p.as_ref()).map(str::to_string))
        .collect();
    out.sort();
    Ok(out)
}

/// Fetches what `selection` needs from the archive into `cache` (see the module docs).
pub async fn fetch(
    remote: &Remote,
    cache: &Path,
    selection: &Selection,
    parallel: usize,
    progress: &dyn FetchProgress,
) -> Result<FetchReport> {
    let found = clusters(remote).await?;
    if found.is_empty() {
        return Err(ArchiveError::Other(format!(
            "{}: no archive there (no cluster=<name>/ under it; write one with kubectl karmor archive --to {})",
            remote.url, remote.url
        )));
    }
    let wanted: Vec<String> = if selection.clusters.is_empty() {
        found.clone()
    } else {
        for c in &selection.clusters {
            if !found.iter().any(|f| *f == sanitize_component(c)) {
                return Err(ArchiveError::Other(format!(
                    "{}: no cluster {c:?} archived there (archived: {})",
                    remote.url,
                    found.join(", ")
                )));
            }
        }
        selection
            .clusters
            .iter()
            .map(|c| sanitize_component(c))
            .collect()
    };
    let objects = cache.join("objects");
    std::fs::create_dir_all(&objects).map_err(|e| ArchiveError::io(&objects, e))?;
    let mut report = FetchReport::default();
    let mut chosen = Vec::new();
    for cluster in &wanted {
        let key = remote.url.manifest_key(cluster);
        let Some(manifest) = read_remote_manifest(remote, cluster).await? else {
            return Err(ArchiveError::Other(format!(
                "{}: the archive of cluster {cluster} has no manifest",
                remote.url.url_of(&key)
            )));
        };
        report.manifests += 1;
        report.listed += manifest.files.len();
        let files: Vec<ManifestFile> = manifest
            .files
            .iter()
            .filter(|f| selection.wants(f))
            .cloned()
            .collect();
        report.selected += files.len();
        let pods: Vec<ManifestFile> = manifest.pods.iter().map(pods_entry).collect();
        report.pods += pods.len();
        let files = files.into_iter().chain(pods).collect::<Vec<_>>();
        chosen.push((cluster.clone(), manifest, files));
    }

    let mut missing = Vec::new();
    for (cluster, _, files) in &chosen {
        for f in files {
            let local = object_path(&objects, &f.sha256);
            match std::fs::metadata(&local) {
                Ok(m) if m.len() == f.bytes => report.reused += 1,
                _ => missing.push((cluster.clone(), f.clone())),
            }
        }
    }
    progress.planned(missing.len(), missing.iter().map(|(_, f)| f.bytes).sum());
    let results: Vec<(String, ManifestFile, Result<()>)> = stream::iter(missing)
        .map(|(cluster, f)| {
            let objects = &objects;
            async move {
                let r = download(remote, objects, &cluster, &f).await;
                if r.is_ok() {
                    progress.fetched(f.bytes);
                }
                (cluster, f, r)
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut bad: BTreeSet<(String, String)> = BTreeSet::new();
    for (cluster, f, r) in results {
        match r {
            Ok(()) => {
                report.fetched += 1;
                report.fetched_bytes += f.bytes;
            }
            Err(e) => {
                let url = remote.url.url_of(&remote.url.file_key(&cluster, &f.path));
                report.problems.push((url, e.to_string()));
                bad.insert((cluster, f.sha256));
            }
        }
    }
    report.problems.sort();

    for (cluster, manifest, files) in chosen {
        let files: Vec<ManifestFile> = files
            .into_iter()
            .filter(|f| !bad.contains(&(cluster.clone(), f.sha256.clone())))
            .collect();
        let dir = view_dir(cache, &remote.url.to_string(), &cluster, &files);
        for f in &files {
            let target = dir.join(&f.path);
            if target.exists() {
                continue;
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| ArchiveError::io(parent, e))?;
            }
            let source = object_path(&objects, &f.sha256);
            if std::fs::hard_link(&source, &target).is_err() {
                std::fs::copy(&source, &target).map_err(|e| ArchiveError::io(&target, e))?;
            }
        }
        let mut m = manifest;
        let kept: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
        m.pods.retain(|p| kept.contains(p.path.as_str()));
        let pods_paths: BTreeSet<String> = m.pods.iter().map(|p| p.path.clone()).collect();
        m.files = files
            .into_iter()
            .filter(|f| !pods_paths.contains(&f.path))
            .collect();
        if m.pods.is_empty() {
            m.pods_schema_version = None;
        }
        std::fs::create_dir_all(&dir).map_err(|e| ArchiveError::io(&dir, e))?;
        write_manifest(&dir, &mut m)?;
        report.views.push(ClusterView {
            cluster,
            files: m.files.len(),
            pods: m.pods.len(),
            dir,
        });
    }
    Ok(report)
}

/// A pods table file as the fetch handles it (path, size, sha256; no time range).
fn pods_entry(p: &PodsFile) -> ManifestFile {
    ManifestFile {
        path: p.path.clone(),
        node: p.node.clone(),
        sha256: p.sha256.clone(),
        bytes: p.bytes,
        rows: p.rows,
        first: String::new(),
        last: String::new(),
        events_seen: 0,
        events_dropped: 0,
        replaces: Vec::new(),
    }
}

fn object_path(objects: &Path, sha256: &str) -> PathBuf {
    objects.join(format!("{sha256}.parquet"))
}

/// A view's directory, named by what it lists, so that the same selection finds it again.
fn view_dir(cache: &Path, url: &str, cluster: &str, files: &[ManifestFile]) -> PathBuf {
    let mut h = Sha256::new();
    h.update(url.as_bytes());
    h.update([0]);
    h.update(cluster.as_bytes());
    let mut shas: Vec<&str> = files.iter().map(|f| f.sha256.as_str()).collect();
    shas.sort_unstable();
    for s in shas {
        h.update([0]);
        h.update(s.as_bytes());
    }
    let id = hex::encode(h.finalize());
    cache.join("views").join(&id[..24])
}

/// Downloads one file, checks its sha256, and keeps it under its sha256.
async fn download(remote: &Remote, objects: &Path, cluster: &str, f: &ManifestFile) -> Result<()> {
    let key = remote.url.file_key(cluster, &f.path);
    let got = remote
        .store
        .get(&ObjectPath::from(key.as_str()))
        .await
        .map_err(|e| remote.error(e, &key))?;
    let bytes = got.bytes().await.map_err(|e| remote.error(e, &key))?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != f.sha256 {
        return Err(ArchiveError::Checksum {
            url: remote.url.url_of(&key),
            expected: f.sha256.clone(),
            actual,
        });
    }
    let target = object_path(objects, &f.sha256);
    let tmp = objects.join(format!("{}.{}.tmp", f.sha256, std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| ArchiveError::io(&tmp, e))?;
    std::fs::rename(&tmp, &target).map_err(|e| ArchiveError::io(&target, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(node: &str, first: &str, last: &str) -> ManifestFile {
        ManifestFile {
            path: "p".into(),
            node: node.into(),
            sha256: "s".into(),
            bytes: 1,
            rows: 1,
            first: first.into(),
            last: last.into(),
            events_seen: 1,
            events_dropped: 0,
            replaces: Vec::new(),
        }
    }

    #[test]
    fn files_are_chosen_by_node_and_overlap_with_the_window() {
        let day = |d: u32| parse_ts(&format!("2026-11-{d:02}T00:00:00Z"));
        let sel = Selection {
            nodes: vec!["node-a".into()],
            since_ns: day(20),
            until_ns: day(21),
            ..Selection::default()
        };
        let f = |n: &str, a: u32, b: u32| {
            file(
                n,
                &format!("2026-11-{a:02}T01:00:00Z"),
                &format!("2026-11-{b:02}T02:00:00Z"),
            )
        };
        assert!(sel.wants(&f("node-a", 20, 20)));
        assert!(sel.wants(&f("node-a", 19, 20)), "overlaps the start");
        assert!(!sel.wants(&f("node-a", 19, 19)), "ends before --since");
        assert!(!sel.wants(&f("node-a", 21, 21)), "starts after --until");
        assert!(!sel.wants(&f("node-b", 20, 20)), "another node");
        assert!(Selection::default().wants(&f("node-b", 1, 2)));
    }
}
