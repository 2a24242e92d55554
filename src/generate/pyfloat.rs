//! Number formatting that matches what pandas writes into the Kaggle CSVs.
//!
//! The dataset was produced by `DataFrame.to_csv`, which prints a float64 the
//! way Python's `repr(float)` does: the shortest digits that round-trip,
//! always with a fractional part (`45.0`), and in exponent form with a signed,
//! at-least-two-digit exponent when the decimal point would fall outside
//! `1e-4 <= |x| < 1e16` (`6.281418905018654e-07`, `1e+16`).
//!
//! The digits come from `ryu`, which picks them as Python does (fewest digits,
//! then nearest the exact value, then the even one on an exact tie: widened
//! `248.72f32` is `248.720001220703125` and both print `…0312`, where Rust's
//! `{:e}` prints `…0313`). Its layout differs (`1e16`, `6.2e-7`, `0.00001`), so
//! this module reads the digits and exponent back out of ryu's text and lays
//! them out Python's way.
//!
//! Everything appends to a caller-owned buffer so that writing a row does not
//! allocate.

/// Decimal exponent (of the form `d.ddd × 10^e`) below which Python switches
/// to exponent notation: `0.0001` is positional, `1e-05` is not.
const SMALLEST_POSITIONAL_EXPONENT: i32 = -4;

/// Decimal exponent from which Python switches to exponent notation:
/// `1000000000000000.0` is positional, `1e+16` is not.
const LARGEST_POSITIONAL_EXPONENT: i32 = 15;

/// Most significant digits a shortest round-trip f64 needs.
const MAX_SHORTEST_DIGITS: usize = 17;

/// Appends `value` formatted exactly like Python's `repr(value)`.
pub fn push_python_float(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 { b"inf" } else { b"-inf" });
        return;
    }

    let mut ryu_text = ryu::Buffer::new();
    let shortest = ShortestDigits::read(ryu_text.format_finite(value).as_bytes());
    let (digits, exponent) = (shortest.digits(), shortest.exponent);

    if shortest.negative {
        out.push(b'-');
    }
    if !(SMALLEST_POSITIONAL_EXPONENT..=LARGEST_POSITIONAL_EXPONENT).contains(&exponent) {
        push_exponent_form(out, digits, exponent);
    } else if exponent < 0 {
        // 0.000ddd
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-exponent - 1) as usize, b'0');
        out.extend_from_slice(digits);
    } else {
        let integer_digits = exponent as usize + 1;
        if integer_digits >= digits.len() {
            // ddd000.0
            out.extend_from_slice(digits);
            out.resize(out.len() + (integer_digits - digits.len()), b'0');
            out.extend_from_slice(b".0");
        } else {
            // ddd.ddd
            out.extend_from_slice(&digits[..integer_digits]);
            out.push(b'.');
            out.extend_from_slice(&digits[integer_digits..]);
        }
    }
}

/// A finite decimal `[-]d.ddd × 10^exponent` split into its parts.
struct ShortestDigits {
    negative: bool,
    digit_bytes: [u8; MAX_SHORTEST_DIGITS],
    digit_count: usize,
    /// Power of ten of the first digit, e.g. `-7` for `6.28e-7`.
    exponent: i32,
}

impl ShortestDigits {
    /// Splits ryu's text (`-0.0`, `45.0`, `0.00012`, `1e16`, `6.28e-7`) into
    /// significant digits (no leading or trailing zeros; `0` for zero) and
    /// the exponent of the first one.
    fn read(text: &[u8]) -> Self {
        let (negative, unsigned) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, text),
        };
        let e_position = unsigned
            .iter()
            .position(|&byte| byte == b'e')
            .unwrap_or(unsigned.len());
        let (mantissa, exponent_text) = unsigned.split_at(e_position);
        let written_exponent = exponent_text.get(1..).map_or(0, parse_exponent);
        let integer_digits = mantissa
            .iter()
            .position(|&byte| byte == b'.')
            .unwrap_or(mantissa.len()) as i32;

        let mut shortest = ShortestDigits {
            negative,
            digit_bytes: [b'0'; MAX_SHORTEST_DIGITS],
            digit_count: 0,
            exponent: 0,
        };
        // Place of the next digit relative to the decimal point (0 = units).
        let mut place = integer_digits - 1;
        for &byte in mantissa.iter().filter(|byte| byte.is_ascii_digit()) {
            if shortest.digit_count == 0 && byte == b'0' {
                place -= 1;
                continue;
            }
            if shortest.digit_count == 0 {
                shortest.exponent = written_exponent + place;
            }
            shortest.digit_bytes[shortest.digit_count] = byte;
            shortest.digit_count += 1;
        }
        while shortest.digit_count > 1 && shortest.digit_bytes[shortest.digit_count - 1] == b'0' {
            shortest.digit_count -= 1;
        }
        if shortest.digit_count == 0 {
            // Zero: one digit `0` in the units place.
            shortest.digit_count = 1;
        }
        shortest
    }

    /// Significant ASCII digits without the decimal point, e.g. `628`.
    fn digits(&self) -> &[u8] {
        &self.digit_bytes[..self.digit_count]
    }
}

