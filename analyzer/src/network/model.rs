//! Network policies as the simulator reads them: Kubernetes `NetworkPolicy`
//! (networking.k8s.io/v1) and Cilium's `CiliumNetworkPolicy` (cilium.io/v2), both parsed into
//! one model of selectors, directions and rules.
//!
//! The model keeps what decides a connection: which pods a policy selects, whether it isolates
//! them for ingress and for egress, and its rules (peers and ports). Parsing is strict about
//! what the simulator needs (a selector it cannot read is an error naming the field) and
//! ignores the rest.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_yaml::Value;

/// Which side of a connection a rule speaks of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Direction {
    /// Connections the pod accepts.
    Ingress,
    /// Connections the pod opens.
    Egress,
}

impl Direction {
    /// `Ingress` or `Egress`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }
}

/// A Kubernetes label selector: `matchLabels` and `matchExpressions`, ANDed. An empty
/// selector selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// Exact key=value matches.
    pub match_labels: BTreeMap<String, String>,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist` expressions.
    pub expressions: Vec<Expression>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values of `In`/`NotIn`.
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether the labels (`key=value` strings or a map) satisfy the selector.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|e| {
                let got = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => got.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => got.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => got.is_some(),
                    "DoesNotExist" => got.is_none(),
                    _ => false,
                }
            })
    }

    /// Whether the selector is empty (selects everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.expressions.is_empty()
    }
}

/// Labels as a map, from `key=value` strings (a key without `=` gets an empty value).
pub fn label_map<I, S>(labels: I) -> BTreeMap<String, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    labels
        .into_iter()
        .map(|l| match l.as_ref().split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.as_ref().to_string(), String::new()),
        })
        .collect()
}

/// An address range: a CIDR and the ranges cut out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpBlock {
    /// The range, e.g. `10.0.0.0/8`.
    pub cidr: Cidr,
    /// Ranges inside it that do not match.
    pub except: Vec<Cidr>,
}

impl IpBlock {
    /// Whether `ip` is in the block and in none of its exceptions.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.cidr.contains(ip) && !self.except.iter().any(|c| c.contains(ip))
    }
}

/// A parsed CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address (host bits as written).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n` or `x::y/n`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (ADDRESS/PREFIX)"))?;
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?} is not a CIDR: {a:?} is not an IP address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| format!("{s:?} is not a CIDR: bad prefix {p:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("{s:?}: prefix longer than {max}"));
        }
        Ok(Cidr { addr, prefix })
    }

    /// The CIDR of one address (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
        }
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                (u32::from(n) & mask) == (u32::from(i) & mask)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                (u128::from(n) & mask) == (u128::from(i) & mask)
            }
            _ => false,
        }
    }

    /// Whether `other` lies entirely inside this range.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Cilium's entities a rule may name (`toEntities`/`fromEntities`).
pub const CILIUM_ENTITIES: &[&str] = &[
    "all",
    "world",
    "world-ipv4",
    "world-ipv6",
    "cluster",
    "host",
    "remote-node",
    "kube-apiserver",
    "health",
    "init",
    "ingress",
    "unmanaged",
    "none",
];

/// One peer of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerSelector {
    /// Pods by namespace and labels. `namespaces: None` = the policy's own namespace.
    Pods {
        /// Namespaces by their labels; `None` = the policy's namespace only.
        namespaces: Option<LabelSelector>,
        /// Pods by their labels; `None` = every pod of the selected namespaces.
        pods: Option<LabelSelector>,
    },
    /// An address range.
    Block(IpBlock),
    /// A Cilium entity (`world`, `cluster`, `host`, `remote-node`, `kube-apiserver`, `all`).
    Entity(String),
    /// A Cilium `toFQDNs` entry: an exact name or a `*` pattern.
    Fqdn {
        /// `matchName` (exact) or `matchPattern` (with `*`).
        pattern: String,
        /// Whether it is a pattern.
        is_pattern: bool,
    },
}

/// A port (or range) and protocol of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSelector {
    /// `TCP`, `UDP`, `SCTP`, or `ANY` (Cilium).
    pub protocol: String,
    /// The port, or `None` for every port of the protocol.
    pub port: Option<PortValue>,
    /// The last port of a range.
    pub end_port: Option<u16>,
}

