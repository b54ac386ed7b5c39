//! `gen-demo [OUT_DIR]`: writes the demo bundle (default: `testdata/demo` in the workspace): the
//! events and the pods table.
//!
//! The directory is removed first, so the result is exactly what the generator produces. The
//! manifest's `updated_at` is pinned to the end of the demo (14:00), so that regenerating an
//! unchanged demo changes no byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use karmor_contract::bundle::{read_manifest, write_bundle, write_pods, BundleOptions, MANIFEST};
use karmor_testdata::demo;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let dir = match (args.next(), args.next()) {
        (None, _) => karmor_testdata::demo_bundle_dir(),
        (Some(a), None) if a == "-h" || a == "--help" => {
            println!("usage: gen-demo [OUT_DIR]   (default: testdata/demo in the workspace)");
            return ExitCode::SUCCESS;
        }
        (Some(a), None) => PathBuf::from(a),
        _ => {
            eprintln!("usage: gen-demo [OUT_DIR]");
            return ExitCode::from(2);
        }
    };
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("gen-demo: cannot remove {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    let events = demo::events();
    let mut by_group: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for e in &events {
        let ns = e.namespace.clone().unwrap_or_else(|| "(host)".into());
        let c = by_group.entry((ns, e.op.to_string())).or_default();
        c.0 += 1;
        c.1 += e.count;
    }
    let opts = BundleOptions {
        producer: "karmor-testdata gen-demo".into(),
        ..Default::default()
    };
    if let Err(e) = write_bundle(&dir, events, &opts) {
        eprintln!("gen-demo: {e}");
        return ExitCode::FAILURE;
    }
    let manifest = match write_pods(&dir, demo::pods(), &opts.producer) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("gen-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = pin_updated_at(&dir) {
        eprintln!("gen-demo: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "wrote {}: {} rows ({} raw events) in {} segments, {} bytes",
        dir.display(),
        manifest.totals.rows,
        manifest.totals.events_seen,
        manifest.totals.files,
        manifest.totals.bytes
    );
    println!(
        "pods table: {} rows in {} files",
        manifest.pods.iter().map(|f| f.rows).sum::<u64>(),
        manifest.pods.len()
    );
    println!(
        "{:<16} {:<8} {:>6} {:>8}",
        "namespace", "op", "rows", "events"
    );
    for ((ns, op), (rows, count)) in by_group {
        println!("{ns:<16} {op:<8} {rows:>6} {count:>8}");
    }
    ExitCode::SUCCESS
}

/// Replaces the wall-clock `updated_at` in the manifest by the end of the demo.
fn pin_updated_at(dir: &Path) -> Result<(), String> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let pinned: Vec<String> = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("\"updated_at\":") {
                format!("  \"updated_at\": \"{DEMO_END}\",")
            } else {
                line.to_string()
            }
        })
        .collect();
    std::fs::write(&path, pinned.join("\n") + "\n")
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let m = read_manifest(dir).map_err(|e| e.to_string())?;
    if m.updated_at != DEMO_END {
        return Err(format!("{}: could not pin updated_at", path.display()));
    }
    Ok(())
}

const DEMO_END: &str = "2026-11-20T14:00:00Z";
