//! The one scope builder of `observe`, `recommend` and `simulate`: [`ScopeArgs`] (namespaces,
//! `--since`, `--until`, `--filter`) and a resource [`Target`] become times and parameterised
//! SQL. User text only ever reaches DuckDB as a bound parameter.

use anyhow::{bail, Result};
use karmor_analyzer::filter::{self, Param, SqlFilter};
use karmor_analyzer::recommend::parse_instant;
use kubectl_karmor::resource::{Resource, Target};

use crate::cli::ScopeArgs;

/// What a [`ScopeArgs`] selects, checked and compiled.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `-n`, in order; empty with `-A` or without `-n`.
    pub namespaces: Vec<String>,
    /// `-A`.
    pub all_namespaces: bool,
    /// Behaviour last seen at or after this time (ns since the epoch).
    pub since_ns: Option<i64>,
    /// Behaviour first seen before this time (ns since the epoch).
    pub until_ns: Option<i64>,
    /// The compiled `-f` filter.
    pub filter: Option<SqlFilter>,
}

impl Scope {
    /// Checks and compiles the arguments, times relative to now.
    pub fn new(args: &ScopeArgs) -> Result<Self> {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        Self::at(args, now)
    }

    /// Checks and compiles the arguments, times relative to `now_ns`.
    pub fn at(args: &ScopeArgs, now_ns: i64) -> Result<Self> {
        let time = |flag: &str, text: &Option<String>| -> Result<Option<i64>> {
            text.as_deref()
                .map(|t| parse_instant(t, now_ns).map_err(|e| anyhow::anyhow!("--{flag} {t}: {e}")))
                .transpose()
        };
        let since_ns = time("since", &args.since)?;
        let until_ns = time("until", &args.until)?;
        if let (Some(a), Some(b)) = (since_ns, until_ns) {
            if a >= b {
                bail!("--since must be before --until");
            }
        }
        let filter = args
            .filter
            .as_deref()
            .map(|f| filter::compile(f).map_err(|e| anyhow::anyhow!("--filter: {e}")))
            .transpose()?;
        let namespaces: Vec<String> = args
            .namespaces
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        Ok(Scope {
            namespaces,
            all_namespaces: args.all_namespaces,
            since_ns,
            until_ns,
            filter,
        })
    }

    /// The one namespace of `observe` and `recommend`: `None` for every namespace (`-A`, or a
    /// resource outside namespaces without `-n`), else `-n`, else `default` as kubectl does.
    pub fn one_namespace(&self, command: &str, namespaced: bool) -> Result<Option<String>> {
        match self.namespaces.as_slice() {
            _ if self.all_namespaces => Ok(None),
            [] if namespaced => Ok(Some("default".to_string())),
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            _ => bail!(
                "{command} takes one namespace (-n NS) or all of them (-A), not {}",
                self.namespaces.join(",")
            ),
        }
    }

    /// The `-f` filter and the given constraints, all of which must hold.
    pub fn filter_and(&self, more: impl IntoIterator<Item = SqlFilter>) -> Option<SqlFilter> {
        all_of(self.filter.iter().cloned().chain(more))
    }
}

/// Rows first seen before `until_ns` (for queries without an until of their own).
pub fn until_filter(until_ns: i64) -> SqlFilter {
    SqlFilter {
        sql: "epoch_ns(ts_first) < ?".into(),
        params: vec![Param::Int(until_ns)],
    }
}

/// Rows of an owner kind (`StatefulSet`), outside the hosts; pods without an owner count as
/// `Pod`.
pub fn owner_kind_filter(kind: &str) -> SqlFilter {
    SqlFilter {
        sql: "NOT host AND coalesce(workload_kind, 'Pod') = ?".into(),
        params: vec![Param::Text(kind.to_string())],
    }
}

