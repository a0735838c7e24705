//! Index candidates from what the plans ask: single columns, multi-column keys (equality
//! columns first, then one order or range column) and partial forms, minus those an
//! existing index already leads with.

use super::predicates::TableUse;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One key column of a candidate.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyColumn {
    pub name: String,
    #[serde(default)]
    pub descending: bool,
}

/// A btree index that might help, and the queries whose plans suggested it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub table: String,
    pub columns: Vec<KeyColumn>,
    /// A partial index's WHERE clause.
    pub predicate: Option<String>,
    pub suggested_by: Vec<String>,
    /// Some key column comes only from the RLS policies' predicates: an advisor connected as
    /// a superuser (no policies applied) would not see it.
    #[serde(default)]
    pub from_rls: bool,
    /// Where its key was read: the plans' text, pg_qualstats' executed predicates, or both.
    #[serde(default)]
    pub sources: Vec<Source>,
}

/// Where a candidate's key was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Plan,
    Qualstats,
}

impl Candidate {
    /// A stable identity for deduplication and results: `table(a, b DESC) WHERE …`.
    pub fn key(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                if c.descending {
                    format!("{} DESC", c.name)
                } else {
                    c.name.clone()
                }
            })
            .collect();
        match &self.predicate {
            Some(p) => format!("{}({}) WHERE {p}", self.table, cols.join(", ")),
            None => format!("{}({})", self.table, cols.join(", ")),
        }
    }

    /// A name for the real build (at most 63 bytes, PostgreSQL's identifier limit).
    pub fn index_name(&self) -> String {
        let table = self.table.rsplit('.').next().unwrap_or(&self.table);
        let cols: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        let mut name = format!(
            "sb_adv_{table}_{}{}",
            cols.join("_"),
            if self.predicate.is_some() {
                "_part"
            } else {
                ""
            }
        );
        if name.len() > 63 {
            // Keep it unique: a short hash of the whole key after the truncated stem.
            let hash = self.key().bytes().fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100000001b3)
            });
            name.truncate(54);
            name.push_str(&format!("_{:08x}", hash as u32));
        }
        name
    }

    /// `CREATE INDEX [CONCURRENTLY] name ON table (cols) [WHERE …]`.
    pub fn create_sql(&self, concurrently: bool) -> String {
        let key = self.key();
        let body = &key[self.table.len()..];
        format!(
            "CREATE INDEX {}{} ON {}{}",
            if concurrently { "CONCURRENTLY " } else { "" },
            self.index_name(),
            self.table,
            body.replacen('(', " (", 1)
        )
    }

    /// The statement HypoPG takes (no name: it names its hypothetical indexes itself).
    pub fn hypothetical_sql(&self) -> String {
        let key = self.key();
        format!(
            "CREATE INDEX ON {}{}",
            self.table,
            key[self.table.len()..].replacen('(', " (", 1)
        )
    }
}

/// An index that exists, as the candidates are checked against it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExistingIndex {
    pub name: String,
    pub table: String,
    /// Key columns; None where a key is an expression.
    pub columns: Option<Vec<String>>,
    pub predicate: Option<String>,
    pub unique: bool,
    /// Backs a primary key, unique or exclusion constraint (never proposed for dropping).
    pub constraint: bool,
    pub definition: String,
    /// Its first column is a foreign key's (a parent's delete checks through it).
    pub leads_with_foreign_key: bool,
    pub bytes: i64,
}

/// A candidate left out before screening, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub candidate: String,
    pub reason: String,
}

/// The candidates one query's use of one table suggests. `sql` is the query's text: a
/// constant test is a partial index's predicate only where the constant is written in the
/// query (in a custom plan a bound parameter shows as a literal too: one user's id is not a
/// partial index).
pub fn from_use(query: &str, sql: &str, u: &TableUse) -> Vec<Candidate> {
    let col = |name: &str, descending: bool| KeyColumn {
        name: name.to_string(),
        descending,
    };
    let make = |columns: Vec<KeyColumn>, predicate: Option<String>| Candidate {
        table: u.table.clone(),
        columns,
        predicate,
        suggested_by: vec![query.to_string()],
        from_rls: false,
        sources: vec![Source::Plan],
    };
    let mut out = Vec::new();
    for c in u.equality.iter().chain(&u.range) {
        out.push(make(vec![col(c, false)], None));
    }
    if let Some((c, _)) = u.order.first() {
        out.push(make(vec![col(c, false)], None));
    }
    // Equality columns first, then one column the rows are ordered or ranged by.
    let equality: Vec<KeyColumn> = u.equality.iter().map(|c| col(c, false)).collect();
    if !equality.is_empty() {
        if equality.len() > 1 {
            out.push(make(equality.clone(), None));
        }
        let mut tails: Vec<Vec<KeyColumn>> = Vec::new();
        let order: Vec<KeyColumn> = u
            .order
            .iter()
            .filter(|(c, _)| !u.equality.contains(c))
            .map(|(c, d)| col(c, *d))
            .collect();
        if !order.is_empty() {
            tails.push(order);
        }
        for r in u.range.iter().filter(|r| !u.equality.contains(*r)) {
            tails.push(vec![col(r, false)]);
        }
        for tail in tails {
            let mut cols = equality.clone();
            cols.extend(tail);
            out.push(make(cols, None));
        }
    }
    // Partial forms: the constant tests as the WHERE clause, the other columns as the key.
    let partial: Vec<&String> = u.partial.iter().filter(|t| written_in(t, sql)).collect();
    if !partial.is_empty() {
        let tested: Vec<&str> = partial.iter().map(|p| partial_column(p)).collect();
        let predicate = partial
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(" AND ");
        let mut cols: Vec<KeyColumn> = u
            .equality
            .iter()
            .filter(|c| !tested.contains(&c.as_str()))
            .map(|c| col(c, false))
            .collect();
        if let Some((c, d)) = u.order.iter().find(|(c, _)| !tested.contains(&c.as_str())) {
            if !cols.iter().any(|k| &k.name == c) {
                cols.push(col(c, *d));
            }
        } else if let Some(r) = u.range.iter().find(|r| !tested.contains(&r.as_str())) {
            if !cols.iter().any(|k| &k.name == r) {
                cols.push(col(r, false));
            }
        }
        if !cols.is_empty() {
            out.push(make(cols, Some(predicate)));
        }
    }
    out
}

