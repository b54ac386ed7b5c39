//! Distinct behaviour items per workload and category, read with one `GROUP BY` over `events`.
//!
//! An item is what a draft would need a rule for: an executable and its parent, a file path
//! and the process that touched it (reads and writes apart), a network peer or local port, a
//! capability and its process, a system call. The query returns raw items (paths as recorded);
//! [`super::generalised`] folds them as drafts do.

use std::collections::BTreeMap;

use duckdb::params_from_iter;
use serde::Serialize;

use crate::error::{AnalyzerError, Result};
use crate::recommend::evidence::WRITE_ACCESSES;
use crate::recommend::{Scope, WorkloadId};
use crate::store::Store;

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
#[derive(Debug, Clone, Default)]
pub struct Items {
    /// Raw items per workload.
    pub by_workload: BTreeMap<WorkloadId, Vec<RawItem>>,
    /// (first, last) behaviour per workload (ns).
    pub span: BTreeMap<WorkloadId, (i64, i64)>,
}

/// The workload key columns, named (same keys as `recommend`).
const KEYS: &str = "CASE WHEN host THEN NULL ELSE namespace END AS k_ns, \
    CASE WHEN host THEN 'Node' ELSE coalesce(workload_kind, 'Pod') END AS k_kind, \
    CASE WHEN host THEN node ELSE coalesce(workload, pod, '(none)') END AS k_name";

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
    let (where_sql, params) = scope.sql();
    let sql = format!(
        "SELECT k_ns, k_kind, k_name, op, item, actor, writes,
                CAST(sum(c) AS UBIGINT), min(t0), max(t1), arg_min(intro, t0), arg_min(p, t0)
         FROM (SELECT {KEYS}, op, {ITEM_SQL} AS item,
                      CASE op WHEN 'process' THEN coalesce(parent_process, '')
                              WHEN 'file' THEN coalesce(process, '')
                              WHEN 'capability' THEN coalesce(process, '')
                              ELSE '' END AS actor,
                      (op = 'file' AND coalesce(access, '') IN {WRITE_ACCESSES}) AS writes,
                      count AS c, epoch_ns(ts_first) AS t0, epoch_ns(ts_last) AS t1,
                      CASE WHEN op = 'process' THEN coalesce(parent_process, '')
                           ELSE coalesce(process, '') END AS intro,
                      coalesce(pod, '') AS p
               FROM events
               WHERE op IN ('process', 'file', 'network', 'capability', 'syscall')
                 AND {where_sql})
         GROUP BY k_ns, k_kind, k_name, op, item, actor, writes"
    );
    let mut stmt = store
        .conn()
        .prepare(&sql)
        .map_err(AnalyzerError::store("prepare the item query"))?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            Ok((
                WorkloadId {
                    namespace: r.get(0)?,
                    kind: r.get(1)?,
                    name: r.get(2)?,
                },
                r.get::<_, String>(3)?,
                RawItem {
                    group: Group {
                        category: Category::Executables,
                        actor: r.get(5)?,
                        writes: r.get(6)?,
                    },
                    item: r.get(4)?,
                    count: r.get(7)?,
                    first_ns: r.get(8)?,
                    last_ns: r.get(9)?,
                    introduced_by: r.get(10)?,
                    pod: r.get(11)?,
                },
            ))
        })
        .map_err(AnalyzerError::store("run the item query"))?;
    let mut out = Items::default();
    for row in rows {
        let (id, op, mut item) = row.map_err(AnalyzerError::store("read the item query"))?;
        let Some(category) = Category::of_op(&op) else {
            continue;
        };
        item.group.category = category;
        let span = out.span.entry(id.clone()).or_insert((i64::MAX, i64::MIN));
        span.0 = span.0.min(item.first_ns);
        span.1 = span.1.max(item.last_ns);
        if item.item.is_empty() {
            continue;
        }
        out.by_workload.entry(id).or_default().push(item);
    }
    for items in out.by_workload.values_mut() {
        items.sort_by(|a, b| (&a.group, &a.item).cmp(&(&b.group, &b.item)));
    }
    Ok(out)
}
