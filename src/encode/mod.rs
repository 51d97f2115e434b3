//! Encoding: normalised identifiers to a keyed record-level CLK, and record pseudonyms.
//!
//! **Random hashing.** Each token's `k` bit positions are read from a keyed BLAKE3
//! extendable-output hash of the token: `XOF(key = namespace key, input = token)`, consumed as
//! little-endian `u32` words, each reduced modulo the filter length. Positions are independent
//! pseudo-random values, unlike double hashing (`h1 + i·h2`), whose arithmetic structure the
//! attacks of Niedermeyer et al. (2014) and Kroll and Steinmetzer (2015) exploit. The namespace
//! key is `BLAKE3-keyed(clk sub-key, "namespace:" + name)`, the clk sub-key
//! `BLAKE3-derive_key("crosswalk 2026-11 clk bit positions v1", secret)` ([`crate::keys`]).
//! A field with `k` bits per token uses the first `k` positions of the stream, so the same token
//! in two fields of one namespace with different `k` shares `min(k)` positions.
//!
//! **Record pseudonyms.** `record_key = hex(HMAC-SHA256(record sub-key, agency ‖ 0x00 ‖ local
//! id)[..16])`: a MAC is the standard construction for keyed pseudonyms, and only holders of the
//! key can map a pseudonym back to a local id (the agency keeps a local map for convenience).
//!
//! [`reference`](mod@reference) holds a deliberately plain implementation of the same algorithm; tests check
//! that the fast path (token cache, reused buffers) agrees with it bit for bit.
//!
//! # Example
//!
//! ```
//! use crosswalk::encode::{Encoder, Scratch};
//! use crosswalk::keys::SecretKey;
//! use crosswalk::normalize::{name, Identifiers};
//! use crosswalk::schema::{Field, LinkageSchema};
//!
//! let enc = Encoder::new(&LinkageSchema::default_schema(), &SecretKey::from_bytes([1; 32]));
//! let mut scratch = Scratch::default();
//! let mut a = Identifiers::default();
//! a.set(Field::GivenName, name("Jennifer").unwrap());
//! a.set(Field::FamilyName, name("Rodríguez").unwrap());
//! let mut b = a.clone();
//! b.set(Field::FamilyName, name("Rodriguez-Perez").unwrap());
//! let (ca, cb) = (enc.encode(&a, &mut scratch), enc.encode(&b, &mut scratch));
//! assert_eq!(ca.len_bits(), 1024);
//! assert!(ca.dice(&cb) > 0.7);
//! ```

pub mod reference;
pub mod tokens;

use hmac::{KeyInit, Mac};
use rustc_hash::FxHashMap;

use crate::clk::Clk;
use crate::keys::SecretKey;
use crate::normalize::Identifiers;
use crate::schema::{Field, LinkageSchema, Part, Tokens};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Entries per namespace cache before it is cleared (bounds memory on adversarial input).
const CACHE_LIMIT: usize = 1 << 18;

#[derive(Debug, Clone)]
struct FieldPlan {
    field: Field,
    tokens: Tokens,
    n: usize,
    padded: bool,
    k: usize,
    ns: usize,
    salt: Option<crate::schema::Salt>,
}

/// A CLK encoder for one schema and key. Cheap to share across threads (`&Encoder` is `Sync`);
/// each thread brings its own [`Scratch`].
pub struct Encoder {
    bits: usize,
    fold: bool,
    plans: Vec<FieldPlan>,
    ns_keys: Vec<[u8; 32]>,
    ns_max_k: Vec<usize>,
    record_key: [u8; 32],
    /// BLIP's key and threshold, when the schema asks for it.
    blip: Option<([u8; 32], u32)>,
    /// Diffusion's wiring, when the schema asks for it.
    diffusion: Option<Diffusion>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("bits", &self.bits)
            .field("fields", &self.plans.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for k in &mut self.ns_keys {
            k.zeroize();
        }
        self.record_key.zeroize();
        if let Some((k, _)) = &mut self.blip {
            k.zeroize();
        }
        if let Some(d) = &mut self.diffusion {
            d.rows.zeroize();
        }
    }
}

/// Positions kept inline in a cache entry (namespaces with a larger `k` are not cached).
const INLINE_K: usize = 24;

/// Packed token (see [`pack`]) → the first `max_k` bit positions of the namespace, inline so
/// that a lookup touches one cache line.
type TokenCache = FxHashMap<u128, [u16; INLINE_K]>;

/// Packs a token of at most 15 bytes, with its length, into one integer: a cache key that
/// hashes and compares in a few instructions. Longer tokens are not cached.
#[inline]
fn pack(t: &[u8]) -> Option<u128> {
    if t.len() > 15 {
        return None;
    }
    // Built in registers: copying the bytes to a stack buffer and reloading it as one wide
    // value stalls on store-to-load forwarding (measured: a fifth of the encoder's time).
    let mut v = (t.len() as u128) << 120;
    for (i, &b) in t.iter().enumerate() {
        v |= (b as u128) << (8 * i);
    }
    Some(v)
}

/// Per-thread scratch space: a token → positions cache per namespace and reused buffers.
/// Tokens repeat heavily (a few thousand distinct bigrams), so the cache removes most hashing.
#[derive(Default)]
pub struct Scratch {
    caches: Vec<TokenCache>,
    token: Vec<u8>,
    /// Tokens salted by the birth date ([`date_permutation`]), per namespace key (encoders
    /// that share a key, such as the two names-at-the-birth-date parts, share these).
    dated: Vec<DatedCache>,
}

/// What [`Scratch`] keeps for one namespace key of tokens salted by the birth date: each
/// token's first [`INLINE_K`] unsalted positions (whatever `k` the encoder asked for first,
/// so that encoders of other `k` read them alike), and each date's permutation.
struct DatedCache {
    ns_key: [u8; 32],
    bits: usize,
    tokens: TokenCache,
    dates: FxHashMap<Box<str>, Box<[u16]>>,
}

impl DatedCache {
    /// Wipes and forgets the dates' permutations (derived from the key, as diffusion's wiring).
    fn clear_dates(&mut self) {
        use zeroize::Zeroize;
        for perm in self.dates.values_mut() {
            perm.zeroize();
        }
        self.dates.clear();
    }
}

impl Drop for DatedCache {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.ns_key.zeroize();
        self.clear_dates();
    }
}

/// Bytes of birth dates' permutations a [`Scratch`] keeps per namespace key (2 KB each at 1,024
/// bits: 8,192 dates); more clear the cache. Minors and young adults were born on a few
/// thousand days.
const DATE_CACHE_BYTES: usize = 16 << 20;

/// The keyed permutation of a filter's `bits` positions that salts tokens by the birth date
/// `date` ([`crate::schema::Salt::BirthDate`]): Fisher-Yates over `0..bits`, each swap drawn
/// as a little-endian `u32` of the XOF keyed with [`salted_key`]`(ns_key, date)`, modulo the
/// positions left. A token's positions under the date are its unsalted positions relabelled by
/// this permutation: within one date tokens meet as they would unsalted, across dates they are
/// unrelated without the key; and the hashing is done once per token and once per date, not
/// once per token and date (the salted parts otherwise halved the encoder's speed).
pub(crate) fn date_permutation(ns_key: &[u8; 32], date: &str, bits: usize) -> Vec<u16> {
    let mut key = salted_key(ns_key, date);
    let mut xof = blake3::Hasher::new_keyed(&key)
        .update(b"permutation")
        .finalize_xof();
    {
        use zeroize::Zeroize;
        key.zeroize();
    }
    let mut perm: Vec<u16> = (0..bits as u32).map(|p| p as u16).collect();
    let mut words = vec![0u8; 4 * bits];
    xof.fill(&mut words);
    for i in (1..bits).rev() {
        let w = &words[4 * i..4 * i + 4];
        let j = (u32::from_le_bytes([w[0], w[1], w[2], w[3]]) % (i as u32 + 1)) as usize;
        perm.swap(i, j);
    }
    perm
}

/// The `k` positions of `token` in a namespace: the keyed XOF read as little-endian `u32`s.
pub(crate) fn token_positions(ns_key: &[u8; 32], token: &[u8], k: usize, bits: usize) -> Vec<u16> {
    let mut bytes = vec![0u8; 4 * k];
    blake3::Hasher::new_keyed(ns_key)
        .update(token)
        .finalize_xof()
        .fill(&mut bytes);
    bytes
        .chunks_exact(4)
        .map(|c| (u32::from_le_bytes([c[0], c[1], c[2], c[3]]) % bits as u32) as u16)
        .collect()
}

