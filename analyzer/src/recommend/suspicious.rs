//! Behaviour that looks like an intrusion, held out of Allow drafts (design §7).
//!
//! An allow-list learned while an attack happened would allow the attack. Before drafting,
//! each piece of a container workload's evidence is checked against signals built from the
//! hardening library's data (`policies/index.yaml`, or the library given with `--hardening`),
//! never against a list of known paths:
//!
//! 1. **dangerous** — it matches a `conflicts_when` trigger of a library policy: what that
//!    policy would block or audit (a shell started by a web server, curl or wget, writes into
//!    system binary directories, `/etc` changes, container runtime sockets, …);
//! 2. **sensitive file, read once, late** — it touches a path that a library trigger guards
//!    (the service-account token, `/etc/shadow`, …; the trigger's access kinds apply, its
//!    source glob does not), exactly once, in the second half of the observed time;
//! 3. **lone replica** — a connection to an address that only one of the workload's several
//!    pods ever connected to, seen at most twice;
//! 4. **late and once** — a process start (executable and parent) or a connection seen exactly
//!    once, in the second half of the observed time (when at least an hour was observed).
//!
//! Start-up helpers and probes are exempt (they are part of the pod's life cycle), and
//! `kubectl exec` sessions are only checked against (1), to name them when they did something
//! dangerous (they are left out of drafts anyway). Host behaviour is not classified.
//!
//! What is held out is removed from the evidence the draft is made from and recorded as a
//! [`HeldOut`]: the draft carries it as a commented-out rule with its evidence (one uncomment
//! keeps it), a warning, and the machine-readable annotation [`HELD_OUT_ANNOTATION`] that
//! `simulate` reads ([`mark_held_out`]). `--include suspicious` keeps them as rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::policy::Policy;
use crate::simulate::SimEntry;

use super::evidence::{Evidence, WorkloadId};
use super::hardening::{index_entries, Entry, HardeningError, TriggerMatcher};
use super::noise::{is_runtime, Noise};

/// The annotation of a drafted policy that lists its held-out behaviours (a JSON array of
/// [`HeldOutKey`]).
pub const HELD_OUT_ANNOTATION: &str = "karmor.io/held-out";

/// The hardening library's index, built in (the library in `policies/`).
const BUILTIN_INDEX: &str = include_str!("../../../policies/index.yaml");

/// A process start: (executable, parent).
type StartKey = (Option<String>, Option<String>);
/// Starts, first seen, first tag, whether any start was a probe or start-up helper.
type StartSeen = (usize, i64, Option<Noise>, bool);

/// Shortest observed time for "late" (its second half) to mean anything.
const MIN_SPAN_NS: i64 = 3600 * 1_000_000_000;

/// One signal of the library.
struct Signal {
    policy: String,
    summary: String,
    matcher: TriggerMatcher,
}

/// The library's signals: conflict triggers (dangerous behaviour) and the paths its
/// triggers guard (sensitive files).
pub struct Signals {
    dangerous: Vec<Signal>,
    sensitive: Vec<Signal>,
}

impl Signals {
    /// Signals of the built-in library index.
    pub fn builtin() -> Result<Signals, HardeningError> {
        Signals::from_entries(&index_entries(
            BUILTIN_INDEX,
            Path::new("policies/index.yaml"),
        )?)
    }

    /// Signals of index entries.
    pub fn from_entries(entries: &[Entry]) -> Result<Signals, HardeningError> {
        let mut dangerous = Vec::new();
        let mut sensitive = Vec::new();
        for e in entries {
            let sig = |t| -> Result<Signal, HardeningError> {
                Ok(Signal {
                    policy: e.name.clone(),
                    summary: e.summary.clone(),
                    matcher: TriggerMatcher::new(t).map_err(|m| HardeningError::Index {
                        path: "index.yaml".into(),
                        message: m,
                    })?,
                })
            };
            for t in &e.conflicts_when {
                dangerous.push(sig(t)?);
            }
            let fills = e.placeholders.iter().flat_map(|p| p.fill_from.iter());
            for t in e.relevant_when.iter().chain(&e.conflicts_when).chain(fills) {
                if t.op.as_deref() != Some("file") {
                    continue;
                }
                let s = sig(t)?;
                if !s.matcher.matches_any_file() {
                    sensitive.push(s);
                }
            }
        }
        Ok(Signals {
            dangerous,
            sensitive,
        })
    }
}

