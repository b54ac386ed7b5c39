//! The collector's data directory: a live bundle with rotation and retention.
//!
//! Each flushed window becomes one segment per node and hour. It is encoded in memory first, so
//! retention can make room for it before it is written (atomically); then the manifest is
//! rewritten. The directory is always a valid bundle that `kubectl karmor` reads in place, and
//! never holds more than the byte limit. Retention removes the oldest segments, first beyond
//! `max_age`, then until the new segment fits within `max_bytes`.
//!
//! On start, temporary files left by a crash are removed, segments missing from the manifest
//! (a crash between the rename and the manifest write) are listed again, and retention runs
//! once, so a lowered limit holds from the start.
//!
//! Compaction (the warm tier, [`crate::tiers`], run by [`crate::compactor`]) goes through
//! [`DataDir::claim_compaction`], [`DataDir::install_compacted`], [`DataDir::swap_compacted`]
//! and [`DataDir::remove_replaced`]: the output is written and renamed into place, then one
//! manifest write lists it (with `replaces`) and unlists its inputs, and only then are the
//! inputs deleted. Files being compacted are never removed by retention, and the bytes a
//! compaction may write are reserved beforehand, so the byte limit holds meanwhile. On start, a
//! compaction cut short is finished or discarded: unlisted hour and day files whose inputs are
//! still listed are deleted, and so are unlisted files that a listed file replaces (any other
//! unlisted file, e.g. with the manifest lost, is listed again).

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use karmor_contract::bundle::{
    compaction_inputs_listed, format_ts, is_compacted_file, new_manifest, parquet_files, parse_ts,
    read_manifest, write_manifest, Manifest, ManifestFile, PreparedSegment, MANIFEST,
};
use karmor_contract::compact::Compacted;
use karmor_contract::error::ContractError;
use karmor_contract::schema::Event;
use karmor_contract::segment::{read_footer, sha256_file, SegmentMeta, SegmentRows, TMP_SUFFIX};

use crate::tiers::{plan, CompactionPolicy, Job};

/// The scratch directory of compactions under the data directory (hidden: never read as part
/// of the bundle); emptied on start and after each compaction.
pub const COMPACT_SCRATCH: &str = ".compact-tmp";

/// Retention limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Total bytes of segments kept (0: no limit).
    pub max_bytes: u64,
    /// Age after which a segment is removed (by its last row).
    pub max_age: Option<Duration>,
}

/// What one write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Segments written.
    pub written: Vec<ManifestFile>,
    /// Segments removed by retention.
    pub removed: Vec<String>,
}

/// What start-up found of a crash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segments on disk but not in the manifest, listed again.
    pub relisted: Vec<String>,
    /// Compaction outputs not yet listed when the collector stopped: deleted (their inputs are
    /// still listed).
    pub discarded: Vec<String>,
    /// Files that a listed file replaces, whose deletion was cut short: deleted.
    pub replaced: Vec<String>,
}

/// A data directory being written.
pub struct DataDir {
    root: PathBuf,
    producer: String,
    manifest: Manifest,
    retention: Retention,
    /// Paths of files being compacted: retention leaves them alone.
    busy: HashSet<String>,
    /// Bytes a running compaction may write, kept free within the byte limit.
    reserved: u64,
    /// sha256 of inputs found corrupt: left listed, left out of compactions until a restart.
    corrupt: HashSet<String>,
    recovery: Recovery,
    /// With an archive tier (`--archive-to`): what is archived, and what retention lost.
    archive: Option<ArchiveLedger>,
}

/// What retention knows of the archive tier: the files (by sha256) the archive holds, and the
/// files the byte limit forced out before they were archived (a loss, reported in Health and
/// `/metrics`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ArchiveLedger {
    archived: HashSet<String>,
    /// Files deleted unarchived because the byte limit left no other choice.
    pub lost_files: u64,
    /// Their bytes.
    pub lost_bytes: u64,
}

impl DataDir {
    /// Opens (or creates) the directory, cleaning up after a crash.
    pub fn open(root: &Path, producer: &str, retention: Retention) -> Result<Self, ContractError> {
        Self::open_with_archive(root, producer, retention, false)
    }

