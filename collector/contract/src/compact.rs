//! Compaction: many segments of one node become one well-shaped segment (design §4, the warm
//! tier: minute segments into an hour file, hour files into a day file; and the plugin's cache
//! for bundles of many small files).
//!
//! The rules, shared by every caller:
//! - rows that agree on every column but `ts_first`, `ts_last` and `count` become one row
//!   (count summed, first = min, last = max);
//! - rows are sorted by [`identity_order`]: namespace, workload, pod, container, op, then the
//!   rest of the row's identity, so that filters prune row groups;
//! - row groups hold [`CompactOptions::row_group_rows`] rows (122,880 by default), zstd with
//!   dictionaries, as every segment;
//! - the counters (events seen and dropped, windows) are summed into the new file's metadata.
//!
//! Inputs whose rows fit in one run ([`CompactOptions::run_rows`], by their footers) are
//! compacted on Arrow columns, in memory (`columns.rs`): the plugin's store compacts a
//! partition of small files that way. Larger inputs take the row path below.
//!
//! Memory stays bounded whatever the inputs' size or order: an external merge sort. Each input
//! is read [`CompactOptions::run_rows`] rows at a time; each chunk is sorted, merged and
//! spilled as a *run* (an uncompressed Parquet file in a scratch directory); then one k-way
//! merge reads every run a small batch at a time and streams the output. The output is written
//! to `<out>.tmp`, fsynced and renamed: a crash leaves either no file or the whole file.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch, TimestampNanosecondArray};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::error::ContractError;
use crate::schema::{arrow_schema, schema_version, Event};
use crate::segment::{
    batch_to_events, events_to_batch, read_footer_keeping_metadata, sha256_file,
    streaming_writer_properties, tmp_path, SegmentMeta, WrittenSegment,
};

/// Rows per row group of a compacted file (design §4: at least 122,880).
pub const COMPACT_ROW_GROUP_ROWS: usize = 122_880;

/// Rows decoded from an input at a time on the row path.
const READ_BATCH_ROWS: usize = 1024;

/// How [`compact`] works.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Written in the new file's metadata, e.g. `karmor-collector 0.1.0`.
    pub producer: String,
    /// Rows per output row group.
    pub row_group_rows: usize,
    /// Input rows sorted in memory at a time before they are spilled as a run.
    pub run_rows: usize,
    /// Rows read from each run at a time during the merge.
    pub merge_batch_rows: usize,
    /// Runs merged at once. A run's reader costs about half a MiB whatever its batch (one
    /// buffered reader per column), so more runs than this are first merged into longer ones.
    pub merge_fan_in: usize,
    /// Where runs are spilled (a directory on the same disk; removed afterwards).
    pub scratch_dir: PathBuf,
}

impl CompactOptions {
    /// Defaults that keep a compaction's heap to about 15 MiB (it runs inside a busy
    /// collector): runs of 4,096 rows (decoded rows cost about 1.5 KiB each), merges of 16 runs
    /// read 256 rows at a time, 122,880-row groups; runs go to `scratch_dir`.
    pub fn new(producer: impl Into<String>, scratch_dir: impl Into<PathBuf>) -> Self {
        CompactOptions {
            producer: producer.into(),
            row_group_rows: COMPACT_ROW_GROUP_ROWS,
            run_rows: 4096,
            merge_batch_rows: 256,
            merge_fan_in: 16,
            scratch_dir: scratch_dir.into(),
        }
    }
}

/// What [`compact`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// The new file: path, bytes, sha256, rows and time range.
    pub written: WrittenSegment,
    /// Its metadata: the inputs' counters summed.
    pub meta: SegmentMeta,
    /// Rows read from the inputs.
    pub input_rows: u64,
}

