//! Kubernetes resource quantities ("4", "500m", "16Gi", "1e3") as whole numbers, computed
//! exactly in integers: `value` as Kubernetes' `Quantity.Value()` and `milli_value` as
//! `Quantity.MilliValue()`, both rounding a fraction up. Owns only the grammar and the
//! arithmetic; which capacity takes which unit is facts.rs's.
//!
//! The grammar is resource.Quantity's: an optional sign, digits with an optional decimal point
//! (`1`, `1.5`, `1.`, `.5`), then one suffix: binary `Ki Mi Gi Ti Pi Ei`, decimal
//! `n u m "" k M G T P E`, or an exponent `e<int>`/`E<int>` (`1e3`, `1E-3`, `1e+3`; a bare `E`
//! is exa). No whitespace. Anything else reads as `None`, and so does:
//!
//! - a negative quantity other than zero: no capacity is negative, so a sign there is a bad
//!   report, not a number worth keeping;
//! - a result beyond `i64` (`8Ei` bytes, `9223372036854775808`);
//! - more than `MAX_LEN` bytes, or more than `MAX_DIGITS` significant digits (leading and
//!   trailing zeros do not count): every `i64` has at most 19, and no capacity has a
//!   fraction that fine.

/// The longest quantity read, in bytes. Kubernetes writes any i64 capacity in at most 22.
const MAX_LEN: usize = 64;
/// The most significant digits read: enough for every i64, and few enough that the digits
/// shifted by the largest binary suffix (2^60) stay below 2^124 in a u128.
const MAX_DIGITS: usize = 19;
/// Exponents beyond this read as this: past it a nonzero result overflows i64 or rounds up
/// to 1 anyway.
const MAX_EXPONENT: i64 = 1000;

/// The quantity in units (bytes, counts), rounded up: `Quantity.Value()`.
pub fn value(s: &str) -> Option<i64> {
    scaled(s, 0)
}

/// The quantity in thousandths (millicores), rounded up: `Quantity.MilliValue()`.
pub fn milli_value(s: &str) -> Option<i64> {
    scaled(s, 3)
}

