//! The schema of KubeArmorPolicy, KubeArmorHostPolicy and KubeArmorClusterPolicy, written out
//! by hand from the CRDs (the conformance test checks it against them).

use super::*;

/// What a field holds.
#[derive(Clone, Copy)]
pub(super) enum Ty {
    /// Any string.
    Str,
    /// `true` or `false`.
    Bool,
    /// An integer within bounds; `int32` bounds are warnings (the CRD declares only the format).
    Int {
        min: Option<i64>,
        max: Option<i64>,
        int32: bool,
    },
    /// A string with a rule.
    Text(Text),
    /// A list of items, with `maxItems`.
    List(&'static Ty, Option<usize>),
    /// An object with known fields.
    Obj(&'static Obj),
    /// A map of strings to strings (`matchLabels`).
    StrMap,
}

/// String rules: enums and patterns.
#[derive(Clone, Copy)]
pub(super) enum Text {
    Action,
    /// `^\/+.*[^\/]$`, at most 200 characters.
    Path,
    /// `^\/$|^\/.*\/$`.
    Dir,
    /// `(^\/+.*[^\/]$)|(^\/$|^\/.*\/$)`.
    SyscallPath,
    /// A syscall `fromSource` directory: no CRD rule; warnings only.
    SourceDir,
    /// `^[^\/]+$`.
    ExecName,
    /// `(chown|…|mac_admin)$`.
    Capability,
    /// `(tcp|TCP|…|all|ALL)$`.
    Protocol,
    /// One of the 335 system call names.
    Syscall,
    /// `In` or `NotIn`.
    Operator,
    /// `label` (KubeArmorPolicy selectors).
    KeyLabel,
    /// `namespace` or `label` (KubeArmorClusterPolicy selectors).
    KeyNamespaceOrLabel,
}

pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) ty: Ty,
    pub(super) required: bool,
}

/// An object: its fields, and hints for fields that belong elsewhere.
pub(super) struct Obj {
    pub(super) fields: &'static [Field],
    pub(super) hints: &'static [(&'static str, &'static str)],
}

impl Obj {
    pub(super) fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

pub(super) const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

pub(super) const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

pub(super) const SEVERITY: Ty = Ty::Int {
    min: Some(1),
    max: Some(10),
    int32: false,
};
pub(super) const INT32: Ty = Ty::Int {
    min: None,
    max: None,
    int32: true,
};
pub(super) const STRINGS: Ty = Ty::List(&Ty::Str, None);
pub(super) const ACTION: Ty = Ty::Text(Text::Action);
pub(super) const PATH: Ty = Ty::Text(Text::Path);
pub(super) const DIR: Ty = Ty::Text(Text::Dir);

pub(super) const DIR_HINTS: &[(&str, &str)] =
    &[("path", "directories are given with dir, ending in /")];
pub(super) const PATH_HINTS: &[(&str, &str)] = &[
    ("dir", "a directory belongs in matchDirectories"),
    ("recursive", "recursive belongs to matchDirectories rules"),
];

pub(super) static SOURCE: Obj = Obj {
    fields: &[opt("path", PATH)],
    hints: &[
        (
            "dir",
            "fromSource takes only path here (dir is for syscalls rules)",
        ),
        (
            "recursive",
            "fromSource takes only path here (recursive is for syscalls rules)",
        ),
    ],
};
pub(super) const FROM_SOURCE: Ty = Ty::List(&Ty::Obj(&SOURCE), None);

pub(super) static SYSCALL_SOURCE: Obj = Obj {
    fields: &[
        opt("dir", Ty::Text(Text::SourceDir)),
        opt("path", PATH),
        opt("recursive", Ty::Bool),
    ],
    hints: &[],
};
pub(super) const SYSCALL_FROM_SOURCE: Ty = Ty::List(&Ty::Obj(&SYSCALL_SOURCE), None);
pub(super) const SYSCALL_NAMES: Ty = Ty::List(&Ty::Text(Text::Syscall), None);

pub(super) static PROCESS_PATH: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("allowedArgs", Ty::List(&Ty::Str, Some(20))),
        opt("execname", Ty::Text(Text::ExecName)),
        opt("fromSource", FROM_SOURCE),
        opt("message", Ty::Str),
        opt("ownerOnly", Ty::Bool),
        opt("path", PATH),
        opt("pts", Ty::Bool),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: PATH_HINTS,
};
pub(super) static PROCESS_DIR: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        req("dir", DIR),
        opt("fromSource", FROM_SOURCE),
        opt("message", Ty::Str),
        opt("ownerOnly", Ty::Bool),
        opt("pts", Ty::Bool),
        opt("recursive", Ty::Bool),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: DIR_HINTS,
};
pub(super) static PROCESS_PATTERN: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("message", Ty::Str),
        opt("ownerOnly", Ty::Bool),
        req("pattern", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};
