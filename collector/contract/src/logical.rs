//! Schema v1 by logical type: what other Parquet writers produce for the same columns, and how
//! it reads as ours.
//!
//! A bundle rewritten by pyarrow, DuckDB, Polars or Spark keeps the logical schema but not
//! always our Arrow spelling: a list's element is named `element` (the Parquet standard's
//! name) rather than `item` and may be nullable; strings come back as large or view strings or
//! dictionaries; timestamps as microseconds, or without the `UTC` zone (Spark, DuckDB's
//! `TIMESTAMP`); every column nullable (DuckDB); unsigned integers as signed ones (Spark has
//! none). Readers check logical types ([`compatible`]), then cast each column to ours
//! ([`normalize`]): values that do not fit (a negative count, a null `node`) are errors that
//! name the column and row.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, TimestampNanosecondArray};
use arrow_cast::cast::{cast_with_options, CastOptions};
use arrow_schema::{DataType, Field, TimeUnit};

/// The zone schema v1 names its timestamps with.
const UTC: &str = "UTC";

/// Whether a column of type `have` holds the logical type `want` of schema v1.
pub fn compatible(have: &DataType, want: &DataType) -> bool {
    match want {
        DataType::Utf8 => is_string(have),
        DataType::Timestamp(_, _) => match have {
            DataType::Timestamp(_, tz) => tz.as_deref().is_none_or(is_utc),
            _ => false,
        },
        DataType::Boolean => *have == DataType::Boolean,
        w if w.is_integer() => have.is_integer(),
        DataType::List(want_item) => match have {
            DataType::List(item) | DataType::LargeList(item) => {
                compatible(item.data_type(), want_item.data_type())
            }
            _ => false,
        },
        _ => have == want,
    }
}

/// The logical type of `want`, said to a user (`list of string`, `timestamp`, …).
pub fn describe(want: &DataType) -> String {
    match want {
        DataType::Utf8 => "string".into(),
        DataType::Timestamp(_, _) => "timestamp (UTC)".into(),
        DataType::Boolean => "boolean".into(),
        w if w.is_integer() => "integer".into(),
        DataType::List(item) => format!("list of {}", describe(item.data_type())),
        other => other.to_string(),
    }
}

fn is_string(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_string(value),
        _ => false,
    }
}

fn is_utc(tz: &str) -> bool {
    matches!(
        tz,
        "UTC" | "utc" | "Z" | "+00:00" | "+0000" | "Etc/UTC" | "GMT"
    )
}

/// Why a column could not be read as schema v1: the column and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnProblem {
    /// The column's name.
    pub column: String,
    /// What is wrong, with the first offending row where there is one.
    pub message: String,
}

/// Returns `batch`'s columns of schema v1, in schema order, each cast to the type readers
/// downcast to: ours, except that list elements may be null (readers skip them). Columns that
/// already have that type are shared, not copied.
pub fn normalize(
    batch: &RecordBatch,
    schema: &arrow_schema::Schema,
) -> Result<Vec<ArrayRef>, ColumnProblem> {
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let mut columns = Vec::with_capacity(schema.fields().len());
    for want in schema.fields() {
        let problem = |message: String| ColumnProblem {
            column: want.name().clone(),
            message,
        };
        let have = batch
            .column_by_name(want.name())
            .ok_or_else(|| problem("missing".into()))?;
        if !compatible(have.data_type(), want.data_type()) {
            return Err(problem(format!(
                "type {} (expected {})",
                have.data_type(),
                describe(want.data_type())
            )));
        }
        let target = read_type(want.data_type());
        let column = if reads_as(have.data_type(), &target) {
            Arc::clone(have)
        } else if let DataType::Timestamp(TimeUnit::Nanosecond, Some(_)) = target {
            // A UTC instant in another unit or spelling of UTC: convert the unit, then name the
            // zone ours (arrow's cast parses zone names only with chrono-tz).
            let tz = match have.data_type() {
                DataType::Timestamp(_, tz) => tz.clone(),
                _ => None,
            };
            let ns = cast_with_options(
                have,
                &DataType::Timestamp(TimeUnit::Nanosecond, tz),
                &options,
            )
            .map_err(|e| problem(format!("cannot read as {}: {e}", describe(&target))))?;
            let ns = ns
                .as_any()
                .downcast_ref::<TimestampNanosecondArray>()
                .ok_or_else(|| problem("timestamps did not convert to nanoseconds".into()))?;
            Arc::new(ns.clone().with_timezone(UTC)) as ArrayRef
        } else {
            cast_with_options(have, &target, &options)
                .map_err(|e| problem(format!("cannot read as {}: {e}", describe(&target))))?
        };
        if !want.is_nullable() && column.null_count() > 0 {
            let row = (0..column.len()).find(|&i| column.is_null(i)).unwrap_or(0);
            return Err(problem(format!(
                "row {row}: null in a column that has none"
            )));
        }
        columns.push(column);
    }
    Ok(columns)
}

