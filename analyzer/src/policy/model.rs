//! Serde types for KubeArmor's three policy kinds, field for field as the CRDs in
//! `../shared/kubearmor/crds/` define them (`security.kubearmor.com/v1`).
//!
//! One [`Policy`] type carries all three kinds: [`PolicyKind`] says which, and [`PolicySpec`]
//! is the union of the three specs. Each field's documentation says which kinds accept it; a
//! field the kind does not have is pruned by the API server, and
//! [`crate::policy::validate_value`] warns about it.
//!
//! Serialisation is minimal: empty lists and maps, `false` flags and unset options are left
//! out, so `to_yaml` of a parsed policy reads like a hand-written one and parses back to the
//! same value (empty and absent mean the same to KubeArmor, which uses Go's `omitempty`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The API group and version of every KubeArmor policy.
pub const API_VERSION: &str = "security.kubearmor.com/v1";

/// The API group of KubeArmor's resources.
pub const API_GROUP: &str = "security.kubearmor.com";

fn is_false(b: &bool) -> bool {
    !*b
}

/// Which of the three policy resources a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PolicyKind {
    /// `KubeArmorPolicy` (`ksp`): namespaced, selects pods by labels.
    KubeArmorPolicy,
    /// `KubeArmorHostPolicy` (`hsp`): cluster-scoped, selects nodes by labels.
    KubeArmorHostPolicy,
    /// `KubeArmorClusterPolicy` (`csp`): cluster-scoped, selects pods by namespace and labels.
    KubeArmorClusterPolicy,
}

impl PolicyKind {
    /// All three kinds.
    pub const ALL: [PolicyKind; 3] = [
        PolicyKind::KubeArmorPolicy,
        PolicyKind::KubeArmorHostPolicy,
        PolicyKind::KubeArmorClusterPolicy,
    ];

    /// The `kind` string.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::KubeArmorPolicy => "KubeArmorPolicy",
            PolicyKind::KubeArmorHostPolicy => "KubeArmorHostPolicy",
            PolicyKind::KubeArmorClusterPolicy => "KubeArmorClusterPolicy",
        }
    }

    /// The kind for a `kind` string (exact, case-sensitive, as the API server matches it).
    pub fn from_kind(kind: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// kubectl's short name: `ksp`, `hsp` or `csp`.
    pub fn short_name(self) -> &'static str {
        match self {
            PolicyKind::KubeArmorPolicy => "ksp",
            PolicyKind::KubeArmorHostPolicy => "hsp",
            PolicyKind::KubeArmorClusterPolicy => "csp",
        }
    }

    /// Whether objects of this kind live in a namespace (only `KubeArmorPolicy`).
    pub fn is_namespaced(self) -> bool {
        self == PolicyKind::KubeArmorPolicy
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A KubeArmor policy document of any of the three kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Which resource this is.
    pub kind: PolicyKind,
    /// Name, namespace, labels, annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the policy selects and what it allows, audits or blocks.
    #[serde(default)]
    pub spec: PolicySpec,
    /// Written by KubeArmor; ignored when a policy is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PolicyStatus>,
}

impl Policy {
    /// An empty policy of `kind` named `name` (add a namespace for a `KubeArmorPolicy`).
    pub fn new(kind: PolicyKind, name: impl Into<String>) -> Policy {
        Policy {
            api_version: API_VERSION.to_string(),
            kind,
            metadata: ObjectMeta {
                name: name.into(),
                ..ObjectMeta::default()
            },
            spec: PolicySpec::default(),
            status: None,
        }
    }

    /// The policy as one YAML document (no leading `---`).
    pub fn to_yaml(&self) -> Result<String, serde_yaml::Error> {
        serde_yaml::to_string(self)
    }

    /// The effective action of a rule, by KubeArmor's precedence: the rule's own action, else
    /// its section's (`spec.process.action`, …), else the policy's `spec.action`.
    pub fn effective_action(
        &self,
        rule: Option<Action>,
        section: Option<Action>,
    ) -> Option<Action> {
        rule.or(section).or(self.spec.action)
    }
}

/// The parts of Kubernetes' `ObjectMeta` a policy file carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The object's name: a lowercase RFC 1123 subdomain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Prefix for a server-generated name (`kubectl create` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
    /// The namespace (`KubeArmorPolicy` only; the other kinds are cluster-scoped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels of the policy object itself (not the selector).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations of the policy object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Other `ObjectMeta` fields (`uid`, `resourceVersion`, …) as found, kept for round trips.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

/// `status` as KubeArmor writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyStatus {
    /// `Active` or `Inactive`, or an error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// What KubeArmor does when a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    /// Allow-list: only what the rules name is allowed; the rest of the operation type falls to
    /// the default posture (audit or block).
    Allow,
    /// Allow and raise an alert.
    Audit,
    /// Deny and raise an alert.
    Block,
}

