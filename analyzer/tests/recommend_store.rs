//! `recommend` on small bundles written with the contract writers and merged into a real
//! DuckDB store: selectors, read-only and written files, time windows, filters, hostile
//! names, `--max-rules`, and the golden draft of the demo's MySQL.

use std::path::Path;

use karmor_analyzer::filter;
use karmor_analyzer::policy::{validate_policy, Outcome, Policy};
use karmor_analyzer::recommend::report::workload_yaml;
use karmor_analyzer::recommend::{
    recommend, RecommendOptions, Recommendation, Scope, WorkloadSelect,
};
use karmor_analyzer::Store;
use karmor_contract::bundle::{write_bundle, BundleOptions};
use karmor_contract::{Event, Op, Source};

const T0: i64 = 1_795_161_600 * 1_000_000_000;
const MIN: i64 = 60 * 1_000_000_000;

struct Row<'a> {
    pod: &'a str,
    workload: &'a str,
    kind: &'a str,
    labels: &'a [&'a str],
    minute: i64,
    op: Op,
    process: &'a str,
    parent: &'a str,
    path: Option<&'a str>,
    access: Option<&'a str>,
    proto: Option<&'a str>,
}

fn ev(r: &Row) -> Event {
    Event {
        ts_first: T0 + r.minute * MIN,
        ts_last: T0 + r.minute * MIN,
        count: 1,
        node: "n1".into(),
        namespace: Some("shop".into()),
        pod: Some(r.pod.into()),
        container: Some("c".into()),
        container_id: Some(format!("cid-{}", r.pod)),
        workload_kind: Some(r.kind.into()),
        workload: Some(r.workload.into()),
        labels: r.labels.iter().map(|s| s.to_string()).collect(),
        pid: Some(7),
        ppid: Some(1),
        process: Some(r.process.into()),
        parent_process: Some(r.parent.into()),
        op: r.op,
        source: Source::Ebpf,
        path: r.path.map(String::from),
        access: r.access.map(String::from),
        proto: r.proto.map(String::from),
        direction: r.proto.map(|_| "connect".into()),
        result: Some("Passed".into()),
        ..Event::default()
    }
}

fn store(rows: &[Row]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    write_bundle(
        &dir.path().join("b"),
        rows.iter().map(ev).collect(),
        &BundleOptions {
            producer: "test".into(),
            ..BundleOptions::default()
        },
    )
    .unwrap();
    let s = Store::in_memory().unwrap();
    let r = s.merge_bundle(&dir.path().join("b")).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    (dir, s)
}

fn shop() -> Scope {
    Scope {
        workloads: Some(WorkloadSelect {
            namespace: Some("shop".into()),
            ..WorkloadSelect::default()
        }),
        ..Scope::default()
    }
}

fn policy<'a>(rec: &'a Recommendation, name: &str) -> &'a Policy {
    rec.workloads
        .iter()
        .find(|w| w.draft.workload.name == name)
        .and_then(|w| w.draft.policy.as_ref())
        .unwrap_or_else(|| panic!("no draft for {name}"))
}

const WEB0: &[&str] = &["app=web", "pod-template-hash=aaa", "version=1"];
const WEB1: &[&str] = &["app=web", "pod-template-hash=bbb", "version=2"];
const DB0: &[&str] = &[
    "app=db",
    "controller-revision-hash=db-7f",
    "statefulset.kubernetes.io/pod-name=db-0",
];

