//! Large query results read as Arrow batches: each column is cast once per batch to the type
//! the rows want, then read by index. For summaries of hundreds of thousands of rows this is
//! about a third faster than reading value by value through DuckDB's row API.

use duckdb::arrow::array::{Array, ArrayRef, AsArray};
use duckdb::arrow::compute::cast;
use duckdb::arrow::datatypes::{DataType, Int64Type, UInt16Type, UInt64Type};
use duckdb::{params_from_iter, ToSql};

use crate::error::{AnalyzerError, Result};
use crate::store::Store;

/// The type a result column is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    /// Text (nullable).
    Text,
    /// Unsigned 64-bit integer.
    U64,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 16-bit integer (ports; nullable).
    U16,
    /// Boolean.
    Bool,
}

impl Col {
    fn data_type(self) -> DataType {
        match self {
            Col::Text => DataType::Utf8,
            Col::U64 => DataType::UInt64,
            Col::I64 => DataType::Int64,
            Col::U16 => DataType::UInt16,
            Col::Bool => DataType::Boolean,
        }
    }
}

/// One batch of a result, its columns cast to the requested types.
pub(crate) struct Columns {
    cols: Vec<ArrayRef>,
    rows: usize,
}

impl Columns {
    /// Rows in this batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Text at (`col`, `row`); `None` for NULL.
    pub fn text(&self, col: usize, row: usize) -> Option<String> {
        self.str(col, row).map(str::to_string)
    }

    /// Text at (`col`, `row`), borrowed; `None` for NULL.
    pub fn str(&self, col: usize, row: usize) -> Option<&str> {
        let a = self.cols[col].as_string::<i32>();
        (!a.is_null(row)).then(|| a.value(row))
    }

    /// Unsigned integer at (`col`, `row`); 0 for NULL.
    pub fn u64(&self, col: usize, row: usize) -> u64 {
        let a = self.cols[col].as_primitive::<UInt64Type>();
        if a.is_null(row) {
            0
        } else {
            a.value(row)
        }
    }

    /// Signed integer at (`col`, `row`); 0 for NULL.
    pub fn i64(&self, col: usize, row: usize) -> i64 {
        let a = self.cols[col].as_primitive::<Int64Type>();
        if a.is_null(row) {
            0
        } else {
            a.value(row)
        }
    }

    /// Whether (`col`, `row`) is NULL.
    pub fn is_null(&self, col: usize, row: usize) -> bool {
        self.cols[col].is_null(row)
    }

    /// Boolean at (`col`, `row`); false for NULL.
    pub fn bool(&self, col: usize, row: usize) -> bool {
        let a = self.cols[col].as_boolean();
        !a.is_null(row) && a.value(row)
    }

    /// Port at (`col`, `row`); `None` for NULL.
    pub fn u16(&self, col: usize, row: usize) -> Option<u16> {
        let a = self.cols[col].as_primitive::<UInt16Type>();
        (!a.is_null(row)).then(|| a.value(row))
    }
}

/// Results with fewer rows than this are built on the calling thread.
const PARALLEL_ROWS: usize = 16_384;

/// Runs `sql` with `params` and builds one `T` per result row with `map`, reading the result
/// as Arrow batches whose columns are cast to `types` (one entry per selected column). Large
/// results are built on every core, in order: DuckDB is idle by then, and building a few
/// hundred thousand rows of owned strings is a fifth of a large summary.
pub(crate) fn query_columns<T: Send, P: ToSql>(
    store: &Store,
    sql: &str,
    params: &[P],
    types: &[Col],
    map: impl Fn(&Columns, usize) -> T + Sync,
) -> Result<Vec<T>> {
    let parts = query_batches(store, sql, params, types)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(build_rows(&parts, threads, &map))
}

