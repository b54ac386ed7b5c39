//! `kubectl karmor recommend`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use karmor_analyzer::observe::namespaces;
use karmor_analyzer::policy::Action;
use karmor_analyzer::recommend::report::{file_name, markdown, summary, workload_yaml, SummaryRow};
use karmor_analyzer::recommend::{
    recommend, HostSelect, Include, Library, RecommendOptions, Scope as RecScope, WorkloadSelect,
};
use kubectl_karmor::resource::{Resource, Target};

use crate::cli::{OutputFormat, RecommendAction, RecommendArgs, SyscallRulesArg};
use crate::data;
use crate::render;
use crate::scope::Scope;

/// The workloads and hosts a resource target selects, and which rows count (shared by
/// `recommend`, `coverage` and `diff`). `command` names the command in errors.
pub fn workload_scope(
    command: &str,
    resource: &str,
    name: Option<&str>,
    given: &Scope,
) -> Result<RecScope> {
    let target = Target::parse(resource, name)?;
    let mut scope = RecScope {
        since_ns: given.since_ns,
        until_ns: given.until_ns,
        filter: given.filter.clone(),
        ..RecScope::default()
    };
    let name = target.name;
    match target.resource {
        Resource::Node => scope.hosts = Some(HostSelect { node: name }),
        Resource::Container => bail!(
            "{command} works per workload or node, not per container: use workloads, deployments, statefulsets, daemonsets, jobs, cronjobs, replicasets, pods, nodes or namespaces"
        ),
        Resource::Namespace => {
            // A namespace's workloads: `recommend ns/shop` is `recommend workloads -n shop`.
            let namespace = match (name, given.one_namespace(command, true)?) {
                (Some(n), Some(ns)) if !given.namespaces.is_empty() && n != ns => {
                    bail!("namespace {n:?} and -n {ns} disagree")
                }
                (Some(n), _) => Some(n),
                (None, ns) => ns,
            };
            scope.workloads = Some(WorkloadSelect {
                namespace,
                kind: None,
                name: None,
            });
        }
        resource => {
            let kind = resource.owner_kind();
            let namespace = given.one_namespace(command, true)?;
            if given.all_namespaces && kind.is_none() && name.is_none() {
                scope.hosts = Some(HostSelect::default());
            }
            scope.workloads = Some(WorkloadSelect {
                namespace,
                kind: kind.map(String::from),
                name,
            });
        }
    }
    Ok(scope)
}

/// Builds the analyzer options from the arguments (no I/O except reading the library).
pub fn build_options(args: &RecommendArgs) -> Result<RecommendOptions> {
    let given = Scope::new(&args.scope)?;
    let scope = workload_scope("recommend", &args.resource, args.name.as_deref(), &given)?;
    let mut opts = RecommendOptions::new(scope);
    opts.force = args.force;
    opts.syscall_rules = args.syscall_rules == SyscallRulesArg::Audit;
    for q in &args.quiet {
        opts.stability.apply_arg(q)?;
    }
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
    opts.stability.generalise = opts.generalise.clone();
    if let Some(dir) = &args.hardening {
        let dir = match dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("KARMOR_POLICIES")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("policies")),
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
    "STABILITY",
    "POLICY",
    "PROCESS",
    "FILE",
    "NETWORK",
    "CAPS",
    "SYSCALLS",
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
                r.stability.clone(),
                r.policy.clone(),
                r.process.to_string(),
                r.file.to_string(),
                r.network.to_string(),
                r.capabilities.to_string(),
                r.syscalls.to_string(),
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
    if args.network || args.network_format.is_some() {
        return super::recommend_network::run(args);
    }
    if args.seccomp {
        return super::recommend_seccomp::run(args);
    }
    let opts = build_options(&args)?;
    let target = Target::parse(&args.resource, args.name.as_deref())?;
    let prune = data::Prune::of(&Scope::new(&args.scope)?, Some(&target));
    let store = data::load_pruned(&args.data, &prune)?;
    let rec = recommend(&store, &opts)?;
    if rec.workloads.is_empty() && rec.unattributed.is_empty() {
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
            Some(dir) => written.push(write_draft(dir, &file_name(&w.draft.workload), &yaml)?),
            None => stream.push(yaml),
        }
    }
    if let Some(report) = &args.report {
        write_report(report, &markdown(&rec))?;
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
    for u in &rec.unattributed {
        eprintln!(
            "warning: unattributed/{}: {} events in {} rows, no policy drafted: {}",
            u.name, u.events, u.rows, u.reason
        );
    }
    let refused: Vec<&String> = rec
        .workloads
        .iter()
        .filter_map(|w| w.refused.as_ref())
        .collect();
    for why in &refused {
        eprintln!("error: {why}");
    }
    // The other workloads' policies are written; the refusal still fails the command.
    Ok(if refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Writes one draft as `dir/name` (creating `dir`) and returns its path.
pub(crate) fn write_draft(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Writes the `--report` Markdown at `path` (creating its directory).
pub(crate) fn write_report(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
