//! `kubectl karmor observe`.

use std::process::ExitCode;

use anyhow::{bail, Result};
use karmor_analyzer::filter::SqlFilter;
use karmor_analyzer::observe::{
    describe, namespaces, narrow_to, summarize, NamespaceScope, ObserveQuery, ResourceHeader,
    ResourceKind, Seen, Summary, Wide,
};
use karmor_analyzer::Store;
use karmor_contract::Op;
use kubectl_karmor::resource::{Resource, Target};
use serde::Serialize;

use crate::cli::{ObserveArgs, OutputFormat};
use crate::data;
use crate::render::{self, opt, short_time};
use crate::scope::{self, Scope};
use kubectl_karmor::summary_csv::{csv_rows, CSV_HEADERS};

/// The analyzer's grouping for a resource, and the rows it keeps: kinds the analyzer does not
/// group by themselves (statefulsets, daemonsets, …) are workloads of that owner kind.
fn grouping(resource: Resource) -> (ResourceKind, Option<SqlFilter>) {
    match resource {
        Resource::Namespace => (ResourceKind::Namespace, None),
        Resource::Node => (ResourceKind::Node, None),
        Resource::Pod => (ResourceKind::Pod, None),
        Resource::Container => (ResourceKind::Container, None),
        Resource::Workload => (ResourceKind::Workload, None),
        Resource::Deployment => (ResourceKind::Deployment, None),
        other => (
            ResourceKind::Workload,
            other.owner_kind().map(scope::owner_kind_filter),
        ),
    }
}

/// Builds the query from the arguments (no I/O).
pub fn build_query(args: &ObserveArgs) -> Result<ObserveQuery> {
    let target = Target::parse(&args.resource, args.name.as_deref())?;
    let (kind, kind_rows) = grouping(target.resource);
    let scope = Scope::new(&args.scope)?;
    let mut q = ObserveQuery::new(kind);
    q.name = target.name;
    q.namespace = match scope.one_namespace("observe", kind.namespaced())? {
        Some(ns) => NamespaceScope::One(ns),
        None => NamespaceScope::All,
    };
    q.container = args.container.clone();
    for op in &args.operations {
        match op.trim().to_ascii_lowercase().as_str() {
            "process" => q.operations.push(Op::Process),
            "file" => q.operations.push(Op::File),
            "network" => q.operations.push(Op::Network),
            "syscall" | "syscalls" => q.operations.push(Op::Syscall),
            "capability" | "capabilities" | "caps" => q.operations.push(Op::Capability),
            other => bail!(
                "unknown operation {other:?}: expected process, file, network, syscall or capability"
            ),
        }
    }
    q.since_ns = scope.since_ns;
    q.filter = scope.filter_and(
        kind_rows
            .into_iter()
            .chain(scope.until_ns.map(scope::until_filter)),
    );
    q.wide = args.output == OutputFormat::Wide;
    Ok(q)
}

