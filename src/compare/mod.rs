//! Comparing CLKs: the Dice kernel, with fast paths chosen once at run time.
//!
//! The Sørensen-Dice coefficient of two CLKs is `2|A∩B| / (|A|+|B|)`; the work is the popcount
//! of `A AND B`. [`Platform::detect`] picks the fastest instruction set this CPU offers, once;
//! every path is tested equal to [`intersection_naive`] on seeded random inputs (BLAKE3's
//! detect-then-match shape):
//!
//! | platform | how | when |
//! |---|---|---|
//! | `Avx512` | pairwise: `VPOPCNTQ` on two 512-bit registers per 1024-bit CLK; batch ([`ClkMatrix::matches_in`]): eight rows transposed into one register per word, the other row's word broadcast, eight intersections per pass and no horizontal sum | AVX-512F + VPOPCNTDQ, CLK a multiple of 512 bits (batch: 512, 1024 or 2048 bits) |
//! | `Avx2` | nibble lookup with `VPSHUFB`, byte sums with `VPSADBW` | AVX2, CLK a multiple of 256 bits |
//! | `Popcnt` | the scalar `POPCNT` instruction per word | POPCNT |
//! | `Portable` | `u64::count_ones` as compiled for the baseline target | always |
//!
//! Thresholds are tested without division: a pair passes when
//! `2·|A∩B|·2¹⁶ ≥ t₁₆·(|A|+|B|)`, `t₁₆ = ⌊t·2¹⁶⌋` ([`Threshold`]). Before any popcount of
//! `A AND B`, a pair is skipped when even a full overlap could not reach the threshold
//! (`2·min(|A|,|B|)`), and after the first half of the words when the overlap so far plus the
//! smaller remaining popcount cannot.
//!
//! # Example
//!
//! ```
//! use crosswalk::compare::{ClkMatrix, Platform, Threshold};
//!
//! let mut a = vec![0u8; 128];
//! let mut b = vec![0u8; 128];
//! a[..40].fill(0xff); // 320 bits
//! b[..36].fill(0xff); // 288 bits, all inside a
//! let m = ClkMatrix::from_bytes(1024, &[a.as_slice(), b.as_slice()].concat()).unwrap();
//! let p = Platform::detect();
//! assert_eq!(m.intersection(p, 0, 1), 288);
//! assert!(m.passes(p, 0, 1, Threshold::new(0.9)).is_some()); // 2·288/608 = 0.947
//! assert!(m.passes(p, 0, 1, Threshold::new(0.95)).is_none());
//! ```

/// The instruction set used for popcounts, chosen once by [`Platform::detect`]. Only
/// [`Platform::detect`], [`Platform::available`] and [`Platform::PORTABLE`] make one, so a
/// platform in hand is always one this CPU can run: the SIMD paths behind it are `unsafe` code
/// that would be undefined behaviour on a CPU without their instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform(Kind);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `u64::count_ones` for the baseline target (a software popcount on plain x86-64).
    Portable,
    /// The `POPCNT` instruction.
    Popcnt,
    /// AVX2 nibble-lookup popcount.
    Avx2,
    /// AVX-512 `VPOPCNTQ`.
    Avx512,
}

impl Platform {
    /// `u64::count_ones` as compiled for the baseline target: runs everywhere (the oracle's
    /// companion in tests).
    pub const PORTABLE: Platform = Platform(Kind::Portable);

    /// The fastest platform this CPU supports. Every platform above `portable` needs POPCNT
    /// as well (their remainders and the part counts use it): no real AVX2 CPU lacks it, but
    /// a virtual machine may hide it.
    pub fn detect() -> Platform {
        #[cfg(target_arch = "x86_64")]
        {
            let popcnt = is_x86_feature_detected!("popcnt");
            if popcnt
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512vpopcntdq")
            {
                return Platform(Kind::Avx512);
            }
            if popcnt && is_x86_feature_detected!("avx2") {
                return Platform(Kind::Avx2);
            }
            if is_x86_feature_detected!("popcnt") {
                return Platform(Kind::Popcnt);
            }
        }
        Platform(Kind::Portable)
    }

    /// Every platform this CPU can run (for tests and benches).
    pub fn available() -> Vec<Platform> {
        let mut v = vec![Platform(Kind::Portable)];
        #[cfg(target_arch = "x86_64")]
        {
            let popcnt = is_x86_feature_detected!("popcnt");
            if popcnt {
                v.push(Platform(Kind::Popcnt));
            }
            if popcnt && is_x86_feature_detected!("avx2") {
                v.push(Platform(Kind::Avx2));
            }
            if popcnt
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512vpopcntdq")
            {
                v.push(Platform(Kind::Avx512));
            }
        }
        v
    }

    /// The platform's name, for diagnostics.
    pub fn name(self) -> &'static str {
        match self {
            Platform(Kind::Portable) => "portable",
            Platform(Kind::Popcnt) => "popcnt",
            Platform(Kind::Avx2) => "avx2",
            Platform(Kind::Avx512) => "avx512-vpopcntdq",
        }
    }
}

/// A Dice threshold in fixed point (16 fractional bits), for division-free tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    t16: u64,
}

impl Threshold {
    /// `t` in `[0, 1]` (clamped).
    pub fn new(t: f64) -> Threshold {
        Threshold {
            // Rounded down, so a threshold written in decimal (0.8) accepts a pair exactly at it.
            t16: (t.clamp(0.0, 1.0) * 65536.0).floor() as u64,
        }
    }

    /// The threshold as a number.
    pub fn value(self) -> f64 {
        self.t16 as f64 / 65536.0
    }

    /// Whether an overlap of `inter` bits between filters of `total = |A|+|B|` bits passes.
    #[inline]
    pub fn accepts(self, inter: u32, total: u32) -> bool {
        ((inter as u64 * 2) << 16) >= self.t16 * total as u64 && total > 0
    }
}

/// The plainest possible intersection count: the oracle every fast path is tested against.
pub fn intersection_naive(a: &[u64], b: &[u64]) -> u32 {
    let mut n = 0;
    for (x, y) in a.iter().zip(b) {
        let mut w = x & y;
        while w != 0 {
            n += 1;
            w &= w - 1;
        }
    }
    n
}

