//! `recommend --hardening`: picking policies of our library (`policies/index.yaml`) for a
//! workload, from what it was seen doing.
//!
//! Per index entry: **proposed** when a `relevant_when` trigger matches the workload's
//! evidence (or it is a baseline, `{always: true}`); **flagged instead of applied** when a
//! `conflicts_when` trigger matches evidence other than `kubectl exec` sessions — the workload
//! needs what the policy would block (a web server that really runs `/bin/sh`). Proposed
//! policies are adapted: the placeholder selector becomes the workload's stable labels, the
//! namespace is set, placeholders in `fromSource` are filled, and with `extend_from_source` the
//! server binaries seen are added to every `fromSource` list. The index format is documented
//! at the top of `policies/index.yaml`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::policy::{load_policies, Action, Policy, PolicySpec, Selector, Source};

use super::draft::object_name;
use super::evidence::{Evidence, WorkloadId};
use super::noise::Noise;

/// Why the library could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HardeningError {
    /// The index is missing or malformed.
    #[error("{path}: {message}")]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A trigger of the index (see `policies/index.yaml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Matches every workload.
    #[serde(default)]
    pub always: bool,
    /// `process`, `file`, `network` or `capability`.
    #[serde(default)]
    pub op: Option<String>,
    /// The executed binary (process) or the path (file).
    #[serde(default)]
    pub path_glob: Option<String>,
    /// The acting process (the parent, for process events).
    #[serde(default)]
    pub source_glob: Option<String>,
    /// File accesses (one or a list; `modify` and `any` are aliases).
    #[serde(default)]
    pub access: Option<OneOrMany>,
    /// Network protocol.
    #[serde(default)]
    pub proto: Option<String>,
    /// Peer address or socket path.
    #[serde(default)]
    pub remote_glob: Option<String>,
    /// Capability, KubeArmor's name.
    #[serde(default)]
    pub capability: Option<String>,
}

/// One value or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// A list.
    Many(Vec<String>),
}

/// A placeholder in `fromSource`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placeholder {
    /// The token path.
    pub token: String,
    /// Triggers whose acting executables fill it.
    pub fill_from: Vec<Trigger>,
    /// `drop_rule` (default) or `keep`.
    #[serde(default)]
    pub when_empty: Option<String>,
}

/// An index entry.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    /// `metadata.name`.
    pub name: String,
    /// Path relative to the library.
    pub file: String,
    /// Category.
    pub category: String,
    /// Severity.
    pub severity: u8,
    /// One-line summary.
    pub summary: String,
    /// Triggers that make it relevant.
    pub relevant_when: Vec<Trigger>,
    /// Triggers that turn it into a flag.
    #[serde(default)]
    pub conflicts_when: Vec<Trigger>,
    /// Append matched binaries to every fromSource list.
    #[serde(default)]
    pub extend_from_source: bool,
    /// Placeholders.
    #[serde(default)]
    pub placeholders: Vec<Placeholder>,
    /// Caveats.
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct IndexFile {
    format: String,
    policies: Vec<Entry>,
}

/// The loaded library: index entries with their (validated) policies.
#[derive(Debug, Clone)]
pub struct Library {
    /// The library directory.
    pub root: PathBuf,
    /// Entries with their policy.
    pub entries: Vec<(Entry, Policy)>,
}

/// The index entries of a library's `index.yaml` text (triggers checked, policy files not
/// read): what [`super::suspicious`] classifies behaviour with.
pub fn index_entries(text: &str, path: &Path) -> Result<Vec<Entry>, HardeningError> {
    let err = |message: String| HardeningError::Index {
        path: path.to_path_buf(),
        message,
    };
    let index: IndexFile =
        serde_yaml::from_str(text).map_err(|e| err(format!("not a valid index: {e}")))?;
    if index.format != "karmor-harden-index/v1" {
        return Err(err(format!(
            "unknown format {:?} (expected karmor-harden-index/v1)",
            index.format
        )));
    }
    for entry in &index.policies {
        for t in entry.relevant_when.iter().chain(&entry.conflicts_when) {
            t.compile()
                .map_err(|m| err(format!("policy {}: {m}", entry.name)))?;
        }
    }
    Ok(index.policies)
}

/// A compiled trigger, matched against single pieces of evidence.
pub struct TriggerMatcher(Compiled);

