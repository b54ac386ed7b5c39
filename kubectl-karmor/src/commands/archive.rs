//! `kubectl karmor archive`: a bundle (or the cache's pulled bundle) onto S3-compatible object
//! storage. The work is in `karmor-archive` ([`karmor_archive::upload`]); this module resolves
//! the source, runs the upload with a progress bar and prints the report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use karmor_analyzer::bundle_source::BundleSource;
use karmor_analyzer::timespec::parse_duration;
use karmor_archive::upload::{archive_bundle, ArchiveOptions, ArchiveReport};
use karmor_archive::{connect, ArchiveUrl};
use kubectl_karmor::cache;
use serde::Serialize;

use crate::cli::{ArchiveArgs, OutputFormat};
use crate::progress;
use crate::render;

/// The JSON/YAML report.
#[derive(Debug, Serialize)]
struct Report<'a> {
    archive: String,
    source: String,
    cluster: &'a str,
    manifest: &'a str,
    listed: usize,
    too_recent: usize,
    already_archived: usize,
    already_there: usize,
    uploaded: usize,
    uploaded_bytes: u64,
    resumed_parts: usize,
    replaced: usize,
    manifest_written: bool,
    failed: Vec<Failed<'a>>,
    /// The pods table: files the bundle lists, sent now, and archived ones they replaced.
    pods_listed: usize,
    pods_uploaded: usize,
    pods_replaced: usize,
}

#[derive(Debug, Serialize)]
struct Failed<'a> {
    path: &'a str,
    error: &'a str,
}

/// Runs the command.
pub fn run(args: ArchiveArgs) -> Result<ExitCode> {
    let url = ArchiveUrl::parse(&args.to)?;
    let source_path = if args.source == "cache" {
        cache::default_pull_bundle_path()
    } else {
        PathBuf::from(&args.source)
    };
    let source = BundleSource::open(&source_path)
        .with_context(|| format!("cannot read bundle {}", source_path.display()))?;
    let mut opts = ArchiveOptions::new(
        cache::cache_dir().join("archive-uploads"),
        &format!("kubectl-karmor archive {}", env!("CARGO_PKG_VERSION")),
    );
    opts.cluster = args.cluster.clone();
    opts.parallel = usize::from(args.parallel);
    opts.part_size = args.part_size;
    if let Some(text) = &args.older_than {
        let back = parse_duration(text).with_context(|| format!("--older-than {text}"))?;
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        opts.before_ns = Some(now - back);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let remote = connect::connect(&url)?;
        let bar = progress::ArchiveBar::new();
        let report = archive_bundle(&remote, source.root(), &opts, &bar).await;
        bar.finish();
        report
    })?;
    print_report(&args, &url, &source_path, &report)?;
    if !report.failed.is_empty() {
        eprintln!(
            "warning: {} of {} files could not be archived (the others are): run again to retry",
            report.failed.len(),
            report.listed
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(
    args: &ArchiveArgs,
    url: &ArchiveUrl,
    source: &std::path::Path,
    r: &ArchiveReport,
) -> Result<()> {
    let report = Report {
        archive: url.to_string(),
        source: source.display().to_string(),
        cluster: &r.cluster,
        manifest: &r.manifest,
        listed: r.listed,
        too_recent: r.too_recent,
        already_archived: r.already_archived,
        already_there: r.already_there,
        uploaded: r.uploaded,
        uploaded_bytes: r.uploaded_bytes,
        resumed_parts: r.resumed_parts,
        replaced: r.replaced,
        manifest_written: r.manifest_written,
        pods_listed: r.pods_listed,
        pods_uploaded: r.pods_uploaded,
        pods_replaced: r.pods_replaced,
        failed: r
            .failed
            .iter()
            .map(|(path, error)| Failed { path, error })
            .collect(),
    };
    let headers = [
        "CLUSTER",
        "LISTED",
        "UPLOADED",
        "BYTES",
        "RESUMED-PARTS",
        "ALREADY",
        "TOO-RECENT",
        "REPLACED",
        "PODS",
        "FAILED",
    ];
    let rows = vec![vec![
        r.cluster.clone(),
        r.listed.to_string(),
        r.uploaded.to_string(),
        r.uploaded_bytes.to_string(),
        r.resumed_parts.to_string(),
        (r.already_archived + r.already_there).to_string(),
        r.too_recent.to_string(),
        r.replaced.to_string(),
        r.pods_uploaded.to_string(),
        r.failed.len().to_string(),
    ]];
    match args.output {
        OutputFormat::Table | OutputFormat::Wide => {
            print!("{}", render::table(&headers, &rows));
            println!();
            println!(
                "manifest: {} ({})",
                r.manifest,
                if r.manifest_written {
                    "written"
                } else {
                    "unchanged"
                }
            );
            for (path, error) in &r.failed {
                println!("failed: {path}: {error}");
            }
        }
        OutputFormat::Json => render::json(&report)?,
        OutputFormat::Yaml => render::yaml(&report)?,
        OutputFormat::Csv => render::csv(&headers, &rows)?,
    }
    Ok(())
}
