//! Has learning converged? Per workload (and host) and category: the new generalised items
//! per hour (a saturation curve), hours observed, whether start-up was seen, drops, and a
//! verdict (design §7).
//!
//! - **stable**: every category has been quiet (no new generalised item) for its quiet period
//!   before the workload's last behaviour;
//! - **learning**: some category saw a new item more recently than that;
//! - **partial**: the data cannot show the whole behaviour: start-up was not seen (the
//!   container's first process in the data is not one the runtime started), or producers
//!   dropped events. Drops are counted per store (segments do not say which workload lost
//!   events), so any drop makes every workload partial.

use std::collections::BTreeMap;

use duckdb::params_from_iter;
use karmor_contract::bundle::format_ts;
use serde::Serialize;

use crate::error::{AnalyzerError, Result};
use crate::recommend::generalise::GeneraliseOptions;
use crate::recommend::noise::{is_runtime, PROBE_MIN_RUNS};
use crate::recommend::{Scope, WorkloadId};
use crate::store::Store;

use super::generalised::{first_seen, Shapes};
use super::items::{self, Category, Items};

const HOUR_NS: i64 = 3_600_000_000_000;

/// Quiet periods and generalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StabilityOptions {
    /// Quiet period per category (ns) after which it is stable.
    pub quiet_ns: BTreeMap<Category, i64>,
    /// How items are generalised (as drafts are).
    pub generalise: GeneraliseOptions,
}

impl Default for StabilityOptions {
    fn default() -> Self {
        StabilityOptions {
            quiet_ns: Category::ALL
                .into_iter()
                .map(|c| (c, default_quiet_ns(c)))
                .collect(),
            generalise: GeneraliseOptions::default(),
        }
    }
}

/// The default quiet period of a category: 24 h for network peers (daily jobs, backups),
/// 6 h for the rest.
pub fn default_quiet_ns(c: Category) -> i64 {
    match c {
        Category::Network => 24 * HOUR_NS,
        _ => 6 * HOUR_NS,
    }
}

impl StabilityOptions {
    /// Parses one `--quiet` value: `DURATION` (every category) or `CATEGORY=DURATION`
    /// (`files=2h`, `network=1d`).
    pub fn apply_arg(&mut self, arg: &str) -> Result<()> {
        let (cats, span) = match arg.split_once('=') {
            Some((c, d)) => (vec![c.parse::<Category>()?], d),
            None => (Category::ALL.to_vec(), arg),
        };
        let ns = crate::timespec::parse_duration(span).map_err(|e| {
            AnalyzerError::Invalid(format!(
                "invalid --quiet {arg:?}: {e} (expected DURATION or CATEGORY=DURATION, e.g. 6h or network=1d)"
            ))
        })?;
        for c in cats {
            self.quiet_ns.insert(c, ns);
        }
        Ok(())
    }

    /// The quiet period of a category.
    pub fn quiet(&self, c: Category) -> i64 {
        self.quiet_ns
            .get(&c)
            .copied()
            .unwrap_or_else(|| default_quiet_ns(c))
    }
}

/// A stability verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Quiet for long enough in every category.
    Stable,
    /// Still finding new behaviour.
    Learning,
    /// The data cannot show the whole behaviour (start-up not seen, or events dropped).
    Partial,
}

impl Verdict {
    /// `stable`, `learning` or `partial`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Stable => "stable",
            Verdict::Learning => "learning",
            Verdict::Partial => "partial",
        }
    }
}

/// One category of one workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryStability {
    /// The category.
    pub category: Category,
    /// Distinct generalised items.
    pub items: usize,
    /// New generalised items per hour, from the workload's first behaviour.
    pub new_per_hour: Vec<u32>,
    /// When the last new item was first seen (RFC 3339).
    pub last_new: Option<String>,
    /// How long it has been quiet before the workload's last behaviour (s).
    pub quiet_s: i64,
    /// The quiet period it needs (s).
    pub quiet_needed_s: i64,
    /// `stable` or `learning`.
    pub verdict: Verdict,
}

/// The stability of one workload or host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stability {
    /// The workload (or node).
    pub workload: WorkloadId,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it is not stable (empty when stable).
    pub reasons: Vec<String>,
    /// Hours between its first and last behaviour.
    pub hours_observed: f64,
    /// First behaviour (RFC 3339).
    pub first_seen: String,
    /// Last behaviour (RFC 3339).
    pub last_seen: String,
    /// Whether every container's start-up is in the data (`None` for hosts).
    pub startup_seen: Option<bool>,
    /// Events producers dropped over the data (not attributable to a workload).
    pub events_dropped: u64,
    /// Per category, those with items first.
    pub categories: Vec<CategoryStability>,
}

