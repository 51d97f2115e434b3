//! # crosswalk: privacy-preserving record linkage for a multi-agency taskforce
//!
//! Agencies that may not share names or dates of birth still need to know how many unique
//! victims they see together, who gets the same service twice, and where people drop off
//! between identification, referral and services. crosswalk answers that without any raw
//! identifier leaving an agency:
//!
//! 1. **At each agency** ([`pipeline::encode`]): an export is read ([`io`]) under its source
//!    mapping ([`source`]), identifiers are normalised ([`normalize`]) and hashed with a secret
//!    shared by the agencies ([`keys`]) into keyed Bloom-filter encodings, CLKs ([`encode`],
//!    [`clk`]), written to Parquet with only non-identifying event facts ([`vocab`]).
//! 2. **At the taskforce** ([`pipeline::link`]): the linkage job compares CLKs ([`compare`]: the
//!    Dice kernel, with SIMD paths chosen at run time) and clusters records into persons
//!    ([`cluster`]).
//! 3. **For researchers** ([`pipeline::report`]): aggregate tables over the linked events
//!    ([`analytics`]), small cells suppressed ([`analytics::suppress`]), written as Parquet
//!    ([`io::aggregates`]) with a self-contained HTML report ([`report`]).
//!
//! The data flows one way through the modules: `io → source → normalize → encode → io`.
//! [`synth`] builds a synthetic multi-agency world with ground truth for tests, demos and
//! benchmarks.
//!
//! ## Security model in one paragraph
//! The secret key never leaves the agencies; the taskforce sees only CLKs, keyed record
//! pseudonyms and coarse event facts. CLK bit positions come from a keyed hash (random hashing,
//! not double hashing), so without the key a dictionary of names cannot be encoded and compared.
//! Nothing crosswalk prints or writes contains a raw identifier: errors name rows, columns and
//! fields, never values ([`error`]). docs/privacy.md has the full threat model.
//!
//! ## Example: encode one record
//!
//! ```
//! use crosswalk::encode::{Encoder, Scratch};
//! use crosswalk::keys::SecretKey;
//! use crosswalk::normalize::{self, Identifiers};
//! use crosswalk::schema::{Field, LinkageSchema};
//!
//! let schema = LinkageSchema::default_schema();
//! let key = SecretKey::from_bytes([42; 32]);
//! let encoder = Encoder::new(&schema, &key);
//! let mut ids = Identifiers::default();
//! ids.set(Field::GivenName, normalize::name("María").unwrap());
//! ids.set(Field::FamilyName, normalize::name("Pérez").unwrap());
//! let clk = encoder.encode(&ids, &mut Scratch::default());
//! assert_eq!(clk.len_bits(), 1024);
//! ```

#![warn(missing_docs)]

pub mod analytics;
pub mod audit;
pub mod block;
pub mod clk;
pub mod clkhash;
pub mod cluster;
pub mod compare;
pub mod encode;
pub mod error;
pub mod evaluate;
pub mod inspect;
pub mod io;
pub mod keys;
pub mod link;
pub mod normalize;
pub mod pipeline;
pub mod redact;
pub mod registry;
pub mod report;
pub mod schema;
pub mod source;
pub mod synth;
pub mod vocab;

pub use error::{Error, ErrorKind, Result};