/// What a held-out behaviour is, as `simulate` matches it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HeldOutKey {
    /// `process`, `file`, `network` or `capability`.
    pub op: String,
    /// The acting process (for a process start: the executed path).
    pub process: String,
    /// For a process start: the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The path, the peer address, or the capability.
    pub resource: String,
}

/// One behaviour held out of a draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldOut {
    /// What it is.
    pub key: HeldOutKey,
    /// Readable: `/usr/sbin/apache2 started /bin/sh`.
    pub behaviour: String,
    /// Why it is held out.
    pub reasons: Vec<String>,
    /// Raw events.
    pub count: u64,
    /// First seen (ns).
    pub first_ns: Option<i64>,
    /// Its noise tag (`exec` sessions are left out anyway).
    pub tag: Option<Noise>,
    /// The rule that would allow it: (section, list, YAML lines of one list item).
    pub rule: Option<(String, String, Vec<String>)>,
    /// Kept as a rule (`--include suspicious`).
    pub kept: bool,
}

fn late(first: i64, ev: &Evidence) -> bool {
    ev.last_ns.saturating_sub(ev.first_ns) >= MIN_SPAN_NS
        && first >= ev.first_ns + (ev.last_ns - ev.first_ns) / 2
}

fn lifecycle(tag: Option<Noise>) -> bool {
    matches!(tag, Some(Noise::Startup | Noise::Probe))
}

fn source_lines(src: Option<&str>) -> Vec<String> {
    match src {
        Some(s) if s.starts_with('/') && !is_runtime(s) => {
            vec!["  fromSource:".into(), format!("  - path: {s}")]
        }
        _ => Vec::new(),
    }
}

