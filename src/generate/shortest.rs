//! The shortest decimal digits that round-trip an f64, chosen as Python
//! does: fewest significant digits, then the candidate nearest the exact
//! value, then (on an exact tie) the even last digit.
//!
//! Rust's own shortest formatting (`{:e}`) agrees except on exact ties, where
//! it may round up (`248.72f32` widened is `248.720001220703125`: Python
//! prints `…0312`, Rust `…0313`). Float32-widened prices, which this module
//! mostly prints, hit such ties often, and they also push Rust's Grisu
//! algorithm onto its slow Dragon fallback. So there are two paths:
//!
//! * [`exact_shortest`]: for a non-integral double `m * 2^-p` whose exact
//!   decimal expansion `m * 5^p` fits in a `u128` (every float32-widened
//!   price above ~0.004 does), the digits are found by integer arithmetic.
//! * [`formatted_shortest`]: everything else goes through `{:e}`, with exact
//!   ties detected and re-rounded to even.

use std::f64::consts::LOG10_2;
use std::fmt::{self, Write as _};

/// Most significant digits a shortest round-trip f64 needs.
const MAX_SHORTEST_DIGITS: usize = 17;

/// Digits kept: one more than the shortest, for reading the exact
/// expansion of a tie.
const MAX_DIGITS: usize = MAX_SHORTEST_DIGITS + 1;

const LOG10_5: f64 = 1.0 - LOG10_2;

const FRACTION_BITS: u32 = 52;
const FRACTION_MASK: u64 = (1 << FRACTION_BITS) - 1;
const IMPLICIT_BIT: u64 = 1 << FRACTION_BITS;
/// Exponent bias when the 53-bit mantissa is read as an integer (1023 + 52).
const INTEGER_MANTISSA_BIAS: i32 = 1075;
const MAX_BIASED_EXPONENT: i32 = 0x7ff;

/// `5^p` for every `p` with `5^p < 2^128`.
const POWERS_OF_FIVE: [u128; 56] = powers_of(5);
/// `10^k` for every `k` with `10^k < 2^128`.
const POWERS_OF_TEN: [u128; 39] = powers_of(10);

const fn powers_of<const N: usize>(base: u128) -> [u128; N] {
    let mut table = [1; N];
    let mut exponent = 1;
    while exponent < N {
        table[exponent] = table[exponent - 1] * base;
        exponent += 1;
    }
    table
}

/// A finite decimal `[-]d.ddd × 10^exponent` split into its parts.
pub struct DecimalDigits {
    pub negative: bool,
    digit_bytes: [u8; MAX_DIGITS],
    digit_count: usize,
    /// Power of ten of the first digit, e.g. `-7` for `6.28e-7`.
    pub exponent: i32,
}

impl DecimalDigits {
    /// Significant ASCII digits without the decimal point, e.g. `628`.
    pub fn digits(&self) -> &[u8] {
        &self.digit_bytes[..self.digit_count]
    }

