//! Decisions: which rules match a behaviour and what KubeArmor would do.
//!
//! Semantics carried over from KubeArmor (documentation and BPF-LSM enforcer):
//! - a rule's action is its own, else its section's, else `spec.action`, else `Block`;
//! - an `Allow` rule of a kind (process, file, network, capabilities) turns that kind into an
//!   allow-list for the selected workload: behaviour of that kind matched by no `Allow` rule
//!   falls to the default posture (`audit` or `block`; processes use the file posture).
//!   `Audit` rules never satisfy an allow-list (KubeArmor's enforcer does not see them);
//! - `ownerOnly`: only the owner of the file may use it; non-owners are denied whatever the
//!   action. Owners are not recorded, so the simulator assumes the process is *not* the owner
//!   (strict) and says so in the entry's note;
//! - `readOnly`: reads are allowed (whatever the action), writes are denied;
//! - across every matching rule, Block beats Audit, which beats Allow;
//! - `syscalls` rules only audit, whatever the action (KubeArmor's documentation: system call
//!   monitoring supports audit mode only): a recorded system call that a `matchSyscalls` rule
//!   (name, and `fromSource` path or directory) or a `matchPaths` rule (name and path) of an
//!   applicable policy matches is audited; any other is allowed (system calls have no posture);
//! - a file or exec whose path lookup failed (`No such file or directory`, `Not a directory`,
//!   …) is [`Decision::Unaffected`]: it fails before any enforcer hook runs, whatever the
//!   policies say (see [`lookup_failure`]).

use std::collections::HashMap;

use karmor_contract::Op;

use crate::policy::{Action, Policy, PolicyKind};

use super::matcher::{basename, dir_matches, path_matches, Glob};
use super::{Decision, Posture, Postures};

/// Accesses that change a file.
pub const WRITE_ACCESSES: &[&str] = &["write", "create", "delete", "rename", "chmod", "chown"];

/// The rule kinds the simulator replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// `spec.process`.
    Process,
    /// `spec.file`.
    File,
    /// `spec.network`.
    Network,
    /// `spec.capabilities`.
    Capability,
}

impl RuleKind {
    /// The rule kind that governs an operation (`None` for `syscall`).
    pub fn for_op(op: Op) -> Option<RuleKind> {
        match op {
            Op::Process => Some(RuleKind::Process),
            Op::File => Some(RuleKind::File),
            Op::Network => Some(RuleKind::Network),
            Op::Capability => Some(RuleKind::Capability),
            Op::Syscall => None,
        }
    }

    fn posture(self, p: &Postures) -> Posture {
        match self {
            RuleKind::Process | RuleKind::File => p.file,
            RuleKind::Network => p.network,
            RuleKind::Capability => p.capabilities,
        }
    }

    fn name(self) -> &'static str {
        match self {
            RuleKind::Process => "process",
            RuleKind::File => "file",
            RuleKind::Network => "network",
            RuleKind::Capability => "capabilities",
        }
    }
}

/// One behaviour as the decision needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// Operation.
    pub op: Op,
    /// Acting executable; for `process` rows, the executed path.
    pub process: Option<String>,
    /// Parent executable (the source of an exec).
    pub parent: Option<String>,
    /// File path.
    pub path: Option<String>,
    /// File access (`read`, `write`, …).
    pub access: Option<String>,
    /// Network protocol (`tcp`, `udp`, `icmp`, `raw`, `unix`).
    pub proto: Option<String>,
    /// Capability (`CAP_NET_RAW`).
    pub capability: Option<String>,
    /// System call (`SYS_OPENAT` or `openat`).
    pub syscall: Option<String>,
    /// Recorded outcome: `Passed` (or none) or the error as KubeArmor words it
    /// (`No such file or directory`, `Permission denied`, …).
    pub result: Option<String>,
}

impl Behaviour {
    fn is_write(&self) -> bool {
        self.access
            .as_deref()
            .is_some_and(|a| WRITE_ACCESSES.contains(&a))
    }

