//! JSON as GameKit's Lambdas write it: Python's `json.dumps` with its defaults, `, ` between
//! items, `: ` after keys, and every character past ASCII escaped (`ensure_ascii`), so a
//! GameKit client reads the same bytes from Laurel as from GameKit.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};

/// `value` as Python's `json.dumps(value)` writes it (keys in the order `value` gives them).
pub(crate) fn dumps<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Python);
    value
        .serialize(&mut ser)
        .expect("an envelope of JSON values serializes");
    out
}

/// serde_json's compact output with Python's separators and ASCII escapes.
struct Python;

impl Formatter for Python {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        // Python writes the control characters it has no short escape for as \u00XX, as
        // serde_json does; the short ones are the same.
        let text = match escape {
            CharEscape::Quote => "\\\"".to_string(),
            CharEscape::ReverseSolidus => "\\\\".into(),
            CharEscape::Solidus => "/".into(),
            CharEscape::Backspace => "\\b".into(),
            CharEscape::FormFeed => "\\f".into(),
            CharEscape::LineFeed => "\\n".into(),
            CharEscape::CarriageReturn => "\\r".into(),
            CharEscape::Tab => "\\t".into(),
            CharEscape::AsciiControl(byte) => format!("\\u{byte:04x}"),
        };
        w.write_all(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// Each as Python 3's `json.dumps` writes it.
    #[test]
    fn values_are_written_as_python_writes_them() {
        for (value, python) in [
            (json!({"a": 1, "b": [1, 2]}), r#"{"a": 1, "b": [1, 2]}"#),
            (json!([]), "[]"),
            (json!({}), "{}"),
            (
                json!("Amateur de bananes à gogo"),
                r#""Amateur de bananes \u00e0 gogo""#,
            ),
            (json!("🍌"), r#""\ud83c\udf4c""#),
            (json!("tab\tquote\"\u{1}"), r#""tab\tquote\"\u0001""#),
            (json!(null), "null"),
            (json!(true), "true"),
            (json!(1.5), "1.5"),
        ] {
            assert_eq!(
                String::from_utf8(super::dumps(&value)).unwrap(),
                python,
                "{value}"
            );
        }
    }
}
