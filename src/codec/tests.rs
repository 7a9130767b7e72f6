//! Conformance table for the decoder, plus never-panics and round-trip properties.

use proptest::prelude::*;

use super::*;

/// An owned summary of one decoded metric, for comparing against expectations.
#[derive(Debug, PartialEq)]
struct Seen {
    name: String,
    kind: MetricType,
    values: Vec<(f64, bool)>,
    member: Option<String>,
    rate: f64,
    tags: Vec<String>,
    container: Option<String>,
    timestamp: Option<std::num::NonZeroU64>,
}

impl Seen {
    fn of(metric: &Metric<'_>) -> Seen {
        Seen {
            name: metric.name.to_owned(),
            kind: metric.kind,
            values: metric
                .payload
                .samples()
                .map(|s| (s.value, s.signed))
                .collect(),
            member: match metric.payload {
                Payload::SetMember(m) => Some(m.to_owned()),
                Payload::Numbers { .. } => None,
            },
            rate: metric.sample_rate,
            tags: metric.tags.iter().map(str::to_owned).collect(),
            container: metric.container_id.map(str::to_owned),
            timestamp: metric.timestamp,
        }
    }
}

/// Expected metric builder: unsigned values, rate 1, no tags.
fn metric(name: &str, kind: MetricType, values: &[f64]) -> Seen {
    Seen {
        name: name.to_owned(),
        kind,
        values: values.iter().map(|&v| (v, false)).collect(),
        member: None,
        rate: 1.0,
        tags: vec![],
        container: None,
        timestamp: None,
    }
}

impl Seen {
    fn rate(mut self, rate: f64) -> Seen {
        self.rate = rate;
        self
    }
    fn tags(mut self, tags: &[&str]) -> Seen {
        self.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }
    fn signed(mut self) -> Seen {
        self.values.iter_mut().for_each(|v| v.1 = true);
        self
    }
    fn member(mut self, member: &str) -> Seen {
        self.member = Some(member.to_owned());
        self
    }
}

/// Decodes `input` as one datagram, expecting exactly one non-blank line.
fn decode_one(input: &[u8]) -> Result<Seen, RejectReason> {
    let mut lines = Decoder::new(65_535).lines(input);
    let first = lines.next().expect("one line");
    assert!(lines.next().is_none(), "more than one line in {input:?}");
    match first.map_err(|e| e.reason)? {
        Message::Metric(m) => Ok(Seen::of(&m)),
        other => panic!("expected a metric, got {other:?}"),
    }
}

use MetricType::*;

#[test]
fn decodes_the_conformance_table() {
    let accepted: Vec<(&str, Seen)> = vec![
        (
            "foo:1|c|@0.1|#a:b",
            metric("foo", Counter, &[1.0]).rate(0.1).tags(&["a:b"]),
        ),
        (
            "foo:1|c|#a:b|@0.1",
            metric("foo", Counter, &[1.0]).rate(0.1).tags(&["a:b"]),
        ),
        ("foo:1|c|", metric("foo", Counter, &[1.0])),
        ("foo:1:2:3|d", metric("foo", Distribution, &[1.0, 2.0, 3.0])),
        ("foo:1:2|c", metric("foo", Counter, &[1.0, 2.0])),
        ("users:a:b|s", metric("users", Set, &[]).member("a:b")),
        ("g:-10|g", metric("g", Gauge, &[-10.0]).signed()),
        ("g:+3|g", metric("g", Gauge, &[3.0]).signed()),
        ("g:3|g", metric("g", Gauge, &[3.0])),
        ("t:320|ms|@0.1", metric("t", Timer, &[320.0]).rate(0.1)),
        ("h:0.25|h|@1", metric("h", Histogram, &[0.25])),
        (
            "foo:1|c|#a:b,,c",
            metric("foo", Counter, &[1.0]).tags(&["a:b", "c"]),
        ),
        (
            "foo:1|c|#env",
            metric("foo", Counter, &[1.0]).tags(&["env"]),
        ),
        ("foo:1|c|#", metric("foo", Counter, &[1.0])),
        ("foo:1|c\r\n", metric("foo", Counter, &[1.0])),
        (
            "foo:1|c|e:ext|card:high|zz|",
            metric("foo", Counter, &[1.0]),
        ),
        ("foo:-1.5e3|c", metric("foo", Counter, &[-1500.0]).signed()),
        (
            "a.b-c_d:1|c|#k:v:w",
            metric("a.b-c_d", Counter, &[1.0]).tags(&["k:v:w"]),
        ),
    ];
    for (input, expected) in accepted {
        assert_eq!(
            decode_one(input.as_bytes()),
            Ok(expected),
            "input {input:?}"
        );
    }
}