    /// The path a rule's target is compared with, and the executable `fromSource` is.
    fn target_and_source(&self, kind: RuleKind) -> (Option<&str>, Option<&str>) {
        match kind {
            RuleKind::Process => (self.process.as_deref(), self.parent.as_deref()),
            RuleKind::File => (self.path.as_deref(), self.process.as_deref()),
            RuleKind::Network => (self.proto.as_deref(), self.process.as_deref()),
            RuleKind::Capability => (self.capability.as_deref(), self.process.as_deref()),
        }
    }
}

#[derive(Debug, Clone)]
enum Target {
    Path(String),
    ExecName(String),
    Dir { dir: String, recursive: bool },
    Pattern(Glob),
    Protocol(String),
    Capability(String),
}

impl Target {
    fn matches(&self, value: &str) -> bool {
        match self {
            Target::Path(p) => path_matches(p, value),
            Target::ExecName(n) => basename(value) == n,
            Target::Dir { dir, recursive } => dir_matches(dir, *recursive, value),
            Target::Pattern(g) => g.matches(value),
            Target::Protocol(p) => protocol_matches(p, value),
            Target::Capability(c) => normalise_capability(value) == *c,
        }
    }
}

/// `net_raw`, `NET_RAW`, `CAP_NET_RAW` → `net_raw`.
fn normalise_capability(c: &str) -> String {
    let lower = c.trim().to_ascii_lowercase();
    lower.strip_prefix("cap_").unwrap_or(&lower).to_string()
}

/// A rule protocol against a recorded one. `unix` sockets count as stream sockets, which
/// KubeArmor's BPF-LSM enforcer classifies as TCP.
fn protocol_matches(rule: &str, proto: &str) -> bool {
    let proto = proto.to_ascii_lowercase();
    match rule {
        "all" => true,
        "tcp" | "stream" => proto == "tcp" || proto == "unix",
        "udp" | "dgram" => proto == "udp",
        "icmp" => proto == "icmp",
        "icmpv6" => proto == "icmpv6",
        "raw" => proto == "raw",
        other => other == proto,
    }
}

/// A rule of one policy, ready to match.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its kind.
    pub kind: RuleKind,
    target: Target,
    from_source: Vec<String>,
    read_only: bool,
    owner_only: bool,
    /// Effective action.
    pub action: Action,
    /// Where it is: `file.matchDirectories[0] dir=/usr/bin/ recursive`.
    pub label: String,
    /// Something the simulator cannot replay exactly about this rule.
    pub caveat: Option<String>,
}

/// A policy with its rules compiled.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    /// Display name: `namespace/name` for `KubeArmorPolicy`, else `name`.
    pub name: String,
    /// The policy.
    pub policy: Policy,
    /// Its rules.
    pub rules: Vec<Rule>,
    /// Its `syscalls` rules (audit only).
    pub syscall_rules: Vec<SyscallMatch>,
    index: RuleIndex,
}

/// A `fromSource` entry of a system-call rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SyscallFrom {
    Path(String),
    Dir { dir: String, recursive: bool },
}

/// A compiled `syscalls.matchSyscalls[]` or `syscalls.matchPaths[]` rule.
#[derive(Debug, Clone)]
pub struct SyscallMatch {
    /// Names, lower case without `SYS_`.
    names: Vec<String>,
    /// Callers (empty: any).
    from: Vec<SyscallFrom>,
    /// With `matchPaths`: the path (a directory when it ends in `/`) and `recursive`.
    path: Option<(String, bool)>,
    /// Where it is: `syscalls.matchSyscalls[0]`.
    pub label: String,
}

impl SyscallMatch {
    fn matches(&self, name: &str, b: &Behaviour) -> bool {
        if !self.names.iter().any(|n| n == name) {
            return false;
        }
        if let Some((p, recursive)) = &self.path {
            let Some(path) = b.path.as_deref() else {
                return false;
            };
            let hit = if p.ends_with('/') {
                dir_matches(p, *recursive, path)
            } else {
                path_matches(p, path)
            };
            if !hit {
                return false;
            }
        }
        self.from.is_empty()
            || b.process.as_deref().is_some_and(|exe| {
                self.from.iter().any(|f| match f {
                    SyscallFrom::Path(p) => p == exe,
                    SyscallFrom::Dir { dir, recursive } => dir_matches(dir, *recursive, exe),
                })
            })
    }
}

