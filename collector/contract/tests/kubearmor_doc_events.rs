//! Conformance of the KubeArmor mapping on the 18 telemetry events quoted in KubeArmor's own
//! documentation (`shared/kubearmor/events/doc-events.jsonl`). Every expected value below was
//! written by hand from the event and the mapping rules in `karmor_contract::kubearmor`.

use std::fs::File;
use std::io::BufReader;

use karmor_contract::kubearmor::read_json_logs;
use karmor_contract::{Event, Op, Source};

const DOC_EVENTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/kubearmor/events/doc-events.jsonl"
);

/// The expected row of one line. Fields left at their default are expected to be `None`,
/// empty or false.
#[derive(Default)]
struct Want {
    line: u64,
    op: Option<Op>,
    ts: i64,
    cluster: &'static str,
    node: &'static str,
    host: bool,
    namespace: Option<&'static str>,
    pod: Option<&'static str>,
    container: Option<&'static str>,
    workload_kind: Option<&'static str>,
    workload: Option<&'static str>,
    labels: &'static [&'static str],
    pid: Option<i32>,
    ppid: Option<i32>,
    uid: Option<u32>,
    process: Option<&'static str>,
    parent_process: Option<&'static str>,
    args: Option<&'static str>,
    path: Option<&'static str>,
    access: Option<&'static str>,
    proto: Option<&'static str>,
    direction: Option<&'static str>,
    remote_addr: Option<&'static str>,
    remote_port: Option<u16>,
    remote_name: Option<&'static str>,
    syscall: Option<&'static str>,
    capability: Option<&'static str>,
    result: Option<&'static str>,
    policy: Option<&'static str>,
    action: Option<&'static str>,
}

fn check(got: &Event, want: &Want) {
    let line = want.line;
    let s = |v: &Option<String>| v.as_deref().map(str::to_owned);
    let w = |v: Option<&str>| v.map(str::to_owned);
    assert_eq!(Some(got.op), want.op, "line {line}: op");
    assert_eq!(got.source, Source::Import, "line {line}: source");
    assert_eq!(got.ts_first, want.ts, "line {line}: ts_first");
    assert_eq!(got.ts_last, want.ts, "line {line}: ts_last");
    assert_eq!(got.count, 1, "line {line}: count");
    assert_eq!(
        s(&got.cluster),
        w(Some(want.cluster)),
        "line {line}: cluster"
    );
    assert_eq!(got.node, want.node, "line {line}: node");
    assert_eq!(got.host, want.host, "line {line}: host");
    assert_eq!(
        s(&got.namespace),
        w(want.namespace),
        "line {line}: namespace"
    );
    assert_eq!(s(&got.pod), w(want.pod), "line {line}: pod");
    assert_eq!(
        s(&got.container),
        w(want.container),
        "line {line}: container"
    );
    assert_eq!(
        s(&got.workload_kind),
        w(want.workload_kind),
        "line {line}: workload_kind"
    );
    assert_eq!(s(&got.workload), w(want.workload), "line {line}: workload");
    assert_eq!(got.labels, want.labels, "line {line}: labels");
    assert_eq!(got.pid, want.pid, "line {line}: pid");
    assert_eq!(got.ppid, want.ppid, "line {line}: ppid");
    assert_eq!(got.uid, want.uid, "line {line}: uid");
    assert_eq!(s(&got.process), w(want.process), "line {line}: process");
    assert_eq!(
        s(&got.parent_process),
        w(want.parent_process),
        "line {line}: parent_process"
    );
    assert_eq!(s(&got.args), w(want.args), "line {line}: args");
    assert_eq!(s(&got.path), w(want.path), "line {line}: path");
    assert_eq!(s(&got.access), w(want.access), "line {line}: access");
    assert_eq!(s(&got.proto), w(want.proto), "line {line}: proto");
    assert_eq!(
        s(&got.direction),
        w(want.direction),
        "line {line}: direction"
    );
    assert_eq!(s(&got.local_addr), None, "line {line}: local_addr");
    assert_eq!(got.local_port, None, "line {line}: local_port");
    assert_eq!(
        s(&got.remote_addr),
        w(want.remote_addr),
        "line {line}: remote_addr"
    );
    assert_eq!(
        got.remote_port, want.remote_port,
        "line {line}: remote_port"
    );
    assert_eq!(
        s(&got.remote_name),
        w(want.remote_name),
        "line {line}: remote_name"
    );
    assert_eq!(s(&got.syscall), w(want.syscall), "line {line}: syscall");
    assert_eq!(
        s(&got.capability),
        w(want.capability),
        "line {line}: capability"
    );
    assert_eq!(s(&got.result), w(want.result), "line {line}: result");
    assert_eq!(s(&got.policy), w(want.policy), "line {line}: policy");
    assert_eq!(s(&got.action), w(want.action), "line {line}: action");
    assert_eq!(got.pod_uid, None, "line {line}: pod_uid");
}