impl Action {
    /// `Allow`, `Audit` or `Block`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "Allow",
            Action::Audit => "Audit",
            Action::Block => "Block",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `spec`: the union of the three kinds' specs. Fields name the kinds that accept them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// Pods the policy applies to (`KubeArmorPolicy`, `KubeArmorClusterPolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<Selector>,
    /// Nodes the policy applies to (`KubeArmorHostPolicy`, where it is required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<NodeSelector>,
    /// Process execution rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessRules>,
    /// File access rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileRules>,
    /// Network rules (protocols, DNS queries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkRules>,
    /// Linux capability rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<CapabilityRules>,
    /// System call monitoring rules (audit only: they have no action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<SyscallRules>,
    /// USB device rules (`KubeArmorHostPolicy` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceRules>,
    /// Built-in rule sets such as `filelessExec` (`KubeArmorPolicy` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub presets: Vec<Preset>,
    /// A raw AppArmor profile fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apparmor: Option<String>,
    /// Default severity of the rules, 1 to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Default tags of the rules (MITRE, NIST, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Default alert message of the rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Default action of the rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

impl PolicySpec {
    /// Whether the spec has any rule, preset or AppArmor fragment (selectors and defaults do
    /// not count).
    pub fn has_rules(&self) -> bool {
        self.process.as_ref().is_some_and(|p| {
            !(p.match_paths.is_empty()
                && p.match_directories.is_empty()
                && p.match_patterns.is_empty())
        }) || self.file.as_ref().is_some_and(|f| {
            !(f.match_paths.is_empty()
                && f.match_directories.is_empty()
                && f.match_patterns.is_empty())
        }) || self
            .network
            .as_ref()
            .is_some_and(|n| !(n.match_protocols.is_empty() && n.match_dns_queries.is_empty()))
            || self
                .capabilities
                .as_ref()
                .is_some_and(|c| !c.match_capabilities.is_empty())
            || self
                .syscalls
                .as_ref()
                .is_some_and(|s| !(s.match_syscalls.is_empty() && s.match_paths.is_empty()))
            || self
                .device
                .as_ref()
                .is_some_and(|d| !d.match_device.is_empty())
            || !self.presets.is_empty()
            || self.apparmor.as_ref().is_some_and(|a| !a.trim().is_empty())
    }
}

/// Pod selector of `KubeArmorPolicy` (labels) and `KubeArmorClusterPolicy` (expressions).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// Pods carrying all these labels (`KubeArmorPolicy` only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Conditions on the pod's labels or namespace, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<MatchExpression>,
}

/// One condition of a selector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchExpression {
    /// What is compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<ExpressionKey>,
    /// `In` or `NotIn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<ExpressionOperator>,
    /// Namespaces, or `key=value` labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// The key of a [`MatchExpression`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpressionKey {
    /// The pod's labels; values are `key=value` (both kinds).
    Label,
    /// The pod's namespace (`KubeArmorClusterPolicy` only).
    Namespace,
}

/// The operator of a [`MatchExpression`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpressionOperator {
    /// The key's value is one of the values.
    In,
    /// The key's value is none of the values.
    NotIn,
}

/// Node selector of `KubeArmorHostPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelector {
    /// Nodes carrying all these labels, e.g. `kubernetes.io/hostname: node-1`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

/// A `fromSource` entry of process, file, network and capability rules: the rule applies only
/// to this executable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Source {
    /// Absolute path of the source executable (not ending in `/`, at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Source {
    /// A source executable.
    pub fn path(path: impl Into<String>) -> Source {
        Source {
            path: Some(path.into()),
        }
    }
}

/// A `fromSource` entry of syscall rules: an executable, or a directory of executables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SyscallSource {
    /// Absolute path of the source executable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A directory of source executables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// With `dir`: also its subdirectories.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recursive: bool,
}

