//! The standard vocabulary every agency's codes are mapped onto (docs/formats.md).
//!
//! The taskforce's first recommendation is shared data definitions; these enums are they. Each
//! agency's source mapping maps its own event, service, sex and trafficking codes onto them, so
//! that the linkage job and the analytics see one language.

use serde::{Deserialize, Serialize};

/// Stage labels in journey order (administrative events have none); an event's `stage` in the
/// analytics is an index into this list.
pub const STAGES: [&str; 6] = [
    "identification",
    "screening",
    "referral",
    "service_immediate",
    "service_transitional",
    "service_long_term",
];
/// Service type labels; an event's `service` in the analytics is an index into this list.
pub const SERVICE_TYPES: [&str; 7] = [
    "housing",
    "mental_health",
    "legal",
    "case_management",
    "medical",
    "basic_needs",
    "other",
];
/// Agency type labels.
pub const AGENCY_TYPES: [&str; 6] = [
    "law_enforcement",
    "child_welfare",
    "child_advocacy",
    "taskforce",
    "service_provider",
    "other",
];
/// Age band labels: five from an age, then `<18` and `18+` from a mapped minor flag when no
/// age is known (a minor or an adult of unrecorded age), and `unknown` last. `<13`, `13-17` and
/// `<18` are minors.
pub const AGE_BANDS: [&str; 8] = [
    "<13", "13-17", "18-23", "24-29", "30+", "<18", "18+", "unknown",
];
/// Index of `unknown` in [`AGE_BANDS`].
pub const AGE_BAND_UNKNOWN: u8 = 7;
/// Sex labels; `unknown` is last.
pub const SEXES: [&str; 4] = ["female", "male", "other", "unknown"];
/// Trafficking type labels; `unknown` is last.
pub const TRAFFICKING_TYPES: [&str; 4] = ["sex", "labor", "both", "unknown"];

/// Journey stages in order. `Administrative` events (a case closed, an address updated) have no
/// stage and are written with a null `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// First identified as a (possible) victim.
    Identification,
    /// Screened or assessed (e.g. a HART consult, a forensic interview).
    Screening,
    /// Referred to another agency or service.
    Referral,
    /// Immediate services (emergency housing, crisis care).
    ServiceImmediate,
    /// Transitional services.
    ServiceTransitional,
    /// Long-term services.
    ServiceLongTerm,
    /// No journey stage.
    Administrative,
}

impl Stage {
    /// The label written to outputs (`None` for administrative events).
    pub fn label(self) -> Option<&'static str> {
        Some(match self {
            Stage::Identification => "identification",
            Stage::Screening => "screening",
            Stage::Referral => "referral",
            Stage::ServiceImmediate => "service_immediate",
            Stage::ServiceTransitional => "service_transitional",
            Stage::ServiceLongTerm => "service_long_term",
            Stage::Administrative => return None,
        })
    }
}

/// Service types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceType {
    /// Housing and shelter.
    Housing,
    /// Mental health and counselling.
    MentalHealth,
    /// Legal and immigration help.
    Legal,
    /// Case management.
    CaseManagement,
    /// Medical care.
    Medical,
    /// Food, clothing, transport and other basic needs.
    BasicNeeds,
    /// Any other service.
    Other,
}

impl ServiceType {
    /// The label written to outputs.
    pub fn label(self) -> &'static str {
        match self {
            ServiceType::Housing => "housing",
            ServiceType::MentalHealth => "mental_health",
            ServiceType::Legal => "legal",
            ServiceType::CaseManagement => "case_management",
            ServiceType::Medical => "medical",
            ServiceType::BasicNeeds => "basic_needs",
            ServiceType::Other => "other",
        }
    }
}

/// Trafficking type as recorded at the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraffickingType {
    /// Sex trafficking.
    Sex,
    /// Labor trafficking.
    Labor,
    /// Both.
    Both,
    /// Not recorded.
    Unknown,
}

impl TraffickingType {
    /// The label written to outputs.
    pub fn label(self) -> &'static str {
        match self {
            TraffickingType::Sex => "sex",
            TraffickingType::Labor => "labor",
            TraffickingType::Both => "both",
            TraffickingType::Unknown => "unknown",
        }
    }

    /// The built-in reading of common codes, used when a mapping lists none for a value.
    pub fn from_common_code(folded: &str) -> Option<TraffickingType> {
        Some(match folded {
            "SEX" | "SEXUAL" | "SEX TRAFFICKING" | "CSEC" | "CSE" | "DMST" | "S" => {
                TraffickingType::Sex
            }
            "LABOR" | "LABOUR" | "LABOR TRAFFICKING" | "LAB" | "LBR" | "L" => {
                TraffickingType::Labor
            }
            "BOTH" | "SEX AND LABOR" | "SEX LABOR" | "B" => TraffickingType::Both,
            "" | "UNKNOWN" | "UNK" | "U" | "NULL" => TraffickingType::Unknown,
            _ => return None,
        })
    }
}

