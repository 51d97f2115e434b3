//! Which mapping field each column holds, guessed from its header words and confirmed (or
//! found) from its values: date patterns, name shapes, digit counts, code counts.
//!
//! Every guess carries the evidence it rests on, written as a comment into the draft mapping;
//! none quotes a value.

use crate::normalize::{self, NameLayout, Sex};
use crate::vocab::{AgencyType, TraffickingType};

use super::profile::{ColumnProfile, Profile};

/// A source-mapping field a column can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `record_id` (or one part of a composite id).
    RecordId,
    /// `given_name`.
    GivenName,
    /// `middle_name`.
    MiddleName,
    /// `family_name`.
    FamilyName,
    /// `full_name` with its layout.
    FullName(NameLayout),
    /// `alias` with its layout and the separator between several aliases.
    Alias(NameLayout, char),
    /// `dob`.
    Dob,
    /// `sex`.
    Sex,
    /// `phone`.
    Phone,
    /// `street`.
    Street,
    /// `town`.
    Town,
    /// `zip`.
    Zip,
    /// `ssn4`.
    Ssn4,
    /// `event_code`.
    EventCode,
    /// `service_code`.
    ServiceCode,
    /// `event_date`.
    EventDate,
    /// `end_date`.
    EndDate,
    /// `unit`.
    Unit,
    /// `trafficking_type`.
    TraffickingType,
    /// `age`.
    Age,
    /// `minor`.
    Minor,
}

impl Role {
    /// The field's key in a source mapping's `[columns]`.
    pub fn key(self) -> &'static str {
        match self {
            Role::RecordId => "record_id",
            Role::GivenName => "given_name",
            Role::MiddleName => "middle_name",
            Role::FamilyName => "family_name",
            Role::FullName(_) => "full_name",
            Role::Alias(..) => "alias",
            Role::Dob => "dob",
            Role::Sex => "sex",
            Role::Phone => "phone",
            Role::Street => "street",
            Role::Town => "town",
            Role::Zip => "zip",
            Role::Ssn4 => "ssn4",
            Role::EventCode => "event_code",
            Role::ServiceCode => "service_code",
            Role::EventDate => "event_date",
            Role::EndDate => "end_date",
            Role::Unit => "unit",
            Role::TraffickingType => "trafficking_type",
            Role::Age => "age",
            Role::Minor => "minor",
        }
    }

    /// Whether the field is a date (mapped with its patterns).
    pub fn is_date(self) -> bool {
        matches!(self, Role::Dob | Role::EventDate | Role::EndDate)
    }
}

/// One guess: a column, its role, and the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Guess {
    /// 0-based column index.
    pub column: usize,
    /// The field.
    pub role: Role,
    /// Why, in words and counts (no value).
    pub why: String,
    /// For a date field: the patterns to list (best first).
    pub formats: Vec<&'static str>,
}

/// All guesses for an export.
#[derive(Debug, Clone, Default)]
pub struct Guesses {
    /// Mapped columns, in column order (a composite record id has several `RecordId`s).
    pub mapped: Vec<Guess>,
    /// Columns left out, each with the reason.
    pub unmapped: Vec<(usize, String)>,
    /// Warnings about the export as a whole (e.g. an id that does not identify a person).
    pub notes: Vec<String>,
}

impl Guesses {
    /// The guess for `role`'s key, if any (the first record-id part for `RecordId`).
    pub fn get(&self, key: &str) -> Option<&Guess> {
        self.mapped.iter().find(|g| g.role.key() == key)
    }

    /// The record-id columns, in the order the mapping lists them.
    pub fn record_id(&self) -> Vec<usize> {
        self.mapped
            .iter()
            .filter(|g| g.role == Role::RecordId)
            .map(|g| g.column)
            .collect()
    }
}

/// What a header's words suggest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    Dob,
    Date { end: bool },
    Alias,
    Id,
    Trafficking,
    Given,
    Middle,
    Family,
    Phone,
    Ssn,
    Zip,
    Town,
    Street,
    Sex,
    Age,
    Minor,
    Unit,
    Code { service: bool, event: bool },
    Name,
}