fn syscall_from(list: &[crate::policy::SyscallSource]) -> Vec<SyscallFrom> {
    list.iter()
        .filter_map(|s| match (&s.path, &s.dir) {
            (Some(p), _) => Some(SyscallFrom::Path(p.clone())),
            (None, Some(d)) => Some(SyscallFrom::Dir {
                dir: d.clone(),
                recursive: s.recursive,
            }),
            (None, None) => None,
        })
        .collect()
}

fn syscall_names(list: &[String]) -> Vec<String> {
    list.iter()
        .filter_map(|n| crate::recommend::seccomp::normalise_syscall(n))
        .collect()
}

/// The `syscalls` rules of a policy.
fn compile_syscalls(policy: &Policy) -> Vec<SyscallMatch> {
    let Some(sc) = &policy.spec.syscalls else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, r) in sc.match_syscalls.iter().enumerate() {
        out.push(SyscallMatch {
            names: syscall_names(&r.syscalls),
            from: syscall_from(&r.from_source),
            path: None,
            label: format!("syscalls.matchSyscalls[{i}]"),
        });
    }
    for (i, r) in sc.match_paths.iter().enumerate() {
        let Some(path) = &r.path else { continue };
        out.push(SyscallMatch {
            names: syscall_names(&r.syscalls),
            from: syscall_from(&r.from_source),
            path: Some((path.clone(), r.recursive)),
            label: format!("syscalls.matchPaths[{i}] path={path}"),
        });
    }
    out
}

/// Decides a system call: audited by the first applicable policy's rule that matches it,
/// else allowed (KubeArmor neither denies system calls nor has a posture for them).
fn decide_syscall(policies: &[&CompiledPolicy], b: &Behaviour) -> Verdict {
    let name = b
        .syscall
        .as_deref()
        .and_then(crate::recommend::seccomp::normalise_syscall);
    if let Some(name) = name {
        for p in policies {
            if let Some(r) = p.syscall_rules.iter().find(|r| r.matches(&name, b)) {
                return Verdict {
                    decision: Decision::Audited,
                    policy: Some(p.name.clone()),
                    rule: Some(format!("{} syscall={name}", r.label)),
                    note: Some(
                        "KubeArmor only audits system calls, whatever the policy's action".into(),
                    ),
                };
            }
        }
    }
    Verdict {
        decision: Decision::Allowed,
        policy: None,
        rule: None,
        note: None,
    }
}

/// Where to look for the rules that may match a target, so that a behaviour is compared with
/// a handful of rules rather than all of them.
#[derive(Debug, Clone, Default)]
struct RuleIndex {
    /// Exact paths, by kind and path.
    paths: HashMap<RuleKind, HashMap<String, Vec<usize>>>,
    /// `execname` rules, by base name.
    execnames: HashMap<String, Vec<usize>>,
    /// Directory rules, by kind and directory without its trailing slash.
    dirs: HashMap<RuleKind, HashMap<String, Vec<usize>>>,
    /// Everything else (patterns, protocols, capabilities), by kind.
    scan: HashMap<RuleKind, Vec<usize>>,
    /// Kinds with at least one `Allow` rule (allow-list mode).
    allow_kinds: Vec<RuleKind>,
}

impl RuleIndex {
    fn build(rules: &[Rule]) -> RuleIndex {
        let mut ix = RuleIndex::default();
        for (i, r) in rules.iter().enumerate() {
            if r.action == Action::Allow && !ix.allow_kinds.contains(&r.kind) {
                ix.allow_kinds.push(r.kind);
            }
            match &r.target {
                Target::Path(p) => ix
                    .paths
                    .entry(r.kind)
                    .or_default()
                    .entry(p.clone())
                    .or_default()
                    .push(i),
                Target::ExecName(n) => ix.execnames.entry(n.clone()).or_default().push(i),
                Target::Dir { dir, .. } => ix
                    .dirs
                    .entry(r.kind)
                    .or_default()
                    .entry(dir.trim_end_matches('/').to_string())
                    .or_default()
                    .push(i),
                _ => ix.scan.entry(r.kind).or_default().push(i),
            }
        }
        ix
    }

