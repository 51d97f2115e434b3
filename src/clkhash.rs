//! Speaking clkhash: its linkage schemas (v1, v2, v3) and bit-identical CLKs.
//!
//! [clkhash](https://github.com/data61/clkhash) 0.18.3 (CSIRO Data61) is the most used open
//! CLK encoder. This module reimplements its algorithm from its source so that an agency that
//! uses clkhash can join a crosswalk linkage, and so that crosswalk's hashing is checked against
//! an implementation it did not write (`tests/clkhash.rs`, golden vectors made by clkhash
//! itself: `fixtures/clkhash/`). The algorithm, as clkhash 0.18.3 runs it:
//!
//! 1. **Keys.** HKDF (RFC 5869) over the secret with the schema's hash (SHA-256 by default),
//!    salt and info (base64 in the schema; absent means none), producing
//!    `2 × fields × keySize` bytes (keySize 64 by default), cut into keys of `keySize` bytes:
//!    field `i` (ignored fields count) gets keys `2i` and `2i + 1`.
//! 2. **Values.** A value equal to the field's `missingValue.sentinel` is replaced by
//!    `replaceWith` (or kept) and not formatted; otherwise integers are reformatted as Python's
//!    `str(int(v))`, dates parsed with the field's `strptime` format and written `%Y%m%d`;
//!    strings and enums are hashed as they are (no case folding).
//! 3. **Tokens.** `ngram`: the value padded with `n − 1` spaces on both sides, every `n`
//!    characters (code points), as `"{i+1} {gram}"` when positional; `exact`: the value;
//!    `numeric`: the neighbourhood tokens of Vatsalan and Christen (below). An empty value has
//!    no tokens.
//! 4. **Bits per token.** `bitsPerToken k`: `k` each; `bitsPerFeature b` over `t` tokens: the
//!    first `b mod t` tokens get `⌊b/t⌋ + 1`, the others `⌊b/t⌋`.
//! 5. **Hashing** into a filter of `l · 2^xor_folds` bits. `blakeHash`: BLAKE2b-512 keyed with
//!    the field's first key, salted with the ASCII digits of `j` for the `j`-th 64-byte digest,
//!    read as 32 little-endian `u16`; the `i`-th index is `u16[i] mod l` (the filter length must
//!    be a power of two). `doubleHash` (Schnell et al. 2011): `h1` = HMAC-SHA1 with the first key,
//!    `h2` = HMAC-MD5 with the second, both read as big-endian integers mod `l`; indices
//!    `(h1 + i·h2) mod l`; with `prevent_singularity`, while `h2 = 0` it is recomputed over the
//!    token followed by the UTF-8 of the character with code `0, 1, ...`.
//! 6. **Folding.** `xor_folds` times, the first half XOR the second half.
//! 7. **Bytes.** Bit `p` is bit `7 − p mod 8` of byte `⌊p/8⌋` (bitarray's big-endian order);
//!    the JSON output is `{"clks": [base64, ...]}`.
//!
//! Validation follows clkhash (a value that does not fit its field's format is an error naming
//! the row and field, never the value), except that string `pattern`s are not checked:
//! crosswalk has no Python-compatible regular-expression engine, and a pattern never changes
//! the bits of a value it accepts.

use std::path::Path;

use base64::Engine;
use blake2::digest::{FixedOutput, KeyInit, Mac, Update};
use serde_json::Value;

pub use crate::io::clk_files::{clks_from_json, clks_to_json, read_clks};
use crate::io::clk_files::{clks_text, csv_position};

use crate::error::{Error, Result};

/// A Python text encoding, as clkhash applies it to every token (`str.encode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// `utf-8` (the default).
    Utf8,
    /// `ascii`.
    Ascii,
    /// `latin-1` (ISO 8859-1).
    Latin1,
    /// `utf-16`: a byte-order mark (little-endian, as on the machines clkhash runs on) before
    /// every token.
    Utf16,
    /// `utf-16-le`.
    Utf16Le,
    /// `utf-16-be`.
    Utf16Be,
    /// `utf-32`: a byte-order mark (little-endian) before every token.
    Utf32,
    /// `utf-32-le`.
    Utf32Le,
    /// `utf-32-be`.
    Utf32Be,
}

impl TextEncoding {
    /// The encoding for a Python codec name (lower case, `_` read as `-`).
    pub fn from_python_name(name: &str) -> Option<TextEncoding> {
        Some(match name {
            "utf-8" | "utf8" | "u8" => TextEncoding::Utf8,
            "ascii" | "us-ascii" => TextEncoding::Ascii,
            "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" => TextEncoding::Latin1,
            "utf-16" | "utf16" => TextEncoding::Utf16,
            "utf-16-le" | "utf-16le" => TextEncoding::Utf16Le,
            "utf-16-be" | "utf-16be" => TextEncoding::Utf16Be,
            "utf-32" | "utf32" => TextEncoding::Utf32,
            "utf-32-le" | "utf-32le" => TextEncoding::Utf32Le,
            "utf-32-be" | "utf-32be" => TextEncoding::Utf32Be,
            _ => return None,
        })
    }

    /// Whether every character of `s` can be encoded.
    pub fn can_encode(self, s: &str) -> bool {
        match self {
            TextEncoding::Ascii => s.is_ascii(),
            TextEncoding::Latin1 => s.chars().all(|c| (c as u32) < 256),
            _ => true,
        }
    }

    /// `s` encoded (callers check [`TextEncoding::can_encode`] first).
    pub fn encode(self, s: &str) -> std::borrow::Cow<'_, [u8]> {
        let utf16 = |bom: bool, le: bool| {
            let mut out = Vec::with_capacity(2 + 2 * s.len());
            if bom {
                out.extend_from_slice(&[0xFF, 0xFE]);
            }
            for u in s.encode_utf16() {
                out.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
            }
            out
        };
        let utf32 = |bom: bool, le: bool| {
            let mut out = Vec::with_capacity(4 + 4 * s.len());
            if bom {
                out.extend_from_slice(&[0xFF, 0xFE, 0, 0]);
            }
            for c in s.chars() {
                let u = c as u32;
                out.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
            }
            out
        };
        std::borrow::Cow::Owned(match self {
            TextEncoding::Utf8 | TextEncoding::Ascii => return s.as_bytes().into(),
            TextEncoding::Latin1 => s.chars().map(|c| c as u32 as u8).collect(),
            TextEncoding::Utf16 => utf16(true, true),
            TextEncoding::Utf16Le => utf16(false, true),
            TextEncoding::Utf16Be => utf16(false, false),
            TextEncoding::Utf32 => utf32(true, true),
            TextEncoding::Utf32Le => utf32(false, true),
            TextEncoding::Utf32Be => utf32(false, false),
        })
    }
}

