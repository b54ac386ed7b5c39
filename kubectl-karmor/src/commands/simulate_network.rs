//! `kubectl karmor simulate -p FILE|DIR` with NetworkPolicy or CiliumNetworkPolicy documents:
//! recorded connections replayed with Kubernetes' semantics, per workload, with the deciding
//! policy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use karmor_analyzer::network::simulate::NamespaceLabels;
use karmor_analyzer::network::{
    parse_policies, simulate_network_with, NetDecision, NetPolicy, NetVerdict,
};
use karmor_analyzer::policy::{validate_path, Outcome};
use serde::Serialize;

use crate::cli::{OutputFormat, SimulateArgs};
use crate::data;
use crate::render::{self, short_time};
use crate::scope::Scope;

/// Network policies found under the `-p` paths.
pub struct NetworkLoaded {
    /// The valid ones.
    pub policies: Vec<NetPolicy>,
}

/// Reads every valid NetworkPolicy and CiliumNetworkPolicy document under `paths` (invalid
/// ones are reported by the KubeArmor loader, which validates every kind).
pub fn load(paths: &[PathBuf]) -> Result<NetworkLoaded> {
    let mut files = BTreeSet::new();
    for path in paths {
        for r in validate_path(path) {
            let network = matches!(
                r.kind.as_deref(),
                Some("NetworkPolicy" | "CiliumNetworkPolicy")
            );
            if network && r.outcome == Outcome::Valid {
                files.insert(r.file.clone());
            }
        }
    }
    let mut policies = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(&f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        // Documents that failed validation are not parsed again: a file is read whole, so
        // keep only the policies whose name validation accepted.
        match parse_policies(&text, &f) {
            Ok(ps) => policies.extend(ps),
            Err(e) => eprintln!("warning: {e} (left out)"),
        }
    }
    Ok(NetworkLoaded { policies })
}

fn parse_only(only: &[String]) -> Result<Vec<NetDecision>> {
    only.iter()
        .map(|o| match o.trim().to_ascii_lowercase().as_str() {
            "allowed" => Ok(NetDecision::Allowed),
            "dropped" | "blocked" => Ok(NetDecision::Dropped),
            "not-isolated" => Ok(NetDecision::NotIsolated),
            "unaffected" => Ok(NetDecision::Unaffected),
            "undecided" => Ok(NetDecision::Undecided),
            other => bail!(
                "--only {other:?}: for network policies use allowed, dropped, not-isolated, unaffected or undecided"
            ),
        })
        .collect()
}

/// Totals per decision: (connection groups, events).
#[derive(Debug, Default, Serialize)]
struct Totals {
    allowed: (usize, u64),
    dropped: (usize, u64),
    not_isolated: (usize, u64),
    unaffected: (usize, u64),
    /// Named ports the pods table cannot resolve.
    undecided: (usize, u64),
}

#[derive(Debug, Serialize)]
struct Output<'a> {
    totals: Totals,
    per_workload: BTreeMap<String, BTreeMap<&'static str, u64>>,
    connections: Vec<&'a NetVerdict>,
    policies: Vec<String>,
    invalid_documents: &'a [String],
}

const HEADERS: &[&str] = &[
    "NAMESPACE",
    "WORKLOAD",
    "DIRECTION",
    "PEER",
    "PORT",
    "DECISION",
    "POLICY",
    "COUNT",
];

const WIDE_HEADERS: &[&str] = &[
    "NAMESPACE",
    "WORKLOAD",
    "POD",
    "NODE",
    "DIRECTION",
    "ADDRESS",
    "PEER",
    "PORT",
    "DECISION",
    "POLICY",
    "REASON",
    "COUNT",
    "LAST SEEN",
];

fn row(v: &NetVerdict, wide: bool) -> Vec<String> {
    let f = &v.flow;
    let policy = if v.policies.is_empty() {
        "-".to_string()
    } else {
        v.policies.join(",")
    };
    if wide {
        vec![
            f.workload.namespace.clone(),
            format!("{}/{}", f.workload.kind, f.workload.name),
            f.pod.clone(),
            f.node.clone(),
            f.direction.as_str().to_string(),
            f.remote_addr.clone(),
            f.peer.describe(),
            f.port_text(),
            v.decision.as_str().to_string(),
            policy,
            v.reason.clone(),
            f.events.to_string(),
            short_time(&karmor_contract::bundle::format_ts(f.last_ns)),
        ]
    } else {
        vec![
            f.workload.namespace.clone(),
            format!("{}/{}", f.workload.kind, f.workload.name),
            f.direction.as_str().to_string(),
            f.peer.describe(),
            f.port_text(),
            v.decision.as_str().to_string(),
            policy,
            f.events.to_string(),
        ]
    }
}

