//! The population and its journeys (no recording errors yet: that is [`super::corrupt`]).

use chrono::{Datelike, NaiveDate, TimeDelta};

use super::names::*;
use super::{world_end, Rand, Realism};
use crate::vocab::TraffickingType;

/// Where a person lived (and which phone they had) from a date on.
#[derive(Debug, Clone)]
pub(crate) struct Home {
    pub from: NaiveDate,
    pub street: String,
    pub town: &'static str,
    pub zip: &'static str,
    pub phone: Option<String>,
}

/// One true person.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub id: u32,
    pub family: u32,
    pub given: String,
    pub middle: Option<String>,
    pub surname: String,
    /// A later surname (marriage), used by agencies met after `surname_change`.
    pub new_surname: Option<(NaiveDate, String)>,
    pub female: bool,
    pub dob: NaiveDate,
    pub ssn4: Option<String>,
    pub homes: Vec<Home>,
    /// A completely different name the person sometimes gives.
    pub alias: Option<(String, String)>,
    /// Police and the taskforce only ever hear the alias (hard worlds).
    pub alias_only: bool,
    /// The person never gives a birth date to anyone (hard worlds).
    pub dob_unknown: bool,
    pub trafficking: TraffickingType,
    pub minor: bool,
    pub first_contact: NaiveDate,
}

impl Person {
    /// The home at `date`.
    pub fn home_at(&self, date: NaiveDate) -> &Home {
        self.homes
            .iter()
            .rev()
            .find(|h| h.from <= date)
            .unwrap_or(&self.homes[0])
    }

    /// The surname in use at `date`.
    pub fn surname_at(&self, date: NaiveDate) -> &str {
        match &self.new_surname {
            Some((from, s)) if date >= *from => s,
            _ => &self.surname,
        }
    }
}

/// The agencies of the synthetic world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Agency {
    Dcf,
    Police,
    Cac,
    Rhtrt,
    HousingA,
    HousingB,
    MentalHealth,
    Legal,
    CaseMgmt,
}

/// One event as it happened (the agency's code, dates, unit).
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub person: u32,
    pub agency: Agency,
    pub code: &'static str,
    pub start: NaiveDate,
    pub end: Option<NaiveDate>,
}

/// The population and every event.
pub(crate) struct World {
    pub persons: Vec<Person>,
    pub events: Vec<Event>,
}

/// How names are drawn and how often the hard cases occur, per [`Realism`].
#[derive(Debug, Clone, Copy)]
struct Params {
    /// Zipf exponent of given-name draws (names.rs explains the choice).
    given_s: f64,
    /// Zipf exponent of surname draws.
    surname_s: f64,
    /// Share of surnames drawn from the long tail of composed names.
    surname_tail: f64,
    /// Share of female given names drawn from the long tail.
    given_tail: f64,
    /// Share of persons with an alias.
    alias: f64,
    /// Share of alias holders whom police and the taskforce know only by the alias.
    alias_only: f64,
    /// Share of persons who never give a birth date.
    dob_unknown: f64,
    /// Share of adult women who change surname during their journey.
    surname_change: f64,
}

const CLASSIC: Params = Params {
    given_s: 0.7,
    surname_s: 0.6,
    surname_tail: 0.4,
    given_tail: 0.25,
    alias: 0.06,
    alias_only: 0.0,
    dob_unknown: 0.0,
    surname_change: 0.03,
};

/// A region's names are more concentrated than the classic world's: the commonest given name
/// and surname are held by several percent of persons, and the long tail of rare names is
/// thinner (docs/synth.md has the resulting shares).
const HARD: Params = Params {
    given_s: 0.8,
    surname_s: 0.7,
    surname_tail: 0.3,
    given_tail: 0.18,
    alias: 0.15,
    alias_only: 0.4,
    dob_unknown: 0.05,
    surname_change: 0.08,
};

impl Params {
    fn of(r: Realism) -> Params {
        match r {
            Realism::Classic => CLASSIC,
            Realism::Hard => HARD,
        }
    }
}

/// A name composed from syllables (one rare name of many thousands).
fn composed(rng: &mut Rand, parts: NameParts) -> String {
    format!(
        "{}{}{}",
        rng.pick(parts.0),
        rng.pick(parts.1),
        rng.pick(parts.2)
    )
}