fn expected() -> Vec<Want> {
    vec![
        // 1: host process exec blocked by a host policy; Source is only "zsh".
        Want {
            line: 1,
            op: Some(Op::Process),
            ts: 1_639_803_960_077_564_000,
            cluster: "Default",
            node: "pandora",
            host: true,
            pid: Some(3_390_423),
            ppid: Some(168_556),
            uid: Some(1000),
            process: Some("/usr/bin/sleep"),
            parent_process: Some("zsh"),
            syscall: Some("SYS_EXECVE"),
            result: Some("Permission denied"),
            policy: Some("hsp-kubearmor-dev-proc-path-block"),
            action: Some("Block"),
            ..Want::default()
        },
        // 2: nginx reads its config; no Owner, Deployment from the pod name.
        Want {
            line: 2,
            op: Some(Op::File),
            ts: 1_686_478_371_967_519_000,
            cluster: "default",
            node: "ip-172-31-24-142",
            namespace: Some("default"),
            pod: Some("nginx-8f458dc5b-fl42t"),
            container: Some("nginx"),
            workload_kind: Some("Deployment"),
            workload: Some("nginx"),
            labels: &["app=nginx"],
            pid: Some(825),
            ppid: Some(3_224_933),
            process: Some("/bin/cat"),
            parent_process: Some(
                "/x86_64-bottlerocket-linux-gnu/sys-root/usr/bin/containerd-shim-runc-v2",
            ),
            args: Some("/etc/nginx/conf.d/default.conf"),
            path: Some("/etc/nginx/conf.d/default.conf"),
            access: Some("read"),
            syscall: Some("SYS_OPENAT"),
            result: Some("Passed"),
            policy: Some("audit-etc-nginx-access"),
            action: Some("Audit"),
            ..Want::default()
        },
        // 3: rmdir on the host, Syscall operation with an absolute Resource.
        Want {
            line: 3,
            op: Some(Op::Syscall),
            ts: 1_661_936_983_894_787_000,
            cluster: "default",
            node: "vagrant",
            host: true,
            pid: Some(308_002),
            ppid: Some(308_001),
            process: Some("/usr/bin/rmdir"),
            args: Some("jane-doe"),
            path: Some("/home/jane-doe"),
            syscall: Some("SYS_RMDIR"),
            result: Some("Passed"),
            policy: Some("audit-home-rmdir"),
            action: Some("Audit"),
            ..Want::default()
        },
        // 4: a container log without any time: placed at the epoch.
        Want {
            line: 4,
            op: Some(Op::File),
            ts: 0,
            cluster: "default",
            node: "aks-agentpool-16128849-vmss000000",
            namespace: Some("accuknox-agents"),
            pod: Some("discovery-engine-6f5c4df7b4-q8zbc"),
            container: Some("discovery-engine"),
            workload_kind: Some("Deployment"),
            workload: Some("discovery-engine"),
            labels: &["app=discovery-engine"],
            pid: Some(1),
            ppid: Some(967_496),
            process: Some("/knoxAutoPolicy"),
            parent_process: Some("/usr/bin/containerd-shim-runc-v2"),
            path: Some("/var/run/secrets/kubernetes.io/serviceaccount/token"),
            access: Some("read"),
            syscall: Some("SYS_OPENAT"),
            result: Some("Passed"),
            ..Want::default()
        },
        // 5: package manager exec blocked; no time.
        Want {
            line: 5,
            op: Some(Op::Process),
            ts: 0,
            cluster: "default",
            node: "aks-agentpool-16128849-vmss000001",
            namespace: Some("wordpress-mysql"),
            pod: Some("wordpress-787f45786f-2q9wf"),
            container: Some("wordpress"),
            workload_kind: Some("Deployment"),
            workload: Some("wordpress"),
            labels: &["app=wordpress"],
            pid: Some(309_841),
            ppid: Some(309_835),
            process: Some("/usr/bin/apt"),
            parent_process: Some("/bin/bash"),
            syscall: Some("SYS_EXECVE"),
            result: Some("Permission denied"),
            policy: Some("harden-wordpress-pkg-mngr-exec"),
            action: Some("Block"),
            ..Want::default()
        },
        // 6: vault creates a unix socket; StatefulSet pod without Owner: no workload.
        Want {
            line: 6,
            op: Some(Op::Network),
            ts: 0,
            cluster: "default",
            node: "aks-agentpool-16128849-vmss000000",
            namespace: Some("default"),
            pod: Some("vault-0"),
            container: Some("vault"),
            labels: &[
                "app.kubernetes.io/instance=vault",
                "app.kubernetes.io/name=vault",
                "component=server",
                "helm.sh/chart=vault-0.24.1",
                "statefulset.kubernetes.io/pod-name=vault-0",
            ],
            pid: Some(3_558_570),
            ppid: Some(2_203_523),
            uid: Some(100),
            process: Some("/bin/vault"),
            parent_process: Some("/usr/bin/containerd-shim-runc-v2"),
            args: Some("status -tls-skip-verify"),
            proto: Some("unix"),
            direction: Some("socket"),
            syscall: Some("SYS_SOCKET"),
            result: Some("Passed"),
            policy: Some("ksp-vault-network"),
            action: Some("Audit"),
            ..Want::default()
        },
        // 7: sshd setgid blocked by the host default posture; no Resource.
        Want {
            line: 7,
            op: Some(Op::Syscall),
            ts: 1_692_814_089_522_743_000,
            cluster: "default",
            node: "gke-my-first-cluster-1-default-pool-9144db50-81gb",
            host: true,
            pid: Some(1_791_316),
            ppid: Some(1_791_315),
            uid: Some(204),
            process: Some("/usr/sbin/sshd"),
            parent_process: Some("/usr/sbin/sshd"),
            syscall: Some("SYS_SETGID"),
            result: Some("Operation not permitted"),
            policy: Some("DefaultPosture"),
            action: Some("Block"),
            ..Want::default()
        },
        // 8: DNS query blocked by BPF-LSM: bare host name in Resource.
        Want {
            line: 8,
            op: Some(Op::Network),
            ts: 1_779_770_817_355_927_000,
            cluster: "default",
            node: "aryan",
            namespace: Some("multiubuntu"),
            pod: Some("ubuntu-1-deployment-748575cfcc-5bdpq"),
            container: Some("ubuntu-1-container"),
            workload_kind: Some("Deployment"),
            workload: Some("ubuntu-1-deployment"),
            labels: &["container=ubuntu-1", "group=group-1"],
            pid: Some(114),
            uid: Some(0),
            process: Some("/usr/bin/curl"),
            parent_process: Some("/bin/bash"),
            args: Some("google.com"),
            direction: Some("send"),
            remote_name: Some("google.com"),
            result: Some("Permission denied"),
            policy: Some("block-dns-query-to-google-subdomains"),
            action: Some("Block"),
            ..Want::default()
        },
        // 9: DaemonSet pod, Owner given.
        Want {
            line: 9,
            op: Some(Op::Process),
            ts: 1_679_588_263_146_109_000,
            cluster: "default",
            node: "prateek-lenovo-ideapad-310-15isk",
            namespace: Some("default"),
            pod: Some("my-daemonset-xhrr9"),
            container: Some("my-container"),
            workload_kind: Some("DaemonSet"),
            workload: Some("my-daemonset"),
            labels: &["app=my-app"],
            pid: Some(46),
            ppid: Some(41),
            process: Some("/bin/sleep"),
            parent_process: Some("/bin/bash"),
            syscall: Some("SYS_EXECVE"),
            result: Some("Permission denied"),
            policy: Some("new"),
            action: Some("Block"),
            ..Want::default()
        },
        // 10: rmdir in a container; Deployment from the pod name.
        Want {
            line: 10,
            op: Some(Op::Syscall),
            ts: 1_661_936_575_841_537_000,
            cluster: "default",
            node: "vagrant",
            namespace: Some("default"),
            pod: Some("ubuntu-1-6779f689b5-jjcvh"),
            container: Some("nginx"),
            workload_kind: Some("Deployment"),
            workload: Some("ubuntu-1"),
            labels: &["container=ubuntu-1"],
            pid: Some(67),
            ppid: Some(47),
            process: Some("/bin/rmdir"),
            parent_process: Some("/bin/bash"),
            args: Some("home/jane-doe/"),
            path: Some("/home/jane-doe"),
            syscall: Some("SYS_RMDIR"),
            result: Some("Passed"),
            policy: Some("audit-home-rmdir"),
            action: Some("Audit"),
            ..Want::default()
        },
        // 11: the same event again (only Severity differs, which is not mapped).
        Want {
            line: 11,
            op: Some(Op::Syscall),
            ts: 1_661_936_575_841_537_000,
            cluster: "default",
            node: "vagrant",
            namespace: Some("default"),
            pod: Some("ubuntu-1-6779f689b5-jjcvh"),
            container: Some("nginx"),
            workload_kind: Some("Deployment"),
            workload: Some("ubuntu-1"),
            labels: &["container=ubuntu-1"],
            pid: Some(67),
            ppid: Some(47),
            process: Some("/bin/rmdir"),
            parent_process: Some("/bin/bash"),
            args: Some("home/jane-doe/"),
            path: Some("/home/jane-doe"),
            syscall: Some("SYS_RMDIR"),
            result: Some("Passed"),
            policy: Some("audit-home-rmdir"),
            action: Some("Audit"),
            ..Want::default()
        },
        // 12: touch creates a file (O_CREAT); no ParentProcessName.
        Want {
            line: 12,
            op: Some(Op::File),
            ts: 1_696_316_210_829_165_000,
            cluster: "aditya",
            node: "aditya",
            namespace: Some("wordpress-mysql"),
            pod: Some("mysql-74775b4bf4-65nqf"),
            container: Some("mysql"),
            workload_kind: Some("Deployment"),
            workload: Some("mysql"),
            labels: &["app=mysql"],
            pid: Some(167),
            ppid: Some(160),
            uid: Some(0),
            process: Some("/bin/touch"),
            args: Some("file"),
            path: Some("/sbin/file"),
            access: Some("create"),
            syscall: Some("SYS_OPEN"),
            result: Some("Permission denied"),
            policy: Some("harden-mysql-file-integrity-monitoring"),
            action: Some("Block"),
            ..Want::default()
        },
        // 13: rmdir as a File operation: delete.
        Want {
            line: 13,
            op: Some(Op::File),
            ts: 1_696_320_102_373_810_000,
            cluster: "aditya",
            node: "aditya",
            namespace: Some("wordpress-mysql"),
            pod: Some("mysql-74775b4bf4-65nqf"),
            container: Some("mysql"),
            workload_kind: Some("Deployment"),
            workload: Some("mysql"),
            labels: &["app=mysql"],
            pid: Some(185),
            ppid: Some(179),
            process: Some("/bin/rmdir"),
            parent_process: Some("/bin/bash"),
            args: Some("certs"),
            path: Some("/etc/ssl/certs"),
            access: Some("delete"),
            syscall: Some("SYS_RMDIR"),
            result: Some("Permission denied"),
            policy: Some("harden-mysql-trusted-cert-mod"),
            action: Some("Block"),
            ..Want::default()
        },
        // 14: read-only open denied by the default posture.
        Want {
            line: 14,
            op: Some(Op::File),
            ts: 1_696_485_467_935_622_000,
            cluster: "d3mo",
            node: "master-node",
            namespace: Some("wordpress-mysql"),
            pod: Some("wordpress-fb448db97-wj7n7"),
            container: Some("wordpress"),
            workload_kind: Some("Deployment"),
            workload: Some("wordpress"),
            labels: &["app=wordpress"],
            pid: Some(220),
            ppid: Some(219),
            uid: Some(1000),
            process: Some("/bin/cat"),
            parent_process: Some("/bin/dash"),
            args: Some("/etc/ca-certificates.conf"),
            path: Some("/etc/ca-certificates.conf"),
            access: Some("read"),
            syscall: Some("SYS_OPEN"),
            result: Some("Permission denied"),
            policy: Some("DefaultPosture"),
            action: Some("Block"),
            ..Want::default()
        },
        // 15: UDP socket creation denied.
        Want {
            line: 15,
            op: Some(Op::Network),
            ts: 1_696_588_301_935_146_000,
            cluster: "0-trust",
            node: "aditya",
            namespace: Some("default"),
            pod: Some("nginx-77b4fdf86c-x7sdm"),
            container: Some("nginx"),
            workload_kind: Some("Deployment"),
            workload: Some("nginx"),
            labels: &["app=nginx"],
            pid: Some(532),
            ppid: Some(525),
            process: Some("/usr/bin/curl"),
            parent_process: Some("/usr/bin/bash"),
            args: Some("www.google.com"),
            proto: Some("udp"),
            direction: Some("socket"),
            syscall: Some("SYS_SOCKET"),
            result: Some("Permission denied"),
            policy: Some("DefaultPosture"),
            action: Some("Block"),
            ..Want::default()
        },
        // 16: exec of kubectl; parent from Source since there is no ParentProcessName.
        Want {
            line: 16,
            op: Some(Op::Process),
            ts: 1_696_326_880_056_501_000,
            cluster: "aditya",
            node: "aditya",
            namespace: Some("default"),
            pod: Some("dvwa-web-566855bc5b-4j4vl"),
            container: Some("dvwa"),
            workload_kind: Some("Deployment"),
            workload: Some("dvwa-web"),
            labels: &["app=dvwa-web", "tier=frontend"],
            pid: Some(554),
            ppid: Some(548),
            uid: Some(0),
            process: Some("/usr/bin/kubectl"),
            parent_process: Some("/bin/bash"),
            syscall: Some("SYS_EXECVE"),
            result: Some("Permission denied"),
            policy: Some("DefaultPosture"),
            action: Some("Block"),
            ..Want::default()
        },
        // 17: unlinkat with empty flags: delete.
        Want {
            line: 17,
            op: Some(Op::File),
            ts: 1_696_577_978_182_538_000,
            cluster: "0-trust",
            node: "aditya",
            namespace: Some("default"),
            pod: Some("nginx-77b4fdf86c-x7sdm"),
            container: Some("nginx"),
            workload_kind: Some("Deployment"),
            workload: Some("nginx"),
            labels: &["app=nginx"],
            pid: Some(392),
            ppid: Some(379),
            process: Some("/usr/bin/rm"),
            parent_process: Some("/usr/bin/bash"),
            args: Some("/root/.bash_history"),
            path: Some("/root/.bash_history"),
            access: Some("delete"),
            syscall: Some("SYS_UNLINKAT"),
            result: Some("Permission denied"),
            policy: Some("DefaultPosture"),
            action: Some("Block"),
            ..Want::default()
        },
        // 18: tcpdump's AF_PACKET raw socket; labels separated by a space.
        Want {
            line: 18,
            op: Some(Op::Network),
            ts: 1_705_405_378_662_928_000,
            cluster: "k3sn0d3",
            node: "worker-node02",
            namespace: Some("multiubuntu"),
            pod: Some("ubuntu-1-deployment-f987bd4d6-xzcb8"),
            container: Some("ubuntu-1-container"),
            workload_kind: Some("Deployment"),
            workload: Some("ubuntu-1-deployment"),
            labels: &["container=ubuntu-1", "group=group-1"],
            pid: Some(124),
            ppid: Some(114),
            uid: Some(0),
            process: Some("/usr/sbin/tcpdump"),
            proto: Some("raw"),
            direction: Some("socket"),
            syscall: Some("SYS_SOCKET"),
            result: Some("Operation not permitted"),
            policy: Some("ksp-ubuntu-1-cap-net-raw-block"),
            action: Some("Block"),
            ..Want::default()
        },
    ]
}

