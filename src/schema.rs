//! The linkage schema: which identifiers go into a CLK and how, identical for every agency.
//!
//! All agencies of one linkage encode with the same schema file (TOML, docs/formats.md); its
//! [fingerprint](LinkageSchema::fingerprint) travels in every encoding so that the linkage job
//! refuses to compare CLKs built differently. The built-in default is [`DEFAULT_SCHEMA_TOML`];
//! docs/encoding.md argues each of its parameters against the literature.
//!
//! # Example
//!
//! ```
//! use crosswalk::schema::{Field, LinkageSchema};
//!
//! let schema = LinkageSchema::default_schema();
//! assert_eq!(schema.clk.bits, 1024);
//! assert!(schema.field(Field::FamilyName).is_some());
//! // The same settings always give the same fingerprint.
//! assert_eq!(schema.fingerprint(), LinkageSchema::default_schema().fingerprint());
//! ```

use crate::normalize::nicknames::NICKNAMES_CSV;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The identifier fields a CLK can hold. Every source mapping maps its columns onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Given (first) name; a cell may hold two given names.
    GivenName,
    /// Middle name or initial.
    MiddleName,
    /// Family name (surname), compound or hyphenated.
    FamilyName,
    /// Date of birth.
    Dob,
    /// Sex.
    Sex,
    /// Telephone number.
    Phone,
    /// Street address (house number and street).
    Street,
    /// Town or city.
    Town,
    /// ZIP code (5 digits).
    Zip,
    /// Last four digits of the Social Security number.
    Ssn4,
}

impl Field {
    /// Number of identifier fields.
    pub const COUNT: usize = 10;
    /// All fields in their canonical order.
    pub const ALL: [Field; Field::COUNT] = [
        Field::GivenName,
        Field::MiddleName,
        Field::FamilyName,
        Field::Dob,
        Field::Sex,
        Field::Phone,
        Field::Street,
        Field::Town,
        Field::Zip,
        Field::Ssn4,
    ];

    /// The field's name as written in configuration files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Field::GivenName => "given_name",
            Field::MiddleName => "middle_name",
            Field::FamilyName => "family_name",
            Field::Dob => "dob",
            Field::Sex => "sex",
            Field::Phone => "phone",
            Field::Street => "street",
            Field::Town => "town",
            Field::Zip => "zip",
            Field::Ssn4 => "ssn4",
        }
    }

    /// Index into per-field arrays (`0..Field::COUNT`).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the field is one of the three name parts.
    pub fn is_name(self) -> bool {
        matches!(
            self,
            Field::GivenName | Field::MiddleName | Field::FamilyName
        )
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An identifier group that gets an encoding of its own beside the record CLK (a *part*), so
/// that the linkage job can weigh each group's agreement, and tell a missing group from a
/// disagreeing one (docs/encoding.md §6, issue #18). Sex is not a part: the event facts carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// Given, middle and family name (alias names get names parts of their own).
    Names,
    /// Date of birth.
    Dob,
    /// Telephone number.
    Phone,
    /// Street, town and ZIP code.
    Address,
    /// Last four digits of the SSN.
    Ssn4,
    /// The given name salted by the full birth date ([`Salt::BirthDate`]): two records' parts
    /// compare only when their birth dates are equal, and then tell a person's records from a
    /// twin's or a namesake's born the same day by the given name alone (the names part mixes
    /// it with the family name, which twins share). A record without a birth date has none.
    GivenDob,
    /// The family name salted by the full birth date, under the key of [`Part::GivenDob`]:
    /// a given name written as the family name (swapped fields) still meets itself.
    FamilyDob,
}

impl Part {
    /// Number of parts.
    pub const COUNT: usize = 7;
    /// Every part, in the order of the encodings file's columns.
    pub const ALL: [Part; Part::COUNT] = [
        Part::Names,
        Part::Dob,
        Part::Phone,
        Part::Address,
        Part::Ssn4,
        Part::GivenDob,
        Part::FamilyDob,
    ];

    /// The part's name, as in column names (`part_names`) and messages.
    pub fn name(self) -> &'static str {
        match self {
            Part::Names => "names",
            Part::Dob => "dob",
            Part::Phone => "phone",
            Part::Address => "address",
            Part::Ssn4 => "ssn4",
            Part::GivenDob => "given_dob",
            Part::FamilyDob => "family_dob",
        }
    }

    /// The identifier fields the part encodes.
    pub fn fields(self) -> &'static [Field] {
        match self {
            Part::Names => &[Field::GivenName, Field::MiddleName, Field::FamilyName],
            Part::Dob => &[Field::Dob],
            Part::Phone => &[Field::Phone],
            Part::Address => &[Field::Street, Field::Town, Field::Zip],
            Part::Ssn4 => &[Field::Ssn4],
            Part::GivenDob => &[Field::GivenName],
            Part::FamilyDob => &[Field::FamilyName],
        }
    }

    /// The fields the part needs besides those it encodes: the birth date that salts
    /// [`Part::GivenDob`].
    pub fn needs(self) -> &'static [Field] {
        match self {
            Part::GivenDob | Part::FamilyDob => &[Field::Dob],
            _ => &[],
        }
    }

    /// Index into per-part arrays (`0..Part::COUNT`).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The `[parts]` table: per-part encodings beside the record CLK ([`Part`]). Each part is a
