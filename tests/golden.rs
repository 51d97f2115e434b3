//! Golden vectors: fixed inputs, fixed outputs, with provenance in the fixture files.

use crosswalk::encode::{Encoder, Scratch};
use crosswalk::keys::{hex, SecretKey};
use crosswalk::normalize::{self, Identifiers, Problem};
use crosswalk::schema::{Field, LinkageSchema};

use crate::util::*;

/// fixtures/golden/clk_vectors.tsv was produced by an independent Python implementation of
/// docs/encoding.md (fixtures/golden/clk_vectors.py); crosswalk must agree bit for bit.
#[test]
fn clk_vectors_from_the_independent_implementation() {
    let text = std::fs::read_to_string(fixture("golden/clk_vectors.tsv")).unwrap();
    let key: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
    let key = SecretKey::from_bytes(key);
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 12, "{line}");
        let schema = LinkageSchema::from_file(&root().join(f[0])).unwrap();
        let mut ids = Identifiers::default();
        for (field, value) in Field::ALL.iter().zip(&f[1..11]) {
            if !value.is_empty() {
                ids.set(*field, Some(value.to_string()));
            }
        }
        let clk = Encoder::new(&schema, &key).encode(&ids, &mut Scratch::default());
        assert_eq!(hex(clk.as_bytes()), f[11], "vector {checked} ({})", f[0]);
        checked += 1;
    }
    assert_eq!(checked, 30);
}

#[test]
fn normalisation_vectors() {
    let text = std::fs::read_to_string(fixture("golden/normalize.tsv")).unwrap();
    let mut checked = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        let (func, input, expected) = (f[0], f[1], f[2]);
        let got = match func {
            "name" => normalize::name(input),
            "phone" => normalize::phone(input),
            "zip" => normalize::zip(input),
            "ssn4" => normalize::ssn4(input),
            "street" => normalize::street(input),
            "town" => normalize::town(input),
            other => panic!("unknown function {other}"),
        };
        let shown = match got {
            Ok(Some(v)) => v,
            Ok(None) => "-".to_string(),
            Err(p) => format!("!{p:?}"),
        };
        assert_eq!(shown, expected, "{func}({input:?})");
        checked += 1;
    }
    assert!(checked >= 45, "{checked}");
    let _ = Problem::BadZip;
}
