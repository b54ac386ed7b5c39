//! Behaviour summaries for `kubectl karmor observe` (design §6).
//!
//! Rows are grouped per resource (namespace, workload, pod, container or node) and per
//! operation: processes run (with their parents), files touched (split into read and
//! written), network peers and ports by direction, and, when asked for, system calls and
//! capabilities per executable with their results; each with counts and first/last seen.
//! Every piece of user text reaches DuckDB as a bound parameter.

use std::fmt;
use std::str::FromStr;

use duckdb::types::Value;
use duckdb::{params_from_iter, Row};
use karmor_contract::bundle::format_ts;
use karmor_contract::Op;
use serde::Serialize;

use crate::access_set;
use crate::error::{AnalyzerError, Result};
use crate::filter::{Param, SqlFilter};
use crate::result_columns::{query_columns, Col, Columns};
use crate::store::Store;

/// The resource a summary is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// Per namespace (host behaviour under `(host)`).
    Namespace,
    /// Per owning workload of any kind (`Deployment/web`, `DaemonSet/agent`, …).
    Workload,
    /// Per Deployment only.
    Deployment,
    /// Per pod.
    Pod,
    /// Per container (`pod/container`).
    Container,
    /// Per node (host behaviour included).
    Node,
}

impl FromStr for ResourceKind {
    type Err = AnalyzerError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "namespace" | "namespaces" | "ns" => ResourceKind::Namespace,
            "workload" | "workloads" => ResourceKind::Workload,
            "deployment" | "deployments" | "deploy" => ResourceKind::Deployment,
            "pod" | "pods" | "po" => ResourceKind::Pod,
            "container" | "containers" => ResourceKind::Container,
            "node" | "nodes" | "no" => ResourceKind::Node,
            other => {
                return Err(AnalyzerError::Invalid(format!(
                    "unknown resource type {other:?}: expected namespaces, deployments, workloads, pods, containers or nodes"
                )))
            }
        })
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::Namespace => "namespace",
            ResourceKind::Workload => "workload",
            ResourceKind::Deployment => "deployment",
            ResourceKind::Pod => "pod",
            ResourceKind::Container => "container",
            ResourceKind::Node => "node",
        })
    }
}

impl ResourceKind {
    /// SQL for the resource's display key (fixed text, no user input).
    pub fn key_sql(self) -> &'static str {
        match self {
            ResourceKind::Namespace => {
                "CASE WHEN namespace IS NOT NULL THEN namespace WHEN host THEN '(host)' ELSE '(none)' END"
            }
            // A container no pod holds (Docker, containerd, Podman outside Kubernetes) goes
            // by its runtime's name, or its short id when its runtime's state was unreadable.
            ResourceKind::Workload | ResourceKind::Deployment => {
                "CASE WHEN workload IS NULL AND pod IS NULL AND namespace IS NULL \
                   THEN 'Container/' || coalesce(container, left(container_id, 12), '(none)') \
                   ELSE coalesce(workload_kind, '?') || '/' || coalesce(workload, '(none)') END"
            }
            ResourceKind::Pod => "coalesce(pod, '(none)')",
            ResourceKind::Container => {
                "CASE WHEN pod IS NULL THEN coalesce(container, left(container_id, 12), '(none)') \
                   ELSE pod || '/' || coalesce(container, '(none)') END"
            }
            ResourceKind::Node => "node",
        }
    }

    /// The column a resource NAME is matched against.
    fn name_column(self) -> &'static str {
        match self {
            ResourceKind::Namespace => "namespace",
            ResourceKind::Workload | ResourceKind::Deployment => "workload",
            ResourceKind::Pod => "pod",
            ResourceKind::Container => "container",
            ResourceKind::Node => "node",
        }
    }

    /// Whether resources of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, ResourceKind::Namespace | ResourceKind::Node)
    }
}

/// Which namespaces a query covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceScope {
    /// Every namespace, and host behaviour where the resource kind has it.
    All,
    /// One namespace.
    One(String),
}

