//! The `-f/--filter` language of `kubectl karmor observe` (design §6), compiled to a
//! parameterised DuckDB boolean expression.
//!
//! ```text
//! filter     = ws or-expr ws EOF
//! or-expr    = and-expr { ws "||" and-expr }
//! and-expr   = primary { ws ( ";" | "&&" ) primary }
//! primary    = ws ( "(" or-expr ws ")" | comparison )
//! comparison = key ws ( "=" | "!=" ) ws value
//! key        = a field name, ASCII case-insensitive: namespace | workload | pod | container
//!              | node | image | process | parent | path | access | proto | direction | op
//!              | source | result | policy | action | syscall | capability | cluster | kind
//!              | remote | label | port | uid | user | pid | host
//!              (also parent_process, workload_kind: the column names)
//! value      = quoted ws | bare
//! quoted     = '"' { any char except '"' and '\' | '\"' | '\\' } '"'
//! bare       = one or more chars, up to the first ";", "&&", "||", ")" or end of input,
//!              trailing spaces trimmed; it may contain "=", "!", "'", "*", "?", "%", "\" …
//!              but not "(", '"', or a single "&" / "|" (quote the value for those)
//! ws         = { " " }
//! ```
//!
//! `syscall` and `capability` values match in each recorded spelling: `syscall=openat`,
//! `syscall=SYS_OPENAT` and `syscall=SYS_openat` all match rows holding `SYS_OPENAT` or `openat`
//! (likewise `capability=net_raw` and `CAP_NET_RAW`).
//!
//! `;` and `&&` are the same AND; `||` binds looser than AND. In a string value `*` matches any
//! run of characters (including `/`) and `?` exactly one character; every other character is
//! literal. Quoting only changes where a value ends, not how it matches.
//!
//! Every comparison is two-valued: a comparison on a NULL column is false, so `k!=v` is
//! exactly `NOT (k=v)` and is true where `k` is NULL. The SQL is assembled only from fixed
//! fragments and fixed column names; every piece of user text travels as a bound parameter.

use std::fmt;
use std::str::FromStr;

use duckdb::types::{ToSqlOutput, ValueRef};
use duckdb::ToSql;

/// Longest filter accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 4096;
/// Deepest parenthesis nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// A key of the filter language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// `namespace` column.
    Namespace,
    /// `workload` column.
    Workload,
    /// `pod` column.
    Pod,
    /// `container` column.
    Container,
    /// `node` column.
    Node,
    /// `image` column.
    Image,
    /// `process` column.
    Process,
    /// `parent` → `parent_process` column.
    Parent,
    /// `path` column.
    Path,
    /// `access` column.
    Access,
    /// `proto` column.
    Proto,
    /// `direction` column.
    Direction,
    /// `op` column.
    Op,
    /// `source` column.
    Source,
    /// `result` column.
    Result,
    /// `policy` column.
    Policy,
    /// `action` column.
    Action,
    /// `syscall` column.
    Syscall,
    /// `capability` column.
    Capability,
    /// `cluster` column.
    Cluster,
    /// `kind` → `workload_kind` column.
    Kind,
    /// `remote`: `remote_addr` OR `remote_name`.
    Remote,
    /// `label`: any element of the `labels` list (`k=v` strings).
    Label,
    /// `port`: `remote_port` OR `local_port` (0–65535).
    Port,
    /// `uid` column (0–4294967295).
    Uid,
    /// `user`: the `uid` column; `root` means 0, a number means that uid.
    User,
    /// `pid` column (0–2147483647).
    Pid,
    /// `host` column (`true` / `false`).
    Host,
}

/// How a field's values are written and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A string, possibly a glob.
    Text,
    /// A non-negative integer no larger than `max`; no globs.
    Number {
        /// Largest accepted value.
        max: i64,
    },
    /// `true` or `false`.
    Bool,
}

impl Field {
    /// Every field, in the order shown in error messages.
    pub const ALL: [Field; 28] = [
        Field::Namespace,
        Field::Workload,
        Field::Pod,
        Field::Container,
        Field::Node,
        Field::Image,
        Field::Process,
        Field::Parent,
        Field::Path,
        Field::Access,
        Field::Proto,
        Field::Direction,
        Field::Op,
        Field::Source,
        Field::Result,
        Field::Policy,
        Field::Action,
        Field::Syscall,
        Field::Capability,
        Field::Cluster,
        Field::Kind,
        Field::Remote,
        Field::Label,
        Field::Port,
        Field::Uid,
        Field::User,
        Field::Pid,
        Field::Host,
    ];

    /// The key as written in a filter.
    pub fn key(self) -> &'static str {
        match self {
            Field::Namespace => "namespace",
            Field::Workload => "workload",
            Field::Pod => "pod",
            Field::Container => "container",
            Field::Node => "node",
            Field::Image => "image",
            Field::Process => "process",
            Field::Parent => "parent",
            Field::Path => "path",
            Field::Access => "access",
            Field::Proto => "proto",
            Field::Direction => "direction",
            Field::Op => "op",
            Field::Source => "source",
            Field::Result => "result",
            Field::Policy => "policy",
            Field::Action => "action",
            Field::Syscall => "syscall",
            Field::Capability => "capability",
            Field::Cluster => "cluster",
            Field::Kind => "kind",
            Field::Remote => "remote",
            Field::Label => "label",
            Field::Port => "port",
            Field::Uid => "uid",
            Field::User => "user",
            Field::Pid => "pid",
            Field::Host => "host",
        }
    }

    /// Looks a key up, ignoring ASCII case. The column names `parent_process` and
    /// `workload_kind` are accepted as aliases of `parent` and `kind`.
    pub fn from_key(key: &str) -> Option<Field> {
        let lower = key.to_ascii_lowercase();
        match lower.as_str() {
            "parent_process" => return Some(Field::Parent),
            "workload_kind" => return Some(Field::Kind),
            _ => {}
        }
        Field::ALL.into_iter().find(|f| f.key() == lower)
    }

    /// How values of this field are written and compared.
    pub fn kind(self) -> FieldKind {
        match self {
            Field::Port => FieldKind::Number {
                max: i64::from(u16::MAX),
            },
            Field::Uid | Field::User => FieldKind::Number {
                max: i64::from(u32::MAX),
            },
            Field::Pid => FieldKind::Number {
                max: i64::from(i32::MAX),
            },
            Field::Host => FieldKind::Bool,
            _ => FieldKind::Text,
        }
    }

    /// The single string column behind a plain text field (`None` for `remote`, `label` and
    /// the non-text fields).
    fn text_column(self) -> Option<&'static str> {
        Some(match self {
            Field::Namespace => "namespace",
            Field::Workload => "workload",
            Field::Pod => "pod",
            Field::Container => "container",
            Field::Node => "node",
            Field::Image => "image",
            Field::Process => "process",
            Field::Parent => "parent_process",
            Field::Path => "path",
            Field::Access => "access",
            Field::Proto => "proto",
            Field::Direction => "direction",
            Field::Op => "op",
            Field::Source => "source",
            Field::Result => "result",
            Field::Policy => "policy",
            Field::Action => "action",
            Field::Syscall => "syscall",
            Field::Capability => "capability",
            Field::Cluster => "cluster",
            Field::Kind => "workload_kind",
            Field::Remote
            | Field::Label
            | Field::Port
            | Field::Uid
            | Field::User
            | Field::Pid
            | Field::Host => return None,
        })
    }

    fn valid_keys() -> String {
        let keys: Vec<&str> = Field::ALL.iter().map(|f| f.key()).collect();
        keys.join(", ")
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// A string compared for equality.
    Exact(String),
    /// A string glob (`*` any run of characters, `?` one character, all else literal).
    Glob(String),
    /// A number (ports, uids, pids).
    Int(i64),
    /// `true` / `false` (`host`).
    Bool(bool),
}