/// Lower-case words of a header: `FirstName`, `First Name` and `first_name` all give
/// `["first", "name"]`; `#` is a word.
pub(crate) fn words(header: &str) -> Vec<String> {
    let mut spaced = String::new();
    let mut prev_lower = false;
    for c in header.chars() {
        if c.is_uppercase() && prev_lower {
            spaced.push(' ');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        if c == '#' {
            spaced.push_str(" # ");
        } else if c.is_alphanumeric() {
            spaced.extend(c.to_lowercase());
        } else {
            spaced.push(' ');
        }
    }
    spaced.split_whitespace().map(str::to_string).collect()
}

fn hint(header: &str) -> Option<Hint> {
    let w = words(header);
    let has = |list: &[&str]| w.iter().any(|x| list.contains(&x.as_str()));
    // Specific words first: `Phone Number` is a phone, not an id; `SSN Last 4` an SSN, not a
    // surname; `Age at Intake` an age, not a date; `Last Known Address` an address.
    if has(&["dob", "birth", "birthdate", "born", "birthday"])
        && !has(&["place", "country", "city", "town", "state"])
    {
        return Some(Hint::Dob);
    }
    if has(&["age"]) {
        return Some(Hint::Age);
    }
    if has(&["phone", "cell", "tel", "telephone", "mobile"]) {
        return Some(Hint::Phone);
    }
    if has(&["ssn", "ssn4", "social", "sin"]) {
        return Some(Hint::Ssn);
    }
    if has(&["zip", "zipcode", "postal", "postcode"]) {
        return Some(Hint::Zip);
    }
    if has(&["address", "addr", "addr1", "street", "address1"]) {
        return Some(Hint::Street);
    }
    if has(&["city", "town", "municipality"]) {
        return Some(Hint::Town);
    }
    if has(&["sex", "gender"]) {
        return Some(Hint::Sex);
    }
    let not_a_date = has(&[
        "reason",
        "type",
        "status",
        "code",
        "by",
        "destination",
        "note",
        "notes",
    ]);
    if !not_a_date
        && has(&[
            "date",
            "dt",
            "at",
            "start",
            "end",
            "opened",
            "closed",
            "entry",
            "exit",
            "time",
            "begin",
            "admitted",
            "discharged",
            "started",
            "ended",
            "when",
        ])
    {
        let end = has(&[
            "end",
            "exit",
            "closed",
            "close",
            "discharge",
            "discharged",
            "until",
            "ended",
            "stop",
        ]);
        return Some(Hint::Date { end });
    }
    if has(&["aka", "alias", "aliases", "nickname", "nicknames"])
        || (has(&["also"]) && has(&["known"]))
    {
        return Some(Hint::Alias);
    }
    if has(&["#", "id", "no", "num", "number", "nbr", "key", "identifier"]) {
        return Some(Hint::Id);
    }
    if w.iter().any(|x| x.starts_with("traffick")) || (has(&["ht"]) && has(&["type"])) {
        return Some(Hint::Trafficking);
    }
    if has(&[
        "first",
        "given",
        "fname",
        "forename",
        "firstname",
        "givenname",
    ]) {
        return Some(Hint::Given);
    }
    if has(&["middle", "mi", "mname", "middlename", "initial"]) {
        return Some(Hint::Middle);
    }
    if has(&[
        "last",
        "surname",
        "family",
        "lname",
        "lastname",
        "familyname",
    ]) {
        return Some(Hint::Family);
    }
    if has(&["minor", "juvenile"]) {
        return Some(Hint::Minor);
    }
    if has(&[
        "region",
        "site",
        "department",
        "dept",
        "unit",
        "office",
        "county",
        "district",
        "troop",
        "location",
        "branch",
        "precinct",
    ]) {
        return Some(Hint::Unit);
    }
    let service = has(&["service", "services", "program", "activity", "matter"]);
    let event = has(&["event", "offense", "incident", "contact", "encounter"]);
    if service || event || has(&["code", "type", "status", "category", "kind", "disposition"]) {
        return Some(Hint::Code { service, event });
    }
    if has(&[
        "name",
        "client",
        "child",
        "victim",
        "person",
        "youth",
        "participant",
        "individual",
        "customer",
        "patient",
        "survivor",
    ]) {
        return Some(Hint::Name);
    }
    None
}

/// Whether a header cell's words suggest any field: a first row in which few cells do is
/// taken for data, not a header ([`super::inspect`]).
pub(crate) fn is_hinted(header: &str) -> bool {
    hint(header).is_some()
}

/// Whether a value looks like a name: letters, with only spaces, hyphens, apostrophes,
/// periods and commas beside them (mojibake judged once repaired).
fn name_like(v: &str) -> bool {
    // Mojibake (`JosÃ©`) is judged as what it was.
    if let Some(fixed) = crate::source::repair_mojibake(v) {
        return name_like(&fixed);
    }
    v.chars().any(char::is_alphabetic)
        && v.chars().all(|c| c.is_alphabetic() || " -'.,’".contains(c))
}

/// A one-cell name column's layout: `LAST, FIRST` when most cells have a comma.
fn layout_of(c: &ColumnProfile) -> NameLayout {
    if c.share(|v| v.contains(',')) >= 0.5 {
        NameLayout::LastCommaFirst
    } else {
        NameLayout::FirstLast
    }
}

fn digits(v: &str) -> usize {
    v.chars().filter(char::is_ascii_digit).count()
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// Date formats to list for a column: the best pattern, and a second one when it reads a
/// further share of at least half a percent of the sampled cells.
fn date_formats(c: &ColumnProfile) -> (Vec<&'static str>, String) {
    let Some(best) = c.dates.first() else {
        return (Vec::new(), String::new());
    };
    let mut formats = vec![best.pattern];
    let mut why = format!(
        "{} of the filled cells parse as {}",
        pct(best.rate),
        best.pattern
    );
    if best.rate < 0.995 {
        let patterns: Vec<normalize::DatePattern> =
            vec![best.pattern.parse().expect("candidate patterns parse")];
        let read_by_best: Vec<bool> = c
            .sample
            .iter()
            .map(|v| patterns[0].parse(v, 2100).is_ok())
            .collect();
        let mut second: Option<(&'static str, usize)> = None;
        for fit in &c.dates[1..] {
            let Ok(p) = fit.pattern.parse::<normalize::DatePattern>() else {
                continue;
            };
            let more = c
                .sample
                .iter()
                .zip(&read_by_best)
                .filter(|(v, read)| !**read && p.parse(v, 2100).is_ok())
                .count();
            if more > second.map_or(0, |s| s.1) {
                second = Some((fit.pattern, more));
            }
        }
        if let Some((p, more)) = second {
            let share = more as f64 / c.sample.len().max(1) as f64;
            if share >= 0.005 {
                formats.push(p);
                why.push_str(&format!(", {} more as {p}", pct(share)));
            }
        }
    }
    (formats, why)
}

/// Guesses every column's role. `agency_type`, when known, decides whether a lone code column
/// names events (police, child welfare, CAC, taskforce) or services (providers).
pub fn guess(profile: &Profile, agency_type: Option<AgencyType>) -> Guesses {
    let cols = &profile.columns;
    let mut g = Guesses::default();
    let mut taken = vec![false; cols.len()];
    let hints: Vec<Option<Hint>> = cols.iter().map(|c| hint(&c.header)).collect();
    let assign = |g: &mut Guesses,
                  taken: &mut Vec<bool>,
                  i: usize,
                  role: Role,
                  why: String,
                  formats: Vec<&'static str>| {
        taken[i] = true;
        g.mapped.push(Guess {
            column: i,
            role,
            why,
            formats,
        });
    };
    let empty: Vec<usize> = (0..cols.len()).filter(|&i| cols[i].filled == 0).collect();
    for &i in &empty {
        taken[i] = true;
        g.unmapped.push((i, "empty in every row".into()));
    }
    let free = |taken: &Vec<bool>, i: usize| !taken[i];

    // Names by header.
    let name_share = |c: &ColumnProfile| c.share(name_like);
    for (hint_kind, role) in [
        (Hint::Given, Role::GivenName),
        (Hint::Family, Role::FamilyName),
        (Hint::Middle, Role::MiddleName),
    ] {
        if let Some(i) = (0..cols.len()).find(|&i| {
            free(&taken, i) && hints[i] == Some(hint_kind) && name_share(&cols[i]) >= 0.7
        }) {
            let why = format!(
                "header names it; {} of the cells are name-shaped",
                pct(name_share(&cols[i]))
            );
            assign(&mut g, &mut taken, i, role, why, Vec::new());
        }
    }
    // Alias: a header that says so, over cells that are names.
    if let Some(i) = (0..cols.len())
        .find(|&i| free(&taken, i) && hints[i] == Some(Hint::Alias) && name_share(&cols[i]) >= 0.7)
    {
        let c = &cols[i];
        let sep = [';', '/', '|']
            .into_iter()
            .max_by_key(|&s| (c.sample.iter().filter(|v| v.contains(s)).count(), s == ';'))
            .unwrap_or(';');
        let layout = layout_of(c);
        let why = format!(
            "header names aliases; {} filled; several are split at {sep:?}",
            pct(c.fill_rate())
        );
        assign(
            &mut g,
            &mut taken,
            i,
            Role::Alias(layout, sep),
            why,
            Vec::new(),
        );
    }
    // Full name when there are no name-part columns.
    let has_parts = g
        .mapped
        .iter()
        .any(|x| matches!(x.role, Role::GivenName | Role::FamilyName));
    if !has_parts {
        let multi =
            |c: &ColumnProfile| c.share(|v| v.replace(',', " ").split_whitespace().count() >= 2);
        let candidate = |i: usize| {
            free(&taken, i)
                && name_share(&cols[i]) >= 0.8
                && multi(&cols[i]) >= 0.6
                && cols[i].distinct_ratio() > 0.02
        };
        let best = (0..cols.len())
            .filter(|&i| candidate(i) && hints[i] == Some(Hint::Name))
            .chain((0..cols.len()).filter(|&i| candidate(i) && hints[i].is_none()))
            .next();
        if let Some(i) = best {
            let c = &cols[i];
            let comma = c.share(|v| v.contains(','));
            let layout = layout_of(c);
            let why = format!(
                "{} of the cells are names of two or more words, {} with a comma{}",
                pct(multi(c)),
                pct(comma),
                if layout == NameLayout::LastCommaFirst {
                    " (LAST, FIRST)"
                } else {
                    " (FIRST [MIDDLE] LAST)"
                }
            );
            assign(
                &mut g,
                &mut taken,
                i,
                Role::FullName(layout),
                why,
                Vec::new(),
            );
        }
    }

    // Dates.
    let date_cols: Vec<usize> = (0..cols.len())
        .filter(|&i| free(&taken, i) && cols[i].date_rate() >= 0.8)
        .collect();
    let dob = date_cols
        .iter()
        .copied()
        .find(|&i| hints[i] == Some(Hint::Dob))
        .or_else(|| {
            // No header says so: a date column whose header names nothing, ten or more years
            // older than the others.
            let years: Vec<(usize, i32)> = date_cols
                .iter()
                .filter_map(|&i| cols[i].median_year.map(|y| (i, y)))
                .collect();
            let oldest = years
                .iter()
                .filter(|x| hints[x.0].is_none())
                .min_by_key(|x| x.1)?;
            let others_min = years
                .iter()
                .filter(|x| x.0 != oldest.0)
                .map(|x| x.1)
                .min()?;
            (others_min - oldest.1 >= 10).then_some(oldest.0)
        });
    if let Some(i) = dob {
        let (formats, why) = date_formats(&cols[i]);
        let why = if hints[i] == Some(Hint::Dob) {
            format!("header names a birth date; {why}")
        } else {
            format!("dates ten or more years older than the export's other dates; {why}")
        };
        assign(&mut g, &mut taken, i, Role::Dob, why, formats);
    }
    for &i in &date_cols {
        if taken[i] {
            continue;
        }
        let end = matches!(hints[i], Some(Hint::Date { end: true }));
        let role = match (end, g.get("event_date"), g.get("end_date")) {
            (false, None, _) => Role::EventDate,
            (true, _, None) => Role::EndDate,
            (false, Some(_), None) if hints[i].is_some() => Role::EndDate,
            _ => {
                g.unmapped.push((
                    i,
                    "a further date column (crosswalk reads one event date and one end date)"
                        .into(),
                ));
                taken[i] = true;
                continue;
            }
        };
        let (formats, why) = date_formats(&cols[i]);
        let why = if role == Role::EndDate && !end {
            format!("the export's second date column; {why}")
        } else {
            why
        };
        assign(&mut g, &mut taken, i, role, why, formats);
    }
    for i in 0..cols.len() {
        if free(&taken, i) && matches!(hints[i], Some(Hint::Dob | Hint::Date { .. })) {
            taken[i] = true;
            g.unmapped.push((
                i,
                format!(
                    "header names a date, but only {} of the cells parse with a known pattern",
                    pct(cols[i].date_rate())
                ),
            ));
        }
    }

    // Identifiers and places by header, checked against the values.
    type Check<'a> = &'a dyn Fn(&ColumnProfile) -> (bool, String);
    let checks: [(Hint, Role, Check); 6] = [
        (Hint::Phone, Role::Phone, &|c| {
            let s = c.share(|v| (7..=15).contains(&digits(v)));
            (s >= 0.7, format!("{} hold 7 to 15 digits", pct(s)))
        }),
        (Hint::Ssn, Role::Ssn4, &|c| {
            let s = c.share(|v| digits(v) >= 3);
            (s >= 0.7, format!("{} hold 3 or more digits", pct(s)))
        }),
        (Hint::Zip, Role::Zip, &|c| {
            let s = c.share(|v| (4..=9).contains(&digits(v)));
            (s >= 0.7, format!("{} hold 4 to 9 digits", pct(s)))
        }),
        (Hint::Town, Role::Town, &|c| {
            let s = c.share(name_like);
            (s >= 0.7, format!("{} are words", pct(s)))
        }),
        (Hint::Street, Role::Street, &|c| {
            let s = c.share(|v| v.chars().any(char::is_alphabetic));
            (s >= 0.7, format!("{} hold letters", pct(s)))
        }),
        (Hint::Age, Role::Age, &|c| {
            let s = c.share(|v| {
                v.trim()
                    .parse::<f64>()
                    .is_ok_and(|a| (0.0..=120.0).contains(&a))
            });
            (s >= 0.8, format!("{} are ages", pct(s)))
        }),
    ];
    for (h, role, check) in checks {
        if let Some(i) = (0..cols.len()).find(|&i| free(&taken, i) && hints[i] == Some(h)) {
            let (ok, why) = check(&cols[i]);
            if ok {
                assign(
                    &mut g,
                    &mut taken,
                    i,
                    role,
                    format!("header names it; {why}"),
                    vec![],
                );
            } else {
                taken[i] = true;
                g.unmapped
                    .push((i, format!("header suggests {}, but only {why}", role.key())));
            }
        }
    }
    // Sex and trafficking type: by header, or by values the built-in tables read.
    let sex_share =
        |c: &ColumnProfile| c.share(|v| Sex::from_common_code(&normalize::fold(v)).is_some());
    let tt_share = |c: &ColumnProfile| {
        c.share(|v| TraffickingType::from_common_code(&normalize::fold(v)).is_some())
    };
    for (h, role, share) in [
        (
            Hint::Sex,
            Role::Sex,
            &sex_share as &dyn Fn(&ColumnProfile) -> f64,
        ),
        (Hint::Trafficking, Role::TraffickingType, &tt_share),
    ] {
        let by_header = (0..cols.len()).find(|&i| free(&taken, i) && hints[i] == Some(h));
        let by_values = || {
            (0..cols.len()).find(|&i| {
                free(&taken, i)
                    && hints[i].is_none_or(|h| matches!(h, Hint::Code { .. }))
                    && cols[i].distinct <= 12
                    && share(&cols[i]) >= 0.9
            })
        };
        if let Some(i) = by_header.or_else(by_values) {
            let why = format!(
                "{}; {} of the cells read by crosswalk's built-in table (list the rest below)",
                if by_header == Some(i) {
                    "header names it"
                } else {
                    "few distinct values"
                },
                pct(share(&cols[i]))
            );
            assign(&mut g, &mut taken, i, role, why, vec![]);
        }
    }
    // Minor flag.
    if let Some(i) = (0..cols.len()).find(|&i| free(&taken, i) && hints[i] == Some(Hint::Minor)) {
        let flag = cols[i].share(|v| {
            matches!(
                normalize::fold(v).as_str(),
                "Y" | "N"
                    | "YES"
                    | "NO"
                    | "TRUE"
                    | "FALSE"
                    | "T"
                    | "F"
                    | "1"
                    | "0"
                    | "MINOR"
                    | "ADULT"
            )
        });
        if flag >= 0.9 {
            let why = format!("header names it; {} of the cells are yes/no", pct(flag));
            assign(&mut g, &mut taken, i, Role::Minor, why, vec![]);
        }
    }

    // Code columns: event or service.
    let code_cols: Vec<usize> = (0..cols.len())
        .filter(|&i| {
            free(&taken, i)
                && matches!(hints[i], Some(Hint::Code { .. }))
                && cols[i].codes.is_some()
        })
        .collect();
    let service_words = |i: usize| matches!(hints[i], Some(Hint::Code { service: true, .. }));
    let event_words = |i: usize| matches!(hints[i], Some(Hint::Code { event: true, .. }));
    let provider = agency_type.map(|t| t == AgencyType::ServiceProvider);
    for (n, &i) in code_cols.iter().enumerate() {
        let role = match (code_cols.len(), provider) {
            (1, Some(true)) => Role::ServiceCode,
            (1, Some(false)) => Role::EventCode,
            _ if service_words(i) && !event_words(i) => Role::ServiceCode,
            _ if event_words(i) => Role::EventCode,
            (1, None) => Role::EventCode,
            _ if n == 0 => Role::EventCode,
            _ => Role::ServiceCode,
        };
        if g.get(role.key()).is_some() {
            continue;
        }
        let codes = cols[i].distinct;
        let why = match (code_cols.len(), provider) {
            (1, Some(p)) => format!(
                "{codes} distinct codes; the agency is {} so its codes name {}",
                if p {
                    "a service provider"
                } else {
                    "not a service provider"
                },
                if p { "services" } else { "events" }
            ),
            _ => format!(
                "{codes} distinct codes; the header's words name {}",
                role.key()
            ),
        };
        assign(&mut g, &mut taken, i, role, why, vec![]);
    }
    // Unit.
    if let Some(i) = (0..cols.len()).find(|&i| free(&taken, i) && hints[i] == Some(Hint::Unit)) {
        let why = format!(
            "header names a unit, site or department; {} distinct values",
            cols[i].distinct
        );
        assign(&mut g, &mut taken, i, Role::Unit, why, vec![]);
    }
    // Record id.
    let id_ok = |c: &ColumnProfile| c.fill_rate() >= 0.9 && c.distinct_ratio() >= 0.05;
    let id = (0..cols.len())
        .find(|&i| free(&taken, i) && hints[i] == Some(Hint::Id) && id_ok(&cols[i]))
        .or_else(|| {
            (0..cols.len()).find(|&i| {
                free(&taken, i)
                    && hints[i].is_none()
                    && cols[i].distinct_ratio() >= 0.3
                    && cols[i].share(|v| digits(v) > 0) >= 0.9
            })
        });
    if let Some(i) = id {
        taken[i] = true;
        let c = &cols[i];
        let why = format!(
            "{}; {} filled, {} distinct values in {} filled cells",
            if hints[i] == Some(Hint::Id) {
                "header names an id"
            } else {
                "the first column of mostly distinct values with digits"
            },
            pct(c.fill_rate()),
            c.distinct,
            c.filled_hashed
        );
        let person = person_key_columns(&g);
        let unit = g.get("unit").map(|x| x.column);
        let parts = composite_id(profile, i, &person, &taken, unit);
        match parts {
            Composite::Alone => g.mapped.push(Guess {
                column: i,
                role: Role::RecordId,
                why,
                formats: vec![],
            }),
            Composite::With(j, before, after) => {
                // Not taken: a department may be the unit too.
                g.mapped.push(Guess {
                    column: j,
                    role: Role::RecordId,
                    why: format!(
                        "rows sharing the id column's value hold different persons in {} of \
                         the shared ids, {} once this column is added: a composite id",
                        pct(before),
                        pct(after)
                    ),
                    formats: vec![],
                });
                g.mapped.push(Guess {
                    column: i,
                    role: Role::RecordId,
                    why,
                    formats: vec![],
                });
            }
            Composite::Unresolved(share) => {
                g.notes.push(format!(
                    "rows sharing a record id hold different names or birth dates in {} of the \
                     shared ids, and no other column tells them apart: the id may not identify \
                     one person (an incident shared by co-victims?). Map a column that does, \
                     or a list of columns (record_id = [\"A\", \"B\"])",
                    pct(share)
                ));
                g.mapped.push(Guess {
                    column: i,
                    role: Role::RecordId,
                    why,
                    formats: vec![],
                });
            }
        }
    } else {
        g.notes.push(
            "no column looks like a record id (mostly distinct values with digits): set \
             record_id by hand"
                .into(),
        );
    }

    for (i, c) in cols.iter().enumerate() {
        if !taken[i] {
            let why = if c.codes.is_some() {
                format!(
                    "{} distinct values, but no field crosswalk reads fits its header",
                    c.distinct
                )
            } else {
                "no field crosswalk reads fits it".to_string()
            };
            g.unmapped.push((i, why));
        }
    }
    // Record-id parts first, in the order found (a composite id lists the narrowing column
    // first); the rest in column order.
    g.mapped.sort_by_key(|x| {
        if x.role == Role::RecordId {
            (false, 0)
        } else {
            (true, x.column)
        }
    });
    g.unmapped.sort();
    let mut seen: Vec<String> = Vec::new();
    for c in cols {
        let h = c.header.to_lowercase();
        if seen.contains(&h)
            && g.mapped
                .iter()
                .any(|x| cols[x.column].header.to_lowercase() == h)
        {
            g.notes.push(format!(
                "the header {:?} appears more than once: crosswalk cannot tell the columns apart; \
                 rename one in the export",
                c.header
            ));
        }
        seen.push(h);
    }
    if g.get("dob").is_none()
        && g.get("given_name").is_none()
        && g.get("family_name").is_none()
        && g.get("full_name").is_none()
    {
        g.notes
            .push("no name or birth-date column found: map at least one by hand".into());
    }
    g
}

/// Columns whose values say who a row is about: names and the birth date.
fn person_key_columns(g: &Guesses) -> Vec<usize> {
    g.mapped
        .iter()
        .filter(|x| {
            matches!(
                x.role,
                Role::GivenName | Role::FamilyName | Role::FullName(_) | Role::Dob
            )
        })
        .map(|x| x.column)
        .collect()
}

enum Composite {
    Alone,
    With(usize, f64, f64),
    Unresolved(f64),
}

/// Share of ids held by two or more rows whose rows differ in a person column (a name, the
/// birth date) where both rows have a value, with the id made of `id` and, if given, `with`. A
/// birth date written only on the intake row is no difference.
fn conflict_share(p: &Profile, id: usize, with: Option<usize>, person: &[usize]) -> f64 {
    use std::collections::HashMap;
    let n = p.columns[id].row_hashes.len();
    let cell = |c: usize, r: usize| p.columns[c].row_hashes.get(r).copied().unwrap_or(0);
    // Per id: rows seen, whether two differ, and each person column's first value.
    let mut groups: HashMap<(u64, u64), (u32, bool, Vec<u64>)> = HashMap::new();
    for r in 0..n {
        let idv = cell(id, r);
        if idv == 0 {
            continue;
        }
        let extra = with.map_or(0, |w| cell(w, r));
        let e = groups
            .entry((idv, extra))
            .or_insert_with(|| (0, false, vec![0; person.len()]));
        e.0 += 1;
        for (k, &c) in person.iter().enumerate() {
            let v = cell(c, r);
            if v == 0 {
                continue;
            }
            if e.2[k] == 0 {
                e.2[k] = v;
            } else if e.2[k] != v {
                e.1 = true;
            }
        }
    }
    let shared = groups.values().filter(|g| g.0 >= 2).count();
    if shared == 0 {
        return 0.0;
    }
    let differing = groups.values().filter(|g| g.1).count();
    differing as f64 / shared as f64
}

/// Whether the id column alone holds different persons under one value, and if so the column
/// (free, or the unit) that tells them apart: the one that brings the share of such ids below
/// a third, fewest distinct values first (a department, a victim number; not a column of
/// values unique to each row, which would split every person).
fn composite_id(
    p: &Profile,
    id: usize,
    person: &[usize],
    taken: &[bool],
    unit: Option<usize>,
) -> Composite {
    const MUCH: f64 = 0.3;
    if person.is_empty() {
        return Composite::Alone;
    }
    let alone = conflict_share(p, id, None, person);
    if alone < MUCH {
        return Composite::Alone;
    }
    let best = (0..p.columns.len())
        .filter(|&j| j != id && (!taken[j] || Some(j) == unit))
        .filter(|&j| p.columns[j].codes.is_some() && p.columns[j].distinct_ratio() < 0.5)
        .map(|j| (j, conflict_share(p, id, Some(j), person)))
        .filter(|&(_, share)| share < alone / 3.0)
        .min_by_key(|&(j, _)| (p.columns[j].distinct, j));
    match best {
        Some((j, share)) => Composite::With(j, alone, share),
        None => Composite::Unresolved(alone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_words_split_camel_case_and_symbols() {
        assert_eq!(words("FirstName"), ["first", "name"]);
        assert_eq!(words("Case #"), ["case", "#"]);
        assert_eq!(words("HT Type"), ["ht", "type"]);
        assert_eq!(words("SSN4"), ["ssn4"]);
    }

    #[test]
    fn header_hints() {
        assert_eq!(hint("Date of Birth"), Some(Hint::Dob));
        assert_eq!(hint("Victim DOB"), Some(Hint::Dob));
        assert_eq!(hint("Exit Date"), Some(Hint::Date { end: true }));
        assert_eq!(hint("Reported At"), Some(Hint::Date { end: false }));
        assert_eq!(hint("Client #"), Some(Hint::Id));
        assert_eq!(hint("ClientNo"), Some(Hint::Id));
        assert_eq!(hint("Client Name"), Some(Hint::Name));
        assert_eq!(hint("HT Type"), Some(Hint::Trafficking));
        assert_eq!(hint("MI"), Some(Hint::Middle));
        assert_eq!(hint("Addr1"), Some(Hint::Street));
        assert_eq!(
            hint("Offense Code"),
            Some(Hint::Code {
                service: false,
                event: true
            })
        );
        assert_eq!(
            hint("Matter Type"),
            Some(Hint::Code {
                service: true,
                event: false
            })
        );
        assert_eq!(hint("Referred By"), None);
        assert_eq!(hint("Phone Number"), Some(Hint::Phone));
        assert_eq!(hint("Cell #"), Some(Hint::Phone));
        assert_eq!(hint("Social Security Number"), Some(Hint::Ssn));
        assert_eq!(hint("SSN Last 4"), Some(Hint::Ssn));
        assert_eq!(hint("Age at Intake"), Some(Hint::Age));
        assert_eq!(hint("Last Known Address"), Some(Hint::Street));
        assert_eq!(hint("Known Associates"), None);
        assert_eq!(hint("Also Known As"), Some(Hint::Alias));
        assert_eq!(hint("Closed Reason"), None);
        assert_eq!(hint("Zip Code"), Some(Hint::Zip));
        assert_eq!(hint("First Contact Date"), Some(Hint::Date { end: false }));
        assert_eq!(hint("Region"), Some(Hint::Unit));
    }
}
