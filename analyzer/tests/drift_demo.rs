//! Drift on the committed demo bundle (testdata/demo) and on small generated bundles: learning
//! from the morning and diffing the afternoon lists exactly the demo's attack behaviours as
//! new, from data and from the morning's drafts as a policy; stability verdicts for data that
//! begins after start-up, for temporary files that keep changing names, and for data with
//! drops, where `recommend --action Block` refuses without `--force`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use karmor_analyzer::drift::{
    self, items, Category, ChangeKind, DiffOptions, DiffReport, StabilityOptions, Verdict,
};
use karmor_analyzer::policy::Action;
use karmor_analyzer::recommend::{
    recommend, HostSelect, Library, RecommendOptions, Scope, WorkloadId, WorkloadSelect,
};
use karmor_analyzer::simulate::{simulate, Posture, Postures, SimOptions};
use karmor_analyzer::Store;
use karmor_contract::bundle::{write_bundle, BundleOptions};
use karmor_contract::{Event, Op, Source};
use karmor_testdata::demo;

const SEC: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SEC;
const SHIM: &str = "/usr/bin/containerd-shim-runc-v2";

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/demo")
}

fn demo_store() -> Store {
    let s = Store::in_memory().unwrap();
    let r = s.merge_bundle(&demo_dir()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    s
}

fn window(since: Option<i64>, until: Option<i64>) -> Scope {
    Scope {
        workloads: Some(WorkloadSelect::default()),
        hosts: Some(HostSelect::default()),
        since_ns: since,
        until_ns: until,
        filter: None,
    }
}

/// (workload, category, item) of every new change.
fn new_set(r: &DiffReport) -> BTreeSet<(String, Category, String)> {
    r.new_items()
        .map(|c| (c.workload.to_string(), c.category, c.item.clone()))
        .collect()
}

/// The demo's attack rows, keyed as drift keys them.
fn attack_set() -> BTreeSet<(String, Category, String)> {
    demo::events()
        .into_iter()
        .filter(demo::is_suspicious)
        .map(|e| {
            let id = format!(
                "{}/Deployment/{}",
                e.namespace.clone().unwrap_or_default(),
                e.workload.clone().unwrap_or_default()
            );
            match e.op {
                Op::Process => (id, Category::Executables, e.process.unwrap_or_default()),
                Op::File => (id, Category::Files, e.path.unwrap_or_default()),
                Op::Network => (
                    id,
                    Category::Network,
                    format!(
                        "{} {} {}:{}",
                        e.proto.unwrap_or_default(),
                        e.direction.unwrap_or_default(),
                        e.remote_addr.unwrap_or_default(),
                        e.remote_port.unwrap_or_default()
                    ),
                ),
                op => panic!("unexpected attack op {op:?}"),
            }
        })
        .collect()
}

#[test]
fn the_afternoon_against_the_morning_is_exactly_the_attack() {
    let s = demo_store();
    let noon = demo::SUSPICIOUS_AFTER_NS;
    let morning = items::read(&s, &window(None, Some(noon))).unwrap();
    let afternoon = items::read(&s, &window(Some(noon), None)).unwrap();
    // One pass over both windows reads the same items as two queries.
    let pair = items::read_pair(
        &s,
        &window(None, None),
        (None, Some(noon)),
        (Some(noon), None),
    )
    .unwrap();
    assert!(pair.0 == morning && pair.1 == afternoon);
    let r = drift::diff(&morning, &afternoon, &DiffOptions::default());
    let expected = attack_set();
    assert_eq!(expected.len(), 6, "{expected:?}");
    assert_eq!(new_set(&r), expected);
    assert!(r.has_new());
    // Each new item names who introduced it and when.
    let curl = r
        .new_items()
        .find(|c| c.item == "/usr/bin/curl")
        .unwrap_or_else(|| panic!("{:?}", new_set(&r)));
    assert_eq!(curl.introduced_by, "/bin/sh");
    assert!(
        curl.first_seen.starts_with("2026-11-20T13:07:5"),
        "{curl:?}"
    );
    let token = r
        .new_items()
        .find(|c| c.category == Category::Files && c.item.ends_with("/token"))
        .unwrap_or_else(|| panic!("{:?}", new_set(&r)));
    assert_eq!(token.introduced_by, "/usr/local/bin/php");
    // The afternoon's new sessions, uploads and temporary files are generalised away; the
    // morning's ssh sessions and exec session are gone.
    assert!(r
        .changes
        .iter()
        .any(|c| c.kind == ChangeKind::Gone && c.item == "/usr/sbin/sshd"));
}

#[test]
fn the_morning_drafts_as_a_policy_give_the_same_new_set() {
    let s = demo_store();
    let noon = demo::SUSPICIOUS_AFTER_NS;
    let rec = recommend(&s, &RecommendOptions::new(window(None, Some(noon)))).unwrap();
    let policies: Vec<_> = rec
        .workloads
        .iter()
        .filter_map(|w| w.draft.policy.clone())
        .collect();
    assert!(!policies.is_empty());
    let sim = simulate(
        &s,
        &policies,
        &SimOptions {
            include_host: true,
            since_ns: Some(noon),
            posture: Postures::all(Posture::Block),
            ..SimOptions::default()
        },
    )
    .unwrap();
    let r = drift::policy_baseline(&sim, &DiffOptions::default());
    assert_eq!(new_set(&r), attack_set());
}

#[test]
fn data_that_begins_after_start_up_is_partial() {
    let s = demo_store();
    let whole = drift::stability(&s, &window(None, None), &StabilityOptions::default()).unwrap();
    let late = drift::stability(
        &s,
        &window(Some(demo::at(9, 0, 0, 0)), None),
        &StabilityOptions::default(),
    )
    .unwrap();
    let find = |v: &[drift::Stability], name: &str| {
        v.iter()
            .find(|s| s.workload.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {v:?}"))
    };
    for name in ["wordpress", "mysql"] {
        let w = find(&whole, name);
        assert_eq!(w.startup_seen, Some(true), "{w:?}");
        // Six hours of data cannot pass a 6 h quiet period.
        assert_eq!(w.verdict, Verdict::Learning, "{w:?}");
        let l = find(&late, name);
        assert_eq!(l.startup_seen, Some(false), "{l:?}");
        assert_eq!(l.verdict, Verdict::Partial, "{l:?}");
        assert!(l.reasons[0].contains("start-up not seen"), "{l:?}");
    }
    // kube-proxy started before the demo's data.
    assert_eq!(find(&whole, "kube-proxy").verdict, Verdict::Partial);
    // Hosts have no start-up to see.
    assert_eq!(find(&whole, "node-a").startup_seen, None);
}

#[test]
fn a_store_file_answers_from_its_digests_as_the_rows_do() {
    // A store file answers coverage's items and start-up from its per-file digests, and a
    // diff of two windows from the digests of the files each takes whole plus the rows of
    // the files the boundary cuts; an in-memory store reads every row.
    let dir = tempfile::tempdir().unwrap();
    let file = Store::open(&dir.path().join("store.duckdb")).unwrap();
    let r = file.merge_bundle(&demo_dir()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let rows = demo_store();
    let all = window(None, None);
    let opts = StabilityOptions::default();
    let startup = drift::stability::startup_seen(&file, &all).unwrap();
    assert_eq!(
        startup,
        drift::stability::startup_seen(&rows, &all).unwrap()
    );
    // Both answers occur: the demo's apps start in the data, kube-proxy before it.
    assert!(
        startup.values().any(|&s| s) && startup.values().any(|&s| !s),
        "{startup:?}"
    );
    let coverage = drift::stability(&file, &all, &opts).unwrap();
    assert_eq!(coverage, drift::stability(&rows, &all, &opts).unwrap());
    assert!(coverage.len() >= 4, "{coverage:?}");
    // One workload, and the hosts alone.
    for scope in [
        Scope {
            workloads: Some(WorkloadSelect {
                namespace: None,
                kind: None,
                name: Some("wordpress".into()),
            }),
            ..Scope::default()
        },
        Scope {
            hosts: Some(HostSelect::default()),
            ..Scope::default()
        },
    ] {
        assert_eq!(
            drift::stability::startup_seen(&file, &scope).unwrap(),
            drift::stability::startup_seen(&rows, &scope).unwrap()
        );
        assert_eq!(
            drift::stability(&file, &scope, &opts).unwrap(),
            drift::stability(&rows, &scope, &opts).unwrap()
        );
    }
    // Windows on the hour (files taken whole) and inside one (files cut).
    for noon in [demo::at(12, 0, 0, 0), demo::SUSPICIOUS_AFTER_NS] {
        let (a, b) = ((None, Some(noon)), (Some(noon), None));
        let from_file = items::read_pair(&file, &all, a, b).unwrap();
        let from_rows = items::read_pair(&rows, &all, a, b).unwrap();
        assert!(from_file == from_rows, "windows split at {noon}");
        let d = DiffOptions::default();
        assert_eq!(
            drift::diff(&from_file.0, &from_file.1, &d),
            drift::diff(&from_rows.0, &from_rows.1, &d)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Generated bundles

const T0: i64 = 1_795_161_600 * SEC;

fn row(workload: &str, pid: i32, op: Op, t: i64) -> Event {
    Event {
        ts_first: t,
        ts_last: t + SEC,
        count: 3,
        cluster: Some("drift".into()),
        node: "node-1".into(),
        namespace: Some("ns".into()),
        pod: Some(format!("{workload}-5d8f-abcde")),
        container: Some("main".into()),
        container_id: Some(format!("cid-{workload}")),
        workload_kind: Some("Deployment".into()),
        workload: Some(workload.into()),
        labels: vec![format!("app={workload}")],
        source: Source::Ebpf,
        pid: Some(pid),
        ppid: Some(1),
        uid: Some(1000),
        process: Some("/app/worker".into()),
        parent_process: Some(SHIM.into()),
        op,
        result: Some("Passed".into()),
        ..Event::default()
    }
}

/// Two workloads over 30 hours, both started inside the data: `tmpfiles` writes a new
/// randomly named temporary file every hour; `tools` runs a new executable every hour.
fn thirty_hours() -> Vec<Event> {
    let mut rows = Vec::new();
    for w in ["tmpfiles", "tools"] {
        rows.push(row(w, 100, Op::Process, T0));
        let mut conf = row(w, 100, Op::File, T0 + SEC);
        conf.path = Some("/etc/app.conf".into());
        conf.access = Some("read".into());
        rows.push(conf);
    }
    let letters = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for h in 1..30i64 {
        let t = T0 + h * HOUR;
        let name: String = (0..6)
            .map(|i| letters[((h * 7 + i * 13) % 52) as usize] as char)
            .collect();
        let mut tmp = row("tmpfiles", 100, Op::File, t);
        tmp.path = Some(format!("/tmp/tmp.{name}"));
        tmp.access = Some("create".into());
        rows.push(tmp);
        let mut read = row("tmpfiles", 100, Op::File, t + SEC);
        read.path = Some("/etc/app.conf".into());
        read.access = Some("read".into());
        rows.push(read);
        let mut exec = row("tools", 200 + h as i32, Op::Process, t);
        exec.process = Some(format!("/usr/bin/tool-{name}"));
        exec.parent_process = Some("/app/worker".into());
        rows.push(exec);
    }
    rows
}

fn generated(dropped: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    write_bundle(
        &dir.path().join("b"),
        thirty_hours(),
        &BundleOptions {
            producer: "drift-test".into(),
            events_dropped: dropped,
            ..BundleOptions::default()
        },
    )
    .unwrap();
    let s = Store::in_memory().unwrap();
    let r = s.merge_bundle(&dir.path().join("b")).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    (dir, s)
}

fn verdict_of(v: &[drift::Stability], name: &str) -> drift::Stability {
    v.iter()
        .find(|s| s.workload.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} in {v:?}"))
}

#[test]
fn new_temporary_file_names_are_generalised_and_stay_stable() {
    let (_dir, s) = generated(0);
    let v = drift::stability(&s, &window(None, None), &StabilityOptions::default()).unwrap();
    let tmp = verdict_of(&v, "tmpfiles");
    assert_eq!(tmp.verdict, Verdict::Stable, "{tmp:?}");
    assert_eq!(tmp.startup_seen, Some(true));
    let files = tmp
        .categories
        .iter()
        .find(|c| c.category == Category::Files)
        .unwrap();
    // /etc/app.conf and /tmp/ (29 names folded), both first seen in hour 0 and 1.
    assert_eq!(files.items, 2, "{files:?}");
    assert_eq!(files.new_per_hour.iter().sum::<u32>(), 2);
    // A new executable every hour is learning: executables are never folded by directory.
    let tools = verdict_of(&v, "tools");
    assert_eq!(tools.verdict, Verdict::Learning, "{tools:?}");
    assert!(tools.reasons.iter().any(|r| r.starts_with("executables")));
}

fn library() -> Library {
    Library::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")).unwrap()
}

#[test]
fn dropped_events_make_it_partial_and_block_is_refused_without_force() {
    let (_dir, s) = generated(7);
    let v = drift::stability(&s, &window(None, None), &StabilityOptions::default()).unwrap();
    let tmp = verdict_of(&v, "tmpfiles");
    assert_eq!(tmp.verdict, Verdict::Partial, "{tmp:?}");
    assert_eq!(tmp.events_dropped, 7);
    assert!(tmp.reasons.iter().any(|r| r.contains("7 events dropped")));

    let mut opts = RecommendOptions::new(window(None, None));
    opts.action = Action::Block;
    opts.library = Some(library());
    let rec = recommend(&s, &opts).unwrap();
    let id = WorkloadId {
        namespace: Some("ns".into()),
        kind: "Deployment".into(),
        name: "tmpfiles".into(),
    };
    let w = rec
        .workloads
        .iter()
        .find(|w| w.draft.workload == id)
        .unwrap();
    let why = w.refused.as_deref().unwrap_or_else(|| panic!("{w:?}"));
    assert!(why.contains("partial") && why.contains("--force"), "{why}");
    assert!(w.hardening.is_empty());

    opts.force = true;
    let rec = recommend(&s, &opts).unwrap();
    let w = rec
        .workloads
        .iter()
        .find(|w| w.draft.workload == id)
        .unwrap();
    assert_eq!(w.refused, None);
    assert_eq!(
        w.stability.as_ref().map(|s| s.verdict),
        Some(Verdict::Partial)
    );

    // Without drops, the stable workload is not refused.
    let (_dir2, clean) = generated(0);
    opts.force = false;
    let rec = recommend(&clean, &opts).unwrap();
    let w = rec
        .workloads
        .iter()
        .find(|w| w.draft.workload == id)
        .unwrap();
    assert_eq!(w.refused, None, "{:?}", w.stability);
}