/// Hands the first `k` positions of `token` to `set`: from `cache` when the token packs into a
/// key and an entry holds the `cached_k` positions (at least `k`) computed on a miss, else
/// hashed each time. The cache is cleared when full.
fn token_bits(
    cache: &mut TokenCache,
    ns_key: &[u8; 32],
    token: &[u8],
    cached_k: usize,
    k: usize,
    bits: usize,
    mut set: impl FnMut(usize),
) {
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    match pack(token).filter(|_| k <= cached_k && cached_k <= INLINE_K) {
        Some(packed) => {
            let positions = cache.entry(packed).or_insert_with(|| {
                let mut inline = [0u16; INLINE_K];
                inline[..cached_k].copy_from_slice(&token_positions(ns_key, token, cached_k, bits));
                inline
            });
            for &p in &positions[..k] {
                set(p as usize);
            }
        }
        None => {
            for p in token_positions(ns_key, token, k, bits) {
                set(p as usize);
            }
        }
    }
}

/// BLIP (Schnell and Borgs 2016), made deterministic: each bit of `clk` is flipped with
/// probability `threshold / 65536`, decided by a keyed XOF of the CLK's own bytes (two bytes per
/// bit), so the same record gives the same bits at every agency and in every run, and nobody
/// without the key can tell which bits were flipped.
pub(crate) fn blip(clk: &Clk, blip_key: &[u8; 32], threshold: u32) -> Clk {
    let bits = clk.len_bits();
    let mut stream = vec![0u8; 2 * bits];
    blake3::Hasher::new_keyed(blip_key)
        .update(clk.as_bytes())
        .finalize_xof()
        .fill(&mut stream);
    let mut out = clk.clone();
    for (i, pair) in stream.chunks_exact(2).enumerate() {
        if (u16::from_le_bytes([pair[0], pair[1]]) as u32) < threshold {
            out.flip(i);
        }
    }
    out
}

/// Diffusion's taps (after Armknecht, Heng and Schnell 2023): for every output bit `j`, in
/// order, `t` distinct input positions, drawn from the keyed XOF
/// `BLAKE3-keyed(BLAKE3-keyed(clk_key, "hardening:diffusion"), bits ‖ t)` (both as `u32`
/// little-endian) read as little-endian `u32`s modulo `bits`, a repeat of a position already
/// drawn for the same output skipped. Output bit `j` is the XOR of the input bits at
/// `taps[j*t .. (j+1)*t]`. The wiring is keyed: without the key nobody knows which input bits
/// an output bit mixes.
pub(crate) fn diffusion_taps(clk_key: &[u8; 32], bits: usize, t: usize) -> Vec<u16> {
    use zeroize::Zeroize;
    let mut key = *blake3::Hasher::new_keyed(clk_key)
        .update(b"hardening:diffusion")
        .finalize()
        .as_bytes();
    let mut xof = blake3::Hasher::new_keyed(&key)
        .update(&(bits as u32).to_le_bytes())
        .update(&(t as u32).to_le_bytes())
        .finalize_xof();
    key.zeroize();
    let mut taps: Vec<u16> = Vec::with_capacity(bits * t);
    for _ in 0..bits {
        let start = taps.len();
        while taps.len() - start < t {
            let mut word = [0u8; 4];
            xof.fill(&mut word);
            let p = (u32::from_le_bytes(word) % bits as u32) as u16;
            if !taps[start..].contains(&p) {
                taps.push(p);
            }
        }
    }
    taps
}

/// Diffusion's wiring, turned around for speed: for every input bit, the output bits it
/// feeds, as one row of the CLK's length. An output is then the XOR of the rows of the input
/// bits a record sets (a few hundred rows of 16 words for 1,024 bits, which the compiler
/// vectorises), with no branch that depends on the wiring.
///
/// The table is the hardening's whole secret (whoever holds it can undo the mixing): it is
/// never printed (no `Debug`) and is wiped when the encoder is dropped. It takes `l²/8` bytes
/// (128 KiB at 1,024 bits), which is why the schema allows diffusion up to
/// [`crate::schema::MAX_DIFFUSION_BITS`] only.
struct Diffusion {
    /// Words per row (`bits / 64`).
    words: usize,
    /// `rows[i * words..(i + 1) * words]`: the outputs input bit `i` feeds, output bit `j` at
    /// `1 << (63 - j % 64)` of word `j / 64` (the CLK's bit order read as big-endian words).
    rows: Vec<u64>,
    /// The same wiring as byte gathers, where the CPU can run them ([`Gathers`]).
    gathers: Option<Gathers>,
}

/// Diffusion's wiring for AVX-512 VBMI, output-driven: for each block of 64 outputs and each
/// of the `t` taps, the input byte that holds the tap of each output (`VPERMI2B` gathers those
/// 64 bytes from up to 128 input bytes) and the tap's bit in it (`VPTESTMB` turns the 64
/// bytes into 64 bits). The `t` masks XORed are the block's 64 outputs: about 200 vector
/// instructions for 1,024 bits, where the input-driven rows spend a 128-byte row load per set
/// input bit. Lanes are ordered so that the mask's little-endian bytes are the outputs in CLK
/// byte order. Secret like `rows`: wiped on drop, never printed.
struct Gathers {
    taps: usize,
    /// `[block][tap][lane]`: input byte index (0..128).
    index: Vec<u8>,
    /// `[block][tap][lane]`: the tap's bit in that byte (`0x80 >> (p % 8)`).
    bit: Vec<u8>,
}

impl Gathers {
    /// The gathers of `taps` (`t` per output of `bits`), when the CPU has AVX-512 VBMI and the
    /// filter fits two registers (at most 1,024 bits).
    fn new(taps: &[u16], bits: usize, t: usize) -> Option<Gathers> {
        if bits > 1024
            || !bits.is_multiple_of(64)
            || taps.len() != bits * t
            || !Gathers::available()
        {
            return None;
        }
        let mut index = vec![0u8; bits * t];
        let mut bit = vec![0u8; bits * t];
        for (j, out_taps) in taps.chunks_exact(t).enumerate() {
            let (block, within) = (j / 64, j % 64);
            // Output `8q + r` of a block (CLK byte q, bit `0x80 >> r`) sits in lane
            // `8q + 7 - r`: mask bit `8q + 7 - r` is bit `7 - r` of the mask's byte q.
            let lane = (within / 8) * 8 + 7 - within % 8;
            for (k, &p) in out_taps.iter().enumerate() {
                let at = (block * t + k) * 64 + lane;
                index[at] = (p / 8) as u8;
                bit[at] = 0x80 >> (p % 8);
            }
        }
        Some(Gathers {
            taps: t,
            index,
            bit,
        })
    }

    fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vbmi")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// The diffused filter of `input` (`index.len() / taps / 8` bytes).
    fn apply(&self, input: &[u8]) -> Option<Vec<u8>> {
        let bytes = self.index.len() / self.taps / 8;
        if input.len() != bytes {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        {
            use zeroize::Zeroize;
            let mut padded = [0u8; 128];
            padded[..bytes].copy_from_slice(input);
            let mut out = vec![0u8; bytes];
            // SAFETY: a `Gathers` is only built where the CPU has AVX-512 F, BW and VBMI
            // (`Gathers::new`), and the tables hold `taps · 64` bytes per block of 8 output
            // bytes.
            unsafe { gather_avx512(&self.index, &self.bit, self.taps, &padded, &mut out) };
            // The filter before diffusion is what the hardening hides: not left on the stack.
            padded.zeroize();
            Some(out)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            None
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn gather_avx512(index: &[u8], bit: &[u8], t: usize, input: &[u8; 128], out: &mut [u8]) {
    use std::arch::x86_64::*;
    let lo = _mm512_loadu_si512(input.as_ptr().cast());
    let hi = _mm512_loadu_si512(input[64..].as_ptr().cast());
    for (block, chunk) in out.chunks_exact_mut(8).enumerate() {
        let mut mask: u64 = 0;
        for k in 0..t {
            let at = (block * t + k) * 64;
            let (Some(ix), Some(bt)) = (index.get(at..at + 64), bit.get(at..at + 64)) else {
                return;
            };
            let ix = _mm512_loadu_si512(ix.as_ptr().cast());
            let bt = _mm512_loadu_si512(bt.as_ptr().cast());
            let gathered = _mm512_permutex2var_epi8(lo, ix, hi);
            mask ^= _mm512_test_epi8_mask(gathered, bt);
        }
        chunk.copy_from_slice(&mask.to_le_bytes());
    }
}

impl Drop for Gathers {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.index.zeroize();
        self.bit.zeroize();
    }
}

impl Diffusion {
    fn new(taps: &[u16], bits: usize, t: usize) -> Diffusion {
        let words = bits / 64;
        let mut rows = vec![0u64; bits * words];
        for (j, out_taps) in taps.chunks_exact(t).enumerate() {
            for &p in out_taps {
                rows[p as usize * words + j / 64] |= 1u64 << (63 - j % 64);
            }
        }
        Diffusion {
            words,
            rows,
            gathers: Gathers::new(taps, bits, t),
        }
    }

    /// Every output bit: the XOR of its taps' input bits. On CPUs with AVX-512 VBMI, filters
    /// of up to 1,024 bits are diffused by byte gathers ([`Gathers`]); elsewhere through the
    /// input-driven rows, the common lengths (1,024, 512 and 256 bits) by a fixed-width loop
    /// whose accumulator stays in registers ([`diffuse_fixed`]), others by the general loop.
    /// All paths are tested equal to the parity definition.
    fn apply(&self, clk: &Clk) -> Clk {
        self.apply_bytes(clk.as_bytes())
    }

    /// [`Diffusion::apply`] on a filter's bytes.
    fn apply_bytes(&self, bytes: &[u8]) -> Clk {
        if let Some(c) = self
            .gathers
            .as_ref()
            .and_then(|g| g.apply(bytes))
            .and_then(Clk::from_bytes)
        {
            return c;
        }
        self.apply_rows(bytes)
    }

    /// [`Diffusion::apply`] through the input-driven rows (any CPU).
    fn apply_rows(&self, bytes: &[u8]) -> Clk {
        let out: Option<Vec<u8>> = match self.words {
            16 => diffuse_fixed::<16>(&self.rows, bytes).map(|a| words_to_bytes(&a)),
            8 => diffuse_fixed::<8>(&self.rows, bytes).map(|a| words_to_bytes(&a)),
            4 => diffuse_fixed::<4>(&self.rows, bytes).map(|a| words_to_bytes(&a)),
            _ => None,
        };
        match out.and_then(Clk::from_bytes) {
            Some(c) => c,
            None => self.apply_general(bytes),
        }
    }

    /// [`Diffusion::apply`] for any length.
    fn apply_general(&self, bytes: &[u8]) -> Clk {
        let words = self.words;
        let mut acc = vec![0u64; words];
        for (w, chunk) in bytes.chunks_exact(8).enumerate() {
            let mut word = u64::from_be_bytes([
                chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
            ]);
            while word != 0 {
                // Most significant bit first, as the CLK stores them.
                let lead = word.leading_zeros() as usize;
                word &= !(1u64 << (63 - lead));
                let i = w * 64 + lead;
                for (a, r) in acc.iter_mut().zip(&self.rows[i * words..(i + 1) * words]) {
                    *a ^= r;
                }
            }
        }
        Clk::from_bytes(words_to_bytes(&acc)).unwrap_or_else(|| Clk::zeros(words * 64))
    }
}

/// The diffused words of a filter of `W` 64-bit words (`input` holds `8·W` bytes, `rows` the
/// wiring of [`Diffusion`], `64·W` rows of `W` words): the XOR of the rows of the set input
/// bits. `W` is a constant so that the accumulator is a fixed array the compiler keeps in
/// registers and the row XOR is unrolled (the general loop loaded and stored the accumulator
/// for every set bit). `None` when the lengths do not fit.
#[inline]
fn diffuse_fixed<const W: usize>(rows: &[u64], input: &[u8]) -> Option<[u64; W]> {
    if input.len() != 8 * W || rows.len() != 64 * W * W {
        return None;
    }
    let mut acc = [0u64; W];
    for (w, chunk) in input.chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        let mut word = u64::from_be_bytes(b);
        while word != 0 {
            // Most significant bit first, as the CLK stores them.
            let lead = word.leading_zeros() as usize;
            word &= !(1u64 << (63 - lead));
            let i = w * 64 + lead;
            let row: &[u64; W] = rows[i * W..(i + 1) * W].try_into().ok()?;
            for k in 0..W {
                acc[k] ^= row[k];
            }
        }
    }
    Some(acc)
}

/// Words back to the CLK's byte order (big-endian words).
fn words_to_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// Diffusion the slow, obvious way (the reference encoder's and the tests' version): output
/// bit `j` is the parity of the input bits at `taps[j*t .. (j+1)*t]`.
pub(crate) fn diffuse_reference(clk: &Clk, taps: &[u16], t: usize) -> Clk {
    let mut out = Clk::zeros(clk.len_bits());
    for (j, out_taps) in taps.chunks_exact(t).enumerate() {
        if out_taps.iter().filter(|&&p| clk.get(p as usize)).count() % 2 == 1 {
            out.set(j);
        }
    }
    out
}

/// BLIP's key under the clk sub-key, and its flip threshold out of 65,536.
pub(crate) fn blip_params(clk_key: &[u8; 32], p: f64) -> ([u8; 32], u32) {
    let key = *blake3::Hasher::new_keyed(clk_key)
        .update(b"hardening:blip")
        .finalize()
        .as_bytes();
    (key, (p * 65536.0).round() as u32)
}

/// The hashing key of a salted field's tokens: the namespace key keyed again with the salt's
/// value (`BLAKE3-keyed(namespace key, "salt:" + value)`).
pub(crate) fn salted_key(ns_key: &[u8; 32], value: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(ns_key);
    h.update(b"salt:");
    h.update(value.as_bytes());
    *h.finalize().as_bytes()
}

/// The hashing key of namespace `name` under the clk sub-key.
pub(crate) fn namespace_key(clk_key: &[u8; 32], name: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(clk_key);
    h.update(b"namespace:");
    h.update(name.as_bytes());
    *h.finalize().as_bytes()
}

/// The clk sub-key of a part's encoder: `BLAKE3-keyed(clk sub-key, "part:" + name)`, so that a
/// part's tokens set other positions than the record CLK's (a part does not show which of the
/// record CLK's bits its fields set) and its diffusion is wired apart.
pub(crate) fn part_clk_key(clk_key: &[u8; 32], part: Part) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(clk_key);
    h.update(b"part:");
    // The names at the birth date share one key, so that a swapped name meets itself.
    let name = match part {
        Part::FamilyDob => Part::GivenDob.name(),
        _ => part.name(),
    };
    h.update(name.as_bytes());
    *h.finalize().as_bytes()
}

impl Encoder {
    /// Builds an encoder: derives one hashing key per namespace from the secret.
    pub fn new(schema: &LinkageSchema, key: &SecretKey) -> Encoder {
        Encoder::build(schema, key.clk_key(), key)
    }

    /// The encoder of one part of `schema` ([`LinkageSchema::part_schema`]), under the part's
    /// own hashing key; `None` when the schema writes no such part.
    pub fn for_part(schema: &LinkageSchema, key: &SecretKey, part: Part) -> Option<Encoder> {
        let sub = schema.part_schema(part)?;
        let mut clk_key = key.clk_key();
        let part_key = part_clk_key(&clk_key, part);
        {
            use zeroize::Zeroize;
            clk_key.zeroize();
        }
        Some(Encoder::build(&sub, part_key, key))
    }

    fn build(schema: &LinkageSchema, mut clk_key: [u8; 32], key: &SecretKey) -> Encoder {
        let mut ns_names: Vec<String> = Vec::new();
        let mut plans = Vec::new();
        for spec in &schema.fields {
            let ns_name = spec.namespace();
            let ns = match ns_names.iter().position(|n| n == ns_name) {
                Some(i) => i,
                None => {
                    ns_names.push(ns_name.to_string());
                    ns_names.len() - 1
                }
            };
            plans.push(FieldPlan {
                field: spec.field,
                tokens: spec.tokens,
                n: spec.n,
                padded: spec.padded,
                k: spec.bits_per_token,
                ns,
                salt: spec.salt,
            });
        }
        let ns_keys = ns_names
            .iter()
            .map(|n| namespace_key(&clk_key, n))
            .collect();
        let ns_max_k = (0..ns_names.len())
            .map(|i| {
                plans
                    .iter()
                    .filter(|p| p.ns == i)
                    .map(|p| p.k)
                    .max()
                    .unwrap_or(1)
            })
            .collect();
        let encoder = Encoder {
            bits: schema.clk.bits,
            fold: schema.clk.hardening == "xor-fold",
            plans,
            ns_keys,
            ns_max_k,
            record_key: key.record_key_key(),
            blip: schema.clk.blip().map(|p| blip_params(&clk_key, p)),
            diffusion: schema.clk.diffusion().map(|t| {
                use zeroize::Zeroize;
                let mut taps = diffusion_taps(&clk_key, schema.clk.bits, t);
                let d = Diffusion::new(&taps, schema.clk.bits, t);
                taps.zeroize();
                d
            }),
        };
        {
            use zeroize::Zeroize;
            clk_key.zeroize();
        }
        encoder
    }

