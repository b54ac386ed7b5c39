//! Offline validation of `NetworkPolicy` (networking.k8s.io/v1, as the API server's
//! validation does it) and `CiliumNetworkPolicy` (cilium.io/v2, its CRD's structural schema:
//! fields, types, enums and patterns), for `kubectl karmor validate`.
//!
//! Errors are what a cluster rejects: unknown fields (kubectl's strict field validation),
//! wrong types, missing required fields, names and label keys/values that are not
//! Kubernetes names, operators and their values, protocols, ports (1-65535 or an IANA service
//! name), `endPort` without a numeric `port` or below it, peers that mix `ipBlock` with
//! selectors or name no peer type, CIDRs that do not parse, `except` entries outside their
//! `cidr`, unknown Cilium entities, `toFQDNs` entries without a name or pattern.

use std::collections::BTreeSet;

use serde_yaml::{Mapping, Value};

use super::model::Cidr;
use crate::policy::{Finding, Outcome, Validation};

struct Check {
    errors: Vec<Finding>,
    warnings: Vec<Finding>,
    /// Cilium's CRD: selector keys are free strings (`k8s:…`, `io.kubernetes.…`).
    cilium: bool,
}

impl Check {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(Finding {
            path: path.to_string(),
            message: message.into(),
        });
    }

    fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(Finding {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// The mapping at `path`, or an error.
    fn map<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Mapping> {
        match v {
            Value::Mapping(m) => Some(m),
            Value::Null => None,
            other => {
                self.err(path, format!("must be an object, got {}", kind_of(other)));
                None
            }
        }
    }

    fn list<'a>(&mut self, v: &'a Value, path: &str) -> &'a [Value] {
        match v {
            Value::Sequence(s) => s,
            Value::Null => &[],
            other => {
                self.err(path, format!("must be a list, got {}", kind_of(other)));
                &[]
            }
        }
    }

    /// Checks that a mapping has only `known` keys; returns (key, value) pairs.
    fn fields<'a>(
        &mut self,
        m: &'a Mapping,
        path: &str,
        known: &[&str],
    ) -> Vec<(String, &'a Value)> {
        let mut out = Vec::new();
        for (k, v) in m {
            let Some(k) = k.as_str() else {
                self.err(path, "keys must be strings");
                continue;
            };
            if known.contains(&k) {
                out.push((k.to_string(), v));
            } else {
                self.err(&join(path, k), "unknown field");
            }
        }
        out
    }

    fn string<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a str> {
        match v {
            Value::String(s) => Some(s),
            other => {
                self.err(path, format!("must be a string, got {}", kind_of(other)));
                None
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "an object",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A DNS-1123 label: at most 63 lower-case alphanumerics or `-`, alphanumeric at both ends.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn is_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// A qualified name (a label or annotation key): `[prefix/]name`.
pub fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty() && is_dns_subdomain(prefix) && is_name_part(name)
        }
        None => is_name_part(s),
    }
}

/// A label value: empty, or a name part.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_name_part(s)
}

/// An IANA service name (a named port): at most 15 lower-case alphanumerics or `-`, at least
/// one letter, no `--`, alphanumeric at both ends.
pub fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.contains("--")
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn check_metadata(c: &mut Check, v: Option<&Value>) {
    let Some(v) = v else {
        c.err("metadata", "required field is missing");
        return;
    };
    let Some(m) = c.map(v, "metadata") else {
        c.err("metadata", "required field is missing");
        return;
    };
    let mut has_name = false;
    for (k, v) in m {
        match k.as_str() {
            Some("name") => {
                has_name = true;
                if let Some(s) = c.string(v, "metadata.name") {
                    if !is_dns_subdomain(s) {
                        c.err(
                            "metadata.name",
                            format!("{s:?} is not a DNS-1123 subdomain (lower-case alphanumerics, '-', '.', at most 253)"),
                        );
                    }
                }
            }
            Some("namespace") => {
                if let Some(s) = c.string(v, "metadata.namespace") {
                    if !is_dns_label(s) {
                        c.err(
                            "metadata.namespace",
                            format!("{s:?} is not a DNS-1123 label"),
                        );
                    }
                }
            }
            Some(key @ ("labels" | "annotations")) => {
                let path = format!("metadata.{key}");
                if let Some(m) = c.map(v, &path) {
                    for (lk, lv) in m {
                        let lk = lk.as_str().unwrap_or_default();
                        let p = format!("{path}[{lk}]");
                        if !is_qualified_name(lk) {
                            c.err(&p, "key is not a qualified name ([prefix/]name)");
                        }
                        match lv.as_str() {
                            Some(s) if key == "labels" && !is_label_value(s) => c.err(
                                &p,
                                format!("{s:?} is not a label value (at most 63 alphanumerics, '-', '_', '.')"),
                            ),
                            Some(_) => {}
                            None => c.err(&p, format!("must be a string, got {}", kind_of(lv))),
                        }
                    }
                }
            }
            Some(
                "generateName"
                | "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "deletionTimestamp"
                | "deletionGracePeriodSeconds"
                | "ownerReferences"
                | "finalizers"
                | "managedFields",
            ) => {}
            Some(other) => c.err(&format!("metadata.{other}"), "unknown field"),
            None => c.err("metadata", "keys must be strings"),
        }
    }
    if !has_name {
        c.err("metadata.name", "required field is missing");
    }
}