/// An `observe` question.
#[derive(Debug, Clone)]
pub struct ObserveQuery {
    /// What to group by.
    pub kind: ResourceKind,
    /// Only the resource with this name (exact).
    pub name: Option<String>,
    /// Namespace scope.
    pub namespace: NamespaceScope,
    /// Only this pod (used by describe for container resources).
    pub pod: Option<String>,
    /// Only this container name (`-c`).
    pub container: Option<String>,
    /// Operations to summarise; empty means process, file and network (system calls and
    /// capabilities only when named).
    pub operations: Vec<Op>,
    /// Only behaviour last seen at or after this time (ns since epoch).
    pub since_ns: Option<i64>,
    /// A compiled `-f` filter.
    pub filter: Option<SqlFilter>,
    /// Add pids, containers and nodes to each row.
    pub wide: bool,
}

impl ObserveQuery {
    /// A query over everything, grouped by `kind`.
    pub fn new(kind: ResourceKind) -> Self {
        ObserveQuery {
            kind,
            name: None,
            namespace: NamespaceScope::All,
            pod: None,
            container: None,
            operations: Vec::new(),
            since_ns: None,
            filter: None,
            wide: false,
        }
    }

    fn wants(&self, op: Op) -> bool {
        if self.operations.is_empty() {
            matches!(op, Op::Process | Op::File | Op::Network)
        } else {
            self.operations.contains(&op)
        }
    }

    /// The WHERE clause (fixed SQL) and its parameters.
    pub(crate) fn scope(&self) -> (String, Vec<Param>) {
        let mut clauses: Vec<String> = Vec::new();
        let mut params = Vec::new();
        if let NamespaceScope::One(ns) = &self.namespace {
            clauses.push("namespace = ?".into());
            params.push(Param::Text(ns.clone()));
        }
        match self.kind {
            ResourceKind::Workload | ResourceKind::Pod | ResourceKind::Container => {
                clauses.push("NOT host".into())
            }
            ResourceKind::Deployment => {
                clauses.push("NOT host AND workload_kind = 'Deployment'".into())
            }
            ResourceKind::Namespace | ResourceKind::Node => {}
        }
        if let Some(name) = &self.name {
            clauses.push(format!("{} = ?", self.kind.name_column()));
            params.push(Param::Text(name.clone()));
        }
        if let Some(pod) = &self.pod {
            clauses.push("pod = ?".into());
            params.push(Param::Text(pod.clone()));
        }
        if let Some(c) = &self.container {
            clauses.push("container = ?".into());
            params.push(Param::Text(c.clone()));
        }
        if let Some(since) = self.since_ns {
            clauses.push("epoch_ns(ts_last) >= ?".into());
            params.push(Param::Int(since));
        }
        if let Some(f) = &self.filter {
            clauses.push(format!("({})", f.sql));
            params.extend(f.params.iter().cloned());
        }
        if clauses.is_empty() {
            ("TRUE".into(), params)
        } else {
            (clauses.join(" AND "), params)
        }
    }
}

/// Columns every summary row has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seen {
    /// Raw events.
    pub count: u64,
    /// First seen, RFC 3339.
    pub first_seen: String,
    /// Last seen, RFC 3339.
    pub last_seen: String,
}

/// The `wide` columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Wide {
    /// Distinct pids, comma-separated.
    pub pids: String,
    /// Distinct `pod/container` names; `NAME (ID)` for containers no pod holds.
    pub containers: String,
    /// Distinct nodes.
    pub nodes: String,
}

/// A process that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessRow {
    /// Namespace of the resource (none for namespace and node resources).
    pub namespace: Option<String>,
    /// Resource name (see [`ResourceKind`]).
    pub resource: String,
    /// Parent executable.
    pub parent: Option<String>,
    /// Executable.
    pub process: Option<String>,
    /// Counts and times.
    #[serde(flatten)]
    pub seen: Seen,
    /// Wide columns, when asked for.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub wide: Option<Wide>,
}

