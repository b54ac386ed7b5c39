//! `simulate` on real DuckDB stores built from real Parquet bundles: each KubeArmor semantic
//! rule the simulator claims to replay, then the demo bundle checked against independent
//! computations (DuckDB over the raw Parquet files, and the demo generator's own labels).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use karmor_analyzer::policy::{
    Action, FileDirectoryRule, FilePathRule, FileRules, NetworkRules, Policy, PolicyKind,
    ProcessPathRule, ProcessRules, ProtocolRule, Selector, Source,
};
use karmor_analyzer::simulate::{
    simulate, Decision, Posture, Postures, SimEntry, SimOptions, SimReport, DEFAULT_POSTURE,
};
use karmor_analyzer::Store;
use karmor_contract::bundle::{read_manifest, write_bundle, BundleOptions};
use karmor_contract::segment::read_segment;
use karmor_contract::{Event, Op, Source as EvSource};
use karmor_testdata::demo;

const T0: i64 = 1_763_625_600_000_000_000; // 2025-11-20T08:00:00Z
const HOUR: i64 = 3_600_000_000_000;

// ------------------------------------------------------------------------------------------
// Building blocks
// ------------------------------------------------------------------------------------------

/// A container row of `shop/web` (labels app=web) unless changed.
fn base() -> Event {
    Event {
        ts_first: T0,
        ts_last: T0 + 1_000,
        count: 1,
        node: "node-a".into(),
        namespace: Some("shop".into()),
        pod: Some("web-1".into()),
        container: Some("app".into()),
        workload_kind: Some("Deployment".into()),
        workload: Some("web".into()),
        labels: vec!["app=web".into(), "tier=front".into()],
        uid: Some(1000),
        process: Some("/usr/bin/app".into()),
        parent_process: Some("/bin/sh".into()),
        source: EvSource::Ebpf,
        ..Event::default()
    }
}

fn file(process: &str, path: &str, access: &str) -> Event {
    Event {
        op: Op::File,
        process: Some(process.into()),
        path: Some(path.into()),
        access: Some(access.into()),
        ..base()
    }
}

fn exec(parent: &str, process: &str) -> Event {
    Event {
        op: Op::Process,
        process: Some(process.into()),
        parent_process: Some(parent.into()),
        ..base()
    }
}

fn net(process: &str, proto: &str, remote: &str) -> Event {
    Event {
        op: Op::Network,
        process: Some(process.into()),
        proto: Some(proto.into()),
        direction: Some("connect".into()),
        remote_addr: Some(remote.into()),
        remote_port: Some(443),
        ..base()
    }
}

fn in_pod(mut e: Event, ns: &str, workload: &str, labels: &[&str]) -> Event {
    e.namespace = Some(ns.into());
    e.workload = Some(workload.into());
    e.pod = Some(format!("{workload}-1"));
    e.labels = labels.iter().map(|s| s.to_string()).collect();
    e
}

fn on_host(mut e: Event, node: &str) -> Event {
    e.host = true;
    e.node = node.into();
    e.namespace = None;
    e.pod = None;
    e.container = None;
    e.workload = None;
    e.workload_kind = None;
    e.labels = Vec::new();
    e
}

/// Writes the rows as a real bundle and merges it into a fresh in-memory store.
fn store_of(events: Vec<Event>) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = BundleOptions {
        producer: "simulate-test".into(),
        ..BundleOptions::default()
    };
    write_bundle(dir.path(), events, &opts).expect("write bundle");
    let store = Store::in_memory().expect("store");
    let report = store.merge_bundle(dir.path()).expect("merge");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    (dir, store)
}

fn policies(yaml: &str) -> Vec<Policy> {
    yaml.split("\n---\n")
        .map(|doc| serde_yaml::from_str(doc).expect("policy yaml"))
        .collect()
}

fn all_ns() -> SimOptions {
    SimOptions {
        include_host: true,
        ..SimOptions::default()
    }
}

fn run(events: Vec<Event>, yaml: &str, opts: &SimOptions) -> SimReport {
    let (_dir, store) = store_of(events);
    simulate(&store, &policies(yaml), opts).expect("simulate")
}

/// The entry whose resource is `resource` (and, when given, whose process is `process`).
fn entry<'a>(r: &'a SimReport, process: Option<&str>, resource: &str) -> &'a SimEntry {
    let hits: Vec<&SimEntry> = r
        .entries
        .iter()
        .filter(|e| {
            e.resource == resource && process.is_none_or(|p| e.process.as_deref() == Some(p))
        })
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "entries for {process:?} {resource}: {hits:#?}"
    );
    hits[0]
}

fn decision(r: &SimReport, process: Option<&str>, resource: &str) -> Decision {
    entry(r, process, resource).decision
}

const KSP: &str = "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\n";

// ------------------------------------------------------------------------------------------
// Semantics
// ------------------------------------------------------------------------------------------

#[test]
fn block_beats_audit_and_allow_and_audit_beats_allow() {
    let rows = vec![
        file("/usr/bin/app", "/etc/app.conf", "read"),
        file("/usr/bin/app", "/etc/other.conf", "read"),
    ];
    let allow = format!(
        "{KSP}metadata: {{name: allow, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         file:\n    matchPaths: [{{path: /etc/app.conf}}, {{path: /etc/other.conf}}]\n  action: Allow"
    );
    let audit = format!(
        "{KSP}metadata: {{name: audit, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         file:\n    matchPaths: [{{path: /etc/app.conf}}, {{path: /etc/other.conf}}]\n  action: Audit"
    );
    let block = format!(
        "{KSP}metadata: {{name: block, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         file:\n    matchPaths: [{{path: /etc/app.conf}}]\n  action: Block"
    );
    let r = run(
        rows.clone(),
        &format!("{allow}\n---\n{audit}\n---\n{block}"),
        &all_ns(),
    );
    let e = entry(&r, None, "/etc/app.conf");
    assert_eq!(e.decision, Decision::Blocked);
    assert_eq!(e.policy.as_deref(), Some("shop/block"));
    assert!(
        e.rule.as_deref().unwrap().contains("path=/etc/app.conf"),
        "{e:?}"
    );
    let other = entry(&r, None, "/etc/other.conf");
    assert_eq!(other.decision, Decision::Audited);
    assert_eq!(other.policy.as_deref(), Some("shop/audit"));

    let r = run(rows, &allow, &all_ns());
    assert_eq!(decision(&r, None, "/etc/app.conf"), Decision::Allowed);
    assert_eq!(
        entry(&r, None, "/etc/app.conf").policy.as_deref(),
        Some("shop/allow")
    );
}

