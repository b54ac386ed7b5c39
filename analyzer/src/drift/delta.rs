//! `diff --as-policy-delta`: the rules to add to each workload's current draft so that it
//! allows what is new, one Allow policy per workload (selector as drafts choose it: the stable
//! labels every pod carries; a host policy selects its node).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Result;
use crate::policy::names::{CAPABILITIES, PROTOCOLS};
use crate::policy::{
    Action, CapabilityRule, CapabilityRules, FileDirectoryRule, FilePathRule, FilePatternRule,
    FileRules, NetworkRules, Policy, PolicyKind, ProcessPathRule, ProcessPatternRule, ProcessRules,
    ProtocolRule, Selector, Source,
};
use crate::recommend::draft::{host_selector, object_name, selector_labels};
use crate::recommend::evidence;
use crate::recommend::generalise::MAX_PATH_LEN;
use crate::recommend::noise::is_runtime;
use crate::recommend::{Scope, WorkloadId};
use crate::store::Store;

use super::diff::{Change, ChangeKind, DiffReport};
use super::items::Category;

/// One workload's delta, or why there is none.
#[derive(Debug, Clone)]
pub struct Delta {
    /// The workload (or node).
    pub workload: WorkloadId,
    /// The policy with the rules to add (`None` when it cannot select the pods).
    pub policy: Option<Policy>,
    /// New items that no KubeArmor rule can express (system calls, unknown protocols, …).
    pub not_expressible: Vec<String>,
}

fn source(p: &str) -> Vec<Source> {
    if p.starts_with('/') && !p.ends_with('/') && p.len() <= MAX_PATH_LEN && !is_runtime(p) {
        vec![Source::path(p)]
    } else {
        Vec::new()
    }
}