/// A parsed filter.
///
/// Parsed filters are normalised: `And` and `Or` have at least two children, an `And` never
/// directly contains an `And` and an `Or` never directly contains an `Or` (redundant
/// parentheses are dropped).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    /// All children hold (an empty `And` is true).
    And(Vec<Expr>),
    /// At least one child holds (an empty `Or` is false).
    Or(Vec<Expr>),
    /// `field = value`, or `field != value` when `negated`.
    Cmp {
        /// The key.
        field: Field,
        /// `!=` rather than `=`.
        negated: bool,
        /// The value, typed for the field.
        value: Value,
    },
}

/// A bound parameter of a compiled filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Param {
    /// A string (exact value or translated LIKE pattern).
    Text(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

impl ToSql for Param {
    fn to_sql(&self) -> duckdb::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Text(s) => ToSqlOutput::Borrowed(ValueRef::from(s.as_str())),
            Param::Int(i) => ToSqlOutput::from(*i),
            Param::Bool(b) => ToSqlOutput::from(*b),
        })
    }
}

/// A compiled filter: a boolean SQL expression over the event columns, with one `?` per
/// element of `params`, in order. Use it as
/// `conn.prepare(&format!("… WHERE {}", f.sql))?.query(duckdb::params_from_iter(&f.params))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFilter {
    /// The expression; built only from fixed fragments.
    pub sql: String,
    /// The bound values, in placeholder order.
    pub params: Vec<Param>,
}

impl SqlFilter {
    /// The conjunction of `parts` (each parenthesised, parameters in order); `None` for none.
    pub fn all(parts: impl IntoIterator<Item = SqlFilter>) -> Option<SqlFilter> {
        let parts: Vec<SqlFilter> = parts.into_iter().collect();
        if parts.len() <= 1 {
            return parts.into_iter().next();
        }
        let sql = parts
            .iter()
            .map(|p| format!("({})", p.sql))
            .collect::<Vec<_>>()
            .join(" AND ");
        let params = parts.into_iter().flat_map(|p| p.params).collect();
        Some(SqlFilter { sql, params })
    }
}

/// A filter that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct FilterError {
    /// Byte offset (0-based) into the input where the problem is; always a char boundary and
    /// at most the input's length.
    pub position: usize,
    /// What is wrong.
    pub message: String,
    /// The filter as given (for the caret display).
    pub input: String,
}

impl FilterError {
    /// 1-based column (in characters) of `position`.
    pub fn column(&self) -> usize {
        let pos = floor_char_boundary(&self.input, self.position);
        self.input[..pos].chars().count() + 1
    }

    /// `filter error at column N: message`, then the input (control characters escaped) and
    /// a caret under the position. Long inputs are shown as a window around the position.
    fn render(&self) -> String {
        const WINDOW: usize = 40;
        let pos = floor_char_boundary(&self.input, self.position);
        // (display text, display width) per input char, and the caret's char index.
        let mut cells: Vec<(String, usize)> = Vec::new();
        let mut caret = None;
        for (i, c) in self.input.char_indices() {
            if i == pos {
                caret = Some(cells.len());
            }
            if c.is_control() || is_invisible_format(c) {
                let esc: String = c.escape_debug().collect();
                let w = esc.chars().count();
                cells.push((esc, w));
            } else {
                cells.push((c.to_string(), char_width(c)));
            }
        }
        let caret = caret.unwrap_or(cells.len());
        let (from, to) = if cells.len() > 2 * WINDOW + 1 {
            let from = caret.saturating_sub(WINDOW);
            let to = (caret + WINDOW).min(cells.len());
            (from, to)
        } else {
            (0, cells.len())
        };
        let mut line = String::from("  ");
        let mut pad = 2;
        if from > 0 {
            line.push('…');
            pad += 1;
        }
        for (i, (text, width)) in cells[from..to].iter().enumerate() {
            line.push_str(text);
            if from + i < caret {
                pad += width;
            }
        }
        if to < cells.len() {
            line.push('…');
        }
        format!(
            "filter error at column {}: {}\n{}\n{}^",
            self.column(),
            self.message,
            line,
            " ".repeat(pad)
        )
    }
}

/// Invisible formatting characters that would hide text or reorder the line on a terminal
/// (zero-width characters, bidirectional overrides and isolates, BOM): shown escaped in
/// error messages although they are accepted in values.
fn is_invisible_format(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x2069 | 0xFEFF
    )
}