/// The type a reader downcasts `want` to: lists with nullable elements, the rest as is.
fn read_type(want: &DataType) -> DataType {
    match want {
        DataType::List(item) => DataType::List(Arc::new(Field::new(
            item.name(),
            read_type(item.data_type()),
            true,
        ))),
        other => other.clone(),
    }
}

/// Whether an array of type `have` downcasts as `target` without a cast: the same type, or a
/// list of strings whose element has another name or nullability.
fn reads_as(have: &DataType, target: &DataType) -> bool {
    match (have, target) {
        (DataType::List(h), DataType::List(t)) => h.data_type() == t.data_type(),
        _ => have == target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{Int64Builder, ListBuilder, StringBuilder};
    use arrow_array::{StringArray, TimestampMicrosecondArray};
    use arrow_schema::Schema;

    fn want_schema() -> Schema {
        Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            Field::new("count", DataType::UInt64, false),
            Field::new("node", DataType::Utf8, false),
            Field::new(
                "labels",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
                false,
            ),
        ])
    }

    fn labels(element: &str, rows: &[&[Option<&str>]]) -> ArrayRef {
        let mut b = ListBuilder::new(StringBuilder::new()).with_field(Field::new(
            element,
            DataType::Utf8,
            true,
        ));
        for row in rows {
            for v in *row {
                b.values().append_option(*v);
            }
            b.append(true);
        }
        Arc::new(b.finish())
    }

    #[test]
    fn other_writers_spellings_read_as_ours() {
        // pyarrow/DuckDB: `element`, nullable items, microseconds without a zone, signed ints.
        let mut count = Int64Builder::new();
        count.append_value(3);
        count.append_value(7);
        let batch = RecordBatch::try_from_iter(vec![
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(vec![1, 2])) as ArrayRef,
            ),
            ("count", Arc::new(count.finish()) as ArrayRef),
            (
                "node",
                Arc::new(arrow_array::LargeStringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
            ("labels", labels("element", &[&[Some("k=v"), None], &[]])),
        ])
        .unwrap();
        let cols = normalize(&batch, &want_schema()).unwrap();
        let ts = cols[0]
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .unwrap();
        assert_eq!(ts.values(), &[1_000, 2_000]);
        let count = cols[1]
            .as_any()
            .downcast_ref::<arrow_array::UInt64Array>()
            .unwrap();
        assert_eq!(count.values(), &[3, 7]);
        let node = cols[2].as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(node.value(1), "b");
        let labels = cols[3]
            .as_any()
            .downcast_ref::<arrow_array::ListArray>()
            .unwrap();
        assert_eq!(labels.value_length(0), 2);
    }

    #[test]
    fn values_that_do_not_fit_name_the_column_and_row() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "ts",
                Arc::new(TimestampNanosecondArray::from(vec![1, 2]).with_timezone("UTC"))
                    as ArrayRef,
            ),
            (
                "count",
                Arc::new(arrow_array::Int64Array::from(vec![1, -4])) as ArrayRef,
            ),
            (
                "node",
                Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef,
            ),
            ("labels", labels("item", &[&[], &[]])),
        ])
        .unwrap();
        let err = normalize(&batch, &want_schema()).unwrap_err();
        assert_eq!(err.column, "count", "{err:?}");

        let mut columns = batch.columns().to_vec();
        columns[1] = Arc::new(arrow_array::Int64Array::from(vec![1, 4]));
        let batch = RecordBatch::try_new(batch.schema(), columns).unwrap();
        let err = normalize(&batch, &want_schema()).unwrap_err();
        assert_eq!(err.column, "node");
        assert!(err.message.starts_with("row 1:"), "{}", err.message);
    }

    #[test]
    fn other_logical_types_are_refused() {
        let want = want_schema();
        assert!(!compatible(&DataType::Utf8, want.field(0).data_type()));
        assert!(!compatible(
            &DataType::Timestamp(TimeUnit::Nanosecond, Some("Europe/Paris".into())),
            want.field(0).data_type()
        ));
        assert!(!compatible(&DataType::Utf8, want.field(1).data_type()));
        assert!(!compatible(&DataType::Int64, want.field(2).data_type()));
        assert!(!compatible(
            &DataType::List(Arc::new(Field::new("element", DataType::Int32, true))),
            want.field(3).data_type()
        ));
        assert!(compatible(
            &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            want.field(2).data_type()
        ));
    }
}
