//! The mapping of one KubeArmor record onto a schema-v1 row (the rules are in the parent
//! module's documentation): time, place, process, operation, resource, network.

use super::*;

/// Maps one KubeArmor record onto a schema-v1 row (the rules are in the module
/// documentation). `source` is written to the row's `source` column.
pub fn to_event(rec: &KubeArmorRecord, source: Source) -> Result<Event, MappingError> {
    map_record(rec, source).map(|(event, _)| event)
}

/// The time of a record in nanoseconds since the Unix epoch (UTC): from `UpdatedTime`, else
/// from `Timestamp`; `None` when the record carries neither (a `Timestamp` of 0 counts as
/// absent). An unreadable `UpdatedTime` is an error only when there is no `Timestamp`.
pub fn event_time(rec: &KubeArmorRecord) -> Result<Option<i64>, MappingError> {
    let timestamp = rec.timestamp.filter(|&t| t != 0);
    if let Some(updated) = text(&rec.updated_time) {
        if let Some(ns) = parse_time_ns(updated) {
            return Ok(Some(ns));
        }
        if timestamp.is_none() {
            return Err(MappingError::BadField {
                field: "UpdatedTime",
                reason: format!("not an RFC 3339 time: {:?}", clip(updated)),
            });
        }
    }
    match timestamp {
        None => Ok(None),
        Some(seconds) => {
            seconds
                .checked_mul(1_000_000_000)
                .map(Some)
                .ok_or_else(|| MappingError::BadField {
                    field: "Timestamp",
                    reason: format!("{seconds} seconds is out of range"),
                })
        }
    }
}

/// [`to_event`], also telling whether the record had a time of its own.
pub(super) fn map_record(
    rec: &KubeArmorRecord,
    source: Source,
) -> Result<(Event, bool), MappingError> {
    let op = parse_op(rec.operation.as_deref())?;
    let time = event_time(rec)?;
    let ts = time.unwrap_or(0);

    let namespace = owned(&rec.namespace_name);
    let container_id = owned(&rec.container_id);
    let pod = owned(&rec.pod_name);
    let host = matches!(text(&rec.log_type), Some("HostLog" | "MatchedHostPolicy"))
        || (namespace.is_none() && container_id.is_none());
    let (workload_kind, workload) = workload_of(rec.owner.as_ref(), pod.as_deref());

    let resource = text(&rec.resource);
    let data = text(&rec.data);
    let (source_first, source_rest) = split_command(text(&rec.source));

    let mut ev = Event {
        ts_first: ts,
        ts_last: ts,
        count: 1,
        cluster: owned(&rec.cluster_name),
        node: text(&rec.host_name).unwrap_or("unknown").to_owned(),
        namespace,
        pod,
        pod_uid: None,
        container: owned(&rec.container_name),
        container_id,
        image: owned(&rec.container_image),
        workload_kind,
        workload,
        labels: split_labels(text(&rec.labels)),
        host,
        pid: rec.pid,
        ppid: rec.ppid,
        uid: rec.uid,
        op,
        source,
        syscall: syscall_of(op, resource, data),
        result: owned(&rec.result),
        policy: owned(&rec.policy_name),
        action: owned(&rec.action),
        ..Event::default()
    };

    if op == Op::Process {
        let (first, rest) = split_command(resource);
        match first {
            Some(first) => {
                ev.process = Some(first.to_owned());
                ev.args = rest.map(str::to_owned);
            }
            None => ev.process = owned(&rec.process_name),
        }
        ev.parent_process = text(&rec.parent_process_name)
            .or(source_first)
            .map(str::to_owned);
    } else {
        ev.process = text(&rec.process_name).or(source_first).map(str::to_owned);
        ev.args = source_rest.map(str::to_owned);
        ev.parent_process = owned(&rec.parent_process_name);
    }

    match op {
        Op::Process => {}
        Op::File => {
            ev.path = resource.map(str::to_owned);
            ev.access = data.and_then(file_access).map(str::to_owned);
        }
        Op::Syscall => ev.path = resource.filter(|r| r.starts_with('/')).map(str::to_owned),
        Op::Capability => ev.capability = capability_of(resource, data),
        Op::Network => map_network(resource, data, &mut ev),
    }

    Ok((ev, time.is_some()))
}