/// A number or a named container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortValue {
    /// A port number.
    Number(u16),
    /// A named port (`http`): resolved against the destination pod's container ports, as
    /// the pods table records them (pods schema 1.1); without them the simulator cannot
    /// decide ([`PortSelector::matches_with`]).
    Named(String),
}

impl PortSelector {
    /// Whether a connection to `port` over `proto` (lower case) matches.
    pub fn matches(&self, proto: &str, port: u16) -> bool {
        self.matches_with(proto, port, &[]).unwrap_or(false)
    }

    /// [`PortSelector::matches`], resolving a named port through the destination pod's
    /// container ports (`PROTO/PORT/NAME` entries of the pods table): `None` when the port is
    /// named and those ports are not known, so whether it matches cannot be decided.
    pub fn matches_with(&self, proto: &str, port: u16, dest_ports: &[String]) -> Option<bool> {
        let proto_ok = self.protocol == "ANY" || self.protocol.eq_ignore_ascii_case(proto);
        if !proto_ok {
            return Some(false);
        }
        match &self.port {
            None => Some(true),
            Some(PortValue::Named(name)) => {
                if dest_ports.is_empty() {
                    return None;
                }
                Some(
                    dest_ports
                        .iter()
                        .filter_map(|e| karmor_contract::pods::parse_pod_port(e))
                        .any(|(pr, n, nm)| {
                            pr.eq_ignore_ascii_case(proto)
                                && n == port
                                && nm.as_deref() == Some(name.as_str())
                        }),
                )
            }
            Some(PortValue::Number(p)) => Some(match self.end_port {
                Some(end) => (*p..=end).contains(&port),
                None => *p == port,
            }),
        }
    }
}

/// One rule: from (or to) any of `peers`, on any of `ports`. `None` means "every".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// Peers; `None` (or an empty list, in NetworkPolicy) = every peer.
    pub peers: Option<Vec<PeerSelector>>,
    /// Ports; `None` = every port.
    pub ports: Option<Vec<PortSelector>>,
    /// Deny rule (Cilium `ingressDeny`/`egressDeny`): a match drops, whatever allows.
    pub deny: bool,
}

/// The API a policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum NetKind {
    /// networking.k8s.io/v1 NetworkPolicy.
    NetworkPolicy,
    /// cilium.io/v2 CiliumNetworkPolicy.
    CiliumNetworkPolicy,
}

/// A network policy, in the simulator's model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPolicy {
    /// Where it came from.
    pub kind: NetKind,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (`default` when absent, as kubectl would apply it).
    pub namespace: String,
    /// Which pods of the namespace it selects.
    pub selector: LabelSelector,
    /// Ingress rules when it isolates the pods for ingress (an empty list denies all).
    pub ingress: Option<Vec<Rule>>,
    /// Egress rules when it isolates the pods for egress.
    pub egress: Option<Vec<Rule>>,
}

impl NetPolicy {
    /// `NAMESPACE/NAME`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The rules of one direction, when the policy isolates the pods for it.
    pub fn rules(&self, d: Direction) -> Option<&Vec<Rule>> {
        match d {
            Direction::Ingress => self.ingress.as_ref(),
            Direction::Egress => self.egress.as_ref(),
        }
    }
}

/// Whether a YAML document is a network policy this module reads, by `kind`.
pub fn is_network_policy(doc: &Value) -> bool {
    matches!(
        doc.get("kind").and_then(Value::as_str),
        Some("NetworkPolicy" | "CiliumNetworkPolicy")
    )
}

fn at(path: &str, what: impl std::fmt::Display) -> String {
    format!("{path}: {what}")
}

fn str_map(v: &Value, path: &str) -> Result<BTreeMap<String, String>, String> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| {
                let k = k.as_str().ok_or_else(|| at(path, "keys must be strings"))?;
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(at(&format!("{path}.{k}"), "must be a string")),
                };
                Ok((k.to_string(), v))
            })
            .collect(),
        _ => Err(at(path, "must be a map of strings")),
    }
}

fn seq<'a>(v: &'a Value, path: &str) -> Result<&'a [Value], String> {
    match v {
        Value::Sequence(s) => Ok(s),
        Value::Null => Ok(&[]),
        _ => Err(at(path, "must be a list")),
    }
}