/// Classifies a container workload's evidence; held-out items are removed from `ev` unless
/// `keep` (`--include suspicious`).
pub fn classify(id: &WorkloadId, ev: &mut Evidence, signals: &Signals, keep: bool) -> Vec<HeldOut> {
    if id.is_host() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let dangerous = |f: &dyn Fn(&TriggerMatcher) -> bool| -> Vec<String> {
        signals
            .dangerous
            .iter()
            .filter(|s| f(&s.matcher))
            .map(|s| format!("matches {} ({})", s.policy, s.summary))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };

    // Process starts, per (executable, parent).
    let mut starts: BTreeMap<StartKey, StartSeen> = BTreeMap::new();
    for p in &ev.processes {
        let e = starts
            .entry((p.process.clone(), p.parent.clone()))
            .or_insert((0, i64::MAX, p.tag, false));
        e.0 += 1;
        e.1 = e.1.min(p.first_ns);
        e.3 |= lifecycle(p.tag);
        if e.2.is_none() {
            e.2 = p.tag;
        }
    }
    let mut held_procs: BTreeSet<(Option<String>, Option<String>)> = BTreeSet::new();
    for ((exe, parent), (n, first, tag, life)) in &starts {
        if *life {
            continue;
        }
        let mut reasons =
            dangerous(&|m: &TriggerMatcher| m.process(exe.as_deref(), parent.as_deref()));
        if tag.is_none() && *n == 1 && late(*first, ev) {
            reasons.push("started once, late in the observed time".into());
        }
        if reasons.is_empty() {
            continue;
        }
        let exe_s = exe.clone().unwrap_or_default();
        let mut rule = vec![format!("- path: {exe_s}")];
        rule.extend(source_lines(parent.as_deref()));
        out.push(HeldOut {
            key: HeldOutKey {
                op: "process".into(),
                process: exe_s.clone(),
                parent: parent.clone(),
                resource: exe_s.clone(),
            },
            behaviour: format!("{} started {exe_s}", parent.as_deref().unwrap_or("?")),
            reasons,
            count: *n as u64,
            first_ns: Some(*first),
            tag: *tag,
            rule: Some(("process".into(), "matchPaths".into(), rule)),
            kept: keep,
        });
        held_procs.insert((exe.clone(), parent.clone()));
    }
    if !keep {
        ev.processes
            .retain(|p| !held_procs.contains(&(p.process.clone(), p.parent.clone())));
    }

    // Files, per (path, actor).
    let mut files = std::mem::take(&mut ev.files);
    for f in files.iter_mut() {
        if lifecycle(f.tag) {
            continue;
        }
        let mut held_actors = Vec::new();
        for actor in &f.processes {
            let mut reasons =
                dangerous(&|m: &TriggerMatcher| m.file(&f.path, &f.accesses, actor, true));
            if f.tag.is_none() && f.count == 1 && late(f.first_ns, ev) {
                let guarded: BTreeSet<String> = signals
                    .sensitive
                    .iter()
                    .filter(|s| s.matcher.file(&f.path, &f.accesses, actor, false))
                    .map(|s| s.policy.clone())
                    .collect();
                if !guarded.is_empty() {
                    reasons.push(format!(
                        "a path guarded by {} accessed once, late in the observed time",
                        guarded.into_iter().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            if f.tag == Some(Noise::Exec) && reasons.is_empty() {
                continue;
            }
            if reasons.is_empty() {
                continue;
            }
            let mut rule = vec![format!("- path: {}", f.path)];
            if !f.writes {
                rule.push("  readOnly: true".into());
            }
            rule.extend(source_lines(Some(actor)));
            out.push(HeldOut {
                key: HeldOutKey {
                    op: "file".into(),
                    process: actor.clone(),
                    parent: None,
                    resource: f.path.clone(),
                },
                behaviour: format!("{actor} {} {}", f.accesses.join("/"), f.path),
                reasons,
                count: f.count,
                first_ns: Some(f.first_ns),
                tag: f.tag,
                rule: Some(("file".into(), "matchPaths".into(), rule)),
                kept: keep,
            });
            held_actors.push(actor.clone());
        }
        if !keep {
            f.processes.retain(|p| !held_actors.contains(p));
        }
    }
    files.retain(|f| !f.processes.is_empty() || keep);
    ev.files = files;

    // Network.
    let pods = ev.pods.len();
    let mut peer_pods: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for n in &ev.network {
        if let Some(a) = n.remote_addr.as_deref() {
            peer_pods
                .entry(a)
                .or_default()
                .extend(n.pods.iter().map(String::as_str));
        }
    }
    let mut held_net = Vec::new();
    for (i, n) in ev.network.iter().enumerate() {
        if lifecycle(n.tag) {
            continue;
        }
        let mut reasons = dangerous(&|m: &TriggerMatcher| {
            m.network(
                n.proto.as_deref(),
                n.remote_addr.as_deref(),
                n.process.as_deref(),
            )
        });
        let ip_peer = n.proto.as_deref() != Some("unix")
            && n.direction.as_deref() == Some("connect")
            && n.remote_addr
                .as_deref()
                .is_some_and(|a| !a.is_empty() && !a.starts_with("127.") && a != "::1");
        if n.tag.is_none() && ip_peer {
            let addr = n.remote_addr.as_deref().unwrap_or_default();
            if pods >= 2 && n.count <= 2 && peer_pods.get(addr).is_some_and(|p| p.len() == 1) {
                reasons.push(format!(
                    "{addr}: connected to by one of the workload's {pods} pods only"
                ));
            } else if n.count == 1 && late(n.first_ns, ev) {
                reasons.push("connected once, late in the observed time".into());
            }
        }
        if reasons.is_empty() {
            continue;
        }
        let proto = match n.proto.as_deref() {
            Some("unix") | None => "tcp".to_string(),
            Some(p) => p.to_string(),
        };
        let mut rule = vec![format!("- protocol: {proto}")];
        rule.extend(source_lines(n.process.as_deref()));
        let peer = format!(
            "{}{}",
            n.remote_addr.as_deref().unwrap_or("?"),
            n.remote_port.map(|p| format!(":{p}")).unwrap_or_default()
        );
        out.push(HeldOut {
            key: HeldOutKey {
                op: "network".into(),
                process: n.process.clone().unwrap_or_default(),
                parent: None,
                resource: n.remote_addr.clone().unwrap_or_default(),
            },
            behaviour: format!(
                "{} {} {} {peer}",
                n.process.as_deref().unwrap_or("?"),
                n.proto.as_deref().unwrap_or("?"),
                n.direction.as_deref().unwrap_or("?")
            ),
            reasons,
            count: n.count,
            first_ns: Some(n.first_ns),
            tag: n.tag,
            rule: Some(("network".into(), "matchProtocols".into(), rule)),
            kept: keep,
        });
        held_net.push(i);
    }
    if !keep {
        let mut i = 0;
        ev.network.retain(|_| {
            let k = !held_net.contains(&i);
            i += 1;
            k
        });
    }

    // Capabilities.
    let mut held_caps = Vec::new();
    for (i, c) in ev.capabilities.iter().enumerate() {
        if lifecycle(c.tag) {
            continue;
        }
        let reasons =
            dangerous(&|m: &TriggerMatcher| m.capability(&c.capability, c.process.as_deref()));
        if reasons.is_empty() {
            continue;
        }
        let lower = c.capability.to_ascii_lowercase();
        let name = lower.strip_prefix("cap_").unwrap_or(&lower).to_string();
        let mut rule = vec![format!("- capability: {name}")];
        rule.extend(source_lines(c.process.as_deref()));
        out.push(HeldOut {
            key: HeldOutKey {
                op: "capability".into(),
                process: c.process.clone().unwrap_or_default(),
                parent: None,
                resource: name.clone(),
            },
            behaviour: format!(
                "{} used CAP_{}",
                c.process.as_deref().unwrap_or("?"),
                name.to_uppercase()
            ),
            reasons,
            count: c.count,
            first_ns: None,
            tag: c.tag,
            rule: Some(("capabilities".into(), "matchCapabilities".into(), rule)),
            kept: keep,
        });
        held_caps.push(i);
    }
    if !keep {
        let mut i = 0;
        ev.capabilities.retain(|_| {
            let k = !held_caps.contains(&i);
            i += 1;
            k
        });
    }
    // Exec sessions are left out anyway: only their dangerous behaviour is named, and it
    // needs no commented rule unless exec sessions are kept.
    out
}

/// The held-out keys of a policy's annotation (empty when it has none or it is malformed).
pub fn held_out_keys(p: &Policy) -> Vec<HeldOutKey> {
    p.metadata
        .annotations
        .get(HELD_OUT_ANNOTATION)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// Whether a simulated behaviour is a held-out one.
pub fn is_held_out(e: &SimEntry, k: &HeldOutKey) -> bool {
    if e.op.as_str() != k.op {
        return false;
    }
    match k.op.as_str() {
        "process" => e.resource == k.resource && e.parent == k.parent,
        "file" => e.process.as_deref() == Some(k.process.as_str()) && e.resource == k.resource,
        "network" => {
            e.process.as_deref() == Some(k.process.as_str())
                && e.resource.split_whitespace().any(|w| {
                    w == k.resource || w.rsplit_once(':').is_some_and(|(a, _)| a == k.resource)
                })
        }
        _ => {
            e.process.as_deref() == Some(k.process.as_str())
                && e.resource.to_ascii_lowercase().contains(&k.resource)
        }
    }
}

/// Notes, on every simulated behaviour that a policy's draft held out, that `recommend`
/// held it out as suspicious; returns how many entries were marked. Only policies of the
/// entry's namespace count.
pub fn mark_held_out(entries: &mut [SimEntry], policies: &[Policy]) -> usize {
    let keys: Vec<(Option<String>, Vec<HeldOutKey>)> = policies
        .iter()
        .map(|p| (p.metadata.namespace.clone(), held_out_keys(p)))
        .filter(|(_, k)| !k.is_empty())
        .collect();
    let mut n = 0;
    for e in entries.iter_mut() {
        let hit = keys
            .iter()
            .filter(|(ns, _)| ns.is_none() || *ns == e.namespace)
            .any(|(_, ks)| ks.iter().any(|k| is_held_out(e, k)));
        if hit {
            n += 1;
            let note =
                "held out of the draft by recommend as suspicious (--include suspicious keeps it)";
            e.note = Some(match e.note.take() {
                Some(old) => format!("{note}; {old}"),
                None => note.to_string(),
            });
        }
    }
    n
}
