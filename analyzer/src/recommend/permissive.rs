//! How permissive a draft is: per rule, the distinct observed behaviours it allows, and for
//! each generalised file rule how much wider it is than its evidence.
//!
//! Behaviours are counted over everything the workload was seen doing in the learning window
//! (noise and held-out behaviour included), one per:
//! - process start: (executable, parent);
//! - file access: (path, acting process, whether it wrote) — a `readOnly` rule allows only
//!   the reads;
//! - network: (process, protocol, direction, peer address, peer port) — unix sockets count as
//!   tcp, as KubeArmor's enforcer sees them;
//! - capability: (process, capability).
//!
//! A rule allows a behaviour when its target matches and the acting process is in its
//! `fromSource` (or it has none). The **width** of a directory or pattern rule is the number
//! of files present anywhere in the data (any workload, host, time) that it matches and this
//! workload never touched: the least it allows beyond its evidence.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::{AnalyzerError, Result};
use crate::filter::Param;
use crate::policy::{Policy, Source};
use crate::store::Store;

use super::evidence::Evidence;
use super::generalise::glob_matches;

/// Examples of unobserved files listed per rule.
const EXAMPLES: usize = 5;

/// One rule's measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleMeasure {
    /// `process`, `file`, `network` or `capabilities`.
    pub section: &'static str,
    /// `matchPaths`, `matchDirectories`, `matchPatterns`, `matchProtocols`,
    /// `matchCapabilities`.
    pub list: &'static str,
    /// Index in that list.
    pub index: usize,
    /// The path, directory, pattern, protocol or capability.
    pub target: String,
    /// Distinct observed behaviours it allows.
    pub allows: usize,
    /// For directories and patterns: files present in the data that it matches and the
    /// workload never touched.
    pub unobserved_files: Option<usize>,
    /// A few of them.
    pub unobserved_examples: Vec<String>,
}

/// A policy's measure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Permissiveness {
    /// Per rule.
    pub rules: Vec<RuleMeasure>,
    /// Distinct observed behaviours allowed by at least one rule.
    pub behaviours_allowed: usize,
    /// Distinct observed behaviours in the learning window.
    pub behaviours_seen: usize,
    /// Unobserved files allowed by generalised rules (distinct).
    pub unobserved_files: usize,
}

fn src_ok(fs: &[Source], actor: &str) -> bool {
    fs.is_empty() || fs.iter().any(|s| s.path.as_deref() == Some(actor))
}

fn in_dir(dir: &str, recursive: bool, path: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| !rest.is_empty() && (recursive || !rest.contains('/')))
}

/// Distinct behaviours of the evidence, by kind.
struct Behaviours {
    process: BTreeSet<(String, String)>,
    file: BTreeSet<(String, String, bool)>,
    network: BTreeSet<(String, String, String, String, String)>,
    capability: BTreeSet<(String, String)>,
}

fn behaviours(ev: &Evidence) -> Behaviours {
    let mut b = Behaviours {
        process: BTreeSet::new(),
        file: BTreeSet::new(),
        network: BTreeSet::new(),
        capability: BTreeSet::new(),
    };
    for p in &ev.processes {
        if let Some(exe) = &p.process {
            b.process
                .insert((exe.clone(), p.parent.clone().unwrap_or_default()));
        }
    }
    for f in &ev.files {
        let path = f.path.trim_end_matches('/').to_string();
        for a in &f.processes {
            b.file.insert((path.clone(), a.clone(), f.writes));
        }
    }
    for n in &ev.network {
        let proto = match n.proto.as_deref() {
            Some("unix") => "tcp".to_string(),
            p => p.unwrap_or_default().to_string(),
        };
        b.network.insert((
            n.process.clone().unwrap_or_default(),
            proto,
            n.direction.clone().unwrap_or_default(),
            n.remote_addr.clone().unwrap_or_default(),
            n.remote_port.map(|p| p.to_string()).unwrap_or_default(),
        ));
    }
    for c in &ev.capabilities {
        let lower = c.capability.to_ascii_lowercase();
        let name = lower.strip_prefix("cap_").unwrap_or(&lower).to_string();
        b.capability
            .insert((c.process.clone().unwrap_or_default(), name));
    }
    b
}