#[test]
fn keeps_container_id_and_timestamp_fields() {
    let seen = decode_one(b"foo:1|c|#a:b|c:abc|T1656581400").unwrap();
    assert_eq!(seen.tags, ["a:b"]);
    assert_eq!(seen.container.as_deref(), Some("abc"));
    assert_eq!(seen.timestamp.map(|t| t.get()), Some(1_656_581_400));
}

#[test]
fn rejects_each_bad_line_with_its_reason() {
    use RejectReason::*;
    let rejected: &[(&[u8], RejectReason)] = &[
        (b"foo:1|c|@0", BadSampleRate),
        (b"foo:1|c|@1.5", BadSampleRate),
        (b"foo:1|c|@-1", BadSampleRate),
        (b"foo:1|c|@abc", BadSampleRate),
        (b"foo:1|c|@nan", BadSampleRate),
        (b"foo:1|c|@", BadSampleRate),
        (b"foo:|c", BadValue),
        (b"foo:nan|g", BadValue),
        (b"foo:1e309|g", BadValue),
        (b"foo:inf|c", BadValue),
        (b"foo:abc|c", BadValue),
        (b"foo:1:|d", BadValue),
        (b"foo:1::2|d", BadValue),
        (b"foo:1:x|d", BadValue),
        (b"users:|s", BadValue),
        (b"foo:1|x", UnknownType),
        (b"foo:1|", UnknownType),
        (b"foo:1|C", UnknownType),
        (b"foo", Malformed),
        (b"foo:1", Malformed),
        (b"foo|c", Malformed),
        (b":1|c", EmptyName),
        (b"foo:1|c|Tsoon", BadTimestamp),
        (b"foo:1|c|T-5", BadTimestamp),
        (b"foo:\xff|c", InvalidUtf8),
        (b"_e{5,9}:title|text", MalformedEvent),
        (b"_e{x,4}:title|text", MalformedEvent),
        (b"_e{0,4}:|text", MalformedEvent),
        (b"_sc|db|7", MalformedServiceCheck),
        (b"_sc||0", MalformedServiceCheck),
    ];
    for &(input, reason) in rejected {
        assert_eq!(
            decode_one(input),
            Err(reason),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn recognises_events_and_service_checks() {
    let decoder = Decoder::new(65_535);
    let buf = b"_e{5,4}:title|text|p:low|#a:b\n_sc|db.up|2|d:1|#env:prod|m:down";
    let messages: Vec<_> = decoder.lines(buf).map(Result::unwrap).collect();
    let Message::Event(event) = messages[0] else {
        panic!("{messages:?}")
    };
    assert_eq!((event.title, event.text), ("title", "text"));
    assert_eq!(event.tags.iter().collect::<Vec<_>>(), ["a:b"]);
    let Message::ServiceCheck(check) = messages[1] else {
        panic!("{messages:?}")
    };
    assert_eq!((check.name, check.status), ("db.up", 2));
    assert_eq!(check.tags.iter().collect::<Vec<_>>(), ["env:prod"]);
}

/// Decodes a whole buffer to (offset-or-name, reason) pairs for datagram-level checks.
fn decode_all(buf: &[u8], max: usize) -> Vec<Result<String, DecodeError>> {
    Decoder::new(max)
        .lines(buf)
        .map(|r| {
            r.map(|m| match m {
                Message::Metric(m) => m.name.to_owned(),
                other => panic!("unexpected {other:?}"),
            })
        })
        .collect()
}

#[test]
fn skips_blank_lines_between_metrics() {
    let got = decode_all(b"a:1|c\n\nb:2|c\n\r\n\n", 100);
    assert_eq!(got, [Ok("a".to_owned()), Ok("b".to_owned())]);
}

#[test]
fn rejects_only_the_line_with_invalid_utf8() {
    let got = decode_all(b"a:1|c\nb\xc3\x28:1|c\nc:1|c", 100);
    let bad = DecodeError {
        reason: RejectReason::InvalidUtf8,
        offset: 6,
    };
    assert_eq!(got, [Ok("a".to_owned()), Err(bad), Ok("c".to_owned())]);
}

#[test]
fn accepts_multibyte_utf8_names_and_members() {
    let seen = decode_one("température:21.5|g|#lieu:salle_à_manger".as_bytes()).unwrap();
    assert_eq!(seen.name, "température");
    assert_eq!(seen.tags, ["lieu:salle_à_manger"]);
}

#[test]
fn rejects_a_70_kb_line_and_decodes_the_next() {
    let mut buf = b"big:".to_vec();
    buf.extend(std::iter::repeat_n(b'1', 70 * 1024));
    buf.extend_from_slice(b"|c\nsmall:1|c");
    let got = decode_all(&buf, 65_535);
    let too_long = DecodeError {
        reason: RejectReason::TooLong,
        offset: 0,
    };
    assert_eq!(got, [Err(too_long), Ok("small".to_owned())]);
}

#[test]
fn accepts_a_line_exactly_at_the_limit() {
    let line = b"abcdef:1|c";
    assert_eq!(decode_all(line, line.len()), [Ok("abcdef".to_owned())]);
    assert_eq!(
        decode_all(line, line.len() - 1)[0]
            .as_ref()
            .unwrap_err()
            .reason,
        RejectReason::TooLong
    );
}

#[test]
fn reports_the_offset_of_each_rejected_line() {
    let got = decode_all(b"a:1|c\nbad\nb:x|c", 100);
    assert_eq!(
        got[1],
        Err(DecodeError {
            reason: RejectReason::Malformed,
            offset: 6
        })
    );
    assert_eq!(
        got[2],
        Err(DecodeError {
            reason: RejectReason::BadValue,
            offset: 10
        })
    );
}

#[test]
fn reject_reason_names_are_unique_and_indexed_in_order() {
    for (i, reason) in RejectReason::ALL.iter().enumerate() {
        assert_eq!(reason.index(), i);
    }
    let mut names: Vec<_> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), RejectReason::ALL.len());
}

fn metric_type() -> impl Strategy<Value = MetricType> {
    prop_oneof![
        Just(Counter),
        Just(Gauge),
        Just(Timer),
        Just(Histogram),
        Just(Distribution),
        Just(Set)
    ]
}

proptest! {
    #[test]
    fn any_bytes_decode_without_panicking(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
        for item in Decoder::new(128).lines(&buf) {
            if let Err(e) = item {
                prop_assert!(e.offset < buf.len());
            }
        }
    }

    #[test]
    fn near_valid_lines_decode_without_panicking(line in "[a-z:|@#,.T0-9\\-+e_{}\r\n]{0,64}") {
        for item in Decoder::new(64).lines(line.as_bytes()) {
            let _ = item;
        }
    }

    #[test]
    fn one_pass_decoding_agrees_with_line_by_line_decoding(
        lines in proptest::collection::vec("[a-c]{0,3}(:[0-9.\\-]{0,3}){0,2}(\\|[cgmsdhT@#:,0-9.a-b]{0,4}){0,4}\r?", 0..6)
    ) {
        let buf = lines.join("\n");
        let decoder = Decoder::new(12);
        let got: Vec<_> = decoder.lines(buf.as_bytes()).collect();
        let mut expected = Vec::new();
        let mut offset = 0;
        for line in buf.split('\n') {
            let content = line.strip_suffix('\r').unwrap_or(line);
            if !content.is_empty() {
                let reject = |reason| DecodeError { reason, offset };
                expected.push(if content.len() > 12 {
                    Err(reject(RejectReason::TooLong))
                } else {
                    decode_line(content).map_err(reject)
                });
            }
            offset += line.len() + 1;
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn decoding_into_a_reused_line_agrees_with_the_iterator(
        lines in proptest::collection::vec(
            "(_e\\{1,1\\}:a\\|b|_sc\\|a\\|0|[a-c]{0,3}(:[0-9.\\-]{0,3}){0,2}(\\|[cgmsdhT@#:,0-9.a-b]{0,4}){0,4})\r?",
            0..8,
        ),
        styled in any::<bool>(),
    ) {
        let buf = lines.join("\n");
        let styles = if styled {
            [TagStyles::INFLUXDB, TagStyles::LIBRATO, TagStyles::SIGNALFX, TagStyles::GRAPHITE]
                .into_iter()
                .fold(TagStyles::DOGSTATSD, TagStyles::with)
        } else {
            TagStyles::DOGSTATSD
        };
        let decoder = Decoder::new(12).with_tag_styles(styles);
        let expected: Vec<_> = decoder.lines(buf.as_bytes()).collect();
        let mut lines = decoder.lines(buf.as_bytes());
        // Whatever the line before left in it.
        let mut metric = Metric::BLANK;
        let mut got = Vec::new();
        while let Some(line) = lines.next_into(&mut metric) {
            got.push(line.map(|kind| (kind, (kind == LineKind::Metric).then_some(metric))));
        }
        prop_assert_eq!(got.len(), expected.len());
        for (got, expected) in got.iter().zip(&expected) {
            match (got, expected) {
                (Ok((LineKind::Metric, Some(m))), Ok(Message::Metric(e))) => prop_assert_eq!(m, e),
                (Ok((LineKind::Event, None)), Ok(Message::Event(_))) => {}
                (Ok((LineKind::ServiceCheck, None)), Ok(Message::ServiceCheck(_))) => {}
                (Err(g), Err(e)) => prop_assert_eq!(g, e),
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }

    #[test]
    fn well_formed_lines_round_trip(
        name in "[a-zA-Z][a-zA-Z0-9_.]{0,30}",
        kind in metric_type(),
        values in proptest::collection::vec(-1e9f64..1e9, 1..4),
        rate in prop_oneof![Just(1.0f64), 0.001f64..=1.0],
        tags in proptest::collection::vec("[a-z]{1,8}(:[a-z0-9]{1,8})?", 0..6),
    ) {
        let values = if kind == Set { vec![values[0]] } else { values };
        let value_text: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let mut line = format!("{name}:{}|{}|@{rate}", value_text.join(":"), kind.as_str());
        if !tags.is_empty() {
            line.push_str(&format!("|#{}", tags.join(",")));
        }
        let decoded = decode_one(line.as_bytes()).unwrap();
        prop_assert_eq!(&decoded.name, &name);
        prop_assert_eq!(decoded.kind, kind);
        prop_assert_eq!(decoded.rate, rate);
        prop_assert_eq!(&decoded.tags, &tags);
        if kind == Set {
            prop_assert_eq!(decoded.member, Some(value_text[0].clone()));
        } else {
            let got: Vec<f64> = decoded.values.iter().map(|v| v.0).collect();
            prop_assert_eq!(got, values);
        }
    }
}

/// A decoded name with its tags as `key=value`, or the rejection.
type Styled = Result<(String, Vec<String>), RejectReason>;

/// Decodes the single line `line` with `styles`: the name and every tag as
/// `key=value` (the name's first), or the rejection.
fn styled(line: &str, styles: TagStyles) -> Styled {
    let decoder = Decoder::new(1024).with_tag_styles(styles);
    match decoder.lines(line.as_bytes()).next().expect("one line") {
        Ok(Message::Metric(m)) => Ok((
            m.name.to_owned(),
            m.tags.pairs().map(|(k, v)| format!("{k}={v}")).collect(),
        )),
        Ok(other) => panic!("{line}: not a metric: {other:?}"),
        Err(e) => Err(e.reason),
    }
}

#[test]
fn tag_styles_conformance() {
    let all = TagStyles::DOGSTATSD
        .with(TagStyles::INFLUXDB)
        .with(TagStyles::LIBRATO)
        .with(TagStyles::SIGNALFX)
        .with(TagStyles::GRAPHITE);
    let ok = |name: &str, tags: &[&str]| {
        Ok((
            name.to_owned(),
            tags.iter().map(|t| t.to_string()).collect(),
        ))
    };
    let table: [(&str, TagStyles, Styled); 16] = [
        (
            "a.b,env=prod,az=1:1|c",
            all,
            ok("a.b", &["env=prod", "az=1"]),
        ),
        (
            "a.b#env=prod,az=1:1|c",
            all,
            ok("a.b", &["env=prod", "az=1"]),
        ),
        (
            "a.b;env=prod;az=1:1|c",
            all,
            ok("a.b", &["env=prod", "az=1"]),
        ),
        (
            "a.b[env=prod,az=1]:1|c",
            all,
            ok("a.b", &["env=prod", "az=1"]),
        ),
        ("[env=prod]a.b:1|c", all, ok("a.b", &["env=prod"])),
        ("a.[]b:1|c", all, Err(RejectReason::BadTags)),
        ("a.[env=prod]b:1|c", all, Err(RejectReason::BadTags)),
        ("a.b[env=prod:1|c", all, Err(RejectReason::BadTags)),
        // Name tags merge with |# tags, the name's first.
        ("a,env=prod:1|c|#az:b", all, ok("a", &["env=prod", "az=b"])),
        // Tags are passed on in DogStatsD's form, where `,` separates tags.
        ("a;k=x,y:1|c", all, Err(RejectReason::BadTags)),
        ("a;k==v:1|c", all, ok("a", &["k==v"])),
        ("a,env:1|c", all, Err(RejectReason::BadTags)),
        ("a,=v:1|c", all, Err(RejectReason::BadTags)),
        (",env=prod:1|c", all, Err(RejectReason::EmptyName)),
        // A style that is off leaves its character in the name.
        (
            "a,env=prod:1|c",
            TagStyles::DOGSTATSD,
            ok("a,env=prod", &[]),
        ),
        // DogStatsD's style off: `|#` is ignored.
        ("a:1|c|#env:prod", TagStyles::GRAPHITE, ok("a", &[])),
    ];
    for (line, styles, expected) in table {
        assert_eq!(styled(line, styles), expected, "{line}");
    }
}