#[test]
fn allow_rules_make_an_allow_list_with_the_default_posture() {
    let rows = vec![
        exec("/bin/sh", "/usr/bin/app"),
        exec("/bin/sh", "/usr/bin/curl"),
        file("/usr/bin/app", "/etc/app.conf", "read"),
    ];
    let yaml = format!(
        "{KSP}metadata: {{name: only-app, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         process:\n    matchPaths: [{{path: /usr/bin/app}}]\n  action: Allow"
    );
    // KubeArmor's default posture is audit.
    let r = run(rows.clone(), &yaml, &all_ns());
    assert_eq!(decision(&r, None, "/usr/bin/app"), Decision::Allowed);
    let curl = entry(&r, None, "/usr/bin/curl");
    assert_eq!(curl.decision, Decision::Audited);
    assert_eq!(curl.policy.as_deref(), Some(DEFAULT_POSTURE));
    // Files have no Allow rule: no allow-list for them.
    assert_eq!(decision(&r, None, "/etc/app.conf"), Decision::Allowed);
    assert_eq!(entry(&r, None, "/etc/app.conf").policy, None);

    // Global block posture.
    let block = SimOptions {
        posture: Postures::all(Posture::Block),
        ..all_ns()
    };
    let r = run(rows.clone(), &yaml, &block);
    assert_eq!(decision(&r, None, "/usr/bin/curl"), Decision::Blocked);
    assert_eq!(decision(&r, None, "/usr/bin/app"), Decision::Allowed);

    // A namespace annotation (kubearmor-file-posture=block) beats the global audit; the
    // network posture does not govern processes.
    let mut per_ns = all_ns();
    per_ns.namespace_postures.insert(
        "shop".into(),
        Postures {
            network: Posture::Block,
            ..Postures::default()
        },
    );
    let r = run(rows.clone(), &yaml, &per_ns);
    assert_eq!(decision(&r, None, "/usr/bin/curl"), Decision::Audited);
    per_ns.namespace_postures.insert(
        "shop".into(),
        Postures {
            file: Posture::Block,
            ..Postures::default()
        },
    );
    let r = run(rows, &yaml, &per_ns);
    assert_eq!(decision(&r, None, "/usr/bin/curl"), Decision::Blocked);
}

#[test]
fn audit_rules_do_not_satisfy_an_allow_list() {
    let rows = vec![exec("/bin/sh", "/usr/bin/app"), exec("/bin/sh", "/bin/ls")];
    let yaml = format!(
        "{KSP}metadata: {{name: mixed, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         process:\n    matchPaths:\n    - {{path: /usr/bin/app, action: Allow}}\n    - {{path: /bin/ls, action: Audit}}"
    );
    let block = SimOptions {
        posture: Postures::all(Posture::Block),
        ..all_ns()
    };
    let r = run(rows, &yaml, &block);
    let ls = entry(&r, None, "/bin/ls");
    assert_eq!(ls.decision, Decision::Blocked);
    assert_eq!(ls.policy.as_deref(), Some(DEFAULT_POSTURE));
}

#[test]
fn from_source_restricts_process_rules_to_the_parent_and_file_rules_to_the_process() {
    let rows = vec![
        exec("/usr/sbin/apache2", "/bin/sh"),
        exec("/usr/bin/bash", "/bin/sh"),
        file("/usr/bin/app", "/etc/secret", "read"),
        file("/usr/bin/cat", "/etc/secret", "read"),
    ];
    let yaml = format!(
        "{KSP}metadata: {{name: no-web-shell, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         process:\n    matchPaths: [{{path: /bin/sh, fromSource: [{{path: /usr/sbin/apache2}}]}}]\n  action: Block\n---\n\
         {KSP}metadata: {{name: secret-for-app, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         file:\n    matchPaths: [{{path: /etc/secret, fromSource: [{{path: /usr/bin/app}}]}}]\n  action: Allow"
    );
    let block = SimOptions {
        posture: Postures::all(Posture::Block),
        ..all_ns()
    };
    let r = run(rows, &yaml, &block);
    let shells: BTreeMap<String, Decision> = r
        .entries
        .iter()
        .filter(|e| e.op == Op::Process)
        .map(|e| (e.parent.clone().unwrap(), e.decision))
        .collect();
    assert_eq!(shells["/usr/sbin/apache2"], Decision::Blocked);
    assert_eq!(shells["/usr/bin/bash"], Decision::Allowed);
    assert_eq!(
        decision(&r, Some("/usr/bin/app"), "/etc/secret"),
        Decision::Allowed
    );
    let cat = entry(&r, Some("/usr/bin/cat"), "/etc/secret");
    assert_eq!(cat.decision, Decision::Blocked);
    assert_eq!(cat.policy.as_deref(), Some(DEFAULT_POSTURE));
}

#[test]
fn directories_cover_direct_children_unless_recursive() {
    let rows = vec![
        file("/usr/bin/app", "/var/data/a", "read"),
        file("/usr/bin/app", "/var/data/sub/b", "read"),
        file("/usr/bin/app", "/var/database/c", "read"),
    ];
    let rule = |recursive: bool| {
        format!(
            "{KSP}metadata: {{name: data, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
             file:\n    matchDirectories: [{{dir: /var/data/, recursive: {recursive}}}]\n  action: Block"
        )
    };
    let r = run(rows.clone(), &rule(false), &all_ns());
    assert_eq!(decision(&r, None, "/var/data/a"), Decision::Blocked);
    assert_eq!(decision(&r, None, "/var/data/sub/b"), Decision::Allowed);
    assert_eq!(decision(&r, None, "/var/database/c"), Decision::Allowed);
    let r = run(rows, &rule(true), &all_ns());
    assert_eq!(decision(&r, None, "/var/data/a"), Decision::Blocked);
    assert_eq!(decision(&r, None, "/var/data/sub/b"), Decision::Blocked);
    assert_eq!(decision(&r, None, "/var/database/c"), Decision::Allowed);
}

