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

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};
use serde_json::Value;

/// True for the characters [`escape`] rewrites: control characters (C0, DEL, C1),
/// line and paragraph separators, and every character that shows nothing or changes
/// how the text around it shows: the Unicode format characters (general category Cf:
/// bidi embeddings, overrides and isolates, the Arabic letter mark, zero-width
/// characters, the byte order mark, interlinear annotation marks, the tag characters
/// that can smuggle invisible ASCII) and the default-ignorable code points (soft
/// hyphen, the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0, variation selectors,
/// combining grapheme joiner), both from the Unicode Character Database as
/// `icu_properties` ships it; and the symbols fonts draw as blank space (U+2800
/// braille pattern blank, U+1D159 musical null notehead), which a name can hide
/// behind. Visible spaces (U+00A0, U+3000) are left alone.
pub fn needs_escape(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{2800}' | '\u{1d159}')
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
        || CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Format
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
            // `escape_debug` leaves the printable ones of these (U+3164) as they are.
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\0' => out.push_str("\\0"),
                c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            }
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
    fn invisible_and_blank_characters_are_escaped_as_a_class() {
        // The ones seen in findings' tag values, and the class they belong to.
        for c in [
            '\u{3164}',  // Hangul filler
            '\u{115f}',  // Hangul choseong filler
            '\u{1160}',  // Hangul jungseong filler
            '\u{ffa0}',  // halfwidth Hangul filler
            '\u{2800}',  // braille pattern blank
            '\u{00ad}',  // soft hyphen
            '\u{034f}',  // combining grapheme joiner
            '\u{17b4}',  // Khmer vowel inherent aq
            '\u{180b}',  // Mongolian free variation selector
            '\u{fe0f}',  // variation selector 16
            '\u{2064}',  // invisible plus
            '\u{1bca0}', // shorthand format letter overlap
            '\u{1d173}', // musical symbol begin beam
            '\u{e0100}', // variation selector 17
            '\u{0600}',  // Arabic number sign (format)
            '\u{110bd}', // Kaithi number sign (format)
            '\u{13430}', // Egyptian hieroglyph vertical joiner (format)
            '\u{2029}',  // paragraph separator
        ] {
            let text = format!("a{c}b");
            assert!(needs_escape(c), "U+{:04X}", u32::from(c));
            assert_eq!(
                escape(&text),
                format!("a\\u{{{:x}}}b", u32::from(c)),
                "U+{:04X}",
                u32::from(c)
            );
        }
        // Visible text, spaces included, is not escaped.
        for c in [
            'a', 'é', '日', '😀', '\u{a0}', '\u{3000}', '\u{2764}', '\u{ac00}',
        ] {
            assert!(!needs_escape(c), "U+{:04X}", u32::from(c));
        }
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