    /// [`DataDir::open`], with an archive tier when `archive` is set: retention then never
    /// deletes a file the archive does not hold yet ([`DataDir::mark_archived`]), by age or
    /// otherwise, unless the byte limit cannot be kept any other way; such a file is counted
    /// as lost ([`DataDir::archive_ledger`]).
    pub fn open_with_archive(
        root: &Path,
        producer: &str,
        retention: Retention,
        archive: bool,
    ) -> Result<Self, ContractError> {
        fs::create_dir_all(root).map_err(|e| ContractError::io(root, e))?;
        remove_scratch(root)?;
        remove_tmp_files(root)?;
        let mut manifest = if root.join(MANIFEST).exists() {
            read_manifest(root)?
        } else {
            new_manifest(producer)
        };
        manifest.producer = producer.to_string();
        // Drop entries whose file is gone; list files the manifest missed, except what a
        // compaction cut short left behind.
        manifest.files.retain(|f| root.join(&f.path).exists());
        manifest.pods.retain(|f| root.join(&f.path).exists());
        let listed: BTreeSet<String> = manifest.files.iter().map(|f| f.path.clone()).collect();
        let replaced: BTreeSet<String> = manifest
            .files
            .iter()
            .flat_map(|f| f.replaces.iter().cloned())
            .collect();
        let listed_refs: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
        let mut recovery = Recovery::default();
        for path in parquet_files(root)? {
            let rel = relative(root, &path);
            if listed.contains(&rel) {
                continue;
            }
            if is_compacted_file(&rel) && compaction_inputs_listed(&rel, &listed_refs) {
                // A compaction cut short before its manifest write: its inputs are listed.
                remove_unlisted(&path)?;
                recovery.discarded.push(rel);
                continue;
            }
            if !replaced.is_empty() && sha256_file(&path).is_ok_and(|s| replaced.contains(&s)) {
                remove_unlisted(&path)?;
                recovery.replaced.push(rel);
                continue;
            }
            if let Some(entry) = describe_file(&path, rel.clone()) {
                manifest.files.push(entry);
                recovery.relisted.push(rel);
            }
        }
        let mut dir = DataDir {
            root: root.to_path_buf(),
            producer: producer.to_string(),
            manifest,
            retention,
            busy: HashSet::new(),
            reserved: 0,
            corrupt: HashSet::new(),
            recovery,
            archive: archive.then(ArchiveLedger::default),
        };
        dir.apply_retention(now_ns(), 0)?;
        write_manifest(&dir.root, &mut dir.manifest)?;
        Ok(dir)
    }

    /// Records files (by sha256) the archive holds, directly or through a compacted file
    /// that replaces them: retention may delete them now.
    pub fn mark_archived(&mut self, sha256s: impl IntoIterator<Item = String>) {
        if let Some(l) = &mut self.archive {
            l.archived.extend(sha256s);
            let listed: HashSet<&str> = self
                .manifest
                .files
                .iter()
                .map(|f| f.sha256.as_str())
                .collect();
            // Forget what is no longer here (it may come back only with the same content).
            l.archived.retain(|s| listed.contains(s.as_str()));
        }
    }

    /// The archive tier's ledger, when there is one.
    pub fn archive_ledger(&self) -> Option<&ArchiveLedger> {
        self.archive.as_ref()
    }

    /// What [`DataDir::open`] found of a crash.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The directory's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Who writes the directory, e.g. `karmor-collector 0.1.0`.
    pub fn producer(&self) -> &str {
        &self.producer
    }

    /// Writes this node's pods table snapshot (every span the pod watch knows) as one file
    /// under `pods/node=<node>/`, lists it, and unlists and deletes the node's earlier
    /// snapshots, which it holds. Writing the same snapshot again changes nothing.
    pub fn write_pods(
        &mut self,
        node: &str,
        rows: Vec<karmor_contract::pods::PodAddress>,
    ) -> Result<(), ContractError> {
        if rows.is_empty() {
            return Ok(());
        }
        let entry = karmor_contract::bundle::add_pods(
            &self.root,
            &mut self.manifest,
            rows,
            &self.producer,
            node,
        )?;
        let (old, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.manifest.pods)
            .into_iter()
            .partition(|f| f.node == node && f.path != entry.path);
        self.manifest.pods = kept;
        write_manifest(&self.root, &mut self.manifest)?;
        for f in old {
            let _ = fs::remove_file(self.root.join(&f.path));
        }
        Ok(())
    }

    /// The manifest as last written.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Total bytes of the segments.
    pub fn bytes(&self) -> u64 {
        self.manifest.files.iter().map(|f| f.bytes).sum()
    }

