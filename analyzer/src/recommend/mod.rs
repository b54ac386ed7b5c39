//! `kubectl karmor recommend`: KubeArmor policies drafted from observed behaviour (design §7).
//!
//! - [`evidence`]: parameterised SQL aggregation per workload (replicas merged) and per node;
//! - [`noise`]: start-up helpers, `kubectl exec` sessions and exec probes, tagged; probes and
//!   start-up helpers stay in drafts (commented), exec sessions are left out unless asked for;
//! - [`generalise`]: explainable patterns and directory collapse;
//! - [`draft`]: one `KubeArmorPolicy` per workload and per container no pod holds, one
//!   `KubeArmorHostPolicy` per node; rows that name neither a node nor a container are
//!   [`Unattributed`], never drafted;
//! - [`suspicious`]: behaviour that looks like an intrusion (per the library's data), held out
//!   of drafts as commented-out rules;
//! - [`hardening`]: picks from our policy library (`policies/`), flagged when they conflict;
//! - [`permissive`]: per rule, the observed behaviours it allows and how much wider than its
//!   evidence a generalised rule is;
//! - [`report`]: YAML with comments on generalised rules, and the Markdown report;
//! - [`seccomp`]: `recommend --seccomp`, a seccomp profile per workload from its syscall rows.

pub mod draft;
pub mod evidence;
pub mod generalise;
pub mod hardening;
pub mod noise;
pub mod permissive;
pub mod report;
pub mod seccomp;
pub mod suspicious;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::drift::stability::{self, Stability, StabilityOptions, Verdict};
use crate::error::{AnalyzerError, Result};
use crate::policy::Action;
use crate::store::{DataHealth, Store};

pub use draft::{Draft, DraftOptions, Generalisation};
pub use evidence::{HostSelect, Scope, WorkloadId, WorkloadSelect};
pub use generalise::GeneraliseOptions;
pub use hardening::{Library, Pick, PickStatus};
pub use noise::{Include, Noise};

/// A `recommend` question.
#[derive(Debug, Clone)]
pub struct RecommendOptions {
    /// What to draft for, and which rows count.
    pub scope: Scope,
    /// `Allow` (default), `Audit`, or `Block` (hardening policies only).
    pub action: Action,
    /// Noise to keep in drafts.
    pub include: Include,
    /// Directory thresholds.
    pub generalise: GeneraliseOptions,
    /// Upper bound on rules per draft.
    pub max_rules: Option<usize>,
    /// The hardening library, with `--hardening`.
    pub library: Option<Library>,
    /// Quiet periods of the stability verdicts.
    pub stability: StabilityOptions,
    /// `--force`: Block policies even for workloads that are not stable.
    pub force: bool,
    /// Draft `syscalls` rules (KubeArmor audits them whatever the action); default on.
    pub syscall_rules: bool,
}

impl RecommendOptions {
    /// Drafting with defaults over `scope`.
    pub fn new(scope: Scope) -> Self {
        RecommendOptions {
            scope,
            action: Action::Allow,
            include: Include::default(),
            generalise: GeneraliseOptions::default(),
            max_rules: None,
            library: None,
            stability: StabilityOptions::default(),
            force: false,
            syscall_rules: true,
        }
    }
}

/// Everything recommended for one workload or node.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadRecommendation {
    /// The draft (its policy is `None` with `--action Block`, or when none can be drafted).
    pub draft: Draft,
    /// Library policies considered (with `--hardening`).
    pub hardening: Vec<Pick>,
    /// Has learning converged for it?
    pub stability: Option<Stability>,
    /// Why `--action Block` was refused for it (not stable, no `--force`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// Behaviour in scope that no policy can select: host rows without a node, container rows
/// without a pod or a container name. No policy is drafted for it (a host policy for a node
/// that does not exist would select nothing, or the wrong thing).
#[derive(Debug, Clone, Serialize)]
pub struct Unattributed {
    /// Which rows: `(no node)` for host rows, else the container id.
    pub name: String,
    /// Why nothing can select them.
    pub reason: String,
    /// Nodes the rows came from (empty for host rows without a node).
    pub nodes: Vec<String>,
    /// Raw events.
    pub events: u64,
    /// Rows.
    pub rows: u64,
}

