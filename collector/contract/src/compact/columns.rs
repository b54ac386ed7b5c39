//! Compaction on Arrow columns of rows that fit in one run: no row becomes an [`Event`].
//!
//! The rows' identities are encoded once with arrow's row format (byte strings that compare as
//! [`identity_order`] compares the rows: the same columns in the same order, nulls first, the
//! operation and the source by their enum order), row numbers are sorted by them, equal
//! neighbours fold, and the output is gathered column by column: nothing is allocated per row
//! and per string. The plugin's store compacts a bundle's small files this way (a partition's
//! rows at a time), and the external merge (`external.rs`) cuts its runs with [`fold`].
//!
//! [`Event`]: crate::schema::Event
//! [`identity_order`]: super::identity_order

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, ListArray, RecordBatch, StringArray, TimestampNanosecondArray, UInt32Array,
    UInt64Array, UInt8Array,
};
use arrow_row::{RowConverter, SortField};
use arrow_schema::DataType;
use arrow_select::{concat::concat, take::take};

use super::{Input, Output};
use crate::error::ContractError;
use crate::logical;
use crate::schema::{arrow_schema, Op, Source, COLUMNS};
use crate::segment::{streaming_writer_properties, SegmentMeta, WrittenSegment};

/// The identity columns in [`super::identity_order`]'s order: every column but the times and
/// the count.
const IDENTITY: [&str; 34] = [
    "namespace",
    "workload",
    "pod",
    "container",
    "op",
    "process",
    "path",
    "access",
    "parent_process",
    "proto",
    "direction",
    "remote_addr",
    "remote_port",
    "local_addr",
    "local_port",
    "remote_name",
    "syscall",
    "capability",
    "result",
    "policy",
    "action",
    "source",
    "pid",
    "ppid",
    "uid",
    "args",
    "host",
    "cluster",
    "node",
    "pod_uid",
    "container_id",
    "image",
    "workload_kind",
    "labels",
];

/// Reads every input, folds and sorts their rows on columns, and writes `out`. Returns what was
/// written and the rows read.
pub(super) fn compact_in_memory(
    inputs: &[Input],
    out: &Path,
    meta: &SegmentMeta,
    row_group_rows: usize,
) -> Result<(WrittenSegment, u64), ContractError> {
    let columns = read_columns(inputs)?;
    let rows_in = columns.first().map_or(0, |c| c.len());
    // Everything that can fail on the inputs' values fails before the output is created.
    let folded = if rows_in > 0 {
        Some(fold(&columns).map_err(|e| ContractError::parquet(out, e))?)
    } else {
        None
    };
    drop(columns);
    let mut output = Output::create(out, streaming_writer_properties(meta, row_group_rows))?;
    if let Some(batch) = folded {
        for start in (0..batch.num_rows()).step_by(row_group_rows) {
            let len = row_group_rows.min(batch.num_rows() - start);
            output.write_batch(&batch.slice(start, len))?;
        }
    }
    Ok((output.finish()?, rows_in as u64))
}

/// Every input's rows as the contract's columns (other writers' spellings normalised), one
/// array per column.
fn read_columns(inputs: &[Input]) -> Result<Vec<ArrayRef>, ContractError> {
    let mut parts: Vec<Vec<ArrayRef>> = vec![Vec::new(); COLUMNS.len()];
    for input in inputs {
        for_each_batch(input, 65_536, |columns| {
            for (part, column) in parts.iter_mut().zip(columns) {
                part.push(column);
            }
            Ok(())
        })?;
    }
    concat_parts(&parts)
}

/// Calls `f` with each batch of `input`'s rows (`batch_rows` at a time) as the contract's
/// columns, in schema order: other writers' spellings normalised, and an operation or source
/// that the contract does not know refused by file, column and row.
pub(super) fn for_each_batch(
    input: &Input,
    batch_rows: usize,
    mut f: impl FnMut(Vec<ArrayRef>) -> Result<(), ContractError>,
) -> Result<(), ContractError> {
    let schema = arrow_schema();
    // Rows of this input before the batch, so that an error names the row in the file.
    let mut before = 0;
    let reader = input.reader(batch_rows)?;
    let input = &input.path;
    for batch in reader {
        let batch = batch.map_err(|e| ContractError::parquet(input, e))?;
        let offset = before;
        before += batch.num_rows();
        let columns = logical::normalize(&batch, &schema).map_err(|p| ContractError::Column {
            path: input.clone(),
            column: p.column,
            message: p.message,
        })?;
        for (column, name) in columns.iter().zip(COLUMNS) {
            let known = match *name {
                "op" => first_unknown::<Op>(column),
                "source" => first_unknown::<Source>(column),
                _ => None,
            };
            if let Some((row, message)) = known {
                return Err(ContractError::Column {
                    path: input.clone(),
                    column: name.to_string(),
                    message: format!("row {}: {message}", offset + row),
                });
            }
        }
        let mut typed = Vec::with_capacity(columns.len());
        for (column, field) in columns.into_iter().zip(schema.fields()) {
            // Lists keep their writer's item name after normalisation; ours is `item`.
            typed.push(if column.data_type() == field.data_type() {
                column
            } else {
                arrow_cast::cast(&column, field.data_type())
                    .map_err(|e| ContractError::parquet(input, e))?
            });
        }
        f(typed)?;
    }
    Ok(())
}

