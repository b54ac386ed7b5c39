//! `kubectl karmor recommend --network`: NetworkPolicy (or CiliumNetworkPolicy) drafts from
//! recorded connections, one per workload, with a summary table and an optional report.

use std::process::ExitCode;

use anyhow::{bail, Result};
use karmor_analyzer::network::draft::{yaml, NetworkDraft, NetworkFormat};
use karmor_analyzer::network::report::markdown;
use karmor_analyzer::network::{recommend_network, NetworkRecommendation};
use serde::Serialize;

use crate::cli::{NetworkFormatArg, OutputFormat, RecommendArgs};
use crate::data;
use crate::render;

/// The draft's file name: `<namespace>_<kind>_<name>.netpol.yaml` (`.cnp.yaml` for Cilium).
pub fn network_file_name(d: &NetworkDraft, format: NetworkFormat) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    let ext = match format {
        NetworkFormat::Kubernetes => "netpol",
        NetworkFormat::Cilium => "cnp",
    };
    format!(
        "{}_{}_{}.{ext}.yaml",
        clean(&d.workload.namespace),
        clean(&d.workload.kind),
        clean(&d.workload.name)
    )
}

/// One summary row.
#[derive(Debug, Serialize)]
struct Row {
    workload: String,
    policy: String,
    ingress_rules: usize,
    egress_rules: usize,
    peers: String,
    warnings: usize,
}

const HEADERS: &[&str] = &[
    "WORKLOAD", "POLICY", "INGRESS", "EGRESS", "PEERS", "WARNINGS",
];

fn summary(rec: &NetworkRecommendation) -> Vec<Row> {
    rec.drafts
        .iter()
        .map(|d| {
            let mut peers: Vec<String> = d
                .ingress
                .iter()
                .chain(&d.egress)
                .flat_map(|r| r.seen.iter().cloned())
                .collect();
            peers.sort();
            peers.dedup();
            Row {
                workload: d.workload.to_string(),
                policy: match &d.skipped {
                    Some(why) => format!("none: {why}"),
                    None => d.policy_name(),
                },
                ingress_rules: d.ingress.len(),
                egress_rules: d.egress.len(),
                peers: peers.len().to_string(),
                warnings: d.warnings.len(),
            }
        })
        .collect()
}

fn rows(summary: &[Row]) -> Vec<Vec<String>> {
    summary
        .iter()
        .map(|r| {
            vec![
                r.workload.clone(),
                r.policy.clone(),
                r.ingress_rules.to_string(),
                r.egress_rules.to_string(),
                r.peers.clone(),
                r.warnings.to_string(),
            ]
        })
        .collect()
}

/// Runs `recommend --network`.
pub fn run(args: RecommendArgs) -> Result<ExitCode> {
    let format = match args.network_format {
        Some(NetworkFormatArg::Cilium) => NetworkFormat::Cilium,
        _ => NetworkFormat::Kubernetes,
    };
    let opts = super::recommend::build_options(&args)?;
    let store = data::load(&args.data)?;
    let rec = recommend_network(&store, &opts.scope)?;
    if rec.drafts.is_empty() {
        bail!("No recorded connection of a pod in the selected scope (network drafts need TCP, UDP or SCTP connects or accepts).");
    }
    let mut written = Vec::new();
    let mut stream = Vec::new();
    for d in &rec.drafts {
        let Some(text) = yaml(d, format) else {
            continue;
        };
        match &args.out {
            Some(dir) => written.push(super::recommend::write_draft(
                dir,
                &network_file_name(d, format),
                &text,
            )?),
            None => stream.push(text),
        }
    }
    if let Some(report) = &args.report {
        super::recommend::write_report(report, &markdown(&rec))?;
    }
    let table = summary(&rec);
    let to_stderr = args.out.is_none();
    if to_stderr {
        print!("{}", stream.join("---\n"));
        eprintln!("{}", render::table(HEADERS, &rows(&table)));
    } else {
        match args.output {
            OutputFormat::Json => render::json(&table)?,
            OutputFormat::Yaml => render::yaml(&table)?,
            OutputFormat::Csv => render::csv(HEADERS, &rows(&table))?,
            OutputFormat::Table | OutputFormat::Wide => {
                println!("{}", render::table(HEADERS, &rows(&table)));
                eprintln!(
                    "Wrote {} file(s) to {}.",
                    written.len(),
                    args.out
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                );
            }
        }
    }
    for d in &rec.drafts {
        for w in &d.warnings {
            eprintln!("warning: {}: {w}", d.workload);
        }
    }
    Ok(ExitCode::SUCCESS)
}
