//! `kubectl karmor recommend`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use karmor_analyzer::filter;
use karmor_analyzer::observe::namespaces;
use karmor_analyzer::policy::Action;
use karmor_analyzer::recommend::report::{file_name, markdown, summary, workload_yaml, SummaryRow};
use karmor_analyzer::recommend::{
    parse_instant, recommend, HostSelect, Include, Library, RecommendOptions, Scope, WorkloadSelect,
};

use crate::cli::{OutputFormat, RecommendAction, RecommendArgs};
use crate::data;
use crate::render;

/// The owner kind a resource word selects (`None` = every kind), or `Node` for hosts.
fn kind_of(resource: &str) -> Result<Option<&'static str>> {
    Ok(match resource.to_ascii_lowercase().as_str() {
        "workload" | "workloads" => None,
        "deployment" | "deployments" | "deploy" => Some("Deployment"),
        "statefulset" | "statefulsets" | "sts" => Some("StatefulSet"),
        "daemonset" | "daemonsets" | "ds" => Some("DaemonSet"),
        "job" | "jobs" => Some("Job"),
        "cronjob" | "cronjobs" | "cj" => Some("CronJob"),
        "pod" | "pods" | "po" => Some("Pod"),
        "node" | "nodes" | "no" => Some("Node"),
        other => bail!(
            "unknown resource type {other:?}: expected workloads, deployments, statefulsets, daemonsets, jobs, cronjobs, pods or nodes"
        ),
    })
}

