//! A small, generic checker of Kubernetes structural OpenAPI v3 schemas, used as the reference
//! verdict in conformance tests. It knows nothing about KubeArmor: it reads a CRD file and
//! applies, in the API server's order, status dropping (status subresource), pruning of
//! unknown fields, pruning of non-nullable nulls (Kubernetes 1.20+), then schema validation
//! (`type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, `pattern`,
//! `minLength`/`maxLength`, `minimum`/`maximum` with their `exclusive*` flags,
//! `minItems`/`maxItems`, `nullable`). `format` is not checked, as the API server does not check
//! integer formats.
//!
//! Paths: `a.b` for properties, `a[0]` for items, `a[key]` for additionalProperties.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use regex::Regex;
use serde_yaml::{Mapping, Value};

/// One CRD version's schema.
pub struct Crd {
    /// `group/version`.
    pub api_version: String,
    /// `spec.names.kind`.
    pub kind: String,
    /// `openAPIV3Schema`.
    pub schema: Value,
    /// Whether the status subresource is enabled (then `status` is ignored on create).
    pub status_subresource: bool,
}

/// The reference verdict on one object.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Schema violations.
    pub errors: Vec<String>,
    /// Unknown fields the server drops.
    pub pruned_unknown: Vec<String>,
    /// Non-nullable nulls the server drops.
    pub pruned_nulls: Vec<String>,
}

/// All CRDs of a directory, by (apiVersion, kind).
pub struct Crds {
    crds: HashMap<(String, String), Crd>,
    regexes: std::cell::RefCell<HashMap<String, Regex>>,
}

