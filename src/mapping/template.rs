//! Capture templates of glob mappings, and statsd_exporter's metric name escaping.
//!
//! Both follow statsd_exporter's code rather than its documentation where the two
//! differ, so a migrated file gives the same names: a reference is `$` followed
//! by `[a-zA-Z0-9_$]+` (optionally in braces); a reference that is not a capture
//! number in range is removed, so `$1_total` is removed whole and `${1}_total`
//! is the way to write it. Regex mappings use the regex crate's `expand`,
//! which follows Go's `Regexp.Expand`.

/// A glob mapping's name or label value: text and capture references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A 0-based index into the glob's captures.
    Capture(usize),
}

impl GlobTemplate {
    /// Parses `template` for a glob with `captures` wildcards.
    pub fn parse(template: &str, captures: usize) -> Self {
        let bytes = template.as_bytes();
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < bytes.len() {
            if let Some((end, reference)) = reference_at(template, i) {
                match reference.parse::<usize>() {
                    Ok(n) if (1..=captures).contains(&n) => {
                        if !text.is_empty() {
                            parts.push(Part::Text(std::mem::take(&mut text)));
                        }
                        parts.push(Part::Capture(n - 1));
                    }
                    // Out of range or not a number: removed, as statsd_exporter does.
                    _ => {}
                }
                i = end;
            } else {
                let c = template[i..].chars().next().expect("in bounds");
                text.push(c);
                i += c.len_utf8();
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        GlobTemplate { parts }
    }

    /// The template with `captures` filled in.
    pub fn format(&self, captures: &[&str]) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Capture(i) => out.push_str(captures.get(*i).copied().unwrap_or("")),
            }
        }
        out
    }
}

/// The reference starting at byte `i` of `template` (`$name`, `${name}`, `${name`
/// or `$name}`), as the end of the match and the name; `None` when `i` is not a `$`
/// that starts one.
fn reference_at(template: &str, i: usize) -> Option<(usize, &str)> {
    let bytes = template.as_bytes();
    if bytes[i] != b'$' {
        return None;
    }
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    let run = |from: usize| {
        let len = bytes[from..].iter().take_while(|&&b| is_name(b)).count();
        (len > 0).then_some(from + len)
    };
    let (start, end) = match bytes.get(i + 1) {
        Some(b'{') => match run(i + 2) {
            Some(end) => (i + 2, end),
            None => return None,
        },
        _ => (i + 1, run(i + 1)?),
    };
    let after = if bytes.get(end) == Some(&b'}') {
        end + 1
    } else {
        end
    };
    Some((after, &template[start..end]))
}

/// `name` as statsd_exporter escapes mapped names: characters outside
/// `[a-zA-Z0-9_]` become `_`, the second of two dashes in a row is removed, and
/// a leading digit gets a `_` in front.
pub fn escape_metric_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    let mut previous = None;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !(c == '-' && previous == Some('-')) {
            out.push('_');
        }
        previous = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_follow_statsd_exporter() {
        let caps = ["a", "b", "c"];
        assert_eq!(GlobTemplate::parse("x_${1}_$2", 3).format(&caps), "x_a_b");
        assert_eq!(GlobTemplate::parse("${3}", 3).format(&caps), "c");
        // `$1_total` names the capture "1_total", which is not a number: removed.
        assert_eq!(GlobTemplate::parse("n_$1_total", 3).format(&caps), "n_");
        assert_eq!(
            GlobTemplate::parse("n_${1}_total", 3).format(&caps),
            "n_a_total"
        );
        // Out of range, zero and names are removed too.
        assert_eq!(GlobTemplate::parse("$4-$0-${x}y", 3).format(&caps), "--y");
        // `$` is part of a reference's name, so `$1$2` is one unknown reference.
        assert_eq!(GlobTemplate::parse("$1$2", 3).format(&caps), "");
        assert_eq!(GlobTemplate::parse("plain", 0).format(&[]), "plain");
        assert_eq!(GlobTemplate::parse("a$", 1).format(&caps), "a$");
    }

    #[test]
    fn names_are_escaped_as_statsd_exporter_does() {
        assert_eq!(escape_metric_name("foo.bar-baz"), "foo_bar_baz");
        assert_eq!(escape_metric_name("a--b"), "a_b");
        assert_eq!(escape_metric_name("a---b"), "a_b");
        assert_eq!(escape_metric_name("9lives"), "_9lives");
        assert_eq!(escape_metric_name("ok_name:x"), "ok_name_x");
        assert_eq!(escape_metric_name("température"), "temp_rature");
    }
}