/// The rows a resource target selects: its kind (nodes: host behaviour; namespaced kinds:
/// not the hosts) and its name. `None` when it selects everything.
pub fn target_filter(target: &Target) -> Option<SqlFilter> {
    let mut parts = Vec::new();
    let text = |sql: &str, value: &str| SqlFilter {
        sql: sql.into(),
        params: vec![Param::Text(value.to_string())],
    };
    let fixed = |sql: &str| SqlFilter {
        sql: sql.into(),
        params: Vec::new(),
    };
    let name = target.name.as_deref();
    match target.resource {
        Resource::Namespace => parts.extend(name.map(|n| text("namespace = ?", n))),
        Resource::Node => {
            parts.push(fixed("host"));
            parts.extend(name.map(|n| text("node = ?", n)));
        }
        Resource::Pod => {
            parts.push(fixed("NOT host"));
            parts.extend(name.map(|n| text("pod = ?", n)));
        }
        Resource::Container => {
            parts.push(fixed("NOT host"));
            parts.extend(name.map(|n| text("container = ?", n)));
        }
        Resource::Workload => {
            parts.push(fixed("NOT host"));
            parts.extend(name.map(|n| text("workload = ?", n)));
        }
        r => {
            if let Some(kind) = r.owner_kind() {
                parts.push(owner_kind_filter(kind));
            }
            parts.extend(name.map(|n| text("workload = ?", n)));
        }
    }
    all_of(parts)
}

/// The conjunction of filters; `None` for none.
fn all_of(parts: impl IntoIterator<Item = SqlFilter>) -> Option<SqlFilter> {
    let parts: Vec<SqlFilter> = parts.into_iter().collect();
    if parts.len() <= 1 {
        return parts.into_iter().next();
    }
    let sql = parts
        .iter()
        .map(|p| format!("({})", p.sql))
        .collect::<Vec<_>>()
        .join(" AND ");
    let params = parts.into_iter().flat_map(|p| p.params).collect();
    Some(SqlFilter { sql, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(namespaces: &[&str], all: bool) -> ScopeArgs {
        ScopeArgs {
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            all_namespaces: all,
            ..ScopeArgs::default()
        }
    }

    #[test]
    fn one_namespace_follows_kubectl() -> Result<()> {
        let one = |a: ScopeArgs, namespaced| Scope::at(&a, 0)?.one_namespace("observe", namespaced);
        assert_eq!(one(args(&[], false), true)?, Some("default".into()));
        assert_eq!(one(args(&[], false), false)?, None);
        assert_eq!(one(args(&[], true), true)?, None);
        assert_eq!(one(args(&["shop"], false), true)?, Some("shop".into()));
        assert!(one(args(&["a", "b"], false), true).is_err());
        Ok(())
    }

    #[test]
    fn times_are_instants_or_durations_and_ordered() -> Result<()> {
        let now = 10 * 86_400 * 1_000_000_000_i64;
        let a = ScopeArgs {
            since: Some("2d".into()),
            until: Some("1970-01-10T00:00:00Z".into()),
            ..ScopeArgs::default()
        };
        let s = Scope::at(&a, now)?;
        assert_eq!(s.since_ns, Some(8 * 86_400 * 1_000_000_000));
        assert_eq!(s.until_ns, Some(9 * 86_400 * 1_000_000_000));
        let backwards = ScopeArgs {
            since: Some("1d".into()),
            until: Some("2d".into()),
            ..ScopeArgs::default()
        };
        assert!(Scope::at(&backwards, now).is_err());
        Ok(())
    }

    #[test]
    fn a_target_and_a_filter_compile_to_bound_parameters() -> Result<()> {
        let target = Target::parse("sts/mysql", None)?;
        let a = ScopeArgs {
            filter: Some("user=root".into()),
            ..ScopeArgs::default()
        };
        let f = Scope::at(&a, 0)?
            .filter_and(target_filter(&target))
            .unwrap_or_else(|| panic!("a filter"));
        assert!(
            !f.sql.contains("mysql") && !f.sql.contains("root"),
            "{}",
            f.sql
        );
        assert_eq!(f.sql.matches('?').count(), f.params.len());
        assert!(f.params.contains(&Param::Text("StatefulSet".into())));
        assert!(f.params.contains(&Param::Text("mysql".into())));
        assert!(target_filter(&Target::parse("namespaces", None)?).is_none());
        Ok(())
    }
}