pub(super) fn parse_op(operation: Option<&str>) -> Result<Op, MappingError> {
    let raw = operation
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(MappingError::MissingField("Operation"))?;
    match raw.to_ascii_lowercase().as_str() {
        "process" => Ok(Op::Process),
        "file" => Ok(Op::File),
        "network" => Ok(Op::Network),
        "syscall" => Ok(Op::Syscall),
        "capabilities" | "capability" => Ok(Op::Capability),
        _ => Err(MappingError::UnknownValue {
            field: "Operation",
            value: clip(raw),
        }),
    }
}

pub(super) fn parse_time_ns(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt();
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
        .and_then(|t| t.and_utc().timestamp_nanos_opt())
}

/// `(workload_kind, workload)`: the owner KubeArmor reported, else the pod-name heuristic.
pub(super) fn workload_of(
    owner: Option<&KubeArmorOwner>,
    pod: Option<&str>,
) -> (Option<String>, Option<String>) {
    if let Some((kind, name)) = owner.and_then(|o| Some((text(&o.kind)?, text(&o.name)?))) {
        if kind == "ReplicaSet" {
            if let Some(deployment) = deployment_of_replicaset(name) {
                return (Some("Deployment".into()), Some(deployment.into()));
            }
        }
        return (Some(kind.into()), Some(name.into()));
    }
    match pod.and_then(deployment_of_pod) {
        Some(deployment) => (Some("Deployment".into()), Some(deployment.into())),
        None => (None, None),
    }
}

/// The alphabet of Kubernetes-generated name parts (`rand.SafeEncodeString`, `GenerateName`).
pub(super) const GENERATED_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub(super) fn generated(s: &str) -> bool {
    s.bytes().all(|b| GENERATED_ALPHABET.contains(&b))
}

pub(super) fn pod_template_hash(s: &str) -> bool {
    (6..=10).contains(&s.len()) && generated(s) && !s.bytes().all(|b| b.is_ascii_digit())
}

/// `<name>` of a pod named `<name>-<pod-template-hash>-<5-character suffix>`.
pub(super) fn deployment_of_pod(pod: &str) -> Option<&str> {
    let (rest, suffix) = pod.rsplit_once('-')?;
    let (name, hash) = rest.rsplit_once('-')?;
    (!name.is_empty() && suffix.len() == 5 && generated(suffix) && pod_template_hash(hash))
        .then_some(name)
}

/// `<name>` of a ReplicaSet named `<name>-<pod-template-hash>`.
pub(super) fn deployment_of_replicaset(replicaset: &str) -> Option<&str> {
    let (name, hash) = replicaset.rsplit_once('-')?;
    (!name.is_empty() && pod_template_hash(hash)).then_some(name)
}

pub(super) fn split_labels(labels: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = labels
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// First word and the (trimmed) rest of a command line.
pub(super) fn split_command(cmd: Option<&str>) -> (Option<&str>, Option<&str>) {
    let cmd = cmd.map(str::trim).unwrap_or("");
    if cmd.is_empty() {
        return (None, None);
    }
    match cmd.find(char::is_whitespace) {
        None => (Some(cmd), None),
        Some(i) => {
            let rest = cmd[i..].trim();
            (Some(&cmd[..i]), (!rest.is_empty()).then_some(rest))
        }
    }
}

/// Words of a `Resource`/`Data` string: separated by whitespace or commas.
pub(super) fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
}

/// Value of the first `key=value` word whose key is `key` (ASCII case-insensitive).
pub(super) fn kv<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    words(s).find_map(|w| {
        let (k, v) = w.split_once('=')?;
        k.eq_ignore_ascii_case(key).then_some(v)
    })
}

/// Like [`kv`], `None` for an empty value.
pub(super) fn kv_set<'a>(s: Option<&'a str>, key: &str) -> Option<&'a str> {
    s.and_then(|s| kv(s, key)).filter(|v| !v.is_empty())
}

/// `s` when it is a single word that is not `key=value`.
pub(super) fn bare_word(s: Option<&str>) -> Option<&str> {
    let s = s?.trim();
    (!s.is_empty() && !s.contains('=') && !s.contains(char::is_whitespace)).then_some(s)
}

/// `SYS_OPENAT` → `OPENAT`; other names upper-cased.
pub(super) fn call_name(raw: &str) -> String {
    let up = raw.trim().to_ascii_uppercase();
    match up.strip_prefix("SYS_") {
        Some(rest) => rest.to_owned(),
        None => up,
    }
}

