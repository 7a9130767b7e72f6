//! Graphite paths and tags as carbon accepts them.
//!
//! Names follow Etsy StatsD's `keyNameSanitize`: runs of whitespace become
//! `_`, `/` becomes `-`, and anything else outside `[A-Za-z0-9_.-]` is
//! dropped; empty path components are removed too, since carbon would fold
//! `a..b` into `a.b` on disk. Tags follow Graphite 1.1's rules: a tag name
//! cannot hold `;!^=`, a value cannot hold `;` nor start with `~`, and
//! neither may hold whitespace (the plaintext protocol splits on it) or be
//! empty; what is not allowed becomes `_`.

use std::fmt::Write;

/// Appends `name` as a sanitised dotted path (`_` when nothing is left).
pub fn push_path(out: &mut String, name: &str) {
    let start = out.len();
    let mut space = false;
    for c in name.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space {
            push_part_char(out, start, '_');
            space = false;
        }
        match c {
            '/' => push_part_char(out, start, '-'),
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' | '.' => push_part_char(out, start, c),
            _ => {}
        }
    }
    if space {
        push_part_char(out, start, '_');
    }
    if out.len() > start && out.ends_with('.') {
        out.pop();
    }
    if out.len() == start {
        out.push('_');
    }
}

/// Pushes `c`, skipping a dot that would start the path or follow another.
fn push_part_char(out: &mut String, start: usize, c: char) {
    if c == '.' && (out.len() == start || out.ends_with('.')) {
        return;
    }
    out.push(c);
}

/// Appends `;key=value` for each tag (sorted by key, one key's values joined
/// with `,`, a bare tag as `key=true`).
pub fn push_tags<'t>(out: &mut String, tags: impl IntoIterator<Item = (&'t str, &'t str)>) {
    let mut previous: Option<&str> = None;
    for (key, value) in tags {
        if previous == Some(key) {
            out.push(',');
        } else {
            out.push(';');
            push_tag_part(out, key, |c| matches!(c, ';' | '!' | '^' | '='));
            out.push('=');
            previous = Some(key);
        }
        let value: &str = if value.is_empty() { "true" } else { value };
        let start = out.len();
        push_tag_part(out, value, |c| c == ';');
        if out[start..].starts_with('~') {
            out.replace_range(start..start + 1, "_");
        }
    }
}

fn push_tag_part(out: &mut String, text: &str, forbidden: impl Fn(char) -> bool) {
    if text.is_empty() {
        out.push('_');
    }
    for c in text.chars() {
        out.push(if c.is_whitespace() || forbidden(c) {
            '_'
        } else {
            c
        });
    }
}

/// Etsy StatsD's name for the quantile `q`'s stat: `upper_90` for 0.9,
/// `upper_99_9` for 0.999 (the percentile with `.` as `_`).
pub fn push_percentile_stat(out: &mut String, q: f64) {
    let mut text = String::new();
    let _ = write!(text, "{q}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut frac = frac.to_owned();
    while frac.len() < 2 {
        frac.push('0');
    }
    let (whole, rest) = frac.split_at(2);
    let percent: u64 = int.parse::<u64>().unwrap_or(0) * 100 + whole.parse::<u64>().unwrap_or(0);
    let _ = write!(out, "upper_{percent}");
    if !rest.is_empty() {
        out.push('_');
        out.push_str(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> String {
        let mut out = String::from("x.");
        push_path(&mut out, name);
        out
    }

    #[test]
    fn names_are_sanitised_as_etsy_statsd_does() {
        assert_eq!(path("api.requests"), "x.api.requests");
        assert_eq!(path("a b\t c"), "x.a_b_c");
        assert_eq!(path("disk/sda1.io"), "x.disk-sda1.io");
        assert_eq!(path("héllo:wörld!"), "x.hllowrld");
        assert_eq!(path("..a..b."), "x.a.b");
        assert_eq!(path("!!"), "x._");
    }

    #[test]
    fn tags_follow_graphite_rules() {
        let tags = [
            ("a=b", "x;y"),
            ("env", "prod"),
            ("env", "test"),
            ("flag", ""),
            ("t", "~tilde"),
        ];
        let mut out = String::new();
        push_tags(&mut out, tags);
        assert_eq!(out, ";a_b=x_y;env=prod,test;flag=true;t=_tilde");
    }

    #[test]
    fn percentiles_are_named_as_etsy_statsd_names_them() {
        let stat = |q| {
            let mut out = String::new();
            push_percentile_stat(&mut out, q);
            out
        };
        assert_eq!(stat(0.9), "upper_90");
        assert_eq!(stat(0.5), "upper_50");
        assert_eq!(stat(0.99), "upper_99");
        assert_eq!(stat(0.999), "upper_99_9");
        assert_eq!(stat(0.05), "upper_5");
        assert_eq!(stat(1.0), "upper_100");
        assert_eq!(stat(0.0), "upper_0");
        assert_eq!(stat(0.00001), "upper_0_001");
    }
}