impl Crds {
    /// Reads every `*.yaml` CRD in `dir`.
    pub fn load(dir: &Path) -> Crds {
        let mut crds = HashMap::new();
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let text = std::fs::read_to_string(&path).expect("read CRD");
            let doc: Value = serde_yaml::from_str(&text).expect("parse CRD");
            assert_eq!(
                doc["kind"],
                "CustomResourceDefinition",
                "{}",
                path.display()
            );
            let group = doc["spec"]["group"].as_str().expect("group");
            let kind = doc["spec"]["names"]["kind"].as_str().expect("kind");
            for v in doc["spec"]["versions"].as_sequence().expect("versions") {
                if v["served"] != Value::Bool(true) {
                    continue;
                }
                let name = v["name"].as_str().expect("version name");
                let crd = Crd {
                    api_version: format!("{group}/{name}"),
                    kind: kind.to_string(),
                    schema: v["schema"]["openAPIV3Schema"].clone(),
                    status_subresource: v
                        .get("subresources")
                        .and_then(|s| s.get("status"))
                        .is_some(),
                };
                crds.insert((crd.api_version.clone(), crd.kind.clone()), crd);
            }
        }
        Crds {
            crds,
            regexes: Default::default(),
        }
    }

    /// The CRDs.
    pub fn all(&self) -> impl Iterator<Item = &Crd> {
        self.crds.values()
    }

    /// The CRD of `kind`.
    pub fn by_kind(&self, kind: &str) -> Option<&Crd> {
        self.crds.values().find(|c| c.kind == kind)
    }

    /// The verdict on `object`, or `None` when no CRD serves its apiVersion and kind.
    /// `prune_nulls` chooses between Kubernetes 1.20+ (true) and plain OpenAPI (false).
    pub fn check(&self, object: &Value, prune_nulls: bool) -> Option<Verdict> {
        let api = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        let crd = self.crds.get(&(api.to_string(), kind.to_string()))?;
        let mut obj = object.clone();
        let mut verdict = Verdict::default();
        if crd.status_subresource {
            if let Some(m) = obj.as_mapping_mut() {
                m.remove("status");
            }
        }
        prune_unknown(&mut obj, &crd.schema, "", true, &mut verdict.pruned_unknown);
        if prune_nulls {
            prune_null_values(&mut obj, Some(&crd.schema), "", &mut verdict.pruned_nulls);
        }
        self.validate(&obj, &crd.schema, "", &mut verdict.errors);
        Some(verdict)
    }

    fn regex(&self, pattern: &str) -> Regex {
        let mut cache = self.regexes.borrow_mut();
        cache
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).expect("CRD pattern compiles"))
            .clone()
    }

    fn validate(&self, v: &Value, s: &Value, path: &str, errors: &mut Vec<String>) {
        let nullable = s.get("nullable") == Some(&Value::Bool(true));
        if v.is_null() {
            if !nullable {
                if let Some(t) = s.get("type").and_then(Value::as_str) {
                    errors.push(format!("{path}: must be of type {t}, got null"));
                }
            }
            return;
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            let ok = match t {
                "object" => v.is_mapping(),
                "array" => v.is_sequence(),
                "string" => v.is_string(),
                "boolean" => v.is_bool(),
                "integer" => is_integer(v),
                "number" => v.is_number(),
                other => panic!("unsupported schema type {other}"),
            };
            if !ok {
                errors.push(format!("{path}: must be of type {t}"));
                return;
            }
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_sequence) {
            if !allowed.contains(v) {
                errors.push(format!("{path}: not in enum"));
            }
        }
        if let Some(text) = v.as_str() {
            if let Some(p) = s.get("pattern").and_then(Value::as_str) {
                if !self.regex(p).is_match(text) {
                    errors.push(format!("{path}: does not match {p}"));
                }
            }
            let chars = text.chars().count() as u64;
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
                if chars > max {
                    errors.push(format!("{path}: longer than {max}"));
                }
            }
            if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
                if chars < min {
                    errors.push(format!("{path}: shorter than {min}"));
                }
            }
        }
        if let Some(n) = number(v) {
            let exclusive = |k: &str| s.get(k) == Some(&Value::Bool(true));
            if let Some(min) = s.get("minimum").and_then(number) {
                if n < min || (exclusive("exclusiveMinimum") && n == min) {
                    errors.push(format!("{path}: below minimum {min}"));
                }
            }
            if let Some(max) = s.get("maximum").and_then(number) {
                if n > max || (exclusive("exclusiveMaximum") && n == max) {
                    errors.push(format!("{path}: above maximum {max}"));
                }
            }
        }
        if let Some(items) = v.as_sequence() {
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
                if items.len() as u64 > max {
                    errors.push(format!("{path}: more than {max} items"));
                }
            }
            if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
                if (items.len() as u64) < min {
                    errors.push(format!("{path}: fewer than {min} items"));
                }
            }
            if let Some(item_schema) = s.get("items") {
                for (i, x) in items.iter().enumerate() {
                    self.validate(x, item_schema, &format!("{path}[{i}]"), errors);
                }
            }
        }
        if let Some(map) = v.as_mapping() {
            let props = s.get("properties").and_then(Value::as_mapping);
            for r in s
                .get("required")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                if !map.contains_key(r) {
                    errors.push(format!(
                        "{}: required",
                        join(path, r.as_str().unwrap_or(""))
                    ));
                }
            }
            for (k, x) in map {
                let key = key_text(k);
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => self.validate(x, ps, &join(path, &key), errors),
                    None => {
                        if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_mapping()) {
                            self.validate(x, ap, &format!("{path}[{key}]"), errors);
                        }
                    }
                }
            }
        }
    }
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64()
                    .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
        }
        _ => false,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Structural pruning: drops fields a schema with `properties` does not declare (unless it
/// preserves unknown fields or has `additionalProperties`). `metadata` at the root is left to
/// the ObjectMeta handling, as the API server does.
fn prune_unknown(v: &mut Value, s: &Value, path: &str, root: bool, pruned: &mut Vec<String>) {
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match v {
        Value::Mapping(map) => {
            let props = s.get("properties").and_then(Value::as_mapping);
            let additional = s.get("additionalProperties").filter(|a| a.is_mapping());
            let keys: Vec<Value> = map.keys().cloned().collect();
            for k in keys {
                let key = key_text(&k);
                if root && (key == "metadata" || key == "apiVersion" || key == "kind") {
                    continue;
                }
                if let Some(ps) = props.and_then(|p| p.get(&k)) {
                    if let Some(x) = map.get_mut(&k) {
                        prune_unknown(x, ps, &join(path, &key), false, pruned);
                    }
                } else if let Some(ap) = additional {
                    if let Some(x) = map.get_mut(&k) {
                        prune_unknown(x, ap, &format!("{path}[{key}]"), false, pruned);
                    }
                } else if props.is_some() || s.get("type").and_then(Value::as_str) == Some("object")
                {
                    map.remove(&k);
                    pruned.push(join(path, &key));
                }
            }
        }
        Value::Sequence(items) => {
            if let Some(is) = s.get("items") {
                for (i, x) in items.iter_mut().enumerate() {
                    prune_unknown(x, is, &format!("{path}[{i}]"), false, pruned);
                }
            }
        }
        _ => {}
    }
}

/// `PruneNonNullableNullsWithoutDefaults`: a null object field whose schema is neither
/// `nullable` nor defaulted is removed; list items are not.
fn prune_null_values(v: &mut Value, s: Option<&Value>, path: &str, pruned: &mut Vec<String>) {
    match v {
        Value::Mapping(map) => {
            let keys: Vec<Value> = map.keys().cloned().collect();
            for k in keys {
                let key = key_text(&k);
                let (fs, child) = match s.and_then(|s| s.get("properties")).and_then(|p| p.get(&k))
                {
                    Some(fs) => (Some(fs), join(path, &key)),
                    None => (
                        s.and_then(|s| s.get("additionalProperties"))
                            .filter(|a| a.is_mapping()),
                        format!("{path}[{key}]"),
                    ),
                };
                let is_null = map.get(&k).is_some_and(Value::is_null);
                let droppable = fs.is_some_and(|fs| {
                    fs.get("nullable") != Some(&Value::Bool(true)) && fs.get("default").is_none()
                });
                if is_null && droppable {
                    map.remove(&k);
                    pruned.push(child);
                } else if let Some(x) = map.get_mut(&k) {
                    prune_null_values(x, fs, &child, pruned);
                }
            }
        }
        Value::Sequence(items) => {
            let is = s.and_then(|s| s.get("items"));
            for (i, x) in items.iter_mut().enumerate() {
                prune_null_values(x, is, &format!("{path}[{i}]"), pruned);
            }
        }
        _ => {}
    }
}

/// Every node path of `v` below `prefix` (a mapping key path), for mutation tests: each path
/// is a list of steps.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A mapping key.
    Key(Value),
    /// A list index.
    Index(usize),
}

