//! Reading whole files of KubeArmor JSON telemetry: JSON lines, arrays and concatenated
//! objects, tolerant of bad records, with a size cap per record.

use super::*;

/// Reads KubeArmor JSON telemetry and maps every record with [`to_event`] (source
/// [`Source::Import`]).
///
/// Accepted layouts, told apart by the start of the input (a UTF-8 byte-order mark and leading
/// whitespace are skipped):
///
/// - **JSON lines** (`karmor logs --json`): one object per line; blank lines are skipped.
/// - **A JSON array** of objects (first character `[`), laid out in any way. Errors report the
///   line where the element starts.
/// - **Concatenated pretty-printed objects** (`karmor logs --output pretty-json`; first line
///   `{` alone). Errors report the line where the object starts; an object cut short is
///   reported, and reading resumes at the next line holding `{` alone.
///
/// A record that cannot be imported — not JSON, not an object, longer than
/// [`MAX_RECORD_BYTES`], a field of the wrong type, a [`MappingError`] — is recorded in
/// [`ImportOutcome::errors`] with its 1-based line and the rest of the input is still read. A
/// read error ends the input and is recorded the same way. Never panics on any input.
pub fn read_json_logs<R: BufRead>(reader: R) -> ImportOutcome {
    read_json_logs_limited(reader, MAX_RECORD_BYTES)
}

pub(super) fn read_json_logs_limited<R: BufRead>(mut reader: R, limit: usize) -> ImportOutcome {
    let mut sink = Sink {
        out: ImportOutcome::default(),
        source: Source::Import,
    };
    let mut lines = LineCount::default();
    match skip_leading_whitespace(&mut reader, &mut lines) {
        Err(e) => sink.error(lines.current(), read_error(&e)),
        Ok(None) => {}
        Ok(Some(b'[')) => {
            reader.consume(1);
            lines.byte(b'[');
            let mut splitter = Splitter::new(SplitMode::Array, limit);
            run_splitter(&mut reader, &mut splitter, &mut lines, &mut sink);
        }
        Ok(Some(_)) => read_lines(&mut reader, limit, &mut lines, &mut sink),
    }
    sink.out.lines = lines.total();
    sink.out
}

/// Where records go.
pub(super) struct Sink {
    pub(super) out: ImportOutcome,
    pub(super) source: Source,
}

impl Sink {
    pub(super) fn record(&mut self, line: u64, bytes: &[u8]) {
        match parse_record(bytes, line, self.source) {
            Ok((event, timed)) => {
                if !timed {
                    self.out.without_timestamp += 1;
                }
                self.out.events.push(event);
            }
            Err(message) => self.error(line, message),
        }
    }

    pub(super) fn error(&mut self, line: u64, message: String) {
        self.out.errors.push(LineError { line, message });
    }
}

pub(super) fn parse_record(
    bytes: &[u8],
    line: u64,
    source: Source,
) -> Result<(Event, bool), String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| json_error(&e, line))?;
    if !value.is_object() {
        return Err(format!(
            "expected a JSON object, found {}",
            match value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            }
        ));
    }
    let rec = KubeArmorRecord::deserialize(value).map_err(|e| e.to_string())?;
    map_record(&rec, source).map_err(|e| e.to_string())
}

/// serde_json's message, with its position made relative to the input rather than the record.
pub(super) fn json_error(e: &serde_json::Error, start_line: u64) -> String {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&position).unwrap_or(&full);
    match e.line() {
        0 => format!("invalid JSON: {message}"),
        1 => format!("invalid JSON: {message} (column {})", e.column()),
        n => format!(
            "invalid JSON: {message} (line {}, column {})",
            start_line.saturating_add(n as u64 - 1),
            e.column()
        ),
    }
}

pub(super) fn read_error(e: &io::Error) -> String {
    format!("read error, the rest of the input was not read: {e}")
}

/// Counts physical lines as bytes go by.
#[derive(Default)]
pub(super) struct LineCount {
    pub(super) newlines: u64,
    /// Bytes seen since the last newline.
    pub(super) partial: bool,
}

impl LineCount {
    /// 1-based line of the next byte.
    pub(super) fn current(&self) -> u64 {
        self.newlines + 1
    }

    /// Lines of the input so far, a last line without newline included.
    pub(super) fn total(&self) -> u64 {
        self.newlines + u64::from(self.partial)
    }

    /// Line of the last byte read (1 for an empty input).
    pub(super) fn last(&self) -> u64 {
        self.total().max(1)
    }

    /// A whole line was read, with or without its newline.
    pub(super) fn end_line(&mut self, newline: bool) {
        if newline {
            self.newlines += 1;
            self.partial = false;
        } else {
            self.partial = true;
        }
    }

    pub(super) fn byte(&mut self, b: u8) {
        if b == b'\n' {
            self.newlines += 1;
            self.partial = false;
        } else {
            self.partial = true;
        }
    }
}