fn base() -> Vec<Row<'static>> {
    let r = |pod, workload, kind, labels, minute, op, process, path, access, proto| Row {
        pod,
        workload,
        kind,
        labels,
        minute,
        op,
        process,
        parent: "/bin/init",
        path,
        access,
        proto,
    };
    vec![
        r(
            "web-aaa-1",
            "web",
            "Deployment",
            WEB0,
            0,
            Op::Process,
            "/usr/bin/web",
            None,
            None,
            None,
        ),
        r(
            "web-bbb-2",
            "web",
            "Deployment",
            WEB1,
            1,
            Op::File,
            "/usr/bin/web",
            Some("/etc/web.conf"),
            Some("read"),
            None,
        ),
        r(
            "web-bbb-2",
            "web",
            "Deployment",
            WEB1,
            2,
            Op::File,
            "/usr/bin/web",
            Some("/var/log/web.log"),
            Some("write"),
            None,
        ),
        r(
            "web-aaa-1",
            "web",
            "Deployment",
            WEB0,
            3,
            Op::Network,
            "/usr/bin/web",
            None,
            None,
            Some("tcp"),
        ),
        r(
            "web-aaa-1",
            "web",
            "Deployment",
            WEB0,
            90,
            Op::Process,
            "/usr/bin/late",
            None,
            None,
            None,
        ),
        r(
            "db-0",
            "db",
            "StatefulSet",
            DB0,
            0,
            Op::File,
            "/usr/sbin/db",
            Some("/data/x"),
            Some("read"),
            None,
        ),
    ]
}

#[test]
fn replicas_merge_under_a_stable_selector_with_read_only_where_only_read() {
    let (_d, s) = store(&base());
    let rec = recommend(&s, &RecommendOptions::new(shop())).unwrap();
    let web = policy(&rec, "web");
    assert_eq!(validate_policy(web).outcome, Outcome::Valid);
    // Labels on every replica, without the per-rollout hash; `version` differs: left out.
    let sel = &web.spec.selector.as_ref().unwrap().match_labels;
    assert_eq!(sel.len(), 1, "{sel:?}");
    assert_eq!(sel["app"], "web");
    let files = &web.spec.file.as_ref().unwrap().match_paths;
    let conf = files.iter().find(|f| f.path == "/etc/web.conf").unwrap();
    let log = files.iter().find(|f| f.path == "/var/log/web.log").unwrap();
    assert!(conf.read_only && !log.read_only);
    assert_eq!(conf.from_source[0].path.as_deref(), Some("/usr/bin/web"));
    let procs = &web.spec.process.as_ref().unwrap().match_paths;
    assert!(procs
        .iter()
        .all(|p| p.from_source[0].path.as_deref() == Some("/bin/init")));
    let net = &web.spec.network.as_ref().unwrap().match_protocols;
    assert_eq!(net[0].protocol, "tcp");
    // StatefulSet: neither the revision hash nor the pod name is in the selector.
    let db = policy(&rec, "db");
    let sel = &db.spec.selector.as_ref().unwrap().match_labels;
    assert_eq!(sel.keys().collect::<Vec<_>>(), ["app"]);
    assert_eq!(db.metadata.name, "karmor-statefulset-db");
}

#[test]
fn windows_filters_and_names_are_parameters() {
    let (_d, s) = store(&base());
    // Until minute 60: the late process is not learned.
    let mut scope = shop();
    scope.until_ns = Some(T0 + 60 * MIN);
    let rec = recommend(&s, &RecommendOptions::new(scope)).unwrap();
    let procs: Vec<_> = policy(&rec, "web")
        .spec
        .process
        .as_ref()
        .unwrap()
        .match_paths
        .iter()
        .filter_map(|p| p.path.clone())
        .collect();
    assert_eq!(procs, ["/usr/bin/web"]);
    // Since minute 60: only the late process.
    let mut scope = shop();
    scope.since_ns = Some(T0 + 60 * MIN);
    let rec = recommend(&s, &RecommendOptions::new(scope)).unwrap();
    assert_eq!(rec.workloads.len(), 1);
    // A -f filter narrows the rows.
    let mut scope = shop();
    scope.filter = Some(filter::compile("op!=network").unwrap());
    let rec = recommend(&s, &RecommendOptions::new(scope)).unwrap();
    assert!(policy(&rec, "web").spec.network.is_none());
    // Hostile names match nothing and break nothing.
    for evil in ["web' OR '1'='1", "shop; DROP TABLE events; --", "%", "*"] {
        let scope = Scope {
            workloads: Some(WorkloadSelect {
                namespace: Some(evil.into()),
                name: Some(evil.into()),
                ..WorkloadSelect::default()
            }),
            ..Scope::default()
        };
        let rec = recommend(&s, &RecommendOptions::new(scope)).unwrap();
        assert!(rec.workloads.is_empty(), "{evil}");
    }
    assert_eq!(s.health().unwrap().rows, 6);
}