    /// Writes rows (grouped by node and hour into segments) and rewrites the manifest. Segments
    /// are encoded in memory first, so retention makes room for them before anything is written:
    /// the directory never holds more than `max_bytes` (unless one window alone is larger).
    /// `meta` carries the producer's counters for the window.
    pub fn write(
        &mut self,
        rows: Vec<Event>,
        meta: &SegmentMeta,
        now_ns: i64,
    ) -> Result<WriteOutcome, ContractError> {
        let mut groups: std::collections::BTreeMap<(String, i64), Vec<Event>> = Default::default();
        const HOUR: i64 = 3_600_000_000_000;
        for e in rows {
            groups
                .entry((e.node.clone(), e.ts_first.div_euclid(HOUR)))
                .or_default()
                .push(e);
        }
        let mut prepared = Vec::with_capacity(groups.len());
        for (i, ((node, _), rows)) in groups.into_iter().enumerate() {
            let events_seen = rows.iter().map(|e| e.count).sum();
            let seg_meta = self.segment_meta(meta, node, events_seen, i == 0);
            prepared.push(PreparedSegment::encode(&self.root, rows, &seg_meta)?);
        }
        self.publish(prepared, now_ns)
    }

    /// [`DataDir::write`] for rows already grouped into segments of `node` (one per hour,
    /// earliest first) and in segment order: each is encoded holding only a chunk of its rows
    /// as events at a time ([`PreparedSegment::encode_rows`]).
    pub fn write_rows(
        &mut self,
        node: &str,
        segments: &[&dyn SegmentRows],
        meta: &SegmentMeta,
        now_ns: i64,
    ) -> Result<WriteOutcome, ContractError> {
        let mut prepared = Vec::with_capacity(segments.len());
        for rows in segments {
            if rows.row_count() == 0 {
                continue;
            }
            let first = prepared.is_empty();
            let seg_meta = self.segment_meta(meta, node.to_string(), rows.events_seen(), first);
            prepared.push(PreparedSegment::encode_rows(&self.root, *rows, &seg_meta)?);
        }
        self.publish(prepared, now_ns)
    }

    /// The metadata of one segment of a window: its own node and raw events; the window's
    /// counters (drops, windows) go on its `first` segment only, so that sums stay true.
    fn segment_meta(
        &self,
        meta: &SegmentMeta,
        node: String,
        events_seen: u64,
        first: bool,
    ) -> SegmentMeta {
        SegmentMeta {
            node,
            producer: self.producer.clone(),
            events_seen,
            events_dropped: if first { meta.events_dropped } else { 0 },
            windows: if first { meta.windows } else { 0 },
            ..meta.clone()
        }
    }

    /// Makes room for the prepared segments (retention), writes them and the manifest.
    fn publish(
        &mut self,
        prepared: Vec<PreparedSegment>,
        now_ns: i64,
    ) -> Result<WriteOutcome, ContractError> {
        let mut out = WriteOutcome::default();
        let incoming: u64 = prepared
            .iter()
            .filter(|p| !self.manifest.files.iter().any(|f| f.path == p.entry().path))
            .map(|p| p.entry().bytes)
            .sum();
        out.removed = self.apply_retention(now_ns, incoming)?;
        for p in prepared {
            out.written.push(p.publish(&self.root, &mut self.manifest)?);
        }
        // New segments can be beyond the age limit themselves (late events).
        out.removed.extend(self.apply_retention(now_ns, 0)?);
        write_manifest(&self.root, &mut self.manifest)?;
        Ok(out)
    }