/// The deltas of every workload with new items in `report`, selectors from `store` in `scope`.
pub fn policy_delta(store: &Store, scope: &Scope, report: &DiffReport) -> Result<Vec<Delta>> {
    let mut by_workload: BTreeMap<&WorkloadId, Vec<&Change>> = BTreeMap::new();
    for c in report.changes.iter().filter(|c| c.kind == ChangeKind::New) {
        by_workload.entry(&c.workload).or_default().push(c);
    }
    if by_workload.is_empty() {
        return Ok(Vec::new());
    }
    let evidence = evidence::workloads(store, scope)?;
    let kubernetes = evidence::kubernetes_nodes(store)?;
    let mut out = Vec::new();
    for (id, changes) in by_workload {
        let mut not_expressible = Vec::new();
        if id.is_unattributed() {
            out.push(Delta {
                workload: id.clone(),
                policy: None,
                not_expressible: vec![
                    "neither a node nor a container name: no policy can select it".into(),
                ],
            });
            continue;
        }
        let mut policy = if id.is_host() {
            let mut p = Policy::new(
                PolicyKind::KubeArmorHostPolicy,
                object_name(&["karmor-delta-host", &id.name]),
            );
            p.spec.node_selector = Some(host_selector(&id.name, kubernetes.contains(&id.name)));
            p
        } else {
            let labels = evidence
                .get(id)
                .map(|ev| selector_labels(id, ev))
                .unwrap_or_default();
            if labels.is_empty() {
                out.push(Delta {
                    workload: id.clone(),
                    policy: None,
                    not_expressible: vec![
                        "no stable label is carried by every pod: no policy can select them".into(),
                    ],
                });
                continue;
            }
            let mut p = Policy::new(
                PolicyKind::KubeArmorPolicy,
                object_name(&["karmor-delta", &id.kind, &id.name]),
            );
            p.metadata.namespace = id.namespace.clone();
            p.spec.selector = Some(Selector {
                match_labels: labels,
                ..Selector::default()
            });
            p
        };
        let mut process = ProcessRules::default();
        let mut file = FileRules::default();
        let mut protos: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut caps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for c in changes {
            match c.category {
                Category::Executables if c.shape == "pattern" => {
                    process.match_patterns.push(ProcessPatternRule {
                        pattern: c.item.clone(),
                        ..ProcessPatternRule::default()
                    })
                }
                Category::Executables => process.match_paths.push(ProcessPathRule {
                    path: Some(c.item.clone()),
                    from_source: source(&c.actor),
                    ..ProcessPathRule::default()
                }),
                Category::Files => match c.shape {
                    "directory" => file.match_directories.push(FileDirectoryRule {
                        dir: c.item.clone(),
                        recursive: c
                            .absorbed
                            .iter()
                            .any(|p| p.get(c.item.len()..).is_some_and(|rest| rest.contains('/'))),
                        read_only: !c.writes,
                        from_source: source(&c.actor),
                        ..FileDirectoryRule::default()
                    }),
                    "pattern" => file.match_patterns.push(FilePatternRule {
                        pattern: c.item.clone(),
                        read_only: !c.writes,
                        ..FilePatternRule::default()
                    }),
                    _ => file.match_paths.push(FilePathRule {
                        path: c.item.clone(),
                        read_only: !c.writes,
                        from_source: source(&c.actor),
                        ..FilePathRule::default()
                    }),
                },
                Category::Network => {
                    let mut proto = c.item.split(' ').next().unwrap_or("").to_string();
                    if proto == "unix" {
                        // KubeArmor's BPF-LSM enforcer classifies unix stream sockets as tcp.
                        proto = "tcp".into();
                    }
                    if PROTOCOLS.contains(&proto.as_str()) && proto != "all" {
                        protos
                            .entry(proto)
                            .or_default()
                            .insert(c.introduced_by.clone());
                    } else {
                        not_expressible.push(format!("network {}: no KubeArmor protocol", c.item));
                    }
                }
                Category::Capabilities => {
                    let lower = c.item.trim().to_ascii_lowercase();
                    let name = lower.strip_prefix("cap_").unwrap_or(&lower).to_string();
                    if CAPABILITIES.contains(&name.as_str()) {
                        caps.entry(name).or_default().insert(c.actor.clone());
                    } else {
                        not_expressible
                            .push(format!("capability {}: unknown to KubeArmor", c.item));
                    }
                }
                Category::Syscalls => {
                    not_expressible.push(format!("syscall {}: syscall rules only audit", c.item))
                }
            }
        }
        let sources = |procs: &BTreeSet<String>| -> Vec<Source> {
            if procs.iter().any(|p| source(p).is_empty()) {
                Vec::new()
            } else {
                procs.iter().flat_map(|p| source(p)).collect()
            }
        };
        let network = NetworkRules {
            match_protocols: protos
                .iter()
                .map(|(p, procs)| ProtocolRule {
                    protocol: p.clone(),
                    from_source: sources(procs),
                    ..ProtocolRule::default()
                })
                .collect(),
            ..NetworkRules::default()
        };
        let capabilities = CapabilityRules {
            match_capabilities: caps
                .iter()
                .map(|(c, procs)| CapabilityRule {
                    capability: c.clone(),
                    from_source: sources(procs),
                    ..CapabilityRule::default()
                })
                .collect(),
            ..CapabilityRules::default()
        };
        let has = |n: usize| n > 0;
        policy.spec.process =
            has(process.match_paths.len() + process.match_patterns.len()).then_some(process);
        policy.spec.file =
            has(file.match_paths.len() + file.match_directories.len() + file.match_patterns.len())
                .then_some(file);
        policy.spec.network = has(network.match_protocols.len()).then_some(network);
        policy.spec.capabilities =
            has(capabilities.match_capabilities.len()).then_some(capabilities);
        policy.spec.action = Some(Action::Allow);
        out.push(Delta {
            workload: id.clone(),
            policy: policy.spec.has_rules().then_some(policy),
            not_expressible,
        });
    }
    Ok(out)
}