/// All paths to nodes inside `v` (not `v` itself).
pub fn node_paths(v: &Value) -> Vec<Vec<Step>> {
    fn walk(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        match v {
            Value::Mapping(m) => {
                for (k, x) in m {
                    here.push(Step::Key(k.clone()));
                    out.push(here.clone());
                    walk(x, here, out);
                    here.pop();
                }
            }
            Value::Sequence(items) => {
                for (i, x) in items.iter().enumerate() {
                    here.push(Step::Index(i));
                    out.push(here.clone());
                    walk(x, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// The node at `path`, mutably.
pub fn node_mut<'v>(v: &'v mut Value, path: &[Step]) -> Option<&'v mut Value> {
    let mut cur = v;
    for step in path {
        cur = match (step, cur) {
            (Step::Key(k), Value::Mapping(m)) => m.get_mut(k)?,
            (Step::Index(i), Value::Sequence(s)) => s.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The schema of the node at `path` (following `properties`, `additionalProperties`, `items`).
pub fn schema_at<'s>(schema: &'s Value, path: &[Step]) -> Option<&'s Value> {
    let mut cur = schema;
    for step in path {
        cur = match step {
            Step::Key(k) => match cur.get("properties").and_then(|p| p.get(k)) {
                Some(s) => s,
                None => cur.get("additionalProperties").filter(|a| a.is_mapping())?,
            },
            Step::Index(_) => cur.get("items")?,
        };
    }
    Some(cur)
}

/// A printable path.
pub fn show(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(&key_text(k));
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// An empty mapping.
pub fn mapping() -> Mapping {
    Mapping::new()
}
