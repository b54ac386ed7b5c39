//! Validation of KubeArmor policy documents, the way a cluster checks them.
//!
//! What the API server does with a custom resource, in order, and what we do about it:
//!
//! 1. **Prunes unknown fields** (the CRDs have structural schemas without
//!    `x-kubernetes-preserve-unknown-fields`): a warning naming the field, because the field
//!    silently stops meaning anything. (`kubectl apply`'s default `--validate=strict` turns the
//!    same thing into an error on the client side.)
//! 2. **Drops `null` values** of fields that are not `nullable` (Kubernetes 1.20 and later): a
//!    warning; a `null` required field is an error, as it is on the server. `null` items of a
//!    list are kept, and fail their type check.
//! 3. **Validates the schema**: types, `required`, `enum`, the `pattern` regexes (the CRDs'
//!    own expressions, including their quirks: the capability and protocol patterns are not
//!    anchored at the start), `maxLength`, `maxItems`, `minimum`/`maximum`. Errors.
//! 4. **Validates `metadata`** as `ObjectMeta` (name, namespace, labels, annotations). Errors.
//!
//! Beyond the schema, as warnings only (a cluster accepts these): values that pass an
//! unanchored pattern without being a name KubeArmor knows, rules without any action, empty
//! `fromSource` entries, identical rules, `label` expressions without `=`, paths that are not
//! normalised, policies without rules, YAML tags.
//!
//! YAML is read as YAML 1.2 (serde_yaml): `yes`/`on` are strings, not booleans as in
//! kubectl's YAML 1.1 reader; where a boolean is expected the error says so.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde_yaml::{Mapping, Value};

use super::model::{Action, ExpressionKey, Policy, PolicyKind, Source, API_GROUP, API_VERSION};
use super::names::{CAPABILITIES, PROTOCOLS, SYSCALLS};

/// Files larger than this are reported, not read.
pub const MAX_FILE_BYTES: u64 = 32 << 20;

/// Directories deeper than this below the starting directory are not searched.
const MAX_DEPTH: usize = 64;

// ---------------------------------------------------------------------------------------------
// Reports

/// One problem, at a field path such as `spec.file.matchDirectories[0].dir` (empty when it is
/// about the whole document or file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Field path, `a.b[0].c`; map keys in brackets: `matchLabels[app]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// The verdict on one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A cluster accepts it (there may be warnings).
    Valid,
    /// A cluster rejects it, or it cannot be read.
    Invalid,
    /// Not a KubeArmor policy (another kind, an empty file): nothing to check.
    Skipped,
}

/// The verdict on one YAML value, without file and document.
#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    /// `kind`, when it is a string.
    pub kind: Option<String>,
    /// `metadata.name`, when it is a string.
    pub name: Option<String>,
    /// `metadata.namespace`, when it is a string.
    pub namespace: Option<String>,
    /// Valid, invalid or skipped.
    pub outcome: Outcome,
    /// What a cluster rejects.
    pub errors: Vec<Finding>,
    /// What a cluster accepts but probably is not what was meant.
    pub warnings: Vec<Finding>,
    /// Why the document was skipped.
    pub note: Option<String>,
    /// The policy as the cluster would store it (unknown fields and nulls dropped), when valid.
    #[serde(skip)]
    pub policy: Option<Policy>,
}

/// The verdict on one document of one file (or on a file that could not be read).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    /// The file.
    pub file: PathBuf,
    /// 1-based document number in the file; `None` for problems with the file itself.
    pub document: Option<usize>,
    /// For `kind: List` documents: the index in `items`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    /// `kind`, when known.
    pub kind: Option<String>,
    /// `metadata.name`, when known.
    pub name: Option<String>,
    /// `metadata.namespace`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Valid, invalid or skipped.
    pub outcome: Outcome,
    /// What a cluster rejects.
    pub errors: Vec<Finding>,
    /// What a cluster accepts but probably is not what was meant.
    pub warnings: Vec<Finding>,
    /// Why the document was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The parsed policy, when valid.
    #[serde(skip)]
    pub policy: Option<Policy>,
}

impl PolicyReport {
    fn from_validation(
        file: &Path,
        document: Option<usize>,
        item: Option<usize>,
        v: Validation,
    ) -> PolicyReport {
        PolicyReport {
            file: file.to_path_buf(),
            document,
            item,
            kind: v.kind,
            name: v.name,
            namespace: v.namespace,
            outcome: v.outcome,
            errors: v.errors,
            warnings: v.warnings,
            note: v.note,
            policy: v.policy,
        }
    }

    fn file_problem(file: &Path, outcome: Outcome, message: String) -> PolicyReport {
        let (errors, note) = match outcome {
            Outcome::Invalid => (
                vec![Finding {
                    path: String::new(),
                    message,
                }],
                None,
            ),
            _ => (Vec::new(), Some(message)),
        };
        PolicyReport {
            file: file.to_path_buf(),
            document: None,
            item: None,
            kind: None,
            name: None,
            namespace: None,
            outcome,
            errors,
            warnings: Vec::new(),
            note,
            policy: None,
        }
    }

    /// Whether a cluster would reject this document (or the file could not be read).
    pub fn is_invalid(&self) -> bool {
        self.outcome == Outcome::Invalid
    }

    /// `FILE: document N (Kind name)`, or just `FILE` for problems with the file itself.
    pub fn location(&self) -> String {
        let mut s = self.file.display().to_string();
        if let Some(d) = self.document {
            s.push_str(&format!(": document {d}"));
            if let Some(i) = self.item {
                s.push_str(&format!(", items[{i}]"));
            }
            match (&self.kind, &self.name) {
                (Some(k), Some(n)) => s.push_str(&format!(" ({k} {n})")),
                (Some(k), None) => s.push_str(&format!(" ({k})")),
                (None, Some(n)) => s.push_str(&format!(" ({n})")),
                (None, None) => {}
            }
        }
        s
    }

    /// Each error as `FILE: document N (Kind name): field.path: message`.
    pub fn error_messages(&self) -> Vec<String> {
        let at = self.location();
        self.errors.iter().map(|e| format!("{at}: {e}")).collect()
    }

