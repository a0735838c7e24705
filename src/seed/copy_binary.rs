//! A writer for PostgreSQL's binary COPY format (`COPY … FROM STDIN (FORMAT binary)`).
//!
//! Binary COPY skips the server's text parsing, which matters when the server is the
//! bottleneck. Every value is written straight into one growing buffer: no per-field
//! allocation. Layout: header, then per row an i16 field count and per field an i32
//! length (−1 for NULL) followed by the bytes, then an i16 −1 trailer.

use uuid::Uuid;

/// `PGCOPY\n\xff\r\n\0`, flags (i32 0), header extension length (i32 0).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Microseconds from the Unix epoch to PostgreSQL's epoch (2000-01-01 00:00 UTC).
pub const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// Element type oid of `text`, for `text[]`.
const TEXT_OID: i32 = 25;

/// One table's COPY payload under construction.
#[derive(Debug, Clone)]
pub struct CopyWriter {
    buf: Vec<u8>,
    rows: u64,
}

impl Default for CopyWriter {
    fn default() -> Self {
        Self::with_capacity(4096)
    }
}

impl CopyWriter {
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(HEADER.len() + 2));
        buf.extend_from_slice(HEADER);
        Self { buf, rows: 0 }
    }

    /// Starts a row of `fields` values; exactly that many field writes must follow.
    pub fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self.rows += 1;
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes written so far (header included, trailer not).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of the rows written so far (header and trailer not).
    pub fn payload_len(&self) -> usize {
        self.buf.len() - HEADER.len()
    }

    /// Appends the trailer and returns the complete payload and its row count.
    pub fn finish(mut self) -> (u64, Vec<u8>) {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        (self.rows, self.buf)
    }

    fn len_prefix(&mut self, len: usize) {
        let len = i32::try_from(len).expect("COPY field longer than 2 GiB");
        self.buf.extend_from_slice(&len.to_be_bytes());
    }

    pub fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    pub fn uuid(&mut self, id: &Uuid) {
        self.len_prefix(16);
        self.buf.extend_from_slice(id.as_bytes());
    }

    pub fn text(&mut self, s: &str) {
        self.len_prefix(s.len());
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub fn opt_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    /// A text value produced in place by `f` (no intermediate String).
    pub fn text_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        f(&mut self.buf);
        self.patch_len(at);
    }

    pub fn bool(&mut self, v: bool) {
        self.len_prefix(1);
        self.buf.push(u8::from(v));
    }

    pub fn int4(&mut self, v: i32) {
        self.len_prefix(4);
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn int8(&mut self, v: i64) {
        self.len_prefix(8);
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// `timestamptz` as microseconds since 2000-01-01 00:00 UTC.
    pub fn timestamptz(&mut self, pg_micros: i64) {
        self.int8(pg_micros);
    }

    pub fn opt_timestamptz(&mut self, pg_micros: Option<i64>) {
        match pg_micros {
            Some(t) => self.timestamptz(t),
            None => self.null(),
        }
    }

    /// `jsonb`: version byte 1, then the JSON text written by `f`.
    pub fn jsonb_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.push(1);
        f(&mut self.buf);
        self.patch_len(at);
    }

    /// `interval`: microseconds, days, months.
    pub fn interval(&mut self, micros: i64, days: i32, months: i32) {
        self.len_prefix(16);
        self.buf.extend_from_slice(&micros.to_be_bytes());
        self.buf.extend_from_slice(&days.to_be_bytes());
        self.buf.extend_from_slice(&months.to_be_bytes());
    }

    /// `numeric` with the value `value / 10^scale`.
    pub fn numeric(&mut self, value: i64, scale: u16) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        encode_numeric(value, scale, &mut self.buf);
        self.patch_len(at);
    }

    /// One-dimensional `text[]` without NULL elements.
    pub fn text_array<S: AsRef<str>>(&mut self, items: &[S]) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        let b = &mut self.buf;
        b.extend_from_slice(&1i32.to_be_bytes()); // ndim
        b.extend_from_slice(&0i32.to_be_bytes()); // has nulls
        b.extend_from_slice(&TEXT_OID.to_be_bytes());
        b.extend_from_slice(&(items.len() as i32).to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes()); // lower bound
        for s in items {
            let s = s.as_ref().as_bytes();
            b.extend_from_slice(&(s.len() as i32).to_be_bytes());
            b.extend_from_slice(s);
        }
        self.patch_len(at);
    }

    fn patch_len(&mut self, at: usize) {
        let len = i32::try_from(self.buf.len() - at - 4).expect("COPY field longer than 2 GiB");
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
}