/// Bloom filter of its fields' tokens (the fields' `[[fields]]` settings), under a hashing key
/// of its own, hardened on its own. Absent from a schema: no parts are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartsOptions {
    /// `diffusion` (default) or `none`. A part holds one identifier group, so its tokens stand
    /// out more than in a record CLK: unhardened parts are for experiments (docs/privacy.md).
    #[serde(default = "default_parts_hardening")]
    pub hardening: String,
    /// Diffusion's taps per output bit, 2 to 16 (default [`DEFAULT_PART_TAPS`], filled in when
    /// the schema is read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffusion_taps: Option<usize>,
    /// Bits of the names part (default 1024); 0 writes no such part.
    #[serde(default = "default_names_bits")]
    pub names_bits: usize,
    /// Bits of the birth-date part (default 1024); 0 writes no such part.
    #[serde(default = "default_small_part_bits")]
    pub dob_bits: usize,
    /// Bits of the phone part (default 1024); 0 writes no such part.
    #[serde(default = "default_small_part_bits")]
    pub phone_bits: usize,
    /// Bits of the address part (default 1024); 0 writes no such part.
    #[serde(default = "default_small_part_bits")]
    pub address_bits: usize,
    /// Bits of the SSN-4 part (default 256); 0 writes no such part.
    #[serde(default = "default_ssn4_bits")]
    pub ssn4_bits: usize,
    /// Bits of each of the given-name and family-name-at-birth-date parts ([`Part::GivenDob`],
    /// [`Part::FamilyDob`]; default 0: not written).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub given_dob_bits: usize,
}

fn is_zero(x: &usize) -> bool {
    *x == 0
}

/// Diffusion's taps per output bit of a part when the schema gives none: a names part is
/// sparser than a record CLK, and 3 taps left the correlation attack 8.7% of given names
/// (docs/measurements/2026-12-06-fs-parts.md).
pub const DEFAULT_PART_TAPS: usize = 4;

fn default_parts_hardening() -> String {
    "diffusion".into()
}
fn default_names_bits() -> usize {
    1024
}
fn default_small_part_bits() -> usize {
    1024
}
fn default_ssn4_bits() -> usize {
    256
}

impl PartsOptions {
    /// Bits of `part` (0: not written).
    pub fn bits(&self, part: Part) -> usize {
        match part {
            Part::Names => self.names_bits,
            Part::Dob => self.dob_bits,
            Part::Phone => self.phone_bits,
            Part::Address => self.address_bits,
            Part::Ssn4 => self.ssn4_bits,
            Part::GivenDob | Part::FamilyDob => self.given_dob_bits,
        }
    }

    /// The taps per output bit of diffusion: `None` unless `hardening = "diffusion"`.
    pub fn diffusion(&self) -> Option<usize> {
        (self.hardening == "diffusion").then(|| self.diffusion_taps.unwrap_or(DEFAULT_PART_TAPS))
    }

    /// The parts' hardening as files and diagnostics name it: `none` or `diffusion T`.
    pub fn hardening_label(&self) -> String {
        match self.diffusion() {
            Some(t) => format!("diffusion {t}"),
            None => self.hardening.clone(),
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        match (self.hardening.as_str(), self.diffusion_taps) {
            ("none", None) | ("diffusion", None) => {}
            ("diffusion", Some(t)) if (2..=16).contains(&t) => {}
            ("diffusion", Some(t)) => {
                return Err(format!(
                    "parts.diffusion_taps = {t}: must be between 2 and 16"
                ))
            }
            ("none", Some(_)) => {
                return Err("parts.diffusion_taps is for hardening = \"diffusion\" only".into())
            }
            (other, _) => {
                return Err(format!(
                    "parts.hardening = {other:?}: expected \"diffusion\" or \"none\""
                ))
            }
        }
        if self.given_dob_bits > 0 && self.dob_bits == 0 {
            return Err(format!(
                "parts.given_dob_bits = {}: the names at the birth date are compared only between \
                 records whose birth-date parts are equal, so they need dob_bits above 0",
                self.given_dob_bits
            ));
        }
        for part in Part::ALL {
            let bits = self.bits(part);
            if !bits.is_multiple_of(64) || bits > MAX_DIFFUSION_BITS {
                return Err(format!(
                    "parts.{part}_bits = {bits}: must be 0 (no part) or a multiple of 64, at \
                     most {MAX_DIFFUSION_BITS}"
                ));
            }
        }
        Ok(())
    }
}

/// How a normalised field value is cut into tokens before hashing (docs/encoding.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tokens {
    /// Character n-grams of each word (`n`, `padded`): robust to typos and word order.
    Ngrams,
    /// Date tokens: year, month, day, the unordered month/day pair and the full date, so that a
    /// day/month swap or a wrong year keeps most tokens.
    Date,
    /// Phone tokens: area code, positional digit pairs of the 7-digit local number, last four.
    Phone,
    /// The local number's phone tokens only (no area code): a 7-digit number written without
    /// its area code (a hand-typed referral log) gives the tokens of its 10-digit form, so the
    /// two meet as equal parts. The default schema's since 2026-12-07; within one region the
    /// area code told little apart.
    PhoneLocal,
    /// The whole normalised value as one token.
    Exact,
}

