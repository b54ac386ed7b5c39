use super::reader::*;
use super::*;
use serde_json::json;

fn rec(value: Value) -> KubeArmorRecord {
    KubeArmorRecord::deserialize(value).expect("record deserializes")
}

fn map(value: Value) -> Event {
    to_event(&rec(value), Source::Kubearmor).expect("record maps")
}

fn map_err(value: Value) -> String {
    to_event(&rec(value), Source::Import)
        .expect_err("record must not map")
        .to_string()
}

fn de_err(json: &str) -> String {
    serde_json::from_str::<KubeArmorRecord>(json)
        .expect_err("record must not deserialize")
        .to_string()
}

fn net(resource: &str, data: &str) -> Event {
    map(json!({"Operation": "Network", "Resource": resource, "Data": data}))
}

fn read(input: &str) -> ImportOutcome {
    read_json_logs(input.as_bytes())
}

fn error_lines(out: &ImportOutcome) -> Vec<u64> {
    out.errors.iter().map(|e| e.line).collect()
}

// ---- time ----------------------------------------------------------------------------

#[test]
fn time_prefers_updated_time_with_its_microseconds() {
    let e = map(json!({
        "Operation": "File",
        "Timestamp": 1000,
        "UpdatedTime": "2023-06-11T10:12:51.967519Z"
    }));
    assert_eq!(e.ts_first, 1_686_478_371_967_519_000);
    assert_eq!(e.ts_last, e.ts_first);
    assert_eq!(e.count, 1);
    assert_eq!(e.source, Source::Kubearmor);
}

#[test]
fn time_accepts_offsets_and_naive_utc() {
    let e = map(json!({"Operation": "File", "UpdatedTime": "2023-06-11T12:12:51.5+02:00"}));
    assert_eq!(e.ts_first, 1_686_478_371_500_000_000);
    let e = map(json!({"Operation": "File", "UpdatedTime": "2023-06-11 10:12:51"}));
    assert_eq!(e.ts_first, 1_686_478_371_000_000_000);
}

#[test]
fn time_falls_back_to_timestamp_in_seconds() {
    for ts in [
        json!(1_686_478_371),
        json!("1686478371"),
        json!(" 1686478371 "),
    ] {
        let e = map(json!({"Operation": "File", "Timestamp": ts}));
        assert_eq!(e.ts_first, 1_686_478_371_000_000_000, "{ts}");
    }
    // An unreadable UpdatedTime with a Timestamp to fall back on is not an error.
    let e = map(json!({"Operation": "File", "Timestamp": 1_686_478_371, "UpdatedTime": "soon"}));
    assert_eq!(e.ts_first, 1_686_478_371_000_000_000);
}

#[test]
fn time_absent_is_the_epoch_and_is_counted() {
    let r = rec(json!({"Operation": "File"}));
    assert_eq!(event_time(&r), Ok(None));
    assert_eq!(to_event(&r, Source::Import).unwrap().ts_first, 0);
    assert_eq!(
        event_time(&rec(json!({"Operation": "File", "Timestamp": 0}))),
        Ok(None)
    );
    assert_eq!(
        event_time(&rec(json!({"Operation": "File", "Timestamp": 5}))),
        Ok(Some(5_000_000_000))
    );

    let out = read(concat!(
        "{\"Operation\":\"File\"}\n",
        "{\"Operation\":\"File\",\"Timestamp\":5}\n",
        "{\"Operation\":\"File\",\"Timestamp\":0,\"UpdatedTime\":\"\"}\n",
    ));
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.events.len(), 3);
    assert_eq!(out.without_timestamp, 2);
    assert_eq!(out.events[1].ts_first, 5_000_000_000);
}

#[test]
fn unusable_times_are_errors_naming_the_field() {
    assert_eq!(
        map_err(json!({"Operation": "File", "UpdatedTime": "yesterday"})),
        "bad field UpdatedTime: not an RFC 3339 time: \"yesterday\""
    );
    assert_eq!(
        map_err(json!({"Operation": "File", "Timestamp": i64::MAX})),
        format!("bad field Timestamp: {} seconds is out of range", i64::MAX)
    );
}

// ---- where ---------------------------------------------------------------------------

#[test]
fn identity_fields_are_copied() {
    let e = map(json!({
        "Operation": "File",
        "ClusterName": "c1", "HostName": "n1", "NamespaceName": "ns", "PodName": "p",
        "ContainerName": "ctr", "ContainerID": "abc", "ContainerImage": "img:1",
        "Result": "Passed", "PolicyName": "pol", "Action": "Audit"
    }));
    assert_eq!(e.cluster.as_deref(), Some("c1"));
    assert_eq!(e.node, "n1");
    assert_eq!(e.namespace.as_deref(), Some("ns"));
    assert_eq!(e.pod.as_deref(), Some("p"));
    assert_eq!(e.container.as_deref(), Some("ctr"));
    assert_eq!(e.container_id.as_deref(), Some("abc"));
    assert_eq!(e.image.as_deref(), Some("img:1"));
    assert_eq!(e.result.as_deref(), Some("Passed"));
    assert_eq!(e.policy.as_deref(), Some("pol"));
    assert_eq!(e.action.as_deref(), Some("Audit"));
    assert!(!e.host);
    assert_eq!(e.pod_uid, None);
}

#[test]
fn empty_strings_are_none_and_the_node_unknown() {
    let e = map(json!({
        "Operation": "File",
        "ClusterName": "", "HostName": " ", "NamespaceName": "", "PodName": "",
        "ContainerName": "", "ContainerID": "", "ContainerImage": "", "Labels": "",
        "Result": "", "PolicyName": "", "Action": "", "Resource": "", "Source": "",
        "ProcessName": "", "ParentProcessName": ""
    }));
    assert_eq!(e.cluster, None);
    assert_eq!(e.node, "unknown");
    assert_eq!(
        (
            &e.namespace,
            &e.pod,
            &e.container,
            &e.container_id,
            &e.image
        ),
        (&None, &None, &None, &None, &None)
    );
    assert!(e.labels.is_empty());
    assert_eq!((&e.result, &e.policy, &e.action), (&None, &None, &None));
    assert_eq!(
        (&e.process, &e.parent_process, &e.args, &e.path),
        (&None, &None, &None, &None)
    );
    assert!(e.host);
    assert_eq!(map(json!({"Operation": "File"})).node, "unknown");
}