/// Orders rows for compacted files: namespace, workload, pod, container, op, then every other
/// identity column, so that equal identities are adjacent. Times and counts do not take part.
pub fn identity_order(a: &Event, b: &Event) -> Ordering {
    (&a.namespace, &a.workload, &a.pod, &a.container, a.op)
        .cmp(&(&b.namespace, &b.workload, &b.pod, &b.container, b.op))
        .then_with(|| {
            (
                &a.process,
                &a.path,
                &a.access,
                &a.parent_process,
                &a.proto,
                &a.direction,
                &a.remote_addr,
                a.remote_port,
                &a.local_addr,
                a.local_port,
                &a.remote_name,
            )
                .cmp(&(
                    &b.process,
                    &b.path,
                    &b.access,
                    &b.parent_process,
                    &b.proto,
                    &b.direction,
                    &b.remote_addr,
                    b.remote_port,
                    &b.local_addr,
                    b.local_port,
                    &b.remote_name,
                ))
        })
        .then_with(|| {
            (
                &a.syscall,
                &a.capability,
                &a.result,
                &a.policy,
                &a.action,
                a.source,
                a.pid,
                a.ppid,
                a.uid,
                &a.args,
                a.host,
            )
                .cmp(&(
                    &b.syscall,
                    &b.capability,
                    &b.result,
                    &b.policy,
                    &b.action,
                    b.source,
                    b.pid,
                    b.ppid,
                    b.uid,
                    &b.args,
                    b.host,
                ))
        })
        .then_with(|| {
            (
                &a.cluster,
                &a.node,
                &a.pod_uid,
                &a.container_id,
                &a.image,
                &a.workload_kind,
                &a.labels,
            )
                .cmp(&(
                    &b.cluster,
                    &b.node,
                    &b.pod_uid,
                    &b.container_id,
                    &b.image,
                    &b.workload_kind,
                    &b.labels,
                ))
        })
}

/// Folds `row` into `into` when both are the same behaviour: count summed, first = min,
/// last = max. Returns false (and changes nothing) otherwise.
fn absorb(into: &mut Event, row: &Event) -> bool {
    if identity_order(into, row) != Ordering::Equal {
        return false;
    }
    into.count += row.count;
    into.ts_first = into.ts_first.min(row.ts_first);
    into.ts_last = into.ts_last.max(row.ts_last);
    true
}

/// Compacts `inputs` (schema v1 segments of one node) into one segment at `out`, with the
/// rules of this module. The inputs are not touched: listing the new file and unlisting and
/// deleting the inputs is the caller's, in that order.
pub fn compact(
    inputs: &[PathBuf],
    out: &Path,
    options: &CompactOptions,
) -> Result<Compacted, ContractError> {
    let (meta, rows, inputs) = merged_meta(inputs, &options.producer)?;
    if rows <= options.run_rows as u64 {
        // One run's worth: sorted and folded on columns, no spill and no merge.
        let (written, input_rows) =
            columns::compact_in_memory(&inputs, out, &meta, options.row_group_rows.max(1))?;
        return Ok(Compacted {
            written,
            meta,
            input_rows,
        });
    }
    let scratch = Scratch::create(&options.scratch_dir, out)?;
    let mut runs = Runs {
        options,
        scratch: &scratch,
        pending: Vec::new(),
        paths: Vec::new(),
    };
    let mut input_rows = 0u64;
    for input in &inputs {
        input_rows += runs.read(input)?;
    }
    let written = if runs.paths.is_empty() {
        // Everything fit in one run: write it out directly, no spill and no merge.
        let mut rows = std::mem::take(&mut runs.pending);
        fold_sorted(&mut rows);
        let mut output = Output::create(
            out,
            streaming_writer_properties(&meta, options.row_group_rows.max(1)),
        )?;
        for row in rows {
            output.push(row)?;
        }
        output.finish()?
    } else {
        runs.spill()?;
        merge_runs(runs.paths, out, &meta, options, &scratch)?
    };
    Ok(Compacted {
        written,
        meta,
        input_rows,
    })
}

/// An input whose footer has been checked, with its parsed metadata for the reader.
struct Input {
    path: PathBuf,
    metadata: ArrowReaderMetadata,
}

impl Input {
    /// Its rows, `batch_rows` at a time.
    fn reader(&self, batch_rows: usize) -> Result<ParquetRecordBatchReader, ContractError> {
        let file = File::open(&self.path).map_err(|e| ContractError::io(&self.path, e))?;
        ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.metadata.clone())
            .with_batch_size(batch_rows.max(1))
            .build()
            .map_err(|e| ContractError::parquet(&self.path, e))
    }
}

