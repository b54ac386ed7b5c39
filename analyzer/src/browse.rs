//! `observe`'s sections as views a terminal UI pages through (design §8: key press to redrawn
//! screen ≤ 100 ms for sort and scroll, ≤ 0.5 s for a new filter, on 10M rows).
//!
//! A view is one section of an [`ObserveQuery`] (the same grouped SQL as `observe`'s summary,
//! [`observe::section_sql`]) plus a few aggregates a table of behaviours needs on screen: the
//! worst outcome (Allow/Audit/Block) and counts per time bucket for an activity sparkline.
//! [`build_view`] materialises it once into a temporary table, stored in `observe`'s order and
//! numbered by it (`rn0`); [`arrange`] says in which order (a column up or down, then `rn0`: a
//! total order) and with which quick search its rows are read, and counts them; [`page`] reads
//! a window of rows in two steps: the window's numbers (a range of `rn0` in `observe`'s order;
//! a range of a sort order kept by [`rank_view`]; else a top-N query over `rn0` and the order's
//! columns, `ORDER BY … LIMIT … OFFSET …` from whichever end of the order is nearer), then
//! those rows, through the view's index by `rn0` ([`index_view`]) when it has one.
//! [`index_view`] and [`rank_view`] are made when the UI is idle; until then pages read the
//! same rows without them. [`refine_view`] narrows a view by a filter on its grouping columns
//! without reading `events`.
//! Sorting and searching therefore never touch `events` again nor copy the view, and a screen
//! reads only the rows it shows. Views live in numbered slots (one per drill-down level), so
//! going back re-reads a view instead of recomputing it.

use duckdb::params_from_iter;
use duckdb::types::Value;
use karmor_contract::Op;

use crate::access_set;
use crate::error::{AnalyzerError, Result};
use crate::filter::{Field, Param, SqlFilter};
use crate::observe::{self, section_keys, NamespaceScope, ObserveQuery, ResourceKind};
use crate::store::Store;

/// Time buckets of a row's activity sparkline.
pub const ACTIVITY_BUCKETS: usize = 12;

/// The most severe policy outcome seen in a group of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// No policy alert (or an Allow rule).
    Allow,
    /// A policy audited it.
    Audit,
    /// Refused (`Permission denied`) without a policy alert saying why: file permissions,
    /// or an enforcer whose alert is not in the data.
    Denied,
    /// A policy blocked it.
    Block,
}

impl Outcome {
    /// `Allow`, `Audit` or `Block`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "Allow",
            Outcome::Audit => "Audit",
            Outcome::Denied => "Denied",
            Outcome::Block => "Block",
        }
    }

    fn from_rank(rank: i64) -> Outcome {
        match rank {
            3 => Outcome::Block,
            2 => Outcome::Denied,
            1 => Outcome::Audit,
            _ => Outcome::Allow,
        }
    }
}

/// Aggregate SQL of a group's worst outcome, as a rank (0 Allow, 1 Audit, 2 Denied, 3 Block).
const OUTCOME_SQL: &str = "max(CASE WHEN action = 'Block' THEN 3 \
    WHEN result = 'Permission denied' THEN 2 WHEN action = 'Audit' THEN 1 ELSE 0 END)::INTEGER";
/// The outcome's name from its rank (for the quick search).
const OUTCOME_NAME_SQL: &str = "CASE outcome WHEN 3 THEN 'Block' WHEN 2 THEN 'Denied' \
    WHEN 1 THEN 'Audit' ELSE 'Allow' END";

/// The time span rows are bucketed over (ns since epoch, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Earliest `ts_first`.
    pub first_ns: i64,
    /// Latest `ts_last`.
    pub last_ns: i64,
}

impl TimeRange {
    /// Width of one of `buckets` buckets (at least 1 ns).
    pub fn bucket_ns(&self, buckets: usize) -> i64 {
        let span = (self.last_ns - self.first_ns).max(0) + 1;
        let n = buckets.max(1) as i64;
        (span + n - 1) / n
    }

    /// SQL of the bucket (0-based, clamped) of a row's `ts_first` (numbers only, no user text).
    fn bucket_sql(&self, buckets: usize) -> String {
        format!(
            "least({}, greatest(0, (epoch_ns(ts_first) - {}) // {}))",
            buckets.max(1) - 1,
            self.first_ns,
            self.bucket_ns(buckets)
        )
    }
}

/// A column of a view as a table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Header text.
    pub title: String,
    /// SQL over the view to sort by; `None` when it cannot be sorted.
    pub order: Option<&'static str>,
    /// Whether a first sort on it is descending (counts, times and results: largest first).
    pub descending_first: bool,
}

/// One row of a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowseRow {
    /// Its number in the arranged view (1-based).
    pub rn: u64,
    /// Namespace of the resource (none for namespace and node views).
    pub namespace: Option<String>,
    /// The resource (see [`ResourceKind`]).
    pub resource: String,
    /// The section's own columns as text (`-` for none), in [`columns`] order.
    pub keys: Vec<String>,
    /// Worst outcome.
    pub outcome: Outcome,
    /// Raw events.
    pub count: u64,
    /// First seen (ns).
    pub first_ns: i64,
    /// Last seen (ns).
    pub last_ns: i64,
    /// Events per time bucket of the data's range.
    pub activity: Vec<u64>,
}

impl BrowseRow {
    /// The cells of [`columns`] except the activity sparkline, times as RFC 3339.
    pub fn cells(&self, show_namespace: bool) -> Vec<String> {
        let mut v = Vec::new();
        if show_namespace {
            v.push(self.namespace.clone().unwrap_or_else(|| "-".into()));
        }
        v.push(self.resource.clone());
        v.extend(self.keys.iter().cloned());
        v.push(self.outcome.as_str().to_string());
        v.push(self.count.to_string());
        v.push(karmor_contract::bundle::format_ts(self.first_ns));
        v.push(karmor_contract::bundle::format_ts(self.last_ns));
        v
    }
}

/// Whether a view of `q` shows a namespace column (as `observe`'s table does).
pub fn shows_namespace(q: &ObserveQuery) -> bool {
    q.kind.namespaced() && q.namespace == NamespaceScope::All
}