/// A file that was touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRow {
    /// Namespace of the resource.
    pub namespace: Option<String>,
    /// Resource name.
    pub resource: String,
    /// `read` when only reads were seen, otherwise `write`.
    pub mode: String,
    /// Accessing executable.
    pub process: Option<String>,
    /// File path.
    pub path: Option<String>,
    /// Distinct accesses seen (`read,write`, `create`, …).
    pub accesses: String,
    /// Counts and times.
    #[serde(flatten)]
    pub seen: Seen,
    /// Wide columns, when asked for.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub wide: Option<Wide>,
}

/// A network peer or port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkRow {
    /// Namespace of the resource.
    pub namespace: Option<String>,
    /// Resource name.
    pub resource: String,
    /// `connect`, `accept`, `bind`, `listen`, `send`, `socket`.
    pub direction: Option<String>,
    /// `tcp`, `udp`, `icmp`, `raw`, `unix`.
    pub proto: Option<String>,
    /// Acting executable.
    pub process: Option<String>,
    /// Remote service/DNS name or address.
    pub peer: Option<String>,
    /// Remote port for outbound, local port for bind/listen/accept.
    pub port: Option<u16>,
    /// Counts and times.
    #[serde(flatten)]
    pub seen: Seen,
    /// Wide columns, when asked for.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub wide: Option<Wide>,
}

/// A system call made (`observe -o syscall`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyscallRow {
    /// Namespace of the resource.
    pub namespace: Option<String>,
    /// Resource name.
    pub resource: String,
    /// Calling executable.
    pub process: Option<String>,
    /// The system call, lower case without `SYS_` (`openat`).
    pub syscall: Option<String>,
    /// Distinct results (`Passed`, or the error).
    pub results: String,
    /// Counts and times.
    #[serde(flatten)]
    pub seen: Seen,
    /// Wide columns, when asked for.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub wide: Option<Wide>,
}

/// A capability checked (`observe -o capability`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapabilityRow {
    /// Namespace of the resource.
    pub namespace: Option<String>,
    /// Resource name.
    pub resource: String,
    /// Executable the check was made for.
    pub process: Option<String>,
    /// As recorded (`CAP_NET_RAW`).
    pub capability: Option<String>,
    /// Distinct results: `Passed` when granted, else the denial.
    pub results: String,
    /// Counts and times.
    #[serde(flatten)]
    pub seen: Seen,
    /// Wide columns, when asked for.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub wide: Option<Wide>,
}

/// The answer to an [`ObserveQuery`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Processes run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<ProcessRow>>,
    /// Files touched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileRow>>,
    /// Network activity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Vec<NetworkRow>>,
    /// System calls made (only when asked for: `-o syscall`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<Vec<SyscallRow>>,
    /// Capabilities checked (only when asked for: `-o capability`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<CapabilityRow>>,
}

impl Summary {
    /// True when no section has a row.
    pub fn is_empty(&self) -> bool {
        self.processes.as_ref().is_none_or(Vec::is_empty)
            && self.files.as_ref().is_none_or(Vec::is_empty)
            && self.network.as_ref().is_none_or(Vec::is_empty)
            && self.syscalls.as_ref().is_none_or(Vec::is_empty)
            && self.capabilities.as_ref().is_none_or(Vec::is_empty)
    }
}

/// Distinct values as one sorted, comma-separated string (NULLs left out). Cheaper than
/// `string_agg(DISTINCT …)`, which keeps a hash table per group. Named, so that a query
/// selecting from a grouped subquery can pass them on ([`WIDE_COLS`]).
const WIDE_SQL: &str = ", array_to_string(list_sort(list_distinct(list(CAST(pid AS VARCHAR)))), ',') AS wide_pids, \
    array_to_string(list_sort(list_distinct(list(CASE WHEN pod IS NULL AND container_id IS NOT NULL \
        THEN coalesce(container, '-') || ' (' || left(container_id, 12) || ')' \
        ELSE coalesce(pod, '-') || '/' || coalesce(container, '-') END))), ',') AS wide_containers, \
    array_to_string(list_sort(list_distinct(list(node))), ',') AS wide_nodes";