/// The new file's metadata: the inputs' counters summed, their node (all must agree), the
/// first collector version and kernel found; the rows their footers count; and the inputs
/// with their footers parsed, for reading.
fn merged_meta(
    inputs: &[PathBuf],
    producer: &str,
) -> Result<(SegmentMeta, u64, Vec<Input>), ContractError> {
    let mut meta = SegmentMeta {
        schema_version: schema_version(),
        producer: producer.to_string(),
        ..SegmentMeta::default()
    };
    let mut node: Option<String> = None;
    let mut rows = 0u64;
    let mut checked = Vec::with_capacity(inputs.len());
    for input in inputs {
        let (footer, metadata) = read_footer_keeping_metadata(input)?;
        checked.push(Input {
            path: input.clone(),
            metadata,
        });
        rows += footer.rows;
        let m = footer.meta;
        match &node {
            None => node = Some(m.node.clone()),
            Some(n) if *n != m.node => {
                return Err(ContractError::parquet(
                    input,
                    format!(
                        "node {:?}: compaction joins one node's files only (the others are {n:?})",
                        m.node
                    ),
                ))
            }
            Some(_) => {}
        }
        meta.events_seen += m.events_seen;
        meta.events_dropped += m.events_dropped;
        meta.windows += m.windows;
        meta.collector_version = meta.collector_version.or(m.collector_version);
        meta.kernel = meta.kernel.or(m.kernel);
    }
    meta.node = node.unwrap_or_else(|| "unknown".into());
    Ok((meta, rows, checked))
}

/// A scratch directory for one compaction's runs, removed when dropped.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn create(parent: &Path, out: &Path) -> Result<Scratch, ContractError> {
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let dir = parent.join(format!(".compact-{}-{name}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| ContractError::io(&dir, e))?;
        }
        fs::create_dir_all(&dir).map_err(|e| ContractError::io(&dir, e))?;
        Ok(Scratch { dir })
    }

    fn run_path(&self, n: usize) -> PathBuf {
        self.dir.join(format!("run-{n:06}.parquet"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Sorted runs being cut from the inputs: rows gather across inputs (a minute segment is far
/// smaller than a run) and are sorted, folded and spilled every `run_rows` rows.
struct Runs<'a> {
    options: &'a CompactOptions,
    scratch: &'a Scratch,
    pending: Vec<Event>,
    paths: Vec<PathBuf>,
}

impl Runs<'_> {
    /// Reads `input` `run_rows` rows at a time, spilling whenever a run is full. Returns the
    /// rows read.
    fn read(&mut self, input: &Input) -> Result<u64, ContractError> {
        let run_rows = self.options.run_rows.max(1);
        // Small batches: a run overshoots `run_rows` by less than one batch before it spills
        // (a batch of `run_rows` rows could almost double the rows held as events).
        let reader = input.reader(run_rows.min(READ_BATCH_ROWS))?;
        let input = input.path.as_path();
        let mut rows = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| ContractError::parquet(input, e))?;
            let before = self.pending.len();
            batch_to_events(input, &batch, &mut self.pending)?;
            rows += (self.pending.len() - before) as u64;
            if self.pending.len() >= run_rows {
                self.spill()?;
            }
        }
        Ok(rows)
    }

    /// Sorts, folds and writes the pending rows as a run.
    fn spill(&mut self) -> Result<(), ContractError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut chunk = std::mem::take(&mut self.pending);
        fold_sorted(&mut chunk);
        let run = self.scratch.run_path(self.paths.len());
        write_run(&run, chunk, self.options)?;
        self.paths.push(run);
        Ok(())
    }
}

/// Sorts rows by identity and folds equal identities into one. Unstable: equal identities
/// fold into the same row whatever their order, and the sort needs no scratch buffer (half the
/// rows' size for a stable sort).
fn fold_sorted(rows: &mut Vec<Event>) {
    rows.sort_unstable_by(identity_order);
    rows.dedup_by(|row, kept| absorb(kept, row));
}

