//! Reading back labels rendered as the text formats spell them (`k="v",...`),
//! for the formats that carry them as pairs (protobuf, remote write).

use std::borrow::Cow;

/// Calls `pair` with each name and unescaped value of `rendered`, labels
/// rendered as `k="v",...` with `\\`, `\"` and `\n` escaped in values (as
/// `SeriesMeta` and the self-metrics render them). A value without escapes is
/// borrowed.
pub fn parse_labels<'a>(rendered: &'a str, mut pair: impl FnMut(&'a str, Cow<'a, str>)) {
    let mut rest = rendered;
    while let Some((name, after)) = rest.split_once("=\"") {
        let name = name.trim_start_matches(',');
        let end = closing_quote(after);
        let raw = &after[..end];
        let value = if raw.contains('\\') {
            Cow::Owned(unescape(raw))
        } else {
            Cow::Borrowed(raw)
        };
        pair(name, value);
        rest = after.get(end + 1..).unwrap_or("");
    }
}

/// The position of the `"` that ends a value (past every escaped character),
/// or the end of `after`.
fn closing_quote(after: &str) -> usize {
    let bytes = after.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    after.len()
}

fn unescape(raw: &str) -> String {
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => value.push('\n'),
                Some(escaped) => value.push(escaped),
                None => {}
            },
            c => value.push(c),
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(rendered: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        parse_labels(rendered, |k, v| out.push((k.to_owned(), v.into_owned())));
        out
    }

    #[test]
    fn rendered_labels_parse_back_with_their_escapes() {
        assert_eq!(labels(""), []);
        assert_eq!(
            labels(r#"a="1",b="x \"y\" \\ z\nw""#),
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "x \"y\" \\ z\nw".to_owned())
            ]
        );
        assert_eq!(
            labels(r#"k="a,b=\"c""#),
            [("k".to_owned(), "a,b=\"c".to_owned())]
        );
        assert_eq!(
            labels(r#"k="\\",j="2""#),
            [
                ("k".to_owned(), "\\".to_owned()),
                ("j".to_owned(), "2".to_owned())
            ]
        );
    }
}