    /// Indices (ascending) of the rules of `kind` that may match `target`, into `out`.
    fn candidates(&self, kind: RuleKind, target: &str, out: &mut Vec<usize>) {
        out.clear();
        if let Some(v) = self.paths.get(&kind).and_then(|m| m.get(target)) {
            out.extend(v);
        }
        if kind == RuleKind::Process {
            if let Some(v) = self.execnames.get(basename(target)) {
                out.extend(v);
            }
        }
        if let Some(dirs) = self.dirs.get(&kind) {
            // The path itself (a directory rule covers its directory) and every ancestor.
            let mut cur = target.trim_end_matches('/');
            loop {
                if let Some(v) = dirs.get(cur) {
                    out.extend(v);
                }
                match cur.rfind('/') {
                    Some(pos) => cur = &cur[..pos],
                    None => break,
                }
            }
        }
        if let Some(v) = self.scan.get(&kind) {
            out.extend(v);
        }
        out.sort_unstable();
        out.dedup();
    }
}

/// Display name of a policy (`default_namespace` for a namespaced one without namespace).
pub fn policy_name(p: &Policy, default_namespace: &str) -> String {
    if p.kind == PolicyKind::KubeArmorPolicy {
        format!(
            "{}/{}",
            p.metadata.namespace.as_deref().unwrap_or(default_namespace),
            p.metadata.name
        )
    } else {
        p.metadata.name.clone()
    }
}

fn sources(list: &[crate::policy::Source]) -> Vec<String> {
    list.iter().filter_map(|s| s.path.clone()).collect()
}

fn describe(kind: &str, field: &str, i: usize, what: String, flags: &[(&str, bool)]) -> String {
    let mut s = format!("{kind}.{field}[{i}] {what}");
    for (name, on) in flags {
        if *on {
            s.push(' ');
            s.push_str(name);
        }
    }
    s
}

