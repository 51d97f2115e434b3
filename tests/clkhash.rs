//! crosswalk's clkhash encoder against golden vectors made by clkhash 0.18.3 itself
//! (`fixtures/clkhash/make_vectors.py`, provenance in `fixtures/clkhash/PROVENANCE.json`):
//! 1,500 records over five schemas (v3 with blakeHash and doubleHash, bitsPerToken and
//! bitsPerFeature, ngram/exact/numeric, missing values, xor folding, l = 1000, SHA-512 HKDF; a
//! v2 and a v1 schema), non-ASCII names included. Bit for bit; no Python needed.

use crosswalk::clkhash::{clks_from_json, ClkhashEncoder, ClkhashSchema};

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
        for (i, rec) in reader.records().enumerate() {
            let rec = rec.unwrap();
            let values: Vec<&str> = rec.iter().collect();
            let clk = encoder.encode(&values).unwrap();
            assert!(
                clk == expected[i],
                "{name}: record {i} differs from clkhash"
            );
            n += 1;
        }
        assert_eq!(n, expected.len(), "{name}");
        assert!(n >= 300);
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
