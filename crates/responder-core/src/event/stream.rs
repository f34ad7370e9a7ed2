//! Streaming decode: findings out of a reader one at a time, in bounded memory.
//!
//! A small framer finds where each value ends (it tracks strings, escapes and
//! brackets, nothing else), then the value's bytes are decoded on their own. It reads
//! what people pipe in:
//!
//! - a JSON array of findings or events (the console's export, `responder findings
//!   --format json`): each element is framed and decoded alone, so the array can be of
//!   any length; an element is limited to [`MAX_FINDING_BYTES`];
//! - one finding, one event, or a `{"Findings": [...]}` document (get-findings output,
//!   at most 50 findings a page): framed whole, up to [`MAX_INPUT_BYTES`];
//! - several of the above one after the other, e.g. newline-delimited findings
//!   (NDJSON), each line up to [`MAX_INPUT_BYTES`].
//!
//! Memory is the read buffer plus the largest value being decoded, whatever the count.
//!
//! A syntax error inside one value (balanced brackets, bad content) is that finding's
//! error and the stream goes on. An error the framer cannot step over (unbalanced
//! brackets, a missing comma between elements, the end of the input inside a value, a
//! read error, a top-level value that is not an object or array) ends the stream.

use std::collections::VecDeque;
use std::io::{self, Read};

use serde_json::Value;

use super::{DecodeError, MAX_INPUT_BYTES, decode_value, from_text, strip_position};
use crate::finding::Finding;
use crate::finding::wire::Element;

/// An element of a top-level array larger than this is refused (32 MiB); the others
/// are still decoded. A finding that lists 20,000 network interfaces is about 4 MB.
pub const MAX_FINDING_BYTES: usize = 32 * 1024 * 1024;

/// serde_json's nesting limit: a value nested deeper is refused by the framer, so a
/// finding that was framed can always be parsed into a `Value` later.
const MAX_DEPTH: usize = 128;

/// Bytes asked of the reader at a time.
const READ_CHUNK: usize = 256 * 1024;

/// Where the framer is between values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between top-level values.
    Top,
    /// Inside a top-level array; `first` until an element was read.
    Array { first: bool },
    /// After the end of the input or an input-level error.
    Done,
}

/// Findings decoded one at a time from a reader (see the module doc).
///
/// Each item is `Ok(Ok(finding))`, `Ok(Err(why))` for one finding that could not be
/// decoded (the stream goes on), or `Err(why)` for an input-level error, after which
/// the stream ends. Count the `Ok` items for a finding's index in the input.
pub struct Findings<R> {
    reader: R,
    buf: Vec<u8>,
    /// Absolute input offset of `buf[0]`.
    base: usize,
    /// Next byte to look at, index into `buf`.
    pos: usize,
    eof: bool,
    state: State,
    /// Findings of a `{"Findings": [...]}` document not yet handed out.
    pending: VecDeque<Result<Finding, DecodeError>>,
    /// Newlines before absolute offset `counted_to`, and where the last line starts.
    lines: usize,
    line_start: usize,
    counted_to: usize,
    /// Top-level values seen, and whether one was an array.
    top_values: usize,
    saw_array: bool,
}

/// A framed value: its bytes in `buf[start..end]`, or only its size when it was too
/// large or too deep to keep.
struct Framed {
    start: usize,
    end: usize,
    /// Absolute offset of the first byte.
    at: usize,
    refused: Option<Refusal>,
}

enum Refusal {
    TooLarge(usize, usize),
    TooDeep,
}

impl<R: Read> Findings<R> {
    /// Findings from `reader` (a file, standard input, a byte slice).
    pub fn new(reader: R) -> Findings<R> {
        Findings {
            reader,
            buf: Vec::new(),
            base: 0,
            pos: 0,
            eof: false,
            state: State::Top,
            pending: VecDeque::new(),
            lines: 0,
            line_start: 0,
            counted_to: 0,
            top_values: 0,
            saw_array: false,
        }
    }

    /// True when the input held exactly one top-level value and it was not an array:
    /// one document, as before streaming ([`super::decode_bytes`] keeps its errors).
    pub fn single_document(&self) -> bool {
        self.top_values == 1 && !self.saw_array
    }

