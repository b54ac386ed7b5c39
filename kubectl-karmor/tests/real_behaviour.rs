//! Real behaviour, real probes: small workloads (a python3 TCP server writing temp files, a
//! shell loop with a python3 client, `cat`, `seq` and temp files) run in two cgroups named as
//! containerd names a pod's containers, recorded by the collector's real eBPF probes into a
//! real bundle. `recommend` (default flags) learns from the first half; `simulate` replays the
//! second half through the drafts with a block posture. Nothing the workloads did again may be
//! blocked; the attacks injected into the second half (a new executable, a read of
//! `/etc/shadow`, a write into `/usr/bin`, a new outbound connection) must be blocked, or said
//! to be beyond a KubeArmorPolicy (a network peer).
//!
//! Needs root, a kernel with BTF, tracepoints, a cgroup v2 hierarchy and a collector built with
//! its probes: it is ignored by default, and fails (never passes) when a precondition is missing.
//! Run: `cargo test -p kubectl-karmor --test real_behaviour -- --include-ignored --nocapture`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use karmor_analyzer::policy::{validate_policy, Policy};
use karmor_analyzer::recommend::{recommend, RecommendOptions, Scope, WorkloadSelect};
use karmor_analyzer::simulate::{
    simulate, Decision, Posture, Postures, SimEntry, SimOptions, PEER_NOTE,
};
use karmor_analyzer::Store;
use karmor_collector::attribution::{PodInfo, PodLookup};
use karmor_contract::Op;

mod common;
use common::probes::{require_probe_preconditions, Cgroup, ProbeCollector};

const NAMESPACE: &str = "real";
const WEB_ID: &str = "a11ce0000000000000000000000000000000000000000000000000000000000a";
const CLIENT_ID: &str = "b0b000000000000000000000000000000000000000000000000000000000000b";
const WEB_POD_UID: &str = "1a2b3c4d-0000-4000-8000-00000000000a";
const CLIENT_POD_UID: &str = "1a2b3c4d-0000-4000-8000-00000000000b";
/// Iterations of each workload per half.
const ROUNDS: usize = 12;

/// Fails, with the reason, when the test cannot run here.
fn require_preconditions() -> PathBuf {
    require_probe_preconditions(&["/bin/sh", "/usr/bin/python3", "/bin/cat", "/usr/bin/seq"])
}

/// The two pods, as a watch of the node's pods would name them.
struct TwoPods;

impl PodLookup for TwoPods {
    fn by_container(&self, id: &str) -> Option<PodInfo> {
        let (pod, uid, workload) = match id {
            WEB_ID => ("web-7d9f-x1", WEB_POD_UID, "web"),
            CLIENT_ID => ("client-5c4b-y2", CLIENT_POD_UID, "client"),
            _ => return None,
        };
        Some(PodInfo {
            namespace: NAMESPACE.into(),
            pod: pod.into(),
            pod_uid: uid.into(),
            container: workload.into(),
            image: Some(format!("example/{workload}:1")),
            workload_kind: Some("Deployment".into()),
            workload: Some(workload.into()),
            labels: vec![format!("app={workload}"), "pod-template-hash=7d9f".into()],
        })
    }
}

/// A pod's container cgroup, laid out as the kubelet and containerd (systemd driver) do.
fn pod_cgroup(root: &Path, pod_uid: &str, container: &str) -> Cgroup {
    let pod = root.join(format!(
        "kubepods-besteffort-pod{}.slice",
        pod_uid.replace('-', "_")
    ));
    let leaf = pod.join(format!("cri-containerd-{container}.scope"));
    Cgroup::create(leaf, Some(pod))
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The web server: accepts connections on a port, writes each request to a fresh temp file,
/// reads it back and answers. Runs until it gets `quit`.
const SERVER: &str = r#"
import os, socket, sys, tempfile
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 0))
s.listen(16)
with open(sys.argv[1] + '.tmp', 'w') as f:
    f.write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + '.tmp', sys.argv[1])
while True:
    c, _ = s.accept()
    data = c.recv(1024)
    if data == b'quit':
        c.close()
        break
    fd, path = tempfile.mkstemp(prefix='req-', dir=sys.argv[2])
    os.write(fd, data)
    os.close(fd)
    with open(path, 'rb') as f:
        c.sendall(b'ok ' + f.read())
    os.remove(path)
    c.close()
"#;