pub(super) fn syscall_of(op: Op, resource: Option<&str>, data: Option<&str>) -> Option<String> {
    kv_set(data, "syscall")
        .or_else(|| {
            matches!(op, Op::Network | Op::Capability)
                .then(|| kv_set(resource, "syscall"))
                .flatten()
        })
        .map(str::to_owned)
}

pub(super) fn file_access(data: &str) -> Option<&'static str> {
    if let Some(call) = kv_set(Some(data), "syscall").or_else(|| kv_set(Some(data), "lsm")) {
        match call_name(call).as_str() {
            "UNLINK" | "UNLINKAT" | "RMDIR" | "FILE_UNLINK" | "FILE_RMDIR" => {
                return Some("delete")
            }
            "RENAME" | "RENAMEAT" | "RENAMEAT2" | "FILE_RENAME" => return Some("rename"),
            "CHMOD" | "FCHMOD" | "FCHMODAT" | "FCHMODAT2" | "FILE_CHMOD" => return Some("chmod"),
            "CHOWN" | "FCHOWN" | "LCHOWN" | "FCHOWNAT" => return Some("chown"),
            "EXECVE" | "EXECVEAT" => return Some("exec"),
            "MKDIR" | "MKDIRAT" | "MKNOD" | "MKNODAT" | "CREAT" | "LINK" | "LINKAT" | "SYMLINK"
            | "SYMLINKAT" | "FILE_MKDIR" | "FILE_MKNOD" | "FILE_LINK" | "FILE_SYMLINK" => {
                return Some("create")
            }
            "TRUNCATE" | "FTRUNCATE" | "FILE_TRUNCATE" => return Some("write"),
            "CLOSE" => return None,
            _ => {}
        }
    }
    let flags: Vec<String> = kv(data, "flags")
        .unwrap_or("")
        .split('|')
        .map(|f| f.trim().to_ascii_uppercase())
        .collect();
    let has = |name: &str| flags.iter().any(|f| f == name);
    if has("O_CREAT") || has("O_TMPFILE") {
        Some("create")
    } else if has("O_WRONLY") || has("O_RDWR") || has("O_TRUNC") || has("O_APPEND") {
        Some("write")
    } else {
        Some("read")
    }
}

pub(super) fn capability_of(resource: Option<&str>, data: Option<&str>) -> Option<String> {
    kv_set(data, "cap")
        .or_else(|| kv_set(resource, "capability"))
        .or_else(|| kv_set(data, "capability"))
        .or_else(|| bare_word(resource))
        .or_else(|| {
            words(data.unwrap_or("")).find(|w| {
                !w.contains('=') && w.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("cap_"))
            })
        })
        .and_then(normalise_capability)
}

pub(super) fn normalise_capability(raw: &str) -> Option<String> {
    let up = raw.trim().to_ascii_uppercase();
    let name = up.strip_prefix("CAP_").unwrap_or(&up);
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then(|| format!("CAP_{name}"))
}

pub(super) fn direction_of_call(call: &str) -> Option<&'static str> {
    match call {
        "CONNECT" => Some("connect"),
        "ACCEPT" | "ACCEPT4" => Some("accept"),
        "BIND" => Some("bind"),
        "LISTEN" => Some("listen"),
        "SENDTO" | "SENDMSG" | "SENDMMSG" => Some("send"),
        "SOCKET" => Some("socket"),
        _ => None,
    }
}

pub(super) fn direction_of_lsm(hook: &str) -> Option<&'static str> {
    match hook {
        "SOCKET_CREATE" => Some("socket"),
        "SOCKET_CONNECT" => Some("connect"),
        "SOCKET_ACCEPT" => Some("accept"),
        "SOCKET_SENDMSG" => Some("send"),
        "SOCKET_BIND" => Some("bind"),
        "SOCKET_LISTEN" => Some("listen"),
        _ => None,
    }
}

