//! `kubectl karmor coverage`: has learning converged, per workload and category.

use std::process::ExitCode;

use anyhow::{bail, Result};
use karmor_analyzer::drift::stability::human;
use karmor_analyzer::drift::{stability, Category, Stability, StabilityOptions};

use kubectl_karmor::resource::Target;

use crate::cli::{CoverageArgs, OutputFormat};
use crate::commands::recommend::workload_scope;
use crate::data;
use crate::render;
use crate::scope::Scope;

const HEADERS: &[&str] = &[
    "WORKLOAD",
    "VERDICT",
    "HOURS",
    "STARTUP",
    "DROPPED",
    "EXECUTABLES",
    "FILES",
    "NETWORK",
    "CAPS",
    "NEW PER HOUR",
];

/// Items of a category and how long it has been quiet: `14 quiet 5h02m`, `-` without items.
fn cell(s: &Stability, c: Category) -> String {
    match s.categories.iter().find(|x| x.category == c) {
        Some(x) if x.items > 0 => {
            format!("{} ({} {})", x.items, x.verdict.as_str(), human(x.quiet_s))
        }
        _ => "-".into(),
    }
}

fn rows(all: &[Stability], wide: bool) -> Vec<Vec<String>> {
    all.iter()
        .map(|s| {
            let mut v = vec![
                s.workload.to_string(),
                s.verdict.as_str().to_string(),
                format!("{:.1}", s.hours_observed),
                match s.startup_seen {
                    Some(true) => "seen".into(),
                    Some(false) => "not seen".into(),
                    None => "-".into(),
                },
                s.events_dropped.to_string(),
                cell(s, Category::Executables),
                cell(s, Category::Files),
                cell(s, Category::Network),
                cell(s, Category::Capabilities),
                s.chart(),
            ];
            if wide {
                v.push(cell(s, Category::Syscalls));
                v.push(s.reasons.join("; "));
            }
            v
        })
        .collect()
}

/// Runs the command.
pub fn run(args: CoverageArgs) -> Result<ExitCode> {
    let given = Scope::new(&args.scope)?;
    let scope = workload_scope("coverage", &args.resource, args.name.as_deref(), &given)?;
    let mut opts = StabilityOptions::default();
    for q in &args.quiet {
        opts.apply_arg(q)?;
    }
    for t in &args.dir_threshold {
        opts.generalise
            .apply_arg(t)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    let target = Target::parse(&args.resource, args.name.as_deref())?;
    let store = data::load_pruned(&args.data, &data::Prune::of(&given, Some(&target)))?;
    let all = stability(&store, &scope, &opts)?;
    if all.is_empty() {
        bail!("No behaviour recorded for the selected workloads (use -n NAME or -A).");
    }
    match args.output {
        OutputFormat::Json => render::json(&all)?,
        OutputFormat::Yaml => render::yaml(&all)?,
        OutputFormat::Csv => {
            let mut headers = HEADERS.to_vec();
            headers.extend(["SYSCALLS", "REASONS"]);
            render::csv(&headers, &rows(&all, true))?
        }
        OutputFormat::Table | OutputFormat::Wide => {
            let wide = args.output == OutputFormat::Wide;
            let mut headers = HEADERS.to_vec();
            if wide {
                headers.extend(["SYSCALLS", "REASONS"]);
            }
            println!("{}", render::table(&headers, &rows(&all, wide)));
            if !wide {
                for s in all.iter().filter(|s| !s.reasons.is_empty()) {
                    eprintln!(
                        "{}: {}: {}",
                        s.workload,
                        s.verdict.as_str(),
                        s.reasons.join("; ")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