impl Stability {
    /// The curve of all categories as a one-line text chart (one character per hour,
    /// ` ▁▂▃▄▅▆▇█` scaled to the busiest hour).
    pub fn chart(&self) -> String {
        let hours = self
            .categories
            .iter()
            .map(|c| c.new_per_hour.len())
            .max()
            .unwrap_or(0);
        let total: Vec<u32> = (0..hours)
            .map(|h| {
                self.categories
                    .iter()
                    .map(|c| c.new_per_hour.get(h).copied().unwrap_or(0))
                    .sum()
            })
            .collect();
        spark(&total)
    }
}

/// A sparkline: ` ` for 0, then eight levels up to the maximum.
pub fn spark(values: &[u32]) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0).max(1) as u64;
    values
        .iter()
        .map(|&v| {
            if v == 0 {
                '·'
            } else {
                LEVELS[((v as u64 * 8 - 1) / max).min(7) as usize]
            }
        })
        .collect()
}

/// Stability of every workload and host in `scope`.
pub fn stability(store: &Store, scope: &Scope, opts: &StabilityOptions) -> Result<Vec<Stability>> {
    let items = items::read_counts(store, scope)?;
    let startup = startup_seen(store, scope)?;
    let dropped = store.health()?.events_dropped;
    Ok(assess(&items, &startup, dropped, opts))
}

/// The verdicts from items already read, start-up per workload, and the store's drops.
pub fn assess(
    items: &Items,
    startup: &BTreeMap<WorkloadId, bool>,
    dropped: u64,
    opts: &StabilityOptions,
) -> Vec<Stability> {
    let mut out = Vec::new();
    let mut ids: Vec<&WorkloadId> = items.span.keys().collect();
    ids.sort_by_key(|id| (id.is_host(), (*id).clone()));
    // Folding is the costly part, and workloads are independent.
    let shapes = Shapes::of(items.by_workload.values().flatten());
    let folds = super::par_map(&ids, |id| {
        let raws = items.by_workload.get(*id).map(Vec::as_slice).unwrap_or(&[]);
        first_seen(raws, &opts.generalise, &shapes)
    });
    for (id, folded) in ids.into_iter().zip(folds) {
        let (first, last) = items.span[id];
        let hours = ((last - first).max(0) / HOUR_NS + 1) as usize;
        let mut categories = Vec::new();
        for c in Category::ALL {
            let mine: Vec<i64> = folded
                .iter()
                .filter(|&&(category, _)| category == c)
                .map(|&(_, first_ns)| first_ns)
                .collect();
            if mine.is_empty() && c == Category::Syscalls {
                continue;
            }
            let mut curve = vec![0u32; hours];
            for t in &mine {
                let h = ((t - first).max(0) / HOUR_NS) as usize;
                curve[h.min(hours - 1)] += 1;
            }
            let last_new = mine.iter().copied().max();
            let quiet = last_new.map_or(last - first, |t| last - t);
            let needed = opts.quiet(c);
            categories.push(CategoryStability {
                category: c,
                items: mine.len(),
                new_per_hour: curve,
                last_new: last_new.map(format_ts),
                quiet_s: quiet / 1_000_000_000,
                quiet_needed_s: needed / 1_000_000_000,
                // A category without items has nothing to wait for.
                verdict: if quiet >= needed || mine.is_empty() {
                    Verdict::Stable
                } else {
                    Verdict::Learning
                },
            });
        }
        let startup_seen = (!id.is_host()).then(|| startup.get(id).copied().unwrap_or(false));
        let mut reasons = Vec::new();
        if startup_seen == Some(false) {
            reasons.push(
                "start-up not seen: the data begins after its containers started".to_string(),
            );
        }
        if dropped > 0 {
            reasons.push(format!("{dropped} events dropped by producers in the data"));
        }
        let partial = !reasons.is_empty();
        for c in &categories {
            if c.verdict == Verdict::Learning {
                reasons.push(format!(
                    "{}: a new item {} before its last behaviour, quiet period {}",
                    c.category.as_str(),
                    human(c.quiet_s),
                    human(c.quiet_needed_s)
                ));
            }
        }
        let verdict = if partial {
            Verdict::Partial
        } else if reasons.is_empty() {
            Verdict::Stable
        } else {
            Verdict::Learning
        };
        out.push(Stability {
            workload: id.clone(),
            verdict,
            reasons,
            hours_observed: (last - first).max(0) as f64 / HOUR_NS as f64,
            first_seen: format_ts(first),
            last_seen: format_ts(last),
            startup_seen,
            events_dropped: dropped,
            categories,
        });
    }
    out
}

