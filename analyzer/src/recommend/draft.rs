//! Drafting one policy from one workload's evidence.
//!
//! - **Selector**: the labels every pod of the workload carries, minus labels that change
//!   with each rollout or replica (`pod-template-hash`, `controller-revision-hash`,
//!   `statefulset.kubernetes.io/pod-name`, …). Hosts get a `KubeArmorHostPolicy` selecting
//!   `kubernetes.io/hostname`, or `kubearmor.io/hostname` for a host that ran no pods
//!   ([`host_selector`]). A container no pod holds gets a `KubeArmorPolicy` without a
//!   namespace selecting `kubearmor.io/container.name` alone, as KubeArmor selects such
//!   containers (it refuses that label beside others in that mode): the name, or for replicas
//!   (`web-*`) the regular expression `web-[0-9]+$` ([`container_selector`]).
//! - **Processes**: one `matchPaths` rule per executable, `fromSource` = the parents seen
//!   (left out when a parent is the container runtime, which is outside the container).
//! - **Files**: exact paths, `readOnly` where the acting processes only read; directories and
//!   patterns where [`super::generalise`] generalised, **per rule** (per acting process and
//!   access kind, counting only that rule's own paths; a writable directory is the deepest one
//!   covering its writes), each with exactly what it absorbed and why.
//! - **Network**: one `matchProtocols` rule per protocol, `fromSource` = the processes.
//! - **Capabilities**: one rule per capability used, `fromSource` = the processes.
//! - **System calls** (`syscalls.matchSyscalls`): per set of calls, the executables that made
//!   exactly that set as `fromSource` (names lower case without `SYS_`, as the CRD lists
//!   them). KubeArmor only audits system calls, whatever the policy's action: each matching
//!   call raises an alert and none is denied (the rule's comment says so; `syscall_rules:
//!   false` leaves them out).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::policy::names::{CAPABILITIES, PROTOCOLS, SYSCALLS};
use crate::policy::{
    Action, CapabilityRule, CapabilityRules, FileDirectoryRule, FilePathRule, FilePatternRule,
    FileRules, NetworkRules, NodeSelector, Policy, PolicyKind, ProcessPathRule, ProcessPatternRule,
    ProcessRules, ProtocolRule, Selector, Source, SyscallRule, SyscallRules, SyscallSource,
};

use super::evidence::{Evidence, WorkloadId};
use super::generalise::{
    glob_matches, place_paths, place_paths_except, segment_pattern, Bound, GeneraliseOptions,
    Target, MAX_PATH_LEN,
};
use super::noise::{is_runtime, Include, Noise};
use super::report::when;

/// Labels that differ between rollouts or replicas of one workload.
pub const UNSTABLE_LABELS: &[&str] = &[
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "pod-template-generation",
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
];

/// Labels that differ between the runs of a CronJob.
const CRONJOB_UNSTABLE: &[&str] = &["job-name", "batch.kubernetes.io/job-name"];

/// Most "not expressible" lines kept per draft.
const MAX_NOTES: usize = 20;

/// How to draft.
#[derive(Debug, Clone)]
pub struct DraftOptions {
    /// `Allow` (least-permissive allow-list) or `Audit`.
    pub action: Action,
    /// Noise to keep.
    pub include: Include,
    /// Directory thresholds.
    pub generalise: GeneraliseOptions,
    /// Upper bound on the number of rules.
    pub max_rules: Option<usize>,
    /// Nodes known to run Kubernetes ([`super::evidence::kubernetes_nodes`]); `None`: every
    /// node is taken for a Kubernetes node.
    pub kubernetes_nodes: Option<BTreeSet<String>>,
    /// Draft `syscalls` rules from the recorded system calls (audit-only in KubeArmor).
    pub syscall_rules: bool,
}

impl Default for DraftOptions {
    fn default() -> Self {
        DraftOptions {
            action: Action::Allow,
            include: Include::default(),
            generalise: GeneraliseOptions::default(),
            max_rules: None,
            kubernetes_nodes: None,
            syscall_rules: true,
        }
    }
}

/// A generalised rule: what it absorbed and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generalisation {
    /// `process` or `file`.
    pub section: &'static str,
    /// `matchDirectories` or `matchPatterns`.
    pub list: &'static str,
    /// Index of the rule in that list.
    pub index: usize,
    /// The directory or pattern.
    pub target: String,
    /// Whether the rule is read-only.
    pub read_only: bool,
    /// The concrete paths it stands for.
    pub absorbed: Vec<String>,
    /// Why.
    pub why: Vec<String>,
}

/// Evidence left out of the draft, per tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Excluded {
    /// Process instances.
    pub processes: usize,
    /// Executables with the number of times each was started.
    pub executables: BTreeMap<String, u64>,
    /// File paths touched.
    pub files: usize,
    /// Network rows.
    pub network: usize,
    /// First seen (ns).
    pub first_ns: Option<i64>,
    /// Last seen (ns).
    pub last_ns: Option<i64>,
}