/// How a field's value is hashed.
#[derive(Debug, Clone, PartialEq)]
pub enum HashType {
    /// Keyed BLAKE2b (clkhash's default).
    Blake,
    /// HMAC-SHA1/HMAC-MD5 double hashing, optionally without its singularity.
    Double {
        /// `prevent_singularity`.
        non_singular: bool,
    },
}

/// How a value becomes tokens.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    /// n-grams, positional or not.
    Ngram {
        /// `n`.
        n: usize,
        /// Positional n-grams.
        positional: bool,
    },
    /// The whole value is one token.
    Exact,
    /// Numeric neighbourhoods.
    Numeric {
        /// `thresholdDistance · 10^fractional_precision`, rounded.
        distance_interval: i128,
        /// `resolution`.
        resolution: i128,
        /// `fractional_precision`.
        fractional_precision: u32,
    },
}

/// The most bits a clkhash schema may ask for, as `l` or as bits per token or feature: the
/// longest CLK crosswalk reads ([`crate::io::encodings::MAX_CLK_BITS`]).
pub const MAX_BITS: usize = crate::io::encodings::MAX_CLK_BITS;

/// The longest n-gram a clkhash schema may ask for (clkhash's own schemas use 1 to 3; an n of a
/// billion padded every word with a billion spaces: found by the `clkhash_schema` fuzz target).
pub const MAX_NGRAM: usize = 64;

/// The largest `resolution` of a numeric comparison (it makes `2 · resolution + 1` tokens per
/// value; clkhash's examples use 2 to 10).
pub const MAX_RESOLUTION: usize = 1024;

/// The most XOR folds a clkhash schema may ask for: the filter hashed into is `l · 2^folds` bits
/// (clkhash's own schemas use 0 to 2).
pub const MAX_XOR_FOLDS: u64 = 8;

/// Bits per token.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// `bitsPerToken`.
    PerToken(usize),
    /// `bitsPerFeature`.
    PerFeature(usize),
}

impl Strategy {
    /// `k` for each of `tokens` tokens.
    pub fn ks(&self, tokens: usize) -> Vec<usize> {
        match *self {
            Strategy::PerToken(k) => vec![k; tokens],
            Strategy::PerFeature(b) => {
                let (k, residue) = (b / tokens.max(1), b % tokens.max(1));
                (0..tokens).map(|i| k + usize::from(i < residue)).collect()
            }
        }
    }
}

/// A field's value format (for validation and formatting).
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// Text.
    String {
        /// `minLength` (code points).
        min_length: Option<usize>,
        /// `maxLength`.
        max_length: Option<usize>,
        /// `case`: `upper`, `lower` or `mixed`.
        case: String,
    },
    /// A base-10 integer.
    Integer {
        /// `minimum`.
        minimum: Option<i128>,
        /// `maximum`.
        maximum: Option<i128>,
    },
    /// A date in a `strptime` format.
    Date {
        /// The format, e.g. `%Y-%m-%d`.
        format: String,
    },
    /// One of a set of values.
    Enum {
        /// The permitted values.
        values: Vec<String>,
    },
}

/// How a field is hashed.
#[derive(Debug, Clone, PartialEq)]
pub struct Hashing {
    /// Tokeniser.
    pub comparison: Comparison,
    /// Bits per token.
    pub strategy: Strategy,
    /// Hash function.
    pub hash: HashType,
    /// `missingValue`: sentinel and replacement.
    pub missing: Option<(String, String)>,
    /// Text encoding of tokens.
    pub encoding: TextEncoding,
}

/// One column of a clkhash schema.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    /// `identifier`.
    pub identifier: String,
    /// Format (none for an ignored field).
    pub format: Option<Format>,
    /// Hashing (none for an ignored field).
    pub hashing: Option<Hashing>,
}

/// A clkhash linkage schema, converted to version 3.
#[derive(Debug, Clone, PartialEq)]
pub struct ClkhashSchema {
    /// CLK length in bits after folding.
    pub l: usize,
    /// XOR folds.
    pub xor_folds: u32,
    /// HKDF hash: `SHA256` or `SHA512`.
    pub kdf_hash: String,
    /// HKDF salt.
    pub kdf_salt: Option<Vec<u8>>,
    /// HKDF info.
    pub kdf_info: Option<Vec<u8>>,
    /// Bytes per derived key.
    pub key_size: usize,
    /// Columns, in order.
    pub fields: Vec<FieldSpec>,
    /// Things clkhash would do silently that a user should know (e.g. a documented key it
    /// ignores).
    pub notes: Vec<String>,
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::config(path, msg)
}

/// clkhash's v1 → v2 conversion.
fn v1_to_v2(mut s: Value, path: &Path) -> Result<Value> {
    let cfg = s
        .get_mut("clkConfig")
        .ok_or_else(|| bad(path, "clkConfig is missing"))?;
    let k = cfg
        .get("k")
        .and_then(Value::as_f64)
        .ok_or_else(|| bad(path, "clkConfig.k is missing"))?;
    let hash = cfg.get("hash").cloned().unwrap_or(Value::Null);
    let mut new_cfg = serde_json::Map::new();
    new_cfg.insert("l".into(), cfg.get("l").cloned().unwrap_or(Value::Null));
    new_cfg.insert(
        "xor_folds".into(),
        cfg.get("xor_folds").cloned().unwrap_or(0.into()),
    );
    new_cfg.insert("kdf".into(), cfg.get("kdf").cloned().unwrap_or(Value::Null));
    let features: Vec<Value> = s
        .get("features")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut f| {
            if f.get("ignored").and_then(Value::as_bool).unwrap_or(false) {
                return f;
            }
            let weight = f
                .pointer("/hashing/weight")
                .and_then(Value::as_f64)
                .unwrap_or(1.0);
            if weight == 0.0 {
                return serde_json::json!({"identifier": f.get("identifier").cloned().unwrap_or(Value::Null), "ignored": true});
            }
            if let Some(h) = f.get_mut("hashing").and_then(Value::as_object_mut) {
                h.remove("weight");
                // Python's round(): halves to even.
                let bits = round_half_even(weight * k) as i64;
                h.insert("strategy".into(), serde_json::json!({ "k": bits }));
                h.insert("hash".into(), hash.clone());
            }
            f
        })
        .collect();
    s = serde_json::json!({"version": 2, "clkConfig": new_cfg, "features": features});
    Ok(s)
}