/// `-7` / `16` after ryu's `e`.
fn parse_exponent(text: &[u8]) -> i32 {
    let (sign, magnitude) = match text.split_first() {
        Some((b'-', rest)) => (-1, rest),
        _ => (1, text),
    };
    sign * magnitude
        .iter()
        .fold(0, |value, &digit| value * 10 + i32::from(digit - b'0'))
}

/// Memo of recently formatted values, for data where values recur.
///
/// Formatting is the main cost of writing a row, and quotes sit on a cent
/// grid, so within one file ~60% of the values printed have been printed
/// before. A direct-mapped table keyed by the value's bits skips the work for
/// those; a collision just replaces the slot. The table is 160 KiB: create
/// one per thread and reuse it, not one per file.
pub struct FloatTextCache {
    slots: Box<[CachedText]>,
}

/// Slots in a [`FloatTextCache`] (a power of two).
const CACHE_SLOTS: usize = 1 << 12;

/// Longest text a slot holds; `-2.2250738585072014e-308` is 24 bytes, and
/// anything longer is simply not cached.
const CACHED_TEXT_BYTES: usize = 24;

#[derive(Clone, Copy)]
struct CachedText {
    bits: u64,
    /// 0 marks an empty slot: no float prints as an empty string.
    len: u8,
    text: [u8; CACHED_TEXT_BYTES],
}

impl Default for FloatTextCache {
    fn default() -> Self {
        let empty = CachedText {
            bits: 0,
            len: 0,
            text: [0; CACHED_TEXT_BYTES],
        };
        FloatTextCache {
            slots: vec![empty; CACHE_SLOTS].into_boxed_slice(),
        }
    }
}

impl FloatTextCache {
    /// Appends `value` formatted like Python's `repr`, as
    /// [`push_python_float`] does.
    pub fn push(&mut self, out: &mut Vec<u8>, value: f64) {
        let bits = value.to_bits();
        // Fibonacci hashing: the top bits of the product mix all input bits.
        let slot_index = (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            >> (64 - CACHE_SLOTS.trailing_zeros())) as usize;
        let slot = &mut self.slots[slot_index];
        if slot.len != 0 && slot.bits == bits {
            out.extend_from_slice(&slot.text[..usize::from(slot.len)]);
            return;
        }
        let start = out.len();
        push_python_float(out, value);
        let text = &out[start..];
        if let Some(cached) = slot.text.get_mut(..text.len()) {
            cached.copy_from_slice(text);
            slot.bits = bits;
            slot.len = text.len() as u8;
        }
    }
}

/// Appends `value` in decimal, without allocating.
pub fn push_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// `d.ddde+XX` / `de-XX`: Python's exponent layout.
fn push_exponent_form(out: &mut Vec<u8>, digits: &[u8], exponent: i32) {
    out.push(digits[0]);
    if digits.len() > 1 {
        out.push(b'.');
        out.extend_from_slice(&digits[1..]);
    }
    out.push(b'e');
    out.push(if exponent < 0 { b'-' } else { b'+' });
    let magnitude = exponent.unsigned_abs();
    if magnitude < 10 {
        out.push(b'0');
    }
    push_u64(out, u64::from(magnitude));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python_repr(value: f64) -> String {
        let mut out = Vec::new();
        push_python_float(&mut out, value);
        String::from_utf8(out).expect("ASCII output")
    }

    #[test]
    fn matches_python_repr() {
        let cases = [
            (45.0, "45.0"),
            (0.5133928656578064, "0.5133928656578064"),
            (31.473533630371094, "31.473533630371094"),
            (6.281418905018654e-07, "6.281418905018654e-07"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789.0, "123456789.0"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1e-05, "1e-05"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (f64::from(248.72_f32), "248.72000122070312"),
            (f64::MAX, "1.7976931348623157e+308"),
            (2.5e-05, "2.5e-05"),
            (123.456, "123.456"),
            (1.0000000000000002, "1.0000000000000002"),
            (f64::from(0.1_f32), "0.10000000149011612"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_repr(value), expected, "{value:e}");
        }
    }

    #[test]
    fn cache_returns_the_python_text_on_hits_and_misses() {
        let mut cache = FloatTextCache::default();
        let cases = [
            (45.0, "45.0"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (6.281418905018654e-07, "6.281418905018654e-07"),
            (-2.2250738585072014e-308, "-2.2250738585072014e-308"),
        ];
        for _ in 0..2 {
            for (value, expected) in cases {
                let mut cached = Vec::new();
                cache.push(&mut cached, value);
                assert_eq!(cached, expected.as_bytes(), "{value:e}");
            }
        }
    }

    #[test]
    fn non_finite_values_match_python() {
        assert_eq!(python_repr(f64::NAN), "nan");
        assert_eq!(python_repr(f64::INFINITY), "inf");
        assert_eq!(python_repr(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn integers_print_in_decimal() {
        for (value, expected) in [(0, "0"), (7, "7"), (43956200, "43956200")] {
            let mut out = Vec::new();
            push_u64(&mut out, value);
            assert_eq!(out, expected.as_bytes());
        }
        let mut out = Vec::new();
        push_u64(&mut out, u64::MAX);
        assert_eq!(out, b"18446744073709551615");
    }
}