#[test]
fn max_rules_bounds_the_draft_and_explains_the_collapse() {
    let mut rows = Vec::new();
    let paths: Vec<String> = (0..4)
        .flat_map(|d| (0..4).map(move |f| format!("/srv/d{d}/f{f}")))
        .collect();
    for (i, p) in paths.iter().enumerate() {
        rows.push(Row {
            pod: "web-aaa-1",
            workload: "web",
            kind: "Deployment",
            labels: WEB0,
            minute: i as i64,
            op: Op::File,
            process: "/usr/bin/web",
            parent: "/bin/init",
            path: Some(Box::leak(p.clone().into_boxed_str())),
            access: Some("read"),
            proto: None,
        });
    }
    let (_d, s) = store(&rows);
    let rec = recommend(&s, &RecommendOptions::new(shop())).unwrap();
    assert_eq!(
        rec.workloads[0].draft.rules.file, 16,
        "below the threshold: exact paths"
    );
    let mut opts = RecommendOptions::new(shop());
    opts.max_rules = Some(3);
    let rec = recommend(&s, &opts).unwrap();
    let d = &rec.workloads[0].draft;
    assert!(d.rules.total() <= 3, "{:?}", d.rules);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    // /usr/bin/web was never seen starting: inferred, with a comment.
    assert_eq!(d.generalisations[0].list, "matchPaths");
    let g = d
        .generalisations
        .iter()
        .find(|g| g.section == "file")
        .expect("a collapsed directory");
    assert!(g.why.iter().any(|w| w.contains("--max-rules 3")), "{g:?}");
    assert_eq!(g.absorbed.len(), 16);
    assert_eq!(
        validate_policy(d.policy.as_ref().unwrap()).outcome,
        Outcome::Valid
    );
    // Every absorbed path is still allowed by the collapsed rule.
    let yaml = workload_yaml(&rec.workloads[0], &rec).unwrap();
    assert!(yaml.contains("--max-rules 3"), "{yaml}");
}

/// The demo's MySQL, learned before the attack with default flags (its probe and start-up
/// helpers kept, commented as such), as committed in
/// `tests/golden/recommend-mysql.yaml` (`KARMOR_BLESS=1` rewrites it after a deliberate change).
#[test]
fn golden_mysql_draft_of_the_demo() {
    let s = Store::in_memory().unwrap();
    s.merge_bundle(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/demo"))
        .unwrap();
    let opts = RecommendOptions::new(Scope {
        workloads: Some(WorkloadSelect {
            namespace: Some("wordpress-mysql".into()),
            name: Some("mysql".into()),
            ..WorkloadSelect::default()
        }),
        until_ns: Some(karmor_testdata::demo::SUSPICIOUS_AFTER_NS),
        ..Scope::default()
    });
    let rec = recommend(&s, &opts).unwrap();
    assert_eq!(rec.workloads.len(), 1);
    let yaml = workload_yaml(&rec.workloads[0], &rec).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/recommend-mysql.yaml");
    if std::env::var_os("KARMOR_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &yaml).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with KARMOR_BLESS=1 to create it)",
            golden.display()
        )
    });
    assert_eq!(
        yaml, want,
        "the draft changed; review and re-bless with KARMOR_BLESS=1"
    );
}

