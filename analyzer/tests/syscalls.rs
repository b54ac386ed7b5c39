//! System calls and capabilities through the analyzer, on a real bundle written by the
//! contract's writer and merged into a DuckDB store: `observe`'s syscall and capability
//! sections and their filters, `recommend`'s `syscalls` rules (shape, `fromSource`, audit
//! only, valid for our validator and the CRD schemas), `simulate` of syscall rows against them
//! (the draft simulates clean on its own data; each row is audited by the right rule), and the
//! seccomp drafts of `recommend --seccomp`.

#[path = "common/openapi.rs"]
mod openapi;

use std::collections::BTreeSet;
use std::path::Path;

use karmor_analyzer::filter::compile;
use karmor_analyzer::observe::{summarize, NamespaceScope, ObserveQuery, ResourceKind};
use karmor_analyzer::policy::{validate_documents, validate_policy, Outcome};
use karmor_analyzer::recommend::draft::SYSCALL_RULE_NOTE;
use karmor_analyzer::recommend::report::{markdown, workload_yaml};
use karmor_analyzer::recommend::seccomp::{seccomp_drafts, SeccompOptions, RUNTIME_SYSCALLS};
use karmor_analyzer::recommend::{
    recommend, HostSelect, Include, RecommendOptions, Scope, WorkloadSelect,
};
use karmor_analyzer::simulate::{simulate, Decision, Posture, Postures, SimOptions};
use karmor_analyzer::Store;
use karmor_contract::bundle::{write_bundle, BundleOptions};
use karmor_contract::{Event, Op, Source};
use serde::Deserialize;

const T0: i64 = 1_790_000_000_000_000_000;

fn base(workload: &str) -> Event {
    Event {
        ts_first: T0,
        ts_last: T0 + 1_000_000,
        count: 1,
        node: "node-a".into(),
        namespace: Some("shop".into()),
        pod: Some(format!("{workload}-5d8f-1")),
        container: Some(workload.into()),
        container_id: Some(format!("{workload:a<64}")),
        workload_kind: Some("Deployment".into()),
        workload: Some(workload.into()),
        labels: vec![format!("app={workload}")],
        source: Source::Ebpf,
        pid: Some(40),
        ppid: Some(1),
        uid: Some(1000),
        ..Event::default()
    }
}

fn syscall(process: Option<&str>, name: &str, count: u64) -> Event {
    Event {
        op: Op::Syscall,
        process: process.map(str::to_string),
        syscall: Some(name.into()),
        count,
        result: Some("Passed".into()),
        ..base("web")
    }
}

fn capability(process: &str, cap: &str, result: &str) -> Event {
    Event {
        op: Op::Capability,
        process: Some(process.into()),
        capability: Some(cap.into()),
        result: Some(result.into()),
        ..base("web")
    }
}

fn exec(workload: &str, parent: &str, process: &str) -> Event {
    Event {
        op: Op::Process,
        process: Some(process.into()),
        parent_process: Some(parent.into()),
        ..base(workload)
    }
}