/// Runs `sql` with `params` and returns its result as batches whose columns are cast to
/// `types` (one entry per selected column), for a caller that reads them in place (borrowing
/// their text instead of copying it).
pub(crate) fn query_batches<P: ToSql>(
    store: &Store,
    sql: &str,
    params: &[P],
    types: &[Col],
) -> Result<Vec<Columns>> {
    let mut stmt = store
        .conn()
        .prepare(sql)
        .map_err(AnalyzerError::store("prepare summary"))?;
    let batches = stmt
        .query_arrow(params_from_iter(params.iter()))
        .map_err(AnalyzerError::store("run summary"))?;
    let mut parts = Vec::new();
    for batch in batches {
        if batch.num_columns() != types.len() {
            return Err(AnalyzerError::Invalid(format!(
                "summary query returned {} columns, {} expected",
                batch.num_columns(),
                types.len()
            )));
        }
        let cols = batch
            .columns()
            .iter()
            .zip(types)
            .map(|(c, t)| cast(c, &t.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| AnalyzerError::Invalid(format!("reading a summary: {e}")))?;
        parts.push(Columns {
            cols,
            rows: batch.num_rows(),
        });
    }
    Ok(parts)
}

/// The rows of `parts`, in order, built on up to `threads` threads.
fn build_rows<T: Send>(
    parts: &[Columns],
    threads: usize,
    map: &(impl Fn(&Columns, usize) -> T + Sync),
) -> Vec<T> {
    let build = |parts: &[Columns]| {
        let mut out = Vec::with_capacity(parts.iter().map(|c| c.rows).sum());
        for c in parts {
            out.extend((0..c.rows).map(|row| map(c, row)));
        }
        out
    };
    let rows: usize = parts.iter().map(|c| c.rows).sum();
    if rows < PARALLEL_ROWS || threads < 2 || parts.len() < 2 {
        return build(parts);
    }
    let runs = split_by_rows(parts, threads);
    std::thread::scope(|scope| {
        let rest: Vec<_> = runs[1..]
            .iter()
            .map(|run| scope.spawn(move || build(run)))
            .collect();
        let mut out = build(runs[0]);
        for handle in rest {
            match handle.join() {
                Ok(rows) => out.extend(rows),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// Cuts `parts` into at most `n` consecutive runs of about equal row counts.
fn split_by_rows(parts: &[Columns], n: usize) -> Vec<&[Columns]> {
    let total: usize = parts.iter().map(|c| c.rows).sum();
    let target = total.div_ceil(n.max(1)).max(1);
    let mut runs = Vec::new();
    let (mut start, mut rows) = (0, 0);
    for (i, c) in parts.iter().enumerate() {
        rows += c.rows;
        if rows >= target && runs.len() + 1 < n {
            runs.push(&parts[start..=i]);
            (start, rows) = (i + 1, 0);
        }
    }
    if start < parts.len() {
        runs.push(&parts[start..]);
    }
    runs
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use duckdb::arrow::array::Int64Array;

    use super::*;

    fn parts(sizes: &[usize]) -> Vec<Columns> {
        let mut next = 0i64;
        sizes
            .iter()
            .map(|&n| {
                let values: Vec<i64> = (next..next + n as i64).collect();
                next += n as i64;
                Columns {
                    cols: vec![Arc::new(Int64Array::from(values)) as ArrayRef],
                    rows: n,
                }
            })
            .collect()
    }

    #[test]
    fn rows_come_back_in_order_whatever_the_threads() {
        let sizes = [2048, 2048, 10, 0, 30_000, 2048, 7];
        let parts = parts(&sizes);
        let want: Vec<i64> = (0..sizes.iter().sum::<usize>() as i64).collect();
        for threads in [1, 2, 3, 8, 64] {
            let got = build_rows(&parts, threads, &|c: &Columns, row| c.i64(0, row));
            assert_eq!(got, want, "{threads} threads");
        }
    }

    #[test]
    fn runs_cover_every_part_once_in_order() {
        let parts = parts(&[5, 5, 5, 5, 5, 5, 5]);
        for n in 1..10 {
            let runs = split_by_rows(&parts, n);
            assert!(runs.len() <= n.max(1));
            assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), parts.len());
            let first: Vec<usize> = runs.iter().map(|r| r.as_ptr() as usize).collect();
            assert!(first.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
