//! The collector's compactor: closed hours into hour files, closed days into day files
//! ([`crate::tiers`] decides what is due), one at a time, on a low-priority thread of its own so
//! that segment writes and the gRPC service never wait for it.
//!
//! A compaction holds the data directory's lock only to claim its inputs, to move its output
//! into place, to swap the manifest and to delete the inputs; the merge itself
//! ([`karmor_contract::compact::compact`], bounded memory) runs without it, into the scratch
//! directory `<data dir>/.compact-tmp/`. A failure leaves the inputs listed; it is counted
//! (`karmor_compaction_errors_total`, Health) and logged with the file, and retried on a later
//! tick. An input found corrupt (its sha256 or size no longer those listed, or unreadable) is
//! reported by path, stays listed and is left out of compactions until the collector restarts.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use karmor_contract::compact::{compact, CompactOptions};
use karmor_contract::error::ContractError;
use karmor_contract::segment::sha256_file;

use crate::datadir::{remove_scratch, DataDir, COMPACT_SCRATCH};
use crate::metrics::Counters;
use crate::tiers::{CompactionPolicy, Job, Tier};

/// Test hook: milliseconds to pause after the output is in place and after the manifest swap,
/// so that a crash test's `kill -9` can land between the steps (never set in production).
pub const STEP_PAUSE_ENV: &str = "KARMOR_COMPACT_STEP_PAUSE_MS";

/// What one compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// The output's tier (hour or day).
    pub tier: Tier,
    /// The output's path in the data directory.
    pub output: String,
    /// Rows read from the inputs and rows written.
    pub rows_in: u64,
    /// Rows of the output.
    pub rows_out: u64,
    /// Inputs replaced (and deleted).
    pub replaced: Vec<String>,
}

/// Why a compaction failed (its inputs stay listed).
#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    /// An input is corrupt: left out of compactions, still listed.
    #[error("{path}: corrupt input left out of compaction (still listed): {reason}")]
    CorruptInput {
        /// The input, relative to the data directory.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading, writing or listing failed (e.g. disk full); retried later.
    #[error("compacting into {dir}: {source}")]
    Failed {
        /// The output's partition directory.
        dir: String,
        /// The error, which names the file.
        source: ContractError,
    },
}

/// Locks the data directory; a writer that panicked leaves it usable (every step rewrites the
/// manifest whole).
pub fn lock(dir: &Mutex<DataDir>) -> MutexGuard<'_, DataDir> {
    dir.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

fn step_pause() {
    if let Some(ms) = std::env::var(STEP_PAUSE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// Runs the oldest compaction due at `now_ns`, if any: claim, merge (without the lock),
/// install, swap, delete the inputs. `Ok(None)` when nothing is due.
pub fn compact_next(
    dir: &Mutex<DataDir>,
    now_ns: i64,
    policy: CompactionPolicy,
) -> Result<Option<CompactionOutcome>, CompactionError> {
    let (job, root, producer) = {
        let mut d = lock(dir);
        let failed = |source| CompactionError::Failed {
            dir: "(claiming)".into(),
            source,
        };
        let Some(job) = d.claim_compaction(now_ns, policy).map_err(failed)? else {
            return Ok(None);
        };
        (job, d.root().to_path_buf(), d.producer().to_string())
    };
    let result = run_job(dir, &job, &root, &producer);
    // Whatever happened, no scratch run outlives the compaction.
    let _ = remove_scratch(&root);
    match result {
        Ok(outcome) => Ok(Some(outcome)),
        Err(e) => {
            let mut d = lock(dir);
            d.release_compaction(&job);
            if let CompactionError::CorruptInput { path, .. } = &e {
                if let Some(f) = job.inputs.iter().find(|f| &f.path == path) {
                    d.mark_corrupt(&f.sha256);
                }
            }
            Err(e)
        }
    }
}

fn run_job(
    dir: &Mutex<DataDir>,
    job: &Job,
    root: &Path,
    producer: &str,
) -> Result<CompactionOutcome, CompactionError> {
    let failed = |source| CompactionError::Failed {
        dir: job.dir.clone(),
        source,
    };
    // Inputs are what the manifest lists, byte for byte: a file changed on disk is not merged.
    let mut inputs = Vec::with_capacity(job.inputs.len());
    for f in &job.inputs {
        let path = root.join(&f.path);
        let corrupt = |reason: String| CompactionError::CorruptInput {
            path: f.path.clone(),
            reason,
        };
        let bytes = std::fs::metadata(&path)
            .map_err(|e| corrupt(e.to_string()))?
            .len();
        if bytes != f.bytes {
            return Err(corrupt(format!(
                "{bytes} bytes, the manifest says {}",
                f.bytes
            )));
        }
        let sha = sha256_file(&path).map_err(|e| corrupt(e.to_string()))?;
        if sha != f.sha256 {
            return Err(corrupt(format!(
                "sha256 {sha}, the manifest says {}",
                f.sha256
            )));
        }
        inputs.push(path);
    }
    let scratch = root.join(COMPACT_SCRATCH);
    let out = scratch.join(format!("{}.parquet", job.tier.name()));
    let options = CompactOptions::new(producer, &scratch);
    let compacted = compact(&inputs, &out, &options).map_err(|e| {
        // An error naming an input is that input's fault; any other (the scratch directory,
        // disk full) is retried as it is.
        match error_path(&e).and_then(|p| job.inputs.iter().find(|f| root.join(&f.path) == p)) {
            Some(f) => CompactionError::CorruptInput {
                path: f.path.clone(),
                reason: e.to_string(),
            },
            None => failed(e),
        }
    })?;
    let entry = lock(dir)
        .install_compacted(job, &compacted)
        .map_err(failed)?;
    let output = entry.path.clone();
    step_pause();
    lock(dir).swap_compacted(job, entry).map_err(|e| {
        // Not listed: delete it again (a restart would too).
        let _ = std::fs::remove_file(root.join(&output));
        failed(e)
    })?;
    step_pause();
    let replaced = lock(dir).remove_replaced(job, now_ns()).map_err(failed)?;
    Ok(CompactionOutcome {
        tier: job.tier,
        output,
        rows_in: compacted.input_rows,
        rows_out: compacted.written.rows,
        replaced,
    })
}

fn error_path(e: &ContractError) -> Option<&Path> {
    match e {
        ContractError::Io { path, .. }
        | ContractError::Parquet { path, .. }
        | ContractError::UnsupportedSchema { path, .. }
        | ContractError::Column { path, .. }
        | ContractError::Manifest { path, .. } => Some(path),
    }
}

/// Gives the heap that a compaction freed back to the system. glibc keeps freed memory in the
/// compactor thread's arena, where only that thread would reuse it: without this, the
/// collector's resident memory after a compaction stays as high as during it, on top of its
/// sensor windows back at their full budget.
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Marks a compaction under way in [`Counters::compacting`] until dropped (also by a panic).
struct Compacting<'a>(&'a Counters);

impl<'a> Compacting<'a> {
    fn start(counters: &'a Counters) -> Self {
        counters.compacting.store(true, Ordering::Relaxed);
        Compacting(counters)
    }
}

impl Drop for Compacting<'_> {
    fn drop(&mut self) {
        self.0.compacting.store(false, Ordering::Relaxed);
    }
}