/// A comment on one rule of a draft: why a rule is there when it is not the application's
/// own behaviour (a probe, a start-up helper).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleNote {
    /// `process`, `file`, `network` or `capabilities`.
    pub section: &'static str,
    /// `matchPaths`, …
    pub list: &'static str,
    /// Index of the rule in that list.
    pub index: usize,
    /// The comment lines.
    pub lines: Vec<String>,
}

/// The comment of a process rule whose starts were probes or start-up helpers.
fn tag_note(tags: &BTreeMap<Option<Noise>, Excluded>) -> Option<Vec<String>> {
    if tags.contains_key(&None) {
        // The application itself runs it too: the rule needs no excuse.
        return None;
    }
    let mut lines = Vec::new();
    for (tag, e) in tags {
        let Some(tag) = tag else { continue };
        let span = match (e.first_ns, e.last_ns) {
            (Some(a), Some(b)) => format!(", {} .. {}", when(a), when(b)),
            _ => String::new(),
        };
        let why = match tag {
            Noise::Probe => "kept: the kubelet runs it at every probe, and a pod whose probe is denied is restarted; --exclude probes leaves it out",
            Noise::Startup => "kept: the container runs it at every start; --exclude startup leaves it out",
            Noise::Exec => "kept by --include exec",
        };
        lines.push(format!(
            "{}: {} start{}{span}; {why}",
            tag.as_str(),
            e.processes,
            if e.processes == 1 { "" } else { "s" }
        ));
    }
    (!lines.is_empty()).then_some(lines)
}

/// Rule counts of a draft.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RuleCounts {
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
}

impl RuleCounts {
    /// All rules.
    pub fn total(&self) -> usize {
        self.process + self.file + self.network + self.capabilities + self.syscalls
    }
}

/// The comment on a draft's first system-call rule.
pub const SYSCALL_RULE_NOTE: &str = "KubeArmor only audits system calls, whatever the action: each call these rules match raises an alert, none is denied (recommend --syscall-rules none leaves them out; recommend --seccomp drafts an enforcing seccomp profile)";

/// A drafted policy and everything needed to explain it.
#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    /// The workload (or node).
    pub workload: WorkloadId,
    /// The policy; `None` when no policy can be drafted (no stable labels, nothing seen).
    pub policy: Option<Policy>,
    /// Rule counts.
    pub rules: RuleCounts,
    /// Generalised rules.
    pub generalisations: Vec<Generalisation>,
    /// Noise left out, per tag.
    pub excluded: BTreeMap<Noise, Excluded>,
    /// Noise kept because `--include` asked for it, per tag.
    pub included_noise: BTreeMap<Noise, Excluded>,
    /// Comments on rules kept for probes and start-up helpers.
    pub rule_notes: Vec<RuleNote>,
    /// Behaviour held out as suspicious (see [`super::suspicious`]).
    pub held_out: Vec<super::suspicious::HeldOut>,
    /// How permissive the policy is (see [`super::permissive`]).
    pub permissiveness: Option<super::permissive::Permissiveness>,
    /// Behaviour that no rule can express, with the reason.
    pub not_expressible: Vec<String>,
    /// Warnings (selector overlaps, rule bound not reached, …).
    pub warnings: Vec<String>,
    /// Pods seen.
    pub pods: Vec<String>,
    /// Nodes seen.
    pub nodes: Vec<String>,
    /// Raw events in scope.
    pub events: u64,
    /// Rows in scope.
    pub rows: u64,
    /// First behaviour seen (ns).
    pub first_ns: i64,
    /// Last behaviour seen (ns).
    pub last_ns: i64,
}