/// The section's own columns: (title, view column, sort SQL).
fn key_columns(op: Op) -> &'static [(&'static str, &'static str)] {
    match op {
        Op::Process => &[("PARENT", "parent"), ("PROCESS", "process")],
        Op::File => &[
            ("MODE", "mode"),
            ("PROCESS", "process"),
            ("PATH", "path"),
            ("ACCESS", "bits"),
        ],
        Op::Network => &[
            ("DIRECTION", "direction"),
            ("PROTO", "proto"),
            ("PROCESS", "process"),
            ("PEER", "peer"),
            ("PORT", "port"),
        ],
        Op::Syscall => &[("PROCESS", "process"), ("SYSCALL", "syscall")],
        Op::Capability => &[("PROCESS", "process"), ("CAPABILITY", "capability")],
    }
}

/// One term of an `ORDER BY` over a view.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    /// A view column (fixed SQL, never user text).
    col: &'static str,
    desc: bool,
    nulls_first: bool,
}

impl Term {
    const fn asc(col: &'static str) -> Term {
        Term {
            col,
            desc: false,
            nulls_first: false,
        }
    }

    const fn desc(col: &'static str) -> Term {
        Term {
            col,
            desc: true,
            nulls_first: false,
        }
    }

    /// Its SQL, or the reverse order's.
    fn sql(&self, reverse: bool) -> String {
        let desc = self.desc != reverse;
        let nulls_first = self.nulls_first != reverse;
        format!(
            "{} {} NULLS {}",
            self.col,
            if desc { "DESC" } else { "ASC" },
            if nulls_first { "FIRST" } else { "LAST" }
        )
    }
}