#[test]
fn labels_are_split_trimmed_sorted_and_deduplicated() {
    let e = map(json!({"Operation": "File", "Labels": "b=2, a=1,b=2 ,,c=3"}));
    assert_eq!(e.labels, ["a=1", "b=2", "c=3"]);
    // Some KubeArmor versions separate labels with spaces.
    let e = map(json!({"Operation": "File", "Labels": "container=ubuntu-1 group=group-1"}));
    assert_eq!(e.labels, ["container=ubuntu-1", "group=group-1"]);
}

#[test]
fn host_flag() {
    let host = |v: Value| map(v).host;
    assert!(host(json!({"Operation": "File", "Type": "HostLog"})));
    assert!(host(
        json!({"Operation": "File", "Type": "MatchedHostPolicy", "NamespaceName": "x"})
    ));
    assert!(!host(
        json!({"Operation": "File", "Type": "ContainerLog", "NamespaceName": "x"})
    ));
    assert!(!host(
        json!({"Operation": "File", "Type": "MatchedPolicy", "ContainerID": "abc"})
    ));
    assert!(host(json!({"Operation": "File", "Type": "ContainerLog"})));
}

// ---- workload ------------------------------------------------------------------------

fn workload(v: Value) -> (Option<String>, Option<String>) {
    let e = map(v);
    (e.workload_kind, e.workload)
}

fn some(kind: &str, name: &str) -> (Option<String>, Option<String>) {
    (Some(kind.to_owned()), Some(name.to_owned()))
}

#[test]
fn workload_comes_from_the_owner() {
    assert_eq!(
        workload(json!({"Operation": "File", "PodName": "ds-abcde",
                "Owner": {"Ref": "DaemonSet", "Name": "ds", "Namespace": "kube-system"}})),
        some("DaemonSet", "ds")
    );
    // Reported over the pod-name heuristic.
    assert_eq!(
        workload(
            json!({"Operation": "File", "PodName": "web-8f458dc5b-fl42t",
                "Owner": {"Ref": "StatefulSet", "Name": "db"}})
        ),
        some("StatefulSet", "db")
    );
    // A ReplicaSet of a Deployment is resolved to the Deployment; another is kept.
    assert_eq!(
        workload(
            json!({"Operation": "File", "Owner": {"Ref": "ReplicaSet", "Name": "web-5d4f8b7c9"}})
        ),
        some("Deployment", "web")
    );
    assert_eq!(
        workload(json!({"Operation": "File", "Owner": {"Ref": "ReplicaSet", "Name": "legacy"}})),
        some("ReplicaSet", "legacy")
    );
    // An owner without kind or name is no owner.
    assert_eq!(
        workload(
            json!({"Operation": "File", "PodName": "web-8f458dc5b-fl42t",
                "Owner": {"Ref": "", "Name": ""}})
        ),
        some("Deployment", "web")
    );
    assert_eq!(
        workload(json!({"Operation": "File", "Owner": {"Ref": "Deployment"}})),
        (None, None)
    );
}

#[test]
fn workload_heuristic_on_pod_names() {
    let cases: &[(&str, Option<&str>)] = &[
        ("nginx-8f458dc5b-fl42t", Some("nginx")),
        (
            "discovery-engine-6f5c4df7b4-q8zbc",
            Some("discovery-engine"),
        ),
        ("my-app-v2-7d9c8b6f5-x2k4p", Some("my-app-v2")),
        ("web-bcdfgh-xz245", Some("web")),
        // DaemonSet or Job: a single generated suffix is ambiguous.
        ("my-daemonset-xhrr9", None),
        // StatefulSet.
        ("vault-0", None),
        // CronJob pods: the middle part is all digits.
        ("backup-28456789-x7k2q", None),
        // Characters outside the generated alphabet (vowels, 0, 1, 3, upper case).
        ("web-abcdef-xz245", None),
        ("web-8f458dc5b-fl43t", None),
        ("web-8F458DC5B-fl42t", None),
        // Lengths: hash 6..=10, suffix exactly 5.
        ("web-bcdfg-xz245", None),
        ("web-bcdfghjklm2-xz245", None),
        ("web-8f458dc5b-fl42", None),
        ("web-8f458dc5b-fl42tt", None),
        ("-8f458dc5b-fl42t", None),
        ("8f458dc5b-fl42t", None),
        ("", None),
    ];
    for (pod, want) in cases {
        let got = workload(json!({"Operation": "File", "PodName": pod}));
        let want = want.map_or((None, None), |w| some("Deployment", w));
        assert_eq!(got, want, "pod {pod:?}");
    }
}

// ---- who -----------------------------------------------------------------------------

#[test]
fn ids_accept_numbers_and_strings() {
    let e =
        map(json!({"Operation": "File", "PID": 7, "PPID": "8", "UID": "1000", "HostPID": "12"}));
    assert_eq!((e.pid, e.ppid, e.uid), (Some(7), Some(8), Some(1000)));
    let r = rec(json!({"Operation": "File", "PID": 42.0, "PPID": "", "UID": null, "HostPPID": 3}));
    assert_eq!(
        (r.pid, r.ppid, r.uid, r.host_ppid),
        (Some(42), None, None, Some(3))
    );
}

