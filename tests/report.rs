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

fn fixtures() -> Vec<(String, RunResults)> {
    let dir = format!("{}/tests/fixtures/results", env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<(String, RunResults)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| (p.display().to_string(), RunResults::read(&p).unwrap()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 2, "stored fixtures");
    out
}

/// The text minijinja's HTML escaping turns into entities, back to plain text.
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[test]
fn the_findings_block_comes_first_and_agrees_with_results_json() {
    let section = regex::Regex::new(r#"<h2 id="([^"]+)""#).unwrap();
    for (name, r) in fixtures() {
        let html = storybench::report::render(&r).unwrap();
        let at = html
            .find("id=\"findings\"")
            .unwrap_or_else(|| panic!("{name}: findings"));
        let end = at + html[at..].find("</section>").unwrap();
        for h2 in section.captures_iter(&html) {
            let pos = h2.get(0).unwrap().start();
            assert!(pos > end, "{name}: section {} before the findings", &h2[1]);
        }
        let block = unescape(&html[at..end]);
        let findings = storybench::findings::of(&r, None);
        assert!(!findings.is_empty(), "{name}: findings");
        for f in &findings {
            assert!(block.contains(&f.headline), "{name}: {}", f.headline);
            assert!(
                html.contains(&format!("id=\"{}\"", f.evidence)),
                "{name}: evidence #{} exists",
                f.evidence
            );
            for x in &f.figures {
                assert!(block.contains(&x.value), "{name}: figure {}", x.value);
            }
        }
        check_well_formed(&html).unwrap();
        assert_self_contained(&html);
    }
    // The figures are the results' own.
    let (_, r) = fixtures()
        .into_iter()
        .find(|f| f.0.contains("quick_all"))
        .unwrap();
    let html = unescape(&storybench::report::render(&r).unwrap());
    let c = r.capacity.as_ref().unwrap();
    assert!(html.contains(&format!(
        "sustains ≥ {:.1} transactions/s",
        c.sustainable_rate.unwrap()
    )));
    let best = r
        .explain
        .as_ref()
        .unwrap()
        .overall
        .iter()
        .max_by(|a, b| a.geomean_speedup.total_cmp(&b.geomean_speedup))
        .unwrap();
    assert!(html.contains(&format!(
        "Adopt {}: reads {:.2}×",
        best.strategy, best.geomean_speedup
    )));
    let a = r.rls.as_ref().unwrap().audit.as_ref().unwrap();
    assert!(html.contains(&format!("no leak in {} attempts", a.attempts)));
}

#[test]
fn plans_are_trees_of_details_and_diffs_side_by_side() {
    let (_, r) = fixtures()
        .into_iter()
        .find(|f| f.0.contains("quick_all"))
        .unwrap();
    let html = storybench::report::render(&r).unwrap();
    assert!(
        html.contains("<details open class=\"pn"),
        "plan nodes are <details>"
    );
    assert!(html.contains("class=\"pdiff\""), "a plan diff side by side");
    assert!(html.contains("class=\"chg\""), "changed nodes marked");
    assert!(
        !html.contains("<pre class=\"plan\">"),
        "no flat plan text left"
    );
    assert!(html.contains("more rows</summary>"), "long tables collapse");
}

/// Headless Chromium (Debian's `chromium`; skipped when absent): every stored fixture's
/// report has content, the findings in the first screen and no overflow at 1280 px.
#[test]
fn reports_from_every_fixture_have_no_overflow_and_findings_on_the_first_screen() {
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        eprintln!("chromium not installed: skipped");
        return;
    }
    let root = temp_root("overflow");
    for (i, (name, r)) in fixtures().into_iter().enumerate() {
        let dir = root.join(i.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let report = storybench::report::write(&r, &dir).unwrap();
        let s = std::process::Command::new(format!(
            "{}/tests/screenshot.sh",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(&report)
        .arg(dir.join("shot.png"))
        .output()
        .unwrap();
        assert!(
            s.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&s.stderr)
        );
    }
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
    // Piped output (not a terminal): no escape codes, no log lines, findings then the path.
    let (out_s, err_s) = (String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(
        !out_s.contains("\x1b[") && !err_s.contains("\x1b["),
        "escape codes: {err_s}"
    );
    assert!(!err_s.contains(" INFO "), "quiet logging: {err_s}");
    let tail = &err_s[err_s.rfind("Findings\n").expect("findings at the end")..];
    assert!(
        tail.contains("Capacity:") && tail.contains("evidence: "),
        "{tail}"
    );
    assert!(
        out_s.trim_end().ends_with("report.html"),
        "the report path last"
    );
    let r = RunResults::read(&out.join("results.json")).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(r.status, storybench::results::RunStatus::Ok);
    assert!(!r.partial);
    assert_self_contained(&html);
    check_well_formed(&html).unwrap();
    let seed = r.seed.as_ref().expect("seed section");
    assert!(
        html.contains(&storybench::format::thousands(seed.total_rows as i64)),
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
        html.contains(&storybench::format::thousands(load.figures.ok as i64)),
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

/// reports/index.html: headline figures per run and trend charts whose change points mark
/// a persistent shift (capacity halves from the 5th run on), not a single noisy run.
#[test]
fn the_index_lists_headline_figures_and_marks_a_persistent_shift() {
    let (_, base) = fixtures()
        .into_iter()
        .find(|f| f.0.contains("quick_all"))
        .unwrap();
    let reports = temp_root("index").join("reports");
    let rates = [80.0, 81.0, 79.5, 80.5, 40.0, 40.5, 39.5, 40.2];
    for (i, rate) in rates.iter().enumerate() {
        let mut r = base.clone();
        r.run_id = format!("run-{i}");
        r.started_at += chrono::Duration::hours(i as i64);
        let c = r.capacity.as_mut().unwrap();
        c.sustainable_rate = Some(*rate);
        // One noisy run in the load figures: no change point there.
        if i == 2 {
            r.load.as_mut().unwrap().figures.tps *= 3.0;
        }
        let dir = reports.join(&r.run_id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("results.json"), serde_json::to_vec(&r).unwrap()).unwrap();
    }
    let path = storybench::report::index::write_index(&reports).unwrap();
    let html = std::fs::read_to_string(path).unwrap();
    check_well_formed(&html).unwrap();
    assert_self_contained(&html);
    assert!(
        html.contains("change point</strong> in capacity: sustainable rate from run run-4"),
        "capacity shift marked"
    );
    assert!(
        !html.contains("change point</strong> in load throughput"),
        "one noisy run is no change point"
    );
    let best = storybench::findings::best_policy_set(base.rls.as_ref().unwrap()).unwrap();
    assert!(
        html.contains(&format!("{} {:.2}×", best.0, best.1)),
        "RLS overhead per run"
    );
    assert!(html.contains(">none<"), "regressions vs the previous run");
    assert!(
        html.matches("<svg").count() >= 4,
        "a trend chart per figure"
    );
}

/// On a terminal (a pseudo-terminal from `script`), the seed draws its bars (rows per table and
/// the bytes streamed) and a load its live line; the log of the same commands off a terminal is
/// plain (previous test).
#[test]
fn on_a_terminal_the_seed_and_a_load_draw_live_progress() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` (util-linux) to make a pseudo-terminal");
        return;
    }
    let root = temp_root("tty");
    let bin = env!("CARGO_BIN_EXE_storybench");
    let data = root.join("pgdata");
    let log = root.join("tty.log");
    let shell = format!(
        "cd {dir} && {bin} --data-dir {data} seed --profile tiny --anchor 2026-11-20 && \
         {bin} --data-dir {data} load --sql 'SELECT 1' --clients 2 --duration 3s --warmup 0s",
        dir = env!("CARGO_MANIFEST_DIR"),
        data = data.display(),
    );
    let o = std::process::Command::new("script")
        .args(["-qfec", &shell])
        .arg(&log)
        .env_remove("DATABASE_URL")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).to_string();
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("streamed"),
        "no bytes bar in the seed: {text}"
    );
    assert!(text.contains("\x1b["), "no redraw on a terminal: {text}");
    assert!(
        text.contains(" ok, 0 errors, p95 "),
        "no live line in the load: {text}"
    );
    let _ = storybench_cmd()
        .arg("--data-dir")
        .arg(&data)
        .args(["db", "stop"])
        .output();
}