/// File paths present in the data under any of `prefixes`, without trailing `/` (one query
/// per 200 prefixes).
pub fn files_under(store: &Store, prefixes: &BTreeSet<String>) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let list: Vec<&String> = prefixes.iter().collect();
    for chunk in list.chunks(200) {
        let cond = vec!["starts_with(path, ?)"; chunk.len()].join(" OR ");
        let sql = format!(
            "SELECT DISTINCT path FROM events WHERE op = 'file' AND path IS NOT NULL AND ({cond})"
        );
        let params: Vec<Param> = chunk.iter().map(|p| Param::Text((*p).clone())).collect();
        let mut stmt = store
            .conn()
            .prepare(&sql)
            .map_err(AnalyzerError::store("prepare file width query"))?;
        let rows = stmt
            .query_map(duckdb::params_from_iter(params.iter()), |r| {
                r.get::<_, String>(0)
            })
            .map_err(AnalyzerError::store("run file width query"))?;
        for r in rows {
            let path = r.map_err(AnalyzerError::store("read file width query"))?;
            let trimmed = path.trim_end_matches('/');
            out.insert(if trimmed.is_empty() {
                path.clone()
            } else {
                trimmed.to_string()
            });
        }
    }
    Ok(out)
}

/// The literal prefix of a directory or pattern rule (what [`files_under`] needs).
pub fn prefix_of(target: &str) -> String {
    match target.find(['*', '?']) {
        Some(i) => target[..i].to_string(),
        None => target.to_string(),
    }
}