fn check_selector(c: &mut Check, v: &Value, path: &str) {
    let Some(m) = c.map(v, path) else { return };
    for (k, v) in c.fields(m, path, &["matchLabels", "matchExpressions"]) {
        let p = join(path, &k);
        if k == "matchLabels" {
            if let Some(m) = c.map(v, &p) {
                for (lk, lv) in m {
                    let lk = lk.as_str().unwrap_or_default();
                    let lp = format!("{p}[{lk}]");
                    if !c.cilium && !is_qualified_name(lk) {
                        c.err(&lp, "key is not a qualified name ([prefix/]name)");
                    }
                    match lv.as_str() {
                        Some(s) if !is_label_value(s) => {
                            c.err(&lp, format!("{s:?} is not a label value"))
                        }
                        Some(_) => {}
                        None => c.err(&lp, format!("must be a string, got {}", kind_of(lv))),
                    }
                }
            }
        } else {
            for (i, e) in c.list(v, &p).iter().enumerate() {
                let ep = format!("{p}[{i}]");
                let Some(em) = c.map(e, &ep) else { continue };
                let f = c.fields(em, &ep, &["key", "operator", "values"]);
                let get = |n: &str| f.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
                match get("key").map(|v| (v, v.as_str())) {
                    None => c.err(&join(&ep, "key"), "required field is missing"),
                    Some((_, Some(s))) if !c.cilium && !is_qualified_name(s) => {
                        c.err(&join(&ep, "key"), format!("{s:?} is not a qualified name"))
                    }
                    Some((v, None)) => c.err(
                        &join(&ep, "key"),
                        format!("must be a string, got {}", kind_of(v)),
                    ),
                    _ => {}
                }
                let values = get("values")
                    .map(|v| c.list(v, &join(&ep, "values")).len())
                    .unwrap_or(0);
                match get("operator").and_then(Value::as_str) {
                    None => c.err(&join(&ep, "operator"), "required field is missing"),
                    Some("In" | "NotIn") if values == 0 => c.err(
                        &join(&ep, "values"),
                        "must be specified when operator is In or NotIn",
                    ),
                    Some("Exists" | "DoesNotExist") if values > 0 => c.err(
                        &join(&ep, "values"),
                        "may not be specified when operator is Exists or DoesNotExist",
                    ),
                    Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
                    Some(o) => c.err(
                        &join(&ep, "operator"),
                        format!("{o:?} is not In, NotIn, Exists or DoesNotExist"),
                    ),
                }
            }
        }
    }
}

fn check_cidr(c: &mut Check, v: &Value, path: &str) -> Option<Cidr> {
    let s = c.string(v, path)?;
    match Cidr::parse(s) {
        Ok(x) => Some(x),
        Err(e) => {
            c.err(path, e);
            None
        }
    }
}

