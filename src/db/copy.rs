//! PostgreSQL's binary `COPY` format, written by hand because it is a handful of
//! bytes: a signature, then per row a field count and each field as its length and its
//! network-order bytes (-1 for NULL), then a -1 trailer. Binary rather than text: the
//! server takes a float8 as its 8 bytes instead of parsing digits, and values arrive
//! exactly as computed.

use chrono::{Datelike, NaiveDate};

/// Days from 0001-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS_FROM_CE: i32 = 730_120;

/// The signature, flags (no OIDs) and an empty header extension.
pub fn header(buf: &mut Vec<u8>) {
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
}

/// The end of the data.
pub fn trailer(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i16).to_be_bytes());
}

/// The start of a row of `fields` columns.
pub fn row(buf: &mut Vec<u8>, fields: i16) {
    buf.extend_from_slice(&fields.to_be_bytes());
}

pub fn null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

/// A `text` value (UTF-8 bytes, as the server's encoding is).
pub fn text(buf: &mut Vec<u8>, value: &[u8]) {
    buf.extend_from_slice(&(value.len() as i32).to_be_bytes());
    buf.extend_from_slice(value);
}

/// A `date`: days since 2000-01-01.
pub fn date(buf: &mut Vec<u8>, day: NaiveDate) {
    buf.extend_from_slice(&4i32.to_be_bytes());
    buf.extend_from_slice(&(day.num_days_from_ce() - PG_EPOCH_DAYS_FROM_CE).to_be_bytes());
}

/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01 UTC.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A `timestamp with time zone`: microseconds since 2000-01-01 UTC.
pub fn timestamptz(buf: &mut Vec<u8>, at: chrono::DateTime<chrono::Utc>) {
    buf.extend_from_slice(&8i32.to_be_bytes());
    buf.extend_from_slice(&(at.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes());
}

/// An `integer`.
pub fn int4(buf: &mut Vec<u8>, value: i32) {
    buf.extend_from_slice(&4i32.to_be_bytes());
    buf.extend_from_slice(&value.to_be_bytes());
}

/// A `bigint`, or NULL.
pub fn int8(buf: &mut Vec<u8>, value: Option<i64>) {
    match value {
        Some(v) => {
            buf.extend_from_slice(&8i32.to_be_bytes());
            buf.extend_from_slice(&v.to_be_bytes());
        }
        None => null(buf),
    }
}

/// A `double precision`, or NULL.
pub fn float8(buf: &mut Vec<u8>, value: Option<f64>) {
    match value {
        Some(v) => {
            buf.extend_from_slice(&8i32.to_be_bytes());
            buf.extend_from_slice(&v.to_bits().to_be_bytes());
        }
        None => null(buf),
    }
}

/// The error a failed write to the server's `COPY` stream becomes.
pub fn write_error(e: std::io::Error) -> diesel::result::Error {
    diesel::result::Error::SerializationError(Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_laid_out_as_the_server_reads_it() {
        let mut buf = Vec::new();
        row(&mut buf, 3);
        text(&mut buf, b"AB");
        date(&mut buf, NaiveDate::from_ymd_opt(2000, 1, 2).unwrap());
        float8(&mut buf, None);
        assert_eq!(
            buf,
            [0, 3, 0, 0, 0, 2, b'A', b'B', 0, 0, 0, 4, 0, 0, 0, 1, 255, 255, 255, 255]
        );
        let mut day = Vec::new();
        date(&mut day, NaiveDate::from_ymd_opt(1999, 12, 31).unwrap());
        assert_eq!(day[4..], (-1i32).to_be_bytes());
        let mut ts = Vec::new();
        timestamptz(
            &mut ts,
            chrono::DateTime::from_timestamp(946_684_801, 0).unwrap(),
        );
        assert_eq!(ts[4..], 1_000_000i64.to_be_bytes());
    }
}