/// Measures one policy against the workload's evidence; `present` holds the files in the
/// data under the policy's directory and pattern prefixes.
pub fn measure(p: &Policy, ev: &Evidence, present: &BTreeSet<String>) -> Permissiveness {
    let b = behaviours(ev);
    let mut m = Permissiveness {
        behaviours_seen: b.process.len() + b.file.len() + b.network.len() + b.capability.len(),
        ..Permissiveness::default()
    };
    let mut allowed_proc: BTreeSet<&(String, String)> = BTreeSet::new();
    let mut allowed_file: BTreeSet<&(String, String, bool)> = BTreeSet::new();
    let mut allowed_net: BTreeSet<&(String, String, String, String, String)> = BTreeSet::new();
    let mut allowed_cap: BTreeSet<&(String, String)> = BTreeSet::new();
    let touched: BTreeSet<&str> = b.file.iter().map(|(p, _, _)| p.as_str()).collect();
    let mut unobserved_all: BTreeSet<&str> = BTreeSet::new();
    let push = |m: &mut Permissiveness,
                section: &'static str,
                list: &'static str,
                index: usize,
                target: &str,
                allows: usize,
                unobserved: Option<Vec<&str>>| {
        m.rules.push(RuleMeasure {
            section,
            list,
            index,
            target: target.to_string(),
            allows,
            unobserved_files: unobserved.as_ref().map(Vec::len),
            unobserved_examples: unobserved
                .unwrap_or_default()
                .into_iter()
                .take(EXAMPLES)
                .map(String::from)
                .collect(),
        });
    };
    if let Some(pr) = &p.spec.process {
        for (i, r) in pr.match_paths.iter().enumerate() {
            let Some(path) = r.path.as_deref() else {
                continue;
            };
            let hits: Vec<_> = b
                .process
                .iter()
                .filter(|(exe, parent)| exe == path && src_ok(&r.from_source, parent))
                .collect();
            allowed_proc.extend(hits.iter().copied());
            push(&mut m, "process", "matchPaths", i, path, hits.len(), None);
        }
        for (i, r) in pr.match_patterns.iter().enumerate() {
            let hits: Vec<_> = b
                .process
                .iter()
                .filter(|(exe, _)| glob_matches(&r.pattern, exe))
                .collect();
            allowed_proc.extend(hits.iter().copied());
            push(
                &mut m,
                "process",
                "matchPatterns",
                i,
                &r.pattern,
                hits.len(),
                None,
            );
        }
    }
    if let Some(f) = &p.spec.file {
        let file_hits = |matches: &dyn Fn(&str) -> bool, fs: &[Source], read_only: bool| {
            b.file
                .iter()
                .filter(|(path, actor, writes)| {
                    matches(path) && src_ok(fs, actor) && !(read_only && *writes)
                })
                .collect::<Vec<_>>()
        };
        // Files present in the data that a generalised rule matches and the workload never
        // touched: how much wider the rule is than its evidence.
        let unobserved_under = |matches: &dyn Fn(&str) -> bool| -> Vec<&str> {
            present
                .iter()
                .map(String::as_str)
                .filter(|p| matches(p) && !touched.contains(p))
                .collect()
        };
        for (i, r) in f.match_paths.iter().enumerate() {
            let hits = file_hits(&|p: &str| p == r.path, &r.from_source, r.read_only);
            allowed_file.extend(hits.iter().copied());
            push(&mut m, "file", "matchPaths", i, &r.path, hits.len(), None);
        }
        for (i, r) in f.match_directories.iter().enumerate() {
            let matches = |p: &str| in_dir(&r.dir, r.recursive, p);
            let hits = file_hits(&matches, &r.from_source, r.read_only);
            allowed_file.extend(hits.iter().copied());
            let unobserved = unobserved_under(&matches);
            unobserved_all.extend(unobserved.iter().copied());
            push(
                &mut m,
                "file",
                "matchDirectories",
                i,
                &r.dir,
                hits.len(),
                Some(unobserved),
            );
        }
        for (i, r) in f.match_patterns.iter().enumerate() {
            let matches = |p: &str| glob_matches(&r.pattern, p);
            let hits = file_hits(&matches, &[], r.read_only);
            allowed_file.extend(hits.iter().copied());
            let unobserved = unobserved_under(&matches);
            unobserved_all.extend(unobserved.iter().copied());
            push(
                &mut m,
                "file",
                "matchPatterns",
                i,
                &r.pattern,
                hits.len(),
                Some(unobserved),
            );
        }
    }
    if let Some(n) = &p.spec.network {
        for (i, r) in n.match_protocols.iter().enumerate() {
            let hits: Vec<_> = b
                .network
                .iter()
                .filter(|(actor, proto, ..)| {
                    proto.eq_ignore_ascii_case(&r.protocol) && src_ok(&r.from_source, actor)
                })
                .collect();
            allowed_net.extend(hits.iter().copied());
            push(
                &mut m,
                "network",
                "matchProtocols",
                i,
                &r.protocol,
                hits.len(),
                None,
            );
        }
    }
    if let Some(c) = &p.spec.capabilities {
        for (i, r) in c.match_capabilities.iter().enumerate() {
            let hits: Vec<_> = b
                .capability
                .iter()
                .filter(|(actor, cap)| *cap == r.capability && src_ok(&r.from_source, actor))
                .collect();
            allowed_cap.extend(hits.iter().copied());
            push(
                &mut m,
                "capabilities",
                "matchCapabilities",
                i,
                &r.capability,
                hits.len(),
                None,
            );
        }
    }
    m.behaviours_allowed =
        allowed_proc.len() + allowed_file.len() + allowed_net.len() + allowed_cap.len();
    m.unobserved_files = unobserved_all.len();
    m
}

/// The directory and pattern prefixes of policies, for [`files_under`].
pub fn prefixes<'a>(policies: impl Iterator<Item = &'a Policy>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in policies {
        if let Some(f) = &p.spec.file {
            out.extend(f.match_directories.iter().map(|r| r.dir.clone()));
            out.extend(f.match_patterns.iter().map(|r| prefix_of(&r.pattern)));
        }
    }
    out
}

/// Per-rule measures, keyed for reports: (section, list, index) → measure.
pub fn by_rule(m: &Permissiveness) -> BTreeMap<(&'static str, &'static str, usize), &RuleMeasure> {
    m.rules
        .iter()
        .map(|r| ((r.section, r.list, r.index), r))
        .collect()
}