/// A scratch run's rows, `batch_rows` at a time (inputs are read through [`Input::reader`]).
fn open_reader(path: &Path, batch_rows: usize) -> Result<ParquetRecordBatchReader, ContractError> {
    let file = File::open(path).map_err(|e| ContractError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(batch_rows.max(1)).build())
        .map_err(|e| ContractError::parquet(path, e))
}

/// A run: sorted rows in an uncompressed Parquet file, read back only by this module. The
/// merge reads every run a page at a time (the reader fetches pages lazily), so pages are small
/// ([`CompactOptions::merge_batch_rows`] rows, plain encoding: no dictionary page to hold).
/// Row groups hold [`CompactOptions::run_rows`] rows: the writer buffers one row group, and a
/// reader keeps every row group's metadata, which grows with their count (merged runs of 256-row
/// groups held 3 MiB of footer each, 49 MiB for a 16-run merge).
fn write_run(path: &Path, rows: Vec<Event>, options: &CompactOptions) -> Result<(), ContractError> {
    let mut run = Output::create(path, run_properties(options))?;
    for row in rows {
        run.push(row)?;
    }
    run.finish_scratch()
}

fn run_properties(options: &CompactOptions) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_max_row_group_row_count(Some(options.run_rows.max(1)))
        .set_data_page_row_count_limit(options.merge_batch_rows.max(1))
        // The page limit is checked once per write batch.
        .set_write_batch_size(options.merge_batch_rows.max(1))
        .build()
}

/// One run during the merge: its reader and the rows of its current batch.
struct RunCursor {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    rows: std::vec::IntoIter<Event>,
}

impl RunCursor {
    fn next_row(&mut self) -> Result<Option<Event>, ContractError> {
        loop {
            if let Some(row) = self.rows.next() {
                return Ok(Some(row));
            }
            let Some(batch) = self.reader.next() else {
                return Ok(None);
            };
            let batch = batch.map_err(|e| ContractError::parquet(&self.path, e))?;
            let mut rows = Vec::with_capacity(batch.num_rows());
            batch_to_events(&self.path, &batch, &mut rows)?;
            self.rows = rows.into_iter();
        }
    }
}

/// The smallest row of each run, in a min-heap by [`identity_order`].
struct Head {
    row: Event,
    run: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap.
        identity_order(&other.row, &self.row).then(other.run.cmp(&self.run))
    }
}

/// Merges the sorted runs into the output file, streaming: first into longer runs while there
/// are more than `merge_fan_in`, then into the output.
fn merge_runs(
    mut runs: Vec<PathBuf>,
    out: &Path,
    meta: &SegmentMeta,
    options: &CompactOptions,
    scratch: &Scratch,
) -> Result<WrittenSegment, ContractError> {
    let fan_in = options.merge_fan_in.max(2);
    let mut next_run = runs.len();
    while runs.len() > fan_in {
        let mut longer = Vec::with_capacity(runs.len().div_ceil(fan_in));
        for group in runs.chunks(fan_in) {
            let path = scratch.run_path(next_run);
            next_run += 1;
            let mut run = Output::create(&path, run_properties(options))?;
            merge_into(group, &mut run, options)?;
            run.finish_scratch()?;
            for done in group {
                let _ = fs::remove_file(done);
            }
            longer.push(path);
        }
        runs = longer;
    }
    let mut output = Output::create(
        out,
        streaming_writer_properties(meta, options.row_group_rows.max(1)),
    )?;
    merge_into(&runs, &mut output, options)?;
    output.finish()
}

/// One k-way merge of sorted runs into `output`, equal identities folded into one row.
fn merge_into(
    runs: &[PathBuf],
    output: &mut Output,
    options: &CompactOptions,
) -> Result<(), ContractError> {
    let mut cursors = Vec::with_capacity(runs.len());
    let mut heap = BinaryHeap::with_capacity(runs.len());
    for (i, path) in runs.iter().enumerate() {
        let mut cursor = RunCursor {
            path: path.clone(),
            reader: open_reader(path, options.merge_batch_rows)?,
            rows: Vec::new().into_iter(),
        };
        if let Some(row) = cursor.next_row()? {
            heap.push(Head { row, run: i });
        }
        cursors.push(cursor);
    }
    let mut current: Option<Event> = None;
    while let Some(Head { row, run }) = heap.pop() {
        if let Some(next) = cursors[run].next_row()? {
            heap.push(Head { row: next, run });
        }
        let absorbed = current.as_mut().is_some_and(|cur| absorb(cur, &row));
        if !absorbed {
            if let Some(done) = current.replace(row) {
                output.push(done)?;
            }
        }
    }
    if let Some(done) = current {
        output.push(done)?;
    }
    Ok(())
}