pub(super) static PROCESS: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("matchDirectories", Ty::List(&Ty::Obj(&PROCESS_DIR), None)),
        opt("matchPaths", Ty::List(&Ty::Obj(&PROCESS_PATH), None)),
        opt("matchPatterns", Ty::List(&Ty::Obj(&PROCESS_PATTERN), None)),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};

pub(super) static FILE_PATH: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("fromSource", FROM_SOURCE),
        opt("message", Ty::Str),
        opt("ownerOnly", Ty::Bool),
        req("path", PATH),
        opt("pts", Ty::Bool),
        opt("readOnly", Ty::Bool),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: PATH_HINTS,
};
pub(super) static FILE_DIR: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        req("dir", DIR),
        opt("fromSource", FROM_SOURCE),
        opt("message", Ty::Str),
        opt("ownerOnly", Ty::Bool),
        opt("pts", Ty::Bool),
        opt("readOnly", Ty::Bool),
        opt("recursive", Ty::Bool),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: DIR_HINTS,
};
pub(super) static FILE_PATTERN: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("message", Ty::Str),
        opt("ownerOnly", Ty::Bool),
        req("pattern", Ty::Str),
        opt("readOnly", Ty::Bool),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};
pub(super) static FILE: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("matchDirectories", Ty::List(&Ty::Obj(&FILE_DIR), None)),
        opt("matchPaths", Ty::List(&Ty::Obj(&FILE_PATH), None)),
        opt("matchPatterns", Ty::List(&Ty::Obj(&FILE_PATTERN), None)),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};

pub(super) static PROTOCOL: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("fromSource", FROM_SOURCE),
        opt("message", Ty::Str),
        req("protocol", Ty::Text(Text::Protocol)),
        opt("pts", Ty::Bool),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};
pub(super) static HOST_PROTOCOL: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        req("fromSource", FROM_SOURCE),
        opt("message", Ty::Str),
        req("protocol", Ty::Text(Text::Protocol)),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[("pts", "KubeArmorHostPolicy protocol rules have no pts")],
};
pub(super) static DNS_QUERY: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        req("domain", Ty::Str),
        opt("fromSource", FROM_SOURCE),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};
pub(super) static NETWORK: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("matchDNSQueries", Ty::List(&Ty::Obj(&DNS_QUERY), None)),
        opt("matchProtocols", Ty::List(&Ty::Obj(&PROTOCOL), None)),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};
pub(super) static HOST_NETWORK: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("matchDNSQueries", Ty::List(&Ty::Obj(&DNS_QUERY), None)),
        opt("matchProtocols", Ty::List(&Ty::Obj(&HOST_PROTOCOL), None)),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};

pub(super) static CAPABILITY: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        req("capability", Ty::Text(Text::Capability)),
        opt("fromSource", FROM_SOURCE),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};
pub(super) static HOST_CAPABILITY: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        req("capability", Ty::Text(Text::Capability)),
        req("fromSource", FROM_SOURCE),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};
pub(super) static CAPABILITIES_SECTION: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("matchCapabilities", Ty::List(&Ty::Obj(&CAPABILITY), None)),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};
pub(super) static HOST_CAPABILITIES_SECTION: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt(
            "matchCapabilities",
            Ty::List(&Ty::Obj(&HOST_CAPABILITY), None),
        ),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};