/// clkhash's v2 → v3 conversion.
fn v2_to_v3(mut s: Value) -> Value {
    s["version"] = 3.into();
    if let Some(features) = s.get_mut("features").and_then(Value::as_array_mut) {
        for f in features {
            if f.get("ignored").and_then(Value::as_bool).unwrap_or(false) {
                continue;
            }
            let Some(h) = f.get_mut("hashing").and_then(Value::as_object_mut) else {
                continue;
            };
            if let Some(st) = h.get_mut("strategy").and_then(Value::as_object_mut) {
                if let Some(k) = st.remove("k") {
                    st.insert("bitsPerToken".into(), k);
                } else if let Some(b) = st.remove("numBits") {
                    st.insert("bitsPerFeature".into(), b);
                }
            }
            let n = h.remove("ngram").unwrap_or(Value::Null);
            let positional = h.remove("positional").unwrap_or(false.into());
            h.insert(
                "comparison".into(),
                serde_json::json!({"type": "ngram", "n": n, "positional": positional}),
            );
        }
    }
    s
}

fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        r
    }
}

impl ClkhashSchema {
    /// Reads a clkhash linkage schema (JSON, version 1, 2 or 3).
    pub fn from_file(path: &Path) -> Result<ClkhashSchema> {
        let text = crate::schema::read_config(path)?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| bad(path, format!("not valid JSON ({e})")))?;
        ClkhashSchema::from_json(v, path)
    }

    /// Parses a clkhash schema already read as JSON (`path` names it in errors).
    pub fn from_json(mut v: Value, path: &Path) -> Result<ClkhashSchema> {
        match v.get("version").and_then(Value::as_u64) {
            Some(1) => v = v2_to_v3(v1_to_v2(v, path)?),
            Some(2) => v = v2_to_v3(v),
            Some(3) => {}
            _ => {
                return Err(bad(
                    path,
                    "a clkhash linkage schema needs \"version\": 1, 2 or 3",
                ))
            }
        }
        let cfg = v
            .get("clkConfig")
            .ok_or_else(|| bad(path, "clkConfig is missing"))?;
        let l = cfg
            .get("l")
            .and_then(Value::as_u64)
            .filter(|&l| l > 0)
            .ok_or_else(|| bad(path, "clkConfig.l must be a positive integer"))?
            as usize;
        if l > MAX_BITS {
            return Err(bad(
                path,
                format!("clkConfig.l is {l}: crosswalk reads CLKs of at most {MAX_BITS} bits"),
            ));
        }
        let xor_folds = cfg.get("xor_folds").and_then(Value::as_u64).unwrap_or(0);
        if xor_folds > MAX_XOR_FOLDS {
            return Err(bad(
                path,
                format!(
                    "clkConfig.xor_folds is {xor_folds}: at most {MAX_XOR_FOLDS} (each fold \
                     doubles the filter hashed into)"
                ),
            ));
        }
        let xor_folds = xor_folds as u32;
        let kdf = cfg
            .get("kdf")
            .ok_or_else(|| bad(path, "clkConfig.kdf is missing"))?;
        if kdf.get("type").and_then(Value::as_str) != Some("HKDF") {
            return Err(bad(
                path,
                "clkConfig.kdf.type must be HKDF (the legacy key use is not supported)",
            ));
        }
        let b64 = |name: &str| -> Result<Option<Vec<u8>>> {
            match kdf.get(name).and_then(Value::as_str) {
                None => Ok(None),
                Some(s) => base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map(Some)
                    .map_err(|_| bad(path, format!("clkConfig.kdf.{name} is not base64"))),
            }
        };
        let kdf_hash = kdf
            .get("hash")
            .and_then(Value::as_str)
            .unwrap_or("SHA256")
            .to_string();
        if kdf_hash != "SHA256" && kdf_hash != "SHA512" {
            return Err(bad(path, "clkConfig.kdf.hash must be SHA256 or SHA512"));
        }
        let key_size = kdf.get("keySize").and_then(Value::as_u64).unwrap_or(64) as usize;
        let features = v
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(path, "features is missing"))?;
        let fields = features
            .iter()
            .enumerate()
            .map(|(i, f)| parse_field(f, i, path))
            .collect::<Result<Vec<_>>>()?;
        let mut notes = Vec::new();
        if cfg.get("xorFolds").is_some() && cfg.get("xor_folds").is_none() {
            notes.push(
                "clkConfig.xorFolds is documented by clkhash's JSON schema but clkhash 0.18.3 reads \
                 xor_folds and ignores it; crosswalk does the same, so no folding is done"
                    .to_string(),
            );
        }
        let schema = ClkhashSchema {
            notes,
            l,
            xor_folds,
            kdf_hash,
            kdf_salt: b64("salt")?,
            kdf_info: b64("info")?,
            key_size,
            fields,
        };
        let hash_l = schema.l << schema.xor_folds;
        for f in &schema.fields {
            if let Some(h) = &f.hashing {
                if h.hash == HashType::Blake && !hash_l.is_power_of_two() {
                    return Err(bad(
                        path,
                        format!(
                            "field {}: blakeHash needs l · 2^xor_folds to be a power of two",
                            f.identifier
                        ),
                    ));
                }
                if h.hash == HashType::Blake && (key_size == 0 || key_size > 64) {
                    return Err(bad(path, "blakeHash needs keySize between 1 and 64"));
                }
            }
        }
        let max = 255 * if schema.kdf_hash == "SHA512" { 64 } else { 32 };
        if 2 * schema.fields.len() * key_size > max {
            return Err(bad(path, "too many fields for HKDF with this keySize"));
        }
        Ok(schema)
    }

    /// Derives the per-field keys from the secret, as clkhash does.
    pub fn keys(&self, secret: &[u8]) -> Vec<[Vec<u8>; 2]> {
        let len = 2 * self.fields.len() * self.key_size;
        let mut okm = vec![0u8; len];
        let info = self.kdf_info.as_deref().unwrap_or(&[]);
        let salt = self.kdf_salt.as_deref();
        let ok = if self.kdf_hash == "SHA512" {
            hkdf::Hkdf::<sha2::Sha512>::new(salt, secret)
                .expand(info, &mut okm)
                .is_ok()
        } else {
            hkdf::Hkdf::<sha2::Sha256>::new(salt, secret)
                .expand(info, &mut okm)
                .is_ok()
        };
        debug_assert!(ok, "length checked when the schema was read");
        okm.chunks(self.key_size * 2)
            .map(|c| [c[..self.key_size].to_vec(), c[self.key_size..].to_vec()])
            .collect()
    }

    /// Number of bytes of a CLK.
    pub fn clk_bytes(&self) -> usize {
        self.l.div_ceil(8)
    }
}

