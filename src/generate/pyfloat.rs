//! Number formatting that matches what pandas writes into the Kaggle CSVs.
//!
//! The dataset was produced by `DataFrame.to_csv`, which prints a float64 the
//! way Python's `repr(float)` does: the shortest digits that round-trip,
//! always with a fractional part (`45.0`), and in exponent form with a signed,
//! at-least-two-digit exponent when the decimal point would fall outside
//! `1e-4 <= |x| < 1e16` (`6.281418905018654e-07`, `1e+16`). Rust's `Display`
//! prints `45` and never switches to exponent form, so this module lays the
//! digits out itself; choosing them (including Python's tie-breaking) is the
//! job of [`super::shortest`].
//!
//! Everything appends to a caller-owned buffer so that writing a row does not
//! allocate.

use super::shortest::shortest_digits;

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

    let shortest = shortest_digits(value);
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