fn check_k8s_peer(c: &mut Check, v: &Value, path: &str) {
    let Some(m) = c.map(v, path) else {
        c.err(path, "must specify a peer");
        return;
    };
    let f = c.fields(m, path, &["podSelector", "namespaceSelector", "ipBlock"]);
    if f.is_empty() {
        c.err(
            path,
            "must specify a peer (podSelector, namespaceSelector or ipBlock)",
        );
    }
    if f.iter().any(|(k, _)| k == "ipBlock") && f.len() > 1 {
        c.err(
            path,
            "may not specify more than 1 peer type: ipBlock with a selector",
        );
    }
    for (k, v) in f {
        let p = join(path, &k);
        if k == "ipBlock" {
            let Some(b) = c.map(v, &p) else { continue };
            let bf = c.fields(b, &p, &["cidr", "except"]);
            let cidr = match bf.iter().find(|(k, _)| k == "cidr") {
                Some((_, v)) => check_cidr(c, v, &join(&p, "cidr")),
                None => {
                    c.err(&join(&p, "cidr"), "required field is missing");
                    None
                }
            };
            if let Some((_, ex)) = bf.iter().find(|(k, _)| k == "except") {
                for (i, e) in c.list(ex, &join(&p, "except")).iter().enumerate() {
                    let ep = format!("{p}.except[{i}]");
                    if let (Some(e), Some(cidr)) = (check_cidr(c, e, &ep), cidr) {
                        if !(cidr.covers(&e) && e.prefix > cidr.prefix) {
                            c.err(&ep, format!("must be a strict subset of cidr {cidr}"));
                        }
                    }
                }
            }
        } else {
            check_selector(c, v, &p);
        }
    }
}

fn check_k8s_ports(c: &mut Check, v: &Value, path: &str) {
    for (i, x) in c.list(v, path).iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(m) = c.map(x, &p) else { continue };
        let f = c.fields(m, &p, &["protocol", "port", "endPort"]);
        let get = |n: &str| f.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
        if let Some(proto) = get("protocol") {
            match proto.as_str() {
                Some("TCP" | "UDP" | "SCTP") => {}
                Some(s) => c.err(
                    &join(&p, "protocol"),
                    format!("Unsupported value {s:?}: supported values are TCP, UDP, SCTP"),
                ),
                None => c.err(&join(&p, "protocol"), "must be a string"),
            }
        }
        let mut number = None;
        match get("port") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => match n.as_u64() {
                Some(n @ 1..=65535) => number = Some(n),
                _ => c.err(&join(&p, "port"), format!("{n} is not between 1 and 65535")),
            },
            Some(Value::String(s)) => {
                if !is_port_name(s) {
                    c.err(
                        &join(&p, "port"),
                        format!("{s:?} is not a port name (IANA_SVC_NAME: at most 15 lower-case alphanumerics or '-', with a letter)"),
                    );
                }
            }
            Some(other) => c.err(
                &join(&p, "port"),
                format!("must be an integer or a string, got {}", kind_of(other)),
            ),
        }
        match get("endPort") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => match (n.as_u64(), number) {
                (Some(e @ 1..=65535), Some(start)) if e >= start => {}
                (Some(1..=65535), Some(start)) => c.err(
                    &join(&p, "endPort"),
                    format!("must be greater than or equal to port {start}"),
                ),
                (Some(1..=65535), None) => c.err(
                    &join(&p, "endPort"),
                    "may not be specified when port is not a number",
                ),
                _ => c.err(
                    &join(&p, "endPort"),
                    format!("{n} is not between 1 and 65535"),
                ),
            },
            Some(other) => c.err(
                &join(&p, "endPort"),
                format!("must be an integer, got {}", kind_of(other)),
            ),
        }
    }
}