fn parse_field(f: &Value, i: usize, path: &Path) -> Result<FieldSpec> {
    let identifier = f
        .get("identifier")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(path, format!("feature {}: identifier is missing", i + 1)))?
        .to_string();
    if f.get("ignored").and_then(Value::as_bool).unwrap_or(false) {
        return Ok(FieldSpec {
            identifier,
            format: None,
            hashing: None,
        });
    }
    let err = |m: &str| bad(path, format!("feature {identifier}: {m}"));
    let fmt = f.get("format").ok_or_else(|| err("format is missing"))?;
    let u = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).map(|x| x as usize);
    let int = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).map(i128::from);
    let format = match fmt.get("type").and_then(Value::as_str) {
        Some("string") => Format::String {
            min_length: u(fmt, "minLength"),
            max_length: u(fmt, "maxLength"),
            case: fmt
                .get("case")
                .and_then(Value::as_str)
                .unwrap_or("mixed")
                .to_string(),
        },
        Some("integer") => Format::Integer {
            minimum: int(fmt, "minimum"),
            maximum: int(fmt, "maximum"),
        },
        Some("date") => Format::Date {
            format: fmt
                .get("format")
                .and_then(Value::as_str)
                .ok_or_else(|| err("a date needs format.format"))?
                .to_string(),
        },
        Some("enum") => Format::Enum {
            values: fmt
                .get("values")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .ok_or_else(|| err("an enum needs format.values"))?,
        },
        _ => return Err(err("format.type must be string, integer, date or enum")),
    };
    let h = f.get("hashing").ok_or_else(|| err("hashing is missing"))?;
    let cmp = h
        .get("comparison")
        .ok_or_else(|| err("hashing.comparison is missing"))?;
    let comparison = match cmp.get("type").and_then(Value::as_str) {
        Some("ngram") => Comparison::Ngram {
            n: u(cmp, "n")
                .filter(|&n| n > 0 && n <= MAX_NGRAM)
                .ok_or_else(|| {
                    err(&format!(
                        "ngram n must be between 1 and {MAX_NGRAM} (a word is padded with n - 1 \
                         spaces on each side)"
                    ))
                })?,
            positional: cmp
                .get("positional")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        Some("exact") => Comparison::Exact,
        Some("numeric") => {
            let fp = u(cmp, "fractional_precision").unwrap_or(0);
            if fp > 18 {
                return Err(err("numeric fractional_precision must be at most 18"));
            }
            let fp = fp as u32;
            let td = cmp
                .get("thresholdDistance")
                .and_then(Value::as_f64)
                .filter(|&t| t > 0.0)
                .ok_or_else(|| err("numeric thresholdDistance must be positive"))?;
            let res = u(cmp, "resolution")
                .filter(|&r| (1..=MAX_RESOLUTION).contains(&r))
                .ok_or_else(|| {
                    err(&format!(
                        "numeric resolution must be between 1 and {MAX_RESOLUTION}"
                    ))
                })?;
            let di = round_half_even(td * 10f64.powi(fp as i32)) as i128;
            if di == 0 {
                return Err(err("not enough fractional precision for thresholdDistance"));
            }
            Comparison::Numeric {
                distance_interval: di,
                resolution: res as i128,
                fractional_precision: fp,
            }
        }
        _ => return Err(err("comparison.type must be ngram, exact or numeric")),
    };
    let st = h
        .get("strategy")
        .ok_or_else(|| err("hashing.strategy is missing"))?;
    let strategy = if let Some(k) = u(st, "bitsPerToken") {
        Strategy::PerToken(k)
    } else if let Some(b) = u(st, "bitsPerFeature") {
        Strategy::PerFeature(b)
    } else {
        return Err(err("strategy needs bitsPerToken or bitsPerFeature"));
    };
    // (A v1 schema's k times a weight can be any number; more bits than a CLK has is no
    // schema, and the encoder would try to allocate them.)
    let (Strategy::PerToken(n) | Strategy::PerFeature(n)) = strategy;
    if n > MAX_BITS {
        return Err(err(&format!(
            "strategy asks for {n} bits: at most {MAX_BITS} (the longest CLK crosswalk reads)"
        )));
    }
    let hash = match h
        .pointer("/hash/type")
        .and_then(Value::as_str)
        .unwrap_or("blakeHash")
    {
        "blakeHash" => HashType::Blake,
        "doubleHash" => HashType::Double {
            non_singular: h
                .pointer("/hash/prevent_singularity")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        _ => return Err(err("hash.type must be blakeHash or doubleHash")),
    };
    let missing = h.get("missingValue").map(|m| {
        let sentinel = m
            .get("sentinel")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let with = m
            .get("replaceWith")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| sentinel.clone());
        (sentinel, with)
    });
    let encoding = fmt
        .get("encoding")
        .and_then(Value::as_str)
        .unwrap_or("utf-8")
        .to_ascii_lowercase()
        .replace('_', "-");
    let encoding = TextEncoding::from_python_name(&encoding).ok_or_else(|| {
        err("encoding must be one of utf-8, ascii, latin-1, utf-16(-le/-be), utf-32(-le/-be)")
    })?;
    Ok(FieldSpec {
        identifier,
        format: Some(format),
        hashing: Some(Hashing {
            comparison,
            strategy,
            hash,
            missing,
            encoding,
        }),
    })
}

/// Python's `int(s, 10)`: surrounding whitespace, an optional sign, digits with single
/// underscores between them.
fn py_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first()? {
        b'+' => (false, &t[1..]),
        b'-' => (true, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut v: i128 = 0;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        v = v.checked_mul(10)?.checked_add(c.to_digit(10)? as i128)?;
    }
    Some(if neg { -v } else { v })
}

/// Why a value was refused (never the value itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not an integer, or outside its bounds.
    Integer,
    /// Not a date in the field's format.
    Date,
    /// Not one of the enum's values.
    Enum,
    /// Too short, too long or of the wrong case.
    String,
    /// Not representable in the field's encoding.
    Encoding,
}

