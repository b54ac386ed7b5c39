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
    let n = sides.len();
    let mut types = vec![Col::Text; 6];
    types.push(Col::Bool);
    for _ in 0..n {
        types.extend([Col::U64, Col::I64, Col::I64, Col::Text, Col::Text]);
    }
    if !(store.is_persistent() && common.filter.is_none()) {
        let parts = query_batches(store, &raw("events"), &raw_params, &types)?;
        let mut out = Collector::new(n);
        out.rows(&parts, None);
        return Ok(out.finish());
    }
    // From the digests of the files the windows take whole, folded per item key in Rust;
    // the rows of files a window cuts through and live rows are read and grouped by DuckDB,
    // and merged with them by item.
    let chosen = digest::sides(store, &sql_parts, windows)?;
    let folded = digest::fold(store, &chosen, n, detail)?;
    let texts = if detail {
        digest::texts(store)?
    } else {
        HashMap::new()
    };
    let keys = query_batches(
        store,
        &digest::keys_sql(&where_sql),
        &params,
        &[
            Col::I64,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Bool,
        ],
    )?;
    let raw_parts = if chosen.cut.is_empty() && !store.has_live_rows()? {
        Vec::new()
    } else {
        let relation = if chosen.cut.is_empty() {
            "live_events".to_string()
        } else {
            format!(
                "({} UNION ALL SELECT * FROM live_events)",
                crate::store::parquet_select(&chosen.cut, false)
            )
        };
        query_batches(store, &raw(&relation), &raw_params, &types)?
    };
    let mut out = Collector::new(n);
    let mut raw_index = RawIndex::new(&raw_parts);
    let text = |id: i64| texts.get(&id).map_or("", String::as_str);
    let mut merged: Vec<Option<Side<'_>>> = vec![None; n];
    for c in &keys {
        for r in 0..c.rows() {
            let Ok(kid) = usize::try_from(c.i64(0, r)) else {
                continue;
            };
            let mut any = false;
            for (side, f) in merged.iter_mut().zip(&folded) {
                *side = f.get(kid).filter(|f| f.present).map(|f| Side {
                    count: f.c,
                    first_ns: if f.t0 == i64::MAX { 0 } else { f.t0 },
                    last_ns: if f.t1 == i64::MIN { 0 } else { f.t1 },
                    introduced_by: text(f.intro),
                    pod: text(f.pod),
                });
                any |= side.is_some();
            }
            if !any {
                continue;
            }
            let key = RowKey::of(c, r, 1);
            // Rows of the same item read from Parquet are merged in, as one `GROUP BY` would.
            if let Some(row) = raw_index.take(&key) {
                for (i, side) in merged.iter_mut().enumerate() {
                    *side = Side::merge(*side, Side::of(row.0, row.1, i));
                }
            }
            out.push(&key, &merged);
        }
    }
    out.rows(&raw_parts, Some(&raw_index));
    Ok(out.finish())
}

/// One side's aggregate of one item, borrowed from a result.
#[derive(Debug, Clone, Copy)]
struct Side<'a> {
    count: u64,
    first_ns: i64,
    last_ns: i64,
    introduced_by: &'a str,
    pod: &'a str,
}

impl<'a> Side<'a> {
    /// Side `side` of row `r` of an item query's result (`None`: not in that window).
    fn of(c: &'a Columns, r: usize, side: usize) -> Option<Side<'a>> {
        let base = 7 + 5 * side;
        (!c.is_null(base, r)).then(|| Side {
            count: c.u64(base, r),
            first_ns: c.i64(base + 1, r),
            last_ns: c.i64(base + 2, r),
            introduced_by: c.str(base + 3, r).unwrap_or_default(),
            pod: c.str(base + 4, r).unwrap_or_default(),
        })
    }

    /// Two aggregates of one item as one: counts summed, the earliest first (with its process
    /// and pod), the latest last.
    fn merge(a: Option<Side<'a>>, b: Option<Side<'a>>) -> Option<Side<'a>> {
        match (a, b) {
            (Some(a), Some(b)) => {
                let early = if b.first_ns < a.first_ns { b } else { a };
                Some(Side {
                    count: a.count + b.count,
                    first_ns: early.first_ns,
                    last_ns: a.last_ns.max(b.last_ns),
                    introduced_by: early.introduced_by,
                    pod: early.pod,
                })
            }
            (a, b) => a.or(b),
        }
    }
}

/// An item's identity in a result: workload key, op, item, actor, writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct RowKey<'a> {
    workload: (Option<&'a str>, &'a str, &'a str),
    op: &'a str,
    item: &'a str,
    actor: &'a str,
    writes: bool,
}

