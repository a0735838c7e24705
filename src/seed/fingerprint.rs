//! The streamed fingerprint: computed from the binary COPY bytes the generator writes, as
//! they are loaded, so sealing a dataset costs no pass over the database.
//!
//! Definition (docs/results.md): per table, the number of rows and the sum modulo 2^64 of
//! `row_hash` over its rows, where a row is its bytes in the binary COPY stream (from its
//! field count to its last field byte). A sum does not depend on the order rows arrive in,
//! so the number of COPY connections and chunk boundaries do not matter. The fingerprint
//! is `s1-` and the 16 hex digits of `row_hash` over the lines `table:rows:sum\n`, tables in
//! name order. The api_usage flat twin is listed like any table (the same rows).

use anyhow::{bail, Result};
use std::collections::BTreeMap;

const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const MUL: u64 = 0xff51_afd7_ed55_8ccd;

/// Marks the streamed definition; a fingerprint without it is the database-side md5.
pub const PREFIX: &str = "s1-";

/// A 64-bit hash of a byte string: 8-byte little-endian words (the last one zero-padded),
/// each folded in by xor, multiply and shift, then murmur3's 64-bit finaliser. One multiply
/// per 8 bytes keeps it at several GB/s; it guards against accidents, not adversaries.
fn row_hash(bytes: &[u8]) -> u64 {
    let mut h = SEED ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    let step = |h: u64, w: u64| {
        let h = (h ^ w).wrapping_mul(MUL);
        h ^ (h >> 29)
    };
    for w in &mut words {
        h = step(h, u64::from_le_bytes(w.try_into().expect("8 bytes")));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = step(h, u64::from_le_bytes(last));
    }
    fmix64(h)
}

fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Rows and the wrapping sum of their hashes in one complete binary COPY payload (header,
/// rows, trailer).
pub fn payload_sum(payload: &[u8]) -> Result<(u64, u64)> {
    const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
    if payload.len() < 19 || &payload[..11] != SIGNATURE {
        bail!("not a binary COPY payload");
    }
    let ext = u32::from_be_bytes(payload[15..19].try_into().expect("4 bytes")) as usize;
    let mut at = 19 + ext;
    let (mut rows, mut sum) = (0u64, 0u64);
    loop {
        let Some(count) = payload.get(at..at + 2) else {
            bail!("binary COPY payload ends without its trailer");
        };
        let fields = i16::from_be_bytes(count.try_into().expect("2 bytes"));
        if fields == -1 {
            return Ok((rows, sum));
        }
        let start = at;
        at += 2;
        for _ in 0..fields {
            let Some(len) = payload.get(at..at + 4) else {
                bail!("binary COPY row cut short");
            };
            let len = i32::from_be_bytes(len.try_into().expect("4 bytes"));
            at += 4 + len.max(0) as usize;
        }
        let Some(row) = payload.get(start..at) else {
            bail!("binary COPY row cut short");
        };
        rows += 1;
        sum = sum.wrapping_add(row_hash(row));
    }
}

/// Per-table rows and hash sums, added up as chunks are loaded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TableSum {
    pub rows: u64,
    pub sum: u64,
}

impl TableSum {
    pub fn add(&mut self, other: TableSum) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
    }
}

/// The fingerprint of per-table sums, and the row counts recorded beside it.
pub fn fingerprint(tables: &BTreeMap<String, TableSum>) -> (String, serde_json::Value) {
    let mut lines = String::new();
    for (name, t) in tables {
        lines.push_str(&format!("{name}:{}:{:016x}\n", t.rows, t.sum));
    }
    let counts = tables
        .iter()
        .map(|(name, t)| (name.clone(), serde_json::Value::from(t.rows)))
        .collect::<serde_json::Map<_, _>>();
    (
        format!("{PREFIX}{:016x}", row_hash(lines.as_bytes())),
        serde_json::Value::Object(counts),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::copy_binary::CopyWriter;

    fn payload(rows: &[(i32, &str)]) -> Vec<u8> {
        let mut w = CopyWriter::default();
        for (n, s) in rows {
            w.row(2);
            w.int4(*n);
            w.text(s);
        }
        w.finish().1
    }

    #[test]
    fn row_hash_is_pinned() {
        // The definition is recorded in storybench.meta: it must never drift silently.
        assert_eq!(row_hash(b""), fmix64(SEED));
        assert_eq!(row_hash(b"abc"), 0x74a2_20ac_7036_5a42_u64);
        assert_ne!(row_hash(b"abc"), row_hash(b"abc\0"), "length is hashed");
    }

    #[test]
    fn sums_ignore_order_and_chunking() {
        let (rows_a, a) = payload_sum(&payload(&[(1, "x"), (2, "yy"), (3, "")])).unwrap();
        let (_, b1) = payload_sum(&payload(&[(3, ""), (1, "x")])).unwrap();
        let (_, b2) = payload_sum(&payload(&[(2, "yy")])).unwrap();
        assert_eq!(rows_a, 3);
        assert_eq!(a, b1.wrapping_add(b2));
        let (_, c) = payload_sum(&payload(&[(1, "x"), (2, "yz"), (3, "")])).unwrap();
        assert_ne!(a, c, "one byte changed");
    }

    #[test]
    fn nulls_and_empty_payloads_and_garbage() {
        let mut w = CopyWriter::default();
        w.row(2);
        w.null();
        w.text("a");
        let (rows, _) = payload_sum(&w.finish().1).unwrap();
        assert_eq!(rows, 1);
        assert_eq!(
            payload_sum(&CopyWriter::default().finish().1).unwrap(),
            (0, 0)
        );
        assert!(payload_sum(b"not copy").is_err());
        let mut cut = payload(&[(1, "x")]);
        cut.truncate(cut.len() - 3);
        assert!(payload_sum(&cut).is_err());
    }

    #[test]
    fn fingerprint_lists_tables_in_name_order() {
        let mut t = BTreeMap::new();
        t.insert("b".to_string(), TableSum { rows: 2, sum: 5 });
        t.insert("a".to_string(), TableSum { rows: 1, sum: 7 });
        let (fp, counts) = fingerprint(&t);
        assert!(fp.starts_with(PREFIX) && fp.len() == PREFIX.len() + 16);
        assert_eq!(counts["a"], 1);
        let mut other = t.clone();
        other.get_mut("a").unwrap().sum = 8;
        assert_ne!(fingerprint(&other).0, fp);
    }
}
