//! Each agency's export in its own house style, its source mapping, and the truth files.

use std::collections::HashMap;
use std::path::Path;

use chrono::{Datelike, NaiveDate};

use super::corrupt::{observe, Observed, Rates};
use super::world::{Agency, Event, World};
use super::{write_csv, Rand, Realism, SynthSummary};
use crate::error::Result;
use crate::vocab::TraffickingType;

/// The synthetic agencies: (file stem, agency name as in its mapping).
pub const AGENCIES: [(&str, &str); 9] = [
    ("dcf", "dcf"),
    ("police", "police"),
    ("cac", "cac"),
    ("rhtrt", "rhtrt"),
    ("housing", "housing-a"),
    ("housing_b", "housing-b"),
    ("mental_health", "mh-provider"),
    ("legal", "legal-aid"),
    ("case_mgmt", "case-mgmt"),
];

const MAPPINGS: [&str; 9] = [
    include_str!("../../fixtures/encoder/dcf.toml"),
    include_str!("../../fixtures/encoder/police.toml"),
    include_str!("../../fixtures/encoder/cac.toml"),
    include_str!("../../fixtures/encoder/rhtrt.toml"),
    include_str!("../../fixtures/encoder/housing.toml"),
    include_str!("../../fixtures/synth/housing_b.toml"),
    include_str!("../../fixtures/encoder/mental_health.toml"),
    include_str!("../../fixtures/synth/legal.toml"),
    include_str!("../../fixtures/synth/case_mgmt.toml"),
];

fn index(a: Agency) -> usize {
    match a {
        Agency::Dcf => 0,
        Agency::Police => 1,
        Agency::Cac => 2,
        Agency::Rhtrt => 3,
        Agency::HousingA => 4,
        Agency::HousingB => 5,
        Agency::MentalHealth => 6,
        Agency::Legal => 7,
        Agency::CaseMgmt => 8,
    }
}

/// A hard world's recording error rates of agency `i`: more typos and nicknames everywhere,
/// aliases recorded as the name twice as often; police lose more birth dates; the taskforce's
/// referral log is typed by hand (docs/synth.md).
fn hard_rates(i: usize) -> Rates {
    let mut r = RATES[i];
    r.typo = (r.typo * 1.5).min(0.5);
    r.nickname = (r.nickname * 1.5).min(0.5);
    r.alias_as_name = (r.alias_as_name * 2.0).min(0.6);
    match i {
        1 => r.dob_missing = 0.15,
        3 => {
            r.typo = 0.15;
            r.nickname = 0.15;
            r.swap = 0.05;
            r.dob_missing = 0.10;
        }
        _ => {}
    }
    r
}

/// Share of a hard world's referral-log rows that record an age instead of the birth date.
const AGE_INSTEAD_OF_DOB: f64 = 0.7;

/// Recording error rates per agency, in [`AGENCIES`] order (docs/synth.md).
const RATES: [Rates; 9] = [
    rates(0.04, 0.03, 0.01, 0.2, 0.01, 0.02, 0.2, 0.02),
    rates(0.10, 0.10, 0.04, 1.0, 0.08, 0.05, 0.3, 0.15),
    rates(0.03, 0.05, 0.01, 0.0, 0.00, 0.02, 1.0, 0.02),
    rates(0.06, 0.08, 0.02, 1.0, 0.05, 0.03, 0.3, 0.05),
    rates(0.06, 0.10, 0.02, 0.5, 0.03, 0.03, 1.0, 0.08),
    rates(0.06, 0.08, 0.02, 0.4, 0.04, 0.03, 0.3, 0.06),
    rates(0.05, 0.08, 0.02, 0.3, 0.02, 0.03, 0.25, 0.05),
    rates(0.04, 0.04, 0.02, 0.1, 0.01, 0.02, 0.3, 0.03),
    rates(0.07, 0.10, 0.03, 0.0, 0.03, 0.04, 0.3, 0.08),
];