/// `fill_buf`, retrying interrupted reads.
pub(super) fn fill<R: BufRead>(reader: &mut R) -> io::Result<&[u8]> {
    loop {
        match reader.fill_buf() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    // Buffered now: this second call does no I/O (returning the first borrow from inside the
    // loop does not pass the borrow checker).
    reader.fill_buf()
}

/// Consumes a byte-order mark and whitespace; returns the first other byte, left unconsumed.
pub(super) fn skip_leading_whitespace<R: BufRead>(
    reader: &mut R,
    lines: &mut LineCount,
) -> io::Result<Option<u8>> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut first = true;
    loop {
        let chunk = fill(reader)?;
        if chunk.is_empty() {
            return Ok(None);
        }
        if std::mem::take(&mut first) && chunk.starts_with(BOM) {
            reader.consume(BOM.len());
            lines.partial = true;
            continue;
        }
        let n = chunk.iter().take_while(|b| b.is_ascii_whitespace()).count();
        chunk[..n].iter().for_each(|&b| lines.byte(b));
        let next = chunk.get(n).copied();
        reader.consume(n);
        if next.is_some() {
            return Ok(next);
        }
    }
}

/// One physical line read by [`read_bounded_line`].
pub(super) struct Line {
    /// The line was longer than the limit; only its beginning is in the buffer.
    pub(super) overflow: bool,
    /// The line ended with a newline (the last line of an input may not).
    pub(super) newline: bool,
}

/// Appends one line (newline included) to `buf`, at most `limit` bytes of it; the rest of a
/// longer line is consumed and dropped. `None` at the end of the input.
pub(super) fn read_bounded_line<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<Line>> {
    let mut any = false;
    let mut overflow = false;
    loop {
        let chunk = fill(reader)?;
        if chunk.is_empty() {
            return Ok(any.then_some(Line {
                overflow,
                newline: false,
            }));
        }
        any = true;
        let (take, newline) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = limit.saturating_sub(buf.len());
        if take > room {
            overflow = true;
        }
        buf.extend_from_slice(&chunk[..take.min(room)]);
        reader.consume(take);
        if newline {
            return Ok(Some(Line { overflow, newline }));
        }
    }
}

pub(super) fn read_lines<R: BufRead>(
    reader: &mut R,
    limit: usize,
    lines: &mut LineCount,
    sink: &mut Sink,
) {
    let mut buf = Vec::new();
    let mut seen_record = false;
    loop {
        let line_no = lines.current();
        buf.clear();
        let line = match read_bounded_line(reader, &mut buf, limit) {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(e) => {
                sink.error(line_no, read_error(&e));
                return;
            }
        };
        lines.end_line(line.newline);
        if line.overflow {
            sink.error(
                line_no,
                format!("line is longer than {limit} bytes; skipped"),
            );
            seen_record = true;
            continue;
        }
        let content = buf.trim_ascii();
        if content.is_empty() {
            continue;
        }
        if !seen_record && content == b"{" {
            // `{` alone on the first line: pretty-printed objects, one after another.
            let mut splitter = Splitter::new(SplitMode::Stream, limit);
            for &b in &buf {
                // The stream splitter never stops early.
                let _ = splitter.feed(b, line_no, sink);
            }
            return run_splitter(reader, &mut splitter, lines, sink);
        }
        seen_record = true;
        // Without its line break, so that serde_json's positions are on this line.
        let record = buf.strip_suffix(b"\n").unwrap_or(&buf);
        sink.record(line_no, record.strip_suffix(b"\r").unwrap_or(record));
    }
}