    /// Each warning as `FILE: document N (Kind name): field.path: message`.
    pub fn warning_messages(&self) -> Vec<String> {
        let at = self.location();
        self.warnings.iter().map(|e| format!("{at}: {e}")).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Files, directories, documents

/// Validates a file, or every `*.yaml`/`*.yml` file below a directory (recursively, in name
/// order). A file that cannot be read, or a document that cannot be parsed, is reported and the
/// others are still checked.
pub fn validate_path(path: &Path) -> Vec<PolicyReport> {
    match std::fs::metadata(path) {
        Err(e) => vec![PolicyReport::file_problem(
            path,
            Outcome::Invalid,
            format!("cannot read: {e}"),
        )],
        Ok(m) if m.is_dir() => {
            let mut files = Vec::new();
            let mut reports = Vec::new();
            let mut seen = HashSet::new();
            collect_yaml_files(path, 0, &mut seen, &mut files, &mut reports);
            if files.is_empty() && reports.is_empty() {
                reports.push(PolicyReport::file_problem(
                    path,
                    Outcome::Invalid,
                    "no *.yaml or *.yml files in this directory".into(),
                ));
            }
            for f in files {
                reports.extend(validate_file(&f));
            }
            reports
        }
        Ok(_) => validate_file(path),
    }
}

fn is_yaml_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

fn collect_yaml_files(
    dir: &Path,
    depth: usize,
    seen: &mut HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<PolicyReport>,
) {
    // Symbolic links are followed; a directory reached twice (a link cycle) is read once.
    if let Ok(canonical) = std::fs::canonicalize(dir) {
        if !seen.insert(canonical) {
            return;
        }
    }
    if depth > MAX_DEPTH {
        problems.push(PolicyReport::file_problem(
            dir,
            Outcome::Invalid,
            format!("more than {MAX_DEPTH} directory levels: not searched"),
        ));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(PolicyReport::file_problem(
                dir,
                Outcome::Invalid,
                format!("cannot read directory: {e}"),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => collect_yaml_files(&p, depth + 1, seen, files, problems),
            Ok(_) if is_yaml_name(&p) => files.push(p),
            Ok(_) => {}
            // A dangling link named *.yaml is worth reporting; others are not ours.
            Err(e) if is_yaml_name(&p) => problems.push(PolicyReport::file_problem(
                &p,
                Outcome::Invalid,
                format!("cannot read: {e}"),
            )),
            Err(_) => {}
        }
    }
}

fn validate_file(file: &Path) -> Vec<PolicyReport> {
    let bytes = match std::fs::metadata(file) {
        Ok(m) if m.len() > MAX_FILE_BYTES => {
            return vec![PolicyReport::file_problem(
                file,
                Outcome::Invalid,
                format!(
                    "{} bytes: larger than the {} MiB this command reads",
                    m.len(),
                    MAX_FILE_BYTES >> 20
                ),
            )]
        }
        _ => match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                return vec![PolicyReport::file_problem(
                    file,
                    Outcome::Invalid,
                    format!("cannot read: {e}"),
                )]
            }
        },
    };
    match String::from_utf8(bytes) {
        Ok(text) => validate_documents(&text, file),
        Err(e) => vec![PolicyReport::file_problem(
            file,
            Outcome::Invalid,
            format!(
                "not UTF-8 text (invalid byte at offset {}): not a YAML file",
                e.utf8_error().valid_up_to()
            ),
        )],
    }
}

/// A slice of the file that holds one document (sometimes more, after a `...` marker).
struct Chunk<'a> {
    text: &'a str,
    /// 1-based line of `text`'s first line in the file.
    first_line: usize,
    /// Whether it is a document even when it holds only comments (it starts with `---`).
    explicit: bool,
}

fn is_marker(line: &str) -> bool {
    let line = line.trim_end_matches(['\n', '\r']);
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Splits a YAML stream at `---` lines, so that a syntax error in one document does not hide
/// the next. A `---` at the start of a line always starts a document in YAML, even inside a
/// block scalar. Directives (`%YAML`) just before a marker go with the following document.
fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1usize;
    let mut explicit = false;
    // Where the directives before the next marker begin, if there are any since the last
    // content line.
    let mut directives: Option<(usize, usize)> = None;
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        if is_marker(line) {
            let (cut, cut_line) = directives.unwrap_or((offset, line_no));
            chunks.push(Chunk {
                text: &text[start..cut],
                first_line: start_line,
                explicit,
            });
            start = cut;
            start_line = cut_line;
            explicit = true;
            directives = None;
        } else if line.starts_with('%') {
            directives.get_or_insert((offset, line_no));
        } else if !is_blank_or_comment(line) {
            directives = None;
        }
        offset += line.len();
    }
    chunks.push(Chunk {
        text: &text[start..],
        first_line: start_line,
        explicit,
    });
    chunks.retain(|c| c.explicit || c.text.lines().any(|l| !is_blank_or_comment(l)));
    chunks
}

static YAML_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"line (\d+) column (\d+)").expect("constant regex"));

/// A serde_yaml error with its line numbers moved from the chunk to the file.
fn yaml_error(e: &serde_yaml::Error, first_line: usize) -> String {
    let text = e.to_string();
    let text = YAML_LINE.replace_all(&text, |c: &regex::Captures<'_>| {
        let line: usize = c[1].parse().unwrap_or(0);
        format!("line {} column {}", line + first_line - 1, &c[2])
    });
    format!("not valid YAML: {text}")
}

/// Validates every document of a (multi-document) YAML text read from `file`. Each document is
/// reported separately with its 1-based number; documents of other kinds are `Skipped`; empty
/// documents are not reported. A text without any document gives one `Skipped` report.
pub fn validate_documents(text: &str, file: &Path) -> Vec<PolicyReport> {
    use serde::Deserialize;

    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reports = Vec::new();
    let mut number = 0usize;
    for chunk in split_documents(text) {
        for doc in serde_yaml::Deserializer::from_str(chunk.text) {
            number += 1;
            let mut value = match Value::deserialize(doc) {
                Ok(v) => v,
                Err(e) => {
                    let mut r = PolicyReport::file_problem(
                        file,
                        Outcome::Invalid,
                        yaml_error(&e, chunk.first_line),
                    );
                    r.document = Some(number);
                    reports.push(r);
                    // The parser cannot continue inside this chunk; the next chunk is fresh.
                    break;
                }
            };
            if let Err(e) = value.apply_merge() {
                let mut r = PolicyReport::file_problem(
                    file,
                    Outcome::Invalid,
                    format!("YAML merge key (<<): {e}"),
                );
                r.document = Some(number);
                reports.push(r);
                continue;
            }
            if value.is_null() {
                continue; // An empty document: kubectl ignores it too.
            }
            reports.extend(validate_object_or_list(&value, file, number));
        }
    }
    if reports.is_empty() {
        reports.push(PolicyReport::file_problem(
            file,
            Outcome::Skipped,
            "no YAML documents".into(),
        ));
    }
    reports
}