/// Whether a partial test's constant is in the query's text (null and bare boolean tests
/// are, unless the column is compared with a parameter there).
fn written_in(test: &str, sql: &str) -> bool {
    match test.split_once(" = ") {
        Some((_, value)) => {
            let literal = value.split("::").next().unwrap_or(value);
            sql.contains(literal)
        }
        None => {
            let column = partial_column(test);
            let compact: String = sql.split_whitespace().collect();
            !compact.contains(&format!("{column}=$"))
        }
    }
}

/// Marks the candidates whose key needs a column the same query's plan without RLS (as the
/// service role, which bypasses it) does not ask for on that table.
pub fn mark_rls(candidates: &mut [Candidate], bypass: &[TableUse]) {
    for c in candidates {
        let seen: Vec<&str> = bypass
            .iter()
            .filter(|u| u.table == c.table)
            .flat_map(|u| {
                u.equality
                    .iter()
                    .chain(&u.range)
                    .map(String::as_str)
                    .chain(u.order.iter().map(|(o, _)| o.as_str()))
                    .chain(u.partial.iter().map(|p| partial_column(p)))
            })
            .collect();
        c.from_rls = c.columns.iter().any(|k| !seen.contains(&k.name.as_str()));
    }
}

/// The column a partial test is on (`status = 'x'`, `deleted_at IS NULL`, `NOT flag`).
fn partial_column(test: &str) -> &str {
    let t = test.strip_prefix("NOT ").unwrap_or(test);
    t.split_whitespace().next().unwrap_or(t)
}

/// Merges duplicates (their queries joined) and leaves out the candidates whose columns an
/// existing index on the table already leads with (the same partial predicate, or none).
pub fn screenable(
    all: Vec<Candidate>,
    existing: &[ExistingIndex],
) -> (Vec<Candidate>, Vec<Skipped>) {
    let mut merged: BTreeMap<String, Candidate> = BTreeMap::new();
    for c in all {
        match merged.get_mut(&c.key()) {
            Some(m) => {
                // RLS-only when no query suggests it without the policies' help.
                m.from_rls &= c.from_rls;
                for s in c.sources {
                    if !m.sources.contains(&s) {
                        m.sources.push(s);
                    }
                }
                m.sources.sort();
                for q in c.suggested_by {
                    if !m.suggested_by.contains(&q) {
                        m.suggested_by.push(q);
                    }
                }
            }
            None => {
                merged.insert(c.key(), c);
            }
        }
    }
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    for c in merged.into_values() {
        match covering(&c, existing) {
            Some(ix) => skipped.push(Skipped {
                candidate: c.key(),
                reason: format!("a prefix of the existing index {}", ix.name),
            }),
            None => kept.push(c),
        }
    }
    (kept, skipped)
}

/// The existing index whose leading key columns are the candidate's (btree scans both
/// ways, so a direction alone does not make a new index).
fn covering<'a>(c: &Candidate, existing: &'a [ExistingIndex]) -> Option<&'a ExistingIndex> {
    let wanted: Vec<&str> = c.columns.iter().map(|k| k.name.as_str()).collect();
    existing.iter().find(|ix| {
        ix.table == c.table
            && (ix.predicate.is_none() || ix.predicate == c.predicate)
            && ix.columns.as_ref().is_some_and(|cols| {
                cols.len() >= wanted.len() && cols.iter().zip(&wanted).all(|(a, b)| a == b)
            })
    })
}

/// Existing indexes another index makes redundant: not backing a constraint, its key
/// columns a prefix of a longer index's on the same table with the same predicate.
pub fn redundant(existing: &[ExistingIndex]) -> Vec<(&ExistingIndex, &ExistingIndex)> {
    let mut out = Vec::new();
    for ix in existing.iter().filter(|i| !i.constraint && !i.unique) {
        let Some(cols) = &ix.columns else { continue };
        let wider = existing.iter().find(|o| {
            o.name != ix.name
                && o.table == ix.table
                && o.predicate == ix.predicate
                && o.columns.as_ref().is_some_and(|oc| {
                    oc.len() > cols.len() && oc.iter().zip(cols).all(|(a, b)| a == b)
                })
        });
        if let Some(w) = wider {
            out.push((ix, w));
        }
    }
    out
}

#[cfg(test)]
#[path = "candidates_tests.rs"]
mod tests;