/// Terminal columns taken by a (non-control) char: 2 for East Asian wide characters and
/// emoji, 1 otherwise. An approximation, good enough to place the caret.
fn char_width(c: char) -> usize {
    let u = u32::from(c);
    let wide = matches!(u,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x2FFFD
        | 0x30000..=0x3FFFD);
    if wide {
        2
    } else {
        1
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Translates a glob (`*`, `?`) into a `LIKE … ESCAPE '\'` pattern: `*` → `%`, `?` → `_`,
/// and the literal characters `%`, `_` and `\` are escaped with `\`.
pub fn glob_to_like(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Whether a string value is a glob (contains `*` or `?`).
pub fn is_glob(value: &str) -> bool {
    value.contains(['*', '?'])
}

/// Parses a filter.
pub fn parse(input: &str) -> Result<Expr, FilterError> {
    let err = |position: usize, message: String| FilterError {
        position,
        message,
        input: input.to_owned(),
    };
    if input.len() > MAX_INPUT_BYTES {
        return Err(err(
            floor_char_boundary(input, MAX_INPUT_BYTES),
            format!(
                "filter is {} bytes long; at most {MAX_INPUT_BYTES} are allowed",
                input.len()
            ),
        ));
    }
    if let Some((i, c)) = input.char_indices().find(|(_, c)| c.is_control()) {
        return Err(err(
            i,
            format!(
                "control character {} (U+{:04X}) is not allowed in a filter",
                c.escape_debug(),
                u32::from(c)
            ),
        ));
    }
    if input.bytes().all(|b| b == b' ') {
        return Err(err(0, "empty filter".to_owned()));
    }
    let mut p = Parser {
        src: input,
        bytes: input.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let expr = p.parse_or(None)?;
    p.skip_ws();
    match p.peek() {
        None => Ok(expr),
        Some(b')') => Err(p.err(p.pos, "unmatched ')'".to_owned())),
        Some(_) => Err(p.err(
            p.pos,
            "expected ';', '&&', '||' or the end of the filter".to_owned(),
        )),
    }
}

/// Parses a filter and compiles it to SQL.
pub fn compile(input: &str) -> Result<SqlFilter, FilterError> {
    Ok(parse(input)?.to_sql())
}

impl FromStr for Expr {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, position: usize, message: String) -> FilterError {
        FilterError {
            position: floor_char_boundary(self.src, position),
            message,
            input: self.src.to_owned(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, i: usize) -> Option<u8> {
        self.bytes.get(i).copied()
    }

    fn at(&self, s: &str) -> bool {
        self.bytes[self.pos..].starts_with(s.as_bytes())
    }

    fn skip_ws(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Is byte offset `i` at `;`, `&&`, `||`, `)` or the end?
    fn is_terminator(&self, i: usize) -> bool {
        match self.peek_at(i) {
            None | Some(b';') | Some(b')') => true,
            Some(b'&') => self.peek_at(i + 1) == Some(b'&'),
            Some(b'|') => self.peek_at(i + 1) == Some(b'|'),
            _ => false,
        }
    }

    fn parse_or(&mut self, after: Option<&'static str>) -> Result<Expr, FilterError> {
        let mut terms = Vec::new();
        push_flat(&mut terms, self.parse_and(after)?, false);
        loop {
            self.skip_ws();
            if self.at("||") {
                self.pos += 2;
                push_flat(&mut terms, self.parse_and(Some("'||'"))?, false);
            } else {
                break;
            }
        }
        Ok(collapse(terms, false))
    }

    fn parse_and(&mut self, after: Option<&'static str>) -> Result<Expr, FilterError> {
        let mut terms = Vec::new();
        push_flat(&mut terms, self.parse_primary(after)?, true);
        loop {
            self.skip_ws();
            if self.at(";") {
                self.pos += 1;
                push_flat(&mut terms, self.parse_primary(Some("';'"))?, true);
            } else if self.at("&&") {
                self.pos += 2;
                push_flat(&mut terms, self.parse_primary(Some("'&&'"))?, true);
            } else {
                break;
            }
        }
        Ok(collapse(terms, true))
    }

    fn parse_primary(&mut self, after: Option<&'static str>) -> Result<Expr, FilterError> {
        self.skip_ws();
        let expected = match after {
            Some(op) => format!("expected a condition (key=value) after {op}"),
            None => "expected a condition (key=value)".to_owned(),
        };
        let open = self.pos;
        match self.peek() {
            None => Err(self.err(self.pos, expected)),
            Some(b'(') => {
                if self.depth >= MAX_DEPTH {
                    return Err(self.err(
                        open,
                        format!("parentheses are nested more than {MAX_DEPTH} deep"),
                    ));
                }
                self.depth += 1;
                self.pos += 1;
                let inner = self.parse_or(Some("'('"))?;
                self.skip_ws();
                match self.peek() {
                    Some(b')') => {
                        self.pos += 1;
                        self.depth -= 1;
                        Ok(inner)
                    }
                    None => Err(self.err(
                        self.pos,
                        format!(
                            "missing ')' to close the '(' at column {}",
                            self.src[..open].chars().count() + 1
                        ),
                    )),
                    Some(_) => {
                        Err(self.err(self.pos, "expected ';', '&&', '||' or ')'".to_owned()))
                    }
                }
            }
            Some(b')') => Err(self.err(self.pos, format!("{expected}, found ')'"))),
            Some(b';') => Err(self.err(self.pos, format!("{expected}, found ';'"))),
            Some(b'&') if self.at("&&") => {
                Err(self.err(self.pos, format!("{expected}, found '&&'")))
            }
            Some(b'|') if self.at("||") => {
                Err(self.err(self.pos, format!("{expected}, found '||'")))
            }
            Some(_) => self.parse_comparison(),
        }
    }

    fn parse_comparison(&mut self) -> Result<Expr, FilterError> {
        let key_start = self.pos;
        while let Some(b) = self.peek() {
            if matches!(
                b,
                b' ' | b'=' | b'!' | b';' | b'&' | b'|' | b'(' | b')' | b'"'
            ) {
                break;
            }
            // Non-ASCII bytes are skipped whole chars at a time; they end up in an unknown key.
            self.pos += 1;
        }
        // `pos` only stopped at ASCII bytes (or the end), so it is a char boundary.
        let key = &self.src[key_start..self.pos];
        if key.is_empty() {
            return Err(self.err(
                key_start,
                "expected a field name before the operator (e.g. namespace=default)".to_owned(),
            ));
        }
        let field = Field::from_key(key).ok_or_else(|| {
            self.err(
                key_start,
                format!(
                    "unknown field {}; valid fields are: {}",
                    shorten(key),
                    Field::valid_keys()
                ),
            )
        })?;
        self.skip_ws();
        let negated = if self.at("!=") {
            self.pos += 2;
            true
        } else if self.at("=") {
            self.pos += 1;
            false
        } else {
            return Err(self.err(
                self.pos,
                format!("expected '=' or '!=' after {}", field.key()),
            ));
        };
        self.skip_ws();
        let value_start = self.pos;
        let raw = self.parse_value(field)?;
        let value = typed_value(field, raw).map_err(|m| self.err(value_start, m))?;
        Ok(Expr::Cmp {
            field,
            negated,
            value,
        })
    }

    /// Reads a quoted or bare value; `pos` is at its first character.
    fn parse_value(&mut self, field: Field) -> Result<String, FilterError> {
        let start = self.pos;
        if self.is_terminator(start) {
            return Err(self.err(start, format!("missing value for {}", field.key())));
        }
        if self.peek() == Some(b'"') {
            return self.parse_quoted();
        }
        let mut i = start;
        while !self.is_terminator(i) {
            match self.bytes[i] {
                b'(' => {
                    return Err(self.err(
                        i,
                        "'(' in a value: put the value in double quotes".to_owned(),
                    ))
                }
                b'"' => {
                    return Err(self.err(
                        i,
                        "'\"' inside an unquoted value: quote the whole value and write \\\" for a quote"
                            .to_owned(),
                    ))
                }
                b'&' | b'|' => {
                    let c = char::from(self.bytes[i]);
                    return Err(self.err(
                        i,
                        format!(
                            "single '{c}' in a value: write '{c}{c}' for {}, or put the value in double quotes",
                            if c == '&' { "AND" } else { "OR" }
                        ),
                    ));
                }
                _ => i += 1,
            }
        }
        self.pos = i;
        // Terminators are ASCII, so `start..i` lies on char boundaries.
        Ok(self.src[start..i].trim_end_matches(' ').to_owned())
    }

    /// Reads a double-quoted value; `pos` is at the opening quote.
    fn parse_quoted(&mut self) -> Result<String, FilterError> {
        let open = self.pos;
        let mut out = String::new();
        let mut chars = self.src[open + 1..].char_indices();
        loop {
            let Some((off, c)) = chars.next() else {
                return Err(self.err(open, "unterminated quoted value".to_owned()));
            };
            let at = open + 1 + off;
            match c {
                '"' => {
                    self.pos = at + 1;
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\'))) => out.push(e),
                    Some(_) => {
                        return Err(self.err(
                            at,
                            "unknown escape: inside quotes only \\\" and \\\\ are escapes"
                                .to_owned(),
                        ))
                    }
                    None => return Err(self.err(open, "unterminated quoted value".to_owned())),
                },
                _ => out.push(c),
            }
        }
        self.skip_ws();
        if !self.is_terminator(self.pos) {
            return Err(self.err(
                self.pos,
                "expected ';', '&&', '||' or ')' after the quoted value".to_owned(),
            ));
        }
        Ok(out)
    }
}

/// Whether a string can be written as a bare value and read back unchanged.
fn can_be_bare(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(' ')
        && !s.ends_with(' ')
        && !s.contains([';', '(', ')', '"', '&', '|'])
}

/// At most 40 characters of user text, quoted, for messages.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

fn push_flat(terms: &mut Vec<Expr>, e: Expr, and: bool) {
    match e {
        Expr::And(v) if and => terms.extend(v),
        Expr::Or(v) if !and => terms.extend(v),
        e => terms.push(e),
    }
}

fn collapse(mut terms: Vec<Expr>, and: bool) -> Expr {
    if terms.len() == 1 {
        if let Some(e) = terms.pop() {
            return e;
        }
    }
    if and {
        Expr::And(terms)
    } else {
        Expr::Or(terms)
    }
}

fn typed_value(field: Field, raw: String) -> Result<Value, String> {
    match field.kind() {
        FieldKind::Text => Ok(if is_glob(&raw) {
            Value::Glob(raw)
        } else {
            Value::Exact(raw)
        }),
        FieldKind::Bool => {
            if raw.eq_ignore_ascii_case("true") {
                Ok(Value::Bool(true))
            } else if raw.eq_ignore_ascii_case("false") {
                Ok(Value::Bool(false))
            } else {
                Err(format!(
                    "{} must be true or false, not {}",
                    field.key(),
                    shorten(&raw)
                ))
            }
        }
        FieldKind::Number { max } => {
            if field == Field::User && raw == "root" {
                return Ok(Value::Int(0));
            }
            if is_glob(&raw) {
                return Err(format!("{} takes a number, not a glob", field.key()));
            }
            let n = parse_number(&raw, max);
            match n {
                Some(n) => Ok(Value::Int(n)),
                None if field == Field::User && !raw.is_empty() && !raw.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
                    "user {} cannot be resolved from recorded events (only root is known by name); use its numeric uid, e.g. user=1000 or uid=1000",
                    shorten(&raw)
                )),
                None => Err(format!(
                    "{} must be a number from 0 to {max}, not {}",
                    field.key(),
                    shorten(&raw)
                )),
            }
        }
    }
}

/// Decimal digits only (no sign), at most `max`.
fn parse_number(raw: &str, max: i64) -> Option<i64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: i64 = 0;
    for b in raw.bytes() {
        n = n.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
        if n > max {
            return None;
        }
    }
    Some(n)
}

impl Expr {
    /// The fields it compares, each once, in order of appearance.
    pub fn fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields(&self, out: &mut Vec<Field>) {
        match self {
            Expr::And(terms) | Expr::Or(terms) => {
                for t in terms {
                    t.collect_fields(out);
                }
            }
            Expr::Cmp { field, .. } => {
                if !out.contains(field) {
                    out.push(*field);
                }
            }
        }
    }

    /// Compiles to a two-valued SQL boolean expression with bound parameters.
    pub fn to_sql(&self) -> SqlFilter {
        let mut out = SqlFilter {
            sql: String::new(),
            params: Vec::new(),
        };
        self.write_sql(&mut out);
        out
    }

    fn write_sql(&self, out: &mut SqlFilter) {
        match self {
            Expr::And(terms) | Expr::Or(terms) => {
                let and = matches!(self, Expr::And(_));
                match terms.as_slice() {
                    [] => out.sql.push_str(if and { "true" } else { "false" }),
                    [only] => only.write_sql(out),
                    _ => {
                        out.sql.push('(');
                        for (i, t) in terms.iter().enumerate() {
                            if i > 0 {
                                out.sql.push_str(if and { " AND " } else { " OR " });
                            }
                            t.write_sql(out);
                        }
                        out.sql.push(')');
                    }
                }
            }
            Expr::Cmp {
                field,
                negated,
                value,
            } => {
                if *negated {
                    out.sql.push_str("(NOT ");
                }
                write_cmp(*field, value, out);
                if *negated {
                    out.sql.push(')');
                }
            }
        }
    }
}

/// The prefix of the fields whose values are names recorded in several spellings: `syscall`
/// (`SYS_OPENAT` as KubeArmor and the collector write it, `openat` as policies name it) and
/// `capability` (`CAP_NET_RAW`, `net_raw`).
fn name_prefix(field: Field) -> Option<&'static str> {
    match field {
        Field::Syscall => Some("SYS_"),
        Field::Capability => Some("CAP_"),
        _ => None,
    }
}

/// The three spellings a `syscall=`/`capability=` value matches: as written, as
/// `PREFIX_UPPER` and as `lower` without the prefix (`openat`, `SYS_openat` and `SYS_OPENAT`
/// all match `SYS_OPENAT` and `openat`). Globs keep their `*` and `?`.
pub fn name_spellings(prefix: &str, value: &str) -> [String; 3] {
    let bare = match value.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => &value[prefix.len()..],
        _ => value,
    };
    [
        value.to_string(),
        format!("{prefix}{}", bare.to_ascii_uppercase()),
        bare.to_ascii_lowercase(),
    ]
}

/// Writes `coalesce(<comparison>, false)` (or a constant `false` for a value that can never
/// match the field, which the parser never produces). Column names and SQL fragments are
/// fixed strings; the value only ever becomes a bound parameter.
fn write_cmp(field: Field, value: &Value, out: &mut SqlFilter) {
    let sql: &'static str = match field.kind() {
        FieldKind::Text => {
            if let Some(prefix) = name_prefix(field) {
                let (glob, text) = match value {
                    Value::Glob(g) => (true, g.as_str()),
                    Value::Exact(s) => (false, s.as_str()),
                    _ => {
                        out.sql.push_str("false");
                        return;
                    }
                };
                let col = if field == Field::Syscall {
                    "syscall"
                } else {
                    "capability"
                };
                let op = if glob { "LIKE ? ESCAPE '\\'" } else { "= ?" };
                out.sql.push_str(&format!(
                    "coalesce({col} {op} OR {col} {op} OR {col} {op}, false)"
                ));
                for v in name_spellings(prefix, text) {
                    out.params
                        .push(Param::Text(if glob { glob_to_like(&v) } else { v }));
                }
                return;
            }
            let (glob, param) = match value {
                Value::Exact(s) => (false, s.clone()),
                Value::Glob(g) => (true, glob_to_like(g)),
                Value::Int(n) => (false, n.to_string()),
                Value::Bool(b) => (false, b.to_string()),
            };
            let (sql, uses) = match (field, glob) {
                (Field::Remote, false) => (
                    "coalesce(remote_addr = ? OR remote_name = ?, false)",
                    2,
                ),
                (Field::Remote, true) => (
                    "coalesce(remote_addr LIKE ? ESCAPE '\\' OR remote_name LIKE ? ESCAPE '\\', false)",
                    2,
                ),
                (Field::Label, false) => ("coalesce(list_contains(labels, ?), false)", 1),
                (Field::Label, true) => (
                    "coalesce(list_bool_or(list_transform(labels, lambda lbl: lbl LIKE ? ESCAPE '\\')), false)",
                    1,
                ),
                _ => match field.text_column() {
                    Some(col) => {
                        out.sql.push_str("coalesce(");
                        out.sql.push_str(col);
                        out.sql.push_str(if glob {
                            " LIKE ? ESCAPE '\\', false)"
                        } else {
                            " = ?, false)"
                        });
                        out.params.push(Param::Text(param));
                        return;
                    }
                    // Every text field but remote and label has a column.
                    None => ("false", 0),
                },
            };
            for _ in 0..uses {
                out.params.push(Param::Text(param.clone()));
            }
            sql
        }
        FieldKind::Number { max } => match value {
            Value::Int(n) if (0..=max).contains(n) => {
                let (sql, uses) = match field {
                    Field::Port => ("coalesce(remote_port = ? OR local_port = ?, false)", 2),
                    Field::Pid => ("coalesce(pid = ?, false)", 1),
                    _ => ("coalesce(uid = ?, false)", 1),
                };
                for _ in 0..uses {
                    out.params.push(Param::Int(*n));
                }
                sql
            }
            _ => "false",
        },
        FieldKind::Bool => match value {
            Value::Bool(b) => {
                out.params.push(Param::Bool(*b));
                "coalesce(host = ?, false)"
            }
            _ => "false",
        },
    };
    out.sql.push_str(sql);
}

