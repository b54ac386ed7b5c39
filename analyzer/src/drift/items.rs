//! Distinct behaviour items per workload and category, read with one `GROUP BY` over `events`.
//!
//! An item is what a draft would need a rule for: an executable and its parent, a file path
//! and the process that touched it (reads and writes apart), a network peer or local port, a
//! capability and its process, a system call. The query returns raw items (paths as recorded);
//! [`super::generalised`] folds them as drafts do.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{AnalyzerError, Result};
use crate::filter::Param;
use crate::recommend::evidence::WRITE_ACCESSES;
use crate::recommend::{Scope, WorkloadId};
use crate::result_columns::{query_columns, Col};
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

/// An item row: workload, category, item, actor, writes, and per side its aggregate.
type ItemRow = (
    WorkloadId,
    Option<Category>,
    String,
    String,
    bool,
    Vec<Option<Side>>,
);

/// The item query's rows through DuckDB's row API (`n` sides).
fn read_rows(store: &Store, sql: &str, params: &[Param], n: usize) -> Result<Vec<ItemRow>> {
    let mut stmt = store
        .conn()
        .prepare(sql)
        .map_err(AnalyzerError::store("prepare the item query"))?;
    let rows = stmt
        .query_map(duckdb::params_from_iter(params.iter()), |r| {
            let id = WorkloadId {
                namespace: r.get(0)?,
                kind: r.get(1)?,
                name: r.get(2)?,
            };
            let op: String = r.get(3)?;
            let mut per_side = Vec::with_capacity(n);
            for i in 0..n {
                let base = 7 + 5 * i;
                let count: Option<u64> = r.get(base)?;
                per_side.push(match count {
                    Some(count) => Some(Side {
                        count,
                        first_ns: r.get(base + 1)?,
                        last_ns: r.get(base + 2)?,
                        introduced_by: r.get(base + 3)?,
                        pod: r.get(base + 4)?,
                    }),
                    None => None,
                });
            }
            Ok((
                id,
                Category::of_op(&op),
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                per_side,
            ))
        })
        .map_err(AnalyzerError::store("run the item query"))?;
    rows.collect::<std::result::Result<Vec<_>, _>>()
        .map_err(AnalyzerError::store("read the item query"))
}

/// One side's aggregate of an item row.
struct Side {
    count: u64,
    first_ns: i64,
    last_ns: i64,
    introduced_by: String,
    pod: String,
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
    // Without detail (coverage), read as Arrow batches, each row built on every core; with
    // detail (diff: two text columns more per side) the row API measured faster.
    let rows = if detail {
        read_rows(store, &sql, &all, n)?
    } else {
        query_columns(store, &sql, &all, &types, |c, r| {
            let id = WorkloadId {
                namespace: c.text(0, r),
                kind: c.text(1, r).unwrap_or_default(),
                name: c.text(2, r).unwrap_or_default(),
            };
            let category = c.str(3, r).and_then(Category::of_op);
            let item = c.text(4, r).unwrap_or_default();
            let actor = c.text(5, r).unwrap_or_default();
            let writes = c.bool(6, r);
            let per_side: Vec<Option<Side>> = (0..n)
                .map(|i| {
                    let base = 7 + 5 * i;
                    (!c.is_null(base, r)).then(|| Side {
                        count: c.u64(base, r),
                        first_ns: c.i64(base + 1, r),
                        last_ns: c.i64(base + 2, r),
                        introduced_by: c.text(base + 3, r).unwrap_or_default(),
                        pod: c.text(base + 4, r).unwrap_or_default(),
                    })
                })
                .collect();
            (id, category, item, actor, writes, per_side)
        })?
    };
    let mut out: Vec<Items> = (0..n).map(|_| Items::default()).collect();
    for (id, category, item, actor, writes, per_side) in rows {
        let Some(category) = category else {
            continue;
        };
        for (side, values) in out.iter_mut().zip(per_side) {
            let Some(v) = values else {
                continue;
            };
            let span = match side.span.get_mut(&id) {
                Some(span) => span,
                None => side.span.entry(id.clone()).or_insert((i64::MAX, i64::MIN)),
            };
            span.0 = span.0.min(v.first_ns);
            span.1 = span.1.max(v.last_ns);
            if item.is_empty() {
                continue;
            }
            let raw = RawItem {
                group: Group {
                    category,
                    actor: actor.clone(),
                    writes,
                },
                item: item.clone(),
                count: v.count,
                first_ns: v.first_ns,
                last_ns: v.last_ns,
                introduced_by: v.introduced_by,
                pod: v.pod,
            };
            match side.by_workload.get_mut(&id) {
                Some(list) => list.push(raw),
                None => {
                    side.by_workload.insert(id.clone(), vec![raw]);
                }
            }
        }
    }
    for side in &mut out {
        for items in side.by_workload.values_mut() {
            items.sort_by(|a, b| (&a.group, &a.item).cmp(&(&b.group, &b.item)));
        }
    }
    Ok(out)
}