    /// Removes the oldest files, whatever their tier (by the end of their time range): those
    /// beyond the age limit, then until `incoming` more bytes (and the bytes reserved by a
    /// running compaction) fit within the byte limit. Files being compacted are left alone.
    fn apply_retention(
        &mut self,
        now_ns: i64,
        incoming: u64,
    ) -> Result<Vec<String>, ContractError> {
        let last = |f: &ManifestFile| parse_ts(&f.last).unwrap_or(i64::MIN);
        // Each timestamp is parsed once per call, not once per comparison.
        self.manifest.files.sort_by_cached_key(last);
        let n = self.manifest.files.len();
        let mut gone = vec![false; n];
        let removable = |f: &ManifestFile| !self.busy.contains(&f.path);
        // With an archive tier, a file goes only once the archive holds it.
        let archived = |f: &ManifestFile| {
            self.archive
                .as_ref()
                .is_none_or(|l| l.archived.contains(&f.sha256))
        };
        if let Some(age) = self.retention.max_age {
            let cutoff = now_ns.saturating_sub(age.as_nanos().min(i64::MAX as u128) as i64);
            for (i, f) in self.manifest.files.iter().enumerate() {
                if last(f) >= cutoff {
                    break;
                }
                gone[i] = removable(f) && archived(f);
            }
        }
        let mut lost = (0u64, 0u64);
        if self.retention.max_bytes > 0 {
            let mut kept: u64 = self
                .manifest
                .files
                .iter()
                .zip(&gone)
                .filter(|(_, g)| !**g)
                .map(|(f, _)| f.bytes)
                .sum();
            let wanted = incoming + self.reserved;
            // Archived files first (oldest first); unarchived ones only if the limit cannot be
            // kept otherwise, each a loss.
            for forced in [false, true] {
                for (i, f) in self.manifest.files.iter().enumerate() {
                    if kept + wanted <= self.retention.max_bytes {
                        break;
                    }
                    if !gone[i] && removable(f) && (forced || archived(f)) {
                        gone[i] = true;
                        kept -= f.bytes;
                        if !archived(f) {
                            lost.0 += 1;
                            lost.1 += f.bytes;
                        }
                    }
                }
            }
        }
        if let Some(l) = &mut self.archive {
            l.lost_files += lost.0;
            l.lost_bytes += lost.1;
        }
        if !gone.contains(&true) {
            return Ok(Vec::new());
        }
        // The manifest stops listing the files before they go, so that a reader (or a
        // restart after a crash) never finds it naming a file that is not there.
        let files = std::mem::take(&mut self.manifest.files);
        let (removed, kept): (Vec<_>, Vec<_>) = files.into_iter().zip(gone).partition(|(_, g)| *g);
        self.manifest.files = kept.into_iter().map(|(f, _)| f).collect();
        write_manifest(&self.root, &mut self.manifest)?;
        removed
            .into_iter()
            .map(|(f, _)| self.remove_file(f))
            .collect()
    }

    /// Claims the oldest compaction due at `now_ns` ([`crate::tiers::plan`]): its inputs are
    /// marked busy (retention leaves them alone) and their bytes reserved within the byte limit
    /// (retention makes room now). A compaction whose inputs alone take more than half the byte
    /// limit is not claimed (its output would not fit beside them). `None` when nothing is due.
    /// The caller runs it and ends with [`DataDir::remove_replaced`] or
    /// [`DataDir::release_compaction`].
    pub fn claim_compaction(
        &mut self,
        now_ns: i64,
        policy: CompactionPolicy,
    ) -> Result<Option<Job>, ContractError> {
        let skip =
            |f: &ManifestFile| self.busy.contains(&f.path) || self.corrupt.contains(&f.sha256);
        let max = self.retention.max_bytes;
        let job = plan(&self.manifest.files, skip, now_ns, policy)
            .into_iter()
            .find(|j| max == 0 || j.input_bytes().saturating_mul(2) <= max);
        let Some(job) = job else {
            return Ok(None);
        };
        for f in &job.inputs {
            self.busy.insert(f.path.clone());
        }
        self.reserved += job.input_bytes();
        if let Err(e) = self.apply_retention(now_ns, 0) {
            self.release_compaction(&job);
            return Err(e);
        }
        Ok(Some(job))
    }

    /// Ends a claimed compaction that will not finish (it failed): its inputs stay listed.
    pub fn release_compaction(&mut self, job: &Job) {
        for f in &job.inputs {
            self.busy.remove(&f.path);
        }
        self.reserved = self.reserved.saturating_sub(job.input_bytes());
    }

    /// Leaves the input with this sha256 out of compactions (it is corrupt) until a restart;
    /// it stays listed.
    pub fn mark_corrupt(&mut self, sha256: &str) {
        self.corrupt.insert(sha256.to_string());
    }

    /// Whether all of `job`'s inputs are still listed as they were claimed.
    fn inputs_listed(&self, job: &Job) -> bool {
        job.inputs.iter().all(|i| {
            self.manifest
                .files
                .iter()
                .any(|f| f.path == i.path && f.sha256 == i.sha256)
        })
    }

