//! Entry points for values and policies.

use super::*;

pub(super) fn skipped(kind: Option<String>, name: Option<String>, note: String) -> Validation {
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
        Some((_, Some("NetworkPolicy" | "CiliumNetworkPolicy"))) => {
            return crate::network::validate::validate_network_value(value);
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