/// The kind of agency an export comes from (used for entry points and agency flows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgencyType {
    /// Police departments, State Police, federal law enforcement.
    LawEnforcement,
    /// Child welfare (DCF).
    ChildWelfare,
    /// Child advocacy centers.
    ChildAdvocacy,
    /// The taskforce itself (its referral log).
    Taskforce,
    /// Victim service providers.
    ServiceProvider,
    /// Anything else.
    Other,
}

impl AgencyType {
    /// The label written to outputs.
    pub fn label(self) -> &'static str {
        match self {
            AgencyType::LawEnforcement => "law_enforcement",
            AgencyType::ChildWelfare => "child_welfare",
            AgencyType::ChildAdvocacy => "child_advocacy",
            AgencyType::Taskforce => "taskforce",
            AgencyType::ServiceProvider => "service_provider",
            AgencyType::Other => "other",
        }
    }
}

/// Age band at the event, derived at the agency from date of birth and event date (or an age
/// column), so that neither leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgeBand {
    /// Under 13.
    Under13,
    /// 13 to 17.
    Age13To17,
    /// 18 to 23.
    Age18To23,
    /// 24 to 29.
    Age24To29,
    /// 30 and over.
    Age30Plus,
    /// A minor of unrecorded age (from a mapped minor flag).
    Minor,
    /// An adult of unrecorded age (from a mapped minor flag).
    Adult,
    /// Not derivable.
    Unknown,
}

impl AgeBand {
    /// The band for an age in completed years.
    pub fn from_age(age: u32) -> AgeBand {
        match age {
            0..=12 => AgeBand::Under13,
            13..=17 => AgeBand::Age13To17,
            18..=23 => AgeBand::Age18To23,
            24..=29 => AgeBand::Age24To29,
            _ => AgeBand::Age30Plus,
        }
    }

    /// The label written to outputs: `<13`, `13-17`, `18-23`, `24-29`, `30+`, `<18`, `18+`,
    /// `unknown`.
    pub fn label(self) -> &'static str {
        match self {
            AgeBand::Under13 => "<13",
            AgeBand::Age13To17 => "13-17",
            AgeBand::Age18To23 => "18-23",
            AgeBand::Age24To29 => "24-29",
            AgeBand::Age30Plus => "30+",
            AgeBand::Minor => "<18",
            AgeBand::Adult => "18+",
            AgeBand::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_band_edges() {
        assert_eq!(AgeBand::from_age(12).label(), "<13");
        assert_eq!(AgeBand::from_age(13).label(), "13-17");
        assert_eq!(AgeBand::from_age(17).label(), "13-17");
        assert_eq!(AgeBand::from_age(18).label(), "18-23");
        assert_eq!(AgeBand::from_age(29).label(), "24-29");
        assert_eq!(AgeBand::from_age(30).label(), "30+");
    }

    #[test]
    fn label_lists_are_the_enums_labels() {
        use crate::normalize::Sex;
        let stages = [
            Stage::Identification,
            Stage::Screening,
            Stage::Referral,
            Stage::ServiceImmediate,
            Stage::ServiceTransitional,
            Stage::ServiceLongTerm,
        ];
        assert_eq!(stages.map(|s| s.label().unwrap()), STAGES);
        let services = [
            ServiceType::Housing,
            ServiceType::MentalHealth,
            ServiceType::Legal,
            ServiceType::CaseManagement,
            ServiceType::Medical,
            ServiceType::BasicNeeds,
            ServiceType::Other,
        ];
        assert_eq!(services.map(|s| s.label()), SERVICE_TYPES);
        let agencies = [
            AgencyType::LawEnforcement,
            AgencyType::ChildWelfare,
            AgencyType::ChildAdvocacy,
            AgencyType::Taskforce,
            AgencyType::ServiceProvider,
            AgencyType::Other,
        ];
        assert_eq!(agencies.map(|a| a.label()), AGENCY_TYPES);
        let bands = [0, 13, 18, 24, 30].map(|a| AgeBand::from_age(a).label());
        assert_eq!(bands[..], AGE_BANDS[..5]);
        assert_eq!(AgeBand::Minor.label(), AGE_BANDS[5]);
        assert_eq!(AgeBand::Adult.label(), AGE_BANDS[6]);
        assert_eq!(
            AgeBand::Unknown.label(),
            AGE_BANDS[AGE_BAND_UNKNOWN as usize]
        );
        assert_eq!(
            [Sex::Female, Sex::Male, Sex::Other, Sex::Unknown].map(|s| s.label()),
            SEXES
        );
        let tt = [
            TraffickingType::Sex,
            TraffickingType::Labor,
            TraffickingType::Both,
            TraffickingType::Unknown,
        ];
        assert_eq!(tt.map(|t| t.label()), TRAFFICKING_TYPES);
    }

    #[test]
    fn stage_order_is_the_journey() {
        assert!(Stage::Identification < Stage::Screening);
        assert!(Stage::Referral < Stage::ServiceImmediate);
        assert!(Stage::ServiceTransitional < Stage::ServiceLongTerm);
        assert_eq!(Stage::Administrative.label(), None);
    }
}
