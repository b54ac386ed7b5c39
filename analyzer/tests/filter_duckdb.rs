//! The filter language against a real DuckDB: compiled filters select exactly the rows an
//! independent evaluator (written here, with its own glob matcher) selects, hostile input
//! never panics and never produces SQL that DuckDB rejects, and user text cannot change the
//! query.

use std::cell::RefCell;

use duckdb::types::Value as DbValue;
use duckdb::{params_from_iter, Connection};
use karmor_analyzer::filter::{
    compile, parse, Expr, Field, FilterError, SqlFilter, Value, MAX_DEPTH, MAX_INPUT_BYTES,
};
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------------------------
// The test table.

/// String columns of the table, in row order: every column a text field reads.
const TEXT_COLUMNS: [&str; 23] = [
    "namespace",
    "workload",
    "pod",
    "container",
    "node",
    "image",
    "process",
    "parent_process",
    "path",
    "access",
    "proto",
    "direction",
    "op",
    "source",
    "result",
    "policy",
    "action",
    "syscall",
    "capability",
    "cluster",
    "workload_kind",
    "remote_addr",
    "remote_name",
];

fn col_index(column: &str) -> usize {
    TEXT_COLUMNS
        .iter()
        .position(|c| *c == column)
        .unwrap_or_else(|| panic!("no column {column}"))
}

fn create_table(conn: &Connection) {
    let mut ddl = String::from("CREATE TABLE t (id INTEGER");
    for c in TEXT_COLUMNS {
        ddl.push_str(", ");
        ddl.push_str(c);
        ddl.push_str(" VARCHAR");
    }
    ddl.push_str(
        ", labels VARCHAR[], remote_port USMALLINT, local_port USMALLINT, uid UINTEGER, \
         pid INTEGER, host BOOLEAN)",
    );
    conn.execute_batch(&ddl).expect("create table");
}

#[derive(Debug, Clone, Default)]
struct Row {
    id: i32,
    text: Vec<Option<String>>,
    labels: Option<Vec<String>>,
    remote_port: Option<u16>,
    local_port: Option<u16>,
    uid: Option<u32>,
    pid: Option<i32>,
    host: Option<bool>,
}

impl Row {
    fn empty(id: i32) -> Row {
        Row {
            id,
            text: vec![None; TEXT_COLUMNS.len()],
            ..Row::default()
        }
    }

    fn col(&self, column: &str) -> Option<&str> {
        self.text[col_index(column)].as_deref()
    }

    fn set(mut self, column: &str, v: &str) -> Row {
        self.text[col_index(column)] = Some(v.to_owned());
        self
    }
}

fn insert(conn: &Connection, row: &Row) {
    let mut sql = String::from("INSERT INTO t (id");
    for c in TEXT_COLUMNS {
        sql.push_str(", ");
        sql.push_str(c);
    }
    sql.push_str(", remote_port, local_port, uid, pid, host, labels) VALUES (?");
    let mut params: Vec<DbValue> = vec![DbValue::Int(row.id)];
    for v in &row.text {
        sql.push_str(", ?");
        params.push(v.clone().map_or(DbValue::Null, DbValue::Text));
    }
    sql.push_str(", ?, ?, ?, ?, ?, ");
    params.push(row.remote_port.map_or(DbValue::Null, DbValue::USmallInt));
    params.push(row.local_port.map_or(DbValue::Null, DbValue::USmallInt));
    params.push(row.uid.map_or(DbValue::Null, DbValue::UInt));
    params.push(row.pid.map_or(DbValue::Null, DbValue::Int));
    params.push(row.host.map_or(DbValue::Null, DbValue::Boolean));
    match &row.labels {
        None => sql.push_str("NULL"),
        Some(ls) if ls.is_empty() => sql.push_str("CAST([] AS VARCHAR[])"),
        Some(ls) => {
            sql.push('[');
            for (i, l) in ls.iter().enumerate() {
                sql.push_str(if i == 0 { "?" } else { ", ?" });
                params.push(DbValue::Text(l.clone()));
            }
            sql.push(']');
        }
    }
    sql.push(')');
    conn.execute(&sql, params_from_iter(params.iter()))
        .expect("insert row");
}

fn table_with(rows: &[Row]) -> Connection {
    let conn = Connection::open_in_memory().expect("open duckdb");
    create_table(&conn);
    for r in rows {
        insert(&conn, r);
    }
    conn
}