#[test]
fn every_documented_event_maps_as_written_by_hand() {
    let file = File::open(DOC_EVENTS).unwrap_or_else(|e| {
        panic!(
            "the KubeArmor documentation events were expected at {DOC_EVENTS} \
             (shared/kubearmor/events/doc-events.jsonl next to the workspace): {e}"
        )
    });
    let out = read_json_logs(BufReader::new(file));

    assert!(out.errors.is_empty(), "unexpected errors: {:?}", out.errors);
    assert_eq!(out.lines, 18);
    assert_eq!(out.events.len(), 18);
    // Lines 4, 5 and 6 carry neither UpdatedTime nor Timestamp.
    assert_eq!(out.without_timestamp, 3);

    let wants = expected();
    assert_eq!(wants.len(), 18);
    for (got, want) in out.events.iter().zip(&wants) {
        check(got, want);
    }

    // Images and container ids are copied verbatim (spot checks).
    assert_eq!(
        out.events[1].image.as_deref(),
        Some(
            "docker.io/library/nginx:latest@sha256:\
             af296b188c7b7df99ba960ca614439c99cb7cf252ed7bbc23e90cfda59092305"
        )
    );
    assert_eq!(
        out.events[17].container_id.as_deref(),
        Some("aaf2118edcc20b3b04a0fae6164f957993bf3c047fd8cb33bc37ac7d0175e848")
    );
    assert_eq!(out.events[0].image, None);
    assert_eq!(out.events[0].container_id, None);
    assert_eq!(out.events[7].image, None, "line 8 has no ContainerImage");
}
