//! Noise: behaviour that is not the application's main process tree, tagged so that drafts
//! can say what it is (probes and start-up helpers are kept by default, `kubectl exec`
//! sessions are left out).
//!
//! Per container (its container id), from the process instances:
//!
//! - the **main process** is the first process the container runtime started (its parent is
//!   the runtime shim: `containerd-shim*`, `conmon`, `runc`, `crun`, …); everything it and its
//!   descendants do is the application;
//! - other processes started by the runtime are **probes** when the same command line started
//!   at least [`PROBE_MIN_RUNS`] times in one container at regular intervals (exec liveness and
//!   readiness probes), and **`kubectl exec` sessions** otherwise; their descendants inherit the
//!   tag, as do the file, network and capability rows of their pids;
//! - **start-up** helpers are processes of the application tree, other than the main pid, that
//!   were started within [`STARTUP_WINDOW_NS`] of the main process and were never seen after
//!   that window (the entrypoint's `id`, `find`, `sed`, `chown`, …).
//!
//! Host behaviour is never tagged. Rows without pids can only be tagged by their own process
//! row.

use std::collections::{BTreeMap, HashMap};

use super::evidence::{Evidence, ProcessInstance, WorkloadId};

/// How long after the main process starts a short-lived helper counts as start-up.
pub const STARTUP_WINDOW_NS: i64 = 30 * 1_000_000_000;

/// Starts of one command line in one container needed to call it a probe.
pub const PROBE_MIN_RUNS: usize = 3;

/// A noise tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Noise {
    /// Container start-up helpers.
    Startup,
    /// `kubectl exec` sessions.
    Exec,
    /// Exec probes.
    Probe,
}

impl Noise {
    /// All tags.
    pub const ALL: [Noise; 3] = [Noise::Startup, Noise::Exec, Noise::Probe];

    /// `startup`, `exec` or `probe` (the temporary table's value).
    pub fn as_str(self) -> &'static str {
        match self {
            Noise::Startup => "startup",
            Noise::Exec => "exec",
            Noise::Probe => "probe",
        }
    }

    /// The tag of a stored value; empty or unknown text is no tag.
    pub fn from_tag(s: &str) -> Option<Noise> {
        Noise::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// What the tag means, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Noise::Startup => "container start-up helpers (short-lived processes of the entrypoint)",
            Noise::Exec => "`kubectl exec` sessions (processes started by the runtime shim, not by the container's main process)",
            Noise::Probe => "exec probes (the same command started by the runtime shim at regular intervals)",
        }
    }
}

/// What to keep in drafts beyond the application itself (`--include`, `--exclude`).
///
/// By default probes and start-up helpers are kept (the workload needs them at every probe and
/// every start: a draft without them breaks the pod under a block posture); `kubectl exec`
/// sessions and behaviour held out as suspicious are left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Include {
    /// Keep start-up helpers.
    pub startup: bool,
    /// Keep `kubectl exec` sessions.
    pub exec: bool,
    /// Keep probes.
    pub probes: bool,
    /// Keep behaviour held out as suspicious as rules.
    pub suspicious: bool,
}

impl Default for Include {
    fn default() -> Self {
        Include {
            startup: true,
            exec: false,
            probes: true,
            suspicious: false,
        }
    }
}

impl Include {
    /// Everything: noise of every kind and suspicious behaviour.
    pub const ALL: Include = Include {
        startup: true,
        exec: true,
        probes: true,
        suspicious: true,
    };

    /// Nothing but the application's own, unsuspicious behaviour.
    pub const NONE: Include = Include {
        startup: false,
        exec: false,
        probes: false,
        suspicious: false,
    };

    fn set(&mut self, text: &str, flag: &str, on: bool) -> Result<(), String> {
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "exec" => self.exec = on,
                "startup" | "start-up" => self.startup = on,
                "probes" | "probe" => self.probes = on,
                "suspicious" => self.suspicious = on,
                "all" => {
                    *self = if on { Include::ALL } else { Include::NONE };
                }
                "none" if on => *self = Include::NONE,
                other => {
                    return Err(format!(
                    "unknown {flag} value {other:?}: expected exec, startup, probes, suspicious{}",
                    if on { ", all or none" } else { " or all" }
                ))
                }
            }
        }
        Ok(())
    }

    /// Adds `exec,startup,probes,suspicious` (also `all`; `none` resets to nothing) to the
    /// defaults: the `--include` value.
    pub fn parse(text: &str) -> Result<Include, String> {
        let mut inc = Include::default();
        inc.set(text, "--include", true)?;
        Ok(inc)
    }

    /// Adds kinds (`--include`).
    pub fn include(&mut self, text: &str) -> Result<(), String> {
        self.set(text, "--include", true)
    }

    /// Removes kinds (`--exclude probes,startup`).
    pub fn exclude(&mut self, text: &str) -> Result<(), String> {
        self.set(text, "--exclude", false)
    }

    /// Whether evidence with `tag` goes into drafts.
    pub fn keeps(self, tag: Option<Noise>) -> bool {
        match tag {
            None => true,
            Some(Noise::Startup) => self.startup,
            Some(Noise::Exec) => self.exec,
            Some(Noise::Probe) => self.probes,
        }
    }
}

