//! Synthetic rows for benchmarks: millions of plausible, already de-duplicated behaviours.
//!
//! The cluster model is fixed (the same for every seed): 20 nodes, 10 namespaces, 100 workloads
//! of 3 replicas (300 pods), each workload with its own ~30 processes, 300 file paths and 20
//! network peers, shared by its replicas. The `seed` only drives which rows are drawn:
//! operations are 20 % process, 60 % file, 20 % network; timestamps fall in the 7 days from
//! [`BASE_NS`]; counts are 1–50. Each yielded row stands for a distinct behaviour in its
//! window; nothing is de-duplicated here.
//!
//! Rows are cloned from pre-built templates, so generation runs at several million rows per
//! second in release builds.

use std::sync::Arc;

use karmor_contract::schema::{Event, Op, Source};

use crate::rng::{container_id_for, uuid_for, Rng};

const NS: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * NS;

/// Start of the synthetic time range: 2026-11-13T00:00:00Z (ns since the epoch).
pub const BASE_NS: i64 = 1_794_528_000 * NS;
/// Length of the synthetic time range: 7 days.
pub const SPAN_NS: i64 = 7 * 24 * HOUR;
/// Cluster name of every synthetic row.
pub const CLUSTER: &str = "bench";
/// Number of nodes.
pub const NODES: usize = 20;
/// Number of namespaces.
pub const NAMESPACES: usize = 10;
/// Number of workloads (10 per namespace).
pub const WORKLOADS: usize = 100;
/// Replicas (pods) per workload.
pub const REPLICAS: usize = 3;
/// Processes per workload.
pub const PROCESSES: usize = 30;
/// File paths per workload.
pub const FILES: usize = 300;
/// Network peers per workload.
pub const PEERS: usize = 20;

/// Per-mille of rows that are `op = process` and `op = file` (the rest are `network`).
const PROCESS_PERMILLE: u64 = 200;
const FILE_PERMILLE: u64 = 600;

const NAMESPACE_NAMES: [&str; NAMESPACES] = [
    "payments",
    "checkout",
    "catalog",
    "search",
    "identity",
    "billing",
    "shipping",
    "storefront",
    "analytics",
    "monitoring",
];

/// (app, kind, image, main process, its arguments)
const APPS: [(&str, &str, &str, &str, &str); 10] = [
    (
        "api",
        "Deployment",
        "",
        "/app/bin/server",
        "server --port 8080",
    ),
    (
        "worker",
        "Deployment",
        "",
        "/usr/local/bin/python3.12",
        "python3.12 -m worker",
    ),
    (
        "web",
        "Deployment",
        "nginx:1.27",
        "/usr/sbin/nginx",
        "nginx -g daemon off;",
    ),
    (
        "gateway",
        "Deployment",
        "",
        "/usr/local/bin/node",
        "node dist/main.js",
    ),
    (
        "auth",
        "Deployment",
        "",
        "/opt/java/openjdk/bin/java",
        "java -jar /app/app.jar",
    ),
    (
        "scheduler",
        "Deployment",
        "",
        "/app/bin/scheduler",
        "scheduler --leader-elect",
    ),
    (
        "events",
        "Deployment",
        "",
        "/app/bin/consumer",
        "consumer --group events",
    ),
    (
        "db",
        "StatefulSet",
        "postgres:16.4",
        "/usr/lib/postgresql/16/bin/postgres",
        "postgres",
    ),
    (
        "cache",
        "StatefulSet",
        "redis:7.2",
        "/usr/local/bin/redis-server",
        "redis-server *:6379",
    ),
    (
        "queue",
        "StatefulSet",
        "rabbitmq:3.13",
        "/usr/local/lib/erlang/erts-14.2/bin/beam.smp",
        "beam.smp -- -root /usr/local/lib/erlang",
    ),
];