/// A surname: a common one by Zipf weight, or (`surname_tail`) a rare composed one.
fn draw_surname(rng: &mut Rand, hispanic: bool, k: &Params) -> String {
    let (list, parts) = if hispanic {
        (HISPANIC_SURNAMES, HISPANIC_SURNAME_PARTS)
    } else {
        (OTHER_SURNAMES, OTHER_SURNAME_PARTS)
    };
    if rng.chance(k.surname_tail) {
        composed(rng, parts)
    } else {
        rng.zipf(list, k.surname_s).to_string()
    }
}

/// A given name from `pool`, or for a woman (`given_tail`) a rare composed one.
fn given_name(rng: &mut Rand, pool: &[&str], female: bool, k: &Params) -> String {
    if female && rng.chance(k.given_tail) {
        composed(rng, FEMALE_GIVEN_PARTS)
    } else {
        rng.zipf(pool, k.given_s).to_string()
    }
}

fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

fn new_home(rng: &mut Rand, from: NaiveDate) -> Home {
    let weights: Vec<u32> = TOWNS.iter().map(|t| t.2).collect();
    let (town, zips, _) = TOWNS[rng.weighted(&weights)];
    Home {
        from,
        street: format!("{} {}", rng.range(1, 999), rng.pick(STREETS)),
        town,
        zip: rng.pick::<&str>(zips),
        phone: rng.chance(0.8).then(|| {
            let area = if rng.chance(0.85) { "860" } else { "959" };
            format!("{area}{:07}", rng.range(2_000_000, 9_999_999))
        }),
    }
}

impl World {
    pub fn generate(n: usize, rng: &mut Rand, realism: Realism) -> World {
        let k = &Params::of(realism);
        let mut persons: Vec<Person> = Vec::with_capacity(n);
        let start = NaiveDate::from_ymd_opt(2022, 1, 1).unwrap_or_default();
        let span = (NaiveDate::from_ymd_opt(2024, 12, 31).unwrap_or_default() - start).num_days();
        let mut family = 0u32;
        while persons.len() < n {
            let id = persons.len() as u32;
            let first_contact = start + days(rng.range(0, span));
            let sibling_of = persons.last().filter(|_| rng.chance(0.12)).cloned();
            let twin = sibling_of.is_some() && rng.chance(0.25);
            let female = rng.chance(0.94);
            // 55% minors at first contact, mostly 13-17; adults mostly 18-23.
            let minor = rng.chance(0.55);
            let age = if minor {
                [12, 13, 14, 15, 15, 16, 16, 17, 17, 17][rng.below(10)]
            } else {
                [18, 18, 19, 19, 20, 21, 22, 23, 24, 26, 29, 34][rng.below(12)]
            };
            // Exactly `age` completed years at first contact.
            let anniversary = first_contact
                .with_year(first_contact.year() - age as i32)
                .unwrap_or(first_contact - days(age * 365));
            let mut dob = anniversary - days(rng.range(1, 364));
            let hispanic = rng.chance(0.45);
            let given_pool = match (hispanic, female) {
                (true, true) => HISPANIC_FEMALE,
                (true, false) => HISPANIC_MALE,
                (false, true) => OTHER_FEMALE,
                (false, false) => OTHER_MALE,
            };
            let mut given = given_name(rng, given_pool, female, k);
            let middle = rng
                .chance(0.45)
                .then(|| given_name(rng, given_pool, female, k));
            let surname = if hispanic {
                let a = draw_surname(rng, true, k);
                if rng.chance(0.35) {
                    format!("{a} {}", draw_surname(rng, true, k))
                } else {
                    a.to_string()
                }
            } else {
                draw_surname(rng, false, k)
            };
            let (surname, homes, fam) = match &sibling_of {
                Some(s) => {
                    if twin {
                        dob = s.dob;
                    } else {
                        dob = s.dob
                            + days(rng.range(400, 1800) * if rng.chance(0.5) { 1 } else { -1 });
                    }
                    while given == s.given {
                        given = given_name(rng, given_pool, female, k);
                    }
                    (s.surname.clone(), s.homes.clone(), s.family)
                }
                None => {
                    family += 1;
                    // Transient: 1 to 4 homes (and phones) over the years.
                    let moved_in = first_contact - days(rng.range(30, 700));
                    let mut homes = vec![new_home(rng, moved_in)];
                    for _ in 0..rng.weighted(&[40, 30, 20, 10]) {
                        let from = homes[homes.len() - 1].from + days(rng.range(60, 400));
                        homes.push(new_home(rng, from));
                    }
                    (surname, homes, family)
                }
            };
            let minor = crate::source::years_between(dob, first_contact) < 18;
            let trafficking = match rng.weighted(&[73, 4, 4, 19]) {
                0 => TraffickingType::Sex,
                1 => TraffickingType::Labor,
                2 => TraffickingType::Both,
                _ => TraffickingType::Unknown,
            };
            let alias = rng.chance(k.alias).then(|| {
                (
                    given_name(
                        rng,
                        if female { OTHER_FEMALE } else { OTHER_MALE },
                        female,
                        k,
                    ),
                    draw_surname(rng, false, k),
                )
            });
            let new_surname = (!minor && female && rng.chance(k.surname_change)).then(|| {
                (
                    first_contact + days(rng.range(60, 500)),
                    draw_surname(rng, false, k),
                )
            });
            // Hard worlds only draw these, so that a classic world's stream is unchanged.
            let (alias_only, dob_unknown) = match realism {
                Realism::Classic => (false, false),
                Realism::Hard => (
                    alias.is_some() && rng.chance(k.alias_only),
                    rng.chance(k.dob_unknown),
                ),
            };
            persons.push(Person {
                id,
                family: fam,
                given,
                middle,
                surname,
                new_surname,
                female,
                dob,
                ssn4: rng
                    .chance(0.5)
                    .then(|| format!("{:04}", rng.range(1, 9999))),
                homes,
                alias,
                alias_only,
                dob_unknown,
                trafficking,
                minor,
                first_contact,
            });
        }
        let mut events = Vec::new();
        for p in &persons {
            journey(p, rng, &mut events);
        }
        events.retain(|e| e.start <= world_end());
        for e in &mut events {
            if e.end.is_some_and(|end| end > world_end()) {
                e.end = None; // still open at the end of the world
            }
        }
        World { persons, events }
    }
}