/// `spec.process`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessRules {
    /// Executables by path (or by name with `execname`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_paths: Vec<ProcessPathRule>,
    /// Executables under a directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_directories: Vec<ProcessDirectoryRule>,
    /// Executables by glob pattern.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_patterns: Vec<ProcessPatternRule>,
    /// Default severity of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Default tags of this section's rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Default message of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Default action of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.process.matchPaths[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessPathRule {
    /// Absolute path of the executable (not ending in `/`, at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The executable's file name, without a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execname: Option<String>,
    /// Only these arguments (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_args: Vec<String>,
    /// Only when run by the owner of the executable.
    #[serde(default, skip_serializing_if = "is_false")]
    pub owner_only: bool,
    /// Only when run from a terminal (pts).
    #[serde(default, skip_serializing_if = "is_false")]
    pub pts: bool,
    /// Only when started by these executables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_source: Vec<Source>,
    /// Severity, 1 to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Alert message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Action, overriding the section's and the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.process.matchDirectories[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessDirectoryRule {
    /// Absolute directory path ending in `/`.
    pub dir: String,
    /// Also executables in subdirectories.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recursive: bool,
    /// Only when run by the owner of the executable.
    #[serde(default, skip_serializing_if = "is_false")]
    pub owner_only: bool,
    /// Only when run from a terminal (pts).
    #[serde(default, skip_serializing_if = "is_false")]
    pub pts: bool,
    /// Only when started by these executables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_source: Vec<Source>,
    /// Severity, 1 to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Alert message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Action, overriding the section's and the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.process.matchPatterns[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessPatternRule {
    /// Glob pattern of executable paths, e.g. `/usr/*/python*`.
    pub pattern: String,
    /// Only when run by the owner of the executable.
    #[serde(default, skip_serializing_if = "is_false")]
    pub owner_only: bool,
    /// Severity, 1 to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Alert message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Action, overriding the section's and the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.file`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRules {
    /// Files by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_paths: Vec<FilePathRule>,
    /// Files under a directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_directories: Vec<FileDirectoryRule>,
    /// Files by glob pattern.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_patterns: Vec<FilePatternRule>,
    /// Default severity of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Default tags of this section's rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Default message of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Default action of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.file.matchPaths[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilePathRule {
    /// Absolute file path (not ending in `/`, at most 200 characters).
    pub path: String,
    /// The rule is about writes: reads stay allowed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Only for processes running as the file's owner.
    #[serde(default, skip_serializing_if = "is_false")]
    pub owner_only: bool,
    /// Only from a terminal (pts).
    #[serde(default, skip_serializing_if = "is_false")]
    pub pts: bool,
    /// Only for accesses by these executables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_source: Vec<Source>,
    /// Severity, 1 to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Alert message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Action, overriding the section's and the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.file.matchDirectories[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileDirectoryRule {
    /// Absolute directory path ending in `/`.
    pub dir: String,
    /// Also files in subdirectories.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recursive: bool,
    /// The rule is about writes: reads stay allowed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Only for processes running as the file's owner.
    #[serde(default, skip_serializing_if = "is_false")]
    pub owner_only: bool,
    /// Only from a terminal (pts).
    #[serde(default, skip_serializing_if = "is_false")]
    pub pts: bool,
    /// Only for accesses by these executables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_source: Vec<Source>,
    /// Severity, 1 to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Alert message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Action, overriding the section's and the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.file.matchPatterns[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilePatternRule {
    /// Glob pattern of file paths, e.g. `/etc/*.conf`.
    pub pattern: String,
    /// The rule is about writes: reads stay allowed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Only for processes running as the file's owner.
    #[serde(default, skip_serializing_if = "is_false")]
    pub owner_only: bool,
    /// Severity, 1 to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Alert message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Action, overriding the section's and the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.network`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRules {
    /// Socket protocols.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_protocols: Vec<ProtocolRule>,
    /// DNS names looked up.
    #[serde(
        default,
        rename = "matchDNSQueries",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub match_dns_queries: Vec<DnsQueryRule>,
    /// Default severity of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Default tags of this section's rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Default message of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Default action of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.network.matchProtocols[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolRule {
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `raw`, `sctp`, `stream`, `dgram`, `rdm`, `seqpacket`,
    /// `dccp`, `packet` or `all` (lower or upper case).
    pub protocol: String,
    /// Only from a terminal (pts; not in `KubeArmorHostPolicy`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub pts: bool,
    /// Only for these executables (required in `KubeArmorHostPolicy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_source: Vec<Source>,
    /// Severity, 1 to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Alert message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Action, overriding the section's and the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.network.matchDNSQueries[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsQueryRule {
    /// The DNS name.
    pub domain: String,
    /// Only for these executables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_source: Vec<Source>,
    /// Severity, 1 to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Alert message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Action, overriding the section's and the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.capabilities`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityRules {
    /// Capabilities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_capabilities: Vec<CapabilityRule>,
    /// Default severity of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Default tags of this section's rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Default message of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Default action of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.capabilities.matchCapabilities[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityRule {
    /// Capability name in lower case without `CAP_`, e.g. `net_raw`.
    pub capability: String,
    /// Only for these executables (required in `KubeArmorHostPolicy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_source: Vec<Source>,
    /// Severity, 1 to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Alert message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Action, overriding the section's and the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.syscalls`: monitoring only, so no action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRules {
    /// System calls, optionally from given sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_syscalls: Vec<SyscallRule>,
    /// System calls on given paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_paths: Vec<SyscallPathRule>,
    /// Default severity of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Default tags of this section's rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Default message of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `spec.syscalls.matchSyscalls[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    /// System call names (x86-64 names such as `openat`, `unlink`).
    #[serde(default, rename = "syscall", skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<String>,
    /// Only from these executables or directories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_source: Vec<SyscallSource>,
}