/// The answer to `recommend`.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    /// The requested action.
    pub action: Action,
    /// Per workload, in (namespace, kind, name) order; hosts last.
    pub workloads: Vec<WorkloadRecommendation>,
    /// Behaviour no policy can select, left out of every draft.
    pub unattributed: Vec<Unattributed>,
    /// Drop counters of the evidence.
    #[serde(skip)]
    pub health: DataHealth,
    /// Events dropped by producers (0 when the evidence is complete).
    pub events_dropped: u64,
    /// The learning window, as given (ns).
    pub since_ns: Option<i64>,
    /// The learning window, as given (ns).
    pub until_ns: Option<i64>,
}

/// What KubeArmor does with behaviour no rule of a policy matches, for this action.
pub fn posture_note(action: Action, host: bool) -> String {
    posture_text(
        action,
        if host {
            "the node's KubeArmor configuration (hostDefaultFilePosture, hostDefaultNetworkPosture, hostDefaultCapabilitiesPosture)"
        } else {
            "the namespace annotations kubearmor-file-posture, kubearmor-network-posture and kubearmor-capabilities-posture (else KubeArmor's cluster defaults)"
        },
    )
}

/// [`posture_note`] for one workload: a container no pod holds has no namespace, and takes
/// KubeArmor's own defaults.
pub fn workload_posture_note(action: Action, id: &WorkloadId) -> String {
    if id.is_container() {
        posture_text(
            action,
            "the host's KubeArmor configuration (defaultFilePosture, defaultNetworkPosture, defaultCapabilitiesPosture; containers outside Kubernetes have no namespace annotations)",
        )
    } else {
        posture_note(action, id.is_host())
    }
}

fn posture_text(action: Action, annotation: &str) -> String {
    match action {
        Action::Allow => format!(
            "Allow: a least-permissive allow-list. For each kind of operation that has rules here (process and file share the file posture; network; capabilities), anything the rules do not list falls to the default posture, set by {annotation}: `block` denies it, `audit` (KubeArmor's usual default) allows it and raises an alert. Kinds without rules here are not restricted."
        ),
        Action::Audit => "Audit: the rules only raise alerts when the listed behaviour happens; nothing is denied and the default posture is not involved. Use it to watch the draft before switching to Allow.".into(),
        Action::Block => "Block: only the library's hardening rules, each denying a specific risky behaviour; everything else is unaffected and the default posture is not involved.".into(),
    }
}

