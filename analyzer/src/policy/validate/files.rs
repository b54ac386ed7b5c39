//! Files, directories and documents: what is read, how YAML documents are cut and classified.

use super::*;

/// Validates a file, or every `*.yaml`/`*.yml` file below a directory (recursively, in name
/// order). A file that cannot be read, or a document that cannot be parsed, is reported and the
/// others are still checked.
pub fn validate_path(path: &Path) -> Vec<PolicyReport> {
    match std::fs::metadata(path) {
        Err(e) => vec![PolicyReport::file_problem(
            path,
            Outcome::Invalid,
            format!("cannot read: {e}"),
        )],
        Ok(m) if m.is_dir() => {
            let mut files = Vec::new();
            let mut reports = Vec::new();
            let mut seen = HashSet::new();
            collect_yaml_files(path, 0, &mut seen, &mut files, &mut reports);
            if files.is_empty() && reports.is_empty() {
                reports.push(PolicyReport::file_problem(
                    path,
                    Outcome::Invalid,
                    "no *.yaml or *.yml files in this directory".into(),
                ));
            }
            for f in files {
                reports.extend(validate_file(&f));
            }
            reports
        }
        Ok(_) => validate_file(path),
    }
}

pub(super) fn is_yaml_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

pub(super) fn collect_yaml_files(
    dir: &Path,
    depth: usize,
    seen: &mut HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<PolicyReport>,
) {
    // Symbolic links are followed; a directory reached twice (a link cycle) is read once.
    if let Ok(canonical) = std::fs::canonicalize(dir) {
        if !seen.insert(canonical) {
            return;
        }
    }
    if depth > MAX_DEPTH {
        problems.push(PolicyReport::file_problem(
            dir,
            Outcome::Invalid,
            format!("more than {MAX_DEPTH} directory levels: not searched"),
        ));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(PolicyReport::file_problem(
                dir,
                Outcome::Invalid,
                format!("cannot read directory: {e}"),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => collect_yaml_files(&p, depth + 1, seen, files, problems),
            Ok(_) if is_yaml_name(&p) => files.push(p),
            Ok(_) => {}
            // A dangling link named *.yaml is worth reporting; others are not ours.
            Err(e) if is_yaml_name(&p) => problems.push(PolicyReport::file_problem(
                &p,
                Outcome::Invalid,
                format!("cannot read: {e}"),
            )),
            Err(_) => {}
        }
    }
}

pub(super) fn validate_file(file: &Path) -> Vec<PolicyReport> {
    let bytes = match std::fs::metadata(file) {
        Ok(m) if m.len() > MAX_FILE_BYTES => {
            return vec![PolicyReport::file_problem(
                file,
                Outcome::Invalid,
                format!(
                    "{} bytes: larger than the {} MiB this command reads",
                    m.len(),
                    MAX_FILE_BYTES >> 20
                ),
            )]
        }
        _ => match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                return vec![PolicyReport::file_problem(
                    file,
                    Outcome::Invalid,
                    format!("cannot read: {e}"),
                )]
            }
        },
    };
    match String::from_utf8(bytes) {
        Ok(text) => validate_documents(&text, file),
        Err(e) => vec![PolicyReport::file_problem(
            file,
            Outcome::Invalid,
            format!(
                "not UTF-8 text (invalid byte at offset {}): not a YAML file",
                e.utf8_error().valid_up_to()
            ),
        )],
    }
}

/// A slice of the file that holds one document (sometimes more, after a `...` marker).
pub(super) struct Chunk<'a> {
    pub(super) text: &'a str,
    /// 1-based line of `text`'s first line in the file.
    pub(super) first_line: usize,
    /// Whether it is a document even when it holds only comments (it starts with `---`).
    pub(super) explicit: bool,
}