fn check_k8s_spec(c: &mut Check, v: Option<&Value>) {
    let Some(spec) = v.and_then(|v| c.map(v, "spec")) else {
        c.err("spec", "required field is missing");
        return;
    };
    let f = c.fields(
        spec,
        "spec",
        &["podSelector", "ingress", "egress", "policyTypes"],
    );
    if !f.iter().any(|(k, _)| k == "podSelector") {
        c.err("spec.podSelector", "required field is missing");
    }
    for (k, v) in f {
        let p = join("spec", &k);
        match k.as_str() {
            "podSelector" => {
                if v.is_null() {
                    c.err(&p, "required field is missing (use {} to select every pod)");
                } else {
                    check_selector(c, v, &p);
                }
            }
            "policyTypes" => {
                let mut seen = BTreeSet::new();
                for (i, t) in c.list(v, &p).iter().enumerate() {
                    match t.as_str() {
                        Some(s @ ("Ingress" | "Egress")) => {
                            if !seen.insert(s) {
                                c.err(&format!("{p}[{i}]"), format!("Duplicate value {s:?}"));
                            }
                        }
                        _ => c.err(
                            &format!("{p}[{i}]"),
                            "Unsupported value: supported values are Ingress, Egress",
                        ),
                    }
                }
            }
            dir @ ("ingress" | "egress") => {
                let peer_key = if dir == "ingress" { "from" } else { "to" };
                for (i, r) in c.list(v, &p).iter().enumerate() {
                    let rp = format!("{p}[{i}]");
                    let Some(rm) = c.map(r, &rp) else { continue };
                    for (rk, rv) in c.fields(rm, &rp, &[peer_key, "ports"]) {
                        let pp = join(&rp, &rk);
                        if rk == "ports" {
                            check_k8s_ports(c, rv, &pp);
                        } else {
                            for (j, peer) in c.list(rv, &pp).iter().enumerate() {
                                check_k8s_peer(c, peer, &format!("{pp}[{j}]"));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// The structure of `CiliumNetworkPolicy` v2's `spec` (and each of `specs`), carried over from
/// Cilium's CRD (`pkg/k8s/apis/cilium.io/client/crds/v2/ciliumnetworkpolicies.yaml`): every
/// object's fields, their types, enums and the CRD's `oneOf`/`anyOf` requirements. A field not
/// in it is an unknown field, reported by path, as the API server's strict field validation
/// reports it.
mod cilium_crd {
    /// A node of the schema.
    #[derive(Debug, Clone, Copy)]
    pub enum S {
        /// Any string.
        Str,
        /// A boolean.
        Bool,
        /// An integer within bounds.
        Int(u64, u64),
        /// One of these strings.
        Enum(&'static [&'static str]),
        /// A CIDR string (`format: cidr`).
        Cidr,
        /// A port: a number 0-65535 or a port name, as a string.
        Port,
        /// A DNS name (`matchName`) or pattern (`matchPattern`), at most 255 characters.
        Fqdn { pattern: bool },
        /// An ICMP type: 0-255 or a type's name.
        IcmpType,
        /// A label selector (matchLabels, matchExpressions).
        Selector,
        /// A map of strings to strings.
        StrMap,
        /// A list of items, with its maxItems.
        List(&'static S, Option<usize>),
        /// An object.
        Obj(&'static Obj),
    }

    /// An object of the schema.
    #[derive(Debug)]
    pub struct Obj {
        /// Its fields.
        pub fields: &'static [(&'static str, S)],
        /// Fields that must be present.
        pub required: &'static [&'static str],
        /// Exactly one of these must be present (empty: no such rule).
        pub one_of: &'static [&'static str],
        /// At least one of these must be present (empty: no such rule).
        pub any_of: &'static [&'static str],
    }

    const fn obj(fields: &'static [(&'static str, S)]) -> Obj {
        Obj {
            fields,
            required: &[],
            one_of: &[],
            any_of: &[],
        }
    }

    /// Entities of the CRD's enum.
    pub const ENTITIES: &[&str] = &[
        "all",
        "world",
        "cluster",
        "host",
        "init",
        "ingress",
        "unmanaged",
        "remote-node",
        "health",
        "none",
        "kube-apiserver",
    ];
    /// Protocols of a port (ICMP is matched by `icmps`, not ports).
    pub const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP", "VRRP", "IGMP", "ANY"];

    const SECRET: Obj = Obj {
        required: &["name"],
        ..obj(&[("name", S::Str), ("namespace", S::Str)])
    };
    const TLS: Obj = Obj {
        required: &["secret"],
        ..obj(&[
            ("secret", S::Obj(&SECRET)),
            ("trustedCA", S::Str),
            ("certificate", S::Str),
            ("privateKey", S::Str),
        ])
    };
    const ENVOY_CONFIG: Obj = Obj {
        required: &["name"],
        ..obj(&[
            (
                "kind",
                S::Enum(&["CiliumEnvoyConfig", "CiliumClusterwideEnvoyConfig"]),
            ),
            ("name", S::Str),
        ])
    };
    const LISTENER: Obj = Obj {
        required: &["envoyConfig", "name"],
        ..obj(&[
            ("envoyConfig", S::Obj(&ENVOY_CONFIG)),
            ("name", S::Str),
            ("priority", S::Int(1, 100)),
        ])
    };
    const PORT: Obj = obj(&[
        ("port", S::Port),
        ("endPort", S::Int(0, 65535)),
        ("protocol", S::Enum(PROTOCOLS)),
    ]);
    const HEADER_MATCH: Obj = Obj {
        required: &["name"],
        ..obj(&[
            ("mismatch", S::Enum(&["LOG", "ADD", "DELETE", "REPLACE"])),
            ("name", S::Str),
            ("secret", S::Obj(&SECRET)),
            ("value", S::Str),
        ])
    };
    const HTTP: Obj = obj(&[
        ("headerMatches", S::List(&S::Obj(&HEADER_MATCH), None)),
        ("headers", S::List(&S::Str, None)),
        ("host", S::Str),
        ("method", S::Str),
        ("path", S::Str),
    ]);
    const FQDN: Obj = Obj {
        one_of: &["matchName", "matchPattern"],
        ..obj(&[
            ("matchName", S::Fqdn { pattern: false }),
            ("matchPattern", S::Fqdn { pattern: true }),
        ])
    };
    const L7_RULES: Obj = Obj {
        one_of: &["http", "dns"],
        ..obj(&[
            ("http", S::List(&S::Obj(&HTTP), None)),
            ("dns", S::List(&S::Obj(&FQDN), None)),
        ])
    };
    const PORT_RULE: Obj = obj(&[
        ("ports", S::List(&S::Obj(&PORT), Some(40))),
        ("rules", S::Obj(&L7_RULES)),
        ("listener", S::Obj(&LISTENER)),
        ("originatingTLS", S::Obj(&TLS)),
        ("terminatingTLS", S::Obj(&TLS)),
        ("serverNames", S::List(&S::Fqdn { pattern: true }, None)),
    ]);
    const PORT_DENY_RULE: Obj = obj(&[("ports", S::List(&S::Obj(&PORT), None))]);
    const ICMP_FIELD: Obj = Obj {
        required: &["type"],
        ..obj(&[
            ("family", S::Enum(&["IPv4", "IPv6"])),
            ("type", S::IcmpType),
        ])
    };
    const ICMP_RULE: Obj = obj(&[("fields", S::List(&S::Obj(&ICMP_FIELD), Some(40)))]);
    const CIDR_RULE: Obj = Obj {
        one_of: &["cidr", "cidrGroupRef", "cidrGroupSelector"],
        ..obj(&[
            ("cidr", S::Cidr),
            ("cidrGroupRef", S::Str),
            ("cidrGroupSelector", S::Selector),
            ("except", S::List(&S::Cidr, None)),
        ])
    };
    const AWS_GROUP: Obj = obj(&[
        ("labels", S::StrMap),
        ("region", S::Str),
        ("securityGroupsIds", S::List(&S::Str, None)),
        ("securityGroupsNames", S::List(&S::Str, None)),
    ]);
    const GROUP: Obj = obj(&[("aws", S::Obj(&AWS_GROUP))]);
    const K8S_SERVICE: Obj = obj(&[("namespace", S::Str), ("serviceName", S::Str)]);
    const K8S_SERVICE_SELECTOR: Obj = Obj {
        required: &["selector"],
        ..obj(&[("namespace", S::Str), ("selector", S::Selector)])
    };
    const SERVICE: Obj = obj(&[
        ("k8sService", S::Obj(&K8S_SERVICE)),
        ("k8sServiceSelector", S::Obj(&K8S_SERVICE_SELECTOR)),
    ]);
    const AUTHENTICATION: Obj = Obj {
        required: &["mode"],
        ..obj(&[(
            "mode",
            S::Enum(&["disabled", "required", "test-always-fail"]),
        )])
    };
    const SELECTORS: S = S::List(&S::Selector, None);
    const CIDRS: S = S::List(&S::Cidr, None);
    const CIDR_SET: S = S::List(&S::Obj(&CIDR_RULE), None);
    const ENTITY_LIST: S = S::List(&S::Enum(ENTITIES), None);
    const GROUPS: S = S::List(&S::Obj(&GROUP), None);
    const REQUIRES: S = S::List(&S::Str, Some(0));
    const ICMPS: S = S::List(&S::Obj(&ICMP_RULE), None);

    const INGRESS: Obj = obj(&[
        ("fromEndpoints", SELECTORS),
        ("fromRequires", REQUIRES),
        ("fromCIDR", CIDRS),
        ("fromCIDRSet", CIDR_SET),
        ("fromEntities", ENTITY_LIST),
        ("fromGroups", GROUPS),
        ("fromNodes", SELECTORS),
        ("toPorts", S::List(&S::Obj(&PORT_RULE), None)),
        ("icmps", ICMPS),
        ("authentication", S::Obj(&AUTHENTICATION)),
    ]);
    const INGRESS_DENY: Obj = obj(&[
        ("fromEndpoints", SELECTORS),
        ("fromRequires", REQUIRES),
        ("fromCIDR", CIDRS),
        ("fromCIDRSet", CIDR_SET),
        ("fromEntities", ENTITY_LIST),
        ("fromGroups", GROUPS),
        ("fromNodes", SELECTORS),
        ("toPorts", S::List(&S::Obj(&PORT_DENY_RULE), None)),
        ("icmps", ICMPS),
    ]);
    const EGRESS: Obj = obj(&[
        ("toEndpoints", SELECTORS),
        ("toRequires", REQUIRES),
        ("toCIDR", CIDRS),
        ("toCIDRSet", CIDR_SET),
        ("toEntities", ENTITY_LIST),
        ("toGroups", GROUPS),
        ("toNodes", SELECTORS),
        ("toServices", S::List(&S::Obj(&SERVICE), None)),
        ("toFQDNs", S::List(&S::Obj(&FQDN), None)),
        ("toPorts", S::List(&S::Obj(&PORT_RULE), None)),
        ("icmps", ICMPS),
        ("authentication", S::Obj(&AUTHENTICATION)),
    ]);
    const EGRESS_DENY: Obj = obj(&[
        ("toEndpoints", SELECTORS),
        ("toRequires", REQUIRES),
        ("toCIDR", CIDRS),
        ("toCIDRSet", CIDR_SET),
        ("toEntities", ENTITY_LIST),
        ("toGroups", GROUPS),
        ("toNodes", SELECTORS),
        ("toServices", S::List(&S::Obj(&SERVICE), None)),
        ("toPorts", S::List(&S::Obj(&PORT_DENY_RULE), None)),
        ("icmps", ICMPS),
    ]);
    const LABEL: Obj = Obj {
        required: &["key"],
        ..obj(&[("key", S::Str), ("source", S::Str), ("value", S::Str)])
    };
    const DEFAULT_DENY: Obj = obj(&[("egress", S::Bool), ("ingress", S::Bool)]);
    const LOG: Obj = obj(&[("value", S::Str)]);

    /// A rule: `spec`, or one of `specs`.
    pub const SPEC: Obj = Obj {
        fields: &[
            ("description", S::Str),
            ("endpointSelector", S::Selector),
            ("nodeSelector", S::Selector),
            ("ingress", S::List(&S::Obj(&INGRESS), None)),
            ("ingressDeny", S::List(&S::Obj(&INGRESS_DENY), None)),
            ("egress", S::List(&S::Obj(&EGRESS), None)),
            ("egressDeny", S::List(&S::Obj(&EGRESS_DENY), None)),
            ("enableDefaultDeny", S::Obj(&DEFAULT_DENY)),
            ("labels", S::List(&S::Obj(&LABEL), None)),
            ("log", S::Obj(&LOG)),
        ],
        required: &[],
        one_of: &["endpointSelector", "nodeSelector"],
        any_of: &["ingress", "ingressDeny", "egress", "egressDeny"],
    };
}

use cilium_crd::{Obj, S};

fn is_cilium_port(s: &str) -> bool {
    match s.parse::<u32>() {
        Ok(n) => n <= 65535 && !s.starts_with('0') || s == "0",
        Err(_) => is_port_name(&s.to_ascii_lowercase()),
    }
}

fn is_fqdn(s: &str, pattern: bool) -> bool {
    s.len() <= 255
        && !s.is_empty()
        && s.split_terminator('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (pattern && b == b'*')
                })
        })
}