/// A host name as KubeArmor's DNS events put it in `Resource` (not `unknown`, its placeholder).
pub(super) fn host_name(s: &str) -> bool {
    !s.eq_ignore_ascii_case("unknown")
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

pub(super) fn map_network(resource: Option<&str>, data: Option<&str>, ev: &mut Event) {
    let res = |key: &str| kv_set(resource, key);
    let dat = |key: &str| kv_set(data, key);

    let call = dat("syscall").or_else(|| res("syscall")).map(call_name);
    let kprobe = dat("kprobe").map(str::to_ascii_lowercase);
    let lsm = dat("lsm").map(str::to_ascii_uppercase);
    let kfunc = dat("kfunc").map(str::to_ascii_uppercase);

    let direction = call
        .as_deref()
        .and_then(direction_of_call)
        .or(match kprobe.as_deref() {
            Some("tcp_connect") => Some("connect"),
            Some("tcp_accept") => Some("accept"),
            _ => None,
        })
        .or_else(|| lsm.as_deref().and_then(direction_of_lsm))
        .or((kfunc.as_deref() == Some("UDP_SENDMSG")).then_some("send"));

    let family = res("sa_family")
        .or_else(|| res("domain"))
        .or_else(|| dat("domain").filter(|d| d.starts_with("AF_")));
    let unix_path = res("sun_path");
    let mut addr = res("sin_addr")
        .or_else(|| res("sin6_addr"))
        .or_else(|| res("remoteip"))
        .or_else(|| dat("daddr"))
        .or(unix_path);
    let port = res("sin_port")
        .or_else(|| res("sin6_port"))
        .or_else(|| res("port"))
        .and_then(|p| p.parse::<u16>().ok());

    let mut name = None;
    if let Some(word) = bare_word(resource) {
        if word.parse::<IpAddr>().is_ok() {
            addr = addr.or(Some(word));
        } else if host_name(word) {
            name = Some(word);
        }
    }
    if name.is_none() && kfunc.is_some() {
        name = dat("domain");
    }

    let proto = classify_proto(
        family,
        res("type").or_else(|| dat("type")),
        res("protocol").or_else(|| dat("protocol")),
        unix_path.is_some(),
        kprobe.as_deref(),
        kfunc.as_deref(),
    );

    ev.proto = proto.map(str::to_owned);
    ev.direction = direction.map(str::to_owned);
    ev.remote_name = name.map(str::to_owned);
    let addr = addr.map(str::to_owned);
    if kprobe.as_deref() == Some("tcp_accept") {
        // KubeArmor's accept probe reports the peer's address but the local (listening) port.
        ev.remote_addr = addr;
        ev.local_port = port;
    } else if matches!(direction, Some("bind" | "listen")) {
        ev.local_addr = addr;
        ev.local_port = port;
    } else {
        ev.remote_addr = addr;
        ev.remote_port = port;
    }
}

pub(super) fn classify_proto(
    family: Option<&str>,
    sock_type: Option<&str>,
    protocol: Option<&str>,
    unix_path: bool,
    kprobe: Option<&str>,
    kfunc: Option<&str>,
) -> Option<&'static str> {
    let family = family.map(str::to_ascii_uppercase);
    let family = family.as_deref();
    if unix_path || matches!(family, Some("AF_UNIX" | "AF_LOCAL")) {
        return Some("unix");
    }
    let protocol = protocol.map(|p| p.trim().to_ascii_uppercase());
    let protocol = protocol.as_deref();
    if matches!(protocol, Some("ICMP" | "ICMPV6" | "IPV6-ICMP" | "1" | "58")) {
        return Some("icmp");
    }
    let types: Vec<String> = sock_type
        .unwrap_or("")
        .split('|')
        .map(|t| t.trim().to_ascii_uppercase())
        .collect();
    let has = |name: &str| types.iter().any(|t| t == name);
    if has("SOCK_RAW") || has("SOCK_PACKET") || family == Some("AF_PACKET") {
        return Some("raw");
    }
    match protocol {
        Some("TCP" | "TCPV6" | "6") => return Some("tcp"),
        Some("UDP" | "UDPV6" | "17") => return Some("udp"),
        // 0 (HOPOPT is IANA's name for it) lets the socket type decide.
        None | Some("" | "0" | "HOPOPT" | "IP") => {}
        Some(_) => return None,
    }
    if matches!(family, None | Some("AF_INET" | "AF_INET6")) {
        if has("SOCK_STREAM") {
            return Some("tcp");
        }
        if has("SOCK_DGRAM") {
            return Some("udp");
        }
    }
    if kprobe.is_some_and(|k| k.starts_with("tcp_")) {
        return Some("tcp");
    }
    if kfunc.is_some_and(|k| k.starts_with("UDP_")) {
        return Some("udp");
    }
    None
}