pub(super) fn is_marker(line: &str) -> bool {
    let line = line.trim_end_matches(['\n', '\r']);
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

pub(super) fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Splits a YAML stream at `---` lines, so that a syntax error in one document does not hide
/// the next. A `---` at the start of a line always starts a document in YAML, even inside a
/// block scalar. Directives (`%YAML`) just before a marker go with the following document.
pub(super) fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1usize;
    let mut explicit = false;
    // Where the directives before the next marker begin, if there are any since the last
    // content line.
    let mut directives: Option<(usize, usize)> = None;
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        if is_marker(line) {
            let (cut, cut_line) = directives.unwrap_or((offset, line_no));
            chunks.push(Chunk {
                text: &text[start..cut],
                first_line: start_line,
                explicit,
            });
            start = cut;
            start_line = cut_line;
            explicit = true;
            directives = None;
        } else if line.starts_with('%') {
            directives.get_or_insert((offset, line_no));
        } else if !is_blank_or_comment(line) {
            directives = None;
        }
        offset += line.len();
    }
    chunks.push(Chunk {
        text: &text[start..],
        first_line: start_line,
        explicit,
    });
    chunks.retain(|c| c.explicit || c.text.lines().any(|l| !is_blank_or_comment(l)));
    chunks
}

pub(super) static YAML_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"line (\d+) column (\d+)").expect("constant regex"));

/// A serde_yaml error with its line numbers moved from the chunk to the file.
pub(super) fn yaml_error(e: &serde_yaml::Error, first_line: usize) -> String {
    let text = e.to_string();
    let text = YAML_LINE.replace_all(&text, |c: &regex::Captures<'_>| {
        let line: usize = c[1].parse().unwrap_or(0);
        format!("line {} column {}", line + first_line - 1, &c[2])
    });
    format!("not valid YAML: {text}")
}

/// Validates every document of a (multi-document) YAML text read from `file`. Each document is
/// reported separately with its 1-based number; documents of other kinds are `Skipped`; empty
/// documents are not reported. A text without any document gives one `Skipped` report.
pub fn validate_documents(text: &str, file: &Path) -> Vec<PolicyReport> {
    use serde::Deserialize;

    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reports = Vec::new();
    let mut number = 0usize;
    for chunk in split_documents(text) {
        for doc in serde_yaml::Deserializer::from_str(chunk.text) {
            number += 1;
            let mut value = match Value::deserialize(doc) {
                Ok(v) => v,
                Err(e) => {
                    let mut r = PolicyReport::file_problem(
                        file,
                        Outcome::Invalid,
                        yaml_error(&e, chunk.first_line),
                    );
                    r.document = Some(number);
                    reports.push(r);
                    // The parser cannot continue inside this chunk; the next chunk is fresh.
                    break;
                }
            };
            if let Err(e) = value.apply_merge() {
                let mut r = PolicyReport::file_problem(
                    file,
                    Outcome::Invalid,
                    format!("YAML merge key (<<): {e}"),
                );
                r.document = Some(number);
                reports.push(r);
                continue;
            }
            if value.is_null() {
                continue; // An empty document: kubectl ignores it too.
            }
            reports.extend(validate_object_or_list(&value, file, number));
        }
    }
    if reports.is_empty() {
        reports.push(PolicyReport::file_problem(
            file,
            Outcome::Skipped,
            "no YAML documents".into(),
        ));
    }
    reports
}

/// A `kind: List` (as `kubectl get -o yaml` writes) or `kind: <Kind>List` document is checked
/// item by item; anything else as one object.
pub(super) fn validate_object_or_list(
    value: &Value,
    file: &Path,
    number: usize,
) -> Vec<PolicyReport> {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let items = value.get("items").and_then(Value::as_sequence);
    if let (true, Some(items)) = (kind == "List" || kind.ends_with("List"), items) {
        if items.is_empty() {
            let mut r = PolicyReport::file_problem(file, Outcome::Skipped, "empty List".into());
            r.document = Some(number);
            r.kind = Some(kind.to_string());
            return vec![r];
        }
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                PolicyReport::from_validation(file, Some(number), Some(i), validate_value(item))
            })
            .collect();
    }
    vec![PolicyReport::from_validation(
        file,
        Some(number),
        None,
        validate_value(value),
    )]
}
