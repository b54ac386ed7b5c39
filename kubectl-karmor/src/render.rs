//! Rendering helpers: kubectl-style tables, JSON, YAML and CSV.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use tabled::builder::Builder;
use tabled::settings::Style;

/// An aligned table in kubectl's style: upper-case headers, no borders.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut b = Builder::default();
    b.push_record(headers.iter().map(|h| h.to_string()));
    for r in rows {
        b.push_record(r.iter().cloned());
    }
    let mut t = b.build();
    t.with(Style::blank());
    // Style::blank pads every cell by one space on each side; trim the line ends.
    t.to_string()
        .lines()
        .map(|l| {
            l.trim_end()
                .strip_prefix(' ')
                .unwrap_or(l.trim_end())
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// RFC 3339 shortened to seconds, for tables.
pub fn short_time(ts: &str) -> String {
    match (ts.find('.'), ts.ends_with('Z')) {
        (Some(dot), true) => format!("{}Z", &ts[..dot]),
        _ => ts.to_string(),
    }
}

/// `-` for a missing value.
pub fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

/// Writes a value as pretty JSON to standard output.
pub fn json<T: Serialize>(value: &T) -> Result<()> {
    json_to(std::io::stdout().lock(), value)
}

/// Writes a value as pretty JSON (what `--output json` prints) to `out`.
pub fn json_to<T: Serialize>(mut out: impl Write, value: &T) -> Result<()> {
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Writes a value as YAML to standard output.
pub fn yaml<T: Serialize>(value: &T) -> Result<()> {
    yaml_to(std::io::stdout().lock(), value)
}

/// Writes a value as YAML (what `--output yaml` prints) to `out`.
pub fn yaml_to<T: Serialize>(mut out: impl Write, value: &T) -> Result<()> {
    out.write_all(serde_yaml::to_string(value)?.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Writes rows as CSV to standard output.
pub fn csv(headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
    csv_to(std::io::stdout().lock(), headers, rows)
}

/// Writes rows as CSV (what `--output csv` prints) to `out`.
pub fn csv_to(out: impl Write, headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(headers)?;
    for r in rows {
        w.write_record(r)?;
    }
    w.flush()?;
    Ok(())
}
