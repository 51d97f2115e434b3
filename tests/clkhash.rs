//! crosswalk's clkhash encoder against golden vectors made by clkhash 0.18.3 itself
//! (`fixtures/clkhash/make_vectors.py`, provenance in `fixtures/clkhash/PROVENANCE.json`):
//! 1,500 records over five schemas (v3 with blakeHash and doubleHash, bitsPerToken and
//! bitsPerFeature, ngram/exact/numeric, missing values, xor folding, l = 1000, SHA-512 HKDF; a
//! v2 and a v1 schema), non-ASCII names included. Bit for bit; no Python needed.

use crosswalk::clkhash::{clks_from_json, ClkhashEncoder, ClkhashSchema, TokenCache};

use crate::util::{crosswalk, fixture, stderr};

const SCHEMAS: [&str; 5] = [
    "febrl_v3",
    "double_v3",
    "mixed_v3",
    "legacy_v2",
    "legacy_v1",
];

/// The test key's bytes (the hex in fixtures/encoder/test.key), the secret the vectors used.
fn secret() -> Vec<u8> {
    let hex = std::fs::read_to_string(fixture("encoder/test.key")).unwrap();
    let hex = hex.trim();
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

#[test]
fn every_golden_vector_matches_bit_for_bit() {
    let mut total = 0;
    for name in SCHEMAS {
        let schema =
            ClkhashSchema::from_file(&fixture(&format!("clkhash/schemas/{name}.json"))).unwrap();
        let encoder = ClkhashEncoder::new(schema, &secret());
        let expected = clks_from_json(&fixture(&format!("clkhash/{name}.clks.json"))).unwrap();
        let mut reader = csv::Reader::from_path(fixture(&format!("clkhash/{name}.csv"))).unwrap();
        let mut n = 0;
        // Each record twice: from a cache kept warm across the file (as `encode` files run)
        // and from none.
        let mut cache = TokenCache::default();
        for (i, rec) in reader.records().enumerate() {
            let rec = rec.unwrap();
            let values: Vec<&str> = rec.iter().collect();
            let clk = encoder.encode_with(&values, &mut cache).unwrap();
            assert!(
                clk == expected[i],
                "{name}: record {i} differs from clkhash (warm token cache)"
            );
            assert!(
                encoder.encode(&values).unwrap() == expected[i],
                "{name}: record {i} differs from clkhash"
            );
            n += 1;
        }
        assert_eq!(n, expected.len(), "{name}");
        assert!(n >= 300);
        // A second pass through the now warm cache: every value found whole.
        let mut reader = csv::Reader::from_path(fixture(&format!("clkhash/{name}.csv"))).unwrap();
        for (i, rec) in reader.records().enumerate() {
            let rec = rec.unwrap();
            let values: Vec<&str> = rec.iter().collect();
            assert!(
                encoder.encode_with(&values, &mut cache).unwrap() == expected[i],
                "{name}: record {i} differs from clkhash (second pass)"
            );
        }
        total += n;
    }
    assert!(total >= 1000);
    // The comparison can fail: another secret gives other bits.
    let schema = ClkhashSchema::from_file(&fixture("clkhash/schemas/febrl_v3.json")).unwrap();
    let other = ClkhashEncoder::new(schema, b"another secret");
    let expected = clks_from_json(&fixture("clkhash/febrl_v3.clks.json")).unwrap();
    let mut reader = csv::Reader::from_path(fixture("clkhash/febrl_v3.csv")).unwrap();
    let rec = reader.records().next().unwrap().unwrap();
    assert!(other.encode(&rec.iter().collect::<Vec<_>>()).unwrap() != expected[0]);
}

#[test]
fn the_cli_writes_clkhash_json_that_matches() {
    let dir = tempfile::tempdir().unwrap();
    let key = crate::util::key_file(dir.path());
    for name in SCHEMAS {
        let out = dir.path().join(format!("{name}.json"));
        let o = crosswalk(&[
            "encode",
            "--schema",
            fixture(&format!("clkhash/schemas/{name}.json"))
                .to_str()
                .unwrap(),
            "--key-file",
            key.to_str().unwrap(),
            "--input",
            fixture(&format!("clkhash/{name}.csv")).to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let (got, want) = (
            clks_from_json(&out).unwrap(),
            clks_from_json(&fixture(&format!("clkhash/{name}.clks.json"))).unwrap(),
        );
        assert!(got == want, "{name}: the CLI's CLKs differ from clkhash's");
    }
}

#[test]
fn link_reads_clkhash_json_and_csv_and_clks_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let key = crate::util::key_file(dir.path());
    // The febrl_v3 records encoded by crosswalk as clkhash CSV; linked with clkhash's own JSON.
    let csv_out = dir.path().join("copy.csv");
    let o = crosswalk(&[
        "encode",
        "--schema",
        fixture("clkhash/schemas/febrl_v3.json").to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
        "--input",
        fixture("clkhash/febrl_v3.csv").to_str().unwrap(),
        "--out",
        csv_out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = dir.path().join("run");
    let golden = fixture("clkhash/febrl_v3.clks.json");
    let o = crosswalk(&[
        "link",
        "--out",
        run.to_str().unwrap(),
        "--one-to-one",
        golden.to_str().unwrap(),
        csv_out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let entities = crosswalk::io::entities::entity_rows(&run).unwrap();
    assert_eq!(entities.len(), 600);
    let mut by_person: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (agency, _, p) in entities {
        by_person.entry(p).or_default().push(agency);
    }
    assert_eq!(by_person.len(), 300, "every record pairs with its copy");
    assert!(by_person.values().all(|a| a.len() == 2 && a[0] != a[1]));
    // crosswalk's own encodings out in clkhash JSON, and refused next to clkhash files.
    let (o, enc) = crate::util::encode_fixture(dir.path(), "dcf", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json = dir.path().join("dcf.json");
    let o = crosswalk(&[
        "clks",
        "--out",
        json.to_str().unwrap(),
        enc.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let parquet = crosswalk::io::encodings::read(&enc).unwrap();
    assert_eq!(clks_from_json(&json).unwrap().concat(), parquet.clks);
    let o = crosswalk(&[
        "link",
        "--out",
        dir.path().join("mixed").to_str().unwrap(),
        enc.to_str().unwrap(),
        golden.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
}

/// Edge cases (`fixtures/clkhash/edge/`, also made by clkhash 0.18.3): more than 32 bits per
/// token, SHA-512 keys with salt and keySize 32, UTF-16/UTF-32 fields, bitsPerFeature below the
/// token count, integer reformatting, missing values that skip date formatting, l = 61 and
/// l = 8 with doubleHash (its singularity re-hash runs), numeric rounding of negatives.
#[test]
fn edge_case_vectors_match_bit_for_bit() {
    let prov: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("clkhash/edge/PROVENANCE.json")).unwrap(),
    )
    .unwrap();
    let names: Vec<String> = prov["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(names.len() >= 5);
    for name in names {
        let schema =
            ClkhashSchema::from_file(&fixture(&format!("clkhash/edge/schemas/{name}.json")))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        let encoder = ClkhashEncoder::new(schema, &secret());
        let expected = clks_from_json(&fixture(&format!("clkhash/edge/{name}.clks.json"))).unwrap();
        let mut reader =
            csv::Reader::from_path(fixture(&format!("clkhash/edge/{name}.csv"))).unwrap();
        let mut n = 0;
        let mut cache = TokenCache::default();
        for (i, rec) in reader.records().enumerate() {
            let rec = rec.unwrap();
            let values: Vec<&str> = rec.iter().collect();
            let clk = encoder
                .encode_with(&values, &mut cache)
                .unwrap_or_else(|e| panic!("{name}: record {i}: {e:?}"));
            assert!(
                clk == expected[i],
                "{name}: record {i} differs from clkhash (warm token cache)"
            );
            assert!(
                encoder.encode(&values).unwrap() == expected[i],
                "{name}: record {i} differs from clkhash"
            );
            n += 1;
        }
        assert_eq!(n, expected.len(), "{name}");
    }
}
