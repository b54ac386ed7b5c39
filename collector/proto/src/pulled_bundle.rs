//! The local side of a pull: what the pulled bundle holds, and how a fetched file joins it.
//!
//! A collector compacts its minute segments into an hour file, and its hour files into a day
//! file; the compacted file's manifest entry names, in `replaces`, the sha256 of every file
//! whose rows it holds (transitively). A pull therefore keeps the bundle incremental and
//! free of double counts:
//!
//! - a fetched file that replaces files the bundle lists is listed, with its `replaces`, in
//!   the same manifest write that unlists them; they are deleted after that write (so a crash
//!   in between leaves at most unlisted leftovers, never a row counted twice nor one lost);
//! - a listed file whose sha256 is in the `replaces` of a file the bundle holds (a minute
//!   segment that a lagging collector still lists) is never fetched again;
//! - leftovers of a crash between the manifest write and the deletions (unlisted files whose
//!   content is replaced, and `.part` files of replaced segments) are swept by the next pull.
//!
//! Files the collector no longer lists and no listed file replaces stay: retention ages them
//! out on the node, the bundle keeps the history.
//!
//! The pods table is kept as a history: a collector's snapshot holds the address spans its
//! pod watch still knows (open ones, and those closed in the last week). A fetched snapshot
//! of a node the bundle already holds an earlier file of is merged with it into one file
//! (`karmor_contract::pods::merge_snapshots`), whose manifest entry's `replaces` names the
//! merged files, so that spans the collector has forgotten stay and the snapshot is not
//! fetched again; the bundle holds one file per node.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::client::{PodsFileInfo, SegmentInfo, SegmentList};
use crate::error::ClientError;
use karmor_contract::bundle::{
    self, format_ts, sanitize_component, Manifest, ManifestFile, PodsFile, MANIFEST,
};
use karmor_contract::segment::sha256_file;

/// Serialises read-modify-write of manifests by pulls running in this process.
static MANIFEST_LOCK: Mutex<()> = Mutex::new(());

/// Reads the bundle's manifest under the lock (`None` when there is none yet).
fn read_locked(bundle_dir: &Path) -> Result<Option<Manifest>, ClientError> {
    if bundle_dir.join(MANIFEST).exists() {
        Ok(Some(bundle::read_manifest(bundle_dir)?))
    } else {
        Ok(None)
    }
}

/// What the bundle holds, by sha256: the files it lists, and the files whose rows a listed
/// file holds (with the path of that file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Holdings {
    /// sha256 of every listed file.
    pub listed: BTreeSet<String>,
    /// sha256 of a replaced file → path of the listed file that holds its rows.
    pub covered: BTreeMap<String, String>,
    /// sha256 of every listed pods table file, and of the files merged into them.
    pub pods: BTreeSet<String>,
}

impl Holdings {
    /// The holdings of the bundle at `bundle_dir` (empty when it has no manifest yet).
    pub fn read(bundle_dir: &Path) -> Result<Self, ClientError> {
        let _guard = MANIFEST_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let mut h = Holdings::default();
        if let Some(m) = read_locked(bundle_dir)? {
            for f in &m.files {
                h.add(f);
            }
            h.pods = m
                .pods
                .iter()
                .flat_map(|p| std::iter::once(&p.sha256).chain(&p.replaces))
                .cloned()
                .collect();
        }
        Ok(h)
    }

    fn add(&mut self, f: &ManifestFile) {
        self.listed.insert(f.sha256.clone());
        for r in &f.replaces {
            self.covered.insert(r.clone(), f.path.clone());
        }
    }

    /// Records a landing: `entry` is listed, `removed` are not any more.
    pub fn landed(&mut self, entry: &ManifestFile, removed: &[ManifestFile]) {
        for r in removed {
            self.listed.remove(&r.sha256);
        }
        self.add(entry);
    }

    /// The listed file that holds the rows of `sha256`, when one does.
    pub fn covering(&self, sha256: &str) -> Option<&str> {
        self.covered.get(sha256).map(String::as_str)
    }
}