impl TriggerMatcher {
    /// Compiles a trigger.
    pub fn new(t: &Trigger) -> Result<TriggerMatcher, String> {
        t.compile().map(TriggerMatcher)
    }

    /// Whether this is a file trigger whose path glob matches everything (`/**`).
    pub fn matches_any_file(&self) -> bool {
        self.0.op.as_deref() == Some("file")
            && self.0.path.as_ref().is_none_or(|r| r.is_match("/x/y"))
            && self.0.path.as_ref().is_none_or(|r| r.is_match("/z"))
    }

    /// The op of the trigger.
    pub fn op(&self) -> Option<&str> {
        self.0.op.as_deref()
    }

    /// A process start of `exe` by `parent`.
    pub fn process(&self, exe: Option<&str>, parent: Option<&str>) -> bool {
        self.0.op.as_deref() == Some("process")
            && opt_match(&self.0.path, exe)
            && opt_match(&self.0.source, parent)
    }

    /// `actor` accessing `path` with `accesses`; `with_source` false ignores the trigger's
    /// source glob.
    pub fn file(&self, path: &str, accesses: &[String], actor: &str, with_source: bool) -> bool {
        self.0.op.as_deref() == Some("file")
            && opt_match(&self.0.path, Some(path))
            && self
                .0
                .access
                .as_ref()
                .is_none_or(|a| access_matches(a, accesses))
            && (!with_source || opt_match(&self.0.source, Some(actor)))
    }

    /// A socket of `proto` to `remote` by `actor`.
    pub fn network(&self, proto: Option<&str>, remote: Option<&str>, actor: Option<&str>) -> bool {
        self.0.op.as_deref() == Some("network")
            && self.0.proto.as_deref().is_none_or(|p| proto == Some(p))
            && opt_match(&self.0.remote, remote)
            && opt_match(&self.0.source, actor)
    }

    /// A capability (`CAP_NET_RAW` or `net_raw`) used by `actor`.
    pub fn capability(&self, capability: &str, actor: Option<&str>) -> bool {
        let lower = capability.to_ascii_lowercase();
        let name = lower.strip_prefix("cap_").unwrap_or(&lower);
        self.0.op.as_deref() == Some("capability")
            && self.0.capability.as_deref().is_none_or(|w| w == name)
            && opt_match(&self.0.source, actor)
    }
}

