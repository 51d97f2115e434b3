//! `crosswalk inspect` and `crosswalk encode --check` (issue #21): drafts that need only their
//! code tables, house-style variations, the traps the issue lists, and a privacy scan of every
//! output on every fixture export.

use std::path::{Path, PathBuf};

use crosswalk::source::SourceMapping;

use crate::util::*;

/// Runs `inspect EXPORT --agency-type TYPE --draft OUT` and returns the draft's text.
fn draft(export: &Path, agency_type: &str, out: &Path) -> String {
    let o = crosswalk(&[
        "inspect",
        export.to_str().unwrap(),
        "--agency-type",
        agency_type,
        "--draft",
        out.to_str().unwrap(),
        "--reference-date",
        "2026-11-22",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::read_to_string(out).unwrap()
}

/// What an integrator adds to a draft: the agency's name and type, the code tables and the
/// default stage, all taken from `hand`.
fn fill_in(draft: &str, hand: &str) -> String {
    let mut d: toml::Table = toml::from_str(draft).expect("the draft is valid TOML");
    let h: toml::Table = toml::from_str(hand).unwrap();
    for key in [
        "agency",
        "agency_type",
        "default_stage",
        "sex_codes",
        "event_codes",
        "service_codes",
        "trafficking_codes",
        "service_code_applies_to",
    ] {
        match h.get(key) {
            Some(v) => {
                d.insert(key.into(), v.clone());
            }
            None => {
                if d.get(key)
                    .and_then(|v| v.as_table())
                    .is_some_and(|t| t.is_empty())
                {
                    d.remove(key);
                }
            }
        }
    }
    toml::to_string(&d).unwrap()
}

fn agency_type(hand: &str) -> String {
    let h: toml::Table = toml::from_str(hand).unwrap();
    h["agency_type"].as_str().unwrap().to_string()
}

/// Drafts `export` and checks that, with the code tables filled in, it is the hand-written
/// mapping and encodes to the same bytes.
fn assert_draft_is_the_mapping(dir: &Path, key: &Path, export: &Path, hand: &str, name: &str) {
    let d = draft(
        export,
        &agency_type(hand),
        &dir.join(format!("{name}.draft.toml")),
    );
    // Unfilled, the draft does not load: a code column needs its table.
    let filled = fill_in(&d, hand);
    let filled_path = dir.join(format!("{name}.filled.toml"));
    std::fs::write(&filled_path, &filled).unwrap();
    let ours = SourceMapping::from_toml(&filled, &filled_path)
        .unwrap_or_else(|e| panic!("{name}: the filled draft does not load: {e}"));
    let theirs = SourceMapping::from_toml(hand, Path::new("hand.toml")).unwrap();
    assert_eq!(ours.columns, theirs.columns, "{name}: [columns]");
    assert_eq!(ours, theirs, "{name}: the whole mapping");
    let hand_path = dir.join(format!("{name}.hand.toml"));
    std::fs::write(&hand_path, hand).unwrap();
    let mut encoded = Vec::new();
    for (src, tag) in [(&filled_path, "draft"), (&hand_path, "hand")] {
        let out = dir.join(format!("{name}.{tag}.parquet"));
        let o = encode(src, key, export, &out, &["--reference-date", "2026-11-22"]);
        assert!(o.status.success(), "{name} {tag}: {}", stderr(&o));
        encoded.push(std::fs::read(&out).unwrap());
    }
    assert!(
        encoded[0] == encoded[1],
        "{name}: the draft's encodings differ from the hand-written mapping's"
    );
}

/// The bar: for each agency export of `crosswalk synth`, the draft needs only its code
/// tables. Filled in, it is the committed mapping (so the encodings, the fill rates and the F1
/// of a linkage of the drafts are the same as the hand-written mappings').
#[test]
fn drafts_of_every_synth_export_need_only_their_code_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let world = tmp.path().join("world");
    synth_world(&world, "500", "11", "classic");
    let key = key_file(tmp.path());
    for (stem, _) in crosswalk::synth::AGENCIES {
        let hand = std::fs::read_to_string(world.join(format!("mappings/{stem}.toml"))).unwrap();
        let export = world.join(format!("exports/{stem}.csv"));
        assert_draft_is_the_mapping(tmp.path(), &key, &export, &hand, stem);
    }
}

/// Rewrites a CSV export: `f` maps each row (header first) to its new cells.
fn rewrite(
    src: &Path,
    dest: &Path,
    delimiter: u8,
    windows_1252: bool,
    f: &mut dyn FnMut(usize, Vec<String>) -> Vec<String>,
) {
    let text = std::fs::read(src).unwrap();
    let text = String::from_utf8(text).unwrap();
    let text = text.trim_start_matches('\u{feff}');
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for (i, rec) in r.records().enumerate() {
        let cells: Vec<String> = rec.unwrap().iter().map(str::to_string).collect();
        w.write_record(f(i, cells)).unwrap();
    }
    let bytes = w.into_inner().unwrap();
    let bytes = if windows_1252 {
        let (b, _, bad) = encoding_rs::WINDOWS_1252.encode(std::str::from_utf8(&bytes).unwrap());
        assert!(!bad);
        b.into_owned()
    } else {
        bytes
    };
    std::fs::write(dest, bytes).unwrap();
}

/// House-style variations of the synthetic exports: another delimiter, encoding and line
/// end; incident numbers that repeat across departments (a composite id); and an id shared by
/// co-victims, which no column tells apart (a warning, not a guess).
#[test]
fn house_style_variations_are_drafted_too() {
    let tmp = tempfile::tempdir().unwrap();
    let world = tmp.path().join("world");
    synth_world(&world, "400", "12", "classic");
    let key = key_file(tmp.path());
    let hand = |stem: &str| std::fs::read_to_string(world.join(format!("mappings/{stem}.toml")));

    // DCF as a semicolon-separated Windows-1252 file with CRLF line ends.
    let dcf = tmp.path().join("dcf_semicolons.csv");
    rewrite(
        &world.join("exports/dcf.csv"),
        &dcf,
        b';',
        true,
        &mut |_, c| c,
    );
    let dcf_hand = hand("dcf").unwrap().replace(
        "encoding = \"utf-8\"",
        "encoding = \"windows-1252\"\ndelimiter = \";\"",
    );
    assert_draft_is_the_mapping(tmp.path(), &key, &dcf, &dcf_hand, "dcf_semicolons");

    // Police incident numbers counted per department: the same number in every department.
    let police = tmp.path().join("police_by_department.csv");
    let mut per_dept: std::collections::HashMap<String, u32> = Default::default();
    rewrite(
        &world.join("exports/police.csv"),
        &police,
        b',',
        false,
        &mut |i, mut c| {
            if i > 0 {
                let n = per_dept.entry(c[6].clone()).or_default();
                *n += 1;
                c[0] = format!("{:05}", *n);
            }
            c
        },
    );
    let police_hand = hand("police").unwrap().replace(
        "record_id = \"Incident No\"",
        "record_id = [\"Department\", \"Incident No\"]",
    );
    assert!(police_hand.contains("[\"Department\""));
    assert_draft_is_the_mapping(tmp.path(), &key, &police, &police_hand, "police_by_dept");

    // Co-victims: every incident has two victims; no column tells them apart.
    let shared = tmp.path().join("co_victims.csv");
    let mut text = String::from("Incident No,Victim Name,Victim DOB,Offense Code\n");
    let names = [
        "Ana Lopez",
        "Maria Ruiz",
        "Jose Diaz",
        "Luz Vega",
        "Rosa Mora",
        "Eva Cruz",
    ];
    for i in 0..60 {
        text.push_str(&format!(
            "INC-{:04},{},{}/{}/20{:02},HT-INC\n",
            i / 2,
            names[i % 6],
            i % 12 + 1,
            i % 27 + 1,
            i % 10
        ));
    }
    std::fs::write(&shared, text).unwrap();
    let d = draft(&shared, "law_enforcement", &tmp.path().join("co.toml"));
    assert!(d.contains("record_id = \"Incident No\""), "{d}");
    assert!(d.contains("may not identify one person"), "{d}");
}

/// The trap of the issue: `MM/DD/YYYY` for cells like `3/7/2009` loses most birth dates
/// quietly. `encode --check` says so, and names the pattern that reads them; the strptime
/// form the format notes use reads them all.
#[test]
fn encode_check_warns_of_a_lossy_date_pattern_and_names_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let world = tmp.path().join("world");
    synth_world(&world, "300", "13", "classic");
    let hand = std::fs::read_to_string(world.join("mappings/police.toml")).unwrap();
    let export = world.join("exports/police.csv");
    let check = |mapping: &str| {
        let p = tmp.path().join("m.toml");
        std::fs::write(&p, mapping).unwrap();
        let o = encode_check(&p, &export);
        assert!(o.status.success(), "{}", stderr(&o));
        (String::from_utf8_lossy(&o.stdout).into_owned(), stderr(&o))
    };
    let (report, warnings) = check(&hand);
    assert!(report.contains("dob"), "{report}");
    assert!(!warnings.contains("warning"), "{warnings}");
    let literal = hand.replace("\"M/D/YYYY\"", "\"MM/DD/YYYY\"");
    assert_ne!(literal, hand);
    let (_, warnings) = check(&literal);
    assert!(
        warnings.contains("warning: field dob (column \"Victim DOB\") loses"),
        "{warnings}"
    );
    assert!(warnings.contains("adding \"M/D/YYYY\""), "{warnings}");
    let strptime = hand.replace("\"M/D/YYYY\"", "\"%m/%d/%Y\"");
    let (_, warnings) = check(&strptime);
    assert!(!warnings.contains("warning"), "{warnings}");
    // No key, no output: nothing was written beside the mapping.
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["m.toml", "world"]);
}

