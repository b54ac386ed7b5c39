//! Reports: findings at field paths, with their severity, per document and per file.

use super::*;

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
    pub(super) fn from_validation(
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

    pub(super) fn file_problem(file: &Path, outcome: Outcome, message: String) -> PolicyReport {
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