/// Drafts policies for every workload and node in scope.
pub fn recommend(store: &Store, opts: &RecommendOptions) -> Result<Recommendation> {
    if opts.action == Action::Block && opts.library.is_none() {
        return Err(AnalyzerError::Invalid(
            "--action Block applies to hardening rules: add --hardening (an allow-list of observed behaviour cannot block it)".into(),
        ));
    }
    let mut workloads = evidence::workloads(store, &opts.scope)?;
    let unattributed = take_unattributed(&mut workloads);
    let last_seen = evidence::pid_last_seen(store, &opts.scope)?;
    let marks = noise::classify(&mut workloads, &last_seen);
    evidence::behaviour(store, &opts.scope, &marks, &mut workloads)?;
    // Hardening picks see everything that was seen; drafts see what is not held out.
    let seen = workloads.clone();
    let signals = match &opts.library {
        Some(lib) => {
            let entries: Vec<hardening::Entry> =
                lib.entries.iter().map(|(e, _)| e.clone()).collect();
            suspicious::Signals::from_entries(&entries)
        }
        None => suspicious::Signals::builtin(),
    }
    .map_err(|e| AnalyzerError::Invalid(format!("hardening library: {e}")))?;
    let mut held: BTreeMap<WorkloadId, Vec<suspicious::HeldOut>> = BTreeMap::new();
    for (id, ev) in workloads.iter_mut() {
        let h = suspicious::classify(id, ev, &signals, opts.include.suspicious);
        if !h.is_empty() {
            held.insert(id.clone(), h);
        }
    }

    let dopts = DraftOptions {
        action: if opts.action == Action::Audit {
            Action::Audit
        } else {
            Action::Allow
        },
        include: opts.include,
        generalise: opts.generalise.clone(),
        max_rules: opts.max_rules,
        // Only host drafts need to know (a pass over the store's node and namespace columns).
        kubernetes_nodes: if workloads.keys().any(WorkloadId::is_host) {
            Some(evidence::kubernetes_nodes(store)?)
        } else {
            None
        },
        syscall_rules: opts.syscall_rules,
    };
    // Labels of every workload, to warn about selectors that also select other pods.
    let labels: BTreeMap<WorkloadId, BTreeMap<String, String>> = workloads
        .iter()
        .filter(|(id, _)| !id.is_host())
        .map(|(id, ev)| (id.clone(), draft::selector_labels(id, ev)))
        .collect();
    let mut out = Vec::new();
    // Containers first, hosts last.
    let mut ids: Vec<&WorkloadId> = workloads.keys().collect();
    ids.sort_by_key(|id| (id.is_host(), (*id).clone()));
    let drafts = draft_all(&ids, &workloads, &dopts);
    let mut verdicts: BTreeMap<WorkloadId, Stability> = stability::stability(
        store,
        &opts.scope,
        &StabilityOptions {
            generalise: opts.generalise.clone(),
            ..opts.stability.clone()
        },
    )?
    .into_iter()
    .map(|s| (s.workload.clone(), s))
    .collect();
    let present = permissive::files_under(
        store,
        &permissive::prefixes(drafts.iter().filter_map(|d| d.policy.as_ref())),
    )?;
    for (id, mut d) in ids.into_iter().zip(drafts) {
        let ev = &seen[id];
        if let Some(p) = &d.policy {
            d.permissiveness = Some(permissive::measure(p, ev, &present));
        }
        if let Some(h) = held.remove(id) {
            attach_held_out(&mut d, h, opts.include);
        }
        if let (Some(p), Some(mine)) = (&d.policy, labels.get(id)) {
            if p.spec.selector.is_some() {
                for (other, ev2) in &workloads {
                    if other == id
                        || !id.is_pod()
                        || other.namespace != id.namespace
                        || other.is_host()
                    {
                        continue;
                    }
                    let overlaps = ev2
                        .pods
                        .values()
                        .any(|pl| mine.iter().all(|(k, v)| pl.contains(&format!("{k}={v}"))));
                    if overlaps {
                        d.warnings.push(format!(
                            "the selector also matches pods of {other}: add a distinguishing label to the pod template"
                        ));
                    }
                }
            }
        }
        let mut hardening = Vec::new();
        if let (Some(lib), false) = (&opts.library, id.is_host()) {
            let mine = labels.get(id).cloned().unwrap_or_default();
            if mine.is_empty() {
                d.warnings
                    .push("no stable labels: hardening policies cannot select the pods".into());
            } else {
                hardening = hardening::pick(
                    lib,
                    id,
                    ev,
                    &mine,
                    hardening::PickContext {
                        action: opts.action,
                        allow_draft: opts.action == Action::Allow && d.policy.is_some(),
                    },
                );
            }
        }
        if opts.action == Action::Block {
            d.policy = None;
        }
        let stability = verdicts.remove(id);
        let mut refused = None;
        if opts.action == Action::Block && !opts.force {
            if let Some(st) = stability.as_ref().filter(|s| s.verdict != Verdict::Stable) {
                refused = Some(format!(
                    "--action Block refused: {id} is {} ({}); learn until it is stable, or pass --force",
                    st.verdict.as_str(),
                    st.reasons.join("; ")
                ));
                hardening.clear();
            }
        }
        out.push(WorkloadRecommendation {
            draft: d,
            hardening,
            stability,
            refused,
        });
    }
    let health = store.health()?;
    Ok(Recommendation {
        action: opts.action,
        workloads: out,
        unattributed,
        events_dropped: health.events_dropped,
        health,
        since_ns: opts.scope.since_ns,
        until_ns: opts.scope.until_ns,
    })
}

