//! `kubectl karmor pull`: the collectors' segments → a bundle → the local store.
//!
//! The work is in the library ([`kubectl_karmor::cluster`] finds and reaches the collectors,
//! [`kubectl_karmor::pull::execute`] fetches and merges, as the analysis commands' automatic
//! pull does); this module turns arguments into a [`PullRequest`], runs it with progress bars
//! and prints the per-node report.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use karmor_analyzer::timespec::parse_duration;
use karmor_proto::{ListFilter, DEFAULT_PORT};
use kubectl_karmor::cache;
use kubectl_karmor::cluster::discover::CollectorSelector;
use kubectl_karmor::cluster::kubeconfig::KubeTarget;
use kubectl_karmor::pull::PullRequest;

use crate::cli::{OutputFormat, PullArgs};
use crate::progress;
use crate::render;

/// The request `pull` arguments describe.
fn request(args: &PullArgs) -> Result<PullRequest> {
    let since_ns = match &args.since {
        Some(text) => {
            let back = parse_duration(text).with_context(|| format!("--since {text}"))?;
            Some(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX) - back)
        }
        None => None,
    };
    for e in &args.endpoints {
        let port_ok = e
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            bail!("--endpoint {e}: expected HOST:PORT, e.g. 10.0.0.5:{DEFAULT_PORT}");
        }
    }
    Ok(PullRequest {
        target: KubeTarget {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            connect_timeout: Some(Duration::from_secs(10)),
        },
        selector: CollectorSelector {
            namespace: args.collector_namespace.clone(),
            label_selector: args.selector.clone(),
            port: args.port,
            default_port: DEFAULT_PORT,
        },
        endpoints: args.endpoints.clone(),
        filter: ListFilter {
            since_ns,
            until_ns: None,
            namespaces: if args.all_namespaces {
                Vec::new()
            } else {
                args.namespaces.clone()
            },
        },
        bundle_dir: args
            .output_bundle
            .clone()
            .unwrap_or_else(cache::default_pull_bundle_path),
        store: if args.no_merge {
            None
        } else {
            Some(args.store.clone().unwrap_or_else(cache::default_store_path))
        },
        parallel: usize::from(args.parallel),
    })
}

/// The PODS cell: pods table files fetched now (the node's new snapshot), `-` when none.
fn pods_cell(n: &kubectl_karmor::pull::NodeOutcome) -> String {
    match (n.pods_new, n.pods_failed) {
        (0, 0) => "-".to_string(),
        (new, 0) => new.to_string(),
        (new, failed) => format!("{new} ({failed} failed)"),
    }
}

/// Runs the command.
pub fn run(args: PullArgs) -> Result<ExitCode> {
    let request = request(&args)?;
    let summary = progress::pull(&request)?;
    let headers = [
        "NODE", "SOURCE", "NEW", "SKIPPED", "REPLACED", "FAILED", "BYTES", "ROWS", "PODS", "ERROR",
    ];
    let rows: Vec<Vec<String>> = summary
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.node.clone(),
                n.source.clone(),
                n.new.to_string(),
                n.skipped.to_string(),
                n.replaced.to_string(),
                n.failed.to_string(),
                n.bytes.to_string(),
                n.rows.to_string(),
                pods_cell(n),
                n.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    match args.output {
        OutputFormat::Table | OutputFormat::Wide => {
            print!("{}", render::table(&headers, &rows));
            println!();
            match summary.replaced() {
                (0, _) => println!("bundle: {}", summary.bundle),
                (replaced, by) => println!(
                    "bundle: {} (replaced {replaced} segment{} by {by} compacted file{})",
                    summary.bundle,
                    if replaced == 1 { "" } else { "s" },
                    if by == 1 { "" } else { "s" },
                ),
            }
            match &summary.store {
                Some(store) if summary.merged_pods_files > 0 => println!(
                    "store:  {store} ({} new segments, {} rows merged; {} pods table file{})",
                    summary.merged_segments,
                    summary.merged_rows,
                    summary.merged_pods_files,
                    if summary.merged_pods_files == 1 {
                        ""
                    } else {
                        "s"
                    },
                ),
                Some(store) => println!(
                    "store:  {store} ({} new segments, {} rows merged)",
                    summary.merged_segments, summary.merged_rows
                ),
                None if request.store.is_some() => println!("store:  nothing to merge"),
                None => {}
            }
        }
        OutputFormat::Json => render::json(&summary)?,
        OutputFormat::Yaml => render::yaml(&summary)?,
        OutputFormat::Csv => render::csv(&headers, &rows)?,
    }
    for problem in &summary.merge_problems {
        eprintln!("warning: not merged: {problem}");
    }
    let failed = summary.failed_nodes();
    if failed > 0 {
        eprintln!(
            "warning: {failed} of {} nodes failed in whole or in part (see ERROR); the others landed",
            summary.nodes.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