/// Asks the CPU to start loading the cache line at `p` (a hint: it never faults and changes
/// no result; a no-op off x86-64).
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `|A∩B|` on `platform`. Slices have equal lengths; the SIMD paths need a multiple of 8 (AVX-512)
/// or 4 (AVX2) words and fall back to `Popcnt` otherwise.
#[inline]
pub fn intersection(platform: Platform, a: &[u64], b: &[u64]) -> u32 {
    debug_assert_eq!(a.len(), b.len());
    match platform {
        Platform(Kind::Portable) => a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum(),
        #[cfg(target_arch = "x86_64")]
        Platform(Kind::Popcnt) => {
            // SAFETY: `Popcnt` is only chosen (detect/available) when the CPU has POPCNT.
            unsafe { x86::intersection_popcnt(a, b) }
        }
        #[cfg(target_arch = "x86_64")]
        Platform(Kind::Avx2) if a.len().is_multiple_of(4) => {
            // SAFETY: `Avx2` is only chosen when the CPU has AVX2; the length is checked above.
            unsafe { x86::intersection_avx2(a, b) }
        }
        #[cfg(target_arch = "x86_64")]
        Platform(Kind::Avx512) if a.len().is_multiple_of(8) => {
            // SAFETY: `Avx512` is only chosen when the CPU has AVX-512F and VPOPCNTDQ; the length
            // is checked above.
            unsafe { x86::intersection_avx512(a, b) }
        }
        #[cfg(target_arch = "x86_64")]
        Platform(Kind::Avx2) | Platform(Kind::Avx512) => {
            // SAFETY: both imply POPCNT.
            unsafe { x86::intersection_popcnt(a, b) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum(),
    }
}

/// `(|a|, |b|, |a∩b|)` of two byte strings of equal length (bits set in each and in both), in
/// one pass on `platform`: the model's part comparisons ([`crate::link::evidence`]), whose
/// parts are short (128 bytes at most) and compared once each, so that one pass of the POPCNT
/// instruction over the bytes as they lie beats three calls of the wide kernels over copies.
///
/// ```
/// use crosswalk::compare::{counts, Platform};
///
/// let (a, b) = ([0b1111_0000u8; 9], [0b1000_0001u8; 9]);
/// for p in Platform::available() {
///     assert_eq!(counts(p, &a, &b), (36, 18, 9));
/// }
/// ```
///
/// Strings of unequal lengths are counted over their common prefix.
pub fn counts(platform: Platform, a: &[u8], b: &[u8]) -> (u32, u32, u32) {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    match platform {
        #[cfg(target_arch = "x86_64")]
        Platform(Kind::Popcnt) | Platform(Kind::Avx2) | Platform(Kind::Avx512) => {
            // SAFETY: every platform but `Portable` is only chosen where the CPU has POPCNT
            // (`detect`, `available`).
            unsafe { x86::counts_popcnt(a, b) }
        }
        _ => counts_words(a, b),
    }
}

/// [`counts`] for any CPU: 8 bytes at a time, then the bytes left over. The POPCNT path is
/// this function compiled with the instruction.
#[inline(always)]
fn counts_words(a: &[u8], b: &[u8]) -> (u32, u32, u32) {
    let (mut pa, mut pb, mut pi) = (0u32, 0u32, 0u32);
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let x = u64::from_le_bytes(x.try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(y.try_into().unwrap_or([0; 8]));
        pa += x.count_ones();
        pb += y.count_ones();
        pi += (x & y).count_ones();
    }
    for (&x, &y) in ra.iter().zip(rb) {
        pa += x.count_ones();
        pb += y.count_ones();
        pi += (x & y).count_ones();
    }
    (pa, pb, pi)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// [`super::counts_words`] with POPCNT.
    #[target_feature(enable = "popcnt")]
    pub(super) unsafe fn counts_popcnt(a: &[u8], b: &[u8]) -> (u32, u32, u32) {
        super::counts_words(a, b)
    }

    #[target_feature(enable = "popcnt")]
    #[inline]
    pub(super) unsafe fn intersection_popcnt(a: &[u64], b: &[u64]) -> u32 {
        // Four independent sums keep the popcount units busy.
        let mut n = [0u32; 4];
        let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            n[0] += (x[0] & y[0]).count_ones();
            n[1] += (x[1] & y[1]).count_ones();
            n[2] += (x[2] & y[2]).count_ones();
            n[3] += (x[3] & y[3]).count_ones();
        }
        for (x, y) in ra.iter().zip(rb) {
            n[0] += (x & y).count_ones();
        }
        n[0] + n[1] + n[2] + n[3]
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn intersection_avx2(a: &[u64], b: &[u64]) -> u32 {
        // Nibble lookup (Muła, Kurz and Lemire 2018): popcount of each 4-bit half via VPSHUFB,
        // byte counts summed per 64-bit lane with VPSADBW.
        let lut = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2,
            3, 3, 4,
        );
        let low = _mm256_set1_epi8(0x0f);
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        while i < a.len() {
            // Byte counts of up to 8 vectors (8 × 8 = 64 per byte) add up without overflow,
            // so the byte-sum (VPSADBW) runs once per 2048 bits, not once per vector.
            let mut bytes = _mm256_setzero_si256();
            let stop = (i + 32).min(a.len());
            while i < stop {
                // SAFETY: i + 4 <= len (len is a multiple of 4); unaligned loads are allowed.
                let x = _mm256_loadu_si256(a.as_ptr().add(i) as *const __m256i);
                let y = _mm256_loadu_si256(b.as_ptr().add(i) as *const __m256i);
                let v = _mm256_and_si256(x, y);
                let lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low));
                let hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
                bytes = _mm256_add_epi8(bytes, _mm256_add_epi8(lo, hi));
                i += 4;
            }
            acc = _mm256_add_epi64(acc, _mm256_sad_epu8(bytes, _mm256_setzero_si256()));
        }
        // Horizontal sum of the four 64-bit lanes in registers.
        let s128 = _mm_add_epi64(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256(acc, 1),
        );
        (_mm_cvtsi128_si64(s128) + _mm_extract_epi64(s128, 1)) as u32
    }

    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    #[inline]
    pub(super) unsafe fn intersection_avx512(a: &[u64], b: &[u64]) -> u32 {
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        while i < a.len() {
            // SAFETY: i + 8 <= len (len is a multiple of 8); unaligned loads are allowed.
            let x = _mm512_loadu_si512(a.as_ptr().add(i) as *const __m512i);
            let y = _mm512_loadu_si512(b.as_ptr().add(i) as *const __m512i);
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_and_si512(x, y)));
            i += 8;
        }
        _mm512_reduce_add_epi64(acc) as u32
    }

    /// `accepts` for eight lanes at once: `2·inter·2¹⁶ ≥ t₁₆·total` and `total > 0`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn accepts_x8(inter: __m512i, total: __m512i, t16: __m512i) -> __mmask8 {
        let lhs = _mm512_slli_epi64::<17>(inter);
        // t₁₆ ≤ 2¹⁶ and totals fit 32 bits: the low-half multiply is exact.
        let rhs = _mm512_mul_epu32(total, t16);
        _mm512_cmpge_epu64_mask(lhs, rhs) & _mm512_cmpneq_epu64_mask(total, _mm512_setzero_si512())
    }

    /// Row `i` against rows `js` through the transposed tiles: per block of eight rows, the
    /// popcount bound, then the first `W/2` words, the bound again, then the rest, each step
    /// for all eight lanes at once; a block is left as soon as no lane can still pass.
    /// Results are pushed in ascending `j`, exactly as `row_avx512` pushes them.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub(super) unsafe fn tiles_avx512<const W: usize>(
        m: &super::ClkMatrix,
        tiles: &super::Tiles,
        i: usize,
        js: std::ops::Range<usize>,
        t: super::Threshold,
        out: &mut Vec<(u32, u32)>,
    ) {
        debug_assert_eq!(m.words, W);
        if js.start >= js.end {
            return;
        }
        let a = m.row(i).as_ptr();
        let pi = _mm512_set1_epi64(m.pop[i] as i64);
        let ri = _mm512_set1_epi64((m.pop[i] - m.pop_half[i]) as i64);
        let t16 = _mm512_set1_epi64(t.t16 as i64);
        let (first, last) = (js.start / 8, (js.end - 1) / 8);
        let data = tiles.data.as_ptr();
        let mut lanes = [0u64; 8];
        for b in first..=last {
            let mut range: u8 = 0xff;
            if b == first {
                range &= 0xffu8 << (js.start % 8);
            }
            if b == last {
                range &= 0xffu8 >> (7 - (js.end - 1) % 8);
            }
            // SAFETY: b < blocks, and `pop`/`rest` hold 8 lanes per block.
            let pj = _mm512_loadu_si512(tiles.pop.as_ptr().add(b * 8) as *const __m512i);
            let total = _mm512_add_epi64(pi, pj);
            let m0 = range & accepts_x8(_mm512_min_epu64(pi, pj), total, t16);
            if m0 == 0 {
                continue;
            }
            // SAFETY: block b spans W × 8 words of `data`.
            let tile = data.add(b * W * 8);
            // Row i's word is broadcast from memory (an embedded-broadcast operand of the AND):
            // holding all W broadcasts in registers makes the compiler spill them.
            let word = |k: usize| {
                let v = _mm512_loadu_si512(tile.add(k * 8) as *const __m512i);
                _mm512_popcnt_epi64(_mm512_and_si512(v, _mm512_set1_epi64(*a.add(k) as i64)))
            };
            // Two accumulators halve the dependency chain of the adds.
            let (mut s0, mut s1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
            for k in (0..W / 2).step_by(2) {
                s0 = _mm512_add_epi64(s0, word(k));
                s1 = _mm512_add_epi64(s1, word(k + 1));
            }
            let half = _mm512_add_epi64(s0, s1);
            let rj = _mm512_loadu_si512(tiles.rest.as_ptr().add(b * 8) as *const __m512i);
            let bound = _mm512_add_epi64(half, _mm512_min_epu64(ri, rj));
            let m1 = m0 & accepts_x8(bound, total, t16);
            if m1 == 0 {
                continue;
            }
            let (mut s0, mut s1) = (half, _mm512_setzero_si512());
            for k in (W / 2..W).step_by(2) {
                s0 = _mm512_add_epi64(s0, word(k));
                s1 = _mm512_add_epi64(s1, word(k + 1));
            }
            let inter = _mm512_add_epi64(s0, s1);
            let mut hit = m1 & accepts_x8(inter, total, t16);
            if hit == 0 {
                continue;
            }
            _mm512_storeu_si512(lanes.as_mut_ptr() as *mut __m512i, inter);
            while hit != 0 {
                let l = hit.trailing_zeros() as usize;
                out.push(((b * 8 + l) as u32, lanes[l] as u32));
                hit &= hit - 1;
            }
        }
    }

    /// 1024-bit rows `i0..i0+lanes.len()` (at most eight: one lane each, held in 16 registers with
    /// word `w` of all eight rows in register `w`) against every row `j` of the union of their
    /// ranges, `j` streamed one row at a time and each of its words broadcast: eight pairs per
    /// pass with 8 bytes loaded per pair-word, the popcount and half-way bounds per lane.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub(super) unsafe fn block_avx512(
        m: &super::ClkMatrix,
        i0: usize,
        lanes: &[std::ops::Range<usize>],
        t: super::Threshold,
        out: &mut Vec<(u32, u32, u32)>,
    ) {
        const W: usize = 16;
        debug_assert!(lanes.len() <= 8 && m.words == W);
        let mut words = [[0u64; 8]; W];
        let (mut pop, mut rest, mut lo, mut hi) = ([0u64; 8], [0u64; 8], [0u64; 8], [0u64; 8]);
        for (l, r) in lanes.iter().enumerate() {
            let i = i0 + l;
            for (w, &x) in m.row(i).iter().enumerate() {
                words[w][l] = x;
            }
            pop[l] = m.pop[i] as u64;
            rest[l] = m.pop_rest[i];
            (lo[l], hi[l]) = (r.start as u64, r.end as u64);
        }
        let Some((start, end)) = span(lanes) else {
            return;
        };
        // Where all eight lanes are live and pass the popcount bound, the scan skips both tests
        // (the common case: sorted rows, partners beyond the block, within every lane's range).
        let full = lanes.len() == 8 && lanes.iter().all(|r| !r.is_empty());
        let all_live = if full {
            let s = lanes.iter().map(|r| r.start).max().unwrap_or(0);
            let e = lanes.iter().map(|r| r.end).min().unwrap_or(0);
            s..e.max(s)
        } else {
            0..0
        };
        let mut all_pass = (1, 0);
        if full && (0..8).all(|l| pop[l] > 0) {
            let (mut plo, mut phi) = (0u32, u32::MAX);
            for &p in &pop {
                let r = popcount_interval(p as u32, t.t16);
                (plo, phi) = (plo.max(*r.start()), phi.min(*r.end()));
            }
            all_pass = (plo, phi);
        }
        let lanes_in = Lanes {
            words,
            pop,
            rest,
            lo,
            hi,
            all_live,
            all_pass,
        };
        // Hits wait in a small local buffer and are pushed between scans: a call inside the
        // scan (a `Vec` growing) would make the compiler keep the row registers on the stack.
        let mut pending = Pending {
            j: [0; PENDING],
            mask: [0; PENDING],
            inter: [[0; 8]; PENDING],
        };
        let mut j = start;
        while j < end {
            let found;
            (j, found) = block_scan(m, &lanes_in, t, j, end, &mut pending);
            for h in 0..found {
                let mut hit = pending.mask[h];
                while hit != 0 {
                    let l = hit.trailing_zeros() as usize;
                    out.push(((i0 + l) as u32, pending.j[h], pending.inter[h][l] as u32));
                    hit &= hit - 1;
                }
            }
        }
    }

    /// [`block_avx512`] without AVX-512: 1024-bit rows `i0..i0+lanes.len()` (at most eight)
    /// against every row `j` of the union of their ranges, with scalar POPCNT. Each word of
    /// row `j` is loaded once and ANDed with that word of all eight rows (one stack copy, so
    /// every lane's word is a memory operand at a fixed offset), eight running sums; the
    /// popcount bound per lane first, the half-way bound after the first eight words. Eight
    /// pairs share each load of `j`: where pair by pair a word costs two loads, here it costs
    /// one and one eighth, and the bounds are tested once per row `j`, not once per pair.
    #[target_feature(enable = "popcnt")]
    pub(super) unsafe fn block_popcnt(
        m: &super::ClkMatrix,
        i0: usize,
        lanes: &[std::ops::Range<usize>],
        t: super::Threshold,
        out: &mut Vec<(u32, u32, u32)>,
    ) {
        const W: usize = 16;
        const HALF: usize = W / 2;
        debug_assert!(lanes.len() <= 8 && m.words == W);
        let k = lanes.len();
        let mut rows = [[0u64; W]; 8];
        let (mut pop, mut rest) = ([0u32; 8], [0u32; 8]);
        for l in 0..k {
            rows[l].copy_from_slice(m.row(i0 + l));
            pop[l] = m.pop[i0 + l];
            rest[l] = m.pop[i0 + l] - m.pop_half[i0 + l];
        }
        let Some((start, end)) = span(lanes) else {
            return;
        };
        for j in start..end {
            let pj = m.pop[j];
            let mut live = 0u32;
            for (l, r) in lanes.iter().enumerate() {
                let in_range = r.start <= j && j < r.end;
                live |= ((in_range && t.accepts(pop[l].min(pj), pop[l] + pj)) as u32) << l;
            }
            if live == 0 {
                continue;
            }
            let b = m.row(j);
            let mut sum = [0u32; 8];
            add_words(&rows, b, 0..HALF, &mut sum);
            let rest_j = pj - m.pop_half[j];
            let mut alive = 0u32;
            for l in 0..8 {
                let bound = sum[l] + rest[l].min(rest_j);
                alive |= ((live >> l & 1 == 1 && t.accepts(bound, pop[l] + pj)) as u32) << l;
            }
            if alive == 0 {
                continue;
            }
            add_words(&rows, b, HALF..W, &mut sum);
            while alive != 0 {
                let l = alive.trailing_zeros() as usize;
                if t.accepts(sum[l], pop[l] + pj) {
                    out.push(((i0 + l) as u32, j as u32, sum[l]));
                }
                alive &= alive - 1;
            }
        }
    }

    /// Adds `|rows[l] ∩ b|` over `words` to `sum[l]` for the eight lanes: word by word, each
    /// word of `b` loaded once into a register and ANDed with that word of every lane, eight
    /// independent running sums held in registers.
    #[target_feature(enable = "popcnt")]
    #[inline]
    unsafe fn add_words(
        rows: &[[u64; 16]; 8],
        b: &[u64],
        words: std::ops::Range<usize>,
        sum: &mut [u32; 8],
    ) {
        let [mut s0, mut s1, mut s2, mut s3, mut s4, mut s5, mut s6, mut s7] = *sum;
        for w in words {
            let bw = b[w];
            s0 += (rows[0][w] & bw).count_ones();
            s1 += (rows[1][w] & bw).count_ones();
            s2 += (rows[2][w] & bw).count_ones();
            s3 += (rows[3][w] & bw).count_ones();
            s4 += (rows[4][w] & bw).count_ones();
            s5 += (rows[5][w] & bw).count_ones();
            s6 += (rows[6][w] & bw).count_ones();
            s7 += (rows[7][w] & bw).count_ones();
        }
        *sum = [s0, s1, s2, s3, s4, s5, s6, s7];
    }

    /// The rows `j` a block's lanes look at: from the lowest start of a non-empty range to the
    /// highest end (`None` when every range is empty).
    fn span(lanes: &[std::ops::Range<usize>]) -> Option<(usize, usize)> {
        let start = lanes
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| r.start)
            .min()?;
        Some((start, lanes.iter().map(|r| r.end).max()?))
    }

    /// How many hits one [`block_scan`] holds before returning.
    const PENDING: usize = 16;

    /// The eight rows of a block, transposed (`words[w][lane]`), with their popcounts (total,
    /// second half) and ranges.
    struct Lanes {
        words: [[u64; 8]; 16],
        pop: [u64; 8],
        rest: [u64; 8],
        lo: [u64; 8],
        hi: [u64; 8],
        /// The rows `j` inside every lane's range (empty unless eight lanes)...
        all_live: std::ops::Range<usize>,
        /// ...and the popcounts `p_j` that pass every lane's popcount bound, lowest and highest
        /// (none when the lowest is above the highest, as when a lane's popcount is 0): for
        /// such `j` no per-lane range or popcount test is needed.
        all_pass: (u32, u32),
    }

    /// The popcounts `p` that a row of popcount `pi > 0` accepts at `t₁₆` (the popcount bound
    /// `accepts(min(pi, p), pi + p)`), as an interval: `p ≥ ⌈t₁₆·pi / (2¹⁷ − t₁₆)⌉` below `pi`,
    /// `p ≤ ⌊pi·(2¹⁷ − t₁₆) / t₁₆⌋` above it.
    pub(super) fn popcount_interval(pi: u32, t16: u64) -> std::ops::RangeInclusive<u32> {
        let (pi, rest) = (pi as u64, (1u64 << 17) - t16);
        let lo = (t16 * pi).div_ceil(rest);
        let hi = (pi * rest).checked_div(t16).unwrap_or(u64::MAX);
        lo.min(u32::MAX as u64) as u32..=hi.min(u32::MAX as u64) as u32
    }

    /// Hits of one scan: the row `j`, the lanes that match it, and every lane's intersection.
    struct Pending {
        j: [u32; PENDING],
        mask: [u8; PENDING],
        inter: [[u64; 8]; PENDING],
    }

    /// Scans rows `j..end` against the block until `PENDING` hits are held or `end` is reached;
    /// returns where it stopped and how many hits it holds. No calls inside: the sixteen row
    /// registers stay in registers.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    #[inline(never)]
    unsafe fn block_scan(
        m: &super::ClkMatrix,
        lanes: &Lanes,
        t: super::Threshold,
        mut j: usize,
        end: usize,
        pending: &mut Pending,
    ) -> (usize, usize) {
        // Macros, not closures, for everything inside the scan: a closure does not always
        // inline here, and a call would push the row registers to the stack.
        macro_rules! load {
            ($a:expr) => {
                _mm512_loadu_si512($a.as_ptr() as *const __m512i)
            };
        }
        // Sixteen named registers, not an array: the compiler keeps an array of vectors on the
        // stack and reloads it for every row, doubling the loads.
        let w = &lanes.words;
        let (a0, a1, a2, a3) = (load!(w[0]), load!(w[1]), load!(w[2]), load!(w[3]));
        let (a4, a5, a6, a7) = (load!(w[4]), load!(w[5]), load!(w[6]), load!(w[7]));
        let (a8, a9, a10, a11) = (load!(w[8]), load!(w[9]), load!(w[10]), load!(w[11]));
        let (a12, a13, a14, a15) = (load!(w[12]), load!(w[13]), load!(w[14]), load!(w[15]));
        // popcount(a AND broadcast(b[k])): the broadcast is the AND's memory operand.
        macro_rules! pw {
            ($a:ident, $b:ident, $k:expr) => {
                _mm512_popcnt_epi64(_mm512_and_si512($a, _mm512_set1_epi64(*$b.add($k) as i64)))
            };
        }
        // The sum over four consecutive words from `$k`, as two pairs: short dependency chains.
        macro_rules! sum4 {
            ($w:ident, $x:ident, $y:ident, $z:ident, $b:ident, $k:expr) => {
                _mm512_add_epi64(
                    _mm512_add_epi64(pw!($w, $b, $k), pw!($x, $b, $k + 1)),
                    _mm512_add_epi64(pw!($y, $b, $k + 2), pw!($z, $b, $k + 3)),
                )
            };
        }
        let (pi, ri) = (load!(lanes.pop), load!(lanes.rest));
        let (lov, hiv) = (load!(lanes.lo), load!(lanes.hi));
        let zero = _mm512_setzero_si512();
        // The tests compare shared bits with `need = ⌈t₁₆·(p_i + p_j) / 2¹⁷⌉`, the fewest that
        // reach `t` (exactly `accepts`, for integer counts): per lane `t₁₆·p_i + 2¹⁷ − 1` is
        // fixed, so a need is one add and one shift away from the scalar `t₁₆·p_j`.
        let t16 = t.t16;
        let round = _mm512_add_epi64(
            _mm512_mul_epu32(pi, _mm512_set1_epi64(t16 as i64)),
            _mm512_set1_epi64((1 << 17) - 1),
        );
        macro_rules! need_of {
            ($pj:expr) => {
                _mm512_srli_epi64::<17>(_mm512_add_epi64(
                    round,
                    _mm512_set1_epi64((t16 * $pj as u64) as i64),
                ))
            };
        }
        let (data, pops, rests) = (m.data.as_ptr(), m.pop.as_ptr(), m.pop_rest.as_ptr());
        let (live_lo, live_hi) = (lanes.all_live.start, lanes.all_live.end);
        let (pass_lo, pass_hi) = lanes.all_pass;
        let stats = m.chunks.as_ptr();
        // Rows go by in the matrix's chunks of CHUNK. A chunk inside the rows where all eight
        // lanes are live, whose popcounts all pass every lane's popcount bound, is fast: its
        // rows share one need, that of the chunk's lowest popcount, which is no higher than any
        // of its rows' own (a need grows with p_j), and one half-way need, `need − min(r_i,
        // r_max)` with the chunk's highest second-half popcount. Both bounds stay sound, only a
        // little looser, and a fast row costs one compare per bound; a lane that passes is
        // re-checked against its row's own need. Other rows in the all-lanes rows need no range
        // or popcount test, but their own need; any other row is tested in full.
        let (mut chunk_end, mut fast) = (0, false);
        let (mut chunk_need, mut half_need) = (zero, zero);
        let mut found = 0;
        while j < end && found < PENDING {
            let jj = j;
            j += 1;
            if jj >= chunk_end {
                let c = jj / super::CHUNK;
                chunk_end = (c + 1) * super::CHUNK;
                // SAFETY: jj < len, so chunk c exists.
                let st = *stats.add(c);
                fast = jj >= live_lo
                    && chunk_end <= live_hi
                    && st.min_pop >= pass_lo
                    && st.max_pop <= pass_hi;
                if fast {
                    chunk_need = need_of!(st.min_pop);
                    let r = _mm512_min_epu64(ri, _mm512_set1_epi64(st.max_rest as i64));
                    half_need = _mm512_sub_epi64(_mm512_max_epu64(chunk_need, r), r);
                }
            }
            let (need, m0) = if fast {
                (chunk_need, 0xff)
            } else {
                // SAFETY: jj < end ≤ len: row jj and its popcounts are inside the matrix.
                let pj_total = *pops.add(jj);
                let need = need_of!(pj_total);
                if jj >= live_lo && jj < live_hi && pj_total >= pass_lo && pj_total <= pass_hi {
                    (need, 0xff)
                } else {
                    let jv = _mm512_set1_epi64(jj as i64);
                    let live = _mm512_cmpge_epu64_mask(jv, lov) & _mm512_cmplt_epu64_mask(jv, hiv);
                    let pj = _mm512_set1_epi64(pj_total as i64);
                    let m0 = live
                        & _mm512_cmpge_epu64_mask(_mm512_min_epu64(pi, pj), need)
                        & _mm512_cmpneq_epu64_mask(_mm512_add_epi64(pi, pj), zero);
                    (need, m0)
                }
            };
            if m0 == 0 {
                continue;
            }
            let b = data.add(jj * 16);
            let half = _mm512_add_epi64(sum4!(a0, a1, a2, a3, b, 0), sum4!(a4, a5, a6, a7, b, 4));
            let m1 = if fast {
                _mm512_cmpge_epu64_mask(half, half_need)
            } else {
                // The second-half popcount broadcast straight from memory into the min.
                let rj = _mm512_set1_epi64(*rests.add(jj) as i64);
                m0 & _mm512_cmpge_epu64_mask(_mm512_add_epi64(half, _mm512_min_epu64(ri, rj)), need)
            };
            if m1 == 0 {
                continue;
            }
            let rest = _mm512_add_epi64(
                sum4!(a8, a9, a10, a11, b, 8),
                sum4!(a12, a13, a14, a15, b, 12),
            );
            let inter = _mm512_add_epi64(half, rest);
            let mut hit = m1 & _mm512_cmpge_epu64_mask(inter, need);
            if hit != 0 && fast {
                hit &= _mm512_cmpge_epu64_mask(inter, need_of!(*pops.add(jj)));
            }
            if hit != 0 {
                pending.j[found] = jj as u32;
                pending.mask[found] = hit;
                _mm512_storeu_si512(pending.inter[found].as_mut_ptr() as *mut __m512i, inter);
                found += 1;
            }
        }
        (j, found)
    }

    /// One row against a range of rows, the whole loop compiled for one instruction set so that
    /// the intersection inlines (a per-pair dispatch costs more than the popcounts).
    macro_rules! row_kernel {
        ($name:ident, $features:literal, $inter:ident) => {
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name(
                m: &super::ClkMatrix,
                i: usize,
                js: std::ops::Range<usize>,
                t: super::Threshold,
                out: &mut Vec<(u32, u32)>,
            ) {
                let half = m.words / 2;
                let a = m.row(i);
                let (pi, pi_half) = (m.pop[i], m.pop_half[i]);
                for j in js {
                    let pj = m.pop[j];
                    let total = pi + pj;
                    if !t.accepts(pi.min(pj), total) {
                        continue;
                    }
                    let b = m.row(j);
                    let first = $inter(&a[..half], &b[..half]);
                    let bound = first + (pi - pi_half).min(pj - m.pop_half[j]);
                    if !t.accepts(bound, total) {
                        continue;
                    }
                    let inter = first + $inter(&a[half..], &b[half..]);
                    if t.accepts(inter, total) {
                        out.push((j as u32, inter));
                    }
                }
            }
        };
    }
    row_kernel!(row_popcnt, "popcnt", intersection_popcnt);
    row_kernel!(row_avx2, "avx2,popcnt", intersection_avx2);
    row_kernel!(
        row_avx512,
        "avx512f,avx512vpopcntdq,popcnt",
        intersection_avx512
    );
}