/// ICMP type names the CRD's pattern accepts (IPv4 and IPv6).
const ICMP_TYPES: &[&str] = &[
    "EchoReply",
    "DestinationUnreachable",
    "Redirect",
    "Echo",
    "EchoRequest",
    "RouterAdvertisement",
    "RouterSelection",
    "TimeExceeded",
    "ParameterProblem",
    "Timestamp",
    "TimestampReply",
    "Photuris",
    "ExtendedEchoRequest",
    "ExtendedEchoReply",
    "PacketTooBig",
    "MulticastListenerQuery",
    "MulticastListenerReport",
    "MulticastListenerDone",
    "RouterSolicitation",
    "NeighborSolicitation",
    "NeighborAdvertisement",
    "RedirectMessage",
    "RouterRenumbering",
    "ICMPNodeInformationQuery",
    "ICMPNodeInformationResponse",
    "InverseNeighborDiscoverySolicitation",
    "InverseNeighborDiscoveryAdvertisement",
    "HomeAgentAddressDiscoveryRequest",
    "HomeAgentAddressDiscoveryReply",
    "MobilePrefixSolicitation",
    "MobilePrefixAdvertisement",
    "DuplicateAddressRequestCodeSuffix",
    "DuplicateAddressConfirmationCodeSuffix",
];

