//! A minimal JSON object writer that appends straight into a COPY buffer (no serde, no
//! intermediate allocation): the generator writes millions of small JSONB values.

use std::io::Write;
use uuid::Uuid;

pub struct Obj<'a> {
    b: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    pub fn new(b: &'a mut Vec<u8>) -> Self {
        b.push(b'{');
        Self { b, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.b.push(b',');
        }
        self.first = false;
        string(self.b, k);
        self.b.push(b':');
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        string(self.b, v);
        self
    }

    pub fn opt_str(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(k, v),
            None => self.null(k),
        }
    }

    pub fn uuid(&mut self, k: &str, v: &Uuid) -> &mut Self {
        self.key(k);
        self.b.push(b'"');
        self.b
            .extend_from_slice(v.hyphenated().encode_lower(&mut [0u8; 36]).as_bytes());
        self.b.push(b'"');
        self
    }

    pub fn int(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k);
        let _ = write!(self.b, "{v}");
        self
    }

    /// A number with a fixed number of decimals, written as `value / 10^scale`.
    pub fn fixed(&mut self, k: &str, value: i64, scale: u32) -> &mut Self {
        self.key(k);
        // Sign first, then the magnitude: -5 at scale 1 is "-0.5", not "0.-5".
        let p = 10u64.pow(scale);
        let (sign, m) = (if value < 0 { "-" } else { "" }, value.unsigned_abs());
        let _ = write!(
            self.b,
            "{sign}{}.{:0width$}",
            m / p,
            m % p,
            width = scale as usize
        );
        self
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.b.extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    pub fn null(&mut self, k: &str) -> &mut Self {
        self.key(k);
        self.b.extend_from_slice(b"null");
        self
    }

    pub fn str_array(&mut self, k: &str, items: &[&str]) -> &mut Self {
        self.key(k);
        self.b.push(b'[');
        for (i, s) in items.iter().enumerate() {
            if i > 0 {
                self.b.push(b',');
            }
            string(self.b, s);
        }
        self.b.push(b']');
        self
    }

    /// A nested value written by `f` (raw JSON).
    pub fn raw(&mut self, k: &str, f: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        self.key(k);
        f(self.b);
        self
    }

    pub fn end(&mut self) {
        self.b.push(b'}');
    }
}

/// A JSON string literal with the escapes JSON requires.
pub fn string(b: &mut Vec<u8>, s: &str) {
    b.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        if c == b'"' || c == b'\\' || c < 0x20 {
            b.extend_from_slice(&bytes[start..i]);
            match c {
                b'"' => b.extend_from_slice(b"\\\""),
                b'\\' => b.extend_from_slice(b"\\\\"),
                b'\n' => b.extend_from_slice(b"\\n"),
                _ => {
                    let _ = write!(b, "\\u{c:04x}");
                }
            }
            start = i + 1;
        }
    }
    b.extend_from_slice(&bytes[start..]);
    b.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_json() {
        let mut b = Vec::new();
        Obj::new(&mut b)
            .str("a", "x\"y\\z\n\u{1}é")
            .int("n", -3)
            .fixed("f", 87, 2)
            .bool("t", true)
            .null("z")
            .str_array("l", &["p", "q"])
            .uuid("u", &Uuid::nil())
            .end();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["a"], "x\"y\\z\n\u{1}é");
        assert_eq!(v["f"], 0.87);
        assert_eq!(v["l"][1], "q");
        assert_eq!(v["u"], "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn fixed_point_keeps_the_sign() {
        let mut b = Vec::new();
        Obj::new(&mut b)
            .fixed("a", -5, 1)
            .fixed("b", -1234, 2)
            .fixed("c", 0, 2)
            .end();
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"a":-0.5,"b":-12.34,"c":0.00}"#
        );
    }
}