    /// Length in bits of the CLKs this encoder returns (after hardening).
    pub fn output_bits(&self) -> usize {
        if self.fold {
            self.bits / 2
        } else {
            self.bits
        }
    }

    /// Encodes one record's identifiers. Missing fields add no bits.
    pub fn encode(&self, ids: &Identifiers, scratch: &mut Scratch) -> Clk {
        if scratch.caches.len() < self.ns_keys.len() {
            scratch
                .caches
                .resize_with(self.ns_keys.len(), FxHashMap::default);
        }
        let mut clk = Clk::zeros(self.bits);
        let Scratch {
            caches,
            token,
            dated,
        } = scratch;
        for plan in &self.plans {
            let Some(value) = ids.get(plan.field) else {
                continue;
            };
            let bits = self.bits;
            if plan.salt == Some(crate::schema::Salt::BirthDate) {
                // Salted by the birth date: the unsalted positions, permuted by the date's
                // permutation (cached per date).
                let ns_key = &self.ns_keys[plan.ns];
                let at = match dated
                    .iter()
                    .position(|d| d.ns_key == *ns_key && d.bits == bits)
                {
                    Some(i) => i,
                    None => {
                        dated.push(DatedCache {
                            ns_key: *ns_key,
                            bits,
                            tokens: FxHashMap::default(),
                            dates: FxHashMap::default(),
                        });
                        dated.len() - 1
                    }
                };
                if dated[at].dates.len() >= (DATE_CACHE_BYTES / (2 * bits)).max(64) {
                    dated[at].clear_dates();
                }
                let DatedCache {
                    tokens: tokens_cache,
                    dates,
                    ..
                } = &mut dated[at];
                let date = crate::schema::Salt::BirthDate.value(ids);
                if !dates.contains_key(date) {
                    let perm = date_permutation(ns_key, date, bits).into_boxed_slice();
                    dates.insert(date.into(), perm);
                }
                let Some(perm) = dates.get(date) else {
                    continue;
                };
                tokens::for_each_token(plan.tokens, plan.n, plan.padded, value, token, &mut |t| {
                    token_bits(tokens_cache, ns_key, t, INLINE_K, plan.k, bits, |p| {
                        clk.set(perm[p] as usize)
                    });
                });
                continue;
            }
            if let Some(salt) = plan.salt {
                // Salted tokens: a key per salt value, no cache (the cache is per namespace).
                let key = salted_key(&self.ns_keys[plan.ns], salt.value(ids));
                tokens::for_each_token(plan.tokens, plan.n, plan.padded, value, token, &mut |t| {
                    for p in token_positions(&key, t, plan.k, bits) {
                        clk.set(p as usize);
                    }
                });
                continue;
            }
            let cache = &mut caches[plan.ns];
            let ns_key = &self.ns_keys[plan.ns];
            let max_k = self.ns_max_k[plan.ns];
            tokens::for_each_token(plan.tokens, plan.n, plan.padded, value, token, &mut |t| {
                token_bits(cache, ns_key, t, max_k, plan.k, bits, |p| clk.set(p));
            });
        }
        self.harden(clk)
    }

    /// [`Encoder::harden`] of a filter's bytes, copied only where the hardening keeps them.
    fn harden_bytes(&self, bytes: &[u8]) -> Clk {
        match &self.diffusion {
            Some(d) if !self.fold && self.blip.is_none() => d.apply_bytes(bytes),
            _ => Clk::from_bytes(bytes.to_vec())
                .map(|c| self.harden(c))
                .unwrap_or_else(|| Clk::zeros(self.output_bits())),
        }
    }

    /// The schema's hardening applied to a filter of this encoder's length.
    fn harden(&self, clk: Clk) -> Clk {
        if self.fold {
            clk.xor_fold()
        } else if let Some((key, threshold)) = &self.blip {
            blip(&clk, key, *threshold)
        } else if let Some(d) = &self.diffusion {
            d.apply(&clk)
        } else {
            clk
        }
    }

    /// [`Encoder::encode`] for a part: `None` when the record has none of the fields this
    /// encoder encodes, or when the filter has no bit set (a token whose positions diffusion
    /// happens to cancel), so that a present part always holds evidence and a missing one is
    /// never an empty filter.
    pub fn encode_present(&self, ids: &Identifiers, scratch: &mut Scratch) -> Option<Clk> {
        if self.plans.iter().all(|p| ids.get(p.field).is_none()) {
            return None;
        }
        // A part salted by the birth date (the names at it) needs the date.
        let salt = crate::schema::Salt::BirthDate;
        if self.plans.iter().any(|p| p.salt == Some(salt)) && salt.value(ids).is_empty() {
            return None;
        }
        // The given name at the birth date reads nicknames as full names.
        if self
            .plans
            .iter()
            .any(|p| p.salt == Some(salt) && p.field == Field::GivenName)
            && crate::normalize::nicknames::has_nickname(ids)
        {
            let mut read = ids.clone();
            crate::normalize::nicknames::read_nicknames(&mut read);
            return Some(self.encode(&read, scratch)).filter(|c| c.count_ones() > 0);
        }
        Some(self.encode(ids, scratch)).filter(|c| c.count_ones() > 0)
    }

    /// The record pseudonym of `local_id` at `agency`: 32 hex digits of HMAC-SHA256.
    pub fn record_key(&self, agency: &str, local_id: &str) -> String {
        let mut mac = match HmacSha256::new_from_slice(&self.record_key) {
            Ok(m) => m,
            // HMAC accepts keys of any length; a 32-byte key cannot be refused.
            Err(_) => unreachable!("HMAC accepts any key length"),
        };
        mac.update(agency.as_bytes());
        mac.update(&[0]);
        mac.update(local_id.as_bytes());
        let tag = mac.finalize().into_bytes();
        crate::keys::hex(&tag[..16])
    }
}

/// The part encoders of a schema, one per part it writes ([`LinkageSchema::parts`]): a
/// record's field-level evidence (docs/encoding.md §6).
///
/// ```
/// use crosswalk::encode::{PartEncoders, PartScratch};
/// use crosswalk::keys::SecretKey;
/// use crosswalk::normalize::{name, Identifiers};
/// use crosswalk::schema::{Field, LinkageSchema, Part};
///
/// let schema = LinkageSchema::default_schema(); // it has a [parts] table
/// let parts = PartEncoders::new(&schema, &SecretKey::from_bytes([1; 32]));
/// let mut ids = Identifiers::default();
/// ids.set(Field::GivenName, name("Ana").unwrap());
/// let got = parts.encode(&ids, &mut PartScratch::default());
/// assert_eq!(got.len(), Part::COUNT);
/// assert!(got[Part::Names.index()].is_some());
/// assert!(got[Part::Dob.index()].is_none(), "no birth date: no part, not an empty one");
/// ```
pub struct PartEncoders {
    encoders: Vec<(Part, Encoder)>,
}

impl std::fmt::Debug for PartEncoders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<&str> = self.encoders.iter().map(|(p, _)| p.name()).collect();
        f.debug_struct("PartEncoders")
            .field("parts", &parts)
            .finish()
    }
}

/// Per-thread scratch space of [`PartEncoders`]: one [`Scratch`] per part (token caches are
/// per encoder).
#[derive(Default)]
pub struct PartScratch {
    scratch: Vec<Scratch>,
}

impl PartEncoders {
    /// The encoders of every part `schema` writes (none when it has no `[parts]`).
    pub fn new(schema: &LinkageSchema, key: &SecretKey) -> PartEncoders {
        PartEncoders {
            encoders: schema
                .parts()
                .into_iter()
                .filter_map(|p| Encoder::for_part(schema, key, p).map(|e| (p, e)))
                .collect(),
        }
    }

    /// Whether the schema writes no parts.
    pub fn is_empty(&self) -> bool {
        self.encoders.is_empty()
    }

    /// The parts written and their lengths in bits, in [`Part::ALL`] order.
    pub fn layout(&self) -> Vec<(Part, usize)> {
        self.encoders
            .iter()
            .map(|(p, e)| (*p, e.output_bits()))
            .collect()
    }