/// Each column's parts as one array.
pub(super) fn concat_parts(parts: &[Vec<ArrayRef>]) -> Result<Vec<ArrayRef>, ContractError> {
    parts
        .iter()
        .map(|part| {
            let arrays: Vec<&dyn Array> = part.iter().map(|a| a.as_ref()).collect();
            if arrays.is_empty() {
                return Ok(arrow_array::new_empty_array(&DataType::Null));
            }
            concat(&arrays).map_err(|e| ContractError::parquet(Path::new("compaction"), e))
        })
        .collect()
}

/// The position of column `name` in schema order.
pub(super) fn column_index(name: &str) -> Result<usize, arrow_schema::ArrowError> {
    COLUMNS
        .iter()
        .position(|c| *c == name)
        .ok_or_else(|| arrow_schema::ArrowError::SchemaError(format!("no column {name}")))
}

/// The identity columns of `columns` (schema order) as sort keys whose order is
/// [`super::identity_order`]'s: the values themselves, but the operation and the source by
/// their enum order. Unlike [`fold`]'s ranks these compare across batches.
pub(super) fn identity_keys(
    columns: &[ArrayRef],
) -> Result<Vec<ArrayRef>, arrow_schema::ArrowError> {
    IDENTITY
        .iter()
        .map(|name| {
            let array = &columns[column_index(name)?];
            match *name {
                "op" => enum_order::<Op>(array, |op| op as u8),
                "source" => enum_order::<Source>(array, |s| s as u8),
                _ => Ok(Arc::clone(array)),
            }
        })
        .collect()
}