/// Writes the filter back in canonical syntax (`;` for AND, values bare unless they need
/// quotes, no spaces, no redundant parentheses). For a parsed filter the text is never longer
/// than the input it came from, and parsing it gives back an equal [`Expr`].
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(terms) | Expr::Or(terms) => {
                let and = matches!(self, Expr::And(_));
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(if and { ";" } else { "||" })?;
                    }
                    // Only an And inside an Or needs no parentheses.
                    let bare = matches!(t, Expr::Cmp { .. }) || (!and && matches!(t, Expr::And(_)));
                    if bare {
                        write!(f, "{t}")?;
                    } else {
                        write!(f, "({t})")?;
                    }
                }
                Ok(())
            }
            Expr::Cmp {
                field,
                negated,
                value,
            } => {
                f.write_str(field.key())?;
                f.write_str(if *negated { "!=" } else { "=" })?;
                match value {
                    Value::Exact(s) | Value::Glob(s) if can_be_bare(s) => f.write_str(s),
                    Value::Exact(s) | Value::Glob(s) => {
                        f.write_str("\"")?;
                        for c in s.chars() {
                            if c == '"' || c == '\\' {
                                f.write_str("\\")?;
                            }
                            write!(f, "{c}")?;
                        }
                        f.write_str("\"")
                    }
                    Value::Int(n) => write!(f, "{n}"),
                    Value::Bool(b) => write!(f, "{b}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(field: Field, value: &str) -> Expr {
        Expr::Cmp {
            field,
            negated: false,
            value: Value::Exact(value.to_owned()),
        }
    }

    fn err(input: &str) -> FilterError {
        match parse(input) {
            Ok(e) => panic!("{input:?} parsed as {e:?}"),
            Err(e) => e,
        }
    }

    fn texts(params: &[Param]) -> Vec<String> {
        params
            .iter()
            .map(|p| match p {
                Param::Text(s) => s.clone(),
                Param::Int(n) => n.to_string(),
                Param::Bool(b) => b.to_string(),
            })
            .collect()
    }

    #[test]
    fn or_binds_looser_than_and() {
        let e = parse("pod=1||pod=2;node=3").unwrap();
        assert_eq!(
            e,
            Expr::Or(vec![
                cmp(Field::Pod, "1"),
                Expr::And(vec![cmp(Field::Pod, "2"), cmp(Field::Node, "3")]),
            ])
        );
        let e = parse("pod=1;pod=2||node=3").unwrap();
        assert_eq!(
            e,
            Expr::Or(vec![
                Expr::And(vec![cmp(Field::Pod, "1"), cmp(Field::Pod, "2")]),
                cmp(Field::Node, "3"),
            ])
        );
        let f = compile("pod=1||pod=2;node=3").unwrap();
        assert_eq!(
            f.sql,
            "(coalesce(pod = ?, false) OR (coalesce(pod = ?, false) AND coalesce(node = ?, false)))"
        );
        assert_eq!(texts(&f.params), ["1", "2", "3"]);
    }

    #[test]
    fn semicolon_and_double_ampersand_are_the_same_and() {
        assert_eq!(
            parse("pod=a;node=b&&container=c").unwrap(),
            parse("pod=a && node=b ; container=c").unwrap()
        );
        assert_eq!(
            parse("pod=a;node=b&&container=c").unwrap(),
            Expr::And(vec![
                cmp(Field::Pod, "a"),
                cmp(Field::Node, "b"),
                cmp(Field::Container, "c"),
            ])
        );
    }

    #[test]
    fn parentheses_group_and_are_flattened_when_redundant() {
        assert_eq!(
            parse("(pod=1||pod=2);node=3").unwrap(),
            Expr::And(vec![
                Expr::Or(vec![cmp(Field::Pod, "1"), cmp(Field::Pod, "2")]),
                cmp(Field::Node, "3"),
            ])
        );
        assert_eq!(
            parse("((pod=a;pod=b));(pod=c)").unwrap(),
            Expr::And(vec![
                cmp(Field::Pod, "a"),
                cmp(Field::Pod, "b"),
                cmp(Field::Pod, "c"),
            ])
        );
        assert_eq!(parse(" ( ( pod = a ) ) ").unwrap(), cmp(Field::Pod, "a"));
    }

    #[test]
    fn the_design_example_parses() {
        let e = parse("user=root||(user=1000&&process=/bin/*)").unwrap();
        assert_eq!(
            e,
            Expr::Or(vec![
                Expr::Cmp {
                    field: Field::User,
                    negated: false,
                    value: Value::Int(0)
                },
                Expr::And(vec![
                    Expr::Cmp {
                        field: Field::User,
                        negated: false,
                        value: Value::Int(1000)
                    },
                    Expr::Cmp {
                        field: Field::Process,
                        negated: false,
                        value: Value::Glob("/bin/*".into())
                    },
                ]),
            ])
        );
        let f = e.to_sql();
        assert_eq!(
            f.sql,
            "(coalesce(uid = ?, false) OR (coalesce(uid = ?, false) AND coalesce(process LIKE ? ESCAPE '\\', false)))"
        );
        assert_eq!(
            f.params,
            [
                Param::Int(0),
                Param::Int(1000),
                Param::Text("/bin/%".into())
            ]
        );
    }

    #[test]
    fn bare_values_are_trimmed_and_may_contain_equals() {
        assert_eq!(parse("pod =  a b  ").unwrap(), cmp(Field::Pod, "a b"));
        assert_eq!(
            parse("label=app=web").unwrap(),
            cmp(Field::Label, "app=web")
        );
        assert_eq!(parse("pod==x").unwrap(), cmp(Field::Pod, "=x"));
        assert_eq!(
            parse("path=C:\\dir\\x' OR 1=1 --").unwrap(),
            cmp(Field::Path, "C:\\dir\\x' OR 1=1 --")
        );
        assert_eq!(
            parse("pod=ünïcødé 日本").unwrap(),
            cmp(Field::Pod, "ünïcødé 日本")
        );
    }

    #[test]
    fn quoted_values_carry_separators_and_escapes() {
        assert_eq!(
            parse(r#"path="a;b||c(d)&e|f)""#).unwrap(),
            cmp(Field::Path, "a;b||c(d)&e|f)")
        );
        assert_eq!(
            parse(r#"pod = " x " ;node=y"#).unwrap(),
            Expr::And(vec![cmp(Field::Pod, " x "), cmp(Field::Node, "y")])
        );
        assert_eq!(
            parse(r#"pod="a\"b\\c""#).unwrap(),
            cmp(Field::Pod, "a\"b\\c")
        );
        assert_eq!(parse(r#"pod="""#).unwrap(), cmp(Field::Pod, ""));
        // Quoting does not turn off globs.
        assert_eq!(
            parse(r#"pod="a*""#).unwrap(),
            Expr::Cmp {
                field: Field::Pod,
                negated: false,
                value: Value::Glob("a*".into())
            }
        );
        // Numbers may be quoted too.
        assert_eq!(
            parse(r#"port="80""#).unwrap(),
            Expr::Cmp {
                field: Field::Port,
                negated: false,
                value: Value::Int(80)
            }
        );
    }

    #[test]
    fn quoting_errors_have_positions() {
        let e = err(r#"pod="a\nb""#);
        assert_eq!(e.position, 6);
        assert!(e.message.contains("unknown escape"), "{e}");
        let e = err(r#"pod=x;node="abc"#);
        assert_eq!(e.position, 11);
        assert!(e.message.contains("unterminated"), "{e}");
        let e = err(r#"pod="abc\"#);
        assert_eq!(e.position, 4);
        let e = err(r#"pod="a"b"#);
        assert_eq!(e.position, 7);
        let e = err(r#"pod=a"b""#);
        assert_eq!(e.position, 5);
        let e = err("pod=f(x)");
        assert_eq!(e.position, 5);
        let e = err("pod=a|b");
        assert_eq!((e.position, e.message.contains("'||'")), (5, true));
        let e = err("pod=a&b");
        assert_eq!(e.position, 5);
    }

    #[test]
    fn not_equal_negates() {
        let e = parse("namespace!=kube-system").unwrap();
        assert_eq!(
            e,
            Expr::Cmp {
                field: Field::Namespace,
                negated: true,
                value: Value::Exact("kube-system".into())
            }
        );
        assert_eq!(e.to_sql().sql, "(NOT coalesce(namespace = ?, false))");
        assert_eq!(
            parse("namespace != kube-*").unwrap().to_sql().sql,
            "(NOT coalesce(namespace LIKE ? ESCAPE '\\', false))"
        );
    }

    #[test]
    fn globs_translate_with_literal_percent_underscore_and_backslash_escaped() {
        assert_eq!(glob_to_like("a%b_c\\d*e?"), "a\\%b\\_c\\\\d%e_");
        assert_eq!(glob_to_like("[x]"), "[x]");
        // No glob characters: exact comparison, '%' and '_' passed through untouched.
        let f = compile("path=/tmp/100%_done").unwrap();
        assert_eq!(f.sql, "coalesce(path = ?, false)");
        assert_eq!(f.params, [Param::Text("/tmp/100%_done".into())]);
        let f = compile("path=/tmp/a_b%*").unwrap();
        assert_eq!(f.sql, "coalesce(path LIKE ? ESCAPE '\\', false)");
        assert_eq!(f.params, [Param::Text("/tmp/a\\_b\\%%".into())]);
        let f = compile(r"path=C:\x?").unwrap();
        assert_eq!(f.params, [Param::Text(r"C:\\x_".into())]);
    }

    #[test]
    fn multi_column_fields() {
        let f = compile("remote=10.0.*").unwrap();
        assert_eq!(
            f.sql,
            "coalesce(remote_addr LIKE ? ESCAPE '\\' OR remote_name LIKE ? ESCAPE '\\', false)"
        );
        assert_eq!(texts(&f.params), ["10.0.%", "10.0.%"]);
        let f = compile("remote!=example.com").unwrap();
        assert_eq!(
            f.sql,
            "(NOT coalesce(remote_addr = ? OR remote_name = ?, false))"
        );
        let f = compile("port=443").unwrap();
        assert_eq!(f.sql, "coalesce(remote_port = ? OR local_port = ?, false)");
        assert_eq!(f.params, [Param::Int(443), Param::Int(443)]);
        let f = compile("label=app=web").unwrap();
        assert_eq!(f.sql, "coalesce(list_contains(labels, ?), false)");
        let f = compile("label=app=*").unwrap();
        assert!(f.sql.contains("lbl LIKE ? ESCAPE"), "{}", f.sql);
        assert_eq!(texts(&f.params), ["app=%"]);
        let f = compile("parent=/bin/sh;kind=Deployment").unwrap();
        assert_eq!(
            f.sql,
            "(coalesce(parent_process = ?, false) AND coalesce(workload_kind = ?, false))"
        );
        let f = compile("host=TRUE;pid=1;uid=4294967295").unwrap();
        assert_eq!(
            f.sql,
            "(coalesce(host = ?, false) AND coalesce(pid = ?, false) AND coalesce(uid = ?, false))"
        );
        assert_eq!(
            f.params,
            [Param::Bool(true), Param::Int(1), Param::Int(4294967295)]
        );
    }

    #[test]
    fn every_field_compiles_to_a_fixed_column() {
        for field in Field::ALL {
            let value = match field.kind() {
                FieldKind::Text => Value::Exact("x".into()),
                FieldKind::Number { .. } => Value::Int(1),
                FieldKind::Bool => Value::Bool(false),
            };
            let e = Expr::Cmp {
                field,
                negated: false,
                value,
            };
            let f = e.to_sql();
            assert!(f.sql.starts_with("coalesce("), "{field}: {}", f.sql);
            assert_eq!(
                f.sql.matches('?').count(),
                f.params.len(),
                "{field}: {}",
                f.sql
            );
            assert_eq!(Field::from_key(&field.key().to_uppercase()), Some(field));
            // Display round trip.
            assert_eq!(parse(&e.to_string()).unwrap(), e);
        }
        assert_eq!(Field::from_key("Parent_Process"), Some(Field::Parent));
        assert_eq!(Field::from_key("workload_kind"), Some(Field::Kind));
    }

    #[test]
    fn impossible_values_compile_to_false() {
        for (field, value) in [
            (Field::Port, Value::Int(70000)),
            (Field::Port, Value::Exact("80".into())),
            (Field::Pid, Value::Int(-1)),
            (Field::Host, Value::Int(1)),
        ] {
            let f = Expr::Cmp {
                field,
                negated: true,
                value,
            }
            .to_sql();
            assert_eq!(f.sql, "(NOT false)");
            assert!(f.params.is_empty());
        }
        assert_eq!(Expr::And(vec![]).to_sql().sql, "true");
        assert_eq!(Expr::Or(vec![]).to_sql().sql, "false");
    }

    #[test]
    fn user_root_is_uid_zero_and_other_names_are_rejected() {
        for input in [
            "user=root",
            "USER = root",
            r#"user="root""#,
            "user=0",
            "uid=0",
        ] {
            let f = compile(input).unwrap();
            assert_eq!(f.sql, "coalesce(uid = ?, false)", "{input}");
            assert_eq!(f.params, [Param::Int(0)], "{input}");
        }
        assert_eq!(compile("user=1000").unwrap().params, [Param::Int(1000)]);
        let e = err("pod=x;user=app");
        assert_eq!(e.position, 11);
        assert!(e.message.contains("numeric uid"), "{e}");
        assert!(err("user=Root").message.contains("numeric uid"));
        let e = err("user=-1");
        assert_eq!(e.position, 5);
        assert!(err("uid=root").message.contains("0 to 4294967295"));
        assert!(err("uid=4294967296").message.contains("0 to 4294967295"));
    }

    #[test]
    fn error_positions() {
        // Unbalanced parentheses.
        let e = err("(pod=a");
        assert_eq!(e.position, 6);
        assert!(e.message.contains("missing ')'"), "{e}");
        let e = err("(pod=a;(node=b)");
        assert_eq!(e.position, 15);
        assert!(e.message.contains("column 1"), "{e}");
        let e = err("pod=a)");
        assert_eq!(e.position, 5);
        assert_eq!(e.message, "unmatched ')'");
        let e = err("(pod=a))");
        assert_eq!(e.position, 7);
        let e = err("()");
        assert_eq!(e.position, 1);
        let e = err("(pod=a) node=b");
        assert_eq!(e.position, 8);
        // Missing values.
        let e = err("pod=");
        assert_eq!(
            (e.position, e.message.as_str()),
            (4, "missing value for pod")
        );
        let e = err("pod= ;node=x");
        assert_eq!(e.position, 5);
        let e = err("(pod=)");
        assert_eq!(e.position, 5);
        let e = err("pod=a;node=||x=1");
        assert_eq!(e.position, 11);
        // Missing key or operator.
        let e = err("=x");
        assert_eq!(e.position, 0);
        let e = err("pod");
        assert_eq!(e.position, 3);
        assert!(e.message.contains("'=' or '!='"), "{e}");
        let e = err("pod ! = x");
        assert_eq!(e.position, 4);
        // Unknown keys.
        let e = err("pod=a;bogus=1");
        assert_eq!(e.position, 6);
        assert!(e.message.contains("\"bogus\""), "{e}");
        assert!(e.message.contains("namespace, workload, pod"), "{e}");
        assert!(e.message.contains("host"), "{e}");
        let e = err("namé=1");
        assert_eq!(e.position, 0);
        // Bad numbers.
        let e = err("pod=a;port=http");
        assert_eq!(e.position, 11);
        assert!(e.message.contains("0 to 65535"), "{e}");
        assert_eq!(err("port=65536").position, 5);
        assert_eq!(err("port=99999999999999999999999").position, 5);
        assert_eq!(err("port= 8*").position, 6);
        assert!(err("port=8*").message.contains("glob"));
        assert_eq!(err("pid=2147483648").position, 4);
        assert_eq!(err("host=yes").position, 5);
        // Dangling operators.
        let e = err("pod=a||");
        assert_eq!(e.position, 7);
        assert!(e.message.contains("after '||'"), "{e}");
        assert_eq!(err("pod=a||  ").position, 9);
        assert_eq!(err("pod=a;").position, 6);
        assert_eq!(err("pod=a&&").position, 7);
        let e = err("||pod=a");
        assert_eq!(e.position, 0);
        let e = err("pod=a;;node=b");
        assert_eq!(e.position, 6);
        let e = err("pod=a||)");
        assert_eq!(e.position, 7);
    }

    #[test]
    fn limits() {
        assert_eq!(err("").message, "empty filter");
        assert_eq!(err("   ").message, "empty filter");
        assert_eq!(err("").position, 0);

        let long = format!("pod={}", "a".repeat(MAX_INPUT_BYTES));
        let e = err(&long);
        assert_eq!(e.position, MAX_INPUT_BYTES);
        assert!(e.message.contains("4096"), "{e}");
        let ok = format!("pod={}", "a".repeat(MAX_INPUT_BYTES - 4));
        assert!(parse(&ok).is_ok());
        // The position stays on a char boundary.
        let long = format!("pod={}", "é".repeat(MAX_INPUT_BYTES));
        let e = err(&long);
        assert!(e.position <= MAX_INPUT_BYTES && long.is_char_boundary(e.position));

        let e = err("pod=a\tb");
        assert_eq!(e.position, 5);
        assert!(e.message.contains("U+0009"), "{e}");
        assert_eq!(err("pod=é\u{85}").position, 6);
        assert_eq!(err("pod=a\u{7f}").position, 5);
        assert_eq!(err("\0").position, 0);

        let deep = |n: usize| format!("{}pod=a{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&deep(MAX_DEPTH)).is_ok());
        let e = err(&deep(MAX_DEPTH + 1));
        assert_eq!(e.position, MAX_DEPTH);
        assert!(e.message.contains("nested"), "{e}");
        let e = err(&"(".repeat(10_000));
        assert!(
            e.message.contains("longer") || e.message.contains("4096"),
            "{e}"
        );
        let e = err(&"(".repeat(4000));
        assert_eq!(e.position, MAX_DEPTH);

        // Long flat chains stay flat.
        let chain = vec!["pod=a"; 500].join("||");
        match parse(&chain).unwrap() {
            Expr::Or(v) => assert_eq!(v.len(), 500),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_display_shows_column_input_and_caret() {
        let e = err("pod=a;bogus=1");
        let shown = e.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 3, "{shown}");
        assert!(lines[0].starts_with("filter error at column 7: unknown field \"bogus\""));
        assert_eq!(lines[1], "  pod=a;bogus=1");
        assert_eq!(lines[2], "        ^");
        assert_eq!(e.column(), 7);

        // Control characters are escaped and the caret accounts for the escape's width.
        let e = err("pod=\tb");
        let shown = e.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(
            lines[0],
            "filter error at column 5: control character \\t (U+0009) is not allowed in a filter"
        );
        assert_eq!(lines[1], "  pod=\\tb");
        assert_eq!(lines[2], "      ^");

        // Bidi overrides and zero-width characters are escaped too (they are valid in values).
        let e = err("pod=\u{202e}x\u{200b};x=1");
        let shown = e.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[1], "  pod=\\u{202e}x\\u{200b};x=1");
        assert_eq!(lines[2], format!("{}^", " ".repeat(2 + 4 + 8 + 1 + 8 + 1)));

        // Columns count characters, not bytes; wide characters take two cells.
        let e = err("pod=日本;x=1");
        assert_eq!(e.position, 11);
        assert_eq!(e.column(), 8);
        let shown = e.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[2], format!("{}^", " ".repeat(2 + 4 + 4 + 1)));

        // At the end of the input the caret sits just past it.
        let shown = err("(pod=a").to_string();
        assert_eq!(shown.lines().nth(2), Some("        ^"));

        // Long inputs are windowed around the position.
        let long = format!("{}bogus=1", "pod=a;".repeat(100));
        let shown = err(&long).to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert!(
            lines[1].starts_with("  …") && lines[1].ends_with("bogus=1"),
            "{shown}"
        );
        assert_eq!(&lines[1][lines[2].len() - 1 + 2..][..5], "bogus");
    }

    #[test]
    fn display_is_canonical_short_and_round_trips() {
        for (input, canonical) in [
            ("pod=1||pod=2;node=3", "pod=1||pod=2;node=3"),
            (
                "( pod = 1 || pod=2 ) && node != 3",
                "(pod=1||pod=2);node!=3",
            ),
            (
                "((pod=1||pod=2)||node=3);(label=a=b||remote=x*)",
                "(pod=1||pod=2||node=3);(label=a=b||remote=x*)",
            ),
            (
                r#"path="a\"b\\c;d";USER=root;port=0080;host=FALSE;pod=" x""#,
                r#"path="a\"b\\c;d";user=0;port=80;host=false;pod=" x""#,
            ),
            (r#"pod="plain";node="""#, r#"pod=plain;node="""#),
            (
                "parent_process=/bin/sh||workload_kind=Job",
                "parent=/bin/sh||kind=Job",
            ),
        ] {
            let e = parse(input).unwrap();
            let shown = e.to_string();
            assert_eq!(shown, canonical, "{input}");
            assert!(shown.len() <= input.len(), "{input} -> {shown}");
            assert_eq!(parse(&shown).unwrap(), e, "{input} -> {shown}");
        }
    }

    #[test]
    fn param_binds_as_its_duckdb_type() {
        use duckdb::types::ToSqlOutput;
        assert_eq!(
            Param::Text("x".into()).to_sql().unwrap(),
            ToSqlOutput::Borrowed(ValueRef::Text(b"x"))
        );
        assert_eq!(
            Param::Int(7).to_sql().unwrap(),
            ToSqlOutput::Owned(duckdb::types::Value::BigInt(7))
        );
        assert_eq!(
            Param::Bool(true).to_sql().unwrap(),
            ToSqlOutput::Owned(duckdb::types::Value::Boolean(true))
        );
    }
}
