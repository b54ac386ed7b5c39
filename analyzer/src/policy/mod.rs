//! KubeArmor policies: the serde model of the three policy kinds and a validator that checks
//! them the way a cluster does.
//!
//! - [`model`]: `KubeArmorPolicy`, `KubeArmorHostPolicy` and `KubeArmorClusterPolicy` as one
//!   [`Policy`] type with minimal, round-tripping YAML.
//! - [`validate`]: multi-document YAML files and directories checked against what the CRDs'
//!   structural schemas accept (plus what the API server checks in `metadata`), with errors that
//!   name the file, the document and the field path; what a cluster would silently drop is a
//!   warning.
//! - [`names`]: the capability, protocol and system-call names the CRDs accept.

pub mod model;
pub mod names;
pub mod validate;

use std::path::{Path, PathBuf};

pub use model::{
    Action, CapabilityRule, CapabilityRules, DeviceRule, DeviceRules, DnsQueryRule, ExpressionKey,
    ExpressionOperator, FileDirectoryRule, FilePathRule, FilePatternRule, FileRules,
    MatchExpression, NetworkRules, NodeSelector, ObjectMeta, Policy, PolicyKind, PolicySpec,
    PolicyStatus, Preset, ProcessDirectoryRule, ProcessPathRule, ProcessPatternRule, ProcessRules,
    ProtocolRule, Selector, Source, SyscallPathRule, SyscallRule, SyscallRules, SyscallSource,
    API_GROUP, API_VERSION,
};
pub use validate::{
    validate_documents, validate_path, validate_policy, validate_value, Finding, Outcome,
    PolicyReport, Validation,
};

/// Why policies could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// One or more documents are invalid; each line names file, document and field.
    #[error("invalid policies:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// No policy document was found under the path.
    #[error("{0}: no KubeArmor policy found")]
    Empty(PathBuf),
}

/// Loads every policy in a file or directory (see [`validate_path`]). Documents of other kinds
/// are skipped; any invalid document makes the whole load fail, listing all problems.
pub fn load_policies(path: &Path) -> Result<Vec<Policy>, PolicyError> {
    let reports = validate_path(path);
    let problems: Vec<String> = reports
        .iter()
        .filter(|r| r.outcome == Outcome::Invalid)
        .flat_map(PolicyReport::error_messages)
        .collect();
    if !problems.is_empty() {
        return Err(PolicyError::Invalid(problems));
    }
    let policies: Vec<Policy> = reports.into_iter().filter_map(|r| r.policy).collect();
    if policies.is_empty() {
        return Err(PolicyError::Empty(path.to_path_buf()));
    }
    Ok(policies)
}
