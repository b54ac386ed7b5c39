//! Compaction of inputs larger than one run: an external merge sort on Arrow columns, so that
//! memory stays bounded whatever the inputs' size and no row ever becomes an [`Event`].
//!
//! 1. The inputs are read [`CompactOptions::run_rows`] rows at a time; each chunk is sorted and
//!    folded on columns ([`columns::fold`]) and spilled as a *run*: an Arrow IPC stream in the
//!    scratch directory, in batches of [`CompactOptions::merge_batch_rows`] rows.
//! 2. Runs are merged k ways ([`CompactOptions::merge_fan_in`] at a time, into longer runs while
//!    there are more) by their identities encoded with arrow's row format, whose byte order is
//!    [`identity_order`]'s; equal identities fold (count summed, first = min, last = max). Each
//!    run holds one batch and its keys in memory; the output is gathered column by column
//!    ([`interleave`]) a thousand rows at a time.
//!
//! [`Event`]: crate::schema::Event
//! [`identity_order`]: super::identity_order

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, TimestampNanosecondArray, UInt64Array};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::ArrowError;
use arrow_select::interleave::interleave;

use super::columns::{self, column_index, concat_parts, for_each_batch, identity_keys};
use super::{CompactOptions, Input, Output, Scratch};
use crate::error::ContractError;
use crate::schema::{arrow_schema, COLUMNS};

/// Rows decoded from an input at a time while runs are cut.
const READ_BATCH_ROWS: usize = 1024;

/// Rows gathered into each output batch of a merge.
const OUT_BATCH_ROWS: usize = 1024;

/// Compacts `inputs` into `output` by an external merge sort in `scratch`. Returns the rows
/// read.
pub(super) fn compact_external(
    inputs: &[Input],
    output: &mut Output,
    options: &CompactOptions,
    scratch: &Scratch,
) -> Result<u64, ContractError> {
    let run_rows = options.run_rows.max(1);
    let mut runs: Vec<PathBuf> = Vec::new();
    let mut parts: Vec<Vec<ArrayRef>> = vec![Vec::new(); COLUMNS.len()];
    let mut pending = 0usize;
    let mut rows_in = 0u64;
    for input in inputs {
        // Small batches: a run overshoots `run_rows` by less than one batch before it spills.
        for_each_batch(input, run_rows.min(READ_BATCH_ROWS), |columns| {
            let n = columns.first().map_or(0, |c| c.len());
            rows_in += n as u64;
            pending += n;
            for (part, column) in parts.iter_mut().zip(columns) {
                part.push(column);
            }
            if pending >= run_rows {
                runs.push(spill(&mut parts, scratch, runs.len(), options)?);
                pending = 0;
            }
            Ok(())
        })?;
    }
    if pending > 0 {
        runs.push(spill(&mut parts, scratch, runs.len(), options)?);
    }

    let fan_in = options.merge_fan_in.max(2);
    let mut next_run = runs.len();
    while runs.len() > fan_in {
        let mut longer = Vec::with_capacity(runs.len().div_ceil(fan_in));
        for group in runs.chunks(fan_in) {
            let path = scratch.run_path(next_run);
            next_run += 1;
            let mut run = RunWriter::create(&path)?;
            merge(
                group,
                &mut |batch| run.write_sliced(batch, options),
                options,
            )?;
            run.finish()?;
            for done in group {
                let _ = std::fs::remove_file(done);
            }
            longer.push(path);
        }
        runs = longer;
    }
    merge(&runs, &mut |batch| output.write_batch(batch), options)?;
    Ok(rows_in)
}

/// Sorts and folds the rows gathered in `parts` (emptied) and writes them as run `n`.
fn spill(
    parts: &mut [Vec<ArrayRef>],
    scratch: &Scratch,
    n: usize,
    options: &CompactOptions,
) -> Result<PathBuf, ContractError> {
    let path = scratch.run_path(n);
    let columns = concat_parts(parts)?;
    for part in parts.iter_mut() {
        part.clear();
    }
    let sorted = columns::fold(&columns).map_err(|e| ContractError::parquet(&path, e))?;
    drop(columns);
    let mut run = RunWriter::create(&path)?;
    run.write_sliced(&sorted, options)?;
    run.finish()?;
    Ok(path)
}

/// A run being written: an Arrow IPC stream (scratch data, neither synced nor hashed).
struct RunWriter {
    path: PathBuf,
    writer: StreamWriter<BufWriter<File>>,
}