/// Checks `v` at `path` against the CRD schema node `s`.
fn check_crd(c: &mut Check, v: &Value, s: S, path: &str) {
    match s {
        S::Str => {
            c.string(v, path);
        }
        S::Bool => {
            if !v.is_bool() {
                c.err(path, format!("must be a boolean, got {}", kind_of(v)));
            }
        }
        S::Int(lo, hi) => match v.as_u64() {
            Some(n) if (lo..=hi).contains(&n) => {}
            Some(n) => c.err(path, format!("{n} is not between {lo} and {hi}")),
            None => c.err(
                path,
                format!("must be an integer {lo}-{hi}, got {}", kind_of(v)),
            ),
        },
        S::Enum(values) => match v.as_str() {
            Some(x) if values.contains(&x) => {}
            _ => c.err(
                path,
                format!(
                    "Unsupported value {}: supported values are {}",
                    serde_json::to_string(v).unwrap_or_default(),
                    values.join(", ")
                ),
            ),
        },
        S::Cidr => {
            check_cidr(c, v, path);
        }
        S::Port => match v {
            Value::String(x) if is_cilium_port(x) => {}
            Value::String(x) => c.err(path, format!("{x:?} is not a port number or name")),
            other => c.err(
                path,
                format!(
                    "must be a string (quote the number), got {}",
                    kind_of(other)
                ),
            ),
        },
        S::Fqdn { pattern } => {
            if let Some(x) = c.string(v, path) {
                if !is_fqdn(x, pattern) {
                    c.err(path, format!("{x:?} does not match the CRD's pattern"));
                }
            }
        }
        S::IcmpType => match v {
            Value::Number(n) if n.as_u64().is_some_and(|n| n <= 255) => {}
            Value::String(x)
                if ICMP_TYPES.contains(&x.as_str())
                    || x.parse::<u8>().is_ok_and(|n| n.to_string() == *x) => {}
            other => c.err(
                path,
                format!(
                    "{} is not an ICMP type (0-255 or a type's name such as EchoRequest)",
                    serde_json::to_string(other).unwrap_or_default()
                ),
            ),
        },
        S::Selector => check_selector(c, v, path),
        S::StrMap => {
            if let Some(m) = c.map(v, path) {
                for (k, x) in m {
                    let k = k.as_str().unwrap_or_default();
                    c.string(x, &format!("{path}[{k}]"));
                }
            }
        }
        S::List(item, max) => {
            let items = c.list(v, path);
            if let Some(max) = max.filter(|m| items.len() > *m) {
                c.err(
                    path,
                    if max == 0 {
                        "deprecated: must be empty".to_string()
                    } else {
                        format!("has {} items, at most {max} allowed", items.len())
                    },
                );
            }
            for (i, x) in items.iter().enumerate() {
                check_crd(c, x, *item, &format!("{path}[{i}]"));
            }
        }
        S::Obj(o) => check_crd_obj(c, v, o, path),
    }
}