/// One round of the client: a python3 request to the server, then shell work on files.
fn client_round(port: u16, work: &str) -> String {
    format!(
        "for i in $(seq 1 3); do \
           python3 -c \"import socket; c = socket.create_connection(('127.0.0.1', {port})); \
c.sendall(b'hello'); assert c.recv(64).startswith(b'ok')\" || exit 1; \
           echo round $i > {work}/client-$i.txt; cat {work}/client-$i.txt > /dev/null; \
         done; rm -f {work}/client-*.txt"
    )
}

fn describe(e: &SimEntry) -> String {
    format!(
        "{} {:?} {} {} {:?} result={:?} -> {} ({:?}: {:?})",
        e.workload,
        e.op,
        e.process.as_deref().unwrap_or("-"),
        e.resource,
        e.access,
        e.result,
        e.decision.as_str(),
        e.policy,
        e.rule
    )
}

#[test]
#[ignore = "needs root, a kernel with BTF and the eBPF probes"]
fn drafts_learned_from_real_behaviour_block_only_the_injected_attacks() {
    let cg_root = require_preconditions();
    let data = tempfile::tempdir().expect("data dir");
    let work = tempfile::tempdir().expect("work dir");
    let server_tmp = work.path().join("server-tmp");
    fs::create_dir(&server_tmp).expect("server tmp");
    let client_work = work.path().join("client");
    fs::create_dir(&client_work).expect("client work");
    let client_dir = client_work.display().to_string();

    // The collector, with the real probes and the two pods known.
    let collector = ProbeCollector::start("real-node", data.path(), Arc::new(TwoPods));

    let web = pod_cgroup(&cg_root, WEB_POD_UID, WEB_ID);
    let client = pod_cgroup(&cg_root, CLIENT_POD_UID, CLIENT_ID);

    // The web server lives through both halves, as a pod's main process does; its start-up
    // is part of what is learned.
    let t_start = now_ns();
    let script = work.path().join("server.py");
    fs::write(&script, SERVER).expect("server script");
    let port_file = work.path().join("port");
    let mut server = web.spawn(&format!(
        "exec python3 {} {} {}",
        script.display(),
        port_file.display(),
        server_tmp.display()
    ));
    let waited = Instant::now();
    let port: u16 = loop {
        if let Ok(text) = fs::read_to_string(&port_file) {
            break text.trim().parse().expect("port");
        }
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };

    // First half: what recommend learns from.
    for _ in 0..ROUNDS {
        client.run(&client_round(port, &client_dir));
    }
    // A gap longer than a flush window, so that no row spans both halves.
    std::thread::sleep(Duration::from_millis(1500));
    let t_mid = now_ns();
    std::thread::sleep(Duration::from_millis(1500));

    // Second half: the same work, and the attacks.
    for _ in 0..ROUNDS {
        client.run(&client_round(port, &client_dir));
    }
    // The attacks run from the container's shell, as an intruder's commands would (not
    // `exec`ed in place of the shell, which would give them the test runner as parent).
    let attack = |cmd: &str| client.run(&format!("{cmd}; rc=$?; exit $rc"));
    // 1. A new executable.
    attack("/usr/bin/id > /dev/null");
    // 2. A read of /etc/shadow by an allowed program.
    attack("python3 -c \"open('/etc/shadow').read()\"");
    // 3. A write into a system binary directory (a harmless scratch name, removed below).
    let scratch = format!("/usr/bin/karmor-real-behaviour-{}", std::process::id());
    attack(&format!("python3 -c \"open('{scratch}', 'w').write('x')\""));
    let _ = fs::remove_file(&scratch);
    // 4. A new outbound connection (loopback, a port never used before).
    let other = TcpListener::bind("127.0.0.1:0").expect("listener");
    let other_port = other.local_addr().expect("addr").port();
    attack(&format!(
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {other_port})).close()\""
    ));
    let _ = other.accept();

    // Stop the server, then the collector.
    if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
        let _ = c.write_all(b"quit");
        let _ = c.read(&mut [0u8; 8]);
    }
    let _ = server.wait();
    std::thread::sleep(Duration::from_millis(700));
    let summary = collector.stop();
    assert!(summary.events_seen > 0);
    drop(web);
    drop(client);

    // The recording is a bundle: learn from the first half, replay the second.
    let store = Store::in_memory().expect("store");
    let merged = store
        .merge_bundle(data.path())
        .expect("merge the recording");
    assert!(merged.problems.is_empty(), "{:?}", merged.problems);

    let opts = RecommendOptions::new(Scope {
        workloads: Some(WorkloadSelect {
            namespace: Some(NAMESPACE.into()),
            ..WorkloadSelect::default()
        }),
        hosts: None,
        since_ns: Some(t_start),
        until_ns: Some(t_mid),
        filter: None,
    });
    let rec = recommend(&store, &opts).expect("recommend");
    let mut learned_rows = BTreeMap::new();
    let mut policies: Vec<Policy> = Vec::new();
    for w in &rec.workloads {
        learned_rows.insert(format!("{:?}", w.draft.workload), w.draft.rows);
        if let Some(p) = &w.draft.policy {
            let v = validate_policy(p);
            assert!(v.errors.is_empty(), "{:?}", v.errors);
            policies.push(p.clone());
        }
    }
    assert_eq!(
        policies.len(),
        2,
        "a draft for each of web and client: {learned_rows:?}"
    );
    for p in &policies {
        eprintln!(
            "--- learned draft\n{}",
            serde_yaml::to_string(p).unwrap_or_default()
        );
    }

    let sim = simulate(
        &store,
        &policies,
        &SimOptions {
            namespaces: vec![NAMESPACE.into()],
            since_ns: Some(t_mid),
            posture: Postures::all(Posture::Block),
            ..SimOptions::default()
        },
    )
    .expect("simulate");
    let totals = sim.totals();
    let replayed_rows: u64 = sim.entries.iter().map(|e| e.rows).sum();
    eprintln!(
        "learned rows per workload: {learned_rows:?}; replayed: {} entries, {replayed_rows} rows; \
         totals: {totals:?}",
        sim.entries.len()
    );
    for e in sim.unaffected().take(20) {
        eprintln!("unaffected: {}", describe(e));
    }
    for e in sim.blocked() {
        eprintln!("blocked: {}", describe(e));
    }

    let is_attack = |e: &SimEntry| {
        let process = e.process.as_deref().unwrap_or("");
        process == "/usr/bin/id"
            || e.resource == "/etc/shadow"
            || e.resource == scratch
            || e.resource.ends_with(&format!(":{other_port}"))
    };
    // No false blocks: whatever the workloads did again is allowed (or failed anyway).
    let false_blocks: Vec<String> = sim
        .blocked()
        .filter(|e| !is_attack(e))
        .map(describe)
        .collect();
    // Each attack is blocked, or said to be beyond a KubeArmorPolicy.
    let find = |what: &str, pred: &dyn Fn(&SimEntry) -> bool| -> Vec<&SimEntry> {
        let hits: Vec<&SimEntry> = sim.entries.iter().filter(|e| pred(e)).collect();
        assert!(
            !hits.is_empty(),
            "the recording has no row for {what}:\n{}",
            sim.entries
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join("\n")
        );
        hits
    };
    let mut missed = Vec::new();
    for (what, hits) in [
        (
            "exec of /usr/bin/id",
            find("exec of /usr/bin/id", &|e| {
                e.op == Op::Process && e.resource == "/usr/bin/id"
            }),
        ),
        (
            "read of /etc/shadow",
            find("read of /etc/shadow", &|e| {
                e.op == Op::File && e.resource == "/etc/shadow"
            }),
        ),
        (
            "write into /usr/bin",
            find("write into /usr/bin", &|e| {
                e.op == Op::File && e.resource == scratch
            }),
        ),
    ] {
        for e in hits {
            if e.decision != Decision::Blocked {
                missed.push(format!("{what}: {}", describe(e)));
            }
        }
    }
    let connect = find("the new outbound connection", &|e| {
        e.op == Op::Network
            && e.access.as_deref() == Some("connect")
            && e.resource.ends_with(&format!(":{other_port}"))
    });
    for e in connect {
        eprintln!("new connection: {} note={:?}", describe(e), e.note);
        let reported = e.decision == Decision::Blocked || e.note.as_deref() == Some(PEER_NOTE);
        if !reported {
            missed.push(format!("new connection: {}", describe(e)));
        }
    }
    assert!(
        false_blocks.is_empty() && missed.is_empty(),
        "false blocks ({}):\n{}\nattacks neither blocked nor reported ({}):\n{}",
        false_blocks.len(),
        false_blocks.join("\n"),
        missed.len(),
        missed.join("\n")
    );
    assert!(totals.allowed_entries > 0, "{totals:?}");
    // Interpreter start-up probes paths that do not exist (python3's `pybuilddir.txt`,
    // `._pth`, locale files): recorded, left out of the drafts, and not blocked.
    assert!(
        sim.unaffected()
            .any(|e| e.process.as_deref() == Some("/usr/bin/python3")),
        "{totals:?}"
    );
}
