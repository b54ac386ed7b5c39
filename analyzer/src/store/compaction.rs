//! Small files compacted once, per partition, with the collector's rules (design §7: no query
//! pays DuckDB's per-file cost twice).
//!
//! A merge's new files with fewer rows than a compacted row group are grouped by node and
//! partition directory (`node=…/date=…/hour=…`, the collector's hour); each group of two or
//! more becomes one file through [`karmor_contract::compact::compact`], on every core. A
//! compaction is named by its inputs (the sha256 of their sorted sha256s), so the next merge
//! of the same files finds it in the compaction directory instead of compacting again. A group
//! that fails is searched for the file whose pages are damaged; that file is reported and the
//! others are compacted without it.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

use karmor_contract::compact::{compact, CompactOptions, COMPACT_ROW_GROUP_ROWS};
use karmor_contract::segment::{read_footer, sha256_file};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::{Digest, Sha256};

use super::catalog::{FileRecord, Origin};
use super::merge::Checked;
use super::Store;

/// Bumped when the compaction rules change, so that older compactions are not reused.
const RULES: &str = "karmor-compaction-1";
/// Rows a compaction sorts in memory at a time: a compaction of the store runs on a laptop,
/// not on a busy node, so it spills far less than the collector's.
const RUN_ROWS: usize = 262_144;

/// Small files of one node and partition, to become one file.
pub(super) struct Group {
    /// `node=…/date=…/hour=…` or whatever directory the files share.
    partition: String,
    inputs: Vec<Checked>,
}

/// A compaction done (or found again).
pub(super) struct Done {
    /// The compacted file's catalog row.
    pub record: FileRecord,
    /// The files it holds.
    pub inputs: Vec<Checked>,
}

/// What became of one group.
#[derive(Default)]
pub(super) struct Outcome {
    /// The compaction, unless too few good files were left.
    pub compacted: Option<Done>,
    /// Good files left to list as they are.
    pub left: Vec<Checked>,
    /// Files with damaged pages.
    pub problems: Vec<(PathBuf, String)>,
}

/// Splits new files into groups to compact and files to list as they are.
pub(super) fn plan(new: Vec<Checked>) -> (Vec<Group>, Vec<Checked>) {
    let mut groups: BTreeMap<(String, String), Vec<Checked>> = BTreeMap::new();
    let mut alone = Vec::new();
    for c in new {
        if c.footer.rows >= COMPACT_ROW_GROUP_ROWS as u64 {
            alone.push(c);
            continue;
        }
        let dir = match c.seg.rel.rsplit_once('/') {
            Some((dir, _)) => dir.to_string(),
            None => String::new(),
        };
        groups
            .entry((c.footer.meta.node.clone(), dir))
            .or_default()
            .push(c);
    }
    let mut out = Vec::new();
    for ((_, partition), mut inputs) in groups {
        if inputs.len() < 2 {
            alone.append(&mut inputs);
        } else {
            inputs.sort_by(|a, b| a.sha.cmp(&b.sha));
            out.push(Group { partition, inputs });
        }
    }
    (out, alone)
}