/// CLKs of one length, as rows of `u64` words, with their popcounts (total and first half).
#[derive(Debug, Clone, Default)]
pub struct ClkMatrix {
    words: usize,
    data: Vec<u64>,
    pop: Vec<u32>,
    pop_half: Vec<u32>,
    /// Per row, the popcount of the second half as a 64-bit word: the block kernel broadcasts
    /// it as a memory operand.
    pop_rest: Vec<u64>,
    /// Per run of `CHUNK` rows from row 0: the popcount range and the highest second-half
    /// popcount, for the block kernel's fast chunks.
    chunks: Vec<ChunkStats>,
    /// The rows transposed for the AVX-512 batch kernel, built on its first use (so a matrix
    /// that is only probed pair by pair never pays for the copy).
    tiles: std::sync::OnceLock<Tiles>,
}

/// Rows per chunk of the block kernel's fast path.
const CHUNK: usize = 32;

/// What the block kernel needs to know of a run of `CHUNK` rows.
#[derive(Debug, Clone, Copy, Default)]
struct ChunkStats {
    min_pop: u32,
    max_pop: u32,
    max_rest: u32,
}

/// Rows transposed in blocks of eight: word `w` of rows `8b..8b+8` is one 512-bit vector
/// (lane `l` = row `8b+l`), so one register holds the same word of eight CLKs. The last block
/// is padded with empty rows, which the kernel masks off.
#[derive(Debug, Clone, Default)]
struct Tiles {
    /// `blocks × words × 8` words.
    data: Vec<u64>,
    /// Popcount of each row, 8 lanes per block.
    pop: Vec<u64>,
    /// Popcount of the second half of each row, 8 lanes per block.
    rest: Vec<u64>,
}

