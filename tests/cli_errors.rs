//! Bad input gets a clear message naming file, row and field, a documented exit code, and
//! never a panic; outputs of an earlier run survive a failed one.

use std::path::Path;

use crate::util::*;

const MAPPING: &str = r#"
agency = "test"
agency_type = "other"
[columns]
record_id = "id"
given_name = "first"
family_name = "last"
dob = { column = "dob", formats = ["YYYY-MM-DD"] }
event_code = "code"
[event_codes]
A = "identification"
"#;

/// Writes `csv` and the mapping above into `dir`, runs encode, returns (output, out path).
fn run(dir: &Path, csv: &[u8], mapping: &str) -> (std::process::Output, std::path::PathBuf) {
    let input = dir.join("in.csv");
    std::fs::write(&input, csv).unwrap();
    let src = dir.join("m.toml");
    std::fs::write(&src, mapping).unwrap();
    let key = key_file(dir);
    let out = dir.join("out.parquet");
    (encode(&src, &key, &input, &out, &[]), out)
}

fn assert_clean_failure(o: &std::process::Output, code: i32) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.starts_with("crosswalk: error: "), "{err}");
    err
}

#[test]
fn missing_column_is_named_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = run(
        dir.path(),
        b"id,frist,last,dob,code\n1,Ana,Lopez,2001-01-01,A\n",
        MAPPING,
    );
    let err = assert_clean_failure(&o, 4);
    assert!(err.contains("\"first\" (did you mean \"frist\"?)"), "{err}");
    assert!(err.contains("in.csv"), "{err}");
    assert!(!out.exists());
}