/// Parses a label selector (`matchLabels`, `matchExpressions`).
pub fn parse_selector(v: &Value, path: &str) -> Result<LabelSelector, String> {
    if v.is_null() {
        return Ok(LabelSelector::default());
    }
    if !v.is_mapping() {
        return Err(at(
            path,
            "must be a label selector (matchLabels, matchExpressions)",
        ));
    }
    let match_labels = match v.get("matchLabels") {
        Some(m) => str_map(m, &format!("{path}.matchLabels"))?,
        None => BTreeMap::new(),
    };
    let mut expressions = Vec::new();
    if let Some(e) = v.get("matchExpressions") {
        for (i, x) in seq(e, &format!("{path}.matchExpressions"))?
            .iter()
            .enumerate()
        {
            let p = format!("{path}.matchExpressions[{i}]");
            let key = x
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| at(&p, "key is required"))?;
            let operator = x
                .get("operator")
                .and_then(Value::as_str)
                .ok_or_else(|| at(&p, "operator is required"))?;
            if !matches!(operator, "In" | "NotIn" | "Exists" | "DoesNotExist") {
                return Err(at(
                    &format!("{p}.operator"),
                    format!("{operator:?} is not In, NotIn, Exists or DoesNotExist"),
                ));
            }
            let values = match x.get("values") {
                Some(v) => seq(v, &format!("{p}.values"))?
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| at(&format!("{p}.values"), "must be strings"))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                None => Vec::new(),
            };
            expressions.push(Expression {
                key: key.into(),
                operator: operator.into(),
                values,
            });
        }
    }
    Ok(LabelSelector {
        match_labels,
        expressions,
    })
}

fn parse_port_value(v: &Value, path: &str) -> Result<PortValue, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .map(PortValue::Number)
            .ok_or_else(|| at(path, format!("{n} is not a port (1-65535)"))),
        Value::String(s) => match s.parse::<u16>() {
            Ok(p) if p > 0 => Ok(PortValue::Number(p)),
            _ => Ok(PortValue::Named(s.clone())),
        },
        _ => Err(at(path, "must be a port number or name")),
    }
}

fn parse_block(v: &Value, path: &str, cidr_key: &str) -> Result<IpBlock, String> {
    let cidr = v
        .get(cidr_key)
        .and_then(Value::as_str)
        .ok_or_else(|| at(path, format!("{cidr_key} is required")))?;
    let cidr = Cidr::parse(cidr).map_err(|e| at(&format!("{path}.{cidr_key}"), e))?;
    let mut except = Vec::new();
    if let Some(e) = v.get("except") {
        for (i, x) in seq(e, &format!("{path}.except"))?.iter().enumerate() {
            let p = format!("{path}.except[{i}]");
            let s = x.as_str().ok_or_else(|| at(&p, "must be a CIDR"))?;
            except.push(Cidr::parse(s).map_err(|e| at(&p, e))?);
        }
    }
    Ok(IpBlock { cidr, except })
}

/// Parses one document into the model. `Ok(None)` for documents of other kinds.
pub fn parse_policy(doc: &Value) -> Result<Option<NetPolicy>, String> {
    let kind = match doc.get("kind").and_then(Value::as_str) {
        Some("NetworkPolicy") => NetKind::NetworkPolicy,
        Some("CiliumNetworkPolicy") => NetKind::CiliumNetworkPolicy,
        _ => return Ok(None),
    };
    let meta = doc.get("metadata").cloned().unwrap_or(Value::Null);
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .ok_or("metadata.name is required")?
        .to_string();
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let spec = doc.get("spec").ok_or("spec is required")?;
    match kind {
        NetKind::NetworkPolicy => parse_k8s(name, namespace, spec).map(Some),
        NetKind::CiliumNetworkPolicy => parse_cilium(name, namespace, spec).map(Some),
    }
}