const UTILITIES: [&str; 40] = [
    "/bin/sh",
    "/bin/bash",
    "/bin/cat",
    "/bin/ls",
    "/bin/grep",
    "/bin/sed",
    "/bin/mkdir",
    "/bin/rm",
    "/bin/cp",
    "/bin/mv",
    "/bin/chmod",
    "/bin/chown",
    "/bin/date",
    "/bin/sleep",
    "/bin/hostname",
    "/bin/ps",
    "/usr/bin/env",
    "/usr/bin/id",
    "/usr/bin/find",
    "/usr/bin/awk",
    "/usr/bin/tr",
    "/usr/bin/cut",
    "/usr/bin/head",
    "/usr/bin/tail",
    "/usr/bin/wc",
    "/usr/bin/sort",
    "/usr/bin/xargs",
    "/usr/bin/tee",
    "/usr/bin/basename",
    "/usr/bin/dirname",
    "/usr/bin/curl",
    "/usr/bin/wget",
    "/usr/bin/tar",
    "/usr/bin/gzip",
    "/usr/bin/openssl",
    "/usr/bin/nslookup",
    "/usr/bin/timeout",
    "/usr/bin/pgrep",
    "/usr/bin/stat",
    "/usr/bin/touch",
];

const LIBS: [&str; 24] = [
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libz.so.1",
    "libssl.so.3",
    "libcrypto.so.3",
    "libpcre2-8.so.0",
    "libselinux.so.1",
    "libtinfo.so.6",
    "libcurl.so.4",
    "libnghttp2.so.14",
    "libidn2.so.0",
    "libzstd.so.1",
    "liblzma.so.5",
    "libbz2.so.1.0",
    "libffi.so.8",
    "libexpat.so.1",
    "libuuid.so.1",
    "libcap.so.2",
    "libsystemd.so.0",
];

const ETC: [&str; 20] = [
    "/etc/ld.so.cache",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/os-release",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/openssl.cnf",
    "/etc/mime.types",
    "/etc/services",
    "/etc/protocols",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/timezone",
    "/proc/self/status",
    "/proc/self/cgroup",
    "/sys/fs/cgroup/memory.max",
];

const APP_DIRS: [&str; 10] = [
    "config",
    "lib",
    "handlers",
    "models",
    "templates",
    "static",
    "migrations",
    "plugins",
    "locales",
    "vendor",
];

const EXTS: [&str; 10] = [
    "yaml", "so", "py", "py", "html", "js", "sql", "so", "json", "js",
];

struct Who {
    pid_offset: i32,
    ppid_offset: Option<i32>,
    uid: u32,
    exe: String,
    parent: String,
    args: String,
}

struct FileUse {
    path: String,
    access: String,
}

struct Peer {
    proto: String,
    direction: String,
    syscall: String,
    local_port: Option<u16>,
    remote_addr: Option<String>,
    remote_port: Option<u16>,
    remote_name: Option<String>,
}

struct Behaviour {
    procs: Vec<Who>,
    files: Vec<FileUse>,
    peers: Vec<Peer>,
}

struct Pod {
    place: Event,
    ip: Option<String>,
    pid_base: i32,
    shim_pid: i32,
    behaviour: usize,
}