impl RunWriter {
    fn create(path: &Path) -> Result<RunWriter, ContractError> {
        let file = File::create(path).map_err(|e| ContractError::io(path, e))?;
        let writer = StreamWriter::try_new(BufWriter::new(file), &arrow_schema())
            .map_err(|e| ContractError::parquet(path, e))?;
        Ok(RunWriter {
            path: path.to_path_buf(),
            writer,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), ContractError> {
        self.writer
            .write(batch)
            .map_err(|e| ContractError::parquet(&self.path, e))
    }

    /// Writes `batch` in batches of [`CompactOptions::merge_batch_rows`] rows: what a merge
    /// holds of each run at a time.
    fn write_sliced(
        &mut self,
        batch: &RecordBatch,
        options: &CompactOptions,
    ) -> Result<(), ContractError> {
        let step = options.merge_batch_rows.max(1);
        for start in (0..batch.num_rows()).step_by(step) {
            let len = step.min(batch.num_rows() - start);
            self.write(&batch.slice(start, len))?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), ContractError> {
        self.writer
            .finish()
            .map_err(|e| ContractError::parquet(&self.path, e))
    }
}

/// One run during a merge: its reader, its current batch and that batch's identity keys.
struct Cursor {
    path: PathBuf,
    reader: StreamReader<BufReader<File>>,
    batch: RecordBatch,
    keys: Rows,
    /// The next row of `batch`.
    at: usize,
    /// Where `batch` is in the merge's list of batches that output rows are gathered from.
    slot: usize,
}

impl Cursor {
    fn open(path: &Path, converter: &RowConverter) -> Result<Option<Cursor>, ContractError> {
        let file = File::open(path).map_err(|e| ContractError::io(path, e))?;
        let reader = StreamReader::try_new(BufReader::new(file), None)
            .map_err(|e| ContractError::parquet(path, e))?;
        let mut cursor = Cursor {
            path: path.to_path_buf(),
            reader,
            batch: RecordBatch::new_empty(arrow_schema()),
            keys: converter.empty_rows(0, 0),
            at: 0,
            slot: 0,
        };
        Ok(cursor.load(converter)?.then_some(cursor))
    }

    /// Reads the next non-empty batch; false at the end of the run.
    fn load(&mut self, converter: &RowConverter) -> Result<bool, ContractError> {
        for batch in self.reader.by_ref() {
            let batch = batch.map_err(|e| ContractError::parquet(&self.path, e))?;
            if batch.num_rows() == 0 {
                continue;
            }
            let keys = identity_keys(batch.columns())
                .and_then(|k| converter.convert_columns(&k))
                .map_err(|e| ContractError::parquet(&self.path, e))?;
            self.batch = batch;
            self.keys = keys;
            self.at = 0;
            return Ok(true);
        }
        Ok(false)
    }

    fn key(&self) -> &[u8] {
        self.keys.row(self.at).data()
    }
}

/// Output rows of a merge not yet written: where each comes from, and its folded times and
/// count.
struct Gathered {
    /// The batches rows are gathered from: every cursor's current batch, and batches that
    /// cursors have moved past since the last write.
    slots: Vec<RecordBatch>,
    picks: Vec<(usize, usize)>,
    firsts: Vec<i64>,
    lasts: Vec<i64>,
    counts: Vec<u64>,
    /// The identity of the last row picked.
    last_key: Vec<u8>,
}

impl Gathered {
    /// The picked rows as one batch, with their folded times and counts; empties the picks.
    fn take_batch(&mut self, folded: &Folded) -> Result<RecordBatch, ArrowError> {
        let schema = arrow_schema();
        let [ts_first, ts_last, count] = folded.0;
        let mut out: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for i in 0..schema.fields().len() {
            out.push(if i == ts_first {
                Arc::new(
                    TimestampNanosecondArray::from(std::mem::take(&mut self.firsts))
                        .with_timezone("UTC"),
                )
            } else if i == ts_last {
                Arc::new(
                    TimestampNanosecondArray::from(std::mem::take(&mut self.lasts))
                        .with_timezone("UTC"),
                )
            } else if i == count {
                Arc::new(UInt64Array::from(std::mem::take(&mut self.counts)))
            } else {
                let arrays: Vec<&dyn Array> =
                    self.slots.iter().map(|b| b.column(i).as_ref()).collect();
                interleave(&arrays, &self.picks)?
            });
        }
        self.picks.clear();
        RecordBatch::try_new(schema, out)
    }
}

/// The positions of the columns that fold: `ts_first`, `ts_last`, `count`.
struct Folded([usize; 3]);

impl Folded {
    fn new() -> Result<Folded, ArrowError> {
        Ok(Folded([
            column_index("ts_first")?,
            column_index("ts_last")?,
            column_index("count")?,
        ]))
    }

    /// Row `at` of `batch`: its first and last times and its count.
    fn row(&self, batch: &RecordBatch, at: usize) -> Result<(i64, i64, u64), ArrowError> {
        let [first, last, count] = self.0;
        let time = |i: usize| {
            batch
                .column(i)
                .as_any()
                .downcast_ref::<TimestampNanosecondArray>()
                .map(|a| a.value(at))
                .ok_or_else(|| ArrowError::SchemaError(format!("{}: not a timestamp", COLUMNS[i])))
        };
        let count = batch
            .column(count)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .map(|a| a.value(at))
            .ok_or_else(|| ArrowError::SchemaError("count: not a UInt64".into()))?;
        Ok((time(first)?, time(last)?, count))
    }
}

/// Restores the min-heap property of `heap` (cursor numbers, smallest key first; ties by
/// cursor number) below position `i`.
fn sift_down(heap: &mut [usize], mut i: usize, cursors: &[Cursor]) {
    let less = |a: usize, b: usize| (cursors[a].key(), a) < (cursors[b].key(), b);
    loop {
        let left = 2 * i + 1;
        if left >= heap.len() {
            return;
        }
        let right = left + 1;
        let child = if right < heap.len() && less(heap[right], heap[left]) {
            right
        } else {
            left
        };
        if !less(heap[child], heap[i]) {
            return;
        }
        heap.swap(child, i);
        i = child;
    }
}

/// Merges sorted, folded runs into `sink`, equal identities folded into one row.
fn merge(
    runs: &[PathBuf],
    sink: &mut dyn FnMut(&RecordBatch) -> Result<(), ContractError>,
    options: &CompactOptions,
) -> Result<(), ContractError> {
    let scratch_error = |e: ArrowError| {
        let path = runs.first().map_or_else(PathBuf::new, PathBuf::clone);
        ContractError::parquet(&path, e)
    };
    let schema = arrow_schema();
    let fields = identity_keys(RecordBatch::new_empty(schema).columns())
        .map_err(scratch_error)?
        .iter()
        .map(|k| SortField::new(k.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields).map_err(scratch_error)?;
    let out_rows = OUT_BATCH_ROWS.max(options.merge_batch_rows);
    let folded = Folded::new().map_err(scratch_error)?;

    let mut cursors = Vec::with_capacity(runs.len());
    let mut gathered = Gathered {
        slots: Vec::with_capacity(runs.len() * 2),
        picks: Vec::with_capacity(out_rows),
        firsts: Vec::with_capacity(out_rows),
        lasts: Vec::with_capacity(out_rows),
        counts: Vec::with_capacity(out_rows),
        last_key: Vec::new(),
    };
    for path in runs {
        if let Some(mut cursor) = Cursor::open(path, &converter)? {
            cursor.slot = gathered.slots.len();
            gathered.slots.push(cursor.batch.clone());
            cursors.push(cursor);
        }
    }
    let mut heap: Vec<usize> = (0..cursors.len()).collect();
    for i in (0..heap.len() / 2).rev() {
        sift_down(&mut heap, i, &cursors);
    }

    while let Some(&top) = heap.first() {
        let cursor = &cursors[top];
        let (first, last, count) = folded
            .row(&cursor.batch, cursor.at)
            .map_err(|e| ContractError::parquet(&cursor.path, e))?;
        let same = !gathered.picks.is_empty() && gathered.last_key.as_slice() == cursor.key();
        if same {
            let at = gathered.counts.len() - 1;
            gathered.counts[at] = gathered.counts[at].saturating_add(count);
            gathered.firsts[at] = gathered.firsts[at].min(first);
            gathered.lasts[at] = gathered.lasts[at].max(last);
        } else {
            // Written when full, or when it holds twice as many batches as there are runs:
            // rows that fold a lot would otherwise keep every batch read since the last write.
            let full =
                gathered.picks.len() >= out_rows || gathered.slots.len() >= 2 * cursors.len();
            if full && !gathered.picks.is_empty() {
                let batch = gathered.take_batch(&folded).map_err(scratch_error)?;
                sink(&batch)?;
                // Only the cursors' current batches are needed from now on.
                gathered.slots.clear();
                for c in cursors.iter_mut() {
                    c.slot = gathered.slots.len();
                    gathered.slots.push(c.batch.clone());
                }
            }
            let cursor = &cursors[top];
            gathered.last_key.clear();
            gathered.last_key.extend_from_slice(cursor.key());
            gathered.picks.push((cursor.slot, cursor.at));
            gathered.firsts.push(first);
            gathered.lasts.push(last);
            gathered.counts.push(count);
        }

        let cursor = &mut cursors[top];
        cursor.at += 1;
        if cursor.at == cursor.batch.num_rows() {
            if cursor.load(&converter)? {
                cursor.slot = gathered.slots.len();
                gathered.slots.push(cursor.batch.clone());
            } else {
                // This run is done: the last heap entry takes its place, and its batch is
                // let go at the next write.
                cursor.batch = RecordBatch::new_empty(arrow_schema());
                cursor.keys = converter.empty_rows(0, 0);
                let last = heap.len() - 1;
                heap.swap(0, last);
                heap.pop();
            }
        }
        sift_down(&mut heap, 0, &cursors);
    }
    if !gathered.picks.is_empty() {
        let batch = gathered.take_batch(&folded).map_err(scratch_error)?;
        sink(&batch)?;
    }
    Ok(())
}
