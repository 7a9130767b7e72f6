//! Number parsing for values and sample rates, with an exact fast path.
//!
//! Nearly every value on the wire is a short decimal such as `1`, `320` or `12.5`.
//! For those, an integer mantissa of at most 15 digits (below 2^53, so exact as an
//! f64) divided by an exact power of ten gives the correctly rounded result, since
//! IEEE division rounds correctly (Clinger's fast path). That skips the general
//! parser's set-up, which was about an eighth of the decode time. Everything else
//! (exponents, long mantissas, `inf`) goes to `str::parse`, and a property test
//! checks that both paths agree bit for bit.

/// Exact powers of ten up to 10^15.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Parses `text` as a finite f64; `None` for anything else.
#[inline]
pub(crate) fn parse_finite(text: &str) -> Option<f64> {
    if let Some(value) = parse_short_decimal(text.as_bytes()) {
        return Some(value);
    }
    let value: f64 = text.parse().ok()?;
    value.is_finite().then_some(value)
}

/// `[+-]digits[.digits]` with at most 15 digits; `None` when the fast path does not apply.
#[inline]
fn parse_short_decimal(text: &[u8]) -> Option<f64> {
    let (negative, digits) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut digit_count = 0;
    let mut fraction_digits: Option<usize> = None;
    for &byte in digits {
        match byte {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(byte - b'0');
                digit_count += 1;
                if let Some(f) = fraction_digits.as_mut() {
                    *f += 1;
                }
            }
            b'.' if fraction_digits.is_none() => fraction_digits = Some(0),
            _ => return None,
        }
    }
    if digit_count == 0 || digit_count > 15 {
        return None;
    }
    let value = match fraction_digits {
        // No division for integers: it is the slowest step and exact division by 1 is a no-op.
        None | Some(0) => mantissa as f64,
        Some(f) => mantissa as f64 / POW10[f],
    };
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::parse_finite;

    /// The reference: std's parser, finite values only.
    fn reference(text: &str) -> Option<f64> {
        text.parse::<f64>().ok().filter(|v| v.is_finite())
    }

    #[test]
    fn parses_common_values_exactly() {
        for text in [
            "1",
            "320",
            "12.5",
            "-10",
            "+3",
            "0.1",
            ".5",
            "5.",
            "-0",
            "999999999999999",
        ] {
            assert_eq!(
                parse_finite(text).map(f64::to_bits),
                reference(text).map(f64::to_bits),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_finite_number() {
        for text in [
            "",
            ".",
            "-",
            "+",
            "1.2.3",
            "1e309",
            "nan",
            "inf",
            "-infinity",
            "0x10",
            "1_0",
            " 1",
        ] {
            assert_eq!(parse_finite(text), None, "{text}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_std_on_decimal_text(text in "[+-]?[0-9]{0,18}(\\.[0-9]{0,18})?([eE][+-]?[0-9]{1,3})?") {
            prop_assert_eq!(parse_finite(&text).map(f64::to_bits), reference(&text).map(f64::to_bits));
        }

        #[test]
        fn agrees_with_std_on_printed_floats(value in any::<f64>()) {
            for text in [value.to_string(), format!("{value:.3}"), format!("{value:e}")] {
                prop_assert_eq!(parse_finite(&text).map(f64::to_bits), reference(&text).map(f64::to_bits));
            }
        }
    }
}
