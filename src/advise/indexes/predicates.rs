//! What a plan asks of a table's indexes: the columns each scanned relation is filtered on
//! (equality or range), the constant and null tests a partial index could carry, and the
//! sort and group keys above it. Read from `EXPLAIN (VERBOSE, FORMAT JSON)`, where every
//! column is qualified by its relation's alias, so the text is regular enough to read.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A relation's columns, by the qualified table the candidates are built on (a partition
/// is folded into its partitioned parent).
#[derive(Clone, Debug, Default)]
pub struct Relations {
    /// `schema.relname` as the plan names it → (table, its columns).
    pub by_relation: BTreeMap<String, (String, BTreeSet<String>)>,
}

impl Relations {
    fn resolve(&self, schema: &str, relname: &str) -> Option<&(String, BTreeSet<String>)> {
        self.by_relation.get(&format!("{schema}.{relname}"))
    }
}

/// What one query's plan asks of one table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableUse {
    pub table: String,
    pub equality: BTreeSet<String>,
    pub range: BTreeSet<String>,
    /// Sort or group keys on this table's columns, outermost first: (column, descending).
    pub order: Vec<(String, bool)>,
    /// Tests a partial index could carry (`status = 'x'::text`, `deleted_at IS NULL`).
    pub partial: BTreeSet<String>,
    /// Indexes the plan already uses on it.
    pub indexes_used: BTreeSet<String>,
}

/// Every table the plan scans or modifies, with what it asks of it.
pub fn table_uses(plan: &Value, relations: &Relations) -> Vec<TableUse> {
    let mut aliases: BTreeMap<String, String> = BTreeMap::new();
    let mut uses: BTreeMap<String, TableUse> = BTreeMap::new();
    let root = root(plan);
    collect_scans(root, relations, &mut aliases, &mut uses);
    collect_keys(root, relations, &aliases, &mut uses);
    uses.into_values().collect()
}

/// The `Plan` object of an EXPLAIN (FORMAT JSON) result (or the node itself).
pub fn root(plan: &Value) -> &Value {
    plan.get(0)
        .and_then(|p| p.get("Plan"))
        .or_else(|| plan.get("Plan"))
        .unwrap_or(plan)
}

/// Every plan node, depth first.
pub fn nodes(node: &Value) -> Vec<&Value> {
    let mut out = vec![node];
    if let Some(children) = node.get("Plans").and_then(Value::as_array) {
        for c in children {
            out.extend(nodes(c));
        }
    }
    out
}

