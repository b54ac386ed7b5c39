//! Policy simulation for `kubectl karmor simulate` (design §7): recorded behaviour replayed
//! through KubeArmor's policy semantics, to see what would be allowed, audited or blocked.
//!
//! - [`matcher`]: paths, directories and glob patterns;
//! - [`select`]: which policies apply to a pod or node (selectors);
//! - [`engine`]: rules compiled from policies and the decision for one behaviour.
//!
//! [`simulate`] reads the distinct behaviours of the store with one `GROUP BY` query (every
//! user value a bound parameter), decides each one, and returns a [`SimReport`]. System calls
//! are decided against `syscalls` rules, which only ever audit. What the simulator cannot
//! replay is said, not guessed silently: `ownerOnly` assumptions go in [`SimEntry::note`]. A file or
//! exec that failed because its path did not resolve (`No such file or directory`, `Not a
//! directory`) fails before any KubeArmor hook, so it is [`Decision::Unaffected`], never
//! blocked: see [`engine::lookup_failure`].

pub mod engine;
pub mod matcher;
pub mod select;

use std::collections::{BTreeMap, HashMap};

use duckdb::params_from_iter;
use karmor_contract::bundle::format_ts;
use karmor_contract::Op;
use serde::Serialize;

use crate::error::{AnalyzerError, Result};
use crate::filter::{Param, SqlFilter};
use crate::policy::Policy;
use crate::recommend::evidence::RUNTIME_CONTAINER_SQL;
use crate::store::Store;

pub use engine::{
    compile, decide, lookup_failure, Behaviour, CompiledPolicy, Verdict, DEFAULT_POSTURE,
};
pub use select::{applies, Subject};

/// What KubeArmor does with behaviour outside an allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Posture {
    /// Allow and raise an alert (KubeArmor's default).
    #[default]
    Audit,
    /// Deny.
    Block,
}

impl Posture {
    /// `audit` or `block`.
    pub fn as_str(self) -> &'static str {
        match self {
            Posture::Audit => "audit",
            Posture::Block => "block",
        }
    }
}

impl std::str::FromStr for Posture {
    type Err = AnalyzerError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "audit" => Ok(Posture::Audit),
            "block" | "deny" => Ok(Posture::Block),
            other => Err(AnalyzerError::Invalid(format!(
                "unknown default posture {other:?}: expected audit or block"
            ))),
        }
    }
}

/// Default postures per kind (processes follow the file posture, as in KubeArmor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Postures {
    /// Files and processes (`defaultFilePosture`, `kubearmor-file-posture`).
    pub file: Posture,
    /// Network (`defaultNetworkPosture`, `kubearmor-network-posture`).
    pub network: Posture,
    /// Capabilities (`defaultCapabilitiesPosture`, `kubearmor-capabilities-posture`).
    pub capabilities: Posture,
}

impl Postures {
    /// The same posture for every kind.
    pub fn all(p: Posture) -> Postures {
        Postures {
            file: p,
            network: p,
            capabilities: p,
        }
    }
}

/// What KubeArmor would do. Ordered from the least to the most severe (`Unaffected` first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Failed anyway, before any policy could act (a path that did not resolve): the same
    /// error with or without policies, and no alert.
    Unaffected,
    /// Permitted without an alert.
    Allowed,
    /// Permitted with an alert.
    Audited,
    /// Denied (`Permission denied`) with an alert.
    Blocked,
}

impl Decision {
    /// `unaffected`, `allowed`, `audited` or `blocked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Unaffected => "unaffected",
            Decision::Allowed => "allowed",
            Decision::Audited => "audited",
            Decision::Blocked => "blocked",
        }
    }
}

impl std::str::FromStr for Decision {
    type Err = AnalyzerError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "allowed" | "allow" => Ok(Decision::Allowed),
            "audited" | "audit" => Ok(Decision::Audited),
            "blocked" | "block" => Ok(Decision::Blocked),
            "unaffected" => Ok(Decision::Unaffected),
            other => Err(AnalyzerError::Invalid(format!(
                "unknown decision {other:?}: expected allowed, audited, blocked or unaffected"
            ))),
        }
    }
}

