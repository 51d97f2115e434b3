//! `crosswalk encode` on the committed fixture exports, one per house style.

use std::collections::HashMap;

use crosswalk::io::encodings;
use crosswalk::keys::SecretKey;
use crosswalk::schema::LinkageSchema;

use crate::util::*;

#[test]
fn every_house_style_encodes() {
    let dir = tempfile::tempdir().unwrap();
    let kcv = SecretKey::read(&key_file(dir.path()))
        .unwrap()
        .check_value();
    for (stem, agency, rows) in FIXTURES {
        let (out, path) = encode_fixture(dir.path(), stem, &[]);
        assert!(out.status.success(), "{stem}: {}", stderr(&out));
        let enc = encodings::read(&path).unwrap();
        assert_eq!(enc.len(), rows, "{stem}");
        assert_eq!(enc.meta.rows as usize, rows);
        assert_eq!(enc.meta.rejected_rows, 0, "{stem}: {}", stderr(&out));
        assert_eq!(enc.meta.agency, agency);
        assert_eq!(enc.meta.kcv, kcv);
        assert_eq!(enc.meta.clk_bits, 1024);
        assert_eq!(
            enc.meta.schema_fingerprint,
            LinkageSchema::default_schema().fingerprint()
        );
        // every record has a non-empty CLK of a plausible density
        for i in 0..enc.len() {
            let ones = enc.clk(i).count_ones();
            assert!((60..700).contains(&ones), "{stem} row {i}: {ones} bits set");
        }
        // the rejects report exists and holds only its header
        let rejects = std::fs::read_to_string(path.with_extension("rejects.csv")).unwrap();
        assert_eq!(rejects.lines().count(), 1, "{stem}: {rejects}");
    }
}

#[test]
fn codes_map_onto_the_standard_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let read = |stem: &str| {
        let (out, path) = encode_fixture(dir.path(), stem, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        encodings::read(&path).unwrap()
    };
    let dcf = read("dcf");
    assert_eq!(dcf.stage[0].as_deref(), Some("identification"));
    assert_eq!(dcf.stage[1].as_deref(), Some("screening"));
    assert_eq!(dcf.stage[9], None, "CASE-CLOSE is administrative: no stage");
    assert_eq!(dcf.age_band[0], "13-17");
    assert_eq!(dcf.trafficking_type[0], "sex");
    let cac = read("cac");
    assert_eq!(cac.stage[2].as_deref(), Some("service_immediate"));
    assert_eq!(cac.service_type[2].as_deref(), Some("medical"));
    let rhtrt = read("rhtrt");
    assert!(rhtrt.stage.iter().all(|s| s.as_deref() == Some("referral")));
    let housing = read("housing");
    assert_eq!(housing.service_type[0].as_deref(), Some("housing"));
    assert!(housing.end_date[0].is_some());
    assert_eq!(housing.end_date[1], None);
    assert_eq!(housing.stage[5].as_deref(), Some("service_long_term"));
    let police = read("police");
    assert_eq!(police.unit[3].as_deref(), Some("State Police Troop H"));
    assert_eq!(police.sex[0], "female");
    assert_eq!(police.trafficking_type[4], "labor");
    let aliases: usize = police.alias_clks.iter().map(Vec::len).sum();
    assert_eq!(aliases, 1);
}

/// Loads every fixture encoding with its truth: (person, agency, clk).
fn records_with_truth(dir: &std::path::Path) -> Vec<(u32, String, crosswalk::clk::Clk)> {
    let truth_text = std::fs::read_to_string(fixture("encoder/truth.csv")).unwrap();
    let truth: HashMap<(String, String), u32> = truth_text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            ((f[0].to_string(), f[1].to_string()), f[2].parse().unwrap())
        })
        .collect();
    let mut all = Vec::new();
    for (stem, agency, _) in FIXTURES {
        let map_path = dir.join(format!("{stem}.map.parquet"));
        let (out, path) = encode_fixture(dir, stem, &["--map-out", map_path.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let enc = encodings::read(&path).unwrap();
        let by_key: HashMap<String, String> = read_map(&map_path)
            .into_iter()
            .map(|(id, k)| (k, id))
            .collect();
        for i in 0..enc.len() {
            let local = &by_key[&enc.record_key[i]];
            let person = truth[&(agency.to_string(), local.clone())];
            all.push((person, agency.to_string(), enc.clk(i)));
        }
    }
    all
}

/// The fixtures' hard cases (dropped accents, shortened compound surnames, swapped names, a
/// nickname, a day/month swap, twins) still put each record nearest to its own person.
#[test]
fn same_person_is_nearest_across_agencies() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records_with_truth(dir.path());
    let (mut with_match, mut nearest_is_true) = (0, 0);
    let mut worst_true: f64 = 1.0;
    for (i, (p, _, c)) in recs.iter().enumerate() {
        let mut best = (-1.0, 0u32);
        let mut has_true = false;
        for (j, (q, _, d)) in recs.iter().enumerate() {
            if i == j {
                continue;
            }
            let s = c.dice(d);
            if q == p {
                has_true = true;
                worst_true = worst_true.min(s);
            }
            if s > best.0 {
                best = (s, *q);
            }
        }
        if has_true {
            with_match += 1;
            if best.1 == *p {
                nearest_is_true += 1;
            }
        }
    }
    let rate = nearest_is_true as f64 / with_match as f64;
    eprintln!("nearest neighbour is the same person for {nearest_is_true}/{with_match}; worst true-pair Dice {worst_true:.3}");
    assert!(rate >= 0.95, "rank-1 rate {rate:.3}");
}