/// Seconds as `2h05m`, `45m`, `30s`, `3d04h`.
pub fn human(s: i64) -> String {
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h{m:02}m"),
        (d, h, _) => format!("{d}d{h:02}h"),
    }
}

/// Per container workload: whether every container's first process in scope is one the
/// runtime started once (its entrypoint), not a probe or a process of a container already
/// running when the data begins.
///
/// A store file answers from its files' start-up digests when the scope has no times and no
/// filter (a digest holds whole files); otherwise the process rows are read.
pub fn startup_seen(store: &Store, scope: &Scope) -> Result<BTreeMap<WorkloadId, bool>> {
    let (where_sql, params) = scope.sql();
    let whole = scope.since_ns.is_none() && scope.until_ns.is_none() && scope.filter.is_none();
    let firsts = match whole {
        true => super::digest::startup(store, &items::item_sql(), &where_sql, &params)?,
        false => None,
    };
    let firsts = match firsts {
        Some(f) => f,
        None => startup_rows(store, &where_sql, &params)?,
    };
    let mut out: BTreeMap<WorkloadId, bool> = BTreeMap::new();
    for (id, parent, starts) in firsts {
        let seen = is_runtime(&parent) && (starts as usize) < PROBE_MIN_RUNS;
        let e = out.entry(id).or_insert(true);
        *e = *e && seen;
    }
    Ok(out)
}

/// [`startup_seen`] read from the process rows: per workload and container, the parent of its
/// earliest process and how many distinct pids ran that process with those arguments.
fn startup_rows(
    store: &Store,
    where_sql: &str,
    params: &[crate::filter::Param],
) -> Result<Vec<(WorkloadId, String, i64)>> {
    let sql = format!(
        "WITH p AS (
            SELECT {keys},
                   coalesce(container_id, pod, '') AS c, pid, coalesce(process, '') AS process,
                   coalesce(args, '') AS args, coalesce(parent_process, '') AS parent,
                   epoch_ns(ts_first) AS t
            FROM events WHERE op = 'process' AND NOT host AND {where_sql}),
         firsts AS (
            SELECT k_ns, k_kind, k_name, c, arg_min(parent, t) AS parent,
                   arg_min(process, t) AS process, arg_min(args, t) AS args
            FROM p GROUP BY ALL),
         starts AS (
            SELECT c, process, args, count(DISTINCT pid) AS n FROM p GROUP BY ALL)
         SELECT f.k_ns, f.k_kind, f.k_name, f.parent, coalesce(s.n, 0)
         FROM firsts f LEFT JOIN starts s
           ON s.c = f.c AND s.process = f.process AND s.args = f.args",
        keys = crate::recommend::evidence::NAMED_KEY_SQL
    );
    let mut stmt = store
        .conn()
        .prepare(&sql)
        .map_err(AnalyzerError::store("prepare the start-up query"))?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            Ok((
                WorkloadId {
                    namespace: r.get(0)?,
                    kind: r.get(1)?,
                    name: r.get(2)?,
                },
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .map_err(AnalyzerError::store("run the start-up query"))?;
    rows.collect::<std::result::Result<Vec<_>, _>>()
        .map_err(AnalyzerError::store("read the start-up query"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_periods_parse_per_category() {
        let mut o = StabilityOptions::default();
        o.apply_arg("2h").unwrap();
        assert_eq!(o.quiet(Category::Network), 2 * HOUR_NS);
        o.apply_arg("network=1d").unwrap();
        assert_eq!(o.quiet(Category::Network), 24 * HOUR_NS);
        assert_eq!(o.quiet(Category::Files), 2 * HOUR_NS);
        assert!(o
            .apply_arg("disks=1h")
            .unwrap_err()
            .to_string()
            .contains("unknown category"));
        assert!(o.apply_arg("files=soon").is_err());
    }

    #[test]
    fn sparkline_scales_to_the_busiest_hour() {
        assert_eq!(spark(&[8, 0, 1, 4]), "█·▁▄");
        assert_eq!(human(7_500), "2h05m");
        assert_eq!(human(90_000), "1d01h");
    }
}