impl Tokens {
    /// The name a schema file gives it (`ngrams`, `date`, `phone`, `phone_local`, `exact`).
    pub fn name(self) -> &'static str {
        match self {
            Tokens::Ngrams => "ngrams",
            Tokens::Date => "date",
            Tokens::Phone => "phone",
            Tokens::PhoneLocal => "phone_local",
            Tokens::Exact => "exact",
        }
    }
}

/// CLK-level options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClkOptions {
    /// Filter length in bits before hardening: a multiple of 64, at most 65,536 (default 1024).
    #[serde(default = "default_bits")]
    pub bits: usize,
    /// How token bit positions are derived. Only `blake3-keyed-xof` ("random hashing": every
    /// position drawn independently from a keyed extendable-output hash) is supported.
    #[serde(default = "default_hashing")]
    pub hashing: String,
    /// Post-processing of the filter: `none` (default), `xor-fold` (halves the length),
    /// `blip` (flips each bit with probability [`ClkOptions::flip_probability`]) or
    /// `diffusion` (each output bit the XOR of [`ClkOptions::diffusion_taps`] keyed input bits).
    #[serde(default = "default_hardening")]
    pub hardening: String,
    /// For `hardening = "blip"`: the probability that a bit is flipped, 0.0001 to 0.25 (default
    /// [`DEFAULT_FLIP_PROBABILITY`], filled in when the schema is read). Not allowed with another
    /// hardening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_probability: Option<f64>,
    /// For `hardening = "diffusion"`: how many input bits each output bit XORs, 2 to 16
    /// (default [`DEFAULT_DIFFUSION_TAPS`], filled in when the schema is read). Not allowed
    /// with another hardening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffusion_taps: Option<usize>,
}

/// Diffusion's taps per output bit when the schema gives none.
pub const DEFAULT_DIFFUSION_TAPS: usize = 4;

/// Longest filter diffusion is allowed on: its wiring table takes `bits²/8` bytes per encoder
/// (8 MiB at 8,192 bits), and the audit attacks CLKs up to the same length.
pub const MAX_DIFFUSION_BITS: usize = 8192;

/// BLIP's flip probability when the schema gives none.
pub const DEFAULT_FLIP_PROBABILITY: f64 = 0.05;

/// Whether `label` can be a hardening label of an encodings file: what
/// [`LinkageSchema::hardening_label`] writes, or (for files of other versions) any short
/// printable ASCII text; it is informational, the fingerprint decides what links.
pub fn is_hardening_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 64
        && label.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

impl ClkOptions {
    /// The probability that BLIP flips a bit: `None` unless `hardening = "blip"`.
    pub fn blip(&self) -> Option<f64> {
        (self.hardening == "blip")
            .then(|| self.flip_probability.unwrap_or(DEFAULT_FLIP_PROBABILITY))
    }

    /// The taps per output bit of diffusion: `None` unless `hardening = "diffusion"`.
    pub fn diffusion(&self) -> Option<usize> {
        (self.hardening == "diffusion")
            .then(|| self.diffusion_taps.unwrap_or(DEFAULT_DIFFUSION_TAPS))
    }
}

fn default_bits() -> usize {
    1024
}
fn default_hashing() -> String {
    "blake3-keyed-xof".into()
}
fn default_hardening() -> String {
    "none".into()
}
fn default_n() -> usize {
    2
}
fn default_true() -> bool {
    true
}

