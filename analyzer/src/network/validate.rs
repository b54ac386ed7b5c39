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

use super::model::{Cidr, CILIUM_ENTITIES};
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

const CILIUM_PROTOCOLS: &[&str] = &[
    "TCP", "UDP", "SCTP", "ICMP", "ICMPv6", "VRRP", "IGMP", "ANY",
];

fn is_cilium_port(s: &str) -> bool {
    match s.parse::<u32>() {
        Ok(n) => n <= 65535 && !s.starts_with('0') || s == "0",
        Err(_) => is_port_name(&s.to_ascii_lowercase()),
    }
}

fn is_fqdn(s: &str, pattern: bool) -> bool {
    !s.is_empty()
        && s.split_terminator('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (pattern && b == b'*')
                })
        })
}

fn check_cilium_rule(c: &mut Check, v: &Value, path: &str, dir: &str, deny: bool) {
    let Some(m) = c.map(v, path) else { return };
    let mut known: Vec<String> = [
        "Endpoints",
        "CIDR",
        "CIDRSet",
        "Entities",
        "Requires",
        "Groups",
        "Nodes",
    ]
    .iter()
    .map(|k| format!("{dir}{k}"))
    .collect();
    known.extend(["toPorts".to_string(), "icmps".into()]);
    if !deny {
        known.push("authentication".into());
    }
    if dir == "to" && !deny {
        known.extend(["toFQDNs".to_string(), "toServices".into()]);
    }
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    for (k, v) in c.fields(m, path, &known) {
        let p = join(path, &k);
        let suffix = if k == "toPorts" {
            "Ports"
        } else {
            k.strip_prefix(dir).unwrap_or(&k)
        };
        match suffix {
            "Endpoints" | "Requires" | "Nodes" => {
                for (i, s) in c.list(v, &p).iter().enumerate() {
                    check_selector(c, s, &format!("{p}[{i}]"));
                }
            }
            "CIDR" => {
                for (i, s) in c.list(v, &p).iter().enumerate() {
                    check_cidr(c, s, &format!("{p}[{i}]"));
                }
            }
            "CIDRSet" => {
                for (i, s) in c.list(v, &p).iter().enumerate() {
                    let sp = format!("{p}[{i}]");
                    let Some(sm) = c.map(s, &sp) else { continue };
                    let f = c.fields(sm, &sp, &["cidr", "cidrGroupRef", "except"]);
                    let cidr = f
                        .iter()
                        .find(|(k, _)| k == "cidr")
                        .and_then(|(_, v)| check_cidr(c, v, &join(&sp, "cidr")));
                    if let Some((_, ex)) = f.iter().find(|(k, _)| k == "except") {
                        for (j, e) in c.list(ex, &join(&sp, "except")).iter().enumerate() {
                            let ep = format!("{sp}.except[{j}]");
                            if let (Some(e), Some(cidr)) = (check_cidr(c, e, &ep), cidr) {
                                if !cidr.covers(&e) {
                                    c.warn(
                                        &ep,
                                        format!("outside cidr {cidr}: it excludes nothing"),
                                    );
                                }
                            }
                        }
                    }
                }
            }
            "Entities" => {
                for (i, s) in c.list(v, &p).iter().enumerate() {
                    match s.as_str() {
                        Some(e) if CILIUM_ENTITIES.contains(&e) => {}
                        Some(e) => c.err(
                            &format!("{p}[{i}]"),
                            format!(
                                "Unsupported value {e:?}: supported values are {}",
                                CILIUM_ENTITIES.join(", ")
                            ),
                        ),
                        None => c.err(&format!("{p}[{i}]"), "must be a string"),
                    }
                }
            }
            "FQDNs" => {
                for (i, s) in c.list(v, &p).iter().enumerate() {
                    let sp = format!("{p}[{i}]");
                    let Some(sm) = c.map(s, &sp) else { continue };
                    let f = c.fields(sm, &sp, &["matchName", "matchPattern"]);
                    if f.is_empty() {
                        c.err(&sp, "needs matchName or matchPattern");
                    }
                    for (k, v) in f {
                        if let Some(s) = c.string(v, &join(&sp, &k)) {
                            if !is_fqdn(s, k == "matchPattern") {
                                c.err(
                                    &join(&sp, &k),
                                    format!("{s:?} does not match the CRD's pattern"),
                                );
                            }
                        }
                    }
                }
            }
            "Ports" => {
                for (i, tp) in c.list(v, &p).iter().enumerate() {
                    let tpp = format!("{p}[{i}]");
                    let Some(tm) = c.map(tp, &tpp) else { continue };
                    let f = c.fields(
                        tm,
                        &tpp,
                        &[
                            "ports",
                            "rules",
                            "terminatingTLS",
                            "originatingTLS",
                            "serverNames",
                            "listener",
                        ],
                    );
                    for (k, v) in f {
                        if k != "ports" {
                            continue;
                        }
                        let pp = join(&tpp, "ports");
                        for (j, port) in c.list(v, &pp).iter().enumerate() {
                            let ppp = format!("{pp}[{j}]");
                            let Some(pm) = c.map(port, &ppp) else {
                                continue;
                            };
                            let pf = c.fields(pm, &ppp, &["port", "endPort", "protocol"]);
                            if !pf.iter().any(|(k, _)| k == "port") {
                                c.err(&join(&ppp, "port"), "required field is missing");
                            }
                            for (k, v) in pf {
                                let kp = join(&ppp, &k);
                                match (k.as_str(), v) {
                                    ("port", Value::String(s)) if is_cilium_port(s) => {}
                                    ("port", Value::String(s)) => {
                                        c.err(&kp, format!("{s:?} is not a port number or name"))
                                    }
                                    ("port", other) => c.err(
                                        &kp,
                                        format!("must be a string (quote the number), got {}", kind_of(other)),
                                    ),
                                    ("endPort", Value::Number(n))
                                        if n.as_u64().is_some_and(|n| n <= 65535) => {}
                                    ("endPort", other) => c.err(
                                        &kp,
                                        format!("must be an integer 0-65535, got {}", kind_of(other)),
                                    ),
                                    ("protocol", Value::String(s))
                                        if CILIUM_PROTOCOLS.contains(&s.as_str()) => {}
                                    ("protocol", other) => c.err(
                                        &kp,
                                        format!(
                                            "Unsupported value {}: supported values are TCP, UDP, SCTP, ICMP, ICMPv6, VRRP, IGMP, ANY",
                                            serde_json::to_string(other).unwrap_or_default()
                                        ),
                                    ),
                                    _ => {}
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

fn check_cilium_spec(c: &mut Check, v: &Value, path: &str) {
    let Some(spec) = c.map(v, path) else {
        c.err(path, "required field is missing");
        return;
    };
    let f = c.fields(
        spec,
        path,
        &[
            "endpointSelector",
            "nodeSelector",
            "ingress",
            "ingressDeny",
            "egress",
            "egressDeny",
            "labels",
            "description",
            "enableDefaultDeny",
        ],
    );
    let sels = f
        .iter()
        .filter(|(k, _)| k == "endpointSelector" || k == "nodeSelector")
        .count();
    if sels != 1 {
        c.err(
            path,
            "needs exactly one of endpointSelector and nodeSelector",
        );
    }
    for (k, v) in f {
        let p = join(path, &k);
        match k.as_str() {
            "endpointSelector" | "nodeSelector" => check_selector(c, v, &p),
            "ingress" | "ingressDeny" | "egress" | "egressDeny" => {
                let dir = if k.starts_with("ingress") {
                    "from"
                } else {
                    "to"
                };
                for (i, r) in c.list(v, &p).iter().enumerate() {
                    check_cilium_rule(c, r, &format!("{p}[{i}]"), dir, k.ends_with("Deny"));
                }
            }
            "description" => {
                c.string(v, &p);
            }
            _ => {}
        }
    }
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
            c.err("", e);
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