impl<'a> RowKey<'a> {
    /// The key of row `r`, its columns starting at `at` (`k_ns, k_kind, k_name, op, item,
    /// actor, writes`).
    fn of(c: &'a Columns, r: usize, at: usize) -> RowKey<'a> {
        RowKey {
            workload: (
                c.str(at, r),
                c.str(at + 1, r).unwrap_or_default(),
                c.str(at + 2, r).unwrap_or_default(),
            ),
            op: c.str(at + 3, r).unwrap_or_default(),
            item: c.str(at + 4, r).unwrap_or_default(),
            actor: c.str(at + 5, r).unwrap_or_default(),
            writes: c.bool(at + 6, r),
        }
    }
}

/// The rows read from Parquet by item, so that the digests' aggregate of the same item takes
/// them in; a row taken is not collected again.
struct RawIndex<'a> {
    rows: HashMap<RowKey<'a>, (usize, usize)>,
    taken: Vec<Vec<bool>>,
    parts: &'a [Columns],
}

impl<'a> RawIndex<'a> {
    fn new(parts: &'a [Columns]) -> RawIndex<'a> {
        let mut rows = HashMap::new();
        for (b, c) in parts.iter().enumerate() {
            for r in 0..c.rows() {
                rows.insert(RowKey::of(c, r, 0), (b, r));
            }
        }
        RawIndex {
            rows,
            taken: parts.iter().map(|c| vec![false; c.rows()]).collect(),
            parts,
        }
    }

    /// The row of `key`, marked as taken.
    fn take(&mut self, key: &RowKey<'_>) -> Option<(&'a Columns, usize)> {
        if self.rows.is_empty() {
            return None;
        }
        let &(b, r) = self.rows.get(key)?;
        self.taken[b][r] = true;
        Some((&self.parts[b], r))
    }

    fn is_taken(&self, b: usize, r: usize) -> bool {
        self.taken
            .get(b)
            .and_then(|t| t.get(r))
            .copied()
            .unwrap_or(false)
    }
}

/// Builds `n` sides' items from item rows, text borrowed: each row's workload is found by
/// the borrowed key columns (one hash look-up, no copy), and only the item's own texts are
/// copied, once per side it appears in.
struct Collector<'a> {
    n: usize,
    index: HashMap<(Option<&'a str>, &'a str, &'a str), usize>,
    ids: Vec<WorkloadId>,
    /// Per side, per workload (by index): its raw items and its span.
    lists: Vec<Vec<Vec<RawItem>>>,
    spans: Vec<Vec<Option<(i64, i64)>>>,
}

impl<'a> Collector<'a> {
    fn new(n: usize) -> Collector<'a> {
        Collector {
            n,
            index: HashMap::new(),
            ids: Vec::new(),
            lists: vec![Vec::new(); n],
            spans: vec![Vec::new(); n],
        }
    }

    /// Every row of an item query's result, but those `skip` has taken.
    fn rows(&mut self, parts: &'a [Columns], skip: Option<&RawIndex<'_>>) {
        let mut sides: Vec<Option<Side<'a>>> = vec![None; self.n];
        for (b, c) in parts.iter().enumerate() {
            for r in 0..c.rows() {
                if skip.is_some_and(|s| s.is_taken(b, r)) {
                    continue;
                }
                for (i, side) in sides.iter_mut().enumerate() {
                    *side = Side::of(c, r, i);
                }
                self.push(&RowKey::of(c, r, 0), &sides);
            }
        }
    }

    /// One item with its aggregate per side (`None`: not in that window).
    fn push(&mut self, key: &RowKey<'a>, sides: &[Option<Side<'_>>]) {
        let Some(category) = Category::of_op(key.op) else {
            return;
        };
        let w = match self.index.get(&key.workload) {
            Some(&w) => w,
            None => {
                self.ids.push(WorkloadId {
                    namespace: key.workload.0.map(str::to_string),
                    kind: key.workload.1.to_string(),
                    name: key.workload.2.to_string(),
                });
                for side in 0..self.n {
                    self.lists[side].push(Vec::new());
                    self.spans[side].push(None);
                }
                self.index.insert(key.workload, self.ids.len() - 1);
                self.ids.len() - 1
            }
        };
        for (i, s) in sides.iter().enumerate() {
            let Some(s) = s else { continue };
            let span = self.spans[i][w].get_or_insert((i64::MAX, i64::MIN));
            span.0 = span.0.min(s.first_ns);
            span.1 = span.1.max(s.last_ns);
            if key.item.is_empty() {
                continue;
            }
            self.lists[i][w].push(RawItem {
                group: Group {
                    category,
                    actor: key.actor.to_string(),
                    writes: key.writes,
                },
                item: key.item.to_string(),
                count: s.count,
                first_ns: s.first_ns,
                last_ns: s.last_ns,
                introduced_by: s.introduced_by.to_string(),
                pod: s.pod.to_string(),
            });
        }
    }

    fn finish(self) -> Vec<Items> {
        let ids = self.ids;
        self.lists
            .into_iter()
            .zip(self.spans)
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
}