#[allow(clippy::too_many_arguments)]
const fn rates(
    typo: f64,
    nickname: f64,
    swap: f64,
    ascii: f64,
    dob_missing: f64,
    dob_error: f64,
    phone_missing: f64,
    alias_as_name: f64,
) -> Rates {
    Rates {
        typo,
        nickname,
        swap,
        ascii,
        dob_missing,
        dob_error,
        phone_missing,
        alias_as_name,
    }
}

const MON: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn ymd(d: NaiveDate) -> (i32, u32, u32) {
    (d.year(), d.month(), d.day())
}
fn iso(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}
fn mdy(d: Option<NaiveDate>) -> String {
    d.map(|d| {
        let (y, m, dd) = ymd(d);
        format!("{m:02}/{dd:02}/{y}")
    })
    .unwrap_or_default()
}
fn mdy_short(d: Option<NaiveDate>) -> String {
    d.map(|d| {
        let (y, m, dd) = ymd(d);
        format!("{m}/{dd}/{y}")
    })
    .unwrap_or_default()
}
fn compact(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%Y%m%d").to_string())
        .unwrap_or_default()
}
fn dmony(d: Option<NaiveDate>) -> String {
    d.map(|d| {
        let (y, m, dd) = ymd(d);
        format!("{dd:02}-{}-{y}", MON[m as usize - 1])
    })
    .unwrap_or_default()
}
fn phone_fmt(p: &str, style: u8) -> String {
    if p.len() != 10 {
        return p.to_string();
    }
    match style {
        0 => format!("({}) {}-{}", &p[..3], &p[3..6], &p[6..]),
        1 => format!("{}.{}.{}", &p[..3], &p[3..6], &p[6..]),
        2 => format!("1-{}-{}-{}", &p[..3], &p[3..6], &p[6..]),
        3 => format!("{}-{}", &p[3..6], &p[6..]),
        _ => p.to_string(),
    }
}
fn joined(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}
fn tt_code(t: TraffickingType, style: u8) -> &'static str {
    match (t, style) {
        (TraffickingType::Sex, 0) => "CSEC",
        (TraffickingType::Sex, _) => "Sex",
        (TraffickingType::Labor, 0) => "LABOR",
        (TraffickingType::Labor, _) => "Labor",
        (TraffickingType::Both, 0) => "SEX AND LABOR",
        (TraffickingType::Both, _) => "Both",
        (TraffickingType::Unknown, _) => "",
    }
}

/// Source mapping of export `i`; a hard world's referral log has an age column.
fn mapping_text(i: usize, hard: bool) -> String {
    let text = MAPPINGS[i].to_string();
    if hard && i == 3 {
        text.replace(
            "dob = { column = \"DOB\", formats = [\"YYYYMMDD\"] }\n",
            "dob = { column = \"DOB\", formats = [\"YYYYMMDD\"] }\nage = \"Age\"\n",
        )
    } else {
        text
    }
}