#[test]
fn unknown_codes_are_counted_and_nothing_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    // a first good run
    let (o, out) = run(
        dir.path(),
        b"id,first,last,dob,code\n1,Ana,Lopez,2001-01-01,A\n",
        MAPPING,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(&out).unwrap();
    // a second run with new codes fails and leaves the first output as it was
    let csv = b"id,first,last,dob,code\n1,Ana,Lopez,2001-01-01,A\n2,Bo,Li,2001-01-01,NEW\n3,Cy,Wu,2001-01-01,NEW\n4,Di,Ng,2001-01-01,\n";
    let (o, out) = run(dir.path(), csv, MAPPING);
    let err = assert_clean_failure(&o, 4);
    assert!(
        err.contains("event_code a value shaped AAA (2 rows: row 2, 3)"),
        "{err}"
    );
    assert!(err.contains("event_code (empty) (1 rows)"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    // with unknown_codes = "reject" the rows go to the rejects report instead
    let mapping = MAPPING.replace("[columns]", "unknown_codes = \"reject\"\n[columns]");
    let (o, out) = run(dir.path(), csv, &mapping);
    assert!(o.status.success(), "{}", stderr(&o));
    let enc = crosswalk::io::encodings::read(&out).unwrap();
    assert_eq!(enc.len(), 1);
    assert_eq!(enc.meta.rejected_rows, 3);
    let rejects = std::fs::read_to_string(out.with_extension("rejects.csv")).unwrap();
    assert!(
        rejects.contains("2,3,event_code,,row rejected,code not listed in the source mapping"),
        "{rejects}"
    );
}

#[test]
fn row_and_field_problems_go_to_the_rejects_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = b"id,first,last,dob,code\n".to_vec();
    csv.extend_from_slice(b"1,Ana,Lopez,2001-02-30,A\n"); // impossible date: field dropped
    csv.extend_from_slice(b"2,Bo,Li\n"); // ragged: row rejected
    csv.extend_from_slice(b"3,\xff\xfeAna,Lopez,2001-01-01,A\n"); // undecodable given name
    csv.extend_from_slice(b",Cy,Wu,2001-01-01,A\n"); // no record id
    csv.extend_from_slice(b"5,Di,Ng,1890-01-01,A\n"); // too early
    csv.extend_from_slice(b"6,Ed,Ox,2999-01-01,A\n"); // future
    let big = "x".repeat(10 * 1024 * 1024);
    csv.extend_from_slice(format!("7,{big},Ox,2001-01-01,A\n").as_bytes()); // 10 MB field
    let (o, out) = run(dir.path(), &csv, MAPPING);
    assert!(o.status.success(), "{}", stderr(&o));
    let enc = crosswalk::io::encodings::read(&out).unwrap();
    assert_eq!(enc.len(), 5);
    let rejects = std::fs::read_to_string(out.with_extension("rejects.csv")).unwrap();
    let expect = [
        "1,2,dob,dob,field dropped,impossible date (no such day)",
        "2,3,row,,row rejected,ragged row: 3 fields where the header has 5",
        "3,4,given_name,first,field dropped,bytes not valid in the configured text encoding",
        "4,5,record_id,id,row rejected,missing record id",
        "5,6,dob,dob,field dropped,date before 1900",
        "6,7,dob,dob,field dropped,date in the future",
        "7,8,given_name,first,field dropped,value too long",
    ];
    for e in expect {
        assert!(rejects.contains(e), "missing {e:?} in\n{rejects}");
    }
    assert!(
        rejects.len() < 2000,
        "the rejects report must not echo values"
    );
}

#[test]
fn empty_and_headerless_files() {
    let dir = tempfile::tempdir().unwrap();
    let (o, _) = run(dir.path(), b"", MAPPING);
    let err = assert_clean_failure(&o, 4);
    assert!(err.contains("empty"), "{err}");
    let (o, _) = run(dir.path(), b"\n\n", MAPPING);
    assert_clean_failure(&o, 4);
}

#[test]
fn windows_1252_bytes_under_a_utf8_mapping_cost_a_field_not_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // "José" in Windows-1252
    let (o, out) = run(
        dir.path(),
        b"id,first,last,dob,code\n1,Jos\xe9,Lopez,2001-01-01,A\n",
        MAPPING,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(crosswalk::io::encodings::read(&out).unwrap().len(), 1);
    let with_1252 = MAPPING.replace("[columns]", "encoding = \"windows-1252\"\n[columns]");
    let (o, out) = run(
        dir.path(),
        b"id,first,last,dob,code\n1,Jos\xe9,Lopez,2001-01-01,A\n",
        &with_1252,
    );
    assert!(o.status.success());
    let rejects = std::fs::read_to_string(out.with_extension("rejects.csv")).unwrap();
    assert_eq!(rejects.lines().count(), 1, "{rejects}");
}

#[test]
fn bad_configuration_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let (o, _) = run(dir.path(), b"id\n1\n", "agency = \"x\"\nbogus = 1\n");
    let err = assert_clean_failure(&o, 3);
    assert!(err.contains("m.toml"), "{err}");
    let bad_date = MAPPING.replace("YYYY-MM-DD", "YYYY-QQ-DD");
    let (o, _) = run(dir.path(), b"id\n1\n", &bad_date);
    assert_clean_failure(&o, 3);
    // A mapping saved in Windows-1252: a configuration error with its position (was exit 1,
    // no position).
    let latin1 = MAPPING.replace(
        "A = \"identification\"",
        "\"Identificaci\u{f3}n\" = \"identification\"",
    );
    let mut bytes = latin1.into_bytes();
    let at = bytes.iter().position(|&b| b == 0xc3).unwrap();
    bytes.splice(at..at + 2, [0xf3]);
    std::fs::write(dir.path().join("m.toml"), &bytes).unwrap();
    let o = encode(
        &dir.path().join("m.toml"),
        &key_file(dir.path()),
        &dir.path().join("in.csv"),
        &dir.path().join("out.parquet"),
        &[],
    );
    let err = assert_clean_failure(&o, 3);
    assert!(
        err.contains(&format!("not valid UTF-8 at byte {at} (line 11)")),
        "{err}"
    );
}

