//! Conformance of our KubeArmor policy validator with the CRD schemas.
//!
//! The reference is `common/openapi.rs`: a generic structural-schema checker that reads the
//! CRDs in `../shared/kubearmor/crds/` and knows nothing about KubeArmor. Our validator is
//! hand-written. They must agree, document by document:
//!
//! 1. on all 150 real policies in `../shared/kubearmor/policies/`;
//! 2. on about 32,000 mutations of those policies (every node under `spec` replaced,
//!    deleted, or given a sibling field, with values chosen to hit every kind of check);
//! 3. on what a cluster silently drops (unknown fields and nulls), which we report as warnings.

#[path = "common/openapi.rs"]
mod openapi;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use karmor_analyzer::policy::names::{CAPABILITIES, PROTOCOLS, SYSCALLS};
use karmor_analyzer::policy::{validate_documents, validate_value, Outcome};
use openapi::{node_mut, node_paths, schema_at, show, Crds, Step};
use serde::Deserialize;
use serde_yaml::Value;

/// Documents the CRD schemas reject on a Kubernetes 1.20+ API server, as the generic checker
/// computes them (asserted below), and why.
const EXPECTED_INVALID: &[(&str, &str)] = &[
    (
        "tests__nonk8s_env__host_policy__res__hsp-audit-network-protocol.yaml",
        "spec.network.matchProtocols[0].fromSource: required in a KubeArmorHostPolicy",
    ),
    (
        "tests__nonk8s_env__host_policy__res__hsp-block-process-dir-bin.yaml",
        "spec.process.matchDirectories[0].dir: /usr/bin does not end in /",
    ),
];

/// Documents with `null` where the schema wants an object or a list (templates with an empty
/// `spec:` or `matchExpressions:`). Plain OpenAPI validation, and API servers before 1.20,
/// reject them; since 1.20 the server drops the null field first and accepts them. We follow
/// current servers and warn.
const NULL_FIELDS: &[(&str, &str)] = &[
    (
        "pkg__KubeArmorController__config__samples__security_v1_kubearmorpolicy.yaml",
        "spec",
    ),
    (
        "pkg__KubeArmorOperator__recommend__harden-k8s-client-tool-exec.yaml",
        "spec.selector.matchExpressions",
    ),
    (
        "pkg__KubeArmorOperator__recommend__harden-maint-tools-access.yaml",
        "spec.selector.matchExpressions",
    ),
    (
        "pkg__KubeArmorOperator__recommend__harden-remote-services.yaml",
        "spec.selector.matchExpressions",
    ),
    (
        "pkg__KubeArmorOperator__recommend__harden-write-etc-dir.yaml",
        "spec.selector.matchExpressions",
    ),
    (
        "pkg__KubeArmorOperator__recommend__harden-write-under-dev-dir.yaml",
        "spec.selector.matchExpressions",
    ),
];

fn shared(sub: &str) -> PathBuf {
    let p = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/kubearmor"
    ))
    .join(sub);
    assert!(
        p.is_dir(),
        "KubeArmor reference data expected at {} (the shared directory beside the clone); \
         these tests cannot run without it",
        p.display()
    );
    p
}

fn crds() -> Crds {
    let crds = Crds::load(&shared("crds"));
    assert_eq!(crds.all().count(), 3, "three CRDs expected");
    crds
}

/// Every policy file: (file name, text, parsed documents).
fn corpus() -> Vec<(String, String, Vec<Value>)> {
    let dir = shared("policies");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read policies")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        150,
        "150 reference policies expected in {}",
        dir.display()
    );
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("read policy");
            let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
                .map(|d| {
                    let mut v = Value::deserialize(d).expect("reference policies are YAML");
                    v.apply_merge().expect("merge keys");
                    v
                })
                .filter(|v| !v.is_null())
                .collect();
            let name = f
                .file_name()
                .and_then(|n| n.to_str())
                .expect("file name")
                .to_string();
            (name, text, docs)
        })
        .collect()
}