impl Library {
    /// Loads `root/index.yaml` and every policy it lists.
    pub fn load(root: &Path) -> Result<Library, HardeningError> {
        let path = root.join("index.yaml");
        let err = |message: String| HardeningError::Index {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| err(format!("cannot read: {e}")))?;
        let index: IndexFile =
            serde_yaml::from_str(&text).map_err(|e| err(format!("not a valid index: {e}")))?;
        if index.format != "karmor-harden-index/v1" {
            return Err(err(format!(
                "unknown format {:?} (expected karmor-harden-index/v1)",
                index.format
            )));
        }
        let mut entries = Vec::new();
        for entry in index.policies {
            let file = root.join(&entry.file);
            let mut policies = load_policies(&file)
                .map_err(|e| err(format!("policy {} ({}): {e}", entry.name, entry.file)))?;
            if policies.len() != 1 {
                return Err(err(format!("{}: one policy per file expected", entry.file)));
            }
            for t in entry.relevant_when.iter().chain(&entry.conflicts_when) {
                t.compile()
                    .map_err(|m| err(format!("policy {}: {m}", entry.name)))?;
            }
            entries.push((entry, policies.remove(0)));
        }
        Ok(Library {
            root: root.to_path_buf(),
            entries,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Globs (globset semantics with literal_separator = true)

/// Translates an index glob to an anchored regex: `*` and `?` stop at `/`, `**` as a whole
/// component spans components, `[...]`/`[!...]` classes, `{a,b}` alternatives, `\` escapes.
pub fn glob_regex(glob: &str) -> Result<Regex, String> {
    let chars: Vec<char> = glob.chars().collect();
    let mut re = String::from("^");
    let mut i = 0;
    let mut in_brace = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let start = i == 0 || chars[i - 1] == '/';
                let end = i + 2 == chars.len() || chars[i + 2] == '/';
                if start && end {
                    if i + 2 == chars.len() {
                        re.push_str(".*");
                        i += 2;
                    } else {
                        // `**/`: zero or more whole components.
                        re.push_str("(?:[^/]*/)*");
                        i += 3;
                    }
                } else {
                    re.push_str("[^/]*");
                    i += 2;
                }
                continue;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&x| x == ']')
                    .map(|p| p + i + 1)
                    .ok_or_else(|| format!("glob {glob:?}: unclosed ["))?;
                let mut class: String = chars[i + 1..close].iter().collect();
                if let Some(rest) = class.strip_prefix('!') {
                    class = format!("^{rest}");
                }
                re.push('[');
                re.push_str(&class.replace('\\', "\\\\"));
                re.push(']');
                i = close + 1;
                continue;
            }
            '{' if !in_brace => {
                in_brace = true;
                re.push_str("(?:");
            }
            ',' if in_brace => re.push('|'),
            '}' if in_brace => {
                in_brace = false;
                re.push(')');
            }
            '\\' => {
                let next = chars
                    .get(i + 1)
                    .ok_or_else(|| format!("glob {glob:?}: dangling \\"))?;
                re.push_str(&regex::escape(&next.to_string()));
                i += 2;
                continue;
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
        i += 1;
    }
    if in_brace {
        return Err(format!("glob {glob:?}: unclosed {{"));
    }
    re.push('$');
    Regex::new(&re).map_err(|e| format!("glob {glob:?}: {e}"))
}

struct Compiled {
    op: Option<String>,
    always: bool,
    path: Option<Regex>,
    source: Option<Regex>,
    access: Option<Vec<String>>,
    proto: Option<String>,
    remote: Option<Regex>,
    capability: Option<String>,
}

impl Trigger {
    fn compile(&self) -> Result<Compiled, String> {
        let g = |o: &Option<String>| o.as_deref().map(glob_regex).transpose();
        Ok(Compiled {
            op: self.op.clone(),
            always: self.always,
            path: g(&self.path_glob)?,
            source: g(&self.source_glob)?,
            access: self.access.as_ref().map(|a| match a {
                OneOrMany::One(s) => vec![s.clone()],
                OneOrMany::Many(v) => v.clone(),
            }),
            proto: self.proto.clone(),
            remote: g(&self.remote_glob)?,
            capability: self.capability.as_ref().map(|c| c.to_ascii_lowercase()),
        })
    }
}

fn access_matches(wanted: &[String], seen: &[String]) -> bool {
    wanted.iter().any(|w| match w.as_str() {
        "any" => true,
        "modify" => seen.iter().any(|s| s != "read" && s != "exec"),
        w => seen.iter().any(|s| s == w),
    })
}

fn opt_match(re: &Option<Regex>, v: Option<&str>) -> bool {
    match re {
        None => true,
        Some(r) => v.is_some_and(|v| r.is_match(v)),
    }
}

/// One piece of evidence that matched a trigger: a readable line, its tag and the acting
/// executable (for placeholders) or executed binary (for `extend_from_source`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Hit {
    text: String,
    tag: Option<Noise>,
    actor: Option<String>,
    binary: Option<String>,
}

fn hits(t: &Compiled, ev: &Evidence) -> Vec<Hit> {
    let mut out = BTreeSet::new();
    match t.op.as_deref() {
        Some("process") => {
            for p in &ev.processes {
                if opt_match(&t.path, p.process.as_deref())
                    && opt_match(&t.source, p.parent.as_deref())
                {
                    out.insert(Hit {
                        text: format!(
                            "{} started {}",
                            p.parent.as_deref().unwrap_or("?"),
                            p.process.as_deref().unwrap_or("?")
                        ),
                        tag: p.tag,
                        actor: p.parent.clone(),
                        binary: p.process.clone(),
                    });
                }
            }
        }
        Some("file") => {
            for f in &ev.files {
                if !opt_match(&t.path, Some(&f.path)) {
                    continue;
                }
                if let Some(a) = &t.access {
                    if !access_matches(a, &f.accesses) {
                        continue;
                    }
                }
                for p in &f.processes {
                    if opt_match(&t.source, Some(p)) {
                        out.insert(Hit {
                            text: format!("{p} {} {}", f.accesses.join("/"), f.path),
                            tag: f.tag,
                            actor: Some(p.clone()),
                            binary: None,
                        });
                    }
                }
            }
        }
        Some("network") => {
            for n in &ev.network {
                let proto_ok = t
                    .proto
                    .as_deref()
                    .is_none_or(|p| n.proto.as_deref() == Some(p));
                if proto_ok
                    && opt_match(&t.remote, n.remote_addr.as_deref())
                    && opt_match(&t.source, n.process.as_deref())
                {
                    out.insert(Hit {
                        text: format!(
                            "{} {} {} {}",
                            n.process.as_deref().unwrap_or("?"),
                            n.direction.as_deref().unwrap_or("?"),
                            n.proto.as_deref().unwrap_or("?"),
                            n.remote_addr.as_deref().unwrap_or("")
                        ),
                        tag: n.tag,
                        actor: n.process.clone(),
                        binary: None,
                    });
                }
            }
        }
        Some("capability") => {
            for c in &ev.capabilities {
                let lower = c.capability.to_ascii_lowercase();
                let name = lower.strip_prefix("cap_").unwrap_or(&lower);
                if t.capability.as_deref().is_none_or(|w| w == name)
                    && opt_match(&t.source, c.process.as_deref())
                {
                    out.insert(Hit {
                        text: format!(
                            "{} used CAP_{}",
                            c.process.as_deref().unwrap_or("?"),
                            name.to_uppercase()
                        ),
                        tag: c.tag,
                        actor: c.process.clone(),
                        binary: None,
                    });
                }
            }
        }
        _ => {}
    }
    out.into_iter().collect()
}

/// What happened to one library policy for one workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PickStatus {
    /// Adapted and emitted.
    Proposed,
    /// Not emitted: the workload needs what it would block or audit.
    Flagged,
    /// Not emitted for another reason (see the reasons).
    Skipped,
}

