//! `kubectl karmor validate FILE|DIR...`: checks KubeArmor policies the way a cluster would.

use std::process::ExitCode;

use anyhow::Result;
use karmor_analyzer::policy::{validate_path, Outcome, PolicyReport};

use crate::cli::{OutputFormat, ValidateArgs};
use crate::render;

/// Runs the command: every path is checked, whatever happens to the others; exit 1 when any
/// document is invalid.
pub fn run(args: ValidateArgs) -> Result<ExitCode> {
    let reports: Vec<PolicyReport> = args.paths.iter().flat_map(|p| validate_path(p)).collect();
    let invalid = reports.iter().filter(|r| r.is_invalid()).count();
    match args.output {
        OutputFormat::Json => render::json(&reports)?,
        OutputFormat::Yaml => render::yaml(&reports)?,
        OutputFormat::Csv => {
            let rows: Vec<Vec<String>> = reports
                .iter()
                .map(|r| {
                    vec![
                        r.file.display().to_string(),
                        document(r),
                        r.kind.clone().unwrap_or_default(),
                        r.name.clone().unwrap_or_default(),
                        outcome(r.outcome).to_string(),
                        join(&r.errors),
                        join(&r.warnings),
                    ]
                })
                .collect();
            render::csv(
                &[
                    "file", "document", "kind", "name", "result", "errors", "warnings",
                ],
                &rows,
            )?;
        }
        format @ (OutputFormat::Table | OutputFormat::Wide) => {
            let wide = format == OutputFormat::Wide;
            let rows: Vec<Vec<String>> = reports
                .iter()
                .map(|r| {
                    let mut row = vec![
                        r.file.display().to_string(),
                        document(r),
                        render::opt(&r.kind),
                        render::opt(&r.name),
                        result(r, wide),
                    ];
                    if wide {
                        row.push(join(&r.warnings));
                    }
                    row
                })
                .collect();
            let mut headers = vec!["FILE", "DOC", "KIND", "NAME", "RESULT"];
            if wide {
                headers.push("WARNINGS");
            }
            println!("{}", render::table(&headers, &rows));
            if !wide {
                for r in &reports {
                    for w in r.warning_messages() {
                        eprintln!("Warning: {w}");
                    }
                }
            }
            let count = |o: Outcome| reports.iter().filter(|r| r.outcome == o).count();
            println!(
                "\n{} documents: {} valid, {invalid} invalid, {} skipped",
                reports.iter().filter(|r| r.document.is_some()).count(),
                count(Outcome::Valid),
                count(Outcome::Skipped),
            );
        }
    }
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn document(r: &PolicyReport) -> String {
    match (r.document, r.item) {
        (Some(d), Some(i)) => format!("{d} items[{i}]"),
        (Some(d), None) => d.to_string(),
        (None, _) => "-".into(),
    }
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Valid => "valid",
        Outcome::Invalid => "invalid",
        Outcome::Skipped => "skipped",
    }
}

fn join(findings: &[karmor_analyzer::policy::Finding]) -> String {
    findings
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `OK`, `OK (2 warnings)`, the errors, or why the document was skipped.
fn result(r: &PolicyReport, wide: bool) -> String {
    match r.outcome {
        Outcome::Valid if r.warnings.is_empty() || wide => "OK".into(),
        Outcome::Valid => format!(
            "OK ({} warning{})",
            r.warnings.len(),
            if r.warnings.len() == 1 { "" } else { "s" }
        ),
        Outcome::Invalid => join(&r.errors),
        Outcome::Skipped => format!("skipped: {}", r.note.as_deref().unwrap_or("")),
    }
}