struct Model {
    pods: Vec<Pod>,
    behaviours: Vec<Behaviour>,
    passed: Option<String>,
    denied: Option<String>,
    execve: Option<String>,
    openat: Option<String>,
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn service_ip(workload: usize) -> String {
    format!("10.96.{}.{}", 10 + workload / 50, 10 + (workload % 50) * 4)
}

fn service_port(app: usize) -> u16 {
    match APPS[app].0 {
        "db" => 5432,
        "cache" => 6379,
        "queue" => 5672,
        "web" => 80,
        _ => 8080,
    }
}

fn build_model() -> Model {
    let mut rng = Rng::new(0x5EED_0000_B3AC_0004);
    let mut behaviours = Vec::with_capacity(WORKLOADS);
    let mut pods = Vec::with_capacity(WORKLOADS * REPLICAS);
    let workload_name = |w: usize| format!("{}-{}", NAMESPACE_NAMES[w / 10], APPS[w % 10].0);
    for w in 0..WORKLOADS {
        let ns = NAMESPACE_NAMES[w / 10];
        let app = w % 10;
        let (app_name, kind, image, main, main_args) = APPS[app];
        let name = workload_name(w);
        let image = if image.is_empty() {
            format!(
                "registry.example.com/{ns}/{app_name}:1.{}.{}",
                rng.below(20),
                rng.below(10)
            )
        } else {
            image.to_string()
        };
        let uid = if rng.chance(0.3) { 0 } else { 10001 };

        // Processes: the entrypoint, the main program, utilities and the workload's own jobs.
        let shim = "/usr/bin/containerd-shim-runc-v2";
        let ep = "/usr/local/bin/docker-entrypoint.sh";
        let mut procs = vec![
            Who {
                pid_offset: 0,
                ppid_offset: None,
                uid,
                exe: ep.into(),
                parent: shim.into(),
                args: format!("docker-entrypoint.sh {main_args}"),
            },
            Who {
                pid_offset: 0,
                ppid_offset: None,
                uid,
                exe: main.into(),
                parent: shim.into(),
                args: main_args.into(),
            },
        ];
        let mut utils: Vec<&str> = UTILITIES.to_vec();
        for i in 0..PROCESSES - 6 {
            let j = i + rng.below((utils.len() - i) as u64) as usize;
            utils.swap(i, j);
            let exe = utils[i];
            let base = exe.rsplit('/').next().unwrap_or(exe);
            // The entrypoint exec'd the main program: pid_base is the main program's pid.
            procs.push(Who {
                pid_offset: 20 + i as i32 * 13,
                ppid_offset: Some(0),
                uid,
                exe: exe.into(),
                parent: main.into(),
                args: format!("{base} {}", rng.hex(6)),
            });
        }
        for i in 0..4 {
            procs.push(Who {
                pid_offset: 700 + i * 31,
                ppid_offset: Some(0),
                uid,
                exe: format!("/app/bin/{app_name}-job-{i}"),
                parent: main.into(),
                args: format!("{app_name}-job-{i} --once"),
            });
        }
        debug_assert_eq!(procs.len(), PROCESSES);

        // Files: libraries, /etc, the application tree, data, temporary files and logs.
        let mut files = Vec::with_capacity(FILES);
        let read = |path: String| FileUse {
            path,
            access: "read".into(),
        };
        for lib in LIBS {
            files.push(read(format!("/usr/lib/x86_64-linux-gnu/{lib}")));
        }
        for f in ETC {
            files.push(read(f.into()));
        }
        for (d, dir) in APP_DIRS.iter().enumerate() {
            for i in 0..20 {
                let ext = EXTS[(d + i) % EXTS.len()];
                files.push(read(format!("/app/{app_name}/{dir}/{dir}_{i:02}.{ext}")));
            }
        }
        for i in 0..20 {
            files.push(FileUse {
                path: format!("/var/lib/{name}/data/segment-{i:04}.dat"),
                access: if i % 2 == 0 { "read" } else { "write" }.into(),
            });
        }
        for i in 0..20 {
            files.push(FileUse {
                path: format!("/tmp/{app_name}-{}", rng.hex(8)),
                access: ["create", "write", "read", "delete"][i % 4].into(),
            });
        }
        for i in 0..16 {
            files.push(FileUse {
                path: format!("/var/log/{name}/{app_name}-{i}.log"),
                access: "write".into(),
            });
        }
        debug_assert_eq!(files.len(), FILES);

        // Peers: DNS, the API server, other services, one external API, clients.
        let mut peers = Vec::with_capacity(PEERS);
        let connect = |proto: &str, addr: String, port: u16, name: String| Peer {
            proto: proto.into(),
            direction: "connect".into(),
            syscall: "SYS_CONNECT".into(),
            local_port: None,
            remote_addr: Some(addr),
            remote_port: Some(port),
            remote_name: Some(name),
        };
        peers.push(connect(
            "udp",
            "10.96.0.10".into(),
            53,
            "kube-dns.kube-system.svc.cluster.local".into(),
        ));
        peers.push(connect(
            "tcp",
            "10.96.0.1".into(),
            443,
            "kubernetes.default.svc.cluster.local".into(),
        ));
        for _ in 0..14 {
            let other = rng.below(WORKLOADS as u64) as usize;
            let other_ns = NAMESPACE_NAMES[other / 10];
            peers.push(connect(
                "tcp",
                service_ip(other),
                service_port(other % 10),
                format!("{}.{other_ns}.svc.cluster.local", workload_name(other)),
            ));
        }
        peers.push(connect(
            "tcp",
            format!(
                "52.{}.{}.{}",
                rng.below(256),
                rng.below(256),
                1 + rng.below(254)
            ),
            443,
            format!("api.partner{}.example.com", rng.below(100)),
        ));
        let port = service_port(app);
        for _ in 0..3 {
            peers.push(Peer {
                proto: "tcp".into(),
                direction: "accept".into(),
                syscall: "SYS_ACCEPT4".into(),
                local_port: Some(port),
                remote_addr: Some(format!(
                    "10.244.{}.{}",
                    rng.below(NODES as u64),
                    2 + rng.below(250)
                )),
                remote_port: None,
                remote_name: None,
            });
        }
        debug_assert_eq!(peers.len(), PEERS);
        behaviours.push(Behaviour {
            procs,
            files,
            peers,
        });

        // Pods.
        let template_hash = rng.chars(10, "bcdfghjklmnpqrstvwxz2456789");
        for r in 0..REPLICAS {
            let pod = if kind == "StatefulSet" {
                format!("{name}-{r}")
            } else {
                format!(
                    "{name}-{template_hash}-{}",
                    rng.chars(5, "bcdfghjklmnpqrstvwxz2456789")
                )
            };
            let node = rng.below(NODES as u64) as usize;
            let mut labels = vec![
                format!("app.kubernetes.io/name={name}"),
                format!("app.kubernetes.io/part-of={ns}"),
            ];
            if kind == "StatefulSet" {
                labels.push(format!(
                    "controller-revision-hash={name}-{}",
                    &template_hash[..8]
                ));
                labels.push(format!("statefulset.kubernetes.io/pod-name={pod}"));
            } else {
                labels.push(format!("pod-template-hash={template_hash}"));
            }
            labels.sort();
            let place = Event {
                count: 1,
                cluster: s(CLUSTER),
                node: format!("node-{node:02}"),
                namespace: s(ns),
                pod: Some(pod.clone()),
                pod_uid: Some(uuid_for(&format!("{ns}/{pod}"))),
                container: s(app_name),
                container_id: Some(container_id_for(&format!("{ns}/{pod}/{app_name}"))),
                image: Some(image.clone()),
                workload_kind: s(kind),
                workload: Some(name.clone()),
                labels,
                host: false,
                source: Source::Ebpf,
                ..Event::default()
            };
            let pid_base = 2000 + rng.below(400_000) as i32;
            pods.push(Pod {
                place,
                ip: Some(format!("10.244.{node}.{}", 2 + rng.below(250))),
                pid_base,
                shim_pid: pid_base - 1 - rng.below(40) as i32,
                behaviour: w,
            });
        }
    }
    Model {
        pods,
        behaviours,
        passed: s("Passed"),
        denied: s("Permission denied"),
        execve: s("SYS_EXECVE"),
        openat: s("SYS_OPENAT"),
    }
}

/// The iterator behind [`events`] (cheap to clone: the model is shared).
#[derive(Clone)]
pub struct Synthetic {
    model: Arc<Model>,
    rng: Rng,
    remaining: usize,
    total: usize,
}

impl Iterator for Synthetic {
    type Item = Event;

