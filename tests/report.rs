//! The report: renders every section from a stored results fixture, self-contained and
//! well-formed; a real `run --quick` writes a report whose figures agree with results.json.

mod common;

use common::{stderr, storybench_cmd, temp_root};
use storybench::results::RunResults;

const VOID: &[&str] = &[
    "meta", "link", "br", "hr", "img", "input", "col", "area", "base", "wbr", "source",
];

/// Tag balance of an HTML document (void elements and self-closed SVG elements excepted).
fn check_well_formed(html: &str) -> Result<(), String> {
    assert!(html.starts_with("<!DOCTYPE html>"), "doctype first");
    let body = regex::Regex::new(r"(?s)<style>.*?</style>")
        .unwrap()
        .replace_all(html, "");
    let tag =
        regex::Regex::new(r"<(/?)([a-zA-Z][\w:-]*)((?:[^>\x22']|\x22[^\x22]*\x22|'[^']*')*?)(/?)>")
            .unwrap();
    let mut stack: Vec<String> = Vec::new();
    for c in tag.captures_iter(&body) {
        let name = c[2].to_lowercase();
        if VOID.contains(&name.as_str()) || !c[4].is_empty() {
            continue;
        }
        if c[1].is_empty() {
            stack.push(name);
        } else {
            match stack.pop() {
                Some(open) if open == name => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed: {stack:?}"))
    }
}

fn assert_self_contained(html: &str) {
    let remote = regex::Regex::new(
        r#"(?i)(src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?\s*(https?:)?//|@import"#,
    )
    .unwrap();
    assert!(
        !remote.is_match(html),
        "network resource: {:?}",
        remote
            .find(html)
            .map(|m| &html[m.start().saturating_sub(80)..m.end() + 40])
    );
    assert!(!html.contains("<script"), "no script");
}

#[test]
fn the_report_renders_every_section_self_contained_and_well_formed() {
    let path = format!(
        "{}/tests/fixtures/results/quick_all_sections.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let results = RunResults::read(std::path::Path::new(&path)).unwrap();
    let html = storybench::report::render(&results).unwrap();
    for id in [
        "summary",
        "seed",
        "explain",
        "rls",
        "partitions",
        "load",
        "capacity",
        "environment",
    ] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "section {id} is rendered"
        );
    }
    assert!(html.matches("<svg").count() >= 8, "inline SVG charts");
    assert_self_contained(&html);
    check_well_formed(&html).unwrap();
}

#[test]
fn run_quick_writes_a_report_whose_figures_agree_with_results_json() {
    let root = temp_root("runquick");
    let out = root.join("out");
    let o = storybench_cmd()
        .arg("--data-dir")
        .arg(root.join("pgdata"))
        .args(["run", "--quick", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = RunResults::read(&out.join("results.json")).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(r.status, "ok");
    assert!(!r.partial);
    assert_self_contained(&html);
    check_well_formed(&html).unwrap();
    let seed = r.seed.as_ref().expect("seed section");
    assert!(
        html.contains(&storybench::report::thousands(seed.total_rows as i64)),
        "seed rows"
    );
    assert!(
        html.contains(r.dataset.as_ref().unwrap().fingerprint.as_deref().unwrap()),
        "fingerprint"
    );
    let ex = r.explain.as_ref().expect("explain section");
    for q in &ex.queries {
        if let Some(v) = &q.verdict {
            assert!(
                html.contains(&format!("{:.2}×", v.speedup_vs_baseline)),
                "{} speed-up shown",
                q.name
            );
        }
    }
    let load = r.load.as_ref().expect("load section");
    assert!(
        html.contains(&storybench::report::thousands(load.figures.ok as i64)),
        "load ok count"
    );
    assert!(
        html.contains(&format!("{:.2}", load.figures.transaction_latency.p95_ms)),
        "load p95"
    );
    assert!(
        r.rls.is_some() && r.partitions.is_some() && r.capacity.is_some(),
        "every stage ran"
    );
    // The screenshot check needs Chromium (installed by .ci/run); run it here when present.
    if std::path::Path::new("/usr/bin/chromium").exists() {
        let png = root.join("report.png");
        let s = std::process::Command::new(format!(
            "{}/tests/screenshot.sh",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(out.join("report.html"))
        .arg(&png)
        .output()
        .unwrap();
        assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    }
}