impl Tiles {
    fn new(m: &ClkMatrix) -> Tiles {
        let (n, w) = (m.len(), m.words);
        let blocks = n.div_ceil(8);
        let mut data = vec![0u64; blocks * w * 8];
        let mut pop = vec![0u64; blocks * 8];
        let mut rest = vec![0u64; blocks * 8];
        for r in 0..n {
            let (b, l) = (r / 8, r % 8);
            for (k, &x) in m.row(r).iter().enumerate() {
                data[b * w * 8 + k * 8 + l] = x;
            }
            pop[r] = m.pop[r] as u64;
            rest[r] = m.pop_rest[r];
        }
        Tiles { data, pop, rest }
    }
}

impl ClkMatrix {
    /// Builds a matrix from concatenated CLK bytes of `bits` bits each (`bits` a multiple of
    /// 64; `None` otherwise or when the byte count does not fit).
    pub fn from_bytes(bits: usize, bytes: &[u8]) -> Option<ClkMatrix> {
        if bits == 0 || !bits.is_multiple_of(64) || !bytes.len().is_multiple_of(bits / 8) {
            return None;
        }
        let words = bits / 64;
        let data: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        let half = words / 2;
        let (pop, pop_half): (Vec<u32>, Vec<u32>) = data
            .chunks_exact(words)
            .map(|r| {
                let h: u32 = r[..half].iter().map(|w| w.count_ones()).sum();
                (h + r[half..].iter().map(|w| w.count_ones()).sum::<u32>(), h)
            })
            .unzip();
        Some(ClkMatrix::assemble(words, data, pop, pop_half))
    }