/// A tagged pid: rows of `(node, pid)` last seen at or after `since_ns` carry `tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoiseMark {
    /// Node.
    pub node: String,
    /// Host pid.
    pub pid: i32,
    /// The tag.
    pub tag: Noise,
    /// From when.
    pub since_ns: i64,
}

/// Whether an executable is a container runtime's (its children are the container's roots).
pub fn is_runtime(exe: &str) -> bool {
    let base = exe.rsplit('/').next().unwrap_or(exe);
    base.starts_with("containerd-shim")
        || matches!(
            base,
            "conmon" | "runc" | "crun" | "runsc" | "docker-containerd-shim" | "youki" | "kata-shim"
        )
}

/// Tags the process instances of every container workload and returns the marks for the
/// file, network and capability rows. `last_seen` is each `(node, pid)`'s last activity.
pub fn classify(
    workloads: &mut BTreeMap<WorkloadId, Evidence>,
    last_seen: &HashMap<(String, i32), i64>,
) -> Vec<NoiseMark> {
    let mut marks = Vec::new();
    for (id, ev) in workloads.iter_mut() {
        if id.is_host() {
            continue;
        }
        marks.extend(classify_workload(&mut ev.processes, last_seen));
    }
    marks
}

fn classify_workload(
    procs: &mut [ProcessInstance],
    last_seen: &HashMap<(String, i32), i64>,
) -> Vec<NoiseMark> {
    // Instances per container, in time order.
    let mut by_container: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, p) in procs.iter().enumerate() {
        if let Some(c) = &p.container {
            by_container.entry(c.clone()).or_default().push(i);
        }
    }
    let mut marks = Vec::new();
    for idx in by_container.values_mut() {
        idx.sort_by_key(|&i| (procs[i].first_ns, procs[i].pid));
        let is_root = |p: &ProcessInstance| p.parent.as_deref().is_some_and(is_runtime);
        let Some(&main_i) = idx.iter().find(|&&i| is_root(&procs[i])) else {
            continue;
        };
        let main_pid = procs[main_i].pid;
        let main_start = procs[main_i].first_ns;

        // Roots other than the main process: probes or exec sessions, by command line.
        let mut runs: HashMap<(Option<String>, Option<String>), Vec<i64>> = HashMap::new();
        for &i in idx.iter() {
            let p = &procs[i];
            if is_root(p) && (p.pid != main_pid || main_pid.is_none()) && i != main_i {
                runs.entry((p.process.clone(), p.args.clone()))
                    .or_default()
                    .push(p.first_ns);
            }
        }
        let probe_lines: std::collections::HashSet<(Option<String>, Option<String>)> = runs
            .into_iter()
            .filter(|(_, starts)| is_periodic(starts))
            .map(|(k, _)| k)
            .collect();

        // Walk in time order: roots get their tag, children inherit their parent's.
        let mut tagged: HashMap<(String, i32), (Noise, i64)> = HashMap::new();
        for &i in idx.iter() {
            let p = &procs[i];
            let own = if i == main_i || (main_pid.is_some() && p.pid == main_pid) {
                None
            } else if is_root(p) {
                let line = (p.process.clone(), p.args.clone());
                Some(if probe_lines.contains(&line) {
                    Noise::Probe
                } else {
                    Noise::Exec
                })
            } else {
                let parent = p.ppid.and_then(|pp| tagged.get(&(p.node.clone(), pp)));
                match parent {
                    Some((tag, since)) if p.first_ns >= *since => Some(*tag),
                    _ => {
                        let pid_tag = p.pid.and_then(|pid| tagged.get(&(p.node.clone(), pid)));
                        match pid_tag {
                            Some((tag, since)) if p.first_ns >= *since => Some(*tag),
                            _ => startup(p, main_start, last_seen),
                        }
                    }
                }
            };
            if let Some(tag) = own {
                procs[i].tag = Some(tag);
                if let Some(pid) = procs[i].pid {
                    let key = (procs[i].node.clone(), pid);
                    if !tagged.contains_key(&key) {
                        tagged.insert(key.clone(), (tag, procs[i].first_ns));
                        marks.push(NoiseMark {
                            node: key.0,
                            pid,
                            tag,
                            since_ns: procs[i].first_ns,
                        });
                    }
                }
            }
        }
    }
    marks
}