/// `observe`'s order of a section over the view, ended by every grouping column of the
/// section so that it is a total order (pages of a `LIMIT`/`OFFSET` never overlap).
fn default_order(op: Op) -> Vec<Term> {
    let ns = Term {
        col: "ns",
        desc: false,
        nulls_first: true,
    };
    let mut v = vec![ns, Term::asc("resource")];
    let (head, tail): (&[Term], &[&'static str]) = match op {
        Op::Process => (
            &[
                Term::desc("seen_count"),
                Term::asc("process"),
                Term::asc("parent"),
            ],
            &[],
        ),
        Op::File => (
            &[
                Term::asc("mode"),
                Term::desc("seen_count"),
                Term::asc("path"),
                Term::asc("process"),
            ],
            &["bits", "others"],
        ),
        Op::Network => (
            &[
                Term::asc("direction"),
                Term::desc("seen_count"),
                Term::asc("peer"),
                Term::asc("port"),
                Term::asc("proto"),
                Term::asc("process"),
            ],
            &[],
        ),
        Op::Syscall => (
            &[
                Term::desc("seen_count"),
                Term::asc("process"),
                Term::asc("syscall"),
            ],
            &[],
        ),
        Op::Capability => (
            &[
                Term::desc("seen_count"),
                Term::asc("process"),
                Term::asc("capability"),
            ],
            &[],
        ),
    };
    v.extend_from_slice(head);
    v.extend(tail.iter().map(|c| Term::asc(c)));
    v
}

/// The columns a table of `q`'s `op` view shows, in order: namespace (when
/// [`shows_namespace`]), resource, the section's columns, RESULT, COUNT, FIRST SEEN, LAST SEEN,
/// ACTIVITY.
pub fn columns(q: &ObserveQuery, op: Op) -> Vec<Column> {
    let mut v = Vec::new();
    if shows_namespace(q) {
        v.push(Column {
            title: "NAMESPACE".into(),
            order: Some("ns"),
            descending_first: false,
        });
    }
    v.push(Column {
        title: q.kind.to_string().to_ascii_uppercase(),
        order: Some("resource"),
        descending_first: false,
    });
    for (title, col) in key_columns(op) {
        v.push(Column {
            title: title.to_string(),
            order: Some(col),
            descending_first: false,
        });
    }
    for (title, order) in [
        ("RESULT", "outcome"),
        ("COUNT", "seen_count"),
        ("FIRST SEEN", "seen_first"),
        ("LAST SEEN", "seen_last"),
    ] {
        v.push(Column {
            title: title.into(),
            order: Some(order),
            descending_first: true,
        });
    }
    v.push(Column {
        title: "ACTIVITY".into(),
        order: None,
        descending_first: false,
    });
    v
}

fn view_table(slot: usize) -> String {
    format!("karmor_view_{slot}")
}

/// The table of view `slot`'s `rn0`s in the order of a sort: row `i` (its `rowid`) is the
/// `i`-th row of that order ([`rank_view`]).
fn rank_table(slot: usize, sort: (usize, bool)) -> String {
    format!(
        "karmor_rank_{slot}_{}_{}",
        sort.0,
        if sort.1 { "desc" } else { "asc" }
    )
}

/// The table of view `slot`'s sort heads ([`head_view`]); named as a sort order, so that
/// building the view again drops it with them.
fn head_table(slot: usize) -> String {
    format!("karmor_rank_{slot}_heads")
}

/// Rows of each sort head ([`head_view`]): the first pages of any sort.
pub const HEAD_ROWS: u64 = 1000;

fn rank_prefix(slot: usize) -> String {
    format!("karmor_rank_{slot}_")
}

fn index_name(slot: usize) -> String {
    format!("karmor_view_{slot}_rn0")
}

/// Whether a temporary table or index named `name` exists.
fn exists(store: &Store, catalog: &str, name: &str) -> Result<bool> {
    store
        .conn()
        .query_row(
            &format!(
                "SELECT count(*) FROM {catalog}() WHERE database_name = 'temp' AND {}_name = ?",
                if catalog == "duckdb_indexes" {
                    "index"
                } else {
                    "table"
                }
            ),
            [name],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(AnalyzerError::store("read the catalog"))
}

/// Drops the sort orders kept for view `slot` ([`rank_view`]): its rows change.
fn drop_ranks(store: &Store, slot: usize) -> Result<()> {
    let names: Vec<String> = {
        let mut stmt = store
            .conn()
            .prepare(
                "SELECT table_name FROM duckdb_tables()
                 WHERE database_name = 'temp' AND starts_with(table_name, ?)",
            )
            .map_err(AnalyzerError::store("list sort orders"))?;
        let rows = stmt
            .query_map([rank_prefix(slot)], |r| r.get::<_, String>(0))
            .map_err(AnalyzerError::store("list sort orders"))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(AnalyzerError::store("list sort orders"))?
    };
    for name in names {
        // Names are ours (`karmor_rank_<n>_<n>_<dir>`), never user text.
        run(
            store,
            &format!("DROP TABLE IF EXISTS {name}"),
            &[],
            "drop a sort order",
        )?;
    }
    Ok(())
}

/// Indexes view `slot` by `rn0` (an ART index), so that a page of any order fetches its rows
/// by number through the index instead of scanning the view (a scan of a 2.4M-row view
/// for 84 numbers costs about half a second; through the index, milliseconds). A view
/// is usable without it; the UI's worker makes it when idle, after the first screen.
pub fn index_view(store: &Store, slot: usize) -> Result<()> {
    run(
        store,
        &format!(
            "CREATE INDEX IF NOT EXISTS {} ON {} (rn0)",
            index_name(slot),
            view_table(slot)
        ),
        &[],
        "index a view",
    )
}

/// Keeps view `slot`'s `rn0`s in the order of `sort` (a column of [`columns`] and its
/// direction, then `rn0`, as [`arrange`] orders), so that any window of that order is a
/// range read ([`page`]) instead of a top-N query over the whole view. Made by the UI's
/// worker when idle; an arrangement made before it reads top-N queries.
pub fn rank_view(
    store: &Store,
    slot: usize,
    q: &ObserveQuery,
    op: Op,
    sort: (usize, bool),
) -> Result<()> {
    let order = sort_order(q, op, Some(sort))?;
    run(
        store,
        &format!(
            "CREATE OR REPLACE TEMP TABLE {} AS SELECT CAST(rn0 AS UINTEGER) AS rn0 FROM {}
             ORDER BY {}",
            rank_table(slot, sort),
            view_table(slot),
            order_sql(&order, false)
        ),
        &[],
        "keep a sort order",
    )
}

/// Keeps the first [`HEAD_ROWS`] `rn0`s of every sort of view `slot` (each column of
/// [`columns`] that sorts, both ways, then `rn0`): one top-N query per sort, over only the
/// sort's column and `rn0`. A sort pressed before its whole order is kept ([`rank_view`],
/// idle work) then reads its first pages from its head, a range of a small table, instead of
/// a top-N query over the whole view. Made with a large view (a fraction of its build time).
pub fn head_view(store: &Store, slot: usize, q: &ObserveQuery, op: Op) -> Result<()> {
    let cols = columns(q, op);
    let mut parts = Vec::new();
    for (i, col) in cols.iter().enumerate() {
        let Some(c) = col.order else { continue };
        for desc in [false, true] {
            let order = order_sql(&sort_order(q, op, Some((i, desc)))?, false);
            parts.push(format!(
                "SELECT {i}::USMALLINT AS col, {desc} AS dsc,
                        row_number() OVER (ORDER BY {order}) AS pos, CAST(rn0 AS UINTEGER) AS rn0
                 FROM (SELECT rn0, {c} FROM {} ORDER BY {order} LIMIT {HEAD_ROWS})",
                view_table(slot)
            ));
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    run(
        store,
        &format!(
            "CREATE OR REPLACE TEMP TABLE {} AS {} ORDER BY col, dsc, pos",
            head_table(slot),
            parts.join(" UNION ALL ")
        ),
        &[],
        "keep the heads of sort orders",
    )
}

/// Whether view `slot` has its index ([`index_view`]) and the sort order `sort`
/// ([`rank_view`]).
pub fn view_aids(store: &Store, slot: usize, sort: Option<(usize, bool)>) -> Result<(bool, bool)> {
    let indexed = exists(store, "duckdb_indexes", &index_name(slot))?;
    let ranked = match sort {
        Some(sort) => exists(store, "duckdb_tables", &rank_table(slot, sort))?,
        None => false,
    };
    Ok((indexed, ranked))
}

fn run(store: &Store, sql: &str, params: &[Param], what: &str) -> Result<()> {
    store
        .conn()
        .prepare(sql)
        .and_then(|mut s| s.execute(params_from_iter(params.iter())))
        .map_err(AnalyzerError::store(what.to_string()))?;
    Ok(())
}

fn count_rows(store: &Store, table: &str) -> Result<u64> {
    store
        .conn()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n as u64)
        .map_err(AnalyzerError::store("count view rows"))
}

/// Names of the activity columns (`a0`, `a1`, …).
fn activity_names() -> Vec<String> {
    (0..ACTIVITY_BUCKETS).map(|i| format!("a{i}")).collect()
}

/// The columns a `kind` view adds to `observe`'s section: the worst outcome, the events per
/// activity bucket of `range` (named by `names`, [`activity_names`]) and the columns its
/// resource determines ([`resource_columns`], grouping keys that split no row).
fn view_aggregates(kind: ResourceKind, range: TimeRange, names: &[String]) -> Vec<(&str, String)> {
    let bucket = range.bucket_sql(ACTIVITY_BUCKETS);
    let mut extra = vec![("outcome", OUTCOME_SQL.to_string())];
    for (_, col) in resource_columns(kind) {
        extra.push((col, col.to_string()));
    }
    for (i, name) in names.iter().enumerate() {
        extra.push((
            name.as_str(),
            format!("CAST(coalesce(sum(count) FILTER (WHERE {bucket} = {i}), 0) AS UBIGINT)"),
        ));
    }
    extra
}

/// Rows of `events` that `q`'s `op` section groups: a bound of its view's rows, read in a
/// fraction of the time a view takes to build (one column scanned).
pub fn event_rows(store: &Store, q: &ObserveQuery, op: Op) -> Result<u64> {
    let (scope, params) = q.scope();
    store
        .conn()
        .prepare(&format!(
            "SELECT count(*) FROM events WHERE op = '{}' AND {scope}",
            op.as_str()
        ))
        .and_then(|mut s| s.query_row(params_from_iter(params.iter()), |r| r.get::<_, i64>(0)))
        .map(|n| n.max(0) as u64)
        .map_err(AnalyzerError::store("count a section's rows"))
}

/// One resource of a view (its namespace, for namespaced kinds, and its `resource` key) with
/// the rows of `events` its section groups for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRows {
    /// Namespace (none for namespace and node views).
    pub namespace: Option<String>,
    /// The resource's key ([`ResourceKind::key_sql`]); none only for a node-less row of a
    /// node view.
    pub resource: Option<String>,
    /// Rows of `events`.
    pub rows: u64,
}

/// The resources of `q`'s `op` section in `observe`'s order (namespace, then resource), with
/// the rows of `events` each one groups: one scan of the scope's columns. Without a filter,
/// `q`'s list holds the resources of every filtered question of the same scope, in the same
/// order, so that one list (kept by the caller) serves [`preview`] for any filter, and its
/// rows bound the rows any of them groups.
pub fn resource_rows(store: &Store, q: &ObserveQuery, op: Op) -> Result<Vec<ResourceRows>> {
    let (scope, params) = q.scope();
    let ns = if q.kind.namespaced() {
        "namespace"
    } else {
        "CAST(NULL AS VARCHAR)"
    };
    let mut stmt = store
        .conn()
        .prepare(&format!(
            "SELECT {ns} AS ns, {} AS resource, count(*) FROM events
             WHERE op = '{}' AND {scope} GROUP BY ALL
             ORDER BY ns ASC NULLS FIRST, resource ASC NULLS LAST",
            q.kind.key_sql(),
            op.as_str()
        ))
        .map_err(AnalyzerError::store("prepare a view's resources"))?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            Ok(ResourceRows {
                namespace: r.get(0)?,
                resource: r.get(1)?,
                rows: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })
        .map_err(AnalyzerError::store("read a view's resources"))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(AnalyzerError::store("read a view's resources"))
}

/// Rows of `events` (by [`ResourceRows::rows`]) a [`preview`]'s first round takes resources
/// for, at least one resource: grouping them costs little beside the scan every round makes
/// of the scope's columns, and a filter that keeps few of them still finds a screen's rows.
pub const PREVIEW_ROUND_ROWS: u64 = 65_536;
/// How much larger each round of a [`preview`] is than the one before (a filter that keeps
/// none of the first resources' rows costs a few rounds, not one per resource).
const PREVIEW_GROWTH: u64 = 4;
/// Most resources a round of a [`preview`] takes (their namespaces and keys are bound as
/// parameters: a store of many small resources still gives a statement of bounded size).
const PREVIEW_ROUND_RESOURCES: usize = 1024;

/// The first `limit` rows of `q`'s `op` view in `observe`'s order, as [`page`] reads them
/// from [`build_view`]'s table, without building it: `observe`'s order begins with the
/// namespace and the resource, so the first rows are those of the first resources, and each
/// resource's rows are grouped from its own events alone (the scan filters the rest out
/// before grouping; row groups of other namespaces are skipped by their statistics where a
/// file holds several). `resources` lists the resources to take, in that order
/// ([`resource_rows`]): those of `q`'s scope or of any wider scope, such as `q` without its
/// filter (a resource none of whose rows `q` keeps yields no row, so the rows found are
/// still a prefix of the view). They are taken in rounds until `limit` rows are found: the
/// first round takes resources of `round_rows` rows (at least one resource, at most 1024;
/// normally [`PREVIEW_ROUND_ROWS`]), each round four times as many rows as the one before. A tab of
/// millions of rows, filtered by any field, shows its first screen in a fraction of a second
/// while the view is built.
pub fn preview(
    store: &Store,
    q: &ObserveQuery,
    op: Op,
    range: TimeRange,
    limit: u64,
    resources: &[ResourceRows],
    round_rows: u64,
) -> Result<Vec<BrowseRow>> {
    let names = activity_names();
    let extra = view_aggregates(q.kind, range, &names);
    let order = order_sql(&default_order(op), false);
    let cols = page_columns(op);
    let key = q.kind.key_sql();
    let mut out: Vec<BrowseRow> = Vec::new();
    let (mut at, mut budget) = (0, round_rows);
    while at < resources.len() && (out.len() as u64) < limit {
        // The next resources, up to the round's rows (at least one).
        let mut end = at;
        let mut rows = 0u64;
        while end < resources.len()
            && end - at < PREVIEW_ROUND_RESOURCES
            && (end == at || rows < budget)
        {
            rows = rows.saturating_add(resources[end].rows);
            end += 1;
        }
        // A resource without a name (a node-less row of a node view) cannot be bound as a
        // parameter: the preview ends before it (its rows are still a prefix of the view).
        let round: Vec<(Option<&str>, &str)> = resources[at..end]
            .iter()
            .map_while(|r| {
                r.resource
                    .as_deref()
                    .map(|name| (r.namespace.as_deref(), name))
            })
            .collect();
        if round.is_empty() {
            break;
        }
        at += round.len();
        budget = budget.saturating_mul(PREVIEW_GROWTH);
        // The round's resources, exactly (namespace and key of each)…
        let exact = round
            .iter()
            .map(|(ns, r)| resource_filter(q.kind, *ns, r))
            .collect::<Vec<_>>();
        let mut parts = vec![SqlFilter {
            sql: exact
                .iter()
                .map(|p| format!("({})", p.sql))
                .collect::<Vec<_>>()
                .join(" OR "),
            params: exact.into_iter().flat_map(|p| p.params).collect(),
        }];
        // …and, first, the same as lists of values, which the Parquet scan applies to each
        // column as it reads it (an OR of pairs is applied only once every column is read).
        let mut keys: Vec<&str> = round.iter().map(|(_, r)| *r).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut namespaces: Vec<&str> = round.iter().filter_map(|(ns, _)| *ns).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        let marks = |n: usize| vec!["?"; n].join(", ");
        let mut first = format!("({key}) IN ({})", marks(keys.len()));
        let mut params: Vec<Param> = Vec::new();
        if q.kind.namespaced() && round.iter().all(|(ns, _)| ns.is_some()) {
            first = format!("namespace IN ({}) AND {first}", marks(namespaces.len()));
            params.extend(namespaces.iter().map(|n| Param::Text(n.to_string())));
        }
        params.extend(keys.iter().map(|k| Param::Text(k.to_string())));
        parts.insert(0, SqlFilter { sql: first, params });
        let mut chunk_q = q.clone();
        chunk_q.filter = SqlFilter::all(parts.into_iter().chain(q.filter.iter().cloned()));
        let (sql, params) = observe::section_sql(&chunk_q, op, &extra);
        let want = limit - out.len() as u64;
        let rows = read_rows(
            store,
            &format!("SELECT {cols} FROM ({sql}) ORDER BY {order} LIMIT {want}"),
            &params,
            op,
        )?;
        out.extend(rows);
    }
    Ok(out
        .into_iter()
        .zip(1..)
        .map(|(row, rn)| BrowseRow { rn, ..row })
        .collect())
}

/// Materialises `q`'s `op` section into view `slot` (replacing what it held), with each row's
/// worst outcome and its activity over `range`. Returns its rows.
pub fn build_view(
    store: &Store,
    slot: usize,
    q: &ObserveQuery,
    op: Op,
    range: TimeRange,
) -> Result<u64> {
    let names = activity_names();
    let (sql, params) = observe::section_sql(q, op, &view_aggregates(q.kind, range, &names));
    let table = view_table(slot);
    // Stored in `observe`'s order and numbered by it (`rn0`): a window of that order is a
    // range of `rn0` (row groups outside it are skipped by their statistics), and any other
    // order needs `rn0` only as its tie-break.
    let default = order_sql(&default_order(op), false);
    drop_ranks(store, slot)?;
    run(
        store,
        &format!(
            "CREATE OR REPLACE TEMP TABLE {table} AS
             SELECT *, row_number() OVER (ORDER BY {default}) AS rn0 FROM ({sql}) ORDER BY rn0"
        ),
        &params,
        "build a view",
    )?;
    count_rows(store, &table)
}

/// Drops view `slot` and what is kept for it (its sort orders, heads and index), if any.
pub fn drop_view(store: &Store, slot: usize) -> Result<()> {
    drop_ranks(store, slot)?;
    run(
        store,
        &format!("DROP TABLE IF EXISTS {}", view_table(slot)),
        &[],
        "drop a view",
    )
}

/// The columns of `events` (with their filter fields) that a view of `kind` keeps beside its
/// resource: the resource's key determines them, so they are constant within each row of the
/// view and grouping by them too changes no row. (The keys' placeholders, `(none)`, `(host)`,
/// `?`, are no valid Kubernetes names, so no named resource shares a row with unnamed ones.)
fn resource_columns(kind: ResourceKind) -> &'static [(Field, &'static str)] {
    match kind {
        ResourceKind::Namespace => &[(Field::Namespace, "namespace")],
        ResourceKind::Workload | ResourceKind::Deployment => &[
            (Field::Namespace, "namespace"),
            (Field::Workload, "workload"),
        ],
        ResourceKind::Pod | ResourceKind::Container => {
            &[(Field::Namespace, "namespace"), (Field::Pod, "pod")]
        }
        ResourceKind::Node => &[(Field::Node, "node")],
    }
}