#[test]
fn patterns_use_apparmor_globs() {
    let rows = vec![
        file("/usr/bin/app", "/tmp/x.sh", "create"),
        file("/usr/bin/app", "/tmp/d/y.sh", "create"),
        file("/usr/bin/app", "/tmp/z.txt", "create"),
    ];
    let yaml = |p: &str| {
        format!(
            "{KSP}metadata: {{name: scripts, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
             file:\n    matchPatterns: [{{pattern: '{p}'}}]\n  action: Block"
        )
    };
    let r = run(rows.clone(), &yaml("/tmp/*.sh"), &all_ns());
    assert_eq!(decision(&r, None, "/tmp/x.sh"), Decision::Blocked);
    assert_eq!(decision(&r, None, "/tmp/d/y.sh"), Decision::Allowed);
    assert_eq!(decision(&r, None, "/tmp/z.txt"), Decision::Allowed);
    let r = run(rows, &yaml("/tmp/**.sh"), &all_ns());
    assert_eq!(decision(&r, None, "/tmp/x.sh"), Decision::Blocked);
    assert_eq!(decision(&r, None, "/tmp/d/y.sh"), Decision::Blocked);
    assert_eq!(decision(&r, None, "/tmp/z.txt"), Decision::Allowed);
}

#[test]
fn read_only_rules_allow_reads_and_deny_writes() {
    let rows = vec![
        file("/usr/bin/app", "/etc/passwd", "read"),
        file("/usr/bin/app", "/etc/hosts", "write"),
        file("/usr/bin/app", "/etc/new.conf", "create"),
    ];
    for action in ["Allow", "Block"] {
        let yaml = format!(
            "{KSP}metadata: {{name: etc-ro, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
             file:\n    matchDirectories: [{{dir: /etc/, recursive: true, readOnly: true}}]\n  action: {action}"
        );
        let r = run(rows.clone(), &yaml, &all_ns());
        assert_eq!(
            decision(&r, None, "/etc/passwd"),
            Decision::Allowed,
            "{action}"
        );
        let w = entry(&r, None, "/etc/hosts");
        assert_eq!(w.decision, Decision::Blocked, "{action}");
        assert_eq!(w.policy.as_deref(), Some("shop/etc-ro"));
        assert_eq!(
            decision(&r, None, "/etc/new.conf"),
            Decision::Blocked,
            "{action}"
        );
    }
}

#[test]
fn owner_only_is_decided_strictly_and_says_so() {
    let rows = vec![file("/bin/cat", "/home/user1/secret", "read")];
    let yaml = format!(
        "{KSP}metadata: {{name: owner, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         file:\n    matchPaths: [{{path: /home/user1/secret, ownerOnly: true}}]\n  action: Allow"
    );
    let r = run(rows, &yaml, &all_ns());
    let e = entry(&r, None, "/home/user1/secret");
    assert_eq!(e.decision, Decision::Blocked);
    assert!(e.note.as_deref().unwrap().contains("ownerOnly"), "{e:?}");
}

#[test]
fn host_policies_apply_to_host_behaviour_of_selected_nodes() {
    let rows = vec![
        on_host(exec("/usr/bin/sudo", "/usr/bin/crictl"), "node-a"),
        on_host(exec("/usr/bin/sudo", "/usr/bin/crictl"), "node-b"),
        on_host(exec("/usr/bin/sudo", "/usr/bin/crictl"), "node-c"),
        exec("/bin/sh", "/usr/bin/crictl"),
    ];
    let yaml = "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata: {name: no-crictl}\n\
                spec:\n  nodeSelector: {matchLabels: {kubernetes.io/hostname: node-a}}\n  \
                process:\n    matchPaths: [{path: /usr/bin/crictl}]\n  action: Block\n---\n\
                apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata: {name: pool-b}\n\
                spec:\n  nodeSelector: {matchLabels: {pool: b}}\n  \
                process:\n    matchPaths: [{path: /usr/bin/crictl}]\n  action: Audit";
    let mut opts = all_ns();
    opts.node_labels.insert(
        "node-b".into(),
        [("pool".to_string(), "b".to_string())].into(),
    );
    let r = run(rows, yaml, &opts);
    let by_node: BTreeMap<(bool, String), (Decision, Option<String>)> = r
        .entries
        .iter()
        .map(|e| ((e.host, e.node.clone()), (e.decision, e.policy.clone())))
        .collect();
    assert_eq!(
        by_node[&(true, "node-a".to_string())],
        (Decision::Blocked, Some("no-crictl".into()))
    );
    assert_eq!(
        by_node[&(true, "node-b".to_string())],
        (Decision::Audited, Some("pool-b".into()))
    );
    assert_eq!(
        by_node[&(true, "node-c".to_string())],
        (Decision::Allowed, None)
    );
    assert_eq!(
        by_node[&(false, "node-a".to_string())],
        (Decision::Allowed, None)
    );
    assert_eq!(
        r.policies,
        vec!["no-crictl".to_string(), "pool-b".to_string()]
    );

    // Without host behaviour in scope, host policies select nothing.
    let (_d, store) = store_of(vec![on_host(
        exec("/usr/bin/sudo", "/usr/bin/crictl"),
        "node-a",
    )]);
    let r = simulate(&store, &policies(yaml), &SimOptions::default()).unwrap();
    assert!(r.entries.is_empty());
}