    /// Encodes a record's parts, indexed by [`Part::index`]: `None` for a part the schema does
    /// not write or whose fields the record lacks (missing, which the model weighs as no
    /// evidence; an empty filter would look like a disagreement).
    pub fn encode(&self, ids: &Identifiers, scratch: &mut PartScratch) -> Vec<Option<Clk>> {
        if scratch.scratch.len() < self.encoders.len() {
            scratch
                .scratch
                .resize_with(self.encoders.len(), Scratch::default);
        }
        let mut out = vec![None; Part::COUNT];
        for ((part, enc), s) in self.encoders.iter().zip(&mut scratch.scratch) {
            out[part.index()] = enc.encode_present(ids, s);
        }
        out
    }

    /// The names part of an alias (`ids` holding the alias's names): `None` when the schema
    /// writes no names part or the alias has no name.
    pub fn encode_names(&self, ids: &Identifiers, scratch: &mut PartScratch) -> Option<Clk> {
        let i = self.encoders.iter().position(|(p, _)| *p == Part::Names)?;
        if scratch.scratch.len() < self.encoders.len() {
            scratch
                .scratch
                .resize_with(self.encoders.len(), Scratch::default);
        }
        self.encoders[i]
            .1
            .encode_present(ids, &mut scratch.scratch[i])
    }
}

/// A record's CLK and its parts in one pass over its tokens: what [`Encoder::encode`] and
/// [`PartEncoders::encode`] give, byte for byte, at about half the token work. Each token is
/// cut once, and one cache entry holds its positions in the record CLK and in its part, so a
/// record costs one cache look-up per token instead of two (the look-ups' cache misses were the
/// largest share of encoding with parts, docs/measurements/2026-12-07-encode-speed.md).
///
/// ```
/// use crosswalk::encode::{Encoder, PartEncoders, PartScratch, RowEncoder, RowScratch, Scratch};
/// use crosswalk::keys::SecretKey;
/// use crosswalk::normalize::{name, Identifiers};
/// use crosswalk::schema::{Field, LinkageSchema};
///
/// let schema = LinkageSchema::default_schema(); // it has a [parts] table
/// let key = SecretKey::from_bytes([1; 32]);
/// let row = RowEncoder::new(&schema, &key);
/// let mut ids = Identifiers::default();
/// ids.set(Field::GivenName, name("Ana").unwrap());
/// let (clk, parts) = row.encode(&ids, &mut RowScratch::default());
/// assert_eq!(clk, Encoder::new(&schema, &key).encode(&ids, &mut Scratch::default()));
/// assert_eq!(parts, PartEncoders::new(&schema, &key).encode(&ids, &mut PartScratch::default()));
/// ```
#[derive(Debug)]
pub struct RowEncoder {
    record: Encoder,
    parts: PartEncoders,
    /// Per plan of the record encoder: the part encoder and its plan that encode the same
    /// field (a part's plans are copies of the record's, under the part's key).
    links: Vec<Option<(usize, usize)>>,
    /// Per plan of the record encoder: its cache (plans of one namespace, linked to the same
    /// part namespace, share one).
    cache_of: Vec<usize>,
    caches: usize,
    /// [`LinkageSchema::takes_birth_years`].
    birth_years: bool,
    /// [`LinkageSchema::reads_nicknames`].
    nicknames: bool,
}

/// A cache entry of [`RowEncoder`]: a token's first positions in the record CLK's namespace,
/// then in its part's.
type RowCache = FxHashMap<u128, [u16; 2 * INLINE_K]>;

/// Per-thread scratch space of [`RowEncoder`].
#[derive(Default)]
pub struct RowScratch {
    caches: Vec<RowCache>,
    token: Vec<u8>,
    /// The record CLK and each part before hardening.
    record: Vec<u8>,
    parts: Vec<Vec<u8>>,
    present: Vec<bool>,
    /// Scratch of the parts encoded apart (the names at the birth date, [`Part::needs`]),
    /// shared: their token positions and date permutations are cached per namespace key.
    apart: Scratch,
}

impl Drop for RowScratch {
    fn drop(&mut self) {
        // The filters before hardening: wiped like the other material hardening hides.
        use zeroize::Zeroize;
        self.record.zeroize();
        for p in &mut self.parts {
            p.zeroize();
        }
    }
}

impl RowEncoder {
    /// The record and part encoders of `schema` under `key`.
    pub fn new(schema: &LinkageSchema, key: &SecretKey) -> RowEncoder {
        let record = Encoder::new(schema, key);
        let parts = PartEncoders::new(schema, key);
        let links: Vec<Option<(usize, usize)>> = record
            .plans
            .iter()
            .map(|plan| {
                // The given name at the birth date is salted: encoded apart, not linked.
                parts
                    .encoders
                    .iter()
                    .enumerate()
                    .filter(|(_, (p, _))| p.needs().is_empty())
                    .find_map(|(j, (_, e))| {
                        e.plans
                            .iter()
                            .position(|q| q.field == plan.field)
                            .map(|m| (j, m))
                    })
            })
            .collect();
        let mut groups: Vec<(usize, Option<(usize, usize)>)> = Vec::new();
        let cache_of = record
            .plans
            .iter()
            .zip(&links)
            .map(|(plan, link)| {
                let g = (
                    plan.ns,
                    link.map(|(j, m)| (j, parts.encoders[j].1.plans[m].ns)),
                );
                match groups.iter().position(|x| *x == g) {
                    Some(i) => i,
                    None => {
                        groups.push(g);
                        groups.len() - 1
                    }
                }
            })
            .collect();
        RowEncoder {
            record,
            parts,
            links,
            cache_of,
            caches: groups.len(),
            birth_years: schema.takes_birth_years(),
            nicknames: schema.reads_nicknames(),
        }
    }

    /// Whether the schema reads nicknames as full given names
    /// ([`LinkageSchema::reads_nicknames`]): the caller rewrites each row's names with
    /// [`crate::normalize::nicknames::read_nicknames`] before encoding them, as the encode job does.
    pub fn reads_nicknames(&self) -> bool {
        self.nicknames
    }

    /// Whether the schema takes the birth years of an age ([`LinkageSchema::takes_birth_years`]).
    pub fn takes_birth_years(&self) -> bool {
        self.birth_years
    }

    /// The record CLK's encoder (record pseudonyms, alias CLKs).
    pub fn record(&self) -> &Encoder {
        &self.record
    }

    /// The part encoders (alias names parts, the file's layout).
    pub fn parts(&self) -> &PartEncoders {
        &self.parts
    }