    /// Moves a compaction's finished output (`written`, fsynced, under the scratch directory)
    /// into its partition as `hour-<sha16>.parquet` or `day-<sha16>.parquet`, not yet listed.
    /// Returns the manifest entry it will get: counters summed from the inputs' entries,
    /// `replaces` transitive.
    pub fn install_compacted(
        &mut self,
        job: &Job,
        written: &Compacted,
    ) -> Result<ManifestFile, ContractError> {
        let w = &written.written;
        let rel = job.output_rel(&w.sha256);
        if job.inputs.iter().any(|f| f.path == rel) || !self.inputs_listed(job) {
            return Err(ContractError::Manifest {
                path: self.root.join(MANIFEST),
                message: format!(
                    "compaction into {rel}: its inputs changed while it ran (nothing replaced)"
                ),
            });
        }
        let dest = self.root.join(&rel);
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).map_err(|e| ContractError::io(dir, e))?;
        }
        fs::rename(&w.path, &dest).map_err(|e| ContractError::io(&dest, e))?;
        if let Some(dir) = dest.parent() {
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(ManifestFile {
            path: rel,
            node: written.meta.node.clone(),
            sha256: w.sha256.clone(),
            bytes: w.bytes,
            rows: w.rows,
            first: format_ts(w.ts_first),
            last: format_ts(w.ts_last),
            events_seen: job.inputs.iter().map(|f| f.events_seen).sum(),
            events_dropped: job.inputs.iter().map(|f| f.events_dropped).sum(),
            replaces: job.replaces(),
        })
    }

    /// One manifest write lists the installed output and unlists its inputs (atomically).
    pub fn swap_compacted(&mut self, job: &Job, output: ManifestFile) -> Result<(), ContractError> {
        if !self.inputs_listed(job) {
            return Err(ContractError::Manifest {
                path: self.root.join(MANIFEST),
                message: format!(
                    "compaction into {}: its inputs changed while it ran (nothing replaced)",
                    output.path
                ),
            });
        }
        let before = self.manifest.files.clone();
        let inputs: HashSet<&str> = job.inputs.iter().map(|f| f.path.as_str()).collect();
        self.manifest
            .files
            .retain(|f| !inputs.contains(f.path.as_str()));
        self.manifest.files.push(output);
        if let Err(e) = write_manifest(&self.root, &mut self.manifest) {
            self.manifest.files = before;
            return Err(e);
        }
        Ok(())
    }

    /// Deletes the inputs of a compaction whose output is listed, ends it (inputs no longer
    /// busy, reservation released) and applies retention. Returns the paths deleted.
    pub fn remove_replaced(
        &mut self,
        job: &Job,
        now_ns: i64,
    ) -> Result<Vec<String>, ContractError> {
        let mut removed = Vec::with_capacity(job.inputs.len());
        let mut first_error = None;
        for f in &job.inputs {
            match self.remove_file(f.clone()) {
                Ok(p) => removed.push(p),
                // Left on disk, unlisted and replaced: the next start deletes it.
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        self.release_compaction(job);
        self.apply_retention(now_ns, 0)?;
        match first_error {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }

    fn remove_file(&self, f: ManifestFile) -> Result<String, ContractError> {
        let path = self.root.join(&f.path);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ContractError::io(path, e)),
        }
        // Remove partition directories left empty (best effort).
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(f.path)
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

fn describe_file(path: &Path, rel: String) -> Option<ManifestFile> {
    let footer = read_footer(path).ok()?;
    let (events, first, last) = match karmor_contract::segment::read_segment(path) {
        Ok((_, rows)) => (
            rows.iter().map(|e| e.count).sum(),
            rows.iter().map(|e| e.ts_first).min().unwrap_or(0),
            rows.iter().map(|e| e.ts_last).max().unwrap_or(0),
        ),
        Err(_) => return None,
    };
    Some(ManifestFile {
        path: rel,
        node: footer.meta.node.clone(),
        sha256: sha256_file(path).ok()?,
        bytes: fs::metadata(path).ok()?.len(),
        rows: footer.rows,
        first: format_ts(first),
        last: format_ts(last),
        events_seen: footer.meta.events_seen.max(events),
        events_dropped: footer.meta.events_dropped,
        replaces: Vec::new(),
    })
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Deletes a file that the manifest does not list.
fn remove_unlisted(path: &Path) -> Result<(), ContractError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ContractError::io(path, e)),
    }
}

/// Removes the compactions' scratch directory (runs of a compaction a crash cut short).
pub fn remove_scratch(root: &Path) -> Result<(), ContractError> {
    let scratch = root.join(COMPACT_SCRATCH);
    match fs::remove_dir_all(&scratch) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ContractError::io(scratch, e)),
    }
}

