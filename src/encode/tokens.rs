//! Tokenisers: canonical field values to the byte strings that are hashed into the CLK.
//!
//! Tokens are emitted through a callback into one reused buffer, so encoding allocates nothing
//! per token. docs/encoding.md lists the tokens of each kind with examples.

use crate::schema::Tokens;

/// Calls `emit` once per token of `value` under tokenisation `kind`.
///
/// `value` is a canonical value from [`crate::normalize`] (upper-case ASCII words, `YYYYMMDD`
/// dates, 10-character phones). `buf` is scratch space reused between calls.
pub fn for_each_token(
    kind: Tokens,
    n: usize,
    padded: bool,
    value: &str,
    buf: &mut Vec<u8>,
    emit: &mut dyn FnMut(&[u8]),
) {
    let v = value.as_bytes();
    match kind {
        Tokens::Exact => emit(v),
        Tokens::Ngrams => {
            for word in v.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
                buf.clear();
                if padded {
                    buf.push(b'_');
                }
                buf.extend_from_slice(word);
                if padded {
                    buf.push(b'_');
                }
                if buf.len() <= n {
                    emit(buf);
                } else {
                    for gram in buf.windows(n) {
                        emit(gram);
                    }
                }
            }
        }
        Tokens::Date => {
            // Birth years from an age (`YYYY|YYYY`, [`crate::normalize::birth_years`]): the
            // year tokens a birth date in either year would have.
            if let Some((a, b)) = crate::normalize::split_birth_years(v) {
                for y in [a, b] {
                    buf.clear();
                    buf.push(b'Y');
                    buf.extend_from_slice(y);
                    emit(buf);
                }
                return;
            }
            if v.len() != 8 {
                emit(v);
                return;
            }
            let (y, m, d) = (&v[..4], &v[4..6], &v[6..8]);
            let mut tok = |tag: u8, part: &[u8], buf: &mut Vec<u8>| {
                buf.clear();
                buf.push(tag);
                buf.extend_from_slice(part);
                emit(buf);
            };
            tok(b'Y', y, buf);
            tok(b'M', m, buf);
            tok(b'D', d, buf);
            // Month and day as numbers regardless of role: survives a day/month swap.
            tok(b'N', m, buf);
            tok(b'N', d, buf);
            tok(b'F', v, buf);
        }
        Tokens::Phone | Tokens::PhoneLocal => {
            if v.len() != 10 {
                emit(v);
                return;
            }
            if kind == Tokens::Phone && v[..3].iter().all(u8::is_ascii_digit) {
                buf.clear();
                buf.push(b'A');
                buf.extend_from_slice(&v[..3]);
                emit(buf);
            }
            let local = &v[3..];
            for (i, pair) in local.windows(2).enumerate() {
                if pair.iter().all(u8::is_ascii_digit) {
                    buf.clear();
                    buf.push(b'0' + i as u8);
                    buf.extend_from_slice(pair);
                    emit(buf);
                }
            }
            buf.clear();
            buf.push(b'L');
            buf.extend_from_slice(&v[6..]);
            emit(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(kind: Tokens, n: usize, padded: bool, value: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for_each_token(kind, n, padded, value, &mut buf, &mut |t| {
            out.push(String::from_utf8(t.to_vec()).unwrap())
        });
        out
    }

    #[test]
    fn padded_bigrams_per_word() {
        assert_eq!(
            tokens(Tokens::Ngrams, 2, true, "AL BO"),
            ["_A", "AL", "L_", "_B", "BO", "O_"]
        );
        assert_eq!(tokens(Tokens::Ngrams, 2, false, "J"), ["J"]);
        assert_eq!(tokens(Tokens::Ngrams, 3, false, "ANA"), ["ANA"]);
    }

    #[test]
    fn date_tokens_survive_a_swap() {
        let a = tokens(Tokens::Date, 0, false, "19900517");
        assert_eq!(a, ["Y1990", "M05", "D17", "N05", "N17", "F19900517"]);
        let b = tokens(Tokens::Date, 0, false, "19901705");
        let shared = a.iter().filter(|t| b.contains(t)).count();
        assert_eq!(shared, 3);
    }

    #[test]
    fn birth_years_give_the_year_tokens_of_a_date() {
        assert_eq!(
            tokens(Tokens::Date, 0, false, "2006|2007"),
            ["Y2006", "Y2007"]
        );
        let date = tokens(Tokens::Date, 0, false, "20070412");
        assert!(date.contains(&"Y2007".to_string()));
        // Not the form: one token, as any other odd value.
        assert_eq!(tokens(Tokens::Date, 0, false, "2006|07"), ["2006|07"]);
    }

    #[test]
    fn phone_tokens() {
        assert_eq!(
            tokens(Tokens::Phone, 0, false, "8605551234"),
            ["A860", "055", "155", "251", "312", "423", "534", "L1234"]
        );
        assert_eq!(
            tokens(Tokens::Phone, 0, false, "??????1234"),
            ["312", "423", "534", "L1234"]
        );
        // Without the area code, a 7-digit number has its 10-digit form's tokens.
        let local = tokens(Tokens::PhoneLocal, 0, false, "8605551234");
        assert_eq!(local, ["055", "155", "251", "312", "423", "534", "L1234"]);
        assert_eq!(tokens(Tokens::PhoneLocal, 0, false, "???5551234"), local);
        assert_ne!(
            tokens(Tokens::Phone, 0, false, "???5551234"),
            tokens(Tokens::Phone, 0, false, "8605551234")
        );
    }
}