/// What to replay and under which settings.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Namespaces to replay; empty means every namespace.
    pub namespaces: Vec<String>,
    /// Also replay host behaviour against `KubeArmorHostPolicy` objects.
    pub include_host: bool,
    /// Only rows last seen at or after this time (ns since epoch).
    pub since_ns: Option<i64>,
    /// Only rows first seen before this time (ns since epoch).
    pub until_ns: Option<i64>,
    /// A compiled `-f` filter.
    pub filter: Option<SqlFilter>,
    /// Global default posture.
    pub posture: Postures,
    /// Per-namespace postures (the `kubearmor-*-posture` namespace annotations).
    pub namespace_postures: BTreeMap<String, Postures>,
    /// Namespace of `KubeArmorPolicy` objects without one (`kubectl apply -n`); `default` if
    /// unset.
    pub policy_namespace: Option<String>,
    /// Node labels beyond `kubernetes.io/hostname`, for host policies' node selectors.
    pub node_labels: BTreeMap<String, BTreeMap<String, String>>,
}

/// One distinct behaviour and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimEntry {
    /// Namespace (none on the host).
    pub namespace: Option<String>,
    /// `Kind/name` of the owning workload, `Pod/name` without one, `(host)` on the host.
    pub workload: String,
    /// Host behaviour.
    pub host: bool,
    /// Node.
    pub node: String,
    /// Operation.
    pub op: Op,
    /// Executable (for process rows: the executed path).
    pub process: Option<String>,
    /// Parent executable.
    pub parent: Option<String>,
    /// File path, executed path, `proto direction peer:port`, or capability.
    pub resource: String,
    /// File access or network direction.
    pub access: Option<String>,
    /// User id.
    pub uid: Option<u32>,
    /// Recorded result: `Passed` or the error (`No such file or directory`, …).
    pub result: Option<String>,
    /// The outcome.
    pub decision: Decision,
    /// Deciding policy (`DefaultPosture` when the posture decided).
    pub policy: Option<String>,
    /// Deciding rule.
    pub rule: Option<String>,
    /// Assumptions made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Raw events.
    pub count: u64,
    /// Contract rows aggregated.
    pub rows: u64,
    /// First seen (RFC 3339).
    pub first_seen: String,
    /// Last seen (RFC 3339).
    pub last_seen: String,
}

/// Events and entries per decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Raw events allowed.
    pub allowed: u64,
    /// Raw events audited.
    pub audited: u64,
    /// Raw events blocked.
    pub blocked: u64,
    /// Raw events that failed anyway, unaffected by any policy.
    pub unaffected: u64,
    /// Entries allowed.
    pub allowed_entries: u64,
    /// Entries audited.
    pub audited_entries: u64,
    /// Entries blocked.
    pub blocked_entries: u64,
    /// Entries unaffected.
    pub unaffected_entries: u64,
}

/// The result of a simulation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SimReport {
    /// Every behaviour in scope, host last, sorted by namespace, workload, operation, process,
    /// target.
    pub entries: Vec<SimEntry>,
    /// What was in scope but not replayed, and why.
    pub not_simulated: Vec<String>,
    /// Names of the policies that selected at least one behaviour.
    pub policies: Vec<String>,
}

impl SimReport {
    /// Entries that would be blocked.
    pub fn blocked(&self) -> impl Iterator<Item = &SimEntry> {
        self.entries
            .iter()
            .filter(|e| e.decision == Decision::Blocked)
    }

    /// Entries that failed before any policy could act.
    pub fn unaffected(&self) -> impl Iterator<Item = &SimEntry> {
        self.entries
            .iter()
            .filter(|e| e.decision == Decision::Unaffected)
    }

    /// Entries that would be audited.
    pub fn audited(&self) -> impl Iterator<Item = &SimEntry> {
        self.entries
            .iter()
            .filter(|e| e.decision == Decision::Audited)
    }

    /// Counts per decision.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for e in &self.entries {
            let (events, entries) = match e.decision {
                Decision::Allowed => (&mut t.allowed, &mut t.allowed_entries),
                Decision::Audited => (&mut t.audited, &mut t.audited_entries),
                Decision::Blocked => (&mut t.blocked, &mut t.blocked_entries),
                Decision::Unaffected => (&mut t.unaffected, &mut t.unaffected_entries),
            };
            *events += e.count;
            *entries += 1;
        }
        t
    }
}

/// The note on allowed or audited network behaviour with a peer: which peer it is cannot be
/// enforced by a KubeArmor policy.
pub const PEER_NOTE: &str = "peer not enforceable by a KubeArmorPolicy (network rules match \
     protocols only); restrict peers with a NetworkPolicy";