/// Compiles the rules of a policy.
pub fn compile(policy: &Policy, default_namespace: &str) -> CompiledPolicy {
    let mut rules = Vec::new();
    let spec = &policy.spec;
    let act = |rule: Option<Action>, section: Option<Action>| {
        policy
            .effective_action(rule, section)
            .unwrap_or(Action::Block)
    };
    if let Some(p) = &spec.process {
        for (i, r) in p.match_paths.iter().enumerate() {
            let (target, what) = match (&r.path, &r.execname) {
                (Some(path), _) => (Target::Path(path.clone()), format!("path={path}")),
                (None, Some(name)) => (Target::ExecName(name.clone()), format!("execname={name}")),
                (None, None) => continue,
            };
            let caveat = (!r.allowed_args.is_empty())
                .then(|| "allowedArgs not simulated: matched on the path only".to_string());
            rules.push(Rule {
                kind: RuleKind::Process,
                target,
                from_source: sources(&r.from_source),
                read_only: false,
                owner_only: r.owner_only,
                action: act(r.action, p.action),
                label: describe(
                    "process",
                    "matchPaths",
                    i,
                    what,
                    &[("ownerOnly", r.owner_only)],
                ),
                caveat,
            });
        }
        for (i, r) in p.match_directories.iter().enumerate() {
            rules.push(Rule {
                kind: RuleKind::Process,
                target: Target::Dir {
                    dir: r.dir.clone(),
                    recursive: r.recursive,
                },
                from_source: sources(&r.from_source),
                read_only: false,
                owner_only: r.owner_only,
                action: act(r.action, p.action),
                label: describe(
                    "process",
                    "matchDirectories",
                    i,
                    format!("dir={}", r.dir),
                    &[("recursive", r.recursive), ("ownerOnly", r.owner_only)],
                ),
                caveat: None,
            });
        }
        for (i, r) in p.match_patterns.iter().enumerate() {
            rules.push(Rule {
                kind: RuleKind::Process,
                target: Target::Pattern(Glob::new(&r.pattern)),
                from_source: Vec::new(),
                read_only: false,
                owner_only: r.owner_only,
                action: act(r.action, p.action),
                label: describe(
                    "process",
                    "matchPatterns",
                    i,
                    format!("pattern={}", r.pattern),
                    &[("ownerOnly", r.owner_only)],
                ),
                caveat: None,
            });
        }
    }
    if let Some(f) = &spec.file {
        for (i, r) in f.match_paths.iter().enumerate() {
            rules.push(Rule {
                kind: RuleKind::File,
                target: Target::Path(r.path.clone()),
                from_source: sources(&r.from_source),
                read_only: r.read_only,
                owner_only: r.owner_only,
                action: act(r.action, f.action),
                label: describe(
                    "file",
                    "matchPaths",
                    i,
                    format!("path={}", r.path),
                    &[("readOnly", r.read_only), ("ownerOnly", r.owner_only)],
                ),
                caveat: None,
            });
        }
        for (i, r) in f.match_directories.iter().enumerate() {
            rules.push(Rule {
                kind: RuleKind::File,
                target: Target::Dir {
                    dir: r.dir.clone(),
                    recursive: r.recursive,
                },
                from_source: sources(&r.from_source),
                read_only: r.read_only,
                owner_only: r.owner_only,
                action: act(r.action, f.action),
                label: describe(
                    "file",
                    "matchDirectories",
                    i,
                    format!("dir={}", r.dir),
                    &[
                        ("recursive", r.recursive),
                        ("readOnly", r.read_only),
                        ("ownerOnly", r.owner_only),
                    ],
                ),
                caveat: None,
            });
        }
        for (i, r) in f.match_patterns.iter().enumerate() {
            rules.push(Rule {
                kind: RuleKind::File,
                target: Target::Pattern(Glob::new(&r.pattern)),
                from_source: Vec::new(),
                read_only: r.read_only,
                owner_only: r.owner_only,
                action: act(r.action, f.action),
                label: describe(
                    "file",
                    "matchPatterns",
                    i,
                    format!("pattern={}", r.pattern),
                    &[("readOnly", r.read_only), ("ownerOnly", r.owner_only)],
                ),
                caveat: None,
            });
        }
    }
    if let Some(n) = &spec.network {
        for (i, r) in n.match_protocols.iter().enumerate() {
            let proto = r.protocol.to_ascii_lowercase();
            rules.push(Rule {
                kind: RuleKind::Network,
                target: Target::Protocol(proto.clone()),
                from_source: sources(&r.from_source),
                read_only: false,
                owner_only: false,
                action: act(r.action, n.action),
                label: describe(
                    "network",
                    "matchProtocols",
                    i,
                    format!("protocol={proto}"),
                    &[],
                ),
                caveat: None,
            });
        }
    }
    if let Some(c) = &spec.capabilities {
        for (i, r) in c.match_capabilities.iter().enumerate() {
            let cap = normalise_capability(&r.capability);
            rules.push(Rule {
                kind: RuleKind::Capability,
                target: Target::Capability(cap.clone()),
                from_source: sources(&r.from_source),
                read_only: false,
                owner_only: false,
                action: act(r.action, c.action),
                label: describe(
                    "capabilities",
                    "matchCapabilities",
                    i,
                    format!("capability={cap}"),
                    &[],
                ),
                caveat: None,
            });
        }
    }
    CompiledPolicy {
        name: policy_name(policy, default_namespace),
        policy: policy.clone(),
        index: RuleIndex::build(&rules),
        rules,
        syscall_rules: compile_syscalls(policy),
    }
}

impl Rule {
    /// Whether the rule's target and `fromSource` match the behaviour.
    pub fn matches(&self, b: &Behaviour) -> bool {
        let (target, source) = b.target_and_source(self.kind);
        let Some(target) = target else {
            return false;
        };
        if !self.target.matches(target) {
            return false;
        }
        self.from_source.is_empty()
            || source.is_some_and(|s| self.from_source.iter().any(|f| f == s))
    }
}