/// Lists `seg` in the bundle's manifest (with its `replaces`) and, in the same write, unlists
/// the files it replaces; returns their entries, for [`delete_replaced`]. The new entry's
/// `replaces` also names what the unlisted files replaced, so the bundle never forgets a
/// replaced sha256 even if a collector named only the direct inputs.
pub(crate) fn land(
    bundle_dir: &Path,
    seg: &SegmentInfo,
    list: &SegmentList,
    producer: &str,
) -> Result<(ManifestFile, Vec<ManifestFile>), ClientError> {
    let _guard = MANIFEST_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut manifest = read_locked(bundle_dir)?.unwrap_or_else(|| bundle::new_manifest(producer));
    manifest.producer = producer.to_string();
    if let Some(c) = &list.cluster {
        if !manifest.clusters.contains(c) {
            manifest.clusters.push(c.clone());
            manifest.clusters.sort();
        }
    }
    let replaced: BTreeSet<&str> = seg.replaces.iter().map(String::as_str).collect();
    let (removed, kept): (Vec<ManifestFile>, Vec<ManifestFile>) =
        manifest.files.drain(..).partition(|f| {
            f.path != seg.path && f.sha256 != seg.sha256 && replaced.contains(f.sha256.as_str())
        });
    manifest.files = kept;
    manifest.files.retain(|f| f.path != seg.path);
    let mut replaces: BTreeSet<String> = seg.replaces.iter().cloned().collect();
    for r in &removed {
        replaces.extend(r.replaces.iter().cloned());
    }
    let entry = ManifestFile {
        path: seg.path.clone(),
        node: seg.node.clone(),
        sha256: seg.sha256.clone(),
        bytes: seg.bytes,
        rows: seg.rows,
        first: format_ts(seg.first_ns),
        last: format_ts(seg.last_ns),
        events_seen: seg.events_seen,
        events_dropped: seg.events_dropped,
        replaces: replaces.into_iter().collect(),
    };
    manifest.files.push(entry.clone());
    bundle::write_manifest(bundle_dir, &mut manifest)?;
    Ok((entry, removed))
}

/// Lists the fetched pods table file `file` in the bundle's manifest. When the bundle lists
/// earlier files of its node that the collector no longer lists (`current` is what it lists
/// now), the fetched file and those are merged into one history file
/// ([`bundle::merge_pods_files`]: spans the collector has forgotten are kept, spans it closed
/// since are closed), listed in the same manifest write that unlists them, then they are
/// deleted. Returns how many earlier files were merged.
pub(crate) fn land_pods(
    bundle_dir: &Path,
    file: &PodsFileInfo,
    current: &BTreeSet<String>,
    list: &SegmentList,
    producer: &str,
) -> Result<usize, ClientError> {
    let fetched = PodsFile {
        path: file.path.clone(),
        node: file.node.clone(),
        sha256: file.sha256.clone(),
        bytes: file.bytes,
        rows: file.rows,
        replaces: Vec::new(),
    };
    let (removed, merged_count) = {
        let _guard = MANIFEST_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let mut manifest =
            read_locked(bundle_dir)?.unwrap_or_else(|| bundle::new_manifest(producer));
        manifest.producer = producer.to_string();
        if let Some(c) = &list.cluster {
            if !manifest.clusters.contains(c) {
                manifest.clusters.push(c.clone());
                manifest.clusters.sort();
            }
        }
        let (earlier, kept): (Vec<PodsFile>, Vec<PodsFile>) =
            manifest.pods.drain(..).partition(|p| {
                p.node == file.node && p.path != file.path && !current.contains(&p.sha256)
            });
        manifest.pods = kept;
        manifest.pods.retain(|p| p.path != file.path);
        let merged_count = earlier.len();
        let (entry, mut removed) = if earlier.is_empty() {
            (fetched, Vec::new())
        } else {
            let mut inputs = earlier;
            inputs.push(fetched);
            let entry = bundle::merge_pods_files(bundle_dir, &inputs, producer, &file.node)?;
            manifest.pods.retain(|p| p.path != entry.path);
            (entry, inputs)
        };
        removed.retain(|p| p.path != entry.path);
        manifest.pods.push(entry);
        if let Some(v) = &list.pods_schema_version {
            manifest.pods_schema_version = Some(v.clone());
        }
        bundle::write_manifest(bundle_dir, &mut manifest)?;
        (removed, merged_count)
    };
    for p in &removed {
        let path = bundle_dir.join(&p.path);
        if std::fs::remove_file(&path).is_ok() {
            remove_empty_parents(bundle_dir, &path);
        }
    }
    Ok(merged_count)
}