/// The grouped behaviour query. Fixed SQL; the scope's values are bound parameters.
const BEHAVIOUR_SQL: &str = "SELECT namespace,
        CASE WHEN host THEN '(host)'
             WHEN {runtime} THEN coalesce('Container/' || container, '(none)')
             ELSE coalesce(workload_kind || '/' || workload, 'Pod/' || pod, '(none)') END,
        array_to_string(list_sort(labels), ','), host, node, op, process, parent_process, path,
        access, proto, direction,
        coalesce(remote_name, remote_addr, local_addr),
        CASE WHEN direction IN ('bind', 'listen', 'accept') THEN local_port ELSE remote_port END,
        capability, uid,
        CAST(sum(count) AS UBIGINT), count(*), epoch_ns(min(ts_first)), epoch_ns(max(ts_last)),
        result, CASE WHEN {runtime} THEN container END, syscall
 FROM events WHERE {scope}
 GROUP BY ALL
 ORDER BY host, namespace NULLS FIRST, 2, op, process NULLS FIRST, path NULLS FIRST,
          proto NULLS FIRST, direction NULLS FIRST, 13 NULLS FIRST, 14 NULLS FIRST,
          capability NULLS FIRST, access NULLS FIRST, parent_process NULLS FIRST, node,
          uid NULLS FIRST, 3, result NULLS FIRST, syscall NULLS FIRST";

fn scope(opts: &SimOptions) -> (String, Vec<Param>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    let placement = if opts.namespaces.is_empty() {
        None
    } else {
        let marks = vec!["?"; opts.namespaces.len()].join(", ");
        params.extend(opts.namespaces.iter().cloned().map(Param::Text));
        Some(format!("namespace IN ({marks})"))
    };
    match (placement, opts.include_host) {
        (None, true) => {}
        (None, false) => clauses.push("NOT host".to_string()),
        (Some(ns), true) => clauses.push(format!("({ns} OR host)")),
        (Some(ns), false) => clauses.push(format!("(NOT host AND {ns})")),
    }
    if let Some(since) = opts.since_ns {
        clauses.push("epoch_ns(ts_last) >= ?".into());
        params.push(Param::Int(since));
    }
    if let Some(until) = opts.until_ns {
        clauses.push("epoch_ns(ts_first) < ?".into());
        params.push(Param::Int(until));
    }
    if let Some(f) = &opts.filter {
        clauses.push(format!("({})", f.sql));
        params.extend(f.params.iter().cloned());
    }
    if clauses.is_empty() {
        ("TRUE".into(), params)
    } else {
        (clauses.join(" AND "), params)
    }
}

/// A grouped row before the decision.
struct Row {
    subject: Subject,
    workload: String,
    behaviour: Behaviour,
    direction: Option<String>,
    peer: Option<String>,
    port: Option<u16>,
    uid: Option<u32>,
    count: u64,
    rows: u64,
    first: i64,
    last: i64,
}

/// Labels come joined by commas, which neither label keys nor values may contain.
fn split_labels(joined: Option<String>) -> Vec<String> {
    joined
        .filter(|j| !j.is_empty())
        .map(|j| j.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

fn read_rows(store: &Store, opts: &SimOptions) -> Result<Vec<Row>> {
    let (scope, params) = scope(opts);
    let sql = BEHAVIOUR_SQL
        .replace("{scope}", &scope)
        .replace("{runtime}", RUNTIME_CONTAINER_SQL);
    let mut stmt = store
        .conn()
        .prepare(&sql)
        .map_err(AnalyzerError::store("prepare simulation"))?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            let op: String = r.get(5)?;
            Ok((
                op,
                Row {
                    subject: Subject {
                        namespace: r.get(0)?,
                        labels: split_labels(r.get::<_, Option<String>>(2)?),
                        host: r.get(3)?,
                        node: r.get(4)?,
                        container: r.get(21)?,
                        kubernetes: true,
                    },
                    workload: r.get(1)?,
                    behaviour: Behaviour {
                        op: Op::Process,
                        process: r.get(6)?,
                        parent: r.get(7)?,
                        path: r.get(8)?,
                        access: r.get(9)?,
                        proto: r.get(10)?,
                        capability: r.get(14)?,
                        syscall: r.get(22)?,
                        result: r.get(20)?,
                    },
                    direction: r.get(11)?,
                    peer: r.get(12)?,
                    port: r.get(13)?,
                    uid: r.get(15)?,
                    count: r.get(16)?,
                    rows: r.get::<_, i64>(17)? as u64,
                    first: r.get(18)?,
                    last: r.get(19)?,
                },
            ))
        })
        .map_err(AnalyzerError::store("run simulation"))?;
    // Only host policies need to know which nodes run Kubernetes (a pass over the store).
    let kubernetes = if opts.include_host {
        crate::recommend::evidence::kubernetes_nodes(store)?
    } else {
        Default::default()
    };
    let mut out = Vec::new();
    for item in rows {
        let (op, mut row) = item.map_err(AnalyzerError::store("read simulation"))?;
        row.behaviour.op = op.parse().map_err(AnalyzerError::Invalid)?;
        row.subject.kubernetes = kubernetes.contains(&row.subject.node);
        out.push(row);
    }
    Ok(out)
}