/// The quantity times 10^shift, rounded up.
fn scaled(s: &str, shift: i64) -> Option<i64> {
    if s.len() > MAX_LEN {
        return None;
    }
    let s = s.as_bytes();
    let (negative, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let (int, s) = s.split_at(digits(s));
    let (frac, suffix) = match s.split_first() {
        Some((b'.', rest)) => rest.split_at(digits(rest)),
        _ => (&s[..0], s),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let (pow2, pow10) = suffix_powers(suffix)?;
    // The number is D * 10^exp * 2^pow2, D being all its digits as one integer.
    let all = || int.iter().chain(frac);
    let total = int.len() + frac.len();
    let leading = all().take_while(|&&b| b == b'0').count();
    if leading == total {
        return Some(0);
    }
    if negative {
        return None;
    }
    let trailing = all().rev().take_while(|&&b| b == b'0').count();
    let significant = total - leading - trailing;
    if significant > MAX_DIGITS {
        return None;
    }
    let d = all()
        .skip(leading)
        .take(significant)
        .fold(0u128, |d, &b| d * 10 + u128::from(b - b'0'));
    // At most 64 bytes of digits, so these i64 sums cannot overflow.
    let exp = pow10 + shift + trailing as i64 - frac.len() as i64;
    let n = d << pow2;
    let whole = match u32::try_from(exp) {
        Ok(exp) => n.checked_mul(10u128.checked_pow(exp)?)?,
        // n < 2^124 < 10^38: divided by 10^38 or more it is a fraction, rounded up to 1.
        Err(_) if exp <= -38 => 1,
        Err(_) => n.div_ceil(10u128.pow(exp.unsigned_abs() as u32)),
    };
    i64::try_from(whole).ok()
}

/// The length of the run of ASCII digits that `s` starts with.
fn digits(s: &[u8]) -> usize {
    s.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// The powers of 2 and of 10 a suffix stands for.
fn suffix_powers(suffix: &[u8]) -> Option<(u32, i64)> {
    Some(match suffix {
        b"Ki" => (10, 0),
        b"Mi" => (20, 0),
        b"Gi" => (30, 0),
        b"Ti" => (40, 0),
        b"Pi" => (50, 0),
        b"Ei" => (60, 0),
        b"n" => (0, -9),
        b"u" => (0, -6),
        b"m" => (0, -3),
        b"" => (0, 0),
        b"k" => (0, 3),
        b"M" => (0, 6),
        b"G" => (0, 9),
        b"T" => (0, 12),
        b"P" => (0, 15),
        b"E" => (0, 18),
        [b'e' | b'E', exponent @ ..] => (0, exponent_value(exponent)?),
        _ => return None,
    })
}

/// An exponent's signed integer, clamped to `MAX_EXPONENT` either way.
fn exponent_value(s: &[u8]) -> Option<i64> {
    let (negative, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    if s.is_empty() || digits(s) != s.len() {
        return None;
    }
    let magnitude = s.iter().fold(0i64, |e, &b| {
        (e * 10 + i64::from(b - b'0')).min(MAX_EXPONENT)
    });
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_kubernetes_value_and_milli_value() {
        // (quantity, Value(), MilliValue()); most from Kubernetes' quantity_test.go.
        let cases: &[(&str, Option<i64>, Option<i64>)] = &[
            ("0", Some(0), Some(0)),
            ("1", Some(1), Some(1000)),
            ("110", Some(110), Some(110_000)),
            ("500m", Some(1), Some(500)),
            ("0.1", Some(1), Some(100)),
            ("100m", Some(1), Some(100)),
            ("1.5", Some(2), Some(1500)),
            (".5", Some(1), Some(500)),
            ("5.", Some(5), Some(5000)),
            ("+1", Some(1), Some(1000)),
            ("-0", Some(0), Some(0)),
            ("-0.0m", Some(0), Some(0)),
            (
                "0000000000000000000000000000000000000001",
                Some(1),
                Some(1000),
            ),
            ("1Ki", Some(1024), Some(1_024_000)),
            ("1.1Ki", Some(1127), Some(1_126_400)),
            ("100Mi", Some(104_857_600), Some(104_857_600_000)),
            ("8Gi", Some(8_589_934_592), Some(8_589_934_592_000)),
            ("8388608Ki", Some(8_589_934_592), Some(8_589_934_592_000)),
            ("1.5Gi", Some(1_610_612_736), Some(1_610_612_736_000)),
            ("16393292Ki", Some(16_786_731_008), Some(16_786_731_008_000)),
            ("1Ti", Some(1 << 40), Some(1_099_511_627_776_000)),
            ("7Ei", Some(7 << 60), None),
            ("8Ei", None, None),
            ("1n", Some(1), Some(1)),
            ("1u", Some(1), Some(1)),
            ("1000000u", Some(1), Some(1000)),
            ("0.0001m", Some(1), Some(1)),
            ("1k", Some(1000), Some(1_000_000)),
            ("1M", Some(1_000_000), Some(1_000_000_000)),
            ("1G", Some(1_000_000_000), Some(1_000_000_000_000)),
            ("1T", Some(1_000_000_000_000), Some(1_000_000_000_000_000)),
            (
                "1P",
                Some(1_000_000_000_000_000),
                Some(1_000_000_000_000_000_000),
            ),
            ("1E", Some(1_000_000_000_000_000_000), None),
            ("12E", None, None),
            ("1e3", Some(1000), Some(1_000_000)),
            ("1E3", Some(1000), Some(1_000_000)),
            ("1e+3", Some(1000), Some(1_000_000)),
            ("1.5e2", Some(150), Some(150_000)),
            ("1e-3", Some(1), Some(1)),
            ("1e-1000", Some(1), Some(1)),
            ("1e-99999999999999999999", Some(1), Some(1)),
            ("0e99999", Some(0), Some(0)),
            ("1e18", Some(1_000_000_000_000_000_000), None),
            ("1e19", None, None),
            ("1e99999999999999999999", None, None),
            ("9223372036854775807", Some(i64::MAX), None),
            ("9223372036854775808", None, None),
            (
                "9223372036854775807m",
                Some(9_223_372_036_854_776),
                Some(i64::MAX),
            ),
            (
                "1000000000000000000000n",
                Some(1_000_000_000_000),
                Some(1_000_000_000_000_000),
            ),
            (
                "1234567890123456789000000000n",
                Some(1_234_567_890_123_456_789),
                None,
            ),
            ("0.12345678901234567891", None, None),
            ("-1", None, None),
            ("-500m", None, None),
            ("-1e-3", None, None),
            ("", None, None),
            (".", None, None),
            ("+", None, None),
            ("m", None, None),
            ("Ki", None, None),
            ("1K", None, None),
            ("1KI", None, None),
            ("1ki", None, None),
            ("1 Gi", None, None),
            (" 1", None, None),
            ("1Gi ", None, None),
            ("1.5.5", None, None),
            ("1..5", None, None),
            ("1e", None, None),
            ("1e-", None, None),
            ("1ee3", None, None),
            ("1e3.5", None, None),
            ("1e3Gi", None, None),
            ("--1", None, None),
            ("0x10", None, None),
            ("１", None, None),
            ("1µ", None, None),
        ];
        for &(s, want, want_milli) in cases {
            assert_eq!((value(s), milli_value(s)), (want, want_milli), "{s:?}");
        }
    }

    #[test]
    fn long_quantities_are_not_read() {
        let at_cap = format!("{}1", "0".repeat(MAX_LEN - 1));
        assert_eq!(value(&at_cap), Some(1));
        assert_eq!(value(&format!("0{at_cap}")), None);
    }
}