/// `spec.syscalls.matchPaths[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallPathRule {
    /// A file (no trailing `/`) or a directory (trailing `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// With a directory: also its subdirectories.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recursive: bool,
    /// System call names.
    #[serde(default, rename = "syscall", skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<String>,
    /// Only from these executables or directories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_source: Vec<SyscallSource>,
}

/// `spec.device` (`KubeArmorHostPolicy` only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRules {
    /// USB devices by class.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_device: Vec<DeviceRule>,
    /// Default severity of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Default tags of this section's rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Default message of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Default action of this section's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.device.matchDevice[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRule {
    /// USB device class, e.g. `MASS-STORAGE`.
    pub class: String,
    /// Bus level (1 or more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<i32>,
    /// USB protocol code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<i32>,
    /// USB subclass code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_class: Option<i32>,
    /// Severity, 1 to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Alert message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Action, overriding the section's and the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `spec.presets[]` (`KubeArmorPolicy` only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    /// Preset name, e.g. `filelessExec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Action of the preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_yaml_round_trips() {
        let mut p = Policy::new(PolicyKind::KubeArmorPolicy, "ksp-demo");
        p.metadata.namespace = Some("demo".into());
        p.spec.selector = Some(Selector {
            match_labels: [("app".to_string(), "web".to_string())].into(),
            ..Selector::default()
        });
        p.spec.file = Some(FileRules {
            match_directories: vec![FileDirectoryRule {
                dir: "/etc/".into(),
                recursive: true,
                read_only: true,
                from_source: vec![Source::path("/usr/sbin/nginx")],
                ..FileDirectoryRule::default()
            }],
            ..FileRules::default()
        });
        p.spec.action = Some(Action::Allow);
        let text = p.to_yaml().expect("serialise");
        assert_eq!(
            text,
            "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  \
             name: ksp-demo\n  namespace: demo\nspec:\n  selector:\n    matchLabels:\n      \
             app: web\n  file:\n    matchDirectories:\n    - dir: /etc/\n      recursive: true\n      \
             readOnly: true\n      fromSource:\n      - path: /usr/sbin/nginx\n  action: Allow\n"
        );
        let back: Policy = serde_yaml::from_str(&text).expect("parse");
        assert_eq!(back, p);
    }

    #[test]
    fn dns_queries_and_syscalls_use_crd_names() {
        let text = "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\n\
                    metadata: {name: h, uid: abc}\nspec:\n  nodeSelector: {matchLabels: {a: b}}\n  \
                    network:\n    matchDNSQueries: [{domain: example.com}]\n  syscalls:\n    \
                    matchSyscalls: [{syscall: [unlink], fromSource: [{dir: /bin/, recursive: true}]}]\n";
        let p: Policy = serde_yaml::from_str(text).expect("parse");
        let net = p.spec.network.as_ref().expect("network");
        assert_eq!(net.match_dns_queries[0].domain, "example.com");
        let sys = p.spec.syscalls.as_ref().expect("syscalls");
        assert_eq!(sys.match_syscalls[0].syscalls, vec!["unlink".to_string()]);
        assert!(sys.match_syscalls[0].from_source[0].recursive);
        assert_eq!(
            p.metadata.other.get("uid"),
            Some(&serde_yaml::Value::from("abc"))
        );
        let again: Policy =
            serde_yaml::from_str(&p.to_yaml().expect("serialise")).expect("reparse");
        assert_eq!(again, p);
        let out = p.to_yaml().expect("serialise");
        assert!(out.contains("matchDNSQueries:"), "{out}");
        assert!(out.contains("syscall:\n"), "{out}");
    }

    #[test]
    fn effective_action_follows_kubearmor_precedence() {
        let mut p = Policy::new(PolicyKind::KubeArmorPolicy, "x");
        assert_eq!(p.effective_action(None, None), None);
        p.spec.action = Some(Action::Block);
        assert_eq!(p.effective_action(None, None), Some(Action::Block));
        assert_eq!(
            p.effective_action(None, Some(Action::Audit)),
            Some(Action::Audit)
        );
        assert_eq!(
            p.effective_action(Some(Action::Allow), Some(Action::Audit)),
            Some(Action::Allow)
        );
    }

    #[test]
    fn kinds_parse_exactly() {
        for k in PolicyKind::ALL {
            assert_eq!(PolicyKind::from_kind(k.as_str()), Some(k));
        }
        assert_eq!(PolicyKind::from_kind("kubearmorpolicy"), None);
        assert!(PolicyKind::KubeArmorPolicy.is_namespaced());
        assert!(!PolicyKind::KubeArmorHostPolicy.is_namespaced());
    }
}
