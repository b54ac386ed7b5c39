//! `recommend --seccomp`: one seccomp profile per workload, allowing exactly the system calls
//! its `op = syscall` rows recorded (and, unless asked not to, the few calls the container
//! runtime itself makes under the profile).
//!
//! Two renderings of the same allow-list: the OCI/Docker JSON profile (`defaultAction`
//! `SCMP_ACT_ERRNO`, `architectures`, `syscalls[{names, action: SCMP_ACT_ALLOW}]`; what
//! `docker run --security-opt seccomp=FILE`, a kubelet's `Localhost` profile and the OCI
//! runtime spec's `linux.seccomp` read) and the Security Profiles Operator's namespaced
//! `SeccompProfile` resource (`security-profiles-operator.x-k8s.io/v1beta1`, the same fields
//! under `spec`; the operator installs it on each node as
//! `operator/<namespace>/<name>.json` for `securityContext.seccompProfile.localhostProfile`).
//!
//! What a profile drafted from recordings cannot know:
//! - system calls made before the probe attributed the container (the runtime's set-up, the
//!   first instructions of a short-lived entrypoint) and in code paths the window never ran
//!   (error handling, reloads, rare requests): those are denied with `EPERM` under the profile;
//! - which architecture the nodes run: names are resolved per architecture by the runtime, and
//!   the profile lists only the architectures asked for (x86-64 by default);
//! - arguments: the profile allows a name whatever its arguments.
//!
//! The runtime's own calls: an OCI runtime loads the filter before it executes the
//! entrypoint, so `execve` always runs under it; runc also loads it *before* its last
//! privilege changes when `no_new_privs` is off (Kubernetes' default,
//! `allowPrivilegeEscalation` unset), and then needs the handful of calls in
//! [`RUNTIME_SYSCALLS`]. These are added unless `runtime_set` is off, each listed in the
//! profile's annotation and the report, so that a pod can start under its profile.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::json;

use crate::error::{AnalyzerError, Result};
use crate::filter::Param;
use crate::store::Store;

use super::draft::object_name;
use super::evidence::{Scope, WorkloadId, NAMED_KEY_SQL};
use super::report::file_name;

/// System calls a container runtime makes after it loaded the profile and before (and
/// including) the exec of the entrypoint: runc's last steps when `no_new_privs` is off
/// (capabilities, groups and ids set, the working directory, the exec FIFO, file descriptors
/// closed) and the Go runtime's own background calls meanwhile.
pub const RUNTIME_SYSCALLS: &[&str] = &[
    "capget",
    "capset",
    "chdir",
    "close",
    "epoll_pwait",
    "execve",
    "exit",
    "exit_group",
    "fchdir",
    "fcntl",
    "fstat",
    "futex",
    "getdents64",
    "getpid",
    "getppid",
    "gettid",
    "madvise",
    "mmap",
    "munmap",
    "nanosleep",
    "newfstatat",
    "openat",
    "prctl",
    "read",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_yield",
    "setgid",
    "setgroups",
    "setresgid",
    "setresuid",
    "setuid",
    "sigaltstack",
    "tgkill",
    "write",
];

/// The warning on a profile whose system calls all come from KubeArmor's telemetry.
pub const KUBEARMOR_ONLY: &str = "these system calls come from KubeArmor telemetry only, which reports a call only when a syscalls rule of an applied policy matches it: the allow-list is almost certainly incomplete and would stop the workload; record it with the collector's system-call maps first";

/// The API version of the Security Profiles Operator's `SeccompProfile`.
pub const SPO_API_VERSION: &str = "security-profiles-operator.x-k8s.io/v1beta1";

/// The architectures a profile may list (libseccomp's names, as the OCI runtime spec and the
/// Security Profiles Operator's schema accept them).
pub const ARCHITECTURES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
];

/// An architecture as given (`x86_64`, `scmp_arch_aarch64`, `SCMP_ARCH_X86_64`) in
/// libseccomp's spelling, or an error naming the accepted ones.
pub fn parse_architecture(given: &str) -> Result<String> {
    let upper = given.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SCMP_ARCH_") {
        upper
    } else {
        format!("SCMP_ARCH_{upper}")
    };
    if ARCHITECTURES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(AnalyzerError::Invalid(format!(
            "unknown seccomp architecture {given:?}: expected one of {}",
            ARCHITECTURES.join(", ")
        )))
    }
}