/// Removes the workloads no policy can select, and says why for each.
fn take_unattributed(
    workloads: &mut BTreeMap<WorkloadId, evidence::Evidence>,
) -> Vec<Unattributed> {
    let ids: Vec<WorkloadId> = workloads
        .keys()
        .filter(|id| id.is_unattributed())
        .cloned()
        .collect();
    ids.into_iter()
        .filter_map(|id| {
            let ev = workloads.remove(&id)?;
            let reason = if id.name == "(no node)" {
                "host behaviour without a node name: no host policy can select it"
            } else {
                "a container without a pod or a container name (its runtime's state was not readable to the collector): no policy can select it"
            };
            Some(Unattributed {
                name: id.name,
                reason: reason.into(),
                nodes: ev.nodes.into_iter().filter(|n| !n.is_empty()).collect(),
                events: ev.events,
                rows: ev.rows,
            })
        })
        .collect()
}

/// Records held-out behaviour on a draft: a warning each, and the annotation that `simulate`
/// reads.
fn attach_held_out(d: &mut Draft, held: Vec<suspicious::HeldOut>, include: Include) {
    let mut keys = Vec::new();
    for h in &held {
        let first = h.first_ns.map(report::when).unwrap_or_else(|| "-".into());
        let exec = h.tag == Some(Noise::Exec);
        let status = if exec && !include.exec {
            "in a kubectl exec session (left out)"
        } else if h.kept {
            "kept as a rule by --include suspicious"
        } else {
            "held out of the draft as suspicious (commented out; --include suspicious keeps it)"
        };
        d.warnings.push(format!(
            "{}: {status}: {}; seen {}x, first at {first}",
            h.behaviour,
            h.reasons.join("; "),
            h.count
        ));
        if !h.kept {
            keys.push(h.key.clone());
        }
    }
    keys.sort();
    keys.dedup();
    if let Some(p) = d.policy.as_mut() {
        if !keys.is_empty() {
            if let Ok(json) = serde_json::to_string(&keys) {
                p.metadata
                    .annotations
                    .insert(suspicious::HELD_OUT_ANNOTATION.to_string(), json);
            }
        }
    }
    d.held_out = held;
}

/// Drafts every workload, on as many threads as there are cores (drafts are independent).
fn draft_all(
    ids: &[&WorkloadId],
    workloads: &BTreeMap<WorkloadId, evidence::Evidence>,
    opts: &DraftOptions,
) -> Vec<Draft> {
    crate::drift::par_map(ids, |id| draft::draft(id, &workloads[*id], opts))
}

/// Parses a `--since`/`--until` value: an RFC 3339 instant (`2026-11-20T12:00:00Z`) or a
/// duration before `now_ns` (`6h`, `2d`, see [`crate::timespec`]).
pub fn parse_instant(text: &str, now_ns: i64) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
        return t.timestamp_nanos_opt().ok_or_else(|| {
            AnalyzerError::Invalid(format!("{text:?}: outside the representable time range"))
        });
    }
    match crate::timespec::parse_duration(text) {
        Ok(span) => Ok(now_ns.saturating_sub(span)),
        Err(e) => Err(AnalyzerError::Invalid(format!(
            "invalid time {text:?}: neither an RFC 3339 instant (2026-11-20T12:00:00Z) nor a duration ({e})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_durations() {
        let now = 1_000_000 * 1_000_000_000;
        assert_eq!(
            parse_instant("2026-11-20T12:00:00Z", now).unwrap(),
            1_795_176_000 * 1_000_000_000
        );
        assert_eq!(
            parse_instant("1h", now).unwrap(),
            now - 3600 * 1_000_000_000
        );
        assert!(parse_instant("yesterday", now)
            .unwrap_err()
            .to_string()
            .contains("RFC 3339"));
    }
}
