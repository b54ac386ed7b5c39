//! What changed since a baseline (design §7, Drift): per workload and category, what is new,
//! what is gone, and what changed markedly in volume, generalised as drafts are.
//!
//! Each side's raw items are folded per group ([`super::generalised::fold`]); a raw item of
//! the current data is **new** when no generalised item of the baseline covers it, and the new
//! raw items are folded among themselves (a hundred new temporary files are one new
//! directory). **Gone** is the same the other way round. **Volume** compares, per generalised
//! baseline item, events per hour on each side. A policy can be the baseline instead
//! ([`policy_baseline`]): what the simulator would not allow is new.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use karmor_contract::bundle::{format_ts, parse_ts};
use karmor_contract::Op;
use serde::Serialize;

use crate::recommend::evidence::WRITE_ACCESSES;
use crate::recommend::generalise::GeneraliseOptions;
use crate::recommend::WorkloadId;
use crate::simulate::{Decision, SimReport};

use super::generalised::{fold, fold_refs, fold_with, Coverage, Folded, Shapes};
use super::items::{Category, Group, Items, RawItem};

const HOUR_NS: f64 = 3_600_000_000_000.0;

/// How to compare.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffOptions {
    /// Generalisation (as drafts).
    pub generalise: GeneraliseOptions,
    /// A volume change is marked when events per hour changed by at least this factor.
    pub volume_factor: f64,
    /// ... and the busier side had at least this many events.
    pub volume_min_events: u64,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            generalise: GeneraliseOptions::default(),
            volume_factor: 10.0,
            volume_min_events: 100,
        }
    }
}

/// The kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Seen now, not covered by the baseline.
    New,
    /// In the baseline, not seen now.
    Gone,
    /// Seen on both sides, at a markedly different rate.
    Volume,
}

impl ChangeKind {
    /// `new`, `gone` or `volume`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::New => "new",
            ChangeKind::Gone => "gone",
            ChangeKind::Volume => "volume",
        }
    }
}

/// One change of one workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The workload (or node).
    pub workload: WorkloadId,
    /// The category.
    pub category: Category,
    /// New, gone or volume.
    pub kind: ChangeKind,
    /// The generalised item (path, directory with trailing `/`, pattern, or exact text).
    pub item: String,
    /// `path`, `directory`, `pattern` or `exact`.
    pub shape: &'static str,
    /// Executables: the parent; files and capabilities: the acting process.
    pub actor: String,
    /// Files: written (not only read).
    pub writes: bool,
    /// Raw items it stands for.
    pub absorbed: Vec<String>,
    /// Why it was generalised.
    pub why: Vec<String>,
    /// First seen on the side it was seen on (RFC 3339).
    pub first_seen: String,
    /// The process that introduced it (its earliest row's process; executables: the parent).
    pub introduced_by: String,
    /// The pod of its earliest row.
    pub pod: String,
    /// Events in the current data.
    pub count: u64,
    /// Events in the baseline.
    pub baseline_count: u64,
    /// Volume changes: events per hour, baseline then current.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rates: Option<(f64, f64)>,
}

/// The answer to `diff`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiffReport {
    /// Changes, by workload (hosts last), category, kind, item.
    pub changes: Vec<Change>,
    /// What the baseline is (`data 2026-…–2026-…`, `policy FILE`).
    pub baseline: String,
    /// Notes (what could not be compared).
    pub notes: Vec<String>,
}

impl DiffReport {
    /// Whether anything new was found (the exit status of `kubectl karmor diff`).
    pub fn has_new(&self) -> bool {
        self.changes.iter().any(|c| c.kind == ChangeKind::New)
    }

    /// The new changes.
    pub fn new_items(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.kind == ChangeKind::New)
    }
}

fn change(id: &WorkloadId, kind: ChangeKind, f: Folded, baseline_count: u64) -> Change {
    let (count, baseline_count) = match kind {
        ChangeKind::Gone => (0, f.count),
        _ => (f.count, baseline_count),
    };
    Change {
        workload: id.clone(),
        category: f.group.category,
        kind,
        item: f.target,
        shape: f.shape,
        actor: f.group.actor,
        writes: f.group.writes,
        absorbed: f.absorbed,
        why: f.why,
        first_seen: format_ts(f.first_ns),
        introduced_by: f.introduced_by,
        pod: f.pod,
        count,
        baseline_count,
        rates: None,
    }
}

/// Hours spanned by one side (at least one).
fn hours(items: &Items) -> f64 {
    let first = items.span.values().map(|s| s.0).min();
    let last = items.span.values().map(|s| s.1).max();
    match (first, last) {
        (Some(a), Some(b)) => ((b - a) as f64 / HOUR_NS).max(1.0),
        _ => 1.0,
    }
}

