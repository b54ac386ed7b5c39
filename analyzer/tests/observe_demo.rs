//! `observe` on the committed demo bundle, checked against an independent computation over
//! the same rows read straight from the Parquet files (no DuckDB, no filter compiler).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use karmor_analyzer::filter;
use karmor_analyzer::observe::{
    describe, summarize, NamespaceScope, ObserveQuery, ResourceKind, Summary,
};
use karmor_analyzer::Store;
use karmor_contract::bundle::read_manifest;
use karmor_contract::segment::read_segment;
use karmor_contract::{Event, Op};

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/demo")
}

fn demo_events() -> Vec<Event> {
    let root = demo();
    let m = read_manifest(&root).expect("demo manifest");
    m.files
        .iter()
        .flat_map(|f| read_segment(&root.join(&f.path)).expect("segment").1)
        .collect()
}

fn store() -> Store {
    let s = Store::in_memory().unwrap();
    let r = s.merge_bundle(&demo()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    s
}

type Key = (String, String, String);

/// (pod, a, b) → total count, per operation, from a summary.
fn from_summary(s: &Summary) -> BTreeMap<(Op, Key), u64> {
    let mut m = BTreeMap::new();
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    for r in s.processes.iter().flatten() {
        m.insert(
            (
                Op::Process,
                (r.resource.clone(), o(&r.parent), o(&r.process)),
            ),
            r.seen.count,
        );
    }
    for r in s.files.iter().flatten() {
        m.insert(
            (Op::File, (r.resource.clone(), o(&r.process), o(&r.path))),
            r.seen.count,
        );
    }
    for r in s.network.iter().flatten() {
        let key = format!(
            "{}|{}|{}|{:?}",
            o(&r.direction),
            o(&r.proto),
            o(&r.peer),
            r.port
        );
        m.insert(
            (Op::Network, (r.resource.clone(), o(&r.process), key)),
            r.seen.count,
        );
    }
    m
}

/// The same grouping computed in Rust over rows that satisfy `keep`.
fn expected(events: &[Event], keep: impl Fn(&Event) -> bool) -> BTreeMap<(Op, Key), u64> {
    let mut m = BTreeMap::new();
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    for e in events.iter().filter(|e| !e.host && keep(e)) {
        let pod = e.pod.clone().unwrap_or_else(|| "(none)".into());
        let key = match e.op {
            Op::Process => (pod, o(&e.parent_process), o(&e.process)),
            Op::File => (pod, o(&e.process), o(&e.path)),
            Op::Network => {
                let port = if matches!(e.direction.as_deref(), Some("bind" | "listen" | "accept")) {
                    e.local_port
                } else {
                    e.remote_port
                };
                let peer = e.remote_name.clone().or_else(|| e.remote_addr.clone());
                (
                    pod,
                    o(&e.process),
                    format!(
                        "{}|{}|{}|{:?}",
                        o(&e.direction),
                        o(&e.proto),
                        o(&peer),
                        port
                    ),
                )
            }
            _ => continue,
        };
        *m.entry((e.op, key)).or_insert(0) += e.count;
    }
    m
}

fn run(store: &Store, filter_text: Option<&str>) -> BTreeMap<(Op, Key), u64> {
    let mut q = ObserveQuery::new(ResourceKind::Pod);
    q.namespace = NamespaceScope::All;
    q.filter = filter_text.map(|f| filter::compile(f).expect("filter compiles"));
    from_summary(&summarize(store, &q).unwrap())
}

fn glob(pattern: &str, text: &str) -> bool {
    // Independent of the SQL translation: a small recursive matcher for * and ?.
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

fn is(v: &Option<String>, pattern: &str) -> bool {
    v.as_deref().is_some_and(|s| glob(pattern, s))
}

#[test]
fn unfiltered_summary_equals_independent_grouping() {
    let events = demo_events();
    let store = store();
    let got = run(&store, None);
    assert!(got.len() > 50, "demo has a rich summary: {}", got.len());
    assert_eq!(got, expected(&events, |_| true));
}

/// (pod, process, path) → (mode, accesses) of a summary's file rows.
fn file_modes(s: &Summary) -> BTreeMap<Key, (String, String)> {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    s.files
        .iter()
        .flatten()
        .map(|r| {
            let key = (r.resource.clone(), o(&r.process), o(&r.path));
            (key, (r.mode.clone(), r.accesses.clone()))
        })
        .collect()
}

/// The same, computed in Rust: every distinct access sorted and comma-joined; `write` when
/// one of them changes the file.
fn expected_file_modes(events: &[Event]) -> BTreeMap<Key, (String, String)> {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut seen: BTreeMap<Key, std::collections::BTreeSet<String>> = BTreeMap::new();
    for e in events.iter().filter(|e| !e.host && e.op == Op::File) {
        let pod = e.pod.clone().unwrap_or_else(|| "(none)".into());
        let set = seen.entry((pod, o(&e.process), o(&e.path))).or_default();
        set.extend(e.access.clone());
    }
    const WRITES: [&str; 6] = ["write", "create", "delete", "rename", "chmod", "chown"];
    seen.into_iter()
        .map(|(key, set)| {
            let writes = set.iter().any(|a| WRITES.contains(&a.as_str()));
            let mode = if writes { "write" } else { "read" };
            let list: Vec<String> = set.into_iter().collect();
            (key, (mode.to_string(), list.join(",")))
        })
        .collect()
}

#[test]
fn file_rows_list_every_distinct_access_and_say_written_when_one_writes() {
    let events = demo_events();
    let store = store();
    let mut q = ObserveQuery::new(ResourceKind::Pod);
    q.namespace = NamespaceScope::All;
    let got = file_modes(&summarize(&store, &q).unwrap());
    let want = expected_file_modes(&events);
    assert!(
        want.values().any(|(_, a)| a.contains(',')),
        "the demo has files with several accesses"
    );
    assert!(want.values().any(|(m, _)| m == "write"));
    assert_eq!(got, want);

    // Accesses outside the collector's vocabulary (other producers' bundles) are listed too,
    // in order with the known ones, and a row without any access reads as "".
    let mut odd = events
        .iter()
        .find(|e| !e.host && e.op == Op::File)
        .expect("a file event")
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for (path, access) in [
        ("/data/a", Some("read")),
        ("/data/a", Some("truncate")),
        ("/data/a", Some("append")),
        ("/data/a", Some("exec")),
        // Twice in one row: listed once.
        ("/data/a", Some("truncate")),
        ("/data/b", Some("append")),
        ("/data/c", None),
        ("/data/c", Some("chmod")),
        ("/data/d", None),
    ] {
        odd.path = Some(path.into());
        odd.access = access.map(String::from);
        odd.ts_first += 1;
        rows.push(odd.clone());
    }
    let opts = karmor_contract::bundle::BundleOptions {
        producer: "test".into(),
        ..Default::default()
    };
    karmor_contract::bundle::write_bundle(dir.path(), rows.clone(), &opts).unwrap();
    let store = Store::in_memory().unwrap();
    store.merge_bundle(dir.path()).unwrap();
    let got = file_modes(&summarize(&store, &q).unwrap());
    assert_eq!(got, expected_file_modes(&rows));
    let pod = odd.pod.clone().unwrap_or_default();
    let process = odd.process.clone().unwrap_or_default();
    let at = |path: &str| got[&(pod.clone(), process.clone(), path.to_string())].clone();
    assert_eq!(
        at("/data/a"),
        ("read".into(), "append,exec,read,truncate".into())
    );
    assert_eq!(at("/data/b"), ("read".into(), "append".into()));
    assert_eq!(at("/data/c"), ("write".into(), "chmod".into()));
    assert_eq!(at("/data/d"), ("read".into(), "".into()));
}

#[test]
fn filters_select_exactly_the_rows_an_independent_computation_selects() {
    let events = demo_events();
    let store = store();
    type Pred = Box<dyn Fn(&Event) -> bool>;
    let cases: Vec<(&str, Pred)> = vec![
        (
            "namespace=wordpress-mysql;process=/bin/*",
            Box::new(|e| is(&e.namespace, "wordpress-mysql") && is(&e.process, "/bin/*")),
        ),
        (
            "user=root||(uid=33&&path=/var/www/*)",
            Box::new(|e| e.uid == Some(0) || (e.uid == Some(33) && is(&e.path, "/var/www/*"))),
        ),
        (
            "(proto=tcp||proto=udp)&&port=3306",
            Box::new(|e| {
                (is(&e.proto, "tcp") || is(&e.proto, "udp"))
                    && (e.remote_port == Some(3306) || e.local_port == Some(3306))
            }),
        ),
        (
            "path=/etc/*;access!=read",
            Box::new(|e| is(&e.path, "/etc/*") && !is(&e.access, "read")),
        ),
        (
            "parent=*containerd-shim*",
            Box::new(|e| is(&e.parent_process, "*containerd-shim*")),
        ),
        (
            "remote=*.svc.cluster.local||remote=203.0.113.?6",
            Box::new(|e| {
                is(&e.remote_addr, "*.svc.cluster.local")
                    || is(&e.remote_name, "*.svc.cluster.local")
                    || is(&e.remote_addr, "203.0.113.?6")
                    || is(&e.remote_name, "203.0.113.?6")
            }),
        ),
        (
            "label=app=mysql;result=Passed",
            Box::new(|e| e.labels.iter().any(|l| l == "app=mysql") && is(&e.result, "Passed")),
        ),
        (
            "node=node-b&&(pod=wordpress-*||container=mysql)&&path!=*.php",
            Box::new(|e| {
                is(&e.node.clone().into(), "node-b")
                    && (is(&e.pod, "wordpress-*") || is(&e.container, "mysql"))
                    && !is(&e.path, "*.php")
            }),
        ),
    ];
    for (text, pred) in cases {
        let want = expected(&events, pred);
        assert!(
            !want.is_empty(),
            "case {text:?} should match something in the demo"
        );
        assert_eq!(run(&store, Some(text)), want, "filter {text:?}");
    }
}

#[test]
fn namespace_and_name_scoping() {
    let events = demo_events();
    let store = store();
    let mut q = ObserveQuery::new(ResourceKind::Deployment);
    q.namespace = NamespaceScope::One("wordpress-mysql".into());
    q.name = Some("mysql".into());
    q.operations = vec![Op::Process];
    let s = summarize(&store, &q).unwrap();
    let got: u64 = s.processes.unwrap().iter().map(|r| r.seen.count).sum();
    let want: u64 = events
        .iter()
        .filter(|e| {
            e.op == Op::Process
                && e.namespace.as_deref() == Some("wordpress-mysql")
                && e.workload.as_deref() == Some("mysql")
                && e.workload_kind.as_deref() == Some("Deployment")
        })
        .map(|e| e.count)
        .sum();
    assert!(want > 0);
    assert_eq!(got, want);
}

#[test]
fn describe_headers_list_pods_containers_and_nodes() {
    let store = store();
    let mut q = ObserveQuery::new(ResourceKind::Deployment);
    q.namespace = NamespaceScope::One("wordpress-mysql".into());
    let headers = describe(&store, &q).unwrap();
    let wp = headers
        .iter()
        .find(|h| h.name == "Deployment/wordpress")
        .expect("wordpress deployment");
    assert_eq!(wp.pods.len(), 2, "{wp:?}");
    assert_eq!(wp.nodes, vec!["node-a".to_string(), "node-b".to_string()]);
    assert!(wp.labels.contains(&"app=wordpress".to_string()));
    assert!(wp.containers.iter().any(|c| c.starts_with("wordpress (")));
}
