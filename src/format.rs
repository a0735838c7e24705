//! Number formatting shared by the terminal, the report and the findings: a leaf module, so
//! any stage can word a figure without importing the report.

pub fn human_bytes(v: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = v;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", units[unit])
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

pub fn thousands(v: i64) -> String {
    let s = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_numbers() {
        assert_eq!(super::thousands(1234567), "1,234,567");
        assert_eq!(super::thousands(-1234), "-1,234");
        assert_eq!(super::human_bytes(1536.0), "1.5 kB");
        assert_eq!(super::human_bytes(512.0), "512 B");
    }
}
