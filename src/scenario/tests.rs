use super::*;
use std::path::Path;

/// Parses scenario text (`file` is used for messages and relative paths).
fn parse(text: &str, file: &Path, catalog: &Catalog) -> Result<Scenario> {
    validate::parse(text, file, catalog, true)
}

fn catalog() -> Catalog {
    crate::catalog::load_default().unwrap()
}

fn err(text: &str) -> String {
    let e = parse(text, Path::new("scenarios/x.toml"), &catalog()).unwrap_err();
    format!("{e:#}")
}

#[test]
fn shipped_scenarios_load() {
    let c = catalog();
    for name in [
        "bedtime",
        "create_story",
        "browse_events",
        "backend_worker",
        "dashboard",
        "launch_mix",
        "select1",
    ] {
        let s = load_with(name, &c).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(!s.parts.is_empty(), "{name}");
        assert!(!s.queries().is_empty(), "{name}");
    }
    let mix = load_with("launch_mix", &c).unwrap();
    assert_eq!(mix.parts.len(), 5);
    assert!(mix.mean_think() > std::time::Duration::from_secs(1));
    let cs = load_with("create_story", &c).unwrap();
    let t = &cs.parts[0].transactions[0];
    assert!(t.atomic);
    assert_eq!(t.principal, PrincipalKind::Service);
    assert!(available().contains(&"bedtime".to_string()));
    assert!(!available().contains(&"queries".to_string()));
}

const GOOD: &str = r#"
description = "x"
think = "1s..2s"

[[transaction]]
name = "a"
weight = 2

[[transaction.step]]
query = "recent_stories"
probability = 0.5
think = "100ms"
"#;

#[test]
fn good_file_and_mean_think() {
    let s = parse(GOOD, Path::new("x.toml"), &catalog()).unwrap();
    let t = &s.parts[0].transactions[0];
    assert_eq!(t.weight, 2);
    assert_eq!(t.steps[0].probability, 0.5);
    // 0.5 × 100 ms + 1.5 s
    assert_eq!(s.mean_think(), std::time::Duration::from_millis(1550));
}

#[test]
fn errors_name_file_and_line() {
    let e = err(&GOOD.replace("recent_stories", "no_such_query"));
    assert!(
        e.contains("scenarios/x.toml:10:") && e.contains("unknown catalog query `no_such_query`"),
        "{e}"
    );
    let e = err(&GOOD.replace("weight = 2", "weight = 0"));
    assert!(e.contains("x.toml:7:") && e.contains("weight"), "{e}");
    let e = err(&GOOD.replace("think = \"100ms\"", "think = \"2s..1s\""));
    assert!(e.contains("x.toml:12:") && e.contains("think"), "{e}");
    let e = err(&GOOD.replace("probability = 0.5", "probability = 1.5"));
    assert!(e.contains("x.toml:11:"), "{e}");
    let e = err(&GOOD.replace("weight = 2", "weight = 2\ncolour = \"red\""));
    assert!(e.contains("x.toml:8:") && e.contains("colour"), "{e}");
    let e = err(&GOOD.replace("name = \"a\"", "name = \"a"));
    assert!(e.contains("x.toml:6:"), "{e}");
    let e = err(&GOOD.replace("recent_stories", "dau"));
    assert!(
        e.contains("x.toml:10:") && e.contains("principal = \"service\""),
        "{e}"
    );
}
