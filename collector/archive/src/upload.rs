//! A local bundle into the archive: its listed files under `PREFIX/cluster=<name>/` at their
//! bundle paths (named by content), then the cluster's manifest.
//!
//! - Idempotent: a file the archive's manifest lists (or replaces), or whose object is already
//!   there with its size, is not sent; a run that sends nothing writes nothing.
//! - Verified: each file's sha256 is checked against the local manifest before it is sent (a
//!   corrupt local file is reported and left out), and recorded in the archive's manifest,
//!   which readers check ([`crate::fetch`]).
//! - Resumable: large files go in parts ([`crate::multipart`]).
//! - Compacted files keep the bundle contract: listing an hour or day file unlists the files
//!   it `replaces` in the same manifest write, and their objects are deleted afterwards, so the
//!   archive holds each row once for engines that read every `*.parquet` under it.
//! - The pods table (design §3) goes along, kept as a history: each pods table file the local
//!   manifest lists and the archive's does not (nor holds, through an archived file's
//!   `replaces`) is sent whatever `--older-than` says (a snapshot is current, not old), and
//!   listed in the write that unlists the archived files its `replaces` names (a pull merged
//!   them into it), whose objects are then deleted. A node's earlier snapshots that no file
//!   replaces stay (a collector's own, archived from its data directory): readers merge them
//!   (`karmor_contract::pods::merge_snapshots`), so spans the collector forgot are kept.

use std::collections::{BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use futures::stream::{self, StreamExt};
use karmor_contract::bundle::{
    manifest_json, new_manifest, parse_manifest, parse_ts, read_manifest, Manifest, ManifestFile,
    PodsFile,
};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use sha2::{Digest, Sha256};

use crate::connect::Remote;
use crate::error::{ArchiveError, Result};
use crate::multipart::{self, DEFAULT_PART_SIZE};

/// How [`archive_bundle`] archives.
#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    /// The cluster the bundle's rows come from (default: the manifest's only cluster).
    pub cluster: Option<String>,
    /// Only files whose last behaviour is before this time (ns since the epoch): `--older-than`.
    pub before_ns: Option<i64>,
    /// Files of at least this size go up in parts of this size.
    pub part_size: u64,
    /// Files sent at the same time.
    pub parallel: usize,
    /// Where cut multipart uploads are journalled.
    pub journal_dir: PathBuf,
    /// Recorded in the archive's manifest.
    pub producer: String,
}

impl ArchiveOptions {
    /// Defaults: 8 MiB parts, 4 files at a time.
    pub fn new(journal_dir: PathBuf, producer: &str) -> Self {
        Self {
            cluster: None,
            before_ns: None,
            part_size: DEFAULT_PART_SIZE,
            parallel: 4,
            journal_dir,
            producer: producer.to_string(),
        }
    }
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    /// Sent in one request.
    Uploaded,
    /// Sent in parts; `resumed` of them by an earlier, cut run.
    UploadedInParts {
        /// Parts an earlier run had sent.
        resumed: usize,
        /// Parts this run sent.
        sent: usize,
    },
    /// Its object was already there (an earlier run was cut before the manifest write).
    AlreadyThere,
    /// Not archived: the message says why.
    Failed(String),
}

/// Reports progress; called from several tasks.
pub trait ArchiveProgress: Sync {
    /// The files and bytes to send, once known.
    fn planned(&self, _files: usize, _bytes: u64) {}
    /// Bytes sent.
    fn sent(&self, _bytes: u64) {}
    /// A file is done.
    fn done(&self, _path: &str, _status: &FileStatus) {}
}

/// No progress shown.
pub struct NoProgress;
impl ArchiveProgress for NoProgress {}