fn select_ids(conn: &Connection, f: &SqlFilter) -> Result<Vec<i32>, duckdb::Error> {
    let sql = format!("SELECT id FROM t WHERE {} ORDER BY id", f.sql);
    let mut stmt = conn.prepare(&sql)?;
    let ids = stmt
        .query_map(params_from_iter(f.params.iter()), |r| r.get::<_, i32>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

fn ids_for(conn: &Connection, filter: &str) -> Vec<i32> {
    let f = compile(filter).unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    select_ids(conn, &f).unwrap_or_else(|e| panic!("{filter:?} -> {}: {e}", f.sql))
}

fn row_count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("table t still exists")
}

// ---------------------------------------------------------------------------------------------
// The independent model: keys, AST, evaluator, glob matcher, printer.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// One string column.
    Text(&'static str),
    /// A name column matched in three spellings: as written, `PREFIX` + upper case, and lower
    /// case without the prefix (ASCII case only).
    Name(&'static str, &'static str),
    Remote,
    Label,
    Port,
    Uid,
    User,
    Pid,
    Host,
}

/// Every key the language accepts (including the two aliases), what it reads, and the field
/// it must parse to.
const KEYS: [(&str, KeyKind, Field); 30] = [
    ("namespace", KeyKind::Text("namespace"), Field::Namespace),
    ("workload", KeyKind::Text("workload"), Field::Workload),
    ("pod", KeyKind::Text("pod"), Field::Pod),
    ("container", KeyKind::Text("container"), Field::Container),
    ("node", KeyKind::Text("node"), Field::Node),
    ("image", KeyKind::Text("image"), Field::Image),
    ("process", KeyKind::Text("process"), Field::Process),
    ("parent", KeyKind::Text("parent_process"), Field::Parent),
    (
        "parent_process",
        KeyKind::Text("parent_process"),
        Field::Parent,
    ),
    ("path", KeyKind::Text("path"), Field::Path),
    ("access", KeyKind::Text("access"), Field::Access),
    ("proto", KeyKind::Text("proto"), Field::Proto),
    ("direction", KeyKind::Text("direction"), Field::Direction),
    ("op", KeyKind::Text("op"), Field::Op),
    ("source", KeyKind::Text("source"), Field::Source),
    ("result", KeyKind::Text("result"), Field::Result),
    ("policy", KeyKind::Text("policy"), Field::Policy),
    ("action", KeyKind::Text("action"), Field::Action),
    ("syscall", KeyKind::Name("syscall", "SYS_"), Field::Syscall),
    (
        "capability",
        KeyKind::Name("capability", "CAP_"),
        Field::Capability,
    ),
    ("cluster", KeyKind::Text("cluster"), Field::Cluster),
    ("kind", KeyKind::Text("workload_kind"), Field::Kind),
    ("workload_kind", KeyKind::Text("workload_kind"), Field::Kind),
    ("remote", KeyKind::Remote, Field::Remote),
    ("label", KeyKind::Label, Field::Label),
    ("port", KeyKind::Port, Field::Port),
    ("uid", KeyKind::Uid, Field::Uid),
    ("user", KeyKind::User, Field::User),
    ("pid", KeyKind::Pid, Field::Pid),
    ("host", KeyKind::Host, Field::Host),
];

#[derive(Debug, Clone)]
enum TVal {
    Str(String),
    Num(u64),
    Root,
    Bool(bool),
}

#[derive(Debug, Clone)]
enum TExpr {
    And(Vec<TExpr>),
    Or(Vec<TExpr>),
    Cmp { key: usize, neg: bool, val: TVal },
}

/// `*` matches any run of characters, `?` exactly one, everything else itself.
fn glob_match(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    // m[j]: does p[..i] match s[..j]?
    let mut m = vec![false; s.len() + 1];
    m[0] = true;
    for &pc in &p {
        let mut next = vec![false; s.len() + 1];
        for j in 0..=s.len() {
            next[j] = match pc {
                '*' => m[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && m[j - 1],
                c => j > 0 && m[j - 1] && s[j - 1] == c,
            };
        }
        m = next;
    }
    m[s.len()]
}

fn str_matches(pattern: &str, s: &str) -> bool {
    if pattern.contains(['*', '?']) {
        glob_match(pattern, s)
    } else {
        pattern == s
    }
}

fn eval(e: &TExpr, row: &Row) -> bool {
    match e {
        TExpr::And(v) => v.iter().all(|e| eval(e, row)),
        TExpr::Or(v) => v.iter().any(|e| eval(e, row)),
        TExpr::Cmp { key, neg, val } => {
            let num = match val {
                TVal::Num(n) => Some(*n),
                TVal::Root => Some(0),
                _ => None,
            };
            let text = |v: Option<&str>| match (val, v) {
                (TVal::Str(p), Some(s)) => str_matches(p, s),
                _ => false,
            };
            let matched = match KEYS[*key].1 {
                KeyKind::Text(col) => text(row.col(col)),
                KeyKind::Name(col, prefix) => match val {
                    TVal::Str(p) => {
                        let bare = match p.get(..prefix.len()) {
                            Some(h) if h.eq_ignore_ascii_case(prefix) => &p[prefix.len()..],
                            _ => p.as_str(),
                        };
                        let spellings = [
                            p.clone(),
                            format!("{prefix}{}", bare.to_ascii_uppercase()),
                            bare.to_ascii_lowercase(),
                        ];
                        row.col(col)
                            .is_some_and(|v| spellings.iter().any(|s| str_matches(s, v)))
                    }
                    _ => false,
                },
                KeyKind::Remote => text(row.col("remote_addr")) || text(row.col("remote_name")),
                KeyKind::Label => row
                    .labels
                    .as_ref()
                    .is_some_and(|ls| ls.iter().any(|l| text(Some(l)))),
                KeyKind::Port => {
                    num.is_some()
                        && (row.remote_port.map(u64::from) == num
                            || row.local_port.map(u64::from) == num)
                }
                KeyKind::Uid | KeyKind::User => num.is_some() && row.uid.map(u64::from) == num,
                KeyKind::Pid => num.is_some() && row.pid.map(|p| p as u64) == num,
                KeyKind::Host => match val {
                    TVal::Bool(b) => row.host == Some(*b),
                    _ => false,
                },
            };
            matched != *neg
        }
    }
}

/// A tiny deterministic generator for the printer's stylistic choices.
struct Style(u64);

impl Style {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn coin(&mut self) -> bool {
        self.next().is_multiple_of(2)
    }
    fn spaces(&mut self) -> &'static str {
        ["", "", " ", "  "][(self.next() % 4) as usize]
    }
}

fn can_be_bare(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(' ')
        && !s.ends_with(' ')
        && !s.contains([';', '(', ')', '"', '&', '|'])
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn print(e: &TExpr, st: &mut Style) -> String {
    match e {
        TExpr::And(v) | TExpr::Or(v) => {
            let and = matches!(e, TExpr::And(_));
            let mut out = String::new();
            for (i, child) in v.iter().enumerate() {
                if i > 0 {
                    out.push_str(st.spaces());
                    out.push_str(if !and {
                        "||"
                    } else if st.coin() {
                        ";"
                    } else {
                        "&&"
                    });
                    out.push_str(st.spaces());
                }
                let needs_parens = and && matches!(child, TExpr::Or(_));
                let text = print(child, st);
                if needs_parens || st.next().is_multiple_of(5) {
                    out.push('(');
                    out.push_str(st.spaces());
                    out.push_str(&text);
                    out.push_str(st.spaces());
                    out.push(')');
                } else {
                    out.push_str(&text);
                }
            }
            out
        }
        TExpr::Cmp { key, neg, val } => {
            let name = KEYS[*key].0;
            let mut out = match st.next() % 3 {
                0 => name.to_uppercase(),
                1 => name
                    .chars()
                    .enumerate()
                    .map(|(i, c)| if i == 0 { c.to_ascii_uppercase() } else { c })
                    .collect(),
                _ => name.to_owned(),
            };
            out.push_str(st.spaces());
            out.push_str(if *neg { "!=" } else { "=" });
            out.push_str(st.spaces());
            let text = match val {
                TVal::Str(s) => s.clone(),
                TVal::Num(n) => n.to_string(),
                TVal::Root => "root".to_owned(),
                TVal::Bool(b) => {
                    if st.coin() {
                        b.to_string()
                    } else {
                        b.to_string().to_uppercase()
                    }
                }
            };
            if can_be_bare(&text) && st.coin() {
                out.push_str(&text);
                out.push_str(st.spaces());
            } else {
                out.push_str(&quote(&text));
            }
            out
        }
    }
}

/// What the parser must return for the printed text: same shape, with nested same-kind
/// groups flattened.
fn expected_expr(e: &TExpr) -> Expr {
    fn flat(v: &[TExpr], and: bool) -> Vec<Expr> {
        let mut out = Vec::new();
        for child in v {
            match (expected_expr(child), and) {
                (Expr::And(inner), true) => out.extend(inner),
                (Expr::Or(inner), false) => out.extend(inner),
                (x, _) => out.push(x),
            }
        }
        out
    }
    match e {
        TExpr::And(v) => Expr::And(flat(v, true)),
        TExpr::Or(v) => Expr::Or(flat(v, false)),
        TExpr::Cmp { key, neg, val } => Expr::Cmp {
            field: KEYS[*key].2,
            negated: *neg,
            value: match val {
                TVal::Str(s) if s.contains(['*', '?']) => Value::Glob(s.clone()),
                TVal::Str(s) => Value::Exact(s.clone()),
                TVal::Num(n) => Value::Int(*n as i64),
                TVal::Root => Value::Int(0),
                TVal::Bool(b) => Value::Bool(*b),
            },
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// Strings stored in rows and used as filter values: SQL and LIKE metacharacters, filter
/// syntax, quotes, backslashes, unicode.
const STRINGS: &[&str] = &[
    "",
    "SYS_OPENAT",
    "openat",
    "CAP_NET_RAW",
    "net_raw",
    "a",
    "A",
    "ab",
    "abc",
    "a b",
    "default",
    "kube-system",
    "/bin/sh",
    "/bin/bash",
    "/usr/bin/curl",
    "a%b",
    "axb",
    "a_b",
    "a\\b",
    "a\\\\b",
    "100%",
    "x'y",
    "x' OR '1'='1",
    "'; DROP TABLE t; --",
    "a;b",
    "a&&b",
    "a|b",
    "(x)",
    "\"q\"",
    "é",
    "e\u{301}",
    "日本語",
    "😀",
    "a=b",
    "app=web",
    "=",
    "!",
    "*",
    "?",
    "a*b",
    "[a]",
    "[^a]%",
    " sp",
    "sp ",
    "--",
    "true",
    "80",
];

const LABELS: &[&str] = &[
    "app=web",
    "app=db",
    "tier=db",
    "a%b=_",
    "k=v\\",
    "x'y=1",
    "é=日本",
    "app=",
    "=",
    "a;b=c",
];

const PORTS: &[u64] = &[0, 22, 80, 443, 8080, 65535];
const UIDS: &[u64] = &[0, 1, 1000, 65534, 4294967295];
const PIDS: &[u64] = &[0, 1, 42, 2147483647];

/// A glob derived from a pool string: some characters replaced by `*`/`?`, maybe a `*`
/// at either end.
fn glob_value() -> impl Strategy<Value = String> {
    (
        select(STRINGS),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..3), 1..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(base, edits, star_front, star_back)| {
            let mut chars: Vec<char> = base.chars().collect();
            for (ix, kind) in edits {
                if chars.is_empty() {
                    chars.push('*');
                    continue;
                }
                let i = ix.index(chars.len());
                match kind {
                    0 => chars[i] = '*',
                    1 => chars[i] = '?',
                    _ => chars.insert(i, '*'),
                }
            }
            let mut s: String = chars.into_iter().collect();
            if star_front {
                s.insert(0, '*');
            }
            if star_back {
                s.push('*');
            }
            s
        })
}

fn text_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(STRINGS).prop_map(str::to_owned),
        2 => glob_value(),
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(LABELS).prop_map(str::to_owned),
        1 => text_value(),
        2 => (select(&["app", "tier", "a%b", "x'y", "é", "*", "a?p"][..]), prop_oneof![Just("*".to_owned()), text_value()])
            .prop_map(|(k, v)| format!("{k}={v}")),
    ]
}

fn cmp_expr() -> impl Strategy<Value = TExpr> {
    (0..KEYS.len(), any::<bool>()).prop_flat_map(|(key, neg)| {
        let val: BoxedStrategy<TVal> = match KEYS[key].1 {
            KeyKind::Text(_) | KeyKind::Remote => text_value().prop_map(TVal::Str).boxed(),
            KeyKind::Name(..) => prop_oneof![
                2 => text_value(),
                1 => select(&["openat", "SYS_OPENAT", "sys_OpenAt", "SYS_open*", "net_raw", "CAP_NET_RAW", "cap_net_r?w"][..]).prop_map(str::to_owned),
            ]
            .prop_map(TVal::Str)
            .boxed(),
            KeyKind::Label => label_value().prop_map(TVal::Str).boxed(),
            KeyKind::Port => select(PORTS).prop_map(TVal::Num).boxed(),
            KeyKind::Uid => select(UIDS).prop_map(TVal::Num).boxed(),
            KeyKind::User => {
                prop_oneof![Just(TVal::Root), select(UIDS).prop_map(TVal::Num)].boxed()
            }
            KeyKind::Pid => select(PIDS).prop_map(TVal::Num).boxed(),
            KeyKind::Host => any::<bool>().prop_map(TVal::Bool).boxed(),
        };
        val.prop_map(move |val| TExpr::Cmp { key, neg, val })
    })
}

fn texpr() -> impl Strategy<Value = TExpr> {
    cmp_expr().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(TExpr::And),
            prop::collection::vec(inner, 2..4).prop_map(TExpr::Or),
        ]
    })
}