/// `web`: a shell starts `/usr/bin/app`; both make system calls (the collector's
/// `SYS_<NAME>` and KubeArmor-import lowercase spellings), one row has no process, one a call
/// KubeArmor's rules cannot name (`clone3`); capabilities granted and denied. `db` has
/// processes only.
fn events() -> Vec<Event> {
    let mut v = vec![
        exec("web", "/usr/bin/containerd-shim-runc-v2", "/bin/sh"),
        exec("web", "/bin/sh", "/usr/bin/app"),
        syscall(Some("/bin/sh"), "SYS_EXECVE", 2),
        syscall(Some("/bin/sh"), "SYS_READ", 10),
        syscall(Some("/usr/bin/app"), "SYS_OPENAT", 300),
        syscall(Some("/usr/bin/app"), "read", 500),
        syscall(Some("/usr/bin/app"), "SYS_READ", 5),
        syscall(Some("/usr/bin/app"), "SYS_CLONE3", 1),
        syscall(None, "SYS_WRITE", 7),
        capability("/usr/bin/app", "CAP_NET_BIND_SERVICE", "Passed"),
        capability("/usr/bin/app", "CAP_SYS_ADMIN", "Operation not permitted"),
        exec("db", "/usr/bin/containerd-shim-runc-v2", "/usr/sbin/mysqld"),
    ];
    // A node's host behaviour: no seccomp profile for a host.
    let mut host = syscall(Some("/usr/sbin/sshd"), "SYS_ACCEPT4", 3);
    host.host = true;
    host.namespace = None;
    host.pod = None;
    host.container = None;
    host.container_id = None;
    host.workload = None;
    host.workload_kind = None;
    host.labels = Vec::new();
    v.push(host);
    v
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_bundle(
        dir.path(),
        events(),
        &BundleOptions {
            producer: "syscalls-test".into(),
            ..BundleOptions::default()
        },
    )
    .expect("write bundle");
    let store = Store::in_memory().expect("store");
    let r = store.merge_bundle(dir.path()).expect("merge");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    (dir, store)
}

fn everything() -> Scope {
    Scope {
        workloads: Some(WorkloadSelect::default()),
        hosts: Some(HostSelect::default()),
        ..Scope::default()
    }
}

fn q(ops: &[Op], filter: Option<&str>) -> ObserveQuery {
    let mut q = ObserveQuery::new(ResourceKind::Workload);
    q.namespace = NamespaceScope::One("shop".into());
    q.operations = ops.to_vec();
    q.filter = filter.map(|f| compile(f).expect("filter"));
    q
}

#[test]
fn observe_has_syscall_and_capability_sections_and_filters() {
    let (_dir, store) = store();
    let s = summarize(&store, &q(&[Op::Syscall, Op::Capability], None)).expect("summary");
    assert!(s.processes.is_none() && s.files.is_none() && s.network.is_none());
    let calls: Vec<(String, String, u64)> = s
        .syscalls
        .as_ref()
        .expect("syscalls")
        .iter()
        .map(|r| {
            assert_eq!(r.resource, "Deployment/web");
            assert_eq!(r.results, "Passed");
            (
                r.process.clone().unwrap_or_default(),
                r.syscall.clone().unwrap_or_default(),
                r.seen.count,
            )
        })
        .collect();
    // Both spellings of read(2) by the app are one row; ordered by count, most first.
    assert_eq!(
        calls,
        [
            ("/usr/bin/app".into(), "read".into(), 505),
            ("/usr/bin/app".into(), "openat".into(), 300),
            ("/bin/sh".into(), "read".into(), 10),
            ("".into(), "write".into(), 7),
            ("/bin/sh".into(), "execve".into(), 2),
            ("/usr/bin/app".into(), "clone3".into(), 1),
        ]
    );
    let caps: Vec<(String, String)> = s
        .capabilities
        .as_ref()
        .expect("capabilities")
        .iter()
        .map(|r| (r.capability.clone().unwrap_or_default(), r.results.clone()))
        .collect();
    assert_eq!(caps.len(), 2);
    assert!(caps.contains(&("CAP_NET_BIND_SERVICE".into(), "Passed".into())));
    assert!(caps.contains(&("CAP_SYS_ADMIN".into(), "Operation not permitted".into())));

    // The default sections leave them out.
    let d = summarize(&store, &q(&[], None)).expect("summary");
    assert!(d.syscalls.is_none() && d.capabilities.is_none());

    // Filters match each spelling: `openat`, `SYS_OPENAT`, a glob; `net_bind_service`.
    for f in ["syscall=openat", "syscall=SYS_OPENAT", "syscall=sys_open*"] {
        let s = summarize(&store, &q(&[Op::Syscall], Some(f))).expect("summary");
        let names: Vec<_> = s
            .syscalls
            .unwrap()
            .into_iter()
            .map(|r| r.syscall.unwrap_or_default())
            .collect();
        assert_eq!(names, ["openat"], "{f}");
    }
    let s = summarize(
        &store,
        &q(&[Op::Syscall], Some("syscall=read && process=/bin/sh")),
    )
    .unwrap();
    assert_eq!(s.syscalls.unwrap().len(), 1);
    let s = summarize(
        &store,
        &q(&[Op::Capability], Some("capability=net_bind_service")),
    )
    .unwrap();
    let caps = s.capabilities.unwrap();
    assert_eq!(caps.len(), 1);
    assert_eq!(caps[0].capability.as_deref(), Some("CAP_NET_BIND_SERVICE"));
}