/// A short-lived helper of the entrypoint: started and last seen within the window.
fn startup(
    p: &ProcessInstance,
    main_start: i64,
    last_seen: &HashMap<(String, i32), i64>,
) -> Option<Noise> {
    let end = main_start.saturating_add(STARTUP_WINDOW_NS);
    let pid = p.pid?;
    let last = last_seen
        .get(&(p.node.clone(), pid))
        .copied()
        .unwrap_or(p.last_ns)
        .max(p.last_ns);
    (p.first_ns >= main_start && p.first_ns < end && last < end).then_some(Noise::Startup)
}

/// At least [`PROBE_MIN_RUNS`] starts whose intervals are within half of the median interval
/// of each other for 80 % of them.
fn is_periodic(starts: &[i64]) -> bool {
    if starts.len() < PROBE_MIN_RUNS {
        return false;
    }
    let mut s = starts.to_vec();
    s.sort_unstable();
    let mut gaps: Vec<i64> = s.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    if median <= 0 {
        return false;
    }
    let regular = gaps
        .iter()
        .filter(|g| (**g - median).abs() * 2 <= median)
        .count();
    regular * 5 >= gaps.len() * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn inst(pid: i32, ppid: i32, exe: &str, parent: &str, args: &str, t: i64) -> ProcessInstance {
        ProcessInstance {
            node: "n".into(),
            container: Some("c1".into()),
            pid: Some(pid),
            ppid: Some(ppid),
            process: Some(exe.into()),
            parent: Some(parent.into()),
            args: Some(args.into()),
            first_ns: t,
            last_ns: t,
            count: 1,
            tag: None,
        }
    }

    #[test]
    fn main_tree_probes_exec_sessions_and_startup_are_told_apart() {
        let shim = "/usr/bin/containerd-shim-runc-v2";
        let mut procs = vec![
            inst(10, 1, "/entry.sh", shim, "entry", 0),
            inst(11, 10, "/usr/bin/id", "/entry.sh", "id -u", S),
            inst(10, 1, "/usr/sbin/server", shim, "server", 2 * S),
            inst(12, 10, "/usr/bin/worker", "/usr/sbin/server", "w", 3 * S),
            inst(50, 1, "/bin/bash", shim, "bash", 100 * S),
            inst(51, 50, "/bin/ls", "/bin/bash", "ls", 101 * S),
        ];
        for k in 0..5 {
            procs.push(inst(
                60 + k,
                1,
                "/bin/check",
                shim,
                "check",
                (200 + 10 * k as i64) * S,
            ));
        }
        let mut last = HashMap::new();
        last.insert(("n".to_string(), 12), 5000 * S); // the worker lives on
        last.insert(("n".to_string(), 11), S);
        let marks = classify_workload(&mut procs, &last);
        let tag = |exe: &str| {
            procs
                .iter()
                .find(|p| p.process.as_deref() == Some(exe))
                .and_then(|p| p.tag)
        };
        assert_eq!(tag("/entry.sh"), None);
        assert_eq!(tag("/usr/sbin/server"), None);
        assert_eq!(tag("/usr/bin/worker"), None);
        assert_eq!(tag("/usr/bin/id"), Some(Noise::Startup));
        assert_eq!(tag("/bin/bash"), Some(Noise::Exec));
        assert_eq!(tag("/bin/ls"), Some(Noise::Exec));
        assert_eq!(tag("/bin/check"), Some(Noise::Probe));
        assert!(marks.iter().any(|m| m.pid == 51 && m.tag == Noise::Exec));
        assert!(!marks.iter().any(|m| m.pid == 10));
    }

    #[test]
    fn include_parses_and_keeps() {
        // Probes and start-up helpers are kept by default; exec sessions and suspicious
        // behaviour are not.
        let d = Include::default();
        assert!(d.probes && d.startup && !d.exec && !d.suspicious);
        let i = Include::parse("exec").unwrap();
        assert!(i.exec && i.probes && i.startup && !i.suspicious);
        let mut j = Include::default();
        j.exclude("probes, startup").unwrap();
        assert!(!j.probes && !j.startup && !j.exec);
        assert!(j.keeps(None) && !j.keeps(Some(Noise::Probe)) && !j.keeps(Some(Noise::Startup)));
        assert!(i.keeps(Some(Noise::Exec)) && !d.keeps(Some(Noise::Exec)));
        assert_eq!(Include::parse("all").unwrap(), Include::ALL);
        assert_eq!(Include::parse("none").unwrap(), Include::NONE);
        assert!(Include::parse("bogus").unwrap_err().contains("bogus"));
        assert!(j.exclude("none").unwrap_err().contains("--exclude"));
        assert!(is_runtime("/usr/bin/containerd-shim-runc-v2") && !is_runtime("/bin/sh"));
    }
}