/// Deletes the files of unlisted entries (already gone is fine), and their partition
/// directories when that leaves them empty. Returns the files that could not be deleted.
pub(crate) fn delete_replaced(bundle_dir: &Path, removed: &[ManifestFile]) -> Vec<String> {
    let mut left = Vec::new();
    for f in removed {
        let path = bundle_dir.join(&f.path);
        match std::fs::remove_file(&path) {
            Ok(()) => remove_empty_parents(bundle_dir, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => left.push(format!("{}: {e}", path.display())),
        }
    }
    left
}

/// Removes the empty directories between `file` and `root` (`hour=…`, `date=…`, `node=…`).
fn remove_empty_parents(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            return;
        }
        dir = d.parent();
    }
}

/// The `<sha256 prefix>` of a file named `<kind>-<16 hex>.parquet` (or `.parquet.part`).
fn name_prefix(name: &str) -> Option<&str> {
    let stem = name
        .strip_suffix(".parquet.part")
        .or_else(|| name.strip_suffix(".parquet"))?;
    let (_, hex) = stem.rsplit_once('-')?;
    (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// Deletes what a crash between a manifest write and the deletions left of replaced files
/// under `node=<node>/`: unlisted `*.parquet` files whose sha256 a listed file replaces, and
/// `.part` files named after a replaced sha256 (they will never be fetched). Listed files are
/// never touched. Returns the paths deleted.
pub(crate) fn sweep_replaced(
    bundle_dir: &Path,
    node: &str,
    holdings: &Holdings,
) -> Result<Vec<PathBuf>, ClientError> {
    if holdings.covered.is_empty() {
        return Ok(Vec::new());
    }
    let root = bundle_dir.join(format!("node={}", sanitize_component(node)));
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let _guard = MANIFEST_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let listed: BTreeSet<PathBuf> = read_locked(bundle_dir)?
        .map(|m| m.files.iter().map(|f| bundle_dir.join(&f.path)).collect())
        .unwrap_or_default();
    let prefixes: BTreeSet<&str> = holdings
        .covered
        .keys()
        .filter_map(|s| s.get(..16))
        .collect();
    let mut deleted = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| ClientError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| ClientError::io(&dir, e))?;
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(prefix) = name_prefix(&name) else {
                continue;
            };
            if listed.contains(&path) || !prefixes.contains(prefix) {
                continue;
            }
            let replaced = if name.ends_with(".part") {
                true
            } else {
                sha256_file(&path).is_ok_and(|sha| holdings.covered.contains_key(&sha))
            };
            if replaced && std::fs::remove_file(&path).is_ok() {
                remove_empty_parents(bundle_dir, &path);
                deleted.push(path);
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_their_sha256_prefix() {
        assert_eq!(
            name_prefix("seg-0123456789abcdef.parquet"),
            Some("0123456789abcdef")
        );
        assert_eq!(
            name_prefix("hour-0123456789abcdef.parquet.part"),
            Some("0123456789abcdef")
        );
        assert_eq!(
            name_prefix("day-0123456789ABCDEF.parquet"),
            Some("0123456789ABCDEF")
        );
        for other in [
            "seg-0123.parquet",
            "seg-0123456789abcdeg.parquet",
            "manifest.json",
            "seg-0123456789abcdef.parquet.tmp",
            "0123456789abcdef.parquet",
        ] {
            assert_eq!(name_prefix(other), None, "{other}");
        }
    }
}
