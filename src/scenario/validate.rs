//! Parsing and validation of scenario files, with `file:line` in every error.

use super::{read, Part, PrincipalKind, Scenario, Step, Think, Transaction};
use crate::catalog::{Catalog, Role};
use crate::paths::line_of_offset;
use anyhow::{anyhow, Result};
use serde::Deserialize;
use std::borrow::Cow;
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

/// Error positions in one file, and the errors found so far (all are reported at once).
struct Ctx<'a> {
    text: &'a str,
    fname: String,
    errors: Vec<String>,
}

impl Ctx<'_> {
    fn at<T>(&self, s: &Spanned<T>) -> String {
        format!(
            "{}:{}",
            self.fname,
            line_of_offset(self.text, s.span().start)
        )
    }

    fn push(&mut self, e: String) {
        self.errors.push(e);
    }

    /// `value` if nothing was wrong, else every error found, one a line.
    fn finish<T>(self, value: T) -> Result<T> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(anyhow!(self.errors.join("\n")))
        }
    }
}

pub(super) fn parse(
    text: &str,
    file: &Path,
    catalog: &Catalog,
    allow_mix: bool,
) -> Result<Scenario> {
    let mut c = Ctx {
        text,
        fname: file.display().to_string(),
        errors: Vec::new(),
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

    if !raw.mix.is_empty() {
        let parts = mix_parts(&mut c, &raw, &dir, catalog, allow_mix);
        return c.finish(Scenario {
            name,
            file: file.to_path_buf(),
            description,
            parts,
        });
    }

    if raw.transaction.is_empty() {
        let e = format!(
            "{}: no [[transaction]] (and no [[mix]]): nothing to run",
            c.fname
        );
        c.push(e);
    }
    let catalog = with_extra_queries(&mut c, &raw, &dir, catalog)?;
    let default_principal = match &raw.principal {
        Some(p) => principal(&mut c, p).unwrap_or(PrincipalKind::App),
        None => PrincipalKind::App,
    };
    let default_think = raw
        .think
        .as_ref()
        .and_then(|t| think(&mut c, t))
        .unwrap_or_default();
    let defaults = (default_principal, default_think);

    let mut transactions = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    for t in &raw.transaction {
        transactions.push(transaction(&mut c, t, &catalog, defaults, &mut names));
    }
    c.finish(Scenario {
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

/// A mix file: the parts of every mixed scenario, each with the mix's weight.
fn mix_parts(
    c: &mut Ctx,
    raw: &RawFile,
    dir: &Path,
    catalog: &Catalog,
    allow_mix: bool,
) -> Vec<Part> {
    if !raw.transaction.is_empty() {
        let e = format!(
            "{}: a scenario has either [[transaction]] tables or [[mix]] tables, not both",
            c.at(&raw.mix[0])
        );
        c.push(e);
    }
    if !allow_mix {
        let e = format!(
            "{}: this file is a mix; a mix cannot include another mix",
            c.at(&raw.mix[0])
        );
        c.push(e);
    }
    for key in [&raw.principal, &raw.think, &raw.queries]
        .into_iter()
        .flatten()
    {
        let e = format!(
            "{}: principal, think and queries belong in the mixed scenario files, not in a mix",
            c.at(key)
        );
        c.push(e);
    }
    let mut parts = Vec::new();
    let mut seen = HashMap::new();
    for m in &raw.mix {
        let m = m.get_ref();
        let w = weight(c, &m.weight);
        let child = m.scenario.get_ref().trim();
        let at = c.at(&m.scenario);
        if let Some(first) = seen.insert(child.to_string(), at.clone()) {
            c.push(format!(
                "{at}: scenario `{child}` is mixed twice (first at {first})"
            ));
        }
        let path = child_path(dir, child);
        if !path.exists() {
            c.push(format!(
                "{at}: no scenario `{child}` ({} does not exist)",
                path.display()
            ));
            continue;
        }
        match load_file(&path, catalog, false) {
            Ok(s) => parts.extend(s.parts.into_iter().map(|mut p| {
                p.weight = w;
                p
            })),
            Err(e) => c.push(format!("{} (mixed at {})", e, at)),
        }
    }
    parts
}

/// The catalog, merged with the file's `queries = …` catalog beside the scenario if it has one.
fn with_extra_queries<'c>(
    c: &mut Ctx,
    raw: &RawFile,
    dir: &Path,
    catalog: &'c Catalog,
) -> Result<Cow<'c, Catalog>> {
    let Some(q) = &raw.queries else {
        return Ok(Cow::Borrowed(catalog));
    };
    let path = dir.join(q.get_ref());
    let extra = match crate::catalog::load(&path) {
        Ok(extra) => extra,
        Err(e) => return Err(anyhow!("{e:#}\n(queries = … at {})", c.at(q))),
    };
    let mut all = catalog.clone();
    for e in extra.queries {
        if let Some(old) = catalog.get(&e.name) {
            c.push(format!(
                "{}: query `{}` is already in the catalog at {}",
                e.location(),
                e.name,
                old.location()
            ));
        } else {
            all.queries.push(e);
        }
    }
    Ok(Cow::Owned(all))
}

/// One `[[transaction]]`; `names` holds the names seen so far (for duplicates).
fn transaction(
    c: &mut Ctx,
    t: &Spanned<RawTx>,
    catalog: &Catalog,
    (default_principal, default_think): (PrincipalKind, Think),
    names: &mut HashMap<String, String>,
) -> Transaction {
    let at_tx = c.at(t);
    let t = t.get_ref();
    let tname = t.name.get_ref().trim().to_string();
    let at_name = c.at(&t.name);
    if tname.is_empty() || tname.contains(char::is_whitespace) {
        c.push(format!(
            "{at_name}: transaction name {tname:?} must be a non-empty word"
        ));
    }
    if let Some(first) = names.insert(tname.clone(), at_name.clone()) {
        c.push(format!(
            "{at_name}: duplicated transaction name `{tname}` (first at {first})"
        ));
    }
    let w = weight(c, &t.weight);
    let who = match &t.principal {
        Some(p) => principal(c, p).unwrap_or(default_principal),
        None => default_principal,
    };
    let tx_think = match &t.think {
        Some(x) => think(c, x).unwrap_or_default(),
        None => default_think,
    };
    if t.step.is_empty() {
        c.push(format!(
            "{at_tx}: transaction `{tname}` has no [[transaction.step]]"
        ));
    }
    let steps = t
        .step
        .iter()
        .filter_map(|s| step(c, s.get_ref(), catalog, who, t.atomic))
        .collect();
    Transaction {
        name: tname,
        weight: w,
        principal: who,
        atomic: t.atomic,
        think: tx_think,
        steps,
    }
}

/// One `[[transaction.step]]` of a transaction run by `who`; None if its query is unknown.
fn step(
    c: &mut Ctx,
    s: &RawStep,
    catalog: &Catalog,
    who: PrincipalKind,
    atomic: bool,
) -> Option<Step> {
    let qname = s.query.get_ref().trim();
    let at_query = c.at(&s.query);
    let Some(spec) = catalog.get(qname) else {
        c.push(format!(
            "{at_query}: unknown catalog query `{qname}` (valid: {})",
            catalog.names().join(", ")
        ));
        return None;
    };
    match who {
        PrincipalKind::App if spec.role != Role::App => c.push(format!(
            "{at_query}: query `{qname}` is a {} query; an app user (under RLS) cannot run it: \
             give the transaction principal = \"service\"",
            spec.role
        )),
        PrincipalKind::Direct if !spec.has_tag("calibration") => c.push(format!(
            "{at_query}: principal \"direct\" (no request set-up) is for calibration queries only; \
             `{qname}` is not tagged calibration"
        )),
        _ => {}
    }
    let probability = s.probability.as_ref().map_or(1.0, |p| probability(c, p));
    if let (true, Some(x)) = (atomic, &s.think) {
        let e = format!(
            "{}: no think time inside an atomic transaction (it would hold the database \
             transaction open); put it on the transaction",
            c.at(x)
        );
        c.push(e);
    }
    let step_think = s
        .think
        .as_ref()
        .and_then(|x| think(c, x))
        .unwrap_or_default();
    Some(Step {
        query: Arc::new(spec.clone()),
        probability,
        think: step_think,
    })
}

/// A step's probability: a number with 0 < p ≤ 1 (1 after an error).
fn probability(c: &mut Ctx, p: &Spanned<toml::Value>) -> f64 {
    let v = match p.get_ref() {
        toml::Value::Float(f) => Some(*f),
        toml::Value::Integer(i) => Some(*i as f64),
        _ => None,
    };
    match v {
        Some(v) if v > 0.0 && v <= 1.0 => v,
        _ => {
            let e = format!(
                "{}: probability must be a number with 0 < p ≤ 1; got {}",
                c.at(p),
                p.get_ref()
            );
            c.push(e);
            1.0
        }
    }
}

fn child_path(dir: &Path, child: &str) -> PathBuf {
    if child.contains('/') || child.ends_with(".toml") {
        dir.join(child)
    } else {
        dir.join(format!("{child}.toml"))
    }
}

fn weight(c: &mut Ctx, w: &Spanned<i64>) -> usize {
    let v = *w.get_ref();
    if v <= 0 || v > 1_000_000 {
        let e = format!(
            "{}: weight must be an integer from 1 to 1000000; got {v}",
            c.at(w)
        );
        c.push(e);
        return 1;
    }
    v as usize
}

fn principal(c: &mut Ctx, p: &Spanned<String>) -> Option<PrincipalKind> {
    let k = PrincipalKind::parse(p.get_ref().trim());
    if k.is_none() {
        let e = format!(
            "{}: unknown principal {:?} (valid: app, service, direct)",
            c.at(p),
            p.get_ref()
        );
        c.push(e);
    }
    k
}

fn think(c: &mut Ctx, t: &Spanned<String>) -> Option<Think> {
    match Think::parse(t.get_ref()) {
        Ok(x) => Some(x),
        Err(e) => {
            let e = format!(
                "{}: bad think time: {e} (write \"2s..6s\" or \"500ms\")",
                c.at(t)
            );
            c.push(e);
            None
        }
    }
}
