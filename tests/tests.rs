//! Integration tests: one binary (faster to build), one module per subject.

mod util;

mod audit;
mod cli_errors;
mod clkhash;
mod docs;
mod encode_fixtures;
mod febrl;
mod fuzz_corpus;
mod golden;
mod hostile;
mod inspect;
mod keygen;
mod link;
mod parquet_input;
mod privacy;
mod props;
mod registry;
mod report;
mod report_browser;
mod synth;