/// PostgreSQL's binary NUMERIC for `value / 10^scale`: i16 ndigits, i16 weight, u16 sign,
/// i16 dscale, then base-10000 digits (most significant first, no leading or trailing
/// zero digits; weight is the power of 10000 of the first digit).
fn encode_numeric(value: i64, scale: u16, out: &mut Vec<u8>) {
    let sign: u16 = if value < 0 { 0x4000 } else { 0 };
    let mut abs = value.unsigned_abs() as u128;
    // Align the fraction to whole base-10000 digits: pad it to a multiple of 4 decimals.
    let frac_groups = (scale as u32).div_ceil(4);
    abs *= 10u128.pow(frac_groups * 4 - scale as u32);
    // Split into base-10000 digits, least significant first.
    let mut digits: Vec<i16> = Vec::with_capacity(12);
    while abs > 0 {
        digits.push((abs % 10_000) as i16);
        abs /= 10_000;
    }
    // digits[k] has weight k − frac_groups.
    let mut low = 0;
    while low < digits.len() && digits[low] == 0 {
        low += 1;
    }
    let (ndigits, weight) = if low == digits.len() {
        (0i16, 0i16)
    } else {
        (
            (digits.len() - low) as i16,
            (digits.len() as i32 - 1 - frac_groups as i32) as i16,
        )
    };
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(scale as i16).to_be_bytes());
    if ndigits > 0 {
        for d in digits[low..].iter().rev() {
            out.extend_from_slice(&d.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn numeric_hex(value: i64, scale: u16) -> String {
        let mut v = Vec::new();
        encode_numeric(value, scale, &mut v);
        hex(&v)
    }

    /// Expected bytes are `numeric_send(…)` from a PostgreSQL 15 server.
    #[test]
    fn numeric_matches_server() {
        let cases: [(i64, u16, &str, &str); 10] = [
            (0, 6, "0::numeric(10,6)", "0000000000000006"),
            (1, 0, "1::numeric", "00010000000000000001"),
            (
                12_500_000,
                6,
                "12.5::numeric(10,6)",
                "0002000000000006000c1388",
            ),
            (
                123,
                6,
                "0.000123::numeric(10,6)",
                "0002ffff00000006000108fc",
            ),
            (
                123_456_789_012,
                6,
                "123456.789012::numeric(12,6)",
                "0004000100000006000c0d801ed204b0",
            ),
            (-125, 1, "-12.5", "0002000040000001000c1388"),
            (87, 2, "0.87::numeric(3,2)", "0001ffff0000000221fc"),
            (10_000, 0, "10000::numeric", "00010001000000000001"),
            (123, 1, "12.3::numeric", "0002000000000001000c0bb8"),
            (100_000, 6, "0.1::numeric(10,6)", "0001ffff0000000603e8"),
        ];
        for (value, scale, sql, expected) in cases {
            assert_eq!(numeric_hex(value, scale), expected, "numeric_send({sql})");
        }
    }

    #[test]
    fn header_rows_and_trailer() {
        let mut w = CopyWriter::default();
        w.row(3);
        w.int4(7);
        w.null();
        w.text("hé");
        let (rows, bytes) = w.finish();
        assert_eq!(rows, 1);
        assert_eq!(&bytes[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(&bytes[11..19], &[0; 8]);
        let body = &bytes[19..];
        assert_eq!(
            hex(body),
            "0003".to_owned() + "0000000400000007" + "ffffffff" + "0000000368c3a9" + "ffff"
        );
    }

    #[test]
    fn array_interval_jsonb() {
        let mut w = CopyWriter::default();
        w.text_array(&["a", "bc"]);
        w.interval(90_000_000, 0, 0);
        w.jsonb_with(|b| b.extend_from_slice(b"{}"));
        let (_, bytes) = w.finish();
        let body = hex(&bytes[19..bytes.len() - 2]);
        let array = "0000001f".to_owned()
            + "00000001"
            + "00000000"
            + "00000019"
            + "00000002"
            + "00000001"
            + "0000000161"
            + "000000026263";
        let interval = "00000010".to_owned() + "00000000055d4a80" + "00000000" + "00000000";
        let json = "00000003017b7d";
        assert_eq!(body, array + &interval + json);
    }
}