impl Invalid {
    /// Human-readable reason.
    pub fn reason(self) -> &'static str {
        match self {
            Invalid::Integer => "not an integer in the allowed range",
            Invalid::Date => "not a date in the schema's format",
            Invalid::Enum => "not one of the allowed values",
            Invalid::String => "length or case outside the schema's limits",
            Invalid::Encoding => "not representable in the field's encoding",
        }
    }
}

/// Validates and formats a value as clkhash does before tokenising.
pub fn format_value(field: &FieldSpec, value: &str) -> std::result::Result<String, Invalid> {
    let (Some(format), Some(h)) = (&field.format, &field.hashing) else {
        return Ok(String::new());
    };
    if let Some((sentinel, with)) = &h.missing {
        if value == sentinel {
            return Ok(with.clone());
        }
    }
    if !h.encoding.can_encode(value) {
        return Err(Invalid::Encoding);
    }
    match format {
        Format::String {
            min_length,
            max_length,
            case,
        } => {
            let n = value.chars().count();
            let upper_ok = case != "upper" || value.to_uppercase() == value;
            let lower_ok = case != "lower" || value.to_lowercase() == value;
            if min_length.is_some_and(|m| n < m)
                || max_length.is_some_and(|m| n > m)
                || !upper_ok
                || !lower_ok
            {
                return Err(Invalid::String);
            }
            Ok(value.to_string())
        }
        Format::Integer { minimum, maximum } => {
            let v = py_int(value).ok_or(Invalid::Integer)?;
            if minimum.is_some_and(|m| v < m) || maximum.is_some_and(|m| v > m) {
                return Err(Invalid::Integer);
            }
            Ok(v.to_string())
        }
        Format::Date { format } => {
            let d = chrono::NaiveDate::parse_from_str(value, format).map_err(|_| Invalid::Date)?;
            Ok(d.format("%Y%m%d").to_string())
        }
        Format::Enum { values } => {
            if values.iter().any(|v| v == value) {
                Ok(value.to_string())
            } else {
                Err(Invalid::Enum)
            }
        }
    }
}

/// Puts `word` padded with `n − 1` spaces on both sides into `chars` (code points); returns
/// the number of its n-grams (0 for an empty word).
fn ngram_chars(word: &str, n: usize, chars: &mut Vec<char>) -> usize {
    chars.clear();
    if word.is_empty() {
        return 0;
    }
    chars.extend(std::iter::repeat_n(' ', n - 1));
    chars.extend(word.chars());
    chars.extend(std::iter::repeat_n(' ', n - 1));
    (chars.len() + 1).saturating_sub(n)
}

/// Writes n-gram `i` of padded `chars` into `buf`, as `"{i+1} {gram}"` when positional.
fn ngram_at(chars: &[char], n: usize, positional: bool, i: usize, buf: &mut String) {
    buf.clear();
    if positional {
        use std::fmt::Write;
        let _ = write!(buf, "{} ", i + 1);
    }
    buf.extend(&chars[i..i + n]);
}

/// Tokens of a formatted value.
pub fn tokenize(c: &Comparison, word: &str) -> Vec<String> {
    if word.is_empty() {
        return Vec::new();
    }
    match c {
        Comparison::Exact => vec![word.to_string()],
        Comparison::Ngram { n, positional } => {
            let mut chars = Vec::new();
            (0..ngram_chars(word, *n, &mut chars))
                .map(|i| {
                    let mut g = String::new();
                    ngram_at(&chars, *n, *positional, i, &mut g);
                    g
                })
                .collect()
        }
        Comparison::Numeric {
            distance_interval,
            resolution,
            fractional_precision,
        } => {
            // Checked arithmetic: a value too large for i128 on the way (Python's integers have
            // no bound) gives no tokens, as an unparseable one does.
            let tokens = || -> Option<Vec<String>> {
                let scale = 10i128.checked_pow(*fractional_precision)?;
                let v = match py_int(word) {
                    Some(v) => v.checked_mul(if *fractional_precision > 0 { scale } else { 1 })?,
                    None => match word.trim().parse::<f64>() {
                        Ok(f) if f.is_finite() => {
                            if *fractional_precision > 0 {
                                round_half_even(f * scale as f64) as i128
                            } else {
                                f.trunc() as i128
                            }
                        }
                        _ => return None,
                    },
                };
                let d = *distance_interval;
                let mut v = v.checked_mul(2)?.checked_mul(*resolution)?;
                let residue = v.rem_euclid(d);
                if residue != 0 {
                    if (residue as f64) < d as f64 / 2.0 {
                        v = v.checked_sub(residue)?;
                    } else {
                        v = v.checked_add(d - residue)?;
                    }
                }
                (-resolution..=*resolution)
                    .map(|i| Some(v.checked_add(i.checked_mul(d)?)?.to_string()))
                    .collect()
            };
            tokens().unwrap_or_default()
        }
    }
}

/// Big-endian bytes as an integer mod `l`.
fn mod_l(bytes: &[u8], l: u64) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| {
        ((acc as u128 * 256 + b as u128) % l as u128) as u64
    })
}

/// BLAKE2b-512 keyed with a field's key and salted with `j`, the key block already compressed:
/// each token then costs one compression instead of two.
fn keyed_blake(key: &[u8], j: usize) -> blake2::Blake2bVarCore {
    use blake2::digest::block_api::{Block, UpdateCore};
    let mut core =
        blake2::Blake2bVarCore::new_with_params(j.to_string().as_bytes(), &[], key.len(), 64);
    let mut block = Block::<blake2::Blake2bVarCore>::default();
    block[..key.len()].copy_from_slice(key);
    core.update_blocks(std::slice::from_ref(&block));
    core
}

/// The 64-byte digest of `data` (non-empty) from a [`keyed_blake`] state.
fn blake_digest(state: &blake2::Blake2bVarCore, data: &[u8]) -> [u8; 64] {
    use blake2::digest::block_api::{Buffer, UpdateCore, VariableOutputCore};
    let mut core = state.clone();
    let mut buffer = Buffer::<blake2::Blake2bVarCore>::default();
    buffer.digest_blocks(data, |blocks| core.update_blocks(blocks));
    let mut out = blake2::digest::Output::<blake2::Blake2bVarCore>::default();
    core.finalize_variable_core(&mut buffer, &mut out);
    let mut d = [0u8; 64];
    d.copy_from_slice(&out[..64]);
    d
}

/// A field's hashing state: its keys, and for `blakeHash` the keyed BLAKE2b states for
/// every digest index a token can need.
#[derive(Debug, Clone)]
struct FieldKeys {
    keys: [Vec<u8>; 2],
    blake: Vec<blake2::Blake2bVarCore>,
}