    /// The record CLK and the parts of `ids`: `(Encoder::encode, PartEncoders::encode)`.
    pub fn encode(&self, ids: &Identifiers, scratch: &mut RowScratch) -> (Clk, Vec<Option<Clk>>) {
        let RowScratch {
            caches,
            token,
            record,
            parts,
            present,
            apart,
        } = scratch;
        if caches.len() < self.caches {
            caches.resize_with(self.caches, FxHashMap::default);
        }
        let rec = &self.record;
        record.clear();
        record.resize(rec.bits / 8, 0);
        parts.resize_with(self.parts.encoders.len(), Vec::new);
        for (buf, (_, e)) in parts.iter_mut().zip(&self.parts.encoders) {
            buf.clear();
            buf.resize(e.bits / 8, 0);
        }
        present.clear();
        present.resize(self.parts.encoders.len(), false);
        for (i, plan) in rec.plans.iter().enumerate() {
            let Some(value) = ids.get(plan.field) else {
                continue;
            };
            let link = self.links[i].map(|(j, m)| {
                let e = &self.parts.encoders[j].1;
                (j, e, &e.plans[m])
            });
            let (mut part_buf, part) = match link {
                Some((j, e, q)) => {
                    present[j] = true;
                    (parts.get_mut(j), Some((e, q)))
                }
                None => (None, None),
            };
            if let Some(salt) = plan.salt {
                // Salted tokens: a key per salt value, no cache.
                let salt = salt.value(ids);
                let key = salted_key(&rec.ns_keys[plan.ns], salt);
                let part_key = part.map(|(e, q)| salted_key(&e.ns_keys[q.ns], salt));
                tokens::for_each_token(plan.tokens, plan.n, plan.padded, value, token, &mut |t| {
                    for p in token_positions(&key, t, plan.k, rec.bits) {
                        crate::clk::set_bit(record, p as usize);
                    }
                    if let (Some((e, q)), Some(k), Some(buf)) =
                        (part, &part_key, part_buf.as_deref_mut())
                    {
                        for p in token_positions(k, t, q.k, e.bits) {
                            crate::clk::set_bit(buf, p as usize);
                        }
                    }
                });
                continue;
            }
            let cache = &mut caches[self.cache_of[i]];
            let max_k = rec.ns_max_k[plan.ns];
            let part_max_k = part.map_or(0, |(e, q)| e.ns_max_k[q.ns]);
            let cacheable = max_k <= INLINE_K && part_max_k <= INLINE_K;
            tokens::for_each_token(plan.tokens, plan.n, plan.padded, value, token, &mut |t| {
                if cache.len() >= CACHE_LIMIT {
                    cache.clear();
                }
                match pack(t).filter(|_| cacheable) {
                    Some(packed) => {
                        let positions = cache.entry(packed).or_insert_with(|| {
                            let mut inline = [0u16; 2 * INLINE_K];
                            let computed =
                                token_positions(&rec.ns_keys[plan.ns], t, max_k, rec.bits);
                            inline[..max_k].copy_from_slice(&computed);
                            if let Some((e, q)) = part {
                                let computed =
                                    token_positions(&e.ns_keys[q.ns], t, part_max_k, e.bits);
                                inline[INLINE_K..INLINE_K + part_max_k].copy_from_slice(&computed);
                            }
                            inline
                        });
                        for &p in &positions[..plan.k] {
                            crate::clk::set_bit(record, p as usize);
                        }
                        if let (Some((_, q)), Some(buf)) = (part, part_buf.as_deref_mut()) {
                            for &p in &positions[INLINE_K..INLINE_K + q.k] {
                                crate::clk::set_bit(buf, p as usize);
                            }
                        }
                    }
                    None => {
                        for p in token_positions(&rec.ns_keys[plan.ns], t, plan.k, rec.bits) {
                            crate::clk::set_bit(record, p as usize);
                        }
                        if let (Some((e, q)), Some(buf)) = (part, part_buf.as_deref_mut()) {
                            for p in token_positions(&e.ns_keys[q.ns], t, q.k, e.bits) {
                                crate::clk::set_bit(buf, p as usize);
                            }
                        }
                    }
                }
            });
        }
        let clk = rec.harden_bytes(record);
        let mut out = vec![None; Part::COUNT];
        for (j, (part, e)) in self.parts.encoders.iter().enumerate() {
            if !part.needs().is_empty() {
                out[part.index()] = e.encode_present(ids, apart);
            } else if present[j] {
                out[part.index()] = Some(e.harden_bytes(&parts[j])).filter(|c| c.count_ones() > 0);
            }
        }
        (clk, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize;

    /// The default fields without hardening or parts: record CLKs on the plain Dice scale.
    fn plain() -> LinkageSchema {
        let text = crate::schema::unhardened_default_toml();
        LinkageSchema::from_toml(&text, std::path::Path::new("plain.toml")).unwrap()
    }

    fn enc() -> Encoder {
        Encoder::new(&plain(), &SecretKey::from_bytes([3; 32]))
    }

    fn person(given: &str, family: &str, dob: &str) -> Identifiers {
        let mut ids = Identifiers::default();
        ids.set(Field::GivenName, normalize::name(given).unwrap());
        ids.set(Field::FamilyName, normalize::name(family).unwrap());
        ids.set(Field::Dob, Some(dob.to_string()));
        ids.set(Field::Sex, Some("F".into()));
        ids.set(Field::Zip, Some("06106".into()));
        ids
    }

    /// Records the encoder is checked against the reference on: two persons and an empty one.
    fn samples() -> [Identifiers; 3] {
        [
            person("Maria", "Lopez", "20080412"),
            person("Ana Maria", "Rodriguez Perez", "19990101"),
            Identifiers::default(),
        ]
    }

    /// BLIP flips about `p` of the bits, the same ones every time for the same record, and the
    /// fast encoder agrees with the reference one.
    #[test]
    fn blip_flips_a_share_of_bits_deterministically() {
        let plain = plain();
        let text = crate::schema::unhardened_default_toml().replace(
            "hardening = \"none\"",
            "hardening = \"blip\"\nflip_probability = 0.1",
        );
        let blip = LinkageSchema::from_toml(&text, std::path::Path::new("blip.toml")).unwrap();
        assert_eq!(blip.clk.blip(), Some(0.1));
        assert_ne!(blip.fingerprint(), plain.fingerprint());
        let key = SecretKey::from_bytes([3; 32]);
        let (e0, e1) = (Encoder::new(&plain, &key), Encoder::new(&blip, &key));
        let mut s = Scratch::default();
        let mut flipped = 0;
        let mut total = 0;
        for (g, f, d) in [
            ("Maria", "Lopez", "20080412"),
            ("Ana Maria", "Rodriguez Perez", "19990101"),
            ("Jose", "Rivera", "20050707"),
            ("Kayla", "Smith", "20100228"),
        ] {
            let ids = person(g, f, d);
            let a = e0.encode(&ids, &mut s);
            let b = e1.encode(&ids, &mut s);
            assert_eq!(b, e1.encode(&ids, &mut s), "deterministic");
            assert_eq!(b, reference::encode(&blip, &key, &ids));
            flipped += (0..1024).filter(|&i| a.get(i) != b.get(i)).count();
            total += 1024;
        }
        let share = flipped as f64 / total as f64;
        assert!((0.07..0.13).contains(&share), "flipped {share}");
        // Another key flips other bits.
        let other = Encoder::new(&blip, &SecretKey::from_bytes([4; 32]));
        let plain_other = Encoder::new(&plain, &SecretKey::from_bytes([4; 32]));
        let ids = person("Maria", "Lopez", "20080412");
        let (x, y) = (e1.encode(&ids, &mut s), e0.encode(&ids, &mut s));
        let (u, v) = (other.encode(&ids, &mut s), plain_other.encode(&ids, &mut s));
        let flips_a: Vec<usize> = (0..1024).filter(|&i| x.get(i) != y.get(i)).collect();
        let flips_b: Vec<usize> = (0..1024).filter(|&i| u.get(i) != v.get(i)).collect();
        assert_ne!(flips_a, flips_b);
    }

    fn diffusion_schema(taps: usize) -> LinkageSchema {
        let text = crate::schema::unhardened_default_toml().replace(
            "hardening = \"none\"",
            &format!("hardening = \"diffusion\"\ndiffusion_taps = {taps}"),
        );
        LinkageSchema::from_toml(&text, std::path::Path::new("diffusion.toml")).unwrap()
    }

    /// Diffusion: the fast encoder agrees with the reference one, every output bit mixes `t`
    /// distinct inputs, the wiring depends on the key, and similar records stay more similar
    /// than different ones.
    #[test]
    fn diffusion_matches_the_reference_and_keeps_similarity() {
        let key = SecretKey::from_bytes([3; 32]);
        for t in [2, 4, 7] {
            let schema = diffusion_schema(t);
            assert_eq!(schema.output_bits(), 1024);
            let e = Encoder::new(&schema, &key);
            let mut s = Scratch::default();
            for ids in samples() {
                let fast = e.encode(&ids, &mut s);
                assert_eq!(fast, e.encode(&ids, &mut s), "deterministic");
                assert_eq!(fast, reference::encode(&schema, &key, &ids), "t = {t}");
            }
            let taps = diffusion_taps(&key.clk_key(), 1024, t);
            assert_eq!(taps.len(), 1024 * t);
            for out in taps.chunks_exact(t) {
                let mut o = out.to_vec();
                o.sort_unstable();
                o.dedup();
                assert_eq!(o.len(), t, "distinct taps");
            }
            assert_ne!(
                taps,
                diffusion_taps(&SecretKey::from_bytes([4; 32]).clk_key(), 1024, t),
                "keyed wiring"
            );
            let a = e.encode(&person("Maria", "Lopez", "20080412"), &mut s);
            let typo = e.encode(&person("Maria", "Lopes", "20080412"), &mut s);
            let other = e.encode(&person("Kayla", "Smith", "20100228"), &mut s);
            assert!(a.dice(&typo) > a.dice(&other) + 0.1, "t = {t}");
            // An empty record stays empty: a missing field is visible, as without hardening.
            assert_eq!(
                e.encode(&Identifiers::default(), &mut s).count_ones(),
                0,
                "t = {t}"
            );
        }
    }

    proptest::proptest! {
        /// The fast (input-driven) diffusion equals the parity definition on any bits, at
        /// lengths with a fixed-width path (256, 512, 1,024 bits) and without (64, 768), where
        /// the fixed and general paths also agree; and it is linear: diffusing `a XOR b` gives
        /// the XOR of the two diffusions.
        #[test]
        fn diffusion_fast_path_is_the_parity_definition(
            a in proptest::collection::vec(proptest::num::u8::ANY, 128),
            b in proptest::collection::vec(proptest::num::u8::ANY, 128),
            t in 2usize..9,
            bits in proptest::sample::select(vec![64usize, 256, 512, 768, 1024]),
        ) {
            let (a, b) = (a[..bits / 8].to_vec(), b[..bits / 8].to_vec());
            let taps = diffusion_taps(&[9; 32], bits, t);
            let d = Diffusion::new(&taps, bits, t);
            let (ca, cb) = (Clk::from_bytes(a.clone()).unwrap(), Clk::from_bytes(b.clone()).unwrap());
            let xa = d.apply(&ca);
            proptest::prop_assert_eq!(&xa, &diffuse_reference(&ca, &taps, t));
            proptest::prop_assert_eq!(&xa, &d.apply_general(ca.as_bytes()));
            proptest::prop_assert_eq!(&xa, &d.apply_rows(ca.as_bytes()));
            // The gathers exist exactly where the CPU can run them, and agree.
            proptest::prop_assert_eq!(d.gathers.is_some(), Gathers::available());
            if let Some(g) = &d.gathers {
                proptest::prop_assert_eq!(g.apply(ca.as_bytes()), Some(xa.as_bytes().to_vec()));
            }
            let x: Vec<u8> = a.iter().zip(&b).map(|(p, q)| p ^ q).collect();
            let xb = d.apply(&cb);
            let both: Vec<u8> = xa.as_bytes().iter().zip(xb.as_bytes()).map(|(p, q)| p ^ q).collect();
            proptest::prop_assert_eq!(d.apply(&Clk::from_bytes(x).unwrap()).into_bytes(), both);
        }
    }

    #[test]
    fn fast_path_matches_reference() {
        let e = enc();
        let schema = plain();
        let key = SecretKey::from_bytes([3; 32]);
        let mut s = Scratch::default();
        for ids in samples() {
            let fast = e.encode(&ids, &mut s);
            let again = e.encode(&ids, &mut s); // now from the cache
            let slow = reference::encode(&schema, &key, &ids);
            assert_eq!(fast, slow);
            assert_eq!(again, slow);
        }
    }

    /// A schema with the name fields salted by the birth year.
    fn salted_schema() -> LinkageSchema {
        let text = crate::schema::unhardened_default_toml().replace(
            "namespace = \"name\"",
            "namespace = \"name\"\nsalt = \"birth_year\"",
        );
        LinkageSchema::from_toml(&text, std::path::Path::new("salted.toml")).unwrap()
    }

    #[test]
    fn salted_fields_match_the_reference_and_vary_with_the_year() {
        let schema = salted_schema();
        assert_eq!(schema.fields.iter().filter(|f| f.salt.is_some()).count(), 3);
        assert_ne!(schema.fingerprint(), plain().fingerprint());
        let key = SecretKey::from_bytes([3; 32]);
        let e = Encoder::new(&schema, &key);
        let mut s = Scratch::default();
        let names_only = |given: &str, family: &str, dob: Option<&str>| {
            let mut ids = Identifiers::default();
            ids.set(Field::GivenName, Some(given.to_string()));
            ids.set(Field::FamilyName, Some(family.to_string()));
            ids.set(Field::Dob, dob.map(str::to_string));
            ids
        };
        for ids in [
            person("Maria", "Lopez", "20080412"),
            names_only("MARIA", "LOPEZ", None),
            Identifiers::default(),
        ] {
            assert_eq!(
                e.encode(&ids, &mut s),
                reference::encode(&schema, &key, &ids)
            );
        }
        // The name's bits depend on the year, not on the rest of the date.
        let encode = |ids: &Identifiers| e.encode(ids, &mut Scratch::default());
        let fa = encode(&names_only("MARIA", "LOPEZ", Some("20080412")));
        let fb = encode(&names_only("MARIA", "LOPEZ", Some("20081130")));
        let fc = encode(&names_only("MARIA", "LOPEZ", Some("20090412")));
        assert!(
            fa.dice(&fb) > fa.dice(&fc),
            "same year shares the name's bits"
        );
        // Without a salt value the name hashes under the empty salt, not the plain key.
        let plain = Encoder::new(&plain(), &key);
        let no_dob = names_only("MARIA", "LOPEZ", None);
        assert_ne!(
            encode(&no_dob),
            plain.encode(&no_dob, &mut Scratch::default())
        );
        // The date itself cannot be salted with its own year.
        let bad = crate::schema::unhardened_default_toml().replace(
            "tokens = \"date\"",
            "tokens = \"date\"\nsalt = \"birth_year\"",
        );
        assert!(LinkageSchema::from_toml(&bad, std::path::Path::new("b.toml")).is_err());
    }

    fn parts_schema(parts: &str) -> LinkageSchema {
        let text = format!(
            "{}\n[parts]\n{parts}\n",
            crate::schema::unhardened_default_toml()
        );
        LinkageSchema::from_toml(&text, std::path::Path::new("parts.toml")).unwrap()
    }

    /// The one-pass encoder gives what the record encoder and the part encoders give apart,
    /// byte for byte, under every hardening of the record CLK and of the parts, with salted
    /// names, for records missing any mix of fields, and with the cache warm or cold.
    #[test]
    fn row_encoder_equals_the_separate_encoders() {
        let key = SecretKey::from_bytes([5; 32]);
        let record_hardenings = [
            "hardening = \"none\"",
            "hardening = \"xor-fold\"",
            "hardening = \"blip\"",
            "hardening = \"diffusion\"",
        ];
        let part_settings = [
            "",
            "hardening = \"none\"",
            "diffusion_taps = 6\nnames_bits = 512\nphone_bits = 0",
            "given_dob_bits = 512",
        ];
        let mut records: Vec<Identifiers> = samples().to_vec();
        // A name met first as a family name, then as a given name: the parts encoded apart
        // share a cache whose entries hold more positions than either takes (a family name's
        // 15, a given name's 20); and a nickname, read as the full name in the given name at
        // the birth date.
        records.push(person("Diaz", "Lopez", "20010203"));
        records.push(person("Lopez", "Diaz", "20010203"));
        records.push(person("Jen", "Lopez", "20010203"));
        let mut full = person("José", "O'Neil-Smith", "19871231");
        full.set(Field::MiddleName, normalize::name("Ann").unwrap());
        full.set(Field::Phone, Some("8605551234".into()));
        full.set(Field::Street, Some("12 MAIN ST".into()));
        full.set(Field::Town, Some("HARTFORD".into()));
        full.set(Field::Ssn4, Some("1234".into()));
        // Every subset of the fields of one full record: each part present and missing.
        let fields: Vec<Field> = Field::ALL
            .iter()
            .copied()
            .filter(|f| full.get(*f).is_some())
            .collect();
        for mask in 0..(1u32 << fields.len()) {
            let mut ids = Identifiers::default();
            for (i, f) in fields.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    ids.set(*f, full.get(*f).map(str::to_string));
                }
            }
            records.push(ids);
        }
        // A token longer than the cache's 15 bytes (an exact town) is never cached.
        let mut long = full.clone();
        long.set(Field::Town, Some("SOUTH WINDSOR HEIGHTS TOWNSHIP".into()));
        records.push(long);
        for variant in ["plain", "salted", "shared"] {
            for h in record_hardenings {
                for p in part_settings {
                    let mut text =
                        crate::schema::unhardened_default_toml().replace("hardening = \"none\"", h);
                    let salted = variant == "salted";
                    if salted {
                        text = text.replace(
                            "namespace = \"name\"",
                            "namespace = \"name\"\nsalt = \"birth_year\"",
                        );
                    }
                    if variant == "shared" {
                        // One namespace across parts and beyond them: street and town (the
                        // address part) and sex (no part, and more positions per token than
                        // a cache entry holds) hash like the names.
                        for (field, extra) in [
                            ("field = \"street\"", "namespace = \"name\""),
                            ("field = \"town\"", "namespace = \"name\""),
                        ] {
                            assert!(text.contains(field));
                            text = text.replace(field, &format!("{field}\n{extra}"));
                        }
                        let sex = "field = \"sex\"\ntokens = \"exact\"\nbits_per_token = 4";
                        assert!(text.contains(sex));
                        text = text.replace(
                            sex,
                            "field = \"sex\"\ntokens = \"exact\"\nbits_per_token = 30\nnamespace = \"name\"",
                        );
                    }
                    let text = format!("{text}\n[parts]\n{p}\n");
                    let schema =
                        LinkageSchema::from_toml(&text, std::path::Path::new("row.toml")).unwrap();
                    let (rec, parts) = (
                        Encoder::new(&schema, &key),
                        PartEncoders::new(&schema, &key),
                    );
                    let row = RowEncoder::new(&schema, &key);
                    let (mut s, mut ps, mut rs) = (
                        Scratch::default(),
                        PartScratch::default(),
                        RowScratch::default(),
                    );
                    // Twice over: the second round reads the tokens from the warm cache.
                    for ids in records.iter().chain(&records) {
                        let (clk, got) = row.encode(ids, &mut rs);
                        assert_eq!(clk, rec.encode(ids, &mut s), "{h} / {p} / {variant}");
                        assert_eq!(got, parts.encode(ids, &mut ps), "{h} / {p} / {variant}");
                    }
                }
            }
        }
    }