fn row(id: i32) -> impl Strategy<Value = Row> {
    let text = prop::collection::vec(
        prop::option::weighted(0.75, select(STRINGS).prop_map(str::to_owned)),
        TEXT_COLUMNS.len(),
    );
    let labels = prop::option::weighted(
        0.85,
        prop::collection::vec(select(LABELS).prop_map(str::to_owned), 0..4),
    );
    let port = || prop::option::weighted(0.7, select(PORTS).prop_map(|p| p as u16));
    (
        text,
        labels,
        port(),
        port(),
        prop::option::weighted(0.8, select(UIDS).prop_map(|u| u as u32)),
        prop::option::weighted(0.8, select(PIDS).prop_map(|p| p as i32)),
        prop::option::weighted(0.8, any::<bool>()),
    )
        .prop_map(
            move |(text, labels, remote_port, local_port, uid, pid, host)| Row {
                id,
                text,
                labels,
                remote_port,
                local_port,
                uid,
                pid,
                host,
            },
        )
}

fn rows() -> impl Strategy<Value = Vec<Row>> {
    (1usize..12).prop_flat_map(|n| (0..n as i32).map(row).collect::<Vec<_>>())
}

// ---------------------------------------------------------------------------------------------
// Property 2: the SQL selects exactly what the model selects.

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn compiled_filters_select_what_the_model_selects(
        e in texpr(),
        rows in rows(),
        seed in 1u64..,
    ) {
        let text = print(&e, &mut Style(seed));
        let parsed = parse(&text).map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
        prop_assert_eq!(&parsed, &expected_expr(&e), "printed as {:?}", text);
        // The canonical form reads back to the same filter.
        prop_assert_eq!(&parse(&parsed.to_string()).map_err(|err| TestCaseError::fail(err.to_string()))?, &parsed);

        let f = parsed.to_sql();
        prop_assert_eq!(f.sql.matches('?').count(), f.params.len());
        let conn = table_with(&rows);
        let got = select_ids(&conn, &f)
            .map_err(|err| TestCaseError::fail(format!("{text:?} -> {}: {err}", f.sql)))?;
        let want: Vec<i32> = rows.iter().filter(|r| eval(&e, r)).map(|r| r.id).collect();
        prop_assert_eq!(got, want, "filter {:?}\nsql {}\nparams {:?}", text, f.sql, f.params);
    }
}