fn check_crd_obj(c: &mut Check, v: &Value, o: &Obj, path: &str) {
    let Some(m) = c.map(v, path) else { return };
    let names: Vec<&str> = o.fields.iter().map(|(n, _)| *n).collect();
    let present = c.fields(m, path, &names);
    let has = |n: &str| present.iter().any(|(k, _)| k == n);
    for r in o.required {
        if !has(r) {
            c.err(&join(path, r), "required field is missing");
        }
    }
    if !o.one_of.is_empty() && o.one_of.iter().filter(|n| has(n)).count() != 1 {
        c.err(
            path,
            format!("needs exactly one of {}", o.one_of.join(", ")),
        );
    }
    if !o.any_of.is_empty() && !o.any_of.iter().any(|n| has(n)) {
        c.err(
            path,
            format!("needs at least one of {}", o.any_of.join(", ")),
        );
    }
    for (k, x) in &present {
        if let Some((_, s)) = o.fields.iter().find(|(n, _)| n == k) {
            check_crd(c, x, *s, &join(path, k));
        }
    }
    // Beyond the schema: an `except` outside its `cidr` excludes nothing.
    if let (Some((_, cidr)), Some((_, except))) = (
        present.iter().find(|(k, _)| k == "cidr"),
        present.iter().find(|(k, _)| k == "except"),
    ) {
        let cidr = cidr.as_str().and_then(|s| Cidr::parse(s).ok());
        for (j, e) in except.as_sequence().into_iter().flatten().enumerate() {
            if let (Some(cidr), Some(e)) = (cidr, e.as_str().and_then(|s| Cidr::parse(s).ok())) {
                if !cidr.covers(&e) {
                    c.warn(
                        &format!("{path}.except[{j}]"),
                        format!("outside cidr {cidr}: it excludes nothing"),
                    );
                }
            }
        }
    }
}

