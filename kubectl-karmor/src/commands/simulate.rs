//! `kubectl karmor simulate -p FILE|DIR`: recorded behaviour replayed through KubeArmor
//! policies; prints what would be allowed, audited and blocked.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use karmor_analyzer::policy::{validate_path, Outcome, Policy};
use karmor_analyzer::recommend::suspicious::mark_held_out;
use karmor_analyzer::simulate::engine::policy_name;
use karmor_analyzer::simulate::{
    simulate, Decision, Posture, Postures, SimEntry, SimOptions, SimReport, Totals,
};
use kubectl_karmor::resource::{Resource, Target};
use serde::Serialize;

use crate::cli::{OutputFormat, SimulateArgs};
use crate::data;
use crate::render::{self, opt, short_time};
use crate::scope::{target_filter, Scope};

/// Parses a posture spec: `audit`, `block`, or per kind `file=block,network=audit,capabilities=block`
/// (kinds left out keep `base`).
pub fn parse_postures(spec: &str, base: Postures) -> Result<Postures> {
    let spec = spec.trim();
    if !spec.contains('=') {
        return Ok(Postures::all(spec.parse::<Posture>()?));
    }
    let mut p = base;
    for part in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((kind, value)) = part.split_once('=') else {
            bail!("bad posture {part:?}: expected KIND=audit|block");
        };
        let value: Posture = value.parse()?;
        match kind.trim().to_ascii_lowercase().as_str() {
            "file" | "process" => p.file = value,
            "network" => p.network = value,
            "capabilities" | "capability" => p.capabilities = value,
            other => bail!(
                "unknown posture kind {other:?}: expected file (also processes), network or capabilities"
            ),
        }
    }
    Ok(p)
}

/// Builds the simulation options from the arguments (no I/O).
pub fn build_options(args: &SimulateArgs) -> Result<SimOptions> {
    let mut opts = SimOptions {
        posture: parse_postures(&args.default_posture, Postures::default())
            .context("--default-posture")?,
        ..SimOptions::default()
    };
    let scope = Scope::new(&args.scope)?;
    let target = args
        .resource
        .as_deref()
        .map(|r| Target::parse(r, args.name.as_deref()))
        .transpose()?;
    if scope.all_namespaces || scope.namespaces.is_empty() {
        // Host behaviour is replayed unless the resource lives in namespaces.
        opts.include_host = !target.as_ref().is_some_and(|t| t.resource.namespaced());
    } else {
        opts.namespaces = scope.namespaces.clone();
        opts.policy_namespace = scope.namespaces.first().cloned();
        opts.include_host = target
            .as_ref()
            .is_some_and(|t| t.resource == Resource::Node);
    }
    for item in &args.namespace_postures {
        let Some((ns, spec)) = item.split_once(':') else {
            bail!("--namespace-posture {item:?}: expected NAMESPACE:audit|block or NAMESPACE:file=block,...");
        };
        let p = parse_postures(spec, opts.posture)
            .with_context(|| format!("--namespace-posture {item:?}"))?;
        opts.namespace_postures.insert(ns.trim().to_string(), p);
    }
    for item in &args.node_labels {
        let parsed = item
            .split_once(':')
            .and_then(|(node, kv)| kv.split_once('=').map(|(k, v)| (node, k, v)));
        let Some((node, k, v)) = parsed else {
            bail!("--node-label {item:?}: expected NODE:KEY=VALUE");
        };
        opts.node_labels
            .entry(node.to_string())
            .or_default()
            .insert(k.to_string(), v.to_string());
    }
    opts.since_ns = scope.since_ns;
    opts.until_ns = scope.until_ns;
    opts.filter = scope.filter_and(target.as_ref().and_then(target_filter));
    Ok(opts)
}

/// Policies loaded from the `-p` paths.
pub struct Loaded {
    /// The valid policies.
    pub policies: Vec<Policy>,
    /// Problems of invalid documents (file, document, field), left out.
    pub invalid: Vec<String>,
    /// Validator warnings about the valid documents.
    pub warnings: Vec<String>,
}

/// Loads every valid policy under the paths. Invalid documents are collected (file, document,
/// field) and left out; the others are still used. Fails only when no policy is valid.
pub fn load_policies(paths: &[PathBuf]) -> Result<Loaded> {
    load_policies_beside(paths, false)
}