    /// A matrix of the given rows of this one, in the order given (a bucket of candidates,
    /// gathered so that a block kernel can compare it). Panics if a row is out of range.
    pub fn select(&self, rows: &[u32]) -> ClkMatrix {
        let mut data = Vec::with_capacity(rows.len() * self.words);
        for &r in rows {
            data.extend_from_slice(self.row(r as usize));
        }
        let pick = |v: &[u32]| rows.iter().map(|&r| v[r as usize]).collect::<Vec<u32>>();
        ClkMatrix::assemble(self.words, data, pick(&self.pop), pick(&self.pop_half))
    }

    /// The matrix of rows `data` with popcounts `pop` (total) and `pop_half` (first half).
    fn assemble(words: usize, data: Vec<u64>, pop: Vec<u32>, pop_half: Vec<u32>) -> ClkMatrix {
        let pop_rest: Vec<u64> = pop
            .iter()
            .zip(&pop_half)
            .map(|(&p, &h)| (p - h) as u64)
            .collect();
        let chunks = pop
            .chunks(CHUNK)
            .zip(pop_rest.chunks(CHUNK))
            .map(|(p, r)| ChunkStats {
                min_pop: p.iter().copied().min().unwrap_or(0),
                max_pop: p.iter().copied().max().unwrap_or(0),
                max_rest: r.iter().copied().max().unwrap_or(0) as u32,
            })
            .collect();
        ClkMatrix {
            words,
            data,
            pop,
            pop_half,
            pop_rest,
            chunks,
            tiles: std::sync::OnceLock::new(),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.pop.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.pop.is_empty()
    }

    /// Asks the CPU to start loading row `i` into cache (a hint: no effect on results). For
    /// loops that visit rows in an order the hardware prefetcher cannot guess.
    #[inline]
    pub fn prefetch_row(&self, i: usize) {
        if let Some(r) = self.data.get(i * self.words..(i + 1) * self.words) {
            for line in r.chunks(8) {
                prefetch(line.as_ptr());
            }
        }
    }

    /// Row `i` as words.
    pub fn row(&self, i: usize) -> &[u64] {
        &self.data[i * self.words..(i + 1) * self.words]
    }

    /// Popcount of row `i`.
    pub fn popcount(&self, i: usize) -> u32 {
        self.pop[i]
    }

    /// `|A∩B|` of rows `i` and `j`.
    pub fn intersection(&self, platform: Platform, i: usize, j: usize) -> u32 {
        intersection(platform, self.row(i), self.row(j))
    }

    /// Dice of rows `i` and `j`.
    pub fn dice(&self, platform: Platform, i: usize, j: usize) -> f64 {
        let total = self.pop[i] + self.pop[j];
        if total == 0 {
            0.0
        } else {
            2.0 * self.intersection(platform, i, j) as f64 / total as f64
        }
    }

    /// Every `j` in `js` whose Dice with row `i` reaches `t`, as `(j, |A∩B|)` pushed onto `out`
    /// in order: the batch form of [`ClkMatrix::passes`], with the platform dispatched once
    /// (rows of `js` past the end are ignored). On `Avx512` with 512-, 1024- or 2048-bit CLKs,
    /// the first call transposes the matrix into blocks of eight rows (one more copy of it) for
    /// the tiled kernel; the pairs found are the same on every platform.
    pub fn matches_in(
        &self,
        platform: Platform,
        i: usize,
        js: std::ops::Range<usize>,
        t: Threshold,
        out: &mut Vec<(u32, u32)>,
    ) {
        let half = self.words / 2;
        // Rows past the end are not there to match.
        let js = js.start.min(self.len())..js.end.min(self.len());
        #[cfg(target_arch = "x86_64")]
        match platform {
            // SAFETY: `Avx512` is only chosen when the CPU has AVX-512F and VPOPCNTDQ; the
            // kernel reads tiles built for this matrix and clamps `js` to its rows.
            Platform(Kind::Avx512) if matches!(self.words, 8 | 16 | 32) => {
                let tiles = self.tiles.get_or_init(|| Tiles::new(self));
                return unsafe {
                    match self.words {
                        8 => x86::tiles_avx512::<8>(self, tiles, i, js, t, out),
                        16 => x86::tiles_avx512::<16>(self, tiles, i, js, t, out),
                        _ => x86::tiles_avx512::<32>(self, tiles, i, js, t, out),
                    }
                };
            }
            // SAFETY: each platform is only chosen when the CPU has its features; the SIMD
            // paths need half a row to be a whole number of vectors.
            Platform(Kind::Avx512) if half.is_multiple_of(8) => {
                return unsafe { x86::row_avx512(self, i, js, t, out) }
            }
            Platform(Kind::Avx2) if half.is_multiple_of(4) => {
                return unsafe { x86::row_avx2(self, i, js, t, out) }
            }
            Platform(Kind::Popcnt) | Platform(Kind::Avx2) | Platform(Kind::Avx512) => {
                return unsafe { x86::row_popcnt(self, i, js, t, out) }
            }
            Platform(Kind::Portable) => {}
        }
        let _ = half;
        for j in js {
            if let Some(inter) = self.passes(Platform(Kind::Portable), i, j, t) {
                out.push((j as u32, inter));
            }
        }
    }

    /// Rows `i0, i0+1, ...` (one per entry of `ranges`, at most eight) each against the rows
    /// of its own range: every `(i, j, |A∩B|)` whose Dice reaches `t`, pushed onto `out`, in
    /// an order that depends on the platform (the set does not). The many-rows form of
    /// [`ClkMatrix::matches_in`], for all-pairs comparison: on `Avx512` with 1024-bit CLKs
    /// (other lengths go row by row through `matches_in`) the eight rows stay in registers, transposed, while the other rows stream
    /// past once, so each pass computes eight pairs from 8 bytes of memory per word. Ranges
    /// are clamped to the matrix.
    ///
    /// ```
    /// use crosswalk::compare::{ClkMatrix, Platform, Threshold};
    ///
    /// let row = |ones: usize| { let mut r = vec![0u8; 128]; r[..ones].fill(0xff); r };
    /// let m = ClkMatrix::from_bytes(1024, &[row(40), row(36), row(38), row(4)].concat()).unwrap();
    /// let mut out = Vec::new();
    /// // Row 0 against rows 1..4, row 1 against rows 2..4.
    /// m.matches_block(Platform::detect(), 0, &[1..4, 2..4], Threshold::new(0.9), &mut out);
    /// out.sort();
    /// assert_eq!(out, vec![(0, 1, 288), (0, 2, 304), (1, 2, 288)]);
    /// ```
    pub fn matches_block(
        &self,
        platform: Platform,
        i0: usize,
        ranges: &[std::ops::Range<usize>],
        t: Threshold,
        out: &mut Vec<(u32, u32, u32)>,
    ) {
        assert!(ranges.len() <= 8, "at most eight rows per block");
        let n = self.len();
        let ranges: Vec<std::ops::Range<usize>> = ranges
            .iter()
            .take(n.saturating_sub(i0))
            .map(|r| r.start.min(n)..r.end.min(n))
            .collect();
        #[cfg(target_arch = "x86_64")]
        if platform == Platform(Kind::Avx512) {
            // SAFETY: `Avx512` is only chosen when the CPU has AVX-512F and VPOPCNTDQ; rows
            // i0..i0+ranges.len() and every range are inside the matrix (clamped above).
            if self.words == 16 {
                return unsafe { x86::block_avx512(self, i0, &ranges, t, out) };
            }
        }
        #[cfg(target_arch = "x86_64")]
        if matches!(platform, Platform(Kind::Avx2) | Platform(Kind::Popcnt)) && self.words == 16 {
            // SAFETY: both platforms are only chosen when the CPU has POPCNT; rows
            // i0..i0+ranges.len() and every range are inside the matrix (clamped above).
            return unsafe { x86::block_popcnt(self, i0, &ranges, t, out) };
        }
        let mut found = Vec::new();
        for (l, r) in ranges.into_iter().enumerate() {
            found.clear();
            self.matches_in(platform, i0 + l, r, t, &mut found);
            out.extend(found.iter().map(|&(j, x)| ((i0 + l) as u32, j, x)));
        }
    }

    /// `Some(|A∩B|)` when rows `i` and `j` reach `t`, with popcount-bound pruning and an early
    /// exit after the first half of the words. Never rejects a pair that reaches `t`.
    #[inline]
    pub fn passes(&self, platform: Platform, i: usize, j: usize, t: Threshold) -> Option<u32> {
        let (pi, pj) = (self.pop[i], self.pop[j]);
        let total = pi + pj;
        if !t.accepts(pi.min(pj), total) {
            return None;
        }
        let half = self.words / 2;
        let (a, b) = (self.row(i), self.row(j));
        let first = intersection(platform, &a[..half], &b[..half]);
        let rest_bound = (pi - self.pop_half[i]).min(pj - self.pop_half[j]);
        if !t.accepts(first + rest_bound, total) {
            return None;
        }
        let inter = first + intersection(platform, &a[half..], &b[half..]);
        t.accepts(inter, total).then_some(inter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator for test data.
    fn words(seed: u64, n: usize, density: f64) -> Vec<u64> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        (0..n)
            .map(|_| {
                let mut w = 0u64;
                for bit in 0..64 {
                    if (next() % 1000) as f64 / 1000.0 < density {
                        w |= 1 << bit;
                    }
                }
                w
            })
            .collect()
    }

    /// The one-pass counts equal the byte-wise ones on every platform, at every length.
    #[test]
    fn counts_equal_byte_counts_on_every_platform() {
        for len in 0..70usize {
            let a: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let b: Vec<u8> = (0..len).map(|i| (i * 101 + 7) as u8 ^ 0x5a).collect();
            let ones = |x: &[u8]| x.iter().map(|v| v.count_ones()).sum::<u32>();
            let both = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x & y).count_ones())
                .sum::<u32>();
            for p in Platform::available() {
                assert_eq!(
                    counts(p, &a, &b),
                    (ones(&a), ones(&b), both),
                    "{} len {len}",
                    p.name()
                );
            }
        }
    }

