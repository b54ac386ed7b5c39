//! `kubectl karmor diff`: what the data does that a baseline (data or policies) does not.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use karmor_analyzer::drift::delta::policy_delta;
use karmor_analyzer::drift::{self, items, Change, ChangeKind, DiffOptions, DiffReport};
use karmor_analyzer::filter::SqlFilter;
use karmor_analyzer::recommend::report::file_name;
use karmor_analyzer::recommend::{parse_instant, Scope as RecScope};
use karmor_analyzer::simulate::{simulate, Posture, Postures, SimOptions};
use karmor_analyzer::Store;
use kubectl_karmor::resource::Target;

use crate::cli::{ChangeKindArg, DataArgs, DiffArgs, OutputFormat};
use crate::commands::recommend::workload_scope;
use crate::commands::simulate::load_policies;
use crate::data;
use crate::render::{self, short_time};
use crate::scope::Scope;

const HEADERS: &[&str] = &[
    "WORKLOAD",
    "CATEGORY",
    "CHANGE",
    "ITEM",
    "BY",
    "FIRST SEEN",
    "EVENTS",
    "BASELINE",
];
const WIDE: &[&str] = &["POD", "ABSORBED", "WHY"];

fn kinds(only: &[ChangeKindArg]) -> Vec<ChangeKind> {
    only.iter()
        .map(|k| match k {
            ChangeKindArg::New => ChangeKind::New,
            ChangeKindArg::Gone => ChangeKind::Gone,
            ChangeKindArg::Volume => ChangeKind::Volume,
        })
        .collect()
}

fn item_text(c: &Change) -> String {
    if c.category == drift::Category::Files {
        format!("{} ({})", c.item, if c.writes { "write" } else { "read" })
    } else {
        c.item.clone()
    }
}

fn rows(changes: &[&Change], wide: bool) -> Vec<Vec<String>> {
    changes
        .iter()
        .map(|c| {
            let by = if c.introduced_by.is_empty() {
                "-".to_string()
            } else {
                c.introduced_by.clone()
            };
            let (events, baseline) = match c.rates {
                Some((before, now)) => (format!("{now}/h"), format!("{before}/h")),
                None => (c.count.to_string(), c.baseline_count.to_string()),
            };
            let mut v = vec![
                c.workload.to_string(),
                c.category.as_str().to_string(),
                c.kind.as_str().to_string(),
                item_text(c),
                by,
                short_time(&c.first_seen),
                events,
                baseline,
            ];
            if wide {
                v.push(if c.pod.is_empty() {
                    "-".into()
                } else {
                    c.pod.clone()
                });
                v.push(c.absorbed.len().to_string());
                v.push(c.why.join("; "));
            }
            v
        })
        .collect()
}