/// Runs every compaction due now, one after the other; counts them and their errors. Returns
/// how many succeeded. `stop` is checked between compactions.
pub fn compact_due(
    dir: &Mutex<DataDir>,
    policy: CompactionPolicy,
    counters: &Counters,
    stop: &dyn Fn() -> bool,
) -> u64 {
    let mut done = 0;
    while !stop() {
        let next = {
            let _merging = Compacting::start(counters);
            compact_next(dir, now_ns(), policy)
        };
        if !matches!(next, Ok(None)) {
            release_freed_memory();
        }
        match next {
            Ok(None) => break,
            Ok(Some(o)) => {
                done += 1;
                Counters::add(&counters.compactions, 1);
                Counters::add(&counters.files_compacted, o.replaced.len() as u64);
                counters
                    .bytes_on_disk
                    .store(lock(dir).bytes(), Ordering::Relaxed);
                log::info!(
                    "compacted {} files ({} rows) into {} {} ({} rows)",
                    o.replaced.len(),
                    o.rows_in,
                    o.tier.name(),
                    o.output,
                    o.rows_out
                );
            }
            Err(e) => {
                Counters::add(&counters.compaction_errors, 1);
                log::error!("{e}");
                // A corrupt input is left out at once; other errors wait for the next tick.
                if !matches!(e, CompactionError::CorruptInput { .. }) {
                    break;
                }
            }
        }
    }
    done
}

/// Starts the compactor thread: every `tick` (and once at start, for hours and days left
/// uncompacted while the collector was down) it runs the compactions due, at the lowest CPU
/// priority. Sending on (or dropping) the returned sender stops it after the compaction under
/// way.
pub fn spawn(
    dir: Arc<Mutex<DataDir>>,
    policy: CompactionPolicy,
    tick: Duration,
    counters: Arc<Counters>,
) -> std::io::Result<(mpsc::Sender<()>, std::thread::JoinHandle<()>)> {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("karmor-compact".into())
        .spawn(move || {
            // SAFETY: setpriority on this thread (who = 0: the caller) changes only its nice
            // value; failing to lower it changes nothing else.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, 0, 19);
            }
            let stopped = std::cell::Cell::new(false);
            let stop = || {
                if !stopped.get() {
                    match stop_rx.try_recv() {
                        Err(mpsc::TryRecvError::Empty) => {}
                        _ => stopped.set(true),
                    }
                }
                stopped.get()
            };
            loop {
                compact_due(&dir, policy, &counters, &stop);
                if stop() {
                    break;
                }
                match stop_rx.recv_timeout(tick) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
        })?;
    Ok((stop_tx, handle))
}