/// Bit indices of one token.
fn indices(h: &HashType, fk: &FieldKeys, token: &[u8], k: usize, l: usize, out: &mut Vec<usize>) {
    let keys = &fk.keys;
    match h {
        HashType::Blake => {
            for j in 0..k.div_ceil(32) {
                let digest = match fk.blake.get(j) {
                    Some(state) if !token.is_empty() => blake_digest(state, token),
                    _ => {
                        let salt = j.to_string();
                        let Ok(mut mac) = blake2::Blake2bMac512::new_with_salt_and_personal(
                            Some(&keys[0]),
                            salt.as_bytes(),
                            &[],
                        ) else {
                            return;
                        };
                        Update::update(&mut mac, token);
                        let mut d = [0u8; 64];
                        d.copy_from_slice(&mac.finalize_fixed());
                        d
                    }
                };
                let take = (k - 32 * j).min(32);
                out.extend(
                    digest
                        .chunks_exact(2)
                        .take(take)
                        // clkhash requires l to be a power of two for blakeHash: a mask.
                        .map(|c| u16::from_le_bytes([c[0], c[1]]) as usize & (l - 1)),
                );
            }
        }
        HashType::Double { non_singular } => {
            let l64 = l as u64;
            let hmac_sha1 = |m: &[u8]| -> Vec<u8> {
                let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&keys[0])
                    .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
                Mac::update(&mut mac, m);
                mac.finalize().into_bytes().to_vec()
            };
            let hmac_md5 = |m: &[u8]| -> Vec<u8> {
                let mut mac = <hmac::Hmac<md5::Md5> as KeyInit>::new_from_slice(&keys[1])
                    .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
                Mac::update(&mut mac, m);
                mac.finalize().into_bytes().to_vec()
            };
            let h1 = mod_l(&hmac_sha1(token), l64);
            let mut h2 = mod_l(&hmac_md5(token), l64);
            if *non_singular {
                let mut i: u32 = 0;
                while h2 == 0 {
                    let mut m = token.to_vec();
                    let c = char::from_u32(i).unwrap_or('\u{fffd}');
                    m.extend_from_slice(c.to_string().as_bytes());
                    h2 = mod_l(&hmac_md5(&m), l64);
                    i += 1;
                }
            }
            out.extend((0..k as u64).map(|i| ((h1 + i * h2) % l64) as usize));
        }
    }
}

/// What [`ClkhashEncoder::encode_with`] keeps from record to record (one per thread): the bits
/// of every token already hashed (per field, a map from (k, token bytes) to its bits in one
/// shared list: OR-ing a token's `l` bits as whole words is cheaper than setting its 15-30
/// bits one by one). It holds keyed hash outputs of identifier fragments, so it lives in
/// memory only and is never written anywhere. A cache filled by one encoder is emptied when
/// another one uses it; its `Debug` form shows sizes, never the bits.
#[derive(Default)]
pub struct TokenCache {
    owner: u64,
    /// Per field: tokens whose key packs into 16 bytes (almost all n-grams), then the rest.
    short: Vec<rustc_hash::FxHashMap<u128, u32>>,
    fields: Vec<rustc_hash::FxHashMap<Vec<u8>, u32>>,
    token_bits: Vec<u64>,
    key: Vec<u8>,
    fresh: Vec<usize>,
    /// Words of token bits kept at most; 0 for [`TokenCache::MAX_TOKEN_WORDS`].
    limit: usize,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tokens: usize = self.short.iter().map(|m| m.len()).sum::<usize>()
            + self.fields.iter().map(|m| m.len()).sum::<usize>();
        f.debug_struct("TokenCache")
            .field("tokens", &tokens)
            .field("words", &self.token_bits.len())
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// At most this many words of cached token bits (64 MiB) per cache.
    const MAX_TOKEN_WORDS: usize = 8 << 20;

    fn limit(&self) -> usize {
        match self.limit {
            0 => Self::MAX_TOKEN_WORDS,
            n => n,
        }
    }
}

/// A clkhash encoder: a schema with its derived keys.
#[derive(Debug, Clone)]
pub struct ClkhashEncoder {
    schema: ClkhashSchema,
    keys: Vec<FieldKeys>,
    /// Names this encoder's keys for [`TokenCache`] (unique in the process; clones share it).
    id: u64,
}

impl ClkhashEncoder {
    /// Derives the keys for `secret`.
    pub fn new(schema: ClkhashSchema, secret: &[u8]) -> ClkhashEncoder {
        let keys = schema
            .keys(secret)
            .into_iter()
            .zip(&schema.fields)
            .map(|(keys, field)| {
                let max_k = match field.hashing.as_ref().map(|h| (&h.hash, &h.strategy)) {
                    Some((HashType::Blake, Strategy::PerToken(k) | Strategy::PerFeature(k))) => *k,
                    _ => 0,
                };
                let blake = if (1..=64).contains(&keys[0].len()) {
                    (0..max_k.div_ceil(32))
                        .map(|j| keyed_blake(&keys[0], j))
                        .collect()
                } else {
                    Vec::new()
                };
                FieldKeys { keys, blake }
            })
            .collect();
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ClkhashEncoder { schema, keys, id }
    }

    /// The schema.
    pub fn schema(&self) -> &ClkhashSchema {
        &self.schema
    }

    /// The CLK of one record (one value per schema field, in order), as clkhash's bytes; or
    /// the first invalid field (its index) and why.
    pub fn encode(&self, record: &[&str]) -> std::result::Result<Vec<u8>, (usize, Invalid)> {
        self.encode_with(record, &mut TokenCache::default())
    }

