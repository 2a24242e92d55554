//! Number formatting that matches what pandas writes into the Kaggle CSVs.
//!
//! The dataset was produced by `DataFrame.to_csv`, which prints a float64 the
//! way Python's `repr(float)` does: the shortest digits that round-trip,
//! always with a fractional part (`45.0`), and in exponent form with a signed,
//! at-least-two-digit exponent when the decimal point would fall outside
//! `1e-4 <= |x| < 1e16` (`6.281418905018654e-07`, `1e+16`). Rust's `Display`
//! prints `45` and never switches to exponent form, so the digits are taken
//! from Rust's shortest `{:e}` output and re-laid-out here.
//!
//! One subtlety: when a value lies exactly halfway between the two nearest
//! shortest candidates, Python picks the even last digit while Rust may round
//! up (`248.72f32` widened is `248.720001220703125`: Python prints
//! `…0312`, Rust `…0313`). Float32-widened prices hit such ties often, so
//! they are detected exactly and re-rounded.
//!
//! Everything appends to a caller-owned buffer so that writing a row does not
//! allocate.

use std::fmt::{self, Write as _};

/// Decimal exponent (of the form `d.ddd × 10^e`) below which Python switches
/// to exponent notation: `0.0001` is positional, `1e-05` is not.
const SMALLEST_POSITIONAL_EXPONENT: i32 = -4;

/// Decimal exponent from which Python switches to exponent notation:
/// `1000000000000000.0` is positional, `1e+16` is not.
const LARGEST_POSITIONAL_EXPONENT: i32 = 15;

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

    let mut scientific = ScratchText::default();
    write!(scientific, "{value:e}").expect("an f64 in exponent form fits in the scratch buffer");
    let mut shortest = DecimalDigits::parse(scientific.as_bytes());
    if is_halfway_between_candidates(value, &shortest) {
        shortest = round_half_to_even(value, shortest.digit_count);
    }
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

/// Memo of recently formatted values, for data where values recur.
///
/// Formatting is the main cost of writing a row, and quotes sit on a cent
/// grid, so within one file ~60% of the values printed have been printed
/// before. A direct-mapped table keyed by the value's bits skips the work for
/// those; a collision just replaces the slot.
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
pub fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut text = [0u8; 20];
    let mut start = text.len();
    loop {
        start -= 1;
        text[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&text[start..]);
}

/// Whether the exact value of `value` lies exactly halfway between two
/// `shortest.digit_count`-digit decimals, so Rust and Python may pick
/// different (equally short, equally close) digits.
///
/// A double `m * 2^q` with odd `m` and `q < 0` equals `m * 5^-q / 10^-q`,
/// whose last nonzero digit is a 5 in the `10^q` place. It is a tie exactly
/// when that place is the first digit after the shortest digits.
fn is_halfway_between_candidates(value: f64, shortest: &DecimalDigits) -> bool {
    let first_dropped_place = shortest.exponent - shortest.digit_count as i32;
    lowest_binary_place(value) == Some(first_dropped_place)
}

/// `q` of `value = m * 2^q` with odd `m`, when `q < 0` (`None` for zero and
/// integers, whose expansions have no fractional digit to tie on).
fn lowest_binary_place(value: f64) -> Option<i32> {
    const FRACTION_BITS: u32 = 52;
    const EXPONENT_BIAS: i32 = 1075; // 1023 + 52: the mantissa is an integer
    let bits = value.to_bits();
    let fraction = bits & ((1u64 << FRACTION_BITS) - 1);
    let biased_exponent = ((bits >> FRACTION_BITS) & 0x7ff) as i32;
    let (mantissa, exponent) = if biased_exponent == 0 {
        (fraction, 1 - EXPONENT_BIAS) // subnormal
    } else {
        (
            fraction | (1u64 << FRACTION_BITS),
            biased_exponent - EXPONENT_BIAS,
        )
    };
    if mantissa == 0 {
        return None;
    }
    let place = exponent + mantissa.trailing_zeros() as i32;
    (place < 0).then_some(place)
}