/// A file being written (the compacted file, or a run): rows are buffered a batch at a time
/// and handed to the Parquet writer, which holds at most one encoded row group.
struct Output {
    path: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
    batch: Vec<Event>,
    batch_rows: usize,
    rows: u64,
    first: i64,
    last: i64,
}

impl Output {
    fn create(path: &Path, props: WriterProperties) -> Result<Output, ContractError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| ContractError::io(dir, e))?;
        }
        let tmp = tmp_path(path);
        let file = File::create(&tmp).map_err(|e| ContractError::io(&tmp, e))?;
        let writer = ArrowWriter::try_new(BufWriter::new(file), arrow_schema(), Some(props))
            .map_err(|e| ContractError::parquet(&tmp, e))?;
        Ok(Output {
            path: path.to_path_buf(),
            tmp,
            writer,
            batch: Vec::with_capacity(1024),
            batch_rows: 1024,
            rows: 0,
            first: i64::MAX,
            last: i64::MIN,
        })
    }

    fn push(&mut self, row: Event) -> Result<(), ContractError> {
        self.first = self.first.min(row.ts_first);
        self.last = self.last.max(row.ts_last);
        self.rows += 1;
        self.batch.push(row);
        if self.batch.len() >= self.batch_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes a batch of contract rows as it is (after any rows pushed before it).
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), ContractError> {
        self.flush()?;
        let times = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
                .map(|a| a.values().iter().copied())
        };
        if let (Some(first), Some(last)) = (times("ts_first"), times("ts_last")) {
            self.first = first.fold(self.first, i64::min);
            self.last = last.fold(self.last, i64::max);
        }
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|e| ContractError::parquet(&self.tmp, e))
    }

    fn flush(&mut self) -> Result<(), ContractError> {
        if !self.batch.is_empty() {
            self.writer
                .write(&events_to_batch(&self.batch))
                .map_err(|e| ContractError::parquet(&self.tmp, e))?;
            self.batch.clear();
        }
        Ok(())
    }

    /// Closes a run: scratch data that no crash needs to find again, so neither synced nor
    /// hashed.
    fn finish_scratch(mut self) -> Result<(), ContractError> {
        self.flush()?;
        self.writer
            .close()
            .map_err(|e| ContractError::parquet(&self.tmp, e))?;
        fs::rename(&self.tmp, &self.path).map_err(|e| ContractError::io(&self.path, e))
    }

    /// Closes the file, fsyncs it, renames it into place and fsyncs the directory.
    fn finish(mut self) -> Result<WrittenSegment, ContractError> {
        self.flush()?;
        let file = self
            .writer
            .into_inner()
            .map_err(|e| ContractError::parquet(&self.tmp, e))?
            .into_inner()
            .map_err(|e| ContractError::io(&self.tmp, e.into_error()))?;
        file.sync_all()
            .map_err(|e| ContractError::io(&self.tmp, e))?;
        drop(file);
        let sha256 = sha256_file(&self.tmp)?;
        let bytes = fs::metadata(&self.tmp)
            .map_err(|e| ContractError::io(&self.tmp, e))?
            .len();
        fs::rename(&self.tmp, &self.path).map_err(|e| ContractError::io(&self.path, e))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let empty = self.rows == 0;
        Ok(WrittenSegment {
            path: self.path,
            bytes,
            sha256,
            rows: self.rows,
            ts_first: if empty { 0 } else { self.first },
            ts_last: if empty { 0 } else { self.last },
        })
    }
}

mod columns;
#[cfg(test)]
mod tests;
