//! Outputs of `recommend`: YAML per workload (serialised through the policy model, with `#`
//! comments above generalised rules), a summary row per workload, and the Markdown report.
//!
//! Comments are added after serialisation: the YAML of the model is walked line by line,
//! keeping track of the mapping keys above each line, and the comment lines of a rule are
//! inserted above the list item at `spec.<section>.<list>[<index>]`. The result parses to
//! exactly the same policy (comments carry no data).

use std::collections::HashMap;
use std::fmt::Write as _;

use karmor_contract::bundle::format_ts;
use serde::Serialize;

use crate::policy::Policy;

use super::draft::Draft;
use super::evidence::WorkloadId;
use super::hardening::PickStatus;
use super::noise::Noise;
use super::suspicious::HeldOut;
use super::{posture_note, workload_posture_note, Recommendation, WorkloadRecommendation};

/// How many absorbed paths a comment lists before "… N more".
const ABSORBED_SHOWN: usize = 8;

/// Comment text on one line: control characters (a newline in a file name) are escaped so
/// that nothing in a path can end the comment.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Inserts comment lines above list items: `comments[(path, index)]`, where `path` is the
/// dotted key path of the list (`spec.file.matchDirectories`).
pub fn insert_comments(yaml: &str, comments: &HashMap<(String, usize), Vec<String>>) -> String {
    let mut out = String::with_capacity(yaml.len() * 2);
    let mut keys: Vec<(usize, String)> = Vec::new();
    let mut counters: HashMap<String, usize> = HashMap::new();
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        let content = line.trim_start();
        if let Some(item) =
            content
                .strip_prefix("- ")
                .or(if content == "-" { Some("") } else { None })
        {
            // An item of the list whose key sits at the same indentation (serde_yaml's style)
            // or two spaces less.
            while keys.last().is_some_and(|(i, _)| *i > indent) {
                keys.pop();
            }
            let path = keys
                .iter()
                .map(|(_, k)| k.as_str())
                .collect::<Vec<_>>()
                .join(".");
            let n = counters.entry(path.clone()).or_insert(0);
            if let Some(lines) = comments.get(&(path.clone(), *n)) {
                for c in lines {
                    let _ = writeln!(out, "{}# {}", " ".repeat(indent), one_line(c));
                }
            }
            *n += 1;
            // Reset counters of nested lists inside the previous item.
            let prefix = format!("{path}.");
            counters.retain(|k, _| !k.starts_with(&prefix));
            if let Some((k, _)) = item.split_once(':') {
                keys.push((indent + 2, k.trim().to_string()));
            }
        } else if let Some((k, _)) = content.split_once(':') {
            while keys.last().is_some_and(|(i, _)| *i >= indent) {
                keys.pop();
            }
            keys.push((indent, k.trim().to_string()));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn comments_of(d: &Draft) -> HashMap<(String, usize), Vec<String>> {
    let mut map: HashMap<(String, usize), Vec<String>> = HashMap::new();
    for n in &d.rule_notes {
        map.entry((format!("spec.{}.{}", n.section, n.list), n.index))
            .or_default()
            .extend(n.lines.iter().cloned());
    }
    for g in &d.generalisations {
        let mut lines = vec![if g.list == "matchPaths" {
            format!("inferred: {}", g.why.join("; "))
        } else {
            format!(
                "generalised from {} path{}: {}",
                g.absorbed.len(),
                if g.absorbed.len() == 1 { "" } else { "s" },
                g.why.join("; ")
            )
        }];
        if g.list == "matchPaths" {
            map.entry((format!("spec.{}.{}", g.section, g.list), g.index))
                .or_default()
                .extend(lines);
            continue;
        }
        let shown: Vec<&str> = g
            .absorbed
            .iter()
            .take(ABSORBED_SHOWN)
            .map(String::as_str)
            .collect();
        let mut absorbed = format!("absorbed: {}", shown.join(", "));
        if g.absorbed.len() > ABSORBED_SHOWN {
            let _ = write!(
                absorbed,
                ", … {} more (see the report)",
                g.absorbed.len() - ABSORBED_SHOWN
            );
        }
        lines.push(absorbed);
        if let Some(r) = d.permissiveness.as_ref().and_then(|m| {
            m.rules
                .iter()
                .find(|r| r.section == g.section && r.list == g.list && r.index == g.index)
        }) {
            lines.push(format!(
                "allows {} observed behaviours; wider than its evidence by {} files in the data it never touched",
                r.allows,
                r.unobserved_files.unwrap_or(0)
            ));
        }
        map.entry((format!("spec.{}.{}", g.section, g.list), g.index))
            .or_default()
            .extend(lines);
    }
    map
}

/// An instant as RFC 3339 to the second.
pub(crate) fn when(ns: i64) -> String {
    let t = format_ts(ns);
    match t.find('.') {
        Some(dot) if t.ends_with('Z') => format!("{}Z", &t[..dot]),
        _ => t,
    }
}

/// The `--include`/`--exclude` word of a tag.
fn include_word(t: Noise) -> &'static str {
    match t {
        Noise::Exec => "exec",
        Noise::Startup => "startup",
        Noise::Probe => "probes",
    }
}

/// What a block posture does to the `kubectl exec` sessions left out of a draft.
pub fn exec_posture_note(e: &super::draft::Excluded) -> String {
    let exes: Vec<&str> = e.executables.keys().map(String::as_str).collect();
    format!(
        "kubectl exec sessions are not in this draft ({} process start{}: {}): under a block posture (file and process) they are denied, so `kubectl exec` into these pods cannot run them; under audit they run and raise alerts. --include exec allows them.",
        e.processes,
        if e.processes == 1 { "" } else { "s" },
        exes.join(", ")
    )
}

fn noise_line(map: &std::collections::BTreeMap<Noise, super::draft::Excluded>) -> String {
    map.iter()
        .map(|(tag, e)| {
            format!(
                "{}: {} process starts, {} file paths",
                tag.as_str(),
                e.processes,
                e.files
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The YAML of one workload: the draft (with comments) then the proposed hardening
/// policies, as one multi-document stream. Empty when nothing is emitted.
pub fn workload_yaml(
    w: &WorkloadRecommendation,
    rec: &Recommendation,
) -> Result<String, serde_yaml::Error> {
    let mut docs: Vec<String> = Vec::new();
    let d = &w.draft;
    if let Some(p) = &d.policy {
        let mut head = vec![
            format!(
                "Drafted by kubectl karmor recommend for {} from {} events ({} rows), {} .. {}, {} {} on {}.",
                d.workload,
                d.events,
                d.rows,
                when(d.first_ns),
                when(d.last_ns),
                d.pods.len().max(usize::from(d.workload.is_host())),
                if d.workload.is_container() {
                    "container(s)"
                } else {
                    "pod(s)"
                },
                d.nodes.join(", ")
            ),
            workload_posture_note(p.spec.action.unwrap_or(rec.action), &d.workload),
        ];
        if !d.excluded.is_empty() {
            head.push(format!(
                "Left out: {}; --include {} keeps them.",
                noise_line(&d.excluded),
                d.excluded
                    .keys()
                    .map(|t| include_word(*t))
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        if let Some(e) = d.excluded.get(&Noise::Exec) {
            head.push(exec_posture_note(e));
        }
        for n in &d.not_expressible {
            head.push(format!("Not expressible: {n}"));
        }
        for wn in &d.warnings {
            head.push(format!("Warning: {wn}"));
        }
        if rec.events_dropped > 0 {
            head.push(format!(
                "Warning: the evidence is incomplete: producers dropped {} events; behaviour may be missing from this draft.",
                rec.events_dropped
            ));
        }
        let held: Vec<&HeldOut> = d
            .held_out
            .iter()
            .filter(|h| !h.kept && (h.tag != Some(Noise::Exec) || rec_keeps_exec(d)))
            .collect();
        if !held.is_empty() {
            head.push(format!(
                "Held out as suspicious: {} behaviour{} (commented-out rules below, with their evidence; uncomment one to allow it, or draft with --include suspicious). `simulate` names them through the {} annotation.",
                held.len(),
                if held.len() == 1 { "" } else { "s" },
                super::suspicious::HELD_OUT_ANNOTATION
            ));
        }
        let body = insert_comments(&p.to_yaml()?, &comments_of(d));
        docs.push(with_header(&head, &insert_held_out(&body, &held)));
    }
    for pick in &w.hardening {
        if let (PickStatus::Proposed, Some(p)) = (pick.status, &pick.policy) {
            let mut head = vec![format!(
                "Hardening policy {} (policies/{}), severity {}: {}",
                pick.name, pick.file, pick.severity, pick.summary
            )];
            head.extend(pick.reasons.iter().map(|r| format!("Why: {r}")));
            head.extend(pick.notes.iter().map(|n| format!("Note: {n}")));
            docs.push(with_header(&head, &p.to_yaml()?));
        }
    }
    Ok(docs.join("---\n"))
}

/// Whether exec sessions are in the draft (their held-out behaviour then gets a rule too).
fn rec_keeps_exec(d: &Draft) -> bool {
    d.included_noise.contains_key(&Noise::Exec)
}

/// Inserts each held-out rule, commented out, where uncommenting it makes it a rule: under its
/// list when the list exists, with the list key when only the section exists, with the section
/// before `spec.action` otherwise.
pub fn insert_held_out(yaml: &str, held: &[&HeldOut]) -> String {
    let mut lines: Vec<String> = yaml.lines().map(String::from).collect();
    for h in held {
        let Some((section, list, rule)) = &h.rule else {
            continue;
        };
        let mut block = vec![format!(
            "HELD OUT: {}: {}; seen {}x{}",
            h.behaviour,
            h.reasons.join("; "),
            h.count,
            h.first_ns
                .map(|t| format!(", first at {}", when(t)))
                .unwrap_or_default()
        )];
        let spec = lines.iter().position(|l| l == "spec:");
        let find = |lines: &[String], from: usize, indent: usize, key: &str| -> Option<usize> {
            let want = format!("{}{key}:", " ".repeat(indent));
            lines[from..]
                .iter()
                .take_while(|l| {
                    let ind = l.len() - l.trim_start().len();
                    l.trim_start().starts_with('#') || ind >= indent || l.is_empty()
                })
                .position(|l| *l == want)
                .map(|i| i + from)
        };
        let Some(spec) = spec else { continue };
        let (at, indent, prefix): (usize, usize, Vec<String>) =
            match find(&lines, spec + 1, 2, section) {
                Some(sec) => match find(&lines, sec + 1, 4, list) {
                    Some(l) => (l + 1, 4, Vec::new()),
                    None => (sec + 1, 4, vec![format!("{list}:")]),
                },
                None => {
                    let Some(action) = find(&lines, spec + 1, 2, "action") else {
                        continue;
                    };
                    (action, 2, vec![format!("{section}:"), format!("  {list}:")])
                }
            };
        let item_pad = if prefix.is_empty() { "" } else { "  " };
        block.extend(prefix);
        block.extend(rule.iter().map(|r| format!("{item_pad}{r}")));
        let pad = " ".repeat(indent);
        let commented: Vec<String> = block
            .iter()
            .map(|b| format!("{pad}# {}", one_line(b)))
            .collect();
        lines.splice(at..at, commented);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn with_header(head: &[String], body: &str) -> String {
    let mut s = String::new();
    for h in head {
        for line in wrap(&one_line(h), 96) {
            let _ = writeln!(s, "# {line}");
        }
    }
    s.push_str(body);
    s
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("one line");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

/// The file name of a workload's YAML in `--out DIR`.
pub fn file_name(id: &WorkloadId) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    match &id.namespace {
        Some(ns) => format!("{}_{}_{}.yaml", clean(ns), clean(&id.kind), clean(&id.name)),
        None if id.is_container() => format!("container_{}.yaml", clean(&id.name)),
        None => format!("host_{}.yaml", clean(&id.name)),
    }
}

/// One row of the summary table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SummaryRow {
    /// `namespace/Kind/name`, `container/NAME`, `node/NAME` or `unattributed/WHICH`.
    pub workload: String,
    /// Policy kind and name, or `-`.
    pub policy: String,
    /// Process rules.
    pub process: usize,
    /// File rules.
    pub file: usize,
    /// Network rules.
    pub network: usize,
    /// Capability rules.
    pub capabilities: usize,
    /// System-call rules (audit only).
    pub syscalls: usize,
    /// Generalised rules.
    pub generalised: usize,
    /// Noise left out: `exec:3 (denied under block)`, `probe:2160` with `--exclude probes`.
    pub noise_excluded: String,
    /// Process starts of `kubectl exec` sessions left out: a block posture denies them.
    pub exec_left_out: usize,
    /// Behaviours held out as suspicious (each is also a warning).
    pub held_out: usize,
    /// Distinct observed behaviours the policy allows (see `recommend::permissive`).
    pub behaviours_allowed: usize,
    /// Distinct observed behaviours in the learning window.
    pub behaviours_seen: usize,
    /// Files present in the data that generalised rules allow and the workload never touched.
    pub unobserved_files_allowed: usize,
    /// Hardening policies proposed.
    pub hardening_proposed: usize,
    /// Hardening policies flagged.
    pub hardening_flagged: usize,
    /// Warnings.
    pub warnings: usize,
    /// Stability verdict: `stable`, `learning` or `partial` (`-` when unknown).
    pub stability: String,
}

/// The stability verdict of one workload, with its saturation curve as a text chart.
fn stability_section(s: &mut String, st: &crate::drift::Stability) {
    let _ = writeln!(
        s,
        "Stability: **{}** over {:.1} h observed{}.\n",
        st.verdict.as_str(),
        st.hours_observed,
        match st.startup_seen {
            Some(true) => ", start-up seen",
            Some(false) => ", start-up not seen",
            None => "",
        }
    );
    for r in &st.reasons {
        let _ = writeln!(s, "- {r}");
    }
    let _ = writeln!(
        s,
        "\nNew items per hour from {} (one column per hour, `·` = none):\n\n```",
        st.first_seen
    );
    for c in &st.categories {
        let _ = writeln!(
            s,
            "{:<13} {:>5} items  {}  {}",
            c.category.as_str(),
            c.items,
            crate::drift::stability::spark(&c.new_per_hour),
            c.verdict.as_str()
        );
    }
    let _ = writeln!(s, "```\n");
}

/// The summary rows.
pub fn summary(rec: &Recommendation) -> Vec<SummaryRow> {
    rec.workloads
        .iter()
        .map(|w| {
            let d = &w.draft;
            let emitted = d.policy.is_some();
            SummaryRow {
                workload: d.workload.to_string(),
                policy: d
                    .policy
                    .as_ref()
                    .map(|p| format!("{}/{}", p.kind.short_name(), p.metadata.name))
                    .unwrap_or_else(|| "-".into()),
                // Rules of the emitted draft only (none with --action Block).
                process: if emitted { d.rules.process } else { 0 },
                file: if emitted { d.rules.file } else { 0 },
                network: if emitted { d.rules.network } else { 0 },
                capabilities: if emitted { d.rules.capabilities } else { 0 },
                syscalls: if emitted { d.rules.syscalls } else { 0 },
                generalised: if emitted { d.generalisations.len() } else { 0 },
                noise_excluded: d
                    .excluded
                    .iter()
                    .map(|(t, e)| {
                        if *t == Noise::Exec {
                            format!("{}:{} (denied under block)", t.as_str(), e.processes)
                        } else {
                            format!("{}:{}", t.as_str(), e.processes)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                exec_left_out: d.excluded.get(&Noise::Exec).map_or(0, |e| e.processes),
                held_out: d.held_out.iter().filter(|h| !h.kept).count(),
                behaviours_allowed: d
                    .permissiveness
                    .as_ref()
                    .filter(|_| emitted)
                    .map_or(0, |m| m.behaviours_allowed),
                behaviours_seen: d.permissiveness.as_ref().map_or(0, |m| m.behaviours_seen),
                unobserved_files_allowed: d
                    .permissiveness
                    .as_ref()
                    .filter(|_| emitted)
                    .map_or(0, |m| m.unobserved_files),
                hardening_proposed: w
                    .hardening
                    .iter()
                    .filter(|p| p.status == PickStatus::Proposed)
                    .count(),
                hardening_flagged: w
                    .hardening
                    .iter()
                    .filter(|p| p.status == PickStatus::Flagged)
                    .count(),
                warnings: d.warnings.len() + usize::from(rec.events_dropped > 0),
                stability: w
                    .stability
                    .as_ref()
                    .map_or_else(|| "-".into(), |s| s.verdict.as_str().to_string()),
            }
        })
        .chain(rec.unattributed.iter().map(|u| SummaryRow {
            workload: format!("unattributed/{}", u.name),
            policy: "- (unattributed)".into(),
            noise_excluded: String::new(),
            warnings: 1,
            stability: "-".into(),
            ..SummaryRow::default()
        }))
        .collect()
}

fn allows(p: &Policy) -> Vec<String> {
    let src = |fs: &[crate::policy::Source]| -> String {
        if fs.is_empty() {
            "any process".into()
        } else {
            fs.iter()
                .filter_map(|s| s.path.clone())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut v = Vec::new();
    if let Some(pr) = &p.spec.process {
        for r in &pr.match_paths {
            v.push(format!(
                "run `{}` (from {})",
                r.path.as_deref().unwrap_or("?"),
                src(&r.from_source)
            ));
        }
        for r in &pr.match_patterns {
            v.push(format!("run anything matching `{}`", r.pattern));
        }
    }
    if let Some(f) = &p.spec.file {
        let ro = |b: bool| if b { "read" } else { "read and write" };
        for r in &f.match_paths {
            v.push(format!(
                "{} `{}` ({})",
                ro(r.read_only),
                r.path,
                src(&r.from_source)
            ));
        }
        for r in &f.match_directories {
            v.push(format!(
                "{} files under `{}`{} ({})",
                ro(r.read_only),
                r.dir,
                if r.recursive {
                    " and its subdirectories"
                } else {
                    ""
                },
                src(&r.from_source)
            ));
        }
        for r in &f.match_patterns {
            v.push(format!(
                "{} files matching `{}` (any process)",
                ro(r.read_only),
                r.pattern
            ));
        }
    }
    if let Some(n) = &p.spec.network {
        for r in &n.match_protocols {
            v.push(format!(
                "use {} sockets ({})",
                r.protocol,
                src(&r.from_source)
            ));
        }
    }
    if let Some(c) = &p.spec.capabilities {
        for r in &c.match_capabilities {
            v.push(format!(
                "use CAP_{} ({})",
                r.capability.to_uppercase(),
                src(&r.from_source)
            ));
        }
    }
    if let Some(sc) = &p.spec.syscalls {
        for r in &sc.match_syscalls {
            let from: Vec<String> = r
                .from_source
                .iter()
                .filter_map(|s| s.path.clone())
                .collect();
            v.push(format!(
                "audit (alert on, never deny) the system calls {} ({})",
                r.syscalls.join(", "),
                if from.is_empty() {
                    "any process".to_string()
                } else {
                    from.join(", ")
                }
            ));
        }
    }
    v
}

/// The rows no policy can select, and why (nothing is drafted for them).
fn unattributed_section(s: &mut String, rec: &Recommendation) {
    if rec.unattributed.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Unattributed behaviour (no policy drafted)\n");
    for u in &rec.unattributed {
        let _ = writeln!(
            s,
            "- `{}`: {} events in {} rows{}: {}.",
            u.name,
            u.events,
            u.rows,
            if u.nodes.is_empty() {
                String::new()
            } else {
                format!(" on {}", u.nodes.join(", "))
            },
            u.reason
        );
    }
}

/// The Markdown report: the summary table, unattributed behaviour, then per workload what the
/// policy allows, its generalisations, the noise left out, hardening picks, and a warning when
/// the evidence had dropped events.
pub fn markdown(rec: &Recommendation) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# kubectl karmor recommend report\n");
    let window = match (rec.since_ns, rec.until_ns) {
        (None, None) => "all recorded behaviour".to_string(),
        (a, b) => format!(
            "behaviour from {} until {}",
            a.map_or("the start".into(), when),
            b.map_or("the end".into(), when)
        ),
    };
    let _ = writeln!(s, "Learned from {window}; action **{}**.\n", rec.action);
    let _ = writeln!(s, "{}\n", posture_note(rec.action, false));
    if rec.events_dropped > 0 {
        let _ = writeln!(
            s,
            "> **Warning: incomplete evidence.** Producers dropped {} events ({} seen). Behaviour that happened during the drops is missing, so an allow-list drafted from it may block legitimate behaviour: learn again from a period without drops, or review the drafts with `simulate`.\n",
            rec.events_dropped, rec.health.events_seen
        );
    }
    let _ = writeln!(s, "| workload | stability | policy | process | file | network | capabilities | generalised | noise left out | hardening proposed / flagged |");
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|---:|---|---|");
    for r in summary(rec) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
            r.workload,
            r.stability,
            r.policy,
            r.process,
            r.file,
            r.network,
            r.capabilities,
            r.generalised,
            if r.noise_excluded.is_empty() {
                "-"
            } else {
                &r.noise_excluded
            },
            r.hardening_proposed,
            r.hardening_flagged
        );
    }
    unattributed_section(&mut s, rec);
    for w in &rec.workloads {
        let d = &w.draft;
        let _ = writeln!(s, "\n## {}\n", d.workload);
        let _ = writeln!(
            s,
            "{} events in {} rows, {} .. {}; {}: {}; nodes: {}.\n",
            d.events,
            d.rows,
            when(d.first_ns),
            when(d.last_ns),
            if d.workload.is_container() {
                "containers"
            } else {
                "pods"
            },
            if d.pods.is_empty() {
                "-".into()
            } else {
                d.pods.join(", ")
            },
            d.nodes.join(", ")
        );
        if let Some(st) = &w.stability {
            stability_section(&mut s, st);
        }
        if let Some(why) = &w.refused {
            let _ = writeln!(s, "> **Refused:** {why}\n");
        }
        for wn in &d.warnings {
            let _ = writeln!(s, "> Warning: {wn}\n");
        }
        if let Some(p) = &d.policy {
            let _ = writeln!(s, "### {} `{}` allows\n", p.kind, p.metadata.name);
            if let Some(sel) = &p.spec.selector {
                let labels: Vec<String> = sel
                    .match_labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "Selector: `{}` ({}).\n",
                    labels.join(","),
                    if d.workload.is_container() {
                        "the container's name, as KubeArmor selects containers outside Kubernetes"
                    } else {
                        "stable labels of every pod"
                    }
                );
            }
            for a in allows(p) {
                let _ = writeln!(s, "- {a}");
            }
        }
        if !d.generalisations.is_empty() {
            let _ = writeln!(s, "\n### Generalisations\n");
            for g in &d.generalisations {
                let _ = writeln!(
                    s,
                    "- `{}` ({} {}{}): {}. Absorbed {} path{}: {}",
                    g.target,
                    g.section,
                    g.list,
                    if g.read_only { ", read-only" } else { "" },
                    g.why.join("; "),
                    g.absorbed.len(),
                    if g.absorbed.len() == 1 { "" } else { "s" },
                    g.absorbed
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        if !d.held_out.is_empty() {
            let _ = writeln!(s, "\n### Held out as suspicious\n");
            let _ = writeln!(
                s,
                "Behaviour that looks like an intrusion (per the hardening library's data, or seen once, late). It is not allowed by the draft: it is written into the YAML as a commented-out rule (uncomment it to allow it, or draft with `--include suspicious`), listed in the `{}` annotation, and `simulate` names it.\n",
                super::suspicious::HELD_OUT_ANNOTATION
            );
            for h in &d.held_out {
                let _ = writeln!(
                    s,
                    "- `{}`{}: {}. Seen {}x{}.",
                    h.behaviour,
                    if h.kept {
                        " (kept by --include suspicious)"
                    } else if h.tag == Some(Noise::Exec) {
                        " (in a kubectl exec session)"
                    } else {
                        ""
                    },
                    h.reasons.join("; "),
                    h.count,
                    h.first_ns
                        .map(|t| format!(", first at {}", when(t)))
                        .unwrap_or_default()
                );
            }
        }
        if let (Some(m), Some(_)) = (&d.permissiveness, &d.policy) {
            let _ = writeln!(s, "\n### Permissiveness\n");
            let _ = writeln!(
                s,
                "The policy allows {} of the {} distinct behaviours observed; its generalised rules also allow {} files present in the data that this workload never touched.\n",
                m.behaviours_allowed, m.behaviours_seen, m.unobserved_files
            );
            let _ = writeln!(
                s,
                "| rule | target | observed behaviours allowed | unobserved files allowed (e.g.) |"
            );
            let _ = writeln!(s, "|---|---|---:|---|");
            for r in &m.rules {
                let _ = writeln!(
                    s,
                    "| {}.{}[{}] | `{}` | {} | {} |",
                    r.section,
                    r.list,
                    r.index,
                    r.target,
                    r.allows,
                    match r.unobserved_files {
                        None => "-".to_string(),
                        Some(n) => format!(
                            "{n}{}",
                            if r.unobserved_examples.is_empty() {
                                String::new()
                            } else {
                                format!(
                                    " ({})",
                                    r.unobserved_examples
                                        .iter()
                                        .map(|e| format!("`{e}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            }
                        ),
                    }
                );
            }
        }
        for (title, map) in [
            ("Noise left out", &d.excluded),
            ("Noise kept (--include)", &d.included_noise),
        ] {
            if map.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\n### {title}\n");
            for (tag, e) in map {
                let exes: Vec<String> = e
                    .executables
                    .iter()
                    .map(|(x, n)| format!("`{x}` ×{n}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "- **{}**: {}. {} process starts ({}), {} file paths, {} network rows, {} .. {}.",
                    tag.as_str(),
                    tag.describe(),
                    e.processes,
                    exes.join(", "),
                    e.files,
                    e.network,
                    e.first_ns.map_or("-".into(), when),
                    e.last_ns.map_or("-".into(), when)
                );
                if *tag == Noise::Exec && title == "Noise left out" {
                    let _ = writeln!(s, "  - {}", exec_posture_note(e));
                }
            }
        }
        if !d.not_expressible.is_empty() {
            let _ = writeln!(s, "\n### Not expressible in KubeArmor rules\n");
            for n in &d.not_expressible {
                let _ = writeln!(s, "- {n}");
            }
        }
        if !w.hardening.is_empty() {
            let _ = writeln!(s, "\n### Hardening\n");
            for p in &w.hardening {
                let _ = writeln!(
                    s,
                    "- **{}** `{}` (severity {}): {} {}",
                    match p.status {
                        PickStatus::Proposed => "proposed",
                        PickStatus::Flagged => "FLAGGED",
                        PickStatus::Skipped => "skipped",
                    },
                    p.name,
                    p.severity,
                    p.summary,
                    p.reasons.join(". ")
                );
                if !p.exec_evidence.is_empty() {
                    let _ = writeln!(
                        s,
                        "  - `kubectl exec` sessions did what it stops: {}",
                        p.exec_evidence.join("; ")
                    );
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_land_above_the_right_item() {
        let yaml = "spec:\n  file:\n    matchPaths:\n    - path: /a\n    matchDirectories:\n    - dir: /x/\n      fromSource:\n      - path: /bin/p\n    - dir: /y/\n  action: Allow\n";
        let mut c = HashMap::new();
        c.insert(
            ("spec.file.matchDirectories".to_string(), 1),
            vec!["why y".to_string()],
        );
        c.insert(
            ("spec.file.matchDirectories".to_string(), 0),
            vec!["why x".to_string()],
        );
        c.insert(
            ("spec.file.matchPaths".to_string(), 0),
            vec!["evil\nspec: {}".to_string()],
        );
        let out = insert_comments(yaml, &c);
        assert!(
            out.contains("    # evil\\nspec: {}\n    - path: /a\n"),
            "{out}"
        );
        assert!(out.contains("    # why x\n    - dir: /x/\n"), "{out}");
        assert!(out.contains("    # why y\n    - dir: /y/\n"), "{out}");
        let a: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        let b: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(a, b);
    }
}
