//! `kubectl karmor recommend --seccomp`: a seccomp profile per workload from its recorded
//! system calls, as OCI/Docker JSON and as a Security Profiles Operator `SeccompProfile`.

use std::process::ExitCode;

use anyhow::{bail, Result};
use karmor_analyzer::recommend::seccomp::{
    markdown, parse_architecture, seccomp_drafts, SeccompDraft, SeccompOptions,
};
use kubectl_karmor::resource::Target;
use serde::Serialize;

use super::recommend::{workload_scope, write_draft, write_report};
use crate::cli::{OutputFormat, RecommendArgs};
use crate::data;
use crate::render;
use crate::scope::Scope;

/// One summary row.
#[derive(Debug, Serialize)]
struct Row {
    workload: String,
    syscalls: usize,
    runtime_added: usize,
    profile: String,
}

const HEADERS: &[&str] = &["WORKLOAD", "SYSCALLS", "RUNTIME ADDED", "PROFILE"];

fn summary(drafts: &[SeccompDraft]) -> Vec<Row> {
    drafts
        .iter()
        .map(|d| Row {
            workload: d.workload.to_string(),
            syscalls: d.observed.len(),
            runtime_added: d.added.len(),
            profile: match &d.skipped {
                Some(_) => "none (see note)".into(),
                None => d.object_name(),
            },
        })
        .collect()
}

fn cells(rows: &[Row]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            vec![
                r.workload.clone(),
                r.syscalls.to_string(),
                r.runtime_added.to_string(),
                r.profile.clone(),
            ]
        })
        .collect()
}

/// Builds the drafting options from the arguments.
fn options(args: &RecommendArgs) -> Result<SeccompOptions> {
    let mut opts = SeccompOptions {
        runtime_set: !args.seccomp_exact,
        ..SeccompOptions::default()
    };
    if !args.seccomp_arch.is_empty() {
        opts.architectures = args
            .seccomp_arch
            .iter()
            .map(|a| parse_architecture(a))
            .collect::<karmor_analyzer::Result<Vec<_>>>()?;
        opts.architectures.dedup();
    }
    Ok(opts)
}

/// Runs the command.
pub fn run(args: RecommendArgs) -> Result<ExitCode> {
    let opts = options(&args)?;
    let given = Scope::new(&args.scope)?;
    let scope = workload_scope("recommend", &args.resource, args.name.as_deref(), &given)?;
    let target = Target::parse(&args.resource, args.name.as_deref())?;
    let prune = data::Prune::of(&given, Some(&target));
    let store = data::load_pruned(&args.data, &prune)?;
    let drafts = seccomp_drafts(&store, &scope, &opts)?;
    if drafts.is_empty() {
        bail!("No behaviour recorded for the selected workloads.");
    }
    let mut written = 0usize;
    let mut stream = Vec::new();
    for d in drafts.iter().filter(|d| d.has_profile()) {
        let spo = d.spo_yaml();
        match &args.out {
            Some(dir) => {
                if let Some(json) = d.oci_profile() {
                    let text = format!("{}\n", serde_json::to_string_pretty(&json)?);
                    write_draft(dir, &format!("{}.seccomp.json", d.file_stem()), &text)?;
                    written += 1;
                }
                if let Some(yaml) = &spo {
                    write_draft(dir, &format!("{}.seccompprofile.yaml", d.file_stem()), yaml)?;
                    written += 1;
                }
            }
            None => match spo {
                Some(yaml) => stream.push(yaml),
                None => eprintln!(
                    "note: {}: a container outside Kubernetes has no SeccompProfile resource; --out DIR writes its OCI/Docker JSON profile",
                    d.workload
                ),
            },
        }
    }
    if let Some(report) = &args.report {
        write_report(report, &markdown(&drafts))?;
    }
    let rows = summary(&drafts);
    let to_stdout = args.out.is_some();
    if !to_stdout {
        print!("{}", stream.join("---\n"));
    }
    match (args.output, to_stdout) {
        (OutputFormat::Json, true) => render::json(&rows)?,
        (OutputFormat::Yaml, true) => render::yaml(&rows)?,
        (OutputFormat::Csv, true) => render::csv(HEADERS, &cells(&rows))?,
        (_, true) => println!("{}", render::table(HEADERS, &cells(&rows))),
        (_, false) => eprintln!("{}", render::table(HEADERS, &cells(&rows))),
    }
    if let Some(dir) = &args.out {
        if matches!(args.output, OutputFormat::Table | OutputFormat::Wide) {
            eprintln!("Wrote {written} file(s) to {}.", dir.display());
        }
    }
    for d in &drafts {
        if let Some(why) = &d.skipped {
            eprintln!("note: {}: {why}", d.workload);
        }
        for w in &d.warnings {
            eprintln!("warning: {}: {w}", d.workload);
        }
    }
    Ok(ExitCode::SUCCESS)
}
