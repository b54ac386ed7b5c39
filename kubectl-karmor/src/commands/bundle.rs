//! `kubectl karmor bundle info|verify`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use karmor_analyzer::bundle_source::BundleSource;
use karmor_contract::bundle::{read_manifest, verify_bundle, FileCheck};
use serde::Serialize;

use crate::cli::{BundleCommand, OutputFormat};
use crate::render::{self, short_time};

/// Runs the command.
pub fn run(cmd: BundleCommand) -> Result<ExitCode> {
    match cmd {
        BundleCommand::Info { path, output } => {
            let source = BundleSource::open(&path)
                .with_context(|| format!("cannot open bundle {}", path.display()))?;
            for (entry, why) in source.skipped() {
                eprintln!("warning: {}: {entry}: {why}", path.display());
            }
            let m = read_manifest(source.root())
                .with_context(|| format!("cannot read bundle {}", path.display()))?;
            match output {
                OutputFormat::Json => render::json(&m)?,
                OutputFormat::Yaml => render::yaml(&m)?,
                format => {
                    let rows: Vec<Vec<String>> = m
                        .files
                        .iter()
                        .map(|f| {
                            vec![
                                f.path.clone(),
                                f.node.clone(),
                                f.rows.to_string(),
                                f.bytes.to_string(),
                                f.events_seen.to_string(),
                                f.events_dropped.to_string(),
                                short_time(&f.first),
                                short_time(&f.last),
                            ]
                        })
                        .collect();
                    let headers = [
                        "FILE", "NODE", "ROWS", "BYTES", "EVENTS", "DROPPED", "FIRST", "LAST",
                    ];
                    if format == OutputFormat::Csv {
                        render::csv(&headers, &rows)?;
                    } else {
                        println!("Bundle:      {}", path.display());
                        println!("Producer:    {}", m.producer);
                        println!("Schema:      {}", m.schema_version);
                        println!("Updated:     {}", m.updated_at);
                        println!("Clusters:    {}", m.clusters.join(", "));
                        println!("Nodes:       {}", m.nodes.join(", "));
                        if let Some(t) = &m.time_range {
                            println!(
                                "Time range:  {} .. {}",
                                short_time(&t.first),
                                short_time(&t.last)
                            );
                        }
                        println!(
                            "Totals:      {} files, {} rows, {} bytes, {} events, {} dropped",
                            m.totals.files,
                            m.totals.rows,
                            m.totals.bytes,
                            m.totals.events_seen,
                            m.totals.events_dropped
                        );
                        if !m.pods.is_empty() {
                            println!(
                                "Pods table:  {} files, {} rows (pods schema {})",
                                m.pods.len(),
                                m.pods.iter().map(|p| p.rows).sum::<u64>(),
                                m.pods_schema_version.as_deref().unwrap_or("?")
                            );
                        }
                        println!("\n{}", render::table(&headers, &rows));
                        if !m.pods.is_empty() {
                            let pods_rows: Vec<Vec<String>> = m
                                .pods
                                .iter()
                                .map(|p| {
                                    vec![
                                        p.path.clone(),
                                        p.node.clone(),
                                        p.rows.to_string(),
                                        p.bytes.to_string(),
                                        p.replaces.len().to_string(),
                                    ]
                                })
                                .collect();
                            println!(
                                "\n{}",
                                render::table(
                                    &["PODS FILE", "NODE", "ROWS", "BYTES", "MERGED"],
                                    &pods_rows
                                )
                            );
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BundleCommand::Verify { path, output } => {
            let source = BundleSource::open(&path)
                .with_context(|| format!("cannot open bundle {}", path.display()))?;
            let mut checks = verify_bundle(source.root())
                .with_context(|| format!("cannot verify bundle {}", path.display()))?;
            // Archive entries that could not be unpacked are problems of the bundle too.
            checks.extend(source.skipped().iter().map(|(entry, why)| FileCheck {
                rel: entry.clone(),
                problem: Some(why.clone()),
            }));
            #[derive(Serialize)]
            struct Check {
                file: String,
                ok: bool,
                problem: Option<String>,
            }
            let checks: Vec<Check> = checks
                .into_iter()
                .map(|c| Check {
                    ok: c.problem.is_none(),
                    file: c.rel,
                    problem: c.problem,
                })
                .collect();
            let bad = checks.iter().filter(|c| !c.ok).count();
            match output {
                OutputFormat::Json => render::json(&checks)?,
                OutputFormat::Yaml => render::yaml(&checks)?,
                format => {
                    let rows: Vec<Vec<String>> = checks
                        .iter()
                        .map(|c| {
                            vec![
                                c.file.clone(),
                                if c.ok { "ok".into() } else { "BAD".into() },
                                c.problem.clone().unwrap_or_default(),
                            ]
                        })
                        .collect();
                    let headers = ["FILE", "STATUS", "PROBLEM"];
                    if format == OutputFormat::Csv {
                        render::csv(&headers, &rows)?;
                    } else {
                        println!("{}", render::table(&headers, &rows));
                        println!("\n{} files checked, {bad} with problems", checks.len());
                    }
                }
            }
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
