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

use serde::de::IgnoredAny;
use serde_json::Value;

use super::{DecodeError, MAX_INPUT_BYTES, decode_value, from_text, strip_position};
use crate::finding::Finding;
use crate::finding::wire::{Element, KeyCase, KeysRead};

/// An element of a top-level array larger than this is refused (32 MiB); the others
/// are still decoded. A finding that lists 20,000 network interfaces is about 4 MB.
pub const MAX_FINDING_BYTES: usize = 32 * 1024 * 1024;

/// serde_json's nesting limit: a value nested deeper is refused by the framer, so a
/// finding that was framed can always be parsed into a `Value` later.
const MAX_DEPTH: usize = 128;

/// The bytes the framer looks at outside strings.
const STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t
};

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
    /// Limit on one element of a top-level array.
    max_finding_bytes: usize,
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
            max_finding_bytes: MAX_FINDING_BYTES,
            pending: VecDeque::new(),
            lines: 0,
            line_start: 0,
            counted_to: 0,
            top_values: 0,
            saw_array: false,
        }
    }

    /// The same stream with another limit on one element of an array (the default is
    /// [`MAX_FINDING_BYTES`]).
    pub fn with_max_finding_bytes(mut self, limit: usize) -> Findings<R> {
        self.max_finding_bytes = limit;
        self
    }

    /// True when the input held exactly one top-level value and it was not an array:
    /// one document, as before streaming ([`super::decode_bytes`] keeps its errors).
    pub fn single_document(&self) -> bool {
        self.top_values == 1 && !self.saw_array
    }

    /// Reads more input, dropping what is before `keep` (an index into `buf`).
    /// False at the end of the input.
    /// `keep` is always dropped, even at the end of the input.
    fn fill(&mut self, keep: usize) -> Result<bool, DecodeError> {
        let keep = keep.min(self.pos).min(self.buf.len());
        if keep > 0 {
            self.count_lines_to(self.base + keep);
            self.buf.drain(..keep);
            self.base += keep;
            self.pos -= keep;
        }
        if self.eof {
            return Ok(false);
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
        let from = self.counted_to.saturating_sub(self.base);
        let to = abs.saturating_sub(self.base);
        // memchr: this runs over every byte of the input.
        let span = self.buf.get(from..to).unwrap_or_default();
        if let Some(last) = memchr::memrchr(b'\n', span) {
            self.lines += memchr::memchr_iter(b'\n', span).count();
            self.line_start = self.counted_to + last + 1;
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
                    let more = self.fill(start)?;
                    start = 0;
                    if !more {
                        break;
                    }
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
                let more = self.fill(keep)?;
                start -= keep.min(start);
                if !more {
                    if too_large {
                        return Err(eof(if in_string { "a string" } else { "a value" }));
                    }
                    // serde_json names the exact place and what was expected.
                    let held = self.buf.get(start..).unwrap_or_default();
                    return Err(match serde_json::from_slice::<IgnoredAny>(held) {
                        Err(e) => DecodeError::Json {
                            line: line + e.line() - 1,
                            column: if e.line() == 1 {
                                column + e.column()
                            } else {
                                e.column()
                            },
                            message: strip_position(&e.to_string()),
                        },
                        Ok(_) => eof("a value"),
                    });
                }
                continue;
            }
            if !in_string {
                // Jump to the next byte that matters outside strings.
                match self.buf[self.pos..]
                    .iter()
                    .position(|b| STRUCTURAL[usize::from(*b)])
                {
                    None => {
                        self.pos = self.buf.len();
                        continue;
                    }
                    Some(i) => self.pos += i,
                }
            }
            if in_string {
                match memchr::memchr2(b'"', b'\\', &self.buf[self.pos..]) {
                    None => self.pos = self.buf.len(),
                    Some(i) => {
                        self.pos += i;
                        if self.buf[self.pos] == b'"' {
                            in_string = false;
                            self.pos += 1;
                            if depth == 0 {
                                // A top-level string.
                                return Ok(Framed {
                                    start,
                                    end: self.pos,
                                    at,
                                    refused: None,
                                });
                            }
                        } else if self.pos + 1 < self.buf.len() {
                            self.pos += 2;
                        } else {
                            // The escaped byte is not read yet: read on, then retry.
                            let more = self.fill(start)?;
                            start = 0;
                            if !more {
                                return Err(eof("a string"));
                            }
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
                    depth = depth.saturating_sub(1);
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
        let text = self.buf.get(framed.start..framed.end).unwrap_or_default();
        let at = |e: &serde_json::Error| DecodeError::Json {
            line: line + e.line() - 1,
            column: if e.line() == 1 {
                column + e.column()
            } else {
                e.column()
            },
            message: strip_position(&e.to_string()),
        };
        let read = {
            let _case = KeysRead::as_case(KeyCase::Adaptive);
            serde_json::from_slice::<Element>(text)
        };
        let wire = match read {
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
                    let framed = self.frame(self.max_finding_bytes)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A reader that hands out at most `n` bytes per read, to cross every buffer edge.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn bare(id: &str) -> Value {
        json!({"id": id, "type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "severity": 8,
            "title": "a \"quoted\" \\ title with [brackets] and {braces}",
            "resource": {"instanceDetails": {"instanceId": "i-0123456789abcdef0"}}})
    }

    /// Ids of the findings, `!` for a finding error, `FATAL` for an input error.
    fn ids(input: &[u8], chunk: usize) -> Vec<String> {
        Findings::new(Trickle(input, chunk))
            .map(|item| match item {
                Ok(Ok(f)) => f.id,
                Ok(Err(e)) => format!("!{e}"),
                Err(e) => format!("FATAL {e}"),
            })
            .collect()
    }

    fn all_chunks(input: &[u8]) -> Vec<String> {
        let whole = ids(input, usize::MAX);
        for chunk in [1, 2, 3, 7, 64] {
            assert_eq!(ids(input, chunk), whole, "chunk {chunk}");
        }
        whole
    }

    #[test]
    fn every_shape_streams() {
        let envelope =
            json!({"detail-type": DETAIL, "source": "aws.guardduty", "detail": bare("e")});
        let array =
            serde_json::to_vec(&json!([bare("a"), envelope, bare("b")])).unwrap_or_default();
        assert_eq!(all_chunks(&array), ["a", "e", "b"]);
        let pretty = serde_json::to_vec_pretty(&json!([bare("a"), bare("b")])).unwrap_or_default();
        assert_eq!(all_chunks(&pretty), ["a", "b"]);
        let mut ndjson = Vec::new();
        for id in ["n1", "n2", "n3"] {
            ndjson.extend(serde_json::to_vec(&bare(id)).unwrap_or_default());
            ndjson.push(b'\n');
        }
        assert_eq!(all_chunks(&ndjson), ["n1", "n2", "n3"]);
        let doc =
            serde_json::to_vec(&json!({"Findings": [bare("g1"), bare("g2")]})).unwrap_or_default();
        assert_eq!(all_chunks(&doc), ["g1", "g2"]);
        assert!(all_chunks(b"{\"findings\": []}").is_empty());
        assert!(all_chunks(b"[]").is_empty());
        assert_eq!(all_chunks(b"\xEF\xBB\xBF[] [] \n"), Vec::<String>::new());
        let two = [&array[..], b"\n", &pretty[..]].concat();
        assert_eq!(all_chunks(&two), ["a", "e", "b", "a", "b"]);
    }

    const DETAIL: &str = "GuardDuty Finding";

    #[test]
    fn a_bad_finding_in_the_middle_leaves_the_others() {
        let good = |id| serde_json::to_string(&bare(id)).unwrap_or_default();
        let input = format!(
            "[{}, {{\"id\": \"x\", \"type\": }}, 42, {{\"id\": \"no-type\"}}, {}]",
            good("a"),
            good("b")
        );
        let out = all_chunks(input.as_bytes());
        assert_eq!(out.len(), 5, "{out:?}");
        assert_eq!(out[0], "a");
        assert!(
            out[1].starts_with("!invalid JSON at line 1, column"),
            "{out:?}"
        );
        assert_eq!(out[2], "!expected a finding object, got a number");
        assert_eq!(out[3], "!missing required field `type`");
        assert_eq!(out[4], "b");
        // NDJSON: a bad line is that line's error.
        let input = format!("{}\n{{\"id\": 1,}}\n{}\n", good("a"), good("b"));
        let out = all_chunks(input.as_bytes());
        assert_eq!(out[0], "a");
        assert!(
            out[1].starts_with("!invalid JSON at line 2, column"),
            "{out:?}"
        );
        assert_eq!(out[2], "b");
    }

    #[test]
    fn input_errors_end_the_stream_after_what_was_read() {
        let good = serde_json::to_string(&bare("a")).unwrap_or_default();
        let out = all_chunks(format!("[{good} {good}]").as_bytes());
        assert_eq!(out[0], "a");
        assert!(out[1].starts_with("FATAL invalid JSON"), "{out:?}");
        assert!(out[1].contains("expected `,` or `]`"), "{out:?}");
        assert_eq!(out.len(), 2);
        let out = all_chunks(format!("[{good}, {{\"id\": \"b\"").as_bytes());
        assert_eq!(out[0], "a");
        assert!(out[1].starts_with("FATAL invalid JSON"), "{out:?}");
        let out = all_chunks(format!("[{good},]").as_bytes());
        assert!(out[1].contains("trailing comma"), "{out:?}");
        let out = all_chunks(b"\"text\"");
        assert!(out[0].starts_with("FATAL expected a finding"), "{out:?}");
        assert_eq!(
            ids(b"", 1),
            ["FATAL invalid JSON at line 1, column 0: EOF while parsing a value"]
        );
        assert_eq!(
            ids(b"{\"id\": ", 3),
            ["FATAL invalid JSON at line 1, column 7: EOF while parsing a value"]
        );
    }

    #[test]
    fn limits_are_per_finding() {
        let good = serde_json::to_vec(&bare("a")).unwrap_or_default();
        let big =
            serde_json::to_vec(&json!({"id": "big", "type": "T:EC2/X", "title": "x".repeat(5000)}))
                .unwrap_or_default();
        let input = [b"[", &good[..], b",", &big[..], b",", &good[..], b"]"].concat();
        for chunk in [7, 1000, usize::MAX] {
            let out: Vec<String> = Findings::new(Trickle(&input, chunk))
                .with_max_finding_bytes(1000)
                .map(|item| match item {
                    Ok(Ok(f)) => f.id,
                    Ok(Err(e)) => format!("!{e}"),
                    Err(e) => format!("FATAL {e}"),
                })
                .collect();
            assert_eq!(
                out,
                [
                    "a".to_owned(),
                    format!(
                        "!input is {} bytes, more than the 1000-byte limit",
                        big.len()
                    ),
                    "a".to_owned()
                ],
                "chunk {chunk}"
            );
        }
        let deep = format!("[{}{}]", "[".repeat(200), "]".repeat(200));
        let out = all_chunks(deep.as_bytes());
        assert_eq!(out.len(), 1);
        assert!(out[0].contains("recursion limit exceeded"), "{out:?}");
    }

    #[test]
    fn bytes_and_value_give_the_same_finding_however_odd_the_types() {
        // Wrong types everywhere, numbers as strings, duplicate keys (the last wins).
        let odd = r#"{"id": "f1", "type": "Recon:EC2/PortProbeUnprotectedPort", "severity": "5.5",
            "arn": 12, "region": ["us-east-1"], "accountId": {"x": 1}, "partition": null,
            "title": "first", "title": "second", "associatedAttackSequenceArn": "",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0123456789abcdef0",
              "launchTime": 1.5e12, "platform": true, "iamInstanceProfile": {"arn": 7},
              "tags": [{"key": "a", "value": 3}, 5, {"key": "", "value": "v"}, {"key": "b", "value": "w"}],
              "networkInterfaces": [7, {"networkInterfaceId": "eni-1", "privateIpAddresses": ["", {"privateIpAddress": 5}, 3, {"privateIpAddress": "10.0.0.1"}],
                "ipv6Addresses": {"a": 1}, "securityGroups": [{"groupId": "sg-1"}, null, {"groupName": "n"}]}]}},
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0123456789abcdef1",
              "networkInterfaces": [{"networkInterfaceId": "eni-2", "privateIpAddresses": ["", {"privateIpAddress": 5}, {"privateIpAddress": "10.0.0.1"}]}]}},
            "service": {"count": "4", "archived": "true", "detectorId": "d1", "ebsVolumeScanDetails": {"triggerFindingId": 3},
              "additionalInfo": {"value": "{\"sample\": \"TRUE\"}"},
              "action": {"rdsLoginAttemptAction": {"remoteIpDetails": {"ipAddressV4": "198.51.100.9"}},
                "portProbeAction": {"portProbeDetails": [{"localPortDetails": {"port": "22"}, "remoteIpDetails": {"ipAddressV4": "198.51.100.7"}},
                  {"localPortDetails": {"port": 70000}}, 4, {"localPortDetails": {"port": 22.0}, "remoteIpDetails": {"ipAddressV6": "2001:db8::1"}}]},
                "dnsRequestAction": {"domain": 5}, "awsApiCallAction": {"domainDetails": {"domain": "api.example"}},
                "networkConnectionAction": {"remotePortDetails": {"port": "443"}, "remoteIpDetails": {"ipAddressV4": "198.51.100.9"}}}}}"#;
        let from_bytes = Findings::new(odd.as_bytes())
            .next()
            .and_then(|r| r.ok())
            .and_then(|r| r.ok());
        let value: Value = serde_json::from_str(odd).unwrap_or_default();
        let from_value = decode_value(value.clone())
            .unwrap_or_default()
            .pop()
            .and_then(|r| r.ok());
        let (Some(a), Some(b)) = (from_bytes, from_value) else {
            panic!("both decode");
        };
        assert_eq!(view(&a), view(&b));
        assert_eq!(a.raw(), &value);
        assert_eq!(a.title.as_deref(), Some("second"));
        assert_eq!(a.instance_id(), Some("i-0123456789abcdef1"));
        assert_eq!(a.arn.as_deref(), Some("12"));
        assert_eq!(a.region, None);
        assert!(a.is_sample());
        assert_eq!(a.count, Some(4));
        assert!(!a.archived);
        assert_eq!(
            a.domain.as_deref(),
            Some("5"),
            "dnsRequestAction wins, a number read as text"
        );
        assert_eq!(a.local_ports, vec![22]);
        assert_eq!(a.remote_ports, vec![443]);
        assert_eq!(
            a.remote_ips,
            ["198.51.100.9", "198.51.100.7", "2001:db8::1"]
                .map(str::to_owned)
                .to_vec()
        );
        let eni = &a
            .instance
            .as_ref()
            .map(|i| i.network_interfaces.clone())
            .unwrap_or_default()[0];
        assert_eq!(
            eni.private_ip_addresses,
            ["", "5", "10.0.0.1"].map(str::to_owned).to_vec()
        );
        assert_eq!(a.detector_id.as_deref(), Some("d1"));
        assert_eq!(a.scan_trigger_finding_id, None);
        assert_eq!(a.attack_sequence_arn.as_deref(), Some(""));
    }

    #[test]
    fn a_wrong_guess_of_the_casing_is_read_again() {
        // The first key suggests one casing, the majority says the other.
        let cases = [
            r#"{"Zone": 1, "id": "f1", "type": "T:EC2/X", "severity": 5, "resource": {"instanceDetails": {"instanceId": "i-0123456789abcdef0"}}}"#,
            r#"{"x": 1, "Id": "f1", "Type": "T:EC2/X", "Severity": 5, "Resource": {"InstanceDetails": {"InstanceId": "i-0123456789abcdef0"}}}"#,
            r#"{"version": "0", "detail": {"x": 1, "Id": "f1", "Type": "T:EC2/X", "Severity": 5, "Resource": {"InstanceDetails": {"InstanceId": "i-0123456789abcdef0"}}}}"#,
            r#"{"version": "0", "detail": {"Zone": 1, "id": "f1", "type": "T:EC2/X", "severity": 5, "Resource": {"InstanceDetails": {"InstanceId": "i-0"}}}}"#,
        ];
        for (i, case) in cases.iter().enumerate() {
            let from_bytes = Findings::new(case.as_bytes())
                .next()
                .and_then(|r| r.ok())
                .and_then(|r| r.ok());
            let value: Value = serde_json::from_str(case).unwrap_or_default();
            let from_value = decode_value(value)
                .unwrap_or_default()
                .pop()
                .and_then(|r| r.ok());
            let (Some(a), Some(b)) = (from_bytes, from_value) else {
                panic!("case {i}: both decode");
            };
            assert_eq!(view(&a), view(&b), "case {i}");
            assert_eq!(a.id, "f1");
            assert_eq!(a.severity, Some(5.0));
            let expected = (i < 3).then_some("i-0123456789abcdef0");
            assert_eq!(a.instance_id(), expected, "case {i}");
        }
    }

    /// Every typed field, and the raw JSON.
    fn view(f: &Finding) -> String {
        format!(
            "{:?}",
            (
                (
                    &f.id,
                    &f.arn,
                    &f.finding_type.name,
                    f.severity,
                    &f.account_id,
                    &f.region
                ),
                (
                    &f.partition,
                    &f.resource_type,
                    &f.resource_role,
                    &f.instance
                ),
                (
                    &f.action_type,
                    &f.remote_ips,
                    &f.remote_ports,
                    &f.local_ports,
                    &f.domain
                ),
                (
                    f.count,
                    f.archived,
                    &f.first_seen,
                    &f.last_seen,
                    &f.created_at,
                    &f.updated_at
                ),
                (
                    &f.title,
                    &f.detector_id,
                    &f.attack_sequence_arn,
                    &f.scan_trigger_finding_id
                ),
                (f.is_sample(), f.raw()),
            )
        )
    }

    #[test]
    fn corpus_findings_decode_the_same_from_bytes_and_from_a_value() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/tests/findings");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            let a = super::super::decode_bytes(&bytes).unwrap_or_default();
            let value: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let b = decode_value(value).unwrap_or_default();
            assert_eq!(a.len(), b.len());
            for (a, b) in a.iter().zip(&b) {
                match (a, b) {
                    (Ok(a), Ok(b)) => assert_eq!(view(a), view(b), "{}", entry.path().display()),
                    (a, b) => assert_eq!(a.as_ref().err(), b.as_ref().err()),
                }
                seen += 1;
            }
        }
        assert!(seen >= 17, "{seen}");
    }
}