/// [`load_policies`]; with `network`, network policies were found too, so no KubeArmor
/// policy is not an error.
pub fn load_policies_beside(paths: &[PathBuf], network: bool) -> Result<Loaded> {
    let mut loaded = Loaded {
        policies: Vec::new(),
        invalid: Vec::new(),
        warnings: Vec::new(),
    };
    for path in paths {
        for report in validate_path(path) {
            match report.outcome {
                Outcome::Invalid => loaded.invalid.extend(report.error_messages()),
                Outcome::Valid => {
                    loaded.warnings.extend(report.warning_messages());
                    if let Some(p) = report.policy {
                        loaded.policies.push(p);
                    }
                }
                Outcome::Skipped => {}
            }
        }
    }
    if loaded.policies.is_empty() && !network {
        let mut msg = String::from("no valid KubeArmor policy to simulate");
        for w in &loaded.invalid {
            msg.push_str("\n  ");
            msg.push_str(w);
        }
        bail!(msg);
    }
    Ok(loaded)
}

/// The JSON/YAML document.
#[derive(Debug, Serialize)]
struct Output<'a> {
    totals: Totals,
    entries: Vec<&'a SimEntry>,
    policies: &'a [String],
    unmatched_policies: &'a [String],
    not_simulated: &'a [String],
    invalid_documents: &'a [String],
    warnings: &'a [String],
}