/// One identifier field's encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Which identifier.
    pub field: Field,
    /// How its normalised value becomes tokens.
    pub tokens: Tokens,
    /// N-gram length, for `tokens = "ngrams"` (default 2).
    #[serde(default = "default_n")]
    pub n: usize,
    /// Pad each word with `_` on both sides before cutting n-grams (default true), so that
    /// first and last letters weigh as much as inner ones (Schnell et al. 2009).
    #[serde(default = "default_true")]
    pub padded: bool,
    /// Bits set per token (`k`), 1 to 64. The field's weight in the Dice score grows with it.
    pub bits_per_token: usize,
    /// Fields in one namespace hash equal tokens to equal bits. The three name fields share
    /// `name` by default, so a first/last swap keeps its bits. Defaults to the field's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Salt the field's tokens with a stable value of the same record (Schnell's salting): a
    /// token then sets other bits for every salt value, so its bit pattern repeats only among
    /// records that share the salt. Off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<Salt>,
    /// Read nicknames as the full given names they stand for (`JEN` as `JENNIFER`), from the
    /// built-in table [`crate::normalize::nicknames`], before tokenising. Given name only; off
    /// by default and in the default schema (docs/privacy.md, "Nicknames").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nicknames: bool,
}

/// What salts a field's tokens ([`FieldSpec::salt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Salt {
    /// The year of the record's date of birth (an empty salt when the date is missing, or is
    /// only the two birth years of an age).
    BirthYear,
    /// The whole date of birth (`YYYYMMDD`; empty as for [`Salt::BirthYear`]): what salts the
    /// names-at-the-birth-date parts ([`Part::GivenDob`], [`Part::FamilyDob`]). Internal to
    /// those parts: a schema file cannot set it on a field (it is refused as an unknown salt).
    #[serde(skip_deserializing)]
    BirthDate,
}

impl Salt {
    /// The salt's value for a record's identifiers: the birth year (`YYYY` of the normalised
    /// `YYYYMMDD` date) or the whole date, or empty (no date, or the two birth years of an
    /// age: either could be the year).
    pub fn value(self, ids: &crate::normalize::Identifiers) -> &str {
        let date = ids
            .get(Field::Dob)
            .filter(|d| !crate::normalize::is_birth_years(d));
        match self {
            Salt::BirthYear => date.and_then(|d| d.get(..4)).unwrap_or(""),
            Salt::BirthDate => date.unwrap_or(""),
        }
    }
}

impl FieldSpec {
    /// The hashing namespace of this field.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(self.field.name())
    }
}

/// The linkage schema: shared by every agency of one linkage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkageSchema {
    /// Schema format version (1).
    pub version: u32,
    /// A human name for the linkage, e.g. `greater-hartford-ht`.
    pub name: String,
    /// CLK options.
    pub clk: ClkOptions,
    /// The identifier fields, each with its tokenisation and weight.
    pub fields: Vec<FieldSpec>,
    /// Per-part encodings beside the record CLK; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<PartsOptions>,
}

/// The built-in default linkage schema (docs/encoding.md explains every number).
pub const DEFAULT_SCHEMA_TOML: &str = include_str!("../fixtures/config/schema.toml");

/// The record-CLK hardening line of [`DEFAULT_SCHEMA_TOML`].
const DEFAULT_HARDENING_LINE: &str = "hardening = \"diffusion\"";

/// The default schema's text without its hardening: the same fields and weights, the record
/// CLK plain (`hardening = "none"`) and no `[parts]` table.
///
/// This is the baseline the default is measured against (docs/privacy.md: what hardening costs
/// in F1, what the attacks recover without it) and the schema of tests that need
/// record CLKs whose Dice similarity is the plain one. **Not for linking real data**: its
/// record CLKs fall to the pattern-mining attack (docs/privacy.md).
///
/// ```
/// use crosswalk::schema::{unhardened_default_toml, LinkageSchema};
/// use std::path::Path;
///
/// let plain = LinkageSchema::from_toml(&unhardened_default_toml(), Path::new("plain.toml")).unwrap();
/// assert!(plain.parts().is_empty());
/// assert_eq!(plain.hardening_label(), "none");
/// assert_eq!(plain.fields, LinkageSchema::default_schema().fields);
/// ```
pub fn unhardened_default_toml() -> String {
    let text = DEFAULT_SCHEMA_TOML.replacen(DEFAULT_HARDENING_LINE, "hardening = \"none\"", 1);
    match text.split_once("\n[parts]") {
        Some((before, _)) => format!("{before}\n"),
        None => text,
    }
}

impl LinkageSchema {
    /// The default schema (all ten identifier fields, 1024 bits; the record CLK and the
    /// field-level parts diffused).
    pub fn default_schema() -> LinkageSchema {
        match LinkageSchema::from_toml(DEFAULT_SCHEMA_TOML, Path::new("<built-in schema>")) {
            Ok(s) => s,
            // The embedded file is tested; this cannot fail in a released build.
            Err(e) => panic!("built-in schema is invalid: {e}"),
        }
    }

    /// Reads and validates a schema file.
    pub fn from_file(path: &Path) -> Result<LinkageSchema> {
        let text = read_config(path)?;
        LinkageSchema::from_toml(&text, path)
    }