pub(super) static SYSCALL_MATCH: Obj = Obj {
    fields: &[
        opt("fromSource", SYSCALL_FROM_SOURCE),
        opt("syscall", SYSCALL_NAMES),
    ],
    hints: &[("syscalls", "the list is named syscall")],
};
pub(super) static SYSCALL_PATH: Obj = Obj {
    fields: &[
        opt("fromSource", SYSCALL_FROM_SOURCE),
        opt("path", Ty::Text(Text::SyscallPath)),
        opt("recursive", Ty::Bool),
        opt("syscall", SYSCALL_NAMES),
    ],
    hints: &[("syscalls", "the list is named syscall")],
};
pub(super) static SYSCALLS_SECTION: Obj = Obj {
    fields: &[
        opt("matchPaths", Ty::List(&Ty::Obj(&SYSCALL_PATH), None)),
        opt("matchSyscalls", Ty::List(&Ty::Obj(&SYSCALL_MATCH), None)),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[("action", "syscalls rules only monitor: they have no action")],
};

pub(super) static DEVICE_RULE: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        req("class", Ty::Str),
        opt(
            "level",
            Ty::Int {
                min: Some(1),
                max: None,
                int32: true,
            },
        ),
        opt("message", Ty::Str),
        opt("protocol", INT32),
        opt("severity", SEVERITY),
        opt("subClass", INT32),
        opt("tags", STRINGS),
    ],
    hints: &[],
};
pub(super) static DEVICE: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("matchDevice", Ty::List(&Ty::Obj(&DEVICE_RULE), None)),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};

pub(super) static PRESET: Obj = Obj {
    fields: &[opt("action", ACTION), opt("name", Ty::Str)],
    hints: &[],
};

pub(super) static EXPRESSION: Obj = Obj {
    fields: &[
        opt("key", Ty::Text(Text::KeyLabel)),
        opt("operator", Ty::Text(Text::Operator)),
        opt("values", STRINGS),
    ],
    hints: &[],
};
pub(super) static CLUSTER_EXPRESSION: Obj = Obj {
    fields: &[
        opt("key", Ty::Text(Text::KeyNamespaceOrLabel)),
        opt("operator", Ty::Text(Text::Operator)),
        opt("values", STRINGS),
    ],
    hints: &[],
};
pub(super) static SELECTOR: Obj = Obj {
    fields: &[
        opt("matchExpressions", Ty::List(&Ty::Obj(&EXPRESSION), None)),
        opt("matchLabels", Ty::StrMap),
    ],
    hints: &[],
};
pub(super) static CLUSTER_SELECTOR: Obj = Obj {
    fields: &[opt(
        "matchExpressions",
        Ty::List(&Ty::Obj(&CLUSTER_EXPRESSION), None),
    )],
    hints: &[(
        "matchLabels",
        "KubeArmorClusterPolicy selects pods with matchExpressions (key: label, values: [k=v])",
    )],
};
pub(super) static NODE_SELECTOR: Obj = Obj {
    fields: &[opt("matchLabels", Ty::StrMap)],
    hints: &[],
};