/// The names of [`WIDE_SQL`]'s columns.
const WIDE_COLS: &str = ", wide_pids, wide_containers, wide_nodes";
/// Count, first and last seen of a group, named.
const SEEN_AS: &str = "CAST(sum(count) AS UBIGINT) AS seen_count, \
    epoch_ns(min(ts_first)) AS seen_first, epoch_ns(max(ts_last)) AS seen_last";

/// The column types of a summary: `head`, then [`SEEN_AS`]'s, then [`WIDE_SQL`]'s if wanted.
fn columns(head: &[Col], wide: bool) -> Vec<Col> {
    let mut types = head.to_vec();
    types.extend([Col::U64, Col::I64, Col::I64]);
    if wide {
        types.extend([Col::Text, Col::Text, Col::Text]);
    }
    types
}

fn seen(c: &Columns, row: usize, at: usize) -> Seen {
    Seen {
        count: c.u64(at, row),
        first_seen: format_ts(c.i64(at + 1, row)),
        last_seen: format_ts(c.i64(at + 2, row)),
    }
}

fn wide(c: &Columns, row: usize, at: usize, wanted: bool) -> Option<Wide> {
    wanted.then(|| Wide {
        pids: c.text(at, row).unwrap_or_default(),
        containers: c.text(at + 1, row).unwrap_or_default(),
        nodes: c.text(at + 2, row).unwrap_or_default(),
    })
}

fn namespace_col(kind: ResourceKind) -> &'static str {
    if kind.namespaced() {
        "namespace"
    } else {
        "CAST(NULL AS VARCHAR)"
    }
}

/// Key columns of the process section: `parent`, `process`.
const PROCESS_KEYS: &[(&str, &str)] = &[("parent", "parent_process"), ("process", "process")];
/// Key columns of the network section: the peer is its name when known, the port is the
/// remote one for outbound and the local one for bind/listen/accept.
const NETWORK_KEYS: &[(&str, &str)] = &[
    ("direction", "direction"),
    ("proto", "proto"),
    ("process", "process"),
    ("peer", "coalesce(remote_name, remote_addr)"),
    (
        "port",
        "CASE WHEN direction IN ('bind', 'listen', 'accept') THEN local_port ELSE remote_port END",
    ),
];
/// Key columns of the file section (the read/write mode is derived from the accesses).
const FILE_KEYS: &[(&str, &str)] = &[("process", "process"), ("path", "path")];
/// A row's system call as policies and seccomp profiles name it: `SYS_OPENAT` (KubeArmor's and
/// the collector's spelling) and `openat` are both `openat` (fixed SQL).
pub const SYSCALL_NAME_SQL: &str = "regexp_replace(lower(syscall), '^sys_', '')";
/// Key columns of the system-call section (`observe -o syscall`, the TUI's tab).
const SYSCALL_KEYS: &[(&str, &str)] = &[("process", "process"), ("syscall", SYSCALL_NAME_SQL)];
/// Key columns of the capability section (`observe -o capability`, the TUI's tab).
const CAPABILITY_KEYS: &[(&str, &str)] = &[("process", "process"), ("capability", "capability")];
/// The distinct results of a group, sorted and comma-separated (`Passed`, `Permission
/// denied`, …), as an extra aggregate of [`section_sql`].
const RESULTS_SQL: &str =
    "array_to_string(list_sort(list_distinct(list(coalesce(result, 'Passed')))), ',')";