/// Builds the analyzer options from the arguments (no I/O except reading the library).
pub fn build_options(args: &RecommendArgs) -> Result<RecommendOptions> {
    let (resource, name) = match args.resource.split_once('/') {
        Some((r, n)) => {
            if args.name.is_some() {
                bail!("give the name either as TYPE/NAME or as a second argument, not both");
            }
            (r.to_string(), Some(n.to_string()))
        }
        None => (args.resource.clone(), args.name.clone()),
    };
    let kind = kind_of(&resource)?;
    let mut scope = Scope::default();
    if kind == Some("Node") {
        scope.hosts = Some(HostSelect { node: name });
    } else {
        let namespace = match (&args.namespace, args.all_namespaces) {
            (_, true) => None,
            (Some(ns), false) => Some(ns.clone()),
            (None, false) => Some("default".to_string()),
        };
        if args.all_namespaces && kind.is_none() && name.is_none() {
            scope.hosts = Some(HostSelect::default());
        }
        scope.workloads = Some(WorkloadSelect {
            namespace,
            kind: kind.map(String::from),
            name,
        });
    }
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    scope.since_ns = args
        .since
        .as_deref()
        .map(|t| parse_instant(t, now))
        .transpose()?;
    scope.until_ns = args
        .until
        .as_deref()
        .map(|t| parse_instant(t, now))
        .transpose()?;
    if let (Some(a), Some(b)) = (scope.since_ns, scope.until_ns) {
        if a >= b {
            bail!("--since must be before --until");
        }
    }
    if let Some(f) = &args.filter {
        scope.filter = Some(filter::compile(f).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let mut opts = RecommendOptions::new(scope);
    opts.action = match args.action {
        RecommendAction::Allow => Action::Allow,
        RecommendAction::Audit => Action::Audit,
        RecommendAction::Block => Action::Block,
    };
    if let Some(inc) = &args.include {
        opts.include = Include::parse(inc).map_err(|e| anyhow::anyhow!(e))?;
    }
    if let Some(exc) = &args.exclude {
        opts.include.exclude(exc).map_err(|e| anyhow::anyhow!(e))?;
    }
    if args.max_rules == Some(0) {
        bail!("--max-rules must be at least 1");
    }
    opts.max_rules = args.max_rules;
    for t in &args.dir_threshold {
        opts.generalise
            .apply_arg(t)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    if let Some(dir) = &args.hardening {
        let dir = if dir.as_os_str().is_empty() {
            std::env::var_os("KARMOR_POLICIES")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("policies"))
        } else {
            dir.clone()
        };
        opts.library = Some(
            Library::load(&dir)
                .with_context(|| format!("cannot load the hardening library {}", dir.display()))?,
        );
    }
    if opts.action == Action::Block && opts.library.is_none() {
        bail!("--action Block applies to hardening rules: add --hardening");
    }
    Ok(opts)
}

const HEADERS: &[&str] = &[
    "WORKLOAD",
    "POLICY",
    "PROCESS",
    "FILE",
    "NETWORK",
    "CAPS",
    "GENERALISED",
    "NOISE LEFT OUT",
    "HARDENING",
    "WARNINGS",
];

fn rows(summary: &[SummaryRow], wide: bool) -> Vec<Vec<String>> {
    summary
        .iter()
        .map(|r| {
            let mut v = vec![
                r.workload.clone(),
                r.policy.clone(),
                r.process.to_string(),
                r.file.to_string(),
                r.network.to_string(),
                r.capabilities.to_string(),
                r.generalised.to_string(),
                if r.noise_excluded.is_empty() {
                    "-".into()
                } else {
                    r.noise_excluded.clone()
                },
                format!(
                    "{} proposed, {} flagged",
                    r.hardening_proposed, r.hardening_flagged
                ),
                r.warnings.to_string(),
            ];
            if !wide {
                v.truncate(HEADERS.len());
            }
            v
        })
        .collect()
}

fn print_summary(summary: &[SummaryRow], format: OutputFormat, to_stderr: bool) -> Result<()> {
    if to_stderr {
        eprintln!("{}", render::table(HEADERS, &rows(summary, false)));
        return Ok(());
    }
    match format {
        OutputFormat::Json => render::json(&summary),
        OutputFormat::Yaml => render::yaml(&summary),
        OutputFormat::Csv => render::csv(HEADERS, &rows(summary, false)),
        OutputFormat::Table | OutputFormat::Wide => {
            println!(
                "{}",
                render::table(HEADERS, &rows(summary, format == OutputFormat::Wide))
            );
            Ok(())
        }
    }
}

/// Runs the command.
pub fn run(args: RecommendArgs) -> Result<ExitCode> {
    let opts = build_options(&args)?;
    let store = data::load(&args.data)?;
    let rec = recommend(&store, &opts)?;
    if rec.workloads.is_empty() {
        let mut hint = "No behaviour recorded for the selected workloads".to_string();
        if let Some(WorkloadSelect {
            namespace: Some(ns),
            ..
        }) = &opts.scope.workloads
        {
            hint.push_str(&format!(" in namespace {ns}"));
            let known = namespaces(&store)?;
            if !known.is_empty() {
                hint.push_str(&format!(
                    ". Namespaces in the data: {} (use -n NAME or -A)",
                    known.join(", ")
                ));
            }
        }
        bail!("{hint}.");
    }
    let mut written = Vec::new();
    let mut stream = Vec::new();
    for w in &rec.workloads {
        let yaml = workload_yaml(w, &rec)?;
        if yaml.is_empty() {
            continue;
        }
        match &args.out {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let path = dir.join(file_name(&w.draft.workload));
                std::fs::write(&path, yaml)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                written.push(path);
            }
            None => stream.push(yaml),
        }
    }
    if let Some(report) = &args.report {
        if let Some(parent) = report.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(report, markdown(&rec))
            .with_context(|| format!("cannot write {}", report.display()))?;
    }
    let rows = summary(&rec);
    if args.out.is_some() {
        print_summary(&rows, args.output, false)?;
        if matches!(args.output, OutputFormat::Table | OutputFormat::Wide) {
            eprintln!(
                "Wrote {} file(s) to {}.",
                written.len(),
                args.out
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
    } else {
        print!("{}", stream.join("---\n"));
        print_summary(&rows, args.output, true)?;
    }
    for w in &rec.workloads {
        for warning in &w.draft.warnings {
            eprintln!("warning: {}: {warning}", w.draft.workload);
        }
    }
    Ok(ExitCode::SUCCESS)
}
