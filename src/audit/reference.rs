//! The attacker's public knowledge: a reference population of names and birth dates, and the
//! token statistics an attack aligns encodings with.
//!
//! An attacker without the key cannot encode a name, but knows the public schema (which fields,
//! which tokens) and can read a population like the target's: a voter list, a phone book,
//! published name-frequency tables. `crosswalk audit` takes that population as a CSV file with
//! a header row and the columns `given_name`, `family_name`, `birth_date` (`YYYY-MM-DD`), and
//! optionally `count` (how many persons the row stands for, default 1); other columns (such as
//! `middle_name`) are ignored. A `crosswalk synth` world's `truth/identities.csv` is such a file.

use std::collections::BTreeMap;
use std::path::Path;

use rustc_hash::FxHashMap;

use crate::encode::tokens::for_each_token;
use crate::error::{Error, Result};
use crate::normalize;
use crate::schema::{Field, LinkageSchema};

/// Largest `count` of one reference row: sums of a million such rows stay far below `u64::MAX`.
pub const MAX_COUNT: u64 = 1_000_000_000_000;

/// A token as the schema hashes it: namespace and token bytes. Equal tokens set equal bits.
pub type TokenName = (String, Vec<u8>);

/// One reference person, normalised the way the encoder normalises. Its `Debug` shows no
/// value.
#[derive(Clone, Default)]
pub struct RefPerson {
    /// Given name(s), canonical.
    pub given: Option<String>,
    /// Family name(s), canonical.
    pub family: Option<String>,
    /// Birth date as `YYYYMMDD`.
    pub dob: Option<String>,
    /// How many persons this row stands for.
    pub count: u64,
}

impl std::fmt::Debug for RefPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefPerson(<redacted>)")
    }
}

/// A reference population with its token statistics. Its `Debug` shows counts only.
#[derive(Default)]
pub struct Reference {
    /// Persons (rows), normalised.
    pub persons: Vec<RefPerson>,
    /// Sum of `count` over all persons.
    pub total: u64,
    /// Every token the population's names and birth dates produce, most frequent first.
    pub tokens: Vec<TokenName>,
    /// Weighted share of persons holding each token (index as `tokens`).
    pub freq: Vec<f64>,
    /// Token index by token.
    pub index: FxHashMap<TokenName, u32>,
    /// Token indices of each person (sorted, deduplicated), index as `persons`.
    pub person_tokens: Vec<Vec<u32>>,
}

impl std::fmt::Debug for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reference")
            .field("persons", &self.persons.len())
            .field("total", &self.total)
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

/// Appends the tokens of `value` under `field`'s tokenisation in `schema` (none if the schema
/// does not encode the field).
fn field_tokens(schema: &LinkageSchema, field: Field, value: &str, out: &mut Vec<TokenName>) {
    let Some(spec) = schema.field(field) else {
        return;
    };
    let ns = spec.namespace().to_string();
    let mut buf = Vec::new();
    for_each_token(
        spec.tokens,
        spec.n,
        spec.padded,
        value,
        &mut buf,
        &mut |t| out.push((ns.clone(), t.to_vec())),
    );
}

/// The tokens of the identifiers an attack targets: given and family name, birth date. Middle
/// names are left out: they set only some of a name token's bits.
fn target_tokens(
    schema: &LinkageSchema,
    given: Option<&str>,
    family: Option<&str>,
    dob: Option<&str>,
    out: &mut Vec<TokenName>,
) {
    for (field, value) in [
        (Field::GivenName, given),
        (Field::FamilyName, family),
        (Field::Dob, dob),
    ] {
        if let Some(value) = value {
            field_tokens(schema, field, value, out);
        }
    }
}

/// The distinct tokens (sorted) of one identity's given name, family name and birth date.
pub fn identity_tokens(
    schema: &LinkageSchema,
    given: Option<&str>,
    family: Option<&str>,
    dob: Option<&str>,
) -> Vec<TokenName> {
    let mut out = Vec::new();
    target_tokens(schema, given, family, dob, &mut out);
    out.sort();
    out.dedup();
    out
}

/// The distinct tokens of one name under `field`'s tokenisation.
pub fn name_tokens(schema: &LinkageSchema, field: Field, value: &str) -> Vec<TokenName> {
    let mut out = Vec::new();
    field_tokens(schema, field, value, &mut out);
    out.sort();
    out.dedup();
    out
}