fn resource(row: &Row) -> String {
    let b = &row.behaviour;
    let dash = || "-".to_string();
    match b.op {
        Op::Process => b.process.clone().unwrap_or_else(dash),
        Op::File => b.path.clone().unwrap_or_else(dash),
        Op::Syscall => {
            let name = b
                .syscall
                .as_deref()
                .map(|s| {
                    crate::recommend::seccomp::normalise_syscall(s).unwrap_or_else(|| s.to_string())
                })
                .unwrap_or_else(dash);
            match &b.path {
                Some(p) => format!("{name} {p}"),
                None => name,
            }
        }
        Op::Network => {
            let mut s = b.proto.clone().unwrap_or_else(dash);
            if let Some(d) = &row.direction {
                s.push(' ');
                s.push_str(d);
            }
            match (&row.peer, row.port) {
                (Some(p), Some(port)) => s.push_str(&format!(" {p}:{port}")),
                (Some(p), None) => s.push_str(&format!(" {p}")),
                (None, Some(port)) => s.push_str(&format!(" :{port}")),
                (None, None) => {}
            }
            s
        }
        Op::Capability => b.capability.clone().unwrap_or_else(dash),
    }
}

/// Replays the behaviours in scope through `policies`.
///
/// Policies are used as given (validate them first: see
/// [`crate::policy::validate_path`]); a policy with no rule the simulator replays still
/// counts for selection but decides nothing.
pub fn simulate(store: &Store, policies: &[Policy], opts: &SimOptions) -> Result<SimReport> {
    let default_ns = opts.policy_namespace.as_deref().unwrap_or("default");
    let compiled: Vec<CompiledPolicy> = policies.iter().map(|p| compile(p, default_ns)).collect();
    let rows = read_rows(store, opts)?;
    let mut report = SimReport::default();
    let mut selected: HashMap<Subject, Vec<usize>> = HashMap::new();
    let mut used = vec![false; compiled.len()];
    for row in rows {
        let which = selected.entry(row.subject.clone()).or_insert_with(|| {
            compiled
                .iter()
                .enumerate()
                .filter(|(_, c)| applies(&c.policy, &row.subject, default_ns, &opts.node_labels))
                .map(|(i, _)| i)
                .collect()
        });
        for i in which.iter() {
            used[*i] = true;
        }
        let applicable: Vec<&CompiledPolicy> = which.iter().map(|i| &compiled[*i]).collect();
        let postures = row
            .subject
            .namespace
            .as_ref()
            .and_then(|ns| opts.namespace_postures.get(ns))
            .copied()
            .unwrap_or(opts.posture);
        let mut verdict = decide(&applicable, &row.behaviour, &postures);
        if row.behaviour.op == Op::Network
            && row.peer.is_some()
            && matches!(verdict.decision, Decision::Allowed | Decision::Audited)
        {
            // KubeArmor's network rules (`matchProtocols`) name a protocol, never a peer: a
            // new peer over an allowed protocol is beyond any KubeArmorPolicy.
            let peer = PEER_NOTE.to_string();
            verdict.note = Some(match verdict.note.take() {
                Some(n) => format!("{n}; {peer}"),
                None => peer,
            });
        }
        let access = match row.behaviour.op {
            Op::Network => row.direction.clone(),
            _ => row.behaviour.access.clone(),
        };
        report.entries.push(SimEntry {
            namespace: row.subject.namespace.clone(),
            resource: resource(&row),
            workload: row.workload,
            host: row.subject.host,
            node: row.subject.node,
            op: row.behaviour.op,
            process: row.behaviour.process,
            parent: row.behaviour.parent,
            access,
            uid: row.uid,
            result: row.behaviour.result,
            decision: verdict.decision,
            policy: verdict.policy,
            rule: verdict.rule,
            note: verdict.note,
            count: row.count,
            rows: row.rows,
            first_seen: format_ts(row.first),
            last_seen: format_ts(row.last),
        });
    }
    report.policies = compiled
        .iter()
        .zip(used)
        .filter(|(_, u)| *u)
        .map(|(c, _)| c.name.clone())
        .collect();
    Ok(report)
}