/// One library policy considered for one workload.
#[derive(Debug, Clone, Serialize)]
pub struct Pick {
    /// Library name.
    pub name: String,
    /// Library file.
    pub file: String,
    /// One-line summary.
    pub summary: String,
    /// Severity.
    pub severity: u8,
    /// The outcome.
    pub status: PickStatus,
    /// Why it was proposed, flagged or skipped.
    pub reasons: Vec<String>,
    /// `kubectl exec` evidence the policy would stop (listed, not a conflict).
    pub exec_evidence: Vec<String>,
    /// Caveats from the index.
    pub notes: Vec<String>,
    /// The adapted policy (proposed only).
    pub policy: Option<Policy>,
}

const MAX_LISTED: usize = 5;

fn listed(hits: &[Hit]) -> String {
    let mut s: Vec<String> = hits
        .iter()
        .take(MAX_LISTED)
        .map(|h| h.text.clone())
        .collect();
    if hits.len() > MAX_LISTED {
        s.push(format!("… {} more", hits.len() - MAX_LISTED));
    }
    s.join("; ")
}

/// Every `fromSource` list of a spec.
fn from_source_lists(spec: &mut PolicySpec) -> Vec<&mut Vec<Source>> {
    let mut v: Vec<&mut Vec<Source>> = Vec::new();
    if let Some(p) = spec.process.as_mut() {
        v.extend(p.match_paths.iter_mut().map(|r| &mut r.from_source));
        v.extend(p.match_directories.iter_mut().map(|r| &mut r.from_source));
    }
    if let Some(f) = spec.file.as_mut() {
        v.extend(f.match_paths.iter_mut().map(|r| &mut r.from_source));
        v.extend(f.match_directories.iter_mut().map(|r| &mut r.from_source));
    }
    if let Some(n) = spec.network.as_mut() {
        v.extend(n.match_protocols.iter_mut().map(|r| &mut r.from_source));
        v.extend(n.match_dns_queries.iter_mut().map(|r| &mut r.from_source));
    }
    if let Some(c) = spec.capabilities.as_mut() {
        v.extend(c.match_capabilities.iter_mut().map(|r| &mut r.from_source));
    }
    v
}

fn has_token(fs: &[Source], token: &str) -> bool {
    fs.iter().any(|s| s.path.as_deref() == Some(token))
}