/// Errors of a path lookup that fails before any LSM hook, as KubeArmor's system monitor words
/// them (`monitor/syscallParser.go`, `errMsg`), as our collector writes them (`errno N` for
/// the ones it has no words for) and as symbolic names.
const LOOKUP_ERRORS: &[(&str, &[&str])] = &[
    (
        "No such file or directory",
        &["no such file or directory", "enoent", "errno 2", "-2"],
    ),
    (
        "Not a directory",
        &["not a directory", "enotdir", "errno 20", "-20"],
    ),
    (
        "Too many levels of symbolic links",
        &[
            "too many levels of symbolic links",
            "eloop",
            "errno 40",
            "-40",
        ],
    ),
    (
        "File name too long",
        &["file name too long", "enametoolong", "errno 36", "-36"],
    ),
];

/// The lookup error of a file or exec behaviour that no policy can change, if it is one.
///
/// Both KubeArmor enforcers decide on a resolved object, so a path that does not resolve
/// fails with the same error whatever the policies say:
///
/// - **BPF-LSM** (`KubeArmor/BPF/enforcer.bpf.c`): files are checked in `lsm/file_open`
///   (`enforce_file`, given the opened `struct file`) and `lsm/file_permission`; executions in
///   `lsm/bprm_check_security` (`enforce_proc`, given the `linux_binprm` of an opened binary);
///   creations, removals, renames and chmod in the `lsm/path_*` hooks of
///   `KubeArmor/BPF/enforcer_path.bpf.c` (`path_mknod`, `path_unlink`, `path_rename`,
///   `path_chmod`, …), which receive the parent directory and the dentry, i.e. after the
///   parent resolved. In the kernel, `security_file_open` runs in `do_dentry_open`, after
///   `path_openat` walked the path (`link_path_walk`, `open_last_lookups`, `do_open`);
///   `security_bprm_check` runs after `do_open_execat` opened the binary;
///   `security_path_mknod` runs in `may_o_create`, called from `lookup_open` only once the
///   parent directory resolved and the last component is missing.
/// - **AppArmor** (`KubeArmor/enforcer/appArmorProfile.go`, `SetFileMatchPaths`,
///   `SetProcessMatchPaths`, … write path rules into the profile): AppArmor mediates the same
///   LSM hooks (`apparmor_file_open`, `apparmor_bprm_creds_for_exec`, `apparmor_path_mknod`,
///   … in the kernel's `security/apparmor/lsm.c`), so it never sees a path that did not
///   resolve either.
/// - KubeArmor's own alert matcher agrees: `UpdateMatchedPolicy`
///   (`KubeArmor/feeder/policyMatcher.go`) matches policies and the default posture only to
///   results `Passed`, `Operation not permitted` and `Permission denied`, and the system
///   monitor drops `-ENOENT` returns of the syscalls it traces (`KubeArmor/BPF/system_monitor.c`).
///
/// Creation: `O_CREAT` on a missing file in an existing directory *is* mediated (as a create,
/// at `path_mknod`); it is recorded as `create` with `Passed`, or with `Permission denied`
/// when refused, and both are decided by policy. An `O_CREAT` open that fails with `ENOENT`
/// failed on the way to the parent directory (the parent is missing), before that hook, and is
/// unaffected like any other lookup failure. `Permission denied` and `Operation not permitted`
/// are never lookup failures: the path resolved, and policy decides as usual.
///
/// One exception is not visible in the data: an exec of a script whose `#!` interpreter is
/// missing fails with `ENOENT` *after* `bprm_check_security` ran for the script. Recorded
/// exec failures are overwhelmingly `PATH` searches (`execvp` trying each directory), so they
/// are treated as missing binaries.
pub fn lookup_failure(b: &Behaviour) -> Option<&'static str> {
    if !matches!(b.op, Op::File | Op::Process) {
        // A socket's hooks (`socket_create`, `socket_connect`) run before the address is used:
        // a connect to a missing unix socket path is mediated first.
        return None;
    }
    let result = b.result.as_deref()?.trim().to_ascii_lowercase();
    LOOKUP_ERRORS
        .iter()
        .find(|(_, spellings)| spellings.contains(&result.as_str()))
        .map(|(name, _)| *name)
}

