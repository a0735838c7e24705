//! Parsing and validation of scenario files, with `file:line` in every error.

use super::{read, Part, PrincipalKind, Scenario, Step, Think, Transaction};
use crate::catalog::{Catalog, Role};
use crate::paths::line_of_offset;
use anyhow::{anyhow, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    principal: Option<Spanned<String>>,
    #[serde(default)]
    think: Option<Spanned<String>>,
    #[serde(default)]
    queries: Option<Spanned<String>>,
    #[serde(default)]
    transaction: Vec<Spanned<RawTx>>,
    #[serde(default)]
    mix: Vec<Spanned<RawMix>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTx {
    name: Spanned<String>,
    weight: Spanned<i64>,
    #[serde(default)]
    principal: Option<Spanned<String>>,
    #[serde(default)]
    atomic: bool,
    #[serde(default)]
    think: Option<Spanned<String>>,
    #[serde(default)]
    step: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    query: Spanned<String>,
    #[serde(default)]
    probability: Option<Spanned<toml::Value>>,
    #[serde(default)]
    think: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMix {
    scenario: Spanned<String>,
    weight: Spanned<i64>,
}

pub(super) fn load_file(path: &Path, catalog: &Catalog, allow_mix: bool) -> Result<Scenario> {
    let text = read(path)?;
    parse(&text, path, catalog, allow_mix)
}

/// Error positions in one file.
struct Ctx<'a> {
    text: &'a str,
    fname: String,
}

impl Ctx<'_> {
    fn at<T>(&self, s: &Spanned<T>) -> String {
        format!(
            "{}:{}",
            self.fname,
            line_of_offset(self.text, s.span().start)
        )
    }
}