/// The filter fields whose columns a `kind` view of `op` holds under the same name and as
/// they are in `events` (grouping columns, so constant within a row of the view: the
/// section's own, and those its resource determines): a filter on these alone keeps the same
/// rows of the view as of `events` (see [`refine_view`]).
pub fn grouping_fields(kind: ResourceKind, op: Op) -> Vec<Field> {
    let own: &[Field] = match op {
        Op::Process | Op::Syscall => &[Field::Process],
        Op::File => &[Field::Process, Field::Path],
        Op::Network => &[Field::Process, Field::Proto, Field::Direction],
        Op::Capability => &[Field::Process, Field::Capability],
    };
    own.iter()
        .copied()
        .chain(resource_columns(kind).iter().map(|(f, _)| *f))
        .collect()
}

/// Materialises view `slot` as the rows of view `from` that `filter` keeps, without reading
/// `events`: `filter` must compare only [`grouping_fields`] of the views' operation, so that
/// grouping the filtered events or filtering the grouped rows gives the same rows (each row's
/// outcome and activity included). Returns its rows.
pub fn refine_view(store: &Store, slot: usize, from: usize, filter: &SqlFilter) -> Result<u64> {
    let table = view_table(slot);
    drop_ranks(store, slot)?;
    run(
        store,
        &format!(
            "CREATE OR REPLACE TEMP TABLE {table} AS
             SELECT * REPLACE (row_number() OVER (ORDER BY rn0) AS rn0) FROM {} WHERE {}
             ORDER BY rn0",
            view_table(from),
            filter.sql
        ),
        &filter.params,
        "filter a view",
    )?;
    count_rows(store, &table)
}