    /// [`ClkhashEncoder::encode`] with a [`TokenCache`] kept from record to record (one per
    /// thread): a token's positions depend only on its field, its bytes and its `k`, and
    /// names, dates and postcodes are made of a few thousand distinct n-grams, so most tokens
    /// skip their BLAKE2b or HMAC entirely. Every value is still validated. The bits are the same with or without the cache (`tests/clkhash.rs`).
    pub fn encode_with(
        &self,
        record: &[&str],
        cache: &mut TokenCache,
    ) -> std::result::Result<Vec<u8>, (usize, Invalid)> {
        let hash_l = self.schema.l << self.schema.xor_folds;
        // Bit p is bit 63 − p mod 64 of word p / 64, so that big-endian words are clkhash's
        // (bitarray's) bytes.
        let n_words = hash_l.div_ceil(64);
        let mut words = vec![0u64; n_words];
        let (mut chars, mut buf) = (Vec::<char>::new(), String::new());
        if cache.owner != self.id {
            *cache = TokenCache {
                owner: self.id,
                limit: cache.limit,
                ..TokenCache::default()
            };
        }
        let limit = cache.limit();
        if cache.fields.len() < self.schema.fields.len() {
            cache
                .fields
                .resize_with(self.schema.fields.len(), Default::default);
            cache
                .short
                .resize_with(self.schema.fields.len(), Default::default);
        }
        let TokenCache {
            short,
            fields,
            token_bits,
            key,
            fresh,
            ..
        } = cache;
        for (i, (field, value)) in self.schema.fields.iter().zip(record).enumerate() {
            let Some(h) = &field.hashing else { continue };
            let formatted = format_value(field, value).map_err(|e| (i, e))?;
            let (seen_short, seen) = (&mut short[i], &mut fields[i]);
            let mut hash = |t: &str, k: usize| {
                let bytes = h.encoding.encode(t);
                // Short keys (k < 2¹⁶, at most 13 token bytes: n-grams, digits) pack into one
                // integer: [k: 2 bytes][length: 1][bytes], no allocation and no memcmp.
                // Built by shifts, not through a byte array: a copy into memory read back as
                // one wide integer stalls store forwarding.
                let packed = (k < 1 << 16 && bytes.len() <= 13).then(|| {
                    let head = k as u128 | (bytes.len() as u128) << 16;
                    bytes
                        .iter()
                        .enumerate()
                        .fold(head, |v, (i, &b)| v | (b as u128) << (24 + 8 * i))
                });
                let found = match packed {
                    Some(p) => seen_short.get(&p).copied(),
                    None => {
                        // The long key: k (eight bytes), then the token bytes.
                        key.clear();
                        key.extend_from_slice(&(k as u64).to_le_bytes());
                        key.extend_from_slice(&bytes);
                        seen.get(key.as_slice()).copied()
                    }
                };
                let at = match found {
                    Some(at) => at as usize,
                    None => {
                        fresh.clear();
                        indices(&h.hash, &self.keys[i], &bytes, k, hash_l, fresh);
                        let at = token_bits.len();
                        token_bits.resize(at + n_words, 0);
                        for &p in fresh.iter() {
                            token_bits[at + (p >> 6)] |= 1 << (63 - (p & 63));
                        }
                        // Bounded: past the cap, new tokens are hashed every time.
                        if token_bits.len() > limit {
                            for (w, t) in words.iter_mut().zip(&token_bits[at..]) {
                                *w |= t;
                            }
                            token_bits.truncate(at);
                            return;
                        }
                        match packed {
                            Some(p) => seen_short.insert(p, at as u32),
                            None => seen.insert(key.clone(), at as u32),
                        };
                        at
                    }
                };
                for (w, t) in words.iter_mut().zip(&token_bits[at..at + n_words]) {
                    *w |= t;
                }
            };
            match &h.comparison {
                // n-grams built in one reused buffer (the same tokens as [`tokenize`]).
                Comparison::Ngram { n, positional } => {
                    let ks = h.strategy.ks(ngram_chars(&formatted, *n, &mut chars));
                    for (t, &k) in ks.iter().enumerate() {
                        ngram_at(&chars, *n, *positional, t, &mut buf);
                        hash(&buf, k);
                    }
                }
                c => {
                    let tokens = tokenize(c, &formatted);
                    let ks = h.strategy.ks(tokens.len());
                    for (t, &k) in tokens.iter().zip(&ks) {
                        hash(t, k);
                    }
                }
            }
        }
        let mut len = hash_l;
        for _ in 0..self.schema.xor_folds {
            let half = len / 2;
            if half.is_multiple_of(64) {
                let (a, b) = words.split_at(half / 64);
                words = a.iter().zip(b).map(|(x, y)| x ^ y).collect();
            } else {
                let bit = |w: &[u64], p: usize| (w[p >> 6] >> (63 - (p & 63))) & 1;
                let mut folded = vec![0u64; half.div_ceil(64)];
                for p in 0..half {
                    if bit(&words, p) ^ bit(&words, p + half) == 1 {
                        folded[p >> 6] |= 1 << (63 - (p & 63));
                    }
                }
                words = folded;
            }
            len = half;
        }
        let mut out: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        out.truncate(len.div_ceil(8));
        Ok(out)
    }
}

/// What [`encode_file`] did.
#[derive(Debug, Clone, Default)]
pub struct EncodeFileSummary {
    /// Records encoded.
    pub records: usize,
    /// Seconds spent encoding (reading and writing excluded).
    pub encode_seconds: f64,
}

/// Encodes a CSV file whose header names the schema's fields in order (as clkhash's
/// `generate_clk_from_csv` expects) and writes the CLKs in clkhash's JSON format, or, when `out`
/// ends in `.csv`, as a CSV with one base64 `clk` column. Any invalid value fails the job (as
/// in clkhash), naming the row and the field, never the value. Output is written atomically.
pub fn encode_file(
    schema: ClkhashSchema,
    secret: &[u8],
    input: &Path,
    out: &Path,
) -> Result<EncodeFileSummary> {
    use rayon::prelude::*;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(input)
        .map_err(|e| Error::input(input, format!("cannot read CSV ({})", csv_position(&e))))?;
    let header = reader
        .headers()
        .map_err(|e| {
            Error::input(
                input,
                format!("cannot read the header ({})", csv_position(&e)),
            )
        })?
        .clone();
    let names: Vec<&str> = schema
        .fields
        .iter()
        .map(|f| f.identifier.as_str())
        .collect();
    if header.len() != names.len() || header.iter().zip(&names).any(|(h, n)| h.trim() != *n) {
        return Err(Error::input(
            input,
            format!(
                "the header must name the schema's {} fields in order ({}), as clkhash requires",
                names.len(),
                names.join(", ")
            ),
        ));
    }
    let mut rows: Vec<csv::StringRecord> = Vec::new();
    for (i, r) in reader.records().enumerate() {
        let r =
            r.map_err(|e| Error::input(input, format!("row {}: {}", i + 1, csv_position(&e))))?;
        if r.len() != names.len() {
            return Err(Error::input(
                input,
                format!(
                    "row {}: {} fields where the schema has {}",
                    i + 1,
                    r.len(),
                    names.len()
                ),
            ));
        }
        rows.push(r);
    }
    let encoder = ClkhashEncoder::new(schema, secret);
    let t = std::time::Instant::now();
    // One cache per worker, found by the worker's index, warm across the whole file.
    let caches: Vec<std::sync::Mutex<TokenCache>> = (0..rayon::current_num_threads())
        .map(|_| std::sync::Mutex::new(TokenCache::default()))
        .collect();
    let clks: Vec<Vec<u8>> = rows
        .par_iter()
        .enumerate()
        .map(|(i, r)| {
            let values: Vec<&str> = r.iter().collect();
            let worker = rayon::current_thread_index().unwrap_or(0) % caches.len();
            let mut cache = caches[worker]
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            encoder
                .encode_with(&values, &mut cache)
                .map_err(|(f, why)| {
                    Error::input(
                        input,
                        format!(
                            "row {}: field {}: {}",
                            i + 1,
                            encoder.schema.fields[f].identifier,
                            why.reason()
                        ),
                    )
                })
        })
        .collect::<Result<_>>()?;
    let encode_seconds = t.elapsed().as_secs_f64();
    let text = if out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        let mut s = String::from("clk\n");
        for c in &clks {
            s.push_str(&base64::engine::general_purpose::STANDARD.encode(c));
            s.push('\n');
        }
        s
    } else {
        clks_to_json(&clks) + "\n"
    };
    crate::io::write_atomic(out, text.as_bytes())?;
    Ok(EncodeFileSummary {
        records: clks.len(),
        encode_seconds,
    })
}