#[test]
fn bad_key_files_are_exit_3_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("encoder/dcf.csv");
    let src = fixture("encoder/dcf.toml");
    let out = dir.path().join("o.parquet");
    let try_key = |key: &Path| encode(&src, key, &input, &out, &[]);
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;
    let short = dir.path().join("short.key");
    std::fs::write(&short, "deadbeef\n").unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = try_key(&short);
    let err = assert_clean_failure(&o, 3);
    assert!(err.contains("found 8 characters"), "{err}");
    assert!(!err.contains("deadbeef"), "{err}");
    #[cfg(unix)]
    {
        let open = dir.path().join("open.key");
        std::fs::copy(fixture("encoder/test.key"), &open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = try_key(&open);
        let err = assert_clean_failure(&o, 3);
        assert!(err.contains("chmod 600"), "{err}");
    }
    let o = try_key(&dir.path().join("absent.key"));
    assert_clean_failure(&o, 1);
    // A directory (mode 0755) is "not a regular file", not "permissions too open".
    let o = try_key(dir.path());
    let err = assert_clean_failure(&o, 3);
    assert!(
        err.contains("not a regular file") && !err.contains("permissions"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn a_directory_given_as_encodings_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = crosswalk(&[
        "link",
        "--out",
        dir.path().join("run").to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    let err = assert_clean_failure(&o, 1);
    assert!(err.contains("is a directory"), "{err}");
}

#[test]
fn an_unbalanced_quote_stops_the_run_at_the_row_where_it_opened() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,first,last,dob,code\n");
    for i in 1..=700 {
        let q = if i == 10 { "\"" } else { "" };
        csv.push_str(&format!("{i},{q}Ana,Lopez,2001-01-01,A\n"));
    }
    let (o, out) = run(dir.path(), csv.as_bytes(), MAPPING);
    let err = assert_clean_failure(&o, 4);
    assert!(
        err.contains("row 10 (line 11)") && err.contains("never closed"),
        "{err}"
    );
    assert!(!err.contains("Ana") && !err.contains("Lopez"), "{err}");
    assert!(!out.exists(), "an export missing 690 rows was encoded");
}

#[test]
fn crlf_and_piped_exports_report_the_right_lines() {
    let dir = tempfile::tempdir().unwrap();
    let csv = b"id,first,last,dob,code\r\n1,Ana,Lopez,2001-02-30,A\r\n2,Bo,Li,2001-01-01,A\r\n\r\n3,Cy,Wu,2001-13-01,A\r\n";
    let (o, out) = run(dir.path(), csv, MAPPING);
    assert!(o.status.success(), "{}", stderr(&o));
    let rejects = std::fs::read_to_string(out.with_extension("rejects.csv")).unwrap();
    assert!(rejects.contains("\n1,2,dob,dob,field dropped"), "{rejects}");
    assert!(rejects.contains("\n3,5,dob,dob,field dropped"), "{rejects}");
    // The same export through a pipe (a file with no length) is read, not called empty.
    let key = key_file(dir.path());
    let piped = dir.path().join("piped.parquet");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_crosswalk"))
        .args(["encode", "--source"])
        .arg(dir.path().join("m.toml"))
        .arg("--key-file")
        .arg(&key)
        .args(["--input", "/dev/stdin", "--out"])
        .arg(&piped)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(csv).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(crosswalk::io::encodings::read(&piped).unwrap().len(), 3);
}

/// Every cell value of `csv` (three characters or more, not a plain number: the row ids count
/// rows too) that occurs in `text`.
fn leaked<'a>(csv: &'a str, text: &str) -> Vec<&'a str> {
    let mut cells: Vec<&str> = csv
        .lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .filter(|c| c.len() >= 3 && !c.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    cells.sort_unstable();
    cells.dedup();
    cells.into_iter().filter(|c| text.contains(c)).collect()
}

/// A code column pointed at the birth-date column by mistake: no date is quoted, with the
/// default policy (an error) or with `unknown_codes = "reject"` (a successful run).
#[test]
fn unknown_code_messages_never_quote_what_could_be_an_identifier() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,first,last,dob,code\n");
    for i in 1..=254 {
        csv.push_str(&format!(
            "{i},Ana,Lopez,{}-{:02}-{:02},A\n",
            1990 + i % 20,
            i % 12 + 1,
            i % 28 + 1
        ));
    }
    for i in 255..=261 {
        csv.push_str(&format!("{i},Bo,Garcia,2001-01-01,A\n"));
    }
    let wrong = MAPPING.replace("event_code = \"code\"", "event_code = \"dob\"");
    let (o, out) = run(dir.path(), csv.as_bytes(), &wrong);
    let err = assert_clean_failure(&o, 4);
    assert!(
        err.contains("a value shaped 9999-99-99 (261 rows: row 1, 2, 3, 4, 5 and 256 more)"),
        "{err}"
    );
    assert!(
        leaked(&csv, &err).is_empty(),
        "{:?} in {err}",
        leaked(&csv, &err)
    );
    assert!(err.len() < 1000, "{} bytes", err.len());
    assert!(!out.exists());
    // A surname column as the code: not quoted either, however often it repeats.
    let wrong = MAPPING.replace("event_code = \"code\"", "event_code = \"last\"");
    let rejecting = wrong.replace("[columns]", "unknown_codes = \"reject\"\n[columns]");
    let csv = format!("{csv}262,Cy,A,2001-01-01,A\n"); // one row whose "code" is known
    let (o, out) = run(
        dir.path(),
        csv.as_bytes(),
        &rejecting.replace("family_name = \"last\"\n", ""),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let all = [
        stderr(&o),
        std::fs::read_to_string(out.with_extension("rejects.csv")).unwrap(),
    ]
    .concat();
    assert!(leaked(&csv, &all).is_empty(), "{:?}", leaked(&csv, &all));
    assert!(all.contains("a value shaped AAAAA (254 rows"), "{all}");
    // Real codes are quoted: common ones, and vocabulary words however rare.
    let csv2 =
        "id,first,last,dob,code\n1,Ana,Lopez,2001-01-01,A\n2,Bo,Li,2001-01-01,Shelter Placement\n";
    let (o, _) = run(dir.path(), csv2.as_bytes(), MAPPING);
    let err = assert_clean_failure(&o, 4);
    assert!(
        err.contains("event_code SHELTER PLACEMENT (1 rows)"),
        "{err}"
    );
}

/// An export without a header row: its first row is a person, and no "did you mean" may quote
/// it.
#[test]
fn a_headerless_export_gets_no_suggestion_from_its_first_row() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "1,Bob,Dobbs,2001-01-01,A\n2,Ana,Lopez,2002-02-02,A\n";
    let mapping = MAPPING.replace("\"dob\"", "\"DOB\"");
    let (o, _) = run(dir.path(), csv.as_bytes(), &mapping);
    let err = assert_clean_failure(&o, 4);
    assert!(!err.contains("did you mean"), "{err}");
    for v in ["Bob", "Dobbs", "2001"] {
        assert!(!err.contains(v), "{v} in {err}");
    }
    assert!(err.contains("does not look like a header"), "{err}");
}

/// Names in Greek or Cyrillic are transliterated (and link with their Latin spelling); names in
/// another script, or of punctuation only, are dropped with a rejects line (they used to vanish
/// without one).
#[test]
fn non_latin_and_punctuation_names_are_transliterated_or_reported() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,first,last,dob,code\n\
               1,Иван,Петров,2001-01-01,A\n\
               2,Ivan,Petrov,2001-01-01,A\n\
               3,王,Lopez,2001-01-01,A\n\
               4,Ana,---,2001-01-01,A\n";
    let (o, out) = run(dir.path(), csv.as_bytes(), MAPPING);
    assert!(o.status.success(), "{}", stderr(&o));
    let enc = crosswalk::io::encodings::read(&out).unwrap();
    assert_eq!(enc.len(), 4);
    assert_eq!(
        enc.clk(0),
        enc.clk(1),
        "Иван Петров and Ivan Petrov encode alike"
    );
    let rejects = std::fs::read_to_string(out.with_extension("rejects.csv")).unwrap();
    assert!(
        rejects.contains(
            "3,4,given_name,first,field dropped,\"name in a script crosswalk does not transliterate"
        ),
        "{rejects}"
    );
    assert!(
        rejects.contains("4,5,family_name,last,field dropped,name has no letters"),
        "{rejects}"
    );
    assert!(
        !rejects.contains('王') && !rejects.contains("---"),
        "{rejects}"
    );
}