#[test]
fn every_reference_policy_gets_the_crd_verdict() {
    let crds = crds();
    let mut invalid_reference = BTreeSet::new();
    let mut invalid_plain_openapi = BTreeSet::new();
    let mut invalid_ours = BTreeSet::new();
    let mut documents = 0;
    let mut disagreements = Vec::new();
    for (name, text, docs) in corpus() {
        let ours = validate_documents(&text, Path::new(&name));
        assert_eq!(ours.len(), docs.len(), "{name}: one report per document");
        for (doc, report) in docs.iter().zip(&ours) {
            documents += 1;
            let reference = crds
                .check(doc, true)
                .unwrap_or_else(|| panic!("{name}: no CRD for this document"));
            let plain = crds.check(doc, false).expect("CRD");
            if !reference.errors.is_empty() {
                invalid_reference.insert(name.clone());
            }
            if !plain.errors.is_empty() {
                invalid_plain_openapi.insert(name.clone());
            }
            if report.outcome == Outcome::Invalid {
                invalid_ours.insert(name.clone());
            }
            assert_ne!(report.outcome, Outcome::Skipped, "{name}");
            if reference.errors.is_empty() != (report.outcome == Outcome::Valid) {
                disagreements.push(format!(
                    "{name}: CRD says {:?}, we say {:?} {:?}",
                    reference.errors, report.outcome, report.errors
                ));
            }
            // What the cluster drops, we warn about, at the same paths.
            let warned = |needle: &str| -> BTreeSet<String> {
                report
                    .warnings
                    .iter()
                    .filter(|w| w.message.starts_with(needle))
                    .map(|w| w.path.clone())
                    .collect()
            };
            assert_eq!(
                warned("unknown field"),
                reference.pruned_unknown.iter().cloned().collect(),
                "{name}: unknown-field warnings"
            );
            assert_eq!(
                warned("null"),
                reference.pruned_nulls.iter().cloned().collect(),
                "{name}: null warnings"
            );
            if report.outcome == Outcome::Valid {
                assert!(report.policy.is_some(), "{name}: valid but no model");
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert_eq!(documents, 150);

    let expected: BTreeSet<String> = EXPECTED_INVALID
        .iter()
        .map(|(f, _)| f.to_string())
        .collect();
    assert_eq!(invalid_reference, expected, "the CRD's verdict changed");
    assert_eq!(invalid_ours, expected);
    let with_nulls: BTreeSet<String> = expected
        .iter()
        .cloned()
        .chain(NULL_FIELDS.iter().map(|(f, _)| f.to_string()))
        .collect();
    assert_eq!(
        invalid_plain_openapi, with_nulls,
        "without null pruning, exactly the templates with null fields are rejected as well"
    );
}

#[test]
fn invalid_reference_policies_fail_for_the_expected_reason() {
    let dir = shared("policies");
    for (file, why) in EXPECTED_INVALID {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        let reports = validate_documents(&text, Path::new(file));
        let errors: Vec<String> = reports.iter().flat_map(|r| r.error_messages()).collect();
        let field = why.split(':').next().expect("field");
        assert_eq!(errors.len(), 1, "{file}: {errors:?}");
        assert!(
            errors[0].contains("document 1 (KubeArmorHostPolicy "),
            "{errors:?}"
        );
        assert!(
            errors[0].contains(&format!("): {field}: ")),
            "{file}: {errors:?}"
        );
    }
    for (file, field) in NULL_FIELDS {
        let text = std::fs::read_to_string(dir.join(file)).expect("read");
        let r = validate_documents(&text, Path::new(file));
        assert_eq!(r[0].outcome, Outcome::Valid, "{file}");
        assert!(
            r[0].warnings
                .iter()
                .any(|w| w.path == *field && w.message.starts_with("null")),
            "{file}: {:?}",
            r[0].warnings
        );
    }
}

/// Values that exercise every check: paths, directories, names, enums, bounds, types, nulls.
fn pool() -> Vec<Value> {
    let yaml = r#"
- null
- ""
- "/"
- "/a"
- "/a/"
- "a"
- "a/b"
- "/a\nb"
- "/a\n/"
- "Allow"
- "Block"
- "block"
- "tcp"
- "TCP"
- "Tcp"
- "xtcp"
- "icmpv6"
- "net_raw"
- "NET_RAW"
- "cap_net_raw"
- "unlink"
- "Unlink"
- "label"
- "namespace"
- "In"
- "NotIn"
- "Exists"
- 0
- 1
- 10
- 11
- -1
- 2.0
- 2.5
- true
- false
- []
- {}
- [null]
- [{}]
- ["a"]
- ["/a/"]
- [1]
- [{path: /a}]
- [{path: a}]
- [{dir: /a/}]
- [{dir: /a}]
- [{path: /a, dir: /b/}]
- {path: /a}
- {a: b}
- {a: null}
- {a: 1}
"#;
    let mut v: Vec<Value> = serde_yaml::from_str(yaml).expect("pool");
    v.push(Value::from(format!("/{}", "a".repeat(199))));
    v.push(Value::from(format!("/{}", "a".repeat(200))));
    v.push(Value::Sequence(
        (0..21).map(|i| Value::from(format!("x{i}"))).collect(),
    ));
    v
}

fn verdicts_agree(crds: &Crds, doc: &Value, what: &str, failures: &mut Vec<String>) {
    let reference = crds.check(doc, true).expect("CRD");
    let ours = validate_value(doc);
    if reference.errors.is_empty() != (ours.outcome == Outcome::Valid) {
        failures.push(format!(
            "{what}\n  CRD: {:?}\n  ours: {:?} {:?}",
            reference.errors, ours.outcome, ours.errors
        ));
    }
}

/// A tiny deterministic generator, so that the sample is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// One change to a document.
enum Mutation {
    /// Replace the node at the path with a pool value.
    Replace(Vec<Step>, usize),
    /// Remove the node from its mapping or list.
    Delete(Vec<Step>),
    /// Add a field (absent so far) with a pool value to the mapping at the path.
    Insert(Vec<Step>, Value, usize),
}

impl Mutation {
    /// The mutated document and a description, or `None` when the mutation does not apply.
    fn apply(&self, doc: &Value, pool: &[Value]) -> Option<(String, Value)> {
        let mut m = doc.clone();
        let what = match self {
            Mutation::Replace(path, v) => {
                *node_mut(&mut m, path)? = pool[*v].clone();
                format!("{} := {:?}", show(path), pool[*v])
            }
            Mutation::Delete(path) => {
                let (last, parent) = path.split_last()?;
                match (last, node_mut(&mut m, parent)?) {
                    (Step::Key(k), Value::Mapping(map)) => {
                        map.remove(k);
                    }
                    (Step::Index(i), Value::Sequence(items)) => {
                        items.remove(*i);
                    }
                    _ => return None,
                }
                format!("delete {}", show(path))
            }
            Mutation::Insert(path, field, v) => {
                let Value::Mapping(map) = node_mut(&mut m, path)? else {
                    return None;
                };
                if map.contains_key(field) {
                    return None;
                }
                map.insert(field.clone(), pool[*v].clone());
                format!(
                    "{}.{} += {:?}",
                    show(path),
                    field.as_str().unwrap_or(""),
                    pool[*v]
                )
            }
        };
        Some((what, m))
    }
}

#[test]
fn mutations_of_reference_policies_get_the_crd_verdict() {
    let crds = crds();
    let pool = pool();
    let mut rng = Lcg(0x6b61726d6f72);
    let mut failures = Vec::new();
    let mut cases = 0usize;
    let mut invalid_cases = 0usize;
    let mut by_outcome: BTreeMap<bool, usize> = BTreeMap::new();
    for (name, _, docs) in corpus() {
        for doc in docs {
            let kind = doc["kind"].as_str().expect("kind").to_string();
            let schema = &crds.by_kind(&kind).expect("crd").schema;
            let spec_paths: Vec<Vec<Step>> = node_paths(&doc)
                .into_iter()
                .filter(|p| p.first() == Some(&Step::Key(Value::from("spec"))))
                .collect();
            let mut candidates: Vec<Mutation> = Vec::new();
            for path in &spec_paths {
                for value in 0..pool.len() {
                    candidates.push(Mutation::Replace(path.clone(), value));
                }
                candidates.push(Mutation::Delete(path.clone()));
            }
            // Give every mapping under spec (and spec itself) each field its schema declares,
            // and one it does not declare, with pool values (fields already there are skipped).
            let mut mapping_paths: Vec<Vec<Step>> = vec![vec![Step::Key(Value::from("spec"))]];
            mapping_paths.extend(spec_paths.iter().cloned());
            for path in mapping_paths {
                let Some(s) = schema_at(schema, &path) else {
                    continue;
                };
                let mut fields: Vec<Value> = s
                    .get("properties")
                    .and_then(Value::as_mapping)
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default();
                fields.push(Value::from("zzUnknown"));
                let present = |f: &Value| {
                    let mut d = doc.clone();
                    matches!(node_mut(&mut d, &path), Some(Value::Mapping(m)) if m.contains_key(f))
                };
                for field in fields {
                    if present(&field) {
                        continue;
                    }
                    for value in 0..pool.len() {
                        candidates.push(Mutation::Insert(path.clone(), field.clone(), value));
                    }
                }
            }
            // Keep a deterministic sample of about 250 per document.
            let keep = 250usize;
            let n = candidates.len();
            for mutation in candidates {
                if n > keep && rng.next() % (n as u64) >= keep as u64 {
                    continue;
                }
                let Some((what, m)) = mutation.apply(&doc, &pool) else {
                    continue;
                };
                cases += 1;
                let reference_valid = crds.check(&m, true).expect("CRD").errors.is_empty();
                *by_outcome.entry(reference_valid).or_default() += 1;
                if !reference_valid {
                    invalid_cases += 1;
                }
                verdicts_agree(&crds, &m, &format!("{name}: {what}"), &mut failures);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} mutations disagree; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("{cases} mutations, {invalid_cases} of them invalid by the CRD: all agree");
    // The sample must exercise both verdicts substantially, or it proves little.
    assert!(cases > 30_000, "only {cases} mutations");
    assert!(
        invalid_cases > cases / 5,
        "{invalid_cases} invalid of {cases}"
    );
    assert!(cases - invalid_cases > cases / 5, "{by_outcome:?}");
}

#[test]
fn our_name_lists_are_the_crds() {
    let crds = crds();
    for crd in crds.all() {
        let spec = &crd.schema["properties"]["spec"]["properties"];
        let cap = spec["capabilities"]["properties"]["matchCapabilities"]["items"]["properties"]
            ["capability"]["pattern"]
            .as_str()
            .expect("capability pattern");
        assert_eq!(
            cap,
            format!("({})$", CAPABILITIES.join("|")),
            "{}",
            crd.kind
        );
        let proto = spec["network"]["properties"]["matchProtocols"]["items"]["properties"]
            ["protocol"]["pattern"]
            .as_str()
            .expect("protocol pattern");
        let alternatives: Vec<String> = PROTOCOLS
            .iter()
            .map(|p| format!("{p}|{}", p.to_uppercase()))
            .collect();
        assert_eq!(
            proto,
            format!("({})$", alternatives.join("|")),
            "{}",
            crd.kind
        );
        for list in ["matchSyscalls", "matchPaths"] {
            let names: Vec<&str> = spec["syscalls"]["properties"][list]["items"]["properties"]
                ["syscall"]["items"]["enum"]
                .as_sequence()
                .expect("syscall enum")
                .iter()
                .map(|v| v.as_str().expect("name"))
                .collect();
            assert_eq!(names, SYSCALLS, "{} {list}", crd.kind);
        }
    }
}

#[test]
fn every_crd_field_is_known_to_the_validator() {
    // A policy that sets every field each CRD declares (with a value its schema accepts) must
    // produce no unknown-field warning: our field tables cover the whole schema.
    fn fill(s: &Value) -> Value {
        match s.get("type").and_then(Value::as_str) {
            Some("object") => {
                let mut m = serde_yaml::Mapping::new();
                if let Some(props) = s.get("properties").and_then(Value::as_mapping) {
                    for (k, ps) in props {
                        m.insert(k.clone(), fill(ps));
                    }
                } else if s.get("additionalProperties").is_some() {
                    m.insert("app".into(), "web".into());
                }
                Value::Mapping(m)
            }
            Some("array") => Value::Sequence(vec![fill(&s["items"])]),
            Some("integer") => Value::from(3),
            Some("boolean") => Value::from(true),
            _ => {
                if let Some(first) = s.get("enum").and_then(Value::as_sequence) {
                    return first[0].clone();
                }
                match s.get("pattern").and_then(Value::as_str) {
                    Some(p) if p.contains("chown") => "net_raw".into(),
                    Some(p) if p.contains("tcp") => "tcp".into(),
                    Some(p) if p.starts_with(r"^\/$") || p.contains(r"|(^\/$") => "/d/".into(),
                    Some(r"^[^\/]+$") => "ls".into(),
                    Some(_) => "/a/b".into(),
                    None => "text".into(),
                }
            }
        }
    }
    let crds = crds();
    for crd in crds.all() {
        let mut doc = fill(&crd.schema);
        doc["apiVersion"] = crd.api_version.clone().into();
        doc["kind"] = crd.kind.clone().into();
        doc["metadata"] = serde_yaml::from_str("{name: everything, namespace: ns}").expect("meta");
        if let Some(m) = doc.as_mapping_mut() {
            m.remove("status");
        }
        let reference = crds.check(&doc, true).expect("CRD");
        assert!(
            reference.errors.is_empty(),
            "{}: {:?}",
            crd.kind,
            reference.errors
        );
        let ours = validate_value(&doc);
        assert_eq!(
            ours.outcome,
            Outcome::Valid,
            "{}: {:?}",
            crd.kind,
            ours.errors
        );
        let unknown: Vec<_> = ours
            .warnings
            .iter()
            .filter(|w| w.message.contains("unknown field"))
            .collect();
        assert!(unknown.is_empty(), "{}: {unknown:?}", crd.kind);
        // And the model keeps all of it: serialising it back gives the same document.
        let policy = ours.policy.expect("policy");
        let back = serde_yaml::to_value(&policy).expect("to value");
        let mut expected = doc.clone();
        if crd.kind != "KubeArmorPolicy" {
            // Cluster-scoped: the namespace is dropped.
            if let Some(m) = expected["metadata"].as_mapping_mut() {
                m.remove("namespace");
            }
        }
        assert_eq!(back, expected, "{}: model round trip", crd.kind);
    }
}