fn parse_k8s(name: String, namespace: String, spec: &Value) -> Result<NetPolicy, String> {
    let selector = parse_selector(
        spec.get("podSelector")
            .ok_or("spec.podSelector is required")?,
        "spec.podSelector",
    )?;
    let types: Option<Vec<String>> = match spec.get("policyTypes") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            seq(v, "spec.policyTypes")?
                .iter()
                .map(|t| match t.as_str() {
                    Some(s @ ("Ingress" | "Egress")) => Ok(s.to_string()),
                    _ => Err(at("spec.policyTypes", "items must be Ingress or Egress")),
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    // policyTypes unset: Ingress always, Egress when the policy has an egress section.
    let has = |t: &str| match &types {
        Some(ts) => ts.iter().any(|x| x == t),
        None => t == "Ingress" || spec.get("egress").is_some_and(|e| !e.is_null()),
    };
    let rules = |key: &str, peer_key: &str| -> Result<Vec<Rule>, String> {
        let mut out = Vec::new();
        if let Some(v) = spec.get(key) {
            for (i, r) in seq(v, &format!("spec.{key}"))?.iter().enumerate() {
                let p = format!("spec.{key}[{i}]");
                let peers = match r.get(peer_key) {
                    None | Some(Value::Null) => None,
                    Some(v) => {
                        let list = seq(v, &format!("{p}.{peer_key}"))?;
                        if list.is_empty() {
                            None
                        } else {
                            let mut peers = Vec::new();
                            for (j, x) in list.iter().enumerate() {
                                peers.push(parse_k8s_peer(x, &format!("{p}.{peer_key}[{j}]"))?);
                            }
                            Some(peers)
                        }
                    }
                };
                let ports = match r.get("ports") {
                    None | Some(Value::Null) => None,
                    Some(v) => {
                        let list = seq(v, &format!("{p}.ports"))?;
                        if list.is_empty() {
                            None
                        } else {
                            let mut ports = Vec::new();
                            for (j, x) in list.iter().enumerate() {
                                let pp = format!("{p}.ports[{j}]");
                                let protocol = x
                                    .get("protocol")
                                    .and_then(Value::as_str)
                                    .unwrap_or("TCP")
                                    .to_string();
                                if !matches!(protocol.as_str(), "TCP" | "UDP" | "SCTP") {
                                    return Err(at(
                                        &format!("{pp}.protocol"),
                                        format!("{protocol:?} is not TCP, UDP or SCTP"),
                                    ));
                                }
                                let port = match x.get("port") {
                                    None | Some(Value::Null) => None,
                                    Some(v) => Some(parse_port_value(v, &format!("{pp}.port"))?),
                                };
                                let end_port = match x.get("endPort") {
                                    None | Some(Value::Null) => None,
                                    Some(v) => match parse_port_value(v, &format!("{pp}.endPort"))?
                                    {
                                        PortValue::Number(n) => Some(n),
                                        PortValue::Named(_) => {
                                            return Err(at(
                                                &format!("{pp}.endPort"),
                                                "must be a number",
                                            ))
                                        }
                                    },
                                };
                                ports.push(PortSelector {
                                    protocol,
                                    port,
                                    end_port,
                                });
                            }
                            Some(ports)
                        }
                    }
                };
                out.push(Rule {
                    peers,
                    ports,
                    deny: false,
                });
            }
        }
        Ok(out)
    };
    let ingress = if has("Ingress") {
        Some(rules("ingress", "from")?)
    } else {
        None
    };
    let egress = if has("Egress") {
        Some(rules("egress", "to")?)
    } else {
        None
    };
    Ok(NetPolicy {
        kind: NetKind::NetworkPolicy,
        name,
        namespace,
        selector,
        ingress,
        egress,
    })
}

fn parse_k8s_peer(v: &Value, path: &str) -> Result<PeerSelector, String> {
    if let Some(b) = v.get("ipBlock") {
        if v.get("podSelector").is_some() || v.get("namespaceSelector").is_some() {
            return Err(at(
                path,
                "ipBlock cannot be combined with podSelector or namespaceSelector",
            ));
        }
        return parse_block(b, &format!("{path}.ipBlock"), "cidr").map(PeerSelector::Block);
    }
    let namespaces = match v.get("namespaceSelector") {
        Some(s) => Some(parse_selector(s, &format!("{path}.namespaceSelector"))?),
        None => None,
    };
    let pods = match v.get("podSelector") {
        Some(s) => Some(parse_selector(s, &format!("{path}.podSelector"))?),
        None => None,
    };
    if namespaces.is_none() && pods.is_none() {
        return Err(at(
            path,
            "a peer needs podSelector, namespaceSelector or ipBlock",
        ));
    }
    Ok(PeerSelector::Pods { namespaces, pods })
}

/// Cilium's label of a pod's namespace, in endpoint selectors.
pub const CILIUM_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";

/// A Cilium endpoint selector as (namespace selector, pod selector): the
/// `k8s:io.kubernetes.pod.namespace` key moves to the namespace side (a
/// `kubernetes.io/metadata.name` match), `k8s:` prefixes are dropped, and
/// `io.cilium.k8s.namespace.labels.KEY` keys select namespaces by their labels.
fn cilium_endpoints(
    v: &Value,
    path: &str,
) -> Result<(Option<LabelSelector>, LabelSelector), String> {
    let sel = parse_selector(v, path)?;
    let strip = |k: &str| k.strip_prefix("k8s:").unwrap_or(k).to_string();
    let mut ns = LabelSelector::default();
    let mut pods = LabelSelector::default();
    let mut ns_given = false;
    for (k, val) in sel.match_labels {
        let k = strip(&k);
        if k == CILIUM_NAMESPACE_LABEL {
            ns_given = true;
            ns.match_labels
                .insert("kubernetes.io/metadata.name".into(), val);
        } else if let Some(nk) = k.strip_prefix("io.cilium.k8s.namespace.labels.") {
            ns_given = true;
            ns.match_labels.insert(nk.into(), val);
        } else {
            pods.match_labels.insert(k, val);
        }
    }
    for mut e in sel.expressions {
        e.key = strip(&e.key);
        if e.key == CILIUM_NAMESPACE_LABEL {
            ns_given = true;
            e.key = "kubernetes.io/metadata.name".into();
            ns.expressions.push(e);
        } else if let Some(nk) = e.key.strip_prefix("io.cilium.k8s.namespace.labels.") {
            ns_given = true;
            e.key = nk.into();
            ns.expressions.push(e);
        } else {
            pods.expressions.push(e);
        }
    }
    Ok((ns_given.then_some(ns), pods))
}

fn parse_cilium(name: String, namespace: String, spec: &Value) -> Result<NetPolicy, String> {
    let sel_v = spec
        .get("endpointSelector")
        .ok_or("spec.endpointSelector is required (nodeSelector policies are not simulated)")?;
    let (_, selector) = cilium_endpoints(sel_v, "spec.endpointSelector")?;
    let parse_dir = |keys: &[(&str, bool)], dir: &str| -> Result<Option<Vec<Rule>>, String> {
        let mut any = false;
        let mut out = Vec::new();
        for (key, deny) in keys {
            let Some(v) = spec.get(*key) else { continue };
            any = true;
            for (i, r) in seq(v, &format!("spec.{key}"))?.iter().enumerate() {
                out.push(parse_cilium_rule(
                    r,
                    &format!("spec.{key}[{i}]"),
                    dir,
                    *deny,
                )?);
            }
        }
        Ok(any.then_some(out))
    };
    let ingress = parse_dir(&[("ingress", false), ("ingressDeny", true)], "from")?;
    let egress = parse_dir(&[("egress", false), ("egressDeny", true)], "to")?;
    Ok(NetPolicy {
        kind: NetKind::CiliumNetworkPolicy,
        name,
        namespace,
        selector,
        ingress,
        egress,
    })
}

fn parse_cilium_rule(r: &Value, p: &str, dir: &str, deny: bool) -> Result<Rule, String> {
    let mut peers = Vec::new();
    let mut any_peer_key = false;
    let key = |k: &str| format!("{dir}{k}");
    if let Some(v) = r.get(key("Endpoints").as_str()) {
        any_peer_key = true;
        for (i, x) in seq(v, &format!("{p}.{}", key("Endpoints")))?
            .iter()
            .enumerate()
        {
            let (namespaces, pods) =
                cilium_endpoints(x, &format!("{p}.{}[{i}]", key("Endpoints")))?;
            peers.push(PeerSelector::Pods {
                namespaces,
                pods: Some(pods),
            });
        }
    }
    if let Some(v) = r.get(key("CIDR").as_str()) {
        any_peer_key = true;
        for (i, x) in seq(v, &format!("{p}.{}", key("CIDR")))?.iter().enumerate() {
            let pp = format!("{p}.{}[{i}]", key("CIDR"));
            let s = x.as_str().ok_or_else(|| at(&pp, "must be a CIDR"))?;
            let cidr = Cidr::parse(s).map_err(|e| at(&pp, e))?;
            peers.push(PeerSelector::Block(IpBlock {
                cidr,
                except: Vec::new(),
            }));
        }
    }
    if let Some(v) = r.get(key("CIDRSet").as_str()) {
        any_peer_key = true;
        for (i, x) in seq(v, &format!("{p}.{}", key("CIDRSet")))?
            .iter()
            .enumerate()
        {
            peers.push(PeerSelector::Block(parse_block(
                x,
                &format!("{p}.{}[{i}]", key("CIDRSet")),
                "cidr",
            )?));
        }
    }
    if let Some(v) = r.get(key("Entities").as_str()) {
        any_peer_key = true;
        for (i, x) in seq(v, &format!("{p}.{}", key("Entities")))?
            .iter()
            .enumerate()
        {
            let pp = format!("{p}.{}[{i}]", key("Entities"));
            let e = x.as_str().ok_or_else(|| at(&pp, "must be a string"))?;
            if !CILIUM_ENTITIES.contains(&e) {
                return Err(at(&pp, format!("{e:?} is not a Cilium entity")));
            }
            peers.push(PeerSelector::Entity(e.into()));
        }
    }
    if dir == "to" {
        if let Some(v) = r.get("toFQDNs") {
            any_peer_key = true;
            for (i, x) in seq(v, &format!("{p}.toFQDNs"))?.iter().enumerate() {
                let pp = format!("{p}.toFQDNs[{i}]");
                if let Some(n) = x.get("matchName").and_then(Value::as_str) {
                    peers.push(PeerSelector::Fqdn {
                        pattern: n.trim_end_matches('.').to_ascii_lowercase(),
                        is_pattern: false,
                    });
                } else if let Some(n) = x.get("matchPattern").and_then(Value::as_str) {
                    peers.push(PeerSelector::Fqdn {
                        pattern: n.trim_end_matches('.').to_ascii_lowercase(),
                        is_pattern: true,
                    });
                } else {
                    return Err(at(&pp, "needs matchName or matchPattern"));
                }
            }
        }
    }
    let mut ports = Vec::new();
    let mut any_port = false;
    if let Some(v) = r.get("toPorts") {
        for (i, tp) in seq(v, &format!("{p}.toPorts"))?.iter().enumerate() {
            let Some(list) = tp.get("ports") else {
                continue;
            };
            for (j, x) in seq(list, &format!("{p}.toPorts[{i}].ports"))?
                .iter()
                .enumerate()
            {
                any_port = true;
                let pp = format!("{p}.toPorts[{i}].ports[{j}]");
                let protocol = x
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("ANY")
                    .to_ascii_uppercase();
                if !matches!(protocol.as_str(), "TCP" | "UDP" | "SCTP" | "ANY") {
                    return Err(at(
                        &format!("{pp}.protocol"),
                        format!("{protocol:?} is not TCP, UDP, SCTP or ANY"),
                    ));
                }
                let port = match x.get("port") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if s == "0" => None,
                    Some(v) => Some(parse_port_value(v, &format!("{pp}.port"))?),
                };
                let end_port = match x.get("endPort") {
                    Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                    _ => None,
                };
                ports.push(PortSelector {
                    protocol,
                    port,
                    end_port,
                });
            }
        }
    }
    // A Cilium rule without any peer field selects no peer, except a ports-only rule, which
    // applies to every peer.
    let peers = if any_peer_key {
        Some(peers)
    } else if any_port {
        None
    } else {
        Some(Vec::new())
    };
    Ok(Rule {
        peers,
        ports: any_port.then_some(ports),
        deny,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains_and_covers() {
        let c = Cidr::parse("172.17.0.0/16").unwrap();
        assert!(c.contains("172.17.1.9".parse().unwrap()));
        assert!(!c.contains("172.18.0.1".parse().unwrap()));
        assert!(c.covers(&Cidr::parse("172.17.1.0/24").unwrap()));
        assert!(!c.covers(&Cidr::parse("172.0.0.0/8").unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.1/33").is_err());
        assert!(Cidr::parse("10.0.0.1").is_err());
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let sel = parse_selector(
            &serde_yaml::from_str(
                "matchLabels: {app: web}\nmatchExpressions:\n- {key: tier, operator: In, values: [fe, be]}\n- {key: canary, operator: DoesNotExist}",
            )
            .unwrap(),
            "s",
        )
        .unwrap();
        assert!(sel.matches(&label_map(["app=web", "tier=fe"])));
        assert!(!sel.matches(&label_map(["app=web", "tier=db"])));
        assert!(!sel.matches(&label_map(["app=web", "tier=fe", "canary=1"])));
        assert!(LabelSelector::default().matches(&label_map(Vec::<String>::new())));
    }
}