/// How a view's rows are numbered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arrangement {
    /// Sort by this column of [`columns`] (ascending, or descending when true); `None`:
    /// `observe`'s order.
    pub sort: Option<(usize, bool)>,
    /// Keep only rows whose text holds this (case-insensitive).
    pub search: Option<String>,
}

/// `text` as a LIKE pattern matching it anywhere, with `\` as the escape.
fn contains_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A view as arranged: its order (a total one) and its quick search, with the rows kept.
/// Nothing is copied: a page picks its rows' numbers (a range of `rn0`, a range of a kept
/// sort order, or a top-N query) and then reads those rows ([`page`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Arranged {
    slot: usize,
    /// `observe`'s order, every row: row `n` is the one with `rn0 = n`.
    dense: bool,
    order: Vec<Term>,
    /// `WHERE …` of the quick search, or empty.
    filter: String,
    params: Vec<Param>,
    /// The kept sort order this arrangement reads ([`rank_view`]), when there is one.
    rank: Option<String>,
    /// Else the kept head of its sort ([`head_view`]): the sort's column and direction and
    /// the table, when there is one.
    head: Option<(usize, bool, String)>,
    /// Whether the view has its index by `rn0` ([`index_view`]).
    indexed: bool,
    /// Rows kept.
    pub total: u64,
}

impl Arranged {
    /// Whether a page reads a kept sort order ([`rank_view`]) rather than a top-N query.
    pub fn ranked(&self) -> bool {
        self.rank.is_some()
    }

    /// Whether a page near the start reads the kept head of its sort ([`head_view`]).
    pub fn headed(&self) -> bool {
        self.head.is_some()
    }

    /// Whether the view's rows are fetched through its index ([`index_view`]).
    pub fn indexed(&self) -> bool {
        self.indexed
    }
}

