//! `crosswalk keygen`, `crosswalk kcv` and `crosswalk demo`.

use crate::util::*;

#[test]
fn keygen_writes_a_private_key_and_prints_only_its_kcv() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agency.key");
    let o = crosswalk(&["keygen", "--out", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8(o.stdout.clone()).unwrap();
    let kcv = stdout.trim();
    assert_eq!(kcv.len(), 8);
    assert!(kcv.chars().all(|c| c.is_ascii_hexdigit()));
    let secret = std::fs::read_to_string(&path).unwrap();
    let secret = secret.trim();
    assert_eq!(secret.len(), 64);
    // the secret (or any 8-character piece of it) appears in no output
    let all = format!("{stdout}{}", stderr(&o));
    for i in 0..=56 {
        assert!(!all.contains(&secret[i..i + 8]), "secret leaked");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // kcv of the file agrees; a second keygen never overwrites
    let o2 = crosswalk(&["kcv", "--key-file", path.to_str().unwrap()]);
    assert_eq!(String::from_utf8(o2.stdout).unwrap().trim(), kcv);
    let o3 = crosswalk(&["keygen", "--out", path.to_str().unwrap()]);
    assert_eq!(o3.status.code(), Some(1), "{}", stderr(&o3));
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), secret);
}

#[test]
fn two_keygens_differ() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let ka = crosswalk(&["keygen", "--out", a.to_str().unwrap()]).stdout;
    let kb = crosswalk(&["keygen", "--out", b.to_str().unwrap()]).stdout;
    assert_ne!(ka, kb);
}

/// The README's first command: the whole pipeline on a synthetic world.
#[test]
fn demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = crosswalk(&["demo", "--out", out.to_str().unwrap(), "--persons", "300"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("run/entities.parquet").exists());
    let err = stderr(&o);
    assert!(err.contains("300 persons really"), "{err}");
    // a second run reuses the key and succeeds
    let o = crosswalk(&["demo", "--out", out.to_str().unwrap(), "--persons", "300"]);
    assert!(o.status.success(), "{}", stderr(&o));
}