    /// Parses and validates schema TOML; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<LinkageSchema> {
        let mut schema: LinkageSchema =
            toml::from_str(text).map_err(|e| Error::config(origin, toml_message(&e)))?;
        schema.validate().map_err(|m| Error::config(origin, m))?;
        // Defaults are filled in before fingerprinting: `blip` alone and `blip` with the
        // default probability written out are one schema.
        if schema.clk.hardening == "blip" && schema.clk.flip_probability.is_none() {
            schema.clk.flip_probability = Some(DEFAULT_FLIP_PROBABILITY);
        }
        if schema.clk.hardening == "diffusion" && schema.clk.diffusion_taps.is_none() {
            schema.clk.diffusion_taps = Some(DEFAULT_DIFFUSION_TAPS);
        }
        if let Some(parts) = &mut schema.parts {
            if parts.hardening == "diffusion" && parts.diffusion_taps.is_none() {
                parts.diffusion_taps = Some(DEFAULT_PART_TAPS);
            }
        }
        Ok(schema)
    }

    /// The spec of `field`, if the schema encodes it.
    pub fn field(&self, field: Field) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.field == field)
    }

    /// The parts this schema writes: those with bits whose fields the schema encodes (at least
    /// one of them), in [`Part::ALL`] order.
    pub fn parts(&self) -> Vec<Part> {
        let Some(opts) = &self.parts else {
            return Vec::new();
        };
        Part::ALL
            .into_iter()
            .filter(|&p| {
                opts.bits(p) > 0
                    && p.fields().iter().any(|&f| self.field(f).is_some())
                    && p.needs().iter().all(|&f| self.field(f).is_some())
            })
            .collect()
    }

    /// The schema that encodes `part` alone: the part's fields with their `[[fields]]`
    /// settings, the part's length and hardening, no parts of its own. `None` when the schema
    /// writes no such part. The encoder hashes it under a key of the part's own
    /// ([`crate::encode::Encoder::for_part`]).
    pub fn part_schema(&self, part: Part) -> Option<LinkageSchema> {
        let opts = self.parts.as_ref()?;
        if !self.parts().contains(&part) {
            return None;
        }
        Some(LinkageSchema {
            version: self.version,
            name: format!("{} part {}", self.name, part.name()),
            clk: ClkOptions {
                bits: opts.bits(part),
                hashing: self.clk.hashing.clone(),
                hardening: opts.hardening.clone(),
                flip_probability: None,
                diffusion_taps: opts.diffusion(),
            },
            fields: self
                .fields
                .iter()
                .filter(|f| part.fields().contains(&f.field))
                .cloned()
                .map(|mut f| {
                    if !part.needs().is_empty() {
                        f.salt = Some(Salt::BirthDate);
                    }
                    f
                })
                .collect(),
            parts: None,
        })
    }

    /// Whether the schema encodes the birth date with the `date` tokens, which give the birth
    /// years of an age (`YYYY|YYYY`, [`crate::normalize::birth_years`]) their year tokens; under
    /// any other tokenisation the years would be one token unlike any date's, and the encoder
    /// leaves them out.
    pub fn takes_birth_years(&self) -> bool {
        self.fields
            .iter()
            .any(|f| f.field == Field::Dob && f.tokens == Tokens::Date && f.salt.is_none())
    }

    /// Whether the schema reads nicknames as full given names ([`FieldSpec::nicknames`]); the
    /// encoder then rewrites each row's given name with
    /// [`crate::normalize::nicknames::read_nicknames`] before encoding it.
    pub fn reads_nicknames(&self) -> bool {
        self.fields
            .iter()
            .any(|f| f.field == Field::GivenName && f.nicknames)
    }

    /// The hardening as encodings files and run diagnostics name it: `none`, `xor-fold`,
    /// `blip P` with the flip probability, or `diffusion T` with the taps per output bit.
    pub fn hardening_label(&self) -> String {
        if let Some(p) = self.clk.blip() {
            format!("blip {p}")
        } else if let Some(t) = self.clk.diffusion() {
            format!("diffusion {t}")
        } else {
            self.clk.hardening.clone()
        }
    }

    /// Length of the CLKs this schema produces, after hardening.
    pub fn output_bits(&self) -> usize {
        if self.clk.hardening == "xor-fold" {
            self.clk.bits / 2
        } else {
            self.clk.bits
        }
    }

    /// A 16-hex-digit fingerprint of the whole schema (BLAKE3 of its canonical TOML rendering,
    /// defaults filled in): every setting that changes the bits, and also the schema's name and
    /// field order. Encodings with different fingerprints are never compared.
    pub fn fingerprint(&self) -> String {
        let mut canonical = toml::to_string(self).unwrap_or_default();
        // The nickname table is part of what the option means, and of what the given name at
        // the birth date holds (it reads nicknames whatever the option).
        let given_dob = self.parts.as_ref().is_some_and(|p| p.given_dob_bits > 0);
        if self.reads_nicknames() || given_dob {
            canonical.push_str("\n# nicknames table ");
            canonical.push_str(&blake3::hash(NICKNAMES_CSV.as_bytes()).to_hex());
        }
        let digest = blake3::hash(canonical.as_bytes());
        crate::keys::hex(&digest.as_bytes()[..8])
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.version != 1 {
            return Err(format!(
                "schema version {} is not supported (this crosswalk reads version 1)",
                self.version
            ));
        }
        let bits = self.clk.bits;
        if bits == 0 || !bits.is_multiple_of(64) || bits > 65_536 {
            return Err(format!(
                "clk.bits = {bits}: must be a positive multiple of 64, at most 65536"
            ));
        }
        if self.clk.hashing != "blake3-keyed-xof" {
            return Err(format!(
                "clk.hashing = {:?}: the only supported method is \"blake3-keyed-xof\" \
                 (keyed random hashing; double hashing is attackable, docs/encoding.md)",
                self.clk.hashing
            ));
        }
        match self.clk.hardening.as_str() {
            "none" | "blip" => {}
            "diffusion" if bits <= MAX_DIFFUSION_BITS => {}
            "diffusion" => {
                return Err(format!(
                    "clk.hardening = \"diffusion\" needs clk.bits at most {MAX_DIFFUSION_BITS}, not {bits}"
                ))
            }
            "xor-fold" if bits.is_multiple_of(128) => {}
            "xor-fold" => {
                return Err(format!(
                    "clk.hardening = \"xor-fold\" needs clk.bits a multiple of 128, not {bits}"
                ))
            }
            other => {
                return Err(format!(
                    "clk.hardening = {other:?}: expected \"none\", \"xor-fold\", \"blip\" or \"diffusion\""
                ))
            }
        }
        match (self.clk.hardening.as_str(), self.clk.flip_probability) {
            ("blip", Some(p)) if !(0.0001..=0.25).contains(&p) => {
                return Err(format!(
                    "clk.flip_probability = {p}: must be between 0.0001 and 0.25"
                ))
            }
            (h, Some(_)) if h != "blip" => {
                return Err("clk.flip_probability is for hardening = \"blip\" only".into())
            }
            _ => {}
        }
        match (self.clk.hardening.as_str(), self.clk.diffusion_taps) {
            ("diffusion", Some(t)) if !(2..=16).contains(&t) => {
                return Err(format!(
                    "clk.diffusion_taps = {t}: must be between 2 and 16"
                ))
            }
            (h, Some(_)) if h != "diffusion" => {
                return Err("clk.diffusion_taps is for hardening = \"diffusion\" only".into())
            }
            _ => {}
        }
        if self.fields.is_empty() {
            return Err("the schema lists no [[fields]]".into());
        }
        if let Some(parts) = &self.parts {
            parts.validate()?;
        }
        let mut seen = [false; Field::COUNT];
        for spec in &self.fields {
            let f = spec.field;
            if std::mem::replace(&mut seen[f.index()], true) {
                return Err(format!("field {f} is listed twice"));
            }
            if !(1..=64).contains(&spec.bits_per_token) {
                return Err(format!(
                    "field {f}: bits_per_token = {} must be between 1 and 64",
                    spec.bits_per_token
                ));
            }
            if spec.nicknames && f != Field::GivenName {
                return Err(format!(
                    "field {f}: nicknames = true applies to given_name only"
                ));
            }
            if spec.salt.is_some() && f == Field::Dob {
                return Err(
                    "field dob: a salt by the birth date would salt the date with itself".into(),
                );
            }
            if spec.tokens == Tokens::Ngrams && !(1..=4).contains(&spec.n) {
                return Err(format!("field {f}: n = {} must be between 1 and 4", spec.n));
            }
            let ok = match f {
                Field::Dob => matches!(spec.tokens, Tokens::Date | Tokens::Exact),
                Field::Phone => {
                    matches!(
                        spec.tokens,
                        Tokens::Phone | Tokens::PhoneLocal | Tokens::Exact
                    )
                }
                Field::Sex => spec.tokens == Tokens::Exact,
                _ => matches!(spec.tokens, Tokens::Ngrams | Tokens::Exact),
            };
            if !ok {
                return Err(format!(
                    "field {f}: tokens = \"{}\" does not fit this field (docs/formats.md lists the choices)",
                    spec.tokens.name()
                ));
            }
        }
        Ok(())
    }
}