/// Issue 16, item 2: with the /tmp threshold of 1, a shell that wrote one log file under
/// `/tmp/app/logs/` must not receive a writable `/tmp/app/` because other processes read
/// `/tmp/app/www/…`. Directories collapse per rule (source process, access kind), counting only
/// that rule's paths, and a comment lists exactly what that rule absorbed.
#[test]
fn directories_collapse_per_rule_not_over_other_processes_paths() {
    let r = |minute, process: &'static str, path: &'static str, access: &'static str| Row {
        pod: "web-1",
        workload: "web",
        kind: "Deployment",
        labels: WEB0,
        minute,
        op: Op::File,
        process,
        parent: "/usr/bin/containerd-shim-runc-v2",
        path: Some(path),
        access: Some(access),
        proto: None,
    };
    let rows = vec![
        r(1, "/usr/sbin/nginx", "/tmp/app/www/index.html", "read"),
        r(2, "/usr/sbin/nginx", "/tmp/app/www/style.css", "read"),
        r(3, "/usr/sbin/nginx", "/tmp/app/www/", "read"),
        r(4, "/bin/sh", "/tmp/app/logs/run.log", "write"),
    ];
    let (_d, s) = store(&rows);
    let rec = recommend(&s, &RecommendOptions::new(shop())).unwrap();
    let d = &rec.workloads[0].draft;
    let p = d.policy.as_ref().unwrap();
    let file = p.spec.file.as_ref().unwrap();
    // Every writable rule of /bin/sh covers its one write and nothing that only nginx read.
    let sh_rules: Vec<(String, bool, bool)> = file
        .match_directories
        .iter()
        .filter(|r| {
            r.from_source
                .iter()
                .any(|s| s.path.as_deref() == Some("/bin/sh"))
        })
        .map(|r| (r.dir.clone(), r.recursive, r.read_only))
        .chain(
            file.match_paths
                .iter()
                .filter(|r| {
                    r.from_source
                        .iter()
                        .any(|s| s.path.as_deref() == Some("/bin/sh"))
                })
                .map(|r| (r.path.clone(), false, r.read_only)),
        )
        .collect();
    assert!(!sh_rules.is_empty(), "{file:?}");
    for (target, _, read_only) in &sh_rules {
        assert!(!read_only, "the shell wrote: {sh_rules:?}");
        assert!(
            "/tmp/app/logs/run.log".starts_with(target.as_str()),
            "{target} does not cover the write"
        );
        for other in ["/tmp/app/www/index.html", "/tmp/app/www/style.css"] {
            assert!(
                !other.starts_with(target.as_str()),
                "the shell's writable rule {target} covers {other}, which only nginx read: {sh_rules:?}"
            );
        }
    }
    // nginx's rule is read-only, and its collapse counted only nginx's paths.
    for g in &d.generalisations {
        if g.section != "file" {
            continue;
        }
        let rule_sources: Vec<String> = if g.list == "matchDirectories" {
            file.match_directories[g.index]
                .from_source
                .iter()
                .filter_map(|s| s.path.clone())
                .collect()
        } else {
            Vec::new()
        };
        // Exactly what that rule's own processes did: no path absorbed that its sources
        // never touched.
        for a in &g.absorbed {
            let touched_by: Vec<&str> = rows
                .iter()
                .filter(|row| row.path.map(|p| p.trim_end_matches('/')) == Some(a.as_str()))
                .map(|row| row.process)
                .collect();
            assert!(
                rule_sources
                    .iter()
                    .any(|s| touched_by.contains(&s.as_str())),
                "{} absorbed {a}, touched only by {touched_by:?}, not by {rule_sources:?}",
                g.target
            );
        }
        if rule_sources.iter().any(|s| s == "/usr/sbin/nginx") {
            assert!(g.read_only, "{g:?}");
        }
    }
    let yaml = workload_yaml(&rec.workloads[0], &rec).unwrap();
    assert!(
        !yaml.contains("absorbed: /tmp/app/logs/run.log, /tmp/app/www"),
        "{yaml}"
    );
}