/// How to draft seccomp profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompOptions {
    /// Add [`RUNTIME_SYSCALLS`] (default), so that the runtime can start the container.
    pub runtime_set: bool,
    /// `SCMP_ARCH_*` names the profile lists (default: `SCMP_ARCH_X86_64`).
    pub architectures: Vec<String>,
}

impl Default for SeccompOptions {
    fn default() -> Self {
        SeccompOptions {
            runtime_set: true,
            architectures: vec!["SCMP_ARCH_X86_64".into()],
        }
    }
}

/// The seccomp profile of one workload, or why it has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompDraft {
    /// The workload.
    pub workload: WorkloadId,
    /// System calls recorded, with their raw event counts.
    pub observed: BTreeMap<String, u64>,
    /// Per executable (`""`: unknown), the system calls it made.
    pub by_process: BTreeMap<String, BTreeSet<String>>,
    /// Runtime calls added that the recording did not show.
    pub added: Vec<String>,
    /// Recorded values that are not system call names (left out), with their counts.
    pub ignored: BTreeMap<String, u64>,
    /// Why no profile was drafted (no syscall rows; a host).
    pub skipped: Option<String>,
    /// Why the profile is likely too narrow (system calls from KubeArmor telemetry only).
    pub warnings: Vec<String>,
    /// The profile's architectures.
    pub architectures: Vec<String>,
}

/// `SYS_OPENAT`, `sys_openat`, `OpenAt`, `openat` → `openat`; `None` for a value that is not
/// a system call name (`[a-z_][a-z0-9_]*` once normalised).
pub fn normalise_syscall(raw: &str) -> Option<String> {
    let lower = raw.trim().to_ascii_lowercase();
    let name = lower.strip_prefix("sys_").unwrap_or(&lower);
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    (first_ok && rest_ok && name.len() <= 64).then(|| name.to_string())
}

impl SeccompDraft {
    /// Whether a profile was drafted.
    pub fn has_profile(&self) -> bool {
        self.skipped.is_none()
    }

    /// Every name the profile allows, sorted.
    pub fn allowed(&self) -> Vec<String> {
        let mut all: BTreeSet<String> = self.observed.keys().cloned().collect();
        all.extend(self.added.iter().cloned());
        all.into_iter().collect()
    }