/// Reads a configuration file (schema, source mapping, clkhash schema) as text. Bytes that are
/// not UTF-8 are a configuration error (exit 3) naming the byte and line where they start.
pub(crate) fn read_config(path: &Path) -> Result<String> {
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(Error::io(
            path,
            std::io::Error::other("is a directory, not a configuration file"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        Error::config(
            path,
            format!(
                "not valid UTF-8 at byte {at} (line {line}); save the file as UTF-8 (a \
                 configuration file written on Windows may be in another encoding)"
            ),
        )
    })
}

/// A TOML error message with its line, without quoting the offending text.
pub(crate) fn toml_message(e: &toml::de::Error) -> String {
    // toml's Display quotes the source line; configuration files hold no identifiers, but keep
    // messages short and positional all the same.
    let msg = e.message();
    match e.span() {
        Some(span) => format!("invalid configuration at byte {}: {msg}", span.start),
        None => format!("invalid configuration: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The birth years of an age are taken where the birth date has date tokens (their year
    /// tokens), never as an exact token; and they are no birth year to salt by.
    #[test]
    fn birth_years_need_date_tokens_and_salt_nothing() {
        let default = LinkageSchema::default_schema();
        assert!(default.takes_birth_years());
        let text = unhardened_default_toml().replace(
            "field = \"dob\"\ntokens = \"date\"",
            "field = \"dob\"\ntokens = \"exact\"",
        );
        let exact = LinkageSchema::from_toml(&text, std::path::Path::new("s.toml")).unwrap();
        assert!(!exact.takes_birth_years());
        let mut ids = crate::normalize::Identifiers::default();
        ids.set(Field::Dob, Some("2006|2007".into()));
        assert_eq!(Salt::BirthYear.value(&ids), "");
        ids.set(Field::Dob, Some("20060412".into()));
        assert_eq!(Salt::BirthYear.value(&ids), "2006");
    }

    #[test]
    fn flip_probability_only_with_blip_and_in_range() {
        let with = |h: &str, p: &str| {
            let text = unhardened_default_toml()
                .replace("hardening = \"none\"", &format!("hardening = \"{h}\"\n{p}"));
            LinkageSchema::from_toml(&text, Path::new("s.toml"))
        };
        assert_eq!(
            with("blip", "").unwrap().clk.blip(),
            Some(DEFAULT_FLIP_PROBABILITY)
        );
        assert_eq!(
            with("blip", "flip_probability = 0.2").unwrap().clk.blip(),
            Some(0.2)
        );
        assert!(with("blip", "flip_probability = 0.3").is_err());
        assert_eq!(
            with("blip", "").unwrap().fingerprint(),
            with("blip", "flip_probability = 0.05")
                .unwrap()
                .fingerprint(),
            "the default written out is the same schema"
        );
        assert!(with("blip", "flip_probability = 0.00001").is_err());
        // The default schema's fingerprint, as the docs print it.
        assert_eq!(
            LinkageSchema::default_schema().fingerprint(),
            "85a28f9b96f51da7"
        );
        assert!(with("blip", "flip_probability = 0.0").is_err());
        assert!(with("none", "flip_probability = 0.1").is_err());
        assert_eq!(with("none", "").unwrap().clk.blip(), None);
    }

    #[test]
    fn diffusion_taps_only_with_diffusion_and_in_range() {
        let with = |h: &str, t: &str| {
            let text = unhardened_default_toml()
                .replace("hardening = \"none\"", &format!("hardening = \"{h}\"\n{t}"));
            LinkageSchema::from_toml(&text, Path::new("s.toml"))
        };
        let plain = with("diffusion", "").unwrap();
        assert_eq!(plain.clk.diffusion(), Some(DEFAULT_DIFFUSION_TAPS));
        assert_eq!(
            plain.hardening_label(),
            format!("diffusion {DEFAULT_DIFFUSION_TAPS}")
        );
        assert_eq!(
            plain.output_bits(),
            plain.clk.bits,
            "diffusion keeps the length"
        );
        let written = with(
            "diffusion",
            &format!("diffusion_taps = {DEFAULT_DIFFUSION_TAPS}"),
        );
        assert_eq!(plain.fingerprint(), written.unwrap().fingerprint());
        assert_eq!(
            with("diffusion", "diffusion_taps = 3")
                .unwrap()
                .clk
                .diffusion(),
            Some(3)
        );
        for bad in [
            "diffusion_taps = 1",
            "diffusion_taps = 17",
            "diffusion_taps = 0",
        ] {
            assert!(with("diffusion", bad).is_err(), "{bad}");
        }
        assert!(with("none", "diffusion_taps = 4").is_err());
        assert!(with("blip", "diffusion_taps = 4").is_err());
        assert!(with("diffusion", "flip_probability = 0.05").is_err());
        let long = unhardened_default_toml()
            .replace("hardening = \"none\"", "hardening = \"diffusion\"")
            .replace("bits = 1024 ", "bits = 16384 ");
        assert!(LinkageSchema::from_toml(&long, Path::new("s.toml")).is_err());
        assert_eq!(with("none", "").unwrap().clk.diffusion(), None);
    }

    #[test]
    fn parts_are_validated_and_their_defaults_filled() {
        let with = |parts: &str| {
            let text = format!("{}\n[parts]\n{parts}\n", unhardened_default_toml());
            LinkageSchema::from_toml(&text, Path::new("s.toml"))
        };
        let plain = with("").unwrap();
        let opts = plain.parts.as_ref().unwrap();
        assert_eq!(opts.diffusion(), Some(DEFAULT_PART_TAPS));
        assert_eq!(opts.hardening_label(), "diffusion 4");
        // The names at the birth date only when asked for, and then with every other part.
        let undated: Vec<Part> = Part::ALL
            .into_iter()
            .filter(|p| p.needs().is_empty())
            .collect();
        assert_eq!(plain.parts(), undated);
        let dated = with("given_dob_bits = 1024").unwrap();
        assert_eq!(dated.parts(), Part::ALL.to_vec());
        let sub = dated.part_schema(Part::GivenDob).unwrap();
        assert_eq!(sub.fields.len(), 1);
        assert_eq!(sub.fields[0].salt, Some(Salt::BirthDate));
        assert_ne!(dated.fingerprint(), plain.fingerprint());
        // They need the birth-date part that says which records share a date.
        assert!(with("given_dob_bits = 1024\ndob_bits = 0").is_err());
        // Their salt is theirs: a schema file cannot put it on a field.
        let salted = unhardened_default_toml().replace(
            "namespace = \"name\"",
            "namespace = \"name\"\nsalt = \"birth_date\"",
        );
        assert_ne!(salted, unhardened_default_toml());
        assert!(LinkageSchema::from_toml(&salted, Path::new("s.toml")).is_err());
        assert_eq!(
            plain.fingerprint(),
            with("diffusion_taps = 4").unwrap().fingerprint(),
            "the default written out is the same schema"
        );
        assert_ne!(
            plain.fingerprint(),
            LinkageSchema::default_schema().fingerprint()
        );
        let names = plain.part_schema(Part::Names).unwrap();
        assert_eq!(names.fields.len(), 3);
        assert_eq!(names.clk.bits, 1024);
        assert_eq!(names.clk.diffusion(), Some(4));
        assert_eq!(plain.part_schema(Part::Ssn4).unwrap().clk.bits, 256);
        assert!(with("hardening = \"none\"")
            .unwrap()
            .parts
            .unwrap()
            .diffusion()
            .is_none());
        for bad in [
            "hardening = \"blip\"",
            "hardening = \"none\"\ndiffusion_taps = 4",
            "diffusion_taps = 1",
            "dob_bits = 100",
            "names_bits = 16384",
            "colour = 1",
        ] {
            assert!(with(bad).is_err(), "{bad}");
        }
        let no_dob = with("dob_bits = 0").unwrap();
        assert!(!no_dob.parts().contains(&Part::Dob));
        assert!(no_dob.part_schema(Part::Dob).is_none());
        let plain = LinkageSchema::from_toml(&unhardened_default_toml(), Path::new("p.toml"));
        assert!(plain.unwrap().parts().is_empty());
        let default: Vec<Part> = Part::ALL
            .into_iter()
            .filter(|p| p.needs().is_empty())
            .collect();
        assert_eq!(LinkageSchema::default_schema().parts(), default);
    }

    #[test]
    fn default_schema_is_valid_and_complete() {
        let s = LinkageSchema::default_schema();
        for f in Field::ALL {
            assert!(s.field(f).is_some(), "{f} missing from the default schema");
        }
        assert_eq!(s.fingerprint().len(), 16);
    }

    /// Error messages name tokenisations as schema files write them.
    #[test]
    fn token_names_are_the_schema_files() {
        for t in [
            Tokens::Ngrams,
            Tokens::Date,
            Tokens::Phone,
            Tokens::PhoneLocal,
            Tokens::Exact,
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), t.name());
        }
    }

    #[test]
    fn fingerprint_tracks_settings() {
        let a = LinkageSchema::default_schema();
        let mut b = a.clone();
        b.fields[0].bits_per_token += 1;
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn rejects_bad_settings() {
        let base = unhardened_default_toml().replace("bits = 1024", "bits = 1000");
        let err = LinkageSchema::from_toml(&base, Path::new("s.toml")).unwrap_err();
        assert!(err.to_string().contains("multiple of 64"), "{err}");
        let unknown = format!("{}\nbogus = 1\n", unhardened_default_toml());
        assert!(LinkageSchema::from_toml(&unknown, Path::new("s.toml")).is_err());
        let dh = unhardened_default_toml().replace("blake3-keyed-xof", "double-hash");
        let err = LinkageSchema::from_toml(&dh, Path::new("s.toml")).unwrap_err();
        assert!(err.to_string().contains("double hashing"), "{err}");
    }
}
