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
//! Rows are never decoded into [`Event`]s: inputs whose rows fit in one run
//! ([`CompactOptions::run_rows`], by their footers) are sorted and folded on Arrow columns in
//! memory (`columns.rs`; the plugin's store compacts a partition of small files that way).
//! Larger inputs take an external merge sort on columns (`external.rs`), whose memory stays
//! bounded whatever the inputs' size or order: sorted runs are spilled to a scratch directory
//! and merged k ways a small batch at a time. The output is written to `<out>.tmp`, fsynced
//! and renamed: a crash leaves either no file or the whole file.

use std::cmp::Ordering;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch, TimestampNanosecondArray};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::error::ContractError;
use crate::schema::{arrow_schema, schema_version, Event};
use crate::segment::{
    read_footer_keeping_metadata, sha256_file, streaming_writer_properties, tmp_path, SegmentMeta,
    WrittenSegment,
};

/// Rows per row group of a compacted file (design §4: at least 122,880).
pub const COMPACT_ROW_GROUP_ROWS: usize = 122_880;

/// How [`compact`] works.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Written in the new file's metadata, e.g. `karmor-collector 0.1.0`.
    pub producer: String,
    /// Rows per output row group.
    pub row_group_rows: usize,
    /// Input rows sorted in memory at a time before they are spilled as a run (and the most
    /// rows compacted in memory without spilling).
    pub run_rows: usize,
    /// Rows of each run held at a time during the merge (the run's batches).
    pub merge_batch_rows: usize,
    /// Runs merged at once; more runs than this are first merged into longer ones. Each
    /// holds one batch and its identity keys (about 1 KiB a row) in memory during a merge.
    pub merge_fan_in: usize,
    /// Where runs are spilled (a directory on the same disk; removed afterwards).
    pub scratch_dir: PathBuf,
}

impl CompactOptions {
    /// Defaults that keep a compaction's heap to about 20 MiB (it runs inside a busy
    /// collector; most of it is the output's row group being encoded): runs of 4,096 rows,
    /// merges of 16 runs read 64 rows at a time, 122,880-row groups; runs go to `scratch_dir`.
    pub fn new(producer: impl Into<String>, scratch_dir: impl Into<PathBuf>) -> Self {
        CompactOptions {
            producer: producer.into(),
            row_group_rows: COMPACT_ROW_GROUP_ROWS,
            run_rows: 4096,
            merge_batch_rows: 64,
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
    let mut output = Output::create(
        out,
        streaming_writer_properties(&meta, options.row_group_rows.max(1)),
    )?;
    let input_rows = external::compact_external(&inputs, &mut output, options, &scratch)?;
    let written = output.finish()?;
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

/// The compacted file being written: batches go to the Parquet writer, which holds at most one
/// encoded row group.
struct Output {
    path: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
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
            rows: 0,
            first: i64::MAX,
            last: i64::MIN,
        })
    }

    /// Writes a batch of contract rows as it is.
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), ContractError> {
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

    /// Closes the file, fsyncs it, renames it into place and fsyncs the directory.
    fn finish(self) -> Result<WrittenSegment, ContractError> {
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
mod external;
#[cfg(test)]
mod tests;