/// Compares the current data with baseline data.
pub fn diff(baseline: &Items, current: &Items, opts: &DiffOptions) -> DiffReport {
    let ids: BTreeSet<&WorkloadId> = baseline.span.keys().chain(current.span.keys()).collect();
    let mut ids: Vec<&WorkloadId> = ids.into_iter().collect();
    ids.sort_by_key(|id| (id.is_host(), (*id).clone()));
    let (base_hours, cur_hours) = (hours(baseline), hours(current));
    let empty: Vec<RawItem> = Vec::new();
    let shapes = Shapes::of(
        baseline
            .by_workload
            .values()
            .chain(current.by_workload.values())
            .flatten(),
    );
    let per_workload = super::par_map(&ids, |id| {
        let base = baseline.by_workload.get(*id).unwrap_or(&empty);
        let cur = current.by_workload.get(*id).unwrap_or(&empty);
        compare(id, base, cur, (base_hours, cur_hours), opts, &shapes)
    });
    let mut changes: Vec<Change> = per_workload.into_iter().flatten().collect();
    sort(&mut changes);
    DiffReport {
        changes,
        baseline: String::new(),
        notes: Vec::new(),
    }
}

/// The changes of one workload.
fn compare(
    id: &WorkloadId,
    base: &[RawItem],
    cur: &[RawItem],
    (base_hours, cur_hours): (f64, f64),
    opts: &DiffOptions,
    shapes: &Shapes,
) -> Vec<Change> {
    let mut changes = Vec::new();
    let base_folded = fold_with(base, &opts.generalise, shapes);
    let cur_folded = fold_with(cur, &opts.generalise, shapes);
    let base_cov = Coverage::new(&base_folded);
    let cur_cov = Coverage::new(&cur_folded);

    // Current events per baseline item (by its address in `base_folded`), for volume.
    let mut now_events: HashMap<*const Folded, u64> = HashMap::new();
    let mut new_raw: Vec<&RawItem> = Vec::new();
    // Items come sorted by group: each run of one group looks the group up once.
    for run in cur.chunk_by(|a, b| a.group == b.group) {
        let cover = base_cov.of_group(&run[0].group);
        for r in run {
            match cover.covering(&r.item) {
                Some(f) => *now_events.entry(std::ptr::from_ref(f)).or_default() += r.count,
                None => new_raw.push(r),
            }
        }
    }
    let mut gone_raw: Vec<&RawItem> = Vec::new();
    for run in base.chunk_by(|a, b| a.group == b.group) {
        let cover = cur_cov.of_group(&run[0].group);
        gone_raw.extend(run.iter().filter(|r| cover.covering(&r.item).is_none()));
    }
    for f in fold_refs(new_raw, &opts.generalise, shapes) {
        changes.push(change(id, ChangeKind::New, f, 0));
    }
    for f in fold_refs(gone_raw, &opts.generalise, shapes) {
        changes.push(change(id, ChangeKind::Gone, f, 0));
    }
    for f in &base_folded {
        let Some(&now) = now_events.get(&std::ptr::from_ref(f)) else {
            continue;
        };
        let (before_rate, now_rate) = (f.count as f64 / base_hours, now as f64 / cur_hours);
        let busier = f.count.max(now);
        let ratio = if before_rate > 0.0 {
            now_rate / before_rate
        } else {
            f64::INFINITY
        };
        if busier >= opts.volume_min_events
            && (ratio >= opts.volume_factor || ratio <= 1.0 / opts.volume_factor)
        {
            let mut c = change(id, ChangeKind::Volume, f.clone(), f.count);
            c.count = now;
            c.rates = Some((round2(before_rate), round2(now_rate)));
            changes.push(c);
        }
    }
    changes
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn sort(changes: &mut [Change]) {
    changes.sort_by(|a, b| {
        (
            a.workload.is_host(),
            &a.workload,
            a.category,
            a.kind,
            &a.item,
            &a.actor,
        )
            .cmp(&(
                b.workload.is_host(),
                &b.workload,
                b.category,
                b.kind,
                &b.item,
                &b.actor,
            ))
    });
}

/// Whether a file access changes the file (as `WRITE_ACCESSES`).
fn is_write(access: &str) -> bool {
    WRITE_ACCESSES
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .any(|a| a.trim().trim_matches('\'') == access)
}

/// The item of a simulated behaviour, keyed as [`super::items`] keys data.
fn sim_item(e: &crate::simulate::SimEntry) -> Option<(WorkloadId, RawItem)> {
    let id = if e.host {
        WorkloadId {
            namespace: None,
            kind: "Node".into(),
            name: e.node.clone(),
        }
    } else {
        let (kind, name) = e.workload.split_once('/')?;
        WorkloadId {
            namespace: e.namespace.clone(),
            kind: kind.into(),
            name: name.into(),
        }
    };
    let process = e.process.clone().unwrap_or_default();
    let (category, actor, writes, item) = match e.op {
        Op::Process => (
            Category::Executables,
            e.parent.clone().unwrap_or_default(),
            false,
            process.clone(),
        ),
        Op::File => (
            Category::Files,
            process.clone(),
            e.access.as_deref().is_some_and(is_write),
            e.resource.clone(),
        ),
        Op::Network => {
            // `proto direction peer:port`; inbound is keyed on the local port alone.
            let inbound = matches!(e.access.as_deref(), Some("accept" | "listen" | "bind"));
            let item = match (inbound, e.resource.rsplit_once(':')) {
                (true, Some((head, port))) if !head.starts_with("unix") => {
                    let mut words = head.split(' ');
                    let proto = words.next().unwrap_or("-");
                    let dir = words.next().unwrap_or("-");
                    format!("{proto} {dir} :{port}")
                }
                _ => e.resource.clone(),
            };
            (Category::Network, String::new(), false, item)
        }
        Op::Capability => (
            Category::Capabilities,
            process.clone(),
            false,
            e.resource.clone(),
        ),
        Op::Syscall => return None,
    };
    let first_ns = parse_ts(&e.first_seen).unwrap_or(0);
    let last_ns = parse_ts(&e.last_seen).unwrap_or(first_ns);
    Some((
        id,
        RawItem {
            group: Group {
                category,
                actor,
                writes,
            },
            item,
            count: e.count,
            first_ns,
            last_ns,
            introduced_by: if e.op == Op::Process {
                e.parent.clone().unwrap_or_default()
            } else {
                process
            },
            pod: String::new(),
        },
    ))
}

/// With a policy as the baseline: everything the simulator would not allow (audited or
/// blocked) is new, folded as data diffs are. `report` is the simulation of the current data.
pub fn policy_baseline(report: &SimReport, opts: &DiffOptions) -> DiffReport {
    let mut new_raw: BTreeMap<WorkloadId, BTreeMap<(Group, String), RawItem>> = BTreeMap::new();
    for e in &report.entries {
        if !matches!(e.decision, Decision::Audited | Decision::Blocked) {
            continue;
        }
        let Some((id, raw)) = sim_item(e) else {
            continue;
        };
        // Entries differ by node, uid and result too: merge them into one raw item.
        let slot = new_raw
            .entry(id)
            .or_default()
            .entry((raw.group.clone(), raw.item.clone()))
            .or_insert_with(|| RawItem {
                count: 0,
                first_ns: i64::MAX,
                last_ns: i64::MIN,
                ..raw.clone()
            });
        slot.count += raw.count;
        if raw.first_ns < slot.first_ns {
            slot.first_ns = raw.first_ns;
            slot.introduced_by = raw.introduced_by.clone();
        }
        slot.last_ns = slot.last_ns.max(raw.last_ns);
    }
    let mut changes = Vec::new();
    for (id, raws) in new_raw {
        let raws: Vec<RawItem> = raws.into_values().collect();
        for f in fold(&raws, &opts.generalise) {
            changes.push(change(&id, ChangeKind::New, f, 0));
        }
    }
    sort(&mut changes);
    let mut notes = report.not_simulated.clone();
    notes.push(
        "with a policy as the baseline only new behaviour is listed (a policy has no volumes, and what it allows but the data never did is not 'gone')".into(),
    );
    DiffReport {
        changes,
        baseline: String::new(),
        notes,
    }
}

/// Whether every raw item of `data` is covered by `baseline`'s generalised items or by the
/// report's new items (the property `diff A B ∪ A ⊇ B`).
pub fn covers_all(baseline: &Items, report: &DiffReport, data: &Items, opts: &DiffOptions) -> bool {
    data.by_workload.iter().all(|(id, raws)| {
        let base = baseline
            .by_workload
            .get(id)
            .map(|b| fold(b, &opts.generalise))
            .unwrap_or_default();
        let cov = Coverage::new(&base);
        let new: Vec<&Change> = report.new_items().filter(|c| &c.workload == id).collect();
        raws.iter().all(|r| {
            cov.covering(r).is_some()
                || new.iter().any(|c| {
                    c.category == r.group.category
                        && c.actor == r.group.actor
                        && c.writes == r.group.writes
                        && c.absorbed.contains(&r.item)
                })
        })
    })
}
