//! Privacy: no raw identifier from the fixtures appears in anything crosswalk writes or prints
//! (encodings, rejects report, the link run, the aggregates and the report, stdout, stderr). The local map is the one exception by design:
//! it holds the agency's own ids and never leaves the agency.

use crate::util::*;

/// Raw identifiers of the fixture persons in the spellings the exports use.
fn needles() -> Vec<String> {
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = std::fs::read_to_string(fixture("encoder/persons.csv")).unwrap();
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        // names: every word of given, middle, family; raw and folded
        for part in &f[1..=3] {
            for w in part.split([' ', '-']) {
                if w.chars().count() >= 3 {
                    out.push(w.to_string());
                    out.push(crosswalk::normalize::fold(w));
                }
            }
        }
        let (y, m, d): (u32, u32, u32) = (
            f[4][..4].parse().unwrap(),
            f[4][5..7].parse().unwrap(),
            f[4][8..].parse().unwrap(),
        );
        out.push(f[4].to_string());
        out.push(format!("{m:02}/{d:02}/{y}"));
        out.push(format!("{m}/{d}/{y}"));
        out.push(format!("{y}{m:02}{d:02}"));
        out.push(format!("{d:02}-{}-{y}", MON[m as usize - 1]));
        let phone = f[6];
        out.push(phone.to_string());
        out.push(format!("{}-{}", &phone[3..6], &phone[6..]));
        out.push(phone[3..].to_string());
        out.push(f[7].to_string()); // street
    }
    out.sort();
    out.dedup();
    out
}

fn contains_ci(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    if n.len() < 3 {
        return false;
    }
    if n.len() == 3 {
        // Three letters occur by chance in binary data (base64 metadata, packed integers):
        // match them exactly and as a whole word only.
        let word = |b: Option<&u8>| b.is_none_or(|b| !b.is_ascii_alphanumeric());
        return hay
            .windows(3)
            .enumerate()
            .any(|(i, w)| w == n && word(hay.get(i.wrapping_sub(1))) && word(hay.get(i + 3)));
    }
    hay.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Fails if any blob holds any needle; returns the bytes scanned.
fn scan(blobs: &[(String, Vec<u8>)], needles: &[String]) -> usize {
    for (what, bytes) in blobs {
        for n in needles {
            assert!(
                !contains_ci(bytes, n),
                "{what} contains a raw identifier ({} chars)",
                n.len()
            );
        }
    }
    blobs.iter().map(|b| b.1.len()).sum()
}

#[test]
fn no_raw_identifier_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let needles = needles();
    assert!(needles.len() > 100);
    let mut scanned = 0;
    let mut encoded = Vec::new();
    for (stem, _, _) in FIXTURES {
        let map = dir.path().join(format!("{stem}.map.parquet"));
        let (o, out) = encode_fixture(dir.path(), stem, &["--map-out", map.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        encoded.push(out.clone());
        let mut blobs: Vec<(String, Vec<u8>)> = vec![
            (format!("{stem} stdout"), o.stdout.clone()),
            (format!("{stem} stderr"), o.stderr.clone()),
            (format!("{stem} encodings"), std::fs::read(&out).unwrap()),
            (
                format!("{stem} rejects"),
                std::fs::read(out.with_extension("rejects.csv")).unwrap(),
            ),
        ];
        // A run whose rows all fail: the rejects report and the error must not echo values.
        let broken = dir.path().join(format!("{stem}-broken.csv"));
        let original = std::fs::read(fixture(&format!("encoder/{stem}.csv"))).unwrap();
        // Truncate every data row to make it ragged (keeps the header).
        let mut cut = Vec::new();
        for (i, line) in original.split(|&b| b == b'\n').enumerate() {
            if i == 0 {
                cut.extend_from_slice(line);
            } else if !line.is_empty() {
                cut.extend_from_slice(&line[..line.len() * 2 / 3]);
            }
            cut.push(b'\n');
        }
        std::fs::write(&broken, cut).unwrap();
        let key = key_file(dir.path());
        let src = fixture(&format!("encoder/{stem}.toml"));
        let bad_out = dir.path().join(format!("{stem}-broken.parquet"));
        let o = encode(&src, &key, &broken, &bad_out, &[]);
        assert!(!o.status.success());
        blobs.push((format!("{stem} broken stderr"), o.stderr.clone()));
        blobs.push((
            format!("{stem} broken rejects"),
            std::fs::read(bad_out.with_extension("rejects.csv")).unwrap(),
        ));
        scanned += scan(&blobs, &needles);
    }
    // The taskforce's side: link, report, and every file of the run directory.
    let run = dir.path().join("run");
    let mut args = vec!["link", "--out", run.to_str().unwrap()];
    args.extend(encoded.iter().map(|p| p.to_str().unwrap()));
    let linked = crosswalk(&args);
    assert!(linked.status.success(), "{}", stderr(&linked));
    let reported = crosswalk(&["report", run.to_str().unwrap(), "--internal-unsuppressed"]);
    assert!(reported.status.success(), "{}", stderr(&reported));
    let mut blobs = vec![
        (
            "link output".to_string(),
            [linked.stdout, linked.stderr].concat(),
        ),
        (
            "report output".to_string(),
            [reported.stdout, reported.stderr].concat(),
        ),
    ];
    let mut dirs = vec![run.clone()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                blobs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    // outputs of two commands; entities, events, diagnostics, run.json, 11 + 11 tables,
    // report.html
    assert_eq!(blobs.len(), 2 + 4 + 11 + 11 + 1, "{} files", blobs.len());
    scanned += scan(&blobs, &needles);
    assert!(scanned > 10_000, "scanned only {scanned} bytes");
}

/// The scan itself works: it finds identifiers where they are (the local map holds ids, and
/// the raw export holds names).
#[test]
fn the_scan_can_fail() {
    let needles = needles();
    let export = std::fs::read(fixture("encoder/dcf.csv")).unwrap();
    assert!(needles.iter().any(|n| contains_ci(&export, n)));
}