fn order_sql(order: &[Term], reverse: bool) -> String {
    order
        .iter()
        .map(|t| t.sql(reverse))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The order of a sort of `q`'s `op` view (a column of [`columns`] and its direction), then
/// `rn0`: a total order. `None`: `rn0` alone (`observe`'s order).
fn sort_order(q: &ObserveQuery, op: Op, sort: Option<(usize, bool)>) -> Result<Vec<Term>> {
    let mut order = Vec::new();
    if let Some((i, desc)) = sort {
        let cols = columns(q, op);
        match cols.get(i).and_then(|c| c.order) {
            Some(col) => order.push(Term {
                col,
                desc,
                nulls_first: false,
            }),
            None => {
                return Err(AnalyzerError::Invalid(format!(
                    "column {} cannot be sorted",
                    cols.get(i).map_or("?", |c| c.title.as_str())
                )))
            }
        }
    }
    order.push(Term::asc("rn0"));
    Ok(order)
}

/// Arranges view `slot`'s rows as `how` says: the order asked for (then `observe`'s, which
/// ends with every grouping column: the view's `rn0`) and the quick search. Counts the rows
/// kept; copies nothing. A sort without a search reads the sort's kept order when the view
/// has it ([`rank_view`]).
pub fn arrange(
    store: &Store,
    slot: usize,
    q: &ObserveQuery,
    op: Op,
    how: &Arrangement,
) -> Result<Arranged> {
    let order = sort_order(q, op, how.sort)?;
    let searching = how.search.as_deref().is_some_and(|s| !s.is_empty());
    let dense = how.sort.is_none() && !searching;
    let (indexed, ranked) = view_aids(store, slot, how.sort)?;
    let head = match how.sort {
        Some((c, desc)) if !ranked && !searching => {
            let table = head_table(slot);
            exists(store, "duckdb_tables", &table)?.then_some((c, desc, table))
        }
        _ => None,
    };
    let rank = match how.sort {
        Some(sort) if ranked && !searching => Some(rank_table(slot, sort)),
        _ => None,
    };
    let mut params = Vec::new();
    let filter = match how.search.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => {
            let texts: Vec<&str> = key_columns(op)
                .iter()
                .map(|(_, c)| *c)
                .filter(|c| *c != "bits")
                .collect();
            params.push(Param::Text(contains_pattern(text)));
            format!(
                "WHERE concat_ws(' ', ns, resource, {}, {OUTCOME_NAME_SQL}) ILIKE ? ESCAPE '\\'",
                texts.join(", ")
            )
        }
        None => String::new(),
    };
    let total = if filter.is_empty() {
        count_rows(store, &view_table(slot))?
    } else {
        store
            .conn()
            .prepare(&format!(
                "SELECT count(*) FROM {} {filter}",
                view_table(slot)
            ))
            .and_then(|mut s| s.query_row(params_from_iter(params.iter()), |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(AnalyzerError::store("search a view"))?
    };
    Ok(Arranged {
        slot,
        dense,
        order,
        filter,
        params,
        rank,
        head,
        indexed,
        total,
    })
}

/// The `rn0`s of rows `offset + 1 ..= offset + limit` of an arrangement, in its order: a
/// range of `rn0` (observe's order), a range of the kept sort order, or a top-N query from
/// whichever end of the order is nearer (only `rn0` and the order's columns are read).
fn window_ids(store: &Store, a: &Arranged, offset: u64, limit: u64) -> Result<Vec<i64>> {
    let limit = limit.min(a.total.saturating_sub(offset));
    if limit == 0 {
        return Ok(Vec::new());
    }
    if a.dense {
        // rn0 runs 1..=total without gaps.
        let first = i64::try_from(offset).unwrap_or(i64::MAX).saturating_add(1);
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        return Ok((first..first.saturating_add(n)).collect());
    }
    let read = |sql: &str, params: &[Param]| -> Result<Vec<i64>> {
        let mut stmt = store
            .conn()
            .prepare(sql)
            .map_err(AnalyzerError::store("prepare a window"))?;
        let rows = stmt
            .query_map(params_from_iter(params.iter()), |r| r.get::<_, i64>(0))
            .map_err(AnalyzerError::store("read a window"))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(AnalyzerError::store("read a window"))
    };
    if let Some(rank) = &a.rank {
        // Rows of the kept order are stored in it: a range of rowids.
        return read(
            &format!(
                "SELECT rn0 FROM {rank} WHERE rowid >= {offset} AND rowid < {} ORDER BY rowid",
                offset + limit
            ),
            &[],
        );
    }
    if let Some((col, desc, head)) = &a.head {
        if offset + limit <= HEAD_ROWS.min(a.total) {
            // Positions of a head count from 1.
            return read(
                &format!(
                    "SELECT rn0 FROM {head} WHERE col = {col} AND dsc = {desc}
                     AND pos > {offset} AND pos <= {} ORDER BY pos",
                    offset + limit
                ),
                &[],
            );
        }
    }
    let reverse = offset.saturating_add(limit / 2) > a.total / 2;
    let from = if reverse {
        a.total.saturating_sub(offset.saturating_add(limit))
    } else {
        offset
    };
    let ids = read(
        &format!(
            "SELECT rn0 FROM {} {} ORDER BY {} LIMIT {limit} OFFSET {from}",
            view_table(a.slot),
            a.filter,
            order_sql(&a.order, reverse)
        ),
        &a.params,
    )?;
    Ok(in_order(ids, reverse))
}

/// `SELECT {cols}` of the rows numbered `ids` (`rn0`), in the order of `ids`: a range of
/// `rn0` when they are consecutive (the view is stored by `rn0`), else an `IN` list, which
/// the view's index answers when it has one.
fn rows_sql(a: &Arranged, cols: &str, ids: &[i64]) -> String {
    let table = view_table(a.slot);
    let consecutive = ids.windows(2).all(|w| w[1] == w[0] + 1);
    match (ids.first(), ids.last()) {
        (Some(first), Some(last)) if consecutive => {
            format!(
                "SELECT {cols} FROM {table} WHERE rn0 >= {first} AND rn0 <= {last} ORDER BY rn0"
            )
        }
        _ => {
            // Numbers read from the view, never user text.
            let list = ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "SELECT {cols} FROM {table} WHERE rn0 IN ({list})
                 ORDER BY list_position([{list}], rn0)"
            )
        }
    }
}

fn in_order<T>(mut rows: Vec<T>, reversed: bool) -> Vec<T> {
    if reversed {
        rows.reverse();
    }
    rows
}

/// The section's own columns as the view selects them for [`BrowseRow::keys`].
fn key_select(op: Op) -> String {
    key_columns(op)
        .iter()
        .map(|(_, c)| match *c {
            "bits" => "CAST(bits AS BIGINT), others".to_string(),
            "port" => "CAST(port AS VARCHAR)".to_string(),
            c => c.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns [`read_rows`] reads, in its order.
fn page_columns(op: Op) -> String {
    format!(
        "ns, resource, outcome, seen_count, seen_first, seen_last, {}, {}",
        activity_names().join(", "),
        key_select(op),
    )
}

/// The rows `sql` selects ([`page_columns`] of a view or of a section), in its order,
/// numbered 0 (callers number them).
fn read_rows(store: &Store, sql: &str, params: &[Param], op: Op) -> Result<Vec<BrowseRow>> {
    let nkeys = key_columns(op).len();
    let is_file = op == Op::File;
    let mut stmt = store
        .conn()
        .prepare(sql)
        .map_err(AnalyzerError::store("prepare a page"))?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            let base = 6 + ACTIVITY_BUCKETS;
            let mut keys = Vec::with_capacity(nkeys);
            let mut at = base;
            for k in 0..nkeys {
                if is_file && k == 3 {
                    let bits: i64 = r.get::<_, Option<i64>>(at)?.unwrap_or(0);
                    let others: Option<String> = r.get(at + 1)?;
                    keys.push(access_set::accesses(bits, others.as_deref()));
                    at += 2;
                } else {
                    let v: Option<String> = r.get(at)?;
                    keys.push(v.unwrap_or_else(|| "-".into()));
                    at += 1;
                }
            }
            let mut activity = Vec::with_capacity(ACTIVITY_BUCKETS);
            for i in 0..ACTIVITY_BUCKETS {
                activity.push(r.get::<_, Option<u64>>(6 + i)?.unwrap_or(0));
            }
            Ok(BrowseRow {
                rn: 0,
                namespace: r.get(0)?,
                resource: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                outcome: Outcome::from_rank(r.get::<_, Option<i64>>(2)?.unwrap_or(0)),
                count: r.get::<_, Option<u64>>(3)?.unwrap_or(0),
                first_ns: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                last_ns: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
                keys,
                activity,
            })
        })
        .map_err(AnalyzerError::store("read a page"))?;
    rows.collect::<std::result::Result<Vec<_>, _>>()
        .map_err(AnalyzerError::store("read a page"))
}

/// Rows `offset + 1 ..= offset + limit` of an arrangement: their numbers ([`window_ids`]),
/// then those rows.
pub fn page(
    store: &Store,
    a: &Arranged,
    op: Op,
    offset: u64,
    limit: u64,
) -> Result<Vec<BrowseRow>> {
    let ids = window_ids(store, a, offset, limit)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = rows_sql(a, &page_columns(op), &ids);
    let rows = read_rows(store, &sql, &[], op)?;
    Ok(rows
        .into_iter()
        .zip(offset + 1..)
        .map(|(row, rn)| BrowseRow { rn, ..row })
        .collect())
}

/// The `n` largest processes (process view), paths (files) or peers (network) of an
/// arrangement's rows by events, with their events.
pub fn top(store: &Store, a: &Arranged, op: Op, n: usize) -> Result<Vec<(String, u64)>> {
    let label = match op {
        Op::Process => "process",
        Op::File => "path",
        Op::Network => "peer || ':' || coalesce(CAST(port AS VARCHAR), '-')",
        Op::Syscall => "syscall",
        Op::Capability => "capability",
    };
    let sql = format!(
        "SELECT coalesce({label}, '-') AS label, CAST(sum(seen_count) AS UBIGINT)
         FROM {} {} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {n}",
        view_table(a.slot),
        a.filter
    );
    let mut stmt = store
        .conn()
        .prepare(&sql)
        .map_err(AnalyzerError::store("prepare top items"))?;
    let rows = stmt
        .query_map(params_from_iter(a.params.iter()), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(AnalyzerError::store("read top items"))?;
    rows.collect::<std::result::Result<Vec<_>, _>>()
        .map_err(AnalyzerError::store("read top items"))
}

/// Events of `q`'s `op` rows per bucket of `range` (`buckets` buckets).
pub fn histogram(
    store: &Store,
    q: &ObserveQuery,
    op: Op,
    range: TimeRange,
    buckets: usize,
) -> Result<Vec<u64>> {
    let (scope, params) = q.scope();
    let sql = format!(
        "SELECT {} AS b, CAST(sum(count) AS UBIGINT) FROM events
         WHERE op = '{}' AND {scope} GROUP BY 1",
        range.bucket_sql(buckets),
        op.as_str()
    );
    let mut stmt = store
        .conn()
        .prepare(&sql)
        .map_err(AnalyzerError::store("prepare a histogram"))?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, u64>(1)?))
        })
        .map_err(AnalyzerError::store("read a histogram"))?;
    let mut out = vec![0u64; buckets.max(1)];
    for row in rows {
        let (b, n) = row.map_err(AnalyzerError::store("read a histogram"))?;
        if let Some(slot) = out.get_mut(b.max(0) as usize) {
            *slot += n;
        }
    }
    Ok(out)
}