    /// Reads more input, dropping what is before `keep` (an index into `buf`).
    /// False at the end of the input.
    fn fill(&mut self, keep: usize) -> Result<bool, DecodeError> {
        if self.eof {
            return Ok(false);
        }
        if keep > 0 {
            self.count_lines_to(self.base + keep);
            self.buf.drain(..keep);
            self.base += keep;
            self.pos -= keep;
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK, 0);
        let read = loop {
            match self.reader.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(DecodeError::Shape(format!("cannot read: {e}")));
                }
            }
        };
        self.buf.truncate(len + read);
        if read == 0 {
            self.eof = true;
        }
        Ok(read > 0)
    }

    fn count_lines_to(&mut self, abs: usize) {
        if abs <= self.counted_to {
            return;
        }
        let from = self.counted_to - self.base;
        let to = abs - self.base;
        for (i, b) in self.buf[from..to].iter().enumerate() {
            if *b == b'\n' {
                self.lines += 1;
                self.line_start = self.counted_to + i + 1;
            }
        }
        self.counted_to = abs;
    }

    /// 1-based line and 0-based column of an absolute offset still in the buffer.
    fn position(&mut self, abs: usize) -> (usize, usize) {
        self.count_lines_to(abs);
        (self.lines + 1, abs.saturating_sub(self.line_start))
    }

    /// The byte at `pos`, reading more as needed; `None` at the end of the input.
    fn peek(&mut self) -> Result<Option<u8>, DecodeError> {
        while self.pos >= self.buf.len() {
            if !self.fill(self.pos)? {
                return Ok(None);
            }
        }
        Ok(Some(self.buf[self.pos]))
    }

    /// Skips whitespace (and a UTF-8 byte order mark at the very start).
    fn skip_ws(&mut self) -> Result<Option<u8>, DecodeError> {
        loop {
            match self.peek()? {
                Some(b' ' | b'\n' | b'\r' | b'\t') => self.pos += 1,
                Some(0xEF) if self.base + self.pos == 0 => {
                    // A BOM is three bytes; anything else here is a syntax error later.
                    while self.buf.len() < 3 && self.fill(0)? {}
                    if self.buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                        self.pos += 3;
                    } else {
                        return Ok(Some(0xEF));
                    }
                }
                other => return Ok(other),
            }
        }
    }

    fn syntax(&mut self, message: &str) -> DecodeError {
        let abs = self.base + self.pos;
        let (line, column) = self.position(abs);
        DecodeError::Json {
            line,
            column: column + 1,
            message: message.to_owned(),
        }
    }

    /// Frames the value starting at `pos`, which is not whitespace.
    fn frame(&mut self, limit: usize) -> Result<Framed, DecodeError> {
        let mut start = self.pos;
        let at = self.base + start;
        let (line, column) = self.position(at);
        let eof = |what: &str| DecodeError::Json {
            line,
            column: column + 1,
            message: format!("EOF while parsing {what}"),
        };
        let mut depth = 0usize;
        let mut too_deep = false;
        let mut in_string = false;
        let first = self.buf[self.pos];
        if !matches!(first, b'{' | b'[' | b'"') {
            // A scalar: up to the next delimiter.
            loop {
                if self.pos >= self.buf.len() {
                    if !self.fill(start)? {
                        break;
                    }
                    start = 0;
                    continue;
                }
                if matches!(
                    self.buf[self.pos],
                    b' ' | b'\n' | b'\r' | b'\t' | b',' | b']' | b'}' | b'[' | b'{' | b'"'
                ) {
                    break;
                }
                self.pos += 1;
            }
            if self.pos == start {
                return Err(self.syntax("expected value"));
            }
            return Ok(Framed {
                start,
                end: self.pos,
                at,
                refused: None,
            });
        }
        loop {
            if self.pos >= self.buf.len() {
                // Keep the value's bytes, unless it is already too large to decode.
                let too_large = self.base + self.pos - at > limit;
                let keep = if too_large { self.pos } else { start };
                if !self.fill(keep)? {
                    return Err(eof(if in_string { "a string" } else { "a value" }));
                }
                start -= keep.min(start);
                continue;
            }
            if in_string {
                match memchr::memchr2(b'"', b'\\', &self.buf[self.pos..]) {
                    None => self.pos = self.buf.len(),
                    Some(i) => {
                        self.pos += i;
                        if self.buf[self.pos] == b'"' {
                            in_string = false;
                            self.pos += 1;
                        } else if self.pos + 1 < self.buf.len() {
                            self.pos += 2;
                        } else {
                            // The escaped byte is not read yet: read on, then retry.
                            let keep = start;
                            if !self.fill(keep)? {
                                return Err(eof("a string"));
                            }
                            start = 0;
                        }
                    }
                }
                continue;
            }
            match self.buf[self.pos] {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    too_deep |= depth > MAX_DEPTH;
                }
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        let size = self.base + self.pos - at;
                        let refused = if size > limit {
                            Some(Refusal::TooLarge(size, limit))
                        } else if too_deep {
                            Some(Refusal::TooDeep)
                        } else {
                            None
                        };
                        return Ok(Framed {
                            start,
                            end: self.pos,
                            at,
                            refused,
                        });
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
    }

    /// Decodes a framed value: an element of an array, or a top-level value.
    /// `None` for a `{"Findings": []}` document.
    fn decode(
        &mut self,
        framed: Framed,
        top: bool,
    ) -> Result<Option<Result<Finding, DecodeError>>, DecodeError> {
        let (line, column) = self.position(framed.at);
        match framed.refused {
            Some(Refusal::TooLarge(size, limit)) => {
                return Ok(Some(Err(DecodeError::TooLarge { size, limit })));
            }
            Some(Refusal::TooDeep) => {
                return Ok(Some(Err(DecodeError::Json {
                    line,
                    column: column + 1,
                    message: "recursion limit exceeded".to_owned(),
                })));
            }
            None => {}
        }
        let text = &self.buf[framed.start..framed.end];
        let at = |e: &serde_json::Error| DecodeError::Json {
            line: line + e.line() - 1,
            column: if e.line() == 1 {
                column + e.column()
            } else {
                e.column()
            },
            message: strip_position(&e.to_string()),
        };
        let wire = match serde_json::from_slice::<Element>(text) {
            Err(e) => return Ok(Some(Err(at(&e)))),
            Ok(Element::Other(kind)) if top => {
                return Err(DecodeError::Shape(format!(
                    "expected a finding, an EventBridge event, an array of them or {{\"Findings\": [...]}}, got {kind}"
                )));
            }
            Ok(Element::Other(kind)) => {
                return Ok(Some(Err(DecodeError::Shape(format!(
                    "expected a finding object, got {kind}"
                )))));
            }
            Ok(Element::Object(wire)) => wire,
        };
        if top && wire.is_findings_document() {
            let value = serde_json::from_slice::<Value>(text).map_err(|e| at(&e))?;
            self.pending.extend(decode_value(value)?);
            return Ok(self.pending.pop_front());
        }
        Ok(Some(from_text(text, *wire)))
    }

    fn next_item(&mut self) -> Result<Option<Result<Finding, DecodeError>>, DecodeError> {
        if let Some(f) = self.pending.pop_front() {
            return Ok(Some(f));
        }
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Top => {
                    let Some(b) = self.skip_ws()? else {
                        self.state = State::Done;
                        if self.top_values == 0 {
                            return Err(self.syntax("EOF while parsing a value").at_column(0));
                        }
                        return Ok(None);
                    };
                    self.top_values += 1;
                    if b == b'[' {
                        self.saw_array = true;
                        self.pos += 1;
                        self.state = State::Array { first: true };
                        continue;
                    }
                    let framed = self.frame(MAX_INPUT_BYTES)?;
                    match self.decode(framed, true)? {
                        Some(item) => return Ok(Some(item)),
                        None => continue,
                    }
                }
                State::Array { first } => {
                    let Some(mut b) = self.skip_ws()? else {
                        return Err(self.syntax("EOF while parsing a list"));
                    };
                    if b == b']' {
                        self.pos += 1;
                        self.state = State::Top;
                        continue;
                    }
                    if !first {
                        if b != b',' {
                            return Err(self.syntax("expected `,` or `]`"));
                        }
                        self.pos += 1;
                        b = match self.skip_ws()? {
                            Some(b) => b,
                            None => return Err(self.syntax("EOF while parsing a list")),
                        };
                        if b == b']' {
                            return Err(self.syntax("trailing comma"));
                        }
                    }
                    self.state = State::Array { first: false };
                    let framed = self.frame(MAX_FINDING_BYTES)?;
                    match self.decode(framed, false)? {
                        Some(item) => return Ok(Some(item)),
                        None => continue,
                    }
                }
            }
        }
    }
}

impl DecodeError {
    /// The same error at another column (serde_json says column 0 for an empty input).
    fn at_column(self, column: usize) -> DecodeError {
        match self {
            DecodeError::Json { line, message, .. } => DecodeError::Json {
                line,
                column,
                message,
            },
            other => other,
        }
    }
}

impl<R: Read> Iterator for Findings<R> {
    type Item = Result<Result<Finding, DecodeError>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_item() {
            Ok(item) => item.map(Ok),
            Err(e) => {
                self.state = State::Done;
                self.pending.clear();
                Some(Err(e))
            }
        }
    }
}