/// Runs the command.
pub fn run(args: SimulateArgs) -> Result<ExitCode> {
    let opts = build_options(&args)?;
    let network = super::simulate_network::load(&args.policies)?;
    let Loaded {
        policies,
        invalid,
        warnings,
    } = load_policies_beside(&args.policies, !network.policies.is_empty())?;
    if policies.is_empty() {
        return super::simulate_network::run(&args, network, &invalid);
    }
    if !network.policies.is_empty() {
        eprintln!(
            "note: {} network policies given with KubeArmor policies: simulate them in a run of their own",
            network.policies.len()
        );
    }
    let only: Vec<Decision> = args
        .only
        .iter()
        .map(|d| d.parse())
        .collect::<Result<_, _>>()?;

    let structured = matches!(args.output, OutputFormat::Json | OutputFormat::Yaml);
    if !structured {
        for m in &invalid {
            eprintln!("warning: {m} (left out; simulating with the other policies)");
        }
        for w in &warnings {
            eprintln!("warning: {w}");
        }
    }
    let target = args
        .resource
        .as_deref()
        .map(|r| Target::parse(r, args.name.as_deref()))
        .transpose()?;
    let prune = data::Prune::of(&Scope::new(&args.scope)?, target.as_ref());
    let store = data::load_pruned(&args.data, &prune)?;
    let mut report = simulate(&store, &policies, &opts)?;
    // Behaviour that `recommend` held out of the drafts as suspicious (their annotation).
    mark_held_out(&mut report.entries, &policies);
    let default_ns = opts.policy_namespace.as_deref().unwrap_or("default");
    let unmatched: Vec<String> = policies
        .iter()
        .map(|p| policy_name(p, default_ns))
        .filter(|name| !report.policies.contains(name))
        .collect();
    let entries: Vec<&SimEntry> = report
        .entries
        .iter()
        .filter(|e| only.is_empty() || only.contains(&e.decision))
        .collect();
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let doc = Output {
                totals: report.totals(),
                entries,
                policies: &report.policies,
                unmatched_policies: &unmatched,
                not_simulated: &report.not_simulated,
                invalid_documents: &invalid,
                warnings: &warnings,
            };
            if args.output == OutputFormat::Json {
                render::json(&doc)?;
            } else {
                render::yaml(&doc)?;
            }
        }
        OutputFormat::Csv => render::csv(CSV_HEADERS, &csv_rows(&entries))?,
        OutputFormat::Table => {
            println!("{}", render::table(TABLE_HEADERS, &table_rows(&entries)));
            print_footer(&report, &unmatched);
        }
        OutputFormat::Wide => {
            println!("{}", render::table(WIDE_HEADERS, &wide_rows(&entries)));
            print_footer(&report, &unmatched);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_footer(report: &SimReport, unmatched: &[String]) {
    let t = report.totals();
    println!(
        "\nTotals: {} events allowed ({} behaviours), {} audited ({}), {} blocked ({}), \
         {} unaffected ({})",
        t.allowed,
        t.allowed_entries,
        t.audited,
        t.audited_entries,
        t.blocked,
        t.blocked_entries,
        t.unaffected,
        t.unaffected_entries
    );
    if t.unaffected_entries > 0 {
        println!(
            "Unaffected: failed anyway (a path that did not resolve: No such file or directory, \
             Not a directory); KubeArmor's hooks run only on resolved paths, so no policy \
             changes these."
        );
    }
    let held: Vec<&SimEntry> = report
        .entries
        .iter()
        .filter(|e| e.decision != Decision::Allowed)
        .filter(|e| e.note.as_deref().is_some_and(|n| n.starts_with("held out")))
        .collect();
    if !held.is_empty() {
        println!(
            "Held out by recommend as suspicious (the drafts' karmor.io/held-out annotation): {} of these behaviours:",
            held.len()
        );
        for e in held {
            println!(
                "  {} {} {} {} ({})",
                e.workload,
                e.op.as_str(),
                e.process.as_deref().unwrap_or("-"),
                e.resource,
                e.decision.as_str()
            );
        }
    }
    for n in &report.not_simulated {
        eprintln!("note: {n}");
    }
    for name in unmatched {
        eprintln!(
            "note: policy {name} selected no recorded behaviour (check its selector and namespace)"
        );
    }
}

const TABLE_HEADERS: &[&str] = &[
    "NAMESPACE",
    "WORKLOAD",
    "OP",
    "SOURCE",
    "RESOURCE",
    "ACCESS",
    "DECISION",
    "POLICY",
    "COUNT",
];

const WIDE_HEADERS: &[&str] = &[
    "NAMESPACE",
    "WORKLOAD",
    "NODE",
    "OP",
    "PARENT",
    "PROCESS",
    "UID",
    "RESOURCE",
    "ACCESS",
    "RESULT",
    "DECISION",
    "POLICY",
    "RULE",
    "COUNT",
    "LAST SEEN",
    "NOTE",
];

const CSV_HEADERS: &[&str] = &[
    "namespace",
    "workload",
    "host",
    "node",
    "op",
    "parent",
    "process",
    "uid",
    "resource",
    "access",
    "result",
    "decision",
    "policy",
    "rule",
    "note",
    "count",
    "rows",
    "first_seen",
    "last_seen",
];

/// The acting executable: the parent for process rows (it executes the resource).
fn source(e: &SimEntry) -> &Option<String> {
    if e.op == karmor_contract::Op::Process {
        &e.parent
    } else {
        &e.process
    }
}

fn ns(e: &SimEntry) -> String {
    e.namespace.clone().unwrap_or_else(|| "(host)".into())
}

/// One table line per (namespace, workload, op, source, resource, access, decision, policy),
/// replicas and nodes merged; blocked first, then audited, allowed, and unaffected (failed
/// anyway) last. The source is the
/// acting executable, as in KubeArmor's alerts: the parent for an exec.
fn table_rows(entries: &[&SimEntry]) -> Vec<Vec<String>> {
    type Key = (
        bool,
        String,
        String,
        std::cmp::Reverse<Decision>,
        String,
        String,
        String,
        String,
        String,
    );
    let mut grouped: BTreeMap<Key, u64> = BTreeMap::new();
    for e in entries {
        let key = (
            e.host,
            ns(e),
            e.workload.clone(),
            std::cmp::Reverse(e.decision),
            e.op.to_string(),
            opt(source(e)),
            e.resource.clone(),
            opt(&e.access),
            opt(&e.policy),
        );
        *grouped.entry(key).or_default() += e.count;
    }
    grouped
        .into_iter()
        .map(|((_, ns, w, d, op, p, r, a, pol), count)| {
            vec![
                ns,
                w,
                op,
                p,
                r,
                a,
                d.0.as_str().to_string(),
                pol,
                count.to_string(),
            ]
        })
        .collect()
}

fn wide_rows(entries: &[&SimEntry]) -> Vec<Vec<String>> {
    entries
        .iter()
        .map(|e| {
            vec![
                ns(e),
                e.workload.clone(),
                e.node.clone(),
                e.op.to_string(),
                opt(&e.parent),
                opt(&e.process),
                e.uid.map_or_else(|| "-".into(), |u| u.to_string()),
                e.resource.clone(),
                opt(&e.access),
                opt(&e.result),
                e.decision.as_str().to_string(),
                opt(&e.policy),
                opt(&e.rule),
                e.count.to_string(),
                short_time(&e.last_seen),
                opt(&e.note),
            ]
        })
        .collect()
}

fn csv_rows(entries: &[&SimEntry]) -> Vec<Vec<String>> {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    entries
        .iter()
        .map(|e| {
            vec![
                s(&e.namespace),
                e.workload.clone(),
                e.host.to_string(),
                e.node.clone(),
                e.op.to_string(),
                s(&e.parent),
                s(&e.process),
                e.uid.map(|u| u.to_string()).unwrap_or_default(),
                e.resource.clone(),
                s(&e.access),
                s(&e.result),
                e.decision.as_str().to_string(),
                s(&e.policy),
                s(&e.rule),
                s(&e.note),
                e.count.to_string(),
                e.rows.to_string(),
                e.first_seen.clone(),
                e.last_seen.clone(),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postures_parse_globally_and_per_kind() {
        assert_eq!(
            parse_postures("block", Postures::default()).unwrap(),
            Postures::all(Posture::Block)
        );
        let p = parse_postures("network=block", Postures::default()).unwrap();
        assert_eq!(p.network, Posture::Block);
        assert_eq!(p.file, Posture::Audit);
        assert!(parse_postures("files=block", Postures::default()).is_err());
        assert!(parse_postures("deny-all", Postures::default()).is_err());
    }
}
