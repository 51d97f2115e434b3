//! Property tests: invariants of normalisation and encoding over generated inputs.

use crosswalk::encode::{reference, Encoder, Scratch};
use crosswalk::keys::SecretKey;
use crosswalk::normalize::{self, Identifiers};
use crosswalk::schema::{Field, LinkageSchema};
use proptest::prelude::*;

fn name_strategy() -> impl Strategy<Value = String> {
    "[A-Z]{4,9}"
}

fn record(given: &str, family: &str, dob: &str) -> Identifiers {
    let mut ids = Identifiers::default();
    ids.set(Field::GivenName, normalize::name(given).unwrap());
    ids.set(Field::FamilyName, normalize::name(family).unwrap());
    ids.set(Field::Dob, Some(dob.to_string()));
    ids.set(Field::Sex, Some("F".into()));
    ids.set(Field::Phone, Some("8605550101".into()));
    ids.set(Field::Street, Some("12 MAIN ST".into()));
    ids.set(Field::Town, Some("HARTFORD".into()));
    ids.set(Field::Zip, Some("06106".into()));
    ids
}

fn typo(s: &str, pos: usize, kind: u8, c: char) -> String {
    let mut v: Vec<char> = s.chars().collect();
    let i = pos % v.len();
    match kind % 4 {
        0 => v[i] = c,       // substitution
        1 => v.insert(i, c), // insertion
        2 if v.len() > 1 => {
            v.remove(i); // deletion
        }
        _ if i + 1 < v.len() => v.swap(i, i + 1), // transposition
        _ => v[i] = c,
    }
    v.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn fast_encoder_equals_reference(given in name_strategy(), family in name_strategy(),
                                     y in 1950u32..2020, m in 1u32..13, d in 1u32..29,
                                     key in any::<[u8; 32]>()) {
        let schema = LinkageSchema::default_schema();
        let key = SecretKey::from_bytes(key);
        let enc = Encoder::new(&schema, &key);
        let ids = record(&given, &family, &format!("{y:04}{m:02}{d:02}"));
        let mut scratch = Scratch::default();
        let fast = enc.encode(&ids, &mut scratch);
        prop_assert_eq!(&fast, &reference::encode(&schema, &key, &ids));
        // deterministic: again, from a warm cache
        prop_assert_eq!(&fast, &enc.encode(&ids, &mut scratch));
    }

    #[test]
    fn one_typo_in_a_name_keeps_dice_high(given in name_strategy(), family in name_strategy(),
                                          pos in 0usize..20, kind in 0u8..4, c in "[A-Z]",
                                          in_family in any::<bool>()) {
        // On the plain Dice scale: the default fields without hardening.
        let plain = LinkageSchema::from_toml(
            &crosswalk::schema::unhardened_default_toml(), std::path::Path::new("plain.toml")).unwrap();
        let enc = Encoder::new(&plain, &SecretKey::from_bytes([5; 32]));
        let mut s = Scratch::default();
        let c = c.chars().next().unwrap();
        let a = enc.encode(&record(&given, &family, "20080412"), &mut s);
        let (g2, f2) = if in_family {
            (given.clone(), typo(&family, pos, kind, c))
        } else {
            (typo(&given, pos, kind, c), family.clone())
        };
        let b = enc.encode(&record(&g2, &f2, "20080412"), &mut s);
        let dice = a.dice(&b);
        prop_assert!(dice >= 0.8, "dice {} for one typo", dice);
    }

    #[test]
    fn normalisers_never_panic(s in any::<String>()) {
        let _ = normalize::name(&s);
        let _ = normalize::phone(&s);
        let _ = normalize::zip(&s);
        let _ = normalize::ssn4(&s);
        let _ = normalize::street(&s);
        let _ = normalize::town(&s);
        let _ = normalize::split_name(&s, normalize::NameLayout::LastCommaFirst);
        let _ = normalize::split_name(&s, normalize::NameLayout::FirstLast);
        let pats: Vec<normalize::DatePattern> = ["MM/DD/YYYY", "DD-Mon-YYYY", "YYYYMMDD", "Month D, YYYY"]
            .iter().map(|p| p.parse().unwrap()).collect();
        let _ = normalize::date(&s, &pats, chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
    }

    #[test]
    fn names_normalise_idempotently(s in "\\PC{0,30}") {
        if let Ok(Some(n)) = normalize::name(&s) {
            prop_assert_eq!(normalize::name(&n).unwrap(), Some(n.clone()));
            prop_assert!(n.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '));
        }
    }

    #[test]
    fn extractor_never_panics_on_arbitrary_rows(cells in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8)) {
        let mapping = crosswalk::source::SourceMapping::from_toml(r#"
agency = "x"
agency_type = "other"
[columns]
record_id = "a"
full_name = { column = "b", layout = "last_comma_first" }
dob = { column = "c", formats = ["M/D/YYYY", "YYYYMMDD"] }
phone = "d"
zip = "e"
event_code = "f"
[event_codes]
X = "identification"
"#, std::path::Path::new("m")).unwrap();
        let headers: Vec<String> = ["a", "b", "c", "d", "e", "f"].iter().map(|s| s.to_string()).collect();
        let ex = crosswalk::source::Extractor::new(&mapping, &headers,
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), std::path::Path::new("f")).unwrap();
        let refs: Vec<&[u8]> = cells.iter().map(|c| c.as_slice()).collect();
        let _ = ex.extract(&refs);
    }
}
