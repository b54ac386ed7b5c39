//! The distinct file accesses of a summary row, aggregated as a bit set.
//!
//! `observe` reports, per file row, every distinct `access` seen. Collecting them with
//! `list_distinct(list(access))` keeps a list per group, which cost a third of the whole file
//! summary at 10M rows. The contract's access names are a small vocabulary, so the query ORs
//! one bit per known name instead, and lists only the names outside it (rare: they come from
//! other producers' bundles). [`accesses`] turns both back into the sorted, comma-separated
//! text; the result is exactly what the list would have given.

/// The known access names with their bits, in name order.
const KNOWN: [(&str, i64); 8] = [
    ("chmod", 1 << 0),
    ("chown", 1 << 1),
    ("create", 1 << 2),
    ("delete", 1 << 3),
    ("exec", 1 << 4),
    ("read", 1 << 5),
    ("rename", 1 << 6),
    ("write", 1 << 7),
];

/// Access names that change a file: a row with one of them is shown as written.
const WRITES: [&str; 6] = ["write", "create", "delete", "rename", "chmod", "chown"];

fn bits_of(names: &[&str]) -> i64 {
    KNOWN
        .iter()
        .filter(|(name, _)| names.contains(name))
        .fold(0, |acc, (_, bit)| acc | bit)
}

/// The known names as an SQL list, `('chmod', 'chown', …)` (constants, never user text).
fn sql_names() -> String {
    let names: Vec<String> = KNOWN.iter().map(|(n, _)| format!("'{n}'")).collect();
    format!("({})", names.join(", "))
}

/// Aggregate SQL for the bit set of the known accesses in a group (0 when none).
pub(crate) fn bits_sql() -> String {
    let arms: String = KNOWN
        .iter()
        .map(|(name, bit)| format!(" WHEN '{name}' THEN {bit}"))
        .collect();
    format!("bit_or(CASE access{arms} ELSE 0 END)")
}

/// Aggregate SQL for the distinct accesses outside the known names, sorted and
/// comma-separated (NULL when there are none).
///
/// A plain `list` made distinct afterwards, not `list(DISTINCT …)`: DuckDB plans a DISTINCT
/// aggregate as a second hash aggregation over the group's columns plus `access`, joined
/// back to the first, which doubled the cost of grouping the file rows (10M rows: 2.4M
/// groups hashed twice and joined); the filtered list is nearly always empty.
pub(crate) fn others_sql() -> String {
    format!(
        "array_to_string(list_sort(list_distinct(list(access) FILTER (WHERE access NOT IN {}))), ',')",
        sql_names()
    )
}

/// SQL that is true when the bit set `bits` (an expression) holds a writing access.
pub(crate) fn writes_sql(bits: &str) -> String {
    format!("({bits} & {}) <> 0", bits_of(&WRITES))
}

/// The distinct accesses of a row, sorted and comma-separated, from its bit set and the
/// comma-separated names outside the known ones.
pub(crate) fn accesses(bits: i64, others: Option<&str>) -> String {
    let mut names: Vec<&str> = KNOWN
        .iter()
        .filter(|(_, bit)| bits & bit != 0)
        .map(|(name, _)| *name)
        .collect();
    if let Some(others) = others.filter(|o| !o.is_empty()) {
        names.extend(others.split(','));
        names.sort_unstable();
        names.dedup();
    }
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_sorted_and_their_bits_distinct() {
        assert!(KNOWN.windows(2).all(|w| w[0].0 < w[1].0));
        let all = KNOWN.iter().fold(0, |acc, (_, b)| {
            assert_eq!(acc & b, 0);
            acc | b
        });
        assert_eq!(all.count_ones() as usize, KNOWN.len());
        for w in WRITES {
            assert!(KNOWN.iter().any(|(n, _)| *n == w), "{w} has no bit");
        }
    }

    #[test]
    fn accesses_merge_known_bits_with_other_names_in_order() {
        assert_eq!(accesses(0, None), "");
        assert_eq!(accesses(bits_of(&["read"]), None), "read");
        assert_eq!(
            accesses(bits_of(&["write", "read", "exec"]), None),
            "exec,read,write"
        );
        assert_eq!(
            accesses(bits_of(&["write", "read"]), Some("append,truncate")),
            "append,read,truncate,write"
        );
        assert_eq!(accesses(0, Some("append")), "append");
        assert_eq!(accesses(bits_of(&["read"]), Some("")), "read");
    }
}