fn check_cilium_spec(c: &mut Check, v: &Value, path: &str) {
    if v.is_null() {
        c.err(path, "required field is missing");
        return;
    }
    check_crd_obj(c, v, &cilium_crd::SPEC, path);
}

/// Validates a `NetworkPolicy` or `CiliumNetworkPolicy` document.
pub fn validate_network_value(value: &Value) -> Validation {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut c = Check {
        errors: Vec::new(),
        warnings: Vec::new(),
        cilium: kind.as_deref() == Some("CiliumNetworkPolicy"),
    };
    let meta = value.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let (api, known): (&str, &[&str]) = match kind.as_deref() {
        Some("NetworkPolicy") => (
            "networking.k8s.io/v1",
            &["apiVersion", "kind", "metadata", "spec"],
        ),
        _ => (
            "cilium.io/v2",
            &["apiVersion", "kind", "metadata", "spec", "specs", "status"],
        ),
    };
    if let Some(m) = c.map(value, "") {
        c.fields(m, "", known);
    }
    match value.get("apiVersion").and_then(Value::as_str) {
        Some(a) if a == api => {}
        Some(a) => c.err("apiVersion", format!("must be {api}, got {a:?}")),
        None => c.err("apiVersion", "required field is missing"),
    }
    check_metadata(&mut c, meta);
    if kind.as_deref() == Some("NetworkPolicy") {
        check_k8s_spec(&mut c, value.get("spec"));
        if namespace.is_none() {
            c.warn(
                "metadata.namespace",
                "not set: the policy goes to the namespace kubectl applies it in",
            );
        }
    } else {
        match (value.get("spec"), value.get("specs")) {
            (None, None) => c.err("spec", "spec or specs is required"),
            (spec, specs) => {
                if let Some(s) = spec {
                    check_cilium_spec(&mut c, s, "spec");
                }
                if let Some(list) = specs {
                    for (i, s) in c.list(list, "specs").iter().enumerate() {
                        check_cilium_spec(&mut c, s, &format!("specs[{i}]"));
                    }
                }
            }
        }
    }
    if c.errors.is_empty() && value.get("spec").is_some() {
        if let Err(e) = super::model::parse_policy(value) {
            if c.cilium {
                // Valid for the CRD; what the simulator does not model (CIDR groups, node
                // selectors) is not the cluster's concern.
                c.warn("", format!("valid, but simulate cannot replay it: {e}"));
            } else {
                c.err("", e);
            }
        }
    }
    Validation {
        kind,
        name,
        namespace,
        outcome: if c.errors.is_empty() {
            Outcome::Valid
        } else {
            Outcome::Invalid
        },
        errors: c.errors,
        warnings: c.warnings,
        note: None,
        policy: None,
    }
}