/// The columns (name, SQL over `events`) that identify one row of `op`'s section besides its
/// namespace and resource: a section's rows are grouped by exactly these.
pub fn section_keys(op: Op) -> &'static [(&'static str, &'static str)] {
    match op {
        Op::Process => PROCESS_KEYS,
        Op::File => FILE_KEYS,
        Op::Network => NETWORK_KEYS,
        Op::Syscall => SYSCALL_KEYS,
        Op::Capability => CAPABILITY_KEYS,
    }
}

/// The grouped query behind `op`'s section of a summary, unordered, with named columns:
/// `ns, resource`, the op's columns (`parent, process`; `mode, process, path, bits, others`;
/// `direction, proto, process, peer, port`; `process, syscall`; `process, capability`), then
/// `seen_count, seen_first, seen_last`, the wide columns when `q.wide`, then `extra`: more
/// aggregates `(alias, SQL)` over the group's `events` rows (fixed SQL from the caller).
pub fn section_sql(q: &ObserveQuery, op: Op, extra: &[(&str, String)]) -> (String, Vec<Param>) {
    let (scope, params) = q.scope();
    let key = q.kind.key_sql();
    let ns = namespace_col(q.kind);
    let (wide_sql, wide_cols) = if q.wide {
        (WIDE_SQL, WIDE_COLS)
    } else {
        ("", "")
    };
    let extra_sql: String = extra
        .iter()
        .map(|(alias, sql)| format!(", {sql} AS {alias}"))
        .collect();
    let sql = if op == Op::File {
        let extra_cols: String = extra
            .iter()
            .map(|(alias, _)| format!(", {alias}"))
            .collect();
        let (bits, others) = (access_set::bits_sql(), access_set::others_sql());
        let writes = access_set::writes_sql("bits");
        format!(
            "SELECT ns, resource, CASE WHEN {writes} THEN 'write' ELSE 'read' END AS mode,
                    process, path, bits, others, seen_count, seen_first, seen_last{wide_cols}{extra_cols}
             FROM (SELECT {ns} AS ns, {key} AS resource, process, path, {bits} AS bits,
                          {others} AS others, {SEEN_AS}{wide_sql}{extra_sql}
                   FROM events WHERE op = 'file' AND {scope}
                   GROUP BY ALL)"
        )
    } else {
        let keys: String = section_keys(op)
            .iter()
            .map(|(name, sql)| format!("{sql} AS {name}, "))
            .collect();
        format!(
            "SELECT {ns} AS ns, {key} AS resource, {keys}{SEEN_AS}{wide_sql}{extra_sql}
             FROM events WHERE op = '{}' AND {scope}
             GROUP BY ALL",
            op.as_str()
        )
    };
    (sql, params)
}

