//! A plain, slow reference encoder: the algorithm of [`super`] written as directly as possible,
//! with its own tokeniser, no cache and no reused buffers. Tests check the fast encoder against
//! it; it is also the specification's executable form (docs/encoding.md).

use crate::clk::Clk;
use crate::keys::SecretKey;
use crate::normalize::Identifiers;
use crate::schema::{LinkageSchema, Part, Tokens};

/// The tokens of one canonical value, as strings.
pub fn tokens(kind: Tokens, n: usize, padded: bool, value: &str) -> Vec<String> {
    match kind {
        Tokens::Exact => vec![value.to_string()],
        Tokens::Ngrams => {
            let mut out = Vec::new();
            for word in value.split(' ').filter(|w| !w.is_empty()) {
                let w: Vec<char> = if padded {
                    format!("_{word}_").chars().collect()
                } else {
                    word.chars().collect()
                };
                if w.len() <= n {
                    out.push(w.iter().collect());
                } else {
                    for i in 0..=w.len() - n {
                        out.push(w[i..i + n].iter().collect());
                    }
                }
            }
            out
        }
        Tokens::Date if crate::normalize::is_birth_years(value) => {
            value.split('|').map(|y| format!("Y{y}")).collect()
        }
        Tokens::Date if value.len() == 8 => {
            let (y, m, d) = (&value[..4], &value[4..6], &value[6..]);
            vec![
                format!("Y{y}"),
                format!("M{m}"),
                format!("D{d}"),
                format!("N{m}"),
                format!("N{d}"),
                format!("F{value}"),
            ]
        }
        Tokens::Phone | Tokens::PhoneLocal if value.len() == 10 => {
            let c: Vec<char> = value.chars().collect();
            let mut out = Vec::new();
            if kind == Tokens::Phone && c[..3].iter().all(|x| x.is_ascii_digit()) {
                out.push(format!("A{}", &value[..3]));
            }
            for i in 0..6 {
                let (a, b) = (c[3 + i], c[4 + i]);
                if a.is_ascii_digit() && b.is_ascii_digit() {
                    out.push(format!("{i}{a}{b}"));
                }
            }
            out.push(format!("L{}", &value[6..]));
            out
        }
        Tokens::Date | Tokens::Phone | Tokens::PhoneLocal => vec![value.to_string()],
    }
}

/// Encodes `ids` under `schema` and `key` the slow, obvious way.
pub fn encode(schema: &LinkageSchema, key: &SecretKey, ids: &Identifiers) -> Clk {
    encode_under(schema, &key.clk_key(), ids)
}

/// Encodes the part `part` of `ids` the slow, obvious way: the part's schema under the part's
/// key; `None` when the schema writes no such part or `ids` has none of its fields.
pub fn encode_part(
    schema: &LinkageSchema,
    key: &SecretKey,
    part: Part,
    ids: &Identifiers,
) -> Option<Clk> {
    let sub = schema.part_schema(part)?;
    if sub.fields.iter().all(|f| ids.get(f.field).is_none()) {
        return None;
    }
    // The given name at the birth date needs a date (not the birth years of an age).
    if !part.needs().is_empty() && crate::schema::Salt::BirthDate.value(ids).is_empty() {
        return None;
    }
    // ... and reads nicknames as full given names.
    let mut read = ids.clone();
    if part == Part::GivenDob {
        crate::normalize::nicknames::read_nicknames(&mut read);
    }
    let ids = &read;
    Some(encode_under(
        &sub,
        &super::part_clk_key(&key.clk_key(), part),
        ids,
    ))
    .filter(|c| c.count_ones() > 0)
}

fn encode_under(schema: &LinkageSchema, clk_key: &[u8; 32], ids: &Identifiers) -> Clk {
    let clk_key = *clk_key;
    let bits = schema.clk.bits;
    let mut clk = Clk::zeros(bits);
    for spec in &schema.fields {
        let Some(value) = ids.get(spec.field) else {
            continue;
        };
        let mut ns_key = super::namespace_key(&clk_key, spec.namespace());
        // Salted by the birth date: unsalted positions, relabelled by the date's permutation.
        let mut perm: Option<Vec<u16>> = None;
        match spec.salt {
            Some(crate::schema::Salt::BirthDate) => {
                let date = crate::schema::Salt::BirthDate.value(ids);
                perm = Some(super::date_permutation(&ns_key, date, bits));
            }
            Some(salt) => ns_key = super::salted_key(&ns_key, salt.value(ids)),
            None => {}
        }
        let relabel = |p: usize| perm.as_ref().map_or(p, |perm| perm[p] as usize);
        for token in tokens(spec.tokens, spec.n, spec.padded, value) {
            let mut xof = blake3::Hasher::new_keyed(&ns_key)
                .update(token.as_bytes())
                .finalize_xof();
            for _ in 0..spec.bits_per_token {
                let mut word = [0u8; 4];
                xof.fill(&mut word);
                clk.set(relabel((u32::from_le_bytes(word) as usize) % bits));
            }
        }
    }
    if schema.clk.hardening == "xor-fold" {
        clk.xor_fold()
    } else if let Some(p) = schema.clk.blip() {
        let (blip_key, threshold) = super::blip_params(&clk_key, p);
        super::blip(&clk, &blip_key, threshold)
    } else if let Some(t) = schema.clk.diffusion() {
        super::diffuse_reference(&clk, &super::diffusion_taps(&clk_key, bits, t), t)
    } else {
        clk
    }
}