/// A `kind: List` (as `kubectl get -o yaml` writes) or `kind: <Kind>List` document is checked
/// item by item; anything else as one object.
fn validate_object_or_list(value: &Value, file: &Path, number: usize) -> Vec<PolicyReport> {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let items = value.get("items").and_then(Value::as_sequence);
    if let (true, Some(items)) = (kind == "List" || kind.ends_with("List"), items) {
        if items.is_empty() {
            let mut r = PolicyReport::file_problem(file, Outcome::Skipped, "empty List".into());
            r.document = Some(number);
            r.kind = Some(kind.to_string());
            return vec![r];
        }
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                PolicyReport::from_validation(file, Some(number), Some(i), validate_value(item))
            })
            .collect();
    }
    vec![PolicyReport::from_validation(
        file,
        Some(number),
        None,
        validate_value(value),
    )]
}

// ---------------------------------------------------------------------------------------------
// The schema, written out by hand from the CRDs (the conformance test checks it against them)

/// What a field holds.
#[derive(Clone, Copy)]
enum Ty {
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
enum Text {
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

struct Field {
    name: &'static str,
    ty: Ty,
    required: bool,
}

/// An object: its fields, and hints for fields that belong elsewhere.
struct Obj {
    fields: &'static [Field],
    hints: &'static [(&'static str, &'static str)],
}

impl Obj {
    fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

const SEVERITY: Ty = Ty::Int {
    min: Some(1),
    max: Some(10),
    int32: false,
};
const INT32: Ty = Ty::Int {
    min: None,
    max: None,
    int32: true,
};
const STRINGS: Ty = Ty::List(&Ty::Str, None);
const ACTION: Ty = Ty::Text(Text::Action);
const PATH: Ty = Ty::Text(Text::Path);
const DIR: Ty = Ty::Text(Text::Dir);

const DIR_HINTS: &[(&str, &str)] = &[("path", "directories are given with dir, ending in /")];
const PATH_HINTS: &[(&str, &str)] = &[
    ("dir", "a directory belongs in matchDirectories"),
    ("recursive", "recursive belongs to matchDirectories rules"),
];

static SOURCE: Obj = Obj {
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
const FROM_SOURCE: Ty = Ty::List(&Ty::Obj(&SOURCE), None);

static SYSCALL_SOURCE: Obj = Obj {
    fields: &[
        opt("dir", Ty::Text(Text::SourceDir)),
        opt("path", PATH),
        opt("recursive", Ty::Bool),
    ],
    hints: &[],
};
const SYSCALL_FROM_SOURCE: Ty = Ty::List(&Ty::Obj(&SYSCALL_SOURCE), None);
const SYSCALL_NAMES: Ty = Ty::List(&Ty::Text(Text::Syscall), None);

static PROCESS_PATH: Obj = Obj {
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
static PROCESS_DIR: Obj = Obj {
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
static PROCESS_PATTERN: Obj = Obj {
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
static PROCESS: Obj = Obj {
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

static FILE_PATH: Obj = Obj {
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
static FILE_DIR: Obj = Obj {
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
static FILE_PATTERN: Obj = Obj {
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
static FILE: Obj = Obj {
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

static PROTOCOL: Obj = Obj {
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
static HOST_PROTOCOL: Obj = Obj {
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
static DNS_QUERY: Obj = Obj {
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
static NETWORK: Obj = Obj {
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
static HOST_NETWORK: Obj = Obj {
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

static CAPABILITY: Obj = Obj {
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
static HOST_CAPABILITY: Obj = Obj {
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
static CAPABILITIES_SECTION: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("matchCapabilities", Ty::List(&Ty::Obj(&CAPABILITY), None)),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};
static HOST_CAPABILITIES_SECTION: Obj = Obj {
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

static SYSCALL_MATCH: Obj = Obj {
    fields: &[
        opt("fromSource", SYSCALL_FROM_SOURCE),
        opt("syscall", SYSCALL_NAMES),
    ],
    hints: &[("syscalls", "the list is named syscall")],
};
static SYSCALL_PATH: Obj = Obj {
    fields: &[
        opt("fromSource", SYSCALL_FROM_SOURCE),
        opt("path", Ty::Text(Text::SyscallPath)),
        opt("recursive", Ty::Bool),
        opt("syscall", SYSCALL_NAMES),
    ],
    hints: &[("syscalls", "the list is named syscall")],
};
static SYSCALLS_SECTION: Obj = Obj {
    fields: &[
        opt("matchPaths", Ty::List(&Ty::Obj(&SYSCALL_PATH), None)),
        opt("matchSyscalls", Ty::List(&Ty::Obj(&SYSCALL_MATCH), None)),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[("action", "syscalls rules only monitor: they have no action")],
};

static DEVICE_RULE: Obj = Obj {
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
static DEVICE: Obj = Obj {
    fields: &[
        opt("action", ACTION),
        opt("matchDevice", Ty::List(&Ty::Obj(&DEVICE_RULE), None)),
        opt("message", Ty::Str),
        opt("severity", SEVERITY),
        opt("tags", STRINGS),
    ],
    hints: &[],
};

static PRESET: Obj = Obj {
    fields: &[opt("action", ACTION), opt("name", Ty::Str)],
    hints: &[],
};

static EXPRESSION: Obj = Obj {
    fields: &[
        opt("key", Ty::Text(Text::KeyLabel)),
        opt("operator", Ty::Text(Text::Operator)),
        opt("values", STRINGS),
    ],
    hints: &[],
};
static CLUSTER_EXPRESSION: Obj = Obj {
    fields: &[
        opt("key", Ty::Text(Text::KeyNamespaceOrLabel)),
        opt("operator", Ty::Text(Text::Operator)),
        opt("values", STRINGS),
    ],
    hints: &[],
};
static SELECTOR: Obj = Obj {
    fields: &[
        opt("matchExpressions", Ty::List(&Ty::Obj(&EXPRESSION), None)),
        opt("matchLabels", Ty::StrMap),
    ],
    hints: &[],
};
static CLUSTER_SELECTOR: Obj = Obj {
    fields: &[opt(
        "matchExpressions",
        Ty::List(&Ty::Obj(&CLUSTER_EXPRESSION), None),
    )],
    hints: &[(
        "matchLabels",
        "KubeArmorClusterPolicy selects pods with matchExpressions (key: label, values: [k=v])",
    )],
};
static NODE_SELECTOR: Obj = Obj {
    fields: &[opt("matchLabels", Ty::StrMap)],
    hints: &[],
};

static POLICY_SPEC: Obj = Obj {
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
static HOST_POLICY_SPEC: Obj = Obj {
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
static CLUSTER_POLICY_SPEC: Obj = Obj {
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
static ROOT: Obj = Obj {
    fields: &[
        opt("apiVersion", Ty::Str),
        opt("kind", Ty::Str),
        opt("metadata", Ty::Str),
        opt("spec", Ty::Str),
        opt("status", Ty::Str),
    ],
    hints: &[],
};

fn spec_of(kind: PolicyKind) -> &'static Obj {
    match kind {
        PolicyKind::KubeArmorPolicy => &POLICY_SPEC,
        PolicyKind::KubeArmorHostPolicy => &HOST_POLICY_SPEC,
        PolicyKind::KubeArmorClusterPolicy => &CLUSTER_POLICY_SPEC,
    }
}

/// `ObjectMeta` fields the server sets or accepts without us checking them.
const OTHER_META: &[&str] = &[
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
static PATH_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\/+.*[^\/]$").expect("constant regex"));
static DIR_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\/$|^\/.*\/$").expect("constant regex"));
static SYSCALL_PATH_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^\/+.*[^\/]$)|(^\/$|^\/.*\/$)").expect("constant regex"));
static EXECNAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^\/]+$").expect("constant regex"));
static CAPABILITY_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("({})$", CAPABILITIES.join("|"))).expect("constant regex")
});
static PROTOCOL_RE: LazyLock<Regex> = LazyLock::new(|| {
    let alternatives: Vec<String> = PROTOCOLS
        .iter()
        .map(|p| format!("{p}|{}", p.to_uppercase()))
        .collect();
    Regex::new(&format!("({})$", alternatives.join("|"))).expect("constant regex")
});

// Kubernetes' name rules (apimachinery's validation package).
static DNS1123_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        .expect("constant regex")
});
static DNS1123_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("constant regex"));
static QUALIFIED_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").expect("constant regex")
});

/// The largest path the CRDs accept (`maxLength` of `path`).
pub const MAX_PATH_CHARS: usize = 200;

// ---------------------------------------------------------------------------------------------
// The walk

const NULL_DROPPED: &str =
    "null: the API server drops this field (Kubernetes 1.20 and later; older servers reject it)";

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn preview(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// How a value is described in a type error.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", preview(s)),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => describe(&t.value),
    }
}

/// An integer as Kubernetes reads a JSON number: integral floats count.
fn as_integer(v: &Value) -> Option<i128> {
    let Value::Number(n) = v else { return None };
    if let Some(i) = n.as_i64() {
        return Some(i as i128);
    }
    if let Some(u) = n.as_u64() {
        return Some(u as i128);
    }
    n.as_f64()
        .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18)
        .map(|f| f as i128)
}

/// Edit distance between two strings, ignoring ASCII case (Levenshtein).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_ascii_lowercase().chars().collect();
    let b: Vec<char> = b.to_ascii_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The declared field an unknown key most likely meant: the same name in another case, or a
/// name at most two edits away (one for short names).
fn closest_field(obj: &Obj, key: &str) -> Option<&'static Field> {
    if key.len() > 64 {
        return None;
    }
    let limit = if key.len() < 6 { 1 } else { 2 };
    obj.fields
        .iter()
        .map(|f| (edit_distance(f.name, key), f))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, f)| f)
}

fn key_string(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        // kubectl's YAML-to-JSON conversion writes scalar keys as strings.
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(t) => key_string(&t.value),
        _ => None,
    }
}

#[derive(Default)]
struct Walker {
    errors: Vec<Finding>,
    warnings: Vec<Finding>,
}

impl Walker {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Finding {
            path: path.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Finding {
            path: path.into(),
            message: message.into(),
        });
    }

    fn type_error(&mut self, path: &str, expected: &str, v: &Value) {
        let hint = match (expected, v) {
            ("true or false", Value::String(s))
                if ["yes", "no", "on", "off", "y", "n", "true", "false"]
                    .contains(&s.to_ascii_lowercase().as_str()) =>
            {
                " (write true or false, unquoted)"
            }
            ("an integer", Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
                " (remove the quotes)"
            }
            ("a string", Value::Number(_) | Value::Bool(_)) => " (quote it)",
            _ => "",
        };
        self.error(
            path,
            format!("must be {expected}, got {}{hint}", describe(v)),
        );
    }

    /// Strips YAML tags, which a cluster never sees.
    fn untag<'v>(&mut self, v: &'v Value, path: &str) -> &'v Value {
        let mut v = v;
        while let Value::Tagged(t) = v {
            self.warn(path, format!("the YAML tag {} is ignored", t.tag));
            v = &t.value;
        }
        v
    }

    /// Checks `v` against `ty` and returns it as the cluster would store it.
    fn check(&mut self, v: &Value, ty: &Ty, path: &str) -> Value {
        let v = self.untag(v, path);
        match ty {
            Ty::Str => {
                if !v.is_string() {
                    self.type_error(path, "a string", v);
                }
                v.clone()
            }
            Ty::Bool => {
                if !v.is_bool() {
                    self.type_error(path, "true or false", v);
                }
                v.clone()
            }
            Ty::Int { min, max, int32 } => self.int(v, *min, *max, *int32, path),
            Ty::Text(t) => {
                match v.as_str() {
                    Some(s) => self.text(s, *t, path),
                    None => self.type_error(path, "a string", v),
                }
                v.clone()
            }
            Ty::List(item, max_items) => {
                let Some(items) = v.as_sequence() else {
                    self.type_error(path, "a list", v);
                    return v.clone();
                };
                if let Some(max) = max_items {
                    if items.len() > *max {
                        self.error(
                            path,
                            format!("must have at most {max} items, got {}", items.len()),
                        );
                    }
                }
                Value::Sequence(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| self.check(x, item, &format!("{path}[{i}]")))
                        .collect(),
                )
            }
            Ty::Obj(obj) => self.object(v, obj, path),
            Ty::StrMap => self.string_map(v, path),
        }
    }

    fn int(
        &mut self,
        v: &Value,
        min: Option<i64>,
        max: Option<i64>,
        int32: bool,
        path: &str,
    ) -> Value {
        let Some(n) = as_integer(v) else {
            self.type_error(path, "an integer", v);
            return v.clone();
        };
        let low = min.is_some_and(|m| n < m as i128);
        let high = max.is_some_and(|m| n > m as i128);
        if low || high {
            let msg = match (min, max) {
                (Some(a), Some(b)) => format!("must be between {a} and {b}, got {n}"),
                (Some(a), None) => format!("must be at least {a}, got {n}"),
                (None, Some(b)) => format!("must be at most {b}, got {n}"),
                (None, None) => format!("is out of range, got {n}"),
            };
            self.error(path, msg);
            return v.clone();
        }
        if int32 && (n < i32::MIN as i128 || n > i32::MAX as i128) {
            self.warn(
                path,
                format!(
                    "{n} does not fit the field's int32 format: the API server stores it, but \
                     KubeArmor cannot read it"
                ),
            );
            return Value::Null;
        }
        // Stored as an integer, as the API server does with an integral float.
        match i64::try_from(n) {
            Ok(i) => Value::from(i),
            Err(_) => v.clone(),
        }
    }

    fn text(&mut self, s: &str, t: Text, path: &str) {
        match t {
            Text::Action => {
                if !["Allow", "Audit", "Block"].contains(&s) {
                    let case = if ["allow", "audit", "block"].contains(&s.to_lowercase().as_str()) {
                        " (case matters)"
                    } else {
                        ""
                    };
                    self.error(
                        path,
                        format!("must be Allow, Audit or Block, got {}{case}", preview(s)),
                    );
                }
            }
            Text::Path => {
                let chars = s.chars().count();
                if chars > MAX_PATH_CHARS {
                    self.error(
                        path,
                        format!("must be at most {MAX_PATH_CHARS} characters, got {chars}"),
                    );
                }
                if !PATH_RE.is_match(s) {
                    let why = if !s.starts_with('/') {
                        format!(
                            "must be an absolute path (start with \"/\"), got {}",
                            preview(s)
                        )
                    } else if s.ends_with('/') {
                        "must not end with \"/\" (a directory belongs in matchDirectories)"
                            .to_string()
                    } else {
                        format!("must be an absolute path on one line, got {}", preview(s))
                    };
                    self.error(path, why);
                } else {
                    self.normalised(s, path);
                }
            }
            Text::Dir => {
                if !DIR_RE.is_match(s) {
                    let why = if !s.starts_with('/') {
                        format!(
                            "must be an absolute directory (start with \"/\"), got {}",
                            preview(s)
                        )
                    } else if !s.ends_with('/') {
                        "must end with \"/\"".to_string()
                    } else {
                        format!("must be a directory path on one line, got {}", preview(s))
                    };
                    self.error(path, why);
                } else {
                    self.normalised(s, path);
                }
            }
            Text::SyscallPath => {
                if !SYSCALL_PATH_RE.is_match(s) {
                    let why = if !s.starts_with('/') {
                        format!(
                            "must be an absolute path (start with \"/\"), got {}",
                            preview(s)
                        )
                    } else {
                        format!("must be an absolute path on one line, got {}", preview(s))
                    };
                    self.error(path, why);
                } else {
                    self.normalised(s, path);
                }
            }
            Text::SourceDir => {
                if !(s.starts_with('/') && s.ends_with('/')) {
                    self.warn(
                        path,
                        "should be an absolute directory ending in \"/\" (the CRD does not check \
                         it)",
                    );
                }
            }
            Text::ExecName => {
                if !EXECNAME_RE.is_match(s) {
                    self.error(
                        path,
                        format!(
                            "must be a file name without \"/\" (use path for a full path), got {}",
                            preview(s)
                        ),
                    );
                }
            }
            Text::Capability => {
                if !CAPABILITY_RE.is_match(s) {
                    self.error(
                        path,
                        format!(
                            "must be a capability name in lower case without CAP_, such as \
                             net_raw or sys_admin, got {}",
                            preview(s)
                        ),
                    );
                } else if !CAPABILITIES.contains(&s) {
                    self.warn(
                        path,
                        format!(
                            "{} passes the CRD's pattern (it ends in a capability name) but is not \
                             a capability KubeArmor knows",
                            preview(s)
                        ),
                    );
                }
            }
            Text::Protocol => {
                if !PROTOCOL_RE.is_match(s) {
                    self.error(
                        path,
                        format!(
                            "must be one of {} (lower or upper case), got {}",
                            PROTOCOLS.join(", "),
                            preview(s)
                        ),
                    );
                } else if !PROTOCOLS.iter().any(|p| *p == s || p.to_uppercase() == s) {
                    self.warn(
                        path,
                        format!(
                            "{} passes the CRD's pattern (it ends in a protocol name) but is not \
                             a protocol KubeArmor knows",
                            preview(s)
                        ),
                    );
                }
            }
            Text::Syscall => {
                if !SYSCALLS.contains(&s) {
                    let hint = if SYSCALLS.contains(&s.to_lowercase().as_str()) {
                        " (names are lower case)"
                    } else if let Some(bare) = s.strip_prefix("SYS_").or(s.strip_prefix("sys_")) {
                        if SYSCALLS.contains(&bare.to_lowercase().as_str()) {
                            " (without the SYS_ prefix)"
                        } else {
                            ""
                        }
                    } else {
                        ""
                    };
                    self.error(
                        path,
                        format!("{} is not a system call the CRD accepts{hint}", preview(s)),
                    );
                }
            }
            Text::Operator => {
                if !["In", "NotIn"].contains(&s) {
                    self.error(path, format!("must be In or NotIn, got {}", preview(s)));
                }
            }
            Text::KeyLabel => {
                if s != "label" {
                    let hint = if s == "namespace" {
                        " (namespace expressions are for KubeArmorClusterPolicy)"
                    } else {
                        ""
                    };
                    self.error(path, format!("must be label, got {}{hint}", preview(s)));
                }
            }
            Text::KeyNamespaceOrLabel => {
                if s != "label" && s != "namespace" {
                    self.error(
                        path,
                        format!("must be namespace or label, got {}", preview(s)),
                    );
                }
            }
        }
    }

    /// Paths the kernel never reports: they cannot match.
    fn normalised(&mut self, s: &str, path: &str) {
        if s.contains("//") || s.contains("/./") || s.contains("/../") || s.ends_with("/..") {
            self.warn(
                path,
                "not a normalised path (\"//\", \"/./\" or \"/../\"): KubeArmor sees resolved \
                 paths, so this may never match",
            );
        }
    }

    fn object(&mut self, v: &Value, obj: &Obj, path: &str) -> Value {
        let Some(map) = v.as_mapping() else {
            self.type_error(path, "a mapping", v);
            return v.clone();
        };
        let mut out = Mapping::new();
        let mut present: HashSet<&str> = HashSet::new();
        for (k, val) in map {
            let Some(key) = key_string(k) else {
                self.error(path, format!("keys must be strings, got {}", describe(k)));
                continue;
            };
            let p = child(path, &key);
            let Some(field) = obj.field(&key) else {
                self.unknown(&p, &key, obj);
                continue;
            };
            present.insert(field.name);
            if self.untag(val, &p).is_null() {
                if field.required {
                    self.error(&p, "required field is null");
                } else {
                    self.warn(&p, NULL_DROPPED);
                }
                continue;
            }
            let checked = self.check(val, &field.ty, &p);
            if !checked.is_null() {
                out.insert(Value::from(key), checked);
            }
        }
        for f in obj.fields {
            if f.required && !present.contains(f.name) {
                self.error(child(path, f.name), "required field is missing");
            }
        }
        Value::Mapping(out)
    }

    fn unknown(&mut self, path: &str, key: &str, obj: &Obj) {
        let hint = if let Some(f) = closest_field(obj, key) {
            format!(" (did you mean {}?)", f.name)
        } else if let Some((_, h)) = obj.hints.iter().find(|(k, _)| *k == key) {
            format!(" ({h})")
        } else {
            String::new()
        };
        self.warn(
            path,
            format!(
                "unknown field{hint}: the API server drops it (kubectl apply --validate=strict \
                 rejects it)"
            ),
        );
    }

    fn string_map(&mut self, v: &Value, path: &str) -> Value {
        let Some(map) = v.as_mapping() else {
            self.type_error(path, "a mapping", v);
            return v.clone();
        };
        let mut out = Mapping::new();
        for (k, val) in map {
            let Some(key) = key_string(k) else {
                self.error(path, format!("keys must be strings, got {}", describe(k)));
                continue;
            };
            let p = format!("{path}[{key}]");
            let val = self.untag(val, &p);
            match val {
                Value::Null => self.warn(
                    &p,
                    "null: the API server drops this label, so the selector matches more than \
                     written",
                ),
                Value::String(_) => {
                    out.insert(Value::from(key), val.clone());
                }
                other => self.type_error(&p, "a string", other),
            }
        }
        Value::Mapping(out)
    }

    /// `metadata`, as the API server checks `ObjectMeta`.
    fn metadata(&mut self, v: Option<&Value>, kind: PolicyKind) -> Value {
        let v = v.map(|v| self.untag(v, "metadata"));
        let Some(v) = v.filter(|v| !v.is_null()) else {
            self.error("metadata.name", "required field is missing");
            return Value::Mapping(Mapping::new());
        };
        let Some(map) = v.as_mapping() else {
            self.type_error("metadata", "a mapping", v);
            return v.clone();
        };
        let mut out = Mapping::new();
        let mut has_name = false;
        let mut has_generate_name = false;
        for (k, val) in map {
            let Some(key) = key_string(k) else {
                self.error(
                    "metadata",
                    format!("keys must be strings, got {}", describe(k)),
                );
                continue;
            };
            let p = child("metadata", &key);
            let val = self.untag(val, &p);
            if val.is_null() {
                continue;
            }
            match key.as_str() {
                "name" => {
                    let Some(s) = val.as_str() else {
                        self.type_error(&p, "a string", val);
                        continue;
                    };
                    has_name = true;
                    self.dns_subdomain(s, &p);
                }
                "generateName" => {
                    if val.as_str().is_none() {
                        self.type_error(&p, "a string", val);
                        continue;
                    }
                    has_generate_name = true;
                }
                "namespace" => {
                    let Some(s) = val.as_str() else {
                        self.type_error(&p, "a string", val);
                        continue;
                    };
                    if !kind.is_namespaced() {
                        self.warn(
                            &p,
                            format!(
                                "{kind} is cluster-scoped: the namespace is ignored (and removed)"
                            ),
                        );
                        continue;
                    }
                    if s.len() > 63 || !DNS1123_LABEL.is_match(s) {
                        self.error(
                            &p,
                            format!(
                                "must be a namespace name (lower case letters, digits and '-', \
                                 at most 63 characters), got {}",
                                preview(s)
                            ),
                        );
                    }
                }
                "labels" => self.meta_map(val, &p, true),
                "annotations" => self.meta_map(val, &p, false),
                other if OTHER_META.contains(&other) => {}
                _ => {
                    self.warn(
                        &p,
                        "unknown metadata field: the API server drops it (kubectl apply \
                         --validate=strict rejects it)",
                    );
                    continue;
                }
            }
            out.insert(Value::from(key), val.clone());
        }
        if !has_name {
            if has_generate_name {
                self.warn(
                    "metadata.name",
                    "missing: kubectl apply needs a name (generateName works only with kubectl \
                     create)",
                );
            } else {
                self.error("metadata.name", "required field is missing");
            }
        }
        Value::Mapping(out)
    }

    fn dns_subdomain(&mut self, s: &str, path: &str) {
        if s.len() > 253 || !DNS1123_SUBDOMAIN.is_match(s) {
            self.error(
                path,
                format!(
                    "must be a lower case RFC 1123 subdomain (letters, digits, '-' and '.', \
                     starting and ending with a letter or digit, at most 253 characters), got {}",
                    preview(s)
                ),
            );
        }
    }

    fn qualified_name(&mut self, key: &str, path: &str) -> bool {
        let (prefix, name) = match key.rsplit_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, key),
        };
        let prefix_ok = prefix.is_none_or(|p| p.len() <= 253 && DNS1123_SUBDOMAIN.is_match(p));
        let name_ok = name.len() <= 63 && QUALIFIED_NAME.is_match(name);
        if !(prefix_ok && name_ok) {
            self.error(
                path,
                format!(
                    "key {} is not a qualified name (an optional DNS subdomain prefix and '/', \
                     then at most 63 letters, digits, '-', '_' or '.', starting and ending \
                     with a letter or digit)",
                    preview(key)
                ),
            );
        }
        prefix_ok && name_ok
    }