#[test]
fn selectors_match_labels_expressions_and_namespaces() {
    let rows = vec![
        in_pod(
            exec("/bin/sh", "/usr/bin/nc"),
            "shop",
            "web",
            &["app=web", "tier=front"],
        ),
        in_pod(
            exec("/bin/sh", "/usr/bin/nc"),
            "shop",
            "db",
            &["app=db", "tier=back"],
        ),
        in_pod(
            exec("/bin/sh", "/usr/bin/nc"),
            "shop",
            "cache",
            &["app=cache", "tier=back"],
        ),
        in_pod(
            exec("/bin/sh", "/usr/bin/nc"),
            "other",
            "web",
            &["app=web", "tier=front"],
        ),
        in_pod(
            exec("/bin/sh", "/usr/bin/nc"),
            "default",
            "web",
            &["app=web", "tier=front"],
        ),
    ];
    let yaml = format!(
        "{KSP}metadata: {{name: web, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         process:\n    matchPaths: [{{path: /usr/bin/nc}}]\n  action: Block\n---\n\
         {KSP}metadata: {{name: back-not-db, namespace: shop}}\nspec:\n  selector:\n    matchLabels: {{tier: back}}\n    \
         matchExpressions: [{{key: label, operator: NotIn, values: [app=db]}}]\n  \
         process:\n    matchPaths: [{{path: /usr/bin/nc}}]\n  action: Audit\n---\n\
         {KSP}metadata: {{name: no-namespace}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         process:\n    matchPaths: [{{path: /usr/bin/nc}}]\n  action: Audit"
    );
    let r = run(rows.clone(), &yaml, &all_ns());
    let got: BTreeMap<(String, String), (Decision, Option<String>)> = r
        .entries
        .iter()
        .map(|e| {
            (
                (e.namespace.clone().unwrap(), e.workload.clone()),
                (e.decision, e.policy.clone()),
            )
        })
        .collect();
    let key = |ns: &str, w: &str| (ns.to_string(), format!("Deployment/{w}"));
    assert_eq!(
        got[&key("shop", "web")],
        (Decision::Blocked, Some("shop/web".into()))
    );
    assert_eq!(got[&key("shop", "db")], (Decision::Allowed, None));
    assert_eq!(
        got[&key("shop", "cache")],
        (Decision::Audited, Some("shop/back-not-db".into()))
    );
    assert_eq!(got[&key("other", "web")], (Decision::Allowed, None));
    // A namespace-less KubeArmorPolicy lands in `default`, or where `kubectl apply -n` puts it.
    assert_eq!(
        got[&key("default", "web")],
        (Decision::Audited, Some("default/no-namespace".into()))
    );
    let opts = SimOptions {
        policy_namespace: Some("other".into()),
        ..all_ns()
    };
    let r = run(rows, &yaml, &opts);
    let other = r
        .entries
        .iter()
        .find(|e| e.namespace.as_deref() == Some("other"))
        .unwrap();
    assert_eq!(other.decision, Decision::Audited);
    assert_eq!(other.policy.as_deref(), Some("other/no-namespace"));
}