/// Compacts every group, on as many threads as there are cores, calling `rows_done` with the
/// rows of each group finished.
pub(super) fn run(
    store: &Store,
    bundle: &str,
    groups: Vec<Group>,
    rows_done: &mut dyn FnMut(u64),
) -> Vec<Outcome> {
    if groups.is_empty() {
        return Vec::new();
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = store.compactions.path();
    let todo: Vec<Mutex<Option<Group>>> = groups.into_iter().map(|g| Mutex::new(Some(g))).collect();
    let next = AtomicUsize::new(0);
    let mut out = Vec::new();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        for _ in 0..workers.min(todo.len()) {
            let (tx, next, todo) = (tx.clone(), &next, &todo);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = todo.get(i) else { break };
                let Some(group) = slot.lock().ok().and_then(|mut g| g.take()) else {
                    continue;
                };
                let rows = group.inputs.iter().map(|c| c.footer.rows).sum::<u64>();
                if tx.send((rows, compact_group(dir, bundle, group))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (rows, outcome) in rx {
            rows_done(rows);
            out.push(outcome);
        }
    });
    out
}

/// Compacts one group; on failure, finds the damaged files and compacts the others.
fn compact_group(dir: &Path, bundle: &str, group: Group) -> Outcome {
    let Group { partition, inputs } = group;
    match compact_into(dir, bundle, &partition, &inputs) {
        Ok(record) => Outcome {
            compacted: Some(Done { record, inputs }),
            ..Outcome::default()
        },
        Err(first_error) => {
            let mut outcome = Outcome::default();
            let mut good = Vec::new();
            for c in inputs {
                match read_all_pages(&c.seg.path) {
                    Ok(()) => good.push(c),
                    Err(problem) => outcome.problems.push((c.seg.path.clone(), problem)),
                }
            }
            if outcome.problems.is_empty() {
                // No file is damaged: the compaction itself failed (disk full, no write
                // access). List the files as they are; queries are slower, nothing is lost.
                eprintln!(
                    "warning: cannot compact {} small files of {partition}: {first_error}; they are read as they are",
                    good.len()
                );
                outcome.left = good;
            } else if good.len() < 2 {
                outcome.left = good;
            } else {
                match compact_into(dir, bundle, &partition, &good) {
                    Ok(record) => {
                        outcome.compacted = Some(Done {
                            record,
                            inputs: good,
                        })
                    }
                    Err(_) => outcome.left = good,
                }
            }
            outcome
        }
    }
}

/// Compacts `inputs` into the compaction directory (or finds it there) and describes it.
fn compact_into(
    dir: &Path,
    bundle: &str,
    partition: &str,
    inputs: &[Checked],
) -> Result<FileRecord, String> {
    let out = dir.join(format!("{}.parquet", key(inputs)));
    let cached = if out.is_file() {
        read_footer(&out).ok()
    } else {
        None
    };
    let (sha, rows, span, meta) = if let Some(footer) = cached {
        // Used again: keep it in the cache (see `evict_unused`).
        let _ = File::options()
            .write(true)
            .open(&out)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        let sha = sha256_file(&out).map_err(|e| e.to_string())?;
        let span = inputs.iter().try_fold((i64::MAX, i64::MIN), |(a, b), c| {
            let (first, last) = c.span()?;
            Some((a.min(first), b.max(last)))
        });
        (sha, footer.rows, span, footer.meta)
    } else {
        let options = CompactOptions {
            run_rows: RUN_ROWS,
            merge_batch_rows: 4096,
            ..CompactOptions::new(
                format!("kubectl-karmor {} store", env!("CARGO_PKG_VERSION")),
                dir,
            )
        };
        let paths: Vec<PathBuf> = inputs.iter().map(|c| c.seg.path.clone()).collect();
        let done = compact(&paths, &out, &options).map_err(|e| e.to_string())?;
        let w = done.written;
        (w.sha256, w.rows, Some((w.ts_first, w.ts_last)), done.meta)
    };
    Ok(FileRecord {
        sha256: sha,
        path: out.display().to_string(),
        bundle: bundle.to_string(),
        rel: format!("{partition} ({} files compacted)", inputs.len()),
        node: meta.node.clone(),
        rows,
        bytes: std::fs::metadata(&out).map_or(0, |m| m.len()),
        span,
        events_seen: meta.events_seen,
        events_dropped: meta.events_dropped,
        producer: meta.producer,
        origin: Origin::Compaction,
    })
}

/// A compaction's name: the sha256 of the rules and of its inputs' sorted sha256s.
fn key(inputs: &[Checked]) -> String {
    let mut shas: Vec<&str> = inputs.iter().map(|c| c.sha.as_str()).collect();
    shas.sort_unstable();
    let mut h = Sha256::new();
    h.update(RULES.as_bytes());
    for sha in shas {
        h.update(b"\n");
        h.update(sha.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Decodes every page of a Parquet file; the error names the file.
pub(super) fn read_all_pages(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    for batch in reader {
        batch.map_err(|e| format!("{}: damaged pages: {e}", path.display()))?;
    }
    Ok(())
}

/// Deletes the compactions in `dir` not used for `days` days (best effort: a compaction in use
/// by another process is a file it has open, which stays readable on Unix).
pub(super) fn evict_unused(dir: &Path, days: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let max_age = std::time::Duration::from_secs(days * 24 * 3600);
    for entry in entries.flatten() {
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > max_age);
        if old && path.extension().is_some_and(|e| e == "parquet") {
            let _ = std::fs::remove_file(path);
        }
    }
}