/// Runs a summary.
pub fn summarize(store: &Store, q: &ObserveQuery) -> Result<Summary> {
    use Col::{Text, I64, U16};
    let mut out = Summary::default();

    if q.wants(Op::Process) {
        let (sql, params) = section_sql(q, Op::Process, &[]);
        let sql = format!("{sql} ORDER BY 1 NULLS FIRST, 2, 5 DESC, 4, 3");
        let types = columns(&[Text, Text, Text, Text], q.wide);
        out.processes = Some(query_columns(store, &sql, &params, &types, |c, i| {
            ProcessRow {
                namespace: c.text(0, i),
                resource: c.text(1, i).unwrap_or_default(),
                parent: c.text(2, i),
                process: c.text(3, i),
                seen: seen(c, i, 4),
                wide: wide(c, i, 7, q.wide),
            }
        })?);
    }
    if q.wants(Op::File) {
        let (sql, params) = section_sql(q, Op::File, &[]);
        let sql = format!("{sql} ORDER BY 1 NULLS FIRST, 2, 3, 8 DESC, 5, 4");
        let types = columns(&[Text, Text, Text, Text, Text, I64, Text], q.wide);
        out.files = Some(query_columns(store, &sql, &params, &types, |c, i| {
            FileRow {
                namespace: c.text(0, i),
                resource: c.text(1, i).unwrap_or_default(),
                mode: c.text(2, i).unwrap_or_default(),
                process: c.text(3, i),
                path: c.text(4, i),
                accesses: access_set::accesses(c.i64(5, i), c.str(6, i)),
                seen: seen(c, i, 7),
                wide: wide(c, i, 10, q.wide),
            }
        })?);
    }
    if q.wants(Op::Network) {
        let (sql, params) = section_sql(q, Op::Network, &[]);
        let sql = format!("{sql} ORDER BY 1 NULLS FIRST, 2, 3, 8 DESC, 6, 7, 4, 5");
        let types = columns(&[Text, Text, Text, Text, Text, Text, U16], q.wide);
        out.network = Some(query_columns(store, &sql, &params, &types, |c, i| {
            NetworkRow {
                namespace: c.text(0, i),
                resource: c.text(1, i).unwrap_or_default(),
                direction: c.text(2, i),
                proto: c.text(3, i),
                process: c.text(4, i),
                peer: c.text(5, i),
                port: c.u16(6, i),
                seen: seen(c, i, 7),
                wide: wide(c, i, 10, q.wide),
            }
        })?);
    }
    let results = [("results", RESULTS_SQL.to_string())];
    let at_results = if q.wide { 10 } else { 7 };
    let mut types = columns(&[Text, Text, Text, Text], q.wide);
    types.push(Text);
    if q.wants(Op::Syscall) {
        let (sql, params) = section_sql(q, Op::Syscall, &results);
        let sql = format!("{sql} ORDER BY 1 NULLS FIRST, 2, 5 DESC, 3, 4");
        out.syscalls = Some(query_columns(store, &sql, &params, &types, |c, i| {
            SyscallRow {
                namespace: c.text(0, i),
                resource: c.text(1, i).unwrap_or_default(),
                process: c.text(2, i),
                syscall: c.text(3, i),
                results: c.text(at_results, i).unwrap_or_default(),
                seen: seen(c, i, 4),
                wide: wide(c, i, 7, q.wide),
            }
        })?);
    }
    if q.wants(Op::Capability) {
        let (sql, params) = section_sql(q, Op::Capability, &results);
        let sql = format!("{sql} ORDER BY 1 NULLS FIRST, 2, 5 DESC, 3, 4");
        out.capabilities = Some(query_columns(store, &sql, &params, &types, |c, i| {
            CapabilityRow {
                namespace: c.text(0, i),
                resource: c.text(1, i).unwrap_or_default(),
                process: c.text(2, i),
                capability: c.text(3, i),
                results: c.text(at_results, i).unwrap_or_default(),
                seen: seen(c, i, 4),
                wide: wide(c, i, 7, q.wide),
            }
        })?);
    }
    Ok(out)
}

fn query<T>(
    store: &Store,
    sql: &str,
    params: &[Param],
    map: impl FnMut(&Row) -> duckdb::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = store
        .conn()
        .prepare(sql)
        .map_err(AnalyzerError::store("prepare summary"))?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), map)
        .map_err(AnalyzerError::store("run summary"))?;
    rows.collect::<std::result::Result<Vec<_>, _>>()
        .map_err(AnalyzerError::store("read summary"))
}

/// The header `observe -D` prints for a resource, as in `kubectl describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceHeader {
    /// Resource kind.
    pub kind: ResourceKind,
    /// Resource name (the summary's `resource` key).
    pub name: String,
    /// Namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// Owning workloads (`Deployment/web`).
    pub workloads: Vec<String>,
    /// Pods.
    pub pods: Vec<String>,
    /// Containers with their images (`web (nginx:1.25)`).
    pub containers: Vec<String>,
    /// Nodes.
    pub nodes: Vec<String>,
    /// Labels (union over pods).
    pub labels: Vec<String>,
    /// Raw events recorded.
    pub events: u64,
    /// Rows recorded.
    pub rows: u64,
    /// First behaviour seen.
    pub first_seen: String,
    /// Last behaviour seen.
    pub last_seen: String,
}