/// Writes the CLKs of a crosswalk encodings file (main CLKs, rows in file order) in clkhash's
/// JSON format, or CSV for a `.csv` name; returns how many. Atomic.
pub fn export_clks(input: &Path, out: &Path) -> Result<usize> {
    let enc = crate::io::encodings::read(input)?;
    let width = enc.meta.clk_bits / 8;
    let clks: Vec<Vec<u8>> = enc
        .clks
        .chunks_exact(width.max(1))
        .map(<[u8]>::to_vec)
        .collect();
    crate::io::write_atomic(out, clks_text(&clks, out).as_bytes())?;
    Ok(clks.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn schemas_asking_for_absurd_sizes_are_refused_not_allocated() {
        // Found by the clkhash_schema fuzz target: a v1 k of 1e117 became a bitsPerToken of
        // i64::MAX and the encoder tried to allocate that many positions.
        let base = |l: &str, k: &str, folds: &str| {
            serde_json::json!({
                "version": 1,
                "clkConfig": {"l": serde_json::from_str::<Value>(l).unwrap(),
                              "k": serde_json::from_str::<Value>(k).unwrap(),
                              "xor_folds": serde_json::from_str::<Value>(folds).unwrap(),
                              "hash": {"type": "doubleHash"},
                              "kdf": {"type": "HKDF", "hash": "SHA256", "keySize": 64}},
                "features": [{"identifier": "given", "format": {"type": "string", "encoding": "utf-8"},
                              "hashing": {"ngram": 2, "weight": 1.25}}]
            })
        };
        let p = Path::new("s.json");
        assert!(ClkhashSchema::from_json(base("1024", "20", "0"), p).is_ok());
        // A value whose rounding overflows i128 gives no tokens (it panicked in debug builds).
        let numeric = Comparison::Numeric {
            distance_interval: 3,
            resolution: 1,
            fractional_precision: 0,
        };
        let t = tokenize(&numeric, "-85070591730234615865843651857942052864");
        assert!(t.is_empty(), "{t:?}");
        let mut huge_n = base("1024", "20", "0");
        huge_n["features"][0]["hashing"]["ngram"] = 1_500_000_000u64.into();
        assert_eq!(
            ClkhashSchema::from_json(huge_n, p).unwrap_err().exit_code(),
            3
        );
        for (l, k, folds) in [
            ("1024", "1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111120", "0"),
            ("1099511627776", "20", "0"),
            ("1024", "20", "70"),
        ] {
            let err = ClkhashSchema::from_json(base(l, k, folds), p).unwrap_err();
            assert_eq!(err.exit_code(), 3, "{err}");
        }
    }

    use super::*;

    /// A cache that fills up (a limit of a few tokens), one emptied by another encoder's use,
    /// and no cache give the same bits.
    #[test]
    fn token_cache_changes_no_bit() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clkhash/schemas/febrl_v3.json");
        let schema = ClkhashSchema::from_file(&path).unwrap();
        let a = ClkhashEncoder::new(schema.clone(), b"one secret");
        let b = ClkhashEncoder::new(schema, b"another secret");
        let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clkhash/febrl_v3.csv");
        let mut reader = csv::Reader::from_path(csv).unwrap();
        let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        let mut small = TokenCache {
            limit: 64,
            ..TokenCache::default()
        };
        let mut shared = TokenCache::default();
        for r in records.iter().take(100) {
            let values: Vec<&str> = r.iter().collect();
            let cold = a.encode(&values).unwrap();
            assert_eq!(a.encode_with(&values, &mut small).unwrap(), cold);
            assert!(small.token_bits.len() <= 64);
            assert!(!format!("{small:?}").contains(&format!("{:?}", small.token_bits)));
            // The shared cache alternates between two encoders' keys.
            assert_eq!(a.encode_with(&values, &mut shared).unwrap(), cold);
            assert_eq!(
                b.encode_with(&values, &mut shared).unwrap(),
                b.encode(&values).unwrap()
            );
        }
    }

    #[test]
    fn tokenisers_follow_clkhash() {
        let ng = Comparison::Ngram {
            n: 2,
            positional: false,
        };
        assert_eq!(tokenize(&ng, "ab"), vec![" a", "ab", "b "]);
        let pos = Comparison::Ngram {
            n: 2,
            positional: true,
        };
        assert_eq!(tokenize(&pos, "ab"), vec!["1  a", "2 ab", "3 b "]);
        assert!(tokenize(&ng, "").is_empty());
        // clkhash's docstring example: threshold 8, resolution 2 -> x = 25 gives 88..120.
        let num = Comparison::Numeric {
            distance_interval: 8,
            resolution: 2,
            fractional_precision: 0,
        };
        assert_eq!(tokenize(&num, "25"), vec!["88", "96", "104", "112", "120"]);
        assert_eq!(Strategy::PerFeature(10).ks(3), vec![4, 3, 3]);
        assert_eq!(py_int(" +1_000 "), Some(1000));
        assert_eq!(py_int("1__0"), None);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
    }
}