    #[inline]
    fn next(&mut self) -> Option<Event> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let m = &*self.model;
        let rng = &mut self.rng;
        let pod = &m.pods[rng.below(m.pods.len() as u64) as usize];
        let b = &m.behaviours[pod.behaviour];
        let who = &b.procs[rng.below(b.procs.len() as u64) as usize];

        // Rows come in time order (as a collector writes them), so a consumer that writes
        // chunks of rows produces hour partitions of realistic size; within its slot a row's
        // time is random.
        let slot = SPAN_NS / self.total.max(1) as i64;
        let done = (self.total - self.remaining - 1) as i64;
        let ts = BASE_NS + done * slot + rng.below(slot.max(1) as u64) as i64;
        let count = 1 + rng.below(50);
        let ts_last = if count == 1 {
            ts
        } else {
            // Within the hour window the row was merged in.
            let hour_end = ts - ts.rem_euclid(HOUR) + HOUR - 1;
            (ts + rng.below(HOUR as u64) as i64).min(hour_end)
        };
        let ppid = match who.ppid_offset {
            Some(off) => pod.pid_base + off,
            None => pod.shim_pid,
        };

        // Op-specific columns first, then one struct literal built in place (cloning a
        // template and patching it costs an extra copy of the large row).
        let which = rng.below(1000);
        let mut result = &m.passed;
        let (op, syscall, file, peer) = if which < PROCESS_PERMILLE {
            (Op::Process, m.execve.clone(), None, None)
        } else if which < PROCESS_PERMILLE + FILE_PERMILLE {
            let f = &b.files[rng.below(b.files.len() as u64) as usize];
            if rng.below(200) == 0 {
                result = &m.denied;
            }
            (Op::File, m.openat.clone(), Some(f), None)
        } else {
            let p = &b.peers[rng.below(b.peers.len() as u64) as usize];
            (Op::Network, Some(p.syscall.clone()), None, Some(p))
        };
        let t = &pod.place;
        Some(Event {
            ts_first: ts,
            ts_last,
            count,
            cluster: t.cluster.clone(),
            node: t.node.clone(),
            namespace: t.namespace.clone(),
            pod: t.pod.clone(),
            pod_uid: t.pod_uid.clone(),
            container: t.container.clone(),
            container_id: t.container_id.clone(),
            image: t.image.clone(),
            workload_kind: t.workload_kind.clone(),
            workload: t.workload.clone(),
            labels: t.labels.clone(),
            host: false,
            pid: Some(pod.pid_base + who.pid_offset),
            ppid: Some(ppid),
            uid: Some(who.uid),
            process: Some(who.exe.clone()),
            parent_process: Some(who.parent.clone()),
            args: Some(who.args.clone()),
            op,
            source: Source::Ebpf,
            path: file.map(|f| f.path.clone()),
            access: file.map(|f| f.access.clone()),
            proto: peer.map(|p| p.proto.clone()),
            direction: peer.map(|p| p.direction.clone()),
            local_addr: peer.and_then(|_| pod.ip.clone()),
            local_port: peer.and_then(|p| p.local_port),
            remote_addr: peer.and_then(|p| p.remote_addr.clone()),
            remote_port: peer.and_then(|p| p.remote_port),
            remote_name: peer.and_then(|p| p.remote_name.clone()),
            syscall,
            capability: None,
            result: result.clone(),
            policy: None,
            action: None,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Synthetic {}

/// `rows` synthetic rows drawn with `seed` (same model for every seed; see the module docs).
pub fn events(rows: usize, seed: u64) -> impl ExactSizeIterator<Item = Event> + Send {
    Synthetic {
        model: Arc::new(build_model()),
        rng: Rng::new(seed ^ 0x9E37_79B9_7F4A_7C15),
        remaining: rows,
        total: rows,
    }
}
