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

mod entry_points;
mod files;
mod report;
mod schema;
mod walk;
mod warnings;

pub use entry_points::{validate_policy, validate_value};
pub use files::{validate_documents, validate_path};
pub use report::{Finding, Outcome, PolicyReport, Validation};
pub use schema::MAX_PATH_CHARS;
use schema::*;
use walk::*;
use warnings::*;

#[cfg(test)]
mod tests;