fn crds() -> openapi::Crds {
    openapi::Crds::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/kubearmor/crds"))
}

#[test]
fn drafts_audit_the_calls_made_per_executable_and_validate() {
    let (_dir, store) = store();
    let rec = recommend(&store, &RecommendOptions::new(everything())).expect("recommend");
    let web = rec
        .workloads
        .iter()
        .find(|w| w.draft.workload.name == "web")
        .expect("web");
    let p = web.draft.policy.as_ref().expect("web draft");
    let sc = p.spec.syscalls.as_ref().expect("syscalls section");
    let rules: Vec<(Vec<String>, Vec<String>)> = sc
        .match_syscalls
        .iter()
        .map(|r| {
            (
                r.syscalls.clone(),
                r.from_source
                    .iter()
                    .filter_map(|s| s.path.clone())
                    .collect(),
            )
        })
        .collect();
    // One rule per caller's set of calls (lower case, no SYS_); the row without a process
    // gets a rule without fromSource; clone3 is not a name the CRD accepts.
    let mut expected = vec![
        (
            vec!["execve".to_string(), "read".to_string()],
            vec!["/bin/sh".to_string()],
        ),
        (
            vec!["openat".to_string(), "read".to_string()],
            vec!["/usr/bin/app".to_string()],
        ),
        (vec!["write".to_string()], vec![]),
    ];
    let mut got = rules.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(web.draft.rules.syscalls, 3);
    assert!(
        web.draft
            .not_expressible
            .iter()
            .any(|n| n.contains("SYS_CLONE3")),
        "{:?}",
        web.draft.not_expressible
    );
    // The draft stays an allow-list for the other kinds; the comment says syscalls only audit.
    assert_eq!(p.spec.action, Some(karmor_analyzer::policy::Action::Allow));
    let yaml = workload_yaml(web, &rec).expect("yaml");
    assert!(yaml.contains(SYSCALL_RULE_NOTE), "{yaml}");
    // /usr/bin/app is allowed to start from the shell, capabilities as today.
    let caps = p.spec.capabilities.as_ref().expect("capabilities");
    assert!(caps
        .match_capabilities
        .iter()
        .any(|c| c.capability == "net_bind_service"));
    let md = markdown(&rec);
    assert!(
        md.contains("audit (alert on, never deny) the system calls openat, read (/usr/bin/app)"),
        "{md}"
    );

    // Valid for our validator and for the CRD schema, and the YAML parses back.
    let reports = validate_documents(&yaml, Path::new("web.yaml"));
    for r in &reports {
        assert_eq!(
            r.outcome,
            Outcome::Valid,
            "{:?}\n{yaml}",
            r.error_messages()
        );
    }
    assert_eq!(validate_policy(p).outcome, Outcome::Valid);
    let crds = crds();
    for doc in serde_yaml::Deserializer::from_str(&yaml) {
        let v = serde_yaml::Value::deserialize(doc).expect("yaml");
        let verdict = crds.check(&v, true).expect("a CRD for the kind");
        assert!(verdict.errors.is_empty(), "{:?}\n{yaml}", verdict.errors);
    }

    // Every draft, the host's (sshd's accept4) included, is valid as well.
    for w in &rec.workloads {
        let yaml = workload_yaml(w, &rec).expect("yaml");
        for r in validate_documents(&yaml, Path::new("draft.yaml")) {
            assert_eq!(
                r.outcome,
                Outcome::Valid,
                "{:?}\n{yaml}",
                r.error_messages()
            );
        }
        for doc in serde_yaml::Deserializer::from_str(&yaml) {
            let v = serde_yaml::Value::deserialize(doc).expect("yaml");
            let verdict = crds.check(&v, true).expect("a CRD for the kind");
            assert!(verdict.errors.is_empty(), "{:?}\n{yaml}", verdict.errors);
        }
    }
    let host = rec
        .workloads
        .iter()
        .find(|w| w.draft.workload.is_host())
        .and_then(|w| w.draft.policy.as_ref())
        .expect("host draft");
    assert_eq!(
        host.spec
            .syscalls
            .as_ref()
            .expect("host syscalls")
            .match_syscalls[0]
            .syscalls,
        ["accept4"]
    );

    // --syscall-rules none: no syscalls section.
    let mut opts = RecommendOptions::new(everything());
    opts.syscall_rules = false;
    let rec = recommend(&store, &opts).expect("recommend");
    let web = rec
        .workloads
        .iter()
        .find(|w| w.draft.workload.name == "web")
        .expect("web");
    assert!(web.draft.policy.as_ref().unwrap().spec.syscalls.is_none());
}