/// Header of each export, in [`AGENCIES`] order; a hard world's referral log has an age
/// column after the birth date.
fn header(i: usize, hard: bool) -> &'static [&'static str] {
    if hard && i == 3 {
        return &[
            "Ref ID",
            "Last",
            "First",
            "DOB",
            "Age",
            "Phone",
            "Referral Date",
            "Referred By",
        ];
    }
    match i {
        0 => &[
            "Case ID",
            "First Name",
            "Middle Name",
            "Last Name",
            "DOB",
            "Gender",
            "Phone",
            "Address",
            "City",
            "Zip",
            "Event Type",
            "Event Date",
            "HT Type",
            "Region",
        ],
        1 => &[
            "Incident No",
            "Victim Name",
            "AKA",
            "Victim DOB",
            "Sex",
            "Contact Phone",
            "Department",
            "Offense Code",
            "Reported At",
            "Trafficking Type",
        ],
        2 => &[
            "Case #",
            "Child",
            "Date of Birth",
            "Gender",
            "Service",
            "Service Date",
        ],
        3 => &[
            "Ref ID",
            "Last",
            "First",
            "DOB",
            "Phone",
            "Referral Date",
            "Referred By",
        ],
        4 => &[
            "Client ID",
            "First",
            "Last",
            "Birth Date",
            "SSN",
            "Street",
            "Town",
            "ZIP",
            "Program",
            "Start",
            "End",
        ],
        5 => &[
            "HMIS ID",
            "Client Name",
            "DOB",
            "Sex",
            "Phone",
            "Address",
            "Town",
            "Zip",
            "Program Type",
            "Entry Date",
            "Exit Date",
        ],
        6 => &[
            "Client #",
            "Client Name",
            "DOB",
            "Sex",
            "Phone",
            "Service Code",
            "Start Date",
            "End Date",
            "Site",
        ],
        7 => &[
            "Matter ID",
            "Client",
            "DOB",
            "Phone",
            "Matter Type",
            "Opened",
            "Closed",
            "Trafficking",
        ],
        _ => &[
            "ClientNo",
            "FirstName",
            "MI",
            "LastName",
            "BirthDate",
            "Gender",
            "Cell",
            "Addr1",
            "City",
            "Zip",
            "SSN4",
            "Activity",
            "ActivityDate",
            "EndDate",
        ],
    }
}

/// How row `o` of agency `i` carries the person's alias, for `truth/events.csv`: `name` (the
/// name fields hold it), `aka` (the export has an AKA column, and it holds the alias) or empty.
fn alias_use(i: usize, o: &Observed) -> &'static str {
    if o.alias_as_name {
        "name"
    } else if header(i, false).contains(&"AKA") && !o.aka.is_empty() {
        "aka"
    } else {
        ""
    }
}

/// One row of export `i`.
fn row(
    i: usize,
    id: &str,
    o: &Observed,
    e: &Event,
    tt: TraffickingType,
    rng: &mut Rand,
    hard: bool,
) -> Vec<String> {
    let s = |x: &str| x.to_string();
    let sex_fm = s(if o.female { "F" } else { "M" });
    let zip = |rng: &mut Rand| -> String {
        match rng.below(10) {
            0 => format!("{}-{:04}", o.zip, rng.range(1, 9999)),
            1 => o.zip.trim_start_matches('0').to_string(), // a spreadsheet ate the zero
            _ => o.zip.clone(),
        }
    };
    match i {
        0 => vec![
            s(id),
            o.given.clone(),
            o.middle.clone(),
            o.family.clone(),
            mdy(o.dob),
            sex_fm,
            phone_fmt(&o.phone, 0),
            o.street.clone(),
            o.town.clone(),
            zip(rng),
            s(e.code),
            iso(Some(e.start)),
            s(tt_code(tt, 0)),
            s("Hartford Region"),
        ],
        1 => {
            let dept = if rng.chance(0.2) {
                s("CT State Police Troop H")
            } else {
                format!("{} PD", o.town)
            };
            let name = format!("{}, {}", o.family, joined(&[&o.given, &o.middle]));
            vec![
                s(id),
                name,
                o.aka.clone(),
                mdy_short(o.dob),
                s(if o.female { "2" } else { "1" }),
                phone_fmt(&o.phone, 1),
                dept,
                s(e.code),
                format!(
                    "{} {:02}:{:02}",
                    iso(Some(e.start)),
                    rng.below(24),
                    rng.below(60)
                ),
                s(tt_code(tt, 1)),
            ]
        }
        2 => vec![
            s(id),
            joined(&[&o.given, &o.middle, &o.family]),
            dmony(o.dob),
            s(if o.female { "Female" } else { "Male" }),
            s(e.code),
            dmony(Some(e.start)),
        ],
        3 => {
            let ph = if o.phone.is_empty() {
                String::new()
            } else if rng.chance(0.5) {
                format!("+1 {}", o.phone)
            } else {
                phone_fmt(&o.phone, 3)
            };
            let mut cells = vec![
                s(id),
                o.family.clone(),
                o.given.clone(),
                compact(o.dob),
                ph,
                compact(Some(e.start)),
                s(rng.pick::<&str>(&["DCF", "HPD", "CSP", "Provider"])),
            ];
            if hard {
                cells.insert(4, o.age.map(|a| a.to_string()).unwrap_or_default());
            }
            cells
        }
        4 => vec![
            s(id),
            o.given.clone(),
            o.family.clone(),
            iso(o.dob),
            if o.ssn4.is_empty() {
                String::new()
            } else {
                format!("XXX-XX-{}", o.ssn4)
            },
            o.street.clone(),
            o.town.clone(),
            zip(rng),
            s(e.code),
            iso(Some(e.start)),
            iso(e.end),
        ],
        5 => vec![
            s(id),
            joined(&[&o.given, &o.middle, &o.family]),
            mdy(o.dob),
            s(if o.female { "Female" } else { "Male" }),
            phone_fmt(&o.phone, 4),
            o.street.clone(),
            o.town.clone(),
            zip(rng),
            s(e.code),
            iso(Some(e.start)),
            iso(e.end),
        ],
        6 => vec![
            s(id),
            joined(&[&o.given, &o.family]),
            mdy_short(o.dob),
            sex_fm,
            phone_fmt(&o.phone, 2),
            s(e.code),
            mdy(Some(e.start)),
            mdy(e.end),
            o.town.clone(),
        ],
        7 => vec![
            s(id),
            format!("{}, {}", o.family, o.given),
            iso(o.dob),
            phone_fmt(&o.phone, 0),
            s(e.code),
            mdy(Some(e.start)),
            mdy(e.end),
            s(tt_code(tt, 1)),
        ],
        _ => vec![
            s(id),
            o.given.clone(),
            o.middle.chars().take(1).collect(),
            o.family.clone(),
            compact(o.dob),
            sex_fm,
            o.phone.clone(),
            o.street.clone(),
            o.town.clone(),
            zip(rng),
            o.ssn4.clone(),
            s(e.code),
            mdy_short(Some(e.start)),
            mdy_short(e.end),
        ],
    }
}