    /// Parts: the fast encoders agree with the reference, a part is `None` exactly when the
    /// record lacks its fields, each part hashes under its own key (its bits are not the
    /// record CLK's), and a part changes only with its own fields.
    #[test]
    fn parts_match_the_reference_and_hold_their_fields_only() {
        let key = SecretKey::from_bytes([3; 32]);
        for (text, taps) in [
            ("given_dob_bits = 512", Some(4)),
            ("hardening = \"none\"\ngiven_dob_bits = 512", None),
        ] {
            let schema = parts_schema(text);
            assert_eq!(schema.parts().len(), Part::COUNT);
            let parts = PartEncoders::new(&schema, &key);
            assert_eq!(
                parts.layout(),
                vec![
                    (Part::Names, 1024),
                    (Part::Dob, 1024),
                    (Part::Phone, 1024),
                    (Part::Address, 1024),
                    (Part::Ssn4, 256),
                    (Part::GivenDob, 512),
                    (Part::FamilyDob, 512)
                ]
            );
            let mut s = PartScratch::default();
            let mut full = person("Ana", "Diaz", "20010203");
            full.set(Field::Phone, Some("8605551234".into()));
            full.set(Field::Street, Some("12 MAIN ST".into()));
            full.set(Field::Town, Some("HARTFORD".into()));
            full.set(Field::Ssn4, Some("1234".into()));
            // An age instead of a birth date: the two birth years.
            let aged = person("Ana", "Diaz", "2000|2001");
            for ids in samples().into_iter().chain([full, aged]) {
                let got = parts.encode(&ids, &mut s);
                for part in Part::ALL {
                    let want = reference::encode_part(&schema, &key, part, &ids);
                    assert_eq!(got[part.index()], want, "{part}, taps {taps:?}");
                    let dated = ids
                        .get(Field::Dob)
                        .is_some_and(|d| !normalize::is_birth_years(d));
                    let has = part.fields().iter().any(|&f| ids.get(f).is_some())
                        && (part.needs().is_empty() || dated);
                    assert_eq!(got[part.index()].is_some(), has, "{part}");
                }
            }
            let a = person("Maria", "Lopez", "20080412");
            let mut b = a.clone();
            b.set(Field::Dob, Some("20090412".into()));
            let (pa, pb) = (parts.encode(&a, &mut s), parts.encode(&b, &mut s));
            assert_eq!(pa[Part::Names.index()], pb[Part::Names.index()]);
            assert_ne!(pa[Part::Dob.index()], pb[Part::Dob.index()]);
            // The given name at the birth date: salted by the date, blind to the family name.
            let given = Part::GivenDob.index();
            assert!(pa[given].is_some());
            assert_ne!(pa[given], pb[given], "another date, other bits");
            let married = parts.encode(&person("Maria", "Smith", "20080412"), &mut s);
            assert_eq!(pa[given], married[given]);
            let twin = parts.encode(&person("Marta", "Lopez", "20080412"), &mut s);
            assert_ne!(pa[given], twin[given]);
            // A nickname is read as the full name there (and only there), as in the reference.
            let jen = person("Jen", "Lopez", "20080412");
            let (short, full) = (
                parts.encode(&jen, &mut s),
                parts.encode(&person("Jennifer", "Lopez", "20080412"), &mut s),
            );
            assert_eq!(short[given], full[given]);
            assert_ne!(short[Part::Names.index()], full[Part::Names.index()]);
            assert_eq!(
                short[given],
                reference::encode_part(&schema, &key, Part::GivenDob, &jen)
            );
            assert_eq!(
                parts.encode_names(&a, &mut s),
                pa[Part::Names.index()].clone()
            );
            // Birth years hold a birth date's year tokens: a date in either year shares them.
            if taps.is_none() {
                let years = parts.encode(&person("Ana", "Diaz", "2007|2008"), &mut s);
                let years = years[Part::Dob.index()].clone().unwrap();
                let date = pa[Part::Dob.index()].clone().unwrap();
                let other = pb[Part::Dob.index()].clone().unwrap();
                let shared = |a: &Clk, b: &Clk| -> u32 {
                    a.as_bytes()
                        .iter()
                        .zip(b.as_bytes())
                        .map(|(x, y)| (x & y).count_ones())
                        .sum()
                };
                // Two year tokens of 20 bits (fewer where they collide).
                assert!((30..=40).contains(&years.count_ones()));
                // 2008 is the year of `a`'s date, not of `b`'s (2009).
                assert!(shared(&date, &years) >= 20);
                assert!(shared(&other, &years) < shared(&date, &years));
            }
        }
        // Unhardened, the names part of a record with names only is not the record CLK.
        let schema = parts_schema("hardening = \"none\"\nnames_bits = 1024");
        let mut ids = Identifiers::default();
        ids.set(Field::GivenName, Some("MARIA".into()));
        let part = PartEncoders::new(&schema, &key).encode(&ids, &mut PartScratch::default());
        let record = Encoder::new(&schema, &key).encode(&ids, &mut Scratch::default());
        assert!(part[0].as_ref().unwrap().dice(&record) < 0.3);
        // A record holding only a field the schema does not encode has no such part (not an
        // empty one): here a ZIP code under a schema without `zip`.
        let mut no_zip = parts_schema("");
        no_zip.fields.retain(|f| f.field != Field::Zip);
        let mut zip_only = Identifiers::default();
        zip_only.set(Field::Zip, Some("06106".into()));
        let got = PartEncoders::new(&no_zip, &key).encode(&zip_only, &mut PartScratch::default());
        assert!(got.iter().all(Option::is_none));
        assert_eq!(
            reference::encode_part(&no_zip, &key, Part::Address, &zip_only),
            None
        );
        // A schema without [parts] writes none; a part whose fields the schema lacks neither.
        assert!(PartEncoders::new(&plain(), &key).is_empty());
        let mut no_ssn = parts_schema("ssn4_bits = 0");
        assert!(!no_ssn.parts().contains(&Part::Ssn4));
        no_ssn.fields.retain(|f| f.field != Field::Phone);
        assert!(!no_ssn.parts().contains(&Part::Phone));
    }

