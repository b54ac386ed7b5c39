//! `observe --output csv`: a summary's sections as one table (also what the terminal UI
//! exports as CSV).

use karmor_analyzer::observe::{Seen, Summary, Wide};

/// Empty cells for `n` columns.
fn blanks(n: usize) -> Vec<String> {
    vec![String::new(); n]
}

/// The columns of `observe --output csv`: one row per behaviour of every section.
pub const CSV_HEADERS: &[&str] = &[
    "section",
    "namespace",
    "resource",
    "parent",
    "process",
    "path",
    "access",
    "direction",
    "proto",
    "peer",
    "port",
    "syscall",
    "capability",
    "results",
    "count",
    "first_seen",
    "last_seen",
    "pids",
    "containers",
    "nodes",
];

/// The columns every row ends with: counts and times, then the wide columns.
fn tail(seen: &Seen, wide: &Option<Wide>) -> Vec<String> {
    let w = wide.clone().unwrap_or_default();
    vec![
        seen.count.to_string(),
        seen.first_seen.clone(),
        seen.last_seen.clone(),
        w.pids,
        w.containers,
        w.nodes,
    ]
}

/// The CSV rows of a summary, in [`CSV_HEADERS`] order.
pub fn csv_rows(s: &Summary) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let e = String::new;
    for r in s.processes.iter().flatten() {
        let mut row = vec![
            "process".into(),
            r.namespace.clone().unwrap_or_default(),
            r.resource.clone(),
        ];
        row.extend([
            r.parent.clone().unwrap_or_default(),
            r.process.clone().unwrap_or_default(),
            e(),
            e(),
            e(),
            e(),
            e(),
            e(),
        ]);
        row.extend(blanks(3));
        row.extend(tail(&r.seen, &r.wide));
        rows.push(row);
    }
    for r in s.files.iter().flatten() {
        let mut row = vec![
            format!("file-{}", r.mode),
            r.namespace.clone().unwrap_or_default(),
            r.resource.clone(),
        ];
        row.extend([
            e(),
            r.process.clone().unwrap_or_default(),
            r.path.clone().unwrap_or_default(),
            r.accesses.clone(),
            e(),
            e(),
            e(),
            e(),
        ]);
        row.extend(blanks(3));
        row.extend(tail(&r.seen, &r.wide));
        rows.push(row);
    }
    for r in s.network.iter().flatten() {
        let mut row = vec![
            "network".into(),
            r.namespace.clone().unwrap_or_default(),
            r.resource.clone(),
        ];
        row.extend([
            e(),
            r.process.clone().unwrap_or_default(),
            e(),
            e(),
            r.direction.clone().unwrap_or_default(),
            r.proto.clone().unwrap_or_default(),
            r.peer.clone().unwrap_or_default(),
            r.port.map(|p| p.to_string()).unwrap_or_default(),
        ]);
        row.extend(blanks(3));
        row.extend(tail(&r.seen, &r.wide));
        rows.push(row);
    }
    for r in s.syscalls.iter().flatten() {
        let call = (r.syscall.clone().unwrap_or_default(), e());
        rows.push(call_row(
            "syscall",
            &r.namespace,
            &r.resource,
            &r.process,
            call,
            &r.results,
            &r.seen,
            &r.wide,
        ));
    }
    for r in s.capabilities.iter().flatten() {
        let cap = (e(), r.capability.clone().unwrap_or_default());
        rows.push(call_row(
            "capability",
            &r.namespace,
            &r.resource,
            &r.process,
            cap,
            &r.results,
            &r.seen,
            &r.wide,
        ));
    }
    rows
}

/// A `syscall` or `capability` row: the two sections differ only in which of the two columns
/// (`syscall`, `capability`) holds their item.
#[allow(clippy::too_many_arguments)]
fn call_row(
    section: &str,
    namespace: &Option<String>,
    resource: &str,
    process: &Option<String>,
    (syscall, capability): (String, String),
    results: &str,
    seen: &Seen,
    wide: &Option<Wide>,
) -> Vec<String> {
    let mut row = vec![
        section.into(),
        namespace.clone().unwrap_or_default(),
        resource.to_owned(),
        String::new(),
        process.clone().unwrap_or_default(),
    ];
    row.extend(blanks(6));
    row.extend([syscall, capability, results.to_owned()]);
    row.extend(tail(seen, wide));
    row
}