#[test]
fn fields_of_the_wrong_type_or_range_are_errors_naming_the_field() {
    let cases = [
        (
            r#"{"PID":"abc"}"#,
            r#"bad field PID: expected an integer, found string "abc""#,
        ),
        (
            r#"{"PID":true}"#,
            "bad field PID: expected an integer, found boolean true",
        ),
        (
            r#"{"PID":1.5}"#,
            "bad field PID: 1.5 is not an integer in range",
        ),
        (
            r#"{"PID":3000000000}"#,
            "bad field PID: 3000000000 is out of range",
        ),
        (r#"{"UID":-1}"#, "bad field UID: -1 is out of range"),
        (
            r#"{"PPID":[1]}"#,
            "bad field PPID: expected an integer, found an array",
        ),
        (
            r#"{"Timestamp":{}}"#,
            "bad field Timestamp: expected an integer, found an object",
        ),
        (
            r#"{"HostPID":99999999999999999999}"#,
            "bad field HostPID: 1e+20 is not an integer in range",
        ),
        (
            r#"{"PodName":5}"#,
            "bad field PodName: expected a string, found number 5",
        ),
        (
            r#"{"Operation":["File"]}"#,
            "bad field Operation: expected a string, found an array",
        ),
        (
            r#"{"Owner":"x"}"#,
            r#"bad field Owner: expected an object, found string "x""#,
        ),
        (
            r#"{"Owner":{"Ref":1}}"#,
            "bad field Owner.Ref: expected a string, found number 1",
        ),
    ];
    for (json, want) in cases {
        let got = de_err(json);
        assert!(got.starts_with(want), "{json}: got {got:?}, want {want:?}");
    }
}

#[test]
fn informational_fields_never_fail() {
    let r = rec(json!({
        "Operation": "File", "Severity": 5, "Tags": ["a"], "Message": true,
        "Enforcer": null, "ATags": null, "EventData": {"x": 1}, "workload": "1"
    }));
    assert_eq!(r.severity.as_deref(), Some("5"));
    assert_eq!(r.tags, None);
    assert_eq!(r.message.as_deref(), Some("true"));
    assert_eq!(r.enforcer, None);
}

#[test]
fn process_operation_splits_the_command_line() {
    let e = map(json!({
        "Operation": "Process", "Resource": "/bin/sh -c  echo hi", "ProcessName": "/bin/sh",
        "Source": "/usr/bin/bash", "Data": "syscall=SYS_EXECVE"
    }));
    assert_eq!(e.op, Op::Process);
    assert_eq!(e.process.as_deref(), Some("/bin/sh"));
    assert_eq!(e.args.as_deref(), Some("-c  echo hi"));
    assert_eq!(e.parent_process.as_deref(), Some("/usr/bin/bash"));
    assert_eq!((&e.path, &e.access), (&None, &None));
    assert_eq!(e.syscall.as_deref(), Some("SYS_EXECVE"));

    let e = map(json!({
        "Operation": "Process", "Resource": "/usr/bin/sleep", "Source": "zsh -i",
        "ParentProcessName": "/usr/bin/zsh"
    }));
    assert_eq!(e.process.as_deref(), Some("/usr/bin/sleep"));
    assert_eq!(e.args, None);
    assert_eq!(e.parent_process.as_deref(), Some("/usr/bin/zsh"));

    let e = map(
        json!({"Operation": "Process", "Resource": "", "ProcessName": "/bin/ls", "Source": "zsh -i"}),
    );
    assert_eq!(e.process.as_deref(), Some("/bin/ls"));
    assert_eq!(e.args, None);
    assert_eq!(e.parent_process.as_deref(), Some("zsh"));
}

#[test]
fn other_operations_take_the_process_from_process_name_or_source() {
    let e = map(json!({
        "Operation": "File", "ProcessName": "/bin/cat", "Source": "/usr/bin/cat /etc/x  y",
        "Resource": "/etc/x"
    }));
    assert_eq!(e.process.as_deref(), Some("/bin/cat"));
    assert_eq!(e.args.as_deref(), Some("/etc/x  y"));
    assert_eq!(e.parent_process, None);

    let e = map(json!({
        "Operation": "Network", "Source": "./main --port 8080", "ParentProcessName": "/sbin/init"
    }));
    assert_eq!(e.process.as_deref(), Some("./main"));
    assert_eq!(e.args.as_deref(), Some("--port 8080"));
    assert_eq!(e.parent_process.as_deref(), Some("/sbin/init"));

    let e = map(json!({"Operation": "File", "Source": "/knoxAutoPolicy"}));
    assert_eq!(e.process.as_deref(), Some("/knoxAutoPolicy"));
    assert_eq!(e.args, None);
}

// ---- what ----------------------------------------------------------------------------

#[test]
fn operations_map_to_ops() {
    let cases = [
        ("Process", Op::Process),
        ("File", Op::File),
        ("Network", Op::Network),
        ("Syscall", Op::Syscall),
        ("Capabilities", Op::Capability),
        ("Capability", Op::Capability),
        ("file", Op::File),
        (" NETWORK ", Op::Network),
    ];
    for (name, op) in cases {
        assert_eq!(map(json!({"Operation": name})).op, op, "{name}");
    }
}

#[test]
fn unknown_or_missing_operations_are_errors() {
    assert_eq!(
        map_err(json!({"Operation": "Foo"})),
        "unknown Operation \"Foo\""
    );
    assert_eq!(
        map_err(json!({"Operation": "AlertThreshold"})),
        "unknown Operation \"AlertThreshold\""
    );
    assert_eq!(map_err(json!({})), "missing field Operation");
    assert_eq!(
        map_err(json!({"Operation": "  "})),
        "missing field Operation"
    );
    let long = map_err(json!({"Operation": "x".repeat(10_000)}));
    assert!(long.len() < 120, "{long}");
}

#[test]
fn the_syscall_column_comes_from_data_and_never_from_hooks() {
    let syscall = |op: &str, res: &str, data: &str| {
        map(json!({"Operation": op, "Resource": res, "Data": data})).syscall
    };
    assert_eq!(
        syscall(
            "File",
            "/etc/x",
            "syscall=SYS_OPENAT fd=-100 flags=O_RDONLY"
        )
        .as_deref(),
        Some("SYS_OPENAT")
    );
    assert_eq!(
        syscall(
            "Network",
            "remoteip=1.2.3.4 port=1 protocol=TCP",
            "kprobe=tcp_connect domain=AF_INET"
        ),
        None
    );
    assert_eq!(syscall("File", "/etc/x", "lsm=FILE_OPEN"), None);
    assert_eq!(
        syscall(
            "Network",
            "sa_family=AF_INET sin_port=53",
            "kfunc=UDP_SENDMSG,domain=a.b,daddr=1.1.1.1,qtype=A"
        ),
        None
    );
    assert_eq!(syscall("File", "/tmp/syscall=SYS_X", ""), None);
    assert_eq!(syscall("File", "/etc/x", "syscall= fd=3"), None);
    // Older KubeArmor versions put it in Resource for network and capability events.
    assert_eq!(
        syscall(
            "Capabilities",
            "capability=CAP_NET_RAW syscall=SYS_SOCKET",
            ""
        )
        .as_deref(),
        Some("SYS_SOCKET")
    );
}

#[test]
fn file_access_from_the_system_call_and_the_open_flags() {
    let cases: &[(&str, Option<&str>)] = &[
        ("syscall=SYS_OPENAT fd=-100 flags=O_RDONLY", Some("read")),
        (
            "syscall=SYS_OPENAT fd=-100 flags=O_RDONLY|O_CLOEXEC",
            Some("read"),
        ),
        ("syscall=SYS_OPEN flags=", Some("read")),
        ("syscall=SYS_OPEN", Some("read")),
        (
            "syscall=SYS_OPEN flags=O_WRONLY|O_CREAT|O_NOCTTY|O_NONBLOCK",
            Some("create"),
        ),
        (
            "syscall=SYS_OPENAT fd=3 flags=O_RDWR|O_TMPFILE",
            Some("create"),
        ),
        ("syscall=SYS_OPENAT fd=3 flags=O_WRONLY", Some("write")),
        (
            "syscall=SYS_OPENAT fd=3 flags=O_RDWR|O_CLOEXEC",
            Some("write"),
        ),
        ("syscall=SYS_OPEN flags=O_RDONLY|O_TRUNC", Some("write")),
        ("syscall=SYS_OPEN flags=O_WRONLY|O_APPEND", Some("write")),
        ("syscall=SYS_OPEN flags=O_APPEND", Some("write")),
        ("syscall=SYS_UNLINKAT flags=", Some("delete")),
        ("syscall=SYS_UNLINKAT flags=AT_REMOVEDIR", Some("delete")),
        ("syscall=SYS_UNLINK", Some("delete")),
        ("syscall=SYS_RMDIR", Some("delete")),
        ("syscall=SYS_RENAME", Some("rename")),
        ("syscall=SYS_RENAMEAT2", Some("rename")),
        ("syscall=SYS_CHMOD", Some("chmod")),
        ("syscall=SYS_FCHMODAT", Some("chmod")),
        (
            "syscall=SYS_FCHOWNAT userid=0 group=0 mode=0",
            Some("chown"),
        ),
        ("syscall=SYS_CHOWN userid=0 group=0", Some("chown")),
        ("syscall=SYS_EXECVE", Some("exec")),
        ("syscall=SYS_EXECVEAT", Some("exec")),
        ("syscall=SYS_MKDIRAT", Some("create")),
        ("syscall=SYS_SYMLINK", Some("create")),
        ("syscall=SYS_CLOSE fd=3", None),
        ("lsm=FILE_OPEN", Some("read")),
        ("lsm=FILE_PERMISSION", Some("read")),
        ("lsm=FILE_MKDIR", Some("create")),
        ("lsm=FILE_UNLINK", Some("delete")),
        ("lsm=FILE_RENAME", Some("rename")),
        ("lsm=FILE_CHMOD", Some("chmod")),
        ("lsm=FILE_TRUNCATE", Some("write")),
    ];
    for (data, want) in cases {
        let e = map(json!({"Operation": "File", "Resource": "/etc/x", "Data": data}));
        assert_eq!(e.access.as_deref(), *want, "{data}");
        assert_eq!(e.path.as_deref(), Some("/etc/x"), "{data}");
    }
    // Nothing known without Data.
    assert_eq!(
        map(json!({"Operation": "File", "Resource": "/etc/x"})).access,
        None
    );
    // Process operations carry no path or access.
    let e =
        map(json!({"Operation": "Process", "Resource": "/bin/x", "Data": "syscall=SYS_EXECVE"}));
    assert_eq!((e.path, e.access), (None, None));
}

#[test]
fn syscall_operation_keeps_absolute_paths_only() {
    let e = map(
        json!({"Operation": "Syscall", "Resource": "/home/jane-doe", "Data": "syscall=SYS_RMDIR"}),
    );
    assert_eq!(e.path.as_deref(), Some("/home/jane-doe"));
    assert_eq!(e.syscall.as_deref(), Some("SYS_RMDIR"));
    assert_eq!(e.access, None);
    let e =
        map(json!({"Operation": "Syscall", "Resource": "jane-doe", "Data": "syscall=SYS_RMDIR"}));
    assert_eq!(e.path, None);
    let e = map(json!({"Operation": "Syscall", "Data": "syscall=SYS_SETGID userid=0"}));
    assert_eq!(e.path, None);
    assert_eq!(e.syscall.as_deref(), Some("SYS_SETGID"));
}

#[test]
fn capability_is_found_and_normalised() {
    let cap = |res: &str, data: &str| {
        map(json!({"Operation": "Capabilities", "Resource": res, "Data": data})).capability
    };
    assert_eq!(cap("", "cap=net_raw").as_deref(), Some("CAP_NET_RAW"));
    assert_eq!(
        cap("sys_admin", "cap=net_raw").as_deref(),
        Some("CAP_NET_RAW")
    );
    assert_eq!(cap("net_raw", "").as_deref(), Some("CAP_NET_RAW"));
    assert_eq!(cap(" CAP_SYS_ADMIN ", "").as_deref(), Some("CAP_SYS_ADMIN"));
    assert_eq!(
        cap("capability=CAP_NET_BIND_SERVICE syscall=SYS_BIND", "").as_deref(),
        Some("CAP_NET_BIND_SERVICE")
    );
    assert_eq!(
        cap("CAP_NET_RAW", "lsm=CAPABLE CAP_NET_RAW").as_deref(),
        Some("CAP_NET_RAW")
    );
    assert_eq!(
        cap("", "lsm=CAPABLE cap_chown").as_deref(),
        Some("CAP_CHOWN")
    );
    assert_eq!(cap("", "lsm=CAPABLE é").as_deref(), None);
    assert_eq!(cap("", ""), None);
    assert_eq!(cap("net raw", ""), None);
    assert_eq!(cap("cap_", ""), None);
    assert_eq!(cap("net-raw", ""), None);
}

// ---- network -------------------------------------------------------------------------

#[test]
fn network_connect_ipv4() {
    for res in [
        "sa_family=AF_INET sin_port=53 sin_addr=10.0.0.10",
        "sin_addr=10.0.0.10 sa_family=AF_INET sin_port=53",
    ] {
        let e = net(res, "syscall=SYS_CONNECT fd=10");
        assert_eq!(e.op, Op::Network);
        assert_eq!(e.direction.as_deref(), Some("connect"), "{res}");
        assert_eq!(e.remote_addr.as_deref(), Some("10.0.0.10"), "{res}");
        assert_eq!(e.remote_port, Some(53), "{res}");
        assert_eq!((&e.local_addr, e.local_port), (&None, None));
        assert_eq!(e.proto, None, "{res}: no socket type, no protocol");
        assert_eq!(e.syscall.as_deref(), Some("SYS_CONNECT"));
    }
}

#[test]
fn network_connect_ipv6() {
    let e = net(
        "sa_family=AF_INET6 sin6_port=443 sin6_addr=2001:db8::1",
        "syscall=SYS_CONNECT fd=4",
    );
    assert_eq!(e.direction.as_deref(), Some("connect"));
    assert_eq!(e.remote_addr.as_deref(), Some("2001:db8::1"));
    assert_eq!(e.remote_port, Some(443));
    // What KubeArmor itself writes for AF_INET6: sin_port/sin_addr.
    let e = net(
        "sa_family=AF_INET6 sin_port=8080 sin_addr=::ffff:10.244.0.1",
        "syscall=SYS_CONNECT fd=4",
    );
    assert_eq!(e.remote_addr.as_deref(), Some("::ffff:10.244.0.1"));
    assert_eq!(e.remote_port, Some(8080));
}

#[test]
fn network_bind_and_listen_are_local() {
    let e = net(
        "sa_family=AF_INET sin_port=8080 sin_addr=0.0.0.0",
        "syscall=SYS_BIND fd=3",
    );
    assert_eq!(e.direction.as_deref(), Some("bind"));
    assert_eq!(e.local_addr.as_deref(), Some("0.0.0.0"));
    assert_eq!(e.local_port, Some(8080));
    assert_eq!((&e.remote_addr, e.remote_port), (&None, None));

    let e = net("", "syscall=SYS_LISTEN fd=3");
    assert_eq!(e.direction.as_deref(), Some("listen"));
    assert_eq!(
        (&e.local_addr, e.local_port, &e.remote_addr),
        (&None, None, &None)
    );
}

#[test]
fn network_accept_and_send_syscalls_report_the_peer() {
    let e = net(
        "sa_family=AF_INET sin_port=51234 sin_addr=10.1.1.1",
        "syscall=SYS_ACCEPT4 fd=3",
    );
    assert_eq!(e.direction.as_deref(), Some("accept"));
    assert_eq!(e.remote_addr.as_deref(), Some("10.1.1.1"));
    assert_eq!(e.remote_port, Some(51234));
    let e = net(
        "sa_family=AF_INET sin_port=53 sin_addr=8.8.8.8",
        "syscall=SYS_SENDTO fd=3",
    );
    assert_eq!(e.direction.as_deref(), Some("send"));
    assert_eq!(e.remote_addr.as_deref(), Some("8.8.8.8"));
    assert_eq!(e.remote_port, Some(53));
    assert_eq!(
        net("", "syscall=SYS_SENDMSG").direction.as_deref(),
        Some("send")
    );
    assert_eq!(
        net("", "syscall=SYS_ACCEPT").direction.as_deref(),
        Some("accept")
    );
}

#[test]
fn network_tcp_connect_probe() {
    let e = net(
        "remoteip=34.210.7.19 port=443 protocol=TCP",
        "kprobe=tcp_connect domain=AF_INET",
    );
    assert_eq!(e.direction.as_deref(), Some("connect"));
    assert_eq!(e.proto.as_deref(), Some("tcp"));
    assert_eq!(e.remote_addr.as_deref(), Some("34.210.7.19"));
    assert_eq!(e.remote_port, Some(443));
    assert_eq!(e.syscall, None);

    let e = net(
        "remoteip=2001:db8::2 port=80 protocol=TCPv6",
        "kprobe=tcp_connect domain=AF_INET6",
    );
    assert_eq!(e.proto.as_deref(), Some("tcp"));
    assert_eq!(e.remote_addr.as_deref(), Some("2001:db8::2"));
    assert_eq!(e.remote_port, Some(80));
}

#[test]
fn network_tcp_accept_probe_reports_the_local_port() {
    let e = net(
        "remoteip=127.0.0.1 port=9099 protocol=TCP",
        "kprobe=tcp_accept domain=AF_INET",
    );
    assert_eq!(e.direction.as_deref(), Some("accept"));
    assert_eq!(e.proto.as_deref(), Some("tcp"));
    assert_eq!(e.remote_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(e.remote_port, None);
    assert_eq!(e.local_port, Some(9099));
    assert_eq!(e.local_addr, None);
    assert_eq!(e.syscall, None);
}

#[test]
fn network_socket_creation_protocols() {
    let cases: &[(&str, Option<&str>)] = &[
        (
            "domain=AF_INET type=SOCK_STREAM|SOCK_NONBLOCK protocol=0",
            Some("tcp"),
        ),
        (
            "domain=AF_INET6 type=SOCK_DGRAM|SOCK_CLOEXEC protocol=0",
            Some("udp"),
        ),
        (
            "domain=AF_INET type=SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC protocol=0",
            Some("udp"),
        ),
        ("domain=AF_INET type=SOCK_DGRAM protocol=1", Some("icmp")),
        ("domain=AF_INET6 type=SOCK_RAW protocol=58", Some("icmp")),
        ("domain=AF_INET type=SOCK_RAW protocol=ICMP", Some("icmp")),
        (
            "domain=AF_INET6 type=SOCK_DGRAM protocol=IPv6-ICMP",
            Some("icmp"),
        ),
        ("domain=AF_INET type=SOCK_RAW protocol=255", Some("raw")),
        ("domain=AF_INET type=SOCK_RAW protocol=TCP", Some("raw")),
        ("domain=AF_INET type=SOCK_STREAM protocol=TCP", Some("tcp")),
        ("domain=AF_INET type=SOCK_DGRAM protocol=UDP", Some("udp")),
        ("domain=AF_INET type=SOCK_STREAM protocol=6", Some("tcp")),
        (
            "domain=AF_INET type=SOCK_STREAM protocol=HOPOPT",
            Some("tcp"),
        ),
        (
            "domain=AF_UNIX type=SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC protocol=0",
            Some("unix"),
        ),
        ("domain=AF_UNIX type=SOCK_DGRAM protocol=0", Some("unix")),
        ("domain=AF_PACKET type=SOCK_RAW protocol=768", Some("raw")),
        ("domain=AF_PACKET type=SOCK_DGRAM protocol=768", Some("raw")),
        ("domain=AF_NETLINK type=SOCK_RAW protocol=0", Some("raw")),
        ("domain=AF_NETLINK type=SOCK_DGRAM protocol=0", None),
        ("domain=AF_INET type=SOCK_STREAM protocol=SCTP", None),
        ("domain=AF_INET protocol=0", None),
    ];
    for (res, want) in cases {
        let e = net(res, "syscall=SYS_SOCKET");
        assert_eq!(e.proto.as_deref(), *want, "{res}");
        assert_eq!(e.direction.as_deref(), Some("socket"), "{res}");
        assert_eq!(e.syscall.as_deref(), Some("SYS_SOCKET"), "{res}");
        assert_eq!(
            (
                &e.remote_addr,
                e.remote_port,
                &e.local_addr,
                e.local_port,
                &e.remote_name
            ),
            (&None, None, &None, None, &None),
            "{res}"
        );
    }
}

#[test]
fn network_bpf_lsm_shapes() {
    let e = net(
        "protocol=TCP,type=SOCK_STREAM",
        "lsm=SOCKET_CONNECT protocol=TCP,type=SOCK_STREAM",
    );
    assert_eq!(
        (e.direction.as_deref(), e.proto.as_deref()),
        (Some("connect"), Some("tcp"))
    );
    assert_eq!(e.syscall, None);
    let e = net(
        "protocol=ICMP,type=SOCK_RAW",
        "lsm=SOCKET_CREATE protocol=ICMP,type=SOCK_RAW",
    );
    assert_eq!(
        (e.direction.as_deref(), e.proto.as_deref()),
        (Some("socket"), Some("icmp"))
    );
    let e = net("type=SOCK_RAW", "lsm=SOCKET_ACCEPT type=SOCK_RAW");
    assert_eq!(
        (e.direction.as_deref(), e.proto.as_deref()),
        (Some("accept"), Some("raw"))
    );
    // KubeArmor's placeholder for a protocol it could not name.
    let e = net("unknown", "lsm=SOCKET_CREATE unknown");
    assert_eq!(
        (e.direction.as_deref(), e.proto.as_deref()),
        (Some("socket"), None)
    );
    assert_eq!(e.remote_name, None);
}

#[test]
fn network_dns_shapes() {
    let e = net(
        "google.com",
        "lsm=SOCKET_SENDMSG domain=google.com.multiubuntu.svc.cluster.local",
    );
    assert_eq!(e.direction.as_deref(), Some("send"));
    assert_eq!(e.remote_name.as_deref(), Some("google.com"));
    assert_eq!(
        (&e.proto, &e.remote_addr, e.remote_port),
        (&None, &None, None)
    );
    assert_eq!(e.syscall, None);

    let e = net(
        "sa_family=AF_INET sin_port=53",
        "kfunc=UDP_SENDMSG,domain=google.com.default.svc.cluster.local,daddr=10.43.0.10,qtype=AAAA",
    );
    assert_eq!(e.direction.as_deref(), Some("send"));
    assert_eq!(e.proto.as_deref(), Some("udp"));
    assert_eq!(e.remote_addr.as_deref(), Some("10.43.0.10"));
    assert_eq!(e.remote_port, Some(53));
    assert_eq!(
        e.remote_name.as_deref(),
        Some("google.com.default.svc.cluster.local")
    );
    assert_eq!(e.syscall, None);
}

#[test]
fn network_unix_socket_connect() {
    let e = net(
        "sa_family=AF_UNIX sun_path=/var/run/docker.sock",
        "syscall=SYS_CONNECT fd=3",
    );
    assert_eq!(e.direction.as_deref(), Some("connect"));
    assert_eq!(e.proto.as_deref(), Some("unix"));
    assert_eq!(e.remote_addr.as_deref(), Some("/var/run/docker.sock"));
    assert_eq!(e.remote_port, None);
}

#[test]
fn network_in_the_older_format_with_the_syscall_in_resource() {
    let e = net(
        "syscall=SYS_CONNECT sa_family=AF_INET sin_port=80 sin_addr=10.1.2.3",
        "fd=3",
    );
    assert_eq!(e.direction.as_deref(), Some("connect"));
    assert_eq!(e.remote_addr.as_deref(), Some("10.1.2.3"));
    assert_eq!(e.remote_port, Some(80));
    assert_eq!(e.syscall.as_deref(), Some("SYS_CONNECT"));
}

#[test]
fn unparseable_network_resources_still_import() {
    for (res, data) in [
        ("", ""),
        ("garbage=== ###", "whatever"),
        ("{}[]", "=;="),
        ("é=ü", "ü"),
    ] {
        let e = net(res, data);
        assert_eq!(e.op, Op::Network);
        assert_eq!(
            (
                &e.proto,
                &e.direction,
                &e.remote_addr,
                e.remote_port,
                &e.remote_name,
                &e.local_addr,
                e.local_port
            ),
            (&None, &None, &None, None, &None, &None, None),
            "{res:?} {data:?}"
        );
    }
    let e = net(
        "sa_family=AF_INET sin_port=99999 sin_addr=",
        "syscall=SYS_CONNECT",
    );
    assert_eq!(e.direction.as_deref(), Some("connect"));
    assert_eq!((&e.remote_addr, e.remote_port), (&None, None));
    // A bare address is an address, not a name.
    let e = net("10.0.0.1", "");
    assert_eq!(e.remote_addr.as_deref(), Some("10.0.0.1"));
    assert_eq!(e.remote_name, None);
}

// ---- reading -------------------------------------------------------------------------

#[test]
fn json_lines_with_blank_lines_and_crlf() {
    let out = read(concat!(
        "\n",
        "{\"Operation\":\"File\",\"Resource\":\"/a\"}\n",
        "   \n",
        "\r\n",
        "{\"Operation\":\"Process\",\"Resource\":\"/bin/b\"}\r\n",
    ));
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.events.len(), 2);
    assert_eq!(out.events[0].path.as_deref(), Some("/a"));
    assert_eq!(out.events[0].source, Source::Import);
    assert_eq!(out.events[1].process.as_deref(), Some("/bin/b"));
    assert_eq!(out.lines, 5);
    assert_eq!(out.without_timestamp, 2);
}

#[test]
fn bad_lines_are_reported_with_their_numbers_and_the_rest_imported() {
    let input = [
        r#"{"Operation":"File","Resource":"/ok1"}"#,
        r#"{"Operation":"File","Resource":"#,
        "[1,2,3]",
        "",
        r#"{"Resource":"/no-operation"}"#,
        r#"{"Operation":"File","PID":"x1"}"#,
        r#"{"Operation":"Foo"}"#,
        r#"{"Operation":"File","Resource":"/ok2"}"#,
        r#""just a string""#,
        r#"{"Operation":"File","Resource":"/ok3"} trailing"#,
    ]
    .join("\n");
    let out = read(&input);
    let paths: Vec<_> = out.events.iter().map(|e| e.path.as_deref()).collect();
    assert_eq!(paths, [Some("/ok1"), Some("/ok2")]);
    assert_eq!(error_lines(&out), [2, 3, 5, 6, 7, 9, 10]);
    let msg = |i: usize| out.errors[i].message.as_str();
    assert!(
        msg(0).starts_with("invalid JSON: EOF while parsing"),
        "{}",
        msg(0)
    );
    assert!(msg(0).ends_with("(column 31)"), "{}", msg(0));
    assert_eq!(msg(1), "expected a JSON object, found an array");
    assert_eq!(msg(2), "missing field Operation");
    assert!(
        msg(3).starts_with(r#"bad field PID: expected an integer, found string "x1""#),
        "{}",
        msg(3)
    );
    assert_eq!(msg(4), "unknown Operation \"Foo\"");
    assert_eq!(msg(5), "expected a JSON object, found a string");
    assert!(
        msg(6).starts_with("invalid JSON: trailing characters"),
        "{}",
        msg(6)
    );
    assert_eq!(out.errors[2].to_string(), "line 5: missing field Operation");
    assert_eq!(out.lines, 10);
}

#[test]
fn a_json_array_reports_the_line_where_each_element_starts() {
    let input = concat!(
        "[\n",                                                          // 1
        "  {\"Operation\": \"File\",\n",                                // 2
        "   \"Resource\": \"/a\"},\n",                                  // 3
        "  {\"Operation\": \"Bogus\"},\n",                              // 4
        "  {\"Operation\": \"Network\", \"Resource\": \"x,y\"}, 42,\n", // 5
        "  {\n",                                                        // 6
        "    \"Operation\": \"Process\",\n",                            // 7
        "    \"PID\": \"7\"\n",                                         // 8
        "  }\n",                                                        // 9
        "]\n",                                                          // 10
    );
    let out = read(input);
    let ops: Vec<_> = out.events.iter().map(|e| e.op).collect();
    assert_eq!(ops, [Op::File, Op::Network, Op::Process]);
    assert_eq!(out.events[0].path.as_deref(), Some("/a"));
    assert_eq!(out.events[2].pid, Some(7));
    assert_eq!(error_lines(&out), [4, 5]);
    assert_eq!(out.errors[0].message, "unknown Operation \"Bogus\"");
    assert_eq!(
        out.errors[1].message,
        "expected a JSON object, found a number"
    );
    assert_eq!(out.lines, 10);
}

#[test]
fn a_json_array_on_one_line_and_empty_inputs() {
    let out = read(r#"[{"Operation":"File"},{"Operation":"Syscall"}]"#);
    assert_eq!(out.events.len(), 2);
    assert!(out.errors.is_empty());
    assert_eq!(out.lines, 1);

    for (input, lines) in [("", 0), ("\n\n", 2), ("  ", 1), ("[]", 1), ("[\n]\n", 2)] {
        let out = read(input);
        assert!(
            out.events.is_empty() && out.errors.is_empty(),
            "{input:?}: {out:?}"
        );
        assert_eq!(out.lines, lines, "{input:?}");
    }
}

#[test]
fn array_element_strings_may_hold_brackets_commas_and_escapes() {
    let out = read(
        r#"[{"Operation":"File","Resource":"/x,]}{[\"q\\"}, {"Operation":"File","Resource":"/y"}]"#,
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let paths: Vec<_> = out.events.iter().map(|e| e.path.as_deref()).collect();
    assert_eq!(paths, [Some(r#"/x,]}{["q\"#), Some("/y")]);
}

#[test]
fn broken_arrays() {
    // Unterminated: the complete elements are kept.
    let out = read("[{\"Operation\":\"File\"},\n{\"Operation\":\"File\"}");
    assert_eq!(out.events.len(), 2);
    assert_eq!(error_lines(&out), [2]);
    assert!(out.errors[0].message.starts_with("unterminated JSON array"));

    let out = read("[{\"Operation\":\"File\"},\n{\"Operation\":");
    assert_eq!(out.events.len(), 1);
    assert_eq!(error_lines(&out), [2, 2]);
    assert!(
        out.errors[0].message.starts_with("invalid JSON: EOF"),
        "{:?}",
        out.errors
    );
    assert!(out.errors[1].message.starts_with("unterminated JSON array"));

    // Data after the array.
    let out = read("[{\"Operation\":\"File\"}]\n{\"Operation\":\"File\"}\n\n");
    assert_eq!(out.events.len(), 1);
    assert_eq!(error_lines(&out), [2]);
    assert!(out.errors[0]
        .message
        .starts_with("unexpected data after the end of the JSON array"));
    assert_eq!(out.lines, 3);

    // An empty element.
    let out = read("[{\"Operation\":\"File\"},,\n{\"Operation\":\"File\"}]");
    assert_eq!(out.events.len(), 2);
    assert_eq!(error_lines(&out), [1]);
    assert_eq!(out.errors[0].message, "empty element in the JSON array");
}

#[test]
fn pretty_printed_objects_one_after_another() {
    let input = concat!(
        "{\n",                              // 1
        "  \"Operation\": \"File\",\n",     // 2
        "  \"Resource\": \"/a\"\n",         // 3
        "}\n",                              // 4
        "{\n",                              // 5
        "  \"Operation\": \"Process\",\n",  // 6
        "  \"Owner\": {\n",                 // 7
        "    \"Ref\": \"Deployment\",\n",   // 8
        "    \"Name\": \"web\"\n",          // 9
        "  },\n",                           // 10
        "  \"Resource\": \"/bin/ls -l\"\n", // 11
        "}\n",                              // 12
        "{\n",                              // 13
        "  \"Operation\": \"Bogus\"\n",     // 14
        "}\n",                              // 15
    );
    let out = read(input);
    assert_eq!(out.events.len(), 2);
    assert_eq!(out.events[0].path.as_deref(), Some("/a"));
    assert_eq!(out.events[1].workload.as_deref(), Some("web"));
    assert_eq!(out.events[1].args.as_deref(), Some("-l"));
    assert_eq!(error_lines(&out), [13]);
    assert_eq!(out.lines, 15);
}

#[test]
fn a_pretty_printed_object_cut_short_is_reported_and_reading_resumes() {
    let input = concat!(
        "{\n",                             // 1
        "  \"Operation\": \"File\",\n",    // 2
        "  \"Resource\": \"/a\"\n",        // 3
        "}\n",                             // 4
        "{\n",                             // 5
        "  \"Operation\": \"File\",\n",    // 6
        "  \"Resource\": \"/cut\n",        // 7: the string never ends
        "{\n",                             // 8
        "  \"Operation\": \"Network\"\n",  // 9
        "}\n",                             // 10
        "{\n",                             // 11
        "  \"Operation\": \"Syscall\",\n", // 12
        "  \"Resource\": 5\n",             // 13
        "}\n",                             // 14
    );
    let out = read(input);
    let ops: Vec<_> = out.events.iter().map(|e| e.op).collect();
    assert_eq!(ops, [Op::File, Op::Network]);
    assert_eq!(error_lines(&out), [5, 11]);
    assert!(
        out.errors[0].message.starts_with("invalid JSON: "),
        "{:?}",
        out.errors
    );
    // The line break ending line 7 inside the string is what serde_json trips on.
    assert!(
        out.errors[0].message.contains("(line 8, column 0)"),
        "{:?}",
        out.errors
    );
    assert!(out.errors[1]
        .message
        .starts_with("bad field Resource: expected a string"));
}

#[test]
fn a_huge_line_is_an_error_and_the_next_lines_still_import() {
    let input = format!(
        "{}\n{}\n{}\n{}",
        r#"{"Operation":"File","Resource":"/a"}"#,
        "x".repeat(1000),
        r#"{"Operation":"File","Resource":"/b"}"#,
        "y".repeat(1000),
    );
    let out = read_json_logs_limited(input.as_bytes(), 64);
    assert_eq!(out.events.len(), 2);
    assert_eq!(error_lines(&out), [2, 4]);
    assert_eq!(
        out.errors[0].message,
        "line is longer than 64 bytes; skipped"
    );
    assert_eq!(out.lines, 4);

    // At the real limit, through the public entry point.
    let huge = format!(
        "{{\"Operation\":\"File\",\"Resource\":\"{}\"}}",
        "x".repeat(MAX_RECORD_BYTES)
    );
    let out = read(&format!(
        "{huge}\n{{\"Operation\":\"File\",\"Resource\":\"/c\"}}\n{huge}"
    ));
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.events[0].path.as_deref(), Some("/c"));
    assert_eq!(error_lines(&out), [1, 3]);
    assert!(out.errors.iter().all(|e| e.message.contains("longer than")));
    assert_eq!(out.lines, 3);
}

#[test]
fn a_huge_array_element_is_an_error_and_the_others_still_import() {
    let input = format!(
        "[{},\n{{\"Operation\":\"File\",\"Resource\":\"{}\"}},\n{}]",
        r#"{"Operation":"File","Resource":"/a"}"#,
        "x".repeat(500),
        r#"{"Operation":"File","Resource":"/b"}"#,
    );
    let out = read_json_logs_limited(input.as_bytes(), 100);
    let paths: Vec<_> = out.events.iter().map(|e| e.path.as_deref()).collect();
    assert_eq!(paths, [Some("/a"), Some("/b")]);
    assert_eq!(error_lines(&out), [2]);
    assert_eq!(
        out.errors[0].message,
        "record is larger than 100 bytes; skipped"
    );
}

#[test]
fn hostile_inputs_give_errors_not_panics() {
    let ok = r#"{"Operation":"File"}"#;
    let bad_lines = [
        "[".repeat(100_000),
        "{\"a\":".repeat(100_000),
        format!("{}{}", "{\"Operation\":\"File\",\"x\":", "[".repeat(50_000)),
        "\u{0}\u{1}\u{7f}".to_owned(),
        r#"{"Operation":"File","PID":1e400}"#.to_owned(),
        format!("{{\"Operation\":\"{}\"}}", "é".repeat(100_000)),
        "}{][\"\\".to_owned(),
    ];
    let mut input = String::from(ok);
    for line in &bad_lines {
        input.push('\n');
        input.push_str(line);
    }
    input.push('\n');
    input.push_str(ok);
    let out = read(&input);
    assert_eq!(out.events.len(), 2);
    assert_eq!(error_lines(&out), [2, 3, 4, 5, 6, 7, 8]);
    assert!(
        out.errors.iter().all(|e| e.message.len() < 200),
        "{:?}",
        out.errors
    );

    // Invalid UTF-8.
    let out = read_json_logs(
        &b"{\"Operation\":\"File\",\"Resource\":\"\xff\xfe\"}\n{\"Operation\":\"File\"}"[..],
    );
    assert_eq!(out.events.len(), 1);
    assert_eq!(error_lines(&out), [1]);
    assert!(out.errors[0].message.starts_with("invalid JSON"));

    // An array that never closes, nested beyond any limit.
    let input = format!("[{}", "[".repeat(1_000_000));
    let out = read_json_logs_limited(input.as_bytes(), 1000);
    assert!(out.events.is_empty());
    assert_eq!(out.errors.len(), 2, "{:?}", out.errors);
    assert!(out.errors[0]
        .message
        .starts_with("record is larger than 1000 bytes"));
    assert!(out.errors[1].message.starts_with("unterminated JSON array"));

    // A pretty-printed stream made of closing braces and quotes.
    let out = read("{\n}}}}\n\"\n{\n\"\"\n");
    assert!(!out.errors.is_empty());
}

/// Yields its data in small pieces, is interrupted once, then fails.
struct Flaky {
    data: Vec<u8>,
    pos: usize,
    interrupted: bool,
}

impl io::Read for Flaky {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.interrupted {
            self.interrupted = true;
            return Err(io::ErrorKind::Interrupted.into());
        }
        if self.pos >= self.data.len() {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.data.len() - self.pos).min(7);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn flaky(data: &str) -> io::BufReader<Flaky> {
    io::BufReader::with_capacity(
        16,
        Flaky {
            data: data.as_bytes().to_vec(),
            pos: 0,
            interrupted: false,
        },
    )
}

#[test]
fn read_errors_are_reported_and_end_the_input() {
    let out = read_json_logs(flaky(
        "{\"Operation\":\"File\",\"Resource\":\"/a\"}\n{\"Opera",
    ));
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.events[0].path.as_deref(), Some("/a"));
    assert_eq!(error_lines(&out), [2]);
    assert!(
        out.errors[0].message.contains("disk on fire"),
        "{:?}",
        out.errors
    );

    let out = read_json_logs(flaky(
        "[{\"Operation\":\"File\"},\n{\"Operation\":\"Syscall\"},\n{\"Oper",
    ));
    assert_eq!(out.events.len(), 2);
    assert_eq!(error_lines(&out), [3], "{:?}", out.errors);
    assert!(out.errors[0].message.contains("disk on fire"));
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let out = read("\u{feff}{\"Operation\":\"File\"}\n");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.lines, 1);
    let out = read("\u{feff}[{\"Operation\":\"File\"}]");
    assert_eq!(out.events.len(), 1);
}

#[test]
fn line_error_display() {
    let e = LineError {
        line: 3,
        message: "unknown Operation \"Foo\"".into(),
    };
    assert_eq!(e.to_string(), "line 3: unknown Operation \"Foo\"");
}
