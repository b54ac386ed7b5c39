//! `kubectl karmor import`: KubeArmor JSON logs → bundle.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufReader, Read};
use std::process::ExitCode;
use std::rc::Rc;

use anyhow::{Context, Result};
use karmor_contract::bundle::{write_bundle, BundleOptions};
use karmor_contract::kubearmor::read_json_logs;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cli::{ImportArgs, OutputFormat};
use crate::render;

/// Bad lines printed per file before the rest are only counted.
const SHOWN_ERRORS: usize = 20;

/// The import report of one input file.
#[derive(Debug, Serialize)]
pub struct FileReport {
    /// The input file.
    pub file: String,
    /// Lines read.
    pub lines: u64,
    /// Events imported.
    pub imported: u64,
    /// Lines that could not be imported.
    pub bad_lines: u64,
    /// Events without any timestamp (recorded at the Unix epoch).
    pub without_timestamp: u64,
    /// Why the file could not be read at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the import wrote.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    /// The bundle directory.
    pub bundle: String,
    /// Per input file.
    pub inputs: Vec<FileReport>,
    /// Segments in the bundle now.
    pub segments: u64,
    /// Rows in the bundle now.
    pub rows: u64,
}

/// Runs the command.
pub fn run(args: ImportArgs) -> Result<ExitCode> {
    let mut events = Vec::new();
    let mut inputs = Vec::new();
    let mut dropped = 0;
    let mut dropped_by_input = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let input: Box<dyn Read> = if name == "-" {
            Box::new(std::io::stdin())
        } else {
            match File::open(path) {
                Ok(f) => Box::new(f),
                Err(e) => {
                    eprintln!("error: {name}: {e} (other files are still imported)");
                    inputs.push(FileReport {
                        file: name,
                        lines: 0,
                        imported: 0,
                        bad_lines: 0,
                        without_timestamp: 0,
                        error: Some(e.to_string()),
                    });
                    continue;
                }
            }
        };
        // The input's sha256 keys its drop count in the manifest: importing the same logs
        // twice counts their bad lines once.
        let digest = Rc::new(RefCell::new(Sha256::new()));
        let reader = BufReader::new(HashingReader {
            inner: input,
            digest: digest.clone(),
        });
        let outcome = read_json_logs(reader);
        let sha = hex::encode(digest.borrow().clone().finalize());
        if !outcome.errors.is_empty() {
            dropped_by_input.push((format!("sha256:{sha}"), outcome.errors.len() as u64));
        }
        for err in outcome.errors.iter().take(SHOWN_ERRORS) {
            eprintln!("warning: {name}: {err}");
        }
        if outcome.errors.len() > SHOWN_ERRORS {
            eprintln!(
                "warning: {name}: ... and {} more bad lines",
                outcome.errors.len() - SHOWN_ERRORS
            );
        }
        dropped += outcome.errors.len() as u64;
        inputs.push(FileReport {
            file: name,
            lines: outcome.lines,
            imported: outcome.events.len() as u64,
            bad_lines: outcome.errors.len() as u64,
            without_timestamp: outcome.without_timestamp,
            error: None,
        });
        events.extend(outcome.events);
    }
    let opts = BundleOptions {
        producer: format!("kubectl-karmor import {}", env!("CARGO_PKG_VERSION")),
        cluster: args.cluster.clone(),
        events_dropped: 0,
        dropped_by_input,
        dedup: true,
    };
    let manifest = write_bundle(&args.out, events, &opts)
        .with_context(|| format!("cannot write bundle {}", args.out.display()))?;
    let report = ImportReport {
        bundle: args.out.display().to_string(),
        inputs,
        segments: manifest.totals.files,
        rows: manifest.totals.rows,
    };
    match args.output {
        OutputFormat::Json => render::json(&report)?,
        OutputFormat::Yaml => render::yaml(&report)?,
        format => {
            let rows: Vec<Vec<String>> = report
                .inputs
                .iter()
                .map(|f| {
                    vec![
                        f.file.clone(),
                        f.lines.to_string(),
                        f.imported.to_string(),
                        f.bad_lines.to_string(),
                        f.without_timestamp.to_string(),
                    ]
                })
                .collect();
            let headers = ["FILE", "LINES", "IMPORTED", "BAD LINES", "NO TIMESTAMP"];
            if format == OutputFormat::Csv {
                render::csv(&headers, &rows)?;
            } else {
                println!("{}", render::table(&headers, &rows));
                println!(
                    "\nbundle {}: {} segments, {} rows",
                    report.bundle, report.segments, report.rows
                );
            }
        }
    }
    let unreadable = report.inputs.iter().any(|f| f.error.is_some());
    if unreadable || (args.strict && dropped > 0) {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Feeds everything read through a sha256.
struct HashingReader {
    inner: Box<dyn Read>,
    digest: Rc<RefCell<Sha256>>,
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.borrow_mut().update(&buf[..n]);
        Ok(n)
    }
}