/// The identifier values of an export under its mapping: every word (4 characters or more)
/// of its name, alias, birth-date, phone, street, SSN and ZIP cells.
fn needles(export: &Path, mapping: &SourceMapping) -> Vec<String> {
    let bytes = std::fs::read(export).unwrap();
    let text = match mapping.encoding {
        crosswalk::source::TextEncoding::Utf8 => String::from_utf8(bytes).unwrap(),
        crosswalk::source::TextEncoding::Windows1252 => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(&bytes)
            .0
            .into_owned(),
    };
    let mut r = csv::ReaderBuilder::new()
        .delimiter(mapping.delimiter_byte())
        .flexible(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let c = &mapping.columns;
    let wanted: Vec<&str> = [
        c.given_name.as_deref(),
        c.middle_name.as_deref(),
        c.family_name.as_deref(),
        c.full_name.as_ref().map(|n| n.column.as_str()),
        c.alias.as_ref().map(|n| n.column.as_str()),
        c.dob.as_ref().map(|d| d.column.as_str()),
        c.phone.as_deref(),
        c.street.as_deref(),
        c.ssn4.as_deref(),
        c.zip.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let idx: Vec<usize> = wanted
        .iter()
        .map(|w| headers.iter().position(|h| h == w).unwrap())
        .collect();
    // A street's single words (`Street`, `Main`) are not identifiers: only whole addresses.
    let street = c
        .street
        .as_deref()
        .and_then(|s| headers.iter().position(|h| h == s));
    let header_words: Vec<String> = headers
        .iter()
        .flat_map(|h| h.split_whitespace().map(str::to_lowercase))
        .collect();
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        for &i in &idx {
            let cell = rec.get(i).unwrap_or("");
            let mut pieces: Vec<&str> = if Some(i) == street {
                Vec::new()
            } else {
                cell.split(|ch: char| ch.is_whitespace() || ",;".contains(ch))
                    .collect()
            };
            pieces.push(cell.trim());
            for p in pieces {
                let p = p.trim().to_lowercase();
                if p.chars().count() >= 4 && !header_words.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether `needle` occurs in `hay` as a whole word (not inside a longer word or number).
fn occurs(hay: &str, needle: &str) -> bool {
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        if boundary(before) && boundary(after) {
            return true;
        }
        from = start + needle.len().max(1);
    }
    false
}

/// Nothing `inspect` (report, draft), `inspect --mapping` or `encode --check` prints holds an
/// identifier of the export: checked on every fixture export and every synthetic export.
#[test]
fn inspect_prints_no_identifier_of_any_fixture_export() {
    let tmp = tempfile::tempdir().unwrap();
    let world = tmp.path().join("world");
    synth_world(&world, "300", "14", "classic");
    let mut cases: Vec<(PathBuf, PathBuf)> = Vec::new();
    for dir in [fixture("world"), world.clone()] {
        for (stem, _) in crosswalk::synth::AGENCIES {
            cases.push((
                dir.join(format!("exports/{stem}.csv")),
                dir.join(format!("mappings/{stem}.toml")),
            ));
        }
    }
    for (stem, _, _) in FIXTURES {
        cases.push((
            fixture(&format!("encoder/{stem}.csv")),
            fixture(&format!("encoder/{stem}.toml")),
        ));
    }
    let mut scanned = 0;
    for (export, mapping_path) in &cases {
        let mapping = SourceMapping::from_file(mapping_path).unwrap();
        let needles = needles(export, &mapping);
        assert!(!needles.is_empty(), "{}", export.display());
        let e = export.to_str().unwrap();
        let m = mapping_path.to_str().unwrap();
        let runs = [
            crosswalk(&["inspect", e]),
            crosswalk(&["inspect", e, "--mapping", m]),
            crosswalk(&["encode", "--check", "--source", m, "--input", e]),
        ];
        for o in &runs {
            assert!(o.status.success(), "{e}: {}", stderr(o));
            let all = format!(
                "{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
            .to_lowercase();
            let leaked: Vec<&String> = needles.iter().filter(|n| occurs(&all, n)).collect();
            assert!(
                leaked.is_empty(),
                "{e}: {} identifier value(s) in the output",
                leaked.len()
            );
            scanned += all.len();
        }
    }
    assert!(scanned > 100_000, "{scanned}");
}

/// The scan above finds an identifier where one is printed (so it cannot pass by missing
/// everything).
#[test]
fn the_inspect_scan_finds_a_printed_identifier() {
    let mapping = SourceMapping::from_file(&fixture("world/mappings/dcf.toml")).unwrap();
    let needles = needles(&fixture("world/exports/dcf.csv"), &mapping);
    let text = std::fs::read_to_string(fixture("world/exports/dcf.csv"))
        .unwrap()
        .to_lowercase();
    let line = text.lines().nth(3).unwrap();
    assert!(needles.iter().any(|n| occurs(line, n)));
    assert!(occurs("row 3: lopez.", "lopez"));
    assert!(!occurs("lopezz and 12345", "lopez"));
    assert!(!occurs("12345", "2345"));
}

/// Issue #21: mojibake in a name column (`JosÃ©`) is noticed and the draft repairs it; clean
/// accents are left alone.
#[test]
fn inspect_notices_mojibake_in_names() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |rows: &[&str]| {
        let p = tmp.path().join("names.csv");
        let mut text = String::from("Client ID,First Name,Last Name,DOB,Program\n");
        for (i, r) in rows.iter().cycle().take(40).enumerate() {
            text.push_str(&format!("C{i:04},{r},2001-02-{:02},SHELTER\n", i % 28 + 1));
        }
        std::fs::write(&p, text).unwrap();
        draft(&p, "service_provider", &tmp.path().join("d.toml"))
    };
    let broken = run(&["JosÃ©,PÃ©rez", "Ana,Lopez", "MarÃ\u{AD}a,NuÃ±ez"]);
    assert!(broken.contains("repair_mojibake = true"), "{broken}");
    let clean = run(&["José,Pérez", "Ana,Lopez", "María,Nuñez"]);
    assert!(!clean.contains("repair_mojibake"), "{clean}");
}

/// Every hostile export of the robustness corpus: `inspect` ends with an exit code (never a
/// panic) and prints no identifier of the file.
#[test]
fn inspect_survives_the_hostile_corpus_and_leaks_nothing() {
    let dir = fixture("hostile");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".csv") || name.ends_with(".parquet")) {
            continue;
        }
        let o = crosswalk(&["inspect", path.to_str().unwrap()]);
        let code = o.status.code();
        assert!(
            matches!(code, Some(0 | 1 | 4)),
            "{name}: exit {code:?}: {}",
            stderr(&o)
        );
        let all = format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
        .to_lowercase();
        // The hostile layout: client_id, first_name, last_name, birth_date, phone, ...
        let bytes = std::fs::read(&path).unwrap();
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&bytes[..]);
        for rec in r.byte_records().flatten().skip(1) {
            for cell in rec.iter().skip(1).take(4) {
                let text = String::from_utf8_lossy(cell).trim().to_lowercase();
                if text.chars().count() >= 4 && !text.chars().all(|c| c.is_ascii_digit()) {
                    assert!(!occurs(&all, &text), "{name}: an identifier in the output");
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 25, "{checked}");
}

/// Writes `text` to `dir/name` and drafts it (agency type `law_enforcement`), returning the
/// process output.
fn inspect_text(dir: &Path, name: &str, text: &str) -> std::process::Output {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    crosswalk(&[
        "inspect",
        p.to_str().unwrap(),
        "--agency-type",
        "law_enforcement",
    ])
}

/// Review findings on `inspect` (2026-12-06), each a regression test: a headerless file is
/// refused without quoting its first row; a birth date written only on the intake row is not
/// a different person; a per-row unique column does not make a composite id; specific header
/// words win over generic ones; a dated header is not taken for the birth date.
#[test]
fn inspect_review_regressions() {
    let tmp = tempfile::tempdir().unwrap();
    let out = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    // No header: the first row is a person.
    let o = inspect_text(
        tmp.path(),
        "noheader.csv",
        "Maria Lopez,F,LAB\nAna Ruiz,F,SEX\nJose Diaz,M,LAB\n",
    );
    assert_eq!(o.status.code(), Some(4), "{}", out(&o));
    assert!(!out(&o).contains("Maria") && !out(&o).contains("Lopez"));

    // A birth date on the intake row only: one client id, one person.
    let mut text = String::from("Client ID,First Name,Last Name,DOB,Service Type\n");
    let names = ["Ana", "Rosa", "Luz", "Eva", "Marta", "Lina"];
    for c in 0..120 {
        for k in 0..3 {
            let dob = if k == 0 {
                format!("2001-01-{:02}", c % 28 + 1)
            } else {
                String::new()
            };
            text.push_str(&format!("C{c:04},{},Diaz{c},{dob},SVC{k}\n", names[c % 6]));
        }
    }
    let o = inspect_text(tmp.path(), "intake_dob.csv", &text);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("record_id = \"Client ID\"\n"),
        "{}",
        out(&o)
    );

    // Co-victims told apart by a victim number, beside a badge number unique to each row.
    let mut text =
        String::from("Incident #,Badge,Victim Seq,Victim Name,Victim DOB,Offense Code\n");
    for i in 0..80 {
        for v in 1..=2 {
            text.push_str(&format!(
                "INC-{i:04},B{:05},{v},{} Vega{},{}/{}/2005,HT-INC\n",
                i * 2 + v,
                names[(i + v) % 6],
                i * 2 + v,
                v + 1,
                i % 27 + 1
            ));
        }
    }
    let o = inspect_text(tmp.path(), "covictims.csv", &text);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("record_id = [\"Victim Seq\", \"Incident #\"]"),
        "{}",
        out(&o)
    );

    // Specific header words first.
    let mut text = String::from(
        "Client ID,First Name,Last Name,Phone Number,SSN Last 4,Age at Intake,Last Known Address,Program\n",
    );
    for c in 0..60 {
        text.push_str(&format!(
            "C{c:04},{},Ortiz{c},860555{c:04},{:04},{},{c} Main Street,SHELTER\n",
            names[c % 6],
            c * 7,
            15 + c % 5
        ));
    }
    let o = inspect_text(tmp.path(), "headers.csv", &text);
    let d = out(&o);
    for line in [
        "record_id = \"Client ID\"",
        "phone = \"Phone Number\"",
        "ssn4 = \"SSN Last 4\"",
        "age = \"Age at Intake\"",
        "street = \"Last Known Address\"",
    ] {
        assert!(d.contains(line), "{line}: {d}");
    }

    // Old dates under a header that names another date are not the birth date.
    let mut text = String::from("Case ID,Client Name,Case Opened,Event Date,Event Type\n");
    for c in 0..60 {
        text.push_str(&format!(
            "K{c:04},{} Soto,1990-01-{:02},2024-02-{:02},INTAKE\n",
            names[c % 6],
            c % 28 + 1,
            c % 28 + 1
        ));
    }
    let o = inspect_text(tmp.path(), "olddates.csv", &text);
    assert!(!out(&o).contains("\ndob = "), "{}", out(&o));
}

/// `encode --check` says why rows are rejected and does not count their cells as parsed.
#[test]
fn encode_check_counts_rejected_rows_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("ragged.csv");
    std::fs::write(
        &export,
        "Client ID,Client Name,DOB,Program\n\
         C1,Ana Diaz,2001-01-01,SHELTER\n\
         C2,Diaz, Rosa,2001-01-02,SHELTER\n\
         C3,Luz Vega,2001-01-03,SHELTER\n\
         C4,Vega, Eva,2001-01-04,SHELTER\n",
    )
    .unwrap();
    let mapping = tmp.path().join("m.toml");
    std::fs::write(
        &mapping,
        "agency = \"h\"\nagency_type = \"service_provider\"\n[columns]\nrecord_id = \"Client ID\"\n\
         full_name = { column = \"Client Name\", layout = \"first_last\" }\n\
         dob = { column = \"DOB\", formats = [\"YYYY-MM-DD\"] }\nservice_code = \"Program\"\n\
         [service_codes]\nSHELTER = \"housing\"\n",
    )
    .unwrap();
    let o = encode_check(&mapping, &export);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        report.contains("4 rows; 2 would be rejected as a whole"),
        "{report}"
    );
    assert!(
        report.contains("rows rejected: row: ragged row"),
        "{report}"
    );
    assert!(
        report.contains("over the 2 rows that would be encoded"),
        "{report}"
    );
    assert!(
        stderr(&o).contains("2 of 4 rows would be rejected"),
        "{}",
        stderr(&o)
    );
    assert!(!report.contains("Diaz") && !report.contains("Rosa"));
}

