//! The walk of a document against the schema: pruning, dropped nulls, type and pattern checks.

use super::*;

pub(super) const NULL_DROPPED: &str =
    "null: the API server drops this field (Kubernetes 1.20 and later; older servers reject it)";

pub(super) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn preview(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// How a value is described in a type error.
pub(super) fn describe(v: &Value) -> String {
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
pub(super) fn as_integer(v: &Value) -> Option<i128> {
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
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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
pub(super) fn closest_field(obj: &Obj, key: &str) -> Option<&'static Field> {
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

pub(super) fn key_string(k: &Value) -> Option<String> {
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
pub(super) struct Walker {
    pub(super) errors: Vec<Finding>,
    pub(super) warnings: Vec<Finding>,
}

impl Walker {
    pub(super) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Finding {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(super) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Finding {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(super) fn type_error(&mut self, path: &str, expected: &str, v: &Value) {
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
    pub(super) fn untag<'v>(&mut self, v: &'v Value, path: &str) -> &'v Value {
        let mut v = v;
        while let Value::Tagged(t) = v {
            self.warn(path, format!("the YAML tag {} is ignored", t.tag));
            v = &t.value;
        }
        v
    }

    /// Checks `v` against `ty` and returns it as the cluster would store it.
    pub(super) fn check(&mut self, v: &Value, ty: &Ty, path: &str) -> Value {
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

    pub(super) fn int(
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

    pub(super) fn text(&mut self, s: &str, t: Text, path: &str) {
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
    pub(super) fn normalised(&mut self, s: &str, path: &str) {
        if s.contains("//") || s.contains("/./") || s.contains("/../") || s.ends_with("/..") {
            self.warn(
                path,
                "not a normalised path (\"//\", \"/./\" or \"/../\"): KubeArmor sees resolved \
                 paths, so this may never match",
            );
        }
    }

    pub(super) fn object(&mut self, v: &Value, obj: &Obj, path: &str) -> Value {
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

    pub(super) fn unknown(&mut self, path: &str, key: &str, obj: &Obj) {
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

    pub(super) fn string_map(&mut self, v: &Value, path: &str) -> Value {
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
    pub(super) fn metadata(&mut self, v: Option<&Value>, kind: PolicyKind) -> Value {
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

    pub(super) fn dns_subdomain(&mut self, s: &str, path: &str) {
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

    pub(super) fn qualified_name(&mut self, key: &str, path: &str) -> bool {
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
    pub(super) fn meta_map(&mut self, v: &Value, path: &str, labels: bool) {
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