/// Removes rules whose fromSource holds `token` and nothing else.
fn drop_token_rules(spec: &mut PolicySpec, token: &str) {
    let only = |fs: &Vec<Source>| {
        has_token(fs, token) && fs.iter().all(|s| s.path.as_deref() == Some(token))
    };
    if let Some(p) = spec.process.as_mut() {
        p.match_paths.retain(|r| !only(&r.from_source));
        p.match_directories.retain(|r| !only(&r.from_source));
    }
    if let Some(f) = spec.file.as_mut() {
        f.match_paths.retain(|r| !only(&r.from_source));
        f.match_directories.retain(|r| !only(&r.from_source));
    }
    if let Some(n) = spec.network.as_mut() {
        n.match_protocols.retain(|r| !only(&r.from_source));
        n.match_dns_queries.retain(|r| !only(&r.from_source));
    }
    if let Some(c) = spec.capabilities.as_mut() {
        c.match_capabilities.retain(|r| !only(&r.from_source));
    }
}

/// Turns every Block into Audit (the `--action Audit` trial mode).
fn soften(spec: &mut PolicySpec) {
    let s = |a: &mut Option<Action>| {
        if *a == Some(Action::Block) {
            *a = Some(Action::Audit);
        }
    };
    s(&mut spec.action);
    if let Some(p) = spec.process.as_mut() {
        s(&mut p.action);
        p.match_paths.iter_mut().for_each(|r| s(&mut r.action));
        p.match_directories
            .iter_mut()
            .for_each(|r| s(&mut r.action));
        p.match_patterns.iter_mut().for_each(|r| s(&mut r.action));
    }
    if let Some(f) = spec.file.as_mut() {
        s(&mut f.action);
        f.match_paths.iter_mut().for_each(|r| s(&mut r.action));
        f.match_directories
            .iter_mut()
            .for_each(|r| s(&mut r.action));
        f.match_patterns.iter_mut().for_each(|r| s(&mut r.action));
    }
    if let Some(n) = spec.network.as_mut() {
        s(&mut n.action);
        n.match_protocols.iter_mut().for_each(|r| s(&mut r.action));
        n.match_dns_queries
            .iter_mut()
            .for_each(|r| s(&mut r.action));
    }
    if let Some(c) = spec.capabilities.as_mut() {
        s(&mut c.action);
        c.match_capabilities
            .iter_mut()
            .for_each(|r| s(&mut r.action));
    }
}

/// What the caller drafts beside the hardening policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickContext {
    /// The requested action.
    pub action: Action,
    /// Whether an allow-list draft is emitted for the same workload.
    pub allow_draft: bool,
}