/// Sorts the rows by identity and folds equal identities: count summed, first = min,
/// last = max.
pub(super) fn fold(columns: &[ArrayRef]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let column = |name: &str| -> Result<&ArrayRef, arrow_schema::ArrowError> {
        columns
            .get(column_index(name)?)
            .ok_or_else(|| arrow_schema::ArrowError::SchemaError(format!("no column {name}")))
    };
    let mut keys = Vec::with_capacity(IDENTITY.len());
    for name in IDENTITY {
        let array = column(name)?;
        keys.push(match name {
            "op" => enum_order::<Op>(array, |op| op as u8)?,
            "source" => enum_order::<Source>(array, |s| s as u8)?,
            _ => ranked(array),
        });
    }
    let converter = RowConverter::new(
        keys.iter()
            .map(|k| SortField::new(k.data_type().clone()))
            .collect(),
    )?;
    let rows = converter.convert_columns(&keys)?;
    drop(keys);

    let n = rows.num_rows();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by(|&a, &b| rows.row(a as usize).cmp(&rows.row(b as usize)));

    let ts = |name: &str| -> Result<&TimestampNanosecondArray, arrow_schema::ArrowError> {
        column(name)?
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .ok_or_else(|| arrow_schema::ArrowError::SchemaError(format!("{name} type")))
    };
    let (first, last) = (ts("ts_first")?, ts("ts_last")?);
    let count = column("count")?
        .as_any()
        .downcast_ref::<UInt64Array>()
        .ok_or_else(|| arrow_schema::ArrowError::SchemaError("count type".into()))?;

    let mut kept: Vec<u32> = Vec::new();
    let (mut firsts, mut lasts, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    for &i in &order {
        let i = i as usize;
        let same = kept
            .last()
            .is_some_and(|&k| rows.row(k as usize) == rows.row(i));
        if same {
            let at = counts.len() - 1;
            counts[at] = u64::saturating_add(counts[at], count.value(i));
            firsts[at] = i64::min(firsts[at], first.value(i));
            lasts[at] = i64::max(lasts[at], last.value(i));
        } else {
            kept.push(i as u32);
            counts.push(count.value(i));
            firsts.push(first.value(i));
            lasts.push(last.value(i));
        }
    }
    drop(rows);

    let kept = UInt32Array::from(kept);
    let schema = arrow_schema();
    let mut out: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (field, array) in schema.fields().iter().zip(columns) {
        out.push(match field.name().as_str() {
            "ts_first" => Arc::new(
                TimestampNanosecondArray::from(std::mem::take(&mut firsts)).with_timezone("UTC"),
            ),
            "ts_last" => Arc::new(
                TimestampNanosecondArray::from(std::mem::take(&mut lasts)).with_timezone("UTC"),
            ),
            "count" => Arc::new(UInt64Array::from(std::mem::take(&mut counts))),
            _ => take(array.as_ref(), &kept, None)?,
        });
    }
    RecordBatch::try_new(schema, out)
}

/// A string or string-list column as the ranks of its values among the column's distinct values
/// (null 0, then 1.. in the values' order: a list compares element by element, a prefix first),
/// so that row keys are fixed-width integers instead of the strings themselves: the same order
/// and the same equalities, at a fraction of the cost to encode and compare (many columns repeat
/// long values, such as a workload's labels, on every row). Other columns are kept as they are.
fn ranked(array: &ArrayRef) -> ArrayRef {
    if let Some(strings) = array.as_any().downcast_ref::<StringArray>() {
        let values: Vec<Option<&str>> = strings.iter().collect();
        return Arc::new(ranks(&values));
    }
    if let Some(lists) = array.as_any().downcast_ref::<ListArray>() {
        if let Some(items) = lists.values().as_any().downcast_ref::<StringArray>() {
            let offsets = lists.value_offsets();
            let values: Vec<Option<Vec<Option<&str>>>> = (0..lists.len())
                .map(|row| {
                    lists.is_valid(row).then(|| {
                        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                        (start..end)
                            .map(|i| items.is_valid(i).then(|| items.value(i)))
                            .collect()
                    })
                })
                .collect();
            return Arc::new(ranks(&values));
        }
    }
    Arc::clone(array)
}

/// Each value's rank among the distinct values (`None` is 0, the smallest value 1).
fn ranks<T: Ord + std::hash::Hash>(values: &[Option<T>]) -> UInt32Array {
    // Each row's value as the order in which values were first seen, then that order as ranks.
    let mut distinct: HashMap<&T, u32> = HashMap::new();
    let seen: Vec<Option<u32>> = values
        .iter()
        .map(|v| {
            v.as_ref().map(|v| {
                let next = distinct.len() as u32;
                *distinct.entry(v).or_insert(next)
            })
        })
        .collect();
    let mut sorted: Vec<(&T, u32)> = distinct.into_iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut rank_of = vec![0u32; sorted.len()];
    for (rank, (_, first_seen)) in sorted.iter().enumerate() {
        rank_of[*first_seen as usize] = rank as u32 + 1;
    }
    seen.iter()
        .map(|s| s.map_or(0, |s| rank_of[s as usize]))
        .collect::<Vec<u32>>()
        .into()
}

/// The first value of a string column of enum names that the enum does not know: its row and
/// why.
fn first_unknown<T: std::str::FromStr<Err = String>>(array: &ArrayRef) -> Option<(usize, String)> {
    let strings = array.as_any().downcast_ref::<StringArray>()?;
    strings
        .iter()
        .enumerate()
        .find_map(|(row, v)| v.unwrap_or_default().parse::<T>().err().map(|m| (row, m)))
}

/// A string column of enum names (`op`, `source`) as the enum's order, which is what
/// [`super::identity_order`] compares; a name the enum does not know is an error.
fn enum_order<T: std::str::FromStr<Err = String>>(
    array: &ArrayRef,
    order: impl Fn(T) -> u8,
) -> Result<ArrayRef, arrow_schema::ArrowError> {
    let strings = array
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| arrow_schema::ArrowError::SchemaError("not a string column".into()))?;
    let mut out = Vec::with_capacity(strings.len());
    for (row, value) in strings.iter().enumerate() {
        let value = value.unwrap_or_default();
        let parsed = value.parse::<T>().map_err(|m| {
            arrow_schema::ArrowError::InvalidArgumentError(format!("row {row}: {m}"))
        })?;
        out.push(order(parsed));
    }
    Ok(Arc::new(UInt8Array::from(out)))
}