fn remove_tmp_files(root: &Path) -> Result<(), ContractError> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| ContractError::io(&dir, e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
                fs::remove_file(&path).map_err(|e| ContractError::io(&path, e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use karmor_contract::bundle::verify_bundle;
    use karmor_contract::schema::{schema_version, Op};

    const T0: i64 = 1_763_625_600_000_000_000;
    const SEC: i64 = 1_000_000_000;

    fn rows(n: usize, t: i64) -> Vec<Event> {
        (0..n)
            .map(|i| Event {
                ts_first: t,
                ts_last: t,
                count: 1,
                node: "n1".into(),
                op: Op::File,
                path: Some(format!("/data/file-{i}-{t}")),
                ..Event::default()
            })
            .collect()
    }

    /// Bytes of the segments on disk, whatever the manifest says.
    fn on_disk(dir: &Path) -> u64 {
        parquet_files(dir)
            .unwrap()
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum()
    }

    fn meta() -> SegmentMeta {
        SegmentMeta {
            schema_version: schema_version(),
            windows: 1,
            ..SegmentMeta::default()
        }
    }

    #[test]
    fn retention_keeps_the_directory_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let limit = 200_000;
        let mut d = DataDir::open(
            dir.path(),
            "test",
            Retention {
                max_bytes: limit,
                max_age: None,
            },
        )
        .unwrap();
        let mut largest = 0;
        for i in 0..40 {
            let out = d
                .write(rows(300, T0 + i * SEC), &meta(), T0 + i * SEC)
                .unwrap();
            largest = largest.max(out.written.iter().map(|f| f.bytes).max().unwrap_or(0));
            let used = on_disk(dir.path());
            assert!(used <= limit, "after write {i}: {used} > {limit}");
            assert_eq!(used, d.bytes());
        }
        assert!(d.manifest().files.len() < 40, "old segments were removed");
        assert!(verify_bundle(dir.path())
            .unwrap()
            .iter()
            .all(|c| c.problem.is_none()));
        assert!(largest > 0);
    }

    #[test]
    fn the_pods_table_snapshot_replaces_the_one_before_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = DataDir::open(
            dir.path(),
            "test",
            Retention {
                max_bytes: 0,
                max_age: None,
            },
        )
        .unwrap();
        let row = |pod: &str, to: Option<i64>| karmor_contract::pods::PodAddress {
            node: "n1".into(),
            namespace: "shop".into(),
            pod: pod.into(),
            ip: "10.0.0.5".into(),
            valid_from: T0,
            valid_to: to,
            ..Default::default()
        };
        d.write_pods("n1", vec![row("web-1", None)]).unwrap();
        let first = d.manifest().pods.clone();
        d.write_pods("n1", vec![row("web-1", None)]).unwrap();
        assert_eq!(
            d.manifest().pods,
            first,
            "the same snapshot changes nothing"
        );
        d.write_pods("n1", vec![row("web-1", Some(T0 + SEC)), row("web-2", None)])
            .unwrap();
        let now = &d.manifest().pods;
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].rows, 2);
        assert_ne!(now[0].path, first[0].path);
        assert!(!dir.path().join(&first[0].path).exists());
        let files = karmor_contract::bundle::pods_files(dir.path()).unwrap();
        assert_eq!(files.len(), 1);
        assert!(verify_bundle(dir.path())
            .unwrap()
            .iter()
            .all(|c| c.problem.is_none()));
        // Reopened, the snapshot is still listed; a lost file is unlisted.
        drop(d);
        let d = DataDir::open(
            dir.path(),
            "test",
            Retention {
                max_bytes: 0,
                max_age: None,
            },
        )
        .unwrap();
        assert_eq!(d.manifest().pods.len(), 1);
        fs::remove_file(&files[0]).unwrap();
        drop(d);
        let d = DataDir::open(
            dir.path(),
            "test",
            Retention {
                max_bytes: 0,
                max_age: None,
            },
        )
        .unwrap();
        assert!(d.manifest().pods.is_empty());
    }

    #[test]
    fn retention_by_age_removes_old_segments() {
        let dir = tempfile::tempdir().unwrap();
        let ret = Retention {
            max_bytes: 0,
            max_age: Some(Duration::from_secs(3600)),
        };
        let mut d = DataDir::open(dir.path(), "test", ret).unwrap();
        d.write(rows(5, T0), &meta(), T0).unwrap();
        let out = d
            .write(rows(5, T0 + 1800 * SEC), &meta(), T0 + 1800 * SEC)
            .unwrap();
        assert!(out.removed.is_empty(), "30 minutes old: kept");
        let out = d
            .write(rows(5, T0 + 7200 * SEC), &meta(), T0 + 7200 * SEC)
            .unwrap();
        assert_eq!(out.removed.len(), 2, "both older than an hour");
        assert_eq!(d.manifest().files.len(), 1);
    }

    #[test]
    fn with_an_archive_age_retention_waits_for_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let ret = Retention {
            max_bytes: 0,
            max_age: Some(Duration::from_secs(3600)),
        };
        let mut d = DataDir::open_with_archive(dir.path(), "test", ret, true).unwrap();
        let first = d.write(rows(5, T0), &meta(), T0).unwrap().written;
        let out = d
            .write(rows(5, T0 + 7200 * SEC), &meta(), T0 + 7200 * SEC)
            .unwrap();
        assert!(
            out.removed.is_empty(),
            "two hours old but not archived: kept"
        );
        assert_eq!(d.manifest().files.len(), 2);
        d.mark_archived(first.iter().map(|f| f.sha256.clone()));
        let out = d
            .write(rows(5, T0 + 7300 * SEC), &meta(), T0 + 7300 * SEC)
            .unwrap();
        assert_eq!(
            out.removed,
            vec![first[0].path.clone()],
            "archived: removed"
        );
        let ledger = d.archive_ledger().cloned().unwrap_or_default();
        assert_eq!((ledger.lost_files, ledger.lost_bytes), (0, 0));
    }

    #[test]
    fn with_an_archive_the_byte_limit_takes_archived_files_first_and_counts_forced_losses() {
        let dir = tempfile::tempdir().unwrap();
        let probe = tempfile::tempdir().unwrap();
        let mut p = DataDir::open(
            probe.path(),
            "test",
            Retention {
                max_bytes: 0,
                max_age: None,
            },
        )
        .unwrap();
        let size = p.write(rows(300, T0), &meta(), T0).unwrap().written[0].bytes;
        // Room for three segments and a half.
        let limit = size * 7 / 2;
        let ret = Retention {
            max_bytes: limit,
            max_age: None,
        };
        let mut d = DataDir::open_with_archive(dir.path(), "test", ret, true).unwrap();
        let mut written = Vec::new();
        for i in 0..3 {
            let t = T0 + i * 3600 * SEC;
            written.extend(d.write(rows(300, t), &meta(), t).unwrap().written);
        }
        // The second (not the oldest) is archived: it goes first.
        d.mark_archived([written[1].sha256.clone()]);
        let t = T0 + 3 * 3600 * SEC;
        let out = d.write(rows(300, t), &meta(), t).unwrap();
        assert_eq!(out.removed, vec![written[1].path.clone()]);
        assert_eq!(d.archive_ledger().map(|l| l.lost_files), Some(0));
        // Nothing archived is left: the limit forces out the oldest unarchived file, a loss.
        let t = T0 + 4 * 3600 * SEC;
        let out = d.write(rows(300, t), &meta(), t).unwrap();
        assert_eq!(out.removed, vec![written[0].path.clone()]);
        let ledger = d.archive_ledger().cloned().unwrap_or_default();
        assert_eq!(ledger.lost_files, 1);
        assert_eq!(ledger.lost_bytes, written[0].bytes);
        assert!(on_disk(dir.path()) <= limit);
    }

    #[test]
    fn reopening_after_a_crash_lists_orphans_and_removes_tmp_files() {
        let dir = tempfile::tempdir().unwrap();
        let ret = Retention {
            max_bytes: 0,
            max_age: None,
        };
        {
            let mut d = DataDir::open(dir.path(), "test", ret).unwrap();
            d.write(rows(5, T0), &meta(), T0).unwrap();
            d.write(rows(5, T0 + SEC), &meta(), T0).unwrap();
        }
        // Simulate a crash after a rename but before the manifest write, and a torn tmp file.
        let m = read_manifest(dir.path()).unwrap();
        let mut lost = m.clone();
        lost.files.pop();
        fs::write(
            dir.path().join(MANIFEST),
            serde_json::to_string(&lost).unwrap(),
        )
        .unwrap();
        fs::write(dir.path().join("node=n1/x.parquet.tmp"), b"PAR1 torn").unwrap();
        let d = DataDir::open(dir.path(), "test", ret).unwrap();
        assert_eq!(d.manifest().files.len(), 2);
        assert!(!dir.path().join("node=n1/x.parquet.tmp").exists());
        assert!(verify_bundle(dir.path())
            .unwrap()
            .iter()
            .all(|c| c.problem.is_none()));
    }

    #[test]
    fn reopening_lists_orphans_and_applies_a_lower_byte_limit() {
        let dir = tempfile::tempdir().unwrap();
        let unlimited = Retention {
            max_bytes: 0,
            max_age: None,
        };
        {
            let mut d = DataDir::open(dir.path(), "test", unlimited).unwrap();
            for i in 0..4 {
                d.write(rows(50, T0 + i * SEC), &meta(), T0 + i * SEC)
                    .unwrap();
            }
        }
        // A crash left the newest segment unlisted, and the collector restarts with a lower limit.
        let mut m = read_manifest(dir.path()).unwrap();
        m.files.sort_by_key(|f| parse_ts(&f.last).unwrap_or(0));
        let newest = m.files.pop().unwrap();
        let oldest = m.files[0].path.clone();
        fs::write(
            dir.path().join(MANIFEST),
            serde_json::to_string(&m).unwrap(),
        )
        .unwrap();
        let limit = m.files.iter().map(|f| f.bytes).sum::<u64>();
        let d = DataDir::open(
            dir.path(),
            "test",
            Retention {
                max_bytes: limit,
                max_age: None,
            },
        )
        .unwrap();
        let used = on_disk(dir.path());
        assert!(used <= limit, "{used} > {limit}");
        assert_eq!(used, d.bytes());
        assert!(d.manifest().files.iter().any(|f| f.path == newest.path));
        assert!(
            d.manifest().files.iter().all(|f| f.path != oldest),
            "the oldest segment went"
        );
    }

    #[test]
    fn reopening_after_a_compaction_cut_short_discards_or_finishes_it() {
        let dir = tempfile::tempdir().unwrap();
        let ret = Retention {
            max_bytes: 0,
            max_age: None,
        };
        let mut d = DataDir::open(dir.path(), "test", ret).unwrap();
        d.write(rows(5, T0), &meta(), T0).unwrap();
        d.write(rows(5, T0 + SEC), &meta(), T0).unwrap();
        d.write(rows(5, T0 + 2 * SEC), &meta(), T0).unwrap();
        let m = d.manifest().clone();
        drop(d);
        let (a, b, c) = (&m.files[0], &m.files[1], &m.files[2]);
        let hour_dir = dir.path().join(&a.path).parent().unwrap().to_path_buf();
        // A half-done compaction's output (unlisted), a listed file that replaces `b` while `b`
        // is still on disk (deletion cut short), and a segment a crash left unlisted (`c`).
        fs::copy(
            dir.path().join(&a.path),
            hour_dir.join("hour-00000000000000aa.parquet"),
        )
        .unwrap();
        let mut cut = m.clone();
        cut.files.retain(|f| f.path != b.path && f.path != c.path);
        cut.files[0].replaces = vec![b.sha256.clone()];
        write_manifest(dir.path(), &mut cut).unwrap();
        // An hour file whose inputs are not listed (say, a lost manifest entry): kept, listed.
        let lonely = hour_dir.parent().unwrap().join("hour=23");
        fs::create_dir_all(&lonely).unwrap();
        fs::copy(
            dir.path().join(&a.path),
            lonely.join("hour-00000000000000cc.parquet"),
        )
        .unwrap();
        fs::create_dir_all(dir.path().join(COMPACT_SCRATCH).join("x")).unwrap();
        fs::write(
            dir.path()
                .join(COMPACT_SCRATCH)
                .join("x/run-000001.parquet"),
            b"PAR1",
        )
        .unwrap();

        let d = DataDir::open(dir.path(), "test", ret).unwrap();
        let r = d.recovery();
        assert_eq!(r.discarded.len(), 1, "{r:?}");
        assert_eq!(r.replaced, vec![b.path.clone()]);
        assert_eq!(r.relisted.len(), 2, "{r:?}");
        assert!(r.relisted.contains(&c.path));
        assert!(r
            .relisted
            .iter()
            .any(|p| p.ends_with("hour=23/hour-00000000000000cc.parquet")));
        assert!(!hour_dir.join("hour-00000000000000aa.parquet").exists());
        assert!(!dir.path().join(&b.path).exists());
        assert!(!dir.path().join(COMPACT_SCRATCH).exists());
        let listed: Vec<&str> = d.manifest().files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(listed.len(), 3);
        assert!(listed.contains(&a.path.as_str()) && listed.contains(&c.path.as_str()));
        assert_eq!(parquet_files(dir.path()).unwrap().len(), 3);
        assert!(verify_bundle(dir.path())
            .unwrap()
            .iter()
            .all(|c| c.problem.is_none()));
    }
}