/// Runs the command (`--live`: [`super::live::run`]).
pub fn run(args: ObserveArgs) -> Result<ExitCode> {
    if args.tui {
        kubectl_karmor::tui::check_terminal()?;
    }
    if args.live.live {
        if args.tui {
            let scope = scope_label(&args);
            return super::live::run_tui(args, scope);
        }
        return super::live::run(args);
    }
    let mut q = build_query(&args)?;
    let target = Target::parse(&args.resource, args.name.as_deref())?;
    let prune = data::Prune::of(&Scope::new(&args.scope)?, Some(&target));
    let store = data::load_pruned(&args.data, &prune)?;
    // Data without any namespace (collectors without Kubernetes): kubectl's `default`
    // namespace would hide everything, so every container is shown, as `docker ps` shows them.
    if args.scope.namespaces.is_empty()
        && !args.scope.all_namespaces
        && matches!(q.namespace, NamespaceScope::One(_))
        && namespaces(&store)?.is_empty()
    {
        q.namespace = NamespaceScope::All;
    }
    if args.tui {
        kubectl_karmor::tui::run(store, q, scope_label(&args), None)?;
        return Ok(ExitCode::SUCCESS);
    }
    let empty = render_store(&store, &q, &args)?;
    if empty {
        print_empty_hint(&store, &q, &args)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The command line's scope as the UI's header shows it: `pods -n shop`, `deploy/web -A`.
pub fn scope_label(args: &ObserveArgs) -> String {
    let mut s = args.resource.clone();
    if let Some(name) = &args.name {
        s.push(' ');
        s.push_str(name);
    }
    if args.scope.all_namespaces {
        s.push_str(" -A");
    } else if !args.scope.namespaces.is_empty() {
        s.push_str(&format!(" -n {}", args.scope.namespaces.join(",")));
    }
    if let Some(c) = &args.container {
        s.push_str(&format!(" -c {c}"));
    }
    if let Some(t) = &args.scope.since {
        s.push_str(&format!(" --since {t}"));
    }
    if let Some(t) = &args.scope.until {
        s.push_str(&format!(" --until {t}"));
    }
    if let Some(f) = &args.scope.filter {
        s.push_str(&format!(" -f {f}"));
    }
    s
}

/// Prints what `store` holds for `q` (the summary, or each described resource) in the
/// user's format; returns true when there was nothing.
pub fn render_store(store: &Store, q: &ObserveQuery, args: &ObserveArgs) -> Result<bool> {
    Ok(if args.describe {
        let headers = describe(store, q)?;
        let mut described = Vec::new();
        for h in headers {
            let summary = summarize(store, &narrow_to(q, &h))?;
            described.push(Described { header: h, summary });
        }
        render_described(q, &described, args.output)?;
        described.is_empty()
    } else {
        let summary = summarize(store, q)?;
        render_summary(q, &summary, args.output, true)?;
        summary.is_empty()
    })
}

/// Says on standard error that nothing was recorded (for the resource the user named), and
/// which namespaces have data.
pub fn print_empty_hint(store: &Store, q: &ObserveQuery, args: &ObserveArgs) -> Result<()> {
    let what = match Target::parse(&args.resource, args.name.as_deref()) {
        Ok(t) => t.resource.plural().to_string(),
        Err(_) => format!("{}s", q.kind),
    };
    let mut hint = format!("No behaviour recorded for {what}");
    if let NamespaceScope::One(ns) = &q.namespace {
        hint.push_str(&format!(" in namespace {ns}"));
    }
    let known = namespaces(store)?;
    if !known.is_empty() && matches!(q.namespace, NamespaceScope::One(_)) {
        hint.push_str(&format!(
            ". Namespaces in the data: {} (use -n NAME or -A)",
            known.join(", ")
        ));
    }
    eprintln!("{hint}.");
    Ok(())
}

/// A described resource: its header and its data.
#[derive(Debug, Serialize)]
pub struct Described {
    /// The header.
    pub header: ResourceHeader,
    /// The data.
    #[serde(flatten)]
    pub summary: Summary,
}

fn render_described(q: &ObserveQuery, items: &[Described], format: OutputFormat) -> Result<()> {
    match format {
        OutputFormat::Json => render::json(&items),
        OutputFormat::Yaml => render::yaml(&items),
        OutputFormat::Csv => {
            let rows = items
                .iter()
                .flat_map(|d| csv_rows(&d.summary))
                .collect::<Vec<_>>();
            render::csv(CSV_HEADERS, &rows)
        }
        OutputFormat::Table | OutputFormat::Wide => {
            for (i, d) in items.iter().enumerate() {
                if i > 0 {
                    println!("\n---\n");
                }
                println!("{}", header_text(&d.header));
                render_summary(q, &d.summary, format, false)?;
            }
            Ok(())
        }
    }
}

fn header_text(h: &ResourceHeader) -> String {
    let mut lines = vec![("Name", vec![h.name.clone()])];
    if let Some(ns) = &h.namespace {
        lines.push(("Namespace", vec![ns.clone()]));
    }
    let mut push = |key: &'static str, v: &Vec<String>| {
        if !v.is_empty() {
            lines.push((key, v.clone()));
        }
    };
    push("Workloads", &h.workloads);
    push("Pods", &h.pods);
    push("Containers", &h.containers);
    push("Nodes", &h.nodes);
    push("Labels", &h.labels);
    lines.push((
        "Seen",
        vec![format!(
            "{} .. {} ({} events, {} rows)",
            short_time(&h.first_seen),
            short_time(&h.last_seen),
            h.events,
            h.rows
        )],
    ));
    let mut out = String::new();
    for (key, values) in lines {
        for (i, v) in values.iter().enumerate() {
            let label = if i == 0 {
                format!("{key}:")
            } else {
                String::new()
            };
            out.push_str(&format!("{label:<12}{v}\n"));
        }
    }
    out
}

/// A titled table: title, headers, rows.
type Section = (&'static str, Vec<String>, Vec<Vec<String>>);

/// Renders a summary. `with_resource` adds the resource (and namespace) columns.
fn render_summary(
    q: &ObserveQuery,
    s: &Summary,
    format: OutputFormat,
    with_resource: bool,
) -> Result<()> {
    match format {
        OutputFormat::Json => return render::json(s),
        OutputFormat::Yaml => return render::yaml(s),
        OutputFormat::Csv => return render::csv(CSV_HEADERS, &csv_rows(s)),
        OutputFormat::Table | OutputFormat::Wide => {}
    }
    let wide = format == OutputFormat::Wide;
    let show_ns = with_resource && q.kind.namespaced() && q.namespace == NamespaceScope::All;
    let kind_header = q.kind.to_string().to_ascii_uppercase();
    let lead = |ns: &Option<String>, res: &str| -> Vec<String> {
        let mut v = Vec::new();
        if show_ns {
            v.push(opt(ns));
        }
        if with_resource {
            v.push(res.to_string());
        }
        v
    };
    let heads = |rest: &[&'static str]| -> Vec<String> {
        let mut h = Vec::new();
        if show_ns {
            h.push("NAMESPACE".to_string());
        }
        if with_resource {
            h.push(kind_header.clone());
        }
        h.extend(rest.iter().map(|s| s.to_string()));
        h.extend(["COUNT", "FIRST SEEN", "LAST SEEN"].map(String::from));
        if wide {
            h.extend(["PIDS", "CONTAINERS", "NODES"].map(String::from));
        }
        h
    };
    let tail = |seen: &Seen, w: &Option<Wide>| -> Vec<String> {
        let mut v = vec![
            seen.count.to_string(),
            short_time(&seen.first_seen),
            short_time(&seen.last_seen),
        ];
        if let Some(w) = w {
            v.extend([w.pids.clone(), w.containers.clone(), w.nodes.clone()]);
        }
        v
    };
    let mut sections: Vec<Section> = Vec::new();
    if let Some(rows) = &s.processes {
        let body = rows
            .iter()
            .map(|r| {
                let mut v = lead(&r.namespace, &r.resource);
                v.extend([opt(&r.parent), opt(&r.process)]);
                v.extend(tail(&r.seen, &r.wide));
                v
            })
            .collect();
        sections.push(("PROCESSES", heads(&["PARENT", "PROCESS"]), body));
    }
    if let Some(rows) = &s.files {
        for (title, mode) in [("FILES READ", "read"), ("FILES WRITTEN", "write")] {
            let body = rows
                .iter()
                .filter(|r| r.mode == mode)
                .map(|r| {
                    let mut v = lead(&r.namespace, &r.resource);
                    v.extend([opt(&r.process), opt(&r.path), r.accesses.clone()]);
                    v.extend(tail(&r.seen, &r.wide));
                    v
                })
                .collect();
            sections.push((title, heads(&["PROCESS", "PATH", "ACCESS"]), body));
        }
    }
    if let Some(rows) = &s.network {
        let body = rows
            .iter()
            .map(|r| {
                let mut v = lead(&r.namespace, &r.resource);
                v.extend([
                    opt(&r.direction),
                    opt(&r.proto),
                    opt(&r.process),
                    opt(&r.peer),
                    r.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                ]);
                v.extend(tail(&r.seen, &r.wide));
                v
            })
            .collect();
        sections.push((
            "NETWORK",
            heads(&["DIRECTION", "PROTO", "PROCESS", "PEER", "PORT"]),
            body,
        ));
    }
    if let Some(rows) = &s.syscalls {
        let body = rows
            .iter()
            .map(|r| {
                let mut v = lead(&r.namespace, &r.resource);
                v.extend([opt(&r.process), opt(&r.syscall), r.results.clone()]);
                v.extend(tail(&r.seen, &r.wide));
                v
            })
            .collect();
        sections.push(("SYSCALLS", heads(&["PROCESS", "SYSCALL", "RESULT"]), body));
    }
    if let Some(rows) = &s.capabilities {
        let body = rows
            .iter()
            .map(|r| {
                let mut v = lead(&r.namespace, &r.resource);
                v.extend([opt(&r.process), opt(&r.capability), r.results.clone()]);
                v.extend(tail(&r.seen, &r.wide));
                v
            })
            .collect();
        sections.push((
            "CAPABILITIES",
            heads(&["PROCESS", "CAPABILITY", "RESULT"]),
            body,
        ));
    }
    let mut first = true;
    for (title, headers, body) in sections {
        if body.is_empty() {
            continue;
        }
        if !first {
            println!();
        }
        first = false;
        println!("{title} ({} rows)", body.len());
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        println!("{}", render::table(&headers, &body));
    }
    Ok(())
}
