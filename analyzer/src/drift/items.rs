//! Distinct behaviour items per workload and category, read with one `GROUP BY` over `events`.
//!
//! An item is what a draft would need a rule for: an executable and its parent, a file path
//! and the process that touched it (reads and writes apart), a network peer or local port, a
//! capability and its process, a system call. The query returns raw items (paths as recorded);
//! [`super::generalised`] folds them as drafts do.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::error::{AnalyzerError, Result};
use crate::filter::Param;
use crate::recommend::evidence::WRITE_ACCESSES;
use crate::recommend::{Scope, WorkloadId};
use crate::result_columns::{query_batches, Col, Columns};
use crate::store::Store;

use super::digest;

/// A category of behaviour, as stability and drift report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Executed paths (with their parent).
    Executables,
    /// File paths (with the acting process, reads and writes apart).
    Files,
    /// Network peers (outbound) and local ports (inbound).
    Network,
    /// Capabilities (with the acting process).
    Capabilities,
    /// System calls.
    Syscalls,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: [Category; 5] = [
        Category::Executables,
        Category::Files,
        Category::Network,
        Category::Capabilities,
        Category::Syscalls,
    ];

    /// `executables`, `files`, `network`, `capabilities` or `syscalls`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Executables => "executables",
            Category::Files => "files",
            Category::Network => "network",
            Category::Capabilities => "capabilities",
            Category::Syscalls => "syscalls",
        }
    }

    /// The category of an `op` value.
    pub fn of_op(op: &str) -> Option<Category> {
        match op {
            "process" => Some(Category::Executables),
            "file" => Some(Category::Files),
            "network" => Some(Category::Network),
            "capability" => Some(Category::Capabilities),
            "syscall" => Some(Category::Syscalls),
            _ => None,
        }
    }
}

impl std::str::FromStr for Category {
    type Err = AnalyzerError;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s || c.as_str().trim_end_matches('s') == s)
            .ok_or_else(|| {
                AnalyzerError::Invalid(format!(
                    "unknown category {s:?}: expected executables, files, network, capabilities or syscalls"
                ))
            })
    }
}

/// What an item is keyed on besides its text: the actor whose rule it would go in, and for
/// files whether it changes the file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Group {
    /// The category.
    pub category: Category,
    /// Executables: the parent; files and capabilities: the acting process; `""` otherwise or
    /// when unknown.
    pub actor: String,
    /// Files: written (anything but read/exec).
    pub writes: bool,
}

/// One distinct raw item of one workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawItem {
    /// Its group.
    pub group: Group,
    /// The executed path, file path, `proto direction peer:port`, capability or syscall.
    pub item: String,
    /// Raw events.
    pub count: u64,
    /// First seen (ns).
    pub first_ns: i64,
    /// Last seen (ns).
    pub last_ns: i64,
    /// The process of its earliest row (for executables: the parent).
    pub introduced_by: String,
    /// The pod of its earliest row (`""` on the host).
    pub pod: String,
}

/// Every workload's raw items in scope, and each workload's first and last behaviour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Items {
    /// Raw items per workload.
    pub by_workload: BTreeMap<WorkloadId, Vec<RawItem>>,
    /// (first, last) behaviour per workload (ns).
    pub span: BTreeMap<WorkloadId, (i64, i64)>,
}

/// The workload key columns, named (same keys as `recommend`).
const KEYS: &str = crate::recommend::evidence::NAMED_KEY_SQL;

/// The item text per op (fixed SQL). Inbound network is keyed on the local port (clients
/// vary, and the local address is the pod's own, which changes with each pod; unix sockets
/// keep their path), outbound on the peer (name when known) and port.
const ITEM_SQL: &str = "CASE op
    WHEN 'process' THEN coalesce(process, '')
    WHEN 'file' THEN coalesce(path, '')
    WHEN 'network' THEN concat_ws(' ', coalesce(lower(proto), '-'), coalesce(direction, '-'),
        CASE WHEN direction IN ('accept', 'listen', 'bind')
             THEN CASE WHEN lower(proto) = 'unix' THEN coalesce(local_addr, '') ELSE '' END
                  || ':' || coalesce(CAST(local_port AS VARCHAR), '*')
             ELSE coalesce(remote_name, remote_addr, '') ||
                  CASE WHEN remote_port IS NULL THEN '' ELSE ':' || CAST(remote_port AS VARCHAR) END
        END)
    WHEN 'capability' THEN coalesce(capability, '')
    ELSE coalesce(syscall, '') END";

/// Reads the distinct items of every workload in `scope`.
pub fn read(store: &Store, scope: &Scope) -> Result<Items> {
    let mut sides = query(
        store,
        &timeless(scope),
        &[(scope.since_ns, scope.until_ns)],
        true,
    )?;
    Ok(sides.pop().unwrap_or_default())
}

/// [`read`] without `introduced_by` and `pod` (left empty): what stability needs, and cheaper
/// (no `arg_min` per group).
pub fn read_counts(store: &Store, scope: &Scope) -> Result<Items> {
    let mut sides = query(
        store,
        &timeless(scope),
        &[(scope.since_ns, scope.until_ns)],
        false,
    )?;
    Ok(sides.pop().unwrap_or_default())
}