/// Agencies that give each incident its own id; the others keep one client id per person
/// (and now and then register a returning client twice).
fn incident_ids(i: usize) -> bool {
    i <= 3 || i == 7
}

const ID_PREFIX: [&str; 9] = ["DCF-", "INC-", "CAC-", "R-", "H-", "HMIS", "MH-", "M-", "C"];

/// Writes every export, mapping and truth file; returns counts.
pub(crate) fn write_all(
    world: &World,
    out: &Path,
    rng: &mut Rand,
    realism: Realism,
) -> Result<SynthSummary> {
    let hard = realism == Realism::Hard;
    let mut by_agency: Vec<Vec<&Event>> = vec![Vec::new(); AGENCIES.len()];
    for e in &world.events {
        by_agency[index(e.agency)].push(e);
    }
    let mut truth_records = vec![vec![
        "agency".to_string(),
        "local_id".into(),
        "person".into(),
    ]];
    let mut truth_events = vec![vec![
        "agency".to_string(),
        "local_id".into(),
        "row".into(),
        "person".into(),
        "code".into(),
        "event_date".into(),
        "end_date".into(),
        "alias".into(),
    ]];
    let mut summary = SynthSummary {
        persons: world.persons.len(),
        ..SynthSummary::default()
    };
    for (i, events) in by_agency.iter_mut().enumerate() {
        events.sort_by_key(|e| (e.start, e.person));
        let (stem, agency) = AGENCIES[i];
        let mut rows = vec![header(i, hard)
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()];
        let rates = if hard { hard_rates(i) } else { RATES[i] };
        // client id -> what was registered under it (providers reuse it)
        let mut clients: HashMap<u32, (String, Observed)> = HashMap::new();
        let mut next_id = 1u32;
        for e in events.iter() {
            let p = &world.persons[e.person as usize];
            let fresh = |rng: &mut Rand, next_id: &mut u32| {
                let id = format!(
                    "{}{:06}",
                    ID_PREFIX[i],
                    *next_id * 7 % 1_000_000 + 100_000 * (i as u32 % 3)
                );
                *next_id += 1;
                // Police and the taskforce hear only the alias of some (hard worlds); it goes
                // through the same recording errors as a name.
                let alias_only = hard && p.alias_only && (i == 1 || i == 3);
                let mut o = observe(p, e.start, &rates, rng, alias_only);
                if hard {
                    // Some persons give no birth date to anyone; the referral log often writes
                    // an age instead: an age even such a person states (from the true birth
                    // date, or the recorded one when there is one).
                    if p.dob_unknown {
                        o.dob = None;
                    }
                    if i == 3 && rng.chance(AGE_INSTEAD_OF_DOB) {
                        let born = o.dob.unwrap_or(p.dob);
                        o.age = Some(crate::source::years_between(born, e.start));
                        o.dob = None;
                    }
                }
                (id, o)
            };
            let (id, obs) = if incident_ids(i) {
                fresh(rng, &mut next_id)
            } else {
                match clients.get(&p.id) {
                    Some(known) if !rng.chance(0.08) => known.clone(),
                    _ => {
                        let f = fresh(rng, &mut next_id);
                        clients.insert(p.id, f.clone());
                        f
                    }
                }
            };
            rows.push(row(i, &id, &obs, e, p.trafficking, rng, hard));
            truth_events.push(vec![
                agency.to_string(),
                id.clone(),
                (rows.len() - 1).to_string(),
                p.id.to_string(),
                e.code.to_string(),
                iso(Some(e.start)),
                iso(e.end),
                alias_use(i, &obs).to_string(),
            ]);
            truth_records.push(vec![agency.to_string(), id, p.id.to_string()]);
        }
        let text = mapping_text(i, hard);
        let mapping = crate::source::SourceMapping::from_toml(&text, Path::new(stem))?;
        write_csv(
            &out.join("exports").join(format!("{stem}.csv")),
            mapping.delimiter_byte(),
            &rows,
            mapping.encoding == crate::source::TextEncoding::Windows1252,
            i == 0,
        )?;
        crate::io::write_atomic(
            &out.join("mappings").join(format!("{stem}.toml")),
            text.as_bytes(),
        )?;
        summary.records += rows.len() - 1;
        summary
            .per_agency
            .push((agency.to_string(), rows.len() - 1));
    }
    truth_records.sort();
    truth_records.dedup();
    let truth = out.join("truth");
    write_csv(
        &truth.join("records.csv"),
        b',',
        &truth_records,
        false,
        false,
    )?;
    write_csv(&truth.join("events.csv"), b',', &truth_events, false, false)?;
    let mut persons = vec![vec![
        "person".to_string(),
        "family".into(),
        "sex".into(),
        "minor_at_first_contact".into(),
        "trafficking_type".into(),
        "first_contact".into(),
    ]];
    for p in &world.persons {
        persons.push(vec![
            p.id.to_string(),
            p.family.to_string(),
            if p.female { "female" } else { "male" }.to_string(),
            p.minor.to_string(),
            p.trafficking.label().to_string(),
            iso(Some(p.first_contact)),
        ]);
    }
    write_csv(&truth.join("persons.csv"), b',', &persons, false, false)?;
    // Each person's own name and birth date (before any recording error): the target's truth for
    // `crosswalk audit`, and the public reference population of an audit of another world.
    let mut identities = vec![vec![
        "person".to_string(),
        "given_name".into(),
        "middle_name".into(),
        "family_name".into(),
        "birth_date".into(),
    ]];
    for p in &world.persons {
        identities.push(vec![
            p.id.to_string(),
            p.given.clone(),
            p.middle.clone().unwrap_or_default(),
            p.surname.clone(),
            iso(Some(p.dob)),
        ]);
    }
    write_csv(
        &truth.join("identities.csv"),
        b',',
        &identities,
        false,
        false,
    )?;
    Ok(summary)
}