    #[test]
    fn swapped_names_keep_their_bits() {
        let e = enc();
        let mut s = Scratch::default();
        let a = e.encode(&person("Maria", "Lopez", "20080412"), &mut s);
        let b = e.encode(&person("Lopez", "Maria", "20080412"), &mut s);
        // Shared namespace: the swapped name sets a subset of the same bits (given names use
        // 20 positions per token, family names the first 15 of the same 20).
        assert!(a.dice(&b) > 0.9, "{}", a.dice(&b));
    }

    #[test]
    fn key_changes_every_bit_position() {
        let schema = plain();
        let a = Encoder::new(&schema, &SecretKey::from_bytes([1; 32]));
        let b = Encoder::new(&schema, &SecretKey::from_bytes([2; 32]));
        let mut s1 = Scratch::default();
        let mut s2 = Scratch::default();
        let p = person("Maria", "Lopez", "20080412");
        let d = a.encode(&p, &mut s1).dice(&b.encode(&p, &mut s2));
        assert!(d < 0.6, "different keys should look unrelated, dice {d}");
    }

    #[test]
    fn twins_stay_apart_more_than_typos() {
        let e = enc();
        let mut s = Scratch::default();
        let a = e.encode(&person("Maria", "Lopez", "20080412"), &mut s);
        let typo = e.encode(&person("Mraia", "Lopez", "20080412"), &mut s);
        let twin = e.encode(&person("Sofia", "Lopez", "20080412"), &mut s);
        assert!(a.dice(&typo) > a.dice(&twin));
    }

    #[test]
    fn record_keys_are_keyed_and_agency_scoped() {
        let e = enc();
        let k1 = e.record_key("dcf", "123");
        assert_eq!(k1.len(), 32);
        assert_eq!(k1, e.record_key("dcf", "123"));
        assert_ne!(k1, e.record_key("police", "123"));
        // agency/id boundary is unambiguous
        assert_ne!(e.record_key("ab", "c"), e.record_key("a", "bc"));
    }
}