/// The outcome of one behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Allowed, audited, blocked, or unaffected (failed before any policy could act).
    pub decision: Decision,
    /// The policy that decided (`DefaultPosture` for the posture), if any.
    pub policy: Option<String>,
    /// The rule that decided, if any.
    pub rule: Option<String>,
    /// What the simulator had to assume.
    pub note: Option<String>,
}

/// The name KubeArmor gives the default posture in alerts.
pub const DEFAULT_POSTURE: &str = "DefaultPosture";

/// Decides a behaviour under the policies that apply to it and the namespace's postures.
pub fn decide(policies: &[&CompiledPolicy], b: &Behaviour, postures: &Postures) -> Verdict {
    let allowed = Verdict {
        decision: Decision::Allowed,
        policy: None,
        rule: None,
        note: None,
    };
    if b.op == Op::Syscall {
        return decide_syscall(policies, b);
    }
    let Some(kind) = RuleKind::for_op(b.op) else {
        return allowed;
    };
    if let Some(error) = lookup_failure(b) {
        return Verdict {
            decision: Decision::Unaffected,
            policy: None,
            rule: Some(format!(
                "{error}: the path did not resolve, which fails before any KubeArmor hook; \
                 no policy changes it"
            )),
            note: None,
        };
    }
    let mut best: Option<Verdict> = None;
    let mut allow_list_policies: Vec<&str> = Vec::new();
    let mut satisfied = false;
    let target = b.target_and_source(kind).0;
    let mut found = Vec::new();
    for p in policies {
        if p.index.allow_kinds.contains(&kind) && !allow_list_policies.contains(&p.name.as_str()) {
            allow_list_policies.push(&p.name);
        }
        let Some(target) = target else {
            continue;
        };
        p.index.candidates(kind, target, &mut found);
        for r in found.iter().map(|i| &p.rules[*i]) {
            if !r.matches(b) {
                continue;
            }
            let deny = if r.action == Action::Audit {
                Decision::Audited
            } else {
                Decision::Blocked
            };
            let (decision, note, satisfies) = if r.owner_only {
                (
                    deny,
                    Some(
                        "ownerOnly: file owners are not recorded; assumed the process is not the owner"
                            .to_string(),
                    ),
                    false,
                )
            } else if r.read_only && kind == RuleKind::File {
                if b.is_write() {
                    (deny, Some("readOnly: write denied".to_string()), false)
                } else {
                    (Decision::Allowed, None, true)
                }
            } else {
                match r.action {
                    Action::Allow => (Decision::Allowed, None, true),
                    Action::Audit => (Decision::Audited, None, false),
                    Action::Block => (Decision::Blocked, None, false),
                }
            };
            satisfied |= satisfies;
            let note = match (note, &r.caveat) {
                (Some(n), Some(c)) => Some(format!("{n}; {c}")),
                (n, c) => n.or_else(|| c.clone()),
            };
            let v = Verdict {
                decision,
                policy: Some(p.name.clone()),
                rule: Some(format!("{} action={}", r.label, r.action)),
                note,
            };
            if best.as_ref().is_none_or(|cur| v.decision > cur.decision) {
                best = Some(v);
            }
        }
    }
    if !allow_list_policies.is_empty() && !satisfied {
        let decision = match kind.posture(postures) {
            Posture::Audit => Decision::Audited,
            Posture::Block => Decision::Blocked,
        };
        let v = Verdict {
            decision,
            policy: Some(DEFAULT_POSTURE.to_string()),
            rule: Some(format!(
                "not in the {} allow-list of {} (default posture {})",
                kind.name(),
                allow_list_policies.join(", "),
                kind.posture(postures).as_str()
            )),
            note: None,
        };
        if best.as_ref().is_none_or(|cur| v.decision > cur.decision) {
            best = Some(v);
        }
    }
    best.unwrap_or(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{FileDirectoryRule, FilePathRule, FilePatternRule, FileRules};

    fn file_policy(paths: &[String], dirs: &[(String, bool)], patterns: &[String]) -> Policy {
        let mut p = Policy::new(PolicyKind::KubeArmorClusterPolicy, "p");
        p.spec.file = Some(FileRules {
            match_paths: paths
                .iter()
                .map(|path| FilePathRule {
                    path: path.clone(),
                    ..FilePathRule::default()
                })
                .collect(),
            match_directories: dirs
                .iter()
                .map(|(dir, recursive)| FileDirectoryRule {
                    dir: dir.clone(),
                    recursive: *recursive,
                    ..FileDirectoryRule::default()
                })
                .collect(),
            match_patterns: patterns
                .iter()
                .map(|pattern| FilePatternRule {
                    pattern: pattern.clone(),
                    ..FilePatternRule::default()
                })
                .collect(),
            ..FileRules::default()
        });
        p
    }

    fn recorded(op: Op, access: Option<&str>, result: Option<&str>) -> Behaviour {
        Behaviour {
            op,
            process: Some("/bin/sh".into()),
            path: Some("/x".into()),
            access: access.map(str::to_string),
            proto: (op == Op::Network).then(|| "unix".to_string()),
            result: result.map(str::to_string),
            ..Behaviour::default()
        }
    }

    /// The spellings of a lookup failure in our data: KubeArmor's `errMsg` words, our
    /// collector's `errno N` fallback, symbolic names; only for files and execs.
    #[test]
    fn lookup_failures_are_recognised_in_every_spelling_for_files_and_execs_only() {
        for r in [
            "No such file or directory",
            "no such file or directory ",
            "errno 2",
            "ENOENT",
        ] {
            assert_eq!(
                lookup_failure(&recorded(Op::File, Some("read"), Some(r))),
                Some("No such file or directory"),
                "{r}"
            );
        }
        for r in ["Not a directory", "errno 20"] {
            assert_eq!(
                lookup_failure(&recorded(Op::Process, None, Some(r))),
                Some("Not a directory")
            );
        }
        for r in [
            "Passed",
            "Permission denied",
            "Operation not permitted",
            "errno 22",
        ] {
            assert_eq!(
                lookup_failure(&recorded(Op::File, Some("create"), Some(r))),
                None,
                "{r}"
            );
        }
        assert_eq!(
            lookup_failure(&recorded(Op::File, Some("read"), None)),
            None
        );
        let sock = recorded(Op::Network, None, Some("No such file or directory"));
        assert_eq!(lookup_failure(&sock), None);
        // And the decision says so whatever the policies (none here).
        let v = decide(
            &[],
            &recorded(Op::File, Some("write"), Some("errno 2")),
            &Postures::all(Posture::Block),
        );
        assert_eq!(v.decision, Decision::Unaffected);
    }

    proptest::proptest! {
        /// The index never hides a rule that matches: its candidates include every rule a full
        /// scan finds.
        #[test]
        fn the_index_finds_every_matching_rule(
            paths in proptest::collection::vec("(/[ab]{1,2}){1,3}", 0..4),
            dirs in proptest::collection::vec(("(/[ab]{1,2}){0,2}/", proptest::bool::ANY), 0..4),
            patterns in proptest::collection::vec("/[ab*?/]{0,6}", 0..3),
            target in "(/[ab]{1,2}){1,4}/?",
        ) {
            let c = compile(&file_policy(&paths, &dirs, &patterns), "default");
            let b = Behaviour {
                op: Op::File,
                process: Some("/bin/x".into()),
                path: Some(target.clone()),
                access: Some("read".into()),
                ..Behaviour::default()
            };
            let mut found = Vec::new();
            c.index.candidates(RuleKind::File, &target, &mut found);
            for (i, r) in c.rules.iter().enumerate() {
                if r.matches(&b) {
                    proptest::prop_assert!(found.contains(&i), "rule {} ({}) missed for {}", i, r.label, target);
                }
            }
        }
    }
}
