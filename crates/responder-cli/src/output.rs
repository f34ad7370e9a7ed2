//! Every write of the CLI to standard output and standard error goes through here.
//!
//! `print!` and `eprint!` panic when the write fails, and it fails as soon as the
//! reader has gone away: `responder plan ... | head -1` printed a panic and exited
//! with 101. Here a closed stream is not an error:
//!
//! - On a broken pipe the stream is marked closed and later output to it is dropped,
//!   quietly. The command still finishes its work and exits with its own code (0, 1 or
//!   2 as documented per command): `responder run ... | head -1` never stops halfway
//!   through the responses because the reader left, and a failed plan still exits 2.
//! - Any other write error (a full disk) is reported once on standard error and the
//!   stream is closed the same way.
//!
//! Text for people ([`out_text`], [`err_text`]) is also made safe for a terminal line
//! by line: control, bidi and zero-width characters are written as escapes
//! (`responder_core::text::escape`), newlines are kept. JSON ([`out_json`]) is written
//! as serde_json made it (it escapes control characters itself).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use responder_core::text::escape;

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes text for people to standard output, escaped line by line.
pub fn out_text(text: &str) {
    write_to(
        &mut io::stdout().lock(),
        &STDOUT_CLOSED,
        &escape_lines(text),
    );
}

/// Writes a JSON document and a newline to standard output, unchanged.
pub fn out_json(json: &str) {
    let mut line = String::with_capacity(json.len() + 1);
    line.push_str(json);
    line.push('\n');
    write_to(&mut io::stdout().lock(), &STDOUT_CLOSED, &line);
}

/// Standard output written piece by piece through a buffer, for output that streams
/// (`responder plan`): the same rules as [`out_text`] and [`out_json`], flushed every
/// 64 KiB and at [`Stream::finish`] (or when dropped).
#[derive(Default)]
pub struct Stream {
    buf: String,
}

impl Stream {
    const FLUSH_AT: usize = 64 * 1024;

    /// Text for people, escaped line by line.
    pub fn text(&mut self, text: &str) {
        self.buf.push_str(&escape_lines(text));
        self.flush_if_full();
    }

    /// JSON (or anything already safe), unchanged.
    pub fn json(&mut self, json: &str) {
        self.buf.push_str(json);
        self.flush_if_full();
    }

    fn flush_if_full(&mut self) {
        if self.buf.len() >= Self::FLUSH_AT {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            write_to(&mut io::stdout().lock(), &STDOUT_CLOSED, &self.buf);
            self.buf.clear();
        }
    }

    /// Writes what is left.
    pub fn finish(mut self) {
        self.flush();
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Writes a message and a newline to standard error, escaped line by line.
pub fn err_text(text: &str) {
    let mut line = escape_lines(text);
    line.push('\n');
    write_to(&mut io::stderr().lock(), &STDERR_CLOSED, &line);
}

/// Each line escaped, the newlines between them kept.
fn escape_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| escape(line))
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_to(stream: &mut dyn Write, closed: &AtomicBool, text: &str) {
    if closed.load(Ordering::Relaxed) {
        return;
    }
    let result = stream
        .write_all(text.as_bytes())
        .and_then(|()| stream.flush());
    if let Err(e) = result {
        closed.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe && !std::ptr::eq(closed, &STDERR_CLOSED) {
            err_text(&format!("cannot write to standard output: {e}"));
        }
    }
}

/// `print!` through [`out_text`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::out_text(&format!($($arg)*))
    };
}

/// `println!` through [`out_text`].
macro_rules! outln {
    () => {
        $crate::output::out_text("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::out_text(&(format!($($arg)*) + "\n"))
    };
}

/// `eprintln!` through [`err_text`].
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::err_text(&format!($($arg)*))
    };
}

pub(crate) use {errln, out, outln};

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader has gone away.
    struct Closed(usize);

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.0 += 1;
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_pipe_closes_the_stream_quietly() {
        let closed = AtomicBool::new(false);
        let mut w = Closed(0);
        write_to(&mut w, &closed, "a\n");
        write_to(&mut w, &closed, "b\n");
        assert!(closed.load(Ordering::Relaxed));
        assert_eq!(w.0, 1, "nothing is written after the first failure");
    }

    #[test]
    fn lines_are_escaped_and_newlines_kept() {
        assert_eq!(
            escape_lines("a\u{1b}[2J\r\nb\u{202e}c\n"),
            "a\\u{1b}[2J\\r\nb\\u{202e}c\n"
        );
    }
}