#[test]
fn cluster_policies_select_by_namespace() {
    let rows = vec![
        in_pod(exec("/bin/sh", "/usr/bin/nc"), "shop", "web", &["app=web"]),
        in_pod(
            exec("/bin/sh", "/usr/bin/nc"),
            "kube-system",
            "dns",
            &["app=dns"],
        ),
        on_host(exec("/bin/sh", "/usr/bin/nc"), "node-a"),
    ];
    let yaml = "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorClusterPolicy\nmetadata: {name: no-nc}\n\
                spec:\n  selector:\n    matchExpressions: [{key: namespace, operator: In, values: [shop, prod]}]\n  \
                process:\n    matchPaths: [{path: /usr/bin/nc}]\n  action: Block";
    let r = run(rows, yaml, &all_ns());
    let got: BTreeMap<String, Decision> = r
        .entries
        .iter()
        .map(|e| {
            (
                e.namespace.clone().unwrap_or_else(|| "(host)".into()),
                e.decision,
            )
        })
        .collect();
    assert_eq!(got["shop"], Decision::Blocked);
    assert_eq!(got["kube-system"], Decision::Allowed);
    assert_eq!(got["(host)"], Decision::Allowed);
    // Entries come sorted: pods by namespace and workload, host behaviour last.
    let keys: Vec<(bool, Option<String>, String)> = r
        .entries
        .iter()
        .map(|e| (e.host, e.namespace.clone(), e.workload.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(keys.last().unwrap().0);
}

#[test]
fn network_and_capability_rules() {
    let mut cap = base();
    cap.op = Op::Capability;
    cap.capability = Some("CAP_NET_RAW".into());
    let mut sys = base();
    sys.op = Op::Syscall;
    sys.syscall = Some("SYS_PTRACE".into());
    let rows = vec![
        net("/usr/bin/app", "tcp", "10.0.0.1"),
        net("/usr/bin/curl", "tcp", "203.0.113.66"),
        net("/usr/bin/app", "udp", "10.96.0.10"),
        net("/usr/bin/app", "unix", "/run/mysqld.sock"),
        cap,
        sys,
    ];
    let yaml = format!(
        "{KSP}metadata: {{name: net, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         network:\n    matchProtocols:\n    - {{protocol: TCP, fromSource: [{{path: /usr/bin/app}}]}}\n    - {{protocol: udp}}\n  \
         capabilities:\n    matchCapabilities: [{{capability: net_raw, action: Block}}]\n  action: Allow"
    );
    let block = SimOptions {
        posture: Postures::all(Posture::Block),
        ..all_ns()
    };
    let r = run(rows, &yaml, &block);
    assert_eq!(
        decision(&r, None, "tcp connect 10.0.0.1:443"),
        Decision::Allowed
    );
    // Which peer it is, no KubeArmorPolicy can enforce: the allowed connect says so.
    assert_eq!(
        entry(&r, None, "tcp connect 10.0.0.1:443").note.as_deref(),
        Some(karmor_analyzer::simulate::PEER_NOTE)
    );
    let curl = entry(&r, None, "tcp connect 203.0.113.66:443");
    assert_eq!(
        (curl.decision, curl.policy.as_deref()),
        (Decision::Blocked, Some(DEFAULT_POSTURE))
    );
    assert_eq!(curl.note, None, "a blocked connect needs no peer note");
    assert_eq!(
        decision(&r, None, "udp connect 10.96.0.10:443"),
        Decision::Allowed
    );
    // A unix stream socket is matched by tcp rules.
    assert_eq!(
        decision(&r, None, "unix connect /run/mysqld.sock:443"),
        Decision::Allowed
    );
    assert_eq!(decision(&r, None, "CAP_NET_RAW"), Decision::Blocked);
    // The system call is decided too: no syscalls rule matches it, and KubeArmor has no
    // posture for system calls, so the policy's allow-lists leave it allowed.
    let ptrace = entry(&r, None, "ptrace");
    assert_eq!(
        (ptrace.op, ptrace.decision),
        (Op::Syscall, Decision::Allowed)
    );
    assert!(r.not_simulated.is_empty(), "{:?}", r.not_simulated);
}

fn syscall(process: &str, name: &str, path: Option<&str>) -> Event {
    Event {
        op: Op::Syscall,
        process: Some(process.into()),
        syscall: Some(name.into()),
        path: path.map(str::to_string),
        ..base()
    }
}

#[test]
fn syscall_rules_audit_by_name_source_and_path_and_never_block() {
    let rows = vec![
        syscall("/usr/bin/app", "SYS_PTRACE", None),
        syscall("/usr/bin/curl", "SYS_PTRACE", None),
        syscall("/bin/tools/rm", "unlink", None),
        syscall("/sbin/rm", "SYS_UNLINK", None),
        syscall("/usr/bin/app", "SYS_UNLINKAT", Some("/etc/app/old.conf")),
        syscall("/usr/bin/app", "SYS_UNLINKAT", Some("/tmp/x")),
        syscall("/usr/bin/app", "SYS_OPENAT", None),
    ];
    // Block everywhere, and a block posture: system-call rules still only audit.
    let yaml = format!(
        "{KSP}metadata: {{name: sys, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         syscalls:\n    matchSyscalls:\n    - {{syscall: [ptrace], fromSource: [{{path: /usr/bin/app}}]}}\n    \
         - {{syscall: [unlink], fromSource: [{{dir: /bin/, recursive: true}}]}}\n    \
         matchPaths:\n    - {{path: /etc/, recursive: true, syscall: [unlinkat]}}\n  action: Block"
    );
    let block = SimOptions {
        posture: Postures::all(Posture::Block),
        ..all_ns()
    };
    let r = run(rows, &yaml, &block);
    let audited = |process: &str, resource: &str, rule: &str| {
        let e = entry(&r, Some(process), resource);
        assert_eq!(e.decision, Decision::Audited, "{e:?}");
        assert_eq!(e.policy.as_deref(), Some("shop/sys"), "{e:?}");
        assert!(
            e.rule.as_deref().is_some_and(|x| x.starts_with(rule)),
            "{e:?}"
        );
    };
    audited("/usr/bin/app", "ptrace", "syscalls.matchSyscalls[0]");
    audited("/bin/tools/rm", "unlink", "syscalls.matchSyscalls[1]");
    audited(
        "/usr/bin/app",
        "unlinkat /etc/app/old.conf",
        "syscalls.matchPaths[0] path=/etc/",
    );
    // Another caller, a directory the source is not under, a path outside, another name.
    for (process, resource) in [
        ("/usr/bin/curl", "ptrace"),
        ("/sbin/rm", "unlink"),
        ("/usr/bin/app", "unlinkat /tmp/x"),
        ("/usr/bin/app", "openat"),
    ] {
        let e = entry(&r, Some(process), resource);
        assert_eq!(
            (e.decision, e.policy.as_deref()),
            (Decision::Allowed, None),
            "{e:?}"
        );
    }
    assert_eq!(r.blocked().count(), 0);
    assert!(r.not_simulated.is_empty(), "{:?}", r.not_simulated);
}

#[test]
fn counts_add_up_across_rows_and_time_windows_select_rows() {
    let mut a = file("/usr/bin/app", "/etc/app.conf", "write");
    a.count = 5;
    let mut b = a.clone();
    b.ts_first = T0 + 2 * HOUR;
    b.ts_last = T0 + 2 * HOUR + 10;
    b.count = 7;
    let yaml = format!(
        "{KSP}metadata: {{name: etc, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         file:\n    matchDirectories: [{{dir: /etc/, readOnly: true}}]\n  action: Block"
    );
    let (_d, store) = store_of(vec![a, b]);
    let r = simulate(&store, &policies(&yaml), &all_ns()).unwrap();
    assert_eq!(r.entries.len(), 1);
    assert_eq!((r.entries[0].count, r.entries[0].rows), (12, 2));
    let t = r.totals();
    assert_eq!(
        (t.blocked, t.blocked_entries, t.allowed, t.audited),
        (12, 1, 0, 0)
    );
    let later = SimOptions {
        since_ns: Some(T0 + HOUR),
        ..all_ns()
    };
    let r = simulate(&store, &policies(&yaml), &later).unwrap();
    assert_eq!((r.entries[0].count, r.entries[0].rows), (7, 1));
    let earlier = SimOptions {
        until_ns: Some(T0 + HOUR),
        ..all_ns()
    };
    let r = simulate(&store, &policies(&yaml), &earlier).unwrap();
    assert_eq!((r.entries[0].count, r.entries[0].rows), (5, 1));
}

// ------------------------------------------------------------------------------------------
// Failed look-ups (engine::lookup_failure): what KubeArmor's enforcers never see
// ------------------------------------------------------------------------------------------

fn failed(mut e: Event, result: &str) -> Event {
    e.result = Some(result.into());
    e
}

fn passed(e: Event) -> Event {
    failed(e, "Passed")
}

/// An allow-list of the app's own files and executables, under a block posture: anything else
/// is blocked by `DefaultPosture` unless it is unaffected.
fn app_allow_list() -> String {
    format!(
        "{KSP}metadata: {{name: app, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         process:\n    matchPaths: [{{path: /usr/bin/app}}]\n  \
         file:\n    matchPaths: [{{path: /etc/app.conf, readOnly: true}}]\n    \
         matchDirectories: [{{dir: /var/lib/app/, recursive: true}}]\n  action: Allow"
    )
}

fn block_posture() -> SimOptions {
    SimOptions {
        posture: Postures::all(Posture::Block),
        ..all_ns()
    }
}

/// Interpreter start-up probes paths that do not exist. BPF-LSM decides files in
/// `lsm/file_open` (`enforce_file`, KubeArmor/BPF/enforcer.bpf.c), which the kernel calls in
/// `do_dentry_open` only after `path_openat` resolved the path; AppArmor mediates the same
/// `file_open` hook. An `ENOENT`/`ENOTDIR` open never gets there: no policy changes it, even a
/// Block rule naming the path.
#[test]
fn a_read_of_a_missing_file_is_unaffected_not_blocked() {
    let probe = "/usr/lib/python3.12/encodings/__pycache__/missing.pyc";
    let rows = vec![
        failed(
            file("/usr/bin/app", probe, "read"),
            "No such file or directory",
        ),
        // A component that is a file, not a directory.
        failed(
            file("/usr/bin/app", "/etc/app.conf/override", "read"),
            "Not a directory",
        ),
        // The same look-up as our collector words an errno it has no text for.
        failed(file("/usr/bin/app", "/opt/missing.so", "read"), "errno 2"),
        // Control: the same kind of read that resolved is blocked by the posture.
        passed(file("/usr/bin/app", "/usr/lib/python3.12/os.py", "read")),
        passed(file("/usr/bin/app", "/etc/app.conf", "read")),
    ];
    let block_rule = format!(
        "{KSP}metadata: {{name: no-python, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         file:\n    matchPaths: [{{path: {probe}}}]\n  action: Block"
    );
    let r = run(
        rows,
        &format!("{}\n---\n{block_rule}", app_allow_list()),
        &block_posture(),
    );
    for path in [probe, "/etc/app.conf/override", "/opt/missing.so"] {
        let e = entry(&r, None, path);
        assert_eq!(e.decision, Decision::Unaffected, "{e:?}");
        assert_eq!(e.policy, None, "{e:?}");
        assert!(
            e.rule
                .as_deref()
                .is_some_and(|r| r.contains("did not resolve")),
            "{e:?}"
        );
    }
    assert_eq!(
        entry(&r, None, probe).result.as_deref(),
        Some("No such file or directory")
    );
    assert_eq!(
        decision(&r, None, "/usr/lib/python3.12/os.py"),
        Decision::Blocked
    );
    assert_eq!(decision(&r, None, "/etc/app.conf"), Decision::Allowed);
    let t = r.totals();
    assert_eq!(
        (t.unaffected_entries, t.unaffected, t.blocked_entries),
        (3, 3, 1)
    );
    assert_eq!(r.unaffected().count(), 3);
}

/// `O_CREAT` on a missing file in an existing directory is mediated as a create: the kernel's
/// `lookup_open` calls `may_o_create`, hence `security_path_mknod` (BPF-LSM `lsm/path_mknod`,
/// `enforce_mknod` in KubeArmor/BPF/enforcer_path.bpf.c; AppArmor `apparmor_path_mknod`), then
/// `file_open`. So a recorded `create` that succeeded, or was refused (`Permission denied`), is
/// decided by policy. An `O_CREAT` open that failed with `ENOENT` failed walking to the parent
/// directory, before that hook: unaffected.
#[test]
fn a_create_of_a_missing_file_is_decided_by_policy_unless_its_directory_is_missing() {
    let rows = vec![
        passed(file("/usr/bin/app", "/tmp/app-upload.bin", "create")),
        failed(
            file("/usr/bin/app", "/srv/readonly/new.txt", "create"),
            "Permission denied",
        ),
        // The collector records a failed O_CREAT|O_WRONLY open as `write` (no FMODE_CREATED);
        // KubeArmor's import maps O_CREAT to `create`: both are missing-parent look-ups.
        failed(
            file("/usr/bin/app", "/run/app/missing-dir/app.pid", "write"),
            "No such file or directory",
        ),
        failed(
            file("/usr/bin/app", "/run/other/missing-dir/app.lock", "create"),
            "No such file or directory",
        ),
        // Inside the allow-listed directory a create is allowed.
        passed(file("/usr/bin/app", "/var/lib/app/state.db", "create")),
    ];
    let r = run(rows, &app_allow_list(), &block_posture());
    for path in ["/tmp/app-upload.bin", "/srv/readonly/new.txt"] {
        let e = entry(&r, None, path);
        assert_eq!(
            (e.decision, e.policy.as_deref()),
            (Decision::Blocked, Some(DEFAULT_POSTURE)),
            "{e:?}"
        );
    }
    for path in [
        "/run/app/missing-dir/app.pid",
        "/run/other/missing-dir/app.lock",
    ] {
        assert_eq!(decision(&r, None, path), Decision::Unaffected, "{path}");
    }
    assert_eq!(
        decision(&r, None, "/var/lib/app/state.db"),
        Decision::Allowed
    );
}

/// Shells and `execvp` search `PATH` and try binaries that do not exist. BPF-LSM decides an
/// exec in `lsm/bprm_check_security` (`enforce_proc`, KubeArmor/BPF/enforcer.bpf.c), which the
/// kernel calls from `exec_binprm` after `do_open_execat` opened the binary; AppArmor decides in
/// `bprm_creds_for_exec`, also after the open. A missing binary fails in the open: unaffected.
/// The open of a binary for execution (`access: exec` file rows) is the same look-up.
#[test]
fn an_exec_of_a_missing_binary_is_unaffected() {
    let rows = vec![
        failed(
            exec("/bin/sh", "/usr/local/sbin/python3"),
            "No such file or directory",
        ),
        failed(
            file("/bin/sh", "/usr/local/bin/python3", "exec"),
            "No such file or directory",
        ),
        // Control: a binary that exists and is not allow-listed is blocked.
        passed(exec("/bin/sh", "/usr/bin/python3")),
        passed(exec("/bin/sh", "/usr/bin/app")),
    ];
    let r = run(rows, &app_allow_list(), &block_posture());
    let missing = entry(&r, None, "/usr/local/sbin/python3");
    assert_eq!(missing.op, Op::Process);
    assert_eq!(missing.decision, Decision::Unaffected, "{missing:?}");
    assert_eq!(
        decision(&r, None, "/usr/local/bin/python3"),
        Decision::Unaffected
    );
    let present = entry(&r, None, "/usr/bin/python3");
    assert_eq!(
        (present.decision, present.policy.as_deref()),
        (Decision::Blocked, Some(DEFAULT_POSTURE))
    );
    assert_eq!(decision(&r, None, "/usr/bin/app"), Decision::Allowed);
}

/// `EACCES`/`EPERM` mean the path resolved and a permission check (DAC, or an enforcer
/// already in place) refused it: the enforcers' hooks run on such paths, so policy decides as
/// usual. KubeArmor's own matcher (`UpdateMatchedPolicy`, KubeArmor/feeder/policyMatcher.go)
/// matches exactly `Passed`, `Operation not permitted` and `Permission denied`. Network rows
/// are never look-up failures: `lsm/socket_connect` (`enforce_net_connect`) runs before the
/// address (a unix socket path) is resolved.
#[test]
fn exists_but_denied_is_decided_by_policy_as_usual() {
    let mut sock = net("/usr/bin/app", "unix", "/run/missing.sock");
    sock.result = Some("No such file or directory".into());
    let rows = vec![
        failed(
            file("/usr/bin/app", "/etc/shadow", "read"),
            "Permission denied",
        ),
        failed(
            exec("/bin/sh", "/usr/sbin/iptables"),
            "Operation not permitted",
        ),
        failed(
            file("/usr/bin/app", "/etc/app.conf", "read"),
            "Permission denied",
        ),
        sock,
    ];
    let net_allow = format!(
        "{KSP}metadata: {{name: app-net, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  \
         network:\n    matchProtocols: [{{protocol: udp}}]\n  action: Allow"
    );
    let r = run(
        rows,
        &format!("{}\n---\n{net_allow}", app_allow_list()),
        &block_posture(),
    );
    for resource in ["/etc/shadow", "/usr/sbin/iptables"] {
        let e = entry(&r, None, resource);
        assert_eq!(
            (e.decision, e.policy.as_deref()),
            (Decision::Blocked, Some(DEFAULT_POSTURE)),
            "{e:?}"
        );
    }
    // An allow rule covers a denied read like any other read.
    assert_eq!(decision(&r, None, "/etc/app.conf"), Decision::Allowed);
    let sock = entry(&r, None, "unix connect /run/missing.sock:443");
    assert_eq!(sock.decision, Decision::Blocked, "{sock:?}");
    assert_eq!(r.totals().unaffected_entries, 0);
}

// ------------------------------------------------------------------------------------------
// The demo bundle
// ------------------------------------------------------------------------------------------

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/demo")
}

fn demo_store() -> Store {
    let s = Store::in_memory().unwrap();
    let r = s.merge_bundle(&demo_dir()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    s
}

fn demo_rows() -> Vec<Event> {
    let root = demo_dir();
    let m = read_manifest(&root).expect("demo manifest");
    m.files
        .iter()
        .flat_map(|f| read_segment(&root.join(&f.path)).expect("segment").1)
        .collect()
}

#[test]
fn demo_blocking_writes_under_usr_bin_blocks_exactly_those_writes() {
    let yaml = "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorClusterPolicy\n\
                metadata: {name: usr-bin-ro}\nspec:\n  file:\n    \
                matchDirectories: [{dir: /usr/bin/, recursive: true, readOnly: true}]\n  action: Block";
    let store = demo_store();
    let r = simulate(&store, &policies(yaml), &SimOptions::default()).unwrap();
    let blocked: Vec<&SimEntry> = r.blocked().collect();

    // Independent count: DuckDB straight over the committed Parquet files.
    let conn = duckdb::Connection::open_in_memory().unwrap();
    // The events: the pods table (`pods/`) has a schema of its own.
    let glob = format!("{}/node=*/**/*.parquet", demo_dir().display());
    assert!(!glob.contains('\''));
    let (rows, events): (i64, i64) = conn
        .query_row(
            &format!(
                "SELECT count(*), coalesce(sum(count), 0)::BIGINT
                 FROM read_parquet('{glob}', hive_partitioning = false)
                 WHERE op = 'file' AND NOT host AND (path = '/usr/bin' OR path LIKE '/usr/bin/%')
                   AND access IN ('write', 'create', 'delete', 'rename', 'chmod', 'chown')"
            ),
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert!(rows > 0);
    assert_eq!(blocked.iter().map(|e| e.rows).sum::<u64>(), rows as u64);
    assert_eq!(blocked.iter().map(|e| e.count).sum::<u64>(), events as u64);
    assert_eq!(r.totals().blocked, events as u64);
    // And that is the dropped binary of the demo's attack, nothing else.
    let expected: BTreeSet<(String, String)> = demo_rows()
        .iter()
        .filter(|e| {
            demo::is_suspicious(e)
                && e.op == Op::File
                && e.path
                    .as_deref()
                    .is_some_and(|p| p.starts_with("/usr/bin/"))
        })
        .map(|e| (e.workload.clone().unwrap(), e.path.clone().unwrap()))
        .collect();
    let got: BTreeSet<(String, String)> = blocked
        .iter()
        .map(|e| {
            (
                e.workload.split_once('/').unwrap().1.to_string(),
                e.resource.clone(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(blocked[0].policy.as_deref(), Some("usr-bin-ro"));
    // Reads of /usr/bin (executables loading) stay allowed.
    assert!(r
        .entries
        .iter()
        .any(|e| e.resource.starts_with("/usr/bin/") && e.decision == Decision::Allowed));
}

/// Key of a learned behaviour, as an exact allow-list learner sees it.
fn learn(rows: &[Event], workload: &str) -> Policy {
    let mine: Vec<&Event> = rows
        .iter()
        .filter(|e| {
            e.namespace.as_deref() == Some(demo::NAMESPACE)
                && e.workload.as_deref() == Some(workload)
                && e.ts_first < demo::SUSPICIOUS_AFTER_NS
        })
        .collect();
    let mut labels = BTreeMap::new();
    for l in mine.iter().flat_map(|e| e.labels.iter()) {
        if let Some((k, v)) = l.split_once('=') {
            if k != "pod-template-hash" {
                labels.insert(k.to_string(), v.to_string());
            }
        }
    }
    let mut procs = BTreeSet::new();
    let mut files: BTreeMap<(String, String), bool> = BTreeMap::new();
    let mut dirs = BTreeSet::new();
    let mut protos = BTreeSet::new();
    for e in &mine {
        match e.op {
            Op::Process => {
                procs.insert((e.process.clone().unwrap(), e.parent_process.clone()));
            }
            Op::File => {
                let path = e.path.clone().unwrap();
                let process = e.process.clone().unwrap();
                // Generalise what a drafter would: per-request temporary and upload files.
                if let Some(dir) = ["/tmp/", "/var/www/html/wp-content/uploads/"]
                    .iter()
                    .find(|d| path.starts_with(**d))
                {
                    dirs.insert((dir.to_string(), process));
                    continue;
                }
                let write = !matches!(e.access.as_deref(), Some("read") | Some("exec"));
                *files.entry((path, process)).or_insert(false) |= write;
            }
            Op::Network => {
                // Unix stream sockets are governed by `tcp` rules.
                let proto = match e.proto.as_deref() {
                    Some("unix") => "tcp".to_string(),
                    other => other.unwrap().to_string(),
                };
                protos.insert((proto, e.process.clone().unwrap()));
            }
            _ => {}
        }
    }
    let mut p = Policy::new(PolicyKind::KubeArmorPolicy, format!("learned-{workload}"));
    p.metadata.namespace = Some(demo::NAMESPACE.into());
    p.spec.selector = Some(Selector {
        match_labels: labels,
        ..Selector::default()
    });
    p.spec.process = Some(ProcessRules {
        match_paths: procs
            .into_iter()
            .map(|(path, parent)| ProcessPathRule {
                path: Some(path),
                from_source: parent.into_iter().map(Source::path).collect(),
                ..ProcessPathRule::default()
            })
            .collect(),
        ..ProcessRules::default()
    });
    p.spec.file = Some(FileRules {
        match_paths: files
            .into_iter()
            .map(|((path, process), write)| FilePathRule {
                path,
                read_only: !write,
                from_source: vec![Source::path(process)],
                ..FilePathRule::default()
            })
            .collect(),
        match_directories: dirs
            .into_iter()
            .map(|(dir, process)| FileDirectoryRule {
                dir,
                recursive: true,
                from_source: vec![Source::path(process)],
                ..FileDirectoryRule::default()
            })
            .collect(),
        ..FileRules::default()
    });
    p.spec.network = Some(NetworkRules {
        match_protocols: protos
            .into_iter()
            .map(|(protocol, process)| ProtocolRule {
                protocol,
                from_source: vec![Source::path(process)],
                ..ProtocolRule::default()
            })
            .collect(),
        ..NetworkRules::default()
    });
    p.spec.action = Some(Action::Allow);
    p
}

#[test]
fn demo_policy_learned_before_noon_blocks_exactly_the_attack() {
    let rows = demo_rows();
    let learned = vec![learn(&rows, "wordpress"), learn(&rows, "mysql")];
    for p in &learned {
        let v = karmor_analyzer::policy::validate_policy(p);
        assert!(v.errors.is_empty(), "{:?}", v.errors);
    }
    let store = demo_store();
    let opts = SimOptions {
        namespaces: vec![demo::NAMESPACE.into()],
        posture: Postures::all(Posture::Block),
        ..SimOptions::default()
    };
    // On the data it came from, the draft blocks nothing.
    let before = SimOptions {
        until_ns: Some(demo::SUSPICIOUS_AFTER_NS),
        ..opts.clone()
    };
    let r = simulate(&store, &learned, &before).unwrap();
    assert!(!r.entries.is_empty());
    let t = r.totals();
    assert_eq!(
        (t.blocked_entries, t.audited_entries),
        (0, 0),
        "{:#?}",
        r.blocked().collect::<Vec<_>>()
    );

    // Over the whole day it blocks the attack's rows and nothing else.
    let r = simulate(&store, &learned, &opts).unwrap();
    let got: BTreeSet<(Op, String, String)> = r
        .blocked()
        .map(|e| {
            (
                e.op,
                e.process.clone().unwrap_or_default(),
                e.resource.clone(),
            )
        })
        .collect();
    let suspicious: Vec<&Event> = rows.iter().filter(|e| demo::is_suspicious(e)).collect();
    assert_eq!(suspicious.len(), demo::SUSPICIOUS_ROWS);
    let want: BTreeSet<(Op, String, String)> = suspicious
        .iter()
        .map(|e| {
            let resource = match e.op {
                Op::Process => e.process.clone().unwrap(),
                Op::File => e.path.clone().unwrap(),
                _ => format!(
                    "{} {} {}:{}",
                    e.proto.as_deref().unwrap(),
                    e.direction.as_deref().unwrap(),
                    e.remote_addr.as_deref().unwrap(),
                    e.remote_port.unwrap()
                ),
            };
            (e.op, e.process.clone().unwrap(), resource)
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        r.blocked().map(|e| e.rows).sum::<u64>(),
        demo::SUSPICIOUS_ROWS as u64
    );
    assert!(r
        .blocked()
        .all(|e| e.policy.as_deref() == Some(DEFAULT_POSTURE)));
}