#[test]
fn twins_score_below_the_same_person() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records_with_truth(dir.path());
    // persons 11 and 12 are twins: same surname, birth date, address and phone
    let p11: Vec<_> = recs.iter().filter(|r| r.0 == 11).collect();
    let p12: Vec<_> = recs.iter().filter(|r| r.0 == 12).collect();
    let same = p11[0].2.dice(&p11[1].2);
    let twins = p11[0].2.dice(&p12[0].2);
    eprintln!("same person {same:.3}, twins {twins:.3}");
    assert!(same > twins + 0.1, "same {same} twins {twins}");
}

#[test]
fn output_is_byte_identical_at_any_thread_count() {
    // Replicate the DCF fixture past one chunk (16,384 rows) so chunking and threads both matter.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("encoder/dcf.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let body: Vec<&str> = lines.collect();
    let mut big = String::from(header);
    big.push('\n');
    for i in 0..2_000 {
        for l in &body {
            big.push_str(&l.replacen("DCF-", &format!("DCF-{i}-"), 1));
            big.push('\n');
        }
    }
    let input = dir.path().join("big.csv");
    std::fs::write(&input, big).unwrap();
    let key = key_file(dir.path());
    let src = fixture("encoder/dcf.toml");
    let mut outputs = Vec::new();
    for j in ["1", "2"] {
        let out = dir.path().join(format!("j{j}.parquet"));
        let map = dir.path().join(format!("j{j}.map.parquet"));
        let o = encode(
            &src,
            &key,
            &input,
            &out,
            &["--map-out", map.to_str().unwrap(), "-j", j],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        outputs.push((std::fs::read(&out).unwrap(), std::fs::read(&map).unwrap()));
    }
    assert_eq!(
        encodings::read(&dir.path().join("j1.parquet"))
            .unwrap()
            .len(),
        20_000
    );
    assert!(
        outputs[0].0 == outputs[1].0,
        "encodings differ between -j 1 and -j 2"
    );
    assert!(
        outputs[0].1 == outputs[1].1,
        "local maps differ between -j 1 and -j 2"
    );
}

/// A schema with `[parts]` writes each record's parts beside its CLK: the layout and hardening
/// in the metadata, a names part for every named row and for every alias, null parts where the
/// export has no such fields, byte-identical output at any thread count.
#[test]
fn parts_are_written_beside_the_clk() {
    use crosswalk::schema::Part;
    let dir = tempfile::tempdir().unwrap();
    let schema = parts_schema_file(dir.path());
    let mut files = Vec::new();
    for j in ["1", "2"] {
        std::fs::create_dir_all(dir.path().join(j)).unwrap();
        let (out, path) = encode_fixture(
            &dir.path().join(j),
            "police",
            &["--schema", schema.to_str().unwrap(), "-j", j],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        files.push(std::fs::read(&path).unwrap());
        let enc = encodings::read(&path).unwrap();
        assert_eq!(
            encodings::parts_layout_text(&enc.meta.parts),
            "names:1024,dob:1024,phone:1024,address:1024,ssn4:256"
        );
        assert_eq!(enc.meta.parts_hardening, "diffusion 4");
        assert_eq!(enc.meta.hardening, "none", "the record CLK keeps its own");
        for i in 0..enc.len() {
            let names = enc.part(Part::Names, i).expect("every police row is named");
            assert!(names.iter().map(|b| b.count_ones()).sum::<u32>() > 100);
            // The police export has no address or SSN columns: no such parts, not empty ones.
            assert!(enc.part(Part::Address, i).is_none());
            assert!(enc.part(Part::Ssn4, i).is_none());
            assert_eq!(enc.parts.alias_names[i].len(), enc.alias_clks[i].len());
        }
        let with_dob = (0..enc.len())
            .filter(|&i| enc.part(Part::Dob, i).is_some())
            .count();
        assert!(with_dob > 0 && with_dob <= enc.len());
    }
    assert!(files[0] == files[1], "parts differ between -j 1 and -j 2");
}

/// The summary's count of rows repeating an earlier row's identifiers is exact: three more
/// copies of rows already in the export add exactly three.
#[test]
fn repeated_rows_are_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let src = fixture("encoder/police.toml");
    let original = std::fs::read_to_string(fixture("encoder/police.csv")).unwrap();
    let count = |csv: &str, name: &str| -> u64 {
        let input = dir.path().join(format!("{name}.csv"));
        std::fs::write(&input, csv).unwrap();
        let out = dir.path().join(format!("{name}.parquet"));
        let o = encode(
            &src,
            &key,
            &input,
            &out,
            &["--reference-date", "2026-11-22"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_suffix(
                        " rows repeat an earlier row's identifiers exactly (repeat contacts)",
                    )
                    .map(|n| n.parse().unwrap())
            })
            .unwrap_or(0)
    };
    let before = count(&original, "once");
    let rows: Vec<&str> = original.lines().skip(1).collect();
    let mut more = original.clone();
    for r in [rows[0], rows[3], rows[0]] {
        more.push_str(r);
        more.push('\n');
    }
    assert_eq!(count(&more, "more"), before + 3);
}

/// With `nicknames = true` the encoder reads nicknames as full given names, in legal names and
/// aliases: `JEN` and `JENNIFER` give one record CLK and one names part when the row's sex
/// fits; `SAM` on a row without a sex (Samantha or Samuel) is left as it is, and so is `JEN` on
/// a row recorded male. The default schema, without the option, keeps every nickname.
#[test]
fn nicknames_are_read_as_full_names() {
    use crosswalk::schema::Part;
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let src = fixture("encoder/police.toml");
    let header = "Incident No,Victim Name,AKA,Victim DOB,Sex,Contact Phone,Department,Offense Code,Reported At,Trafficking Type\n";
    let row = |id: &str, name: &str, aka: &str, sex: &str| {
        format!("{id},\"{name}\",{aka},5/5/2004,{sex},,Hartford PD,HT-INC,2024-01-14 02:40,Sex\n")
    };
    let csv = [
        row("A1", "Smith, Jennifer", "", "2"),
        row("A2", "Smith, Jen", "", "2"),
        row("A3", "Smith, Jen", "", "1"),
        row("A4", "Smith, Samantha", "", ""),
        row("A5", "Smith, Sam", "", ""),
        row("A6", "Smith, Jennifer", "Jenny Lopez", "2"),
        row("A7", "Smith, Jennifer", "Jennifer Lopez", "2"),
    ]
    .concat();
    let input = dir.path().join("nick.csv");
    std::fs::write(&input, format!("{header}{csv}")).unwrap();
    let read = |schema: Option<&str>, name: &str| {
        let out = dir.path().join(format!("{name}.parquet"));
        let mut extra = vec!["--reference-date", "2026-11-22"];
        if let Some(s) = schema {
            extra.extend(["--schema", s]);
        }
        let o = encode(&src, &key, &input, &out, &extra);
        assert!(o.status.success(), "{}", stderr(&o));
        encodings::read(&out).unwrap()
    };
    // The default schema with the option turned on.
    let anchor = "namespace = \"name\"\n";
    let text = crosswalk::schema::DEFAULT_SCHEMA_TOML.replacen(
        anchor,
        &format!("{anchor}nicknames = true\n"),
        1,
    );
    let schema = dir.path().join("nicknames.toml");
    std::fs::write(&schema, &text).unwrap();
    let with = LinkageSchema::from_file(&schema).unwrap();
    assert!(with.reads_nicknames());
    // The table is in the fingerprint; the option is not a comment.
    assert_ne!(
        with.fingerprint(),
        LinkageSchema::default_schema().fingerprint()
    );
    let enc = read(schema.to_str(), "nicknames");
    let names = |i: usize| enc.part(Part::Names, i).unwrap().to_vec();
    assert_eq!(enc.clk(0), enc.clk(1), "JEN on a female row is JENNIFER");
    assert_eq!(names(0), names(1));
    assert_ne!(names(0), names(2), "JEN on a male row stays JEN");
    assert_ne!(names(3), names(4), "SAM without a sex stays SAM");
    assert_eq!(enc.alias_clks[5], enc.alias_clks[6], "aliases are read too");
    assert_eq!(enc.parts.alias_names[5], enc.parts.alias_names[6]);
    // The default schema keeps them.
    assert!(!LinkageSchema::default_schema().reads_nicknames());
    let enc = read(None, "default");
    assert_ne!(enc.clk(0), enc.clk(1));
}