/// The stable labels of a workload: on every pod, and not rollout- or replica-specific.
pub fn stable_labels(id: &WorkloadId, ev: &Evidence) -> BTreeMap<String, String> {
    let mut common: Option<BTreeSet<&String>> = None;
    for labels in ev.pods.values() {
        let set: BTreeSet<&String> = labels.iter().collect();
        common = Some(match common {
            None => set,
            Some(c) => c.intersection(&set).copied().collect(),
        });
    }
    common
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| {
            let per_run = id.kind == "CronJob" && CRONJOB_UNSTABLE.contains(k);
            !(UNSTABLE_LABELS.contains(k) || per_run)
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The label KubeArmor adds to every container's identities, and the only one its policies
/// may use to select a container that no pod holds.
pub const CONTAINER_NAME_LABEL: &str = "kubearmor.io/container.name";

/// The `kubearmor.io/container.name` value that selects a `Container` workload: its name, or
/// for replicas (`web-*`) the regular expression `web-[0-9]+$` (KubeArmor matches the value as
/// a POSIX regular expression against `kubearmor.io/container.name=NAME`).
pub fn container_selector(name: &str) -> String {
    match name.strip_suffix('*') {
        Some(base) => format!("{base}[0-9]+$"),
        None => name.to_string(),
    }
}

/// The node selector of a host policy for `node`: `kubernetes.io/hostname` on a Kubernetes
/// node; `kubearmor.io/hostname` on a host without Kubernetes, the only label KubeArmor gives
/// such a host (it reads `kubernetes.io/` labels only in Kubernetes).
pub fn host_selector(node: &str, kubernetes: bool) -> NodeSelector {
    let key = if kubernetes {
        "kubernetes.io/hostname"
    } else {
        "kubearmor.io/hostname"
    };
    NodeSelector {
        match_labels: [(key.to_string(), node.to_string())].into(),
    }
}

/// The labels a policy of this workload selects it by: `kubearmor.io/container.name` for a
/// container no pod holds, the stable labels of its pods otherwise.
pub fn selector_labels(id: &WorkloadId, ev: &Evidence) -> BTreeMap<String, String> {
    if id.is_container() {
        [(
            CONTAINER_NAME_LABEL.to_string(),
            container_selector(&id.name),
        )]
        .into()
    } else {
        stable_labels(id, ev)
    }
}

/// A name that the API server accepts: lower case, `[a-z0-9-.]`, at most 253 characters.
pub fn object_name(parts: &[&str]) -> String {
    let raw = parts.join("-").to_ascii_lowercase();
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(253);
    let s = s.trim_matches(|c: char| c == '-' || c == '.').to_string();
    if s.is_empty() {
        "karmor-draft".into()
    } else {
        s
    }
}

fn valid_source(p: &str) -> bool {
    p.starts_with('/') && !p.ends_with('/') && p.len() <= MAX_PATH_LEN
}

/// `fromSource` for a set of executables, or why there is none.
fn sources(exes: &BTreeSet<String>) -> Result<Vec<Source>, String> {
    if exes.is_empty() || exes.contains("") {
        return Err("the acting process is unknown".into());
    }
    if let Some(bad) = exes.iter().find(|e| !valid_source(e)) {
        return Err(format!("{bad:?} cannot be a fromSource path"));
    }
    Ok(exes.iter().map(Source::path).collect())
}

fn note_excluded(
    map: &mut BTreeMap<Noise, Excluded>,
    tag: Noise,
    first: i64,
    last: i64,
) -> &mut Excluded {
    let e = map.entry(tag).or_default();
    e.first_ns = Some(e.first_ns.map_or(first, |f| f.min(first)));
    e.last_ns = Some(e.last_ns.map_or(last, |l| l.max(last)));
    e
}

/// Drafts the policy of one workload.
pub fn draft(id: &WorkloadId, ev: &Evidence, opts: &DraftOptions) -> Draft {
    let host = id.is_host();
    let mut d = Draft {
        workload: id.clone(),
        policy: None,
        rules: RuleCounts::default(),
        generalisations: Vec::new(),
        excluded: BTreeMap::new(),
        included_noise: BTreeMap::new(),
        rule_notes: Vec::new(),
        held_out: Vec::new(),
        permissiveness: None,
        not_expressible: Vec::new(),
        warnings: Vec::new(),
        pods: ev.pods.keys().cloned().collect(),
        nodes: ev.nodes.iter().cloned().collect(),
        events: ev.events,
        rows: ev.rows,
        first_ns: ev.first_ns,
        last_ns: ev.last_ns,
    };
    let keep = |tag: Option<Noise>| opts.include.keeps(tag);

    // Noise accounting.
    for p in &ev.processes {
        if let Some(tag) = p.tag {
            let map = if keep(Some(tag)) {
                &mut d.included_noise
            } else {
                &mut d.excluded
            };
            let e = note_excluded(map, tag, p.first_ns, p.last_ns);
            e.processes += 1;
            *e.executables
                .entry(p.process.clone().unwrap_or_else(|| "?".into()))
                .or_default() += 1;
        }
    }
    for f in &ev.files {
        if let Some(tag) = f.tag {
            let map = if keep(Some(tag)) {
                &mut d.included_noise
            } else {
                &mut d.excluded
            };
            note_excluded(map, tag, f.first_ns, f.last_ns).files += 1;
        }
    }
    for n in &ev.network {
        if let Some(tag) = n.tag {
            let map = if keep(Some(tag)) {
                &mut d.included_noise
            } else {
                &mut d.excluded
            };
            map.entry(tag).or_default().network += 1;
        }
    }

    // Processes: executable -> parents, and the noise tags of its starts.
    let mut procs: BTreeMap<String, BTreeSet<Option<String>>> = BTreeMap::new();
    let mut proc_tags: BTreeMap<String, BTreeMap<Option<Noise>, Excluded>> = BTreeMap::new();
    for p in ev.processes.iter().filter(|p| keep(p.tag)) {
        match &p.process {
            Some(exe) if exe.starts_with('/') && exe.len() <= MAX_PATH_LEN => {
                procs
                    .entry(exe.clone())
                    .or_default()
                    .insert(p.parent.clone());
                let t = proc_tags.entry(exe.clone()).or_default();
                let e = t.entry(p.tag).or_default();
                e.processes += 1;
                e.first_ns = Some(e.first_ns.map_or(p.first_ns, |f| f.min(p.first_ns)));
                e.last_ns = Some(e.last_ns.map_or(p.last_ns, |l| l.max(p.last_ns)));
            }
            Some(exe) => d.not_expressible.push(format!(
                "process {exe:?}: not an absolute path of at most {MAX_PATH_LEN} characters"
            )),
            None => {}
        }
    }
    let mut process = ProcessRules::default();
    let mut proc_patterns: BTreeMap<String, (BTreeSet<String>, Vec<String>)> = BTreeMap::new();
    for (exe, parents) in &procs {
        let (shape, reasons) = segment_pattern(exe);
        if shape != *exe {
            let e = proc_patterns.entry(shape).or_default();
            e.0.insert(exe.clone());
            for r in reasons {
                if !e.1.iter().any(|w| w.contains(r.text())) {
                    e.1.push(format!("{} became *", r.text()));
                }
            }
            continue;
        }
        let real: BTreeSet<String> = parents
            .iter()
            .flatten()
            .filter(|p| !is_runtime(p))
            .cloned()
            .collect();
        let from_runtime = parents.iter().any(|p| p.as_deref().is_none_or(is_runtime));
        let from_source = if from_runtime {
            Vec::new()
        } else {
            sources(&real).unwrap_or_default()
        };
        if let Some(lines) = proc_tags.get(exe).and_then(tag_note) {
            d.rule_notes.push(RuleNote {
                section: "process",
                list: "matchPaths",
                index: process.match_paths.len(),
                lines,
            });
        }
        process.match_paths.push(ProcessPathRule {
            path: Some(exe.clone()),
            from_source,
            ..ProcessPathRule::default()
        });
    }
    // Executables seen acting (files, network, capabilities) but never seen starting: the
    // collector started after them. Allowed to start from any parent, so that a restart of
    // the container is not blocked; the comment says so.
    let mut acting: BTreeSet<&str> = BTreeSet::new();
    acting.extend(
        ev.files
            .iter()
            .filter(|f| keep(f.tag))
            .flat_map(|f| f.processes.iter().map(String::as_str)),
    );
    acting.extend(
        ev.network
            .iter()
            .filter(|n| keep(n.tag))
            .filter_map(|n| n.process.as_deref()),
    );
    acting.extend(
        ev.capabilities
            .iter()
            .filter(|c| keep(c.tag))
            .filter_map(|c| c.process.as_deref()),
    );
    acting.extend(
        ev.syscalls
            .iter()
            .filter(|c| keep(c.tag))
            .filter_map(|c| c.process.as_deref()),
    );
    for exe in acting {
        let known = procs.contains_key(exe) || segment_pattern(exe).0 != exe;
        if known || !valid_source(exe) || is_runtime(exe) {
            continue;
        }
        d.generalisations.push(Generalisation {
            section: "process",
            list: "matchPaths",
            index: process.match_paths.len(),
            target: exe.to_string(),
            read_only: false,
            absorbed: vec![exe.to_string()],
            why: vec![
                "seen running (files, network, capabilities or system calls) but never seen starting, so its parent is unknown: any parent, so that a restart is not blocked".into(),
            ],
        });
        process.match_paths.push(ProcessPathRule {
            path: Some(exe.to_string()),
            ..ProcessPathRule::default()
        });
    }
    for (i, (pattern, (absorbed, mut why))) in proc_patterns.into_iter().enumerate() {
        why.push("matchPatterns have no fromSource: any parent".into());
        d.generalisations.push(Generalisation {
            section: "process",
            list: "matchPatterns",
            index: i,
            target: pattern.clone(),
            read_only: false,
            absorbed: absorbed.into_iter().collect(),
            why,
        });
        process.match_patterns.push(ProcessPatternRule {
            pattern,
            ..ProcessPatternRule::default()
        });
    }

    // Network: protocol -> processes.
    let mut protos: BTreeMap<String, (BTreeSet<String>, bool)> = BTreeMap::new();
    let mut other_protos: BTreeMap<String, u64> = BTreeMap::new();
    let mut unix_as_tcp = false;
    for n in ev.network.iter().filter(|n| keep(n.tag)) {
        let mut proto = n.proto.clone().unwrap_or_default();
        if proto == "unix" {
            // KubeArmor's BPF-LSM enforcer classifies unix stream sockets as tcp.
            unix_as_tcp = true;
            proto = "tcp".into();
        }
        if PROTOCOLS.contains(&proto.as_str()) && proto != "all" {
            let e = protos.entry(proto).or_default();
            match &n.process {
                Some(p) => {
                    e.0.insert(p.clone());
                }
                None => e.1 = true,
            }
        } else {
            *other_protos
                .entry(if proto.is_empty() {
                    "unknown".into()
                } else {
                    proto
                })
                .or_default() += n.count;
        }
    }
    if unix_as_tcp {
        d.not_expressible.push(
            "unix sockets: KubeArmor has no unix protocol rule; its enforcer matches unix stream sockets as tcp, so their processes are in the tcp rule".into(),
        );
    }
    for (proto, count) in other_protos {
        d.not_expressible.push(format!(
            "{proto} sockets ({count} events): KubeArmor network rules match socket protocols (tcp, udp, icmp, raw, …); {proto} sockets are not covered by them"
        ));
    }
    let mut network = NetworkRules::default();
    for (proto, (exes, unknown)) in protos {
        let from_source = if unknown {
            Err("a process is unknown".to_string())
        } else {
            sources(&exes)
        };
        match from_source {
            Ok(fs) => network.match_protocols.push(ProtocolRule {
                protocol: proto,
                from_source: fs,
                ..ProtocolRule::default()
            }),
            Err(why) if host => d.not_expressible.push(format!(
                "{proto}: host network rules need fromSource, and {why}"
            )),
            Err(_) => network.match_protocols.push(ProtocolRule {
                protocol: proto,
                ..ProtocolRule::default()
            }),
        }
    }

    // Capabilities.
    let mut caps: BTreeMap<String, (BTreeSet<String>, bool)> = BTreeMap::new();
    for c in ev.capabilities.iter().filter(|c| keep(c.tag)) {
        let lower = c.capability.trim().to_ascii_lowercase();
        let name = lower.strip_prefix("cap_").unwrap_or(&lower).to_string();
        if !CAPABILITIES.contains(&name.as_str()) {
            d.not_expressible.push(format!(
                "capability {:?}: not a name KubeArmor knows",
                c.capability
            ));
            continue;
        }
        let e = caps.entry(name).or_default();
        match &c.process {
            Some(p) => {
                e.0.insert(p.clone());
            }
            None => e.1 = true,
        }
    }
    let mut capabilities = CapabilityRules::default();
    for (cap, (exes, unknown)) in caps {
        let from_source = if unknown {
            Err("a process is unknown".to_string())
        } else {
            sources(&exes)
        };
        match from_source {
            Ok(fs) => capabilities.match_capabilities.push(CapabilityRule {
                capability: cap,
                from_source: fs,
                ..CapabilityRule::default()
            }),
            Err(why) if host => d.not_expressible.push(format!(
                "capability {cap}: host rules need fromSource, and {why}"
            )),
            Err(_) => capabilities.match_capabilities.push(CapabilityRule {
                capability: cap,
                ..CapabilityRule::default()
            }),
        }
    }

    // System calls: executable -> calls; executables with the same calls share a rule.
    let mut calls: BTreeMap<Option<String>, BTreeSet<String>> = BTreeMap::new();
    for sc in ev
        .syscalls
        .iter()
        .filter(|s| opts.syscall_rules && keep(s.tag))
    {
        let Some(name) = super::seccomp::normalise_syscall(&sc.syscall)
            .filter(|n| SYSCALLS.contains(&n.as_str()))
        else {
            d.not_expressible.push(format!(
                "system call {:?}: not a name KubeArmor's syscall rules accept",
                sc.syscall
            ));
            continue;
        };
        let exe = sc.process.clone().filter(|p| valid_source(p));
        calls.entry(exe).or_default().insert(name);
    }
    let mut by_set: BTreeMap<BTreeSet<String>, BTreeSet<Option<String>>> = BTreeMap::new();
    for (exe, set) in calls {
        by_set.entry(set).or_default().insert(exe);
    }
    let mut syscalls = SyscallRules::default();
    for (set, exes) in by_set {
        let known: Vec<SyscallSource> = exes
            .iter()
            .flatten()
            .map(|p| SyscallSource {
                path: Some(p.clone()),
                ..SyscallSource::default()
            })
            .collect();
        if !known.is_empty() {
            syscalls.match_syscalls.push(SyscallRule {
                syscalls: set.iter().cloned().collect(),
                from_source: known,
            });
        }
        if exes.contains(&None) {
            // The caller is unknown: the rule matches these calls from any executable.
            syscalls.match_syscalls.push(SyscallRule {
                syscalls: set.into_iter().collect(),
                from_source: Vec::new(),
            });
        }
    }
    if !syscalls.match_syscalls.is_empty() {
        d.rule_notes.push(RuleNote {
            section: "syscalls",
            list: "matchSyscalls",
            index: 0,
            lines: vec![SYSCALL_RULE_NOTE.to_string()],
        });
    }

    // Files: (path, writes) -> processes; then generalise.
    let mut files: BTreeMap<(String, bool), BTreeSet<&str>> = BTreeMap::new();
    for f in ev.files.iter().filter(|f| keep(f.tag)) {
        if !f.path.starts_with('/') || f.path.ends_with('/') && f.path.len() == 1 {
            d.not_expressible
                .push(format!("file {:?}: not an absolute path", f.path));
            continue;
        }
        let path = f.path.trim_end_matches('/').to_string();
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            path
        };
        files
            .entry((path, f.writes))
            .or_default()
            .extend(f.processes.iter().map(String::as_str));
    }
    let others = process.match_paths.len()
        + process.match_patterns.len()
        + network.match_protocols.len()
        + capabilities.match_capabilities.len();
    let file_budget = opts.max_rules.map(|m| Bound {
        targets: m.saturating_sub(others).max(1),
        max_rules: m,
    });
    let mut bound = file_budget;
    let (file, file_gens) = loop {
        let (file, gens) = file_rules(&files, &opts.generalise, bound);
        let n = file.match_paths.len() + file.match_directories.len() + file.match_patterns.len();
        // A target can need two rules (readers, writers): tighten until the draft fits.
        match bound {
            Some(b) if others + n > b.max_rules && b.targets > 1 => {
                let excess = others + n - b.max_rules;
                bound = Some(Bound {
                    targets: b.targets.saturating_sub(excess).max(1),
                    max_rules: b.max_rules,
                });
            }
            _ => break (file, gens),
        }
    };
    d.generalisations.extend(file_gens);

    // One line per distinct problem, at most MAX_NOTES of them.
    let mut seen = BTreeSet::new();
    d.not_expressible.retain(|n| seen.insert(n.clone()));
    if d.not_expressible.len() > MAX_NOTES {
        let more = d.not_expressible.len() - MAX_NOTES;
        d.not_expressible.truncate(MAX_NOTES);
        d.not_expressible.push(format!("… and {more} more"));
    }

    d.rules = RuleCounts {
        process: process.match_paths.len() + process.match_patterns.len(),
        file: file.match_paths.len() + file.match_directories.len() + file.match_patterns.len(),
        network: network.match_protocols.len(),
        capabilities: capabilities.match_capabilities.len(),
        syscalls: syscalls.match_syscalls.len(),
    };
    if let Some(max) = opts.max_rules {
        if d.rules.total() > max {
            d.warnings.push(format!(
                "{} rules: more than --max-rules {max} (process, network and capability rules are never merged, and depth-1 file directories only when needed)",
                d.rules.total()
            ));
        }
    }
    if d.rules.total() == 0 {
        d.warnings
            .push("nothing to allow: no behaviour left after excluding noise".into());
        return d;
    }

    let mut policy = if host {
        let mut p = Policy::new(
            PolicyKind::KubeArmorHostPolicy,
            object_name(&["karmor-host", &id.name]),
        );
        let kubernetes = opts
            .kubernetes_nodes
            .as_ref()
            .is_none_or(|k| k.contains(&id.name));
        p.spec.node_selector = Some(host_selector(&id.name, kubernetes));
        p
    } else if id.is_container() {
        let mut p = Policy::new(
            PolicyKind::KubeArmorPolicy,
            object_name(&["karmor-container", id.name.trim_end_matches('*')]),
        );
        p.spec.selector = Some(Selector {
            match_labels: selector_labels(id, ev),
            ..Selector::default()
        });
        p
    } else {
        let labels = stable_labels(id, ev);
        if labels.is_empty() {
            d.warnings.push(
                "no stable label is carried by every pod: add one (e.g. app=NAME) to the pod template; no policy drafted"
                    .into(),
            );
            return d;
        }
        let mut p = Policy::new(
            PolicyKind::KubeArmorPolicy,
            object_name(&["karmor", &id.kind, &id.name]),
        );
        p.metadata.namespace = id.namespace.clone();
        p.spec.selector = Some(Selector {
            match_labels: labels,
            ..Selector::default()
        });
        p
    };
    policy.spec.process = (d.rules.process > 0).then_some(process);
    policy.spec.file = (d.rules.file > 0).then_some(file);
    policy.spec.network = (d.rules.network > 0).then_some(network);
    policy.spec.capabilities = (d.rules.capabilities > 0).then_some(capabilities);
    policy.spec.syscalls = (d.rules.syscalls > 0).then_some(syscalls);
    policy.spec.action = Some(opts.action);
    d.policy = Some(policy);
    d
}

/// The file rules of the accessed paths, and their generalisations.
///
/// Paths are generalised **per rule**: per (acting process, access kind), each group's own
/// paths decide its directories and patterns, so a rule never widens over what other processes
/// touched. A writing group's directory is narrowed to the deepest directory that covers its
/// writes. A read-only directory or pattern never covers a path that a process it applies to
/// wrote (a readOnly match denies the write even where another rule allows it): such paths stay
/// exact. Groups that end on the same target and kind share one rule (their `fromSource`
/// lists merge) and its comment lists exactly the paths those groups absorbed.
fn file_rules(
    files: &BTreeMap<(String, bool), BTreeSet<&str>>,
    gopts: &GeneraliseOptions,
    bound: Option<Bound>,
) -> (FileRules, Vec<Generalisation>) {
    // (process, writes) -> paths; "" is an unknown process.
    let mut groups: BTreeMap<(&str, bool), BTreeSet<String>> = BTreeMap::new();
    for ((path, writes), exes) in files {
        if exes.is_empty() {
            groups
                .entry(("", *writes))
                .or_default()
                .insert(path.clone());
        }
        for e in exes {
            groups.entry((e, *writes)).or_default().insert(path.clone());
        }
    }
    // Written paths per process, and by any process (for rules without fromSource).
    let mut written: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for ((path, writes), exes) in files {
        if *writes {
            for e in exes.iter().copied().chain(exes.is_empty().then_some("")) {
                written.entry(e).or_default().insert(path.as_str());
            }
        }
    }
    let all_written: BTreeSet<&str> = written.values().flatten().copied().collect();

    #[derive(Default)]
    struct Rule {
        procs: BTreeSet<String>,
        absorbed: BTreeSet<String>,
        why: Vec<String>,
    }
    let covers = |t: &Target, w: &str| match t {
        Target::Path(p) => p == w,
        Target::Directory(d) => w.starts_with(d.as_str()),
        Target::Pattern(g) => glob_matches(g, w),
    };
    // (target, read_only) -> rule. Writers first: their targets also cover what the same
    // process only read.
    let mut narrowed: BTreeMap<(Target, bool), Rule> = BTreeMap::new();
    let mut reads_covered: BTreeMap<(Target, bool), usize> = BTreeMap::new();
    let mut writable: BTreeMap<&str, Vec<Target>> = BTreeMap::new();
    let add = |rules: &mut BTreeMap<(Target, bool), Rule>,
               key: (Target, bool),
               proc_: &str,
               paths: &BTreeSet<String>,
               why: &[String]| {
        let r = rules.entry(key).or_default();
        r.procs.insert(proc_.to_string());
        r.absorbed.extend(paths.iter().cloned());
        for w in why {
            if !r.why.contains(w) {
                r.why.push(w.clone());
            }
        }
    };
    for ((proc_, _), paths) in groups.iter().filter(|((_, w), _)| *w) {
        let placed = place_paths(paths, gopts, true, bound);
        let mut by_target: BTreeMap<Target, (BTreeSet<String>, Vec<String>)> = BTreeMap::new();
        for (path, place) in placed {
            let e = by_target.entry(place.target).or_default();
            e.0.insert(path);
            for w in place.why {
                if !e.1.contains(&w) {
                    e.1.push(w);
                }
            }
        }
        for (target, (absorbed, mut why)) in by_target {
            // A writable directory is the deepest one that covers the group's writes.
            let target = match target {
                Target::Directory(dir) => match common_dir(&absorbed)
                    .filter(|d| d.len() > dir.len() && d.starts_with(dir.as_str()))
                {
                    Some(d) => {
                        why.push(format!(
                            "narrowed to {d}, the deepest directory that covers every write"
                        ));
                        Target::Directory(d)
                    }
                    None => Target::Directory(dir),
                },
                t => t,
            };
            writable.entry(proc_).or_default().push(target.clone());
            add(&mut narrowed, (target, false), proc_, &absorbed, &why);
        }
    }
    for ((proc_, _), paths) in groups.iter().filter(|((_, w), _)| !*w) {
        // Reads already covered by a writable rule of the same process need no rule: also a
        // path it both read and wrote, which would otherwise get a second, read-only rule on
        // the same path (and KubeArmor's readOnly would deny the writes the first allows).
        let mine = writable.get(proc_).map(Vec::as_slice).unwrap_or_default();
        let mut rest = BTreeSet::new();
        for path in paths {
            match mine.iter().find(|t| covers(t, path)) {
                Some(t) => {
                    add(
                        &mut narrowed,
                        (t.clone(), false),
                        proc_,
                        &BTreeSet::from([path.clone()]),
                        &[],
                    );
                    if !matches!(t, Target::Path(_)) {
                        *reads_covered.entry((t.clone(), false)).or_default() += 1;
                    }
                }
                None => {
                    rest.insert(path.clone());
                }
            }
        }
        // A read-only directory must not cover a write of a process it applies to.
        let affected_dir: &BTreeSet<&str> = if proc_.is_empty() {
            &all_written
        } else {
            written.get(proc_).unwrap_or(&EMPTY)
        };
        let forbid = |dir: &str| {
            let glob = format!("{dir}**");
            affected_dir.iter().any(|w| {
                if dir.contains('*') {
                    glob_matches(&glob, w)
                } else {
                    w.starts_with(dir)
                }
            })
        };
        let placed = place_paths_except(&rest, gopts, true, bound, &forbid);
        for (path, place) in placed {
            let mut target = place.target.clone();
            let mut why = place.why.clone();
            // A read-only directory or pattern must not cover a write of a process it
            // applies to (readOnly denies the write even where another rule allows it).
            let affected: &BTreeSet<&str> = match (&target, *proc_) {
                (Target::Pattern(_), _) | (_, "") => &all_written,
                (_, p) => written.get(p).unwrap_or(&EMPTY),
            };
            if !matches!(target, Target::Path(_)) && affected.iter().any(|w| covers(&target, w)) {
                target = Target::Path(path.clone());
                why.clear();
            }
            add(
                &mut narrowed,
                (target, true),
                proc_,
                &BTreeSet::from([path]),
                &why,
            );
        }
    }
    for (key, n) in reads_covered {
        if let Some(r) = narrowed.get_mut(&key) {
            r.why.push(format!(
                "{n} of its paths were only read by its processes; the writes alone decided the directory"
            ));
        }
    }
    // Patterns have no fromSource: one rule per pattern, read-only only when nobody wrote.
    let mut rules: BTreeMap<(Target, bool), Rule> = BTreeMap::new();
    let written_patterns: BTreeSet<Target> = narrowed
        .keys()
        .filter(|(t, ro)| matches!(t, Target::Pattern(_)) && !ro)
        .map(|(t, _)| t.clone())
        .collect();
    for ((target, read_only), r) in narrowed {
        let read_only = read_only && !written_patterns.contains(&target);
        let e = rules.entry((target, read_only)).or_default();
        e.procs.extend(r.procs);
        e.absorbed.extend(r.absorbed);
        for w in r.why {
            if !e.why.contains(&w) {
                e.why.push(w);
            }
        }
    }

    let mut gens = Vec::new();
    let mut file = FileRules::default();
    for ((target, read_only), r) in rules {
        let fs = sources(&r.procs);
        let mut why = r.why.clone();
        if let Err(reason) = &fs {
            if !matches!(target, Target::Pattern(_)) {
                why.push(format!("no fromSource: {reason}"));
            }
        }
        let fs = fs.unwrap_or_default();
        match &target {
            Target::Path(path) => file.match_paths.push(FilePathRule {
                path: path.clone(),
                read_only,
                from_source: fs,
                ..FilePathRule::default()
            }),
            Target::Directory(dir) => {
                let recursive = r
                    .absorbed
                    .iter()
                    .any(|p| p.get(dir.len()..).is_some_and(|rest| rest.contains('/')));
                gens.push(Generalisation {
                    section: "file",
                    list: "matchDirectories",
                    index: file.match_directories.len(),
                    target: dir.clone(),
                    read_only,
                    absorbed: r.absorbed.iter().cloned().collect(),
                    why,
                });
                file.match_directories.push(FileDirectoryRule {
                    dir: dir.clone(),
                    recursive,
                    read_only,
                    from_source: fs,
                    ..FileDirectoryRule::default()
                });
            }
            Target::Pattern(pattern) => {
                why.push("matchPatterns have no fromSource: any process".into());
                gens.push(Generalisation {
                    section: "file",
                    list: "matchPatterns",
                    index: file.match_patterns.len(),
                    target: pattern.clone(),
                    read_only,
                    absorbed: r.absorbed.iter().cloned().collect(),
                    why,
                });
                file.match_patterns.push(FilePatternRule {
                    pattern: pattern.clone(),
                    read_only,
                    ..FilePatternRule::default()
                });
            }
        }
    }
    (file, gens)
}

static EMPTY: BTreeSet<&'static str> = BTreeSet::new();

/// The deepest directory (with trailing `/`) that holds every path.
fn common_dir(paths: &BTreeSet<String>) -> Option<String> {
    let mut it = paths.iter();
    let first = it.next()?;
    let mut prefix: &str = match first.rfind('/') {
        Some(i) => &first[..=i],
        None => return None,
    };
    for p in it {
        while !p.starts_with(prefix) {
            let trimmed = &prefix[..prefix.len() - 1];
            prefix = match trimmed.rfind('/') {
                Some(i) => &trimmed[..=i],
                None => return None,
            };
        }
    }
    Some(prefix.to_string())
}
