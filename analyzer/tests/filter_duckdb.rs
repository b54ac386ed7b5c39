use duckdb::Connection;

fn q(c: &Connection, sql: &str, p: &[&dyn duckdb::ToSql]) -> String {
    match c.prepare(sql) {
        Err(e) => format!("PREPARE ERR {e}"),
        Ok(mut st) => match st.query_row(p, |r| r.get::<_, Option<String>>(0)) {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("ERR {e}"),
        },
    }
}

#[test]
fn explore() {
    let c = Connection::open_in_memory().unwrap();
    println!("version {}", q(&c, "SELECT version()", &[]));
    println!("like uni _ : {}", q(&c, "SELECT CAST('é' LIKE ? ESCAPE '\\' AS VARCHAR)", &[&"_"]));
    println!("like uni __ : {}", q(&c, "SELECT CAST('é' LIKE ? ESCAPE '\\' AS VARCHAR)", &[&"__"]));
    println!("like uni a_b : {}", q(&c, "SELECT CAST('a😀b' LIKE ? ESCAPE '\\' AS VARCHAR)", &[&"a_b"]));
    println!("like esc % : {}", q(&c, "SELECT CAST('a%b' LIKE ? ESCAPE '\\' AS VARCHAR)", &[&"a\\%b"]));
    println!("like esc % no : {}", q(&c, "SELECT CAST('axb' LIKE ? ESCAPE '\\' AS VARCHAR)", &[&"a\\%b"]));
    println!("like esc bs : {}", q(&c, "SELECT CAST('a\\b' LIKE ? ESCAPE '\\' AS VARCHAR)", &[&"a\\\\b"]));
    println!("like newline % : {}", q(&c, "SELECT CAST('a\nb' LIKE ? ESCAPE '\\' AS VARCHAR)", &[&"a%b"]));
    println!("like bracket : {}", q(&c, "SELECT CAST('[a]' LIKE ? ESCAPE '\\' AS VARCHAR)", &[&"[a]"]));
    println!("lambda arrow : {}", q(&c, "SELECT CAST(list_bool_or(list_transform(['a=b','c=d'], x -> x LIKE ? ESCAPE '\\')) AS VARCHAR)", &[&"c=%"]));
    println!("lambda py : {}", q(&c, "SELECT CAST(list_bool_or(list_transform(['a=b','c=d'], lambda x: x LIKE ? ESCAPE '\\')) AS VARCHAR)", &[&"c=%"]));
    println!("lambda py empty : {}", q(&c, "SELECT CAST(list_bool_or(list_transform(CAST([] AS VARCHAR[]), lambda x: x LIKE ? ESCAPE '\\')) AS VARCHAR)", &[&"c=%"]));
    println!("list_contains : {}", q(&c, "SELECT CAST(list_contains(['a=b','c=d'], ?) AS VARCHAR)", &[&"c=d"]));
    println!("list_has_any : {}", q(&c, "SELECT CAST(len(list_filter(['a=b','c=d'], lambda x: x LIKE ? ESCAPE '\\')) AS VARCHAR)", &[&"c=%"]));
    let mut big = String::from("SELECT CAST((");
    for i in 0..3000 { if i > 0 { big.push_str(" OR "); } big.push_str("coalesce(1 = ?, false)"); }
    big.push_str(") AS VARCHAR)");
    let ps: Vec<i64> = vec![0; 3000];
    let mut st = c.prepare(&big).unwrap();
    let r: Option<String> = st.query_row(duckdb::params_from_iter(ps.iter()), |r| r.get(0)).unwrap();
    println!("big or: {r:?}");
}