/// Computes the report (errors exit 2 in `main`), with the data and scope it checked.
fn report(args: &DiffArgs) -> Result<(DiffReport, Store, RecScope)> {
    let given = Scope::new(&args.scope)?;
    let mut scope = workload_scope("diff", &args.resource, args.name.as_deref(), &given)?;
    let mut opts = DiffOptions::default();
    for t in &args.dir_threshold {
        opts.generalise
            .apply_arg(t)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    if args.volume_factor.is_nan() || args.volume_factor <= 1.0 {
        bail!("--volume-factor must be more than 1");
    }
    opts.volume_factor = args.volume_factor;

    if !args.baseline_policy.is_empty() {
        let loaded = load_policies(&args.baseline_policy)?;
        for m in &loaded.invalid {
            eprintln!("warning: {m} (left out of the baseline)");
        }
        let target = Target::parse(&args.resource, args.name.as_deref())?;
        let store = data::load_pruned(&args.data, &data::Prune::of(&given, Some(&target)))?;
        let (sql, params) = scope.sql();
        let sim = simulate(
            &store,
            &loaded.policies,
            &SimOptions {
                include_host: true,
                filter: Some(SqlFilter { sql, params }),
                posture: Postures::all(Posture::Block),
                ..SimOptions::default()
            },
        )?;
        let mut r = drift::policy_baseline(&sim, &opts);
        r.baseline = format!(
            "policies {}",
            args.baseline_policy
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok((r, store, scope));
    }

    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let time = |flag: &str, t: &Option<String>| -> Result<Option<i64>> {
        t.as_deref()
            .map(|t| parse_instant(t, now).with_context(|| format!("--{flag} {t}")))
            .transpose()
    };
    let mut base_scope = scope.clone();
    base_scope.since_ns = time("baseline-since", &args.baseline_since)?;
    base_scope.until_ns = time("baseline-until", &args.baseline_until)?;
    if let (Some(a), Some(b)) = (base_scope.since_ns, base_scope.until_ns) {
        if a >= b {
            bail!("--baseline-since must be before --baseline-until");
        }
    }
    // The baseline may be a window of the same data: only the node prunes an archive read.
    let target = Target::parse(&args.resource, args.name.as_deref())?;
    let mut prune = data::Prune::of(&given, Some(&target));
    if args.baseline.is_empty() {
        (prune.since_ns, prune.until_ns) = (None, None);
    }
    let store = data::load_pruned(&args.data, &prune)?;
    let (baseline, current, what) = if args.baseline.is_empty() {
        if base_scope.since_ns.is_none() && base_scope.until_ns.is_none() {
            bail!("give a baseline: --baseline BUNDLE, --baseline-since/--baseline-until (a window of the same data), or --baseline-policy FILE|DIR");
        }
        // The data after the baseline window, unless a window is given.
        if scope.since_ns.is_none() && scope.until_ns.is_none() {
            scope.since_ns = base_scope.until_ns;
        }
        let (baseline, current) = items::read_pair(
            &store,
            &scope,
            (base_scope.since_ns, base_scope.until_ns),
            (scope.since_ns, scope.until_ns),
        )?;
        (baseline, Some(current), "a window of the same data")
    } else {
        let base_store = data::load(&DataArgs {
            bundles: args.baseline.clone(),
            clusters: Vec::new(),
            store: None,
            kubeconfig: None,
            context: None,
            no_pull: true,
        })
        .context("cannot read the baseline")?;
        (
            items::read(&base_store, &base_scope)?,
            None,
            "baseline bundles",
        )
    };
    let current = match current {
        Some(c) => c,
        None => items::read(&store, &scope)?,
    };
    if current.span.is_empty() {
        bail!("No behaviour recorded for the selected workloads in the data to check (use -n NAME, -A, or another window).");
    }
    let mut r = drift::diff(&baseline, &current, &opts);
    let span = |s: Option<i64>, u: Option<i64>| {
        format!(
            "{} .. {}",
            s.map_or("start".into(), karmor_contract::bundle::format_ts),
            u.map_or("end".into(), karmor_contract::bundle::format_ts)
        )
    };
    r.baseline = format!(
        "{what} ({}), against {}",
        span(base_scope.since_ns, base_scope.until_ns),
        span(scope.since_ns, scope.until_ns)
    );
    Ok((r, store, scope))
}

/// Runs the command: exit 1 when anything is new, 0 otherwise.
pub fn run(args: DiffArgs) -> Result<ExitCode> {
    let only = kinds(&args.only);
    let (mut report, store, scope) = report(&args)?;
    let has_new = report.has_new();
    if let Some(dir) = &args.as_policy_delta {
        let written = write_delta(dir, &store, &scope, &report)?;
        eprintln!("Wrote {written} policy delta file(s) to {}.", dir.display());
    }
    let count = |k| report.changes.iter().filter(|c| c.kind == k).count();
    let counts = format!(
        "{} new, {} gone, {} volume",
        count(ChangeKind::New),
        count(ChangeKind::Gone),
        count(ChangeKind::Volume)
    );
    if !only.is_empty() {
        report.changes.retain(|c| only.contains(&c.kind));
    }
    let changes: Vec<&Change> = report.changes.iter().collect();
    match args.output {
        OutputFormat::Json => render::json(&report)?,
        OutputFormat::Yaml => render::yaml(&report)?,
        OutputFormat::Csv => {
            let headers: Vec<&str> = HEADERS.iter().chain(WIDE).copied().collect();
            render::csv(&headers, &rows(&changes, true))?
        }
        OutputFormat::Table | OutputFormat::Wide => {
            let wide = args.output == OutputFormat::Wide;
            if changes.is_empty() {
                eprintln!("No changes against the baseline ({}).", report.baseline);
            } else {
                let mut headers = HEADERS.to_vec();
                if wide {
                    headers.extend(WIDE);
                }
                println!("{}", render::table(&headers, &rows(&changes, wide)));
                eprintln!("{counts} against {}.", report.baseline);
            }
            for n in &report.notes {
                eprintln!("note: {n}");
            }
        }
    }
    Ok(if has_new {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes the `--as-policy-delta` files (one YAML per workload with new behaviour, named as
/// `recommend --out` names drafts); returns how many.
fn write_delta(dir: &Path, store: &Store, scope: &RecScope, report: &DiffReport) -> Result<usize> {
    let deltas = policy_delta(store, scope, report)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = 0;
    for d in deltas {
        for n in &d.not_expressible {
            eprintln!("warning: {}: {n}", d.workload);
        }
        let Some(policy) = d.policy else { continue };
        let yaml = format!(
            "# Rules to add to the draft of {}: what diff found new.\n{}",
            d.workload,
            serde_yaml::to_string(&policy)?
        );
        let path = dir.join(file_name(&d.workload));
        std::fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
        written += 1;
    }
    Ok(written)
}
