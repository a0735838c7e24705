//! Long tables collapse after their first rows: the rest moves into a `<details>` right
//! below (same header), one click away, so the page stays readable without script.

/// Body rows shown before a table collapses…
const SHOWN: usize = 10;
/// …when it has more than this many (a table of 11–12 rows is left whole).
const LIMIT: usize = 12;

fn row_starts(inner: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = inner[from..].find("<tr") {
        let at = from + i;
        if matches!(inner.as_bytes().get(at + 3), Some(b'>') | Some(b' ')) {
            out.push(at);
        }
        from = at + 3;
    }
    out
}

fn collapse(open_tag: &str, inner: &str) -> String {
    let starts = row_starts(inner);
    let rows: Vec<&str> = starts
        .iter()
        .enumerate()
        .map(|(i, s)| &inner[*s..starts.get(i + 1).copied().unwrap_or(inner.len())])
        .collect();
    let header = rows
        .first()
        .filter(|r| r.contains("<th") && !r.contains("<td"))
        .copied();
    let body = &rows[header.is_some() as usize..];
    if body.len() <= LIMIT {
        return format!("{open_tag}{inner}</table>");
    }
    let lead = &inner[..starts.first().copied().unwrap_or(0)];
    let head = header.unwrap_or("");
    format!(
        "{open_tag}{lead}{head}{}</table><details class=\"more\"><summary>{} more rows</summary>{open_tag}{head}{}</table></details>",
        body[..SHOWN].concat(),
        body.len() - SHOWN,
        body[SHOWN..].concat()
    )
}

/// Rewrites every `<table>` of `html` with more than [`LIMIT`] body rows.
pub fn long_tables(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + 1024);
    let mut rest = html;
    while let Some(i) = rest.find("<table") {
        out.push_str(&rest[..i]);
        let t = &rest[i..];
        let (Some(gt), Some(end)) = (t.find('>'), t.find("</table>")) else {
            out.push_str(t);
            return out;
        };
        out.push_str(&collapse(&t[..=gt], &t[gt + 1..end]));
        rest = &t[end + "</table>".len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(n: usize) -> String {
        let rows: String = (0..n).map(|i| format!("<tr><td>{i}</td></tr>")).collect();
        format!("<p>x</p><table><tr><th>h</th></tr>\n{rows}</table><p>y</p>")
    }

    #[test]
    fn short_tables_stay_whole_and_long_ones_collapse_after_their_first_rows() {
        assert_eq!(long_tables(&table(12)), table(12));
        let html = long_tables(&table(30));
        assert!(html.starts_with("<p>x</p><table><tr><th>h</th></tr>"));
        assert!(html.contains(
            "<summary>20 more rows</summary><table><tr><th>h</th></tr>\n<tr><td>10</td>"
        ));
        assert!(html.ends_with("<tr><td>29</td></tr></table></details><p>y</p>"));
        assert_eq!(html.matches("<td>").count(), 30, "no row lost");
    }
}
