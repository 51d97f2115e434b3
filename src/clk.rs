//! The CLK bitset: a record's cryptographic long-term key, a Bloom filter of `l` bits.
//!
//! Bit `i` lives in byte `i / 8` at mask `0x80 >> (i % 8)` (most significant bit first), the
//! order clkhash and anonlink use, so the serialised bytes of a CLK mean the same thing in both
//! tools. The length is a multiple of 64 bits so that comparison works on whole `u64` words.
//!
//! # Example
//!
//! ```
//! use crosswalk::clk::Clk;
//!
//! let mut a = Clk::zeros(128);
//! let mut b = Clk::zeros(128);
//! for i in [1, 5, 77] { a.set(i); }
//! for i in [1, 5, 90] { b.set(i); }
//! assert_eq!(a.count_ones(), 3);
//! assert!((a.dice(&b) - 2.0 * 2.0 / 6.0).abs() < 1e-12);
//! assert_eq!(a.as_bytes()[0], 0b0100_0100);
//! ```

/// Sets bit `i` of a filter held as bytes in [`Clk`]'s order (most significant bit first), for
/// encoders that fill a reused buffer. `i` must be below `8 · bytes.len()`.
#[inline]
pub(crate) fn set_bit(bytes: &mut [u8], i: usize) {
    bytes[i >> 3] |= 0x80 >> (i & 7);
}

/// A Bloom-filter encoding of `len_bits()` bits, stored most-significant-bit first.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Clk {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Clk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Clk({} bits, {} set)",
            self.len_bits(),
            self.count_ones()
        )
    }
}

impl Clk {
    /// An all-zero CLK of `bits` bits. Panics if `bits` is not a positive multiple of 64
    /// (schemas are validated before any CLK is built).
    pub fn zeros(bits: usize) -> Clk {
        assert!(
            bits > 0 && bits.is_multiple_of(64),
            "CLK length must be a multiple of 64"
        );
        Clk {
            bytes: vec![0; bits / 8],
        }
    }

    /// Wraps serialised bytes (length a multiple of 8), e.g. read back from Parquet.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Clk> {
        (!bytes.is_empty() && bytes.len().is_multiple_of(8)).then_some(Clk { bytes })
    }

    /// Length in bits.
    pub fn len_bits(&self) -> usize {
        self.bytes.len() * 8
    }

    /// Sets bit `i` (`i < len_bits()`).
    #[inline]
    pub fn set(&mut self, i: usize) {
        set_bit(&mut self.bytes, i);
    }

    /// Flips bit `i` (`i < len_bits()`).
    #[inline]
    pub fn flip(&mut self, i: usize) {
        self.bytes[i >> 3] ^= 0x80 >> (i & 7);
    }

    /// Whether bit `i` is set.
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.bytes[i >> 3] & (0x80 >> (i & 7)) != 0
    }

    /// Number of set bits.
    pub fn count_ones(&self) -> u32 {
        self.bytes.iter().map(|b| b.count_ones()).sum()
    }

    /// The serialised bytes (`len_bits() / 8` of them).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Consumes the CLK, returning its bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Sørensen-Dice coefficient `2|A∩B| / (|A|+|B|)`; 0 when both are empty.
    /// This is the readable reference; the linkage core has fast kernels tested against it.
    pub fn dice(&self, other: &Clk) -> f64 {
        let inter: u32 = self
            .bytes
            .iter()
            .zip(&other.bytes)
            .map(|(a, b)| (a & b).count_ones())
            .sum();
        let total = self.count_ones() + other.count_ones();
        if total == 0 {
            0.0
        } else {
            2.0 * inter as f64 / total as f64
        }
    }

    /// XOR-folds the CLK once: bit `i` of the result is `bit i XOR bit i + len/2`
    /// (Schnell, Borgs and Encheva 2016). Halves the length; the result is a multiple of 64
    /// bits only when the input is a multiple of 128.
    pub fn xor_fold(&self) -> Clk {
        let half = self.bytes.len() / 2;
        let bytes = (0..half)
            .map(|i| self.bytes[i] ^ self.bytes[i + half])
            .collect();
        Clk { bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_order_is_msb_first() {
        let mut c = Clk::zeros(64);
        c.set(0);
        c.set(15);
        assert_eq!(c.as_bytes()[0], 0x80);
        assert_eq!(c.as_bytes()[1], 0x01);
        assert!(c.get(0) && c.get(15) && !c.get(1));
    }

    #[test]
    fn dice_edge_cases() {
        let a = Clk::zeros(64);
        assert_eq!(a.dice(&a), 0.0);
        let mut b = Clk::zeros(64);
        b.set(3);
        assert_eq!(b.dice(&b), 1.0);
        assert_eq!(a.dice(&b), 0.0);
    }

    #[test]
    fn xor_fold_halves() {
        let mut c = Clk::zeros(128);
        c.set(0);
        c.set(64);
        c.set(1);
        let f = c.xor_fold();
        assert_eq!(f.len_bits(), 64);
        assert!(!f.get(0));
        assert!(f.get(1));
    }

    #[test]
    fn from_bytes_checks_length() {
        assert!(Clk::from_bytes(vec![0; 7]).is_none());
        assert!(Clk::from_bytes(vec![]).is_none());
        assert_eq!(Clk::from_bytes(vec![0; 128]).unwrap().len_bits(), 1024);
    }
}
