//! The draft source mapping: every guess of [`super::guess`] as a TOML line with its evidence
//! in a comment, and each code column's codes listed (quoted only where [`crate::redact`]
//! allows) for the integrator to give a meaning.

use std::fmt::Write;

use crate::normalize::NameLayout;
use crate::source::UnknownCodeLine;

use super::guess::Role;
use super::Inspection;

/// A TOML basic string.
pub(crate) fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn layout_name(l: NameLayout) -> &'static str {
    match l {
        NameLayout::FirstLast => "first_last",
        NameLayout::LastCommaFirst => "last_comma_first",
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One commented line per code: `# "FI" = ""   # 1,204 rows`, or for a code that may not be
/// quoted, its shape and the rows to look it up in.
fn code_lines(
    out: &mut String,
    lines: &[UnknownCodeLine],
    builtin: &dyn Fn(&str) -> Option<String>,
) {
    for l in lines {
        let rows = thousands(l.rows);
        if l.first_rows.is_empty() {
            let entry = format!("# {} = \"\"", quoted(&l.label));
            let note =
                builtin(&l.label).map_or(String::new(), |r| format!("; built-in reading: {r}"));
            let _ = writeln!(out, "{entry:<40}# {rows} rows{note}");
        } else {
            let first: Vec<String> = l.first_rows.iter().map(u64::to_string).collect();
            let _ = writeln!(
                out,
                "# {}: {rows} rows (first: row {}); not quoted, as it could be an identifier: \
                 look it up in the export",
                l.label,
                first.join(", ")
            );
        }
    }
}

/// Writes the draft mapping.
pub(crate) fn draft(ins: &Inspection) -> String {
    let mut out = String::new();
    let g = &ins.guesses;
    let cols = &ins.profile.columns;
    let _ = writeln!(
        out,
        "# Draft source mapping written by `crosswalk inspect` for {} ({} rows, {} columns).",
        ins.file_name,
        thousands(ins.profile.rows),
        cols.len()
    );
    out.push_str(
        "# Every line is a guess with its evidence. Check each, give every listed code a meaning,\n\
         # then try it: crosswalk encode --check --source THIS.toml --input EXPORT\n\n",
    );
    let _ = writeln!(
        out,
        "{:<40}# {}",
        format!("agency = {}", quoted(&ins.agency)),
        if ins.agency_given {
            "as given"
        } else {
            "from the file name: the agency's name in every output"
        }
    );
    let _ = writeln!(
        out,
        "{:<40}# {}",
        format!("agency_type = {}", quoted(ins.agency_type.label())),
        if ins.agency_type_given {
            "as given"
        } else {
            "a guess: law_enforcement, child_welfare, child_advocacy, taskforce, service_provider or other"
        }
    );
    if !ins.sniff.parquet {
        let enc = match ins.sniff.encoding {
            crate::source::TextEncoding::Utf8 => (
                "utf-8",
                if ins.sniff.bom {
                    "valid UTF-8, with a byte-order mark".to_string()
                } else {
                    "every byte sequence is valid UTF-8".to_string()
                },
            ),
            crate::source::TextEncoding::Windows1252 => (
                "windows-1252",
                format!(
                    "not UTF-8 (first invalid byte at offset {}): older Windows software's \"ANSI\"",
                    ins.sniff.first_invalid_utf8.unwrap_or(0)
                ),
            ),
        };
        let _ = writeln!(
            out,
            "{:<40}# {}",
            format!("encoding = \"{}\"", enc.0),
            enc.1
        );
        let _ = writeln!(
            out,
            "{:<40}# {:.1}% of the sampled rows have the header's {} columns",
            format!("delimiter = {}", quoted(&ins.sniff.delimiter_name())),
            100.0 * ins.sniff.delimiter_fit,
            cols.len()
        );
    }
    let names = [
        "given_name",
        "middle_name",
        "family_name",
        "full_name",
        "alias",
    ];
    let mojibake: u64 = g
        .mapped
        .iter()
        .filter(|x| names.contains(&x.role.key()))
        .map(|x| cols[x.column].mojibake)
        .sum();
    if mojibake > 0 {
        let _ = writeln!(
            out,
            "{:<40}# {mojibake} cells of the name columns look like UTF-8 read as Windows-1252 and \
             saved again upstream (JosÃ© for José)",
            "repair_mojibake = true"
        );
    }
    let has_code_column = g.get("event_code").is_some() || g.get("service_code").is_some();
    if !has_code_column {
        out.push_str(
            "# default_stage = \"\"                   # no event or service code column: the stage of \
             every row (e.g. \"referral\" for a referral log)\n",
        );
    }
    out.push_str("\n[columns]\n");
    let header = |i: usize| quoted(&cols[i].header);
    let ids = g.record_id();
    if !ids.is_empty() {
        let value = if ids.len() == 1 {
            header(ids[0])
        } else {
            format!(
                "[{}]",
                ids.iter()
                    .map(|&i| header(i))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let why: Vec<&str> = g
            .mapped
            .iter()
            .filter(|x| x.role == Role::RecordId)
            .map(|x| x.why.as_str())
            .collect();
        let _ = writeln!(out, "# {}\nrecord_id = {value}", why.join("; "));
    }
    for x in g.mapped.iter().filter(|x| x.role != Role::RecordId) {
        let h = header(x.column);
        let line = match x.role {
            Role::FullName(l) => {
                format!(
                    "full_name = {{ column = {h}, layout = \"{}\" }}",
                    layout_name(l)
                )
            }
            Role::Alias(l, sep) => format!(
                "alias = {{ column = {h}, layout = \"{}\", separator = {} }}",
                layout_name(l),
                quoted(&sep.to_string())
            ),
            r if r.is_date() => format!(
                "{} = {{ column = {h}, formats = [{}] }}",
                r.key(),
                x.formats
                    .iter()
                    .map(|f| quoted(f))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            r => format!("{} = {h}", r.key()),
        };
        let _ = writeln!(out, "# {}\n{line}", x.why);
    }
    for (i, why) in &g.unmapped {
        let _ = writeln!(out, "# not mapped: {} ({why})", header(*i));
    }
    for note in &g.notes {
        let _ = writeln!(out, "# NOTE: {note}");
    }
    let table = |out: &mut String,
                 role_key: &str,
                 table: &str,
                 help: &str,
                 builtin: &dyn Fn(&str) -> Option<String>| {
        if let Some(x) = g.get(role_key) {
            let _ = writeln!(out, "\n[{table}]");
            let _ = writeln!(
                out,
                "# The codes of {} with their rows. {help}",
                header(x.column)
            );
            if let Some(lines) = cols[x.column].code_lines("code", &|v| builtin(v).is_some()) {
                code_lines(out, &lines, builtin);
            }
        }
    };
    let none = |_: &str| None;
    table(
        &mut out,
        "event_code",
        "event_codes",
        "Give each a stage (identification, screening,\n# referral, service_immediate, service_transitional, service_long_term, administrative), or\n# { stage = \"...\", service = \"...\" } for a service event. A code left out stops the encode.",
        &none,
    );
    table(
        &mut out,
        "service_code",
        "service_codes",
        "Give each a service (housing, mental_health,\n# legal, case_management, medical, basic_needs, other), or { service = \"...\", stage = \"...\" }.\n# A code left out stops the encode. If the column holds a code on rows that are not services\n# too, list the event codes of the service rows in service_code_applies_to.",
        &none,
    );
    let sex_builtin = |label: &str| {
        crate::normalize::Sex::from_common_code(&crate::normalize::fold(label))
            .map(|s| s.label().to_string())
    };
    table(
        &mut out,
        "sex",
        "sex_codes",
        "Codes with a built-in reading may stay out;\n# list one to read it otherwise (e.g. \"X\" = \"unknown\" where X means not recorded). Give\n# the others female, male, other or unknown.",
        &sex_builtin,
    );
    let tt_builtin = |label: &str| {
        crate::vocab::TraffickingType::from_common_code(&crate::normalize::fold(label))
            .map(|t| t.label().to_string())
    };
    table(
        &mut out,
        "trafficking_type",
        "trafficking_codes",
        "Codes with a built-in reading may stay\n# out; give the others sex, labor, both or unknown.",
        &tt_builtin,
    );
    out
}