pub(super) fn run_splitter<R: BufRead>(
    reader: &mut R,
    splitter: &mut Splitter,
    lines: &mut LineCount,
    sink: &mut Sink,
) {
    let mut stopped = false;
    loop {
        let chunk = match fill(reader) {
            Ok(chunk) => chunk,
            Err(e) => {
                // What was read of an unfinished record is not reported as a second error.
                sink.error(lines.current(), read_error(&e));
                return;
            }
        };
        if chunk.is_empty() {
            break;
        }
        for &b in chunk {
            let line = lines.current();
            lines.byte(b);
            if !stopped && splitter.feed(b, line, sink) == Flow::Stop {
                // Keep counting lines; nothing else is read into records.
                stopped = true;
            }
        }
        let n = chunk.len();
        reader.consume(n);
    }
    if !stopped {
        splitter.finish(lines.last(), sink);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SplitMode {
    /// Elements of one top-level JSON array (its `[` already consumed).
    Array,
    /// Top-level JSON values one after another.
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SplitState {
    Between,
    InValue,
    /// The array is closed.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    Stop,
}

/// Cuts a byte stream into JSON values by structure (strings, escapes, nesting), without
/// parsing them, so that one bad value does not hide the others and none is held in memory
/// beyond the limit.
pub(super) struct Splitter {
    pub(super) mode: SplitMode,
    pub(super) state: SplitState,
    pub(super) depth: u32,
    pub(super) in_string: bool,
    pub(super) escaped: bool,
    pub(super) buf: Vec<u8>,
    pub(super) overflow: bool,
    pub(super) start_line: u64,
    /// Index in `buf` where the current physical line begins.
    pub(super) line_start: usize,
    pub(super) limit: usize,
}

impl Splitter {
    pub(super) fn new(mode: SplitMode, limit: usize) -> Self {
        Splitter {
            mode,
            state: SplitState::Between,
            depth: 0,
            in_string: false,
            escaped: false,
            buf: Vec::new(),
            overflow: false,
            start_line: 0,
            line_start: 0,
            limit,
        }
    }

    pub(super) fn feed(&mut self, b: u8, line: u64, sink: &mut Sink) -> Flow {
        match self.state {
            SplitState::Done => {
                if b.is_ascii_whitespace() {
                    return Flow::Continue;
                }
                sink.error(
                    line,
                    "unexpected data after the end of the JSON array; the rest of the input was \
                     ignored"
                        .into(),
                );
                return Flow::Stop;
            }
            SplitState::Between => {
                if b.is_ascii_whitespace() {
                    return Flow::Continue;
                }
                if self.mode == SplitMode::Array {
                    match b {
                        b']' => {
                            self.state = SplitState::Done;
                            return Flow::Continue;
                        }
                        b',' => {
                            sink.error(line, "empty element in the JSON array".into());
                            return Flow::Continue;
                        }
                        _ => {}
                    }
                }
                self.begin(line);
            }
            SplitState::InValue => {}
        }
        self.value_byte(b, line, sink);
        Flow::Continue
    }

    pub(super) fn begin(&mut self, line: u64) {
        self.state = SplitState::InValue;
        self.start_line = line;
        self.buf.clear();
        self.overflow = false;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
        self.line_start = 0;
    }

    pub(super) fn push(&mut self, b: u8) {
        if self.buf.len() < self.limit {
            self.buf.push(b);
        } else {
            self.overflow = true;
        }
    }

    pub(super) fn value_byte(&mut self, b: u8, line: u64, sink: &mut Sink) {
        if self.in_string {
            self.push(b);
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            } else if b == b'\n' {
                self.end_of_line(line, sink);
            }
            return;
        }
        let array = self.mode == SplitMode::Array;
        match b {
            b'"' => {
                self.in_string = true;
                self.push(b);
            }
            b'{' | b'[' => {
                self.depth = self.depth.saturating_add(1);
                self.push(b);
            }
            b']' if array && self.depth == 0 => {
                self.emit(sink);
                self.state = SplitState::Done;
            }
            b'}' | b']' => {
                self.push(b);
                if self.depth > 0 {
                    self.depth -= 1;
                    if self.depth == 0 && !array {
                        self.emit(sink);
                        self.state = SplitState::Between;
                    }
                }
            }
            b',' if array && self.depth == 0 => {
                self.emit(sink);
                self.state = SplitState::Between;
            }
            _ if !array && self.depth == 0 && b.is_ascii_whitespace() => {
                // The end of a top-level scalar (which will be reported as not an object).
                self.emit(sink);
                self.state = SplitState::Between;
            }
            _ => {
                self.push(b);
                if b == b'\n' {
                    self.end_of_line(line, sink);
                }
            }
        }
    }

    /// Called after a newline inside a value. In a pretty-printed stream a line holding `{`
    /// alone starts a new object; if one is still open, it was cut short.
    pub(super) fn end_of_line(&mut self, line: u64, sink: &mut Sink) {
        if self.mode == SplitMode::Stream && !self.overflow && self.line_start > 0 {
            let text = &self.buf[self.line_start..];
            let text = text.strip_suffix(b"\n").unwrap_or(text);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text == b"{" {
                let previous = std::mem::replace(&mut self.buf, b"{\n".to_vec());
                sink.record(self.start_line, &previous[..self.line_start]);
                self.start_line = line;
                self.depth = 1;
                self.in_string = false;
                self.escaped = false;
            }
        }
        self.line_start = self.buf.len();
    }

    pub(super) fn emit(&mut self, sink: &mut Sink) {
        if self.overflow {
            sink.error(
                self.start_line,
                format!("record is larger than {} bytes; skipped", self.limit),
            );
        } else {
            sink.record(self.start_line, &self.buf);
        }
        self.buf.clear();
        self.overflow = false;
    }

    pub(super) fn finish(&mut self, last_line: u64, sink: &mut Sink) {
        if self.state == SplitState::InValue {
            self.emit(sink);
        }
        if self.mode == SplitMode::Array && self.state != SplitState::Done {
            sink.error(
                last_line,
                "unterminated JSON array: the input ends before its closing ']'".into(),
            );
        }
        self.state = SplitState::Between;
    }
}