impl Reference {
    /// Reads a reference population CSV (module docs). Errors name the row and column, never a
    /// value.
    pub fn read(path: &Path, schema: &LinkageSchema) -> Result<Reference> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(false)
            .from_path(path)
            .map_err(|e| Error::input(path, csv_message(&e)))?;
        let headers = reader
            .headers()
            .map_err(|e| Error::input(path, csv_message(&e)))?
            .clone();
        let col = |name: &str| headers.iter().position(|h| h.trim() == name);
        let (Some(gi), Some(fi), Some(di)) =
            (col("given_name"), col("family_name"), col("birth_date"))
        else {
            return Err(Error::input(
                path,
                "a reference population needs a header row with the columns given_name, \
                 family_name and birth_date (YYYY-MM-DD); middle_name and count are optional",
            ));
        };
        let ci = col("count");
        let mut persons = Vec::new();
        for (i, rec) in reader.records().enumerate() {
            let row = i + 1;
            let rec = rec.map_err(|e| Error::input(path, csv_message(&e)))?;
            let cell = |c: usize| rec.get(c).unwrap_or("").trim();
            let count = match ci {
                Some(c) if !cell(c).is_empty() => cell(c)
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n <= MAX_COUNT)
                    .ok_or_else(|| {
                        Error::input(
                            path,
                            format!("row {row}: column count: not a whole number up to 10^12"),
                        )
                    })?,
                _ => 1,
            };
            let name = |c: usize| normalize::name(cell(c)).ok().flatten();
            let dob = match cell(di) {
                "" => None,
                d => Some(
                    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                        .map_err(|_| {
                            Error::input(
                                path,
                                format!("row {row}: column birth_date: not a YYYY-MM-DD date"),
                            )
                        })
                        .map(normalize::date_key)?,
                ),
            };
            persons.push(RefPerson {
                given: name(gi),
                family: name(fi),
                dob,
                count,
            });
        }
        if persons.is_empty() {
            return Err(Error::input(path, "the reference population has no rows"));
        }
        Ok(Reference::from_persons(persons, schema))
    }

    /// Builds the token statistics of `persons` under `schema`.
    pub fn from_persons(persons: Vec<RefPerson>, schema: &LinkageSchema) -> Reference {
        let mut weight: BTreeMap<TokenName, u64> = BTreeMap::new();
        let mut per_person: Vec<Vec<TokenName>> = Vec::with_capacity(persons.len());
        for p in &persons {
            let toks = identity_tokens(
                schema,
                p.given.as_deref(),
                p.family.as_deref(),
                p.dob.as_deref(),
            );
            for t in &toks {
                let w = weight.entry(t.clone()).or_default();
                *w = w.saturating_add(p.count);
            }
            per_person.push(toks);
        }
        let total: u64 = persons
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.count))
            .max(1);
        let mut tokens: Vec<(TokenName, u64)> = weight.into_iter().collect();
        // Most frequent first; ties by token, so the order is deterministic.
        tokens.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let index: FxHashMap<TokenName, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, (t, _))| (t.clone(), i as u32))
            .collect();
        let person_tokens = per_person
            .iter()
            .map(|ts| {
                let mut v: Vec<u32> = ts.iter().filter_map(|t| index.get(t).copied()).collect();
                v.sort_unstable();
                v
            })
            .collect();
        Reference {
            total,
            freq: tokens
                .iter()
                .map(|(_, w)| *w as f64 / total as f64)
                .collect(),
            tokens: tokens.into_iter().map(|(t, _)| t).collect(),
            index,
            person_tokens,
            persons,
        }
    }

    /// Distinct values of one field with their weighted counts, most frequent first.
    pub fn values(&self, f: impl Fn(&RefPerson) -> Option<&str>) -> Vec<(String, u64)> {
        let mut m: BTreeMap<&str, u64> = BTreeMap::new();
        for p in &self.persons {
            if let Some(v) = f(p) {
                let w = m.entry(v).or_default();
                *w = w.saturating_add(p.count);
            }
        }
        let mut v: Vec<(String, u64)> = m.into_iter().map(|(k, c)| (k.to_string(), c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

/// A CSV error's position, without the record's content.
fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, .. } => match pos {
            Some(p) => format!("row {}: wrong number of columns", p.record()),
            None => "a row has the wrong number of columns".into(),
        },
        csv::ErrorKind::Utf8 { pos, .. } => match pos {
            Some(p) => format!("row {}: not valid UTF-8", p.record()),
            None => "not valid UTF-8".into(),
        },
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => "not a readable CSV file".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_the_schema_and_frequencies_are_shares() {
        let schema = LinkageSchema::default_schema();
        let p = |g: &str, f: &str, d: &str| RefPerson {
            given: Some(g.into()),
            family: Some(f.into()),
            dob: Some(d.into()),
            count: 1,
        };
        let r = Reference::from_persons(
            vec![
                p("ANA", "LOPEZ", "20080412"),
                p("ANA", "PEREZ", "20090101"),
                p("JOSE", "LOPEZ", "20080101"),
            ],
            &schema,
        );
        let f =
            |ns: &str, t: &str| r.freq[r.index[&(ns.to_string(), t.as_bytes().to_vec())] as usize];
        assert!((f("name", "_A") - 2.0 / 3.0).abs() < 1e-9);
        assert!((f("name", "EZ") - 1.0).abs() < 1e-9);
        assert!((f("dob", "Y2008") - 2.0 / 3.0).abs() < 1e-9);
        // N01 is in two persons (Jan 1 twice) and once as the day of none: shares are per person.
        assert!((f("dob", "N01") - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.tokens[0], ("name".to_string(), b"EZ".to_vec()));
        assert_eq!(r.values(|p| p.given.as_deref())[0], ("ANA".to_string(), 2));
    }
}