#[test]
fn a_draft_simulates_clean_on_its_own_data_and_audits_each_call_by_its_rule() {
    let (_dir, store) = store();
    // Everything kept (CAP_SYS_ADMIN is held out as suspicious by default), as the demo's
    // whole-day test drafts.
    let mut opts = RecommendOptions::new(everything());
    opts.include = Include::ALL;
    let rec = recommend(&store, &opts).expect("recommend");
    let policies: Vec<_> = rec
        .workloads
        .iter()
        .filter_map(|w| w.draft.policy.clone())
        .collect();
    let sim = simulate(
        &store,
        &policies,
        &SimOptions {
            include_host: true,
            posture: Postures::all(Posture::Block),
            ..SimOptions::default()
        },
    )
    .expect("simulate");
    let blocked: Vec<_> = sim.blocked().collect();
    assert!(blocked.is_empty(), "{blocked:#?}");
    assert!(sim.not_simulated.is_empty(), "{:?}", sim.not_simulated);
    let calls: Vec<_> = sim
        .entries
        .iter()
        .filter(|e| e.op == Op::Syscall && !e.host)
        .collect();
    assert_eq!(calls.len(), 7, "{calls:#?}");
    for e in calls {
        let rule = e.rule.as_deref().unwrap_or_default();
        match (e.process.as_deref(), e.resource.as_str()) {
            // clone3 has no rule (KubeArmor's rules cannot name it): allowed, not audited.
            (_, "clone3") => assert_eq!(e.decision, Decision::Allowed, "{e:?}"),
            (process, name) => {
                assert_eq!(e.decision, Decision::Audited, "{e:?}");
                assert_eq!(
                    e.policy.as_deref(),
                    Some("shop/karmor-deployment-web"),
                    "{e:?}"
                );
                let p = rec
                    .workloads
                    .iter()
                    .find(|w| w.draft.workload.name == "web")
                    .and_then(|w| w.draft.policy.as_ref())
                    .unwrap();
                let i: usize = rule
                    .strip_prefix("syscalls.matchSyscalls[")
                    .and_then(|r| r.split(']').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{rule}"));
                let r = &p.spec.syscalls.as_ref().unwrap().match_syscalls[i];
                assert!(r.syscalls.iter().any(|s| s == name), "{e:?} by {r:?}");
                let from: Vec<_> = r
                    .from_source
                    .iter()
                    .filter_map(|s| s.path.as_deref())
                    .collect();
                match process {
                    Some(exe) => assert_eq!(from, [exe], "{e:?} by {r:?}"),
                    None => assert!(from.is_empty(), "{e:?} by {r:?}"),
                }
            }
        }
    }
}

#[test]
fn seccomp_drafts_allow_exactly_what_was_recorded() {
    let (_dir, store) = store();
    let drafts = seccomp_drafts(&store, &everything(), &SeccompOptions::default()).expect("drafts");
    let names: Vec<String> = drafts.iter().map(|d| d.workload.to_string()).collect();
    assert_eq!(
        names,
        ["shop/Deployment/db", "shop/Deployment/web", "node/node-a"]
    );
    let db = &drafts[0];
    assert!(db.oci_profile().is_none() && db.spo_yaml().is_none());
    assert!(db
        .skipped
        .as_deref()
        .unwrap()
        .contains("no system calls recorded"));
    let host = &drafts[2];
    assert!(host.skipped.as_deref().unwrap().contains("host"));

    let web = &drafts[1];
    assert!(web.warnings.is_empty(), "{:?}", web.warnings);
    let observed: BTreeSet<&str> = web.observed.keys().map(String::as_str).collect();
    assert_eq!(
        observed,
        BTreeSet::from(["clone3", "execve", "openat", "read", "write"])
    );
    assert_eq!(web.observed["read"], 515);
    let json = web.oci_profile().expect("profile");
    let allowed: BTreeSet<String> = json["syscalls"][0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let mut expected: BTreeSet<String> = observed.iter().map(|s| s.to_string()).collect();
    expected.extend(RUNTIME_SYSCALLS.iter().map(|s| s.to_string()));
    assert_eq!(allowed, expected);
    // Runtime calls already recorded are not listed as added.
    assert!(!web.added.contains(&"execve".to_string()));
    assert!(web.added.contains(&"capset".to_string()));

    let exact = seccomp_drafts(
        &store,
        &everything(),
        &SeccompOptions {
            runtime_set: false,
            architectures: vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_AARCH64".into()],
        },
    )
    .expect("drafts");
    let json = exact[1].oci_profile().unwrap();
    assert_eq!(
        json["syscalls"][0]["names"],
        serde_json::json!(["clone3", "execve", "openat", "read", "write"])
    );
    assert_eq!(
        json["architectures"],
        serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"])
    );
    let spo: serde_yaml::Value = serde_yaml::from_str(&exact[1].spo_yaml().unwrap()).unwrap();
    assert_eq!(spo["kind"].as_str(), Some("SeccompProfile"));
    assert_eq!(
        spo["metadata"]["name"].as_str(),
        Some("karmor-deployment-web")
    );
    assert_eq!(
        serde_json::to_value(&spo["spec"]).unwrap(),
        json,
        "the resource's spec is the JSON profile"
    );
}

#[test]
fn a_profile_from_kubearmor_telemetry_alone_is_flagged_as_incomplete() {
    // KubeArmor reports a system call only when a syscalls rule matches it: an import holds
    // a few of the workload's calls, never its map.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut e = syscall(Some("/bin/rmdir"), "SYS_RMDIR", 2);
    e.source = Source::Import;
    write_bundle(
        dir.path(),
        vec![e],
        &BundleOptions {
            producer: "syscalls-test".into(),
            ..BundleOptions::default()
        },
    )
    .expect("write bundle");
    let store = Store::in_memory().expect("store");
    store.merge_bundle(dir.path()).expect("merge");
    let drafts = seccomp_drafts(&store, &everything(), &SeccompOptions::default()).expect("drafts");
    assert_eq!(drafts.len(), 1);
    let d = &drafts[0];
    assert!(d.has_profile());
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(d.warnings[0].contains("KubeArmor telemetry only"));
    let yaml = d.spo_yaml().expect("yaml");
    assert!(
        yaml.contains("# WARNING: these system calls come from KubeArmor telemetry only"),
        "{yaml}"
    );
}