/// What [`archive_bundle`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    /// The cluster archived.
    pub cluster: String,
    /// `s3://BUCKET/KEY` of the cluster's manifest.
    pub manifest: String,
    /// Files the local manifest lists.
    pub listed: usize,
    /// Files left for later by `--older-than`.
    pub too_recent: usize,
    /// Files the archive already listed (or held through a compacted file).
    pub already_archived: usize,
    /// Files whose object was there but not yet listed.
    pub already_there: usize,
    /// Files sent.
    pub uploaded: usize,
    /// Bytes sent (parts sent by an earlier run not included).
    pub uploaded_bytes: u64,
    /// Parts of cut uploads that were not sent again.
    pub resumed_parts: usize,
    /// Archived files unlisted and deleted because a newly archived compacted file holds them.
    pub replaced: usize,
    /// Whether the archive's manifest was written.
    pub manifest_written: bool,
    /// Files not archived, with why (bundle path, message).
    pub failed: Vec<(String, String)>,
    /// Pods table files the local manifest lists.
    pub pods_listed: usize,
    /// Pods table files sent (or found there) and listed now.
    pub pods_uploaded: usize,
    /// Archived pods table files unlisted and deleted: a newly archived file holds them (its
    /// `replaces`).
    pub pods_replaced: usize,
}

/// The sha256 of a local file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| ArchiveError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| ArchiveError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Reads the archive's manifest of `cluster`, or `None` when it has none yet.
pub async fn read_remote_manifest(remote: &Remote, cluster: &str) -> Result<Option<Manifest>> {
    Ok(read_versioned(remote, cluster).await?.map(|(m, _)| m))
}

/// The archive's manifest of `cluster` with the version it was read at, for a conditional
/// write.
async fn read_versioned(
    remote: &Remote,
    cluster: &str,
) -> Result<Option<(Manifest, UpdateVersion)>> {
    let key = remote.url.manifest_key(cluster);
    match remote.store.get(&ObjectPath::from(key.as_str())).await {
        Ok(got) => {
            let version = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let bytes = got.bytes().await.map_err(|e| remote.error(e, &key))?;
            let text = String::from_utf8_lossy(&bytes);
            let m = parse_manifest(Path::new(&remote.url.url_of(&key)), &text)?;
            Ok(Some((m, version)))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(remote.error(e, &key)),
    }
}

/// Times a manifest write is retried when another writer (a collector of another node, say)
/// changed the manifest between our read and our write.
const MANIFEST_ATTEMPTS: usize = 8;

/// Lists `added` in the archive's manifest of `cluster`, read at `current`: a conditional write
/// (If-Match on the version read, or create-only), re-read and re-merged when another writer
/// got there first. Returns the paths unlisted (replaced by `added`), whose objects the caller
/// deletes.
async fn write_manifest_merged(
    remote: &Remote,
    cluster: &str,
    local: &Manifest,
    (added, added_pods): (&[ManifestFile], &[PodsFile]),
    producer: &str,
    mut current: Option<(Manifest, UpdateVersion)>,
) -> Result<(Vec<String>, Vec<String>)> {
    let key = remote.url.manifest_key(cluster);
    let location = ObjectPath::from(key.as_str());
    for _ in 0..MANIFEST_ATTEMPTS {
        let (mut manifest, mode) = match current.take() {
            Some((m, v)) => (m, PutMode::Update(v)),
            None => (new_manifest(producer), PutMode::Create),
        };
        let gone = merge_into(&mut manifest, local, cluster, added.to_vec(), producer);
        let gone_pods = merge_pods_into(&mut manifest, local, added_pods);
        let text = manifest_json(&mut manifest).map_err(ArchiveError::Other)?;
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match remote
            .store
            .put_opts(&location, PutPayload::from(text), opts)
            .await
        {
            Ok(_) => return Ok((gone, gone_pods)),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::AlreadyExists { .. }) => {
                current = read_versioned(remote, cluster).await?;
            }
            Err(e) => return Err(remote.error(e, &key)),
        }
    }
    Err(ArchiveError::Store {
        url: remote.url.url_of(&key),
        detail: format!(
            "changed by another writer {MANIFEST_ATTEMPTS} times while this one merged into it; run again"
        ),
    })
}

/// The cluster a bundle is archived under: the one given, else the manifest's only cluster.
pub fn cluster_of(manifest: &Manifest, given: Option<&str>, root: &Path) -> Result<String> {
    if let Some(c) = given {
        return Ok(c.to_string());
    }
    match manifest.clusters.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ArchiveError::Other(format!(
            "{}: the manifest names no cluster: give one with --cluster NAME",
            root.display()
        ))),
        many => Err(ArchiveError::Other(format!(
            "{}: the manifest names several clusters ({}): archive it under one with --cluster NAME",
            root.display(),
            many.join(", ")
        ))),
    }
}