    /// `metadata.labels` or `metadata.annotations`.
    fn meta_map(&mut self, v: &Value, path: &str, labels: bool) {
        let Some(map) = v.as_mapping() else {
            self.type_error(path, "a mapping", v);
            return;
        };
        let mut total = 0usize;
        for (k, val) in map {
            let Some(key) = key_string(k) else {
                self.error(path, format!("keys must be strings, got {}", describe(k)));
                continue;
            };
            let p = format!("{path}[{key}]");
            let checked_key = if labels {
                key.clone()
            } else {
                key.to_lowercase()
            };
            self.qualified_name(&checked_key, &p);
            let val = self.untag(val, &p);
            let Some(s) = val.as_str() else {
                if !val.is_null() {
                    self.type_error(&p, "a string", val);
                }
                continue;
            };
            total += key.len() + s.len();
            if labels && !s.is_empty() && (s.len() > 63 || !QUALIFIED_NAME.is_match(s)) {
                self.error(
                    &p,
                    format!(
                        "label value {} must be at most 63 letters, digits, '-', '_' or '.', \
                         starting and ending with a letter or digit",
                        preview(s)
                    ),
                );
            }
        }
        if !labels && total > 256 * 1024 {
            self.error(
                path,
                format!("annotations total {total} bytes, more than the 256 KiB allowed"),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points for values and policies

fn skipped(kind: Option<String>, name: Option<String>, note: String) -> Validation {
    Validation {
        kind,
        name,
        namespace: None,
        outcome: Outcome::Skipped,
        errors: Vec::new(),
        warnings: Vec::new(),
        note: Some(note),
        policy: None,
    }
}

/// Validates one parsed document (already free of YAML merge keys). Documents that are not
/// KubeArmor policies are `Skipped`.
pub fn validate_value(value: &Value) -> Validation {
    let mut w = Walker::default();
    let value = w.untag(value, "");
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let namespace = value
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let kind_str = value
        .get("kind")
        .and_then(Value::as_str)
        .map(str::to_string);
    let api = value.get("apiVersion").and_then(Value::as_str);

    let finish = |w: Walker, kind: Option<String>, policy: Option<Policy>| {
        let outcome = if w.errors.is_empty() {
            Outcome::Valid
        } else {
            Outcome::Invalid
        };
        Validation {
            kind,
            name: name.clone(),
            namespace: namespace.clone(),
            outcome,
            errors: w.errors,
            warnings: w.warnings,
            note: None,
            policy,
        }
    };

    let Some(map) = value.as_mapping() else {
        w.error(
            "",
            format!(
                "a Kubernetes object must be a mapping, got {} (is this a YAML file?)",
                describe(value)
            ),
        );
        return finish(w, None, None);
    };
    let kind = match map.get("kind").map(|k| (k, k.as_str())) {
        None | Some((Value::Null, _)) => {
            w.error("kind", "required field is missing");
            return finish(w, None, None);
        }
        Some((k, None)) => {
            w.type_error("kind", "a string", k);
            return finish(w, None, None);
        }
        Some((_, Some(s))) => match PolicyKind::from_kind(s) {
            Some(k) => k,
            None => {
                if let Some(k) = PolicyKind::ALL
                    .into_iter()
                    .find(|k| k.as_str().eq_ignore_ascii_case(s))
                {
                    w.error(
                        "kind",
                        format!("must be {k}, got {} (kinds are case-sensitive)", preview(s)),
                    );
                    return finish(w, kind_str, None);
                }
                let api = api.unwrap_or("");
                let note = if api.split('/').next() == Some(API_GROUP) {
                    format!("{api} {s}: not one of the three policy kinds this command checks")
                } else {
                    format!("not a KubeArmor policy ({api} {s})")
                };
                return skipped(kind_str, name.clone(), note);
            }
        },
    };

    let mut out = Mapping::new();
    match map.get("apiVersion").map(|a| w.untag(a, "apiVersion")) {
        None | Some(Value::Null) => w.error("apiVersion", "required field is missing"),
        Some(Value::String(a)) if a == API_VERSION => {}
        Some(Value::String(a)) => w.error(
            "apiVersion",
            format!("must be {API_VERSION}, got {}", preview(a)),
        ),
        Some(other) => w.type_error("apiVersion", "a string", other),
    }
    out.insert("apiVersion".into(), API_VERSION.into());
    out.insert("kind".into(), kind.as_str().into());
    out.insert("metadata".into(), w.metadata(map.get("metadata"), kind));
    for (k, v) in map {
        let Some(key) = key_string(k) else {
            w.error("", format!("keys must be strings, got {}", describe(k)));
            continue;
        };
        match key.as_str() {
            "apiVersion" | "kind" | "metadata" => {}
            "spec" => {
                if w.untag(v, "spec").is_null() {
                    w.warn("spec", NULL_DROPPED);
                } else {
                    let spec = w.check(v, &Ty::Obj(spec_of(kind)), "spec");
                    out.insert("spec".into(), spec);
                }
            }
            "status" => w.warn(
                "status",
                "written by KubeArmor: the API server ignores it when the policy is applied",
            ),
            _ => w.unknown(&key, &key, &ROOT),
        }
    }
    if !w.errors.is_empty() {
        return finish(w, kind_str, None);
    }
    match serde_yaml::from_value::<Policy>(Value::Mapping(out)) {
        Ok(policy) => {
            lint(&policy, &mut w);
            finish(w, kind_str, Some(policy))
        }
        Err(e) => {
            // The walk and the model disagree: a bug, reported rather than hidden.
            w.error(
                "",
                format!("internal: the policy model cannot hold this document: {e}"),
            );
            finish(w, kind_str, None)
        }
    }
}

/// Validates a policy built in code (serialised first, exactly as it would be applied).
pub fn validate_policy(policy: &Policy) -> Validation {
    match serde_yaml::to_value(policy) {
        Ok(v) => validate_value(&v),
        Err(e) => {
            let mut w = Walker::default();
            w.error("", format!("cannot serialise the policy: {e}"));
            Validation {
                kind: Some(policy.kind.as_str().to_string()),
                name: Some(policy.metadata.name.clone()),
                namespace: policy.metadata.namespace.clone(),
                outcome: Outcome::Invalid,
                errors: w.errors,
                warnings: w.warnings,
                note: None,
                policy: None,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Warnings about valid policies

fn dup_warning<T: PartialEq>(w: &mut Walker, items: &[T], path: &str) {
    for (i, item) in items.iter().enumerate() {
        if let Some(j) = items[..i].iter().position(|x| x == item) {
            w.warn(format!("{path}[{i}]"), format!("identical to {path}[{j}]"));
        }
    }
}

fn no_action(
    w: &mut Walker,
    policy: &Policy,
    rule: Option<Action>,
    section: Option<Action>,
    path: &str,
    section_path: &str,
) {
    if policy.effective_action(rule, section).is_none() {
        w.warn(
            path,
            format!("no action: set action on the rule, on {section_path} or on spec"),
        );
    }
}

fn empty_sources(w: &mut Walker, sources: &[Source], path: &str) {
    for (i, s) in sources.iter().enumerate() {
        if s.path.as_deref().unwrap_or("").is_empty() {
            w.warn(
                format!("{path}.fromSource[{i}]"),
                "no path: KubeArmor ignores this source",
            );
        }
    }
}

/// What a cluster accepts but KubeArmor will not do as written.
fn lint(policy: &Policy, w: &mut Walker) {
    let spec = &policy.spec;
    if !spec.has_rules() {
        w.warn("spec", "the policy has no rules");
    }
    if let Some(sel) = &spec.selector {
        for (i, e) in sel.match_expressions.iter().enumerate() {
            if e.key == Some(ExpressionKey::Label) {
                for (j, v) in e.values.iter().enumerate() {
                    if !v.contains('=') {
                        w.warn(
                            format!("spec.selector.matchExpressions[{i}].values[{j}]"),
                            "label expressions take key=value",
                        );
                    }
                }
            }
        }
    }
    if let Some(p) = &spec.process {
        let base = "spec.process";
        for (i, r) in p.match_paths.iter().enumerate() {
            let at = format!("{base}.matchPaths[{i}]");
            if r.path.is_none() && r.execname.is_none() {
                w.warn(&at, "neither path nor execname: the rule matches nothing");
            }
            no_action(w, policy, r.action, p.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        for (i, r) in p.match_directories.iter().enumerate() {
            let at = format!("{base}.matchDirectories[{i}]");
            no_action(w, policy, r.action, p.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        for (i, r) in p.match_patterns.iter().enumerate() {
            let at = format!("{base}.matchPatterns[{i}]");
            no_action(w, policy, r.action, p.action, &at, base);
        }
        dup_warning(w, &p.match_paths, "spec.process.matchPaths");
        dup_warning(w, &p.match_directories, "spec.process.matchDirectories");
        dup_warning(w, &p.match_patterns, "spec.process.matchPatterns");
    }
    if let Some(f) = &spec.file {
        let base = "spec.file";
        for (i, r) in f.match_paths.iter().enumerate() {
            let at = format!("{base}.matchPaths[{i}]");
            no_action(w, policy, r.action, f.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        for (i, r) in f.match_directories.iter().enumerate() {
            let at = format!("{base}.matchDirectories[{i}]");
            no_action(w, policy, r.action, f.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        for (i, r) in f.match_patterns.iter().enumerate() {
            let at = format!("{base}.matchPatterns[{i}]");
            no_action(w, policy, r.action, f.action, &at, base);
        }
        dup_warning(w, &f.match_paths, "spec.file.matchPaths");
        dup_warning(w, &f.match_directories, "spec.file.matchDirectories");
        dup_warning(w, &f.match_patterns, "spec.file.matchPatterns");
    }
    if let Some(n) = &spec.network {
        let base = "spec.network";
        for (i, r) in n.match_protocols.iter().enumerate() {
            let at = format!("{base}.matchProtocols[{i}]");
            no_action(w, policy, r.action, n.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        for (i, r) in n.match_dns_queries.iter().enumerate() {
            let at = format!("{base}.matchDNSQueries[{i}]");
            no_action(w, policy, r.action, n.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        dup_warning(w, &n.match_protocols, "spec.network.matchProtocols");
    }
    if let Some(c) = &spec.capabilities {
        let base = "spec.capabilities";
        for (i, r) in c.match_capabilities.iter().enumerate() {
            let at = format!("{base}.matchCapabilities[{i}]");
            no_action(w, policy, r.action, c.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        dup_warning(
            w,
            &c.match_capabilities,
            "spec.capabilities.matchCapabilities",
        );
    }
    if let Some(d) = &spec.device {
        let base = "spec.device";
        for (i, r) in d.match_device.iter().enumerate() {
            let at = format!("{base}.matchDevice[{i}]");
            no_action(w, policy, r.action, d.action, &at, base);
        }
    }
    if let Some(s) = &spec.syscalls {
        for (i, r) in s.match_syscalls.iter().enumerate() {
            if r.syscalls.is_empty() {
                w.warn(
                    format!("spec.syscalls.matchSyscalls[{i}]"),
                    "no syscall listed: the rule matches nothing",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