/// A date format that leaves rows without any usable identifier gets them rejected; the check
/// still names the pattern that would read them (review, 2026-12-06).
#[test]
fn encode_check_names_the_fix_when_a_bad_date_rejects_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("dob_only.csv");
    let mut text = String::from("Client ID,DOB,Program\n");
    for i in 0..50 {
        text.push_str(&format!(
            "C{i:03},{:02}/{:02}/2001,SHELTER\n",
            i % 12 + 1,
            i % 28 + 1
        ));
    }
    std::fs::write(&export, text).unwrap();
    let mapping = tmp.path().join("m.toml");
    std::fs::write(
        &mapping,
        "agency = \"h\"\nagency_type = \"service_provider\"\n[columns]\nrecord_id = \"Client ID\"\n\
         dob = { column = \"DOB\", formats = [\"YYYY-MM-DD\"] }\nservice_code = \"Program\"\n\
         [service_codes]\nSHELTER = \"housing\"\n",
    )
    .unwrap();
    let o = encode_check(&mapping, &export);
    assert!(o.status.success(), "{}", stderr(&o));
    let warnings = stderr(&o);
    assert!(
        warnings.contains("50 of 50 rows would be rejected"),
        "{warnings}"
    );
    assert!(
        warnings.contains("field dob (column \"DOB\") is dropped in 50 rows that are rejected")
            && warnings.contains("adding \"MM/DD/YYYY\""),
        "{warnings}"
    );
}