    /// The OCI/Docker JSON profile (`None` without a profile).
    pub fn oci_profile(&self) -> Option<serde_json::Value> {
        self.has_profile().then(|| {
            json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": self.architectures,
                "syscalls": [{ "names": self.allowed(), "action": "SCMP_ACT_ALLOW" }],
            })
        })
    }

    /// The profile's object name (`karmor-<kind>-<name>`).
    pub fn object_name(&self) -> String {
        let w = &self.workload;
        object_name(&["karmor", &w.kind, w.name.trim_end_matches('*')])
    }

    /// The file stem of this workload's outputs (`ns_kind_name`).
    pub fn file_stem(&self) -> String {
        let name = file_name(&self.workload);
        name.strip_suffix(".yaml").unwrap_or(&name).to_string()
    }

    /// The Security Profiles Operator's `SeccompProfile`, with `#` comments (`None` without a
    /// profile, or for a container no pod holds: the resource is namespaced).
    pub fn spo_yaml(&self) -> Option<String> {
        let ns = self.workload.namespace.as_ref()?;
        let spec = self.oci_profile()?;
        let name = self.object_name();
        let mut annotations = serde_json::Map::new();
        annotations.insert(
            "karmor.io/observed-syscalls".into(),
            json!(self.observed.len().to_string()),
        );
        if !self.added.is_empty() {
            annotations.insert(
                "karmor.io/runtime-syscalls".into(),
                json!(self.added.join(",")),
            );
        }
        let doc = json!({
            "apiVersion": SPO_API_VERSION,
            "kind": "SeccompProfile",
            "metadata": { "name": name, "namespace": ns, "annotations": annotations },
            "spec": spec,
        });
        let body = serde_yaml::to_string(&doc).ok()?;
        let mut out = String::new();
        for line in self.comment_lines() {
            out.push_str(&format!("# {line}\n"));
        }
        out.push_str(&format!(
            "# Use: securityContext.seccompProfile: {{type: Localhost, localhostProfile: operator/{ns}/{name}.json}}\n"
        ));
        out.push_str(&body);
        Some(out)
    }

    /// What the profile is and what it cannot know, as comment lines.
    pub fn comment_lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "Seccomp profile of {}: allows the {} system calls recorded{}; every other call fails with EPERM.",
                self.workload,
                self.observed.len(),
                if self.added.is_empty() {
                    String::new()
                } else {
                    format!(
                        " and {} the container runtime makes under the profile ({})",
                        self.added.len(),
                        self.added.join(", ")
                    )
                }
            ),
            "Not known from the recording: calls made before the probe attributed the container, and code paths not run in the window (errors, reloads, rare requests).".into(),
            "Every recorded process of the containers counts, kubectl exec sessions and probes included: the profile applies to them too.".into(),
            format!(
                "Architectures: {} (names resolve per architecture; add the nodes' others if they differ).",
                self.architectures.join(", ")
            ),
        ];
        for w in &self.warnings {
            lines.push(format!("WARNING: {w}."));
        }
        if !self.ignored.is_empty() {
            lines.push(format!(
                "Left out, not system call names: {}",
                self.ignored.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        lines
    }
}

/// The `--report` Markdown of `recommend --seccomp`: per workload, the profile, what was added
/// and why, the calls per executable, and what the profile cannot know.
pub fn markdown(drafts: &[SeccompDraft]) -> String {
    let mut md = String::from("# Seccomp profiles drafted from recorded system calls\n\n");
    md.push_str(
        "Each profile denies (EPERM) every system call but those listed. It is only as complete as \
         the recording: calls made before the probe attributed the container, and code paths the \
         window never ran, are not in it. Try it where a denied call is harmless (a staging \
         namespace), or first with `SCMP_ACT_LOG` as the default action, before enforcing it.\n\n",
    );
    for d in drafts {
        md.push_str(&format!("## {}\n\n", d.workload));
        if let Some(why) = &d.skipped {
            md.push_str(&format!("No profile: {why}.\n\n"));
            continue;
        }
        md.push_str(&format!(
            "Files: `{stem}.seccomp.json` (OCI/Docker){spo}.\n\n",
            stem = d.file_stem(),
            spo = if d.workload.namespace.is_some() {
                format!(
                    ", `{}.seccompprofile.yaml` (Security Profiles Operator)",
                    d.file_stem()
                )
            } else {
                String::new()
            }
        ));
        for line in d.comment_lines() {
            md.push_str(&format!("- {line}\n"));
        }
        if !d.added.is_empty() {
            md.push_str(
                "- Added for the container runtime: an OCI runtime loads the profile before it \
                 executes the entrypoint (`execve` runs under it), and runc loads it before its \
                 last privilege changes when no_new_privs is off (Kubernetes' default); \
                 `--seccomp-exact` leaves them out.\n",
            );
        }
        md.push_str("\n| executable | system calls |\n|---|---|\n");
        for (exe, calls) in &d.by_process {
            let exe = if exe.is_empty() { "(unknown)" } else { exe };
            md.push_str(&format!(
                "| `{exe}` | {} |\n",
                calls.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        md.push('\n');
    }
    md
}

fn run_query<T>(
    store: &Store,
    sql: &str,
    params: &[Param],
    what: &str,
    each: impl FnMut(&duckdb::Row) -> duckdb::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = store
        .conn()
        .prepare(sql)
        .map_err(AnalyzerError::store(format!("prepare {what}")))?;
    let rows = stmt
        .query_map(duckdb::params_from_iter(params.iter()), each)
        .map_err(AnalyzerError::store(format!("run {what}")))?;
    rows.collect::<std::result::Result<Vec<_>, _>>()
        .map_err(AnalyzerError::store(format!("read {what}")))
}

/// The seccomp profile of every workload in `scope`: one per workload with syscall rows;
/// workloads without any get a draft with [`SeccompDraft::skipped`] set (never an empty
/// allow-list, which would stop the container at its first call). Hosts and unattributed
/// rows are skipped: seccomp profiles apply to containers.
pub fn seccomp_drafts(
    store: &Store,
    scope: &Scope,
    opts: &SeccompOptions,
) -> Result<Vec<SeccompDraft>> {
    let (where_sql, params) = scope.sql();
    let sql = format!(
        "SELECT k_ns, k_kind, k_name, process, syscall, CAST(sum(c) AS UBIGINT),
                coalesce(bool_or(probe), false)
         FROM (SELECT {NAMED_KEY_SQL},
                      CASE WHEN op = 'syscall' THEN coalesce(process, '') END AS process,
                      CASE WHEN op = 'syscall' THEN syscall END AS syscall, count AS c,
                      op = 'syscall' AND source = 'ebpf' AS probe
               FROM events WHERE {where_sql})
         GROUP BY ALL ORDER BY 1 NULLS FIRST, 2, 3, 4 NULLS FIRST, 5 NULLS FIRST"
    );
    let rows = run_query(store, &sql, &params, "syscall query", |r| {
        Ok((
            WorkloadId {
                namespace: r.get(0)?,
                kind: r.get(1)?,
                name: r.get(2)?,
            },
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, u64>(5)?,
            r.get::<_, bool>(6)?,
        ))
    })?;
    let mut out: BTreeMap<WorkloadId, SeccompDraft> = BTreeMap::new();
    // Workloads with a system call recorded by the collector's probes (a complete map).
    let mut probed: BTreeSet<WorkloadId> = BTreeSet::new();
    for (id, process, syscall, count, probe) in rows {
        if id.is_unattributed() {
            continue;
        }
        let d = out.entry(id.clone()).or_insert_with(|| SeccompDraft {
            workload: id,
            observed: BTreeMap::new(),
            by_process: BTreeMap::new(),
            added: Vec::new(),
            ignored: BTreeMap::new(),
            skipped: None,
            warnings: Vec::new(),
            architectures: opts.architectures.clone(),
        });
        if probe {
            probed.insert(d.workload.clone());
        }
        let Some(raw) = syscall else { continue };
        match normalise_syscall(&raw) {
            Some(name) => {
                *d.observed.entry(name.clone()).or_default() += count;
                d.by_process
                    .entry(process.unwrap_or_default())
                    .or_default()
                    .insert(name);
            }
            None => *d.ignored.entry(raw).or_default() += count,
        }
    }
    let mut drafts: Vec<SeccompDraft> = out.into_values().collect();
    for d in &mut drafts {
        if d.workload.is_host() {
            d.skipped =
                Some("host behaviour: seccomp profiles apply to containers, not to a node".into());
        } else if d.observed.is_empty() {
            d.skipped = Some(
                "no system calls recorded (no op=syscall rows in scope): no profile drafted, as an empty allow-list would stop the container at its first call; record it with a collector that writes system-call maps".into(),
            );
        } else {
            if !probed.contains(&d.workload) {
                d.warnings.push(KUBEARMOR_ONLY.to_string());
            }
            if !opts.runtime_set {
                continue;
            }
            d.added = RUNTIME_SYSCALLS
                .iter()
                .filter(|n| !d.observed.contains_key(**n))
                .map(|n| n.to_string())
                .collect();
        }
    }
    // Containers first, hosts last (as recommend orders its drafts).
    drafts.sort_by_key(|d| (d.workload.is_host(), d.workload.clone()));
    Ok(drafts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalise_syscall("SYS_OPENAT").as_deref(), Some("openat"));
        assert_eq!(normalise_syscall("sys_read").as_deref(), Some("read"));
        assert_eq!(normalise_syscall(" Execve ").as_deref(), Some("execve"));
        assert_eq!(normalise_syscall("pread64").as_deref(), Some("pread64"));
        assert_eq!(normalise_syscall("_sysctl").as_deref(), Some("_sysctl"));
        assert_eq!(normalise_syscall("SYS_"), None);
        assert_eq!(normalise_syscall("open at"), None);
        assert_eq!(normalise_syscall("42"), None);
        assert_eq!(normalise_syscall(""), None);
    }

    #[test]
    fn architectures_are_spelt_as_libseccomp_does() {
        assert_eq!(parse_architecture("x86_64").unwrap(), "SCMP_ARCH_X86_64");
        assert_eq!(
            parse_architecture("scmp_arch_aarch64").unwrap(),
            "SCMP_ARCH_AARCH64"
        );
        let err = parse_architecture("amd64").unwrap_err().to_string();
        assert!(
            err.contains("amd64") && err.contains("SCMP_ARCH_X86_64"),
            "{err}"
        );
    }

    #[test]
    fn the_runtime_set_is_sorted_and_named() {
        let mut sorted = RUNTIME_SYSCALLS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, RUNTIME_SYSCALLS);
        assert!(RUNTIME_SYSCALLS.contains(&"execve"));
        for n in RUNTIME_SYSCALLS {
            assert_eq!(normalise_syscall(n).as_deref(), Some(*n));
        }
    }
}