/// Archives the bundle directory `root` (see the module docs).
pub async fn archive_bundle(
    remote: &Remote,
    root: &Path,
    opts: &ArchiveOptions,
    progress: &dyn ArchiveProgress,
) -> Result<ArchiveReport> {
    let local = read_manifest(root)?;
    let cluster = cluster_of(&local, opts.cluster.as_deref(), root)?;
    remote.check().await?;
    let versioned = read_versioned(remote, &cluster).await?;
    let existing = versioned.as_ref().map(|(m, _)| m);
    let mut report = ArchiveReport {
        cluster: cluster.clone(),
        manifest: remote.url.url_of(&remote.url.manifest_key(&cluster)),
        listed: local.files.len(),
        ..ArchiveReport::default()
    };
    let held: HashSet<String> = existing
        .into_iter()
        .flat_map(|m| &m.files)
        .flat_map(|f| std::iter::once(f.sha256.clone()).chain(f.replaces.iter().cloned()))
        .collect();
    let mut todo = Vec::new();
    for f in &local.files {
        let old_enough = match (opts.before_ns, parse_ts(&f.last)) {
            (Some(cut), Some(last)) => last < cut,
            (Some(_), None) => false,
            (None, _) => true,
        };
        if !old_enough {
            report.too_recent += 1;
        } else if held.contains(&f.sha256) {
            report.already_archived += 1;
        } else {
            todo.push(f.clone());
        }
    }
    let held_pods: HashSet<&str> = existing
        .into_iter()
        .flat_map(|m| &m.pods)
        .flat_map(|p| std::iter::once(&p.sha256).chain(&p.replaces))
        .map(String::as_str)
        .collect();
    report.pods_listed = local.pods.len();
    let pods_todo: Vec<PodsFile> = local
        .pods
        .iter()
        .filter(|p| !held_pods.contains(p.sha256.as_str()))
        .cloned()
        .collect();
    progress.planned(
        todo.len() + pods_todo.len(),
        todo.iter().map(|f| f.bytes).sum::<u64>() + pods_todo.iter().map(|p| p.bytes).sum::<u64>(),
    );

    let results: Vec<(ManifestFile, FileStatus)> = stream::iter(todo)
        .map(|f| async {
            let status = match archive_file(remote, root, &cluster, &f, opts, progress).await {
                Ok(s) => s,
                Err(e) => FileStatus::Failed(e.to_string()),
            };
            progress.done(&f.path, &status);
            (f, status)
        })
        .buffer_unordered(opts.parallel.max(1))
        .collect()
        .await;

    let mut added = Vec::new();
    for (f, status) in results {
        match status {
            FileStatus::Uploaded => {
                report.uploaded += 1;
                report.uploaded_bytes += f.bytes;
            }
            FileStatus::UploadedInParts { resumed, sent } => {
                report.uploaded += 1;
                report.resumed_parts += resumed;
                let sent_bytes = (sent as u64 * opts.part_size).min(f.bytes);
                report.uploaded_bytes += sent_bytes;
            }
            FileStatus::AlreadyThere => report.already_there += 1,
            FileStatus::Failed(message) => {
                report.failed.push((f.path.clone(), message));
                continue;
            }
        }
        added.push(f);
    }
    // The pods table's files are few and small: one at a time.
    let mut added_pods = Vec::new();
    for p in pods_todo {
        let as_file = pods_as_file(&p);
        let status = match archive_file(remote, root, &cluster, &as_file, opts, progress).await {
            Ok(s) => s,
            Err(e) => FileStatus::Failed(e.to_string()),
        };
        progress.done(&p.path, &status);
        match status {
            FileStatus::Failed(message) => report.failed.push((p.path.clone(), message)),
            status => {
                if !matches!(status, FileStatus::AlreadyThere) {
                    report.uploaded_bytes += p.bytes;
                }
                report.pods_uploaded += 1;
                added_pods.push(p);
            }
        }
    }
    report.failed.sort();

    if !added.is_empty() || !added_pods.is_empty() {
        let (gone, gone_pods) = write_manifest_merged(
            remote,
            &cluster,
            &local,
            (&added, &added_pods),
            &opts.producer,
            versioned,
        )
        .await?;
        report.manifest_written = true;
        for path in gone_pods {
            let key = remote.url.file_key(&cluster, &path);
            match remote.store.delete(&ObjectPath::from(key.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => report.pods_replaced += 1,
                Err(e) => report.failed.push((
                    path,
                    format!("replaced, but not deleted: {}", remote.error(e, &key)),
                )),
            }
        }
        for path in gone {
            let key = remote.url.file_key(&cluster, &path);
            match remote.store.delete(&ObjectPath::from(key.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => report.replaced += 1,
                Err(e) => report.failed.push((
                    path,
                    format!("replaced, but not deleted: {}", remote.error(e, &key)),
                )),
            }
        }
    }
    Ok(report)
}

/// Lists `added` in `manifest` (the archive's), unlisting the files their `replaces` name;
/// returns the paths unlisted. Drop counters are carried over without counting twice.
fn merge_into(
    manifest: &mut Manifest,
    local: &Manifest,
    cluster: &str,
    added: Vec<ManifestFile>,
    producer: &str,
) -> Vec<String> {
    let replaced: HashSet<&str> = added
        .iter()
        .flat_map(|f| f.replaces.iter().map(String::as_str))
        .collect();
    let mut gone = Vec::new();
    let added_paths: HashSet<&str> = added.iter().map(|f| f.path.as_str()).collect();
    manifest.files.retain(|f| {
        if replaced.contains(f.sha256.as_str()) {
            if !added_paths.contains(f.path.as_str()) {
                gone.push(f.path.clone());
            }
            false
        } else {
            true
        }
    });
    manifest.files.extend(added);
    let mut clusters: BTreeSet<String> = manifest.clusters.iter().cloned().collect();
    clusters.insert(cluster.to_string());
    manifest.clusters = clusters.into_iter().collect();
    manifest.producer = producer.to_string();
    manifest.events_dropped_unattributed = manifest
        .events_dropped_unattributed
        .max(local.events_dropped_unattributed);
    for (input, n) in &local.dropped_by_input {
        manifest.dropped_by_input.insert(input.clone(), *n);
    }
    gone
}

/// Lists `added` pods table files in `manifest` (the archive's), unlisting the archived pods
/// files of their nodes that the local manifest no longer lists (earlier snapshots); returns
/// the paths unlisted.
fn merge_pods_into(manifest: &mut Manifest, local: &Manifest, added: &[PodsFile]) -> Vec<String> {
    if added.is_empty() {
        return Vec::new();
    }
    let held: HashSet<&str> = added
        .iter()
        .flat_map(|p| p.replaces.iter())
        .map(String::as_str)
        .collect();
    let added_paths: HashSet<&str> = added.iter().map(|p| p.path.as_str()).collect();
    let mut gone = Vec::new();
    manifest.pods.retain(|p| {
        if added_paths.contains(p.path.as_str()) {
            return false;
        }
        let merged = held.contains(p.sha256.as_str());
        if merged {
            gone.push(p.path.clone());
        }
        !merged
    });
    manifest.pods.extend(added.iter().cloned());
    if let Some(v) = &local.pods_schema_version {
        manifest.pods_schema_version = Some(v.clone());
    }
    gone
}

/// A pods table file as [`archive_file`] sends it (path, size, sha256).
fn pods_as_file(p: &PodsFile) -> ManifestFile {
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

/// Sends one file, unless its object is already there.
async fn archive_file(
    remote: &Remote,
    root: &Path,
    cluster: &str,
    f: &ManifestFile,
    opts: &ArchiveOptions,
    progress: &dyn ArchiveProgress,
) -> Result<FileStatus> {
    let local = root.join(&f.path);
    let meta = std::fs::metadata(&local).map_err(|e| ArchiveError::io(&local, e))?;
    if meta.len() != f.bytes {
        return Err(ArchiveError::Other(format!(
            "{}: {} bytes, the manifest says {}",
            local.display(),
            meta.len(),
            f.bytes
        )));
    }
    let sha = {
        let local = local.clone();
        tokio::task::spawn_blocking(move || sha256_file(&local))
            .await
            .map_err(|e| ArchiveError::Other(e.to_string()))??
    };
    if sha != f.sha256 {
        return Err(ArchiveError::Other(format!(
            "{}: sha256 {sha} does not match the manifest's {}: not archived",
            local.display(),
            f.sha256
        )));
    }
    let key = remote.url.file_key(cluster, &f.path);
    let location = ObjectPath::from(key.as_str());
    match remote.store.head(&location).await {
        Ok(m) if m.size == f.bytes => return Ok(FileStatus::AlreadyThere),
        Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(remote.error(e, &key)),
    }
    if f.bytes >= opts.part_size {
        let o = multipart::upload(
            remote,
            &local,
            &key,
            (&f.sha256, f.bytes),
            opts.part_size,
            &opts.journal_dir,
            &|n| progress.sent(n),
        )
        .await?;
        return Ok(FileStatus::UploadedInParts {
            resumed: o.resumed_parts,
            sent: o.sent_parts,
        });
    }
    let bytes = std::fs::read(&local).map_err(|e| ArchiveError::io(&local, e))?;
    remote
        .store
        .put(&location, PutPayload::from(bytes))
        .await
        .map_err(|e| remote.error(e, &key))?;
    progress.sent(f.bytes);
    Ok(FileStatus::Uploaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, sha: &str, replaces: &[&str]) -> ManifestFile {
        ManifestFile {
            path: path.into(),
            node: "n".into(),
            sha256: sha.into(),
            bytes: 1,
            rows: 1,
            first: "2026-11-20T08:00:00Z".into(),
            last: "2026-11-20T08:10:00Z".into(),
            events_seen: 1,
            events_dropped: 0,
            replaces: replaces.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_compacted_file_unlists_what_it_replaces() {
        let mut archive = new_manifest("t");
        archive.files = vec![file("a/seg-1", "s1", &[]), file("a/seg-2", "s2", &[])];
        let local = new_manifest("t");
        let gone = merge_into(
            &mut archive,
            &local,
            "prod",
            vec![file("a/hour-1", "h1", &["s1", "s2"])],
            "t",
        );
        assert_eq!(gone, vec!["a/seg-1".to_string(), "a/seg-2".to_string()]);
        let paths: Vec<&str> = archive.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec!["a/hour-1"]);
        assert_eq!(archive.clusters, vec!["prod".to_string()]);
    }

    fn pods(path: &str, node: &str, sha: &str, replaces: &[&str]) -> PodsFile {
        PodsFile {
            path: path.into(),
            node: node.into(),
            sha256: sha.into(),
            bytes: 1,
            rows: 1,
            replaces: replaces.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn a_merged_pods_file_unlists_what_it_replaces_and_other_snapshots_stay() {
        let mut archive = new_manifest("t");
        archive.pods = vec![
            pods("pods/node=a/pods-1", "a", "p1", &[]),
            pods("pods/node=b/pods-2", "b", "p2", &[]),
        ];
        // node a's history, merged by a pull from p1 and the collector's p3.
        let mut local = new_manifest("t");
        local.pods = vec![pods("pods/node=a/pods-4", "a", "p4", &["p1", "p3"])];
        local.pods_schema_version = Some("1.0".into());
        let gone = merge_pods_into(&mut archive, &local, &local.pods.clone());
        assert_eq!(gone, vec!["pods/node=a/pods-1".to_string()]);
        let paths: Vec<&str> = archive.pods.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["pods/node=b/pods-2", "pods/node=a/pods-4"]);
        assert_eq!(archive.pods_schema_version.as_deref(), Some("1.0"));
        // A collector's own next snapshot of node b replaces nothing: the earlier one stays,
        // history that readers merge.
        let mut collector = new_manifest("t");
        collector.pods = vec![pods("pods/node=b/pods-5", "b", "p5", &[])];
        assert!(merge_pods_into(&mut archive, &collector, &collector.pods.clone()).is_empty());
        assert_eq!(archive.pods.len(), 3);
        // Nothing added: nothing unlisted.
        assert!(merge_pods_into(&mut archive, &local, &[]).is_empty());
    }

    #[test]
    fn a_bundle_of_several_clusters_needs_a_name() {
        let mut m = new_manifest("t");
        m.clusters = vec!["a".into(), "b".into()];
        let e = cluster_of(&m, None, Path::new("/b"))
            .err()
            .map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("several clusters (a, b)"));
        assert_eq!(
            cluster_of(&m, Some("c"), Path::new("/b")).ok(),
            Some("c".into())
        );
        m.clusters = vec!["a".into()];
        assert_eq!(cluster_of(&m, None, Path::new("/b")).ok(), Some("a".into()));
    }
}