pub(super) fn parse(
    text: &str,
    file: &Path,
    catalog: &Catalog,
    allow_mix: bool,
) -> Result<Scenario> {
    let c = Ctx {
        text,
        fname: file.display().to_string(),
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().to_string();
        match e.span() {
            Some(span) => anyhow!("{}:{}: {msg}", c.fname, line_of_offset(text, span.start)),
            None => anyhow!("{}: {msg}", c.fname),
        }
    })?;
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scenario".into());
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let description = raw
        .description
        .clone()
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut errors = Vec::new();

    if !raw.mix.is_empty() {
        if !raw.transaction.is_empty() {
            errors.push(format!(
                "{}: a scenario has either [[transaction]] tables or [[mix]] tables, not both",
                c.at(&raw.mix[0])
            ));
        }
        if !allow_mix {
            errors.push(format!(
                "{}: this file is a mix; a mix cannot include another mix",
                c.at(&raw.mix[0])
            ));
        }
        for key in [&raw.principal, &raw.think, &raw.queries]
            .into_iter()
            .flatten()
        {
            errors.push(format!(
                "{}: principal, think and queries belong in the mixed scenario files, not in a mix",
                c.at(key)
            ));
        }
        let mut parts = Vec::new();
        let mut seen = HashMap::new();
        for m in &raw.mix {
            let m = m.get_ref();
            let w = weight(&c, &m.weight, &mut errors);
            let child = m.scenario.get_ref().trim();
            if let Some(first) = seen.insert(child.to_string(), c.at(&m.scenario)) {
                errors.push(format!(
                    "{}: scenario `{child}` is mixed twice (first at {first})",
                    c.at(&m.scenario)
                ));
            }
            let path = child_path(&dir, child);
            if !path.exists() {
                errors.push(format!(
                    "{}: no scenario `{child}` ({} does not exist)",
                    c.at(&m.scenario),
                    path.display()
                ));
                continue;
            }
            match load_file(&path, catalog, false) {
                Ok(s) => parts.extend(s.parts.into_iter().map(|mut p| {
                    p.weight = w;
                    p
                })),
                Err(e) => errors.push(format!("{} (mixed at {})", e, c.at(&m.scenario))),
            }
        }
        if !errors.is_empty() {
            return Err(anyhow!(errors.join("\n")));
        }
        return Ok(Scenario {
            name,
            file: file.to_path_buf(),
            description,
            parts,
        });
    }

    if raw.transaction.is_empty() {
        errors.push(format!(
            "{}: no [[transaction]] (and no [[mix]]): nothing to run",
            c.fname
        ));
    }
    // An extra catalog beside the scenario, merged with the default one.
    let merged;
    let catalog = match &raw.queries {
        Some(q) => {
            let path = dir.join(q.get_ref());
            match crate::catalog::load(&path) {
                Ok(extra) => {
                    let mut all = catalog.clone();
                    for e in extra.queries {
                        if let Some(old) = catalog.get(&e.name) {
                            errors.push(format!(
                                "{}: query `{}` is already in the catalog at {}",
                                e.location(),
                                e.name,
                                old.location()
                            ));
                        } else {
                            all.queries.push(e);
                        }
                    }
                    merged = all;
                    &merged
                }
                Err(e) => return Err(anyhow!("{e:#}\n(queries = … at {})", c.at(q))),
            }
        }
        None => catalog,
    };
    let default_principal = match &raw.principal {
        Some(p) => principal(&c, p, &mut errors).unwrap_or(PrincipalKind::App),
        None => PrincipalKind::App,
    };
    let default_think = raw
        .think
        .as_ref()
        .and_then(|t| think(&c, t, &mut errors))
        .unwrap_or_default();

    let mut transactions = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    for t in &raw.transaction {
        let at_tx = c.at(t);
        let t = t.get_ref();
        let tname = t.name.get_ref().trim().to_string();
        if tname.is_empty() || tname.contains(char::is_whitespace) {
            errors.push(format!(
                "{}: transaction name {tname:?} must be a non-empty word",
                c.at(&t.name)
            ));
        }
        if let Some(first) = names.insert(tname.clone(), c.at(&t.name)) {
            errors.push(format!(
                "{}: duplicated transaction name `{tname}` (first at {first})",
                c.at(&t.name)
            ));
        }
        let w = weight(&c, &t.weight, &mut errors);
        let who = match &t.principal {
            Some(p) => principal(&c, p, &mut errors).unwrap_or(default_principal),
            None => default_principal,
        };
        let tx_think = match &t.think {
            Some(x) => think(&c, x, &mut errors).unwrap_or_default(),
            None => default_think,
        };
        if t.step.is_empty() {
            errors.push(format!(
                "{at_tx}: transaction `{tname}` has no [[transaction.step]]"
            ));
        }
        let mut steps = Vec::new();
        for s in &t.step {
            let s = s.get_ref();
            let qname = s.query.get_ref().trim();
            let Some(spec) = catalog.get(qname) else {
                errors.push(format!(
                    "{}: unknown catalog query `{qname}` (valid: {})",
                    c.at(&s.query),
                    catalog.names().join(", ")
                ));
                continue;
            };
            match who {
                PrincipalKind::App if spec.role != Role::App => errors.push(format!(
                    "{}: query `{qname}` is a {} query; an app user (under RLS) cannot run it: \
                     give the transaction principal = \"service\"",
                    c.at(&s.query),
                    spec.role
                )),
                PrincipalKind::Direct if !spec.has_tag("calibration") => errors.push(format!(
                    "{}: principal \"direct\" (no request set-up) is for calibration queries only; \
                     `{qname}` is not tagged calibration",
                    c.at(&s.query)
                )),
                _ => {}
            }
            let probability = match &s.probability {
                None => 1.0,
                Some(p) => {
                    let v = match p.get_ref() {
                        toml::Value::Float(f) => Some(*f),
                        toml::Value::Integer(i) => Some(*i as f64),
                        _ => None,
                    };
                    match v {
                        Some(v) if v > 0.0 && v <= 1.0 => v,
                        _ => {
                            errors.push(format!(
                                "{}: probability must be a number with 0 < p ≤ 1; got {}",
                                c.at(p),
                                p.get_ref()
                            ));
                            1.0
                        }
                    }
                }
            };
            if let (true, Some(x)) = (t.atomic, &s.think) {
                errors.push(format!(
                    "{}: no think time inside an atomic transaction (it would hold the database \
                     transaction open); put it on the transaction",
                    c.at(x)
                ));
            }
            let step_think = s
                .think
                .as_ref()
                .and_then(|x| think(&c, x, &mut errors))
                .unwrap_or_default();
            steps.push(Step {
                query: Arc::new(spec.clone()),
                probability,
                think: step_think,
            });
        }
        transactions.push(Transaction {
            name: tname,
            weight: w,
            principal: who,
            atomic: t.atomic,
            think: tx_think,
            steps,
        });
    }
    if !errors.is_empty() {
        return Err(anyhow!(errors.join("\n")));
    }
    Ok(Scenario {
        name: name.clone(),
        file: file.to_path_buf(),
        description: description.clone(),
        parts: vec![Part {
            name,
            description,
            weight: 1,
            transactions,
        }],
    })
}

fn child_path(dir: &Path, child: &str) -> PathBuf {
    if child.contains('/') || child.ends_with(".toml") {
        dir.join(child)
    } else {
        dir.join(format!("{child}.toml"))
    }
}

fn weight(c: &Ctx, w: &Spanned<i64>, errors: &mut Vec<String>) -> usize {
    let v = *w.get_ref();
    if v <= 0 || v > 1_000_000 {
        errors.push(format!(
            "{}: weight must be an integer from 1 to 1000000; got {v}",
            c.at(w)
        ));
        return 1;
    }
    v as usize
}

fn principal(c: &Ctx, p: &Spanned<String>, errors: &mut Vec<String>) -> Option<PrincipalKind> {
    let k = PrincipalKind::parse(p.get_ref().trim());
    if k.is_none() {
        errors.push(format!(
            "{}: unknown principal {:?} (valid: app, service, direct)",
            c.at(p),
            p.get_ref()
        ));
    }
    k
}

fn think(c: &Ctx, t: &Spanned<String>, errors: &mut Vec<String>) -> Option<Think> {
    match Think::parse(t.get_ref()) {
        Ok(x) => Some(x),
        Err(e) => {
            errors.push(format!(
                "{}: bad think time: {e} (write \"2s..6s\" or \"500ms\")",
                c.at(t)
            ));
            None
        }
    }
}