/// The headers of every resource a query covers (operation and filter apply).
pub fn describe(store: &Store, q: &ObserveQuery) -> Result<Vec<ResourceHeader>> {
    let (scope, params) = q.scope();
    let key = q.kind.key_sql();
    let ns = namespace_col(q.kind);
    let ops: Vec<String> = Op::ALL
        .iter()
        .filter(|op| q.wants(**op))
        .map(|op| format!("'{}'", op.as_str()))
        .collect();
    let agg = |expr: &str| {
        format!("list_sort(list_distinct(list({expr}) FILTER (WHERE {expr} IS NOT NULL)))")
    };
    let sql = format!(
        "SELECT {ns}, {key},
                {}, {}, {}, {},
                list_sort(list_distinct(flatten(list(labels)))),
                CAST(sum(count) AS UBIGINT), count(*), epoch_ns(min(ts_first)), epoch_ns(max(ts_last))
         FROM events WHERE op IN ({}) AND {scope}
         GROUP BY 1, 2 ORDER BY 1 NULLS FIRST, 2",
        agg("workload_kind || '/' || workload"),
        agg("pod"),
        agg("container || ' (' || coalesce(image, '?') || ')'"),
        agg("node"),
        ops.join(", "),
    );
    query(store, &sql, &params, |r| {
        Ok(ResourceHeader {
            kind: q.kind,
            namespace: r.get(0)?,
            name: r.get(1)?,
            workloads: strings(r.get(2)?),
            pods: strings(r.get(3)?),
            containers: strings(r.get(4)?),
            nodes: strings(r.get(5)?),
            labels: strings(r.get(6)?),
            events: r.get(7)?,
            rows: r.get::<_, i64>(8)? as u64,
            first_seen: format_ts(r.get(9)?),
            last_seen: format_ts(r.get(10)?),
        })
    })
}

/// The text items of a DuckDB list value (NULLs and other types left out).
pub(crate) fn strings(v: Value) -> Vec<String> {
    match v {
        Value::List(items) | Value::Array(items) => items
            .into_iter()
            .filter_map(|i| match i {
                Value::Text(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The query that shows exactly one resource of a [`describe`] result.
pub fn narrow_to(q: &ObserveQuery, header: &ResourceHeader) -> ObserveQuery {
    let mut one = q.clone();
    if let Some(ns) = &header.namespace {
        one.namespace = NamespaceScope::One(ns.clone());
    }
    match q.kind {
        ResourceKind::Container => {
            if let Some((pod, container)) = header.name.split_once('/') {
                one.pod = Some(pod.to_string());
                one.name = Some(container.to_string());
            }
        }
        ResourceKind::Workload | ResourceKind::Deployment => {
            if let Some((_, workload)) = header.name.split_once('/') {
                one.name = Some(workload.to_string());
            }
        }
        ResourceKind::Namespace if header.name == "(host)" => {
            one.filter = Some(host_only(q.filter.as_ref()));
        }
        _ => one.name = Some(header.name.clone()),
    }
    one
}

fn host_only(existing: Option<&SqlFilter>) -> SqlFilter {
    match existing {
        Some(f) => SqlFilter {
            sql: format!("host AND ({})", f.sql),
            params: f.params.clone(),
        },
        None => SqlFilter {
            sql: "host".into(),
            params: Vec::new(),
        },
    }
}

/// Namespaces present in the store, for hints when a query matches nothing.
pub fn namespaces(store: &Store) -> Result<Vec<String>> {
    query(
        store,
        "SELECT DISTINCT namespace FROM events WHERE namespace IS NOT NULL ORDER BY 1",
        &[],
        |r| r.get(0),
    )
}

/// Nodes present in the store (for shell completion).
pub fn nodes(store: &Store) -> Result<Vec<String>> {
    query(
        store,
        "SELECT DISTINCT node FROM events WHERE node IS NOT NULL ORDER BY 1",
        &[],
        |r| r.get(0),
    )
}
