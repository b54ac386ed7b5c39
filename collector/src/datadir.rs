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

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use karmor_contract::bundle::{
    new_manifest, parquet_files, parse_ts, read_manifest, write_manifest, Manifest, ManifestFile,
    PreparedSegment, MANIFEST,
};
use karmor_contract::error::ContractError;
use karmor_contract::schema::Event;
use karmor_contract::segment::{read_footer, sha256_file, SegmentMeta, SegmentRows, TMP_SUFFIX};

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

/// A data directory being written.
pub struct DataDir {
    root: PathBuf,
    producer: String,
    manifest: Manifest,
    retention: Retention,
}

impl DataDir {
    /// Opens (or creates) the directory, cleaning up after a crash.
    pub fn open(root: &Path, producer: &str, retention: Retention) -> Result<Self, ContractError> {
        fs::create_dir_all(root).map_err(|e| ContractError::io(root, e))?;
        remove_tmp_files(root)?;
        let mut manifest = if root.join(MANIFEST).exists() {
            read_manifest(root)?
        } else {
            new_manifest(producer)
        };
        manifest.producer = producer.to_string();
        // Drop entries whose file is gone; list files the manifest missed.
        manifest.files.retain(|f| root.join(&f.path).exists());
        for path in parquet_files(root)? {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if manifest.files.iter().any(|f| f.path == rel) {
                continue;
            }
            if let Some(entry) = describe_file(&path, rel) {
                manifest.files.push(entry);
            }
        }
        let mut dir = DataDir {
            root: root.to_path_buf(),
            producer: producer.to_string(),
            manifest,
            retention,
        };
        dir.apply_retention(now_ns(), 0)?;
        write_manifest(&dir.root, &mut dir.manifest)?;
        Ok(dir)
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

    /// Removes the oldest segments: those beyond the age limit, then until `incoming` more bytes
    /// fit within the byte limit.
    fn apply_retention(
        &mut self,
        now_ns: i64,
        incoming: u64,
    ) -> Result<Vec<String>, ContractError> {
        let last = |f: &ManifestFile| parse_ts(&f.last).unwrap_or(i64::MIN);
        // Each timestamp is parsed once per call, not once per comparison.
        self.manifest.files.sort_by_cached_key(last);
        let mut expired = 0;
        if let Some(age) = self.retention.max_age {
            let cutoff = now_ns.saturating_sub(age.as_nanos().min(i64::MAX as u128) as i64);
            expired = self
                .manifest
                .files
                .iter()
                .take_while(|f| last(f) < cutoff)
                .count();
        }
        if self.retention.max_bytes > 0 {
            let mut kept: u64 = self.manifest.files[expired..].iter().map(|f| f.bytes).sum();
            while kept + incoming > self.retention.max_bytes && expired < self.manifest.files.len()
            {
                kept -= self.manifest.files[expired].bytes;
                expired += 1;
            }
        }
        if expired == 0 {
            return Ok(Vec::new());
        }
        // The manifest stops listing the segments before they go, so that a reader (or a
        // restart after a crash) never finds it naming a file that is not there.
        let gone: Vec<ManifestFile> = self.manifest.files.drain(..expired).collect();
        write_manifest(&self.root, &mut self.manifest)?;
        gone.into_iter().map(|f| self.remove_file(f)).collect()
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
        first: karmor_contract::bundle::format_ts(first),
        last: karmor_contract::bundle::format_ts(last),
        events_seen: footer.meta.events_seen.max(events),
        events_dropped: footer.meta.events_dropped,
        replaces: Vec::new(),
    })
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
}