/// The `digit_count`-digit decimal nearest to a `value` that lies exactly
/// halfway between two of them, choosing the even last digit as Python's
/// `repr` does (Rust's shortest formatting may round up instead).
fn round_half_to_even(value: f64, digit_count: usize) -> DecimalDigits {
    // The exact expansion has `digit_count + 1` digits, so printing that many
    // involves no rounding: it is the lower candidate followed by a 5.
    let mut exact = ScratchText::default();
    write!(exact, "{value:.digit_count$e}")
        .expect("a tie has at most 18 digits and fits in the scratch buffer");
    let mut digits = DecimalDigits::parse(exact.as_bytes());
    digits.digit_count = digit_count;
    if digits.digit_bytes[digit_count - 1] % 2 == 1 {
        digits.increment_last_digit();
    }
    digits
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

/// Significant digits kept: 17 for a shortest round-trip f64, one more when
/// the exact expansion of a tie is read.
const MAX_DIGITS: usize = 18;

/// A finite decimal `[-]d.ddd × 10^exponent` split into its parts.
struct DecimalDigits {
    negative: bool,
    /// Significant digits without the decimal point, e.g. `6281418905018654`.
    digit_bytes: [u8; MAX_DIGITS],
    digit_count: usize,
    /// Power of ten of the first digit, e.g. `-7`.
    exponent: i32,
}

impl DecimalDigits {
    /// Splits `[-]d[.ddd]e[-]x` as written by `{:e}` for a finite f64.
    fn parse(text: &[u8]) -> Self {
        let (negative, unsigned) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, text),
        };
        let e_position = unsigned
            .iter()
            .position(|&byte| byte == b'e')
            .unwrap_or(unsigned.len());
        let (mantissa, exponent_text) = unsigned.split_at(e_position);

        let mut digit_bytes = [b'0'; MAX_DIGITS];
        let mut digit_count = 0;
        for &byte in mantissa.iter().filter(|byte| byte.is_ascii_digit()) {
            digit_bytes[digit_count] = byte;
            digit_count += 1;
        }
        DecimalDigits {
            negative,
            digit_bytes,
            digit_count,
            exponent: parse_exponent(exponent_text.get(1..).unwrap_or_default()),
        }
    }

    fn digits(&self) -> &[u8] {
        &self.digit_bytes[..self.digit_count]
    }

    /// Adds one unit in the last place, carrying, and drops trailing zeros
    /// so the digits stay shortest (`0.19` + 1 → `0.2`).
    fn increment_last_digit(&mut self) {
        let mut position = self.digit_count;
        loop {
            if position == 0 {
                // 99…9 + 1: a single 1 one decade up.
                self.digit_bytes[0] = b'1';
                self.digit_count = 1;
                self.exponent += 1;
                return;
            }
            position -= 1;
            if self.digit_bytes[position] == b'9' {
                self.digit_bytes[position] = b'0';
            } else {
                self.digit_bytes[position] += 1;
                break;
            }
        }
        while self.digit_count > 1 && self.digit_bytes[self.digit_count - 1] == b'0' {
            self.digit_count -= 1;
        }
    }
}

fn parse_exponent(text: &[u8]) -> i32 {
    let (sign, magnitude_text) = match text.split_first() {
        Some((b'-', rest)) => (-1, rest),
        _ => (1, text),
    };
    let magnitude = magnitude_text
        .iter()
        .fold(0i32, |acc, &byte| acc * 10 + i32::from(byte - b'0'));
    sign * magnitude
}

/// Fixed-size stack buffer for one `{:e}` rendering of an f64.
///
/// The longest possible output, `-2.2250738585072014e-308`, is 24 bytes.
#[derive(Default)]
struct ScratchText {
    bytes: [u8; 32],
    len: usize,
}

impl ScratchText {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Write for ScratchText {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
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
        let cases: [(f64, &str); 20] = [
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
        ];
        for (value, expected) in cases {
            assert_eq!(python_repr(value), expected, "{value:e}");
        }
    }

    #[test]
    fn cache_returns_what_it_would_compute() {
        let mut cache = FloatTextCache::default();
        let values = [
            45.0,
            0.1,
            -0.0,
            0.0,
            6.281418905018654e-07,
            45.0,
            0.1,
            -0.0,
            0.0,
        ];
        for _ in 0..2 {
            for value in values {
                let mut cached = Vec::new();
                cache.push(&mut cached, value);
                assert_eq!(
                    String::from_utf8(cached).expect("ASCII"),
                    python_repr(value)
                );
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
        assert_eq!(out, u64::MAX.to_string().as_bytes());
    }
}