pub(super) static POLICY_SPEC: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("apparmor", Ty::Str),
        opt("capabilities", Ty::Obj(&CAPABILITIES_SECTION)),
        opt("file", Ty::Obj(&FILE)),
        opt("message", Ty::Str),
        opt("network", Ty::Obj(&NETWORK)),
        opt("presets", Ty::List(&Ty::Obj(&PRESET), None)),
        opt("process", Ty::Obj(&PROCESS)),
        opt("selector", Ty::Obj(&SELECTOR)),
        opt("severity", SEVERITY),
        opt("syscalls", Ty::Obj(&SYSCALLS_SECTION)),
        opt("tags", STRINGS),
    ],
    hints: &[
        (
            "nodeSelector",
            "only KubeArmorHostPolicy has nodeSelector; use selector",
        ),
        ("device", "only KubeArmorHostPolicy has device rules"),
    ],
};
pub(super) static HOST_POLICY_SPEC: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("apparmor", Ty::Str),
        opt("capabilities", Ty::Obj(&HOST_CAPABILITIES_SECTION)),
        opt("device", Ty::Obj(&DEVICE)),
        opt("file", Ty::Obj(&FILE)),
        opt("message", Ty::Str),
        opt("network", Ty::Obj(&HOST_NETWORK)),
        req("nodeSelector", Ty::Obj(&NODE_SELECTOR)),
        opt("process", Ty::Obj(&PROCESS)),
        opt("severity", SEVERITY),
        opt("syscalls", Ty::Obj(&SYSCALLS_SECTION)),
        opt("tags", STRINGS),
    ],
    hints: &[
        (
            "selector",
            "KubeArmorHostPolicy selects nodes with nodeSelector",
        ),
        (
            "presets",
            "only KubeArmorPolicy and KubeArmorClusterPolicy have presets",
        ),
    ],
};
pub(super) static CLUSTER_POLICY_SPEC: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("apparmor", Ty::Str),
        opt("capabilities", Ty::Obj(&CAPABILITIES_SECTION)),
        opt("file", Ty::Obj(&FILE)),
        opt("message", Ty::Str),
        opt("network", Ty::Obj(&NETWORK)),
        opt("presets", Ty::List(&Ty::Obj(&PRESET), None)),
        opt("process", Ty::Obj(&PROCESS)),
        opt("selector", Ty::Obj(&CLUSTER_SELECTOR)),
        opt("severity", SEVERITY),
        opt("syscalls", Ty::Obj(&SYSCALLS_SECTION)),
        opt("tags", STRINGS),
    ],
    hints: &[
        (
            "nodeSelector",
            "only KubeArmorHostPolicy has nodeSelector; use selector",
        ),
        ("device", "only KubeArmorHostPolicy has device rules"),
    ],
};

/// The top level, for unknown-field hints (its fields are checked one by one).
pub(super) static ROOT: Obj = Obj {
    fields: &[
        opt("apiVersion", Ty::Str),
        opt("kind", Ty::Str),
        opt("metadata", Ty::Str),
        opt("spec", Ty::Str),
        opt("status", Ty::Str),
    ],
    hints: &[],
};

pub(super) fn spec_of(kind: PolicyKind) -> &'static Obj {
    match kind {
        PolicyKind::KubeArmorPolicy => &POLICY_SPEC,
        PolicyKind::KubeArmorHostPolicy => &HOST_POLICY_SPEC,
        PolicyKind::KubeArmorClusterPolicy => &CLUSTER_POLICY_SPEC,
    }
}

/// `ObjectMeta` fields the server sets or accepts without us checking them.
pub(super) const OTHER_META: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "selfLink",
];

// The CRDs' own patterns. Kubernetes evaluates `pattern` with Go's RE2 as a search (not anchored
// unless the pattern says so), which is what `Regex::is_match` does; `$` is end of text in both.
pub(super) static PATH_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\/+.*[^\/]$").expect("constant regex"));
pub(super) static DIR_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\/$|^\/.*\/$").expect("constant regex"));
pub(super) static SYSCALL_PATH_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^\/+.*[^\/]$)|(^\/$|^\/.*\/$)").expect("constant regex"));
pub(super) static EXECNAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^\/]+$").expect("constant regex"));
pub(super) static CAPABILITY_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("({})$", CAPABILITIES.join("|"))).expect("constant regex")
});
pub(super) static PROTOCOL_RE: LazyLock<Regex> = LazyLock::new(|| {
    let alternatives: Vec<String> = PROTOCOLS
        .iter()
        .map(|p| format!("{p}|{}", p.to_uppercase()))
        .collect();
    Regex::new(&format!("({})$", alternatives.join("|"))).expect("constant regex")
});

// Kubernetes' name rules (apimachinery's validation package).
pub(super) static DNS1123_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        .expect("constant regex")
});
pub(super) static DNS1123_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("constant regex"));
pub(super) static QUALIFIED_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").expect("constant regex")
});

/// The largest path the CRDs accept (`maxLength` of `path`).
pub const MAX_PATH_CHARS: usize = 200;