/// The time range of every row in the store; `None` when it is empty.
pub fn data_range(store: &Store) -> Result<Option<TimeRange>> {
    let (first, last): (Option<i64>, Option<i64>) = store
        .conn()
        .query_row(
            "SELECT epoch_ns(min(ts_first)), epoch_ns(max(ts_last)) FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(AnalyzerError::store("read the data's time range"))?;
    Ok(match (first, last) {
        (Some(first_ns), Some(last_ns)) => Some(TimeRange { first_ns, last_ns }),
        _ => None,
    })
}

/// The operations `q`'s rows hold, in [`Op::ALL`] order.
pub fn operations(store: &Store, q: &ObserveQuery) -> Result<Vec<Op>> {
    let (scope, params) = q.scope();
    let mut stmt = store
        .conn()
        .prepare(&format!("SELECT DISTINCT op FROM events WHERE {scope}"))
        .map_err(AnalyzerError::store("prepare operations"))?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(0))
        .map_err(AnalyzerError::store("read operations"))?;
    let mut held = Vec::new();
    for r in rows {
        held.push(r.map_err(AnalyzerError::store("read operations"))?);
    }
    Ok(Op::ALL
        .into_iter()
        .filter(|op| held.iter().any(|h| h == op.as_str()))
        .collect())
}

/// The rows of one resource of a `kind` summary (its `resource` key, and its namespace for
/// namespaced kinds): what drilling down into a row keeps.
pub fn resource_filter(kind: ResourceKind, namespace: Option<&str>, resource: &str) -> SqlFilter {
    let mut sql = format!("({}) = ?", kind.key_sql());
    let mut params = vec![Param::Text(resource.to_string())];
    if kind.namespaced() {
        match namespace {
            Some(ns) => {
                sql.push_str(" AND namespace = ?");
                params.push(Param::Text(ns.to_string()));
            }
            None => sql.push_str(" AND namespace IS NULL"),
        }
    }
    SqlFilter { sql, params }
}

/// The owning workloads `(namespace, kind, name)` of `q`'s rows (at most `limit`).
pub fn workloads(
    store: &Store,
    q: &ObserveQuery,
    limit: usize,
) -> Result<Vec<(Option<String>, String, String)>> {
    let (scope, params) = q.scope();
    let sql = format!(
        "SELECT DISTINCT namespace, coalesce(workload_kind, 'Pod'), coalesce(workload, pod)
         FROM events WHERE NOT host AND coalesce(workload, pod) IS NOT NULL AND {scope}
         ORDER BY 1, 2, 3 LIMIT {limit}"
    );
    let mut stmt = store
        .conn()
        .prepare(&sql)
        .map_err(AnalyzerError::store("prepare workloads"))?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(AnalyzerError::store("read workloads"))?;
    rows.collect::<std::result::Result<Vec<_>, _>>()
        .map_err(AnalyzerError::store("read workloads"))
}