/// Appends one person's events: identification, then each later stage with a chance of
/// dropping off (more for adults), services at providers, duplicates, repeat contacts.
fn journey(p: &Person, rng: &mut Rand, out: &mut Vec<Event>) {
    use Agency::*;
    let mut t = p.first_contact;
    let mut ev = |agency: Agency, code: &'static str, start: NaiveDate, end: Option<NaiveDate>| {
        out.push(Event {
            person: p.id,
            agency,
            code,
            start,
            end,
        })
    };
    // Entry: 37% law enforcement, 30% state agencies (DCF; adults come through the taskforce's
    // partners instead), 26% providers, 7% other (the taskforce's own referral log).
    let entry = rng.weighted(&[37, 30, 26, 7]);
    let entry = if entry == 1 && !p.minor { 3 } else { entry };
    let cont: [f64; 5] = if p.minor {
        [0.85, 0.80, 0.78, 0.62, 0.48]
    } else {
        [0.70, 0.62, 0.58, 0.45, 0.33]
    };
    let mut dcf_involved = false;
    let mut cac_involved = false;
    let step = |rng: &mut Rand, t: NaiveDate, lo: i64, hi: i64| t + days(rng.range(lo, hi));
    match entry {
        0 => ev(Police, "HT-INC", t, None),
        1 => {
            ev(Dcf, "CARELINE", t, None);
            dcf_involved = true;
        }
        2 => {
            // Enters at a provider: straight to an immediate service.
            let (a, c) = *rng.pick(&[
                (HousingA, "EMG-SHELTER"),
                (HousingB, "ES"),
                (MentalHealth, "CRISIS"),
                (CaseMgmt, "INTAKE"),
            ]);
            ev(a, c, t, Some(step(rng, t, 3, 60)));
        }
        _ => ev(Rhtrt, "REFERRAL", t, None),
    }
    let mut stage = 0usize;
    // Screening.
    if entry != 2 && rng.chance(cont[0]) {
        t = step(rng, t, 1, 20);
        stage = 1;
        if p.minor {
            if dcf_involved || rng.chance(0.5) {
                ev(Dcf, "HART", t, None);
                dcf_involved = true;
            }
            // M10: not all minors get a forensic interview.
            if rng.chance(0.7) {
                ev(
                    Cac,
                    if rng.chance(0.8) { "FI" } else { "FETI" },
                    step(rng, t, 0, 10),
                    None,
                );
                cac_involved = true;
            }
        } else {
            ev(Police, "VICTIM-STMT", t, None);
        }
    }
    // Referral.
    if stage == 1 && rng.chance(cont[1]) {
        t = step(rng, t, 1, 30);
        stage = 2;
        if p.minor {
            if dcf_involved {
                ev(Dcf, "CAC-REF", t, None);
            } else {
                ev(Police, "REF-DCF", t, None);
            }
            if cac_involved && rng.chance(0.6) {
                ev(Cac, "MDT", step(rng, t, 5, 30), None);
            }
        }
        if !p.minor || rng.chance(0.5) {
            ev(Rhtrt, "REFERRAL", step(rng, t, 0, 14), None);
        }
    }
    // Services: immediate, transitional, long-term; entry == 2 already had an immediate one.
    let tiers: [&[(Agency, &str)]; 3] = [
        &[
            (HousingA, "EMG-SHELTER"),
            (HousingB, "ES"),
            (MentalHealth, "CRISIS"),
            (CaseMgmt, "INTAKE"),
            (Legal, "CONSULT"),
        ],
        &[
            (HousingA, "TRANS-HSG"),
            (HousingB, "TH"),
            (MentalHealth, "IND-THERAPY"),
            (MentalHealth, "GROUP"),
            (CaseMgmt, "CM"),
            (Legal, "T-VISA"),
            (HousingB, "CM-SUPPORT"),
        ],
        &[
            (HousingA, "RRH"),
            (HousingB, "PSH"),
            (CaseMgmt, "FOLLOWUP"),
            (Legal, "REP"),
        ],
    ];
    let mut reached = if entry == 2 { 3 } else { stage };
    for (tier, options) in tiers.iter().enumerate() {
        let s = 3 + tier;
        if entry == 2 && tier == 0 {
            continue; // entered with an immediate service already
        }
        if reached + 1 < s || !rng.chance(cont[(s - 1).min(4)]) {
            break;
        }
        reached = s;
        t = step(rng, t, 2, 45);
        if tier == 0 && p.minor && cac_involved && rng.chance(0.4) {
            ev(Cac, "MED", t, None);
        }
        let n = 1 + usize::from(rng.chance(0.35));
        for _ in 0..n {
            let (agency, code) = *rng.pick(options);
            let start = step(rng, t, 0, 20);
            let end = rng.chance(0.8).then(|| step(rng, start, 7, 240));
            ev(agency, code, start, end);
            // S3/S10: the same service at a second provider, overlapping in time.
            let twin = match (agency, code) {
                (HousingA, "EMG-SHELTER") => Some((HousingB, "ES")),
                (HousingB, "ES") => Some((HousingA, "EMG-SHELTER")),
                (HousingA, "TRANS-HSG") => Some((HousingB, "TH")),
                (HousingB, "TH") => Some((HousingA, "TRANS-HSG")),
                (CaseMgmt, "CM") => Some((HousingB, "CM-SUPPORT")),
                (HousingB, "CM-SUPPORT") => Some((CaseMgmt, "CM")),
                _ => None,
            };
            if let Some((a2, c2)) = twin {
                if rng.chance(0.12) {
                    let s2 = step(rng, start, 1, 20);
                    ev(a2, c2, s2, Some(step(rng, s2, 14, 120)));
                }
            }
        }
    }
    // Re-victimisation / repeat contact with police.
    if rng.chance(0.15) {
        ev(Police, "HT-INC", step(rng, t, 60, 540), None);
    }
    // Administrative closure at DCF.
    if dcf_involved && rng.chance(0.5) {
        ev(Dcf, "CASE-CLOSE", step(rng, t, 30, 200), None);
    }
    if rng.chance(0.05) {
        ev(Police, "ADMIN", step(rng, p.first_contact, 5, 90), None);
    }
}