/// Reads the items of two time windows of the same workloads in one pass over `events` (what
/// `diff` of two windows of one store needs): `scope`'s own times are ignored, `a` and `b`
/// are (since, until) pairs as in [`Scope`].
pub fn read_pair(store: &Store, scope: &Scope, a: Window, b: Window) -> Result<(Items, Items)> {
    let mut sides = query(store, &timeless(scope), &[a, b], true)?;
    let second = sides.pop().unwrap_or_default();
    let first = sides.pop().unwrap_or_default();
    Ok((first, second))
}

/// A time window: rows last seen at or after `.0` and first seen before `.1` (ns).
pub type Window = (Option<i64>, Option<i64>);

/// `scope` without its times (the windows carry them).
fn timeless(scope: &Scope) -> Scope {
    Scope {
        since_ns: None,
        until_ns: None,
        ..scope.clone()
    }
}

/// A window's condition on `events` rows (fixed SQL) and its parameters.
fn window_sql((since, until): Window) -> (String, Vec<Param>) {
    let mut c = vec!["TRUE".to_string()];
    let mut p = Vec::new();
    if let Some(s) = since {
        c.push("epoch_ns(ts_last) >= ?".into());
        p.push(Param::Int(s));
    }
    if let Some(u) = until {
        c.push("epoch_ns(ts_first) < ?".into());
        p.push(Param::Int(u));
    }
    (c.join(" AND "), p)
}

/// The actor of an item (fixed SQL).
const ACTOR_SQL: &str = "CASE op WHEN 'process' THEN coalesce(parent_process, '')
    WHEN 'file' THEN coalesce(process, '')
    WHEN 'capability' THEN coalesce(process, '')
    ELSE '' END";

/// The process that introduced an item (fixed SQL): for executables the parent.
const INTRO_SQL: &str =
    "CASE WHEN op = 'process' THEN coalesce(parent_process, '') ELSE coalesce(process, '') END";

/// The item SQL, as [`digest`] keeps it.
pub(crate) fn item_sql() -> digest::ItemSql {
    digest::ItemSql {
        keys: KEYS,
        item: ITEM_SQL,
        actor: ACTOR_SQL,
        writes: format!("(op = 'file' AND coalesce(access, '') IN {WRITE_ACCESSES})"),
        intro: INTRO_SQL,
    }
}

/// One `GROUP BY` over the items of `common`'s rows that fall in any of `windows`, aggregated
/// per window with `FILTER`, so the rows are read once. Without `detail`, `introduced_by` and
/// `pod` are left empty. A store file answers from its files' digests where a window takes a
/// file whole ([`digest`]); other rows are read from Parquet.
fn query(store: &Store, common: &Scope, windows: &[Window], detail: bool) -> Result<Vec<Items>> {
    let sides: Vec<(String, Vec<Param>)> = windows.iter().copied().map(window_sql).collect();
    let (where_sql, params) = common.sql();
    let sql_parts = item_sql();
    let flags: Vec<String> = sides
        .iter()
        .enumerate()
        .map(|(i, (cond, _))| format!("({cond}) AS in_{i}"))
        .collect();
    let any: Vec<String> = sides.iter().map(|(cond, _)| format!("({cond})")).collect();
    let aggs: Vec<String> = (0..sides.len())
        .map(|i| {
            let (intro, pod) = if detail {
                (
                    format!("arg_min(intro, t0) FILTER (WHERE in_{i})"),
                    format!("arg_min(p, t0) FILTER (WHERE in_{i})"),
                )
            } else {
                ("''".to_string(), "''".to_string())
            };
            format!(
                "CAST(sum(c) FILTER (WHERE in_{i}) AS UBIGINT) AS c_{i},
                 min(t0) FILTER (WHERE in_{i}) AS t0_{i}, max(t1) FILTER (WHERE in_{i}) AS t1_{i},
                 {intro} AS intro_{i}, {pod} AS pod_{i}"
            )
        })
        .collect();
    // The rows of `relation`, grouped into items per window.
    let raw = |relation: &str| {
        format!(
            "SELECT k_ns, k_kind, k_name, op, item, actor, writes, {aggs}
             FROM (SELECT {KEYS}, op, {ITEM_SQL} AS item, {ACTOR_SQL} AS actor, {writes} AS writes,
                          count AS c, epoch_ns(ts_first) AS t0, epoch_ns(ts_last) AS t1,
                          {INTRO_SQL} AS intro, coalesce(pod, '') AS p, {flags}
                   FROM {relation}
                   WHERE op IN ('process', 'file', 'network', 'capability', 'syscall')
                     AND {where_sql} AND ({any}))
             GROUP BY k_ns, k_kind, k_name, op, item, actor, writes",
            aggs = aggs.join(", "),
            writes = sql_parts.writes,
            flags = flags.join(", "),
            any = any.join(" OR "),
        )
    };
    // Placeholders in text order of the raw part: the side flags, the scope, the side
    // conditions again.
    let mut raw_params: Vec<Param> = sides.iter().flat_map(|(_, p)| p.iter().cloned()).collect();
    raw_params.extend(params.iter().cloned());
    raw_params.extend(sides.iter().flat_map(|(_, p)| p.iter().cloned()));
    let (sql, all) = if store.is_persistent() && common.filter.is_none() {
        let cut = digest::sides(store, &sql_parts, windows)?;
        let digested = digest::aggregated_sql(&where_sql, sides.len(), detail);
        if cut.is_empty() && !store.has_live_rows()? {
            (digested, params)
        } else {
            let relation = if cut.is_empty() {
                "live_events".to_string()
            } else {
                format!(
                    "({} UNION ALL SELECT * FROM live_events)",
                    crate::store::parquet_select(&cut, false)
                )
            };
            // The digests' items and the rows' items, each aggregated per window, merged.
            let merged: Vec<String> = (0..sides.len())
                .map(|i| {
                    format!(
                        "CAST(sum(c_{i}) AS UBIGINT), min(t0_{i}), max(t1_{i}),
                         arg_min(intro_{i}, t0_{i}), arg_min(pod_{i}, t0_{i})"
                    )
                })
                .collect();
            let mut all = params.clone();
            all.extend(raw_params);
            (
                format!(
                    "SELECT k_ns, k_kind, k_name, op, item, actor, writes, {merged}
                     FROM ({digested} UNION ALL {raw})
                     GROUP BY k_ns, k_kind, k_name, op, item, actor, writes",
                    merged = merged.join(", "),
                    raw = raw(&relation),
                ),
                all,
            )
        }
    } else {
        (raw("events"), raw_params)
    };
    let n = sides.len();
    let mut types = vec![Col::Text; 6];
    types.push(Col::Bool);
    for _ in 0..n {
        types.extend([Col::U64, Col::I64, Col::I64, Col::Text, Col::Text]);
    }
    let parts = query_batches(store, &sql, &all, &types)?;
    Ok(collect(&parts, n))
}