    #[test]
    fn every_platform_equals_the_oracle() {
        for len in [1usize, 4, 8, 12, 16, 32] {
            for seed in 0..40u64 {
                let a = words(seed, len, 0.3 + seed as f64 / 100.0);
                let b = words(seed + 1000, len, 0.5);
                let want = intersection_naive(&a, &b);
                for p in Platform::available() {
                    assert_eq!(intersection(p, &a, &b), want, "{} len {len}", p.name());
                }
            }
        }
    }

    #[test]
    fn pruning_never_loses_a_pair() {
        // Rows around the threshold: b is a with some bits flipped.
        let n = 200;
        let mut bytes = Vec::new();
        for i in 0..n {
            let mut w = words(i as u64, 16, 0.3);
            if i % 2 == 1 {
                let flip = words(i as u64 + 77, 16, (i % 20) as f64 / 100.0);
                for (x, f) in w.iter_mut().zip(flip) {
                    *x ^= f;
                }
            }
            for x in w {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        let m = ClkMatrix::from_bytes(1024, &bytes).unwrap();
        for t in [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0] {
            let th = Threshold::new(t);
            for p in Platform::available() {
                for i in 0..n {
                    for j in 0..n {
                        let exact = m.intersection(Platform(Kind::Portable), i, j);
                        let total = m.popcount(i) + m.popcount(j);
                        let want = th.accepts(exact, total).then_some(exact);
                        assert_eq!(m.passes(p, i, j, th), want, "{} t {t} ({i},{j})", p.name());
                    }
                }
            }
        }
    }

    #[test]
    fn batch_kernels_equal_pairwise() {
        let mut bytes = Vec::new();
        for i in 0..120u64 {
            let w = words(i % 40, 16, 0.3); // rows repeat: plenty of matches
            let flip = words(i + 500, 16, 0.02 * (i % 5) as f64);
            for (x, f) in w.iter().zip(flip) {
                bytes.extend_from_slice(&(x ^ f).to_le_bytes());
            }
        }
        let m = ClkMatrix::from_bytes(1024, &bytes).unwrap();
        let t = Threshold::new(0.85);
        for p in Platform::available() {
            for i in 0..m.len() {
                let mut got = Vec::new();
                m.matches_in(p, i, 0..m.len(), t, &mut got);
                let want: Vec<(u32, u32)> = (0..m.len())
                    .filter_map(|j| {
                        m.passes(Platform(Kind::Portable), i, j, t)
                            .map(|x| (j as u32, x))
                    })
                    .collect();
                assert_eq!(got, want, "{} row {i}", p.name());
            }
        }
    }

    /// Row lengths (in words) the kernels specialise (8, 16, 32) and one they do not (12), each
    /// with a row count that is not a multiple of eight.
    const SHAPES: [(usize, usize); 4] = [(8, 37), (16, 61), (32, 29), (12, 23)];

    /// `n` rows of `words_per_row` words: `groups` distinct rows at 25–40% density, repeated
    /// with 0–15% of their bits flipped, so that every threshold has pairs on both sides.
    fn near_duplicates(words_per_row: usize, n: usize, groups: u64) -> ClkMatrix {
        let mut bytes = Vec::new();
        for i in 0..n as u64 {
            let w = words(i % groups, words_per_row, 0.25 + 0.05 * (i % 4) as f64);
            let flip = words(i + 100 * groups, words_per_row, 0.03 * (i % 6) as f64);
            for (x, f) in w.iter().zip(flip) {
                bytes.extend_from_slice(&(x ^ f).to_le_bytes());
            }
        }
        ClkMatrix::from_bytes(words_per_row * 64, &bytes).unwrap()
    }

    /// The batch kernels (the transposed AVX-512 one included) against the pairwise oracle on
    /// every CLK length they specialise and one they do not, on ranges that start and end
    /// inside a block of eight, on matrices whose row count is not a multiple of eight.
    #[test]
    fn batch_kernels_equal_pairwise_on_any_range_and_length() {
        for (words_per_row, n) in SHAPES {
            let m = near_duplicates(words_per_row, n, 9);
            for t in [0.0, 0.5, 0.8, 0.95, 1.0] {
                let t = Threshold::new(t);
                for p in Platform::available() {
                    for i in 0..n {
                        for (lo, hi) in
                            [(0, n), (i + 1, n), (3, 11), (5, 6), (9, 9), (n - 2, n + 5)]
                        {
                            let mut got = Vec::new();
                            m.matches_in(p, i, lo..hi, t, &mut got);
                            let want: Vec<(u32, u32)> = (lo..hi.min(n))
                                .filter_map(|j| {
                                    let exact = m.intersection(Platform(Kind::Portable), i, j);
                                    let total = m.popcount(i) + m.popcount(j);
                                    t.accepts(exact, total).then_some((j as u32, exact))
                                })
                                .collect();
                            assert_eq!(
                                got,
                                want,
                                "{} words {words_per_row} row {i} range {lo}..{hi}",
                                p.name()
                            );
                        }
                    }
                }
            }
        }
    }

    /// The block kernel against the pairwise oracle: blocks of one to eight rows, ranges that
    /// differ per row (empty ones, ones past the end), several lengths and thresholds.
    #[test]
    fn block_kernel_equals_pairwise() {
        for (words_per_row, n) in SHAPES {
            let m = near_duplicates(words_per_row, n, 7);
            for t in [0.0, 0.5, 0.8, 0.95] {
                let t = Threshold::new(t);
                for p in Platform::available() {
                    for i0 in 0..n {
                        // Mixed ranges (some empty) in blocks of 1, 3 and 8 rows; then eight
                        // rows as the link job gives them (each row's later partners), and eight
                        // rows against everything: the scan's all-lanes-live path.
                        for (rows, shape) in [(1usize, 0), (3, 0), (8, 0), (8, 1), (8, 2)] {
                            let ranges: Vec<std::ops::Range<usize>> = (0..rows)
                                .map(|l| match (shape, (i0 + l) % 4) {
                                    (1, _) => (i0 + l + 1).min(n)..n,
                                    (2, _) => 0..n,
                                    (_, 0) => i0 + l + 1..n,
                                    (_, 1) => 0..n + 3,
                                    (_, 2) => (i0 + 5).min(n)..(i0 + 5).min(n),
                                    _ => (i0 / 2)..(i0 + 9).min(n),
                                })
                                .collect();
                            let mut got = Vec::new();
                            m.matches_block(p, i0, &ranges, t, &mut got);
                            got.sort_unstable();
                            let mut want = Vec::new();
                            for (l, r) in ranges.iter().enumerate().take(n - i0) {
                                let i = i0 + l;
                                for j in r.start.min(n)..r.end.min(n) {
                                    let exact = m.intersection(Platform(Kind::Portable), i, j);
                                    let total = m.popcount(i) + m.popcount(j);
                                    if t.accepts(exact, total) {
                                        want.push((i as u32, j as u32, exact));
                                    }
                                }
                            }
                            want.sort_unstable();
                            assert_eq!(
                                got,
                                want,
                                "{} words {words_per_row} block {i0}+{rows}",
                                p.name()
                            );
                        }
                    }
                }
            }
        }
    }

    /// The block kernel's fast chunks (runs of CHUNK rows sorted by popcount, inside every
    /// lane's range), where the bounds use a chunk's lowest popcount and highest second-half
    /// popcount: near-duplicates that differ only in their first half, so that the half-way
    /// bound decides pairs on both sides of every threshold.
    #[test]
    fn block_kernel_fast_chunks_equal_pairwise() {
        let mut rows: Vec<Vec<u64>> = Vec::new();
        for g in 0..12u64 {
            let base = words(1000 + g, 16, 0.2 + 0.02 * (g % 5) as f64);
            for k in 0..12u64 {
                let mut r = base.clone();
                let flip = words(2000 + 16 * g + k, 8, 0.05 * (k % 7) as f64);
                for (x, f) in r.iter_mut().zip(flip) {
                    *x ^= f;
                }
                rows.push(r);
            }
        }
        rows.sort_by_key(|r| (r.iter().map(|w| w.count_ones()).sum::<u32>(), r.clone()));
        let bytes: Vec<u8> = rows
            .iter()
            .flatten()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let m = ClkMatrix::from_bytes(1024, &bytes).unwrap();
        let n = m.len();
        for t in [0.3, 0.5, 0.6, 0.7, 0.8, 0.9] {
            let t = Threshold::new(t);
            for p in Platform::available() {
                for i0 in (0..n).step_by(8) {
                    for later in [false, true] {
                        let ranges: Vec<std::ops::Range<usize>> = (i0..(i0 + 8).min(n))
                            .map(|i| if later { i + 1..n } else { 0..n })
                            .collect();
                        let mut got = Vec::new();
                        m.matches_block(p, i0, &ranges, t, &mut got);
                        got.sort_unstable();
                        let mut want = Vec::new();
                        for (l, r) in ranges.iter().enumerate() {
                            let i = i0 + l;
                            for j in r.clone() {
                                let exact = m.intersection(Platform(Kind::Portable), i, j);
                                if t.accepts(exact, m.popcount(i) + m.popcount(j)) {
                                    want.push((i as u32, j as u32, exact));
                                }
                            }
                        }
                        want.sort_unstable();
                        assert_eq!(got, want, "{} block {i0} t {}", p.name(), t.value());
                    }
                }
            }
        }
    }

    /// The block scan skips the per-lane popcount test for popcounts inside every lane's
    /// interval: the interval must be exactly the popcounts the test accepts.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn popcount_interval_is_exactly_the_popcount_bound() {
        for t in [0.0, 0.3, 0.5, 0.8, 0.95, 1.0] {
            let t = Threshold::new(t);
            for pi in 1..400u32 {
                let r = x86::popcount_interval(pi, t.t16);
                for p in 0..1500u32 {
                    assert_eq!(
                        r.contains(&p),
                        t.accepts(pi.min(p), pi + p),
                        "t {} pi {pi} p {p}",
                        t.value()
                    );
                }
            }
        }
    }

    #[test]
    fn threshold_is_exact_at_the_boundary() {
        let t = Threshold::new(0.8);
        assert!(t.accepts(40, 100)); // exactly 0.8
        assert!(!t.accepts(39, 100));
        assert!(!t.accepts(0, 0));
        assert!((t.value() - 0.8).abs() < 1e-4);
    }

    #[test]
    fn matrix_rejects_bad_lengths() {
        assert!(ClkMatrix::from_bytes(1000, &[0; 125]).is_none());
        assert!(ClkMatrix::from_bytes(1024, &[0; 100]).is_none());
        assert_eq!(ClkMatrix::from_bytes(1024, &[0; 256]).unwrap().len(), 2);
    }
}