/// One behaviour with the rows behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    /// Raw events.
    pub count: u64,
    /// Rows behind it.
    pub rows: u64,
    /// First seen (ns).
    pub first_ns: i64,
    /// Last seen (ns).
    pub last_ns: i64,
    /// Distinct pids.
    pub pids: Vec<String>,
    /// Distinct nodes.
    pub nodes: Vec<String>,
    /// Distinct `pod/container` (or container names outside pods).
    pub containers: Vec<String>,
    /// Distinct `result` values, with the policy and action of alerts.
    pub results: Vec<String>,
    /// Headers of [`Detail::raw`].
    pub raw_headers: Vec<&'static str>,
    /// The first rows behind it, oldest first (times as RFC 3339).
    pub raw: Vec<Vec<String>>,
}

/// Most raw rows a [`Detail`] holds.
pub const DETAIL_ROWS: usize = 1000;

/// The behaviour of row `rn` (1-based) of an arrangement of `q`'s `op` view: its pids, nodes,
/// containers and results, and the rows behind it.
pub fn detail(store: &Store, a: &Arranged, q: &ObserveQuery, op: Op, rn: u64) -> Result<Detail> {
    let (scope, scope_params) = q.scope();
    let key = q.kind.key_sql();
    let ns = if q.kind.namespaced() {
        "namespace"
    } else {
        "CAST(NULL AS VARCHAR)"
    };
    let keys = section_keys(op);
    let key_names: String = keys.iter().map(|(name, _)| format!(", {name}")).collect();
    let conn = store.conn();
    // The row's identity, bound as parameters (a join would make the view's column names
    // ambiguous with the event columns the scope's SQL names).
    let ids = window_ids(store, a, rn.saturating_sub(1), 1)?;
    if ids.is_empty() {
        return Err(AnalyzerError::Invalid(format!(
            "row {rn} is not in the view ({} rows)",
            a.total
        )));
    }
    let ident_sql = rows_sql(a, &format!("ns, resource{key_names}"), &ids);
    let ident: Vec<Value> = conn
        .prepare(&ident_sql)
        .and_then(|mut s| {
            s.query_row([], |r| {
                (0..2 + keys.len()).map(|i| r.get::<_, Value>(i)).collect()
            })
        })
        .map_err(AnalyzerError::store("read a view row"))?;
    let mut same = format!("{ns} IS NOT DISTINCT FROM ? AND ({key}) IS NOT DISTINCT FROM ?");
    for (_, sql) in keys {
        same.push_str(&format!(" AND ({sql}) IS NOT DISTINCT FROM ?"));
    }
    let from = format!(
        "FROM events WHERE op = '{}' AND {scope} AND {same}",
        op.as_str()
    );
    let mut params: Vec<Value> = scope_params
        .into_iter()
        .map(|p| match p {
            Param::Text(s) => Value::Text(s),
            Param::Int(i) => Value::BigInt(i),
            Param::Bool(b) => Value::Boolean(b),
        })
        .collect();
    params.extend(ident);
    let list = |e: &str| {
        format!("list_sort(list_distinct(list({e}) FILTER (WHERE {e} IS NOT NULL)))::VARCHAR[]")
    };
    let summary_sql = format!(
        "SELECT CAST(coalesce(sum(count), 0) AS UBIGINT), count(*), epoch_ns(min(ts_first)),
                epoch_ns(max(ts_last)), {}, {}, {}, {} {from}",
        list("CAST(pid AS VARCHAR)"),
        list("node"),
        list(
            "CASE WHEN pod IS NULL THEN coalesce(container, left(container_id, 12)) \
             ELSE pod || '/' || coalesce(container, '-') END"
        ),
        list(
            "coalesce(result, '-') || CASE WHEN action IS NULL THEN '' \
             ELSE ' (' || action || ' by ' || coalesce(policy, '?') || ')' END"
        ),
    );
    let mut d = conn
        .prepare(&summary_sql)
        .and_then(|mut s| {
            s.query_row(params_from_iter(params.iter()), |r| {
                Ok(Detail {
                    count: r.get(0)?,
                    rows: r.get::<_, i64>(1)? as u64,
                    first_ns: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                    last_ns: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                    pids: observe::strings(r.get(4)?),
                    nodes: observe::strings(r.get(5)?),
                    containers: observe::strings(r.get(6)?),
                    results: observe::strings(r.get(7)?),
                    raw_headers: Vec::new(),
                    raw: Vec::new(),
                })
            })
        })
        .map_err(AnalyzerError::store("read a behaviour"))?;
    let what = match op {
        Op::Process => ("ARGS", "args"),
        Op::File => ("PATH ACCESS", "coalesce(path, '-') || ' ' || coalesce(access, '-')"),
        Op::Network => (
            "CONNECTION",
            "coalesce(proto, '-') || ' ' || coalesce(direction, '-') || ' ' || \
             coalesce(local_addr, '-') || ':' || coalesce(CAST(local_port AS VARCHAR), '-') || ' -> ' || \
             coalesce(remote_name, remote_addr, '-') || ':' || coalesce(CAST(remote_port AS VARCHAR), '-')",
        ),
        Op::Syscall => ("SYSCALL", "syscall"),
        Op::Capability => ("CAPABILITY", "capability"),
    };
    d.raw_headers = vec![
        "FIRST",
        "LAST",
        "NODE",
        "POD",
        "CONTAINER",
        "PID",
        "PPID",
        "UID",
        what.0,
        "RESULT",
        "ACTION",
        "COUNT",
    ];
    let raw_sql = format!(
        "SELECT epoch_ns(ts_first), epoch_ns(ts_last), node, pod, container,
                CAST(pid AS VARCHAR), CAST(ppid AS VARCHAR), CAST(uid AS VARCHAR), {}, result,
                action, CAST(count AS VARCHAR) {from}
         ORDER BY ts_first, pid LIMIT {DETAIL_ROWS}",
        what.1
    );
    let mut stmt = conn
        .prepare(&raw_sql)
        .map_err(AnalyzerError::store("prepare raw rows"))?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            let mut v = vec![
                karmor_contract::bundle::format_ts(r.get::<_, Option<i64>>(0)?.unwrap_or(0)),
                karmor_contract::bundle::format_ts(r.get::<_, Option<i64>>(1)?.unwrap_or(0)),
            ];
            for i in 2..12 {
                v.push(r.get::<_, Option<String>>(i)?.unwrap_or_else(|| "-".into()));
            }
            Ok(v)
        })
        .map_err(AnalyzerError::store("read raw rows"))?;
    d.raw = rows
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(AnalyzerError::store("read raw rows"))?;
    Ok(d)
}
