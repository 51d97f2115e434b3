//! The docs say what the binary does: figures and lists that drift otherwise.

use crate::util::*;

fn doc(name: &str) -> String {
    std::fs::read_to_string(root().join("docs").join(name)).unwrap()
}

#[test]
fn the_default_schema_fingerprint_in_the_docs_is_the_binarys() {
    let fp = crosswalk::schema::LinkageSchema::default_schema().fingerprint();
    let formats = doc("formats.md");
    assert!(
        formats.contains(&format!(
            "fingerprint, as printed by crosswalk {}, is `{fp}`",
            env!("CARGO_PKG_VERSION")
        )),
        "formats.md §1.4 does not give the default fingerprint {fp}"
    );
    assert!(doc("cli.md").contains(&format!("schema {fp}")));
}

#[test]
fn cli_md_and_help_list_every_command_and_exit_code() {
    let help = String::from_utf8(crosswalk(&["--help"]).stdout).unwrap();
    for code in [
        "1 I/O failure",
        "2 usage error",
        "3 configuration",
        "4 bad input data",
        "5 registry in use",
    ] {
        assert!(help.contains(code), "--help lacks exit code {code:?}");
    }
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert_eq!(commands.len(), 11, "{help}");
    let cli = doc("cli.md");
    assert!(cli.contains("has eleven commands"));
    for c in commands {
        assert!(
            cli.contains(&format!("## `crosswalk {c}`")),
            "cli.md has no section for {c}"
        );
        assert!(
            cli.contains(&format!("\ncrosswalk {c} ")),
            "cli.md's synopsis lacks {c}"
        );
    }
}

/// The experiments' schemas in benches/schemas/ stay loadable (the measurements name them).
#[test]
fn the_experiment_schemas_load() {
    let dir = root().join("benches/schemas");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            crosswalk::schema::LinkageSchema::from_file(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 3, "{n}");
}