/// Runs the network simulation and prints it.
pub fn run(args: &SimulateArgs, loaded: NetworkLoaded, invalid: &[String]) -> Result<ExitCode> {
    let only = parse_only(&args.only)?;
    let structured = matches!(args.output, OutputFormat::Json | OutputFormat::Yaml);
    if !structured {
        for m in invalid {
            eprintln!("warning: {m} (left out; simulating with the other policies)");
        }
    }
    let given = Scope::new(&args.scope)?;
    let scope = super::recommend::workload_scope(
        "simulate",
        args.resource.as_deref().unwrap_or("workloads"),
        args.name.as_deref(),
        &given,
    )?;
    let mut namespaces = NamespaceLabels::new();
    for item in &args.namespace_labels {
        let parsed = item
            .split_once(':')
            .and_then(|(ns, kv)| kv.split_once('=').map(|(k, v)| (ns, k, v)));
        let Some((ns, k, v)) = parsed else {
            bail!("--namespace-label {item:?}: expected NAMESPACE:KEY=VALUE");
        };
        namespaces
            .entry(ns.to_string())
            .or_default()
            .insert(k.to_string(), v.to_string());
    }
    let store = data::load(&args.data)?;
    let verdicts = simulate_network_with(&store, &scope, &loaded.policies, &namespaces)?;
    let mut totals = Totals::default();
    let mut per_workload: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
    for v in &verdicts {
        let t = match v.decision {
            NetDecision::Allowed => &mut totals.allowed,
            NetDecision::Dropped => &mut totals.dropped,
            NetDecision::NotIsolated => &mut totals.not_isolated,
            NetDecision::Unaffected => &mut totals.unaffected,
            NetDecision::Undecided => &mut totals.undecided,
        };
        t.0 += 1;
        t.1 += v.flow.events;
        *per_workload
            .entry(v.flow.workload.to_string())
            .or_default()
            .entry(v.decision.as_str())
            .or_default() += v.flow.events;
    }
    let shown: Vec<&NetVerdict> = verdicts
        .iter()
        .filter(|v| only.is_empty() || only.contains(&v.decision))
        .collect();
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let doc = Output {
                totals,
                per_workload,
                connections: shown,
                policies: loaded.policies.iter().map(|p| p.id()).collect(),
                invalid_documents: invalid,
            };
            if args.output == OutputFormat::Json {
                render::json(&doc)?;
            } else {
                render::yaml(&doc)?;
            }
        }
        OutputFormat::Csv => {
            let rows: Vec<Vec<String>> = shown.iter().map(|v| row(v, true)).collect();
            render::csv(WIDE_HEADERS, &rows)?;
        }
        OutputFormat::Table | OutputFormat::Wide => {
            let wide = args.output == OutputFormat::Wide;
            let rows: Vec<Vec<String>> = shown.iter().map(|v| row(v, wide)).collect();
            println!(
                "{}",
                render::table(if wide { WIDE_HEADERS } else { HEADERS }, &rows)
            );
            println!(
                "\nTotals: {} connection events allowed ({} groups), {} dropped ({}), {} not isolated ({}), {} unaffected ({})",
                totals.allowed.1,
                totals.allowed.0,
                totals.dropped.1,
                totals.dropped.0,
                totals.not_isolated.1,
                totals.not_isolated.0,
                totals.unaffected.1,
                totals.unaffected.0
            );
            if totals.undecided.0 > 0 {
                println!(
                    "{} connection events ({} groups) undecided: a named port of a policy, and the destination pod's container ports are not in the pods table",
                    totals.undecided.1, totals.undecided.0
                );
            }
            for (w, by) in &per_workload {
                let parts: Vec<String> = by.iter().map(|(d, n)| format!("{n} {d}")).collect();
                println!("  {w}: {}", parts.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