// ---------------------------------------------------------------------------------------------
// Property 1: hostile input never panics, errors point inside the input, accepted filters
// always run.

thread_local! {
    static FUZZ_DB: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

fn check_hostile(input: &str) -> Result<(), TestCaseError> {
    match compile(input) {
        Err(e) => check_error(input, &e),
        Ok(f) => {
            prop_assert_eq!(f.sql.matches('?').count(), f.params.len());
            let expr = parse(input).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let canonical = expr.to_string();
            prop_assert!(
                canonical.len() <= input.len(),
                "{:?} -> {:?}",
                input,
                canonical
            );
            prop_assert_eq!(
                &parse(&canonical).map_err(|e| TestCaseError::fail(e.to_string()))?,
                &expr
            );
            FUZZ_DB.with(|db| {
                let mut db = db.borrow_mut();
                let conn = db.get_or_insert_with(|| {
                    table_with(&[
                        Row::empty(1).set("namespace", "default").set("pod", "p"),
                        Row::empty(2),
                    ])
                });
                let sql = format!("SELECT count(*) FROM t WHERE {}", f.sql);
                let n: Result<i64, _> = conn
                    .prepare(&sql)
                    .and_then(|mut s| s.query_row(params_from_iter(f.params.iter()), |r| r.get(0)));
                prop_assert!(n.is_ok(), "{:?} -> {}: {:?}", input, f.sql, n);
                prop_assert_eq!(row_count(conn), 2);
                Ok(())
            })
        }
    }
}

fn check_error(input: &str, e: &FilterError) -> Result<(), TestCaseError> {
    prop_assert!(e.position <= input.len(), "{:?}: {:?}", input, e);
    prop_assert!(input.is_char_boundary(e.position), "{:?}: {:?}", input, e);
    prop_assert!(!e.message.is_empty());
    let shown = e.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    prop_assert_eq!(lines.len(), 3, "{}", shown);
    prop_assert!(lines[0].starts_with("filter error at column "), "{}", shown);
    prop_assert!(lines[2].ends_with('^'), "{}", shown);
    prop_assert!(!lines[1].chars().any(char::is_control), "{}", shown);
    Ok(())
}

const TOKENS: &[&str] = &[
    "namespace",
    "NameSpace",
    "user",
    "port",
    "label",
    "remote",
    "uid",
    "pid",
    "host",
    "path",
    "process",
    "bogus",
    "root",
    "80",
    "99999",
    "-1",
    "true",
    "app=web",
    "=",
    "!=",
    "!",
    ";",
    "&&",
    "&",
    "||",
    "|",
    "(",
    ")",
    "\"",
    "\\",
    "\\\"",
    "*",
    "?",
    "'",
    " ",
    "%",
    "_",
    "DROP TABLE t",
    "' OR 1=1 --",
    "'; DROP TABLE t; --",
    "$1",
    "?1",
    "é",
    "日本",
    "\u{0}",
    "\t",
    "\n",
    "\u{1b}",
    "\u{7f}",
    "\u{85}",
    "\u{200b}",
];

fn token_soup(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(select(TOKENS), 0..max).prop_map(|v| v.concat())
}

/// Mostly well-formed filters with hostile values, keys in any case, stray spaces and
/// sometimes one stray character inserted: exercises the accepting paths as well.
fn near_valid() -> impl Strategy<Value = String> {
    let text_key = select(
        &[
            "namespace",
            "POD",
            "label",
            "remote",
            "path",
            "Process",
            "kind",
            "parent_process",
        ][..],
    );
    let text_value = prop_oneof![
        token_soup(4),
        "[^;&|()\"]{1,12}",
        "\\PC{0,12}".prop_map(|s| quote(&s)),
        select(
            &[
                "root",
                "0",
                "80",
                "' OR 1=1 --",
                "\"'; DROP TABLE t; --\"",
                "\"\\\"\"",
                "a%_\\*?",
                "x' OR '1'='1",
                "*",
            ][..],
        )
        .prop_map(str::to_owned),
    ];
    let number_key = select(&["user", "port", "pid", "uid", "PORT"][..]);
    let number_value = prop_oneof![
        select(&["root", "0", "80", "65535", "2147483647", "\"443\""][..]).prop_map(str::to_owned),
        "[0-9]{1,11}",
    ];
    let any_key = select(&["host", "bogus", "namespace", "user", "port", ""][..]);
    let pair = prop_oneof![
        4 => (text_key, text_value.clone()),
        2 => (number_key, number_value),
        1 => (Just("HOST"), select(&["true", "False", "yes"][..]).prop_map(str::to_owned)),
        1 => (any_key, text_value),
    ];
    let cond =
        (pair, select(&["=", "!=", " = ", "!= "][..]), 0u8..4).prop_map(|((k, v), op, parens)| {
            match parens {
                0 => format!("({k}{op}{v})"),
                _ => format!("{k}{op}{v}"),
            }
        });
    let joiner = select(&[";", "&&", "||", " ; ", " || ", " && "][..]);
    (
        prop::collection::vec((cond, joiner), 1..5),
        prop::option::weighted(
            0.2,
            (
                any::<prop::sample::Index>(),
                select(&[';', '&', '|', '(', ')', '=', '!', '"', '\\', ' ', '*', '\''][..]),
            ),
        ),
    )
        .prop_map(|(conds, stray)| {
            let mut out = String::new();
            for (i, (c, j)) in conds.iter().enumerate() {
                if i > 0 {
                    out.push_str(j);
                }
                out.push_str(c);
            }
            if let Some((ix, ch)) = stray {
                let boundaries: Vec<usize> = (0..=out.len())
                    .filter(|i| out.is_char_boundary(*i))
                    .collect();
                out.insert(boundaries[ix.index(boundaries.len())], ch);
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn hostile_input_never_panics_and_accepted_sql_runs(
        input in prop_oneof![
            1 => any::<String>(),
            1 => "[;&|()=!\"\\\\*?' ]{0,40}",
            1 => "(namespace|pod|user|port|label|remote|host|pid|uid|[;&|()=!\"\\\\*?' %_a-z0-9]){0,30}",
            1 => token_soup(40),
            4 => near_valid(),
        ]
    ) {
        check_hostile(&input)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn long_hostile_input_is_bounded(
        input in prop_oneof![
            "[;&|()=!\"\\\\*?' a-z]{4000,10000}",
            token_soup(3000),
            (select(&["(", ")", "pod=a||", "pod=a;", "(pod=a", "\""][..]), 500usize..10_000)
                .prop_map(|(t, n)| t.repeat(n)),
        ]
    ) {
        check_hostile(&input)?;
        if input.len() > MAX_INPUT_BYTES {
            let e = compile(&input).expect_err("too long");
            let boundary = (0..=MAX_INPUT_BYTES).rev().find(|i| input.is_char_boundary(*i));
            prop_assert_eq!(Some(e.position), boundary);
        }
    }
}

#[test]
fn hostile_input_examples() {
    let big_or = vec!["port=1"; 500].join("||");
    assert!(big_or.len() <= MAX_INPUT_BYTES);
    let big_glob = vec!["remote!=*a?"; 340].join(";");
    assert!(big_glob.len() <= MAX_INPUT_BYTES);
    let deep = format!("{}pod=a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    let deep_mixed = format!(
        "{}pod=a{}",
        "(pod=b||".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    for input in [
        big_or.as_str(),
        big_glob.as_str(),
        deep.as_str(),
        deep_mixed.as_str(),
        "namespace=x' OR 1=1 --",
        "namespace=\"' OR 1=1 --\"",
        "path=*' OR '1'='1",
        "label=\"') OR true --\"",
        "pod=$1",
        "pod=?1",
        "pod=:name",
        "pod=%s",
    ] {
        assert!(compile(input).is_ok(), "{input:?}: {:?}", compile(input));
        check_hostile(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    }
    for input in [
        "(".repeat(10_000),
        ")".repeat(10_000),
        "(".repeat(4096),
        format!("{}pod=a", "(".repeat(MAX_DEPTH + 1)),
        "pod=a;".repeat(2000),
        "\u{0}".repeat(3),
        "é".repeat(5000),
        String::new(),
    ] {
        let e = compile(&input).expect_err("rejected");
        check_error(&input, &e).unwrap_or_else(|err| panic!("{input:?}: {err}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Injection attempts and specific semantics.

#[test]
fn injection_attempts_match_only_their_literal_text() {
    let conn = table_with(&[
        Row::empty(1)
            .set("namespace", "default")
            .set("pod", "web-1"),
        Row::empty(2).set("pod", "web-2"),
        Row::empty(3)
            .set("namespace", "x' OR '1'='1")
            .set("pod", "x'; DROP TABLE t; --"),
    ]);
    assert_eq!(ids_for(&conn, "namespace=y' OR '1'='1"), Vec::<i32>::new());
    assert_eq!(ids_for(&conn, "namespace=x' OR '1'='1"), [3]);
    assert_eq!(
        ids_for(&conn, "namespace=\"; DROP TABLE t; --\""),
        Vec::<i32>::new()
    );
    assert_eq!(ids_for(&conn, "pod=\"x'; DROP TABLE t; --\""), [3]);
    assert_eq!(
        ids_for(&conn, "pod=\"'); DROP TABLE t; --\""),
        Vec::<i32>::new()
    );
    assert_eq!(ids_for(&conn, "path=*' OR 1=1 --"), Vec::<i32>::new());
    assert_eq!(ids_for(&conn, "label=*' OR true --"), Vec::<i32>::new());
    assert_eq!(ids_for(&conn, "namespace=' OR 1=1 --"), Vec::<i32>::new());
    // Unquoted, the `;` ends the value and what follows is not a condition.
    let e = compile("pod=x; DROP TABLE t; --").expect_err("not a filter");
    assert_eq!(e.position, 7);
    assert!(e.message.contains("unknown field \"DROP\""), "{e}");
    assert_eq!(row_count(&conn), 3);
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 't'",
            [],
            |r| r.get(0),
        )
        .expect("catalog");
    assert_eq!(tables, 1);
}

#[test]
fn null_columns_make_comparisons_false_and_negations_true() {
    let mut with_labels = Row::empty(1).set("namespace", "default");
    with_labels.labels = Some(vec!["app=web".into()]);
    with_labels.uid = Some(0);
    with_labels.remote_port = Some(443);
    let mut empty_labels = Row::empty(2);
    empty_labels.labels = Some(vec![]);
    let conn = table_with(&[with_labels, empty_labels, Row::empty(3)]);
    assert_eq!(ids_for(&conn, "namespace=default"), [1]);
    assert_eq!(ids_for(&conn, "namespace!=default"), [2, 3]);
    assert_eq!(ids_for(&conn, "namespace!=*"), [2, 3]);
    assert_eq!(ids_for(&conn, "label=app=*"), [1]);
    assert_eq!(ids_for(&conn, "label!=app=web"), [2, 3]);
    assert_eq!(ids_for(&conn, "label!=*"), [2, 3]);
    assert_eq!(ids_for(&conn, "user!=root"), [2, 3]);
    assert_eq!(ids_for(&conn, "port!=443"), [2, 3]);
    assert_eq!(ids_for(&conn, "host!=true"), [1, 2, 3]);
    assert_eq!(ids_for(&conn, "remote!=x"), [1, 2, 3]);
    assert_eq!(
        ids_for(&conn, "namespace!=default||namespace=default"),
        [1, 2, 3]
    );
}

#[test]
fn globs_and_literal_metacharacters() {
    let paths = [
        "a%b",
        "axb",
        "a_b",
        "a_bc",
        "a\\b",
        "/bin/sh",
        "/bin/x/sh",
        "é",
        "日",
        "ab",
        "[a]",
        "a",
    ];
    let rows: Vec<Row> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| Row::empty(i as i32).set("path", p))
        .collect();
    let conn = table_with(&rows);
    let ids = |ps: &[&str]| -> Vec<i32> {
        ps.iter()
            .map(|p| paths.iter().position(|x| x == p).expect("path") as i32)
            .collect()
    };
    assert_eq!(ids_for(&conn, "path=a%b"), ids(&["a%b"]));
    assert_eq!(ids_for(&conn, "path=a_b"), ids(&["a_b"]));
    assert_eq!(ids_for(&conn, "path=a_b*"), ids(&["a_b", "a_bc"]));
    assert_eq!(ids_for(&conn, "path=a%*"), ids(&["a%b"]));
    assert_eq!(ids_for(&conn, "path=a\\*"), ids(&["a\\b"]));
    assert_eq!(ids_for(&conn, "path=a\\b"), ids(&["a\\b"]));
    assert_eq!(ids_for(&conn, "path=\"a\\\\b\""), ids(&["a\\b"]));
    assert_eq!(
        ids_for(&conn, "path=a?b"),
        ids(&["a%b", "axb", "a_b", "a\\b"])
    );
    assert_eq!(
        ids_for(&conn, "path=/bin/*sh"),
        ids(&["/bin/sh", "/bin/x/sh"])
    );
    assert_eq!(ids_for(&conn, "path=?"), ids(&["é", "日", "a"]));
    assert_eq!(ids_for(&conn, "path=[a]"), ids(&["[a]"]));
    assert_eq!(ids_for(&conn, "path=[a]*"), ids(&["[a]"]));
    assert_eq!(ids_for(&conn, "path=*"), ids(&paths));
}

#[test]
fn ports_match_either_side_and_remote_matches_address_or_name() {
    let mut a = Row::empty(1).set("remote_addr", "10.0.0.1");
    a.remote_port = Some(443);
    let mut b = Row::empty(2).set("remote_name", "api.example.com");
    b.local_port = Some(443);
    b.remote_port = Some(51000);
    let conn = table_with(&[a, b, Row::empty(3)]);
    assert_eq!(ids_for(&conn, "port=443"), [1, 2]);
    assert_eq!(ids_for(&conn, "port=51000"), [2]);
    assert_eq!(ids_for(&conn, "remote=10.0.*"), [1]);
    assert_eq!(
        ids_for(&conn, "remote=*.example.com||remote=10.0.0.1"),
        [1, 2]
    );
    assert_eq!(ids_for(&conn, "(port=443;remote!=10.*)||port=1"), [2]);
}