/// Considers every library policy for one container workload.
pub fn pick(
    lib: &Library,
    id: &WorkloadId,
    ev: &Evidence,
    labels: &BTreeMap<String, String>,
    ctx: PickContext,
) -> Vec<Pick> {
    let mut out = Vec::new();
    for (entry, policy) in &lib.entries {
        let mut reasons = Vec::new();
        let mut relevant_binaries: BTreeSet<String> = BTreeSet::new();
        let mut relevant = false;
        for t in &entry.relevant_when {
            let Ok(c) = t.compile() else { continue };
            if c.always {
                relevant = true;
                reasons.push("baseline: proposed for every workload".to_string());
                continue;
            }
            let h = hits(&c, ev);
            if !h.is_empty() {
                relevant = true;
                reasons.push(format!("relevant: {}", listed(&h)));
                if c.op.as_deref() == Some("process") {
                    relevant_binaries.extend(h.iter().filter_map(|x| x.binary.clone()));
                }
            }
        }
        if !relevant {
            continue;
        }
        let mut conflicts = Vec::new();
        let mut exec_evidence = Vec::new();
        let compiled_conflicts: Vec<Compiled> = entry
            .conflicts_when
            .iter()
            .filter_map(|t| t.compile().ok())
            .collect();
        for c in &compiled_conflicts {
            for h in hits(c, ev) {
                if h.tag == Some(Noise::Exec) {
                    exec_evidence.push(h.text);
                } else {
                    conflicts.push(h);
                }
            }
        }
        let mut pick = Pick {
            name: entry.name.clone(),
            file: entry.file.clone(),
            summary: entry.summary.clone(),
            severity: entry.severity,
            status: PickStatus::Proposed,
            reasons,
            exec_evidence,
            notes: entry.notes.clone(),
            policy: None,
        };
        if !conflicts.is_empty() {
            pick.status = PickStatus::Flagged;
            pick.reasons.push(format!(
                "flagged, not applied: the workload was seen doing what it would block or audit: {}",
                listed(&conflicts)
            ));
            out.push(pick);
            continue;
        }
        let mut p = policy.clone();
        let mut skip = None;
        for ph in &entry.placeholders {
            let mut fill: BTreeSet<String> = BTreeSet::new();
            for t in &ph.fill_from {
                let Ok(c) = t.compile() else { continue };
                fill.extend(hits(&c, ev).into_iter().filter_map(|h| h.actor));
            }
            let conflicting: BTreeSet<String> = fill
                .iter()
                .filter(|exe| {
                    compiled_conflicts
                        .iter()
                        .any(|c| opt_match(&c.source, Some(exe)) && c.source.is_some())
                })
                .cloned()
                .collect();
            if !conflicting.is_empty() {
                pick.reasons.push(format!(
                    "left out of {}: {} (they match a conflict trigger)",
                    ph.token,
                    conflicting.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            let real: Vec<String> = fill.difference(&conflicting).cloned().collect();
            if real.is_empty() {
                match ph.when_empty.as_deref() {
                    Some("keep") => {}
                    _ => drop_token_rules(&mut p.spec, &ph.token),
                }
                pick.reasons
                    .push(format!("{}: no binary seen, its rules dropped", ph.token));
            } else {
                pick.reasons
                    .push(format!("{} filled with {}", ph.token, real.join(", ")));
            }
            for fs in from_source_lists(&mut p.spec) {
                if has_token(fs, &ph.token) {
                    fs.retain(|s| s.path.as_deref() != Some(ph.token.as_str()));
                    for r in &real {
                        fs.push(Source::path(r.clone()));
                    }
                }
            }
        }
        if entry.extend_from_source && !relevant_binaries.is_empty() {
            let added: Vec<String> = relevant_binaries.iter().cloned().collect();
            for fs in from_source_lists(&mut p.spec) {
                if fs.is_empty() {
                    continue;
                }
                for b in &added {
                    if !fs.iter().any(|s| s.path.as_deref() == Some(b.as_str())) {
                        fs.push(Source::path(b.clone()));
                    }
                }
            }
            pick.reasons
                .push(format!("fromSource extended with {}", added.join(", ")));
        }
        if ctx.allow_draft && p.spec.action == Some(Action::Allow) {
            skip = Some(
                "not emitted beside the allow-list draft: its allow-all rules would undo the draft; the draft already allows only the reads that were seen"
                    .to_string(),
            );
        }
        if !p.spec.has_rules() {
            skip = Some("nothing left after filling placeholders".into());
        }
        if let Some(why) = skip {
            pick.status = PickStatus::Skipped;
            pick.reasons.push(why);
            out.push(pick);
            continue;
        }
        if ctx.action == Action::Audit {
            soften(&mut p.spec);
            pick.reasons
                .push("Block rules turned into Audit (--action Audit)".into());
        }
        p.metadata.name = object_name(&[&entry.name, &id.name]);
        p.metadata.namespace = id.namespace.clone();
        p.spec.selector = Some(Selector {
            match_labels: labels.clone(),
            ..Selector::default()
        });
        pick.policy = Some(p);
        out.push(pick);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_globset_semantics() {
        let m = |g: &str, s: &str| glob_regex(g).unwrap().is_match(s);
        assert!(m("/{bin,usr/bin}/{sh,bash}", "/usr/bin/bash"));
        assert!(!m("/{bin,usr/bin}/{sh,bash}", "/usr/local/bin/bash"));
        assert!(m("**/{nginx,apache2}", "/usr/sbin/apache2"));
        assert!(m("**/kubectl", "kubectl") || m("**/kubectl", "/kubectl"));
        assert!(m("/etc/**", "/etc/a/b/c"));
        assert!(m("/a/**/b", "/a/b") && m("/a/**/b", "/a/x/y/b"));
        assert!(!m("/tmp/*", "/tmp/a/b"));
        assert!(m("**/{php[0-9]*,php}", "/usr/local/bin/php"));
        assert!(m("**/{php[0-9]*,php}", "/usr/bin/php8.2"));
        assert!(m("/etc/sh[!x]dow", "/etc/shadow"));
        assert!(glob_regex("/a/{b").is_err());
    }
}