/// The item query's result as `n` sides' items. Its text is read in place: each row's
/// workload is found by the borrowed key columns (one hash look-up, no copy), and only the
/// item's own texts are copied, once per side it appears in.
fn collect(parts: &[Columns], n: usize) -> Vec<Items> {
    type Key<'a> = (Option<&'a str>, &'a str, &'a str);
    let mut index: HashMap<Key<'_>, usize> = HashMap::new();
    let mut ids: Vec<WorkloadId> = Vec::new();
    // Per side, per workload (by index): its raw items and its span.
    let mut lists: Vec<Vec<Vec<RawItem>>> = vec![Vec::new(); n];
    let mut spans: Vec<Vec<Option<(i64, i64)>>> = vec![Vec::new(); n];
    for c in parts {
        for r in 0..c.rows() {
            let Some(category) = c.str(3, r).and_then(Category::of_op) else {
                continue;
            };
            let key: Key<'_> = (
                c.str(0, r),
                c.str(1, r).unwrap_or_default(),
                c.str(2, r).unwrap_or_default(),
            );
            let w = *index.entry(key).or_insert_with(|| {
                ids.push(WorkloadId {
                    namespace: key.0.map(str::to_string),
                    kind: key.1.to_string(),
                    name: key.2.to_string(),
                });
                for side in 0..n {
                    lists[side].push(Vec::new());
                    spans[side].push(None);
                }
                ids.len() - 1
            });
            let item = c.str(4, r).unwrap_or_default();
            let actor = c.str(5, r).unwrap_or_default();
            let writes = c.bool(6, r);
            for side in 0..n {
                let base = 7 + 5 * side;
                if c.is_null(base, r) {
                    continue;
                }
                let (first_ns, last_ns) = (c.i64(base + 1, r), c.i64(base + 2, r));
                let span = spans[side][w].get_or_insert((i64::MAX, i64::MIN));
                span.0 = span.0.min(first_ns);
                span.1 = span.1.max(last_ns);
                if item.is_empty() {
                    continue;
                }
                lists[side][w].push(RawItem {
                    group: Group {
                        category,
                        actor: actor.to_string(),
                        writes,
                    },
                    item: item.to_string(),
                    count: c.u64(base, r),
                    first_ns,
                    last_ns,
                    introduced_by: c.str(base + 3, r).unwrap_or_default().to_string(),
                    pod: c.str(base + 4, r).unwrap_or_default().to_string(),
                });
            }
        }
    }
    lists
        .into_iter()
        .zip(spans)
        .map(|(lists, spans)| {
            // Each workload's items in (group, item) order, sorted on every core.
            let sorted = super::par_map_owned(lists, |mut items| {
                items.sort_by(|a, b| (&a.group, &a.item).cmp(&(&b.group, &b.item)));
                items
            });
            let mut side = Items::default();
            for ((id, items), span) in ids.iter().zip(sorted).zip(spans) {
                let Some(span) = span else { continue };
                side.span.insert(id.clone(), span);
                if !items.is_empty() {
                    side.by_workload.insert(id.clone(), items);
                }
            }
            side
        })
        .collect()
}