/// Index names the plan uses (Index Scan, Index Only Scan, Bitmap Index Scan).
pub fn indexes_used(plan: &Value) -> BTreeSet<String> {
    nodes(root(plan))
        .into_iter()
        .filter_map(|n| n.get("Index Name").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// Estimated total cost of the plan's root.
pub fn total_cost(plan: &Value) -> Option<f64> {
    root(plan).get("Total Cost").and_then(Value::as_f64)
}

fn text<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    node.get(key).and_then(Value::as_str)
}

fn collect_scans(
    node: &Value,
    relations: &Relations,
    aliases: &mut BTreeMap<String, String>,
    uses: &mut BTreeMap<String, TableUse>,
) {
    for n in nodes(node) {
        let (Some(schema), Some(relname)) = (text(n, "Schema"), text(n, "Relation Name")) else {
            continue;
        };
        let Some((table, columns)) = relations.resolve(schema, relname) else {
            continue;
        };
        let alias = text(n, "Alias").unwrap_or(relname).to_string();
        aliases.insert(alias.clone(), table.clone());
        let entry = uses.entry(table.clone()).or_insert_with(|| TableUse {
            table: table.clone(),
            ..Default::default()
        });
        if let Some(index) = text(n, "Index Name") {
            entry.indexes_used.insert(index.to_string());
        }
        for key in ["Filter", "Index Cond", "Recheck Cond"] {
            if let Some(pred) = text(n, key) {
                read_predicate(pred, &alias, columns, entry);
            }
        }
    }
}

fn collect_keys(
    node: &Value,
    relations: &Relations,
    aliases: &BTreeMap<String, String>,
    uses: &mut BTreeMap<String, TableUse>,
) {
    let columns_of = |table: &str| {
        relations
            .by_relation
            .values()
            .find(|(t, _)| t == table)
            .map(|(_, c)| c)
    };
    for n in nodes(node) {
        for key in ["Sort Key", "Group Key", "Presorted Key"] {
            let Some(keys) = n.get(key).and_then(Value::as_array) else {
                continue;
            };
            for k in keys.iter().filter_map(Value::as_str) {
                let Some((alias, column, desc)) = sort_key(k) else {
                    continue;
                };
                let Some(table) = aliases.get(alias) else {
                    continue;
                };
                if !columns_of(table).is_some_and(|c| c.contains(column)) {
                    continue;
                }
                if let Some(u) = uses.get_mut(table) {
                    if !u.order.iter().any(|(c, _)| c == column) {
                        u.order.push((column.to_string(), desc));
                    }
                }
            }
        }
    }
}

/// `s.created_at DESC` → (`s`, `created_at`, true); expressions are not index keys here.
fn sort_key(key: &str) -> Option<(&str, &str, bool)> {
    let mut words = key.split_whitespace();
    let expr = words.next()?.trim_start_matches('(').trim_end_matches(')');
    let desc = words.next() == Some("DESC");
    let (alias, column) = expr.split_once('.')?;
    let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (ident(alias) && ident(column)).then_some((alias, column, desc))
}

/// Reads `alias.column <op> …` and `… <op> alias.column` comparisons out of a predicate.
fn read_predicate(pred: &str, alias: &str, columns: &BTreeSet<String>, out: &mut TableUse) {
    let prefix = format!("{alias}.");
    let mut at = 0;
    while let Some(i) = pred[at..].find(&prefix) {
        let start = at + i;
        at = start + prefix.len();
        // A longer alias ending in this one (`xs.` for `s.`) is another relation.
        if start > 0 {
            let before = pred.as_bytes()[start - 1];
            if before.is_ascii_alphanumeric() || before == b'_' || before == b'.' {
                continue;
            }
        }
        let rest = &pred[at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let column = &rest[..len];
        if !columns.contains(column) {
            continue;
        }
        let after = skip_casts(&rest[len..]);
        let before = pred[..start].trim_end();
        match comparison(after, before) {
            Some(Op::Equality { constant }) => {
                out.equality.insert(column.to_string());
                if let Some(c) = constant {
                    out.partial.insert(format!("{column} = {c}"));
                }
            }
            Some(Op::Range) => {
                out.range.insert(column.to_string());
            }
            Some(Op::Null(not)) => {
                let test = if not { "IS NOT NULL" } else { "IS NULL" };
                out.partial.insert(format!("{column} {test}"));
            }
            Some(Op::Bare(not)) => {
                out.partial.insert(if not {
                    format!("NOT {column}")
                } else {
                    column.to_string()
                });
            }
            None => {}
        }
    }
}

enum Op {
    /// `= x` or `= ANY (…)`; `constant` when x is a literal (`'done'::text`, `true`, `3`).
    Equality {
        constant: Option<String>,
    },
    Range,
    Null(bool),
    /// A boolean column tested bare (`(s.is_public)`, `(NOT s.is_deleted)`).
    Bare(bool),
}

/// `)::text` and `::uuid` after a column do not change what it is compared with.
fn skip_casts(mut s: &str) -> &str {
    loop {
        let t = s.trim_start();
        if let Some(r) = t.strip_prefix(')') {
            if r.trim_start().starts_with("::") {
                s = r;
                continue;
            }
            return t;
        }
        if let Some(r) = t.strip_prefix("::") {
            let n = r
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(r.len());
            s = &r[n..];
            continue;
        }
        return t;
    }
}

/// Comparison operators, longest first, and whether each is a range test (`<>` is neither).
const OPERATORS: [(&str, bool); 6] = [
    ("<=", true),
    (">=", true),
    ("<>", false),
    ("=", false),
    ("<", true),
    (">", true),
];

fn comparison(after: &str, before: &str) -> Option<Op> {
    for (op, range) in OPERATORS {
        if let Some(rhs) = after.strip_prefix(op) {
            return match (op, range) {
                ("<>", _) => None,
                (_, true) => Some(Op::Range),
                _ => Some(Op::Equality {
                    constant: literal(rhs.trim_start()),
                }),
            };
        }
    }
    if after.starts_with("IS NOT NULL") {
        return Some(Op::Null(true));
    }
    if after.starts_with("IS NULL") {
        return Some(Op::Null(false));
    }
    // The column on the right: `x = s.col`, `x < s.col`.
    for (op, range) in OPERATORS {
        if before.ends_with(op) {
            return match (op, range) {
                ("<>", _) => None,
                (_, true) => Some(Op::Range),
                _ => Some(Op::Equality { constant: None }),
            };
        }
    }
    let ends_clause = after.starts_with(')')
        || after.is_empty()
        || after.starts_with("AND")
        || after.starts_with("OR");
    if ends_clause {
        if before.ends_with("NOT") {
            return Some(Op::Bare(true));
        }
        // `(s.flag)` is a test, `lower(s.title)` is a function's argument.
        let opens_clause = before
            .strip_suffix('(')
            .is_some_and(|b| !b.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'));
        if opens_clause || before.ends_with("AND") {
            return Some(Op::Bare(false));
        }
    }
    None
}

/// A literal right-hand side (`'done'::text`, `true`, `42`), as the partial predicate's value.
fn literal(rhs: &str) -> Option<String> {
    if let Some(body) = rhs.strip_prefix('\'') {
        let end = body.find('\'')?;
        let mut lit = format!("'{}'", &body[..end]);
        let rest = &body[end + 1..];
        if let Some(cast) = rest.strip_prefix("::") {
            let n = cast
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(cast.len());
            lit.push_str("::");
            lit.push_str(&cast[..n]);
        }
        return Some(lit);
    }
    let n = rhs
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rhs.len());
    let word = &rhs[..n];
    let is_number = !word.is_empty() && word.chars().all(|c| c.is_ascii_digit() || c == '.');
    (is_number || word == "true" || word == "false").then(|| word.to_string())
}

#[cfg(test)]
#[path = "predicates_tests.rs"]
mod tests;
