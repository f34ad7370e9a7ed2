//! Finding-derived text made safe to show: in a terminal, a report, a log line or an
//! SNS subject.
//!
//! Every string in a finding is written by whoever can influence the finding (an
//! instance's tags, a DNS name it looked up, a process name), and a terminal obeys
//! what it prints: `ESC [2J` clears the screen, `CR` overwrites the line, U+202E
//! (right-to-left override) shows `exe.txt` for `txt.exe`. [`escape`] writes every
//! such character as a visible escape (`\u{1b}`, `\r`, `\u{202e}`) and leaves all other
//! text, normal Unicode included, as it is.

use std::borrow::Cow;

use serde_json::Value;

/// True for the characters [`escape`] rewrites: control characters (C0, DEL, C1),
/// line and paragraph separators, and the invisible format characters that reorder or
/// hide text (bidi embeddings, overrides and isolates, the Arabic letter mark,
/// zero-width characters, the byte order mark, interlinear annotation marks, and the
/// tag characters U+E0000 to U+E007F that can smuggle invisible ASCII).
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// The text with every character of [`needs_escape`] written as an escape, the way
/// Rust's `escape_debug` writes it (`\n`, `\r`, `\t`, `\0`, otherwise `\u{hex}`). Other
/// characters, backslashes and quotes included, are unchanged; text that needs no
/// escape is borrowed, not copied.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`escape`], then cut to at most `max` characters; a cut value ends in `...` (ASCII,
/// so that it fits every target, SNS subjects included) within the `max`.
pub fn escape_truncated(text: &str, max: usize) -> String {
    let escaped = escape(text);
    if escaped.chars().count() <= max {
        return escaped.into_owned();
    }
    let keep = max.saturating_sub(3);
    let mut out: String = escaped.chars().take(keep).collect();
    out.push_str(&"..."[..max.min(3)]);
    out
}

/// Every string in a JSON value (object keys included) passed through [`escape`].
/// serde_json already escapes control characters in its output, but not the bidi and
/// zero-width characters that a mail client or a browser would obey.
pub fn escape_json(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(match escape(&s) {
            Cow::Borrowed(_) => s,
            Cow::Owned(o) => o,
        }),
        Value::Array(items) => Value::Array(items.into_iter().map(escape_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (escape(&k).into_owned(), escape_json(v)))
                .collect(),
        ),
        other => other,
    }
}

/// SNS subjects are shorter than this ("less than 100 characters").
pub const SNS_SUBJECT_LIMIT: usize = 100;

/// A valid SNS `Publish` subject made from any text: one line with no control
/// characters (they are escaped, so nothing is hidden), starting with a visible
/// character, and shorter than [`SNS_SUBJECT_LIMIT`] characters. Empty text gives
/// `GuardDuty finding`. Applying it twice gives the same subject.
pub fn sns_subject(text: &str) -> String {
    let subject = escape_truncated(text.trim(), SNS_SUBJECT_LIMIT - 1);
    let subject = subject.trim();
    if subject.is_empty() {
        "GuardDuty finding".to_owned()
    } else {
        subject.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls_and_reordering_only() {
        assert_eq!(
            escape("a\u{1b}[2Jb\rc\u{7}d\u{9b}e"),
            "a\\u{1b}[2Jb\\rc\\u{7}d\\u{9b}e"
        );
        assert_eq!(escape("txt\u{202e}exe.x\n"), "txt\\u{202e}exe.x\\n");
        assert_eq!(
            escape("\u{200b}\u{2066}\u{feff}\u{e0041}"),
            "\\u{200b}\\u{2066}\\u{feff}\\u{e0041}"
        );
        for plain in [
            "",
            "ünïcödé 日本語 😀",
            "C:\\path \"quoted\" 'x'",
            "tab-free",
        ] {
            assert!(matches!(escape(plain), Cow::Borrowed(_)), "{plain}");
        }
        // Nothing escaped is left in the output.
        assert!(
            !escape("\u{0}\u{1f}\u{7f}\u{85}\u{2028}")
                .chars()
                .any(needs_escape)
        );
    }

    #[test]
    fn truncation_and_subjects() {
        assert_eq!(escape_truncated("abcdef", 6), "abcdef");
        assert_eq!(escape_truncated("abcdefg", 6), "abc...");
        assert_eq!(escape_truncated("\n\n\n\n", 5), "\\n...");
        let long = format!("Guard\r\nDuty \u{1b}[2J {}", "x".repeat(500));
        let s = sns_subject(&long);
        assert!(s.chars().count() < SNS_SUBJECT_LIMIT, "{s}");
        assert!(!s.chars().any(needs_escape), "{s}");
        assert!(s.starts_with("Guard\\r\\nDuty \\u{1b}[2J x"), "{s}");
        assert_eq!(sns_subject(&s), s);
        assert_eq!(sns_subject(" \u{3000} "), "GuardDuty finding");
        assert_eq!(sns_subject(" a\tb "), "a\\tb");
        assert_eq!(sns_subject(" \t "), "GuardDuty finding");
    }

    #[test]
    fn json_strings_and_keys_are_escaped() {
        let v = serde_json::json!({"k\u{202e}": ["a\u{1b}", 1, {"x": "ok"}]});
        assert_eq!(
            escape_json(v),
            serde_json::json!({"k\\u{202e}": ["a\\u{1b}", 1, {"x": "ok"}]})
        );
    }
}