    /// `significand × 10^exponent_of_last_digit`, for a nonzero significand.
    fn from_integer(negative: bool, mut significand: u64, exponent_of_last_digit: i32) -> Self {
        let mut reversed = [b'0'; 20];
        let mut count = 0;
        while significand > 0 {
            reversed[count] = b'0' + (significand % 10) as u8;
            significand /= 10;
            count += 1;
        }
        let mut digit_bytes = [b'0'; MAX_DIGITS];
        for (slot, &digit) in digit_bytes.iter_mut().zip(reversed[..count].iter().rev()) {
            *slot = digit;
        }
        DecimalDigits {
            negative,
            digit_bytes,
            digit_count: count,
            exponent: exponent_of_last_digit + count as i32 - 1,
        }
    }

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

/// Python's shortest round-trip digits of a finite `value`.
pub fn shortest_digits(value: f64) -> DecimalDigits {
    exact_shortest(value).unwrap_or_else(|| formatted_shortest(value))
}

/// Shortest digits by exact integer arithmetic, or `None` when `value` is
/// zero, subnormal, non-finite, a power of two, an integer, or its exact
/// expansion does not fit in a `u128`.
///
/// With `value = M * 2^Q` (53-bit `M`), every double within half a unit in
/// the last place, `2^(Q-1)`, parses back to `value` (exactly half parses to
/// the even mantissa). Writing `M = m * 2^t` with odd `m` and `p = -(Q + t)`
/// fractional decimal digits, `value * 10^p = m * 5^p =: V` is an integer and
/// the half-unit is `5^p / 2^(t+1)` in the same units. The answer is the
/// multiple of `10^k` nearest to `V`, for the largest `k` at which it still
/// round-trips (a larger `k` means fewer significant digits).
fn exact_shortest(value: f64) -> Option<DecimalDigits> {
    let bits = value.to_bits();
    let biased_exponent = ((bits >> FRACTION_BITS) as i32) & MAX_BIASED_EXPONENT;
    let fraction = bits & FRACTION_MASK;
    // A power of two has a closer neighbour below than above: not handled.
    if biased_exponent == 0 || biased_exponent == MAX_BIASED_EXPONENT || fraction == 0 {
        return None;
    }
    let mantissa = fraction | IMPLICIT_BIT;
    let trailing_zeros = mantissa.trailing_zeros();
    let lowest_place = biased_exponent - INTEGER_MANTISSA_BIAS + trailing_zeros as i32;
    if lowest_place >= 0 {
        return None; // an integer
    }
    let fraction_digits = lowest_place.unsigned_abs() as usize;
    let half_unit_scaled = *POWERS_OF_FIVE.get(fraction_digits)?;
    let exact = u128::from(mantissa >> trailing_zeros).checked_mul(half_unit_scaled)?;
    let mantissa_is_even = trailing_zeros > 0;

    // `distance < 5^p / 2^(t+1)`, or equal with an even mantissa.
    let round_trips = |distance: u128| match distance.checked_mul(1 << (trailing_zeros + 1)) {
        Some(scaled) => {
            scaled < half_unit_scaled || (scaled == half_unit_scaled && mantissa_is_even)
        }
        None => false,
    };
    // Nearest multiple of 10^k to `exact` (as a multiplier), ties to even,
    // and its distance from `exact`.
    let nearest = |k: usize| {
        let unit = POWERS_OF_TEN[k];
        let quotient = exact / unit;
        let below = exact - quotient * unit;
        let above = unit - below;
        if below > above || (below == above && quotient % 2 == 1) {
            (quotient + 1, above)
        } else {
            (quotient, below)
        }
    };
    let fits = |k: usize| round_trips(nearest(k).1);

    // Start near log10 of the half-unit; `fits` is monotone in k and holds at 0.
    let half_unit_log10 =
        fraction_digits as f64 * LOG10_5 - f64::from(trailing_zeros + 1) * LOG10_2;
    let last_k = POWERS_OF_TEN.len() - 1;
    let mut k = (half_unit_log10.max(0.0) as usize).min(last_k);
    while k > 0 && !fits(k) {
        k -= 1;
    }
    while k < last_k && fits(k + 1) {
        k += 1;
    }
    let significand = u64::try_from(nearest(k).0).ok()?;
    let digits = DecimalDigits::from_integer(
        value.is_sign_negative(),
        significand,
        k as i32 - fraction_digits as i32,
    );
    (digits.digit_count <= MAX_SHORTEST_DIGITS).then_some(digits)
}

/// Shortest digits from Rust's `{:e}`, with exact ties re-rounded to even.
fn formatted_shortest(value: f64) -> DecimalDigits {
    let mut scientific = ScratchText::default();
    write!(scientific, "{value:e}").expect("an f64 in exponent form fits in the scratch buffer");
    let shortest = DecimalDigits::parse(scientific.as_bytes());
    if is_halfway_between_candidates(value, &shortest) {
        round_half_to_even(value, shortest.digit_count)
    } else {
        shortest
    }
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
    let bits = value.to_bits();
    let fraction = bits & FRACTION_MASK;
    let biased_exponent = ((bits >> FRACTION_BITS) as i32) & MAX_BIASED_EXPONENT;
    let (mantissa, exponent) = if biased_exponent == 0 {
        (fraction, 1 - INTEGER_MANTISSA_BIAS) // subnormal
    } else {
        (
            fraction | IMPLICIT_BIT,
            biased_exponent - INTEGER_MANTISSA_BIAS,
        )
    };
    if mantissa == 0 {
        return None;
    }
    let place = exponent + mantissa.trailing_zeros() as i32;
    (place < 0).then_some(place)
}

/// The `digit_count`-digit decimal nearest to a `value` that lies exactly
/// halfway between two of them, choosing the even last digit.
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

    fn text(digits: &DecimalDigits) -> (bool, String, i32) {
        let ascii = String::from_utf8(digits.digits().to_vec()).expect("ASCII digits");
        (digits.negative, ascii, digits.exponent)
    }

    #[test]
    fn exact_and_formatted_paths_agree_off_ties() {
        let float32_prices = [0.1_f32, 0.5133929, 31.473534, 1234.5678, -2.75, 0.3, 0.0042];
        for value in float32_prices.map(f64::from) {
            let exact = exact_shortest(value)
                .unwrap_or_else(|| panic!("{value} is in the exact path's range"));
            assert_eq!(text(&exact), text(&formatted_shortest(value)), "{value}");
        }
    }

    #[test]
    fn both_paths_break_ties_to_even() {
        let tie = f64::from(248.72_f32); // exactly 248.720001220703125
        let expected = (false, "24872000122070312".to_owned(), 2);
        assert_eq!(text(&exact_shortest(tie).expect("exact path")), expected);
        assert_eq!(text(&formatted_shortest(tie)), expected);
    }

    #[test]
    fn exact_path_declines_what_it_cannot_handle() {
        for value in [0.0, 45.0, 0.5, 1e300, 5e-324, 1e-300] {
            assert!(exact_shortest(value).is_none(), "{value}");
        }
    }

    #[test]
    fn increment_carries_and_trims() {
        let mut digits = DecimalDigits::parse(b"1.99e0");
        digits.increment_last_digit();
        assert_eq!(text(&digits), (false, "2".to_owned(), 0));
        let mut digits = DecimalDigits::parse(b"9.9e-3");
        digits.increment_last_digit();
        assert_eq!(text(&digits), (false, "1".to_owned(), -2));
    }
}
